//! The FIFO queue of operations waiting for a lock.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::task::JoinSet;
use tokio::time::{Instant, sleep, timeout};

use super::{EVENTUALLY, LONG_TTL};
use crate::coordination::queue::{QueuePoll, QueueWaiter};
use crate::coordination::testing::Harness;
use crate::coordination::{CoordError, Coordinator, MAX_QUEUE_LEN};

/// Checks that three waiters behind a held lock get it in the order they joined.
pub async fn queue_serves_waiters_in_order(harness: &Harness) {
    let coordinator = harness.coordinator().await;
    let holder = coordinator
        .acquire_lock("synapse", "holder", "op", LONG_TTL)
        .await
        .unwrap()
        .unwrap();
    let order = Arc::new(Mutex::new(Vec::new()));
    let positions = Arc::new(Mutex::new(Vec::new()));

    let mut waiters = JoinSet::new();
    for (index, owner) in ["first", "second", "third"].into_iter().enumerate() {
        let waiter = harness.coordinator().await;
        let order = order.clone();
        let positions = positions.clone();
        waiters.spawn(async move {
            let guard = waiter
                .wait_for_lock("synapse", owner, "op", LONG_TTL, EVENTUALLY, |position| {
                    positions.lock().unwrap().push((owner, position.position));
                })
                .await
                .expect("waiter gets the lock");
            order.lock().unwrap().push(owner);
            // Hold the lock for a few polls so that the next waiter polls at
            // position 1 at least once.
            sleep(Duration::from_millis(300)).await;
            assert!(waiter.release_lock(&guard).await.unwrap());
        });
        wait_for_queue_len(&coordinator, "synapse", index + 1).await;
    }

    let queue = coordinator.list_queue("synapse").await.unwrap();
    let owners: Vec<&str> = queue.iter().map(|entry| entry.owner.as_str()).collect();
    assert_eq!(owners, ["first", "second", "third"]);
    let numbers: Vec<usize> = queue.iter().map(|entry| entry.position).collect();
    assert_eq!(numbers, [1, 2, 3]);
    assert!(
        coordinator
            .acquire_lock("synapse", "late", "op", LONG_TTL)
            .await
            .unwrap()
            .is_none(),
        "acquire_lock must not overtake queued waiters"
    );

    assert!(coordinator.release_lock(&holder).await.unwrap());
    while let Some(result) = timeout(EVENTUALLY, waiters.join_next()).await.unwrap() {
        result.unwrap();
    }
    assert_eq!(*order.lock().unwrap(), ["first", "second", "third"]);
    let third: Vec<usize> = positions
        .lock()
        .unwrap()
        .iter()
        .filter(|(owner, _)| *owner == "third")
        .map(|(_, position)| *position)
        .collect();
    assert_eq!(third, [3, 2, 1]);
    assert!(coordinator.list_queue("synapse").await.unwrap().is_empty());
}

/// Checks that a waiter that stopped polling (its process died) is dropped
/// from the queue once its heartbeat expires, so the waiter behind it proceeds.
pub async fn queue_skips_dead_waiter(harness: &Harness) {
    let coordinator = harness.coordinator().await;
    let holder = coordinator
        .acquire_lock("synapse", "holder", "op", LONG_TTL)
        .await
        .unwrap()
        .unwrap();
    let dead = QueueWaiter::new("dead", "op");
    coordinator.queue_join("synapse", &dead).await.unwrap();

    let live = harness.coordinator().await;
    let waiting = tokio::spawn(async move {
        live.wait_for_lock("synapse", "live", "op", LONG_TTL, EVENTUALLY, |_| {})
            .await
    });
    wait_for_queue_len(&coordinator, "synapse", 2).await;
    assert!(coordinator.release_lock(&holder).await.unwrap());

    let started = Instant::now();
    let guard = timeout(EVENTUALLY, waiting)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(guard.owner, "live");
    assert!(
        started.elapsed() < EVENTUALLY,
        "the dead waiter blocked the queue"
    );
    assert!(coordinator.list_queue("synapse").await.unwrap().is_empty());
}

