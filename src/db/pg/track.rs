//! Which server answer belongs to which client message: a pure type beside
//! the byte pump, with no I/O.
//!
//! Every message the proxy forwards that the server answers is queued
//! ([`Owed`]); each server message settles the oldest one. That tells the
//! outcome of each logged statement, and where the proxy's own answers to
//! refused messages go: behind every answer owed for messages the client
//! sent before them, as a pipelining client expects (libpq's pipeline
//! mode, JDBC, desktop tools send many messages before reading).
//!
//! After an error in an extended-protocol batch the server skips every
//! message up to the batch's Sync; so does the tracker, and a refusal
//! queued inside such a batch is then not sent (the client gets one error
//! per batch, as from the server).

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;

use super::wire::{self, WireError};
use super::{Outcome, Statement};

/// A statement whose outcome is still to come.
#[derive(Debug)]
pub struct Pending {
    text: Arc<str>,
    started: Instant,
    /// The last CommandComplete tag of a simple Query.
    tag: Option<String>,
    /// The first error of a simple Query.
    error: Option<String>,
}

impl Pending {
    pub fn new(text: Arc<str>) -> Pending {
        Pending {
            text,
            started: Instant::now(),
            tag: None,
            error: None,
        }
    }

    fn logged(self, outcome: Outcome) -> Statement {
        Statement {
            text: self.text.to_string(),
            outcome,
            duration: self.started.elapsed(),
        }
    }

    fn outcome(&mut self) -> Outcome {
        match (self.error.take(), self.tag.take()) {
            (Some(error), _) => Outcome::Error(error),
            (None, tag) => Outcome::Done(tag.unwrap_or_default()),
        }
    }
}

/// What the server (or the proxy) still owes the client.
#[derive(Debug)]
pub enum Owed {
    /// A simple Query: everything up to its ReadyForQuery.
    Query(Pending),
    Parse,
    Bind,
    Describe,
    Close,
    /// An Execute: rows, then CommandComplete, EmptyQueryResponse,
    /// PortalSuspended or ErrorResponse.
    Execute(Pending),
    /// A Sync: its ReadyForQuery.
    Sync,
    /// The proxy's answer to a refused Query or FunctionCall: this
    /// ErrorResponse, then ReadyForQuery with the status the server last
    /// reported.
    Answer(Bytes),
    /// The ErrorResponse for a refused Parse, where the server would have
    /// sent its own; the client's messages up to the next Sync are dropped
    /// and that Sync is forwarded, so the server's ReadyForQuery ends the
    /// batch for both.
    Refusal(Bytes),
}

impl Owed {
    fn injected(&self) -> bool {
        matches!(self, Owed::Answer(_) | Owed::Refusal(_))
    }
}

