//! Socket Mode at `/socket`: accepts a WebSocket for a ticket issued by
//! `apps.connections.open`, sends `hello`, then hands the connection to the
//! test as a [`SocketConnection`].
//!
//! Slack's protocol: the server sends envelopes `{type, envelope_id, payload,
//! accepts_response_payload}` of type `events_api`, `slash_commands` or
//! `interactive`, and the client acknowledges each with `{"envelope_id": ...,
//! "payload"?: ...}`. A `disconnect` message with reason `warning`,
//! `refresh_requested` or `link_disabled` tells the client to reconnect, or,
//! for `link_disabled`, to stop. No request signatures are used.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade, close_code};
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::{APP_ID, POLL_INTERVAL, Shared};

/// Connections accepted but not yet taken by `next_socket_connection`; a
/// connection arriving while the queue is full is closed at once.
pub(super) const MAX_PENDING_CONNECTIONS: usize = 64;
/// Capacity of each connection's queue of frames to send.
const COMMAND_QUEUE_CAPACITY: usize = 64;
/// Maximum time to hand a frame to the connection's task.
const SEND_TIMEOUT: Duration = Duration::from_secs(5);
/// Maximum frames recorded per connection; older frames are dropped first.
const MAX_RECEIVED_FRAMES: usize = 10_000;

enum Command {
    Send(String),
    /// Sends a close frame, then drops the connection.
    Close,
    /// Drops the TCP connection without a close frame.
    Drop,
}

/// State of one connection shared by its task and its handle.
struct ConnectionState {
    /// Frames from the client, parsed as JSON; a frame that is not JSON is
    /// kept as a JSON string.
    received: Mutex<Vec<Value>>,
    closed: AtomicBool,
}

/// One Socket Mode WebSocket that the bot opened. Frames are sent in call
/// order. Dropping the handle leaves the connection open.
pub struct SocketConnection {
    /// Ordinal of the connection, from 1, in the order the fake accepted them.
    pub number: u64,
    shared: Arc<Shared>,
    commands: mpsc::Sender<Command>,
    state: Arc<ConnectionState>,
}

impl SocketConnection {
    /// Sends `envelope` as one text frame, unchanged. Panics when the
    /// connection is closed.
    pub async fn send_envelope(&self, envelope: Value) {
        self.send(Command::Send(envelope.to_string())).await;
    }

    /// Sends a `slash_commands` envelope with `payload` and returns its
    /// envelope id.
    pub async fn send_slash_command(&self, payload: Value) -> String {
        self.send_typed("slash_commands", payload, true, None).await
    }

    /// Sends an `interactive` envelope with `payload` and returns its envelope
    /// id. `accepts_response_payload` is true for `view_submission` and
    /// `block_suggestion` payloads, whose acknowledgement may carry a response.
    pub async fn send_interactive(&self, payload: Value) -> String {
        let kind = payload["type"].as_str().unwrap_or_default();
        let accepts_response = matches!(kind, "view_submission" | "block_suggestion");
        self.send_typed("interactive", payload, accepts_response, None)
            .await
    }

    /// Sends an `events_api` envelope with `payload` (an `event_callback`)
    /// and returns its envelope id. `retry_attempt` 0 is the first delivery;
    /// a redelivery carries its attempt number and reason `timeout`.
    pub async fn send_events_api(&self, payload: Value, retry_attempt: u32) -> String {
        self.send_typed("events_api", payload, false, Some(retry_attempt))
            .await
    }

    /// Sends a `disconnect` message with `reason`: `warning`,
    /// `refresh_requested` or `link_disabled`.
    pub async fn send_disconnect(&self, reason: &str) {
        let message = json!({
            "type": "disconnect",
            "reason": reason,
            "debug_info": {"host": "fake-slack"},
        });
        self.send_envelope(message).await;
    }

    /// Sends a WebSocket close frame and drops the connection without waiting
    /// for the client's close frame.
    pub async fn close(&self) {
        self.send(Command::Close).await;
    }

    /// Drops the TCP connection without a close frame, as a network failure
    /// would.
    pub async fn drop_connection(&self) {
        self.send(Command::Drop).await;
    }

    pub fn is_closed(&self) -> bool {
        self.state.closed.load(Ordering::SeqCst)
    }

    /// Waits until the connection is closed by either side. Panics when it
    /// is still open at `timeout`.
    pub async fn wait_closed(&self, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        while !self.is_closed() {
            assert!(
                Instant::now() < deadline,
                "Socket Mode connection {} still open after {timeout:?}",
                self.number
            );
            tokio::time::sleep(POLL_INTERVAL).await;
        }
    }

    /// Returns every frame the client sent on this connection, oldest first.
    pub fn received(&self) -> Vec<Value> {
        lock(&self.state.received).clone()
    }

    /// Waits for the acknowledgement of `envelope_id` and returns it
    /// (`{"envelope_id": ..., "payload"?: ...}`). Panics with the frames
    /// received on this connection when `timeout` passes first.
    pub async fn wait_ack(&self, envelope_id: &str, timeout: Duration) -> Value {
        let deadline = Instant::now() + timeout;
        loop {
            let ack = lock(&self.state.received)
                .iter()
                .find(|frame| frame["envelope_id"] == envelope_id)
                .cloned();
            if let Some(ack) = ack {
                return ack;
            }
            if Instant::now() >= deadline {
                panic!(
                    "no acknowledgement of envelope {envelope_id} on Socket Mode connection {} within {timeout:?}; closed: {}; frames received: {:?}",
                    self.number,
                    self.is_closed(),
                    self.received()
                );
            }
            tokio::time::sleep(POLL_INTERVAL).await;
        }
    }

