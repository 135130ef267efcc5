//! Pods as workload controllers create them from a pod template, and the
//! resource arithmetic the scheduler and metrics share.

use serde_json::{Map, Value, json};

use super::object;
use super::quantity;

/// CPU and memory of a pod or a node.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Resources {
    pub cpu_millis: i64,
    pub memory_bytes: i64,
}

impl Resources {
    fn of(list: &Value) -> Self {
        Self {
            cpu_millis: quantity::cpu_millis_of(&list["cpu"]),
            memory_bytes: quantity::memory_bytes_of(&list["memory"]),
        }
    }

    fn max(self, other: Self) -> Self {
        Self {
            cpu_millis: self.cpu_millis.max(other.cpu_millis),
            memory_bytes: self.memory_bytes.max(other.memory_bytes),
        }
    }

    fn add(self, other: Self) -> Self {
        Self {
            cpu_millis: self.cpu_millis + other.cpu_millis,
            memory_bytes: self.memory_bytes + other.memory_bytes,
        }
    }
}

/// Requests of one container. A resource with a limit and no request
/// requests its limit, as the API server defaults it.
pub(crate) fn container_requests(container: &Value) -> Resources {
    let resources = &container["resources"];
    let requests = &resources["requests"];
    let limits = &resources["limits"];
    let pick = |name: &str| {
        if requests[name].is_null() {
            &limits[name]
        } else {
            &requests[name]
        }
    };
    Resources {
        cpu_millis: quantity::cpu_millis_of(pick("cpu")),
        memory_bytes: quantity::memory_bytes_of(pick("memory")),
    }
}

/// Limits of one container; zero where unlimited.
pub(crate) fn container_limits(container: &Value) -> Resources {
    Resources::of(&container["resources"]["limits"])
}

/// Requests of a pod as the scheduler counts them: the sum over its
/// containers, or the largest init container when that is larger.
pub(crate) fn pod_requests(pod_spec: &Value) -> Resources {
    let each = |key: &str| -> Vec<Resources> {
        pod_spec[key]
            .as_array()
            .map(|list| list.iter().map(container_requests).collect())
            .unwrap_or_default()
    };
    let running = each("containers")
        .into_iter()
        .fold(Resources::default(), Resources::add);
    let init = each("initContainers")
        .into_iter()
        .fold(Resources::default(), Resources::max);
    running.max(init)
}

/// Returns the pod's QoS class: Guaranteed when every container's requests
/// equal its limits for CPU and memory, BestEffort when none sets either.
pub(crate) fn qos_class(pod_spec: &Value) -> &'static str {
    let containers = pod_spec["containers"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or(&[]);
    let mut any_set = false;
    let mut all_guaranteed = !containers.is_empty();
    for container in containers {
        let requests = container_requests(container);
        let limits = container_limits(container);
        any_set |= requests != Resources::default() || limits != Resources::default();
        all_guaranteed &= limits.cpu_millis > 0 && limits.memory_bytes > 0 && requests == limits;
    }
    match (any_set, all_guaranteed) {
        (_, true) => "Guaranteed",
        (false, _) => "BestEffort",
        (true, false) => "Burstable",
    }
}

/// Naming of a new pod.
pub(crate) enum PodName<'a> {
    /// `generateName` prefix; the store appends a five-character suffix.
    Generate(&'a str),
    Fixed(&'a str),
}

/// Builds a pod from a workload's pod template, with the defaults the API
/// server fills in, `extra_labels` added and `owner` as its controller.
pub(crate) fn from_template(
    template: &Value,
    owner: &Value,
    name: PodName<'_>,
    extra_labels: &Map<String, Value>,
) -> Value {
    let mut metadata = template["metadata"]
        .as_object()
        .cloned()
        .unwrap_or_default();
    metadata.remove("creationTimestamp");
    let mut labels = metadata
        .get("labels")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    labels.extend(extra_labels.clone());
    metadata.insert("labels".into(), Value::Object(labels));
    match name {
        PodName::Generate(prefix) => metadata.insert("generateName".into(), json!(prefix)),
        PodName::Fixed(name) => metadata.insert("name".into(), json!(name)),
    };
    metadata.insert("namespace".into(), json!(object::namespace(owner)));
    metadata.insert(
        "ownerReferences".into(),
        json!([object::controller_reference(owner)]),
    );

    let mut spec = template["spec"].clone();
    apply_spec_defaults(&mut spec);
    let qos = qos_class(&spec);
    json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": metadata,
        "spec": spec,
        "status": {"phase": "Pending", "qosClass": qos},
    })
}

