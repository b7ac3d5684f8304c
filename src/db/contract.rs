//! What every database wire proxy shares with the session around it,
//! whatever the protocol (PostgreSQL, MySQL/MariaDB, Redis): where it logs
//! in upstream, the verdict it asks for on each statement, the statements
//! it logs with their outcome, and the login of a tunnelled connection;
//! and the small pieces of plumbing they all need (the connection
//! upstream, plain or TLS with the server's certificate pinned, the
//! client's byte counts, the cap on a logged text).

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use futures_util::future::BoxFuture;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio_rustls::client::TlsStream;
use zeroize::Zeroizing;

/// Where and as whom the proxy logs in.
#[derive(Clone)]
pub struct Upstream {
    pub host: String,
    pub port: u16,
    pub user: String,
    /// The vaulted secret: never logged, never in an error.
    pub password: Option<Zeroizing<String>>,
    /// The database when the client names none.
    pub database: String,
    pub connect_timeout: Duration,
    /// TLS to the server, when the asset asks for it (`asset add --tls`);
    /// `None`: plain TCP.
    pub tls: Option<Tls>,
}

/// Told a certificate to pin (DER).
pub type FirstUse = Arc<dyn Fn(&[u8]) + Send + Sync>;

/// TLS to the server, its certificate pinned like an SSH host key.
#[derive(Clone)]
pub struct Tls {
    /// The fingerprint pinned for the asset (`SHA256:hex`); a server that
    /// presents another certificate is refused before the credential is
    /// sent. `None`: nothing is pinned yet, so the certificate is accepted
    /// and handed to `first_use`.
    pub pinned: Option<String>,
    /// Told the certificate (DER) a server presented when nothing was
    /// pinned, so the session can pin it (trust on first use).
    pub first_use: Option<FirstUse>,
}

impl std::fmt::Debug for Tls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tls").field("pinned", &self.pinned).finish()
    }
}

impl std::fmt::Debug for Upstream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Upstream")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("user", &self.user)
            .field("password", &self.password.as_ref().map(|_| "(redacted)"))
            .field("database", &self.database)
            .field("connect_timeout", &self.connect_timeout)
            .field("tls", &self.tls)
            .finish()
    }
}

impl Upstream {
    /// Where the server is, without the secret: what a cancel request or
    /// the greeting before a login needs.
    pub fn without_secret(&self) -> Upstream {
        Upstream {
            password: None,
            database: String::new(),
            ..self.clone()
        }
    }

    /// `host:port` as people write it.
    pub fn address(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

/// Whether two secrets are equal, in time that depends on their lengths
/// only (ring's `verify_slices_are_equal` is deprecated for outside use).
pub(crate) fn same_secret(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let diff = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    std::hint::black_box(diff) == 0
}

/// What a rule says about one statement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Allow,
    Deny { rule: String },
}

/// What happened to one logged statement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// PostgreSQL: the CommandComplete tag (`SELECT 3`, `INSERT 0 1`,
    /// `DROP TABLE`; empty for an empty query, `SUSPENDED` for a portal that
    /// stopped at its row limit). MySQL: the last result (`OK, 1 row
    /// affected`, `3 rows`, with `(last of N results)` when there were
    /// more).
    Done(String),
    /// Severity, SQLSTATE and message: `ERROR 42P01: relation "t" does not
    /// exist`; MySQL's as its client prints it: `ERROR 1146 (42S02): Table
    /// 'appdb.t' doesn't exist`.
    Error(String),
    /// Denied by a rule, never sent to the server.
    Refused { rule: String },
    /// The connection ended before an answer.
    Unfinished,
}

/// One logged statement: a simple Query's text, or the text an extended
/// Execute ran.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Statement {
    pub text: String,
    pub outcome: Outcome,
    pub duration: Duration,
}

/// What the proxy asks of the session around it. `check` may wait (an
/// administrator's approval); `logged` must not block.
pub trait Audit: Send + Sync {
    fn check<'a>(&'a self, statement: &'a str) -> BoxFuture<'a, Verdict>;
    fn logged(&self, statement: Statement);
}

/// What one proxied connection moved.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Summary {
    pub bytes_from_client: u64,
    pub bytes_to_client: u64,
    /// Statements logged, refused ones included.
    pub statements: u64,
}

/// Called once a proxy accepted its session's first connection (the
/// client's one-time password file can go then).
pub type Accepted = Box<dyn FnOnce() + Send>;

/// Who may log in through a proxied connection that is not a session's
/// own (a desktop tool through `ssh -L`), and as whom it logs in upstream:
/// asked with the user name the client gave and its proof of a password.
pub trait Login: Send + Sync {
    /// `None`: refused; the client is told its password is wrong.
    fn admit<'a>(&'a self, user: &'a str, proof: &'a Proof<'a>) -> BoxFuture<'a, Option<Admitted>>;
}

