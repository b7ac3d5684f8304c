//! MySQL's classic client/server protocol as the proxy needs it: framing
//! both ways ([`Decoder`]), parsers for the packets it reads, builders for
//! the ones it writes.
//!
//! A packet is a 3-byte little-endian payload length, a sequence id and
//! the payload. A payload of 16 MiB - 1 bytes or more goes as packets of
//! exactly 0xFFFFFF bytes and a last shorter one (empty if need be); the
//! decoder reports which packet starts and which ends a payload. Packets
//! stream through in pieces of at most [`CHUNK`] bytes, so a row of any
//! size is never held whole.
//!
//! Everything here is total: any byte sequence yields a value or a
//! [`WireError`], never a panic.

use bytes::{Buf, BufMut, Bytes, BytesMut};
use zeroize::Zeroizing;

/// The payload length that says "more of this payload follows".
pub const MAX_PACKET: usize = 0xff_ffff;
/// A packet is forwarded in pieces of at most this size; its first piece
/// is held until this much (or all of it) has arrived.
pub const CHUNK: usize = 64 << 10;
/// The longest command payload (a query's text) the proxy reads whole.
pub const MAX_STATEMENT: usize = 16 << 20;

/// Capability flags the proxy knows about.
pub mod caps {
    pub const LONG_PASSWORD: u32 = 1;
    pub const FOUND_ROWS: u32 = 1 << 1;
    pub const LONG_FLAG: u32 = 1 << 2;
    pub const CONNECT_WITH_DB: u32 = 1 << 3;
    pub const LOCAL_FILES: u32 = 1 << 7;
    pub const IGNORE_SPACE: u32 = 1 << 8;
    pub const PROTOCOL_41: u32 = 1 << 9;
    pub const INTERACTIVE: u32 = 1 << 10;
    pub const SSL: u32 = 1 << 11;
    pub const IGNORE_SIGPIPE: u32 = 1 << 12;
    pub const TRANSACTIONS: u32 = 1 << 13;
    pub const SECURE_CONNECTION: u32 = 1 << 15;
    pub const MULTI_STATEMENTS: u32 = 1 << 16;
    pub const MULTI_RESULTS: u32 = 1 << 17;
    pub const PS_MULTI_RESULTS: u32 = 1 << 18;
    pub const PLUGIN_AUTH: u32 = 1 << 19;
    pub const CONNECT_ATTRS: u32 = 1 << 20;
    pub const PLUGIN_AUTH_LENENC_DATA: u32 = 1 << 21;
    pub const DEPRECATE_EOF: u32 = 1 << 24;
}

/// Server status flags the reply parser follows.
pub mod status {
    pub const CURSOR_EXISTS: u16 = 0x0040;
    pub const MORE_RESULTS_EXISTS: u16 = 0x0008;
}

/// Command bytes.
pub mod com {
    pub const QUIT: u8 = 0x01;
    pub const INIT_DB: u8 = 0x02;
    pub const QUERY: u8 = 0x03;
    pub const FIELD_LIST: u8 = 0x04;
    pub const STATISTICS: u8 = 0x09;
    pub const PING: u8 = 0x0e;
    pub const CHANGE_USER: u8 = 0x11;
    pub const BINLOG_DUMP: u8 = 0x12;
    pub const REGISTER_SLAVE: u8 = 0x15;
    pub const STMT_PREPARE: u8 = 0x16;
    pub const STMT_EXECUTE: u8 = 0x17;
    pub const STMT_SEND_LONG_DATA: u8 = 0x18;
    pub const STMT_CLOSE: u8 = 0x19;
    pub const STMT_RESET: u8 = 0x1a;
    pub const SET_OPTION: u8 = 0x1b;
    pub const STMT_FETCH: u8 = 0x1c;
    pub const BINLOG_DUMP_GTID: u8 = 0x1e;
    pub const RESET_CONNECTION: u8 = 0x1f;
}

