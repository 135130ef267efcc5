//! Table columns per kind, matching what a 1.32 API server prints
//! for `kubectl get` (and, for `postgresql`, the printer columns of the
//! Zalando operator's CRD).

use super::Column;
use crate::registry::ResourceType;

const NAME: Column = Column::new(
    "Name",
    "string",
    0,
    "Name must be unique within a namespace.",
);
const AGE: Column = Column::new("Age", "string", 0, "Age of the object since its creation.");
const CONTAINERS: Column = Column::new(
    "Containers",
    "string",
    1,
    "Names of each container in the template.",
);
const IMAGES: Column = Column::new(
    "Images",
    "string",
    1,
    "Images referenced by each container in the template.",
);
const SELECTOR: Column = Column::new(
    "Selector",
    "string",
    1,
    "Label selector of the managed pods.",
);

const DEPLOYMENT: &[Column] = &[
    NAME,
    Column::new(
        "Ready",
        "string",
        0,
        "Ready replicas out of desired replicas.",
    ),
    Column::new(
        "Up-to-date",
        "integer",
        0,
        "Replicas updated to the current template.",
    ),
    Column::new("Available", "integer", 0, "Replicas available to users."),
    AGE,
    CONTAINERS,
    IMAGES,
    SELECTOR,
];
const STATEFULSET: &[Column] = &[
    NAME,
    Column::new(
        "Ready",
        "string",
        0,
        "Ready replicas out of desired replicas.",
    ),
    AGE,
    CONTAINERS,
    IMAGES,
];
const REPLICASET: &[Column] = &[
    NAME,
    Column::new("Desired", "integer", 0, "Desired replicas."),
    Column::new("Current", "integer", 0, "Observed replicas."),
    Column::new("Ready", "integer", 0, "Ready replicas."),
    AGE,
    CONTAINERS,
    IMAGES,
    SELECTOR,
];
const POD: &[Column] = &[
    NAME,
    Column::new(
        "Ready",
        "string",
        0,
        "Ready containers out of all containers.",
    ),
    Column::new(
        "Status",
        "string",
        0,
        "Pod phase or the reason it is not running.",
    ),
    Column::new("Restarts", "string", 0, "Container restarts."),
    AGE,
    Column::new("IP", "string", 1, "Pod IP address."),
    Column::new("Node", "string", 1, "Node the pod runs on."),
    Column::new(
        "Nominated Node",
        "string",
        1,
        "Node nominated by preemption.",
    ),
    Column::new(
        "Readiness Gates",
        "string",
        1,
        "Readiness gates that are true.",
    ),
];
const HPA: &[Column] = &[
    NAME,
    Column::new("Reference", "string", 0, "Scale target."),
    Column::new("Targets", "string", 0, "Current and target metric values."),
    Column::new("MinPods", "string", 0, "Lower replica limit."),
    Column::new("MaxPods", "integer", 0, "Upper replica limit."),
    Column::new("Replicas", "integer", 0, "Current replicas."),
    AGE,
];
const PDB: &[Column] = &[
    NAME,
    Column::new(
        "Min Available",
        "string",
        0,
        "Pods that must stay available.",
    ),
    Column::new(
        "Max Unavailable",
        "string",
        0,
        "Pods that may be unavailable.",
    ),
    Column::new(
        "Allowed Disruptions",
        "integer",
        0,
        "Evictions allowed now.",
    ),
    AGE,
];
const ENDPOINTS: &[Column] = &[
    NAME,
    Column::new(
        "Endpoints",
        "string",
        0,
        "Ready endpoint addresses and ports.",
    ),
    AGE,
];
const SERVICE: &[Column] = &[
    NAME,
    Column::new("Type", "string", 0, "Service type."),
    Column::new("Cluster-IP", "string", 0, "Cluster IP address."),
    Column::new("External-IP", "string", 0, "External IP addresses."),
    Column::new("Port(s)", "string", 0, "Service ports."),
    AGE,
    Column::new("Selector", "string", 1, "Pod selector."),
];
const NODE: &[Column] = &[
    NAME,
    Column::new("Status", "string", 0, "Readiness of the node."),
    Column::new(
        "Roles",
        "string",
        0,
        "Roles from node-role.kubernetes.io labels.",
    ),
    AGE,
    Column::new("Version", "string", 0, "Kubelet version."),
    Column::new("Internal-IP", "string", 1, "Internal IP address."),
    Column::new("External-IP", "string", 1, "External IP address."),
    Column::new("OS-Image", "string", 1, "Operating system image."),
    Column::new("Kernel-Version", "string", 1, "Kernel version."),
    Column::new(
        "Container-Runtime",
        "string",
        1,
        "Container runtime and version.",
    ),
];
const EVENT: &[Column] = &[
    Column::new("Last Seen", "string", 0, "Time of the last occurrence."),
    Column::new("Type", "string", 0, "Normal or Warning."),
    Column::new("Reason", "string", 0, "Short machine-readable reason."),
    Column::new("Object", "string", 0, "Object the event is about."),
    Column::new(
        "Subobject",
        "string",
        1,
        "Part of the object, such as a container.",
    ),
    Column::new("Source", "string", 1, "Component that reported the event."),
    Column::new("Message", "string", 0, "Human-readable description."),
    Column::new("First Seen", "string", 1, "Time of the first occurrence."),
    Column::new("Count", "string", 1, "Number of occurrences."),
    Column::new("Name", "string", 1, "Event name."),
];
const NAMESPACE: &[Column] = &[
    NAME,
    Column::new("Status", "string", 0, "Namespace phase."),
    AGE,
];
const CONFIGMAP: &[Column] = &[
    NAME,
    Column::new("Data", "integer", 0, "Number of keys."),
    AGE,
];
const CONTROLLER_REVISION: &[Column] = &[
    NAME,
    Column::new("Controller", "string", 0, "Owning controller."),
    Column::new("Revision", "integer", 0, "Revision number."),
    AGE,
];
const POSTGRESQL: &[Column] = &[
    NAME,
    Column::new("Team", "string", 0, "Team responsible for the cluster."),
    Column::new("Version", "string", 0, "PostgreSQL major version."),
    Column::new("Pods", "integer", 0, "Number of instances."),
    Column::new("Volume", "string", 0, "Size of each volume."),
    Column::new("CPU-Request", "string", 0, "CPU request per instance."),
    Column::new(
        "Memory-Request",
        "string",
        0,
        "Memory request per instance.",
    ),
    AGE,
    Column::new(
        "Status",
        "string",
        0,
        "Cluster status reported by the operator.",
    ),
];
const ENDPOINT_SLICE: &[Column] = &[
    NAME,
    Column::new("AddressType", "string", 0, "Address type of the endpoints."),
    Column::new("Ports", "string", 0, "Ports of the endpoints."),
    Column::new("Endpoints", "string", 0, "Endpoint addresses."),
    AGE,
];
const GENERIC: &[Column] = &[NAME, AGE];

pub fn for_resource(resource: &ResourceType) -> &'static [Column] {
    match (resource.group, resource.kind) {
        ("apps", "Deployment") => DEPLOYMENT,
        ("apps", "StatefulSet") => STATEFULSET,
        ("apps", "ReplicaSet") => REPLICASET,
        ("apps", "ControllerRevision") => CONTROLLER_REVISION,
        ("", "Pod") => POD,
        ("autoscaling", "HorizontalPodAutoscaler") => HPA,
        ("policy", "PodDisruptionBudget") => PDB,
        ("", "Endpoints") => ENDPOINTS,
        ("discovery.k8s.io", "EndpointSlice") => ENDPOINT_SLICE,
        ("", "Service") => SERVICE,
        ("", "Node") => NODE,
        ("", "Event") => EVENT,
        ("", "Namespace") => NAMESPACE,
        ("", "ConfigMap") => CONFIGMAP,
        ("acid.zalan.do", "postgresql") => POSTGRESQL,
        _ => GENERIC,
    }
}
