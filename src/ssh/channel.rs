//! One session channel, driven from its own task in the order its messages
//! arrive: the requests before the session (pty, env, x11, agent), then the
//! session the person asked for — the menu, a jump, an exec, the usage text —
//! and the end of the channel (exit status, EOF, close, in that order).

use std::sync::Arc;

use bytes::Bytes;
use russh::server::{Handle, Msg};
use russh::{Channel, ChannelMsg, ChannelReadHalf, ChannelWriteHalf};
use tokio::sync::mpsc;

use super::request::Answer;
use super::target::{self, Choice, PersonChannel, Pty, Run};
use super::{Conn, Shared, refuse_log};
use crate::relay::{ClientEnd, EXIT_BASTION};
use crate::route::Intent;

/// The per-channel state before the session starts.
struct Setup {
    pty: Option<Pty>,
    env: Vec<(String, String)>,
}

impl Setup {
    fn no_color(&self) -> bool {
        self.env
            .iter()
            .any(|(k, v)| k == "NO_COLOR" && !v.is_empty())
    }
}

/// Drives one session channel. Its requests were already answered by the
/// handler ([`super::request`]); `answers` says how, one per request, in
/// the order the requests arrive here.
pub async fn run(
    shared: Arc<Shared>,
    conn: Arc<Conn>,
    channel: Channel<Msg>,
    mut answers: mpsc::UnboundedReceiver<Answer>,
    handle: Handle,
) {
    let id = channel.id();
    let (mut read, write) = channel.split();
    let end = ClientEnd::default();
    let mut setup = Setup {
        pty: None,
        env: Vec::new(),
    };
    let status = loop {
        let Some(msg) = read.wait().await else {
            return;
        };
        let answered = matches!(
            msg,
            ChannelMsg::RequestPty { .. }
                | ChannelMsg::SetEnv { .. }
                | ChannelMsg::RequestX11 { .. }
                | ChannelMsg::RequestShell { .. }
                | ChannelMsg::Exec { .. }
                | ChannelMsg::RequestSubsystem { .. }
        );
        let answer = if answered {
            // The handler answers before the connection reads the next
            // packet; it is gone only with the connection.
            let Some(answer) = answers.recv().await else {
                return;
            };
            Some(answer)
        } else {
            None
        };
        match (msg, answer) {
            (
                ChannelMsg::RequestPty {
                    term,
                    col_width,
                    row_height,
                    terminal_modes,
                    ..
                },
                Some(Answer::Taken),
            ) => {
                // Absurd sizes are clamped rather than trusted.
                let (cols, rows) = crate::relay::claimed_size(col_width, row_height);
                setup.pty = Some(Pty {
                    term,
                    cols,
                    rows,
                    modes: terminal_modes,
                });
            }
            (
                ChannelMsg::SetEnv {
                    variable_name,
                    variable_value,
                    ..
                },
                Some(Answer::Taken),
            ) => setup.env.push((variable_name, variable_value)),
            (_, Some(Answer::Refused { request, reason })) => {
                refuse_log(&shared, &conn, request, &reason).await;
            }
            (_, Some(Answer::StartRefused { request, reason })) => {
                // The person has the line and a failure reply; nothing ran,
                // so the channel closes without an exit status.
                let reason = reason.trim_start_matches("rampart: ");
                refuse_log(&shared, &conn, request, reason).await;
                let _ = write.eof().await;
                let _ = write.close().await;
                return;
            }
            (_, Some(Answer::Start(intent))) => {
                break run_intent(
                    &shared, &conn, intent, &setup, &mut read, &write, &handle, id, &end,
                )
                .await;
            }
            (_, Some(Answer::Taken)) => {}
            (ChannelMsg::AgentForward { .. }, None) => {
                // russh has already answered it (the handler's default
                // `agent_request` refuses).
                refuse_log(
                    &shared,
                    &conn,
                    "auth-agent-req",
                    "agent forwarding is refused: the bastion holds the target credentials",
                )
                .await;
                let _ = write
                    .extended_data_bytes(
                        1,
                        Bytes::from_static(b"rampart: agent forwarding is refused: the bastion holds the target credentials\r\n"),
                    )
                    .await;
            }
            (ChannelMsg::Eof | ChannelMsg::Close, None) => return,
            (
                ChannelMsg::WindowChange {
                    col_width,
                    row_height,
                    ..
                },
                None,
            ) => {
                if let Some(p) = setup.pty.as_mut() {
                    (p.cols, p.rows) = crate::relay::claimed_size(col_width, row_height);
                }
            }
            // Data before a session, signals, and kinds this russh version
            // does not know are not requests: ignored.
            (_, None) => {}
        }
    };
    end.finish(&write, status).await;
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
    end: &ClientEnd,
) -> u32 {
    let pty = setup.pty.as_ref();
    let mut person = PersonChannel {
        read,
        write,
        handle,
        id,
        pty,
        env: &setup.env,
        end: Some(end),
    };
    match intent {
        Intent::Usage => {
            let text = usage(shared, conn);
            let _ = write.data_bytes(Bytes::from(text)).await;
            0
        }
        Intent::Menu => {
            conn.arrival.done();
            super::menu::run(
                shared,
                conn,
                pty,
                setup.no_color(),
                person.read,
                write,
                handle,
                id,
            )
            .await
        }
        Intent::Jump { target, .. } => {
            let mut choice = Choice {
                asset: target.asset,
                account: target.account,
                input_password: None,
                protocol: None,
            };
            // Several accounts, or a typed-in one: with a terminal, the menu's
            // chooser for just this asset (DESIGN.md §2: "a chooser if several").
            if choice.account.is_none()
                && let Some(p) = pty
                && target::pick_account(shared, conn, &choice.asset).is_err()
            {
                match super::menu::choose(
                    shared,
                    conn,
                    &choice.asset,
                    p,
                    setup.no_color(),
                    person.read,
                    write,
                )
                .await
                {
                    Some(picked) => choice = picked,
                    None => return 1,
                }
            }
            super::database::run_session(shared, conn, choice, Run::Shell, &mut person)
                .await
                .exit_status
        }
        Intent::Exec {
            target, command, ..
        } => {
            let choice = Choice {
                asset: target.asset,
                account: target.account,
                input_password: None,
                protocol: None,
            };
            super::database::run_session(shared, conn, choice, Run::Exec(command), &mut person)
                .await
                .exit_status
        }
        Intent::Sftp { target } => super::sftp::run(shared, conn, target, person.read, write).await,
        Intent::Admin { args } => {
            super::admin::run(shared, conn, args, pty.is_some(), person.read, write).await
        }
        // Refused by the handler before it got here (`request::start`).
        Intent::Refuse { reason } => {
            refuse_log(shared, conn, "request", &reason).await;
            EXIT_BASTION
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
