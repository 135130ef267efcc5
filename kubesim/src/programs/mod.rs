//! What runs "inside" simulated pods: the commands `kubectl exec` starts,
//! the output `kubectl logs` returns and the HTTP responses of the pod proxy.
//!
//! - [`Programs::exec`] hands the argv to [`shell`], which runs `sh -c`
//!   scripts command by command and everything else directly. Each command
//!   goes to [`dispatch`]: the tool of the pod's software (`nodetool`,
//!   `kafka-*.sh`, `redis-cli`), `curl`, or a small utility.
//! - Tools read pods from the store and keep what a real cluster would
//!   remember in [`ProgramState`]: Cassandra ring membership, Kafka replica
//!   assignments and reassignments, Redis slot ownership, and the files
//!   written inside each pod. State is per namespace, so each namespace is
//!   one Cassandra, Kafka and Redis cluster.
//! - [`Programs::logs`] and [`Programs::proxy_get`] derive their output from
//!   the pod and the fault plan.
//!
//! Programs never wait: a command whose real counterpart runs for a while
//! (`nodetool repair`) prints its whole output at once, and effects that take
//! time (a decommission, a partition reassignment) complete on the programs'
//! clock, which [`Programs::advance_clock`] can move forward.

mod cassandra;
mod http;
mod ids;
mod jvm;
mod kafka;
mod logs;
mod pods;
mod redis;
mod shell;
#[cfg(test)]
mod testing;
mod utils;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};

use chrono::{DateTime, TimeDelta, Utc};

use crate::cluster::Cluster;
use pods::{PodView, Software};

/// Result of one exec: both streams and the exit status.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExecOutput {
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
    pub exit_code: i32,
}

impl ExecOutput {
    pub(crate) fn stdout(text: impl Into<String>) -> Self {
        Self {
            stdout: text.into().into_bytes(),
            ..Self::default()
        }
    }

    pub(crate) fn failure(exit_code: i32, stderr: impl Into<String>) -> Self {
        Self {
            stdout: Vec::new(),
            stderr: stderr.into().into_bytes(),
            exit_code,
        }
    }

    /// Stdout as text, with invalid UTF-8 replaced.
    pub fn stdout_text(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }

    /// Stderr as text, with invalid UTF-8 replaced.
    pub fn stderr_text(&self) -> String {
        String::from_utf8_lossy(&self.stderr).into_owned()
    }
}

/// The programs of one simulated cluster. Cheap to clone: clones share
/// state.
#[derive(Clone, Default)]
pub struct Programs {
    state: Arc<Mutex<ProgramState>>,
}

/// State the simulated software keeps between commands.
#[derive(Default)]
pub(crate) struct ProgramState {
    /// Added to the wall clock; see [`Programs::advance_clock`].
    clock_offset: TimeDelta,
    /// Files written inside pods, by pod UID, then absolute path. A
    /// re-created pod gets a new UID and so an empty filesystem.
    files: HashMap<String, BTreeMap<String, Vec<u8>>>,
    cassandra: HashMap<String, cassandra::Ring>,
    kafka: HashMap<String, kafka::KafkaCluster>,
    redis: HashMap<String, redis::RedisCluster>,
}

/// Paths a read or write may use: relative paths resolve against `/`, the
/// working directory of every simulated container.
fn absolute_path(path: &str) -> String {
    if path.starts_with('/') {
        path.to_string()
    } else {
        format!("/{path}")
    }
}

impl ProgramState {
    fn now(&self) -> DateTime<Utc> {
        Utc::now() + self.clock_offset
    }

    pub(crate) fn read_file(&self, pod: &PodView, path: &str) -> Option<&[u8]> {
        if path == "/dev/null" {
            return Some(&[]);
        }
        self.files
            .get(&pod.uid)?
            .get(&absolute_path(path))
            .map(Vec::as_slice)
    }

    pub(crate) fn write_file(&mut self, pod: &PodView, path: &str, data: &[u8], append: bool) {
        if path == "/dev/null" {
            return;
        }
        let file = self
            .files
            .entry(pod.uid.clone())
            .or_default()
            .entry(absolute_path(path))
            .or_default();
        if !append {
            file.clear();
        }
        file.extend_from_slice(data);
    }

