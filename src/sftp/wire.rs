//! The SFTP version 3 wire format (draft-ietf-secsh-filexfer-02, as OpenSSH
//! speaks it), only as far as a relay needs it: framing, the leading path or
//! handle fields of every request (to check and rewrite them), the few
//! response bodies the relay reads or writes itself, and encoders.
//!
//! Everything here is total: any byte sequence yields a value or a
//! [`WireError`], never a panic, and nothing allocates more than one packet
//! (at most [`MAX_PACKET`] bytes).

use bytes::{Buf, BufMut, Bytes, BytesMut};

/// The largest packet either side may send: OpenSSH's
/// `SFTP_MAX_MSG_LENGTH` (256 KiB), which its client and server both enforce.
pub const MAX_PACKET: usize = 256 * 1024;

/// Packet types.
pub mod kind {
    pub const INIT: u8 = 1;
    pub const VERSION: u8 = 2;
    pub const OPEN: u8 = 3;
    pub const CLOSE: u8 = 4;
    pub const READ: u8 = 5;
    pub const WRITE: u8 = 6;
    pub const LSTAT: u8 = 7;
    pub const FSTAT: u8 = 8;
    pub const SETSTAT: u8 = 9;
    pub const FSETSTAT: u8 = 10;
    pub const OPENDIR: u8 = 11;
    pub const READDIR: u8 = 12;
    pub const REMOVE: u8 = 13;
    pub const MKDIR: u8 = 14;
    pub const RMDIR: u8 = 15;
    pub const REALPATH: u8 = 16;
    pub const STAT: u8 = 17;
    pub const RENAME: u8 = 18;
    pub const READLINK: u8 = 19;
    pub const SYMLINK: u8 = 20;
    pub const STATUS: u8 = 101;
    pub const HANDLE: u8 = 102;
    pub const DATA: u8 = 103;
    pub const NAME: u8 = 104;
    pub const ATTRS: u8 = 105;
    pub const EXTENDED: u8 = 200;
    pub const EXTENDED_REPLY: u8 = 201;
}

/// Status codes.
pub mod status {
    pub const OK: u32 = 0;
    pub const EOF: u32 = 1;
    pub const NO_SUCH_FILE: u32 = 2;
    pub const PERMISSION_DENIED: u32 = 3;
    pub const FAILURE: u32 = 4;
    pub const BAD_MESSAGE: u32 = 5;
    pub const CONNECTION_LOST: u32 = 7;
    pub const OP_UNSUPPORTED: u32 = 8;
}

/// `SSH_FXF_*` open flags.
pub mod open_flags {
    pub const READ: u32 = 0x01;
    pub const WRITE: u32 = 0x02;
    pub const APPEND: u32 = 0x04;
    pub const CREAT: u32 = 0x08;
    pub const TRUNC: u32 = 0x10;
}

/// `SSH_FILEXFER_ATTR_*` flags.
pub mod attr_flags {
    pub const SIZE: u32 = 0x01;
    pub const UIDGID: u32 = 0x02;
    pub const PERMISSIONS: u32 = 0x04;
    pub const ACMODTIME: u32 = 0x08;
    pub const EXTENDED: u32 = 0x8000_0000;
}

/// Why bytes are not an SFTP packet.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    #[error("packet length {0} is over the {MAX_PACKET}-byte limit")]
    TooLong(usize),
    #[error("empty packet")]
    Empty,
    #[error("packet ends inside a field")]
    Truncated,
    #[error("unknown packet type {0}")]
    UnknownType(u8),
}

/// Splits a byte stream into packets (without their length prefix).
#[derive(Default)]
pub struct Frames {
    buf: BytesMut,
}

impl Frames {
    pub fn push(&mut self, data: &[u8]) {
        self.buf.extend_from_slice(data);
    }

