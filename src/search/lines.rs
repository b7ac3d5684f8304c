//! The lines of text a session's output put on the screen, with the moment
//! each began: what the index holds and what a search matches against.
//! Escape sequences are dropped, a tab is a space, and a carriage return
//! does not end a line (a progress bar's redraws run together), so what can
//! be found is the text the person saw, not the bytes that drew it.
//!
//! The indexer and the scan of a search both read a block of a recording
//! through this, starting from the same carried partial line, so the text
//! the index was built from and the text a hit is confirmed against are the
//! same.

use std::time::Duration;

use super::scan::{Text, Unit, json_unit};
use crate::record::{Escapes, leading};

/// Shorter lines are not kept (a search needs three characters).
pub const MIN_LINE: usize = 3;
/// Longer lines are cut into pieces of this many bytes.
pub const MAX_LINE: usize = 1024;

/// A line that appeared, `at` into the session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScreenLine {
    pub at: Duration,
    pub text: String,
}

/// Turns output into lines, handed on as each ends. The output is read
/// in one pass, from the cast's JSON string itself when it comes from a
/// recording: escapes decoded, escape sequences walked through and text
/// put straight into the line it belongs to, with no copy of the output in
/// between (the indexer reads every byte a pty session printed).
#[derive(Debug)]
pub struct Lines {
    escapes: Escapes,
    line: Line,
}

/// The line being put together, and what was handed on before it.
#[derive(Debug)]
struct Line {
    partial: Vec<u8>,
    partial_at: Duration,
    /// Bytes of text in the lines completed so far.
    text_bytes: u64,
}

impl Default for Lines {
    fn default() -> Self {
        Lines::new()
    }
}

/// Printable bytes (UTF-8 included): what goes into a line as it is.
fn printable(b: u8) -> bool {
    b >= 0x20 && b != 0x7f
}

impl Lines {
    pub fn new() -> Lines {
        Lines {
            escapes: Escapes::new(),
            line: Line {
                partial: Vec::new(),
                partial_at: Duration::ZERO,
                text_bytes: 0,
            },
        }
    }

    /// Lines that go on from an unfinished line (a block's carry).
    pub fn resume(carry: &str, at: Duration) -> Lines {
        let mut lines = Lines::new();
        lines.line.partial = carry.as_bytes().to_vec();
        lines.line.partial_at = at;
        lines
    }

    /// An output event's text that arrived `at` into the session: each line
    /// it completes goes to `each`, with the moment it began. A line's
    /// text is its bytes: the same bytes whichever way the output came.
    pub fn feed_text(&mut self, text: Text, at: Duration, each: impl FnMut(Duration, &[u8])) {
        match text {
            Text::Json(json) => self.feed_json(json, at, each),
            Text::Bytes(bytes) => self.feed(bytes, at, each),
        }
    }

    /// Output bytes, as [`Self::feed_text`] takes them.
    pub fn feed(&mut self, mut bytes: &[u8], at: Duration, mut each: impl FnMut(Duration, &[u8])) {
        while !bytes.is_empty() {
            if self.escapes.in_text() {
                let n = leading(bytes, printable);
                if n > 0 {
                    let (run, rest) = bytes.split_at(n);
                    self.line.push_run(run, at, &mut each);
                    bytes = rest;
                    continue;
                }
            }
            let Some((&b, rest)) = bytes.split_first() else {
                break;
            };
            self.byte(b, at, &mut each);
            bytes = rest;
        }
    }

    /// The string of a cast's output event, escaped as it is in the cast
    /// (checked by [`super::scan`]), decoded as it is read.
    fn feed_json(&mut self, mut json: &[u8], at: Duration, mut each: impl FnMut(Duration, &[u8])) {
        while !json.is_empty() {
            if self.escapes.in_text() {
                let n = leading(json, |b| printable(b) && b != b'"' && b != b'\\');
                if n > 0 {
                    let (run, rest) = json.split_at(n);
                    self.line.push_run(run, at, &mut each);
                    json = rest;
                    continue;
                }
            }
            match json.first() {
                None => break,
                Some(b'\\')
                    if self.escapes.in_text()
                        && let Some((taken, ends_line)) = plain_end(json) =>
                {
                    // The common escapes, as the general way below takes
                    // them: CR is dropped, LF ends the line, a CSI sequence
                    // (colours) leaves nothing.
                    if ends_line {
                        self.line.end(&mut each);
                    }
                    json = json.get(taken..).unwrap_or_default();
                }
                Some(b'\\') => {
                    // A string the check let through has no malformed
                    // escape; were there one, its backslash is dropped.
                    let (unit, taken) = json_unit(json).unwrap_or((Unit::NONE, 1));
                    for &b in unit.bytes() {
                        self.byte(b, at, &mut each);
                    }
                    json = json.get(taken..).unwrap_or_default();
                }
                Some(&b) => {
                    // A byte of an escape sequence, or DEL.
                    self.byte(b, at, &mut each);
                    json = json.get(1..).unwrap_or_default();
                }
            }
        }
    }

