use std::time::Duration;

use crate::cluster::Cluster;
use crate::programs::Programs;
use crate::programs::testing::{cluster, exec, pod, sh, statefulset, stdout_of};

const BOOTSTRAP: &str = "localhost:9092";

fn kafka(
    programs: &Programs,
    cluster: &Cluster,
    tool: &str,
    args: &[&str],
) -> crate::programs::ExecOutput {
    let mut argv = vec![tool, "--bootstrap-server", BOOTSTRAP];
    argv.extend_from_slice(args);
    exec(programs, cluster, "kafka-0", &argv)
}

/// Rows of the offsets view as a consumer parses them: whitespace-separated
/// columns, `-` meaning absent.
struct GroupRow {
    partition: Option<u32>,
    lag: Option<u64>,
    consumer_id: String,
    host: String,
}

fn group_rows(output: &str) -> Vec<GroupRow> {
    let mut lines = output.lines().skip_while(|l| !l.starts_with("GROUP "));
    let header: Vec<&str> = lines
        .next()
        .expect("a header line")
        .split_whitespace()
        .collect();
    assert_eq!(
        header,
        vec![
            "GROUP",
            "TOPIC",
            "PARTITION",
            "CURRENT-OFFSET",
            "LOG-END-OFFSET",
            "LAG",
            "CONSUMER-ID",
            "HOST",
            "CLIENT-ID"
        ]
    );
    lines
        .filter(|l| !l.trim().is_empty())
        .map(|line| {
            let cells: Vec<&str> = line.split_whitespace().collect();
            assert_eq!(cells.len(), 9, "{line}");
            GroupRow {
                partition: cells[2].parse().ok(),
                lag: cells[5].parse().ok(),
                consumer_id: cells[6].to_string(),
                host: cells[7].to_string(),
            }
        })
        .collect()
}

fn deployment_pods(cluster: &Cluster, app: &str, count: u32) {
    for i in 0..count {
        pod(
            &format!("{app}-6f7d8c9b5-p{i:03}"),
            app,
            &format!("10.244.7.{}", 20 + i),
        )
        .create(cluster);
    }
}

#[test]
fn broker_api_versions_lists_ready_brokers() {
    let cluster = cluster();
    statefulset(&cluster, "kafka", 3, 2);
    pod("kafka-3", "kafka", "10.244.2.13")
        .not_ready(5)
        .create(&cluster);
    let programs = Programs::default();

    let output = stdout_of(kafka(
        &programs,
        &cluster,
        "kafka-broker-api-versions.sh",
        &[],
    ));
    let headers: Vec<&str> = output.lines().filter(|l| l.ends_with("-> (")).collect();
    assert_eq!(
        headers,
        vec![
            "kafka-0.kafka.butterfly.svc.cluster.local:9092 (id: 0 rack: null) -> (",
            "kafka-1.kafka.butterfly.svc.cluster.local:9092 (id: 1 rack: null) -> (",
            "kafka-2.kafka.butterfly.svc.cluster.local:9092 (id: 2 rack: null) -> (",
        ]
    );
    assert_eq!(output.lines().filter(|l| *l == ")").count(), 3);
    assert!(
        output.contains("\tProduce(0): 0 to 10 [usable: 10],\n"),
        "{output}"
    );
}

