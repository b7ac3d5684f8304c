//! The two logins before the relay: the client's to the proxy when the
//! front asks for a token, and the proxy's to the server with the vaulted
//! secret. Also the last words to a client whose connection ends early.
//!
//! Neither secret leaves this file: the token is only compared (in
//! constant time), the password only sent to the server, in a buffer
//! zeroised after; an error carries the server's message with any echo of
//! the password masked.

use std::time::Duration;

use bytes::Bytes;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use zeroize::Zeroizing;

use super::command::hello_auth;
use super::reply::{Answer, Piece, Replies};
use super::request::{Request, Requests};
use super::resp::{self, RespError};
use super::text::{MASK, is};
use super::{ProxyError, Upstream};
use crate::db::contract::{self, Admitted, Login, Proof, ServerStream, Unreachable, same_secret};

/// How long a client has to authenticate: a client library sends AUTH at
/// once, a person never types it here.
pub const CLIENT_TIMEOUT: Duration = Duration::from_secs(30);
/// How much is read from either side at a time.
pub const READ_SIZE: usize = 16 << 10;
/// Commands answered `NOAUTH` before the connection is closed.
const MAX_UNAUTHENTICATED: usize = 16;
/// How long a refused client has to read its error before the close.
const GOODBYE: Duration = Duration::from_secs(1);

/// What the server says to a wrong password; the proxy says the same.
const WRONGPASS: &str = "WRONGPASS invalid username-password pair or user is disabled.";

