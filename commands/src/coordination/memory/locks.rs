//! Operation locks and their FIFO queues in memory.

use std::time::Duration;

use tokio::time::Instant;

use super::{HeldLock, MemoryStore, QueuedWaiter, State};
use crate::coordination::queue::{QueuePoll, QueueWaiter};
use crate::coordination::{
    CoordError, LockGuard, LockInfo, MAX_QUEUE_LEN, QueueEntry, QueuePosition, unix_now_ms,
};

impl MemoryStore {
    pub fn acquire_lock(
        &self,
        scope: &str,
        owner: &str,
        operation: &str,
        ttl: Duration,
    ) -> Option<LockGuard> {
        let now = Instant::now();
        let mut state = self.state();
        let queued = state
            .queues
            .get(scope)
            .is_some_and(|queue| !queue.waiters.is_empty());
        if state.locks.contains_key(scope) || queued {
            return None;
        }
        Some(state.take_lock(scope, owner, operation, ttl, now))
    }

    pub fn renew_lock(&self, guard: &LockGuard, ttl: Duration) -> bool {
        let now = Instant::now();
        let mut state = self.state();
        match state.locks.get_mut(&guard.scope) {
            Some(lock) if lock.owner == guard.owner && lock.token == guard.token => {
                lock.expires = now + ttl;
                true
            }
            _ => false,
        }
    }

    pub fn release_lock(&self, guard: &LockGuard) -> bool {
        let mut state = self.state();
        let held = state
            .locks
            .get(&guard.scope)
            .is_some_and(|lock| lock.owner == guard.owner && lock.token == guard.token);
        if held {
            state.locks.remove(&guard.scope);
        }
        held
    }

    pub fn lock_holder(&self, scope: &str) -> Option<LockInfo> {
        let now = Instant::now();
        let state = self.state();
        state
            .locks
            .get(scope)
            .map(|lock| lock_info(scope, lock, now))
    }

    pub fn list_locks(&self) -> Vec<LockInfo> {
        let now = Instant::now();
        let state = self.state();
        let mut locks: Vec<LockInfo> = state
            .locks
            .iter()
            .map(|(scope, lock)| lock_info(scope, lock, now))
            .collect();
        locks.sort_by(|a, b| a.scope.cmp(&b.scope));
        locks
    }

    pub(crate) fn queue_join(&self, scope: &str, waiter: &QueueWaiter) -> Result<(), CoordError> {
        let now = Instant::now();
        let heartbeat_ttl = self.options.queue_heartbeat_ttl;
        let mut state = self.state();
        let queue = state.queues.entry(scope.to_string()).or_default();
        if queue.waiters.len() >= MAX_QUEUE_LEN {
            return Err(CoordError::QueueFull {
                scope: scope.to_string(),
                max: MAX_QUEUE_LEN,
            });
        }
        queue.last_sequence += 1;
        queue.waiters.insert(
            queue.last_sequence,
            QueuedWaiter {
                id: waiter.id.clone(),
                owner: waiter.owner.clone(),
                operation: waiter.operation.clone(),
                enqueued_at: waiter.enqueued_at,
                heartbeat_expires: now + heartbeat_ttl,
            },
        );
        Ok(())
    }

    pub(crate) fn queue_poll(
        &self,
        scope: &str,
        waiter: &QueueWaiter,
        lock_ttl: Duration,
    ) -> QueuePoll {
        let now = Instant::now();
        let heartbeat_ttl = self.options.queue_heartbeat_ttl;
        let mut state = self.state();
        let holder = state.locks.get(scope).map(|lock| lock.owner.clone());
        let Some(queue) = state.queues.get_mut(scope) else {
            return QueuePoll::Evicted;
        };
        let Some(rank) = queue.waiters.values().position(|w| w.id == waiter.id) else {
            return QueuePoll::Evicted;
        };

        if rank == 0 && holder.is_none() {
            queue.waiters.pop_first();
            let guard = state.take_lock(scope, &waiter.owner, &waiter.operation, lock_ttl, now);
            return QueuePoll::Acquired(guard);
        }

        let queue_len = queue.waiters.len();
        let mut ahead = None;
        for (index, queued) in queue.waiters.values_mut().enumerate() {
            if index + 1 == rank {
                ahead = Some(queued.owner.clone());
            }
            if index == rank {
                queued.heartbeat_expires = now + heartbeat_ttl;
            }
        }
        QueuePoll::Waiting(QueuePosition {
            position: rank + 1,
            queue_len,
            ahead,
            holder,
        })
    }

    pub(crate) fn queue_leave(&self, scope: &str, waiter_id: &str) {
        let mut state = self.state();
        if let Some(queue) = state.queues.get_mut(scope) {
            queue.waiters.retain(|_, waiter| waiter.id != waiter_id);
        }
    }

    pub fn list_queue(&self, scope: &str) -> Vec<QueueEntry> {
        let state = self.state();
        let Some(queue) = state.queues.get(scope) else {
            return Vec::new();
        };
        queue
            .waiters
            .values()
            .enumerate()
            .map(|(index, waiter)| QueueEntry {
                position: index + 1,
                owner: waiter.owner.clone(),
                operation: waiter.operation.clone(),
                enqueued_at: waiter.enqueued_at,
            })
            .collect()
    }
}

impl State {
    /// Takes the free lock of `scope` with the next fencing token.
    fn take_lock(
        &mut self,
        scope: &str,
        owner: &str,
        operation: &str,
        ttl: Duration,
        now: Instant,
    ) -> LockGuard {
        let fence = self.fences.entry(scope.to_string()).or_insert(0);
        *fence += 1;
        let token = *fence;
        let since = unix_now_ms();
        self.locks.insert(
            scope.to_string(),
            HeldLock {
                owner: owner.to_string(),
                operation: operation.to_string(),
                token,
                since,
                expires: now + ttl,
            },
        );
        LockGuard {
            scope: scope.to_string(),
            owner: owner.to_string(),
            token,
            acquired_at: since,
        }
    }
}

fn lock_info(scope: &str, lock: &HeldLock, now: Instant) -> LockInfo {
    LockInfo {
        scope: scope.to_string(),
        owner: lock.owner.clone(),
        operation: lock.operation.clone(),
        token: lock.token,
        since: lock.since,
        expires_in: lock.expires - now,
    }
}
