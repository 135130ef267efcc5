//! A fake Slack on 127.0.0.1 for the Slack adapter's tests.
//!
//! [`FakeSlack::start`] serves, on one free port:
//! - the Web API at `/api/<method>` (module `web_api`), which checks tokens,
//!   enforces message limits (module `blocks`), stores messages and records
//!   every call;
//! - `response_url` endpoints at `/response/<id>` and file upload URLs at
//!   `/upload/<file id>` (this file);
//! - Socket Mode at `/socket` (module `socket_mode`), where each WebSocket the
//!   bot opens becomes a [`SocketConnection`] that the test drives.
//!
//! Module `requests` builds what Slack sends to a bot in HTTP mode: signed
//! slash command and `block_actions` bodies.
//!
//! Every record is capped (oldest dropped first) and every wait takes a
//! timeout and panics with what it saw when the timeout passes.

mod blocks;
mod requests;
mod socket_mode;
mod web_api;

use std::collections::{HashMap, HashSet, VecDeque};
use std::net::SocketAddr;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, post};
use serde_json::Value;
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

pub use blocks::*;
pub use requests::*;
pub use socket_mode::SocketConnection;

/// Bot token (`xoxb-`) that the Web API accepts.
pub const BOT_TOKEN: &str = "xoxb-1000000001-2000000002-fakeslackbottoken";
/// App-level token (`xapp-`) that `apps.connections.open` accepts.
pub const APP_TOKEN: &str = "xapp-1-A00000001-3000000003-fakeslackapptoken";
/// Workspace id returned by `auth.test` and put into payloads.
pub const TEAM_ID: &str = "T00000001";
/// Workspace domain put into payloads.
pub const TEAM_DOMAIN: &str = "fake-workspace";
/// App id of the bot, in payloads and the Socket Mode `hello`.
pub const APP_ID: &str = "A00000001";
/// User id of the bot user, returned by `auth.test`.
pub const BOT_USER_ID: &str = "U0000000B0T";
/// Bot id of the bot, returned by `auth.test` and set on posted messages.
pub const BOT_ID: &str = "B00000001";

/// Maximum recorded Web API calls; older calls are dropped first.
pub const MAX_RECORDED_CALLS: usize = 10_000;
/// Maximum stored messages, ephemeral messages, response_url posts and
/// uploads, each; older entries are dropped first.
pub const MAX_STORED_ITEMS: usize = 10_000;
/// Maximum request body, in bytes, for uploads and API calls.
pub const MAX_BODY_BYTES: usize = 32 * 1024 * 1024;
/// Maximum uses of one response_url. Slack allows 5 uses within 30 minutes.
pub const MAX_RESPONSE_URL_USES: usize = 5;
/// Interval at which waits poll the records.
const POLL_INTERVAL: Duration = Duration::from_millis(10);

/// One Web API call and the fake's response to it.
#[derive(Debug, Clone)]
pub struct Call {
    /// Method name, such as `chat.postMessage`.
    pub method: String,
    /// HTTP method of the request (`GET` or `POST`).
    pub http_method: String,
    /// Query and body parameters merged into one JSON object, without
    /// `token`. Form fields are strings, except `blocks`, `files` and
    /// `attachments`, which are parsed when they hold JSON.
    pub params: Value,
    /// Token from `Authorization: Bearer` or from the `token` parameter.
    pub token: Option<String>,
    /// HTTP status of the response: 200, or 429 for a rate-limited call.
    pub status: u16,
    /// JSON body of the response.
    pub response: Value,
    pub received_at: Instant,
}

impl Call {
    /// Returns whether the response has `"ok": true`.
    pub fn ok(&self) -> bool {
        self.response["ok"] == Value::Bool(true)
    }

    /// Returns the `error` code of a failed call.
    pub fn error(&self) -> Option<&str> {
        self.response["error"].as_str()
    }
}

/// A message that the bot posted with `chat.postMessage` or by sharing a file.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredMessage {
    pub channel: String,
    pub ts: String,
    /// Parent message of a thread reply.
    pub thread_ts: Option<String>,
    pub text: Option<String>,
    pub blocks: Option<Value>,
    /// Files shared with this message by `files.completeUploadExternal`.
    pub file_ids: Vec<String>,
    /// Number of `chat.update` calls applied to this message.
    pub edits: u32,
}

