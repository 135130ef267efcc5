//! State that replicas of the bot share: operation locks with fencing tokens
//! and a FIFO queue, pending approvals with atomic decisions, delivery
//! de-duplication, rate limits, cooldowns, the freeze switch and the audit
//! stream.
//!
//! Layout:
//! - `types`: the values callers pass and receive, and request id generation.
//! - `error`: [`CoordError`]; `Unavailable` means "Redis is unavailable" and
//!   callers fail closed.
//! - [`Coordinator`] (this file): the handle the rest of the bot uses. It
//!   dispatches each call to one of two stores with the same semantics:
//!   - `memory`: one process only (`scalebot demo`, the console). Its clock is
//!     `tokio::time`, so tests can pause time.
//!   - `redis_store`: shared by replicas. Each multi-step operation is one Lua
//!     script (`lua/`), so it runs atomically on the server.
//! - `queue`: the wait loop over the store's queue primitives, shared by both
//!   stores.
//! - `local_limiter`: a process-local keyed rate limiter that adapters use to
//!   drop floods before they reach Redis.
//! - `testing` and `conformance` (feature `test-support`): a `redis-server`
//!   harness and the test suite that both stores must pass.

mod error;
mod local_limiter;
mod memory;
mod queue;
mod redis_store;
mod types;

#[cfg(any(test, feature = "test-support"))]
pub mod conformance;
#[cfg(any(test, feature = "test-support"))]
pub mod testing;

use std::fmt;
use std::time::Duration;

pub use error::CoordError;
pub use local_limiter::LocalLimiter;
pub use memory::MemoryStore;
pub use redis_store::RedisStore;
pub use types::{
    Approval, AuditEntry, AuditKind, CoordinatorOptions, Decision, DecisionOutcome, FreezeState,
    LockGuard, LockInfo, PendingRequest, PendingState, QueueEntry, QueuePosition,
    REQUEST_ID_ALPHABET, REQUEST_ID_LEN, RateDecision, UnknownAuditKind, new_request_id,
    unix_now_ms,
};

/// Maximum number of operations waiting for one lock. A longer queue means
/// operators are piling up changes on one service, which they should see
/// rather than wait out.
pub const MAX_QUEUE_LEN: usize = 32;

/// Approximate number of audit entries kept. Redis trims the stream with
/// `MAXLEN ~`, so it may keep somewhat more; the memory store keeps exactly
/// this many.
pub const AUDIT_MAX_LEN: usize = 10_000;

/// Handle to the coordination store. Cloning is cheap and clones share the
/// same store (and, for Redis, the same reconnecting connection).
#[derive(Clone)]
pub enum Coordinator {
    Memory(MemoryStore),
    Redis(RedisStore),
}

impl fmt::Debug for Coordinator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Memory(_) => f.write_str("Coordinator::Memory"),
            Self::Redis(store) => write!(f, "Coordinator::Redis({:?})", store.key_prefix()),
        }
    }
}

impl Coordinator {
    /// Creates a store local to this process, with default options.
    pub fn memory() -> Self {
        Self::Memory(MemoryStore::new(CoordinatorOptions::default()))
    }

    pub fn memory_with(options: CoordinatorOptions) -> Result<Self, CoordError> {
        options.validate()?;
        Ok(Self::Memory(MemoryStore::new(options)))
    }

    /// Connects to Redis at `url` (`redis://host:port/db`) and keeps every key
    /// under `key_prefix` (for example `scalebot` gives `scalebot:lock:synapse`).
    /// Fails with `Unavailable` when Redis does not reply within the command
    /// timeout. After that the connection reconnects on its own.
    pub async fn redis(url: &str, key_prefix: &str) -> Result<Self, CoordError> {
        Self::redis_with(url, key_prefix, CoordinatorOptions::default()).await
    }

    pub async fn redis_with(
        url: &str,
        key_prefix: &str,
        options: CoordinatorOptions,
    ) -> Result<Self, CoordError> {
        options.validate()?;
        Ok(Self::Redis(
            RedisStore::connect(url, key_prefix, options).await?,
        ))
    }

    /// Returns whether locks and approvals are local to this process, so that a
    /// second replica would not see them.
    pub fn is_local(&self) -> bool {
        matches!(self, Self::Memory(_))
    }

    pub fn options(&self) -> &CoordinatorOptions {
        match self {
            Self::Memory(store) => store.options(),
            Self::Redis(store) => store.options(),
        }
    }

