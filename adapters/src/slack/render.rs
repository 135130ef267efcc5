//! Block Kit messages within Slack's limits: section text 3000 characters,
//! section fields 10 of 2000, 50 blocks per message, and about 13,200
//! characters of block text per message, beyond which `chat.postMessage`
//! returns `msg_blocks_too_long` (observed, not documented).

use commands::engine::Decided;
use commands::preview::Impact;
use serde_json::{Value, json};

use crate::chat::{self, numbered_steps, preview_fields, split_text, truncate};

/// Maximum characters of one section's text.
pub const SECTION_TEXT_MAX: usize = 3000;
/// Maximum characters of one section field.
pub const FIELD_TEXT_MAX: usize = 2000;
/// Maximum characters of a header block.
pub const HEADER_TEXT_MAX: usize = 150;
/// Maximum blocks in one message.
pub const BLOCKS_MAX: usize = 50;
/// Characters of block text the bot puts in one message. It stays below
/// the ~13,200 at which Slack returns `msg_blocks_too_long`.
pub const MESSAGE_TEXT_BUDGET: usize = 12_000;
/// Characters of the top-level `text`, the notification fallback.
pub const FALLBACK_TEXT_MAX: usize = 300;

/// Block id of the status line that is rewritten as the request moves on.
pub const STATUS_BLOCK: &str = "scalebot_status";
/// Block id of the Approve and Reject buttons.
pub const DECISION_BLOCK: &str = "scalebot_decision";
pub const APPROVE_ACTION: &str = "scalebot_approve";
pub const REJECT_ACTION: &str = "scalebot_reject";

fn mrkdwn(text: &str) -> Value {
    json!({ "type": "mrkdwn", "text": text })
}

fn plain(text: &str) -> Value {
    json!({ "type": "plain_text", "text": text, "emoji": true })
}

