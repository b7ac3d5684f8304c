//! Watching a session: a [`Monitor`] reads its stream and asks for its
//! screen, a [`Joined`] admin types into it. Either is backed by this
//! node's registry or, for a session another node runs, by a [`Remote`]
//! feed that the `cluster` module carries between the nodes.

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
            feed: Feed::Here { entry, frames },
            seen: 0,
            ended: None,
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
            id: id.to_string(),
            by,
            sink: Sink::Here {
                input: entry.input.clone(),
                entry,
            },
        })
    }

    /// Watches a session on this node or, failing that, on the node that
    /// runs it; with `join_as`, also types into it as that admin (the
    /// person is told). `NotFound` when it runs nowhere.
    pub async fn watch_anywhere(
        &self,
        id: &str,
        join_as: Option<&str>,
    ) -> Result<(Monitor, Option<Joined>), LiveError> {
        if let Some(monitor) = self.subscribe(id) {
            let joined = join_as.map(|by| self.join(id, by)).transpose()?;
            return Ok((monitor, joined));
        }
        let Some(other) = self.inner.elsewhere.0.get() else {
            return Err(LiveError::NotFound { id: id.to_string() });
        };
        let remote = other.watch(id, join_as).await?;
        let joined = join_as.map(|by| Joined {
            id: id.to_string(),
            by: one_line(by),
            sink: Sink::There(remote.asks.clone()),
        });
        let monitor = Monitor {
            info: remote.info,
            feed: Feed::There {
                events: remote.events,
                asks: remote.asks,
            },
            seen: 0,
            ended: None,
        };
        Ok((monitor, joined))
    }
}

/// A session another node runs, as the `cluster` module feeds it to a
/// watcher here: the events in the order that node's relay published them,
/// and the way back. Dropping every sender of `asks` ends the watch (and a
/// remote join: the person is told the admin left).
#[derive(Debug)]
pub struct Remote {
    /// The session as its node listed it when the watch began.
    pub info: LiveInfo,
    pub events: mpsc::Receiver<RemoteEvent>,
    pub asks: mpsc::Sender<RemoteAsk>,
}

/// What a remote watch receives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RemoteEvent {
    Frame(Frame),
    /// The screen asked for with [`RemoteAsk::Screen`]; `None` when the
    /// session keeps no screen.
    Screen(Option<Screen>),
    /// Frames were dropped on the way (the watcher or the link was too
    /// slow): ask for a fresh screen.
    Lagged,
    Ended,
    /// The watch broke off for a reason other than the session's end.
    Lost(String),
}

/// What a remote watcher sends back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RemoteAsk {
    /// The current screen, answered with [`RemoteEvent::Screen`].
    Screen,
    /// Keystrokes of a joined admin.
    Input(Bytes),
}

/// What a monitor receives next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MonitorEvent {
    Frame(Frame),
    /// This many frames were missed: ask for a fresh [`Monitor::screen`].
    Lagged(u64),
    /// A screen asked for earlier that came after [`Monitor::screen`] gave
    /// up waiting (remote sessions): draw it, the frames that follow go on
    /// from it.
    Screen(Screen),
    /// The session is over.
    Ended,
    /// The watch broke off (the session's node stopped answering); the
    /// session may still run.
    Lost(String),
}

/// A read-only view of one session's stream.
#[derive(Debug)]
pub struct Monitor {
    info: LiveInfo,
    feed: Feed,
    /// Frames up to this number are already in the last screen snapshot.
    seen: u64,
    /// How a remote feed ended while [`Monitor::screen`] waited, for
    /// [`Monitor::next`] to say.
    ended: Option<MonitorEvent>,
}

