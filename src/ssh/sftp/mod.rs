//! SFTP through the bastion. The bastion terminates the person's SFTP
//! channel and speaks SFTP to each target itself, relaying packet by packet:
//! requests are pipelined (the person's client keeps many reads or writes
//! outstanding and the relay never waits for one answer before passing the
//! next request on), and every request is checked on the way:
//!
//! - `upload` for anything that writes or creates (open for write, mkdir,
//!   setstat, symlink, hardlink, rename), `download` for open for read,
//!   `delete` for remove, rmdir and a rename that replaces (posix-rename);
//!   listing and stat need only the session's grant. A refused request gets
//!   the SFTP permission-denied status with a one-line message, never
//!   reaches the target, and leaves a `denied` row in the transfer log.
//! - Every file opened, and every change, is a row in `transfers` (in the
//!   audit chain) with the bytes that passed and, for whole-file uploads and
//!   downloads, their SHA-256 computed as they passed.
//!
//! Two ways in (DESIGN.md §2): the target in the login name
//! (`alice@root@web1`: one target, paths passed as they are), or the virtual
//! tree (`alice`: `/ASSET/ACCOUNT/...`, targets connected on first use and
//! kept for the session). Handles the person sees are the bastion's own, so
//! one target's handle can never be used against another.
//!
//! What a client can make the bastion hold is bounded whatever it sends:
//! every message from the person costs at least `MESSAGE_COST` of a
//! `CLIENT_BUDGET` (so a flood of empty or tiny messages stalls the
//! client like a large upload does), requests in flight are capped at
//! `MAX_PENDING`, open handles at `MAX_HANDLES`, and a file's bytes
//! held for its digest are capped per chunk and in total
//! ([`crate::transfer::Passing`]). Transfer rows go to the audit writer,
//! waiting for room when its queue is full. Towards the targets, replies
//! not yet taken are capped at `TARGET_QUEUE` messages, and requests not
//! yet written at `WRITE_BACKLOG` bytes per target: each target is written
//! by a task of its own, so the relay always takes replies in while a
//! target's window is shut (an `sftp-server` stops reading until its
//! replies are taken), and stops reading the person's requests instead.
//! Towards the person, answers go out through a writer of their own
//! (`outbox`), so the relay never waits on the person's connection; past
//! `PERSON_BACKLOG` bytes waiting there it stops taking the targets'
//! replies.
//!
//! Each target connection is a session row (protocol `sftp`, kind `sftp`, no
//! recording: the transfer rows are its audit) and a live session that an
//! admin can see and kill. Revoking the grant ends it within a second.

mod backend;
mod outbox;
mod reply;
mod request;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use russh::server::Msg as ServerMsg;
use russh::{ChannelMsg, ChannelReadHalf, ChannelWriteHalf};
use tokio::sync::{Semaphore, mpsc};

use super::target::{connect_target, no_access, pick_account};
use super::{Conn, Shared};
use crate::audit::AuditEvent;
use crate::model::Action;
use crate::policy::Grant;
use crate::route::Target;
use crate::session::Stop;
use crate::sftp::tree::{self, Place};
use crate::sftp::wire::{
    self, Attrs, ClientPacket, Extension, Fields, Frames, Op, Request, ServerPacket, kind,
    open_flags, status,
};
use crate::transfer::Passing;
use crate::upstream::Upstream;