/// Who decides the client's login.
pub enum Gate<'a> {
    /// The session's own client, with the session's one-time password.
    Token(&'a str),
    /// A desktop tool through the person's tunnel: `Login` decides, and
    /// says as whom the proxy logs in and which session audits it.
    Login(&'a dyn Login),
}

/// The client's login through `gate`: `AUTH password`, `AUTH user
/// password` (the user is the gate's to judge; a token ignores it) or
/// `HELLO n AUTH user password`, before any other command. Returns the
/// `HELLO`, which the relay then forwards (without its `AUTH`) for its
/// reply, and what a [`Login`] admitted.
pub async fn greet<S: AsyncRead + AsyncWrite + Unpin>(
    client: &mut S,
    gate: Gate<'_>,
    requests: &mut Requests,
) -> Result<(Option<Vec<Bytes>>, Option<Admitted>), ProxyError> {
    let asked = tokio::time::timeout(CLIENT_TIMEOUT, credentials(client, requests))
        .await
        .map_err(|_| ProxyError::Timeout("the client's AUTH"))??;
    let (user, password) = match asked.args.first() {
        Some(name) if is(name, "HELLO") => hello_auth(&asked.args).ok_or(ProxyError::NoToken)?,
        _ => match asked.args.as_slice() {
            [_, user, password] => (user, password),
            [_, password] => (&Bytes::new(), password),
            _ => return Err(ProxyError::NoToken),
        },
    };
    let admitted = match gate {
        Gate::Token(token) => same_secret(password, token.as_bytes()).then_some(None),
        Gate::Login(login) => {
            let user = String::from_utf8_lossy(user);
            login
                .admit(&user, &Proof::Password(password))
                .await
                .map(Some)
        }
    };
    let Some(admitted) = admitted else {
        goodbye(client, &resp::error(WRONGPASS)).await;
        return Err(ProxyError::BadToken);
    };
    if asked.hello {
        return Ok((Some(asked.args), admitted));
    }
    write(client, &resp::status("OK")).await?;
    Ok((None, admitted))
}

/// The client's first `AUTH` or `HELLO … AUTH`: its arguments.
struct Asked {
    args: Vec<Bytes>,
    hello: bool,
}

/// Reads commands until the first that gives a password; any other is
/// answered `NOAUTH` (up to a limit).
async fn credentials<S: AsyncRead + AsyncWrite + Unpin>(
    client: &mut S,
    requests: &mut Requests,
) -> Result<Asked, ProxyError> {
    let mut buf = vec![0u8; READ_SIZE];
    let mut refused = 0;
    loop {
        let next = requests
            .next_request()
            .map_err(|e| ProxyError::ClientProtocol(e.to_string()))?;
        let args = match next {
            Some(Request::Command(args)) => args,
            Some(Request::TooLong { .. }) => Vec::new(),
            None => match client.read(&mut buf).await.map_err(ProxyError::Client)? {
                0 => return Err(ProxyError::NoToken),
                n => {
                    requests.push(buf.get(..n).unwrap_or_default());
                    continue;
                }
            },
        };
        let name = args.first().map(|a| a.as_ref()).unwrap_or_default();
        if is(name, "AUTH") && matches!(args.len(), 2 | 3) {
            return Ok(Asked { args, hello: false });
        }
        if is(name, "HELLO") && hello_auth(&args).is_some() {
            return Ok(Asked { args, hello: true });
        }
        if is(name, "QUIT") {
            write(client, &resp::status("OK")).await?;
            return Err(ProxyError::NoToken);
        }
        if refused >= MAX_UNAUTHENTICATED {
            goodbye(client, &resp::error("NOAUTH Authentication required.")).await;
            return Err(ProxyError::NoToken);
        }
        refused += 1;
        write(client, &resp::error("NOAUTH Authentication required.")).await?;
    }
}

/// Logs in to the server (over TLS when the asset asks for it, its
/// certificate checked before a byte is sent): `AUTH` with the vaulted
/// secret if there is one, `SELECT` the asset's database if it names one.
/// Returns the connection and its decoder (which holds anything the
/// server sent after).
pub async fn connect(upstream: &Upstream) -> Result<(ServerStream, Replies), ProxyError> {
    let mut login = Zeroizing::new(Vec::new());
    let mut asked = 0;
    if let Some(password) = &upstream.password {
        // Redis 6 ACL users log in by name; `default` is the user of a
        // plain `requirepass`, which older servers know only as AUTH pw.
        if upstream.user.is_empty() || upstream.user == "default" {
            resp::command_into(&[b"AUTH", password.as_bytes()], &mut login);
        } else {
            let user = upstream.user.as_bytes();
            resp::command_into(&[b"AUTH", user, password.as_bytes()], &mut login);
        }
        asked += 1;
    }
    match upstream.database.trim() {
        "" => {}
        name => {
            let n: u32 = name
                .parse()
                .map_err(|_| ProxyError::Database(name.to_string()))?;
            resp::command_into(&[b"SELECT", n.to_string().as_bytes()], &mut login);
            asked += 1;
        }
    }
    let mut stream = open(upstream).await?;
    let mut replies = Replies::new();
    if asked == 0 {
        return Ok((stream, replies));
    }
    stream.write_all(&login).await.map_err(ProxyError::Server)?;
    for _ in 0..asked {
        let reading = read_answer(&mut stream, &mut replies);
        let answer = tokio::time::timeout(upstream.connect_timeout, reading)
            .await
            .map_err(|_| ProxyError::Timeout("the Redis server's answer to the login"))??;
        if let Answer::Error(message) = answer {
            return Err(ProxyError::Refused(scrub(&message, upstream)));
        }
    }
    Ok((stream, replies))
}

/// The server's message with any echo of the password masked (a server
/// never echoes it; whatever answers on that port might).
fn scrub(message: &str, upstream: &Upstream) -> String {
    let short: String = message.chars().take(500).collect();
    match &upstream.password {
        Some(p) if !p.is_empty() => short.replace(p.as_str(), MASK),
        _ => short,
    }
}

/// The next whole reply during the login (its bytes are not kept).
async fn read_answer(
    stream: &mut ServerStream,
    replies: &mut Replies,
) -> Result<Answer, ProxyError> {
    let mut buf = vec![0u8; READ_SIZE];
    loop {
        while let Some(piece) = replies.next_piece().map_err(server_protocol)? {
            if let Piece::End(answer) = piece {
                return Ok(answer);
            }
        }
        match stream.read(&mut buf).await.map_err(ProxyError::Server)? {
            0 => {
                let closed = std::io::ErrorKind::UnexpectedEof;
                return Err(ProxyError::Server(closed.into()));
            }
            n => replies.push(buf.get(..n).unwrap_or_default()),
        }
    }
}

pub fn server_protocol(e: RespError) -> ProxyError {
    ProxyError::ServerProtocol(e.to_string())
}

/// The connection to the server: TCP, and TLS from its first byte when
/// the asset asks for it (Redis has no in-band upgrade).
async fn open(upstream: &Upstream) -> Result<ServerStream, ProxyError> {
    let unreachable = |u: Unreachable| ProxyError::Connect {
        address: u.address,
        reason: u.reason,
    };
    let stream = contract::connect(upstream).await.map_err(unreachable)?;
    match &upstream.tls {
        None => Ok(ServerStream::Plain(stream)),
        Some(tls) => {
            let stream = contract::start_tls(stream, upstream, tls)
                .await
                .map_err(unreachable)?;
            Ok(ServerStream::tls(stream))
        }
    }
}

pub async fn write<W: AsyncWrite + Unpin>(client: &mut W, bytes: &[u8]) -> Result<(), ProxyError> {
    client.write_all(bytes).await.map_err(ProxyError::Client)?;
    client.flush().await.map_err(ProxyError::Client)
}

/// Sends the client its last reply and closes, reading (and dropping)
/// what it still sends for a moment first: a client that pipelined
/// commands behind the refused one then reads the reply rather than a
/// reset connection.
pub async fn goodbye<S: AsyncRead + AsyncWrite + Unpin>(client: &mut S, reply: &[u8]) {
    if write(client, reply).await.is_err() {
        return;
    }
    let _ = client.shutdown().await;
    let mut buf = vec![0u8; READ_SIZE];
    let drain = async {
        let mut total = 0;
        while total < (1 << 20) {
            match client.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => total += n,
            }
        }
    };
    let _ = tokio::time::timeout(GOODBYE, drain).await;
}
