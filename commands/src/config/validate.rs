//! Second phase of reading the config: checks every value of the raw
//! structs, collects each problem with its key path, and builds the typed
//! config only when there is none. Where a value is invalid, a validator
//! returns a default so that the remaining checks still run. That default is
//! never used, because any problem discards the whole config.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use redis::IntoConnectionInfo;

use super::raw::{RawApprovals, RawCluster, RawConfig, RawPolicy, RawRate, RawRedis, RawRoles};
use super::{
    Approvals, ClusterConfig, Config, ConfigError, DURATION_FORMS, LockScope, PolicyConfig,
    RateLimit, RedisConfig, RedisUrl, Roles, mask_url_password, parse_duration, services,
};
use super::{
    DEFAULT_APPROVAL_EXPIRY, DEFAULT_APPROVALS_FREEZE, DEFAULT_APPROVALS_OUTSIDE_RECOMMENDED,
    DEFAULT_APPROVALS_WITHIN_RECOMMENDED, DEFAULT_COOLDOWN_PER_SERVICE, DEFAULT_KEY_PREFIX,
    DEFAULT_LOCK_TTL, DEFAULT_NAMESPACE, DEFAULT_QUEUE_MAX_WAIT, DEFAULT_RATE_PERIOD,
    DEFAULT_RATE_REQUESTS, DEFAULT_ROLLOUT_TIMEOUT, MAX_APPROVALS,
};
use crate::identity::{PRINCIPAL_FORMS, Principal};

/// Problems collected so far.
#[derive(Debug, Default)]
pub(super) struct Problems(Vec<ConfigError>);

impl Problems {
    pub fn invalid(&mut self, key: impl Into<String>, problem: impl Into<String>) {
        self.0.push(ConfigError::Invalid {
            key: key.into(),
            problem: problem.into(),
        });
    }

    pub fn missing(&mut self, key: impl Into<String>, expected: impl Into<String>) {
        self.0.push(ConfigError::Missing {
            key: key.into(),
            expected: expected.into(),
        });
    }

    pub fn into_result(self) -> Result<(), Vec<ConfigError>> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(self.0)
        }
    }
}

pub(super) fn validate(raw: RawConfig) -> Result<Config, Vec<ConfigError>> {
    // Services take their default namespace from the cluster section, so it
    // is read first. Its problems are reported last, as in file order.
    let mut cluster_problems = Problems::default();
    let cluster = cluster(&mut cluster_problems, raw.cluster.unwrap_or_default());
    let mut problems = Problems::default();
    let services = services::services(&mut problems, raw.services, &cluster.namespace);
    let roles = roles(&mut problems, raw.roles);
    let policy = policy(&mut problems, raw.policy.unwrap_or_default());
    approvals_reachable(&mut problems, &roles, &policy.approvals);
    let redis = redis(&mut problems, raw.redis.unwrap_or_default());
    let slack = raw.slack.map(|raw| super::chat::slack(&mut problems, raw));
    let discord = raw
        .discord
        .map(|raw| super::chat::discord(&mut problems, raw));
    problems.0.extend(cluster_problems.0);
    problems.into_result()?;
    Ok(Config {
        services,
        roles,
        policy,
        redis,
        cluster,
        slack,
        discord,
    })
}

fn roles(problems: &mut Problems, raw: Option<RawRoles>) -> Roles {
    let Some(raw) = raw else {
        problems.missing(
            "roles",
            "the lists roles.requesters, roles.approvers and roles.admins",
        );
        return Roles::default();
    };
    let roles = Roles {
        requesters: principals(problems, "roles.requesters", &raw.requesters),
        approvers: principals(problems, "roles.approvers", &raw.approvers),
        admins: principals(problems, "roles.admins", &raw.admins),
    };
    if raw.approvers.is_empty() && raw.admins.is_empty() {
        problems.invalid(
            "roles.approvers",
            format!("empty, and so is roles.admins; expected at least one of {PRINCIPAL_FORMS}, because every change needs an approval"),
        );
    }
    if raw.admins.is_empty() {
        problems.invalid(
            "roles.admins",
            format!("empty; expected at least one of {PRINCIPAL_FORMS}, because only admins may lift a freeze"),
        );
    }
    roles
}

fn principals(problems: &mut Problems, key: &str, entries: &[String]) -> Vec<Principal> {
    let mut parsed = Vec::new();
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    for (position, entry) in entries.iter().enumerate() {
        let entry_key = format!("{key}[{position}]");
        match entry.trim().parse::<Principal>() {
            Ok(principal) => {
                let text = principal.to_string();
                if let Some(first) = seen.get(&text) {
                    problems.invalid(
                        entry_key,
                        format!("{text} is already listed at {key}[{first}]"),
                    );
                } else {
                    seen.insert(text, position);
                    parsed.push(principal);
                }
            }
            Err(error) => problems.invalid(entry_key, error.to_string()),
        }
    }
    parsed
}

