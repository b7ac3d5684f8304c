//! Command extraction: which command line a person ran, read from a vt100
//! model of their screen, decided before the Enter reaches the target so the
//! relay can apply command filters.
//!
//! How: target output feeds a [`vt100::Parser`] (which skips streamed text
//! that scrolls off before it could be read: `record::model`). The first
//! keystroke at a prompt marks the cursor as the prompt boundary; at Enter
//! the command is the screen text from the boundary to the end of the
//! (wrapped) line the cursor is on. History recall, tab completion and line
//! editing are the shell's business and come for free, because what counts is
//! what the shell drew. Nothing is extracted while the target shows the
//! alternate screen (vim, less, top), and input typed with echo off
//! (passwords) draws nothing, so it yields nothing.
//!
//! Which text: the keystrokes say what was sent, the screen what the
//! shell made of it. When the keys fully determine the line (printable
//! keys, Backspace, Ctrl-U, Ctrl-W, a paste) and the screen shows exactly
//! them just left of the cursor, the command is the typed line; the echo
//! is what proves it was no password typed with echo off. When the keys do
//! not determine it (arrows, history, Tab, Alt-keys) or the shell shows
//! something else after editing keys (a line editor whose editing the key
//! model does not follow), the screen decides. Printable keys alone are
//! never overruled: other text on the screen is output the line began on,
//! or an earlier line still being drawn. While a line forwarded before its
//! echo is still awaited, only an exact echo decides a later line.
//!
//! Timing: the screen can only show a line once the target has echoed it.
//! When an Enter arrives before the echo of the keys before it (fast
//! typing over a slow link, a pasted line, a password), [`CommandTracker::input`]
//! returns [`Input::EnterUnseen`]: a relay that enforces filters holds that
//! Enter (and the input after it), keeps feeding output, polls
//! [`CommandTracker::pending_line`] for up to about 300 ms, then calls
//! [`CommandTracker::resolve_pending`] once, just before it forwards (or
//! refuses) that Enter. `Some` is the command, as for a seen Enter; `None`
//! means echo off (a password) or a line whose echo did not come in time:
//! check the filter on the keystrokes (`typed`), forward, log nothing.
//! Several Enters in one input chunk (type-ahead, a paste without
//! bracketed paste) are each an `EnterUnseen`, resolved in order. A line
//! typed before the target answered the previous Enter (type-ahead: its
//! first key found the cursor still on the previous line) has no known
//! place on the screen: it is looked for on a line the shell drew below
//! the row that Enter went out on, as the typed keys at the cursor or,
//! when the keys do not say, as the text after the prompt the shell showed
//! last.
//!
//! Bracketed paste (`ESC[200~ ... ESC[201~`, only when the target enabled
//! mode 2004): newlines inside a paste are not Enter keys (bash, zsh and
//! readline insert them); the pasted lines become part of the line the next
//! real Enter submits, and that command text contains them separated by
//! `\n`: filters should check each line.
//!
//! Batching: while nobody is typing a line and nothing waits for an echo
//! (a `cat` of a log, a build streaming), output is kept, up to
//! [`DEFER_LIMIT`] bytes, and given to the screen model in one piece when
//! the limit is reached or when anything looks at the screen or the
//! capture (a key, a resize, a monitor's snapshot, the end). The model
//! skips more of a long piece than of many short ones (a pty hands the
//! relay about 4 KiB at a time, and a screenful of each would be parsed);
//! what it shows at every look is the same. A full batch that looks
//! binary (a quarter of invalid UTF-8 and stray controls at its start,
//! middle and end: `cat` of an archive) is not parsed at all, since parsing
//! it costs far more than relaying it: the model starts over, blank, after
//! it, as after a failed parse. The real terminal shows garbage there too;
//! the next command is read from the prompt the shell draws after it.
//!
//! Output capture: after [`CommandTracker::started`], the first
//! [`OUTPUT_CAPTURE_LIMIT`] bytes of output are kept as plain text (escape
//! sequences and control bytes removed by a small state machine, `\r\n` as
//! `\n`); the next prompt and the echo of the next command are trimmed from
//! the end when they can be recognised.
//!
//! Honest limits: a line longer than the screen whose start scrolled off the
//! top is read from the top row (the start is lost); a line typed ahead
//! with keys that do not determine it is found only after an unchanged
//! prompt; a line whose echo comes after the wait (typed ahead behind a
//! command that runs longer, or an echo delayed by load) is filter-checked
//! on its keystrokes and forwarded, and logged when the shell draws it
//! later ([`CommandTracker::expect_echo`]), provided the keys determine it;
//! when they do not and a deny or review rule applies, the relay holds its
//! Enter back and the line, left at the prompt, is read at the next Enter
//! ([`CommandTracker::withheld`]), and without such a rule it goes out
//! unlogged; REPLs (python, psql, mysql)
//! are logged like shell commands, which is usually what an auditor wants;
//! shell suggestions drawn after the cursor (zsh-autosuggestions, fish) are
//! left out only when drawn dim or in bright black, their default; and
//! obfuscation (`echo cm0gLXJmIC8= | base64 -d | sh`) defeats any filter:
//! a filter is a guard-rail, not a sandbox.
//!
//! Layout: `keys` follows the person's keys and says what an Enter is;
//! `echo` decides the Enters decided late (held for their echo, forwarded
//! before it, held back unread); `screen` reads lines off the screen model;
//! `capture` keeps each command's output. This file holds the state they
//! share and feeds output to the model.

