//! The life of a session, whatever its protocol: admitted, opened,
//! recorded, registered, stopped, ended, in one place.
//!
//! A protocol first asks [`authorize`] for a `Grant` covering every action
//! the session needs (its [`Denied`] tells "no such asset, or not yours"
//! from "yours, but not this action", for the protocol to word), takes a
//! place under the person's cap ([`UserSessions`]), waits for an
//! administrator's yes where the permission asks for one ([`decided`]),
//! connects its target, and then calls [`Session::open`] (`admit.rs`,
//! `approval.rs`). Opening:
//!
//! 1. starts the recording, if the protocol records one
//!    ([`Spec::recording`]); when it cannot start, `recording.on_failure`
//!    decides: `deny` refuses the session, `allow` runs it unrecorded and
//!    [`Session::unrecorded`] says so, for the protocol to tell the person;
//! 2. writes the session row (a session that cannot be audited is refused,
//!    and the recording just started is closed);
//! 3. registers the session in the live registry, where staff see it,
//!    monitor it, join it and kill it.
//!
//! While it runs the protocol hands the session its output, input and
//! markers ([`Session::output`], [`Session::input`], [`Session::marker`]:
//! counted, shown to monitors, recorded; `run.rs`), and stops when [`Session::stopped`] resolves: a kill order,
//! its permission ending (rechecked every second, so a revocation, a
//! disabled person or a passed `--until` ends it), or shutdown (see
//! `watch.rs`). Its command and transfer rows ([`Session::rows`]) go
//! through the audit writer (`services.audit`).
//!
//! Ending, whatever ended it ([`Session::end`], after
//! [`Session::finish_recording`] when the protocol logs something that
//! needs the recording's first output): the live entry goes, the recording
//! is finished and its digest taken, the audit writer's queued rows are
//! written (a session's command rows are in the chain before its row
//! closes), and the row is closed with its reason, byte counts and exit
//! status in the same transaction as the chain entry that says it ended.
//! The indexer is told the recording is complete.
//!
//! # Adding a protocol
//!
//! What a new protocol (RDP, a database, a web asset) provides:
//! - the actions it needs, for [`authorize`], and its own wording of a
//!   [`Denied`];
//! - a [`Spec`]: who (from its grant), the account, the protocol and kind
//!   names shown in lists, the person's address, and a [`Recording`] if it
//!   records a terminal stream (asciicast);
//! - its own pump: bytes both ways, each chunk through
//!   [`Session::output`] or [`Session::input`], raced against [`Session::stopped`] with what "still
//!   permitted" means for it (its grant's actions rechecked against the
//!   current policy), whose [`Stop`] gives the row's reason and the line
//!   for the person;
//! - its commands (a database's statements) and file transfers, handed to
//!   [`Rows`] ([`Session::rows`]) and written through `services.audit`;
//! - an [`Outcome`] at the end: the reason as a short phrase ("client
//!   closed", "killed: ..."), whether it failed, the exit status if the
//!   protocol has one, and the bytes each way.
//!
//! It must not write session rows, start recorders, register live
//! entries or poll for revocation itself. `session::tests` runs a toy
//! protocol through open, output, a kill, a revocation, a shutdown and the
//! end, with no network.

use std::net::IpAddr;
use std::sync::Arc;

mod admit;
mod approval;
mod rows;
mod run;
mod watch;

pub use admit::{Denied, UserSessions, UserSlot, authorize};
pub use approval::{Held, Withdrawal, decided};
pub use rows::{Command, Rows, Transfer};
pub use run::Output;
pub use watch::{RECHECK, Stop, revoked};

use crate::audit::AuditEvent;
use crate::live::{LiveSession, Registry, SessionInfo};
use crate::model::new_id;
use crate::record::{Finished, RecordOptions, RecorderHandle, RecordingMeta, SessionKind};
use crate::services::Services;
use crate::store;

