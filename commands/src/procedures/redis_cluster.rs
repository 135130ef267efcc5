//! Scaling of a Redis Cluster StatefulSet ("Infrastructure Scaling: Redis"
//! in the runbook). Only growth is supported, because the runbook has no
//! Redis scale-down.
//!
//! The cluster grows by whole shards: one master and as many replicas as
//! each existing master has. New pods join with `redis-cli --cluster
//! add-node`, the first of each shard as an empty master and the others as
//! its replicas. Then `--cluster rebalance --cluster-use-empty-masters`
//! moves slots onto the new masters, and `--cluster check` verifies the
//! result. Pods are addressed by IP, so no DNS name is assumed.

use std::time::Duration;

use tokio::time::Instant;

use super::{
    Outcome, Progress, StatefulPlan, StepError, Steps, check_lock, run_tool, unchanged_line,
};
use crate::cluster::{Cluster, ClusterError, ExecOutput};

const PORT: u16 = 6379;

/// Maximum run time of one `redis-cli` call other than rebalance.
pub const CLI_TIMEOUT: Duration = Duration::from_secs(120);

/// Maximum run time of `--cluster rebalance`, which migrates keys slot by
/// slot and can take hours on a large data set.
pub const REBALANCE_TIMEOUT: Duration = Duration::from_secs(2 * 60 * 60);

/// Line of `--cluster check` when every hash slot has an owner.
const ALL_SLOTS_COVERED: &str = "[OK] All 16384 slots covered.";

/// Nodes of the cluster as `redis-cli --cluster check` lists them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Topology {
    pub masters: u32,
    pub replicas: u32,
    /// Masters that own no slot, such as a master added without rebalance.
    pub empty_masters: u32,
    /// Whether the check reported every slot covered.
    pub covered: bool,
}

impl Topology {
    pub fn nodes(&self) -> u32 {
        self.masters + self.replicas
    }

    /// Returns the pods of one shard (a master and its replicas), when every
    /// master has the same number of replicas.
    pub fn shard_size(&self) -> Option<u32> {
        (self.masters > 0 && self.replicas.is_multiple_of(self.masters))
            .then(|| 1 + self.replicas / self.masters)
    }

    pub fn describe(&self) -> String {
        format!(
            "{} masters ({} without slots), {} replicas, {}",
            self.masters,
            self.empty_masters,
            self.replicas,
            if self.covered {
                "all slots covered"
            } else {
                "slots NOT all covered"
            }
        )
    }
}

/// Parses the node list of `--cluster check`: `M:` lines are masters,
/// followed by `slots:... (N slots) master`, and `S:` lines are replicas.
pub fn parse_check(output: &str) -> Topology {
    let mut topology = Topology::default();
    let mut lines = output.lines().peekable();
    while let Some(line) = lines.next() {
        if line.starts_with("M: ") {
            topology.masters += 1;
            let slots = lines.peek().copied().unwrap_or_default();
            if slots.contains("(0 slots)") {
                topology.empty_masters += 1;
            }
        } else if line.starts_with("S: ") {
            topology.replicas += 1;
        } else if line.trim() == ALL_SLOTS_COVERED {
            topology.covered = true;
        }
    }
    topology
}

/// Returns why a change from `from` to `to` pods cannot be done, or `None`.
pub fn target_problem(topology: &Topology, from: u32, to: u32) -> Option<String> {
    if to < from {
        return Some(
            "the runbook has no Redis Cluster scale-down: move the slots away with `redis-cli --cluster reshard`, remove the nodes with `--cluster del-node`, then scale the StatefulSet by hand".to_string(),
        );
    }
    let Some(size) = topology.shard_size() else {
        return Some(format!(
            "the masters have different numbers of replicas ({}), so the shard size is unclear",
            topology.describe()
        ));
    };
    let added = to - from;
    if !added.is_multiple_of(size) {
        let lower = from + added / size * size;
        let upper = lower + size;
        let choices = if lower > from {
            format!("{lower} or {upper}")
        } else {
            upper.to_string()
        };
        return Some(format!(
            "Redis Cluster grows by whole shards of {size} pods (1 master and {} replica(s)): choose {choices}",
            size - 1
        ));
    }
    None
}

fn address(ip: &str) -> String {
    format!("{ip}:{PORT}")
}

/// Returns the IP of each pod of the StatefulSet, by ordinal, for
/// ordinals `0..count`.
async fn pod_ips(
    cluster: &Cluster,
    plan: &StatefulPlan,
    selector: &str,
    count: u32,
) -> Result<Result<Vec<String>, String>, ClusterError> {
    let pods = cluster.pods(&plan.namespace, selector).await?;
    let mut ips = Vec::new();
    for ordinal in 0..count {
        let name = plan.pod(ordinal);
        match pods
            .iter()
            .find(|pod| pod.name == name)
            .and_then(|pod| pod.ip.clone())
        {
            Some(ip) => ips.push(ip),
            None => return Ok(Err(format!("{name} has no IP address"))),
        }
    }
    Ok(Ok(ips))
}

