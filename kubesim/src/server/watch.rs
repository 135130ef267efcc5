//! Watches: a chunked response of newline-delimited JSON events
//! (`{"type":"ADDED","object":{...}}`), fed from the store's event history
//! and live broadcast.
//!
//! - No resourceVersion (or "0"), or `sendInitialEvents=true`: synthetic
//!   ADDED events for the current objects first; with `sendInitialEvents` a
//!   BOOKMARK annotated `k8s.io/initial-events-end: "true"` follows them.
//! - A resourceVersion: the events after it, or one ERROR event with a 410
//!   Expired Status when it is older than the kept history.
//! - Label and field selectors apply to every event. An object that starts
//!   or stops matching is sent as ADDED or DELETED, as a real server does.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use tokio::sync::{broadcast, mpsc};
use tokio::time::Instant;
use tokio_stream::wrappers::ReceiverStream;
use tracing::Instrument;

use super::AppState;
use super::error::ApiError;
use super::read::{self, Selectors};
use super::request::{Params, Representation, Target};
use super::table;
use crate::registry::ResourceType;
use crate::store::{Event, EventType};

/// Watch length when the client sets no `timeoutSeconds`. A real API server
/// picks 30 to 60 minutes (its `--min-request-timeout` is 1800 s).
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(1800);

/// Interval between BOOKMARK events when `allowWatchBookmarks=true`. A real
/// server sends one about every minute; kubesim sends them more often so
/// tests see them without waiting.
const BOOKMARK_INTERVAL: Duration = Duration::from_secs(2);

/// Events buffered between the watch task and the HTTP response.
const BUFFER: usize = 64;

/// A client that reads nothing for this long loses its watch.
const SEND_TIMEOUT: Duration = Duration::from_secs(30);

/// The selection and form of the events one watch sends.
struct Scope {
    resource: &'static ResourceType,
    namespace: Option<String>,
    name: Option<String>,
    selectors: Selectors,
    representation: Representation,
    bookmarks: bool,
}

impl Scope {
    fn new(
        target: &Target,
        params: &Params,
        representation: Representation,
    ) -> Result<Self, ApiError> {
        Ok(Self {
            resource: target.resource,
            namespace: target.namespace.clone(),
            name: target.name.clone(),
            selectors: Selectors::from_params(params, target.resource)?,
            representation,
            bookmarks: params.flag("allowWatchBookmarks"),
        })
    }

    fn covers(&self, event: &Event) -> bool {
        event.resource == self.resource.key()
            && self
                .namespace
                .as_deref()
                .is_none_or(|ns| ns == event.namespace)
            && self
                .name
                .as_deref()
                .is_none_or(|name| event.object["metadata"]["name"] == name)
    }

    fn matches(&self, object: &Value) -> bool {
        self.selectors.matches(object)
            && self
                .name
                .as_deref()
                .is_none_or(|name| object["metadata"]["name"] == name)
    }

    /// Renders an object in the representation the client requested.
    fn render(&self, object: &Value) -> Value {
        match self.representation {
            Representation::Full => object.clone(),
            Representation::Metadata => table::partial_metadata(object),
            Representation::Table(include) => {
                let metadata = json!({"resourceVersion": object["metadata"]["resourceVersion"]});
                table::build(
                    self.resource,
                    std::slice::from_ref(object),
                    metadata,
                    include,
                )
            }
        }
    }

    fn bookmark(&self, resource_version: u64, initial_events_end: bool) -> Value {
        let mut metadata = json!({"resourceVersion": resource_version.to_string()});
        if initial_events_end {
            metadata["annotations"] = json!({"k8s.io/initial-events-end": "true"});
        }
        json!({
            "type": "BOOKMARK",
            "object": {
                "kind": self.resource.kind,
                "apiVersion": self.resource.api_version(),
                "metadata": metadata,
            },
        })
    }
}

/// Query options of a watch request.
struct Options {
    /// `sendInitialEvents=true`: initial ADDED events, then an
    /// initial-events-end BOOKMARK.
    send_initial: bool,
    /// resourceVersion to resume after; `None` for absent or "0".
    requested: Option<u64>,
    timeout: Duration,
}

impl Options {
    fn parse(params: &Params) -> Result<Self, ApiError> {
        let send_initial = params.flag("sendInitialEvents");
        if send_initial && params.get("resourceVersionMatch") != Some("NotOlderThan") {
            return Err(ApiError::Invalid {
                message: "ListOptions.meta.k8s.io \"\" is invalid: resourceVersionMatch: Forbidden: sendInitialEvents requires setting resourceVersionMatch to NotOlderThan".into(),
                subject: Default::default(),
                causes: Vec::new(),
            });
        }
        let requested = match params.non_empty("resourceVersion") {
            None | Some("0") => None,
            Some(text) => Some(text.parse::<u64>().map_err(|_| {
                ApiError::BadRequest(format!(
                    "invalid resourceVersion {text:?}: expected a decimal number"
                ))
            })?),
        };
        let timeout = params
            .number("timeoutSeconds")?
            .map_or(DEFAULT_TIMEOUT, Duration::from_secs);
        Ok(Self {
            send_initial,
            requested,
            timeout,
        })
    }

    /// Tells whether the watch starts with the current objects.
    fn list_first(&self) -> bool {
        self.requested.is_none() || self.send_initial
    }
}

