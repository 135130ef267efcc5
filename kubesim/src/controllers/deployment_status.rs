//! Deployment status: replica counts summed over its ReplicaSets and the
//! Available and Progressing conditions that `kubectl rollout status` reads.
//!
//! `kubectl rollout status deployment/x` finishes once
//! `observedGeneration >= generation`, `updatedReplicas == spec.replicas`,
//! `replicas == updatedReplicas` (no old pods left) and
//! `availableReplicas == updatedReplicas`; it fails when Progressing has
//! reason ProgressDeadlineExceeded.

use serde_json::{Value, json};

use super::State;
use super::deployments::rolling_limits;
use super::object::{self, DEPLOYMENTS};

/// Default of `spec.progressDeadlineSeconds`.
const DEFAULT_PROGRESS_DEADLINE_SECONDS: i64 = 600;

/// Counts as the API reports them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Counts {
    replicas: i64,
    updated: i64,
    ready: i64,
    available: i64,
    unavailable: i64,
}

impl Counts {
    fn of(new: &Value, old: &[Value]) -> Self {
        let status = |s: &Value, field: &str| s["status"][field].as_i64().unwrap_or(0);
        let all = || std::iter::once(new).chain(old.iter());
        let available: i64 = all().map(|s| status(s, "availableReplicas")).sum();
        let desired_total: i64 = all().map(object::spec_replicas).sum();
        Self {
            replicas: all().map(|s| status(s, "replicas")).sum(),
            updated: status(new, "replicas"),
            ready: all().map(|s| status(s, "readyReplicas")).sum(),
            available,
            unavailable: (desired_total - available).max(0),
        }
    }

    fn from_status(status: &Value) -> Self {
        let field = |name: &str| status[name].as_i64().unwrap_or(0);
        Self {
            replicas: field("replicas"),
            updated: field("updatedReplicas"),
            ready: field("readyReplicas"),
            available: field("availableReplicas"),
            unavailable: field("unavailableReplicas"),
        }
    }

    /// Returns whether `self` shows progress over `previous` by the rules
    /// of the real controller: more updated, ready or available pods, or
    /// fewer old ones.
    fn progressed_since(&self, previous: &Counts) -> bool {
        let old = |c: &Counts| c.replicas - c.updated;
        self.updated > previous.updated
            || self.ready > previous.ready
            || self.available > previous.available
            || old(self) < old(previous)
    }
}

/// Writes the status of `deployment` after a reconcile. `created` is true
/// when the new ReplicaSet was created in this pass.
pub(super) fn update(state: &State, deployment: &Value, new: &Value, old: &[Value], created: bool) {
    let counts = Counts::of(new, old);
    let replicas = object::spec_replicas(deployment);
    let min_available = replicas - rolling_limits(deployment).max_unavailable;
    let generation = deployment["metadata"]["generation"].clone();
    let deadline = deployment["spec"]["progressDeadlineSeconds"]
        .as_i64()
        .unwrap_or(DEFAULT_PROGRESS_DEADLINE_SECONDS);
    let set_name = object::name(new).to_string();
    let old_replicas: i64 = old
        .iter()
        .map(|s| s["status"]["replicas"].as_i64().unwrap_or(0))
        .sum();
    let complete = counts.updated == replicas && counts.available == replicas && old_replicas == 0;
    let result = state.cluster.store.modify(
        DEPLOYMENTS,
        object::namespace(deployment),
        object::name(deployment),
        |d| {
            let previous = Counts::from_status(&d["status"]);
            let progress = if complete {
                Progress::Complete
            } else if created {
                Progress::Created
            } else if counts.progressed_since(&previous) {
                Progress::Advanced
            } else {
                Progress::Stalled
            };
            let mut conditions = d["status"]["conditions"].take();
            let now = object::now_timestamp();
            object::set_condition(
                &mut conditions,
                available_condition(counts.available >= min_available, &now),
            );
            if let Some(progressing) =
                progressing_condition(&conditions, progress, &set_name, &now, deadline)
            {
                object::replace_condition(&mut conditions, progressing);
            }
            d["status"] = status_object(&counts, generation.clone(), conditions);
        },
    );
    if let Err(error) = result {
        tracing::debug!(%error, "deployment gone before its status update");
    }
}

/// Status with zero counts left out, as the API server's JSON omits them.
fn status_object(counts: &Counts, generation: Value, conditions: Value) -> Value {
    let mut status = json!({"observedGeneration": generation, "conditions": conditions});
    for (field, value) in [
        ("replicas", counts.replicas),
        ("updatedReplicas", counts.updated),
        ("readyReplicas", counts.ready),
        ("availableReplicas", counts.available),
        ("unavailableReplicas", counts.unavailable),
    ] {
        if value != 0 {
            status[field] = json!(value);
        }
    }
    status
}

fn available_condition(available: bool, now: &str) -> Value {
    let (status, reason, message) = if available {
        (
            "True",
            "MinimumReplicasAvailable",
            "Deployment has minimum availability.",
        )
    } else {
        (
            "False",
            "MinimumReplicasUnavailable",
            "Deployment does not have minimum availability.",
        )
    };
    json!({
        "type": "Available",
        "status": status,
        "reason": reason,
        "message": message,
        "lastUpdateTime": now,
        "lastTransitionTime": now,
    })
}

enum Progress {
    Complete,
    Created,
    Advanced,
    Stalled,
}

/// Builds the new Progressing condition, or returns `None` to keep the
/// current one.
fn progressing_condition(
    conditions: &Value,
    progress: Progress,
    set_name: &str,
    now: &str,
    deadline_seconds: i64,
) -> Option<Value> {
    let current = conditions
        .as_array()
        .and_then(|list| list.iter().find(|c| c["type"] == "Progressing"))
        .cloned()
        .unwrap_or(Value::Null);
    let (status, reason, message) = match progress {
        Progress::Complete => {
            let message = format!("ReplicaSet \"{set_name}\" has successfully progressed.");
            // A completed rollout keeps its timestamps while it stays
            // complete, so a settled deployment's status stops changing.
            if current["reason"] == "NewReplicaSetAvailable"
                && current["message"] == message.as_str()
            {
                return None;
            }
            ("True", "NewReplicaSetAvailable", message)
        }
        Progress::Created => (
            "True",
            "NewReplicaSetCreated",
            format!("Created new replica set \"{set_name}\""),
        ),
        Progress::Advanced => (
            "True",
            "ReplicaSetUpdated",
            format!("ReplicaSet \"{set_name}\" is progressing."),
        ),
        Progress::Stalled => {
            let last_update = current["lastUpdateTime"]
                .as_str()
                .and_then(object::parse_timestamp)?;
            let expired =
                chrono::Utc::now() - last_update > chrono::TimeDelta::seconds(deadline_seconds);
            if current["status"] != "True"
                || current["reason"] == "NewReplicaSetAvailable"
                || !expired
            {
                return None;
            }
            (
                "False",
                "ProgressDeadlineExceeded",
                format!("ReplicaSet \"{set_name}\" has timed out progressing."),
            )
        }
    };
    Some(json!({
        "type": "Progressing",
        "status": status,
        "reason": reason,
        "message": message,
        "lastUpdateTime": now,
        "lastTransitionTime": now,
    }))
}
