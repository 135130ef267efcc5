//! `scale <service> <n|+k|-k>`: authorize, evaluate against the catalog and
//! the live HPA, dry-run the change, build the impact preview and store the
//! pending request. The authorization, admission, preview and storing steps
//! are shared with `hpa`.

use serde::{Deserialize, Serialize};

use super::{Engine, Replies, Reply, ReplyBody, Request, send};
use crate::catalog::{DataStore, Service, WorkloadKind};
use crate::cluster::{ScalableKind, WorkloadStatus};
use crate::coordination::{
    AuditEntry, AuditKind, CoordError, PendingRequest, PendingState, RateDecision, new_request_id,
    unix_now_ms,
};
use crate::grammar::ReplicaChange;
use crate::policy;
use crate::preview::{self, Impact};
use crate::procedures::{cassandra, kafka, postgres, redis_cluster};
use crate::reply::EngineError;

/// Attempts at finding an unused request id before giving up.
const REQUEST_ID_ATTEMPTS: usize = 5;

/// Operation of a pending request, stored with it and run on approval.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "operation", rename_all = "snake_case")]
pub enum Operation {
    Scale(ScalePayload),
    Hpa(super::hpa::HpaPayload),
}

impl Operation {
    pub fn service(&self) -> &str {
        match self {
            Operation::Scale(payload) => &payload.service,
            Operation::Hpa(payload) => &payload.service,
        }
    }
}

/// Data stored with a pending scale request, run on approval.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ScalePayload {
    pub service: String,
    pub namespace: String,
    pub workload: String,
    pub from: u32,
    pub to: u32,
    pub generation: i64,
    pub impact: Impact,
}

/// Returns the workload kind whose replicas `status` and reports read. For
/// a PostgreSQL cluster that is the operator's StatefulSet of the same name.
pub(crate) fn readable_kind(service: &Service) -> ScalableKind {
    match service.kind {
        WorkloadKind::Deployment => ScalableKind::Deployment,
        WorkloadKind::StatefulSet => ScalableKind::StatefulSet,
        WorkloadKind::Postgresql => postgres::OPERATOR_KIND,
    }
}

/// Returns the workload kind that the chat `scale` procedure changes:
/// Deployments, and StatefulSets with a data store procedure.
pub(crate) fn scalable_kind(service: &Service) -> Result<ScalableKind, EngineError> {
    match (service.kind, service.data_store) {
        (WorkloadKind::Deployment, _) => Ok(ScalableKind::Deployment),
        (WorkloadKind::StatefulSet, Some(_)) => Ok(ScalableKind::StatefulSet),
        (WorkloadKind::Postgresql, _) => Ok(postgres::OPERATOR_KIND),
        (other, _) => Err(EngineError::NotSupported {
            what: format!("scaling {} ({other}) from chat", service.name),
            instead: "follow the runbook's Infrastructure Scaling section for StatefulSets and PostgreSQL".to_string(),
        }),
    }
}

/// Lock scope of operations on `service`, per the configured lock scope.
pub(crate) fn lock_scope(engine: &Engine, service: &Service) -> String {
    engine
        .config()
        .policy
        .lock_scope
        .scope_key(&service.namespace, &service.workload)
}

/// Checks that the user may request a change of `service_name` now: the
/// requester role and the freeze. Returns the service and whether changes
/// are frozen.
pub(super) async fn authorize(
    engine: &Engine,
    request: &Request,
    service_name: &str,
) -> Result<(Service, bool), EngineError> {
    let coordinator = engine.coordinator();
    let freeze = coordinator.freeze_state().await?;
    policy::can_request(
        engine.config(),
        &request.user,
        &request.roles,
        freeze.as_ref(),
    )?;
    let service = engine.catalog().resolve(service_name)?.clone();
    tracing::Span::current().record("service", service.name.as_str());
    Ok((service, freeze.is_some()))
}

