//! Posting the engine's replies to Discord.
//!
//! - A preview becomes an embed, linked to its request in the coordinator
//!   (so any replica maps reactions and progress to it), with ✅ and ❌
//!   added by the bot.
//! - A decision or a final result edits that embed: a field with the text
//!   and a new color.
//! - Progress and results go to a thread on the preview, or to replies to
//!   it when threads are off.
//! - Other texts and errors go back to where the request came from: a
//!   reply to the message, the interaction's response (errors only to its
//!   user), or a reply to the preview for a reaction.

use std::sync::Arc;

use commands::engine::{Decided, Reply, ReplyBody};
use commands::identity::Platform;
use commands::preview::Impact;
use serde_json::{Value, json};
use tokio::sync::mpsc;

use super::Shared;
use super::render::{self, APPROVE_EMOJI, Outcome, REJECT_EMOJI, TextDelivery};
use super::rest::{Attachment, RestError, THREAD_ALREADY_CREATED};
use crate::chat::{link_message, message_of, plain_text, split_channel, truncate};

/// Source of the request whose replies a queue carries.
#[derive(Debug, Clone)]
pub(crate) enum Origin {
    /// A message in the prefix form.
    Message { channel_id: u64, message_id: u64 },
    /// An application command, already acknowledged with a deferred response.
    Interaction { channel_id: u64, token: String },
    /// A reaction on the preview `message_id`.
    Reaction {
        channel_id: u64,
        message_id: u64,
        user_id: u64,
    },
    /// No request: a reply routed to a channel (expiry, interrupted runs).
    Channel { channel_id: u64 },
}

/// Destination of a text: a channel (or thread), optionally as a reply.
#[derive(Debug, Clone, Copy)]
struct Target {
    channel_id: u64,
    reply_to: Option<u64>,
}

/// Reads a `channel_id/message_id` reference stored by [`link_message`].
pub(crate) fn parse_message_ref(text: &str) -> Option<(u64, u64)> {
    let (channel, message) = text.split_once('/')?;
    Some((channel.parse().ok()?, message.parse().ok()?))
}

/// Posts the replies of one request until every sender is gone (the
/// procedure of an approved request reports after `handle` returned).
pub(crate) async fn post_all(
    shared: Arc<Shared>,
    origin: Origin,
    mut replies: mpsc::Receiver<Reply>,
) {
    let mut poster = Poster {
        shared,
        origin,
        answered: false,
    };
    while let Some(reply) = replies.recv().await {
        poster.post(reply).await;
    }
    poster.finish().await;
}

/// Posts replies that no request owns, in the channel each one names.
pub(crate) async fn post_routed(shared: Arc<Shared>, mut routed: mpsc::Receiver<Reply>) {
    while let Some(reply) = routed.recv().await {
        let channel_id = match split_channel(&reply.channel) {
            Some((Platform::Discord, id)) => id.parse::<u64>().ok(),
            _ => None,
        };
        let Some(channel_id) = channel_id else {
            tracing::warn!(channel = %reply.channel, "routed reply for a channel that is not a Discord channel id; dropped");
            continue;
        };
        let mut poster = Poster {
            shared: Arc::clone(&shared),
            origin: Origin::Channel { channel_id },
            answered: false,
        };
        poster.post(reply).await;
    }
}

struct Poster {
    shared: Arc<Shared>,
    origin: Origin,
    /// Whether the interaction's original response has been written.
    answered: bool,
}

impl Poster {
    async fn post(&mut self, reply: Reply) {
        let request_id = reply.request_id.clone();
        match &reply.body {
            ReplyBody::Preview { request_id, impact } => {
                self.post_preview(request_id, impact).await
            }
            ReplyBody::Decided { decision, text } => {
                if let Some(id) = &request_id {
                    self.mark_preview(id, "Decision", text, Outcome::Decided(*decision))
                        .await;
                    if *decision == Decided::Approved {
                        self.post_in_thread(id, text).await;
                    }
                }
                let echo = matches!(
                    self.origin,
                    Origin::Message { .. } | Origin::Interaction { .. }
                );
                if echo || request_id.is_none() {
                    self.answer_origin(text, false).await;
                }
            }
            ReplyBody::Progress(_) => {
                self.post_for_request(request_id.as_deref(), &reply.body)
                    .await
            }
            ReplyBody::Result {
                succeeded, summary, ..
            } => {
                if let Some(id) = &request_id {
                    let mark = if *succeeded { "done" } else { "FAILED" };
                    self.mark_preview(
                        id,
                        "Result",
                        &format!("{mark}: {summary}"),
                        Outcome::Finished {
                            succeeded: *succeeded,
                        },
                    )
                    .await;
                }
                self.post_for_request(request_id.as_deref(), &reply.body)
                    .await;
            }
            ReplyBody::Text(text) | ReplyBody::Notice(text) => {
                self.answer_origin(text, false).await
            }
            ReplyBody::Error(_) => self.answer_origin(&plain_text(&reply.body), true).await,
        }
    }

