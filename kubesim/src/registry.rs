//! The table of API resources kubesim serves.
//!
//! Discovery (aggregated and legacy), routing, scope checks and the choice of
//! patch strategies are all generated from [`RESOURCES`], so a resource added
//! here appears consistently everywhere.

/// A subresource such as `deployments/scale`.
#[derive(Debug, Clone, Copy)]
pub struct Subresource {
    pub name: &'static str,
    /// Kind returned by the subresource; empty where the response is not an
    /// API object (`log`, `exec`, `proxy`).
    pub kind: &'static str,
    /// Group and version of that kind, such as `autoscaling/v1` for `scale`.
    pub group: &'static str,
    pub version: &'static str,
    pub verbs: &'static [&'static str],
}

/// One API resource, such as `apps/v1 deployments`.
#[derive(Debug)]
pub struct ResourceType {
    /// API group; empty for the core (legacy) group.
    pub group: &'static str,
    pub version: &'static str,
    pub plural: &'static str,
    pub singular: &'static str,
    pub kind: &'static str,
    pub namespaced: bool,
    pub verbs: &'static [&'static str],
    pub short_names: &'static [&'static str],
    pub categories: &'static [&'static str],
    pub subresources: &'static [Subresource],
    /// Built-in kinds accept strategic merge patch; custom resources get 415,
    /// as from a real API server.
    pub builtin: bool,
}

impl ResourceType {
    /// `apiVersion` of objects of this type (`v1`, `apps/v1`).
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.to_string()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    /// Store key of this resource type: `group/version/plural`.
    pub fn key(&self) -> String {
        format!("{}/{}/{}", self.group, self.version, self.plural)
    }

    pub fn subresource(&self, name: &str) -> Option<&'static Subresource> {
        self.subresources.iter().find(|s| s.name == name)
    }
}

const ALL_VERBS: &[&str] = &[
    "create",
    "delete",
    "deletecollection",
    "get",
    "list",
    "patch",
    "update",
    "watch",
];
const READ_VERBS: &[&str] = &["get", "list", "watch"];
const METRICS_VERBS: &[&str] = &["get", "list"];

const STATUS: Subresource = Subresource {
    name: "status",
    kind: "",
    group: "",
    version: "",
    verbs: &["get", "patch", "update"],
};
const SCALE: Subresource = Subresource {
    name: "scale",
    kind: "Scale",
    group: "autoscaling",
    version: "v1",
    verbs: &["get", "patch", "update"],
};

