//! ControllerRevisions of StatefulSets: one per distinct pod template, named
//! `<statefulset>-<hash>`, numbered in order of use. Pods carry the name of
//! their revision in the `controller-revision-hash` label.

use serde_json::{Value, json};

use super::State;
use super::object::{self, CONTROLLER_REVISIONS};

/// Label on a revision holding the template hash.
const HASH_LABEL: &str = "controller.kubernetes.io/hash";
/// Default of `spec.revisionHistoryLimit`.
const DEFAULT_HISTORY_LIMIT: usize = 10;

/// The revision that a StatefulSet's current template corresponds to.
pub(super) struct Revision {
    pub name: String,
}

/// Finds or creates the revision for the StatefulSet's current template. A
/// template that matches an older revision (a rollback) gets that revision
/// renumbered as the newest.
pub(super) fn ensure_update_revision(
    state: &State,
    set: &Value,
    revisions: &[Value],
) -> Option<Revision> {
    let template = &set["spec"]["template"];
    let hash = object::template_hash(template);
    let name = format!("{}-{hash}", object::name(set));
    let newest = revisions.iter().map(number_of).max().unwrap_or(0);
    let namespace = object::namespace(set);
    if let Some(existing) = revisions.iter().find(|r| object::name(r) == name) {
        if number_of(existing) < newest {
            let result = state
                .cluster
                .store
                .modify(CONTROLLER_REVISIONS, namespace, &name, |r| {
                    r["revision"] = json!(newest + 1);
                });
            if let Err(error) = result {
                tracing::warn!(revision = %name, %error, "failed to renumber controllerrevision");
            }
        }
        return Some(Revision { name });
    }

    let mut labels = template["metadata"]["labels"].clone();
    labels[HASH_LABEL] = json!(hash);
    let mut stored_template = template.clone();
    stored_template["$patch"] = json!("replace");
    let revision = json!({
        "apiVersion": "apps/v1",
        "kind": "ControllerRevision",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": labels,
            "ownerReferences": [object::controller_reference(set)],
        },
        "data": {"spec": {"template": stored_template}},
        "revision": newest + 1,
    });

    match state
        .cluster
        .store
        .create(CONTROLLER_REVISIONS, namespace, revision)
    {
        Ok(_) => {
            tracing::info!(statefulset = object::name(set), revision = %name, "created controllerrevision");
            Some(Revision { name })
        }
        Err(error) => {
            tracing::warn!(revision = %name, %error, "failed to create controllerrevision");
            None
        }
    }
}

fn number_of(revision: &Value) -> i64 {
    revision["revision"].as_i64().unwrap_or(0)
}

/// Pod template stored in the revision named `name`.
pub(super) fn template_of(revisions: &[Value], name: &str) -> Option<Value> {
    let revision = revisions.iter().find(|r| object::name(r) == name)?;
    let mut template = revision["data"]["spec"]["template"].clone();
    template.as_object_mut()?.remove("$patch");
    Some(template)
}

/// Deletes the oldest revisions beyond `spec.revisionHistoryLimit`, never
/// one named in `in_use`.
pub(super) fn prune(state: &State, set: &Value, revisions: &[Value], in_use: &[&str]) {
    let limit = set["spec"]["revisionHistoryLimit"]
        .as_u64()
        .map_or(DEFAULT_HISTORY_LIMIT, |n| n as usize);
    let mut unused: Vec<&Value> = revisions
        .iter()
        .filter(|r| !in_use.contains(&object::name(r)))
        .collect();
    unused.sort_by_key(|r| number_of(r));
    let excess = unused.len().saturating_sub(limit);
    for revision in unused.into_iter().take(excess) {
        // Already gone is fine.
        let _ = state.cluster.store.delete(
            CONTROLLER_REVISIONS,
            object::namespace(revision),
            object::name(revision),
        );
    }
}
