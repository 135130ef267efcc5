//! Memory-store cases that need paused time: hours-long TTLs in milliseconds
//! of test time.

use std::time::Duration;

use tokio::time::{advance, sleep};

use crate::coordination::conformance::sample_request;
use crate::coordination::{Coordinator, CoordinatorOptions, Decision, DecisionOutcome};

#[tokio::test(start_paused = true)]
async fn lock_expires_when_time_advances() {
    let coordinator = Coordinator::memory();
    let guard = coordinator
        .acquire_lock("synapse", "alice", "op", Duration::from_secs(600))
        .await
        .unwrap()
        .unwrap();

    advance(Duration::from_secs(599)).await;
    let holder = coordinator.lock_holder("synapse").await.unwrap().unwrap();
    assert_eq!(holder.expires_in, Duration::from_secs(1));

    advance(Duration::from_secs(1)).await;
    assert_eq!(coordinator.lock_holder("synapse").await.unwrap(), None);
    assert!(!coordinator.release_lock(&guard).await.unwrap());
}

#[tokio::test(start_paused = true)]
async fn queued_waiter_takes_lock_after_expiry() {
    let coordinator = Coordinator::memory();
    coordinator
        .acquire_lock("synapse", "holder", "op", Duration::from_secs(300))
        .await
        .unwrap()
        .unwrap();

    let started = tokio::time::Instant::now();
    let guard = coordinator
        .wait_for_lock(
            "synapse",
            "bob",
            "op",
            Duration::from_secs(60),
            Duration::from_secs(900),
            |_| {},
        )
        .await
        .unwrap();
    assert_eq!(guard.owner, "bob");
    let waited = started.elapsed();
    assert!(waited >= Duration::from_secs(300), "{waited:?}");
    assert!(waited < Duration::from_secs(301), "{waited:?}");
}

#[tokio::test(start_paused = true)]
async fn decided_request_is_deleted_after_retention() {
    let options = CoordinatorOptions::default();
    let retention = options.decided_retention;
    let coordinator = Coordinator::memory_with(options).unwrap();
    let request = sample_request(1, Duration::from_secs(600));
    coordinator.put_pending(&request).await.unwrap();
    let now_ms = request.created_at;
    let decision = Decision::Approve {
        by: "bob".to_string(),
    };
    let outcome = coordinator
        .decide(&request.id, decision, now_ms)
        .await
        .unwrap();
    assert!(
        matches!(outcome, DecisionOutcome::Approved { .. }),
        "{outcome:?}"
    );

    sleep(retention - Duration::from_secs(1)).await;
    assert!(
        coordinator
            .get_pending(&request.id)
            .await
            .unwrap()
            .is_some()
    );
    sleep(Duration::from_secs(1)).await;
    assert_eq!(coordinator.get_pending(&request.id).await.unwrap(), None);
}

#[tokio::test(start_paused = true)]
async fn undecided_request_is_kept_until_expiry_plus_retention() {
    let coordinator = Coordinator::memory();
    let lifetime = Duration::from_secs(600);
    let request = sample_request(1, lifetime);
    coordinator.put_pending(&request).await.unwrap();

    let retention = coordinator.options().decided_retention;
    sleep(lifetime + retention - Duration::from_secs(5)).await;
    assert!(
        coordinator
            .get_pending(&request.id)
            .await
            .unwrap()
            .is_some()
    );
    sleep(Duration::from_secs(5)).await;
    assert_eq!(coordinator.get_pending(&request.id).await.unwrap(), None);
}