/// Requests in flight per session before the relay stops reading from the
/// person: bounds memory and keeps a flood from starving other sessions.
const MAX_PENDING: usize = 256;
/// Files and directories open at once per session.
const MAX_HANDLES: usize = 256;
/// Bytes from the person taken in but not yet relayed, at most.
const CLIENT_BUDGET: usize = 2 * 1024 * 1024;
/// What one message from the person costs against the budget at least,
/// whatever it carries (zero bytes included): about what holding it costs
/// (the queue's slot, the buffer and the allocator's overhead), rounded up.
const MESSAGE_COST: usize = 1024;
/// Bytes of names per NAME packet of a virtual directory listing.
const LISTING_PIECE: usize = 64 * 1024;
/// Bytes gathered before a write to either side.
const BATCH: usize = 256 * 1024;
/// Bytes of requests queued for one target before the relay stops reading
/// the person's requests ([`backend::TargetWriter`]).
const WRITE_BACKLOG: usize = 1024 * 1024;
/// Bytes waiting for the person ([`outbox`]) past which the relay stops
/// taking the targets' replies (the targets then wait); the person's own
/// requests are taken until [`CLIENT_BUDGET`] bytes wait, so a client
/// that does not read its answers stalls only its own connection.
const PERSON_BACKLOG: usize = 1024 * 1024;
/// How long the answers still queued at the end, and the line saying why
/// it ended, may take to reach the person: one who stopped reading does not
/// hold a killed session or a shutdown.
const FINAL_DRAIN: Duration = Duration::from_secs(10);
/// Messages from the targets queued for the relay: the replies it has not
/// taken yet, up to 32 KiB each. Readers wait when it is full, and the
/// targets with them.
const TARGET_QUEUE: usize = 32;
/// What the relay answers to `limits@openssh.com` in the virtual tree:
/// OpenSSH's own sftp-server limits.
const READ_LIMIT: u64 = 256 * 1024 - 1024;

/// Runs an SFTP subsystem channel until the person or the target ends it;
/// returns the channel's exit status.
pub async fn run(
    shared: &Arc<Shared>,
    conn: &Conn,
    target: Option<Target>,
    read: &mut ChannelReadHalf,
    write: &ChannelWriteHalf<ServerMsg>,
) -> u32 {
    let (tx, rx) = mpsc::channel(TARGET_QUEUE);
    let (outbox, sending) = outbox::outbox();
    let mut relay = Relay {
        shared,
        conn,
        direct: target.is_some(),
        backends: Vec::new(),
        drained: Arc::new(tokio::sync::Notify::new()),
        mounts: HashMap::new(),
        handles: HashMap::new(),
        next_handle: 1,
        pending: HashMap::new(),
        to_client: BytesMut::new(),
        outbox,
        tx,
        stderr: Vec::new(),
        rows: Vec::new(),
    };
    if let Some(target) = target {
        let account = match target.account.clone() {
            Some(a) => a,
            None => match pick_account(shared, conn, &target.asset) {
                Ok(a) => a,
                Err(msg) => {
                    say(write, &msg).await;
                    return 1;
                }
            },
        };
        if let Err(msg) = relay.mount(&target.asset, &account).await {
            say(write, &format!("rampart: {msg}")).await;
            return 1;
        }
    }
    relay.serve(read, write, rx, sending).await
}

async fn say(write: &ChannelWriteHalf<ServerMsg>, text: &str) {
    let _ = write
        .extended_data_bytes(1, Bytes::from(format!("{text}\n")))
        .await;
}

/// One target connection with its SFTP channel.
struct Backend {
    asset: String,
    account: String,
    grant: Grant,
    upstream: Upstream,
    writer: backend::TargetWriter,
    frames: Frames,
    out: BytesMut,
    /// The extensions the target offered, with their version strings.
    extensions: Vec<(Bytes, Bytes)>,
    /// Opened when the target answered; ended in `finish`.
    session: crate::session::Session,
    bytes_in: u64,
    bytes_out: u64,
    /// Set once the target closed or broke the protocol.
    gone: Option<String>,
}

/// Something a backend's reader task saw.
enum Event {
    Data(usize, Bytes),
    Closed(usize),
}

/// An open file or directory, under the bastion's handle.
enum Open {
    File(Box<FileState>),
    Dir {
        backend: usize,
        remote: Bytes,
    },
    /// A directory of the virtual tree, listed by the bastion; `next` is
    /// the first entry not yet sent.
    Listing {
        entries: Vec<String>,
        next: usize,
    },
}

struct FileState {
    backend: usize,
    remote: Bytes,
    path: String,
    read: Option<Passing>,
    write: Option<Passing>,
    error: Option<String>,
}

