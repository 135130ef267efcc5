//! The Deployment controller: one ReplicaSet per pod template (named
//! `<deployment>-<pod-template-hash>`), scaling, and rolling updates that
//! respect maxSurge and maxUnavailable.
//!
//! NOTE: a pod counts as available as soon as it is Ready, because
//! `minReadySeconds` is ignored. `spec.paused` is ignored too. Scaling
//! during a rollout does not distribute replicas proportionally across
//! ReplicaSets: the rollout converges on the new replica count instead.

use std::collections::HashMap;

use serde_json::{Value, json};

use super::deployment_status;
use super::events::{EventType, Occurrence, Source};
use super::object::{self, DEPLOYMENTS, REPLICA_SETS};
use super::{Pass, State};

const COMPONENT: &str = "deployment-controller";
pub(super) const REVISION: &str = "deployment.kubernetes.io/revision";
const DESIRED_REPLICAS: &str = "deployment.kubernetes.io/desired-replicas";
const MAX_REPLICAS: &str = "deployment.kubernetes.io/max-replicas";
const TEMPLATE_HASH: &str = "pod-template-hash";
/// Default of `spec.revisionHistoryLimit`.
const DEFAULT_HISTORY_LIMIT: i64 = 10;

pub(super) fn run(state: &mut State, pass: &Pass) {
    let (deployments, _) = state.cluster.store.list(DEPLOYMENTS, None);
    if deployments.is_empty() {
        return;
    }
    let (sets, _) = state.cluster.store.list(REPLICA_SETS, None);
    let mut owned: HashMap<String, Vec<Value>> = HashMap::new();
    for set in sets {
        if let Some(owner) = object::controller_uid(&set) {
            owned.entry(owner.to_string()).or_default().push(set);
        }
    }
    for deployment in &deployments {
        if object::is_terminating(deployment) {
            continue;
        }
        let _span = tracing::debug_span!(
            "deployment_controller",
            deployment = object::name(deployment),
            namespace = object::namespace(deployment)
        )
        .entered();
        let sets = owned.remove(object::uid(deployment)).unwrap_or_default();
        reconcile(state, pass, deployment, sets);
    }
}

/// A deployment's rolling update limits, resolved against its replicas.
pub(super) struct RollingLimits {
    pub max_surge: i64,
    pub max_unavailable: i64,
}

pub(super) fn rolling_limits(deployment: &Value) -> RollingLimits {
    let replicas = object::spec_replicas(deployment);
    let rolling = &deployment["spec"]["strategy"]["rollingUpdate"];
    let or_default = |v: &Value| if v.is_null() { json!("25%") } else { v.clone() };
    let max_surge =
        object::int_or_percent(&or_default(&rolling["maxSurge"]), replicas, true).unwrap_or(1);
    let mut max_unavailable =
        object::int_or_percent(&or_default(&rolling["maxUnavailable"]), replicas, false)
            .unwrap_or(0);
    // Both zero would block every rollout; the controller then allows one
    // unavailable pod.
    if max_surge == 0 && max_unavailable == 0 {
        max_unavailable = 1;
    }
    RollingLimits {
        max_surge,
        max_unavailable: max_unavailable.min(replicas),
    }
}

fn reconcile(state: &mut State, pass: &Pass, deployment: &Value, sets: Vec<Value>) {
    let hash = object::template_hash(&deployment["spec"]["template"]);
    let (mut current, mut old): (Vec<Value>, Vec<Value>) = sets
        .into_iter()
        .partition(|s| object::label(s, TEMPLATE_HASH) == Some(hash.as_str()));
    old.sort_by_key(revision_of);
    let max_old_revision = old.iter().map(revision_of).max().unwrap_or(0);
    let created = current.is_empty();
    let mut new = match current.pop() {
        Some(set) => adopt_as_newest(state, set, max_old_revision),
        None => {
            let initial = initial_replicas(deployment, &old);
            match create_replica_set(
                state,
                pass,
                deployment,
                &hash,
                initial,
                max_old_revision + 1,
            ) {
                Some(set) => set,
                None => return,
            }
        }
    };

    if deployment["spec"]["strategy"]["type"] == "Recreate" {
        recreate(state, pass, deployment, &mut new, &mut old);
    } else {
        scale_up_new(state, pass, deployment, &mut new, &old);
        scale_down_old(state, pass, deployment, &new, &mut old);
    }
    set_revision_annotation(state, deployment, revision_of(&new));
    prune_history(state, deployment, &old);
    deployment_status::update(state, deployment, &new, &old, created);
}

fn revision_of(set: &Value) -> i64 {
    object::annotation(set, REVISION)
        .and_then(|r| r.parse().ok())
        .unwrap_or(0)
}

