//! Config parsing and validation: the shipped file, defaults, and broken
//! configs that must report every problem with its key.

use std::path::{Path, PathBuf};
use std::time::Duration;

use commands::catalog::{Catalog, DataStore, Range, ServiceCheck, WorkloadKind};
use commands::config::{Config, ConfigErrors, LockScope};
use commands::identity::Principal;

fn shipped_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/config/butterfly.yaml")
}

fn shipped() -> Config {
    Config::load(&shipped_path())
        .unwrap_or_else(|errors| panic!("shipped config is invalid:\n{errors}"))
}

/// A valid config with one service, to which tests add broken parts.
const MINIMAL: &str = "
services:
  synapse:
    kind: deployment
    safe: {min: 2, max: 12}
    recommended: {min: 3, max: 4}
roles:
  requesters: [console:oncall]
  approvers: [console:sre, console:sre2]
  admins: [console:lead]
";

fn errors_of(yaml: &str) -> ConfigErrors {
    match Config::from_yaml_str(yaml) {
        Ok(_) => panic!("config was accepted:\n{yaml}"),
        Err(errors) => errors,
    }
}

fn lines_of(yaml: &str) -> Vec<String> {
    errors_of(yaml)
        .to_string()
        .lines()
        .map(str::to_string)
        .collect()
}

fn assert_has_line(lines: &[String], expected: &str) {
    assert!(
        lines.iter().any(|line| line == expected),
        "missing line {expected:?} in:\n{}",
        lines.join("\n")
    );
}

#[test]
fn shipped_config_validates() {
    let config = shipped();
    let names: Vec<&str> = config.services.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "capsule",
            "odyssey-core",
            "odyssey-horizonbox",
            "odyssey-quantumroom",
            "perception",
            "plato",
            "nexus",
            "synapse",
            "cassandra",
            "kafka",
            "redis",
            "butterfly-postgres",
        ]
    );
    assert_eq!(config.cluster.namespace, "butterfly");
    assert_eq!(config.policy.approvals.within_recommended, 1);
    assert_eq!(config.policy.approvals.outside_recommended, 2);
    assert_eq!(config.policy.approvals.freeze, 2);
    assert_eq!(config.policy.approval_expiry, Duration::from_secs(15 * 60));
    assert_eq!(config.policy.lock_scope, LockScope::Namespace);
    assert_eq!(
        config.roles.admins,
        vec!["console:lead".parse::<Principal>().unwrap()]
    );
}

#[test]
fn shipped_config_matches_runbook_capacity_table() {
    let catalog = Catalog::from_config(&shipped());
    let table = [
        ("capsule", 2, 12, 3, 4),
        ("odyssey-core", 2, 15, 3, 5),
        ("odyssey-horizonbox", 2, 8, 2, 3),
        ("odyssey-quantumroom", 2, 8, 2, 3),
        ("perception", 3, 15, 3, 6),
        ("plato", 2, 10, 2, 4),
        ("nexus", 3, 20, 3, 5),
        ("synapse", 2, 12, 3, 4),
    ];
    for (name, safe_min, safe_max, recommended_min, recommended_max) in table {
        let service = catalog.resolve(name).unwrap();
        assert_eq!(
            service.safe,
            Range {
                min: safe_min,
                max: safe_max
            },
            "{name}"
        );
        assert_eq!(
            service.recommended,
            Range {
                min: recommended_min,
                max: recommended_max
            },
            "{name}"
        );
        assert_eq!(service.kind, WorkloadKind::Deployment, "{name}");
        assert_eq!(
            service.hpa.as_deref(),
            Some(format!("{name}-hpa").as_str()),
            "{name}"
        );
        assert_eq!(service.namespace, "butterfly", "{name}");
        assert_eq!(service.workload, name);
    }
}

