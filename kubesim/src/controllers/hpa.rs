//! The HorizontalPodAutoscaler controller, run every `timing.hpa_interval`:
//! it keeps the target's `spec.replicas` within [minReplicas, maxReplicas],
//! reverting a manual scale outside that range with a SuccessfulRescale
//! event, and reports current metrics and conditions in the HPA status.
//!
//! NOTE: replicas inside the range are never changed, because there is no
//! metric-driven scaling: tests that scale a workload see exactly the
//! replicas they requested. `currentMetrics` is still reported from the
//! simulated pod metrics.

use serde_json::{Value, json};

use super::events::{EventType, Occurrence, Source};
use super::object::{self, DEPLOYMENTS, HPAS, STATEFUL_SETS};
use super::{Pass, State};
use crate::metrics::{self, UsageSnapshot};

const COMPONENT: &str = "horizontal-pod-autoscaler";

/// Direction of a clamp to the HPA's range, with the texts upstream uses
/// for the event and the ScalingLimited condition.
#[derive(Clone, Copy)]
enum Clamp {
    TooFew,
    TooMany,
}

impl Clamp {
    fn event_reason(self) -> &'static str {
        match self {
            Clamp::TooFew => "Current number of replicas below Spec.MinReplicas",
            Clamp::TooMany => "Current number of replicas above Spec.MaxReplicas",
        }
    }

    fn condition(self, now: &str) -> Value {
        let (reason, message) = match self {
            Clamp::TooFew => (
                "TooFewReplicas",
                "the desired replica count is less than the minimum replica count",
            ),
            Clamp::TooMany => (
                "TooManyReplicas",
                "the desired replica count is more than the maximum replica count",
            ),
        };
        json!({"type": "ScalingLimited", "status": "True", "reason": reason, "message": message, "lastTransitionTime": now})
    }
}

pub(super) fn run(state: &mut State, pass: &Pass) {
    let (autoscalers, _) = state.cluster.store.list(HPAS, None);
    if autoscalers.is_empty() {
        return;
    }
    let usage = UsageSnapshot::take(&state.cluster);
    for hpa in &autoscalers {
        let _span = tracing::debug_span!(
            "hpa_controller",
            hpa = object::name(hpa),
            namespace = object::namespace(hpa)
        )
        .entered();
        evaluate(state, pass, hpa, &usage);
    }
}

fn target_resource(kind: &str) -> Option<&'static str> {
    match kind {
        "Deployment" => Some(DEPLOYMENTS),
        "StatefulSet" => Some(STATEFUL_SETS),
        _ => None,
    }
}

fn evaluate(state: &mut State, pass: &Pass, hpa: &Value, usage: &UsageSnapshot) {
    let namespace = object::namespace(hpa);
    let reference = &hpa["spec"]["scaleTargetRef"];
    let kind = reference["kind"].as_str().unwrap_or("");
    let target_name = reference["name"].as_str().unwrap_or("");
    let now = object::now_timestamp();
    let target =
        target_resource(kind).and_then(|r| state.cluster.store.get(r, namespace, target_name));
    let Some(target) = target else {
        let message = format!(
            "the HPA controller was unable to get the target's current scale: {kind} \"{target_name}\" not found"
        );
        let condition = json!({"type": "AbleToScale", "status": "False", "reason": "FailedGetScale", "message": message, "lastTransitionTime": now});
        write_status(state, hpa, |status| {
            object::set_condition(&mut status["conditions"], condition);
        });
        return;
    };
    let replicas = object::spec_replicas(&target);
    if replicas == 0 {
        let condition = json!({"type": "ScalingActive", "status": "False", "reason": "ScalingDisabled",
            "message": "scaling is disabled since the replica count of the target is zero", "lastTransitionTime": now});
        write_status(state, hpa, |status| {
            status["desiredReplicas"] = json!(0);
            object::set_condition(&mut status["conditions"], condition);
        });
        return;
    }

    let min = hpa["spec"]["minReplicas"].as_i64().unwrap_or(1);
    let max = hpa["spec"]["maxReplicas"]
        .as_i64()
        .unwrap_or(replicas)
        .max(min);
    let clamp = if replicas < min {
        Some(Clamp::TooFew)
    } else if replicas > max {
        Some(Clamp::TooMany)
    } else {
        None
    };
    let desired = replicas.clamp(min, max);
    let rescaled = clamp.is_some() && rescale(state, pass, hpa, &target, desired, clamp);
    let metric_values = current_metrics(usage, hpa, &target);
    let current_replicas = target["status"]["replicas"].as_i64().unwrap_or(replicas);
    let conditions = conditions(&now, desired, rescaled, clamp, !metric_values.is_empty());
    write_status(state, hpa, |status| {
        status["currentReplicas"] = json!(current_replicas);
        status["desiredReplicas"] = json!(desired);
        status["currentMetrics"] = json!(metric_values);
        if rescaled {
            status["lastScaleTime"] = json!(now);
        }
        for condition in conditions {
            object::set_condition(&mut status["conditions"], condition);
        }
    });
}