    /// The next whole packet, if one has arrived. An error means the stream
    /// cannot be resynchronised: the caller closes the channel.
    pub fn next_packet(&mut self) -> Result<Option<Bytes>, WireError> {
        if self.buf.len() < 4 {
            return Ok(None);
        }
        let len = u32::from_be_bytes([self.buf[0], self.buf[1], self.buf[2], self.buf[3]]) as usize;
        if len > MAX_PACKET {
            return Err(WireError::TooLong(len));
        }
        if len == 0 {
            return Err(WireError::Empty);
        }
        if self.buf.len() < 4 + len {
            // Reserve once for the whole packet instead of growing per chunk.
            self.buf.reserve(4 + len - self.buf.len());
            return Ok(None);
        }
        self.buf.advance(4);
        Ok(Some(self.buf.split_to(len).freeze()))
    }

    /// Bytes received but not yet a whole packet.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }
}

/// A cursor over one packet.
struct Reader {
    buf: Bytes,
}

impl Reader {
    fn u8(&mut self) -> Result<u8, WireError> {
        if self.buf.remaining() < 1 {
            return Err(WireError::Truncated);
        }
        Ok(self.buf.get_u8())
    }
    fn u32(&mut self) -> Result<u32, WireError> {
        if self.buf.remaining() < 4 {
            return Err(WireError::Truncated);
        }
        Ok(self.buf.get_u32())
    }
    fn u64(&mut self) -> Result<u64, WireError> {
        if self.buf.remaining() < 8 {
            return Err(WireError::Truncated);
        }
        Ok(self.buf.get_u64())
    }
    fn string(&mut self) -> Result<Bytes, WireError> {
        let len = self.u32()? as usize;
        if self.buf.remaining() < len {
            return Err(WireError::Truncated);
        }
        Ok(self.buf.split_to(len))
    }
    fn rest(self) -> Bytes {
        self.buf
    }
}

/// An `SSH_FXP_EXTENDED` request the relay knows. Others are answered
/// "unsupported" without reaching a target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Extension {
    /// `posix-rename@openssh.com` (old, new): rename, replacing `new`.
    PosixRename,
    /// `statvfs@openssh.com` (path).
    Statvfs,
    /// `fstatvfs@openssh.com` (handle).
    Fstatvfs,
    /// `hardlink@openssh.com` (old, new).
    Hardlink,
    /// `fsync@openssh.com` (handle).
    Fsync,
    /// `lsetstat@openssh.com` (path, attrs).
    Lsetstat,
    /// `limits@openssh.com` ().
    Limits,
    /// `expand-path@openssh.com` (path).
    ExpandPath,
}

impl Extension {
    pub const ALL: [Extension; 8] = [
        Extension::PosixRename,
        Extension::Statvfs,
        Extension::Fstatvfs,
        Extension::Hardlink,
        Extension::Fsync,
        Extension::Lsetstat,
        Extension::Limits,
        Extension::ExpandPath,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Extension::PosixRename => "posix-rename@openssh.com",
            Extension::Statvfs => "statvfs@openssh.com",
            Extension::Fstatvfs => "fstatvfs@openssh.com",
            Extension::Hardlink => "hardlink@openssh.com",
            Extension::Fsync => "fsync@openssh.com",
            Extension::Lsetstat => "lsetstat@openssh.com",
            Extension::Limits => "limits@openssh.com",
            Extension::ExpandPath => "expand-path@openssh.com",
        }
    }

    pub fn from_name(name: &[u8]) -> Option<Extension> {
        Extension::ALL
            .into_iter()
            .find(|e| e.name().as_bytes() == name)
    }
}

/// What a request does, as far as checking and rewriting go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Open,
    Close,
    Read,
    Write,
    Lstat,
    Fstat,
    Setstat,
    Fsetstat,
    Opendir,
    Readdir,
    Remove,
    Mkdir,
    Rmdir,
    Realpath,
    Stat,
    Rename,
    Readlink,
    /// OpenSSH order: (link target, link path).
    Symlink,
    Extended(Extension),
    /// An extended request the relay does not pass on; the name is kept for
    /// the log line.
    UnknownExtended,
}

/// The kinds of the leading string fields of a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fields {
    None,
    Handle,
    Path,
    TwoPaths,
}