/// What a client gave for its password, as its protocol carries it; the
/// [`Login`] holds the candidates and asks which one it proves.
pub enum Proof<'a> {
    /// The password itself (PostgreSQL's cleartext exchange, Redis AUTH),
    /// sent inside the SSH channel.
    Password(&'a [u8]),
    /// A challenge-response (MySQL's `mysql_native_password`): the
    /// client's `response` to `challenge`, a fresh one the proxy sent, so
    /// the password itself never crossed; `answer` computes the response
    /// a password gives.
    Challenge {
        challenge: &'a [u8],
        response: &'a [u8],
        answer: fn(&[u8], &[u8]) -> Zeroizing<Vec<u8>>,
    },
}

impl Proof<'_> {
    /// Whether this proves the client knows `secret`, in time that does
    /// not depend on where they differ.
    pub fn proves(&self, secret: &[u8]) -> bool {
        match self {
            Proof::Password(given) => same_secret(given, secret),
            Proof::Challenge {
                challenge,
                response,
                answer,
            } => !secret.is_empty() && same_secret(response, &answer(secret, challenge)),
        }
    }
}

/// A connection a [`Login`] let in: where it goes, and the session that
/// judges and logs its statements.
pub struct Admitted {
    pub upstream: Upstream,
    pub audit: std::sync::Arc<dyn Audit>,
}

/// The longest statement text put in a log.
pub(crate) const MAX_LOGGED: usize = 64 << 10;

/// A statement's text for the log: at most [`MAX_LOGGED`] bytes, and then
/// how long it was.
pub(crate) fn log_text(text: &[u8]) -> Arc<str> {
    match text.get(..MAX_LOGGED) {
        Some(head) if text.len() > MAX_LOGGED => format!(
            "{} … [{} bytes in all]",
            String::from_utf8_lossy(head),
            text.len()
        )
        .into(),
        _ => String::from_utf8_lossy(text).into(),
    }
}

/// Why the server could not be reached: where, and a short reason (never
/// a secret).
#[derive(Debug)]
pub(crate) struct Unreachable {
    pub address: String,
    pub reason: String,
}

pub(crate) async fn connect(upstream: &Upstream) -> Result<TcpStream, Unreachable> {
    let address = upstream.address();
    let connecting = TcpStream::connect((upstream.host.as_str(), upstream.port));
    match tokio::time::timeout(upstream.connect_timeout, connecting).await {
        Ok(Ok(stream)) => {
            // Small messages both ways: no Nagle delay on each.
            let _ = stream.set_nodelay(true);
            Ok(stream)
        }
        Ok(Err(e)) => Err(Unreachable {
            address,
            reason: crate::upstream::io_reason(&e),
        }),
        Err(_) => Err(Unreachable {
            address,
            reason: format!(
                "no answer within {} s",
                upstream.connect_timeout.as_secs_f32()
            ),
        }),
    }
}

/// The TLS handshake over `stream` (where the protocol has asked the
/// server to start it), and the certificate the server presented checked
/// against the pin, or handed to `first_use` when there is none. A
/// mismatch is refused before anything else is sent: the reason names both
/// fingerprints and what an admin does about it.
pub(crate) async fn start_tls(
    stream: TcpStream,
    upstream: &Upstream,
    tls: &Tls,
) -> Result<tokio_rustls::client::TlsStream<TcpStream>, Unreachable> {
    let address = upstream.address();
    let (connector, seen) = crate::upstream::tls::connector();
    let name = crate::upstream::tls::server_name(&upstream.host);
    let handshake = connector.connect(name, stream);
    let stream = match tokio::time::timeout(upstream.connect_timeout, handshake).await {
        Ok(Ok(stream)) => stream,
        Ok(Err(e)) => {
            return Err(Unreachable {
                address,
                reason: format!("TLS handshake failed: {}", crate::upstream::io_reason(&e)),
            });
        }
        Err(_) => {
            return Err(Unreachable {
                address,
                reason: "no TLS handshake within the connect timeout".into(),
            });
        }
    };
    let certificate = seen
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .take()
        .unwrap_or_default();
    let presented = crate::upstream::tls::fingerprint(&certificate);
    match &tls.pinned {
        Some(pinned) if *pinned != presented => Err(Unreachable {
            address,
            reason: format!(
                "the server's TLS certificate is {presented}, not the pinned {pinned}; if it was renewed, an admin checks it and runs `rampart asset trust ASSET` to pin the new one"
            ),
        }),
        Some(_) => Ok(stream),
        None => {
            if let Some(first_use) = &tls.first_use {
                first_use(&certificate);
            }
            Ok(stream)
        }
    }
}

/// What the person's client is told when the server could not be
/// reached: the reason (refused, timed out, a certificate that is not the
/// pinned one), never the address, which is the bastion's to know.
pub(crate) fn unreachable_text(reason: &str) -> String {
    format!("rampart: cannot reach the database server: {reason}")
}

/// What a proxy tells of a server that does not offer TLS when the asset
/// asks for it: it is refused, never logged in to in clear.
pub(crate) const NO_TLS: &str = "the server does not offer TLS, and the asset asks for it";

