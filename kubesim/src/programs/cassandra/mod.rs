//! The Cassandra ring of a namespace and `nodetool`.
//!
//! Ring rules, evaluated on every command against the pods in the store:
//! - A Ready pod joins: it shows `UJ` until it has been Ready for
//!   `timing.cassandra_join`, then `UN` and becomes a member.
//! - A member stays in the ring while down: a member whose pod is not Ready
//!   or was deleted shows `DN` with its last address, as after a scale-down
//!   without `nodetool decommission`. `nodetool removenode` drops it.
//! - `nodetool decommission` makes the node `UL` for `timing.cassandra_join`
//!   (standing in for streaming its data away), then it leaves the ring.
//!   The same pod does not rejoin; a re-created pod (new UID) does.
//!
//! NOTE: a pod that is down before any nodetool command saw it as `UN` is
//! not listed at all, because membership is only learned by observation.

mod nodetool;
mod repair;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};

use super::Context;
use super::ids::{stable_hash, stable_uuid};
use super::pods::{self, Software};

pub(crate) use nodetool::nodetool;

pub(crate) const CLUSTER_NAME: &str = "butterfly-cassandra";
pub(crate) const DATACENTER: &str = "dc1";
const RACK: &str = "rack1";
/// Cassandra 4.x default `num_tokens`.
const NUM_TOKENS: u32 = 16;
pub(crate) const RELEASE_VERSION: &str = "4.1.5";
/// Replication factor of the application keyspace.
const REPLICATION_FACTOR: usize = 3;
/// The application keyspace, replicated `REPLICATION_FACTOR` times in `DATACENTER`.
pub(crate) const APP_KEYSPACE: &str = "butterfly";
/// Keyspaces `nodetool repair` covers without arguments, with their
/// replication factors.
const KEYSPACES: &[(&str, usize)] = &[
    (APP_KEYSPACE, REPLICATION_FACTOR),
    ("system_auth", 3),
    ("system_distributed", 3),
    ("system_traces", 2),
];

/// A node that completed bootstrap.
#[derive(Debug, Clone)]
struct Member {
    /// Last known address, kept while the pod is gone.
    ip: String,
}

#[derive(Debug, Clone)]
struct Decommission {
    pod_uid: String,
    done_at: DateTime<Utc>,
}

/// Ring state of one namespace kept between commands.
#[derive(Debug, Default)]
pub(crate) struct Ring {
    members: BTreeMap<String, Member>,
    decommissions: BTreeMap<String, Decommission>,
    /// When the node of a pod left the ring, by pod UID.
    left: BTreeMap<String, DateTime<Utc>>,
    /// Numbering of `nodetool repair` commands, per coordinator pod.
    repair_commands: BTreeMap<String, u32>,
}

/// The state letter pair `nodetool status` prints, without the up/down half.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum NodeState {
    Normal,
    Joining,
    Leaving,
}

impl NodeState {
    fn letter(self) -> char {
        match self {
            NodeState::Normal => 'N',
            NodeState::Joining => 'J',
            NodeState::Leaving => 'L',
        }
    }
}

/// One row of `nodetool status`.
#[derive(Debug, Clone)]
pub(crate) struct Node {
    pub name: String,
    pub ip: String,
    pub up: bool,
    pub state: NodeState,
    pub host_id: String,
    /// Share of the token ring in percent; `None` while joining.
    pub ownership: Option<f64>,
}

impl Node {
    pub fn status_code(&self) -> String {
        format!("{}{}", if self.up { 'U' } else { 'D' }, self.state.letter())
    }
}

fn host_id(namespace: &str, pod: &str) -> String {
    stable_uuid(&[namespace, "cassandra-host", pod])
}

fn ordinal_of(name: &str) -> u32 {
    name.rsplit_once('-')
        .and_then(|(_, n)| n.parse().ok())
        .unwrap_or(u32::MAX)
}

