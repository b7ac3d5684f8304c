//! The live registry: every running session, while it runs.
//!
//! The relay registers each session and holds the returned [`LiveSession`]
//! for as long as the session lives; dropping it unregisters the session.
//! Through it the relay publishes what the person sees (a broadcast that
//! monitors subscribe to), counts bytes, and receives [`Control`] messages:
//! kill, keystrokes from a joined admin, notices to show, and requests for
//! the current screen. Admin paths (the console, `ops`, the control socket
//! in [`control`]) reach sessions through the cloneable [`Registry`]. Commands
//! held for an admin's approval wait in [`approval`]. A person's other
//! channels (the menu, the staff desk, an admin command over SSH) register
//! as a [`Presence`], so that withdrawing their access ends those too.
//!
//! This module owns only in-memory state. It must never block or slow the
//! relay's pump: publishing is a non-blocking broadcast where a slow monitor
//! lags instead of applying backpressure, every queue is bounded, and a kill
//! cannot be crowded out by a flood of input. It never touches the store,
//! the audit log or policy: who may kill or join is decided (and audited) by
//! the caller.
//!
//! Layout: this file holds the [`Registry`] and the entry each session has
//! in it; `session` the relay's handles on its entry, `viewer` the
//! [`Monitor`] and [`Joined`] handles of those who watch, `presence` the
//! registered channels of a person.

pub mod approval;
pub mod arrivals;
pub mod control;
mod presence;
mod session;
mod viewer;

pub use approval::{ApprovalRequest, Decision, Pending};
use presence::PresenceEntry;
pub use presence::{Attendee, Presence};
pub use session::{LiveSession, Publisher};
pub use viewer::{Joined, Monitor, MonitorEvent, Remote, RemoteAsk, RemoteEvent};

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Instant;

use bytes::Bytes;
use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use tokio::sync::{broadcast, mpsc, oneshot, watch};

/// Frames a monitor may fall behind before it lags (and should ask for a
/// fresh screen). At a typical 4-32 KiB per frame this bounds memory per
/// session to a few MiB however many monitors watch.
pub const OUTPUT_FRAMES: usize = 256;
/// Pending notices and snapshot requests per session. Kills travel apart
/// and are never queued behind them.
pub const CONTROL_QUEUE: usize = 32;
/// Pending chunks of a joined admin's keystrokes per session; when full the
/// admin's own task waits, never the relay.
pub const INPUT_QUEUE: usize = 64;
/// Longest reason, name or notice shown to a person, in characters.
pub const MAX_LINE: usize = 200;
/// Shown to the person when a kill gives no reason.
pub const DEFAULT_KILL_REASON: &str = "ended by an administrator";

/// A session as the relay registers it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionInfo {
    /// The session row's id (also the recording's file name).
    pub id: String,
    pub user: String,
    pub asset: String,
    pub account: String,
    pub protocol: String,
    /// As in the session row: `shell`, `exec`, `sftp`, `tunnel`.
    pub kind: String,
    /// The person's address.
    pub source: String,
    pub started_at: Timestamp,
    /// Terminal size; 0×0 for sessions without a pty.
    pub cols: u16,
    pub rows: u16,
}

/// A session as listed: what was registered, its current terminal size, and
/// the figures that change while it runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LiveInfo {
    #[serde(flatten)]
    pub session: SessionInfo,
    /// Bytes from the person towards the target.
    pub bytes_in: u64,
    /// Bytes from the target towards the person.
    pub bytes_out: u64,
    pub duration_secs: u64,
    /// Subscribed monitors (and joined admins watching the stream).
    pub watchers: usize,
    /// Names of the admins currently joined.
    pub joined: Vec<String>,
    /// Set once a kill was ordered; the session may still be closing.
    pub killed: Option<KillOrder>,
    /// The node that runs it, when several share the database (set by the
    /// lister; the registry holds only this node's sessions).
    #[serde(default)]
    pub node: String,
}

/// Where a killed session ran.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Where {
    Here,
    /// Another node, by name.
    Node(String),
}

/// Who ended a session, and the reason shown to its person.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KillOrder {
    pub reason: String,
    pub by: String,
}

