//! The Discord REST calls the adapter makes, over reqwest, with Discord's
//! rate limits honoured here: serenity's own limiter is off so that
//! `DISCORD_API_BASE` can point the calls at a local server.
//!
//! Every call waits for the process-wide limit (50 requests per second per
//! bot), then for its route's bucket when an earlier response reported
//! `X-RateLimit-Remaining: 0`. A 429 response is waited out for its
//! `retry_after` and the call is sent again, up to [`MAX_ATTEMPTS`] times.

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::Mutex;
use std::time::Duration;

use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};

use super::ratelimit::{
    GLOBAL_BUCKET, MAX_TRACKED_BUCKETS, RateLimitHeaders, retry_wait, route_key,
};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tokio::time::Instant;

use crate::secret::Secret;

/// Base of every REST URL unless `DISCORD_API_BASE` replaces it.
pub const DEFAULT_API_BASE: &str = "https://discord.com";

/// API version in every path.
pub const API_PATH: &str = "/api/v10";

/// Discord's global limit: 50 requests per second per bot token.
const GLOBAL_REQUESTS_PER_SECOND: u32 = 50;

/// Attempts of one call: the first and the retries after 429 responses.
pub const MAX_ATTEMPTS: u32 = 5;

/// Timeout of one HTTP request, connection included.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(15);

/// JSON error code Discord returns when a thread already exists on the
/// message ("A thread has already been created for this message").
pub const THREAD_ALREADY_CREATED: i64 = 160004;

/// Failure of one REST call.
#[derive(Debug, thiserror::Error)]
pub enum RestError {
    #[error("{route}: request failed: {source}")]
    Transport {
        method: Method,
        route: String,
        #[source]
        source: reqwest::Error,
    },
    #[error("{route}: Discord returned {status}, code {code}: {message}")]
    Rejected {
        method: Method,
        route: String,
        status: StatusCode,
        code: i64,
        message: String,
    },
    #[error("{route}: still rate limited after {attempts} attempts")]
    RateLimited {
        method: Method,
        route: String,
        attempts: u32,
    },
}

impl RestError {
    /// Returns the JSON error code of a rejected call, such as 50035 for an invalid
    /// form body.
    pub fn code(&self) -> Option<i64> {
        match self {
            RestError::Rejected { code, .. } => Some(*code),
            _ => None,
        }
    }
}

/// A file sent with a message as `files[0]`.
#[derive(Debug, Clone)]
pub struct Attachment {
    pub filename: String,
    pub bytes: Vec<u8>,
}

/// One call's body: none, JSON, or JSON with a file (multipart).
enum Body {
    Empty,
    Json(Value),
    WithFile(Value, Attachment),
}

/// The REST client. Cheap to share behind an `Arc`.
pub struct Rest {
    http: reqwest::Client,
    base: String,
    token: Secret,
    application_id: u64,
    global: DefaultDirectRateLimiter,
    /// Route key → instant before which its bucket has no request left.
    blocked: Mutex<HashMap<String, Instant>>,
}

impl Rest {
    /// Builds the client for `base` (`https://discord.com` in production).
    pub fn new(base: &str, token: Secret, application_id: u64) -> Result<Self, reqwest::Error> {
        let http = reqwest::Client::builder()
            .timeout(REQUEST_TIMEOUT)
            // Discord expects `DiscordBot ($url, $version)`.
            .user_agent(concat!(
                "DiscordBot (scalebot, ",
                env!("CARGO_PKG_VERSION"),
                ")"
            ))
            .build()?;
        let per_second = NonZeroU32::new(GLOBAL_REQUESTS_PER_SECOND).expect("limit is positive");
        Ok(Self {
            http,
            base: format!("{}{API_PATH}", base.trim_end_matches('/')),
            token,
            application_id,
            global: RateLimiter::direct(Quota::per_second(per_second)),
            blocked: Mutex::new(HashMap::new()),
        })
    }

    /// Posts a message in a channel and returns it.
    pub async fn create_message(&self, channel_id: u64, body: Value) -> Result<Value, RestError> {
        let path = format!("/channels/{channel_id}/messages");
        self.call(Method::POST, &path, Body::Json(body)).await
    }

    /// Posts a message with a file attached.
    pub async fn create_message_with_file(
        &self,
        channel_id: u64,
        body: Value,
        file: Attachment,
    ) -> Result<Value, RestError> {
        let path = format!("/channels/{channel_id}/messages");
        self.call(Method::POST, &path, Body::WithFile(body, file))
            .await
    }

    pub async fn get_message(&self, channel_id: u64, message_id: u64) -> Result<Value, RestError> {
        let path = format!("/channels/{channel_id}/messages/{message_id}");
        self.call(Method::GET, &path, Body::Empty).await
    }

    pub async fn edit_message(
        &self,
        channel_id: u64,
        message_id: u64,
        body: Value,
    ) -> Result<Value, RestError> {
        let path = format!("/channels/{channel_id}/messages/{message_id}");
        self.call(Method::PATCH, &path, Body::Json(body)).await
    }

