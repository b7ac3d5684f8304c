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

use crate::record::{Stripper, leading};

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

/// Turns output events into lines.
#[derive(Debug)]
pub struct Lines {
    strip: Stripper,
    partial: Vec<u8>,
    partial_at: Duration,
    /// The lines completed since the last take, one after the other, and
    /// where each ends in it (no allocation per line).
    done_text: String,
    done: Vec<(Duration, usize)>,
    /// Bytes of text in the lines completed so far.
    text_bytes: u64,
}

impl Default for Lines {
    fn default() -> Self {
        Lines::new()
    }
}

impl Lines {
    pub fn new() -> Lines {
        Lines {
            // The stripper's own limit never binds: its text is taken after
            // every chunk.
            strip: Stripper::new(usize::MAX / 128),
            partial: Vec::new(),
            partial_at: Duration::ZERO,
            done_text: String::new(),
            done: Vec::new(),
            text_bytes: 0,
        }
    }

    /// Lines that go on from an unfinished line (a block's carry).
    pub fn resume(carry: &str, at: Duration) -> Lines {
        let mut lines = Lines::new();
        lines.partial = carry.as_bytes().to_vec();
        lines.partial_at = at;
        lines
    }

    /// Output bytes that arrived `at` into the session.
    pub fn feed(&mut self, bytes: &[u8], at: Duration) {
        self.strip.feed(bytes);
        let text = self.strip.take();
        let mut rest = text.as_slice();
        while !rest.is_empty() {
            let n = leading(rest, |b| b != b'\n' && b != b'\t');
            self.push_run(rest.get(..n).unwrap_or_default(), at);
            match rest.get(n) {
                Some(b'\n') => self.end_line(),
                Some(_) => self.push(b' ', at),
                None => {}
            }
            rest = rest.get(n + 1..).unwrap_or_default();
        }
        self.strip.reuse(text);
    }

    /// Text without line breaks or tabs, as [`Self::push`] of each byte
    /// would take it.
    fn push_run(&mut self, mut run: &[u8], at: Duration) {
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
                self.push(b, at);
            }
        }
    }

    fn push(&mut self, b: u8, at: Duration) {
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
            self.end_line();
            if let Some(last) = last {
                self.push(last, at);
            }
        }
    }

    fn end_line(&mut self) {
        // An ASCII line (the common case) is trimmed on its bytes and
        // measured by its length, a byte being a character: no lossy
        // conversion and no count of characters.
        let ascii = self.partial.is_ascii();
        let lossy;
        let text = if ascii {
            std::str::from_utf8(trim_ascii_white_space(&self.partial)).unwrap_or_default()
        } else {
            lossy = String::from_utf8_lossy(&self.partial);
            lossy.trim()
        };
        // Three characters take at least three bytes and at most twelve.
        let short = text.len() < MIN_LINE
            || !ascii && text.len() < 4 * MIN_LINE && text.chars().count() < MIN_LINE;
        if !short {
            self.text_bytes += text.len() as u64;
            self.done_text.push_str(text);
            self.done.push((self.partial_at, self.done_text.len()));
        }
        self.partial.clear();
    }

    /// The lines completed since the last call.
    pub fn take(&mut self) -> Vec<ScreenLine> {
        let mut lines = Vec::with_capacity(self.done.len());
        self.drain(|at, text| {
            lines.push(ScreenLine {
                at,
                text: text.to_string(),
            })
        });
        lines
    }

    /// Hands each line completed since the last call to `each`, in order,
    /// and forgets them: [`Self::take`] without a string per line.
    pub fn drain(&mut self, mut each: impl FnMut(Duration, &str)) {
        let mut start = 0;
        for &(at, end) in &self.done {
            each(at, self.done_text.get(start..end).unwrap_or_default());
            start = end;
        }
        self.done.clear();
        self.done_text.clear();
    }

    /// Everything left, the unfinished last line included (the session ended).
    pub fn finish(&mut self) -> Vec<ScreenLine> {
        self.end_line();
        self.take()
    }

    /// Text in the lines completed so far, in bytes.
    pub fn text_bytes(&self) -> u64 {
        self.text_bytes
    }

    /// The unfinished line and the moment it began: where the next block
    /// goes on from.
    pub fn carry(&self) -> (String, Duration) {
        (
            String::from_utf8_lossy(&self.partial).into_owned(),
            self.partial_at,
        )
    }
}

/// `bytes` without the characters `str::trim` takes off at either end,
/// for ASCII text (its White_Space characters: space, TAB, LF, VT, FF, CR).
fn trim_ascii_white_space(bytes: &[u8]) -> &[u8] {
    let white = |b: &u8| matches!(b, b' ' | b'\t'..=b'\r');
    let start = bytes.iter().take_while(|b| white(b)).count();
    let rest = bytes.get(start..).unwrap_or_default();
    let end = rest.len() - rest.iter().rev().take_while(|b| white(b)).count();
    rest.get(..end).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn lines_keep_the_moment_they_began_without_escapes() {
        let mut t = Lines::new();
        t.feed(b"\x1b[01;34mdemo@demo\x1b[0m:~$ ca", ms(10));
        t.feed(b"t secret.txt\r\n", ms(20));
        t.feed(b"the launch code is 0000\r\nx\r\n  \tindented", ms(30));
        let lines = t.take();
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
            t.finish(),
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
        t.feed(long.as_bytes(), ms(1));
        t.feed(b"\n", ms(2));
        let lines = t.take();
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
        first.feed(b"one line\r\nhalf of ", ms(5));
        assert_eq!(first.take().len(), 1);
        let (carry, at) = first.carry();
        let mut next = Lines::resume(&carry, at);
        next.feed(b"the second\r\n", ms(9));
        assert_eq!(
            next.take(),
            vec![ScreenLine {
                at: ms(5),
                text: "half of the second".into()
            }]
        );
    }

    #[test]
    fn ascii_lines_are_trimmed_as_str_trim_trims_them() {
        for line in [
            "",
            " ",
            "ab",
            " abc ",
            "\x0b\x0cab c\r\t",
            "a\x0bb",
            "  x  y  ",
        ] {
            assert_eq!(
                trim_ascii_white_space(line.as_bytes()),
                line.trim().as_bytes(),
                "{line:?}"
            );
        }
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
        whole.feed(&input, ms(1));
        let mut bytes = Lines::new();
        for b in &input {
            bytes.feed(std::slice::from_ref(b), ms(1));
        }
        let expected = bytes.finish();
        assert!(expected.len() > 300);
        assert_eq!(whole.finish(), expected);
        assert_eq!(whole.text_bytes(), bytes.text_bytes());
    }
}
