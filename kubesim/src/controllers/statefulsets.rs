//! The StatefulSet controller: pods `<name>-0..N-1` with stable names and
//! hostnames, OrderedReady or Parallel management, and rolling updates in
//! reverse ordinal order down to the partition.
//!
//! `kubectl rollout status statefulset/x` finishes once
//! `observedGeneration >= generation`, `readyReplicas >= spec.replicas` and
//! `currentRevision == updateRevision` (or, with a partition, enough
//! `updatedReplicas`).
//!
//! NOTE: PersistentVolumeClaims are not simulated (kubesim serves no
//! persistentvolumeclaims resource); pods reference the claims their
//! volumeClaimTemplates would create, by name only.

use std::collections::{BTreeMap, HashMap};

use serde_json::{Map, Value, json};

use super::events::{EventType, Occurrence, Source};
use super::object::{self, CONTROLLER_REVISIONS, PODS, STATEFUL_SETS};
use super::pods::{self, PodName};
use super::revisions::{self, Revision};
use super::{Pass, State};

const COMPONENT: &str = "statefulset-controller";
pub(crate) const REVISION_LABEL: &str = "controller-revision-hash";

pub(super) fn run(state: &mut State, pass: &Pass) {
    let (sets, _) = state.cluster.store.list(STATEFUL_SETS, None);
    if sets.is_empty() {
        return;
    }
    let (pods, _) = state.cluster.store.list(PODS, None);
    let (revisions, _) = state.cluster.store.list(CONTROLLER_REVISIONS, None);
    let mut pods_by_owner: HashMap<String, Vec<Value>> = HashMap::new();
    for pod in pods.into_iter().filter(object::is_active) {
        if let Some(owner) = object::controller_uid(&pod) {
            pods_by_owner
                .entry(owner.to_string())
                .or_default()
                .push(pod);
        }
    }
    let mut revisions_by_owner: HashMap<String, Vec<Value>> = HashMap::new();
    for revision in revisions {
        if let Some(owner) = object::controller_uid(&revision) {
            revisions_by_owner
                .entry(owner.to_string())
                .or_default()
                .push(revision);
        }
    }
    for set in sets.iter().filter(|s| !object::is_terminating(s)) {
        let _span = tracing::debug_span!(
            "statefulset_controller",
            statefulset = object::name(set),
            namespace = object::namespace(set)
        )
        .entered();
        let pods = pods_by_owner.remove(object::uid(set)).unwrap_or_default();
        let revisions = revisions_by_owner
            .remove(object::uid(set))
            .unwrap_or_default();
        reconcile(state, pass, set, pods, revisions);
    }
}

/// Pod ordinal from its name `<set>-<ordinal>`.
fn ordinal_of(set: &Value, pod: &Value) -> Option<i64> {
    let prefix = format!("{}-", object::name(set));
    object::name(pod).strip_prefix(&prefix)?.parse().ok()
}

fn is_healthy(pod: &Value) -> bool {
    object::is_running(pod) && object::is_ready(pod)
}

fn reconcile(state: &mut State, pass: &Pass, set: &Value, pods: Vec<Value>, revisions: Vec<Value>) {
    let Some(update) = revisions::ensure_update_revision(state, set, &revisions) else {
        return;
    };
    // Re-read so that a revision created just now is found by name.
    let (revisions, _) = state
        .cluster
        .store
        .list(CONTROLLER_REVISIONS, Some(object::namespace(set)));
    let revisions: Vec<Value> = revisions
        .into_iter()
        .filter(|r| object::controller_uid(r) == Some(object::uid(set)))
        .collect();
    let current = set["status"]["currentRevision"]
        .as_str()
        .filter(|r| !r.is_empty())
        .unwrap_or(&update.name)
        .to_string();
    let mut by_ordinal: BTreeMap<i64, Value> = pods
        .into_iter()
        .filter_map(|p| Some((ordinal_of(set, &p)?, p)))
        .collect();

    let ordered = set["spec"]["podManagementPolicy"] != "Parallel";
    let waiting = create_missing(
        state,
        pass,
        set,
        &mut by_ordinal,
        &revisions,
        &current,
        &update,
    );
    if !(ordered && waiting) {
        delete_condemned(state, pass, set, &mut by_ordinal, ordered);
    }
    let replicas = object::spec_replicas(set);
    let settled = !waiting && by_ordinal.keys().all(|o| *o < replicas);
    if settled && set["spec"]["updateStrategy"]["type"] != "OnDelete" {
        roll_one(state, pass, set, &mut by_ordinal, &update);
    }
    update_status(state, set, &by_ordinal, &current, &update.name);
    revisions::prune(
        state,
        set,
        &revisions,
        &[current.as_str(), update.name.as_str()],
    );
}

