//! Plain text out of terminal output, for the first bytes of a command's
//! output and of an exec session: a small state machine after the DEC/ECMA-48
//! parser's states (ground, escape, CSI, OSC and the other string
//! sequences), so that what is logged is text a reader can search, not
//! colour codes and cursor motion.
//!
//! Kept: printable text (UTF-8 passes through), LF and TAB. Dropped: every
//! escape sequence, CR (so `\r\n` becomes `\n`; a progress bar's `\r`
//! redraws run together), BS and every other control byte.

use std::ops::ControlFlow;

/// Where in an escape sequence the last byte left the stripper.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Ground,
    /// After ESC.
    Escape,
    /// After ESC and one or more intermediate bytes (`ESC ( B`).
    EscapeIntermediate,
    /// Inside `ESC [ ...` until a final byte.
    Csi,
    /// Inside `ESC ] ...` until BEL or ST.
    Osc,
    /// Inside DCS, SOS, PM or APC (`ESC P`, `ESC X`, `ESC ^`, `ESC _`) until ST.
    Text,
    /// ESC seen inside an OSC or string sequence: `\` ends it.
    StringEscape,
}

/// A control byte that leaves the stripper in the ground state and keeps
/// nothing.
fn dropped(b: u8) -> bool {
    (b < 0x20 && b != 0x1b && b != b'\n' && b != b'\t') || b == 0x7f
}

/// Bytes the ground state keeps as they are: printable text (UTF-8
/// included), LF and TAB.
fn kept(b: u8) -> bool {
    (b >= 0x20 && b != 0x7f) || b == b'\n' || b == b'\t'
}

/// How many bytes at the start of `bytes` match `keep`, looked at in
/// blocks the compiler vectorises (the hot scans of output bytes: the
/// stripper's control runs, the screen model's text and control runs).
/// Short runs are the common case (the CR before each LF of a pty's
/// output, a word between two escape sequences), so the first few bytes
/// are looked at one by one, and only a run longer than that goes on in
/// blocks: a block is looked at whole, so a run of one byte would cost 32.
#[inline]
pub(crate) fn leading(bytes: &[u8], keep: impl Fn(u8) -> bool) -> usize {
    const BLOCK: usize = 32;
    const HEAD: usize = 8;
    let head = bytes.iter().take(HEAD).take_while(|&&b| keep(b)).count();
    if head < HEAD {
        return head;
    }
    let mut n = HEAD;
    for block in bytes[HEAD..].chunks_exact(BLOCK) {
        if !block.iter().fold(true, |all, &b| all & keep(b)) {
            break;
        }
        n += BLOCK;
    }
    n + bytes
        .get(n..)
        .unwrap_or_default()
        .iter()
        .take_while(|&&b| keep(b))
        .count()
}

/// How many bytes at the start of `bytes` are [`dropped`].
fn skip_dropped(bytes: &[u8]) -> usize {
    leading(bytes, dropped)
}

/// The escape sequences of terminal output, walked through: hands on the
/// runs of text between them. Its state carries across pieces, so a
/// sequence cut between two reads never leaks into the text.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Escapes {
    state: State,
}

impl Escapes {
    pub(crate) fn new() -> Escapes {
        Escapes {
            state: State::Ground,
        }
    }

    /// True between escape sequences, where text is kept.
    #[inline]
    pub(crate) fn in_text(&self) -> bool {
        self.state == State::Ground
    }

    /// One byte through the state machine: the byte when it is kept text
    /// (printable, LF or TAB outside every sequence), else `None`.
    #[inline]
    pub(crate) fn step(&mut self, b: u8) -> Option<u8> {
        if self.state == State::Ground && kept(b) {
            return Some(b);
        }
        self.state = next(self.state, b);
        None
    }

