//! Message size and Block Kit limits that Slack enforces on `chat.postMessage`
//! and `chat.update`, with the error codes Slack returns for them.
//!
//! Sources: the Block Kit reference pages for blocks and block elements, and
//! the `chat.postMessage` method page (api.slack.com, crawled 2025-03).

use serde_json::Value;

/// Maximum blocks in one message (modals and Home tabs allow 100).
pub const MAX_BLOCKS_PER_MESSAGE: usize = 50;
/// Maximum characters of a section block's `text`; the minimum is 1.
pub const MAX_SECTION_TEXT_CHARS: usize = 3000;
/// Maximum items in a section block's `fields`.
pub const MAX_SECTION_FIELDS: usize = 10;
/// Maximum characters of one item of a section block's `fields`.
pub const MAX_SECTION_FIELD_CHARS: usize = 2000;
/// Maximum characters of a header block's plain text.
pub const MAX_HEADER_TEXT_CHARS: usize = 150;
/// Maximum characters of a markdown block's `text`.
pub const MAX_MARKDOWN_BLOCK_CHARS: usize = 12_000;
/// Maximum characters of a `block_id` or an `action_id`.
pub const MAX_ID_CHARS: usize = 255;
/// Maximum elements in an actions block.
pub const MAX_ACTIONS_ELEMENTS: usize = 25;
/// Maximum elements in a context block.
pub const MAX_CONTEXT_ELEMENTS: usize = 10;
/// Maximum characters of a button's `value`.
pub const MAX_BUTTON_VALUE_CHARS: usize = 2000;
/// Maximum characters of a button's plain text label.
pub const MAX_BUTTON_TEXT_CHARS: usize = 75;
/// Total characters of every `text` string inside a message's blocks above
/// which Slack returns `msg_blocks_too_long`.
// NOTE: Slack does not document this limit. 13,200 is where users of
// Slack's Bolt for JavaScript have reported the error, so it is an estimate.
pub const MAX_TOTAL_BLOCK_TEXT_CHARS: usize = 13_200;
/// Maximum characters of a message's top-level `text`.
pub const MAX_MESSAGE_TEXT_CHARS: usize = 40_000;

/// Checks a message's `text` and `blocks` against Slack's limits and returns
/// the error code Slack would return: `no_text`, `msg_too_long`,
/// `invalid_blocks_format`, `invalid_blocks` or `msg_blocks_too_long`.
/// Characters are counted as Unicode scalar values.
pub fn check_message(text: Option<&str>, blocks: Option<&Value>) -> Result<(), &'static str> {
    let has_text = text.is_some_and(|text| !text.is_empty());
    let has_blocks = blocks.is_some_and(|blocks| blocks.as_array().is_none_or(|b| !b.is_empty()));
    if !has_text && !has_blocks {
        return Err("no_text");
    }
    if text.is_some_and(|text| char_count(text) > MAX_MESSAGE_TEXT_CHARS) {
        return Err("msg_too_long");
    }
    let Some(blocks) = blocks else {
        return Ok(());
    };
    let Some(blocks) = blocks.as_array() else {
        return Err("invalid_blocks_format");
    };
    if blocks.len() > MAX_BLOCKS_PER_MESSAGE {
        return Err("invalid_blocks");
    }
    for block in blocks {
        if !is_valid_block(block) {
            return Err("invalid_blocks");
        }
    }
    let total: usize = blocks.iter().map(text_char_count).sum();
    if total > MAX_TOTAL_BLOCK_TEXT_CHARS {
        return Err("msg_blocks_too_long");
    }
    Ok(())
}

fn char_count(text: &str) -> usize {
    text.chars().count()
}

/// Sums the characters of every string stored under a `text` key, at any depth.
fn text_char_count(value: &Value) -> usize {
    match value {
        Value::Object(map) => map
            .iter()
            .map(|(key, item)| match item {
                Value::String(text) if key == "text" => char_count(text),
                other => text_char_count(other),
            })
            .sum(),
        Value::Array(items) => items.iter().map(text_char_count).sum(),
        _ => 0,
    }
}

/// Characters of a text object (`{"type": "mrkdwn"|"plain_text", "text": ...}`),
/// or `None` when it is not one.
fn text_object_chars(value: &Value) -> Option<usize> {
    let kind = value.get("type")?.as_str()?;
    if kind != "mrkdwn" && kind != "plain_text" {
        return None;
    }
    value.get("text")?.as_str().map(char_count)
}

fn id_within_limit(value: &Value, key: &str) -> bool {
    match value.get(key) {
        None => true,
        Some(Value::String(id)) => char_count(id) <= MAX_ID_CHARS,
        Some(_) => false,
    }
}

fn is_valid_block(block: &Value) -> bool {
    let Some(kind) = block.get("type").and_then(Value::as_str) else {
        return false;
    };
    if !id_within_limit(block, "block_id") {
        return false;
    }
    match kind {
        "section" => is_valid_section(block),
        "header" => block
            .get("text")
            .and_then(text_object_chars)
            .is_some_and(|chars| (1..=MAX_HEADER_TEXT_CHARS).contains(&chars)),
        "markdown" => block
            .get("text")
            .and_then(Value::as_str)
            .is_some_and(|text| (1..=MAX_MARKDOWN_BLOCK_CHARS).contains(&char_count(text))),
        "actions" => block
            .get("elements")
            .and_then(Value::as_array)
            .is_some_and(|elements| {
                (1..=MAX_ACTIONS_ELEMENTS).contains(&elements.len())
                    && elements.iter().all(is_valid_element)
            }),
        "context" => block
            .get("elements")
            .and_then(Value::as_array)
            .is_some_and(|elements| (1..=MAX_CONTEXT_ELEMENTS).contains(&elements.len())),
        _ => true,
    }
}