mod capture;
mod echo;
mod keys;
mod screen;

use std::collections::VecDeque;
use std::num::NonZeroU16;
use std::time::Duration;

use super::model::{MAX_ROWS, ScreenModel};
use super::strip::Stripper;

/// How much of a command's output is kept, in bytes of plain text.
pub const OUTPUT_CAPTURE_LIMIT: usize = 4096;
/// The model's size is capped: a window-change to 65535×65535 must not
/// allocate four billion cells. Real terminals stay well inside.
const MAX_COLS: u16 = 500;
/// Output kept for the screen model at most (see the module docs).
const DEFER_LIMIT: usize = 32 * 1024;
/// Longest line the keystroke model follows.
const TYPED_LIMIT: usize = 16 * 1024;
/// Unresolved [`Input::EnterUnseen`] kept, at most.
const MAX_UNSEEN: usize = 64;
/// Lines forwarded before their echo, looked for at most.
const MAX_LATE: usize = 64;
/// Line breaks of output a line forwarded before its echo is looked for
/// at: its echo comes when the command before it ends, or never (a
/// password typed ahead with echo off).
const LATE_LOOKS: u32 = 20_000;
/// Bracketed paste end, `ESC [ 2 0 1 ~`.
const PASTE_END: &[u8] = b"\x1b[201~";

/// What the relay does with a piece of the person's input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    /// Forward as is.
    Data(Vec<u8>),
    /// An Enter key whose line the screen shows: `command` is that line
    /// (`None`: the alternate screen, an empty line, or a line typed with
    /// echo off). Forward `raw` if the command is allowed.
    Enter {
        command: Option<String>,
        raw: Vec<u8>,
    },
    /// An Enter that came before the echo of the keys typed before it, so
    /// the screen does not show the line yet (see the module docs: hold it,
    /// wait for output, then [`CommandTracker::resolve_pending`]). `typed` is
    /// the line as rebuilt from the keystrokes when they were simple
    /// (printable keys, backspace, paste), for a filter check: it may be a
    /// password typed with echo off, so never log or show it unless the
    /// resolution (which needs the echo) gives a line.
    EnterUnseen { typed: Option<String>, raw: Vec<u8> },
    /// An Enter while the target shows the alternate screen (an editor, a
    /// pager, or a shell that switched to it to hide its lines from the
    /// command log): no line can be read there, so `typed` is what the
    /// printable keys since the last Enter spelled, for a filter check. It
    /// may be a password (nothing shows whether echo is on): never log or
    /// show it.
    EnterFullScreen { typed: String, raw: Vec<u8> },
}

