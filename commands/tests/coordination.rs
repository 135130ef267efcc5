//! Runs the coordination conformance suite against the memory store and
//! against Redis (a fresh `redis-server` per test), plus Redis fault tests.

use std::time::{Duration, Instant};

use commands::coordination::testing::{Harness, RedisServer, fast_options};
use commands::coordination::{CoordError, Coordinator, conformance};

/// Declares one test per conformance case in a `memory` and a `redis` module.
macro_rules! conformance_tests {
    ($($case:ident),* $(,)?) => {
        mod memory {
            use super::*;
            $(
                #[tokio::test]
                async fn $case() {
                    let harness = Harness::memory(fast_options());
                    conformance::$case(&harness).await;
                }
            )*
        }

        mod redis {
            use super::*;
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    let harness = Harness::redis(fast_options());
                    conformance::$case(&harness).await;
                }
            )*
        }
    };
}

conformance_tests!(
    lock_is_exclusive,
    lock_holder_shows_owner,
    lock_expires_after_ttl,
    lock_renew_extends_ttl,
    lock_release_compares_holder,
    fencing_tokens_increase,
    queue_serves_waiters_in_order,
    queue_skips_dead_waiter,
    queue_evicts_stalled_waiter,
    queue_dropped_waiter_leaves,
    queue_wait_times_out,
    queue_rejects_when_full,
    pending_put_get_list,
    pending_expires,
    decide_approves_exactly_once,
    decide_needs_two_approvals,
    decide_rejects_self_approval,
    decide_rejects_duplicate_approver,
    decide_reports_already_decided,
    decide_unknown_id,
    decide_cancel_only_by_requester,
    dedupe_accepts_first_delivery,
    notes_are_read_back_until_expiry,
    rate_limit_allows_then_limits,
    cooldown_counts_down,
    freeze_is_shared,
    audit_reads_newest_first,
);

/// Upper bound for an operation against a dead server: the command timeout of
/// `fast_options` (1 s) plus slack for a loaded 2-core CI machine. An
/// operation that waited for a reconnect or retried would take longer.
const FAIL_FAST: Duration = Duration::from_millis(2500);

fn assert_unavailable<T: std::fmt::Debug>(result: Result<T, CoordError>, operation: &str) {
    match result {
        Err(error) if error.is_unavailable() => {}
        other => panic!("{operation}: expected Unavailable, got {other:?}"),
    }
}

#[tokio::test]
async fn redis_down_fails_fast_then_recovers() {
    let mut server = RedisServer::start();
    let coordinator = Coordinator::redis_with(&server.url(), "faults", fast_options())
        .await
        .unwrap();
    coordinator.ping().await.unwrap();

    server.kill();
    let started = Instant::now();
    assert_unavailable(coordinator.ping().await, "ping");
    assert_unavailable(
        coordinator
            .acquire_lock("synapse", "alice", "op", Duration::from_secs(5))
            .await,
        "acquire_lock",
    );
    assert_unavailable(coordinator.list_pending().await, "list_pending");
    assert_unavailable(
        coordinator
            .first_delivery("Ev1", Duration::from_secs(5))
            .await,
        "first_delivery",
    );
    let elapsed = started.elapsed();
    assert!(
        elapsed < FAIL_FAST * 4,
        "four operations against a dead server took {elapsed:?}"
    );

    server.restart();
    let deadline = Instant::now() + Duration::from_secs(15);
    while coordinator.ping().await.is_err() {
        assert!(
            Instant::now() < deadline,
            "the coordinator did not reconnect after the restart"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let guard = coordinator
        .acquire_lock("synapse", "alice", "op", Duration::from_secs(5))
        .await
        .unwrap();
    assert!(guard.is_some(), "the restarted server starts empty");
}

#[tokio::test]
async fn redis_down_each_operation_within_timeout() {
    let mut server = RedisServer::start();
    let coordinator = Coordinator::redis_with(&server.url(), "faults", fast_options())
        .await
        .unwrap();
    server.kill();

    for attempt in 0..3 {
        let started = Instant::now();
        assert_unavailable(coordinator.freeze_state().await, "freeze_state");
        let elapsed = started.elapsed();
        assert!(elapsed < FAIL_FAST, "attempt {attempt} took {elapsed:?}");
    }
}

#[tokio::test]
async fn redis_down_ends_queue_wait() {
    let mut server = RedisServer::start();
    let coordinator = Coordinator::redis_with(&server.url(), "faults", fast_options())
        .await
        .unwrap();
    let _holder = coordinator
        .acquire_lock("synapse", "holder", "op", Duration::from_secs(30))
        .await
        .unwrap()
        .unwrap();
    let waiter = coordinator.clone();
    let waiting = tokio::spawn(async move {
        waiter
            .wait_for_lock(
                "synapse",
                "bob",
                "op",
                Duration::from_secs(30),
                Duration::from_secs(30),
                |_| {},
            )
            .await
    });
    tokio::time::sleep(Duration::from_millis(200)).await;

    server.kill();
    let result = tokio::time::timeout(Duration::from_secs(5), waiting)
        .await
        .expect("the wait ends soon after Redis dies")
        .unwrap();
    assert_unavailable(result, "wait_for_lock");
}

#[tokio::test]
async fn redis_connect_to_dead_server_is_unavailable() {
    let mut server = RedisServer::start();
    let url = server.url();
    server.kill();

    let started = Instant::now();
    let result = Coordinator::redis_with(&url, "faults", fast_options()).await;
    assert_unavailable(result, "connect");
    assert!(started.elapsed() < FAIL_FAST, "{:?}", started.elapsed());
}

#[tokio::test]
async fn redis_rejects_invalid_url_and_prefix() {
    let invalid_url = Coordinator::redis("http://127.0.0.1:1/", "scalebot").await;
    assert!(
        matches!(invalid_url, Err(CoordError::InvalidUrl { .. })),
        "{:?}",
        invalid_url.err()
    );
    let empty_prefix = Coordinator::redis("redis://127.0.0.1:1/", "").await;
    assert!(
        matches!(empty_prefix, Err(CoordError::InvalidKeyPrefix { .. })),
        "{:?}",
        empty_prefix.err()
    );
}

#[tokio::test]
async fn redis_keys_live_under_prefix() {
    let server = RedisServer::start();
    let coordinator = Coordinator::redis_with(&server.url(), "scalebot", fast_options())
        .await
        .unwrap();
    coordinator
        .acquire_lock("synapse", "alice", "op", Duration::from_secs(30))
        .await
        .unwrap()
        .unwrap();

    let client = ::redis::Client::open(server.url()).unwrap();
    let mut connection = client.get_multiplexed_async_connection().await.unwrap();
    let mut keys: Vec<String> = ::redis::cmd("KEYS")
        .arg("*")
        .query_async(&mut connection)
        .await
        .unwrap();
    keys.sort();
    assert_eq!(
        keys,
        [
            "scalebot:fence:synapse",
            "scalebot:lock:synapse",
            "scalebot:locks"
        ]
    );
}
