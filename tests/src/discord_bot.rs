//! The Discord adapter as its tests run it: in process, against the fake
//! Discord, with an engine on an in-process kubesim and a real
//! `redis-server`.

use std::time::Duration;

use adapters::discord::{self, Settings};
use adapters::secret::Secret;
use commands::cluster::Cluster;
use commands::config::{CommandScope, Config, DiscordConfig};
use commands::coordination::testing::RedisServer;
use commands::coordination::{Coordinator, PendingState};
use commands::engine::{Engine, Reply};
use commands::identity::{Identity, Platform, Principal};
use k8s_openapi::api::apps::v1::Deployment;
use kube::api::Api;
use kubesim::Sim;
use kubesim::cluster::Timing;
use serde_json::Value;
use tokio::sync::{mpsc, watch};

use crate::fake_discord::{self, APPLICATION_ID, Call, FakeDiscord, GUILD_ID, TOKEN};

pub const CHANNEL: u64 = 400_000_000_000_000_002;
/// A requester by user id (`discord:<id>`).
pub const REQUESTER: u64 = 100_000_000_000_000_001;
/// An approver through a role (`discord-role:<id>`).
pub const APPROVER: u64 = 100_000_000_000_000_002;
/// A guild member without any scalebot role.
pub const OUTSIDER: u64 = 100_000_000_000_000_003;
/// A second approver through the same role.
pub const SECOND_APPROVER: u64 = 100_000_000_000_000_004;
pub const APPROVER_ROLE: u64 = 600_000_000_000_000_002;
pub const OTHER_ROLE: u64 = 600_000_000_000_000_009;

pub const WAIT: Duration = Duration::from_secs(30);

pub const APPROVE: &str = "✅";
pub const REJECT: &str = "❌";
pub const APPROVE_PATH: &str = "%E2%9C%85";
pub const REJECT_PATH: &str = "%E2%9D%8C";

pub fn config(approval_expiry: Duration) -> Config {
    let mut config = commands::config::testing::fast_config();
    config.policy.approval_expiry = approval_expiry;
    config.roles.requesters.push(Principal::User(Identity::new(
        Platform::Discord,
        &REQUESTER.to_string(),
    )));
    config
        .roles
        .approvers
        .push(Principal::DiscordRole(APPROVER_ROLE.to_string()));
    config.discord = Some(discord_config());
    config
}

pub fn discord_config() -> DiscordConfig {
    DiscordConfig {
        token_file: None,
        application_id_file: None,
        commands: CommandScope::Guild,
        guilds: vec![GUILD_ID],
        channels: vec![CHANNEL],
        prefix: "!".to_string(),
        threads: true,
    }
}

/// The adapter on a fake Discord, with its engine and cluster.
pub struct DiscordBot {
    pub fake: FakeDiscord,
    pub sim: Sim,
    pub redis: RedisServer,
    pub engine: Engine,
    /// Queue of replies that no request owns, as `serve` routes them.
    pub routed: mpsc::Sender<Reply>,
    pub shutdown: watch::Sender<bool>,
    pub adapter: tokio::task::JoinHandle<anyhow::Result<()>>,
    pub sweep: tokio::task::JoinHandle<()>,
}

impl DiscordBot {
    pub async fn start(approval_expiry: Duration) -> Self {
        let fake = FakeDiscord::start().await;
        fake.add_member(REQUESTER, &[OTHER_ROLE], false);
        fake.add_member(APPROVER, &[APPROVER_ROLE], false);
        fake.add_member(OUTSIDER, &[OTHER_ROLE], false);
        fake.add_member(SECOND_APPROVER, &[APPROVER_ROLE], false);
        let sim = Sim::start("butterfly", Timing::fast()).expect("kubesim");
        let redis = RedisServer::start();
        let coordinator = Coordinator::redis(&redis.url(), "scalebot:")
            .await
            .expect("connect to redis");
        let config = config(approval_expiry);
        let engine = Engine::new(
            config,
            coordinator,
            Cluster::new(sim.client().expect("kube client")),
            "discord-test".to_string(),
        );
        let (routed, routed_receiver) = mpsc::channel(64);
        let sweep = tokio::spawn(commands::engine::expiry::sweep_expired(
            engine.clone(),
            routed.clone(),
            Duration::from_millis(200),
        ));
        let (shutdown, shutdown_receiver) = watch::channel(false);
        let settings = Settings {
            config: discord_config(),
            token: Secret::new(TOKEN),
            application_id: APPLICATION_ID,
            api_base: Some(fake.base_url()),
        };
        let adapter = tokio::spawn(discord::run(
            engine.clone(),
            settings,
            routed_receiver,
            shutdown_receiver,
        ));
        fake.wait_for_session(WAIT).await;
        Self {
            fake,
            sim,
            redis,
            engine,
            routed,
            shutdown,
            adapter,
            sweep,
        }
    }