/// Checks that a waiter whose future is dropped (the request was cancelled)
/// leaves the queue right away instead of after its heartbeat TTL.
pub async fn queue_dropped_waiter_leaves(harness: &Harness) {
    let coordinator = harness.coordinator().await;
    let _holder = coordinator
        .acquire_lock("synapse", "holder", "op", LONG_TTL)
        .await
        .unwrap()
        .unwrap();
    let waiter = harness.coordinator().await;
    let waiting = tokio::spawn(async move {
        waiter
            .wait_for_lock("synapse", "cancelled", "op", LONG_TTL, EVENTUALLY, |_| {})
            .await
    });
    wait_for_queue_len(&coordinator, "synapse", 1).await;

    waiting.abort();
    let aborted = Instant::now();
    wait_for_queue_len(&coordinator, "synapse", 0).await;
    let heartbeat_ttl = coordinator.options().queue_heartbeat_ttl;
    assert!(
        aborted.elapsed() < heartbeat_ttl,
        "the entry left after {:?}, which the heartbeat expiry alone explains",
        aborted.elapsed()
    );
}

pub async fn queue_wait_times_out(harness: &Harness) {
    let coordinator = harness.coordinator().await;
    let _holder = coordinator
        .acquire_lock("synapse", "holder", "op", LONG_TTL)
        .await
        .unwrap()
        .unwrap();
    let max_wait = Duration::from_millis(400);
    let mut positions = Vec::new();

    let result = coordinator
        .wait_for_lock("synapse", "bob", "op", LONG_TTL, max_wait, |position| {
            positions.push(position)
        })
        .await;
    match result {
        Err(CoordError::QueueTimeout { scope, waited }) => {
            assert_eq!(scope, "synapse");
            assert!(waited >= max_wait, "waited {waited:?}");
            assert!(waited < max_wait * 3, "waited {waited:?}");
        }
        other => panic!("expected QueueTimeout, got {other:?}"),
    }
    assert_eq!(positions.len(), 1, "{positions:?}");
    assert_eq!(positions[0].position, 1);
    assert_eq!(positions[0].queue_len, 1);
    assert_eq!(positions[0].ahead, None);
    assert_eq!(positions[0].holder.as_deref(), Some("holder"));
    assert!(coordinator.list_queue("synapse").await.unwrap().is_empty());
}

pub async fn queue_rejects_when_full(harness: &Harness) {
    let coordinator = harness.coordinator().await;
    let _holder = coordinator
        .acquire_lock("synapse", "holder", "op", LONG_TTL)
        .await
        .unwrap()
        .unwrap();
    for index in 0..MAX_QUEUE_LEN {
        let waiter = QueueWaiter::new(&format!("waiter-{index}"), "op");
        coordinator.queue_join("synapse", &waiter).await.unwrap();
    }

    let result = coordinator
        .wait_for_lock("synapse", "late", "op", LONG_TTL, EVENTUALLY, |_| {})
        .await;
    match result {
        Err(CoordError::QueueFull { scope, max }) => {
            assert_eq!(scope, "synapse");
            assert_eq!(max, MAX_QUEUE_LEN);
        }
        other => panic!("expected QueueFull, got {other:?}"),
    }
    let queue = coordinator.list_queue("synapse").await.unwrap();
    assert_eq!(queue.len(), MAX_QUEUE_LEN);
}

/// Checks that a waiter that did not poll within its heartbeat TTL learns on
/// its next poll that it was removed (so `wait_for_lock` rejoins the queue).
pub async fn queue_evicts_stalled_waiter(harness: &Harness) {
    let coordinator = harness.coordinator().await;
    let _holder = coordinator
        .acquire_lock("synapse", "holder", "op", LONG_TTL)
        .await
        .unwrap()
        .unwrap();
    let stalled = QueueWaiter::new("stalled", "op");
    coordinator.queue_join("synapse", &stalled).await.unwrap();

    let poll = coordinator
        .queue_poll("synapse", &stalled, LONG_TTL)
        .await
        .unwrap();
    assert!(matches!(poll, QueuePoll::Waiting(_)), "{poll:?}");

    sleep(coordinator.options().queue_heartbeat_ttl + Duration::from_millis(100)).await;
    let poll = coordinator
        .queue_poll("synapse", &stalled, LONG_TTL)
        .await
        .unwrap();
    assert!(matches!(poll, QueuePoll::Evicted), "{poll:?}");
    assert!(coordinator.list_queue("synapse").await.unwrap().is_empty());
}

/// Polls `list_queue` until the queue of `scope` has `len` waiters.
async fn wait_for_queue_len(coordinator: &Coordinator, scope: &str, len: usize) {
    let deadline = Instant::now() + EVENTUALLY;
    loop {
        let queue = coordinator.list_queue(scope).await.unwrap();
        if queue.len() == len {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "queue of {scope} has {} waiters, expected {len}",
            queue.len()
        );
        sleep(Duration::from_millis(20)).await;
    }
}