impl Ring {
    /// Applies the passage of time to the ring and returns its nodes,
    /// ordered by pod ordinal.
    pub(crate) fn refresh(&mut self, ctx: &Context) -> Vec<Node> {
        let now = ctx.now;
        let join = TimeDelta::from_std(ctx.cluster.timing.cassandra_join).unwrap_or(TimeDelta::MAX);
        let finished: Vec<String> = self
            .decommissions
            .iter()
            .filter(|(_, d)| d.done_at <= now)
            .map(|(name, _)| name.clone())
            .collect();
        for name in finished {
            if let Some(decommission) = self.decommissions.remove(&name) {
                self.members.remove(&name);
                self.left.insert(decommission.pod_uid, decommission.done_at);
            }
        }

        let mut nodes = Vec::new();
        let mut up = HashSet::new();
        for pod in pods::of_software(ctx.cluster, ctx.namespace, Software::Cassandra) {
            let Some(ip) = pod.ip.clone() else { continue };
            if !pod.ready || self.left.contains_key(&pod.uid) {
                continue;
            }
            up.insert(pod.name.clone());
            let joined = pod.ready_since.is_none_or(|since| since + join <= now);
            if self.members.contains_key(&pod.name) || joined {
                self.members.insert(pod.name.clone(), Member { ip });
                continue;
            }
            nodes.push(Node {
                host_id: host_id(ctx.namespace, &pod.name),
                name: pod.name,
                ip,
                up: true,
                state: NodeState::Joining,
                ownership: None,
            });
        }
        for (name, member) in &self.members {
            let state = if self.decommissions.contains_key(name) {
                NodeState::Leaving
            } else {
                NodeState::Normal
            };
            nodes.push(Node {
                name: name.clone(),
                ip: member.ip.clone(),
                up: up.contains(name),
                state,
                host_id: host_id(ctx.namespace, name),
                ownership: None,
            });
        }
        assign_ownership(ctx.namespace, &mut nodes);
        nodes.sort_by_key(|n| ordinal_of(&n.name));
        nodes
    }

    /// Returns whether the pod `uid` ran a node that has left the ring.
    fn has_left(&self, uid: &str) -> bool {
        self.left.contains_key(uid)
    }

    /// Start and end of the decommission of pod `name` (UID `uid`), running
    /// or finished; `streaming` is how long one takes.
    pub(crate) fn decommission_window(
        &self,
        name: &str,
        uid: &str,
        streaming: Duration,
    ) -> Option<(DateTime<Utc>, DateTime<Utc>)> {
        let done = match self.decommissions.get(name) {
            Some(running) if running.pod_uid == uid => running.done_at,
            _ => *self.left.get(uid)?,
        };
        let streaming = TimeDelta::from_std(streaming).unwrap_or(TimeDelta::MAX);
        Some((done - streaming, done))
    }
}

/// Splits the token ring among the nodes that own ranges (all but joining
/// ones), with a small stable per-node skew as vnodes give.
fn assign_ownership(namespace: &str, nodes: &mut [Node]) {
    let weight =
        |node: &Node| 1000.0 + (stable_hash(&[namespace, &node.name, "tokens"]) % 160) as f64;
    let total: f64 = nodes
        .iter()
        .filter(|n| n.state != NodeState::Joining)
        .map(weight)
        .sum();
    for node in nodes.iter_mut() {
        if node.state != NodeState::Joining {
            node.ownership = Some(100.0 * weight(node) / total);
        }
    }
}

/// Formats a byte count as Cassandra does: binary units, at most two
/// decimals, trailing zeros dropped (`80.9 GiB`, `303.53 KiB`).
fn format_size(bytes: f64) -> String {
    const UNITS: &[(&str, f64)] = &[
        ("TiB", 1024.0 * 1024.0 * 1024.0 * 1024.0),
        ("GiB", 1024.0 * 1024.0 * 1024.0),
        ("MiB", 1024.0 * 1024.0),
        ("KiB", 1024.0),
    ];
    let (unit, scale) = UNITS
        .iter()
        .find(|(_, scale)| bytes >= *scale)
        .copied()
        .unwrap_or(("bytes", 1.0));
    let text = format!("{:.2}", bytes / scale);
    let text = text.trim_end_matches('0').trim_end_matches('.');
    format!("{text} {unit}")
}

/// Formats the load column: data on disk. Members hold a share of about 60 GiB of
/// replicated data; joining nodes have only just started receiving.
fn load(namespace: &str, node: &Node) -> String {
    if !node.up {
        return "?".to_string();
    }
    let skew = (stable_hash(&[namespace, &node.name, "load"]) % 1000) as f64 / 1000.0;
    match node.ownership {
        Some(share) => {
            format_size(60.0 * 1024.0 * 1024.0 * 1024.0 * share / 100.0 * (0.95 + 0.1 * skew))
        }
        None => format_size(14_000.0 + 200_000.0 * skew),
    }
}