/// The connection to the server, or one of its halves: plain TCP, or TLS
/// over it. The plain halves are TCP's own, with no lock between them (the
/// relay's speed without TLS is what it was); the TLS ones are
/// [`tokio::io::split`]'s.
pub(crate) enum Server<P, T> {
    Plain(P),
    Tls(T),
}

pub(crate) type ServerStream = Server<TcpStream, Box<TlsStream<TcpStream>>>;
pub(crate) type ServerRead = Server<OwnedReadHalf, tokio::io::ReadHalf<Box<TlsStream<TcpStream>>>>;
pub(crate) type ServerWrite =
    Server<OwnedWriteHalf, tokio::io::WriteHalf<Box<TlsStream<TcpStream>>>>;

impl ServerStream {
    /// The TLS connection once [`start_tls`] is done.
    pub(crate) fn tls(stream: TlsStream<TcpStream>) -> ServerStream {
        Server::Tls(Box::new(stream))
    }

    /// Both halves, for a relay's two directions.
    pub(crate) fn into_split(self) -> (ServerRead, ServerWrite) {
        match self {
            Server::Plain(stream) => {
                let (read, write) = stream.into_split();
                (Server::Plain(read), Server::Plain(write))
            }
            Server::Tls(stream) => {
                let (read, write) = tokio::io::split(stream);
                (Server::Tls(read), Server::Tls(write))
            }
        }
    }
}

impl<P: AsyncRead + Unpin, T: AsyncRead + Unpin> AsyncRead for Server<P, T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Server::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Server::Tls(s) => Pin::new(s).poll_read(cx, buf),
        }
    }
}

impl<P: AsyncWrite + Unpin, T: AsyncWrite + Unpin> AsyncWrite for Server<P, T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        match self.get_mut() {
            Server::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Server::Tls(s) => Pin::new(s).poll_write(cx, buf),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        match self.get_mut() {
            Server::Plain(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            Server::Tls(s) => Pin::new(s).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            Server::Plain(s) => s.is_write_vectored(),
            Server::Tls(s) => s.is_write_vectored(),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Server::Plain(s) => Pin::new(s).poll_flush(cx),
            Server::Tls(s) => Pin::new(s).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Server::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Server::Tls(s) => Pin::new(s).poll_shutdown(cx),
        }
    }
}

/// Work for the server when a relay is dropped before it ended on its own
/// (the session was killed, revoked, or the bastion stops): a server only
/// notices a closed client when it next writes to it, so a long statement
/// would run on, holding its locks, after the session ended. Spawned when
/// dropped armed; nothing once [`OnDrop::disarm`]ed.
pub(crate) struct OnDrop(Option<BoxFuture<'static, ()>>);

impl OnDrop {
    pub fn new(work: BoxFuture<'static, ()>) -> OnDrop {
        OnDrop(Some(work))
    }

    /// The relay ended on its own: nothing to do.
    pub fn disarm(mut self) {
        self.0 = None;
    }
}

impl Drop for OnDrop {
    fn drop(&mut self) {
        if let (Some(work), Ok(runtime)) = (self.0.take(), tokio::runtime::Handle::try_current()) {
            runtime.spawn(work);
        }
    }
}

/// Bytes moved each way through the client's connection.
#[derive(Default)]
pub(crate) struct Counts {
    pub read: AtomicU64,
    pub written: AtomicU64,
}

/// The client's connection, counting its bytes.
pub(crate) struct Counted<S> {
    pub inner: S,
    pub counts: Arc<Counts>,
}

impl<S: AsyncRead + Unpin> AsyncRead for Counted<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        let n = buf.filled().len().saturating_sub(before);
        self.counts.read.fetch_add(n as u64, Ordering::Relaxed);
        polled
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Counted<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write(cx, buf);
        if let Poll::Ready(Ok(n)) = polled {
            self.counts.written.fetch_add(n as u64, Ordering::Relaxed);
        }
        polled
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// A session's socket, as every proxy serves it: the first connection
/// with `main` (once `accepted` is told), each later one handed to
/// `later` on a task of its own, until `main` ends. `accept_error` names a
/// failed accept in the proxy's own error.
pub(crate) async fn first_then<T, E, M>(
    listener: tokio::net::UnixListener,
    accepted: Option<Accepted>,
    accept_error: impl Fn(std::io::Error) -> E,
    main: impl FnOnce(tokio::net::UnixStream) -> M,
    later: impl Fn(tokio::net::UnixStream) -> BoxFuture<'static, ()>,
) -> Result<T, E>
where
    M: std::future::Future<Output = Result<T, E>>,
    E: std::fmt::Display,
{
    let (stream, _) = listener.accept().await.map_err(&accept_error)?;
    if let Some(accepted) = accepted {
        accepted();
    }
    let main = main(stream);
    tokio::pin!(main);
    loop {
        tokio::select! {
            result = &mut main => return result,
            next = listener.accept() => match next {
                Ok((stream, _)) => {
                    tokio::spawn(later(stream));
                }
                Err(e) => {
                    tracing::warn!(target: "db", "{}", accept_error(e));
                    // Out of descriptors, say: do not spin.
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
        }
    }
}
