//! The shared state of one simulated cluster: the object store, the fault
//! plan and the controller timings. The HTTP server, the controllers
//! and the exec programs each keep a clone of [`Cluster`].

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::store::Store;

/// Delays of the simulated controllers. Tests shorten them; the demo keeps
/// them long enough for progress updates to be visible.
#[derive(Debug, Clone)]
pub struct Timing {
    /// Interval between controller passes.
    pub tick: Duration,
    /// Time from a pod's creation to its scheduling decision.
    pub schedule_delay: Duration,
    /// Time from scheduling to the pod becoming Ready.
    pub ready_delay: Duration,
    /// Time a new Cassandra node shows UJ (joining) before UN.
    pub cassandra_join: Duration,
    /// Interval between HPA evaluations.
    pub hpa_interval: Duration,
}

impl Timing {
    /// Fast timings for tests: a scale-up settles within about a second.
    pub fn fast() -> Self {
        Self {
            tick: Duration::from_millis(50),
            schedule_delay: Duration::from_millis(100),
            ready_delay: Duration::from_millis(300),
            cassandra_join: Duration::from_secs(1),
            hpa_interval: Duration::from_millis(500),
        }
    }

    /// Timings for the interactive demo: a rollout takes a few seconds.
    pub fn demo() -> Self {
        Self {
            tick: Duration::from_millis(200),
            schedule_delay: Duration::from_millis(500),
            ready_delay: Duration::from_secs(3),
            cassandra_join: Duration::from_secs(8),
            hpa_interval: Duration::from_secs(15),
        }
    }
}

/// One injected API error: requests whose verb and path match get `status`
/// instead of being served, `remaining` more times (`None` for always).
#[derive(Debug, Clone)]
pub struct ErrorRule {
    /// Kubernetes verb (`get`, `list`, `watch`, `create`, `update`, `patch`,
    /// `delete`) or `*` for any.
    pub verb: String,
    /// Matches when the request path contains this string.
    pub path_contains: String,
    /// One of 403, 409, 429, 500, 503.
    pub status: u16,
    pub remaining: Option<u32>,
}

/// Faults to inject. Cheap to clone: all clones share one plan.
#[derive(Debug, Clone, Default)]
pub struct Faults {
    inner: Arc<Mutex<FaultPlan>>,
}

#[derive(Debug, Default, Clone)]
pub struct FaultPlan {
    pub errors: Vec<ErrorRule>,
    /// Added to every API request before it is served.
    pub latency: Duration,
    /// Watches are closed right after they start sending.
    pub drop_watches: bool,
    /// Pods with this `app` label never become Ready.
    pub never_ready_apps: HashSet<String>,
}

impl Faults {
    /// Runs `f` on the plan under its lock.
    pub fn with<R>(&self, f: impl FnOnce(&mut FaultPlan) -> R) -> R {
        let mut plan = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        f(&mut plan)
    }

    pub fn snapshot(&self) -> FaultPlan {
        self.with(|p| p.clone())
    }

    /// Returns the status to return for a request, consuming one use of the
    /// first matching rule.
    pub fn take_error(&self, verb: &str, path: &str) -> Option<u16> {
        self.with(|plan| {
            let index = plan.errors.iter().position(|r| {
                (r.verb == "*" || r.verb == verb) && path.contains(&r.path_contains)
            })?;
            let rule = &mut plan.errors[index];
            let status = rule.status;
            if let Some(n) = rule.remaining.as_mut() {
                *n -= 1;
                if *n == 0 {
                    plan.errors.remove(index);
                }
            }
            Some(status)
        })
    }
}

/// One simulated cluster. Cheap to clone.
#[derive(Clone)]
pub struct Cluster {
    pub store: Store,
    pub faults: Faults,
    pub timing: Timing,
}

impl Cluster {
    pub fn new(timing: Timing) -> Self {
        Self {
            store: Store::new(),
            faults: Faults::default(),
            timing,
        }
    }
}
