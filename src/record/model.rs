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

use std::num::NonZeroU16;

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

/// vte 0.15's parser states, which the mirror follows byte for byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Ground,
    Escape,
    EscapeIntermediate,
    CsiEntry,
    CsiParam,
    CsiIntermediate,
    CsiIgnore,
    DcsEntry,
    DcsParam,
    DcsIntermediate,
    DcsPassthrough,
    DcsIgnore,
    Osc,
    SosPmApc,
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

/// Bytes a run holds outside escape sequences.
fn plain(b: u8) -> bool {
    (b >= 0x20 && b != 0x7f) || b == b'\r' || b == b'\n' || b == b'\t'
}

/// How many bytes at the start of `bytes` are [`plain`].
fn plain_len(bytes: &[u8]) -> usize {
    super::strip::leading(bytes, plain)
}

/// How many bytes at the start of `bytes` are control bytes (not
/// [`plain`], not ESC).
fn control_len(bytes: &[u8]) -> usize {
    super::strip::leading(bytes, |b| !plain(b) && b != 0x1b)
}

/// Past the escape sequence starting at `bytes[i]` (ESC), inside a run:
/// a CSI ends at its final byte, an escape with intermediates at the byte
/// after them.
fn skip_sequence(bytes: &[u8], mut i: usize) -> usize {
    i += 1;
    if bytes.get(i) == Some(&b'[') {
        i += 1;
        while bytes.get(i).is_some_and(|b| !(0x40..=0x7e).contains(b)) {
            i += 1;
        }
    } else {
        while bytes.get(i).is_some_and(|b| (0x20..=0x2f).contains(b)) {
            i += 1;
        }
    }
    i + 1
}

/// Whether a piece of a run prints a printable ASCII character.
fn prints_ascii(bytes: &[u8]) -> bool {
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        match b {
            0x1b => i = skip_sequence(bytes, i),
            0x20..=0x7e => return true,
            _ => i += 1,
        }
    }
    false
}

/// The rows a piece of a run (`a`) moves the cursor down, from column
/// `col` of `cols`: line feeds and wraps.
#[derive(Debug, PartialEq, Eq)]
struct Advances {
    /// `a.len()` when every wrap is certain; otherwise the last CR before
    /// the first wrap that depends on the width of non-ASCII characters
    /// (taken as at most two columns each), 0 if none.
    exact_end: usize,
    /// The rows before `exact_end`.
    exact: u64,
    /// The rows of all of `a`, at least (uncertain wraps not counted).
    at_least: u64,
}

fn advances(a: &[u8], col: u16, cols: u16) -> Advances {
    let cols = u32::from(cols);
    let mut col = u32::from(col);
    // `col` is the column when known, an upper bound otherwise (after a
    // non-ASCII character, until the next CR).
    let mut known = true;
    let mut rows = 0u64;
    let mut last_cr = (0, 0);
    let mut first_doubt = None;
    let mut i = 0;
    while let Some(&b) = a.get(i) {
        match b {
            0x1b => {
                i = skip_sequence(a, i);
                continue;
            }
            b'\r' => {
                last_cr = (i, rows);
                col = 0;
                known = true;
            }
            b'\n' => rows += 1,
            b'\t' => col = (col - col % 8 + 8).min(cols - 1),
            0x20..=0x7e => {
                // A stretch of printable ASCII at once: one column each, a
                // wrap before a character that finds the cursor past the
                // last column.
                let n = a
                    .get(i..)
                    .unwrap_or_default()
                    .iter()
                    .take_while(|b| (0x20..=0x7e).contains(*b))
                    .count();
                let n32 = u32::try_from(n).unwrap_or(u32::MAX);
                if known {
                    if col >= cols {
                        rows += 1;
                        col = 0;
                    }
                    let wraps = (col + n32 - 1) / cols;
                    rows += u64::from(wraps);
                    col = col + n32 - wraps * cols;
                } else {
                    if col + n32 > cols {
                        first_doubt.get_or_insert(last_cr);
                    }
                    col = col.saturating_add(n32);
                }
                i += n;
                continue;
            }
            // UTF-8 continuation bytes (and invalid ones, drawn as nothing).
            0x80..=0xbf => {}
            // The first byte of a character of 0 to 2 columns, or one that
            // widens the cell before it.
            _ => {
                if col + 2 > cols {
                    first_doubt.get_or_insert(last_cr);
                }
                known = false;
                col += 2;
            }
        }
        i += 1;
    }
    let (exact_end, exact) = first_doubt.unwrap_or((a.len(), rows));
    Advances {
        exact_end,
        exact,
        at_least: rows,
    }
}

