//! The services the bot may scale, as validated from the config: which
//! workload each one is, its safe and recommended replica ranges, the notes
//! a preview shows and the service-specific checks run after a change.

use std::collections::BTreeMap;
use std::fmt;

use thiserror::Error;

use crate::config::Config;

/// Largest replica count the bot accepts anywhere: in a command, in a
/// config range or as a step. No BUTTERFLY service's safe range comes near
/// it; it turns a typo such as `scale nexus 40000` into an error before any
/// range is consulted.
pub const MAX_REPLICAS: u32 = 1000;

/// Largest edit distance at which an unknown name still gets a
/// "did you mean" suggestion. Inputs of at most [`SHORT_NAME_LEN`]
/// characters allow one edit only, because two edits turn a short word into
/// almost any other short word.
pub const MAX_SUGGESTION_DISTANCE: usize = 2;

/// Length up to which a name counts as short for suggestions.
pub const SHORT_NAME_LEN: usize = 4;

/// Minimum input length for a prefix match (`odyssey` → `odyssey-core`).
pub const MIN_PREFIX_LEN: usize = 3;

/// The service named in a request is not in the catalog.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[error("{}", describe_unknown(.input, .suggestions, .services))]
pub struct UnknownService {
    pub input: String,
    /// Names of services that are close to the input, closest first.
    pub suggestions: Vec<String>,
    /// Every service name, sorted, shown when no name is close.
    pub services: Vec<String>,
}

fn describe_unknown(input: &str, suggestions: &[String], services: &[String]) -> String {
    if suggestions.is_empty() {
        format!(
            "unknown service {input:?}; known services: {}",
            services.join(", ")
        )
    } else {
        format!(
            "unknown service {input:?}; did you mean {}?",
            join_or(suggestions)
        )
    }
}

/// Joins `a`, `a or b`, `a, b or c`.
fn join_or(items: &[String]) -> String {
    match items {
        [] => String::new(),
        [only] => only.clone(),
        [init @ .., last] => format!("{} or {last}", init.join(", ")),
    }
}

/// Kubernetes kind of a service's workload, which sets how its replica
/// count is changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum WorkloadKind {
    /// `apps/v1` Deployment, scaled through its scale subresource.
    Deployment,
    /// `apps/v1` StatefulSet, scaled through its scale subresource.
    StatefulSet,
    /// Zalando postgres-operator `postgresql` resource. Its CRD has no scale
    /// subresource, so `spec.numberOfInstances` is patched instead.
    Postgresql,
}

impl WorkloadKind {
    /// Names as written in the config.
    pub const NAMES: &'static str = "deployment, statefulset or postgresql";

    pub fn as_str(self) -> &'static str {
        match self {
            WorkloadKind::Deployment => "deployment",
            WorkloadKind::StatefulSet => "statefulset",
            WorkloadKind::Postgresql => "postgresql",
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "deployment" => Some(WorkloadKind::Deployment),
            "statefulset" => Some(WorkloadKind::StatefulSet),
            "postgresql" => Some(WorkloadKind::Postgresql),
            _ => None,
        }
    }
}

impl fmt::Display for WorkloadKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Runbook procedure of a stateful data store, which adds steps to the
/// replica change of its StatefulSet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DataStore {
    /// "Infrastructure Scaling: Cassandra" and "Cassandra Scale Down": one
    /// node at a time, waiting for `UN` and repairing after an addition, and
    /// decommissioning the highest ordinal before a removal.
    Cassandra,
    /// "Infrastructure Scaling: Kafka" and "Kafka Scale Down": wait for new
    /// brokers, then reassign partitions onto them; reassign partitions away
    /// from the brokers to remove before removing them.
    Kafka,
    /// "Infrastructure Scaling: Redis": add whole shards with `redis-cli
    /// --cluster add-node`, then rebalance onto the new masters.
    RedisCluster,
}

impl DataStore {
    /// Names as written in the config.
    pub const NAMES: &'static str = "cassandra, kafka or redis-cluster";

    pub fn as_str(self) -> &'static str {
        match self {
            DataStore::Cassandra => "cassandra",
            DataStore::Kafka => "kafka",
            DataStore::RedisCluster => "redis-cluster",
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "cassandra" => Some(DataStore::Cassandra),
            "kafka" => Some(DataStore::Kafka),
            "redis-cluster" => Some(DataStore::RedisCluster),
            _ => None,
        }
    }
}

/// An inclusive range of replica counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Range {
    pub min: u32,
    pub max: u32,
}

impl Range {
    pub fn contains(&self, replicas: u32) -> bool {
        self.min <= replicas && replicas <= self.max
    }
}

/// Written `2-12`, as the capacity table of the runbook writes ranges.
impl fmt::Display for Range {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.min, self.max)
    }
}

