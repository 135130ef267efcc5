//! Builders for the objects scenarios load: namespaces, nodes, and for each
//! application service its Deployment, HPA, PodDisruptionBudget and
//! Service.

use serde_json::{Value, json};

use crate::controllers::object;
use crate::controllers::quantity;
use crate::metrics::{CPU_DEMAND_ANNOTATION, MEMORY_UTILIZATION_ANNOTATION};

/// Kubernetes version the simulated kubelets report.
pub(super) const KUBELET_VERSION: &str = "v1.32.4";

pub(super) fn namespace(name: &str) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {"name": name, "labels": {"kubernetes.io/metadata.name": name}},
        "spec": {"finalizers": ["kubernetes"]},
        "status": {"phase": "Active"},
    })
}

/// Size of a node: capacity, and what is left allocatable to pods after
/// the kubelet's system and eviction reserves.
pub(super) struct NodeShape {
    pub instance_type: &'static str,
    pub cpu: &'static str,
    pub memory: &'static str,
    pub allocatable_cpu: &'static str,
    pub allocatable_memory: &'static str,
    pub max_pods: u32,
}

/// Builds a Ready node. `index` picks its addresses: InternalIP
/// `10.0.1.<10+index>` and pod CIDR `10.244.<index>.0/24`.
pub(super) fn node(name: &str, index: usize, zone: &str, region: &str, shape: &NodeShape) -> Value {
    let now = object::now_timestamp();
    let ip = format!("10.0.{}.{}", 1 + (10 + index) / 250, (10 + index) % 250);
    let cidr = format!("10.244.{index}.0/24");
    let condition = |kind: &str, status: &str, reason: &str, message: &str| {
        json!({"type": kind, "status": status, "reason": reason, "message": message,
               "lastHeartbeatTime": now, "lastTransitionTime": now})
    };
    json!({
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "labels": {
                "kubernetes.io/hostname": name,
                "kubernetes.io/os": "linux",
                "kubernetes.io/arch": "amd64",
                "node.kubernetes.io/instance-type": shape.instance_type,
                "topology.kubernetes.io/region": region,
                "topology.kubernetes.io/zone": zone,
            },
        },
        "spec": {"podCIDR": cidr, "podCIDRs": [cidr]},
        "status": {
            "capacity": {"cpu": shape.cpu, "memory": shape.memory, "pods": shape.max_pods.to_string(), "ephemeral-storage": "203056560Ki"},
            "allocatable": {"cpu": shape.allocatable_cpu, "memory": shape.allocatable_memory, "pods": shape.max_pods.to_string(), "ephemeral-storage": "187136925387"},
            "conditions": [
                condition("MemoryPressure", "False", "KubeletHasSufficientMemory", "kubelet has sufficient memory available"),
                condition("DiskPressure", "False", "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
                condition("PIDPressure", "False", "KubeletHasSufficientPID", "kubelet has sufficient PID available"),
                condition("Ready", "True", "KubeletReady", "kubelet is posting ready status"),
            ],
            "addresses": [{"type": "InternalIP", "address": ip}, {"type": "Hostname", "address": name}],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}},
            "nodeInfo": {
                "kubeletVersion": KUBELET_VERSION,
                "kubeProxyVersion": KUBELET_VERSION,
                "containerRuntimeVersion": "containerd://1.7.27",
                "osImage": "Ubuntu 22.04.5 LTS",
                "kernelVersion": "6.8.0-1027-gcp",
                "operatingSystem": "linux",
                "architecture": "amd64",
                "machineID": format!("{:032x}", index + 1),
                "systemUUID": format!("5c0a1e00-0000-4000-8000-{:012x}", index + 1),
                "bootID": format!("b0070000-0000-4000-8000-{:012x}", index + 1),
            },
        },
    })
}

/// Limit a service's PodDisruptionBudget puts on voluntary disruptions.
#[derive(Debug, Clone, Copy)]
pub(super) enum Budget {
    MinAvailable(i64),
    MaxUnavailable(i64),
}

