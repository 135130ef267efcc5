//! `nodetool repair` and `nodetool describecluster`.

use chrono::{DateTime, TimeDelta, Utc};

use super::nodetool::{OPERATION_FAILED, bad_use};
use super::{
    CLUSTER_NAME, DATACENTER, KEYSPACES, NUM_TOKENS, Node, NodeState, RELEASE_VERSION, Ring,
};
use crate::programs::ids::{stable_hash, stable_uuid};
use crate::programs::pods::PodView;
use crate::programs::{Context, ExecOutput};

/// Simulated time one repair session takes.
const SESSION_MILLIS: i64 = 1_350;

fn timestamp(at: DateTime<Utc>) -> String {
    at.format("[%Y-%m-%d %H:%M:%S,%3f]").to_string()
}

/// Options of one `nodetool repair` run.
struct RepairOptions {
    keyspaces: Vec<(&'static str, usize)>,
    full: bool,
    primary_range: bool,
}

fn parse_options(args: &[String]) -> Result<RepairOptions, ExecOutput> {
    let mut full = false;
    let mut primary_range = false;
    let mut positional = Vec::new();
    for arg in args {
        match arg.as_str() {
            "-full" | "--full" => full = true,
            "-pr" | "--partitioner-range" => primary_range = true,
            "-seq" | "--sequential" | "-par" | "--parallel" => {}
            flag if flag.starts_with('-') => {
                return Err(bad_use(&format!("Found unexpected parameters: [{flag}]")));
            }
            other => positional.push(other),
        }
    }
    let keyspaces = match positional.first() {
        None => KEYSPACES.to_vec(),
        Some(name) => match KEYSPACES.iter().find(|(k, _)| k == name) {
            Some(keyspace) => vec![*keyspace],
            None => return Err(bad_use(&format!("Keyspace [{name}] does not exist."))),
        },
    };
    Ok(RepairOptions {
        keyspaces,
        full,
        primary_range,
    })
}

/// Runs a repair coordinated by `pod` and prints its whole progress at
/// once, with timestamps as the real run would produce them. Every node of
/// the ring must be up, as Cassandra requires of the replicas it repairs.
pub(super) fn repair(ctx: &Context, ring: &mut Ring, pod: &PodView, args: &[String]) -> ExecOutput {
    let options = match parse_options(args) {
        Ok(options) => options,
        Err(usage) => return usage,
    };
    let nodes = ring.refresh(ctx);
    let down = nodes.iter().find(|n| !n.up).map(|n| n.ip.clone());
    let mut out = String::new();
    let mut at = ctx.now;
    for (keyspace, replication) in &options.keyspaces {
        let counter = ring.repair_commands.entry(pod.name.clone()).or_insert(0);
        *counter += 1;
        let command = *counter;
        let started = at;
        let ranges = if options.primary_range {
            NUM_TOKENS
        } else {
            NUM_TOKENS * *replication as u32
        };
        let id = stable_uuid(&[ctx.namespace, &pod.name, "repair", &command.to_string()]);
        out.push_str(&format!(
            "{} Starting repair command #{command} ({id}), repairing keyspace {keyspace} with repair options \
             (parallelism: parallel, primary range: {}, incremental: {}, job threads: 1, ColumnFamilies: [], \
             dataCenters: [], hosts: [], previewKind: NONE, # of ranges: {ranges}, pull repair: false, \
             force repair: false, optimise streams: false, ignore unreplicated keyspaces: false, \
             repairPaxos: true, paxosOnly: false)\n",
            timestamp(at),
            options.primary_range,
            !options.full,
        ));
        if let Some(ip) = &down {
            return failed(out, at, command, ip);
        }
        at = sessions(ctx, &nodes, keyspace, command, at, &mut out);
        out.push_str(&format!(
            "{} Repair completed successfully\n",
            timestamp(at)
        ));
        // nodetool times each repair command from its own start.
        let seconds = (at - started).num_seconds().max(1);
        out.push_str(&format!(
            "{} Repair command #{command} finished in {seconds} second{}\n",
            timestamp(at + TimeDelta::milliseconds(4)),
            if seconds == 1 { "" } else { "s" }
        ));
        at += TimeDelta::milliseconds(20);
    }
    ExecOutput::stdout(out)
}

/// Appends one session line per replica neighbour and returns the time the
/// last one finished.
fn sessions(
    ctx: &Context,
    nodes: &[Node],
    keyspace: &str,
    command: u32,
    start: DateTime<Utc>,
    out: &mut String,
) -> DateTime<Utc> {
    let members: Vec<&Node> = nodes
        .iter()
        .filter(|n| n.state != NodeState::Joining)
        .collect();
    let count = members.len().max(1);
    let mut at = start;
    for (i, node) in members.iter().enumerate() {
        at += TimeDelta::milliseconds(SESSION_MILLIS);
        let seed = stable_hash(&[ctx.namespace, keyspace, &node.name, &command.to_string()]);
        // Murmur3 tokens are signed 64-bit; a range is (first, second].
        let first = (seed as i64) >> 1;
        let second = first.saturating_add(((seed >> 20) % 1_000_000_000_000) as i64);
        let session = stable_uuid(&[
            ctx.namespace,
            keyspace,
            &node.name,
            "session",
            &command.to_string(),
        ]);
        out.push_str(&format!(
            "{} Repair session {session} for range [({first},{second}]] finished (progress: {}%)\n",
            timestamp(at),
            (i + 1) * 100 / count
        ));
    }
    at
}

/// Builds the output of a repair that found a replica down: progress lines on
/// stdout, the error on stderr, exit status 2.
fn failed(mut out: String, at: DateTime<Utc>, command: u32, ip: &str) -> ExecOutput {
    let reason = format!("Endpoint not alive: /{ip}:7000");
    out.push_str(&format!(
        "{} Repair command #{command} failed with error {reason}\n",
        timestamp(at + TimeDelta::milliseconds(12))
    ));
    out.push_str(&format!(
        "{} Repair command #{command} finished with error\n",
        timestamp(at + TimeDelta::milliseconds(14))
    ));
    let message = format!(
        "Repair job has failed with the error message: Repair command #{command} failed with error {reason}. \
         Check the logs on the repair participants for further details"
    );
    ExecOutput {
        stdout: out.into_bytes(),
        stderr: format!(
            "error: {message}\n-- StackTrace --\njava.lang.RuntimeException: {message}\n\tat org.apache.cassandra.tools.RepairRunner.handleNotification(RepairRunner.java)\n"
        )
        .into_bytes(),
        exit_code: OPERATION_FAILED,
    }
}

pub(super) fn describecluster(ctx: &Context, ring: &mut Ring) -> ExecOutput {
    let nodes = ring.refresh(ctx);
    let live: Vec<&str> = nodes
        .iter()
        .filter(|n| n.up)
        .map(|n| n.ip.as_str())
        .collect();
    let unreachable: Vec<&str> = nodes
        .iter()
        .filter(|n| !n.up)
        .map(|n| n.ip.as_str())
        .collect();
    let count = |state: NodeState| nodes.iter().filter(|n| n.state == state).count();
    let schema = stable_uuid(&[ctx.namespace, "schema-version"]);

    let mut out = format!(
        "Cluster Information:\n\tName: {CLUSTER_NAME}\n\tSnitch: org.apache.cassandra.locator.GossipingPropertyFileSnitch\n\
         \tDynamicEndPointSnitch: enabled\n\tPartitioner: org.apache.cassandra.dht.Murmur3Partitioner\n\
         \tSchema versions:\n\t\t{schema}: [{}]\n\n",
        live.join(", ")
    );
    if !unreachable.is_empty() {
        out.push_str(&format!(
            "\t\tUNREACHABLE: [{}]\n\n",
            unreachable.join(", ")
        ));
    }
    out.push_str(&format!(
        "Stats for all nodes:\n\tLive: {}\n\tJoining: {}\n\tMoving: 0\n\tLeaving: {}\n\tUnreachable: {}\n\n",
        live.len(),
        count(NodeState::Joining),
        count(NodeState::Leaving),
        unreachable.len()
    ));
    out.push_str(&format!(
        "Data Centers: \n\t{DATACENTER} #Nodes: {} #Down: {}\n\n",
        nodes.len(),
        unreachable.len()
    ));
    let addresses: Vec<String> = live.iter().map(|ip| format!("{ip}:7000")).collect();
    out.push_str(&format!(
        "Database versions:\n\t{RELEASE_VERSION}: [{}]\n\nKeyspaces:\n",
        addresses.join(", ")
    ));
    for (keyspace, replication) in KEYSPACES {
        out.push_str(&format!(
            "\t{keyspace} -> Replication class: NetworkTopologyStrategy {{{DATACENTER}={replication}}}\n"
        ));
    }
    ExecOutput::stdout(out)
}