#[test]
fn shipped_config_has_service_checks() {
    let catalog = Catalog::from_config(&shipped());
    assert_eq!(
        catalog.resolve("capsule").unwrap().checks,
        vec![ServiceCheck::CassandraConnected]
    );
    assert_eq!(
        catalog.resolve("perception").unwrap().checks,
        vec![
            ServiceCheck::PartitionLimit {
                topic: "perception.events".to_string()
            },
            ServiceCheck::KafkaConsumerLag {
                group: "perception-group".to_string()
            },
        ]
    );
    assert_eq!(
        catalog.resolve("synapse").unwrap().checks,
        vec![
            ServiceCheck::RedisConnected,
            ServiceCheck::KafkaConsumerLag {
                group: "synapse-service".to_string()
            },
            ServiceCheck::SafetyViolationsMetric {
                metric: "synapse_safety_violations_total".to_string()
            },
        ]
    );
}

#[test]
fn shipped_config_has_infrastructure_without_hpa() {
    let catalog = Catalog::from_config(&shipped());
    for name in ["cassandra", "kafka", "redis"] {
        let service = catalog.resolve(name).unwrap();
        assert_eq!(service.kind, WorkloadKind::StatefulSet, "{name}");
        assert_eq!(service.hpa, None, "{name}");
    }
    let postgres = catalog.resolve("postgres").unwrap();
    assert_eq!(postgres.name, "butterfly-postgres");
    assert_eq!(postgres.kind, WorkloadKind::Postgresql);
    assert_eq!(postgres.safe, Range { min: 1, max: 5 });
    assert_eq!(postgres.recommended, Range { min: 2, max: 3 });
    assert_eq!(postgres.hpa, None);
}

#[test]
fn shipped_config_aliases_resolve() {
    let catalog = Catalog::from_config(&shipped());
    for (alias, name) in [
        ("core", "odyssey-core"),
        ("HorizonBox", "odyssey-horizonbox"),
        ("quantumroom", "odyssey-quantumroom"),
        ("gateway", "nexus"),
    ] {
        assert_eq!(catalog.resolve(alias).unwrap().name, name, "{alias}");
    }
}

#[test]
fn minimal_config_gets_defaults() {
    let config = Config::from_yaml_str(MINIMAL).unwrap();
    let synapse = &config.services[0];
    assert_eq!(synapse.workload, "synapse");
    assert_eq!(synapse.namespace, "butterfly");
    assert_eq!(synapse.hpa.as_deref(), Some("synapse-hpa"));
    assert!(!synapse.self_approval_allowed);
    assert_eq!(synapse.max_step, None);
    assert_eq!(config.policy.approval_expiry, Duration::from_secs(900));
    assert_eq!(config.policy.cooldown_per_service, Duration::from_secs(120));
    assert_eq!(config.policy.lock_ttl, Duration::from_secs(60));
    assert_eq!(config.policy.queue_max_wait, Duration::from_secs(600));
    assert_eq!(config.policy.rollout_timeout, Duration::from_secs(300));
    assert_eq!(config.policy.lock_scope, LockScope::Namespace);
    assert_eq!(config.redis.url, None);
    assert_eq!(config.redis.key_prefix, "scalebot:");
    assert_eq!(config.cluster.kubeconfig, None);
}

#[test]
fn service_namespace_defaults_to_cluster_namespace() {
    let yaml = format!("{MINIMAL}cluster: {{namespace: staging}}\n");
    let config = Config::from_yaml_str(&yaml).unwrap();
    assert_eq!(config.services[0].namespace, "staging");
}

