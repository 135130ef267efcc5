//! The bot's config file (YAML), read in two phases: serde reads it into
//! the loose structs of `raw`, then `validate` checks every value, collects
//! every problem with its key path and builds the typed [`Config`]. Nothing
//! runs on a config with a problem.
//!
//! Sections: `services` (from which `Catalog::from_config` builds the
//! catalog), `roles` (who may request, approve and administer), `policy`
//! (approvals, expiry, cooldown, rate limit, lock and timeouts), `redis`,
//! `cluster`, and the chat platforms `slack` and `discord`.

mod chat;
mod duration;
mod raw;
mod render;
mod services;
pub mod testing;
mod validate;

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use thiserror::Error;

pub use chat::{CommandScope, DiscordConfig, MAX_SOCKET_CONNECTIONS, SlackConfig, SlackMode};
pub use duration::{DURATION_FORMS, format_duration, parse_duration};
pub use render::mask_url_password;
pub use validate::{REDIS_URL_FORMS, redis_error_reason};

use crate::catalog::Service;
use crate::identity::Principal;

/// Environment variable that replaces `redis.url`, so the password can come
/// from a secret instead of the file. The binary applies it with
/// [`Config::override_redis_url`].
pub const REDIS_URL_ENV: &str = "SCALEBOT_REDIS_URL";

/// Namespace of the BUTTERFLY platform, as in every command of the runbook.
pub const DEFAULT_NAMESPACE: &str = "butterfly";

/// Prefix of every Redis key the bot writes.
pub const DEFAULT_KEY_PREFIX: &str = "scalebot:";

pub const DEFAULT_APPROVAL_EXPIRY: Duration = Duration::from_secs(15 * 60);
pub const DEFAULT_COOLDOWN_PER_SERVICE: Duration = Duration::from_secs(2 * 60);
pub const DEFAULT_LOCK_TTL: Duration = Duration::from_secs(60);
pub const DEFAULT_QUEUE_MAX_WAIT: Duration = Duration::from_secs(10 * 60);
pub const DEFAULT_ROLLOUT_TIMEOUT: Duration = Duration::from_secs(5 * 60);

/// Default rate limit: requests per requester per [`DEFAULT_RATE_PERIOD`].
/// It leaves room to correct a typo a few times and stops a script that
/// loops.
pub const DEFAULT_RATE_REQUESTS: u32 = 10;
pub const DEFAULT_RATE_PERIOD: Duration = Duration::from_secs(10 * 60);

pub const DEFAULT_APPROVALS_WITHIN_RECOMMENDED: u32 = 1;
pub const DEFAULT_APPROVALS_OUTSIDE_RECOMMENDED: u32 = 2;
pub const DEFAULT_APPROVALS_FREEZE: u32 = 2;

/// Largest number of approvals a policy may ask for. More than this
/// cannot be gathered in time during an incident.
pub const MAX_APPROVALS: u32 = 5;

/// One problem found in the config.
#[derive(Debug, Error)]
pub enum ConfigError {
    /// The file could not be read. [`ConfigErrors`] names the file in front
    /// of the message.
    #[error("failed to read the file: {error}")]
    Read {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error(
        "the config is empty; expected a YAML mapping with the sections services, roles, policy, redis and cluster"
    )]
    Empty,
    /// YAML syntax, an unknown key or a value of the wrong YAML type, as the
    /// parser reports it. The parser stops at the first of these.
    #[error("{}", describe_syntax(*.line_column, .message))]
    Syntax {
        line_column: Option<(usize, usize)>,
        message: String,
    },
    #[error("{key}: missing; expected {expected}")]
    Missing { key: String, expected: String },
    #[error("{key}: {problem}")]
    Invalid { key: String, problem: String },
}

fn describe_syntax(line_column: Option<(usize, usize)>, message: &str) -> String {
    match line_column {
        Some((line, column)) => format!("line {line}, column {column}: {message}"),
        None => message.to_string(),
    }
}

/// Every problem of one config, displayed one per line and prefixed with
/// the file name when the config came from a file.
#[derive(Debug)]
pub struct ConfigErrors {
    pub file: Option<PathBuf>,
    pub errors: Vec<ConfigError>,
}

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (position, error) in self.errors.iter().enumerate() {
            if position > 0 {
                f.write_str("\n")?;
            }
            if let Some(file) = &self.file {
                write!(f, "{}: ", file.display())?;
            }
            write!(f, "{error}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

impl ConfigErrors {
    fn new(errors: Vec<ConfigError>) -> Self {
        Self { file: None, errors }
    }
}

/// The validated config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// Services in file order; no name or alias is used twice.
    pub services: Vec<Service>,
    pub roles: Roles,
    pub policy: PolicyConfig,
    pub redis: RedisConfig,
    pub cluster: ClusterConfig,
    /// `None` when the file has no `slack` section: Slack is off.
    pub slack: Option<SlackConfig>,
    /// `None` when the file has no `discord` section: Discord is off.
    pub discord: Option<DiscordConfig>,
}

/// Principals per role. Admins may also approve and request, and approvers
/// may also request.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Roles {
    pub requesters: Vec<Principal>,
    pub approvers: Vec<Principal>,
    pub admins: Vec<Principal>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyConfig {
    pub approvals: Approvals,
    /// Time after which a pending request can no longer be approved.
    pub approval_expiry: Duration,
    /// Minimum time between two changes of one service.
    pub cooldown_per_service: Duration,
    pub rate_limit: RateLimit,
    pub lock_scope: LockScope,
    /// Expiry of the operation lock when its holder stops renewing it.
    pub lock_ttl: Duration,
    /// Maximum time an approved request waits for the operation lock.
    pub queue_max_wait: Duration,
    /// Maximum time a rollout may take before the procedure reports failure.
    pub rollout_timeout: Duration,
}

/// Approvals a request needs, by risk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Approvals {
    pub within_recommended: u32,
    pub outside_recommended: u32,
    pub freeze: u32,
}

