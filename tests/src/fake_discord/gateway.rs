//! The fake gateway: one WebSocket session at a time, JSON text frames
//! (serenity requests zlib payload compression in Identify, but reads text
//! frames too).

use std::sync::Arc;

use axum::extract::State as AxumState;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::response::Response;
use serde_json::{Value, json};
use tokio::sync::mpsc;

use super::{GatewayCommand, State, payloads};

/// Heartbeat interval sent in Hello, in milliseconds (Discord's usual value).
const HEARTBEAT_INTERVAL_MS: u64 = 41_250;

/// Close code the fake disconnects with; clients resume after it.
const CLOSE_UNKNOWN_ERROR: u16 = 4000;

/// Queued test commands per connection.
const COMMAND_QUEUE: usize = 64;

pub(super) async fn upgrade(
    AxumState(state): AxumState<Arc<State>>,
    socket: WebSocketUpgrade,
) -> Response {
    socket.on_upgrade(move |socket| session(state, socket))
}

async fn session(state: Arc<State>, mut socket: WebSocket) {
    // A connection made after `disconnect` waits here until `reconnect`.
    let mut held = state.held.subscribe();
    if held.wait_for(|held| !*held).await.is_err() {
        return;
    }
    let (commands, mut receiver) = mpsc::channel(COMMAND_QUEUE);
    let generation = {
        let mut store = state.lock();
        store.session += 1;
        store.gateway = Some(commands);
        store.session
    };
    let hello = json!({ "op": 10, "d": { "heartbeat_interval": HEARTBEAT_INTERVAL_MS }, "s": null, "t": null });
    if send(&mut socket, &hello).await.is_err() {
        return;
    }
    loop {
        tokio::select! {
            incoming = socket.recv() => {
                let Some(Ok(message)) = incoming else { break };
                let text = match message {
                    Message::Text(text) => text.to_string(),
                    Message::Close(_) => break,
                    _ => continue,
                };
                let Ok(payload) = serde_json::from_str::<Value>(&text) else { break };
                if answer(&state, &mut socket, &payload).await.is_err() {
                    break;
                }
            }
            command = receiver.recv() => match command {
                Some(GatewayCommand::Dispatch { event, data }) => {
                    if dispatch(&state, &mut socket, &event, data).await.is_err() {
                        break;
                    }
                }
                Some(GatewayCommand::InvalidSession) => {
                    // The client closes the connection and identifies anew.
                    let invalid = json!({ "op": 9, "d": false, "s": null, "t": null });
                    if send(&mut socket, &invalid).await.is_err() {
                        break;
                    }
                }
                Some(GatewayCommand::Close) | None => {
                    let frame = CloseFrame { code: CLOSE_UNKNOWN_ERROR, reason: "test disconnect".into() };
                    let _ = socket.send(Message::Close(Some(frame))).await;
                    break;
                }
            },
        }
    }
    let mut store = state.lock();
    if store.session == generation {
        store.gateway = None;
        state.session_up.send_replace(false);
    }
}

/// Responds to one message from the client: Identify, Resume or Heartbeat.
async fn answer(state: &State, socket: &mut WebSocket, payload: &Value) -> Result<(), axum::Error> {
    match payload["op"].as_u64() {
        // Heartbeat → Heartbeat ACK.
        Some(1) => {
            send(
                socket,
                &json!({ "op": 11, "d": null, "s": null, "t": null }),
            )
            .await
        }
        // Identify → READY of a new session.
        Some(2) => {
            let session_id = {
                let mut store = state.lock();
                store.identifies += 1;
                store.sequence = 0;
                format!("fake-session-{}", store.identifies)
            };
            let resume_url = format!("ws://{}/gateway", state.address);
            dispatch(
                state,
                socket,
                "READY",
                payloads::ready(&session_id, &resume_url),
            )
            .await?;
            state.session_up.send_replace(true);
            Ok(())
        }
        // Resume → RESUMED. Events of the disconnect are not replayed: the
        // fake keeps no backlog, because reactions made then were never sent.
        Some(6) => {
            state.lock().resumes += 1;
            dispatch(state, socket, "RESUMED", json!({})).await?;
            state.session_up.send_replace(true);
            Ok(())
        }
        _ => Ok(()),
    }
}

async fn dispatch(
    state: &State,
    socket: &mut WebSocket,
    event: &str,
    data: Value,
) -> Result<(), axum::Error> {
    let sequence = {
        let mut store = state.lock();
        store.sequence += 1;
        store.sequence
    };
    send(
        socket,
        &json!({ "op": 0, "s": sequence, "t": event, "d": data }),
    )
    .await
}

async fn send(socket: &mut WebSocket, payload: &Value) -> Result<(), axum::Error> {
    socket.send(Message::Text(payload.to_string().into())).await
}
