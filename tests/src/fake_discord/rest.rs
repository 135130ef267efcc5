//! The fake REST API: routing, Discord's message limits, 429 injection and
//! the recording of every call.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State as AxumState;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::{Call, GUILD_ID, State, TOKEN, payloads};

/// Discord's message limits (message resource documentation).
const MAX_CONTENT_CHARS: usize = 2000;
const MAX_EMBEDS: usize = 10;
const MAX_TITLE_CHARS: usize = 256;
const MAX_DESCRIPTION_CHARS: usize = 4096;
const MAX_FIELDS: usize = 25;
const MAX_FIELD_NAME_CHARS: usize = 256;
const MAX_FIELD_VALUE_CHARS: usize = 1024;
const MAX_FOOTER_CHARS: usize = 2048;
const MAX_EMBED_TOTAL_CHARS: usize = 6000;

/// Error code of a body that breaks a limit ("Invalid Form Body").
const INVALID_FORM_BODY: i64 = 50035;

pub(super) async fn handle(
    AxumState(state): AxumState<Arc<State>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = uri
        .path_and_query()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| uri.path().to_string());
    let body = read_body(&headers, &body);
    let (status, answer, extra_headers) = route(&state, &method, &uri, &headers, &body);
    {
        let mut store = state.lock();
        store.calls.push(Call {
            method: method.to_string(),
            path,
            body,
            status: status.as_u16(),
        });
        let count = store.calls.len();
        state.call_count.send_replace(count);
    }
    let mut response = if answer.is_null() {
        status.into_response()
    } else {
        (status, axum::Json(answer)).into_response()
    };
    for (name, value) in extra_headers {
        response
            .headers_mut()
            .insert(name, value.parse().expect("header value"));
    }
    response
}

