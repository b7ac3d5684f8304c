//! The proxy as a server to its client, up to the end of the login: a
//! HandshakeV10 in the server's name with a fresh scramble, the client's
//! answer checked as `mysql_native_password` with the session's one-time
//! password (an AuthSwitchRequest when the client chose another plugin),
//! in constant time. Also the reading of whole login packets both sides
//! use.

use std::time::Duration;

use bytes::Bytes;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use super::scramble;
use super::wire::{self, Greeting, caps};
use super::{ProxyError, same_secret};

/// How long a client has for its handshake response: the client sends it
/// at once, a person never types it here.
pub const CLIENT_TIMEOUT: Duration = Duration::from_secs(30);

/// The longest login packet read (an RSA key in PEM is under 1 KiB).
const MAX_LOGIN: usize = 64 << 10;

/// The capabilities the proxy offers its client, of those the server has.
/// Left out: TLS and compression (the socket is private), LOCAL INFILE
/// (no client file is read), connection attributes, and every format
/// change the reply parser does not follow (DEPRECATE_EOF, session
/// tracking, query attributes, optional metadata, MariaDB's extensions).
/// What the client picks of these goes to the server unchanged, so both
/// halves speak one format.
pub const OFFER: u32 = caps::LONG_PASSWORD
    | caps::FOUND_ROWS
    | caps::LONG_FLAG
    | caps::CONNECT_WITH_DB
    | caps::IGNORE_SPACE
    | caps::PROTOCOL_41
    | caps::INTERACTIVE
    | caps::IGNORE_SIGPIPE
    | caps::TRANSACTIONS
    | caps::SECURE_CONNECTION
    | caps::MULTI_STATEMENTS
    | caps::MULTI_RESULTS
    | caps::PS_MULTI_RESULTS
    | caps::PLUGIN_AUTH
    | caps::PLUGIN_AUTH_LENENC_DATA;

/// What the server must speak for the proxy to log in and relay.
pub const REQUIRED: u32 = caps::PROTOCOL_41 | caps::SECURE_CONNECTION | caps::PLUGIN_AUTH;

/// What the client agreed to.
#[derive(Debug)]
pub struct Agreed {
    pub caps: u32,
    pub max_packet: u32,
    pub charset: u8,
    pub database: Option<Bytes>,
    /// The sequence id of the proxy's last word in the login (its OK or
    /// ERR).
    pub seq: u8,
}

/// Why reading one login packet failed.
#[derive(Debug)]
pub enum ReadError {
    Io(std::io::Error),
    TooLong(usize),
}

impl ReadError {
    pub fn client(self) -> ProxyError {
        match self {
            ReadError::Io(e) => ProxyError::Client(e),
            ReadError::TooLong(n) => {
                ProxyError::ClientProtocol(format!("a login packet of {n} bytes"))
            }
        }
    }

    pub fn server(self) -> ProxyError {
        match self {
            ReadError::Io(e) => ProxyError::Server(e),
            ReadError::TooLong(n) => {
                ProxyError::ServerProtocol(format!("a login packet of {n} bytes"))
            }
        }
    }
}

/// One whole login packet: its sequence id and payload; `None` when the
/// stream ended before it.
pub async fn read_packet<R: AsyncRead + Unpin>(
    r: &mut R,
) -> Result<Option<(u8, Bytes)>, ReadError> {
    let mut header = [0u8; 4];
    match r.read_exact(&mut header).await {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(ReadError::Io(e)),
    }
    let [a, b, c, seq] = header;
    let len = usize::from(a) | usize::from(b) << 8 | usize::from(c) << 16;
    if len > MAX_LOGIN {
        return Err(ReadError::TooLong(len));
    }
    let mut payload = vec![0u8; len];
    r.read_exact(&mut payload).await.map_err(ReadError::Io)?;
    Ok(Some((seq, Bytes::from(payload))))
}

pub async fn write<W: AsyncWrite + Unpin>(client: &mut W, bytes: &[u8]) -> Result<(), ProxyError> {
    client.write_all(bytes).await.map_err(ProxyError::Client)?;
    client.flush().await.map_err(ProxyError::Client)
}