/// A message that the bot posted with `chat.postEphemeral`.
#[derive(Debug, Clone, PartialEq)]
pub struct EphemeralMessage {
    pub channel: String,
    /// The only user who sees the message.
    pub user: String,
    pub message_ts: String,
    pub thread_ts: Option<String>,
    pub text: Option<String>,
    pub blocks: Option<Value>,
}

/// One POST to a response_url.
#[derive(Debug, Clone, PartialEq)]
pub struct ResponsePost {
    /// The id in `/response/<id>`.
    pub id: String,
    /// The JSON body (`response_type`, `text`, `blocks`, `replace_original`,
    /// `delete_original`), or a JSON string when the body was not JSON.
    pub body: Value,
    /// HTTP status of the fake's response: 200, or 404 past
    /// [`MAX_RESPONSE_URL_USES`].
    pub status: u16,
}

/// A file created by `files.getUploadURLExternal`.
#[derive(Debug, Clone, PartialEq)]
pub struct Upload {
    pub file_id: String,
    pub filename: String,
    /// Length in bytes that the bot announced.
    pub declared_length: u64,
    /// Bytes posted to the upload URL: the raw body, or the file part of a
    /// multipart body. `None` until the bot posts them.
    pub content: Option<Vec<u8>>,
    /// Content type of the upload request.
    pub content_type: Option<String>,
    /// Set by `files.completeUploadExternal`.
    pub completed: Option<CompletedUpload>,
}

/// Where `files.completeUploadExternal` shared a file.
#[derive(Debug, Clone, PartialEq)]
pub struct CompletedUpload {
    pub title: Option<String>,
    pub channel: Option<String>,
    pub thread_ts: Option<String>,
    pub initial_comment: Option<String>,
}

/// Mutable state behind one lock, never held across an `.await`.
#[derive(Default)]
struct FakeState {
    calls: VecDeque<Call>,
    messages: VecDeque<StoredMessage>,
    ephemeral: VecDeque<EphemeralMessage>,
    responses: VecDeque<ResponsePost>,
    uploads: VecDeque<Upload>,
    /// Channels that exist; `None` accepts every id starting with C, G or D.
    known_channels: Option<HashSet<String>>,
    usergroups: HashMap<String, Vec<String>>,
    /// Per method, the `Retry-After` seconds of the next rate-limited responses.
    rate_limits: HashMap<String, VecDeque<u64>>,
    last_ts_sequence: u64,
    last_file_sequence: u64,
    last_ticket: u64,
    /// Socket Mode tickets issued by `apps.connections.open` and not used yet.
    open_tickets: HashSet<u64>,
    socket_connections_opened: u64,
    socket_connections_open: u32,
}

impl FakeState {
    /// Returns a new message timestamp. Timestamps start at
    /// `1700000000.000100` and grow by 100 microseconds, so they sort as
    /// strings too.
    fn next_ts(&mut self) -> String {
        self.last_ts_sequence += 1;
        let micros = 1_700_000_000_000_000 + self.last_ts_sequence * 100;
        format!("{}.{:06}", micros / 1_000_000, micros % 1_000_000)
    }

    fn next_file_id(&mut self) -> String {
        self.last_file_sequence += 1;
        format!("F{:010}", self.last_file_sequence)
    }

    fn channel_exists(&self, channel: &str) -> bool {
        match &self.known_channels {
            Some(known) => known.contains(channel),
            None => channel.starts_with(['C', 'G', 'D']),
        }
    }

    fn record_call(&mut self, call: Call) {
        push_bounded(&mut self.calls, call, MAX_RECORDED_CALLS);
    }
}

fn push_bounded<T>(queue: &mut VecDeque<T>, item: T, capacity: usize) {
    if queue.len() == capacity {
        queue.pop_front();
    }
    queue.push_back(item);
}

