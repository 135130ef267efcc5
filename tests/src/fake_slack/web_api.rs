//! The Web API at `/api/<method>`: parses parameters from the query string
//! and from JSON or form bodies, checks the token, applies configured rate
//! limits, runs the method and records the call.
//!
//! Like Slack, the fake responds with HTTP 200 and `ok` in the JSON body,
//! except for a rate limit.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::response::Response;
use serde_json::{Map, Value, json};
use tokio::time::Instant;

use super::{
    APP_TOKEN, BOT_ID, BOT_TOKEN, BOT_USER_ID, Call, CompletedUpload, EphemeralMessage, FakeState,
    MAX_STORED_ITEMS, Shared, StoredMessage, TEAM_DOMAIN, TEAM_ID, Upload, check_message,
    json_response, push_bounded,
};

/// Result of one method: the fields to add to `"ok": true`, or an error code.
type MethodResult = Result<Map<String, Value>, &'static str>;

/// Kind of token a method requires.
#[derive(Clone, Copy, PartialEq)]
enum TokenKind {
    Bot,
    App,
}

/// Form parameters that carry JSON inside a string.
const JSON_FORM_FIELDS: [&str; 3] = ["blocks", "files", "attachments"];

pub(super) async fn handle_method(
    State(shared): State<Arc<Shared>>,
    Path(method): Path<String>,
    http_method: Method,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> Response {
    let (mut params, parse_error) = parse_params(&headers, query.as_deref(), &body);
    let body_token = params
        .remove("token")
        .and_then(|token| token.as_str().map(str::to_string));
    let token = bearer_token(&headers).or(body_token);
    let mut state = shared.lock();

    let retry_after = state
        .rate_limits
        .get_mut(&method)
        .and_then(|pending| pending.pop_front());
    let (status, response) = match (retry_after, parse_error) {
        (Some(_), _) => (
            StatusCode::TOO_MANY_REQUESTS,
            json!({"ok": false, "error": "ratelimited"}),
        ),
        (None, Some(error)) => (StatusCode::OK, json!({"ok": false, "error": error})),
        (None, None) => {
            let result = check_token(&method, token.as_deref())
                .and_then(|()| run_method(&mut state, &shared.base_url, &method, &params));
            (StatusCode::OK, response_body(result))
        }
    };

    state.record_call(Call {
        method,
        http_method: http_method.to_string(),
        params: Value::Object(params),
        token,
        status: status.as_u16(),
        response: response.clone(),
        received_at: Instant::now(),
    });
    drop(state);

    let mut reply = json_response(status, &response);
    if let Some(seconds) = retry_after {
        let value = header::HeaderValue::from(seconds);
        reply.headers_mut().insert(header::RETRY_AFTER, value);
    }
    reply
}

fn response_body(result: MethodResult) -> Value {
    match result {
        Ok(mut fields) => {
            fields.insert("ok".to_string(), Value::Bool(true));
            Value::Object(fields)
        }
        Err(error) => json!({"ok": false, "error": error}),
    }
}

fn bearer_token(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    value
        .strip_prefix("Bearer ")
        .map(|token| token.trim().to_string())
}

/// Merges query and body parameters (the body wins). Returns the error code
/// Slack gives a body it cannot parse: `invalid_json` or `invalid_form_data`.
fn parse_params(
    headers: &HeaderMap,
    query: Option<&str>,
    body: &[u8],
) -> (Map<String, Value>, Option<&'static str>) {
    let mut params = query.map(parse_form).unwrap_or_default();
    if body.is_empty() {
        return (params, None);
    }
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase();
    if content_type.starts_with("application/json") {
        match serde_json::from_slice::<Value>(body) {
            Ok(Value::Object(fields)) => params.extend(fields),
            _ => return (params, Some("invalid_json")),
        }
    } else {
        match std::str::from_utf8(body) {
            Ok(text) => params.extend(parse_form(text)),
            Err(_) => return (params, Some("invalid_form_data")),
        }
    }
    (params, None)
}

/// Parses URL-encoded fields into strings, then turns the fields in
/// [`JSON_FORM_FIELDS`] into JSON when they parse.
fn parse_form(text: &str) -> Map<String, Value> {
    let mut fields: Map<String, Value> = url::form_urlencoded::parse(text.as_bytes())
        .map(|(key, value)| (key.into_owned(), Value::String(value.into_owned())))
        .collect();
    for name in JSON_FORM_FIELDS {
        let parsed = fields
            .get(name)
            .and_then(Value::as_str)
            .and_then(|raw| serde_json::from_str::<Value>(raw).ok());
        if let Some(parsed) = parsed {
            fields.insert(name.to_string(), parsed);
        }
    }
    fields
}

fn required_token(method: &str) -> TokenKind {
    if method == "apps.connections.open" {
        TokenKind::App
    } else {
        TokenKind::Bot
    }
}

/// Checks the token against the method: `not_authed` without a token,
/// `not_allowed_token_type` for the other known token, `invalid_auth` for any
/// other value.
fn check_token(method: &str, token: Option<&str>) -> Result<(), &'static str> {
    let presented = match token {
        None | Some("") => return Err("not_authed"),
        Some(BOT_TOKEN) => TokenKind::Bot,
        Some(APP_TOKEN) => TokenKind::App,
        Some(_) => return Err("invalid_auth"),
    };
    if presented == required_token(method) {
        Ok(())
    } else {
        Err("not_allowed_token_type")
    }
}

