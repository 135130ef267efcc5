//! The Redis Cluster of a namespace and `redis-cli`, with Redis 7.2's
//! output.
//!
//! The cluster starts as `<sts>-0` .. `<sts>-5`: three masters holding the
//! 16384 slots as `redis-cli --cluster create` splits them, and three
//! replicas (`-3` replicates `-0`, `-4` `-1`, `-5` `-2`). Pods added later
//! are standalone until `redis-cli --cluster add-node` joins them. They join
//! as masters without slots unless `--cluster-slave` is given. Like the real
//! tool, `rebalance` moves slots to such empty masters only with
//! `--cluster-use-empty-masters`.
//!
//! NOTE: automatic failover is not simulated: a master whose pod is down
//! keeps its slots, and the cluster reports `cluster_state:fail`.

mod cli;
mod manager;
#[cfg(test)]
mod tests;

use super::Context;
use super::ids::{stable_hash, stable_hex};
use super::pods::{self, PodView};

pub(crate) use cli::redis_cli;

/// Number of hash slots of a Redis Cluster.
pub(crate) const SLOTS: usize = 16384;
/// Headless service of the Redis StatefulSet; clients connect through it.
pub(crate) const SERVICE: &str = "redis";
/// Pods in the cluster at start, and how many of them are masters.
const INITIAL_NODES: u32 = 6;
const INITIAL_MASTERS: u32 = 3;
const PORT: u16 = 6379;

/// Returns the 40-hex-digit node ID of pod `pod`, stable across restarts as it is
/// with `nodes.conf` on a persistent volume.
pub(crate) fn node_id(namespace: &str, pod: &str) -> String {
    stable_hex(&[namespace, "redis-node", pod], 40)
}

/// Keys stored in `slot`: a stable 0-4, so keys move with their slots.
fn keys_in_slot(slot: usize) -> u64 {
    stable_hash(&["redis-keys", &slot.to_string()]) % 5
}

#[derive(Debug, Clone)]
struct Node {
    pod: String,
    id: String,
    /// Pod name of the master this node replicates.
    replica_of: Option<String>,
    config_epoch: u64,
}

/// Membership and slot ownership of one namespace's cluster.
#[derive(Debug, Default)]
pub(crate) struct RedisCluster {
    nodes: Vec<Node>,
    /// Owning pod of each slot, as an index into `nodes`.
    slot_owner: Vec<usize>,
    current_epoch: u64,
}

impl RedisCluster {
    /// Creates the initial cluster, with nodes named after `workload`.
    fn create(namespace: &str, workload: &str) -> Self {
        let nodes = (0..INITIAL_NODES)
            .map(|ordinal| {
                let pod = format!("{workload}-{ordinal}");
                let master = ordinal % INITIAL_MASTERS;
                Node {
                    id: node_id(namespace, &pod),
                    replica_of: (ordinal >= INITIAL_MASTERS)
                        .then(|| format!("{workload}-{master}")),
                    config_epoch: u64::from(master + 1),
                    pod,
                }
            })
            .collect();
        Self {
            nodes,
            slot_owner: create_slot_owners(INITIAL_MASTERS as usize),
            current_epoch: u64::from(INITIAL_NODES),
        }
    }

    fn index(&self, pod: &str) -> Option<usize> {
        self.nodes.iter().position(|n| n.pod == pod)
    }

    fn by_id(&self, id: &str) -> Option<usize> {
        self.nodes.iter().position(|n| n.id == id)
    }

    /// Returns whether pod `pod` is a replica in the cluster.
    pub(crate) fn is_replica(&self, pod: &str) -> bool {
        self.index(pod)
            .is_some_and(|i| self.nodes[i].replica_of.is_some())
    }

    fn is_master(&self, index: usize) -> bool {
        self.nodes[index].replica_of.is_none()
    }

    fn slots_of(&self, index: usize) -> Vec<usize> {
        (0..SLOTS)
            .filter(|s| self.slot_owner[*s] == index)
            .collect()
    }

    fn replicas_of(&self, index: usize) -> usize {
        let pod = &self.nodes[index].pod;
        self.nodes
            .iter()
            .filter(|n| n.replica_of.as_deref() == Some(pod))
            .count()
    }

    fn keys_of(&self, index: usize) -> u64 {
        self.slots_of(index).into_iter().map(keys_in_slot).sum()
    }

    /// Removes node `index`, which must own no slots; its replicas follow
    /// the first remaining master.
    fn remove(&mut self, index: usize) {
        let removed = self.nodes.remove(index);
        for owner in &mut self.slot_owner {
            if *owner > index {
                *owner -= 1;
            }
        }
        let heir = self
            .nodes
            .iter()
            .find(|n| n.replica_of.is_none())
            .map(|n| n.pod.clone());
        for node in &mut self.nodes {
            if node.replica_of.as_deref() == Some(removed.pod.as_str()) {
                node.replica_of = heir.clone();
            }
        }
    }
}

/// Splits the slots among `masters` masters as `redis-cli --cluster create`
/// does: ranges of 16384 / masters rounded to the nearest slot, the last
/// master taking the rest (0-5460, 5461-10922, 10923-16383 for three).
fn create_slot_owners(masters: usize) -> Vec<usize> {
    let per_master = SLOTS as f64 / masters as f64;
    let mut owners = vec![0; SLOTS];
    let mut first = 0usize;
    let mut cursor = 0.0f64;
    for master in 0..masters {
        let mut last = (cursor + per_master - 1.0).round() as usize;
        if master == masters - 1 || last >= SLOTS {
            last = SLOTS - 1;
        }
        for owner in owners.iter_mut().take(last + 1).skip(first) {
            *owner = master;
        }
        first = last + 1;
        cursor += per_master;
    }
    owners
}

/// `[0-5460],[10923-12287]` style ranges of sorted `slots`.
fn slot_ranges(slots: &[usize]) -> Vec<(usize, usize)> {
    let mut ranges: Vec<(usize, usize)> = Vec::new();
    for &slot in slots {
        match ranges.last_mut() {
            Some((_, end)) if *end + 1 == slot => *end = slot,
            _ => ranges.push((slot, slot)),
        }
    }
    ranges
}

/// A cluster node as seen now: its pod, if the pod exists and is Ready.
struct Live<'c> {
    cluster: &'c RedisCluster,
    pods: Vec<Option<PodView>>,
}

impl<'c> Live<'c> {
    fn new(ctx: &Context, cluster: &'c RedisCluster) -> Self {
        let pods = cluster
            .nodes
            .iter()
            .map(|node| pods::get(ctx.cluster, ctx.namespace, &node.pod).filter(|p| p.ready))
            .collect();
        Self { cluster, pods }
    }

    fn is_up(&self, index: usize) -> bool {
        self.pods[index].is_some()
    }

    /// `ip:6379` of node `index`; `:0` when its address is unknown, as
    /// Redis prints a node it cannot reach.
    fn address(&self, index: usize) -> String {
        match self.pods[index].as_ref().and_then(|p| p.ip.clone()) {
            Some(ip) => format!("{ip}:{PORT}"),
            None => ":0".to_string(),
        }
    }

    /// Returns whether every slot is owned by a reachable master.
    fn all_slots_covered(&self) -> bool {
        self.cluster
            .slot_owner
            .iter()
            .all(|owner| self.is_up(*owner))
    }
}
