//! The proxy as a server to its client, up to the end of the login: the
//! startup packet (SSL and GSS encryption requests answered `N`: the socket
//! is a private Unix socket), the one-time password asked for in cleartext
//! and compared in constant time. Also the reading of whole messages both
//! sides use while logging in.

use std::time::Duration;

use bytes::Bytes;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use super::ProxyError;
use super::wire::{self, MAX_STARTUP, Side, Startup, WireError};

/// How long a client has for its startup packet and its password: psql
/// sends both at once, a person never types them here.
pub const CLIENT_TIMEOUT: Duration = Duration::from_secs(30);

/// The longest PasswordMessage read from a client.
const MAX_PASSWORD: usize = 4096;

/// Why reading one message failed.
#[derive(Debug)]
pub enum ReadError {
    Io(std::io::Error),
    Wire(WireError),
}

impl ReadError {
    pub fn client(self) -> ProxyError {
        match self {
            ReadError::Io(e) => ProxyError::Client(e),
            ReadError::Wire(e) => ProxyError::ClientProtocol(e.to_string()),
        }
    }

    pub fn server(self) -> ProxyError {
        match self {
            ReadError::Io(e) => ProxyError::Server(e),
            ReadError::Wire(e) => ProxyError::ServerProtocol(e.to_string()),
        }
    }
}

/// Fills `buf`; false when the stream ended before its first byte.
async fn fill<R: AsyncRead + Unpin>(r: &mut R, buf: &mut [u8]) -> Result<bool, ReadError> {
    let mut got = 0;
    while got < buf.len() {
        let rest = buf.get_mut(got..).unwrap_or_default();
        match r.read(rest).await.map_err(ReadError::Io)? {
            0 if got == 0 => return Ok(false),
            0 => return Err(ReadError::Io(std::io::ErrorKind::UnexpectedEof.into())),
            n => got += n,
        }
    }
    Ok(true)
}

/// One whole message of at most `cap` body bytes (reading exactly its
/// bytes, nothing after it); `None` when the stream ended between messages.
pub async fn read_whole<R: AsyncRead + Unpin>(
    r: &mut R,
    side: Side,
    cap: usize,
) -> Result<Option<(u8, Bytes)>, ReadError> {
    let mut header = [0u8; 5];
    if !fill(r, &mut header).await? {
        return Ok(None);
    }
    let mut decoder = wire::Decoder::new(side);
    decoder.push(&header);
    let [tag, a, b, c, d] = header;
    let len = i64::from(i32::from_be_bytes([a, b, c, d]));
    let body = usize::try_from(len - 4).map_err(|_| ReadError::Wire(WireError::BadLength(len)))?;
    if body > cap {
        return Err(ReadError::Wire(WireError::BadLength(len)));
    }
    let mut rest = vec![0u8; body];
    if body > 0 && !fill(r, &mut rest).await? {
        return Err(ReadError::Io(std::io::ErrorKind::UnexpectedEof.into()));
    }
    decoder.push(&rest);
    // The decoder checks the type for this side (and the length again).
    match decoder.next_frame().map_err(ReadError::Wire)? {
        Some(wire::Frame::Whole { body, .. }) => Ok(Some((tag, body))),
        Some(wire::Frame::Start { head, .. }) if head.len() == body => Ok(Some((tag, head))),
        _ => Err(ReadError::Wire(WireError::BadLength(len))),
    }
}

/// A startup packet; `None` when the client closed before sending one.
pub async fn read_startup<R: AsyncRead + Unpin>(r: &mut R) -> Result<Option<Startup>, ReadError> {
    let mut len = [0u8; 4];
    if !fill(r, &mut len).await? {
        return Ok(None);
    }
    let len = i64::from(i32::from_be_bytes(len));
    let body = usize::try_from(len - 4)
        .ok()
        .filter(|b| (4..=MAX_STARTUP).contains(b))
        .ok_or(ReadError::Wire(WireError::BadLength(len)))?;
    let mut rest = vec![0u8; body];
    if !fill(r, &mut rest).await? {
        return Err(ReadError::Io(std::io::ErrorKind::UnexpectedEof.into()));
    }
    wire::startup(Bytes::from(rest))
        .map(Some)
        .map_err(ReadError::Wire)
}

