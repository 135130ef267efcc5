//! Approval by reaction. A ✅ on a preview becomes `approve <id>` and a ❌
//! becomes `reject <id> rejected by reaction`, sent through the engine like
//! typed commands, so policy (approver roles, no self-approval, expiry) and
//! the atomic decision apply unchanged.
//!
//! Reactions by bots, the bot's own seeded ones included, are ignored
//! without a reply. A human whose reaction the engine refuses gets the
//! engine's reason once: the delivery id names message, user and emoji, and
//! the engine drops a delivery id it has seen.
//!
//! The gateway does not replay reactions made while the bot was
//! disconnected. So after every READY and RESUMED, and at start, the scan
//! reads the reactions of each pending preview through REST and applies
//! them with the same delivery ids. A reaction seen live is therefore not
//! applied twice, and a request past its expiry is skipped.

use std::sync::Arc;

use commands::coordination::unix_now_ms;
use commands::identity::Platform;
use serde_json::Value;

use super::Shared;
use super::events::{MemberInfo, ReactionVote, Vote, delivery_id};
use super::replies::{Origin, parse_message_ref};
use crate::chat::{message_of, request_of, split_channel};

/// Pages of 100 users read per emoji and preview by one scan.
const MAX_REACTION_PAGES: usize = 10;

/// Applies one reaction seen on the gateway.
pub(crate) async fn on_vote(shared: &Arc<Shared>, vote: ReactionVote) {
    let Some(choice) = vote.vote else {
        return;
    };
    if shared.bot_user_id() == Some(vote.user_id) {
        return;
    }
    let message_ref = format!("{}/{}", vote.channel_id, vote.message_id);
    let request_id = match request_of(shared.engine.coordinator(), Platform::Discord, &message_ref)
        .await
    {
        Ok(Some(id)) => id,
        Ok(None) => return,
        Err(error) => {
            tracing::warn!(%error, message = %message_ref, "looking up the request of a reacted message failed; the reaction is not applied");
            let content = format!(
                "<@{}> scalebot cannot reach its coordination store (Redis), so your reaction was not applied. It is read again when the bot reconnects; to apply it sooner, remove it and react again once Redis is back.",
                vote.user_id
            );
            let body = serde_json::json!({
                "content": content,
                "allowed_mentions": { "parse": [], "users": [vote.user_id.to_string()] },
                "message_reference": {
                    "message_id": vote.message_id.to_string(),
                    "fail_if_not_exists": false,
                },
            });
            if let Err(error) = shared.rest.create_message(vote.channel_id, body).await {
                tracing::warn!(%error, "outage notice for a reaction not delivered");
            }
            return;
        }
    };
    shared.remember_channel(vote.channel_id, vote.guild_id);
    let Some(guild_id) = vote.guild_id else {
        tracing::debug!(message = %message_ref, "reaction outside a guild ignored");
        return;
    };
    let member = match vote.member.clone() {
        Some(member) if member.bot.is_some() => member,
        _ => match member_info(shared, guild_id, vote.user_id).await {
            Some(member) => member,
            None => return,
        },
    };
    apply(
        shared,
        &request_id,
        vote.channel_id,
        vote.message_id,
        vote.user_id,
        choice,
        &member,
    )
    .await;
}

/// Sends the request of one human's vote to the engine.
async fn apply(
    shared: &Arc<Shared>,
    request_id: &str,
    channel_id: u64,
    message_id: u64,
    user_id: u64,
    choice: Vote,
    member: &MemberInfo,
) {
    if member.bot == Some(true) {
        tracing::debug!(
            user_id,
            request.id = request_id,
            "reaction by a bot ignored"
        );
        return;
    }
    // The emoji in its canonical form, so that a live reaction and the same
    // one read by the scan share one delivery id.
    let emoji = choice.emoji();
    let delivery = delivery_id(message_id, user_id, emoji);
    tracing::info!(
        user_id,
        request.id = request_id,
        emoji,
        "applying a reaction on a preview"
    );
    let request = super::request(
        format!("discord-reaction-{message_id}-{user_id}"),
        delivery,
        user_id,
        member,
        channel_id,
        choice.command(request_id),
    );
    shared
        .submit(
            request,
            Origin::Reaction {
                channel_id,
                message_id,
                user_id,
            },
        )
        .await;
}

