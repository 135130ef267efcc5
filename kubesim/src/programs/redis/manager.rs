//! `redis-cli --cluster` subcommands: `check`, `info`, `add-node`,
//! `del-node` and `rebalance`, following redis-cli 7.2's cluster manager.
//!
//! NOTE: `create`, `reshard`, `fix`, `import` and `--cluster-weight` are not
//! simulated and exit with an error saying so.

use super::cli::connect;
use super::{Live, Node, RedisCluster, SLOTS, slot_ranges};
use crate::programs::pods::PodView;
use crate::programs::{Context, ExecOutput};

/// redis-cli's default `--cluster-threshold`, in percent.
const DEFAULT_THRESHOLD: f64 = 2.0;

fn error(message: String) -> ExecOutput {
    ExecOutput {
        stdout: format!("{message}\n").into_bytes(),
        stderr: Vec::new(),
        exit_code: 1,
    }
}

/// Splits `host:port`.
fn split_address(address: &str) -> Result<(&str, &str), ExecOutput> {
    address
        .rsplit_once(':')
        .ok_or_else(|| error(format!("[ERR] Invalid address format: {address}")))
}

/// Connects to the node an address argument names.
fn entry_node(ctx: &Context, address: &str) -> Result<PodView, ExecOutput> {
    let (host, port) = split_address(address)?;
    connect(ctx, host, port)
}

pub(super) fn run(ctx: &Context, cluster: &mut RedisCluster, args: &[String]) -> ExecOutput {
    let Some((command, args)) = args.split_first() else {
        return error("Cluster Manager Commands: create, check, info, fix, reshard, rebalance, add-node, del-node".into());
    };
    let positional: Vec<&String> = args.iter().filter(|a| !a.starts_with("--")).collect();
    let flag = |name: &str| args.iter().any(|a| a == name);
    let value = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .cloned()
    };
    match (command.as_str(), positional.as_slice()) {
        ("check", [address, ..]) => check(ctx, cluster, address, true),
        ("info", [address, ..]) => check(ctx, cluster, address, false),
        ("add-node", [new, existing, ..]) => add_node(
            ctx,
            cluster,
            new,
            existing,
            flag("--cluster-slave"),
            value("--cluster-master-id"),
        ),
        ("del-node", [address, id, ..]) => del_node(ctx, cluster, address, id),
        ("rebalance", [address, ..]) => {
            let threshold = match value("--cluster-threshold").map(|t| t.parse::<f64>()) {
                None => DEFAULT_THRESHOLD,
                Some(Ok(threshold)) => threshold,
                Some(Err(_)) => return error("[ERR] Invalid --cluster-threshold value".into()),
            };
            if flag("--cluster-weight") {
                return error("[ERR] --cluster-weight is not supported by this simulation".into());
            }
            rebalance(
                ctx,
                cluster,
                address,
                threshold,
                flag("--cluster-use-empty-masters"),
                flag("--cluster-simulate"),
            )
        }
        ("create" | "reshard" | "fix" | "import" | "set-timeout" | "call" | "backup", _) => error(
            format!("[ERR] --cluster {command} is not supported by this simulation"),
        ),
        (_, _) => error(format!(
            "[ERR] Wrong number of arguments for --cluster {command}, or unknown subcommand"
        )),
    }
}

/// Names a node in manager output: the entry node as the user gave it,
/// others by address.
struct Naming<'a> {
    entry_pod: &'a str,
    entry_text: &'a str,
}

impl Naming<'_> {
    fn name(&self, live: &Live, index: usize) -> String {
        if live.cluster.nodes[index].pod == self.entry_pod {
            self.entry_text.to_string()
        } else {
            live.address(index)
        }
    }
}

