//! Slack payloads the bot accepts, read into one enum whether they came
//! over HTTP or Socket Mode: slash commands (form fields), `block_actions`
//! interactions (JSON, in a `payload` form field over HTTP) and Events API
//! callbacks (JSON).

use serde::Deserialize;
use serde_json::Value;

/// One event from Slack, reduced to what the bot uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Inbound {
    Command {
        command: String,
        text: String,
        user: String,
        channel: String,
        trigger_id: String,
    },
    /// A button click.
    Action {
        user: String,
        channel: String,
        /// `ts` of the message that contains the button.
        message_ts: Option<String>,
        action_id: String,
        value: String,
        trigger_id: String,
    },
    /// A message that mentions the bot (`app_mention`).
    Mention {
        event_id: String,
        user: String,
        channel: String,
        ts: String,
        text: String,
    },
    /// The Events API's URL check when the request URL is saved.
    UrlVerification { challenge: String },
    /// A valid payload the bot does not act on, with the reason for logs.
    Ignored(String),
}

#[derive(Debug, Deserialize)]
struct CommandForm {
    command: String,
    #[serde(default)]
    text: String,
    user_id: String,
    channel_id: String,
    trigger_id: String,
}

/// Reads a slash command from its form fields.
pub fn command_from_form(body: &str) -> Result<Inbound, String> {
    let form: CommandForm = serde_urlencoded::from_str(body)
        .map_err(|error| format!("slash command form is invalid: {error}"))?;
    command_from(form)
}

/// Reads a slash command from the JSON payload of a Socket Mode envelope.
pub fn command_from_json(payload: Value) -> Result<Inbound, String> {
    let form: CommandForm = serde_json::from_value(payload)
        .map_err(|error| format!("slash command payload is invalid: {error}"))?;
    command_from(form)
}

fn command_from(form: CommandForm) -> Result<Inbound, String> {
    Ok(Inbound::Command {
        command: form.command,
        text: super::render::unescape(&form.text),
        user: form.user_id,
        channel: form.channel_id,
        trigger_id: form.trigger_id,
    })
}

#[derive(Debug, Deserialize)]
struct PayloadForm {
    payload: String,
}

#[derive(Debug, Deserialize)]
struct Interaction {
    #[serde(rename = "type")]
    kind: String,
    user: Option<IdOnly>,
    channel: Option<IdOnly>,
    container: Option<Container>,
    #[serde(default)]
    trigger_id: String,
    #[serde(default)]
    actions: Vec<Action>,
}

#[derive(Debug, Deserialize)]
struct IdOnly {
    id: String,
}

#[derive(Debug, Deserialize)]
struct Container {
    message_ts: Option<String>,
    channel_id: Option<String>,
}

#[derive(Debug, Deserialize)]
struct Action {
    action_id: String,
    #[serde(default)]
    value: Option<String>,
}

/// Reads an interaction from an HTTP form body (`payload=<JSON>`).
pub fn interaction_from_form(body: &str) -> Result<Inbound, String> {
    let form: PayloadForm = serde_urlencoded::from_str(body)
        .map_err(|error| format!("interaction form has no payload field: {error}"))?;
    let payload: Value = serde_json::from_str(&form.payload)
        .map_err(|error| format!("interaction payload is not JSON: {error}"))?;
    interaction_from_json(payload)
}

/// Reads an interaction from its JSON payload.
pub fn interaction_from_json(payload: Value) -> Result<Inbound, String> {
    let interaction: Interaction = serde_json::from_value(payload)
        .map_err(|error| format!("interaction payload is invalid: {error}"))?;
    if interaction.kind != "block_actions" {
        return Ok(Inbound::Ignored(format!(
            "interaction type {:?}",
            interaction.kind
        )));
    }
    let user = interaction
        .user
        .map(|u| u.id)
        .ok_or("block_actions payload has no user")?;
    let container = interaction.container;
    let channel = interaction
        .channel
        .map(|c| c.id)
        .or_else(|| container.as_ref().and_then(|c| c.channel_id.clone()))
        .ok_or("block_actions payload has no channel")?;
    let Some(action) = interaction.actions.into_iter().next() else {
        return Ok(Inbound::Ignored(
            "block_actions without actions".to_string(),
        ));
    };
    Ok(Inbound::Action {
        user,
        channel,
        message_ts: container.and_then(|c| c.message_ts),
        action_id: action.action_id,
        value: action.value.unwrap_or_default(),
        trigger_id: interaction.trigger_id,
    })
}