// NOTE: unknown methods get `unknown_method` with HTTP 200; Slack's HTTP
// status for an unknown method was not checked.
fn run_method(
    state: &mut FakeState,
    base_url: &str,
    method: &str,
    params: &Map<String, Value>,
) -> MethodResult {
    match method {
        "auth.test" => Ok(auth_test()),
        "chat.postMessage" => post_message(state, params),
        "chat.update" => update_message(state, params),
        "chat.postEphemeral" => post_ephemeral(state, params),
        "files.getUploadURLExternal" => get_upload_url(state, base_url, params),
        "files.completeUploadExternal" => complete_upload(state, params),
        "usergroups.users.list" => usergroup_users(state, params),
        "apps.connections.open" => Ok(open_connection(state, base_url)),
        _ => Err("unknown_method"),
    }
}

fn string_param<'a>(params: &'a Map<String, Value>, name: &str) -> Option<&'a str> {
    params
        .get(name)
        .and_then(Value::as_str)
        .filter(|value| !value.is_empty())
}

fn object(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(fields) => fields,
        _ => unreachable!("callers pass JSON objects"),
    }
}

fn auth_test() -> Map<String, Value> {
    object(json!({
        "url": format!("https://{TEAM_DOMAIN}.slack.com/"),
        "team": "Fake Workspace",
        "user": "scalebot",
        "team_id": TEAM_ID,
        "user_id": BOT_USER_ID,
        "bot_id": BOT_ID,
        "is_enterprise_install": false,
    }))
}

