//! Pending approvals and the atomic decision on them.

use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinSet;
use tokio::time::{sleep, timeout};

use super::{EVENTUALLY, LONG_TTL};
use crate::coordination::testing::Harness;
use crate::coordination::{
    CoordError, Decision, DecisionOutcome, PendingRequest, PendingState, new_request_id,
    unix_now_ms,
};

/// Builds a pending request by alice on synapse that expires after `lifetime`.
pub fn sample_request(approvals_needed: u32, lifetime: Duration) -> PendingRequest {
    let now = unix_now_ms();
    PendingRequest {
        id: new_request_id(),
        requester: "alice".to_string(),
        service: "synapse".to_string(),
        summary: "scale synapse from 2 to 4 replicas".to_string(),
        approvals_needed,
        allow_self_approval: false,
        created_at: now,
        expires_at: now + lifetime.as_millis() as u64,
        channel: "C042".to_string(),
        payload: serde_json::json!({
            "command": "scale synapse 4",
            "empty": [],
            "nested": {"replicas": [2, 4], "big": 12345678901234567_u64},
        }),
        approvals: Vec::new(),
        state: PendingState::Pending,
    }
}

pub async fn pending_put_get_list(harness: &Harness) {
    let coordinator = harness.coordinator().await;
    let mut older = sample_request(1, LONG_TTL);
    older.created_at -= 1000;
    let newer = sample_request(1, LONG_TTL);
    coordinator.put_pending(&newer).await.unwrap();
    coordinator.put_pending(&older).await.unwrap();

    let read = coordinator.get_pending(&newer.id).await.unwrap();
    assert_eq!(
        read.as_ref(),
        Some(&newer),
        "payload must round-trip exactly"
    );
    assert_eq!(coordinator.get_pending("zzzzzz").await.unwrap(), None);

    let listed: Vec<String> = coordinator
        .list_pending()
        .await
        .unwrap()
        .into_iter()
        .map(|request| request.id)
        .collect();
    assert_eq!(listed, [older.id.clone(), newer.id.clone()]);

    let duplicate = coordinator.put_pending(&newer).await;
    match duplicate {
        Err(CoordError::DuplicateRequestId { id }) => assert_eq!(id, newer.id),
        other => panic!("expected DuplicateRequestId, got {other:?}"),
    }

    coordinator
        .decide(&older.id, reject_by("bob"), unix_now_ms())
        .await
        .unwrap();
    let listed: Vec<String> = coordinator
        .list_pending()
        .await
        .unwrap()
        .into_iter()
        .map(|request| request.id)
        .collect();
    assert_eq!(listed, [newer.id], "decided requests are not pending");
}

pub async fn pending_expires(harness: &Harness) {
    let coordinator = harness.coordinator().await;
    let lifetime = Duration::from_millis(1000);
    let request = sample_request(1, lifetime);
    let swept = sample_request(1, lifetime);
    coordinator.put_pending(&request).await.unwrap();
    coordinator.put_pending(&swept).await.unwrap();
    assert_eq!(coordinator.list_pending().await.unwrap().len(), 2);

    sleep(lifetime + Duration::from_millis(100)).await;
    assert!(coordinator.list_pending().await.unwrap().is_empty());

    let outcome = coordinator
        .decide(&request.id, approve_by("bob"), unix_now_ms())
        .await
        .unwrap();
    match outcome {
        DecisionOutcome::Expired { request: expired } => {
            assert_eq!(expired.id, request.id);
            assert_eq!(expired.state, PendingState::Expired);
        }
        other => panic!("expected Expired, got {other:?}"),
    }
    let late = coordinator
        .decide(&request.id, approve_by("carol"), unix_now_ms())
        .await
        .unwrap();
    assert_eq!(
        late,
        DecisionOutcome::AlreadyDecided {
            state: PendingState::Expired,
            by: None
        }
    );

    let due = coordinator.expire_due(unix_now_ms()).await.unwrap();
    let due_ids: Vec<&str> = due.iter().map(|request| request.id.as_str()).collect();
    assert_eq!(due_ids, [swept.id.as_str()]);
    assert_eq!(due[0].state, PendingState::Expired);
    assert!(
        coordinator
            .expire_due(unix_now_ms())
            .await
            .unwrap()
            .is_empty()
    );
    let stored = coordinator.get_pending(&swept.id).await.unwrap().unwrap();
    assert_eq!(stored.state, PendingState::Expired);
}