fn ranges_text(slots: &[usize]) -> String {
    slot_ranges(slots)
        .into_iter()
        .map(|(start, end)| {
            if start == end {
                format!("[{start}]")
            } else {
                format!("[{start}-{end}]")
            }
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// Builds the `>>> Performing Cluster Check` report; `verbose` lists each node.
/// Returns the report and whether all slots are covered.
fn check_report(live: &Live, naming: &Naming, verbose: bool) -> (String, bool) {
    let cluster = live.cluster;
    let mut out = format!(
        ">>> Performing Cluster Check (using node {})\n",
        naming.entry_text
    );
    if verbose {
        let up: Vec<usize> = (0..cluster.nodes.len())
            .filter(|i| live.is_up(*i))
            .collect();
        for &index in up.iter().filter(|i| cluster.is_master(**i)) {
            let slots = cluster.slots_of(index);
            out.push_str(&format!(
                "M: {} {}\n   slots:{} ({} slots) master\n",
                cluster.nodes[index].id,
                live.address(index),
                ranges_text(&slots),
                slots.len()
            ));
            let replicas = cluster.replicas_of(index);
            if replicas > 0 {
                out.push_str(&format!("   {replicas} additional replica(s)\n"));
            }
        }
        for &index in up.iter().filter(|i| !cluster.is_master(**i)) {
            let master = cluster.nodes[index]
                .replica_of
                .as_deref()
                .and_then(|m| cluster.index(m));
            out.push_str(&format!(
                "S: {} {}\n   slots: (0 slots) slave\n   replicates {}\n",
                cluster.nodes[index].id,
                live.address(index),
                master.map_or("-".to_string(), |m| cluster.nodes[m].id.clone())
            ));
        }
    }
    out.push_str("[OK] All nodes agree about slots configuration.\n>>> Check for open slots...\n>>> Check slots coverage...\n");
    let covered = live.all_slots_covered();
    if covered {
        out.push_str(&format!("[OK] All {SLOTS} slots covered.\n"));
    } else {
        out.push_str(&format!(
            "[ERR] Not all {SLOTS} slots are covered by nodes.\n\n"
        ));
    }
    (out, covered)
}

/// `--cluster check` (with the per-node listing) and `--cluster info`.
fn check(ctx: &Context, cluster: &RedisCluster, address: &str, full: bool) -> ExecOutput {
    let entry = match entry_node(ctx, address) {
        Ok(pod) => pod,
        Err(output) => return output,
    };
    if cluster.index(&entry.name).is_none() {
        return error(format!(
            "[ERR] Node {address} is not part of a cluster or has no slots assigned"
        ));
    }
    let live = Live::new(ctx, cluster);
    let naming = Naming {
        entry_pod: &entry.name,
        entry_text: address,
    };
    let masters: Vec<usize> = (0..cluster.nodes.len())
        .filter(|i| cluster.is_master(*i) && live.is_up(*i))
        .collect();
    let mut out = String::new();
    let mut total_keys = 0;
    for &index in &masters {
        let keys = cluster.keys_of(index);
        total_keys += keys;
        out.push_str(&format!(
            "{} ({}...) -> {keys} keys | {} slots | {} slaves.\n",
            naming.name(&live, index),
            &cluster.nodes[index].id[..8],
            cluster.slots_of(index).len(),
            cluster.replicas_of(index)
        ));
    }
    out.push_str(&format!(
        "[OK] {total_keys} keys in {} masters.\n",
        masters.len()
    ));
    out.push_str(&format!(
        "{:.2} keys per slot on average.\n",
        total_keys as f64 / SLOTS as f64
    ));
    if !full {
        return ExecOutput::stdout(out);
    }
    let (report, covered) = check_report(&live, &naming, true);
    out.push_str(&report);
    ExecOutput {
        stdout: out.into_bytes(),
        stderr: Vec::new(),
        exit_code: if covered { 0 } else { 1 },
    }
}

fn add_node(
    ctx: &Context,
    cluster: &mut RedisCluster,
    new: &str,
    existing: &str,
    replica: bool,
    master_id: Option<String>,
) -> ExecOutput {
    let new_pod = match entry_node(ctx, new) {
        Ok(pod) => pod,
        Err(output) => return output,
    };
    let entry = match entry_node(ctx, existing) {
        Ok(pod) => pod,
        Err(output) => return output,
    };
    let mut out = format!(">>> Adding node {new} to cluster {existing}\n");
    let live = Live::new(ctx, cluster);
    let naming = Naming {
        entry_pod: &entry.name,
        entry_text: existing,
    };
    let (report, covered) = check_report(&live, &naming, true);
    out.push_str(&report);
    if !covered || cluster.index(&entry.name).is_none() {
        return error(out + "[ERR] The cluster the node is added to is not healthy");
    }
    if cluster.index(&new_pod.name).is_some() {
        return error(
            out + &format!(
                "[ERR] Node {new} is not empty. Either the node already knows other nodes (check with CLUSTER NODES) or contains some key in database 0."
            ),
        );
    }
    let master =
        match replica.then(|| choose_master(cluster, &live, master_id.as_deref(), &mut out)) {
            None => None,
            Some(Ok(index)) => Some(index),
            Some(Err(message)) => return error(out + &message),
        };
    out.push_str(&format!(
        ">>> Send CLUSTER MEET to node {new} to make it join the cluster.\n"
    ));
    if let Some(master) = master {
        out.push_str(&format!(
            "Waiting for the cluster to join\n\n>>> Configure node as replica of {}.\n",
            live.address(master)
        ));
    }
    out.push_str("[OK] New node added correctly.\n");

    let replica_of = master.map(|m| cluster.nodes[m].pod.clone());
    let config_epoch = match master {
        Some(m) => cluster.nodes[m].config_epoch,
        None => 0,
    };
    cluster.nodes.push(Node {
        id: super::node_id(ctx.namespace, &new_pod.name),
        pod: new_pod.name,
        replica_of,
        config_epoch,
    });
    ExecOutput::stdout(out)
}

/// Chooses the master a new replica follows: the one with ID `master_id`, or else
/// the master with the fewest replicas, which redis-cli announces in `out`.
fn choose_master(
    cluster: &RedisCluster,
    live: &Live,
    master_id: Option<&str>,
    out: &mut String,
) -> Result<usize, String> {
    if let Some(id) = master_id {
        return cluster
            .by_id(id)
            .filter(|i| cluster.is_master(*i))
            .ok_or_else(|| format!("[ERR] No such master ID {id}"));
    }
    let masters = (0..cluster.nodes.len()).filter(|i| cluster.is_master(*i));
    let index = masters
        .min_by_key(|i| cluster.replicas_of(*i))
        .ok_or("[ERR] The cluster has no master to replicate")?;
    out.push_str(&format!(
        "Automatically selected master {}\n",
        live.address(index)
    ));
    Ok(index)
}

fn del_node(ctx: &Context, cluster: &mut RedisCluster, address: &str, id: &str) -> ExecOutput {
    if let Err(output) = entry_node(ctx, address) {
        return output;
    }
    let mut out = format!(">>> Removing node {id} from cluster {address}\n");
    let Some(index) = cluster.by_id(id) else {
        return error(out + &format!("[ERR] No such node ID {id}"));
    };
    if !cluster.slots_of(index).is_empty() {
        let live = Live::new(ctx, cluster);
        return error(
            out + &format!(
                "[ERR] Node {} is not empty! Reshard data away and try again.",
                live.address(index)
            ),
        );
    }
    cluster.remove(index);
    out.push_str(">>> Sending CLUSTER FORGET messages to the cluster...\n>>> Sending CLUSTER RESET SOFT to the deleted node.\n");
    ExecOutput::stdout(out)
}

/// A master taking part in a rebalance and the slots it should lose
/// (positive) or gain (negative).
struct Balance {
    index: usize,
    /// Slots the master owns before the rebalance.
    slots: i64,
    balance: i64,
}

/// Each master's balance at weight 1, and the slot count each should
/// reach. Masters without slots take part only with `use_empty`
/// (`--cluster-use-empty-masters`); the others get weight 0.
fn compute_balances(cluster: &RedisCluster, use_empty: bool) -> (Vec<Balance>, i64) {
    let involved: Vec<usize> = (0..cluster.nodes.len())
        .filter(|i| cluster.is_master(*i) && (use_empty || !cluster.slots_of(*i).is_empty()))
        .collect();
    let expected = SLOTS as i64 / involved.len().max(1) as i64;
    let mut balances: Vec<Balance> = involved
        .iter()
        .map(|&index| {
            let slots = cluster.slots_of(index).len() as i64;
            Balance {
                index,
                slots,
                balance: slots - expected,
            }
        })
        .collect();
    // The expected count is rounded down, so the balances can sum above
    // zero; nodes that receive slots absorb the difference.
    let mut total: i64 = balances.iter().map(|b| b.balance).sum();
    while total > 0 {
        for b in balances.iter_mut().filter(|b| b.balance <= 0) {
            if total == 0 {
                break;
            }
            b.balance -= 1;
            total -= 1;
        }
    }
    (balances, expected)
}

/// Returns whether some master deviates from `expected` by more than `threshold`
/// percent, which is when redis-cli moves slots at all.
fn over_threshold(balances: &[Balance], expected: i64, threshold: f64) -> bool {
    balances.iter().any(|b| {
        if b.slots > 0 {
            (100.0 - 100.0 * expected as f64 / b.slots as f64).abs() > threshold
        } else {
            expected > 1
        }
    })
}

fn rebalance(
    ctx: &Context,
    cluster: &mut RedisCluster,
    address: &str,
    threshold: f64,
    use_empty: bool,
    simulate: bool,
) -> ExecOutput {
    let entry = match entry_node(ctx, address) {
        Ok(pod) => pod,
        Err(output) => return output,
    };
    let live = Live::new(ctx, cluster);
    let naming = Naming {
        entry_pod: &entry.name,
        entry_text: address,
    };
    let (mut out, covered) = check_report(&live, &naming, false);
    if !covered || cluster.index(&entry.name).is_none() {
        return error(out + "*** Please fix your cluster problems before rebalancing");
    }
    let (mut balances, expected) = compute_balances(cluster, use_empty);
    if !over_threshold(&balances, expected, threshold) {
        out.push_str(&format!(
            "*** No rebalancing needed! All nodes are within the {threshold:.2}% threshold.\n"
        ));
        return ExecOutput::stdout(out);
    }
    let involved = balances.len();
    balances.sort_by_key(|b| b.balance);
    out.push_str(&format!(
        ">>> Rebalancing across {involved} nodes. Total weight = {:.2}\n",
        involved as f64
    ));
    out.push_str(&move_slots(
        cluster,
        &live_names(&live, &naming),
        &mut balances,
        simulate,
    ));
    ExecOutput::stdout(out)
}

/// Display names of all nodes, captured before slots move.
fn live_names(live: &Live, naming: &Naming) -> Vec<String> {
    (0..live.cluster.nodes.len())
        .map(|i| naming.name(live, i))
        .collect()
}

/// Moves slots from the most loaded masters to the least loaded ones, one
/// `#` per slot, as redis-cli's rebalance loop does.
fn move_slots(
    cluster: &mut RedisCluster,
    names: &[String],
    balances: &mut [Balance],
    simulate: bool,
) -> String {
    let mut out = String::new();
    let (mut receiver, mut giver) = (0, balances.len().saturating_sub(1));
    while receiver < giver {
        let count = balances[receiver]
            .balance
            .abs()
            .min(balances[giver].balance.abs());
        if count > 0 {
            let (from, to) = (balances[giver].index, balances[receiver].index);
            out.push_str(&format!(
                "Moving {count} slots from {} to {}\n",
                names[from], names[to]
            ));
            let moved: Vec<usize> = cluster
                .slots_of(from)
                .into_iter()
                .take(count as usize)
                .collect();
            if !simulate {
                for slot in &moved {
                    cluster.slot_owner[*slot] = to;
                }
            }
            out.push_str(&"#".repeat(moved.len()));
            out.push('\n');
        }
        balances[receiver].balance += count;
        balances[giver].balance -= count;
        if balances[receiver].balance == 0 {
            receiver += 1;
        }
        if balances[giver].balance == 0 {
            giver -= 1;
        }
    }
    if !simulate {
        cluster.current_epoch += 1;
    }
    out
}
