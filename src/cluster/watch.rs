//! Watching and joining a session another node runs.
//!
//! The watcher's node asks the session's node with a [`What::Watch`] note on
//! the control channel, naming a channel of the watch's own that only it
//! listens on. The session's node subscribes to the session in its registry
//! (joining it too, when asked, so the person is told) and sends on that
//! channel, in the order its relay published them, the frames, the screen
//! when asked for it, and the end ([`Feed`]). Keystrokes of a joined admin,
//! requests for the screen and "still watching" go back as notes on the
//! control channel.
//!
//! Bounds, so that a watch can neither load the database nor hold memory:
//! - output is gathered for [`GATHER`] and sent in notifications of at most
//!   [`CHUNK`] bytes (PostgreSQL's payload limit is 8000 bytes, and the
//!   bytes go as base64), at most [`RATE`] bytes a second per watch;
//! - beyond [`HELD`] bytes waiting, the output is dropped and the watcher
//!   redraws from a fresh screen, as a monitor on the same node does when
//!   it falls behind;
//! - the watcher queues at most [`EVENTS`] events, the session's node at
//!   most [`COMMANDS`] notes per watch (a joined admin's keystrokes beyond
//!   that are dropped, and the session's node says so in its log);
//! - each side says it is there every [`ALIVE`]; after [`SILENT`] without a
//!   word the session's node stops sending and the watcher is told the link
//!   was lost.
//!
//! Anything that can notify on the database's channels can ask for a
//! watch: that is the nodes, which already hold the database credentials.
//! Who may watch or join is decided (and audited) by the watcher's node
//! before it asks, as for a session of its own.

use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::{Note, Others, What};
use crate::live::{
    self, Frame, LiveError, LiveInfo, MonitorEvent, Remote, RemoteAsk, RemoteEvent, Screen,
};
use crate::store::{self, Store};

/// Bytes of output or input per notification.
pub const CHUNK: usize = 5400;
/// Output bytes a watch carries per second, at most.
pub const RATE: usize = 1 << 20;
/// Output bytes waiting to be sent beyond which they are dropped.
pub const HELD: usize = 256 * 1024;
/// How long output is gathered before it is sent.
pub const GATHER: Duration = Duration::from_millis(20);
/// Each side of a watch says it is there this often.
pub const ALIVE: Duration = Duration::from_secs(5);
/// A watch whose other side said nothing for this long is over.
pub const SILENT: Duration = Duration::from_secs(20);
/// Events queued for the watcher.
pub const EVENTS: usize = 256;
/// Notes queued for a watch on the session's node.
pub const COMMANDS: usize = 1024;
/// Largest screen a watcher accepts.
const MAX_SCREEN: usize = 1 << 20;
/// How long the session's node waits for its relay's screen.
const SCREEN_WAIT: Duration = Duration::from_secs(2);

/// What the session's node sends on the watch's channel.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "feed", rename_all = "snake_case")]
enum Feed {
    /// The watch is on: the session as its node lists it.
    Hello {
        info: Box<LiveInfo>,
    },
    Refused {
        why: String,
        busy: bool,
    },
    Out {
        seq: u64,
        data: String,
    },
    Resize {
        seq: u64,
        cols: u16,
        rows: u16,
    },
    /// A part of a screen; the last part says `last`.
    Screen {
        seq: u64,
        cols: u16,
        rows: u16,
        data: String,
        last: bool,
    },
    NoScreen,
    Lagged,
    Tick,
    Ended,
}

/// A note for a watch on the session's node.
#[derive(Debug)]
pub(super) enum Command {
    Screen,
    Input(Bytes),
    Alive,
    Leave,
}

async fn notify(store: &Store, channel: &str, payload: &str) -> Result<(), store::StoreError> {
    sqlx::query("SELECT pg_notify($1, $2)")
        .bind(channel)
        .bind(payload)
        .execute(store.pool())
        .await?;
    Ok(())
}