/// Starts a watch and returns the streaming response.
pub fn start(
    app: &AppState,
    target: &Target,
    params: &Params,
    representation: Representation,
) -> Result<Response, ApiError> {
    let resource = target.resource;
    let options = Options::parse(params)?;
    let scope = Scope::new(target, params, representation)?;

    // The snapshot and the history replay after its version leave no gap.
    let (current, snapshot_version) =
        read::select(app, resource, scope.namespace.as_deref(), &scope.selectors);
    let current: Vec<Value> = current.into_iter().filter(|o| scope.matches(o)).collect();
    let since = match options.requested {
        Some(version) if !options.send_initial => version,
        _ => snapshot_version,
    };
    let feed = app.cluster.store.watch_from(since);

    let (sender, receiver) = mpsc::channel::<Result<Bytes, std::io::Error>>(BUFFER);
    let watch = Watch {
        scope,
        sender,
        known: current.iter().map(object_key).collect(),
        last_version: since,
        drop_after_start: app.cluster.faults.with(|plan| plan.drop_watches),
        shutdown: app.shutdown.clone(),
    };
    let initial = if options.list_first() {
        current
    } else {
        Vec::new()
    };
    let span = tracing::debug_span!(
        "watch",
        resource = resource.plural,
        namespace = target.namespace_or_empty()
    );
    let task = async move {
        match feed {
            Some((missed, live)) => watch.run(initial, missed, live, &options).await,
            None => {
                let error = ApiError::Expired {
                    requested: since,
                    current: snapshot_version,
                };
                watch
                    .send(json!({"type": "ERROR", "object": error.to_status()}))
                    .await;
            }
        }
    };
    tokio::spawn(task.instrument(span));

    let mut response = Body::from_stream(ReceiverStream::new(receiver)).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/json"),
    );
    Ok(response)
}

fn object_key(object: &Value) -> (String, String) {
    let metadata = &object["metadata"];
    let namespace = metadata["namespace"].as_str().unwrap_or_default();
    let name = metadata["name"].as_str().unwrap_or_default();
    (namespace.to_string(), name.to_string())
}

/// The state of one running watch.
struct Watch {
    scope: Scope,
    sender: mpsc::Sender<Result<Bytes, std::io::Error>>,
    /// Objects the client received ADDED or MODIFIED for, and no DELETED since.
    known: HashSet<(String, String)>,
    /// resourceVersion of the last event sent or skipped.
    last_version: u64,
    /// The fault plan closes watches after their initial events.
    drop_after_start: bool,
    shutdown: tokio::sync::watch::Receiver<bool>,
}

impl Watch {
    /// Sends one event line; false when the client is gone or not reading.
    async fn send(&self, event: Value) -> bool {
        let mut line = serde_json::to_vec(&event).expect("JSON values serialise");
        line.push(b'\n');
        self.sender
            .send_timeout(Ok(Bytes::from(line)), SEND_TIMEOUT)
            .await
            .is_ok()
    }

    /// Sends the initial events and the missed ones, then live events until
    /// the timeout, a shutdown, or the client going away.
    async fn run(
        mut self,
        initial: Vec<Value>,
        missed: Vec<Arc<Event>>,
        mut live: broadcast::Receiver<Arc<Event>>,
        options: &Options,
    ) {
        for object in &initial {
            let event = json!({"type": "ADDED", "object": self.scope.render(object)});
            if !self.send(event).await {
                return;
            }
        }
        if options.send_initial
            && !self
                .send(self.scope.bookmark(self.last_version, true))
                .await
        {
            return;
        }
        if self.drop_after_start {
            tracing::debug!("closing watch: the fault plan drops watches");
            return;
        }
        for event in missed {
            if !self.forward(&event).await {
                return;
            }
        }
        let deadline = Instant::now() + options.timeout;
        let mut bookmarks =
            tokio::time::interval_at(Instant::now() + BOOKMARK_INTERVAL, BOOKMARK_INTERVAL);
        let mut shutdown = self.shutdown.clone();
        loop {
            tokio::select! {
                _ = tokio::time::sleep_until(deadline) => break,
                _ = shutdown.changed() => break,
                _ = bookmarks.tick(), if self.scope.bookmarks => {
                    if !self.send(self.scope.bookmark(self.last_version, false)).await {
                        break;
                    }
                }
                received = live.recv() => match received {
                    Ok(event) => {
                        if !self.forward(&event).await {
                            break;
                        }
                    }
                    Err(broadcast::error::RecvError::Lagged(skipped)) => {
                        tracing::warn!(skipped, "closing watch: the client fell behind the event stream");
                        break;
                    }
                    Err(broadcast::error::RecvError::Closed) => break,
                },
            }
        }
    }

    /// Sends a store event if it concerns this watch, translating it by
    /// selector membership. False when the client is gone.
    async fn forward(&mut self, event: &Event) -> bool {
        if event.resource_version <= self.last_version {
            return true;
        }
        self.last_version = event.resource_version;
        if !self.scope.covers(event) {
            return true;
        }
        let key = object_key(&event.object);
        let matches = self.scope.matches(&event.object);
        let was_known = self.known.contains(&key);
        let kind = match (event.kind, matches, was_known) {
            (EventType::Deleted, _, true) | (EventType::Deleted, true, false) => "DELETED",
            (EventType::Deleted, false, false) => return true,
            (_, true, true) => "MODIFIED",
            (_, true, false) => "ADDED",
            (_, false, true) => "DELETED",
            (_, false, false) => return true,
        };
        if kind == "DELETED" {
            self.known.remove(&key);
        } else {
            self.known.insert(key);
        }
        let object = self.scope.render(&event.object);
        self.send(json!({"type": kind, "object": object})).await
    }
}