#[test]
fn broken_config_reports_every_problem() {
    let yaml = r#"
services:
  synapse:
    kind: deploy
    safe: {min: 2, max: 1}
    recommended: {min: 1, max: 20}
    checks: [kafka-lag, {kafka-consumer-lag: {}}, {partition-limit: {topic: t, group: g}}]
    max_step: 0
  Plato:
    safe: {min: -1, max: 5000}
    recommended: {max: 4}
roles:
  requesters: [console:oncall]
  approvers: [console:sre, discord:abc, "slak:U1"]
  admins: [console:lead]
policy:
  approvals: {within_recommended: 0, freeze: 9}
  approval_expiry: 15 minutes
  cooldown_per_service: 0s
  lock_scope: global
redis:
  url: "http://:hunter2@localhost"
  key_prefix: ""
cluster:
  namespace: Butterfly
"#;
    let lines = lines_of(yaml);
    let expected = [
        r#"services.synapse.kind: "deploy" is not a workload kind; expected deployment, statefulset or postgresql"#,
        "services.synapse.safe.max: 1 is below safe.min 2",
        r#"services.synapse.checks[0]: "kafka-lag" is not a check; expected cassandra-connected, redis-connected, kafka-consumer-lag: {group: <consumer group>}, partition-limit: {topic: <topic>} or safety-violations-metric: {metric: <metric name>}"#,
        "services.synapse.checks[1].kafka-consumer-lag.group: missing; expected the consumer group name, e.g. synapse-service",
        "services.synapse.checks[2].partition-limit.group: unknown parameter of partition-limit; expected only topic",
        "services.synapse.max_step: 0 is below the minimum of 1",
        r#"services.Plato: "Plato" is not a valid service name; expected lower-case letters, digits and '-', starting with a letter, at most 63 characters"#,
        "services.Plato.kind: missing; expected deployment, statefulset or postgresql",
        "services.Plato.safe.min: -1 is not a replica count; expected 0 to 1000",
        "services.Plato.safe.max: 5000 is not a replica count; expected 0 to 1000",
        "services.Plato.recommended.min: missing; expected a replica count from 0 to 1000",
        r#"roles.approvers[1]: "discord:abc" is not a valid Discord user id; expected a numeric snowflake, e.g. discord:80351110224678912"#,
        r#"roles.approvers[2]: "slak:U1" is not an identity; expected slack:<user id>, discord:<user id>, discord-role:<role id>, slack-group:<group id> or console:<name>"#,
        "policy.approvals.within_recommended: 0 is below the minimum of 1",
        "policy.approvals.freeze: 9 is above the maximum of 5",
        r#"policy.approval_expiry: "15 minutes" is not a duration; expected e.g. 15m, 90s, 1h, 500ms"#,
        r#"policy.cooldown_per_service: "0s" is zero; expected a positive duration"#,
        r#"policy.lock_scope: "global" is not a lock scope; expected namespace, workload or cluster"#,
        r#"redis.key_prefix: "" is empty or contains whitespace; expected e.g. scalebot:"#,
        r#"cluster.namespace: "Butterfly" is not a namespace name; expected lower-case letters, digits and '-', starting and ending with a letter or digit, at most 63 characters"#,
    ];
    for line in expected {
        assert_has_line(&lines, line);
    }
    let redis = lines
        .iter()
        .find(|l| l.starts_with("redis.url: "))
        .expect("redis.url problem");
    assert!(
        redis.contains(r#""http://:****@localhost" is not a usable Redis URL"#),
        "{redis}"
    );
    assert!(!redis.contains("hunter2"), "{redis}");
    assert_eq!(lines.len(), expected.len() + 1, "{}", lines.join("\n"));
}

#[test]
fn recommended_range_outside_safe_range_is_named() {
    let yaml = MINIMAL.replace(
        "recommended: {min: 3, max: 4}",
        "recommended: {min: 1, max: 14}",
    );
    let lines = lines_of(&yaml);
    assert_eq!(
        lines,
        [
            "services.synapse.recommended.min: 1 is below safe.min 2",
            "services.synapse.recommended.max: 14 is above safe.max 12",
        ]
    );
}

#[test]
fn unknown_key_is_named_with_location() {
    let yaml = MINIMAL.replace(
        "    kind: deployment\n",
        "    kind: deployment\n    saef: {min: 1, max: 2}\n",
    );
    let errors = errors_of(&yaml);
    assert_eq!(errors.errors.len(), 1);
    let text = errors.to_string();
    assert!(
        text.starts_with("line 5, column 5: unknown field `saef`"),
        "{text}"
    );
    assert!(text.contains("expected one of"), "{text}");
    assert!(!text.contains('\n'), "{text}");
}

#[test]
fn unknown_top_level_key_is_named() {
    let yaml = format!("{MINIMAL}polcy:\n  lock_ttl: 30s\n");
    let text = errors_of(&yaml).to_string();
    assert!(text.contains("unknown field `polcy`"), "{text}");
    assert!(text.starts_with("line 11, column 1: "), "{text}");
}

#[test]
fn loaded_file_problems_name_the_file() {
    let directory =
        std::env::temp_dir().join(format!("scalebot-config-test-{}", std::process::id()));
    std::fs::create_dir_all(&directory).unwrap();
    let path = directory.join("broken.yaml");
    std::fs::write(&path, MINIMAL.replace("max: 12", "max: 1")).unwrap();
    let text = Config::load(&path).unwrap_err().to_string();
    std::fs::remove_dir_all(&directory).unwrap();
    assert_eq!(
        text,
        format!(
            "{}: services.synapse.safe.max: 1 is below safe.min 2",
            path.display()
        )
    );
}

#[test]
fn missing_file_is_named() {
    let path = Path::new("/nonexistent/scalebot.yaml");
    let text = Config::load(path).unwrap_err().to_string();
    assert!(
        text.starts_with("/nonexistent/scalebot.yaml: failed to read the file: "),
        "{text}"
    );
}

#[test]
fn empty_config_is_reported() {
    for yaml in ["", "   \n", "# only a comment\n---\n"] {
        let text = errors_of(yaml).to_string();
        assert!(text.starts_with("the config is empty"), "{yaml:?}: {text}");
    }
}

#[test]
fn missing_sections_are_reported() {
    let lines = lines_of("cluster: {namespace: butterfly}\n");
    assert_eq!(lines.len(), 2, "{}", lines.join("\n"));
    assert!(
        lines[0].starts_with("services: missing; expected at least one service"),
        "{}",
        lines[0]
    );
    assert!(
        lines[1].starts_with("roles: missing; expected"),
        "{}",
        lines[1]
    );
}

#[test]
fn empty_roles_are_reported() {
    let yaml = MINIMAL.replace(
        "  approvers: [console:sre, console:sre2]\n  admins: [console:lead]\n",
        "",
    );
    let lines = lines_of(&yaml);
    assert_eq!(lines.len(), 2, "{}", lines.join("\n"));
    assert!(
        lines[0].starts_with("roles.approvers: empty, and so is roles.admins"),
        "{}",
        lines[0]
    );
    assert!(lines[1].starts_with("roles.admins: empty"), "{}", lines[1]);
}

#[test]
fn duplicate_principal_is_reported() {
    let yaml = MINIMAL.replace("[console:sre, console:sre2]", "[console:sre, console:SRE]");
    assert_has_line(
        &lines_of(&yaml),
        "roles.approvers[1]: console:sre is already listed at roles.approvers[0]",
    );
}

#[test]
fn unreachable_approval_count_is_reported() {
    let yaml = MINIMAL.replace("[console:sre, console:sre2]", "[console:lead]");
    let lines = lines_of(&yaml);
    assert_eq!(lines.len(), 2, "{}", lines.join("\n"));
    assert!(
        lines[0]
            .starts_with("policy.approvals.outside_recommended: 2 approvals can never be given"),
        "{}",
        lines[0]
    );
    assert!(
        lines[1].starts_with("policy.approvals.freeze: 2 approvals"),
        "{}",
        lines[1]
    );
}

#[test]
fn approval_count_with_role_principal_is_accepted() {
    let yaml = MINIMAL.replace(
        "[console:sre, console:sre2]",
        "[discord-role:539082325061836999]",
    );
    assert!(Config::from_yaml_str(&yaml).is_ok());
}

#[test]
fn alias_used_twice_is_reported() {
    let yaml = "
services:
  synapse:
    kind: deployment
    safe: {min: 2, max: 12}
    recommended: {min: 3, max: 4}
  nexus:
    aliases: [gateway, synapse]
    kind: deployment
    safe: {min: 3, max: 20}
    recommended: {min: 3, max: 5}
  edge:
    aliases: [gateway]
    kind: deployment
    safe: {min: 1, max: 2}
    recommended: {min: 1, max: 2}
roles:
  approvers: [console:sre, console:sre2]
  admins: [console:lead]
";
    assert_eq!(
        lines_of(yaml),
        [
            r#"services.nexus.aliases[1]: "synapse" is already the name of synapse"#,
            r#"services.edge.aliases[0]: "gateway" is already the alias of nexus"#,
        ]
    );
}

#[test]
fn postgresql_with_hpa_is_reported() {
    let yaml = MINIMAL.replace("kind: deployment", "kind: postgresql\n    hpa: synapse-hpa");
    let lines = lines_of(&yaml);
    assert_eq!(lines.len(), 1, "{}", lines.join("\n"));
    assert!(
        lines[0].starts_with(
            r#"services.synapse.hpa: "synapse-hpa" is not allowed for kind postgresql"#
        ),
        "{}",
        lines[0]
    );
}

#[test]
fn hpa_none_disables_default() {
    let yaml = MINIMAL.replace("kind: deployment", "kind: deployment\n    hpa: none");
    let config = Config::from_yaml_str(&yaml).unwrap();
    assert_eq!(config.services[0].hpa, None);
}

#[test]
fn check_items_must_be_separate() {
    let yaml = MINIMAL.replace(
        "    kind: deployment\n",
        "    kind: deployment\n    checks:\n      - kafka-consumer-lag: {group: g}\n        partition-limit: {topic: t}\n",
    );
    let text = errors_of(&yaml).to_string();
    assert!(text.contains("write one check per item"), "{text}");
}

#[test]
fn redis_url_is_validated_and_masked() {
    let yaml = format!("{MINIMAL}redis:\n  url: redis://:s3cret@redis.butterfly:6379/0\n");
    let config = Config::from_yaml_str(&yaml).unwrap();
    let url = config.redis.url.as_ref().unwrap();
    assert_eq!(url.expose(), "redis://:s3cret@redis.butterfly:6379/0");
    assert_eq!(url.to_string(), "redis://:****@redis.butterfly:6379/0");
    assert!(!format!("{config:?}").contains("s3cret"));
}

#[test]
fn redis_url_override_is_validated() {
    let mut config = Config::from_yaml_str(MINIMAL).unwrap();
    let error = config
        .override_redis_url("localhost:6379")
        .unwrap_err()
        .to_string();
    assert!(
        error.starts_with("SCALEBOT_REDIS_URL: \"localhost:6379\" is not a usable Redis URL"),
        "{error}"
    );
    config.override_redis_url("redis://10.0.0.5:6380").unwrap();
    assert_eq!(config.redis.url.unwrap().expose(), "redis://10.0.0.5:6380");
}

#[test]
fn render_effective_masks_password() {
    let yaml = format!("{MINIMAL}redis:\n  url: redis://bot:s3cret@redis:6379\n");
    let text = Config::from_yaml_str(&yaml).unwrap().render_effective();
    assert!(text.contains("redis://bot:****@redis:6379"), "{text}");
    assert!(!text.contains("s3cret"), "{text}");
}

#[test]
fn render_effective_reads_back_to_same_config() {
    let config = shipped();
    let text = config.render_effective();
    let again = Config::from_yaml_str(&text).unwrap_or_else(|errors| panic!("{errors}\n{text}"));
    assert_eq!(again, config);
    assert!(text.contains("approval_expiry: 15m"), "{text}");
    assert!(text.contains("hpa: none"), "{text}");
}

#[test]
fn chat_sections_are_off_unless_present() {
    let config = Config::from_yaml_str(MINIMAL).unwrap();
    assert!(config.slack.is_none());
    assert!(config.discord.is_none());
}

#[test]
fn chat_sections_read_with_defaults() {
    use commands::config::{CommandScope, SlackMode};
    let yaml = format!(
        "{MINIMAL}slack:\n  mode: socket\n  channels: [C024BE91L]\ndiscord:\n  guilds: [\"1098765432109876543\"]\n"
    );
    let config = Config::from_yaml_str(&yaml).unwrap();
    let slack = config.slack.as_ref().unwrap();
    assert_eq!(slack.mode, SlackMode::Socket);
    assert_eq!(slack.channels, vec!["C024BE91L".to_string()]);
    assert_eq!(slack.socket_connections, 1);
    assert_eq!(slack.group_cache, Duration::from_secs(300));
    let discord = config.discord.as_ref().unwrap();
    assert_eq!(discord.commands, CommandScope::Guild);
    assert_eq!(discord.guilds, vec![1098765432109876543]);
    assert_eq!(discord.prefix, "!");
    assert!(discord.threads);
    let rendered = config.render_effective();
    let again = Config::from_yaml_str(&rendered).unwrap();
    assert_eq!(again, config);
}

#[test]
fn chat_section_problems_are_all_reported() {
    let yaml = format!(
        "{MINIMAL}slack:\n  mode: websocket\n  channels: [U024BE7LH, general]\n  socket_connections: 11\n  group_cache: soon\ndiscord:\n  guilds: []\n  channels: [general]\n  prefix: \"run it\"\n"
    );
    let lines = lines_of(&yaml);
    assert_has_line(&lines, "slack.mode: \"websocket\"; expected http or socket");
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("slack.channels[0]: \"U024BE7LH\" is not a Slack channel id")),
        "{lines:?}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("slack.channels[1]: \"general\" is not a Slack channel id")),
        "{lines:?}"
    );
    assert_has_line(&lines, "slack.socket_connections: 11; expected 1 to 10");
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("slack.group_cache: \"soon\"")),
        "{lines:?}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("discord.guilds: empty, but discord.commands is guild")),
        "{lines:?}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("discord.channels[0]: \"general\" is not a Discord id")),
        "{lines:?}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("discord.prefix: \"run it\"")),
        "{lines:?}"
    );
}

