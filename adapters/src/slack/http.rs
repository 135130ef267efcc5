//! The HTTP endpoints Slack posts to. Each request is verified before
//! anything else: `X-Slack-Signature` must be the HMAC-SHA256 of
//! `v0:{timestamp}:{body}` under the signing secret, the timestamp at most
//! five minutes from the bot's clock, and the same signed request is
//! accepted once.

use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::json;
use slack_morphism::prelude::SlackSigningSecret;
use slack_morphism::signature_verifier::{
    SlackEventSignatureVerifier, SlackEventSignatureVerifierError,
};
use tokio::sync::oneshot;

use super::inbound::{self, Inbound};
use super::{DEDUP_TTL, Immediate, Slack};

/// Time the bot waits for the first reply before it acknowledges a slash
/// command with "working on it". Slack shows an error after 3 seconds.
pub const ACK_BUDGET: Duration = Duration::from_millis(2000);

/// Largest body the endpoints read. `block_actions` payloads carry the
/// whole message, which stays below Slack's block limits.
pub const BODY_LIMIT: usize = 256 * 1024;

const SIGNATURE_HEADER: &str = "x-slack-signature";
const TIMESTAMP_HEADER: &str = "x-slack-request-timestamp";
const RETRY_HEADER: &str = "x-slack-retry-num";

/// Routes for `/slack/commands`, `/slack/interactions` and `/slack/events`.
pub fn routes(slack: Slack) -> Router {
    Router::new()
        .route("/slack/commands", post(commands))
        .route("/slack/interactions", post(interactions))
        .route("/slack/events", post(events))
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .with_state(slack)
}

async fn commands(State(slack): State<Slack>, headers: HeaderMap, body: Bytes) -> Response {
    // The budget covers verification too, because the replay check waits
    // on Redis.
    let deadline = tokio::time::Instant::now() + ACK_BUDGET;
    let body = match tokio::time::timeout_at(deadline, verified(&slack, &headers, &body)).await {
        Ok(Ok(body)) => body,
        Ok(Err(rejected)) => return rejected.into_response(),
        Err(_elapsed) => {
            tracing::warn!("request verification did not finish in time; command dropped");
            return ephemeral(
                "scalebot is slow to reach its coordination store (Redis), so nothing was changed; try again in a minute.",
            );
        }
    };
    let event = match inbound::command_from_form(body) {
        Ok(event) => event,
        Err(message) => return bad_request(message),
    };
    let (sender, receiver) = oneshot::channel();
    slack.accept(event, Some(sender));
    match tokio::time::timeout_at(deadline, receiver).await {
        Ok(Ok(Immediate::Ephemeral(text))) => ephemeral(&text),
        Ok(Ok(Immediate::Nothing)) | Ok(Err(_)) => StatusCode::OK.into_response(),
        Err(_elapsed) => ephemeral("Working on it: the answer follows shortly."),
    }
}

fn ephemeral(text: &str) -> Response {
    axum::Json(json!({ "response_type": "ephemeral", "text": text })).into_response()
}

async fn interactions(State(slack): State<Slack>, headers: HeaderMap, body: Bytes) -> Response {
    let verification = verified(&slack, &headers, &body).await;
    let text = match verification {
        Ok(text) => text,
        Err(Rejected::StoreUnavailable) => {
            // Slack ignores the body of a click's acknowledgement, so the
            // outage notice goes out as an ephemeral message.
            if let Ok(Inbound::Action { user, channel, .. }) = std::str::from_utf8(&body)
                .map_err(|e| e.to_string())
                .and_then(inbound::interaction_from_form)
            {
                let web = slack.web().clone();
                tokio::spawn(async move {
                    let text = "scalebot cannot reach its coordination store (Redis), so your click changed nothing; try again in a minute.";
                    if let Err(error) = web.post_ephemeral(&channel, &user, text).await {
                        tracing::warn!(%error, "outage notice not delivered");
                    }
                });
            }
            return StatusCode::OK.into_response();
        }
        Err(rejected) => return rejected.into_response(),
    };
    match inbound::interaction_from_form(text) {
        Ok(event) => {
            // Button clicks are acknowledged at once, and replies go out
            // as thread replies, ephemeral messages and message updates.
            slack.accept(event, None);
            StatusCode::OK.into_response()
        }
        Err(message) => bad_request(message),
    }
}