/// The names of the commands a person might see refused.
pub fn command_name(command: u8) -> String {
    let name = match command {
        0x00 => "COM_SLEEP",
        0x05 => "COM_CREATE_DB",
        0x06 => "COM_DROP_DB",
        0x07 => "COM_REFRESH",
        0x08 => "COM_SHUTDOWN",
        0x0a => "COM_PROCESS_INFO",
        0x0b => "COM_CONNECT",
        0x0c => "COM_PROCESS_KILL",
        0x0d => "COM_DEBUG",
        0x0f => "COM_TIME",
        0x10 => "COM_DELAYED_INSERT",
        com::CHANGE_USER => "COM_CHANGE_USER",
        com::BINLOG_DUMP => "COM_BINLOG_DUMP",
        0x13 => "COM_TABLE_DUMP",
        0x14 => "COM_CONNECT_OUT",
        com::REGISTER_SLAVE => "COM_REGISTER_SLAVE",
        0x1d => "COM_DAEMON",
        com::BINLOG_DUMP_GTID => "COM_BINLOG_DUMP_GTID",
        0x20 => "COM_CLONE",
        0xfa => "COM_STMT_BULK_EXECUTE",
        _ => return format!("command 0x{command:02x}"),
    };
    name.into()
}

/// Why bytes are not the packet they should be.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    #[error("{0} ends inside a field")]
    Truncated(&'static str),
    #[error("{0} has a bad field")]
    BadField(&'static str),
    #[error("packet {got} where {want} was due: packets out of order")]
    Sequence { got: u8, want: u8 },
    #[error("an empty packet where a command was due")]
    Empty,
}

/// The header and the first up to [`CHUNK`] bytes of one packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Head {
    pub seq: u8,
    /// The packet's payload length.
    pub len: usize,
    pub bytes: Bytes,
    /// Whether this packet starts a payload (the one before it was not
    /// 0xFFFFFF bytes long).
    pub first: bool,
}

impl Head {
    /// Whether the whole packet is in `bytes`.
    pub fn whole(&self) -> bool {
        self.bytes.len() == self.len
    }

    /// Whether this packet ends its payload.
    pub fn last(&self) -> bool {
        self.len < MAX_PACKET
    }
}

/// One step of a decoded byte stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    Head(Head),
    /// More of the packet last started; `end` with its last piece.
    More {
        bytes: Bytes,
        end: bool,
    },
}

/// Splits one direction's byte stream into [`Frame`]s. Bytes go in with
/// [`Decoder::push`] as they arrive, in any split.
#[derive(Default)]
pub struct Decoder {
    buf: BytesMut,
    /// Payload bytes of the packet under way still to come.
    streaming: usize,
    /// Whether the next packet continues a payload.
    continuing: bool,
}

impl Decoder {
    pub fn new() -> Decoder {
        Decoder::default()
    }

    pub fn push(&mut self, data: &[u8]) {
        self.buf.extend_from_slice(data);
    }

    /// Whether the frames given so far end on a packet boundary.
    pub fn at_boundary(&self) -> bool {
        self.streaming == 0
    }

    /// Whether bytes are buffered that no frame has given yet.
    pub fn pending(&self) -> bool {
        !self.buf.is_empty()
    }

    /// The next frame, if enough bytes have arrived.
    pub fn next_frame(&mut self) -> Option<Frame> {
        if self.streaming > 0 {
            if self.buf.is_empty() {
                return None;
            }
            let n = self.streaming.min(self.buf.len());
            self.streaming -= n;
            let bytes = self.buf.split_to(n).freeze();
            return Some(Frame::More {
                bytes,
                end: self.streaming == 0,
            });
        }
        let [a, b, c, seq] = *self.buf.first_chunk::<4>()?;
        let len = usize::from(a) | usize::from(b) << 8 | usize::from(c) << 16;
        let want = len.min(CHUNK);
        if self.buf.len() < 4 + want {
            self.buf.reserve(4 + want - self.buf.len());
            return None;
        }
        self.buf.advance(4);
        let bytes = self.buf.split_to(want).freeze();
        self.streaming = len - want;
        let first = !self.continuing;
        self.continuing = len == MAX_PACKET;
        Some(Frame::Head(Head {
            seq,
            len,
            bytes,
            first,
        }))
    }
}