/// State shared by the handlers and the [`FakeSlack`] handle.
struct Shared {
    state: Mutex<FakeState>,
    /// `http://127.0.0.1:PORT`, without a trailing slash.
    base_url: String,
    /// Sequence for Socket Mode envelope ids.
    last_envelope: AtomicU64,
    /// Connections waiting for [`FakeSlack::next_socket_connection`].
    connections: mpsc::Sender<SocketConnection>,
    /// Turns `true` when the fake is dropped; open WebSockets then close.
    shutdown: watch::Receiver<bool>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, FakeState> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// The running fake; the server stops when it is dropped.
pub struct FakeSlack {
    shared: Arc<Shared>,
    address: SocketAddr,
    connections: tokio::sync::Mutex<mpsc::Receiver<SocketConnection>>,
    shutdown: watch::Sender<bool>,
    server: tokio::task::JoinHandle<()>,
}

impl FakeSlack {
    /// Binds 127.0.0.1 on a free port and starts serving.
    pub async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind 127.0.0.1:0 for the fake Slack");
        let address = listener.local_addr().expect("local address of listener");
        let (connection_sender, connection_receiver) =
            mpsc::channel(socket_mode::MAX_PENDING_CONNECTIONS);
        let (shutdown, shutdown_receiver) = watch::channel(false);
        let shared = Arc::new(Shared {
            state: Mutex::new(FakeState::default()),
            base_url: format!("http://{address}"),
            last_envelope: AtomicU64::new(0),
            connections: connection_sender,
            shutdown: shutdown_receiver,
        });
        let router = Router::new()
            .route("/api/{method}", any(web_api::handle_method))
            .route("/response/{id}", post(handle_response_url))
            .route("/upload/{file_id}", post(handle_upload))
            .route("/socket", any(socket_mode::handle_upgrade))
            .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
            .with_state(shared.clone());
        let server = tokio::spawn(async move {
            if let Err(error) = axum::serve(listener, router).await {
                tracing::warn!(%error, "fake Slack server stopped");
            }
        });
        Self {
            shared,
            address,
            connections: tokio::sync::Mutex::new(connection_receiver),
            shutdown,
            server,
        }
    }

    /// Base URL of the Web API, `http://127.0.0.1:PORT/api`, without a
    /// trailing slash. slack-morphism 2.31 builds each method URL as
    /// `format!("{}/{}", api_url, method)`, so pass this value unchanged to
    /// `SlackClientHyperConnector::with_slack_api_url`. A trailing slash
    /// would produce `/api//chat.postMessage`, which the fake does not serve.
    pub fn api_url(&self) -> String {
        format!("{}/api", self.shared.base_url)
    }

    /// `http://127.0.0.1:PORT`, without a trailing slash.
    pub fn base_url(&self) -> &str {
        &self.shared.base_url
    }

    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// URL of the response_url endpoint with `id`, to put into payloads.
    pub fn response_url(&self, id: &str) -> String {
        format!("{}/response/{id}", self.shared.base_url)
    }

    /// Restricts the channels that exist to `channels`; any other channel
    /// gets `channel_not_found`. By default every id starting with C, G or D
    /// exists.
    pub fn set_known_channels(&self, channels: &[&str]) {
        let known = channels.iter().map(|c| c.to_string()).collect();
        self.shared.lock().known_channels = Some(known);
    }

    /// Sets the members of a user group (subteam) for `usergroups.users.list`.
    pub fn set_usergroup(&self, usergroup: &str, users: &[&str]) {
        let users = users.iter().map(|u| u.to_string()).collect();
        self.shared
            .lock()
            .usergroups
            .insert(usergroup.to_string(), users);
    }

    /// Responds to the next call to `method` with HTTP 429, `Retry-After:
    /// retry_after_secs` and `{"ok":false,"error":"ratelimited"}`. Calls queue
    /// up: two calls rate-limit the next two requests.
    pub fn rate_limit_next(&self, method: &str, retry_after_secs: u64) {
        self.shared
            .lock()
            .rate_limits
            .entry(method.to_string())
            .or_default()
            .push_back(retry_after_secs);
    }

    /// Returns every recorded Web API call, oldest first.
    pub fn calls(&self) -> Vec<Call> {
        self.shared.lock().calls.iter().cloned().collect()
    }

    /// Returns the recorded calls to `method`, oldest first.
    pub fn calls_to(&self, method: &str) -> Vec<Call> {
        let state = self.shared.lock();
        state
            .calls
            .iter()
            .filter(|call| call.method == method)
            .cloned()
            .collect()
    }