/// What the broadcast carries, numbered so a monitor can line the stream up
/// with a screen snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    /// Bytes the person's terminal received.
    Output { seq: u64, bytes: Bytes },
    /// The person's terminal changed size.
    Resize { seq: u64, cols: u16, rows: u16 },
}

impl Frame {
    pub fn seq(&self) -> u64 {
        match self {
            Frame::Output { seq, .. } | Frame::Resize { seq, .. } => *seq,
        }
    }
}

/// A message for the relay of one session.
#[derive(Debug)]
pub enum Control {
    /// End the session, showing `reason` to the person.
    Kill { reason: String, by: String },
    /// Keystrokes from a joined admin, to be sent to the target as if typed
    /// by the person.
    Input(Bytes),
    /// One line to show the person (someone joined or left...).
    Notice(String),
    /// A monitor asks for the current screen; answer with
    /// [`SnapshotRequest::send`], or drop it if the session keeps no screen.
    Snapshot(SnapshotRequest),
}

/// A monitor's request for the current screen.
#[derive(Debug)]
pub struct SnapshotRequest {
    entry: Arc<Entry>,
    reply: oneshot::Sender<Screen>,
}

impl SnapshotRequest {
    /// Answers with the screen as the relay's terminal model holds it
    /// (vt100 `contents_formatted()`). The model must have seen exactly the
    /// frames published so far — feed it and publish in one critical
    /// section — because the monitor skips the frames the snapshot covers.
    pub fn send(self, contents: Vec<u8>) {
        let (cols, rows) = unpack(self.entry.size.load(Ordering::Relaxed));
        let screen = Screen {
            seq: self.entry.seq.load(Ordering::Relaxed),
            cols,
            rows,
            contents,
        };
        // The monitor may have gone away meanwhile; nothing to do then.
        let _ = self.reply.send(screen);
    }
}

/// A screen snapshot: the terminal's state after frame `seq`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Screen {
    pub seq: u64,
    pub cols: u16,
    pub rows: u16,
    /// Bytes that redraw the screen on an empty terminal of that size.
    pub contents: Vec<u8>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LiveError {
    #[error("no live session {id}")]
    NotFound { id: String },
    #[error("session {id} is not answering; try again")]
    Busy { id: String },
    #[error(
        "session {id} runs on node {node}, which did not answer: try again, or log in to {node}"
    )]
    Unreachable { id: String, node: String },
}

/// The registry of running sessions. Cheap to clone; all clones share it.
#[derive(Debug, Clone, Default)]
pub struct Registry {
    inner: Arc<Inner>,
}

/// Sessions by id. Ids are UUIDs and meant to be unique; should two
/// sessions ever share one, both stay listed and killable rather than one
/// becoming unreachable.
type Sessions = HashMap<String, Vec<Arc<Entry>>>;

/// Sessions that other nodes sharing the database run: what the registry
/// asks when a session to end or watch is not one of its own (the
/// `cluster` module answers, over the database's notifications).
pub trait Elsewhere: Send + Sync + 'static {
    /// Orders a session another node runs to end; the node's name when it
    /// ran it.
    fn kill<'a>(
        &'a self,
        id: &'a str,
        reason: &'a str,
        by: &'a str,
    ) -> BoxFuture<'a, Option<String>>;
    /// Orders every session of `user` on the other nodes to end; how many
    /// there were.
    fn kill_user<'a>(&'a self, user: &'a str, reason: &'a str, by: &'a str)
    -> BoxFuture<'a, usize>;
    /// Watches a session another node runs (and, with `join_as`, types
    /// into it as that admin).
    fn watch<'a>(
        &'a self,
        id: &'a str,
        join_as: Option<&'a str>,
    ) -> BoxFuture<'a, Result<Remote, LiveError>>;
}

pub type BoxFuture<'a, T> = std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send + 'a>>;

#[derive(Default)]
struct Other(std::sync::OnceLock<Arc<dyn Elsewhere>>);

impl std::fmt::Debug for Other {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.get().is_some() {
            "Other(nodes)"
        } else {
            "Other(none)"
        })
    }
}

#[derive(Debug, Default)]
struct Inner {
    elsewhere: Other,
    sessions: Mutex<Sessions>,
    approvals: Arc<approval::Approvals>,
    presences: Mutex<HashMap<u64, Arc<PresenceEntry>>>,
    next_presence: AtomicU64,
}

