//! Two bot processes sharing one Redis: concurrent approvals run a request
//! exactly once, and approved requests on one namespace never overlap.

use std::time::Duration;

use commands::coordination::testing::RedisServer;
use commands::coordination::{AuditKind, Coordinator};
use integration_tests::{
    InteractiveConsole, KubesimProcess, TempDir, request_id, scalebot_console, test_config,
};

const STEP_TIMEOUT: Duration = Duration::from_secs(60);

fn audit_entries(redis_url: &str) -> Vec<commands::coordination::AuditEntry> {
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    runtime.block_on(async {
        let coordinator = Coordinator::redis(redis_url, "scalebot:")
            .await
            .expect("connect to test redis");
        coordinator
            .read_audit(None, 1000)
            .await
            .expect("read audit")
    })
}

/// Creates a pending request through one console process and returns its id.
fn create_request(
    config: &std::path::Path,
    kubeconfig: &std::path::Path,
    redis: &str,
    text: &str,
) -> String {
    let output = scalebot_console(
        config,
        kubeconfig,
        Some(redis),
        &format!("oncall: {text}\n"),
    );
    let stdout = String::from_utf8_lossy(&output.stdout).to_string();
    let line = stdout
        .lines()
        .find(|l| l.contains("preview:"))
        .unwrap_or_else(|| panic!("no preview for {text:?}:\n{stdout}"));
    request_id(line)
}

#[test]
fn fifty_approvals_across_two_processes_execute_once() {
    let kubesim = KubesimProcess::start("butterfly");
    let redis = RedisServer::start();
    let dir = TempDir::new("race-approvals");
    let config = test_config(dir.path());
    let id = create_request(
        &config,
        &kubesim.kubeconfig,
        &redis.url(),
        "scale synapse 4",
    );

    // Each process gets 25 approvals from distinct approvers, interleaved
    // so both processes race for the same decision.
    let inputs: Vec<String> = (0..2)
        .map(|process| {
            (1..=50)
                .filter(|n| n % 2 == process)
                .map(|n| format!("approver{n}: approve {id}\n"))
                .collect()
        })
        .collect();
    let handles: Vec<_> = inputs
        .into_iter()
        .map(|input| {
            let config = config.clone();
            let kubeconfig = kubesim.kubeconfig.clone();
            let url = redis.url();
            std::thread::spawn(move || scalebot_console(&config, &kubeconfig, Some(&url), &input))
        })
        .collect();
    let outputs: Vec<String> = handles
        .into_iter()
        .map(|h| String::from_utf8_lossy(&h.join().expect("console thread").stdout).to_string())
        .collect();
    let all = outputs.join("\n");

    let executions = all.matches("done: synapse scaled").count();
    assert_eq!(executions, 1, "expected exactly one execution:\n{all}");
    let already = all.matches("is already approved").count();
    assert_eq!(
        already, 49,
        "every other approval is told it was already approved:\n{all}"
    );

    let entries = audit_entries(&redis.url());
    let of_request = |kind: AuditKind| {
        entries
            .iter()
            .filter(|e| e.request_id.as_deref() == Some(id.as_str()) && e.kind == kind)
            .count()
    };
    assert_eq!(of_request(AuditKind::Started), 1);
    assert_eq!(of_request(AuditKind::Succeeded), 1);
    assert_eq!(of_request(AuditKind::Approved), 1);
    assert_eq!(
        kubesim.kubectl_ok(&[
            "get",
            "deploy",
            "synapse",
            "-o",
            "jsonpath={.spec.replicas}"
        ]),
        "4"
    );
}

#[test]
fn approved_requests_on_one_namespace_never_overlap() {
    let kubesim = KubesimProcess::start("butterfly");
    let redis = RedisServer::start();
    let dir = TempDir::new("race-overlap");
    let config = test_config(dir.path());
    let first = create_request(
        &config,
        &kubesim.kubeconfig,
        &redis.url(),
        "scale synapse 4",
    );
    let second = create_request(&config, &kubesim.kubeconfig, &redis.url(), "scale plato 3");

    let mut a = InteractiveConsole::start(&config, &kubesim.kubeconfig, Some(&redis.url()));
    let mut b = InteractiveConsole::start(&config, &kubesim.kubeconfig, Some(&redis.url()));
    a.send(&format!("sre: approve {first}"));
    b.send(&format!("sre2: approve {second}"));
    a.expect("done: synapse scaled", STEP_TIMEOUT);
    b.expect("done: plato scaled", STEP_TIMEOUT);
    a.finish(STEP_TIMEOUT);
    b.finish(STEP_TIMEOUT);

    let entries = audit_entries(&redis.url());
    let window = |id: &str| {
        let at = |kind: AuditKind| {
            entries
                .iter()
                .find(|e| e.request_id.as_deref() == Some(id) && e.kind == kind)
                .unwrap_or_else(|| panic!("no {kind} entry for {id}: {entries:?}"))
                .at_ms
        };
        (at(AuditKind::Started), at(AuditKind::Succeeded))
    };
    let (start_a, end_a) = window(&first);
    let (start_b, end_b) = window(&second);
    assert!(start_a <= end_a && start_b <= end_b);
    assert!(
        end_a <= start_b || end_b <= start_a,
        "procedures overlapped: {first} ran {start_a}..{end_a}, {second} ran {start_b}..{end_b}"
    );
}