impl Op {
    pub fn fields(self) -> Fields {
        use Extension as E;
        match self {
            Op::Close | Op::Read | Op::Write | Op::Fstat | Op::Fsetstat | Op::Readdir => {
                Fields::Handle
            }
            Op::Extended(E::Fstatvfs | E::Fsync) => Fields::Handle,
            Op::Open
            | Op::Lstat
            | Op::Setstat
            | Op::Opendir
            | Op::Remove
            | Op::Mkdir
            | Op::Rmdir
            | Op::Realpath
            | Op::Stat
            | Op::Readlink
            | Op::Extended(E::Statvfs | E::Lsetstat | E::ExpandPath) => Fields::Path,
            Op::Rename | Op::Symlink | Op::Extended(E::PosixRename | E::Hardlink) => {
                Fields::TwoPaths
            }
            Op::Extended(E::Limits) | Op::UnknownExtended => Fields::None,
        }
    }

    fn code(self) -> u8 {
        match self {
            Op::Open => kind::OPEN,
            Op::Close => kind::CLOSE,
            Op::Read => kind::READ,
            Op::Write => kind::WRITE,
            Op::Lstat => kind::LSTAT,
            Op::Fstat => kind::FSTAT,
            Op::Setstat => kind::SETSTAT,
            Op::Fsetstat => kind::FSETSTAT,
            Op::Opendir => kind::OPENDIR,
            Op::Readdir => kind::READDIR,
            Op::Remove => kind::REMOVE,
            Op::Mkdir => kind::MKDIR,
            Op::Rmdir => kind::RMDIR,
            Op::Realpath => kind::REALPATH,
            Op::Stat => kind::STAT,
            Op::Rename => kind::RENAME,
            Op::Readlink => kind::READLINK,
            Op::Symlink => kind::SYMLINK,
            Op::Extended(_) | Op::UnknownExtended => kind::EXTENDED,
        }
    }
}

/// A parsed request: its leading path/handle fields, and the rest of the
/// body untouched (offsets, flags, attributes, data).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub id: u32,
    pub op: Op,
    /// The handle, or the path(s), in wire order.
    pub fields: Vec<Bytes>,
    pub tail: Bytes,
}

/// The first packet of a session, `SSH_FXP_INIT`, or a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientPacket {
    Init { version: u32 },
    Request(Request),
}

/// Parses one packet from the client.
pub fn parse_client(packet: Bytes) -> Result<ClientPacket, WireError> {
    let mut r = Reader { buf: packet };
    let code = r.u8()?;
    if code == kind::INIT {
        return Ok(ClientPacket::Init { version: r.u32()? });
    }
    let op = match code {
        kind::OPEN => Op::Open,
        kind::CLOSE => Op::Close,
        kind::READ => Op::Read,
        kind::WRITE => Op::Write,
        kind::LSTAT => Op::Lstat,
        kind::FSTAT => Op::Fstat,
        kind::SETSTAT => Op::Setstat,
        kind::FSETSTAT => Op::Fsetstat,
        kind::OPENDIR => Op::Opendir,
        kind::READDIR => Op::Readdir,
        kind::REMOVE => Op::Remove,
        kind::MKDIR => Op::Mkdir,
        kind::RMDIR => Op::Rmdir,
        kind::REALPATH => Op::Realpath,
        kind::STAT => Op::Stat,
        kind::RENAME => Op::Rename,
        kind::READLINK => Op::Readlink,
        kind::SYMLINK => Op::Symlink,
        kind::EXTENDED => Op::UnknownExtended,
        other => return Err(WireError::UnknownType(other)),
    };
    let id = r.u32()?;
    let op = if op == Op::UnknownExtended {
        let name = r.string()?;
        Extension::from_name(&name).map_or(Op::UnknownExtended, Op::Extended)
    } else {
        op
    };
    let count = match op.fields() {
        Fields::None => 0,
        Fields::Handle | Fields::Path => 1,
        Fields::TwoPaths => 2,
    };
    let mut fields = Vec::with_capacity(count);
    for _ in 0..count {
        fields.push(r.string()?);
    }
    let tail = r.rest();
    let request = Request {
        id,
        op,
        fields,
        tail,
    };
    // Check now that the tail holds what the relay will read from it.
    match op {
        Op::Open => {
            request.open_flags()?;
        }
        Op::Read => {
            request.read_args()?;
        }
        Op::Write => {
            request.write_args()?;
        }
        _ => {}
    }
    Ok(ClientPacket::Request(request))
}