/// Escapes the three characters Slack's mrkdwn treats as control
/// characters, so user text cannot form mentions or links. Identities stay
/// as written (`slack:U…`): turning them into mentions would also turn any
/// identity a user typed into a reason into a ping.
pub fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// Reverses the escaping Slack applies to `&`, `<` and `>` in the text of
/// slash commands and messages, so the engine gets the text as the user typed it.
pub fn unescape(text: &str) -> String {
    text.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

/// Builds the preview of a pending request: header, fields, steps, notes, status
/// line and the Approve and Reject buttons whose value is the request id.
pub fn preview_blocks(request_id: &str, impact: &Impact, requester: &str) -> Vec<Value> {
    let mut blocks = vec![json!({
        "type": "header",
        "text": plain(&truncate(&impact.action, HEADER_TEXT_MAX)),
    })];
    let fields: Vec<Value> = preview_fields(impact)
        .into_iter()
        .take(10)
        .map(|field| {
            let text = format!("*{}*\n{}", field.label, escape(&field.value));
            mrkdwn(&truncate(&text, FIELD_TEXT_MAX))
        })
        .collect();
    blocks.push(json!({ "type": "section", "fields": fields }));
    let steps = format!("*Steps*\n{}", escape(&numbered_steps(&impact.steps)));
    blocks.push(json!({
        "type": "section",
        "text": mrkdwn(&truncate(&steps, SECTION_TEXT_MAX)),
    }));
    if !impact.notes.is_empty() {
        let notes: Vec<String> = impact
            .notes
            .iter()
            .map(|n| format!("• {}", escape(n)))
            .collect();
        blocks.push(json!({
            "type": "section",
            "text": mrkdwn(&truncate(&format!("*Notes*\n{}", notes.join("\n")), SECTION_TEXT_MAX)),
        }));
    }
    let status = format!(
        "Request `{request_id}` by <@{requester}>: waiting for approval until {}",
        chat::format_expiry(impact.expires_at_ms)
    );
    blocks.push(status_block(&status));
    blocks.push(json!({
        "type": "actions",
        "block_id": DECISION_BLOCK,
        "elements": [
            {
                "type": "button",
                "action_id": APPROVE_ACTION,
                "style": "primary",
                "text": plain("Approve"),
                "value": request_id,
            },
            {
                "type": "button",
                "action_id": REJECT_ACTION,
                "style": "danger",
                "text": plain("Reject"),
                "value": request_id,
            },
        ],
    }));
    blocks
}

fn status_block(text: &str) -> Value {
    json!({
        "type": "context",
        "block_id": STATUS_BLOCK,
        "elements": [mrkdwn(&truncate(text, FIELD_TEXT_MAX))],
    })
}

/// Rewrites the status line of a stored preview and, once the request is
/// decided, removes the buttons.
pub fn with_status(blocks: &[Value], status: &str, remove_buttons: bool) -> Vec<Value> {
    blocks
        .iter()
        .filter(|block| {
            !(remove_buttons
                && block.get("block_id").and_then(Value::as_str) == Some(DECISION_BLOCK))
        })
        .map(|block| {
            if block.get("block_id").and_then(Value::as_str) == Some(STATUS_BLOCK) {
                status_block(status)
            } else {
                block.clone()
            }
        })
        .collect()
}

/// Returns the status line text after a decision.
pub fn decided_status(decision: Decided, text: &str) -> String {
    let mark = match decision {
        Decided::Approved => ":white_check_mark:",
        Decided::Rejected => ":x:",
        Decided::Cancelled => ":heavy_minus_sign:",
        Decided::Expired => ":hourglass:",
    };
    format!("{mark} {}", escape(text))
}

/// Delivery form of a text reply: as section blocks, or, when longer than one
/// message may carry, as a file.
#[derive(Debug, PartialEq)]
pub enum TextMessage {
    Blocks(Vec<Value>),
    File,
}

/// Lays out `text` as sections of preformatted text within the limits.
pub fn text_message(text: &str) -> TextMessage {
    // Each section wraps its piece in ``` fences, 6 characters more.
    let pieces = split_text(&escape(text), SECTION_TEXT_MAX - 6);
    let total: usize = pieces.iter().map(|p| p.chars().count() + 6).sum();
    if pieces.len() > BLOCKS_MAX || total > MESSAGE_TEXT_BUDGET {
        return TextMessage::File;
    }
    TextMessage::Blocks(
        pieces
            .iter()
            .map(|piece| json!({ "type": "section", "text": mrkdwn(&format!("```{piece}```")) }))
            .collect(),
    )
}

/// Sums the characters of every text in `blocks`, as Slack's cumulative
/// limit counts them.
pub fn block_text_chars(blocks: &[Value]) -> usize {
    fn walk(value: &Value) -> usize {
        match value {
            Value::Object(map) => map
                .iter()
                .map(|(key, value)| match (key.as_str(), value) {
                    ("text", Value::String(text)) => text.chars().count(),
                    _ => walk(value),
                })
                .sum(),
            Value::Array(items) => items.iter().map(walk).sum(),
            _ => 0,
        }
    }
    blocks.iter().map(walk).sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_message_respects_section_and_total_limits() {
        let text: String = (0..100)
            .map(|i| format!("synapse-{i:03} Running 1/1 node-{}", i % 3))
            .collect::<Vec<_>>()
            .join("\n");
        assert!(text.len() > 3000);
        let TextMessage::Blocks(blocks) = text_message(&text) else {
            panic!("a 3.5k text fits in one message");
        };
        assert!(blocks.len() > 1);
        for block in &blocks {
            let section = block["text"]["text"].as_str().unwrap();
            assert!(
                section.chars().count() <= SECTION_TEXT_MAX,
                "{}",
                section.len()
            );
        }
        assert!(block_text_chars(&blocks) <= MESSAGE_TEXT_BUDGET);
    }

    #[test]
    fn text_message_uses_a_file_beyond_the_budget() {
        let text = "x".repeat(80).repeat(200);
        assert_eq!(text_message(&text), TextMessage::File);
    }

    #[test]
    fn escape_neutralises_mentions() {
        assert_eq!(
            escape("<!channel> & <@U1>"),
            "&lt;!channel&gt; &amp; &lt;@U1&gt;"
        );
        assert_eq!(escape("ask slack:U0VICTIM01"), "ask slack:U0VICTIM01");
    }

    #[test]
    fn unescape_reverses_slack_escaping() {
        assert_eq!(unescape(&escape("a < b && c > d")), "a < b && c > d");
        assert_eq!(unescape("&amp;lt;"), "&lt;");
    }

    #[test]
    fn with_status_removes_buttons_once_decided() {
        let blocks = vec![
            json!({"type": "header", "text": plain("Scale")}),
            status_block("waiting"),
            json!({"type": "actions", "block_id": DECISION_BLOCK, "elements": []}),
        ];
        let pending = with_status(&blocks, "1 of 2 approvals", false);
        assert_eq!(pending.len(), 3);
        let decided = with_status(&blocks, "approved", true);
        assert_eq!(decided.len(), 2);
        assert_eq!(decided[1]["elements"][0]["text"], "approved");
    }
}