    /// Walks `bytes`, handing each run of kept text (printable, LF, TAB)
    /// to `text` in order, until `text` breaks; what it was handed is then
    /// the text up to the break, and the rest of `bytes` is not looked at.
    #[inline]
    pub(crate) fn walk(&mut self, bytes: &[u8], mut text: impl FnMut(&[u8]) -> ControlFlow<()>) {
        let mut i = 0;
        while let Some(&b) = bytes.get(i) {
            if self.state == State::Ground && dropped(b) {
                // A run of control bytes the text leaves out (`/dev/zero`,
                // NUL padding): skipped in blocks the compiler vectorises,
                // not byte by byte through the state machine (the screen-
                // text index scans every byte a session prints).
                i += skip_dropped(bytes.get(i..).unwrap_or_default());
                continue;
            }
            if self.state == State::Ground && kept(b) {
                // A run of text, handed on at once.
                let rest = bytes.get(i..).unwrap_or_default();
                let n = leading(rest, kept);
                if text(rest.get(..n).unwrap_or_default()).is_break() {
                    return;
                }
                i += n;
                continue;
            }
            i += 1;
            self.state = next(self.state, b);
        }
    }
}

/// The state after byte `b`, which the ground state does not keep.
#[inline]
fn next(state: State, b: u8) -> State {
    match state {
        State::Ground => match b {
            0x1b => State::Escape,
            _ => State::Ground,
        },
        State::Escape => match b {
            b'[' => State::Csi,
            b']' => State::Osc,
            b'P' | b'X' | b'^' | b'_' => State::Text,
            0x20..=0x2f => State::EscapeIntermediate,
            0x1b => State::Escape,
            _ => State::Ground,
        },
        State::EscapeIntermediate => match b {
            0x20..=0x2f => State::EscapeIntermediate,
            _ => State::Ground,
        },
        State::Csi => match b {
            0x40..=0x7e => State::Ground,
            // A new ESC aborts the sequence (ECMA-48 "cancel").
            0x1b => State::Escape,
            0x18 | 0x1a => State::Ground,
            _ => State::Csi,
        },
        State::Osc => match b {
            0x07 => State::Ground,
            0x1b => State::StringEscape,
            _ => State::Osc,
        },
        State::Text => match b {
            0x1b => State::StringEscape,
            _ => State::Text,
        },
        // ESC \ is ST; anything else after ESC starts over as an escape,
        // which is what terminals do with a broken string.
        State::StringEscape => match b {
            b'\\' => State::Ground,
            b'[' => State::Csi,
            b']' => State::Osc,
            _ => State::Ground,
        },
    }
}

/// Escape-free text from terminal output, at most `limit` bytes.
#[derive(Debug, Clone)]
pub(crate) struct Stripper {
    escapes: Escapes,
    out: Vec<u8>,
    limit: usize,
    truncated: bool,
    /// Input bytes still to look at: output that is all escapes or control
    /// bytes (`/dev/zero`, a TUI) must not be scanned to its end.
    budget: usize,
}

/// How many input bytes per byte of kept text are looked at, at most.
const SCAN_FACTOR: usize = 64;

impl Stripper {
    pub(crate) fn new(limit: usize) -> Self {
        Stripper {
            escapes: Escapes::new(),
            out: Vec::new(),
            limit,
            truncated: false,
            budget: limit.saturating_mul(SCAN_FACTOR),
        }
    }

    /// True once more text arrived than the limit keeps, or output went on
    /// past the scan budget: nothing more is needed from the stream.
    pub(crate) fn done(&self) -> bool {
        self.truncated
    }

    pub(crate) fn truncated(&self) -> bool {
        self.truncated
    }

    pub(crate) fn feed(&mut self, bytes: &[u8]) {
        if self.truncated {
            return;
        }
        // Past the budget: what fits is read, then the stream is done.
        let over = bytes.len() > self.budget;
        let bytes = bytes.get(..self.budget).unwrap_or(bytes);
        self.budget -= bytes.len();
        let (out, limit) = (&mut self.out, self.limit);
        let mut truncated = false;
        self.escapes.walk(bytes, |run| {
            let room = limit.saturating_sub(out.len());
            out.extend_from_slice(run.get(..run.len().min(room)).unwrap_or_default());
            if run.len() > room {
                truncated = true;
                return ControlFlow::Break(());
            }
            ControlFlow::Continue(())
        });
        self.truncated = truncated || over;
    }

    /// The text so far, as it came.
    #[cfg(test)]
    pub(crate) fn bytes(&self) -> &[u8] {
        &self.out
    }