    /// Adds the bot's own reaction `emoji` (a unicode emoji) to a message.
    pub async fn add_own_reaction(
        &self,
        channel_id: u64,
        message_id: u64,
        emoji: &str,
    ) -> Result<(), RestError> {
        let path = format!(
            "/channels/{channel_id}/messages/{message_id}/reactions/{}/@me",
            percent_encode(emoji)
        );
        self.call(Method::PUT, &path, Body::Empty).await.map(drop)
    }

    /// Lists the users who reacted with `emoji`, up to 100 after `after`
    /// (a user id), in ascending id order.
    pub async fn get_reactions(
        &self,
        channel_id: u64,
        message_id: u64,
        emoji: &str,
        burst: bool,
        after: Option<u64>,
    ) -> Result<Vec<Value>, RestError> {
        // `type` 0 lists normal reactions and 1 burst ("super") reactions.
        let mut path = format!(
            "/channels/{channel_id}/messages/{message_id}/reactions/{}?limit=100&type={}",
            percent_encode(emoji),
            u8::from(burst)
        );
        if let Some(after) = after {
            path.push_str(&format!("&after={after}"));
        }
        let users = self.call(Method::GET, &path, Body::Empty).await?;
        Ok(users.as_array().cloned().unwrap_or_default())
    }

    /// Reads a channel (its `guild_id`).
    pub async fn get_channel(&self, channel_id: u64) -> Result<Value, RestError> {
        let path = format!("/channels/{channel_id}");
        self.call(Method::GET, &path, Body::Empty).await
    }

    /// Reads a guild member (roles, and `user.bot`).
    pub async fn get_member(&self, guild_id: u64, user_id: u64) -> Result<Value, RestError> {
        let path = format!("/guilds/{guild_id}/members/{user_id}");
        self.call(Method::GET, &path, Body::Empty).await
    }

    /// Starts a thread on a message. The thread's id is the message's id.
    pub async fn start_thread(
        &self,
        channel_id: u64,
        message_id: u64,
        name: &str,
    ) -> Result<Value, RestError> {
        let path = format!("/channels/{channel_id}/messages/{message_id}/threads");
        // 1440 minutes: the thread archives after a day without messages.
        let body = json!({ "name": name, "auto_archive_duration": 1440 });
        self.call(Method::POST, &path, Body::Json(body)).await
    }

    /// Sends the initial response to an interaction, which Discord requires
    /// within 3 seconds of the interaction's creation.
    pub async fn interaction_callback(
        &self,
        interaction_id: u64,
        token: &str,
        body: Value,
    ) -> Result<(), RestError> {
        let path = format!("/interactions/{interaction_id}/{token}/callback");
        self.call(Method::POST, &path, Body::Json(body))
            .await
            .map(drop)
    }

    /// Replaces the original (deferred) response of an interaction.
    pub async fn edit_original(&self, token: &str, body: Value) -> Result<Value, RestError> {
        let path = format!(
            "/webhooks/{}/{token}/messages/@original",
            self.application_id
        );
        self.call(Method::PATCH, &path, Body::Json(body)).await
    }

    pub async fn delete_original(&self, token: &str) -> Result<(), RestError> {
        let path = format!(
            "/webhooks/{}/{token}/messages/@original",
            self.application_id
        );
        self.call(Method::DELETE, &path, Body::Empty)
            .await
            .map(drop)
    }

    /// Sends a follow-up message of an interaction.
    pub async fn followup(&self, token: &str, body: Value) -> Result<Value, RestError> {
        let path = format!("/webhooks/{}/{token}", self.application_id);
        self.call(Method::POST, &path, Body::Json(body)).await
    }

    pub async fn followup_with_file(
        &self,
        token: &str,
        body: Value,
        file: Attachment,
    ) -> Result<Value, RestError> {
        let path = format!("/webhooks/{}/{token}", self.application_id);
        self.call(Method::POST, &path, Body::WithFile(body, file))
            .await
    }

    /// Replaces the application commands of a guild, or the global ones
    /// when `guild_id` is `None`.
    pub async fn overwrite_commands(
        &self,
        guild_id: Option<u64>,
        commands: Value,
    ) -> Result<(), RestError> {
        let path = match guild_id {
            Some(guild) => format!(
                "/applications/{}/guilds/{guild}/commands",
                self.application_id
            ),
            None => format!("/applications/{}/commands", self.application_id),
        };
        self.call(Method::PUT, &path, Body::Json(commands))
            .await
            .map(drop)
    }

