//! Gateway payloads in the shapes Discord documents and sends, read through
//! serenity's model as the adapter receives them.

use serde_json::{Value, json};
use serenity::all::{Event, GatewayEvent, Interaction};

use super::*;

fn dispatch(name: &str, data: Value) -> Event {
    let payload = json!({ "op": 0, "s": 7, "t": name, "d": data });
    match serde_json::from_value::<GatewayEvent>(payload) {
        Ok(GatewayEvent::Dispatch(_, event)) => event,
        Ok(other) => panic!("{name} is not a dispatch: {other:?}"),
        Err(error) => panic!("{name} does not deserialize: {error}"),
    }
}

fn reaction(data: Value) -> Reaction {
    match dispatch("MESSAGE_REACTION_ADD", data) {
        Event::ReactionAdd(event) => event.reaction,
        other => panic!("expected MESSAGE_REACTION_ADD, got {other:?}"),
    }
}

fn member_json(user_id: &str, roles: &[&str], bot: bool) -> Value {
    json!({
        "user": {
            "username": "user1",
            "public_flags": 0,
            "id": user_id,
            "global_name": "User One",
            "display_name": "User One",
            "discriminator": "0",
            "bot": bot,
            "avatar": null
        },
        "roles": roles,
        "premium_since": null,
        "pending": false,
        "nick": null,
        "mute": false,
        "joined_at": "2026-01-04T20:21:10.139000+00:00",
        "flags": 0,
        "deaf": false,
        "communication_disabled_until": null,
        "avatar": null
    })
}

fn reaction_json(emoji: Value, member: Option<Value>) -> Value {
    let mut data = json!({
        "user_id": "100000000000000001",
        "type": 0,
        "message_id": "500000000000000002",
        "message_author_id": "200000000000000001",
        "emoji": emoji,
        "channel_id": "400000000000000001",
        "burst": false,
        "guild_id": "300000000000000001"
    });
    if let Some(member) = member {
        data["member"] = member;
    }
    data
}

#[test]
fn unicode_reaction_with_member() {
    let data = reaction_json(
        json!({"name": "✅", "id": null}),
        Some(member_json(
            "100000000000000001",
            &["600000000000000001"],
            false,
        )),
    );
    let vote = ReactionVote::of_reaction(&reaction(data)).expect("vote");
    assert_eq!(vote.vote, Some(Vote::Approve));
    assert_eq!(vote.user_id, 100000000000000001);
    assert_eq!(vote.channel_id, 400000000000000001);
    assert_eq!(vote.message_id, 500000000000000002);
    assert_eq!(vote.guild_id, Some(300000000000000001));
    let member = vote.member.clone().expect("member");
    assert_eq!(member.roles, vec!["600000000000000001".to_string()]);
    assert_eq!(member.bot, Some(false));
    assert_eq!(member.display_name.as_deref(), Some("User One"));
    assert_eq!(
        vote.delivery_id(),
        "discord-reaction:500000000000000002:100000000000000001:✅"
    );
}

#[test]
fn unicode_reaction_without_member() {
    let mut data = reaction_json(json!({"name": "❌", "id": null}), None);
    data.as_object_mut().unwrap().remove("guild_id");
    let vote = ReactionVote::of_reaction(&reaction(data)).expect("vote");
    assert_eq!(vote.vote, Some(Vote::Reject));
    assert_eq!(vote.member, None);
    assert_eq!(vote.guild_id, None);
}

#[test]
fn reaction_by_a_bot_is_marked() {
    let data = reaction_json(
        json!({"name": "✅", "id": null}),
        Some(member_json("200000000000000001", &[], true)),
    );
    let vote = ReactionVote::of_reaction(&reaction(data)).expect("vote");
    assert_eq!(vote.member.and_then(|m| m.bot), Some(true));
}

#[test]
fn other_unicode_emoji_cast_no_vote() {
    let data = reaction_json(json!({"name": "👍", "id": null}), None);
    let vote = ReactionVote::of_reaction(&reaction(data)).expect("vote");
    assert_eq!(vote.vote, None);
    assert_eq!(vote.emoji, "👍");
}

#[test]
fn emoji_presentation_selector_is_ignored() {
    assert_eq!(Vote::of_name("✅\u{fe0f}"), Some(Vote::Approve));
    assert_eq!(Vote::of_name("✔"), None);
}

