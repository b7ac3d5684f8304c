//! The server's side of RESP: replies of every RESP2 type (`+ - : $ *`,
//! nested, null bulk and null array) and of RESP3 (`_ , # ! = ( % ~ > |`)
//! for a client that asked for it with `HELLO 3`. Replies are never held
//! whole: [`Replies`] hands out each top-level reply as [`Piece`]s to
//! forward as they come (bulk strings in pieces of at most [`CHUNK`]
//! bytes), and at its end a short [`Answer`] for the log. Only lines are
//! held whole, up to [`MAX_LINE`] bytes.

use std::collections::VecDeque;

use bytes::{Bytes, BytesMut};

use super::resp::{MAX_HEADER, RespError, bulk_len, integer, line_end};

/// A bulk string is forwarded in pieces of at most this size.
pub const CHUNK: usize = 64 << 10;
/// The longest status, error, double or big number line.
pub const MAX_LINE: usize = 1 << 20;
/// The deepest nesting of aggregates (Lua's own limit is lower).
pub const MAX_DEPTH: usize = 1024;
/// How much of a top-level bulk string or blob error is kept for the log.
pub const PREVIEW: usize = 1024;

/// A top-level reply as the log sums it up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    Status(String),
    /// A simple or blob error: its code and message.
    Error(String),
    Integer(i64),
    /// A bulk or verbatim string: its first [`PREVIEW`] bytes and length.
    Bulk {
        head: Bytes,
        len: usize,
    },
    /// A null bulk string, null array or RESP3 null.
    Null,
    Double(String),
    Boolean(bool),
    BigNumber(String),
    Many {
        kind: Many,
        len: usize,
    },
}

/// The kinds of aggregate a reply may be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Many {
    Array,
    Map,
    Set,
    /// Out of band: a RESP3 push answers no command.
    Push,
}

/// One step of the server's byte stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Piece {
    /// A top-level reply begins; `push` when it is a RESP3 push.
    Start { push: bool },
    /// Bytes of the reply under way, to forward as they are.
    Data(Bytes),
    /// The top-level reply under way is over.
    End(Answer),
}

/// An aggregate under way: elements still to come, and whether it is an
/// attribute (which comes before the value it describes and is no element
/// of its own).
struct Open {
    left: u64,
    attribute: bool,
}

/// A bulk string, verbatim string or blob error under way.
struct Blob {
    kind: u8,
    len: usize,
    left: usize,
    /// Whether it is the top-level reply itself (its head is kept).
    top: bool,
}

/// Splits the server's byte stream into [`Piece`]s. Bytes go in with
/// [`Replies::push`] as they arrive, in any split.
#[derive(Default)]
pub struct Replies {
    buf: BytesMut,
    stack: Vec<Open>,
    blob: Option<Blob>,
    /// The answer of the top-level aggregate under way.
    top: Option<Answer>,
    preview: Vec<u8>,
    started: bool,
    out: VecDeque<Piece>,
}

impl Replies {
    pub fn new() -> Replies {
        Replies::default()
    }

    pub fn push(&mut self, data: &[u8]) {
        self.buf.extend_from_slice(data);
    }

    /// Whether the pieces given so far end between two top-level replies.
    pub fn at_boundary(&self) -> bool {
        !self.started && self.out.is_empty()
    }

    /// The next piece, if enough bytes have arrived. An error means the
    /// stream cannot be resynchronised: the caller ends the connection.
    pub fn next_piece(&mut self) -> Result<Option<Piece>, RespError> {
        loop {
            if let Some(piece) = self.out.pop_front() {
                return Ok(Some(piece));
            }
            let progressed = if self.blob.is_some() {
                self.blob_step()?
            } else {
                self.line_step()?
            };
            if !progressed {
                return Ok(None);
            }
        }
    }

    /// One line: a simple value, or the header of a blob or aggregate.
    /// False when more bytes are needed.
    fn line_step(&mut self) -> Result<bool, RespError> {
        let Some(&kind) = self.buf.first() else {
            return Ok(false);
        };
        let max = match kind {
            b'+' | b'-' | b',' | b'(' => MAX_LINE,
            b':' | b'_' | b'#' | b'$' | b'=' | b'!' | b'*' | b'%' | b'~' | b'>' | b'|' => {
                MAX_HEADER
            }
            _ => return Err(RespError::UnknownType(char::from(kind))),
        };
        let Some(end) = line_end(&self.buf, max, "reply")? else {
            return Ok(false);
        };
        let text = self.buf.get(1..end).unwrap_or_default();
        let parsed = parse_line(kind, text)?;
        if !self.started {
            self.started = true;
            self.out.push_back(Piece::Start { push: kind == b'>' });
        }
        let line = self.buf.split_to(end + 2).freeze();
        self.out.push_back(Piece::Data(line));
        let top = self.stack.is_empty();
        match parsed {
            Line::Value(answer) => self.complete(top.then_some(answer)),
            Line::Blob(len) => {
                self.blob = Some(Blob {
                    kind,
                    len,
                    left: len,
                    top,
                });
            }
            Line::Many { count, attribute } => self.open(kind, count, attribute, top)?,
        }
        Ok(true)
    }

