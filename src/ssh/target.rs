//! One session on a target, from a choice to a closed, recorded, audited
//! session: authorise (policy builds the Grant), open the secret, connect
//! (host key pinned or checked), open the target channel with the person's
//! pty, start the recording and the session row, pump, then finalise the
//! recording, the row and the chain — whatever way the session ended.

use std::sync::Arc;

use bytes::Bytes;
use russh::server::Msg as ServerMsg;
use russh::{ChannelReadHalf, ChannelWriteHalf};

use super::{Conn, Shared};
use crate::audit::{self, AuditEvent};
use crate::model::{Action, FilterAction, new_id};
use crate::policy::{Grant, GrantAccount};
use crate::record::{CommandTracker, SessionKind};
use crate::relay::{self, ClientEnd, EXIT_BASTION, EndReason, Hooks};
use crate::session::{self, Session, UserSlot};
use crate::store;
use crate::transfer::ExecTransfer;
use crate::upstream::{self, TargetSecret};
use crate::vault::Secret;

/// The terminal the person has, if any.
#[derive(Debug, Clone)]
pub struct Pty {
    pub term: String,
    /// As the client claimed it ([`relay::claimed_size`]): 0 for none.
    pub cols: u32,
    pub rows: u32,
    pub modes: Vec<(russh::Pty, u32)>,
}

/// What the person chose: asset, account (stored or typed in), protocol.
pub struct Choice {
    pub asset: String,
    pub account: Option<String>,
    /// The @INPUT password typed in the menu, when the account is typed in.
    pub input_password: Option<Secret<String>>,
    /// The protocol picked in the menu; `None`: SSH, or RDP for an asset
    /// granted over RDP only.
    pub protocol: Option<String>,
}

/// The person's side of a target session: their channel, terminal and
/// environment, and whether the session's end is the channel's end.
pub struct PersonChannel<'a> {
    pub read: &'a mut ChannelReadHalf,
    pub write: &'a ChannelWriteHalf<ServerMsg>,
    pub handle: &'a russh::server::Handle,
    pub id: russh::ChannelId,
    pub pty: Option<&'a Pty>,
    /// The environment the client set (only the names `ssh::request`
    /// takes); `LANG`, `LC_*` and `GIT_PROTOCOL` are passed to the target.
    pub env: &'a [(String, String)],
    /// `Some` for a jump or an exec: the channel ends with the session.
    /// `None` under the menu, which comes back afterwards (see
    /// [`relay::Hooks::end`]).
    pub end: Option<&'a ClientEnd>,
}

/// Variables passed on to the target (without want-reply: a target whose
/// sshd does not accept one simply does not set it).
fn passed_to_target(name: &str) -> bool {
    name == "LANG" || name.starts_with("LC_") || name == GIT_PROTOCOL
}

/// What git sets for protocol v2; passed to the target like the locale.
pub const GIT_PROTOCOL: &str = "GIT_PROTOCOL";

/// What to run on the target.
pub enum Run {
    Shell,
    Exec(String),
}

/// The one message for "no such asset" and "not permitted" alike.
pub fn no_access(asset: &str) -> String {
    format!(
        "rampart: {asset}: no such asset, or you may not use it (see `ssh bastion` for your list)"
    )
}

/// Picks the account when the person did not name one: the only stored
/// account granted, else a message listing the choices.
pub fn pick_account(shared: &Shared, conn: &Conn, asset: &str) -> Result<String, String> {
    let now = shared.services.clock.now();
    let Some(visible) = shared.policy().visible_asset(&conn.identity, asset, now) else {
        return Err(no_access(asset));
    };
    let accounts: Vec<String> = visible
        .accounts()
        .map(|a| a.username().to_string())
        .collect();
    match accounts.as_slice() {
        [one] => Ok(one.clone()),
        [] if visible.input_allowed() => Err(format!(
            "rampart: {asset} needs a typed-in account: log in with `ssh -t bastion` and pick it in the menu"
        )),
        [] => Err(no_access(asset)),
        many => Err(format!(
            "rampart: {asset} has several accounts you may use ({}): name one, e.g. `{}@{asset}`",
            many.join(", "),
            many[0]
        )),
    }
}

