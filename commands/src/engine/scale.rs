//! `scale <service> <n|+k|-k>`: authorize, evaluate against the catalog and
//! the live HPA, dry-run the change, build the impact preview and store the
//! pending request.

use serde::{Deserialize, Serialize};

use super::{Engine, Replies, Reply, ReplyBody, Request, send};
use crate::catalog::{Service, WorkloadKind};
use crate::cluster::ScalableKind;
use crate::coordination::{
    AuditEntry, AuditKind, CoordError, PendingRequest, PendingState, RateDecision, new_request_id,
    unix_now_ms,
};
use crate::grammar::ReplicaChange;
use crate::policy;
use crate::preview::{self, Impact};
use crate::reply::EngineError;

/// Attempts at finding an unused request id before giving up.
const REQUEST_ID_ATTEMPTS: usize = 5;

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

/// Returns the workload kind whose replicas `status` and reports read, or
/// `None` for kinds without a scale subresource.
pub(crate) fn readable_kind(service: &Service) -> Option<ScalableKind> {
    match service.kind {
        WorkloadKind::Deployment => Some(ScalableKind::Deployment),
        WorkloadKind::StatefulSet => Some(ScalableKind::StatefulSet),
        WorkloadKind::Postgresql => None,
    }
}

/// Returns the workload kind that the chat `scale` procedure changes.
/// Only Deployments have a procedure so far.
pub(crate) fn scalable_kind(service: &Service) -> Result<ScalableKind, EngineError> {
    match service.kind {
        WorkloadKind::Deployment => Ok(ScalableKind::Deployment),
        other => Err(EngineError::NotSupported {
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

pub(super) async fn request(
    engine: &Engine,
    request: &Request,
    service_name: &str,
    change: ReplicaChange,
    replies: &Replies,
) -> Result<(), EngineError> {
    let coordinator = engine.coordinator();
    let config = engine.config();
    let freeze = coordinator.freeze_state().await?;
    policy::can_request(config, &request.user, &request.roles, freeze.as_ref())?;
    let service = engine.catalog().resolve(service_name)?.clone();
    let kind = scalable_kind(&service)?;
    tracing::Span::current().record("service", service.name.as_str());

    let requester = request.user.to_string();
    let duplicate = coordinator
        .list_pending()
        .await?
        .into_iter()
        .find(|p| p.requester == requester && p.service == service.name);
    if let Some(existing) = duplicate {
        return Err(EngineError::AlreadyPending {
            id: existing.id,
            summary: existing.summary,
        });
    }

    let cluster = &engine.inner.cluster;
    let workload = cluster
        .workload(kind, &service.namespace, &service.workload)
        .await?;
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
        freeze.is_some(),
    )?;
    let target = decision.target;

    let dry_run = match cluster
        .set_replicas(kind, &service.namespace, &service.workload, target, true)
        .await
    {
        Ok(()) => "accepted by the API server (dryRun=All)".to_string(),
        Err(error) => {
            return Err(EngineError::DryRunRejected {
                service: service.name.clone(),
                error: Box::new(error),
            });
        }
    };

    // Only requests that pass policy and the dry run count against the
    // requester's rate limit, so typos during an incident cost nothing.
    let limit = &config.policy.rate_limit;
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

    let capacity = cluster.node_capacity().await?;
    let pod_labels = workload
        .selector
        .split(',')
        .filter_map(|pair| pair.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let pdbs = cluster.pdbs_for(&service.namespace, &pod_labels).await?;
    let scope = lock_scope(engine, &service);
    let lock = coordinator.lock_holder(&scope).await?.map(|l| {
        format!(
            "held by {} for {} (expires in {}s)",
            l.owner,
            l.operation,
            l.expires_in.as_secs()
        )
    });
    let queued = coordinator.list_queue(&scope).await?.len();

    let now = unix_now_ms();
    let expires_at = now + config.policy.approval_expiry.as_millis() as u64;
    let (cpu_delta, memory_delta) = preview::resource_delta(&workload, workload.desired, target);
    let mut lock_text = lock;
    if queued > 0 {
        let text = format!("{queued} approved operation(s) queued");
        lock_text = Some(match lock_text {
            Some(holder) => format!("{holder}; {text}"),
            None => text,
        });
    }
    let impact = Impact {
        service: service.name.clone(),
        kind: kind.as_str().to_string(),
        namespace: service.namespace.clone(),
        workload: service.workload.clone(),
        current: workload.desired,
        ready: workload.ready,
        target,
        generation: workload.generation,
        hpa: hpa
            .as_ref()
            .map(|h| preview::hpa_note(&service.name, h, target)),
        cpu_delta_millis: cpu_delta,
        memory_delta_bytes: memory_delta,
        fit: preview::fit(&capacity, &workload, workload.desired, target),
        pdb: preview::pdb_notes(&pdbs, workload.desired, target),
        lock: lock_text,
        approvals_needed: decision.approvals_needed,
        approvers: policy::approver_names(config),
        risk: decision.risk.to_string(),
        expires_at_ms: expires_at as i64,
        steps: preview::scale_steps(
            kind,
            &service.workload,
            target,
            config.policy.rollout_timeout.as_secs(),
        ),
        notes: service
            .notes
            .iter()
            .cloned()
            .chain(decision.reasons.iter().cloned())
            .collect(),
        dry_run,
    };

    let payload = ScalePayload {
        service: service.name.clone(),
        namespace: service.namespace.clone(),
        workload: service.workload.clone(),
        from: workload.desired,
        to: target,
        generation: workload.generation,
        impact: impact.clone(),
    };
    let summary = format!("scale {} {} → {}", service.name, workload.desired, target);
    let mut pending = PendingRequest {
        id: String::new(),
        requester: request.user.to_string(),
        service: service.name.clone(),
        summary: summary.clone(),
        approvals_needed: decision.approvals_needed,
        allow_self_approval: service.self_approval_allowed,
        created_at: now,
        expires_at,
        channel: request.channel.clone(),
        payload: serde_json::to_value(&payload)
            .map_err(|e| EngineError::Internal(e.to_string()))?,
        approvals: Vec::new(),
        state: PendingState::Pending,
    };
    store_with_new_id(engine, &mut pending).await?;

    coordinator
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
    tracing::info!(request_id = %pending.id, target, "pending request stored");
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
