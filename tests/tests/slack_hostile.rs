//! Hostile tests of the Slack HTTP endpoints of `scalebot serve`. Each test
//! reproduces a bug found by attacking the endpoints with signed requests,
//! and fails until that bug is fixed. The setup is the one of `slack.rs`:
//! a real `redis-server`, kubesim, the fake Slack Web API and the bot as a
//! process.

use std::time::Duration;

use commands::coordination::testing::RedisServer;
use integration_tests::fake_slack::{
    self, BOT_TOKEN, FakeSlack, SIGNATURE_HEADER, StoredMessage, TIMESTAMP_HEADER,
};
use integration_tests::serve::ServeProcess;
use integration_tests::{KubesimProcess, TempDir, test_config};
use serde_json::Value;

const SECRET: &str = "8f742231b10e8888abcd99yyyzzz85a5";
const CHANNEL: &str = "C0OPS00001";
const REQUESTER: &str = "U0REQUEST1";
const APPROVER: &str = "U0APPROVE1";
const ADMIN: &str = "U0ADMIN001";
/// A user who is in no role list and is only named in user text.
const VICTIM: &str = "U0VICTIM01";

/// Time for a preview, a decision or a message to show up.
const SOON: Duration = Duration::from_secs(20);

struct Setup {
    fake: FakeSlack,
    bot: ServeProcess,
    kubesim: KubesimProcess,
    redis: RedisServer,
    http: reqwest::Client,
    _dir: TempDir,
}

/// Writes the test config with Slack users in the role lists, `ADMIN` as
/// an admin, and a `slack` section in HTTP mode.
fn slack_config(dir: &TempDir) -> std::path::PathBuf {
    let path = test_config(dir.path());
    let mut text = std::fs::read_to_string(&path).unwrap();
    for (list, user) in [
        ("requesters", REQUESTER),
        ("approvers", APPROVER),
        ("admins", ADMIN),
    ] {
        let heading = format!("  {list}:\n");
        assert!(text.contains(&heading), "test config has no {list} list");
        text = text.replacen(&heading, &format!("{heading}    - slack:{user}\n"), 1);
    }
    text.push_str(&format!(
        "\nslack:\n  mode: http\n  channels: [{CHANNEL}]\n"
    ));
    std::fs::write(&path, text).unwrap();
    path
}

async fn setup() -> Setup {
    let dir = TempDir::new("slack-hostile");
    let config = slack_config(&dir);
    let redis = RedisServer::start();
    let kubesim = KubesimProcess::start("butterfly");
    let fake = FakeSlack::start().await;
    let env = vec![
        ("SLACK_BOT_TOKEN", BOT_TOKEN.to_string()),
        ("SLACK_SIGNING_SECRET", SECRET.to_string()),
        ("SLACK_API_URL", fake.api_url()),
    ];
    let redis_url = redis.url();
    let kubeconfig = kubesim.kubeconfig.clone();
    let bot = tokio::task::spawn_blocking(move || {
        ServeProcess::start(&config, &kubeconfig, &redis_url, &env)
    })
    .await
    .unwrap();
    Setup {
        fake,
        bot,
        kubesim,
        redis,
        http: reqwest::Client::new(),
        _dir: dir,
    }
}

impl Setup {
    /// Posts `body` to `path`, signed with the signing secret now.
    async fn post_signed(&self, path: &str, content_type: &str, body: &str) -> (u16, String) {
        let timestamp = fake_slack::now_timestamp();
        let response = self
            .http
            .post(format!("{}{path}", self.bot.url))
            .header("content-type", content_type)
            .header(SIGNATURE_HEADER, fake_slack::sign(SECRET, timestamp, body))
            .header(TIMESTAMP_HEADER, timestamp.to_string())
            .body(body.to_string())
            .timeout(Duration::from_secs(10))
            .send()
            .await
            .expect("request to the bot");
        let status = response.status().as_u16();
        (status, response.text().await.unwrap_or_default())
    }

    async fn slash(&self, user: &str, command: &str, text: &str, trigger: &str) -> (u16, String) {
        let body = fake_slack::slash_command_form(
            command,
            text,
            user,
            CHANNEL,
            trigger,
            &self.fake.response_url(trigger),
        );
        self.post_signed(
            "/slack/commands",
            "application/x-www-form-urlencoded",
            &body,
        )
        .await
    }

    async fn click(
        &self,
        user: &str,
        preview: &Preview,
        action: &str,
        trigger: &str,
    ) -> (u16, String) {
        let payload = fake_slack::block_actions_payload(
            user,
            CHANNEL,
            &preview.ts,
            action,
            &preview.request_id,
            &self.fake.response_url(trigger),
            trigger,
        );
        let body = fake_slack::block_actions_form(&payload);
        self.post_signed(
            "/slack/interactions",
            "application/x-www-form-urlencoded",
            &body,
        )
        .await
    }

    /// Waits for the preview message and reads its request id from the
    /// Approve button.
    async fn preview(&self) -> Preview {
        let call = self
            .fake
            .wait_for_call(
                "chat.postMessage",
                |call| call.ok() && approve_value(&call.params).is_some(),
                SOON,
            )
            .await;
        Preview {
            request_id: approve_value(&call.params).unwrap(),
            ts: call.response["ts"].as_str().unwrap().to_string(),
        }
    }

