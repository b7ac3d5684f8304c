//! The proxy's login to the real server, as a client: TCP (then an
//! SSLRequest and TLS, the certificate pinned, when the asset asks for
//! it), StartupMessage, then trust, cleartext, MD5 or SCRAM-SHA-256 with
//! the vaulted secret, then the server's ParameterStatus, BackendKeyData
//! and first ReadyForQuery, which the client gets as they come.
//!
//! A refusal by the server reaches the client as the server sent it (its
//! text never holds the password); any other failure reaches the client as
//! a FATAL error naming no address and no secret.

use bytes::Bytes;
use md5::{Digest, Md5};
use tokio::io::{AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use zeroize::Zeroizing;

use crate::db::contract::{self, NO_TLS, ServerStream, Tls, Unreachable};

use super::front::{fatal, read_whole, write};
use super::scram::{Scram, ScramError};
use super::track::unsafe_encoding;
use super::wire::{self, Auth, MAX_CONTROL, Side};
use super::{ProxyError, Upstream};

/// The server's side of a connection once the login is over.
pub struct Session {
    pub stream: ServerStream,
    /// BackendKeyData, for the client's cancel requests.
    pub key: Option<[u8; 8]>,
    /// The transaction status of the first ReadyForQuery.
    pub status: u8,
}

/// `"md5" + hex(md5(hex(md5(password + user)) + salt))`, as PostgreSQL's
/// MD5 method wants it.
pub fn md5_password(user: &str, password: &[u8], salt: [u8; 4]) -> Zeroizing<String> {
    let mut inner = Md5::new();
    inner.update(password);
    inner.update(user.as_bytes());
    let inner = Zeroizing::new(hex::encode(inner.finalize()));
    let mut outer = Md5::new();
    outer.update(inner.as_bytes());
    outer.update(salt);
    Zeroizing::new(format!("md5{}", hex::encode(outer.finalize())))
}

/// The StartupMessage parameters for the server: the client's, with the
/// vaulted user, the client's database or the default one, and no `_pq_.`
/// protocol options (the proxy speaks plain 3.0 to the server).
pub fn upstream_params(client: &[(Bytes, Bytes)], upstream: &Upstream) -> Vec<(Bytes, Bytes)> {
    let database = client
        .iter()
        .find(|(k, v)| k.as_ref() == b"database" && !v.is_empty())
        .map(|(_, v)| v.clone())
        .or_else(|| (!upstream.database.is_empty()).then(|| upstream.database.clone().into()));
    let mut params = vec![(Bytes::from_static(b"user"), upstream.user.clone().into())];
    if let Some(database) = database {
        params.push((Bytes::from_static(b"database"), database));
    }
    params.extend(
        client
            .iter()
            .filter(|(k, _)| {
                k.as_ref() != b"user" && k.as_ref() != b"database" && !k.starts_with(b"_pq_.")
            })
            .cloned(),
    );
    params
}

/// Logs in to the server and relays its startup messages to the client.
pub async fn login<W: AsyncWrite + Unpin>(
    upstream: &Upstream,
    params: &[(Bytes, Bytes)],
    client: &mut W,
) -> Result<Session, ProxyError> {
    let result = exchange(upstream, params, client).await;
    match &result {
        // The client already has the server's own ErrorResponse.
        Ok(_) | Err(ProxyError::Refused(_)) => {}
        Err(ProxyError::Connect { reason, .. }) => {
            let text = crate::db::contract::unreachable_text(reason);
            fatal(client, "08001", &text).await;
        }
        Err(e) => fatal(client, "08004", &format!("rampart: {e}")).await,
    }
    result
}

async fn exchange<W: AsyncWrite + Unpin>(
    upstream: &Upstream,
    params: &[(Bytes, Bytes)],
    client: &mut W,
) -> Result<Session, ProxyError> {
    let mut stream = connect(upstream).await?;
    let startup = wire::startup_message(&upstream_params(params, upstream));
    stream
        .write_all(&startup)
        .await
        .map_err(ProxyError::Server)?;
    authenticate(upstream, &mut stream, client).await?;
    write(client, &wire::auth_request(0)).await?;
    let mut key = None;
    loop {
        let (tag, body) = read_server(upstream, &mut stream).await?;
        let raw = [&wire::header(tag, body.len())[..], &body].concat();
        match tag {
            b'S' => {
                let (name, value) = wire::parameter_status(body).map_err(server)?;
                if name == "client_encoding" && unsafe_encoding(&value) {
                    return Err(ProxyError::Encoding(value));
                }
            }
            b'K' => key = Some(wire::backend_key(body).map_err(server)?),
            b'N' => {}
            b'Z' => {
                let status = wire::ready(body).map_err(server)?;
                write(client, &raw).await?;
                return Ok(Session {
                    stream,
                    key,
                    status,
                });
            }
            b'E' => return Err(refused(client, tag, body).await),
            _ => return Err(unexpected(tag)),
        }
        write(client, &raw).await?;
    }
}

/// The connection to the server, ready for a StartupMessage or a
/// CancelRequest: TCP, and TLS over it when the asset asks for it.
pub async fn connect(upstream: &Upstream) -> Result<ServerStream, ProxyError> {
    let stream = contract::connect(upstream).await.map_err(unreachable)?;
    match &upstream.tls {
        None => Ok(ServerStream::Plain(stream)),
        Some(tls) => secure(upstream, stream, tls).await,
    }
}

/// An SSLRequest, and the TLS handshake once the server answers `S`. A
/// server that answers `N` is refused: the login would go in clear.
async fn secure(
    upstream: &Upstream,
    mut stream: TcpStream,
    tls: &Tls,
) -> Result<ServerStream, ProxyError> {
    stream
        .write_all(&wire::ssl_request())
        .await
        .map_err(ProxyError::Server)?;
    // One byte and not a byte more: whatever follows it must come inside
    // TLS, not be read as if it had (CVE-2021-23222).
    let mut answer = [0u8; 1];
    let reading = stream.read_exact(&mut answer);
    match tokio::time::timeout(upstream.connect_timeout, reading).await {
        Ok(Ok(_)) => {}
        Ok(Err(e)) => return Err(ProxyError::Server(e)),
        Err(_) => {
            return Err(ProxyError::Timeout(
                "the database server's answer to the SSL request",
            ));
        }
    }
    match answer {
        [b'S'] => {
            let stream = contract::start_tls(stream, upstream, tls)
                .await
                .map_err(unreachable)?;
            Ok(ServerStream::tls(stream))
        }
        [b'N'] => Err(ProxyError::Connect {
            address: upstream.address(),
            reason: NO_TLS.into(),
        }),
        [other] => Err(ProxyError::ServerProtocol(format!(
            "{:?} in answer to the SSL request",
            char::from(other)
        ))),
    }
}

fn unreachable(u: Unreachable) -> ProxyError {
    ProxyError::Connect {
        address: u.address,
        reason: u.reason,
    }
}

/// The authentication exchange, up to the server's AuthenticationOk.
async fn authenticate<W: AsyncWrite + Unpin>(
    upstream: &Upstream,
    stream: &mut ServerStream,
    client: &mut W,
) -> Result<(), ProxyError> {
    let mut scram: Option<Scram> = None;
    let mut verified = false;
    loop {
        let (tag, body) = read_server(upstream, stream).await?;
        match tag {
            b'R' => {}
            b'E' => return Err(refused(client, tag, body).await),
            b'N' => {
                write(
                    client,
                    &[&wire::header(tag, body.len())[..], &body].concat(),
                )
                .await?;
                continue;
            }
            _ => return Err(unexpected(tag)),
        }
        let password = || {
            upstream
                .password
                .as_ref()
                .map(|p| p.as_bytes())
                .ok_or(ProxyError::NoPassword)
        };
        let reply: Zeroizing<Vec<u8>> = match wire::auth(body).map_err(server)? {
            // A SCRAM login is over only once the server proved itself.
            Auth::Ok if scram.is_some() && !verified => return Err(ScramError::OutOfTurn.into()),
            Auth::Ok => return Ok(()),
            Auth::Cleartext => wire::password_message(password()?),
            Auth::Md5 { salt } => {
                let hashed = md5_password(&upstream.user, password()?, salt);
                wire::password_message(hashed.as_bytes())
            }
            Auth::Sasl { mechanisms } => {
                // No channel binding (the proxy says `n,,`), with TLS as
                // without: plain SCRAM-SHA-256 even when -PLUS is offered
                // too (the pin, not the binding, is what checks a TLS
                // server).
                if !mechanisms.iter().any(|m| m == "SCRAM-SHA-256") || scram.is_some() {
                    return Err(ProxyError::Method(format!(
                        "SASL ({})",
                        mechanisms.join(", ")
                    )));
                }
                let (exchange, first) = Scram::start("");
                scram = Some(exchange);
                Zeroizing::new(wire::sasl_initial("SCRAM-SHA-256", first.as_bytes()).to_vec())
            }
            Auth::SaslContinue(data) => {
                let exchange = scram.as_mut().ok_or(ScramError::OutOfTurn)?;
                let last = exchange.client_final(password()?, &data)?;
                Zeroizing::new(wire::message(b'p', last.as_bytes()).to_vec())
            }
            Auth::SaslFinal(data) => {
                scram.as_ref().ok_or(ScramError::OutOfTurn)?.verify(&data)?;
                verified = true;
                continue;
            }
            Auth::Other(code) => return Err(ProxyError::Method(method(code))),
        };
        stream.write_all(&reply).await.map_err(ProxyError::Server)?;
    }
}

fn method(code: i32) -> String {
    match code {
        2 => "Kerberos V5".into(),
        6 => "SCM credential".into(),
        7 | 8 => "GSSAPI".into(),
        9 => "SSPI".into(),
        10..=12 => "SASL".into(),
        _ => format!("an unknown (code {code})"),
    }
}

/// The server's ErrorResponse, passed to the client, as the error.
async fn refused<W: AsyncWrite + Unpin>(client: &mut W, tag: u8, body: Bytes) -> ProxyError {
    let raw = [&wire::header(tag, body.len())[..], &body].concat();
    let notice = match wire::notice(tag, body) {
        Ok(n) => n,
        Err(e) => return server(e),
    };
    // The client may be gone; the error is the server's refusal either way.
    let _ = write(client, &raw).await;
    ProxyError::Refused(notice.message)
}

async fn read_server(
    upstream: &Upstream,
    stream: &mut ServerStream,
) -> Result<(u8, Bytes), ProxyError> {
    let reading = read_whole(stream, Side::Server, MAX_CONTROL);
    match tokio::time::timeout(upstream.connect_timeout, reading).await {
        Ok(Ok(Some(message))) => Ok(message),
        Ok(Ok(None)) => Err(ProxyError::Server(std::io::ErrorKind::UnexpectedEof.into())),
        Ok(Err(e)) => Err(e.server()),
        Err(_) => Err(ProxyError::Timeout("the database server's login")),
    }
}

fn server(e: wire::WireError) -> ProxyError {
    ProxyError::ServerProtocol(e.to_string())
}

fn unexpected(tag: u8) -> ProxyError {
    ProxyError::ServerProtocol(format!("message {:?} during the login", char::from(tag)))
}