impl Inner {
    /// The map stays consistent even if a holder panicked (every critical
    /// section is a single insert, remove or clone), so poisoning is ignored.
    fn sessions(&self) -> MutexGuard<'_, Sessions> {
        self.sessions.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// As [`Inner::sessions`].
    fn presences(&self) -> MutexGuard<'_, HashMap<u64, Arc<PresenceEntry>>> {
        self.presences
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

#[derive(Debug)]
struct Entry {
    info: SessionInfo,
    started: Instant,
    /// cols << 16 | rows, so a resize is one store.
    size: AtomicU32,
    bytes_in: AtomicU64,
    bytes_out: AtomicU64,
    /// Sequence number of the last frame published.
    seq: AtomicU64,
    /// Weak, so that the stream ends for monitors when the session's own
    /// senders are dropped even while a list() still holds the entry.
    output: broadcast::WeakSender<Frame>,
    control: mpsc::Sender<Control>,
    input: mpsc::Sender<Bytes>,
    kill: watch::Sender<Option<KillOrder>>,
    joined: Mutex<Vec<String>>,
}

impl Entry {
    fn live_info(&self) -> LiveInfo {
        let (cols, rows) = unpack(self.size.load(Ordering::Relaxed));
        LiveInfo {
            session: SessionInfo {
                cols,
                rows,
                ..self.info.clone()
            },
            bytes_in: self.bytes_in.load(Ordering::Relaxed),
            bytes_out: self.bytes_out.load(Ordering::Relaxed),
            duration_secs: self.started.elapsed().as_secs(),
            watchers: self
                .output
                .upgrade()
                .map_or(0, |sender| sender.receiver_count()),
            joined: self.joined().clone(),
            killed: self.kill.borrow().clone(),
            node: String::new(),
        }
    }

    fn joined(&self) -> MutexGuard<'_, Vec<String>> {
        self.joined.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// First kill wins: a second order must not replace the reason the
    /// person is already being shown.
    fn kill(&self, reason: &str, by: &str) {
        let mut reason = one_line(reason);
        if reason.is_empty() {
            // The person is always told something, even when the admin
            // gave no reason (`session kill ID` without `--reason`).
            reason = DEFAULT_KILL_REASON.to_string();
        }
        let order = KillOrder {
            reason,
            by: one_line(by),
        };
        self.kill.send_if_modified(|current| {
            if current.is_none() {
                *current = Some(order);
                true
            } else {
                false
            }
        });
    }

    /// Queues a notice without waiting. A full queue means the relay is not
    /// reading its control messages; the notice is dropped rather than
    /// stalling an admin path.
    fn notice(&self, text: String) -> bool {
        match self.control.try_send(Control::Notice(text)) {
            Ok(()) => true,
            Err(mpsc::error::TrySendError::Full(_)) => {
                tracing::warn!(session = %self.info.id, "live notice dropped: control queue full");
                false
            }
            Err(mpsc::error::TrySendError::Closed(_)) => false,
        }
    }
}

impl Registry {
    pub fn new() -> Registry {
        Registry::default()
    }

    /// Registers a starting session. The returned handle unregisters it when
    /// dropped, so hold it for exactly the session's lifetime.
    pub fn register(&self, info: SessionInfo) -> LiveSession {
        let (output, _) = broadcast::channel(OUTPUT_FRAMES);
        let (control_tx, control_rx) = mpsc::channel(CONTROL_QUEUE);
        let (input_tx, input_rx) = mpsc::channel(INPUT_QUEUE);
        let (kill_tx, kill_rx) = watch::channel(None);
        let entry = Arc::new(Entry {
            size: AtomicU32::new(pack(info.cols, info.rows)),
            info,
            started: Instant::now(),
            bytes_in: AtomicU64::new(0),
            bytes_out: AtomicU64::new(0),
            seq: AtomicU64::new(0),
            output: output.downgrade(),
            control: control_tx,
            input: input_tx,
            kill: kill_tx,
            joined: Mutex::new(Vec::new()),
        });
        {
            let mut sessions = self.inner.sessions();
            let same_id = sessions.entry(entry.info.id.clone()).or_default();
            if !same_id.is_empty() {
                tracing::error!(session = %entry.info.id, "two live sessions share one id");
            }
            same_id.push(Arc::clone(&entry));
        }
        LiveSession {
            entry,
            registry: Arc::downgrade(&self.inner),
            output,
            control: control_rx,
            input: input_rx,
            kill: kill_rx,
            kill_open: true,
        }
    }

