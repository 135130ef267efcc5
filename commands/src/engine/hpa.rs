//! `hpa <service> min|max <n>`: the runbook's "Update HPA Limits" as a
//! request with preview and approval, like `scale`.

use serde::{Deserialize, Serialize};

use super::scale::{
    DRY_RUN_ACCEPTED, Operation, admit, authorize, impact_of, scalable_kind, store_and_preview,
};
use super::{Engine, Replies, Request};
use crate::grammar::HpaBound;
use crate::policy;
use crate::preview::{self, Impact};
use crate::reply::EngineError;

/// Data stored with a pending HPA change, run on approval.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct HpaPayload {
    pub service: String,
    pub namespace: String,
    pub hpa: String,
    pub workload: String,
    /// Bounds at preview time, as (min, max).
    pub previous: (u32, u32),
    /// Bounds to set, as (min, max).
    pub bounds: (u32, u32),
    /// Replicas of the workload at preview time.
    pub replicas: u32,
    pub impact: Impact,
}

pub(super) async fn request(
    engine: &Engine,
    request: &Request,
    service_name: &str,
    bound: HpaBound,
    value: u32,
    replies: &Replies,
) -> Result<(), EngineError> {
    let (service, frozen) = authorize(engine, request, service_name).await?;
    // A missing HPA is reported before the kind check, because for `hpa` it
    // is the more useful reason.
    let Some(hpa_name) = service.hpa.clone() else {
        return Err(policy::PolicyError::NoHpa {
            service: service.name.clone(),
        }
        .into());
    };
    let kind = scalable_kind(&service)?;
    let cluster = &engine.inner.cluster;
    let Some(hpa) = cluster.hpa(&service.namespace, &hpa_name).await? else {
        return Err(EngineError::HpaNotFound {
            hpa: hpa_name,
            namespace: service.namespace.clone(),
        });
    };
    let decision = policy::evaluate_hpa(
        engine.config(),
        &service,
        (hpa.min, hpa.max),
        bound,
        value,
        frozen,
    )?;
    let bounds = (decision.min, decision.max);
    if let Err(error) = cluster
        .set_hpa_bounds(&service.namespace, &hpa_name, bounds.0, bounds.1, true)
        .await
    {
        return Err(EngineError::DryRunRejected {
            service: service.name.clone(),
            error: Box::new(error),
        });
    }
    admit(engine, request, &service).await?;

    let workload = cluster
        .workload(kind, &service.namespace, &service.workload)
        .await?;
    let target = workload.desired.clamp(bounds.0, bounds.1);
    let field = match bound {
        HpaBound::Min => "minReplicas",
        HpaBound::Max => "maxReplicas",
    };
    let old = match bound {
        HpaBound::Min => hpa.min,
        HpaBound::Max => hpa.max,
    };
    let mut impact = impact_of(engine, request, &service, kind, &workload, target).await?;
    impact.action = format!("hpa {} {field} {old} → {value}", hpa_name);
    impact.hpa = Some(if target == workload.desired {
        format!(
            "{hpa_name} bounds {}-{} → {}-{}; {} stays at {} replicas",
            hpa.min, hpa.max, bounds.0, bounds.1, service.name, workload.desired
        )
    } else {
        format!(
            "{hpa_name} bounds {}-{} → {}-{}; the HPA moves {} from {} to {target} replicas on its next evaluation",
            hpa.min, hpa.max, bounds.0, bounds.1, service.name, workload.desired
        )
    });
    impact.approvals_needed = decision.approvals_needed;
    impact.risk = decision.risk.to_string();
    let expected = (target != workload.desired).then_some(target);
    impact.steps = preview::hpa_steps(
        &hpa_name,
        &service.workload,
        bounds.0,
        bounds.1,
        expected,
        engine.config().policy.rollout_timeout.as_secs(),
    );
    impact.notes.extend(decision.reasons.iter().cloned());
    impact.dry_run = DRY_RUN_ACCEPTED.to_string();

    let payload = Operation::Hpa(HpaPayload {
        service: service.name.clone(),
        namespace: service.namespace.clone(),
        hpa: hpa_name,
        workload: service.workload.clone(),
        previous: (hpa.min, hpa.max),
        bounds,
        replicas: workload.desired,
        impact: impact.clone(),
    });
    store_and_preview(
        engine,
        request,
        &service,
        decision.approvals_needed,
        payload,
        impact,
        replies,
    )
    .await
}
