//! Scaling of a Zalando PostgreSQL cluster ("Infrastructure Scaling:
//! PostgreSQL" in the runbook).
//!
//! The procedure merge-patches `spec.numberOfInstances` of the `postgresql`
//! resource and waits until the operator's StatefulSet has rolled out and
//! the cluster reports `Running`. It then checks that exactly one pod is
//! the master.

use tokio::time::Instant;

use super::horizontal::{POLL_INTERVAL, PROGRESS_INTERVAL, wait_for_rollout};
use super::{Outcome, Progress, StatefulPlan, StepError, Steps, check_lock};
use crate::cluster::{Cluster, ClusterError, ScalableKind};

/// Label that Spilo pods carry with their Patroni role.
const ROLE_LABEL: &str = "spilo-role";

/// Runs the procedure. Every step reports through `progress`; the returned
/// outcome describes the final state, including on timeout.
pub async fn run(
    cluster: &Cluster,
    plan: &StatefulPlan,
    progress: &Progress,
) -> Result<Outcome, StepError> {
    let started = Instant::now();
    let name = &plan.workload;
    let mut step = Steps::new(4);

    let before = cluster.postgresql(&plan.namespace, name).await?;
    if before.generation != plan.generation || before.instances != plan.from {
        return Err(StepError::ChangedSincePreview {
            workload: format!("postgresql/{name}"),
            previewed: plan.from,
            now: before.instances,
        });
    }
    progress
        .step(step.next(format!(
            "postgresql/{name} is unchanged since the preview ({} instances, generation {}, {})",
            before.instances,
            before.generation,
            phase_text(&before.phase)
        )))
        .await;

    check_lock(progress, "before changing anything")?;
    cluster
        .set_postgresql_instances(&plan.namespace, name, plan.to, false)
        .await?;
    progress
        .step(step.next(format!(
            "patched postgresql/{name} to numberOfInstances {}",
            plan.to
        )))
        .await;

    let unknown = |error: ClusterError| StepError::StateUnknown {
        workload: format!("postgresql/{name}"),
        target: plan.to,
        error: Box::new(error),
    };
    let rollout = wait_for_rollout(cluster, &plan.scale_plan(plan.from, plan.to), progress).await?;
    let status = match rollout {
        Ok(status) => status,
        Err(status) => {
            return Ok(Outcome::failed(
                format!(
                    "{name}: the operator's StatefulSet did not reach {} ready instances within {}s ({} ready)",
                    plan.to,
                    plan.rollout_timeout.as_secs(),
                    status.ready
                ),
                Vec::new(),
                started.elapsed(),
            ));
        }
    };
    let phase = wait_for_running(cluster, plan, progress)
        .await?
        .map_err(unknown)?;
    if phase != "Running" {
        return Ok(Outcome::failed(
            format!(
                "{name}: {} instances are ready, but the cluster status is {} after {}s",
                status.ready,
                phase_text(&phase),
                plan.rollout_timeout.as_secs()
            ),
            Vec::new(),
            started.elapsed(),
        ));
    }
    progress
        .step(step.next(format!(
            "{} of {} instances ready and the cluster is Running",
            status.ready, plan.to
        )))
        .await;

    let pods = cluster
        .pods(&plan.namespace, &status.selector)
        .await
        .map_err(unknown)?;
    let masters = cluster
        .pods(
            &plan.namespace,
            &format!("{},{ROLE_LABEL}=master", status.selector),
        )
        .await
        .map_err(unknown)?;
    let ready = pods.iter().filter(|pod| pod.ready).count();
    let summary = format!(
        "{name} scaled from {} to {} instances in {:.1}s",
        plan.from,
        plan.to,
        started.elapsed().as_secs_f64()
    );
    let mut problems = Vec::new();
    if ready != plan.to as usize {
        problems.push(format!(
            "problem: {ready} of {} pods are ready, expected {}",
            pods.len(),
            plan.to
        ));
    }
    if masters.len() != 1 {
        let names: Vec<&str> = masters.iter().map(|pod| pod.name.as_str()).collect();
        problems.push(format!(
            "problem: {} pods have {ROLE_LABEL}=master ({}), expected exactly one",
            masters.len(),
            names.join(", ")
        ));
    }
    if !problems.is_empty() {
        return Ok(Outcome::failed(
            format!("{summary}, but verification found problems"),
            problems,
            started.elapsed(),
        ));
    }
    progress
        .step(step.next(format!(
            "verified {ready} ready pods, master {}, {} replica(s)",
            masters[0].name,
            ready - 1
        )))
        .await;
    Ok(Outcome::succeeded(summary, Vec::new(), started.elapsed()))
}

fn phase_text(phase: &str) -> &str {
    if phase.is_empty() {
        "no status yet"
    } else {
        phase
    }
}

/// Polls the cluster status until it is `Running` or the rollout timeout
/// passes, and returns the last status read. A read that fails is retried
/// until the deadline, because the change is already made.
async fn wait_for_running(
    cluster: &Cluster,
    plan: &StatefulPlan,
    progress: &Progress,
) -> Result<Result<String, ClusterError>, StepError> {
    let deadline = Instant::now() + plan.rollout_timeout;
    let mut last_reported: Option<String> = None;
    let mut last_report_at = Instant::now();
    loop {
        check_lock(
            progress,
            "while waiting for the cluster status; instances were already patched",
        )?;
        match cluster.postgresql(&plan.namespace, &plan.workload).await {
            Ok(status) if status.phase == "Running" => return Ok(Ok(status.phase)),
            Ok(status) => {
                if last_reported.as_deref() != Some(status.phase.as_str())
                    || last_report_at.elapsed() >= PROGRESS_INTERVAL
                {
                    let remaining = deadline.saturating_duration_since(Instant::now()).as_secs();
                    progress
                        .step(format!(
                            "   waiting: cluster status {} ({remaining}s left)",
                            phase_text(&status.phase)
                        ))
                        .await;
                    last_reported = Some(status.phase.clone());
                    last_report_at = Instant::now();
                }
                if Instant::now() >= deadline {
                    return Ok(Ok(status.phase));
                }
            }
            Err(error) => {
                if Instant::now() >= deadline {
                    return Ok(Err(error));
                }
                progress
                    .step(format!(
                        "   reading postgresql/{} failed, retrying: {error}",
                        plan.workload
                    ))
                    .await;
            }
        }
        tokio::time::sleep(POLL_INTERVAL).await;
    }
}

/// Kind of the workload the operator keeps for a `postgresql` resource:
/// a StatefulSet of the same name.
pub const OPERATOR_KIND: ScalableKind = ScalableKind::StatefulSet;