    fn open(&mut self, kind: u8, count: u64, attribute: bool, top: bool) -> Result<(), RespError> {
        let (many, pairs) = match kind {
            b'%' => (Many::Map, true),
            b'~' => (Many::Set, false),
            b'>' => (Many::Push, false),
            b'|' => (Many::Map, true),
            _ => (Many::Array, false),
        };
        let len = usize::try_from(count).unwrap_or(usize::MAX);
        let answer = Answer::Many { kind: many, len };
        let left = if pairs {
            count
                .checked_mul(2)
                .ok_or(RespError::BadValue(char::from(kind)))?
        } else {
            count
        };
        if left == 0 {
            // An empty attribute describes the value after it: no value.
            if !attribute {
                self.complete(top.then_some(answer));
            }
            return Ok(());
        }
        if self.stack.len() >= MAX_DEPTH {
            return Err(RespError::TooDeep(MAX_DEPTH));
        }
        if top && !attribute {
            self.top = Some(answer);
        }
        self.stack.push(Open { left, attribute });
        Ok(())
    }

    /// Forwards the body of the blob under way, then checks its CRLF.
    fn blob_step(&mut self) -> Result<bool, RespError> {
        let Some(blob) = self.blob.as_mut() else {
            return Ok(false);
        };
        if blob.left > 0 {
            let n = blob.left.min(self.buf.len()).min(CHUNK);
            if n == 0 {
                return Ok(false);
            }
            let data = self.buf.split_to(n).freeze();
            if blob.top {
                let room = PREVIEW.saturating_sub(self.preview.len());
                self.preview
                    .extend_from_slice(data.get(..room.min(n)).unwrap_or_default());
            }
            blob.left -= n;
            self.out.push_back(Piece::Data(data));
            return Ok(true);
        }
        match self.buf.get(..2) {
            None => return Ok(false),
            Some(b"\r\n") => {}
            Some(_) => return Err(RespError::NoCrlf),
        }
        self.out
            .push_back(Piece::Data(self.buf.split_to(2).freeze()));
        let (kind, len, top) = (blob.kind, blob.len, blob.top);
        self.blob = None;
        let head = Bytes::from(std::mem::take(&mut self.preview));
        let answer = match kind {
            b'!' => Answer::Error(String::from_utf8_lossy(&head).into_owned()),
            // A verbatim string starts with its format: `txt:`, `mkd:`.
            b'=' => Answer::Bulk {
                head: head.slice(head.len().min(4)..),
                len: len.saturating_sub(4),
            },
            _ => Answer::Bulk { head, len },
        };
        self.complete(top.then_some(answer));
        Ok(true)
    }

    /// A value is complete; `top` is its answer when it is the top-level
    /// reply. Completes the aggregates it was the last element of.
    fn complete(&mut self, mut top: Option<Answer>) {
        loop {
            let Some(open) = self.stack.last_mut() else {
                let answer = top.or_else(|| self.top.take()).unwrap_or(Answer::Null);
                self.out.push_back(Piece::End(answer));
                self.started = false;
                return;
            };
            open.left -= 1;
            if open.left > 0 {
                return;
            }
            let attribute = open.attribute;
            self.stack.pop();
            if attribute {
                return;
            }
            top = None;
        }
    }
}

/// What one line holds.
enum Line {
    Value(Answer),
    /// A blob's header: its length.
    Blob(usize),
    Many {
        count: u64,
        attribute: bool,
    },
}

/// Reads a line of type `kind` (its text without the type and CRLF).
fn parse_line(kind: u8, text: &[u8]) -> Result<Line, RespError> {
    let bad = || RespError::BadValue(char::from(kind));
    // RESP lines hold neither CR nor LF: one inside is a broken stream.
    if text.iter().any(|&b| b == b'\r' || b == b'\n') {
        return Err(bad());
    }
    let lossy = || String::from_utf8_lossy(text).into_owned();
    let value = match kind {
        b'+' => Answer::Status(lossy()),
        b'-' => Answer::Error(lossy()),
        b':' => Answer::Integer(integer(text)?),
        b'_' if text.is_empty() => Answer::Null,
        b'#' => match text {
            b"t" => Answer::Boolean(true),
            b"f" => Answer::Boolean(false),
            _ => return Err(bad()),
        },
        b',' if !text.is_empty()
            && text
                .iter()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'+' | b'-')) =>
        {
            Answer::Double(lossy())
        }
        b'(' => {
            let digits = text.strip_prefix(b"-").unwrap_or(text);
            if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
                return Err(bad());
            }
            Answer::BigNumber(lossy())
        }
        b'$' | b'=' | b'!' => {
            return match (kind, bulk_len(text)?) {
                (b'$', None) => Ok(Line::Value(Answer::Null)),
                (b'=', Some(len)) if len < 4 => Err(bad()),
                (_, Some(len)) => Ok(Line::Blob(len)),
                (_, None) => Err(bad()),
            };
        }
        b'*' | b'%' | b'~' | b'>' | b'|' => {
            let n = integer(text)?;
            if kind == b'*' && n == -1 {
                return Ok(Line::Value(Answer::Null));
            }
            let count = u64::try_from(n).map_err(|_| bad())?;
            return Ok(Line::Many {
                count,
                attribute: kind == b'|',
            });
        }
        _ => return Err(bad()),
    };
    Ok(Line::Value(value))
}
