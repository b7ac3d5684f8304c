//! The control socket: how the ops CLI, a separate process, reaches the
//! running server's live registry (DESIGN.md §3: `session kill` and
//! `session list --live` take effect within two seconds; so do
//! `session approvals` and `session approve|deny`).
//!
//! A unix socket, `data_dir/control.sock`, mode 0600, speaking JSON lines:
//! one request line, one answer line, then the server closes. This module
//! owns the socket file's life (a stale file from a crashed server is
//! replaced; a live server is never displaced; the file goes at shutdown) and
//! the wire format. It must never decide who may do what: the CLI runs its
//! `ops` role checks and writes the operation-log row before it asks (after,
//! for an answer to a waiting request, which only the server can match to
//! its requester: the registry refuses the requester's own answer); the
//! socket itself only admits its owner's uid (and root), which is the same
//! trust as write access to the database.

use std::future::Future;
use std::io;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::{Semaphore, mpsc};
use tokio::task::JoinSet;
use tokio::time::timeout;

use super::approval::DecideError;
use super::{ApprovalRequest, LiveInfo, Registry};

/// The socket's file name inside the data dir.
pub const SOCKET_NAME: &str = "control.sock";
/// How long a client waits for the whole exchange: the two seconds DESIGN.md
/// §3 allows for a CLI change to reach the server.
pub const CLIENT_TIMEOUT: Duration = Duration::from_secs(2);
/// How long the server waits for a client's request or for its answer to be
/// taken, so a stuck client cannot hold a connection slot.
const SERVER_TIMEOUT: Duration = Duration::from_secs(5);
/// Connections served at once; more are closed unanswered.
const MAX_CONNECTIONS: usize = 16;
const MAX_REQUEST: u64 = 64 * 1024;
/// A list of many thousand sessions still fits.
const MAX_RESPONSE: u64 = 64 * 1024 * 1024;

/// The socket path for a data dir.
pub fn socket_path(data_dir: &Path) -> PathBuf {
    data_dir.join(SOCKET_NAME)
}

/// One request line, e.g. `{"op":"kill","id":"…","reason":"…","by":"admin"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Request {
    /// The running sessions.
    List,
    /// End one session, showing `reason` to its person.
    Kill {
        id: String,
        #[serde(default)]
        reason: String,
        by: String,
    },
    /// End every session of a user (disabled user, force logout).
    KillUser {
        user: String,
        #[serde(default)]
        reason: String,
        by: String,
    },
    /// Re-read policy and configuration now rather than at the next poll.
    Reload,
    /// The requests waiting for an admin's decision.
    Approvals,
    /// Answer one waiting request as `by` (never the one who asked).
    Decide {
        id: u64,
        approve: bool,
        #[serde(default)]
        reason: String,
        by: String,
    },
}

/// One answer line, e.g. `{"result":"killed","count":1}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum Response {
    Sessions {
        sessions: Vec<LiveInfo>,
    },
    /// How many sessions were ordered to end (0: no such session).
    Killed {
        count: usize,
    },
    ReloadRequested,
    Approvals {
        approvals: Vec<ApprovalRequest>,
    },
    /// The request that was answered, as it was.
    Decided {
        request: ApprovalRequest,
    },
    /// Why a request was not answered.
    Undecided {
        error: DecideError,
    },
    Error {
        message: String,
    },
}

#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    #[error("no running rampart server at {}", .path.display())]
    NotRunning { path: PathBuf },
    #[error(
        "permission denied on {}: run this as the user the rampart server runs as",
        .path.display()
    )]
    Permission { path: PathBuf },
    #[error("another rampart server is already running at {}", .path.display())]
    AlreadyRunning { path: PathBuf },
    #[error(
        "{} exists and is not a socket: move it away or use another data dir",
        .path.display()
    )]
    NotASocket { path: PathBuf },
    #[error("the rampart server at {} did not answer in time", .path.display())]
    Timeout { path: PathBuf },
    #[error("control socket {}: {source}", .path.display())]
    Io { path: PathBuf, source: io::Error },
    #[error("unexpected answer from the rampart server at {}: {detail}", .path.display())]
    Protocol { path: PathBuf, detail: String },
    #[error("the rampart server refused: {message}")]
    Refused { message: String },
}

fn io_error(path: &Path) -> impl FnOnce(io::Error) -> ControlError + '_ {
    move |source| ControlError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// The socket file we created, removed when dropped: at shutdown, on an