    /// One byte of output that is not part of a run of printable text.
    #[inline]
    fn byte(&mut self, b: u8, at: Duration, each: &mut impl FnMut(Duration, &[u8])) {
        match self.escapes.step(b) {
            Some(b'\n') => self.line.end(each),
            Some(b'\t') => self.line.push(b' ', at, each),
            Some(b) => self.line.push(b, at, each),
            None => {}
        }
    }

    /// The unfinished last line, handed to `each` (the session ended).
    pub fn finish(&mut self, mut each: impl FnMut(Duration, &[u8])) {
        self.line.end(&mut each);
    }

    /// Text in the lines completed so far, in bytes.
    pub fn text_bytes(&self) -> u64 {
        self.line.text_bytes
    }

    /// The unfinished line and the moment it began: where the next block
    /// goes on from.
    pub fn carry(&self) -> (String, Duration) {
        (
            String::from_utf8_lossy(&self.line.partial).into_owned(),
            self.line.partial_at,
        )
    }
}

/// At the start of a cast's JSON string read outside any escape
/// sequence: how many bytes the escapes there take when they are CR, CR
/// LF, LF or a whole CSI sequence written without escapes inside it
/// (`\u001b[1;34m`), none of which adds to the line; and whether they end
/// it (an LF).
#[inline]
fn plain_end(json: &[u8]) -> Option<(usize, bool)> {
    match json {
        [b'\\', b'r', b'\\', b'n', ..] => Some((4, true)),
        [b'\\', b'n', ..] => Some((2, true)),
        [b'\\', b'r', ..] => Some((2, false)),
        [b'\\', b'u', b'0', b'0', b'1', b'b' | b'B', b'[', rest @ ..] => {
            // Parameter and intermediate bytes, then the final byte.
            // A quote or backslash is JSON's, not the sequence's.
            let n = leading(rest, |b| (0x20..=0x3f).contains(&b) && b != b'"');
            rest.get(n)
                .is_some_and(|b| (0x40..=0x7e).contains(b) && *b != b'\\')
                .then_some((7 + n + 1, false))
        }
        _ => None,
    }
}

impl Line {
    /// Printable text, as [`Self::push`] of each byte would take it.
    #[inline]
    fn push_run(&mut self, mut run: &[u8], at: Duration, each: &mut impl FnMut(Duration, &[u8])) {
        if self.partial.is_empty() {
            let spaces = leading(run, |b| b == b' ');
            run = run.get(spaces..).unwrap_or_default();
            if run.is_empty() {
                return;
            }
            self.partial_at = at;
        }
        if self.partial.len() + run.len() < MAX_LINE {
            self.partial.extend_from_slice(run);
        } else {
            for &b in run {
                self.push(b, at, each);
            }
        }
    }

    fn push(&mut self, b: u8, at: Duration, each: &mut impl FnMut(Duration, &[u8])) {
        if self.partial.is_empty() {
            if b == b' ' {
                return;
            }
            self.partial_at = at;
        }
        self.partial.push(b);
        // Cut at a character boundary: a UTF-8 continuation byte never
        // starts the next piece.
        if self.partial.len() >= MAX_LINE && b & 0xc0 != 0x80 {
            let last = self.partial.pop();
            self.end(each);
            if let Some(last) = last {
                self.push(last, at, each);
            }
        }
    }

