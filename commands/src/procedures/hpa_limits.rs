//! "Update HPA Limits" from the runbook: re-read the HPA, patch its
//! minReplicas and maxReplicas, read them back, and when the new bounds
//! move the workload, wait until the HPA has moved it and the rollout is
//! done.

use std::time::Duration;

use tokio::time::Instant;

use super::horizontal::{ScalePlan, wait_for_rollout};
use super::{Outcome, Progress, StepError};
use crate::cluster::{Cluster, ScalableKind};

/// The change as approved.
#[derive(Debug, Clone)]
pub struct HpaPlan {
    pub kind: ScalableKind,
    pub namespace: String,
    pub hpa: String,
    pub workload: String,
    /// Bounds seen by the preview, as (min, max).
    pub previous: (u32, u32),
    /// Bounds to set, as (min, max).
    pub bounds: (u32, u32),
    /// Replicas of the workload at preview time.
    pub replicas: u32,
    pub rollout_timeout: Duration,
}

impl HpaPlan {
    /// Replica count the HPA moves the workload to under the new bounds, or
    /// `None` when the current count already lies within them.
    pub fn expected_replicas(&self) -> Option<u32> {
        let (min, max) = self.bounds;
        let clamped = self.replicas.clamp(min, max);
        (clamped != self.replicas).then_some(clamped)
    }
}

/// Runs the procedure and returns the final state.
pub async fn run(
    cluster: &Cluster,
    plan: &HpaPlan,
    progress: &Progress,
) -> Result<Outcome, StepError> {
    let started = Instant::now();
    let name = &plan.hpa;
    let current = cluster
        .hpa(&plan.namespace, name)
        .await?
        .ok_or_else(|| StepError::HpaMissing { hpa: name.clone() })?;
    if (current.min, current.max) != plan.previous {
        return Err(StepError::HpaChanged {
            hpa: name.clone(),
            previewed: format!("{}-{}", plan.previous.0, plan.previous.1),
            now: format!("{}-{}", current.min, current.max),
        });
    }
    progress
        .step(format!(
            "1/3 {name} is unchanged since the preview (min {}, max {})",
            current.min, current.max
        ))
        .await;

    if progress.lock_lost() {
        return Err(StepError::LockLost {
            stage: "before changing anything",
        });
    }
    let (min, max) = plan.bounds;
    cluster
        .set_hpa_bounds(&plan.namespace, name, min, max, false)
        .await?;
    let after = cluster
        .hpa(&plan.namespace, name)
        .await?
        .ok_or_else(|| StepError::HpaMissing { hpa: name.clone() })?;
    if (after.min, after.max) != plan.bounds {
        return Ok(Outcome::failed(
            format!(
                "{name} reads back min {} max {} after the patch to min {min} max {max}",
                after.min, after.max
            ),
            Vec::new(),
            started.elapsed(),
        ));
    }
    progress
        .step(format!("2/3 patched {name} to min {min}, max {max}"))
        .await;

    let Some(expected) = plan.expected_replicas() else {
        progress
            .step(format!(
                "3/3 {} stays at {} replicas, within the new bounds",
                plan.workload, plan.replicas
            ))
            .await;
        return Ok(Outcome::succeeded(
            format!(
                "{name} bounds set to {min}-{max} in {:.1}s",
                started.elapsed().as_secs_f64()
            ),
            Vec::new(),
            started.elapsed(),
        ));
    };
    let scale = ScalePlan {
        kind: plan.kind,
        namespace: plan.namespace.clone(),
        workload: plan.workload.clone(),
        from: plan.replicas,
        to: expected,
        generation: 0,
        rollout_timeout: plan.rollout_timeout,
    };
    match wait_for_rollout(cluster, &scale, progress).await? {
        Ok(status) => {
            progress
                .step(format!(
                    "3/3 the HPA moved {} to {} replicas, all ready",
                    plan.workload, status.ready
                ))
                .await;
            Ok(Outcome::succeeded(
                format!(
                    "{name} bounds set to {min}-{max}; {} moved from {} to {expected} replicas in {:.1}s",
                    plan.workload,
                    plan.replicas,
                    started.elapsed().as_secs_f64()
                ),
                Vec::new(),
                started.elapsed(),
            ))
        }
        Err(status) => Ok(Outcome::failed(
            format!(
                "{name} bounds set to {min}-{max}, but {} did not reach {expected} ready replicas within {}s: {} desired, {} ready, {} available",
                plan.workload,
                plan.rollout_timeout.as_secs(),
                status.desired,
                status.ready,
                status.available
            ),
            Vec::new(),
            started.elapsed(),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(replicas: u32, bounds: (u32, u32)) -> HpaPlan {
        HpaPlan {
            kind: ScalableKind::Deployment,
            namespace: "butterfly".to_string(),
            hpa: "synapse-hpa".to_string(),
            workload: "synapse".to_string(),
            previous: (2, 12),
            bounds,
            replicas,
            rollout_timeout: Duration::from_secs(60),
        }
    }

    #[test]
    fn expected_replicas_follow_new_bounds() {
        assert_eq!(plan(3, (4, 12)).expected_replicas(), Some(4));
        assert_eq!(plan(10, (2, 8)).expected_replicas(), Some(8));
        assert_eq!(plan(3, (2, 15)).expected_replicas(), None);
    }
}
