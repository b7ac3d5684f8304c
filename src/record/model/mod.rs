//! The command tracker's screen model: a [`vt100::Parser`] that skips, in
//! streamed text, what cannot reach the screen.
//!
//! Why: in a pty session every byte the target prints goes through the
//! model, and vt100 costs about 20 ns per byte of text (a cell write, width
//! and wrap checks per character): a `cat` of a log would spend most of the
//! relay's CPU there, though nearly all of it scrolls off before anything
//! reads the screen (the tracker reads it at a keystroke, an Enter, a late
//! echo and a monitor's snapshot, always between two pieces of output).
//!
//! How: a mirror of vte's state machine (states and transitions only, no
//! parameters but those of `CSI r`) finds *runs*: stretches of output, in
//! the parser's ground state, made only of printable text (UTF-8
//! included), CR, LF, TAB, SGR (`CSI … m`), EL (`CSI … K`) and escape
//! sequences with intermediates (`ESC ( B`, which vt100 ignores). Inside a
//! run the cursor never moves up, nothing but SGR changes state beyond the
//! cells, and on the main screen with the scroll region the whole screen,
//! every line break at the bottom row scrolls a blank row in. So when the
//! end of a run holds a CR followed by enough LFs that the screen scrolls
//! at least a full screen after it (`rows` LFs from the bottom row, more
//! from higher up), every row visible at the end was drawn after that CR,
//! from column 0, by the same bytes, whatever came before: the run's start
//! (`A`, up to that CR) can go unparsed. The model gets, instead of `A`:
//!
//! - the SGR sequences of `A` from its last full reset on (the drawing
//!   attributes are the only state text after them inherits);
//! - as many scrolls (`CSI n S`, which moves no cursor) as `A` would have
//!   scrolled (line feeds, and wraps from the known cursor column; while
//!   the count matters, below the cap, a run whose wraps depend on the
//!   width of non-ASCII characters is cut before the first line where they
//!   do, and above it a lower bound serves), up to a cap: vt100 counts scrolled rows as a "theoretical scrollback" that a
//!   later height increase pulls blank rows from, and the scroll counter
//!   the tracker keeps its boundaries with sees them. The cap (four times
//!   the largest height increase, topped up by up to four screens at each
//!   skip) covers any resize; only a window that grew by more than the
//!   model holds, with no output scrolling in between (right after the
//!   first skips of a session, or after many resizes), would get blank
//!   rows at the bottom where a plain parser puts them at the top
//!   (`ScreenModel::diverged` says so);
//!
//! and then the rest of the run, from that CR, as it came. The last printed
//! character (which `CSI b` repeats) is in that rest: a run whose rest
//! prints nothing is not skipped. Screen contents, cursor, attributes,
//! wrap flags and modes end up exactly as with the whole run fed; the
//! property test in `tests` checks it against a plain parser on random
//! streams.
//!
//! What the tracker must see line by line (a line forwarded before its
//! echo) it feeds a line at a time, and no single line scrolls a screen:
//! nothing is skipped there.
//!
//! Layout: this file finds runs and skips their start (`close_run`); `vte`
//! mirrors vte's states for the bytes outside runs; `scan` counts over a
//! run's bytes (line feeds, wraps, where its text begins).

mod scan;
#[cfg(test)]
mod tests;
mod utf8;
mod vte;

use std::num::NonZeroU16;
use std::ops::Range;

use scan::{advances, control_len, nth_from_end, plain_len, prints_ascii};
use vte::State;

/// Counts rows scrolled off the top of the main screen.
#[derive(Debug, Default)]
pub(super) struct Scrolls {
    /// Since the tracker last took them ([`ScreenModel::take_scrolled`]).
    pending: u32,
    /// Since the model was made: every such row also counts in vt100's
    /// theoretical scrollback.
    total: u64,
}

impl vt100::Callbacks for Scrolls {
    fn on_scroll(&mut self, _: vt100::capture::RowContents<'_>, alternate_screen: bool) {
        if !alternate_screen {
            self.pending = self.pending.saturating_add(1);
            self.total = self.total.saturating_add(1);
        }
    }
}

