//! `kafka-consumer-groups.sh`: `--list` and `--describe` (offsets, the
//! default, `--members` and `--state`).
//!
//! Members are the Ready pods of the group's Deployment. Partitions go to
//! members round-robin, so members beyond the partition count get none and
//! show a row with `-` for topic and partition, as the real tool prints
//! them. Lag is a small stable number per partition, multiplied by the
//! partitions each member has to serve.

use super::options::Options;
use super::{ConsumerGroup, GROUPS, TOPICS, member_id};
use crate::programs::ids::stable_hash;
use crate::programs::pods::{self, PodView};
use crate::programs::{Context, ExecOutput};

/// Columns of `kafka-consumer-groups.sh` are at least this wide.
const MIN_WIDTH: usize = 15;
/// The value the tool prints for a missing column.
const MISSING: &str = "-";

/// One member of a group and the partitions it holds.
struct Member {
    id: String,
    host: String,
    client_id: String,
    partitions: Vec<u32>,
}

fn members(ctx: &Context, group: &ConsumerGroup, partitions: u32) -> Vec<Member> {
    let pods: Vec<PodView> = pods::with_app(ctx.cluster, ctx.namespace, group.app)
        .into_iter()
        .filter(|p| p.ready && p.ip.is_some())
        .collect();
    let count = pods.len() as u32;
    pods.iter()
        .enumerate()
        .map(|(i, pod)| Member {
            id: member_id(ctx.namespace, group.name, pod),
            host: format!("/{}", pod.ip.as_deref().unwrap_or("")),
            client_id: format!("consumer-{}-1", group.name),
            partitions: (0..partitions).filter(|p| p % count == i as u32).collect(),
        })
        .collect()
}

fn log_end_offset(namespace: &str, topic: &str, partition: u32) -> u64 {
    1_200_000 + stable_hash(&[namespace, topic, &partition.to_string(), "end"]) % 800_000
}

/// Returns the lag of `partition` when each member serves `load` partitions; a group
/// without members falls far behind.
fn lag(namespace: &str, topic: &str, partition: u32, load: Option<u32>) -> u64 {
    let base = stable_hash(&[namespace, topic, &partition.to_string(), "lag"]);
    match load {
        Some(load) => (2 + base % 19) * u64::from(load),
        None => 5_000 + base % 2_000,
    }
}

pub(super) fn run(ctx: &Context, options: &Options) -> ExecOutput {
    if options.has("list") {
        return ExecOutput::stdout(
            GROUPS
                .iter()
                .map(|g| format!("{}\n", g.name))
                .collect::<String>(),
        );
    }
    if !options.has("describe") {
        return ExecOutput::failure(
            1,
            "Command must include exactly one action: --list, --describe, --delete, --reset-offsets, --delete-offsets\n",
        );
    }
    let names: Vec<String> = if options.has("all-groups") {
        GROUPS.iter().map(|g| g.name.to_string()).collect()
    } else {
        options.values("group").to_vec()
    };
    if names.is_empty() {
        return ExecOutput::failure(
            1,
            "Option [describe] takes one of these options: [all-groups], [group]\n",
        );
    }
    let mut output = ExecOutput::default();
    for name in names {
        let Some(group) = GROUPS.iter().find(|g| g.name == name) else {
            output
                .stdout
                .extend(format!("\nError: Consumer group '{name}' does not exist.\n").into_bytes());
            continue;
        };
        let partitions = TOPICS
            .iter()
            .find(|(t, _)| *t == group.topic)
            .map_or(0, |(_, n)| *n);
        let members = members(ctx, group, partitions);
        if members.is_empty() {
            output
                .stderr
                .extend(format!("\nConsumer group '{name}' has no active members.\n").into_bytes());
        }
        let text = if options.has("members") {
            describe_members(group, &members, options.has("verbose"))
        } else if options.has("state") {
            describe_state(ctx, group, &members)
        } else {
            describe_offsets(ctx, group, &members, partitions)
        };
        output.stdout.extend(text.into_bytes());
    }
    output
}

/// One row of the offsets view.
struct OffsetRow {
    partition: String,
    current: String,
    end: String,
    lag: String,
    topic: String,
    consumer_id: String,
    host: String,
    client_id: String,
}

fn describe_offsets(
    ctx: &Context,
    group: &ConsumerGroup,
    members: &[Member],
    partitions: u32,
) -> String {
    format_offsets(group, &offset_rows(ctx, group, members, partitions))
}