/// One application service: a Deployment on port 8080 behind a Service on
/// port 80, with an HPA and a PodDisruptionBudget.
pub(super) struct AppService {
    pub name: String,
    pub namespace: &'static str,
    pub image: String,
    pub min_replicas: i64,
    pub replicas: i64,
    pub max_replicas: i64,
    pub cpu_request: &'static str,
    pub memory_request: &'static str,
    pub cpu_limit: &'static str,
    pub memory_limit: &'static str,
    /// Container environment, in order.
    pub env: Vec<(&'static str, String)>,
    pub budget: Budget,
    /// Total CPU demand across the service's pods (see `metrics`).
    pub cpu_demand: String,
    /// Memory use of each pod, in percent of its request.
    pub memory_utilization: u32,
    /// Service `sessionAffinity: ClientIP`, for stateful sessions.
    pub client_ip_affinity: bool,
}

impl AppService {
    fn labels(&self) -> Value {
        json!({"app": self.name, "app.kubernetes.io/name": self.name, "app.kubernetes.io/part-of": "butterfly"})
    }

    pub fn deployment(&self) -> Value {
        let env: Vec<Value> = self
            .env
            .iter()
            .map(|(k, v)| json!({"name": k, "value": v}))
            .collect();
        let probe = |path: &str, delay: u32| {
            json!({"httpGet": {"path": path, "port": 8080, "scheme": "HTTP"}, "initialDelaySeconds": delay,
                   "periodSeconds": 10, "timeoutSeconds": 1, "successThreshold": 1, "failureThreshold": 3})
        };
        json!({
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {
                "name": self.name,
                "namespace": self.namespace,
                "labels": self.labels(),
                "annotations": {
                    CPU_DEMAND_ANNOTATION: self.cpu_demand,
                    MEMORY_UTILIZATION_ANNOTATION: self.memory_utilization.to_string(),
                },
            },
            "spec": {
                "replicas": self.replicas,
                "selector": {"matchLabels": {"app": self.name}},
                "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}},
                "revisionHistoryLimit": 10,
                "progressDeadlineSeconds": 600,
                "template": {
                    "metadata": {
                        "labels": self.labels(),
                        "annotations": {"prometheus.io/scrape": "true", "prometheus.io/port": "8080", "prometheus.io/path": "/actuator/prometheus"},
                    },
                    "spec": {
                        "containers": [{
                            "name": self.name,
                            "image": self.image,
                            "imagePullPolicy": "IfNotPresent",
                            "ports": [{"name": "http", "containerPort": 8080, "protocol": "TCP"}],
                            "env": env,
                            "resources": {
                                "requests": {"cpu": self.cpu_request, "memory": self.memory_request},
                                "limits": {"cpu": self.cpu_limit, "memory": self.memory_limit},
                            },
                            "readinessProbe": probe("/actuator/health/readiness", 20),
                            "livenessProbe": probe("/actuator/health/liveness", 60),
                        }],
                        "terminationGracePeriodSeconds": 30,
                    },
                },
            },
        })
    }

