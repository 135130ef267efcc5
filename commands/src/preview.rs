//! Impact previews: what a scale request would change, read live from the
//! cluster, so that the approver decides on facts instead of the request
//! text alone.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use crate::cluster::{Capacity, HpaStatus, NodeCapacity, PdbStatus, ScalableKind, WorkloadStatus};
use crate::quantity::{format_cpu, format_memory};

/// Approvers named in a preview; longer lists end with "and N more".
pub const APPROVERS_SHOWN: usize = 5;

/// Whether the pods a scale-up adds fit the nodes' free allocatable.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Fit {
    /// Every new pod fits on some node.
    Fits {
        free_cpu_millis: u64,
        free_memory_bytes: u64,
    },
    /// `pending` of the new pods would stay Pending for lack of `resource`.
    DoesNotFit { pending: u32, resource: String },
    /// A scale-down frees resources.
    Frees,
}

/// Impact preview: the facts an approver decides on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Impact {
    /// The change in a few words, such as `scale synapse 3 → 4`.
    pub action: String,
    pub service: String,
    pub kind: String,
    pub namespace: String,
    pub workload: String,
    /// Desired replicas read live before the preview.
    pub current: u32,
    pub ready: u32,
    pub target: u32,
    /// Generation of the workload at preview time; a different generation at
    /// execution time means someone changed its spec in between.
    pub generation: i64,
    pub hpa: Option<String>,
    pub cpu_delta_millis: i64,
    pub memory_delta_bytes: i64,
    pub fit: Fit,
    pub pdb: Vec<String>,
    pub lock: Option<String>,
    pub approvals_needed: u32,
    pub approvers: Vec<String>,
    pub risk: String,
    pub expires_at_ms: i64,
    pub steps: Vec<String>,
    pub notes: Vec<String>,
    /// Result of the server-side dry run of the change.
    pub dry_run: String,
}

/// Free CPU (millicores) and memory (bytes) of each ready node, reduced as
/// pods are placed on it.
struct FreeSlots(Vec<(u64, u64)>);

impl FreeSlots {
    fn new(nodes: &[NodeCapacity]) -> Self {
        Self(
            nodes
                .iter()
                .filter(|n| n.ready)
                .map(|n| (n.free_cpu_millis(), n.free_memory_bytes()))
                .collect(),
        )
    }

    /// Places one pod on the node with the most free CPU that still fits
    /// it, as the scheduler's resource fit check would. Returns the resource
    /// that ran out when no node fits.
    fn place(&mut self, cpu_millis: u64, memory_bytes: u64) -> Result<(), &'static str> {
        let cpu_short = self.0.iter().all(|(cpu, _)| *cpu < cpu_millis);
        let best = self
            .0
            .iter_mut()
            .filter(|(cpu, memory)| *cpu >= cpu_millis && *memory >= memory_bytes)
            .max_by_key(|(cpu, _)| *cpu);
        match best {
            Some(slot) => {
                slot.0 -= cpu_millis;
                slot.1 -= memory_bytes;
                Ok(())
            }
            None if cpu_short => Err("cpu"),
            None => Err("memory"),
        }
    }
}

/// Computes the resource fit of a change from `current` to `target` pods.
/// Pods already waiting for a node are placed first, because the scheduler
/// takes them before the new ones.
pub fn fit(capacity: &Capacity, workload: &WorkloadStatus, current: u32, target: u32) -> Fit {
    if target <= current {
        return Fit::Frees;
    }
    let mut slots = FreeSlots::new(&capacity.nodes);
    for (cpu, memory) in &capacity.unscheduled {
        // A waiting pod that fits nowhere takes nothing from the new ones.
        let _ = slots.place(*cpu, *memory);
    }
    let mut pending = 0;
    let mut short_of = "cpu";
    for _ in current..target {
        if let Err(resource) = slots.place(workload.pod_cpu_millis, workload.pod_memory_bytes) {
            pending += 1;
            short_of = resource;
        }
    }
    if pending > 0 {
        return Fit::DoesNotFit {
            pending,
            resource: short_of.to_string(),
        };
    }
    Fit::Fits {
        free_cpu_millis: slots.0.iter().map(|(cpu, _)| cpu).sum(),
        free_memory_bytes: slots.0.iter().map(|(_, memory)| memory).sum(),
    }
}

/// Describes what the HPA will do after a manual change inside its range.
pub fn hpa_note(service: &str, hpa: &HpaStatus, target: u32) -> String {
    let mut text = format!(
        "{} keeps replicas within [{}, {}] (currently wants {}). It may change the count again on its next evaluations",
        hpa.name, hpa.min, hpa.max, hpa.desired
    );
    if target < hpa.desired {
        let _ = write!(
            text,
            "; a scale-down below its desired count lasts only while its {}s scale-down stabilization window keeps it",
            hpa.scale_down_window_secs
        );
    } else {
        let _ = write!(
            text,
            ", after its {}s scale-down stabilization window",
            hpa.scale_down_window_secs
        );
    }
    let _ = write!(
        text,
        ". To hold {target} replicas, raise its floor with `hpa {service} min {target}`."
    );
    text
}