/// At most `requests` requests per requester in any window of `per`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    pub requests: u32,
    pub per: Duration,
}

/// Reach of one operation lock. Changes inside the same scope run one at a
/// time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LockScope {
    Namespace,
    Workload,
    Cluster,
}

impl LockScope {
    pub const NAMES: &'static str = "namespace, workload or cluster";

    pub fn as_str(self) -> &'static str {
        match self {
            LockScope::Namespace => "namespace",
            LockScope::Workload => "workload",
            LockScope::Cluster => "cluster",
        }
    }

    /// Key of the operation lock that covers `workload` in `namespace`.
    pub fn scope_key(self, namespace: &str, workload: &str) -> String {
        match self {
            LockScope::Namespace => format!("namespace:{namespace}"),
            LockScope::Workload => format!("workload:{namespace}/{workload}"),
            LockScope::Cluster => "cluster".to_string(),
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "namespace" => Some(LockScope::Namespace),
            "workload" => Some(LockScope::Workload),
            "cluster" => Some(LockScope::Cluster),
            _ => None,
        }
    }
}

impl fmt::Display for LockScope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedisConfig {
    /// `None` means no URL was configured; the binary then needs
    /// [`REDIS_URL_ENV`] or runs with the in-memory store.
    pub url: Option<RedisUrl>,
    pub key_prefix: String,
}

/// A Redis URL that may contain a password. `Debug` and `Display` mask the
/// password, so the URL can be logged; [`RedisUrl::expose`] returns the
/// real URL for connecting.
#[derive(Clone, PartialEq, Eq)]
pub struct RedisUrl(String);

impl RedisUrl {
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for RedisUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&mask_url_password(&self.0))
    }
}

impl fmt::Debug for RedisUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RedisUrl({:?})", mask_url_password(&self.0))
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterConfig {
    /// Path of a kubeconfig file. `None` uses kube-rs's inference: the
    /// in-cluster service account, or `$KUBECONFIG` and `~/.kube/config`.
    pub kubeconfig: Option<PathBuf>,
    /// kubeconfig context; `None` uses the current context.
    pub context: Option<String>,
    /// Default namespace of services that name none.
    pub namespace: String,
}

impl Config {
    /// Parses and validates a YAML config, reporting every problem found.
    pub fn from_yaml_str(text: &str) -> Result<Config, ConfigErrors> {
        let raw = parse_raw(text).map_err(|error| ConfigErrors::new(vec![error]))?;
        validate::validate(raw).map_err(ConfigErrors::new)
    }

    /// Reads, parses and validates the config file at `path`.
    pub fn load(path: &Path) -> Result<Config, ConfigErrors> {
        let with_file = |errors| ConfigErrors {
            file: Some(path.to_path_buf()),
            errors,
        };
        let text = std::fs::read_to_string(path).map_err(|error| {
            with_file(vec![ConfigError::Read {
                path: path.to_path_buf(),
                error,
            }])
        })?;
        Config::from_yaml_str(&text).map_err(|errors| with_file(errors.errors))
    }

    /// Replaces `redis.url`, checking the new URL as the file's would be.
    /// Problems name [`REDIS_URL_ENV`] as the key.
    pub fn override_redis_url(&mut self, url: &str) -> Result<(), ConfigErrors> {
        let mut problems = validate::Problems::default();
        let url = validate::redis_url(&mut problems, REDIS_URL_ENV, url);
        problems.into_result().map_err(ConfigErrors::new)?;
        self.redis.url = url;
        Ok(())
    }

    /// Renders the effective config, defaults included, as YAML that
    /// [`Config::from_yaml_str`] reads back. The Redis password is masked.
    pub fn render_effective(&self) -> String {
        render::render_effective(self)
    }
}

/// Runs the serde phase. An empty or comment-only file gets its own error,
/// because the parser would only report an unexpected end of input.
fn parse_raw(text: &str) -> Result<raw::RawConfig, ConfigError> {
    let has_content = text.lines().any(|line| {
        let line = line.trim();
        !line.is_empty() && !line.starts_with('#') && line != "---"
    });
    if !has_content {
        return Err(ConfigError::Empty);
    }
    serde_saphyr::from_str(text).map_err(|error| syntax_error(&error))
}

/// Converts a parser error to one line. The parser appends the location as
/// ` at line L, column C`; it is moved to the front so that every line of
/// [`ConfigErrors`] starts with where the problem is.
fn syntax_error(error: &serde_saphyr::Error) -> ConfigError {
    let message = error.without_snippet().to_string();
    let Some(location) = error.location() else {
        return ConfigError::Syntax {
            line_column: None,
            message,
        };
    };
    let line = location.line() as usize;
    let column = location.column() as usize;
    let suffix = format!(" at line {line}, column {column}");
    let message = message
        .strip_suffix(&suffix)
        .unwrap_or(&message)
        .to_string();
    ConfigError::Syntax {
        line_column: Some((line, column)),
        message,
    }
}
