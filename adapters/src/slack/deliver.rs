//! Posting the replies of one request to Slack: the preview in the
//! channel, its progress and result in the preview's thread, decisions as
//! an update of the preview, and errors as ephemeral messages to the user
//! who caused them.

use commands::engine::{Reply, ReplyBody};
use commands::identity::Platform;
use serde_json::Value;
use tokio::sync::{mpsc, oneshot};

use super::Slack;
use super::render::{self, TextMessage};
use crate::chat::{self, MESSAGE_NOTE_TTL};

/// First reply to a slash command, for the HTTP response.
#[derive(Debug)]
pub enum Immediate {
    /// Shown only to the user who typed the command.
    Ephemeral(String),
    /// Acknowledge with an empty body; the reply is posted separately.
    Nothing,
}

pub(super) struct Conversation {
    pub slack: Slack,
    /// Slack channel id.
    pub channel: String,
    /// User the replies go to, or `None` for replies no request owns.
    pub user: Option<String>,
    /// `ts` of the preview message, when the event came from it.
    pub preview_ts: Option<String>,
    pub immediate: Option<oneshot::Sender<Immediate>>,
}

impl Conversation {
    pub async fn run(mut self, mut replies: mpsc::Receiver<Reply>) {
        while let Some(reply) = replies.recv().await {
            self.deliver(reply).await;
        }
        // No reply at all, e.g. a redelivered event: acknowledge plainly.
        if let Some(sender) = self.immediate.take() {
            let _ = sender.send(Immediate::Nothing);
        }
    }

    pub async fn deliver(&mut self, reply: Reply) {
        let request_id = reply.request_id.clone();
        match reply.body {
            ReplyBody::Error(text) => {
                let text = format!(":warning: {}", render::escape(&text));
                self.answer_user(request_id.as_deref(), text).await;
            }
            ReplyBody::Notice(text) => {
                self.acknowledge();
                self.post_text(None, &text).await;
            }
            ReplyBody::Text(text) => match request_id.as_deref() {
                Some(id) => self.post_in_thread(id, &text).await,
                None => self.answer_user(None, render::escape(&text)).await,
            },
            ReplyBody::Preview { request_id, impact } => {
                self.acknowledge();
                let requester = self.user.clone().unwrap_or_default();
                let blocks = render::preview_blocks(&request_id, &impact, &requester);
                self.post_preview(&request_id, &impact.action, blocks).await;
            }
            ReplyBody::Decided { decision, text } => {
                let Some(id) = request_id else { return };
                // The thread reply goes first: a rate-limited update of the
                // preview may wait minutes.
                self.post_in_thread(&id, &text).await;
                self.update_status(&id, &render::decided_status(decision, &text), true)
                    .await;
            }
            ReplyBody::Progress(line) => match request_id.as_deref() {
                Some(id) => self.post_in_thread(id, &line).await,
                None => self.answer_user(None, render::escape(&line)).await,
            },
            ReplyBody::Result {
                succeeded,
                summary,
                details,
            } => {
                let mark = if succeeded {
                    ":white_check_mark: done"
                } else {
                    ":x: FAILED"
                };
                let mut text = format!("{mark}: {summary}");
                for line in &details {
                    text.push('\n');
                    text.push_str(line);
                }
                match request_id.as_deref() {
                    Some(id) => {
                        let status = format!("{mark}: {}", render::escape(&summary));
                        self.update_status(id, &status, true).await;
                        self.post_in_thread(id, &text).await;
                    }
                    None => self.post_text(None, &text).await,
                }
            }
        }
    }

    /// Tells the HTTP handler that no ephemeral body follows.
    fn acknowledge(&mut self) {
        if let Some(sender) = self.immediate.take() {
            let _ = sender.send(Immediate::Nothing);
        }
    }

    /// Answers the user who caused the reply: in the HTTP response while
    /// it is still open, else with an ephemeral message. Without a user
    /// (replies no request owns), the answer goes to the request's thread
    /// or the channel.
    async fn answer_user(&mut self, request_id: Option<&str>, text: String) {
        // A long answer goes out as several ephemeral messages, each within
        // the section limit, instead of one oversized response body.
        if text.chars().count() > render::SECTION_TEXT_MAX {
            self.acknowledge();
        }
        if let Some(sender) = self.immediate.take() {
            match sender.send(Immediate::Ephemeral(text)) {
                Ok(()) => return,
                Err(Immediate::Ephemeral(text)) => {
                    return self.send_ephemeral(request_id, text).await;
                }
                Err(Immediate::Nothing) => return,
            }
        }
        self.send_ephemeral(request_id, text).await;
    }

    async fn send_ephemeral(&mut self, request_id: Option<&str>, text: String) {
        let Some(user) = self.user.clone() else {
            match request_id {
                Some(id) => self.post_in_thread(id, &text).await,
                None => self.post_text(None, &text).await,
            }
            return;
        };
        // Ephemeral messages carry plain text up to 40,000 characters; the
        // bot's texts are far shorter, so one piece is the usual case.
        for piece in chat::split_text(&text, render::SECTION_TEXT_MAX) {
            if let Err(error) = self
                .slack
                .web()
                .post_ephemeral(&self.channel, &user, &piece)
                .await
            {
                tracing::warn!(%error, channel = %self.channel, "ephemeral message not delivered");
            }
        }
    }