    /// The line ends: handed on without the spaces around it, unless it is
    /// shorter than [`MIN_LINE`] characters.
    #[inline]
    fn end(&mut self, each: &mut impl FnMut(Duration, &[u8])) {
        // Tabs became spaces and other control bytes were dropped: spaces
        // are the only white space left at either end.
        let text = self.partial.trim_ascii();
        // Three characters take at least three bytes and at most twelve;
        // ASCII takes one byte each.
        let short = text.len() < MIN_LINE
            || text.len() < 4 * MIN_LINE
                && !text.is_ascii()
                && String::from_utf8_lossy(text).chars().count() < MIN_LINE;
        if !short {
            self.text_bytes += text.len() as u64;
            each(self.partial_at, text);
        }
        self.partial.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::Stripper;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn screen_line(at: Duration, text: &[u8]) -> ScreenLine {
        ScreenLine {
            at,
            text: String::from_utf8_lossy(text).into_owned(),
        }
    }

    fn fed(t: &mut Lines, bytes: &[u8], at: Duration) -> Vec<ScreenLine> {
        let mut out = Vec::new();
        t.feed(bytes, at, |at, text| out.push(screen_line(at, text)));
        out
    }

    fn finished(t: &mut Lines) -> Vec<ScreenLine> {
        let mut out = Vec::new();
        t.finish(|at, text| out.push(screen_line(at, text)));
        out
    }

    #[test]
    fn lines_keep_the_moment_they_began_without_escapes() {
        let mut t = Lines::new();
        let mut lines = fed(&mut t, b"\x1b[01;34mdemo@demo\x1b[0m:~$ ca", ms(10));
        lines.extend(fed(&mut t, b"t secret.txt\r\n", ms(20)));
        lines.extend(fed(
            &mut t,
            b"the launch code is 0000\r\nx\r\n  \tindented",
            ms(30),
        ));
        assert_eq!(
            lines,
            vec![
                ScreenLine {
                    at: ms(10),
                    text: "demo@demo:~$ cat secret.txt".into()
                },
                ScreenLine {
                    at: ms(30),
                    text: "the launch code is 0000".into()
                },
            ],
            "a line shorter than three characters is not kept"
        );
        assert_eq!(
            finished(&mut t),
            vec![ScreenLine {
                at: ms(30),
                text: "indented".into()
            }]
        );
    }

    #[test]
    fn long_lines_are_cut_on_character_boundaries() {
        let mut t = Lines::new();
        let long = "é".repeat(MAX_LINE);
        let mut lines = fed(&mut t, long.as_bytes(), ms(1));
        lines.extend(fed(&mut t, b"\n", ms(2)));
        assert!(lines.len() >= 2);
        assert!(lines.iter().all(|l| l.text.len() <= MAX_LINE));
        assert_eq!(
            lines.iter().map(|l| l.text.as_str()).collect::<String>(),
            long
        );
        assert_eq!(t.text_bytes(), long.len() as u64);
    }

    #[test]
    fn a_carried_line_goes_on_where_it_stopped() {
        let mut first = Lines::new();
        assert_eq!(fed(&mut first, b"one line\r\nhalf of ", ms(5)).len(), 1);
        let (carry, at) = first.carry();
        let mut next = Lines::resume(&carry, at);
        assert_eq!(
            fed(&mut next, b"the second\r\n", ms(9)),
            vec![ScreenLine {
                at: ms(5),
                text: "half of the second".into()
            }]
        );
    }

    /// Runs of text are taken as a byte at a time would be: tabs, leading
    /// spaces, lines cut at [`MAX_LINE`], short lines left out.
    #[test]
    fn chunks_and_single_bytes_give_the_same_lines() {
        let mut input = Vec::new();
        for i in 0..300 {
            input.extend_from_slice(b"  \t\x1b[32mok\x1b[0m\tline ");
            input.extend_from_slice(i.to_string().as_bytes());
            input.extend(std::iter::repeat_n(b'x', i * 7 % 1500));
            input.extend_from_slice(if i % 3 == 0 { b"\r\n" } else { b"\n\n ab\n" });
        }
        let mut whole = Lines::new();
        let mut from_whole = fed(&mut whole, &input, ms(1));
        from_whole.extend(finished(&mut whole));
        let mut bytes = Lines::new();
        let mut expected = Vec::new();
        for b in &input {
            expected.extend(fed(&mut bytes, std::slice::from_ref(b), ms(1)));
        }
        expected.extend(finished(&mut bytes));
        assert!(expected.len() > 300);
        assert_eq!(from_whole, expected);
        assert_eq!(whole.text_bytes(), bytes.text_bytes());
    }

    /// Pieces of terminal output: text, colours, titles, CR, tabs, UTF-8,
    /// an ESC and what follows it apart.
    const PIECES: [&[u8]; 17] = [
        b"word",
        b" ",
        b"\t",
        b"\r\n",
        b"\n",
        b"\r",
        b"\x1b[1;31m",
        b"\x1b[0m",
        b"\x1b]0;title\x07",
        "é€😀".as_bytes(),
        b"\x1b",
        b"[2K",
        b"0123456789",
        b"\"quoted\\",
        b"\x00\x7f\x08",
        b"\x1bP1$r\x1b\\",
        b"\x1b[",
    ];

    /// A xorshift: numbers below `n`, the same every run.
    fn random_numbers() -> impl FnMut(usize) -> usize {
        let mut seed = 0x2545_f491_4f6c_dd1d_u64;
        move |n: usize| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed % n as u64) as usize
        }
    }

    /// Output of random pieces, the same every run.
    fn random_output(random: &mut impl FnMut(usize) -> usize) -> String {
        let mut output = String::new();
        for _ in 0..random(400) {
            let piece = PIECES[random(PIECES.len())];
            output.push_str(std::str::from_utf8(piece).expect("UTF-8 pieces"));
        }
        output
    }

    /// Against the plain definition, on output made of random pieces (and
    /// an invalid byte) fed in random cuts: a line is the stripped text up
    /// to a line break, tabs as spaces, trimmed, kept from three characters
    /// on.
    #[test]
    fn lines_are_the_stripped_text_split_at_line_breaks() {
        let mut random = random_numbers();
        let mut total = 0;
        for round in 0..200 {
            let mut input = random_output(&mut random).into_bytes();
            input.extend_from_slice(if round % 2 == 0 { b"\xff" } else { b"\x1b\t" });
            let mut stripper = Stripper::new(usize::MAX / 128);
            stripper.feed(&input);
            let expected: Vec<Vec<u8>> = stripper
                .bytes()
                .split(|&b| b == b'\n')
                .map(|line| {
                    let line: Vec<u8> = line
                        .iter()
                        .map(|&b| if b == b'\t' { b' ' } else { b })
                        .collect();
                    line.trim_ascii().to_vec()
                })
                .filter(|line| String::from_utf8_lossy(line).chars().count() >= MIN_LINE)
                .collect();
            let mut t = Lines::new();
            let mut lines = Vec::new();
            let mut rest = input.as_slice();
            while !rest.is_empty() {
                let (piece, after) = rest.split_at(random(rest.len() + 1).max(1));
                lines.extend(fed(&mut t, piece, ms(1)));
                rest = after;
            }
            lines.extend(finished(&mut t));
            let expected_text: Vec<String> = expected
                .iter()
                .map(|line| String::from_utf8_lossy(line).into_owned())
                .collect();
            let lines: Vec<String> = lines.into_iter().map(|l| l.text).collect();
            assert_eq!(lines, expected_text, "round {round}");
            let bytes: usize = expected.iter().map(Vec::len).sum();
            assert_eq!(t.text_bytes(), bytes as u64, "round {round}");
            total += expected.len();
        }
        assert!(total > 2000, "{total} lines");
    }

    /// A cast's events, escaped as serde_json writes them (and with every
    /// character past ASCII as `\u` escapes, surrogate pairs included),
    /// give the lines their output gives.
    #[test]
    fn output_read_from_the_cast_gives_the_lines_of_the_output() {
        let mut random = random_numbers();
        let mut total = 0;
        for round in 0..200 {
            let input = random_output(&mut random);
            let mut plain = Lines::new();
            let mut expected = fed(&mut plain, input.as_bytes(), ms(1));
            expected.extend(finished(&mut plain));

            let mut cast = Lines::new();
            let mut lines = Vec::new();
            let mut rest = input.as_str();
            while !rest.is_empty() {
                let mut cut = random(rest.len() + 1).max(1);
                while !rest.is_char_boundary(cut) {
                    cut += 1;
                }
                let (event, after) = rest.split_at(cut);
                let mut json = serde_json::to_string(event).expect("a string");
                if round % 2 == 1 {
                    json = json
                        .chars()
                        .flat_map(|c| {
                            if c.is_ascii() {
                                return vec![c.to_string()];
                            }
                            c.encode_utf16(&mut [0; 2])
                                .iter()
                                .map(|unit| format!("\\u{unit:04x}"))
                                .collect()
                        })
                        .collect();
                }
                let inner = &json.as_bytes()[1..json.len() - 1];
                cast.feed_text(Text::Json(inner), ms(1), |at, text| {
                    lines.push(screen_line(at, text))
                });
                rest = after;
            }
            lines.extend(finished(&mut cast));
            assert_eq!(lines, expected, "round {round}");
            assert_eq!(cast.text_bytes(), plain.text_bytes(), "round {round}");
            total += expected.len();
        }
        assert!(total > 2000, "{total} lines");
    }
}
