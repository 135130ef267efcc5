//! Runs an approved request: wait in the lock queue, take the operation lock,
//! keep renewing it, run the procedure, record the result and release the
//! lock, also when the procedure fails.

use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, mpsc, watch};
use tracing::Instrument;

use super::scale::{Operation, lock_scope, scalable_kind};
use super::{Engine, Replies, Reply, ReplyBody, send};
use crate::catalog::{DataStore, WorkloadKind};
use crate::coordination::{
    AuditEntry, AuditKind, LockGuard, PendingRequest, QueuePosition, unix_now_ms,
};
use crate::procedures::{
    Outcome, Progress, StatefulPlan, cassandra, horizontal, hpa_limits, kafka, postgres,
    redis_cluster,
};
use crate::reply::EngineError;

/// Capacity of a procedure's progress queue towards the reply queue.
const PROGRESS_QUEUE: usize = 64;

/// Spawns the execution of an approved request on the engine's bounded set
/// of procedure slots. A free slot is taken before the task starts, so
/// `wait_idle` cannot miss a procedure that was just approved.
pub(super) async fn spawn(engine: &Engine, pending: PendingRequest, replies: Replies) {
    let slot = engine.inner.procedures.clone().try_acquire_owned().ok();
    let engine = engine.clone();
    let span =
        tracing::info_span!("procedure", request.id = %pending.id, service = %pending.service);
    tokio::spawn(
        async move {
            let _running = RunningGuard::new(&engine, &pending.id);
            run_with_slot(&engine, &pending, &replies, slot).await;
        }
        .instrument(span),
    );
}

/// Marks a request as running in this process while it lives, so the
/// interrupted-procedure check never reports a procedure that is alive here.
struct RunningGuard {
    engine: Engine,
    id: String,
}

impl RunningGuard {
    fn new(engine: &Engine, id: &str) -> Self {
        engine.running_ids().insert(id.to_string());
        Self {
            engine: engine.clone(),
            id: id.to_string(),
        }
    }
}

impl Drop for RunningGuard {
    fn drop(&mut self) {
        self.engine.running_ids().remove(&self.id);
    }
}

/// Runs the request in a procedure slot: `slot` when one was free at
/// approval, otherwise the first that frees up within the queue's maximum
/// wait. The slot is held until the result is reported, so `wait_idle`
/// returns only after the last reply.
async fn run_with_slot(
    engine: &Engine,
    pending: &PendingRequest,
    replies: &Replies,
    slot: Option<OwnedSemaphorePermit>,
) {
    let shutting_down = EngineError::ShuttingDown {
        id: pending.id.clone(),
    };
    if engine.is_stopping() {
        return report_failure(engine, pending, replies, shutting_down).await;
    }
    let permit = match slot {
        Some(permit) => permit,
        None => {
            let waited = tokio::select! {
                waited = wait_for_slot(engine, pending, replies) => waited,
                () = engine.stopped() => Err(shutting_down),
            };
            match waited {
                Ok(permit) => permit,
                Err(error) => return report_failure(engine, pending, replies, error).await,
            }
        }
    };
    if let Err(error) = run(engine, pending, replies).await {
        report_failure(engine, pending, replies, error).await;
    }
    drop(permit);
}

async fn report_failure(
    engine: &Engine,
    pending: &PendingRequest,
    replies: &Replies,
    error: EngineError,
) {
    let text = crate::reply::describe(&error, &pending.id);
    record(engine, pending, AuditKind::Failed, text.clone(), None).await;
    let reply = Reply::new(
        &pending.channel,
        Some(pending.id.clone()),
        ReplyBody::Error(text),
    );
    send(replies, reply).await;
}

async fn wait_for_slot(
    engine: &Engine,
    pending: &PendingRequest,
    replies: &Replies,
) -> Result<OwnedSemaphorePermit, EngineError> {
    let max_wait = engine.config().policy.queue_max_wait;
    let line = format!(
        "{} procedures are running in this bot process; waiting up to {}s for a free slot",
        super::MAX_RUNNING_PROCEDURES,
        max_wait.as_secs()
    );
    let reply = Reply::new(
        &pending.channel,
        Some(pending.id.clone()),
        ReplyBody::Progress(line),
    );
    send(replies, reply).await;
    let slots = engine.inner.procedures.clone();
    match tokio::time::timeout(max_wait, slots.acquire_owned()).await {
        Ok(Ok(permit)) => Ok(permit),
        Ok(Err(_closed)) => Err(EngineError::Internal("procedure slots closed".to_string())),
        Err(_elapsed) => Err(EngineError::NoProcedureSlot {
            id: pending.id.clone(),
            waited: max_wait,
        }),
    }
}