/// The watcher's side: asks `node` to feed session `id` to a channel of
/// this watch, and hands back the feed once that node said yes.
pub(super) async fn watch(
    others: &Others,
    node: String,
    id: &str,
    join_as: Option<&str>,
) -> Result<Remote, LiveError> {
    let unreachable = || LiveError::Unreachable {
        id: id.to_string(),
        node: node.clone(),
    };
    let channel = format!("rampart_watch_{}", uuid::Uuid::new_v4().simple());
    let listener = async {
        let mut l = sqlx::postgres::PgListener::connect(&others.url).await?;
        l.listen(&channel).await?;
        Ok::<_, sqlx::Error>(l)
    };
    let mut listener = match listener.await {
        Ok(l) => l,
        Err(e) => {
            tracing::warn!("cannot listen for a watch: {}", store::StoreError::from(e));
            return Err(unreachable());
        }
    };
    let ask = Note {
        to: node.clone(),
        from: others.me.clone(),
        id: channel.clone(),
        what: What::Watch {
            session: id.to_string(),
            channel: channel.clone(),
            join_as: join_as.map(str::to_string),
        },
    };
    if others.send(&ask).await.is_err() {
        return Err(unreachable());
    }
    let first = tokio::time::timeout(super::ANSWER_WAIT, listener.recv()).await;
    let Ok(Ok(first)) = first else {
        return Err(unreachable());
    };
    let info = match serde_json::from_str(first.payload()) {
        Ok(Feed::Hello { info }) => *info,
        Ok(Feed::Refused { busy: true, .. }) => {
            return Err(LiveError::Busy { id: id.to_string() });
        }
        Ok(Feed::Refused { why, .. }) => {
            tracing::info!(session = %id, %node, "watch refused: {why}");
            return Err(LiveError::NotFound { id: id.to_string() });
        }
        _ => return Err(unreachable()),
    };
    let (events_tx, events) = mpsc::channel(EVENTS);
    let (asks, asks_rx) = mpsc::channel(EVENTS);
    let watcher = Watcher {
        store: others.store.clone(),
        me: others.me.clone(),
        node,
        channel,
        events: events_tx,
        lagging: false,
        screen: Vec::new(),
    };
    tokio::spawn(watcher.run(listener, asks_rx));
    Ok(Remote { info, events, asks })
}

/// The watcher's side of one watch, while it lasts.
struct Watcher {
    store: Store,
    me: String,
    node: String,
    channel: String,
    events: mpsc::Sender<RemoteEvent>,
    /// Frames were dropped since the watcher last heard of it.
    lagging: bool,
    /// The parts of a screen so far.
    screen: Vec<u8>,
}