/// What the relay does with the answer to a request it passed on.
enum Await {
    Plain,
    Open {
        path: String,
        read: bool,
        write: bool,
    },
    Opendir,
    Read {
        handle: u32,
        offset: u64,
    },
    Write {
        handle: u32,
    },
    Close(Box<FileState>),
    Realpath,
    /// A change to the target's tree: logged with its result.
    Change {
        operation: &'static str,
        path: String,
    },
}

struct Pending {
    backend: usize,
    what: Await,
}

struct Relay<'a> {
    shared: &'a Arc<Shared>,
    conn: &'a Conn,
    direct: bool,
    backends: Vec<Backend>,
    /// Told when a target's writer has room again or failed.
    drained: Arc<tokio::sync::Notify>,
    mounts: HashMap<(String, String), usize>,
    handles: HashMap<u32, Open>,
    next_handle: u32,
    pending: HashMap<u32, Pending>,
    /// Answers for the person, gathered into batches for [`Relay::flush`].
    to_client: BytesMut,
    outbox: outbox::Outbox,
    tx: mpsc::Sender<Event>,
    /// Lines for the person's stderr (the reason a session ended).
    stderr: Vec<String>,
    /// Transfer rows not yet handed to the audit writer.
    rows: Vec<(AuditEvent, jiff::Timestamp)>,
}

/// Why a request is answered by the bastion instead of a target.
struct Refusal {
    code: u32,
    message: String,
}

impl Refusal {
    fn new(code: u32, message: impl Into<String>) -> Refusal {
        Refusal {
            code,
            message: message.into(),
        }
    }
    fn no_such_file() -> Refusal {
        Refusal::new(status::NO_SUCH_FILE, "No such file")
    }
}

impl<'a> Relay<'a> {
    async fn serve(
        &mut self,
        read: &mut ChannelReadHalf,
        write: &ChannelWriteHalf<ServerMsg>,
        mut rx: mpsc::Receiver<Event>,
        sending: outbox::Sending,
    ) -> u32 {
        // The person's channel is drained by its own future, whatever the
        // relay is waiting for: russh pushes every message of a channel
        // into a queue ([`crate::upstream::CHANNEL_QUEUE`]) and stops the
        // whole connection (window adjustments included) when it is full,
        // so the relay must go on taking in their requests whatever else it
        // waits for: answers go out through the outbox's writer, never
        // awaited here. `budget` bounds what a flooding client can make the
        // bastion hold.
        let budget = Arc::new(Semaphore::new(CLIENT_BUDGET));
        let (client_tx, mut client_rx) = mpsc::unbounded_channel();
        let reader = drain_client(read, client_tx, budget.clone());
        let writer = sending.run(write);
        tokio::pin!(writer);
        let sent = self.outbox.sent();
        let engine = async {
            let mut frames = Frames::default();
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let shutdown = self.shared.shutdown.clone();
            loop {
                let waiting = self.outbox.queued();
                let can_read = self.pending.len() < MAX_PENDING
                    && waiting < CLIENT_BUDGET
                    && !self.backends.iter().any(|b| b.writer.full());
                let can_answer = waiting < PERSON_BACKLOG;
                let drained = self.drained.clone();
                tokio::select! {
                    chunk = client_rx.recv(), if can_read => match chunk {
                        Some(Some((data, permits))) => {
                            budget.add_permits(permits);
                            frames.push(&data);
                            if let Err(e) = self.client_packets(&mut frames).await {
                                self.stderr.push(format!("rampart: sftp: {e}; closing"));
                                crate::ssh::refuse_log(self.shared, self.conn, "sftp", &format!("malformed SFTP from the client: {e}")).await;
                                return 1;
                            }
                        }
                        Some(None) | None => return 0,
                    },
                    event = rx.recv(), if can_answer => {
                        let Some(event) = event else { return 1 };
                        self.backend_event(event).await;
                        // Drain what else is ready so writes go out in batches.
                        while self.to_client.len() < BATCH {
                            match rx.try_recv() {
                                Ok(event) => self.backend_event(event).await,
                                Err(_) => break,
                            }
                        }
                        if self.direct && self.backends.first().is_some_and(|b| b.gone.is_some()) {
                            self.flush();
                            return 1;
                        }
                    }
                    () = drained.notified() => {}
                    () = sent.notified() => {}
                    _ = tick.tick() => {
                        if let Some(reason) = self.check_live() {
                            self.stderr.push(format!("rampart: {reason}"));
                            if self.direct {
                                self.flush();
                                return 1;
                            }
                        }
                    }
                    _ = shutdown.cancelled() => {
                        self.stderr.push("rampart: the bastion is shutting down".into());
                        return 1;
                    }
                }
                self.write_rows().await;
                self.flush();
            }
        };
        let mut writer_done = false;
        let exit = tokio::select! {
            exit = engine => exit,
            () = reader => 1,
            _ = &mut writer => {
                // The person's channel failed.
                writer_done = true;
                1
            }
        };
        // What was answered before the end reaches the person before the
        // reason and the exit status, within FINAL_DRAIN.
        self.outbox.close();
        let lines = std::mem::take(&mut self.stderr);
        let last_words = async {
            if !writer_done {
                let _ = writer.await;
            }
            for line in lines {
                say(write, &line).await;
            }
        };
        let _ = tokio::time::timeout(FINAL_DRAIN, last_words).await;
        self.finish().await;
        exit
    }

