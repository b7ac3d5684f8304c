//! A command held by a `review` filter: the person is told it waits for an
//! administrator, the admins' desks and `rampart session approvals` list it,
//! and the Enter goes to the target only on an approval by another admin
//! than the person (see `live::approval`). Denied, withdrawn (Ctrl-C) or unanswered
//! within `auth.approval_timeout`, it never runs. The same wait serves a
//! connection through a permission with `--require-approval`
//! ([`await_decision`]); the wait itself is [`crate::session::decided`],
//! shared by every protocol.
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
use crate::live::{Pending, Publisher};
use crate::record::RecorderHandle;
use crate::session::{self, Held, Withdrawal};

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
    // Only a terminal's Enter is held.
    if notify(client_write, recorder, shared, true, text)
        .await
        .is_err()
    {
        return Held::ClientGone;
    }
    await_decision(pending, timeout, client_read, deferred).await
}

/// Waits for the answer to `pending`, at most `timeout`, while the person's
/// Ctrl-C withdraws it; other keystrokes are dropped, and other channel
/// messages kept in `deferred` for later.
pub async fn await_decision(
    pending: Pending,
    timeout: Duration,
    client_read: &mut ChannelReadHalf,
    deferred: &mut VecDeque<ChannelMsg>,
) -> Held {
    let withdrawn = async {
        loop {
            match client_read.wait().await {
                Some(ChannelMsg::Data { data }) => {
                    if data.contains(&0x03) {
                        return Withdrawal::Withdrawn;
                    }
                }
                Some(ChannelMsg::Close) | None => return Withdrawal::Gone,
                Some(other) => deferred.push_back(other),
            }
        }
    };
    session::decided(pending, timeout, withdrawn).await
}
