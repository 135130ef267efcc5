//! The object store: every API object as JSON, one global resourceVersion
//! counter, and a bounded event history that watches resume from.
//!
//! Objects are keyed by resource key (`group/version/plural`, see
//! [`crate::registry::ResourceType::key`]), namespace (empty for
//! cluster-scoped objects) and name. The store assigns `uid`,
//! `resourceVersion`, `creationTimestamp` and `generation`; the HTTP layer
//! and the controllers both write through it, so watches see every change.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex};

use serde_json::{Value, json};
use tokio::sync::broadcast;

/// Events kept for watches that resume from an older resourceVersion. A watch
/// asking for a version older than the oldest kept event gets 410 Gone.
pub const EVENT_HISTORY: usize = 20_000;

/// Capacity of the live event channel. A watcher that falls this far behind
/// is closed and must re-list, as with a real API server's watch cache.
pub const EVENT_CHANNEL: usize = 4_096;

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum EventType {
    Added,
    Modified,
    Deleted,
}

/// One change, as a watch sends it.
#[derive(Debug, Clone)]
pub struct Event {
    pub resource_version: u64,
    pub kind: EventType,
    pub resource: String,
    pub namespace: String,
    pub object: Value,
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum StoreError {
    #[error("{resource} \"{name}\" not found")]
    NotFound { resource: String, name: String },
    #[error("{resource} \"{name}\" already exists")]
    AlreadyExists { resource: String, name: String },
    #[error(
        "Operation cannot be fulfilled on {resource} \"{name}\": the object has been modified; please apply your changes to the latest version and try again"
    )]
    Conflict { resource: String, name: String },
    #[error("{0}")]
    Invalid(String),
}

type ObjectKey = (String, String, String);

/// The start of a watch: events missed since the requested version, then
/// the live receiver.
pub type WatchStart = (Vec<Arc<Event>>, broadcast::Receiver<Arc<Event>>);

#[derive(Default)]
struct State {
    resource_version: u64,
    uid_counter: u64,
    objects: BTreeMap<ObjectKey, Value>,
    history: VecDeque<Arc<Event>>,
}

/// Shared, cloneable handle to the store.
#[derive(Clone)]
pub struct Store {
    state: Arc<Mutex<State>>,
    events: broadcast::Sender<Arc<Event>>,
}

impl Default for Store {
    fn default() -> Self {
        Self::new()
    }
}

/// Tells whether a write changes the spec, which bumps `generation`;
/// status and metadata changes do not.
fn spec_changed(old: &Value, new: &Value) -> bool {
    let strip = |v: &Value| {
        let mut v = v.clone();
        if let Some(map) = v.as_object_mut() {
            map.remove("metadata");
            map.remove("status");
        }
        v
    };
    strip(old) != strip(new)
}

