//! The client's side of RESP: commands as arrays of bulk strings (what
//! redis-cli and every client library send) or inline, a line of words as
//! a person types them into telnet. Each command is read whole, up to
//! [`MAX_COMMAND`] bytes or [`MAX_ARGS`] arguments; a longer one is
//! skipped unread (never buffered, never forwarded) and reported as
//! [`Request::TooLong`] once its last byte went by.

use bytes::{Buf, Bytes, BytesMut};

use super::resp::{MAX_HEADER, RespError, bulk_len, integer, line_end};

/// The longest command the proxy reads and checks, in bytes on the wire.
pub const MAX_COMMAND: usize = 16 << 20;
/// The most arguments of a command read whole (the memory of each counts
/// too, not only its bytes).
pub const MAX_ARGS: usize = 1 << 20;
/// The first arguments of an over-long command kept for its log line.
pub const HEAD_ARGS: usize = 4;
/// Redis' own limit on an inline command (`PROTO_INLINE_MAX_SIZE`).
pub const MAX_INLINE: usize = 64 << 10;

/// One command from the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    /// A command read whole: its name, then its arguments. Never empty.
    Command(Vec<Bytes>),
    /// A command over the limits, skipped: its first arguments (up to
    /// [`HEAD_ARGS`], those read before the limit), and its length on the
    /// wire.
    TooLong { head: Vec<Bytes>, len: usize },
}

/// Where the decoder is between two calls.
enum State {
    /// Between commands.
    Idle,
    /// Inside an array: arguments still to come, those read, bytes so far.
    Args {
        left: usize,
        args: Vec<Bytes>,
        size: usize,
    },
    /// Inside an array over the limits: arguments still to come (the one
    /// under way included), body bytes of the current one to skip and
    /// whether its CRLF is still due, the first arguments, bytes so far.
    Skip {
        left: usize,
        body: usize,
        crlf: bool,
        head: Vec<Bytes>,
        size: usize,
    },
}

/// Splits the client's byte stream into [`Request`]s. Bytes go in with
/// [`Requests::push`] as they arrive, in any split.
pub struct Requests {
    buf: BytesMut,
    state: State,
}

impl Default for Requests {
    fn default() -> Self {
        Requests::new()
    }
}

impl Requests {
    pub fn new() -> Requests {
        Requests {
            buf: BytesMut::new(),
            state: State::Idle,
        }
    }

    pub fn push(&mut self, data: &[u8]) {
        self.buf.extend_from_slice(data);
    }

    /// The next command, if all of it has arrived. An error means the
    /// stream cannot be resynchronised: the caller ends the connection.
    pub fn next_request(&mut self) -> Result<Option<Request>, RespError> {
        loop {
            let step = match &mut self.state {
                State::Idle => self.idle()?,
                State::Args { .. } => self.arg()?,
                State::Skip { .. } => self.skip()?,
            };
            match step {
                Step::More => return Ok(None),
                Step::Again => {}
                Step::Done(request) => return Ok(Some(request)),
            }
        }
    }

    fn idle(&mut self) -> Result<Step, RespError> {
        let Some(&first) = self.buf.first() else {
            return Ok(Step::More);
        };
        if first != b'*' {
            return self.inline();
        }
        let Some(end) = line_end(&self.buf, MAX_HEADER, "array header")? else {
            return Ok(Step::More);
        };
        let count = integer(self.buf.get(1..end).unwrap_or_default())?;
        self.buf.advance(end + 2);
        // Redis ignores an empty or null array: no reply would come.
        let Ok(left @ 1..) = usize::try_from(count) else {
            return Ok(Step::Again);
        };
        self.state = State::Args {
            left,
            args: Vec::with_capacity(left.min(64)),
            size: end + 2,
        };
        Ok(Step::Again)
    }

