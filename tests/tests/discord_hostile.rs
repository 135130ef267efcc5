//! Hostile tests of the Discord adapter: each test reproduces a fault found
//! by attacking the adapter through the fake Discord, a real
//! `redis-server` and an in-process kubesim, and failed until that fault
//! was fixed.

use std::time::Duration;

use adapters::discord::rest::Rest;
use adapters::secret::Secret;
use commands::coordination::PendingState;
use integration_tests::discord_bot::{DiscordBot as Bot, *};
use integration_tests::fake_discord::{APPLICATION_ID, FakeDiscord, TOKEN};
use serde_json::json;

/// How long a test watches for something that must not happen.
const QUIET: Duration = Duration::from_secs(3);

/// Regression test. Before the fix, the missed-reaction scan reads every ✅ before any ❌: when
/// one approver rejected and another approved while the bot was
/// disconnected, the request is always approved and the cluster scaled.
/// Discord stores no time for reactions, so the scan cannot know which came
/// first. Whatever order it picks must not turn a rejection into a change.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn scan_does_not_override_rejection() {
    let bot = Bot::start(Duration::from_secs(900)).await;
    let (request_id, preview_id) = bot.preview(5_001).await;

    bot.fake.disconnect().await;
    bot.fake.add_reaction_silently(preview_id, REJECT, APPROVER);
    bot.fake
        .add_reaction_silently(preview_id, APPROVE, SECOND_APPROVER);
    bot.fake.reconnect();
    bot.fake.wait_for_session(WAIT).await;

    let rejections_read =
        format!("/channels/{CHANNEL}/messages/{preview_id}/reactions/{REJECT_PATH}");
    bot.fake
        .wait_for_call(|c| c.method == "GET" && c.route() == rejections_read, WAIT)
        .await;
    tokio::time::sleep(QUIET).await;

    assert_eq!(
        bot.replicas("synapse").await,
        3,
        "synapse was scaled although an approver rejected the request"
    );
    assert_ne!(
        bot.state_of(&request_id).await,
        PendingState::Approved,
        "the scan approved a request that an approver rejected"
    );
    bot.stop().await;
}

/// Regression test. Before the fix, a `retry_after` too large for a `Duration` (here 1e20
/// seconds, in the 429 body and headers) panics the REST call in
/// `Duration::from_secs_f64` instead of being cut to the 60-second maximum
/// wait. The panic kills the task making the call: a reply task, an event
/// handler, or at start the whole adapter.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn huge_retry_after_does_not_panic() {
    let fake = FakeDiscord::start().await;
    fake.rate_limit_next(1, 1e20);
    let rest = Rest::new(&fake.base_url(), Secret::new(TOKEN), APPLICATION_ID)
        .expect("build the REST client");
    let call = tokio::spawn(async move { rest.get_channel(CHANNEL).await.map(drop) });

    match tokio::time::timeout(Duration::from_secs(5), call).await {
        // Still waiting out the (capped) rate limit: no panic.
        Err(_elapsed) => {}
        Ok(Ok(_result)) => {}
        Ok(Err(join_error)) => {
            assert!(
                !join_error.is_panic(),
                "the REST call panicked on a large retry_after: {join_error}"
            );
        }
    }
}

/// Regression test. Before the fix, a transport failure of an interaction call puts the
/// interaction token into the error text that the adapter logs. reqwest
/// errors include the URL, and interaction and webhook URLs contain the
/// token, which stays valid for 15 minutes and lets its holder edit or send
/// the bot's responses.
/// The route in the same error already hides the token as `:token`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transport_error_hides_interaction_token() {
    // A server that accepts connections and closes them without a response.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind a closing server");
    let address = listener.local_addr().expect("local address");
    let server = tokio::spawn(async move {
        loop {
            match listener.accept().await {
                Ok((stream, _peer)) => drop(stream),
                Err(_) => return,
            }
        }
    });
    let rest = Rest::new(
        &format!("http://{address}"),
        Secret::new(TOKEN),
        APPLICATION_ID,
    )
    .expect("build the REST client");
    let interaction_token = "secret-interaction-token-0123456789";

    let callback = tokio::time::timeout(
        WAIT,
        rest.interaction_callback(1, interaction_token, json!({ "type": 5 })),
    )
    .await
    .expect("the callback fails within the timeout");
    let error = callback
        .expect_err("the server closes the connection")
        .to_string();
    assert!(
        !error.contains(interaction_token),
        "the callback error contains the interaction token: {error}"
    );

    let followup = tokio::time::timeout(
        WAIT,
        rest.followup(interaction_token, json!({ "content": "x" })),
    )
    .await
    .expect("the follow-up fails within the timeout");
    let error = followup
        .expect_err("the server closes the connection")
        .to_string();
    assert!(
        !error.contains(interaction_token),
        "the follow-up error contains the interaction token: {error}"
    );
    assert!(!error.contains(TOKEN), "the error contains the bot token");
    server.abort();
}

/// Regression test. Before the fix, an approver's ✅ made while Redis is down is dropped without
/// any reply: the adapter's lookup of the preview's request fails and only
/// a warning is logged. A command typed at that moment gets a reply that
/// Redis is unavailable, and the live reaction is not applied
/// when Redis returns (only a later gateway reconnect rescans it).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn reaction_while_redis_down_gets_reply() {
    let mut bot = Bot::start(Duration::from_secs(900)).await;
    let (_request_id, preview_id) = bot.preview(5_101).await;

    bot.redis.kill();
    bot.fake
        .add_reaction(preview_id, APPROVE, APPROVER, true)
        .await;

    let mention = format!("<@{APPROVER}>");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let replied = loop {
        let replied = bot.fake.messages_in(CHANNEL).iter().any(|message| {
            message["message_reference"]["message_id"].as_str()
                == Some(preview_id.to_string().as_str())
                && message["content"]
                    .as_str()
                    .is_some_and(|content| content.starts_with(&mention))
        });
        if replied || tokio::time::Instant::now() > deadline {
            break replied;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert!(
        replied,
        "the approver got no reply to a reaction that was not applied; calls:\n{}",
        bot.fake.describe_calls()
    );
    bot.shutdown.send_replace(true);
}
