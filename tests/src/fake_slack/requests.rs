//! Requests that Slack sends to a bot in HTTP mode: the request signature,
//! slash command form bodies and `block_actions` payloads, for tests that post
//! them to the bot themselves.

use hmac::{Hmac, KeyInit, Mac};
use serde_json::{Value, json};
use sha2::Sha256;

use super::{APP_ID, BOT_ID, BOT_USER_ID, TEAM_DOMAIN, TEAM_ID};

/// Header that carries the request signature.
pub const SIGNATURE_HEADER: &str = "X-Slack-Signature";
/// Header that carries the Unix time, in seconds, that the signature covers.
pub const TIMESTAMP_HEADER: &str = "X-Slack-Request-Timestamp";

/// Signs a request body as Slack does: `v0=` followed by the hex HMAC-SHA256,
/// keyed with the signing secret as UTF-8 bytes, of `v0:{timestamp}:{body}`.
pub fn sign(secret: &str, timestamp: i64, body: &str) -> String {
    let mut mac =
        Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC accepts keys of any size");
    mac.update(format!("v0:{timestamp}:{body}").as_bytes());
    format!("v0={}", hex::encode(mac.finalize().into_bytes()))
}

/// Current Unix time in seconds, as Slack puts it in [`TIMESTAMP_HEADER`].
/// Bots reject a timestamp more than five minutes away from their clock.
pub fn now_timestamp() -> i64 {
    let elapsed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("system clock is after 1970");
    i64::try_from(elapsed.as_secs()).expect("Unix time fits in i64")
}

/// Builds the `application/x-www-form-urlencoded` body of a slash command,
/// with Slack's field order. Team and app ids are the fake's constants.
pub fn slash_command_form(
    command: &str,
    text: &str,
    user_id: &str,
    channel_id: &str,
    trigger_id: &str,
    response_url: &str,
) -> String {
    url::form_urlencoded::Serializer::new(String::new())
        .append_pair("token", "fake-verification-token")
        .append_pair("team_id", TEAM_ID)
        .append_pair("team_domain", TEAM_DOMAIN)
        .append_pair("channel_id", channel_id)
        .append_pair("channel_name", "fake-channel")
        .append_pair("user_id", user_id)
        .append_pair("user_name", user_id)
        .append_pair("command", command)
        .append_pair("text", text)
        .append_pair("response_url", response_url)
        .append_pair("trigger_id", trigger_id)
        .append_pair("api_app_id", APP_ID)
        .append_pair("is_enterprise_install", "false")
        .finish()
}

/// Builds the JSON payload of a slash command as Socket Mode delivers it in a
/// `slash_commands` envelope: the same fields as the HTTP form body.
pub fn slash_command_payload(
    command: &str,
    text: &str,
    user_id: &str,
    channel_id: &str,
    trigger_id: &str,
    response_url: &str,
) -> Value {
    json!({
        "token": "fake-verification-token",
        "team_id": TEAM_ID,
        "team_domain": TEAM_DOMAIN,
        "channel_id": channel_id,
        "channel_name": "fake-channel",
        "user_id": user_id,
        "user_name": user_id,
        "command": command,
        "text": text,
        "response_url": response_url,
        "trigger_id": trigger_id,
        "api_app_id": APP_ID,
    })
}

/// Builds a `block_actions` payload for a click on a button with `action_id`
/// and `value` in the bot's message `message_ts` in `channel_id`. The block id
/// is `actions`; the clicked message is a bot message with no blocks.
pub fn block_actions_payload(
    user_id: &str,
    channel_id: &str,
    message_ts: &str,
    action_id: &str,
    value: &str,
    response_url: &str,
    trigger_id: &str,
) -> Value {
    json!({
        "type": "block_actions",
        "user": {
            "id": user_id,
            "username": user_id,
            "name": user_id,
            "team_id": TEAM_ID,
        },
        "api_app_id": APP_ID,
        "token": "fake-verification-token",
        "container": {
            "type": "message",
            "message_ts": message_ts,
            "channel_id": channel_id,
            "is_ephemeral": false,
        },
        "trigger_id": trigger_id,
        "team": {"id": TEAM_ID, "domain": TEAM_DOMAIN},
        "channel": {"id": channel_id, "name": "fake-channel"},
        "message": {
            "bot_id": BOT_ID,
            "type": "message",
            "text": "",
            "user": BOT_USER_ID,
            "ts": message_ts,
            "team": TEAM_ID,
        },
        "response_url": response_url,
        "actions": [{
            "action_id": action_id,
            "block_id": "actions",
            "text": {"type": "plain_text", "text": action_id, "emoji": true},
            "value": value,
            "type": "button",
            "action_ts": format!("{}.000000", now_timestamp()),
        }],
    })
}

/// Builds the form body that carries an interactive payload over HTTP:
/// `payload=<URL-encoded JSON>`.
pub fn block_actions_form(payload: &Value) -> String {
    url::form_urlencoded::Serializer::new(String::new())
        .append_pair("payload", &payload.to_string())
        .finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Slack's published example from "Verifying requests from Slack"; the
    /// secret and ids are fictional documentation data.
    const VECTOR_SECRET: &str = "8f742231b10e8888abcd99yyyzzz85a5";
    const VECTOR_TIMESTAMP: i64 = 1531420618;
    const VECTOR_BODY: &str = "token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c";
    const VECTOR_SIGNATURE: &str =
        "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503";

    #[test]
    fn sign_matches_published_vector() {
        assert_eq!(
            sign(VECTOR_SECRET, VECTOR_TIMESTAMP, VECTOR_BODY),
            VECTOR_SIGNATURE
        );
    }

    #[test]
    fn sign_depends_on_timestamp_and_body() {
        let reference = sign(VECTOR_SECRET, VECTOR_TIMESTAMP, VECTOR_BODY);
        assert_ne!(
            sign(VECTOR_SECRET, VECTOR_TIMESTAMP + 1, VECTOR_BODY),
            reference
        );
        assert_ne!(
            sign(VECTOR_SECRET, VECTOR_TIMESTAMP, &format!("{VECTOR_BODY}x")),
            reference
        );
    }

    #[test]
    fn slash_command_form_round_trips() {
        let body = slash_command_form(
            "/scale",
            "payments to 5 replicas",
            "U1",
            "C1",
            "T.1",
            "http://127.0.0.1:1/response/r1",
        );
        let fields: std::collections::HashMap<String, String> =
            url::form_urlencoded::parse(body.as_bytes())
                .into_owned()
                .collect();
        assert_eq!(fields["command"], "/scale");
        assert_eq!(fields["text"], "payments to 5 replicas");
        assert_eq!(fields["user_id"], "U1");
        assert_eq!(fields["channel_id"], "C1");
        assert_eq!(fields["response_url"], "http://127.0.0.1:1/response/r1");
        assert!(body.contains("command=%2Fscale"), "body: {body}");
    }

    #[test]
    fn block_actions_form_carries_payload() {
        let payload = block_actions_payload("U1", "C1", "1.000100", "approve", "r1", "u", "t");
        let body = block_actions_form(&payload);
        let (key, value) = url::form_urlencoded::parse(body.as_bytes())
            .next()
            .expect("one field");
        assert_eq!(key, "payload");
        let decoded: Value = serde_json::from_str(&value).expect("payload is JSON");
        assert_eq!(decoded, payload);
        assert_eq!(decoded["actions"][0]["action_id"], "approve");
        assert_eq!(decoded["container"]["message_ts"], "1.000100");
    }
}