/// Renumbers a ReplicaSet as the newest revision when its template matched
/// an older one (a rollback).
fn adopt_as_newest(state: &State, set: Value, max_old_revision: i64) -> Value {
    if revision_of(&set) > max_old_revision {
        return set;
    }
    let next = (max_old_revision + 1).to_string();
    state
        .cluster
        .store
        .modify(
            REPLICA_SETS,
            object::namespace(&set),
            object::name(&set),
            |rs| {
                rs["metadata"]["annotations"][REVISION] = json!(next);
            },
        )
        .unwrap_or(set)
}

/// Replicas of a ReplicaSet created for a new template: all of them when
/// nothing else runs, else as many as maxSurge leaves room for.
fn initial_replicas(deployment: &Value, old: &[Value]) -> i64 {
    let replicas = object::spec_replicas(deployment);
    let old_replicas: i64 = old.iter().map(object::spec_replicas).sum();
    if old_replicas == 0 {
        return replicas;
    }
    if deployment["spec"]["strategy"]["type"] == "Recreate" {
        return 0;
    }
    let limits = rolling_limits(deployment);
    (replicas + limits.max_surge - old_replicas).clamp(0, replicas)
}

fn create_replica_set(
    state: &mut State,
    pass: &Pass,
    deployment: &Value,
    hash: &str,
    replicas: i64,
    revision: i64,
) -> Option<Value> {
    let mut template = deployment["spec"]["template"].clone();
    template["metadata"]["labels"][TEMPLATE_HASH] = json!(hash);
    let mut selector = deployment["spec"]["selector"].clone();
    selector["matchLabels"][TEMPLATE_HASH] = json!(hash);
    let name = format!("{}-{hash}", object::name(deployment));
    let limits = rolling_limits(deployment);
    let set = json!({
        "apiVersion": "apps/v1",
        "kind": "ReplicaSet",
        "metadata": {
            "name": name,
            "namespace": object::namespace(deployment),
            "labels": template["metadata"]["labels"],
            "annotations": {
                DESIRED_REPLICAS: object::spec_replicas(deployment).to_string(),
                MAX_REPLICAS: (object::spec_replicas(deployment) + limits.max_surge).to_string(),
                REVISION: revision.to_string(),
            },
            "ownerReferences": [object::controller_reference(deployment)],
        },
        "spec": {
            "replicas": replicas,
            "minReadySeconds": deployment["spec"]["minReadySeconds"].as_i64().unwrap_or(0),
            "selector": selector,
            "template": template,
        },
    });
    match state
        .cluster
        .store
        .create(REPLICA_SETS, object::namespace(deployment), set)
    {
        Ok(created) => {
            tracing::info!(replicaset = %name, replicas, revision, "created replicaset");
            if replicas > 0 {
                record_scaling(state, pass, deployment, &name, 0, replicas);
            }
            Some(created)
        }
        Err(error) => {
            tracing::warn!(replicaset = %name, %error, "failed to create replicaset");
            None
        }
    }
}

/// Sets a ReplicaSet's replicas, records the ScalingReplicaSet event on the
/// deployment, and updates `set` to the stored object.
fn scale(state: &mut State, pass: &Pass, deployment: &Value, set: &mut Value, replicas: i64) {
    let from = object::spec_replicas(set);
    if from == replicas {
        return;
    }
    let limits = rolling_limits(deployment);
    let desired = object::spec_replicas(deployment);
    let result = state.cluster.store.modify(
        REPLICA_SETS,
        object::namespace(set),
        object::name(set),
        |rs| {
            rs["spec"]["replicas"] = json!(replicas);
            rs["metadata"]["annotations"][DESIRED_REPLICAS] = json!(desired.to_string());
            rs["metadata"]["annotations"][MAX_REPLICAS] =
                json!((desired + limits.max_surge).to_string());
        },
    );
    match result {
        Ok(updated) => {
            tracing::info!(
                replicaset = object::name(&updated),
                from,
                to = replicas,
                "scaled replicaset"
            );
            record_scaling(
                state,
                pass,
                deployment,
                object::name(&updated),
                from,
                replicas,
            );
            *set = updated;
        }
        Err(error) => {
            tracing::warn!(replicaset = object::name(set), %error, "failed to scale replicaset")
        }
    }
}

fn record_scaling(
    state: &mut State,
    pass: &Pass,
    deployment: &Value,
    set_name: &str,
    from: i64,
    to: i64,
) {
    let direction = if to > from { "up" } else { "down" };
    state.events.record(
        pass.now,
        Occurrence {
            involved: deployment,
            event_type: EventType::Normal,
            reason: "ScalingReplicaSet",
            message: format!("Scaled {direction} replica set {set_name} from {from} to {to}"),
            source: Source::new(COMPONENT),
        },
    );
}

