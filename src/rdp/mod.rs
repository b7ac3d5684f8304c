//! The RDP front door and relay (DESIGN.md module map: `rdp`).
//!
//! A person asks for a one-time ticket over SSH (`rampart rdp ticket
//! ASSET`, `ops::rdp`), then points mstsc or xfreerdp at `[rdp] listen` as
//! `PERSON#ASSET` with the ticket as password. A connection goes:
//!
//! 1. **Front** (`front.rs`): X.224 negotiation (NLA required: a client
//!    offering only TLS or RDP security gets `HYBRID_REQUIRED_BY_SERVER`),
//!    TLS with the front's certificate (`tls.rs`), CredSSP as the server.
//!    NTLM checks the password against the person's valid tickets for that
//!    asset; the login goes through the same [`Authenticator`] as SSH
//!    (locks, standing, login ACLs, the login log, a failure counted), and
//!    the ticket is redeemed, once, only then.
//! 2. **Authorisation**: the ticket's asset and account are authorised
//!    again now (`session::authorize`, protocol `rdp`, action `connect`)
//!    and take a place under the person's session cap.
//! 3. **Back** (`back.rs`): X.224, TLS and CredSSP as the client towards
//!    the target with the vaulted credential. The target's certificate is
//!    pinned on first use among the asset's host keys (algorithm
//!    `rdp-tls`, its SHA-256), and checked before the credential is sent;
//!    `asset trust ASSET` forgets it, as for SSH.
//! 4. **Session** (`session::Session`): row, recording, live entry, kill,
//!    revocation and shutdown exactly as for SSH; the recording is a
//!    desktop cast (`record`, kind `desktop`): every frame sent to the
//!    person, with its time, in the raw sidecar.
//! 5. **Relay** (`relay.rs`): frames both ways, the connection-sequence
//!    rewrites and the channel cuts described there.
//!
//! Tickets come from `rampart rdp ticket`, and from `ssh -t bastion
//! DESKTOP`, the menu and the account chooser (`ssh::desktop`); a person's
//! RDP password from `rampart me rdp-password`.
//!
//! Replay: `record::desktop` decodes the recording, `record::Player`
//! plays it in the audit view with seeking. Live: the relay publishes its
//! frames to monitors like a terminal's; a monitor's snapshot request is
//! answered with the target's Demand Active and a full redraw asked of
//! the target (`orders`), and `tui::watch` decodes the rest.
//!
//! Export: one picture (PNG), a GIF animation (`record::gif`) or an MP4
//! video through ffmpeg (`record::video`).
//!
//! Approvals: a permission with `--require-approval` gets a ticket only
//! after an administrator's yes, asked for over SSH (`ssh::desktop`); the
//! ticket carries the approver and `authorize` admits nothing else
//! through such a permission (not an RDP password).
//!
//! The recording also marks the person's keys and clicks (`input.rs`:
//! counts and places, never which keys).
//!
//! Not built yet (issue 17): checks of which RemoteApp program is
//! started, sixel/kitty pictures.
//!
//! [`Authenticator`]: crate::auth::login::Authenticator

mod back;
mod clipboard;
mod front;
mod input;
mod relay;
mod tls;
mod wire;

pub use back::Login;
pub use front::split_login;
pub use relay::{Allowed, Rewriter, Verdict};
pub use tls::Front;
pub use wire::pdu_size;

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};

use crate::audit::{self, AuditEvent};
use crate::live::Control;
use crate::model::Action;
use crate::policy::GrantAccount;
use crate::record::SessionKind;
use crate::services::StartError;
use crate::session::{self, Session, Spec};

/// What the RDP front shares with the rest of the server.
pub use crate::session::Context;

/// Binds `rdp.listen` and prepares the front's TLS (generating its
/// certificate on first start).
pub async fn bind(
    config: &crate::config::Config,
) -> Result<Option<(Vec<TcpListener>, Front)>, StartError> {
    if config.rdp.listen.is_empty() {
        return Ok(None);
    }
    let dir = config.data_dir();
    let front = tls::front(
        &dir.join(&config.rdp.certificate),
        &dir.join(&config.rdp.key),
    )?;
    let mut listeners = Vec::new();
    for addr in &config.rdp.listen {
        let l = TcpListener::bind(addr)
            .await
            .map_err(|e| StartError::Refused(format!("cannot listen on {addr} (rdp): {e}")))?;
        eprintln!("rampart: RDP front listening on {addr}");
        listeners.push(l);
    }
    Ok(Some((listeners, front)))
}

