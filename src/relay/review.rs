//! A command held by a `review` filter: the person is told it waits for an
//! administrator, the admins' desks and `rampart session approvals` list it,
//! and the Enter goes to the target only on an approval by another admin
//! than the person (see `live::approval`). Denied, withdrawn (Ctrl-C) or unanswered
//! within `auth.approval_timeout`, it never runs. The same wait serves a
//! connection through a permission with `--require-approval`
//! ([`await_decision`]).
//!
//! While a command waits, the person's keystrokes are not passed on (they
//! would be typed into the held line), except Ctrl-C, which withdraws it.
//! Other channel messages (a window change) are kept for the pump to handle
//! after the decision.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::Duration;

use russh::server::Msg as ServerMsg;
use russh::{ChannelMsg, ChannelReadHalf, ChannelWriteHalf};

use super::{RESET, Shared, YELLOW, notify};
use crate::live::{Decision, Pending, Publisher};
use crate::record::RecorderHandle;

/// What became of a held command or connection.
#[derive(Debug)]
pub enum Held {
    Approved {
        by: String,
    },
    /// `reason` is what the admin gave, empty when nothing.
    Denied {
        by: String,
        reason: String,
    },
    TimedOut,
    /// The person pressed Ctrl-C.
    Withdrawn,
    /// The person's channel closed meanwhile.
    ClientGone,
}

impl Held {
    /// The line shown to the person once it is decided.
    pub fn notice(&self, timeout: Duration) -> String {
        match self {
            Held::Approved { by } => format!("approved by {by}"),
            Held::Denied { by, reason } if reason.is_empty() => {
                format!("denied by {by}; it was not run")
            }
            Held::Denied { by, reason } => format!("denied by {by}: {reason}; it was not run"),
            Held::TimedOut => format!(
                "no administrator answered within {}; it was not run",
                humanize(timeout)
            ),
            Held::Withdrawn | Held::ClientGone => "withdrawn; it was not run".to_string(),
        }
    }
}

/// What stands for a line typed with echo off (a password at a prompt)
/// wherever a line is shown or stored: approvers, the command log, the
/// recording's marker, the operation log.
pub(super) const UNSEEN: &str = "[a line typed without echo]";

#[allow(clippy::too_many_arguments)]
pub(super) async fn hold(
    publish: &Publisher,
    command: &str,
    rule: &str,
    timeout: Duration,
    client_read: &mut ChannelReadHalf,
    deferred: &mut VecDeque<ChannelMsg>,
    client_write: &ChannelWriteHalf<ServerMsg>,
    recorder: &RecorderHandle,
    shared: &Mutex<Shared>,
) -> Held {
    let Some(pending) = publish.ask(command, rule) else {
        return Held::TimedOut;
    };
    let text = format!(
        "\r\n{YELLOW}rampart: this command needs an administrator's approval (rule {rule}); waiting... Ctrl-C withdraws it{RESET}\r\n"
    );
    if notify(client_write, recorder, shared, text).await.is_err() {
        return Held::ClientGone;
    }
    await_decision(pending, timeout, client_read, deferred).await
}

/// Waits for the answer to `pending`, at most `timeout`, while the person's
/// Ctrl-C withdraws it; other keystrokes are dropped, and other channel
/// messages kept in `deferred` for later.
pub async fn await_decision(
    mut pending: Pending,
    timeout: Duration,
    client_read: &mut ChannelReadHalf,
    deferred: &mut VecDeque<ChannelMsg>,
) -> Held {
    let deadline = tokio::time::sleep(timeout);
    tokio::pin!(deadline);
    loop {
        tokio::select! {
            decision = pending.decision() => return match decision {
                Some(Decision::Approved { by }) => Held::Approved { by },
                Some(Decision::Denied { by, reason }) => Held::Denied { by, reason },
                None => Held::TimedOut,
            },
            () = &mut deadline => return Held::TimedOut,
            msg = client_read.wait() => match msg {
                Some(ChannelMsg::Data { data }) => {
                    if data.contains(&0x03) {
                        return Held::Withdrawn;
                    }
                }
                Some(ChannelMsg::Close) | None => return Held::ClientGone,
                Some(other) => deferred.push_back(other),
            },
        }
    }
}

/// `5m`, `90s`, `1h`.
fn humanize(d: Duration) -> String {
    let s = d.as_secs();
    if s >= 3600 && s.is_multiple_of(3600) {
        format!("{}h", s / 3600)
    } else if s >= 60 && s.is_multiple_of(60) {
        format!("{}m", s / 60)
    } else {
        format!("{s}s")
    }
}