    /// Checks that the store replies, for readiness probes.
    pub async fn ping(&self) -> Result<(), CoordError> {
        match self {
            Self::Memory(_) => Ok(()),
            Self::Redis(store) => store.ping().await,
        }
    }

    /// Takes the operation lock of `scope` (usually a service) for `ttl`
    /// unless it is held or approved operations are queued for it. `operation`
    /// is shown to users who find the lock taken (request id and summary).
    /// Each successful call gets a fencing token greater than any before it
    /// for this scope.
    pub async fn acquire_lock(
        &self,
        scope: &str,
        owner: &str,
        operation: &str,
        ttl: Duration,
    ) -> Result<Option<LockGuard>, CoordError> {
        match self {
            Self::Memory(store) => Ok(store.acquire_lock(scope, owner, operation, ttl)),
            Self::Redis(store) => store.acquire_lock(scope, owner, operation, ttl).await,
        }
    }

    /// Extends the lock to `ttl` from now. Returns false when the lock expired
    /// or another holder (or a later token of the same owner) has it, in which
    /// case the caller must stop writing.
    pub async fn renew_lock(&self, guard: &LockGuard, ttl: Duration) -> Result<bool, CoordError> {
        match self {
            Self::Memory(store) => Ok(store.renew_lock(guard, ttl)),
            Self::Redis(store) => store.renew_lock(guard, ttl).await,
        }
    }

    /// Deletes the lock if `guard` still holds it. Returns false when it had
    /// already expired or passed to another holder.
    pub async fn release_lock(&self, guard: &LockGuard) -> Result<bool, CoordError> {
        match self {
            Self::Memory(store) => Ok(store.release_lock(guard)),
            Self::Redis(store) => store.release_lock(guard).await,
        }
    }

    pub async fn lock_holder(&self, scope: &str) -> Result<Option<LockInfo>, CoordError> {
        match self {
            Self::Memory(store) => Ok(store.lock_holder(scope)),
            Self::Redis(store) => store.lock_holder(scope).await,
        }
    }

    /// Lists held locks, sorted by scope.
    pub async fn list_locks(&self) -> Result<Vec<LockInfo>, CoordError> {
        match self {
            Self::Memory(store) => Ok(store.list_locks()),
            Self::Redis(store) => store.list_locks().await,
        }
    }

    /// Lists live waiters for the lock of `scope`, next in line first.
    pub async fn list_queue(&self, scope: &str) -> Result<Vec<QueueEntry>, CoordError> {
        match self {
            Self::Memory(store) => Ok(store.list_queue(scope)),
            Self::Redis(store) => store.list_queue(scope).await,
        }
    }

    /// Stores a new request until `expires_at` plus the retention period.
    /// Fails with `DuplicateRequestId` when the id is in use.
    pub async fn put_pending(&self, request: &PendingRequest) -> Result<(), CoordError> {
        match self {
            Self::Memory(store) => store.put_pending(request),
            Self::Redis(store) => store.put_pending(request).await,
        }
    }

    /// Reads the request with `id` in any state. Returns `None` once its
    /// retention has ended.
    pub async fn get_pending(&self, id: &str) -> Result<Option<PendingRequest>, CoordError> {
        match self {
            Self::Memory(store) => Ok(store.get_pending(id)),
            Self::Redis(store) => store.get_pending(id).await,
        }
    }

    /// Lists requests still waiting for a decision and not past `expires_at` by
    /// the local clock, oldest first.
    pub async fn list_pending(&self) -> Result<Vec<PendingRequest>, CoordError> {
        match self {
            Self::Memory(store) => Ok(store.list_pending(unix_now_ms())),
            Self::Redis(store) => store.list_pending(unix_now_ms()).await,
        }
    }

    /// Applies an approve, reject or cancel click atomically, so that two
    /// clicks or two replicas can never both receive `Approved`. `now_ms` is
    /// Unix time in milliseconds, compared with `expires_at`.
    pub async fn decide(
        &self,
        id: &str,
        decision: Decision,
        now_ms: u64,
    ) -> Result<DecisionOutcome, CoordError> {
        match self {
            Self::Memory(store) => Ok(store.decide(id, &decision, now_ms)),
            Self::Redis(store) => store.decide(id, &decision, now_ms).await,
        }
    }

