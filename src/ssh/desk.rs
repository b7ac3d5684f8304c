//! The staff desk's side of the session task: loading what the desk shows
//! and running what it asks for, through `ops` with the person's identity
//! (so role checks and operation-log rows are those of the CLI), and the
//! monitor/join screen that takes over the channel while someone watches a
//! live session.
//!
//! The desk holds the [`Caller`] it opened with, but every load and change
//! runs as the caller the store knows now ([`Ops::recheck`]): a person
//! disabled or demoted while their desk is open is refused with that
//! line, and their monitor ends, saying why.
//!
//! [`Ops::recheck`]: crate::ops::Ops::recheck

use std::time::Duration;

use bytes::Bytes;
use russh::server::Msg;
use russh::{ChannelMsg, ChannelReadHalf, ChannelWriteHalf};

use super::{Conn, Shared};
use crate::audit::Via;
use crate::live::{Frame, MonitorEvent};
use crate::ops::{
    AccountEdit, AssetTest, Caller, HostKeyStatus, OpsError, UserEdit, UserSpec, UserView,
};
use crate::record::PlayerOptions;
use crate::store::audit_log::Query;
use crate::tui::desk::{Data, History, Names, Op, OpDone, ReachQuery, Tab, TestReport};
use crate::tui::{InputParser, Replay, Screen, Theme, Watch, watch};

/// Rows loaded for a history list; the filter narrows within them.
const HISTORY_ROWS: i64 = 1000;
/// How long a monitor waits for the relay to answer with its screen.
const SNAPSHOT_WAIT: Duration = Duration::from_secs(2);
/// How far past a logged moment the replay opens.
const REPLAY_AFTER: f64 = 0.1;
/// Output is drawn at most this often while it streams.
const REDRAW: Duration = Duration::from_millis(40);

/// The caller the desk opened with; each action rechecks it (see
/// [`current`]).
pub(super) fn caller(conn: &Conn) -> Caller {
    Caller {
        name: conn.identity.name.clone(),
        role: conn.identity.role,
        via: Via::Console,
    }
}

/// `caller` as the store knows them now, or the line saying why they may
/// no longer act.
async fn current(shared: &Shared, caller: &Caller) -> Result<Caller, String> {
    shared
        .services
        .ops
        .recheck(caller)
        .await
        .map_err(|e| e.to_string())
}

/// The rows of `tab`, or the one line saying why not.
pub(super) async fn fetch(
    shared: &Shared,
    caller: &Caller,
    tab: Tab,
    reach: Option<&ReachQuery>,
    seen: Option<&str>,
    history: &History,
) -> Result<Data, String> {
    let caller = &current(shared, caller).await?;
    let ops = &shared.services.ops;
    let q = Query {
        user: history.user.clone(),
        asset: history.asset.clone(),
        since: history.since,
        until: history.until,
        limit: Some(HISTORY_ROWS),
    };
    let data = match tab {
        Tab::Dashboard => ops
            .audit_dashboard(caller)
            .await
            .map(|d| Data::Dashboard(Box::new(d))),
        Tab::Live => ops.live_list(caller, &shared.live).await.map(Data::Live),
        Tab::Sessions => ops
            .session_list(caller, &q, false)
            .await
            .map(Data::Sessions),
        Tab::Commands => ops.audit_commands(caller, &q).await.map(Data::Commands),
        Tab::Transfers => ops.audit_transfers(caller, &q).await.map(Data::Transfers),
        Tab::Logins => ops.audit_logins(caller, &q).await.map(Data::Logins),
        Tab::Operations => ops.audit_operations(caller, &q).await.map(Data::Operations),
        Tab::Seen => match seen {
            None => Ok(Data::Seen(String::new(), Box::default())),
            Some(text) => ops
                .audit_screen(
                    caller,
                    &shared.services.recordings,
                    text,
                    HISTORY_ROWS as usize,
                )
                .await
                .map(|found| Data::Seen(text.to_string(), Box::new(found))),
        },
        Tab::Users => ops.user_list(caller).await.map(Data::Users),
        Tab::Groups => ops.group_list(caller).await.map(Data::Groups),
        Tab::Nodes => ops.node_list(caller).await.map(Data::Nodes),
        Tab::Assets => ops.asset_list(caller).await.map(Data::Assets),
        Tab::Accounts => ops.account_list(caller, None).await.map(Data::Accounts),
        Tab::Permissions => ops.perm_list(caller).await.map(Data::Permissions),
        Tab::Filters => ops.filter_list(caller).await.map(Data::Filters),
        Tab::Acls => ops.acl_list(caller).await.map(Data::Acls),
        Tab::Reach => match reach {
            None => Ok(Data::Reach("Reach".into(), Vec::new())),
            Some(ReachQuery::Who(asset)) => ops
                .perm_who(caller, asset)
                .await
                .map(|r| Data::Reach(format!("Who can reach {asset}"), r)),
            Some(ReachQuery::What(user)) => ops
                .perm_what(caller, user)
                .await
                .map(|r| Data::Reach(format!("What {user} can reach"), r)),
        },
    };
    data.map_err(|e| e.to_string())
}

