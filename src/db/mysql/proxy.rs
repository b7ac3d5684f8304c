//! The accept loop and the relay of one connection: the client's commands
//! read, checked and forwarded (or refused), the server's answer to each
//! relayed and read for its outcome ([`Reply`]). One task, both directions:
//! while no answer is owed it waits on either side (a command, or the
//! server's word that it is closing the connection); while one is owed it
//! reads the server only, and the client's next commands wait in the
//! socket, as the classic protocol has it.

use crate::db::contract::first_then;
use futures_util::future::BoxFuture;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufWriter};
use tokio::net::{UnixListener, UnixStream};
use zeroize::Zeroizing;

use super::auth;
use super::cancel;
use super::sql::{self, MySqlServer};
use super::track::{Kind, Pending, Reply, Statements, Step};
use super::wire::{self, Decoder, Frame, Head, MAX_STATEMENT, com};
use super::{Accepted, Audit, Outcome, ProxyError, Statement, Summary, Upstream, Verdict};
use crate::db::contract::{Counted, Counts, Login, OnDrop, log_text};

/// How much is read from either side at a time.
const READ_SIZE: usize = 16 << 10;
/// The most a command other than a query or prepare may hold.
const MAX_CONTROL: usize = 1 << 20;

/// Serves the session's database connection on `listener`: the first
/// connection must give `token` and is relayed to `upstream`; later ones
/// get an ERR and are closed. Returns when the first connection ends.
pub async fn serve(
    listener: UnixListener,
    token: Zeroizing<String>,
    upstream: Upstream,
    audit: Arc<dyn Audit>,
    accepted: Option<Accepted>,
) -> Result<Summary, ProxyError> {
    let greeted = cancel::Greeted::default();
    let main = |stream| serve_first(stream, &token, &upstream, &*audit, &greeted);
    let (token_of_later, upstream_of_later) = (Arc::new(token.clone()), Arc::new(upstream.clone()));
    let later = |stream| {
        let (token, upstream) = (token_of_later.clone(), upstream_of_later.clone());
        Box::pin(cancel::serve(stream, token, upstream, greeted.clone())) as BoxFuture<'static, ()>
    };
    first_then(listener, accepted, ProxyError::Accept, main, later).await
}

/// The session's first connection, as [`serve_connection`]; the greeting
/// it got is kept for the client's Ctrl-C connections.
async fn serve_first<S>(
    client: S,
    token: &str,
    upstream: &Upstream,
    audit: &dyn Audit,
    greeted: &cancel::Greeted,
) -> Result<Summary, ProxyError>
where
    S: AsyncRead + AsyncWrite + Unpin + Send,
{
    let counts = Arc::new(Counts::default());
    let mut client = Counted {
        inner: client,
        counts: counts.clone(),
    };
    let (session, _) = auth::open(&mut client, auth::Gate::Token(token), upstream).await?;
    let _ = greeted.set(session.greeting.clone());
    relay_session(client, counts, session, upstream, audit).await
}

/// A connection after the session's first that may not cancel: an ERR
/// in place of the greeting, as a server that has too many connections
/// sends it.
pub(super) async fn refuse_second(mut stream: UnixStream) {
    let error = wire::build_error(0, 1040, "", "rampart: one connection per session");
    let writing = stream.write_all(&error);
    let _ = tokio::time::timeout(Duration::from_secs(5), writing).await;
    tracing::info!(target: "db", "{}", ProxyError::Second);
}

/// One connection: the client's login with `token`, the login upstream,
/// then the relay until either side ends.
pub async fn serve_connection<S>(
    client: S,
    token: &str,
    upstream: &Upstream,
    audit: &dyn Audit,
) -> Result<Summary, ProxyError>
where
    S: AsyncRead + AsyncWrite + Unpin + Send,
{
    serve_first(client, token, upstream, audit, &cancel::Greeted::default()).await
}

