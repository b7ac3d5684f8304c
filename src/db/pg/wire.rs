//! PostgreSQL's protocol 3.0 as the proxy needs it: framing both ways
//! ([`Decoder`]), parsers for the messages it reads, builders for the ones
//! it writes.
//!
//! Everything here is total: any byte sequence yields a value or a
//! [`WireError`], never a panic. Messages the proxy reads are held whole up
//! to a cap ([`MAX_STATEMENT`] for a client's query text, [`MAX_CONTROL`]
//! for the rest); the rest (rows, COPY data, a Bind's parameters) stream
//! through in pieces of at most [`CHUNK`] bytes, however long they are.

use bytes::{Buf, BufMut, Bytes, BytesMut};
use zeroize::Zeroizing;

/// The version number of protocol 3.0 in a StartupMessage.
pub const PROTOCOL_3_0: u32 = 3 << 16;
/// The codes of the startup packets that are not a StartupMessage.
pub const SSL_REQUEST: u32 = 80_877_103;
pub const GSSENC_REQUEST: u32 = 80_877_104;
pub const CANCEL_REQUEST: u32 = 80_877_102;
/// PostgreSQL's own limit on a startup packet (`MAX_STARTUP_PACKET_LENGTH`).
pub const MAX_STARTUP: usize = 10_000;
/// The longest query text (Query, Parse) the proxy reads and checks.
pub const MAX_STATEMENT: usize = 16 << 20;
/// The longest other message the proxy reads whole.
pub const MAX_CONTROL: usize = 1 << 20;
/// A streamed message is forwarded in pieces of at most this size; its
/// first piece is held until this much (or all of it) has arrived, so a
/// Bind's names are in it.
pub const CHUNK: usize = 64 << 10;

/// Why bytes are not a PostgreSQL message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    #[error("a message length of {0} bytes is impossible")]
    BadLength(i64),
    #[error("unknown message type {0:?}")]
    UnknownType(char),
    #[error("message {0:?} ends inside a field")]
    Truncated(char),
    #[error("message {0:?} has {1} bytes after its last field")]
    Trailing(char, usize),
    #[error("message {0:?} has a bad field")]
    BadField(char),
}

/// Who sent the bytes a [`Decoder`] reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// The frontend: psql or another client.
    Client,
    /// The backend: the PostgreSQL server.
    Server,
}

/// How one message type is read.
enum Handling {
    /// Whole, up to this many body bytes.
    Whole(usize),
    /// In pieces, never held whole.
    Stream,
}

/// Every message type of protocol 3.0 each side may send once the login is
/// over (and the few of the login itself), and how the proxy reads it. A
/// type not listed here ends the connection.
fn handling(side: Side, tag: u8) -> Option<Handling> {
    use Handling::{Stream, Whole};
    match (side, tag) {
        // Query, Parse: the text the rules check.
        (Side::Client, b'Q' | b'P') => Some(Whole(MAX_STATEMENT)),
        // Bind (its names are in the first piece), CopyData, FunctionCall.
        (Side::Client, b'B' | b'd' | b'F') => Some(Stream),
        // Close, CopyDone, CopyFail, Describe, Execute, Flush, password
        // and SASL responses, Sync, Terminate.
        (Side::Client, b'C' | b'c' | b'f' | b'D' | b'E' | b'H' | b'p' | b'S' | b'X') => {
            Some(Whole(MAX_CONTROL))
        }
        // DataRow, CopyData, FunctionCallResponse.
        (Side::Server, b'D' | b'd' | b'V') => Some(Stream),
        (
            Side::Server,
            b'1' | b'2' | b'3' | b'A' | b'c' | b'C' | b'E' | b'G' | b'H' | b'I' | b'K' | b'n'
            | b'N' | b'R' | b's' | b'S' | b't' | b'T' | b'v' | b'W' | b'Z',
        ) => Some(Whole(MAX_CONTROL)),
        _ => None,
    }
}

/// One step of a decoded byte stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    /// A message read whole: its type and body (without type and length).
    Whole { tag: u8, body: Bytes },
    /// The start of a streamed message: its type, its body length, and the
    /// first up to [`CHUNK`] bytes of the body.
    Start { tag: u8, len: usize, head: Bytes },
    /// More of the body of the streamed message last started.
    More(Bytes),
    /// A message the proxy reads whole, over its cap: its body is skipped
    /// (never buffered, never forwarded).
    TooLong { tag: u8, len: usize },
}

