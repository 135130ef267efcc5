//! The periodic sweep. It announces pending requests that expired without a
//! decision and records them in the audit log, and it reports procedures
//! left unfinished by a bot that died.

use std::time::Duration;

use super::{Decided, Engine, Replies, Reply, ReplyBody, send};
use crate::coordination::{AuditEntry, AuditKind, PendingRequest, unix_now_ms};

/// Builds the announcement of a request that expired without enough approvals.
pub(super) fn expiry_text(request: &PendingRequest) -> String {
    format!(
        "request {} ({}) expired with {} of {} approvals; nothing was changed",
        request.id,
        request.summary,
        request.approvals.len(),
        request.approvals_needed
    )
}

/// Interval between two sweeps for expired requests.
pub const EXPIRY_SWEEP_INTERVAL: Duration = Duration::from_secs(5);

/// Sweeps every `interval` until the task is aborted. Sweep failures
/// (Redis down) are logged once per outage and retried.
pub async fn sweep_expired(engine: Engine, replies: Replies, interval: Duration) {
    let mut failing = false;
    loop {
        tokio::time::sleep(interval).await;
        let expired = match engine.coordinator().expire_due(unix_now_ms()).await {
            Ok(expired) => {
                if failing {
                    tracing::info!("expiry sweep works again");
                }
                failing = false;
                expired
            }
            Err(error) => {
                if !failing {
                    tracing::warn!(%error, "expiry sweep failed; retrying every {interval:?}");
                }
                failing = true;
                continue;
            }
        };
        engine.forget_idle_users();
        if let Err(error) = super::recovery::report_interrupted(&engine, &replies).await {
            tracing::warn!(%error, "check for interrupted procedures failed");
        }
        for request in expired {
            let entry = AuditEntry {
                at_ms: unix_now_ms(),
                request_id: Some(request.id.clone()),
                kind: AuditKind::Expired,
                service: Some(request.service.clone()),
                actor: "scalebot".to_string(),
                detail: format!("{} expired without enough approvals", request.summary),
                fencing_token: None,
            };
            if let Err(error) = engine.coordinator().append_audit(&entry).await {
                tracing::warn!(%error, request.id = %request.id, "expiry not audited");
            }
            let text = expiry_text(&request);
            let reply = Reply::new(
                &request.channel,
                Some(request.id.clone()),
                ReplyBody::Decided {
                    decision: Decided::Expired,
                    text,
                },
            );
            send(&replies, reply).await;
        }
    }
}
