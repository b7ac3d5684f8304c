//! The index scanner: a second, light cursor that reads the cast ahead of
//! the playhead without a terminal model, only parsing each line's time and
//! code, to learn the duration and collect the markers for the command
//! list. It costs a JSON parse per line, a small fraction of what the
//! playhead's terminal emulation costs, so it covers a large file long
//! before the playhead could.

use std::io;

use super::lines::{Clock, Code, LineEnd, Lines, parse};
use super::{Marker, Stamp, Work};
use crate::record::reader::Truncation;
use crate::record::writer::{KEY_PREFIX, RAW_PREFIX, SIDECAR_PREFIX};

/// Longest marker text kept, in characters: a command line longer than a
/// screen is cut, so that the list's memory stays bounded.
const MARKER_TEXT: usize = 200;

/// What the scan found so far.
#[derive(Debug)]
pub(super) struct Scan {
    lines: Lines,
    clock: Clock,
    buf: Vec<u8>,
    /// The stamp of the last event read.
    pub(super) last: Stamp,
    pub(super) done: bool,
    pub(super) markers: Vec<Marker>,
    pub(super) max_markers: usize,
    /// Markers seen after the list was full.
    pub(super) dropped: u64,
    pub(super) truncated: Option<Truncation>,
    /// Complete lines that were not events (or too long), skipped.
    pub(super) damaged: u64,
}

/// The marker an `m` event shows in the list, if any: the writer's own
/// `raw:`, `key:` and `sidecar:` markers are bookkeeping, not moments to
/// jump to.
pub(super) fn marker(at: Stamp, data: &str) -> Option<Marker> {
    if [RAW_PREFIX, KEY_PREFIX, SIDECAR_PREFIX]
        .iter()
        .any(|p| data.starts_with(p))
    {
        return None;
    }
    let (command, text) = match data.strip_prefix("cmd: ") {
        Some(cmd) => (true, cmd),
        None => (false, data),
    };
    // Control characters would be replaced when drawn anyway; doing it
    // here keeps a stored ESC from ever reaching a person's terminal.
    let mut clean: String = text
        .chars()
        .take(MARKER_TEXT)
        .map(|c| if c.is_control() { '?' } else { c })
        .collect();
    if text.chars().nth(MARKER_TEXT).is_some() {
        clean.push('…');
    }
    Some(Marker {
        at,
        text: clean,
        command,
    })
}

impl Scan {
    pub(super) fn new(lines: Lines, cap: f64, max_markers: usize) -> Scan {
        Scan {
            lines,
            clock: Clock::new(cap),
            buf: Vec::new(),
            last: Stamp::default(),
            done: false,
            markers: Vec::new(),
            max_markers,
            dropped: 0,
            truncated: None,
            damaged: 0,
        }
    }

    pub(super) fn offset(&self) -> u64 {
        self.lines.offset()
    }

    /// Reads on until `work` is used up or the file ends.
    pub(super) fn step(&mut self, work: &mut Work) -> io::Result<()> {
        while !self.done && work.left() {
            let Some((n, end)) = self.lines.next(&mut self.buf)? else {
                self.done = true;
                break;
            };
            work.spend(n);
            if end == LineEnd::TooLong {
                self.damaged += 1;
                continue;
            }
            if self.buf.trim_ascii().is_empty() {
                continue;
            }
            let Some(event) = parse(&self.buf, false) else {
                if end == LineEnd::Partial {
                    self.truncated = Some(Truncation {
                        line: self.lines.line(),
                        bytes: n,
                    });
                    self.done = true;
                } else {
                    self.damaged += 1;
                }
                continue;
            };
            let at = self.clock.step(event.time);
            self.last = at;
            if event.code == Code::Marker {
                self.add_marker(at);
            }
        }
        Ok(())
    }

    fn add_marker(&mut self, at: Stamp) {
        if self.markers.len() >= self.max_markers {
            self.dropped += 1;
            return;
        }
        // The light parse skipped the data; markers are rare, parse again.
        let Some(data) = parse(&self.buf, true).and_then(|p| p.data) else {
            return;
        };
        if let Some(m) = marker(at, &data) {
            self.markers.push(m);
        }
    }
}
