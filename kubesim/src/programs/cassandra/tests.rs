use std::time::Duration;

use crate::programs::Programs;
use crate::programs::pods::PODS;
use crate::programs::testing::{NAMESPACE, cluster, exec, pod, statefulset, stdout_of};

/// One parsed row of `nodetool status`, read the way a consumer would: by
/// the state code, the address and the UUID-shaped Host ID column.
#[derive(Debug)]
struct Row {
    code: String,
    address: String,
    load: String,
    owns: String,
    host_id: String,
}

fn rows(output: &str) -> Vec<Row> {
    output
        .lines()
        .filter(|line| {
            let code = line.split_whitespace().next().unwrap_or("");
            code.len() == 2 && "UD".contains(&code[..1]) && "NLJM".contains(&code[1..])
        })
        .map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let id_at = fields
                .iter()
                .position(|f| f.len() == 36 && f.matches('-').count() == 4)
                .expect("a host ID column");
            Row {
                code: fields[0].to_string(),
                address: fields[1].to_string(),
                load: fields[2..id_at - 2].join(" "),
                owns: fields[id_at - 1].to_string(),
                host_id: fields[id_at].to_string(),
            }
        })
        .collect()
}

fn status(programs: &Programs, cluster: &crate::cluster::Cluster) -> Vec<Row> {
    rows(&stdout_of(exec(
        programs,
        cluster,
        "cassandra-0",
        &["nodetool", "status"],
    )))
}

fn owns_sum(rows: &[Row]) -> f64 {
    rows.iter()
        .filter_map(|r| r.owns.trim_end_matches('%').parse::<f64>().ok())
        .sum()
}

#[test]
fn status_lists_ready_nodes() {
    let cluster = cluster();
    statefulset(&cluster, "cassandra", 3, 1);
    let programs = Programs::default();

    let output = stdout_of(exec(
        &programs,
        &cluster,
        "cassandra-0",
        &["nodetool", "status"],
    ));
    assert!(
        output.starts_with("Datacenter: dc1\n===============\nStatus=Up/Down\n"),
        "{output}"
    );
    assert!(output.contains("--  Address"), "{output}");

    let rows = rows(&output);
    let codes: Vec<&str> = rows.iter().map(|r| r.code.as_str()).collect();
    assert_eq!(codes, vec!["UN", "UN", "UN"]);
    let addresses: Vec<&str> = rows.iter().map(|r| r.address.as_str()).collect();
    assert_eq!(addresses, vec!["10.244.1.10", "10.244.1.11", "10.244.1.12"]);
    assert!((owns_sum(&rows) - 100.0).abs() < 0.5, "{rows:?}");
    assert!(rows.iter().all(|r| r.load.ends_with("GiB")), "{rows:?}");

    let again = status(&programs, &cluster);
    let ids: Vec<&str> = rows.iter().map(|r| r.host_id.as_str()).collect();
    let ids_again: Vec<&str> = again.iter().map(|r| r.host_id.as_str()).collect();
    assert_eq!(ids, ids_again);
    assert_ne!(ids[0], ids[1]);
}

#[test]
fn joining_node_becomes_normal() {
    let cluster = cluster();
    statefulset(&cluster, "cassandra", 3, 1);
    pod("cassandra-3", "cassandra", "10.244.2.13")
        .ready_for(1)
        .create(&cluster);
    let programs = Programs::default();

    let rows = status(&programs, &cluster);
    assert_eq!(rows[3].code, "UJ");
    assert_eq!(rows[3].owns, "?");
    assert!((owns_sum(&rows) - 100.0).abs() < 0.5);

    programs.advance_clock(Duration::from_secs(6));
    let rows = status(&programs, &cluster);
    let codes: Vec<&str> = rows.iter().map(|r| r.code.as_str()).collect();
    assert_eq!(codes, vec!["UN", "UN", "UN", "UN"]);
    assert!((owns_sum(&rows) - 100.0).abs() < 0.5);
}

#[test]
fn decommission_leaves_then_disappears() {
    let cluster = cluster();
    statefulset(&cluster, "cassandra", 4, 1);
    let programs = Programs::default();

    let output = exec(
        &programs,
        &cluster,
        "cassandra-3",
        &["nodetool", "decommission"],
    );
    assert_eq!(output.exit_code, 0, "{}", output.stderr_text());
    assert!(output.stdout.is_empty());

    let rows = status(&programs, &cluster);
    assert_eq!(rows[3].code, "UL");
    assert_eq!(rows[3].address, "10.244.1.13");

    programs.advance_clock(Duration::from_secs(6));
    let rows = status(&programs, &cluster);
    let addresses: Vec<&str> = rows.iter().map(|r| r.address.as_str()).collect();
    assert_eq!(addresses, vec!["10.244.1.10", "10.244.1.11", "10.244.1.12"]);
    assert!((owns_sum(&rows) - 100.0).abs() < 0.5);

    let again = exec(
        &programs,
        &cluster,
        "cassandra-3",
        &["nodetool", "decommission"],
    );
    assert_eq!(again.exit_code, 2);
    assert!(
        again
            .stderr_text()
            .starts_with("error: Node in DECOMMISSIONED state"),
        "{}",
        again.stderr_text()
    );
}

