//! The kube-rs calls that previews and procedures share: reading workloads,
//! HPAs, PDBs, nodes and pods, changing replicas through the `scale`
//! subresource, and reading a pod's health endpoint through the pod proxy.

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::core::v1::{Event, Node, Pod, PodSpec};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::api::{
    Api, ApiResource, AttachParams, DynamicObject, GroupVersionKind, ListParams, Patch, PatchParams,
};
use serde_json::json;
use thiserror::Error;
use tokio::io::AsyncReadExt;

use crate::quantity;

/// Field manager recorded by the API server for scalebot's writes.
pub const FIELD_MANAGER: &str = "scalebot";

/// Port and path of the Spring Boot health endpoint in every BUTTERFLY service.
pub const HEALTH_PORT: u16 = 8080;
pub const HEALTH_PATH: &str = "actuator/health";

/// Maximum time for one API call; a slow API server fails the step instead
/// of hanging the procedure.
pub const API_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, Error)]
pub enum ClusterError {
    #[error("{kind} {namespace}/{name} not found")]
    NotFound {
        kind: &'static str,
        namespace: String,
        name: String,
    },
    #[error(
        "the API server rejected {action} on {namespace}/{name}: {message} (HTTP {code}, {reason})"
    )]
    Rejected {
        action: &'static str,
        namespace: String,
        name: String,
        code: u16,
        reason: String,
        message: String,
    },
    #[error("{action} on {namespace}/{name} failed: {source}")]
    Request {
        action: &'static str,
        namespace: String,
        name: String,
        #[source]
        source: Box<kube::Error>,
    },
    #[error(
        "{action} on {namespace}/{name} timed out after {}s: the API server is unreachable, overloaded or throttling (kube-rs retries 429, 503 and 504 answers within that time)",
        API_TIMEOUT.as_secs()
    )]
    Timeout {
        action: &'static str,
        namespace: String,
        name: String,
    },
    #[error("`{command}` in {namespace}/{pod} did not finish within {}s", limit.as_secs())]
    ExecTimeout {
        namespace: String,
        pod: String,
        command: String,
        limit: Duration,
    },
}

/// Workload kinds whose replicas scalebot changes through `scale`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScalableKind {
    Deployment,
    StatefulSet,
}

impl ScalableKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ScalableKind::Deployment => "deployment",
            ScalableKind::StatefulSet => "statefulset",
        }
    }
}

/// Replica counts of a Deployment or StatefulSet as the API server reports them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkloadStatus {
    pub generation: i64,
    pub observed_generation: i64,
    /// Desired replicas (`spec.replicas`).
    pub desired: u32,
    pub current: u32,
    pub updated: u32,
    pub ready: u32,
    pub available: u32,
    /// `metadata.resourceVersion`, to detect a change since the preview.
    pub resource_version: String,
    /// Label selector of the workload's pods, as `key=value,...`.
    pub selector: String,
    /// CPU (millicores) and memory (bytes) requested by one pod.
    pub pod_cpu_millis: u64,
    pub pod_memory_bytes: u64,
}

impl WorkloadStatus {
    /// Tells whether the rollout is complete: the controller has seen the
    /// latest spec, and every desired replica is updated, ready and
    /// available. `kubectl rollout status` applies the same test.
    pub fn rollout_complete(&self) -> bool {
        self.observed_generation >= self.generation
            && self.updated == self.desired
            && self.current == self.desired
            && self.ready == self.desired
            && self.available == self.desired
    }
}

/// HPA bounds and the scale-down stabilization window that delays its
/// reaction to a manual change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HpaStatus {
    pub name: String,
    pub min: u32,
    pub max: u32,
    pub current: u32,
    pub desired: u32,
    pub scale_down_window_secs: u32,
}

/// Allocatable capacity of one node and what its pods already request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeCapacity {
    pub name: String,
    pub ready: bool,
    pub allocatable_cpu_millis: u64,
    pub allocatable_memory_bytes: u64,
    pub requested_cpu_millis: u64,
    pub requested_memory_bytes: u64,
}

impl NodeCapacity {
    pub fn free_cpu_millis(&self) -> u64 {
        self.allocatable_cpu_millis
            .saturating_sub(self.requested_cpu_millis)
    }