#[test]
fn chat_section_rejects_unknown_keys() {
    let yaml = format!("{MINIMAL}slack:\n  bot_token: xoxb-secret\n");
    let text = errors_of(&yaml).to_string();
    assert!(text.contains("bot_token"), "{text}");
}

#[test]
fn data_store_needs_known_name_and_statefulset() {
    let yaml = MINIMAL.replace(
        "    kind: deployment\n",
        "    kind: deployment\n    data_store: cassandra\n",
    );
    let lines = lines_of(&yaml);
    assert_has_line(
        &lines,
        "services.synapse.data_store: only a statefulset has a data store procedure; remove the key or set kind: statefulset",
    );
    let yaml = MINIMAL.replace(
        "    kind: deployment\n",
        "    kind: statefulset\n    data_store: mongodb\n",
    );
    let lines = lines_of(&yaml);
    assert_has_line(
        &lines,
        r#"services.synapse.data_store: unknown data store "mongodb"; expected cassandra, kafka or redis-cluster"#,
    );
}

#[test]
fn shipped_config_names_data_stores() {
    let config = Config::load(Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../deploy/config/butterfly.yaml"
    )))
    .unwrap();
    let store_of = |name: &str| {
        config
            .services
            .iter()
            .find(|s| s.name == name)
            .and_then(|s| s.data_store)
    };
    assert_eq!(store_of("cassandra"), Some(DataStore::Cassandra));
    assert_eq!(store_of("kafka"), Some(DataStore::Kafka));
    assert_eq!(store_of("redis"), Some(DataStore::RedisCluster));
    assert_eq!(store_of("synapse"), None);
}