/// One connection whose login `login` decides (a desktop tool through the
/// person's SSH tunnel): the server at `server` greets first, as the
/// client wants a greeting before it says who it is; then the client's
/// user name and proof, the login upstream as whom `login` says, and the
/// relay, audited by the session `login` opened.
pub async fn serve_login<S>(
    client: S,
    server: &Upstream,
    login: &dyn Login,
) -> Result<Summary, ProxyError>
where
    S: AsyncRead + AsyncWrite + Unpin + Send,
{
    let counts = Arc::new(Counts::default());
    let mut client = Counted {
        inner: client,
        counts: counts.clone(),
    };
    let (session, admitted) = auth::open(&mut client, auth::Gate::Login(login), server).await?;
    let Some(admitted) = admitted else {
        return Err(ProxyError::BadToken);
    };
    relay_session(
        client,
        counts,
        session,
        &admitted.upstream,
        &*admitted.audit,
    )
    .await
}

/// What a dropped relay leaves for the server: `KILL QUERY` of the
/// connection's running statement (one while nothing runs does nothing).
fn kill_on_drop(upstream: &Upstream, connection: u32) -> OnDrop {
    let upstream = upstream.clone();
    OnDrop::new(Box::pin(async move {
        if let Err(e) = auth::kill_query(&upstream, connection).await {
            tracing::info!(target: "db", "KILL QUERY after the session's end: {e}");
        }
    }))
}

/// The relay of a logged-in connection until either side ends.
async fn relay_session<S>(
    client: Counted<S>,
    counts: Arc<Counts>,
    session: auth::Session,
    upstream: &Upstream,
    audit: &dyn Audit,
) -> Result<Summary, ProxyError>
where
    S: AsyncRead + AsyncWrite + Unpin + Send,
{
    let on_drop = kill_on_drop(upstream, session.greeting.connection);
    let (mut client_read, client_write) = tokio::io::split(client);
    let (mut server_read, server_write) = session.stream.into_split();
    let mut relay = Relay {
        audit,
        server: session.server,
        to_client: BufWriter::new(client_write),
        to_server: BufWriter::new(server_write),
        from_client: Decoder::new(),
        from_server: Decoder::new(),
        command: None,
        reply: None,
        forwarding: false,
        statements: Statements::default(),
        logged: 0,
    };
    let result = relay.run(&mut client_read, &mut server_read).await;
    on_drop.disarm();
    if let Some(statement) = relay.reply.take().and_then(Reply::unfinished) {
        relay.log(statement);
    }
    result?;
    Ok(Summary {
        bytes_from_client: counts.read.load(Ordering::Relaxed),
        bytes_to_client: counts.written.load(Ordering::Relaxed),
        statements: relay.logged,
    })
}

/// A client command being read.
enum Command {
    /// Held whole (up to a cap; `over` counts what was skipped past it).
    Whole {
        command: u8,
        payload: BytesMut,
        over: usize,
        seq: u8,
        last: bool,
    },
    /// Streamed to the server as it comes: COM_STMT_EXECUTE and
    /// COM_STMT_SEND_LONG_DATA, whose parameters may be large and are not
    /// read.
    Stream {
        command: u8,
        id: u32,
        seq: u8,
        last: bool,
    },
}

impl Command {
    fn seq(&self) -> u8 {
        match self {
            Command::Whole { seq, .. } | Command::Stream { seq, .. } => *seq,
        }
    }

    /// Whether the packet under way ends the command's payload.
    fn last(&self) -> bool {
        match self {
            Command::Whole { last, .. } | Command::Stream { last, .. } => *last,
        }
    }
}

/// Whether the relay goes on after a command.
enum Flow {
    Go,
    Stop,
}