    fn arg(&mut self) -> Result<Step, RespError> {
        let State::Args { left, args, size } = &mut self.state else {
            return Ok(Step::Again);
        };
        if *left == 0 {
            let args = std::mem::take(args);
            self.state = State::Idle;
            return Ok(Step::Done(Request::Command(args)));
        }
        let Some((end, len)) = bulk_header(&self.buf)? else {
            return Ok(Step::More);
        };
        let whole = end + 2 + len + 2;
        if *size + whole > MAX_COMMAND || args.len() >= MAX_ARGS {
            // Over the limit: what was read goes, the rest is skipped.
            let mut head = std::mem::take(args);
            head.truncate(HEAD_ARGS);
            self.buf.advance(end + 2);
            self.state = State::Skip {
                left: *left,
                body: len,
                crlf: true,
                head,
                size: *size + end + 2,
            };
            return Ok(Step::Again);
        }
        if self.buf.len() < whole {
            self.buf.reserve(whole - self.buf.len());
            return Ok(Step::More);
        }
        if self.buf.get(whole - 2..whole) != Some(b"\r\n") {
            return Err(RespError::NoCrlf);
        }
        self.buf.advance(end + 2);
        args.push(self.buf.split_to(len).freeze());
        self.buf.advance(2);
        *left -= 1;
        *size += whole;
        Ok(Step::Again)
    }

    fn skip(&mut self) -> Result<Step, RespError> {
        let State::Skip {
            left,
            body,
            crlf,
            head,
            size,
        } = &mut self.state
        else {
            return Ok(Step::Again);
        };
        if *body > 0 {
            let n = (*body).min(self.buf.len());
            if n == 0 {
                return Ok(Step::More);
            }
            self.buf.advance(n);
            *body -= n;
            *size += n;
            return Ok(Step::Again);
        }
        if *crlf {
            match self.buf.get(..2) {
                None => return Ok(Step::More),
                Some(b"\r\n") => {}
                Some(_) => return Err(RespError::NoCrlf),
            }
            self.buf.advance(2);
            *size += 2;
            *crlf = false;
            *left -= 1;
            return Ok(Step::Again);
        }
        if *left == 0 {
            let request = Request::TooLong {
                head: std::mem::take(head),
                len: *size,
            };
            self.state = State::Idle;
            return Ok(Step::Done(request));
        }
        let Some((end, len)) = bulk_header(&self.buf)? else {
            return Ok(Step::More);
        };
        self.buf.advance(end + 2);
        *size += end + 2;
        *body = len;
        *crlf = true;
        Ok(Step::Again)
    }

    /// An inline command: one line, split into words as redis-cli and the
    /// server split them. An empty line is skipped, as the server does.
    fn inline(&mut self) -> Result<Step, RespError> {
        let window = self.buf.get(..=MAX_INLINE).unwrap_or(&self.buf);
        let Some(newline) = window.iter().position(|&b| b == b'\n') else {
            if self.buf.len() > MAX_INLINE {
                return Err(RespError::LongLine("inline command", MAX_INLINE));
            }
            return Ok(Step::More);
        };
        let line = self.buf.split_to(newline + 1);
        let line = line.strip_suffix(b"\n").unwrap_or(&line);
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let args = split_args(line)?;
        if args.is_empty() {
            return Ok(Step::Again);
        }
        Ok(Step::Done(Request::Command(args)))
    }
}

/// What one step of the decoder came to.
enum Step {
    More,
    Again,
    Done(Request),
}

/// A bulk string's header at the start of `buf`: the position of its CRLF
/// and the length it announces. A null bulk string is no argument.
fn bulk_header(buf: &[u8]) -> Result<Option<(usize, usize)>, RespError> {
    let Some(&first) = buf.first() else {
        return Ok(None);
    };
    if first != b'$' {
        return Err(RespError::NotBulk(char::from(first)));
    }
    let Some(end) = line_end(buf, MAX_HEADER, "bulk header")? else {
        return Ok(None);
    };
    let text = buf.get(1..end).unwrap_or_default();
    match bulk_len(text)? {
        Some(len) => Ok(Some((end, len))),
        None => Err(RespError::BadNumber("-1".into())),
    }
}