type Answer = (StatusCode, Value, Vec<(&'static str, String)>);

fn ok(value: Value) -> Answer {
    let headers = vec![
        ("x-ratelimit-limit", "5".to_string()),
        ("x-ratelimit-remaining", "4".to_string()),
        ("x-ratelimit-reset-after", "1.000".to_string()),
        ("x-ratelimit-bucket", "fakebucket".to_string()),
    ];
    (StatusCode::OK, value, headers)
}

fn no_content() -> Answer {
    (StatusCode::NO_CONTENT, Value::Null, Vec::new())
}

fn error(status: StatusCode, code: i64, message: &str) -> Answer {
    (
        status,
        json!({ "code": code, "message": message }),
        Vec::new(),
    )
}

fn route(state: &State, method: &Method, uri: &Uri, headers: &HeaderMap, body: &Value) -> Answer {
    let Some(path) = uri.path().strip_prefix("/api/v10") else {
        return error(StatusCode::NOT_FOUND, 0, "404: Not Found");
    };
    let segments: Vec<String> = path
        .trim_start_matches('/')
        .split('/')
        .map(percent_decode)
        .collect();
    let segments: Vec<&str> = segments.iter().map(String::as_str).collect();
    if let ["gateway"] | ["gateway", "bot"] = segments.as_slice() {
        let url = format!("ws://{}/gateway", state.address);
        return ok(json!({
            "url": url,
            "shards": 1,
            "session_start_limit": { "total": 1000, "remaining": 999, "reset_after": 14400000, "max_concurrency": 1 }
        }));
    }
    if let Some(limited) = rate_limited(state) {
        return limited;
    }
    let webhook = matches!(segments.first(), Some(&"webhooks" | &"interactions"));
    let authorized = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v == format!("Bot {TOKEN}"));
    if !webhook && !authorized {
        return error(StatusCode::UNAUTHORIZED, 0, "401: Unauthorized");
    }
    let id = |text: &str| text.parse::<u64>().ok();
    match (method.as_str(), segments.as_slice()) {
        ("PUT", ["applications", _, "guilds", _, "commands"] | ["applications", _, "commands"]) => {
            let commands: Vec<Value> = body
                .as_array()
                .cloned()
                .unwrap_or_default()
                .into_iter()
                .map(|mut command| {
                    command["id"] = json!(state.next_id().to_string());
                    command
                })
                .collect();
            ok(Value::Array(commands))
        }
        ("GET", ["channels", channel]) => match id(channel) {
            Some(channel) => match state.lock().thread_parents.get(&channel) {
                Some(parent) => ok(json!({
                    "id": channel.to_string(),
                    "type": 11,
                    "guild_id": GUILD_ID.to_string(),
                    "parent_id": parent.to_string(),
                    "name": "thread",
                })),
                None => ok(
                    json!({ "id": channel.to_string(), "type": 0, "guild_id": GUILD_ID.to_string(), "name": "ops" }),
                ),
            },
            None => error(StatusCode::NOT_FOUND, 10003, "Unknown Channel"),
        },
        ("POST", ["channels", channel, "messages"]) => match id(channel) {
            Some(channel) => create_message(state, channel, body),
            None => error(StatusCode::NOT_FOUND, 10003, "Unknown Channel"),
        },
        ("GET", ["channels", _, "messages", message]) => {
            match id(message).and_then(|m| state.lock().messages.get(&m).cloned()) {
                Some(found) => ok(found),
                None => error(StatusCode::NOT_FOUND, 10008, "Unknown Message"),
            }
        }
        ("PATCH", ["channels", _, "messages", message]) => match id(message) {
            Some(message) => edit_message(state, message, body),
            None => error(StatusCode::NOT_FOUND, 10008, "Unknown Message"),
        },
        (
            "PUT",
            [
                "channels",
                _,
                "messages",
                message,
                "reactions",
                emoji,
                "@me",
            ],
        ) => {
            let Some(message) = id(message).filter(|m| state.lock().messages.contains_key(m))
            else {
                return error(StatusCode::NOT_FOUND, 10008, "Unknown Message");
            };
            let mut store = state.lock();
            let users = store
                .reactions
                .entry((message, emoji.to_string()))
                .or_default();
            if !users.contains(&super::BOT_USER_ID) {
                users.push(super::BOT_USER_ID);
            }
            no_content()
        }
        ("GET", ["channels", _, "messages", message, "reactions", emoji]) => {
            let Some(message) = id(message) else {
                return error(StatusCode::NOT_FOUND, 10008, "Unknown Message");
            };
            reaction_users(state, message, emoji, uri.query().unwrap_or(""))
        }
        ("POST", ["channels", channel, "messages", message, "threads"]) => {
            let (Some(channel), Some(message)) = (id(channel), id(message)) else {
                return error(StatusCode::NOT_FOUND, 10008, "Unknown Message");
            };
            let mut store = state.lock();
            store.thread_parents.insert(message, channel);
            if !store.threads.insert(message) {
                return error(
                    StatusCode::BAD_REQUEST,
                    160004,
                    "A thread has already been created for this message",
                );
            }
            let name = body["name"].as_str().unwrap_or("thread");
            let thread = json!({
                "id": message.to_string(),
                "type": 11,
                "guild_id": GUILD_ID.to_string(),
                "parent_id": channel.to_string(),
                "name": name,
            });
            (StatusCode::CREATED, thread, Vec::new())
        }
        ("GET", ["guilds", _, "members", user]) => {
            let found =
                id(user).and_then(|u| state.lock().members.get(&u).cloned().map(|m| (u, m)));
            match found {
                Some((user, member)) => ok(payloads::member(user, &member)),
                None => error(StatusCode::NOT_FOUND, 10007, "Unknown Member"),
            }
        }
        ("POST", ["interactions", _, token, "callback"]) => {
            if !state.lock().interactions.contains_key(*token) {
                return error(StatusCode::NOT_FOUND, 10062, "Unknown interaction");
            }
            no_content()
        }
        ("PATCH", ["webhooks", _, token, "messages", "@original"]) => {
            edit_original(state, token, body)
        }
        ("DELETE", ["webhooks", _, token, "messages", "@original"]) => {
            let mut store = state.lock();
            match store.interactions.get_mut(*token) {
                Some((_, original)) => {
                    if let Some(message) = original.take() {
                        store.messages.remove(&message);
                    }
                    no_content()
                }
                None => error(StatusCode::NOT_FOUND, 10015, "Unknown Webhook"),
            }
        }
        ("POST", ["webhooks", _, token]) => {
            let channel = state.lock().interactions.get(*token).map(|(c, _)| *c);
            match channel {
                Some(channel) => create_message(state, channel, body),
                None => error(StatusCode::NOT_FOUND, 10015, "Unknown Webhook"),
            }
        }
        _ => error(StatusCode::NOT_FOUND, 0, "404: Not Found"),
    }
}

/// Returns a 429 response while the test requested rate-limited calls.
fn rate_limited(state: &State) -> Option<Answer> {
    let mut store = state.lock();
    if store.rate_limited == 0 {
        return None;
    }
    store.rate_limited -= 1;
    let retry_after = store.retry_after;
    let headers = vec![
        ("retry-after", format!("{}", retry_after.ceil() as u64)),
        ("x-ratelimit-limit", "5".to_string()),
        ("x-ratelimit-remaining", "0".to_string()),
        ("x-ratelimit-reset-after", format!("{retry_after:.3}")),
        ("x-ratelimit-bucket", "fakebucket".to_string()),
        ("x-ratelimit-scope", "user".to_string()),
    ];
    let body = json!({ "message": "You are being rate limited.", "retry_after": retry_after, "global": false });
    Some((StatusCode::TOO_MANY_REQUESTS, body, headers))
}

fn create_message(state: &State, channel: u64, body: &Value) -> Answer {
    if let Err(problem) = check_limits(body) {
        return invalid_form_body(&problem);
    }
    if body.get("content").is_none() && body.get("embeds").is_none() && body.get("files").is_none()
    {
        return error(
            StatusCode::BAD_REQUEST,
            50006,
            "Cannot send an empty message",
        );
    }
    let id = state.next_id();
    let message = payloads::bot_message(id, channel, body);
    state.lock().messages.insert(id, message.clone());
    ok(message)
}

fn edit_message(state: &State, message: u64, body: &Value) -> Answer {
    if let Err(problem) = check_limits(body) {
        return invalid_form_body(&problem);
    }
    let mut store = state.lock();
    match store.messages.get_mut(&message) {
        Some(found) => {
            payloads::merge_message(found, body);
            ok(found.clone())
        }
        None => error(StatusCode::NOT_FOUND, 10008, "Unknown Message"),
    }
}

fn edit_original(state: &State, token: &str, body: &Value) -> Answer {
    if let Err(problem) = check_limits(body) {
        return invalid_form_body(&problem);
    }
    let Some((channel, original)) = state.lock().interactions.get(token).cloned() else {
        return error(StatusCode::NOT_FOUND, 10015, "Unknown Webhook");
    };
    match original {
        Some(message) => edit_message(state, message, body),
        None => {
            let id = state.next_id();
            let message = payloads::bot_message(id, channel, body);
            let mut store = state.lock();
            store.messages.insert(id, message.clone());
            store
                .interactions
                .insert(token.to_string(), (channel, Some(id)));
            ok(message)
        }
    }
}

fn reaction_users(state: &State, message: u64, emoji: &str, query: &str) -> Answer {
    let mut after = 0u64;
    let mut limit = 25usize;
    for pair in query.split('&') {
        match pair.split_once('=') {
            Some(("after", value)) => after = value.parse().unwrap_or(0),
            Some(("limit", value)) => limit = value.parse::<usize>().unwrap_or(25).clamp(1, 100),
            _ => {}
        }
    }
    let store = state.lock();
    let mut users: Vec<u64> = store
        .reactions
        .get(&(message, emoji.to_string()))
        .cloned()
        .unwrap_or_default();
    users.sort_unstable();
    let users: Vec<Value> = users
        .into_iter()
        .filter(|u| *u > after)
        .take(limit)
        .map(|u| {
            let bot = store.members.get(&u).is_some_and(|m| m.bot);
            payloads::user(u, bot)
        })
        .collect();
    ok(Value::Array(users))
}

fn invalid_form_body(problem: &str) -> Answer {
    let body = json!({
        "code": INVALID_FORM_BODY,
        "message": "Invalid Form Body",
        "errors": { "_errors": [{ "code": "BASE_TYPE_MAX_LENGTH", "message": problem }] }
    });
    (StatusCode::BAD_REQUEST, body, Vec::new())
}

/// Checks a message body against Discord's limits.
pub(super) fn check_limits(body: &Value) -> Result<(), String> {
    let chars = |value: &Value| value.as_str().map_or(0, |s| s.chars().count());
    let content = chars(&body["content"]);
    if content > MAX_CONTENT_CHARS {
        return Err(format!(
            "content has {content} characters; at most {MAX_CONTENT_CHARS}"
        ));
    }
    let embeds = body["embeds"].as_array().cloned().unwrap_or_default();
    if embeds.len() > MAX_EMBEDS {
        return Err(format!("{} embeds; at most {MAX_EMBEDS}", embeds.len()));
    }
    let mut total = 0;
    for embed in &embeds {
        let limits = [
            ("title", chars(&embed["title"]), MAX_TITLE_CHARS),
            (
                "description",
                chars(&embed["description"]),
                MAX_DESCRIPTION_CHARS,
            ),
            (
                "footer.text",
                chars(&embed["footer"]["text"]),
                MAX_FOOTER_CHARS,
            ),
            (
                "author.name",
                chars(&embed["author"]["name"]),
                MAX_TITLE_CHARS,
            ),
        ];
        for (name, count, max) in limits {
            if count > max {
                return Err(format!(
                    "embed {name} has {count} characters; at most {max}"
                ));
            }
            total += count;
        }
        let fields = embed["fields"].as_array().cloned().unwrap_or_default();
        if fields.len() > MAX_FIELDS {
            return Err(format!(
                "{} embed fields; at most {MAX_FIELDS}",
                fields.len()
            ));
        }
        for field in &fields {
            let name = chars(&field["name"]);
            let value = chars(&field["value"]);
            if name == 0 || name > MAX_FIELD_NAME_CHARS {
                return Err(format!(
                    "embed field name has {name} characters; 1 to {MAX_FIELD_NAME_CHARS}"
                ));
            }
            if value == 0 || value > MAX_FIELD_VALUE_CHARS {
                return Err(format!(
                    "embed field value has {value} characters; 1 to {MAX_FIELD_VALUE_CHARS}"
                ));
            }
            total += name + value;
        }
    }
    if total > MAX_EMBED_TOTAL_CHARS {
        return Err(format!(
            "embeds have {total} characters together; at most {MAX_EMBED_TOTAL_CHARS}"
        ));
    }
    Ok(())
}

/// Reads a JSON body, or the `payload_json` part of a multipart body with
/// the names and sizes of its files under `"files"`.
fn read_body(headers: &HeaderMap, body: &Bytes) -> Value {
    let content_type = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if let Some(boundary) = content_type
        .strip_prefix("multipart/form-data")
        .and_then(|rest| rest.split("boundary=").nth(1))
    {
        return read_multipart(body, boundary.trim_matches('"'));
    }
    serde_json::from_slice(body).unwrap_or(Value::Null)
}

fn read_multipart(body: &Bytes, boundary: &str) -> Value {
    let text = String::from_utf8_lossy(body);
    let mut payload = json!({});
    let mut files = Vec::new();
    for part in text.split(&format!("--{boundary}")) {
        let Some((head, content)) = part.split_once("\r\n\r\n") else {
            continue;
        };
        let content = content.strip_suffix("\r\n").unwrap_or(content);
        let name = head
            .split("name=\"")
            .nth(1)
            .and_then(|rest| rest.split('"').next())
            .unwrap_or("");
        if name == "payload_json" {
            payload = serde_json::from_str(content).unwrap_or(Value::Null);
        } else if let Some(filename) = head
            .split("filename=\"")
            .nth(1)
            .and_then(|rest| rest.split('"').next())
        {
            files.push(json!({ "field": name, "filename": filename, "size": content.len() }));
        }
    }
    if payload.is_object() {
        payload["files"] = Value::Array(files);
    }
    payload
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut position = 0;
    while position < bytes.len() {
        if bytes[position] == b'%'
            && position + 2 < bytes.len()
            && let Ok(byte) = u8::from_str_radix(&text[position + 1..position + 3], 16)
        {
            decoded.push(byte);
            position += 3;
            continue;
        }
        decoded.push(bytes[position]);
        position += 1;
    }
    String::from_utf8_lossy(&decoded).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_match_discord() {
        assert!(check_limits(&json!({ "content": "x".repeat(2000) })).is_ok());
        assert!(check_limits(&json!({ "content": "x".repeat(2001) })).is_err());
        let fields: Vec<Value> = (0..26)
            .map(|i| json!({ "name": format!("f{i}"), "value": "v" }))
            .collect();
        assert!(check_limits(&json!({ "embeds": [{ "fields": fields }] })).is_err());
        let big = json!({ "embeds": [{ "description": "d".repeat(4096), "title": "t".repeat(256), "fields": [
            { "name": "n", "value": "v".repeat(1024) }, { "name": "n", "value": "v".repeat(1024) }
        ] }] });
        assert!(check_limits(&big).unwrap_err().contains("6000"));
    }

    #[test]
    fn emoji_paths_decode() {
        assert_eq!(percent_decode("%E2%9C%85"), "✅");
        assert_eq!(percent_decode("@me"), "@me");
    }
}
