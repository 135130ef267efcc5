//! Slack adapter on slack-morphism. Slack reaches the bot over HTTP
//! (signed requests to `/slack/commands`, `/slack/interactions` and
//! `/slack/events`) or over Socket Mode WebSockets; both feed the same
//! [`Slack::accept`]. Replies go out through the Web API: previews as Block
//! Kit messages with Approve and Reject buttons, progress in the preview's
//! thread, errors as ephemeral messages to the user who caused them.

mod deliver;
pub mod http;
pub mod inbound;
pub mod render;
pub mod socket;
pub mod web;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use commands::config::SlackConfig;
use commands::engine::{Engine, Reply, Request};
use commands::identity::{Identity, Platform, Principal};
use tokio::sync::{mpsc, oneshot};

use crate::chat::{REPLY_QUEUE, channel_name};
use crate::secret::Secret;
use inbound::Inbound;
use web::Web;

pub use deliver::Immediate;

/// Environment variable that replaces Slack's Web API base URL, so that
/// tests can point the bot at a local fake.
pub const API_URL_ENV: &str = "SLACK_API_URL";
pub const BOT_TOKEN_ENV: &str = "SLACK_BOT_TOKEN";
pub const SIGNING_SECRET_ENV: &str = "SLACK_SIGNING_SECRET";
pub const APP_TOKEN_ENV: &str = "SLACK_APP_TOKEN";

/// How long a Slack delivery id (trigger id, event id, message ts) is
/// remembered. Slack retries an Events API delivery for up to about five
/// minutes; an hour leaves a wide margin.
pub const DEDUP_TTL: Duration = Duration::from_secs(60 * 60);

/// Slack events handled at once. Beyond this the bot replies "busy" instead
/// of queueing work without bound; a burst of 200 commands per second
/// stays far below it because each one gets its HTTP response within 2 seconds.
pub const MAX_IN_FLIGHT: usize = 1024;

/// Settings the adapter needs besides the engine.
#[derive(Debug, Clone)]
pub struct Settings {
    pub config: SlackConfig,
    pub bot_token: Secret,
    /// Needed in HTTP mode to verify requests.
    pub signing_secret: Option<Secret>,
    /// Needed in Socket Mode to open connections.
    pub app_token: Option<Secret>,
    /// Web API base, Slack's unless [`API_URL_ENV`] is set.
    pub api_url: String,
}

/// The Slack adapter. Cheap to clone.
#[derive(Clone)]
pub struct Slack {
    inner: Arc<Inner>,
}

struct Inner {
    engine: Engine,
    web: Web,
    settings: Settings,
    /// Slack user groups named in the role lists.
    groups: Vec<String>,
    group_cache: std::sync::Mutex<HashMap<String, CachedGroup>>,
    sequence: AtomicU64,
    in_flight: Arc<tokio::sync::Semaphore>,
}

struct CachedGroup {
    fetched: Instant,
    members: Vec<String>,
}

impl Slack {
    pub fn new(engine: Engine, settings: Settings) -> std::io::Result<Self> {
        let web = Web::new(&settings.api_url, &settings.bot_token)?;
        let roles = &engine.config().roles;
        let mut groups: Vec<String> = roles
            .requesters
            .iter()
            .chain(&roles.approvers)
            .chain(&roles.admins)
            .filter_map(|principal| match principal {
                Principal::SlackGroup(group) => Some(group.clone()),
                _ => None,
            })
            .collect();
        groups.sort();
        groups.dedup();
        Ok(Self {
            inner: Arc::new(Inner {
                engine,
                web,
                settings,
                groups,
                group_cache: std::sync::Mutex::new(HashMap::new()),
                sequence: AtomicU64::new(0),
                in_flight: Arc::new(tokio::sync::Semaphore::new(MAX_IN_FLIGHT)),
            }),
        })
    }

    pub fn settings(&self) -> &Settings {
        &self.inner.settings
    }

    pub(crate) fn web(&self) -> &Web {
        &self.inner.web
    }

    pub(crate) fn engine(&self) -> &Engine {
        &self.inner.engine
    }

    /// Acts on one event from Slack. The engine runs in a task of its own;
    /// `immediate`, when given, receives the first reply if it is a short
    /// text, so that the HTTP response can carry it.
    pub fn accept(&self, event: Inbound, immediate: Option<oneshot::Sender<Immediate>>) {
        let Ok(permit) = Arc::clone(&self.inner.in_flight).try_acquire_owned() else {
            metrics::counter!("scalebot_slack_rejected_total", "reason" => "busy").increment(1);
            tracing::warn!(
                max = MAX_IN_FLIGHT,
                "too many Slack events in flight; event rejected"
            );
            if let Some(sender) = immediate {
                let _ = sender.send(Immediate::Ephemeral(
                    "scalebot is busy with other requests; nothing was changed, try again in a minute".to_string(),
                ));
            }
            return;
        };
        let slack = self.clone();
        tokio::spawn(async move {
            if let Err(message) = slack.dispatch(event, immediate).await {
                tracing::warn!(%message, "Slack event not handled");
            }
            drop(permit);
        });
    }

