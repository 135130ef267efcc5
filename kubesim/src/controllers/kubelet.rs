//! The kubelets of all nodes. A bound pod gets an IP from its node's pod
//! CIDR and starts Running at once. It becomes Ready `ready_delay` after
//! binding, unless its app is in the fault plan's `never_ready_apps`: such a
//! pod runs with failing readiness probes. Pods that are already Ready stay
//! Ready when their app is added to that set. Pods marked for deletion are
//! removed.
//!
//! For the exec programs: `status.startTime` is when the pod started and
//! the Ready condition's `lastTransitionTime` is when it became Ready.

use std::collections::{HashMap, HashSet};

use serde_json::{Value, json};

use super::events::{EventType, Occurrence, Source};
use super::object::{self, NODES, PODS};
use super::{Pass, State};

/// Addresses of a node that a kubelet uses.
struct NodeInfo {
    host_ip: String,
    /// First three octets of the node's /24 pod CIDR, such as `10.244.1`.
    pod_prefix: String,
}

pub(super) fn run(state: &mut State, pass: &Pass) {
    let _span = tracing::debug_span!("kubelet").entered();
    let (node_objects, _) = state.cluster.store.list(NODES, None);
    let nodes: HashMap<&str, NodeInfo> = node_objects
        .iter()
        .map(|n| (object::name(n), node_info(n)))
        .collect();
    let (pods, _) = state.cluster.store.list(PODS, None);
    let live: HashSet<&str> = pods.iter().map(object::uid).collect();
    state.clocks.retain(&live);
    let mut used_ips: HashSet<String> = pods
        .iter()
        .filter_map(|p| p["status"]["podIP"].as_str())
        .map(str::to_string)
        .collect();

    for pod in &pods {
        if object::is_terminating(pod) {
            // Already gone is fine.
            let _ = state
                .cluster
                .store
                .delete(PODS, object::namespace(pod), object::name(pod));
            continue;
        }
        let Some(node) = object::node_name(pod).and_then(|n| nodes.get(n)) else {
            continue;
        };
        if !object::is_active(pod) {
            continue;
        }
        let mut pod = pod.clone();
        if pod["status"]["containerStatuses"].is_null() {
            let Some(ip) = allocate_ip(node, &mut used_ips) else {
                tracing::warn!(pod = object::name(&pod), "no free pod IP on node");
                continue;
            };
            match start(state, pass, &pod, node, &ip) {
                Some(started) => pod = started,
                None => continue,
            }
        }
        if !object::is_ready(&pod) {
            check_readiness(state, pass, &pod);
        }
    }
}

fn node_info(node: &Value) -> NodeInfo {
    let host_ip = node["status"]["addresses"]
        .as_array()
        .and_then(|list| list.iter().find(|a| a["type"] == "InternalIP"))
        .and_then(|a| a["address"].as_str())
        .unwrap_or("")
        .to_string();
    let cidr = node["spec"]["podCIDR"].as_str().unwrap_or("");
    let pod_prefix = match cidr.split('.').collect::<Vec<_>>().as_slice() {
        [a, b, c, _] => format!("{a}.{b}.{c}"),
        // Without a pod CIDR, a third octet derived from the node name
        // keeps nodes apart in most cases.
        _ => format!(
            "10.244.{}",
            (object::unit_hash(object::name(node)) * 250.0) as u8
        ),
    };
    NodeInfo {
        host_ip,
        pod_prefix,
    }
}

/// Takes the lowest free address in the node's pod CIDR. The .0, .1 (the
/// gateway) and .255 addresses are never handed out.
fn allocate_ip(node: &NodeInfo, used: &mut HashSet<String>) -> Option<String> {
    let ip = (2..255)
        .map(|host| format!("{}.{host}", node.pod_prefix))
        .find(|ip| !used.contains(ip))?;
    used.insert(ip.clone());
    Some(ip)
}

