//! The Kafka cluster of a namespace and its command-line tools
//! (`kafka-topics.sh`, `kafka-consumer-groups.sh`,
//! `kafka-reassign-partitions.sh`, `kafka-broker-api-versions.sh`), with
//! Kafka 3.7's output.
//!
//! Brokers are the Ready pods of the Kafka StatefulSet; the broker ID is the
//! pod ordinal. Topics start with their replicas on brokers 0-2, the
//! cluster's initial size, so a new broker stores nothing until a partition
//! reassignment moves replicas to it.

mod groups;
mod options;
mod reassign;
#[cfg(test)]
mod tests;
mod topics;

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};

use super::ids::stable_uuid;
use super::pods::{self, PodView, Software};
use super::{Context, ExecOutput, ProgramState};
use options::Options;

/// Topics with their partition counts. Internal topics start with `__`.
const TOPICS: &[(&str, u32)] = &[
    ("__consumer_offsets", 50),
    ("perception.events", 12),
    ("synapse.actions", 6),
];
const REPLICATION_FACTOR: u32 = 3;
/// Brokers the topics were created on.
const INITIAL_BROKERS: u32 = 3;

/// A consumer group and the Deployment whose pods are its members.
pub(crate) struct ConsumerGroup {
    pub name: &'static str,
    pub topic: &'static str,
    pub app: &'static str,
}

pub(crate) const GROUPS: &[ConsumerGroup] = &[
    ConsumerGroup {
        name: "perception-group",
        topic: "perception.events",
        app: "perception",
    },
    ConsumerGroup {
        name: "synapse-service",
        topic: "synapse.actions",
        app: "synapse",
    },
];

/// Returns the consumer group the pods of `app` belong to.
pub(crate) fn consumer_group_of(app: &str) -> Option<&'static str> {
    GROUPS.iter().find(|g| g.app == app).map(|g| g.name)
}

/// Returns the member ID the Java consumer of `pod` gets in `group`: its client ID
/// and a UUID, new for every pod.
pub(crate) fn member_id(namespace: &str, group: &str, pod: &PodView) -> String {
    format!(
        "consumer-{group}-1-{}",
        stable_uuid(&[namespace, group, &pod.uid])
    )
}

/// A topic partition, printed as `topic-N`.
type TopicPartition = (String, u32);

fn partition_name((topic, partition): &TopicPartition) -> String {
    format!("{topic}-{partition}")
}

#[derive(Debug, Clone)]
struct Reassignment {
    target: Vec<u32>,
    done_at: DateTime<Utc>,
}

/// Replica assignments and running reassignments of one namespace.
#[derive(Debug, Default)]
pub(crate) struct KafkaCluster {
    replicas: BTreeMap<TopicPartition, Vec<u32>>,
    reassignments: BTreeMap<TopicPartition, Reassignment>,
}

impl KafkaCluster {
    /// Creates the topics on first use and completes reassignments that
    /// are due at `now`.
    fn settle(&mut self, now: DateTime<Utc>) {
        if self.replicas.is_empty() {
            for (topic, partitions) in TOPICS {
                for partition in 0..*partitions {
                    let replicas = (0..REPLICATION_FACTOR)
                        .map(|i| (partition + i) % INITIAL_BROKERS)
                        .collect();
                    self.replicas
                        .insert((topic.to_string(), partition), replicas);
                }
            }
        }
        let due: Vec<TopicPartition> = self
            .reassignments
            .iter()
            .filter(|(_, r)| r.done_at <= now)
            .map(|(tp, _)| tp.clone())
            .collect();
        for tp in due {
            if let Some(reassignment) = self.reassignments.remove(&tp) {
                self.replicas.insert(tp, reassignment.target);
            }
        }
    }

    fn partitions_of(&self, topic: &str) -> Vec<u32> {
        self.replicas
            .keys()
            .filter(|(t, _)| t == topic)
            .map(|(_, p)| *p)
            .collect()
    }
}

/// Returns whether `name` is one of the Kafka tools, with or without `.sh`.
pub(crate) fn is_tool(name: &str) -> bool {
    matches!(
        name.trim_end_matches(".sh"),
        "kafka-topics"
            | "kafka-consumer-groups"
            | "kafka-reassign-partitions"
            | "kafka-broker-api-versions"
    )
}

/// Returns the Ready brokers by ID (pod ordinal).
fn live_brokers(ctx: &Context) -> BTreeMap<u32, PodView> {
    pods::of_software(ctx.cluster, ctx.namespace, Software::Kafka)
        .into_iter()
        .filter(|pod| pod.ready)
        .filter_map(|pod| Some((pod.ordinal()?, pod)))
        .collect()
}

/// Runs Kafka tool `tool` in the Kafka pod of `ctx`.
pub(crate) fn run(
    ctx: &Context,
    state: &mut ProgramState,
    tool: &str,
    args: &[String],
) -> ExecOutput {
    let tool = tool.trim_end_matches(".sh");
    let options = match Options::parse(args) {
        Ok(options) => options,
        Err(output) => return output,
    };
    if options.value("bootstrap-server").is_none() {
        return ExecOutput::failure(
            1,
            "Missing required argument \"[bootstrap-server]\"\nOption                                 Description\n------                                 -----------\n--bootstrap-server <String: server to   REQUIRED: The Kafka server to connect\n  connect to>                            to.\n",
        );
    }
    let brokers = live_brokers(ctx);
    if brokers.is_empty() {
        return ExecOutput::failure(
            1,
            "Error while executing command: org.apache.kafka.common.errors.TimeoutException: Timed out waiting for a node assignment. Call: listNodes\n",
        );
    }
    let live: BTreeSet<u32> = brokers.keys().copied().collect();
    match tool {
        "kafka-broker-api-versions" => topics::api_versions(ctx, &brokers),
        "kafka-topics" => {
            let cluster = state.kafka.entry(ctx.namespace.to_string()).or_default();
            cluster.settle(ctx.now);
            topics::run(ctx, cluster, &live, &options)
        }
        "kafka-consumer-groups" => groups::run(ctx, &options),
        _ => reassign::run(ctx, state, &live, &options),
    }
}