/// How a target session ended, for the caller.
#[derive(Debug, Clone, Copy)]
pub struct Ended {
    /// The person's channel is still open (so a menu can come back).
    pub client_open: bool,
    /// What the person's client exits with: the target's status, or
    /// [`EXIT_BASTION`] when the bastion refused or ended the session, or
    /// the target ended without a status (a signal, a dropped connection).
    pub exit_status: u32,
    /// The terminal size the person had at the end.
    pub size: Option<(u32, u32)>,
}

impl Ended {
    pub(super) fn refused() -> Ended {
        Ended {
            client_open: true,
            exit_status: EXIT_BASTION,
            size: None,
        }
    }

    /// What the menu needs: whether to come back, and at which size.
    pub fn into_menu(self) -> (bool, Option<(u32, u32)>) {
        (self.client_open, self.size)
    }
}

/// Lines from the bastion to the person, on standard error (`\r\n` on a
/// terminal).
#[derive(Clone, Copy)]
pub(super) struct Say<'a> {
    pub(super) write: &'a ChannelWriteHalf<ServerMsg>,
    pub(super) pty: bool,
}

impl Say<'_> {
    pub(super) async fn line(self, text: impl Into<String>) {
        let text = text.into();
        let line = if self.pty {
            format!("{text}\r\n")
        } else {
            format!("{text}\n")
        };
        let _ = self.write.extended_data_bytes(1, Bytes::from(line)).await;
    }

    /// A refusal: the person told, and a refusal row in the audit log.
    pub(super) async fn refused(self, shared: &Shared, conn: &Conn, request: &str, text: String) {
        self.line(text.clone()).await;
        super::refuse_log(shared, conn, request, &text).await;
    }
}

/// A session the person may open: its grant, the actions it runs under
/// (rechecked while it runs), and its place under the person's cap.
pub(super) struct Admitted<'a> {
    pub(super) grant: Grant,
    pub(super) actions: Vec<Action>,
    transfer: Option<ExecTransfer>,
    _slot: UserSlot<'a>,
}

/// The target's end of a session, connected and with its channel set up.
struct Target {
    upstream: upstream::Upstream,
    read: ChannelReadHalf,
    write: ChannelWriteHalf<russh::client::Msg>,
}

/// Runs a session on a target, whatever way it ends.
pub async fn run_session(
    shared: &Arc<Shared>,
    conn: &Conn,
    choice: Choice,
    run: Run,
    person: &mut PersonChannel<'_>,
) -> Ended {
    let say = Say {
        write: person.write,
        pty: person.pty.is_some(),
    };
    let Choice {
        asset,
        account,
        input_password,
        protocol: _,
    } = choice;
    let Some(admitted) = admit(shared, conn, &asset, account, &run, "ssh", person, say).await
    else {
        return Ended::refused();
    };
    // Admitted (after any approval wait): from here on, the bastion's own
    // time to get the session going.
    let admitted_at = std::time::Instant::now();
    let Some(target) = open_target(
        shared,
        conn,
        &admitted.grant,
        input_password,
        &run,
        person,
        say,
    )
    .await
    else {
        return Ended::refused();
    };
    run_on_target(
        shared,
        conn,
        &admitted,
        admitted_at,
        target,
        &run,
        person,
        say,
    )
    .await
}