async fn events(State(slack): State<Slack>, headers: HeaderMap, body: Bytes) -> Response {
    let body = match verified(&slack, &headers, &body).await {
        Ok(body) => body,
        // Slack redelivers an event that is not acknowledged with 2xx, up
        // to three times over about five minutes.
        Err(Rejected::StoreUnavailable) => {
            return (
                StatusCode::SERVICE_UNAVAILABLE,
                "coordination store unavailable",
            )
                .into_response();
        }
        Err(rejected) => return rejected.into_response(),
    };
    let parsed = serde_json::from_str(body)
        .map_err(|error| format!("Events API body is not JSON: {error}"))
        .and_then(inbound::event_from_json);
    match parsed {
        Ok(Inbound::UrlVerification { challenge }) => {
            axum::Json(json!({ "challenge": challenge })).into_response()
        }
        Ok(event) => {
            if let Some(retry) = headers.get(RETRY_HEADER) {
                // The event id is recorded before anything runs, so a retry
                // of a delivery already taken is acknowledged and dropped.
                tracing::info!(retry = ?retry, "Slack retried an event delivery");
            }
            slack.accept(event, None);
            StatusCode::OK.into_response()
        }
        Err(message) => bad_request(message),
    }
}

fn bad_request(message: String) -> Response {
    tracing::warn!(%message, "malformed Slack request");
    (StatusCode::BAD_REQUEST, message).into_response()
}

/// The reason a request is not processed.
#[derive(Debug)]
enum Rejected {
    /// Signature, timestamp or headers are wrong: 401 with the reason.
    Unauthorized(&'static str),
    /// The same signed request came before: acknowledged and dropped.
    Replay,
    /// The replay check could not run.
    StoreUnavailable,
}

impl IntoResponse for Rejected {
    fn into_response(self) -> Response {
        match self {
            Rejected::Unauthorized(reason) => {
                (StatusCode::UNAUTHORIZED, format!("request rejected: {reason}")).into_response()
            }
            Rejected::Replay => StatusCode::OK.into_response(),
            // The JSON body reaches the user of a slash command; Slack
            // ignores it for other requests.
            Rejected::StoreUnavailable => axum::Json(json!({
                "response_type": "ephemeral",
                "text": "scalebot cannot reach its coordination store (Redis), so nothing was changed; try again in a minute.",
            }))
            .into_response(),
        }
    }
}

/// Checks signature, timestamp and replay, and returns the body as text.
/// Each rejection is logged and counted.
async fn verified<'a>(
    slack: &Slack,
    headers: &HeaderMap,
    body: &'a Bytes,
) -> Result<&'a str, Rejected> {
    check(slack, headers, body).await.inspect_err(|rejected| {
        let reason = match rejected {
            Rejected::Unauthorized(reason) => reason,
            Rejected::Replay => "replay",
            Rejected::StoreUnavailable => "coordination store unavailable",
        };
        metrics::counter!("scalebot_slack_rejected_total", "reason" => reason.to_string())
            .increment(1);
        tracing::warn!(reason, "rejected a Slack request");
    })
}

async fn check<'a>(
    slack: &Slack,
    headers: &HeaderMap,
    body: &'a Bytes,
) -> Result<&'a str, Rejected> {
    let Some(secret) = &slack.settings().signing_secret else {
        return Err(Rejected::Unauthorized("no signing secret is configured"));
    };
    let header = |name| headers.get(name).and_then(|v| v.to_str().ok());
    let (Some(signature), Some(timestamp)) = (header(SIGNATURE_HEADER), header(TIMESTAMP_HEADER))
    else {
        return Err(Rejected::Unauthorized("missing signature headers"));
    };
    let Ok(text) = std::str::from_utf8(body) else {
        return Err(Rejected::Unauthorized("body is not UTF-8"));
    };
    let verifier =
        SlackEventSignatureVerifier::new(&SlackSigningSecret::new(secret.expose().to_string()));
    if let Err(error) = verifier.verify(signature, text, timestamp) {
        return Err(Rejected::Unauthorized(match error {
            SlackEventSignatureVerifierError::WrongSignatureError(_) => "signature mismatch",
            _ => "timestamp outside the 5-minute window or invalid",
        }));
    }
    // A signature is unique to its timestamp and body, so a second request
    // with it is a replay, whoever sends it.
    let key = format!("slack-signature:{signature}");
    match slack
        .engine()
        .coordinator()
        .first_delivery(&key, DEDUP_TTL)
        .await
    {
        Ok(true) => Ok(text),
        Ok(false) => Err(Rejected::Replay),
        Err(error) => {
            tracing::error!(%error, "cannot record the request signature");
            Err(Rejected::StoreUnavailable)
        }
    }
}