/// A command with the output that followed it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompletedCommand {
    pub command: String,
    /// When it started, since the session start (as given to `started`).
    pub at: Duration,
    /// The first [`OUTPUT_CAPTURE_LIMIT`] bytes of its output, plain text.
    pub output: String,
    /// More output followed than was kept.
    pub output_truncated: bool,
}

/// The line being typed at a prompt.
#[derive(Debug)]
struct Line {
    /// Where the first keystroke found the cursor: (row, col).
    boundary: (u16, u16),
    /// Screen text left of the boundary: the prompt.
    prompt: String,
    /// Typed before the target answered the previous Enter: the boundary is
    /// not where the shell will draw this line.
    stale: bool,
    /// For a stale line: the row the previous Enter was forwarded on (the
    /// line is drawn below it); `None` while that Enter is still held.
    after: Option<i32>,
    typed: Vec<u8>,
    /// `typed` follows the keys (no cursor motion, completion, history).
    reliable: bool,
    /// Editing keys (Backspace, Ctrl-U, Ctrl-W) were used: a line editor
    /// may have edited otherwise than the key model.
    edited: bool,
}

impl Line {
    /// The line as the keystrokes built it, when they are known to say
    /// what was sent (see [`Held::typed`]).
    fn typed_text(&self) -> Option<String> {
        let text = String::from_utf8_lossy(&self.typed).trim().to_string();
        (self.reliable && !text.is_empty()).then_some(text)
    }
}

/// A line at its Enter, until its command is decided: at once for an
/// Enter whose echo is on the screen, else when the relay resolves the
/// [`Input::EnterUnseen`].
#[derive(Debug)]
struct Held {
    /// Where the line started; `None` for a line typed ahead (stale): its
    /// place on the screen is unknown.
    boundary: Option<(u16, u16)>,
    /// The prompt left of the boundary; for a stale line, the prompt of the
    /// last line whose place was known (the shell draws the same one).
    prompt: String,
    /// For a stale line, as [`Line::after`].
    after: Option<i32>,
    /// The keystrokes, when they fully determine the line (printable keys,
    /// backspace, Ctrl-U, Ctrl-W, paste). Authoritative about what was sent
    /// once the screen shows them, i.e. the shell echoed them: a password
    /// typed with echo off is never taken from here.
    typed: Option<String>,
    /// As [`Line::edited`].
    edited: bool,
}

/// A line whose Enter went out before the screen showed it (its echo came
/// later than the relay's wait), its keys known: it is logged once the
/// shell draws exactly those keys, which also proves they were no password
/// typed with echo off.
#[derive(Debug)]
struct Late {
    held: Held,
    /// When its Enter went out, since the session start.
    at: Duration,
    /// Line breaks of output left to look for it at.
    looks: u32,
}

/// A line the screen showed only after its Enter went out (see
/// [`CommandTracker::expect_echo`]): it runs from `at`, and the command
/// before it, if any, is complete.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LateCommand {
    pub command: String,
    pub at: Duration,
    pub previous: Option<CompletedCommand>,
}

#[derive(Debug)]
struct Running {
    command: String,
    at: Duration,
    capture: Stripper,
}

/// Where the input parser is in an escape sequence of the keyboard.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Keys {
    Ground,
    Escape,
    Csi(Vec<u8>),
    Ss3,
    /// Inside a bracketed paste; the number of bytes of [`PASTE_END`]
    /// matched so far.
    Paste(usize),
}