pub static RESOURCES: &[ResourceType] = &[
    ResourceType {
        group: "",
        version: "v1",
        plural: "namespaces",
        singular: "namespace",
        kind: "Namespace",
        namespaced: false,
        verbs: &[
            "create", "delete", "get", "list", "patch", "update", "watch",
        ],
        short_names: &["ns"],
        categories: &[],
        subresources: &[STATUS],
        builtin: true,
    },
    ResourceType {
        group: "",
        version: "v1",
        plural: "nodes",
        singular: "node",
        kind: "Node",
        namespaced: false,
        verbs: ALL_VERBS,
        short_names: &["no"],
        categories: &[],
        subresources: &[STATUS],
        builtin: true,
    },
    ResourceType {
        group: "",
        version: "v1",
        plural: "pods",
        singular: "pod",
        kind: "Pod",
        namespaced: true,
        verbs: ALL_VERBS,
        short_names: &["po"],
        categories: &["all"],
        subresources: &[
            STATUS,
            Subresource {
                name: "log",
                kind: "Pod",
                group: "",
                version: "v1",
                verbs: &["get"],
            },
            Subresource {
                name: "exec",
                kind: "PodExecOptions",
                group: "",
                version: "v1",
                verbs: &["create", "get"],
            },
            Subresource {
                name: "proxy",
                kind: "PodProxyOptions",
                group: "",
                version: "v1",
                verbs: &["create", "delete", "get", "patch", "update"],
            },
        ],
        builtin: true,
    },
    ResourceType {
        group: "",
        version: "v1",
        plural: "services",
        singular: "service",
        kind: "Service",
        namespaced: true,
        verbs: ALL_VERBS,
        short_names: &["svc"],
        categories: &["all"],
        subresources: &[STATUS],
        builtin: true,
    },
    ResourceType {
        group: "",
        version: "v1",
        plural: "endpoints",
        singular: "endpoints",
        kind: "Endpoints",
        namespaced: true,
        verbs: ALL_VERBS,
        short_names: &["ep"],
        categories: &[],
        subresources: &[],
        builtin: true,
    },
    ResourceType {
        group: "",
        version: "v1",
        plural: "events",
        singular: "event",
        kind: "Event",
        namespaced: true,
        verbs: ALL_VERBS,
        short_names: &["ev"],
        categories: &[],
        subresources: &[],
        builtin: true,
    },
    ResourceType {
        group: "",
        version: "v1",
        plural: "configmaps",
        singular: "configmap",
        kind: "ConfigMap",
        namespaced: true,
        verbs: ALL_VERBS,
        short_names: &["cm"],
        categories: &[],
        subresources: &[],
        builtin: true,
    },
    ResourceType {
        group: "apps",
        version: "v1",
        plural: "deployments",
        singular: "deployment",
        kind: "Deployment",
        namespaced: true,
        verbs: ALL_VERBS,
        short_names: &["deploy"],
        categories: &["all"],
        subresources: &[SCALE, STATUS],
        builtin: true,
    },
    ResourceType {
        group: "apps",
        version: "v1",
        plural: "replicasets",
        singular: "replicaset",
        kind: "ReplicaSet",
        namespaced: true,
        verbs: ALL_VERBS,
        short_names: &["rs"],
        categories: &["all"],
        subresources: &[SCALE, STATUS],
        builtin: true,
    },
    ResourceType {
        group: "apps",
        version: "v1",
        plural: "statefulsets",
        singular: "statefulset",
        kind: "StatefulSet",
        namespaced: true,
        verbs: ALL_VERBS,
        short_names: &["sts"],
        categories: &["all"],
        subresources: &[SCALE, STATUS],
        builtin: true,
    },
    ResourceType {
        group: "apps",
        version: "v1",
        plural: "controllerrevisions",
        singular: "controllerrevision",
        kind: "ControllerRevision",
        namespaced: true,
        verbs: ALL_VERBS,
        short_names: &[],
        categories: &[],
        subresources: &[],
        builtin: true,
    },
    ResourceType {
        group: "autoscaling",
        version: "v2",
        plural: "horizontalpodautoscalers",
        singular: "horizontalpodautoscaler",
        kind: "HorizontalPodAutoscaler",
        namespaced: true,
        verbs: ALL_VERBS,
        short_names: &["hpa"],
        categories: &["all"],
        subresources: &[STATUS],
        builtin: true,
    },
    ResourceType {
        group: "policy",
        version: "v1",
        plural: "poddisruptionbudgets",
        singular: "poddisruptionbudget",
        kind: "PodDisruptionBudget",
        namespaced: true,
        verbs: ALL_VERBS,
        short_names: &["pdb"],
        categories: &[],
        subresources: &[STATUS],
        builtin: true,
    },
    ResourceType {
        group: "acid.zalan.do",
        version: "v1",
        plural: "postgresqls",
        singular: "postgresql",
        kind: "postgresql",
        namespaced: true,
        verbs: ALL_VERBS,
        short_names: &["pg"],
        categories: &["all"],
        subresources: &[STATUS],
        builtin: false,
    },
    ResourceType {
        group: "discovery.k8s.io",
        version: "v1",
        plural: "endpointslices",
        singular: "endpointslice",
        kind: "EndpointSlice",
        namespaced: true,
        verbs: METRICS_VERBS,
        short_names: &[],
        categories: &[],
        subresources: &[],
        builtin: true,
    },
    ResourceType {
        group: "metrics.k8s.io",
        version: "v1beta1",
        plural: "pods",
        singular: "",
        kind: "PodMetrics",
        namespaced: true,
        verbs: METRICS_VERBS,
        short_names: &[],
        categories: &[],
        subresources: &[],
        builtin: true,
    },
    ResourceType {
        group: "metrics.k8s.io",
        version: "v1beta1",
        plural: "nodes",
        singular: "",
        kind: "NodeMetrics",
        namespaced: false,
        verbs: METRICS_VERBS,
        short_names: &[],
        categories: &[],
        subresources: &[],
        builtin: true,
    },
];

/// Resources whose objects are computed on read instead of stored: metrics,
/// and EndpointSlices derived from the stored Endpoints (kubectl 1.32
/// `describe service` reads slices).
pub fn is_computed(resource: &ResourceType) -> bool {
    resource.group == "metrics.k8s.io" || resource.group == "discovery.k8s.io"
}

/// Finds a resource by group, version and plural name.
pub fn find(group: &str, version: &str, plural: &str) -> Option<&'static ResourceType> {
    RESOURCES
        .iter()
        .find(|r| r.group == group && r.version == version && r.plural == plural)
}

/// Finds a resource by its kind and `apiVersion`, as written in an object.
pub fn find_kind(api_version: &str, kind: &str) -> Option<&'static ResourceType> {
    RESOURCES
        .iter()
        .find(|r| r.kind == kind && r.api_version() == api_version)
}

/// Groups in discovery order, each with its versions (one per group here).
pub fn groups() -> Vec<(&'static str, &'static str)> {
    let mut out: Vec<(&'static str, &'static str)> = Vec::new();
    for r in RESOURCES {
        if !out.iter().any(|(g, v)| *g == r.group && *v == r.version) {
            out.push((r.group, r.version));
        }
    }
    out
}

/// Read-only verbs, for resources that accept no writes.
pub fn is_read_only(resource: &ResourceType) -> bool {
    resource.verbs == READ_VERBS || resource.verbs == METRICS_VERBS
}