/// Splits one direction's byte stream into [`Frame`]s. Bytes go in with
/// [`Decoder::push`] as they arrive, in any split.
pub struct Decoder {
    side: Side,
    buf: BytesMut,
    /// Body bytes of the streamed message still to come.
    streaming: usize,
    /// Body bytes of an over-long message still to skip.
    skipping: usize,
}

impl Decoder {
    pub fn new(side: Side) -> Decoder {
        Decoder {
            side,
            buf: BytesMut::new(),
            streaming: 0,
            skipping: 0,
        }
    }

    pub fn push(&mut self, data: &[u8]) {
        self.buf.extend_from_slice(data);
    }

    /// Whether the frames given so far end on a message boundary (no
    /// streamed message half forwarded).
    pub fn at_boundary(&self) -> bool {
        self.streaming == 0
    }

    /// The next frame, if enough bytes have arrived. An error means the
    /// stream cannot be resynchronised: the caller ends the connection.
    pub fn next_frame(&mut self) -> Result<Option<Frame>, WireError> {
        if self.skipping > 0 {
            let n = self.skipping.min(self.buf.len());
            self.buf.advance(n);
            self.skipping -= n;
            if self.skipping > 0 {
                return Ok(None);
            }
        }
        if self.streaming > 0 {
            if self.buf.is_empty() {
                return Ok(None);
            }
            let n = self.streaming.min(self.buf.len());
            self.streaming -= n;
            return Ok(Some(Frame::More(self.buf.split_to(n).freeze())));
        }
        let (Some(&tag), Some(len)) = (
            self.buf.first(),
            self.buf.get(1..5).and_then(|l| <[u8; 4]>::try_from(l).ok()),
        ) else {
            return Ok(None);
        };
        let len = i32::from_be_bytes(len);
        let body = usize::try_from(len)
            .ok()
            .and_then(|l| l.checked_sub(4))
            .ok_or(WireError::BadLength(i64::from(len)))?;
        match handling(self.side, tag) {
            None => Err(WireError::UnknownType(char::from(tag))),
            Some(Handling::Whole(cap)) if body > cap => {
                self.buf.advance(5);
                self.skipping = body;
                Ok(Some(Frame::TooLong { tag, len: body }))
            }
            Some(Handling::Whole(_)) => {
                if self.buf.len() < 5 + body {
                    self.buf.reserve(5 + body - self.buf.len());
                    return Ok(None);
                }
                self.buf.advance(5);
                let body = self.buf.split_to(body).freeze();
                Ok(Some(Frame::Whole { tag, body }))
            }
            Some(Handling::Stream) => {
                let want = body.min(CHUNK);
                if self.buf.len() < 5 + want {
                    return Ok(None);
                }
                self.buf.advance(5);
                let head = self.buf.split_to(want).freeze();
                self.streaming = body - want;
                Ok(Some(Frame::Start {
                    tag,
                    len: body,
                    head,
                }))
            }
        }
    }
}

/// A cursor over one message body; every read checks its bounds.
pub struct Fields {
    tag: char,
    body: Bytes,
}

impl Fields {
    pub fn new(tag: u8, body: Bytes) -> Fields {
        Fields {
            tag: char::from(tag),
            body,
        }
    }

    /// A NUL-terminated string, without its NUL.
    pub fn cstr(&mut self) -> Result<Bytes, WireError> {
        let nul = self
            .body
            .iter()
            .position(|&b| b == 0)
            .ok_or(WireError::Truncated(self.tag))?;
        let s = self.body.split_to(nul);
        self.body.advance(1);
        Ok(s)
    }

    /// A NUL-terminated string that must be UTF-8 (names, tags, fields of
    /// the server's messages).
    pub fn text(&mut self) -> Result<String, WireError> {
        let s = self.cstr()?;
        String::from_utf8(s.to_vec()).map_err(|_| WireError::BadField(self.tag))
    }

    pub fn u8(&mut self) -> Result<u8, WireError> {
        self.need(1)?;
        Ok(self.body.get_u8())
    }

    pub fn i16(&mut self) -> Result<i16, WireError> {
        self.need(2)?;
        Ok(self.body.get_i16())
    }

    pub fn i32(&mut self) -> Result<i32, WireError> {
        self.need(4)?;
        Ok(self.body.get_i32())
    }

    pub fn bytes(&mut self, n: usize) -> Result<Bytes, WireError> {
        self.need(n)?;
        Ok(self.body.split_to(n))
    }