/// Whether the person may open this session: the account, the grant for
/// every action it needs, a terminal where filters apply, a place under
/// the cap, and an administrator's approval where the permission asks for
/// one. `None`: refused, the person told why.
#[allow(clippy::too_many_arguments)]
pub(super) async fn admit<'s>(
    shared: &'s Shared,
    conn: &Conn,
    asset: &str,
    account: Option<String>,
    run: &Run,
    protocol: &str,
    person: &mut PersonChannel<'_>,
    say: Say<'_>,
) -> Option<Admitted<'s>> {
    let services = &shared.services;
    let account = match account.map_or_else(|| pick_account(shared, conn, asset), Ok) {
        Ok(account) => account,
        Err(line) => {
            say.line(line).await;
            return None;
        }
    };
    let policy = shared.policy();
    // scp and rsync move files: they need upload/download (and delete for
    // rsync --delete), not connect.
    let transfer = match run {
        Run::Exec(command) => ExecTransfer::classify(command),
        Run::Shell => None,
    };
    let actions = transfer
        .as_ref()
        .map_or_else(|| vec![Action::Connect], ExecTransfer::actions);
    let now = services.clock.now();
    let grant = match session::authorize(
        &policy,
        &conn.identity,
        asset,
        &account,
        protocol,
        &actions,
        now,
    ) {
        Ok(grant) => grant,
        Err(session::Denied::NoAccess) => {
            say.line(no_access(asset)).await;
            return None;
        }
        Err(session::Denied::NotPermitted(action)) => {
            let text = format!("rampart: {asset}: {action} is not permitted to you there");
            say.refused(shared, conn, &format!("exec on {asset}"), text)
                .await;
            return None;
        }
    };

    // A shell without a terminal reads its commands from a stream no
    // filter can split into lines as the shell will: where a deny or review
    // rule applies, it is refused rather than run unfiltered.
    if matches!(run, Run::Shell) && person.pty.is_none() && policy.grant_is_guarded(&grant) {
        let text = format!(
            "rampart: {asset}: command filters apply to you there, and a shell without a terminal cannot be filtered: use `ssh -t`, or run one command (`ssh bastion {asset} COMMAND`)",
        );
        say.refused(shared, conn, &format!("shell on {asset}"), text)
            .await;
        return None;
    }

    // One person's sessions are capped: each is a target connection, a
    // recording and a live entry.
    let max = services.config.ssh.max_sessions_per_user;
    let Some(slot) = shared.user_sessions.take(grant.user_id(), max) else {
        let text = format!(
            "rampart: {asset}: you have {max} sessions open, the most one person may have (ssh.max_sessions_per_user); end one first",
        );
        say.refused(shared, conn, &format!("connect {asset}"), text)
            .await;
        return None;
    };

    if let Some(permission) = grant.approval() {
        let what = match run {
            Run::Shell => "connect (interactive)".to_string(),
            Run::Exec(command) => format!("connect to run: {command}"),
        };
        approved(shared, conn, &grant, permission, what, person, say).await?;
    }
    Some(Admitted {
        grant,
        actions,
        transfer,
        _slot: slot,
    })
}

/// A permission with --require-approval: an administrator says yes first
/// (to `what`, as the approvers see it), while the person may withdraw
/// with Ctrl-C. The approver, or `None`: refused, the person told why.
#[allow(clippy::too_many_arguments)]
pub(super) async fn approved(
    shared: &Shared,
    conn: &Conn,
    grant: &Grant,
    permission: &str,
    what: String,
    person: &mut PersonChannel<'_>,
    say: Say<'_>,
) -> Option<String> {
    say.line(format!(
        "rampart: {}: access through permission {permission} needs an administrator's approval; waiting... Ctrl-C withdraws",
        grant.asset_name()
    ))
    .await;
    let pending = shared.live.ask(crate::live::ApprovalRequest {
        id: 0,
        session: String::new(),
        user: grant.user_name().to_string(),
        asset: grant.asset_name().to_string(),
        account: grant.account().username().to_string(),
        command: what,
        rule: permission.to_string(),
        asked_at: shared.services.clock.now(),
    });
    let timeout = shared.services.config.auth.approval_timeout;
    // Nothing else is expected before the session starts; what came is
    // not replayed.
    let mut ignored = std::collections::VecDeque::new();
    let held = tokio::select! {
        held = relay::await_decision(pending, timeout, &mut *person.read, &mut ignored) => held,
        () = shared.shutdown.cancelled() => session::Held::ClientGone,
    };
    let line = held.notice(timeout);
    match held {
        session::Held::Approved { by } => {
            say.line(format!("rampart: {line}")).await;
            Some(by)
        }
        session::Held::ClientGone => None,
        _ => {
            let text = format!("rampart: {}: {line}", grant.asset_name());
            say.refused(
                shared,
                conn,
                &format!("connect to {}", grant.asset_name()),
                text,
            )
            .await;
            None
        }
    }
}