/// Describes each PDB's effect on a change to `target` replicas.
pub fn pdb_notes(pdbs: &[PdbStatus], current: u32, target: u32) -> Vec<String> {
    let mut notes = Vec::new();
    for pdb in pdbs {
        let rule = match (&pdb.min_available, &pdb.max_unavailable) {
            (Some(min), _) => format!("minAvailable {min}"),
            (None, Some(max)) => format!("maxUnavailable {max}"),
            (None, None) => "no bound".to_string(),
        };
        let min_available: Option<u32> = pdb.min_available.as_deref().and_then(|m| m.parse().ok());
        let mut note = format!(
            "{} ({rule}, disruptions allowed now: {})",
            pdb.name, pdb.disruptions_allowed
        );
        if target < current {
            note.push_str(": scaling down deletes pods directly, so the PDB does not block it");
            if let Some(min) = min_available
                && target <= min
            {
                let _ = write!(
                    note,
                    ", but with {target} replicas no voluntary disruption (node drain) is allowed until replicas exceed {min}"
                );
            }
        }
        notes.push(note);
    }
    notes
}

/// Steps of the horizontal scaling procedure, as shown in the preview.
pub fn scale_steps(
    kind: ScalableKind,
    workload: &str,
    target: u32,
    rollout_timeout_secs: u64,
) -> Vec<String> {
    vec![
        format!(
            "Take the operation lock and re-read {} {workload}; stop if it changed since this preview",
            kind.as_str()
        ),
        format!("Patch the scale subresource to {target} replicas"),
        format!(
            "Wait for the rollout (observedGeneration, updated, ready and available replicas), at most {rollout_timeout_secs}s"
        ),
        "Verify ready pods, their spread across nodes and /actuator/health of each new pod"
            .to_string(),
        "Record the result in the audit log and release the lock".to_string(),
    ]
}

/// Steps of the Cassandra procedure, as shown in the preview.
pub fn cassandra_steps(workload: &str, from: u32, to: u32, timeout_secs: u64) -> Vec<String> {
    let mut steps = vec![
        format!(
            "Take the operation lock and re-read statefulset {workload}; stop if it changed since this preview"
        ),
        format!("Run nodetool status in {workload}-0; stop unless all {from} nodes are UN"),
    ];
    if to > from {
        steps.push(format!(
            "Patch the scale subresource up by one and wait for the new pod (at most {timeout_secs}s)"
        ));
        steps.push(format!(
            "Wait until the new node shows UN in nodetool status (at most {timeout_secs}s); with more than one new node, repeat these two steps up to {to}"
        ));
        steps.push(format!("Run nodetool repair in {workload}-0"));
    } else {
        steps.push(format!(
            "Run nodetool decommission in {workload}-{} and wait until it has left the ring (at most {timeout_secs}s)",
            from - 1
        ));
        steps.push(format!(
            "Patch the scale subresource down by one and wait for the rollout; with more than one node to remove, repeat these two steps down to {to}"
        ));
    }
    steps.push(format!(
        "Verify that nodetool status lists {to} nodes, all UN"
    ));
    steps.push("Record the result in the audit log and release the lock".to_string());
    steps
}

/// Steps of the Redis Cluster procedure, as shown in the preview.
pub fn redis_cluster_steps(workload: &str, from: u32, to: u32, timeout_secs: u64) -> Vec<String> {
    vec![
        format!(
            "Take the operation lock and re-read statefulset {workload}; stop if it changed since this preview"
        ),
        format!(
            "Run redis-cli --cluster check; stop unless it lists all {from} pods, no empty master, and all slots covered"
        ),
        format!("Patch the scale subresource to {to} and wait for the new pods, at most {timeout_secs}s"),
        "Join each new shard with redis-cli --cluster add-node: its first pod as a master, the others as its replicas".to_string(),
        "Run redis-cli --cluster rebalance --cluster-use-empty-masters".to_string(),
        format!("Verify with --cluster check: {to} pods, no empty master, all slots covered"),
        "Record the result in the audit log and release the lock".to_string(),
    ]
}

/// Steps of the PostgreSQL procedure, as shown in the preview.
pub fn postgres_steps(cluster: &str, to: u32, timeout_secs: u64) -> Vec<String> {
    vec![
        format!(
            "Take the operation lock and re-read postgresql {cluster}; stop if it changed since this preview"
        ),
        format!(
            "Patch spec.numberOfInstances to {to} (merge patch; the CRD has no scale subresource)"
        ),
        format!(
            "Wait until the operator's StatefulSet has {to} ready instances and the cluster status is Running, at most {timeout_secs}s each"
        ),
        "Verify the ready pods and that exactly one has spilo-role=master".to_string(),
        "Record the result in the audit log and release the lock".to_string(),
    ]
}

