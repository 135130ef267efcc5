//! `kafka-reassign-partitions.sh`: `--generate`, `--execute`, `--verify`,
//! `--list` and `--cancel`. Plan files are read from the pod's simulated
//! filesystem, where scripts write them (`cat > /tmp/plan.json`).
//!
//! An executed reassignment of partition N takes `timing.ready_delay`
//! times 2 + N % 3 on the programs' clock, so a verify soon after execute
//! reports some partitions still in progress.

use std::collections::BTreeSet;

use chrono::TimeDelta;
use serde_json::Value;

use super::options::Options;
use super::topics::join_ids;
use super::{KafkaCluster, Reassignment, TopicPartition, partition_name};
use crate::programs::ids::stable_hash;
use crate::programs::{Context, ExecOutput, ProgramState};

fn error(message: impl std::fmt::Display) -> ExecOutput {
    ExecOutput::failure(1, format!("Error: {message}\n"))
}

/// A plan as `--execute` and `--verify` read it: partitions and target
/// replicas, in file order.
type Plan = Vec<(TopicPartition, Vec<u32>)>;

/// Writes a plan as the tool prints it: compact JSON, members in Kafka's
/// order, every log dir `any`.
fn plan_json(plan: &[(TopicPartition, Vec<u32>)]) -> String {
    let partitions: Vec<String> = plan
        .iter()
        .map(|((topic, partition), replicas)| {
            let dirs = vec!["\"any\""; replicas.len()].join(",");
            format!(
                "{{\"topic\":{},\"partition\":{partition},\"replicas\":[{}],\"log_dirs\":[{dirs}]}}",
                Value::from(topic.as_str()),
                join_ids(replicas)
            )
        })
        .collect();
    format!(
        "{{\"version\":1,\"partitions\":[{}]}}",
        partitions.join(",")
    )
}

fn read_json(ctx: &Context, state: &ProgramState, path: &str) -> Result<Value, ExecOutput> {
    let Some(bytes) = state.read_file(ctx.pod, path) else {
        return Err(ExecOutput::failure(
            1,
            format!("Exception in thread \"main\" java.nio.file.NoSuchFileException: {path}\n"),
        ));
    };
    serde_json::from_slice(bytes)
        .map_err(|e| error(format!("Unable to parse the JSON in {path}: {e}")))
}

fn parse_plan(document: &Value) -> Result<Plan, ExecOutput> {
    let Some(entries) = document["partitions"].as_array() else {
        return Err(error(
            "The reassignment JSON must contain a \"partitions\" list",
        ));
    };
    entries
        .iter()
        .map(|entry| {
            let topic = entry["topic"].as_str();
            let partition = entry["partition"]
                .as_u64()
                .and_then(|p| u32::try_from(p).ok());
            let replicas: Option<Vec<u32>> = entry["replicas"].as_array().and_then(|list| {
                list.iter()
                    .map(|r| r.as_u64().and_then(|r| u32::try_from(r).ok()))
                    .collect()
            });
            match (topic, partition, replicas) {
                (Some(topic), Some(partition), Some(replicas)) => {
                    Ok(((topic.to_string(), partition), replicas))
                }
                _ => Err(error(format!(
                    "Invalid partition entry in the reassignment JSON: {entry}"
                ))),
            }
        })
        .collect()
}

pub(super) fn run(
    ctx: &Context,
    state: &mut ProgramState,
    live: &BTreeSet<u32>,
    options: &Options,
) -> ExecOutput {
    let modes = ["generate", "execute", "verify", "list", "cancel"];
    let chosen: Vec<&str> = modes.iter().copied().filter(|m| options.has(m)).collect();
    let [mode] = chosen.as_slice() else {
        return error(
            "Command must include exactly one action: --generate, --execute, --verify, --cancel, --list",
        );
    };
    let file_option = if *mode == "generate" {
        "topics-to-move-json-file"
    } else {
        "reassignment-json-file"
    };
    let document = match (*mode, options.value(file_option)) {
        ("list", _) => Value::Null,
        (_, Some(path)) => match read_json(ctx, state, path) {
            Ok(document) => document,
            Err(output) => return output,
        },
        (_, None) => return error(format!("Missing required argument \"[{file_option}]\"")),
    };
    let cluster = state.kafka.entry(ctx.namespace.to_string()).or_default();
    cluster.settle(ctx.now);
    if *mode == "generate" {
        return generate(ctx, cluster, live, &document, options);
    }
    if *mode == "list" {
        return list(cluster);
    }
    let plan = match parse_plan(&document) {
        Ok(plan) => plan,
        Err(output) => return output,
    };
    match *mode {
        "execute" => execute(ctx, cluster, live, &plan, options),
        "verify" => verify(cluster, live, &plan, options),
        _ => cancel(cluster, &plan),
    }
}