    pub fn free_memory_bytes(&self) -> u64 {
        self.allocatable_memory_bytes
            .saturating_sub(self.requested_memory_bytes)
    }
}

/// Node capacity and the pods that wait for a node.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Capacity {
    pub nodes: Vec<NodeCapacity>,
    /// CPU (millicores) and memory (bytes) requested by each pod that has no
    /// node yet.
    pub unscheduled: Vec<(u64, u64)>,
}

/// A PodDisruptionBudget that selects a workload's pods.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PdbStatus {
    pub name: String,
    pub min_available: Option<String>,
    pub max_unavailable: Option<String>,
    pub disruptions_allowed: i32,
    pub current_healthy: i32,
    pub desired_healthy: i32,
}

/// One pod of a workload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodSummary {
    pub name: String,
    pub node: Option<String>,
    pub phase: String,
    pub ready: bool,
    pub created: Option<String>,
    /// Pod IP, once one is assigned.
    pub ip: Option<String>,
}

/// State of a Zalando `postgresql` resource.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PostgresqlStatus {
    pub instances: u32,
    pub generation: i64,
    /// `status.PostgresClusterStatus`: `Creating`, `Updating`, `Running`, or
    /// empty before the operator has seen the resource.
    pub phase: String,
}

/// Returns the `postgresql` custom resource of the Zalando postgres operator.
fn postgresql_resource() -> ApiResource {
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("acid.zalan.do", "v1", "postgresql"),
        "postgresqls",
    )
}

/// Output of a command run in a container.
#[derive(Debug, Clone, Default)]
pub struct ExecOutput {
    pub stdout: String,
    pub stderr: String,
    /// The failure message of a command that did not succeed, with its exit
    /// code, as the kubelet reports it; `None` on success.
    pub failure: Option<String>,
}

/// kube-rs client scoped to what scalebot needs.
#[derive(Clone)]
pub struct Cluster {
    client: kube::Client,
}

async fn with_timeout<T>(
    action: &'static str,
    namespace: &str,
    name: &str,
    call: impl Future<Output = Result<T, kube::Error>>,
) -> Result<T, ClusterError> {
    match tokio::time::timeout(API_TIMEOUT, call).await {
        Err(_) => Err(ClusterError::Timeout {
            action,
            namespace: namespace.to_string(),
            name: name.to_string(),
        }),
        Ok(result) => result.map_err(|error| cluster_error(action, namespace, name, error)),
    }
}

async fn read_all(reader: Option<impl tokio::io::AsyncRead + Unpin>) -> std::io::Result<String> {
    let mut text = String::new();
    if let Some(mut reader) = reader {
        let mut bytes = Vec::new();
        reader.read_to_end(&mut bytes).await?;
        text = String::from_utf8_lossy(&bytes).into_owned();
    }
    Ok(text)
}

fn cluster_error(
    action: &'static str,
    namespace: &str,
    name: &str,
    error: kube::Error,
) -> ClusterError {
    match error {
        kube::Error::Api(status) => ClusterError::Rejected {
            action,
            namespace: namespace.to_string(),
            name: name.to_string(),
            code: status.code,
            reason: status.reason.clone(),
            message: status.message.clone(),
        },
        source => ClusterError::Request {
            action,
            namespace: namespace.to_string(),
            name: name.to_string(),
            source: Box::new(source),
        },
    }
}

/// Patch parameters of scalebot's writes: its field manager, and a
/// server-side dry run when `dry_run` is set.
fn write_params(dry_run: bool) -> PatchParams {
    PatchParams {
        field_manager: Some(FIELD_MANAGER.to_string()),
        dry_run,
        ..PatchParams::default()
    }
}

fn is_not_found(error: &ClusterError) -> bool {
    matches!(error, ClusterError::Rejected { code: 404, .. })
}

fn pod_requests(spec: Option<&PodSpec>) -> (u64, u64) {
    let mut cpu = 0;
    let mut memory = 0;
    for container in spec.map(|s| s.containers.as_slice()).unwrap_or_default() {
        let requests = container
            .resources
            .as_ref()
            .and_then(|r| r.requests.as_ref());
        if let Some(requests) = requests {
            if let Some(q) = requests.get("cpu") {
                cpu += quantity::cpu_millis(&q.0).unwrap_or(0);
            }
            if let Some(q) = requests.get("memory") {
                memory += quantity::memory_bytes(&q.0).unwrap_or(0);
            }
        }
    }
    (cpu, memory)
}

