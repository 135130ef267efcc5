//! Validation of the `services` section.

use std::collections::BTreeMap;

use super::raw::{OrderedMap, RawCheck, RawRange, RawService};
use super::validate::{
    DNS_LABEL_FORM, DNS_SUBDOMAIN_FORM, Problems, count, is_dns_label, is_dns_subdomain,
};
use crate::catalog::{DataStore, MAX_REPLICAS, Range, Service, ServiceCheck, WorkloadKind};

/// Describes the form of service names and aliases for messages.
const SERVICE_NAME_FORM: &str =
    "lower-case letters, digits and '-', starting with a letter, at most 63 characters";

/// The `hpa` value that means the workload has no HorizontalPodAutoscaler.
const NO_HPA: &str = "none";

pub(super) fn services(
    problems: &mut Problems,
    raw: Option<OrderedMap<RawService>>,
    default_namespace: &str,
) -> Vec<Service> {
    let entries = raw.map(|map| map.0).unwrap_or_default();
    if entries.is_empty() {
        problems.missing("services", "at least one service, e.g. services: {synapse: {kind: deployment, safe: {min: 2, max: 12}, recommended: {min: 3, max: 4}}}");
        return Vec::new();
    }
    let services: Vec<Service> = entries
        .into_iter()
        .map(|(name, raw)| service(problems, name, raw, default_namespace))
        .collect();
    check_names_unique(problems, &services);
    services
}

/// Names must start with a letter, so that `scale 4 synapse` cannot name a
/// service "4". Otherwise they follow the DNS label rule, because a name is
/// also the default workload name.
fn is_service_name(name: &str) -> bool {
    is_dns_label(name) && name.as_bytes()[0].is_ascii_lowercase()
}

fn service(
    problems: &mut Problems,
    name: String,
    raw: RawService,
    default_namespace: &str,
) -> Service {
    let key = format!("services.{name}");
    check_names(problems, &key, &name, &raw);
    let kind = kind(problems, &key, raw.kind.as_deref());
    let hpa = hpa(problems, &key, &name, kind, raw.hpa);
    let safe = range(problems, &format!("{key}.safe"), raw.safe);
    let recommended = range(problems, &format!("{key}.recommended"), raw.recommended);
    if let (Some(safe), Some(recommended)) = (safe, recommended) {
        recommended_within_safe(problems, &key, safe, recommended);
    }
    for (position, note) in raw.notes.iter().enumerate() {
        if note.trim().is_empty() {
            problems.invalid(
                format!("{key}.notes[{position}]"),
                "empty note; remove it or write the note",
            );
        }
    }
    let max_step = raw.max_step.map(|step| {
        count(
            problems,
            &format!("{key}.max_step"),
            Some(step),
            1,
            1,
            MAX_REPLICAS,
        )
    });
    let data_store = data_store(problems, &key, kind, raw.data_store.as_deref());
    Service {
        checks: checks(problems, &key, &raw.checks),
        workload: raw.workload.unwrap_or_else(|| name.clone()),
        namespace: raw
            .namespace
            .unwrap_or_else(|| default_namespace.to_string()),
        name,
        aliases: raw.aliases,
        kind: kind.unwrap_or(WorkloadKind::Deployment),
        hpa,
        safe: safe.unwrap_or(Range { min: 0, max: 0 }),
        recommended: recommended.unwrap_or(Range { min: 0, max: 0 }),
        notes: raw.notes,
        self_approval_allowed: raw.self_approval_allowed.unwrap_or(false),
        max_step,
        data_store,
    }
}

/// Reads `data_store`, which only a StatefulSet may name.
fn data_store(
    problems: &mut Problems,
    key: &str,
    kind: Option<WorkloadKind>,
    name: Option<&str>,
) -> Option<DataStore> {
    let name = name?;
    let Some(store) = DataStore::from_name(name) else {
        problems.invalid(
            format!("{key}.data_store"),
            format!("unknown data store {name:?}; expected {}", DataStore::NAMES),
        );
        return None;
    };
    if kind.is_some_and(|kind| kind != WorkloadKind::StatefulSet) {
        problems.invalid(
            format!("{key}.data_store"),
            "only a statefulset has a data store procedure; remove the key or set kind: statefulset",
        );
    }
    Some(store)
}

