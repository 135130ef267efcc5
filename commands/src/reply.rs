//! Errors of the request path and the one function that turns them into
//! chat text: known cases get specific text with the expected form,
//! anything else gets "unexpected error, reference <id>" and a log line.

use std::time::Duration;

use thiserror::Error;

use crate::catalog::UnknownService;
use crate::cluster::ClusterError;
use crate::coordination::CoordError;
use crate::grammar::UsageError;
use crate::policy::PolicyError;
use crate::procedures::StepError;

#[derive(Debug, Error)]
pub enum EngineError {
    #[error(transparent)]
    Usage(#[from] UsageError),
    #[error(transparent)]
    UnknownService(#[from] UnknownService),
    #[error("{error}")]
    Policy {
        request_id: Option<String>,
        error: PolicyError,
    },
    #[error(transparent)]
    Coordination(#[from] CoordError),
    #[error(transparent)]
    Cluster(Box<ClusterError>),
    #[error(
        "the API server rejected the change to {service} in a dry run, so no request was created: {error}"
    )]
    DryRunRejected {
        service: String,
        error: Box<ClusterError>,
    },
    #[error("{service}: {error}")]
    Procedure {
        service: String,
        error: Box<StepError>,
    },
    #[error("unknown or expired request {id}: check the id with `locks`, or make a new request")]
    UnknownRequest { id: String },
    #[error("request {id} expired before this decision; nothing was changed. Make a new request.")]
    Expired { id: String },
    #[error("request {id} is already {state}{}; this decision changed nothing", by.as_ref().map(|b| format!(" by {b}")).unwrap_or_default())]
    AlreadyDecided {
        id: String,
        state: String,
        by: Option<String>,
    },
    #[error(
        "you already have a pending request for this service: {id} ({summary}). Withdraw it with `cancel {id}` before asking again."
    )]
    AlreadyPending { id: String, summary: String },
    #[error("you have already approved request {id}; it needs another approver")]
    DuplicateApprover { id: String },
    #[error(
        "only the requester {requester} may cancel request {id}; approvers use `reject {id} <reason>`"
    )]
    NotRequester { id: String, requester: String },
    #[error("you made request {id}: withdraw it with `cancel {id}`")]
    UseCancel { id: String },
    #[error(
        "no pending request in {channel} to {verb}; `locks` lists the pending requests and their ids"
    )]
    NothingPending { channel: String, verb: &'static str },
    #[error(
        "you have no pending request of your own to cancel; only its requester can cancel a request, and approvers can `reject` it"
    )]
    NoOwnPending,
    #[error("several requests are pending, name one: {}", ids.join(", "))]
    AmbiguousRequest { ids: Vec<String> },
    #[error("rate limit reached: try again in {}s", retry_after.as_secs().max(1))]
    RateLimited { retry_after: Duration },
    #[error("{service} was scaled recently: its cooldown ends in {}s", remaining.as_secs().max(1))]
    Cooldown {
        service: String,
        remaining: Duration,
    },
    #[error(
        "changes were frozen by {by} after approval ({reason}); nothing was changed. Ask an admin to request it again."
    )]
    FrozenBeforeRun { reason: String, by: String },
    #[error(
        "request {id} was approved but not started, because the bot is shutting down; nothing was changed. Make a new request when the bot is back."
    )]
    ShuttingDown { id: String },
    #[error("cannot scale {service} to {target}: {reason}")]
    InvalidTarget {
        service: String,
        target: u32,
        reason: String,
    },
    #[error("not supported yet: {what}. Instead, {instead}")]
    NotSupported { what: String, instead: String },
    #[error(
        "request {id} is approved but did not start: no procedure slot of this bot process became free within {}s. Make a new request.",
        waited.as_secs()
    )]
    NoProcedureSlot { id: String, waited: Duration },
    #[error("message is {bytes} bytes long; commands are at most {max} bytes. Try `help`.")]
    MessageTooLong { bytes: usize, max: usize },
    #[error("HPA {hpa} not found in namespace {namespace}; check the catalog's hpa name")]
    HpaNotFound { hpa: String, namespace: String },
    #[error("internal error: {0}")]
    Internal(String),
}

impl From<ClusterError> for EngineError {
    fn from(error: ClusterError) -> Self {
        Self::Cluster(Box::new(error))
    }
}

impl From<PolicyError> for EngineError {
    fn from(error: PolicyError) -> Self {
        Self::Policy {
            request_id: None,
            error,
        }
    }
}

impl EngineError {
    /// Returns the pending request the error is about, for threading the reply.
    pub fn request_id(&self) -> Option<String> {
        match self {
            Self::Policy { request_id, .. } => request_id.clone(),
            Self::UnknownRequest { id }
            | Self::Expired { id }
            | Self::AlreadyDecided { id, .. }
            | Self::DuplicateApprover { id }
            | Self::NotRequester { id, .. }
            | Self::UseCancel { id } => Some(id.clone()),
            _ => None,
        }
    }
}

/// Turns an error into the text shown to the user. `reference` ties the chat
/// message to the log line of an unexpected error.
pub fn describe(error: &EngineError, reference: &str) -> String {
    match error {
        EngineError::Coordination(e) if e.is_unavailable() => {
            tracing::warn!(error = %e, "coordination store unavailable");
            "Redis is unavailable, so no request is accepted or executed (fail closed). Retry when it is back; the bot reconnects on its own.".to_string()
        }
        EngineError::Coordination(e) => {
            tracing::warn!(error = ?e, reference, "coordination error");
            format!("unexpected error, reference {reference}")
        }
        EngineError::Internal(detail) => {
            tracing::warn!(detail, reference, "internal error");
            format!("unexpected error, reference {reference}")
        }
        EngineError::Cluster(cluster)
            if matches!(
                **cluster,
                ClusterError::Request { .. } | ClusterError::Timeout { .. }
            ) =>
        {
            tracing::warn!(error = %error, reference, "Kubernetes API unreachable");
            format!(
                "{error}. The Kubernetes API server is unreachable or slow; nothing was changed by this request."
            )
        }
        other => other.to_string(),
    }
}
