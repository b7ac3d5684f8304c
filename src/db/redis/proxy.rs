//! The accept loop and the relay of one connection, both directions at
//! once in one task: the client's commands checked and forwarded (or
//! answered by the proxy), the server's replies streamed back and matched
//! to the commands they answer ([`Tracker`]). Only the server-to-client
//! half writes to the client, so the proxy's own answers land between
//! whole replies, in order.

use crate::db::contract::first_then;
use futures_util::future::BoxFuture;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::Poll;
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufWriter};
use tokio::net::UnixListener;
use tokio::sync::Notify;
use zeroize::Zeroizing;

use super::command::{self, Action, BASTION};
use super::login::{self, Gate, READ_SIZE, server_protocol};
use super::reply::{Piece, Replies};
use super::request::{MAX_COMMAND, Request, Requests};
use super::resp::{self, RespError};
use super::text::{self, is};
use super::track::{Owed, Pending, Settled, Tracker};
use super::{Accepted, Audit, Outcome, ProxyError, Statement, Summary, Upstream, Verdict};

use crate::db::contract::{Admitted, Counted, Counts, Login, ServerStream};

/// How long the server's last replies may take once the client is done.
const DRAIN: Duration = Duration::from_secs(5);

/// What a client gets for `EXEC` after a command of its transaction was
/// refused: the server's own words for a transaction it would not run.
const EXECABORT: &str = "EXECABORT Transaction discarded because of previous errors \
                         (a command was refused by the bastion).";

/// Serves the session's Redis connection on `listener`: the first
/// connection is relayed to `upstream`; later ones get an error and are
/// closed. Returns when the first connection ends.
///
/// `token` is the session's one-time password, as for the other database
/// proxies, but it is not asked on this socket: redis-cli cannot read a
/// password from a file, and the socket's 0700 directory belongs to the
/// session's sandbox uid, so only the session's own client can connect.
pub async fn serve(
    listener: UnixListener,
    token: Zeroizing<String>,
    upstream: Upstream,
    audit: Arc<dyn Audit>,
    accepted: Option<Accepted>,
) -> Result<Summary, ProxyError> {
    drop(token);
    let main = |stream| serve_connection(stream, None, &upstream, &*audit);
    let later = |mut stream: tokio::net::UnixStream| {
        Box::pin(async move {
            let refusal = resp::error("ERR rampart: one connection per session");
            login::goodbye(&mut stream, &refusal).await;
            tracing::info!(target: "db", "{}", ProxyError::Second);
        }) as BoxFuture<'static, ()>
    };
    first_then(listener, accepted, ProxyError::Accept, main, later).await
}

/// One connection: the client's `AUTH` when `token` is given, the login
/// upstream, then the relay until either side ends.
pub async fn serve_connection<S>(
    client: S,
    token: Option<&str>,
    upstream: &Upstream,
    audit: &dyn Audit,
) -> Result<Summary, ProxyError>
where
    S: AsyncRead + AsyncWrite + Unpin + Send,
{
    let counts = Arc::new(Counts::default());
    let mut client = Counted {
        inner: client,
        counts: counts.clone(),
    };
    let mut requests = Requests::new();
    let first = match token {
        Some(token) => login::greet(&mut client, Gate::Token(token), &mut requests).await?,
        None => (None, None),
    };
    relay_after_login(client, counts, requests, first.0, upstream, audit).await
}

/// One connection whose login `login` decides (a desktop tool through the
/// person's SSH tunnel): the client's `AUTH`, then the login upstream as
/// whom `login` says, and the relay, audited by the session `login`
/// opened.
pub async fn serve_login<S>(client: S, login: &dyn Login) -> Result<Summary, ProxyError>
where
    S: AsyncRead + AsyncWrite + Unpin + Send,
{
    let counts = Arc::new(Counts::default());
    let mut client = Counted {
        inner: client,
        counts: counts.clone(),
    };
    let mut requests = Requests::new();
    let (first, admitted) = login::greet(&mut client, Gate::Login(login), &mut requests).await?;
    let Some(Admitted { upstream, audit }) = admitted else {
        return Err(ProxyError::BadToken);
    };
    relay_after_login(client, counts, requests, first, &upstream, &*audit).await
}