fn is_valid_section(block: &Value) -> bool {
    let text = block.get("text");
    let fields = block.get("fields");
    if text.is_none() && fields.is_none() {
        return false;
    }
    if let Some(text) = text {
        let Some(chars) = text_object_chars(text) else {
            return false;
        };
        if !(1..=MAX_SECTION_TEXT_CHARS).contains(&chars) {
            return false;
        }
    }
    if let Some(fields) = fields {
        let Some(fields) = fields.as_array() else {
            return false;
        };
        let fields_valid = fields.iter().all(|field| {
            text_object_chars(field).is_some_and(|chars| chars <= MAX_SECTION_FIELD_CHARS)
        });
        if fields.len() > MAX_SECTION_FIELDS || !fields_valid {
            return false;
        }
    }
    true
}

fn is_valid_element(element: &Value) -> bool {
    if !id_within_limit(element, "action_id") {
        return false;
    }
    if element.get("type").and_then(Value::as_str) != Some("button") {
        return true;
    }
    let label_valid = element
        .get("text")
        .and_then(text_object_chars)
        .is_some_and(|chars| (1..=MAX_BUTTON_TEXT_CHARS).contains(&chars));
    let value_valid = match element.get("value") {
        None => true,
        Some(Value::String(value)) => char_count(value) <= MAX_BUTTON_VALUE_CHARS,
        Some(_) => false,
    };
    label_valid && value_valid
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn section(text: &str) -> Value {
        json!({"type": "section", "text": {"type": "mrkdwn", "text": text}})
    }

    #[test]
    fn accepts_text_only_message() {
        assert_eq!(check_message(Some("hello"), None), Ok(()));
    }

    #[test]
    fn rejects_message_without_content() {
        assert_eq!(check_message(None, None), Err("no_text"));
        assert_eq!(check_message(Some(""), Some(&json!([]))), Err("no_text"));
    }

    #[test]
    fn rejects_text_over_limit() {
        let text = "a".repeat(MAX_MESSAGE_TEXT_CHARS + 1);
        assert_eq!(check_message(Some(&text), None), Err("msg_too_long"));
        let text = "a".repeat(MAX_MESSAGE_TEXT_CHARS);
        assert_eq!(check_message(Some(&text), None), Ok(()));
    }

    #[test]
    fn rejects_blocks_that_are_not_an_array() {
        let blocks = json!({"type": "section"});
        assert_eq!(
            check_message(None, Some(&blocks)),
            Err("invalid_blocks_format")
        );
    }

    #[test]
    fn counts_blocks_against_limit() {
        let fifty = Value::Array(vec![section("x"); MAX_BLOCKS_PER_MESSAGE]);
        assert_eq!(check_message(None, Some(&fifty)), Ok(()));
        let fifty_one = Value::Array(vec![section("x"); MAX_BLOCKS_PER_MESSAGE + 1]);
        assert_eq!(check_message(None, Some(&fifty_one)), Err("invalid_blocks"));
    }

    #[test]
    fn checks_section_text_length() {
        let at_limit = json!([section(&"é".repeat(MAX_SECTION_TEXT_CHARS))]);
        assert_eq!(check_message(None, Some(&at_limit)), Ok(()));
        let over = json!([section(&"a".repeat(MAX_SECTION_TEXT_CHARS + 1))]);
        assert_eq!(check_message(None, Some(&over)), Err("invalid_blocks"));
        let empty = json!([section("")]);
        assert_eq!(check_message(None, Some(&empty)), Err("invalid_blocks"));
    }

    #[test]
    fn checks_total_block_text() {
        // Five sections of 2,660 characters: each is valid, the sum is 13,300.
        let blocks = Value::Array(vec![section(&"a".repeat(2660)); 5]);
        assert_eq!(
            check_message(None, Some(&blocks)),
            Err("msg_blocks_too_long")
        );
        let blocks = Value::Array(vec![section(&"a".repeat(2640)); 5]);
        assert_eq!(check_message(None, Some(&blocks)), Ok(()));
    }

    #[test]
    fn checks_button_limits() {
        let button = |label: &str, value: &str| {
            json!([{"type": "actions", "elements": [{
                "type": "button", "action_id": "approve",
                "text": {"type": "plain_text", "text": label}, "value": value
            }]}])
        };
        assert_eq!(check_message(None, Some(&button("Approve", "r1"))), Ok(()));
        let long_label = "a".repeat(MAX_BUTTON_TEXT_CHARS + 1);
        assert_eq!(
            check_message(None, Some(&button(&long_label, "r1"))),
            Err("invalid_blocks")
        );
        let long_value = "a".repeat(MAX_BUTTON_VALUE_CHARS + 1);
        assert_eq!(
            check_message(None, Some(&button("Approve", &long_value))),
            Err("invalid_blocks")
        );
    }

    #[test]
    fn rejects_block_without_type() {
        let blocks = json!([{"text": {"type": "mrkdwn", "text": "x"}}]);
        assert_eq!(check_message(None, Some(&blocks)), Err("invalid_blocks"));
    }
}
