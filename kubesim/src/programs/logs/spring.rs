//! Start-up log of the Spring Boot services, in Spring Boot 3.3's default
//! console format.

use chrono::{DateTime, Utc};

use super::{Line, after, retries};
use crate::programs::http::{dependencies, is_faulty};
use crate::programs::jvm;
use crate::programs::kafka::{consumer_group_of, member_id};
use crate::programs::pods::{self, Software};
use crate::programs::{Context, cassandra, redis};

/// Interval between reconnect attempts of an unreachable dependency.
const RETRY_MILLIS: i64 = 5_000;
/// Offset of the dependency connection from the start, in milliseconds.
const CONNECT_MILLIS: i64 = 3_200;
const TOMCAT_LOGGER: &str = "org.springframework.boot.web.embedded.tomcat.TomcatWebServer";

/// `odyssey-core` -> `OdysseyCore`.
fn camel_case(app: &str) -> String {
    app.split(['-', '_'])
        .map(|part| {
            let mut chars = part.chars();
            chars
                .next()
                .map(|first| first.to_uppercase().chain(chars).collect::<String>())
                .unwrap_or_default()
        })
        .collect()
}

/// Shortens a logger name to at most 39 characters the way logback's
/// `%logger{39}` does: package segments shrink to their first letter, from
/// the left, until it fits.
fn abbreviate(logger: &str) -> String {
    let mut parts: Vec<String> = logger.split('.').map(str::to_string).collect();
    for i in 0..parts.len().saturating_sub(1) {
        if parts.join(".").len() <= 39 {
            break;
        }
        parts[i] = parts[i].chars().take(1).collect();
    }
    parts.join(".")
}

/// Names of one service and the lines it logs.
struct Writer<'a> {
    app: &'a str,
    /// `com.butterfly.<app>`, the package of the service's classes.
    package: String,
    /// `<App>Application`, the main class.
    class: String,
}

impl<'a> Writer<'a> {
    fn new(app: &'a str) -> Self {
        Self {
            app,
            package: format!("com.butterfly.{}", app.replace(['-', '_'], "")),
            class: format!("{}Application", camel_case(app)),
        }
    }

    fn main_logger(&self) -> String {
        format!("{}.{}", self.package, self.class)
    }

    fn line(&self, at: DateTime<Utc>, level: &str, logger: &str, message: &str) -> Line {
        let text = format!(
            "{} {level:>5} 1 --- [{}] [{:>15}] {:<40} : {message}",
            at.format("%Y-%m-%dT%H:%M:%S%.3fZ"),
            self.app,
            "main",
            abbreviate(logger)
        );
        (at, text)
    }

    /// Builds the lines from the banner to the actuator endpoints, the same
    /// for every service.
    fn boot_lines(&self, ctx: &Context, start: DateTime<Utc>) -> Vec<Line> {
        let pod = ctx.pod;
        let image = pod
            .container(ctx.container)
            .and_then(|c| c["image"].as_str())
            .unwrap_or("");
        let version = image
            .rsplit_once(':')
            .map_or("0.0.1-SNAPSHOT", |(_, tag)| tag);
        let profile = match pod.env(ctx.container, "SPRING_PROFILES_ACTIVE") {
            Some(profile) => format!("The following 1 profile is active: \"{profile}\""),
            None => {
                "No active profile set, falling back to 1 default profile: \"default\"".to_string()
            }
        };
        let heap = jvm::heap(pod, ctx.container);
        let main = self.main_logger();
        let starting = format!(
            "Starting {} v{version} using Java 21.0.5 with PID 1 (/app/app.jar started by app in /app)",
            self.class
        );
        vec![
            self.line(start, "INFO", &main, &starting),
            self.line(after(start, 12), "INFO", &main, &profile),
            self.line(
                after(start, 380),
                "INFO",
                &format!("{}.config.JvmSettings", self.package),
                &heap.log_line(),
            ),
            self.line(
                after(start, 1_850),
                "INFO",
                TOMCAT_LOGGER,
                "Tomcat initialized with port 8080 (http)",
            ),
            self.line(
                after(start, 1_900),
                "INFO",
                "org.apache.catalina.core.StandardService",
                "Starting service [Tomcat]",
            ),
            self.line(
                after(start, 2_400),
                "INFO",
                "org.springframework.boot.actuate.endpoint.web.EndpointLinksResolver",
                "Exposing 1 endpoint beneath base path '/actuator'",
            ),
        ]
    }

    /// Builds the Kafka consumer's join line, for services that consume a
    /// topic.
    fn consumer_line(&self, ctx: &Context, start: DateTime<Utc>) -> Option<Line> {
        let group = consumer_group_of(self.app)?;
        let member = member_id(ctx.namespace, group, ctx.pod);
        Some(self.line(
            after(start, CONNECT_MILLIS + 600),
            "INFO",
            "org.apache.kafka.clients.consumer.internals.ConsumerCoordinator",
            &format!(
                "[Consumer clientId=consumer-{group}-1, groupId={group}] Successfully joined group with generation Generation{{generationId=7, memberId='{member}', protocol='roundrobin'}}"
            ),
        ))
    }