    /// Sends one call, waiting out rate limits. Returns the JSON response body, or
    /// `Value::Null` for an empty (204) response.
    async fn call(&self, method: Method, path: &str, body: Body) -> Result<Value, RestError> {
        let route = route_key(&method, path);
        let url = format!("{}{path}", self.base);
        for attempt in 1..=MAX_ATTEMPTS {
            self.global.until_ready().await;
            self.wait_for_bucket(&route).await;
            let request = self.build(&method, &url, path, &body);
            let response = request
                .send()
                .await
                .map_err(|source| RestError::Transport {
                    method: method.clone(),
                    route: route.clone(),
                    // Interaction tokens are part of the URL: keep it out of
                    // the error, which is logged.
                    source: source.without_url(),
                })?;
            let status = response.status();
            let limits = RateLimitHeaders::read(response.headers());
            self.note_bucket(&route, &limits);
            let text = response
                .text()
                .await
                .map_err(|source| RestError::Transport {
                    method: method.clone(),
                    route: route.clone(),
                    // Interaction tokens are part of the URL: keep it out of
                    // the error, which is logged.
                    source: source.without_url(),
                })?;
            let answer: Value = if text.trim().is_empty() {
                Value::Null
            } else {
                serde_json::from_str(&text).unwrap_or(Value::String(text))
            };
            if status == StatusCode::TOO_MANY_REQUESTS {
                let wait = retry_wait(&answer, &limits);
                metrics::counter!("scalebot_discord_rate_limited_total").increment(1);
                tracing::warn!(
                    %method,
                    route,
                    attempt,
                    wait_ms = wait.as_millis() as u64,
                    global = limits.global,
                    scope = limits.scope.as_deref().unwrap_or("unknown"),
                    "Discord rate limit hit; the call is sent again after the wait"
                );
                if attempt == MAX_ATTEMPTS {
                    break;
                }
                let bucket = if limits.global { GLOBAL_BUCKET } else { &route };
                self.block(bucket, wait);
                continue;
            }
            if status.is_success() {
                return Ok(answer);
            }
            return Err(RestError::Rejected {
                method,
                route,
                status,
                code: answer.get("code").and_then(Value::as_i64).unwrap_or(0),
                message: answer
                    .get("message")
                    .and_then(Value::as_str)
                    .unwrap_or("no message")
                    .to_string(),
            });
        }
        Err(RestError::RateLimited {
            method,
            route,
            attempts: MAX_ATTEMPTS,
        })
    }

    fn build(
        &self,
        method: &Method,
        url: &str,
        path: &str,
        body: &Body,
    ) -> reqwest::RequestBuilder {
        let mut request = self.http.request(method.clone(), url);
        // Interaction callbacks and webhook messages are authorised by the
        // token in their path and need no bot token.
        if !path.starts_with("/interactions/") && !path.starts_with("/webhooks/") {
            request = request.header(
                reqwest::header::AUTHORIZATION,
                format!("Bot {}", self.token.expose()),
            );
        }
        match body {
            Body::Empty => request,
            Body::Json(value) => request
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(value.to_string()),
            Body::WithFile(value, file) => {
                let json_part = reqwest::multipart::Part::text(value.to_string())
                    .mime_str("application/json")
                    .expect("application/json is a valid MIME type");
                let file_part = reqwest::multipart::Part::bytes(file.bytes.clone())
                    .file_name(file.filename.clone())
                    .mime_str("text/plain")
                    .expect("text/plain is a valid MIME type");
                let form = reqwest::multipart::Form::new()
                    .part("payload_json", json_part)
                    .part("files[0]", file_part);
                request.multipart(form)
            }
        }
    }

    async fn wait_for_bucket(&self, route: &str) {
        loop {
            let until = {
                let blocked = self.blocked.lock().unwrap_or_else(|e| e.into_inner());
                [GLOBAL_BUCKET, route]
                    .iter()
                    .filter_map(|key| blocked.get(*key).copied())
                    .max()
            };
            match until {
                Some(until) if until > Instant::now() => tokio::time::sleep_until(until).await,
                _ => return,
            }
        }
    }

    fn block(&self, key: &str, wait: Duration) {
        let until = Instant::now() + wait;
        let mut blocked = self.blocked.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        if blocked.len() >= MAX_TRACKED_BUCKETS {
            blocked.retain(|_, until| *until > now);
        }
        let entry = blocked.entry(key.to_string()).or_insert(until);
        *entry = (*entry).max(until);
    }

    fn note_bucket(&self, route: &str, limits: &RateLimitHeaders) {
        if limits.remaining == Some(0)
            && let Some(reset_after) = limits.reset_after
        {
            self.block(route, reset_after.min(super::ratelimit::MAX_RETRY_WAIT));
        }
    }
}

/// Percent-encodes an emoji for a URL path segment.
fn percent_encode(text: &str) -> String {
    let mut encoded = String::with_capacity(text.len() * 3);
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~' | b':') {
            encoded.push(byte as char);
        } else {
            encoded.push_str(&format!("%{byte:02X}"));
        }
    }
    encoded
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emoji_is_percent_encoded() {
        assert_eq!(percent_encode("✅"), "%E2%9C%85");
        assert_eq!(
            percent_encode("LUL:41771983429993937"),
            "LUL:41771983429993937"
        );
    }
}
