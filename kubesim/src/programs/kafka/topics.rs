//! `kafka-topics.sh` (`--list`, `--describe`) and
//! `kafka-broker-api-versions.sh`.

use std::collections::{BTreeMap, BTreeSet};

use super::options::Options;
use super::{KafkaCluster, TOPICS, TopicPartition};
use crate::programs::ids::stable_hex;
use crate::programs::pods::PodView;
use crate::programs::{Context, ExecOutput};

/// API keys and version ranges a Kafka 3.7 broker reports.
// NOTE: the ranges are close to Kafka 3.7 but were not checked against a
// running broker; callers should only rely on the block structure.
const API_VERSIONS: &[(&str, u32, u32, u32)] = &[
    ("Produce", 0, 0, 10),
    ("Fetch", 1, 0, 16),
    ("ListOffsets", 2, 0, 8),
    ("Metadata", 3, 0, 12),
    ("OffsetCommit", 8, 0, 9),
    ("OffsetFetch", 9, 0, 9),
    ("FindCoordinator", 10, 0, 4),
    ("JoinGroup", 11, 0, 9),
    ("Heartbeat", 12, 0, 4),
    ("LeaveGroup", 13, 0, 5),
    ("SyncGroup", 14, 0, 5),
    ("DescribeGroups", 15, 0, 5),
    ("ListGroups", 16, 0, 4),
    ("SaslHandshake", 17, 0, 1),
    ("ApiVersions", 18, 0, 3),
    ("CreateTopics", 19, 0, 7),
    ("DeleteTopics", 20, 0, 6),
    ("DeleteRecords", 21, 0, 2),
    ("InitProducerId", 22, 0, 4),
    ("OffsetForLeaderEpoch", 23, 0, 4),
    ("AddPartitionsToTxn", 24, 0, 4),
    ("AddOffsetsToTxn", 25, 0, 3),
    ("EndTxn", 26, 0, 3),
    ("WriteTxnMarkers", 27, 0, 1),
    ("TxnOffsetCommit", 28, 0, 3),
    ("DescribeAcls", 29, 0, 3),
    ("CreateAcls", 30, 0, 3),
    ("DeleteAcls", 31, 0, 3),
    ("DescribeConfigs", 32, 0, 4),
    ("AlterConfigs", 33, 0, 2),
    ("AlterReplicaLogDirs", 34, 0, 2),
    ("DescribeLogDirs", 35, 0, 4),
    ("SaslAuthenticate", 36, 0, 2),
    ("CreatePartitions", 37, 0, 3),
    ("DeleteGroups", 42, 0, 2),
    ("ElectLeaders", 43, 0, 2),
    ("IncrementalAlterConfigs", 44, 0, 1),
    ("AlterPartitionReassignments", 45, 0, 0),
    ("ListPartitionReassignments", 46, 0, 0),
    ("OffsetDelete", 47, 0, 0),
    ("DescribeClientQuotas", 48, 0, 1),
    ("AlterClientQuotas", 49, 0, 1),
    ("DescribeUserScramCredentials", 50, 0, 0),
    ("AlterUserScramCredentials", 51, 0, 0),
    ("DescribeCluster", 60, 0, 1),
    ("DescribeProducers", 61, 0, 0),
    ("DescribeTransactions", 65, 0, 0),
    ("ListTransactions", 66, 0, 0),
    ("ConsumerGroupHeartbeat", 68, 0, 0),
];

/// Prints one block per live broker, as `kafka-broker-api-versions.sh`
/// does: `host:9092 (id: N rack: null) -> (`, the API lines, `)`.
pub(super) fn api_versions(ctx: &Context, brokers: &BTreeMap<u32, PodView>) -> ExecOutput {
    let mut out = String::new();
    for (id, pod) in brokers {
        out.push_str(&format!(
            "{}:9092 (id: {id} rack: null) -> (\n",
            pod.stable_host(ctx.namespace)
        ));
        let lines: Vec<String> = API_VERSIONS
            .iter()
            .map(|(name, key, min, max)| {
                let range = if min == max {
                    min.to_string()
                } else {
                    format!("{min} to {max}")
                };
                format!("\t{name}({key}): {range} [usable: {max}]")
            })
            .collect();
        out.push_str(&lines.join(",\n"));
        out.push_str("\n)\n");
    }
    ExecOutput::stdout(out)
}

/// A partition as `--describe` shows it.
struct PartitionState {
    /// Target replicas followed by replicas being removed.
    replicas: Vec<u32>,
    isr: Vec<u32>,
    leader: Option<u32>,
    adding: Vec<u32>,
    removing: Vec<u32>,
}

fn partition_state(
    cluster: &KafkaCluster,
    tp: &TopicPartition,
    live: &BTreeSet<u32>,
) -> PartitionState {
    let current = cluster.replicas.get(tp).cloned().unwrap_or_default();
    let target = cluster.reassignments.get(tp).map(|r| r.target.clone());
    let isr: Vec<u32> = current
        .iter()
        .copied()
        .filter(|b| live.contains(b))
        .collect();
    let leader = isr.first().copied();
    let Some(target) = target else {
        return PartitionState {
            replicas: current,
            isr,
            leader,
            adding: Vec::new(),
            removing: Vec::new(),
        };
    };
    let adding: Vec<u32> = target
        .iter()
        .copied()
        .filter(|b| !current.contains(b))
        .collect();
    let removing: Vec<u32> = current
        .iter()
        .copied()
        .filter(|b| !target.contains(b))
        .collect();
    let mut replicas = target.clone();
    replicas.extend(&removing);
    PartitionState {
        replicas,
        isr,
        leader,
        adding,
        removing,
    }
}

