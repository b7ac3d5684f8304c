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

pub mod approval;
pub mod control;

pub use approval::{ApprovalRequest, Decision, Pending};

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::time::Instant;

use bytes::Bytes;
use jiff::Timestamp;

use crate::model::Role;
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

#[derive(Debug, Default)]
struct Inner {
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

/// A person's open channel that is not a target session, as registered:
/// who, as which account (the user id they logged in with) and with which
/// role it was opened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attendee {
    /// This registration's number, for [`Registry::dismiss`].
    pub key: u64,
    pub user: String,
    pub user_id: String,
    pub role: Role,
}

#[derive(Debug)]
struct PresenceEntry {
    attendee: Attendee,
    /// The reason the channel must end, once there is one.
    end: watch::Sender<Option<String>>,
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

    /// Orders one session to end; false when there is no such session.
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

    /// Starts watching a session: the stream from now on, and
    /// [`Monitor::screen`] for what is already on screen.
    pub fn subscribe(&self, id: &str) -> Option<Monitor> {
        let entry = self.entry(id)?;
        // Upgrading fails once the session dropped its handle: it is over.
        let frames = entry.output.upgrade()?.subscribe();
        Some(Monitor {
            info: entry.live_info(),
            entry,
            frames,
            seen: 0,
        })
    }

