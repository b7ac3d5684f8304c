//! The login of one connection, both halves: TCP to the server and its
//! handshake first (the client is greeted in the server's name, with the
//! capabilities both share), then the client's login ([`super::front`]),
//! then the proxy's own login as the vaulted user with the server's plugin
//! (`mysql_native_password`, or `caching_sha2_password` with its RSA step
//! when the server asks for a full login over plain TCP), then the
//! client's OK.
//!
//! A refusal by the server reaches the client as the server sent it (its
//! text never holds the password); any other failure reaches the client
//! as an ERR naming no address and no secret.

use bytes::Bytes;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use zeroize::Zeroizing;

use super::front::{self, Agreed, ReadError, fatal, read_packet, write};
use super::scramble;
use super::sql::MySqlServer;
use super::wire::{self, Greeting, caps};
use super::{ProxyError, Upstream};
use crate::db::contract::{Admitted, Login, Proof};

/// A logged-in connection to the server.
pub struct Session {
    pub stream: TcpStream,
    /// The server's family and version, which decide how it reads
    /// versioned comments; `None` when its version string is not one.
    pub server: Option<MySqlServer>,
}

/// Why the proxy's own login failed, and the server's ERR packet if it
/// refused.
pub struct Failed {
    pub error: ProxyError,
    pub refusal: Option<Bytes>,
}

impl From<ProxyError> for Failed {
    fn from(error: ProxyError) -> Failed {
        Failed {
            error,
            refusal: None,
        }
    }
}

