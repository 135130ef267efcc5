//! Read-only commands (`status`, `locks`, `history`) and the freeze switch.

use std::fmt::Write as _;

use super::scale::{data_store_note, readable_kind};
use super::{Engine, Replies, Reply, ReplyBody, Request, send};
use crate::catalog::Service;
use crate::cluster::WorkloadStatus;
use crate::coordination::{AuditEntry, AuditKind, FreezeState, unix_now_ms};
use crate::policy;
use crate::reply::EngineError;

/// Entries shown by `history`.
const HISTORY_LENGTH: usize = 20;

async fn text(replies: &Replies, request: &Request, text: String) {
    send(
        replies,
        Reply::new(&request.channel, None, ReplyBody::Text(text)),
    )
    .await;
}

fn format_time(ms: u64) -> String {
    chrono::DateTime::from_timestamp_millis(ms as i64)
        .map(|t| t.format("%Y-%m-%d %H:%M:%S UTC").to_string())
        .unwrap_or_else(|| ms.to_string())
}

pub(super) async fn status(
    engine: &Engine,
    request: &Request,
    service: Option<String>,
    replies: &Replies,
) -> Result<(), EngineError> {
    let catalog = engine.catalog();
    let services: Vec<_> = match service {
        Some(name) => vec![catalog.resolve(&name)?.clone()],
        None => catalog.services().cloned().collect(),
    };
    let mut out = String::new();
    if let Some(freeze) = engine.coordinator().freeze_state().await? {
        let _ = writeln!(
            out,
            "FROZEN since {} by {}: {}",
            format_time(freeze.since),
            freeze.by,
            freeze.reason
        );
    }
    // The rows are read concurrently, so one slow read does not add up
    // across the catalog.
    let rows =
        futures::future::join_all(services.iter().map(|service| status_row(engine, service))).await;
    for (row, _) in &rows {
        let _ = writeln!(out, "{row}");
    }
    // One service also gets the state of its data store, which runs a tool
    // in a pod and is too slow for every row.
    if let ([service], [(_, Some(workload))]) = (services.as_slice(), rows.as_slice())
        && let Ok(Some(note)) = data_store_note(
            engine,
            service,
            &workload.selector,
            workload.desired,
            workload.desired,
        )
        .await
    {
        let _ = writeln!(out, "  {note}");
    }
    text(replies, request, out.trim_end().to_string()).await;
    Ok(())
}

/// Prints the capacity table of the catalog: kind, safe and recommended
/// ranges and HPA of every service, then its notes.
pub(super) async fn capacity(
    engine: &Engine,
    request: &Request,
    replies: &Replies,
) -> Result<(), EngineError> {
    let mut out = format!(
        "{:<22} {:<12} {:>6} {:>12}  {}\n",
        "service", "kind", "safe", "recommended", "hpa"
    );
    for service in engine.catalog().services() {
        let _ = writeln!(
            out,
            "{:<22} {:<12} {:>6} {:>12}  {}",
            service.name,
            service.kind.as_str(),
            format!("{}-{}", service.safe.min, service.safe.max),
            format!("{}-{}", service.recommended.min, service.recommended.max),
            service.hpa.as_deref().unwrap_or("none")
        );
    }
    out.push_str("live replicas: `status`; notes per service: `scale <service> <n>` shows them in the preview");
    text(replies, request, out).await;
    Ok(())
}

/// Formats the status row of a service and returns the workload it read,
/// if the read succeeded.
async fn status_row(engine: &Engine, service: &Service) -> (String, Option<WorkloadStatus>) {
    let kind = readable_kind(service);
    let cluster = &engine.inner.cluster;
    let workload = match cluster
        .workload(kind, &service.namespace, &service.workload)
        .await
    {
        Ok(workload) => workload,
        Err(error) => return (format!("{:<22} unreadable: {error}", service.name), None),
    };
    let hpa = match &service.hpa {
        Some(name) => match cluster.hpa(&service.namespace, name).await {
            Ok(Some(h)) => format!("hpa {}-{}", h.min, h.max),
            Ok(None) => "hpa missing".to_string(),
            Err(error) => format!("hpa unreadable ({error})"),
        },
        None => "no hpa".to_string(),
    };
    let row = format!(
        "{:<22} {}/{} ready, {} available, {hpa}, safe {}-{}, recommended {}-{}",
        service.name,
        workload.ready,
        workload.desired,
        workload.available,
        service.safe.min,
        service.safe.max,
        service.recommended.min,
        service.recommended.max
    );
    (row, Some(workload))
}

