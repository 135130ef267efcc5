//! Plain values the adapter takes from gateway events: the vote a
//! reaction casts, the member's roles, the command text of a prefixed
//! message or of an application command.

use serde_json::Value;
use serenity::all::{
    ChannelType, CommandDataOption, CommandDataOptionValue, CommandInteraction, Member, Message,
    Reaction, ReactionType,
};

use super::render::{APPROVE_EMOJI, REJECT_EMOJI};

/// Decision that a reaction on a preview requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Vote {
    Approve,
    Reject,
}

impl Vote {
    /// Returns the vote of a unicode emoji. Custom emoji and other unicode emoji
    /// cast none.
    pub fn of_emoji(emoji: &ReactionType) -> Option<Vote> {
        match emoji {
            ReactionType::Unicode(name) => Vote::of_name(name),
            _ => None,
        }
    }

    pub fn of_name(name: &str) -> Option<Vote> {
        // Some clients append the emoji presentation selector U+FE0F.
        match name.trim_end_matches('\u{fe0f}') {
            APPROVE_EMOJI => Some(Vote::Approve),
            REJECT_EMOJI => Some(Vote::Reject),
            _ => None,
        }
    }

    pub fn emoji(self) -> &'static str {
        match self {
            Vote::Approve => APPROVE_EMOJI,
            Vote::Reject => REJECT_EMOJI,
        }
    }

    /// Returns the command text the engine parses for this vote on `request_id`.
    pub fn command(self, request_id: &str) -> String {
        match self {
            Vote::Approve => format!("approve {request_id}"),
            Vote::Reject => format!("reject {request_id} rejected by reaction"),
        }
    }
}

/// A guild member as far as approval needs it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MemberInfo {
    /// Role ids as decimal strings, the form `discord-role:<id>` uses.
    pub roles: Vec<String>,
    /// Whether the user is a bot; `None` when the payload had no user.
    pub bot: Option<bool>,
    pub display_name: Option<String>,
}

impl MemberInfo {
    pub fn of_member(member: &Member) -> Self {
        Self {
            roles: member.roles.iter().map(|r| r.get().to_string()).collect(),
            bot: Some(member.user.bot),
            display_name: Some(
                member
                    .nick
                    .clone()
                    .or_else(|| member.user.global_name.clone())
                    .unwrap_or_else(|| member.user.name.clone()),
            ),
        }
    }

    /// Reads a member object of the REST API (`GET /guilds/{g}/members/{u}`).
    pub fn of_json(member: &Value) -> Self {
        let user = member.get("user");
        let text = |value: Option<&Value>| value.and_then(Value::as_str).map(str::to_string);
        Self {
            roles: member
                .get("roles")
                .and_then(Value::as_array)
                .map(|roles| roles.iter().filter_map(|r| text(Some(r))).collect())
                .unwrap_or_default(),
            bot: user.map(|u| u.get("bot").and_then(Value::as_bool).unwrap_or(false)),
            display_name: text(member.get("nick"))
                .or_else(|| text(user.and_then(|u| u.get("global_name"))))
                .or_else(|| text(user.and_then(|u| u.get("username")))),
        }
    }
}

/// A reaction added to a message, reduced to what approval needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReactionVote {
    pub channel_id: u64,
    pub message_id: u64,
    pub guild_id: Option<u64>,
    pub user_id: u64,
    /// `None` for an emoji that is neither ✅ nor ❌.
    pub vote: Option<Vote>,
    /// The emoji as text, for logs and delivery ids: the unicode emoji, or
    /// `name:id` of a custom one.
    pub emoji: String,
    /// The `member` field of the event, present in guilds.
    pub member: Option<MemberInfo>,
}

impl ReactionVote {
    /// Reads a MESSAGE_REACTION_ADD event. Returns `None` when the event
    /// has no user id, which Discord sends only for reactions it cannot
    /// attribute.
    pub fn of_reaction(reaction: &Reaction) -> Option<Self> {
        let user_id = reaction.user_id?.get();
        let emoji = match &reaction.emoji {
            ReactionType::Unicode(name) => name.clone(),
            ReactionType::Custom { id, name, .. } => {
                format!("{}:{}", name.as_deref().unwrap_or("_"), id.get())
            }
            other => format!("{other:?}"),
        };
        Some(Self {
            channel_id: reaction.channel_id.get(),
            message_id: reaction.message_id.get(),
            guild_id: reaction.guild_id.map(|g| g.get()),
            user_id,
            vote: Vote::of_emoji(&reaction.emoji),
            emoji,
            member: reaction.member.as_ref().map(MemberInfo::of_member),
        })
    }

    /// Delivery id of this vote: one user's reaction with one emoji on one
    /// message is applied once, live or by the scan after a reconnect.
    pub fn delivery_id(&self) -> String {
        delivery_id(self.message_id, self.user_id, &self.emoji)
    }
}

pub fn delivery_id(message_id: u64, user_id: u64, emoji: &str) -> String {
    format!("discord-reaction:{message_id}:{user_id}:{emoji}")
}

/// Checks whether a channel type is a thread (announcement, public or
/// private).
pub fn is_thread(kind: ChannelType) -> bool {
    matches!(
        kind,
        ChannelType::NewsThread | ChannelType::PublicThread | ChannelType::PrivateThread
    )
}