/// Who decides the client's login.
pub enum Gate<'a> {
    /// The session's own client, with the session's one-time password.
    Token(&'a str),
    /// A desktop tool through the person's tunnel: `Login` decides, and
    /// says as whom the proxy logs in and which session audits it.
    Login(&'a dyn Login),
}

/// Both logins of one connection: the server reached at `server`, the
/// client let in by `gate`, then the proxy's login (as `server` says, or
/// as the [`Login`] admitted). Returns the session and, through a `Login`,
/// what it admitted.
pub async fn open<S: AsyncRead + AsyncWrite + Unpin>(
    client: &mut S,
    gate: Gate<'_>,
    server: &Upstream,
) -> Result<(Session, Option<Admitted>), ProxyError> {
    let mut stream = match super::connect(server).await {
        Ok(stream) => stream,
        Err(e) => {
            fatal(
                client,
                0,
                2003,
                "",
                "rampart: cannot reach the database server",
            )
            .await;
            return Err(e);
        }
    };
    let greeting = match greeting(server, &mut stream).await {
        Ok(greeting) => greeting,
        Err(Failed {
            refusal: Some(raw),
            error,
        }) => {
            // "Too many connections" and the like: the client sees it.
            let _ = write(client, &wire::packet(0, &raw)).await;
            return Err(error);
        }
        Err(Failed { error, .. }) => {
            fatal(client, 0, 1105, "", &format!("rampart: {error}")).await;
            return Err(error);
        }
    };
    let (agreed, admitted) = match gate {
        Gate::Token(token) => (front::greet(client, token, &greeting).await?, None),
        Gate::Login(gate) => {
            let hello = front::hello(client, &greeting).await?;
            let proof = Proof::Challenge {
                challenge: &hello.challenge,
                response: &hello.auth,
                answer: scramble::native_password,
            };
            match gate.admit(&hello.user, &proof).await {
                Some(admitted) => (hello.agreed, Some(admitted)),
                None => return Err(front::deny(client, &hello, "a valid one-time password").await),
            }
        }
    };
    let upstream = admitted.as_ref().map_or(server, |a| &a.upstream);
    let seq = agreed.seq;
    match login(upstream, &mut stream, &greeting, &agreed).await {
        Ok(status) => {
            write(client, &wire::build_ok(seq, status)).await?;
            let session = Session {
                stream,
                server: MySqlServer::from_version(&greeting.version),
            };
            Ok((session, admitted))
        }
        Err(Failed {
            refusal: Some(raw),
            error,
        }) => {
            let _ = write(client, &wire::packet(seq, &raw)).await;
            Err(error)
        }
        Err(Failed { error, .. }) => {
            fatal(client, seq, 1105, "HY000", &format!("rampart: {error}")).await;
            Err(error)
        }
    }
}

async fn read_server<S: AsyncRead + Unpin>(
    upstream: &Upstream,
    stream: &mut S,
) -> Result<(u8, Bytes), ProxyError> {
    let reading = read_packet(stream);
    match tokio::time::timeout(upstream.connect_timeout, reading).await {
        Ok(Ok(Some(packet))) => Ok(packet),
        Ok(Ok(None)) => Err(ProxyError::Server(std::io::ErrorKind::UnexpectedEof.into())),
        Ok(Err(e)) => Err(ReadError::server(e)),
        Err(_) => Err(ProxyError::Timeout("the database server's login")),
    }
}

/// The server's ERR during a login, as the error.
fn refused(payload: Bytes) -> Failed {
    match wire::error(payload.clone()) {
        Ok(e) => Failed {
            error: ProxyError::Refused(e.line()),
            refusal: Some(payload),
        },
        Err(e) => server_protocol(e).into(),
    }
}

fn server_protocol(e: wire::WireError) -> ProxyError {
    ProxyError::ServerProtocol(e.to_string())
}

/// The server's HandshakeV10, or its refusal.
pub(super) async fn greeting<S: AsyncRead + Unpin>(
    upstream: &Upstream,
    stream: &mut S,
) -> Result<Greeting, Failed> {
    let (_, payload) = read_server(upstream, stream).await?;
    if payload.first() == Some(&0xff) {
        return Err(refused(payload));
    }
    let greeting = wire::greeting(payload).map_err(server_protocol)?;
    let missing = front::REQUIRED & !greeting.caps;
    if missing != 0 {
        return Err(ProxyError::ServerTooOld(greeting.version).into());
    }
    Ok(greeting)
}

/// The proxy's answer to an authentication plugin's challenge.
fn answer(
    plugin: &str,
    password: &[u8],
    scramble: &[u8],
) -> Result<Zeroizing<Vec<u8>>, ProxyError> {
    match plugin {
        "mysql_native_password" => Ok(scramble::native_password(password, scramble)),
        "caching_sha2_password" => Ok(scramble::caching_sha2(password, scramble)),
        // mysql_clear_password would send the secret in the clear over
        // TCP; client_ed25519, PAM, GSSAPI and others are not spoken.
        other => Err(ProxyError::Method(other.to_string())),
    }
}

/// The proxy's login as the vaulted user, up to the server's OK; returns
/// its status flags.
pub(super) async fn login<S: AsyncRead + AsyncWrite + Unpin>(
    upstream: &Upstream,
    stream: &mut S,
    greeting: &Greeting,
    agreed: &Agreed,
) -> Result<u16, Failed> {
    let password: &[u8] = upstream.password.as_ref().map_or(b"", |p| p.as_bytes());
    // The server's default plugin if the proxy speaks it, else the native
    // one: a server whose account uses another switches plugins.
    let mut plugin = match greeting.plugin.as_str() {
        "caching_sha2_password" => greeting.plugin.clone(),
        _ => "mysql_native_password".to_string(),
    };
    let mut challenge = Bytes::from(greeting.scramble.clone());
    let database = agreed
        .database
        .clone()
        .unwrap_or_else(|| Bytes::from(upstream.database.clone()));
    let mut caps = (agreed.caps | front::REQUIRED | caps::LONG_PASSWORD)
        & !(caps::CONNECT_WITH_DB | caps::PLUGIN_AUTH_LENENC_DATA);
    if !database.is_empty() {
        caps |= caps::CONNECT_WITH_DB;
    }
    let auth = answer(&plugin, password, &challenge)?;
    let response = wire::build_response(&wire::Login {
        caps,
        max_packet: agreed.max_packet,
        charset: agreed.charset,
        user: &upstream.user,
        auth: &auth,
        database: &database,
        plugin: &plugin,
    });
    send(stream, &response).await?;
    let mut seq = 2u8;
    let (mut switches, mut asked_key) = (0, false);
    loop {
        let (got, payload) = read_server(upstream, stream).await?;
        if got != seq {
            return Err(server_protocol(wire::WireError::Sequence { got, want: seq }).into());
        }
        let reply: Zeroizing<Vec<u8>> = match payload.first() {
            Some(0x00) => return Ok(wire::ok(payload).map_err(server_protocol)?.status),
            Some(0xff) => return Err(refused(payload)),
            Some(0xfe) if payload.len() == 1 => {
                return Err(ProxyError::Method("mysql_old_password".into()).into());
            }
            Some(0xfe) if switches < 2 => {
                switches += 1;
                (plugin, challenge) = wire::auth_switch(payload).map_err(server_protocol)?;
                answer(&plugin, password, &challenge)?
            }
            Some(0x01) if plugin == "caching_sha2_password" => {
                match (payload.get(1), asked_key) {
                    // Fast authentication succeeded: the OK follows.
                    (Some(3), false) => {
                        seq = seq.wrapping_add(1);
                        continue;
                    }
                    // Perform full authentication: without TLS the password
                    // goes encrypted to the server's public key, asked for.
                    (Some(4), false) => {
                        if upstream.password.is_none() {
                            return Err(ProxyError::NoPassword.into());
                        }
                        asked_key = true;
                        Zeroizing::new(vec![2])
                    }
                    (_, true) => {
                        let pem = payload.get(1..).unwrap_or_default();
                        let sealed = scramble::rsa_password(pem, password, &challenge)
                            .map_err(ProxyError::Rsa)?;
                        Zeroizing::new(sealed)
                    }
                    _ => return Err(unexpected(&payload).into()),
                }
            }
            _ => return Err(unexpected(&payload).into()),
        };
        let mut framed = Zeroizing::new(wire::header(reply.len(), seq.wrapping_add(1)).to_vec());
        framed.extend_from_slice(&reply);
        send(stream, &framed).await?;
        seq = seq.wrapping_add(2);
    }
}

async fn send<S: AsyncWrite + Unpin>(stream: &mut S, bytes: &[u8]) -> Result<(), ProxyError> {
    stream.write_all(bytes).await.map_err(ProxyError::Server)
}

fn unexpected(payload: &[u8]) -> ProxyError {
    let kind = payload
        .first()
        .map_or("an empty packet".into(), |b| format!("packet 0x{b:02x}"));
    ProxyError::ServerProtocol(format!("{kind} during the login"))
}