    /// Marks every pending request whose `expires_at` is at or before `now_ms`
    /// as expired and returns them, oldest first. Each request is returned to
    /// exactly one caller, across replicas, so that caller alone posts the
    /// expiry and audits it. A request that expired inside `decide` is
    /// reported there instead.
    pub async fn expire_due(&self, now_ms: u64) -> Result<Vec<PendingRequest>, CoordError> {
        match self {
            Self::Memory(store) => Ok(store.expire_due(now_ms)),
            Self::Redis(store) => store.expire_due(now_ms).await,
        }
    }

    /// Records a platform delivery id. Returns true the first time it is seen
    /// within `ttl`, so a redelivered event is handled once.
    pub async fn first_delivery(
        &self,
        delivery_id: &str,
        ttl: Duration,
    ) -> Result<bool, CoordError> {
        match self {
            Self::Memory(store) => Ok(store.first_delivery(delivery_id, ttl)),
            Self::Redis(store) => store.first_delivery(delivery_id, ttl).await,
        }
    }

    /// Stores a short adapter note, such as the chat message that shows a
    /// pending request, so every replica can find it until `ttl` passes.
    pub async fn put_note(&self, key: &str, value: &str, ttl: Duration) -> Result<(), CoordError> {
        match self {
            Self::Memory(store) => {
                store.put_note(key, value, ttl);
                Ok(())
            }
            Self::Redis(store) => store.put_note(key, value, ttl).await,
        }
    }

    /// Reads a note stored by [`Coordinator::put_note`], if it has not expired.
    pub async fn get_note(&self, key: &str) -> Result<Option<String>, CoordError> {
        match self {
            Self::Memory(store) => Ok(store.get_note(key)),
            Self::Redis(store) => store.get_note(key).await,
        }
    }

    /// Counts one event for `key` unless `limit` events were already counted
    /// in the last `window` (a sliding-window log). Redis uses the server's
    /// clock, so replicas share one window.
    pub async fn check_rate(
        &self,
        key: &str,
        limit: u32,
        window: Duration,
    ) -> Result<RateDecision, CoordError> {
        match self {
            Self::Memory(store) => Ok(store.check_rate(key, limit, window)),
            Self::Redis(store) => store.check_rate(key, limit, window).await,
        }
    }

    /// Starts (or restarts) a cooldown of `duration` on `service`.
    pub async fn start_cooldown(
        &self,
        service: &str,
        duration: Duration,
    ) -> Result<(), CoordError> {
        match self {
            Self::Memory(store) => {
                store.start_cooldown(service, duration);
                Ok(())
            }
            Self::Redis(store) => store.start_cooldown(service, duration).await,
        }
    }

    /// Returns the time left in the cooldown of `service`, or `None` when there
    /// is none.
    pub async fn cooldown_remaining(&self, service: &str) -> Result<Option<Duration>, CoordError> {
        match self {
            Self::Memory(store) => Ok(store.cooldown_remaining(service)),
            Self::Redis(store) => store.cooldown_remaining(service).await,
        }
    }

    /// Stores a freeze, which policy checks to stop mutating commands, until
    /// `clear_freeze`. It replaces any earlier freeze and has no expiry.
    pub async fn set_freeze(&self, freeze: &FreezeState) -> Result<(), CoordError> {
        match self {
            Self::Memory(store) => {
                store.set_freeze(freeze);
                Ok(())
            }
            Self::Redis(store) => store.set_freeze(freeze).await,
        }
    }

    /// Lifts the freeze. Returns false when there was none.
    pub async fn clear_freeze(&self) -> Result<bool, CoordError> {
        match self {
            Self::Memory(store) => Ok(store.clear_freeze()),
            Self::Redis(store) => store.clear_freeze().await,
        }
    }

    pub async fn freeze_state(&self) -> Result<Option<FreezeState>, CoordError> {
        match self {
            Self::Memory(store) => Ok(store.freeze_state()),
            Self::Redis(store) => store.freeze_state().await,
        }
    }

    /// Appends to the audit stream and returns the entry id (opaque text).
    pub async fn append_audit(&self, entry: &AuditEntry) -> Result<String, CoordError> {
        match self {
            Self::Memory(store) => Ok(store.append_audit(entry)),
            Self::Redis(store) => store.append_audit(entry).await,
        }
    }

    /// Reads up to `count` audit entries, newest first, only those of `service`
    /// when given.
    pub async fn read_audit(
        &self,
        service: Option<&str>,
        count: usize,
    ) -> Result<Vec<AuditEntry>, CoordError> {
        match self {
            Self::Memory(store) => Ok(store.read_audit(service, count)),
            Self::Redis(store) => store.read_audit(service, count).await,
        }
    }
}
