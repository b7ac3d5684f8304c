//! The two-way pump between a person's channel and a target's channel, for
//! interactive and exec sessions: bytes both ways with backpressure (each
//! direction awaits the other side's SSH window, so `cat /dev/zero` on the
//! target cannot grow the bastion's memory), the command filter applied at
//! Enter before the keystroke reaches the target, and a tee of the output to
//! the recorder, the command tracker and the live registry.
//!
//! The two directions run as two futures polled together: one blocked on a
//! slow side never stops the other from draining its channel, which would
//! otherwise stall russh's connection loop (TECH-NOTES: undrained channels).
//!
//! The parts: [`pump`] moves the bytes and answers the live entry
//! (`pump.rs`); the Enter gate decides each line against the filters,
//! without channels (`gate.rs`); a command held for review waits for an
//! administrator (`review.rs`); the command log's rows queue for the audit
//! writer (`log.rs`). The session's lifecycle around the pump (row,
//! recording, live entry, revocation) is [`crate::session`]'s.
//!
//! Must never: drop output, reorder exit-status/EOF/close, or let a denied
//! command's Enter reach the target.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use russh::ChannelWriteHalf;
use russh::server::Msg as ServerMsg;

use crate::live;
use crate::policy::{Grant, Snapshot};
use crate::record::{CommandTracker, RecorderHandle};
use crate::services::Services;

mod gate;
mod join;
mod log;
mod pump;
mod review;

pub use crate::upstream::{TargetEnd, TargetEvents};
pub use log::log_exec_command;
use log::{Shared, lock};
pub use pump::pump;
pub use review::await_decision;

/// The largest terminal the bastion models: a client may claim any size,
/// but every screen model (command tracker, live monitor, menu) costs
/// memory per cell, so claims are clamped to this (a 4K screen with a
/// small font is about 400 x 120).
pub const MAX_COLS: u32 = 512;
pub const MAX_ROWS: u32 = 256;

/// The size a client that claims none gets: `ssh -tt` with no terminal
/// of its own (a script, ansible) sends 0 × 0, and programs on the target
/// then assume 80 × 24. A model of one column would wrap every character.
pub const DEFAULT_COLS: u32 = 80;
pub const DEFAULT_ROWS: u32 = 24;

/// A claimed terminal size, clamped to what the bastion models; 0 (no
/// size) is the default. What the bastion's screen models and recordings
/// use.
pub fn terminal_size(cols: u32, rows: u32) -> (u32, u32) {
    let (cols, rows) = claimed_size(cols, rows);
    let or = |v: u32, default: u32| if v == 0 { default } else { v };
    (or(cols, DEFAULT_COLS), or(rows, DEFAULT_ROWS))
}

/// A claimed terminal size as the target gets it: clamped like
/// [`terminal_size`], but "no size" (0) stays 0, as with direct ssh.
pub fn claimed_size(cols: u32, rows: u32) -> (u32, u32) {
    (cols.min(MAX_COLS), rows.min(MAX_ROWS))
}

/// The exit status the person's client gets when the bastion, not the
/// target, ended or refused the session (killed, revoked, idle, shut down,
/// not recordable, target unreachable): OpenSSH's own status for a session
/// that did not end normally, so scripts cannot take it for the command's.
pub const EXIT_BASTION: u32 = 255;

/// The end of the person's channel. Exit status (or exit signal) and EOF
/// each go out at most once, whoever sends them first: the target's own,
/// forwarded by the relay, or the channel task's when the session is over.
/// A second exit-status is a protocol error to OpenSSH's ControlMaster
/// (`exitval sent twice`, which made every ansible run fail).
#[derive(Debug, Default)]
pub struct ClientEnd {
    exit: std::sync::atomic::AtomicBool,
    eof: std::sync::atomic::AtomicBool,
}

impl ClientEnd {
    fn take(flag: &std::sync::atomic::AtomicBool) -> bool {
        !flag.swap(true, std::sync::atomic::Ordering::AcqRel)
    }

    pub async fn exit_status(&self, write: &ChannelWriteHalf<ServerMsg>, status: u32) {
        if Self::take(&self.exit) {
            let _ = write.exit_status(status).await;
        }
    }

    pub async fn exit_signal(
        &self,
        handle: &russh::server::Handle,
        id: russh::ChannelId,
        signal: russh::Sig,
        core_dumped: bool,
        message: String,
        lang: String,
    ) {
        if Self::take(&self.exit) {
            let _ = handle
                .exit_signal_request(id, signal, core_dumped, message, lang)
                .await;
        }
    }

    pub async fn eof(&self, write: &ChannelWriteHalf<ServerMsg>) {
        if Self::take(&self.eof) {
            let _ = write.eof().await;
        }
    }

    /// Exit status (unless one went out), EOF (unless sent), close.
    pub async fn finish(&self, write: &ChannelWriteHalf<ServerMsg>, status: u32) {
        self.exit_status(write, status).await;
        self.eof(write).await;
        let _ = write.close().await;
    }
}

