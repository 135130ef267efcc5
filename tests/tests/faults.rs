//! Failures in the middle of an operation: Redis dies while a request is
//! pending, and a bot dies while it holds the operation lock.

use std::time::Duration;

use commands::coordination::testing::RedisServer;
use integration_tests::{
    InteractiveConsole, KubesimProcess, TempDir, http_json, request_id, test_config,
};

const STEP_TIMEOUT: Duration = Duration::from_secs(60);

fn replicas(kubesim: &KubesimProcess, deployment: &str) -> String {
    kubesim.kubectl_ok(&[
        "get",
        "deploy",
        deployment,
        "-o",
        "jsonpath={.spec.replicas}",
    ])
}

#[test]
fn redis_killed_while_pending_fails_closed_and_recovers() {
    let kubesim = KubesimProcess::start("butterfly");
    let mut redis = RedisServer::start();
    let dir = TempDir::new("fault-redis");
    let config = test_config(dir.path());
    let mut console = InteractiveConsole::start(&config, &kubesim.kubeconfig, Some(&redis.url()));

    console.send("oncall: scale synapse 4");
    let id = request_id(&console.expect("preview:", STEP_TIMEOUT));

    redis.kill();
    console.send(&format!("sre: approve {id}"));
    console.expect("Redis is unavailable", STEP_TIMEOUT);
    console.send("oncall: scale plato 3");
    console.expect("Redis is unavailable", STEP_TIMEOUT);
    assert_eq!(
        replicas(&kubesim, "synapse"),
        "3",
        "nothing may run while Redis is down"
    );

    // The restarted server has an empty dataset: the pending request is gone.
    redis.restart();
    let mut reply = String::new();
    for _ in 0..20 {
        console.send(&format!("sre: approve {id}"));
        reply = console.expect("error:", STEP_TIMEOUT);
        if !reply.contains("Redis is unavailable") {
            break;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    assert!(
        reply.contains("unknown or expired request"),
        "after restart: {reply}"
    );

    console.send("oncall: scale synapse 4");
    let new_id = request_id(&console.expect("preview:", STEP_TIMEOUT));
    console.send(&format!("sre: approve {new_id}"));
    console.expect("done: synapse scaled from 3 to 4", STEP_TIMEOUT);
    console.finish(STEP_TIMEOUT);
    assert_eq!(replicas(&kubesim, "synapse"), "4");
}

#[test]
fn lock_of_killed_holder_expires_and_queue_proceeds() {
    let kubesim = KubesimProcess::start("butterfly");
    let redis = RedisServer::start();
    let dir = TempDir::new("fault-holder");
    let config = test_config(dir.path());
    // New synapse pods never become ready, so its rollout waits while the
    // procedure holds the namespace lock.
    let status = http_json(
        "POST",
        &kubesim.url,
        "/kubesim/faults",
        r#"{"never_ready_app": "synapse"}"#,
    );
    assert_eq!(status, 200);

    let mut holder = InteractiveConsole::start(&config, &kubesim.kubeconfig, Some(&redis.url()));
    holder.send("oncall: scale synapse 4");
    let held = request_id(&holder.expect("preview:", STEP_TIMEOUT));
    holder.send(&format!("sre: approve {held}"));
    holder.expect("2/4 patched deployment/synapse", STEP_TIMEOUT);
    holder.kill();

    let mut next = InteractiveConsole::start(&config, &kubesim.kubeconfig, Some(&redis.url()));
    next.send("oncall: locks");
    next.expect(&format!("/{held}"), STEP_TIMEOUT);
    next.send("oncall: scale plato 3");
    let queued = request_id(&next.expect("preview:", STEP_TIMEOUT));
    next.send(&format!("sre: approve {queued}"));
    // The test config's lock TTL is 3 s: the dead holder's lock expires and
    // the queued request takes it.
    next.expect("lock namespace:butterfly taken", STEP_TIMEOUT);
    next.expect("done: plato scaled from 2 to 3", STEP_TIMEOUT);
    // The sweep notices the dead holder's unfinished procedure and reports
    // the state it left synapse in.
    next.expect(
        &format!("[{held}] FAILED: request {held} was interrupted"),
        STEP_TIMEOUT,
    );
    next.expect("synapse now wants 4 replicas", STEP_TIMEOUT);
    next.finish(STEP_TIMEOUT);
    assert_eq!(replicas(&kubesim, "plato"), "3");
}

#[test]
fn sigterm_finishes_running_procedure_then_exits() {
    let kubesim = KubesimProcess::start("butterfly");
    let redis = RedisServer::start();
    let dir = TempDir::new("fault-sigterm");
    let config = test_config(dir.path());
    let mut console = InteractiveConsole::start(&config, &kubesim.kubeconfig, Some(&redis.url()));

    console.send("oncall: scale synapse 4");
    let id = request_id(&console.expect("preview:", STEP_TIMEOUT));
    console.send(&format!("sre: approve {id}"));
    console.expect("2/4 patched deployment/synapse", STEP_TIMEOUT);
    // A second approved request waits for the namespace lock.
    console.send("oncall: scale nexus 4");
    let queued = request_id(&console.expect("preview: scale nexus", STEP_TIMEOUT));
    console.send(&format!("sre: approve {queued}"));
    console.expect("queued for lock", STEP_TIMEOUT);
    console.terminate();

    // stdin stays open: only the signal may end the console.
    let transcript = console.wait_for_exit(STEP_TIMEOUT).join("\n");
    assert!(
        transcript.contains("done: synapse scaled from 3 to 4"),
        "{transcript}"
    );
    assert!(
        transcript.contains(&format!("request {queued} was approved but not started")),
        "{transcript}"
    );
    assert_eq!(replicas(&kubesim, "synapse"), "4");
    assert_eq!(replicas(&kubesim, "nexus"), "3", "the queued request ran");
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let locks = runtime.block_on(async {
        let coordinator = commands::coordination::Coordinator::redis(&redis.url(), "scalebot:")
            .await
            .expect("connect");
        coordinator.list_locks().await.expect("locks")
    });
    assert!(locks.is_empty(), "lock left after shutdown: {locks:?}");
}