/// A service-specific check that the runbook requires after scaling.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServiceCheck {
    /// Pod logs show a Cassandra connection (`grep -i "cassandra.*connected"`).
    CassandraConnected,
    /// Pod logs show a Redis connection (`grep -i "redis.*connected"`).
    RedisConnected,
    /// Lag of a Kafka consumer group, as `kafka-consumer-groups.sh --describe`
    /// reports it.
    KafkaConsumerLag { group: String },
    /// Replicas must not exceed the partition count of the topic the service
    /// consumes, because extra consumers in a group stay idle.
    PartitionLimit { topic: String },
    /// A Prometheus counter of safety violations that must not rise during
    /// and after the change.
    SafetyViolationsMetric { metric: String },
}

impl ServiceCheck {
    /// Check names as written in the config, with their parameter.
    pub const FORMS: &'static str = "cassandra-connected, redis-connected, kafka-consumer-lag: {group: <consumer group>}, partition-limit: {topic: <topic>} or safety-violations-metric: {metric: <metric name>}";

    pub fn name(&self) -> &'static str {
        match self {
            ServiceCheck::CassandraConnected => "cassandra-connected",
            ServiceCheck::RedisConnected => "redis-connected",
            ServiceCheck::KafkaConsumerLag { .. } => "kafka-consumer-lag",
            ServiceCheck::PartitionLimit { .. } => "partition-limit",
            ServiceCheck::SafetyViolationsMetric { .. } => "safety-violations-metric",
        }
    }

    /// Returns the parameter name and value of a check that has one.
    pub fn parameter(&self) -> Option<(&'static str, &str)> {
        match self {
            ServiceCheck::CassandraConnected | ServiceCheck::RedisConnected => None,
            ServiceCheck::KafkaConsumerLag { group } => Some(("group", group)),
            ServiceCheck::PartitionLimit { topic } => Some(("topic", topic)),
            ServiceCheck::SafetyViolationsMetric { metric } => Some(("metric", metric)),
        }
    }
}

impl fmt::Display for ServiceCheck {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.parameter() {
            None => f.write_str(self.name()),
            Some((key, value)) => write!(f, "{} ({key} {value})", self.name()),
        }
    }
}

/// One scalable service of the platform.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Service {
    /// Lower-case name, unique across names and aliases.
    pub name: String,
    /// Other lower-case names that resolve to this service.
    pub aliases: Vec<String>,
    pub kind: WorkloadKind,
    /// Name of the Kubernetes object that is scaled.
    pub workload: String,
    pub namespace: String,
    /// Name of the HorizontalPodAutoscaler that targets the workload, if any.
    pub hpa: Option<String>,
    /// Replica counts the bot accepts at all.
    pub safe: Range,
    /// Replica counts that need the smaller number of approvals.
    pub recommended: Range,
    /// Operator notes shown in every preview of this service.
    pub notes: Vec<String>,
    pub checks: Vec<ServiceCheck>,
    /// Whether a requester may approve their own request for this service.
    pub self_approval_allowed: bool,
    /// Largest change of replicas in one request, if limited.
    pub max_step: Option<u32>,
    /// Data store procedure of a StatefulSet. A StatefulSet without one
    /// cannot be scaled from chat.
    pub data_store: Option<DataStore>,
}

/// The services by name, with case-insensitive lookup over names and
/// aliases.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Catalog {
    services: Vec<Service>,
    /// Lower-case name or alias → index into `services`.
    index: BTreeMap<String, usize>,
}

impl Catalog {
    /// Builds the catalog from the services of a validated config, in file
    /// order. Validation guarantees that no name or alias is used twice.
    pub fn from_config(config: &Config) -> Self {
        Self::new(config.services.clone())
    }

    fn new(services: Vec<Service>) -> Self {
        let mut index = BTreeMap::new();
        for (position, service) in services.iter().enumerate() {
            for name in std::iter::once(&service.name).chain(&service.aliases) {
                let previous = index.insert(name.to_lowercase(), position);
                debug_assert!(previous.is_none(), "{name} is used twice");
            }
        }
        Self { services, index }
    }