    async fn dispatch(
        &self,
        event: Inbound,
        immediate: Option<oneshot::Sender<Immediate>>,
    ) -> Result<(), String> {
        match event {
            Inbound::Command {
                command,
                text,
                user,
                channel,
                trigger_id,
            } => {
                metrics::counter!("scalebot_slack_events_total", "kind" => "command").increment(1);
                let Some(text) = command_text(&command, &text) else {
                    let message = format!(
                        "scalebot does not handle {command}; use /scale, /capacity or /scalebot"
                    );
                    self.reply_early(immediate, &channel, &user, message).await;
                    return Ok(());
                };
                let delivery = format!("slack-command:{trigger_id}");
                self.run(user, channel, text, Some(delivery), None, immediate)
                    .await
            }
            Inbound::Action {
                user,
                channel,
                message_ts,
                action_id,
                value,
                trigger_id,
            } => {
                metrics::counter!("scalebot_slack_events_total", "kind" => "action").increment(1);
                let text = match action_id.as_str() {
                    render::APPROVE_ACTION => format!("approve {value}"),
                    render::REJECT_ACTION => {
                        format!("reject {value} rejected with the Slack button")
                    }
                    other => return Err(format!("unknown action id {other:?}")),
                };
                let delivery = format!("slack-action:{trigger_id}");
                self.run(user, channel, text, Some(delivery), message_ts, immediate)
                    .await
            }
            Inbound::Mention {
                event_id,
                user,
                channel,
                ts,
                text,
            } => {
                metrics::counter!("scalebot_slack_events_total", "kind" => "mention").increment(1);
                // Slack may redeliver one message under a new event id, so
                // the message itself is a delivery too.
                let coordinator = self.engine().coordinator();
                let message_key = format!("slack-message:{channel}:{ts}");
                let first = coordinator
                    .first_delivery(&message_key, DEDUP_TTL)
                    .await
                    .map_err(|error| error.to_string())?;
                if !first {
                    tracing::info!(event_id, "dropped a message Slack delivered again");
                    return Ok(());
                }
                let text = inbound::strip_mentions(&text).to_string();
                let delivery = format!("slack-event:{event_id}");
                self.run(user, channel, text, Some(delivery), None, immediate)
                    .await
            }
            Inbound::UrlVerification { .. } => Ok(()),
            Inbound::Ignored(reason) => {
                tracing::debug!(%reason, "Slack event ignored");
                Ok(())
            }
        }
    }

    /// Sends a reply that needs no engine: in the HTTP response when
    /// still possible, else as an ephemeral message.
    async fn reply_early(
        &self,
        immediate: Option<oneshot::Sender<Immediate>>,
        channel: &str,
        user: &str,
        text: String,
    ) {
        let text = match immediate {
            Some(sender) => match sender.send(Immediate::Ephemeral(text)) {
                Ok(()) => return,
                Err(Immediate::Ephemeral(text)) => text,
                Err(Immediate::Nothing) => return,
            },
            None => text,
        };
        if let Err(error) = self.web().post_ephemeral(channel, user, &text).await {
            tracing::warn!(%error, channel, "ephemeral message not delivered");
        }
    }

    async fn run(
        &self,
        user: String,
        channel: String,
        text: String,
        delivery: Option<String>,
        message_ts: Option<String>,
        immediate: Option<oneshot::Sender<Immediate>>,
    ) -> Result<(), String> {
        if !is_user_id(&user) {
            tracing::warn!(user, "Slack event from an invalid user id; nothing was run");
            let message = format!(
                "scalebot cannot tell who sent this: {:?} is not a Slack user id, so nothing was run",
                render::escape(&user)
            );
            self.reply_early(immediate, &channel, &user, message).await;
            return Ok(());
        }
        let allowed = &self.settings().config.channels;
        if !allowed.is_empty() && !allowed.iter().any(|c| c.eq_ignore_ascii_case(&channel)) {
            let list: Vec<String> = allowed.iter().map(|c| format!("<#{c}>")).collect();
            let message = format!(
                "scalebot takes requests only in {}; nothing was changed",
                list.join(", ")
            );
            self.reply_early(immediate, &channel, &user, message).await;
            return Ok(());
        }
        let roles = self.groups_of(&user).await;
        let sequence = self.inner.sequence.fetch_add(1, Ordering::Relaxed);
        let request = Request {
            trace_id: format!("slack-{sequence}"),
            delivery_id: delivery,
            user: Identity::new(Platform::Slack, &user),
            roles,
            display_name: user.clone(),
            channel: channel_name(Platform::Slack, &channel),
            text,
        };
        let (sender, receiver) = mpsc::channel::<Reply>(REPLY_QUEUE);
        let conversation = deliver::Conversation {
            slack: self.clone(),
            channel,
            user: Some(user),
            preview_ts: message_ts,
            immediate,
        };
        tokio::spawn(conversation.run(receiver));
        self.engine().handle(request, sender).await;
        Ok(())
    }