/// Accepts RDP connections until shutdown.
pub async fn serve(listener: TcpListener, shared: Arc<Context>, front: Front) {
    // RDP connections share `ssh.max_connections` as a cap of their own:
    // past it, clients wait in the kernel's backlog instead of costing a
    // TLS handshake and a task each.
    let max = shared.services.config.ssh.max_connections as usize;
    let permits = Arc::new(tokio::sync::Semaphore::new(max.max(1)));
    loop {
        let Ok(permit) = permits.clone().acquire_owned().await else {
            return;
        };
        let Some((stream, peer)) = session::accept(&listener, &shared.shutdown).await else {
            return;
        };
        let shared2 = shared.clone();
        let front = front.clone();
        shared.tracker.spawn(async move {
            let _permit = permit;
            connection(stream, peer, shared2, front).await;
        });
    }
}

async fn refuse(shared: &Context, user: &str, peer: SocketAddr, request: &str, reason: &str) {
    tracing::info!(target: "audit", user, %peer, request, reason, "rdp refused");
    let event = AuditEvent::Refusal {
        user_name: user.to_string(),
        source: peer.ip().to_string(),
        request: request.to_string(),
        reason: reason.to_string(),
    };
    audit::record_alone(&shared.services.store, shared.services.clock.now(), &event).await;
}

async fn connection(stream: TcpStream, peer: SocketAddr, shared: Arc<Context>, front: Front) {
    let Some(admitted) = login(&shared, stream, peer, &front).await else {
        return;
    };
    let Some(grant) = authorize(&shared, &admitted, peer).await else {
        return;
    };
    let request = format!("rdp {} as {}", grant.asset_name(), admitted.account);
    let max = shared.services.config.ssh.max_sessions_per_user;
    let Some(_slot) = shared.user_sessions.take(grant.user_id(), max) else {
        let why = format!("{max} sessions open already (ssh.max_sessions_per_user)");
        refuse(&shared, &admitted.identity.name, peer, &request, &why).await;
        return;
    };
    let (login, target) = match reach(&shared, &grant).await {
        Ok(reached) => reached,
        Err(why) => {
            refuse(&shared, &admitted.identity.name, peer, &request, &why).await;
            return;
        }
    };
    let Some(session) = open(&shared, &grant, peer).await else {
        return;
    };
    relay(&shared, &grant, &login, target, admitted.reader, session).await;
}

/// The front's side: an authenticated person and a redeemed ticket,
/// within the login timeout.
async fn login(
    shared: &Context,
    stream: TcpStream,
    peer: SocketAddr,
    front: &Front,
) -> Option<front::Admitted> {
    let deadline = shared.services.config.ssh.login_timeout;
    let admit = front::admit(
        stream,
        peer,
        &shared.services,
        &shared.authenticator,
        shared.policy(),
        front,
    );
    match tokio::time::timeout(deadline, admit).await {
        Ok(Ok(a)) => Some(a),
        Ok(Err(e)) => {
            tracing::info!(%peer, "rdp: {e}");
            None
        }
        Err(_) => {
            tracing::info!(%peer, "rdp: no login within {deadline:?}");
            None
        }
    }
}

/// The ticket's asset and account, authorised again now.
async fn authorize(
    shared: &Context,
    admitted: &front::Admitted,
    peer: SocketAddr,
) -> Option<crate::policy::Grant> {
    let who = &admitted.identity;
    let policy = shared.policy();
    let Some(asset) = policy
        .asset_by_id(&admitted.asset_id)
        .map(|a| a.name().to_string())
    else {
        refuse(
            shared,
            &who.name,
            peer,
            "rdp",
            "the ticket's asset no longer exists",
        )
        .await;
        return None;
    };
    let request = format!("rdp {asset} as {}", admitted.account);
    let now = shared.services.clock.now();
    let actions = [Action::Connect];
    let Ok(grant) = session::authorize(
        &policy,
        who,
        &asset,
        &admitted.account,
        "rdp",
        &actions,
        now,
    ) else {
        refuse(
            shared,
            &who.name,
            peer,
            &request,
            "not permitted (any more)",
        )
        .await;
        return None;
    };
    // One approval, one connection: it came with the ticket (asked for
    // over SSH, `ssh::desktop`); an RDP password carries none.
    if let Some(permission) = grant.approval()
        && admitted.approved_by.is_none()
    {
        let why = format!(
            "permission {permission} needs an administrator's approval for each connection: ask for a ticket with `ssh -t BASTION {asset}`"
        );
        refuse(shared, &who.name, peer, &request, &why).await;
        return None;
    }
    Some(grant)
}

