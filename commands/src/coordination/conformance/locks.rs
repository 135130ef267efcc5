//! Operation locks: exclusivity, holder info, TTL, renewal, compare-and-delete
//! and fencing tokens.

use std::time::Duration;

use tokio::time::sleep;

use super::LONG_TTL;
use crate::coordination::LockGuard;
use crate::coordination::testing::Harness;

pub async fn lock_is_exclusive(harness: &Harness) {
    let first = harness.coordinator().await;
    let second = harness.coordinator().await;

    let guard = first
        .acquire_lock("synapse", "alice", "k7m2qx: scale synapse to 4", LONG_TTL)
        .await
        .unwrap()
        .expect("a free lock is taken");
    assert_eq!(guard.scope, "synapse");
    assert_eq!(guard.owner, "alice");

    let taken = second
        .acquire_lock("synapse", "bob", "abcdef: restart synapse", LONG_TTL)
        .await
        .unwrap();
    assert_eq!(taken, None);

    let other_scope = second
        .acquire_lock("sygnal", "bob", "abcdef: scale sygnal", LONG_TTL)
        .await
        .unwrap();
    assert!(
        other_scope.is_some(),
        "locks of other scopes are independent"
    );
}

pub async fn lock_holder_shows_owner(harness: &Harness) {
    let coordinator = harness.coordinator().await;
    assert_eq!(coordinator.lock_holder("synapse").await.unwrap(), None);

    let guard = coordinator
        .acquire_lock("synapse", "alice", "k7m2qx: scale synapse to 4", LONG_TTL)
        .await
        .unwrap()
        .unwrap();
    let holder = coordinator.lock_holder("synapse").await.unwrap().unwrap();
    assert_eq!(holder.scope, "synapse");
    assert_eq!(holder.owner, "alice");
    assert_eq!(holder.operation, "k7m2qx: scale synapse to 4");
    assert_eq!(holder.token, guard.token);
    assert_eq!(holder.since, guard.acquired_at);
    assert!(holder.expires_in <= LONG_TTL, "{:?}", holder.expires_in);
    assert!(holder.expires_in > LONG_TTL / 2, "{:?}", holder.expires_in);

    coordinator
        .acquire_lock("element", "bob", "abcdef: scale element", LONG_TTL)
        .await
        .unwrap()
        .unwrap();
    let scopes: Vec<String> = coordinator
        .list_locks()
        .await
        .unwrap()
        .into_iter()
        .map(|lock| lock.scope)
        .collect();
    assert_eq!(scopes, ["element", "synapse"]);
}

pub async fn lock_expires_after_ttl(harness: &Harness) {
    let coordinator = harness.coordinator().await;
    let ttl = Duration::from_millis(300);
    let guard = coordinator
        .acquire_lock("synapse", "alice", "op", ttl)
        .await
        .unwrap()
        .unwrap();

    sleep(ttl + Duration::from_millis(200)).await;
    assert_eq!(coordinator.lock_holder("synapse").await.unwrap(), None);
    assert!(coordinator.list_locks().await.unwrap().is_empty());
    assert!(!coordinator.renew_lock(&guard, LONG_TTL).await.unwrap());
    assert!(!coordinator.release_lock(&guard).await.unwrap());

    let next = coordinator
        .acquire_lock("synapse", "bob", "op", LONG_TTL)
        .await
        .unwrap();
    assert!(next.is_some(), "an expired lock is free");
}

pub async fn lock_renew_extends_ttl(harness: &Harness) {
    let coordinator = harness.coordinator().await;
    let ttl = Duration::from_millis(600);
    let guard = coordinator
        .acquire_lock("synapse", "alice", "op", ttl)
        .await
        .unwrap()
        .unwrap();

    for _ in 0..4 {
        sleep(Duration::from_millis(200)).await;
        assert!(coordinator.renew_lock(&guard, ttl).await.unwrap());
    }
    let holder = coordinator.lock_holder("synapse").await.unwrap();
    assert_eq!(holder.map(|lock| lock.token), Some(guard.token));

    let impostor = LockGuard {
        owner: "mallory".to_string(),
        ..guard.clone()
    };
    assert!(!coordinator.renew_lock(&impostor, LONG_TTL).await.unwrap());
    let stale_token = LockGuard {
        token: guard.token - 1,
        ..guard.clone()
    };
    assert!(
        !coordinator
            .renew_lock(&stale_token, LONG_TTL)
            .await
            .unwrap()
    );
}

pub async fn lock_release_compares_holder(harness: &Harness) {
    let coordinator = harness.coordinator().await;
    let ttl = Duration::from_millis(300);
    let old = coordinator
        .acquire_lock("synapse", "alice", "op", ttl)
        .await
        .unwrap()
        .unwrap();
    sleep(ttl + Duration::from_millis(200)).await;
    let new = coordinator
        .acquire_lock("synapse", "alice", "op", LONG_TTL)
        .await
        .unwrap()
        .unwrap();

    assert!(
        !coordinator.release_lock(&old).await.unwrap(),
        "a guard whose lock expired must not delete the next holder's lock"
    );
    assert!(coordinator.lock_holder("synapse").await.unwrap().is_some());
    assert!(coordinator.release_lock(&new).await.unwrap());
    assert_eq!(coordinator.lock_holder("synapse").await.unwrap(), None);
    assert!(!coordinator.release_lock(&new).await.unwrap());
}

pub async fn fencing_tokens_increase(harness: &Harness) {
    let coordinator = harness.coordinator().await;
    let mut last_token = 0;
    for _ in 0..5 {
        let guard = coordinator
            .acquire_lock("synapse", "alice", "op", LONG_TTL)
            .await
            .unwrap()
            .unwrap();
        assert!(
            guard.token > last_token,
            "{} after {last_token}",
            guard.token
        );
        last_token = guard.token;
        assert!(coordinator.release_lock(&guard).await.unwrap());
    }

    let expiring = coordinator
        .acquire_lock("synapse", "alice", "op", Duration::from_millis(100))
        .await
        .unwrap()
        .unwrap();
    sleep(Duration::from_millis(300)).await;
    let after_expiry = coordinator
        .acquire_lock("synapse", "alice", "op", LONG_TTL)
        .await
        .unwrap()
        .unwrap();
    assert!(after_expiry.token > expiring.token);
}
