//! The pieces both of the player's cursors share: reading event lines with
//! their byte offsets, parsing them the same way, the timeline clock (with
//! idle compression) and the escape-sequence state of the output stream.
//!
//! The playhead and the index scanner must agree on every event's time to
//! the bit, or a marker found by the scanner would not be where the
//! playhead puts it: both go through [`Lines`], [`parse`] and [`Clock`].

use std::borrow::Cow;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Seek, SeekFrom};

use serde::de::IgnoredAny;

/// Longest event line read. A cast line holds one output chunk (tens of
/// KiB); a longer one is a damaged or hostile file, and keeping it would
/// let one line take any amount of memory. It is skipped and counted.
pub(super) const MAX_LINE: usize = 8 * 1024 * 1024;

/// Read buffer of each cursor.
const BUFFER: usize = 256 * 1024;

/// One line as read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum LineEnd {
    /// Ends in `\n`.
    Complete,
    /// The file ends without a newline: what a crash leaves.
    Partial,
    /// Longer than [`MAX_LINE`]: the rest was skipped, the buffer is not
    /// the whole line.
    TooLong,
}

/// A cast file read line by line, knowing the byte offset of the next line.
#[derive(Debug)]
pub(super) struct Lines {
    input: BufReader<File>,
    /// Offset of the next line in the file.
    offset: u64,
    /// 1-based number of the line last read.
    line: u64,
}

impl Lines {
    pub(super) fn new(file: File, offset: u64, line: u64) -> io::Result<Lines> {
        let mut input = BufReader::with_capacity(BUFFER, file);
        input.seek(SeekFrom::Start(offset))?;
        Ok(Lines {
            input,
            offset,
            line,
        })
    }

    pub(super) fn offset(&self) -> u64 {
        self.offset
    }

    pub(super) fn line(&self) -> u64 {
        self.line
    }

    /// Moves to `offset`, the start of line `line + 1`.
    pub(super) fn seek(&mut self, offset: u64, line: u64) -> io::Result<()> {
        if offset != self.offset {
            self.input.seek(SeekFrom::Start(offset))?;
        }
        self.offset = offset;
        self.line = line;
        Ok(())
    }

    /// Reads the next line into `buf` (cleared first); `None` at the end
    /// of the file. The byte count includes the newline.
    pub(super) fn next(&mut self, buf: &mut Vec<u8>) -> io::Result<Option<(usize, LineEnd)>> {
        buf.clear();
        let limit = MAX_LINE as u64 + 1;
        let mut n = loop {
            match (&mut self.input).take(limit).read_until(b'\n', buf) {
                Ok(n) => break n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        };
        if n == 0 {
            return Ok(None);
        }
        let end = if buf.ends_with(b"\n") {
            LineEnd::Complete
        } else if n < MAX_LINE + 1 {
            LineEnd::Partial
        } else {
            // Skip to the end of this line without keeping it.
            n += loop {
                match self.input.skip_until(b'\n') {
                    Ok(skipped) => break skipped,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(e),
                }
            };
            LineEnd::TooLong
        };
        self.offset += n as u64;
        self.line += 1;
        Ok(Some((n, end)))
    }
}

/// What an event line says, as far as the player cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Code {
    Output,
    Resize,
    Marker,
    /// Input and extensions: they take time but show nothing.
    Other,
}

impl Code {
    fn of(code: &str) -> Code {
        match code {
            "o" => Code::Output,
            "r" => Code::Resize,
            "m" => Code::Marker,
            _ => Code::Other,
        }
    }
}

/// An event line `[time, code, data]`: the time and code always, the data
/// (a string) only when asked for and well-formed.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Parsed {
    pub(super) time: f64,
    pub(super) code: Code,
    pub(super) data: Option<String>,
}