/// Key of the note that names a requester's pending request for a service.
fn pending_note_key(requester: &str, service: &str) -> String {
    format!("pending-of:{requester}:{service}")
}

/// Checks that the requester has no other pending request for the service,
/// counts the request against their shared rate limit and checks the
/// service's cooldown. Called after policy and the dry run passed, so that
/// typos during an incident cost nothing and get their own error.
pub(super) async fn admit(
    engine: &Engine,
    request: &Request,
    service: &Service,
) -> Result<(), EngineError> {
    let coordinator = engine.coordinator();
    // An index note names the requester's pending request for the service,
    // so this check reads one request instead of listing all of them.
    let note = pending_note_key(&request.user.to_string(), &service.name);
    if let Some(id) = coordinator.get_note(&note).await?
        && let Some(existing) = coordinator.get_pending(&id).await?
        && existing.state == PendingState::Pending
        && existing.expires_at > unix_now_ms()
    {
        return Err(EngineError::AlreadyPending {
            id: existing.id,
            summary: existing.summary,
        });
    }
    let limit = &engine.config().policy.rate_limit;
    let rate_key = format!("requester:{}", request.user);
    if let RateDecision::Limited { retry_after } = coordinator
        .check_rate(&rate_key, limit.requests, limit.per)
        .await?
    {
        return Err(EngineError::RateLimited { retry_after });
    }
    if let Some(remaining) = coordinator.cooldown_remaining(&service.name).await? {
        return Err(EngineError::Cooldown {
            service: service.name.clone(),
            remaining,
        });
    }
    Ok(())
}