    pub fn rest(&mut self) -> Bytes {
        std::mem::take(&mut self.body)
    }

    /// Fails unless every byte was read.
    pub fn end(&self) -> Result<(), WireError> {
        match self.body.len() {
            0 => Ok(()),
            n => Err(WireError::Trailing(self.tag, n)),
        }
    }

    fn need(&self, n: usize) -> Result<(), WireError> {
        if self.body.len() < n {
            return Err(WireError::Truncated(self.tag));
        }
        Ok(())
    }
}

/// A body that must be empty (Sync, Flush, Terminate, CopyDone,
/// ParseComplete and the like).
pub fn empty(tag: u8, body: &Bytes) -> Result<(), WireError> {
    Fields::new(tag, body.clone()).end()
}

// ---- Client messages -------------------------------------------------

/// A Query's text.
pub fn query(body: Bytes) -> Result<Bytes, WireError> {
    let mut f = Fields::new(b'Q', body);
    let text = f.cstr()?;
    f.end()?;
    Ok(text)
}

/// A Parse: the statement's name and text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parse {
    pub name: Bytes,
    pub text: Bytes,
}

pub fn parse(body: Bytes) -> Result<Parse, WireError> {
    let mut f = Fields::new(b'P', body);
    let name = f.cstr()?;
    let text = f.cstr()?;
    let types = usize::try_from(f.i16()?).map_err(|_| WireError::BadField('P'))?;
    f.bytes(types * 4)?;
    f.end()?;
    Ok(Parse { name, text })
}

/// A Bind's portal and statement names, from the first piece of its body.
pub fn bind_names(head: Bytes) -> Result<(Bytes, Bytes), WireError> {
    let mut f = Fields::new(b'B', head);
    let portal = f.cstr()?;
    let statement = f.cstr()?;
    Ok((portal, statement))
}

/// The object a Describe or Close names: `S` a statement, `P` a portal.
pub fn target(tag: u8, body: Bytes) -> Result<(u8, Bytes), WireError> {
    let mut f = Fields::new(tag, body);
    let kind = f.u8()?;
    if kind != b'S' && kind != b'P' {
        return Err(WireError::BadField(char::from(tag)));
    }
    let name = f.cstr()?;
    f.end()?;
    Ok((kind, name))
}

/// An Execute's portal name.
pub fn execute(body: Bytes) -> Result<Bytes, WireError> {
    let mut f = Fields::new(b'E', body);
    let portal = f.cstr()?;
    f.i32()?;
    f.end()?;
    Ok(portal)
}

/// A CopyFail's reason, checked and dropped.
pub fn copy_fail(body: Bytes) -> Result<(), WireError> {
    let mut f = Fields::new(b'f', body);
    f.cstr()?;
    f.end()
}

/// A PasswordMessage's password, in memory that is wiped when dropped.
pub fn password(body: Bytes) -> Result<Zeroizing<Vec<u8>>, WireError> {
    let secret = Zeroizing::new(body.to_vec());
    let nul = secret
        .iter()
        .position(|&b| b == 0)
        .ok_or(WireError::Truncated('p'))?;
    if nul + 1 != secret.len() {
        return Err(WireError::Trailing('p', secret.len() - nul - 1));
    }
    Ok(Zeroizing::new(
        secret.get(..nul).unwrap_or_default().to_vec(),
    ))
}

/// The first packet of a connection, which has no type byte.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Startup {
    Ssl,
    GssEnc,
    /// A CancelRequest: the process id and secret key of BackendKeyData.
    Cancel {
        key: [u8; 8],
    },
    /// A StartupMessage of protocol 3.`minor`, its parameters in order.
    Params {
        minor: u16,
        params: Vec<(Bytes, Bytes)>,
    },
    /// A StartupMessage of another major version.
    Unsupported {
        major: u16,
        minor: u16,
    },
}

