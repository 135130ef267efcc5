//! Hostile tests of the Slack HTTP endpoints of `scalebot serve`. Each test
//! reproduces a fault found by attacking the endpoints with signed
//! requests, and failed until that fault was fixed. The setup is the
//! shared Slack harness: a real `redis-server`, kubesim, the fake Slack Web
//! API and the bot as a process.

use std::time::Duration;

use integration_tests::fake_slack::{self, FakeSlack};
use integration_tests::slack_bot::*;

/// A user who is in no role list and is only named in user text.
const VICTIM: &str = "U0VICTIM01";

/// Returns every text the bot sent to the channel with `chat.postMessage` or
/// `chat.update`: the top-level `text` (the notification fallback, which
/// Slack parses as mrkdwn) and every block text.
fn channel_texts(fake: &FakeSlack) -> Vec<String> {
    fake.calls()
        .into_iter()
        .filter(|call| matches!(call.method.as_str(), "chat.postMessage" | "chat.update"))
        .map(|call| {
            let mut text = call.params["text"].as_str().unwrap_or_default().to_string();
            collect_texts(&call.params["blocks"], &mut text);
            text
        })
        .collect()
}

// Regression test. Before the fix, a reject reason reaches the top-level `text` of the thread
// reply unescaped. Blocks are escaped, but the fallback `text` carries
// `<!channel>` and a disguised link as the approver typed them, and Slack
// parses that field as mrkdwn for notifications.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reject_reason_stays_escaped_in_fallback_text() {
    let setup = start("http").await;
    setup
        .slash(REQUESTER, "/scale", "synapse 4", "11001.1.a")
        .await;
    let preview = setup.preview().await;

    let reject = format!(
        "reject {} <!channel> see <https://evil.example|the runbook>",
        preview.request_id
    );
    let (status, _) = setup
        .slash(APPROVER, "/scalebot", &reject, "11002.1.a")
        .await;
    assert_eq!(status, 200);
    setup.wait_thread(&preview, "rejected by", SOON).await;

    let texts = channel_texts(&setup.fake);
    let unescaped_broadcast: Vec<&String> =
        texts.iter().filter(|t| t.contains("<!channel>")).collect();
    assert!(
        unescaped_broadcast.is_empty(),
        "user text posted as a live <!channel>: {unescaped_broadcast:#?}"
    );
    let unescaped_link: Vec<&String> = texts
        .iter()
        .filter(|t| t.contains("<https://evil.example"))
        .collect();
    assert!(
        unescaped_link.is_empty(),
        "user text posted as a live link: {unescaped_link:#?}"
    );
    assert_eq!(setup.replicas("synapse"), "3");
}

// Regression test. Before the fix, `render::escape` turns any `slack:U…` that a user types into a
// live `<@U…>` mention, so a reject reason pings a user who has no part in
// the request, in the channel-visible status line and thread reply.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn typed_identity_does_not_become_mention() {
    let setup = start("http").await;
    setup
        .slash(REQUESTER, "/scale", "synapse 4", "12001.1.a")
        .await;
    let preview = setup.preview().await;

    let reject = format!("reject {} ask slack:{VICTIM} first", preview.request_id);
    setup
        .slash(APPROVER, "/scalebot", &reject, "12002.1.a")
        .await;
    setup.wait_thread(&preview, "rejected by", SOON).await;

    let mention = format!("<@{VICTIM}>");
    let pinged: Vec<String> = channel_texts(&setup.fake)
        .into_iter()
        .filter(|t| t.contains(&mention))
        .collect();
    assert!(
        pinged.is_empty(),
        "typed text became a mention of {VICTIM}: {pinged:#?}"
    );
}