pub(super) async fn locks(
    engine: &Engine,
    request: &Request,
    replies: &Replies,
) -> Result<(), EngineError> {
    let coordinator = engine.coordinator();
    let locks = coordinator.list_locks().await?;
    let mut out = String::new();
    if locks.is_empty() {
        out.push_str("no operation lock is held");
    }
    for lock in &locks {
        let _ = writeln!(
            out,
            "lock {}: {} by {} since {} (token {}, expires in {}s)",
            lock.scope,
            lock.operation,
            lock.owner,
            format_time(lock.since),
            lock.token,
            lock.expires_in.as_secs()
        );
        for entry in coordinator.list_queue(&lock.scope).await? {
            let _ = writeln!(
                out,
                "  queued {}: {} by {}",
                entry.position, entry.operation, entry.owner
            );
        }
    }
    let pending = coordinator.list_pending().await?;
    if !pending.is_empty() {
        let _ = writeln!(out, "\npending approval:");
        for p in pending {
            let _ = writeln!(
                out,
                "  {} {} by {} ({} of {} approvals, expires {})",
                p.id,
                p.summary,
                p.requester,
                p.approvals.len(),
                p.approvals_needed,
                format_time(p.expires_at)
            );
        }
    }
    if coordinator.is_local() {
        out.push_str("\nnote: in-memory coordination, so these locks cover this process only");
    }
    text(replies, request, out.trim_end().to_string()).await;
    Ok(())
}

pub(super) async fn history(
    engine: &Engine,
    request: &Request,
    service: Option<String>,
    replies: &Replies,
) -> Result<(), EngineError> {
    let service = match service {
        Some(name) => Some(engine.catalog().resolve(&name)?.name.clone()),
        None => None,
    };
    let entries = engine
        .coordinator()
        .read_audit(service.as_deref(), HISTORY_LENGTH)
        .await?;
    let mut out = String::new();
    if entries.is_empty() {
        out.push_str("no audit entries yet");
    }
    for e in entries {
        let _ = writeln!(
            out,
            "{} {:<10} {:<8} {} {}: {}",
            format_time(e.at_ms),
            e.kind,
            e.request_id.as_deref().unwrap_or("-"),
            e.service.as_deref().unwrap_or("-"),
            e.actor,
            e.detail
        );
    }
    text(replies, request, out.trim_end().to_string()).await;
    Ok(())
}

pub(super) async fn freeze(
    engine: &Engine,
    request: &Request,
    reason: String,
    replies: &Replies,
) -> Result<(), EngineError> {
    policy::check_admin(engine.config(), &request.user, &request.roles)?;
    let reason = super::sanitize_text(&reason);
    let state = FreezeState {
        reason: reason.clone(),
        by: request.user.to_string(),
        since: unix_now_ms(),
    };
    let coordinator = engine.coordinator();
    coordinator.set_freeze(&state).await?;
    coordinator
        .append_audit(&AuditEntry {
            at_ms: state.since,
            request_id: None,
            kind: AuditKind::Freeze,
            service: None,
            actor: state.by.clone(),
            detail: reason.clone(),
            fencing_token: None,
        })
        .await?;
    let approvals = engine.config().policy.approvals.freeze;
    let notice = format!(
        "frozen by {}: {reason}. Only admins may request changes now, and each needs {approvals} approvals.",
        state.by
    );
    send(
        replies,
        Reply::new(&request.channel, None, ReplyBody::Notice(notice)),
    )
    .await;
    Ok(())
}

pub(super) async fn unfreeze(
    engine: &Engine,
    request: &Request,
    replies: &Replies,
) -> Result<(), EngineError> {
    policy::check_admin(engine.config(), &request.user, &request.roles)?;
    let coordinator = engine.coordinator();
    let Some(previous) = coordinator.freeze_state().await? else {
        text(replies, request, "not frozen; nothing to do".to_string()).await;
        return Ok(());
    };
    coordinator.clear_freeze().await?;
    coordinator
        .append_audit(&AuditEntry {
            at_ms: unix_now_ms(),
            request_id: None,
            kind: AuditKind::Unfreeze,
            service: None,
            actor: request.user.to_string(),
            detail: format!("ended freeze by {}: {}", previous.by, previous.reason),
            fencing_token: None,
        })
        .await?;
    let notice = format!("unfrozen by {}", request.user);
    send(
        replies,
        Reply::new(&request.channel, None, ReplyBody::Notice(notice)),
    )
    .await;
    Ok(())
}
