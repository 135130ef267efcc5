//! Simulated `metrics.k8s.io/v1beta1` PodMetrics and NodeMetrics, computed
//! on read from the pods in the store.
//!
//! The load model is deterministic so that tests can assert on it:
//! - CPU: a workload annotated with [`CPU_DEMAND_ANNOTATION`] (a quantity
//!   such as `1650m`) has that much CPU demand in total, shared evenly by
//!   its running pods, so scaling out lowers each pod's usage. Without the
//!   annotation each container uses [`DEFAULT_CPU_UTILIZATION`] percent of
//!   its CPU request.
//! - Memory: each container uses the workload's
//!   [`MEMORY_UTILIZATION_ANNOTATION`] percent of its memory request
//!   (default [`DEFAULT_MEMORY_UTILIZATION`]), whatever the replica count,
//!   as a JVM keeps its heap.
//! - Every pod varies by up to ±6 % around that, by a hash of its name, and
//!   never exceeds its limits.
//!
//! The annotations go on the Deployment or StatefulSet metadata, not on the
//! pod template, so changing them does not start a rollout.

use std::collections::HashMap;

use serde_json::{Value, json};

use crate::cluster::Cluster;
use crate::controllers::object::{self, DEPLOYMENTS, NODES, PODS, REPLICA_SETS, STATEFUL_SETS};
use crate::controllers::{pods, quantity};

/// Workload annotation: total CPU demand across its pods, as a quantity.
pub const CPU_DEMAND_ANNOTATION: &str = "kubesim.scalebot.dev/cpu-demand";
/// Workload annotation: memory use of each container, in percent of its
/// memory request.
pub const MEMORY_UTILIZATION_ANNOTATION: &str = "kubesim.scalebot.dev/memory-utilization";
/// CPU use of a container, in percent of its request, without an annotation.
pub const DEFAULT_CPU_UTILIZATION: f64 = 35.0;
/// Memory use of a container, in percent of its request, without an annotation.
pub const DEFAULT_MEMORY_UTILIZATION: f64 = 55.0;

/// Usage of a container without requests (BestEffort).
const BEST_EFFORT_CPU_NANOCORES: i64 = 5_000_000;
const BEST_EFFORT_MEMORY_BYTES: i64 = 32 << 20;
/// Usage of the kubelet, container runtime and system daemons on each node.
const NODE_SYSTEM_CPU_NANOCORES: i64 = 180_000_000;
const NODE_SYSTEM_MEMORY_BYTES: i64 = 1_800 << 20;
/// Sampling window metrics-server reports.
const WINDOW: &str = "30s";

#[derive(Debug, Clone, Copy, Default)]
struct Usage {
    cpu_nanocores: i64,
    memory_bytes: i64,
}

/// Inputs of a pod's load: its workload's annotations and the number of
/// running pods that share the workload's CPU demand.
struct LoadModel {
    cpu_demand_nanocores: Option<i64>,
    memory_utilization: f64,
    running_pods: usize,
}

/// PodMetrics of every running pod, in one namespace or in all.
pub fn pod_metrics(cluster: &Cluster, namespace: Option<&str>) -> Vec<Value> {
    let now = object::now_timestamp();
    pod_usages(cluster, namespace)
        .into_iter()
        .map(|(pod, containers)| {
            let containers: Vec<Value> = containers
                .into_iter()
                .map(|(name, usage)| {
                    json!({"name": name, "usage": {
                        "cpu": quantity::format_nanocores(usage.cpu_nanocores),
                        "memory": quantity::format_kibibytes(usage.memory_bytes),
                    }})
                })
                .collect();
            json!({
                "kind": "PodMetrics",
                "apiVersion": "metrics.k8s.io/v1beta1",
                "metadata": {
                    "name": object::name(&pod),
                    "namespace": object::namespace(&pod),
                    "labels": pod["metadata"]["labels"],
                    "creationTimestamp": now,
                },
                "timestamp": now,
                "window": WINDOW,
                "containers": containers,
            })
        })
        .collect()
}