    /// Services in config order.
    pub fn services(&self) -> std::slice::Iter<'_, Service> {
        self.services.iter()
    }

    /// Finds a service by its exact name.
    pub fn get(&self, name: &str) -> Option<&Service> {
        self.services.iter().find(|s| s.name == name)
    }

    /// Finds a service by name or alias, ignoring case and surrounding
    /// whitespace. An unknown input returns the closest names.
    pub fn resolve(&self, input: &str) -> Result<&Service, UnknownService> {
        // Chat clients quote names (`"synapse"`); the quotes are not part
        // of the name.
        let key = input.trim().trim_matches(['"', '\'', '`']).to_lowercase();
        if let Some(&position) = self.index.get(&key) {
            return Ok(&self.services[position]);
        }
        let mut services: Vec<String> = self.services.iter().map(|s| s.name.clone()).collect();
        services.sort();
        Err(UnknownService {
            input: input.trim().to_string(),
            suggestions: self.suggest(&key),
            services,
        })
    }

    /// Names of services whose name or an alias is within the suggestion
    /// distance of `key` or starts with it, closest first.
    fn suggest(&self, key: &str) -> Vec<String> {
        let allowed = if key.chars().count() <= SHORT_NAME_LEN {
            1
        } else {
            MAX_SUGGESTION_DISTANCE
        };
        let mut best: BTreeMap<usize, usize> = BTreeMap::new();
        for (name, &position) in &self.index {
            let distance = edit_distance(key, name);
            let prefix = key.chars().count() >= MIN_PREFIX_LEN && name.starts_with(key);
            let score = if distance <= allowed {
                distance
            } else if prefix {
                allowed + 1
            } else {
                continue;
            };
            let entry = best.entry(position).or_insert(score);
            *entry = (*entry).min(score);
        }
        let mut ranked: Vec<(usize, &str)> = best
            .into_iter()
            .map(|(position, score)| (score, self.services[position].name.as_str()))
            .collect();
        ranked.sort();
        ranked
            .into_iter()
            .map(|(_, name)| name.to_string())
            .collect()
    }
}

/// Optimal string alignment distance (Damerau-Levenshtein where each
/// substring is edited at most once): insertions, deletions, substitutions
/// and swaps of two adjacent characters each count one.
pub(crate) fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let width = b.len() + 1;
    let mut table = vec![0usize; (a.len() + 1) * width];
    for i in 0..=a.len() {
        table[i * width] = i;
    }
    for (j, cell) in table.iter_mut().enumerate().take(width) {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut value = (table[(i - 1) * width + j] + 1)
                .min(table[i * width + j - 1] + 1)
                .min(table[(i - 1) * width + j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                value = value.min(table[(i - 2) * width + j - 2] + 1);
            }
            table[i * width + j] = value;
        }
    }
    table[a.len() * width + b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn service(name: &str, aliases: &[&str]) -> Service {
        Service {
            name: name.to_string(),
            aliases: aliases.iter().map(|a| a.to_string()).collect(),
            kind: WorkloadKind::Deployment,
            workload: name.to_string(),
            namespace: "butterfly".to_string(),
            hpa: None,
            safe: Range { min: 2, max: 12 },
            recommended: Range { min: 3, max: 4 },
            notes: Vec::new(),
            checks: Vec::new(),
            self_approval_allowed: false,
            max_step: None,
            data_store: None,
        }
    }

    fn catalog() -> Catalog {
        Catalog::new(vec![
            service("synapse", &[]),
            service("odyssey-core", &["core"]),
            service("odyssey-horizonbox", &["horizonbox"]),
            service("odyssey-quantumroom", &["quantumroom"]),
            service("nexus", &["gateway"]),
        ])
    }

    #[test]
    fn resolve_finds_name_ignoring_case() {
        let catalog = catalog();
        assert_eq!(catalog.resolve("SynApse").unwrap().name, "synapse");
        assert_eq!(catalog.resolve(" nexus ").unwrap().name, "nexus");
    }

    #[test]
    fn resolve_finds_alias() {
        let catalog = catalog();
        assert_eq!(catalog.resolve("Gateway").unwrap().name, "nexus");
        assert_eq!(catalog.resolve("core").unwrap().name, "odyssey-core");
    }

    #[test]
    fn resolve_suggests_close_name() {
        let error = catalog().resolve("synpase").unwrap_err();
        assert_eq!(error.suggestions, vec!["synapse"]);
        assert_eq!(
            error.to_string(),
            "unknown service \"synpase\"; did you mean synapse?"
        );
    }

    #[test]
    fn resolve_suggests_service_of_close_alias() {
        let error = catalog().resolve("gatway").unwrap_err();
        assert_eq!(error.suggestions, vec!["nexus"]);
    }

    #[test]
    fn resolve_suggests_prefix_matches() {
        let error = catalog().resolve("odyssey").unwrap_err();
        assert_eq!(
            error.suggestions,
            vec!["odyssey-core", "odyssey-horizonbox", "odyssey-quantumroom"]
        );
        assert!(
            error
                .to_string()
                .ends_with("did you mean odyssey-core, odyssey-horizonbox or odyssey-quantumroom?"),
            "{error}"
        );
    }

    #[test]
    fn resolve_lists_all_names_when_nothing_is_close() {
        let error = catalog().resolve("postgres").unwrap_err();
        assert!(error.suggestions.is_empty());
        assert_eq!(
            error.to_string(),
            "unknown service \"postgres\"; known services: nexus, odyssey-core, odyssey-horizonbox, odyssey-quantumroom, synapse"
        );
    }

    #[test]
    fn edit_distance_counts_adjacent_swap_once() {
        assert_eq!(edit_distance("synpase", "synapse"), 1);
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(edit_distance("same", "same"), 0);
    }
}
