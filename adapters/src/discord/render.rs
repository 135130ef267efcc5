//! Message bodies within Discord's limits: the preview embed, its edits
//! after a decision or a result, and text split into messages or attached
//! as a file.
//!
//! Limits from Discord's message resource documentation: content has at
//! most 2,000 characters. An embed has a title of 256, a description of
//! 4,096, up to 25 fields with names of 256 and values of 1,024, a footer
//! of 2,048, and 6,000 characters in all. Discord rejects a message over
//! any limit with 400 and code 50035.

use commands::engine::Decided;
use commands::preview::Impact;
use serde_json::{Value, json};

use crate::chat::{numbered_steps, preview_fields, split_text, truncate};

pub const MAX_CONTENT_CHARS: usize = 2000;
pub const MAX_TITLE_CHARS: usize = 256;
pub const MAX_DESCRIPTION_CHARS: usize = 4096;
pub const MAX_FIELDS: usize = 25;
pub const MAX_FIELD_NAME_CHARS: usize = 256;
pub const MAX_FIELD_VALUE_CHARS: usize = 1024;
pub const MAX_FOOTER_CHARS: usize = 2048;
pub const MAX_EMBED_TOTAL_CHARS: usize = 6000;

/// Text longer than this goes into an attached file instead of a series of
/// messages: five full messages are already hard to read in a thread.
pub const MAX_SPLIT_CHARS: usize = 5 * MAX_CONTENT_CHARS;

/// Reaction that approves a preview.
pub const APPROVE_EMOJI: &str = "✅";
/// Reaction that rejects a preview.
pub const REJECT_EMOJI: &str = "❌";

/// Message flag that shows a message only to the user of an interaction.
pub const EPHEMERAL: u64 = 1 << 6;

const COLOR_PENDING: u32 = 0x00F1_C40F;
const COLOR_APPROVED: u32 = 0x002E_86C1;
const COLOR_DONE: u32 = 0x0027_AE60;
const COLOR_FAILED: u32 = 0x00C0_392B;
const COLOR_CLOSED: u32 = 0x0095_A5A6;

/// No mention in a bot message pings anyone: users may put `@everyone` in
/// a reason that the bot repeats.
fn no_mentions() -> Value {
    json!({ "parse": [] })
}

/// Builds the preview of a pending request: a message body with one embed.
pub fn preview_message(request_id: &str, impact: &Impact) -> Value {
    let title = truncate(
        &format!("Request {request_id}: {}", impact.action),
        MAX_TITLE_CHARS,
    );
    let mut description = String::new();
    if !impact.risk.is_empty() {
        description.push_str(&format!("Risk: {}\n", impact.risk));
    }
    if !impact.steps.is_empty() {
        description.push_str("Steps:\n");
        description.push_str(&numbered_steps(&impact.steps));
        description.push('\n');
    }
    for note in &impact.notes {
        description.push_str(&format!("Note: {note}\n"));
    }
    let fields: Vec<Value> = preview_fields(impact)
        .into_iter()
        .take(MAX_FIELDS)
        .map(|field| field_value(field.label, &field.value, true))
        .collect();
    let footer = format!(
        "React {APPROVE_EMOJI} to approve or {REJECT_EMOJI} to reject, or type approve {request_id}"
    );
    let mut embed = json!({
        "title": title,
        "description": truncate(description.trim_end(), MAX_DESCRIPTION_CHARS),
        "color": COLOR_PENDING,
        "fields": fields,
        "footer": { "text": truncate(&footer, MAX_FOOTER_CHARS) },
    });
    fit_embed(&mut embed);
    json!({ "embeds": [embed], "allowed_mentions": no_mentions() })
}

fn field_value(name: &str, value: &str, inline: bool) -> Value {
    let value = if value.trim().is_empty() { "-" } else { value };
    json!({
        "name": truncate(name, MAX_FIELD_NAME_CHARS),
        "value": truncate(value, MAX_FIELD_VALUE_CHARS),
        "inline": inline,
    })
}

/// Outcome that an edit of the preview shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Decided(Decided),
    Finished { succeeded: bool },
}