/// The position of the `n`th `byte` from the end of `bytes`.
fn nth_from_end(bytes: &[u8], byte: u8, n: usize) -> Option<usize> {
    if n == 0 {
        return Some(bytes.len());
    }
    bytes
        .iter()
        .enumerate()
        .rev()
        .filter(|&(_, &b)| b == byte)
        .nth(n - 1)
        .map(|(i, _)| i)
}

/// `CSI top ; bottom r` sets the whole screen as the scroll region (vt100's
/// reading of the parameters); `None` when the parameters are unusual.
fn full_region(params: &[u8], rows: u16) -> Option<bool> {
    if params.len() >= MAX_PARAMS || params.contains(&b':') {
        return None;
    }
    let mut groups = params.split(|&b| b == b';').map(|group| {
        group.iter().fold(0u16, |v, &d| {
            v.saturating_mul(10).saturating_add(u16::from(d - b'0'))
        })
    });
    let top = groups.next().unwrap_or(0).max(1);
    let bottom = match groups.next().unwrap_or(0) {
        0 => rows,
        b => b,
    };
    let (top, bottom) = (top - 1, (bottom - 1).min(rows - 1));
    Some(top >= bottom || (top == 0 && bottom == rows - 1))
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
        let counts = std::mem::take(self.parser.callbacks_mut());
        tracing::warn!(
            rows = rows.get(),
            cols = cols.get(),
            "the screen model failed on the target's output and starts over"
        );
        self.parser = vt100::Parser::new_with_callbacks(rows, cols, 0, counts);
        self.fast = false;
        self.main_full = true;
        self.pulled = self.parser.callbacks().total;
        self.owed = 0;
        self.diverged = true;
        self.restarted = true;
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
        let mut fed = 0;
        let mut i = 0;
        self.seq_start = None;
        self.run = None;
        while i < bytes.len() {
            if self.state == State::Ground {
                let plain = plain_len(bytes.get(i..).unwrap_or_default());
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
        self.parse(bytes.get(fed..).unwrap_or_default());
        if let Some(&last) = bytes.last() {
            self.clean = self.state != State::Ground || last < 0x80;
        }
    }

    /// The common CSI, read at once when all of it is in `bytes` from `i`
    /// (ground state): `ESC [`, maybe a private marker, parameter bytes, a
    /// final byte. vte reads it as: CSI entry, the marker collected, CSI
    /// param, dispatch. Returns where it ends.
    fn whole_csi(&mut self, bytes: &[u8], fed: &mut usize, i: usize) -> Option<usize> {
        let rest = bytes.get(i..)?;
        if rest.get(1) != Some(&b'[') {
            return None;
        }
        let private = rest.get(2).is_some_and(|b| (0x3c..=0x3f).contains(b));
        let from = 2 + usize::from(private);
        let params = rest
            .get(from..)?
            .iter()
            .take_while(|b| (0x30..=0x3b).contains(*b))
            .count();
        let last = from + params;
        let b = *rest.get(last)?;
        if !(0x40..=0x7e).contains(&b) {
            return None;
        }
        self.seq_start = Some(i);
        self.seq_ok = !private;
        self.seq_odd = private;
        self.params.clear();
        let kept = params.min(MAX_PARAMS);
        self.params
            .extend_from_slice(rest.get(from..from + kept).unwrap_or_default());
        self.state = State::CsiParam;
        self.csi_dispatch(bytes, fed, i + last, b);
        Some(i + last + 1)
    }

    /// An ESC starts a sequence (in any state: it aborts one being read).
    fn begin_sequence(&mut self, bytes: &[u8], fed: &mut usize, i: usize) {
        if self.state != State::Ground {
            self.end_sequence(bytes, fed, false);
        }
        self.state = State::Escape;
        self.seq_start = Some(i);
        self.seq_ok = true;
        self.seq_odd = false;
        self.params.clear();
    }

    /// The sequence being read is over; back to the ground state. One a
    /// run cannot hold ends the run before it.
    fn end_sequence(&mut self, bytes: &[u8], fed: &mut usize, ok: bool) {
        self.state = State::Ground;
        if !(ok && self.seq_ok) {
            let at = self.seq_start.unwrap_or(0);
            self.close_run(bytes, fed, at);
        }
    }

    /// Feeds the model up to and including `bytes[i]`, to look at it there.
    fn catch_up(&mut self, bytes: &[u8], fed: &mut usize, i: usize) {
        self.parse(bytes.get(*fed..=i).unwrap_or_default());
        *fed = i + 1;
    }

    /// vte's transitions outside the ground state (vte 0.15 `advance_*`).
    fn step(&mut self, bytes: &[u8], fed: &mut usize, i: usize, b: u8) {
        use State::*;
        // "Anywhere" transitions: CAN and SUB end any sequence, ESC starts
        // a new one (except in the escape state, which ignores it, and
        // where vte lists them itself below).
        let executes = matches!(b, 0x00..=0x17 | 0x19 | 0x1c..=0x1f);
        match self.state {
            Ground => {}
            Escape => match b {
                _ if executes => self.seq_ok = false,
                0x20..=0x2f => self.state = EscapeIntermediate,
                0x5b => self.state = CsiEntry,
                0x50 => self.enter(DcsEntry),
                0x5d => self.enter(Osc),
                0x58 | 0x5e | 0x5f => self.enter(SosPmApc),
                0x30..=0x7e => {
                    if b == b'c' {
                        // RIS: a new screen, scroll regions and scrollback
                        // included.
                        self.end_sequence(bytes, fed, false);
                        self.catch_up(bytes, fed, i);
                        self.main_full = true;
                        self.pulled = self.parser.callbacks().total;
                        self.owed = 0;
                    } else {
                        self.end_sequence(bytes, fed, false);
                    }
                }
                0x18 | 0x1a => self.end_sequence(bytes, fed, false),
                _ => self.seq_ok = false,
            },
            EscapeIntermediate => match b {
                _ if executes => self.seq_ok = false,
                0x20..=0x2f => {}
                // vt100 ignores escapes with intermediates (`ESC ( B`).
                0x30..=0x7e => self.end_sequence(bytes, fed, true),
                0x7f => self.seq_ok = false,
                _ => self.anywhere(bytes, fed, i, b),
            },
            CsiEntry | CsiParam | CsiIntermediate | CsiIgnore => match b {
                // Executed inside the sequence (a CR or LF in a CSI moves
                // the cursor): the sequence is no run's.
                _ if executes => self.seq_ok = false,
                0x40..=0x7e => {
                    if self.state == CsiIgnore {
                        self.end_sequence(bytes, fed, false);
                    } else {
                        self.csi_dispatch(bytes, fed, i, b);
                    }
                }
                0x20..=0x2f => {
                    self.seq_ok = false;
                    if self.state != CsiIgnore {
                        self.seq_odd = true;
                        self.state = CsiIntermediate;
                    }
                }
                0x30..=0x3f => match self.state {
                    CsiEntry | CsiParam if b <= 0x3b => {
                        self.state = CsiParam;
                        if self.params.len() < MAX_PARAMS {
                            self.params.push(b);
                        }
                    }
                    CsiEntry => {
                        // A private marker (`CSI ?`): collected as an
                        // intermediate.
                        self.seq_ok = false;
                        self.seq_odd = true;
                        self.state = CsiParam;
                    }
                    CsiParam | CsiIntermediate => {
                        self.seq_ok = false;
                        self.state = CsiIgnore;
                    }
                    _ => {}
                },
                0x7f => self.seq_ok = false,
                _ => self.anywhere(bytes, fed, i, b),
            },
            DcsEntry | DcsParam | DcsIntermediate => match b {
                _ if executes => {}
                0x20..=0x2f => self.state = DcsIntermediate,
                0x30..=0x3f => {
                    self.state = match (self.state, b) {
                        (DcsEntry, _) => DcsParam,
                        (DcsParam, 0x30..=0x3b) => DcsParam,
                        _ => DcsIgnore,
                    }
                }
                0x40..=0x7e => self.state = DcsPassthrough,
                0x7f => {}
                _ => self.anywhere(bytes, fed, i, b),
            },
            DcsPassthrough => match b {
                0x18 | 0x1a | 0x9c => self.end_sequence(bytes, fed, false),
                0x1b => self.begin_sequence(bytes, fed, i),
                _ => {}
            },
            Osc => match b {
                0x07 | 0x18 | 0x1a => self.end_sequence(bytes, fed, false),
                0x1b => self.begin_sequence(bytes, fed, i),
                _ => {}
            },
            DcsIgnore | SosPmApc => self.anywhere(bytes, fed, i, b),
        }
    }

    /// A string sequence (DCS, OSC, SOS, PM, APC): no run's.
    fn enter(&mut self, state: State) {
        self.seq_ok = false;
        self.state = state;
    }

    fn anywhere(&mut self, bytes: &[u8], fed: &mut usize, i: usize, b: u8) {
        match b {
            0x18 | 0x1a => self.end_sequence(bytes, fed, false),
            0x1b => self.begin_sequence(bytes, fed, i),
            _ => self.seq_ok = false,
        }
    }

    fn csi_dispatch(&mut self, bytes: &[u8], fed: &mut usize, i: usize, b: u8) {
        let ok = !self.seq_odd && matches!(b, b'm' | b'K');
        if ok
            && b == b'm'
            && self.seq_ok
            && self.run.is_some()
            && let Some(start) = self.seq_start
        {
            let p = self.params.as_slice();
            let resets = p.is_empty() || p == b"0" || p.starts_with(b";") || p.starts_with(b"0;");
            self.sgrs.push(Sgr {
                start,
                end: i + 1,
                resets,
            });
        }
        self.end_sequence(bytes, fed, ok);
        if b == b'r' && !self.seq_odd {
            // DECSTBM: the region of the screen shown now.
            self.catch_up(bytes, fed, i);
            let screen = self.parser.screen();
            if !screen.alternate_screen() {
                let rows = screen.size().0.get();
                self.main_full = full_region(&self.params, rows).unwrap_or(false);
            }
        }
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
        self.parse(bytes.get(*fed..start).unwrap_or_default());
        *fed = start;
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

#[cfg(test)]
mod tests {
    use std::num::NonZeroU16;
    use std::time::Duration;

    use super::ScreenModel;
    use crate::record::{CommandTracker, Input};

    /// Seeded xorshift64*: the same streams on every run.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
        }

        fn below(&mut self, n: usize) -> usize {
            (self.next() % n as u64) as usize
        }

        fn one_in(&mut self, n: usize) -> bool {
            self.below(n) == 0
        }

        fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
            items[self.below(items.len())]
        }
    }

    const WORDS: &[&str] = &[
        "a",
        "log",
        "connection",
        "from",
        "10.0.0.7",
        "übermäßig",
        "漢字",
        "e\u{301}",
        "\u{200b}",
        "x\t",
        "\t",
        "Ω",
        "-----",
    ];
    const SGRS: &[&str] = &[
        "\x1b[m",
        "\x1b[0m",
        "\x1b[1m",
        "\x1b[31m",
        "\x1b[1;34m",
        "\x1b[38;5;208m",
        "\x1b[38:2:1:2:3m",
        "\x1b[0;7m",
        "\x1b[;4m",
        "\x1b[2m",
        "\x1b[90m",
        "\x1b[44m",
        "\x1b[22m",
    ];
    /// Everything else a target may print between runs of text.
    const OTHER: &[&[u8]] = &[
        b"\x1b[H",
        b"\x1b[5;10H",
        b"\x1b[A",
        b"\x1b[3B",
        b"\x1b[2J",
        b"\x1b[J",
        b"\x1bM",
        b"\x1b7",
        b"\x1b8",
        b"\x1b[3;8r",
        b"\x1b[r",
        b"\x1b[1;200r",
        b"\x1b[2;1r",
        b"\x1b[?1049h",
        b"\x1b[?1049l",
        b"\x1b[?47h",
        b"\x1b[?47l",
        b"\x1b[4b",
        b"\x1b]0;title\x07",
        b"\x1bP1$r0m\x1b\\",
        b"\x1b[3\x18",
        b"\x1b]2;x\x1a",
        b"\x07",
        b"\x08",
        b"\x1b[?25l",
        b"\x1b[?2004h",
        b"\x1b[6n",
        b"\x1b(B",
        b"\x1b[K",
        b"\x1b[2K",
        b"\x1b[5S",
        b"\x1b[2T",
        b"\x1b[10;5r\x1b[20H",
        b"\x1bc",
        "\u{9b}".as_bytes(),
        b"\x9c",
        b"\x1b[3\n1m",
        b"\x1b[?6h",
        b"\x1b[?6l",
        b"\x1b[?1049h\x1b[3;5r\x1b[?1049l",
        b"\x1b[12X",
        b"\x1b[3@",
        b"\x1b[2P",
        b"\x1b[L",
    ];

    /// A line of text: words, colours, maybe longer than the screen.
    fn line(rng: &mut Rng, out: &mut Vec<u8>) {
        let most = if rng.one_in(8) { 80 } else { 12 };
        let words = rng.below(most);
        for _ in 0..words {
            if rng.one_in(4) {
                out.extend_from_slice(rng.pick(SGRS).as_bytes());
            }
            out.extend_from_slice(rng.pick(WORDS).as_bytes());
            out.push(b' ');
        }
        if rng.one_in(6) {
            out.extend_from_slice(b"\x1b[K");
        }
        if rng.one_in(50) {
            // Invalid UTF-8 and a cut character.
            out.extend_from_slice(b"\xff\xe2\x82");
        }
        out.extend_from_slice(match rng.below(10) {
            0 => b"\n".as_slice(),
            1 => b"\r",
            2 => b"\n\r",
            _ => b"\r\n",
        });
    }

    /// A random stream: long runs of text (some long enough to skip),
    /// broken by cursor motion, scroll regions, the alternate screen,
    /// strings and controls.
    fn stream(rng: &mut Rng, len: usize) -> Vec<u8> {
        let mut out = Vec::new();
        while out.len() < len {
            let lines = match rng.below(4) {
                0 => rng.below(5),
                1 => rng.below(60),
                _ => rng.below(600),
            };
            for _ in 0..lines {
                line(rng, &mut out);
            }
            for _ in 0..rng.below(4) {
                out.extend_from_slice(OTHER[rng.below(OTHER.len())]);
            }
        }
        out
    }

    fn assert_same(fast: &vt100::Screen, plain: &vt100::Screen, what: &str) {
        assert_eq!(fast.size(), plain.size(), "{what}: size");
        assert_eq!(
            fast.cursor_position(),
            plain.cursor_position(),
            "{what}: cursor"
        );
        assert_eq!(
            fast.alternate_screen(),
            plain.alternate_screen(),
            "{what}: alternate screen"
        );
        if fast.contents() != plain.contents() {
            let (rows, cols) = fast.size();
            for row in 0..rows.get() {
                let a = fast.contents_between(row, 0, row, cols.get());
                let b = plain.contents_between(row, 0, row, cols.get());
                if a != b {
                    panic!(
                        "{what}: {rows}x{cols}, row {row} differs:\n fast  {a:?}\n plain {b:?}\n cursor {:?}",
                        plain.cursor_position()
                    );
                }
            }
        }
        for row in 0..fast.size().0.get() {
            assert_eq!(
                fast.row_wrapped(row),
                plain.row_wrapped(row),
                "{what}: row {row} wrapped"
            );
        }
        assert_eq!(
            fast.state_formatted(),
            plain.state_formatted(),
            "{what}: cells, attributes, modes"
        );
    }

    fn size(rows: usize, cols: usize) -> (NonZeroU16, NonZeroU16) {
        let n =
            |v: usize| NonZeroU16::new(u16::try_from(v).unwrap_or(1)).unwrap_or(NonZeroU16::MIN);
        (n(rows), n(cols))
    }

    /// The fast-forwarding model and a plain vt100 parser, fed the same
    /// random streams in the same random pieces (cutting sequences and
    /// characters anywhere), with resizes between pieces: the same screen
    /// after every piece, and the fast one skipped most of the text.
    #[test]
    fn fast_forward_draws_the_same_screen_as_a_plain_parser() {
        let mut skipped = 0;
        let mut total = 0;
        for seed in 1..=40u64 {
            let mut rng = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15));
            let (rows, cols) = size(1 + rng.below(50), 1 + rng.below(160));
            let mut fast = ScreenModel::new(rows, cols, true);
            let mut plain = ScreenModel::new(rows, cols, false);
            let data = stream(&mut rng, 400_000);
            let mut rest = data.as_slice();
            let mut piece = 0;
            while !rest.is_empty() {
                let len = match rng.below(3) {
                    0 => 1 + rng.below(16),
                    1 => 1 + rng.below(4096),
                    _ => 1 + rng.below(32 * 1024),
                };
                let (now, next) = rest.split_at(len.min(rest.len()));
                fast.process(now);
                plain.process(now);
                rest = next;
                piece += 1;
                let what = format!("seed {seed}, piece {piece}");
                assert_same(fast.screen(), plain.screen(), &what);
                if rng.one_in(40) {
                    let (rows, cols) = if rng.one_in(10) {
                        size(1 + rng.below(200), 1 + rng.below(300))
                    } else {
                        let (r, c) = fast.screen().size();
                        let r = usize::from(r.get());
                        size(
                            r + rng.below(9) - rng.below(9).min(r - 1),
                            usize::from(c.get()),
                        )
                    };
                    fast.resize(rows, cols);
                    plain.resize(rows, cols);
                    assert!(!fast.diverged(), "{what}: a resize pulled other rows");
                    assert_same(fast.screen(), plain.screen(), &format!("{what}, resized"));
                }
            }
            skipped += fast.skipped();
            total += data.len() as u64;
        }
        // Not a vacuous comparison: much of the text went unparsed.
        assert!(
            skipped * 4 > total,
            "the fast path skipped {skipped} of {total} bytes"
        );
    }

    /// Streams the fast path is for, in the pieces russh delivers: skipped
    /// nearly whole, the screen the same, the last character kept for REP.
    #[test]
    fn long_text_runs_are_skipped_exactly() {
        let mut seq = Vec::new();
        for n in 1..200_000u32 {
            seq.extend_from_slice(format!("{n}\r\n").as_bytes());
        }
        seq.extend_from_slice(b"\x1b[5b");
        let mut rng = Rng(99);
        let mut colours = Vec::new();
        while colours.len() < 1_000_000 {
            colours.extend_from_slice(b"\x1b[2mDec  5\x1b[0m \x1b[1;34mweb1\x1b[0m ");
            line(&mut rng, &mut colours);
            colours.extend_from_slice(b"\x1b[K\r\n");
        }
        colours.extend_from_slice(b"\x1b[31m\x1b[3b");
        for data in [seq, colours] {
            let (rows, cols) = size(24, 80);
            let mut fast = ScreenModel::new(rows, cols, true);
            let mut plain = ScreenModel::new(rows, cols, false);
            for piece in data.chunks(32 * 1024) {
                fast.process(piece);
                plain.process(piece);
            }
            assert_same(fast.screen(), plain.screen(), "end");
            assert!(
                fast.skipped() as usize > data.len() * 8 / 10,
                "skipped {} of {}",
                fast.skipped(),
                data.len()
            );
            // A height increase pulls blank rows from the (theoretical)
            // scrollback both kept.
            let (rows, cols) = size(200, 100);
            fast.resize(rows, cols);
            plain.resize(rows, cols);
            assert_same(fast.screen(), plain.screen(), "grown");
        }
    }

    /// What a person sees of the command log around a long `cat` in a
    /// pty: the command is read at its Enter, its output is captured from
    /// the start, the next command typed at the prompt is read, and almost
    /// none of the text went through vt100.
    #[test]
    fn a_long_cat_is_fast_forwarded_and_the_command_log_still_works() {
        let mut t = CommandTracker::new(80, 24);
        t.output(b"\x1b[1muser@web1\x1b[0m:~$ ");
        key_steps(&mut t, b"seq 1 1000000", true);
        let Some(Input::Enter {
            command: Some(command),
            ..
        }) = t.input(b"\r").pop()
        else {
            panic!("the command was not read");
        };
        assert_eq!(command, "seq 1 1000000");
        assert_eq!(t.started(command, Duration::ZERO), None);
        let seq = seq_through_a_pty(&mut t);
        t.output(b"\x1b[1muser@web1\x1b[0m:~$ ");
        key_steps(&mut t, b"ls -l", true);
        let Some(Input::Enter {
            command: Some(next),
            ..
        }) = t.input(b"\r").pop()
        else {
            panic!("the next command was not read");
        };
        assert_eq!(next, "ls -l");
        let done = t
            .started(next, Duration::from_secs(9))
            .expect("the cat completed");
        assert_eq!(done.command, "seq 1 1000000");
        assert!(
            done.output.starts_with("1\n2\n3\n"),
            "{:?}",
            done.output.get(..20)
        );
        assert!(done.output_truncated);
        let skipped = t.skipped_output();
        assert!(
            skipped as usize > seq.len() * 95 / 100,
            "parsed {} of {} bytes",
            seq.len() as u64 - skipped,
            seq.len()
        );
    }

    /// `ssh -tt bastion web1 'seq 1 1000000'`: a pty, no prompt, no keys;
    /// the screen model parses next to nothing of what streams through.
    #[test]
    fn an_exec_with_a_pty_streams_past_the_model() {
        let mut t = CommandTracker::new(80, 24);
        let seq = seq_through_a_pty(&mut t);
        let skipped = t.skipped_output();
        assert!(
            skipped as usize > seq.len() * 95 / 100,
            "parsed {} of {} bytes",
            seq.len() as u64 - skipped,
            seq.len()
        );
        let screen = t.screen_formatted();
        assert!(screen.windows(7).any(|w| w == b"1000000"), "the last line");
    }

    /// vt100 0.18.1 panics on some output at the margin of a narrow
    /// screen (a variation selector after a wide character there). A
    /// client chooses its window size and the target prints what the
    /// person asks it to, so this must not bring the session down: the
    /// model starts over, and what comes after is read as usual.
    #[test]
    fn output_that_panics_vt100_gives_a_fresh_screen_not_a_dead_session() {
        let poison = "\u{fe0f}#\n\u{2603}\u{fe0f}\x1b[1;80H \x1b[D\x1b[1b\x1b[M";
        for fast in [true, false] {
            let mut t = if fast {
                CommandTracker::new(2, 2)
            } else {
                CommandTracker::new_plain(2, 2)
            };
            t.output(poison.as_bytes());
            t.resize(80, 24);
            t.output(b"\x1b[H\x1b[2J$ ");
            key_steps(&mut t, b"ls", true);
            assert!(
                matches!(
                    t.input(b"\r").pop(),
                    Some(Input::Enter { command: Some(c), .. }) if c == "ls"
                ),
                "fast {fast}: the next command is read"
            );
        }
    }

    /// `seq 1 1000000` as a pty prints it, given to `t` in the pieces a
    /// pty hands over (about 4 KiB); returns the bytes.
    fn seq_through_a_pty(t: &mut CommandTracker) -> Vec<u8> {
        let mut seq = b"\r\n".to_vec();
        for n in 1..=1_000_000u32 {
            seq.extend_from_slice(format!("{n}\r\n").as_bytes());
        }
        for piece in seq.chunks(4000) {
            t.output(piece);
        }
        seq
    }

    fn key_steps(t: &mut CommandTracker, keys: &[u8], echo: bool) -> Vec<Input> {
        let mut out = Vec::new();
        for key in keys {
            out.extend(t.input(std::slice::from_ref(key)));
            if echo {
                t.output(std::slice::from_ref(key));
            }
        }
        out
    }

    /// Two trackers, one plain: a shell session with commands typed at a
    /// prompt, typed ahead during long output, a password, resizes and
    /// full-screen apps between them. Every Enter gives the same result,
    /// every command the same captured output, and the live monitor's
    /// snapshot is the same after every piece.
    #[test]
    fn tracker_results_are_the_same_with_the_fast_path() {
        for seed in 1..=12u64 {
            let mut rng = Rng(seed.wrapping_mul(0x2545_f491_4f6c_dd1d));
            let cols = 20 + rng.below(120) as u16;
            let rows = 2 + rng.below(40) as u16;
            let mut fast = CommandTracker::new(cols, rows);
            let mut plain = CommandTracker::new_plain(cols, rows);
            let mut at = Duration::ZERO;
            for step in 0..60 {
                let what = format!("seed {seed}, step {step}");
                let prompt = b"\x1b[32muser@web1\x1b[0m:~$ ";
                let command =
                    ["cat big.log", "ls -l", "seq 1 100000", "journalctl -f"][rng.below(4)];
                let len = rng.below(200_000);
                let output = stream(&mut rng, len);
                let typed_ahead = rng.one_in(3);
                let mut results = Vec::new();
                for t in [&mut fast, &mut plain] {
                    t.output(prompt);
                    let mut got = key_steps(t, command.as_bytes(), true);
                    got.extend(t.input(b"\r"));
                    results.push(got);
                }
                assert_eq!(results[0], results[1], "{what}: the Enter");
                let command_text = match results[0].last() {
                    Some(Input::Enter {
                        command: Some(c), ..
                    }) => c.clone(),
                    other => panic!("{what}: no command read: {other:?}"),
                };
                at += Duration::from_secs(1);
                assert_eq!(
                    fast.started(command_text.clone(), at),
                    plain.started(command_text, at),
                    "{what}: the previous command"
                );
                let mut rest = output.as_slice();
                let mut pieces = 0;
                while !rest.is_empty() {
                    let len = 1 + rng.below(32 * 1024);
                    let (now, next) = rest.split_at(len.min(rest.len()));
                    fast.output(now);
                    plain.output(now);
                    rest = next;
                    pieces += 1;
                    if typed_ahead && pieces == 2 {
                        // Keys typed while the output streams.
                        let a = fast.input(b"whoami");
                        let b = plain.input(b"whoami");
                        assert_eq!(a, b, "{what}: keys typed ahead");
                    }
                    assert_eq!(
                        fast.screen_formatted(),
                        plain.screen_formatted(),
                        "{what}: snapshot"
                    );
                }
                // Leave a full-screen app and end the line, as a shell does.
                for t in [&mut fast, &mut plain] {
                    t.output(b"\x1b[?1049l\x1b[r\x1b[0m\r\n");
                }
                if typed_ahead {
                    let a = fast.input(b"\r");
                    let b = plain.input(b"\r");
                    assert_eq!(a, b, "{what}: Enter typed ahead");
                    if matches!(a.last(), Some(Input::EnterUnseen { .. })) {
                        for t in [&mut fast, &mut plain] {
                            t.output(prompt);
                            t.output(b"whoami\r\n");
                        }
                        assert_eq!(
                            fast.resolve_pending(),
                            plain.resolve_pending(),
                            "{what}: resolved"
                        );
                    }
                }
                if rng.one_in(3) {
                    let cols = 20 + rng.below(120) as u16;
                    let rows = 2 + rng.below(40) as u16;
                    fast.resize(cols, rows);
                    plain.resize(cols, rows);
                }
                assert_eq!(
                    fast.screen_formatted(),
                    plain.screen_formatted(),
                    "{what}: end"
                );
            }
            assert_eq!(fast.finish(), plain.finish(), "seed {seed}: last command");
        }
    }
}
