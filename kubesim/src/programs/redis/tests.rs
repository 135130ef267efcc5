use crate::cluster::Cluster;
use crate::programs::Programs;
use crate::programs::testing::{cluster, exec, pod, statefulset, stdout_of};

const ENTRY: &str = "redis-0.redis.butterfly.svc.cluster.local:6379";

fn redis_cli(programs: &Programs, cluster: &Cluster, args: &[&str]) -> crate::programs::ExecOutput {
    let mut argv = vec!["redis-cli"];
    argv.extend_from_slice(args);
    exec(programs, cluster, "redis-0", &argv)
}

/// `key:value` fields of `CLUSTER INFO`, with the `\r` line ends removed.
fn info_field(output: &str, key: &str) -> String {
    output
        .lines()
        .map(|l| l.trim_end_matches('\r'))
        .find_map(|l| l.strip_prefix(&format!("{key}:")).map(str::to_string))
        .unwrap_or_else(|| panic!("no {key} in {output:?}"))
}

/// Slot counts per master from `--cluster check`'s summary lines
/// (`host:6379 (id...) -> N keys | S slots | R slaves.`).
fn master_slots(output: &str) -> Vec<usize> {
    output
        .lines()
        .filter(|l| l.contains(" slots | "))
        .map(|l| {
            let after = l.split(" keys | ").nth(1).expect("keys column");
            after
                .split(' ')
                .next()
                .unwrap()
                .parse()
                .expect("slot count")
        })
        .collect()
}

#[test]
fn initial_cluster_info() {
    let cluster = cluster();
    statefulset(&cluster, "redis", 6, 5);
    let programs = Programs::default();

    let output = stdout_of(redis_cli(&programs, &cluster, &["cluster", "info"]));
    assert!(output.contains("\r\n"), "raw reply lines end in CRLF");
    assert_eq!(info_field(&output, "cluster_state"), "ok");
    assert_eq!(info_field(&output, "cluster_slots_assigned"), "16384");
    assert_eq!(info_field(&output, "cluster_known_nodes"), "6");
    assert_eq!(info_field(&output, "cluster_size"), "3");

    let nodes = stdout_of(redis_cli(&programs, &cluster, &["cluster", "nodes"]));
    assert_eq!(nodes.lines().count(), 6);
    let myself = nodes.lines().find(|l| l.contains("myself")).unwrap();
    assert!(
        myself.contains("10.244.5.10:6379@16379 myself,master - 0 0 1 connected 0-5460"),
        "{myself}"
    );
    assert_eq!(nodes.lines().filter(|l| l.contains(" slave ")).count(), 3);
}

#[test]
fn check_reports_three_masters() {
    let cluster = cluster();
    statefulset(&cluster, "redis", 6, 5);
    let programs = Programs::default();

    let output = stdout_of(redis_cli(
        &programs,
        &cluster,
        &["--cluster", "check", ENTRY],
    ));
    assert_eq!(master_slots(&output), vec![5461, 5462, 5461]);
    assert!(output.contains(" slots | 1 slaves.\n"), "{output}");
    assert!(output.contains(&format!(
        ">>> Performing Cluster Check (using node {ENTRY})\n"
    )));
    assert!(
        output.contains("   slots:[0-5460] (5461 slots) master\n   1 additional replica(s)\n"),
        "{output}"
    );
    assert!(output.ends_with("[OK] All 16384 slots covered.\n"));
}

