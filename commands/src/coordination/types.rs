//! Values that the coordination store takes and returns. None of them does I/O.

use std::fmt;
use std::str::FromStr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rand::Rng;
use serde::{Deserialize, Serialize};

use super::CoordError;

/// Timeouts and intervals of a [`super::Coordinator`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CoordinatorOptions {
    /// Maximum time for one Redis command, including a wait for reconnection.
    /// A command that takes longer fails with [`CoordError::Unavailable`].
    /// The memory store ignores it.
    pub command_timeout: Duration,
    /// Interval at which a queued waiter checks whether it may take the lock.
    pub queue_poll_interval: Duration,
    /// Lifetime of a queued waiter's heartbeat. Each poll renews it, so a
    /// waiter that stops polling for this long (its process died) is dropped
    /// from the queue. Must exceed `queue_poll_interval + command_timeout`,
    /// otherwise one slow poll evicts a live waiter.
    pub queue_heartbeat_ttl: Duration,
    /// How long a decided or expired pending request stays readable, so that a
    /// late click gets "already approved by X" instead of "unknown request".
    pub decided_retention: Duration,
}

impl Default for CoordinatorOptions {
    fn default() -> Self {
        Self {
            command_timeout: Duration::from_secs(2),
            queue_poll_interval: Duration::from_millis(200),
            queue_heartbeat_ttl: Duration::from_secs(5),
            decided_retention: Duration::from_secs(24 * 60 * 60),
        }
    }
}

impl CoordinatorOptions {
    /// Checks that every duration is positive and that a live waiter cannot
    /// lose its heartbeat between two polls.
    pub fn validate(&self) -> Result<(), CoordError> {
        let positive = [
            ("command_timeout", self.command_timeout),
            ("queue_poll_interval", self.queue_poll_interval),
            ("queue_heartbeat_ttl", self.queue_heartbeat_ttl),
            ("decided_retention", self.decided_retention),
        ];
        for (name, value) in positive {
            if value.is_zero() {
                return Err(CoordError::InvalidOption {
                    name,
                    reason: "must be greater than zero".to_string(),
                });
            }
        }
        let poll_cycle = self.queue_poll_interval + self.command_timeout;
        if self.queue_heartbeat_ttl <= poll_cycle {
            return Err(CoordError::InvalidOption {
                name: "queue_heartbeat_ttl",
                reason: format!(
                    "{:?} must exceed queue_poll_interval + command_timeout ({poll_cycle:?})",
                    self.queue_heartbeat_ttl
                ),
            });
        }
        Ok(())
    }
}

/// Proof that this process holds the operation lock of `scope`.
///
/// Dropping the guard does not release the lock: call
/// [`super::Coordinator::release_lock`], or the lock expires with its TTL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LockGuard {
    pub scope: String,
    pub owner: String,
    /// Fencing token: strictly greater than the token of every earlier holder
    /// of this scope, so a write tagged with it can be ordered after theirs.
    pub token: u64,
    /// Unix time in milliseconds.
    pub acquired_at: u64,
}

/// The current holder of an operation lock, for display.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LockInfo {
    pub scope: String,
    pub owner: String,
    /// Request id and summary of the operation that holds the lock.
    pub operation: String,
    pub token: u64,
    /// Unix time in milliseconds when the lock was taken.
    pub since: u64,
    /// Time left before the lock expires unless its holder renews it.
    pub expires_in: Duration,
}

/// A waiter's place in the FIFO queue of a lock scope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueuePosition {
    /// 1 for the waiter that takes the lock next.
    pub position: usize,
    /// Number of waiters in the queue, this one included.
    pub queue_len: usize,
    /// Owner of the waiter directly ahead, if any.
    pub ahead: Option<String>,
    /// Owner of the lock at the time of the poll, if it is held.
    pub holder: Option<String>,
}

/// One waiter in a lock queue, as shown by the `locks` command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueEntry {
    /// 1 for the waiter that takes the lock next.
    pub position: usize,
    pub owner: String,
    pub operation: String,
    /// Unix time in milliseconds when the waiter joined the queue.
    pub enqueued_at: u64,
}

