//! Which reply answers which command: a pure type beside the byte pump,
//! with no I/O.
//!
//! Redis answers the commands of a connection one reply each, in order.
//! Every forwarded command is queued ([`Owed`]) and each top-level reply
//! settles the oldest one, which gives its outcome; a RESP3 push answers
//! none. The proxy's own answers (a refusal, `AUTH`, `QUIT`) are queued
//! the same way and sent when they reach the front: after the replies
//! still owed for commands the client sent before them, as a pipelining
//! client expects. Their commands are logged then too, so the log keeps
//! the order of the client's commands. The queue is bounded ([`Tracker::full`]): past that the
//! relay stops reading the client until replies catch up.

use std::collections::VecDeque;
use std::time::Instant;

use bytes::Bytes;

use super::reply::Answer;
use super::text::outcome;
use super::{Outcome, Statement};

/// Commands owed a reply at most, and the most text kept for them.
pub const MAX_OWED: usize = 100_000;
pub const MAX_OWED_BYTES: usize = 64 << 20;

/// A command whose outcome is still to come.
#[derive(Debug)]
pub struct Pending {
    text: String,
    started: Instant,
}

impl Pending {
    /// `text` as logged; the time runs from now (the command is sent).
    pub fn new(text: String) -> Pending {
        Pending {
            text,
            started: Instant::now(),
        }
    }

    fn logged(self, outcome: Outcome) -> Statement {
        Statement {
            text: self.text,
            outcome,
            duration: self.started.elapsed(),
        }
    }
}

/// What the server (or the proxy) still owes the client.
#[derive(Debug)]
pub enum Owed {
    /// A forwarded command: the server's reply goes to the client.
    Reply(Pending),
    /// A forwarded command whose reply the client must not see (the
    /// `DISCARD` an `EXEC` became): the proxy's answer takes its place, and
    /// the command is logged with `outcome`.
    Instead {
        pending: Pending,
        answer: Bytes,
        outcome: Outcome,
    },
    /// The proxy's own answer, sent in its turn, and the command it
    /// answers (logged then).
    Answer {
        bytes: Bytes,
        logged: Option<Statement>,
    },
}

impl Owed {
    fn text_len(&self) -> usize {
        match self {
            Owed::Reply(p) | Owed::Instead { pending: p, .. } => p.text.len(),
            Owed::Answer { bytes, logged } => {
                bytes.len() + logged.as_ref().map_or(0, |s| s.text.len())
            }
        }
    }
}

/// Where the reply under way goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Route {
    /// To the client; it settles the oldest command.
    Forward,
    /// Nowhere: the proxy's answer replaces it.
    Swallow,
    /// To the client, settling nothing (a RESP3 push).
    Push,
}

/// What the relay does once the tracker moved: bytes to send the client,
/// in order, and statements to log.
#[derive(Debug, Default)]
pub struct Settled {
    pub bytes: Vec<Bytes>,
    pub logged: Vec<Statement>,
}

/// Why the server's replies do not fit what it owes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TrackError {
    #[error("a reply to no command")]
    Unasked,
}

/// The queue of owed replies.
#[derive(Debug, Default)]
pub struct Tracker {
    owed: VecDeque<Owed>,
    /// The route of the reply under way, between its start and its end.
    route: Option<Route>,
    bytes: usize,
    /// The client is gone or said QUIT: no more commands will come.
    closing: bool,
}

impl Tracker {
    pub fn new() -> Tracker {
        Tracker::default()
    }

    /// A forwarded command, or an answer of the proxy's own, in its turn.
    pub fn sent(&mut self, owed: Owed) {
        self.bytes += owed.text_len();
        self.owed.push_back(owed);
    }

    /// Whether the client must wait for replies before more commands.
    pub fn full(&self) -> bool {
        self.owed.len() >= MAX_OWED || self.bytes >= MAX_OWED_BYTES
    }

    /// No more commands will come: the relay ends once nothing is owed.
    pub fn close(&mut self) {
        self.closing = true;
    }

    /// Whether the connection is over: closing, and nothing owed.
    pub fn done(&self) -> bool {
        self.closing && self.owed.is_empty() && self.route.is_none()
    }

    /// The proxy's answers now due (at the front of the queue), in order.
    /// Only between two replies.
    pub fn due(&mut self, out: &mut Settled) {
        if self.route.is_some() {
            return;
        }
        while matches!(self.owed.front(), Some(Owed::Answer { .. })) {
            if let Some(Owed::Answer { bytes, logged }) = self.pop() {
                out.bytes.push(bytes);
                out.logged.extend(logged);
            }
        }
    }

    /// A reply begins: the answers due before it go to `out`; true when
    /// the reply is to be forwarded to the client.
    pub fn begin(&mut self, push: bool, out: &mut Settled) -> Result<bool, TrackError> {
        self.due(out);
        let route = match self.owed.front() {
            _ if push => Route::Push,
            Some(Owed::Reply(_)) => Route::Forward,
            Some(Owed::Instead { .. }) => Route::Swallow,
            Some(Owed::Answer { .. }) | None => return Err(TrackError::Unasked),
        };
        self.route = Some(route);
        Ok(route != Route::Swallow)
    }

    /// The reply under way is over: the command it answers is logged, and
    /// the client gets the proxy's answer in place of a swallowed reply,
    /// then the answers due.
    pub fn end(&mut self, answer: &Answer, out: &mut Settled) {
        match self.route.take() {
            Some(Route::Forward) => {
                if let Some(Owed::Reply(pending)) = self.pop() {
                    out.logged.push(pending.logged(outcome(answer)));
                }
            }
            Some(Route::Swallow) => {
                if let Some(Owed::Instead {
                    pending,
                    answer,
                    outcome,
                }) = self.pop()
                {
                    out.logged.push(pending.logged(outcome));
                    out.bytes.push(answer);
                }
            }
            Some(Route::Push) | None => {}
        }
        self.due(out);
    }

    /// The commands still waiting when the connection ends (unfinished),
    /// and those refused whose answer was not sent yet.
    pub fn finish(&mut self) -> Vec<Statement> {
        self.bytes = 0;
        self.route = None;
        self.owed
            .drain(..)
            .filter_map(|owed| match owed {
                Owed::Reply(p) | Owed::Instead { pending: p, .. } => {
                    Some(p.logged(Outcome::Unfinished))
                }
                Owed::Answer { logged, .. } => logged,
            })
            .collect()
    }

    fn pop(&mut self) -> Option<Owed> {
        let owed = self.owed.pop_front()?;
        self.bytes = self.bytes.saturating_sub(owed.text_len());
        Some(owed)
    }
}
