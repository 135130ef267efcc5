//! Socket Mode: the bot opens WebSocket connections to Slack with the
//! app-level token (`apps.connections.open` returns each URL) and receives
//! the same payloads as over HTTP, wrapped in envelopes. Each envelope is
//! acknowledged before it is handled, because Slack redelivers envelopes
//! that are not acknowledged within a few seconds. A connection is
//! replaced when Slack sends `disconnect`, when it drops, or when it stays
//! silent for longer than [`IDLE_TIMEOUT`].

use std::time::Duration;

use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::sync::watch;
use tokio_tungstenite::tungstenite::Message;

use super::Slack;
use super::inbound::{self, Inbound};
use crate::secret::Secret;

/// First wait before reconnecting after a failure; it doubles per failure
/// up to [`MAX_BACKOFF`] and resets after a connection that said hello.
pub const FIRST_BACKOFF: Duration = Duration::from_secs(1);
pub const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// Time limit to open a connection and to receive its `hello`.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(15);

/// Slack pings open connections about every 30 seconds; two minutes of
/// silence means the connection is dead.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(120);

/// Reason a connection ended.
#[derive(Debug, PartialEq, Eq)]
enum Ended {
    /// Slack asked for a new connection, or the connection dropped after
    /// it had worked.
    Reconnect,
    /// The connection failed before `hello`.
    Failed,
    Shutdown,
}

/// Runs `slack.socket_connections` connections until `shutdown` is true.
pub async fn run(slack: Slack, app_token: Secret, shutdown: watch::Receiver<bool>) {
    let count = slack.settings().config.socket_connections.max(1);
    let mut tasks = Vec::new();
    for number in 0..count {
        tasks.push(tokio::spawn(connection_loop(
            slack.clone(),
            app_token.clone(),
            shutdown.clone(),
            number,
        )));
    }
    for task in tasks {
        let _ = task.await;
    }
}