/// An SGR sequence inside the current run.
#[derive(Debug, Clone, Copy)]
struct Sgr {
    start: usize,
    end: usize,
    /// Starts with a full reset (`CSI m`, `CSI 0 m`, `CSI ; … m`): the
    /// attributes after it do not depend on those before.
    resets: bool,
}

/// Rows the model holds at most (the tracker caps a window's height here).
pub(super) const MAX_ROWS: u16 = 200;
/// Runs shorter than this are fed as they are: skipping has a fixed cost.
const MIN_SKIP: usize = 1024;
/// Theoretical scrollback the model is topped up to at skips: four times
/// the largest height increase.
const SCROLLBACK_CAP: u64 = 4 * MAX_ROWS as u64;
/// Scrolls added at one skip, at most, in screens: each costs a row reset,
/// and output must not buy more work than parsing it would cost (`ESC c`
/// followed by text, over and over).
const TOP_UP_SCREENS: u64 = 4;
/// Parameter bytes of a CSI kept for `CSI r`.
const MAX_PARAMS: usize = 64;

/// A vt100 parser that fast-forwards streamed text (see the module docs).
pub(super) struct ScreenModel {
    parser: vt100::Parser<Scrolls>,
    /// Skip what cannot reach the screen; false: a plain parser.
    fast: bool,
    state: State,
    /// Where the escape sequence being read began in the bytes being
    /// processed; `None` if it began in an earlier call.
    seq_start: Option<usize>,
    /// The sequence so far may belong to a run.
    seq_ok: bool,
    /// The CSI being read collected intermediates or a private marker.
    seq_odd: bool,
    params: Vec<u8>,
    /// The last call ended without a UTF-8 character cut (vte holds none).
    clean: bool,
    /// Start of the run being read, in the bytes being processed.
    run: Option<usize>,
    sgrs: Vec<Sgr>,
    /// The main screen's scroll region is the whole screen.
    main_full: bool,
    /// Theoretical scrollback vt100 gave back to height increases.
    pulled: u64,
    /// Scrolls skipped and not yet given to the model.
    owed: u64,
    /// A height increase pulled fewer blank rows than unskipped output
    /// would have (see the module docs).
    diverged: bool,
    /// Bytes of output not parsed.
    skipped: u64,
    /// vt100 panicked and the screen started over ([`Self::parse`]).
    restarted: bool,
    scratch: Vec<u8>,
    /// Stretches of the bytes being processed that vte reads as text in
    /// its ground state, in order: where [`utf8::rewrite`] applies.
    texts: Vec<Range<usize>>,
    /// The bytes being processed, rewritten for vte.
    rewritten: Vec<u8>,
    /// Pieces fed rewritten.
    #[cfg(test)]
    rewrites: u64,
}

impl std::fmt::Debug for ScreenModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScreenModel")
            .field("fast", &self.fast)
            .field("state", &self.state)
            .field("skipped", &self.skipped)
            .finish_non_exhaustive()
    }
}

impl ScreenModel {
    pub(super) fn new(rows: NonZeroU16, cols: NonZeroU16, fast: bool) -> Self {
        ScreenModel {
            // No scrollback: rows leaving the top are reported (and
            // counted) instead of kept.
            parser: vt100::Parser::new_with_callbacks(rows, cols, 0, Scrolls::default()),
            fast,
            state: State::Ground,
            seq_start: None,
            seq_ok: false,
            seq_odd: false,
            params: Vec::new(),
            clean: true,
            run: None,
            sgrs: Vec::new(),
            main_full: true,
            pulled: 0,
            owed: 0,
            diverged: false,
            skipped: 0,
            restarted: false,
            scratch: Vec::new(),
            texts: Vec::new(),
            rewritten: Vec::new(),
            #[cfg(test)]
            rewrites: 0,
        }
    }

    pub(super) fn screen(&self) -> &vt100::Screen {
        self.parser.screen()
    }