/// The names a new permission may bind.
pub(super) async fn names(shared: &Shared, caller: &Caller) -> Result<Names, String> {
    let caller = &current(shared, caller).await?;
    let ops = &shared.services.ops;
    let names = async {
        Ok::<_, OpsError>(Names {
            users: ops
                .user_list(caller)
                .await?
                .into_iter()
                .map(|u| u.name)
                .collect(),
            groups: ops
                .group_list(caller)
                .await?
                .into_iter()
                .map(|g| g.name)
                .collect(),
            assets: ops
                .asset_list(caller)
                .await?
                .into_iter()
                .map(|a| a.name)
                .collect(),
            nodes: ops
                .node_list(caller)
                .await?
                .into_iter()
                .map(|n| n.path)
                .collect(),
        })
    };
    names.await.map_err(|e| e.to_string())
}

/// A user with groups and keys, for its edit form or its keys box, and
/// the names the form may bind.
pub(super) async fn user(
    shared: &Shared,
    caller: &Caller,
    name: &str,
) -> Result<(UserView, Names), String> {
    let caller = &current(shared, caller).await?;
    let view = shared
        .services
        .ops
        .user_show(caller, name)
        .await
        .map_err(|e| e.to_string())?;
    Ok((view, names(shared, caller).await?))
}

/// Runs one change the desk asked for, as the caller the store knows now.
/// Each kind of change goes to the function for what it changes.
pub(super) async fn run_op(shared: &Shared, caller: &Caller, op: Op) -> Result<OpDone, String> {
    let caller = &current(shared, caller).await?;
    let done = match op {
        Op::Kill { .. } | Op::ForceLogout { .. } | Op::Decide { .. } => {
            live_op(shared, caller, op).await
        }
        Op::UserAdd(_)
        | Op::UserEdit(_)
        | Op::UserPasswd { .. }
        | Op::UserSetActive { .. }
        | Op::UserUnlock { .. }
        | Op::UserMfaReset { .. }
        | Op::KeyAdd { .. }
        | Op::KeyRemove { .. } => user_op(shared, caller, op).await,
        Op::GroupAdd { .. } | Op::Members { .. } | Op::NodeAdd { .. } | Op::NodeMove { .. } => {
            tree_op(shared, caller, op).await
        }
        Op::AssetAdd(_)
        | Op::AssetEdit { .. }
        | Op::AssetTest { .. }
        | Op::AssetTrust { .. }
        | Op::AccountAdd { .. }
        | Op::AccountEdit { .. } => asset_op(shared, caller, op).await,
        Op::PermAdd(_)
        | Op::PermEdit { .. }
        | Op::FilterAdd(_)
        | Op::FilterEdit { .. }
        | Op::AclAdd(_)
        | Op::AclEdit { .. } => rule_op(shared, caller, op).await,
        Op::Remove { what, name } => remove(shared, caller, what, &name).await,
    };
    if let Ok(done) = &done {
        tracing::info!(user = %caller.name, "console: {}", done.message);
    }
    done.map_err(|e| e.to_string())
}

/// An op handed to a function that does not run its kind: [`run_op`]
/// routes every kind to one, so this is a bug, and the change is refused.
fn misrouted() -> OpsError {
    OpsError::Invalid("the console cannot run this change".into())
}

/// Changes to running sessions: kill, force logout, approval decisions.
async fn live_op(shared: &Shared, caller: &Caller, op: Op) -> Result<OpDone, OpsError> {
    let ops = &shared.services.ops;
    let said = OpDone::said;
    match op {
        Op::Kill { session, reason } => ops
            .live_kill(caller, &shared.live, &session, &reason)
            .await
            .map(|()| said("the session is ending; its person sees your reason".into())),
        Op::ForceLogout { user, reason } => ops
            .live_kill_user(caller, &shared.live, &user, &reason)
            .await
            .map(|n| said(format!("ended {n} session(s) of {user}"))),
        Op::Decide { id, approve } => ops
            .approval_decide(caller, &shared.live, id, approve)
            .await
            .map(|r| {
                let verb = if approve { "approved" } else { "denied" };
                said(format!("{verb}: {} on {}: {}", r.user, r.asset, r.command))
            }),
        _ => Err(misrouted()),
    }
}