#[derive(Debug)]
enum Feed {
    Here {
        entry: Arc<Entry>,
        frames: broadcast::Receiver<Frame>,
    },
    There {
        events: mpsc::Receiver<RemoteEvent>,
        asks: mpsc::Sender<RemoteAsk>,
    },
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
        let screen = match &mut self.feed {
            Feed::Here { entry, .. } => {
                let (reply, answer) = oneshot::channel();
                entry
                    .control
                    .send(Control::Snapshot(SnapshotRequest {
                        entry: Arc::clone(entry),
                        reply,
                    }))
                    .await
                    .ok()?;
                answer.await.ok()?
            }
            Feed::There { events, asks } => {
                if self.ended.is_some() {
                    return None;
                }
                asks.send(RemoteAsk::Screen).await.ok()?;
                // The node sends the screen in line with the frames: those
                // before it are in it.
                loop {
                    match events.recv().await {
                        Some(RemoteEvent::Screen(screen)) => break screen?,
                        Some(RemoteEvent::Frame(_) | RemoteEvent::Lagged) => {}
                        Some(RemoteEvent::Ended) | None => {
                            self.ended = Some(MonitorEvent::Ended);
                            return None;
                        }
                        Some(RemoteEvent::Lost(why)) => {
                            self.ended = Some(MonitorEvent::Lost(why));
                            return None;
                        }
                    }
                }
            }
        };
        self.seen = self.seen.max(screen.seq);
        Some(screen)
    }

    /// The next frame not already in the last snapshot.
    pub async fn next(&mut self) -> MonitorEvent {
        if let Some(end) = &self.ended {
            return end.clone();
        }
        loop {
            let frame = match &mut self.feed {
                Feed::Here { frames, .. } => match frames.recv().await {
                    Ok(frame) => frame,
                    Err(broadcast::error::RecvError::Lagged(n)) => return MonitorEvent::Lagged(n),
                    Err(broadcast::error::RecvError::Closed) => return MonitorEvent::Ended,
                },
                Feed::There { events, .. } => match events.recv().await {
                    Some(RemoteEvent::Frame(frame)) => frame,
                    Some(RemoteEvent::Screen(Some(screen))) => {
                        self.seen = self.seen.max(screen.seq);
                        return MonitorEvent::Screen(screen);
                    }
                    Some(RemoteEvent::Screen(None)) => continue,
                    // How many is not known across nodes.
                    Some(RemoteEvent::Lagged) => return MonitorEvent::Lagged(0),
                    Some(RemoteEvent::Ended) | None => return MonitorEvent::Ended,
                    Some(RemoteEvent::Lost(why)) => return MonitorEvent::Lost(why),
                },
            };
            if frame.seq() > self.seen {
                return MonitorEvent::Frame(frame);
            }
        }
    }
}

/// An admin joined to a session: what they send is typed into it. Dropping
/// it tells the session's person that the admin left.
#[derive(Debug)]
pub struct Joined {
    id: String,
    by: String,
    sink: Sink,
}

#[derive(Debug)]
enum Sink {
    Here {
        entry: Arc<Entry>,
        input: mpsc::Sender<Bytes>,
    },
    /// The remote watch's way back; its node tells the person when the
    /// watch ends.
    There(mpsc::Sender<RemoteAsk>),
}

impl Joined {
    pub fn by(&self) -> &str {
        &self.by
    }

    pub fn session_id(&self) -> &str {
        &self.id
    }

    /// Sends keystrokes, waiting while the session's input queue is full
    /// (the admin's task waits, not the relay). Err once the session ended.
    pub async fn send(&self, bytes: Bytes) -> Result<(), LiveError> {
        let sent = match &self.sink {
            Sink::Here { input, .. } => input.send(bytes).await.is_ok(),
            Sink::There(asks) => asks.send(RemoteAsk::Input(bytes)).await.is_ok(),
        };
        sent.then_some(()).ok_or_else(|| LiveError::NotFound {
            id: self.id.clone(),
        })
    }
}

impl Drop for Joined {
    fn drop(&mut self) {
        let Sink::Here { entry, .. } = &self.sink else {
            return;
        };
        {
            let mut joined = entry.joined();
            if let Some(at) = joined.iter().position(|name| *name == self.by) {
                joined.remove(at);
            }
        }
        entry.notice(format!("{} left this session", self.by));
    }
}