    /// Builds Tomcat's start line and, once the pod is Ready, the `Started`
    /// line.
    fn started_lines(&self, ctx: &Context, start: DateTime<Utc>) -> Vec<Line> {
        let mut lines = vec![self.line(
            after(start, 6_400),
            "INFO",
            TOMCAT_LOGGER,
            "Tomcat started on port 8080 (http) with context path '/'",
        )];
        if let (true, Some(ready)) = (ctx.pod.ready, ctx.pod.ready_since) {
            let seconds = (ready - start).num_milliseconds().max(6_500) as f64 / 1000.0;
            let message = format!(
                "Started {} in {seconds:.3} seconds (process running for {:.1})",
                self.class,
                seconds + 0.7
            );
            lines.push(self.line(
                ready.max(after(start, 6_500)),
                "INFO",
                &self.main_logger(),
                &message,
            ));
        }
        lines
    }
}

pub(super) fn lines(ctx: &Context, start: DateTime<Utc>) -> Vec<Line> {
    let pod = ctx.pod;
    let app = if pod.app.is_empty() {
        pod.name.as_str()
    } else {
        pod.app.as_str()
    };
    let writer = Writer::new(app);
    let faulty = is_faulty(ctx, &pod.app);

    let mut lines = writer.boot_lines(ctx, start);
    for dependency in dependencies(app) {
        lines.extend(dependency_lines(ctx, &writer, dependency, start, faulty));
    }
    lines.extend(writer.consumer_line(ctx, start));
    if !faulty {
        lines.extend(writer.started_lines(ctx, start));
    }
    lines
}

/// Builds the connection line of one dependency, or its retry warnings
/// when the fault plan keeps the app from becoming Ready.
fn dependency_lines(
    ctx: &Context,
    writer: &Writer,
    dependency: &str,
    start: DateTime<Utc>,
    faulty: bool,
) -> Vec<Line> {
    let at = after(start, CONNECT_MILLIS);
    let ns = ctx.namespace;
    let (logger, connected, failed) = match dependency {
        "cassandra" => {
            let nodes = pods::of_software(ctx.cluster, ns, Software::Cassandra).iter().filter(|p| p.ready).count();
            (
                format!("{}.cassandra.CassandraConfig", writer.package),
                format!(
                    "Cassandra session connected to cluster {} (datacenter {}, {} nodes, keyspace {})",
                    cassandra::CLUSTER_NAME,
                    cassandra::DATACENTER,
                    nodes.max(1),
                    cassandra::APP_KEYSPACE
                ),
                format!(
                    "Cassandra connection failed (cluster {}): All host(s) tried for query failed; retrying in 5 s",
                    cassandra::CLUSTER_NAME
                ),
            )
        }
        "redis" => {
            let nodes = pods::of_software(ctx.cluster, ns, Software::Redis).iter().filter(|p| p.ready).count();
            let address = format!("{}.{ns}.svc.cluster.local:6379", redis::SERVICE);
            (
                format!("{}.redis.RedisConfig", writer.package),
                format!("Redis cluster connected: {} nodes via {address}", nodes.max(1)),
                format!("Redis connection failed: Unable to connect to {address}; retrying in 5 s"),
            )
        }
        "kafka" => (
            "org.apache.kafka.clients.NetworkClient".to_string(),
            format!("[AdminClient clientId=adminclient-1] Connected to kafka.{ns}.svc.cluster.local:9092"),
            format!("[AdminClient clientId=adminclient-1] Bootstrap broker kafka.{ns}.svc.cluster.local:9092 (id: -1 rack: null) disconnected"),
        ),
        _ => (
            "com.zaxxer.hikari.HikariDataSource".to_string(),
            "HikariPool-1 - Start completed.".to_string(),
            "HikariPool-1 - Exception during pool initialization: Connection refused; retrying in 5 s".to_string(),
        ),
    };
    if !faulty {
        return vec![writer.line(at, "INFO", &logger, &connected)];
    }
    retries(at, RETRY_MILLIS, ctx.now)
        .into_iter()
        .map(|time| writer.line(time, "WARN", &logger, &failed))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(camel_case("odyssey-quantumroom"), "OdysseyQuantumroom");
        assert_eq!(
            abbreviate("com.butterfly.synapse.SynapseApplication"),
            "c.butterfly.synapse.SynapseApplication"
        );
        assert_eq!(
            abbreviate("org.springframework.boot.web.embedded.tomcat.TomcatWebServer"),
            "o.s.b.w.embedded.tomcat.TomcatWebServer"
        );
    }
}