/// Builds the rows of the offsets view: each member's partitions in order, a row
/// of `-` for a member without partitions, and every partition without a
/// consumer when the group has no members.
fn offset_rows(
    ctx: &Context,
    group: &ConsumerGroup,
    members: &[Member],
    partitions: u32,
) -> Vec<OffsetRow> {
    let ns = ctx.namespace;
    let load = (!members.is_empty()).then(|| partitions.div_ceil(members.len() as u32));
    let partition_row = |partition: u32, member: Option<&Member>| {
        let end = log_end_offset(ns, group.topic, partition);
        let lag = lag(ns, group.topic, partition, load);
        OffsetRow {
            topic: group.topic.to_string(),
            partition: partition.to_string(),
            current: (end - lag.min(end)).to_string(),
            end: end.to_string(),
            lag: lag.to_string(),
            consumer_id: member.map_or(MISSING.to_string(), |m| m.id.clone()),
            host: member.map_or(MISSING.to_string(), |m| m.host.clone()),
            client_id: member.map_or(MISSING.to_string(), |m| m.client_id.clone()),
        }
    };
    let mut rows = Vec::new();
    for member in members {
        if member.partitions.is_empty() {
            rows.push(OffsetRow {
                topic: MISSING.into(),
                partition: MISSING.into(),
                current: MISSING.into(),
                end: MISSING.into(),
                lag: MISSING.into(),
                consumer_id: member.id.clone(),
                host: member.host.clone(),
                client_id: member.client_id.clone(),
            });
        }
        rows.extend(
            member
                .partitions
                .iter()
                .map(|p| partition_row(*p, Some(member))),
        );
    }
    if members.is_empty() {
        rows.extend((0..partitions).map(|p| partition_row(p, None)));
    }
    rows
}

/// Formats the offsets view: a blank line, the header, the rows, with the
/// variable columns as wide as their widest value and at least 15.
fn format_offsets(group: &ConsumerGroup, rows: &[OffsetRow]) -> String {
    let width = |column: fn(&OffsetRow) -> &str| {
        rows.iter()
            .map(|r| column(r).len())
            .fold(MIN_WIDTH, usize::max)
    };
    let group_width = group.name.len().max(MIN_WIDTH);
    let topic_width = width(|r| &r.topic);
    let consumer_width = width(|r| &r.consumer_id);
    let host_width = width(|r| &r.host);
    let line = |cells: [&str; 9]| {
        format!(
            "{:<group_width$} {:<topic_width$} {:<10} {:<15} {:<15} {:<15} {:<consumer_width$} {:<host_width$} {}\n",
            cells[0],
            cells[1],
            cells[2],
            cells[3],
            cells[4],
            cells[5],
            cells[6],
            cells[7],
            cells[8]
        )
    };
    let mut out = String::from("\n");
    out.push_str(&line([
        "GROUP",
        "TOPIC",
        "PARTITION",
        "CURRENT-OFFSET",
        "LOG-END-OFFSET",
        "LAG",
        "CONSUMER-ID",
        "HOST",
        "CLIENT-ID",
    ]));
    for row in rows {
        out.push_str(&line([
            group.name,
            &row.topic,
            &row.partition,
            &row.current,
            &row.end,
            &row.lag,
            &row.consumer_id,
            &row.host,
            &row.client_id,
        ]));
    }
    out
}

fn describe_members(group: &ConsumerGroup, members: &[Member], verbose: bool) -> String {
    let width = |column: fn(&Member) -> &str| {
        members
            .iter()
            .map(|m| column(m).len())
            .fold(MIN_WIDTH, usize::max)
    };
    let group_width = group.name.len().max(MIN_WIDTH);
    let (id_width, host_width, client_width) = (
        width(|m| &m.id),
        width(|m| &m.host),
        width(|m| &m.client_id),
    );
    let line = |cells: [&str; 5]| {
        format!(
            "{:<group_width$} {:<id_width$} {:<host_width$} {:<client_width$} {:<15} ",
            cells[0], cells[1], cells[2], cells[3], cells[4]
        )
    };
    let mut out = String::from("\n");
    out.push_str(&line([
        "GROUP",
        "CONSUMER-ID",
        "HOST",
        "CLIENT-ID",
        "#PARTITIONS",
    ]));
    if verbose {
        out.push_str("ASSIGNMENT");
    }
    out.push('\n');
    for member in members {
        out.push_str(&line([
            group.name,
            &member.id,
            &member.host,
            &member.client_id,
            &member.partitions.len().to_string(),
        ]));
        if verbose {
            if member.partitions.is_empty() {
                out.push_str(MISSING);
            } else {
                let list: Vec<String> = member.partitions.iter().map(u32::to_string).collect();
                out.push_str(&format!("{}({})", group.topic, list.join(",")));
            }
        }
        out.push('\n');
    }
    out
}

fn describe_state(ctx: &Context, group: &ConsumerGroup, members: &[Member]) -> String {
    let coordinator_id = stable_hash(&[ctx.namespace, group.name, "coordinator"]) % 3;
    let coordinator = format!(
        "kafka-{coordinator_id}.kafka.{}.svc.cluster.local:9092 ({coordinator_id})",
        ctx.namespace
    );
    let width = coordinator.len().max(25);
    let state = if members.is_empty() {
        "Empty"
    } else {
        "Stable"
    };
    let line = |cells: [&str; 5]| {
        format!(
            "\n{:<width$} {:<25} {:<20} {:<15} {}",
            cells[0], cells[1], cells[2], cells[3], cells[4]
        )
    };
    let mut out = line([
        "GROUP",
        "COORDINATOR (ID)",
        "ASSIGNMENT-STRATEGY",
        "STATE",
        "#MEMBERS",
    ]);
    out.push_str(&line([
        group.name,
        &coordinator,
        if members.is_empty() { "" } else { "roundrobin" },
        state,
        &members.len().to_string(),
    ]));
    out.push('\n');
    out
}
