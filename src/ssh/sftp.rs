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
//! Each target connection is a session row (protocol `sftp`, kind `sftp`, no
//! recording: the transfer rows are its audit) and a live session that an
//! admin can see and kill. Revoking the grant ends it within a second.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use russh::server::Msg as ServerMsg;
use russh::{ChannelMsg, ChannelReadHalf, ChannelWriteHalf};
use tokio::sync::{Semaphore, mpsc};

use super::target::{no_access, pick_account, pin_first_key, stored_credential};
use super::{Conn, Shared};
use crate::audit::{self, AuditEvent};
use crate::model::{Action, new_id};
use crate::policy::Grant;
use crate::route::Target;
use crate::sftp::tree::{self, Place};
use crate::sftp::wire::{
    self, Attrs, ClientPacket, Extension, Fields, Frames, Op, Request, ServerPacket, kind,
    open_flags, status,
};
use crate::store;
use crate::transfer::Passing;
use crate::upstream::{self, Upstream};

/// Requests in flight per session before the relay stops reading from the
/// person: bounds memory and keeps a flood from starving other sessions.
const MAX_PENDING: usize = 256;
/// Files and directories open at once per session.
const MAX_HANDLES: usize = 256;
/// Bytes from the person taken in but not yet relayed, at most.
const CLIENT_BUDGET: usize = 32 * 1024 * 1024;
/// Bytes of names per NAME packet of a virtual directory listing.
const LISTING_PIECE: usize = 64 * 1024;
/// Bytes gathered before a write to either side.
const BATCH: usize = 256 * 1024;
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
    let (tx, rx) = mpsc::channel(1024);
    let mut relay = Relay {
        shared,
        conn,
        direct: target.is_some(),
        backends: Vec::new(),
        mounts: HashMap::new(),
        handles: HashMap::new(),
        next_handle: 1,
        pending: HashMap::new(),
        to_client: BytesMut::new(),
        tx,
        stderr: Vec::new(),
        writes: Vec::new(),
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
    relay.serve(read, write, rx).await
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
    write: ChannelWriteHalf<russh::client::Msg>,
    frames: Frames,
    out: BytesMut,
    /// The extensions the target offered, with their version strings.
    extensions: Vec<(Bytes, Bytes)>,
    session_id: String,
    live: crate::live::LiveSession,
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
    mounts: HashMap<(String, String), usize>,
    handles: HashMap<u32, Open>,
    next_handle: u32,
    pending: HashMap<u32, Pending>,
    to_client: BytesMut,
    tx: mpsc::Sender<Event>,
    /// Lines for the person's stderr (the reason a session ended).
    stderr: Vec<String>,
    /// Transfer rows being written, awaited before the session rows close.
    writes: Vec<tokio::task::JoinHandle<()>>,
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
    ) -> u32 {
        // The person's channel is drained by its own future, whatever the
        // relay is waiting for: russh pushes every message of a channel
        // into a queue of 100 and stops the whole connection (window
        // adjustments included) when it is full, so a relay blocked on a
        // write to the person must still take in their next requests.
        // `budget` bounds what a flooding client can make the bastion hold.
        let budget = Arc::new(Semaphore::new(CLIENT_BUDGET));
        let (client_tx, mut client_rx) = mpsc::unbounded_channel();
        let reader = drain_client(read, client_tx, budget.clone());
        let engine = async {
            let mut frames = Frames::default();
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let shutdown = self.shared.shutdown.clone();
            loop {
                let can_read = self.pending.len() < MAX_PENDING;
                tokio::select! {
                    chunk = client_rx.recv(), if can_read => match chunk {
                        Some(Some((data, permits))) => {
                            budget.add_permits(permits);
                            frames.push(&data);
                            if let Err(e) = self.client_packets(&mut frames).await {
                                self.stderr.push(format!("rampart: sftp: {e}; closing"));
                                super::refuse_log(self.shared, self.conn, "sftp", &format!("malformed SFTP from the client: {e}")).await;
                                return 1;
                            }
                        }
                        Some(None) | None => return 0,
                    },
                    event = rx.recv() => {
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
                            let _ = self.flush(write).await;
                            return 1;
                        }
                    }
                    _ = tick.tick() => {
                        if let Some(reason) = self.check_live() {
                            self.stderr.push(format!("rampart: {reason}"));
                            if self.direct {
                                let _ = self.flush(write).await;
                                return 1;
                            }
                        }
                    }
                    _ = shutdown.cancelled() => {
                        self.stderr.push("rampart: the bastion is shutting down".into());
                        return 1;
                    }
                }
                if self.flush(write).await.is_err() {
                    return 1;
                }
            }
        };
        let exit = tokio::select! {
            exit = engine => exit,
            () = reader => 1,
        };
        for line in std::mem::take(&mut self.stderr) {
            say(write, &line).await;
        }
        self.finish().await;
        exit
    }

    /// Sends what is buffered for the person and for each target.
    async fn flush(&mut self, write: &ChannelWriteHalf<ServerMsg>) -> Result<(), russh::Error> {
        for b in &mut self.backends {
            if !b.out.is_empty() {
                let data = b.out.split().freeze();
                b.bytes_in += data.len() as u64;
                b.live.add_in(data.len() as u64);
                if b.gone.is_none() && b.write.data_bytes(data).await.is_err() {
                    b.gone = Some("the target closed the connection".into());
                }
            }
        }
        if !self.to_client.is_empty() {
            let data = self.to_client.split().freeze();
            write.data_bytes(data).await?;
        }
        Ok(())
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
            let reason = if let Some(order) = b.live.killed() {
                Some(format!(
                    "{}: session ended by {}: {}",
                    b.asset, order.by, order.reason
                ))
            } else if [Action::Download, Action::Upload, Action::Delete]
                .into_iter()
                .all(|a| policy.recheck(&b.grant, a, now).is_none())
            {
                Some(format!("{}: your access has been revoked", b.asset))
            } else {
                None
            };
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

    async fn client_packets(&mut self, frames: &mut Frames) -> Result<(), wire::WireError> {
        while let Some(packet) = frames.next_packet()? {
            let id = request_id(&packet);
            match wire::parse_client(packet) {
                Ok(ClientPacket::Init { .. }) => self.init(),
                Ok(ClientPacket::Request(req)) => self.request(req).await,
                // A packet whose id we can read gets a status; otherwise the
                // stream is not SFTP.
                Err(e) => match id {
                    Some(id) => wire::encode_status(
                        &mut self.to_client,
                        id,
                        status::BAD_MESSAGE,
                        &e.to_string(),
                    ),
                    None => return Err(e),
                },
            }
        }
        Ok(())
    }

    /// Answers INIT: version 3 and the extensions the relay passes on.
    fn init(&mut self) {
        let offered: Vec<(&[u8], &[u8])> = if self.direct {
            // What the target offers, of what the relay understands.
            self.backends[0]
                .extensions
                .iter()
                .filter(|(name, _)| Extension::from_name(name).is_some())
                .map(|(n, v)| (&n[..], &v[..]))
                .collect()
        } else {
            Extension::ALL
                .iter()
                .filter(|e| **e != Extension::ExpandPath)
                .map(|e| {
                    let version: &[u8] = match e {
                        Extension::Statvfs | Extension::Fstatvfs => b"2",
                        _ => b"1",
                    };
                    (e.name().as_bytes(), version)
                })
                .collect()
        };
        wire::encode_version(&mut self.to_client, 3, &offered);
    }

    fn reply_status(&mut self, id: u32, refusal: Refusal) {
        wire::encode_status(&mut self.to_client, id, refusal.code, &refusal.message);
    }

    async fn request(&mut self, req: Request) {
        let id = req.id;
        if self.pending.contains_key(&id) {
            return self.reply_status(
                id,
                Refusal::new(status::BAD_MESSAGE, "request id already in use"),
            );
        }
        let result = match req.op.fields() {
            Fields::Handle => self.handle_request(req).await,
            Fields::Path | Fields::TwoPaths => self.path_request(req).await,
            Fields::None => self.plain_request(req),
        };
        if let Err(refusal) = result {
            self.reply_status(id, refusal);
        }
    }

    fn plain_request(&mut self, req: Request) -> Result<(), Refusal> {
        match req.op {
            Op::Extended(Extension::Limits) if !self.direct => {
                wire::encode_limits(
                    &mut self.to_client,
                    req.id,
                    wire::MAX_PACKET as u64,
                    READ_LIMIT,
                    READ_LIMIT,
                    MAX_HANDLES as u64,
                );
                Ok(())
            }
            Op::Extended(Extension::Limits) => self.forward(0, req, Await::Plain),
            _ => Err(Refusal::new(
                status::OP_UNSUPPORTED,
                "this request is not supported through the bastion",
            )),
        }
    }

    async fn handle_request(&mut self, mut req: Request) -> Result<(), Refusal> {
        let handle = our_handle(&req.fields[0]).ok_or_else(invalid_handle)?;
        let open = self.handles.get_mut(&handle).ok_or_else(invalid_handle)?;
        let (backend, remote) = match open {
            Open::Listing { entries, next } => {
                return match req.op {
                    Op::Readdir if *next < entries.len() => {
                        // In pieces, so that no NAME packet outgrows what a
                        // client accepts (100k assets would).
                        let mut size = 0;
                        let piece: Vec<(&str, String, Attrs)> = entries[*next..]
                            .iter()
                            .take_while(|name| {
                                // At least one entry per packet.
                                let fits = size == 0 || size + 2 * name.len() + 96 < LISTING_PIECE;
                                size += 2 * name.len() + 96;
                                fits
                            })
                            .map(|name| {
                                let long = format!(
                                    "dr-xr-xr-x   1 rampart  rampart         0 Jan  1  1970 {name}"
                                );
                                (name.as_str(), long, Attrs::directory())
                            })
                            .collect();
                        *next += piece.len();
                        let rows: Vec<(&str, &str, Attrs)> =
                            piece.iter().map(|(n, l, a)| (*n, l.as_str(), *a)).collect();
                        wire::encode_name(&mut self.to_client, req.id, &rows);
                        Ok(())
                    }
                    Op::Readdir => Err(Refusal::new(status::EOF, "")),
                    Op::Close => {
                        self.handles.remove(&handle);
                        Err(Refusal::new(status::OK, ""))
                    }
                    Op::Fstat => {
                        wire::encode_attrs(&mut self.to_client, req.id, Attrs::directory());
                        Ok(())
                    }
                    _ => Err(read_only()),
                };
            }
            Open::Dir { backend, remote } => (*backend, remote.clone()),
            Open::File(f) => (f.backend, f.remote.clone()),
        };
        req.fields[0] = remote;
        let what = match req.op {
            Op::Read => {
                let (offset, _) = req.read_args().map_err(|_| invalid_handle())?;
                Await::Read { handle, offset }
            }
            Op::Write => {
                let (offset, data) = req.write_args().map_err(|_| invalid_handle())?;
                let Some(Open::File(f)) = self.handles.get_mut(&handle) else {
                    return Err(invalid_handle());
                };
                let Some(w) = f.write.as_mut() else {
                    return Err(Refusal::new(
                        status::PERMISSION_DENIED,
                        "the file is not open for writing",
                    ));
                };
                w.add(offset, data);
                Await::Write { handle }
            }
            Op::Fsetstat => {
                self.permit(backend, Action::Upload, "setstat", "")?;
                Await::Plain
            }
            Op::Close => match self.handles.remove(&handle) {
                Some(Open::File(f)) => Await::Close(f),
                _ => Await::Plain,
            },
            _ => Await::Plain,
        };
        self.forward(backend, req, what)
    }

    async fn path_request(&mut self, mut req: Request) -> Result<(), Refusal> {
        // Where the request goes, with its path fields in the target's terms.
        let backend = if self.direct {
            0
        } else {
            match self.place_request(&mut req).await? {
                Some(b) => b,
                None => return Ok(()),
            }
        };
        let path = tree::shown(req.fields.last().map(|f| &f[..]).unwrap_or(b""));
        let first = tree::shown(req.fields.first().map(|f| &f[..]).unwrap_or(b""));
        let what = match req.op {
            Op::Open => {
                let flags = req.open_flags().map_err(|_| invalid_handle())?;
                let write = flags
                    & (open_flags::WRITE
                        | open_flags::APPEND
                        | open_flags::CREAT
                        | open_flags::TRUNC)
                    != 0;
                let read = flags & open_flags::READ != 0 || !write;
                if read {
                    self.permit(backend, Action::Download, "download", &path)?;
                }
                if write {
                    self.permit(backend, Action::Upload, "upload", &path)?;
                }
                if self.handles.len() >= MAX_HANDLES {
                    return Err(Refusal::new(
                        status::FAILURE,
                        format!("too many open files through the bastion ({MAX_HANDLES})"),
                    ));
                }
                Await::Open { path, read, write }
            }
            Op::Opendir => {
                if self.handles.len() >= MAX_HANDLES {
                    return Err(Refusal::new(
                        status::FAILURE,
                        format!("too many open files through the bastion ({MAX_HANDLES})"),
                    ));
                }
                Await::Opendir
            }
            Op::Remove => self.change(backend, Action::Delete, "delete", path)?,
            Op::Rmdir => self.change(backend, Action::Delete, "rmdir", path)?,
            Op::Mkdir => self.change(backend, Action::Upload, "mkdir", path)?,
            Op::Setstat | Op::Extended(Extension::Lsetstat) => {
                self.change(backend, Action::Upload, "setstat", path)?
            }
            Op::Symlink => self.change(backend, Action::Upload, "symlink", path)?,
            Op::Extended(Extension::Hardlink) => {
                self.change(backend, Action::Upload, "hardlink", path)?
            }
            Op::Rename => self.change(
                backend,
                Action::Upload,
                "rename",
                format!("{first} -> {path}"),
            )?,
            Op::Extended(Extension::PosixRename) => {
                let shown = format!("{first} -> {path}");
                self.permit(backend, Action::Delete, "rename", &shown)?;
                self.change(backend, Action::Upload, "rename", shown)?
            }
            Op::Realpath | Op::Extended(Extension::ExpandPath) if !self.direct => Await::Realpath,
            _ => Await::Plain,
        };
        self.forward(backend, req, what)
    }

    fn change(
        &mut self,
        backend: usize,
        action: Action,
        operation: &'static str,
        path: String,
    ) -> Result<Await, Refusal> {
        self.permit(backend, action, operation, &path)?;
        Ok(Await::Change { operation, path })
    }

    /// Maps the path fields of a virtual-tree request onto one target.
    /// `Ok(None)`: the bastion answered it itself.
    async fn place_request(&mut self, req: &mut Request) -> Result<Option<usize>, Refusal> {
        // A symlink's first field is its content: relative content stays as
        // written; absolute content must name the same target.
        let symlink = req.op == Op::Symlink;
        let mut mount: Option<(String, String)> = None;
        for (i, field) in req.fields.iter_mut().enumerate() {
            if symlink && i == 0 && !field.starts_with(b"/") {
                continue;
            }
            let place = tree::locate(field).map_err(|_| Refusal::no_such_file())?;
            match place {
                Place::Mount {
                    asset,
                    account,
                    path,
                } => {
                    let here = (asset, account);
                    if mount.as_ref().is_some_and(|m| *m != here) {
                        return Err(Refusal::new(
                            status::PERMISSION_DENIED,
                            "both paths must be on the same asset and account",
                        ));
                    }
                    mount = Some(here);
                    *field = path;
                }
                place if req.fields.len() == 1 => {
                    self.virtual_request(req.id, req.op, &place)?;
                    return Ok(None);
                }
                _ => return Err(read_only()),
            }
        }
        let Some((asset, account)) = mount else {
            return Err(read_only());
        };
        match self.mounts.get(&(asset.clone(), account.clone())) {
            Some(&b) if self.backends[b].gone.is_none() => Ok(Some(b)),
            _ => self
                .mount(&asset, &account)
                .await
                .map(Some)
                .map_err(|msg| Refusal::new(status::NO_SUCH_FILE, msg)),
        }
    }

    /// A request on `/` or `/ASSET`, answered by the bastion.
    fn virtual_request(&mut self, id: u32, op: Op, place: &Place) -> Result<(), Refusal> {
        let (path, entries) = match place {
            Place::Root => ("/".to_string(), self.reachable_assets()),
            Place::Asset(asset) => {
                let accounts = self.reachable_accounts(asset);
                if accounts.is_empty() {
                    return Err(Refusal::no_such_file());
                }
                (format!("/{asset}"), accounts)
            }
            Place::Mount { .. } => return Err(read_only()),
        };
        match op {
            Op::Realpath => {
                wire::encode_name(
                    &mut self.to_client,
                    id,
                    &[(&path, &path, Attrs::directory())],
                );
            }
            Op::Stat | Op::Lstat => wire::encode_attrs(&mut self.to_client, id, Attrs::directory()),
            Op::Opendir => {
                if self.handles.len() >= MAX_HANDLES {
                    return Err(Refusal::new(status::FAILURE, "too many open directories"));
                }
                let handle = self.new_handle(Open::Listing { entries, next: 0 });
                wire::encode_handle(&mut self.to_client, id, &handle.to_be_bytes());
            }
            Op::Extended(Extension::Statvfs) => {
                return Err(Refusal::new(status::OP_UNSUPPORTED, "not a file system"));
            }
            _ => return Err(read_only()),
        }
        Ok(())
    }

    /// Assets the person may reach over SFTP, for `/`.
    fn reachable_assets(&self) -> Vec<String> {
        let now = self.shared.services.clock.now();
        self.shared
            .policy()
            .visible_assets(&self.conn.identity, now)
            .into_iter()
            .filter(|a| {
                a.protocols().any(|p| p.name == "sftp" || p.name == "ssh")
                    && a.accounts().next().is_some()
                    && [Action::Upload, Action::Download, Action::Delete]
                        .into_iter()
                        .any(|x| a.actions().contains(x))
            })
            .map(|a| a.name().to_string())
            .collect()
    }

    /// Accounts of `asset` the person may use over SFTP, for `/ASSET`.
    fn reachable_accounts(&self, asset: &str) -> Vec<String> {
        let now = self.shared.services.clock.now();
        let policy = self.shared.policy();
        let Some(visible) = policy.visible_asset(&self.conn.identity, asset, now) else {
            return Vec::new();
        };
        visible
            .accounts()
            .map(|a| a.username().to_string())
            .filter(|account| sftp_grant(self.shared, self.conn, asset, account).is_some())
            .collect()
    }

    /// Is `action` still granted on `backend`'s target? A refusal is logged
    /// as a `denied` transfer row.
    fn permit(
        &mut self,
        backend: usize,
        action: Action,
        operation: &str,
        path: &str,
    ) -> Result<(), Refusal> {
        let now = self.shared.services.clock.now();
        let b = &self.backends[backend];
        if self
            .shared
            .policy()
            .recheck(&b.grant, action, now)
            .is_some()
        {
            return Ok(());
        }
        let message = format!(
            "rampart: {action} is not permitted on {} as {}",
            b.asset, b.account
        );
        self.log(backend, operation, path, 0, "denied", None, &message);
        Err(Refusal::new(status::PERMISSION_DENIED, message))
    }

    fn forward(&mut self, backend: usize, req: Request, what: Await) -> Result<(), Refusal> {
        let b = &mut self.backends[backend];
        if let Some(reason) = &b.gone {
            return Err(Refusal::new(status::CONNECTION_LOST, reason.clone()));
        }
        req.encode(&mut b.out);
        self.pending.insert(req.id, Pending { backend, what });
        Ok(())
    }

    /// Byte accounting for a file opened on `backend`, with a kept copy
    /// under `recordings/files/SESSION/` when `recording.keep_files` is on.
    fn passing(&self, backend: usize, handle: u32, way: &str) -> Passing {
        let config = &self.shared.services.config;
        if !config.recording.keep_files {
            return Passing::new();
        }
        let dir = config
            .recording_dir()
            .join("files")
            .join(&self.backends[backend].session_id);
        Passing::keeping(
            &dir,
            &format!("{handle}{way}"),
            config.recording.keep_files_max_size,
        )
    }

    fn new_handle(&mut self, open: Open) -> u32 {
        let handle = self.next_handle;
        self.next_handle = self.next_handle.wrapping_add(1).max(1);
        self.handles.insert(handle, open);
        handle
    }

    async fn backend_event(&mut self, event: Event) {
        match event {
            Event::Data(i, data) => {
                let b = &mut self.backends[i];
                b.bytes_out += data.len() as u64;
                b.live.add_out(data.len() as u64);
                b.frames.push(&data);
                loop {
                    let packet = match self.backends[i].frames.next_packet() {
                        Ok(Some(p)) => p,
                        Ok(None) => break,
                        Err(e) => {
                            self.backends[i].gone =
                                Some(format!("the target broke the SFTP protocol: {e}"));
                            self.fail_gone();
                            break;
                        }
                    };
                    match wire::parse_server(packet) {
                        Ok(ServerPacket::Reply { code, id, body }) => self.reply(i, code, id, body),
                        Ok(ServerPacket::Version { .. }) => {}
                        Err(e) => {
                            self.backends[i].gone =
                                Some(format!("the target broke the SFTP protocol: {e}"));
                            self.fail_gone();
                            break;
                        }
                    }
                }
            }
            Event::Closed(i) => {
                let b = &mut self.backends[i];
                if b.gone.is_none() {
                    b.gone = Some(format!("{} closed the connection", b.asset));
                }
                self.fail_gone();
            }
        }
    }

    /// Answers every request outstanding on a target that is gone, and logs
    /// its open files as failed with the bytes that passed.
    fn fail_gone(&mut self) {
        let gone: Vec<(usize, String)> = self
            .backends
            .iter()
            .enumerate()
            .filter_map(|(i, b)| b.gone.clone().map(|g| (i, g)))
            .collect();
        for (i, reason) in gone {
            let ids: Vec<u32> = self
                .pending
                .iter()
                .filter(|(_, p)| p.backend == i)
                .map(|(id, _)| *id)
                .collect();
            for id in ids {
                if let Some(Pending {
                    what: Await::Close(f),
                    ..
                }) = self.pending.remove(&id)
                {
                    self.log_file(*f, Some(reason.clone()));
                }
                self.reply_status(id, Refusal::new(status::CONNECTION_LOST, reason.clone()));
            }
            let handles: Vec<u32> = self
                .handles
                .iter()
                .filter(|(_, o)| match o {
                    Open::File(f) => f.backend == i,
                    Open::Dir { backend, .. } => *backend == i,
                    Open::Listing { .. } => false,
                })
                .map(|(h, _)| *h)
                .collect();
            for h in handles {
                if let Some(Open::File(f)) = self.handles.remove(&h) {
                    self.log_file(*f, Some(reason.clone()));
                }
            }
            let b = &self.backends[i];
            self.mounts.remove(&(b.asset.clone(), b.account.clone()));
        }
    }

    /// A target's answer to request `id`.
    fn reply(&mut self, backend: usize, code: u8, id: u32, body: Bytes) {
        let Some(pending) = self.pending.remove(&id) else {
            // An answer to nothing: the target is confused; drop it.
            tracing::warn!(asset = %self.backends[backend].asset, id, "sftp answer to no request");
            return;
        };
        if pending.backend != backend {
            self.pending.insert(id, pending);
            return;
        }
        let status_text = || {
            wire::status_of(&body)
                .map(|(c, m)| {
                    if m.is_empty() {
                        format!("status {c}")
                    } else {
                        m
                    }
                })
                .unwrap_or_else(|_| "malformed status".into())
        };
        match pending.what {
            Await::Plain => wire::encode_reply(&mut self.to_client, code, id, &body),
            Await::Open { path, read, write } => {
                if code == kind::HANDLE
                    && let Ok(remote) = wire::first_string(&body)
                {
                    let handle = self.next_handle;
                    let file = FileState {
                        backend,
                        remote,
                        path,
                        read: read.then(|| self.passing(backend, handle, "r")),
                        write: write.then(|| self.passing(backend, handle, "w")),
                        error: None,
                    };
                    let handle = self.new_handle(Open::File(Box::new(file)));
                    wire::encode_handle(&mut self.to_client, id, &handle.to_be_bytes());
                    return;
                }
                let operation = if write { "upload" } else { "download" };
                self.log(backend, operation, &path, 0, "failed", None, &status_text());
                wire::encode_reply(&mut self.to_client, code, id, &body);
            }
            Await::Opendir => {
                if code == kind::HANDLE
                    && let Ok(remote) = wire::first_string(&body)
                {
                    let handle = self.new_handle(Open::Dir { backend, remote });
                    wire::encode_handle(&mut self.to_client, id, &handle.to_be_bytes());
                    return;
                }
                wire::encode_reply(&mut self.to_client, code, id, &body);
            }
            Await::Read { handle, offset } => {
                if let Some(Open::File(f)) = self.handles.get_mut(&handle) {
                    if code == kind::DATA {
                        if let (Ok(data), Some(r)) = (wire::first_string(&body), f.read.as_mut()) {
                            r.add(offset, data);
                        }
                    } else if code == kind::STATUS
                        && !matches!(wire::status_of(&body), Ok((status::EOF, _)))
                    {
                        f.error.get_or_insert_with(status_text);
                    }
                }
                wire::encode_reply(&mut self.to_client, code, id, &body);
            }
            Await::Write { handle } => {
                if code != kind::STATUS || !matches!(wire::status_of(&body), Ok((status::OK, _))) {
                    let text = status_text();
                    if let Some(Open::File(f)) = self.handles.get_mut(&handle) {
                        f.error.get_or_insert(text);
                    }
                }
                wire::encode_reply(&mut self.to_client, code, id, &body);
            }
            Await::Close(f) => {
                let error = match wire::status_of(&body) {
                    Ok((status::OK, _)) if code == kind::STATUS => None,
                    _ => Some(status_text()),
                };
                self.log_file(*f, error);
                wire::encode_reply(&mut self.to_client, code, id, &body);
            }
            Await::Realpath => {
                let b = &self.backends[backend];
                match wire::first_name(&body) {
                    Ok((count, name, rest)) if code == kind::NAME => {
                        let mapped = tree::virtual_path(&b.asset, &b.account, &name);
                        wire::encode_name_renamed(&mut self.to_client, id, count, &mapped, &rest);
                    }
                    _ => wire::encode_reply(&mut self.to_client, code, id, &body),
                }
            }
            Await::Change { operation, path } => {
                let ok =
                    code == kind::STATUS && matches!(wire::status_of(&body), Ok((status::OK, _)));
                let (result, error) = if ok {
                    ("ok", String::new())
                } else {
                    ("failed", status_text())
                };
                self.log(backend, operation, &path, 0, result, None, &error);
                wire::encode_reply(&mut self.to_client, code, id, &body);
            }
        }
    }

    /// The rows for a closed (or abandoned) file: one per direction used.
    fn log_file(&mut self, f: FileState, error: Option<String>) {
        let error = f.error.or(error);
        let result = if error.is_some() { "failed" } else { "ok" };
        let error = error.unwrap_or_default();
        for (operation, passing) in [("download", f.read), ("upload", f.write)] {
            let Some(passing) = passing else { continue };
            let size = passing.bytes();
            let passed = passing.finish(error.is_empty());
            self.log(
                f.backend,
                operation,
                &f.path,
                size,
                result,
                passed.sha256,
                &error,
            );
        }
    }

    /// Writes one transfer row, in its own transaction, without holding up
    /// the relay.
    #[allow(clippy::too_many_arguments)]
    fn log(
        &mut self,
        backend: usize,
        operation: &str,
        path: &str,
        size: u64,
        result: &str,
        sha256: Option<String>,
        error: &str,
    ) {
        let b = &self.backends[backend];
        let event = AuditEvent::Transfer {
            session_id: b.session_id.clone(),
            user_name: b.grant.user_name().to_string(),
            asset_name: b.asset.clone(),
            account: b.account.clone(),
            operation: operation.to_string(),
            path: path.to_string(),
            size: i64::try_from(size).unwrap_or(i64::MAX),
            result: result.to_string(),
            sha256,
            error: error.to_string(),
        };
        // Written by a task of its own so the relay never waits on the
        // database; the chain orders rows by commit.
        let services = self.shared.services.clone();
        self.writes.retain(|w| !w.is_finished());
        self.writes.push(
            self.shared
                .tracker
                .spawn(async move { audit::record_alone(&services, &event).await }),
        );
    }

    /// Connects `asset` as `account` for SFTP: grant, secret, connection,
    /// subsystem, version exchange, session row, reader task.
    async fn mount(&mut self, asset: &str, account: &str) -> Result<usize, String> {
        let shared = self.shared;
        let grant = sftp_grant(shared, self.conn, asset, account)
            .ok_or_else(|| no_access(asset).trim_start_matches("rampart: ").to_string())?;
        let credential = match grant.account() {
            crate::policy::GrantAccount::Stored { account_id, .. } => {
                stored_credential(shared, account_id)
                    .await
                    .map_err(|m| format!("{asset}: {m}"))?
            }
            crate::policy::GrantAccount::Input { .. } => {
                return Err(format!(
                    "{asset}: account {account} is typed in at connect time, which SFTP cannot ask for"
                ));
            }
        };
        let pinned = match shared.services.store.conn().await {
            Ok(mut c) => store::assets::host_keys(&mut c, grant.asset_id())
                .await
                .unwrap_or_default(),
            Err(_) => Vec::new(),
        };
        let upstream = upstream::connect_ssh(
            &grant,
            account,
            credential,
            pinned.clone(),
            &shared.upstream,
        )
        .await
        .map_err(|e| e.to_string())?;
        if pinned.is_empty() {
            pin_first_key(shared, &grant, &upstream).await;
        }
        let opened = async {
            let channel = upstream.open_session().await.map_err(|e| e.to_string())?;
            let (mut read, write) = channel.split();
            write
                .request_subsystem(true, "sftp")
                .await
                .map_err(|e| e.to_string())?;
            loop {
                match read.wait().await {
                    Some(ChannelMsg::Success) => break,
                    Some(ChannelMsg::Failure)
                    | None
                    | Some(ChannelMsg::Close | ChannelMsg::Eof) => {
                        return Err("the target does not offer SFTP".to_string());
                    }
                    Some(_) => {}
                }
            }
            let mut hello = BytesMut::new();
            wire::encode_init(&mut hello, 3);
            write
                .data_bytes(hello.freeze())
                .await
                .map_err(|e| e.to_string())?;
            let mut frames = Frames::default();
            let version = loop {
                match read.wait().await {
                    Some(ChannelMsg::Data { data }) => {
                        frames.push(&data);
                        match frames.next_packet() {
                            Ok(Some(p)) => {
                                break wire::parse_server(p).map_err(|e| e.to_string())?;
                            }
                            Ok(None) => {}
                            Err(e) => return Err(e.to_string()),
                        }
                    }
                    Some(ChannelMsg::ExtendedData { .. } | ChannelMsg::WindowAdjusted { .. }) => {}
                    _ => return Err("the target closed SFTP at the start".to_string()),
                }
            };
            let ServerPacket::Version {
                version,
                extensions,
            } = version
            else {
                return Err("the target did not answer with its SFTP version".to_string());
            };
            if version < 3 {
                return Err(format!("the target speaks SFTP version {version}, not 3"));
            }
            Ok((read, write, frames, extensions))
        };
        let (read, write, frames, extensions) =
            match tokio::time::timeout(Duration::from_secs(20), opened).await {
                Ok(Ok(x)) => x,
                Ok(Err(e)) => {
                    upstream.disconnect().await;
                    return Err(format!("{asset}: {e}"));
                }
                Err(_) => {
                    upstream.disconnect().await;
                    return Err(format!("{asset}: no SFTP answer within 20 s"));
                }
            };

        let now = shared.services.clock.now();
        let session_id = new_id();
        let new = store::sessions::NewSession {
            id: session_id.clone(),
            user_id: grant.user_id().to_string(),
            user_name: grant.user_name().to_string(),
            asset_id: grant.asset_id().to_string(),
            asset_name: grant.asset_name().to_string(),
            account: account.to_string(),
            protocol: "sftp".into(),
            kind: "sftp".into(),
            source: self.conn.peer.ip().to_string(),
            recording: None,
        };
        if let Err(e) = super::target::insert_session(shared, &new).await {
            tracing::error!("cannot write the session row: {e}");
            upstream.disconnect().await;
            return Err("the session cannot be audited, so it is refused; tell an admin".into());
        }
        let live = shared.live.register(crate::live::SessionInfo {
            id: session_id.clone(),
            user: grant.user_name().to_string(),
            asset: grant.asset_name().to_string(),
            account: account.to_string(),
            protocol: "sftp".into(),
            kind: "sftp".into(),
            source: self.conn.peer.ip().to_string(),
            started_at: now,
            cols: 0,
            rows: 0,
        });
        let index = self.backends.len();
        let tx = self.tx.clone();
        tokio::spawn(read_target(index, read, tx));
        self.backends.push(Backend {
            asset: asset.to_string(),
            account: account.to_string(),
            grant,
            upstream,
            write,
            frames,
            out: BytesMut::new(),
            extensions,
            session_id,
            live,
            bytes_in: 0,
            bytes_out: 0,
            gone: None,
        });
        self.mounts
            .insert((asset.to_string(), account.to_string()), index);
        Ok(index)
    }

    /// Closes every target: files still open are logged as failed, and
    /// each session row is finished.
    async fn finish(&mut self) {
        let open: Vec<u32> = self.handles.keys().copied().collect();
        for h in open {
            if let Some(Open::File(f)) = self.handles.remove(&h) {
                self.log_file(*f, Some("the session ended with the file open".into()));
            }
        }
        let ids: Vec<u32> = self.pending.keys().copied().collect();
        for id in ids {
            if let Some(Pending {
                what: Await::Close(f),
                ..
            }) = self.pending.remove(&id)
            {
                self.log_file(
                    *f,
                    Some("the session ended before the target confirmed".into()),
                );
            }
        }
        for w in std::mem::take(&mut self.writes) {
            let _ = w.await;
        }
        for b in std::mem::take(&mut self.backends) {
            let _ = b.write.eof().await;
            let _ = b.write.close().await;
            b.upstream.disconnect().await;
            let (status, reason) = match &b.gone {
                Some(reason) => ("closed", reason.clone()),
                None => ("closed", "client closed".to_string()),
            };
            let ending = store::sessions::Ending {
                status: status.into(),
                reason,
                recording_sha256: None,
                bytes_in: i64::try_from(b.bytes_in).unwrap_or(i64::MAX),
                bytes_out: i64::try_from(b.bytes_out).unwrap_or(i64::MAX),
                exit_status: None,
            };
            if let Err(e) = super::target::end_session(self.shared, &b.session_id, &ending).await {
                tracing::error!(session = %b.session_id, "cannot close the session row: {e}");
            }
        }
    }
}

/// Takes in the person's channel until it ends: each chunk with the budget
/// permits it holds (`None` at the end). Never returns.
async fn drain_client(
    read: &mut ChannelReadHalf,
    tx: mpsc::UnboundedSender<Option<(Bytes, usize)>>,
    budget: Arc<Semaphore>,
) {
    loop {
        match read.wait().await {
            Some(ChannelMsg::Data { data }) => {
                let permits = data.len().min(CLIENT_BUDGET);
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

/// Passes a target's SFTP bytes to the relay until the channel ends.
async fn read_target(index: usize, mut read: ChannelReadHalf, tx: mpsc::Sender<Event>) {
    loop {
        match read.wait().await {
            Some(ChannelMsg::Data { data }) => {
                if tx.send(Event::Data(index, data)).await.is_err() {
                    return;
                }
            }
            Some(ChannelMsg::Eof | ChannelMsg::Close) | None => break,
            Some(_) => {}
        }
    }
    let _ = tx.send(Event::Closed(index)).await;
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