#[test]
fn add_node_then_rebalance() {
    let cluster = cluster();
    statefulset(&cluster, "redis", 8, 5);
    let programs = Programs::default();

    let standalone = stdout_of(exec(
        &programs,
        &cluster,
        "redis-6",
        &["redis-cli", "cluster", "info"],
    ));
    assert_eq!(info_field(&standalone, "cluster_state"), "fail");
    assert_eq!(info_field(&standalone, "cluster_known_nodes"), "1");

    let added = stdout_of(redis_cli(
        &programs,
        &cluster,
        &[
            "--cluster",
            "add-node",
            "redis-6.redis.butterfly.svc.cluster.local:6379",
            ENTRY,
        ],
    ));
    assert!(added.starts_with(&format!(
        ">>> Adding node redis-6.redis.butterfly.svc.cluster.local:6379 to cluster {ENTRY}\n"
    )));
    assert!(
        added.ends_with("[OK] New node added correctly.\n"),
        "{added}"
    );
    let replica = stdout_of(redis_cli(
        &programs,
        &cluster,
        &[
            "--cluster",
            "add-node",
            "10.244.5.17:6379",
            ENTRY,
            "--cluster-slave",
        ],
    ));
    assert!(
        replica.contains(">>> Configure node as replica of "),
        "{replica}"
    );

    let again = redis_cli(
        &programs,
        &cluster,
        &["--cluster", "add-node", "10.244.5.16:6379", ENTRY],
    );
    assert_eq!(again.exit_code, 1);
    assert!(
        again
            .stdout_text()
            .contains("[ERR] Node 10.244.5.16:6379 is not empty.")
    );

    let skipped = stdout_of(redis_cli(
        &programs,
        &cluster,
        &["--cluster", "rebalance", ENTRY],
    ));
    assert!(
        skipped.ends_with("*** No rebalancing needed! All nodes are within the 2.00% threshold.\n"),
        "{skipped}"
    );

    let rebalanced = stdout_of(redis_cli(
        &programs,
        &cluster,
        &[
            "--cluster",
            "rebalance",
            ENTRY,
            "--cluster-use-empty-masters",
        ],
    ));
    assert!(
        rebalanced.contains(">>> Rebalancing across 4 nodes. Total weight = 4.00\n"),
        "{rebalanced}"
    );
    let moves: Vec<&str> = rebalanced
        .lines()
        .filter(|l| l.starts_with("Moving "))
        .collect();
    assert_eq!(moves.len(), 3, "{rebalanced}");
    assert!(
        moves[0].starts_with("Moving 1366 slots from 10.244.5.11:6379 to 10.244.5.16:6379"),
        "{}",
        moves[0]
    );
    let bars: Vec<usize> = rebalanced
        .lines()
        .filter(|l| l.starts_with('#'))
        .map(str::len)
        .collect();
    assert_eq!(bars.iter().sum::<usize>(), 4096);

    let check = stdout_of(redis_cli(
        &programs,
        &cluster,
        &["--cluster", "check", ENTRY],
    ));
    let slots = master_slots(&check);
    assert_eq!(slots.len(), 4);
    assert_eq!(slots.iter().sum::<usize>(), 16384);
    assert!(slots.iter().all(|s| (4095..=4097).contains(s)), "{slots:?}");
    let info = stdout_of(redis_cli(&programs, &cluster, &["cluster", "info"]));
    assert_eq!(info_field(&info, "cluster_size"), "4");
    assert_eq!(info_field(&info, "cluster_known_nodes"), "8");

    let again = stdout_of(redis_cli(
        &programs,
        &cluster,
        &[
            "--cluster",
            "rebalance",
            ENTRY,
            "--cluster-use-empty-masters",
        ],
    ));
    assert!(again.contains("*** No rebalancing needed!"), "{again}");
}

#[test]
fn del_node_requires_empty_node() {
    let cluster = cluster();
    statefulset(&cluster, "redis", 6, 5);
    let programs = Programs::default();
    let ids = stdout_of(redis_cli(&programs, &cluster, &["cluster", "nodes"]));
    let id_of = |address: &str| {
        ids.lines()
            .find(|l| l.contains(address))
            .and_then(|l| l.split(' ').next())
            .unwrap()
            .to_string()
    };

    let master = redis_cli(
        &programs,
        &cluster,
        &["--cluster", "del-node", ENTRY, &id_of("10.244.5.11:6379")],
    );
    assert_eq!(master.exit_code, 1);
    assert!(
        master
            .stdout_text()
            .contains("is not empty! Reshard data away and try again.")
    );

    let replica = stdout_of(redis_cli(
        &programs,
        &cluster,
        &["--cluster", "del-node", ENTRY, &id_of("10.244.5.15:6379")],
    ));
    assert!(replica.ends_with(">>> Sending CLUSTER RESET SOFT to the deleted node.\n"));
    let info = stdout_of(redis_cli(&programs, &cluster, &["cluster", "info"]));
    assert_eq!(info_field(&info, "cluster_known_nodes"), "5");
}

#[test]
fn down_master_fails_cluster() {
    let cluster = cluster();
    statefulset(&cluster, "redis", 2, 5);
    pod("redis-2", "redis", "10.244.5.12")
        .not_ready(10)
        .create(&cluster);
    let programs = Programs::default();

    let info = stdout_of(redis_cli(&programs, &cluster, &["cluster", "info"]));
    assert_eq!(info_field(&info, "cluster_state"), "fail");
    assert_eq!(info_field(&info, "cluster_slots_fail"), "5461");
    let check = redis_cli(&programs, &cluster, &["--cluster", "check", ENTRY]);
    assert_eq!(check.exit_code, 1);
    assert!(
        check
            .stdout_text()
            .contains("[ERR] Not all 16384 slots are covered by nodes.")
    );
}

#[test]
fn plain_commands_and_errors() {
    let cluster = cluster();
    statefulset(&cluster, "redis", 6, 5);
    let programs = Programs::default();

    assert_eq!(
        stdout_of(redis_cli(&programs, &cluster, &["ping"])),
        "PONG\n"
    );
    let dbsize: u64 = stdout_of(redis_cli(&programs, &cluster, &["dbsize"]))
        .trim()
        .parse()
        .unwrap();
    assert!(dbsize > 5_000, "{dbsize}");
    let unknown = redis_cli(&programs, &cluster, &["frobnicate", "x"]);
    assert_eq!(unknown.exit_code, 1);
    assert!(
        unknown
            .stderr_text()
            .starts_with("ERR unknown command 'frobnicate'")
    );
    let unreachable = redis_cli(&programs, &cluster, &["-h", "redis-9.redis", "ping"]);
    assert_eq!(unreachable.exit_code, 1);
    assert_eq!(
        unreachable.stderr_text(),
        "Could not connect to Redis at redis-9.redis:6379: Name or service not known\n"
    );
}
