use std::time::Duration;

use redis::{ErrorKind, RedisError, ServerErrorKind};

/// Failures of the coordination store.
#[derive(Debug, thiserror::Error)]
pub enum CoordError {
    /// Redis could not be reached or did not reply within the command timeout.
    /// Callers fail closed: nothing runs while coordination is unavailable.
    #[error("Redis is unavailable: {operation} failed")]
    Unavailable {
        operation: &'static str,
        #[source]
        source: RedisError,
    },
    /// Redis replied with an error, such as a script error or a key of the
    /// wrong type under the key prefix.
    #[error("Redis command failed: {operation}")]
    Command {
        operation: &'static str,
        #[source]
        source: RedisError,
    },
    /// `url` has its password masked.
    #[error(
        "invalid Redis URL {url:?} ({reason}); expected {}",
        crate::config::REDIS_URL_FORMS
    )]
    InvalidUrl { url: String, reason: String },
    #[error("invalid Redis key prefix {prefix:?}: must be non-empty and contain no whitespace")]
    InvalidKeyPrefix { prefix: String },
    #[error("invalid coordinator option {name}: {reason}")]
    InvalidOption { name: &'static str, reason: String },
    /// A value under the key prefix could not be decoded, for example because
    /// another program or version wrote it.
    #[error("invalid value stored at Redis key {key}: {reason}")]
    CorruptValue { key: String, reason: String },
    #[error("could not encode {what} as JSON")]
    Encode {
        what: &'static str,
        #[source]
        source: serde_json::Error,
    },
    #[error("gave up waiting for lock {scope} after {waited:?} in the queue")]
    QueueTimeout { scope: String, waited: Duration },
    #[error("queue for lock {scope} is full ({max} operations waiting)")]
    QueueFull { scope: String, max: usize },
    /// Another pending request has this id: generate a new id and retry.
    #[error("request id {id} is already in use")]
    DuplicateRequestId { id: String },
}

impl CoordError {
    /// Returns whether the error means "Redis is unavailable" rather than a bug
    /// or bad data.
    pub fn is_unavailable(&self) -> bool {
        matches!(self, Self::Unavailable { .. })
    }

    /// Sorts a Redis error into `Unavailable` (connection, timeout, server not
    /// ready) or `Command` (the server executed the request and rejected it).
    pub(crate) fn from_redis(operation: &'static str, source: RedisError) -> Self {
        let unreachable = source.is_io_error()
            || matches!(
                source.kind(),
                ErrorKind::Server(ServerErrorKind::BusyLoading)
                    | ErrorKind::Server(ServerErrorKind::TryAgain)
                    | ErrorKind::Server(ServerErrorKind::MasterDown)
                    | ErrorKind::ClusterConnectionNotFound
            );
        if unreachable {
            Self::Unavailable { operation, source }
        } else {
            Self::Command { operation, source }
        }
    }

    /// Builds an `Unavailable` error for a command that got no reply within
    /// `timeout`.
    pub(crate) fn timed_out(operation: &'static str, timeout: Duration) -> Self {
        let io = std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            format!("no reply from Redis within {timeout:?}"),
        );
        Self::Unavailable {
            operation,
            source: RedisError::from(io),
        }
    }
}