/// The target, reached and authenticated with the vaulted password; its
/// certificate checked against the pin (or pinned, the first time).
async fn reach(
    shared: &Context,
    grant: &crate::policy::Grant,
) -> Result<(back::Login, back::Target), String> {
    let services = &shared.services;
    let GrantAccount::Stored { account_id, .. } = grant.account() else {
        return Err("the account's secret is not stored".into());
    };
    let password = async {
        let mut c = services.store.conn().await.ok()?;
        let (_, sealed) = crate::store::accounts::secret(&mut c, account_id)
            .await
            .ok()?;
        services.vault.as_ref()?.open_string(&sealed?).ok()
    };
    let password = password
        .await
        .ok_or("the account's password cannot be read")?;
    let login = back::Login::new(grant.account().username(), password);
    let pinned =
        crate::upstream::tls::pinned(&services.store, grant.asset_id(), back::PIN_ALGORITHM)
            .await
            .map_err(|e| format!("the pinned certificate cannot be read: {e}"))?;
    let target = back::connect(
        grant.address(),
        grant.protocol().port,
        &login,
        shared.connect_timeout,
        pinned.as_deref(),
    )
    .await
    .map_err(|e| e.to_string())?;
    if pinned.is_none() {
        crate::upstream::tls::pin_first(
            &services.store,
            services.clock.now(),
            grant.asset_id(),
            grant.asset_name(),
            back::PIN_ALGORITHM,
            &target.certificate,
        )
        .await;
    }
    Ok((login, target))
}

/// The session: row, recording (a desktop cast), live entry.
async fn open(shared: &Context, grant: &crate::policy::Grant, peer: SocketAddr) -> Option<Session> {
    let account = grant.account().username();
    let spec = Spec {
        recording: Some(session::Recording {
            kind: SessionKind::Desktop,
            cols: 0,
            rows: 0,
            term: None,
            title: Some(format!("{account} on {}", grant.asset_name())),
            command: None,
        }),
        ..Spec::of_grant(grant, "rdp", "desktop", peer.ip())
    };
    match Session::open(&shared.services, &shared.live, spec).await {
        Ok(s) => {
            tracing::info!(target: "audit", session = %s.id(), user = %grant.user_name(),
                asset = %grant.asset_name(), "rdp session opened");
            Some(s)
        }
        Err(e) => {
            let request = format!("rdp {} as {account}", grant.asset_name());
            refuse(shared, grant.user_name(), peer, &request, &e.to_string()).await;
            None
        }
    }
}

