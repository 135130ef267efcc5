//! Reports procedures that a stopped or crashed bot left unfinished: their
//! audit record shows a start but no result, and no live process holds
//! their lock any more. The report gives the workload's current state, so
//! the team need not guess whether the change happened.

use std::collections::BTreeSet;
use std::time::Duration;

use super::scale::readable_kind;
use super::{Engine, Replies, Reply, ReplyBody, send};
use crate::catalog::{DataStore, Service, WorkloadKind};
use crate::coordination::{AuditEntry, AuditKind, CoordError, unix_now_ms};

/// Audit entries scanned for unfinished procedures.
pub const RECOVERY_SCAN: usize = 1000;

/// How long the "interrupted" report of one request is claimed, so that
/// replicas starting together report it once.
const REPORT_CLAIM_TTL: Duration = Duration::from_secs(24 * 60 * 60);

/// Finds unfinished procedures, records them as failed and reports the
/// current replicas of their workloads. Returns how many it reported.
pub async fn report_interrupted(engine: &Engine, replies: &Replies) -> Result<usize, CoordError> {
    let coordinator = engine.coordinator();
    let entries = coordinator.read_audit(None, RECOVERY_SCAN).await?;
    let finished: BTreeSet<&str> = entries
        .iter()
        .filter(|e| matches!(e.kind, AuditKind::Succeeded | AuditKind::Failed))
        .filter_map(|e| e.request_id.as_deref())
        .collect();
    let running: BTreeSet<String> = coordinator
        .list_locks()
        .await?
        .into_iter()
        .filter_map(|lock| lock.owner.rsplit_once('/').map(|(_, id)| id.to_string()))
        .collect();
    let mut reported = 0;
    for started in entries.iter().filter(|e| e.kind == AuditKind::Started) {
        let Some(id) = started.request_id.as_deref() else {
            continue;
        };
        if finished.contains(id) || running.contains(id) || engine.running_ids().contains(id) {
            continue;
        }
        if !coordinator
            .first_delivery(&format!("interrupted:{id}"), REPORT_CLAIM_TTL)
            .await?
        {
            continue;
        }
        let state = current_state(engine, started.service.as_deref()).await;
        let detail = format!("interrupted: the bot running it stopped before it finished; {state}");
        let entry = AuditEntry {
            at_ms: unix_now_ms(),
            request_id: Some(id.to_string()),
            kind: AuditKind::Failed,
            service: started.service.clone(),
            actor: "scalebot".to_string(),
            detail: detail.clone(),
            fencing_token: started.fencing_token,
        };
        coordinator.append_audit(&entry).await?;
        let channel = coordinator
            .get_pending(id)
            .await?
            .map(|p| p.channel)
            .unwrap_or_default();
        let body = ReplyBody::Result {
            succeeded: false,
            summary: format!("request {id} was interrupted"),
            details: vec![detail],
        };
        send(replies, Reply::new(&channel, Some(id.to_string()), body)).await;
        reported += 1;
    }
    Ok(reported)
}

async fn current_state(engine: &Engine, service: Option<&str>) -> String {
    let Some(name) = service else {
        return "the service is unknown".to_string();
    };
    let Ok(service) = engine.catalog().resolve(name) else {
        return format!("{name} is no longer in the catalog");
    };
    let kind = readable_kind(service);
    let replicas = match engine
        .inner
        .cluster
        .workload(kind, &service.namespace, &service.workload)
        .await
    {
        Ok(w) => format!(
            "{} now wants {} replicas, {} ready, {} available",
            service.name, w.desired, w.ready, w.available
        ),
        Err(error) => format!("{name} could not be read: {error}"),
    };
    match data_store_check(service) {
        Some(check) => format!("{replicas}. {check}"),
        None => replicas,
    }
}

/// Tells what to check by hand after an interrupted data store procedure,
/// whose state is more than a replica count.
fn data_store_check(service: &Service) -> Option<String> {
    let seed = format!("{}-0", service.workload);
    let check = match (service.kind, service.data_store) {
        (_, Some(DataStore::Cassandra)) => format!(
            "Check `nodetool status` in {seed}: every node must be UN; finish a half-done addition with `nodetool repair`, and a half-done removal with `nodetool decommission` before scaling down"
        ),
        (_, Some(DataStore::Kafka)) => format!(
            "Check `kafka-reassign-partitions.sh --list` in {seed}; the plan and the previous assignment are in /tmp/scalebot-{}-*.json there",
            service.workload
        ),
        (_, Some(DataStore::RedisCluster)) => format!(
            "Check `redis-cli --cluster check` in {seed}; join pods that are not in the cluster with --cluster add-node, then run --cluster rebalance --cluster-use-empty-masters"
        ),
        (WorkloadKind::Postgresql, None) => format!(
            "Check `kubectl get postgresql {}`: the status must become Running",
            service.workload
        ),
        _ => return None,
    };
    Some(check)
}