    /// Removes a deferred interaction response that no reply filled, so
    /// that Discord does not show "thinking" until the token expires.
    async fn finish(&mut self) {
        if let Origin::Interaction { token, .. } = &self.origin
            && !self.answered
            && let Err(error) = self.shared.rest.delete_original(token).await
        {
            tracing::warn!(%error, "removing an unused deferred response failed");
        }
    }

    async fn post_preview(&mut self, request_id: &str, impact: &Impact) {
        let mut body = render::preview_message(request_id, impact);
        let rest = &self.shared.rest;
        // The preview of an application command is a message of its own:
        // Discord does not support editing an interaction response through
        // the channel message endpoint, and its token expires after 15
        // minutes, while the preview is edited until the change finishes.
        let posted = match &self.origin {
            Origin::Message {
                channel_id,
                message_id,
            } => {
                body["message_reference"] =
                    json!({ "message_id": message_id.to_string(), "fail_if_not_exists": false });
                rest.create_message(*channel_id, body).await
            }
            Origin::Interaction { channel_id, .. }
            | Origin::Reaction { channel_id, .. }
            | Origin::Channel { channel_id } => rest.create_message(*channel_id, body).await,
        };
        let message = match posted {
            Ok(message) => message,
            Err(error) => {
                tracing::error!(%error, request.id = request_id, "posting the preview failed");
                let text = format!(
                    "request {request_id}: {} (the preview could not be shown: {error}); approve with `approve {request_id}`",
                    impact.action
                );
                self.answer_origin(&text, false).await;
                return;
            }
        };
        let ids = (id_field(&message, "channel_id"), id_field(&message, "id"));
        let (Some(channel_id), Some(message_id)) = ids else {
            tracing::error!(
                request.id = request_id,
                "Discord returned the preview without channel and message ids"
            );
            return;
        };
        let message_ref = format!("{channel_id}/{message_id}");
        if let Err(error) = link_message(
            self.shared.engine.coordinator(),
            Platform::Discord,
            request_id,
            &message_ref,
        )
        .await
        {
            tracing::error!(%error, request.id = request_id, "storing the preview message failed; reactions on it will not be counted");
        }
        for emoji in [APPROVE_EMOJI, REJECT_EMOJI] {
            if let Err(error) = rest.add_own_reaction(channel_id, message_id, emoji).await {
                tracing::warn!(%error, request.id = request_id, emoji, "adding a reaction to the preview failed");
            }
        }
        if matches!(self.origin, Origin::Interaction { .. }) {
            let text = format!(
                "Preview of request {request_id} posted: approvers react {APPROVE_EMOJI} to approve or {REJECT_EMOJI} to reject."
            );
            self.answer_origin(&text, false).await;
        }
    }

    /// Sets field `name` of the request's preview embed to `text`.
    async fn mark_preview(&self, request_id: &str, name: &str, text: &str, outcome: Outcome) {
        let Some((channel_id, message_id)) = self.preview_of(request_id).await else {
            return;
        };
        let rest = &self.shared.rest;
        let edited = match rest.get_message(channel_id, message_id).await {
            Ok(message) => render::mark_embed(&message, name, text, outcome),
            Err(error) => {
                tracing::warn!(%error, request.id = request_id, "reading the preview to edit it failed");
                return;
            }
        };
        let Some(body) = edited else {
            tracing::warn!(
                request.id = request_id,
                "the preview message has no embed to edit"
            );
            return;
        };
        if let Err(error) = rest.edit_message(channel_id, message_id, body).await {
            tracing::warn!(%error, request.id = request_id, "editing the preview failed");
        }
    }

    async fn preview_of(&self, request_id: &str) -> Option<(u64, u64)> {
        match message_of(
            self.shared.engine.coordinator(),
            Platform::Discord,
            request_id,
        )
        .await
        {
            Ok(Some(reference)) => parse_message_ref(&reference),
            Ok(None) => None,
            Err(error) => {
                tracing::warn!(%error, request.id = request_id, "looking up the preview message failed");
                None
            }
        }
    }

    /// Posts a progress line or result under the request's preview, or at
    /// the origin when the request has no preview here.
    async fn post_for_request(&mut self, request_id: Option<&str>, body: &ReplyBody) {
        let text = plain_text(body);
        match request_id {
            Some(id) => self.post_in_thread(id, &text).await,
            None => self.answer_origin(&text, false).await,
        }
    }

    async fn post_in_thread(&mut self, request_id: &str, text: &str) {
        let Some((channel_id, message_id)) = self.preview_of(request_id).await else {
            self.answer_origin(text, false).await;
            return;
        };
        let target = self.thread_of(request_id, channel_id, message_id).await;
        self.send_text(target, text, &[]).await;
    }

