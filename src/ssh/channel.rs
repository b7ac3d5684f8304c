//! One session channel, driven from its own task in the order its messages
//! arrive: the requests before the session (pty, env, x11, agent), then the
//! session the person asked for — the menu, a jump, an exec, the usage text —
//! and the end of the channel (exit status, EOF, close, in that order).

use std::sync::Arc;

use bytes::Bytes;
use russh::server::{Handle, Msg};
use russh::{Channel, ChannelMsg, ChannelReadHalf, ChannelWriteHalf};

use super::target::{self, Choice, Pty, Run};
use super::{Conn, Shared, refuse_log};
use crate::route::{self, Intent, Request};

/// Environment variables a client may set (DESIGN.md §2).
fn env_allowed(name: &str) -> bool {
    name == "TERM" || name == "LANG" || name.starts_with("LC_") || name == "NO_COLOR"
}

/// The per-channel state before the session starts.
struct Setup {
    pty: Option<Pty>,
    env: Vec<(String, String)>,
}

pub async fn run(shared: Arc<Shared>, conn: Arc<Conn>, channel: Channel<Msg>, handle: Handle) {
    let id = channel.id();
    let (mut read, write) = channel.split();
    let mut setup = Setup {
        pty: None,
        env: Vec::new(),
    };
    let status = loop {
        let Some(msg) = read.wait().await else {
            return;
        };
        let request = match msg {
            ChannelMsg::RequestPty {
                term,
                col_width,
                row_height,
                terminal_modes,
                ..
            } => {
                // Absurd sizes are clamped rather than trusted.
                let (cols, rows) = crate::relay::terminal_size(col_width, row_height);
                setup.pty = Some(Pty {
                    term,
                    cols,
                    rows,
                    modes: terminal_modes,
                });
                let _ = handle.channel_success(id).await;
                continue;
            }
            ChannelMsg::SetEnv {
                variable_name,
                variable_value,
                ..
            } => {
                if env_allowed(&variable_name) {
                    setup.env.push((variable_name, variable_value));
                    let _ = handle.channel_success(id).await;
                } else {
                    let _ = handle.channel_failure(id).await;
                    refuse(&shared, &conn, &write, "env", &format!("environment variable {variable_name} is not passed on (only TERM, LANG, LC_* and NO_COLOR)")).await;
                }
                continue;
            }
            ChannelMsg::RequestX11 { .. } => {
                let _ = handle.channel_failure(id).await;
                refuse(
                    &shared,
                    &conn,
                    &write,
                    "x11-req",
                    "X11 forwarding is not available through the bastion",
                )
                .await;
                continue;
            }
            ChannelMsg::AgentForward { .. } => {
                // russh has already answered it (the handler's default
                // `agent_request` refuses): a second answer would be taken
                // by the client as the answer to its next request.
                refuse(
                    &shared,
                    &conn,
                    &write,
                    "auth-agent-req",
                    "agent forwarding is refused: the bastion holds the target credentials",
                )
                .await;
                continue;
            }
            ChannelMsg::RequestShell { .. } => Request::Shell {
                pty: setup.pty.is_some(),
            },
            ChannelMsg::Exec { command, .. } => Request::Exec {
                command: String::from_utf8_lossy(&command).into_owned(),
                pty: setup.pty.is_some(),
            },
            ChannelMsg::RequestSubsystem { name, .. } => Request::Subsystem(name),
            ChannelMsg::Eof | ChannelMsg::Close => return,
            ChannelMsg::WindowChange {
                col_width,
                row_height,
                ..
            } => {
                if let Some(p) = setup.pty.as_mut() {
                    (p.cols, p.rows) = crate::relay::terminal_size(col_width, row_height);
                }
                continue;
            }
            ChannelMsg::Data { .. }
            | ChannelMsg::ExtendedData { .. }
            | ChannelMsg::Signal { .. }
            | ChannelMsg::Open { .. }
            | ChannelMsg::XonXoff { .. }
            | ChannelMsg::ExitStatus { .. }
            | ChannelMsg::ExitSignal { .. }
            | ChannelMsg::WindowAdjusted { .. }
            | ChannelMsg::Success
            | ChannelMsg::Failure
            | ChannelMsg::OpenFailure(_) => continue,
            // russh marks ChannelMsg non-exhaustive: a kind this version
            // does not know is ignored, never treated as a request.
            _ => continue,
        };
        let login = conn.route.clone().unwrap_or(route::Login {
            user: conn.identity.name.clone(),
            target: None,
        });
        let intent = match route::route(&login, &request) {
            Ok(i) => i,
            Err(e) => {
                let _ = handle.channel_success(id).await;
                break say_and_fail(&write, setup.pty.is_some(), &format!("rampart: {e}")).await;
            }
        };
        let _ = handle.channel_success(id).await;
        if conn.must_enrol && !matches!(intent, Intent::Menu) {
            break say_and_fail(
                &write,
                setup.pty.is_some(),
                "rampart: two-factor enrolment is required first: log in interactively (`ssh -t bastion`)",
            )
            .await;
        }
        break run_intent(
            &shared, &conn, intent, &setup, &mut read, &write, &handle, id,
        )
        .await;
    };
    let _ = write.exit_status(status).await;
    let _ = write.eof().await;
    let _ = write.close().await;
}