/// A request waiting for approval, shared by all replicas.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PendingRequest {
    pub id: String,
    /// Identity of the requester as the adapters render it.
    pub requester: String,
    pub service: String,
    pub summary: String,
    pub approvals_needed: u32,
    pub allow_self_approval: bool,
    /// Unix time in milliseconds.
    pub created_at: u64,
    /// Unix time in milliseconds after which no decision is accepted.
    pub expires_at: u64,
    pub channel: String,
    /// Data the engine needs to run the request (command, target, preview).
    /// The store keeps it as is.
    pub payload: serde_json::Value,
    pub approvals: Vec<Approval>,
    pub state: PendingState,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Approval {
    pub by: String,
    /// Unix time in milliseconds.
    pub at: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum PendingState {
    Pending,
    Approved,
    Rejected { by: String, reason: String },
    Cancelled { by: String },
    Expired,
}

impl PendingState {
    /// Name of the state as stored in Redis and shown in messages.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Approved => "approved",
            Self::Rejected { .. } => "rejected",
            Self::Cancelled { .. } => "cancelled",
            Self::Expired => "expired",
        }
    }
}

/// A click on approve, reject or cancel. The caller has already checked that
/// the user may approve or reject this request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    Approve { by: String },
    Reject { by: String, reason: String },
    Cancel { by: String },
}

#[derive(Debug, Clone, PartialEq)]
pub enum DecisionOutcome {
    /// This approval completed the request. Exactly one caller receives this
    /// outcome for a request, and that caller runs it.
    Approved {
        request: PendingRequest,
    },
    /// The approval was recorded, but more are needed.
    Recorded {
        approvals: u32,
        needed: u32,
    },
    Rejected {
        request: PendingRequest,
    },
    Cancelled {
        request: PendingRequest,
    },
    /// The request passed its `expires_at` before this decision, and this call
    /// marked it expired. Later calls get `AlreadyDecided`.
    Expired {
        request: PendingRequest,
    },
    /// No request has this id, or it was deleted after its retention period.
    Unknown,
    /// `by` is the approver whose approval completed the request, the user
    /// who rejected or cancelled it, or `None` for an expired request.
    AlreadyDecided {
        state: PendingState,
        by: Option<String>,
    },
    /// The requester tried to approve a request that does not allow it.
    SelfApproval,
    /// This approver has already approved the request.
    DuplicateApprover,
    /// Someone other than the requester tried to cancel the request.
    NotRequester,
}

/// Result of a shared rate-limit check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RateDecision {
    /// The event was counted against the limit.
    Allowed,
    /// The limit is reached and the event was not counted. `retry_after` is
    /// the time until the oldest counted event leaves the window.
    Limited { retry_after: Duration },
}

/// A freeze of all mutating commands, shared by all replicas.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FreezeState {
    pub reason: String,
    pub by: String,
    /// Unix time in milliseconds.
    pub since: u64,
}

/// One record of the audit stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEntry {
    /// Unix time in milliseconds.
    pub at_ms: u64,
    /// `None` for events that belong to no request, such as a freeze.
    pub request_id: Option<String>,
    pub kind: AuditKind,
    pub service: Option<String>,
    pub actor: String,
    pub detail: String,
    pub fencing_token: Option<u64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AuditKind {
    Requested,
    /// Policy rejected the request before it was stored.
    Denied,
    Approved,
    Rejected,
    Cancelled,
    Expired,
    Started,
    Step,
    Succeeded,
    Failed,
    Freeze,
    Unfreeze,
}

impl AuditKind {
    pub const ALL: [AuditKind; 12] = [
        Self::Requested,
        Self::Denied,
        Self::Approved,
        Self::Rejected,
        Self::Cancelled,
        Self::Expired,
        Self::Started,
        Self::Step,
        Self::Succeeded,
        Self::Failed,
        Self::Freeze,
        Self::Unfreeze,
    ];