/// A startup packet's body (after its length).
pub fn startup(body: Bytes) -> Result<Startup, WireError> {
    let mut f = Fields::new(0, body);
    let code = u32::from_be_bytes(f.i32()?.to_be_bytes());
    match code {
        SSL_REQUEST | GSSENC_REQUEST => {
            f.end()?;
            Ok(if code == SSL_REQUEST {
                Startup::Ssl
            } else {
                Startup::GssEnc
            })
        }
        CANCEL_REQUEST => {
            let mut key = [0u8; 8];
            f.bytes(8)?.copy_to_slice(&mut key);
            f.end()?;
            Ok(Startup::Cancel { key })
        }
        _ => {
            let (major, minor) = ((code >> 16) as u16, (code & 0xffff) as u16);
            if major != 3 {
                return Ok(Startup::Unsupported { major, minor });
            }
            let mut params = Vec::new();
            loop {
                let name = f.cstr()?;
                if name.is_empty() {
                    break;
                }
                params.push((name, f.cstr()?));
            }
            f.end()?;
            Ok(Startup::Params { minor, params })
        }
    }
}

// ---- Server messages -------------------------------------------------

/// The fields of an ErrorResponse or NoticeResponse that are shown.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Notice {
    /// `V` (never translated) when the server sends it, else `S`.
    pub severity: String,
    pub code: String,
    pub message: String,
}

impl Notice {
    /// `ERROR 42P01: relation "t" does not exist`.
    pub fn line(&self) -> String {
        format!("{} {}: {}", self.severity, self.code, self.message)
    }

    pub fn fatal(&self) -> bool {
        matches!(self.severity.as_str(), "FATAL" | "PANIC")
    }
}

pub fn notice(tag: u8, body: Bytes) -> Result<Notice, WireError> {
    let mut f = Fields::new(tag, body);
    let mut n = Notice::default();
    let mut localised = String::new();
    loop {
        let kind = f.u8()?;
        if kind == 0 {
            break;
        }
        // Field values are in the server's encoding: read them lossily.
        let value = String::from_utf8_lossy(&f.cstr()?).into_owned();
        match kind {
            b'V' => n.severity = value,
            b'S' => localised = value,
            b'C' => n.code = value,
            b'M' => n.message = value,
            _ => {}
        }
    }
    f.end()?;
    if n.severity.is_empty() {
        n.severity = localised;
    }
    Ok(n)
}

/// A CommandComplete's tag (`SELECT 3`).
pub fn command_complete(body: Bytes) -> Result<String, WireError> {
    let mut f = Fields::new(b'C', body);
    let tag = String::from_utf8_lossy(&f.cstr()?).into_owned();
    f.end()?;
    Ok(tag)
}

/// A ReadyForQuery's transaction status: `I`, `T` or `E`.
pub fn ready(body: Bytes) -> Result<u8, WireError> {
    let mut f = Fields::new(b'Z', body);
    let status = f.u8()?;
    f.end()?;
    match status {
        b'I' | b'T' | b'E' => Ok(status),
        _ => Err(WireError::BadField('Z')),
    }
}

/// A ParameterStatus: name and value.
pub fn parameter_status(body: Bytes) -> Result<(String, String), WireError> {
    let mut f = Fields::new(b'S', body);
    let name = String::from_utf8_lossy(&f.cstr()?).into_owned();
    let value = String::from_utf8_lossy(&f.cstr()?).into_owned();
    f.end()?;
    Ok((name, value))
}

/// BackendKeyData of protocol 3.0: process id and secret key, as a
/// CancelRequest carries them.
pub fn backend_key(body: Bytes) -> Result<[u8; 8], WireError> {
    let mut f = Fields::new(b'K', body);
    let mut key = [0u8; 8];
    f.bytes(8)?.copy_to_slice(&mut key);
    f.end()?;
    Ok(key)
}

/// An Authentication request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Auth {
    Ok,
    Cleartext,
    Md5 {
        salt: [u8; 4],
    },
    Sasl {
        mechanisms: Vec<String>,
    },
    SaslContinue(Bytes),
    SaslFinal(Bytes),
    /// Another method, by its code (Kerberos 2, GSS 7 and 8, SSPI 9).
    Other(i32),
}

pub fn auth(body: Bytes) -> Result<Auth, WireError> {
    let mut f = Fields::new(b'R', body);
    let auth = match f.i32()? {
        0 => Auth::Ok,
        3 => Auth::Cleartext,
        5 => {
            let mut salt = [0u8; 4];
            f.bytes(4)?.copy_to_slice(&mut salt);
            Auth::Md5 { salt }
        }
        10 => {
            let mut mechanisms = Vec::new();
            loop {
                let m = f.text()?;
                if m.is_empty() {
                    break;
                }
                mechanisms.push(m);
            }
            Auth::Sasl { mechanisms }
        }
        11 => Auth::SaslContinue(f.rest()),
        12 => Auth::SaslFinal(f.rest()),
        code => {
            f.rest();
            Auth::Other(code)
        }
    };
    f.end()?;
    Ok(auth)
}