/// The login upstream and the relay, once the client is let in.
async fn relay_after_login<S>(
    mut client: Counted<S>,
    counts: Arc<Counts>,
    requests: Requests,
    first: Option<Vec<Bytes>>,
    upstream: &Upstream,
    audit: &dyn Audit,
) -> Result<Summary, ProxyError>
where
    S: AsyncRead + AsyncWrite + Unpin + Send,
{
    let (server, replies) = match login::connect(upstream).await {
        Ok(connected) => connected,
        Err(e) => {
            let said = resp::error(&format!("ERR rampart: {}", for_client(&e)));
            login::goodbye(&mut client, &said).await;
            return Err(e);
        }
    };
    let shared = Shared {
        audit,
        tracker: Mutex::new(Tracker::new()),
        wake: Notify::new(),
        drained: Notify::new(),
        logged: AtomicU64::new(0),
    };
    let ends = Ends {
        requests,
        replies,
        first,
    };
    let result = relay(&shared, client, server, ends).await;
    let unfinished = shared.tracker().finish();
    for statement in unfinished {
        shared.log(statement);
    }
    result?;
    Ok(Summary {
        bytes_from_client: counts.read.load(Ordering::Relaxed),
        bytes_to_client: counts.written.load(Ordering::Relaxed),
        statements: shared.logged.load(Ordering::Relaxed),
    })
}

/// What the client is told of a failed login upstream: the server's
/// refusal, never the address or a secret.
fn for_client(e: &ProxyError) -> String {
    match e {
        ProxyError::Refused(message) => {
            format!("the Redis server refused the bastion's login: {message}")
        }
        ProxyError::Database(_) => e.to_string(),
        ProxyError::Connect { reason, .. } => format!("cannot reach the Redis server: {reason}"),
        _ => "the login to the Redis server failed".into(),
    }
}

/// What both halves of the relay share.
struct Shared<'a> {
    audit: &'a dyn Audit,
    tracker: Mutex<Tracker>,
    /// Rung by the client half when it queued an answer of the proxy's
    /// own or is done.
    wake: Notify,
    /// Rung by the server half when replies settled commands.
    drained: Notify,
    logged: AtomicU64,
}

impl Shared<'_> {
    fn tracker(&self) -> MutexGuard<'_, Tracker> {
        self.tracker.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn log(&self, statement: Statement) {
        self.logged.fetch_add(1, Ordering::Relaxed);
        self.audit.logged(statement);
    }
}

/// The decoders' state from the login, and a command the client's login
/// left for the relay.
struct Ends {
    requests: Requests,
    replies: Replies,
    first: Option<Vec<Bytes>>,
}

async fn relay<S>(
    shared: &Shared<'_>,
    client: S,
    server: ServerStream,
    ends: Ends,
) -> Result<(), ProxyError>
where
    S: AsyncRead + AsyncWrite + Unpin + Send,
{
    let (mut client_read, client_write) = tokio::io::split(client);
    let (mut server_read, server_write) = server.into_split();
    let mut client_write = BufWriter::new(client_write);
    let mut up = Up {
        shared,
        server: BufWriter::new(server_write),
        requests: ends.requests,
        multi: false,
        dirty: false,
    };
    let upward = up.run(&mut client_read, ends.first);
    let downward = down(shared, ends.replies, &mut server_read, &mut client_write);
    tokio::pin!(upward, downward);
    tokio::select! {
        result = &mut downward => result,
        result = &mut upward => {
            // The client is gone, said QUIT or broke the protocol: the
            // server's last replies still settle the outcomes of its
            // commands, and reach it if it is there (if it is gone, writing
            // them fails, which is no failure of the session).
            shared.tracker().close();
            shared.wake.notify_one();
            let _ = tokio::time::timeout(DRAIN, downward).await;
            result
        }
    }
}