/// Changes to users: add, edit, keys, enable/disable, unlock, MFA reset,
/// a new one-time password.
async fn user_op(shared: &Shared, caller: &Caller, op: Op) -> Result<OpDone, OpsError> {
    let ops = &shared.services.ops;
    let said = OpDone::said;
    match op {
        Op::UserAdd(new) => {
            let spec = UserSpec {
                name: new.name.clone(),
                role: Some(new.role),
                email: new.email,
                password: None,
                keys: Vec::new(),
                groups: new.groups,
                expires_at: new.expires_at,
            };
            ops.user_add(caller, spec).await.map(|added| OpDone {
                message: format!("user {} added", new.name),
                secret: added.one_time_password,
                test: None,
            })
        }
        Op::UserEdit(user) => ops
            .user_edit(
                caller,
                &user.name,
                UserEdit {
                    role: Some(user.role),
                    email: Some(user.email),
                    expires_at: Some(user.expires_at),
                    groups: Some(user.groups),
                },
            )
            .await
            .map(|u| said(format!("{} saved ({})", u.name, u.role))),
        Op::KeyAdd { user, line } => ops
            .user_key_add(caller, &user, &line)
            .await
            .map(|k| said(format!("key {} added to {user}", k.fingerprint))),
        Op::KeyRemove { user, fingerprint } => ops
            .user_key_remove(caller, &user, &fingerprint)
            .await
            .map(|()| said(format!("key {fingerprint} of {user} removed"))),
        Op::UserSetActive { name, active } => {
            ops.user_set_active(caller, &name, active).await.map(|_| {
                said(format!(
                    "{name} {}",
                    if active { "enabled" } else { "disabled" }
                ))
            })
        }
        Op::UserUnlock { name } => ops
            .user_unlock(caller, &name)
            .await
            .map(|_| said(format!("{name} unlocked"))),
        Op::UserMfaReset { name } => ops
            .user_mfa_reset(caller, &name)
            .await
            .map(|()| said(format!("{name} enrols MFA again at the next login"))),
        Op::UserPasswd { name } => ops
            .user_passwd(caller, &name, None)
            .await
            .map(|otp| OpDone {
                message: format!("new one-time password for {name}"),
                secret: otp,
                test: None,
            }),
        _ => Err(misrouted()),
    }
}

/// Changes to groups and the node tree.
async fn tree_op(shared: &Shared, caller: &Caller, op: Op) -> Result<OpDone, OpsError> {
    let ops = &shared.services.ops;
    let said = OpDone::said;
    match op {
        Op::GroupAdd { name } => ops
            .group_add(caller, &name)
            .await
            .map(|g| said(format!("group {} added", g.name))),
        Op::Members { group, users, add } => ops
            .group_members(caller, &group, &users, add)
            .await
            .map(|g| said(format!("group {}: {}", g.name, g.members.join(", ")))),
        Op::NodeAdd { path } => ops
            .node_add(caller, &path)
            .await
            .map(|n| said(format!("node {} added", n.path))),
        Op::NodeMove { from, to } => ops.node_move(caller, &from, &to).await.map(|moved| {
            let mut message = format!("node {from} moved to {}", moved.node.path);
            if !moved.created.is_empty() {
                message.push_str(&format!("; created {}", moved.created.join(", ")));
            }
            said(message)
        }),
        _ => Err(misrouted()),
    }
}

