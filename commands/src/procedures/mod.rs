//! Runbook procedures, one module each. A procedure is a sequence of steps
//! that report progress as they go and return an [`Outcome`] describing the
//! final state, whether it succeeded or not.

pub mod cassandra;
pub mod horizontal;
pub mod hpa_limits;
pub mod kafka;
pub mod postgres;
pub mod redis_cluster;

use std::time::Duration;

use thiserror::Error;
use tokio::sync::{mpsc, watch};

use crate::cluster::{Cluster, ClusterError, ExecOutput, ScalableKind, WorkloadStatus};
use horizontal::ScalePlan;

/// Maximum time a procedure waits for the adapter to take a progress line.
/// A stalled chat connection must not stall the change itself.
pub const PROGRESS_SEND_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Debug, Error)]
pub enum StepError {
    #[error(
        "{workload} changed since the preview (replicas were {previewed}, now {now}); nothing was changed: request a new preview"
    )]
    ChangedSincePreview {
        workload: String,
        previewed: u32,
        now: u32,
    },
    #[error(
        "the operation lock was lost (it expired while Redis was unreachable, or another owner took it), so the procedure stopped {stage}; check the workload before another change"
    )]
    LockLost { stage: &'static str },
    #[error(
        "replicas of {workload} were patched to {target}, but its state could not be read afterwards: {error}. Check it with `status` or kubectl before another change."
    )]
    StateUnknown {
        workload: String,
        target: u32,
        error: Box<ClusterError>,
    },
    #[error("{hpa} no longer exists; nothing was changed")]
    HpaMissing { hpa: String },
    #[error(
        "{hpa} changed since the preview (bounds were {previewed}, now {now}); nothing was changed: request a new preview"
    )]
    HpaChanged {
        hpa: String,
        previewed: String,
        now: String,
    },
    #[error(transparent)]
    Cluster(Box<ClusterError>),
}

impl From<ClusterError> for StepError {
    fn from(error: ClusterError) -> Self {
        StepError::Cluster(Box::new(error))
    }
}

/// Progress lines of one running procedure, sent to the adapter in order,
/// and the signal that the procedure lost its operation lock.
#[derive(Clone)]
pub struct Progress {
    sender: mpsc::Sender<String>,
    lock_lost: watch::Receiver<bool>,
}

impl Progress {
    pub fn new(sender: mpsc::Sender<String>, lock_lost: watch::Receiver<bool>) -> Self {
        Self { sender, lock_lost }
    }

    /// Tells whether the operation lock could not be renewed, so another
    /// operation may run at the same time.
    pub fn lock_lost(&self) -> bool {
        *self.lock_lost.borrow()
    }

    /// Sends one line. A full or closed channel drops the line after
    /// [`PROGRESS_SEND_TIMEOUT`] instead of blocking the procedure.
    pub async fn step(&self, line: String) {
        tracing::info!(progress = %line);
        if self
            .sender
            .send_timeout(line, PROGRESS_SEND_TIMEOUT)
            .await
            .is_err()
        {
            tracing::warn!("progress line dropped: the adapter did not take it in time");
        }
    }
}

/// Final state of a procedure.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub succeeded: bool,
    pub summary: String,
    pub details: Vec<String>,
    pub duration: Duration,
}

impl Outcome {
    pub fn succeeded(summary: String, details: Vec<String>, duration: Duration) -> Self {
        Self {
            succeeded: true,
            summary,
            details,
            duration,
        }
    }

    pub fn failed(summary: String, details: Vec<String>, duration: Duration) -> Self {
        Self {
            succeeded: false,
            summary,
            details,
            duration,
        }
    }
}

/// An approved change of a data store StatefulSet.
#[derive(Debug, Clone)]
pub struct StatefulPlan {
    pub namespace: String,
    pub workload: String,
    pub from: u32,
    pub to: u32,
    /// StatefulSet generation seen by the preview.
    pub generation: i64,
    /// Bound of each wait for a rollout, a node joining or a node leaving.
    pub rollout_timeout: Duration,
}

impl StatefulPlan {
    pub fn pod(&self, ordinal: u32) -> String {
        format!("{}-{ordinal}", self.workload)
    }

    /// Returns the pod that runs the data store's tools: ordinal 0, which a
    /// scale-down never removes.
    pub fn seed(&self) -> String {
        self.pod(0)
    }

    pub fn scale_plan(&self, from: u32, to: u32) -> ScalePlan {
        ScalePlan {
            kind: ScalableKind::StatefulSet,
            namespace: self.namespace.clone(),
            workload: self.workload.clone(),
            from,
            to,
            generation: self.generation,
            rollout_timeout: self.rollout_timeout,
        }
    }
}

/// Numbers progress lines as `k/total`.
pub(crate) struct Steps {
    done: u32,
    total: u32,
}

impl Steps {
    pub fn new(total: u32) -> Self {
        Self { done: 0, total }
    }