/// error, or when the serving future is cancelled.
#[derive(Debug)]
struct SocketFile {
    path: PathBuf,
    dev: u64,
    ino: u64,
    owner: u32,
}

impl Drop for SocketFile {
    fn drop(&mut self) {
        // Only remove the file if it is still ours: a server started after
        // we were declared dead may have replaced it.
        let ours = std::fs::symlink_metadata(&self.path)
            .is_ok_and(|meta| meta.dev() == self.dev && meta.ino() == self.ino);
        if ours && let Err(error) = std::fs::remove_file(&self.path) {
            tracing::warn!(path = %self.path.display(), %error, "cannot remove the control socket");
        }
    }
}

/// A bound control socket, not yet serving. Binding first lets `serve`
/// refuse to start before it does anything else when another server runs.
#[derive(Debug)]
pub struct ControlServer {
    listener: UnixListener,
    file: SocketFile,
}

impl ControlServer {
    /// Binds `path` with mode 0600. A socket file nobody answers on (left by
    /// a crashed server) is replaced; a live server is an error, and so is
    /// any other kind of file.
    pub async fn bind(path: &Path) -> Result<ControlServer, ControlError> {
        match tokio::fs::symlink_metadata(path).await {
            Ok(meta) if meta.file_type().is_socket() => clear_stale(path).await?,
            Ok(_) => {
                return Err(ControlError::NotASocket {
                    path: path.to_path_buf(),
                });
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(io_error(path)(e)),
        }
        // bind() fails if the path exists, so two servers starting at once
        // cannot both get past this point.
        let listener = UnixListener::bind(path).map_err(|e| match e.kind() {
            io::ErrorKind::AddrInUse => ControlError::AlreadyRunning {
                path: path.to_path_buf(),
            },
            _ => io_error(path)(e),
        })?;
        let meta = std::fs::symlink_metadata(path).map_err(io_error(path))?;
        let file = SocketFile {
            path: path.to_path_buf(),
            dev: meta.dev(),
            ino: meta.ino(),
            owner: meta.uid(),
        };
        // Between bind and chmod the umask applies; the peer check in
        // `serve` covers that instant.
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
            .map_err(io_error(path))?;
        Ok(ControlServer { listener, file })
    }

    pub fn path(&self) -> &Path {
        &self.file.path
    }

    /// Answers requests until `shutdown` completes, then removes the socket
    /// file. `reload` is told when a client asks for a reload; a reload
    /// already pending absorbs the new one.
    pub async fn serve(
        self,
        registry: Registry,
        reload: mpsc::Sender<()>,
        shutdown: impl Future<Output = ()>,
    ) -> Result<(), ControlError> {
        let permits = Arc::new(Semaphore::new(MAX_CONNECTIONS));
        let mut tasks = JoinSet::new();
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                () = &mut shutdown => break,
                accepted = self.listener.accept() => match accepted {
                    Ok((stream, _)) => {
                        if !self.peer_allowed(&stream) {
                            continue;
                        }
                        let Ok(permit) = Arc::clone(&permits).try_acquire_owned() else {
                            tracing::warn!("control socket busy: connection closed unanswered");
                            continue;
                        };
                        let registry = registry.clone();
                        let reload = reload.clone();
                        tasks.spawn(async move {
                            let _permit = permit;
                            answer_connection(stream, &registry, &reload).await;
                        });
                    }
                    Err(error) => {
                        // Usually out of file descriptors: pause instead of
                        // spinning, and keep serving.
                        tracing::warn!(%error, "control socket accept failed");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                },
                Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
            }
        }
        tasks.shutdown().await;
        // `self.file` is dropped here, removing the socket.
        Ok(())
    }

    /// Mode 0600 already limits who can connect; checking the peer's uid too
    /// closes the window between bind and chmod and survives a loosened mode.
    fn peer_allowed(&self, stream: &UnixStream) -> bool {
        match stream.peer_cred() {
            Ok(cred) if cred.uid() == self.file.owner || cred.uid() == 0 => true,
            Ok(cred) => {
                tracing::warn!(
                    uid = cred.uid(),
                    "control socket: connection from another user refused"
                );
                false
            }
            Err(error) => {
                tracing::warn!(%error, "control socket: cannot identify the peer");
                false
            }
        }
    }
}