// Regression test. Before the fix, a button click during a Redis outage gets no feedback at all.
// The bot acknowledges the click with HTTP 200 and an ephemeral JSON body, but
// Slack ignores the body of a `block_actions` acknowledgement, and the bot
// neither calls `chat.postEphemeral` nor uses the payload's response_url.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn click_during_redis_outage_gets_feedback() {
    let mut setup = start("http").await;
    setup
        .slash(REQUESTER, "/scale", "synapse 4", "13001.1.a")
        .await;
    let preview = setup.preview().await;

    setup.redis.kill();
    let (status, _) = setup
        .click(APPROVER, &preview, "scalebot_approve", "13002.1.a")
        .await;
    assert_eq!(status, 200, "Slack shows an error for a non-200 click");

    let deadline = tokio::time::Instant::now() + SOON;
    let notified = loop {
        let ephemeral = setup
            .fake
            .ephemeral()
            .into_iter()
            .any(|m| m.user == APPROVER);
        let response_url = setup
            .fake
            .responses()
            .into_iter()
            .any(|r| r.id == "13002.1.a");
        if ephemeral || response_url || tokio::time::Instant::now() >= deadline {
            break ephemeral || response_url;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert!(
        notified,
        "the approver got no message that the click did nothing\nbot log:\n{}",
        setup.bot.log()
    );
    assert_eq!(setup.replicas("synapse"), "3");
    assert_eq!(setup.healthz().await, 200);
}

// Regression test. Before the fix, an app mention during a Redis outage is lost. The Events API
// request is acknowledged with HTTP 200, so Slack does not retry it, and the
// user gets no message, because Slack shows no response body of an event.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mention_during_redis_outage_is_not_lost() {
    let mut setup = start("http").await;
    setup.redis.kill();

    let event = serde_json::json!({
        "type": "event_callback",
        "team_id": fake_slack::TEAM_ID,
        "api_app_id": fake_slack::APP_ID,
        "event_id": "EvOUTAGE01",
        "event_time": fake_slack::now_timestamp(),
        "event": {
            "type": "app_mention",
            "user": REQUESTER,
            "channel": CHANNEL,
            "ts": "1700000000.000900",
            "text": format!("<@{}> scale synapse 4", fake_slack::BOT_USER_ID),
        },
    })
    .to_string();
    let (status, _) = setup.post_signed("/slack/events", &event).await;

    // Either Slack is asked to deliver the event again (any status other
    // than 2xx) or the user gets a message that nothing happened.
    let retried = !(200..300).contains(&status);
    let deadline = tokio::time::Instant::now() + SOON;
    let notified = loop {
        let notified = setup
            .fake
            .ephemeral()
            .into_iter()
            .any(|m| m.user == REQUESTER)
            || !setup.fake.messages(CHANNEL).is_empty();
        if retried || notified || tokio::time::Instant::now() >= deadline {
            break notified;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert!(
        retried || notified,
        "mention acknowledged with {status} and dropped without a word\nbot log:\n{}",
        setup.bot.log()
    );
    assert_eq!(setup.healthz().await, 200);
}

// Regression test. Before the fix, one rate-limited `chat.update` leaves a rejected request's
// preview with live Approve and Reject buttons and its "waiting for
// approval" line for good. The bot gives up at once on a Retry-After above
// 60 s and never updates the preview again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limited_update_still_removes_buttons() {
    let setup = start("http").await;
    setup
        .slash(REQUESTER, "/scale", "synapse 4", "14001.1.a")
        .await;
    let preview = setup.preview().await;

    setup.fake.rate_limit_next("chat.update", 61);
    setup
        .click(APPROVER, &preview, "scalebot_reject", "14002.1.a")
        .await;
    setup.wait_thread(&preview, "rejected by", SOON).await;

    // The fake's Retry-After is 61 s, so a retry after it has time to land.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(61) + SOON;
    loop {
        let stored = setup
            .fake
            .messages(CHANNEL)
            .into_iter()
            .find(|m| m.ts == preview.ts)
            .expect("the preview is stored");
        let blocks = stored.blocks.clone().unwrap_or_default().to_string();
        if !blocks.contains("scalebot_approve") {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the rejected request still shows its buttons: {blocks}\nbot log:\n{}",
            setup.bot.log()
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert_eq!(setup.replicas("synapse"), "3");
}

// Regression test. Before the fix, a freeze is announced only to the admin who set it: the reply
// is ephemeral, so no one else in the channel learns that changes stopped
// until a request of theirs is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn freeze_is_announced_in_channel() {
    let setup = start("http").await;
    let (status, body) = setup
        .slash(
            ADMIN,
            "/scalebot",
            "freeze incident 42 db failover",
            "15001.1.a",
        )
        .await;
    assert_eq!(status, 200);

    let deadline = tokio::time::Instant::now() + SOON;
    loop {
        let announced = setup.fake.messages(CHANNEL).iter().any(|m| {
            message_text(m).contains("frozen by") && message_text(m).contains("incident 42")
        });
        if announced {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the freeze was not posted in the channel; only the admin saw {body}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

// Regression test. Before the fix, a right-to-left mark (U+200F) after a service name makes the
// name unknown, while a zero-width space in the same place is dropped. The
// normaliser documents that invisible characters are removed, and text typed
// or pasted in right-to-left scripts can carry these marks.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invisible_direction_mark_is_ignored() {
    let setup = start("http").await;
    let (status, body) = setup
        .slash(REQUESTER, "/scale", "synapse\u{200F} 4", "16001.1.a")
        .await;
    assert_eq!(status, 200);
    assert!(
        !body.contains("unknown service"),
        "a right-to-left mark made the service unknown: {body}"
    );
    setup.preview().await;
}