/// A packet header.
pub fn header(len: usize, seq: u8) -> [u8; 4] {
    let len = u32::try_from(len.min(MAX_PACKET)).unwrap_or(0);
    let [a, b, c, _] = len.to_le_bytes();
    [a, b, c, seq]
}

/// A payload as packets, the first with sequence id `seq`; returns them
/// and the sequence id after the last.
pub fn packets(seq: u8, payload: &[u8]) -> (BytesMut, u8) {
    let mut out = BytesMut::with_capacity(payload.len() + 4 * (payload.len() / MAX_PACKET + 1));
    let mut seq = seq;
    let mut rest = payload;
    loop {
        let (piece, after) = rest.split_at(rest.len().min(MAX_PACKET));
        out.put_slice(&header(piece.len(), seq));
        out.put_slice(piece);
        seq = seq.wrapping_add(1);
        rest = after;
        // A piece of exactly 0xFFFFFF bytes says more follows: an empty
        // packet ends such a payload.
        if piece.len() < MAX_PACKET {
            return (out, seq);
        }
    }
}

/// One packet of a payload under 16 MiB.
pub fn packet(seq: u8, payload: &[u8]) -> Bytes {
    packets(seq, payload).0.freeze()
}

/// A cursor over one payload; every read checks its bounds.
pub struct Fields {
    what: &'static str,
    body: Bytes,
}

impl Fields {
    pub fn new(what: &'static str, body: Bytes) -> Fields {
        Fields { what, body }
    }

    fn need(&self, n: usize) -> Result<(), WireError> {
        if self.body.len() < n {
            return Err(WireError::Truncated(self.what));
        }
        Ok(())
    }

    pub fn u8(&mut self) -> Result<u8, WireError> {
        self.need(1)?;
        Ok(self.body.get_u8())
    }

    pub fn u16(&mut self) -> Result<u16, WireError> {
        self.need(2)?;
        Ok(self.body.get_u16_le())
    }

    pub fn u32(&mut self) -> Result<u32, WireError> {
        self.need(4)?;
        Ok(self.body.get_u32_le())
    }

    pub fn bytes(&mut self, n: usize) -> Result<Bytes, WireError> {
        self.need(n)?;
        Ok(self.body.split_to(n))
    }

    /// A length-encoded integer (`0xFB`, NULL, is not one).
    pub fn lenenc(&mut self) -> Result<u64, WireError> {
        Ok(match self.u8()? {
            n @ 0..=0xfa => u64::from(n),
            0xfc => u64::from(self.u16()?),
            0xfd => {
                let b = self.bytes(3)?;
                b.iter().rev().fold(0, |v, &x| v << 8 | u64::from(x))
            }
            0xfe => {
                self.need(8)?;
                self.body.get_u64_le()
            }
            _ => return Err(WireError::BadField(self.what)),
        })
    }

    pub fn lenenc_bytes(&mut self) -> Result<Bytes, WireError> {
        let n = usize::try_from(self.lenenc()?).map_err(|_| WireError::BadField(self.what))?;
        self.bytes(n)
    }

    /// A NUL-terminated string, without its NUL.
    pub fn cstr(&mut self) -> Result<Bytes, WireError> {
        let nul = self
            .body
            .iter()
            .position(|&b| b == 0)
            .ok_or(WireError::Truncated(self.what))?;
        let s = self.body.split_to(nul);
        self.body.advance(1);
        Ok(s)
    }

    /// A NUL-terminated string, or the rest when the NUL is missing (some
    /// servers and clients leave it off a packet's last string).
    pub fn cstr_or_rest(&mut self) -> Bytes {
        self.cstr().unwrap_or_else(|_| self.rest())
    }