/// Parses an event line. A line is an event when it is a JSON array of a
/// number, a string and any value: the same rule for both cursors, so they
/// count the same events. With `want_data`, the third element is decoded
/// when it is a string (`None` otherwise).
pub(super) fn parse(line: &[u8], want_data: bool) -> Option<Parsed> {
    let line = line.trim_ascii();
    if want_data
        && let Ok((time, code, data)) = serde_json::from_slice::<(f64, Cow<'_, str>, String)>(line)
    {
        return Some(Parsed {
            time,
            code: Code::of(&code),
            data: Some(data),
        });
    }
    let (time, code, IgnoredAny) =
        serde_json::from_slice::<(f64, Cow<'_, str>, IgnoredAny)>(line).ok()?;
    Some(Parsed {
        time,
        code: Code::of(&code),
        data: None,
    })
}

/// `COLSxROWS` → (cols, rows), each clamped to what a screen may be.
pub(super) fn parse_size(data: &str) -> Option<(u16, u16)> {
    let (cols, rows) = data.trim().split_once('x')?;
    let cols: u32 = cols.parse().ok()?;
    let rows: u32 = rows.parse().ok()?;
    Some(clamp_size(cols, rows))
}

/// Largest recorded screen the player models: the same bounds as the
/// client terminals the bastion accepts (`tui::screen::MAX_COLS`). A header
/// or resize event asking for more (a damaged or hostile file) would
/// otherwise make every checkpoint gigabytes.
pub(super) const MAX_COLS: u16 = 1000;
pub(super) const MAX_ROWS: u16 = 500;

pub(super) fn clamp_size(cols: u32, rows: u32) -> (u16, u16) {
    let clamp = |v: u32, max: u16| u16::try_from(v).unwrap_or(max).clamp(1, max);
    (clamp(cols, MAX_COLS), clamp(rows, MAX_ROWS))
}

/// A moment of the recording on both timelines.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Stamp {
    /// Seconds since the start, as recorded (made non-decreasing).
    pub recorded: f64,
    /// Seconds since the start with every pause longer than the idle cap
    /// shortened to the cap.
    pub compressed: f64,
}

impl Stamp {
    /// The time on one of the timelines.
    pub fn on(self, timeline: Timeline) -> f64 {
        match timeline {
            Timeline::Recorded => self.recorded,
            Timeline::Compressed => self.compressed,
        }
    }
}

/// Which clock times are measured on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Timeline {
    /// Pauses as recorded.
    Recorded,
    /// Pauses longer than the idle cap shortened to it.
    Compressed,
}

/// Turns event times into [`Stamp`]s. Times that go backwards (another
/// writer's file) are held at the previous one, so both timelines are
/// monotonic and every comparison by time is a comparison by position.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct Clock {
    last: Stamp,
    cap: f64,
}

impl Clock {
    pub(super) fn new(cap: f64) -> Clock {
        Clock {
            last: Stamp::default(),
            cap,
        }
    }

    pub(super) fn step(&mut self, time: f64) -> Stamp {
        let recorded = if time.is_finite() {
            time.max(self.last.recorded)
        } else {
            self.last.recorded
        };
        let gap = recorded - self.last.recorded;
        self.last = Stamp {
            recorded,
            compressed: self.last.compressed + gap.min(self.cap),
        };
        self.last
    }
}

/// Where the terminal's escape-sequence parser is between two output
/// events. A checkpoint restores the screen into a fresh parser, which
/// starts in the ground state; so checkpoints are only taken where the
/// recorded stream is in the ground state too (an event may end in the
/// middle of a sequence, split across writes). This follows the state
/// machine of `vte` 0.15 (the parser inside vt100), collapsed to the states
/// that differ in how they end.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(super) enum Escape {
    #[default]
    Ground,
    Esc,
    EscIntermediate,
    /// CSI entry, parameters, intermediates and ignore: all end at a final
    /// byte 0x40..=0x7E.
    Csi,
    DcsEntry,
    DcsParam,
    DcsIntermediate,
    /// Ends only by CAN, SUB or ESC.
    DcsIgnore,
    DcsPassthrough,
    Osc,
    /// SOS, PM, APC strings: end only by CAN, SUB or ESC.
    SosPmApc,
}

impl Escape {
    pub(super) fn feed(mut self, bytes: &[u8]) -> Escape {
        let mut rest = bytes;
        while !rest.is_empty() {
            if self == Escape::Ground {
                // Only ESC leaves the ground state; skip to the next one.
                match rest.iter().position(|b| *b == 0x1b) {
                    Some(at) => {
                        self = Escape::Esc;
                        rest = rest.get(at + 1..).unwrap_or_default();
                    }
                    None => break,
                }
                continue;
            }
            if let Some((byte, tail)) = rest.split_first() {
                self = self.byte(*byte);
                rest = tail;
            }
        }
        self
    }