/// Sets the target's replicas to `desired` and records the event. Returns
/// whether the target was updated.
fn rescale(
    state: &mut State,
    pass: &Pass,
    hpa: &Value,
    target: &Value,
    desired: i64,
    clamp: Option<Clamp>,
) -> bool {
    let resource = target_resource(target["kind"].as_str().unwrap_or("")).unwrap_or(DEPLOYMENTS);
    let result = state.cluster.store.modify(
        resource,
        object::namespace(target),
        object::name(target),
        |t| t["spec"]["replicas"] = json!(desired),
    );
    if let Err(error) = result {
        tracing::warn!(target = object::name(target), %error, "failed to rescale target");
        return false;
    }
    let reason = clamp.map_or("", Clamp::event_reason);
    tracing::info!(
        target = object::name(target),
        from = object::spec_replicas(target),
        to = desired,
        reason,
        "rescaled target"
    );
    state.events.record(
        pass.now,
        Occurrence {
            involved: hpa,
            event_type: EventType::Normal,
            reason: "SuccessfulRescale",
            message: format!("New size: {desired}; reason: {reason}"),
            source: Source::new(COMPONENT),
        },
    );
    true
}

/// `status.currentMetrics` entries for the HPA's Resource metrics, from the
/// simulated usage of the target's running pods. Empty when no pod reports.
fn current_metrics(snapshot: &UsageSnapshot, hpa: &Value, target: &Value) -> Vec<Value> {
    let selector = &target["spec"]["selector"];
    let Some(usage) = metrics::workload_utilization(snapshot, object::namespace(target), selector)
    else {
        return Vec::new();
    };
    hpa["spec"]["metrics"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|m| m["type"] == "Resource")
        .filter_map(|m| {
            let name = m["resource"]["name"].as_str()?;
            let (utilization, average) = match name {
                "cpu" => (usage.cpu_percent, usage.cpu_average.clone()),
                "memory" => (usage.memory_percent, usage.memory_average.clone()),
                _ => return None,
            };
            Some(json!({
                "type": "Resource",
                "resource": {"name": name, "current": {"averageUtilization": utilization, "averageValue": average}},
            }))
        })
        .collect()
}

fn conditions(
    now: &str,
    desired: i64,
    rescaled: bool,
    clamp: Option<Clamp>,
    have_metrics: bool,
) -> Vec<Value> {
    let able = if rescaled {
        json!({"type": "AbleToScale", "status": "True", "reason": "SucceededRescale",
               "message": format!("the HPA controller was able to update the target scale to {desired}"), "lastTransitionTime": now})
    } else {
        json!({"type": "AbleToScale", "status": "True", "reason": "ReadyForNewScale",
               "message": "recommended size matches current size", "lastTransitionTime": now})
    };
    let active = if have_metrics {
        json!({"type": "ScalingActive", "status": "True", "reason": "ValidMetricFound",
               "message": "the HPA was able to successfully calculate a replica count from cpu resource utilization (percentage of request)",
               "lastTransitionTime": now})
    } else {
        json!({"type": "ScalingActive", "status": "False", "reason": "FailedGetResourceMetric",
               "message": "the HPA was unable to compute the replica count: failed to get cpu utilization: did not receive metrics for targeted pods (pods might be unready)",
               "lastTransitionTime": now})
    };
    let limited = match clamp {
        Some(clamp) => clamp.condition(now),
        None => json!({"type": "ScalingLimited", "status": "False", "reason": "DesiredWithinRange",
                       "message": "the desired count is within the acceptable range", "lastTransitionTime": now}),
    };
    vec![able, active, limited]
}

fn write_status(state: &State, hpa: &Value, change: impl FnOnce(&mut Value)) {
    let generation = hpa["metadata"]["generation"].clone();
    let result = state
        .cluster
        .store
        .modify(HPAS, object::namespace(hpa), object::name(hpa), |h| {
            let status = &mut h["status"];
            if !status.is_object() {
                *status = json!({});
            }
            status["observedGeneration"] = generation;
            change(status);
        });
    if let Err(error) = result {
        tracing::debug!(hpa = object::name(hpa), %error, "hpa gone before its status update");
    }
}