    pub fn rest(&mut self) -> Bytes {
        std::mem::take(&mut self.body)
    }

    pub fn is_empty(&self) -> bool {
        self.body.is_empty()
    }
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

// ---- The login ----------------------------------------------------------

/// A server's HandshakeV10.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Greeting {
    pub version: String,
    pub connection: u32,
    /// The 20 bytes of auth-plugin-data, without the trailing NUL.
    pub scramble: Vec<u8>,
    pub caps: u32,
    pub charset: u8,
    pub status: u16,
    pub plugin: String,
}

pub fn greeting(payload: Bytes) -> Result<Greeting, WireError> {
    let what = "the server's handshake";
    let mut f = Fields::new(what, payload);
    if f.u8()? != 10 {
        return Err(WireError::BadField(what));
    }
    let version = text(&f.cstr()?);
    let connection = f.u32()?;
    let mut scramble = f.bytes(8)?.to_vec();
    f.u8()?;
    let low = f.u16()?;
    let charset = f.u8()?;
    let status = f.u16()?;
    let caps = u32::from(low) | u32::from(f.u16()?) << 16;
    let data_len = usize::from(f.u8()?);
    f.bytes(10)?;
    if caps & caps::SECURE_CONNECTION != 0 {
        let part = f.bytes(data_len.saturating_sub(8).max(13))?;
        scramble.extend_from_slice(part.strip_suffix(b"\0").unwrap_or(&part));
    }
    let plugin = if caps & caps::PLUGIN_AUTH != 0 {
        text(&f.cstr_or_rest())
    } else {
        String::new()
    };
    Ok(Greeting {
        version,
        connection,
        scramble,
        caps,
        charset,
        status,
        plugin,
    })
}

/// The HandshakeV10 the proxy sends its client: `mysql_native_password`
/// with the proxy's own scramble, the server's version and connection id.
pub fn build_greeting(server: &Greeting, caps: u32, scramble: &[u8; 20]) -> Bytes {
    let mut out = BytesMut::new();
    out.put_u8(10);
    out.put_slice(server.version.replace('\0', " ").as_bytes());
    out.put_u8(0);
    out.put_u32_le(server.connection);
    let (head, tail) = scramble.split_at(8);
    out.put_slice(head);
    out.put_u8(0);
    out.put_u16_le((caps & 0xffff) as u16);
    out.put_u8(server.charset);
    out.put_u16_le(server.status);
    out.put_u16_le((caps >> 16) as u16);
    out.put_u8(21);
    out.put_bytes(0, 10);
    out.put_slice(tail);
    out.put_u8(0);
    out.put_slice(b"mysql_native_password\0");
    packet(0, &out)
}

/// A client's HandshakeResponse41.
#[derive(Debug)]
pub struct Response {
    pub caps: u32,
    pub max_packet: u32,
    pub charset: u8,
    /// The user name the client gave.
    pub user: String,
    pub auth: Zeroizing<Vec<u8>>,
    pub database: Option<Bytes>,
    pub plugin: Option<String>,
}

pub fn response(payload: Bytes) -> Result<Response, WireError> {
    let what = "the client's handshake response";
    let mut f = Fields::new(what, payload);
    let caps = f.u32()?;
    if caps & caps::PROTOCOL_41 == 0 {
        return Err(WireError::BadField(what));
    }
    let max_packet = f.u32()?;
    let charset = f.u8()?;
    f.bytes(23)?;
    let user = text(&f.cstr()?);
    let auth = if caps & caps::PLUGIN_AUTH_LENENC_DATA != 0 {
        f.lenenc_bytes()?
    } else if caps & caps::SECURE_CONNECTION != 0 {
        let n = usize::from(f.u8()?);
        f.bytes(n)?
    } else {
        f.cstr()?
    };
    let auth = Zeroizing::new(auth.to_vec());
    let database = if caps & caps::CONNECT_WITH_DB != 0 && !f.is_empty() {
        Some(f.cstr_or_rest()).filter(|d| !d.is_empty())
    } else {
        None
    };
    let plugin = if caps & caps::PLUGIN_AUTH != 0 && !f.is_empty() {
        Some(text(&f.cstr_or_rest()))
    } else {
        None
    };
    Ok(Response {
        caps,
        max_packet,
        charset,
        user,
        auth,
        database,
        plugin,
    })
}