/// Checks `channel` and the message content as `chat.postMessage`,
/// `chat.update` and `chat.postEphemeral` do.
fn checked_content<'a>(
    state: &FakeState,
    params: &'a Map<String, Value>,
) -> Result<(&'a str, Option<&'a str>, Option<&'a Value>), &'static str> {
    let channel = string_param(params, "channel").ok_or("channel_not_found")?;
    if !state.channel_exists(channel) {
        return Err("channel_not_found");
    }
    let text = params.get("text").and_then(Value::as_str);
    let blocks = params.get("blocks").filter(|blocks| !blocks.is_null());
    check_message(text, blocks)?;
    Ok((channel, text, blocks))
}

fn message_json(message: &StoredMessage) -> Value {
    let mut fields = json!({
        "type": "message",
        "user": BOT_USER_ID,
        "bot_id": BOT_ID,
        "team": TEAM_ID,
        "ts": message.ts,
        "text": message.text.clone().unwrap_or_default(),
    });
    if let Some(blocks) = &message.blocks {
        fields["blocks"] = blocks.clone();
    }
    if let Some(thread_ts) = &message.thread_ts {
        fields["thread_ts"] = Value::String(thread_ts.clone());
    }
    fields
}

fn post_message(state: &mut FakeState, params: &Map<String, Value>) -> MethodResult {
    let (channel, text, blocks) = checked_content(state, params)?;
    let message = StoredMessage {
        channel: channel.to_string(),
        ts: state.next_ts(),
        thread_ts: string_param(params, "thread_ts").map(str::to_string),
        text: text.map(str::to_string),
        blocks: blocks.cloned(),
        file_ids: Vec::new(),
        edits: 0,
    };
    let response = json!({
        "channel": message.channel,
        "ts": message.ts,
        "message": message_json(&message),
    });
    push_bounded(&mut state.messages, message, MAX_STORED_ITEMS);
    Ok(object(response))
}

/// Replaces the text and blocks that the call provides; a field left out
/// keeps its previous value, and an empty `blocks` array removes the blocks.
fn update_message(state: &mut FakeState, params: &Map<String, Value>) -> MethodResult {
    let channel = string_param(params, "channel").ok_or("channel_not_found")?;
    let ts = string_param(params, "ts").ok_or("message_not_found")?;
    let index = state
        .messages
        .iter()
        .position(|message| message.channel == channel && message.ts == ts)
        .ok_or("message_not_found")?;
    let (_, text, blocks) = checked_content(state, params)?;
    let (text, blocks) = (text.map(str::to_string), blocks.cloned());
    let message = &mut state.messages[index];
    if text.is_some() {
        message.text = text;
    }
    match blocks {
        Some(Value::Array(list)) if list.is_empty() => message.blocks = None,
        Some(blocks) => message.blocks = Some(blocks),
        None => {}
    }
    message.edits += 1;
    Ok(object(json!({
        "channel": message.channel,
        "ts": message.ts,
        "text": message.text.clone().unwrap_or_default(),
        "message": message_json(message),
    })))
}

fn post_ephemeral(state: &mut FakeState, params: &Map<String, Value>) -> MethodResult {
    let user = string_param(params, "user").ok_or("user_not_found")?;
    let (channel, text, blocks) = checked_content(state, params)?;
    let message = EphemeralMessage {
        channel: channel.to_string(),
        user: user.to_string(),
        message_ts: state.next_ts(),
        thread_ts: string_param(params, "thread_ts").map(str::to_string),
        text: text.map(str::to_string),
        blocks: blocks.cloned(),
    };
    let response = json!({"message_ts": message.message_ts});
    push_bounded(&mut state.ephemeral, message, MAX_STORED_ITEMS);
    Ok(object(response))
}

/// `length` arrives as a JSON number, or as a string from a query or form.
fn length_param(params: &Map<String, Value>) -> Option<u64> {
    match params.get("length")? {
        Value::Number(number) => number.as_u64(),
        Value::String(text) => text.parse().ok(),
        _ => None,
    }
}

fn get_upload_url(
    state: &mut FakeState,
    base_url: &str,
    params: &Map<String, Value>,
) -> MethodResult {
    let filename = string_param(params, "filename").ok_or("invalid_arguments")?;
    // Slack returns `missing_argument` for a missing or zero length.
    let length = length_param(params)
        .filter(|length| *length > 0)
        .ok_or("missing_argument")?;
    let file_id = state.next_file_id();
    let upload = Upload {
        file_id: file_id.clone(),
        filename: filename.to_string(),
        declared_length: length,
        content: None,
        content_type: None,
        completed: None,
    };
    push_bounded(&mut state.uploads, upload, MAX_STORED_ITEMS);
    Ok(object(json!({
        "upload_url": format!("{base_url}/upload/{file_id}"),
        "file_id": file_id,
    })))
}

/// Shares uploaded files. Without `channel_id` (or `channels`) the files
/// stay private, as in Slack. With one, the fake also stores a message in
/// that channel (or thread) that carries `initial_comment` and the file ids.
// NOTE: a file id whose bytes were never posted gets `file_not_found`; the
// code Slack returns in that case was not verified.
fn complete_upload(state: &mut FakeState, params: &Map<String, Value>) -> MethodResult {
    let files = params
        .get("files")
        .and_then(Value::as_array)
        .filter(|files| !files.is_empty())
        .ok_or("invalid_arguments")?;
    let channel = string_param(params, "channel_id")
        .or_else(|| string_param(params, "channels").and_then(|list| list.split(',').next()));
    if channel.is_some_and(|channel| !state.channel_exists(channel)) {
        return Err("channel_not_found");
    }
    let thread_ts = string_param(params, "thread_ts").map(str::to_string);
    let initial_comment = string_param(params, "initial_comment").map(str::to_string);

    let mut requested = Vec::new();
    for file in files {
        let id = file
            .get("id")
            .and_then(Value::as_str)
            .ok_or("invalid_arguments")?;
        let title = file
            .get("title")
            .and_then(Value::as_str)
            .map(str::to_string);
        let uploaded = state
            .uploads
            .iter()
            .any(|upload| upload.file_id == id && upload.content.is_some());
        if !uploaded {
            return Err("file_not_found");
        }
        requested.push((id.to_string(), title));
    }

    let mut shared_files = Vec::new();
    for (id, title) in &requested {
        let upload = state
            .uploads
            .iter_mut()
            .find(|upload| &upload.file_id == id)
            .expect("checked above");
        upload.completed = Some(CompletedUpload {
            title: title.clone(),
            channel: channel.map(str::to_string),
            thread_ts: thread_ts.clone(),
            initial_comment: initial_comment.clone(),
        });
        let title = title.clone().unwrap_or_else(|| upload.filename.clone());
        shared_files.push(json!({"id": id, "title": title, "name": upload.filename}));
    }

    if let Some(channel) = channel {
        let message = StoredMessage {
            channel: channel.to_string(),
            ts: state.next_ts(),
            thread_ts,
            text: initial_comment,
            blocks: None,
            file_ids: requested.into_iter().map(|(id, _)| id).collect(),
            edits: 0,
        };
        push_bounded(&mut state.messages, message, MAX_STORED_ITEMS);
    }
    Ok(object(json!({"files": shared_files})))
}

fn usergroup_users(state: &FakeState, params: &Map<String, Value>) -> MethodResult {
    let usergroup = string_param(params, "usergroup").ok_or("invalid_arguments")?;
    let users = state.usergroups.get(usergroup).ok_or("no_such_subteam")?;
    Ok(object(json!({"users": users})))
}

/// Issues a single-use ticket for `/socket`.
fn open_connection(state: &mut FakeState, base_url: &str) -> Map<String, Value> {
    state.last_ticket += 1;
    let ticket = state.last_ticket;
    state.open_tickets.insert(ticket);
    let socket_base = base_url.replacen("http://", "ws://", 1);
    object(json!({"url": format!("{socket_base}/socket?ticket={ticket}")}))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_checks_follow_method() {
        assert_eq!(check_token("chat.postMessage", Some(BOT_TOKEN)), Ok(()));
        assert_eq!(check_token("chat.postMessage", None), Err("not_authed"));
        assert_eq!(
            check_token("chat.postMessage", Some("xoxb-other")),
            Err("invalid_auth")
        );
        assert_eq!(
            check_token("chat.postMessage", Some(APP_TOKEN)),
            Err("not_allowed_token_type")
        );
        assert_eq!(
            check_token("apps.connections.open", Some(APP_TOKEN)),
            Ok(())
        );
        assert_eq!(
            check_token("apps.connections.open", Some(BOT_TOKEN)),
            Err("not_allowed_token_type")
        );
    }

    #[test]
    fn form_fields_with_json_are_parsed() {
        let fields =
            parse_form("channel=C1&blocks=%5B%7B%22type%22%3A%22divider%22%7D%5D&text=a+b");
        assert_eq!(fields["channel"], "C1");
        assert_eq!(fields["text"], "a b");
        assert_eq!(fields["blocks"], json!([{"type": "divider"}]));
    }
}