#[test]
fn topics_describe_shows_leaders_and_isr() {
    let cluster = cluster();
    statefulset(&cluster, "kafka", 3, 2);
    let programs = Programs::default();

    let output = stdout_of(kafka(
        &programs,
        &cluster,
        "kafka-topics.sh",
        &["--describe", "--topic", "perception.events"],
    ));
    let lines: Vec<&str> = output.lines().collect();
    assert!(
        lines[0].starts_with("Topic: perception.events\tTopicId: "),
        "{output}"
    );
    assert!(lines[0].contains("\tPartitionCount: 12\tReplicationFactor: 3\t"));
    assert_eq!(lines.len(), 13);
    assert_eq!(
        lines[1],
        "\tTopic: perception.events\tPartition: 0\tLeader: 0\tReplicas: 0,1,2\tIsr: 0,1,2"
    );

    let listed = stdout_of(kafka(
        &programs,
        &cluster,
        "kafka-topics.sh",
        &["--list", "--exclude-internal"],
    ));
    assert_eq!(listed, "perception.events\nsynapse.actions\n");

    let missing = kafka(
        &programs,
        &cluster,
        "kafka-topics.sh",
        &["--describe", "--topic", "nope"],
    );
    assert_eq!(missing.exit_code, 1);
    assert!(missing.stderr_text().starts_with(
        "Error while executing topic command : Topic 'nope' does not exist as expected"
    ));
}

#[test]
fn down_broker_leaves_isr() {
    let cluster = cluster();
    statefulset(&cluster, "kafka", 2, 2);
    pod("kafka-2", "kafka", "10.244.2.12")
        .not_ready(5)
        .create(&cluster);
    let programs = Programs::default();

    let output = stdout_of(kafka(
        &programs,
        &cluster,
        "kafka-topics.sh",
        &[
            "--describe",
            "--under-replicated-partitions",
            "--topic",
            "synapse.actions",
        ],
    ));
    assert_eq!(output.lines().count(), 6, "{output}");
    assert!(
        output.contains("\tPartition: 2\tLeader: 0\tReplicas: 2,0,1\tIsr: 0,1\n"),
        "{output}"
    );
}

#[test]
fn consumers_beyond_partitions_stay_idle() {
    let cluster = cluster();
    statefulset(&cluster, "kafka", 3, 2);
    deployment_pods(&cluster, "synapse", 8);
    let programs = Programs::default();

    let output = stdout_of(kafka(
        &programs,
        &cluster,
        "kafka-consumer-groups.sh",
        &["--describe", "--group", "synapse-service"],
    ));
    assert!(output.starts_with('\n'), "{output:?}");
    let rows = group_rows(&output);
    assert_eq!(rows.len(), 8, "{output}");
    let assigned: Vec<&GroupRow> = rows.iter().filter(|r| r.partition.is_some()).collect();
    assert_eq!(assigned.len(), 6);
    let idle: Vec<&GroupRow> = rows.iter().filter(|r| r.partition.is_none()).collect();
    assert_eq!(idle.len(), 2);
    assert!(
        idle.iter()
            .all(|r| r.lag.is_none() && r.consumer_id.starts_with("consumer-synapse-service-1-"))
    );
    let mut partitions: Vec<u32> = assigned.iter().filter_map(|r| r.partition).collect();
    partitions.sort();
    assert_eq!(partitions, vec![0, 1, 2, 3, 4, 5]);
    let consumers: std::collections::BTreeSet<&str> =
        assigned.iter().map(|r| r.consumer_id.as_str()).collect();
    assert_eq!(consumers.len(), 6, "one partition per consumer");
    assert!(rows.iter().all(|r| r.host.starts_with("/10.244.7.")));
}

#[test]
fn fewer_consumers_means_more_lag() {
    let few = cluster();
    statefulset(&few, "kafka", 3, 2);
    deployment_pods(&few, "perception", 3);
    let many = cluster();
    statefulset(&many, "kafka", 3, 2);
    deployment_pods(&many, "perception", 12);
    let programs = Programs::default();
    let args = ["--describe", "--group", "perception-group"];

    let total = |cluster: &Cluster| -> u64 {
        let output = stdout_of(kafka(&programs, cluster, "kafka-consumer-groups.sh", &args));
        group_rows(&output).iter().filter_map(|r| r.lag).sum()
    };
    let (few_lag, many_lag) = (total(&few), total(&many));
    assert!(
        few_lag > many_lag,
        "3 consumers: {few_lag}, 12 consumers: {many_lag}"
    );
    assert!(many_lag > 0);
}

