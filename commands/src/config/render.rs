//! The effective config as YAML, defaults filled in and secrets masked, for
//! the start-up log and `scalebot config check`.

use super::raw::{
    OrderedMap, RawApprovals, RawCheck, RawCluster, RawConfig, RawPolicy, RawRange, RawRate,
    RawRateLimit, RawRedis, RawRoles, RawService,
};
use super::{Config, format_duration};
use crate::catalog::{Range, Service};
use crate::identity::Principal;

/// Text that replaces a password.
const MASK: &str = "****";

/// Query parameters that carry a password in Redis URLs (`pass` for Unix
/// sockets in the redis crate; `password` in other clients).
const PASSWORD_PARAMETERS: [&str; 2] = ["pass", "password"];

pub(super) fn render_effective(config: &Config) -> String {
    let raw = RawConfig {
        services: Some(OrderedMap(
            config
                .services
                .iter()
                .map(|service| (service.name.clone(), raw_service(service)))
                .collect(),
        )),
        roles: Some(RawRoles {
            requesters: texts(&config.roles.requesters),
            approvers: texts(&config.roles.approvers),
            admins: texts(&config.roles.admins),
        }),
        policy: Some(raw_policy(config)),
        redis: Some(RawRedis {
            url: config.redis.url.as_ref().map(|url| url.to_string()),
            key_prefix: Some(config.redis.key_prefix.clone()),
        }),
        cluster: Some(RawCluster {
            kubeconfig: config
                .cluster
                .kubeconfig
                .as_ref()
                .map(|path| path.display().to_string()),
            context: config.cluster.context.clone(),
            namespace: Some(config.cluster.namespace.clone()),
        }),
        slack: config.slack.as_ref().map(super::chat::render_slack),
        discord: config.discord.as_ref().map(super::chat::render_discord),
    };
    serde_saphyr::to_string(&raw)
        .unwrap_or_else(|error| format!("# the effective config could not be rendered: {error}\n"))
}

fn raw_service(service: &Service) -> RawService {
    RawService {
        aliases: service.aliases.clone(),
        kind: Some(service.kind.as_str().to_string()),
        workload: Some(service.workload.clone()),
        namespace: Some(service.namespace.clone()),
        hpa: Some(service.hpa.clone().unwrap_or_else(|| "none".to_string())),
        safe: Some(raw_range(service.safe)),
        recommended: Some(raw_range(service.recommended)),
        notes: service.notes.clone(),
        checks: service
            .checks
            .iter()
            .map(|check| RawCheck {
                name: check.name().to_string(),
                parameters: check
                    .parameter()
                    .map(|(key, value)| [(key.to_string(), value.to_string())].into()),
            })
            .collect(),
        self_approval_allowed: Some(service.self_approval_allowed),
        max_step: service.max_step.map(i64::from),
        data_store: service.data_store.map(|store| store.as_str().to_string()),
    }
}

fn raw_range(range: Range) -> RawRange {
    RawRange {
        min: Some(i64::from(range.min)),
        max: Some(i64::from(range.max)),
    }
}

fn raw_policy(config: &Config) -> RawPolicy {
    let policy = &config.policy;
    RawPolicy {
        approvals: Some(RawApprovals {
            within_recommended: Some(i64::from(policy.approvals.within_recommended)),
            outside_recommended: Some(i64::from(policy.approvals.outside_recommended)),
            freeze: Some(i64::from(policy.approvals.freeze)),
        }),
        approval_expiry: Some(format_duration(policy.approval_expiry)),
        cooldown_per_service: Some(format_duration(policy.cooldown_per_service)),
        rate_limit: Some(RawRateLimit {
            per_requester: Some(RawRate {
                requests: Some(i64::from(policy.rate_limit.requests)),
                per: Some(format_duration(policy.rate_limit.per)),
            }),
        }),
        lock_scope: Some(policy.lock_scope.as_str().to_string()),
        lock_ttl: Some(format_duration(policy.lock_ttl)),
        queue_max_wait: Some(format_duration(policy.queue_max_wait)),
        rollout_timeout: Some(format_duration(policy.rollout_timeout)),
    }
}

fn texts(principals: &[Principal]) -> Vec<String> {
    principals.iter().map(Principal::to_string).collect()
}

/// Replaces the password of a URL with `****`. The password is the part
/// after the first `:` of the user info (`redis://user:secret@host` →
/// `redis://user:****@host`), or all of a user info without `:`, because
/// some clients read that as the password. Values of `pass` and `password`
/// query parameters are masked too. The user info ends at the last `@`, so
/// a password with an unencoded `/`, `?` or `#` is still masked.
pub fn mask_url_password(url: &str) -> String {
    let (scheme, rest) = match url.split_once("://") {
        Some((scheme, rest)) => (Some(scheme), rest),
        None => (None, url),
    };
    let (user_info, after_user_info) = match rest.rsplit_once('@') {
        Some((user_info, after)) => {
            let masked = match user_info.split_once(':') {
                Some((user, _)) => format!("{user}:{MASK}@"),
                None => format!("{MASK}@"),
            };
            (masked, after)
        }
        None => (String::new(), rest),
    };
    let authority_end = after_user_info
        .find(['/', '?', '#'])
        .unwrap_or(after_user_info.len());
    let (host, tail) = after_user_info.split_at(authority_end);
    let scheme = scheme.map(|s| format!("{s}://")).unwrap_or_default();
    format!("{scheme}{user_info}{host}{}", mask_query(tail))
}

/// Masks password parameters in the `?query#fragment` part of a URL.
fn mask_query(tail: &str) -> String {
    let Some((path, query_and_fragment)) = tail.split_once('?') else {
        return tail.to_string();
    };
    let (query, fragment) = match query_and_fragment.split_once('#') {
        Some((query, fragment)) => (query, Some(fragment)),
        None => (query_and_fragment, None),
    };
    let pairs: Vec<String> = query
        .split('&')
        .map(|pair| match pair.split_once('=') {
            Some((key, _)) if PASSWORD_PARAMETERS.contains(&key.to_ascii_lowercase().as_str()) => {
                format!("{key}={MASK}")
            }
            _ => pair.to_string(),
        })
        .collect();
    let mut masked = format!("{path}?{}", pairs.join("&"));
    if let Some(fragment) = fragment {
        masked.push('#');
        masked.push_str(fragment);
    }
    masked
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mask_hides_password_of_user_info() {
        assert_eq!(
            mask_url_password("redis://:s3cret@redis.butterfly:6379/0"),
            "redis://:****@redis.butterfly:6379/0"
        );
        assert_eq!(
            mask_url_password("redis://bot:s3cret@redis:6379"),
            "redis://bot:****@redis:6379"
        );
        assert_eq!(
            mask_url_password("redis://s3cret@redis"),
            "redis://****@redis"
        );
        assert_eq!(
            mask_url_password("redis://:pa#ss/w?rd@redis:6379"),
            "redis://:****@redis:6379"
        );
    }

    #[test]
    fn mask_hides_password_query_parameter() {
        assert_eq!(
            mask_url_password("redis+unix:///run/redis.sock?db=1&pass=s3cret"),
            "redis+unix:///run/redis.sock?db=1&pass=****"
        );
    }

    #[test]
    fn mask_keeps_url_without_password() {
        let url = "redis://127.0.0.1:6379/?protocol=resp3";
        assert_eq!(mask_url_password(url), url);
    }
}
