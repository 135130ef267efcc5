//! Horizontal scaling of a Deployment ("Scale Service Replicas" in the
//! runbook): re-read the target, patch the scale subresource, wait for the
//! rollout, then verify ready pods, node spread and each new pod's health.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use tokio::time::Instant;

use super::{Outcome, Progress, StepError};
use crate::cluster::{Cluster, ClusterError, PodSummary, ScalableKind, WorkloadStatus};

/// Interval between reads of the workload while waiting for the rollout.
pub const POLL_INTERVAL: Duration = Duration::from_millis(500);

/// Minimum interval between two progress messages that report the same
/// numbers; a change in the numbers is reported at once.
pub const PROGRESS_INTERVAL: Duration = Duration::from_secs(10);

/// The change as approved.
#[derive(Debug, Clone)]
pub struct ScalePlan {
    pub kind: ScalableKind,
    pub namespace: String,
    pub workload: String,
    pub from: u32,
    pub to: u32,
    /// Workload generation seen by the preview.
    pub generation: i64,
    pub rollout_timeout: Duration,
}

/// Runs the procedure. Every step reports through `progress`; the returned
/// outcome describes the final state, including on timeout.
pub async fn run(
    cluster: &Cluster,
    plan: &ScalePlan,
    progress: &Progress,
) -> Result<Outcome, StepError> {
    let started = Instant::now();
    let name = &plan.workload;

    let before = cluster.workload(plan.kind, &plan.namespace, name).await?;
    if before.generation != plan.generation || before.desired != plan.from {
        return Err(StepError::ChangedSincePreview {
            workload: name.clone(),
            previewed: plan.from,
            now: before.desired,
        });
    }
    let pods_before: BTreeSet<String> = cluster
        .pods(&plan.namespace, &before.selector)
        .await?
        .into_iter()
        .map(|p| p.name)
        .collect();
    progress
        .step(format!(
            "1/4 {name} is unchanged since the preview ({} replicas, generation {})",
            before.desired, before.generation
        ))
        .await;

    if progress.lock_lost() {
        return Err(StepError::LockLost {
            stage: "before changing anything",
        });
    }
    cluster
        .set_replicas(plan.kind, &plan.namespace, name, plan.to, false)
        .await?;
    progress
        .step(format!(
            "2/4 patched {}/{name} scale to {} replicas",
            plan.kind.as_str(),
            plan.to
        ))
        .await;

    let unknown = |error: ClusterError| StepError::StateUnknown {
        workload: name.clone(),
        target: plan.to,
        error: Box::new(error),
    };
    let status = match wait_for_rollout(cluster, plan, progress).await? {
        Ok(status) => status,
        Err(status) => {
            let pods = cluster
                .pods(&plan.namespace, &status.selector)
                .await
                .map_err(unknown)?;
            let diagnosis = diagnose(cluster, &plan.namespace, &pods).await;
            return Ok(Outcome::failed(
                format!(
                    "{name}: rollout did not finish within {}s; the workload is at {} desired, {} ready, {} available",
                    plan.rollout_timeout.as_secs(),
                    status.desired,
                    status.ready,
                    status.available
                ),
                diagnosis,
                started.elapsed(),
            ));
        }
    };
    progress
        .step(format!(
            "3/4 rollout finished: {} of {} replicas ready and available",
            status.ready, status.desired
        ))
        .await;

    let pods = cluster
        .pods(&plan.namespace, &status.selector)
        .await
        .map_err(unknown)?;
    let verification = verify(cluster, &plan.namespace, &pods, &pods_before).await;
    progress
        .step(format!("4/4 {}", verification.summary()))
        .await;

    let text = format!(
        "{name} scaled from {} to {} replicas in {:.1}s",
        plan.from,
        plan.to,
        started.elapsed().as_secs_f64()
    );
    if verification.problems.is_empty() {
        Ok(Outcome::succeeded(
            text,
            verification.problem_lines(),
            started.elapsed(),
        ))
    } else {
        Ok(Outcome::failed(
            format!("{text}, but verification found problems"),
            verification.problem_lines(),
            started.elapsed(),
        ))
    }
}

