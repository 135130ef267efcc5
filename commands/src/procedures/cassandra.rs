//! Scaling of a Cassandra StatefulSet, one node at a time ("Infrastructure
//! Scaling: Cassandra" and "Cassandra Scale Down" in the runbook).
//!
//! Adding a node: patch the StatefulSet up by one, wait for the rollout,
//! wait until `nodetool status` shows the new node `UN`, and after the last
//! node run `nodetool repair`. Removing a node: `nodetool decommission` on
//! the highest ordinal, wait until it has left the ring, then patch the
//! StatefulSet down by one. Both start only when every node is `UN`, and end
//! by reading the ring again.

use std::time::Duration;

use tokio::time::Instant;

use super::horizontal::{POLL_INTERVAL, PROGRESS_INTERVAL};
use super::{
    Outcome, Progress, StatefulPlan, StepError, Steps, check_lock, last_line, unchanged_line,
};
use crate::cluster::{Cluster, ClusterError};

/// Maximum run time of `nodetool repair` and `nodetool decommission`. Both
/// stream data and can take hours on a large keyspace; this bound keeps the
/// lock from being held forever.
pub const STREAMING_TIMEOUT: Duration = Duration::from_secs(2 * 60 * 60);

/// Maximum run time of one `nodetool status` call.
pub const STATUS_TIMEOUT: Duration = Duration::from_secs(60);

/// One node line of `nodetool status`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RingNode {
    /// Status and state letters, e.g. `UN` (up, normal) or `UJ` (joining).
    pub state: String,
    pub address: String,
}

impl RingNode {
    pub fn is_up_normal(&self) -> bool {
        self.state == "UN"
    }
}

/// Parses the node lines of `nodetool status`: a two-letter state of `U` or
/// `D` and `N`, `L`, `J` or `M`, then the address. Headers and notes are
/// skipped.
pub fn parse_status(output: &str) -> Vec<RingNode> {
    output
        .lines()
        .filter_map(|line| {
            let mut fields = line.split_whitespace();
            let state = fields.next()?;
            let address = fields.next()?;
            let mut letters = state.chars();
            let status = letters.next()?;
            let mode = letters.next()?;
            let valid = letters.next().is_none()
                && matches!(status, 'U' | 'D')
                && matches!(mode, 'N' | 'L' | 'J' | 'M');
            valid.then(|| RingNode {
                state: state.to_string(),
                address: address.to_string(),
            })
        })
        .collect()
}

/// Formats the ring as `UN 10.0.0.1, UJ 10.0.0.4`.
pub fn describe_ring(nodes: &[RingNode]) -> String {
    if nodes.is_empty() {
        return "no nodes listed".to_string();
    }
    nodes
        .iter()
        .map(|node| format!("{} {}", node.state, node.address))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Explains a `nodetool status` state, e.g. `UJ` for a node that is still
/// joining, which a new node stays in for a while after its pod is ready.
fn state_meaning(state: &str) -> &'static str {
    match state {
        "UJ" => "UJ: up and still joining; wait until it shows UN",
        "UL" => "UL: up and leaving (decommission running); wait until it has left",
        "UM" => "UM: up and moving tokens; wait until it shows UN",
        _ if state.starts_with('D') => "D: down; restart it, or remove it with nodetool removenode",
        _ => "unexpected state",
    }
}

/// Runs `nodetool status` in `pod` and returns its nodes.
pub async fn ring(
    cluster: &Cluster,
    namespace: &str,
    pod: &str,
) -> Result<Vec<RingNode>, ClusterError> {
    let output = cluster
        .exec(namespace, pod, &["nodetool", "status"], STATUS_TIMEOUT)
        .await?;
    Ok(parse_status(&output.stdout))
}

