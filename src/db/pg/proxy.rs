//! The accept loop and the relay of one connection, both directions at
//! once in one task: the client's messages checked and forwarded (or
//! refused), the server's relayed and matched to what they answer
//! ([`Tracker`]). Only the server-to-client half writes to the client, so
//! the proxy's own answers land between whole server messages, in order.

use crate::db::contract::first_then;
use futures_util::future::BoxFuture;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufWriter};
use tokio::net::UnixListener;
use tokio::sync::Notify;
use zeroize::Zeroizing;

use super::auth;
use super::front;
use super::sql;
use super::track::{Owed, Pending, TrackError, Tracker};
use super::wire::{self, Decoder, Frame, MAX_STATEMENT, Side, Startup};
use super::{
    Accepted, Admitted, Audit, Login, Outcome, ProxyError, Statement, Summary, Upstream, Verdict,
};
use crate::db::contract::{Counted, Counts, OnDrop, Proof, ServerStream, log_text};

/// How much is read from either side at a time.
const READ_SIZE: usize = 16 << 10;
/// Named prepared statements, and portals, tracked at most, and the most
/// text kept for them: the server holds them too, but the proxy's memory
/// must not grow with a client's whim.
const MAX_PREPARED: usize = 10_000;
const MAX_PREPARED_BYTES: usize = 64 << 20;
/// How long the server's last answers may take once the client left.
const DRAIN: Duration = Duration::from_secs(5);

/// The main connection's BackendKeyData, which later connections' cancel
/// requests must carry to be forwarded.
#[derive(Clone, Default)]
pub struct CancelKeys(Arc<Mutex<Option<[u8; 8]>>>);

impl std::fmt::Debug for CancelKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CancelKeys(..)")
    }
}

impl CancelKeys {
    fn set(&self, key: [u8; 8]) {
        *self.0.lock().unwrap_or_else(PoisonError::into_inner) = Some(key);
    }

    fn matches(&self, key: &[u8; 8]) -> bool {
        let known = *self.0.lock().unwrap_or_else(PoisonError::into_inner);
        known.is_some_and(|k| super::same_secret(&k, key))
    }
}

/// Serves the session's database connections on `listener`: the first
/// must give `token` and is relayed to `upstream`; later ones may only
/// cancel its queries. Returns when the first connection ends.
pub async fn serve(
    listener: UnixListener,
    token: Zeroizing<String>,
    upstream: Upstream,
    audit: Arc<dyn Audit>,
    accepted: Option<Accepted>,
) -> Result<Summary, ProxyError> {
    let keys = CancelKeys::default();
    // What a cancel request needs: the address, never the secret.
    let address = Arc::new(upstream.without_secret());
    let later = |stream| {
        let (address, keys) = (address.clone(), keys.clone());
        Box::pin(async move {
            if let Err(e) = serve_later(stream, &address, &keys).await {
                tracing::info!(target: "db", "{e}");
            }
        }) as BoxFuture<'static, ()>
    };
    let main = |stream| serve_connection(stream, &token, &upstream, &*audit, &keys);
    first_then(listener, accepted, ProxyError::Accept, main, later).await
}

/// A connection after the session's first: a CancelRequest carrying the
/// first connection's key is forwarded to the server (over TLS, as the
/// login went, when the asset asks for it); anything else gets a FATAL
/// error.
pub async fn serve_later<S>(
    mut client: S,
    upstream: &Upstream,
    keys: &CancelKeys,
) -> Result<(), ProxyError>
where
    S: AsyncRead + AsyncWrite + Unpin + Send,
{
    match front::startup(&mut client).await? {
        None => Ok(()),
        // A wrong key gets no answer, as from the server itself.
        Some(Startup::Cancel { key }) if !keys.matches(&key) => Ok(()),
        Some(Startup::Cancel { key }) => cancel(upstream, &key).await,
        Some(_) => {
            front::fatal(&mut client, "53300", "rampart: one connection per session").await;
            Err(ProxyError::Second)
        }
    }
}

/// Asks the server to cancel what the connection of `key` is running (a
/// CancelRequest on a connection of its own).
async fn cancel(upstream: &Upstream, key: &[u8; 8]) -> Result<(), ProxyError> {
    let mut stream = auth::connect(upstream).await?;
    let request = wire::cancel_request(key);
    stream
        .write_all(&request)
        .await
        .map_err(ProxyError::Server)?;
    // The server closes once it has read the request.
    let mut rest = [0u8; 1];
    let _ = tokio::time::timeout(upstream.connect_timeout, stream.read(&mut rest)).await;
    Ok(())
}