/// Runs `redis-cli` in the seed pod and fails on a non-zero exit.
async fn cli(
    cluster: &Cluster,
    plan: &StatefulPlan,
    args: &[&str],
    limit: Duration,
) -> Result<Result<ExecOutput, String>, ClusterError> {
    let mut command = vec!["redis-cli"];
    command.extend_from_slice(args);
    run_tool(cluster, &plan.namespace, &plan.seed(), &command, limit).await
}

/// Reads the cluster through `--cluster check` in `pod`, connecting to
/// `seed_address`.
pub async fn topology(
    cluster: &Cluster,
    namespace: &str,
    pod: &str,
    seed_address: &str,
) -> Result<Topology, ClusterError> {
    let command = ["redis-cli", "--cluster", "check", seed_address];
    let output = cluster.exec(namespace, pod, &command, CLI_TIMEOUT).await?;
    Ok(parse_check(&output.stdout))
}

/// Returns the IP of pod `<workload>-0`, or `None` when it has none.
pub async fn seed_ip(
    cluster: &Cluster,
    namespace: &str,
    workload: &str,
    selector: &str,
) -> Result<Option<String>, ClusterError> {
    let seed = format!("{workload}-0");
    Ok(cluster
        .pods(namespace, selector)
        .await?
        .into_iter()
        .find(|pod| pod.name == seed)
        .and_then(|pod| pod.ip))
}

