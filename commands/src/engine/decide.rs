//! `approve`, `reject` and `cancel`. Who may decide is checked here from the
//! configuration; the decision itself is one atomic step in the coordination
//! store, so a double click or two replicas never run a request twice.

use super::{Decided, Engine, Replies, Reply, ReplyBody, Request, execute, send};
use crate::coordination::{
    AuditEntry, AuditKind, Decision, DecisionOutcome, PendingRequest, unix_now_ms,
};
use crate::identity::Identity;
use crate::policy;
use crate::reply::EngineError;

/// Finds the request a decision is about: the given id, or the only pending
/// request in the channel that `user` did not make.
async fn pending_for(
    engine: &Engine,
    request: &Request,
    id: Option<String>,
    verb: &'static str,
    exclude_own: bool,
) -> Result<PendingRequest, EngineError> {
    let coordinator = engine.coordinator();
    if let Some(id) = id {
        return coordinator
            .get_pending(&id)
            .await?
            .ok_or(EngineError::UnknownRequest { id });
    }
    let user = request.user.to_string();
    let in_channel: Vec<PendingRequest> = coordinator
        .list_pending()
        .await?
        .into_iter()
        .filter(|p| p.channel == request.channel)
        .collect();
    // An approver means someone else's request. When only the user's own
    // request is pending, it is picked, so that the reply explains why it
    // cannot be approved instead of reporting that nothing is pending.
    let others: Vec<PendingRequest> = in_channel
        .iter()
        .filter(|p| !exclude_own || p.requester != user || p.allow_self_approval)
        .cloned()
        .collect();
    let candidates = if others.is_empty() {
        in_channel
    } else {
        others
    };
    match candidates.len() {
        0 => Err(EngineError::NothingPending {
            channel: request.channel.clone(),
            verb,
        }),
        1 => Ok(candidates.into_iter().next().expect("one candidate")),
        _ => Err(EngineError::AmbiguousRequest {
            ids: candidates
                .iter()
                .map(|p| format!("{} ({})", p.id, p.summary))
                .collect(),
        }),
    }
}

fn requester_identity(pending: &PendingRequest) -> Result<Identity, EngineError> {
    pending.requester.parse().map_err(|_| {
        EngineError::Internal(format!(
            "stored requester {:?} is not an identity",
            pending.requester
        ))
    })
}

async fn audit(
    engine: &Engine,
    pending: &PendingRequest,
    kind: AuditKind,
    actor: &str,
    detail: String,
) -> Result<(), EngineError> {
    engine
        .coordinator()
        .append_audit(&AuditEntry {
            at_ms: unix_now_ms(),
            request_id: Some(pending.id.clone()),
            kind,
            service: Some(pending.service.clone()),
            actor: actor.to_string(),
            detail,
            fencing_token: None,
        })
        .await?;
    Ok(())
}

pub(super) async fn approve(
    engine: &Engine,
    request: &Request,
    id: Option<String>,
    replies: &Replies,
) -> Result<(), EngineError> {
    let pending = pending_for(engine, request, id, "approve", true).await?;
    let service = engine.catalog().resolve(&pending.service)?.clone();
    let requester = requester_identity(&pending)?;
    policy::check_approver(
        engine.config(),
        &request.user,
        &request.roles,
        &requester,
        &service,
    )
    .map_err(|e| EngineError::Policy {
        request_id: Some(pending.id.clone()),
        error: e,
    })?;

    let by = request.user.to_string();
    let outcome = engine
        .coordinator()
        .decide(
            &pending.id,
            Decision::Approve { by: by.clone() },
            unix_now_ms(),
        )
        .await?;
    let reply = |text: String| {
        Reply::new(
            &request.channel,
            Some(pending.id.clone()),
            ReplyBody::Text(text),
        )
    };
    match outcome {
        DecisionOutcome::Approved { request: approved } => {
            audit(
                engine,
                &approved,
                AuditKind::Approved,
                &by,
                approved.summary.clone(),
            )
            .await?;
            let approvers: Vec<&str> = approved.approvals.iter().map(|a| a.by.as_str()).collect();
            let text = format!(
                "approved by {}: {}",
                approvers.join(" and "),
                approved.summary
            );
            send(
                replies,
                Reply::new(
                    &request.channel,
                    Some(approved.id.clone()),
                    ReplyBody::Decided {
                        decision: Decided::Approved,
                        text,
                    },
                ),
            )
            .await;
            execute::spawn(engine, approved, replies.clone()).await;
            Ok(())
        }
        DecisionOutcome::Recorded { approvals, needed } => {
            audit(
                engine,
                &pending,
                AuditKind::Approved,
                &by,
                format!("approval {approvals} of {needed}"),
            )
            .await?;
            send(
                replies,
                reply(format!(
                    "approval {approvals} of {needed} recorded from {by}; {} more needed from another approver",
                    needed - approvals
                )),
            )
            .await;
            Ok(())
        }
        other => Err(refused(engine, &pending, other, replies).await),
    }
}

