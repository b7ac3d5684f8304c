//! Watching a session: a [`Monitor`] reads its stream and asks for its
//! screen, a [`Joined`] admin types into it.

use std::sync::Arc;

use bytes::Bytes;
use tokio::sync::{broadcast, mpsc, oneshot};

use super::{
    Control, Entry, Frame, LiveError, LiveInfo, Registry, Screen, SnapshotRequest, one_line,
};

impl Registry {
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
    pub(super) info: LiveInfo,
    pub(super) entry: Arc<Entry>,
    pub(super) frames: broadcast::Receiver<Frame>,
    /// Frames up to this number are already in the last screen snapshot.
    pub(super) seen: u64,
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
    pub(super) entry: Arc<Entry>,
    pub(super) input: mpsc::Sender<Bytes>,
    pub(super) by: String,
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
