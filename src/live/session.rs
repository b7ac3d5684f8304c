//! The relay's handles on its registered session: [`LiveSession`], which
//! unregisters it when dropped and receives its control messages, and the
//! cloneable [`Publisher`] for the pump.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};

use bytes::Bytes;
use jiff::Timestamp;
use tokio::sync::{broadcast, mpsc, watch};

use super::{
    ApprovalRequest, Control, Entry, Frame, Inner, KillOrder, LiveInfo, Pending, Registry, pack,
};

/// The relay's handle on its registered session. Dropping it unregisters
/// the session and ends the stream for its monitors.
#[derive(Debug)]
pub struct LiveSession {
    pub(super) entry: Arc<Entry>,
    pub(super) registry: Weak<Inner>,
    pub(super) output: broadcast::Sender<Frame>,
    pub(super) control: mpsc::Receiver<Control>,
    pub(super) input: mpsc::Receiver<Bytes>,
    pub(super) kill: watch::Receiver<Option<KillOrder>>,
    pub(super) kill_open: bool,
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

/// The publishing and counting half of a [`LiveSession`], cloneable.
#[derive(Debug, Clone)]
pub struct Publisher {
    pub(super) entry: Arc<Entry>,
    pub(super) output: broadcast::Sender<Frame>,
    pub(super) registry: Weak<Inner>,
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