impl Watcher {
    async fn run(
        mut self,
        mut listener: sqlx::postgres::PgListener,
        mut asks: mpsc::Receiver<RemoteAsk>,
    ) {
        // The listener reads on a task of its own, so that nothing it is
        // in the middle of reading is lost to a `select!`; it is aborted
        // (and its connection closed) when the watch ends.
        let (feed_tx, mut feed) = mpsc::channel::<Option<String>>(EVENTS);
        let reader = tokio::spawn(async move {
            loop {
                let note = match listener.try_recv().await {
                    Ok(Some(n)) => Some(n.payload().to_string()),
                    // The connection was lost and is made again: what was
                    // sent meanwhile is gone.
                    Ok(None) => None,
                    Err(e) => {
                        tracing::warn!("a watch lost its channel: {}", store::StoreError::from(e));
                        tokio::time::sleep(Duration::from_secs(1)).await;
                        None
                    }
                };
                if feed_tx.send(note).await.is_err() {
                    return;
                }
            }
        });
        let mut heard = Instant::now();
        let mut alive = tokio::time::interval(ALIVE);
        alive.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let end = loop {
            tokio::select! {
                note = feed.recv() => {
                    heard = Instant::now();
                    match note {
                        Some(Some(payload)) => {
                            if let Some(end) = self.take(&payload).await {
                                break Some(end);
                            }
                        }
                        Some(None) => self.lag(),
                        // The reader is gone (it cannot end otherwise).
                        None => break Some(RemoteEvent::Lost("the watch's channel closed".into())),
                    }
                }
                ask = asks.recv() => {
                    let what = match ask {
                        Some(RemoteAsk::Screen) => vec![What::Resync { channel: self.channel.clone() }],
                        Some(RemoteAsk::Input(bytes)) => bytes
                            .chunks(CHUNK)
                            .map(|piece| What::Input {
                                channel: self.channel.clone(),
                                data: BASE64.encode(piece),
                            })
                            .collect(),
                        None => break None,
                    };
                    for what in what {
                        self.tell(what).await;
                    }
                }
                _ = alive.tick() => {
                    if heard.elapsed() > SILENT {
                        break Some(RemoteEvent::Lost(format!(
                            "node {} stopped answering; the session may still run",
                            self.node
                        )));
                    }
                    self.tell(What::Alive { channel: self.channel.clone() }).await;
                }
            }
        };
        reader.abort();
        if let Some(event) = end {
            let _ = self.events.send(event).await;
        }
        // Lets the session's node stop at once rather than after a
        // silence, should it still be sending.
        self.tell(What::Leave {
            channel: self.channel.clone(),
        })
        .await;
    }

    /// Hands one notification of the feed on; the last event when the feed
    /// ended.
    async fn take(&mut self, payload: &str) -> Option<RemoteEvent> {
        let Ok(feed) = serde_json::from_str::<Feed>(payload) else {
            tracing::warn!(node = %self.node, "an unreadable watch feed: ignored");
            self.lag();
            return None;
        };
        match feed {
            Feed::Out { seq, data } => match BASE64.decode(data) {
                Ok(bytes) => self.frame(Frame::Output {
                    seq,
                    bytes: Bytes::from(bytes),
                }),
                Err(_) => self.lag(),
            },
            Feed::Resize { seq, cols, rows } => self.frame(Frame::Resize { seq, cols, rows }),
            Feed::Screen {
                seq,
                cols,
                rows,
                data,
                last,
            } => {
                match BASE64.decode(data) {
                    Ok(part) if self.screen.len() + part.len() <= MAX_SCREEN => {
                        self.screen.extend_from_slice(&part);
                    }
                    _ => {
                        // Unreadable, or too big to hold: the watcher gets
                        // no screen and asks again later.
                        self.screen.clear();
                        return None;
                    }
                }
                if last {
                    let screen = Screen {
                        seq,
                        cols,
                        rows,
                        contents: std::mem::take(&mut self.screen),
                    };
                    // A screen is asked for, so it is waited for.
                    if self
                        .events
                        .send(RemoteEvent::Screen(Some(screen)))
                        .await
                        .is_err()
                    {
                        self.screen.clear();
                    }
                }
            }
            Feed::NoScreen => {
                let _ = self.events.send(RemoteEvent::Screen(None)).await;
            }
            Feed::Lagged => self.lag(),
            Feed::Tick | Feed::Hello { .. } | Feed::Refused { .. } => {}
            Feed::Ended => return Some(RemoteEvent::Ended),
        }
        None
    }

    /// Passes a frame on, or drops it when the watcher is behind (it then
    /// hears that it lagged, before any later frame).
    fn frame(&mut self, frame: Frame) {
        if self.lagging {
            match self.events.try_send(RemoteEvent::Lagged) {
                Ok(()) => self.lagging = false,
                Err(_) => return,
            }
        }
        if let Err(mpsc::error::TrySendError::Full(_)) =
            self.events.try_send(RemoteEvent::Frame(frame))
        {
            self.lagging = true;
        }
    }

    fn lag(&mut self) {
        if self.events.try_send(RemoteEvent::Lagged).is_err() {
            self.lagging = true;
        }
    }