/// Why the server's messages do not fit what it owes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TrackError {
    #[error(transparent)]
    Wire(#[from] WireError),
    #[error("message {got:?} answers nothing the client sent (owed: {owed})")]
    Unexpected { got: char, owed: &'static str },
    #[error("client encoding {0}")]
    Encoding(String),
}

/// Client encodings whose multibyte characters may end in a byte that is
/// ASCII `\`: a filter reading the text as UTF-8 would see an escape where
/// the server sees a character (CVE-2006-2314). The server reports its
/// canonical names.
pub fn unsafe_encoding(name: &str) -> bool {
    [
        "SJIS",
        "SHIFT_JIS_2004",
        "BIG5",
        "GBK",
        "UHC",
        "GB18030",
        "JOHAB",
    ]
    .iter()
    .any(|e| e.eq_ignore_ascii_case(name))
}

/// The queue of owed answers and the last transaction status.
#[derive(Debug)]
pub struct Tracker {
    owed: VecDeque<Owed>,
    status: u8,
    /// The server failed a message of an extended batch and skips the
    /// rest up to its Sync.
    skipping: bool,
}

impl Tracker {
    pub fn new(status: u8) -> Tracker {
        Tracker {
            owed: VecDeque::new(),
            status,
            skipping: false,
        }
    }

    /// A forwarded message the server will answer.
    pub fn sent(&mut self, owed: Owed) {
        self.owed.push_back(owed);
    }

    /// Queues the proxy's answer to a refused message. True when the
    /// server still owes answers ahead of it: the proxy then sends the
    /// server a Flush, since an extended batch's answers may otherwise stay
    /// in its buffer until a Sync that never comes.
    pub fn refuse(&mut self, owed: Owed) -> bool {
        let waiting = self.owed.iter().any(|o| !o.injected());
        self.owed.push_back(owed);
        waiting
    }

    /// The proxy's answers now due (those at the front of the queue), to
    /// be written to the client in order. Only between two server
    /// messages.
    pub fn due(&mut self, out: &mut Vec<Bytes>) {
        if self.skipping {
            return;
        }
        while let Some(front) = self.owed.front() {
            match front {
                Owed::Answer(error) => {
                    out.push(error.clone());
                    out.push(wire::ready_for_query(self.status));
                }
                Owed::Refusal(error) => out.push(error.clone()),
                _ => break,
            }
            self.owed.pop_front();
        }
    }

    /// The start of a streamed server message (DataRow, CopyData).
    pub fn stream(&self, tag: u8) -> Result<(), TrackError> {
        match (tag, self.owed.front()) {
            (b'D' | b'd', Some(Owed::Query(_) | Owed::Execute(_))) if !self.skipping => Ok(()),
            _ => Err(self.unexpected(tag)),
        }
    }

    /// One whole server message; statements whose outcome it settles go to
    /// `logged`.
    pub fn answer(
        &mut self,
        tag: u8,
        body: &Bytes,
        logged: &mut Vec<Statement>,
    ) -> Result<(), TrackError> {
        match tag {
            // Asynchronous: NoticeResponse, NotificationResponse.
            b'N' | b'A' => Ok(()),
            b'S' => {
                let (name, value) = wire::parameter_status(body.clone())?;
                if name == "client_encoding" && unsafe_encoding(&value) {
                    return Err(TrackError::Encoding(value));
                }
                Ok(())
            }
            b'E' => self.error(body, logged),
            b'Z' => self.ready(body, logged),
            _ if self.skipping => Err(self.unexpected(tag)),
            b'C' => {
                let done = wire::command_complete(body.clone())?;
                self.complete(tag, done, logged)
            }
            b'I' => {
                wire::empty(tag, body)?;
                self.complete(tag, String::new(), logged)
            }
            b's' => match self.owed.front() {
                Some(Owed::Execute(_)) => self.complete(tag, "SUSPENDED".into(), logged),
                _ => Err(self.unexpected(tag)),
            },
            b'1' | b'2' | b'3' | b'n' => {
                wire::empty(tag, body)?;
                match (tag, self.owed.front()) {
                    (b'1', Some(Owed::Parse))
                    | (b'2', Some(Owed::Bind))
                    | (b'3', Some(Owed::Close))
                    | (b'n', Some(Owed::Describe)) => {
                        self.owed.pop_front();
                        Ok(())
                    }
                    _ => Err(self.unexpected(tag)),
                }
            }
            // ParameterDescription comes before the Describe's last answer.
            b't' => match self.owed.front() {
                Some(Owed::Describe) => Ok(()),
                _ => Err(self.unexpected(tag)),
            },
            b'T' => match self.owed.front() {
                Some(Owed::Describe) => {
                    self.owed.pop_front();
                    Ok(())
                }
                Some(Owed::Query(_)) => Ok(()),
                _ => Err(self.unexpected(tag)),
            },
            // CopyInResponse, CopyOutResponse, CopyBothResponse, CopyDone.
            b'G' | b'H' | b'W' | b'c' => match self.owed.front() {
                Some(Owed::Query(_) | Owed::Execute(_)) => Ok(()),
                _ => Err(self.unexpected(tag)),
            },
            _ => Err(self.unexpected(tag)),
        }
    }

    /// Statements still waiting when the connection ends.
    pub fn finish(&mut self) -> Vec<Statement> {
        self.owed
            .drain(..)
            .filter_map(|o| match o {
                Owed::Query(p) | Owed::Execute(p) => Some(p.logged(Outcome::Unfinished)),
                _ => None,
            })
            .collect()
    }

    fn complete(
        &mut self,
        tag: u8,
        done: String,
        logged: &mut Vec<Statement>,
    ) -> Result<(), TrackError> {
        match self.owed.front_mut() {
            Some(Owed::Query(p)) => {
                p.tag = Some(done);
                Ok(())
            }
            Some(Owed::Execute(_)) => {
                if let Some(Owed::Execute(p)) = self.owed.pop_front() {
                    logged.push(p.logged(Outcome::Done(done)));
                }
                Ok(())
            }
            _ => Err(self.unexpected(tag)),
        }
    }

    fn error(&mut self, body: &Bytes, logged: &mut Vec<Statement>) -> Result<(), TrackError> {
        let notice = wire::notice(b'E', body.clone())?;
        match self.owed.front_mut() {
            Some(Owed::Query(p)) => {
                p.error.get_or_insert_with(|| notice.line());
            }
            Some(Owed::Parse | Owed::Bind | Owed::Describe | Owed::Close | Owed::Execute(_))
                if !self.skipping =>
            {
                if let Some(Owed::Execute(p)) = self.owed.pop_front() {
                    logged.push(p.logged(Outcome::Error(notice.line())));
                }
                self.skipping = true;
            }
            // A commit failing at Sync (its ReadyForQuery follows), or an
            // error of the server's own such as a FATAL before it closes.
            _ => {}
        }
        Ok(())
    }

    fn ready(&mut self, body: &Bytes, logged: &mut Vec<Statement>) -> Result<(), TrackError> {
        let status = wire::ready(body.clone())?;
        if self.skipping {
            // Everything up to the batch's Sync was skipped by the server.
            let Some(sync) = self.owed.iter().position(|o| matches!(o, Owed::Sync)) else {
                return Err(self.unexpected(b'Z'));
            };
            for owed in self.owed.drain(..=sync) {
                if let Owed::Query(p) | Owed::Execute(p) = owed {
                    let not_run = "not run: an earlier message of its batch failed";
                    logged.push(p.logged(Outcome::Error(not_run.into())));
                }
            }
            self.skipping = false;
        } else {
            match self.owed.pop_front() {
                Some(Owed::Query(mut p)) => {
                    let outcome = p.outcome();
                    logged.push(p.logged(outcome));
                }
                Some(Owed::Sync) => {}
                other => {
                    if let Some(o) = other {
                        self.owed.push_front(o);
                    }
                    return Err(self.unexpected(b'Z'));
                }
            }
        }
        self.status = status;
        Ok(())
    }

    fn unexpected(&self, tag: u8) -> TrackError {
        let owed = match self.owed.front() {
            _ if self.skipping => "nothing until Sync",
            None => "nothing",
            Some(Owed::Query(_)) => "Query",
            Some(Owed::Parse) => "Parse",
            Some(Owed::Bind) => "Bind",
            Some(Owed::Describe) => "Describe",
            Some(Owed::Close) => "Close",
            Some(Owed::Execute(_)) => "Execute",
            Some(Owed::Sync) => "Sync",
            Some(Owed::Answer(_) | Owed::Refusal(_)) => "the proxy's answer",
        };
        TrackError::Unexpected {
            got: char::from(tag),
            owed,
        }
    }
}
