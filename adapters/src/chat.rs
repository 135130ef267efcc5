//! Code the chat adapters share: channel addresses, routing of replies that
//! no single request owns, message splitting, and the preview as labelled
//! fields.

use std::collections::HashMap;
use std::time::Duration;

use commands::coordination::Coordinator;
use commands::engine::{Reply, ReplyBody};
use commands::identity::Platform;
use commands::preview::Impact;
use tokio::sync::mpsc;

/// Capacity of each reply queue between the engine and an adapter.
pub const REPLY_QUEUE: usize = 256;

/// Lifetime of the note that links a pending request to its preview
/// message. It outlives any approval expiry, so progress of a request
/// approved late still finds its thread.
pub const MESSAGE_NOTE_TTL: Duration = Duration::from_secs(24 * 60 * 60);

/// Builds the channel name a request carries: the platform and the
/// platform's channel id, e.g. `slack:C024BE91L`. The engine stores it with
/// pending requests and in the audit log; [`split_channel`] reads it back.
pub fn channel_name(platform: Platform, id: &str) -> String {
    format!("{}:{id}", platform.as_str())
}

/// Splits a channel name built by [`channel_name`] into platform and id.
/// The console's channel has no id and returns `None`.
pub fn split_channel(channel: &str) -> Option<(Platform, &str)> {
    let (platform, id) = channel.split_once(':')?;
    let platform = match platform {
        "slack" => Platform::Slack,
        "discord" => Platform::Discord,
        _ => return None,
    };
    Some((platform, id))
}

/// Sends replies that no request owns (expiry notices, reports of
/// interrupted procedures) to the adapter of their channel's platform.
pub struct Router {
    routes: HashMap<Platform, mpsc::Sender<Reply>>,
}

impl Router {
    pub fn new() -> Self {
        Self {
            routes: HashMap::new(),
        }
    }

    /// Adds a platform and returns the queue its adapter reads.
    pub fn add(&mut self, platform: Platform) -> mpsc::Receiver<Reply> {
        let (sender, receiver) = mpsc::channel(REPLY_QUEUE);
        self.routes.insert(platform, sender);
        receiver
    }

    /// Forwards replies until `input` closes. Replies for a platform that is
    /// not configured are logged, not lost silently.
    pub async fn run(self, mut input: mpsc::Receiver<Reply>) {
        while let Some(reply) = input.recv().await {
            let target =
                split_channel(&reply.channel).and_then(|(platform, _)| self.routes.get(&platform));
            match target {
                Some(sender) => {
                    if sender.send(reply).await.is_err() {
                        tracing::warn!("an adapter stopped; its replies are dropped");
                    }
                }
                None => tracing::warn!(
                    channel = %reply.channel,
                    text = %plain_text(&reply.body),
                    "no adapter serves this channel; the reply is only logged"
                ),
            }
        }
    }
}

impl Default for Router {
    fn default() -> Self {
        Self::new()
    }
}

/// Renders a reply body as plain text, for logs and plain messages.
pub fn plain_text(body: &ReplyBody) -> String {
    match body {
        ReplyBody::Text(text) | ReplyBody::Notice(text) | ReplyBody::Progress(text) => text.clone(),
        ReplyBody::Decided { text, .. } => text.clone(),
        ReplyBody::Error(text) => format!("error: {text}"),
        ReplyBody::Preview { request_id, impact } => {
            format!("request {request_id}: {}", impact.action)
        }
        ReplyBody::Result {
            succeeded,
            summary,
            details,
        } => {
            let mark = if *succeeded { "done" } else { "FAILED" };
            let mut text = format!("{mark}: {summary}");
            for line in details {
                text.push('\n');
                text.push_str(line);
            }
            text
        }
    }
}

/// Splits `text` into pieces of at most `max_chars` characters, at line
/// breaks where possible. A line longer than `max_chars` is cut at
/// character boundaries. No piece is empty, and joining the pieces with
/// line breaks gives back the text.
pub fn split_text(text: &str, max_chars: usize) -> Vec<String> {
    assert!(max_chars > 0, "max_chars must be positive");
    let mut pieces = Vec::new();
    let mut current = String::new();
    let mut current_chars = 0;
    for line in text.split('\n') {
        let line_chars = line.chars().count();
        let separator = usize::from(!current.is_empty());
        if current_chars + separator + line_chars <= max_chars {
            if separator == 1 {
                current.push('\n');
            }
            current.push_str(line);
            current_chars += separator + line_chars;
            continue;
        }
        if !current.is_empty() {
            pieces.push(std::mem::take(&mut current));
            current_chars = 0;
        }
        if line_chars <= max_chars {
            current.push_str(line);
            current_chars = line_chars;
            continue;
        }
        let chars: Vec<char> = line.chars().collect();
        for chunk in chars.chunks(max_chars) {
            pieces.push(chunk.iter().collect());
        }
    }
    if !current.is_empty() {
        pieces.push(current);
    }
    pieces
}

/// Cuts `text` to at most `max_chars` characters, ending with `…` when cut.
pub fn truncate(text: &str, max_chars: usize) -> String {
    if text.chars().count() <= max_chars {
        return text.to_string();
    }
    let mut cut: String = text.chars().take(max_chars.saturating_sub(1)).collect();
    cut.push('…');
    cut
}