// ---- Builders --------------------------------------------------------

/// A message: type, length, body.
pub fn message(tag: u8, body: &[u8]) -> Bytes {
    let mut out = BytesMut::with_capacity(5 + body.len());
    out.put_u8(tag);
    out.put_u32(frame_len(body.len()));
    out.put_slice(body);
    out.freeze()
}

/// The header of a message whose body has `len` bytes.
pub fn header(tag: u8, len: usize) -> [u8; 5] {
    let l = frame_len(len).to_be_bytes();
    [tag, l[0], l[1], l[2], l[3]]
}

/// The length field for a body of `len` bytes. Every body this module
/// frames came from a decoder cap or a builder here, far below 2 GiB.
fn frame_len(len: usize) -> u32 {
    u32::try_from(len + 4).unwrap_or(u32::MAX)
}

fn put_cstr(out: &mut BytesMut, s: &[u8]) {
    out.put_slice(s);
    out.put_u8(0);
}

/// An ErrorResponse (or NoticeResponse with tag `N`).
pub fn error_response(severity: &str, code: &str, text: &str) -> Bytes {
    let mut body = BytesMut::new();
    for (kind, value) in [
        (b'S', severity),
        (b'V', severity),
        (b'C', code),
        (b'M', text),
    ] {
        body.put_u8(kind);
        // A NUL inside would end the field early; the texts here are ours.
        put_cstr(&mut body, value.replace('\0', " ").as_bytes());
    }
    body.put_u8(0);
    message(b'E', &body)
}

pub fn ready_for_query(status: u8) -> Bytes {
    message(b'Z', &[status])
}

/// An Authentication request from the proxy to its client.
pub fn auth_request(code: i32) -> Bytes {
    message(b'R', &code.to_be_bytes())
}

/// A NegotiateProtocolVersion: the newest minor version the proxy speaks
/// (0) and the `_pq_.` options it did not recognise.
pub fn negotiate_version(options: &[Bytes]) -> Bytes {
    let mut body = BytesMut::new();
    body.put_u32(PROTOCOL_3_0);
    body.put_u32(u32::try_from(options.len()).unwrap_or(u32::MAX));
    for o in options {
        put_cstr(&mut body, o);
    }
    message(b'v', &body)
}

/// A StartupMessage of protocol 3.0.
pub fn startup_message(params: &[(Bytes, Bytes)]) -> Bytes {
    let mut body = BytesMut::new();
    body.put_u32(PROTOCOL_3_0);
    for (k, v) in params {
        put_cstr(&mut body, k);
        put_cstr(&mut body, v);
    }
    body.put_u8(0);
    let mut out = BytesMut::with_capacity(body.len() + 4);
    out.put_u32(frame_len(body.len()));
    out.put_slice(&body);
    out.freeze()
}

/// An SSLRequest, as the proxy asks its server for TLS.
pub fn ssl_request() -> [u8; 8] {
    let [a, b, c, d] = SSL_REQUEST.to_be_bytes();
    [0, 0, 0, 8, a, b, c, d]
}

/// A CancelRequest for this BackendKeyData.
pub fn cancel_request(key: &[u8; 8]) -> [u8; 16] {
    let mut out = [0u8; 16];
    let (head, tail) = out.split_at_mut(8);
    head.copy_from_slice(&[0, 0, 0, 16, 0x04, 0xd2, 0x16, 0x2e]);
    tail.copy_from_slice(key);
    out
}

/// A PasswordMessage carrying a secret: built in memory that is wiped when
/// dropped.
pub fn password_message(secret: &[u8]) -> Zeroizing<Vec<u8>> {
    let mut out = Zeroizing::new(Vec::with_capacity(secret.len() + 6));
    out.push(b'p');
    out.extend_from_slice(&frame_len(secret.len() + 1).to_be_bytes());
    out.extend_from_slice(secret);
    out.push(0);
    out
}

/// A SASLInitialResponse.
pub fn sasl_initial(mechanism: &str, data: &[u8]) -> Bytes {
    let mut body = BytesMut::new();
    put_cstr(&mut body, mechanism.as_bytes());
    body.put_u32(u32::try_from(data.len()).unwrap_or(u32::MAX));
    body.put_slice(data);
    message(b'p', &body)
}