/// The server-to-client half.
async fn down<R, W>(
    shared: &Shared<'_>,
    mut replies: Replies,
    server: &mut R,
    client: &mut W,
) -> Result<(), ProxyError>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let mut buf = vec![0u8; READ_SIZE];
    let mut settled = Settled::default();
    // Whether the reply under way goes to the client.
    let mut forward = true;
    loop {
        while let Some(piece) = replies.next_piece().map_err(server_protocol)? {
            match piece {
                Piece::Start { push } => {
                    let begun = shared.tracker().begin(push, &mut settled);
                    pass_on(shared, client, &mut settled).await?;
                    forward = begun.map_err(|e| ProxyError::ServerProtocol(e.to_string()))?;
                }
                Piece::Data(bytes) if forward => send(client, &bytes).await?,
                Piece::Data(_) => {}
                Piece::End(answer) => {
                    shared.tracker().end(&answer, &mut settled);
                    pass_on(shared, client, &mut settled).await?;
                    shared.drained.notify_one();
                }
            }
        }
        if replies.at_boundary() {
            let done = {
                let mut tracker = shared.tracker();
                tracker.due(&mut settled);
                tracker.done()
            };
            pass_on(shared, client, &mut settled).await?;
            shared.drained.notify_one();
            if done {
                return client.flush().await.map_err(ProxyError::Client);
            }
        }
        client.flush().await.map_err(ProxyError::Client)?;
        tokio::select! {
            read = server.read(&mut buf) => match read.map_err(ProxyError::Server)? {
                0 => return Ok(()),
                n => replies.push(buf.get(..n).unwrap_or_default()),
            },
            () = shared.wake.notified() => {}
        }
    }
}

async fn send<W: AsyncWrite + Unpin>(client: &mut W, bytes: &[u8]) -> Result<(), ProxyError> {
    client.write_all(bytes).await.map_err(ProxyError::Client)
}

/// Sends the client what the tracker settled, and logs its statements.
async fn pass_on<W: AsyncWrite + Unpin>(
    shared: &Shared<'_>,
    client: &mut W,
    settled: &mut Settled,
) -> Result<(), ProxyError> {
    for statement in settled.logged.drain(..) {
        shared.log(statement);
    }
    for bytes in settled.bytes.drain(..) {
        send(client, &bytes).await?;
    }
    Ok(())
}

fn statement(text: String, outcome: Outcome, started: Instant) -> Statement {
    Statement {
        text,
        outcome,
        duration: started.elapsed(),
    }
}

/// Whether the client half goes on after a command.
enum Flow {
    Go,
    Stop,
}

/// The client-to-server half.
struct Up<'a, W> {
    shared: &'a Shared<'a>,
    server: BufWriter<W>,
    requests: Requests,
    /// Inside `MULTI`, as the commands forwarded so far tell.
    multi: bool,
    /// A command of the transaction under way was refused.
    dirty: bool,
}