/// Checks the forms of the service name, its aliases, and an explicit
/// workload and namespace. Defaults are checked where they come from (the
/// service name and cluster.namespace), so they are not reported again.
fn check_names(problems: &mut Problems, key: &str, name: &str, raw: &RawService) {
    if !is_service_name(name) {
        problems.invalid(
            key,
            format!("{name:?} is not a valid service name; expected {SERVICE_NAME_FORM}"),
        );
    }
    for (position, alias) in raw.aliases.iter().enumerate() {
        if !is_service_name(alias) {
            problems.invalid(
                format!("{key}.aliases[{position}]"),
                format!("{alias:?} is not a valid alias; expected {SERVICE_NAME_FORM}"),
            );
        }
    }
    if let Some(workload) = raw.workload.as_deref().filter(|w| !is_dns_subdomain(w)) {
        problems.invalid(
            format!("{key}.workload"),
            format!("{workload:?} is not a Kubernetes object name; expected {DNS_SUBDOMAIN_FORM}"),
        );
    }
    if let Some(namespace) = raw.namespace.as_deref().filter(|n| !is_dns_label(n)) {
        problems.invalid(
            format!("{key}.namespace"),
            format!("{namespace:?} is not a namespace name; expected {DNS_LABEL_FORM}"),
        );
    }
}

fn kind(problems: &mut Problems, key: &str, raw: Option<&str>) -> Option<WorkloadKind> {
    let key = format!("{key}.kind");
    let Some(text) = raw else {
        problems.missing(key, WorkloadKind::NAMES);
        return None;
    };
    let kind = WorkloadKind::from_name(text.trim());
    if kind.is_none() {
        problems.invalid(
            key,
            format!(
                "{text:?} is not a workload kind; expected {}",
                WorkloadKind::NAMES
            ),
        );
    }
    kind
}

/// Resolves the HPA name: `none` means no HPA, a missing key means
/// `<name>-hpa` for a Deployment (the runbook's naming) and no HPA for
/// other kinds.
fn hpa(
    problems: &mut Problems,
    key: &str,
    name: &str,
    kind: Option<WorkloadKind>,
    raw: Option<String>,
) -> Option<String> {
    let key = format!("{key}.hpa");
    let hpa = match raw.as_deref().map(str::trim) {
        None if kind == Some(WorkloadKind::Deployment) => return Some(format!("{name}-hpa")),
        None | Some(NO_HPA) => return None,
        Some(hpa) => hpa.to_string(),
    };
    if kind == Some(WorkloadKind::Postgresql) {
        problems.invalid(
            &key,
            format!("{hpa:?} is not allowed for kind postgresql, because its resource has no scale subresource for an HPA to target; expected {NO_HPA} or no key"),
        );
    }
    if !is_dns_subdomain(&hpa) {
        problems.invalid(
            &key,
            format!("{hpa:?} is not an HPA name; expected {NO_HPA} or {DNS_SUBDOMAIN_FORM}"),
        );
    }
    Some(hpa)
}

fn range(problems: &mut Problems, key: &str, raw: Option<RawRange>) -> Option<Range> {
    let Some(raw) = raw else {
        problems.missing(key, "{min: <replicas>, max: <replicas>}");
        return None;
    };
    let mut bound = |name: &str, value: Option<i64>| {
        let bound_key = format!("{key}.{name}");
        match value {
            None => {
                problems.missing(
                    bound_key,
                    format!("a replica count from 0 to {MAX_REPLICAS}"),
                );
                None
            }
            Some(value) if !(0..=i64::from(MAX_REPLICAS)).contains(&value) => {
                problems.invalid(
                    bound_key,
                    format!("{value} is not a replica count; expected 0 to {MAX_REPLICAS}"),
                );
                None
            }
            Some(value) => Some(value as u32),
        }
    };
    let min = bound("min", raw.min);
    let max = bound("max", raw.max);
    let (min, max) = (min?, max?);
    let section = key.rsplit('.').next().unwrap_or(key);
    if max < min {
        problems.invalid(
            format!("{key}.max"),
            format!("{max} is below {section}.min {min}"),
        );
        return None;
    }
    Some(Range { min, max })
}