/// Steps of the Kafka procedure, as shown in the preview.
pub fn kafka_steps(workload: &str, from: u32, to: u32, timeout_secs: u64) -> Vec<String> {
    let mut steps = vec![
        format!(
            "Take the operation lock and re-read statefulset {workload}; stop if it changed since this preview"
        ),
        format!(
            "In {workload}-0: stop unless brokers 0 to {} respond and no partition reassignment is running",
            from.saturating_sub(1)
        ),
    ];
    let reassign = format!(
        "Generate a plan that places every topic on brokers 0 to {}, save the current assignment for a rollback, execute the plan and wait until --verify reports every partition complete",
        to.saturating_sub(1)
    );
    if to > from {
        steps.push(format!(
            "For each new broker up to {to}: patch the scale subresource up by one, wait for the pod, then wait until the broker responds (at most {timeout_secs}s each)"
        ));
        steps.push(reassign);
    } else {
        steps.push(reassign);
        steps.push(format!(
            "Check that brokers {to} to {} hold no replica, then patch the scale subresource down one broker at a time (at most {timeout_secs}s each)",
            from - 1
        ));
    }
    steps.push(format!(
        "Verify that brokers 0 to {} respond and hold the replicas",
        to.saturating_sub(1)
    ));
    steps.push("Record the result in the audit log and release the lock".to_string());
    steps
}

/// Steps of the "Update HPA Limits" procedure, as shown in the preview.
pub fn hpa_steps(
    hpa: &str,
    workload: &str,
    min: u32,
    max: u32,
    expected: Option<u32>,
    timeout_secs: u64,
) -> Vec<String> {
    let mut steps = vec![
        format!(
            "Take the operation lock and re-read {hpa}; stop if its bounds changed since this preview"
        ),
        format!("Patch {hpa} to minReplicas {min}, maxReplicas {max} and read the bounds back"),
    ];
    if let Some(expected) = expected {
        steps.push(format!(
            "Wait for the HPA to move {workload} to {expected} replicas and for the rollout, at most {timeout_secs}s"
        ));
    }
    steps.push("Record the result in the audit log and release the lock".to_string());
    steps
}

/// Formats the signed resource change of `delta` pods.
pub fn resource_delta(workload: &WorkloadStatus, current: u32, target: u32) -> (i64, i64) {
    let delta = i64::from(target) - i64::from(current);
    (
        delta * workload.pod_cpu_millis as i64,
        delta * workload.pod_memory_bytes as i64,
    )
}

fn signed(value: i64, format: fn(u64) -> String) -> String {
    let sign = if value < 0 { "-" } else { "+" };
    format!("{sign}{}", format(value.unsigned_abs()))
}

impl Impact {
    /// Formats one line per field as plain text, for the console and for
    /// platforms without rich layout.
    pub fn fields(&self) -> BTreeMap<&'static str, String> {
        let mut fields = BTreeMap::new();
        fields.insert(
            "1 workload",
            format!("{} {}/{}", self.kind, self.namespace, self.workload),
        );
        fields.insert(
            "2 replicas",
            format!(
                "{} → {} ({} ready now)",
                self.current, self.target, self.ready
            ),
        );
        fields.insert(
            "3 resources",
            format!(
                "{}, {} in requests",
                signed(self.cpu_delta_millis, format_cpu),
                signed(self.memory_delta_bytes, format_memory)
            ),
        );
        fields.insert("4 fit", self.fit_text());
        fields.insert(
            "5 hpa",
            self.hpa.clone().unwrap_or_else(|| "no HPA".to_string()),
        );
        let pdb = if self.pdb.is_empty() {
            "no PDB selects these pods".to_string()
        } else {
            self.pdb.join("; ")
        };
        fields.insert("6 pdb", pdb);
        fields.insert(
            "7 lock",
            self.lock
                .clone()
                .unwrap_or_else(|| format!("free ({})", self.namespace)),
        );
        fields.insert(
            "8 approvals",
            format!(
                "{} needed ({} risk) from {}",
                self.approvals_needed,
                self.risk,
                self.approver_list()
            ),
        );
        fields.insert("9 dry run", self.dry_run.clone());
        fields
    }

    /// Lists the approvers, at most [`APPROVERS_SHOWN`] of them by name.
    pub fn approver_list(&self) -> String {
        let shown: Vec<&str> = self
            .approvers
            .iter()
            .take(APPROVERS_SHOWN)
            .map(String::as_str)
            .collect();
        let rest = self.approvers.len().saturating_sub(APPROVERS_SHOWN);
        if rest == 0 {
            shown.join(", ")
        } else {
            format!("{} and {rest} more", shown.join(", "))
        }
    }

    pub fn fit_text(&self) -> String {
        if self.current == self.target {
            return "no pods added or removed".to_string();
        }
        match &self.fit {
            Fit::Fits {
                free_cpu_millis,
                free_memory_bytes,
            } => format!(
                "new pods fit ({} and {} left free on ready nodes)",
                format_cpu(*free_cpu_millis),
                format_memory(*free_memory_bytes)
            ),
            Fit::DoesNotFit { pending, resource } => format!(
                "does NOT fit: {pending} new pod(s) would stay Pending (insufficient {resource})"
            ),
            Fit::Frees => "frees resources".to_string(),
        }
    }
}
