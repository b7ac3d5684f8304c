//! A desktop asked for over SSH: `ssh -t bastion win1` for an asset the
//! person may use over RDP and not over SSH, or RDP picked in the menu or
//! the account chooser. Instead of a shell, the person gets what to type
//! into their RDP client: a one-time ticket (`ops::Ops::issue_rdp_ticket`).
//! Where the permission needs an administrator's approval, the person
//! waits for it here, as for an SSH connection, and the ticket carries
//! the approver: the RDP front admits a connection through such a
//! permission only with an approved ticket.
//!
//! Under the menu the ticket stays on the screen until a key, then the
//! menu comes back.

use std::sync::Arc;

use bytes::Bytes;
use russh::ChannelMsg;

use super::target::{Choice, Ended, PersonChannel, Run, Say, approved};
use super::{Conn, Shared};

/// A session on a target, or for a desktop the ticket instead (see the
/// module docs): for a jump and for the menu.
pub async fn run_session(
    shared: &Arc<Shared>,
    conn: &Conn,
    choice: Choice,
    run: Run,
    person: &mut PersonChannel<'_>,
) -> Ended {
    let wants = Wants {
        asset: &choice.asset,
        account: choice.account.as_deref(),
        chose_rdp: choice.protocol.as_deref() == Some("rdp"),
    };
    if let Some(ended) = ticket_instead(shared, conn, wants, &run, person).await {
        return ended;
    }
    super::target::run_session(shared, conn, choice, run, person).await
}

/// What the person asked for.
#[derive(Debug, Clone, Copy)]
pub struct Wants<'a> {
    pub asset: &'a str,
    pub account: Option<&'a str>,
    /// RDP was picked in a chooser (the asset may offer SSH too).
    pub chose_rdp: bool,
}

/// The ticket instead of a session, when the person wants a desktop;
/// `None`: not a desktop, the session goes on as SSH.
async fn ticket_instead(
    shared: &Shared,
    conn: &Conn,
    wants: Wants<'_>,
    run: &Run,
    person: &mut PersonChannel<'_>,
) -> Option<Ended> {
    let Wants {
        asset,
        account,
        chose_rdp,
    } = wants;
    let now = shared.services.clock.now();
    let visible = shared.policy().visible_asset(&conn.identity, asset, now)?;
    let over = |name: &str| visible.protocols().any(|p| p.name == name);
    if (over("ssh") && !chose_rdp) || !over("rdp") || !matches!(run, Run::Shell) {
        return None;
    }
    let say = Say {
        write: person.write,
        pty: person.pty.is_some(),
    };
    let refuse = |e: crate::ops::OpsError| async move {
        let text = format!("rampart: {asset}: {e}");
        say.refused(shared, conn, &format!("rdp ticket {asset}"), text)
            .await;
        Ended::refused()
    };
    let ops = &shared.services.ops;
    let caller = match ops.caller(&conn.identity, crate::audit::Via::Ssh).await {
        Ok(caller) => caller,
        Err(e) => return Some(refuse(e).await),
    };
    let grant = match ops.rdp_grant(&caller, asset, account).await {
        Ok(grant) => grant,
        Err(e) => return Some(refuse(e).await),
    };
    let approved_by = match grant.approval() {
        None => None,
        Some(permission) => {
            let what = "an RDP connection (one ticket)".to_string();
            match approved(shared, conn, &grant, permission, what, person, say).await {
                Some(by) => Some(by),
                None => return Some(Ended::refused()),
            }
        }
    };
    let ticket = match ops.issue_rdp_ticket(&caller, &grant, approved_by).await {
        Ok(ticket) => ticket,
        Err(e) => return Some(refuse(e).await),
    };
    let apps = match ops.remote_apps_of(Some(&ticket.asset)).await {
        Ok(apps) => apps,
        Err(e) => return Some(refuse(e).await),
    };
    let text = crate::cli::rdp_ticket_text(&shared.services, &ticket, &apps);
    Some(show_ticket(person, say, text).await)
}

/// Shows a ticket's lines; under the menu, until a key.
pub(super) async fn show_ticket(
    person: &mut PersonChannel<'_>,
    say: Say<'_>,
    mut text: String,
) -> Ended {
    let under_menu = person.end.is_none();
    if under_menu {
        text.push_str("Any key: back to the menu.\n");
    }
    if say.pty {
        text = text.replace('\n', "\r\n");
    }
    if person.write.data_bytes(Bytes::from(text)).await.is_err() {
        return Ended {
            client_open: false,
            exit_status: 0,
            size: None,
        };
    }
    let (client_open, size) = if under_menu {
        read_a_key(person).await
    } else {
        (true, None)
    };
    Ended {
        client_open,
        exit_status: 0,
        size,
    }
}

/// Waits for a key on the person's channel: whether it is still open, and
/// the terminal size if it changed meanwhile.
async fn read_a_key(person: &mut PersonChannel<'_>) -> (bool, Option<(u32, u32)>) {
    let mut size = None;
    loop {
        match person.read.wait().await {
            Some(ChannelMsg::Data { .. }) => return (true, size),
            Some(ChannelMsg::WindowChange {
                col_width,
                row_height,
                ..
            }) => size = Some(crate::relay::terminal_size(col_width, row_height)),
            Some(ChannelMsg::Eof | ChannelMsg::Close) | None => return (false, size),
            Some(_) => {}
        }
    }
}