/// The next connection on a front door's listener (Nagle off), or `None`
/// once the bastion shuts down. A failed accept (out of descriptors, say)
/// is logged and retried after a short pause.
pub async fn accept(
    listener: &tokio::net::TcpListener,
    shutdown: &tokio_util::sync::CancellationToken,
) -> Option<(tokio::net::TcpStream, std::net::SocketAddr)> {
    loop {
        tokio::select! {
            r = listener.accept() => match r {
                Ok((stream, peer)) => {
                    let _ = stream.set_nodelay(true);
                    return Some((stream, peer));
                }
                Err(e) => {
                    tracing::warn!("accept failed: {e}");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                }
            },
            () = shutdown.cancelled() => return None,
        }
    }
}

/// What a front door other than SSH (RDP, web) shares with the rest of
/// the server; the SSH front door builds it from its own.
pub struct Context {
    pub services: crate::services::Services,
    pub authenticator: crate::auth::login::Authenticator,
    pub live: crate::live::Registry,
    /// The policy as of the last rebuild.
    pub policy: Box<dyn Fn() -> Arc<crate::policy::Snapshot> + Send + Sync>,
    pub shutdown: tokio_util::sync::CancellationToken,
    pub tracker: tokio_util::task::TaskTracker,
    /// Sessions each person has open, every protocol alike.
    pub user_sessions: Arc<UserSessions>,
    pub connect_timeout: std::time::Duration,
}

impl Context {
    pub fn policy(&self) -> Arc<crate::policy::Snapshot> {
        (self.policy)()
    }
}

/// What a protocol says about the session it opens.
#[derive(Debug, Clone)]
pub struct Spec {
    pub user_id: String,
    pub user_name: String,
    pub asset_id: String,
    pub asset_name: String,
    /// The account on the target (empty where there is none: a tunnel).
    pub account: String,
    /// Shown in the live list instead of the account (a tunnel's port).
    pub live_account: Option<String>,
    /// `ssh`, `sftp`, `tunnel`, later `rdp`, `postgresql`...
    pub protocol: String,
    /// `shell`, `exec`, `sftp`, `tunnel`...
    pub kind: String,
    /// The person's address.
    pub source: IpAddr,
    /// A terminal stream to record; `None`: the protocol records none
    /// (its transfers are logged row by row).
    pub recording: Option<Recording>,
}

impl Spec {
    /// A session of `grant`'s person on its asset as its account, over
    /// `protocol`, unrecorded (set [`Spec::recording`] for a terminal or a
    /// desktop).
    pub fn of_grant(
        grant: &crate::policy::Grant,
        protocol: &str,
        kind: &str,
        source: IpAddr,
    ) -> Spec {
        Spec {
            user_id: grant.user_id().to_string(),
            user_name: grant.user_name().to_string(),
            asset_id: grant.asset_id().to_string(),
            asset_name: grant.asset_name().to_string(),
            account: grant.account().username().to_string(),
            live_account: None,
            protocol: protocol.to_string(),
            kind: kind.to_string(),
            source,
            recording: None,
        }
    }
}

/// The terminal stream of a recorded session.
#[derive(Debug, Clone)]
pub struct Recording {
    pub kind: SessionKind,
    pub cols: u16,
    pub rows: u16,
    pub term: Option<String>,
    pub title: Option<String>,
    pub command: Option<String>,
}

/// Why a session was not opened; the text is the line for the person.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    #[error("the session cannot be recorded, so it is refused; tell an admin")]
    NotRecordable,
    #[error("the session cannot be audited, so it is refused; tell an admin")]
    NotAudited,
}

/// How a session ended, as the protocol saw it.
#[derive(Debug, Clone, Default)]
pub struct Outcome {
    /// A short phrase: "client closed", "killed: ...", "idle timeout".
    pub reason: String,
    /// The session broke rather than ended (an error, a recording that
    /// could not be written).
    pub failed: bool,
    pub exit_status: Option<u32>,
    pub bytes_in: u64,
    pub bytes_out: u64,
}

/// What the recording came to, once finished.
#[derive(Debug, Clone, Default)]
pub struct Recorded {
    /// The first output, as plain text (an exec's command row holds it).
    pub first_output: String,
    /// The recording's SHA-256; `None` when unrecorded or failed.
    pub digest: Option<String>,
    /// The recording could not be finished.
    pub failed: bool,
}

/// An open session (see the module docs).
pub struct Session {
    id: String,
    rows: Rows,
    recorder: RecorderHandle,
    recorded: bool,
    unrecorded: bool,
    live: LiveSession,
}