fn partition(set: &Value) -> i64 {
    set["spec"]["updateStrategy"]["rollingUpdate"]["partition"]
        .as_i64()
        .unwrap_or(0)
}

/// Creates missing pods below `spec.replicas`. With OrderedReady, creates at
/// most one and only after every lower ordinal is Running and Ready.
/// Returns whether the set is waiting for a pod to be created or become
/// Ready.
fn create_missing(
    state: &mut State,
    pass: &Pass,
    set: &Value,
    by_ordinal: &mut BTreeMap<i64, Value>,
    revisions: &[Value],
    current: &str,
    update: &Revision,
) -> bool {
    let ordered = set["spec"]["podManagementPolicy"] != "Parallel";
    let rolling = set["spec"]["updateStrategy"]["type"] != "OnDelete";
    let mut waiting = false;
    for ordinal in 0..object::spec_replicas(set) {
        if let Some(pod) = by_ordinal.get(&ordinal) {
            if !is_healthy(pod) {
                waiting = true;
                if ordered {
                    return true;
                }
            }
            continue;
        }
        let revision = if rolling && ordinal < partition(set) {
            current
        } else {
            update.name.as_str()
        };
        let template = revisions::template_of(revisions, revision)
            .unwrap_or_else(|| set["spec"]["template"].clone());
        if let Some(pod) = create_pod(state, pass, set, ordinal, &template, revision) {
            by_ordinal.insert(ordinal, pod);
        }
        waiting = true;
        if ordered {
            return true;
        }
    }
    waiting
}

fn create_pod(
    state: &mut State,
    pass: &Pass,
    set: &Value,
    ordinal: i64,
    template: &Value,
    revision: &str,
) -> Option<Value> {
    let name = format!("{}-{ordinal}", object::name(set));
    let pod = build_pod(set, &name, ordinal, template, revision);
    match state
        .cluster
        .store
        .create(PODS, object::namespace(set), pod)
    {
        Ok(created) => {
            state.clocks.seen(object::uid(&created), pass.now);
            tracing::info!(pod = %name, revision, "created statefulset pod");
            record(
                state,
                pass,
                set,
                "SuccessfulCreate",
                format!(
                    "create Pod {name} in StatefulSet {} successful",
                    object::name(set)
                ),
            );
            Some(created)
        }
        Err(error) => {
            tracing::warn!(pod = %name, %error, "failed to create statefulset pod");
            None
        }
    }
}

/// Builds pod `name` from `template` with its stable identity: the
/// revision and ordinal labels, hostname and subdomain, and one volume per
/// claim template, referring to the claim `<template>-<pod>`.
fn build_pod(set: &Value, name: &str, ordinal: i64, template: &Value, revision: &str) -> Value {
    let mut labels = Map::new();
    labels.insert(REVISION_LABEL.into(), json!(revision));
    labels.insert("statefulset.kubernetes.io/pod-name".into(), json!(name));
    labels.insert(
        "apps.kubernetes.io/pod-index".into(),
        json!(ordinal.to_string()),
    );
    let mut pod = pods::from_template(template, set, PodName::Fixed(name), &labels);
    pod["spec"]["hostname"] = json!(name);
    if let Some(service) = set["spec"]["serviceName"].as_str() {
        pod["spec"]["subdomain"] = json!(service);
    }

    let claims = set["spec"]["volumeClaimTemplates"]
        .as_array()
        .into_iter()
        .flatten();
    for claim in claims {
        let volume = object::name(claim);
        let reference = json!({"name": volume, "persistentVolumeClaim": {"claimName": format!("{volume}-{name}")}});
        match pod["spec"]["volumes"].as_array_mut() {
            Some(list) => {
                list.retain(|v| v["name"] != volume);
                list.push(reference);
            }
            None => pod["spec"]["volumes"] = json!([reference]),
        }
    }
    pod
}