pub async fn write<W: AsyncWrite + Unpin>(client: &mut W, bytes: &[u8]) -> Result<(), ProxyError> {
    client.write_all(bytes).await.map_err(ProxyError::Client)?;
    client.flush().await.map_err(ProxyError::Client)
}

/// Tells the client why its connection ends; it may be gone already.
pub async fn fatal<W: AsyncWrite + Unpin>(client: &mut W, code: &str, text: &str) {
    let _ = write(client, &wire::error_response("FATAL", code, text)).await;
}

/// The client's startup packet, past any encryption requests.
pub async fn startup<S: AsyncRead + AsyncWrite + Unpin>(
    client: &mut S,
) -> Result<Option<Startup>, ProxyError> {
    // An SSL request, then a GSS one (or the other way), then the startup.
    for _ in 0..3 {
        let reading = read_startup(client);
        let packet = tokio::time::timeout(CLIENT_TIMEOUT, reading)
            .await
            .map_err(|_| ProxyError::Timeout("the client's startup packet"))?
            .map_err(ReadError::client)?;
        match packet {
            Some(Startup::Ssl | Startup::GssEnc) => write(client, b"N").await?,
            other => return Ok(other),
        }
    }
    Err(ProxyError::ClientProtocol(
        "encryption requests without end".into(),
    ))
}

/// The login of the session's main connection: its startup parameters once
/// it gave `token`.
pub async fn greet<S: AsyncRead + AsyncWrite + Unpin>(
    client: &mut S,
    token: &str,
) -> Result<Vec<(Bytes, Bytes)>, ProxyError> {
    let (params, given) = password_of(client).await?;
    if !super::same_secret(&given, token.as_bytes()) {
        refuse(client).await;
        return Err(ProxyError::BadToken);
    }
    Ok(params)
}

/// Tells a client its password was not the one asked for.
pub async fn refuse<S: AsyncRead + AsyncWrite + Unpin>(client: &mut S) {
    fatal(
        client,
        "28P01",
        "rampart: password authentication failed: not this session's one-time password",
    )
    .await;
}

/// The client's startup parameters and the password it gives when asked
/// for one in clear (over the session's private socket, or inside the
/// person's SSH tunnel).
pub async fn password_of<S: AsyncRead + AsyncWrite + Unpin>(
    client: &mut S,
) -> Result<(Vec<(Bytes, Bytes)>, zeroize::Zeroizing<Vec<u8>>), ProxyError> {
    let (minor, params) = match startup(client).await? {
        None => return Err(ProxyError::NoToken),
        Some(Startup::Params { minor, params }) => (minor, params),
        Some(Startup::Unsupported { major, minor }) => {
            let text =
                format!("unsupported frontend protocol {major}.{minor}: the bastion speaks 3.0");
            fatal(client, "0A000", &text).await;
            return Err(ProxyError::Version(major, minor));
        }
        Some(Startup::Cancel { .. } | Startup::Ssl | Startup::GssEnc) => {
            return Err(ProxyError::ClientProtocol(
                "a cancel request before the session's connection".into(),
            ));
        }
    };
    let replication = params.iter().any(|(k, v)| {
        k.as_ref() == b"replication" && !matches!(v.as_ref(), b"false" | b"off" | b"no" | b"0")
    });
    if replication {
        fatal(
            client,
            "0A000",
            "rampart: replication connections are not proxied",
        )
        .await;
        return Err(ProxyError::Replication);
    }
    if minor > 0 {
        // A newer 3.x client: say 3.0 and which `_pq_.` options are
        // unknown here, as a server does; the client then speaks 3.0.
        let options: Vec<Bytes> = params
            .iter()
            .filter(|(k, _)| k.starts_with(b"_pq_."))
            .map(|(k, _)| k.clone())
            .collect();
        write(client, &wire::negotiate_version(&options)).await?;
    }
    write(client, &wire::auth_request(3)).await?;
    let reading = read_whole(client, Side::Client, MAX_PASSWORD);
    let message = tokio::time::timeout(CLIENT_TIMEOUT, reading)
        .await
        .map_err(|_| ProxyError::NoToken)?
        .map_err(ReadError::client)?;
    let Some((b'p', body)) = message else {
        return Err(ProxyError::NoToken);
    };
    let given = wire::password(body).map_err(|e| ProxyError::ClientProtocol(e.to_string()))?;
    Ok((params, given))
}