/// One labelled value of a preview.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Field {
    pub label: &'static str,
    pub value: String,
}

/// Returns the preview's fields in display order, labelled for people.
pub fn preview_fields(impact: &Impact) -> Vec<Field> {
    let mut fields: Vec<Field> = impact
        .fields()
        .into_iter()
        .map(|(key, value)| Field {
            label: field_label(key),
            value,
        })
        .collect();
    fields.push(Field {
        label: "Expires",
        value: format_expiry(impact.expires_at_ms),
    });
    fields
}

fn field_label(key: &'static str) -> &'static str {
    // Keys carry a sort prefix ("2 replicas").
    match key.split_once(' ').map_or(key, |(_, name)| name) {
        "workload" => "Workload",
        "replicas" => "Replicas",
        "resources" => "Resources",
        "fit" => "Fit",
        "hpa" => "HPA",
        "pdb" => "PDB",
        "lock" => "Lock",
        "approvals" => "Approvals needed",
        "dry run" => "Dry run",
        _ => "Detail",
    }
}

/// Formats a Unix time in milliseconds as `14:05:09 UTC`.
pub fn format_expiry(at_ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(at_ms)
        .map(|t| t.format("%H:%M:%S UTC").to_string())
        .unwrap_or_else(|| "unknown".to_string())
}

/// Numbered steps of a preview, one per line.
pub fn numbered_steps(steps: &[String]) -> String {
    steps
        .iter()
        .enumerate()
        .map(|(i, step)| format!("{}. {step}", i + 1))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Remembers which chat message shows a pending request, in both
/// directions, so any replica can thread progress under the preview and map
/// a reaction on the message back to the request.
pub async fn link_message(
    coordinator: &Coordinator,
    platform: Platform,
    request_id: &str,
    message: &str,
) -> Result<(), commands::coordination::CoordError> {
    let platform = platform.as_str();
    coordinator
        .put_note(
            &format!("{platform}:request:{request_id}"),
            message,
            MESSAGE_NOTE_TTL,
        )
        .await?;
    coordinator
        .put_note(
            &format!("{platform}:message:{message}"),
            request_id,
            MESSAGE_NOTE_TTL,
        )
        .await
}

/// Returns the message that shows `request_id`, as stored by [`link_message`].
pub async fn message_of(
    coordinator: &Coordinator,
    platform: Platform,
    request_id: &str,
) -> Result<Option<String>, commands::coordination::CoordError> {
    coordinator
        .get_note(&format!("{}:request:{request_id}", platform.as_str()))
        .await
}

/// Returns the pending request that `message` shows, as stored by [`link_message`].
pub async fn request_of(
    coordinator: &Coordinator,
    platform: Platform,
    message: &str,
) -> Result<Option<String>, commands::coordination::CoordError> {
    coordinator
        .get_note(&format!("{}:message:{message}", platform.as_str()))
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_text_keeps_lines_whole_where_they_fit() {
        let text = "aaaa\nbbbb\ncccc";
        assert_eq!(split_text(text, 9), vec!["aaaa\nbbbb", "cccc"]);
        assert_eq!(split_text(text, 100), vec![text]);
    }

    #[test]
    fn split_text_cuts_long_lines_on_char_boundaries() {
        let text = "é".repeat(25);
        let pieces = split_text(&text, 10);
        assert_eq!(pieces.len(), 3);
        assert!(pieces.iter().all(|p| p.chars().count() <= 10));
        assert_eq!(pieces.concat(), text);
    }

    #[test]
    fn split_text_pieces_rejoin_to_the_text() {
        let text: String = (0..400)
            .map(|i| format!("pod synapse-{i:03} Running"))
            .collect::<Vec<_>>()
            .join("\n");
        let pieces = split_text(&text, 2000);
        assert!(pieces.iter().all(|p| p.chars().count() <= 2000));
        assert_eq!(pieces.join("\n"), text);
    }

    #[test]
    fn truncate_marks_the_cut() {
        assert_eq!(truncate("abcdef", 4), "abc…");
        assert_eq!(truncate("abc", 4), "abc");
    }

    #[test]
    fn channel_names_round_trip() {
        let name = channel_name(Platform::Slack, "C024BE91L");
        assert_eq!(name, "slack:C024BE91L");
        assert_eq!(split_channel(&name), Some((Platform::Slack, "C024BE91L")));
        assert_eq!(split_channel("console"), None);
    }

    #[tokio::test]
    async fn message_links_work_both_ways() {
        let coordinator = Coordinator::memory();
        link_message(&coordinator, Platform::Discord, "r7", "123/456")
            .await
            .unwrap();
        assert_eq!(
            message_of(&coordinator, Platform::Discord, "r7")
                .await
                .unwrap()
                .as_deref(),
            Some("123/456")
        );
        assert_eq!(
            request_of(&coordinator, Platform::Discord, "123/456")
                .await
                .unwrap()
                .as_deref(),
            Some("r7")
        );
        assert_eq!(
            message_of(&coordinator, Platform::Slack, "r7")
                .await
                .unwrap(),
            None
        );
    }
}