#[test]
fn group_errors_and_empty_group() {
    let cluster = cluster();
    statefulset(&cluster, "kafka", 3, 2);
    let programs = Programs::default();

    let unknown = kafka(
        &programs,
        &cluster,
        "kafka-consumer-groups.sh",
        &["--describe", "--group", "x"],
    );
    assert_eq!(unknown.exit_code, 0);
    assert_eq!(
        unknown.stdout_text(),
        "\nError: Consumer group 'x' does not exist.\n"
    );

    let empty = kafka(
        &programs,
        &cluster,
        "kafka-consumer-groups.sh",
        &["--describe", "--group", "perception-group"],
    );
    assert_eq!(empty.exit_code, 0);
    assert_eq!(
        empty.stderr_text(),
        "\nConsumer group 'perception-group' has no active members.\n"
    );
    let rows = group_rows(&empty.stdout_text());
    assert_eq!(rows.len(), 12);
    assert!(rows.iter().all(|r| r.consumer_id == "-" && r.lag.is_some()));
}

#[test]
fn members_view_counts_partitions() {
    let cluster = cluster();
    statefulset(&cluster, "kafka", 3, 2);
    deployment_pods(&cluster, "synapse", 4);
    let programs = Programs::default();

    let output = stdout_of(kafka(
        &programs,
        &cluster,
        "kafka-consumer-groups.sh",
        &[
            "--describe",
            "--group",
            "synapse-service",
            "--members",
            "--verbose",
        ],
    ));
    let counts: Vec<&str> = output
        .lines()
        .filter(|l| l.starts_with("synapse-service "))
        .map(|l| l.split_whitespace().nth(4).unwrap())
        .collect();
    assert_eq!(counts, vec!["2", "2", "1", "1"], "{output}");
    assert!(output.contains("synapse.actions(0,4)"), "{output}");
}

/// Extracts the proposed plan `--generate` prints, as the line after its heading.
fn proposed_plan(output: &str) -> String {
    let mut lines = output.lines();
    lines
        .find(|l| *l == "Proposed partition reassignment configuration")
        .expect("a proposal");
    lines.next().expect("the proposal JSON").to_string()
}

