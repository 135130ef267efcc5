//! `kubectl logs`: the lines a pod's software has written by now, dated
//! from the pod's `startTime` and the time it became Ready.

mod infra;
mod spring;

use chrono::{DateTime, TimeDelta, Utc};

use super::pods::Software;
use super::{Context, ProgramState};

/// One log line and when it was written.
type Line = (DateTime<Utc>, String);

/// Lines written at a fixed interval while a dependency stays unreachable
/// are capped at this many, the most recent kept.
// NOTE: a real log keeps every retry; the cap keeps long demo runs small.
const MAX_RETRY_LINES: usize = 100;

fn after(start: DateTime<Utc>, millis: i64) -> DateTime<Utc> {
    start + TimeDelta::milliseconds(millis)
}

/// Retry times from `first` every `every_millis` up to `now`, the last
/// [`MAX_RETRY_LINES`] of them.
fn retries(first: DateTime<Utc>, every_millis: i64, now: DateTime<Utc>) -> Vec<DateTime<Utc>> {
    let mut times = Vec::new();
    let mut at = first;
    while at <= now {
        times.push(at);
        at += TimeDelta::milliseconds(every_millis);
    }
    let skip = times.len().saturating_sub(MAX_RETRY_LINES);
    times.split_off(skip)
}

/// Renders the log of the pod of `ctx`; empty before the pod started.
pub(crate) fn render(ctx: &Context, state: &ProgramState) -> String {
    let Some(start) = ctx.pod.start_time else {
        return String::new();
    };
    let mut lines: Vec<Line> = match ctx.pod.software() {
        Software::SpringBoot => spring::lines(ctx, start),
        Software::Cassandra => infra::cassandra(ctx, state, start),
        Software::Kafka => infra::kafka(ctx, start),
        Software::Redis => infra::redis(ctx, state, start),
    };
    lines.retain(|(at, _)| *at <= ctx.now);
    lines.sort_by_key(|(at, _)| *at);
    lines.into_iter().map(|(_, line)| line + "\n").collect()
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use crate::programs::Programs;
    use crate::programs::testing::{NAMESPACE, cluster, pod, statefulset};
    use crate::programs::utils::Pattern;

    fn grep(log: &str, pattern: &str) -> Vec<String> {
        let pattern = Pattern::new(pattern, false, true);
        log.lines()
            .filter(|l| pattern.is_match(l))
            .map(str::to_string)
            .collect()
    }

    #[test]
    fn spring_log_has_heap_and_started_lines() {
        let cluster = cluster();
        pod("synapse-7d9f8b6c5-x2x9k", "synapse", "10.244.3.21")
            .env("JAVA_OPTS", "-Xms2g -Xmx4g -XX:+UseG1GC")
            .ready_for(120)
            .create(&cluster);
        let programs = Programs::default();

        let log = programs.logs(&cluster, NAMESPACE, "synapse-7d9f8b6c5-x2x9k", "");
        let heap = grep(&log, "heap");
        assert_eq!(heap.len(), 1, "{log}");
        assert!(
            heap[0].ends_with("JVM heap: initial=2048m max=4096m (from -Xms2g -Xmx4g)"),
            "{}",
            heap[0]
        );
        assert_eq!(grep(&log, "redis.*connected").len(), 1, "{log}");
        let started = grep(&log, "Started SynapseApplication in ");
        assert_eq!(started.len(), 1, "{log}");
        assert!(
            log.lines()
                .next()
                .unwrap()
                .contains("Starting SynapseApplication v1.4.2"),
            "{log}"
        );
        assert!(log.lines().all(|l| l.contains(" --- [synapse] [")), "{log}");
    }

    #[test]
    fn capsule_log_connects_to_cassandra() {
        let cluster = cluster();
        statefulset(&cluster, "cassandra", 3, 1);
        pod("capsule-5c6d7e8f9-abcde", "capsule", "10.244.3.30").create(&cluster);
        let programs = Programs::default();

        let log = programs.logs(&cluster, NAMESPACE, "capsule-5c6d7e8f9-abcde", "capsule");
        let connected = grep(&log, "cassandra.*connected");
        assert_eq!(connected.len(), 1, "{log}");
        assert!(connected[0].contains("butterfly-cassandra"));
    }

    #[test]
    fn faulty_app_retries_and_never_starts() {
        let cluster = cluster();
        pod("capsule-5c6d7e8f9-abcde", "capsule", "10.244.3.30")
            .not_ready(30)
            .create(&cluster);
        cluster
            .faults
            .with(|plan| plan.never_ready_apps.insert("capsule".to_string()));
        let programs = Programs::default();

        let log = programs.logs(&cluster, NAMESPACE, "capsule-5c6d7e8f9-abcde", "");
        assert!(grep(&log, "cassandra.*connected").is_empty(), "{log}");
        assert!(grep(&log, "Started CapsuleApplication").is_empty());
        assert_eq!(grep(&log, "Cassandra connection failed").len(), 6, "{log}");
    }

    #[test]
    fn starting_pod_logs_only_past_lines() {
        let cluster = cluster();
        pod("plato-1a2b3c4d5-klmno", "plato", "10.244.3.50")
            .not_ready(1)
            .create(&cluster);
        let programs = Programs::default();

        let early = programs.logs(&cluster, NAMESPACE, "plato-1a2b3c4d5-klmno", "");
        assert!(grep(&early, "Tomcat started").is_empty(), "{early}");
        programs.advance_clock(Duration::from_secs(30));
        let later = programs.logs(&cluster, NAMESPACE, "plato-1a2b3c4d5-klmno", "");
        assert_eq!(grep(&later, "Tomcat started").len(), 1, "{later}");
        assert!(
            grep(&later, "Started PlatoApplication").is_empty(),
            "not Ready yet: {later}"
        );
    }

    #[test]
    fn statefulset_logs() {
        let cluster = cluster();
        statefulset(&cluster, "cassandra", 1, 1);
        statefulset(&cluster, "kafka", 1, 2);
        statefulset(&cluster, "redis", 1, 5);
        let programs = Programs::default();

        let cassandra = programs.logs(&cluster, NAMESPACE, "cassandra-0", "");
        assert!(cassandra.contains("Startup complete"), "{cassandra}");
        assert_eq!(grep(&cassandra, "heap size").len(), 1, "{cassandra}");
        let kafka = programs.logs(&cluster, NAMESPACE, "kafka-0", "");
        assert!(kafka.contains("Kafka Server started"), "{kafka}");
        let redis = programs.logs(&cluster, NAMESPACE, "redis-0", "");
        assert!(redis.contains("Ready to accept connections tcp"), "{redis}");
        assert!(programs.logs(&cluster, NAMESPACE, "missing", "").is_empty());
    }
}