/// Checks that when 50 approvers click at once on a request that needs one
/// approval, exactly one of them gets `Approved` and may run it.
pub async fn decide_approves_exactly_once(harness: &Harness) {
    let coordinator = harness.coordinator().await;
    let request = sample_request(1, LONG_TTL);
    coordinator.put_pending(&request).await.unwrap();
    let outcomes = approve_concurrently(harness, &request.id, 50).await;

    let approved: Vec<&DecisionOutcome> = outcomes
        .iter()
        .filter(|outcome| matches!(outcome, DecisionOutcome::Approved { .. }))
        .collect();
    assert_eq!(approved.len(), 1, "{outcomes:?}");
    let already = outcomes
        .iter()
        .filter(|outcome| {
            matches!(
                outcome,
                DecisionOutcome::AlreadyDecided {
                    state: PendingState::Approved,
                    by: Some(_)
                }
            )
        })
        .count();
    assert_eq!(already, 49, "{outcomes:?}");

    let stored = coordinator.get_pending(&request.id).await.unwrap().unwrap();
    assert_eq!(stored.state, PendingState::Approved);
    assert_eq!(stored.approvals.len(), 1);
}

/// Checks that with two approvals needed, the first approval is recorded and
/// the second completes the request. 50 concurrent clicks give one `Recorded`, one
/// `Approved` and 48 `AlreadyDecided`.
pub async fn decide_needs_two_approvals(harness: &Harness) {
    let coordinator = harness.coordinator().await;
    let request = sample_request(2, LONG_TTL);
    coordinator.put_pending(&request).await.unwrap();

    let first = coordinator
        .decide(&request.id, approve_by("bob"), unix_now_ms())
        .await
        .unwrap();
    assert_eq!(
        first,
        DecisionOutcome::Recorded {
            approvals: 1,
            needed: 2
        }
    );
    let stored = coordinator.get_pending(&request.id).await.unwrap().unwrap();
    assert_eq!(stored.state, PendingState::Pending);
    assert_eq!(stored.approvals.len(), 1);
    assert_eq!(stored.approvals[0].by, "bob");

    let second = coordinator
        .decide(&request.id, approve_by("carol"), unix_now_ms())
        .await
        .unwrap();
    let DecisionOutcome::Approved { request: approved } = second else {
        panic!("expected Approved, got {second:?}");
    };
    let approvers: Vec<&str> = approved.approvals.iter().map(|a| a.by.as_str()).collect();
    assert_eq!(approvers, ["bob", "carol"]);
    assert_eq!(approved.payload, request.payload);

    let concurrent = sample_request(2, LONG_TTL);
    coordinator.put_pending(&concurrent).await.unwrap();
    let outcomes = approve_concurrently(harness, &concurrent.id, 50).await;
    let count =
        |wanted: fn(&DecisionOutcome) -> bool| outcomes.iter().filter(|o| wanted(o)).count();
    assert_eq!(count(|o| matches!(o, DecisionOutcome::Approved { .. })), 1);
    assert_eq!(count(|o| matches!(o, DecisionOutcome::Recorded { .. })), 1);
    assert_eq!(
        count(|o| matches!(o, DecisionOutcome::AlreadyDecided { .. })),
        48
    );
}

pub async fn decide_rejects_self_approval(harness: &Harness) {
    let coordinator = harness.coordinator().await;
    let request = sample_request(1, LONG_TTL);
    coordinator.put_pending(&request).await.unwrap();
    let outcome = coordinator
        .decide(&request.id, approve_by("alice"), unix_now_ms())
        .await
        .unwrap();
    assert_eq!(outcome, DecisionOutcome::SelfApproval);
    let stored = coordinator.get_pending(&request.id).await.unwrap().unwrap();
    assert_eq!(stored.state, PendingState::Pending);
    assert!(stored.approvals.is_empty());

    let mut allowed = sample_request(1, LONG_TTL);
    allowed.allow_self_approval = true;
    coordinator.put_pending(&allowed).await.unwrap();
    let outcome = coordinator
        .decide(&allowed.id, approve_by("alice"), unix_now_ms())
        .await
        .unwrap();
    assert!(
        matches!(outcome, DecisionOutcome::Approved { .. }),
        "{outcome:?}"
    );
}

pub async fn decide_rejects_duplicate_approver(harness: &Harness) {
    let coordinator = harness.coordinator().await;
    let request = sample_request(2, LONG_TTL);
    coordinator.put_pending(&request).await.unwrap();
    coordinator
        .decide(&request.id, approve_by("bob"), unix_now_ms())
        .await
        .unwrap();
    let again = coordinator
        .decide(&request.id, approve_by("bob"), unix_now_ms())
        .await
        .unwrap();
    assert_eq!(again, DecisionOutcome::DuplicateApprover);
    let stored = coordinator.get_pending(&request.id).await.unwrap().unwrap();
    assert_eq!(stored.approvals.len(), 1);
    assert_eq!(stored.state, PendingState::Pending);
}