fn selector_string(labels: Option<&BTreeMap<String, String>>) -> String {
    labels
        .map(|m| {
            m.iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join(",")
        })
        .unwrap_or_default()
}

fn to_u32(value: Option<i32>) -> u32 {
    value.unwrap_or(0).max(0) as u32
}

fn int_or_string(value: &IntOrString) -> String {
    match value {
        IntOrString::Int(n) => n.to_string(),
        IntOrString::String(s) => s.clone(),
    }
}

impl Cluster {
    pub fn new(client: kube::Client) -> Self {
        Self { client }
    }

    pub fn client(&self) -> &kube::Client {
        &self.client
    }

    /// Reads the replica counts and per-pod requests of a workload.
    pub async fn workload(
        &self,
        kind: ScalableKind,
        namespace: &str,
        name: &str,
    ) -> Result<WorkloadStatus, ClusterError> {
        let result = match kind {
            ScalableKind::Deployment => {
                let api: Api<Deployment> = Api::namespaced(self.client.clone(), namespace);
                let d = with_timeout("get deployment", namespace, name, api.get(name)).await?;
                let spec = d.spec.as_ref();
                let status = d.status.clone().unwrap_or_default();
                let (cpu, memory) = pod_requests(spec.and_then(|s| s.template.spec.as_ref()));
                WorkloadStatus {
                    generation: d.metadata.generation.unwrap_or(0),
                    observed_generation: status.observed_generation.unwrap_or(0),
                    desired: to_u32(spec.and_then(|s| s.replicas)),
                    current: to_u32(status.replicas),
                    updated: to_u32(status.updated_replicas),
                    ready: to_u32(status.ready_replicas),
                    available: to_u32(status.available_replicas),
                    resource_version: d.metadata.resource_version.clone().unwrap_or_default(),
                    selector: selector_string(spec.and_then(|s| s.selector.match_labels.as_ref())),
                    pod_cpu_millis: cpu,
                    pod_memory_bytes: memory,
                }
            }
            ScalableKind::StatefulSet => {
                let api: Api<StatefulSet> = Api::namespaced(self.client.clone(), namespace);
                let s = with_timeout("get statefulset", namespace, name, api.get(name)).await?;
                let spec = s.spec.as_ref();
                let status = s.status.clone().unwrap_or_default();
                let (cpu, memory) = pod_requests(spec.and_then(|s| s.template.spec.as_ref()));
                WorkloadStatus {
                    generation: s.metadata.generation.unwrap_or(0),
                    observed_generation: status.observed_generation.unwrap_or(0),
                    desired: to_u32(spec.and_then(|s| s.replicas)),
                    current: status.replicas.max(0) as u32,
                    updated: to_u32(status.updated_replicas),
                    ready: to_u32(status.ready_replicas),
                    available: to_u32(status.available_replicas),
                    resource_version: s.metadata.resource_version.clone().unwrap_or_default(),
                    selector: selector_string(spec.and_then(|s| s.selector.match_labels.as_ref())),
                    pod_cpu_millis: cpu,
                    pod_memory_bytes: memory,
                }
            }
        };
        Ok(result)
    }

