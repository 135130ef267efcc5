//! The Cassandra and Kafka procedures through the engine, against an
//! in-process kubesim whose pods run a simulated `nodetool` and Kafka
//! tools, and a real `redis-server`.

use std::time::Duration;

use commands::cluster::Cluster;
use commands::coordination::{AuditEntry, AuditKind, unix_now_ms};
use commands::engine::recovery::report_interrupted;
use commands::engine::{Engine, ReplyBody};
use commands::procedures::cassandra::{self, RingNode};
use commands::procedures::{kafka, redis_cluster};
use k8s_openapi::api::apps::v1::StatefulSet;
use kube::api::{Api, Patch, PatchParams};
use kubesim::Sim;
use std::collections::BTreeSet;
use tokio::sync::mpsc;
use tokio::time::Instant;

mod support;
use support::*;

const RING_TIMEOUT: Duration = Duration::from_secs(30);

async fn statefulset_replicas(sim: &Sim, name: &str) -> i32 {
    let api: Api<StatefulSet> = Api::namespaced(sim.client().expect("client"), "butterfly");
    api.get(name)
        .await
        .expect("statefulset")
        .spec
        .and_then(|s| s.replicas)
        .unwrap_or(0)
}

/// Waits until `nodetool status` in cassandra-0 lists `count` nodes, all UN.
async fn wait_for_ring(sim: &Sim, count: usize) -> Vec<RingNode> {
    let cluster = Cluster::new(sim.client().expect("client"));
    let deadline = Instant::now() + RING_TIMEOUT;
    loop {
        let nodes = cassandra::ring(&cluster, "butterfly", "cassandra-0")
            .await
            .unwrap_or_default();
        if nodes.len() == count && nodes.iter().all(RingNode::is_up_normal) {
            return nodes;
        }
        assert!(
            Instant::now() < deadline,
            "ring never reached {count} UN nodes: {}",
            cassandra::describe_ring(&nodes)
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Waits until brokers `0..count` respond in kafka-0.
async fn wait_for_brokers(sim: &Sim, count: u32) {
    let cluster = Cluster::new(sim.client().expect("client"));
    let expected: BTreeSet<u32> = (0..count).collect();
    let deadline = Instant::now() + RING_TIMEOUT;
    loop {
        let live = kafka::live_brokers(&cluster, "butterfly", "kafka-0")
            .await
            .unwrap_or_default();
        if live == expected {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "brokers {live:?} respond, expected {expected:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Returns the brokers that hold a replica of any partition.
async fn replica_brokers(sim: &Sim) -> BTreeSet<u32> {
    let cluster = Cluster::new(sim.client().expect("client"));
    let command = [
        "kafka-topics.sh",
        "--bootstrap-server",
        "localhost:9092",
        "--describe",
    ];
    let output = cluster
        .exec("butterfly", "kafka-0", &command, Duration::from_secs(30))
        .await
        .expect("describe topics");
    kafka::parse_replica_brokers(&output.stdout)
}

/// Requests `text` as oncall, checks that its preview has a note starting
/// with `note`, approves it as sre and returns every reply.
async fn run_approved(engine: &Engine, text: &str, note: &str) -> String {
    let (sender, mut receiver) = mpsc::channel(256);
    engine.handle(request("oncall", text), sender.clone()).await;
    let previews = drain(&mut receiver);
    let preview_text = texts(&previews);
    let id = previews
        .iter()
        .find_map(|r| match &r.body {
            ReplyBody::Preview { request_id, impact } => {
                assert!(
                    impact.notes.iter().any(|n| n.starts_with(note)),
                    "no note {note:?} in the preview: {:?}",
                    impact.notes
                );
                Some(request_id.clone())
            }
            _ => None,
        })
        .unwrap_or_else(|| panic!("no preview for {text:?}: {preview_text}"));
    engine
        .handle(request("sre", &format!("approve {id}")), sender)
        .await;
    assert!(engine.wait_idle(IDLE_TIMEOUT).await);
    texts(&drain(&mut receiver))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cassandra_scales_node_by_node() {
    let (sim, _redis, engine) = start(config()).await;
    let before = wait_for_ring(&sim, 3).await;

    let added = run_approved(&engine, "scale cassandra 4", "Ring: UN").await;
    assert!(added.contains("result true"), "{added}");
    assert!(added.contains("cassandra-3 joined the ring"), "{added}");
    assert!(added.contains("nodetool repair finished"), "{added}");
    assert_eq!(statefulset_replicas(&sim, "cassandra").await, 4);
    let grown = wait_for_ring(&sim, 4).await;

    let removed = run_approved(&engine, "scale cassandra 3", "Ring: UN").await;
    assert!(removed.contains("result true"), "{removed}");
    let decommissioned = removed
        .find("running nodetool decommission in cassandra-3")
        .unwrap_or_else(|| panic!("no decommission: {removed}"));
    let patched = removed
        .find("patched cassandra to 3 replicas")
        .unwrap_or_else(|| panic!("no patch: {removed}"));
    assert!(
        decommissioned < patched,
        "the node left before the StatefulSet shrank: {removed}"
    );
    assert_eq!(statefulset_replicas(&sim, "cassandra").await, 3);
    let after = wait_for_ring(&sim, 3).await;
    assert_eq!(after, before, "the original nodes remain");
    assert!(!after.contains(&grown[3]), "the added node has left");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn down_node_stops_before_any_change() {
    let (sim, _redis, engine) = start(config()).await;
    wait_for_ring(&sim, 3).await;
    // A scale-down without decommission leaves cassandra-2 in the ring as
    // DN, the state the runbook's procedure exists to avoid.
    let api: Api<StatefulSet> = Api::namespaced(sim.client().expect("client"), "butterfly");
    let patch = serde_json::json!({"spec": {"replicas": 2}});
    api.patch_scale("cassandra", &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .expect("scale down");
    let cluster = Cluster::new(sim.client().expect("client"));
    let deadline = Instant::now() + RING_TIMEOUT;
    while !cassandra::ring(&cluster, "butterfly", "cassandra-0")
        .await
        .unwrap_or_default()
        .iter()
        .any(|node| node.state == "DN")
    {
        assert!(Instant::now() < deadline, "cassandra-2 never showed DN");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    let (sender, mut receiver) = mpsc::channel(256);
    engine
        .handle(request("oncall", "scale cassandra 3"), sender.clone())
        .await;
    let previews = drain(&mut receiver);
    let warning = previews.iter().find_map(|r| match &r.body {
        ReplyBody::Preview { impact, .. } => impact
            .notes
            .iter()
            .find(|n| n.starts_with("Warning"))
            .cloned(),
        _ => None,
    });
    let warning = warning.unwrap_or_else(|| panic!("no ring warning: {}", texts(&previews)));
    assert!(warning.contains("DN"), "{warning}");
    let id = previews
        .iter()
        .find_map(|r| match &r.body {
            ReplyBody::Preview { request_id, .. } => Some(request_id.clone()),
            _ => None,
        })
        .expect("preview");
    engine
        .handle(request("sre", &format!("approve {id}")), sender)
        .await;
    assert!(engine.wait_idle(IDLE_TIMEOUT).await);
    let all = texts(&drain(&mut receiver));
    assert!(all.contains("result false"), "{all}");
    assert!(all.contains("nothing was changed"), "{all}");
    assert_eq!(statefulset_replicas(&sim, "cassandra").await, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kafka_moves_partitions_before_removal() {
    let (sim, _redis, engine) = start(config()).await;
    wait_for_brokers(&sim, 3).await;
    assert_eq!(replica_brokers(&sim).await, BTreeSet::from([0, 1, 2]));

    let added = run_approved(&engine, "scale kafka 4", "Brokers: 0, 1, 2 respond").await;
    assert!(added.contains("result true"), "{added}");
    assert!(added.contains("broker 3 joined the cluster"), "{added}");
    assert!(added.contains("onto brokers 0,1,2,3"), "{added}");
    assert_eq!(statefulset_replicas(&sim, "kafka").await, 4);
    assert_eq!(replica_brokers(&sim).await, BTreeSet::from([0, 1, 2, 3]));

    let removed = run_approved(&engine, "scale kafka 3", "Brokers: 0, 1, 2, 3 respond").await;
    assert!(removed.contains("result true"), "{removed}");
    let moved = removed
        .find("onto brokers 0,1,2")
        .unwrap_or_else(|| panic!("no reassignment: {removed}"));
    let patched = removed
        .find("patched kafka to 3 replicas")
        .unwrap_or_else(|| panic!("no patch: {removed}"));
    assert!(
        moved < patched,
        "partitions moved before the broker was removed: {removed}"
    );
    assert_eq!(statefulset_replicas(&sim, "kafka").await, 3);
    assert_eq!(replica_brokers(&sim).await, BTreeSet::from([0, 1, 2]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kafka_broker_never_ready_moves_nothing() {
    let mut config = config();
    config.policy.rollout_timeout = Duration::from_secs(2);
    let (sim, _redis, engine) = start(config).await;
    wait_for_brokers(&sim, 3).await;
    never_ready(&sim, "kafka", true);

    let all = run_approved(&engine, "scale kafka 4", "Brokers: 0, 1, 2 respond").await;
    assert!(all.contains("result false"), "{all}");
    assert!(all.contains("no partitions were moved"), "{all}");
    assert!(!all.contains("reassigned"), "{all}");
    assert_eq!(replica_brokers(&sim).await, BTreeSet::from([0, 1, 2]));
    let locks = engine.coordinator().list_locks().await.expect("locks");
    assert!(locks.is_empty(), "lock left behind: {locks:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_instances_change_through_resource() {
    let (sim, _redis, engine) = start(config()).await;
    let cluster = Cluster::new(sim.client().expect("client"));
    let deadline = Instant::now() + RING_TIMEOUT;
    while cluster
        .postgresql("butterfly", "butterfly-postgres")
        .await
        .expect("postgresql")
        .phase
        != "Running"
    {
        assert!(Instant::now() < deadline, "the cluster never ran");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    let all = run_approved(
        &engine,
        "scale postgres 3",
        "Changes spec.numberOfInstances",
    )
    .await;
    assert!(all.contains("result true"), "{all}");
    assert!(
        all.contains("master butterfly-postgres-0, 2 replica(s)"),
        "{all}"
    );
    let resource = cluster
        .postgresql("butterfly", "butterfly-postgres")
        .await
        .expect("postgresql");
    assert_eq!(resource.instances, 3);
    assert_eq!(resource.phase, "Running");
    assert_eq!(statefulset_replicas(&sim, "butterfly-postgres").await, 3);
}

/// Reads the Redis Cluster through `--cluster check` in redis-0.
async fn redis_topology(sim: &Sim) -> redis_cluster::Topology {
    let cluster = Cluster::new(sim.client().expect("client"));
    let ip = redis_cluster::seed_ip(&cluster, "butterfly", "redis", "app=redis")
        .await
        .expect("pods")
        .expect("redis-0 has an IP");
    redis_cluster::topology(&cluster, "butterfly", "redis-0", &format!("{ip}:6379"))
        .await
        .expect("cluster check")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_cluster_grows_by_whole_shards() {
    let (sim, _redis, engine) = start(config()).await;
    let (sender, mut receiver) = mpsc::channel(64);
    for text in ["scale redis 9", "scale redis 7", "scale redis 6"] {
        engine.handle(request("oncall", text), sender.clone()).await;
    }
    let refusals = texts(&drain(&mut receiver));
    assert!(
        refusals.contains("cannot scale redis to 9: Redis Cluster grows by whole shards of 2 pods"),
        "{refusals}"
    );
    assert!(refusals.contains("choose 8 or 10"), "{refusals}");
    assert!(refusals.contains("cannot scale redis to 7"), "{refusals}");
    assert!(!refusals.contains("preview"), "{refusals}");

    let all = run_approved(&engine, "scale redis 8", "Cluster: 3 masters").await;
    assert!(all.contains("result true"), "{all}");
    assert!(all.contains("added shard 1: master redis-6"), "{all}");
    assert_eq!(statefulset_replicas(&sim, "redis").await, 8);
    let topology = redis_topology(&sim).await;
    assert_eq!(topology.masters, 4);
    assert_eq!(topology.replicas, 4);
    assert_eq!(topology.empty_masters, 0, "the new master owns slots");
    assert!(topology.covered);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn interrupted_kafka_run_says_what_to_check() {
    let (_sim, _redis, engine) = start(config()).await;
    let started = AuditEntry {
        at_ms: unix_now_ms(),
        request_id: Some("kf1234".to_string()),
        kind: AuditKind::Started,
        service: Some("kafka".to_string()),
        actor: "scalebot".to_string(),
        detail: "lock namespace:butterfly taken".to_string(),
        fencing_token: Some(1),
    };
    engine
        .coordinator()
        .append_audit(&started)
        .await
        .expect("audit");

    let (sender, mut receiver) = mpsc::channel(16);
    let reported = report_interrupted(&engine, &sender).await.expect("scan");
    assert_eq!(reported, 1);
    let report = drain(&mut receiver)
        .into_iter()
        .find_map(|reply| match reply.body {
            ReplyBody::Result { details, .. } => Some(details.join("\n")),
            _ => None,
        })
        .expect("an interrupted report");
    assert!(report.contains("kafka now wants 3 replicas"), "{report}");
    assert!(
        report.contains("kafka-reassign-partitions.sh --list"),
        "{report}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_of_one_data_store_shows_its_state() {
    let (sim, _redis, engine) = start(config()).await;
    wait_for_ring(&sim, 3).await;
    wait_for_brokers(&sim, 3).await;
    let (sender, mut receiver) = mpsc::channel(16);
    let expected = [
        ("status cassandra", "Ring: UN"),
        ("status kafka", "Brokers: 0, 1, 2 respond"),
        (
            "status redis",
            "Cluster: 3 masters (0 without slots), 3 replicas",
        ),
        ("status postgres", "Cluster status:"),
    ];
    for (text, note) in expected {
        engine.handle(request("oncall", text), sender.clone()).await;
        let reply = texts(&drain(&mut receiver));
        assert!(reply.contains(note), "{text}: {reply}");
    }
    engine.handle(request("oncall", "status"), sender).await;
    let all = texts(&drain(&mut receiver));
    assert!(!all.contains("Ring:"), "every row stays one line: {all}");
}