/// Frames both ways until either side ends or the bastion stops the
/// session; then the session ends with the reason.
async fn relay(
    shared: &Context,
    grant: &crate::policy::Grant,
    login: &back::Login,
    target: back::Target,
    client: wire::Reader<tokio_rustls::server::TlsStream<TcpStream>>,
    mut session: Session,
) {
    let services = &shared.services;
    let allowed = Allowed {
        copy: grant.allows(Action::Copy),
        paste: grant.allows(Action::Paste),
        drives: grant.allows(Action::Upload) || grant.allows(Action::Download),
    };
    let rewriter = Rewriter::new(login, target.selected, allowed);
    let (client_stream, client_ahead) = client.into_parts();
    let (target_stream, target_ahead) = target.reader.into_parts();
    let (client_read, mut client_write) = tokio::io::split(client_stream);
    let (target_read, mut target_write) = tokio::io::split(target_stream);
    let mut client = wire::Reader::with_buffer(client_read, client_ahead);
    let mut target = wire::Reader::with_buffer(target_read, target_ahead);
    // A monitor starting to watch asks for a full redraw (see `orders`).
    let refresh = tokio::sync::Notify::new();
    let rows = session.rows().clone();
    let (output, live) = session.split();
    let counts = live.publisher();
    let (up_time, down_time) = (
        services.metrics.rdp_relay("up"),
        services.metrics.rdp_relay("down"),
    );
    let up = async {
        let mut batch = Vec::new();
        let mut marks = tokio::time::interval(INPUT_MARKER_EVERY);
        marks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            batch.clear();
            tokio::select! {
                read = client.pdus(&mut batch) => {
                    if let Err(e) = read {
                        return reason_of("client", e);
                    }
                }
                // Keys and clicks: a marker a second at most, within a
                // second of them.
                _ = marks.tick() => {
                    if let Some(marker) = rewriter.input_marker()
                        && let Err(e) = output.marker(marker).await
                    {
                        return (format!("recording failed: {e}"), true);
                    }
                    continue;
                }
                // Between two batches: the request goes in at a PDU border.
                () = refresh.notified() => {
                    if let Some(request) = rewriter.refresh_request()
                        && target_write.write_all(&request).await.is_err()
                    {
                        return ("target closed".into(), false);
                    }
                    continue;
                }
            }
            let read = std::time::Instant::now();
            let mut out = BytesMut::new();
            for frame in &batch {
                match rewriter.upstream(frame) {
                    Ok(verdict) => relay::join(&mut out, frame, verdict),
                    Err(e) => return (format!("client sent a malformed PDU: {e}"), true),
                }
            }
            counts.add_in(out.len() as u64);
            if target_write.write_all(&out).await.is_err() {
                return ("target closed".into(), false);
            }
            up_time.observe(read.elapsed().as_secs_f64());
            if let Err(e) = audit_clipboard(services, &rewriter, &rows, &output, false).await {
                return (format!("recording failed: {e}"), true);
            }
        }
    };
    let down = async {
        let mut batch = Vec::new();
        let mut keyframes = Keyframes::new(std::time::Instant::now());
        loop {
            batch.clear();
            if let Err(e) = target.pdus(&mut batch).await {
                return reason_of("target", e);
            }
            let read = std::time::Instant::now();
            let mut out = BytesMut::new();
            for frame in &batch {
                relay::join(&mut out, frame, rewriter.downstream(frame));
            }
            let out: Bytes = out.freeze();
            if let Err(e) = output.output(out.clone()).await {
                return (format!("recording failed: {e}"), true);
            }
            // A stored keyframe: marked in the recording before the
            // target's repaint can arrive.
            if keyframes.due(out.len(), output.recorded(), std::time::Instant::now())
                && let Some(demand_active) = rewriter.keyframe()
                && rewriter.refresh_request().is_some()
            {
                if let Err(e) = output.redraw(demand_active).await {
                    return (format!("recording failed: {e}"), true);
                }
                refresh.notify_one();
            }
            if client_write.write_all(&out).await.is_err() {
                return ("client closed".into(), false);
            }
            down_time.observe(read.elapsed().as_secs_f64());
            if let Err(e) = audit_clipboard(services, &rewriter, &rows, &output, false).await {
                return (format!("recording failed: {e}"), true);
            }
        }
    };
    let stopped = async {
        tokio::select! {
            stop = orders(live, &rewriter, &refresh) => stop,
            stop = session::revoked(services, &shared.shutdown, |now| {
                shared.policy().recheck(grant, Action::Connect, now).is_some()
            }) => stop,
        }
    };
    let (reason, failed) = tokio::select! {
        r = up => r,
        r = down => r,
        stop = stopped => (stop.reason(), false),
    };
    let _ = client_write.shutdown().await;
    let _ = target_write.shutdown().await;
    // A file still arriving when the session ended is logged as far as it came.
    let _ = audit_clipboard(services, &rewriter, &rows, &output, true).await;
    if let Some(marker) = rewriter.input_marker() {
        let _ = output.marker(marker).await;
    }
    tracing::info!(target: "audit", session = %session.id(), reason = %reason, "rdp session ended");
    session.end_counted(services, reason, failed).await;
}

/// Logs what crossed the clipboard since the last call: a transfer row in
/// the audit chain (queued, never waited for) and a marker in the
/// recording, for each. An error is the recording's.
async fn audit_clipboard(
    services: &crate::services::Services,
    rewriter: &Rewriter<'_>,
    rows: &session::Rows,
    output: &session::Output<'_>,
    end: bool,
) -> Result<(), crate::record::RecordError> {
    for moved in rewriter.moved(end) {
        let event = rows.transfer(session::Transfer {
            operation: moved.operation().into(),
            path: moved.what().into(),
            size: moved.size,
            result: if moved.failed { "failed" } else { "ok" }.into(),
            sha256: Some(moved.sha256.clone()),
            error: String::new(),
        });
        services.audit.queue(event, services.clock.now());
        output.marker(moved.marker()).await?;
    }
    Ok(())
}

