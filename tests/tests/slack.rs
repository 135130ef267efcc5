//! `scalebot serve` with Slack in HTTP mode and in Socket Mode, against
//! kubesim, a real `redis-server` and the fake Slack Web API. Requests are
//! signed as Slack signs them, and every effect is checked through the
//! fake's records and kubectl.

use std::time::Duration;

use commands::coordination::testing::RedisServer;
use commands::coordination::{AuditEntry, AuditKind, Coordinator, unix_now_ms};
use integration_tests::fake_slack::{
    self, APP_TOKEN, BOT_TOKEN, FakeSlack, SIGNATURE_HEADER, StoredMessage, TIMESTAMP_HEADER,
};
use integration_tests::serve::ServeProcess;
use integration_tests::{KubesimProcess, TempDir, test_config};
use serde_json::Value;

const SECRET: &str = "8f742231b10e8888abcd99yyyzzz85a5";
const CHANNEL: &str = "C0OPS00001";
const REQUESTER: &str = "U0REQUEST1";
const APPROVER: &str = "U0APPROVE1";
const APPROVER2: &str = "U0APPROVE2";
const GROUP_MEMBER: &str = "U0GROUPMB1";
const GROUP: &str = "S0APPROVRS";
const OUTSIDER: &str = "U0OUTSIDE1";

/// Time for a preview, a decision or a message to show up.
const SOON: Duration = Duration::from_secs(20);
/// Time for a scale procedure to finish on kubesim's fast timing.
const PROCEDURE: Duration = Duration::from_secs(90);

struct Setup {
    fake: FakeSlack,
    bot: ServeProcess,
    kubesim: KubesimProcess,
    redis: RedisServer,
    http: reqwest::Client,
    _dir: TempDir,
}

/// Writes the test config with Slack users in the role lists and a
/// `slack` section in `mode`.
fn slack_config(dir: &TempDir, mode: &str) -> std::path::PathBuf {
    let path = test_config(dir.path());
    let mut text = std::fs::read_to_string(&path).unwrap();
    text = text.replacen(
        "  requesters:\n",
        &format!("  requesters:\n    - slack:{REQUESTER}\n"),
        1,
    );
    text = text.replacen(
        "  approvers:\n",
        &format!("  approvers:\n    - slack:{APPROVER}\n    - slack:{APPROVER2}\n    - slack-group:{GROUP}\n"),
        1,
    );
    text.push_str(&format!(
        "\nslack:\n  mode: {mode}\n  channels: [{CHANNEL}]\n"
    ));
    std::fs::write(&path, text).unwrap();
    path
}

