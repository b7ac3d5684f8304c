//! Where a server's reply to one command ends, and what it says: a pure
//! type beside the byte pump, with no I/O.
//!
//! The classic protocol is strictly request and answer, so one [`Reply`]
//! is owed at a time. It reads the first packet of each payload (the rest
//! of a row is never looked at): OK, ERR, a result set's column count,
//! its column definitions and EOF, rows up to the closing EOF or ERR, and
//! again while the status says more results follow (multi-statement
//! queries, stored procedures). The outcome logged is the last result's
//! (`OK, 1 row affected`, `3 rows`), with how many results there were
//! when more than one, or the first error, which ends the reply.
//!
//! A LOCAL INFILE request from the server is never shown to the client:
//! the reply answers it with an empty file (no client file is read), and
//! the sequence ids of the server's later packets are moved back by the
//! two the client never saw.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;

use super::wire::{self, Head, WireError, status};
use super::{Outcome, ProxyError, Statement};

/// A logged statement whose outcome is still to come.
#[derive(Debug)]
pub struct Pending {
    pub text: Arc<str>,
    pub started: Instant,
}

impl Pending {
    pub fn new(text: Arc<str>) -> Pending {
        Pending {
            text,
            started: Instant::now(),
        }
    }

    pub fn logged(self, outcome: Outcome) -> Statement {
        Statement {
            text: self.text.to_string(),
            outcome,
            duration: self.started.elapsed(),
        }
    }
}

/// What kind of answer a command gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// COM_QUERY, COM_STMT_EXECUTE: results.
    Results,
    /// COM_STMT_PREPARE: the statement's id and definitions; logged only
    /// when it fails (its executions are logged).
    Prepare,
    /// COM_STMT_FETCH: rows up to an EOF.
    Fetch,
    /// COM_FIELD_LIST: definitions up to an EOF.
    Fields,
    /// One packet: OK, ERR or EOF (COM_PING, COM_INIT_DB, COM_SET_OPTION,
    /// COM_STMT_RESET, COM_RESET_CONNECTION) or a string (COM_STATISTICS).
    One,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// OK, ERR, LOCAL INFILE, or a result set's column count.
    Result,
    Columns(u64),
    ColumnsEnd,
    Rows,
    Prepared,
    Params {
        left: u16,
        columns: u16,
    },
    ParamsEnd {
        columns: u16,
    },
    PreparedColumns(u16),
    PreparedColumnsEnd,
    Fields,
    One,
    Done,
}

/// What to do with a server packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Forward it to the client with this sequence id.
    Forward(u8),
    /// Send the server this packet instead, and the client nothing.
    Answer(Bytes),
}

/// Why a server packet does not fit the reply owed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TrackError {
    #[error(transparent)]
    Wire(#[from] WireError),
    #[error("{0}")]
    Unexpected(String),
}

/// The answer owed to one command.
#[derive(Debug)]
pub struct Reply {
    kind: Kind,
    state: State,
    /// The sequence id the server's next packet must carry.
    next: u8,
    /// Subtracted from the server's sequence ids for the client.
    shift: u8,
    pending: Option<Pending>,
    results: u32,
    rows: u64,
    last: String,
    error: Option<String>,
    local_infile: bool,
    /// A successful COM_STMT_PREPARE's statement.
    pub prepared: Option<wire::Prepared>,
}

impl Reply {
    /// The reply to a command whose last packet had sequence id `seq`.
    pub fn new(kind: Kind, seq: u8, pending: Option<Pending>) -> Reply {
        let state = match kind {
            Kind::Results => State::Result,
            Kind::Prepare => State::Prepared,
            Kind::Fetch => State::Rows,
            Kind::Fields => State::Fields,
            Kind::One => State::One,
        };
        Reply {
            kind,
            state,
            next: seq.wrapping_add(1),
            shift: 0,
            pending,
            results: 0,
            rows: 0,
            last: String::new(),
            error: None,
            local_infile: false,
            prepared: None,
        }
    }

    /// The text of the statement the reply is for.
    pub fn text(&self) -> Option<Arc<str>> {
        self.pending.as_ref().map(|p| p.text.clone())
    }

    /// Whether the reply is complete.
    pub fn done(&self) -> bool {
        self.state == State::Done
    }

    /// The statement to log, with its outcome, once the reply is done.
    pub fn finish(self) -> Option<Statement> {
        let pending = self.pending?;
        if let Some(error) = self.error {
            return Some(pending.logged(Outcome::Error(error)));
        }
        if self.kind == Kind::Prepare {
            return None;
        }
        let mut text = self.last;
        if self.results > 1 {
            text = format!("{text} (last of {} results)", self.results);
        }
        if self.local_infile {
            text.push_str(" [LOCAL INFILE refused: the server got an empty file]");
        }
        Some(pending.logged(Outcome::Done(text)))
    }

    /// The statement to log when the connection ended first.
    pub fn unfinished(self) -> Option<Statement> {
        Some(self.pending?.logged(Outcome::Unfinished))
    }