    /// Lets `by` type into a session. The session's person is told, now and
    /// when the returned handle is dropped. Subscribe separately to see the
    /// screen.
    pub fn join(&self, id: &str, by: &str) -> Result<Joined, LiveError> {
        let not_found = || LiveError::NotFound { id: id.to_string() };
        let entry = self.entry(id).ok_or_else(not_found)?;
        let by = one_line(by);
        // The person must learn that someone else can type into their
        // session: no notice, no join.
        match entry
            .control
            .try_send(Control::Notice(format!("{by} joined this session")))
        {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(_)) => {
                return Err(LiveError::Busy { id: id.to_string() });
            }
            Err(mpsc::error::TrySendError::Closed(_)) => return Err(not_found()),
        }
        entry.joined().push(by.clone());
        Ok(Joined {
            input: entry.input.clone(),
            entry,
            by,
        })
    }

    /// Registers a person's channel other than a target session (the menu,
    /// the staff desk, an admin command). Hold the returned handle for as
    /// long as the channel runs, and end the channel when
    /// [`Presence::withdrawn`] resolves.
    pub fn attend(&self, user: &str, user_id: &str, role: Role) -> Presence {
        let key = self.inner.next_presence.fetch_add(1, Ordering::Relaxed);
        let (end, receiver) = watch::channel(None);
        let entry = Arc::new(PresenceEntry {
            attendee: Attendee {
                key,
                user: user.to_string(),
                user_id: user_id.to_string(),
                role,
            },
            end,
        });
        self.inner.presences().insert(key, Arc::clone(&entry));
        Presence {
            entry,
            registry: Arc::downgrade(&self.inner),
            end: receiver,
        }
    }

    /// Every registered channel of a person, oldest first.
    pub fn attendees(&self) -> Vec<Attendee> {
        let mut all: Vec<Attendee> = self
            .inner
            .presences()
            .values()
            .map(|e| e.attendee.clone())
            .collect();
        all.sort_by_key(|a| a.key);
        all
    }

    /// Orders one registered channel to end, showing `reason` to its
    /// person; false when it is gone. The first reason given is the one
    /// shown.
    pub fn dismiss(&self, key: u64, reason: &str) -> bool {
        let Some(entry) = self.inner.presences().get(&key).cloned() else {
            return false;
        };
        let reason = one_line(reason);
        entry.end.send_if_modified(|current| {
            if current.is_none() {
                *current = Some(reason);
                true
            } else {
                false
            }
        });
        true
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

/// The relay's handle on its registered session. Dropping it unregisters
/// the session and ends the stream for its monitors.
#[derive(Debug)]
pub struct LiveSession {
    entry: Arc<Entry>,
    registry: Weak<Inner>,
    output: broadcast::Sender<Frame>,
    control: mpsc::Receiver<Control>,
    input: mpsc::Receiver<Bytes>,
    kill: watch::Receiver<Option<KillOrder>>,
    kill_open: bool,
}

impl LiveSession {
    pub fn id(&self) -> &str {
        &self.entry.info.id
    }

    pub fn info(&self) -> LiveInfo {
        self.entry.live_info()
    }

    /// Hands `bytes` (what the person's terminal receives) to the monitors.
    /// Never blocks: a monitor that falls behind lags and resynchronises.
    /// Call from one task, in the order the terminal model sees the bytes.
    pub fn publish(&self, bytes: Bytes) {
        publish(&self.entry, &self.output, bytes);
    }

    /// Records a window change and tells the monitors.
    pub fn resize(&self, cols: u16, rows: u16) {
        resize(&self.entry, &self.output, cols, rows);
    }

    /// Counts bytes from the person towards the target.
    pub fn add_in(&self, n: u64) {
        self.entry.bytes_in.fetch_add(n, Ordering::Relaxed);
    }

    /// Counts bytes from the target towards the person.
    pub fn add_out(&self, n: u64) {
        self.entry.bytes_out.fetch_add(n, Ordering::Relaxed);
    }

    /// (in, out) so far, for the session row.
    pub fn bytes(&self) -> (u64, u64) {
        (
            self.entry.bytes_in.load(Ordering::Relaxed),
            self.entry.bytes_out.load(Ordering::Relaxed),
        )
    }

    /// The kill order, if one was given.
    pub fn killed(&self) -> Option<KillOrder> {
        self.kill.borrow().clone()
    }

    /// Sequence number of the last frame published.
    pub fn seq(&self) -> u64 {
        self.entry.seq.load(Ordering::Relaxed)
    }

    /// A second handle for another task of the same relay (a pump that
    /// publishes and counts while the session's task waits on
    /// [`LiveSession::control`]). It keeps the stream open for monitors, so
    /// drop it with the session.
    pub fn publisher(&self) -> Publisher {
        Publisher {
            entry: Arc::clone(&self.entry),
            output: self.output.clone(),
            registry: self.registry.clone(),
        }
    }

    /// The next control message. Pending until there is one; cancel-safe,
    /// so it can sit in the relay's `select!`. A kill comes first, however
    /// much input is queued, and is delivered once. Never `None` while this
    /// handle lives (the registry entry keeps every sender); the `Option`
    /// lets a relay treat the end of messages like any channel's.
    pub async fn control(&mut self) -> Option<Control> {
        loop {
            tokio::select! {
                biased;
                changed = self.kill.changed(), if self.kill_open => match changed {
                    Ok(()) => {
                        if let Some(order) = self.kill.borrow_and_update().clone() {
                            return Some(Control::Kill { reason: order.reason, by: order.by });
                        }
                    }
                    // Cannot happen while the entry (which owns the sender)
                    // lives; stop polling rather than spin.
                    Err(_) => self.kill_open = false,
                },
                Some(control) = self.control.recv() => return Some(control),
                Some(bytes) = self.input.recv() => return Some(Control::Input(bytes)),
                // The entry keeps both senders alive, so this is unreachable;
                // it exists so that `select!` can never panic.
                else => return None,
            }
        }
    }
}

impl Drop for LiveSession {
    fn drop(&mut self) {
        let Some(inner) = self.registry.upgrade() else {
            return;
        };
        let mut sessions = inner.sessions();
        let id = &self.entry.info.id;
        if let Some(same_id) = sessions.get_mut(id) {
            same_id.retain(|e| !Arc::ptr_eq(e, &self.entry));
            if same_id.is_empty() {
                sessions.remove(id);
            }
        }
    }
}

/// A person's registered channel (see [`Registry::attend`]). Dropping it
/// unregisters the channel.
#[derive(Debug)]
pub struct Presence {
    entry: Arc<PresenceEntry>,
    registry: Weak<Inner>,
    end: watch::Receiver<Option<String>>,
}

impl Presence {
    pub fn attendee(&self) -> &Attendee {
        &self.entry.attendee
    }

    /// Resolves with the reason once the channel is to end (the person was
    /// disabled, removed, expired or demoted); pending until then.
    /// Cancel-safe, so it can sit in a channel loop's `select!`.
    pub async fn withdrawn(&mut self) -> String {
        let reason = match self.end.wait_for(Option::is_some).await {
            Ok(reason) => reason.clone(),
            // The entry owns the sender, and this handle the entry: cannot
            // happen; never end a channel for it.
            Err(_) => None,
        };
        match reason {
            Some(reason) => reason,
            None => std::future::pending().await,
        }
    }
}

impl Drop for Presence {
    fn drop(&mut self) {
        if let Some(inner) = self.registry.upgrade() {
            inner.presences().remove(&self.entry.attendee.key);
        }
    }
}

/// The publishing and counting half of a [`LiveSession`], cloneable.
#[derive(Debug, Clone)]
pub struct Publisher {
    entry: Arc<Entry>,
    output: broadcast::Sender<Frame>,
    registry: Weak<Inner>,
}

impl Publisher {
    /// As [`LiveSession::publish`]. Publish from one place only, in the
    /// order the terminal model sees the bytes, so sequence numbers follow
    /// the stream.
    pub fn publish(&self, bytes: Bytes) {
        publish(&self.entry, &self.output, bytes);
    }

    /// As [`LiveSession::resize`].
    pub fn resize(&self, cols: u16, rows: u16) {
        resize(&self.entry, &self.output, cols, rows);
    }

    pub fn add_in(&self, n: u64) {
        self.entry.bytes_in.fetch_add(n, Ordering::Relaxed);
    }

    pub fn add_out(&self, n: u64) {
        self.entry.bytes_out.fetch_add(n, Ordering::Relaxed);
    }

    /// Asks the admins to approve `command` (held by filter `rule`) in this
    /// session; `None` only while the registry is being torn down.
    pub fn ask(&self, command: &str, rule: &str) -> Option<Pending> {
        let inner = self.registry.upgrade()?;
        let info = &self.entry.info;
        Some(Registry { inner }.ask(ApprovalRequest {
            id: 0,
            session: info.id.clone(),
            user: info.user.clone(),
            asset: info.asset.clone(),
            account: info.account.clone(),
            command: command.to_string(),
            rule: rule.to_string(),
            asked_at: Timestamp::UNIX_EPOCH,
        }))
    }
}

fn publish(entry: &Entry, output: &broadcast::Sender<Frame>, bytes: Bytes) {
    let seq = entry.seq.fetch_add(1, Ordering::Relaxed) + 1;
    // An error only means nobody is watching.
    let _ = output.send(Frame::Output { seq, bytes });
}

fn resize(entry: &Entry, output: &broadcast::Sender<Frame>, cols: u16, rows: u16) {
    entry.size.store(pack(cols, rows), Ordering::Relaxed);
    let seq = entry.seq.fetch_add(1, Ordering::Relaxed) + 1;
    let _ = output.send(Frame::Resize { seq, cols, rows });
}

/// What a monitor receives next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MonitorEvent {
    Frame(Frame),
    /// This many frames were missed: ask for a fresh [`Monitor::screen`].
    Lagged(u64),
    /// The session is over.
    Ended,
}

