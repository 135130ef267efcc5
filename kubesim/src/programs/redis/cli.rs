//! `redis-cli` argument handling and the plain commands: `PING`,
//! `CLUSTER INFO`, `CLUSTER NODES`, `CLUSTER MYID`, `DBSIZE` and `ROLE`.
//! Output is what redis-cli prints without a terminal, as under
//! `kubectl exec` without `-t`: raw replies, so `CLUSTER INFO` lines end in
//! `\r\n`.

use super::manager;
use super::{Live, PORT, RedisCluster, SLOTS, node_id, slot_ranges};
use crate::programs::pods::{self, PodView, Software};
use crate::programs::{Context, ExecOutput, ProgramState};

/// Returns the pod behind `host`, or the error redis-cli prints when it cannot
/// connect.
pub(super) fn connect(ctx: &Context, host: &str, port: &str) -> Result<PodView, ExecOutput> {
    let refused = |reason: &str| {
        ExecOutput::failure(
            1,
            format!("Could not connect to Redis at {host}:{port}: {reason}\n"),
        )
    };
    let Some(pod) = pods::resolve_host(ctx.cluster, ctx.namespace, ctx.pod, host) else {
        return Err(refused("Name or service not known"));
    };
    if pod.software() != Software::Redis || !pod.ready || port != PORT.to_string() {
        return Err(refused("Connection refused"));
    }
    Ok(pod)
}

/// The server redis-cli talks to and the arguments after the connection
/// options.
struct Connection<'a> {
    host: String,
    port: String,
    rest: &'a [String],
}

fn parse_connection(args: &[String]) -> Result<Connection<'_>, ExecOutput> {
    let mut connection = Connection {
        host: "127.0.0.1".to_string(),
        port: PORT.to_string(),
        rest: args,
    };
    while let Some((flag, tail)) = connection.rest.split_first() {
        match flag.as_str() {
            "-h" | "-p" | "-a" | "-n" | "--user" | "--pass" => {
                let Some((value, tail)) = tail.split_first() else {
                    return Err(ExecOutput::failure(
                        1,
                        format!("Unrecognized option or bad number of args for: '{flag}'\n"),
                    ));
                };
                match flag.as_str() {
                    "-h" => connection.host = value.clone(),
                    "-p" => connection.port = value.clone(),
                    _ => {}
                }
                connection.rest = tail;
            }
            "-c" | "--no-auth-warning" | "--raw" | "--no-raw" => connection.rest = tail,
            _ => break,
        }
    }
    Ok(connection)
}

/// Runs `redis-cli ARGS` in the Redis pod of `ctx`.
pub(crate) fn redis_cli(ctx: &Context, state: &mut ProgramState, args: &[String]) -> ExecOutput {
    let Connection { host, port, rest } = match parse_connection(args) {
        Ok(connection) => connection,
        Err(output) => return output,
    };
    let cluster = state
        .redis
        .entry(ctx.namespace.to_string())
        .or_insert_with(|| RedisCluster::create(ctx.namespace, ctx.pod.workload()));
    if let Some(("--cluster", tail)) = rest
        .split_first()
        .map(|(first, tail)| (first.as_str(), tail))
    {
        return manager::run(ctx, cluster, tail);
    }
    let target = match connect(ctx, &host, &port) {
        Ok(pod) => pod,
        Err(output) => return output,
    };
    let words: Vec<String> = rest.iter().map(|w| w.to_lowercase()).collect();
    let words: Vec<&str> = words.iter().map(String::as_str).collect();
    match words.as_slice() {
        [] => ExecOutput::failure(
            1,
            "redis-cli: an interactive session needs a terminal; pass a command\n",
        ),
        ["ping"] => ExecOutput::stdout("PONG\n"),
        ["cluster", "info"] => ExecOutput::stdout(cluster_info(ctx, cluster, &target)),
        ["cluster", "nodes"] => ExecOutput::stdout(cluster_nodes(ctx, cluster, &target)),
        ["cluster", "myid"] => {
            ExecOutput::stdout(format!("{}\n", node_id(ctx.namespace, &target.name)))
        }
        ["dbsize"] => ExecOutput::stdout(format!("{}\n", dbsize(cluster, &target))),
        ["role"] => ExecOutput::stdout(role(ctx, cluster, &target)),
        [command, ..] => {
            let args: Vec<String> = rest[1..].iter().map(|a| format!("'{a}' ")).collect();
            ExecOutput::failure(
                1,
                format!(
                    "ERR unknown command '{command}', with args beginning with: {}\n",
                    args.concat()
                ),
            )
        }
    }
}

fn dbsize(cluster: &RedisCluster, pod: &PodView) -> u64 {
    let Some(index) = cluster.index(&pod.name) else {
        return 0;
    };
    let master = match &cluster.nodes[index].replica_of {
        Some(master) => cluster.index(master).unwrap_or(index),
        None => index,
    };
    cluster.keys_of(master)
}