/// Follows one interactive session: output in, input in, commands out.
pub struct CommandTracker {
    /// The screen, as the target drew it (streamed text fast-forwarded).
    model: ScreenModel,
    line: Option<Line>,
    /// One per [`Input::EnterUnseen`] not yet resolved, oldest first.
    unseen: VecDeque<Held>,
    /// The last `unseen` resolved without a line, its keys known, until the
    /// relay says whether it went out ([`Self::expect_echo`]).
    unresolved: Option<Held>,
    /// Lines forwarded before their echo, oldest first.
    late: VecDeque<Late>,
    /// Lines the screen showed after their Enter went out, for the relay.
    late_seen: Vec<LateCommand>,
    /// The prompt of the line whose command `started` is given next, to
    /// trim it from the end of the previous command's output.
    last_prompt: Option<String>,
    keys: Keys,
    /// Keys went to the target after the last output came back.
    input_after_output: bool,
    /// An Enter went to the target and no output came back since.
    after_enter: bool,
    /// The cursor row when the last Enter went to the target (rows scrolled
    /// away since are subtracted, so it may be negative).
    enter_row: Option<i32>,
    /// The prompt of the last line whose place on the screen was known.
    prompt_hint: String,
    /// The prompt the shell last drew before a line it echoed exactly.
    known_prompt: String,
    running: Option<Running>,
    /// Printable keys typed on the alternate screen since the last Enter
    /// (at most [`FULL_SCREEN_TYPED`] bytes), for [`Input::EnterFullScreen`].
    full_screen_typed: Vec<u8>,
    /// Batch output for the model (see the module docs); false: feed
    /// every chunk as it comes, to check the batching against.
    batch: bool,
    /// Output not yet given to the model, at most [`DEFER_LIMIT`] bytes.
    deferred: Vec<u8>,
}

/// Keys kept for the filter check of a full-screen line.
const FULL_SCREEN_TYPED: usize = 4096;

impl std::fmt::Debug for CommandTracker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CommandTracker")
            .field("line", &self.line)
            .field("keys", &self.keys)
            .finish_non_exhaustive()
    }
}

fn size(cols: u16, rows: u16) -> (NonZeroU16, NonZeroU16) {
    let clamp = |v: u16, max: u16| NonZeroU16::new(v.min(max)).unwrap_or(NonZeroU16::MIN);
    (clamp(rows, MAX_ROWS), clamp(cols, MAX_COLS))
}

impl CommandTracker {
    pub fn new(cols: u16, rows: u16) -> Self {
        Self::with_model(cols, rows, true)
    }

    /// A tracker whose screen model parses every byte (no fast-forward), to
    /// check the fast one against.
    #[cfg(test)]
    pub(crate) fn new_plain(cols: u16, rows: u16) -> Self {
        Self::with_model(cols, rows, false)
    }

    /// Bytes of output the screen model did not parse.
    #[cfg(test)]
    pub(crate) fn skipped_output(&mut self) -> u64 {
        self.catch_up();
        self.model.skipped()
    }

    fn with_model(cols: u16, rows: u16, fast: bool) -> Self {
        let (rows, cols) = size(cols, rows);
        CommandTracker {
            model: ScreenModel::new(rows, cols, fast),
            line: None,
            unseen: VecDeque::new(),
            unresolved: None,
            late: VecDeque::new(),
            late_seen: Vec::new(),
            last_prompt: None,
            keys: Keys::Ground,
            input_after_output: false,
            after_enter: false,
            enter_row: None,
            prompt_hint: String::new(),
            known_prompt: String::new(),
            running: None,
            full_screen_typed: Vec::new(),
            batch: fast,
            deferred: Vec::new(),
        }
    }

    /// Nothing reads the screen before more output comes: no line is being
    /// typed, no Enter waits for its echo, no key typed on the alternate
    /// screen waits for the normal one.
    fn may_defer(&self) -> bool {
        self.batch
            && self.line.is_none()
            && self.unseen.is_empty()
            && self.unresolved.is_none()
            && self.late.is_empty()
            && self.full_screen_typed.is_empty()
    }

    /// Gives the model (and the capture) the output kept back.
    fn catch_up(&mut self) {
        if self.deferred.is_empty() {
            return;
        }
        let deferred = std::mem::take(&mut self.deferred);
        self.feed(&deferred);
    }

    pub fn resize(&mut self, cols: u16, rows: u16) {
        self.catch_up();
        let (rows, cols) = size(cols, rows);
        self.model.resize(rows, cols);
        self.follow_scroll();
    }