#[test]
fn custom_emoji_cast_no_vote() {
    let animated = reaction_json(
        json!({"id": "41771983429993937", "name": "LUL", "animated": true}),
        None,
    );
    let vote = ReactionVote::of_reaction(&reaction(animated)).expect("vote");
    assert_eq!(vote.vote, None);
    assert_eq!(vote.emoji, "LUL:41771983429993937");

    // A custom emoji named like the approval mark is still not ✅.
    let lookalike = reaction_json(json!({"id": "41771983429993938", "name": "✅"}), None);
    let vote = ReactionVote::of_reaction(&reaction(lookalike)).expect("vote");
    assert_eq!(vote.vote, None);

    // Discord sends a null name when the custom emoji was deleted.
    let deleted = reaction_json(json!({"id": "41771983429993937", "name": null}), None);
    let vote = ReactionVote::of_reaction(&reaction(deleted)).expect("vote");
    assert_eq!(vote.vote, None);
    assert_eq!(vote.emoji, "_:41771983429993937");
}

#[test]
fn member_from_rest_json() {
    let member = MemberInfo::of_json(&member_json("100000000000000001", &["7", "8"], false));
    assert_eq!(member.roles, vec!["7".to_string(), "8".to_string()]);
    assert_eq!(member.bot, Some(false));
    let bot = MemberInfo::of_json(&member_json("1", &[], true));
    assert_eq!(bot.bot, Some(true));
    let bare = MemberInfo::of_json(&json!({"roles": []}));
    assert_eq!(bare.bot, None);
}

fn message_json(content: &str, member: bool) -> Value {
    let mut data = json!({
        "type": 0,
        "tts": false,
        "timestamp": "2026-01-05T00:49:53.676000+00:00",
        "pinned": false,
        "nonce": "1457536551075446784",
        "mentions": [],
        "mention_roles": [],
        "mention_everyone": false,
        "id": "400000000000000009",
        "flags": 0,
        "embeds": [],
        "edited_timestamp": null,
        "content": content,
        "components": [],
        "channel_type": 0,
        "channel_id": "400000000000000002",
        "author": {
            "username": "user1",
            "public_flags": 0,
            "id": "100000000000000001",
            "global_name": "User One",
            "discriminator": "0",
            "avatar": null
        },
        "attachments": [],
        "guild_id": "300000000000000001"
    });
    if member {
        data["member"] = json!({
            "roles": ["600000000000000001"],
            "premium_since": null,
            "pending": false,
            "nick": "oncall",
            "mute": false,
            "joined_at": "2026-01-04T20:21:10.139000+00:00",
            "flags": 0,
            "deaf": false,
            "communication_disabled_until": null,
            "avatar": null
        });
    }
    data
}

#[test]
fn message_create_with_member() {
    let Event::MessageCreate(event) =
        dispatch("MESSAGE_CREATE", message_json("!scale synapse 4", true))
    else {
        panic!("expected MESSAGE_CREATE");
    };
    let message = event.message;
    assert_eq!(
        prefix_text(&message.content, "!").as_deref(),
        Some("scale synapse 4")
    );
    let member = message_member(&message);
    assert_eq!(member.roles, vec!["600000000000000001".to_string()]);
    assert_eq!(member.display_name.as_deref(), Some("oncall"));
    assert_eq!(member.bot, Some(false));
}

#[test]
fn message_create_without_member() {
    let Event::MessageCreate(event) = dispatch("MESSAGE_CREATE", message_json("hello", false))
    else {
        panic!("expected MESSAGE_CREATE");
    };
    let member = message_member(&event.message);
    assert!(member.roles.is_empty());
    assert_eq!(member.display_name.as_deref(), Some("User One"));
}

#[test]
fn prefix_forms() {
    let cases = [
        ("!scale synapse 4", Some("scale synapse 4")),
        ("  !scale   synapse 4 ", Some("scale synapse 4")),
        ("!scale", Some("scale")),
        ("!scalebot status synapse", Some("status synapse")),
        ("!scalebot", Some("help")),
        ("!scaler synapse 4", None),
        ("scale synapse 4", None),
        ("!help", None),
    ];
    for (content, expected) in cases {
        assert_eq!(
            prefix_text(content, "!").as_deref(),
            expected,
            "{content:?}"
        );
    }
    assert_eq!(
        prefix_text("$$scale nexus 5", "$$").as_deref(),
        Some("scale nexus 5")
    );
}