pub(super) async fn reject(
    engine: &Engine,
    request: &Request,
    id: Option<String>,
    reason: Option<String>,
    replies: &Replies,
) -> Result<(), EngineError> {
    let pending = pending_for(engine, request, id, "reject", true).await?;
    let service = engine.catalog().resolve(&pending.service)?.clone();
    let requester = requester_identity(&pending)?;
    if requester == request.user {
        return Err(EngineError::UseCancel { id: pending.id });
    }
    policy::check_approver(
        engine.config(),
        &request.user,
        &request.roles,
        &requester,
        &service,
    )
    .map_err(|e| EngineError::Policy {
        request_id: Some(pending.id.clone()),
        error: e,
    })?;
    let by = request.user.to_string();
    let reason = reason
        .map(|r| super::sanitize_text(&r))
        .unwrap_or_else(|| "no reason given".to_string());
    let decision = Decision::Reject {
        by: by.clone(),
        reason: reason.clone(),
    };
    match engine
        .coordinator()
        .decide(&pending.id, decision, unix_now_ms())
        .await?
    {
        DecisionOutcome::Rejected { request: rejected } => {
            audit(engine, &rejected, AuditKind::Rejected, &by, reason.clone()).await?;
            let text = format!(
                "rejected by {by}: {} ({reason}); nothing was changed",
                rejected.summary
            );
            send(
                replies,
                Reply::new(
                    &request.channel,
                    Some(rejected.id),
                    ReplyBody::Decided {
                        decision: Decided::Rejected,
                        text,
                    },
                ),
            )
            .await;
            Ok(())
        }
        other => Err(refused(engine, &pending, other, replies).await),
    }
}

pub(super) async fn cancel(
    engine: &Engine,
    request: &Request,
    id: Option<String>,
    replies: &Replies,
) -> Result<(), EngineError> {
    let pending = match id {
        Some(id) => pending_for(engine, request, Some(id), "cancel", false).await?,
        None => {
            let own: Vec<PendingRequest> = engine
                .coordinator()
                .list_pending()
                .await?
                .into_iter()
                .filter(|p| p.requester == request.user.to_string())
                .collect();
            match own.len() {
                0 => return Err(EngineError::NoOwnPending),
                1 => own.into_iter().next().expect("one request"),
                _ => {
                    return Err(EngineError::AmbiguousRequest {
                        ids: own
                            .iter()
                            .map(|p| format!("{} ({})", p.id, p.summary))
                            .collect(),
                    });
                }
            }
        }
    };
    let by = request.user.to_string();
    match engine
        .coordinator()
        .decide(
            &pending.id,
            Decision::Cancel { by: by.clone() },
            unix_now_ms(),
        )
        .await?
    {
        DecisionOutcome::Cancelled { request: cancelled } => {
            audit(
                engine,
                &cancelled,
                AuditKind::Cancelled,
                &by,
                cancelled.summary.clone(),
            )
            .await?;
            let text = format!(
                "cancelled by {by}: {}; nothing was changed",
                cancelled.summary
            );
            send(
                replies,
                Reply::new(
                    &request.channel,
                    Some(cancelled.id),
                    ReplyBody::Decided {
                        decision: Decided::Cancelled,
                        text,
                    },
                ),
            )
            .await;
            Ok(())
        }
        other => Err(refused(engine, &pending, other, replies).await),
    }
}

/// Audits and announces an expiry found by this decision (the periodic
/// sweep does not see requests that `decide` already marked expired), then
/// turns the outcome into the error shown to the user.
async fn refused(
    engine: &Engine,
    pending: &PendingRequest,
    outcome: DecisionOutcome,
    replies: &Replies,
) -> EngineError {
    if let DecisionOutcome::Expired { request: expired } = &outcome {
        let detail = format!("{} expired without enough approvals", expired.summary);
        if let Err(error) = audit(engine, expired, AuditKind::Expired, "scalebot", detail).await {
            tracing::warn!(%error, request.id = %expired.id, "expiry not audited");
        }
        let text = super::expiry::expiry_text(expired);
        let reply = Reply::new(
            &expired.channel,
            Some(expired.id.clone()),
            ReplyBody::Decided {
                decision: Decided::Expired,
                text,
            },
        );
        send(replies, reply).await;
    }
    outcome_error(pending, outcome)
}

/// Turns the outcomes that change nothing into the error shown to the user.
fn outcome_error(pending: &PendingRequest, outcome: DecisionOutcome) -> EngineError {
    let id = pending.id.clone();
    match outcome {
        DecisionOutcome::Unknown => EngineError::UnknownRequest { id },
        DecisionOutcome::Expired { .. } => EngineError::Expired { id },
        DecisionOutcome::AlreadyDecided { state, by } => EngineError::AlreadyDecided {
            id,
            state: state.name().to_string(),
            by,
        },
        DecisionOutcome::SelfApproval => EngineError::Policy {
            request_id: Some(id),
            error: policy::PolicyError::SelfApproval,
        },
        DecisionOutcome::DuplicateApprover => EngineError::DuplicateApprover { id },
        DecisionOutcome::NotRequester => EngineError::NotRequester {
            id,
            requester: pending.requester.clone(),
        },
        DecisionOutcome::Approved { .. }
        | DecisionOutcome::Recorded { .. }
        | DecisionOutcome::Rejected { .. }
        | DecisionOutcome::Cancelled { .. } => {
            EngineError::Internal(format!("unexpected decision outcome for {id}"))
        }
    }
}
