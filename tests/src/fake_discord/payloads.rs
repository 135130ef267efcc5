//! Gateway dispatch data and REST objects in the shapes Discord documents,
//! with the fields serenity 0.12 requires (a payload it cannot read would
//! reach the bot as an unknown event and be ignored).

use serde_json::{Value, json};

use super::{APPLICATION_ID, BOT_USER_ID, GUILD_ID, Member};

const TIMESTAMP: &str = "2026-01-05T00:49:53.676000+00:00";

/// Builds a user object; the bot's own has `bot: true`.
pub fn user(user_id: u64, bot: bool) -> Value {
    let name = if user_id == BOT_USER_ID {
        "scalebot".to_string()
    } else {
        format!("user{}", user_id % 1000)
    };
    json!({
        "id": user_id.to_string(),
        "username": name,
        "discriminator": "0",
        "global_name": null,
        "avatar": null,
        "bot": bot,
        "public_flags": 0
    })
}

/// Builds a guild member object, as in MESSAGE_REACTION_ADD and from
/// `GET /guilds/{g}/members/{u}`.
pub fn member(user_id: u64, member: &Member) -> Value {
    json!({
        "user": user(user_id, member.bot),
        "roles": member.roles.iter().map(u64::to_string).collect::<Vec<_>>(),
        "premium_since": null,
        "pending": false,
        "nick": null,
        "mute": false,
        "deaf": false,
        "joined_at": "2026-01-04T20:21:10.139000+00:00",
        "flags": 0,
        "communication_disabled_until": null,
        "avatar": null
    })
}

/// READY for a new session.
pub fn ready(session_id: &str, resume_url: &str) -> Value {
    json!({
        "v": 10,
        "user": {
            "id": BOT_USER_ID.to_string(),
            "username": "scalebot",
            "discriminator": "0",
            "global_name": null,
            "avatar": null,
            "bot": true,
            "verified": true,
            "mfa_enabled": false,
            "flags": 0
        },
        "guilds": [{ "id": GUILD_ID.to_string(), "unavailable": true }],
        "session_id": session_id,
        "resume_gateway_url": resume_url,
        "shard": [0, 1],
        "application": { "id": APPLICATION_ID.to_string(), "flags": 0 }
    })
}

/// MESSAGE_CREATE data for a message by `author_id`, with the partial
/// `member` (no `user`) Discord sends in guilds.
pub fn message_create(
    message_id: u64,
    channel_id: u64,
    author_id: u64,
    roles: &[u64],
    content: &str,
) -> Value {
    json!({
        "type": 0,
        "tts": false,
        "timestamp": TIMESTAMP,
        "pinned": false,
        "nonce": message_id.to_string(),
        "mentions": [],
        "mention_roles": [],
        "mention_everyone": false,
        "member": {
            "roles": roles.iter().map(u64::to_string).collect::<Vec<_>>(),
            "premium_since": null,
            "pending": false,
            "nick": null,
            "mute": false,
            "joined_at": "2026-01-04T20:21:10.139000+00:00",
            "flags": 0,
            "deaf": false,
            "communication_disabled_until": null,
            "avatar": null
        },
        "id": message_id.to_string(),
        "flags": 0,
        "embeds": [],
        "edited_timestamp": null,
        "content": content,
        "components": [],
        "channel_type": 0,
        "channel_id": channel_id.to_string(),
        "author": user(author_id, false),
        "attachments": [],
        "guild_id": GUILD_ID.to_string()
    })
}

/// INTERACTION_CREATE data of a chat-input application command.
/// `options` are the command's options as Discord sends them, e.g.
/// `[{"type": 3, "name": "service", "value": "synapse"}]`.
pub fn interaction_create(
    interaction_id: u64,
    token: &str,
    channel_id: u64,
    user_id: u64,
    roles: &[u64],
    name: &str,
    options: Value,
) -> Value {
    json!({
        "type": 2,
        "id": interaction_id.to_string(),
        "application_id": APPLICATION_ID.to_string(),
        "token": token,
        "version": 1,
        "guild_id": GUILD_ID.to_string(),
        "channel_id": channel_id.to_string(),
        "member": {
            "user": user(user_id, false),
            "roles": roles.iter().map(u64::to_string).collect::<Vec<_>>(),
            "premium_since": null,
            "permissions": "2147483647",
            "pending": false,
            "nick": null,
            "mute": false,
            "deaf": false,
            "flags": 0,
            "joined_at": "2026-01-04T20:21:10.139000+00:00"
        },
        "app_permissions": "442368",
        "locale": "en-US",
        "guild_locale": "en-US",
        "entitlements": [],
        "authorizing_integration_owners": { "0": GUILD_ID.to_string() },
        "context": 0,
        "attachment_size_limit": 10485760,
        "data": {
            "id": "771825006014889984",
            "type": 1,
            "name": name,
            "options": options
        }
    })
}

/// MESSAGE_REACTION_ADD data for a unicode emoji. `member` is present for
/// reactions in guilds; absent, the bot has to read it through REST.
pub fn reaction_add(
    channel_id: u64,
    message_id: u64,
    user_id: u64,
    emoji: &str,
    with_member: Option<&Member>,
) -> Value {
    let mut data = json!({
        "user_id": user_id.to_string(),
        "type": 0,
        "message_id": message_id.to_string(),
        "message_author_id": BOT_USER_ID.to_string(),
        "emoji": { "name": emoji, "id": null },
        "channel_id": channel_id.to_string(),
        "burst": false,
        "guild_id": GUILD_ID.to_string()
    });
    if let Some(found) = with_member {
        data["member"] = member(user_id, found);
    }
    data
}

/// A message object as the REST API returns it, authored by the bot.
pub fn bot_message(message_id: u64, channel_id: u64, body: &Value) -> Value {
    let mut message = json!({
        "id": message_id.to_string(),
        "channel_id": channel_id.to_string(),
        "type": 0,
        "author": user(BOT_USER_ID, true),
        "content": "",
        "embeds": [],
        "attachments": [],
        "mentions": [],
        "mention_roles": [],
        "mention_everyone": false,
        "pinned": false,
        "tts": false,
        "timestamp": TIMESTAMP,
        "edited_timestamp": null,
        "flags": 0,
        "components": []
    });
    merge_message(&mut message, body);
    message
}

/// Applies the fields of a create or edit body to a stored message.
pub fn merge_message(message: &mut Value, body: &Value) {
    for key in [
        "content",
        "embeds",
        "flags",
        "message_reference",
        "attachments",
    ] {
        if let Some(value) = body.get(key) {
            message[key] = value.clone();
        }
    }
}