/// Binds `path` and serves until `shutdown`; see [`ControlServer`].
pub async fn serve_control(
    path: &Path,
    registry: Registry,
    reload: mpsc::Sender<()>,
    shutdown: impl Future<Output = ()>,
) -> Result<(), ControlError> {
    ControlServer::bind(path)
        .await?
        .serve(registry, reload, shutdown)
        .await
}

/// Removes a socket file if no server answers on it.
async fn clear_stale(path: &Path) -> Result<(), ControlError> {
    match timeout(CLIENT_TIMEOUT, UnixStream::connect(path)).await {
        // A connect that hangs means a server whose backlog is full: alive.
        Ok(Ok(_)) | Err(_) => Err(ControlError::AlreadyRunning {
            path: path.to_path_buf(),
        }),
        Ok(Err(e)) if e.kind() == io::ErrorKind::ConnectionRefused => {
            tracing::info!(path = %path.display(), "replacing a stale control socket");
            match tokio::fs::remove_file(path).await {
                Ok(()) => Ok(()),
                Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
                Err(e) => Err(io_error(path)(e)),
            }
        }
        Ok(Err(e)) => Err(io_error(path)(e)),
    }
}

async fn answer_connection(stream: UnixStream, registry: &Registry, reload: &mpsc::Sender<()>) {
    let (read, mut write) = stream.into_split();
    let mut reader = BufReader::new(read.take(MAX_REQUEST));
    let mut line = String::new();
    let response = match timeout(SERVER_TIMEOUT, reader.read_line(&mut line)).await {
        Err(_) | Ok(Ok(0)) => return,
        Ok(Err(error)) => Response::Error {
            message: format!("unreadable request: {error}"),
        },
        Ok(Ok(n)) if n as u64 >= MAX_REQUEST => Response::Error {
            message: format!("request longer than {MAX_REQUEST} bytes"),
        },
        Ok(Ok(_)) => match serde_json::from_str::<Request>(&line) {
            Ok(request) => handle(request, registry, reload).await,
            Err(error) => Response::Error {
                message: format!("bad request: {error}"),
            },
        },
    };
    let mut out = match serde_json::to_vec(&response) {
        Ok(out) => out,
        Err(error) => {
            tracing::warn!(%error, "control socket: cannot encode an answer");
            return;
        }
    };
    out.push(b'\n');
    match timeout(SERVER_TIMEOUT, write.write_all(&out)).await {
        Ok(Ok(())) => {}
        Ok(Err(error)) => tracing::debug!(%error, "control client went away"),
        Err(_) => tracing::debug!("control client did not read its answer"),
    }
}

async fn handle(request: Request, registry: &Registry, reload: &mpsc::Sender<()>) -> Response {
    match request {
        Request::List => Response::Sessions {
            sessions: registry.list(),
        },
        Request::Kill { id, reason, by } => {
            let found = registry.kill_anywhere(&id, &reason, &by).await;
            tracing::info!(session = %id, %by, ?found, "kill requested over the control socket");
            Response::Killed {
                count: usize::from(found.is_some()),
            }
        }
        Request::KillUser { user, reason, by } => {
            let count = registry.kill_user_everywhere(&user, &reason, &by).await;
            tracing::info!(%user, %by, count, "user's sessions killed over the control socket");
            Response::Killed { count }
        }
        Request::Approvals => Response::Approvals {
            approvals: registry.approvals(),
        },
        Request::Decide {
            id,
            approve,
            reason,
            by,
        } => {
            let answer = registry.decide(id, approve, &by, &reason);
            tracing::info!(request = id, approve, %by, ok = answer.is_ok(), "approval answered over the control socket");
            match answer {
                Ok(request) => Response::Decided { request },
                Err(error) => Response::Undecided { error },
            }
        }
        Request::Reload => match reload.try_send(()) {
            Ok(()) | Err(mpsc::error::TrySendError::Full(())) => Response::ReloadRequested,
            Err(mpsc::error::TrySendError::Closed(())) => Response::Error {
                message: "the server is not taking reloads (shutting down?)".to_string(),
            },
        },
    }
}

/// Sends one request to the server at `path` and returns its answer, within
/// [`CLIENT_TIMEOUT`]. An `Error` answer becomes [`ControlError::Refused`].
pub async fn request(path: &Path, request: &Request) -> Result<Response, ControlError> {
    request_within(path, request, CLIENT_TIMEOUT).await
}

async fn request_within(
    path: &Path,
    request: &Request,
    limit: Duration,
) -> Result<Response, ControlError> {
    match timeout(limit, exchange(path, request)).await {
        Ok(result) => result,
        Err(_) => Err(ControlError::Timeout {
            path: path.to_path_buf(),
        }),
    }
}