    /// Name stored in the audit stream.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Requested => "requested",
            Self::Denied => "denied",
            Self::Approved => "approved",
            Self::Rejected => "rejected",
            Self::Cancelled => "cancelled",
            Self::Expired => "expired",
            Self::Started => "started",
            Self::Step => "step",
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
            Self::Freeze => "freeze",
            Self::Unfreeze => "unfreeze",
        }
    }
}

impl fmt::Display for AuditKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An audit kind name that this version does not know.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown audit kind {0:?}")]
pub struct UnknownAuditKind(pub String);

impl FromStr for AuditKind {
    type Err = UnknownAuditKind;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|kind| kind.as_str() == text)
            .ok_or_else(|| UnknownAuditKind(text.to_string()))
    }
}

/// Characters of request ids: digits and lower-case letters without 0, 1, l
/// and o, which people confuse when they retype an id.
pub const REQUEST_ID_ALPHABET: &[u8] = b"23456789abcdefghijkmnpqrstuvwxyz";
pub const REQUEST_ID_LEN: usize = 6;

/// Generates a random request id such as `k7m2qx` (32^6, about 10^9 values).
/// Ids are not checked here: `put_pending` rejects an id that is in use.
pub fn new_request_id() -> String {
    random_text(REQUEST_ID_LEN)
}

/// Random text from [`REQUEST_ID_ALPHABET`], also used for queue waiter ids.
pub(crate) fn random_text(len: usize) -> String {
    let mut rng = rand::rng();
    (0..len)
        .map(|_| {
            let index = rng.random_range(0..REQUEST_ID_ALPHABET.len());
            char::from(REQUEST_ID_ALPHABET[index])
        })
        .collect()
}

/// Current wall-clock time as Unix milliseconds.
pub fn unix_now_ms() -> u64 {
    let since_epoch = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    since_epoch.as_millis() as u64
}

/// Converts a TTL to whole milliseconds, at least 1 because Redis rejects `PX 0`.
pub(crate) fn ttl_millis(ttl: Duration) -> u64 {
    (ttl.as_millis() as u64).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_id_uses_unambiguous_alphabet() {
        for _ in 0..200 {
            let id = new_request_id();
            assert_eq!(id.len(), REQUEST_ID_LEN);
            assert!(
                id.bytes().all(|byte| REQUEST_ID_ALPHABET.contains(&byte)),
                "{id}"
            );
            assert!(!id.contains(['0', '1', 'l', 'o']), "{id}");
        }
    }

    #[test]
    fn audit_kind_names_round_trip() {
        for kind in AuditKind::ALL {
            assert_eq!(kind.as_str().parse::<AuditKind>(), Ok(kind));
        }
        assert_eq!(
            "scaled".parse::<AuditKind>(),
            Err(UnknownAuditKind("scaled".to_string()))
        );
    }

    #[test]
    fn options_reject_short_heartbeat() {
        let options = CoordinatorOptions {
            queue_heartbeat_ttl: Duration::from_secs(2),
            ..CoordinatorOptions::default()
        };
        match options.validate() {
            Err(CoordError::InvalidOption { name, .. }) => assert_eq!(name, "queue_heartbeat_ttl"),
            other => panic!("expected InvalidOption, got {other:?}"),
        }
        assert!(CoordinatorOptions::default().validate().is_ok());
    }

    #[test]
    fn options_reject_zero_duration() {
        let options = CoordinatorOptions {
            decided_retention: Duration::ZERO,
            ..CoordinatorOptions::default()
        };
        match options.validate() {
            Err(CoordError::InvalidOption { name, .. }) => assert_eq!(name, "decided_retention"),
            other => panic!("expected InvalidOption, got {other:?}"),
        }
    }

    #[test]
    fn pending_state_serializes_with_tag() {
        let state = PendingState::Rejected {
            by: "bob".to_string(),
            reason: "peak".to_string(),
        };
        let json = serde_json::to_value(&state).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"state": "rejected", "by": "bob", "reason": "peak"})
        );
    }
}