/// Waits until the rollout completes (`Ok`) or the timeout passes (`Err`
/// with the last status read), reporting progress as the counts change.
pub(crate) async fn wait_for_rollout(
    cluster: &Cluster,
    plan: &ScalePlan,
    progress: &Progress,
) -> Result<Result<WorkloadStatus, WorkloadStatus>, StepError> {
    let deadline = Instant::now() + plan.rollout_timeout;
    let mut last_reported: Option<(u32, u32, u32)> = None;
    let mut last_report_at = Instant::now();
    let mut last_status: Option<WorkloadStatus> = None;
    let mut last_error: Option<String> = None;
    loop {
        if progress.lock_lost() {
            return Err(StepError::LockLost {
                stage: "while waiting for the rollout; replicas were already patched",
            });
        }
        // A read that fails after the patch is retried until the deadline:
        // the change is already made, so giving up early would leave its
        // outcome unreported.
        match cluster
            .workload(plan.kind, &plan.namespace, &plan.workload)
            .await
        {
            Ok(status) => {
                last_error = None;
                if status.rollout_complete() && status.desired == plan.to {
                    return Ok(Ok(status));
                }
                let counts = (status.updated, status.ready, status.available);
                if last_reported != Some(counts) || last_report_at.elapsed() >= PROGRESS_INTERVAL {
                    let remaining = deadline.saturating_duration_since(Instant::now()).as_secs();
                    progress
                        .step(format!(
                            "   waiting: {} updated, {} ready, {} available of {} ({remaining}s left)",
                            status.updated, status.ready, status.available, plan.to
                        ))
                        .await;
                    last_reported = Some(counts);
                    last_report_at = Instant::now();
                }
                last_status = Some(status);
            }
            Err(error) => {
                let text = error.to_string();
                if last_error.as_deref() != Some(text.as_str()) {
                    progress
                        .step(format!(
                            "   reading {} failed, retrying: {text}",
                            plan.workload
                        ))
                        .await;
                    last_error = Some(text);
                }
                if Instant::now() >= deadline {
                    return Err(StepError::StateUnknown {
                        workload: plan.workload.clone(),
                        target: plan.to,
                        error: Box::new(error),
                    });
                }
            }
        }
        if Instant::now() >= deadline
            && let Some(status) = last_status.take()
        {
            return Ok(Err(status));
        }
        tokio::time::sleep(POLL_INTERVAL).await;
    }
}

/// Findings of the post-scale checks.
#[derive(Debug, Default)]
pub struct Verification {
    pub ready: usize,
    pub total: usize,
    pub spread: BTreeMap<String, usize>,
    pub healthy: Vec<String>,
    pub problems: Vec<String>,
    pub warnings: Vec<String>,
}

impl Verification {
    pub fn summary(&self) -> String {
        let spread = self
            .spread
            .iter()
            .map(|(node, n)| format!("{node}: {n}"))
            .collect::<Vec<_>>()
            .join(", ");
        format!(
            "verified {}/{} pods ready, spread {spread}, {} new pod(s) healthy{}{}",
            self.ready,
            self.total,
            self.healthy.len(),
            if self.warnings.is_empty() {
                ""
            } else {
                "; warnings: "
            },
            self.warnings.join("; ")
        )
    }

    /// Returns the problems as result details. The summary is left out
    /// because the last progress step already shows it.
    pub fn problem_lines(&self) -> Vec<String> {
        self.problems
            .iter()
            .map(|problem| format!("problem: {problem}"))
            .collect()
    }
}

/// Checks readiness, spread (warns when more than half of the pods share a
/// node) and the health endpoint of each pod that did not exist before.
pub async fn verify(
    cluster: &Cluster,
    namespace: &str,
    pods: &[PodSummary],
    pods_before: &BTreeSet<String>,
) -> Verification {
    let mut v = Verification {
        total: pods.len(),
        ready: pods.iter().filter(|p| p.ready).count(),
        ..Verification::default()
    };
    for pod in pods {
        let node = pod
            .node
            .clone()
            .unwrap_or_else(|| "(unscheduled)".to_string());
        *v.spread.entry(node).or_default() += 1;
        if !pod.ready {
            v.problems.push(format!(
                "pod {} is not ready (phase {})",
                pod.name, pod.phase
            ));
        }
    }
    if let Some((node, count)) = v.spread.iter().max_by_key(|(_, n)| **n)
        && pods.len() > 1
        && *count * 2 > pods.len()
    {
        v.warnings.push(format!(
            "{count} of {} pods run on {node}; losing that node takes out most of the service",
            pods.len()
        ));
    }
    for pod in pods.iter().filter(|p| !pods_before.contains(&p.name)) {
        match cluster.pod_health(namespace, &pod.name).await {
            Ok(status) if status == "UP" => v.healthy.push(pod.name.clone()),
            Ok(status) => v
                .problems
                .push(format!("{} /actuator/health reports {status}", pod.name)),
            Err(e) => v
                .problems
                .push(format!("{} health check failed: {e}", pod.name)),
        }
    }
    v
}

/// Explains why pods are not ready, from their newest warning events.
async fn diagnose(cluster: &Cluster, namespace: &str, pods: &[PodSummary]) -> Vec<String> {
    let mut lines = Vec::new();
    for pod in pods.iter().filter(|p| !p.ready) {
        let reason = match cluster.last_warning(namespace, &pod.name).await {
            Ok(Some(warning)) => warning,
            Ok(None) => "no warning events".to_string(),
            Err(e) => format!("events unreadable: {e}"),
        };
        lines.push(format!(
            "{} is {} on {}: {reason}",
            pod.name,
            pod.phase,
            pod.node.as_deref().unwrap_or("no node")
        ));
    }
    lines
}
