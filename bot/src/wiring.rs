//! Builds the running objects from a validated configuration.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context as _, anyhow, bail};
use commands::cluster::Cluster;
use commands::config::Config;
use commands::coordination::Coordinator;
use commands::engine::Engine;
use kube::config::{KubeConfigOptions, Kubeconfig};
use tracing::debug;

/// The configuration `scalebot demo` uses unless `--config` is given.
const EMBEDDED_CONFIG: &str = include_str!("../../deploy/config/butterfly.yaml");

pub fn load_config(path: &Path) -> anyhow::Result<Config> {
    // Each line of `errors` already names the file.
    Config::load(path).map_err(|errors| anyhow!("{errors}"))
}

pub fn embedded_config() -> anyhow::Result<Config> {
    Config::from_yaml_str(EMBEDDED_CONFIG)
        .map_err(|errors| anyhow!("embedded configuration is invalid:\n{errors}"))
}

/// Builds a lock owner name that differs between processes and hosts.
fn instance_name() -> String {
    let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "scalebot".to_string());
    format!("{host}-{}", std::process::id())
}

async fn kube_client(
    config: &Config,
    kubeconfig: Option<PathBuf>,
    context: Option<String>,
) -> anyhow::Result<kube::Client> {
    let path = kubeconfig.or_else(|| config.cluster.kubeconfig.clone());
    let context = context.or_else(|| config.cluster.context.clone());
    let kube_config = match path {
        Some(path) => {
            if !path.exists() {
                bail!(
                    "kubeconfig {} not found; pass --kubeconfig PATH, or run `scalebot demo` for a simulated cluster",
                    path.display()
                );
            }
            // A YAML error quotes lines of the file, which may contain tokens, so
            // only its first line is shown.
            let file = Kubeconfig::read_from(&path).map_err(|error| {
                anyhow!(
                    "failed to read kubeconfig {}: {}",
                    path.display(),
                    first_line(&error)
                )
            })?;
            let options = KubeConfigOptions {
                context,
                ..KubeConfigOptions::default()
            };
            kube::Config::from_custom_kubeconfig(file, &options)
                .await
                .map_err(|error| anyhow!("invalid kubeconfig {}: {error}", path.display()))?
        }
        None => {
            if let Err(error) = Kubeconfig::from_env() {
                let variable = std::env::var_os("KUBECONFIG").unwrap_or_default();
                bail!(
                    "failed to read KUBECONFIG={}: {}",
                    variable.to_string_lossy(),
                    first_line(&error)
                );
            }
            kube::Config::infer().await.map_err(|error| {
                debug!(%error, "no in-cluster configuration or kubeconfig");
                anyhow!(
                    "no kubeconfig found and not running in a cluster; pass --kubeconfig PATH, set KUBECONFIG or cluster.kubeconfig, or run `scalebot demo` for a simulated cluster"
                )
            })?
        }
    };
    kube::Client::try_from(kube_config).context("cannot build a Kubernetes client")
}

fn first_line(error: &impl std::fmt::Display) -> String {
    let text = error.to_string();
    text.lines().next().unwrap_or_default().to_string()
}

/// Maximum time to wait for Redis at start. Without Redis the bot could
/// only refuse every request, so it waits a while before giving up.
const REDIS_START_TIMEOUT: Duration = Duration::from_secs(5 * 60);
const REDIS_RETRY_INTERVAL: Duration = Duration::from_secs(5);

/// Connects to Redis, retrying while it is unavailable for at most
/// [`REDIS_START_TIMEOUT`], with a progress line on stderr per attempt.
async fn connect_redis(url: &str, key_prefix: &str) -> anyhow::Result<Coordinator> {
    let deadline = tokio::time::Instant::now() + REDIS_START_TIMEOUT;
    loop {
        match Coordinator::redis(url, key_prefix).await {
            Ok(coordinator) => return Ok(coordinator),
            Err(error) if error.is_unavailable() && tokio::time::Instant::now() < deadline => {
                eprintln!(
                    "waiting for Redis at {}: {error}; retrying in {}s",
                    commands::config::mask_url_password(url),
                    REDIS_RETRY_INTERVAL.as_secs()
                );
                tokio::time::sleep(REDIS_RETRY_INTERVAL).await;
            }
            Err(error) => {
                return Err(anyhow::Error::new(error).context("cannot set up Redis coordination"));
            }
        }
    }
}