    /// Rows scrolled off the top of the main screen since the last call:
    /// as a plain parser counts them, or, after a skip, more than a screen
    /// for both.
    pub(super) fn take_scrolled(&mut self) -> u32 {
        std::mem::take(&mut self.parser.callbacks_mut().pending)
    }

    /// Bytes of output not parsed so far.
    #[cfg(test)]
    pub(super) fn skipped(&self) -> u64 {
        self.skipped
    }

    /// A height increase came out otherwise than without skipping (see the
    /// module docs).
    #[cfg(test)]
    pub(super) fn diverged(&self) -> bool {
        self.diverged
    }

    pub(super) fn resize(&mut self, rows: NonZeroU16, cols: NonZeroU16) {
        let (old_rows, old_cols) = self.parser.screen().size();
        let kept = self.parser.callbacks().total.saturating_sub(self.pulled);
        self.parser.set_size(rows, cols);
        if (old_rows, old_cols) != (rows, cols) {
            // vt100 resets both scroll regions when the size changes.
            self.main_full = true;
        }
        if rows > old_rows {
            let grow = u64::from(rows.get() - old_rows.get());
            let pulled = kept.min(grow);
            let wanted = kept.saturating_add(self.owed).min(grow);
            self.pulled += pulled;
            self.owed -= wanted - pulled;
            self.diverged |= wanted > pulled;
        }
    }

    /// Feeds the parser; if vt100 panics ([`super::vt`]), a fresh screen
    /// of the same size takes its place, as after a full reset, and the
    /// model parses every byte from then on (the fast path's mirror of
    /// vte's state no longer matches the new parser's).
    fn parse(&mut self, bytes: &[u8]) {
        if super::vt::process(&mut self.parser, bytes).is_ok() {
            return;
        }
        let (rows, cols) = self.parser.screen().size();
        tracing::warn!(
            rows = rows.get(),
            cols = cols.get(),
            "the screen model failed on the target's output and starts over"
        );
        self.start_over(0);
        self.fast = false;
    }

    /// A blank screen of the same size takes the parser's place, with
    /// `scrolled` more rows counted as scrolled away; the tracker is told
    /// ([`Self::take_restarted`]).
    fn start_over(&mut self, scrolled: u32) {
        let (rows, cols) = self.parser.screen().size();
        let mut counts = std::mem::take(self.parser.callbacks_mut());
        counts.pending = counts.pending.saturating_add(scrolled);
        self.parser = vt100::Parser::new_with_callbacks(rows, cols, 0, counts);
        self.main_full = true;
        self.pulled = self.parser.callbacks().total;
        self.owed = 0;
        self.diverged = true;
        self.restarted = true;
    }

    /// Output that is not text, too much of it to parse each time
    /// ([`utf8::looks_binary`]).
    pub(super) fn looks_binary(bytes: &[u8]) -> bool {
        utf8::looks_binary(bytes)
    }

    /// `len` bytes of output went by unparsed: what the screen shows after
    /// them is not known. The model starts over as a blank screen of the
    /// same size, every row scrolled away, and says it did
    /// ([`Self::take_restarted`]).
    pub(super) fn forget(&mut self, len: usize) {
        let rows = self.parser.screen().size().0;
        self.start_over(u32::from(rows.get()));
        self.state = State::Ground;
        self.clean = true;
        self.skipped += len as u64;
    }

    /// The screen started over since the last call ([`Self::parse`]).
    pub(super) fn take_restarted(&mut self) -> bool {
        std::mem::take(&mut self.restarted)
    }