/// A session whose recording is finished and whose row is still open.
#[derive(Debug)]
pub struct Closing {
    id: String,
    protocol: String,
    recorded: Recorded,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("id", &self.id)
            .field("recorded", &self.recorded)
            .finish_non_exhaustive()
    }
}

impl Session {
    /// Opens a session: recording, row, live entry (see the module docs).
    pub async fn open(
        services: &Services,
        live: &Registry,
        spec: Spec,
    ) -> Result<Session, Refused> {
        let id = new_id();
        let now = services.clock.now();
        let audit_rows = Rows::new(&id, &spec.user_name, &spec.asset_name, &spec.account);
        let (recorder, recorded, unrecorded) = match &spec.recording {
            Some(r) => start_recording(services, &id, &spec, r).await?,
            None => (RecorderHandle::unrecorded(), false, false),
        };
        let new = store::sessions::NewSession {
            id: id.clone(),
            user_id: spec.user_id.clone(),
            user_name: spec.user_name.clone(),
            asset_id: spec.asset_id.clone(),
            asset_name: spec.asset_name.clone(),
            account: spec.account.clone(),
            protocol: spec.protocol.clone(),
            kind: spec.kind.clone(),
            source: spec.source.to_string(),
            recording: recorded.then(|| recorder.relative_path().to_string_lossy().into_owned()),
        };
        if let Err(e) = insert_row(services, &new).await {
            tracing::error!("cannot write the session row: {e}");
            let _ = recorder.finish().await;
            return Err(Refused::NotAudited);
        }
        services.metrics.session_started(&spec.protocol);
        let (cols, rows) = spec.recording.as_ref().map_or((0, 0), |r| (r.cols, r.rows));
        let entry = live.register(SessionInfo {
            id: id.clone(),
            user: spec.user_name,
            asset: spec.asset_name,
            account: spec.live_account.unwrap_or(spec.account),
            protocol: spec.protocol,
            kind: spec.kind,
            source: spec.source.to_string(),
            started_at: now,
            cols,
            rows,
        });
        Ok(Session {
            rows: audit_rows,
            id,
            recorder,
            recorded,
            unrecorded,
            live: entry,
        })
    }

    /// The session row's id (also the recording's file name).
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Its command and transfer rows.
    pub fn rows(&self) -> &Rows {
        &self.rows
    }

    pub fn recorder(&self) -> &RecorderHandle {
        &self.recorder
    }

    /// Recording was asked for, could not start, and `on_failure = allow`
    /// let the session run unrecorded: the person must be told.
    pub fn unrecorded(&self) -> bool {
        self.unrecorded
    }

    /// The live entry: bytes, frames for monitors, kill orders.
    pub fn live(&self) -> &LiveSession {
        &self.live
    }

    /// Both, for a pump that feeds the one and answers the other's orders.
    pub fn recorder_and_live(&mut self) -> (&RecorderHandle, &mut LiveSession) {
        (&self.recorder, &mut self.live)
    }

    /// Takes the session out of the live list and finishes its recording;
    /// for a protocol that logs something at the end that needs the first
    /// output. [`Self::end`] does it all in one.
    pub async fn finish_recording(self) -> Closing {
        let protocol = self.live.info().session.protocol;
        drop(self.live);
        let recorded = if self.recorded {
            match self.recorder.finish().await {
                Ok(Finished {
                    sha256,
                    first_output,
                    ..
                }) => Recorded {
                    first_output,
                    digest: Some(sha256),
                    failed: false,
                },
                Err(e) => {
                    tracing::error!(session = %self.id, "recording failed: {e}");
                    Recorded {
                        failed: true,
                        ..Recorded::default()
                    }
                }
            }
        } else {
            Recorded::default()
        };
        Closing {
            id: self.id,
            protocol,
            recorded,
        }
    }

    /// Ends a session that has no exit status with `reason`, and the
    /// bytes its live entry counted.
    pub async fn end_counted(self, services: &Services, reason: String, failed: bool) {
        let (bytes_in, bytes_out) = self.live.bytes();
        let outcome = Outcome {
            reason,
            failed,
            exit_status: None,
            bytes_in,
            bytes_out,
        };
        self.end(services, outcome).await;
    }