/// Reads an Events API body: the URL check or an `event_callback`.
pub fn event_from_json(body: Value) -> Result<Inbound, String> {
    match body.get("type").and_then(Value::as_str) {
        Some("url_verification") => {
            let challenge = body
                .get("challenge")
                .and_then(Value::as_str)
                .ok_or("url_verification without challenge")?;
            Ok(Inbound::UrlVerification {
                challenge: challenge.to_string(),
            })
        }
        Some("event_callback") => {
            let event_id = text_of(&body, "event_id").ok_or("event_callback without event_id")?;
            let event = body.get("event").ok_or("event_callback without event")?;
            let kind = text_of(event, "type").unwrap_or_default();
            if kind != "app_mention" {
                return Ok(Inbound::Ignored(format!("event type {kind:?}")));
            }
            if event.get("bot_id").is_some() {
                return Ok(Inbound::Ignored("mention by a bot".to_string()));
            }
            Ok(Inbound::Mention {
                event_id,
                user: text_of(event, "user").ok_or("app_mention without user")?,
                channel: text_of(event, "channel").ok_or("app_mention without channel")?,
                ts: text_of(event, "ts").ok_or("app_mention without ts")?,
                text: super::render::unescape(&text_of(event, "text").unwrap_or_default()),
            })
        }
        other => Ok(Inbound::Ignored(format!("Events API body type {other:?}"))),
    }
}

fn text_of(value: &Value, key: &str) -> Option<String> {
    value.get(key).and_then(Value::as_str).map(str::to_string)
}

/// Removes leading `<@U…>` mentions of the bot from a message text.
pub fn strip_mentions(text: &str) -> &str {
    let mut rest = text.trim_start();
    while rest.starts_with("<@") {
        match rest.find('>') {
            Some(end) => rest = rest[end + 1..].trim_start(),
            None => break,
        }
    }
    rest.trim()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn command_form_is_read() {
        let body = "token=t&team_id=T00000001&channel_id=C00000001&user_id=U00000001&user_name=user1&command=%2Fscale&text=synapse+4&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2F1%2F2&trigger_id=13345224609.738474920.8088930838d88f008e0";
        let inbound = command_from_form(body).unwrap();
        assert_eq!(
            inbound,
            Inbound::Command {
                command: "/scale".to_string(),
                text: "synapse 4".to_string(),
                user: "U00000001".to_string(),
                channel: "C00000001".to_string(),
                trigger_id: "13345224609.738474920.8088930838d88f008e0".to_string(),
            }
        );
    }

    #[test]
    fn command_form_without_user_is_rejected() {
        let error =
            command_from_form("command=%2Fscale&text=x&channel_id=C1&trigger_id=1").unwrap_err();
        assert!(error.contains("user_id"), "{error}");
    }

    #[test]
    fn block_actions_payload_is_read() {
        let payload = json!({
            "type": "block_actions",
            "user": {"id": "U00000002", "username": "sre"},
            "container": {"type": "message", "message_ts": "1600857119.015400", "channel_id": "C00000001"},
            "trigger_id": "1388105719492.1379717998065.9bc163894734c1f415a2c504e81dec91",
            "channel": {"id": "C00000001", "name": "ops"},
            "message": {"ts": "1600857119.015400", "blocks": [{"type": "rich_text", "elements": []}]},
            "actions": [{"action_id": "scalebot_approve", "block_id": "b", "value": "r-1", "type": "button", "action_ts": "1600857126.868122"}]
        });
        let form = format!(
            "payload={}",
            url::form_urlencoded::byte_serialize(payload.to_string().as_bytes())
                .collect::<String>()
        );
        let inbound = interaction_from_form(&form).unwrap();
        assert_eq!(
            inbound,
            Inbound::Action {
                user: "U00000002".to_string(),
                channel: "C00000001".to_string(),
                message_ts: Some("1600857119.015400".to_string()),
                action_id: "scalebot_approve".to_string(),
                value: "r-1".to_string(),
                trigger_id: "1388105719492.1379717998065.9bc163894734c1f415a2c504e81dec91"
                    .to_string(),
            }
        );
    }

    #[test]
    fn other_interactions_are_ignored() {
        let inbound = interaction_from_json(json!({"type": "view_submission"})).unwrap();
        assert!(matches!(inbound, Inbound::Ignored(_)));
    }

    #[test]
    fn app_mention_is_read_and_url_check_answered() {
        let body = json!({
            "type": "event_callback",
            "event_id": "Ev123",
            "event": {"type": "app_mention", "user": "U1", "channel": "C1", "ts": "1.2", "text": "<@UBOT> scale synapse 4"}
        });
        let Inbound::Mention { text, event_id, .. } = event_from_json(body).unwrap() else {
            panic!("expected a mention");
        };
        assert_eq!(event_id, "Ev123");
        assert_eq!(strip_mentions(&text), "scale synapse 4");
        let check =
            event_from_json(json!({"type": "url_verification", "challenge": "abc"})).unwrap();
        assert_eq!(
            check,
            Inbound::UrlVerification {
                challenge: "abc".to_string()
            }
        );
    }
}