/// NodeMetrics of every Ready node: the usage of its pods plus the node's
/// own system daemons.
pub fn node_metrics(cluster: &Cluster) -> Vec<Value> {
    let now = object::now_timestamp();
    let mut per_node: HashMap<String, Usage> = HashMap::new();
    for (pod, containers) in pod_usages(cluster, None) {
        let Some(node) = object::node_name(&pod) else {
            continue;
        };
        let total = per_node.entry(node.to_string()).or_default();
        for (_, usage) in containers {
            total.cpu_nanocores += usage.cpu_nanocores;
            total.memory_bytes += usage.memory_bytes;
        }
    }
    let (nodes, _) = cluster.store.list(NODES, None);
    nodes
        .iter()
        .filter(|n| object::condition_is_true(n, "Ready"))
        .map(|node| {
            let usage = per_node.get(object::name(node)).copied().unwrap_or_default();
            json!({
                "kind": "NodeMetrics",
                "apiVersion": "metrics.k8s.io/v1beta1",
                "metadata": {
                    "name": object::name(node),
                    "labels": node["metadata"]["labels"],
                    "creationTimestamp": now,
                },
                "timestamp": now,
                "window": WINDOW,
                "usage": {
                    "cpu": quantity::format_nanocores(usage.cpu_nanocores + NODE_SYSTEM_CPU_NANOCORES),
                    "memory": quantity::format_kibibytes(usage.memory_bytes + NODE_SYSTEM_MEMORY_BYTES),
                },
            })
        })
        .collect()
}

/// Average usage of the running pods that `selector` matches, as an HPA
/// reports it: utilization in percent of the summed requests and the
/// average per pod as a quantity.
pub(crate) struct Utilization {
    pub cpu_percent: i64,
    pub cpu_average: String,
    pub memory_percent: i64,
    pub memory_average: String,
}

/// Running pods with the usage of each container, taken once for many
/// [`workload_utilization`] calls.
pub(crate) struct UsageSnapshot {
    pods: Vec<(Value, Vec<(String, Usage)>)>,
}

impl UsageSnapshot {
    pub fn take(cluster: &Cluster) -> Self {
        Self {
            pods: pod_usages(cluster, None),
        }
    }
}

/// Utilization of the pods in `namespace` that `selector` matches; `None`
/// when none of them is running.
pub(crate) fn workload_utilization(
    snapshot: &UsageSnapshot,
    namespace: &str,
    selector: &Value,
) -> Option<Utilization> {
    let mut pods = 0i64;
    let mut used = Usage::default();
    let mut requested = Usage::default();
    for (pod, containers) in &snapshot.pods {
        if object::namespace(pod) != namespace
            || !object::selector_matches(selector, &pod["metadata"]["labels"])
        {
            continue;
        }
        pods += 1;
        for container in pod["spec"]["containers"].as_array().into_iter().flatten() {
            let requests = pods::container_requests(container);
            requested.cpu_nanocores += requests.cpu_millis * 1_000_000;
            requested.memory_bytes += requests.memory_bytes;
        }
        for (_, usage) in containers {
            used.cpu_nanocores += usage.cpu_nanocores;
            used.memory_bytes += usage.memory_bytes;
        }
    }
    if pods == 0 {
        return None;
    }
    let percent = |used: i64, requested: i64| {
        if requested > 0 {
            used * 100 / requested
        } else {
            0
        }
    };
    Some(Utilization {
        cpu_percent: percent(used.cpu_nanocores, requested.cpu_nanocores),
        cpu_average: quantity::format_millicores(used.cpu_nanocores / pods / 1_000_000),
        memory_percent: percent(used.memory_bytes, requested.memory_bytes),
        memory_average: quantity::format_kibibytes(used.memory_bytes / pods),
    })
}

/// Running pods with the usage of each container.
fn pod_usages(cluster: &Cluster, namespace: Option<&str>) -> Vec<(Value, Vec<(String, Usage)>)> {
    let (pods, _) = cluster.store.list(PODS, namespace);
    let running: Vec<Value> = pods
        .into_iter()
        .filter(|p| object::is_active(p) && object::is_running(p))
        .collect();
    let workloads = WorkloadIndex::new(cluster, namespace);
    let mut running_per_workload: HashMap<String, usize> = HashMap::new();
    for pod in &running {
        *running_per_workload
            .entry(workloads.key_of(pod))
            .or_default() += 1;
    }
    running
        .into_iter()
        .map(|pod| {
            let key = workloads.key_of(&pod);
            let model = workloads.model(&key, running_per_workload[&key]);
            let usage = container_usages(&pod, &model);
            (pod, usage)
        })
        .collect()
}