fn role(ctx: &Context, cluster: &RedisCluster, pod: &PodView) -> String {
    let live = Live::new(ctx, cluster);
    match cluster
        .index(&pod.name)
        .map(|i| cluster.nodes[i].replica_of.clone())
    {
        Some(Some(master)) => {
            let address = cluster
                .index(&master)
                .map(|m| live.address(m))
                .unwrap_or_default();
            let (ip, _) = address.split_once(':').unwrap_or(("", ""));
            format!("slave\n{ip}\n{PORT}\nconnected\n1048576\n")
        }
        _ => "master\n1048576\n".to_string(),
    }
}

fn cluster_info(ctx: &Context, cluster: &RedisCluster, pod: &PodView) -> String {
    let live = Live::new(ctx, cluster);
    let me = cluster.index(&pod.name);
    let (state, assigned, ok, fail, known, size, my_epoch) = match me {
        None => ("fail", 0, 0, 0, 1, 0, 0),
        Some(index) => {
            let ok = cluster
                .slot_owner
                .iter()
                .filter(|o| live.is_up(**o))
                .count();
            let size = (0..cluster.nodes.len())
                .filter(|i| cluster.is_master(*i) && cluster.slot_owner.contains(i))
                .count();
            let state = if live.all_slots_covered() {
                "ok"
            } else {
                "fail"
            };
            (
                state,
                SLOTS,
                ok,
                SLOTS - ok,
                cluster.nodes.len(),
                size,
                cluster.nodes[index].config_epoch,
            )
        }
    };
    let current_epoch = if me.is_some() {
        cluster.current_epoch
    } else {
        0
    };
    let messages = 1_200 * known as u64 + ctx.now.timestamp() as u64 % 1_000;
    let lines = [
        format!("cluster_state:{state}"),
        format!("cluster_slots_assigned:{assigned}"),
        format!("cluster_slots_ok:{ok}"),
        "cluster_slots_pfail:0".to_string(),
        format!("cluster_slots_fail:{fail}"),
        format!("cluster_known_nodes:{known}"),
        format!("cluster_size:{size}"),
        format!("cluster_current_epoch:{current_epoch}"),
        format!("cluster_my_epoch:{my_epoch}"),
        format!("cluster_stats_messages_ping_sent:{messages}"),
        format!("cluster_stats_messages_pong_sent:{}", messages - 3),
        format!("cluster_stats_messages_sent:{}", 2 * messages - 3),
        format!("cluster_stats_messages_ping_received:{}", messages - 3),
        format!("cluster_stats_messages_pong_received:{messages}"),
        format!("cluster_stats_messages_received:{}", 2 * messages - 3),
        "total_cluster_links_buffer_limit_exceeded:0".to_string(),
    ];
    lines
        .iter()
        .map(|line| format!("{line}\r\n"))
        .collect::<String>()
        + "\n"
}

fn cluster_nodes(ctx: &Context, cluster: &RedisCluster, pod: &PodView) -> String {
    let Some(me) = cluster.index(&pod.name) else {
        let ip = pod.ip.as_deref().unwrap_or("");
        return format!(
            "{} {ip}:{PORT}@16379 myself,master - 0 0 0 connected\n",
            node_id(ctx.namespace, &pod.name)
        );
    };
    let live = Live::new(ctx, cluster);
    (0..cluster.nodes.len())
        .map(|index| node_line(ctx, &live, index, me) + "\n")
        .collect()
}

/// Formats one `CLUSTER NODES` line: ID, address, flags, master, ping sent, pong
/// received, config epoch, link state and slot ranges.
fn node_line(ctx: &Context, live: &Live, index: usize, me: usize) -> String {
    let cluster = live.cluster;
    let node = &cluster.nodes[index];
    let mut flags = Vec::new();
    if index == me {
        flags.push("myself");
    }
    flags.push(if node.replica_of.is_some() {
        "slave"
    } else {
        "master"
    });
    let link = if live.is_up(index) {
        "connected"
    } else {
        flags.push("fail");
        "disconnected"
    };
    let master = node
        .replica_of
        .as_ref()
        .and_then(|m| cluster.index(m))
        .map_or("-".to_string(), |m| cluster.nodes[m].id.clone());
    let pong = if index == me {
        0
    } else {
        ctx.now.timestamp_millis() - (index as i64 * 37) % 1000
    };
    let mut line = format!(
        "{} {}@16379 {} {master} 0 {pong} {} {link}",
        node.id,
        live.address(index),
        flags.join(","),
        node.config_epoch
    );
    for (start, end) in slot_ranges(&cluster.slots_of(index)) {
        if start == end {
            line.push_str(&format!(" {start}"));
        } else {
            line.push_str(&format!(" {start}-{end}"));
        }
    }
    line
}