/// Returns why the ring is not ready for a change, or `None` when it has
/// `expected` nodes and all are `UN`.
pub fn ring_problem(nodes: &[RingNode], expected: u32) -> Option<String> {
    let not_normal: Vec<&RingNode> = nodes.iter().filter(|n| !n.is_up_normal()).collect();
    if !not_normal.is_empty() {
        let listed: Vec<RingNode> = not_normal.into_iter().cloned().collect();
        let mut meanings: Vec<&str> = listed.iter().map(|n| state_meaning(&n.state)).collect();
        meanings.sort_unstable();
        meanings.dedup();
        return Some(format!(
            "not every node is UN (Up/Normal): {} ({})",
            describe_ring(&listed),
            meanings.join("; ")
        ));
    }
    if nodes.len() != expected as usize {
        return Some(format!(
            "nodetool status lists {} nodes, the StatefulSet has {expected} replicas",
            nodes.len()
        ));
    }
    None
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
    let nodes = plan.from.abs_diff(plan.to);
    let total = if plan.to > plan.from {
        2 + 2 * nodes + 2
    } else {
        2 + 2 * nodes + 1
    };
    let mut step = Steps::new(total);

    let before = plan.check_unchanged(cluster).await?;
    progress
        .step(step.next(unchanged_line(name, &before)))
        .await;

    let nodes_before = ring(cluster, &plan.namespace, &plan.seed()).await?;
    if let Some(problem) = ring_problem(&nodes_before, plan.from) {
        return Ok(Outcome::failed(
            format!("{name}: the ring is not ready for a change, so nothing was changed: {problem}"),
            vec![
                "Fix the ring first: a down node needs a restart or `nodetool removenode`; wait for joining or leaving nodes to finish.".to_string(),
                format!(
                    "If a pod of {name} never joined the ring, or its node was decommissioned, scale the StatefulSet to the ring's size with kubectl."
                ),
            ],
            started.elapsed(),
        ));
    }
    progress
        .step(step.next(format!("ring is healthy: {}", describe_ring(&nodes_before))))
        .await;

    let failure = if plan.to > plan.from {
        add_nodes(cluster, plan, progress, &mut step).await?
    } else {
        remove_nodes(cluster, plan, &before.selector, progress, &mut step).await?
    };
    if let Some(summary) = failure {
        return Ok(Outcome::failed(summary, Vec::new(), started.elapsed()));
    }

    let nodes_after = ring(cluster, &plan.namespace, &plan.seed())
        .await
        .map_err(|error| plan.state_unknown(error))?;
    let summary = format!(
        "{name} scaled from {} to {} nodes in {:.1}s",
        plan.from,
        plan.to,
        started.elapsed().as_secs_f64()
    );
    match ring_problem(&nodes_after, plan.to) {
        None => {
            progress
                .step(step.next(format!(
                    "verified the ring: {}",
                    describe_ring(&nodes_after)
                )))
                .await;
            Ok(Outcome::succeeded(summary, Vec::new(), started.elapsed()))
        }
        Some(problem) => Ok(Outcome::failed(
            format!("{summary}, but verification found problems"),
            vec![format!("problem: {problem}")],
            started.elapsed(),
        )),
    }
}

/// Adds nodes one by one, then repairs. Returns the summary of a failure
/// that leaves the cluster in a reported state, or `None` on success.
async fn add_nodes(
    cluster: &Cluster,
    plan: &StatefulPlan,
    progress: &Progress,
    step: &mut Steps,
) -> Result<Option<String>, StepError> {
    let name = &plan.workload;
    for replicas in plan.from + 1..=plan.to {
        let stage = "before adding a node";
        let consequence = "; the new pod never joined the ring";
        if let Some(failure) = plan
            .add_pod(cluster, progress, replicas, stage, consequence)
            .await?
        {
            return Ok(Some(failure));
        }
        progress
            .step(step.next(format!(
                "patched {name} to {replicas} replicas and the pod {} is ready",
                plan.pod(replicas - 1)
            )))
            .await;

        let stage = "while a new node was joining the ring; the StatefulSet was already scaled up";
        let joined = wait_for_ring(cluster, plan, progress, replicas, stage, |nodes| {
            nodes.len() == replicas as usize && nodes.iter().all(RingNode::is_up_normal)
        })
        .await?;
        match joined {
            Ok(nodes) => {
                progress
                    .step(step.next(format!(
                        "{} joined the ring: {}",
                        plan.pod(replicas - 1),
                        describe_ring(&nodes)
                    )))
                    .await
            }
            Err(nodes) => {
                return Ok(Some(format!(
                    "{name}: {} did not show UN within {}s; ring: {}. Repair was not run.",
                    plan.pod(replicas - 1),
                    plan.rollout_timeout.as_secs(),
                    describe_ring(&nodes)
                )));
            }
        }
    }

    check_lock(progress, "before nodetool repair")?;
    progress
        .step(format!(
            "   running nodetool repair in {}; this can take long (at most {} min)",
            plan.seed(),
            STREAMING_TIMEOUT.as_secs() / 60
        ))
        .await;
    let repair = cluster
        .exec(
            &plan.namespace,
            &plan.seed(),
            &["nodetool", "repair"],
            STREAMING_TIMEOUT,
        )
        .await
        .map_err(|error| plan.state_unknown(error))?;
    if let Some(failure) = &repair.failure {
        return Ok(Some(format!(
            "{name}: nodes were added, but nodetool repair failed: {failure}{}",
            last_line(&repair)
        )));
    }
    progress
        .step(step.next(format!("nodetool repair finished{}", last_line(&repair))))
        .await;
    Ok(None)
}