fn generate(
    ctx: &Context,
    cluster: &KafkaCluster,
    live: &BTreeSet<u32>,
    document: &Value,
    options: &Options,
) -> ExecOutput {
    let brokers = match parse_broker_list(options, live) {
        Ok(brokers) => brokers,
        Err(output) => return output,
    };
    let Some(topics) = document["topics"].as_array() else {
        return error("The topics-to-move JSON must contain a \"topics\" list");
    };
    let mut current = Vec::new();
    let mut proposed = Vec::new();
    for entry in topics {
        let Some(topic) = entry["topic"].as_str() else {
            return error(format!(
                "Invalid topic entry in the topics-to-move JSON: {entry}"
            ));
        };
        match propose(ctx, cluster, topic, &brokers) {
            Ok(moves) => {
                for (tp, replicas, target) in moves {
                    current.push((tp.clone(), replicas));
                    proposed.push((tp, target));
                }
            }
            Err(output) => return output,
        }
    }
    ExecOutput::stdout(format!(
        "Current partition replica assignment\n{}\n\nProposed partition reassignment configuration\n{}\n",
        plan_json(&current),
        plan_json(&proposed)
    ))
}

/// Parses `--broker-list 0,1,2,3`; every broker must be live.
fn parse_broker_list(options: &Options, live: &BTreeSet<u32>) -> Result<Vec<u32>, ExecOutput> {
    let Some(broker_list) = options.value("broker-list") else {
        return Err(error("Missing required argument \"[broker-list]\""));
    };
    let brokers: Result<Vec<u32>, _> = broker_list
        .split(',')
        .map(|b| b.trim().parse::<u32>())
        .collect();
    let Ok(brokers) = brokers else {
        return Err(error(format!(
            "Invalid broker list \"{broker_list}\": expected comma-separated broker IDs"
        )));
    };
    let missing: Vec<u32> = brokers
        .iter()
        .copied()
        .filter(|b| !live.contains(b))
        .collect();
    if !missing.is_empty() {
        return Err(error(format!(
            "The given broker list contains non-existent brokers: {}",
            join_ids(&missing)
        )));
    }
    Ok(brokers)
}

/// A partition with its current and proposed replicas.
type Move = (TopicPartition, Vec<u32>, Vec<u32>);

/// Spreads the replicas of `topic` round-robin over `brokers`, keeping each
/// partition's replication factor. Returns each partition with its current
/// and proposed replicas.
fn propose(
    ctx: &Context,
    cluster: &KafkaCluster,
    topic: &str,
    brokers: &[u32],
) -> Result<Vec<Move>, ExecOutput> {
    let partitions = cluster.partitions_of(topic);
    if partitions.is_empty() {
        return Err(error(format!("Topic {topic} not found")));
    }
    // Kafka starts at a random broker; a stable one keeps output repeatable.
    let start =
        (stable_hash(&[ctx.namespace, topic, "assignment"]) % brokers.len() as u64) as usize;
    let mut moves = Vec::new();
    for partition in partitions {
        let tp = (topic.to_string(), partition);
        let replicas = cluster.replicas[&tp].clone();
        if replicas.len() > brokers.len() {
            return Err(error(format!(
                "Replication factor: {} larger than available brokers: {}.",
                replicas.len(),
                brokers.len()
            )));
        }
        let target = (0..replicas.len())
            .map(|i| brokers[(start + partition as usize + i) % brokers.len()])
            .collect();
        moves.push((tp, replicas, target));
    }
    Ok(moves)
}

/// Checks that every partition of `plan` exists and every target is a
/// non-empty list of distinct live brokers.
fn validate_plan(
    cluster: &KafkaCluster,
    live: &BTreeSet<u32>,
    plan: &Plan,
) -> Result<(), ExecOutput> {
    let unknown: Vec<String> = plan
        .iter()
        .filter(|(tp, _)| !cluster.replicas.contains_key(tp))
        .map(|(tp, _)| partition_name(tp))
        .collect();
    if !unknown.is_empty() {
        return Err(error(format!(
            "The proposed assignment contains non-existent partitions: {}",
            unknown.join(",")
        )));
    }
    let brokers: BTreeSet<u32> = plan
        .iter()
        .flat_map(|(_, replicas)| replicas.iter().copied())
        .collect();
    let missing: Vec<u32> = brokers.difference(live).copied().collect();
    if !missing.is_empty() {
        return Err(error(format!(
            "The proposed assignment contains non-existent brokerIDs: {}",
            join_ids(&missing)
        )));
    }
    let invalid = plan
        .iter()
        .find(|(_, r)| r.is_empty() || r.iter().collect::<BTreeSet<_>>().len() != r.len());
    if let Some((tp, replicas)) = invalid {
        return Err(error(format!(
            "Partition replica lists may not be empty or contain duplicate entries: {} has {}",
            partition_name(tp),
            join_ids(replicas)
        )));
    }
    Ok(())
}

