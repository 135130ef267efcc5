//! End-to-end tests of the Discord adapter: the adapter runs against the
//! local fake Discord (REST and gateway), with an engine on an in-process
//! kubesim and a real `redis-server`.

use std::time::Duration;

use adapters::discord;
use commands::coordination::PendingState;
use commands::coordination::testing::RedisServer;
use commands::engine::{Reply, ReplyBody};
use integration_tests::discord_bot::{DiscordBot as Bot, *};
use integration_tests::fake_discord::{
    self, APPLICATION_ID, BOT_USER_ID, Call, FakeDiscord, GUILD_ID, TOKEN,
};
use serde_json::json;

/// How long a test watches for something that must not happen.
const QUIET: Duration = Duration::from_secs(2);

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn prefix_scale_posts_embed_with_reactions() {
    let bot = Bot::start(Duration::from_secs(900)).await;
    let registered = format!("/applications/{APPLICATION_ID}/guilds/{GUILD_ID}/commands");
    let commands = bot
        .fake
        .wait_for_call(|c| c.method == "PUT" && c.route() == registered, WAIT)
        .await;
    let names: Vec<&str> = commands
        .body
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|c| c["name"].as_str())
        .collect();
    assert_eq!(names, vec!["scale", "capacity", "scalebot"]);

    let (request_id, preview_id) = bot.preview(1_001).await;
    let preview = bot.fake.message(preview_id).unwrap();
    assert_eq!(preview["message_reference"]["message_id"], "1001");
    let replicas = field(&preview, "Replicas").expect("Replicas field");
    assert!(replicas.starts_with("3 → 4"), "{replicas}");
    assert!(field(&preview, "Expires").is_some());
    assert!(field(&preview, "Approvals needed").is_some());
    assert_eq!(bot.state_of(&request_id).await, PendingState::Pending);
    let failed: Vec<Call> = bot
        .fake
        .calls()
        .into_iter()
        .filter(|c| c.status >= 400)
        .collect();
    assert!(failed.is_empty(), "failed calls: {failed:?}");
    bot.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn only_an_approver_reaction_approves() {
    let bot = Bot::start(Duration::from_secs(900)).await;
    let (request_id, preview_id) = bot.preview(1_002).await;

    // Discord sends the bot's own seeded reaction back as an event.
    bot.fake
        .add_reaction(preview_id, APPROVE, BOT_USER_ID, true)
        .await;
    // The requester, with the member field; the outsider without it, so
    // that the bot reads the member through REST.
    bot.fake
        .add_reaction(preview_id, APPROVE, REQUESTER, true)
        .await;
    bot.fake
        .add_reaction(preview_id, APPROVE, OUTSIDER, false)
        .await;
    let member_path = format!("/guilds/{GUILD_ID}/members/{OUTSIDER}");
    bot.fake
        .wait_for_call(|c| c.method == "GET" && c.route() == member_path, WAIT)
        .await;
    bot.fake
        .wait_until(
            "two refusals",
            |fake| {
                fake.messages_in(CHANNEL)
                    .iter()
                    .filter(|m| {
                        m["message_reference"]["message_id"].as_str()
                            == Some(preview_id.to_string().as_str())
                    })
                    .count()
                    >= 2
            },
            WAIT,
        )
        .await;
    tokio::time::sleep(QUIET).await;
    assert_eq!(bot.state_of(&request_id).await, PendingState::Pending);
    assert_eq!(bot.replicas("synapse").await, 3);
    let refusals = bot.replies_to(preview_id);
    assert_eq!(refusals.len(), 2, "one reply per human: {refusals:?}");
    assert!(
        refusals
            .iter()
            .any(|r| r.starts_with(&format!("<@{REQUESTER}>")) && r.contains("another approver")),
        "{refusals:?}"
    );
    assert!(
        refusals
            .iter()
            .any(|r| r.starts_with(&format!("<@{OUTSIDER}>"))),
        "{refusals:?}"
    );
    assert!(
        !refusals
            .iter()
            .any(|r| r.contains(&BOT_USER_ID.to_string()))
    );

    // The same reaction again (removed and added) gets no second reply.
    bot.fake
        .add_reaction(preview_id, APPROVE, OUTSIDER, true)
        .await;
    tokio::time::sleep(QUIET).await;
    assert_eq!(bot.replies_to(preview_id).len(), 2);

    bot.fake
        .add_reaction(preview_id, APPROVE, APPROVER, true)
        .await;
    bot.wait_for_replicas("synapse", 4).await;
    bot.fake
        .wait_until(
            "the embed shows the result",
            |fake| {
                fake.message(preview_id)
                    .is_some_and(|m| field(&m, "Result").is_some())
            },
            WAIT,
        )
        .await;
    let preview = bot.fake.message(preview_id).unwrap();
    let decision = field(&preview, "Decision").expect("Decision field");
    assert!(
        decision.contains(&format!("discord:{APPROVER}")),
        "{decision}"
    );
    assert!(field(&preview, "Result").unwrap().starts_with("done"));
    let thread = bot.fake.messages_in(preview_id);
    assert!(
        !thread.is_empty(),
        "progress goes to the thread on the preview"
    );
    let thread_started = format!("/channels/{CHANNEL}/messages/{preview_id}/threads");
    let starts = bot
        .fake
        .calls()
        .iter()
        .filter(|c| c.route() == thread_started && c.status < 300)
        .count();
    assert_eq!(starts, 1);
    bot.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn reaction_while_disconnected_is_applied_after_resume() {
    let bot = Bot::start(Duration::from_secs(900)).await;
    let (request_id, preview_id) = bot.preview(1_003).await;

    bot.fake.disconnect().await;
    bot.fake
        .add_reaction_silently(preview_id, APPROVE, APPROVER);
    tokio::time::sleep(QUIET).await;
    assert_eq!(bot.state_of(&request_id).await, PendingState::Pending);
    bot.fake.reconnect();

    bot.wait_for_replicas("synapse", 4).await;
    let (identifies, resumes) = bot.fake.sessions();
    assert_eq!(identifies, 1);
    assert!(resumes >= 1, "the bot resumed the session");
    assert_eq!(bot.state_of(&request_id).await, PendingState::Approved);
    bot.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn reaction_while_disconnected_is_applied_after_ready() {
    let bot = Bot::start(Duration::from_secs(900)).await;
    let (request_id, preview_id) = bot.preview(1_007).await;

    bot.fake.invalidate_session().await;
    bot.fake
        .add_reaction_silently(preview_id, APPROVE, APPROVER);
    tokio::time::sleep(QUIET).await;
    assert_eq!(bot.state_of(&request_id).await, PendingState::Pending);
    bot.fake.reconnect();

    bot.wait_for_replicas("synapse", 4).await;
    let (identifies, _resumes) = bot.fake.sessions();
    assert_eq!(identifies, 2, "the bot identified again after op 9");
    assert_eq!(bot.state_of(&request_id).await, PendingState::Approved);
    bot.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn reaction_after_expiry_is_not_applied() {
    let bot = Bot::start(Duration::from_secs(2)).await;
    let (request_id, preview_id) = bot.preview(1_004).await;
    bot.fake
        .wait_until(
            "the embed shows the expiry",
            |fake| {
                fake.message(preview_id)
                    .is_some_and(|m| field(&m, "Decision").is_some_and(|d| d.contains("expired")))
            },
            WAIT,
        )
        .await;

    // Live: the engine rejects the approval and replies to the approver why.
    bot.fake
        .add_reaction(preview_id, APPROVE, APPROVER, true)
        .await;
    bot.fake
        .wait_until(
            "a reply about the expiry",
            |fake| {
                fake.messages_in(CHANNEL).iter().any(|m| {
                    m["content"].as_str().is_some_and(|c| {
                        c.starts_with(&format!("<@{APPROVER}>")) && c.contains("expired")
                    })
                })
            },
            WAIT,
        )
        .await;
    // After a reconnect, the scan skips the expired request.
    bot.fake.disconnect().await;
    bot.fake
        .add_reaction_silently(preview_id, APPROVE, OUTSIDER);
    bot.fake.reconnect();
    bot.fake.wait_for_session(WAIT).await;
    tokio::time::sleep(QUIET).await;
    assert_eq!(bot.state_of(&request_id).await, PendingState::Expired);
    assert_eq!(bot.replicas("synapse").await, 3);
    let member_path = format!("/guilds/{GUILD_ID}/members/{OUTSIDER}");
    assert!(
        !bot.fake.calls().iter().any(|c| c.route() == member_path),
        "the scan read a reaction of an expired request"
    );
    bot.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn long_result_is_split_within_limits() {
    let bot = Bot::start(Duration::from_secs(900)).await;
    let (request_id, preview_id) = bot.preview(1_005).await;
    let details: Vec<String> = (0..100)
        .map(|i| format!("pod synapse-{i:03} Running on node-{i:02}"))
        .collect();
    let total: usize = details.iter().map(|d| d.chars().count() + 1).sum();
    assert!(total >= 3000, "the result has {total} characters");
    let reply = Reply::new(
        &format!("discord:{CHANNEL}"),
        Some(request_id.clone()),
        ReplyBody::Result {
            succeeded: false,
            summary: "synapse was interrupted".to_string(),
            details: details.clone(),
        },
    );
    bot.routed
        .send(reply)
        .await
        .expect("the adapter takes routed replies");
    bot.fake
        .wait_until(
            "the last line in the thread",
            |fake| {
                fake.messages_in(preview_id).iter().any(|m| {
                    m["content"]
                        .as_str()
                        .is_some_and(|c| c.contains("synapse-099"))
                })
            },
            WAIT,
        )
        .await;
    let thread = bot.fake.messages_in(preview_id);
    assert!(thread.len() >= 2, "split into {} messages", thread.len());
    for message in &thread {
        assert!(message["content"].as_str().unwrap().chars().count() <= 2000);
    }
    let text: String = thread
        .iter()
        .map(|m| m["content"].as_str().unwrap())
        .collect::<Vec<_>>()
        .join("\n");
    for line in &details {
        assert!(text.contains(line.as_str()), "missing {line}");
    }
    let rejected: Vec<Call> = bot
        .fake
        .calls()
        .into_iter()
        .filter(|c| c.status == 400)
        .collect();
    assert!(rejected.is_empty(), "rejected calls: {rejected:?}");
    let preview = bot.fake.message(preview_id).unwrap();
    assert!(field(&preview, "Result").unwrap().starts_with("FAILED"));
    bot.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn slash_commands_defer_then_answer() {
    let bot = Bot::start(Duration::from_secs(900)).await;
    let options = json!([
        {"type": 3, "name": "service", "value": "synapse"},
        {"type": 4, "name": "replicas", "value": 4}
    ]);
    bot.fake.expect_interaction("token-scale", CHANNEL);
    let data = fake_discord::interaction_create(
        2_001,
        "token-scale",
        CHANNEL,
        REQUESTER,
        &[OTHER_ROLE],
        "scale",
        options,
    );
    bot.fake.dispatch("INTERACTION_CREATE", data).await;
    let deferred = bot
        .fake
        .wait_for_call(
            |c| c.route() == "/interactions/2001/token-scale/callback",
            WAIT,
        )
        .await;
    assert_eq!(deferred.body["type"], 5);
    let (title, preview_id) = bot.posted_preview().await;
    assert!(title.contains("scale synapse"), "{title}");
    let reaction =
        format!("/channels/{CHANNEL}/messages/{preview_id}/reactions/{APPROVE_PATH}/@me");
    bot.fake
        .wait_for_call(|c| c.method == "PUT" && c.route() == reaction, WAIT)
        .await;
    let original = format!("/webhooks/{APPLICATION_ID}/token-scale/messages/@original");
    let answered = bot
        .fake
        .wait_for_call(|c| c.method == "PATCH" && c.route() == original, WAIT)
        .await;
    let content = answered.body["content"].as_str().expect("answer text");
    assert!(content.starts_with("Preview of request"), "{content}");

    // An invalid target: the error goes only to the user.
    bot.fake.expect_interaction("token-bad", CHANNEL);
    let options = json!([{"type": 3, "name": "text", "value": "scale synapse 99"}]);
    let data = fake_discord::interaction_create(
        2_002,
        "token-bad",
        CHANNEL,
        REQUESTER,
        &[OTHER_ROLE],
        "scalebot",
        options,
    );
    bot.fake.dispatch("INTERACTION_CREATE", data).await;
    let followup = format!("/webhooks/{APPLICATION_ID}/token-bad");
    let error = bot
        .fake
        .wait_for_call(|c| c.method == "POST" && c.route() == followup, WAIT)
        .await;
    assert_eq!(error.body["flags"], 64, "errors are ephemeral");
    assert!(
        error.body["content"]
            .as_str()
            .unwrap()
            .starts_with("error:")
    );

    // A command in a channel outside the allow-list is refused at once.
    let other_channel = CHANNEL + 1;
    bot.fake
        .expect_interaction("token-elsewhere", other_channel);
    let data = fake_discord::interaction_create(
        2_003,
        "token-elsewhere",
        other_channel,
        REQUESTER,
        &[],
        "capacity",
        json!([]),
    );
    bot.fake.dispatch("INTERACTION_CREATE", data).await;
    let refused = bot
        .fake
        .wait_for_call(
            |c| c.route() == "/interactions/2003/token-elsewhere/callback",
            WAIT,
        )
        .await;
    assert_eq!(refused.body["type"], 4);
    assert_eq!(refused.body["data"]["flags"], 64);
    bot.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn rate_limited_call_is_retried() {
    let bot = Bot::start(Duration::from_secs(900)).await;
    bot.fake.rate_limit_next(1, 0.5);
    let (_request_id, preview_id) = bot.preview(1_006).await;
    let calls = bot.fake.calls();
    let route = format!("/channels/{CHANNEL}/messages");
    let limited = calls
        .iter()
        .position(|c| c.status == 429)
        .expect("the fake answered one call with 429");
    assert_eq!(
        calls[limited].route(),
        route,
        "the first call after start is the preview"
    );
    assert!(
        calls[limited + 1..]
            .iter()
            .any(|c| c.route() == route && c.status == 200),
        "the preview was sent again after the 429"
    );
    assert!(bot.fake.message(preview_id).is_some());
    bot.stop().await;
}

/// Writes the test config with a `discord` section and Discord principals.
fn serve_config(dir: &integration_tests::TempDir) -> std::path::PathBuf {
    let path = integration_tests::test_config(dir.path());
    let mut text = std::fs::read_to_string(&path).expect("read the test config");
    for (section, principal) in [
        ("  requesters:\n", format!("discord:{REQUESTER}")),
        ("  approvers:\n", format!("discord-role:{APPROVER_ROLE}")),
    ] {
        assert!(text.contains(section), "the test config has no {section:?}");
        text = text.replacen(section, &format!("{section}    - {principal}\n"), 1);
    }
    text.push_str(&format!(
        "\ndiscord:\n  commands: guild\n  guilds: [\"{GUILD_ID}\"]\n  channels: [\"{CHANNEL}\"]\n  prefix: \"!\"\n"
    ));
    std::fs::write(&path, text).expect("write the test config");
    path
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn serve_runs_the_discord_adapter() {
    let dir = integration_tests::TempDir::new("discord-serve");
    let config = serve_config(&dir);
    let redis = RedisServer::start();
    let kubesim = integration_tests::KubesimProcess::start("butterfly");
    let fake = FakeDiscord::start().await;
    fake.add_member(REQUESTER, &[OTHER_ROLE], false);
    fake.add_member(APPROVER, &[APPROVER_ROLE], false);
    let env = vec![
        ("DISCORD_TOKEN", TOKEN.to_string()),
        ("DISCORD_APPLICATION_ID", APPLICATION_ID.to_string()),
        (discord::API_BASE_ENV, fake.base_url()),
    ];
    let redis_url = redis.url();
    let kubeconfig = kubesim.kubeconfig.clone();
    let mut serve = tokio::task::spawn_blocking(move || {
        integration_tests::serve::ServeProcess::start(&config, &kubeconfig, &redis_url, &env)
    })
    .await
    .expect("start scalebot serve");
    fake.wait_for_session(WAIT).await;

    let data =
        fake_discord::message_create(3_001, CHANNEL, REQUESTER, &[OTHER_ROLE], "!scale synapse 4");
    fake.dispatch("MESSAGE_CREATE", data).await;
    let posted = fake
        .wait_for_call(
            |c| is_post_in(c, CHANNEL) && c.body["embeds"].is_array(),
            WAIT,
        )
        .await;
    let title = posted.body["embeds"][0]["title"]
        .as_str()
        .unwrap()
        .to_string();
    let preview_id: u64 = fake
        .messages_in(CHANNEL)
        .into_iter()
        .find(|m| m["embeds"][0]["title"].as_str() == Some(title.as_str()))
        .and_then(|m| m["id"].as_str().and_then(|id| id.parse().ok()))
        .expect("the preview message");
    let reaction = format!("/channels/{CHANNEL}/messages/{preview_id}/reactions/{REJECT_PATH}/@me");
    fake.wait_for_call(|c| c.method == "PUT" && c.route() == reaction, WAIT)
        .await;
    fake.add_reaction(preview_id, APPROVE, APPROVER, true).await;

    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let replicas = kubesim.kubectl_ok(&[
            "get",
            "deployment",
            "synapse",
            "-n",
            "butterfly",
            "-o",
            "jsonpath={.spec.replicas}",
        ]);
        if replicas.trim() == "4" {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "synapse has {replicas} replicas; bot log:\n{}",
            serve.log()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(serve.terminate(WAIT), "scalebot serve exits on SIGTERM");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn thread_of_allowed_channel_takes_commands() {
    const THREAD: u64 = 400_000_000_000_000_777;
    const ELSEWHERE: u64 = 400_000_000_000_000_888;
    let bot = Bot::start(Duration::from_secs(900)).await;
    bot.fake.add_thread(THREAD, CHANNEL);

    bot.say_in(ELSEWHERE, 2_101, REQUESTER, "!scalebot status synapse")
        .await;
    bot.say_in(THREAD, 2_102, REQUESTER, "!scalebot status synapse")
        .await;
    let answer = bot
        .fake
        .wait_for_call(|c| is_post_in(c, THREAD), WAIT)
        .await;
    assert!(
        answer.body.to_string().contains("synapse"),
        "{}",
        answer.body
    );
    tokio::time::sleep(QUIET).await;
    assert!(
        bot.fake.messages_in(ELSEWHERE).is_empty(),
        "the bot answered in a channel outside the allow-list"
    );
    bot.stop().await;
}