/// When the recording gets a stored keyframe: the relay asks the target
/// to repaint the whole desktop and marks the spot, so that a replay's
/// seek decodes at most about this much of the stream (a few hundred
/// milliseconds) however long the recording. Spaced by the updates sent,
/// as decoding costs by them: an idle desktop gets none, a busy one one
/// every few seconds at most. Each costs the person's link one repaint.
struct Keyframes {
    since: u64,
    last: std::time::Instant,
}

impl Keyframes {
    /// Update bytes between two keyframes.
    const BYTES: u64 = 4 * 1024 * 1024;
    /// Fewest seconds between two.
    const SPACING: std::time::Duration = std::time::Duration::from_secs(5);

    fn new(now: std::time::Instant) -> Keyframes {
        Keyframes {
            since: 0,
            last: now,
        }
    }

    /// Counts `sent` bytes; whether a keyframe is due `now` (never when the
    /// session is not recorded).
    fn due(&mut self, sent: usize, recorded: bool, now: std::time::Instant) -> bool {
        self.since = self.since.saturating_add(sent as u64);
        if !recorded
            || self.since < Keyframes::BYTES
            || now.saturating_duration_since(self.last) < Keyframes::SPACING
        {
            return false;
        }
        self.since = 0;
        self.last = now;
        true
    }
}

/// Fewest seconds between two input markers: a burst of typing is one.
const INPUT_MARKER_EVERY: std::time::Duration = std::time::Duration::from_secs(1);

/// Fewest seconds between two redraws asked of the target for monitors: a
/// monitor that keeps falling behind must not make the target repaint the
/// whole desktop over and over.
const REFRESH_EVERY: std::time::Duration = std::time::Duration::from_secs(2);

/// Answers the live entry's orders until a kill: a monitor's request for
/// the screen gets the target's Demand Active (its decoder starts there)
/// and makes the relay ask the target for a full redraw. A desktop has no
/// keyboard to share (joins are refused before they get here) and no text
/// line to show the person a notice on.
async fn orders(
    live: &mut crate::live::LiveSession,
    rewriter: &Rewriter<'_>,
    refresh: &tokio::sync::Notify,
) -> session::Stop {
    use tokio::time::{Instant, sleep_until};
    let mut last: Option<Instant> = None;
    // A redraw asked for too soon after the last one, done when it may be.
    let mut owed = false;
    loop {
        let due = async {
            match last.filter(|_| owed) {
                Some(at) => sleep_until(at + REFRESH_EVERY).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            control = live.control() => match control {
                Some(Control::Kill { reason, by }) => return session::Stop::Killed { reason, by },
                Some(Control::Snapshot(request)) => {
                    // Before the desktop is up the monitor waits for the stream.
                    if let Some(demand_active) = rewriter.demand_active() {
                        request.send(demand_active.to_vec());
                        owed = true;
                    }
                }
                Some(Control::Input(_) | Control::Notice(_)) => {}
                None => std::future::pending::<()>().await,
            },
            () = due => {}
        }
        let now = Instant::now();
        if owed && last.is_none_or(|at| now.duration_since(at) >= REFRESH_EVERY) {
            refresh.notify_one();
            last = Some(now);
            owed = false;
        }
    }
}

fn reason_of(side: &str, e: wire::WireError) -> (String, bool) {
    match e {
        wire::WireError::Closed => (format!("{side} closed"), false),
        wire::WireError::Io(e) => (format!("{side} connection lost: {e}"), false),
        wire::WireError::Malformed(m) => (format!("{side} sent a malformed PDU: {m}"), true),
    }
}

#[cfg(test)]
mod tests {
    use super::Keyframes;
    use std::time::{Duration, Instant};

    #[test]
    fn keyframes_follow_the_updates_sent_and_are_spaced_in_time() {
        let start = Instant::now();
        let at = |s: u64| start + Duration::from_secs(s);
        let mut keyframes = Keyframes::new(start);
        let mib = 1024 * 1024;
        // An idle desktop: none, however long.
        assert!(!keyframes.due(100, true, at(600)));
        for _ in 0..3 {
            assert!(!keyframes.due(mib, true, at(600)));
        }
        assert!(keyframes.due(mib, true, at(600)), "4 MiB sent");
        // Busy: 8 MiB more at once, but not 5 s later yet.
        assert!(!keyframes.due(8 * mib, true, at(604)));
        assert!(keyframes.due(1, true, at(605)));
        // Not recorded: never.
        assert!(!keyframes.due(64 * mib, false, at(700)));
    }
}
