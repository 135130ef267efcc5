//! The console path end to end: `scalebot demo` from a pipe, and `scalebot
//! console` as a real process against `kubesim serve` and `redis-server`,
//! checked with the real `kubectl`.

use std::time::Duration;

use commands::coordination::testing::RedisServer;
use integration_tests::{
    KubesimProcess, TempDir, binary, run_with_timeout, run_with_timeout_bytes, scalebot_console,
    test_config,
};

fn stdout_of(output: &std::process::Output) -> String {
    String::from_utf8_lossy(&output.stdout).to_string()
}

fn synapse_replicas(kubesim: &KubesimProcess) -> String {
    kubesim.kubectl_ok(&[
        "get",
        "deploy",
        "synapse",
        "-n",
        "butterfly",
        "-o",
        "jsonpath={.spec.replicas}",
    ])
}

#[test]
fn demo_from_pipe_scales_synapse() {
    let mut command = std::process::Command::new(binary("scalebot", "scalebot"));
    command.arg("demo");
    let output = run_with_timeout(command, Some("oncall: scale synapse 4\nsre: approve\n"));
    let stdout = stdout_of(&output);
    assert!(
        output.status.success(),
        "demo failed: {stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        stdout.contains("preview: scale synapse 3 → 4"),
        "no preview:\n{stdout}"
    );
    assert!(
        stdout.contains("approved by console:sre"),
        "no approval:\n{stdout}"
    );
    assert!(
        stdout.contains("2/4 patched deployment/synapse scale to 4"),
        "no progress:\n{stdout}"
    );
    assert!(
        stdout.contains("done: synapse scaled from 3 to 4 replicas"),
        "no verified result:\n{stdout}"
    );
    assert!(
        stdout.contains("4/4 pods ready"),
        "verification missing:\n{stdout}"
    );
}

#[test]
fn console_scales_synapse_through_kubesim_and_redis() {
    let kubesim = KubesimProcess::start("butterfly");
    let redis = RedisServer::start();
    let dir = TempDir::new("console-e2e");
    let config = test_config(dir.path());

    let output = scalebot_console(
        &config,
        &kubesim.kubeconfig,
        Some(&redis.url()),
        "oncall: scale synapse 4\nsre: approve\n",
    );
    let stdout = stdout_of(&output);
    assert!(
        stdout.contains("done: synapse scaled from 3 to 4"),
        "first run:\n{stdout}"
    );
    assert_eq!(synapse_replicas(&kubesim), "4");

    // Let the service cooldown of the test config pass.
    std::thread::sleep(Duration::from_millis(1500));
    let output = scalebot_console(
        &config,
        &kubesim.kubeconfig,
        Some(&redis.url()),
        "oncall: scale synapse 5\noncall: approve\n",
    );
    let stdout = stdout_of(&output);
    assert!(
        stdout.contains("preview: scale synapse 4 → 5"),
        "second preview:\n{stdout}"
    );
    assert!(
        stdout.contains("you made this request"),
        "self-approval not rejected:\n{stdout}"
    );
    assert!(
        !stdout.contains("done:"),
        "self-approved request ran:\n{stdout}"
    );
    assert_eq!(synapse_replicas(&kubesim), "4");
}

#[test]
fn console_without_redis_warns_locks_are_local() {
    let kubesim = KubesimProcess::start("butterfly");
    let dir = TempDir::new("console-local");
    let config = test_config(dir.path());
    let output = scalebot_console(&config, &kubesim.kubeconfig, None, "oncall: locks\n");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "console failed: {stderr}");
    assert!(
        stderr.contains("local to this process"),
        "no warning: {stderr}"
    );
    assert!(stdout_of(&output).contains("no operation lock is held"));
}

#[test]
fn console_rejects_bad_counts_without_change() {
    let kubesim = KubesimProcess::start("butterfly");
    let dir = TempDir::new("console-bad-input");
    let config = test_config(dir.path());
    let input = "oncall: scale synapse O\noncall: scale synapse 0\noncall: scale synapse 1e3\noncall: scale synapse ３\n\
                 oncall: scale synaps 4\noncall: scale synapse 40\noncall: scale synapse -1.5\nno user here\n";
    let output = scalebot_console(&config, &kubesim.kubeconfig, None, input);
    let stdout = stdout_of(&output);
    let errors = stdout.lines().filter(|l| l.starts_with("error:")).count();
    assert_eq!(errors, 8, "each bad line gets one error:\n{stdout}");
    assert!(stdout.contains("did you mean synapse"), "{stdout}");
    assert!(
        !stdout.contains("preview:"),
        "a bad line produced a preview:\n{stdout}"
    );
    assert_eq!(synapse_replicas(&kubesim), "3");
}

#[test]
fn invalid_utf8_line_is_rejected_without_stopping() {
    let mut command = std::process::Command::new(binary("scalebot", "scalebot"));
    command.arg("demo");
    let input: &[u8] = b"oncall: scale synapse 4\nsre: approve\noncall: \xff\xfe\noncall: locks\n";
    let output = run_with_timeout_bytes(command, Some(input));
    let stdout = stdout_of(&output);
    assert!(output.status.success(), "demo failed: {stdout}");
    assert!(stdout.contains("not valid UTF-8"), "{stdout}");
    assert!(
        stdout.contains("done: synapse scaled from 3 to 4"),
        "procedure cut short:\n{stdout}"
    );
}

#[test]
fn startup_errors_name_cause_and_fix() {
    let dir = TempDir::new("console-startup");
    let config = test_config(dir.path());
    let missing = dir.path().join("missing-kubeconfig");
    let output = scalebot_console(&config, &missing, None, "");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "started without a kubeconfig");
    assert!(
        stderr.contains("missing-kubeconfig not found"),
        "no cause: {stderr}"
    );
    assert!(stderr.contains("scalebot demo"), "no next step: {stderr}");

    let kubesim = KubesimProcess::start("butterfly");
    let bad_url = "redis://ops:hunter2@127.0.0.1:port";
    let output = scalebot_console(&config, &kubesim.kubeconfig, Some(bad_url), "");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        !output.status.success(),
        "started with an invalid Redis URL"
    );
    assert!(stderr.contains("invalid Redis URL"), "no cause: {stderr}");
    assert!(stderr.contains("expected redis://"), "no form: {stderr}");
    assert!(!stderr.contains("hunter2"), "password shown: {stderr}");
}