/// Changes to assets and their accounts, and the connection test.
async fn asset_op(shared: &Shared, caller: &Caller, op: Op) -> Result<OpDone, OpsError> {
    let ops = &shared.services.ops;
    let said = OpDone::said;
    match op {
        Op::AssetAdd(spec) => ops
            .asset_add(caller, *spec)
            .await
            .map(|a| said(format!("asset {} added", a.name))),
        Op::AssetEdit { name, spec } => ops
            .asset_edit(caller, &name, *spec)
            .await
            .map(|a| said(format!("asset {} saved", a.name))),
        Op::AssetTest { asset, account } => ops
            .asset_test(caller, &asset, account.as_deref())
            .await
            .map(test_report),
        Op::AssetTrust { asset, key } => {
            ops.asset_trust(caller, &asset, Some(&key))
                .await
                .map(|keys| {
                    let pinned: Vec<String> = keys.into_iter().map(|k| k.fingerprint).collect();
                    said(format!("{asset}: pinned {}", pinned.join(", ")))
                })
        }
        Op::AccountAdd {
            asset,
            username,
            secret,
            privileged,
        } => ops
            .account_add(caller, &asset, &username, secret, privileged)
            .await
            .map(|a| said(format!("account {}@{} added", a.username, a.asset))),
        Op::AccountEdit {
            asset,
            username,
            secret,
            privileged,
        } => ops
            .account_edit(
                caller,
                &asset,
                &username,
                AccountEdit {
                    secret,
                    privileged: Some(privileged),
                    web_login: None,
                },
            )
            .await
            .map(|a| said(format!("account {}@{} saved", a.username, a.asset))),
        _ => Err(misrouted()),
    }
}

/// Changes to permissions, command filters and login ACLs.
async fn rule_op(shared: &Shared, caller: &Caller, op: Op) -> Result<OpDone, OpsError> {
    let ops = &shared.services.ops;
    let said = OpDone::said;
    match op {
        Op::PermAdd(spec) => ops
            .perm_add(caller, *spec)
            .await
            .map(|p| said(format!("permission {} added", p.name))),
        Op::PermEdit { name, spec } => ops
            .perm_edit(caller, &name, *spec)
            .await
            .map(|p| said(format!("permission {} saved", p.name))),
        Op::FilterAdd(spec) => ops
            .filter_add(caller, *spec)
            .await
            .map(|f| said(format!("command filter {} added", f.name))),
        Op::FilterEdit { name, spec } => ops
            .filter_edit(caller, &name, *spec)
            .await
            .map(|f| said(format!("command filter {} saved", f.name))),
        Op::AclAdd(spec) => ops
            .acl_add(caller, *spec)
            .await
            .map(|a| said(format!("login ACL {} added", a.name))),
        Op::AclEdit { name, spec } => ops
            .acl_edit(caller, &name, *spec)
            .await
            .map(|a| said(format!("login ACL {} saved", a.name))),
        _ => Err(misrouted()),
    }
}

/// Removes the row `name` from the list `what`.
async fn remove(
    shared: &Shared,
    caller: &Caller,
    what: Tab,
    name: &str,
) -> Result<OpDone, OpsError> {
    let ops = &shared.services.ops;
    let done = match what {
        Tab::Users => ops.user_remove(caller, name).await,
        Tab::Groups => ops.group_remove(caller, name).await,
        Tab::Nodes => ops.node_remove(caller, name).await,
        Tab::Assets => ops.asset_remove(caller, name).await,
        Tab::Accounts => match name.split_once('/') {
            Some((asset, user)) => ops.account_remove(caller, asset, user).await,
            None => Err(OpsError::Invalid(format!("{name} is not ASSET/ACCOUNT"))),
        },
        Tab::Permissions => ops.perm_remove(caller, name).await,
        Tab::Filters => ops.filter_remove(caller, name).await,
        Tab::Acls => ops.acl_remove(caller, name).await,
        other => Err(OpsError::Invalid(format!(
            "nothing can be removed from the {} list",
            other.title()
        ))),
    };
    done.map(|()| OpDone::said(format!("{name} removed")))
}

/// What the desk shows of a connection test.
fn test_report(test: AssetTest) -> OpDone {
    let who = format!(
        "{}@{} ({}:{})",
        test.account, test.asset, test.address, test.port
    );
    let mut lines = vec![match &test.error {
        None => format!("ok: {who} authenticated in {} ms", test.elapsed_ms),
        Some(error) => format!("failed after {} ms: {error}", test.elapsed_ms),
    }];
    let mut untrusted_key = None;
    if let Some(key) = &test.host_key {
        lines.push(format!(
            "host key: {} {} ({})",
            key.algorithm,
            key.fingerprint,
            test.host_key_status.as_str().replace('_', " ")
        ));
        if matches!(
            test.host_key_status,
            HostKeyStatus::NotPinned | HostKeyStatus::Changed
        ) {
            lines.push("check the fingerprint on the target before trusting it".into());
            untrusted_key = Some(key.openssh.clone());
        }
    }
    if !test.pinned.is_empty() {
        lines.push(format!("pinned: {}", test.pinned.join(", ")));
    }
    let message = if test.ok {
        format!("{who}: connection works")
    } else {
        format!("{who}: connection failed")
    };
    OpDone {
        message,
        secret: None,
        test: Some(TestReport {
            asset: test.asset,
            ok: test.ok,
            lines,
            untrusted_key,
        }),
    }
}