    /// Waits for a call to `method` that matches `predicate` and returns the
    /// first one, including calls recorded before this wait started. Panics
    /// with every call seen when `timeout` passes first.
    pub async fn wait_for_call(
        &self,
        method: &str,
        predicate: impl Fn(&Call) -> bool,
        timeout: Duration,
    ) -> Call {
        let deadline = Instant::now() + timeout;
        loop {
            let found = self
                .calls_to(method)
                .into_iter()
                .find(|call| predicate(call));
            if let Some(call) = found {
                return call;
            }
            if Instant::now() >= deadline {
                let seen: Vec<String> = self
                    .calls()
                    .iter()
                    .map(|call| format!("{} {} -> {}", call.method, call.params, call.response))
                    .collect();
                panic!(
                    "no matching call to {method} within {timeout:?}; calls seen:\n{}",
                    seen.join("\n")
                );
            }
            tokio::time::sleep(POLL_INTERVAL).await;
        }
    }

    /// Returns the messages in `channel`, top-level and thread replies, in
    /// `ts` order.
    pub fn messages(&self, channel: &str) -> Vec<StoredMessage> {
        let state = self.shared.lock();
        let mut messages: Vec<StoredMessage> = state
            .messages
            .iter()
            .filter(|message| message.channel == channel)
            .cloned()
            .collect();
        messages.sort_by(|a, b| a.ts.cmp(&b.ts));
        messages
    }

    /// Returns the thread of `ts` in `channel`: the parent first (when stored), then
    /// the replies in `ts` order, as `conversations.replies` lists them.
    pub fn thread(&self, channel: &str, ts: &str) -> Vec<StoredMessage> {
        self.messages(channel)
            .into_iter()
            .filter(|message| message.ts == ts || message.thread_ts.as_deref() == Some(ts))
            .collect()
    }

    /// Returns the ephemeral messages, oldest first.
    pub fn ephemeral(&self) -> Vec<EphemeralMessage> {
        self.shared.lock().ephemeral.iter().cloned().collect()
    }

    /// Returns the POSTs to response_url endpoints, oldest first.
    pub fn responses(&self) -> Vec<ResponsePost> {
        self.shared.lock().responses.iter().cloned().collect()
    }

    /// Returns the files created by `files.getUploadURLExternal`, oldest first.
    pub fn uploads(&self) -> Vec<Upload> {
        self.shared.lock().uploads.iter().cloned().collect()
    }

    /// Returns the number of Socket Mode WebSockets accepted so far.
    pub fn socket_connections_opened(&self) -> u64 {
        self.shared.lock().socket_connections_opened
    }

    /// Returns the number of Socket Mode WebSockets open now.
    pub fn socket_connections_open(&self) -> u32 {
        self.shared.lock().socket_connections_open
    }

    /// Returns the next Socket Mode connection, in the order the bot opened
    /// them, after its `hello` was sent. Panics when none arrives within
    /// `timeout`.
    pub async fn next_socket_connection(&self, timeout: Duration) -> SocketConnection {
        let mut connections = self.connections.lock().await;
        match tokio::time::timeout(timeout, connections.recv()).await {
            Ok(Some(connection)) => connection,
            Ok(None) => unreachable!("the fake holds a sender of its own queue"),
            Err(_) => panic!(
                "no Socket Mode connection within {timeout:?}; {} opened so far, apps.connections.open called {} times",
                self.socket_connections_opened(),
                self.calls_to("apps.connections.open").len()
            ),
        }
    }
}

impl Drop for FakeSlack {
    fn drop(&mut self) {
        let _ = self.shutdown.send(true);
        self.server.abort();
    }
}

fn json_response(status: StatusCode, body: &Value) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/json; charset=utf-8")],
        body.to_string(),
    )
        .into_response()
}

/// `POST /response/<id>`: records the post. Past [`MAX_RESPONSE_URL_USES`]
/// posts to one id, responds with 404 `used_url`.
// NOTE: the status and error code for an exhausted response_url are this
// fake's choice; Slack documents the limit but not its response.
async fn handle_response_url(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    let body = serde_json::from_slice(&body)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&body).into_owned()));
    let mut state = shared.lock();
    let uses = state
        .responses
        .iter()
        .filter(|post| post.id == id && post.status == 200)
        .count();
    let status = if uses < MAX_RESPONSE_URL_USES {
        StatusCode::OK
    } else {
        StatusCode::NOT_FOUND
    };
    let post = ResponsePost {
        id,
        body,
        status: status.as_u16(),
    };
    push_bounded(&mut state.responses, post, MAX_STORED_ITEMS);
    if status == StatusCode::OK {
        json_response(status, &serde_json::json!({"ok": true}))
    } else {
        json_response(
            status,
            &serde_json::json!({"ok": false, "error": "used_url"}),
        )
    }
}