pub async fn decide_reports_already_decided(harness: &Harness) {
    let coordinator = harness.coordinator().await;
    let request = sample_request(1, LONG_TTL);
    coordinator.put_pending(&request).await.unwrap();

    let rejected = coordinator
        .decide(&request.id, reject_by("bob"), unix_now_ms())
        .await
        .unwrap();
    let DecisionOutcome::Rejected { request: stored } = rejected else {
        panic!("expected Rejected, got {rejected:?}");
    };
    let expected_state = PendingState::Rejected {
        by: "bob".to_string(),
        reason: "peak traffic".to_string(),
    };
    assert_eq!(stored.state, expected_state);

    let late = coordinator
        .decide(&request.id, approve_by("carol"), unix_now_ms())
        .await
        .unwrap();
    assert_eq!(
        late,
        DecisionOutcome::AlreadyDecided {
            state: expected_state,
            by: Some("bob".to_string())
        }
    );

    let approved = sample_request(1, LONG_TTL);
    coordinator.put_pending(&approved).await.unwrap();
    coordinator
        .decide(&approved.id, approve_by("bob"), unix_now_ms())
        .await
        .unwrap();
    let late = coordinator
        .decide(&approved.id, reject_by("carol"), unix_now_ms())
        .await
        .unwrap();
    assert_eq!(
        late,
        DecisionOutcome::AlreadyDecided {
            state: PendingState::Approved,
            by: Some("bob".to_string())
        }
    );
}

pub async fn decide_unknown_id(harness: &Harness) {
    let coordinator = harness.coordinator().await;
    let outcome = coordinator
        .decide("zzzzzz", approve_by("bob"), unix_now_ms())
        .await
        .unwrap();
    assert_eq!(outcome, DecisionOutcome::Unknown);
}

pub async fn decide_cancel_only_by_requester(harness: &Harness) {
    let coordinator = harness.coordinator().await;
    let request = sample_request(1, LONG_TTL);
    coordinator.put_pending(&request).await.unwrap();

    let by_other = coordinator
        .decide(&request.id, cancel_by("bob"), unix_now_ms())
        .await
        .unwrap();
    assert_eq!(by_other, DecisionOutcome::NotRequester);
    let stored = coordinator.get_pending(&request.id).await.unwrap().unwrap();
    assert_eq!(stored.state, PendingState::Pending);

    let by_requester = coordinator
        .decide(&request.id, cancel_by("alice"), unix_now_ms())
        .await
        .unwrap();
    let DecisionOutcome::Cancelled { request: cancelled } = by_requester else {
        panic!("expected Cancelled, got {by_requester:?}");
    };
    let expected_state = PendingState::Cancelled {
        by: "alice".to_string(),
    };
    assert_eq!(cancelled.state, expected_state);
    let stored = coordinator.get_pending(&request.id).await.unwrap().unwrap();
    assert_eq!(stored.state, expected_state);
}

/// Sends `approvers` concurrent approvals from distinct users, each through
/// its own coordinator (its own connection for Redis).
async fn approve_concurrently(
    harness: &Harness,
    id: &str,
    approvers: usize,
) -> Vec<DecisionOutcome> {
    let mut coordinators = Vec::new();
    for _ in 0..approvers {
        coordinators.push(harness.coordinator().await);
    }
    let start = Arc::new(tokio::sync::Barrier::new(approvers));
    let mut clicks = JoinSet::new();
    for (index, coordinator) in coordinators.into_iter().enumerate() {
        let id = id.to_string();
        let start = start.clone();
        clicks.spawn(async move {
            start.wait().await;
            let approver = format!("approver-{index}");
            coordinator
                .decide(&id, approve_by(&approver), unix_now_ms())
                .await
                .unwrap()
        });
    }
    let mut outcomes = Vec::new();
    while let Some(outcome) = timeout(EVENTUALLY, clicks.join_next()).await.unwrap() {
        outcomes.push(outcome.unwrap());
    }
    outcomes
}

fn approve_by(user: &str) -> Decision {
    Decision::Approve {
        by: user.to_string(),
    }
}

fn reject_by(user: &str) -> Decision {
    Decision::Reject {
        by: user.to_string(),
        reason: "peak traffic".to_string(),
    }
}

fn cancel_by(user: &str) -> Decision {
    Decision::Cancel {
        by: user.to_string(),
    }
}
