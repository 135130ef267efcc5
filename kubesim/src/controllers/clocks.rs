//! When each pod was first seen and when it was bound to a node, on the
//! tokio clock. Object timestamps have one-second precision and follow the
//! wall clock, which paused test time does not move. The simulated delays
//! (`schedule_delay`, `ready_delay`) are therefore measured here.

use std::collections::{HashMap, HashSet};

use tokio::time::Instant;

#[derive(Debug, Clone, Copy)]
struct PodClock {
    seen: Instant,
    /// Order of first sight, which breaks ties between pods seen at the
    /// same instant.
    sequence: u64,
    scheduled: Option<Instant>,
}

/// Per-pod clocks, keyed by pod UID.
#[derive(Debug, Default)]
pub(crate) struct PodClocks {
    pods: HashMap<String, PodClock>,
    next_sequence: u64,
}

impl PodClocks {
    fn entry(&mut self, uid: &str, now: Instant) -> &mut PodClock {
        let next = &mut self.next_sequence;
        self.pods.entry(uid.to_string()).or_insert_with(|| {
            *next += 1;
            PodClock {
                seen: now,
                sequence: *next,
                scheduled: None,
            }
        })
    }

    /// When the pod was first seen; `now` for a pod not seen before.
    pub fn seen(&mut self, uid: &str, now: Instant) -> Instant {
        self.entry(uid, now).seen
    }

    /// Creation order of the pod: larger is newer. Pods not seen before are
    /// recorded as seen now.
    pub fn creation_order(&mut self, uid: &str, now: Instant) -> u64 {
        self.entry(uid, now).sequence
    }

    pub fn mark_scheduled(&mut self, uid: &str, now: Instant) {
        self.entry(uid, now).scheduled = Some(now);
    }

    /// When the pod was bound. A pod found bound without a record (bound by
    /// a client, or before these controllers started) counts as bound now.
    pub fn scheduled(&mut self, uid: &str, now: Instant) -> Instant {
        let clock = self.entry(uid, now);
        *clock.scheduled.get_or_insert(now)
    }

    /// Forgets pods whose UID is not in `live`.
    pub fn retain(&mut self, live: &HashSet<&str>) {
        self.pods.retain(|uid, _| live.contains(uid.as_str()));
    }
}