impl Request {
    /// `pflags` of an OPEN.
    pub fn open_flags(&self) -> Result<u32, WireError> {
        Reader {
            buf: self.tail.clone(),
        }
        .u32()
    }

    /// (offset, length) of a READ.
    pub fn read_args(&self) -> Result<(u64, u32), WireError> {
        let mut r = Reader {
            buf: self.tail.clone(),
        };
        Ok((r.u64()?, r.u32()?))
    }

    /// (offset, data) of a WRITE.
    pub fn write_args(&self) -> Result<(u64, Bytes), WireError> {
        let mut r = Reader {
            buf: self.tail.clone(),
        };
        Ok((r.u64()?, r.string()?))
    }

    /// Appends the request, length-prefixed, to `out`.
    pub fn encode(&self, out: &mut BytesMut) {
        let mut body = 1 + 4 + self.tail.len();
        if let Op::Extended(e) = self.op {
            body += 4 + e.name().len();
        }
        body += self.fields.iter().map(|f| 4 + f.len()).sum::<usize>();
        out.reserve(4 + body);
        out.put_u32(body as u32);
        out.put_u8(self.op.code());
        out.put_u32(self.id);
        if let Op::Extended(e) = self.op {
            put_string(out, e.name().as_bytes());
        }
        for f in &self.fields {
            put_string(out, f);
        }
        out.extend_from_slice(&self.tail);
    }
}

/// A packet from a target, split into type, request id and body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServerPacket {
    Version {
        version: u32,
        extensions: Vec<(Bytes, Bytes)>,
    },
    Reply {
        code: u8,
        id: u32,
        body: Bytes,
    },
}

/// Parses one packet from a target.
pub fn parse_server(packet: Bytes) -> Result<ServerPacket, WireError> {
    let mut r = Reader { buf: packet };
    let code = r.u8()?;
    if code == kind::VERSION {
        let version = r.u32()?;
        let mut extensions = Vec::new();
        while r.buf.has_remaining() {
            let name = r.string()?;
            let data = r.string()?;
            extensions.push((name, data));
        }
        return Ok(ServerPacket::Version {
            version,
            extensions,
        });
    }
    match code {
        kind::STATUS
        | kind::HANDLE
        | kind::DATA
        | kind::NAME
        | kind::ATTRS
        | kind::EXTENDED_REPLY => {}
        other => return Err(WireError::UnknownType(other)),
    }
    let id = r.u32()?;
    Ok(ServerPacket::Reply {
        code,
        id,
        body: r.rest(),
    })
}

/// The first string of a body: the handle of HANDLE, the data of DATA.
pub fn first_string(body: &Bytes) -> Result<Bytes, WireError> {
    Reader { buf: body.clone() }.string()
}

/// (code, message) of a STATUS body. The message is optional in version 3.
pub fn status_of(body: &Bytes) -> Result<(u32, String), WireError> {
    let mut r = Reader { buf: body.clone() };
    let code = r.u32()?;
    let message = r
        .string()
        .map(|m| String::from_utf8_lossy(&m).into_owned())
        .unwrap_or_default();
    Ok((code, message))
}

/// The first name of a NAME body (what REALPATH answers) and the bytes after
/// it (longname and attributes, and any further names).
pub fn first_name(body: &Bytes) -> Result<(u32, Bytes, Bytes), WireError> {
    let mut r = Reader { buf: body.clone() };
    let count = r.u32()?;
    if count == 0 {
        return Err(WireError::Truncated);
    }
    let name = r.string()?;
    Ok((count, name, r.rest()))
}

/// File attributes, as far as the relay makes them up itself.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Attrs {
    pub size: Option<u64>,
    pub permissions: Option<u32>,
    pub times: Option<(u32, u32)>,
}

impl Attrs {
    /// A directory, `dr-xr-xr-x` (the virtual tree cannot be written).
    pub fn directory() -> Attrs {
        Attrs {
            size: Some(0),
            permissions: Some(0o040_555),
            times: None,
        }
    }