/// One line to the person (on stderr) and one audit row.
async fn refuse(
    shared: &Shared,
    conn: &Conn,
    write: &ChannelWriteHalf<Msg>,
    request: &str,
    reason: &str,
) {
    let _ = write
        .extended_data_bytes(1, Bytes::from(format!("rampart: {reason}\r\n")))
        .await;
    refuse_log(shared, conn, request, reason).await;
}

async fn say_and_fail(write: &ChannelWriteHalf<Msg>, pty: bool, text: &str) -> u32 {
    let end = if pty { "\r\n" } else { "\n" };
    let _ = write
        .extended_data_bytes(1, Bytes::from(format!("{text}{end}")))
        .await;
    1
}

#[allow(clippy::too_many_arguments)]
async fn run_intent(
    shared: &Arc<Shared>,
    conn: &Conn,
    intent: Intent,
    setup: &Setup,
    read: &mut ChannelReadHalf,
    write: &ChannelWriteHalf<Msg>,
    handle: &Handle,
    id: russh::ChannelId,
) -> u32 {
    let pty = setup.pty.as_ref();
    match intent {
        Intent::Usage => {
            let text = usage(shared, conn);
            let _ = write.data_bytes(Bytes::from(text)).await;
            0
        }
        Intent::Menu => {
            let no_color = setup
                .env
                .iter()
                .any(|(k, v)| k == "NO_COLOR" && !v.is_empty());
            super::menu::run(shared, conn, pty, no_color, read, write, handle, id).await
        }
        Intent::Jump { target, .. } => {
            let mut choice = Choice {
                asset: target.asset,
                account: target.account,
                input_password: None,
            };
            // Several accounts, or a typed-in one: with a terminal, the menu's
            // chooser for just this asset (DESIGN.md §2: "a chooser if several").
            if choice.account.is_none()
                && let Some(p) = pty
                && target::pick_account(shared, conn, &choice.asset).is_err()
            {
                let no_color = setup
                    .env
                    .iter()
                    .any(|(k, v)| k == "NO_COLOR" && !v.is_empty());
                match super::menu::choose(shared, conn, &choice.asset, p, no_color, read, write)
                    .await
                {
                    Some(picked) => choice = picked,
                    None => return 1,
                }
            }
            target::run_session(
                shared,
                conn,
                choice,
                Run::Shell,
                pty,
                read,
                write,
                handle,
                id,
            )
            .await
            .exit_status
            .unwrap_or(0)
        }
        Intent::Exec {
            target, command, ..
        } => {
            let choice = Choice {
                asset: target.asset,
                account: target.account,
                input_password: None,
            };
            target::run_session(
                shared,
                conn,
                choice,
                Run::Exec(command),
                pty,
                read,
                write,
                handle,
                id,
            )
            .await
            .exit_status
            .unwrap_or(0)
        }
        Intent::Sftp { target } => super::sftp::run(shared, conn, target, read, write).await,
        Intent::Admin { args } => {
            super::admin::run(shared, conn, args, pty.is_some(), read, write).await
        }
        Intent::Refuse { reason } => {
            refuse(shared, conn, write, "request", &reason).await;
            1
        }
    }
}

/// The text for a login without pty and command: what the person may reach
/// and how to reach it.
fn usage(shared: &Shared, conn: &Conn) -> String {
    let now = shared.services.clock.now();
    let assets = shared.policy().visible_assets(&conn.identity, now);
    let mut text = format!("rampart: hello {}. ", conn.identity.name);
    if assets.is_empty() {
        text.push_str("You may not reach any asset yet; ask an admin.\n");
    } else {
        text.push_str(&format!("You may reach {} asset(s):\n", assets.len()));
        let width = assets.iter().map(|a| a.name().len()).max().unwrap_or(0);
        for a in &assets {
            let accounts: Vec<&str> = a.accounts().map(|x| x.username()).collect();
            let mut accounts = accounts.join(",");
            if a.input_allowed() {
                if !accounts.is_empty() {
                    accounts.push(',');
                }
                accounts.push_str("@INPUT");
            }
            let protocols: Vec<String> = a.protocols().map(|p| p.to_string()).collect();
            text.push_str(&format!(
                "  {:width$}  {:<20}  accounts: {:<20} {}\n",
                a.name(),
                a.address(),
                accounts,
                protocols.join(" ")
            ));
        }
    }
    text.push_str(
        "\nUsage:\n  ssh -t USER@BASTION                 the menu\n  ssh -t USER@BASTION ASSET           a shell on ASSET\n  ssh -t USER@BASTION ACCOUNT@ASSET   the same with that account\n  ssh USER@BASTION ASSET COMMAND...   run a command, exit status passed back\n  ssh USER@ACCOUNT@ASSET@BASTION      everything (scp, rsync) goes to ASSET\n  ssh USER@BASTION rampart --help     the ops CLI (admins and auditors)\n",
    );
    text
}