async fn run_console_with(engine: Engine) -> anyhow::Result<()> {
    let stdin = tokio::io::BufReader::new(tokio::io::stdin());
    let result = adapters::console::run(
        engine.clone(),
        stdin,
        tokio::io::stdout(),
        shutdown_signal(),
    )
    .await
    .context("console failed");
    // In-memory requests end with the process, so they are listed instead
    // of dropped silently.
    if let Coordinator::Memory(_) = engine.coordinator()
        && let Ok(pending) = engine.coordinator().list_pending().await
    {
        let waiting: Vec<String> = pending
            .iter()
            .filter(|request| request.state == commands::coordination::PendingState::Pending)
            .map(|request| format!("{} ({})", request.id, request.summary))
            .collect();
        if !waiting.is_empty() {
            eprintln!(
                "dropped {} pending request(s) held in memory: {}",
                waiting.len(),
                waiting.join(", ")
            );
        }
    }
    result
}

/// Resolves on SIGTERM or Ctrl-C (SIGINT).
pub async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut terminate = match tokio::signal::unix::signal(
            tokio::signal::unix::SignalKind::terminate(),
        ) {
            Ok(signal) => signal,
            Err(error) => {
                tracing::warn!(%error, "cannot listen for SIGTERM; only Ctrl-C stops the console gracefully");
                let _ = interrupt.await;
                return;
            }
        };
        tokio::select! {
            _ = interrupt => {}
            _ = terminate.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = interrupt.await;
    }
}

pub async fn run_demo(config: Config) -> anyhow::Result<()> {
    let sim = kubesim::Sim::start("butterfly", kubesim::cluster::Timing::demo())
        .context("cannot start the simulated cluster")?;
    let client = sim
        .client()
        .context("cannot build a client for the simulated cluster")?;
    let engine = Engine::new(
        config,
        Coordinator::memory(),
        Cluster::new(client),
        instance_name(),
    );
    println!("{}", demo_intro(&sim.url()));
    run_console_with(engine).await
}

fn demo_intro(url: &str) -> String {
    format!(
        "scalebot demo: simulated BUTTERFLY cluster at {url}, in-memory coordination.\n\
         Type `<user>: <command>`. Users: oncall (requester), sre and sre2 (approvers), lead (admin).\n\
         Try:\n  oncall: status\n  oncall: scale synapse 4\n  sre: approve\n  oncall: history synapse\n  oncall: help\n\
         End with Ctrl-D."
    )
}

pub async fn run_console(
    config: Config,
    kubeconfig: Option<PathBuf>,
    context: Option<String>,
    redis: Option<String>,
) -> anyhow::Result<()> {
    let engine = build_engine(config, kubeconfig, context, redis).await?;
    eprintln!(
        "scalebot console: type `<user>: <command>` lines, e.g. `oncall: scale synapse 4`, `help` for the commands; end with Ctrl-D."
    );
    run_console_with(engine).await
}

/// Connects to Redis (or, without a URL, uses the in-memory store) and to
/// the cluster, and builds the engine.
pub async fn build_engine(
    config: Config,
    kubeconfig: Option<PathBuf>,
    context: Option<String>,
    redis: Option<String>,
) -> anyhow::Result<Engine> {
    let redis = redis.or_else(|| {
        config
            .redis
            .url
            .as_ref()
            .map(|url| url.expose().to_string())
    });
    let coordinator = match redis {
        Some(url) => connect_redis(&url, &config.redis.key_prefix).await?,
        None => {
            eprintln!(
                "warning: no Redis URL given (--redis, SCALEBOT_REDIS_URL or redis.url), so locks and approvals are local to this process"
            );
            Coordinator::memory()
        }
    };
    let client = kube_client(&config, kubeconfig, context).await?;
    Ok(Engine::new(
        config,
        coordinator,
        Cluster::new(client),
        instance_name(),
    ))
}