    /// Output from the target, as the client receives it.
    pub fn output(&mut self, bytes: &[u8]) {
        self.input_after_output = false;
        self.after_enter = false;
        if self.may_defer() {
            if self.deferred.len() + bytes.len() < DEFER_LIMIT {
                self.deferred.extend_from_slice(bytes);
                return;
            }
            // A full batch: one piece, and the buffer kept for the next.
            // Binary output is not parsed at all (see the module docs).
            let mut batch = std::mem::take(&mut self.deferred);
            batch.extend_from_slice(bytes);
            if ScreenModel::looks_binary(&batch) {
                self.model.forget(batch.len());
                self.after_model(&batch);
            } else {
                self.feed(&batch);
            }
            batch.clear();
            self.deferred = batch;
            return;
        }
        self.catch_up();
        let mut rest = bytes;
        // While a line forwarded before its echo is looked for, the screen
        // is looked at before each line break: one chunk may hold the echo
        // and the output after it, and the echo is at the cursor only until
        // the break. (A held Enter needs none of this: until it goes out,
        // its echo is the last thing the target sends.)
        while !self.late.is_empty() {
            let Some(i) = rest.iter().skip(1).position(|&b| b == b'\r' || b == b'\n') else {
                break;
            };
            let (now, next) = rest.split_at(i + 1);
            self.feed(now);
            self.look_for_late();
            rest = next;
        }
        self.feed(rest);
        if !self.late.is_empty() {
            self.look_for_late();
        }
    }

    fn feed(&mut self, bytes: &[u8]) {
        if bytes.is_empty() {
            return;
        }
        self.model.process(bytes);
        self.after_model(bytes);
    }

    /// What follows the model's turn at some output: boundaries follow the
    /// screen, the capture gets the output.
    fn after_model(&mut self, bytes: &[u8]) {
        if self.model.take_restarted() {
            // Nothing drawn before is on the screen: a line being typed is
            // read afresh from its next key.
            self.line = None;
        }
        self.follow_scroll();
        if self.model.screen().alternate_screen() {
            self.line = None;
        } else if !self.full_screen_typed.is_empty() {
            // Back on the normal screen: keys typed on the other one are
            // no line of the shell's.
            self.full_screen_typed.clear();
        }
        if let Some(running) = &mut self.running
            && !running.capture.done()
        {
            running.capture.feed(bytes);
        }
    }

    /// Moves the boundaries up by the rows that scrolled away; a boundary
    /// that left the screen is pinned to the top-left corner.
    fn follow_scroll(&mut self) {
        // Past a screenful the count may differ from a plain parser's (see
        // model.rs); any count past a boundary's row pins it alike.
        let scrolled = self.model.take_scrolled();
        let (_, cols) = self.model.screen().size();
        let shift = |(row, col): (u16, u16)| {
            let col = col.min(cols.get() - 1);
            match u16::try_from(scrolled) {
                Ok(s) if s <= row => (row - s, col),
                _ => (0, 0),
            }
        };
        let up = i32::try_from(scrolled).unwrap_or(i32::MAX);
        let lift = |row: i32| row.saturating_sub(up);
        if let Some(line) = &mut self.line {
            line.boundary = shift(line.boundary);
            line.after = line.after.map(lift);
        }
        let late = self.late.iter_mut().map(|l| &mut l.held);
        for held in self
            .unseen
            .iter_mut()
            .chain(late)
            .chain(&mut self.unresolved)
        {
            held.boundary = held.boundary.map(shift);
            held.after = held.after.map(lift);
        }
        self.enter_row = self.enter_row.map(lift);
    }

    /// The screen as the model holds it, as the escape sequences that draw
    /// it (vt100 `state_formatted`, cursor included): what a monitor shows first.
    pub fn screen_formatted(&mut self) -> Vec<u8> {
        self.catch_up();
        self.model.screen().state_formatted().into_bytes()
    }
}
