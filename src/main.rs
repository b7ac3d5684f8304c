//! The `rampart` binary: parse arguments, set up logging, run the verb
//! (`serve`: open the data dir and run the server until a signal; any other
//! verb: [`rampart::cli::run`]), map the result to an exit status (0 ok,
//! 1 refused or failed, 2 usage).

use std::io::IsTerminal;
use std::path::Path;
use std::process::ExitCode;

use clap::Parser;
use rampart::cli::{Cli, Command, Outcome, report_init, run};
use rampart::config::Config;
use rampart::services::Services;

fn main() -> ExitCode {
    // Before any file is created: the database's -wal and -shm, the log.
    rampart::services::private_umask();
    rampart::alloc::limit_arenas();
    let cli = Cli::parse();
    // The server logs its audit lines (journald, fail2ban); the CLI is quiet
    // by default: its result is its output. RUST_LOG overrides both.
    // The server's level and file come from `[log]`; a config error is
    // reported by `run` itself, with the file and key.
    let serving = matches!(cli.command, Command::Serve { .. });
    let env_config = std::env::var("RAMPART_CONFIG").ok();
    let log = Config::load(cli.config.as_deref(), env_config.as_deref())
        .ok()
        .map(|c| c.log)
        .filter(|_| serving);
    let default = match (&log, serving) {
        (Some(log), _) => log.level.clone(),
        (None, true) => "info".to_string(),
        (None, false) => "warn".to_string(),
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let file = log.and_then(|l| l.file).map(|path| {
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(|e| format!("log.file {}: {e}", path.display()))
    });
    match file {
        Some(Ok(file)) => tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_ansi(false)
            .with_writer(std::sync::Mutex::new(file))
            .init(),
        Some(Err(e)) => {
            eprintln!("rampart: cannot open the log file: {e}");
            return ExitCode::FAILURE;
        }
        None => tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_ansi(std::io::stderr().is_terminal())
            .with_writer(std::io::stderr)
            .init(),
    }

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
    let outcome = runtime.block_on(async {
        match cli.command {
            Command::Serve { demo } => serve(cli.config.as_deref(), demo).await,
            _ => run(cli).await,
        }
    });
    match outcome {
        Ok(Outcome::Success) => ExitCode::SUCCESS,
        Ok(Outcome::Failure) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("rampart: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// `rampart serve`: opens the data dir (initialising an empty one first, and
/// saying what it created as `init` does), then runs the server until
/// SIGTERM or SIGINT.
async fn serve(config: Option<&Path>, demo: bool) -> anyhow::Result<Outcome> {
    let env_config = std::env::var("RAMPART_CONFIG").ok();
    let config = Config::load(config, env_config.as_deref())?;
    let services = if Services::is_initialised(&config).await? {
        Services::open(config).await?
    } else {
        let (services, init) = Services::init(config).await?;
        report_init(&init);
        services
    };
    rampart::serve::serve(services, demo).await?;
    Ok(Outcome::Success)
}
