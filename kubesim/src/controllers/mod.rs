//! Simulated cluster controllers: they turn the workloads in the store into
//! pods and keep every status current, as kube-controller-manager, the
//! scheduler, the kubelets and the Zalando postgres operator would.
//!
//! One task wakes every `timing.tick` and runs a pass when the store
//! changed, a controller waits for a delay to pass, or a resync is due, so
//! an idle cluster costs no work. A pass runs the controllers in the order
//! data flows through them:
//! 1. [`nodes`]: pods on deleted or NotReady nodes are deleted.
//! 2. [`postgres`]: `postgresql` resources become StatefulSets and Services.
//! 3. [`deployments`] then [`replicasets`]: Deployments become ReplicaSets,
//!    ReplicaSets become pods.
//! 4. [`statefulsets`]: ordered pods and ControllerRevisions.
//! 5. [`scheduler`]: pending pods are bound to nodes, or marked
//!    Unschedulable with a FailedScheduling event.
//! 6. [`kubelet`]: bound pods start, then become Ready after `ready_delay`.
//! 7. [`endpoints`], [`disruption`]: Endpoints and PodDisruptionBudget status.
//! 8. [`hpa`]: every `timing.hpa_interval`, HorizontalPodAutoscalers.
//!
//! Each controller reads what it needs from the store at its step and
//! writes through `Store::modify`, so writes from API clients between
//! steps are never lost, only acted on one step later.

mod clocks;
mod deployment_status;
mod deployments;
mod disruption;
mod endpoints;
mod events;
mod hpa;
mod kubelet;
mod nodes;
pub(crate) mod object;
pub(crate) mod pods;
mod postgres;
pub mod quantity;
mod replicasets;
mod revisions;
mod scheduler;
mod statefulsets;

use std::time::Duration;

use tokio::task::JoinHandle;
use tokio::time::{Instant, MissedTickBehavior};
use tracing::Instrument;

use crate::cluster::{Cluster, FaultPlan};
use clocks::PodClocks;
use events::EventRecorder;

/// Upper bound on passes in [`settle`]. An OrderedReady StatefulSet needs a
/// pass per replica, so this bounds the replicas such a set can settle with.
const MAX_SETTLE_PASSES: usize = 200;

/// Retries reported as events (FailedScheduling, failing readiness probes)
/// bump the event at most once per this many ticks.
const EVENT_REPEAT_TICKS: u32 = 10;

/// A pass runs at least once per this many ticks even when nothing changed,
/// so that a write that failed is retried and progress deadlines expire.
const RESYNC_TICKS: u32 = 100;

/// Handle to the running controllers. Dropping it stops them.
pub struct Controllers {
    task: JoinHandle<()>,
}

impl Controllers {
    /// Stops the controllers. A pass that is running completes first,
    /// because a pass does not yield to the runtime.
    pub fn shutdown(self) {
        drop(self);
    }
}