pub(super) fn join_ids(ids: &[u32]) -> String {
    ids.iter().map(u32::to_string).collect::<Vec<_>>().join(",")
}

/// Kafka's topic ID format: 16 bytes in URL-safe base64 without padding.
fn topic_id(namespace: &str, topic: &str) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let hex = stable_hex(&[namespace, "topic-id", topic], 32);
    let bytes: Vec<u8> = (0..16)
        .map(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).unwrap_or(0))
        .collect();
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n =
            chunk.iter().fold(0u32, |acc, b| (acc << 8) | u32::from(*b)) << (8 * (3 - chunk.len()));
        for i in 0..=chunk.len() {
            out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
        }
    }
    out
}

fn configs(topic: &str) -> &'static str {
    if topic.starts_with("__") {
        "compression.type=producer,cleanup.policy=compact,segment.bytes=104857600"
    } else {
        "min.insync.replicas=2,cleanup.policy=delete,retention.ms=604800000"
    }
}

pub(super) fn run(
    ctx: &Context,
    cluster: &KafkaCluster,
    live: &BTreeSet<u32>,
    options: &Options,
) -> ExecOutput {
    let exclude_internal = options.has("exclude-internal");
    let mut topics: Vec<&str> = TOPICS
        .iter()
        .map(|(name, _)| *name)
        .filter(|name| !(exclude_internal && name.starts_with("__")))
        .collect();
    if let Some(wanted) = options.value("topic") {
        if !topics.contains(&wanted) {
            return missing_topic(ctx, wanted);
        }
        topics = vec![wanted];
    }
    if options.has("list") {
        return ExecOutput::stdout(topics.iter().map(|t| format!("{t}\n")).collect::<String>());
    }
    if !options.has("describe") {
        return ExecOutput::failure(
            1,
            "Exactly one of --create, --list, --alter, --describe or --delete must be specified\n",
        );
    }
    let under_replicated = options.has("under-replicated-partitions");
    let out: String = topics
        .into_iter()
        .map(|topic| describe(ctx, cluster, live, topic, under_replicated))
        .collect();
    ExecOutput::stdout(out)
}

/// Builds the error `kafka-topics.sh` prints for `--topic` naming no
/// topic.
fn missing_topic(ctx: &Context, topic: &str) -> ExecOutput {
    let message = format!("Topic '{topic}' does not exist as expected");
    ExecOutput::failure(
        1,
        format!(
            "Error while executing topic command : {message}\n[{}] ERROR java.lang.IllegalArgumentException: {message}\n\tat org.apache.kafka.tools.TopicCommand.ensureTopicExists(TopicCommand.java)\n (org.apache.kafka.tools.TopicCommand)\n",
            ctx.now.format("%Y-%m-%d %H:%M:%S,%3f")
        ),
    )
}

/// Formats the `--describe` block of one topic: its header line and one line per
/// partition; with `under_replicated`, only partitions missing ISR members
/// and no header.
fn describe(
    ctx: &Context,
    cluster: &KafkaCluster,
    live: &BTreeSet<u32>,
    topic: &str,
    under_replicated: bool,
) -> String {
    let partitions = cluster.partitions_of(topic);
    let states: Vec<(u32, PartitionState)> = partitions
        .iter()
        .map(|p| (*p, partition_state(cluster, &(topic.to_string(), *p), live)))
        .collect();
    let mut out = String::new();
    if !under_replicated {
        let replication = states
            .first()
            .map_or(0, |(_, s)| s.replicas.len() - s.adding.len());
        out.push_str(&format!(
            "Topic: {topic}\tTopicId: {}\tPartitionCount: {}\tReplicationFactor: {replication}\tConfigs: {}\n",
            topic_id(ctx.namespace, topic),
            partitions.len(),
            configs(topic)
        ));
    }
    for (partition, state) in states {
        if under_replicated && state.isr.len() >= state.replicas.len() {
            continue;
        }
        let leader = state.leader.map_or("none".to_string(), |l| l.to_string());
        out.push_str(&format!(
            "\tTopic: {topic}\tPartition: {partition}\tLeader: {leader}\tReplicas: {}\tIsr: {}",
            join_ids(&state.replicas),
            join_ids(&state.isr)
        ));
        if !state.adding.is_empty() || !state.removing.is_empty() {
            out.push_str(&format!(
                "\tAdding Replicas: {}\tRemoving Replicas: {}",
                join_ids(&state.adding),
                join_ids(&state.removing)
            ));
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topic_id_is_22_base64_chars() {
        let id = topic_id("butterfly", "perception.events");
        assert_eq!(id.len(), 22);
        assert!(
            id.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        );
        assert_eq!(id, topic_id("butterfly", "perception.events"));
    }
}
