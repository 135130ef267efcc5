//! Pending approvals in memory. The decision rules match
//! `lua/pending_decide.lua` step for step.

use tokio::time::Instant;

use super::{MemoryStore, StoredRequest};
use crate::coordination::{
    Approval, CoordError, Decision, DecisionOutcome, PendingRequest, PendingState, unix_now_ms,
};

impl MemoryStore {
    pub fn put_pending(&self, request: &PendingRequest) -> Result<(), CoordError> {
        let now = Instant::now();
        let until_expiry = request.expires_at.saturating_sub(unix_now_ms());
        let delete_at =
            now + std::time::Duration::from_millis(until_expiry) + self.options.decided_retention;
        let mut state = self.state();
        if state.requests.contains_key(&request.id) {
            return Err(CoordError::DuplicateRequestId {
                id: request.id.clone(),
            });
        }
        state.requests.insert(
            request.id.clone(),
            StoredRequest {
                request: request.clone(),
                delete_at,
            },
        );
        Ok(())
    }

    pub fn get_pending(&self, id: &str) -> Option<PendingRequest> {
        let state = self.state();
        state.requests.get(id).map(|stored| stored.request.clone())
    }

    pub fn list_pending(&self, now_ms: u64) -> Vec<PendingRequest> {
        let state = self.state();
        let mut requests: Vec<PendingRequest> = state
            .requests
            .values()
            .map(|stored| &stored.request)
            .filter(|request| request.state == PendingState::Pending && request.expires_at > now_ms)
            .cloned()
            .collect();
        sort_by_creation(&mut requests);
        requests
    }

    pub fn decide(&self, id: &str, decision: &Decision, now_ms: u64) -> DecisionOutcome {
        let delete_at = Instant::now() + self.options.decided_retention;
        let mut state = self.state();
        let Some(stored) = state.requests.get_mut(id) else {
            return DecisionOutcome::Unknown;
        };
        let outcome = apply_decision(&mut stored.request, decision, now_ms);
        if stored.request.state != PendingState::Pending {
            stored.delete_at = delete_at;
        }
        outcome
    }

    pub fn expire_due(&self, now_ms: u64) -> Vec<PendingRequest> {
        let delete_at = Instant::now() + self.options.decided_retention;
        let mut state = self.state();
        let mut expired = Vec::new();
        for stored in state.requests.values_mut() {
            let request = &mut stored.request;
            if request.state == PendingState::Pending && request.expires_at <= now_ms {
                request.state = PendingState::Expired;
                stored.delete_at = delete_at;
                expired.push(request.clone());
            }
        }
        sort_by_creation(&mut expired);
        expired
    }
}

/// Applies `decision` to a stored request and returns the outcome. Leaves the
/// request unchanged unless the outcome records or decides something.
fn apply_decision(
    request: &mut PendingRequest,
    decision: &Decision,
    now_ms: u64,
) -> DecisionOutcome {
    if request.state != PendingState::Pending {
        return already_decided(request);
    }
    if now_ms >= request.expires_at {
        request.state = PendingState::Expired;
        return DecisionOutcome::Expired {
            request: request.clone(),
        };
    }

    match decision {
        Decision::Reject { by, reason } => {
            request.state = PendingState::Rejected {
                by: by.clone(),
                reason: reason.clone(),
            };
            DecisionOutcome::Rejected {
                request: request.clone(),
            }
        }
        Decision::Cancel { by } => {
            if *by != request.requester {
                return DecisionOutcome::NotRequester;
            }
            request.state = PendingState::Cancelled { by: by.clone() };
            DecisionOutcome::Cancelled {
                request: request.clone(),
            }
        }
        Decision::Approve { by } => {
            if *by == request.requester && !request.allow_self_approval {
                return DecisionOutcome::SelfApproval;
            }
            if request.approvals.iter().any(|approval| approval.by == *by) {
                return DecisionOutcome::DuplicateApprover;
            }
            request.approvals.push(Approval {
                by: by.clone(),
                at: now_ms,
            });
            let approvals = request.approvals.len() as u32;
            if approvals < request.approvals_needed {
                return DecisionOutcome::Recorded {
                    approvals,
                    needed: request.approvals_needed,
                };
            }
            request.state = PendingState::Approved;
            DecisionOutcome::Approved {
                request: request.clone(),
            }
        }
    }
}

fn already_decided(request: &PendingRequest) -> DecisionOutcome {
    let by = match &request.state {
        PendingState::Approved => request.approvals.last().map(|approval| approval.by.clone()),
        PendingState::Rejected { by, .. } | PendingState::Cancelled { by } => Some(by.clone()),
        PendingState::Pending | PendingState::Expired => None,
    };
    DecisionOutcome::AlreadyDecided {
        state: request.state.clone(),
        by,
    }
}

/// Orders requests oldest first, by id among equal creation times, which is
/// the order of the Redis index (a sorted set scored by `created_at`).
fn sort_by_creation(requests: &mut [PendingRequest]) {
    requests.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
}