fn container_usages(pod: &Value, model: &LoadModel) -> Vec<(String, Usage)> {
    let containers: Vec<&Value> = pod["spec"]["containers"]
        .as_array()
        .into_iter()
        .flatten()
        .collect();
    let pod_cpu_request: i64 = containers
        .iter()
        .map(|c| pods::container_requests(c).cpu_millis)
        .sum();
    let jitter = 0.94 + 0.12 * object::unit_hash(object::name(pod));
    containers
        .iter()
        .map(|container| {
            let requests = pods::container_requests(container);
            let limits = pods::container_limits(container);
            let (cpu_request_millis, memory_request) = (requests.cpu_millis, requests.memory_bytes);
            let (cpu_limit_millis, memory_limit) = (limits.cpu_millis, limits.memory_bytes);
            let cpu = match (model.cpu_demand_nanocores, pod_cpu_request) {
                (Some(demand), total) if total > 0 => {
                    let share = cpu_request_millis as f64 / total as f64;
                    demand as f64 / model.running_pods.max(1) as f64 * share
                }
                _ if cpu_request_millis > 0 => {
                    cpu_request_millis as f64 * 1e6 * DEFAULT_CPU_UTILIZATION / 100.0
                }
                _ => BEST_EFFORT_CPU_NANOCORES as f64,
            };
            let memory = if memory_request > 0 {
                memory_request as f64 * model.memory_utilization / 100.0
            } else {
                BEST_EFFORT_MEMORY_BYTES as f64
            };
            let mut usage = Usage {
                cpu_nanocores: (cpu * jitter) as i64,
                memory_bytes: (memory * jitter) as i64,
            };
            if cpu_limit_millis > 0 {
                usage.cpu_nanocores = usage.cpu_nanocores.min(cpu_limit_millis * 1_000_000);
            }
            if memory_limit > 0 {
                usage.memory_bytes = usage.memory_bytes.min(memory_limit);
            }
            (container["name"].as_str().unwrap_or("").to_string(), usage)
        })
        .collect()
}

/// Workloads by the UID their pods name as controller, with a ReplicaSet
/// resolved to its Deployment so that all pods of a Deployment share one
/// load model across a rollout.
struct WorkloadIndex {
    /// Controller UID of a pod -> UID of its workload.
    workload_of_owner: HashMap<String, String>,
    /// Workload UID -> workload object.
    workloads: HashMap<String, Value>,
}

impl WorkloadIndex {
    fn new(cluster: &Cluster, namespace: Option<&str>) -> Self {
        let store = &cluster.store;
        let mut workloads: HashMap<String, Value> = HashMap::new();
        let mut workload_of_owner = HashMap::new();
        let (deployments, _) = store.list(DEPLOYMENTS, namespace);
        for deployment in deployments {
            workloads.insert(object::uid(&deployment).to_string(), deployment);
        }
        let (sets, _) = store.list(REPLICA_SETS, namespace);
        for set in sets {
            let set_uid = object::uid(&set).to_string();
            match object::controller_uid(&set).filter(|owner| workloads.contains_key(*owner)) {
                Some(owner) => {
                    workload_of_owner.insert(set_uid, owner.to_string());
                }
                None => {
                    workload_of_owner.insert(set_uid.clone(), set_uid.clone());
                    workloads.insert(set_uid, set);
                }
            }
        }
        let (stateful_sets, _) = store.list(STATEFUL_SETS, namespace);
        for set in stateful_sets {
            let set_uid = object::uid(&set).to_string();
            workload_of_owner.insert(set_uid.clone(), set_uid.clone());
            workloads.insert(set_uid, set);
        }
        Self {
            workload_of_owner,
            workloads,
        }
    }

    /// Key that groups pods sharing a load model: the workload UID, or the
    /// pod's own name for a pod without a known workload.
    fn key_of(&self, pod: &Value) -> String {
        match object::controller_uid(pod).and_then(|owner| self.workload_of_owner.get(owner)) {
            Some(workload) => workload.clone(),
            None => format!("pod/{}/{}", object::namespace(pod), object::name(pod)),
        }
    }

    fn model(&self, key: &str, running_pods: usize) -> LoadModel {
        let workload = self.workloads.get(key);
        let annotation = |name: &str| workload.and_then(|w| object::annotation(w, name));
        LoadModel {
            cpu_demand_nanocores: annotation(CPU_DEMAND_ANNOTATION)
                .and_then(|q| quantity::parse(q).ok())
                .map(|cores| (cores * 1e9) as i64),
            memory_utilization: annotation(MEMORY_UTILIZATION_ANNOTATION)
                .and_then(|p| p.parse().ok())
                .unwrap_or(DEFAULT_MEMORY_UTILIZATION),
            running_pods,
        }
    }
}
