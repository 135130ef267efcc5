//! The FIFO queue of approved operations waiting for a lock.
//!
//! A waiter joins the queue of a scope, then polls: each poll renews its
//! heartbeat, removes waiters whose heartbeat expired (their process died),
//! and takes the lock when this waiter is first and the lock is free. Both
//! stores implement the three primitives (join, poll, leave) atomically; the
//! loop here is shared.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::time::Instant;
use tracing::{debug, warn};

use super::types::random_text;
use super::{CoordError, Coordinator, LockGuard, QueuePosition, unix_now_ms};

/// Length of the random id of a queued waiter.
const WAITER_ID_LEN: usize = 16;

/// A queued operation. Serialized as the entry stored in Redis.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct QueueWaiter {
    #[serde(skip)]
    pub id: String,
    pub owner: String,
    pub operation: String,
    /// Unix time in milliseconds.
    pub enqueued_at: u64,
}

impl QueueWaiter {
    pub fn new(owner: &str, operation: &str) -> Self {
        Self {
            id: random_text(WAITER_ID_LEN),
            owner: owner.to_string(),
            operation: operation.to_string(),
            enqueued_at: unix_now_ms(),
        }
    }
}

/// Result of one poll of a queued waiter.
#[derive(Debug)]
pub(crate) enum QueuePoll {
    /// The waiter was first and the lock was free: it left the queue and holds
    /// the lock.
    Acquired(LockGuard),
    Waiting(QueuePosition),
    /// The waiter is no longer queued because its heartbeat expired, for
    /// example after the process stalled for longer than the heartbeat TTL.
    Evicted,
}

impl Coordinator {
    /// Joins the FIFO queue of `scope` and waits until this operation is first
    /// and the lock is free, then takes the lock for `ttl`.
    ///
    /// `progress` is called after the first poll and whenever the position
    /// changes, so the chat can show "2nd in queue behind X". Fails with
    /// `QueueFull` when [`super::MAX_QUEUE_LEN`] operations are waiting and
    /// with `QueueTimeout` after `max_wait`, having left the queue.
    ///
    /// If the returned future is dropped, a task is spawned to leave the queue.
    /// If that fails, or the process dies, the entry is removed once its
    /// heartbeat expires.
    pub async fn wait_for_lock(
        &self,
        scope: &str,
        owner: &str,
        operation: &str,
        ttl: Duration,
        max_wait: Duration,
        mut progress: impl FnMut(QueuePosition),
    ) -> Result<LockGuard, CoordError> {
        let started = Instant::now();
        let waiter = QueueWaiter::new(owner, operation);
        // The ticket exists before the join is sent: a future dropped while
        // the join is in flight may already be queued, and leaving an entry
        // that was never written does nothing.
        let mut ticket = QueueTicket {
            coordinator: self.clone(),
            scope: scope.to_string(),
            waiter_id: waiter.id.clone(),
            queued: true,
        };
        if let Err(error) = self.queue_join(scope, &waiter).await {
            ticket.queued = matches!(error, CoordError::Unavailable { .. });
            return Err(error);
        }
        debug!(scope, owner, waiter = %waiter.id, "joined lock queue");

        let poll_interval = self.options().queue_poll_interval;
        let mut last_position = None;
        loop {
            match self.queue_poll(scope, &waiter, ttl).await? {
                QueuePoll::Acquired(guard) => {
                    ticket.queued = false;
                    debug!(scope, owner, token = guard.token, "took lock from queue");
                    return Ok(guard);
                }
                QueuePoll::Waiting(position) => {
                    if last_position != Some(position.position) {
                        last_position = Some(position.position);
                        progress(position);
                    }
                }
                QueuePoll::Evicted => {
                    warn!(
                        scope,
                        owner,
                        waiter = %waiter.id,
                        "queued operation lost its heartbeat and rejoins at the back of the queue"
                    );
                    self.queue_join(scope, &waiter).await?;
                }
            }

            let waited = started.elapsed();
            if waited >= max_wait {
                ticket.queued = false;
                self.queue_leave(scope, &waiter.id).await?;
                return Err(CoordError::QueueTimeout {
                    scope: scope.to_string(),
                    waited,
                });
            }
            tokio::time::sleep(poll_interval.min(max_wait - waited)).await;
        }
    }

    pub(crate) async fn queue_join(
        &self,
        scope: &str,
        waiter: &QueueWaiter,
    ) -> Result<(), CoordError> {
        match self {
            Self::Memory(store) => store.queue_join(scope, waiter),
            Self::Redis(store) => store.queue_join(scope, waiter).await,
        }
    }

    pub(crate) async fn queue_poll(
        &self,
        scope: &str,
        waiter: &QueueWaiter,
        lock_ttl: Duration,
    ) -> Result<QueuePoll, CoordError> {
        match self {
            Self::Memory(store) => Ok(store.queue_poll(scope, waiter, lock_ttl)),
            Self::Redis(store) => store.queue_poll(scope, waiter, lock_ttl).await,
        }
    }

    pub(crate) async fn queue_leave(&self, scope: &str, waiter_id: &str) -> Result<(), CoordError> {
        match self {
            Self::Memory(store) => {
                store.queue_leave(scope, waiter_id);
                Ok(())
            }
            Self::Redis(store) => store.queue_leave(scope, waiter_id).await,
        }
    }
}

/// Removes a waiter from its queue when `wait_for_lock` ends without taking
/// the lock or reaching its own cleanup: on an error or when the future is
/// dropped.
struct QueueTicket {
    coordinator: Coordinator,
    scope: String,
    waiter_id: String,
    queued: bool,
}

impl Drop for QueueTicket {
    fn drop(&mut self) {
        if !self.queued {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let coordinator = self.coordinator.clone();
        let scope = std::mem::take(&mut self.scope);
        let waiter_id = std::mem::take(&mut self.waiter_id);
        runtime.spawn(async move {
            if let Err(error) = coordinator.queue_leave(&scope, &waiter_id).await {
                warn!(
                    %error,
                    scope,
                    waiter = %waiter_id,
                    "could not leave lock queue; the entry expires with its heartbeat"
                );
            }
        });
    }
}
