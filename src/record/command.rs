//! Command extraction: which command line a person ran, read from a vt100
//! model of their screen, decided before the Enter reaches the target so the
//! relay can apply command filters.
//!
//! How: target output feeds a [`vt100::Parser`] (which skips streamed text
//! that scrolls off before it could be read: `model.rs`). The first keystroke at a
//! prompt marks the cursor as the prompt boundary; at Enter the command is
//! the screen text from the boundary to the end of the (wrapped) line the
//! cursor is on. History recall, tab completion and line editing are the
//! shell's business and come for free, because what counts is what the
//! shell drew. Nothing is extracted while the target shows the alternate
//! screen (vim, less, top), and input typed with echo off (passwords) draws
//! nothing, so it yields nothing.
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
//! what it shows at every look is the same.
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

    /// A key typed on the alternate screen, as line editing would take it.
    fn full_screen_key(&mut self, b: u8) {
        let typed = &mut self.full_screen_typed;
        match b {
            0x7f | 0x08 => {
                // Back over one character (a UTF-8 sequence is one).
                while let Some(last) = typed.pop() {
                    if last & 0xc0 != 0x80 {
                        break;
                    }
                }
            }
            0x15 | 0x03 => typed.clear(),
            b if (b >= 0x20 || b == b'\t') && typed.len() < FULL_SCREEN_TYPED => typed.push(b),
            _ => {}
        }
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
            let mut batch = std::mem::take(&mut self.deferred);
            batch.extend_from_slice(bytes);
            self.feed(&batch);
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

    /// Looks at the screen for the echo of a line forwarded before its
    /// echo: the first of them, in order, that the cursor follows.
    fn look_for_late(&mut self) {
        let screen = self.model.screen();
        let (row, col) = screen.cursor_position();
        let cursor_line = screen.contents_between(self.line_start(row), 0, row, col);
        let cursor_line = cursor_line.trim_end();
        // The echoes come in order; one whose line went by unseen (a
        // password typed ahead never shows) must not hide those after it.
        let found = self.late.iter().enumerate().find_map(|(i, late)| {
            let typed = late.held.typed.as_deref().unwrap_or_default();
            if !cursor_line.ends_with(typed) {
                return None;
            }
            // What the cursor follows may be the echo of the keys of the
            // line being typed now.
            if self
                .line
                .as_ref()
                .is_some_and(|l| l.typed.ends_with(typed.as_bytes()))
            {
                return None;
            }
            let expected = match self.known_prompt.as_str() {
                "" => &late.held.prompt,
                known => known,
            };
            self.shows_typed(typed, &late.held)
                .filter(|prompt| prompt_fits(prompt, expected))
                .map(|prompt| (i, prompt))
        });
        let Some((i, prompt)) = found else {
            for late in &mut self.late {
                late.looks = late.looks.saturating_sub(1);
            }
            self.late.retain(|l| l.looks > 0);
            return;
        };
        self.late.drain(..i);
        let late = self.late.pop_front().expect("found");
        if !prompt.is_empty() {
            self.known_prompt.clone_from(&prompt);
            self.prompt_hint.clone_from(&prompt);
        }
        let command = late.held.typed.unwrap_or_default();
        let previous = self
            .running
            .take()
            .map(|r| complete(r, Some(&prompt), Some(&command)));
        self.running = Some(Running {
            command: command.clone(),
            at: late.at,
            capture: Stripper::new(OUTPUT_CAPTURE_LIMIT),
        });
        self.late_seen.push(LateCommand {
            command,
            at: late.at,
            previous,
        });
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

    /// Input from the person: split at Enter keys, each with its command.
    pub fn input(&mut self, bytes: &[u8]) -> Vec<Input> {
        self.catch_up();
        let mut out = Vec::new();
        let mut data = Vec::new();
        for &b in bytes {
            // A CR or LF inside a key sequence is still an Enter: terminals
            // execute C0 controls met inside a sequence (ECMA-48), and
            // reporting an Enter too many is safe where one too few is not.
            if (b == b'\r' || b == b'\n')
                && matches!(self.keys, Keys::Escape | Keys::Csi(_) | Keys::Ss3)
            {
                self.keys = Keys::Ground;
                self.unreliable();
            }
            match &mut self.keys {
                Keys::Paste(matched) => {
                    let matched = *matched;
                    self.paste_byte(matched, b);
                    data.push(b);
                    continue;
                }
                Keys::Escape => {
                    self.keys = match b {
                        b'[' => Keys::Csi(Vec::new()),
                        b'O' => Keys::Ss3,
                        0x1b => Keys::Escape,
                        // Alt-key: an editing command the model cannot follow.
                        _ => {
                            self.unreliable();
                            Keys::Ground
                        }
                    };
                    data.push(b);
                    continue;
                }
                Keys::Csi(params) => {
                    data.push(b);
                    if (0x40..=0x7e).contains(&b) {
                        // A paste counts only when the target asked for
                        // bracketed paste: otherwise the target reads its
                        // Enter keys as Enter keys, and so must we.
                        let paste =
                            b == b'~' && params == b"200" && self.model.screen().bracketed_paste();
                        self.keys = if paste { Keys::Paste(0) } else { Keys::Ground };
                        if !paste {
                            self.unreliable();
                        }
                    } else if params.len() < 16 {
                        params.push(b);
                    }
                    continue;
                }
                Keys::Ss3 => {
                    self.keys = Keys::Ground;
                    self.unreliable();
                    data.push(b);
                    continue;
                }
                Keys::Ground => {}
            }
            if b == b'\r' || b == b'\n' {
                // CR LF from one key press is one Enter.
                if b == b'\n'
                    && data.is_empty()
                    && let Some(Input::Enter { raw, .. } | Input::EnterUnseen { raw, .. }) =
                        out.last_mut()
                    && raw.as_slice() == b"\r"
                {
                    raw.push(b'\n');
                    continue;
                }
                if !data.is_empty() {
                    out.push(Input::Data(std::mem::take(&mut data)));
                }
                out.push(self.enter(vec![b]));
            } else {
                self.keystroke(b);
                data.push(b);
            }
        }
        if !data.is_empty() {
            out.push(Input::Data(data));
        }
        out
    }

    fn unreliable(&mut self) {
        if let Some(line) = &mut self.line {
            line.reliable = false;
        }
    }

    /// A key other than Enter, outside escape sequences and pastes.
    fn keystroke(&mut self, b: u8) {
        self.input_after_output = true;
        if b == 0x1b {
            self.keys = Keys::Escape;
        }
        if self.model.screen().alternate_screen() {
            if b != 0x1b {
                self.full_screen_key(b);
            }
            return;
        }
        if b == 0x03 {
            // Ctrl-C abandons the line.
            self.line = None;
            return;
        }
        if self.line.is_none() {
            self.start_line();
        }
        let Some(line) = &mut self.line else { return };
        match b {
            0x7f | 0x08 | 0x15 | 0x17 => line.edited = true,
            _ => {}
        }
        match b {
            0x7f | 0x08 => {
                while let Some(last) = line.typed.pop() {
                    if last & 0xc0 != 0x80 {
                        break;
                    }
                }
            }
            0x15 => line.typed.clear(),
            0x17 => {
                while line.typed.last().is_some_and(|c| *c == b' ') {
                    line.typed.pop();
                }
                while line.typed.last().is_some_and(|c| *c != b' ') {
                    line.typed.pop();
                }
            }
            // Ctrl-L: the shell clears the screen and redraws the prompt
            // and the line on the top row.
            0x0c => line.boundary.0 = 0,
            0x1b => {}
            0x00..=0x1f => line.reliable = false,
            _ => push_typed(line, b),
        }
    }

    /// One byte inside a bracketed paste: text for the keystroke model,
    /// until the end marker.
    fn paste_byte(&mut self, matched: usize, b: u8) {
        if PASTE_END.get(matched) == Some(&b) {
            self.keys = if matched + 1 == PASTE_END.len() {
                Keys::Ground
            } else {
                Keys::Paste(matched + 1)
            };
            return;
        }
        self.keys = Keys::Paste(usize::from(b == 0x1b));
        self.input_after_output = true;
        if self.model.screen().alternate_screen() {
            if b != 0x1b {
                self.full_screen_key(b);
            }
            return;
        }
        if self.line.is_none() {
            // A paste as the first key: the boundary is the cursor, like any key.
            self.start_line();
        }
        if let Some(line) = &mut self.line {
            // Bytes that looked like the start of the end marker were text.
            for &p in PASTE_END.get(..matched).unwrap_or_default() {
                paste_text(line, p);
            }
            paste_text(line, b);
        }
    }

    /// The first key at a prompt: the cursor is the boundary, unless the
    /// target has not answered the previous Enter yet (type-ahead).
    fn start_line(&mut self) {
        let screen = self.model.screen();
        let (row, col) = screen.cursor_position();
        let stale = self.after_enter;
        let prompt = if stale {
            self.prompt_hint.clone()
        } else {
            let prompt = screen.contents_between(row, 0, row, col).trim().to_string();
            // A line begun on an empty row or on a row of output (typed
            // while a command's output ran) or in a prompt half drawn says
            // nothing about the prompt: the hint keeps the last.
            if !prompt.is_empty()
                && (self.known_prompt.is_empty() || prompt_fits(&prompt, &self.known_prompt))
            {
                self.prompt_hint.clone_from(&prompt);
            }
            prompt
        };
        // While an earlier Enter is still held, the row it will go out on
        // is not known yet: `resolve_pending` fills it in.
        let after = if stale && self.unseen.is_empty() {
            self.enter_row
        } else {
            None
        };
        self.line = Some(Line {
            boundary: (row, col),
            prompt,
            stale,
            after,
            typed: Vec::new(),
            reliable: true,
            edited: false,
        });
    }

    /// The cursor row, as [`Self::enter_row`] counts.
    fn cursor_row(&self) -> i32 {
        i32::from(self.model.screen().cursor_position().0)
    }

    fn enter(&mut self, raw: Vec<u8>) -> Input {
        let echo_pending = std::mem::replace(&mut self.input_after_output, true);
        self.after_enter = true;
        let line = self.line.take();
        if self.model.screen().alternate_screen() {
            self.enter_row = Some(self.cursor_row());
            let typed = std::mem::take(&mut self.full_screen_typed);
            return Input::EnterFullScreen {
                typed: String::from_utf8_lossy(&typed).into_owned(),
                raw,
            };
        }
        let Some(line) = line else {
            // Enter alone at a prompt: an empty line.
            if self.unseen.is_empty() {
                self.enter_row = Some(self.cursor_row());
            }
            return Input::Enter { command: None, raw };
        };
        let typed = line.typed_text();
        let held = Held {
            boundary: (!line.stale).then_some(line.boundary),
            prompt: line.prompt,
            after: line.after,
            typed: typed.clone(),
            edited: line.edited,
        };
        if !line.stale && !echo_pending && self.unseen.is_empty() {
            // Output came after the last key, but a fast typist's keys may
            // still be partly unechoed: a line the keys fully determine is
            // seen only once the screen shows all of it.
            let decided = self.read_held(&held, false);
            if decided.is_some() || typed.is_none() {
                self.enter_row = Some(self.cursor_row());
                let command = decided.map(|(command, prompt, exact)| {
                    self.decided_prompt(prompt, exact);
                    command
                });
                return Input::Enter { command, raw };
            }
        }
        // A relay that never resolves must not grow this without bound.
        if self.unseen.len() >= MAX_UNSEEN {
            self.unseen.pop_front();
        }
        self.unseen.push_back(held);
        Input::EnterUnseen { typed, raw }
    }

    /// The screen as the model holds it, as the escape sequences that draw
    /// it (vt100 `state_formatted`, cursor included): what a monitor shows first.
    pub fn screen_formatted(&mut self) -> Vec<u8> {
        self.catch_up();
        self.model.screen().state_formatted().into_bytes()
    }

    /// The line of the oldest unresolved [`Input::EnterUnseen`] as the
    /// screen shows it now; poll it while holding that Enter (see the module
    /// docs). `None` while nothing was echoed (echo off: a password), in the
    /// alternate screen, while the echo of the typed keys is incomplete, or
    /// for a line typed ahead until the shell has drawn it below the
    /// previous one.
    pub fn pending_line(&mut self) -> Option<String> {
        self.catch_up();
        self.unseen
            .front()
            .and_then(|held| self.read_held(held, false).map(|(line, ..)| line))
    }

    /// Ends the wait for the oldest [`Input::EnterUnseen`]: its line as the
    /// screen shows it now (as [`Self::pending_line`], except that a typed
    /// line whose echo has begun but not finished counts), and forgets it.
    /// Call it once per `EnterUnseen`, in order, just before forwarding
    /// that Enter (or refusing it).
    pub fn resolve_pending(&mut self) -> Option<String> {
        self.catch_up();
        let held = self.unseen.pop_front()?;
        let decided = self.read_held(&held, true);
        // The Enter goes out now (or a Ctrl-C instead): the next line is
        // drawn below this row once the target answers.
        self.after_enter = true;
        let row = self.cursor_row();
        self.enter_row = Some(row);
        match self.unseen.front_mut() {
            Some(next) => {
                next.after.get_or_insert(row);
            }
            None => {
                if let Some(line) = self.line.as_mut().filter(|l| l.stale) {
                    line.after.get_or_insert(row);
                }
            }
        }
        let Some((line, prompt, exact)) = decided else {
            // Echo off (a password), or an echo later than the wait.
            self.unresolved = held
                .typed
                .as_ref()
                .is_some_and(|t| !t.contains('\n'))
                .then_some(held);
            return None;
        };
        self.unresolved = None;
        self.decided_prompt(prompt, exact);
        Some(line)
    }

    /// The prompt of a decided line, to trim from the previous command's
    /// output; `exact`: the screen showed it left of exactly the typed keys.
    fn decided_prompt(&mut self, prompt: String, exact: bool) {
        if exact && !prompt.is_empty() {
            self.known_prompt.clone_from(&prompt);
            self.prompt_hint.clone_from(&prompt);
        }
        self.last_prompt = Some(prompt);
    }

    /// The relay forwarded the Enter [`Self::resolve_pending`] just
    /// resolved to `None`, at `at` since the session start. When its keys
    /// determined the line, the line is logged after all, should the shell
    /// draw exactly those keys later (a command typed ahead behind one that
    /// ran longer than the wait, or an echo delayed by load): see
    /// [`Self::take_late`]. A password typed with echo off never shows, so
    /// it is never logged; a line looked for in vain is dropped after
    /// [`LATE_LOOKS`] rows of output or when a later command starts.
    pub fn expect_echo(&mut self, at: Duration) {
        self.catch_up();
        let Some(held) = self.unresolved.take() else {
            return;
        };
        if self.late.len() >= MAX_LATE {
            self.late.pop_front();
        }
        self.late.push_back(Late {
            held,
            at,
            looks: LATE_LOOKS,
        });
    }

    /// The lines forwarded before their echo that the screen has shown
    /// since the last call, oldest first. Each now runs (its output is
    /// captured), and ends the command before it.
    pub fn take_late(&mut self) -> Vec<LateCommand> {
        std::mem::take(&mut self.late_seen)
    }

    /// (command, prompt) for a line at its Enter, or `None` while the
    /// screen does not show it. The keystrokes decide when they fully
    /// determine the line and the screen shows them at the cursor (the
    /// shell echoed exactly those keys); otherwise the screen decides, from
    /// the boundary or, for a line typed ahead, from after the prompt.
    /// `last`: the wait is over, and a line whose echo began but is not
    /// complete is taken as typed (echo is on, so it is no password).
    /// The third value says the keys decided (the screen showed exactly
    /// them, after the prompt given).
    fn read_held(&self, held: &Held, last: bool) -> Option<(String, String, bool)> {
        let screen = self.model.screen();
        if screen.alternate_screen() {
            return None;
        }
        let typed = held.typed.as_deref().filter(|t| !t.contains('\n'));
        if let Some(typed) = typed
            && let Some(prompt) = self.shows_typed(typed, held)
        {
            return Some((typed.to_string(), prompt, true));
        }
        if !self.late.is_empty() {
            // Lines sent before this one have not shown yet: a line on the
            // screen that is not exactly this one's keys may be theirs.
            return None;
        }
        let (boundary, prompt) = match held.boundary {
            Some(boundary) => (boundary, held.prompt.clone()),
            None => self.after_prompt(held)?,
        };
        let shown = self.read_line(boundary)?;
        if let Some(typed) = typed {
            if shown.contains('\n') {
                // Rows of output between the boundary and the cursor: the
                // line started while a command still ran, and the typed
                // keys are not (yet) at the cursor.
                return None;
            }
            if typed.starts_with(&shown) {
                // The echo is under way.
                return last.then(|| (typed.to_string(), prompt, false));
            }
            if let Some(start) = echo_start(&shown, typed) {
                // The first key came while the prompt was still being
                // drawn: the boundary is inside the prompt, and the screen
                // shows the prompt's end and the echo under way.
                let rest = shown.get(..start).unwrap_or_default();
                return last.then(|| {
                    let prompt = format!("{prompt}{}", rest.trim_end());
                    (typed.to_string(), prompt, false)
                });
            }
            if !held.edited {
                // Printable keys alone make the line what they say: the
                // screen can confirm it, never replace it (what it shows is
                // output the line began on, not yet the echo).
                return None;
            }
        }
        // The shell shows something other than the keys (a line editor
        // whose editing the key model does not follow): it decides.
        Some((shown, prompt, false))
    }

    /// Whether the screen shows `typed` just left of the cursor, on the
    /// line the held Enter belongs to; the prompt (what precedes it on that
    /// line) if so.
    fn shows_typed(&self, typed: &str, held: &Held) -> Option<String> {
        let screen = self.model.screen();
        let (row, col) = screen.cursor_position();
        let first = self.line_start(row);
        if held.boundary.is_none() && i32::from(first) <= held.after? {
            // Typed ahead: only on a line the shell drew after the
            // previous Enter went out.
            return None;
        }
        let shown = screen.contents_between(first, 0, row, col);
        let prompt = shown.trim_end().strip_suffix(typed)?;
        // From the boundary on: never text left of it (a password prompt
        // that happens to end with the password).
        if let Some((brow, bcol)) = held.boundary {
            let from = screen.contents_between(brow, bcol, row, col);
            if !from.trim_end().ends_with(typed) {
                return None;
            }
        }
        Some(prompt.trim().to_string())
    }

    /// The first row of the (wrapped) line holding `row`.
    fn line_start(&self, row: u16) -> u16 {
        let screen = self.model.screen();
        let mut first = row;
        while first > 0 && screen.row_wrapped(first - 1) {
            first -= 1;
        }
        first
    }

    /// For a line typed ahead: the boundary just after the expected prompt
    /// on the cursor's line, if that line was drawn after the previous
    /// Enter went out and starts with the prompt.
    fn after_prompt(&self, held: &Held) -> Option<((u16, u16), String)> {
        let after = held.after?;
        if held.prompt.is_empty() {
            return None;
        }
        let screen = self.model.screen();
        let (row, _) = screen.cursor_position();
        let first = self.line_start(row);
        if i32::from(first) <= after {
            return None;
        }
        let (_, cols) = screen.size();
        let mut text = String::new();
        for col in 0..cols.get() {
            let cell = screen.cell(first, col)?;
            if cell.is_wide_continuation() {
                continue;
            }
            if cell.has_contents() {
                text.push_str(cell.contents());
            } else {
                text.push(' ');
            }
            if text.trim_start() == held.prompt {
                return Some(((first, col + 1), held.prompt.clone()));
            }
            if !held.prompt.starts_with(text.trim_start()) {
                return None;
            }
        }
        None
    }

    /// Screen text from `boundary` to the end of the line holding the
    /// cursor (following wrapped rows), without trailing suggestions.
    fn read_line(&self, boundary: (u16, u16)) -> Option<String> {
        let screen = self.model.screen();
        let (rows, cols) = screen.size();
        let (rows, cols) = (rows.get(), cols.get());
        let cursor = screen.cursor_position();
        let mut end = cursor.0.max(boundary.0);
        while end + 1 < rows && screen.row_wrapped(end) {
            end += 1;
        }
        // (text, is a suggestion) per cell; None for a row break.
        let mut cells: Vec<Option<(String, bool)>> = Vec::new();
        for row in boundary.0..=end {
            let start = if row == boundary.0 { boundary.1 } else { 0 };
            for col in start..cols {
                let Some(cell) = screen.cell(row, col) else {
                    break;
                };
                if cell.is_wide_continuation() {
                    continue;
                }
                if !cell.has_contents() {
                    cells.push(Some((" ".to_string(), false)));
                    continue;
                }
                let suggestion =
                    (row, col) >= cursor && (cell.dim() || cell.fgcolor() == vt100::Color::Idx(8));
                cells.push(Some((cell.contents().to_string(), suggestion)));
            }
            if row < end && !screen.row_wrapped(row) {
                cells.push(None);
            }
        }
        // Drop what trails the last real character: blanks and suggestions.
        let keep = cells
            .iter()
            .rposition(|c| matches!(c, Some((text, false)) if text != " "))
            .map_or(0, |i| i + 1);
        cells.truncate(keep);
        let mut text = String::new();
        for cell in cells {
            match cell {
                Some((t, _)) => text.push_str(&t),
                None => text.push('\n'),
            }
        }
        let lines: Vec<&str> = text.lines().map(str::trim_end).collect();
        let command = lines.join("\n").trim().to_string();
        (!command.is_empty()).then_some(command)
    }

    /// The relay let `command` run (or logged it as refused): capture the
    /// output that follows it. Returns the previous command, completed.
    pub fn started(&mut self, command: String, at: Duration) -> Option<CompletedCommand> {
        self.catch_up();
        // The shell has moved on: lines still waiting for their echo will
        // not be told from this one's.
        self.late.clear();
        self.unresolved = None;
        let prompt = self.last_prompt.take();
        let previous = self
            .running
            .take()
            .map(|r| complete(r, prompt.as_deref(), Some(&command)));
        self.running = Some(Running {
            command,
            at,
            capture: Stripper::new(OUTPUT_CAPTURE_LIMIT),
        });
        previous
    }

    /// The relay refused `command` (it never reached the target): the
    /// command that ran before it is complete, its output ending where the
    /// refused line was typed; the refusal and what the target prints for
    /// the Ctrl-C sent instead belong to no command. Returns that previous
    /// command, completed.
    pub fn refused(&mut self, command: &str) -> Option<CompletedCommand> {
        self.catch_up();
        self.late.clear();
        self.unresolved = None;
        let prompt = self.last_prompt.take();
        self.running
            .take()
            .map(|r| complete(r, prompt.as_deref(), Some(command)))
    }

    /// The relay held back the Enter it just resolved, unread (a line typed
    /// ahead with keys that do not say what it is): the keys already sent
    /// stay in the shell's line, so the line goes on, and its next Enter
    /// reads it from the screen, after the prompt, below where it was held.
    pub fn withheld(&mut self) {
        self.catch_up();
        match self.line.as_mut() {
            // Keys typed after the held Enter joined the same shell line.
            Some(line) => {
                line.reliable = false;
                line.stale = true;
                line.after = line.after.or(self.enter_row);
            }
            None => {
                let (row, col) = self.model.screen().cursor_position();
                self.line = Some(Line {
                    boundary: (row, col),
                    prompt: self.prompt_hint.clone(),
                    stale: true,
                    after: self.enter_row,
                    typed: Vec::new(),
                    reliable: false,
                    edited: false,
                });
            }
        }
    }

    /// The session ended: the last command, completed.
    pub fn finish(&mut self) -> Option<CompletedCommand> {
        self.catch_up();
        self.running.take().map(|r| complete(r, None, None))
    }
}

/// Where the echo of `typed` begins in `shown`, a line read from a boundary
/// that fell inside the prompt: after a space, the rest is a start of
/// `typed`.
fn echo_start(shown: &str, typed: &str) -> Option<usize> {
    shown
        .char_indices()
        .filter(|&(i, c)| c == ' ' && i + 1 < shown.len())
        .map(|(i, _)| i + 1)
        .find(|&start| {
            shown
                .get(start..)
                .is_some_and(|rest| typed.starts_with(rest))
        })
}

/// Whether `shown`, the text left of a line drawn late, can be the prompt
/// the line was typed at (`expected`, when known): a shell prompt keeps its
/// last character (`$`, `#`, `%`, `>`) when its directory part changes,
/// where a password prompt that happens to end with the password does not.
fn prompt_fits(shown: &str, expected: &str) -> bool {
    match expected.chars().last() {
        Some(last) => shown.ends_with(last),
        None => !shown.is_empty(),
    }
}

/// Pasted bytes as the line editor inserts them: newlines kept, other
/// control bytes (and the ESC of a would-be end marker) left out.
fn paste_text(line: &mut Line, b: u8) {
    match b {
        b'\r' | b'\n' => push_typed(line, b'\n'),
        b'\t' => push_typed(line, b' '),
        0x00..=0x1f | 0x7f => {}
        _ => push_typed(line, b),
    }
}

fn push_typed(line: &mut Line, b: u8) {
    if line.typed.len() < TYPED_LIMIT {
        line.typed.push(b);
    } else {
        line.reliable = false;
    }
}

/// The captured output of `r`, without the echo of its own Enter at the
/// start and, when it can be recognised, the next prompt and the echo of
/// the next command at the end.
fn complete(r: Running, prompt: Option<&str>, next: Option<&str>) -> CompletedCommand {
    let truncated = r.capture.truncated();
    let mut output = r.capture.text();
    if output.starts_with('\n') {
        output.remove(0);
    }
    if !truncated && let Some(prompt) = prompt.filter(|p| !p.is_empty()) {
        // The last occurrence followed by nothing or by the next command is
        // the prompt; an earlier one may be output or part of the command.
        let cut = output.rmatch_indices(prompt).map(|(i, _)| i).find(|&i| {
            let rest = output.get(i + prompt.len()..).unwrap_or_default().trim();
            rest.is_empty() || next.is_some_and(|n| n.trim() == rest)
        });
        if let Some(i) = cut {
            output.truncate(i);
        }
    }
    let end = output.trim_end().len();
    output.truncate(end);
    CompletedCommand {
        command: r.command,
        at: r.at,
        output,
        output_truncated: truncated,
    }
}