fn apply_spec_defaults(spec: &mut Value) {
    let defaults = [
        ("restartPolicy", json!("Always")),
        ("dnsPolicy", json!("ClusterFirst")),
        ("schedulerName", json!("default-scheduler")),
        ("terminationGracePeriodSeconds", json!(30)),
        ("serviceAccountName", json!("default")),
        ("enableServiceLinks", json!(true)),
        ("priority", json!(0)),
        ("securityContext", json!({})),
        // The DefaultTolerationSeconds admission plugin adds these two.
        (
            "tolerations",
            json!([
                {"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300},
                {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300},
            ]),
        ),
    ];
    for (key, value) in defaults {
        if spec[key].is_null() {
            spec[key] = value;
        }
    }
    if let Some(containers) = spec["containers"].as_array_mut() {
        for container in containers {
            apply_container_defaults(container);
        }
    }
}

fn apply_container_defaults(container: &mut Value) {
    if container["imagePullPolicy"].is_null() {
        let image = container["image"].as_str().unwrap_or("");
        let latest = !image.contains(':') || image.ends_with(":latest");
        container["imagePullPolicy"] = json!(if latest { "Always" } else { "IfNotPresent" });
    }
    if container["terminationMessagePath"].is_null() {
        container["terminationMessagePath"] = json!("/dev/termination-log");
    }
    if container["terminationMessagePolicy"].is_null() {
        container["terminationMessagePolicy"] = json!("File");
    }
    if container["resources"].is_null() {
        container["resources"] = json!({});
    }
}

/// Sort key for choosing pods to delete on scale-down, smallest first, as
/// the ReplicaSet controller ranks them: unscheduled before scheduled,
/// Pending before Running, not Ready before Ready, newer before older.
pub(crate) fn deletion_rank(
    pod: &Value,
    creation_order: u64,
) -> (bool, u8, bool, std::cmp::Reverse<u64>) {
    let phase = match pod["status"]["phase"].as_str().unwrap_or("Pending") {
        "Pending" => 0,
        "Unknown" => 1,
        _ => 2,
    };
    (
        object::node_name(pod).is_some(),
        phase,
        object::is_ready(pod),
        std::cmp::Reverse(creation_order),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pod_requests_default_to_limits_and_count_init_containers() {
        let spec = json!({
            "containers": [
                {"name": "a", "resources": {"requests": {"cpu": "500m", "memory": "1Gi"}}},
                {"name": "b", "resources": {"limits": {"cpu": "1", "memory": "512Mi"}}},
            ],
            "initContainers": [{"name": "init", "resources": {"requests": {"cpu": "2"}}}],
        });
        let requests = pod_requests(&spec);
        assert_eq!(requests.cpu_millis, 2000);
        assert_eq!(requests.memory_bytes, (1 << 30) + (512 << 20));
    }

    #[test]
    fn qos_class_follows_requests_and_limits() {
        let guaranteed =
            json!({"containers": [{"resources": {"limits": {"cpu": "1", "memory": "1Gi"}}}]});
        let burstable = json!({"containers": [{"resources": {"requests": {"cpu": "1"}}}]});
        let best_effort = json!({"containers": [{"name": "x"}]});
        assert_eq!(qos_class(&guaranteed), "Guaranteed");
        assert_eq!(qos_class(&burstable), "Burstable");
        assert_eq!(qos_class(&best_effort), "BestEffort");
    }
}