    pub async fn stop(self) {
        self.shutdown.send_replace(true);
        let result = tokio::time::timeout(WAIT, self.adapter)
            .await
            .expect("the adapter stops on shutdown")
            .expect("adapter task");
        result.expect("the adapter ends without error");
        self.sweep.abort();
    }

    /// Sends `content` as a message of `user` in the test channel.
    pub async fn say(&self, message_id: u64, user: u64, content: &str) {
        self.say_in(CHANNEL, message_id, user, content).await;
    }

    /// Sends `content` as a message of `user` in `channel_id`.
    pub async fn say_in(&self, channel_id: u64, message_id: u64, user: u64, content: &str) {
        let roles: Vec<u64> = self.fake.member(user).map(|m| m.roles).unwrap_or_default();
        let data = fake_discord::message_create(message_id, channel_id, user, &roles, content);
        self.fake.dispatch("MESSAGE_CREATE", data).await;
    }

    /// Sends `!scale synapse 4` and returns the request id and the id of
    /// the preview message, once the bot has added both reactions.
    pub async fn preview(&self, message_id: u64) -> (String, u64) {
        self.say(message_id, REQUESTER, "!scale synapse 4").await;
        let (title, preview_id) = self.posted_preview().await;
        let request_id = title
            .strip_prefix("Request ")
            .and_then(|rest| rest.split(':').next())
            .unwrap_or_else(|| panic!("title without a request id: {title}"))
            .to_string();
        for emoji in [APPROVE_PATH, REJECT_PATH] {
            let path = format!("/channels/{CHANNEL}/messages/{preview_id}/reactions/{emoji}/@me");
            self.fake
                .wait_for_call(|c| c.method == "PUT" && c.route() == path, WAIT)
                .await;
        }
        (request_id, preview_id)
    }

    /// Waits for the first embed posted in the test channel and returns
    /// its title and the id of the stored message.
    pub async fn posted_preview(&self) -> (String, u64) {
        let posted = self
            .fake
            .wait_for_call(
                |c| is_post_in(c, CHANNEL) && c.body["embeds"].is_array(),
                WAIT,
            )
            .await;
        let title = posted.body["embeds"][0]["title"]
            .as_str()
            .expect("embed title")
            .to_string();
        let preview = self
            .fake
            .messages_in(CHANNEL)
            .into_iter()
            .find(|m| m["embeds"][0]["title"].as_str() == Some(title.as_str()))
            .expect("the preview message is stored");
        let preview_id = preview["id"].as_str().unwrap().parse().unwrap();
        (title, preview_id)
    }

    pub async fn state_of(&self, request_id: &str) -> PendingState {
        self.engine
            .coordinator()
            .get_pending(request_id)
            .await
            .expect("redis")
            .expect("the request is stored")
            .state
    }

    pub async fn replicas(&self, name: &str) -> i32 {
        let api: Api<Deployment> = Api::namespaced(self.sim.client().expect("client"), "butterfly");
        api.get(name)
            .await
            .expect("deployment")
            .spec
            .and_then(|s| s.replicas)
            .unwrap_or(0)
    }

    pub async fn wait_for_replicas(&self, name: &str, expected: i32) {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let replicas = self.replicas(name).await;
            if replicas == expected {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{name} has {replicas} replicas, expected {expected}; calls:\n{}",
                self.fake.describe_calls()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Texts of the bot's messages that reply to `message_id`.
    pub fn replies_to(&self, message_id: u64) -> Vec<String> {
        self.fake
            .messages_in(CHANNEL)
            .into_iter()
            .filter(|m| {
                m["message_reference"]["message_id"].as_str()
                    == Some(message_id.to_string().as_str())
            })
            .filter_map(|m| m["content"].as_str().map(str::to_string))
            .collect()
    }
}

pub fn is_post_in(call: &Call, channel: u64) -> bool {
    call.method == "POST"
        && call.route() == format!("/channels/{channel}/messages")
        && call.status == 200
}

/// Returns the value of the embed field `name` of a posted message.
pub fn field<'a>(message: &'a Value, name: &str) -> Option<&'a str> {
    message["embeds"][0]["fields"]
        .as_array()?
        .iter()
        .find(|f| f["name"] == name)
        .and_then(|f| f["value"].as_str())
}
