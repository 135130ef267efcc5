//! Scaling of a Kafka StatefulSet ("Infrastructure Scaling: Kafka" and
//! "Kafka Scale Down" in the runbook). Broker ids are pod ordinals.
//!
//! Adding brokers: patch the StatefulSet up one broker at a time, wait until
//! `kafka-broker-api-versions.sh` lists each new broker, then reassign the
//! partitions of every topic over all brokers and wait until `--verify`
//! reports the reassignment complete. Removing brokers: reassign every
//! partition onto the remaining brokers first, check that the brokers to
//! remove hold no replica, then patch the StatefulSet down one broker at a
//! time. Both start only when the expected brokers are up and no other
//! reassignment is running. The current assignment is saved in the pod
//! before any reassignment, so that it can be restored by hand.

use std::collections::BTreeSet;
use std::time::Duration;

use tokio::time::Instant;

use super::horizontal::PROGRESS_INTERVAL;
use super::{
    Outcome, Progress, StatefulPlan, StepError, Steps, check_lock, last_line, run_tool,
    unchanged_line,
};
use crate::cluster::{Cluster, ClusterError, ExecOutput};

/// The bootstrap server the tools in the broker pods connect to.
const BOOTSTRAP: &str = "localhost:9092";

/// Maximum run time of one Kafka tool call.
pub const TOOL_TIMEOUT: Duration = Duration::from_secs(120);

/// Interval between two reads of the broker list or the reassignment
/// status, which run a JVM tool in the broker pod.
const TOOL_POLL_INTERVAL: Duration = Duration::from_secs(2);

/// Minimum interval between two progress lines of a running reassignment.
const REASSIGNMENT_REPORT_INTERVAL: Duration = Duration::from_secs(5);

/// How long `--verify` may keep failing before the procedure stops
/// watching the reassignment.
const VERIFY_FAILURE_LIMIT: Duration = Duration::from_secs(5 * 60);

/// Maximum time a reassignment may take to complete. Moving replicas copies
/// their data, which can take hours on large topics.
pub const REASSIGNMENT_TIMEOUT: Duration = Duration::from_secs(2 * 60 * 60);

/// Heading that `kafka-reassign-partitions.sh --generate` prints before
/// the proposed plan, and before the current assignment.
const PROPOSED_HEADING: &str = "Proposed partition reassignment configuration";
const CURRENT_HEADING: &str = "Current partition replica assignment";

/// Parses the broker ids from `kafka-broker-api-versions.sh`, whose broker
/// lines read `host:9092 (id: 3 rack: null) -> (`.
pub fn parse_broker_ids(output: &str) -> BTreeSet<u32> {
    output
        .lines()
        .filter_map(|line| {
            let rest = line.split_once("(id: ")?.1;
            let id = rest.split_whitespace().next()?;
            id.parse().ok()
        })
        .collect()
}

/// Parses the replica brokers of every partition from `kafka-topics.sh
/// --describe`, whose partition lines contain `Replicas: 0,1,2`.
pub fn parse_replica_brokers(output: &str) -> BTreeSet<u32> {
    output
        .lines()
        .filter_map(|line| line.split_once("Replicas: ").map(|(_, rest)| rest))
        .filter_map(|rest| rest.split_whitespace().next())
        .flat_map(|list| list.split(','))
        .filter_map(|id| id.parse().ok())
        .collect()
}

/// Returns the JSON line that follows `heading` in the output of
/// `--generate`.
pub fn plan_after(output: &str, heading: &str) -> Option<String> {
    let rest = output.split_once(heading)?.1;
    rest.lines()
        .map(str::trim)
        .find(|line| line.starts_with('{'))
        .map(str::to_string)
}

/// Counts the partitions of a reassignment plan.
pub fn planned_partitions(plan: &str) -> usize {
    serde_json::from_str::<serde_json::Value>(plan)
        .ok()
        .and_then(|document| document["partitions"].as_array().map(Vec::len))
        .unwrap_or(0)
}