/// Returns the parent channel of a thread from a channel object read through
/// REST. Other channels give `None` because their `parent_id` is a category.
pub fn thread_parent(channel: &Value) -> Option<u64> {
    let kind = channel.get("type").and_then(Value::as_u64)?;
    let kind = ChannelType::from(u8::try_from(kind).ok()?);
    if !is_thread(kind) {
        return None;
    }
    channel
        .get("parent_id")
        .and_then(Value::as_str)
        .and_then(|parent| parent.parse().ok())
}

/// Returns the command text of a message in the prefix form: `!scale synapse 4`
/// gives `scale synapse 4` and `!scalebot status synapse` gives
/// `status synapse`. Other messages give `None`.
pub fn prefix_text(content: &str, prefix: &str) -> Option<String> {
    let rest = content.trim_start().strip_prefix(prefix)?;
    let (word, tail) = match rest.split_once(char::is_whitespace) {
        Some((word, tail)) => (word, tail.trim()),
        None => (rest.trim_end(), ""),
    };
    match word {
        "scalebot" if tail.is_empty() => Some("help".to_string()),
        "scalebot" => Some(tail.to_string()),
        "scale" => Some(format!("scale {tail}").trim_end().to_string()),
        _ => None,
    }
}

/// Roles and name of a message's author, from the partial member Discord
/// sends with guild messages.
pub fn message_member(message: &Message) -> MemberInfo {
    let roles = message
        .member
        .as_ref()
        .map(|m| m.roles.iter().map(|r| r.get().to_string()).collect())
        .unwrap_or_default();
    let display_name = message
        .member
        .as_ref()
        .and_then(|m| m.nick.clone())
        .or_else(|| message.author.global_name.clone())
        .unwrap_or_else(|| message.author.name.clone());
    MemberInfo {
        roles,
        bot: Some(message.author.bot),
        display_name: Some(display_name),
    }
}

/// Application commands the bot registers, with their options.
pub const SCALE_COMMAND: &str = "scale";
pub const CAPACITY_COMMAND: &str = "capacity";
pub const TEXT_COMMAND: &str = "scalebot";

/// Turns an application command into the text the engine parses. Errors
/// are shown to the user and say what is missing.
pub fn command_text(command: &CommandInteraction) -> Result<String, String> {
    let options = &command.data.options;
    match command.data.name.as_str() {
        SCALE_COMMAND => {
            let service = string_option(options, "service")
                .ok_or("the service option is missing; use /scale service:<name> replicas:<n>")?;
            let replicas = match options
                .iter()
                .find(|o| o.name == "replicas")
                .map(|o| &o.value)
            {
                Some(CommandDataOptionValue::Integer(n)) => n.to_string(),
                Some(CommandDataOptionValue::String(text)) => text.trim().to_string(),
                _ => {
                    return Err(
                        "the replicas option is missing; use /scale service:<name> replicas:<n>"
                            .to_string(),
                    );
                }
            };
            Ok(format!("scale {} {replicas}", service.trim()))
        }
        CAPACITY_COMMAND => Ok("capacity".to_string()),
        TEXT_COMMAND => {
            let text = string_option(options, "text").unwrap_or_default();
            if text.trim().is_empty() {
                Ok("help".to_string())
            } else {
                Ok(text.trim().to_string())
            }
        }
        other => Err(format!(
            "unknown command /{other}; use /scale, /capacity or /scalebot"
        )),
    }
}

fn string_option(options: &[CommandDataOption], name: &str) -> Option<String> {
    options
        .iter()
        .find(|o| o.name == name)
        .and_then(|o| match &o.value {
            CommandDataOptionValue::String(text) => Some(text.clone()),
            _ => None,
        })
}

/// The application commands as the bulk-overwrite endpoint takes them.
/// `services` become the choices of `/scale service:` when there are at
/// most 25 of them (Discord's limit on choices); otherwise any text is
/// accepted and the engine checks it.
pub fn command_definitions(services: &[String]) -> Value {
    let mut service = serde_json::json!({
        "type": 3,
        "name": "service",
        "description": "Service to scale, as named in the scalebot config",
        "required": true,
        "max_length": 64,
    });
    if !services.is_empty() && services.len() <= 25 {
        service["choices"] = services
            .iter()
            .map(|name| serde_json::json!({ "name": name, "value": name }))
            .collect();
    }
    // contexts [0]: guild channels only, where roles exist and previews
    // can collect reactions.
    serde_json::json!([
        {
            "name": SCALE_COMMAND,
            "type": 1,
            "description": "Preview a replica change; it runs after approval",
            "contexts": [0],
            "options": [
                service,
                {
                    "type": 4,
                    "name": "replicas",
                    "description": "Target replica count",
                    "required": true,
                    "min_value": 0,
                    "max_value": 1000
                }
            ]
        },
        {
            "name": CAPACITY_COMMAND,
            "type": 1,
            "description": "Show the free capacity of the cluster's nodes",
            "contexts": [0]
        },
        {
            "name": TEXT_COMMAND,
            "type": 1,
            "description": "Any scalebot command: status, approve, reject, cancel, locks, history, help",
            "contexts": [0],
            "options": [
                {
                    "type": 3,
                    "name": "text",
                    "description": "The command, e.g. status synapse",
                    "required": true,
                    "max_length": 200
                }
            ]
        }
    ])
}

#[cfg(test)]
mod tests;