async fn record(
    engine: &Engine,
    pending: &PendingRequest,
    kind: AuditKind,
    detail: String,
    token: Option<u64>,
) {
    let entry = AuditEntry {
        at_ms: unix_now_ms(),
        request_id: Some(pending.id.clone()),
        kind,
        service: Some(pending.service.clone()),
        actor: "scalebot".to_string(),
        detail,
        fencing_token: token,
    };
    if let Err(error) = engine.coordinator().append_audit(&entry).await {
        tracing::warn!(%error, kind = %kind, "audit entry not recorded");
    }
}

async fn run(
    engine: &Engine,
    pending: &PendingRequest,
    replies: &Replies,
) -> Result<(), EngineError> {
    let operation: Operation = serde_json::from_value(pending.payload.clone()).map_err(|e| {
        EngineError::Internal(format!("stored request {} is unreadable: {e}", pending.id))
    })?;
    let service = engine.catalog().resolve(operation.service())?.clone();
    let kind = scalable_kind(&service)?;
    // A request approved before a freeze began needed fewer approvals than a
    // frozen one does, so it may not run while the freeze lasts.
    if let Some(freeze) = engine.coordinator().freeze_state().await?
        && pending.approvals_needed < engine.config().policy.approvals.freeze
    {
        return Err(EngineError::FrozenBeforeRun {
            reason: freeze.reason,
            by: freeze.by,
        });
    }

    let config = &engine.config().policy;
    let scope = lock_scope(engine, &service);
    let owner = format!("{}/{}", engine.inner.instance, pending.id);
    let progress_reply = |text: String| {
        Reply::new(
            &pending.channel,
            Some(pending.id.clone()),
            ReplyBody::Progress(text),
        )
    };
    let mut last_position = 0;
    let waiting = engine.coordinator().wait_for_lock(
        &scope,
        &owner,
        &pending.summary,
        config.lock_ttl,
        config.queue_max_wait,
        |position: QueuePosition| {
            if position.position != last_position {
                last_position = position.position;
                let holder = position.holder.unwrap_or_else(|| "nobody".to_string());
                let line = format!(
                    "queued for lock {scope}: position {} of {} (held by {holder})",
                    position.position, position.queue_len
                );
                // The callback is synchronous; a full reply queue drops the line.
                let _ = replies.try_send(progress_reply(line));
            }
        },
    );
    // Dropping the wait at shutdown leaves the queue.
    let guard = tokio::select! {
        guard = waiting => guard?,
        () = engine.stopped() => {
            return Err(EngineError::ShuttingDown { id: pending.id.clone() });
        }
    };
    if engine.is_stopping() {
        release(engine, &guard).await;
        return Err(EngineError::ShuttingDown {
            id: pending.id.clone(),
        });
    }
    // The queue wait may have been long: a freeze that began meanwhile
    // stops a request that was approved with fewer approvals than a frozen
    // one needs.
    if let Some(freeze) = engine.coordinator().freeze_state().await?
        && pending.approvals_needed < engine.config().policy.approvals.freeze
    {
        release(engine, &guard).await;
        return Err(EngineError::FrozenBeforeRun {
            reason: freeze.reason,
            by: freeze.by,
        });
    }
    record(
        engine,
        pending,
        AuditKind::Started,
        format!("lock {scope} taken"),
        Some(guard.token),
    )
    .await;
    send(
        replies,
        progress_reply(format!(
            "lock {scope} taken (fencing token {})",
            guard.token
        )),
    )
    .await;

    let (lost_sender, lost) = watch::channel(false);
    let renewal = tokio::spawn(renew_lock(
        engine.clone(),
        guard.clone(),
        config.lock_ttl,
        lost_sender,
    ));

    let (progress_sender, mut progress_receiver) = mpsc::channel::<String>(PROGRESS_QUEUE);
    let forward_replies = replies.clone();
    let forward_channel = pending.channel.clone();
    let forward_id = pending.id.clone();
    let forwarder = tokio::spawn(async move {
        while let Some(line) = progress_receiver.recv().await {
            let reply = Reply::new(
                &forward_channel,
                Some(forward_id.clone()),
                ReplyBody::Progress(line),
            );
            send(&forward_replies, reply).await;
        }
    });

    let progress = Progress::new(progress_sender, lost.clone());
    let cluster = &engine.inner.cluster;
    let result = match &operation {
        Operation::Scale(payload)
            if service.kind == WorkloadKind::Postgresql || service.data_store.is_some() =>
        {
            let plan = StatefulPlan {
                namespace: payload.namespace.clone(),
                workload: payload.workload.clone(),
                from: payload.from,
                to: payload.to,
                generation: payload.generation,
                rollout_timeout: config.rollout_timeout,
            };
            match service.data_store {
                Some(DataStore::Cassandra) => cassandra::run(cluster, &plan, &progress).await,
                Some(DataStore::Kafka) => kafka::run(cluster, &plan, &progress).await,
                Some(DataStore::RedisCluster) => {
                    redis_cluster::run(cluster, &plan, &progress).await
                }
                None => postgres::run(cluster, &plan, &progress).await,
            }
        }
        Operation::Scale(payload) => {
            let plan = horizontal::ScalePlan {
                kind,
                namespace: payload.namespace.clone(),
                workload: payload.workload.clone(),
                from: payload.from,
                to: payload.to,
                generation: payload.generation,
                rollout_timeout: config.rollout_timeout,
            };
            horizontal::run(cluster, &plan, &progress).await
        }
        Operation::Hpa(payload) => {
            let plan = hpa_limits::HpaPlan {
                kind,
                namespace: payload.namespace.clone(),
                hpa: payload.hpa.clone(),
                workload: payload.workload.clone(),
                previous: payload.previous,
                bounds: payload.bounds,
                replicas: payload.replicas,
                rollout_timeout: config.rollout_timeout,
            };
            hpa_limits::run(cluster, &plan, &progress).await
        }
    };
    drop(progress);
    let _ = forwarder.await;
    renewal.abort();
    let lock_lost = *lost.borrow();

    // The result is recorded before the lock is released, so that no other
    // process finds a released lock with an unfinished audit record.
    match result {
        Ok(outcome) => {
            finish(
                engine,
                pending,
                operation.service(),
                outcome,
                &guard,
                lock_lost,
                replies,
            )
            .await
        }
        Err(error) => {
            let error = EngineError::Procedure {
                service: operation.service().to_string(),
                error: Box::new(error),
            };
            let text = crate::reply::describe(&error, &pending.id);
            record(
                engine,
                pending,
                AuditKind::Failed,
                text.clone(),
                Some(guard.token),
            )
            .await;
            send(
                replies,
                Reply::new(
                    &pending.channel,
                    Some(pending.id.clone()),
                    ReplyBody::Error(text),
                ),
            )
            .await;
        }
    }
    release(engine, &guard).await;
    Ok(())
}