fn recommended_within_safe(problems: &mut Problems, key: &str, safe: Range, recommended: Range) {
    if recommended.min < safe.min {
        problems.invalid(
            format!("{key}.recommended.min"),
            format!("{} is below safe.min {}", recommended.min, safe.min),
        );
    }
    if recommended.max > safe.max {
        problems.invalid(
            format!("{key}.recommended.max"),
            format!("{} is above safe.max {}", recommended.max, safe.max),
        );
    }
}

fn checks(problems: &mut Problems, key: &str, raw: &[RawCheck]) -> Vec<ServiceCheck> {
    let mut checks: Vec<ServiceCheck> = Vec::new();
    for (position, entry) in raw.iter().enumerate() {
        let check_key = format!("{key}.checks[{position}]");
        let Some(check) = check(problems, &check_key, entry) else {
            continue;
        };
        if let Some(first) = checks.iter().position(|c| c == &check) {
            problems.invalid(
                check_key,
                format!("{check} is already listed at checks[{first}]"),
            );
            continue;
        }
        checks.push(check);
    }
    checks
}

/// Converts one `checks` entry, reporting an unknown name, a missing or
/// unknown parameter, or parameters on a check that takes none.
fn check(problems: &mut Problems, key: &str, raw: &RawCheck) -> Option<ServiceCheck> {
    let name = raw.name.trim();
    let parameter = match name {
        "cassandra-connected" | "redis-connected" => None,
        "kafka-consumer-lag" => Some(("group", "the consumer group name, e.g. synapse-service")),
        "partition-limit" => Some(("topic", "the consumed topic, e.g. perception.events")),
        "safety-violations-metric" => Some((
            "metric",
            "the Prometheus counter, e.g. synapse_safety_violations_total",
        )),
        _ => {
            problems.invalid(
                key,
                format!("{name:?} is not a check; expected {}", ServiceCheck::FORMS),
            );
            return None;
        }
    };
    let empty = BTreeMap::new();
    let parameters = raw.parameters.as_ref().unwrap_or(&empty);
    let mut valid = true;
    for extra in parameters
        .keys()
        .filter(|k| Some(k.as_str()) != parameter.map(|p| p.0))
    {
        let expected = match parameter {
            Some((parameter, _)) => format!("only {parameter}"),
            None => "none, write the bare name".to_string(),
        };
        problems.invalid(
            format!("{key}.{name}.{extra}"),
            format!("unknown parameter of {name}; expected {expected}"),
        );
        valid = false;
    }
    let value = match parameter {
        None => String::new(),
        Some((parameter, description)) => match parameters.get(parameter).map(|v| v.trim()) {
            Some(value) if !value.is_empty() => value.to_string(),
            _ => {
                problems.missing(format!("{key}.{name}.{parameter}"), description);
                return None;
            }
        },
    };
    if !valid {
        return None;
    }
    Some(match name {
        "cassandra-connected" => ServiceCheck::CassandraConnected,
        "redis-connected" => ServiceCheck::RedisConnected,
        "kafka-consumer-lag" => ServiceCheck::KafkaConsumerLag { group: value },
        "partition-limit" => ServiceCheck::PartitionLimit { topic: value },
        _ => ServiceCheck::SafetyViolationsMetric { metric: value },
    })
}

/// Reports every name or alias that another entry already uses.
fn check_names_unique(problems: &mut Problems, services: &[Service]) {
    // The YAML parser rejects a service name written twice, so only
    // aliases can collide.
    let mut owners: BTreeMap<&str, &str> = services
        .iter()
        .map(|s| (s.name.as_str(), s.name.as_str()))
        .collect();
    for service in services {
        for (position, alias) in service.aliases.iter().enumerate() {
            if let Some(owner) = owners.insert(alias, &service.name) {
                let what = if services.iter().any(|s| s.name == *alias) {
                    "name"
                } else {
                    "alias"
                };
                problems.invalid(
                    format!("services.{}.aliases[{position}]", service.name),
                    format!("{alias:?} is already the {what} of {owner}"),
                );
            }
        }
    }
}