    /// The text so far; a UTF-8 sequence cut by the limit is dropped rather
    /// than shown as U+FFFD, other invalid bytes become U+FFFD.
    pub(crate) fn text(&self) -> String {
        let mut bytes = self.out.as_slice();
        if let Err(e) = std::str::from_utf8(bytes)
            && e.error_len().is_none()
        {
            bytes = bytes.get(..e.valid_up_to()).unwrap_or(bytes);
        }
        String::from_utf8_lossy(bytes).into_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::{Stripper, leading};

    #[test]
    fn leading_counts_runs_of_every_length_up_to_the_first_other_byte() {
        for len in 0..100 {
            for stop in 0..=len {
                let mut bytes = vec![b'a'; len];
                if let Some(b) = bytes.get_mut(stop) {
                    *b = b'\n';
                }
                assert_eq!(leading(&bytes, |b| b != b'\n'), stop, "{len} {stop}");
            }
        }
    }

    fn strip(input: &[u8], limit: usize) -> (String, bool) {
        let mut s = Stripper::new(limit);
        // One byte at a time: sequences split across chunks must not leak.
        for b in input {
            s.feed(std::slice::from_ref(b));
        }
        (s.text(), s.truncated())
    }

    #[test]
    fn colours_cursor_motion_titles_and_cr_are_removed() {
        let input = b"\x1b]0;user@host: ~\x07\x1b[01;34mdir\x1b[0m  file\r\n\x1b(B\x1b[?2004lnext\x1bP1$r0m\x1b\\\tend\r\n";
        assert_eq!(
            strip(input, 4096),
            ("dir  file\nnext\tend\n".to_string(), false)
        );
    }

    #[test]
    fn limit_cuts_on_a_character_boundary_and_reports_truncation() {
        let (text, truncated) = strip("aé€".as_bytes(), 4);
        assert_eq!(text, "aé");
        assert!(truncated);
        let (text, truncated) = strip(b"abcd\x1b[0m", 4);
        assert_eq!(text, "abcd");
        assert!(!truncated, "escape sequences after the limit are not text");
    }

    #[test]
    fn runs_of_dropped_control_bytes_are_skipped_without_losing_text() {
        // Runs longer and shorter than a skip block, around text, an
        // escape sequence and the LF and TAB that are kept.
        let mut input = vec![0u8; 100];
        input.extend_from_slice(b"ab\x01\x02c\t");
        input.extend(std::iter::repeat_n(0x7f, 33));
        input.extend_from_slice(b"\x1b[31md\x00\x1b]0;title\x07\n");
        input.extend(std::iter::repeat_n(0x07, 31));
        input.extend_from_slice(b"e");
        assert_eq!(strip(&input, 100), ("abc\td\ne".to_string(), false));
        // Fed in pieces that cut the runs and the sequence anywhere.
        for cut in [1, 7, 31, 32, 33, 64] {
            let mut s = Stripper::new(100);
            for piece in input.chunks(cut) {
                s.feed(piece);
            }
            assert_eq!(s.text(), "abc\td\ne", "pieces of {cut}");
        }
    }

    #[test]
    fn output_without_text_is_not_scanned_to_its_end() {
        let mut s = Stripper::new(16);
        s.feed(&[0u8; 1000]);
        assert!(!s.done());
        s.feed(&[0u8; 1000]);
        assert!(s.done() && s.truncated());
        assert_eq!(s.text(), "");
    }

    /// Text copied a run at a time gives what a byte at a time gives, the
    /// cut at the limit included.
    #[test]
    fn whole_chunks_and_single_bytes_give_the_same_text() {
        let input = "\x1b[1;31mERROR\x1b[0m disk   full\tté\r\n\x1b]0;t\x07ok \x7f\x08x\n"
            .repeat(40)
            .into_bytes();
        for limit in [0, 1, 7, 100, 1000, usize::MAX / 128] {
            let mut whole = Stripper::new(limit);
            whole.feed(&input);
            assert_eq!(
                (whole.text(), whole.truncated()),
                strip(&input, limit),
                "limit {limit}"
            );
        }
    }
}
