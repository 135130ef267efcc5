//! Operation locks and their FIFO queues in Redis.

use std::sync::LazyLock;
use std::time::Duration;

use redis::{Script, Value};
use serde::Deserialize;

use super::{RedisStore, decode_json, lua_script};
use crate::coordination::queue::{QueuePoll, QueueWaiter};
use crate::coordination::types::ttl_millis;
use crate::coordination::{
    CoordError, LockGuard, LockInfo, MAX_QUEUE_LEN, QueueEntry, QueuePosition, unix_now_ms,
};

static LOCK_ACQUIRE: LazyLock<Script> = lua_script!("lock_acquire.lua");
static LOCK_RENEW: LazyLock<Script> = lua_script!("lock_renew.lua");
static LOCK_RELEASE: LazyLock<Script> = lua_script!("lock_release.lua");
static LOCK_LIST: LazyLock<Script> = lua_script!("lock_list.lua");
static QUEUE_JOIN: LazyLock<Script> = lua_script!("queue_join.lua");
static QUEUE_POLL: LazyLock<Script> = lua_script!("queue_poll.lua");
static QUEUE_LIST: LazyLock<Script> = lua_script!("queue_list.lua");

/// The JSON value of a lock key, written by `take_lock` in `lua/common.lua`.
#[derive(Deserialize)]
struct LockValue {
    owner: String,
    operation: String,
    token: u64,
    since: u64,
}

impl RedisStore {
    pub async fn acquire_lock(
        &self,
        scope: &str,
        owner: &str,
        operation: &str,
        ttl: Duration,
    ) -> Result<Option<LockGuard>, CoordError> {
        let since = unix_now_ms();
        let mut connection = self.connection();
        let mut invocation = LOCK_ACQUIRE.prepare_invoke();
        invocation
            .key(self.keys.lock(scope))
            .key(self.keys.fence(scope))
            .key(self.keys.lock_scopes())
            .key(self.keys.queue_heartbeats(scope))
            .arg(scope)
            .arg(owner)
            .arg(operation)
            .arg(since)
            .arg(ttl_millis(ttl));
        let token: Option<u64> = self
            .run("acquire lock", invocation.invoke_async(&mut connection))
            .await?;
        Ok(token.map(|token| LockGuard {
            scope: scope.to_string(),
            owner: owner.to_string(),
            token,
            acquired_at: since,
        }))
    }

    pub async fn renew_lock(&self, guard: &LockGuard, ttl: Duration) -> Result<bool, CoordError> {
        let mut connection = self.connection();
        let mut invocation = LOCK_RENEW.prepare_invoke();
        invocation
            .key(self.keys.lock(&guard.scope))
            .arg(&guard.owner)
            .arg(guard.token)
            .arg(ttl_millis(ttl));
        let renewed: i64 = self
            .run("renew lock", invocation.invoke_async(&mut connection))
            .await?;
        Ok(renewed == 1)
    }

    pub async fn release_lock(&self, guard: &LockGuard) -> Result<bool, CoordError> {
        let mut connection = self.connection();
        let mut invocation = LOCK_RELEASE.prepare_invoke();
        invocation
            .key(self.keys.lock(&guard.scope))
            .key(self.keys.lock_scopes())
            .arg(&guard.owner)
            .arg(guard.token)
            .arg(&guard.scope);
        let released: i64 = self
            .run("release lock", invocation.invoke_async(&mut connection))
            .await?;
        Ok(released == 1)
    }

    pub async fn lock_holder(&self, scope: &str) -> Result<Option<LockInfo>, CoordError> {
        let key = self.keys.lock(scope);
        let mut connection = self.connection();
        let mut pipeline = redis::pipe();
        pipeline.atomic().get(&key).pttl(&key);
        let (value, remaining_ms): (Option<String>, i64) = self
            .run("read lock", pipeline.query_async(&mut connection))
            .await?;
        match value {
            Some(json) => Ok(Some(lock_info(&key, scope, &json, remaining_ms)?)),
            None => Ok(None),
        }
    }

    pub async fn list_locks(&self) -> Result<Vec<LockInfo>, CoordError> {
        let mut connection = self.connection();
        let mut invocation = LOCK_LIST.prepare_invoke();
        invocation
            .key(self.keys.lock_scopes())
            .arg(self.keys.lock_prefix());
        let held: Vec<(String, String, i64)> = self
            .run("list locks", invocation.invoke_async(&mut connection))
            .await?;
        let mut locks = held
            .iter()
            .map(|(scope, json, remaining_ms)| {
                lock_info(&self.keys.lock(scope), scope, json, *remaining_ms)
            })
            .collect::<Result<Vec<_>, _>>()?;
        locks.sort_by(|a, b| a.scope.cmp(&b.scope));
        Ok(locks)
    }

    pub(crate) async fn queue_join(
        &self,
        scope: &str,
        waiter: &QueueWaiter,
    ) -> Result<(), CoordError> {
        let entry = serde_json::to_string(waiter).map_err(|source| CoordError::Encode {
            what: "queue entry",
            source,
        })?;
        let mut connection = self.connection();
        let mut invocation = QUEUE_JOIN.prepare_invoke();
        invocation
            .key(self.keys.queue(scope))
            .key(self.keys.queue_heartbeats(scope))
            .key(self.keys.queue_entries(scope))
            .key(self.keys.queue_sequence(scope))
            .arg(&waiter.id)
            .arg(entry)
            .arg(ttl_millis(self.options.queue_heartbeat_ttl))
            .arg(MAX_QUEUE_LEN);
        let joined: i64 = self
            .run("join lock queue", invocation.invoke_async(&mut connection))
            .await?;
        if joined == 1 {
            Ok(())
        } else {
            Err(CoordError::QueueFull {
                scope: scope.to_string(),
                max: MAX_QUEUE_LEN,
            })
        }
    }