/// For an exec, the filters' verdict on the command first; then connects
/// the target and sets up its channel with the person's locale and
/// terminal. `None`: refused, the person told why.
async fn open_target(
    shared: &Shared,
    conn: &Conn,
    grant: &Grant,
    input_password: Option<Secret<String>>,
    run: &Run,
    person: &PersonChannel<'_>,
    say: Say<'_>,
) -> Option<Target> {
    // An exec'd command is checked against the filters before anything
    // else: a refused one never makes the bastion log in to the target.
    if let Run::Exec(command) = run {
        let verdict = shared.policy().check_grant_command(grant, command);
        if matches!(verdict.action, FilterAction::Deny | FilterAction::Review) {
            // Refused before any session opened: a row of its own.
            relay::log_exec_command(
                &shared.services,
                &session::Rows::of_grant(&new_id(), grant),
                command,
                String::new(),
                verdict.action,
                verdict.rule.clone(),
            )
            .await;
            say.line(format!(
                "rampart: command refused by rule {}",
                verdict.rule.as_deref().unwrap_or("?")
            ))
            .await;
            return None;
        }
    }
    let connecting = std::time::Instant::now();
    let upstream = match connect_target(shared, conn, grant, input_password).await {
        Ok(u) => {
            shared
                .services
                .metrics
                .target_connected(connecting.elapsed());
            u
        }
        Err(line) => {
            say.line(format!("rampart: {line}")).await;
            return None;
        }
    };
    let channel = match upstream.open_session().await {
        Ok(ch) => ch,
        Err(e) => {
            say.line(format!(
                "rampart: {}: cannot open a session: {e}",
                grant.asset_name()
            ))
            .await;
            upstream.disconnect().await;
            return None;
        }
    };
    let (read, write) = channel.split();
    for (name, value) in person.env.iter().filter(|(n, _)| passed_to_target(n)) {
        let _ = write.set_env(false, name.as_str(), value.as_str()).await;
    }
    if let Some(p) = person.pty {
        let _ = write
            .request_pty(false, &p.term, p.cols, p.rows, 0, 0, &p.modes)
            .await;
    }
    Some(Target {
        upstream,
        read,
        write,
    })
}

/// What the session row and the recording say about a session.
pub(super) fn spec(conn: &Conn, grant: &Grant, run: &Run, pty: Option<&Pty>) -> session::Spec {
    let username = grant.account().username().to_string();
    let (cols, rows) = pty
        .map(|p| relay::terminal_size(p.cols, p.rows))
        .unwrap_or((relay::DEFAULT_COLS, relay::DEFAULT_ROWS));
    let (kind, recorded_kind, command) = match run {
        Run::Shell => ("shell", SessionKind::Shell, None),
        Run::Exec(c) => ("exec", SessionKind::Exec, Some(c.clone())),
    };
    session::Spec {
        recording: Some(session::Recording {
            kind: recorded_kind,
            cols: cols as u16,
            rows: rows as u16,
            term: pty.map(|p| p.term.clone()),
            title: Some(format!("{}@{}", username, grant.asset_name())),
            command,
        }),
        ..session::Spec::of_grant(grant, &grant.protocol().name, kind, conn.peer.ip())
    }
}