/// Reads a member's roles through REST, cached for a minute. Returns
/// `None` (and logs) when Discord does not return the member.
async fn member_info(shared: &Shared, guild_id: u64, user_id: u64) -> Option<MemberInfo> {
    let now = tokio::time::Instant::now();
    {
        let members = shared.members.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((read_at, member)) = members.get(&(guild_id, user_id))
            && now.duration_since(*read_at) < super::MEMBER_CACHE_TTL
        {
            return Some(member.clone());
        }
    }
    match shared.rest.get_member(guild_id, user_id).await {
        Ok(json) => {
            let member = MemberInfo::of_json(&json);
            let mut members = shared.members.lock().unwrap_or_else(|e| e.into_inner());
            if members.len() >= super::CACHE_PRUNE_SIZE {
                members.retain(|_, (read_at, _)| {
                    now.duration_since(*read_at) < super::MEMBER_CACHE_TTL
                });
            }
            members.insert((guild_id, user_id), (now, member.clone()));
            Some(member)
        }
        Err(error) => {
            tracing::warn!(%error, guild_id, user_id, "reading the member of a reaction failed; the reaction is not applied");
            None
        }
    }
}

/// Returns the guild of a channel, from events seen or else `GET /channels/{id}`.
async fn guild_of(shared: &Shared, channel_id: u64) -> Option<u64> {
    if let Some(guild) = shared
        .channel_guilds
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .get(&channel_id)
    {
        return Some(*guild);
    }
    match shared.rest.get_channel(channel_id).await {
        Ok(channel) => {
            let guild = channel
                .get("guild_id")
                .and_then(Value::as_str)
                .and_then(|g| g.parse().ok());
            shared.remember_channel(channel_id, guild);
            guild
        }
        Err(error) => {
            tracing::warn!(%error, channel_id, "reading a channel failed");
            None
        }
    }
}

/// Applies the ✅ and ❌ reactions on every pending preview that the
/// gateway may not have delivered. `trigger` names the occasion in logs.
pub(crate) async fn scan_missed(shared: Arc<Shared>, trigger: &'static str) {
    let _one_at_a_time = shared.scan.lock().await;
    let pending = match shared.engine.coordinator().list_pending().await {
        Ok(pending) => pending,
        Err(error) => {
            tracing::warn!(%error, trigger, "listing pending requests for the reaction scan failed");
            return;
        }
    };
    let now = unix_now_ms();
    let mut previews = 0;
    for request in pending {
        if !matches!(
            split_channel(&request.channel),
            Some((Platform::Discord, _))
        ) {
            continue;
        }
        if request.expires_at <= now {
            tracing::debug!(request.id = %request.id, "expired request skipped by the reaction scan");
            continue;
        }
        let message_ref = match message_of(
            shared.engine.coordinator(),
            Platform::Discord,
            &request.id,
        )
        .await
        {
            Ok(Some(message_ref)) => message_ref,
            Ok(None) => continue,
            Err(error) => {
                tracing::warn!(%error, request.id = %request.id, "looking up a preview message failed");
                continue;
            }
        };
        let Some((channel_id, message_id)) = parse_message_ref(&message_ref) else {
            tracing::warn!(message = %message_ref, "stored preview reference is not channel/message");
            continue;
        };
        previews += 1;
        scan_preview(&shared, &request.id, channel_id, message_id).await;
    }
    tracing::info!(trigger, previews, "reaction scan finished");
}

async fn scan_preview(shared: &Arc<Shared>, request_id: &str, channel_id: u64, message_id: u64) {
    let bot = shared.bot_user_id();
    // Discord does not say when each reaction was made. Rejections go
    // first, so a ❌ and a ✅ found together reject instead of changing the
    // cluster.
    let kinds = [
        (Vote::Reject, false),
        (Vote::Reject, true),
        (Vote::Approve, false),
        (Vote::Approve, true),
    ];
    for (choice, burst) in kinds {
        let mut after = None;
        for _page in 0..MAX_REACTION_PAGES {
            let users = match shared
                .rest
                .get_reactions(channel_id, message_id, choice.emoji(), burst, after)
                .await
            {
                Ok(users) => users,
                Err(error) => {
                    tracing::warn!(%error, request.id = request_id, "reading reactions of a preview failed");
                    break;
                }
            };
            for user in &users {
                let Some(user_id) = user
                    .get("id")
                    .and_then(Value::as_str)
                    .and_then(|id| id.parse::<u64>().ok())
                else {
                    continue;
                };
                after = Some(user_id);
                let is_bot = user.get("bot").and_then(Value::as_bool).unwrap_or(false);
                if is_bot || bot == Some(user_id) {
                    continue;
                }
                let Some(guild_id) = guild_of(shared, channel_id).await else {
                    continue;
                };
                let Some(member) = member_info(shared, guild_id, user_id).await else {
                    continue;
                };
                apply(
                    shared, request_id, channel_id, message_id, user_id, choice, &member,
                )
                .await;
            }
            if users.len() < 100 {
                break;
            }
        }
    }
}