/// Releases the lock; failures are logged because the lock then expires
/// with its TTL.
async fn release(engine: &Engine, guard: &LockGuard) {
    match engine.coordinator().release_lock(guard).await {
        Ok(true) => {}
        Ok(false) => {
            tracing::warn!(scope = %guard.scope, "lock had already expired or changed owner at release")
        }
        Err(error) => {
            tracing::warn!(%error, scope = %guard.scope, "lock release failed; it expires with its TTL")
        }
    }
}

async fn finish(
    engine: &Engine,
    pending: &PendingRequest,
    service: &str,
    outcome: Outcome,
    guard: &LockGuard,
    lock_lost: bool,
    replies: &Replies,
) {
    let mut details = outcome.details.clone();
    if lock_lost {
        details.push("warning: the operation lock could not be renewed during the procedure; another operation may have overlapped".to_string());
    }
    let kind = if outcome.succeeded {
        AuditKind::Succeeded
    } else {
        AuditKind::Failed
    };
    record(
        engine,
        pending,
        kind,
        outcome.summary.clone(),
        Some(guard.token),
    )
    .await;
    if outcome.succeeded {
        let cooldown = engine.config().policy.cooldown_per_service;
        if let Err(error) = engine.coordinator().start_cooldown(service, cooldown).await {
            tracing::warn!(%error, "cooldown not recorded");
        }
    }
    let body = ReplyBody::Result {
        succeeded: outcome.succeeded,
        summary: outcome.summary,
        details,
    };
    send(
        replies,
        Reply::new(&pending.channel, Some(pending.id.clone()), body),
    )
    .await;
}

/// Renews the lock at a third of its TTL until aborted. Sets `lost` when a
/// renewal fails, so the result can report that exclusivity was not guaranteed.
async fn renew_lock(engine: Engine, guard: LockGuard, ttl: Duration, lost: watch::Sender<bool>) {
    let interval = ttl / 3;
    // The lock stays valid until `ttl` after the last successful renewal,
    // so a short Redis outage only counts once that time has passed.
    let mut valid_until = tokio::time::Instant::now() + ttl;
    loop {
        tokio::time::sleep(interval).await;
        let attempt = tokio::time::Instant::now();
        match engine.coordinator().renew_lock(&guard, ttl).await {
            Ok(true) => valid_until = attempt + ttl,
            Ok(false) => {
                tracing::warn!(scope = %guard.scope, "lock lost: it expired or another owner took it");
                let _ = lost.send(true);
                return;
            }
            Err(error) if tokio::time::Instant::now() >= valid_until => {
                tracing::warn!(%error, scope = %guard.scope, "lock renewal failed until the lock expired");
                let _ = lost.send(true);
                return;
            }
            Err(error) => {
                tracing::warn!(%error, scope = %guard.scope, "lock renewal failed; retrying while the lock is still valid");
            }
        }
    }
}