async fn connection_loop(
    slack: Slack,
    app_token: Secret,
    mut shutdown: watch::Receiver<bool>,
    number: u32,
) {
    let mut backoff = FIRST_BACKOFF;
    loop {
        if *shutdown.borrow() {
            return;
        }
        let ended = tokio::select! {
            ended = connect_once(&slack, &app_token, number) => ended,
            _ = shutdown.changed() => Ended::Shutdown,
        };
        match ended {
            Ended::Shutdown => return,
            Ended::Reconnect => {
                backoff = FIRST_BACKOFF;
                metrics::counter!("scalebot_slack_socket_reconnects_total").increment(1);
            }
            Ended::Failed => {
                tracing::warn!(
                    connection = number,
                    "Socket Mode connection failed; retrying in {}s",
                    backoff.as_secs()
                );
                tokio::select! {
                    _ = tokio::time::sleep(backoff) => {}
                    _ = shutdown.changed() => return,
                }
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
        }
    }
}

async fn connect_once(slack: &Slack, app_token: &Secret, number: u32) -> Ended {
    let url = match slack
        .web()
        .call_as(app_token, "apps.connections.open", &json!({}))
        .await
    {
        Ok(answer) => match answer.get("url").and_then(Value::as_str) {
            Some(url) => url.to_string(),
            None => {
                tracing::error!("apps.connections.open returned no url");
                return Ended::Failed;
            }
        },
        Err(error) => {
            tracing::error!(%error, "cannot open a Socket Mode connection");
            return Ended::Failed;
        }
    };
    let connected =
        tokio::time::timeout(CONNECT_TIMEOUT, tokio_tungstenite::connect_async(&url)).await;
    let mut socket = match connected {
        Ok(Ok((socket, _response))) => socket,
        Ok(Err(error)) => {
            tracing::error!(%error, "Socket Mode WebSocket handshake failed");
            return Ended::Failed;
        }
        Err(_elapsed) => {
            tracing::error!("Socket Mode WebSocket handshake timed out");
            return Ended::Failed;
        }
    };
    let mut greeted = false;
    loop {
        let timeout = if greeted {
            IDLE_TIMEOUT
        } else {
            CONNECT_TIMEOUT
        };
        let message = match tokio::time::timeout(timeout, socket.next()).await {
            Ok(Some(Ok(message))) => message,
            Ok(Some(Err(error))) => {
                tracing::warn!(%error, connection = number, "Socket Mode connection dropped");
                return if greeted {
                    Ended::Reconnect
                } else {
                    Ended::Failed
                };
            }
            Ok(None) => {
                tracing::warn!(connection = number, "Socket Mode connection closed");
                return if greeted {
                    Ended::Reconnect
                } else {
                    Ended::Failed
                };
            }
            Err(_elapsed) => {
                tracing::warn!(
                    connection = number,
                    "Socket Mode connection silent for {}s; reconnecting",
                    timeout.as_secs()
                );
                return if greeted {
                    Ended::Reconnect
                } else {
                    Ended::Failed
                };
            }
        };
        let text = match message {
            Message::Text(text) => text.to_string(),
            Message::Ping(data) => {
                let _ = socket.send(Message::Pong(data)).await;
                continue;
            }
            Message::Close(_) => {
                return if greeted {
                    Ended::Reconnect
                } else {
                    Ended::Failed
                };
            }
            _ => continue,
        };
        let envelope: Value = match serde_json::from_str(&text) {
            Ok(envelope) => envelope,
            Err(error) => {
                tracing::warn!(%error, "Socket Mode message is not JSON; ignored");
                continue;
            }
        };
        match envelope.get("type").and_then(Value::as_str) {
            Some("hello") => {
                greeted = true;
                tracing::info!(connection = number, "Socket Mode connected");
                continue;
            }
            Some("disconnect") => {
                let reason = envelope
                    .get("reason")
                    .and_then(Value::as_str)
                    .unwrap_or("unknown");
                tracing::info!(
                    connection = number,
                    reason,
                    "Slack asked for a new Socket Mode connection"
                );
                let _ = socket.close(None).await;
                return Ended::Reconnect;
            }
            _ => {}
        }
        let Some(envelope_id) = envelope.get("envelope_id").and_then(Value::as_str) else {
            tracing::debug!("Socket Mode message without envelope id ignored");
            continue;
        };
        let ack = json!({ "envelope_id": envelope_id }).to_string();
        if let Err(error) = socket.send(Message::text(ack)).await {
            tracing::warn!(%error, "Socket Mode acknowledgement not sent; Slack will redeliver");
            return Ended::Reconnect;
        }
        match event_of(&envelope) {
            Ok(event) => slack.accept(event, None),
            Err(message) => tracing::warn!(%message, "Socket Mode envelope not handled"),
        }
    }
}

/// Reads the payload of an envelope by its type.
fn event_of(envelope: &Value) -> Result<Inbound, String> {
    let payload = envelope.get("payload").cloned().unwrap_or(Value::Null);
    match envelope.get("type").and_then(Value::as_str) {
        Some("slash_commands") => inbound::command_from_json(payload),
        Some("interactive") => inbound::interaction_from_json(payload),
        Some("events_api") => inbound::event_from_json(payload),
        other => Ok(Inbound::Ignored(format!("envelope type {other:?}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envelopes_are_read_by_type() {
        let envelope = json!({
            "type": "slash_commands",
            "envelope_id": "e1",
            "payload": {
                "command": "/scale", "text": "synapse 4", "user_id": "U1X", "channel_id": "C1",
                "trigger_id": "t1", "response_url": "https://hooks.example/1", "team_id": "T1"
            },
            "accepts_response_payload": true
        });
        assert!(matches!(event_of(&envelope), Ok(Inbound::Command { .. })));
        let retried = json!({
            "type": "events_api", "envelope_id": "e2", "retry_attempt": 2, "retry_reason": "http_timeout",
            "payload": {"type": "event_callback", "event_id": "Ev1", "event": {"type": "app_mention", "user": "U1", "channel": "C1", "ts": "1.1", "text": "<@U9> status"}}
        });
        assert!(matches!(event_of(&retried), Ok(Inbound::Mention { .. })));
        let unknown = json!({"type": "something_new", "envelope_id": "e3"});
        assert!(matches!(event_of(&unknown), Ok(Inbound::Ignored(_))));
    }
}