    pub fn next(&mut self, text: String) -> String {
        self.done += 1;
        format!("{}/{} {text}", self.done, self.total)
    }
}

/// Fails with [`StepError::LockLost`] when the operation lock could not be
/// renewed, naming the `stage` the procedure stopped at.
pub(crate) fn check_lock(progress: &Progress, stage: &'static str) -> Result<(), StepError> {
    if progress.lock_lost() {
        return Err(StepError::LockLost { stage });
    }
    Ok(())
}

/// Returns the last non-empty output line of a command as ` (line)`, or an
/// empty string.
pub(crate) fn last_line(output: &ExecOutput) -> String {
    [&output.stdout, &output.stderr]
        .iter()
        .flat_map(|text| text.lines())
        .rfind(|line| !line.trim().is_empty())
        .map(|line| format!(" ({})", line.trim()))
        .unwrap_or_default()
}

impl StatefulPlan {
    /// Re-reads the StatefulSet and fails with
    /// [`StepError::ChangedSincePreview`] when its replicas or generation
    /// changed since the preview.
    pub async fn check_unchanged(&self, cluster: &Cluster) -> Result<WorkloadStatus, StepError> {
        let status = cluster
            .workload(ScalableKind::StatefulSet, &self.namespace, &self.workload)
            .await?;
        if status.generation != self.generation || status.desired != self.from {
            return Err(StepError::ChangedSincePreview {
                workload: self.workload.clone(),
                previewed: self.from,
                now: status.desired,
            });
        }
        Ok(status)
    }

    /// Adds the pod with ordinal `replicas - 1`: scales up by one and waits
    /// for the rollout. Returns the failure summary, followed by
    /// `consequence`, when the rollout timed out.
    pub async fn add_pod(
        &self,
        cluster: &Cluster,
        progress: &Progress,
        replicas: u32,
        stage: &'static str,
        consequence: &str,
    ) -> Result<Option<String>, StepError> {
        check_lock(progress, stage)?;
        let rollout = self
            .scale_and_wait(cluster, progress, replicas - 1, replicas)
            .await?;
        Ok(rollout
            .err()
            .map(|status| self.rollout_failure(replicas, &status, consequence, Some(replicas - 1))))
    }

    /// Patches the StatefulSet to `to` replicas, coming from `from`, and
    /// waits for the rollout: `Ok` with the final status, or `Err` with the
    /// last status read when the rollout timeout passed.
    pub async fn scale_and_wait(
        &self,
        cluster: &Cluster,
        progress: &Progress,
        from: u32,
        to: u32,
    ) -> Result<Result<WorkloadStatus, WorkloadStatus>, StepError> {
        cluster
            .set_replicas(
                ScalableKind::StatefulSet,
                &self.namespace,
                &self.workload,
                to,
                false,
            )
            .await?;
        horizontal::wait_for_rollout(cluster, &self.scale_plan(from, to), progress).await
    }
}

impl StatefulPlan {
    /// Wraps a failed read after the first change: the outcome is unknown.
    pub fn state_unknown(&self, error: ClusterError) -> StepError {
        StepError::StateUnknown {
            workload: self.workload.clone(),
            target: self.to,
            error: Box::new(error),
        }
    }

    /// Describes a rollout to `replicas` that timed out, followed by
    /// `consequence` (e.g. "; no partitions were moved"), and the state it
    /// leaves. `back_to` is the count to scale back to, when that is safe.
    pub fn rollout_failure(
        &self,
        replicas: u32,
        status: &WorkloadStatus,
        consequence: &str,
        back_to: Option<u32>,
    ) -> String {
        let undo = match back_to {
            Some(count) => format!(
                ", or scale it back with `kubectl scale statefulset/{} --replicas={count} -n {}`",
                self.workload, self.namespace
            ),
            None => String::new(),
        };
        format!(
            "{}: the rollout to {replicas} replicas did not finish within {}s ({} ready of {replicas}){consequence}. The StatefulSet is left at {replicas} replicas: fix the pods{undo}",
            self.workload,
            self.rollout_timeout.as_secs(),
            status.ready
        )
    }
}

/// Describes the unchanged check as a progress line.
pub(crate) fn unchanged_line(workload: &str, status: &WorkloadStatus) -> String {
    format!(
        "{workload} is unchanged since the preview ({} replicas, generation {})",
        status.desired, status.generation
    )
}

/// Runs a command in `pod` and returns its output, or a message naming the
/// command, its failure and its last output line when it did not succeed.
pub(crate) async fn run_tool(
    cluster: &Cluster,
    namespace: &str,
    pod: &str,
    command: &[&str],
    limit: Duration,
) -> Result<Result<ExecOutput, String>, ClusterError> {
    let output = cluster.exec(namespace, pod, command, limit).await?;
    match &output.failure {
        None => Ok(Ok(output)),
        Some(failure) => Ok(Err(format!(
            "`{}` failed: {failure}{}",
            command.join(" "),
            last_line(&output)
        ))),
    }
}