    fn encode(&self, out: &mut BytesMut) {
        let mut flags = 0;
        if self.size.is_some() {
            flags |= attr_flags::SIZE;
        }
        if self.permissions.is_some() {
            flags |= attr_flags::PERMISSIONS;
        }
        if self.times.is_some() {
            flags |= attr_flags::ACMODTIME;
        }
        out.put_u32(flags);
        if let Some(s) = self.size {
            out.put_u64(s);
        }
        if let Some(p) = self.permissions {
            out.put_u32(p);
        }
        if let Some((a, m)) = self.times {
            out.put_u32(a);
            out.put_u32(m);
        }
    }
}

fn put_string(out: &mut BytesMut, s: &[u8]) {
    out.put_u32(s.len() as u32);
    out.extend_from_slice(s);
}

/// Writes one packet: length, then whatever `body` puts.
fn packet(out: &mut BytesMut, body: impl FnOnce(&mut BytesMut)) {
    let start = out.len();
    out.put_u32(0);
    body(out);
    let len = (out.len() - start - 4) as u32;
    out[start..start + 4].copy_from_slice(&len.to_be_bytes());
}

pub fn encode_init(out: &mut BytesMut, version: u32) {
    packet(out, |o| {
        o.put_u8(kind::INIT);
        o.put_u32(version);
    });
}

pub fn encode_version(out: &mut BytesMut, version: u32, extensions: &[(&[u8], &[u8])]) {
    packet(out, |o| {
        o.put_u8(kind::VERSION);
        o.put_u32(version);
        for (name, data) in extensions {
            put_string(o, name);
            put_string(o, data);
        }
    });
}

pub fn encode_status(out: &mut BytesMut, id: u32, code: u32, message: &str) {
    packet(out, |o| {
        o.put_u8(kind::STATUS);
        o.put_u32(id);
        o.put_u32(code);
        put_string(o, message.as_bytes());
        put_string(o, b"en");
    });
}

pub fn encode_handle(out: &mut BytesMut, id: u32, handle: &[u8]) {
    packet(out, |o| {
        o.put_u8(kind::HANDLE);
        o.put_u32(id);
        put_string(o, handle);
    });
}

/// A NAME reply: (filename, longname, attributes) per entry.
pub fn encode_name(out: &mut BytesMut, id: u32, entries: &[(&str, &str, Attrs)]) {
    packet(out, |o| {
        o.put_u8(kind::NAME);
        o.put_u32(id);
        o.put_u32(entries.len() as u32);
        for (name, long, attrs) in entries {
            put_string(o, name.as_bytes());
            put_string(o, long.as_bytes());
            attrs.encode(o);
        }
    });
}

/// A NAME reply whose first filename is replaced; `rest` follows it as the
/// target sent it.
pub fn encode_name_renamed(out: &mut BytesMut, id: u32, count: u32, name: &[u8], rest: &[u8]) {
    packet(out, |o| {
        o.put_u8(kind::NAME);
        o.put_u32(id);
        o.put_u32(count);
        put_string(o, name);
        o.extend_from_slice(rest);
    });
}

/// A HANDLE reply whose handle is replaced, or any reply passed on as is.
pub fn encode_reply(out: &mut BytesMut, code: u8, id: u32, body: &[u8]) {
    out.reserve(9 + body.len());
    out.put_u32((5 + body.len()) as u32);
    out.put_u8(code);
    out.put_u32(id);
    out.extend_from_slice(body);
}

pub fn encode_attrs(out: &mut BytesMut, id: u32, attrs: Attrs) {
    packet(out, |o| {
        o.put_u8(kind::ATTRS);
        o.put_u32(id);
        attrs.encode(o);
    });
}

/// The `limits@openssh.com` reply: max packet, read, write, open handles.
pub fn encode_limits(
    out: &mut BytesMut,
    id: u32,
    packet_len: u64,
    read: u64,
    write: u64,
    handles: u64,
) {
    packet(out, |o| {
        o.put_u8(kind::EXTENDED_REPLY);
        o.put_u32(id);
        o.put_u64(packet_len);
        o.put_u64(read);
        o.put_u64(write);
        o.put_u64(handles);
    });
}

#[cfg(test)]
mod tests;