fn execute(
    ctx: &Context,
    cluster: &mut KafkaCluster,
    live: &BTreeSet<u32>,
    plan: &Plan,
    options: &Options,
) -> ExecOutput {
    if let Err(output) = validate_plan(cluster, live, plan) {
        return output;
    }
    let current: Vec<(TopicPartition, Vec<u32>)> = plan
        .iter()
        .map(|(tp, _)| (tp.clone(), cluster.replicas[tp].clone()))
        .collect();
    for (tp, target) in plan {
        let steps = if cluster.replicas[tp] == *target {
            0
        } else {
            2 + tp.1 % 3
        };
        let duration =
            TimeDelta::from_std(ctx.cluster.timing.ready_delay * steps).unwrap_or(TimeDelta::MAX);
        let reassignment = Reassignment {
            target: target.clone(),
            done_at: ctx.now + duration,
        };
        cluster.reassignments.insert(tp.clone(), reassignment);
    }
    cluster.settle(ctx.now);

    let mut out = format!(
        "Current partition replica assignment\n\n{}\n\nSave this to use as the --reassignment-json-file option during rollback\n",
        plan_json(&current)
    );
    if let Some(throttle) = options.value("throttle") {
        out.push_str(
            "Warning: You must run --verify periodically, until the reassignment completes, to ensure the throttle is removed.\n",
        );
        out.push_str(&format!(
            "The inter-broker throttle limit was set to {throttle} B/s\n"
        ));
    }
    let names: Vec<String> = plan.iter().map(|(tp, _)| partition_name(tp)).collect();
    out.push_str(&format!(
        "Successfully started partition reassignments for {}\n",
        names.join(",")
    ));
    ExecOutput::stdout(out)
}

fn verify(
    cluster: &KafkaCluster,
    live: &BTreeSet<u32>,
    plan: &Plan,
    options: &Options,
) -> ExecOutput {
    let mut out = String::from("Status of partition reassignment:\n");
    let mut in_progress = false;
    for (tp, target) in plan {
        let name = partition_name(tp);
        if cluster.reassignments.contains_key(tp) {
            in_progress = true;
            out.push_str(&format!(
                "Reassignment of partition {name} is still in progress.\n"
            ));
            continue;
        }
        let current = cluster.replicas.get(tp).cloned().unwrap_or_default();
        if current == *target {
            out.push_str(&format!("Reassignment of partition {name} is complete.\n"));
        } else {
            out.push_str(&format!(
                "There is no active reassignment of partition {name}, but replica set is {} rather than {}.\n",
                join_ids(&current),
                join_ids(target)
            ));
        }
    }
    // The tool removes replication throttles once nothing is moving, unless
    // `--preserve-throttles` is given.
    if !in_progress && !options.has("preserve-throttles") {
        let brokers: Vec<u32> = live.iter().copied().collect();
        out.push_str(&format!(
            "\nClearing broker-level throttles on brokers {}\n",
            join_ids(&brokers)
        ));
        let topics: BTreeSet<&str> = plan.iter().map(|((topic, _), _)| topic.as_str()).collect();
        for topic in topics {
            out.push_str(&format!(
                "Clearing topic-level throttles on topic {topic}\n"
            ));
        }
    }
    ExecOutput::stdout(out)
}

fn list(cluster: &KafkaCluster) -> ExecOutput {
    if cluster.reassignments.is_empty() {
        return ExecOutput::stdout("No partition reassignments found.\n");
    }
    let mut out = String::from("Current partition reassignments:\n");
    for (tp, reassignment) in &cluster.reassignments {
        let current = &cluster.replicas[tp];
        let adding: Vec<u32> = reassignment
            .target
            .iter()
            .copied()
            .filter(|b| !current.contains(b))
            .collect();
        let removing: Vec<u32> = current
            .iter()
            .copied()
            .filter(|b| !reassignment.target.contains(b))
            .collect();
        let mut all = reassignment.target.clone();
        all.extend(&removing);
        out.push_str(&format!(
            "{}: replicas: {}. adding: {}. removing: {}.\n",
            partition_name(tp),
            join_ids(&all),
            join_ids(&adding),
            join_ids(&removing)
        ));
    }
    ExecOutput::stdout(out)
}

fn cancel(cluster: &mut KafkaCluster, plan: &Plan) -> ExecOutput {
    let cancelled: Vec<String> = plan
        .iter()
        .filter(|(tp, _)| cluster.reassignments.remove(tp).is_some())
        .map(|(tp, _)| partition_name(tp))
        .collect();
    if cancelled.is_empty() {
        return ExecOutput::stdout("None of the specified partition reassignments are active.\n");
    }
    ExecOutput::stdout(format!(
        "Successfully cancelled partition reassignments for: {}\n",
        cancelled.join(",")
    ))
}