/// Splits a line into words as Redis' `sdssplitargs` does (the server's
/// reading of inline commands, and redis-cli's of what a person types):
/// words apart by white space; `"..."` with `\n \r \t \b \a \xHH` and
/// `\<char>` escapes; `'...'` with only `\'`; a closing quote must end the
/// word. It reads a C string: a NUL byte ends the line.
pub fn split_args(line: &[u8]) -> Result<Vec<Bytes>, RespError> {
    let mut args = Vec::new();
    let mut rest = line.split(|&b| b == 0).next().unwrap_or_default();
    loop {
        while let [c, after @ ..] = rest
            && is_space(*c)
        {
            rest = after;
        }
        if rest.is_empty() {
            return Ok(args);
        }
        let (word, after) = split_word(rest)?;
        args.push(Bytes::from(word));
        rest = after;
    }
}

/// One word from the start of `s` (not white space) and what follows it.
fn split_word(mut s: &[u8]) -> Result<(Vec<u8>, &[u8]), RespError> {
    let mut word = Vec::new();
    loop {
        match s {
            [] => return Ok((word, s)),
            // Fewer than `isspace`: a vertical tab or form feed is kept.
            [b' ' | b'\n' | b'\r' | b'\t', ..] => return Ok((word, s)),
            // A closing quote ends the word.
            [b'"', rest @ ..] => {
                let after = double_quoted(rest, &mut word)?;
                return Ok((word, after));
            }
            [b'\'', rest @ ..] => {
                let after = single_quoted(rest, &mut word)?;
                return Ok((word, after));
            }
            [c, rest @ ..] => {
                word.push(*c);
                s = rest;
            }
        }
    }
}

/// The inside of `"..."` into `word`; returns what follows the closing
/// quote, which must be white space or the end.
fn double_quoted<'a>(mut s: &'a [u8], word: &mut Vec<u8>) -> Result<&'a [u8], RespError> {
    loop {
        match s {
            [] => return Err(RespError::Quotes),
            [b'\\', b'x', h, l, rest @ ..] if h.is_ascii_hexdigit() && l.is_ascii_hexdigit() => {
                word.push(hex(*h) << 4 | hex(*l));
                s = rest;
            }
            [b'\\', c, rest @ ..] => {
                word.push(match c {
                    b'n' => b'\n',
                    b'r' => b'\r',
                    b't' => b'\t',
                    b'b' => 0x08,
                    b'a' => 0x07,
                    c => *c,
                });
                s = rest;
            }
            [b'"', rest @ ..] => return closed(rest),
            [c, rest @ ..] => {
                word.push(*c);
                s = rest;
            }
        }
    }
}

fn single_quoted<'a>(mut s: &'a [u8], word: &mut Vec<u8>) -> Result<&'a [u8], RespError> {
    loop {
        match s {
            [] => return Err(RespError::Quotes),
            [b'\\', b'\'', rest @ ..] => {
                word.push(b'\'');
                s = rest;
            }
            [b'\'', rest @ ..] => return closed(rest),
            [c, rest @ ..] => {
                word.push(*c);
                s = rest;
            }
        }
    }
}

fn closed(rest: &[u8]) -> Result<&[u8], RespError> {
    match rest.first() {
        None => Ok(rest),
        Some(c) if is_space(*c) => Ok(rest),
        Some(_) => Err(RespError::Quotes),
    }
}

/// C's `isspace`.
fn is_space(c: u8) -> bool {
    matches!(c, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r')
}

fn hex(c: u8) -> u8 {
    match c {
        b'0'..=b'9' => c - b'0',
        b'a'..=b'f' => c - b'a' + 10,
        b'A'..=b'F' => c - b'A' + 10,
        _ => 0,
    }
}
