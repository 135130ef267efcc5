//! The coordination store shared by replicas, in Redis.
//!
//! Every command runs with the command timeout; a timeout or connection error
//! becomes `CoordError::Unavailable`. `ConnectionManager` reconnects on its
//! own, so the same store works again once Redis is back.
//!
//! Key layout under the prefix `P`:
//! - `P:lock:<scope>`: lock value JSON, `PX` TTL. `P:fence:<scope>`: last
//!   fencing token (never expires). `P:locks`: set of scopes that may be locked.
//! - `P:queue:<scope>` (sorted set, waiter id -> join sequence),
//!   `P:queue-heartbeat:<scope>` (sorted set, waiter id -> deadline in Unix ms),
//!   `P:queue-entry:<scope>` (hash, waiter id -> JSON), `P:queue-seq:<scope>`.
//! - `P:pending:<id>`: request hash with `PX` TTL; `P:pending-index`: sorted
//!   set of ids by `created_at`.
//! - `P:delivery:<id>`, `P:rate:<key>`, `P:cooldown:<service>`, `P:freeze`,
//!   `P:audit` (stream).
//!
//! NOTE: the list and expiry scripts build request and lock keys from the
//! prefix inside Lua, which Redis Cluster does not allow. The store requires a
//! standalone Redis (or a primary with replicas).

mod audit;
mod locks;
mod pending;

use std::future::Future;
use std::sync::LazyLock;
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{RedisResult, Script};
use tokio::time::timeout;

use super::types::{random_text, ttl_millis};
use super::{CoordError, CoordinatorOptions, FreezeState, RateDecision};

/// Reconnection attempts per lost connection, with exponential backoff from
/// `RECONNECT_MIN_DELAY` to `RECONNECT_MAX_DELAY`. When they are used up the
/// next command starts a new round, so the store recovers whenever Redis
/// returns.
const RECONNECT_RETRIES: usize = 4;
const RECONNECT_MIN_DELAY: Duration = Duration::from_millis(100);
const RECONNECT_MAX_DELAY: Duration = Duration::from_secs(1);

/// Builds a script from `lua/common.lua` followed by the named file.
macro_rules! lua_script {
    ($file:literal) => {
        std::sync::LazyLock::new(|| {
            redis::Script::new(concat!(
                include_str!("../lua/common.lua"),
                include_str!(concat!("../lua/", $file))
            ))
        })
    };
}
pub(crate) use lua_script;

static RATE_CHECK: LazyLock<Script> = lua_script!("rate_check.lua");

/// Redis-backed store; clones share one multiplexed connection.
#[derive(Clone)]
pub struct RedisStore {
    connection: ConnectionManager,
    keys: Keys,
    options: CoordinatorOptions,
}