struct Relay<'a, CW, SW> {
    audit: &'a dyn Audit,
    server: Option<MySqlServer>,
    to_client: BufWriter<CW>,
    to_server: BufWriter<SW>,
    from_client: Decoder,
    from_server: Decoder,
    command: Option<Command>,
    /// The answer owed to the last command forwarded.
    reply: Option<Reply>,
    /// Whether the rest of the server packet under way goes to the client.
    forwarding: bool,
    statements: Statements,
    logged: u64,
}

impl<CW: AsyncWrite + Unpin, SW: AsyncWrite + Unpin> Relay<'_, CW, SW> {
    async fn run<CR, SR>(&mut self, client: &mut CR, server: &mut SR) -> Result<(), ProxyError>
    where
        CR: AsyncRead + Unpin,
        SR: AsyncRead + Unpin,
    {
        let (mut from_client, mut from_server) = (vec![0u8; READ_SIZE], vec![0u8; READ_SIZE]);
        loop {
            let mut moved = false;
            while self.reply.is_none() {
                let Some(frame) = self.from_client.next_frame() else {
                    break;
                };
                moved = true;
                if let Flow::Stop = self.client_frame(frame).await? {
                    return self.flush().await;
                }
            }
            while let Some(frame) = self.from_server.next_frame() {
                moved = true;
                self.server_frame(frame).await?;
            }
            if moved {
                // A reply may have ended: commands already read go next.
                continue;
            }
            self.flush().await?;
            if self.reply.is_some() {
                match server
                    .read(&mut from_server)
                    .await
                    .map_err(ProxyError::Server)?
                {
                    0 => return Ok(()),
                    n => self
                        .from_server
                        .push(from_server.get(..n).unwrap_or_default()),
                }
                continue;
            }
            tokio::select! {
                read = client.read(&mut from_client) => match read.map_err(ProxyError::Client)? {
                    0 => return self.client_gone().await,
                    n => self.from_client.push(from_client.get(..n).unwrap_or_default()),
                },
                read = server.read(&mut from_server) => match read.map_err(ProxyError::Server)? {
                    0 => return Ok(()),
                    n => self.from_server.push(from_server.get(..n).unwrap_or_default()),
                },
            }
        }
    }

    /// The client left without COM_QUIT: end the server's session as a
    /// polite client would, unless a command was cut short.
    async fn client_gone(&mut self) -> Result<(), ProxyError> {
        if self.command.is_none() && !self.from_client.pending() {
            self.write_server(&wire::packet(0, &[com::QUIT])).await?;
        }
        self.flush().await
    }

    async fn flush(&mut self) -> Result<(), ProxyError> {
        self.to_server.flush().await.map_err(ProxyError::Server)?;
        self.to_client.flush().await.map_err(ProxyError::Client)
    }

    async fn write_server(&mut self, bytes: &[u8]) -> Result<(), ProxyError> {
        self.to_server
            .write_all(bytes)
            .await
            .map_err(ProxyError::Server)
    }

    async fn write_client(&mut self, bytes: &[u8]) -> Result<(), ProxyError> {
        self.to_client
            .write_all(bytes)
            .await
            .map_err(ProxyError::Client)
    }

    fn log(&mut self, statement: Statement) {
        self.logged += 1;
        self.audit.logged(statement);
    }

    // ---- The server's side ----------------------------------------------

    async fn server_frame(&mut self, frame: Frame) -> Result<(), ProxyError> {
        match frame {
            Frame::Head(head) => {
                let Some(reply) = self.reply.as_mut() else {
                    return self.unsolicited(head).await;
                };
                let step = reply
                    .packet(&head)
                    .map_err(|e| ProxyError::ServerProtocol(e.to_string()))?;
                match step {
                    Step::Forward(seq) => {
                        self.forwarding = true;
                        self.write_client(&wire::header(head.len, seq)).await?;
                        self.write_client(&head.bytes).await?;
                    }
                    Step::Answer(bytes) => {
                        // LOCAL INFILE: the server gets an empty file.
                        self.forwarding = false;
                        self.write_server(&bytes).await?;
                        self.to_server.flush().await.map_err(ProxyError::Server)?;
                    }
                }
                if head.whole() {
                    self.settle()?;
                }
            }
            Frame::More { bytes, end } => {
                if self.forwarding {
                    self.write_client(&bytes).await?;
                }
                if end {
                    self.settle()?;
                }
            }
        }
        Ok(())
    }

    /// After a whole server packet: the reply, if it is over, is logged.
    fn settle(&mut self) -> Result<(), ProxyError> {
        if !self.reply.as_ref().is_some_and(Reply::done) {
            return Ok(());
        }
        let Some(mut reply) = self.reply.take() else {
            return Ok(());
        };
        if let (Some(prepared), Some(text)) = (reply.prepared.take(), reply.text()) {
            self.statements.insert(prepared.id, text)?;
        }
        if let Some(statement) = reply.finish() {
            self.log(statement);
        }
        Ok(())
    }

    /// A server packet when no answer is owed: an ERR as the server closes
    /// the connection (killed, shut down, timed out) goes to the client;
    /// anything else breaks the protocol.
    async fn unsolicited(&mut self, head: Head) -> Result<(), ProxyError> {
        if head.first && head.whole() && head.bytes.first() == Some(&0xff) {
            if let Ok(error) = wire::error(head.bytes.clone()) {
                tracing::info!(target: "db", "the database server says: {}", error.line());
            }
            self.write_client(&wire::header(head.len, head.seq)).await?;
            return self.write_client(&head.bytes).await;
        }
        Err(ProxyError::ServerProtocol(
            "a packet from the server when no answer was due".into(),
        ))
    }

    // ---- The client's side ----------------------------------------------

    async fn client_frame(&mut self, frame: Frame) -> Result<Flow, ProxyError> {
        let command = match (self.command.take(), frame) {
            (None, Frame::Head(head)) => self.start(head).await?,
            (Some(command), Frame::Head(head)) => self.more(command, head).await?,
            (Some(command), Frame::More { bytes, .. }) => self.piece(command, bytes).await?,
            (None, Frame::More { .. }) => {
                return Err(ProxyError::ClientProtocol("a piece of no packet".into()));
            }
        };
        if command.last() && self.from_client.at_boundary() {
            return self.complete(command).await;
        }
        self.command = Some(command);
        Ok(Flow::Go)
    }

    /// The first packet of a command.
    async fn start(&mut self, head: Head) -> Result<Command, ProxyError> {
        if !head.first || head.seq != 0 {
            let error = wire::WireError::Sequence {
                got: head.seq,
                want: 0,
            };
            return Err(ProxyError::ClientProtocol(error.to_string()));
        }
        let Some(&command) = head.bytes.first() else {
            return Err(client_protocol(wire::WireError::Empty));
        };
        if command == com::STMT_EXECUTE || command == com::STMT_SEND_LONG_DATA {
            let id = wire::statement_id(&head.bytes).map_err(client_protocol)?;
            self.write_server(&wire::header(head.len, head.seq)).await?;
            self.write_server(&head.bytes).await?;
            return Ok(Command::Stream {
                command,
                id,
                seq: head.seq,
                last: head.last(),
            });
        }
        let mut whole = Command::Whole {
            command,
            payload: BytesMut::new(),
            over: 0,
            seq: head.seq,
            last: head.last(),
        };
        append(&mut whole, &head.bytes);
        Ok(whole)
    }

    /// A later packet of a payload of 16 MiB or more.
    async fn more(&mut self, mut command: Command, head: Head) -> Result<Command, ProxyError> {
        let want = command.seq().wrapping_add(1);
        if head.first || head.seq != want {
            let error = wire::WireError::Sequence {
                got: head.seq,
                want,
            };
            return Err(client_protocol(error));
        }
        match &mut command {
            Command::Stream { seq, last, .. } => {
                (*seq, *last) = (head.seq, head.last());
                self.write_server(&wire::header(head.len, head.seq)).await?;
                self.write_server(&head.bytes).await?;
            }
            Command::Whole { seq, last, .. } => {
                (*seq, *last) = (head.seq, head.last());
                append(&mut command, &head.bytes);
            }
        }
        Ok(command)
    }

    /// More bytes of the packet under way.
    async fn piece(&mut self, mut command: Command, bytes: Bytes) -> Result<Command, ProxyError> {
        match command {
            Command::Stream { .. } => self.write_server(&bytes).await?,
            Command::Whole { .. } => append(&mut command, &bytes),
        }
        Ok(command)
    }

    /// A command read to its end.
    async fn complete(&mut self, command: Command) -> Result<Flow, ProxyError> {
        match command {
            Command::Stream {
                command: com::STMT_EXECUTE,
                id,
                seq,
                ..
            } => {
                let text = self.statements.get(id).unwrap_or_else(|| {
                    format!("(prepared statement {id}, not prepared through the bastion)").into()
                });
                self.reply = Some(Reply::new(Kind::Results, seq, Some(Pending::new(text))));
                Ok(Flow::Go)
            }
            // COM_STMT_SEND_LONG_DATA has no answer.
            Command::Stream { .. } => Ok(Flow::Go),
            Command::Whole {
                command,
                over: 0,
                payload,
                seq,
                ..
            } => self.command(command, payload.freeze(), seq).await,
            Command::Whole {
                command,
                over,
                payload,
                seq,
                ..
            } => self.too_long(command, payload.len() + over, seq).await,
        }
    }
}