/// Why a relayed session ended, as the session row says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EndReason {
    ClientClosed,
    TargetClosed,
    Killed(String),
    IdleTimeout,
    Shutdown,
    GrantEnded,
    /// `recording.on_failure = deny` and the recording failed mid-session.
    RecordingFailed(String),
    Error(String),
}

impl EndReason {
    /// The bastion ended it: the person's exit status is [`EXIT_BASTION`]
    /// whatever the target said last.
    pub fn by_bastion(&self) -> bool {
        !matches!(self, EndReason::ClientClosed | EndReason::TargetClosed)
    }

    pub fn as_str(&self) -> String {
        match self {
            EndReason::ClientClosed => "client closed".into(),
            EndReason::TargetClosed => "target closed".into(),
            EndReason::Killed(r) => format!("killed: {r}"),
            EndReason::IdleTimeout => "idle timeout".into(),
            EndReason::Shutdown => "bastion shutdown".into(),
            EndReason::GrantEnded => "permission ended".into(),
            EndReason::RecordingFailed(e) => format!("recording failed: {e}"),
            EndReason::Error(e) => format!("error: {e}"),
        }
    }
}

/// What a relayed session ended with.
#[derive(Debug)]
pub struct Outcome {
    pub reason: EndReason,
    pub exit_status: Option<u32>,
    pub bytes_in: u64,
    pub bytes_out: u64,
    /// The client's channel is still open (the menu may come back).
    pub client_open: bool,
    /// The last window size the person sent, if any.
    pub size: Option<(u32, u32)>,
}

/// Everything the pump needs besides the two channels.
pub struct Hooks<'a> {
    pub services: &'a Services,
    pub policy: &'a (dyn Fn() -> Arc<Snapshot> + Sync),
    pub grant: &'a Grant,
    /// The session's command rows.
    pub rows: &'a crate::session::Rows,
    pub recorder: &'a RecorderHandle,
    /// Interactive sessions track commands; exec sessions log their one
    /// command instead.
    pub tracker: Option<CommandTracker>,
    pub live: &'a mut live::LiveSession,
    pub shutdown: &'a tokio_util::sync::CancellationToken,
    pub idle_timeout: Option<Duration>,
    /// `recording.on_failure = allow`: a recording that fails mid-session
    /// stops recording instead of ending the session.
    pub recording_optional: bool,
    /// `Some` when the person's channel ends with the session: the
    /// target's EOF, exit status and exit signal are forwarded through it.
    /// `None` when the menu comes back: none of them is, since OpenSSH
    /// drops all output after an EOF and takes exit-status as the end.
    pub end: Option<&'a ClientEnd>,
    /// The actions the session was granted for (`connect`, or `upload`
    /// and the like for scp and rsync): rechecked every second.
    pub actions: &'a [crate::model::Action],
    /// Watches the raw streams (legacy SCP's file log).
    pub tap: Option<&'a dyn StreamTap>,
    /// Whether the data streams go into the recording: the target's
    /// standard output, and the person's keystrokes with `recording.input`.
    /// Off for legacy SCP, whose data is file content (logged as transfers,
    /// kept only with `recording.keep_files`); standard error is always
    /// recorded.
    pub record_stdout: bool,
    /// Whether the person's channel is a terminal: the bastion's notices
    /// then go inline (with colours), else to standard error, plain.
    pub terminal: bool,
    /// The person's login, done once they see the target's first output
    /// (streams stop giving way to it, see [`crate::live::arrivals`]).
    pub arrival: Option<&'a crate::live::arrivals::Arrival>,
}

/// Sees the bytes of an exec session as they pass, without changing them.
pub trait StreamTap: Send + Sync {
    fn person_sent(&self, data: &[u8]);
    fn target_sent(&self, data: &[u8]);
}

const RED: &str = "\x1b[1;31m";
const YELLOW: &str = "\x1b[1;33m";
const RESET: &str = "\x1b[0m";

/// Text from the bastion to the person: sent, recorded and fed to the
/// screen model like target output, so the recording stays exactly what the
/// person saw.
async fn notify(
    client_write: &ChannelWriteHalf<ServerMsg>,
    recorder: &RecorderHandle,
    shared: &Mutex<Shared>,
    terminal: bool,
    text: String,
) -> Result<(), ()> {
    if let Some(tracker) = lock(shared).tracker.as_mut() {
        tracker.output(text.as_bytes());
    }
    if terminal {
        let bytes = Bytes::from(text);
        let _ = recorder.output(bytes.clone()).await;
        return client_write.data_bytes(bytes).await.map_err(|_| ());
    }
    // Without a terminal, standard output is the command's own (a pipe, a
    // file, scp's protocol): the bastion's line goes to standard error,
    // plain.
    let plain = text
        .replace(RED, "")
        .replace(YELLOW, "")
        .replace(RESET, "")
        .replace("\r\n", "\n");
    let plain = format!("{}\n", plain.trim_matches('\n'));
    let bytes = Bytes::from(plain);
    let _ = recorder.output(bytes.clone()).await;
    client_write
        .extended_data_bytes(1, bytes)
        .await
        .map_err(|_| ())
}