/// Removes the highest ordinals one by one: decommission, wait until the
/// node has left the ring, then patch the StatefulSet down.
async fn remove_nodes(
    cluster: &Cluster,
    plan: &StatefulPlan,
    selector: &str,
    progress: &Progress,
    step: &mut Steps,
) -> Result<Option<String>, StepError> {
    let name = &plan.workload;
    for replicas in (plan.to..plan.from).rev() {
        check_lock(progress, "before decommissioning a node")?;
        let pod = plan.pod(replicas);
        let address = cluster
            .pods(&plan.namespace, selector)
            .await?
            .into_iter()
            .find(|candidate| candidate.name == pod)
            .and_then(|found| found.ip);
        let Some(address) = address else {
            return Ok(Some(format!(
                "{name}: {pod} has no IP address, so it cannot be decommissioned; nothing more was changed"
            )));
        };
        progress
            .step(format!(
                "   running nodetool decommission in {pod} ({address})"
            ))
            .await;
        let decommission = cluster
            .exec(
                &plan.namespace,
                &pod,
                &["nodetool", "decommission"],
                STREAMING_TIMEOUT,
            )
            .await
            .map_err(|error| plan.state_unknown(error))?;
        if let Some(failure) = &decommission.failure {
            return Ok(Some(format!(
                "{name}: nodetool decommission in {pod} failed, so the StatefulSet was left at {} replicas: {failure}{}",
                replicas + 1,
                last_line(&decommission)
            )));
        }
        // The ring is polled even after the command returned, in case a
        // nodetool returns before streaming has ended.
        let stage = "after nodetool decommission started and before the StatefulSet was scaled down; scale it down by hand once the node has left the ring";
        let left = wait_for_ring(cluster, plan, progress, replicas, stage, |nodes| {
            !nodes.iter().any(|node| node.address == address)
        })
        .await?;
        if let Err(nodes) = left {
            return Ok(Some(format!(
                "{name}: {pod} ({address}) did not leave the ring within {}s, so the StatefulSet was left at {} replicas; ring: {}",
                plan.rollout_timeout.as_secs(),
                replicas + 1,
                describe_ring(&nodes)
            )));
        }
        progress
            .step(step.next(format!(
                "{pod} ({address}) was decommissioned and left the ring"
            )))
            .await;

        check_lock(progress, "after a decommission, before scaling down")?;
        // The node has left the ring, so a failed patch leaves a changed
        // cluster behind.
        let rollout = plan
            .scale_and_wait(cluster, progress, replicas + 1, replicas)
            .await
            .map_err(|error| match error {
                StepError::Cluster(error) => plan.state_unknown(*error),
                other => other,
            })?;
        if let Err(status) = rollout {
            return Ok(Some(plan.rollout_failure(replicas, &status, "", None)));
        }
        progress
            .step(step.next(format!("patched {name} to {replicas} replicas")))
            .await;
    }
    Ok(None)
}