    fn byte(self, b: u8) -> Escape {
        use Escape::*;
        // "Anywhere" transitions, except where a state handles them itself.
        match (self, b) {
            (Ground, 0x1b) => return Esc,
            (Ground, _) => return Ground,
            (_, 0x18 | 0x1a) => return Ground,
            (_, 0x1b) => return Esc,
            _ => {}
        }
        match self {
            Ground => Ground,
            Esc => match b {
                0x20..=0x2f => EscIntermediate,
                0x50 => DcsEntry,
                0x58 | 0x5e | 0x5f => SosPmApc,
                0x5b => Csi,
                0x5d => Osc,
                0x30..=0x7e => Ground,
                _ => Esc,
            },
            EscIntermediate => match b {
                0x30..=0x7e => Ground,
                _ => EscIntermediate,
            },
            Csi => match b {
                0x40..=0x7e => Ground,
                _ => Csi,
            },
            DcsEntry => match b {
                0x20..=0x2f => DcsIntermediate,
                0x30..=0x3f => DcsParam,
                0x40..=0x7e => DcsPassthrough,
                _ => DcsEntry,
            },
            DcsParam => match b {
                0x20..=0x2f => DcsIntermediate,
                0x3c..=0x3f => DcsIgnore,
                0x40..=0x7e => DcsPassthrough,
                _ => DcsParam,
            },
            DcsIntermediate => match b {
                0x30..=0x3f => DcsIgnore,
                0x40..=0x7e => DcsPassthrough,
                _ => DcsIntermediate,
            },
            DcsIgnore => DcsIgnore,
            DcsPassthrough => match b {
                0x9c => Ground,
                _ => DcsPassthrough,
            },
            Osc => match b {
                0x07 => Ground,
                _ => Osc,
            },
            SosPmApc => SosPmApc,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_state_follows_sequences_split_anywhere() {
        let stream: &[u8] =
            b"ab\x1b[1;31mred\x1b[0m\x1b]0;title\x07\x1b]2;t\x1b\\\x1bPq#0\x1b\\\x1b(B\x1b7x";
        for split in 0..stream.len() {
            let (a, b) = stream.split_at(split);
            assert_eq!(
                Escape::Ground.feed(a).feed(b),
                Escape::Ground,
                "split at {split}"
            );
        }
        assert_eq!(Escape::Ground.feed(b"x\x1b[1;3"), Escape::Csi);
        assert_eq!(Escape::Ground.feed(b"\x1b]52;c;AAAA"), Escape::Osc);
        assert_eq!(Escape::Ground.feed(b"\x1b"), Escape::Esc);
        assert_eq!(Escape::Ground.feed(b"\x1b[1\x18"), Escape::Ground);
    }

    #[test]
    fn clock_caps_pauses_and_holds_backward_times() {
        let mut clock = Clock::new(2.0);
        let times: Vec<Stamp> = [0.5, 1.0, 11.0, 10.0, 12.5, f64::NAN]
            .into_iter()
            .map(|t| clock.step(t))
            .collect();
        let rec: Vec<f64> = times.iter().map(|s| s.recorded).collect();
        let comp: Vec<f64> = times.iter().map(|s| s.compressed).collect();
        assert_eq!(rec, [0.5, 1.0, 11.0, 11.0, 12.5, 12.5]);
        assert_eq!(comp, [0.5, 1.0, 3.0, 3.0, 4.5, 4.5]);
    }

    #[test]
    fn parses_events_and_sizes() {
        let p = parse(br#"[1.5, "o", "hi\u001b[0m"]"#, true).unwrap();
        assert_eq!((p.time, p.code), (1.5, Code::Output));
        assert_eq!(p.data.as_deref(), Some("hi\x1b[0m"));
        let p = parse(br#"[2, "x", {"a": 1}]"#, true).unwrap();
        assert_eq!((p.time, p.code, p.data), (2.0, Code::Other, None));
        assert!(parse(br#"[2, "o""#, true).is_none());
        assert!(parse(b"{}", false).is_none());
        assert_eq!(parse_size("120x40"), Some((120, 40)));
        assert_eq!(parse_size("0x99999"), Some((1, 500)));
        assert_eq!(parse_size("12"), None);
    }
}
