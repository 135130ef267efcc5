//! Command-line interface.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

use crate::logging::LogFormat;
use crate::wiring;

#[derive(Debug, Parser)]
#[command(
    name = "scalebot",
    version,
    about = "Scale the BUTTERFLY platform from chat, with previews, two-person approval and locks"
)]
pub struct Cli {
    /// Log line format on stderr.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the console against an embedded simulated cluster (kubesim's
    /// `butterfly` scenario) with in-memory coordination.
    Demo {
        /// Configuration file; defaults to the embedded butterfly configuration.
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Run the console against a real cluster and, optionally, Redis.
    Console {
        /// Configuration file (YAML).
        #[arg(long)]
        config: PathBuf,
        /// Kubeconfig file; defaults to the config's `cluster.kubeconfig`,
        /// then KUBECONFIG, ~/.kube/config or the in-cluster service account.
        #[arg(long)]
        kubeconfig: Option<PathBuf>,
        /// Kubeconfig context; defaults to the config's `cluster.context`,
        /// then the kubeconfig's current context.
        #[arg(long)]
        context: Option<String>,
        /// Redis URL for shared locks and approvals; without it, coordination
        /// is in memory and local to this process.
        #[arg(long, env = "SCALEBOT_REDIS_URL")]
        redis: Option<String>,
    },
    /// Serve Slack and Discord as configured, with health (`/healthz`,
    /// `/readyz`) and Prometheus metrics (`/metrics`) on the listener.
    Serve {
        /// Configuration file (YAML) with a `slack` or `discord` section.
        #[arg(long)]
        config: PathBuf,
        /// Address of the HTTP listener (Slack endpoints, health, metrics).
        #[arg(long, default_value = "0.0.0.0:8080")]
        listen: std::net::SocketAddr,
        /// Kubeconfig file; defaults as for `console`.
        #[arg(long)]
        kubeconfig: Option<PathBuf>,
        /// Kubeconfig context; defaults as for `console`.
        #[arg(long)]
        context: Option<String>,
        /// Redis URL for locks and approvals shared by all replicas.
        #[arg(long, env = "SCALEBOT_REDIS_URL")]
        redis: Option<String>,
    },
    /// Validate a configuration file and print the effective configuration
    /// without secrets.
    CheckConfig {
        /// Configuration file (YAML).
        #[arg(required_unless_present = "config", conflicts_with = "config")]
        file: Option<PathBuf>,
        /// The same file, given as the other subcommands take it.
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
    },
}

impl Command {
    /// Log level when RUST_LOG is unset. The console shares the terminal
    /// with logs, so it logs warnings only.
    pub fn default_log_level(&self) -> &'static str {
        match self {
            Command::Demo { .. } | Command::Console { .. } => "warn",
            Command::Serve { .. } => "info",
            Command::CheckConfig { .. } => "warn",
        }
    }
}

pub async fn run(command: Command) -> anyhow::Result<()> {
    match command {
        Command::Demo { config } => {
            let config = match config {
                Some(path) => wiring::load_config(&path)?,
                None => wiring::embedded_config()?,
            };
            wiring::run_demo(config).await
        }
        Command::Console {
            config,
            kubeconfig,
            context,
            redis,
        } => {
            let config = wiring::load_config(&config)?;
            wiring::run_console(config, kubeconfig, context, redis).await
        }
        Command::Serve {
            config,
            listen,
            kubeconfig,
            context,
            redis,
        } => {
            let config = wiring::load_config(&config)?;
            crate::serve::run(crate::serve::ServeOptions {
                config,
                listen,
                kubeconfig,
                context,
                redis,
            })
            .await
        }
        Command::CheckConfig { file, config } => {
            let file = file.or(config).expect("clap requires a file or --config");
            let config = wiring::load_config(&file)?;
            println!("{}", config.render_effective());
            eprintln!(
                "{}: valid. Secrets (tokens, signing secret) and connections are checked by `scalebot serve` at start.",
                file.display()
            );
            Ok(())
        }
    }
}
