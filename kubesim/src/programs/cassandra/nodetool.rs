//! `nodetool` commands: status, decommission, removenode, repair,
//! describecluster, netstats and version, with Cassandra 4.1's output and
//! exit codes (1 for bad usage, 2 for a failed operation).

use chrono::TimeDelta;

use super::repair::{describecluster, repair};
use super::{
    DATACENTER, KEYSPACES, NUM_TOKENS, NodeState, RACK, RELEASE_VERSION, REPLICATION_FACTOR, Ring,
    load,
};
use crate::programs::pods::{self, PodView, Software};
use crate::programs::{Context, ExecOutput, ProgramState};

/// Exit status of nodetool when an operation fails on the node.
pub(super) const OPERATION_FAILED: i32 = 2;

const USAGE: &str = "usage: nodetool [(-h <host> | --host <host>)] [(-p <port> | --port <port>)] <command> [<args>]

The most commonly used nodetool commands are:
    decommission      Decommission the *node I am connecting to*
    describecluster   Print the name, snitch, partitioner and schema version of a cluster
    netstats          Print network information on provided host (connecting node by default)
    removenode        Show status of current node removal, force completion of pending removal or remove provided ID
    repair            Repair one or more tables
    status            Print cluster information (state, load, IDs, ...)
    version           Print cassandra version

See 'nodetool help <command>' for more information on a specific command.
";

/// Builds a usage error as nodetool's argument parser prints it.
pub(super) fn bad_use(message: &str) -> ExecOutput {
    ExecOutput::failure(
        1,
        format!("nodetool: {message}\nSee 'nodetool help' or 'nodetool help <command>'.\n"),
    )
}

/// Builds a failed operation's output: the message and the head of the
/// Java stack trace.
pub(super) fn operation_error(exception: &str, message: &str, method: &str) -> ExecOutput {
    ExecOutput::failure(
        OPERATION_FAILED,
        format!(
            "error: {message}\n-- StackTrace --\n{exception}: {message}\n\tat org.apache.cassandra.service.StorageService.{method}(StorageService.java)\n"
        ),
    )
}

/// Runs `nodetool ARGS` in the Cassandra pod of `ctx`.
pub(crate) fn nodetool(ctx: &Context, state: &mut ProgramState, args: &[String]) -> ExecOutput {
    let mut host: Option<&str> = None;
    let mut rest = args;
    while let Some((flag, tail)) = rest.split_first() {
        match flag.as_str() {
            "-h" | "--host" => {
                let Some((value, tail)) = tail.split_first() else {
                    return bad_use("Required values for option 'host' not provided");
                };
                host = Some(value);
                rest = tail;
            }
            "-p" | "--port" | "-u" | "--username" | "-pw" | "--password" => {
                rest = tail.get(1..).unwrap_or_default();
            }
            _ => break,
        }
    }
    let target = match host {
        None => ctx.pod.clone(),
        Some(host) => match pods::resolve_host(ctx.cluster, ctx.namespace, ctx.pod, host) {
            Some(pod) if pod.software() == Software::Cassandra => pod,
            _ => {
                return ExecOutput::failure(
                    1,
                    format!(
                        "nodetool: Failed to connect to '{host}:7199' - UnknownHostException: '{host}: Name or service not known'.\n"
                    ),
                );
            }
        },
    };
    if !target.ready {
        return ExecOutput::failure(
            1,
            "nodetool: Failed to connect to '127.0.0.1:7199' - ConnectException: 'Connection refused (Connection refused)'.\n",
        );
    }
    let ring = state
        .cassandra
        .entry(ctx.namespace.to_string())
        .or_default();
    let Some((command, command_args)) = rest.split_first() else {
        return ExecOutput::failure(1, USAGE);
    };
    match command.as_str() {
        "status" => status(ctx, ring, command_args),
        "decommission" => decommission(ctx, ring, &target, command_args),
        "removenode" => removenode(ctx, ring, &target, command_args),
        "repair" => repair(ctx, ring, &target, command_args),
        "describecluster" => describecluster(ctx, ring),
        "netstats" => netstats(ctx, ring, &target),
        "version" => ExecOutput::stdout(format!("ReleaseVersion: {RELEASE_VERSION}\n")),
        "help" => ExecOutput::stdout(USAGE),
        other => bad_use(&format!("Found unexpected parameters: [{other}]")),
    }
}