/// The session itself, on a connected target: opened (row, recording,
/// live entry), started, pumped, and ended whatever ended it.
#[allow(clippy::too_many_arguments)]
async fn run_on_target(
    shared: &Arc<Shared>,
    conn: &Conn,
    admitted: &Admitted<'_>,
    admitted_at: std::time::Instant,
    mut target: Target,
    run: &Run,
    person: &mut PersonChannel<'_>,
    say: Say<'_>,
) -> Ended {
    let services = &shared.services;
    let grant = &admitted.grant;
    let spec = spec(conn, grant, run, person.pty);
    let mut session = match Session::open(services, &shared.live, spec).await {
        Ok(session) => session,
        Err(refused) => {
            say.line(format!("rampart: {refused}")).await;
            target.upstream.disconnect().await;
            return Ended::refused();
        }
    };
    if session.unrecorded() {
        // `on_failure = allow`: the session runs, audited but not
        // recorded, and the person is told.
        say.line("rampart: warning: this session is not recorded (the recording cannot be written); it is still audited").await;
    }
    let rows = session.rows().clone();

    let started = match run {
        Run::Shell => target.write.request_shell(true).await,
        Run::Exec(c) => target.write.exec(true, c.as_bytes().to_vec()).await,
    };
    let outcome = if let Err(e) = started {
        say.line(format!("rampart: {}: {e}", grant.asset_name()))
            .await;
        relay::Outcome {
            reason: EndReason::Error(e.to_string()),
            exit_status: Some(1),
            bytes_in: 0,
            bytes_out: 0,
            client_open: true,
            size: None,
        }
    } else {
        services.metrics.channel_opened(admitted_at.elapsed());
        let outcome = pump_session(
            shared,
            person,
            admitted,
            &mut session,
            &mut target,
            &conn.arrival,
        )
        .await;
        // A session with no output: the login is done now.
        conn.arrival.done();
        outcome
    };
    // Out of the live list first, then the target goes; the recording is
    // finished (the exec'd command is logged with its first output).
    let closing = session.finish_recording().await;
    let _ = target.write.close().await;
    target.upstream.disconnect().await;
    let exec = match run {
        Run::Exec(command) => Some((&rows, command.as_str())),
        Run::Shell => None,
    };
    conclude(services, closing, outcome, say, exec).await
}

/// The end of a session whose recording is finished and whose target is
/// gone, whatever the protocol: the person told if the recording failed,
/// an exec'd command logged with its first output, the session row closed
/// (chain entry), and the exit status the person's client gets.
pub(super) async fn conclude(
    services: &crate::services::Services,
    closing: session::Closing,
    outcome: relay::Outcome,
    say: Say<'_>,
    exec: Option<(&session::Rows, &str)>,
) -> Ended {
    if matches!(outcome.reason, EndReason::RecordingFailed(_)) && outcome.client_open {
        // On a terminal, below whatever the target printed last.
        let start = if say.pty { "\r\n" } else { "" };
        say.line(format!(
            "{start}rampart: the session was ended because it can no longer be recorded; tell an admin"
        ))
        .await;
    }
    if let Some((rows, command)) = exec {
        relay::log_exec_command(
            services,
            rows,
            command,
            closing.recorded().first_output.clone(),
            FilterAction::Allow,
            None,
        )
        .await;
    }
    closing
        .end(
            services,
            session::Outcome {
                reason: outcome.reason.as_str(),
                failed: matches!(
                    outcome.reason,
                    EndReason::Error(_) | EndReason::RecordingFailed(_)
                ),
                exit_status: outcome.exit_status,
                bytes_in: outcome.bytes_in,
                bytes_out: outcome.bytes_out,
            },
        )
        .await;
    // A session the bastion ended, or one the target ended without a
    // status, is not the command's success: the person's client exits 255.
    let exit_status = match outcome.exit_status {
        Some(status) if !outcome.reason.by_bastion() => status,
        _ => EXIT_BASTION,
    };
    Ended {
        client_open: outcome.client_open,
        exit_status,
        size: outcome.size,
    }
}