/// What a dropped relay leaves for the server: a cancel of the
/// connection's running statement (one while nothing runs does nothing).
fn cancel_on_drop(upstream: &Upstream, key: [u8; 8]) -> OnDrop {
    let address = upstream.without_secret();
    OnDrop::new(Box::pin(async move {
        if let Err(e) = cancel(&address, &key).await {
            tracing::info!(target: "db", "cancel after the session's end: {e}");
        }
    }))
}

/// One connection: the client's login with `token`, the login upstream,
/// then the relay until either side ends.
pub async fn serve_connection<S>(
    client: S,
    token: &str,
    upstream: &Upstream,
    audit: &dyn Audit,
    keys: &CancelKeys,
) -> Result<Summary, ProxyError>
where
    S: AsyncRead + AsyncWrite + Unpin + Send,
{
    let counts = Arc::new(Counts::default());
    let mut client = Counted {
        inner: client,
        counts: counts.clone(),
    };
    let params = front::greet(&mut client, token).await?;
    relay_after_login(client, counts, params, upstream, audit, keys).await
}

/// One connection whose login `login` decides (a desktop tool through the
/// person's SSH tunnel): the client's user name and password, then the
/// login upstream as whom `login` says, then the relay.
pub async fn serve_login<S>(client: S, login: &dyn Login) -> Result<Summary, ProxyError>
where
    S: AsyncRead + AsyncWrite + Unpin + Send,
{
    let counts = Arc::new(Counts::default());
    let mut client = Counted {
        inner: client,
        counts: counts.clone(),
    };
    let (params, password) = front::password_of(&mut client).await?;
    let user = params
        .iter()
        .find(|(k, _)| k.as_ref() == b"user")
        .map(|(_, v)| String::from_utf8_lossy(v).into_owned())
        .unwrap_or_default();
    let Some(Admitted { upstream, audit }) = login.admit(&user, &Proof::Password(&password)).await
    else {
        front::refuse(&mut client).await;
        return Err(ProxyError::BadToken);
    };
    drop(password);
    let keys = CancelKeys::default();
    relay_after_login(client, counts, params, &upstream, &*audit, &keys).await
}

