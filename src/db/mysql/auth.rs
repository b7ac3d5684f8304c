//! The login of one connection, both halves: TCP to the server and its
//! handshake first (the client is greeted in the server's name, with the
//! capabilities both share), then the client's login ([`super::front`]),
//! then the proxy's own login as the vaulted user: TLS first when the
//! asset asks for it (an SSL Request, the handshake, the certificate
//! checked against the pin before the credential goes), then the server's
//! plugin (`mysql_native_password`, or `caching_sha2_password`, whose full
//! login sends the password sealed to the server's RSA key over plain TCP
//! and as it is over TLS), then the client's OK.
//!
//! A refusal by the server reaches the client as the server sent it (its
//! text never holds the password); any other failure reaches the client
//! as an ERR naming no address and no secret.

use bytes::Bytes;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use zeroize::Zeroizing;

use crate::db::contract::{self, NO_TLS, ServerStream};

use super::front::{self, Agreed, ReadError, fatal, read_packet, write};
use super::scramble;
use super::sql::MySqlServer;
use super::wire::{self, Greeting, caps};
use super::{ProxyError, Upstream};
use crate::db::contract::{Admitted, Login, Proof, unreachable_text};

/// A logged-in connection to the server.
pub struct Session {
    pub stream: ServerStream,
    /// The server's greeting (its `connection` id is what `KILL QUERY`
    /// names), as the client was greeted.
    pub greeting: Greeting,
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
            let text = match &e {
                ProxyError::Connect { reason, .. } => unreachable_text(reason),
                _ => unreachable_text("no answer"),
            };
            fatal(client, 0, 2003, "", &text).await;
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
    match upstream_login(upstream, stream, &greeting, &agreed).await {
        Ok((stream, status)) => {
            write(client, &wire::build_ok(seq, status)).await?;
            let session = Session {
                stream,
                server: MySqlServer::from_version(&greeting.version),
                greeting,
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
        Err(Failed {
            error: error @ ProxyError::Connect { .. },
            ..
        }) => {
            // TLS refused or failed: the reason for the client, the
            // address for the log.
            if let ProxyError::Connect { reason, .. } = &error {
                fatal(client, seq, 1105, "HY000", &unreachable_text(reason)).await;
            }
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

/// Stops what the server's connection `connection` is running: `KILL
/// QUERY` on a connection of the proxy's own, logged in as `upstream`
/// says (the same account may kill its own statements).
pub async fn kill_query(upstream: &Upstream, connection: u32) -> Result<(), ProxyError> {
    let mut stream = super::connect(upstream).await?;
    let greeting = greeting(upstream, &mut stream).await.map_err(|f| f.error)?;
    let agreed = Agreed {
        caps: front::OFFER & greeting.caps,
        max_packet: 1 << 24,
        charset: greeting.charset,
        database: None,
        seq: 2,
    };
    let (mut stream, _) = upstream_login(upstream, stream, &greeting, &agreed)
        .await
        .map_err(|f| f.error)?;
    let mut command = vec![wire::com::QUERY];
    command.extend_from_slice(format!("KILL QUERY {connection}").as_bytes());
    stream
        .write_all(&wire::packet(0, &command))
        .await
        .map_err(ProxyError::Server)?;
    match read_server(upstream, &mut stream).await?.1.first() {
        Some(0x00) => Ok(()),
        _ => Err(ProxyError::ServerProtocol(format!(
            "KILL QUERY {connection} was refused"
        ))),
    }
}

/// The proxy's login over `stream` once the client's is done: TLS first
/// when the asset asks for it, then [`login`]. Returns the connection and
/// the server's status flags.
async fn upstream_login(
    upstream: &Upstream,
    mut stream: TcpStream,
    greeting: &Greeting,
    agreed: &Agreed,
) -> Result<(ServerStream, u16), Failed> {
    let mut stream = match &upstream.tls {
        None => ServerStream::Plain(stream),
        Some(tls) => {
            // Never a login in clear when the asset asks for TLS.
            if greeting.caps & caps::SSL == 0 {
                let address = upstream.address();
                let reason = NO_TLS.into();
                return Err(ProxyError::Connect { address, reason }.into());
            }
            // The SSL Request says what the response after it will.
            let caps = response_caps(agreed, &database(upstream, agreed), true);
            let request = wire::build_ssl_request(caps, agreed.max_packet, agreed.charset);
            send(&mut stream, &request).await?;
            let stream = contract::start_tls(stream, upstream, tls)
                .await
                .map_err(super::unreachable)?;
            ServerStream::tls(stream)
        }
    };
    let over_tls = upstream.tls.is_some();
    let status = login(upstream, &mut stream, greeting, agreed, over_tls).await?;
    Ok((stream, status))
}

/// The database the proxy logs in to: the client's, else the asset's.
fn database(upstream: &Upstream, agreed: &Agreed) -> Bytes {
    agreed
        .database
        .clone()
        .unwrap_or_else(|| Bytes::from(upstream.database.clone()))
}

/// The capabilities the proxy's HandshakeResponse41 (and the SSL Request
/// before it) says it speaks: the client's, what the proxy needs, and
/// CLIENT_SSL once TLS is on.
fn response_caps(agreed: &Agreed, database: &[u8], over_tls: bool) -> u32 {
    let mut caps = (agreed.caps | front::REQUIRED | caps::LONG_PASSWORD)
        & !(caps::CONNECT_WITH_DB | caps::PLUGIN_AUTH_LENENC_DATA);
    if !database.is_empty() {
        caps |= caps::CONNECT_WITH_DB;
    }
    if over_tls {
        caps |= caps::SSL;
    }
    caps
}

/// The proxy's login as the vaulted user, up to the server's OK; returns
/// its status flags. `over_tls`: `stream` is TLS to the server (after an
/// SSL Request, so the response is the second packet of the login).
pub(super) async fn login<S: AsyncRead + AsyncWrite + Unpin>(
    upstream: &Upstream,
    stream: &mut S,
    greeting: &Greeting,
    agreed: &Agreed,
    over_tls: bool,
) -> Result<u16, Failed> {
    let password: &[u8] = upstream.password.as_ref().map_or(b"", |p| p.as_bytes());
    // The server's default plugin if the proxy speaks it, else the native
    // one: a server whose account uses another switches plugins.
    let mut plugin = match greeting.plugin.as_str() {
        "caching_sha2_password" => greeting.plugin.clone(),
        _ => "mysql_native_password".to_string(),
    };
    let mut challenge = Bytes::from(greeting.scramble.clone());
    let database = database(upstream, agreed);
    let caps = response_caps(agreed, &database, over_tls);
    let auth = answer(&plugin, password, &challenge)?;
    // After an SSL Request (sequence id 1) the response is the second.
    let first = if over_tls { 2 } else { 1 };
    let response = wire::build_response(
        first,
        &wire::Login {
            caps,
            max_packet: agreed.max_packet,
            charset: agreed.charset,
            user: &upstream.user,
            auth: &auth,
            database: &database,
            plugin: &plugin,
        },
    );
    send(stream, &response).await?;
    let mut seq = first + 1;
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
                    // Perform full authentication: over TLS the password
                    // goes as it is, NUL-terminated, as every MySQL client
                    // sends it on a secure channel; without TLS it goes
                    // encrypted to the server's public key, asked for.
                    (Some(4), false) => {
                        if upstream.password.is_none() {
                            return Err(ProxyError::NoPassword.into());
                        }
                        if over_tls {
                            let mut clear = Zeroizing::new(Vec::with_capacity(password.len() + 1));
                            clear.extend_from_slice(password);
                            clear.push(0);
                            clear
                        } else {
                            asked_key = true;
                            Zeroizing::new(vec![2])
                        }
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