/// Pumps bytes between the person and the target until either ends (the
/// relay: filters, tracker, recorder, live entry).
async fn pump_session(
    shared: &Arc<Shared>,
    person: &mut PersonChannel<'_>,
    admitted: &Admitted<'_>,
    session: &mut Session,
    target: &mut Target,
    arrival: &crate::live::arrivals::Arrival,
) -> relay::Outcome {
    let grant = &admitted.grant;
    let services = &shared.services;
    // Every session with a terminal has its typed lines checked and
    // logged: an exec with a pty may be a shell (`ssh -t bastion web1
    // bash`), and legacy SCP never asks for one.
    let tracker = person.pty.map(|p| {
        let (cols, rows) = relay::terminal_size(p.cols, p.rows);
        CommandTracker::new(cols as u16, rows as u16)
    });
    let shared2 = shared.clone();
    let policy_fn = move || shared2.policy();
    let rows = session.rows().clone();
    let scp = match &admitted.transfer {
        Some(ExecTransfer::Scp(c)) => Some(super::scp::ScpTap::new(c, services, rows.clone())),
        _ => None,
    };
    let (recorder, live) = session.recorder_and_live();
    let outcome = relay::pump(
        person.read,
        person.write,
        person.handle,
        person.id,
        &mut target.read,
        &target.write,
        Hooks {
            services,
            policy: &policy_fn,
            grant,
            rows: &rows,
            recorder,
            // Interactive sessions (a terminal) track commands.
            terminal: tracker.is_some(),
            tracker,
            live,
            shutdown: &shared.shutdown,
            idle_timeout: services.config.ssh.idle_timeout,
            recording_optional: services.config.recording.on_failure
                == crate::config::OnFailure::Allow,
            end: person.end,
            actions: &admitted.actions,
            tap: scp.as_ref().map(|t| t as &dyn relay::StreamTap),
            record_stdout: scp.is_none(),
            arrival: Some(arrival),
        },
    )
    .await;
    if let Some(tap) = &scp {
        tap.finish().await;
    }
    outcome
}

/// Connects the target of `grant` and authenticates as its account, with
/// the account's sealed secret or, for `@INPUT`, the password the person
/// typed. The pinned host keys are read first and a store that cannot be
/// read refuses the connection: it must never turn a pinned asset into
/// trust-on-first-use, sending the credential to whoever answers. A key
/// presented where none is pinned is pinned, never over one pinned since.
/// `Err` is the line for the person (refusal rows are written here).
pub(super) async fn connect_target(
    shared: &Shared,
    conn: &Conn,
    grant: &Grant,
    typed: Option<Secret<String>>,
) -> Result<upstream::Upstream, String> {
    let services = &shared.services;
    let asset = grant.asset_name();
    let secret = target_secret(shared, grant, typed).await?;
    let pins = async {
        let mut c = services.store.conn().await?;
        store::assets::host_keys(&mut c, grant.asset_id()).await
    };
    let pinned = match pins.await {
        Ok(pinned) => pinned,
        Err(e) => {
            tracing::error!("cannot read the pinned host keys of {asset}: {e}");
            let text = format!(
                "{asset}: its pinned host key cannot be read now, so it is not connected; try again, or tell an admin"
            );
            super::refuse_log(shared, conn, &format!("connect {asset}"), &text).await;
            return Err(text);
        }
    };
    let upstream = upstream::connect_ssh(
        grant,
        secret,
        services.vault.as_ref(),
        pinned.clone(),
        &shared.upstream,
    )
    .await;
    let upstream = match upstream {
        Ok(u) => u,
        Err(e) => {
            let text = e.to_string();
            if matches!(
                e,
                upstream::UpstreamError::HostKeyChanged { .. }
                    | upstream::UpstreamError::NotThisAccount
            ) {
                super::refuse_log(shared, conn, &format!("connect {asset}"), &text).await;
            }
            return Err(text);
        }
    };
    if pinned.is_empty()
        && let Err(text) = pin_first_key(shared, grant, &upstream).await
    {
        upstream.disconnect().await;
        super::refuse_log(shared, conn, &format!("connect {asset}"), &text).await;
        return Err(text);
    }
    Ok(upstream)
}