/// Adds bytes to a command held whole, up to its cap.
fn append(command: &mut Command, bytes: &[u8]) {
    let Command::Whole {
        command,
        payload,
        over,
        ..
    } = command
    else {
        return;
    };
    let cap = match *command {
        com::QUERY | com::STMT_PREPARE => MAX_STATEMENT,
        _ => MAX_CONTROL,
    };
    if *over > 0 || payload.len() + bytes.len() > cap {
        *over += payload.len() + bytes.len();
        *payload = BytesMut::new();
    } else {
        payload.extend_from_slice(bytes);
    }
}

fn client_protocol(e: wire::WireError) -> ProxyError {
    ProxyError::ClientProtocol(e.to_string())
}

/// The ERR for a statement a rule refused.
fn refusal(seq: u8, rule: &str) -> Bytes {
    let text = format!("rampart: statement refused by rule {rule}");
    wire::build_error(seq.wrapping_add(1), 1227, "42000", &text)
}

impl<CW: AsyncWrite + Unpin, SW: AsyncWrite + Unpin> Relay<'_, CW, SW> {
    /// A whole command: judged, then forwarded or answered.
    async fn command(&mut self, command: u8, payload: Bytes, seq: u8) -> Result<Flow, ProxyError> {
        // The command byte is there: the payload started with it.
        let body = payload.slice(payload.len().min(1)..);
        let (kind, pending) = match command {
            com::QUIT => {
                self.write_server(&wire::packets(0, &payload).0).await?;
                return Ok(Flow::Stop);
            }
            com::QUERY | com::STMT_PREPARE | com::INIT_DB => {
                let text = match command {
                    com::INIT_DB => use_text(&body),
                    _ => body.to_vec(),
                };
                let started = Instant::now();
                if let Verdict::Deny { rule } = self.verdict(&text).await {
                    self.write_client(&refusal(seq, &rule)).await?;
                    self.refused(log_text(&text), rule, started);
                    return Ok(Flow::Go);
                }
                let kind = match command {
                    com::QUERY => Kind::Results,
                    com::STMT_PREPARE => Kind::Prepare,
                    _ => Kind::One,
                };
                (kind, Some(Pending::new(log_text(&text))))
            }
            com::STMT_CLOSE => {
                self.statements
                    .remove(wire::statement_id(&payload).map_err(client_protocol)?);
                self.write_server(&wire::packets(0, &payload).0).await?;
                return Ok(Flow::Go);
            }
            com::RESET_CONNECTION => {
                self.statements.clear();
                (Kind::One, None)
            }
            com::PING | com::STMT_RESET | com::SET_OPTION | com::STATISTICS => (Kind::One, None),
            com::FIELD_LIST => (Kind::Fields, None),
            com::STMT_FETCH => (Kind::Fetch, None),
            other => return self.unreadable(other, seq).await,
        };
        // Owed before it is sent: the answer is read only after this.
        self.reply = Some(Reply::new(kind, seq, pending));
        self.write_server(&wire::packets(0, &payload).0).await?;
        Ok(Flow::Go)
    }

    /// Commands the rules cannot read, or that would leave the session:
    /// COM_CHANGE_USER (another upstream user), replication, COM_SHUTDOWN,
    /// COM_PROCESS_KILL, COM_DROP_DB and the rest of the old ones.
    async fn unreadable(&mut self, command: u8, seq: u8) -> Result<Flow, ProxyError> {
        let name = wire::command_name(command);
        let text = format!("rampart: {name} is refused: the bastion's rules cannot read it");
        let error = wire::build_error(seq.wrapping_add(1), 1227, "42000", &text);
        self.write_client(&error).await?;
        self.refused(
            format!("({name})").into(),
            "protocol command".into(),
            Instant::now(),
        );
        Ok(Flow::Go)
    }

    /// A query or prepare over [`MAX_STATEMENT`]: refused unread.
    async fn too_long(&mut self, command: u8, len: usize, seq: u8) -> Result<Flow, ProxyError> {
        if command != com::QUERY && command != com::STMT_PREPARE {
            let name = wire::command_name(command);
            return Err(ProxyError::ClientProtocol(format!(
                "{name} of {len} bytes, over the proxy's 1 MiB limit"
            )));
        }
        let text = format!(
            "statement too long for the bastion ({len} bytes, at most {} MiB)",
            MAX_STATEMENT >> 20
        );
        let error = wire::build_error(seq.wrapping_add(1), 1105, "HY000", &text);
        self.write_client(&error).await?;
        let logged = format!("(a statement of {len} bytes, not read)");
        self.refused(logged.into(), "size limit".into(), Instant::now());
        Ok(Flow::Go)
    }

    /// Every statement of `text` put to the rules; the first denial wins.
    async fn verdict(&self, text: &[u8]) -> Verdict {
        let split = sql::split_mysql(text, self.server);
        if split.ambiguous {
            return Verdict::Deny {
                rule: "unreadable: ambiguous quoting or comment, or SQL prepared from a variable"
                    .into(),
            };
        }
        // Each distinct statement once: "x; x; x" asks an approver once.
        let mut asked = std::collections::HashSet::new();
        for statement in &split.statements {
            if !asked.insert(statement.as_str()) {
                continue;
            }
            if let deny @ Verdict::Deny { .. } = self.audit.check(statement).await {
                return deny;
            }
        }
        Verdict::Allow
    }

    fn refused(&mut self, text: Arc<str>, rule: String, started: Instant) {
        self.log(Statement {
            text: text.to_string(),
            outcome: Outcome::Refused { rule },
            duration: started.elapsed(),
        });
    }
}

/// COM_INIT_DB as the statement it stands for: `USE db`, the name
/// backquoted unless it is a plain word.
fn use_text(name: &[u8]) -> Vec<u8> {
    let plain = !name.is_empty()
        && name
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || *b == b'_' || *b == b'$');
    let mut text = b"USE ".to_vec();
    if plain {
        text.extend_from_slice(name);
    } else {
        text.push(b'`');
        for &b in name {
            if b == b'`' {
                text.push(b'`');
            }
            text.push(b);
        }
        text.push(b'`');
    }
    text
}