    /// Returns the thread on the preview, started on first use, or a reply
    /// to the preview when threads are off or the thread cannot be started.
    async fn thread_of(&self, request_id: &str, channel_id: u64, message_id: u64) -> Target {
        let reply = Target {
            channel_id,
            reply_to: Some(message_id),
        };
        if !self.shared.config.threads {
            return reply;
        }
        let started = self
            .shared
            .threads
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .contains(&message_id);
        if !started {
            let name = truncate(&format!("scalebot request {request_id}"), 100);
            match self
                .shared
                .rest
                .start_thread(channel_id, message_id, &name)
                .await
            {
                Ok(_) => {}
                Err(error) if error.code() == Some(THREAD_ALREADY_CREATED) => {}
                Err(error) => {
                    tracing::warn!(%error, request.id = request_id, "starting a thread on the preview failed; replying to it instead");
                    return reply;
                }
            }
            let mut threads = self
                .shared
                .threads
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            if threads.len() >= super::CACHE_PRUNE_SIZE {
                threads.clear();
            }
            threads.insert(message_id);
        }
        // A thread started from a message has the message's id.
        Target {
            channel_id: message_id,
            reply_to: None,
        }
    }

    /// Sends `text` back to where the request came from. `error` texts of an
    /// interaction are shown only to its user.
    async fn answer_origin(&mut self, text: &str, error: bool) {
        match self.origin.clone() {
            Origin::Message {
                channel_id,
                message_id,
            } => {
                let target = Target {
                    channel_id,
                    reply_to: Some(message_id),
                };
                self.send_text(target, text, &[]).await;
            }
            Origin::Interaction { token, .. } => self.answer_interaction(&token, text, error).await,
            Origin::Reaction {
                channel_id,
                message_id,
                user_id,
            } => {
                let target = Target {
                    channel_id,
                    reply_to: Some(message_id),
                };
                let text = format!("<@{user_id}> {text}");
                self.send_text(target, &text, &[user_id]).await;
            }
            Origin::Channel { channel_id } => {
                let target = Target {
                    channel_id,
                    reply_to: None,
                };
                self.send_text(target, text, &[]).await;
            }
        }
    }

    async fn answer_interaction(&mut self, token: &str, text: &str, error: bool) {
        let rest = &self.shared.rest;
        let flags = if error { render::EPHEMERAL } else { 0 };
        let pieces = match render::deliver_text(text) {
            TextDelivery::Messages(pieces) => pieces,
            TextDelivery::File {
                content,
                filename,
                text,
            } => {
                let body = json!({ "content": content, "flags": flags, "allowed_mentions": { "parse": [] } });
                let file = Attachment {
                    filename,
                    bytes: text.into_bytes(),
                };
                if !self.answered {
                    self.answered = true;
                    log_failure(
                        rest.delete_original(token).await,
                        "removing the deferred response",
                    );
                }
                log_failure(
                    rest.followup_with_file(token, body, file).await,
                    "sending a file",
                );
                return;
            }
        };
        for piece in pieces {
            let body =
                json!({ "content": piece, "flags": flags, "allowed_mentions": { "parse": [] } });
            if self.answered {
                log_failure(rest.followup(token, body).await, "sending a follow-up");
            } else if error {
                // The deferred response is visible to everyone; an error
                // replaces it with a message only its user can read.
                self.answered = true;
                log_failure(
                    rest.delete_original(token).await,
                    "removing the deferred response",
                );
                log_failure(rest.followup(token, body).await, "sending an error");
            } else {
                self.answered = true;
                log_failure(
                    rest.edit_original(token, body).await,
                    "answering an interaction",
                );
            }
        }
    }

    /// Posts `text` to `target`, split into messages of at most 2,000
    /// characters or attached as a file. `mentions` are the users the
    /// message may notify.
    async fn send_text(&self, target: Target, text: &str, mentions: &[u64]) {
        let rest = &self.shared.rest;
        let allowed = json!({
            "parse": [],
            "users": mentions.iter().map(u64::to_string).collect::<Vec<_>>(),
        });
        match render::deliver_text(text) {
            TextDelivery::Messages(pieces) => {
                for (position, piece) in pieces.iter().enumerate() {
                    let reply_to = if position == 0 { target.reply_to } else { None };
                    let mut body = render::text_message(piece, reply_to);
                    body["allowed_mentions"] = allowed.clone();
                    log_failure(
                        rest.create_message(target.channel_id, body).await,
                        "posting a message",
                    );
                }
            }
            TextDelivery::File {
                content,
                filename,
                text,
            } => {
                let mut body = render::text_message(&content, target.reply_to);
                body["allowed_mentions"] = allowed;
                let file = Attachment {
                    filename,
                    bytes: text.into_bytes(),
                };
                log_failure(
                    rest.create_message_with_file(target.channel_id, body, file)
                        .await,
                    "posting a file",
                );
            }
        }
    }
}

fn log_failure<T>(result: Result<T, RestError>, what: &'static str) {
    if let Err(error) = result {
        tracing::warn!(%error, "{what} failed");
    }
}

/// Reads a snowflake field of a Discord object, which Discord sends as a
/// string.
fn id_field(object: &Value, name: &str) -> Option<u64> {
    object
        .get(name)
        .and_then(Value::as_str)
        .and_then(|id| id.parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_refs_parse() {
        assert_eq!(parse_message_ref("12/34"), Some((12, 34)));
        assert_eq!(parse_message_ref("12"), None);
        assert_eq!(parse_message_ref("a/34"), None);
    }
}