    /// Reads an HPA; `None` when it does not exist.
    pub async fn hpa(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<Option<HpaStatus>, ClusterError> {
        let api: Api<HorizontalPodAutoscaler> = Api::namespaced(self.client.clone(), namespace);
        let hpa = match with_timeout("get hpa", namespace, name, api.get(name)).await {
            Ok(hpa) => hpa,
            Err(e) if is_not_found(&e) => return Ok(None),
            Err(e) => return Err(e),
        };
        let spec = hpa.spec.unwrap_or_default();
        let status = hpa.status.unwrap_or_default();
        // The API server defaults the scale-down stabilization window to
        // 300 seconds when the HPA sets no behavior.
        let window = spec
            .behavior
            .as_ref()
            .and_then(|b| b.scale_down.as_ref())
            .and_then(|r| r.stabilization_window_seconds)
            .unwrap_or(300);
        Ok(Some(HpaStatus {
            name: name.to_string(),
            min: to_u32(spec.min_replicas.or(Some(1))),
            max: spec.max_replicas.max(0) as u32,
            current: to_u32(status.current_replicas),
            desired: status.desired_replicas.max(0) as u32,
            scale_down_window_secs: window.max(0) as u32,
        }))
    }

    /// Lists nodes with their allocatable resources and the requests of
    /// the pods bound to them that have not terminated, plus the requests
    /// of pods still waiting for a node, which the scheduler places first.
    pub async fn node_capacity(&self) -> Result<Capacity, ClusterError> {
        let nodes: Api<Node> = Api::all(self.client.clone());
        let pods: Api<Pod> = Api::all(self.client.clone());
        let node_list =
            with_timeout("list nodes", "", "", nodes.list(&ListParams::default())).await?;
        let pod_list = with_timeout("list pods", "", "", pods.list(&ListParams::default())).await?;

        let mut requested: BTreeMap<String, (u64, u64)> = BTreeMap::new();
        let mut unscheduled = Vec::new();
        for pod in &pod_list.items {
            let phase = pod
                .status
                .as_ref()
                .and_then(|s| s.phase.as_deref())
                .unwrap_or("");
            if phase == "Succeeded" || phase == "Failed" {
                continue;
            }
            let (cpu, memory) = pod_requests(pod.spec.as_ref());
            let Some(node) = pod.spec.as_ref().and_then(|s| s.node_name.clone()) else {
                unscheduled.push((cpu, memory));
                continue;
            };
            let entry = requested.entry(node).or_default();
            entry.0 += cpu;
            entry.1 += memory;
        }

        let mut out = Vec::new();
        for node in node_list.items {
            let name = node.metadata.name.clone().unwrap_or_default();
            let status = node.status.unwrap_or_default();
            let allocatable = status.allocatable.unwrap_or_default();
            let ready = status
                .conditions
                .unwrap_or_default()
                .iter()
                .any(|c| c.type_ == "Ready" && c.status == "True");
            let (cpu, memory) = requested.get(&name).copied().unwrap_or_default();
            out.push(NodeCapacity {
                ready,
                allocatable_cpu_millis: allocatable
                    .get("cpu")
                    .and_then(|q| quantity::cpu_millis(&q.0).ok())
                    .unwrap_or(0),
                allocatable_memory_bytes: allocatable
                    .get("memory")
                    .and_then(|q| quantity::memory_bytes(&q.0).ok())
                    .unwrap_or(0),
                requested_cpu_millis: cpu,
                requested_memory_bytes: memory,
                name,
            });
        }
        Ok(Capacity {
            nodes: out,
            unscheduled,
        })
    }

    /// Lists the PDBs in a namespace whose selector matches `pod_labels`.
    pub async fn pdbs_for(
        &self,
        namespace: &str,
        pod_labels: &BTreeMap<String, String>,
    ) -> Result<Vec<PdbStatus>, ClusterError> {
        let api: Api<PodDisruptionBudget> = Api::namespaced(self.client.clone(), namespace);
        let list =
            with_timeout("list pdb", namespace, "", api.list(&ListParams::default())).await?;
        let mut out = Vec::new();
        for pdb in list.items {
            let spec = pdb.spec.unwrap_or_default();
            let selects = spec
                .selector
                .as_ref()
                .and_then(|s| s.match_labels.as_ref())
                .is_some_and(|m| {
                    !m.is_empty() && m.iter().all(|(k, v)| pod_labels.get(k) == Some(v))
                });
            if !selects {
                continue;
            }
            let status = pdb.status.unwrap_or_default();
            out.push(PdbStatus {
                name: pdb.metadata.name.unwrap_or_default(),
                min_available: spec.min_available.as_ref().map(int_or_string),
                max_unavailable: spec.max_unavailable.as_ref().map(int_or_string),
                disruptions_allowed: status.disruptions_allowed,
                current_healthy: status.current_healthy,
                desired_healthy: status.desired_healthy,
            });
        }
        Ok(out)
    }

    /// Sets replicas through the `scale` subresource. With `dry_run` the API
    /// server validates and admits the change without storing it.
    pub async fn set_replicas(
        &self,
        kind: ScalableKind,
        namespace: &str,
        name: &str,
        replicas: u32,
        dry_run: bool,
    ) -> Result<(), ClusterError> {
        let params = write_params(dry_run);
        let patch = Patch::Merge(json!({ "spec": { "replicas": replicas } }));
        let action = if dry_run { "dry-run scale" } else { "scale" };
        match kind {
            ScalableKind::Deployment => {
                let api: Api<Deployment> = Api::namespaced(self.client.clone(), namespace);
                with_timeout(
                    action,
                    namespace,
                    name,
                    api.patch_scale(name, &params, &patch),
                )
                .await?;
            }
            ScalableKind::StatefulSet => {
                let api: Api<StatefulSet> = Api::namespaced(self.client.clone(), namespace);
                with_timeout(
                    action,
                    namespace,
                    name,
                    api.patch_scale(name, &params, &patch),
                )
                .await?;
            }
        }
        Ok(())
    }

    /// Reads `spec.numberOfInstances`, the generation and
    /// `status.PostgresClusterStatus` of a Zalando `postgresql` resource.
    pub async fn postgresql(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<PostgresqlStatus, ClusterError> {
        let api: Api<DynamicObject> =
            Api::namespaced_with(self.client.clone(), namespace, &postgresql_resource());
        let object = with_timeout("get postgresql", namespace, name, api.get(name)).await?;
        let instances = object.data["spec"]["numberOfInstances"]
            .as_u64()
            .and_then(|n| u32::try_from(n).ok())
            .unwrap_or(0);
        Ok(PostgresqlStatus {
            instances,
            generation: object.metadata.generation.unwrap_or(0),
            phase: object.data["status"]["PostgresClusterStatus"]
                .as_str()
                .unwrap_or("")
                .to_string(),
        })
    }

    /// Sets `spec.numberOfInstances` with a merge patch, as the runbook's
    /// `kubectl patch postgresql --type=merge` does: the CRD has no scale
    /// subresource. With `dry_run` nothing is stored.
    pub async fn set_postgresql_instances(
        &self,
        namespace: &str,
        name: &str,
        instances: u32,
        dry_run: bool,
    ) -> Result<(), ClusterError> {
        let api: Api<DynamicObject> =
            Api::namespaced_with(self.client.clone(), namespace, &postgresql_resource());
        let patch = Patch::Merge(json!({ "spec": { "numberOfInstances": instances } }));
        let action = if dry_run {
            "dry-run patch postgresql"
        } else {
            "patch postgresql"
        };
        with_timeout(
            action,
            namespace,
            name,
            api.patch(name, &write_params(dry_run), &patch),
        )
        .await?;
        Ok(())
    }

    /// Sets an HPA's minReplicas and maxReplicas with a merge patch, as the
    /// runbook's `kubectl patch hpa` does. With `dry_run` nothing is stored.
    pub async fn set_hpa_bounds(
        &self,
        namespace: &str,
        name: &str,
        min: u32,
        max: u32,
        dry_run: bool,
    ) -> Result<(), ClusterError> {
        let params = write_params(dry_run);
        let patch = Patch::Merge(json!({ "spec": { "minReplicas": min, "maxReplicas": max } }));
        let action = if dry_run {
            "dry-run patch hpa"
        } else {
            "patch hpa"
        };
        let api: Api<HorizontalPodAutoscaler> = Api::namespaced(self.client.clone(), namespace);
        with_timeout(action, namespace, name, api.patch(name, &params, &patch)).await?;
        Ok(())
    }

    /// Lists the pods matching a label selector such as `app=synapse`.
    pub async fn pods(
        &self,
        namespace: &str,
        selector: &str,
    ) -> Result<Vec<PodSummary>, ClusterError> {
        let api: Api<Pod> = Api::namespaced(self.client.clone(), namespace);
        let params = ListParams::default().labels(selector);
        let list = with_timeout("list pods", namespace, selector, api.list(&params)).await?;
        let pods = list
            .items
            .into_iter()
            .map(|pod| {
                let status = pod.status.unwrap_or_default();
                let ready = status
                    .conditions
                    .unwrap_or_default()
                    .iter()
                    .any(|c| c.type_ == "Ready" && c.status == "True");
                PodSummary {
                    name: pod.metadata.name.unwrap_or_default(),
                    node: pod.spec.and_then(|s| s.node_name),
                    phase: status.phase.unwrap_or_default(),
                    ready,
                    created: pod.metadata.creation_timestamp.map(|t| t.0.to_string()),
                    ip: status.pod_ip,
                }
            })
            .collect();
        Ok(pods)
    }

    /// Reads the newest warning event of a pod, such as a `FailedScheduling`
    /// message, to explain why it is not running.
    pub async fn last_warning(
        &self,
        namespace: &str,
        pod: &str,
    ) -> Result<Option<String>, ClusterError> {
        let api: Api<Event> = Api::namespaced(self.client.clone(), namespace);
        let params = ListParams::default().fields(&format!("involvedObject.name={pod}"));
        let list = with_timeout("list events", namespace, pod, api.list(&params)).await?;
        let warning = list
            .items
            .into_iter()
            .filter(|e| e.type_.as_deref() == Some("Warning"))
            .max_by_key(|e| e.last_timestamp.as_ref().map(|t| t.0))
            .map(|e| {
                format!(
                    "{}: {}",
                    e.reason.unwrap_or_default(),
                    e.message.unwrap_or_default()
                )
            });
        Ok(warning)
    }

    /// Runs `command` in the first container of `pod`, as `kubectl exec`
    /// does, and collects its output. `limit` bounds the whole run, because
    /// commands such as `nodetool repair` take minutes on a real cluster.
    pub async fn exec(
        &self,
        namespace: &str,
        pod: &str,
        command: &[&str],
        limit: Duration,
    ) -> Result<ExecOutput, ClusterError> {
        let api: Api<Pod> = Api::namespaced(self.client.clone(), namespace);
        let params = AttachParams::default()
            .stdin(false)
            .stdout(true)
            .stderr(true);
        let run = async {
            let mut attached = api.exec(pod, command.to_vec(), &params).await?;
            let status = attached.take_status();
            // Both streams are read at once: a full stderr buffer would
            // otherwise stall the command while stdout is read.
            let (stdout, stderr) =
                tokio::join!(read_all(attached.stdout()), read_all(attached.stderr()));
            let stdout = stdout.map_err(kube::Error::ReadEvents)?;
            let stderr = stderr.map_err(kube::Error::ReadEvents)?;
            let status = match status {
                Some(status) => status.await,
                None => None,
            };
            let _ = attached.join().await;
            let failure = status
                .filter(|status| status.status.as_deref() != Some("Success"))
                .map(|status| {
                    status
                        .message
                        .unwrap_or_else(|| "command failed".to_string())
                });
            Ok(ExecOutput {
                stdout,
                stderr,
                failure,
            })
        };
        match tokio::time::timeout(limit, run).await {
            Ok(result) => result.map_err(|error| cluster_error("exec", namespace, pod, error)),
            Err(_) => Err(ClusterError::ExecTimeout {
                namespace: namespace.to_string(),
                pod: pod.to_string(),
                command: command.join(" "),
                limit,
            }),
        }
    }

    /// Reads `/actuator/health` of a pod through the API server's pod proxy
    /// and returns the top-level `status` (`UP`, `DOWN`, ...). Only the
    /// top-level field decides: a DOWN service may still report UP
    /// components.
    pub async fn pod_health(&self, namespace: &str, pod: &str) -> Result<String, ClusterError> {
        let uri =
            format!("/api/v1/namespaces/{namespace}/pods/{pod}:{HEALTH_PORT}/proxy/{HEALTH_PATH}");
        let request = http::Request::get(uri)
            .body(Vec::new())
            .expect("a GET request with a path-only URI is always valid");
        let body = match with_timeout(
            "read health",
            namespace,
            pod,
            self.client.request_text(request),
        )
        .await
        {
            Ok(body) => body,
            // Spring Boot returns 503 with a JSON body when the service is
            // DOWN, which kube-rs reports as an API error carrying the body.
            Err(ClusterError::Rejected {
                code: 503, message, ..
            }) => message,
            Err(e) => return Err(e),
        };
        let status = serde_json::from_str::<serde_json::Value>(&body)
            .ok()
            .and_then(|v| v.get("status").and_then(|s| s.as_str()).map(str::to_string))
            .unwrap_or_else(|| {
                format!(
                    "unreadable response: {}",
                    body.chars().take(120).collect::<String>()
                )
            });
        Ok(status)
    }
}
