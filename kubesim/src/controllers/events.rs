//! core/v1 Events written by the simulated controllers, with the
//! aggregation a real event recorder does: a repeat of the same event on the
//! same object bumps `count` and `lastTimestamp` instead of adding an object.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde_json::{Value, json};
use tokio::time::Instant;

use super::object::{self, EVENTS};
use crate::store::{Store, StoreError};

/// Age after which events are deleted; the API server's default `--event-ttl`
/// is one hour.
const EVENT_TTL: chrono::TimeDelta = chrono::TimeDelta::hours(1);

/// Interval between sweeps for expired events.
const EXPIRY_SWEEP_INTERVAL: Duration = Duration::from_secs(60);

/// Distinguishes events created within the same nanosecond.
static SEQUENCE: AtomicU64 = AtomicU64::new(0);

/// The component reporting an event, as in `source` and
/// `reportingComponent`.
#[derive(Debug, Clone)]
pub(crate) struct Source {
    pub component: &'static str,
    /// Node name, set for kubelet events.
    pub host: Option<String>,
}

impl Source {
    pub fn new(component: &'static str) -> Self {
        Self {
            component,
            host: None,
        }
    }

    pub fn kubelet(node: &str) -> Self {
        Self {
            component: "kubelet",
            host: Some(node.to_string()),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum EventType {
    Normal,
    Warning,
}

impl EventType {
    fn as_str(self) -> &'static str {
        match self {
            EventType::Normal => "Normal",
            EventType::Warning => "Warning",
        }
    }
}

/// One event to record about `involved`.
pub(crate) struct Occurrence<'a> {
    pub involved: &'a Value,
    pub event_type: EventType,
    pub reason: &'static str,
    pub message: String,
    pub source: Source,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct AggregationKey {
    namespace: String,
    involved_uid: String,
    reason: &'static str,
    message: String,
    component: &'static str,
}

struct Recorded {
    name: String,
    last: Instant,
}

/// Writes events and remembers the recent ones for aggregation.
pub(crate) struct EventRecorder {
    store: Store,
    recent: HashMap<AggregationKey, Recorded>,
    last_sweep: Option<Instant>,
}

impl EventRecorder {
    pub fn new(store: Store) -> Self {
        Self {
            store,
            recent: HashMap::new(),
            last_sweep: None,
        }
    }

    /// Records an event, aggregating it into an identical earlier one.
    pub fn record(&mut self, now: Instant, occurrence: Occurrence<'_>) {
        self.record_at_most_every(now, Duration::ZERO, occurrence);
    }

    /// Records an event unless an identical one was recorded less than
    /// `interval` ago. Controllers that retry every tick (the scheduler,
    /// failing readiness probes) use this so the count grows with real
    /// retries, not with the tick rate.
    pub fn record_at_most_every(
        &mut self,
        now: Instant,
        interval: Duration,
        occurrence: Occurrence<'_>,
    ) {
        let key = AggregationKey {
            namespace: event_namespace(occurrence.involved).to_string(),
            involved_uid: object::uid(occurrence.involved).to_string(),
            reason: occurrence.reason,
            message: occurrence.message.clone(),
            component: occurrence.source.component,
        };
        if let Some(recorded) = self.recent.get_mut(&key) {
            if now.duration_since(recorded.last) < interval {
                return;
            }
            let bumped = self
                .store
                .modify(EVENTS, &key.namespace, &recorded.name, |event| {
                    event["count"] = json!(event["count"].as_i64().unwrap_or(1) + 1);
                    event["lastTimestamp"] = json!(object::now_timestamp());
                });
            match bumped {
                Ok(_) => {
                    recorded.last = now;
                    return;
                }
                // Deleted by a client or by expiry: write a new one.
                Err(StoreError::NotFound { .. }) => {}
                Err(error) => {
                    tracing::warn!(event = %recorded.name, %error, "failed to update event count");
                    return;
                }
            }
        }
        let event = new_event(&occurrence);
        let name = object::name(&event).to_string();
        match self.store.create(EVENTS, &key.namespace, event) {
            Ok(_) => {
                self.recent.insert(key, Recorded { name, last: now });
            }
            Err(error) => tracing::warn!(event = %name, %error, "failed to create event"),
        }
    }

    /// Deletes events older than the event TTL, at most once per sweep
    /// interval, and drops their aggregation entries.
    pub fn expire(&mut self, now: Instant) {
        if self
            .last_sweep
            .is_some_and(|t| now.duration_since(t) < EXPIRY_SWEEP_INTERVAL)
        {
            return;
        }
        self.last_sweep = Some(now);
        let cutoff = chrono::Utc::now() - EVENT_TTL;
        let (events, _) = self.store.list(EVENTS, None);
        for event in events {
            let last = event["lastTimestamp"]
                .as_str()
                .and_then(object::parse_timestamp);
            if last.is_some_and(|t| t < cutoff) {
                // Already gone is fine: a client deleted it first.
                let _ = self
                    .store
                    .delete(EVENTS, object::namespace(&event), object::name(&event));
            }
        }
        self.recent
            .retain(|_, r| now.duration_since(r.last) < EVENT_TTL.to_std().unwrap_or_default());
    }
}

/// Namespace an event about `involved` is stored in: the object's own, or
/// `default` for cluster-scoped objects such as nodes.
fn event_namespace(involved: &Value) -> &str {
    match object::namespace(involved) {
        "" => "default",
        namespace => namespace,
    }
}

fn new_event(occurrence: &Occurrence<'_>) -> Value {
    let involved = occurrence.involved;
    let now = object::now_timestamp();
    let nanos = chrono::Utc::now().timestamp_nanos_opt().unwrap_or_default() as u64;
    let sequence = SEQUENCE.fetch_add(1, Ordering::Relaxed);
    // Real event names are `<object>.<hex timestamp>`.
    let name = format!(
        "{}.{:016x}",
        object::name(involved),
        nanos.wrapping_add(sequence)
    );
    let mut source = json!({"component": occurrence.source.component});
    if let Some(host) = &occurrence.source.host {
        source["host"] = json!(host);
    }
    json!({
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"name": name, "namespace": event_namespace(involved)},
        "involvedObject": {
            "apiVersion": involved["apiVersion"],
            "kind": involved["kind"],
            "name": object::name(involved),
            "namespace": object::namespace(involved),
            "uid": object::uid(involved),
            "resourceVersion": involved["metadata"]["resourceVersion"],
        },
        "reason": occurrence.reason,
        "message": occurrence.message,
        "source": source,
        "firstTimestamp": now,
        "lastTimestamp": now,
        "count": 1,
        "type": occurrence.event_type.as_str(),
        "eventTime": null,
        "reportingComponent": occurrence.source.component,
        "reportingInstance": occurrence.source.host.clone().unwrap_or_default(),
    })
}
