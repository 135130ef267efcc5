//! `scalebot`: the binary. It parses the command line, loads and validates
//! the configuration, wires the engine to the cluster, the coordination
//! store and an adapter, and runs until its input or a signal ends it.

mod cli;
mod logging;
mod wiring;

use clap::Parser;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = cli::Cli::parse();
    logging::init(cli.log_format, cli.command.default_log_level());
    match cli::run(cli.command).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("scalebot: {error:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
