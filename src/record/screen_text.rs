//! The lines of text a session's output put on the screen, with the moment
//! each began, for the screen-text index: the audit's "who saw this string,
//! and when". Fed with the same bytes as the recording, so what can be found
//! is what the person saw; escape sequences are dropped, and a carriage
//! return does not end a line (a progress bar's redraws run together).
//!
//! Bounded per session ([`MAX_TEXT`]): a session that prints more (a
//! `cat` of a huge file) is indexed up to there and marked truncated; the
//! recording still holds everything.

use std::time::Duration;

use super::strip::Stripper;

/// Shorter lines are not indexed (the index matches three characters and
/// more).
pub const MIN_LINE: usize = 3;
/// Longer lines are cut into pieces of this many bytes.
pub const MAX_LINE: usize = 1024;
/// Text indexed per session, in bytes.
pub const MAX_TEXT: usize = 8 << 20;

/// A line that appeared, `at` into the session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScreenLine {
    pub at: Duration,
    pub text: String,
}

#[derive(Debug)]
pub struct ScreenText {
    strip: Stripper,
    partial: Vec<u8>,
    partial_at: Duration,
    done: Vec<ScreenLine>,
    indexed: usize,
    truncated: bool,
}

impl Default for ScreenText {
    fn default() -> Self {
        ScreenText::new()
    }
}

impl ScreenText {
    pub fn new() -> ScreenText {
        ScreenText {
            // The stripper's own limit never binds: its text is taken after
            // every chunk, and MAX_TEXT bounds the whole.
            strip: Stripper::new(usize::MAX / 128),
            partial: Vec::new(),
            partial_at: Duration::ZERO,
            done: Vec::new(),
            indexed: 0,
            truncated: false,
        }
    }

    /// Output bytes that arrived `at` into the session.
    pub fn feed(&mut self, bytes: &[u8], at: Duration) {
        if self.truncated {
            return;
        }
        self.strip.feed(bytes);
        for b in self.strip.take() {
            match b {
                b'\n' => self.end_line(),
                b'\t' => self.push(b' ', at),
                _ => self.push(b, at),
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
        let bytes = std::mem::take(&mut self.partial);
        let text = String::from_utf8_lossy(&bytes);
        let text = text.trim();
        if text.chars().count() < MIN_LINE || self.truncated {
            return;
        }
        if self.indexed + text.len() > MAX_TEXT {
            self.truncated = true;
            return;
        }
        self.indexed += text.len();
        self.done.push(ScreenLine {
            at: self.partial_at,
            text: text.to_string(),
        });
    }

    /// The lines completed since the last call.
    pub fn take(&mut self) -> Vec<ScreenLine> {
        std::mem::take(&mut self.done)
    }

    /// Everything left, the unfinished last line included (the session ended).
    pub fn finish(&mut self) -> Vec<ScreenLine> {
        self.end_line();
        self.take()
    }

    /// More text came than `MAX_TEXT` bytes.
    pub fn truncated(&self) -> bool {
        self.truncated
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn lines_keep_the_moment_they_began_without_escapes() {
        let mut t = ScreenText::new();
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
            "a line shorter than three characters is not indexed"
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
    fn long_lines_are_cut_on_character_boundaries_and_the_total_is_bounded() {
        let mut t = ScreenText::new();
        let long = "é".repeat(MAX_LINE);
        t.feed(long.as_bytes(), ms(1));
        t.feed(b"\n", ms(2));
        let lines = t.take();
        assert!(lines.len() >= 2);
        assert_eq!(
            lines.iter().map(|l| l.text.as_str()).collect::<String>(),
            long
        );
        let chunk = vec![b'a'; 1 << 20];
        for n in 0..10 {
            t.feed(&chunk, ms(n));
            t.feed(b"\n", ms(n));
        }
        let total: usize = t.take().iter().map(|l| l.text.len()).sum();
        assert!(total <= MAX_TEXT);
        assert!(t.truncated());
    }
}