    /// Output from the target.
    pub(super) fn process(&mut self, bytes: &[u8]) {
        if !self.fast {
            self.parse(bytes);
            return;
        }
        // NUL changes nothing in any state of vte's (vt100 ignores it as
        // a control, strings drop it), unless it ends a character vte
        // holds a piece of: `/dev/zero` in a pty is not parsed.
        if self.clean && bytes.iter().all(|&b| b == 0) {
            self.skipped += bytes.len() as u64;
            return;
        }
        let mut fed = 0;
        let mut i = 0;
        self.seq_start = None;
        self.run = None;
        self.texts.clear();
        while i < bytes.len() {
            if self.state == State::Ground {
                let plain = plain_len(bytes.get(i..).unwrap_or_default());
                if plain > 0 {
                    self.texts.push(i..i + plain);
                }
                if self.run.is_none() {
                    // In the ground state after a sequence or a control byte
                    // vte holds no piece of a character; at the start of a
                    // call it may (the last call cut one). vte completes it
                    // from the first three bytes of the next call, and what
                    // it prints depends on them all (it drops a character
                    // that follows the completed one within them): the
                    // model's first call must hold those three, so the run
                    // starts after an ASCII byte past them.
                    let from = if i > 0 || self.clean {
                        Some(0)
                    } else {
                        bytes.get(..plain).and_then(|p| {
                            p.iter()
                                .enumerate()
                                .skip(2)
                                .find(|&(_, &b)| b < 0x80)
                                .map(|(k, _)| k + 1)
                        })
                    };
                    if let Some(from) = from {
                        self.run = Some(i + from);
                        self.sgrs.clear();
                    }
                }
                i += plain;
                let Some(&b) = bytes.get(i) else { break };
                if b == 0x1b {
                    if let Some(end) = self.whole_csi(bytes, &mut fed, i) {
                        i = end;
                        continue;
                    }
                    self.begin_sequence(bytes, &mut fed, i);
                    i += 1;
                } else {
                    // Control bytes no run holds (`/dev/zero`): the run
                    // ends before them.
                    self.close_run(bytes, &mut fed, i);
                    i += control_len(bytes.get(i..).unwrap_or_default());
                }
                continue;
            }
            // Inside a string (OSC, DCS, SOS/PM/APC) only a few bytes
            // change the state: skip to the next one.
            let stops: &[u8] = match self.state {
                State::Osc => &[0x07, 0x18, 0x1a, 0x1b],
                State::DcsPassthrough => &[0x18, 0x1a, 0x1b, 0x9c],
                State::DcsIgnore | State::SosPmApc => &[0x18, 0x1a, 0x1b],
                _ => &[],
            };
            if !stops.is_empty() {
                let rest = bytes.get(i..).unwrap_or_default();
                match rest.iter().position(|b| stops.contains(b)) {
                    Some(n) => i += n,
                    None => break,
                }
            }
            let b = bytes.get(i).copied().unwrap_or_default();
            self.step(bytes, &mut fed, i, b);
            i += 1;
        }
        let end = match self.state {
            State::Ground => bytes.len(),
            _ => self.seq_start.unwrap_or(0),
        };
        self.close_run(bytes, &mut fed, end);
        self.parse_to(bytes, &mut fed, bytes.len());
        if let Some(&last) = bytes.last() {
            self.clean = self.state != State::Ground || last < 0x80;
        }
    }

    /// Feeds the model up to and including `bytes[i]`, to look at it there.
    fn catch_up(&mut self, bytes: &[u8], fed: &mut usize, i: usize) {
        self.parse_to(bytes, fed, i + 1);
    }

    /// Feeds the model `bytes[fed..end]`, its invalid UTF-8 rewritten
    /// where vte reads it as text (see [`utf8`]).
    fn parse_to(&mut self, bytes: &[u8], fed: &mut usize, end: usize) {
        let from = *fed;
        let end = end.max(from);
        *fed = end;
        let first = self.texts.partition_point(|t| t.end <= from);
        let mut out = std::mem::take(&mut self.rewritten);
        out.clear();
        let mut copied = from;
        for text in self.texts.get(first..).unwrap_or_default() {
            if text.start >= end {
                break;
            }
            let (a, b) = (text.start.max(from), text.end.min(end));
            let piece = bytes.get(a..b).unwrap_or_default();
            // vte may hold a character cut at `a` (cut by the last call, or
            // by this one's caller) and complete it from what follows.
            let held = if a > text.start {
                bytes.get(a - 1).is_some_and(|&p| p >= 0x80)
            } else {
                a == 0 && !self.clean
            };
            let keep = if held { utf8::held_head(piece) } else { 0 };
            // An ASCII byte (a control or ESC) ends a stretch of text
            // that stops before the end of the bytes.
            let closed = b == text.end && b < bytes.len();
            let mark = out.len();
            out.extend_from_slice(bytes.get(copied..a).unwrap_or_default());
            if utf8::rewrite(piece, keep, closed, &mut out) {
                copied = b;
            } else {
                out.truncate(mark);
            }
        }
        if copied == from {
            self.rewritten = out;
            self.parse(bytes.get(from..end).unwrap_or_default());
            return;
        }
        out.extend_from_slice(bytes.get(copied..end).unwrap_or_default());
        #[cfg(test)]
        {
            self.rewrites += 1;
        }
        self.parse(&out);
        self.rewritten = out;
    }