async fn relay_after_login<S>(
    mut client: Counted<S>,
    counts: Arc<Counts>,
    params: Vec<(Bytes, Bytes)>,
    upstream: &Upstream,
    audit: &dyn Audit,
    keys: &CancelKeys,
) -> Result<Summary, ProxyError>
where
    S: AsyncRead + AsyncWrite + Unpin + Send,
{
    let session = auth::login(upstream, &params, &mut client).await?;
    if let Some(key) = session.key {
        keys.set(key);
    }
    let on_drop = session.key.map(|key| cancel_on_drop(upstream, key));
    let shared = Shared {
        audit,
        tracker: Mutex::new(Tracker::new(session.status)),
        wake: Notify::new(),
        logged: AtomicU64::new(0),
    };
    let result = relay(&shared, client, session.stream).await;
    if let Some(on_drop) = on_drop {
        on_drop.disarm();
    }
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

/// What both halves of the relay share.
struct Shared<'a> {
    audit: &'a dyn Audit,
    tracker: Mutex<Tracker>,
    /// Rung when the client half queued an answer of the proxy's own.
    wake: Notify,
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

async fn relay<S>(shared: &Shared<'_>, client: S, server: ServerStream) -> Result<(), ProxyError>
where
    S: AsyncRead + AsyncWrite + Unpin + Send,
{
    let (mut client_read, client_write) = tokio::io::split(client);
    let (mut server_read, server_write) = server.into_split();
    let mut client_write = BufWriter::new(client_write);
    let mut up = Up {
        shared,
        server: BufWriter::new(server_write),
        statements: Names::default(),
        portals: Names::default(),
        dropping: false,
        forwarding: true,
    };
    let upward = up.run(&mut client_read);
    let downward = down(shared, &mut server_read, &mut client_write);
    tokio::pin!(upward, downward);
    tokio::select! {
        result = &mut downward => result,
        result = &mut upward => {
            result?;
            // The client said goodbye: the server's last answers still
            // settle the outcomes of its statements.
            let _ = tokio::time::timeout(DRAIN, downward).await;
            Ok(())
        }
    }
}

/// The server-to-client half.
async fn down<R, W>(shared: &Shared<'_>, server: &mut R, client: &mut W) -> Result<(), ProxyError>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let mut decoder = Decoder::new(Side::Server);
    let mut buf = vec![0u8; READ_SIZE];
    let (mut due, mut logged) = (Vec::new(), Vec::new());
    loop {
        while let Some(frame) = decoder.next_frame().map_err(server_protocol)? {
            match frame {
                Frame::Whole { tag, body } => {
                    let answered = {
                        let mut tracker = shared.tracker();
                        let answered = tracker.answer(tag, &body, &mut logged);
                        tracker.due(&mut due);
                        answered
                    };
                    if let Err(e) = answered {
                        return Err(refuse_server(client, e).await);
                    }
                    send(client, &wire::header(tag, body.len())).await?;
                    send(client, &body).await?;
                }
                Frame::Start { tag, len, head } => {
                    shared.tracker().stream(tag).map_err(track_error)?;
                    send(client, &wire::header(tag, len)).await?;
                    send(client, &head).await?;
                }
                Frame::More(bytes) => send(client, &bytes).await?,
                Frame::TooLong { tag, len } => {
                    return Err(ProxyError::ServerProtocol(format!(
                        "message {:?} of {len} bytes, over the proxy's 1 MiB limit",
                        char::from(tag)
                    )));
                }
            }
            for bytes in due.drain(..) {
                send(client, &bytes).await?;
            }
            for statement in logged.drain(..) {
                shared.log(statement);
            }
        }
        if decoder.at_boundary() {
            shared.tracker().due(&mut due);
            for bytes in due.drain(..) {
                send(client, &bytes).await?;
            }
        }
        client.flush().await.map_err(ProxyError::Client)?;
        tokio::select! {
            read = server.read(&mut buf) => match read.map_err(ProxyError::Server)? {
                0 => return Ok(()),
                n => decoder.push(buf.get(..n).unwrap_or_default()),
            },
            () = shared.wake.notified() => {}
        }
    }
}

async fn send<W: AsyncWrite + Unpin>(client: &mut W, bytes: &[u8]) -> Result<(), ProxyError> {
    client.write_all(bytes).await.map_err(ProxyError::Client)
}

/// The error for server messages that do not fit; the client is told the
/// connection ends.
async fn refuse_server<W: AsyncWrite + Unpin>(client: &mut W, e: TrackError) -> ProxyError {
    let error = track_error(e);
    front::fatal(client, "08P01", &format!("rampart: {error}")).await;
    error
}

fn track_error(e: TrackError) -> ProxyError {
    match e {
        TrackError::Encoding(name) => ProxyError::Encoding(name),
        e => ProxyError::ServerProtocol(e.to_string()),
    }
}

fn server_protocol(e: wire::WireError) -> ProxyError {
    ProxyError::ServerProtocol(e.to_string())
}

fn client_protocol(e: wire::WireError) -> ProxyError {
    ProxyError::ClientProtocol(e.to_string())
}

/// The ErrorResponse for a statement a rule refused.
fn refusal(rule: &str) -> Bytes {
    let text = format!("rampart: statement refused by rule {rule}");
    wire::error_response("ERROR", "42501", &text)
}

/// The client-to-server half.
struct Up<'a, W> {
    shared: &'a Shared<'a>,
    server: BufWriter<W>,
    /// Prepared statement names and portals, to the text they run.
    statements: Names,
    portals: Names,
    /// After a refused Parse: every message up to the next Sync is dropped.
    dropping: bool,
    /// Whether the pieces of the streamed message under way go on.
    forwarding: bool,
}

/// Whether the client half goes on after a message.
enum Flow {
    Go,
    Stop,
}

impl<W: AsyncWrite + Unpin> Up<'_, W> {
    async fn run<R: AsyncRead + Unpin>(&mut self, client: &mut R) -> Result<(), ProxyError> {
        let mut decoder = Decoder::new(Side::Client);
        let mut buf = vec![0u8; READ_SIZE];
        loop {
            while let Some(frame) = decoder.next_frame().map_err(client_protocol)? {
                if let Flow::Stop = self.frame(frame).await? {
                    return self.flush().await;
                }
            }
            self.flush().await?;
            match client.read(&mut buf).await.map_err(ProxyError::Client)? {
                0 => {
                    // Gone without a Terminate: end the server's session
                    // as a polite client would.
                    self.write(&wire::message(b'X', &[])).await?;
                    return self.flush().await;
                }
                n => decoder.push(buf.get(..n).unwrap_or_default()),
            }
        }
    }

    async fn frame(&mut self, frame: Frame) -> Result<Flow, ProxyError> {
        match frame {
            Frame::Whole { tag, body } => self.whole(tag, body).await,
            Frame::Start { tag, len, head } => {
                self.start(tag, len, head).await?;
                Ok(Flow::Go)
            }
            Frame::More(bytes) => {
                if self.forwarding {
                    self.write(&bytes).await?;
                }
                Ok(Flow::Go)
            }
            Frame::TooLong { tag, len } => {
                self.too_long(tag, len).await?;
                Ok(Flow::Go)
            }
        }
    }

    async fn whole(&mut self, tag: u8, body: Bytes) -> Result<Flow, ProxyError> {
        if self.dropping && tag != b'S' && tag != b'X' {
            return Ok(Flow::Go);
        }
        let owed = match tag {
            b'Q' => return self.query(body).await,
            b'P' => return self.parse(body).await,
            b'E' => {
                let portal = wire::execute(body.clone()).map_err(client_protocol)?;
                let text = self.portals.get(&portal).unwrap_or_else(|| {
                    format!(
                        "(portal {:?}, opened in SQL)",
                        String::from_utf8_lossy(&portal)
                    )
                    .into()
                });
                Some(Owed::Execute(Pending::new(text)))
            }
            b'D' => {
                wire::target(tag, body.clone()).map_err(client_protocol)?;
                Some(Owed::Describe)
            }
            b'C' => {
                let (kind, name) = wire::target(tag, body.clone()).map_err(client_protocol)?;
                match kind {
                    b'S' => self.statements.remove(&name),
                    _ => self.portals.remove(&name),
                }
                Some(Owed::Close)
            }
            b'S' => {
                wire::empty(tag, &body).map_err(client_protocol)?;
                self.dropping = false;
                Some(Owed::Sync)
            }
            b'H' | b'c' | b'X' => {
                wire::empty(tag, &body).map_err(client_protocol)?;
                None
            }
            b'f' => {
                wire::copy_fail(body.clone()).map_err(client_protocol)?;
                None
            }
            _ => {
                return Err(ProxyError::ClientProtocol(format!(
                    "message {:?} after the login",
                    char::from(tag)
                )));
            }
        };
        // Owed before it is sent: the answer may come back at once.
        if let Some(owed) = owed {
            self.shared.tracker().sent(owed);
        }
        self.write(&wire::header(tag, body.len())).await?;
        self.write(&body).await?;
        Ok(if tag == b'X' { Flow::Stop } else { Flow::Go })
    }

    async fn query(&mut self, body: Bytes) -> Result<Flow, ProxyError> {
        let text = wire::query(body.clone()).map_err(client_protocol)?;
        let started = Instant::now();
        match self.verdict(&text).await? {
            Verdict::Allow => {
                let pending = Pending::new(log_text(&text));
                self.shared.tracker().sent(Owed::Query(pending));
                self.write(&wire::header(b'Q', body.len())).await?;
                self.write(&body).await?;
            }
            Verdict::Deny { rule } => {
                self.refuse(Owed::Answer(refusal(&rule))).await?;
                self.refused(log_text(&text), rule, started);
            }
        }
        Ok(Flow::Go)
    }

    async fn parse(&mut self, body: Bytes) -> Result<Flow, ProxyError> {
        let parse = wire::parse(body.clone()).map_err(client_protocol)?;
        let started = Instant::now();
        match self.verdict(&parse.text).await? {
            Verdict::Allow => {
                self.statements.insert(parse.name, log_text(&parse.text))?;
                self.shared.tracker().sent(Owed::Parse);
                self.write(&wire::header(b'P', body.len())).await?;
                self.write(&body).await?;
            }
            Verdict::Deny { rule } => {
                self.refuse(Owed::Refusal(refusal(&rule))).await?;
                self.dropping = true;
                self.refused(log_text(&parse.text), rule, started);
            }
        }
        Ok(Flow::Go)
    }

    /// The first piece of a streamed message: a Bind, CopyData or a
    /// FunctionCall.
    async fn start(&mut self, tag: u8, len: usize, head: Bytes) -> Result<(), ProxyError> {
        self.forwarding = !self.dropping;
        if self.dropping {
            return Ok(());
        }
        match tag {
            b'B' => {
                let (portal, statement) =
                    wire::bind_names(head.clone()).map_err(client_protocol)?;
                let text = self.statements.get(&statement).unwrap_or_else(|| {
                    let name = String::from_utf8_lossy(&statement);
                    format!("(statement {name:?}, prepared in SQL)").into()
                });
                self.portals.insert(portal, text)?;
                self.shared.tracker().sent(Owed::Bind);
            }
            b'd' => {}
            _ => {
                // A fast-path FunctionCall runs a function by its number,
                // with no statement a rule could read.
                self.forwarding = false;
                let rule = "fast-path function call".to_string();
                self.refuse(Owed::Answer(refusal(&rule))).await?;
                self.refused("(a fast-path function call)".into(), rule, Instant::now());
                return Ok(());
            }
        }
        self.write(&wire::header(tag, len)).await?;
        self.write(&head).await
    }

    /// A Query or Parse over [`MAX_STATEMENT`]: refused unread (its bytes
    /// are skipped); anything else that long breaks the protocol.
    async fn too_long(&mut self, tag: u8, len: usize) -> Result<(), ProxyError> {
        if self.dropping {
            return Ok(());
        }
        let text = format!(
            "statement too long for the bastion ({len} bytes, at most {} MiB)",
            MAX_STATEMENT >> 20
        );
        let error = wire::error_response("ERROR", "54000", &text);
        match tag {
            b'Q' => self.refuse(Owed::Answer(error)).await?,
            b'P' => {
                self.refuse(Owed::Refusal(error)).await?;
                self.dropping = true;
            }
            _ => {
                return Err(ProxyError::ClientProtocol(format!(
                    "message {:?} of {len} bytes, over the proxy's 1 MiB limit",
                    char::from(tag)
                )));
            }
        }
        let logged = format!("(a statement of {len} bytes, not read)");
        self.refused(logged.into(), "size limit".into(), Instant::now());
        Ok(())
    }

    /// Every statement of `text` put to the rules; the first denial wins.
    async fn verdict(&mut self, text: &[u8]) -> Result<Verdict, ProxyError> {
        // Whatever is already forwarded goes out before a check that may
        // wait for an administrator.
        self.flush().await?;
        let split = sql::split(&String::from_utf8_lossy(text));
        if split.ambiguous {
            return Ok(Verdict::Deny {
                rule: "unreadable: ambiguous backslash in an escape string, or SQL nested too deep"
                    .into(),
            });
        }
        // Each distinct statement once: "x; x; x" asks an approver once.
        let mut asked = std::collections::HashSet::new();
        for statement in &split.statements {
            if !asked.insert(statement.as_str()) {
                continue;
            }
            if let deny @ Verdict::Deny { .. } = self.shared.audit.check(statement).await {
                return Ok(deny);
            }
        }
        Ok(Verdict::Allow)
    }

    /// Queues the proxy's answer to a refused message and wakes the server
    /// half, which sends it in its turn.
    async fn refuse(&mut self, owed: Owed) -> Result<(), ProxyError> {
        let waiting = self.shared.tracker().refuse(owed);
        if waiting {
            self.write(&wire::message(b'H', &[])).await?;
            self.flush().await?;
        }
        self.shared.wake.notify_one();
        Ok(())
    }

    fn refused(&self, text: Arc<str>, rule: String, started: Instant) {
        self.shared.log(Statement {
            text: text.to_string(),
            outcome: Outcome::Refused { rule },
            duration: started.elapsed(),
        });
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

/// Prepared statement or portal names, to the text they run.
#[derive(Default)]
pub(super) struct Names {
    texts: HashMap<Bytes, Arc<str>>,
    bytes: usize,
}

impl Names {
    pub(super) fn get(&self, name: &Bytes) -> Option<Arc<str>> {
        self.texts.get(name).cloned()
    }

    /// Records a name; the unnamed one is simply replaced.
    pub(super) fn insert(&mut self, name: Bytes, text: Arc<str>) -> Result<(), ProxyError> {
        let old = self.texts.get(&name).map_or(0, |t| name.len() + t.len());
        let bytes = self.bytes - old + name.len() + text.len();
        if bytes > MAX_PREPARED_BYTES || (old == 0 && self.texts.len() >= MAX_PREPARED) {
            return Err(ProxyError::TooManyPrepared);
        }
        self.bytes = bytes;
        self.texts.insert(name, text);
        Ok(())
    }

    pub(super) fn remove(&mut self, name: &Bytes) {
        if let Some(text) = self.texts.remove(name) {
            self.bytes -= name.len() + text.len();
        }
    }
}
