//! Calls to Slack's Web API through slack-morphism, with Slack's rate
//! limits honoured: `chat.postMessage` is paced to about one message per
//! second per channel, and a `429` is waited out for its `Retry-After`
//! before the call is repeated.

use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::{Value, json};
use slack_morphism::errors::SlackClientError;
use slack_morphism::prelude::*;

use crate::secret::Secret;

/// Slack's Web API base, used unless `SLACK_API_URL` overrides it.
pub const DEFAULT_API_URL: &str = "https://slack.com/api";

/// Attempts per call when Slack returns `429`, after which the call is reported
/// as failed, with the error logged.
const RATE_LIMIT_ATTEMPTS: u32 = 5;

/// Wait after a `429` that carries no `Retry-After` header.
const DEFAULT_RETRY_AFTER: Duration = Duration::from_secs(1);

/// Longest `Retry-After` the bot waits out; a longer one fails the call.
/// Slack's waits are usually seconds, but a message update that is given
/// up leaves live buttons on a decided request, so minutes are waited out.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(5 * 60);

/// Time limit of one HTTP call to Slack.
const CALL_TIMEOUT: Duration = Duration::from_secs(15);

/// Messages that may be posted to one channel in a burst before pacing
/// starts at one per second.
const CHANNEL_BURST: u32 = 3;

type Connector = SlackClientHyperConnector<HttpsConnector<HttpConnector>>;

#[derive(Debug, thiserror::Error)]
pub enum WebError {
    /// Slack returned `ok: false` with this error code.
    #[error("Slack API {method} failed: {code}")]
    Api { method: String, code: String },
    #[error("Slack API {method} is still rate limited after {attempts} attempts")]
    RateLimited { method: String, attempts: u32 },
    #[error("Slack API {method} timed out after {}s", CALL_TIMEOUT.as_secs())]
    Timeout { method: String },
    #[error("Slack API {method} failed: {message}")]
    Transport { method: String, message: String },
}

impl WebError {
    /// Returns the Slack error code of an `ok: false` response.
    pub fn code(&self) -> Option<&str> {
        match self {
            WebError::Api { code, .. } => Some(code),
            _ => None,
        }
    }
}

/// A Web API client for one bot token. Cheap to clone.
#[derive(Clone)]
pub struct Web {
    client: Arc<SlackClient<Connector>>,
    token: Arc<SlackApiToken>,
    channel_pace: Arc<DefaultKeyedRateLimiter<String>>,
}

impl Web {
    /// Builds a client for `api_url` (Slack's, or a local fake in tests).
    /// Plain `http://` is accepted so that tests can use a local server.
    pub fn new(api_url: &str, token: &Secret) -> std::io::Result<Self> {
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_webpki_roots()
            .https_or_http()
            .enable_http1()
            .build();
        let connector = SlackClientHyperConnector::with_connector(https)
            .with_slack_api_url(api_url.trim_end_matches('/'));
        let per_second = Quota::per_second(NonZeroU32::MIN)
            .allow_burst(NonZeroU32::new(CHANNEL_BURST).expect("burst is positive"));
        Ok(Self {
            client: Arc::new(SlackClient::new(connector)),
            token: Arc::new(SlackApiToken::new(SlackApiTokenValue::new(
                token.expose().to_string(),
            ))),
            channel_pace: Arc::new(RateLimiter::keyed(per_second)),
        })
    }

    /// Calls `method` with a JSON body and returns Slack's JSON response.
    pub async fn call(&self, method: &str, body: &Value) -> Result<Value, WebError> {
        self.call_with(&self.token, method, body).await
    }

    /// Calls `method` with another token (the app-level token of Socket
    /// Mode).
    pub async fn call_as(
        &self,
        token: &Secret,
        method: &str,
        body: &Value,
    ) -> Result<Value, WebError> {
        let token = SlackApiToken::new(SlackApiTokenValue::new(token.expose().to_string()));
        self.call_with(&token, method, body).await
    }