    async fn tell(&self, what: What) {
        let note = Note {
            to: self.node.clone(),
            from: self.me.clone(),
            id: self.channel.clone(),
            what,
        };
        if let Err(e) = self.send(&note).await {
            tracing::warn!(node = %self.node, "a watch cannot reach its node: {e}");
        }
    }

    async fn send(&self, note: &Note) -> Result<(), store::StoreError> {
        let payload = serde_json::to_string(note)
            .map_err(|e| store::StoreError::Corrupt(format!("a note to {}: {e}", note.to)))?;
        notify(&self.store, super::CHANNEL, &payload).await
    }
}

/// The session's side: feeds `session` to the watch's `channel` until the
/// session ends, the watcher leaves, or it falls silent.
pub(super) async fn serve(
    others: Arc<Others>,
    registry: live::Registry,
    session: String,
    channel: String,
    join_as: Option<String>,
) {
    let mut out = Outbox::new(others.store.clone(), channel.clone());
    let Some(mut monitor) = registry.subscribe(&session) else {
        let why = format!("no live session {session} on node {}", others.me);
        out.send(&Feed::Refused { why, busy: false }).await;
        return;
    };
    let joined = match join_as.map(|by| registry.join(&session, &by)).transpose() {
        Ok(joined) => joined,
        Err(e) => {
            let busy = matches!(e, LiveError::Busy { .. });
            let why = e.to_string();
            out.send(&Feed::Refused { why, busy }).await;
            return;
        }
    };
    let (commands_tx, mut commands) = mpsc::channel(COMMANDS);
    others.watches().insert(channel.clone(), commands_tx);
    let mut info = monitor.info().clone();
    info.node.clone_from(&others.me);
    out.send(&Feed::Hello {
        info: Box::new(info),
    })
    .await;
    tracing::info!(%session, by = ?joined.as_ref().map(|j| j.by()), "watched from another node");

    let mut heard = Instant::now();
    let mut alive = tokio::time::interval(ALIVE);
    alive.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let due = out.due;
        tokio::select! {
            command = commands.recv() => match command {
                Some(Command::Screen) => {
                    out.flush(true).await;
                    let screen = tokio::time::timeout(SCREEN_WAIT, monitor.screen()).await;
                    out.screen(screen.ok().flatten()).await;
                }
                Some(Command::Input(bytes)) => {
                    if let Some(joined) = &joined
                        && joined.send(bytes).await.is_err()
                    {
                        out.flush(true).await;
                        out.send(&Feed::Ended).await;
                        break;
                    }
                }
                Some(Command::Alive) => heard = Instant::now(),
                Some(Command::Leave) | None => break,
            },
            event = monitor.next() => match event {
                MonitorEvent::Frame(Frame::Output { seq, bytes }) => out.add(seq, &bytes),
                MonitorEvent::Frame(Frame::Resize { seq, cols, rows }) => {
                    out.flush(true).await;
                    out.send(&Feed::Resize { seq, cols, rows }).await;
                }
                MonitorEvent::Lagged(_) => out.lagged().await,
                MonitorEvent::Screen(_) => {}
                MonitorEvent::Ended | MonitorEvent::Lost(_) => {
                    out.flush(true).await;
                    out.send(&Feed::Ended).await;
                    break;
                }
            },
            () = sleep_until(due), if due.is_some() => out.flush(false).await,
            _ = alive.tick() => {
                if heard.elapsed() > SILENT {
                    tracing::info!(%session, "the watcher on another node fell silent: watch ended");
                    break;
                }
                if out.quiet_for() >= ALIVE {
                    out.send(&Feed::Tick).await;
                }
            }
        }
    }
    others.watches().remove(&channel);
    // Dropping `joined` tells the person the admin left.
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// What the session's node holds for one watch before sending it.
struct Outbox {
    store: Store,
    channel: String,
    pending: Vec<u8>,
    /// The number of the last frame in `pending`.
    seq: u64,
    /// Output was dropped: the watcher hears so with the next flush.
    dropped: bool,
    /// When `pending` goes out.
    due: Option<Instant>,
    /// Bytes that may go now (a bucket refilled at [`RATE`]).
    tokens: f64,
    filled: Instant,
    sent_at: Instant,
}