    /// One server packet (its header and first bytes).
    pub fn packet(&mut self, head: &Head) -> Result<Step, TrackError> {
        if head.seq != self.next {
            return Err(WireError::Sequence {
                got: head.seq,
                want: self.next,
            }
            .into());
        }
        self.next = self.next.wrapping_add(1);
        let forward = Step::Forward(head.seq.wrapping_sub(self.shift));
        if !head.first {
            // The rest of a payload of 16 MiB or more: part of a row.
            return Ok(forward);
        }
        let first = head.bytes.first().copied();
        let eof = wire::is_eof(&head.bytes, head.len);
        match (self.state, first) {
            (State::Done, _) => return Err(self.unexpected("a packet after the reply")),
            // Neither a text row nor a definition can start 0xFF.
            (_, Some(0xff)) => {
                let error = wire::error(head.bytes.clone())?;
                self.error.get_or_insert_with(|| error.line());
                self.state = State::Done;
            }
            (State::Result, Some(0xfb)) if self.kind == Kind::Results => {
                self.local_infile = true;
                let empty = wire::packet(self.next, &[]);
                self.next = self.next.wrapping_add(1);
                self.shift = self.shift.wrapping_add(2);
                return Ok(Step::Answer(empty));
            }
            (State::Result, Some(0x00)) => {
                let ok = wire::ok(head.bytes.clone())?;
                self.result(ok.line(), ok.status);
            }
            (State::Result, _) => {
                let n = wire::column_count(head.bytes.clone())?;
                self.state = State::Columns(n);
            }
            (State::Columns(n), _) => {
                self.state = match n {
                    0 | 1 => State::ColumnsEnd,
                    n => State::Columns(n - 1),
                };
            }
            (State::ColumnsEnd, _) if eof => {
                let flags = wire::eof_status(head.bytes.clone())?;
                if flags & status::CURSOR_EXISTS != 0 {
                    // COM_STMT_EXECUTE with a cursor: rows come by fetch.
                    self.result("cursor opened".into(), 0);
                } else {
                    self.state = State::Rows;
                }
            }
            (State::Rows, _) if eof => {
                let flags = wire::eof_status(head.bytes.clone())?;
                let s = if self.rows == 1 { "" } else { "s" };
                let line = format!("{} row{s}", self.rows);
                self.rows = 0;
                let more = if self.kind == Kind::Fetch { 0 } else { flags };
                self.result(line, more);
            }
            (State::Rows, _) => self.rows += 1,
            (State::Prepared, Some(0x00)) => {
                let p = wire::prepared(head.bytes.clone())?;
                self.prepared = Some(p);
                self.state = definitions(p.params, p.columns);
            }
            (State::Params { left, columns }, _) => {
                self.state = match left {
                    0 | 1 => State::ParamsEnd { columns },
                    left => State::Params {
                        left: left - 1,
                        columns,
                    },
                };
            }
            (State::ParamsEnd { columns }, _) if eof => self.state = definitions(0, columns),
            (State::PreparedColumns(n), _) => {
                self.state = match n {
                    0 | 1 => State::PreparedColumnsEnd,
                    n => State::PreparedColumns(n - 1),
                };
            }
            (State::PreparedColumnsEnd | State::Fields, _) if eof => self.state = State::Done,
            (State::Fields, _) => {}
            (State::One, Some(0x00)) if head.whole() => {
                let ok = wire::ok(head.bytes.clone())?;
                self.last = ok.line();
                self.state = State::Done;
            }
            (State::One, _) => self.state = State::Done,
            _ => return Err(self.unexpected("a packet that does not fit the reply")),
        }
        Ok(forward)
    }

    /// One result ended; more follow if its status says so.
    fn result(&mut self, line: String, flags: u16) {
        self.results += 1;
        self.last = line;
        self.state = if flags & status::MORE_RESULTS_EXISTS != 0 {
            State::Result
        } else {
            State::Done
        };
    }

    fn unexpected(&self, what: &str) -> TrackError {
        TrackError::Unexpected(format!("{what} (awaiting {:?})", self.state))
    }
}

/// After a prepare's OK: its parameter definitions, then its columns',
/// each list closed by an EOF.
fn definitions(params: u16, columns: u16) -> State {
    match (params, columns) {
        (0, 0) => State::Done,
        (0, n) => State::PreparedColumns(n),
        (n, columns) => State::Params { left: n, columns },
    }
}

/// Prepared statement ids, to the text they run. The server holds them
/// too, but the proxy's memory must not grow with a client's whim.
#[derive(Default)]
pub struct Statements {
    texts: HashMap<u32, Arc<str>>,
    bytes: usize,
    /// The last one prepared: MariaDB runs it for id 0xFFFFFFFF.
    last: Option<u32>,
}

/// Prepared statements tracked at most, and the most text kept for them.
const MAX_PREPARED: usize = 10_000;
const MAX_PREPARED_BYTES: usize = 64 << 20;

impl Statements {
    pub fn get(&self, id: u32) -> Option<Arc<str>> {
        let id = if id == u32::MAX { self.last? } else { id };
        self.texts.get(&id).cloned()
    }

    pub fn insert(&mut self, id: u32, text: Arc<str>) -> Result<(), ProxyError> {
        let old = self.texts.get(&id).map_or(0, |t| t.len());
        let bytes = self.bytes - old + text.len();
        if bytes > MAX_PREPARED_BYTES || (old == 0 && self.texts.len() >= MAX_PREPARED) {
            return Err(ProxyError::TooManyPrepared);
        }
        self.bytes = bytes;
        self.texts.insert(id, text);
        self.last = Some(id);
        Ok(())
    }

    pub fn remove(&mut self, id: u32) {
        if let Some(text) = self.texts.remove(&id) {
            self.bytes -= text.len();
        }
    }

    /// COM_RESET_CONNECTION closes them all.
    pub fn clear(&mut self) {
        *self = Statements::default();
    }
}