/// Counts the partitions that `--verify` reports as neither moving nor on
/// their planned replicas, as after a cancelled reassignment:
/// `There is no active reassignment of partition t-0, but replica set is
/// 0,1,2 rather than 3,1,2.`
pub fn stray_partitions(output: &str) -> usize {
    output
        .lines()
        .filter(|line| {
            line.starts_with("There is no active reassignment of partition")
                && line.contains("rather than")
        })
        .count()
}

/// Counts the partitions that `--verify` reports, and those complete.
pub fn verify_counts(output: &str) -> (usize, usize) {
    let partitions = output.matches("Reassignment of partition").count();
    let complete = output
        .lines()
        .filter(|line| {
            line.starts_with("Reassignment of partition") && line.ends_with("is complete.")
        })
        .count();
    (partitions, complete)
}

fn broker_list(count: u32) -> String {
    (0..count)
        .map(|id| id.to_string())
        .collect::<Vec<_>>()
        .join(",")
}

pub fn format_ids(ids: &BTreeSet<u32>) -> String {
    if ids.is_empty() {
        return "none".to_string();
    }
    ids.iter()
        .map(u32::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// Runs a Kafka tool in the seed broker and fails on a non-zero exit.
async fn tool(
    cluster: &Cluster,
    plan: &StatefulPlan,
    command: &[&str],
    limit: Duration,
) -> Result<Result<ExecOutput, String>, ClusterError> {
    run_tool(cluster, &plan.namespace, &plan.seed(), command, limit).await
}

/// Returns the ids of the brokers that respond to `pod` in `namespace`.
pub async fn live_brokers(
    cluster: &Cluster,
    namespace: &str,
    pod: &str,
) -> Result<BTreeSet<u32>, ClusterError> {
    let command = [
        "kafka-broker-api-versions.sh",
        "--bootstrap-server",
        BOOTSTRAP,
    ];
    let output = cluster.exec(namespace, pod, &command, TOOL_TIMEOUT).await?;
    Ok(parse_broker_ids(&output.stdout))
}

async fn brokers(cluster: &Cluster, plan: &StatefulPlan) -> Result<BTreeSet<u32>, ClusterError> {
    live_brokers(cluster, &plan.namespace, &plan.seed()).await
}

/// Returns why the brokers are not `0..count`, or `None` when they are.
pub fn brokers_problem(live: &BTreeSet<u32>, count: u32) -> Option<String> {
    let expected: BTreeSet<u32> = (0..count).collect();
    (*live != expected).then(|| {
        format!(
            "brokers {} respond, expected {}",
            format_ids(live),
            format_ids(&expected)
        )
    })
}

/// Runs the procedure. Every step reports through `progress`; the returned
/// outcome describes the final state, including on timeout.
pub async fn run(
    cluster: &Cluster,
    plan: &StatefulPlan,
    progress: &Progress,
) -> Result<Outcome, StepError> {
    let started = Instant::now();
    let name = &plan.workload;
    let count = plan.from.abs_diff(plan.to);
    // The unchanged and readiness checks, one step per broker, the
    // reassignment and the verification.
    let total = if plan.to > plan.from {
        2 + count + 1 + 1
    } else {
        2 + 1 + count + 1
    };
    let mut step = Steps::new(total);

    let before = plan.check_unchanged(cluster).await?;
    progress
        .step(step.next(unchanged_line(name, &before)))
        .await;

    if let Some(problem) = readiness_problem(cluster, plan).await? {
        return Ok(Outcome::failed(
            format!(
                "{name}: the cluster is not ready for a change, so nothing was changed: {problem}"
            ),
            Vec::new(),
            started.elapsed(),
        ));
    }
    progress
        .step(step.next(format!(
            "brokers {} respond and no reassignment is running",
            format_ids(&(0..plan.from).collect())
        )))
        .await;

    let failure = if plan.to > plan.from {
        add_brokers(cluster, plan, progress, &mut step).await?
    } else {
        remove_brokers(cluster, plan, progress, &mut step).await?
    };
    if let Some(summary) = failure {
        return Ok(Outcome::failed(summary, Vec::new(), started.elapsed()));
    }

    let unknown = |error: ClusterError| plan.state_unknown(error);
    let live = brokers(cluster, plan).await.map_err(unknown)?;
    let holding = replica_brokers(cluster, plan).await.map_err(unknown)?;
    let summary = format!(
        "{name} scaled from {} to {} brokers in {:.1}s",
        plan.from,
        plan.to,
        started.elapsed().as_secs_f64()
    );
    let expected: BTreeSet<u32> = (0..plan.to).collect();
    let mut problems = Vec::new();
    if let Some(problem) = brokers_problem(&live, plan.to) {
        problems.push(format!("problem: {problem}"));
    }
    if !holding.is_subset(&expected) {
        problems.push(format!(
            "problem: replicas are on brokers {}, outside {}",
            format_ids(&holding),
            format_ids(&expected)
        ));
    }
    if plan.to > plan.from && !(plan.from..plan.to).all(|id| holding.contains(&id)) {
        problems.push(format!(
            "problem: the new brokers hold no replicas (replicas are on {})",
            format_ids(&holding)
        ));
    }
    if problems.is_empty() {
        progress
            .step(step.next(format!(
                "verified: brokers {} respond and hold the replicas",
                format_ids(&live)
            )))
            .await;
        Ok(Outcome::succeeded(summary, Vec::new(), started.elapsed()))
    } else {
        Ok(Outcome::failed(
            format!("{summary}, but verification found problems"),
            problems,
            started.elapsed(),
        ))
    }
}

/// Returns why the cluster is not ready: brokers other than `0..from`
/// respond, or a reassignment is running.
async fn readiness_problem(
    cluster: &Cluster,
    plan: &StatefulPlan,
) -> Result<Option<String>, ClusterError> {
    let live = brokers(cluster, plan).await?;
    if let Some(problem) = brokers_problem(&live, plan.from) {
        return Ok(Some(problem));
    }
    let command = [
        "kafka-reassign-partitions.sh",
        "--bootstrap-server",
        BOOTSTRAP,
        "--list",
    ];
    match tool(cluster, plan, &command, TOOL_TIMEOUT).await? {
        Ok(output) if output.stdout.contains("No partition reassignments found") => Ok(None),
        Ok(output) => Ok(Some(format!(
            "a partition reassignment is running{}",
            last_line(&output)
        ))),
        Err(failure) => Ok(Some(failure)),
    }
}

/// Returns the brokers that hold a replica of any partition.
async fn replica_brokers(
    cluster: &Cluster,
    plan: &StatefulPlan,
) -> Result<BTreeSet<u32>, ClusterError> {
    let command = [
        "kafka-topics.sh",
        "--bootstrap-server",
        BOOTSTRAP,
        "--describe",
    ];
    let output = cluster
        .exec(&plan.namespace, &plan.seed(), &command, TOOL_TIMEOUT)
        .await?;
    Ok(parse_replica_brokers(&output.stdout))
}

/// Adds brokers one by one, then spreads the partitions over all brokers.
/// Returns the summary of a failure, or `None` on success.
async fn add_brokers(
    cluster: &Cluster,
    plan: &StatefulPlan,
    progress: &Progress,
    step: &mut Steps,
) -> Result<Option<String>, StepError> {
    let name = &plan.workload;
    for replicas in plan.from + 1..=plan.to {
        let stage = "before adding a broker";
        let consequence = "; no partitions were moved";
        if let Some(failure) = plan
            .add_pod(cluster, progress, replicas, stage, consequence)
            .await?
        {
            return Ok(Some(failure));
        }
        let id = replicas - 1;
        if !wait_for_broker(cluster, plan, progress, id).await? {
            return Ok(Some(format!(
                "{name}: broker {id} did not respond within {}s; no partitions were moved",
                plan.rollout_timeout.as_secs()
            )));
        }
        progress
            .step(step.next(format!(
                "patched {name} to {replicas} replicas and broker {id} joined the cluster"
            )))
            .await;
    }
    reassign(cluster, plan, progress, step).await
}

/// Moves every partition onto the remaining brokers, checks that the
/// brokers to remove hold nothing, then removes them one by one.
async fn remove_brokers(
    cluster: &Cluster,
    plan: &StatefulPlan,
    progress: &Progress,
    step: &mut Steps,
) -> Result<Option<String>, StepError> {
    let name = &plan.workload;
    if let Some(failure) = reassign(cluster, plan, progress, step).await? {
        return Ok(Some(failure));
    }
    let holding = replica_brokers(cluster, plan).await?;
    let leaving: BTreeSet<u32> = (plan.to..plan.from).collect();
    let still: BTreeSet<u32> = holding.intersection(&leaving).copied().collect();
    if !still.is_empty() {
        return Ok(Some(format!(
            "{name}: brokers {} still hold replicas after the reassignment, so the StatefulSet was left at {} replicas",
            format_ids(&still),
            plan.from
        )));
    }
    for replicas in (plan.to..plan.from).rev() {
        check_lock(progress, "after the reassignment, before removing a broker")?;
        let rollout = plan
            .scale_and_wait(cluster, progress, replicas + 1, replicas)
            .await?;
        if let Err(status) = rollout {
            return Ok(Some(plan.rollout_failure(replicas, &status, "", None)));
        }
        progress
            .step(step.next(format!(
                "patched {name} to {replicas} replicas; broker {replicas} is gone"
            )))
            .await;
    }
    Ok(None)
}

/// Polls the broker list until broker `id` responds. Returns false after the
/// rollout timeout.
async fn wait_for_broker(
    cluster: &Cluster,
    plan: &StatefulPlan,
    progress: &Progress,
    id: u32,
) -> Result<bool, StepError> {
    let deadline = Instant::now() + plan.rollout_timeout;
    let mut last_report_at: Option<Instant> = None;
    loop {
        check_lock(
            progress,
            "while waiting for a broker; replicas were already patched",
        )?;
        let live = match brokers(cluster, plan).await {
            Ok(live) => live,
            Err(error) => {
                progress
                    .step(format!("   listing brokers failed, retrying: {error}"))
                    .await;
                BTreeSet::new()
            }
        };
        if live.contains(&id) {
            return Ok(true);
        }
        if last_report_at.is_none_or(|at| at.elapsed() >= PROGRESS_INTERVAL) {
            let remaining = deadline.saturating_duration_since(Instant::now()).as_secs();
            progress
                .step(format!(
                    "   waiting for broker {id}: brokers {} respond ({remaining}s left)",
                    format_ids(&live)
                ))
                .await;
            last_report_at = Some(Instant::now());
        }
        if Instant::now() >= deadline {
            return Ok(false);
        }
        tokio::time::sleep(TOOL_POLL_INTERVAL).await;
    }
}

/// Largest piece of a file written with one `echo`, well below Linux's
/// 128 KiB limit on one command-line argument.
const ECHO_PIECE: usize = 64 * 1024;

/// Splits JSON into pieces of at most about [`ECHO_PIECE`] bytes, each
/// ending after a `},` between array elements, so that the pieces written
/// on separate lines still form the same JSON document.
pub fn json_pieces(content: &str) -> Vec<&str> {
    let mut pieces = Vec::new();
    let mut start = 0;
    let mut last_cut = 0;
    for (index, _) in content.match_indices("},") {
        let end = index + 2;
        if end - start > ECHO_PIECE && last_cut > start {
            pieces.push(&content[start..last_cut]);
            start = last_cut;
        }
        last_cut = end;
    }
    if content.len() - start > ECHO_PIECE && last_cut > start {
        pieces.push(&content[start..last_cut]);
        start = last_cut;
    }
    pieces.push(&content[start..]);
    pieces
}

/// Writes `content` to `path` in the seed broker, in pieces of JSON that
/// each fit one command-line argument. The content must not contain a
/// single quote, which JSON of topic names and ids never does.
async fn write_file(
    cluster: &Cluster,
    plan: &StatefulPlan,
    path: &str,
    content: &str,
) -> Result<Result<(), String>, ClusterError> {
    if content.contains('\'') {
        return Ok(Err(format!("{path}: the content contains a single quote")));
    }
    for (position, piece) in json_pieces(content).into_iter().enumerate() {
        let redirect = if position == 0 { ">" } else { ">>" };
        let script = format!("echo '{piece}' {redirect} {path}");
        if let Err(failure) = tool(cluster, plan, &["sh", "-c", &script], TOOL_TIMEOUT).await? {
            return Ok(Err(failure));
        }
    }
    Ok(Ok(()))
}

/// Generates a plan that places every topic's partitions on brokers
/// `0..plan.to`, saves the current assignment, executes the plan and waits
/// until `--verify` reports every partition complete. Returns the summary
/// of a failure, or `None` on success.
async fn reassign(
    cluster: &Cluster,
    plan: &StatefulPlan,
    progress: &Progress,
    step: &mut Steps,
) -> Result<Option<String>, StepError> {
    let name = &plan.workload;
    check_lock(progress, "before the partition reassignment")?;
    let prefix = format!("/tmp/scalebot-{name}-{}-to-{}", plan.from, plan.to);
    let topics_file = format!("{prefix}-topics.json");
    let plan_file = format!("{prefix}-plan.json");
    let rollback_file = format!("{prefix}-rollback.json");

    let list = ["kafka-topics.sh", "--bootstrap-server", BOOTSTRAP, "--list"];
    let topics = match tool(cluster, plan, &list, TOOL_TIMEOUT).await? {
        Ok(output) => output
            .stdout
            .lines()
            .map(str::trim)
            .filter(|topic| !topic.is_empty())
            .map(|topic| serde_json::json!({ "topic": topic }))
            .collect::<Vec<_>>(),
        Err(failure) => return Ok(Some(format!("{name}: {failure}"))),
    };
    if topics.is_empty() {
        return Ok(Some(format!(
            "{name}: kafka-topics.sh --list printed no topics"
        )));
    }
    let document = serde_json::json!({ "version": 1, "topics": topics }).to_string();
    if let Err(failure) = write_file(cluster, plan, &topics_file, &document).await? {
        return Ok(Some(format!("{name}: writing {failure}")));
    }

    let brokers = broker_list(plan.to);
    let generate = [
        "kafka-reassign-partitions.sh",
        "--bootstrap-server",
        BOOTSTRAP,
        "--topics-to-move-json-file",
        &topics_file,
        "--broker-list",
        &brokers,
        "--generate",
    ];
    let generated = match tool(cluster, plan, &generate, TOOL_TIMEOUT).await? {
        Ok(output) => output.stdout,
        Err(failure) => return Ok(Some(format!("{name}: {failure}"))),
    };
    let (Some(current), Some(proposed)) = (
        plan_after(&generated, CURRENT_HEADING),
        plan_after(&generated, PROPOSED_HEADING),
    ) else {
        return Ok(Some(format!(
            "{name}: --generate printed no plan{}",
            last_line(&ExecOutput {
                stdout: generated,
                ..ExecOutput::default()
            })
        )));
    };
    let planned = planned_partitions(&proposed);
    if planned == 0 {
        return Ok(Some(format!(
            "{name}: the proposed plan lists no partitions, so nothing was moved"
        )));
    }
    for (path, content) in [(&rollback_file, &current), (&plan_file, &proposed)] {
        if let Err(failure) = write_file(cluster, plan, path, content).await? {
            return Ok(Some(format!("{name}: writing {failure}")));
        }
    }
    progress
        .step(format!(
            "   saved the current assignment to {rollback_file} in {} (for --execute to roll back)",
            plan.seed()
        ))
        .await;

    check_lock(progress, "before executing the partition reassignment")?;
    let execute = [
        "kafka-reassign-partitions.sh",
        "--bootstrap-server",
        BOOTSTRAP,
        "--reassignment-json-file",
        &plan_file,
        "--execute",
    ];
    if let Err(failure) = tool(cluster, plan, &execute, TOOL_TIMEOUT).await? {
        return Ok(Some(format!("{name}: {failure}")));
    }

    let verify = [
        "kafka-reassign-partitions.sh",
        "--bootstrap-server",
        BOOTSTRAP,
        "--reassignment-json-file",
        &plan_file,
        "--verify",
    ];
    let deadline = Instant::now() + REASSIGNMENT_TIMEOUT;
    let mut last_reported: Option<(usize, usize)> = None;
    let mut last_report_at = Instant::now();
    let mut failing_since: Option<Instant> = None;
    let mut last_failure_report: Option<Instant> = None;
    loop {
        check_lock(
            progress,
            "while partitions were being reassigned; the reassignment continues in Kafka",
        )?;
        let failure = match tool(cluster, plan, &verify, TOOL_TIMEOUT).await {
            Ok(Ok(output)) => {
                failing_since = None;
                let (_, complete) = verify_counts(&output.stdout);
                let stray = stray_partitions(&output.stdout);
                if stray > 0 {
                    return Ok(Some(format!(
                        "{name}: {stray} of {planned} partitions are not on their planned brokers and no reassignment is moving them (was it cancelled?). Check with --verify on {plan_file} in {}; {rollback_file} holds the previous assignment",
                        plan.seed()
                    )));
                }
                if complete == planned {
                    progress
                        .step(step.next(format!(
                            "reassigned {planned} partitions onto brokers {brokers}"
                        )))
                        .await;
                    return Ok(None);
                }
                let partitions = planned;
                let counts = (partitions, complete);
                let changed = last_reported != Some(counts)
                    && (last_reported.is_none()
                        || last_report_at.elapsed() >= REASSIGNMENT_REPORT_INTERVAL);
                if changed || last_report_at.elapsed() >= PROGRESS_INTERVAL {
                    let remaining = deadline.saturating_duration_since(Instant::now()).as_secs();
                    progress
                        .step(format!(
                            "   reassignment: {complete} of {partitions} partitions complete ({remaining}s left)"
                        ))
                        .await;
                    last_reported = Some(counts);
                    last_report_at = Instant::now();
                }
                None
            }
            Ok(Err(failure)) => Some(failure),
            Err(error) => Some(format!("verifying the reassignment failed: {error}")),
        };
        if let Some(failure) = failure {
            let since = *failing_since.get_or_insert_with(Instant::now);
            if since.elapsed() >= VERIFY_FAILURE_LIMIT {
                return Ok(Some(format!(
                    "{name}: --verify failed for {} min, so the bot stopped watching the reassignment: {failure}. Check it with `kafka-reassign-partitions.sh --list` in {}; {rollback_file} holds the previous assignment",
                    VERIFY_FAILURE_LIMIT.as_secs() / 60,
                    plan.seed()
                )));
            }
            if last_failure_report.is_none_or(|at| at.elapsed() >= PROGRESS_INTERVAL) {
                progress.step(format!("   {failure}; retrying")).await;
                last_failure_report = Some(Instant::now());
            }
        }
        if Instant::now() >= deadline {
            return Ok(Some(format!(
                "{name}: the reassignment did not complete within {} min; it continues in Kafka. Check it with --verify on {plan_file}; {rollback_file} holds the previous assignment",
                REASSIGNMENT_TIMEOUT.as_secs() / 60
            )));
        }
        tokio::time::sleep(TOOL_POLL_INTERVAL).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn broker_ids_parse_from_api_versions() {
        let output = "kafka-0.kafka.butterfly.svc.cluster.local:9092 (id: 0 rack: null) -> (\n\tProduce(0): 0 to 9 [usable: 9],\n)\nkafka-3.kafka.butterfly.svc.cluster.local:9092 (id: 3 rack: null) -> (\n)\n";
        assert_eq!(parse_broker_ids(output), BTreeSet::from([0, 3]));
    }

    #[test]
    fn replica_brokers_parse_from_describe() {
        let output = "Topic: synapse.actions\tTopicId: Bz\tPartitionCount: 2\tReplicationFactor: 3\tConfigs: \n\tTopic: synapse.actions\tPartition: 0\tLeader: 0\tReplicas: 0,1,2\tIsr: 0,1,2\n\tTopic: synapse.actions\tPartition: 1\tLeader: 3\tReplicas: 3,1,2\tIsr: 3,1\n";
        assert_eq!(parse_replica_brokers(output), BTreeSet::from([0, 1, 2, 3]));
    }

    #[test]
    fn generate_output_gives_both_plans() {
        let output = "Current partition replica assignment\n{\"version\":1,\"partitions\":[{\"topic\":\"t\",\"partition\":0,\"replicas\":[0,1,2]}]}\n\nProposed partition reassignment configuration\n{\"version\":1,\"partitions\":[{\"topic\":\"t\",\"partition\":0,\"replicas\":[3,1,2]}]}\n";
        let current = plan_after(output, CURRENT_HEADING).expect("current");
        let proposed = plan_after(output, PROPOSED_HEADING).expect("proposed");
        assert!(current.contains("[0,1,2]"), "{current}");
        assert!(proposed.contains("[3,1,2]"), "{proposed}");
    }

    #[test]
    fn large_plans_split_between_elements() {
        let partitions: Vec<String> = (0..3000)
            .map(|n| format!(r#"{{"topic":"events","partition":{n},"replicas":[0,1,2],"log_dirs":["any","any","any"]}}"#))
            .collect();
        let plan = format!(r#"{{"version":1,"partitions":[{}]}}"#, partitions.join(","));
        let pieces = json_pieces(&plan);
        assert!(pieces.len() > 1, "{} bytes in one piece", plan.len());
        assert!(pieces.iter().all(|piece| piece.len() <= ECHO_PIECE + 200));
        let joined = pieces.join("\n");
        let parsed: serde_json::Value = serde_json::from_str(&joined).expect("still JSON");
        assert_eq!(parsed["partitions"].as_array().map(Vec::len), Some(3000));
        assert_eq!(json_pieces("{\"version\":1}"), vec!["{\"version\":1}"]);
    }

    #[test]
    fn cancelled_partitions_count_as_stray() {
        let output = "Status of partition reassignment:\nReassignment of partition t-0 is complete.\nThere is no active reassignment of partition t-1, but replica set is 0,1,2 rather than 3,1,2.\n";
        assert_eq!(stray_partitions(output), 1);
        let plan = r#"{"version":1,"partitions":[{"topic":"t","partition":0,"replicas":[3,1,2]},{"topic":"t","partition":1,"replicas":[3,1,2]}]}"#;
        assert_eq!(planned_partitions(plan), 2);
    }

    #[test]
    fn verify_counts_partitions_and_complete() {
        let output = "Status of partition reassignment:\nReassignment of partition t-0 is complete.\nReassignment of partition t-1 is still in progress.\n\nClearing broker-level throttles on brokers 0,1,2,3\n";
        assert_eq!(verify_counts(output), (2, 1));
    }
}