impl RedisStore {
    pub(crate) async fn connect(
        url: &str,
        key_prefix: &str,
        options: CoordinatorOptions,
    ) -> Result<Self, CoordError> {
        if key_prefix.is_empty() || key_prefix.contains(char::is_whitespace) {
            return Err(CoordError::InvalidKeyPrefix {
                prefix: key_prefix.to_string(),
            });
        }
        let client = redis::Client::open(url).map_err(|error| CoordError::InvalidUrl {
            url: crate::config::mask_url_password(url),
            reason: crate::config::redis_error_reason(&error),
        })?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(options.command_timeout))
            .set_response_timeout(Some(options.command_timeout))
            .set_number_of_retries(RECONNECT_RETRIES)
            .set_min_delay(RECONNECT_MIN_DELAY)
            .set_max_delay(RECONNECT_MAX_DELAY);
        let connecting = ConnectionManager::new_with_config(client, config);
        let connection = match timeout(options.command_timeout, connecting).await {
            Ok(Ok(connection)) => connection,
            Ok(Err(source)) => return Err(CoordError::from_redis("connect", source)),
            Err(_) => return Err(CoordError::timed_out("connect", options.command_timeout)),
        };
        Ok(Self {
            connection,
            keys: Keys {
                prefix: key_prefix.to_string(),
            },
            options,
        })
    }

    pub fn options(&self) -> &CoordinatorOptions {
        &self.options
    }

    pub fn key_prefix(&self) -> &str {
        &self.keys.prefix
    }

    /// Clones the handle of the shared connection for one command.
    fn connection(&self) -> ConnectionManager {
        self.connection.clone()
    }

    /// Awaits one Redis call with the command timeout and sorts its error.
    async fn run<T>(
        &self,
        operation: &'static str,
        call: impl Future<Output = RedisResult<T>>,
    ) -> Result<T, CoordError> {
        match timeout(self.options.command_timeout, call).await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(source)) => Err(CoordError::from_redis(operation, source)),
            Err(_) => Err(CoordError::timed_out(
                operation,
                self.options.command_timeout,
            )),
        }
    }

    pub async fn ping(&self) -> Result<(), CoordError> {
        let mut connection = self.connection();
        let command = redis::cmd("PING");
        self.run("ping", command.query_async::<String>(&mut connection))
            .await
            .map(drop)
    }

    pub async fn first_delivery(
        &self,
        delivery_id: &str,
        ttl: Duration,
    ) -> Result<bool, CoordError> {
        let mut connection = self.connection();
        let mut command = redis::cmd("SET");
        command
            .arg(self.keys.delivery(delivery_id))
            .arg(1)
            .arg("NX")
            .arg("PX")
            .arg(ttl_millis(ttl));
        let reply: Option<String> = self
            .run("record delivery id", command.query_async(&mut connection))
            .await?;
        Ok(reply.is_some())
    }

    pub async fn put_note(&self, key: &str, value: &str, ttl: Duration) -> Result<(), CoordError> {
        let mut connection = self.connection();
        let mut command = redis::cmd("SET");
        command
            .arg(self.keys.note(key))
            .arg(value)
            .arg("PX")
            .arg(ttl_millis(ttl));
        self.run("write note", command.query_async::<()>(&mut connection))
            .await
    }

    pub async fn get_note(&self, key: &str) -> Result<Option<String>, CoordError> {
        let mut connection = self.connection();
        let mut command = redis::cmd("GET");
        command.arg(self.keys.note(key));
        self.run("read note", command.query_async(&mut connection))
            .await
    }

    pub async fn check_rate(
        &self,
        key: &str,
        limit: u32,
        window: Duration,
    ) -> Result<RateDecision, CoordError> {
        let mut connection = self.connection();
        let mut invocation = RATE_CHECK.prepare_invoke();
        invocation
            .key(self.keys.rate(key))
            .arg(limit)
            .arg(ttl_millis(window))
            .arg(random_text(8));
        let (allowed, retry_after_ms): (i64, u64) = self
            .run("check rate limit", invocation.invoke_async(&mut connection))
            .await?;
        if allowed == 1 {
            Ok(RateDecision::Allowed)
        } else {
            Ok(RateDecision::Limited {
                retry_after: Duration::from_millis(retry_after_ms),
            })
        }
    }

    pub async fn start_cooldown(
        &self,
        service: &str,
        duration: Duration,
    ) -> Result<(), CoordError> {
        let mut connection = self.connection();
        let mut command = redis::cmd("SET");
        command
            .arg(self.keys.cooldown(service))
            .arg(1)
            .arg("PX")
            .arg(ttl_millis(duration));
        self.run("start cooldown", command.query_async::<()>(&mut connection))
            .await
    }

    pub async fn cooldown_remaining(&self, service: &str) -> Result<Option<Duration>, CoordError> {
        let mut connection = self.connection();
        let mut command = redis::cmd("PTTL");
        command.arg(self.keys.cooldown(service));
        // PTTL returns -2 for a missing key and -1 for a key without expiry,
        // which this store never writes.
        let remaining_ms: i64 = self
            .run("read cooldown", command.query_async(&mut connection))
            .await?;
        Ok((remaining_ms > 0).then(|| Duration::from_millis(remaining_ms as u64)))
    }

    pub async fn set_freeze(&self, freeze: &FreezeState) -> Result<(), CoordError> {
        let value = serde_json::to_string(freeze).map_err(|source| CoordError::Encode {
            what: "freeze state",
            source,
        })?;
        let mut connection = self.connection();
        let mut command = redis::cmd("SET");
        command.arg(self.keys.freeze()).arg(value);
        self.run("set freeze", command.query_async::<()>(&mut connection))
            .await
    }

    pub async fn clear_freeze(&self) -> Result<bool, CoordError> {
        let mut connection = self.connection();
        let mut command = redis::cmd("DEL");
        command.arg(self.keys.freeze());
        let deleted: u64 = self
            .run("clear freeze", command.query_async(&mut connection))
            .await?;
        Ok(deleted > 0)
    }

    pub async fn freeze_state(&self) -> Result<Option<FreezeState>, CoordError> {
        let key = self.keys.freeze();
        let mut connection = self.connection();
        let mut command = redis::cmd("GET");
        command.arg(&key);
        let value: Option<String> = self
            .run("read freeze", command.query_async(&mut connection))
            .await?;
        value.map(|json| decode_json(&key, &json)).transpose()
    }
}

/// Decodes a JSON value read from `key`.
fn decode_json<T: serde::de::DeserializeOwned>(key: &str, json: &str) -> Result<T, CoordError> {
    serde_json::from_str(json).map_err(|error| CoordError::CorruptValue {
        key: key.to_string(),
        reason: error.to_string(),
    })
}

/// Names of the keys under the prefix (layout in the module documentation).
#[derive(Clone)]
struct Keys {
    prefix: String,
}

impl Keys {
    fn lock(&self, scope: &str) -> String {
        format!("{}{scope}", self.lock_prefix())
    }

    fn lock_prefix(&self) -> String {
        format!("{}:lock:", self.prefix)
    }

    fn fence(&self, scope: &str) -> String {
        format!("{}:fence:{scope}", self.prefix)
    }

    fn lock_scopes(&self) -> String {
        format!("{}:locks", self.prefix)
    }

    fn queue(&self, scope: &str) -> String {
        format!("{}:queue:{scope}", self.prefix)
    }

    fn queue_heartbeats(&self, scope: &str) -> String {
        format!("{}:queue-heartbeat:{scope}", self.prefix)
    }

    fn queue_entries(&self, scope: &str) -> String {
        format!("{}:queue-entry:{scope}", self.prefix)
    }

    fn queue_sequence(&self, scope: &str) -> String {
        format!("{}:queue-seq:{scope}", self.prefix)
    }

    fn pending(&self, id: &str) -> String {
        format!("{}{id}", self.pending_prefix())
    }

    fn pending_prefix(&self) -> String {
        format!("{}:pending:", self.prefix)
    }

    fn pending_index(&self) -> String {
        format!("{}:pending-index", self.prefix)
    }

    fn delivery(&self, delivery_id: &str) -> String {
        format!("{}:delivery:{delivery_id}", self.prefix)
    }

    fn note(&self, key: &str) -> String {
        format!("{}:note:{key}", self.prefix)
    }

    fn rate(&self, key: &str) -> String {
        format!("{}:rate:{key}", self.prefix)
    }

    fn cooldown(&self, service: &str) -> String {
        format!("{}:cooldown:{service}", self.prefix)
    }

    fn freeze(&self) -> String {
        format!("{}:freeze", self.prefix)
    }

    fn audit(&self) -> String {
        format!("{}:audit", self.prefix)
    }
}
