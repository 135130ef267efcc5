//! Hostile tests of the Discord adapter: each test reproduces a bug found
//! by attacking the adapter through the fake Discord, a real
//! `redis-server` and an in-process kubesim.

use std::time::Duration;

use adapters::discord::rest::Rest;
use adapters::discord::{self, Settings};
use adapters::secret::Secret;
use commands::cluster::Cluster;
use commands::config::{CommandScope, Config, DiscordConfig};
use commands::coordination::testing::RedisServer;
use commands::coordination::{Coordinator, PendingState};
use commands::engine::{Engine, Reply};
use commands::identity::{Identity, Platform, Principal};
use integration_tests::fake_discord::{self, APPLICATION_ID, Call, FakeDiscord, GUILD_ID, TOKEN};
use k8s_openapi::api::apps::v1::Deployment;
use kube::api::Api;
use kubesim::Sim;
use kubesim::cluster::Timing;
use serde_json::json;
use tokio::sync::{mpsc, watch};

const CHANNEL: u64 = 400_000_000_000_000_002;
/// A requester by user id (`discord:<id>`).
const REQUESTER: u64 = 100_000_000_000_000_001;
/// An approver through a role (`discord-role:<id>`).
const APPROVER: u64 = 100_000_000_000_000_002;
/// A second approver through the same role.
const SECOND_APPROVER: u64 = 100_000_000_000_000_004;
const APPROVER_ROLE: u64 = 600_000_000_000_000_002;
const OTHER_ROLE: u64 = 600_000_000_000_000_009;

const WAIT: Duration = Duration::from_secs(30);
/// How long a test watches for something that must not happen.
const QUIET: Duration = Duration::from_secs(3);

const APPROVE: &str = "✅";
const REJECT: &str = "❌";
const APPROVE_PATH: &str = "%E2%9C%85";
const REJECT_PATH: &str = "%E2%9D%8C";

fn config() -> Config {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../deploy/config/butterfly.yaml"
    );
    let mut config = Config::load(std::path::Path::new(path)).expect("shipped config is valid");
    config.policy.lock_ttl = Duration::from_secs(3);
    config.policy.cooldown_per_service = Duration::from_millis(100);
    config.policy.rollout_timeout = Duration::from_secs(30);
    config.policy.rate_limit.requests = 1000;
    config.policy.approval_expiry = Duration::from_secs(900);
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

fn discord_config() -> DiscordConfig {
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
struct Bot {
    fake: FakeDiscord,
    sim: Sim,
    redis: RedisServer,
    engine: Engine,
    _routed: mpsc::Sender<Reply>,
    shutdown: watch::Sender<bool>,
    adapter: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl Bot {
    async fn start() -> Self {
        let fake = FakeDiscord::start().await;
        fake.add_member(REQUESTER, &[OTHER_ROLE], false);
        fake.add_member(APPROVER, &[APPROVER_ROLE], false);
        fake.add_member(SECOND_APPROVER, &[APPROVER_ROLE], false);
        let sim = Sim::start("butterfly", Timing::fast()).expect("kubesim");
        let redis = RedisServer::start();
        let coordinator = Coordinator::redis(&redis.url(), "scalebot:")
            .await
            .expect("connect to redis");
        let engine = Engine::new(
            config(),
            coordinator,
            Cluster::new(sim.client().expect("kube client")),
            "discord-hostile-test".to_string(),
        );
        let (routed, routed_receiver) = mpsc::channel(64);
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
            _routed: routed,
            shutdown,
            adapter,
        }
    }

    async fn stop(self) {
        self.shutdown.send_replace(true);
        let result = tokio::time::timeout(WAIT, self.adapter)
            .await
            .expect("the adapter stops on shutdown")
            .expect("adapter task");
        result.expect("the adapter ends without error");
    }

    /// Sends `!scale synapse 4` and returns the request id and the id of
    /// the preview message, once the bot has added both reactions.
    async fn preview(&self, message_id: u64) -> (String, u64) {
        let data = fake_discord::message_create(
            message_id,
            CHANNEL,
            REQUESTER,
            &[OTHER_ROLE],
            "!scale synapse 4",
        );
        self.fake.dispatch("MESSAGE_CREATE", data).await;
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
        let request_id = title
            .strip_prefix("Request ")
            .and_then(|rest| rest.split(':').next())
            .unwrap_or_else(|| panic!("title without a request id: {title}"))
            .to_string();
        let preview = self
            .fake
            .messages_in(CHANNEL)
            .into_iter()
            .find(|m| m["embeds"][0]["title"].as_str() == Some(title.as_str()))
            .expect("the preview message is stored");
        let preview_id: u64 = preview["id"].as_str().unwrap().parse().unwrap();
        for emoji in [APPROVE_PATH, REJECT_PATH] {
            let path = format!("/channels/{CHANNEL}/messages/{preview_id}/reactions/{emoji}/@me");
            self.fake
                .wait_for_call(|c| c.method == "PUT" && c.route() == path, WAIT)
                .await;
        }
        (request_id, preview_id)
    }

    async fn state_of(&self, request_id: &str) -> PendingState {
        self.engine
            .coordinator()
            .get_pending(request_id)
            .await
            .expect("redis")
            .expect("the request is stored")
            .state
    }

    async fn replicas(&self, name: &str) -> i32 {
        let api: Api<Deployment> = Api::namespaced(self.sim.client().expect("client"), "butterfly");
        api.get(name)
            .await
            .expect("deployment")
            .spec
            .and_then(|s| s.replicas)
            .unwrap_or(0)
    }
}

fn is_post_in(call: &Call, channel: u64) -> bool {
    call.method == "POST"
        && call.route() == format!("/channels/{channel}/messages")
        && call.status == 200
}

/// Shows that the missed-reaction scan reads every ✅ before any ❌: when
/// one approver rejected and another approved while the bot was
/// disconnected, the request is always approved and the cluster scaled.
/// Discord stores no time for reactions, so the scan cannot know which came
/// first. Whatever order it picks must not turn a rejection into a change.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn scan_does_not_override_rejection() {
    let bot = Bot::start().await;
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

/// Shows that a `retry_after` too large for a `Duration` (here 1e20
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

/// Shows that a transport failure of an interaction call puts the
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

/// Shows that an approver's ✅ made while Redis is down is dropped without
/// any reply: the adapter's lookup of the preview's request fails and only
/// a warning is logged. A command typed at that moment gets a reply that
/// Redis is unavailable, and the live reaction is not applied
/// when Redis returns (only a later gateway reconnect rescans it).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn reaction_while_redis_down_gets_reply() {
    let mut bot = Bot::start().await;
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