async fn exchange(path: &Path, request: &Request) -> Result<Response, ControlError> {
    let stream = UnixStream::connect(path)
        .await
        .map_err(|e| match e.kind() {
            io::ErrorKind::NotFound | io::ErrorKind::ConnectionRefused => {
                ControlError::NotRunning {
                    path: path.to_path_buf(),
                }
            }
            io::ErrorKind::PermissionDenied => ControlError::Permission {
                path: path.to_path_buf(),
            },
            _ => io_error(path)(e),
        })?;
    let protocol = |detail: String| ControlError::Protocol {
        path: path.to_path_buf(),
        detail,
    };
    let (read, mut write) = stream.into_split();
    let mut line = serde_json::to_vec(request).map_err(|e| protocol(e.to_string()))?;
    line.push(b'\n');
    write.write_all(&line).await.map_err(io_error(path))?;
    let mut reader = BufReader::new(read.take(MAX_RESPONSE));
    let mut answer = String::new();
    if reader
        .read_line(&mut answer)
        .await
        .map_err(io_error(path))?
        == 0
    {
        return Err(protocol("closed the connection without answering".into()));
    }
    match serde_json::from_str(&answer).map_err(|e| protocol(e.to_string()))? {
        Response::Error { message } => Err(ControlError::Refused { message }),
        response @ (Response::Sessions { .. }
        | Response::Killed { .. }
        | Response::ReloadRequested
        | Response::Approvals { .. }
        | Response::Decided { .. }
        | Response::Undecided { .. }) => Ok(response),
    }
}

fn unexpected(path: &Path, wanted: &str, got: &Response) -> ControlError {
    ControlError::Protocol {
        path: path.to_path_buf(),
        detail: format!("expected {wanted}, got {got:?}"),
    }
}

/// The running server's live sessions (`session list --live`).
pub async fn list(path: &Path) -> Result<Vec<LiveInfo>, ControlError> {
    match request(path, &Request::List).await? {
        Response::Sessions { sessions } => Ok(sessions),
        other => Err(unexpected(path, "sessions", &other)),
    }
}

/// Ends one session (`session kill ID`); false when the server has no such
/// live session.
pub async fn kill(path: &Path, id: &str, reason: &str, by: &str) -> Result<bool, ControlError> {
    let request = Request::Kill {
        id: id.to_string(),
        reason: reason.to_string(),
        by: by.to_string(),
    };
    match self::request(path, &request).await? {
        Response::Killed { count } => Ok(count > 0),
        other => Err(unexpected(path, "killed", &other)),
    }
}

/// Ends every session of `user`; returns how many.
pub async fn kill_user(
    path: &Path,
    user: &str,
    reason: &str,
    by: &str,
) -> Result<usize, ControlError> {
    let request = Request::KillUser {
        user: user.to_string(),
        reason: reason.to_string(),
        by: by.to_string(),
    };
    match self::request(path, &request).await? {
        Response::Killed { count } => Ok(count),
        other => Err(unexpected(path, "killed", &other)),
    }
}

/// The requests waiting for an admin's decision (`session approvals`).
pub async fn approvals(path: &Path) -> Result<Vec<ApprovalRequest>, ControlError> {
    match request(path, &Request::Approvals).await? {
        Response::Approvals { approvals } => Ok(approvals),
        other => Err(unexpected(path, "approvals", &other)),
    }
}

/// Answers a waiting request as `by` (`session approve|deny ID`): the
/// request as it was, or why the server did not answer it.
pub async fn decide(
    path: &Path,
    id: u64,
    approve: bool,
    reason: &str,
    by: &str,
) -> Result<Result<ApprovalRequest, DecideError>, ControlError> {
    let request = Request::Decide {
        id,
        approve,
        reason: reason.to_string(),
        by: by.to_string(),
    };
    match self::request(path, &request).await? {
        Response::Decided { request } => Ok(Ok(request)),
        Response::Undecided { error } => Ok(Err(error)),
        other => Err(unexpected(path, "decided", &other)),
    }
}

/// Asks the server to re-read policy and configuration now.
pub async fn reload(path: &Path) -> Result<(), ControlError> {
    match request(path, &Request::Reload).await? {
        Response::ReloadRequested => Ok(()),
        other => Err(unexpected(path, "reload_requested", &other)),
    }
}

#[cfg(test)]
mod tests;