/// What the proxy sends the server as a client: the vaulted user, the
/// database, and its answer for `plugin`. Wiped when dropped.
pub struct Login<'a> {
    pub caps: u32,
    pub max_packet: u32,
    pub charset: u8,
    pub user: &'a str,
    pub auth: &'a [u8],
    pub database: &'a [u8],
    pub plugin: &'a str,
}

/// The HandshakeResponse41 as packet `seq` (1, or 2 after an SSL Request).
pub fn build_response(seq: u8, login: &Login<'_>) -> Zeroizing<Vec<u8>> {
    let mut out = Zeroizing::new(Vec::with_capacity(64 + login.auth.len()));
    out.extend_from_slice(&login.caps.to_le_bytes());
    out.extend_from_slice(&login.max_packet.to_le_bytes());
    out.push(login.charset);
    out.extend_from_slice(&[0; 23]);
    out.extend_from_slice(login.user.replace('\0', "").as_bytes());
    out.push(0);
    // Auth data of up to 250 bytes has the same form either way.
    out.push(u8::try_from(login.auth.len()).unwrap_or(0));
    out.extend_from_slice(login.auth);
    if login.caps & caps::CONNECT_WITH_DB != 0 {
        out.extend_from_slice(login.database);
        out.push(0);
    }
    out.extend_from_slice(login.plugin.as_bytes());
    out.push(0);
    let mut framed = Zeroizing::new(Vec::with_capacity(out.len() + 4));
    framed.extend_from_slice(&header(out.len(), seq));
    framed.extend_from_slice(&out);
    framed
}

/// An SSL Request: the first 32 bytes of a HandshakeResponse41 with
/// CLIENT_SSL, as packet 1; the TLS handshake follows it.
pub fn build_ssl_request(caps: u32, max_packet: u32, charset: u8) -> Bytes {
    let mut out = BytesMut::with_capacity(36);
    out.put_slice(&header(32, 1));
    out.put_u32_le(caps | caps::SSL);
    out.put_u32_le(max_packet);
    out.put_u8(charset);
    out.put_bytes(0, 23);
    out.freeze()
}

/// An AuthSwitchRequest's plugin and data (the trailing NUL of the data
/// dropped).
pub fn auth_switch(payload: Bytes) -> Result<(String, Bytes), WireError> {
    let mut f = Fields::new("an auth switch request", payload);
    f.u8()?;
    let plugin = text(&f.cstr_or_rest());
    let data = f.rest();
    let data = match data.strip_suffix(b"\0") {
        Some(d) => data.slice(..d.len()),
        None => data,
    };
    Ok((plugin, data))
}

/// An AuthSwitchRequest to `mysql_native_password` with `scramble`.
pub fn build_auth_switch(seq: u8, scramble: &[u8; 20]) -> Bytes {
    let mut out = BytesMut::new();
    out.put_u8(0xfe);
    out.put_slice(b"mysql_native_password\0");
    out.put_slice(scramble);
    out.put_u8(0);
    packet(seq, &out)
}

// ---- Replies --------------------------------------------------------------

/// An OK packet's counts (its info and session state are not read).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Ok {
    pub affected: u64,
    pub insert_id: u64,
    pub status: u16,
    pub warnings: u16,
}

impl Ok {
    /// `OK, 1 row affected`.
    pub fn line(&self) -> String {
        let s = if self.affected == 1 { "" } else { "s" };
        format!("OK, {} row{s} affected", self.affected)
    }
}

