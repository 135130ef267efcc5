//! The scheduler: binds each pending pod, `schedule_delay` after it was
//! created, to a node whose free allocatable resources fit the pod's
//! requests. Among fitting nodes it prefers the one with the fewest pods of
//! the same app, then the one with the most free resources.
//!
//! A pod that fits nowhere stays Pending with condition PodScheduled False,
//! reason Unschedulable, and a FailedScheduling event in the form of
//! kube-scheduler 1.32:
//! `0/3 nodes are available: 3 Insufficient cpu. preemption: 0/3 nodes are
//! available: 3 No preemption victims found for incoming pod.`
//!
//! NOTE: preemption is reported but never performed (the simulated pods all
//! have priority 0, so real preemption would find no victims either), and
//! affinity, topology spread constraints and host ports are ignored.

use std::collections::{BTreeMap, HashMap};

use serde_json::{Value, json};

use super::events::{EventType, Occurrence, Source};
use super::object::{self, NODES, PODS};
use super::pods::{self, Resources};
use super::quantity;
use super::{Pass, State};

const COMPONENT: &str = "default-scheduler";
/// Default `pods` allocatable of a kubelet (`--max-pods`).
const DEFAULT_MAX_PODS: i64 = 110;

/// Per-node bookkeeping of the scheduler during one pass.
struct NodeState {
    name: String,
    allocatable: Resources,
    free: Resources,
    free_pods: i64,
    /// Pods per app bound to the node.
    apps: HashMap<String, usize>,
    /// Reason the node takes no new pods at all, in scheduler wording.
    blocked: Option<String>,
    taints: Vec<Value>,
}

/// Reasons a pod does not fit a node, in kube-scheduler's wording.
type Reasons = Vec<String>;

pub(super) fn run(state: &mut State, pass: &Pass) {
    let _span = tracing::debug_span!("scheduler").entered();
    let (node_objects, _) = state.cluster.store.list(NODES, None);
    let (pods, _) = state.cluster.store.list(PODS, None);
    let mut nodes: Vec<NodeState> = node_objects.iter().map(node_state).collect();
    let index: HashMap<String, usize> = nodes
        .iter()
        .enumerate()
        .map(|(i, n)| (n.name.clone(), i))
        .collect();
    for pod in pods.iter().filter(|p| object::is_active(p)) {
        if let Some(i) = object::node_name(pod).and_then(|n| index.get(n)) {
            let requests = pods::pod_requests(&pod["spec"]);
            let node = &mut nodes[*i];
            node.free.cpu_millis -= requests.cpu_millis;
            node.free.memory_bytes -= requests.memory_bytes;
            node.free_pods -= 1;
            *node
                .apps
                .entry(object::app_of(pod).to_string())
                .or_default() += 1;
        }
    }

    let mut pending: Vec<(u64, &Value)> = pods
        .iter()
        .filter(|p| object::is_active(p) && object::node_name(p).is_none())
        .filter(|p| {
            p["spec"]["schedulerName"]
                .as_str()
                .is_none_or(|s| s == COMPONENT)
        })
        .map(|p| (state.clocks.creation_order(object::uid(p), pass.now), p))
        .collect();
    pending.sort_by_key(|(order, _)| *order);
    for (_, pod) in pending {
        let seen = state.clocks.seen(object::uid(pod), pass.now);
        if !pass.elapsed(seen, state.cluster.timing.schedule_delay) {
            state.timers_pending = true;
            continue;
        }
        match choose_node(&nodes, pod) {
            Ok(i) => {
                let requests = pods::pod_requests(&pod["spec"]);
                let node = &mut nodes[i];
                if bind(state, pass, pod, &node.name) {
                    node.free.cpu_millis -= requests.cpu_millis;
                    node.free.memory_bytes -= requests.memory_bytes;
                    node.free_pods -= 1;
                    *node
                        .apps
                        .entry(object::app_of(pod).to_string())
                        .or_default() += 1;
                }
            }
            Err(reasons) => {
                // Retried every pass, so that a pod binds as soon as room
                // appears, and reported at most every event repeat interval.
                state.timers_pending = true;
                let message = failure_message(nodes.len(), &reasons);
                mark_unschedulable(state, pass, pod, message);
            }
        }
    }
}