impl Outbox {
    fn new(store: Store, channel: String) -> Outbox {
        let now = Instant::now();
        Outbox {
            store,
            channel,
            pending: Vec::new(),
            seq: 0,
            dropped: false,
            due: None,
            tokens: RATE as f64,
            filled: now,
            sent_at: now,
        }
    }

    fn add(&mut self, seq: u64, bytes: &[u8]) {
        self.pending.extend_from_slice(bytes);
        self.seq = seq;
        self.due.get_or_insert_with(|| Instant::now() + GATHER);
        if self.pending.len() > HELD {
            // Dropped here, redrawn there.
            self.pending = Vec::new();
            self.dropped = true;
        }
    }

    /// Sends what waits, as far as the rate allows (all of it when `all`:
    /// before a resize, a screen or the end, which must follow it).
    async fn flush(&mut self, all: bool) {
        if std::mem::take(&mut self.dropped) {
            self.lagged().await;
            return;
        }
        let now = Instant::now();
        self.tokens = (self.tokens + now.duration_since(self.filled).as_secs_f64() * RATE as f64)
            .min(RATE as f64);
        self.filled = now;
        let mut sent = 0;
        while sent < self.pending.len() {
            if !all && self.tokens < CHUNK as f64 {
                break;
            }
            let end = (sent + CHUNK).min(self.pending.len());
            let data = BASE64.encode(&self.pending[sent..end]);
            self.send(&Feed::Out {
                seq: self.seq,
                data,
            })
            .await;
            self.tokens -= (end - sent) as f64;
            sent = end;
        }
        self.pending.drain(..sent);
        self.due = (!self.pending.is_empty())
            .then(|| now + Duration::from_secs_f64(CHUNK as f64 / RATE as f64));
    }

    async fn lagged(&mut self) {
        tracing::debug!(channel = %self.channel, "a watch fell behind: output dropped, the watcher redraws");
        self.pending = Vec::new();
        self.dropped = false;
        self.due = None;
        self.send(&Feed::Lagged).await;
    }

    async fn screen(&mut self, screen: Option<Screen>) {
        let Some(screen) = screen else {
            self.send(&Feed::NoScreen).await;
            return;
        };
        let parts: Vec<&[u8]> = if screen.contents.is_empty() {
            vec![&[]]
        } else {
            screen.contents.chunks(CHUNK).collect()
        };
        let count = parts.len();
        for (n, part) in parts.into_iter().enumerate() {
            self.send(&Feed::Screen {
                seq: screen.seq,
                cols: screen.cols,
                rows: screen.rows,
                data: BASE64.encode(part),
                last: n + 1 == count,
            })
            .await;
        }
    }

    fn quiet_for(&self) -> Duration {
        self.sent_at.elapsed()
    }

    async fn send(&mut self, feed: &Feed) {
        self.sent_at = Instant::now();
        let Ok(payload) = serde_json::to_string(feed) else {
            return;
        };
        if let Err(e) = notify(&self.store, &self.channel, &payload).await {
            tracing::warn!("a watch feed could not be sent: {e}");
        }
    }
}

/// Routes a note for a watch this node feeds; false when there is no such
/// watch (it ended).
pub(super) fn route(others: &Others, channel: &str, command: Command) -> bool {
    let Some(watch) = others.watches().get(channel).cloned() else {
        return false;
    };
    match watch.try_send(command) {
        Ok(()) => true,
        Err(mpsc::error::TrySendError::Full(_)) => {
            tracing::warn!(
                "a watch from another node sends faster than its session takes it: a note was dropped"
            );
            true
        }
        Err(mpsc::error::TrySendError::Closed(_)) => false,
    }
}
