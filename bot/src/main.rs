//! `scalebot`: the binary. It parses the command line, loads and validates
//! the configuration, wires the engine to the cluster, the coordination
//! store and an adapter, and runs until its input or a signal ends it.

mod cli;
mod logging;
mod serve;
mod wiring;

use clap::Parser;

#[tokio::main]
async fn main() {
    let cli = cli::Cli::parse();
    logging::init(cli.log_format, cli.command.default_log_level());
    let code = match cli::run(cli.command).await {
        Ok(()) => 0,
        Err(error) => {
            eprintln!("scalebot: {error:#}");
            1
        }
    };
    // Exit here instead of returning: the runtime's shutdown would wait for
    // the blocking thread that reads stdin, which only returns on the next
    // input line, so a console stopped by SIGTERM would never exit.
    std::process::exit(code);
}