    fn replicas(&self, deployment: &str) -> String {
        self.kubesim.kubectl_ok(&[
            "get",
            "deployment",
            deployment,
            "-n",
            "butterfly",
            "-o",
            "jsonpath={.spec.replicas}",
        ])
    }

    /// Waits until a thread reply of the preview contains `needle`.
    async fn wait_thread(&self, preview: &Preview, needle: &str) -> StoredMessage {
        let deadline = tokio::time::Instant::now() + SOON;
        loop {
            let replies: Vec<StoredMessage> = self
                .fake
                .thread(CHANNEL, &preview.ts)
                .into_iter()
                .skip(1)
                .collect();
            if let Some(found) = replies.iter().find(|m| message_text(m).contains(needle)) {
                return found.clone();
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "no thread reply contains {needle:?} within {SOON:?}; replies: {replies:#?}\nbot log:\n{}",
                self.bot.log()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn healthz(&self) -> u16 {
        self.http
            .get(format!("{}/healthz", self.bot.url))
            .timeout(Duration::from_secs(5))
            .send()
            .await
            .map(|response| response.status().as_u16())
            .unwrap_or(0)
    }
}

struct Preview {
    request_id: String,
    ts: String,
}

fn approve_value(params: &Value) -> Option<String> {
    params["blocks"].as_array()?.iter().find_map(|block| {
        block["elements"].as_array()?.iter().find_map(|element| {
            (element["action_id"] == "scalebot_approve")
                .then(|| element["value"].as_str().map(str::to_string))
                .flatten()
        })
    })
}

/// Text of a stored message: its `text` and every text in its blocks.
fn message_text(message: &StoredMessage) -> String {
    let mut text = message.text.clone().unwrap_or_default();
    if let Some(blocks) = &message.blocks {
        collect_texts(blocks, &mut text);
    }
    text
}

fn collect_texts(value: &Value, out: &mut String) {
    match value {
        Value::Object(map) => {
            for (key, value) in map {
                match (key.as_str(), value) {
                    ("text", Value::String(text)) => {
                        out.push('\n');
                        out.push_str(text);
                    }
                    _ => collect_texts(value, out),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|item| collect_texts(item, out)),
        _ => {}
    }
}

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

// Shows that a reject reason reaches the top-level `text` of the thread
// reply unescaped. Blocks are escaped, but the fallback `text` carries
// `<!channel>` and a disguised link as the approver typed them, and Slack
// parses that field as mrkdwn for notifications.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reject_reason_stays_escaped_in_fallback_text() {
    let setup = setup().await;
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
    setup.wait_thread(&preview, "rejected by").await;

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

// Shows that `render::escape` turns any `slack:U…` that a user types into a
// live `<@U…>` mention, so a reject reason pings a user who has no part in
// the request, in the channel-visible status line and thread reply.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn typed_identity_does_not_become_mention() {
    let setup = setup().await;
    setup
        .slash(REQUESTER, "/scale", "synapse 4", "12001.1.a")
        .await;
    let preview = setup.preview().await;

    let reject = format!("reject {} ask slack:{VICTIM} first", preview.request_id);
    setup
        .slash(APPROVER, "/scalebot", &reject, "12002.1.a")
        .await;
    setup.wait_thread(&preview, "rejected by").await;

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

// Shows that a button click during a Redis outage gets no feedback at all.
// The bot acknowledges the click with HTTP 200 and an ephemeral JSON body, but
// Slack ignores the body of a `block_actions` acknowledgement, and the bot
// neither calls `chat.postEphemeral` nor uses the payload's response_url.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn click_during_redis_outage_gets_feedback() {
    let mut setup = setup().await;
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

// Shows that an app mention during a Redis outage is lost. The Events API
// request is acknowledged with HTTP 200, so Slack does not retry it, and the
// user gets no message, because Slack shows no response body of an event.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mention_during_redis_outage_is_not_lost() {
    let mut setup = setup().await;
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
    let (status, _) = setup
        .post_signed("/slack/events", "application/json", &event)
        .await;

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

// Shows that one rate-limited `chat.update` leaves a rejected request's
// preview with live Approve and Reject buttons and its "waiting for
// approval" line for good. The bot gives up at once on a Retry-After above
// 60 s and never updates the preview again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limited_update_still_removes_buttons() {
    let setup = setup().await;
    setup
        .slash(REQUESTER, "/scale", "synapse 4", "14001.1.a")
        .await;
    let preview = setup.preview().await;

    setup.fake.rate_limit_next("chat.update", 61);
    setup
        .click(APPROVER, &preview, "scalebot_reject", "14002.1.a")
        .await;
    setup.wait_thread(&preview, "rejected by").await;

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

// Shows that a freeze is announced only to the admin who set it: the reply
// is ephemeral, so no one else in the channel learns that changes stopped
// until a request of theirs is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn freeze_is_announced_in_channel() {
    let setup = setup().await;
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

// Shows that a right-to-left mark (U+200F) after a service name makes the
// name unknown, while a zero-width space in the same place is dropped. The
// normaliser documents that invisible characters are removed, and text typed
// or pasted in right-to-left scripts can carry these marks.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invisible_direction_mark_is_ignored() {
    let setup = setup().await;
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