    /// Every running session, oldest first.
    pub fn list(&self) -> Vec<LiveInfo> {
        let entries: Vec<Arc<Entry>> = self.inner.sessions().values().flatten().cloned().collect();
        let mut list: Vec<LiveInfo> = entries.iter().map(|e| e.live_info()).collect();
        list.sort_by(|a, b| {
            (a.session.started_at, &a.session.id).cmp(&(b.session.started_at, &b.session.id))
        });
        list
    }

    pub fn get(&self, id: &str) -> Option<LiveInfo> {
        self.entry(id).map(|e| e.live_info())
    }

    pub fn len(&self) -> usize {
        self.inner.sessions().values().map(Vec::len).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Connects the registry to the other nodes (once; later calls are
    /// ignored).
    pub fn set_elsewhere(&self, other: Arc<dyn Elsewhere>) {
        let _ = self.inner.elsewhere.0.set(other);
    }

    /// Orders one session to end, on this node or, failing that, on the
    /// node that runs it; the node's name when it was another, `None` when
    /// the session runs nowhere.
    pub async fn kill_anywhere(&self, id: &str, reason: &str, by: &str) -> Option<Where> {
        if self.kill(id, reason, by) {
            return Some(Where::Here);
        }
        let other = self.inner.elsewhere.0.get()?;
        other.kill(id, reason, by).await.map(Where::Node)
    }

    /// [`Registry::kill_user`] on this node and every other one; how many
    /// sessions there were in all.
    pub async fn kill_user_everywhere(&self, user: &str, reason: &str, by: &str) -> usize {
        let here = self.kill_user(user, reason, by);
        match self.inner.elsewhere.0.get() {
            Some(other) => here + other.kill_user(user, reason, by).await,
            None => here,
        }
    }

    /// Orders one session of this node to end; false when there is no such
    /// session here.
    pub fn kill(&self, id: &str, reason: &str, by: &str) -> bool {
        let entries = self.inner.sessions().get(id).cloned().unwrap_or_default();
        for entry in &entries {
            entry.kill(reason, by);
        }
        !entries.is_empty()
    }

    /// Orders every session of `user` to end (force logout, disabled user),
    /// and their open menu, desk and admin channels with them: a logout
    /// that left the menu open would let them straight back in. Returns how
    /// many sessions there were.
    pub fn kill_user(&self, user: &str, reason: &str, by: &str) -> usize {
        let present: Vec<u64> = self
            .inner
            .presences()
            .values()
            .filter(|p| p.attendee.user == user)
            .map(|p| p.attendee.key)
            .collect();
        for key in present {
            self.dismiss(key, &format!("logged out by {by}: {reason}"));
        }
        let entries: Vec<Arc<Entry>> = self
            .inner
            .sessions()
            .values()
            .flatten()
            .filter(|e| e.info.user == user)
            .cloned()
            .collect();
        for entry in &entries {
            entry.kill(reason, by);
        }
        entries.len()
    }

    /// Shows the person of a session one line; false when there is no such
    /// session or it is not taking messages.
    pub fn notice(&self, id: &str, text: &str) -> bool {
        self.entry(id).is_some_and(|e| e.notice(one_line(text)))
    }

    /// The newest session with this id.
    fn entry(&self, id: &str) -> Option<Arc<Entry>> {
        self.inner
            .sessions()
            .get(id)
            .and_then(|same_id| same_id.last())
            .cloned()
    }
}

fn pack(cols: u16, rows: u16) -> u32 {
    (u32::from(cols) << 16) | u32::from(rows)
}

fn unpack(size: u32) -> (u16, u16) {
    // Both halves fit by construction (see `pack`); the casts truncate
    // nothing.
    ((size >> 16) as u16, (size & 0xffff) as u16)
}

/// Text from an admin as it may be written to another person's terminal:
/// one line, no control characters (no escape sequences), bounded length.
pub fn one_line(text: &str) -> String {
    let cleaned: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(MAX_LINE)
        .collect();
    cleaned.trim().to_string()
}

#[cfg(test)]
mod tests;