/// `POST /upload/<file id>`: stores the raw body, or the file part of a
/// `multipart/form-data` body. Responds with `OK - <length>` as Slack's
/// upload service does, or with 404 for a file id that
/// `files.getUploadURLExternal` did not return.
async fn handle_upload(
    State(shared): State<Arc<Shared>>,
    Path(file_id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .map(str::to_string);
    let content = match content_type.as_deref().and_then(multipart_boundary) {
        Some(boundary) => match multipart_file_part(&body, &boundary) {
            Some(part) => part,
            None => return (StatusCode::BAD_REQUEST, "invalid multipart body").into_response(),
        },
        None => body.to_vec(),
    };
    let mut state = shared.lock();
    let Some(upload) = state
        .uploads
        .iter_mut()
        .find(|upload| upload.file_id == file_id)
    else {
        return (StatusCode::NOT_FOUND, "file not found").into_response();
    };
    let length = content.len();
    upload.content = Some(content);
    upload.content_type = content_type;
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "text/plain")],
        format!("OK - {length}"),
    )
        .into_response()
}

/// Returns the boundary of a `multipart/form-data` content type.
fn multipart_boundary(content_type: &str) -> Option<String> {
    let (mime, parameters) = content_type.split_once(';')?;
    if !mime.trim().eq_ignore_ascii_case("multipart/form-data") {
        return None;
    }
    parameters.split(';').find_map(|parameter| {
        let (name, value) = parameter.trim().split_once('=')?;
        name.eq_ignore_ascii_case("boundary")
            .then(|| value.trim_matches('"').to_string())
    })
}

/// Returns the content of the first part that carries a `filename`, or of
/// the first part when none does.
fn multipart_file_part(body: &[u8], boundary: &str) -> Option<Vec<u8>> {
    let delimiter = format!("--{boundary}").into_bytes();
    let mut parts = Vec::new();
    let mut rest = body;
    let start = find(rest, &delimiter)?;
    rest = &rest[start + delimiter.len()..];
    while !rest.starts_with(b"--") {
        rest = rest.strip_prefix(b"\r\n")?;
        let end = find(rest, &delimiter)?;
        let part = rest[..end].strip_suffix(b"\r\n")?;
        let header_end = find(part, b"\r\n\r\n")?;
        let part_headers = String::from_utf8_lossy(&part[..header_end]).to_lowercase();
        let has_filename = part_headers.contains("filename=");
        parts.push((has_filename, part[header_end + 4..].to_vec()));
        rest = &rest[end + delimiter.len()..];
    }
    let index = parts.iter().position(|(has_filename, _)| *has_filename);
    let (_, content) = parts.into_iter().nth(index.unwrap_or(0))?;
    Some(content)
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack
        .windows(needle.len())
        .position(|window| window == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_increase() {
        let mut state = FakeState::default();
        let first = state.next_ts();
        let second = state.next_ts();
        assert_eq!(first, "1700000000.000100");
        assert_eq!(second, "1700000000.000200");
        assert!(second > first);
    }

    #[test]
    fn multipart_file_part_extracts_file() {
        let body = b"--XyZ\r\nContent-Disposition: form-data; name=\"channel\"\r\n\r\nC1\r\n--XyZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"plan.txt\"\r\nContent-Type: text/plain\r\n\r\nline one\r\nline two\r\n--XyZ--\r\n";
        let boundary = multipart_boundary("multipart/form-data; boundary=XyZ").expect("boundary");
        assert_eq!(boundary, "XyZ");
        let content = multipart_file_part(body, &boundary).expect("file part");
        assert_eq!(content, b"line one\r\nline two");
    }

    #[test]
    fn multipart_boundary_ignores_other_types() {
        assert_eq!(multipart_boundary("application/octet-stream"), None);
        assert_eq!(
            multipart_boundary("multipart/form-data; boundary=\"a b\""),
            Some("a b".to_string())
        );
    }
}