    /// Ends the session, whatever ended it (see the module docs).
    pub async fn end(self, services: &Services, outcome: Outcome) {
        self.finish_recording().await.end(services, outcome).await;
    }
}

impl Closing {
    pub fn recorded(&self) -> &Recorded {
        &self.recorded
    }

    /// Closes the row (see the module docs).
    pub async fn end(self, services: &Services, outcome: Outcome) {
        let status = if outcome.failed || self.recorded.failed {
            "failed"
        } else {
            "closed"
        };
        if self.recorded.failed {
            services.metrics.recording_error();
        }
        services.metrics.session_ended(
            &self.protocol,
            &outcome.reason,
            outcome.bytes_in,
            outcome.bytes_out,
        );
        let ending = store::sessions::Ending {
            status: status.into(),
            reason: outcome.reason,
            recording_sha256: self.recorded.digest,
            bytes_in: i64::try_from(outcome.bytes_in).unwrap_or(i64::MAX),
            bytes_out: i64::try_from(outcome.bytes_out).unwrap_or(i64::MAX),
            exit_status: outcome.exit_status.map(i64::from),
        };
        // The session's command and transfer rows are in the chain before
        // its own row closes.
        services.audit.flush().await;
        if let Err(e) = close_row(services, &self.id, &ending).await {
            tracing::error!(session = %self.id, "cannot close the session row: {e}");
        }
        // Its buffers are free: back to the kernel, so a burst of sessions
        // does not stay resident.
        crate::alloc::release_after_session();
    }
}

/// Starts the recorder; `on_failure` decides what a failure means.
async fn start_recording(
    services: &Services,
    id: &str,
    spec: &Spec,
    r: &Recording,
) -> Result<(RecorderHandle, bool, bool), Refused> {
    let meta = RecordingMeta {
        session: id.to_string(),
        started_at: services.clock.now(),
        user: spec.user_name.clone(),
        asset: spec.asset_name.clone(),
        account: spec.account.clone(),
        protocol: spec.protocol.clone(),
        kind: r.kind,
        cols: r.cols,
        rows: r.rows,
        term: r.term.clone(),
        shell: None,
        title: r.title.clone(),
        command: r.command.clone(),
    };
    let options = RecordOptions {
        input: services.config.recording.input,
        flush_interval: services.config.recording.flush_interval,
        ..RecordOptions::default()
    };
    match RecorderHandle::start(services.config.recording_dir(), meta, options).await {
        Ok(recorder) => Ok((recorder, true, false)),
        Err(e) => {
            tracing::error!("recording cannot start: {e}");
            services.metrics.recording_error();
            if services.config.recording.on_failure == crate::config::OnFailure::Deny {
                return Err(Refused::NotRecordable);
            }
            Ok((RecorderHandle::unrecorded(), false, true))
        }
    }
}

async fn insert_row(
    services: &Services,
    new: &store::sessions::NewSession,
) -> Result<(), store::StoreError> {
    let mut tx = services.store.begin().await?;
    store::sessions::insert(&mut tx, new, services.clock.now()).await?;
    store::cluster::own(&mut tx, &new.id, &services.config.cluster.node).await?;
    services.store.commit(tx).await
}

/// Closes the row and writes the chain entry that says the session ended,
/// in one transaction; then the indexer reads the finished recording now,
/// not at its next poll.
async fn close_row(
    services: &Services,
    id: &str,
    ending: &store::sessions::Ending,
) -> Result<(), store::StoreError> {
    let now = services.clock.now();
    let mut tx = services.store.begin().await?;
    if !store::sessions::finish(&mut tx, id, ending, now).await? {
        // Closed already: another node took this one for dead while it was
        // out of touch with the database. Its row says so; sealing it again
        // would break the chain.
        tracing::warn!(session = %id, "the session's row was closed by another node meanwhile");
        return Ok(());
    }
    crate::audit::record(
        &mut tx,
        &AuditEvent::SessionEnd {
            session_id: id.to_string(),
        },
        now,
    )
    .await?;
    services.store.commit(tx).await?;
    services.index.kick();
    services.spool.kick();
    Ok(())
}

#[cfg(test)]
mod tests;
