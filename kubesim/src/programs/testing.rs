//! Test helpers: a cluster with pods written straight into the store, as the
//! controllers would leave them, and shortcuts to run commands.

use std::time::Duration;

use chrono::{TimeDelta, Utc};
use serde_json::{Value, json};

use super::pods::PODS;
use super::{ExecOutput, Programs};
use crate::cluster::{Cluster, Timing};

pub(crate) const NAMESPACE: &str = "butterfly";

/// Builds a cluster whose Cassandra nodes join in 5 seconds.
pub(crate) fn cluster() -> Cluster {
    Cluster::new(Timing {
        cassandra_join: Duration::from_secs(5),
        ..Timing::fast()
    })
}

fn rfc3339(seconds_ago: i64) -> String {
    (Utc::now() - TimeDelta::seconds(seconds_ago))
        .format("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

/// A pod under construction; [`PodBuilder::create`] stores it.
pub(crate) struct PodBuilder {
    object: Value,
}

/// Starts building a Running pod `name` with label `app=app` and IP `ip`,
/// Ready for the last 10 minutes.
pub(crate) fn pod(name: &str, app: &str, ip: &str) -> PodBuilder {
    let object = json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": {"app": app}, "creationTimestamp": rfc3339(700)},
        "spec": {"containers": [{"name": app, "image": format!("butterfly/{app}:1.4.2"), "env": []}]},
        "status": {
            "phase": "Running",
            "podIP": ip,
            "startTime": rfc3339(660),
            "conditions": [{"type": "Ready", "status": "True", "lastTransitionTime": rfc3339(600)}]
        }
    });
    PodBuilder { object }
}

impl PodBuilder {
    /// Makes the pod Ready since `seconds` ago, started 40 seconds before.
    pub fn ready_for(mut self, seconds: i64) -> Self {
        self.object["status"]["startTime"] = json!(rfc3339(seconds + 40));
        self.object["status"]["conditions"][0]["lastTransitionTime"] = json!(rfc3339(seconds));
        self
    }

    /// Makes the pod Running but not Ready, started `seconds` ago.
    pub fn not_ready(mut self, seconds: i64) -> Self {
        self.object["status"]["startTime"] = json!(rfc3339(seconds));
        self.object["status"]["conditions"][0] =
            json!({"type": "Ready", "status": "False", "lastTransitionTime": rfc3339(seconds)});
        self
    }

    pub fn env(mut self, name: &str, value: &str) -> Self {
        let env = self.object["spec"]["containers"][0]["env"]
            .as_array_mut()
            .expect("env list");
        env.push(json!({"name": name, "value": value}));
        self
    }

    pub fn memory_limit(mut self, limit: &str) -> Self {
        self.object["spec"]["containers"][0]["resources"] = json!({"limits": {"memory": limit}});
        self
    }

    pub fn create(self, cluster: &Cluster) -> Value {
        cluster
            .store
            .create(PODS, NAMESPACE, self.object)
            .expect("pod names are unique in a test")
    }
}

/// Creates StatefulSet pods `<app>-0` .. `<app>-<count-1>` with IPs
/// `10.244.<subnet>.<10+ordinal>`, Ready for 10 minutes.
pub(crate) fn statefulset(cluster: &Cluster, app: &str, count: u32, subnet: u32) {
    for ordinal in 0..count {
        pod(
            &format!("{app}-{ordinal}"),
            app,
            &format!("10.244.{subnet}.{}", 10 + ordinal),
        )
        .create(cluster);
    }
}

/// Runs `argv` in `pod` without stdin.
pub(crate) fn exec(programs: &Programs, cluster: &Cluster, pod: &str, argv: &[&str]) -> ExecOutput {
    let argv: Vec<String> = argv.iter().map(|a| a.to_string()).collect();
    programs.exec(cluster, NAMESPACE, pod, "", &argv, b"")
}

/// Runs `sh -c script` in `pod` with `stdin`.
pub(crate) fn sh(
    programs: &Programs,
    cluster: &Cluster,
    pod: &str,
    script: &str,
    stdin: &str,
) -> ExecOutput {
    let argv = vec!["sh".to_string(), "-c".to_string(), script.to_string()];
    programs.exec(cluster, NAMESPACE, pod, "", &argv, stdin.as_bytes())
}

/// Returns the stdout of a command that must succeed.
pub(crate) fn stdout_of(output: ExecOutput) -> String {
    assert_eq!(
        output.exit_code,
        0,
        "exit {}: stderr: {} stdout: {}",
        output.exit_code,
        output.stderr_text(),
        output.stdout_text()
    );
    output.stdout_text()
}