/// Deletes pods at ordinals `>= spec.replicas`, highest first; one per pass
/// with OrderedReady.
fn delete_condemned(
    state: &mut State,
    pass: &Pass,
    set: &Value,
    by_ordinal: &mut BTreeMap<i64, Value>,
    ordered: bool,
) {
    let replicas = object::spec_replicas(set);
    let condemned: Vec<i64> = by_ordinal
        .keys()
        .rev()
        .copied()
        .filter(|o| *o >= replicas)
        .collect();
    for ordinal in condemned {
        if let Some(pod) = by_ordinal.remove(&ordinal) {
            delete_pod(state, pass, set, &pod);
        }
        if ordered {
            return;
        }
    }
}

/// Replaces the highest-ordinal pod (at or above the partition) that is not
/// at the update revision. It is recreated from the new template in a later
/// pass.
fn roll_one(
    state: &mut State,
    pass: &Pass,
    set: &Value,
    by_ordinal: &mut BTreeMap<i64, Value>,
    update: &Revision,
) {
    let floor = partition(set);
    let stale = by_ordinal
        .iter()
        .rev()
        .find(|(ordinal, pod)| {
            **ordinal >= floor && object::label(pod, REVISION_LABEL) != Some(update.name.as_str())
        })
        .map(|(ordinal, _)| *ordinal);
    if let Some(ordinal) = stale
        && let Some(pod) = by_ordinal.remove(&ordinal)
    {
        tracing::info!(pod = object::name(&pod), revision = %update.name, "rolling statefulset pod");
        delete_pod(state, pass, set, &pod);
    }
}

fn delete_pod(state: &mut State, pass: &Pass, set: &Value, pod: &Value) {
    let name = object::name(pod);
    if let Err(error) = state
        .cluster
        .store
        .delete(PODS, object::namespace(pod), name)
    {
        tracing::debug!(pod = name, %error, "pod already gone");
        return;
    }
    tracing::info!(pod = name, "deleted statefulset pod");
    record(
        state,
        pass,
        set,
        "SuccessfulDelete",
        format!(
            "delete Pod {name} in StatefulSet {} successful",
            object::name(set)
        ),
    );
}

fn record(state: &mut State, pass: &Pass, set: &Value, reason: &'static str, message: String) {
    state.events.record(
        pass.now,
        Occurrence {
            involved: set,
            event_type: EventType::Normal,
            reason,
            message,
            source: Source::new(COMPONENT),
        },
    );
}

fn update_status(
    state: &State,
    set: &Value,
    by_ordinal: &BTreeMap<i64, Value>,
    current: &str,
    update: &str,
) {
    let pods: Vec<&Value> = by_ordinal.values().collect();
    let count = |f: &dyn Fn(&Value) -> bool| pods.iter().filter(|p| f(p)).count() as i64;
    let replicas = pods.len() as i64;
    let ready = count(&|p| object::is_ready(p));
    let updated = count(&|p| object::label(p, REVISION_LABEL) == Some(update));
    let mut current_replicas = count(&|p| object::label(p, REVISION_LABEL) == Some(current));
    let mut current_revision = current.to_string();

    // A finished rolling update makes the update revision current.
    if set["spec"]["updateStrategy"]["type"] != "OnDelete"
        && updated == replicas
        && ready == replicas
    {
        current_revision = update.to_string();
        current_replicas = updated;
    }
    let status = json!({
        "observedGeneration": set["metadata"]["generation"],
        "replicas": replicas,
        "readyReplicas": ready,
        "availableReplicas": ready,
        "currentReplicas": current_replicas,
        "updatedReplicas": updated,
        "currentRevision": current_revision,
        "updateRevision": update,
        "collisionCount": 0,
    });
    let result = state.cluster.store.modify(
        STATEFUL_SETS,
        object::namespace(set),
        object::name(set),
        |s| s["status"] = status,
    );
    if let Err(error) = result {
        tracing::debug!(%error, "statefulset gone before its status update");
    }
}
