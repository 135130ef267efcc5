//! The disruption controller: PodDisruptionBudget status from the pods its
//! selector matches.
//!
//! With an integer `minAvailable`, the expected pod count is the number of
//! matching pods. With a percentage or with `maxUnavailable`, it is the sum
//! of `spec.replicas` of the workloads owning those pods, as upstream
//! computes it.

use std::collections::{HashMap, HashSet};

use serde_json::{Value, json};

use super::State;
use super::object::{self, DEPLOYMENTS, PDBS, PODS, REPLICA_SETS, STATEFUL_SETS};

pub(super) fn run(state: &State) {
    let _span = tracing::debug_span!("disruption_controller").entered();
    let (budgets, _) = state.cluster.store.list(PDBS, None);
    if budgets.is_empty() {
        return;
    }
    let (pods, _) = state.cluster.store.list(PODS, None);
    let scales = workload_scales(state);
    for budget in &budgets {
        let selector = &budget["spec"]["selector"];
        let matching: Vec<&Value> = pods
            .iter()
            .filter(|p| object::is_active(p) && object::namespace(p) == object::namespace(budget))
            .filter(|p| object::selector_matches(selector, &p["metadata"]["labels"]))
            .collect();
        update_budget(state, budget, &matching, &scales);
    }
}

/// `spec.replicas` of every pod-owning workload, by the UID a pod names in
/// its owner reference. Pods of a Deployment name its ReplicaSet, which
/// maps to the Deployment's replicas.
fn workload_scales(state: &State) -> HashMap<String, i64> {
    let store = &state.cluster.store;
    let (deployments, _) = store.list(DEPLOYMENTS, None);
    let deployment_replicas: HashMap<&str, i64> = deployments
        .iter()
        .map(|d| (object::uid(d), object::spec_replicas(d)))
        .collect();
    let mut scales = HashMap::new();
    let (sets, _) = store.list(REPLICA_SETS, None);
    for set in &sets {
        let replicas = object::controller_uid(set)
            .and_then(|owner| deployment_replicas.get(owner).copied())
            .unwrap_or_else(|| object::spec_replicas(set));
        scales.insert(object::uid(set).to_string(), replicas);
    }
    let (stateful_sets, _) = store.list(STATEFUL_SETS, None);
    for set in &stateful_sets {
        scales.insert(object::uid(set).to_string(), object::spec_replicas(set));
    }
    scales
}

fn update_budget(state: &State, budget: &Value, pods: &[&Value], scales: &HashMap<String, i64>) {
    let healthy = pods.iter().filter(|p| object::is_ready(p)).count() as i64;
    let controller_scale = || -> i64 {
        let owners: HashSet<&str> = pods
            .iter()
            .filter_map(|p| object::controller_uid(p))
            .collect();
        owners.iter().filter_map(|uid| scales.get(*uid)).sum()
    };
    let spec = &budget["spec"];
    let (expected, desired) = if let Some(min) = spec["minAvailable"].as_i64() {
        (pods.len() as i64, min)
    } else if !spec["minAvailable"].is_null() {
        let expected = controller_scale();
        (
            expected,
            object::int_or_percent(&spec["minAvailable"], expected, true).unwrap_or(expected),
        )
    } else if !spec["maxUnavailable"].is_null() {
        let expected = controller_scale();
        let unavailable =
            object::int_or_percent(&spec["maxUnavailable"], expected, true).unwrap_or(0);
        (expected, (expected - unavailable).max(0))
    } else {
        (pods.len() as i64, 0)
    };
    let allowed = (healthy - desired).max(0);
    let now = object::now_timestamp();
    let condition = if allowed > 0 {
        json!({"type": "DisruptionAllowed", "status": "True", "reason": "SufficientPods", "message": "",
               "observedGeneration": budget["metadata"]["generation"], "lastTransitionTime": now})
    } else {
        json!({"type": "DisruptionAllowed", "status": "False", "reason": "InsufficientPods", "message": "",
               "observedGeneration": budget["metadata"]["generation"], "lastTransitionTime": now})
    };
    let result =
        state
            .cluster
            .store
            .modify(PDBS, object::namespace(budget), object::name(budget), |b| {
                let mut conditions = b["status"]["conditions"].take();
                object::set_condition(&mut conditions, condition);
                b["status"] = json!({
                    "observedGeneration": budget["metadata"]["generation"],
                    "currentHealthy": healthy,
                    "desiredHealthy": desired,
                    "disruptionsAllowed": allowed,
                    "expectedPods": expected,
                    "conditions": conditions,
                });
            });
    if let Err(error) = result {
        tracing::debug!(budget = object::name(budget), %error, "budget gone before its status update");
    }
}