fn interaction_json(name: &str, options: Value) -> Value {
    json!({
        "type": 2,
        "token": "interaction-token",
        "member": {
            "user": {
                "id": "100000000000000003",
                "username": "user2",
                "avatar": null,
                "discriminator": "0",
                "public_flags": 0
            },
            "roles": ["539082325061836999"],
            "premium_since": null,
            "permissions": "2147483647",
            "pending": false,
            "flags": 0,
            "nick": null,
            "mute": false,
            "joined_at": "2017-03-13T19:19:14.040000+00:00",
            "deaf": false
        },
        "id": "786008729715212338",
        "application_id": "700000000000000001",
        "guild_id": "290926798626357999",
        "app_permissions": "442368",
        "guild_locale": "en-US",
        "locale": "en-US",
        "version": 1,
        "entitlements": [],
        "authorizing_integration_owners": {"0": "290926798626357999"},
        "context": 0,
        "attachment_size_limit": 10485760,
        "data": {
            "options": options,
            "type": 1,
            "name": name,
            "id": "771825006014889984"
        },
        "channel_id": "645027906669510667"
    })
}

fn command(data: Value) -> CommandInteraction {
    match dispatch("INTERACTION_CREATE", data) {
        Event::InteractionCreate(event) => match event.interaction {
            Interaction::Command(command) => command,
            other => panic!("expected an application command, got {other:?}"),
        },
        other => panic!("expected INTERACTION_CREATE, got {other:?}"),
    }
}

#[test]
fn slash_scale_command() {
    let data = interaction_json(
        "scale",
        json!([
            {"type": 3, "name": "service", "value": "synapse"},
            {"type": 4, "name": "replicas", "value": 4}
        ]),
    );
    let command = command(data);
    assert_eq!(command_text(&command).as_deref(), Ok("scale synapse 4"));
    assert_eq!(command.user.id.get(), 100000000000000003);
    let member = MemberInfo::of_member(command.member.as_deref().expect("member"));
    assert_eq!(member.roles, vec!["539082325061836999".to_string()]);
}

#[test]
fn slash_text_and_capacity_commands() {
    let text = command(interaction_json(
        "scalebot",
        json!([{"type": 3, "name": "text", "value": " status synapse "}]),
    ));
    assert_eq!(command_text(&text).as_deref(), Ok("status synapse"));
    let capacity = command(interaction_json("capacity", json!([])));
    assert_eq!(command_text(&capacity).as_deref(), Ok("capacity"));
    let unknown = command(interaction_json("cardsearch", json!([])));
    assert!(command_text(&unknown).unwrap_err().contains("/cardsearch"));
}

#[test]
fn slash_scale_without_replicas_is_explained() {
    let command = command(interaction_json(
        "scale",
        json!([{"type": 3, "name": "service", "value": "synapse"}]),
    ));
    let error = command_text(&command).unwrap_err();
    assert!(error.contains("replicas"), "{error}");
}

#[test]
fn command_definitions_offer_service_choices() {
    let services = vec!["synapse".to_string(), "nexus".to_string()];
    let definitions = command_definitions(&services);
    let scale = &definitions[0];
    assert_eq!(scale["name"], "scale");
    assert_eq!(scale["options"][0]["choices"][1]["value"], "nexus");
    assert_eq!(scale["options"][1]["type"], 4);
    let many: Vec<String> = (0..26).map(|i| format!("s{i}")).collect();
    assert!(
        command_definitions(&many)[0]["options"][0]
            .get("choices")
            .is_none()
    );
}

/// serenity turns an event its model cannot read into `Event::Unknown`
/// instead of an error; the adapter logs those. An interaction without the
/// `attachment_size_limit` field Discord now sends is one.
#[test]
fn incomplete_interaction_becomes_unknown() {
    let mut data = interaction_json("capacity", json!([]));
    data.as_object_mut()
        .unwrap()
        .remove("attachment_size_limit");
    match dispatch("INTERACTION_CREATE", data) {
        Event::Unknown(unknown) => assert_eq!(unknown.kind, "INTERACTION_CREATE"),
        other => panic!("expected an unknown event, got {other:?}"),
    }
}

#[test]
fn thread_parent_only_for_threads() {
    // A public thread, as `GET /channels/{id}` returns it.
    let thread = json!({
        "id": "1318211145678905345",
        "type": 11,
        "guild_id": "1318211145678901234",
        "parent_id": "1318211145678900001",
        "name": "Request ab12cd",
        "thread_metadata": {"archived": false, "auto_archive_duration": 1440, "locked": false}
    });
    assert_eq!(thread_parent(&thread), Some(1318211145678900001));
    // A text channel's parent is its category, which is not a thread parent.
    let text_channel = json!({
        "id": "1318211145678900001",
        "type": 0,
        "guild_id": "1318211145678901234",
        "parent_id": "1318211145678900000",
        "name": "ops"
    });
    assert_eq!(thread_parent(&text_channel), None);
    let no_parent = json!({"id": "1", "type": 12});
    assert_eq!(thread_parent(&no_parent), None);
}