#[test]
fn decommission_keeps_replication_factor() {
    let cluster = cluster();
    statefulset(&cluster, "cassandra", 3, 1);
    let programs = Programs::default();

    let output = exec(
        &programs,
        &cluster,
        "cassandra-2",
        &["nodetool", "decommission"],
    );
    assert_eq!(output.exit_code, 2);
    assert!(
        output
            .stderr_text()
            .contains("Not enough live nodes to maintain replication factor in keyspace butterfly (RF = 3, N = 3)"),
        "{}",
        output.stderr_text()
    );

    let forced = exec(
        &programs,
        &cluster,
        "cassandra-2",
        &["nodetool", "decommission", "--force"],
    );
    assert_eq!(forced.exit_code, 0);
}

#[test]
fn deleted_member_is_down_until_removed() {
    let cluster = cluster();
    statefulset(&cluster, "cassandra", 4, 1);
    let programs = Programs::default();
    let before = status(&programs, &cluster);

    cluster
        .store
        .delete(PODS, NAMESPACE, "cassandra-3")
        .unwrap();
    let rows = status(&programs, &cluster);
    assert_eq!(rows[3].code, "DN");
    assert_eq!(rows[3].load, "?");
    assert_eq!(rows[3].address, "10.244.1.13");

    let host_id = before[3].host_id.clone();
    let removed = exec(
        &programs,
        &cluster,
        "cassandra-0",
        &["nodetool", "removenode", &host_id],
    );
    assert_eq!(removed.exit_code, 0, "{}", removed.stderr_text());
    assert_eq!(status(&programs, &cluster).len(), 3);

    let alive = exec(
        &programs,
        &cluster,
        "cassandra-0",
        &["nodetool", "removenode", &before[1].host_id],
    );
    assert_eq!(alive.exit_code, 2);
    assert!(alive.stderr_text().contains("is alive and owns this ID"));
}

#[test]
fn repair_prints_progress_per_keyspace() {
    let cluster = cluster();
    statefulset(&cluster, "cassandra", 3, 1);
    let programs = Programs::default();

    let output = stdout_of(exec(
        &programs,
        &cluster,
        "cassandra-0",
        &["nodetool", "repair"],
    ));
    let starts: Vec<&str> = output
        .lines()
        .filter(|l| l.contains("Starting repair command #"))
        .collect();
    assert_eq!(starts.len(), 4, "{output}");
    assert!(starts[0].contains("repairing keyspace butterfly with repair options"));
    assert!(starts[0].starts_with('['), "{}", starts[0]);
    assert!(
        starts[0].contains("] Starting repair command #1 ("),
        "{}",
        starts[0]
    );
    assert_eq!(output.matches("Repair session ").count(), 12, "{output}");
    assert!(output.contains("Repair command #1 finished in "));
    assert!(output.contains("Repair command #4 finished in "));
    // Each command reports its own duration: three sessions of 1.35 s.
    assert!(
        output.contains("Repair command #4 finished in 4 seconds"),
        "{output}"
    );

    let single = stdout_of(exec(
        &programs,
        &cluster,
        "cassandra-0",
        &["nodetool", "repair", "-full", "butterfly"],
    ));
    assert!(single.contains("Starting repair command #5"), "{single}");
    assert!(single.contains("incremental: false"));
}

#[test]
fn repair_fails_with_node_down() {
    let cluster = cluster();
    statefulset(&cluster, "cassandra", 3, 1);
    let programs = Programs::default();
    status(&programs, &cluster);
    cluster
        .store
        .delete(PODS, NAMESPACE, "cassandra-2")
        .unwrap();

    let output = exec(
        &programs,
        &cluster,
        "cassandra-0",
        &["nodetool", "repair", "butterfly"],
    );
    assert_eq!(output.exit_code, 2);
    assert!(
        output
            .stdout_text()
            .contains("Repair command #1 failed with error Endpoint not alive: /10.244.1.12:7000")
    );
    assert!(
        output
            .stderr_text()
            .starts_with("error: Repair job has failed")
    );
}

#[test]
fn unready_node_refuses_connections() {
    let cluster = cluster();
    pod("cassandra-0", "cassandra", "10.244.1.10")
        .not_ready(30)
        .create(&cluster);
    let programs = Programs::default();

    let output = exec(&programs, &cluster, "cassandra-0", &["nodetool", "status"]);
    assert_eq!(output.exit_code, 1);
    assert!(output.stderr_text().contains("Connection refused"));
}

#[test]
fn bad_usage_exits_one() {
    let cluster = cluster();
    statefulset(&cluster, "cassandra", 1, 1);
    let programs = Programs::default();

    let output = exec(
        &programs,
        &cluster,
        "cassandra-0",
        &["nodetool", "frobnicate"],
    );
    assert_eq!(output.exit_code, 1);
    assert!(
        output
            .stderr_text()
            .starts_with("nodetool: Found unexpected parameters: [frobnicate]")
    );
    let output = exec(&programs, &cluster, "cassandra-0", &["nodetool"]);
    assert_eq!(output.exit_code, 1);
    assert!(output.stderr_text().starts_with("usage: nodetool"));
}

#[test]
fn describecluster_and_netstats() {
    let cluster = cluster();
    statefulset(&cluster, "cassandra", 3, 1);
    let programs = Programs::default();

    let describe = stdout_of(exec(
        &programs,
        &cluster,
        "cassandra-1",
        &["nodetool", "describecluster"],
    ));
    assert!(
        describe.contains("\tName: butterfly-cassandra\n"),
        "{describe}"
    );
    assert!(describe.contains("\tLive: 3\n"));
    let netstats = stdout_of(exec(
        &programs,
        &cluster,
        "cassandra-1",
        &["nodetool", "netstats"],
    ));
    assert!(netstats.starts_with("Mode: NORMAL\n"), "{netstats}");
}