    pub(crate) async fn queue_poll(
        &self,
        scope: &str,
        waiter: &QueueWaiter,
        lock_ttl: Duration,
    ) -> Result<QueuePoll, CoordError> {
        let since = unix_now_ms();
        let mut connection = self.connection();
        let mut invocation = QUEUE_POLL.prepare_invoke();
        invocation
            .key(self.keys.queue(scope))
            .key(self.keys.queue_heartbeats(scope))
            .key(self.keys.queue_entries(scope))
            .key(self.keys.lock(scope))
            .key(self.keys.fence(scope))
            .key(self.keys.lock_scopes())
            .arg(&waiter.id)
            .arg(ttl_millis(self.options.queue_heartbeat_ttl))
            .arg(scope)
            .arg(&waiter.owner)
            .arg(&waiter.operation)
            .arg(since)
            .arg(ttl_millis(lock_ttl));
        let reply: Vec<Value> = self
            .run("poll lock queue", invocation.invoke_async(&mut connection))
            .await?;
        self.parse_queue_poll(scope, waiter, since, reply)
    }

    /// Parses the reply of `lua/queue_poll.lua`.
    fn parse_queue_poll(
        &self,
        scope: &str,
        waiter: &QueueWaiter,
        since: u64,
        reply: Vec<Value>,
    ) -> Result<QueuePoll, CoordError> {
        let queue_key = self.keys.queue(scope);
        let mut fields = reply.into_iter();
        let outcome: String = next_field(&queue_key, &mut fields)?;
        match outcome.as_str() {
            "acquired" => Ok(QueuePoll::Acquired(LockGuard {
                scope: scope.to_string(),
                owner: waiter.owner.clone(),
                token: next_field(&queue_key, &mut fields)?,
                acquired_at: since,
            })),
            "evicted" => Ok(QueuePoll::Evicted),
            "waiting" => {
                let position: usize = next_field(&queue_key, &mut fields)?;
                let queue_len: usize = next_field(&queue_key, &mut fields)?;
                let ahead_json: String = next_field(&queue_key, &mut fields)?;
                let holder_json: String = next_field(&queue_key, &mut fields)?;
                let ahead = non_empty(&ahead_json)
                    .map(|json| decode_json::<QueueWaiter>(&self.keys.queue_entries(scope), json))
                    .transpose()?
                    .map(|entry| entry.owner);
                let holder = non_empty(&holder_json)
                    .map(|json| decode_json::<LockValue>(&self.keys.lock(scope), json))
                    .transpose()?
                    .map(|lock| lock.owner);
                Ok(QueuePoll::Waiting(QueuePosition {
                    position,
                    queue_len,
                    ahead,
                    holder,
                }))
            }
            other => Err(CoordError::CorruptValue {
                key: queue_key,
                reason: format!("unexpected queue poll outcome {other:?}"),
            }),
        }
    }

    pub(crate) async fn queue_leave(&self, scope: &str, waiter_id: &str) -> Result<(), CoordError> {
        let mut connection = self.connection();
        let mut pipeline = redis::pipe();
        pipeline
            .atomic()
            .zrem(self.keys.queue(scope), waiter_id)
            .zrem(self.keys.queue_heartbeats(scope), waiter_id)
            .hdel(self.keys.queue_entries(scope), waiter_id);
        self.run(
            "leave lock queue",
            pipeline.query_async::<()>(&mut connection),
        )
        .await
    }

    pub async fn list_queue(&self, scope: &str) -> Result<Vec<QueueEntry>, CoordError> {
        let entries_key = self.keys.queue_entries(scope);
        let mut connection = self.connection();
        let mut invocation = QUEUE_LIST.prepare_invoke();
        invocation
            .key(self.keys.queue(scope))
            .key(self.keys.queue_heartbeats(scope))
            .key(&entries_key);
        let entries: Vec<String> = self
            .run("list lock queue", invocation.invoke_async(&mut connection))
            .await?;
        entries
            .iter()
            .enumerate()
            .map(|(index, json)| {
                let waiter: QueueWaiter = decode_json(&entries_key, json)?;
                Ok(QueueEntry {
                    position: index + 1,
                    owner: waiter.owner,
                    operation: waiter.operation,
                    enqueued_at: waiter.enqueued_at,
                })
            })
            .collect()
    }
}

fn lock_info(
    key: &str,
    scope: &str,
    json: &str,
    remaining_ms: i64,
) -> Result<LockInfo, CoordError> {
    let lock: LockValue = decode_json(key, json)?;
    Ok(LockInfo {
        scope: scope.to_string(),
        owner: lock.owner,
        operation: lock.operation,
        token: lock.token,
        since: lock.since,
        expires_in: Duration::from_millis(remaining_ms.max(0) as u64),
    })
}

/// Takes the next element of a script reply as `T`.
fn next_field<T: redis::FromRedisValue>(
    key: &str,
    fields: &mut impl Iterator<Item = Value>,
) -> Result<T, CoordError> {
    let corrupt = |reason: String| CoordError::CorruptValue {
        key: key.to_string(),
        reason,
    };
    let value = fields
        .next()
        .ok_or_else(|| corrupt("script reply is shorter than expected".to_string()))?;
    redis::from_redis_value(value).map_err(|error| corrupt(error.to_string()))
}

fn non_empty(text: &str) -> Option<&str> {
    (!text.is_empty()).then_some(text)
}
