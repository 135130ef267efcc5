//! `kubesim serve`: runs a simulated cluster until SIGTERM or Ctrl-C.
//!
//! The first line on stdout is the server URL, so a parent process can read
//! it to learn the port. Logs go to stderr (filter them with `RUST_LOG`).

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand, ValueEnum};
use kubesim::Sim;
use kubesim::cluster::Timing;

#[derive(Parser)]
#[command(
    name = "kubesim",
    about = "Kubernetes API emulator for scalebot's tests and demo"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the Kubernetes API of a simulated cluster.
    Serve(ServeArgs),
}

#[derive(clap::Args)]
struct ServeArgs {
    /// Objects to load: `butterfly` or `large:N`.
    #[arg(long, default_value = "butterfly")]
    scenario: String,
    /// Address to listen on; port 0 picks a free port.
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: SocketAddr,
    /// Path of a kubeconfig to write, pointing at the server.
    #[arg(long)]
    kubeconfig: Option<PathBuf>,
    /// Controller speed: `fast` settles in about a second, `demo` in seconds.
    #[arg(long, value_enum, default_value_t = TimingChoice::Demo)]
    timing: TimingChoice,
}

#[derive(Clone, Copy, ValueEnum)]
enum TimingChoice {
    Fast,
    Demo,
}

fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    let cli = Cli::parse();
    let runtime = tokio::runtime::Runtime::new().context("failed to start the tokio runtime")?;
    match cli.command {
        Command::Serve(args) => runtime.block_on(serve(args)),
    }
}

async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let timing = match args.timing {
        TimingChoice::Fast => Timing::fast(),
        TimingChoice::Demo => Timing::demo(),
    };
    let mut sim = Sim::start_on(args.listen, &args.scenario, timing).with_context(|| {
        format!(
            "failed to start kubesim with scenario {:?} on {}",
            args.scenario, args.listen
        )
    })?;
    if let Some(path) = &args.kubeconfig {
        sim.write_kubeconfig(path)?;
        tracing::info!(path = %path.display(), "kubeconfig written");
    }
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "{}", sim.url()).context("failed to write the server URL to stdout")?;
    stdout.flush().context("failed to flush stdout")?;
    drop(stdout);

    let signalled = tokio::select! {
        signal = termination() => signal.map(|()| true)?,
        served = sim.wait() => served.map(|()| false)?,
    };
    if signalled {
        tracing::info!("termination signal received, shutting down");
        sim.shutdown().await?;
    }
    Ok(())
}

/// Resolves on SIGTERM or Ctrl-C (SIGINT).
async fn termination() -> anyhow::Result<()> {
    let mut sigterm = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .context("failed to install the SIGTERM handler")?;
    tokio::select! {
        _ = sigterm.recv() => {}
        interrupted = tokio::signal::ctrl_c() => interrupted.context("failed to listen for Ctrl-C")?,
    }
    Ok(())
}
