//! Node lifecycle: pods bound to a node that was deleted are removed, as
//! the pod garbage collector does, and pods on a node whose Ready condition
//! is not True are evicted. Their controllers then create replacements,
//! which the scheduler places on the remaining nodes.
//!
//! NOTE: eviction from a NotReady node is immediate. A real cluster waits
//! for the pods' `node.kubernetes.io/not-ready` toleration (300 s by
//! default) before evicting.

use std::collections::HashMap;

use serde_json::Value;

use super::events::{EventType, Occurrence, Source};
use super::object::{self, NODES, PODS};
use super::{Pass, State};

pub(super) fn run(state: &mut State, pass: &Pass) {
    let _span = tracing::debug_span!("node_lifecycle").entered();
    let (nodes, _) = state.cluster.store.list(NODES, None);
    let ready: HashMap<&str, bool> = nodes
        .iter()
        .map(|n| (object::name(n), object::condition_is_true(n, "Ready")))
        .collect();
    let (pods, _) = state.cluster.store.list(PODS, None);
    for pod in pods.iter().filter(|p| object::is_active(p)) {
        let Some(node) = object::node_name(pod) else {
            continue;
        };
        match ready.get(node) {
            None => remove_orphan(state, pod, node),
            Some(false) => evict(state, pass, pod, node),
            Some(true) => {}
        }
    }
}

fn remove_orphan(state: &State, pod: &Value, node: &str) {
    if state
        .cluster
        .store
        .delete(PODS, object::namespace(pod), object::name(pod))
        .is_ok()
    {
        tracing::info!(
            pod = object::name(pod),
            node,
            "deleted pod bound to a node that no longer exists"
        );
    }
}

fn evict(state: &mut State, pass: &Pass, pod: &Value, node: &str) {
    if state
        .cluster
        .store
        .delete(PODS, object::namespace(pod), object::name(pod))
        .is_err()
    {
        return;
    }
    tracing::info!(
        pod = object::name(pod),
        node,
        "evicted pod from node that is not Ready"
    );
    state.events.record(
        pass.now,
        Occurrence {
            involved: pod,
            event_type: EventType::Normal,
            reason: "TaintManagerEviction",
            message: format!(
                "Marking for deletion Pod {}/{}",
                object::namespace(pod),
                object::name(pod)
            ),
            source: Source::new("taint-eviction-controller"),
        },
    );
}
