//! The shipped configuration with timings short enough for tests, shared
//! by the engine tests and the adapter tests.

use std::time::Duration;

use super::Config;

/// The shipped `deploy/config/butterfly.yaml`.
const SHIPPED: &str = include_str!("../../../deploy/config/butterfly.yaml");

/// Returns the shipped configuration with a 3 s lock TTL, a 100 ms
/// cooldown, a 30 s rollout timeout and a rate limit that tests do not
/// reach.
pub fn fast_config() -> Config {
    let mut config = Config::from_yaml_str(SHIPPED).expect("the shipped config is valid");
    config.policy.lock_ttl = Duration::from_secs(3);
    config.policy.cooldown_per_service = Duration::from_millis(100);
    config.policy.rollout_timeout = Duration::from_secs(30);
    config.policy.rate_limit.requests = 1000;
    config
}