/// Edits the first embed of a message body (as read back from Discord):
/// sets the field `name` to `text` and colors the embed for `outcome`.
/// The other fields stay. Returns `None` when the message has no embed.
pub fn mark_embed(message: &Value, name: &str, text: &str, outcome: Outcome) -> Option<Value> {
    let mut embed = message.get("embeds")?.as_array()?.first()?.clone();
    let color = match outcome {
        Outcome::Decided(Decided::Approved) => COLOR_APPROVED,
        Outcome::Decided(_) => COLOR_CLOSED,
        Outcome::Finished { succeeded: true } => COLOR_DONE,
        Outcome::Finished { succeeded: false } => COLOR_FAILED,
    };
    embed["color"] = json!(color);
    if matches!(outcome, Outcome::Decided(_)) {
        // The reactions no longer decide anything.
        embed["footer"] = json!({ "text": "Decided; reactions are no longer counted" });
    }
    set_field(&mut embed, name, text);
    fit_embed(&mut embed);
    Some(json!({ "embeds": [embed], "allowed_mentions": no_mentions() }))
}

/// Sets field `name` of an embed, replacing a field of that name or adding
/// one. When the embed has 25 fields already, the last one is replaced.
fn set_field(embed: &mut Value, name: &str, text: &str) {
    let field = field_value(name, text, false);
    if !embed.get("fields").is_some_and(Value::is_array) {
        embed["fields"] = json!([]);
    }
    let fields = embed["fields"].as_array_mut().expect("fields is an array");
    if let Some(existing) = fields
        .iter_mut()
        .find(|f| f.get("name").and_then(Value::as_str) == Some(name))
    {
        *existing = field;
    } else if fields.len() >= MAX_FIELDS {
        *fields.last_mut().expect("25 fields") = field;
    } else {
        fields.push(field);
    }
}

/// Counts the characters Discord adds up against the 6,000 limit.
pub fn embed_chars(embed: &Value) -> usize {
    let chars = |value: Option<&Value>| {
        value
            .and_then(Value::as_str)
            .map_or(0, |s| s.chars().count())
    };
    let mut total = chars(embed.get("title")) + chars(embed.get("description"));
    total += chars(embed.get("footer").and_then(|f| f.get("text")));
    total += chars(embed.get("author").and_then(|a| a.get("name")));
    for field in embed
        .get("fields")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        total += chars(field.get("name")) + chars(field.get("value"));
    }
    total
}

/// Cuts the description so that the embed stays within 6,000 characters.
/// Titles, fields and the footer are already within their own limits, and
/// 25 full fields with names and a title stay below 6,000 only with a short
/// description, so the description gives way first, then the field values.
fn fit_embed(embed: &mut Value) {
    let over = embed_chars(embed).saturating_sub(MAX_EMBED_TOTAL_CHARS);
    if over == 0 {
        return;
    }
    let description = embed
        .get("description")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    let keep = description.chars().count().saturating_sub(over + 1);
    embed["description"] = json!(truncate(&description, keep.max(1)));
    while embed_chars(embed) > MAX_EMBED_TOTAL_CHARS {
        let Some(fields) = embed.get_mut("fields").and_then(Value::as_array_mut) else {
            return;
        };
        let longest = fields.iter_mut().max_by_key(|f| {
            f.get("value")
                .and_then(Value::as_str)
                .map_or(0, |v| v.chars().count())
        });
        let Some(field) = longest else { return };
        let value = field["value"].as_str().unwrap_or("").to_string();
        let length = value.chars().count();
        if length <= 16 {
            return;
        }
        field["value"] = json!(truncate(&value, length / 2));
    }
}

/// Delivery form of a text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TextDelivery {
    /// Messages of at most 2,000 characters each, in order.
    Messages(Vec<String>),
    /// A short message with the full text attached as a file.
    File {
        content: String,
        filename: String,
        text: String,
    },
}

/// Splits `text` into messages, or attaches it as a file when it is longer
/// than [`MAX_SPLIT_CHARS`].
pub fn deliver_text(text: &str) -> TextDelivery {
    let text = if text.trim().is_empty() {
        "(empty)"
    } else {
        text
    };
    if text.chars().count() <= MAX_SPLIT_CHARS {
        return TextDelivery::Messages(split_text(text, MAX_CONTENT_CHARS));
    }
    let first_line = text.lines().next().unwrap_or("");
    let content = truncate(
        &format!(
            "{first_line}\n(full output of {} lines attached)",
            text.lines().count()
        ),
        MAX_CONTENT_CHARS,
    );
    TextDelivery::File {
        content,
        filename: "output.txt".to_string(),
        text: text.to_string(),
    }
}

