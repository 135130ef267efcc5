//! The ReplicaSet controller: keeps `spec.replicas` pods per ReplicaSet and
//! reports their counts in its status.

use std::collections::HashMap;

use serde_json::{Map, Value, json};

use super::events::{EventType, Occurrence, Source};
use super::object::{self, PODS, REPLICA_SETS};
use super::pods::{self, PodName};
use super::{Pass, State};

const COMPONENT: &str = "replicaset-controller";

pub(super) fn run(state: &mut State, pass: &Pass) {
    let _span = tracing::debug_span!("replicaset_controller").entered();
    let (sets, _) = state.cluster.store.list(REPLICA_SETS, None);
    if sets.is_empty() {
        return;
    }
    let (pods, _) = state.cluster.store.list(PODS, None);
    let mut owned: HashMap<String, Vec<Value>> = HashMap::new();
    for pod in pods.into_iter().filter(object::is_active) {
        if let Some(owner) = object::controller_uid(&pod) {
            owned.entry(owner.to_string()).or_default().push(pod);
        }
    }
    for set in &sets {
        let pods = owned.remove(object::uid(set)).unwrap_or_default();
        reconcile(state, pass, set, pods);
    }
}

fn reconcile(state: &mut State, pass: &Pass, set: &Value, mut pods: Vec<Value>) {
    if object::is_terminating(set) {
        return;
    }
    let desired = object::spec_replicas(set).max(0) as usize;
    if pods.len() < desired {
        for _ in pods.len()..desired {
            match create_pod(state, pass, set) {
                Some(pod) => pods.push(pod),
                None => break,
            }
        }
    } else if pods.len() > desired {
        pods.sort_by_cached_key(|p| {
            pods::deletion_rank(p, state.clocks.creation_order(object::uid(p), pass.now))
        });
        let surplus = pods.len() - desired;
        let doomed: Vec<Value> = pods.drain(..surplus).collect();
        for pod in doomed {
            delete_pod(state, pass, set, &pod);
        }
    }
    update_status(state, set, &pods);
}

fn create_pod(state: &mut State, pass: &Pass, set: &Value) -> Option<Value> {
    let prefix = format!("{}-", object::name(set));
    let pod = pods::from_template(
        &set["spec"]["template"],
        set,
        PodName::Generate(&prefix),
        &Map::new(),
    );
    match state
        .cluster
        .store
        .create(PODS, object::namespace(set), pod)
    {
        Ok(created) => {
            state.clocks.seen(object::uid(&created), pass.now);
            tracing::debug!(
                replicaset = object::name(set),
                pod = object::name(&created),
                "created pod"
            );
            state.events.record(
                pass.now,
                Occurrence {
                    involved: set,
                    event_type: EventType::Normal,
                    reason: "SuccessfulCreate",
                    message: format!("Created pod: {}", object::name(&created)),
                    source: Source::new(COMPONENT),
                },
            );
            Some(created)
        }
        Err(error) => {
            tracing::warn!(replicaset = object::name(set), %error, "failed to create pod");
            None
        }
    }
}

fn delete_pod(state: &mut State, pass: &Pass, set: &Value, pod: &Value) {
    match state
        .cluster
        .store
        .delete(PODS, object::namespace(pod), object::name(pod))
    {
        Ok(_) => {
            tracing::debug!(
                replicaset = object::name(set),
                pod = object::name(pod),
                "deleted pod"
            );
            state.events.record(
                pass.now,
                Occurrence {
                    involved: set,
                    event_type: EventType::Normal,
                    reason: "SuccessfulDelete",
                    message: format!("Deleted pod: {}", object::name(pod)),
                    source: Source::new(COMPONENT),
                },
            );
        }
        Err(error) => tracing::debug!(pod = object::name(pod), %error, "pod already gone"),
    }
}

/// Writes replica counts. Fields other than `replicas` are left out when
/// zero, as the API server's JSON encoding omits them.
fn update_status(state: &State, set: &Value, pods: &[Value]) {
    let ready = pods.iter().filter(|p| object::is_ready(p)).count();
    let labeled = pods
        .iter()
        .filter(|p| object::selector_matches(&set["spec"]["selector"], &p["metadata"]["labels"]))
        .count();
    let mut status = json!({
        "replicas": pods.len(),
        "observedGeneration": set["metadata"]["generation"],
    });
    for (field, count) in [
        ("fullyLabeledReplicas", labeled),
        ("readyReplicas", ready),
        ("availableReplicas", ready),
    ] {
        if count > 0 {
            status[field] = json!(count);
        }
    }
    let result = state.cluster.store.modify(
        REPLICA_SETS,
        object::namespace(set),
        object::name(set),
        |rs| rs["status"] = status,
    );
    if let Err(error) = result {
        tracing::debug!(replicaset = object::name(set), %error, "replicaset gone before its status update");
    }
}
