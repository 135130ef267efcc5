//! `scalebot serve`: the production mode. One HTTP listener carries the
//! health, readiness and metrics endpoints and, when Slack runs in HTTP
//! mode, Slack's endpoints; Slack Socket Mode and Discord run beside it.
//! On SIGTERM the bot stops taking requests, lets running procedures finish
//! for up to [`SHUTDOWN_GRACE`], and exits.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use adapters::chat::{REPLY_QUEUE, Router as ReplyRouter};
use adapters::secret::{self, Secret};
use anyhow::{Context as _, anyhow};
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;
use commands::config::{Config, SlackMode};
use commands::engine::Engine;
use commands::identity::Platform;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use tokio::sync::{mpsc, watch};

use crate::wiring;

/// Time running procedures get to finish after SIGTERM. Kubernetes' default
/// termination grace period is 30 seconds; procedures still running after
/// this lose their lock with its TTL and the next bot reports them.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(25);

pub struct ServeOptions {
    pub config: Config,
    pub listen: SocketAddr,
    pub kubeconfig: Option<PathBuf>,
    pub context: Option<String>,
    pub redis: Option<String>,
}

#[derive(Clone)]
struct Health {
    engine: Engine,
    metrics: PrometheusHandle,
}

pub async fn run(options: ServeOptions) -> anyhow::Result<()> {
    let ServeOptions {
        config,
        listen,
        kubeconfig,
        context,
        redis,
    } = options;
    if config.slack.is_none() && config.discord.is_none() {
        return Err(anyhow!(
            "the config has neither a slack nor a discord section, so serve has nothing to serve; add one, or use `scalebot console`"
        ));
    }
    let metrics = PrometheusBuilder::new()
        .install_recorder()
        .context("cannot install the metrics recorder")?;
    // Both platforms' secrets are read before failing, so one run lists
    // every missing secret.
    let slack_settings = config.slack.clone().map(slack_settings).transpose();
    let discord_settings = config.discord.clone().map(discord_settings).transpose();
    let (slack_settings, discord_settings) = match (slack_settings, discord_settings) {
        (Ok(slack), Ok(discord)) => (slack, discord),
        (slack, discord) => {
            let problems: Vec<String> = [slack.err(), discord.err()]
                .into_iter()
                .flatten()
                .map(|error| format!("{error:#}"))
                .collect();
            return Err(anyhow!("{}", problems.join("\n")));
        }
    };

    let adapters: Vec<String> = [
        slack_settings
            .as_ref()
            .map(|s| format!("slack ({} mode)", s.config.mode.as_str())),
        discord_settings.as_ref().map(|_| "discord".to_string()),
    ]
    .into_iter()
    .flatten()
    .collect();
    tracing::info!(adapters = %adapters.join(", "), "starting");
    let engine = wiring::build_engine(config, kubeconfig, context, redis).await?;
    let (shutdown_sender, shutdown) = watch::channel(false);
    let (shared_sender, shared_receiver) = mpsc::channel(REPLY_QUEUE);
    let mut router = ReplyRouter::new();
    let mut app = Router::new();
    let mut tasks = Vec::new();

    if let Some(settings) = slack_settings {
        let routed = router.add(Platform::Slack);
        let mode = settings.config.mode;
        let app_token = settings.app_token.clone();
        let slack = adapters::slack::Slack::new(engine.clone(), settings)
            .context("cannot build the Slack client")?;
        tasks.push(tokio::spawn(slack.clone().run_routed(routed)));
        match mode {
            SlackMode::Http => app = app.merge(adapters::slack::http::routes(slack)),
            SlackMode::Socket => {
                let token = app_token.expect("socket mode settings carry an app token");
                tasks.push(tokio::spawn(adapters::slack::socket::run(
                    slack,
                    token,
                    shutdown.clone(),
                )));
            }
        }
    }
    // The Discord adapter runs on this task, beside the HTTP server.
    let discord = discord_settings.map(|settings| {
        let routed = router.add(Platform::Discord);
        adapters::discord::run(engine.clone(), settings, routed, shutdown.clone())
    });
    tasks.push(tokio::spawn(router.run(shared_receiver)));
    tasks.push(tokio::spawn(commands::engine::expiry::sweep_expired(
        engine.clone(),
        shared_sender.clone(),
        commands::engine::expiry::EXPIRY_SWEEP_INTERVAL,
    )));
    match commands::engine::recovery::report_interrupted(&engine, &shared_sender).await {
        Ok(0) => {}
        Ok(count) => tracing::warn!(count, "reported procedures interrupted by a stopped bot"),
        Err(error) => tracing::warn!(%error, "could not check for interrupted procedures"),
    }

    let health = Health {
        engine: engine.clone(),
        metrics,
    };
    let app = app.merge(
        Router::new()
            .route("/healthz", get(|| async { "ok" }))
            .route("/readyz", get(ready))
            .route("/metrics", get(render_metrics))
            .with_state(health),
    );
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("cannot listen on {listen}"))?;
    let local = listener.local_addr().context("listener has no address")?;
    // Tests and operators read this line to find the port.
    eprintln!("scalebot serve: listening on http://{local}");
    tracing::info!(%local, "listening");

    let server = axum::serve(listener, app).with_graceful_shutdown(wiring::shutdown_signal());
    let has_discord = discord.is_some();
    let discord = async move {
        match discord {
            Some(adapter) => adapter.await,
            None => std::future::pending().await,
        }
    };
    tokio::pin!(discord);
    tokio::select! {
        served = server => served.context("HTTP server failed")?,
        stopped = &mut discord => {
            // The adapter retries connection problems itself, so it only
            // returns on a fault it cannot recover from, such as a rejected
            // token: exit, so that the supervisor restarts the bot.
            stopped.context("the Discord adapter stopped")?;
            return Err(anyhow!("the Discord adapter stopped unexpectedly"));
        }
    }

    tracing::info!("shutdown requested: no new requests, waiting for running procedures");
    // Approved requests that have not started are reported while the
    // adapters still deliver replies.
    engine.begin_shutdown();
    let _ = shutdown_sender.send(true);
    if !engine.wait_idle(SHUTDOWN_GRACE).await {
        tracing::warn!(
            "procedures still running after {}s; their locks expire with their TTL and the next bot reports them",
            SHUTDOWN_GRACE.as_secs()
        );
    }
    if has_discord
        && tokio::time::timeout(Duration::from_secs(5), &mut discord)
            .await
            .is_err()
    {
        tracing::warn!("the Discord adapter did not stop within 5s");
    }
    for task in tasks {
        task.abort();
    }
    Ok(())
}