/// Builds a plain message body with `content`, optionally as a reply to a
/// message.
pub fn text_message(content: &str, reply_to: Option<u64>) -> Value {
    let mut body = json!({
        "content": truncate(content, MAX_CONTENT_CHARS),
        "allowed_mentions": no_mentions(),
    });
    if let Some(message_id) = reply_to {
        body["message_reference"] = json!({
            "message_id": message_id.to_string(),
            "fail_if_not_exists": false,
        });
    }
    body
}

#[cfg(test)]
mod tests {
    use super::*;

    fn impact() -> Impact {
        serde_json::from_value(json!({
            "action": "scale synapse 3 → 4",
            "service": "synapse",
            "kind": "deployment",
            "namespace": "butterfly",
            "workload": "synapse",
            "current": 3,
            "ready": 3,
            "target": 4,
            "generation": 1,
            "hpa": null,
            "cpu_delta_millis": 500,
            "memory_delta_bytes": 536870912,
            "fit": {"Fits": {"free_cpu_millis": 4000, "free_memory_bytes": 8589934592u64}},
            "pdb": [],
            "lock": null,
            "approvals_needed": 1,
            "approvers": ["discord-role:42"],
            "risk": "within recommended range",
            "expires_at_ms": 1767225600000i64,
            "steps": ["patch the scale subresource", "wait for rollout"],
            "notes": ["x".repeat(5000)],
            "dry_run": "accepted"
        }))
        .expect("impact JSON")
    }

    #[test]
    fn preview_embed_stays_within_limits() {
        let body = preview_message("r1", &impact());
        let embed = &body["embeds"][0];
        assert!(embed["title"].as_str().unwrap().starts_with("Request r1"));
        assert!(embed["description"].as_str().unwrap().chars().count() <= MAX_DESCRIPTION_CHARS);
        assert!(embed_chars(embed) <= MAX_EMBED_TOTAL_CHARS);
        let fields = embed["fields"].as_array().unwrap();
        assert!(fields.len() <= MAX_FIELDS);
        assert!(fields.iter().any(|f| f["name"] == "Expires"));
        assert!(fields.iter().any(|f| f["name"] == "Replicas"));
    }

    #[test]
    fn mark_embed_sets_the_decision_field_once() {
        let body = preview_message("r1", &impact());
        let first = mark_embed(
            &body,
            "Decision",
            "approved",
            Outcome::Decided(Decided::Approved),
        )
        .unwrap();
        let second = mark_embed(
            &first,
            "Decision",
            "approved again",
            Outcome::Decided(Decided::Approved),
        )
        .unwrap();
        let fields = second["embeds"][0]["fields"].as_array().unwrap();
        let decisions: Vec<_> = fields.iter().filter(|f| f["name"] == "Decision").collect();
        assert_eq!(decisions.len(), 1);
        assert_eq!(decisions[0]["value"], "approved again");
        assert_eq!(second["embeds"][0]["color"], json!(COLOR_APPROVED));
    }

    #[test]
    fn mark_embed_keeps_twenty_five_fields() {
        let fields: Vec<Value> = (0..25)
            .map(|i| json!({"name": format!("f{i}"), "value": "v"}))
            .collect();
        let message = json!({"embeds": [{"title": "t", "fields": fields}]});
        let marked = mark_embed(
            &message,
            "Result",
            "done",
            Outcome::Finished { succeeded: true },
        )
        .unwrap();
        let fields = marked["embeds"][0]["fields"].as_array().unwrap();
        assert_eq!(fields.len(), MAX_FIELDS);
        assert_eq!(fields[24]["name"], "Result");
    }

    #[test]
    fn long_text_is_split_or_attached() {
        let text = "line of output\n".repeat(200);
        match deliver_text(&text) {
            TextDelivery::Messages(pieces) => {
                assert!(pieces.len() >= 2);
                assert!(
                    pieces
                        .iter()
                        .all(|p| p.chars().count() <= MAX_CONTENT_CHARS)
                );
            }
            other => panic!("expected messages, got {other:?}"),
        }
        let huge = "y".repeat(MAX_SPLIT_CHARS + 1);
        match deliver_text(&huge) {
            TextDelivery::File { content, text, .. } => {
                assert!(content.chars().count() <= MAX_CONTENT_CHARS);
                assert_eq!(text, huge);
            }
            other => panic!("expected a file, got {other:?}"),
        }
    }
}