    async fn call_with(
        &self,
        token: &SlackApiToken,
        method: &str,
        body: &Value,
    ) -> Result<Value, WebError> {
        if method == "chat.postMessage"
            && let Some(channel) = body.get("channel").and_then(Value::as_str)
        {
            self.channel_pace
                .until_key_ready(&channel.to_string())
                .await;
        }
        let session = self.client.open_session(token);
        let mut attempt = 1;
        loop {
            let call = session
                .http_session_api
                .http_post::<Value, Value>(method, body, None);
            let result = match tokio::time::timeout(CALL_TIMEOUT, call).await {
                Ok(result) => result,
                Err(_elapsed) => {
                    metrics::counter!("scalebot_slack_api_calls_total", "method" => method.to_string(), "outcome" => "timeout").increment(1);
                    return Err(WebError::Timeout {
                        method: method.to_string(),
                    });
                }
            };
            match result {
                Ok(answer) => {
                    metrics::counter!("scalebot_slack_api_calls_total", "method" => method.to_string(), "outcome" => "ok").increment(1);
                    return Ok(answer);
                }
                Err(SlackClientError::RateLimitError(limited)) => {
                    metrics::counter!("scalebot_slack_api_calls_total", "method" => method.to_string(), "outcome" => "rate_limited").increment(1);
                    let wait = limited.retry_after.unwrap_or(DEFAULT_RETRY_AFTER);
                    if attempt >= RATE_LIMIT_ATTEMPTS || wait > MAX_RETRY_AFTER {
                        tracing::error!(
                            method,
                            attempt,
                            ?wait,
                            "Slack rate limit: giving up on the call"
                        );
                        return Err(WebError::RateLimited {
                            method: method.to_string(),
                            attempts: attempt,
                        });
                    }
                    tracing::warn!(
                        method,
                        attempt,
                        ?wait,
                        "Slack returned 429; waiting for Retry-After"
                    );
                    tokio::time::sleep(wait).await;
                    attempt += 1;
                }
                Err(other) => {
                    metrics::counter!("scalebot_slack_api_calls_total", "method" => method.to_string(), "outcome" => "error").increment(1);
                    return Err(transport_or_api(method, other));
                }
            }
        }
    }

    /// Posts a message and returns its `ts`.
    pub async fn post_message(
        &self,
        channel: &str,
        thread_ts: Option<&str>,
        text: &str,
        blocks: Option<&Value>,
    ) -> Result<String, WebError> {
        let mut body = json!({ "channel": channel, "text": text });
        if let Some(thread_ts) = thread_ts {
            body["thread_ts"] = json!(thread_ts);
        }
        if let Some(blocks) = blocks {
            body["blocks"] = blocks.clone();
        }
        let answer = self.call("chat.postMessage", &body).await?;
        Ok(answer
            .get("ts")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string())
    }

    pub async fn update_message(
        &self,
        channel: &str,
        ts: &str,
        text: &str,
        blocks: &Value,
    ) -> Result<(), WebError> {
        let body = json!({ "channel": channel, "ts": ts, "text": text, "blocks": blocks });
        self.call("chat.update", &body).await.map(drop)
    }

    pub async fn post_ephemeral(
        &self,
        channel: &str,
        user: &str,
        text: &str,
    ) -> Result<(), WebError> {
        let body = json!({ "channel": channel, "user": user, "text": text });
        self.call("chat.postEphemeral", &body).await.map(drop)
    }

    /// Uploads `content` as a text file and shares it in the channel or
    /// thread, with Slack's external upload flow: get an upload URL, send
    /// the bytes, complete the upload.
    pub async fn upload_text(
        &self,
        channel: &str,
        thread_ts: Option<&str>,
        filename: &str,
        title: &str,
        content: &str,
    ) -> Result<(), WebError> {
        let session = self.client.open_session(&self.token);
        let method = "files.getUploadURLExternal";
        let request =
            SlackApiFilesGetUploadUrlExternalRequest::new(filename.to_string(), content.len());
        let target = tokio::time::timeout(CALL_TIMEOUT, session.get_upload_url_external(&request))
            .await
            .map_err(|_| WebError::Timeout {
                method: method.to_string(),
            })?
            .map_err(|error| transport_or_api(method, error))?;
        let upload = SlackApiFilesUploadViaUrlRequest::new(
            target.upload_url,
            content.as_bytes().to_vec(),
            "text/plain".to_string(),
        );
        let method = "file upload";
        tokio::time::timeout(CALL_TIMEOUT, session.files_upload_via_url(&upload))
            .await
            .map_err(|_| WebError::Timeout {
                method: method.to_string(),
            })?
            .map_err(|error| transport_or_api(method, error))?;
        let mut complete = json!({
            "files": [{ "id": target.file_id.to_string(), "title": title }],
            "channel_id": channel,
        });
        if let Some(thread_ts) = thread_ts {
            complete["thread_ts"] = json!(thread_ts);
        }
        self.call("files.completeUploadExternal", &complete)
            .await
            .map(drop)
    }

    /// Lists the user ids of a Slack user group.
    pub async fn usergroup_members(&self, group: &str) -> Result<Vec<String>, WebError> {
        let answer = self
            .call("usergroups.users.list", &json!({ "usergroup": group }))
            .await?;
        Ok(answer
            .get("users")
            .and_then(Value::as_array)
            .map(|users| {
                users
                    .iter()
                    .filter_map(Value::as_str)
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default())
    }
}

fn transport_or_api(method: &str, error: SlackClientError) -> WebError {
    match error {
        SlackClientError::ApiError(error) => WebError::Api {
            method: method.to_string(),
            code: error.code,
        },
        other => WebError::Transport {
            method: method.to_string(),
            message: other.to_string(),
        },
    }
}