/// Reports approval counts that the configured users can never reach. Role
/// and group principals stand for an unknown number of people, so with any
/// of them nothing is reported.
fn approvals_reachable(problems: &mut Problems, roles: &Roles, approvals: &Approvals) {
    let approving: Vec<&Principal> = roles.approvers.iter().chain(&roles.admins).collect();
    if approving.is_empty() || approving.iter().any(|p| !matches!(p, Principal::User(_))) {
        return;
    }
    let users: BTreeSet<String> = approving.iter().map(|p| p.to_string()).collect();
    let counts = [
        ("within_recommended", approvals.within_recommended),
        ("outside_recommended", approvals.outside_recommended),
        ("freeze", approvals.freeze),
    ];
    for (name, needed) in counts {
        if needed as usize > users.len() {
            problems.invalid(
                format!("policy.approvals.{name}"),
                format!(
                    "{needed} approvals can never be given, because roles.approvers and roles.admins name only {} user(s): {}",
                    users.len(),
                    users.iter().cloned().collect::<Vec<_>>().join(", ")
                ),
            );
        }
    }
}

fn policy(problems: &mut Problems, raw: RawPolicy) -> PolicyConfig {
    let key = |name: &str| format!("policy.{name}");
    let approvals = approvals(problems, raw.approvals.unwrap_or_default());
    let approval_expiry = duration(
        problems,
        &key("approval_expiry"),
        raw.approval_expiry,
        DEFAULT_APPROVAL_EXPIRY,
    );
    let cooldown_per_service = duration(
        problems,
        &key("cooldown_per_service"),
        raw.cooldown_per_service,
        DEFAULT_COOLDOWN_PER_SERVICE,
    );
    let rate_limit = rate_limit(problems, raw.rate_limit.and_then(|r| r.per_requester));
    let lock_scope = lock_scope(problems, raw.lock_scope.as_deref());
    PolicyConfig {
        approvals,
        approval_expiry,
        cooldown_per_service,
        rate_limit,
        lock_scope,
        lock_ttl: duration(problems, &key("lock_ttl"), raw.lock_ttl, DEFAULT_LOCK_TTL),
        queue_max_wait: duration(
            problems,
            &key("queue_max_wait"),
            raw.queue_max_wait,
            DEFAULT_QUEUE_MAX_WAIT,
        ),
        rollout_timeout: duration(
            problems,
            &key("rollout_timeout"),
            raw.rollout_timeout,
            DEFAULT_ROLLOUT_TIMEOUT,
        ),
    }
}

fn rate_limit(problems: &mut Problems, raw: Option<RawRate>) -> RateLimit {
    let raw = raw.unwrap_or_default();
    let key = "policy.rate_limit.per_requester";
    RateLimit {
        requests: count(
            problems,
            &format!("{key}.requests"),
            raw.requests,
            DEFAULT_RATE_REQUESTS,
            1,
            u32::MAX,
        ),
        per: duration(
            problems,
            &format!("{key}.per"),
            raw.per,
            DEFAULT_RATE_PERIOD,
        ),
    }
}

fn lock_scope(problems: &mut Problems, raw: Option<&str>) -> LockScope {
    let Some(name) = raw.map(str::trim) else {
        return LockScope::Namespace;
    };
    LockScope::from_name(name).unwrap_or_else(|| {
        problems.invalid(
            "policy.lock_scope",
            format!(
                "{name:?} is not a lock scope; expected {}",
                LockScope::NAMES
            ),
        );
        LockScope::Namespace
    })
}

fn approvals(problems: &mut Problems, raw: RawApprovals) -> Approvals {
    let mut approval_count = |name: &str, value, default| {
        count(
            problems,
            &format!("policy.approvals.{name}"),
            value,
            default,
            1,
            MAX_APPROVALS,
        )
    };
    let approvals = Approvals {
        within_recommended: approval_count(
            "within_recommended",
            raw.within_recommended,
            DEFAULT_APPROVALS_WITHIN_RECOMMENDED,
        ),
        outside_recommended: approval_count(
            "outside_recommended",
            raw.outside_recommended,
            DEFAULT_APPROVALS_OUTSIDE_RECOMMENDED,
        ),
        freeze: approval_count("freeze", raw.freeze, DEFAULT_APPROVALS_FREEZE),
    };
    if approvals.within_recommended > approvals.outside_recommended {
        problems.invalid(
            "policy.approvals.within_recommended",
            format!(
                "{} is above outside_recommended {}; a change outside the recommended range must not need fewer approvals",
                approvals.within_recommended, approvals.outside_recommended
            ),
        );
    }
    approvals
}