/// Builds the preview of a change of `workload` from its current replicas to
/// `target`: resources, fit, PDBs and the lock. The caller fills in the
/// action, HPA note, approvals, steps and notes.
pub(super) async fn impact_of(
    engine: &Engine,
    request: &Request,
    service: &Service,
    kind: ScalableKind,
    workload: &WorkloadStatus,
    target: u32,
) -> Result<Impact, EngineError> {
    let coordinator = engine.coordinator();
    let cluster = &engine.inner.cluster;
    let capacity = cluster.node_capacity().await?;
    let pod_labels = workload
        .selector
        .split(',')
        .filter_map(|pair| pair.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let pdbs = cluster.pdbs_for(&service.namespace, &pod_labels).await?;
    let scope = lock_scope(engine, service);
    let mut lock = coordinator.lock_holder(&scope).await?.map(|l| {
        format!(
            "held by {} for {} (expires in {}s)",
            l.owner,
            l.operation,
            l.expires_in.as_secs()
        )
    });
    let queued = coordinator.list_queue(&scope).await?.len();
    if queued > 0 {
        let text = format!("{queued} approved operation(s) queued");
        lock = Some(match lock {
            Some(holder) => format!("{holder}; {text}"),
            None => text,
        });
    }
    let (cpu_delta, memory_delta) = preview::resource_delta(workload, workload.desired, target);
    Ok(Impact {
        action: String::new(),
        service: service.name.clone(),
        kind: kind.as_str().to_string(),
        namespace: service.namespace.clone(),
        workload: service.workload.clone(),
        current: workload.desired,
        ready: workload.ready,
        target,
        generation: workload.generation,
        hpa: None,
        cpu_delta_millis: cpu_delta,
        memory_delta_bytes: memory_delta,
        fit: preview::fit(&capacity, workload, workload.desired, target),
        pdb: preview::pdb_notes(&pdbs, workload.desired, target),
        lock,
        approvals_needed: 0,
        approvers: approvers_for(engine, request, service),
        risk: String::new(),
        // Set by `store_and_preview` when the request is stored.
        expires_at_ms: 0,
        steps: Vec::new(),
        notes: service.notes.clone(),
        dry_run: String::new(),
    })
}

/// Message of a dry run the API server accepted.
pub(super) const DRY_RUN_ACCEPTED: &str = "accepted by the API server (dryRun=All)";

pub(super) async fn request(
    engine: &Engine,
    request: &Request,
    service_name: &str,
    change: ReplicaChange,
    replies: &Replies,
) -> Result<(), EngineError> {
    let (service, frozen) = authorize(engine, request, service_name).await?;
    let kind = scalable_kind(&service)?;
    let config = engine.config();
    let cluster = &engine.inner.cluster;
    let mut workload = cluster
        .workload(kind, &service.namespace, &service.workload)
        .await?;
    let postgresql = service.kind == WorkloadKind::Postgresql;
    if postgresql {
        // The resource contains the requested count; the operator's
        // StatefulSet supplies pods, readiness and requests.
        let resource = cluster
            .postgresql(&service.namespace, &service.workload)
            .await?;
        workload.desired = resource.instances;
        workload.generation = resource.generation;
    }
    let hpa = match &service.hpa {
        Some(name) => cluster.hpa(&service.namespace, name).await?,
        None => None,
    };
    let decision = policy::evaluate_scale(
        config,
        &service,
        workload.desired,
        change,
        hpa.as_ref().map(|h| (h.min, h.max)),
        frozen,
    )?;
    let target = decision.target;

    let dry_run = if postgresql {
        cluster
            .set_postgresql_instances(&service.namespace, &service.workload, target, true)
            .await
    } else {
        cluster
            .set_replicas(kind, &service.namespace, &service.workload, target, true)
            .await
    };
    if let Err(error) = dry_run {
        return Err(EngineError::DryRunRejected {
            service: service.name.clone(),
            error: Box::new(error),
        });
    }
    admit(engine, request, &service).await?;

    let mut impact = impact_of(engine, request, &service, kind, &workload, target).await?;
    impact.action = format!("scale {} {} → {}", service.name, workload.desired, target);
    impact.hpa = hpa
        .as_ref()
        .map(|h| preview::hpa_note(&service.name, h, target));
    impact.approvals_needed = decision.approvals_needed;
    impact.risk = decision.risk.to_string();
    if postgresql {
        impact.kind = WorkloadKind::Postgresql.as_str().to_string();
    }
    impact.steps = match service.data_store {
        Some(DataStore::Cassandra) => preview::cassandra_steps(
            &service.workload,
            workload.desired,
            target,
            config.policy.rollout_timeout.as_secs(),
        ),
        Some(DataStore::Kafka) => preview::kafka_steps(
            &service.workload,
            workload.desired,
            target,
            config.policy.rollout_timeout.as_secs(),
        ),
        Some(DataStore::RedisCluster) => preview::redis_cluster_steps(
            &service.workload,
            workload.desired,
            target,
            config.policy.rollout_timeout.as_secs(),
        ),
        None if postgresql => preview::postgres_steps(
            &service.workload,
            target,
            config.policy.rollout_timeout.as_secs(),
        ),
        None => preview::scale_steps(
            kind,
            &service.workload,
            target,
            config.policy.rollout_timeout.as_secs(),
        ),
    };
    if let Some(note) = data_store_note(
        engine,
        &service,
        &workload.selector,
        workload.desired,
        target,
    )
    .await?
    {
        impact.notes.push(note);
    }
    impact.notes.extend(decision.reasons.iter().cloned());
    impact.dry_run = DRY_RUN_ACCEPTED.to_string();

    let payload = Operation::Scale(ScalePayload {
        service: service.name.clone(),
        namespace: service.namespace.clone(),
        workload: service.workload.clone(),
        from: workload.desired,
        to: target,
        generation: workload.generation,
        impact: impact.clone(),
    });
    store_and_preview(
        engine,
        request,
        &service,
        decision.approvals_needed,
        payload,
        impact,
        replies,
    )
    .await
}

/// Describes the state of a data store or PostgreSQL cluster beyond its
/// replicas, for previews and `status`: the Cassandra ring, the Kafka
/// brokers, the Redis Cluster or the PostgreSQL status. A Redis target that
/// cannot be reached in whole shards is an error.
pub(super) async fn data_store_note(
    engine: &Engine,
    service: &Service,
    selector: &str,
    replicas: u32,
    target: u32,
) -> Result<Option<String>, EngineError> {
    let note = match (service.kind, service.data_store) {
        (_, Some(DataStore::Cassandra)) => cassandra_ring_note(engine, service, replicas).await,
        (_, Some(DataStore::Kafka)) => kafka_brokers_note(engine, service, replicas).await,
        (_, Some(DataStore::RedisCluster)) => {
            redis_cluster_note(engine, service, selector, replicas, target).await?
        }
        (WorkloadKind::Postgresql, None) => {
            match engine
                .inner
                .cluster
                .postgresql(&service.namespace, &service.workload)
                .await
            {
                Ok(resource) if resource.phase.is_empty() => {
                    "Cluster status: not reported by the operator yet".to_string()
                }
                Ok(resource) => format!("Cluster status: {}", resource.phase),
                Err(error) => format!(
                    "Warning: reading postgresql {} failed: {error}",
                    service.workload
                ),
            }
        }
        _ => return Ok(None),
    };
    Ok(Some(note))
}

/// Describes the Cassandra ring for the preview. A ring that is not ready
/// is shown as a warning: the procedure checks it again and stops before
/// changing anything.
async fn cassandra_ring_note(engine: &Engine, service: &Service, replicas: u32) -> String {
    let seed = format!("{}-0", service.workload);
    match cassandra::ring(&engine.inner.cluster, &service.namespace, &seed).await {
        Ok(nodes) => match cassandra::ring_problem(&nodes, replicas) {
            None => format!("Ring: {}", cassandra::describe_ring(&nodes)),
            Some(problem) => format!(
                "Warning: {problem}. The procedure stops before changing anything unless the ring is healthy when it runs."
            ),
        },
        Err(error) => {
            tracing::warn!(%error, pod = %seed, "reading nodetool status for the preview failed");
            format!(
                "Warning: nodetool status in {seed} failed ({error}); the procedure checks the ring again before changing anything."
            )
        }
    }
}

/// Lists the Kafka brokers that respond for the preview, or a warning when
/// they are not the expected ones.
async fn kafka_brokers_note(engine: &Engine, service: &Service, replicas: u32) -> String {
    let seed = format!("{}-0", service.workload);
    match kafka::live_brokers(&engine.inner.cluster, &service.namespace, &seed).await {
        Ok(live) => match kafka::brokers_problem(&live, replicas) {
            None => format!("Brokers: {} respond", kafka::format_ids(&live)),
            Some(problem) => format!(
                "Warning: {problem}. The procedure stops before changing anything unless the brokers are as expected when it runs."
            ),
        },
        Err(error) => {
            tracing::warn!(%error, pod = %seed, "listing Kafka brokers for the preview failed");
            format!(
                "Warning: listing brokers in {seed} failed ({error}); the procedure checks them again before changing anything."
            )
        }
    }
}

/// Describes the Redis Cluster for the preview. A target that does not add
/// whole shards, or a scale-down, is rejected here, before anything is
/// stored.
async fn redis_cluster_note(
    engine: &Engine,
    service: &Service,
    selector: &str,
    replicas: u32,
    target: u32,
) -> Result<String, EngineError> {
    let cluster = &engine.inner.cluster;
    let seed_pod = format!("{}-0", service.workload);
    let read = async {
        let ip = redis_cluster::seed_ip(cluster, &service.namespace, &service.workload, selector)
            .await?;
        match ip {
            Some(ip) => redis_cluster::topology(
                cluster,
                &service.namespace,
                &seed_pod,
                &format!("{ip}:6379"),
            )
            .await
            .map(Some),
            None => Ok(None),
        }
    };
    match read.await {
        Ok(Some(topology)) => {
            if let Some(reason) = redis_cluster::target_problem(&topology, replicas, target) {
                return Err(EngineError::InvalidTarget {
                    service: service.name.clone(),
                    target,
                    reason,
                });
            }
            if !topology.covered || topology.empty_masters > 0 || topology.nodes() != replicas {
                return Ok(format!(
                    "Warning: {} with {replicas} pods in the StatefulSet; the procedure stops before changing anything unless --cluster check lists every pod, no empty master and all slots covered.",
                    topology.describe()
                ));
            }
            Ok(format!("Cluster: {}", topology.describe()))
        }
        Ok(None) => Ok(format!(
            "Warning: {seed_pod} has no IP address, so the cluster could not be checked; the procedure checks it again before changing anything."
        )),
        Err(error) => {
            tracing::warn!(%error, pod = %seed_pod, "reading the Redis Cluster for the preview failed");
            Ok(format!(
                "Warning: redis-cli --cluster check in {seed_pod} failed ({error}); the procedure checks the cluster again before changing anything."
            ))
        }
    }
}

/// Lists who may approve `request` for the preview: approvers on the
/// requester's platform, without the requester unless the service allows
/// self-approval.
fn approvers_for(engine: &Engine, request: &Request, service: &Service) -> Vec<String> {
    let mut approvers = policy::approver_names_on(engine.config(), request.user.platform);
    if !service.self_approval_allowed {
        let requester = request.user.to_string();
        approvers.retain(|name| *name != requester);
    }
    approvers
}

/// Stores a pending request for `operation`, audits it and sends the
/// preview. Shared by every operation that needs approval.
pub(super) async fn store_and_preview(
    engine: &Engine,
    request: &Request,
    service: &Service,
    approvals_needed: u32,
    operation: Operation,
    impact: Impact,
    replies: &Replies,
) -> Result<(), EngineError> {
    let now = unix_now_ms();
    let expires_at = now + engine.config().policy.approval_expiry.as_millis() as u64;
    let summary = impact.action.clone();
    let mut pending = PendingRequest {
        id: String::new(),
        requester: request.user.to_string(),
        service: service.name.clone(),
        summary: summary.clone(),
        approvals_needed,
        allow_self_approval: service.self_approval_allowed,
        created_at: now,
        expires_at,
        channel: request.channel.clone(),
        payload: serde_json::to_value(&operation)
            .map_err(|e| EngineError::Internal(e.to_string()))?,
        approvals: Vec::new(),
        state: PendingState::Pending,
    };
    store_with_new_id(engine, &mut pending).await?;
    engine
        .coordinator()
        .put_note(
            &pending_note_key(&pending.requester, &pending.service),
            &pending.id,
            engine.config().policy.approval_expiry,
        )
        .await?;

    engine
        .coordinator()
        .append_audit(&AuditEntry {
            at_ms: now,
            request_id: Some(pending.id.clone()),
            kind: AuditKind::Requested,
            service: Some(service.name.clone()),
            actor: request.user.to_string(),
            detail: summary,
            fencing_token: None,
        })
        .await?;
    tracing::info!(request_id = %pending.id, "pending request stored");
    let mut impact = impact;
    impact.expires_at_ms = expires_at as i64;
    let body = ReplyBody::Preview {
        request_id: pending.id.clone(),
        impact: Box::new(impact),
    };
    send(
        replies,
        Reply::new(&request.channel, Some(pending.id), body),
    )
    .await;
    Ok(())
}

async fn store_with_new_id(
    engine: &Engine,
    pending: &mut PendingRequest,
) -> Result<(), EngineError> {
    for _ in 0..REQUEST_ID_ATTEMPTS {
        pending.id = new_request_id();
        match engine.coordinator().put_pending(pending).await {
            Ok(()) => return Ok(()),
            Err(CoordError::DuplicateRequestId { .. }) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(EngineError::Internal(format!(
        "no unused request id after {REQUEST_ID_ATTEMPTS} attempts"
    )))
}