    /// Sends what is buffered for each target, and queues what is for the
    /// person.
    fn flush(&mut self) {
        for b in &mut self.backends {
            if b.gone.is_none() && b.writer.failed() {
                b.gone = Some("the target closed the connection".into());
            }
            if !b.out.is_empty() {
                let data = b.out.split().freeze();
                b.bytes_in += data.len() as u64;
                b.session.live().add_in(data.len() as u64);
                if b.gone.is_none() {
                    b.writer.send(data);
                }
            }
        }
        if !self.to_client.is_empty() {
            self.outbox.push(self.to_client.split().freeze());
        }
    }

    /// Kill orders and revocations, once a second. In the virtual tree a
    /// killed or revoked target is closed and the others go on.
    fn check_live(&mut self) -> Option<String> {
        let policy = self.shared.policy();
        let now = self.shared.services.clock.now();
        let mut ended = None;
        for b in &mut self.backends {
            if b.gone.is_some() {
                continue;
            }
            let allowed = [Action::Download, Action::Upload, Action::Delete]
                .into_iter()
                .any(|a| policy.recheck(&b.grant, a, now).is_some());
            let reason = b.session.stop_now(allowed).map(|stop| match stop {
                Stop::Killed { reason, by } => {
                    format!("{}: session ended by {by}: {reason}", b.asset)
                }
                Stop::Revoked | Stop::Shutdown => {
                    format!("{}: your access has been revoked", b.asset)
                }
            });
            if let Some(reason) = reason {
                b.gone = Some(reason.clone());
                ended = Some(reason);
            }
        }
        if ended.is_some() {
            self.fail_gone();
        }
        ended
    }
}

/// Where the person's channel messages come from: the channel, or a test's
/// stand-in.
trait Incoming {
    fn next(&mut self) -> impl std::future::Future<Output = Option<ChannelMsg>> + Send;
}

impl Incoming for ChannelReadHalf {
    async fn next(&mut self) -> Option<ChannelMsg> {
        self.wait().await
    }
}

/// Takes in the person's channel until it ends: each chunk with the budget
/// permits it holds (`None` at the end). Never returns.
async fn drain_client(
    read: &mut impl Incoming,
    tx: mpsc::UnboundedSender<Option<(Bytes, usize)>>,
    budget: Arc<Semaphore>,
) {
    loop {
        match read.next().await {
            Some(ChannelMsg::Data { data }) => {
                // Every message counts, empty ones too: what is held is
                // the message, not only the bytes it carries.
                let permits = data.len().clamp(MESSAGE_COST, CLIENT_BUDGET);
                // Only a client sending far more than it has asked answers
                // for waits here; it then stalls its own connection only.
                if let Ok(p) = budget.acquire_many(permits as u32).await {
                    p.forget();
                }
                if tx.send(Some((data, permits))).is_err() {
                    break;
                }
            }
            Some(ChannelMsg::Eof | ChannelMsg::Close) | None => {
                let _ = tx.send(None);
                break;
            }
            Some(_) => {}
        }
    }
    std::future::pending::<()>().await
}

