//! The `rampart` binary: parse arguments, set up logging, run the verb,
//! map the result to an exit status (0 ok, 1 refused or failed, 2 usage).

use std::process::ExitCode;

use clap::Parser;
use rampart::cli::{Cli, Outcome, run};

fn main() -> ExitCode {
    let cli = Cli::parse();
    // The CLI is quiet by default: its result is its output. RUST_LOG turns
    // on the audit and diagnostic lines.
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();

    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("rampart: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(Outcome::Success) => ExitCode::SUCCESS,
        Ok(Outcome::Failure) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("rampart: {e:#}");
            ExitCode::FAILURE
        }
    }
}