/// Pads `rows` into columns separated by two spaces, as nodetool's table
/// printer does; the last column is not padded.
fn table(rows: &[Vec<String>]) -> String {
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..columns)
        .map(|c| {
            rows.iter()
                .filter_map(|r| r.get(c))
                .map(|cell| cell.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for row in rows {
        let last = row.len().saturating_sub(1);
        for (c, cell) in row.iter().enumerate() {
            if c == last {
                out.push_str(cell);
            } else {
                out.push_str(&format!("{cell:<width$}  ", width = widths[c]));
            }
        }
        out.push('\n');
    }
    out
}

fn status(ctx: &Context, ring: &mut Ring, args: &[String]) -> ExecOutput {
    let keyspace = args.iter().find(|a| !a.starts_with('-'));
    if let Some(keyspace) = keyspace
        && !KEYSPACES.iter().any(|(name, _)| name == keyspace)
    {
        return bad_use(&format!("The keyspace {keyspace}, does not exist"));
    }
    let nodes = ring.refresh(ctx);
    let owns_header = if keyspace.is_some() {
        "Owns (effective)"
    } else {
        "Owns"
    };
    let replication = keyspace
        .and_then(|k| KEYSPACES.iter().find(|(name, _)| name == k))
        .map_or(1.0, |(_, rf)| *rf as f64);

    let mut rows = vec![
        [
            "--",
            "Address",
            "Load",
            "Tokens",
            owns_header,
            "Host ID",
            "Rack",
        ]
        .map(String::from)
        .to_vec(),
    ];
    // With no more owning nodes than replicas, every node stores all data.
    let owners = nodes.iter().filter(|n| n.ownership.is_some()).count() as f64;
    let everything = keyspace.is_some() && owners <= replication;
    for node in &nodes {
        let owns = match node.ownership {
            Some(_) if everything => "100.0%".to_string(),
            Some(share) => format!("{:.1}%", (share * replication).min(100.0)),
            None => "?".to_string(),
        };
        rows.push(vec![
            node.status_code(),
            node.ip.clone(),
            load(ctx.namespace, node),
            NUM_TOKENS.to_string(),
            owns,
            node.host_id.clone(),
            RACK.to_string(),
        ]);
    }
    let title = format!("Datacenter: {DATACENTER}");
    let mut out = format!("{title}\n{}\n", "=".repeat(title.len()));
    out.push_str("Status=Up/Down\n|/ State=Normal/Leaving/Joining/Moving\n");
    out.push_str(&table(&rows));
    if keyspace.is_none() {
        out.push_str(
            "\nNote: Non-system keyspaces don't have the same replication settings, effective ownership information is meaningless\n",
        );
    }
    ExecOutput::stdout(out)
}

/// Returns the operation mode of the node in `pod`, as `nodetool netstats` names it.
fn mode(ring: &Ring, nodes: &[super::Node], pod: &PodView) -> &'static str {
    if ring.has_left(&pod.uid) {
        return "DECOMMISSIONED";
    }
    match nodes.iter().find(|n| n.name == pod.name).map(|n| n.state) {
        Some(NodeState::Joining) => "JOINING",
        Some(NodeState::Leaving) => "LEAVING",
        _ => "NORMAL",
    }
}

fn decommission(ctx: &Context, ring: &mut Ring, pod: &PodView, args: &[String]) -> ExecOutput {
    let force = args.iter().any(|a| a == "-f" || a == "--force");
    if let Some(unexpected) = args.iter().find(|a| *a != "-f" && *a != "--force") {
        return bad_use(&format!("Found unexpected parameters: [{unexpected}]"));
    }
    let nodes = ring.refresh(ctx);
    let mode = mode(ring, &nodes, pod);
    if mode != "NORMAL" {
        return operation_error(
            "java.lang.UnsupportedOperationException",
            &format!("Node in {mode} state; wait for status to become normal or restart"),
            "decommission",
        );
    }
    let remaining = nodes
        .iter()
        .filter(|n| n.name != pod.name && n.up && n.state == NodeState::Normal)
        .count();
    if remaining < REPLICATION_FACTOR && !force {
        let message = format!(
            "Not enough live nodes to maintain replication factor in keyspace {} (RF = {REPLICATION_FACTOR}, N = {}). Perform a forceful decommission to ignore.",
            super::APP_KEYSPACE,
            remaining + 1
        );
        return operation_error(
            "java.lang.UnsupportedOperationException",
            &message,
            "decommission",
        );
    }
    let streaming =
        TimeDelta::from_std(ctx.cluster.timing.cassandra_join).unwrap_or(TimeDelta::MAX);
    ring.decommissions.insert(
        pod.name.clone(),
        super::Decommission {
            pod_uid: pod.uid.clone(),
            done_at: ctx.now + streaming,
        },
    );
    ExecOutput::default()
}

fn removenode(ctx: &Context, ring: &mut Ring, pod: &PodView, args: &[String]) -> ExecOutput {
    let Some(target) = args.first() else {
        return bad_use("Missing required parameter: <status>|<force>|<ID>");
    };
    match target.as_str() {
        "status" | "force" => {
            return ExecOutput::stdout("RemovalStatus: No removals in process.\n");
        }
        _ => {}
    }
    let nodes = ring.refresh(ctx);
    let Some(node) = nodes.iter().find(|n| &n.host_id == target) else {
        return operation_error(
            "java.lang.UnsupportedOperationException",
            "Host ID not found.",
            "removeNode",
        );
    };
    if node.name == pod.name {
        return operation_error(
            "java.lang.UnsupportedOperationException",
            "Cannot remove self",
            "removeNode",
        );
    }
    if node.up {
        let message = format!(
            "Node /{}:7000 is alive and owns this ID. Use decommission command to remove it from the ring",
            node.ip
        );
        return operation_error(
            "java.lang.UnsupportedOperationException",
            &message,
            "removeNode",
        );
    }
    ring.members.remove(&node.name);
    ExecOutput::default()
}

fn netstats(ctx: &Context, ring: &mut Ring, pod: &PodView) -> ExecOutput {
    let nodes = ring.refresh(ctx);
    let mode = mode(ring, &nodes, pod);
    let mut out = format!("Mode: {mode}\n");
    let peer = nodes
        .iter()
        .find(|n| n.name != pod.name && n.up)
        .map(|n| n.ip.clone());
    match (mode, peer) {
        ("LEAVING", Some(peer)) => out.push_str(&format!(
            "Unbootstrap {}\n    /{peer}\n        Sending 24 files, 3221225472 bytes total. Already sent 9 files, 1207959552 bytes total\n",
            super::host_id(ctx.namespace, &format!("{}-stream", pod.name))
        )),
        ("JOINING", Some(peer)) => out.push_str(&format!(
            "Bootstrap {}\n    /{peer}\n        Receiving 24 files, 3221225472 bytes total. Already received 9 files, 1207959552 bytes total\n",
            super::host_id(ctx.namespace, &format!("{}-stream", pod.name))
        )),
        _ => out.push_str("Not sending any streams.\n"),
    }
    out.push_str(
        "Read Repair Statistics:\nAttempted: 0\nMismatch (Blocking): 0\nMismatch (Background): 0\n\
         Pool Name                    Active   Pending      Completed   Dropped\n\
         Large messages                  n/a         0              0         0\n\
         Small messages                  n/a         0         182734         0\n\
         Gossip messages                 n/a         0          40211         0\n",
    );
    ExecOutput::stdout(out)
}