/// The grant for SFTP to `account` on `asset`: over the asset's `sftp`
/// protocol if it declares one the person may use, else over its `ssh`
/// protocol (SFTP is an SSH subsystem); with any of upload, download or
/// delete. Typed-in (@INPUT) accounts cannot be used: SFTP has no prompt.
pub fn sftp_grant(shared: &Shared, conn: &Conn, asset: &str, account: &str) -> Option<Grant> {
    let policy = shared.policy();
    let now = shared.services.clock.now();
    for protocol in ["sftp", "ssh"] {
        for action in [Action::Download, Action::Upload, Action::Delete] {
            if let Some(g) = policy.authorize(&conn.identity, asset, account, protocol, action, now)
                && !g.account().is_typed_in()
            {
                return Some(g);
            }
        }
    }
    None
}

/// The id of a request packet, when it is long enough to have one.
fn request_id(packet: &[u8]) -> Option<u32> {
    let id = packet.get(1..5)?;
    (packet[0] != kind::INIT).then(|| u32::from_be_bytes([id[0], id[1], id[2], id[3]]))
}

fn our_handle(field: &[u8]) -> Option<u32> {
    let bytes: [u8; 4] = field.try_into().ok()?;
    Some(u32::from_be_bytes(bytes))
}

fn invalid_handle() -> Refusal {
    Refusal::new(status::FAILURE, "invalid handle")
}

fn read_only() -> Refusal {
    Refusal::new(
        status::PERMISSION_DENIED,
        "the bastion's top levels are read-only: files live under /ASSET/ACCOUNT/",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An endless flood of one kind of message, counted as it is taken.
    struct Flood {
        chunk: Bytes,
        taken: Arc<std::sync::atomic::AtomicUsize>,
    }

    impl Incoming for Flood {
        async fn next(&mut self) -> Option<ChannelMsg> {
            self.taken
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            // Let the test's timer run on a single-threaded runtime.
            tokio::task::yield_now().await;
            Some(ChannelMsg::Data {
                data: self.chunk.clone(),
            })
        }
    }

    /// How many messages of `chunk` the bastion takes in while its relay
    /// takes nothing (a target or a person that does not keep up).
    async fn taken_while_stalled(chunk: Bytes) -> usize {
        let taken = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let mut flood = Flood {
            chunk,
            taken: taken.clone(),
        };
        let (tx, _rx) = mpsc::unbounded_channel();
        let budget = Arc::new(Semaphore::new(CLIENT_BUDGET));
        let _ = tokio::time::timeout(
            Duration::from_millis(300),
            drain_client(&mut flood, tx, budget),
        )
        .await;
        taken.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Empty data messages cost what they hold in memory: a flood of them is
    /// cut off by the budget as a large transfer is, instead of piling up
    /// without limit while the relay is stalled.
    #[tokio::test]
    async fn zero_length_messages_count_against_the_budget() {
        let large = taken_while_stalled(Bytes::from(vec![0u8; 32 * 1024])).await;
        assert_eq!(large, CLIENT_BUDGET / (32 * 1024) + 1, "large chunks");
        let empty = taken_while_stalled(Bytes::new()).await;
        assert!(
            empty <= CLIENT_BUDGET / MESSAGE_COST + 1,
            "{empty} empty messages taken in while the relay took none"
        );
        let tiny = taken_while_stalled(Bytes::from_static(b"x")).await;
        assert!(
            tiny <= CLIENT_BUDGET / MESSAGE_COST + 1,
            "{tiny} one-byte messages taken in while the relay took none"
        );
    }
}