/// Ready when the coordination store responds; the API server is checked per
/// request and its outages are reported there.
async fn ready(State(health): State<Health>) -> impl IntoResponse {
    match health.engine.coordinator().ping().await {
        Ok(()) => (StatusCode::OK, "ready".to_string()),
        Err(error) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("not ready: {error}"),
        ),
    }
}

async fn render_metrics(State(health): State<Health>) -> impl IntoResponse {
    (
        [("content-type", "text/plain; version=0.0.4")],
        health.metrics.render(),
    )
}

fn slack_settings(
    config: commands::config::SlackConfig,
) -> anyhow::Result<adapters::slack::Settings> {
    use adapters::slack::{API_URL_ENV, APP_TOKEN_ENV, BOT_TOKEN_ENV, SIGNING_SECRET_ENV};
    let mut problems = Vec::new();
    let mut load = |env: &str, file: Option<&std::path::Path>, prefix: Option<&str>| {
        let loaded = secret::load(env, file).and_then(|secret| match prefix {
            Some(prefix) if !secret.expose().starts_with(prefix) => Err(format!(
                "{env} does not start with {prefix}; it holds another kind of Slack token"
            )),
            _ => Ok(secret),
        });
        loaded.map_err(|problem| problems.push(problem)).ok()
    };
    let bot_token = load(
        BOT_TOKEN_ENV,
        config.bot_token_file.as_deref(),
        Some("xoxb-"),
    );
    let signing_secret = match config.mode {
        SlackMode::Http => load(
            SIGNING_SECRET_ENV,
            config.signing_secret_file.as_deref(),
            None,
        ),
        SlackMode::Socket => None,
    };
    let app_token = match config.mode {
        SlackMode::Socket => load(
            APP_TOKEN_ENV,
            config.app_token_file.as_deref(),
            Some("xapp-"),
        ),
        SlackMode::Http => None,
    };
    let Some(bot_token) = bot_token.filter(|_| problems.is_empty()) else {
        return Err(anyhow!("{}", problems.join("\n")));
    };
    let api_url = std::env::var(API_URL_ENV)
        .unwrap_or_else(|_| adapters::slack::web::DEFAULT_API_URL.to_string());
    Ok(adapters::slack::Settings {
        config,
        bot_token,
        signing_secret,
        app_token,
        api_url,
    })
}

fn discord_settings(
    config: commands::config::DiscordConfig,
) -> anyhow::Result<adapters::discord::Settings> {
    let token: Secret =
        secret::load("DISCORD_TOKEN", config.token_file.as_deref()).map_err(|e| anyhow!(e))?;
    let application_id = secret::load(
        "DISCORD_APPLICATION_ID",
        config.application_id_file.as_deref(),
    )
    .map_err(|e| anyhow!(e))?;
    let application_id: u64 = application_id.expose().parse().map_err(|_| {
        anyhow!("DISCORD_APPLICATION_ID is not a numeric application id (a snowflake such as 1098765432109876543)")
    })?;
    let api_base = std::env::var(adapters::discord::API_BASE_ENV).ok();
    Ok(adapters::discord::Settings {
        config,
        token,
        application_id,
        api_base,
    })
}
