//! Start-up logs of the StatefulSet software: Cassandra 4.1, Kafka 3.7 in
//! KRaft mode and Redis 7.2, each in its default log format.

use chrono::{DateTime, TimeDelta, Utc};

use super::{Line, after};
use crate::programs::cassandra::RELEASE_VERSION;
use crate::programs::{Context, ProgramState, jvm};

/// Formats one INFO line in Cassandra's log format.
fn cassandra_line(at: DateTime<Utc>, thread: &str, source: &str, message: &str) -> Line {
    let text = format!(
        "INFO  [{thread}] {} {source} - {message}",
        at.format("%Y-%m-%d %H:%M:%S,%3f")
    );
    (at, text)
}

pub(super) fn cassandra(ctx: &Context, state: &ProgramState, start: DateTime<Utc>) -> Vec<Line> {
    let pod = ctx.pod;
    let heap = jvm::heap(pod, ctx.container);
    let gib = |bytes: u64| format!("{:.3}GiB", bytes as f64 / (1u64 << 30) as f64);
    let host = pod.stable_host(ctx.namespace);
    let mut lines = vec![
        cassandra_line(
            start,
            "main",
            "CassandraDaemon.java:200",
            &format!("Hostname: {host}:7000:7001"),
        ),
        cassandra_line(
            after(start, 50),
            "main",
            "CassandraDaemon.java:207",
            "JVM vendor/version: OpenJDK 64-Bit Server VM/11.0.24",
        ),
        cassandra_line(
            after(start, 51),
            "main",
            "CassandraDaemon.java:208",
            &format!("Heap size: {}/{}", gib(heap.initial), gib(heap.max)),
        ),
        cassandra_line(
            after(start, 2_000),
            "main",
            "StorageService.java:842",
            &format!("Cassandra version: {RELEASE_VERSION}"),
        ),
    ];
    if let (true, Some(ready)) = (pod.ready, pod.ready_since) {
        lines.push(cassandra_line(
            ready,
            "main",
            "CassandraDaemon.java:761",
            "Startup complete",
        ));
    }
    let decommission = state.cassandra.get(ctx.namespace).and_then(|ring| {
        ring.decommission_window(&pod.name, &pod.uid, ctx.cluster.timing.cassandra_join)
    });
    if let Some((started, done)) = decommission {
        lines.extend(decommission_lines(
            pod.ip.as_deref().unwrap_or("127.0.0.1"),
            started,
            done,
        ));
    }
    lines
}

/// Builds the lines a node logs while `nodetool decommission` streams its
/// data away.
fn decommission_lines(ip: &str, started: DateTime<Utc>, done: DateTime<Utc>) -> Vec<Line> {
    const THREAD: &str = "RMI TCP Connection(2)";
    vec![
        cassandra_line(
            started,
            THREAD,
            "StorageService.java:1839",
            "DECOMMISSIONING",
        ),
        cassandra_line(
            done,
            THREAD,
            "StorageService.java:5012",
            &format!("Announcing that I have left the ring for 30000ms (/{ip}:7000)"),
        ),
        cassandra_line(
            done + TimeDelta::milliseconds(5),
            THREAD,
            "StorageService.java:1839",
            "DECOMMISSIONED",
        ),
    ]
}

pub(super) fn kafka(ctx: &Context, start: DateTime<Utc>) -> Vec<Line> {
    let pod = ctx.pod;
    let id = pod.ordinal().unwrap_or(0);
    let line = |at: DateTime<Utc>, message: String| {
        let text = format!("[{}] INFO {message}", at.format("%Y-%m-%d %H:%M:%S,%3f"));
        (at, text)
    };
    let mut lines = vec![
        line(
            start,
            "Registered kafka:type=kafka.Log4jController MBean (kafka.utils.Log4jControllerRegistration$)".to_string(),
        ),
        line(
            after(start, 900),
            format!("[BrokerServer id={id}] Transition from SHUTDOWN to STARTING (kafka.server.BrokerServer)"),
        ),
        line(
            after(start, 2_300),
            format!(
                "[SocketServer listenerType=BROKER, nodeId={id}] Created data-plane acceptor and processors for endpoint : ListenerName(PLAINTEXT) (kafka.network.SocketServer)"
            ),
        ),
    ];
    if let (true, Some(ready)) = (pod.ready, pod.ready_since) {
        lines.push(line(
            ready,
            format!("[BrokerServer id={id}] Transition from STARTING to STARTED (kafka.server.BrokerServer)"),
        ));
        lines.push(line(
            ready + TimeDelta::milliseconds(3),
            format!(
                "[KafkaRaftServer nodeId={id}] Kafka Server started (kafka.server.KafkaRaftServer)"
            ),
        ));
    }
    lines
}

pub(super) fn redis(ctx: &Context, state: &ProgramState, start: DateTime<Utc>) -> Vec<Line> {
    let pod = ctx.pod;
    let node_id = crate::programs::redis::node_id(ctx.namespace, &pod.name);
    let replica = state
        .redis
        .get(ctx.namespace)
        .is_some_and(|cluster| cluster.is_replica(&pod.name));
    let role = if replica { 'S' } else { 'M' };
    let line = |at: DateTime<Utc>, role: char, message: &str| {
        let text = format!(
            "1:{role} {} * {message}",
            at.format("%d %b %Y %H:%M:%S%.3f")
        );
        (at, text)
    };
    let mut lines = vec![
        line(start, 'C', "oO0OoO0OoO0Oo Redis is starting oO0OoO0OoO0Oo"),
        line(
            start,
            'C',
            "Redis version=7.2.5, bits=64, commit=00000000, modified=0, pid=1, just started",
        ),
        line(after(start, 1), 'C', "Configuration loaded"),
        line(
            after(start, 2),
            role,
            "monotonic clock: POSIX clock_gettime",
        ),
        line(
            after(start, 3),
            role,
            &format!("Node configuration loaded, I'm {node_id}"),
        ),
        line(after(start, 4), role, "Server initialized"),
        line(after(start, 5), role, "Ready to accept connections tcp"),
    ];
    if let (true, Some(ready)) = (pod.ready, pod.ready_since) {
        lines.push(line(ready, role, "Cluster state changed: ok"));
    }
    lines
}