fn now_rfc3339() -> String {
    chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

fn short_resource(resource: &str) -> String {
    // `apps/v1/deployments` -> `deployments.apps`, `/v1/pods` -> `pods`,
    // which is how a real server names the resource in messages.
    let parts: Vec<&str> = resource.split('/').collect();
    match parts.as_slice() {
        ["", _, plural] => plural.to_string(),
        [group, _, plural] => format!("{plural}.{group}"),
        _ => resource.to_string(),
    }
}

impl Store {
    pub fn new() -> Self {
        let (events, _) = broadcast::channel(EVENT_CHANNEL);
        Self {
            state: Arc::new(Mutex::new(State {
                resource_version: 1000,
                ..State::default()
            })),
            events,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Returns the current global resourceVersion.
    pub fn resource_version(&self) -> u64 {
        self.lock().resource_version
    }

    pub fn get(&self, resource: &str, namespace: &str, name: &str) -> Option<Value> {
        let key = (
            resource.to_string(),
            namespace.to_string(),
            name.to_string(),
        );
        self.lock().objects.get(&key).cloned()
    }

    /// Lists objects of one resource, in one namespace or (with `None`) in
    /// all, sorted by namespace and name, with the resourceVersion of the
    /// snapshot.
    pub fn list(&self, resource: &str, namespace: Option<&str>) -> (Vec<Value>, u64) {
        let state = self.lock();
        let items = state
            .objects
            .iter()
            .filter(|((r, ns, _), _)| r == resource && namespace.is_none_or(|n| n == ns))
            .map(|(_, v)| v.clone())
            .collect();
        (items, state.resource_version)
    }

    /// Creates an object. `metadata.name` must be set; `generateName` is
    /// expanded with a counter suffix when the name is empty.
    pub fn create(
        &self,
        resource: &str,
        namespace: &str,
        mut object: Value,
    ) -> Result<Value, StoreError> {
        let mut state = self.lock();
        let meta = object
            .get_mut("metadata")
            .and_then(Value::as_object_mut)
            .ok_or_else(|| StoreError::Invalid("metadata: Required value".into()))?;
        let mut name = meta
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        if name.is_empty() {
            let prefix = meta
                .get("generateName")
                .and_then(Value::as_str)
                .unwrap_or("");
            if prefix.is_empty() {
                return Err(StoreError::Invalid(
                    "metadata.name: Required value: name or generateName is required".into(),
                ));
            }
            state.uid_counter += 1;
            name = format!("{prefix}{}", suffix(state.uid_counter));
            meta.insert("name".into(), json!(name));
        }
        let key = (resource.to_string(), namespace.to_string(), name.clone());
        if state.objects.contains_key(&key) {
            return Err(StoreError::AlreadyExists {
                resource: short_resource(resource),
                name,
            });
        }
        state.resource_version += 1;
        state.uid_counter += 1;
        let rv = state.resource_version;
        if !namespace.is_empty() {
            meta.insert("namespace".into(), json!(namespace));
        }
        meta.insert("uid".into(), json!(uid(state.uid_counter)));
        meta.insert("resourceVersion".into(), json!(rv.to_string()));
        meta.entry("creationTimestamp")
            .or_insert_with(|| json!(now_rfc3339()));
        if object.get("spec").is_some() {
            object["metadata"]["generation"] = json!(1);
        }
        state.objects.insert(key, object.clone());
        self.publish(
            &mut state,
            EventType::Added,
            resource,
            namespace,
            object.clone(),
        );
        Ok(object)
    }

    /// Replaces an object. When `object` carries a resourceVersion it must
    /// match the stored one (409 Conflict otherwise); an empty one means an
    /// unconditional update. Server-owned metadata is kept.
    pub fn update(
        &self,
        resource: &str,
        namespace: &str,
        object: Value,
    ) -> Result<Value, StoreError> {
        let mut state = self.lock();
        let name = object["metadata"]["name"]
            .as_str()
            .unwrap_or("")
            .to_string();
        let key = (resource.to_string(), namespace.to_string(), name.clone());
        let Some(old) = state.objects.get(&key).cloned() else {
            return Err(StoreError::NotFound {
                resource: short_resource(resource),
                name,
            });
        };
        let precondition = object["metadata"]["resourceVersion"].as_str().unwrap_or("");
        if !precondition.is_empty() && precondition != old["metadata"]["resourceVersion"] {
            return Err(StoreError::Conflict {
                resource: short_resource(resource),
                name,
            });
        }
        Ok(self.replace_stored(&mut state, key, &old, object))
    }

    /// Applies `change` to the stored object under the store lock, so
    /// controllers can read-modify-write without conflicts. A change that
    /// leaves the object equal writes nothing and returns it unchanged.
    pub fn modify<F>(
        &self,
        resource: &str,
        namespace: &str,
        name: &str,
        change: F,
    ) -> Result<Value, StoreError>
    where
        F: FnOnce(&mut Value),
    {
        let mut state = self.lock();
        let key = (
            resource.to_string(),
            namespace.to_string(),
            name.to_string(),
        );
        let Some(old) = state.objects.get(&key).cloned() else {
            return Err(StoreError::NotFound {
                resource: short_resource(resource),
                name: name.to_string(),
            });
        };
        let mut object = old.clone();
        change(&mut object);
        if object == old {
            return Ok(old);
        }
        Ok(self.replace_stored(&mut state, key, &old, object))
    }

    pub fn delete(&self, resource: &str, namespace: &str, name: &str) -> Result<Value, StoreError> {
        let mut state = self.lock();
        let key = (
            resource.to_string(),
            namespace.to_string(),
            name.to_string(),
        );
        let Some(mut object) = state.objects.remove(&key) else {
            return Err(StoreError::NotFound {
                resource: short_resource(resource),
                name: name.to_string(),
            });
        };
        state.resource_version += 1;
        object["metadata"]["resourceVersion"] = json!(state.resource_version.to_string());
        self.publish(
            &mut state,
            EventType::Deleted,
            resource,
            namespace,
            object.clone(),
        );
        Ok(object)
    }

    /// Stores `object` in place of `old` (see [`finish_update`]) and
    /// publishes the MODIFIED event. Returns the stored object.
    fn replace_stored(
        &self,
        state: &mut State,
        key: ObjectKey,
        old: &Value,
        object: Value,
    ) -> Value {
        let new = finish_update(state, old, object);
        let (resource, namespace, _) = &key;
        let (resource, namespace) = (resource.clone(), namespace.clone());
        state.objects.insert(key, new.clone());
        self.publish(
            state,
            EventType::Modified,
            &resource,
            &namespace,
            new.clone(),
        );
        new
    }

    /// Subscribes to changes after `since`. Returns the missed events from
    /// history followed by a live receiver, or `None` when `since` is older
    /// than the kept history (the caller returns 410 Gone).
    pub fn watch_from(&self, since: u64) -> Option<WatchStart> {
        let state = self.lock();
        let receiver = self.events.subscribe();
        let oldest = state.history.front().map(|e| e.resource_version);
        if let Some(oldest) = oldest
            && since + 1 < oldest
            && state.history.len() >= EVENT_HISTORY
        {
            return None;
        }
        let missed = state
            .history
            .iter()
            .filter(|e| e.resource_version > since)
            .cloned()
            .collect();
        Some((missed, receiver))
    }

    fn publish(
        &self,
        state: &mut State,
        kind: EventType,
        resource: &str,
        namespace: &str,
        object: Value,
    ) {
        let event = Arc::new(Event {
            resource_version: state.resource_version,
            kind,
            resource: resource.to_string(),
            namespace: namespace.to_string(),
            object,
        });
        if state.history.len() >= EVENT_HISTORY {
            state.history.pop_front();
        }
        state.history.push_back(event.clone());
        // A send without receivers fails, which only means no watch is open.
        let _ = self.events.send(event);
    }
}

/// Keeps server-owned metadata from `old`, bumps resourceVersion and, on a
/// spec change, generation.
fn finish_update(state: &mut State, old: &Value, mut object: Value) -> Value {
    state.resource_version += 1;
    for field in ["uid", "creationTimestamp", "namespace", "name"] {
        if let Some(v) = old["metadata"].get(field) {
            object["metadata"][field] = v.clone();
        }
    }
    let generation = old["metadata"]["generation"].as_i64();
    if let Some(generation) = generation {
        let next = if spec_changed(old, &object) {
            generation + 1
        } else {
            generation
        };
        object["metadata"]["generation"] = json!(next);
    }
    object["metadata"]["resourceVersion"] = json!(state.resource_version.to_string());
    object
}

fn uid(counter: u64) -> String {
    format!("5c0a1e00-0000-4000-8000-{counter:012x}")
}

/// Five lowercase alphanumerics, like the suffix a real server generates.
pub fn suffix(counter: u64) -> String {
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let mut n = counter.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 20;
    (0..5)
        .map(|_| {
            let c = ALPHABET[(n % ALPHABET.len() as u64) as usize] as char;
            n /= ALPHABET.len() as u64;
            c
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn deployment(name: &str, replicas: i64) -> Value {
        json!({"apiVersion": "apps/v1", "kind": "Deployment",
               "metadata": {"name": name}, "spec": {"replicas": replicas}})
    }

    #[test]
    fn update_with_stale_resource_version_conflicts() {
        let store = Store::new();
        let created = store
            .create("apps/v1/deployments", "ns", deployment("a", 1))
            .unwrap();
        let mut first = created.clone();
        first["spec"]["replicas"] = json!(2);
        store.update("apps/v1/deployments", "ns", first).unwrap();
        let mut stale = created;
        stale["spec"]["replicas"] = json!(3);
        let err = store
            .update("apps/v1/deployments", "ns", stale)
            .unwrap_err();
        assert!(matches!(err, StoreError::Conflict { .. }));
    }

    #[test]
    fn generation_counts_spec_changes_only() {
        let store = Store::new();
        store
            .create("apps/v1/deployments", "ns", deployment("a", 1))
            .unwrap();
        let after_status = store
            .modify("apps/v1/deployments", "ns", "a", |d| {
                d["status"] = json!({"replicas": 1})
            })
            .unwrap();
        assert_eq!(after_status["metadata"]["generation"], 1);
        let after_spec = store
            .modify("apps/v1/deployments", "ns", "a", |d| {
                d["spec"]["replicas"] = json!(4)
            })
            .unwrap();
        assert_eq!(after_spec["metadata"]["generation"], 2);
    }

    #[test]
    fn watch_from_replays_missed_events() {
        let store = Store::new();
        let start = store.resource_version();
        store
            .create("apps/v1/deployments", "ns", deployment("a", 1))
            .unwrap();
        store.delete("apps/v1/deployments", "ns", "a").unwrap();
        let (missed, _rx) = store.watch_from(start).unwrap();
        let kinds: Vec<EventType> = missed.iter().map(|e| e.kind).collect();
        assert_eq!(kinds, vec![EventType::Added, EventType::Deleted]);
    }
}
