//! Set-up shared by the engine tests: the shipped config with fast
//! timings, requests from console users, engines on an in-process kubesim
//! and a real `redis-server`, and helpers that read replies.

#![allow(dead_code)]

use std::time::Duration;

use commands::cluster::Cluster;
use commands::config::Config;
use commands::config::testing::fast_config;
use commands::coordination::Coordinator;
use commands::coordination::testing::RedisServer;
use commands::engine::{Engine, Reply, ReplyBody, Request};
use commands::identity::{Identity, Platform, Principal};
use k8s_openapi::api::apps::v1::Deployment;
use kube::api::Api;
use kubesim::Sim;
use kubesim::cluster::Timing;
use tokio::sync::mpsc;

pub const IDLE_TIMEOUT: Duration = Duration::from_secs(60);

/// Returns the shipped config with fast timings and fifty more console
/// approvers.
pub fn config() -> Config {
    let mut config = fast_config();
    for n in 1..=50 {
        let approver = Identity::new(Platform::Console, &format!("approver{n}"));
        config.roles.approvers.push(Principal::User(approver));
    }
    config
}

pub fn request(user: &str, text: &str) -> Request {
    Request {
        trace_id: format!("test-{user}"),
        delivery_id: None,
        user: Identity::new(Platform::Console, user),
        roles: Vec::new(),
        display_name: user.to_string(),
        channel: "test".to_string(),
        text: text.to_string(),
    }
}

/// Starts one engine on its own Redis connection, as a stand-in for a bot
/// replica.
pub async fn replica(sim: &Sim, redis: &RedisServer, config: Config, name: &str) -> Engine {
    let coordinator = Coordinator::redis(&redis.url(), "scalebot:")
        .await
        .expect("connect to redis");
    let client = sim.client().expect("kube client");
    Engine::new(config, coordinator, Cluster::new(client), name.to_string())
}

/// Starts a cluster, a Redis server and one engine with `config`. The
/// server lives as long as the returned value.
pub async fn start(config: Config) -> (Sim, RedisServer, Engine) {
    let sim = Sim::start("butterfly", Timing::fast()).expect("kubesim");
    let redis = RedisServer::start();
    let engine = replica(&sim, &redis, config, "replica").await;
    (sim, redis, engine)
}

pub fn drain(receiver: &mut mpsc::Receiver<Reply>) -> Vec<Reply> {
    let mut replies = Vec::new();
    while let Ok(reply) = receiver.try_recv() {
        replies.push(reply);
    }
    replies
}

pub fn texts(replies: &[Reply]) -> String {
    replies
        .iter()
        .map(|r| match &r.body {
            ReplyBody::Text(t)
            | ReplyBody::Notice(t)
            | ReplyBody::Error(t)
            | ReplyBody::Progress(t)
            | ReplyBody::Decided { text: t, .. } => t.clone(),
            ReplyBody::Preview { request_id, impact } => {
                format!(
                    "preview {request_id}: {} → {} ({})",
                    impact.current,
                    impact.target,
                    impact.fit_text()
                )
            }
            ReplyBody::Result {
                succeeded, summary, ..
            } => format!("result {succeeded}: {summary}"),
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Sends `text` and returns the id of the preview it produced.
pub async fn preview(engine: &Engine, user: &str, text: &str) -> String {
    let (sender, mut receiver) = mpsc::channel(64);
    engine.handle(request(user, text), sender).await;
    let replies = drain(&mut receiver);
    replies
        .iter()
        .find_map(|r| match &r.body {
            ReplyBody::Preview { request_id, .. } => Some(request_id.clone()),
            _ => None,
        })
        .unwrap_or_else(|| panic!("no preview for {text:?}: {}", texts(&replies)))
}

pub async fn replicas(sim: &Sim, name: &str) -> i32 {
    let api: Api<Deployment> = Api::namespaced(sim.client().expect("client"), "butterfly");
    api.get(name)
        .await
        .expect("deployment")
        .spec
        .and_then(|s| s.replicas)
        .unwrap_or(0)
}

/// Keeps the new pods of `app` from becoming ready (`hold` true), or lets
/// them become ready again.
pub fn never_ready(sim: &Sim, app: &str, hold: bool) {
    sim.cluster().faults.with(|plan| {
        if hold {
            plan.never_ready_apps.insert(app.to_string());
        } else {
            plan.never_ready_apps.remove(app);
        }
    });
}