    /// autoscaling/v2 HPA on CPU 70 % and memory 80 % of requests, with
    /// the status the HPA controller would report for the initial load.
    pub fn autoscaler(&self) -> Value {
        let now = object::now_timestamp();
        let cpu_request = quantity::cpu_millis(self.cpu_request).unwrap_or(0);
        let memory_request = quantity::memory_bytes(self.memory_request).unwrap_or(0);
        let demand = quantity::cpu_millis(&self.cpu_demand).unwrap_or(0);
        let cpu_average = demand / self.replicas.max(1);
        let cpu_percent = if cpu_request > 0 {
            cpu_average * 100 / cpu_request
        } else {
            0
        };
        let memory_average = memory_request * i64::from(self.memory_utilization) / 100;
        let resource_metric = |name: &str, target: u32| json!({"type": "Resource", "resource": {"name": name, "target": {"type": "Utilization", "averageUtilization": target}}});
        let current_metric = |name: &str, percent: i64, average: String| json!({"type": "Resource", "resource": {"name": name, "current": {"averageUtilization": percent, "averageValue": average}}});
        let condition = |kind: &str, status: &str, reason: &str, message: &str| json!({"type": kind, "status": status, "reason": reason, "message": message, "lastTransitionTime": now});
        json!({
            "apiVersion": "autoscaling/v2",
            "kind": "HorizontalPodAutoscaler",
            "metadata": {"name": format!("{}-hpa", self.name), "namespace": self.namespace, "labels": self.labels()},
            "spec": {
                "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": self.name},
                "minReplicas": self.min_replicas,
                "maxReplicas": self.max_replicas,
                "metrics": [resource_metric("cpu", 70), resource_metric("memory", 80)],
                "behavior": {
                    "scaleDown": {"stabilizationWindowSeconds": 300, "selectPolicy": "Max",
                                  "policies": [{"type": "Percent", "value": 100, "periodSeconds": 15}]},
                    "scaleUp": {"stabilizationWindowSeconds": 0, "selectPolicy": "Max",
                                "policies": [{"type": "Percent", "value": 100, "periodSeconds": 15},
                                             {"type": "Pods", "value": 4, "periodSeconds": 15}]},
                },
            },
            "status": {
                "currentReplicas": self.replicas,
                "desiredReplicas": self.replicas,
                "currentMetrics": [
                    current_metric("cpu", cpu_percent, quantity::format_millicores(cpu_average)),
                    current_metric("memory", i64::from(self.memory_utilization), quantity::format_kibibytes(memory_average)),
                ],
                "conditions": [
                    condition("AbleToScale", "True", "ReadyForNewScale", "recommended size matches current size"),
                    condition("ScalingActive", "True", "ValidMetricFound",
                              "the HPA was able to successfully calculate a replica count from cpu resource utilization (percentage of request)"),
                    condition("ScalingLimited", "False", "DesiredWithinRange", "the desired count is within the acceptable range"),
                ],
            },
        })
    }

    pub fn disruption_budget(&self) -> Value {
        disruption_budget(&self.name, self.namespace, self.budget)
    }

    pub fn service(&self) -> Value {
        let mut service = cluster_ip_service(&self.name, self.namespace, &[("http", 80, 8080)]);
        service["metadata"]["labels"] = self.labels();
        if self.client_ip_affinity {
            service["spec"]["sessionAffinity"] = json!("ClientIP");
            service["spec"]["sessionAffinityConfig"] =
                json!({"clientIP": {"timeoutSeconds": 10800}});
        }
        service
    }
}

/// PodDisruptionBudget `<app>-pdb` over the pods labelled `app=<app>`.
pub(super) fn disruption_budget(app: &str, namespace: &str, budget: Budget) -> Value {
    let mut spec = json!({"selector": {"matchLabels": {"app": app}}});
    match budget {
        Budget::MinAvailable(n) => spec["minAvailable"] = json!(n),
        Budget::MaxUnavailable(n) => spec["maxUnavailable"] = json!(n),
    }
    json!({
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": {"name": format!("{app}-pdb"), "namespace": namespace, "labels": {"app": app}},
        "spec": spec,
    })
}

/// Builds a ClusterIP Service selecting `app=<app>`. `ports` are (name,
/// port, target port).
pub(super) fn cluster_ip_service(app: &str, namespace: &str, ports: &[(&str, u16, u16)]) -> Value {
    let ip = object::cluster_ip(namespace, app);
    service(app, namespace, ports, json!(ip))
}

/// Builds a headless Service (`clusterIP: None`), which gives StatefulSet
/// pods their DNS names `<pod>.<service>.<namespace>.svc.cluster.local`.
pub(super) fn headless_service(app: &str, namespace: &str, ports: &[(&str, u16, u16)]) -> Value {
    service(app, namespace, ports, json!("None"))
}

fn service(app: &str, namespace: &str, ports: &[(&str, u16, u16)], cluster_ip: Value) -> Value {
    let ports: Vec<Value> = ports
        .iter()
        .map(|(name, port, target)| json!({"name": name, "port": port, "targetPort": target, "protocol": "TCP"}))
        .collect();
    json!({
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": app, "namespace": namespace, "labels": {"app": app}},
        "spec": {
            "type": "ClusterIP",
            "clusterIP": cluster_ip,
            "clusterIPs": [cluster_ip],
            "ipFamilies": ["IPv4"],
            "ipFamilyPolicy": "SingleStack",
            "internalTrafficPolicy": "Cluster",
            "sessionAffinity": "None",
            "selector": {"app": app},
            "ports": ports,
        },
    })
}