/// Starts the pod's containers: phase Running, IPs, start times, and
/// containers started but not yet Ready.
fn start(state: &mut State, pass: &Pass, pod: &Value, node: &NodeInfo, ip: &str) -> Option<Value> {
    let now = object::now_timestamp();
    let containers: Vec<Value> = pod["spec"]["containers"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let names: Vec<&str> = containers
        .iter()
        .filter_map(|c| c["name"].as_str())
        .collect();
    let not_ready_message = format!("containers with unready status: [{}]", names.join(" "));
    let statuses: Vec<Value> = containers
        .iter()
        .map(|c| container_status(pod, c, &now))
        .collect();
    let result = state.cluster.store.modify(PODS, object::namespace(pod), object::name(pod), |p| {
        let status = &mut p["status"];
        status["phase"] = json!("Running");
        status["hostIP"] = json!(node.host_ip);
        status["hostIPs"] = json!([{"ip": node.host_ip}]);
        status["podIP"] = json!(ip);
        status["podIPs"] = json!([{"ip": ip}]);
        status["startTime"] = json!(now);
        status["containerStatuses"] = json!(statuses);
        let mut conditions = status["conditions"].take();
        for (kind, value) in [("PodReadyToStartContainers", "True"), ("Initialized", "True")] {
            object::set_condition(&mut conditions, json!({"type": kind, "status": value, "lastProbeTime": null, "lastTransitionTime": now}));
        }
        for kind in ["Ready", "ContainersReady"] {
            object::set_condition(
                &mut conditions,
                json!({"type": kind, "status": "False", "reason": "ContainersNotReady",
                       "message": not_ready_message, "lastProbeTime": null, "lastTransitionTime": now}),
            );
        }
        status["conditions"] = conditions;
    });
    let started = match result {
        Ok(started) => started,
        Err(error) => {
            tracing::debug!(pod = object::name(pod), %error, "pod gone before start");
            return None;
        }
    };
    let node_name = object::node_name(&started).unwrap_or("").to_string();
    for container in &containers {
        let image = container["image"].as_str().unwrap_or("");
        let name = container["name"].as_str().unwrap_or("");
        for (reason, message) in [
            (
                "Pulled",
                format!("Container image \"{image}\" already present on machine"),
            ),
            ("Created", format!("Created container {name}")),
            ("Started", format!("Started container {name}")),
        ] {
            state.events.record(
                pass.now,
                Occurrence {
                    involved: &started,
                    event_type: EventType::Normal,
                    reason,
                    message,
                    source: Source::kubelet(&node_name),
                },
            );
        }
    }
    tracing::debug!(pod = object::name(&started), ip, "started pod");
    Some(started)
}

fn container_status(pod: &Value, container: &Value, now: &str) -> Value {
    let name = container["name"].as_str().unwrap_or("");
    let image = container["image"].as_str().unwrap_or("");
    let repository = image.rsplit_once(':').map_or(image, |(repo, _)| repo);
    let seed = format!("{}/{name}", object::uid(pod));
    json!({
        "name": name,
        "image": image,
        "imageID": format!("{repository}@sha256:{}", hex_digest(image)),
        "containerID": format!("containerd://{}", hex_digest(&seed)),
        "ready": false,
        "started": true,
        "restartCount": 0,
        "state": {"running": {"startedAt": now}},
        "lastState": {},
    })
}

/// 64 hex digits derived from `seed`, shaped like a SHA-256 digest.
fn hex_digest(seed: &str) -> String {
    (0..4)
        .map(|i| {
            format!(
                "{:016x}",
                (object::unit_hash(&format!("{i}:{seed}")) * (1u64 << 53) as f64) as u64
            )
        })
        .collect()
}

/// Makes the pod Ready once `ready_delay` has passed since it was bound,
/// or reports a failing readiness probe for a never-ready app.
fn check_readiness(state: &mut State, pass: &Pass, pod: &Value) {
    state.timers_pending = true;
    let scheduled = state.clocks.scheduled(object::uid(pod), pass.now);
    if !pass.elapsed(scheduled, state.cluster.timing.ready_delay) {
        return;
    }
    if object::label(pod, "app").is_some_and(|app| pass.faults.never_ready_apps.contains(app)) {
        let interval = pass.event_repeat_interval;
        let node = object::node_name(pod).unwrap_or("").to_string();
        state.events.record_at_most_every(
            pass.now,
            interval,
            Occurrence {
                involved: pod,
                event_type: EventType::Warning,
                reason: "Unhealthy",
                message: "Readiness probe failed: HTTP probe failed with statuscode: 503"
                    .to_string(),
                source: Source::kubelet(&node),
            },
        );
        return;
    }
    let now = object::now_timestamp();
    let result = state.cluster.store.modify(PODS, object::namespace(pod), object::name(pod), |p| {
        let mut conditions = p["status"]["conditions"].take();
        for kind in ["Ready", "ContainersReady"] {
            object::set_condition(
                &mut conditions,
                json!({"type": kind, "status": "True", "lastProbeTime": null, "lastTransitionTime": now}),
            );
        }
        p["status"]["conditions"] = conditions;
        for status in p["status"]["containerStatuses"].as_array_mut().into_iter().flatten() {
            status["ready"] = json!(true);
        }
    });
    match result {
        Ok(_) => tracing::debug!(pod = object::name(pod), "pod ready"),
        Err(error) => tracing::debug!(pod = object::name(pod), %error, "pod gone before ready"),
    }
}