/// Opens the recording of `session` for the replay screen, at `at` (a
/// command's or a screen line's moment) if given. Reading a recording is
/// audited, as from the CLI.
pub(super) async fn open_replay(
    shared: &Shared,
    caller: &Caller,
    session: &str,
    at: Option<jiff::Timestamp>,
) -> Result<Replay, String> {
    let caller = &current(shared, caller).await?;
    let services = &shared.services;
    let path = services
        .ops
        .session_recording(caller, session, "session.replay", &services.recordings)
        .await
        .map_err(|e| e.to_string())?;
    let offset = match at {
        None => None,
        Some(at) => {
            let mut conn = services.store.conn().await.map_err(|e| e.to_string())?;
            let row = crate::store::sessions::get(&mut conn, session)
                .await
                .map_err(|e| e.to_string())?;
            // A tenth of a second on: the moment is when the line or command
            // began (to the millisecond, on the session row's clock), and
            // the replay should show it, not the instant before.
            Some(at.duration_since(row.started_at).as_secs_f64().max(0.0) + REPLAY_AFTER)
        }
    };
    // Opening reads the header only; the rest comes in bounded steps.
    let options = PlayerOptions::default();
    let replay = match offset {
        Some(seconds) => Replay::open_at(&path, options, seconds),
        None => Replay::open(&path, options),
    };
    replay.map_err(|e| format!("cannot replay session {session}: {e}"))
}

/// The requests of a web visit (a session without a recording whose
/// protocol is the web's), one line each, for the audit view's Enter
/// where a terminal session replays; `None` for any other session.
pub(super) async fn request_list(
    shared: &Shared,
    caller: &Caller,
    session: &str,
) -> Option<(String, Vec<String>)> {
    let services = &shared.services;
    let row = {
        let mut conn = services.store.conn().await.ok()?;
        crate::store::sessions::get(&mut conn, session).await.ok()?
    };
    if !crate::ops::WEB_PROTOCOLS.contains(&row.protocol.as_str()) {
        return None;
    }
    let caller = current(shared, caller).await.ok()?;
    let shown = services
        .ops
        .audit_session_commands(&caller, session, REQUESTS_SHOWN)
        .await;
    let tz = services.config.auth.time_zone.clone();
    let lines = match shown {
        Ok(requests) if requests.is_empty() => vec!["no request was made".to_string()],
        Ok(requests) => requests
            .iter()
            .map(|r| {
                let summary = r.output.lines().next().unwrap_or(&r.command);
                let refused = if r.action == "deny" { "  REFUSED" } else { "" };
                format!(
                    "{} {summary}{refused}",
                    r.at.to_zoned(tz.clone()).strftime("%H:%M:%S")
                )
            })
            .collect(),
        Err(e) => vec![e.to_string()],
    };
    let title = format!(
        " {} on {} as {}: requests (first {REQUESTS_SHOWN}) ",
        row.user, row.asset, row.account
    );
    Some((title, lines))
}

/// A one-time link to a session's recording, as the audit view prints it.
pub(super) async fn recording_link(
    shared: &Shared,
    caller: &Caller,
    session: &str,
) -> Result<String, String> {
    let caller = current(shared, caller).await?;
    let link = shared
        .services
        .ops
        .recording_link(&caller, session)
        .await
        .map_err(|e| e.to_string())?;
    Ok(format!(
        "The recording of session {session}: open within 60 s, once, in a browser or asciinema-player:\n  {}\n",
        link.url.expose()
    ))
}

/// How many of a web visit's requests the audit view lists.
const REQUESTS_SHOWN: i64 = 500;

/// How a watch ended.
pub(super) enum Watched {
    /// Back to the desk.
    Back,
    /// The person's connection went, the bastion is stopping, or the
    /// person's access ended (they were told why).
    Gone,
}

