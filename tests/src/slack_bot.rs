//! `scalebot serve` with Slack, as the Slack tests and the load benchmark
//! run it: a real `redis-server`, kubesim, the fake Slack Web API and the
//! bot as a process, with helpers that sign requests as Slack does and read
//! the effects back from the fake's records and kubectl.

use std::time::Duration;

use commands::coordination::testing::RedisServer;
use serde_json::Value;

use crate::fake_slack::{
    self, APP_TOKEN, BOT_TOKEN, FakeSlack, SIGNATURE_HEADER, StoredMessage, TIMESTAMP_HEADER,
};
use crate::serve::ServeProcess;
use crate::{KubesimProcess, TempDir, test_config};

pub const SECRET: &str = "8f742231b10e8888abcd99yyyzzz85a5";
pub const CHANNEL: &str = "C0OPS00001";
pub const REQUESTER: &str = "U0REQUEST1";
pub const APPROVER: &str = "U0APPROVE1";
pub const APPROVER2: &str = "U0APPROVE2";
pub const GROUP_MEMBER: &str = "U0GROUPMB1";
pub const GROUP: &str = "S0APPROVRS";
pub const OUTSIDER: &str = "U0OUTSIDE1";
pub const ADMIN: &str = "U0ADMIN001";

/// Time for a preview, a decision or a message to show up.
pub const SOON: Duration = Duration::from_secs(20);
/// Time for a scale procedure to finish on kubesim's fast timing.
pub const PROCEDURE: Duration = Duration::from_secs(90);

/// The bot with its fake Slack, cluster and Redis; all stop on drop.
pub struct SlackBot {
    pub fake: FakeSlack,
    pub bot: ServeProcess,
    pub kubesim: KubesimProcess,
    pub redis: RedisServer,
    pub http: reqwest::Client,
    _dir: TempDir,
}

/// Writes the test config with Slack users in the role lists and a
/// `slack` section in `mode`.
pub fn slack_config(dir: &TempDir, mode: &str) -> std::path::PathBuf {
    let path = test_config(dir.path());
    let mut text = std::fs::read_to_string(&path).unwrap();
    text = text.replacen(
        "  requesters:\n",
        &format!("  requesters:\n    - slack:{REQUESTER}\n"),
        1,
    );
    text = text.replacen(
        "  admins:\n",
        &format!("  admins:\n    - slack:{ADMIN}\n"),
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

/// Starts everything with Slack in `mode` (`http` or `socket`).
pub async fn start(mode: &str) -> SlackBot {
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
    SlackBot {
        fake,
        bot,
        kubesim,
        redis,
        http: reqwest::Client::new(),
        _dir: dir,
    }
}

impl SlackBot {
    /// Posts `body` to `path`, signed with `secret` at `timestamp`.
    pub async fn post_signed_with(
        &self,
        path: &str,
        body: &str,
        secret: &str,
        timestamp: i64,
    ) -> (u16, String) {
        let signature = fake_slack::sign(secret, timestamp, body);
        self.post_raw(path, body, &signature, timestamp).await
    }

    pub async fn post_raw(
        &self,
        path: &str,
        body: &str,
        signature: &str,
        timestamp: i64,
    ) -> (u16, String) {
        let response = self
            .http
            .post(format!("{}{path}", self.bot.url))
            .header("content-type", content_type_of(body))
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

    /// Returns the status code of `/healthz`, or 0 when the bot does not respond.
    pub async fn healthz(&self) -> u16 {
        self.http
            .get(format!("{}/healthz", self.bot.url))
            .timeout(Duration::from_secs(5))
            .send()
            .await
            .map(|response| response.status().as_u16())
            .unwrap_or(0)
    }

    pub async fn post_signed(&self, path: &str, body: &str) -> (u16, String) {
        self.post_signed_with(path, body, SECRET, fake_slack::now_timestamp())
            .await
    }

    pub async fn slash(
        &self,
        user: &str,
        command: &str,
        text: &str,
        trigger: &str,
    ) -> (u16, String) {
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

    pub async fn click(
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
    pub async fn preview(&self) -> Preview {
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

    pub fn replicas(&self, deployment: &str) -> String {
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

    pub fn thread(&self, preview: &Preview) -> Vec<StoredMessage> {
        self.fake.thread(CHANNEL, &preview.ts)
    }

    /// Waits until a thread reply of the preview contains `needle`.
    pub async fn wait_thread(&self, preview: &Preview, needle: &str, timeout: Duration) -> String {
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
    pub async fn wait_ephemeral(&self, user: &str, needle: &str) -> String {
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

/// The preview message of a pending request.
pub struct Preview {
    pub request_id: String,
    pub ts: String,
    pub blocks: Value,
}

/// Returns the request id in the Approve button of a posted message.
pub fn approve_value(params: &Value) -> Option<String> {
    params["blocks"].as_array()?.iter().find_map(|block| {
        block["elements"].as_array()?.iter().find_map(|element| {
            (element["action_id"] == "scalebot_approve")
                .then(|| element["value"].as_str().map(str::to_string))
                .flatten()
        })
    })
}

/// Text of a stored message: its `text` and every text in its blocks.
pub fn message_text(message: &StoredMessage) -> String {
    let mut text = message.text.clone().unwrap_or_default();
    if let Some(blocks) = &message.blocks {
        collect_texts(blocks, &mut text);
    }
    text
}

pub fn collect_texts(value: &Value, out: &mut String) {
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

/// Checks that every Web API call the bot made returned `ok`.
pub fn assert_no_slack_errors(fake: &FakeSlack) {
    let failed: Vec<String> = fake
        .calls()
        .into_iter()
        .filter(|call| !call.ok())
        .map(|call| format!("{} -> {}", call.method, call.response))
        .collect();
    assert!(failed.is_empty(), "Slack rejected calls: {failed:#?}");
}

/// Events API bodies are JSON; commands and interactions are forms.
fn content_type_of(body: &str) -> &'static str {
    if body.starts_with('{') {
        "application/json"
    } else {
        "application/x-www-form-urlencoded"
    }
}
