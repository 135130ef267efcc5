//! The coordination store for a single process. All state sits behind one
//! mutex, which makes every operation atomic like the Redis scripts. Deadlines
//! use `tokio::time::Instant`, so tests can pause and advance time; Unix
//! timestamps in the returned values come from the wall clock.

mod locks;
mod pending;

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tokio::time::Instant;

use super::{
    AUDIT_MAX_LEN, AuditEntry, CoordinatorOptions, FreezeState, PendingRequest, RateDecision,
};

/// In-process store; clones share the state.
#[derive(Clone)]
pub struct MemoryStore {
    state: Arc<Mutex<State>>,
    options: CoordinatorOptions,
}

#[derive(Default)]
struct State {
    locks: HashMap<String, HeldLock>,
    /// Last fencing token per scope. Never reset, so tokens keep increasing
    /// after a lock expires.
    fences: HashMap<String, u64>,
    queues: HashMap<String, LockQueue>,
    requests: HashMap<String, StoredRequest>,
    deliveries: HashMap<String, Instant>,
    /// Adapter notes: value and expiry.
    notes: HashMap<String, (String, Instant)>,
    rate_logs: HashMap<String, RateLog>,
    cooldowns: HashMap<String, Instant>,
    freeze: Option<FreezeState>,
    audit: VecDeque<(u64, AuditEntry)>,
    last_audit_id: u64,
}

struct HeldLock {
    owner: String,
    operation: String,
    token: u64,
    since: u64,
    expires: Instant,
}

#[derive(Default)]
struct LockQueue {
    last_sequence: u64,
    /// Waiters by join sequence, so iteration order is FIFO order.
    waiters: BTreeMap<u64, QueuedWaiter>,
}

struct QueuedWaiter {
    id: String,
    owner: String,
    operation: String,
    enqueued_at: u64,
    heartbeat_expires: Instant,
}

struct StoredRequest {
    request: PendingRequest,
    /// When the request is deleted: `expires_at` plus the retention period,
    /// or the decision time plus the retention period.
    delete_at: Instant,
}

struct RateLog {
    window: Duration,
    /// Times of counted events, oldest first.
    events: VecDeque<Instant>,
}

impl MemoryStore {
    pub fn new(options: CoordinatorOptions) -> Self {
        Self {
            state: Arc::new(Mutex::new(State::default())),
            options,
        }
    }

    pub fn options(&self) -> &CoordinatorOptions {
        &self.options
    }

    /// Locks the state and drops everything that expired. No code panics while
    /// holding the lock, so a poisoned mutex still holds consistent state.
    fn state(&self) -> MutexGuard<'_, State> {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        state.drop_expired(Instant::now());
        state
    }

    pub fn first_delivery(&self, delivery_id: &str, ttl: Duration) -> bool {
        let now = Instant::now();
        let mut state = self.state();
        if state.deliveries.contains_key(delivery_id) {
            return false;
        }
        state.deliveries.insert(delivery_id.to_string(), now + ttl);
        true
    }

    pub fn put_note(&self, key: &str, value: &str, ttl: Duration) {
        let expires = Instant::now() + ttl;
        self.state()
            .notes
            .insert(key.to_string(), (value.to_string(), expires));
    }

    pub fn get_note(&self, key: &str) -> Option<String> {
        self.state().notes.get(key).map(|(value, _)| value.clone())
    }

    pub fn check_rate(&self, key: &str, limit: u32, window: Duration) -> RateDecision {
        let now = Instant::now();
        let mut state = self.state();
        let log = state.rate_logs.entry(key.to_string()).or_insert(RateLog {
            window,
            events: VecDeque::new(),
        });
        log.window = window;
        while log.events.front().is_some_and(|&at| at + window <= now) {
            log.events.pop_front();
        }
        if log.events.len() < limit as usize {
            log.events.push_back(now);
            return RateDecision::Allowed;
        }
        let retry_after = match log.events.front() {
            Some(&oldest) => oldest + window - now,
            None => window,
        };
        RateDecision::Limited { retry_after }
    }

    pub fn start_cooldown(&self, service: &str, duration: Duration) {
        let now = Instant::now();
        self.state()
            .cooldowns
            .insert(service.to_string(), now + duration);
    }

    pub fn cooldown_remaining(&self, service: &str) -> Option<Duration> {
        let now = Instant::now();
        let state = self.state();
        let ends = state.cooldowns.get(service)?;
        Some(*ends - now)
    }

    pub fn set_freeze(&self, freeze: &FreezeState) {
        self.state().freeze = Some(freeze.clone());
    }

    pub fn clear_freeze(&self) -> bool {
        self.state().freeze.take().is_some()
    }

    pub fn freeze_state(&self) -> Option<FreezeState> {
        self.state().freeze.clone()
    }

    pub fn append_audit(&self, entry: &AuditEntry) -> String {
        let mut state = self.state();
        state.last_audit_id += 1;
        let id = state.last_audit_id;
        state.audit.push_back((id, entry.clone()));
        if state.audit.len() > AUDIT_MAX_LEN {
            state.audit.pop_front();
        }
        id.to_string()
    }

    pub fn read_audit(&self, service: Option<&str>, count: usize) -> Vec<AuditEntry> {
        let state = self.state();
        state
            .audit
            .iter()
            .rev()
            .map(|(_, entry)| entry)
            .filter(|entry| service.is_none() || entry.service.as_deref() == service)
            .take(count)
            .cloned()
            .collect()
    }
}

impl State {
    /// Drops expired locks, waiters, requests, delivery ids, notes, rate logs and
    /// cooldowns, as Redis would expire their keys.
    fn drop_expired(&mut self, now: Instant) {
        self.locks.retain(|_, lock| lock.expires > now);
        for queue in self.queues.values_mut() {
            queue
                .waiters
                .retain(|_, waiter| waiter.heartbeat_expires > now);
        }
        self.queues.retain(|_, queue| !queue.waiters.is_empty());
        self.requests.retain(|_, stored| stored.delete_at > now);
        self.deliveries.retain(|_, expires| *expires > now);
        self.notes.retain(|_, (_, expires)| *expires > now);
        self.rate_logs.retain(|_, log| {
            log.events
                .back()
                .is_some_and(|&newest| newest + log.window > now)
        });
        self.cooldowns.retain(|_, ends| *ends > now);
    }
}

#[cfg(test)]
mod tests;