    async fn post_preview(&mut self, request_id: &str, action: &str, blocks: Vec<Value>) {
        let blocks = Value::Array(blocks);
        let fallback = chat::truncate(&render::escape(action), render::FALLBACK_TEXT_MAX);
        let ts = match self
            .slack
            .web()
            .post_message(&self.channel, None, &fallback, Some(&blocks))
            .await
        {
            Ok(ts) => ts,
            Err(error) => {
                tracing::error!(%error, request.id = request_id, "preview not posted");
                let text = format!(
                    "request {request_id} was created but its preview could not be posted ({error}); approve with `/scalebot approve {request_id}`"
                );
                self.send_ephemeral(Some(request_id), text).await;
                return;
            }
        };
        self.preview_ts = Some(ts.clone());
        let coordinator = self.slack.engine().coordinator();
        let message = format!("{}/{ts}", self.channel);
        let stored = async {
            chat::link_message(coordinator, Platform::Slack, request_id, &message).await?;
            coordinator
                .put_note(
                    &blocks_key(request_id),
                    &blocks.to_string(),
                    MESSAGE_NOTE_TTL,
                )
                .await
        };
        if let Err(error) = stored.await {
            tracing::warn!(%error, request.id = request_id, "preview link not stored; progress goes to the channel");
        }
    }

    /// Returns the channel and `ts` of the request's preview.
    async fn preview_of(&self, request_id: &str) -> Option<(String, String)> {
        let coordinator = self.slack.engine().coordinator();
        match chat::message_of(coordinator, Platform::Slack, request_id).await {
            Ok(Some(message)) => {
                let (channel, ts) = message.split_once('/')?;
                Some((channel.to_string(), ts.to_string()))
            }
            Ok(None) => self.preview_ts.clone().map(|ts| (self.channel.clone(), ts)),
            Err(error) => {
                tracing::warn!(%error, request.id = request_id, "cannot read the preview link");
                self.preview_ts.clone().map(|ts| (self.channel.clone(), ts))
            }
        }
    }

    async fn post_in_thread(&mut self, request_id: &str, text: &str) {
        match self.preview_of(request_id).await {
            Some((channel, ts)) => {
                self.channel = channel;
                self.post_text(Some(&ts), text).await;
            }
            None => self.post_text(None, text).await,
        }
    }

    /// Posts text as sections, or as a file when it is longer than one
    /// message may carry. A message Slack rejects for its size is
    /// uploaded as a file instead, so no output is lost.
    async fn post_text(&mut self, thread_ts: Option<&str>, text: &str) {
        let web = self.slack.web();
        let fallback = chat::truncate(&render::escape(text), render::FALLBACK_TEXT_MAX);
        if let TextMessage::Blocks(blocks) = render::text_message(text) {
            let blocks = Value::Array(blocks);
            let posted = web
                .post_message(&self.channel, thread_ts, &fallback, Some(&blocks))
                .await;
            match posted {
                Ok(_) => return,
                Err(error)
                    if matches!(
                        error.code(),
                        Some("msg_blocks_too_long" | "invalid_blocks" | "msg_too_long")
                    ) =>
                {
                    tracing::warn!(%error, channel = %self.channel, "message rejected for its size; uploading it as a file");
                }
                Err(error) => {
                    tracing::error!(%error, channel = %self.channel, "message not posted");
                    return;
                }
            }
        }
        let first_line = text.lines().next().unwrap_or("scalebot output");
        let title = chat::truncate(first_line, 80);
        if let Err(error) = web
            .upload_text(
                &self.channel,
                thread_ts,
                "scalebot-output.txt",
                &title,
                text,
            )
            .await
        {
            tracing::error!(%error, channel = %self.channel, "output too long for a message and not uploaded");
        }
    }

    async fn update_status(&mut self, request_id: &str, status: &str, remove_buttons: bool) {
        let Some((channel, ts)) = self.preview_of(request_id).await else {
            return;
        };
        let coordinator = self.slack.engine().coordinator();
        let stored = match coordinator.get_note(&blocks_key(request_id)).await {
            Ok(Some(stored)) => stored,
            Ok(None) => return,
            Err(error) => {
                tracing::warn!(%error, request.id = request_id, "cannot read the preview; its status line stays as it is");
                return;
            }
        };
        let Ok(Value::Array(blocks)) = serde_json::from_str::<Value>(&stored) else {
            return;
        };
        let updated = render::with_status(&blocks, status, remove_buttons);
        let updated = Value::Array(updated);
        let fallback = chat::truncate(status, render::FALLBACK_TEXT_MAX);
        if let Err(error) = self
            .slack
            .web()
            .update_message(&channel, &ts, &fallback, &updated)
            .await
        {
            tracing::warn!(%error, request.id = request_id, "preview not updated");
            return;
        }
        if let Err(error) = coordinator
            .put_note(
                &blocks_key(request_id),
                &updated.to_string(),
                MESSAGE_NOTE_TTL,
            )
            .await
        {
            tracing::warn!(%error, request.id = request_id, "updated preview not stored");
        }
    }
}

fn blocks_key(request_id: &str) -> String {
    format!("slack:blocks:{request_id}")
}