    /// Posts replies that no request owns (expiry notices, interrupted
    /// procedures) until `routed` closes.
    pub async fn run_routed(self, mut routed: mpsc::Receiver<Reply>) {
        while let Some(reply) = routed.recv().await {
            let Some((_, channel)) = crate::chat::split_channel(&reply.channel) else {
                continue;
            };
            let mut conversation = deliver::Conversation {
                slack: self.clone(),
                channel: channel.to_string(),
                user: None,
                preview_ts: None,
                immediate: None,
            };
            conversation.deliver(reply).await;
        }
    }

    /// Returns the configured Slack user groups that `user` belongs to.
    /// Members are cached for `slack.group_cache`; a failed lookup counts
    /// as not a member and is logged, so an outage never grants a role.
    async fn groups_of(&self, user: &str) -> Vec<String> {
        let ttl = self.settings().config.group_cache;
        let mut member_of = Vec::new();
        for group in &self.inner.groups {
            let cached = {
                let cache = self
                    .inner
                    .group_cache
                    .lock()
                    .unwrap_or_else(|e| e.into_inner());
                cache
                    .get(group)
                    .filter(|entry| entry.fetched.elapsed() < ttl)
                    .map(|entry| entry.members.iter().any(|m| m == user))
            };
            let is_member = match cached {
                Some(is_member) => is_member,
                None => match self.web().usergroup_members(group).await {
                    Ok(members) => {
                        let is_member = members.iter().any(|m| m == user);
                        let mut cache = self
                            .inner
                            .group_cache
                            .lock()
                            .unwrap_or_else(|e| e.into_inner());
                        cache.insert(
                            group.clone(),
                            CachedGroup {
                                fetched: Instant::now(),
                                members,
                            },
                        );
                        is_member
                    }
                    Err(error) => {
                        tracing::warn!(%error, group, "cannot list the user group; its members get no role from it");
                        false
                    }
                },
            };
            if is_member {
                member_of.push(group.clone());
            }
        }
        member_of
    }
}

/// Maps a slash command onto the shared grammar: `/scale synapse 4` is
/// `scale synapse 4`, `/capacity` is `capacity`, `/scalebot <verb …>` is
/// `<verb …>`. Returns `None` for other commands.
pub fn command_text(command: &str, text: &str) -> Option<String> {
    let text = text.trim();
    match command.trim().to_ascii_lowercase().as_str() {
        "/scale" => Some(format!("scale {text}").trim().to_string()),
        "/capacity" => Some(format!("capacity {text}").trim().to_string()),
        "/scalebot" if text.is_empty() => Some("help".to_string()),
        "/scalebot" => Some(text.to_string()),
        _ => None,
    }
}

fn is_user_id(id: &str) -> bool {
    id.len() >= 3
        && id.len() <= 64
        && matches!(id.chars().next(), Some('U' | 'W'))
        && id.chars().all(|c| c.is_ascii_alphanumeric())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slash_commands_map_onto_grammar() {
        assert_eq!(
            command_text("/scale", "synapse 4").as_deref(),
            Some("scale synapse 4")
        );
        assert_eq!(command_text("/capacity", "").as_deref(), Some("capacity"));
        assert_eq!(
            command_text("/scalebot", " hpa synapse max 15 ").as_deref(),
            Some("hpa synapse max 15")
        );
        assert_eq!(command_text("/scalebot", "").as_deref(), Some("help"));
        assert_eq!(command_text("/deploy", "x"), None);
    }

    #[test]
    fn user_ids_are_checked() {
        assert!(is_user_id("U024BE7LH"));
        assert!(is_user_id("W012A3CDE"));
        assert!(!is_user_id("B01"));
        assert!(!is_user_id("U0<@x>"));
    }
}
