//! Runs a parsed command line: opens the services, calls the ops verb as the
//! local admin, prints the result. [`dispatch`] hands each noun to its own
//! file (`user`, `asset`, `audit`, ...), which calls `ops` and prints.
//! `serve` is not run here: the binary starts the server itself
//! ([`crate::serve`]), so that the server may run these verbs over SSH
//! without the CLI depending on it.

use anyhow::bail;

use super::stdin::Stdin;
use super::verb::{Io, Outcome};
use super::{
    Cli, Command, account, acl, asset, audit, db, filter, group, import, me, node, perm, rdp,
    session, user, web,
};
use crate::config::Config;
use crate::ops::Caller;
use crate::services::Services;

/// Tells the person what `init` (or `serve` on an empty data dir) created,
/// the admin's one-time password included: shown only this once.
pub fn report_init(init: &crate::services::Initialised) {
    eprintln!("initialised {}", init.data_dir.display());
    for key in &init.host_keys {
        eprintln!("host key: {}", key.display());
    }
    eprintln!(
        "user {:?} created with the one-time password: {}",
        init.admin,
        init.admin_password.expose()
    );
    eprintln!("it is shown only now and must be changed at the first login");
}

/// Runs one command line to completion.
pub async fn run(cli: Cli) -> anyhow::Result<Outcome> {
    let env_config = std::env::var("RAMPART_CONFIG").ok();
    let config = Config::load(cli.config.as_deref(), env_config.as_deref())?;
    let json = cli.json;

    match cli.command {
        Command::Init => {
            let (services, init) = Services::init(config).await?;
            report_init(&init);
            services.store.close().await;
            return Ok(Outcome::Success);
        }
        Command::Serve { .. } => bail!("`serve` is started by the rampart binary"),
        Command::Migrate { from, to } => {
            let done = crate::services::migrate(&config, &from, &to).await?;
            for (table, rows) in &done.copied.tables {
                eprintln!("{table}: {rows} rows");
            }
            eprintln!(
                "copied {} rows in {} tables from {} to {}",
                done.copied.rows(),
                done.copied.tables.len(),
                done.from,
                done.to
            );
            return Ok(match done.verified.broken {
                None => {
                    println!(
                        "audit chain intact on the copy: {} rows, {} recordings verified",
                        done.verified.rows, done.verified.recordings
                    );
                    Outcome::Success
                }
                Some(problem) => {
                    eprintln!("rampart: audit chain broken on the copy: {problem}");
                    Outcome::Failure
                }
            });
        }
        Command::Replay {
            session,
            speed,
            idle_cap,
            graphics,
        } => {
            let services = Services::open(config).await?;
            let path = services
                .ops
                .session_recording(
                    &Caller::local(),
                    &session,
                    "session.replay",
                    &services.recordings,
                )
                .await?;
            let speed = speed.clamp(0.25, 16.0);
            let idle = (idle_cap > 0.0).then_some(idle_cap);
            let desktop = crate::record::read(&path)?
                .header()
                .rampart
                .as_ref()
                .is_some_and(|r| r.kind == crate::record::SessionKind::Desktop);
            if desktop {
                tokio::task::spawn_blocking(move || {
                    super::replay::desktop(&path, graphics, speed, idle)
                })
                .await??;
                return Ok(Outcome::Success);
            }
            tokio::task::spawn_blocking(move || {
                let mut out = std::io::stdout().lock();
                crate::record::replay(
                    &path,
                    &mut out,
                    crate::record::ReplayOptions {
                        speed,
                        idle_cap: idle,
                    },
                )
            })
            .await??;
            return Ok(Outcome::Success);
        }
        _ => {}
    }

    let services = Services::open(config).await?;
    let mut stdout = std::io::stdout();
    let mut stderr = std::io::stderr();
    let mut io = Io {
        out: &mut stdout,
        err: &mut stderr,
        stdin: Stdin::Process,
    };
    let outcome = dispatch(&services, &Caller::local(), cli.command, json, &mut io).await;
    services.store.close().await;
    outcome
}

/// Runs one verb as `caller`, writing to `io`.
pub async fn dispatch(
    services: &Services,
    caller: &Caller,
    command: Command,
    json: bool,
    io: &mut Io<'_>,
) -> anyhow::Result<Outcome> {
    match command {
        Command::Init => bail!("the data dir is already initialised"),
        Command::Serve { .. } | Command::Replay { .. } | Command::Migrate { .. } => {
            bail!("this verb runs only in the local CLI on the bastion")
        }
        Command::Export {
            session: id,
            output,
            raw,
            format,
            at,
        } => {
            let what = match format {
                Some(super::ExportFormat::Png) => session::Export::Png { at },
                Some(super::ExportFormat::Gif | super::ExportFormat::Mp4) if at.is_some() => bail!(
                    "--at picks one picture, for --format png; --format gif and mp4 show the whole recording"
                ),
                Some(super::ExportFormat::Gif) => session::Export::Gif,
                Some(super::ExportFormat::Mp4) => session::Export::Mp4,
                None if raw => session::Export::Raw,
                None => session::Export::Cast,
            };
            session::export(services, caller, id, output, what, io).await
        }
        Command::User(cmd) => user::run(services, caller, cmd, json, io).await,
        Command::Group(cmd) => group::run(services, caller, cmd, json, io).await,
        Command::Node(cmd) => node::run(services, caller, cmd, json, io).await,
        Command::Asset(cmd) => asset::run(services, caller, cmd, json, io).await,
        Command::Account(cmd) => account::run(services, caller, cmd, json, io).await,
        Command::Perm(cmd) => perm::run(services, caller, cmd, json, io).await,
        Command::Filter(cmd) => filter::run(services, caller, cmd, json, io).await,
        Command::Acl(cmd) => acl::run(services, caller, cmd, json, io).await,
        Command::Session(cmd) => session::run(services, caller, cmd, json, io).await,
        Command::Import(cmd) => import::run(services, caller, cmd, json, io).await,
        Command::Me(me) => me::run(services, caller, me, json, io).await,
        Command::Rdp(cmd) => rdp::run(services, caller, cmd, json, io).await,
        Command::Db(cmd) => db::run(services, caller, cmd, json, io).await,
        Command::Web(cmd) => web::run(services, caller, cmd, json, io).await,
        Command::Audit(cmd) => audit::run(services, caller, cmd, json, io).await,
    }
}