fn node_state(node: &Value) -> NodeState {
    let allocatable = &node["status"]["allocatable"];
    let blocked = if node["spec"]["unschedulable"] == true {
        Some("node(s) were unschedulable".to_string())
    } else if !object::condition_is_true(node, "Ready") {
        // The node lifecycle controller taints a node that is not Ready.
        Some("node(s) had untolerated taint {node.kubernetes.io/not-ready: }".to_string())
    } else {
        None
    };
    let resources = Resources {
        cpu_millis: quantity::cpu_millis_of(&allocatable["cpu"]),
        memory_bytes: quantity::memory_bytes_of(&allocatable["memory"]),
    };
    NodeState {
        name: object::name(node).to_string(),
        allocatable: resources,
        free: resources,
        free_pods: allocatable["pods"]
            .as_str()
            .and_then(|p| p.parse().ok())
            .unwrap_or(DEFAULT_MAX_PODS),
        apps: HashMap::new(),
        blocked,
        taints: node["spec"]["taints"]
            .as_array()
            .cloned()
            .unwrap_or_default(),
    }
}

/// Index of the best node for `pod`, or the reasons each node failed.
fn choose_node(nodes: &[NodeState], pod: &Value) -> Result<usize, Vec<Reasons>> {
    let requests = pods::pod_requests(&pod["spec"]);
    let app = object::app_of(pod);
    let tolerations = pod["spec"]["tolerations"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or(&[]);
    let mut failures = Vec::new();
    let mut best: Option<(usize, (usize, i64))> = None;
    for (i, node) in nodes.iter().enumerate() {
        let reasons = filter(node, requests, tolerations);
        if !reasons.is_empty() {
            failures.push(reasons);
            continue;
        }
        let same_app = node.apps.get(app).copied().unwrap_or(0);
        let score = (same_app, -free_share(node));
        if best.is_none_or(|(_, b)| score < b) {
            best = Some((i, score));
        }
    }
    best.map(|(i, _)| i).ok_or(failures)
}

/// Free share of the node's CPU plus free share of its memory, in
/// thousandths; emptier nodes rank first, as with LeastAllocated scoring.
fn free_share(node: &NodeState) -> i64 {
    let share = |free: i64, total: i64| if total > 0 { free * 1000 / total } else { 0 };
    share(node.free.cpu_millis, node.allocatable.cpu_millis)
        + share(node.free.memory_bytes, node.allocatable.memory_bytes)
}

/// Filters in kube-scheduler's order: unschedulable and tainted nodes fail
/// on that alone; otherwise every short resource is listed.
fn filter(node: &NodeState, requests: Resources, tolerations: &[Value]) -> Reasons {
    if let Some(blocked) = &node.blocked {
        return vec![blocked.clone()];
    }
    if let Some(taint) = node.taints.iter().find(|t| !tolerated(t, tolerations)) {
        let key = taint["key"].as_str().unwrap_or("");
        let value = taint["value"].as_str().unwrap_or("");
        return vec![format!("node(s) had untolerated taint {{{key}: {value}}}")];
    }
    let mut reasons = Vec::new();
    if node.free.cpu_millis < requests.cpu_millis {
        reasons.push("Insufficient cpu".to_string());
    }
    if node.free.memory_bytes < requests.memory_bytes {
        reasons.push("Insufficient memory".to_string());
    }
    if node.free_pods < 1 {
        reasons.push("Too many pods".to_string());
    }
    reasons
}

/// Returns whether a taint is tolerated by one of `tolerations`.
/// PreferNoSchedule taints only lower a node's score upstream, so they are
/// treated as tolerated.
fn tolerated(taint: &Value, tolerations: &[Value]) -> bool {
    if taint["effect"] == "PreferNoSchedule" {
        return true;
    }
    tolerations.iter().any(|t| {
        let key_matches = t["key"]
            .as_str()
            .is_none_or(|k| k.is_empty() || t["key"] == taint["key"]);
        let effect_matches = t["effect"]
            .as_str()
            .is_none_or(|e| e.is_empty() || t["effect"] == taint["effect"]);
        let value_matches = t["operator"] == "Exists"
            || t["value"].as_str().unwrap_or("") == taint["value"].as_str().unwrap_or("");
        key_matches && effect_matches && value_matches
    })
}

/// Formats the FailedScheduling message for `node_count` nodes that all
/// failed.
pub(super) fn failure_message(node_count: usize, failures: &[Reasons]) -> String {
    if node_count == 0 {
        return "no nodes available to schedule pods".to_string();
    }
    let mut filter_histogram: BTreeMap<&str, usize> = BTreeMap::new();
    let mut preemption_histogram: BTreeMap<&str, usize> = BTreeMap::new();
    for reasons in failures {
        for reason in reasons {
            *filter_histogram.entry(reason).or_default() += 1;
        }
        // Preemption can free resources, but not untaint or uncordon a node.
        let resolvable = reasons
            .iter()
            .all(|r| r.starts_with("Insufficient") || r == "Too many pods");
        let outcome = if resolvable {
            "No preemption victims found for incoming pod"
        } else {
            "Preemption is not helpful for scheduling"
        };
        *preemption_histogram.entry(outcome).or_default() += 1;
    }
    format!(
        "0/{node_count} nodes are available: {}. preemption: 0/{node_count} nodes are available: {}.",
        histogram_text(&filter_histogram),
        histogram_text(&preemption_histogram),
    )
}

/// `3 Insufficient cpu, 1 Too many pods`: entries as "count reason", sorted
/// as strings the way kube-scheduler sorts them.
fn histogram_text(histogram: &BTreeMap<&str, usize>) -> String {
    let mut entries: Vec<String> = histogram
        .iter()
        .map(|(reason, count)| format!("{count} {reason}"))
        .collect();
    entries.sort();
    entries.join(", ")
}

fn bind(state: &mut State, pass: &Pass, pod: &Value, node: &str) -> bool {
    let now = object::now_timestamp();
    let result = state
        .cluster
        .store
        .modify(PODS, object::namespace(pod), object::name(pod), |p| {
            p["spec"]["nodeName"] = json!(node);
            let mut conditions = p["status"]["conditions"].take();
            object::set_condition(
                &mut conditions,
                json!({"type": "PodScheduled", "status": "True", "lastProbeTime": null, "lastTransitionTime": now}),
            );
            p["status"]["conditions"] = conditions;
        });
    match result {
        Ok(bound) => {
            state.clocks.mark_scheduled(object::uid(&bound), pass.now);
            tracing::debug!(pod = object::name(pod), node, "bound pod");
            let message = format!(
                "Successfully assigned {}/{} to {node}",
                object::namespace(pod),
                object::name(pod)
            );
            state.events.record(
                pass.now,
                Occurrence {
                    involved: &bound,
                    event_type: EventType::Normal,
                    reason: "Scheduled",
                    message,
                    source: Source::new(COMPONENT),
                },
            );
            true
        }
        Err(error) => {
            tracing::debug!(pod = object::name(pod), %error, "pod gone before binding");
            false
        }
    }
}

fn mark_unschedulable(state: &mut State, pass: &Pass, pod: &Value, message: String) {
    let now = object::now_timestamp();
    let condition = json!({
        "type": "PodScheduled",
        "status": "False",
        "reason": "Unschedulable",
        "message": message,
        "lastProbeTime": null,
        "lastTransitionTime": now,
    });
    let result = state
        .cluster
        .store
        .modify(PODS, object::namespace(pod), object::name(pod), |p| {
            let mut conditions = p["status"]["conditions"].take();
            object::set_condition(&mut conditions, condition);
            p["status"]["conditions"] = conditions;
        });
    let Ok(updated) = result else {
        return;
    };
    if object::condition(pod, "PodScheduled").is_none_or(|c| c["message"] != message.as_str()) {
        tracing::info!(pod = object::name(pod), %message, "pod unschedulable");
    }
    let interval = pass.event_repeat_interval;
    state.events.record_at_most_every(
        pass.now,
        interval,
        Occurrence {
            involved: &updated,
            event_type: EventType::Warning,
            reason: "FailedScheduling",
            message,
            source: Source::new(COMPONENT),
        },
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reasons(list: &[&str]) -> Reasons {
        list.iter().map(|r| r.to_string()).collect()
    }

    #[test]
    fn failure_message_counts_insufficient_cpu() {
        let failures = vec![reasons(&["Insufficient cpu"]); 3];
        assert_eq!(
            failure_message(3, &failures),
            "0/3 nodes are available: 3 Insufficient cpu. preemption: 0/3 nodes are available: 3 No preemption victims found for incoming pod."
        );
    }

    #[test]
    fn failure_message_combines_reasons_sorted() {
        let failures = vec![
            reasons(&["Insufficient cpu"]),
            reasons(&["Insufficient memory"]),
            reasons(&["Insufficient memory"]),
        ];
        assert_eq!(
            failure_message(3, &failures),
            "0/3 nodes are available: 1 Insufficient cpu, 2 Insufficient memory. preemption: 0/3 nodes are available: 3 No preemption victims found for incoming pod."
        );
    }

    #[test]
    fn failure_message_marks_cordoned_nodes_unresolvable() {
        let failures = vec![
            reasons(&["node(s) were unschedulable"]),
            reasons(&["Insufficient cpu"]),
            reasons(&["Insufficient cpu"]),
        ];
        assert_eq!(
            failure_message(3, &failures),
            "0/3 nodes are available: 1 node(s) were unschedulable, 2 Insufficient cpu. preemption: 0/3 nodes are available: 1 Preemption is not helpful for scheduling, 2 No preemption victims found for incoming pod."
        );
    }

    #[test]
    fn failure_message_without_nodes() {
        assert_eq!(
            failure_message(0, &[]),
            "no nodes available to schedule pods"
        );
    }
}