/// Tells the client why its connection ends; it may be gone already.
/// Before the handshake (`seq` 0) an ERR carries no SQLSTATE.
pub async fn fatal<W: AsyncWrite + Unpin>(
    client: &mut W,
    seq: u8,
    code: u16,
    state: &str,
    text: &str,
) {
    let state = if seq == 0 { "" } else { state };
    let _ = write(client, &wire::build_error(seq, code, state, text)).await;
}

async fn read_client<S: AsyncRead + Unpin>(client: &mut S, seq: u8) -> Result<Bytes, ProxyError> {
    let reading = read_packet(client);
    let packet = tokio::time::timeout(CLIENT_TIMEOUT, reading)
        .await
        .map_err(|_| ProxyError::NoToken)?
        .map_err(ReadError::client)?;
    match packet {
        None => Err(ProxyError::NoToken),
        Some((got, payload)) if got == seq => Ok(payload),
        Some((got, _)) => Err(ProxyError::ClientProtocol(
            wire::WireError::Sequence { got, want: seq }.to_string(),
        )),
    }
}

/// The client's answer to the greeting: what it agreed to, the user name
/// it gave, and its `mysql_native_password` proof for `challenge`.
pub struct Hello {
    pub agreed: Agreed,
    pub user: String,
    pub auth: zeroize::Zeroizing<Vec<u8>>,
    pub challenge: [u8; 20],
}

/// The client's login with the session's one-time password `token`.
/// The client's final OK comes once the server let the proxy in.
pub async fn greet<S: AsyncRead + AsyncWrite + Unpin>(
    client: &mut S,
    token: &str,
    server: &Greeting,
) -> Result<Agreed, ProxyError> {
    let hello = hello(client, server).await?;
    let expected = scramble::native_password(token.as_bytes(), &hello.challenge);
    if hello.auth.is_empty() || !same_secret(&hello.auth, &expected) {
        return Err(deny(client, &hello, "this session's one-time password").await);
    }
    Ok(hello.agreed)
}

/// Tells the client its password is missing or not `expected`; returns
/// the error for the proxy's log.
pub async fn deny<S: AsyncWrite + Unpin>(
    client: &mut S,
    hello: &Hello,
    expected: &str,
) -> ProxyError {
    let seq = hello.agreed.seq;
    if hello.auth.is_empty() {
        let text = "rampart: access denied: a one-time password is needed";
        fatal(client, seq, 1045, "28000", text).await;
        ProxyError::NoToken
    } else {
        let text = format!("rampart: access denied: not {expected}");
        fatal(client, seq, 1045, "28000", &text).await;
        ProxyError::BadToken
    }
}

/// The greeting and the client's answer (switched to
/// `mysql_native_password` if need be), not yet checked.
pub async fn hello<S: AsyncRead + AsyncWrite + Unpin>(
    client: &mut S,
    server: &Greeting,
) -> Result<Hello, ProxyError> {
    let offer = (OFFER & server.caps) | REQUIRED | caps::LONG_PASSWORD;
    let challenge = scramble::fresh();
    write(client, &wire::build_greeting(server, offer, &challenge)).await?;
    let payload = read_client(client, 1).await?;
    // An SSLRequest is the first 32 bytes of a response: refused before
    // it is read as one.
    let asked = payload.first_chunk::<4>().map(|c| u32::from_le_bytes(*c));
    if asked.is_some_and(|c| c & caps::SSL != 0) {
        let text = "rampart: TLS is not offered here (the SSH channel or the session's socket carries the connection)";
        fatal(client, 2, 1045, "08004", text).await;
        return Err(ProxyError::ClientProtocol(
            "the client asked for TLS".into(),
        ));
    }
    let response =
        wire::response(payload).map_err(|e| ProxyError::ClientProtocol(e.to_string()))?;
    let native = match response.plugin.as_deref() {
        Some(plugin) => plugin == "mysql_native_password",
        None => response.caps & caps::PLUGIN_AUTH == 0,
    };
    let (auth, seq) = if native {
        (response.auth, 2)
    } else {
        write(client, &wire::build_auth_switch(2, &challenge)).await?;
        let answer = read_client(client, 3).await?;
        (zeroize::Zeroizing::new(answer.to_vec()), 4)
    };
    Ok(Hello {
        agreed: Agreed {
            caps: response.caps & offer,
            max_packet: response.max_packet,
            charset: response.charset,
            database: response.database,
            seq,
        },
        user: response.user,
        auth,
        challenge,
    })
}