pub fn ok(payload: Bytes) -> Result<Ok, WireError> {
    let mut f = Fields::new("an OK packet", payload);
    f.u8()?;
    Ok(Ok {
        affected: f.lenenc()?,
        insert_id: f.lenenc()?,
        status: f.u16()?,
        warnings: f.u16()?,
    })
}

/// An ERR packet.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Error {
    pub code: u16,
    pub state: String,
    pub message: String,
}

impl Error {
    /// `ERROR 1146 (42S02): Table 'x' doesn't exist`, as the mysql client
    /// prints it.
    pub fn line(&self) -> String {
        format!("ERROR {} ({}): {}", self.code, self.state, self.message)
    }
}

pub fn error(payload: Bytes) -> Result<Error, WireError> {
    let mut f = Fields::new("an ERR packet", payload);
    if f.u8()? != 0xff {
        return Err(WireError::BadField("an ERR packet"));
    }
    let code = f.u16()?;
    let mut rest = f.rest();
    let state = if rest.first() == Some(&b'#') && rest.len() >= 6 {
        let state = text(rest.get(1..6).unwrap_or_default());
        rest.advance(6);
        state
    } else {
        "HY000".into()
    };
    Ok(Error {
        code,
        state,
        message: text(&rest),
    })
}

/// An ERR packet from the proxy. Before the handshake the client expects
/// no SQLSTATE (`state` empty).
pub fn build_error(seq: u8, code: u16, state: &str, message: &str) -> Bytes {
    let mut out = BytesMut::new();
    out.put_u8(0xff);
    out.put_u16_le(code);
    if state.len() == 5 {
        out.put_u8(b'#');
        out.put_slice(state.as_bytes());
    }
    out.put_slice(message.as_bytes());
    packet(seq, &out)
}

/// An OK packet from the proxy (the end of the client's login).
pub fn build_ok(seq: u8, status: u16) -> Bytes {
    let mut out = BytesMut::new();
    out.put_slice(&[0, 0, 0]);
    out.put_u16_le(status);
    out.put_u16_le(0);
    packet(seq, &out)
}

/// Whether a payload starting a packet of `len` bytes is an EOF packet
/// (a row starting 0xFE is at least 16 MiB long).
pub fn is_eof(head: &[u8], len: usize) -> bool {
    head.first() == Some(&0xfe) && len < 9
}

/// An EOF packet's status flags.
pub fn eof_status(payload: Bytes) -> Result<u16, WireError> {
    let mut f = Fields::new("an EOF packet", payload);
    f.u8()?;
    if f.is_empty() {
        // A pre-4.1 EOF: no flags.
        return Ok(0);
    }
    f.u16()?;
    f.u16()
}

/// A result set's column count.
pub fn column_count(payload: Bytes) -> Result<u64, WireError> {
    let mut f = Fields::new("a column count", payload);
    let n = f.lenenc()?;
    if n == 0 || !f.is_empty() {
        return Err(WireError::BadField("a column count"));
    }
    Ok(n)
}

/// COM_STMT_PREPARE's answer: the statement id, its columns and its
/// parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Prepared {
    pub id: u32,
    pub columns: u16,
    pub params: u16,
}

pub fn prepared(payload: Bytes) -> Result<Prepared, WireError> {
    let mut f = Fields::new("a prepare OK", payload);
    f.u8()?;
    let id = f.u32()?;
    let columns = f.u16()?;
    let params = f.u16()?;
    Ok(Prepared {
        id,
        columns,
        params,
    })
}

/// The statement id of COM_STMT_EXECUTE, _SEND_LONG_DATA, _CLOSE, _RESET
/// or _FETCH, from the start of its payload.
pub fn statement_id(payload: &[u8]) -> Result<u32, WireError> {
    let what = "a prepared statement command";
    let id = payload.get(1..5).ok_or(WireError::Truncated(what))?;
    let id = <[u8; 4]>::try_from(id).map_err(|_| WireError::Truncated(what))?;
    Ok(u32::from_le_bytes(id))
}