/// A read-only view of one session's stream.
#[derive(Debug)]
pub struct Monitor {
    info: LiveInfo,
    entry: Arc<Entry>,
    frames: broadcast::Receiver<Frame>,
    /// Frames up to this number are already in the last screen snapshot.
    seen: u64,
}

impl Monitor {
    /// The session as it was when the monitor subscribed.
    pub fn info(&self) -> &LiveInfo {
        &self.info
    }

    /// The current screen, from the relay's terminal model. `None` when the
    /// session ended or keeps no screen (sftp, tunnels). Frames already in
    /// the snapshot are then skipped by [`Monitor::next`].
    pub async fn screen(&mut self) -> Option<Screen> {
        let (reply, answer) = oneshot::channel();
        self.entry
            .control
            .send(Control::Snapshot(SnapshotRequest {
                entry: Arc::clone(&self.entry),
                reply,
            }))
            .await
            .ok()?;
        let screen = answer.await.ok()?;
        self.seen = self.seen.max(screen.seq);
        Some(screen)
    }

    /// The next frame not already in the last snapshot.
    pub async fn next(&mut self) -> MonitorEvent {
        loop {
            match self.frames.recv().await {
                Ok(frame) if frame.seq() <= self.seen => continue,
                Ok(frame) => return MonitorEvent::Frame(frame),
                Err(broadcast::error::RecvError::Lagged(n)) => return MonitorEvent::Lagged(n),
                Err(broadcast::error::RecvError::Closed) => return MonitorEvent::Ended,
            }
        }
    }
}

/// An admin joined to a session: what they send is typed into it. Dropping
/// it tells the session's person that the admin left.
#[derive(Debug)]
pub struct Joined {
    entry: Arc<Entry>,
    input: mpsc::Sender<Bytes>,
    by: String,
}

impl Joined {
    pub fn by(&self) -> &str {
        &self.by
    }

    pub fn session_id(&self) -> &str {
        &self.entry.info.id
    }

    /// Sends keystrokes, waiting while the session's input queue is full
    /// (the admin's task waits, not the relay). Err once the session ended.
    pub async fn send(&self, bytes: Bytes) -> Result<(), LiveError> {
        self.input
            .send(bytes)
            .await
            .map_err(|_| LiveError::NotFound {
                id: self.entry.info.id.clone(),
            })
    }
}

impl Drop for Joined {
    fn drop(&mut self) {
        {
            let mut joined = self.entry.joined();
            if let Some(at) = joined.iter().position(|name| *name == self.by) {
                joined.remove(at);
            }
        }
        self.entry.notice(format!("{} left this session", self.by));
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