#[test]
fn reassignment_execute_then_verify() {
    let cluster = cluster();
    statefulset(&cluster, "kafka", 4, 2);
    let programs = Programs::default();

    let topics = r#"{"topics":[{"topic":"perception.events"}],"version":1}"#;
    stdout_of(sh(
        &programs,
        &cluster,
        "kafka-0",
        "cat > /tmp/topics.json",
        topics,
    ));
    let generated = stdout_of(kafka(
        &programs,
        &cluster,
        "kafka-reassign-partitions.sh",
        &[
            "--generate",
            "--topics-to-move-json-file",
            "/tmp/topics.json",
            "--broker-list",
            "0,1,2,3",
        ],
    ));
    assert!(generated.starts_with("Current partition replica assignment\n{\"version\":1,\"partitions\":[{\"topic\":\"perception.events\",\"partition\":0,\"replicas\":[0,1,2],\"log_dirs\":[\"any\",\"any\",\"any\"]}"), "{generated}");
    let plan = proposed_plan(&generated);
    let parsed: serde_json::Value = serde_json::from_str(&plan).unwrap();
    let uses_new_broker = parsed["partitions"].as_array().unwrap().iter().any(|p| {
        p["replicas"]
            .as_array()
            .unwrap()
            .contains(&serde_json::json!(3))
    });
    assert!(uses_new_broker, "{plan}");
    stdout_of(sh(
        &programs,
        &cluster,
        "kafka-0",
        "cat > /tmp/plan.json",
        &plan,
    ));

    let executed = stdout_of(kafka(
        &programs,
        &cluster,
        "kafka-reassign-partitions.sh",
        &["--reassignment-json-file", "/tmp/plan.json", "--execute"],
    ));
    assert!(
        executed.starts_with("Current partition replica assignment\n\n{\"version\":1"),
        "{executed}"
    );
    assert!(
        executed.contains(
            "\n\nSave this to use as the --reassignment-json-file option during rollback\n"
        )
    );
    assert!(executed.ends_with(",perception.events-11\n"), "{executed}");
    assert!(
        executed.contains("Successfully started partition reassignments for perception.events-0,")
    );

    let verify = |programs: &Programs| {
        stdout_of(kafka(
            programs,
            &cluster,
            "kafka-reassign-partitions.sh",
            &["--reassignment-json-file", "/tmp/plan.json", "--verify"],
        ))
    };
    let early = verify(&programs);
    assert!(early.starts_with("Status of partition reassignment:\n"));
    assert!(early.contains(" is still in progress.\n"), "{early}");
    assert!(!early.contains("Clearing broker-level throttles"));
    let describe = stdout_of(kafka(
        &programs,
        &cluster,
        "kafka-topics.sh",
        &["--describe", "--topic", "perception.events"],
    ));
    assert!(describe.contains("\tAdding Replicas: "), "{describe}");

    programs.advance_clock(Duration::from_secs(2));
    let done = verify(&programs);
    assert_eq!(done.matches(" is complete.\n").count(), 12, "{done}");
    assert!(done.ends_with("\nClearing broker-level throttles on brokers 0,1,2,3\nClearing topic-level throttles on topic perception.events\n"), "{done}");
    let describe = stdout_of(kafka(
        &programs,
        &cluster,
        "kafka-topics.sh",
        &["--describe", "--topic", "perception.events"],
    ));
    assert!(!describe.contains("Adding Replicas"));
    assert!(
        describe
            .lines()
            .skip(1)
            .any(|l| l.contains("Replicas: 3,") || l.contains(",3\tIsr")),
        "{describe}"
    );
}

#[test]
fn reassignment_rejects_unknown_broker_and_missing_file() {
    let cluster = cluster();
    statefulset(&cluster, "kafka", 3, 2);
    let programs = Programs::default();

    let plan = r#"{"version":1,"partitions":[{"topic":"synapse.actions","partition":0,"replicas":[0,1,4]}]}"#;
    stdout_of(sh(
        &programs,
        &cluster,
        "kafka-0",
        "cat > /tmp/plan.json",
        plan,
    ));
    let output = kafka(
        &programs,
        &cluster,
        "kafka-reassign-partitions.sh",
        &["--reassignment-json-file", "/tmp/plan.json", "--execute"],
    );
    assert_eq!(output.exit_code, 1);
    assert_eq!(
        output.stderr_text(),
        "Error: The proposed assignment contains non-existent brokerIDs: 4\n"
    );

    let output = kafka(
        &programs,
        &cluster,
        "kafka-reassign-partitions.sh",
        &["--reassignment-json-file", "/tmp/missing.json", "--verify"],
    );
    assert_eq!(output.exit_code, 1);
    assert!(
        output
            .stderr_text()
            .contains("NoSuchFileException: /tmp/missing.json")
    );
}

#[test]
fn missing_bootstrap_server_is_usage_error() {
    let cluster = cluster();
    statefulset(&cluster, "kafka", 1, 2);
    let programs = Programs::default();

    let output = exec(
        &programs,
        &cluster,
        "kafka-0",
        &["kafka-topics.sh", "--list"],
    );
    assert_eq!(output.exit_code, 1);
    assert!(
        output
            .stderr_text()
            .starts_with("Missing required argument \"[bootstrap-server]\"")
    );
    let output = exec(
        &programs,
        &cluster,
        "kafka-0",
        &[
            "kafka-topics.sh",
            "--bootstrap-server",
            BOOTSTRAP,
            "--bogus",
        ],
    );
    assert_eq!(output.exit_code, 1);
    let output = exec(&programs, &cluster, "cassandra-0", &["kafka-topics.sh"]);
    assert_eq!(output.exit_code, 1, "no such pod");
}