    /// The run being read ends at `end`: when it is long enough, its start
    /// up to the last CR that a screenful of line feeds follows is given
    /// to the model as its attributes and scrolls only.
    fn close_run(&mut self, bytes: &[u8], fed: &mut usize, end: usize) {
        let Some(start) = self.run.take() else {
            return;
        };
        if end.saturating_sub(start) < MIN_SKIP || !self.main_full {
            return;
        }
        let Some(run) = bytes.get(start..end) else {
            return;
        };
        // The model up to the run: where its cursor is.
        self.parse_to(bytes, fed, start);
        let screen = self.parser.screen();
        if screen.alternate_screen() {
            return;
        }
        let (rows, cols) = screen.size();
        let (rows, cols) = (rows.get(), cols.get());
        let (row, col) = screen.cursor_position();
        // From the cursor's row, down to the bottom, then a full screen of
        // scrolls.
        let feeds = usize::from(rows) + usize::from(rows - 1 - row.min(rows - 1));
        let Some(last_feeds) = nth_from_end(run, b'\n', feeds) else {
            return;
        };
        let Some(cut) = run
            .get(..last_feeds)
            .and_then(|r| r.iter().rposition(|&b| b == b'\r'))
        else {
            return;
        };
        if cut < MIN_SKIP || !prints_ascii(run.get(cut..).unwrap_or_default()) {
            return;
        }
        // Scrolls: what the model has towards the cap, the rest owed.
        let kept = self.parser.callbacks().total.saturating_sub(self.pulled);
        let counted = advances(run.get(..cut).unwrap_or_default(), col, cols);
        let (cut, scrolled) =
            if counted.exact_end == cut || kept + self.owed + counted.at_least >= SCROLLBACK_CAP {
                // Exact, or more than the model keeps anyway: a lower bound
                // serves (the owed rows only matter below the cap).
                (cut, counted.at_least)
            } else {
                (counted.exact_end, counted.exact)
            };
        if cut < MIN_SKIP {
            return;
        }
        let skip_end = start + cut;
        let scratch = &mut self.scratch;
        scratch.clear();
        let sgrs = self
            .sgrs
            .get(..self.sgrs.partition_point(|s| s.end <= skip_end))
            .unwrap_or_default();
        let from = sgrs.iter().rposition(|s| s.resets).unwrap_or(0);
        for sgr in sgrs.get(from..).unwrap_or_default() {
            scratch.extend_from_slice(bytes.get(sgr.start..sgr.end).unwrap_or_default());
        }
        let owed = self.owed.saturating_add(scrolled);
        let top_up = owed
            .min(SCROLLBACK_CAP.saturating_sub(kept))
            .min(TOP_UP_SCREENS * u64::from(rows));
        self.owed = owed - top_up;
        let mut left = top_up;
        while left > 0 {
            let n = left.min(u64::from(rows));
            scratch.extend_from_slice(format!("\x1b[{n}S").as_bytes());
            left -= n;
        }
        let scratch = std::mem::take(&mut self.scratch);
        self.parse(&scratch);
        self.scratch = scratch;
        *fed = skip_end;
        self.skipped += cut as u64;
    }
}