async fn setup(mode: &str) -> Setup {
    let dir = TempDir::new("slack-test");
    let config = slack_config(&dir, mode);
    let redis = RedisServer::start();
    let kubesim = KubesimProcess::start("butterfly");
    let fake = FakeSlack::start().await;
    fake.set_usergroup(GROUP, &[GROUP_MEMBER]);
    let env = vec![
        ("SLACK_BOT_TOKEN", BOT_TOKEN.to_string()),
        ("SLACK_SIGNING_SECRET", SECRET.to_string()),
        ("SLACK_APP_TOKEN", APP_TOKEN.to_string()),
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
    /// Posts `body` to `path`, signed with `secret` at `timestamp`.
    async fn post_signed_with(
        &self,
        path: &str,
        body: &str,
        secret: &str,
        timestamp: i64,
    ) -> (u16, String) {
        let signature = fake_slack::sign(secret, timestamp, body);
        self.post_raw(path, body, &signature, timestamp).await
    }

    async fn post_raw(
        &self,
        path: &str,
        body: &str,
        signature: &str,
        timestamp: i64,
    ) -> (u16, String) {
        let response = self
            .http
            .post(format!("{}{path}", self.bot.url))
            .header("content-type", "application/x-www-form-urlencoded")
            .header(SIGNATURE_HEADER, signature)
            .header(TIMESTAMP_HEADER, timestamp.to_string())
            .body(body.to_string())
            .timeout(Duration::from_secs(10))
            .send()
            .await
            .expect("request to the bot");
        let status = response.status().as_u16();
        (status, response.text().await.unwrap_or_default())
    }

    async fn post_signed(&self, path: &str, body: &str) -> (u16, String) {
        self.post_signed_with(path, body, SECRET, fake_slack::now_timestamp())
            .await
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
        self.post_signed("/slack/commands", &body).await
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
        self.post_signed("/slack/interactions", &body).await
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
        assert!(call.ok(), "preview rejected by Slack: {}", call.response);
        Preview {
            request_id: approve_value(&call.params).unwrap(),
            ts: call.response["ts"].as_str().unwrap().to_string(),
            blocks: call.params["blocks"].clone(),
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

    fn thread(&self, preview: &Preview) -> Vec<StoredMessage> {
        self.fake.thread(CHANNEL, &preview.ts)
    }

    /// Waits until a thread reply of the preview contains `needle`.
    async fn wait_thread(&self, preview: &Preview, needle: &str, timeout: Duration) -> String {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let texts: Vec<String> = self
                .thread(preview)
                .iter()
                .skip(1)
                .map(message_text)
                .collect();
            if let Some(found) = texts.iter().find(|t| t.contains(needle)) {
                return found.clone();
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "no thread reply contains {needle:?} within {timeout:?}; replies: {texts:#?}\nbot log:\n{}",
                self.bot.log()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Waits for an ephemeral message to `user` that contains `needle`.
    async fn wait_ephemeral(&self, user: &str, needle: &str) -> String {
        let deadline = tokio::time::Instant::now() + SOON;
        loop {
            let texts: Vec<String> = self
                .fake
                .ephemeral()
                .into_iter()
                .filter(|m| m.user == user)
                .map(|m| m.text.unwrap_or_default())
                .collect();
            if let Some(found) = texts.iter().find(|t| t.contains(needle)) {
                return found.clone();
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "no ephemeral message to {user} contains {needle:?}; got {texts:#?}\nbot log:\n{}",
                self.bot.log()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

struct Preview {
    request_id: String,
    ts: String,
    blocks: Value,
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

/// Every Web API call the bot made was answered `ok`.
fn assert_no_slack_errors(fake: &FakeSlack) {
    let failed: Vec<String> = fake
        .calls()
        .into_iter()
        .filter(|call| !call.ok())
        .map(|call| format!("{} -> {}", call.method, call.response))
        .collect();
    assert!(failed.is_empty(), "Slack rejected calls: {failed:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slash_scale_then_button_approval_scales_synapse() {
    let setup = setup("http").await;
    let before = setup.replicas("synapse");
    assert_eq!(before, "3");

    let (status, _) = setup
        .slash(REQUESTER, "/scale", "synapse 4", "1001.1.a")
        .await;
    assert_eq!(status, 200);
    let preview = setup.preview().await;
    let preview_text = preview.blocks.to_string();
    assert_eq!(preview.blocks[0]["type"], "header");
    assert!(preview_text.contains("3 → 4"), "{preview_text}");
    for label in [
        "Replicas",
        "HPA",
        "Fit",
        "PDB",
        "Lock",
        "Approvals needed",
        "Expires",
        "Steps",
    ] {
        assert!(
            preview_text.contains(label),
            "preview lacks {label}: {preview_text}"
        );
    }
    assert!(preview_text.contains("scalebot_reject"), "{preview_text}");

    let (status, _) = setup
        .click(APPROVER, &preview, "scalebot_approve", "2001.1.a")
        .await;
    assert_eq!(status, 200);
    let update = setup
        .fake
        .wait_for_call(
            "chat.update",
            |call| call.params["ts"] == preview.ts.as_str(),
            SOON,
        )
        .await;
    assert!(update.ok(), "{}", update.response);
    let updated = update.params["blocks"].to_string();
    assert!(
        !updated.contains("scalebot_approve"),
        "buttons stay after approval: {updated}"
    );
    assert!(updated.contains(APPROVER), "approver not shown: {updated}");

    setup.wait_thread(&preview, "done", PROCEDURE).await;
    assert_eq!(setup.replicas("synapse"), "4");
    assert_no_slack_errors(&setup.fake);

    let get = |path: &'static str| {
        let url = format!("{}{path}", setup.bot.url);
        let http = setup.http.clone();
        async move {
            let response = http.get(url).send().await.unwrap();
            (response.status().as_u16(), response.text().await.unwrap())
        }
    };
    assert_eq!(get("/healthz").await.0, 200);
    assert_eq!(get("/readyz").await.0, 200);
    let (status, metrics) = get("/metrics").await;
    assert_eq!(status, 200);
    assert!(
        metrics.contains("scalebot_slack_events_total{kind=\"command\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("scalebot_slack_api_calls_total"),
        "{metrics}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upload_flow_shares_file_in_thread() {
    let fake = FakeSlack::start().await;
    let web =
        adapters::slack::web::Web::new(&fake.api_url(), &adapters::secret::Secret::new(BOT_TOKEN))
            .unwrap();
    let content = "synapse-7d4b9c-x2x Running node-a\n".repeat(600);
    web.upload_text(
        CHANNEL,
        Some("1700000000.000100"),
        "pods.txt",
        "pods",
        &content,
    )
    .await
    .unwrap();
    let uploads = fake.uploads();
    assert_eq!(uploads.len(), 1);
    assert_eq!(uploads[0].content.as_deref(), Some(content.as_bytes()));
    let completed = uploads[0].completed.as_ref().expect("upload completed");
    assert_eq!(completed.channel.as_deref(), Some(CHANNEL));
    assert_eq!(completed.thread_ts.as_deref(), Some("1700000000.000100"));
    assert_no_slack_errors(&fake);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_stale_and_replayed_requests_change_nothing() {
    let setup = setup("http").await;
    let body = fake_slack::slash_command_form(
        "/scale",
        "synapse 5",
        REQUESTER,
        CHANNEL,
        "3001.1.a",
        &setup.fake.response_url("3001"),
    );

    let (status, _) = setup
        .post_signed_with(
            "/slack/commands",
            &body,
            "not-the-secret",
            fake_slack::now_timestamp(),
        )
        .await;
    assert_eq!(status, 401, "forged signature");
    let (status, _) = setup
        .post_raw("/slack/commands", &body, "v0=", fake_slack::now_timestamp())
        .await;
    assert_eq!(status, 401, "empty signature");
    let stale = fake_slack::now_timestamp() - 6 * 60;
    let (status, _) = setup
        .post_signed_with("/slack/commands", &body, SECRET, stale)
        .await;
    assert_eq!(status, 401, "six-minute-old timestamp");

    // The same signed request twice: the copy is acknowledged and dropped.
    let timestamp = fake_slack::now_timestamp();
    let signature = fake_slack::sign(SECRET, timestamp, &body);
    let (first, _) = setup
        .post_raw("/slack/commands", &body, &signature, timestamp)
        .await;
    let (second, _) = setup
        .post_raw("/slack/commands", &body, &signature, timestamp)
        .await;
    assert_eq!((first, second), (200, 200));
    let preview = setup.preview().await;

    // A re-signed copy with the same trigger id is a redelivery: dropped too.
    let (third, _) = setup.post_signed("/slack/commands", &body).await;
    assert_eq!(third, 200);
    tokio::time::sleep(Duration::from_secs(2)).await;
    let previews = setup
        .fake
        .calls_to("chat.postMessage")
        .into_iter()
        .filter(|call| approve_value(&call.params).is_some())
        .count();
    assert_eq!(previews, 1, "one preview for one command");

    // A forged click changes nothing either.
    let payload = fake_slack::block_actions_payload(
        APPROVER,
        CHANNEL,
        &preview.ts,
        "scalebot_approve",
        &preview.request_id,
        &setup.fake.response_url("4001"),
        "4001.1.a",
    );
    let form = fake_slack::block_actions_form(&payload);
    let (status, _) = setup
        .post_signed_with(
            "/slack/interactions",
            &form,
            "not-the-secret",
            fake_slack::now_timestamp(),
        )
        .await;
    assert_eq!(status, 401);
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(
        setup.fake.calls_to("chat.update").is_empty(),
        "forged click decided"
    );
    assert_eq!(setup.replicas("synapse"), "3");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn self_and_outsider_clicks_leave_request_pending() {
    let setup = setup("http").await;
    setup
        .slash(REQUESTER, "/scale", "synapse 4", "5001.1.a")
        .await;
    let preview = setup.preview().await;

    setup
        .click(REQUESTER, &preview, "scalebot_approve", "5002.1.a")
        .await;
    setup
        .wait_ephemeral(REQUESTER, "another approver must approve")
        .await;
    setup
        .click(OUTSIDER, &preview, "scalebot_approve", "5003.1.a")
        .await;
    setup.wait_ephemeral(OUTSIDER, "may not approve").await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(
        setup.fake.calls_to("chat.update").is_empty(),
        "request was decided"
    );
    assert_eq!(setup.replicas("synapse"), "3");

    // A member of the approver user group may approve.
    setup
        .click(GROUP_MEMBER, &preview, "scalebot_approve", "5004.1.a")
        .await;
    setup.wait_thread(&preview, "done", PROCEDURE).await;
    assert_eq!(setup.replicas("synapse"), "4");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_clicks_and_retries_execute_once() {
    let setup = setup("http").await;
    setup
        .slash(REQUESTER, "/scale", "synapse 4", "6001.1.a")
        .await;
    let preview = setup.preview().await;

    let payload = fake_slack::block_actions_payload(
        APPROVER,
        CHANNEL,
        &preview.ts,
        "scalebot_approve",
        &preview.request_id,
        &setup.fake.response_url("6002"),
        "6002.1.a",
    );
    let form = fake_slack::block_actions_form(&payload);
    let (a, b, retry) = tokio::join!(
        setup.click(APPROVER, &preview, "scalebot_approve", "6003.1.a"),
        setup.click(APPROVER2, &preview, "scalebot_approve", "6004.1.a"),
        setup.post_signed("/slack/interactions", &form),
    );
    assert_eq!((a.0, b.0, retry.0), (200, 200, 200));
    // The same click delivered again with a new signature.
    setup.post_signed("/slack/interactions", &form).await;

    setup.wait_thread(&preview, "done", PROCEDURE).await;
    let replies: Vec<StoredMessage> = setup.thread(&preview).into_iter().skip(1).collect();
    let decided = replies
        .iter()
        .map(message_text)
        .filter(|text| text.contains("approved by"))
        .count();
    assert_eq!(decided, 1, "one approval decided the request");
    let results = replies
        .iter()
        .map(message_text)
        .filter(|text| text.contains("done:"))
        .count();
    assert_eq!(results, 1, "one execution: {replies:#?}");
    let refusals = setup
        .fake
        .ephemeral()
        .into_iter()
        .filter(|m| {
            m.text
                .as_deref()
                .unwrap_or_default()
                .contains("already approved")
        })
        .count();
    assert!(
        refusals >= 1,
        "the losing clicks were told: {:#?}",
        setup.fake.ephemeral()
    );
    assert_eq!(setup.replicas("synapse"), "4");

    let coordinator = Coordinator::redis(&setup.redis.url(), "scalebot:")
        .await
        .unwrap();
    let started = coordinator
        .read_audit(Some("synapse"), 100)
        .await
        .unwrap()
        .into_iter()
        .filter(|entry| entry.kind == AuditKind::Started)
        .count();
    assert_eq!(started, 1, "audit shows one started procedure");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn long_output_is_delivered_without_slack_errors() {
    let setup = setup("http").await;
    let coordinator = Coordinator::redis(&setup.redis.url(), "scalebot:")
        .await
        .unwrap();
    for number in 0..20 {
        let detail = format!(
            "note {number:02}: {}",
            "pod synapse-7d4b9c-x2x ready on node-2; ".repeat(7)
        );
        coordinator
            .append_audit(&AuditEntry {
                at_ms: unix_now_ms(),
                request_id: Some(format!("seed{number:02}")),
                kind: AuditKind::Succeeded,
                service: Some("synapse".to_string()),
                actor: "scalebot".to_string(),
                detail,
                fencing_token: None,
            })
            .await
            .unwrap();
    }

    let (status, body) = setup
        .slash(REQUESTER, "/scalebot", "history synapse", "7001.1.a")
        .await;
    assert_eq!(status, 200);
    let deadline = tokio::time::Instant::now() + SOON;
    let delivered = loop {
        let mut delivered = body.clone();
        for message in setup.fake.ephemeral() {
            delivered.push_str(message.text.as_deref().unwrap_or_default());
        }
        if (0..20).all(|n| delivered.contains(&format!("note {n:02}"))) {
            break delivered;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "history not fully delivered; got {} characters\nbot log:\n{}",
            delivered.len(),
            setup.bot.log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(delivered.chars().count() > 5000, "{}", delivered.len());
    assert_no_slack_errors(&setup.fake);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limited_post_is_retried_not_dropped() {
    let setup = setup("http").await;
    setup.fake.rate_limit_next("chat.postMessage", 1);
    setup
        .slash(REQUESTER, "/scale", "synapse 4", "8001.1.a")
        .await;
    let preview = setup.preview().await;
    let limited = setup
        .fake
        .calls_to("chat.postMessage")
        .into_iter()
        .filter(|call| call.status == 429)
        .count();
    assert_eq!(limited, 1, "the first post was rate limited");
    assert!(!preview.request_id.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_counts_get_an_ephemeral_error() {
    let setup = setup("http").await;
    let bad = [
        "synapse 0",
        "synapse O",
        "synapse --1",
        "synapse -5",
        "synapse 1e3",
        "synapse —2",
        "synapsis 4",
    ];
    for (number, text) in bad.iter().enumerate() {
        let trigger = format!("900{number}.1.a");
        let (status, body) = setup.slash(REQUESTER, "/scale", text, &trigger).await;
        assert_eq!(status, 200, "{text}");
        let answer: Value = serde_json::from_str(&body)
            .unwrap_or_else(|_| panic!("{text}: no ephemeral answer in the response: {body:?}"));
        assert_eq!(answer["response_type"], "ephemeral", "{text}: {body}");
        assert!(
            answer["text"].as_str().is_some_and(|t| t.len() > 10),
            "{text}: {body}"
        );
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let previews = setup
        .fake
        .calls_to("chat.postMessage")
        .into_iter()
        .filter(|call| approve_value(&call.params).is_some())
        .count();
    assert_eq!(previews, 0, "bad counts created requests");
    assert_eq!(setup.replicas("synapse"), "3");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn socket_mode_acks_handles_and_reconnects() {
    let setup = setup("socket").await;
    let first = setup.fake.next_socket_connection(SOON).await;

    let payload = fake_slack::slash_command_payload(
        "/scale",
        "synapse 4",
        REQUESTER,
        CHANNEL,
        "10001.1.a",
        &setup.fake.response_url("10001"),
    );
    let envelope = first.send_slash_command(payload).await;
    let ack = first.wait_ack(&envelope, SOON).await;
    assert_eq!(ack["envelope_id"], envelope.as_str());
    let preview = setup.preview().await;

    // Slack asks for a new connection: the bot opens one.
    first.send_disconnect("refresh_requested").await;
    let second = setup.fake.next_socket_connection(SOON).await;
    // The connection drops without a close frame: the bot opens another.
    second.drop_connection().await;
    let third = setup
        .fake
        .next_socket_connection(Duration::from_secs(30))
        .await;
    assert!(setup.fake.socket_connections_opened() >= 3);

    let click = fake_slack::block_actions_payload(
        APPROVER,
        CHANNEL,
        &preview.ts,
        "scalebot_approve",
        &preview.request_id,
        &setup.fake.response_url("10002"),
        "10002.1.a",
    );
    let envelope = third.send_interactive(click).await;
    third.wait_ack(&envelope, SOON).await;
    setup.wait_thread(&preview, "done", PROCEDURE).await;
    assert_eq!(setup.replicas("synapse"), "4");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mentions_run_once_per_event_and_message() {
    let setup = setup("http").await;
    let event = |event_id: &str| {
        serde_json::json!({
            "type": "event_callback",
            "team_id": fake_slack::TEAM_ID,
            "api_app_id": fake_slack::APP_ID,
            "event_id": event_id,
            "event_time": fake_slack::now_timestamp(),
            "event": {
                "type": "app_mention",
                "user": REQUESTER,
                "channel": CHANNEL,
                "ts": "1700000000.000100",
                "text": format!("<@{}> scale synapse 4", fake_slack::BOT_USER_ID),
            },
        })
        .to_string()
    };
    let post = |body: String, retry: Option<&'static str>| {
        let timestamp = fake_slack::now_timestamp();
        let mut request = setup
            .http
            .post(format!("{}/slack/events", setup.bot.url))
            .header("content-type", "application/json")
            .header(SIGNATURE_HEADER, fake_slack::sign(SECRET, timestamp, &body))
            .header(TIMESTAMP_HEADER, timestamp.to_string())
            .body(body);
        if let Some(retry) = retry {
            request = request
                .header("X-Slack-Retry-Num", retry)
                .header("X-Slack-Retry-Reason", "http_timeout");
        }
        async move {
            request
                .send()
                .await
                .expect("request to the bot")
                .status()
                .as_u16()
        }
    };

    let challenge =
        serde_json::json!({"type": "url_verification", "challenge": "c0ffee", "token": "t"});
    let timestamp = fake_slack::now_timestamp();
    let body = challenge.to_string();
    let answer: Value = setup
        .http
        .post(format!("{}/slack/events", setup.bot.url))
        .header(SIGNATURE_HEADER, fake_slack::sign(SECRET, timestamp, &body))
        .header(TIMESTAMP_HEADER, timestamp.to_string())
        .body(body)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(answer["challenge"], "c0ffee");

    assert_eq!(post(event("Ev0001"), None).await, 200);
    // Slack's retry of the same delivery, and the same message under a new
    // event id, are acknowledged and not run again.
    assert_eq!(post(event("Ev0001"), Some("1")).await, 200);
    assert_eq!(post(event("Ev0002"), None).await, 200);
    setup.preview().await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let previews = setup
        .fake
        .calls_to("chat.postMessage")
        .into_iter()
        .filter(|call| approve_value(&call.params).is_some())
        .count();
    assert_eq!(previews, 1, "one preview for one mention");
}