/// The secret to reach `grant`'s account with: its sealed secret from the
/// store, or for `@INPUT` the password the person typed. `Err` is the
/// line for the person.
pub(super) async fn target_secret(
    shared: &Shared,
    grant: &Grant,
    typed: Option<Secret<String>>,
) -> Result<TargetSecret, String> {
    let services = &shared.services;
    let asset = grant.asset_name();
    Ok(match grant.account() {
        GrantAccount::Stored { account_id, .. } => {
            let read = async {
                let mut c = services.store.conn().await?;
                store::accounts::secret(&mut c, account_id).await
            };
            match read.await {
                Ok((kind, sealed)) => TargetSecret::Stored {
                    account_id: account_id.clone(),
                    kind,
                    sealed,
                },
                Err(e) => {
                    tracing::error!("cannot read the secret of an account of {asset}: {e}");
                    return Err(format!(
                        "{asset}: the account's secret cannot be read now; try again, or tell an admin"
                    ));
                }
            }
        }
        GrantAccount::Input { .. } => match typed {
            Some(password) => TargetSecret::Typed(password),
            None => {
                return Err(format!(
                    "{asset}: this account needs a password typed in the menu"
                ));
            }
        },
    })
}

/// Pins the key a target presented on its first connection, with an audit
/// row saying so. A key of the same kind pinned meanwhile (another session
/// won the race) is kept; if it is not the presented one, the connection is
/// refused like any changed key.
async fn pin_first_key(
    shared: &Shared,
    grant: &Grant,
    upstream: &upstream::Upstream,
) -> Result<(), String> {
    let (Some(key), Some(line)) = (&upstream.presented_key, &upstream.presented_key_line) else {
        return Ok(());
    };
    let services = &shared.services;
    let now = services.clock.now();
    let result = async {
        let mut tx = services.store.begin().await?;
        let pinned = store::assets::pin_first_host_key(&mut tx, grant.asset_id(), &key.algorithm, &key.fingerprint, line, now).await?;
        if pinned {
            audit::record(
                &mut tx,
                &AuditEvent::Operation {
                    actor: "rampart".into(),
                    actor_role: crate::model::Role::Admin,
                    via: audit::Via::Ssh,
                    verb: "asset.pin-host-key".into(),
                    object: format!("asset {}", grant.asset_name()),
                    before: None,
                    after: Some(serde_json::json!({ "algorithm": key.algorithm, "fingerprint": key.fingerprint, "first_use_by": grant.user_name() })),
                },
                now,
            )
            .await?;
        }
        let now_pinned = store::assets::host_keys(&mut tx, grant.asset_id()).await?;
        services.store.commit(tx).await?;
        Ok::<_, store::StoreError>(now_pinned)
    }
    .await;
    match result {
        Ok(keys) if keys.iter().any(|k| k.fingerprint == key.fingerprint) => Ok(()),
        Ok(keys) => Err(upstream::UpstreamError::HostKeyChanged {
            asset: grant.asset_name().to_string(),
            presented: key.fingerprint.clone(),
            pinned: keys
                .iter()
                .map(|k| k.fingerprint.clone())
                .collect::<Vec<_>>()
                .join(", "),
        }
        .to_string()),
        Err(e) => {
            // Not pinned, so not trusted: this connection does not go on.
            tracing::error!("cannot pin the host key of {}: {e}", grant.asset_name());
            Err(format!(
                "{}: its first host key cannot be pinned now, so it is not connected; try again, or tell an admin",
                grant.asset_name()
            ))
        }
    }
}