/// Runs the procedure. Every step reports through `progress`; the returned
/// outcome describes the final state, including on timeout.
pub async fn run(
    cluster: &Cluster,
    plan: &StatefulPlan,
    progress: &Progress,
) -> Result<Outcome, StepError> {
    let started = Instant::now();
    let name = &plan.workload;
    let failed = |summary: String| -> Result<Outcome, StepError> {
        Ok(Outcome::failed(summary, Vec::new(), started.elapsed()))
    };

    let before = plan.check_unchanged(cluster).await?;
    let Some(seed) = seed_ip(cluster, &plan.namespace, name, &before.selector).await? else {
        return failed(format!(
            "{name}: {} has no IP address, so the cluster cannot be checked; nothing was changed",
            plan.seed()
        ));
    };
    let seed = address(&seed);
    let found = topology(cluster, &plan.namespace, &plan.seed(), &seed).await?;
    let size = match target_problem(&found, plan.from, plan.to) {
        Some(problem) => return failed(format!("{name}: {problem}; nothing was changed")),
        None => found.shard_size().unwrap_or(1),
    };
    let shards = (plan.to - plan.from) / size;
    let mut step = Steps::new(4 + shards + 1);
    progress
        .step(step.next(unchanged_line(name, &before)))
        .await;

    if !found.covered || found.nodes() != plan.from || found.empty_masters > 0 {
        return failed(format!(
            "{name}: the cluster is not ready for a change, so nothing was changed: {} with {} pods; `redis-cli --cluster check` must list every pod and cover all slots",
            found.describe(),
            plan.from
        ));
    }
    progress
        .step(step.next(format!("cluster is healthy: {}", found.describe())))
        .await;

    check_lock(progress, "before changing anything")?;
    let rollout = plan
        .scale_and_wait(cluster, progress, plan.from, plan.to)
        .await?;
    if let Err(status) = rollout {
        return failed(plan.rollout_failure(
            plan.to,
            &status,
            "; no pod joined the cluster",
            Some(plan.from),
        ));
    }
    progress
        .step(step.next(format!(
            "patched {name} to {} replicas and the new pods are ready",
            plan.to
        )))
        .await;

    let unknown = |error: ClusterError| plan.state_unknown(error);
    let ips = match pod_ips(cluster, plan, &before.selector, plan.to)
        .await
        .map_err(unknown)?
    {
        Ok(ips) => ips,
        Err(problem) => return failed(format!("{name}: {problem}; no pod joined the cluster")),
    };
    for shard in 0..shards {
        check_lock(progress, "while adding nodes to the cluster")?;
        let first = plan.from + shard * size;
        let master = address(&ips[first as usize]);
        let add = ["--cluster", "add-node", master.as_str(), seed.as_str()];
        if let Err(failure) = cli(cluster, plan, &add, CLI_TIMEOUT)
            .await
            .map_err(unknown)?
        {
            return failed(format!(
                "{name}: adding {} failed: {failure}",
                plan.pod(first)
            ));
        }
        let myid = ["-h", ips[first as usize].as_str(), "cluster", "myid"];
        let master_id = match cli(cluster, plan, &myid, CLI_TIMEOUT)
            .await
            .map_err(unknown)?
        {
            Ok(output) => output.stdout.trim().to_string(),
            Err(failure) => return failed(format!("{name}: {failure}")),
        };
        let mut replicas = Vec::new();
        for ordinal in first + 1..first + size {
            let replica = address(&ips[ordinal as usize]);
            let add = [
                "--cluster",
                "add-node",
                replica.as_str(),
                seed.as_str(),
                "--cluster-slave",
                "--cluster-master-id",
                master_id.as_str(),
            ];
            if let Err(failure) = cli(cluster, plan, &add, CLI_TIMEOUT)
                .await
                .map_err(unknown)?
            {
                return failed(format!(
                    "{name}: adding {} as a replica failed: {failure}",
                    plan.pod(ordinal)
                ));
            }
            replicas.push(plan.pod(ordinal));
        }
        progress
            .step(step.next(format!(
                "added shard {}: master {} ({}), replicas {}",
                shard + 1,
                plan.pod(first),
                &master_id[..master_id.len().min(8)],
                replicas.join(", ")
            )))
            .await;
    }

    check_lock(progress, "before the rebalance")?;
    progress
        .step(format!(
            "   running redis-cli --cluster rebalance; this can take long (at most {} min)",
            REBALANCE_TIMEOUT.as_secs() / 60
        ))
        .await;
    let rebalance = [
        "--cluster",
        "rebalance",
        seed.as_str(),
        "--cluster-use-empty-masters",
    ];
    match cli(cluster, plan, &rebalance, REBALANCE_TIMEOUT)
        .await
        .map_err(unknown)?
    {
        Ok(output) => {
            let moves = output.stdout.matches("Moving ").count();
            progress
                .step(step.next(format!(
                    "rebalanced: {moves} moves of slot ranges onto the new masters"
                )))
                .await;
        }
        Err(failure) => {
            return failed(format!(
                "{name}: the new nodes joined, but the rebalance failed: {failure}. Run `redis-cli --cluster fix` and the rebalance by hand."
            ));
        }
    }

    let after = topology(cluster, &plan.namespace, &plan.seed(), &seed)
        .await
        .map_err(unknown)?;
    let summary = format!(
        "{name} scaled from {} to {} pods in {:.1}s",
        plan.from,
        plan.to,
        started.elapsed().as_secs_f64()
    );
    if after.covered && after.nodes() == plan.to && after.empty_masters == 0 {
        progress
            .step(step.next(format!("verified: {}", after.describe())))
            .await;
        Ok(Outcome::succeeded(summary, Vec::new(), started.elapsed()))
    } else {
        Ok(Outcome::failed(
            format!("{summary}, but verification found problems"),
            vec![format!(
                "problem: {} with {} pods expected",
                after.describe(),
                plan.to
            )],
            started.elapsed(),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CHECK: &str = "10.244.2.9:6379 (9cb31fa3...) -> 10950 keys | 5461 slots | 1 slaves.
[OK] 32960 keys in 3 masters.
>>> Performing Cluster Check (using node 10.244.2.9:6379)
M: 9cb31fa35768d42eb0a2b5f82e49be9416607ec3 10.244.2.9:6379
   slots:[0-5460] (5461 slots) master
   1 additional replica(s)
M: 8c9e86e458715a4e7acc7f7f57366243f90120db 10.244.1.12:6379
   slots:[5461-10922] (5462 slots) master
   1 additional replica(s)
M: dc88158ab3bbc7dd49421196d92b6283ef1ce72a 10.244.0.11:6379
   slots:[10923-16383] (5461 slots) master
   1 additional replica(s)
M: 224cacbbc4382d67b131d870b4e348e62752a2cb 10.244.0.13:6379
   slots: (0 slots) master
S: 4a92cb7ed6d4d672234fb67225664ec672106987 10.244.0.12:6379
   slots: (0 slots) slave
   replicates 9cb31fa35768d42eb0a2b5f82e49be9416607ec3
S: 0d53b0a7d31947396d510236f251cc15ff0f5911 10.244.2.13:6379
   slots: (0 slots) slave
   replicates 8c9e86e458715a4e7acc7f7f57366243f90120db
S: 61152ebed8694fba47dcfe1a0b11b24ac6a3b1b0 10.244.1.14:6379
   slots: (0 slots) slave
   replicates dc88158ab3bbc7dd49421196d92b6283ef1ce72a
[OK] All nodes agree about slots configuration.
>>> Check for open slots...
>>> Check slots coverage...
[OK] All 16384 slots covered.
";

    #[test]
    fn check_output_gives_topology() {
        let topology = parse_check(CHECK);
        assert_eq!(topology.masters, 4);
        assert_eq!(topology.replicas, 3);
        assert_eq!(topology.empty_masters, 1);
        assert!(topology.covered);
    }

    #[test]
    fn target_must_add_whole_shards() {
        let topology = Topology {
            masters: 3,
            replicas: 3,
            empty_masters: 0,
            covered: true,
        };
        assert_eq!(target_problem(&topology, 6, 8), None);
        assert_eq!(target_problem(&topology, 6, 10), None);
        let odd = target_problem(&topology, 6, 9).expect("9 is not a whole shard");
        assert!(odd.contains("choose 8 or 10"), "{odd}");
        let single = target_problem(&topology, 6, 7).expect("7 is not a whole shard");
        assert!(single.contains("choose 8"), "{single}");
        let down = target_problem(&topology, 6, 4).expect("no scale-down");
        assert!(down.contains("no Redis Cluster scale-down"), "{down}");
    }
}