fn available(set: &Value) -> i64 {
    set["status"]["availableReplicas"].as_i64().unwrap_or(0)
}

fn recreate(
    state: &mut State,
    pass: &Pass,
    deployment: &Value,
    new: &mut Value,
    old: &mut [Value],
) {
    let old_pods: i64 = old
        .iter()
        .map(|s| s["status"]["replicas"].as_i64().unwrap_or(0))
        .sum();
    for set in old.iter_mut() {
        scale(state, pass, deployment, set, 0);
    }
    // Recreate starts new pods only after every old pod is gone.
    if old_pods == 0 {
        scale(
            state,
            pass,
            deployment,
            new,
            object::spec_replicas(deployment),
        );
    }
}

/// Grows the new ReplicaSet as far as maxSurge allows, or shrinks it to the
/// deployment's replicas after a scale-down.
fn scale_up_new(
    state: &mut State,
    pass: &Pass,
    deployment: &Value,
    new: &mut Value,
    old: &[Value],
) {
    let replicas = object::spec_replicas(deployment);
    let current_new = object::spec_replicas(new);
    let old_replicas: i64 = old.iter().map(object::spec_replicas).sum();
    let target = if old_replicas == 0 || current_new > replicas {
        replicas
    } else {
        let room = replicas + rolling_limits(deployment).max_surge - current_new - old_replicas;
        (current_new + room.max(0)).min(replicas)
    };
    scale(state, pass, deployment, new, target);
}

/// Shrinks old ReplicaSets as far as maxUnavailable allows: first their
/// unavailable pods, then available ones, oldest ReplicaSet first.
fn scale_down_old(
    state: &mut State,
    pass: &Pass,
    deployment: &Value,
    new: &Value,
    old: &mut [Value],
) {
    let replicas = object::spec_replicas(deployment);
    let min_available = replicas - rolling_limits(deployment).max_unavailable;
    let all: i64 = object::spec_replicas(new) + old.iter().map(object::spec_replicas).sum::<i64>();
    let new_unavailable = (object::spec_replicas(new) - available(new)).max(0);
    let mut budget = all - min_available - new_unavailable;
    for set in old.iter_mut() {
        if budget <= 0 {
            return;
        }
        let unavailable = object::spec_replicas(set) - available(set);
        if unavailable > 0 {
            let down = unavailable.min(budget);
            let to = object::spec_replicas(set) - down;
            scale(state, pass, deployment, set, to);
            budget -= down;
        }
    }

    let available_total: i64 = available(new) + old.iter().map(available).sum::<i64>();
    let mut remaining = available_total - min_available;
    for set in old.iter_mut() {
        if remaining <= 0 {
            return;
        }
        let down = object::spec_replicas(set).min(remaining);
        if down > 0 {
            let to = object::spec_replicas(set) - down;
            scale(state, pass, deployment, set, to);
            remaining -= down;
        }
    }
}

fn set_revision_annotation(state: &State, deployment: &Value, revision: i64) {
    let revision = revision.to_string();
    if object::annotation(deployment, REVISION) == Some(revision.as_str()) {
        return;
    }
    let result = state.cluster.store.modify(
        DEPLOYMENTS,
        object::namespace(deployment),
        object::name(deployment),
        |d| {
            d["metadata"]["annotations"][REVISION] = json!(revision);
        },
    );
    if let Err(error) = result {
        tracing::debug!(%error, "deployment gone before its revision update");
    }
}

/// Deletes the oldest scaled-down ReplicaSets beyond
/// `spec.revisionHistoryLimit`. Sets that still have pods are kept.
fn prune_history(state: &State, deployment: &Value, old: &[Value]) {
    let limit = deployment["spec"]["revisionHistoryLimit"]
        .as_i64()
        .unwrap_or(DEFAULT_HISTORY_LIMIT)
        .max(0);
    let idle: Vec<&Value> = old
        .iter()
        .filter(|s| {
            object::spec_replicas(s) == 0 && s["status"]["replicas"].as_i64().unwrap_or(0) == 0
        })
        .collect();
    let excess = idle.len().saturating_sub(limit as usize);
    for set in idle.into_iter().take(excess) {
        tracing::debug!(
            replicaset = object::name(set),
            "deleting replicaset beyond revision history limit"
        );
        // Already gone is fine.
        let _ = state
            .cluster
            .store
            .delete(REPLICA_SETS, object::namespace(set), object::name(set));
    }
}