impl Drop for Controllers {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Settles the objects already in the store (see [`settle`]), then spawns
/// the controller loop on the current tokio runtime. Settling blocks the
/// calling thread: about 5 s for `large:200` in a debug build on two cores.
///
/// # Panics
///
/// Panics when called outside a tokio runtime.
pub fn spawn(cluster: Cluster) -> Controllers {
    let mut state = State::new(cluster);
    state.settle();
    let span = tracing::info_span!("kubesim_controllers");
    let task = tokio::spawn(async move { state.run().await }.instrument(span));
    Controllers { task }
}

/// Runs controller passes with every delay taken as zero until the store
/// stops changing: pods of the loaded workloads are created, scheduled and
/// Ready when this returns, so a scenario starts in a steady state. Pods
/// that fit on no node stay Pending.
pub fn settle(cluster: &Cluster) {
    State::new(cluster.clone()).settle();
}

/// Time and fault plan of one pass.
pub(crate) struct Pass {
    pub now: Instant,
    /// Delays are zero: the initial settling of a scenario.
    pub settle: bool,
    pub faults: FaultPlan,
    /// Minimum interval between two bumps of a repeated event. Settling
    /// never bumps one, so that its passes reach a state without writes.
    pub event_repeat_interval: Duration,
}

impl Pass {
    /// Returns whether `delay` has passed since `since`, which is always
    /// true when settling.
    pub fn elapsed(&self, since: Instant, delay: Duration) -> bool {
        self.settle || self.now.saturating_duration_since(since) >= delay
    }
}

/// State the controllers keep between passes.
pub(crate) struct State {
    pub cluster: Cluster,
    pub events: EventRecorder,
    pub clocks: PodClocks,
    /// Set during a pass by a controller that waits for time to pass (a
    /// delay, a retry), so that the next tick runs a pass even when the
    /// store did not change.
    pub timers_pending: bool,
    /// Store resourceVersion at the start of the last pass.
    last_pass_version: Option<u64>,
    /// Time and store resourceVersion of the last HPA run.
    last_hpa: Option<(Instant, u64)>,
    /// Time of the last pass that ran because a resync was due.
    last_resync: Option<Instant>,
}

impl State {
    fn new(cluster: Cluster) -> Self {
        Self {
            events: EventRecorder::new(cluster.store.clone()),
            cluster,
            clocks: PodClocks::default(),
            timers_pending: false,
            last_pass_version: None,
            last_hpa: None,
            last_resync: None,
        }
    }

    fn settle(&mut self) {
        for _ in 0..MAX_SETTLE_PASSES {
            let before = self.cluster.store.resource_version();
            self.pass(true, true);
            if self.cluster.store.resource_version() == before {
                return;
            }
        }
        tracing::warn!(
            passes = MAX_SETTLE_PASSES,
            "cluster did not settle; controllers continue from here"
        );
    }

    async fn run(mut self) {
        tracing::info!(tick = ?self.cluster.timing.tick, "controllers started");
        let mut interval = tokio::time::interval(self.cluster.timing.tick);
        interval.set_missed_tick_behavior(MissedTickBehavior::Delay);
        loop {
            interval.tick().await;
            self.tick();
        }
    }

    /// Runs a pass unless nothing changed and nothing waits for time, so an
    /// idle cluster costs no work between resyncs.
    fn tick(&mut self) {
        let now = Instant::now();
        let timing = &self.cluster.timing;
        let version = self.cluster.store.resource_version();
        let resync = self
            .last_resync
            .is_none_or(|t| now.saturating_duration_since(t) >= timing.tick * RESYNC_TICKS);
        let changed = self.last_pass_version != Some(version);
        let hpa_due = self.last_hpa.is_none_or(|(t, seen)| {
            now.saturating_duration_since(t) >= timing.hpa_interval && (seen != version || resync)
        });
        if !(changed || self.timers_pending || resync || hpa_due) {
            return;
        }
        if resync {
            self.last_resync = Some(now);
        }
        // The version from before the pass: writes made by a later step
        // are unseen by the earlier ones, so they need another pass.
        self.last_pass_version = Some(version);
        self.pass(false, hpa_due);
    }

    fn pass(&mut self, settle: bool, run_hpa: bool) {
        let pass = Pass {
            now: Instant::now(),
            settle,
            faults: self.cluster.faults.snapshot(),
            event_repeat_interval: if settle {
                Duration::MAX
            } else {
                self.cluster.timing.tick * EVENT_REPEAT_TICKS
            },
        };
        self.timers_pending = false;
        nodes::run(self, &pass);
        postgres::run(self, &pass);
        deployments::run(self, &pass);
        replicasets::run(self, &pass);
        statefulsets::run(self, &pass);
        scheduler::run(self, &pass);
        kubelet::run(self, &pass);
        endpoints::run(self);
        disruption::run(self);
        if run_hpa {
            hpa::run(self, &pass);
            self.last_hpa = Some((pass.now, self.cluster.store.resource_version()));
        }
        self.events.expire(pass.now);
    }
}