/// Polls `nodetool status` until `done` returns true (`Ok` with the nodes) or the
/// rollout timeout passes (`Err` with the last nodes read). Reports the ring
/// when it changes and at least every [`PROGRESS_INTERVAL`].
async fn wait_for_ring(
    cluster: &Cluster,
    plan: &StatefulPlan,
    progress: &Progress,
    replicas: u32,
    stage: &'static str,
    done: impl Fn(&[RingNode]) -> bool,
) -> Result<Result<Vec<RingNode>, Vec<RingNode>>, StepError> {
    let deadline = Instant::now() + plan.rollout_timeout;
    let mut last_reported: Option<String> = None;
    let mut last_report_at = Instant::now();
    let mut last_nodes = Vec::new();
    loop {
        check_lock(progress, stage)?;
        match ring(cluster, &plan.namespace, &plan.seed()).await {
            Ok(nodes) => {
                if done(&nodes) {
                    return Ok(Ok(nodes));
                }
                let text = describe_ring(&nodes);
                if last_reported.as_deref() != Some(text.as_str())
                    || last_report_at.elapsed() >= PROGRESS_INTERVAL
                {
                    let remaining = deadline.saturating_duration_since(Instant::now()).as_secs();
                    progress
                        .step(format!(
                            "   waiting for the ring at {replicas} nodes: {text} ({remaining}s left)"
                        ))
                        .await;
                    last_reported = Some(text);
                    last_report_at = Instant::now();
                }
                last_nodes = nodes;
            }
            Err(error) => {
                progress
                    .step(format!("   nodetool status failed, retrying: {error}"))
                    .await;
            }
        }
        if Instant::now() >= deadline {
            return Ok(Err(last_nodes));
        }
        tokio::time::sleep(POLL_INTERVAL).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `nodetool status` of Cassandra 4.1 with a joining fourth node.
    const STATUS: &str = "Datacenter: dc1
===============
Status=Up/Down
|/ State=Normal/Leaving/Joining/Moving
--  Address      Load        Tokens  Owns   Host ID                               Rack
UN  10.244.1.12  1.21 GiB    16      33.1%  0a3b8f2e-4c1d-4e6f-9a7b-2c5d8e1f3a40  rack1
UN  10.244.2.7   1.18 GiB    16      34.0%  5e2f9c1a-7b3d-4a8e-8f6c-1d4e7a9b2c53  rack1
DN  10.244.3.9   1.20 GiB    16      32.9%  9c8d7e6f-5a4b-4c3d-8e2f-1a0b9c8d7e61  rack1
UJ  10.244.1.15  218.4 KiB   16      ?      3f1e2d4c-6b5a-4978-8c1d-0e2f3a4b5c67  rack1

Note: Non-system keyspaces don't have the same replication settings, effective ownership information is meaningless
";

    #[test]
    fn status_lines_parse_to_nodes() {
        let nodes = parse_status(STATUS);
        let states: Vec<&str> = nodes.iter().map(|n| n.state.as_str()).collect();
        assert_eq!(states, ["UN", "UN", "DN", "UJ"]);
        assert_eq!(nodes[3].address, "10.244.1.15");
    }

    #[test]
    fn ring_problem_names_nodes_not_normal() {
        let nodes = parse_status(STATUS);
        let problem = ring_problem(&nodes, 4).expect("a problem");
        assert!(problem.contains("DN 10.244.3.9"), "{problem}");
        assert!(problem.contains("UJ 10.244.1.15"), "{problem}");
    }

    #[test]
    fn ring_problem_compares_node_count() {
        let nodes: Vec<RingNode> = parse_status(STATUS)
            .into_iter()
            .filter(RingNode::is_up_normal)
            .collect();
        assert_eq!(ring_problem(&nodes, 2), None);
        let problem = ring_problem(&nodes, 3).expect("a problem");
        assert!(problem.contains("lists 2 nodes"), "{problem}");
    }

    #[test]
    fn headers_and_errors_give_no_nodes() {
        assert!(parse_status("error: Connection refused\n-- Address\nUNKNOWN x").is_empty());
    }
}