    pub(crate) fn remove_file(&mut self, pod: &PodView, path: &str) {
        if let Some(files) = self.files.get_mut(&pod.uid) {
            files.remove(&absolute_path(path));
        }
    }
}

/// Everything a command may look at besides [`ProgramState`].
pub(crate) struct Context<'a> {
    pub cluster: &'a Cluster,
    pub namespace: &'a str,
    /// The pod the command runs in.
    pub pod: &'a PodView,
    /// The container the command runs in; empty for the first one.
    pub container: &'a str,
    pub now: DateTime<Utc>,
}

/// Runs one command in the pod of `ctx`. Returns `None` when the pod's
/// image has no such executable.
pub(crate) fn dispatch(
    ctx: &Context,
    state: &mut ProgramState,
    argv: &[String],
    stdin: &mut Vec<u8>,
) -> Option<ExecOutput> {
    let program = argv.first()?;
    let name = program.rsplit('/').next().unwrap_or(program);
    let args = &argv[1..];
    let output = match (name, ctx.pod.software()) {
        ("nodetool", Software::Cassandra) => cassandra::nodetool(ctx, state, args),
        (tool, Software::Kafka) if kafka::is_tool(tool) => kafka::run(ctx, state, tool, args),
        ("redis-cli", Software::Redis) => redis::redis_cli(ctx, state, args),
        ("curl", _) => http::curl(ctx, args),
        _ => return utils::run(ctx, state, name, args, stdin),
    };
    Some(output)
}

impl Programs {
    fn lock(&self) -> MutexGuard<'_, ProgramState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Runs `command` (argv as kubectl sends it) in container `container`
    /// of pod `pod`, with `stdin` as standard input.
    pub fn exec(
        &self,
        cluster: &Cluster,
        namespace: &str,
        pod: &str,
        container: &str,
        command: &[String],
        stdin: &[u8],
    ) -> ExecOutput {
        let Some(view) = pods::get(cluster, namespace, pod) else {
            return ExecOutput::failure(
                1,
                format!("Error from server (NotFound): pods \"{pod}\" not found\n"),
            );
        };
        let container_missing = !container.is_empty() && view.container(container).is_none();
        if !view.is_running() || container_missing {
            return ExecOutput::failure(
                1,
                format!(
                    "error: unable to upgrade connection: container not found (\"{container}\")\n"
                ),
            );
        }
        if command.is_empty() {
            return ExecOutput::failure(
                1,
                "error: you must specify at least one command for the container\n",
            );
        }
        let mut state = self.lock();
        let ctx = Context {
            cluster,
            namespace,
            pod: &view,
            container,
            now: state.now(),
        };
        shell::run(&ctx, &mut state, command, stdin)
    }

    /// Returns the log of container `container` (first container when
    /// empty) of pod `pod`: the lines its software has written by now.
    /// Empty for a missing pod or one that has not started.
    pub fn logs(&self, cluster: &Cluster, namespace: &str, pod: &str, container: &str) -> String {
        let Some(view) = pods::get(cluster, namespace, pod) else {
            return String::new();
        };
        let state = self.lock();
        let ctx = Context {
            cluster,
            namespace,
            pod: &view,
            container,
            now: state.now(),
        };
        logs::render(&ctx, &state)
    }

    /// Serves `GET path` on `port` of pod `pod` for the API server's pod
    /// proxy and returns the HTTP status and body.
    pub fn proxy_get(
        &self,
        cluster: &Cluster,
        namespace: &str,
        pod: &str,
        port: u16,
        path: &str,
    ) -> (u16, String) {
        let Some(view) = pods::get(cluster, namespace, pod) else {
            return (404, format!("pods \"{pod}\" not found"));
        };
        let now = self.lock().now();
        let ctx = Context {
            cluster,
            namespace,
            pod: &view,
            container: "",
            now,
        };
        http::proxy_get(&ctx, port, path)
    }

    /// Moves the programs' clock forward by `by`, so tests and the demo can
    /// let decommissions and reassignments finish without waiting. Pod
    /// timestamps are compared against this clock too.
    pub fn advance_clock(&self, by: std::time::Duration) {
        let by = TimeDelta::from_std(by).unwrap_or(TimeDelta::MAX);
        let mut state = self.lock();
        state.clock_offset += by;
    }
}