fn redis(problems: &mut Problems, raw: RawRedis) -> RedisConfig {
    let url = raw
        .url
        .and_then(|url| redis_url(problems, "redis.url", &url));
    let key_prefix = match raw.key_prefix {
        None => DEFAULT_KEY_PREFIX.to_string(),
        Some(prefix) if prefix.is_empty() || prefix.chars().any(char::is_whitespace) => {
            problems.invalid(
                "redis.key_prefix",
                format!(
                    "{prefix:?} is empty or contains whitespace; expected e.g. {DEFAULT_KEY_PREFIX}"
                ),
            );
            prefix
        }
        Some(prefix) => prefix,
    };
    RedisConfig { url, key_prefix }
}

/// Expected form of a Redis URL, as the redis crate parses it.
pub const REDIS_URL_FORMS: &str =
    "redis://[<user>][:<password>@]<host>[:<port>][/<db>] or redis+unix:///<socket path>";

/// Returns the redis crate's description of a URL parse error without its
/// error kind suffix.
pub fn redis_error_reason(error: &redis::RedisError) -> String {
    error.to_string().replace(" - InvalidClientConfig", "")
}

/// Checks a Redis URL with the redis crate's own parser, so that a URL
/// accepted here is one the client can use. Messages show the URL with its
/// password masked.
pub(super) fn redis_url(problems: &mut Problems, key: &str, url: &str) -> Option<RedisUrl> {
    let url = url.trim();
    match url.into_connection_info() {
        Ok(_) => Some(RedisUrl(url.to_string())),
        Err(error) => {
            problems.invalid(
                key,
                format!(
                    "{:?} is not a usable Redis URL ({}); expected {REDIS_URL_FORMS}",
                    mask_url_password(url),
                    redis_error_reason(&error)
                ),
            );
            None
        }
    }
}

fn cluster(problems: &mut Problems, raw: RawCluster) -> ClusterConfig {
    let namespace = raw
        .namespace
        .unwrap_or_else(|| DEFAULT_NAMESPACE.to_string());
    if !is_dns_label(&namespace) {
        problems.invalid(
            "cluster.namespace",
            format!("{namespace:?} is not a namespace name; expected {DNS_LABEL_FORM}"),
        );
    }
    let non_empty = |problems: &mut Problems, key: &str, value: Option<String>| match value {
        Some(value) if value.trim().is_empty() => {
            problems.invalid(key, "empty; remove the key to use the default");
            None
        }
        other => other,
    };
    ClusterConfig {
        kubeconfig: non_empty(problems, "cluster.kubeconfig", raw.kubeconfig).map(Into::into),
        context: non_empty(problems, "cluster.context", raw.context),
        namespace,
    }
}

/// Reads an optional whole number in `min..=max`.
pub(super) fn count(
    problems: &mut Problems,
    key: &str,
    value: Option<i64>,
    default: u32,
    min: u32,
    max: u32,
) -> u32 {
    let Some(value) = value else {
        return default;
    };
    if value < i64::from(min) {
        problems.invalid(key, format!("{value} is below the minimum of {min}"));
        return default;
    }
    if value > i64::from(max) {
        problems.invalid(key, format!("{value} is above the maximum of {max}"));
        return default;
    }
    value as u32
}

/// Reads an optional positive duration.
fn duration(
    problems: &mut Problems,
    key: &str,
    value: Option<String>,
    default: Duration,
) -> Duration {
    let Some(text) = value else {
        return default;
    };
    match parse_duration(&text) {
        None => {
            problems.invalid(
                key,
                format!("{text:?} is not a duration; expected {DURATION_FORMS}"),
            );
            default
        }
        Some(Duration::ZERO) => {
            problems.invalid(
                key,
                format!("{text:?} is zero; expected a positive duration"),
            );
            default
        }
        Some(duration) => duration,
    }
}

/// Describes [`is_dns_label`] for messages.
pub(super) const DNS_LABEL_FORM: &str = "lower-case letters, digits and '-', starting and ending with a letter or digit, at most 63 characters";

/// Describes [`is_dns_subdomain`] for messages.
pub(super) const DNS_SUBDOMAIN_FORM: &str = "lower-case letters, digits, '-' and '.', starting and ending with a letter or digit, at most 253 characters";

/// RFC 1123 label, the form of Kubernetes namespace names.
pub(super) fn is_dns_label(name: &str) -> bool {
    let bytes = name.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= 63
        && bytes
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-')
        && bytes[0].is_ascii_alphanumeric()
        && bytes[bytes.len() - 1].is_ascii_alphanumeric()
}

/// RFC 1123 subdomain, the form of Deployment, StatefulSet and HPA names.
pub(super) fn is_dns_subdomain(name: &str) -> bool {
    name.len() <= 253 && !name.is_empty() && name.split('.').all(is_dns_label)
}