impl<W: AsyncWrite + Unpin> Up<'_, W> {
    async fn run<R: AsyncRead + Unpin>(
        &mut self,
        client: &mut R,
        first: Option<Vec<Bytes>>,
    ) -> Result<(), ProxyError> {
        if let Some(args) = first
            && let Flow::Stop = self.command(args).await?
        {
            return self.flush().await;
        }
        let mut buf = vec![0u8; READ_SIZE];
        loop {
            loop {
                match self.requests.next_request() {
                    Ok(Some(request)) => {
                        if let Flow::Stop = self.request(request).await? {
                            return self.flush().await;
                        }
                    }
                    Ok(None) => break,
                    Err(e) => return Err(self.broken(e)),
                }
            }
            self.flush().await?;
            self.room().await;
            match client.read(&mut buf).await.map_err(ProxyError::Client)? {
                0 => return Ok(()),
                n => self.requests.push(buf.get(..n).unwrap_or_default()),
            }
        }
    }

    async fn request(&mut self, request: Request) -> Result<Flow, ProxyError> {
        match request {
            Request::Command(args) => self.command(args).await,
            Request::TooLong { head, len } => {
                let mut logged = text::describe(&head);
                if !logged.is_empty() {
                    logged.push(' ');
                }
                logged.push_str(&format!("… [a command of {len} bytes, not read]"));
                let logged = text::logged(&logged);
                let error = format!(
                    "ERR rampart: command too long for the bastion ({len} bytes, at most {} MiB)",
                    MAX_COMMAND >> 20
                );
                self.refuse(&error, "size limit".into(), logged, Instant::now());
                Ok(Flow::Go)
            }
        }
    }

    async fn command(&mut self, args: Vec<Bytes>) -> Result<Flow, ProxyError> {
        let started = Instant::now();
        let described = text::describe(&args);
        let ok = || Outcome::Done("OK".into());
        match command::classify(args) {
            Action::Auth => {
                let logged = statement(text::logged(&described), ok(), started);
                self.answer(resp::status("OK"), Some(logged));
            }
            Action::Quit => {
                let logged = statement(text::logged(&described), ok(), started);
                self.answer(resp::status("OK"), Some(logged));
                return Ok(Flow::Stop);
            }
            Action::Refuse(why) => {
                let error = format!("ERR {why}");
                self.refuse(&error, BASTION.into(), text::logged(&described), started);
            }
            Action::Forward(args) => match self.verdict(&described).await? {
                Verdict::Allow => self.forward(args, text::logged(&described)).await?,
                Verdict::Deny { rule } => {
                    let error = format!("ERR rampart: command refused by rule {rule}");
                    self.refuse(&error, rule, text::logged(&described), started);
                }
            },
        }
        Ok(Flow::Go)
    }

    /// The rules' verdict on a command. A verdict that is not ready at
    /// once (an administrator's approval) lets whatever is already
    /// forwarded go out first; one that is ready lets a pipeline go to the
    /// server in one write.
    async fn verdict(&mut self, described: &str) -> Result<Verdict, ProxyError> {
        let mut check = self.shared.audit.check(described);
        let now = std::future::poll_fn(|cx| Poll::Ready(check.as_mut().poll(cx))).await;
        if let Poll::Ready(verdict) = now {
            return Ok(verdict);
        }
        self.flush().await?;
        Ok(check.await)
    }

    /// Sends a command the rules allowed, keeping count of `MULTI`: an
    /// `EXEC` after a refusal inside the transaction becomes `DISCARD`.
    async fn forward(&mut self, args: Vec<Bytes>, logged: String) -> Result<(), ProxyError> {
        let name = args.first().map(|a| a.as_ref()).unwrap_or_default();
        let pending = Pending::new(logged);
        if is(name, "EXEC") && self.multi && self.dirty {
            (self.multi, self.dirty) = (false, false);
            self.shared.tracker().sent(Owed::Instead {
                pending,
                answer: resp::error(EXECABORT),
                outcome: Outcome::Error(EXECABORT.into()),
            });
            return self.write_command(&[Bytes::from_static(b"DISCARD")]).await;
        }
        if is(name, "MULTI") {
            self.multi = true;
        } else if is(name, "EXEC") || is(name, "DISCARD") {
            (self.multi, self.dirty) = (false, false);
        }
        // Owed before it is sent: the reply may come back at once.
        self.shared.tracker().sent(Owed::Reply(pending));
        self.write_command(&args).await
    }

    /// Queues the proxy's answer for its turn and wakes the server half,
    /// which sends it (and logs the command it answers).
    fn answer(&self, bytes: Bytes, logged: Option<Statement>) {
        self.shared.tracker().sent(Owed::Answer { bytes, logged });
        self.shared.wake.notify_one();
    }

    fn refuse(&mut self, error: &str, rule: String, logged: String, started: Instant) {
        let logged = statement(logged, Outcome::Refused { rule }, started);
        self.answer(resp::error(error), Some(logged));
        self.dirty |= self.multi;
    }

    /// A framing error: the client is told (after the replies it is owed)
    /// and the connection ends.
    fn broken(&self, e: RespError) -> ProxyError {
        self.answer(resp::error(&format!("ERR Protocol error: {e}")), None);
        ProxyError::ClientProtocol(e.to_string())
    }

    /// Waits while the queue of owed replies is full: the client is read
    /// no further until replies catch up.
    async fn room(&self) {
        loop {
            let drained = self.shared.drained.notified();
            if !self.shared.tracker().full() {
                return;
            }
            drained.await;
        }
    }

    async fn write_command(&mut self, args: &[Bytes]) -> Result<(), ProxyError> {
        self.write(&resp::array_header(args.len())).await?;
        for arg in args {
            self.write(&resp::bulk_header(arg.len())).await?;
            self.write(arg).await?;
            self.write(b"\r\n").await?;
        }
        Ok(())
    }

    async fn write(&mut self, bytes: &[u8]) -> Result<(), ProxyError> {
        self.server
            .write_all(bytes)
            .await
            .map_err(ProxyError::Server)
    }

    async fn flush(&mut self) -> Result<(), ProxyError> {
        self.server.flush().await.map_err(ProxyError::Server)
    }
}
