//! What both directions of RESP share: the framing error, CRLF-ended
//! lines and the integers in them, and the bytes the proxy writes itself.
//!
//! Everything here is total: any byte sequence yields a value or a
//! [`RespError`], never a panic.

use bytes::{BufMut, Bytes, BytesMut};

/// Redis' own `proto-max-bulk-len`: no bulk string either way is longer.
pub const MAX_BULK: usize = 512 << 20;
/// The longest line holding only a type byte and an integer
/// (`-9223372036854775808` is 20 digits).
pub const MAX_HEADER: usize = 24;

/// Why bytes are not RESP. The stream cannot be resynchronised after one:
/// the connection ends.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RespError {
    #[error("a {0} line of over {1} bytes")]
    LongLine(&'static str, usize),
    #[error("expected '$', got {0:?}")]
    NotBulk(char),
    #[error("a bad length or integer {0:?}")]
    BadNumber(String),
    #[error("a bulk string of {0} bytes, over the 512 MiB limit")]
    BulkTooLong(i64),
    #[error("a bulk string not ended by CRLF")]
    NoCrlf,
    #[error("unbalanced quotes in an inline command")]
    Quotes,
    #[error("unknown reply type {0:?}")]
    UnknownType(char),
    #[error("replies nested over {0} deep")]
    TooDeep(usize),
    #[error("a bad {0:?} value")]
    BadValue(char),
}

/// Where the first CRLF of `buf` is: `Ok(None)` while it may still come,
/// an error once more than `max` bytes came without one.
pub fn line_end(buf: &[u8], max: usize, what: &'static str) -> Result<Option<usize>, RespError> {
    let window = buf.get(..max + 2).unwrap_or(buf);
    match window.windows(2).position(|w| w == b"\r\n") {
        Some(at) => Ok(Some(at)),
        None if buf.len() >= max + 2 => Err(RespError::LongLine(what, max)),
        None => Ok(None),
    }
}

/// A RESP integer: an optional minus and decimal digits, without a plus
/// sign, spaces or leading zeros (what Redis' `string2ll` accepts). Strict,
/// so that the server never reads a length the proxy read otherwise.
pub fn integer(text: &[u8]) -> Result<i64, RespError> {
    let digits = text.strip_prefix(b"-").unwrap_or(text);
    let canonical = match digits.first() {
        Some(b'0') => digits.len() == 1,
        Some(_) => digits.iter().all(u8::is_ascii_digit),
        None => false,
    };
    std::str::from_utf8(text)
        .ok()
        .filter(|_| canonical)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| {
            let shown = text.get(..MAX_HEADER).unwrap_or(text);
            RespError::BadNumber(String::from_utf8_lossy(shown).into_owned())
        })
}

/// A bulk string's length from its header's integer: -1 (null) or
/// 0..=[`MAX_BULK`].
pub fn bulk_len(text: &[u8]) -> Result<Option<usize>, RespError> {
    let n = integer(text)?;
    if n == -1 {
        return Ok(None);
    }
    match usize::try_from(n) {
        Ok(len) if len <= MAX_BULK => Ok(Some(len)),
        Ok(_) => Err(RespError::BulkTooLong(n)),
        Err(_) => Err(RespError::BadNumber(n.to_string())),
    }
}

/// An error reply; `text` starts with its code (`ERR`, `NOAUTH`). Line
/// breaks would end the reply early, so they become spaces.
pub fn error(text: &str) -> Bytes {
    line(b'-', text)
}

/// A status reply such as `+OK`.
pub fn status(text: &str) -> Bytes {
    line(b'+', text)
}

fn line(kind: u8, text: &str) -> Bytes {
    let mut out = BytesMut::with_capacity(text.len() + 3);
    out.put_u8(kind);
    out.extend(text.bytes().map(|b| match b {
        b'\r' | b'\n' => b' ',
        b => b,
    }));
    out.put_slice(b"\r\n");
    out.freeze()
}

/// The header of a command of `n` arguments: `*n\r\n`.
pub fn array_header(n: usize) -> Vec<u8> {
    format!("*{n}\r\n").into_bytes()
}

/// The header of a bulk string of `len` bytes: `$len\r\n`.
pub fn bulk_header(len: usize) -> Vec<u8> {
    format!("${len}\r\n").into_bytes()
}

/// A whole command as an array of bulk strings, into `out` (which may be
/// a zeroised buffer when an argument is a secret).
pub fn command_into(args: &[&[u8]], out: &mut Vec<u8>) {
    out.extend_from_slice(&array_header(args.len()));
    for arg in args {
        out.extend_from_slice(&bulk_header(arg.len()));
        out.extend_from_slice(arg);
        out.extend_from_slice(b"\r\n");
    }
}