    async fn send_typed(
        &self,
        kind: &str,
        payload: Value,
        accepts_response_payload: bool,
        retry_attempt: Option<u32>,
    ) -> String {
        let envelope_id = self.next_envelope_id();
        let mut envelope = json!({
            "envelope_id": envelope_id,
            "type": kind,
            "payload": payload,
            "accepts_response_payload": accepts_response_payload,
        });
        if let Some(attempt) = retry_attempt {
            envelope["retry_attempt"] = json!(attempt);
            envelope["retry_reason"] = json!(if attempt == 0 { "" } else { "timeout" });
        }
        self.send_envelope(envelope).await;
        envelope_id
    }

    /// Returns a new envelope id in UUID form, unique within the fake.
    fn next_envelope_id(&self) -> String {
        let sequence = self.shared.last_envelope.fetch_add(1, Ordering::SeqCst) + 1;
        format!("00000000-0000-4000-8000-{sequence:012x}")
    }

    async fn send(&self, command: Command) {
        assert!(
            !self.is_closed(),
            "Socket Mode connection {} is closed",
            self.number
        );
        let sent = self.commands.send_timeout(command, SEND_TIMEOUT).await;
        assert!(
            sent.is_ok(),
            "Socket Mode connection {} closed or stalled before a frame could be queued",
            self.number
        );
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// `GET /socket?ticket=N`: upgrades when the ticket was issued and not used,
/// responds with 401 otherwise.
pub(super) async fn handle_upgrade(
    State(shared): State<Arc<Shared>>,
    Query(query): Query<HashMap<String, String>>,
    upgrade: WebSocketUpgrade,
) -> Response {
    let ticket = query.get("ticket").and_then(|ticket| ticket.parse().ok());
    let valid = ticket.is_some_and(|ticket| shared.lock().open_tickets.remove(&ticket));
    if !valid {
        return (StatusCode::UNAUTHORIZED, "invalid or used ticket").into_response();
    }
    upgrade.on_upgrade(move |socket| serve_connection(shared, socket))
}

async fn serve_connection(shared: Arc<Shared>, mut socket: WebSocket) {
    let (number, open) = {
        let mut state = shared.lock();
        state.socket_connections_opened += 1;
        state.socket_connections_open += 1;
        (
            state.socket_connections_opened,
            state.socket_connections_open,
        )
    };
    let connection_state = Arc::new(ConnectionState {
        received: Mutex::new(Vec::new()),
        closed: AtomicBool::new(false),
    });

    let hello = hello_message(open);
    if socket
        .send(Message::Text(hello.to_string().into()))
        .await
        .is_ok()
    {
        let (commands, receiver) = mpsc::channel(COMMAND_QUEUE_CAPACITY);
        let handle = SocketConnection {
            number,
            shared: shared.clone(),
            commands,
            state: connection_state.clone(),
        };
        if shared.connections.try_send(handle).is_ok() {
            run_connection(&shared, socket, receiver, &connection_state).await;
        } else {
            tracing::warn!(
                connection = number,
                "too many Socket Mode connections waiting for the test; closing this one"
            );
        }
    }

    connection_state.closed.store(true, Ordering::SeqCst);
    shared.lock().socket_connections_open -= 1;
}

fn hello_message(num_connections: u32) -> Value {
    json!({
        "type": "hello",
        "connection_info": {"app_id": APP_ID},
        "num_connections": num_connections,
        "debug_info": {
            "host": "fake-slack",
            "build_number": 1,
            "approximate_connection_time": 18060,
        },
    })
}

/// Forwards queued frames to the client and records the client's frames
/// until either side closes or the fake shuts down. The WebSocket library
/// replies to pings while the socket is read.
async fn run_connection(
    shared: &Shared,
    mut socket: WebSocket,
    mut commands: mpsc::Receiver<Command>,
    state: &ConnectionState,
) {
    let mut shutdown = shared.shutdown.clone();
    let mut handle_alive = true;
    loop {
        tokio::select! {
            command = commands.recv(), if handle_alive => match command {
                Some(Command::Send(text)) => {
                    if socket.send(Message::Text(text.into())).await.is_err() {
                        return;
                    }
                }
                Some(Command::Close) => {
                    let frame = CloseFrame { code: close_code::NORMAL, reason: "".into() };
                    let _ = socket.send(Message::Close(Some(frame))).await;
                    return;
                }
                Some(Command::Drop) => return,
                None => handle_alive = false,
            },
            incoming = socket.recv() => match incoming {
                Some(Ok(Message::Text(text))) => {
                    let frame = serde_json::from_str(text.as_str())
                        .unwrap_or_else(|_| Value::String(text.to_string()));
                    let mut received = lock(&state.received);
                    if received.len() == MAX_RECEIVED_FRAMES {
                        received.remove(0);
                    }
                    received.push(frame);
                }
                Some(Ok(Message::Close(_))) | Some(Err(_)) | None => return,
                Some(Ok(_)) => {}
            },
            _ = shutdown.changed() => return,
        }
    }
}
