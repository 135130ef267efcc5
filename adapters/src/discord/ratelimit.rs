//! Reading Discord's rate-limit headers: which bucket a call belongs to,
//! and how long to wait after a 429 or an exhausted bucket.

use std::time::Duration;

use reqwest::Method;
use serde_json::Value;

/// Maximum wait after one 429 before the call is sent again. Discord asks
/// for seconds in the common case; a longer wait is cut to this, and a
/// call still limited after [`super::rest::MAX_ATTEMPTS`] fails with
/// [`super::rest::RestError::RateLimited`].
pub const MAX_RETRY_WAIT: Duration = Duration::from_secs(60);

/// Key of the bucket every route shares during a global rate limit.
pub(super) const GLOBAL_BUCKET: &str = "global";

/// Routes with a known wait before past waits are dropped from memory.
pub(super) const MAX_TRACKED_BUCKETS: usize = 1000;

/// The rate-limit headers of one response.
#[derive(Debug, Default, PartialEq)]
pub(super) struct RateLimitHeaders {
    pub remaining: Option<u64>,
    pub reset_after: Option<Duration>,
    pub retry_after: Option<Duration>,
    pub global: bool,
    pub scope: Option<String>,
}

impl RateLimitHeaders {
    pub fn read(headers: &reqwest::header::HeaderMap) -> Self {
        let text = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
        let seconds = |name: &str| {
            text(name)
                .and_then(|v| v.trim().parse::<f64>().ok())
                .and_then(capped_seconds)
        };
        Self {
            remaining: text("x-ratelimit-remaining").and_then(|v| v.trim().parse().ok()),
            reset_after: seconds("x-ratelimit-reset-after"),
            retry_after: seconds("retry-after"),
            global: text("x-ratelimit-global").is_some_and(|v| v.eq_ignore_ascii_case("true")),
            scope: text("x-ratelimit-scope").map(str::to_string),
        }
    }
}

/// Converts seconds from Discord into a duration of at most
/// [`MAX_RETRY_WAIT`]. The cap comes before the conversion, which panics on
/// values too large for a `Duration`; negative and non-finite values are
/// dropped.
fn capped_seconds(seconds: f64) -> Option<Duration> {
    if !seconds.is_finite() || seconds < 0.0 {
        return None;
    }
    Some(Duration::from_secs_f64(
        seconds.min(MAX_RETRY_WAIT.as_secs_f64()),
    ))
}

/// Time to wait after a 429: the body's `retry_after` (seconds, with
/// decimals), else the `Retry-After` header, else one second; at most
/// [`MAX_RETRY_WAIT`].
pub(super) fn retry_wait(answer: &Value, limits: &RateLimitHeaders) -> Duration {
    let from_body = answer
        .get("retry_after")
        .and_then(Value::as_f64)
        .and_then(capped_seconds);
    from_body
        .or(limits.retry_after)
        .unwrap_or(Duration::from_secs(1))
        .min(MAX_RETRY_WAIT)
}

/// The route of a call as Discord buckets it: the method and the path with
/// minor ids (messages, interactions), emoji and tokens replaced, the major
/// ids (channel, guild, webhook) kept, and no query string.
pub(super) fn route_key(method: &Method, path: &str) -> String {
    let path = path.split('?').next().unwrap_or(path);
    let segments: Vec<&str> = path.split('/').collect();
    let mut key = Vec::with_capacity(segments.len());
    for (position, segment) in segments.iter().enumerate() {
        let previous = position.checked_sub(1).map(|p| segments[p]);
        let before_previous = position.checked_sub(2).map(|p| segments[p]);
        let is_id = !segment.is_empty() && segment.chars().all(|c| c.is_ascii_digit());
        let replaced = match previous {
            Some("channels" | "guilds" | "webhooks") => segment,
            Some("reactions") => ":emoji",
            _ if matches!(before_previous, Some("webhooks" | "interactions")) => ":token",
            _ if is_id => ":id",
            _ => segment,
        };
        key.push(replaced);
    }
    format!("{method} {}", key.join("/"))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn route_key_keeps_major_ids() {
        assert_eq!(
            route_key(&Method::POST, "/channels/12/messages"),
            "POST /channels/12/messages"
        );
        assert_eq!(
            route_key(&Method::PATCH, "/channels/12/messages/34"),
            "PATCH /channels/12/messages/:id"
        );
        assert_eq!(
            route_key(
                &Method::GET,
                "/channels/12/messages/34/reactions/%E2%9C%85?limit=100"
            ),
            "GET /channels/12/messages/:id/reactions/:emoji"
        );
        assert_eq!(
            route_key(&Method::POST, "/interactions/55/secret-token/callback"),
            "POST /interactions/:id/:token/callback"
        );
        assert_eq!(
            route_key(
                &Method::PATCH,
                "/webhooks/77/secret-token/messages/@original"
            ),
            "PATCH /webhooks/77/:token/messages/@original"
        );
    }

    #[test]
    fn retry_wait_prefers_the_body() {
        let limits = RateLimitHeaders {
            retry_after: Some(Duration::from_secs(3)),
            ..RateLimitHeaders::default()
        };
        let body =
            json!({"message": "You are being rate limited.", "retry_after": 0.25, "global": false});
        assert_eq!(retry_wait(&body, &limits), Duration::from_millis(250));
        assert_eq!(retry_wait(&Value::Null, &limits), Duration::from_secs(3));
        let long = json!({"retry_after": 3600.0});
        assert_eq!(retry_wait(&long, &limits), MAX_RETRY_WAIT);
    }
}