/// Monitors (or joins) a live session until the watcher leaves, or their
/// own access ends (disabled, demoted...: the screen says why). Errors are
/// the one line to show on the desk.
#[allow(clippy::too_many_arguments)]
pub(super) async fn watch(
    shared: &Shared,
    conn: &Conn,
    session: &str,
    join: bool,
    screen: &mut Screen,
    theme: &Theme,
    read: &mut ChannelReadHalf,
    write: &ChannelWriteHalf<Msg>,
    graphics: &mut Option<crate::tui::graphics::Detection>,
) -> Result<Watched, String> {
    let ops = &shared.services.ops;
    let caller = ops
        .caller(&conn.identity, Via::Console)
        .await
        .map_err(|e| e.to_string())?;
    let mut presence = shared.attend(conn);
    let (mut monitor, joined) = if join {
        let (m, j) = ops
            .live_join(&caller, &shared.live, session)
            .await
            .map_err(|e| e.to_string())?;
        (m, Some(j))
    } else {
        let m = ops
            .live_monitor(&caller, &shared.live, session)
            .await
            .map_err(|e| e.to_string())?;
        (m, None)
    };
    let mut view = Watch::new(monitor.info(), join);
    let mut input = InputParser::new();
    if view.is_desktop() {
        view.set_graphics(super::graphics::ensure(graphics, read, write, &mut input, screen).await);
    }
    resync(&mut monitor, &mut view).await;
    let mut session_open = true;
    loop {
        let now = std::time::Instant::now();
        let bytes = screen.draw_picture(|f| view.render(f, theme), || view.picture(), now);
        if write.data_bytes(Bytes::from(bytes)).await.is_err() {
            return Ok(Watched::Gone);
        }
        // While output streams, draw at most every REDRAW; the first frame
        // after a quiet spell is drawn at once. A picture held back by the
        // pace is drawn when it is due.
        let mut next_draw = screen
            .picture_due(now)
            .map(|d| tokio::time::Instant::now() + d);
        loop {
            let redraw = async {
                match next_draw {
                    Some(at) => tokio::time::sleep_until(at).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                event = monitor.next(), if session_open => {
                    match event {
                        MonitorEvent::Frame(Frame::Output { bytes, .. }) => view.feed(&bytes),
                        MonitorEvent::Frame(Frame::Resize { cols, rows, .. }) => view.resize(cols, rows),
                        MonitorEvent::Lagged(_) => resync(&mut monitor, &mut view).await,
                        MonitorEvent::Screen(snap) => view.snapshot(snap.cols, snap.rows, &snap.contents),
                        MonitorEvent::Ended => {
                            session_open = false;
                            view.end("the session is over");
                            break;
                        }
                        MonitorEvent::Lost(why) => {
                            session_open = false;
                            view.end(&why);
                            break;
                        }
                    }
                    next_draw.get_or_insert_with(|| tokio::time::Instant::now() + REDRAW);
                }
                () = redraw => break,
                msg = read.wait() => match msg {
                    Some(ChannelMsg::Data { data }) => {
                        if let Some(joined) = joined.as_ref().filter(|_| !view.is_ended()) {
                            let leave = data.iter().position(|&b| b == watch::LEAVE_BYTE);
                            let typed = data.get(..leave.unwrap_or(data.len())).unwrap_or_default();
                            if !typed.is_empty() && joined.send(Bytes::copy_from_slice(typed)).await.is_err() {
                                view.end("the session is over");
                            }
                            if leave.is_some() {
                                return Ok(Watched::Back);
                            }
                        } else {
                            let keys = input.feed(&data);
                            if keys.iter().any(|k| view.leaves(k)) || data.last() == Some(&0x1b) {
                                return Ok(Watched::Back);
                            }
                        }
                    }
                    Some(ChannelMsg::WindowChange { col_width, row_height, .. }) => {
                        let (cols, rows) = crate::relay::terminal_size(col_width, row_height);
                        screen.resize(cols as u16, rows as u16);
                        break;
                    }
                    Some(ChannelMsg::Eof | ChannelMsg::Close) | None => return Ok(Watched::Gone),
                    Some(_) => {}
                },
                () = shared.shutdown.cancelled() => return Ok(Watched::Gone),
                reason = presence.withdrawn() => {
                    // Joined input stops with this function; the person
                    // sees the reason on their own screen, not the desk's.
                    let mut text = screen.leave();
                    text.extend_from_slice(
                        format!("{}\r\n", super::standing::ended_line(&reason)).as_bytes(),
                    );
                    let _ = write.data_bytes(Bytes::from(text)).await;
                    return Ok(Watched::Gone);
                }
            }
        }
    }
}

/// Redraws the mirror from the relay's current screen.
async fn resync(monitor: &mut crate::live::Monitor, view: &mut Watch) {
    if let Ok(Some(snap)) = tokio::time::timeout(SNAPSHOT_WAIT, monitor.screen()).await {
        view.snapshot(snap.cols, snap.rows, &snap.contents);
    }
}
