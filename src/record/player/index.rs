//! The index scanner: a second, light cursor that reads the cast ahead of
//! the playhead without a terminal model, only parsing each line's time and
//! code, to learn the duration and collect the markers for the command
//! list. It costs a JSON parse per line, a small fraction of what the
//! playhead's terminal emulation costs, so it covers a large file long
//! before the playhead could.

use std::io;
use std::sync::Arc;

use super::lines::{Clock, Code, LineEnd, Lines, parse};
use super::{Marker, Stamp, Work};
use crate::record::export::{parse_key_marker, parse_raw_marker};
use crate::record::reader::Truncation;
use crate::record::writer::{OWN_PREFIXES, REDRAW_PREFIX};

/// Most stored keyframes kept: past it every other one is dropped (an
/// entry is about a hundred bytes; the Demand Active is shared).
const MAX_REDRAWS: usize = 20_000;

/// A desktop's stored keyframe (the writer's `key:` then `redraw:`): where
/// the playhead can start from a black picture and decode on, the target
/// having repainted the whole desktop just after.
#[derive(Debug, Clone)]
pub(super) struct Redraw {
    /// The `key:` line's time.
    pub(super) at: Stamp,
    /// The cast offset and line number of the `key:` line.
    pub(super) offset: u64,
    pub(super) line: u64,
    /// The clock and the last stamp before that line.
    pub(super) clock: Clock,
    pub(super) last: Stamp,
    /// The sidecar member the `key:` names, and the update bytes before it.
    pub(super) sidecar_at: u64,
    pub(super) raw: u64,
    pub(super) demand_active: Arc<[u8]>,
}

/// A `key:` line just read, waiting for the `redraw:` that may follow it.
#[derive(Debug, Clone, Copy)]
struct Key {
    at: Stamp,
    offset: u64,
    line: u64,
    clock: Clock,
    last: Stamp,
    sidecar_at: u64,
}

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
    /// A desktop's stored keyframes, in order.
    pub(super) redraws: Vec<Redraw>,
    key: Option<Key>,
    /// A desktop's update bytes (`raw:` markers) so far.
    raw: u64,
}

/// The marker an `m` event shows in the list, if any: the writer's own
/// `raw:`, `key:` and `sidecar:` markers are bookkeeping, not moments to
/// jump to.
pub(super) fn marker(at: Stamp, data: &str) -> Option<Marker> {
    if OWN_PREFIXES.iter().any(|p| data.starts_with(p)) {
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
            redraws: Vec::new(),
            key: None,
            raw: 0,
        }
    }

    pub(super) fn offset(&self) -> u64 {
        self.lines.offset()
    }

    /// Reads on until `work` is used up or the file ends.
    pub(super) fn step(&mut self, work: &mut Work) -> io::Result<()> {
        while !self.done && work.left() {
            let (offset, line) = (self.lines.offset(), self.lines.line());
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
            let (clock, last) = (self.clock, self.last);
            let at = self.clock.step(event.time);
            self.last = at;
            let key = self.key.take();
            if event.code == Code::Marker {
                let before = Key {
                    at,
                    offset,
                    line,
                    clock,
                    last,
                    sidecar_at: 0,
                };
                self.add_marker(at, before, key);
            }
        }
        Ok(())
    }

    /// A marker line: the writer's own are bookkeeping (a desktop's update
    /// sizes and keyframes), the rest go to the list.
    fn add_marker(&mut self, at: Stamp, here: Key, key: Option<Key>) {
        // The light parse skipped the data; parse again.
        let Some(data) = parse(&self.buf, true).and_then(|p| p.data) else {
            return;
        };
        if let Some((n, _)) = parse_raw_marker(&data) {
            self.raw = self.raw.saturating_add(n);
            return;
        }
        if let Some(sidecar_at) = parse_key_marker(&data) {
            self.key = Some(Key { sidecar_at, ..here });
            return;
        }
        if let (Some(key), Some(encoded)) = (key, data.strip_prefix(REDRAW_PREFIX)) {
            self.add_redraw(key, encoded);
            return;
        }
        if self.markers.len() >= self.max_markers {
            self.dropped += 1;
            return;
        }
        if let Some(m) = marker(at, &data) {
            self.markers.push(m);
        }
    }

    fn add_redraw(&mut self, key: Key, encoded: &str) {
        use base64::Engine as _;
        let Ok(bytes) = base64::engine::general_purpose::STANDARD.decode(encoded) else {
            self.damaged += 1;
            return;
        };
        // Nearly always the same Demand Active: kept once.
        let demand_active = match self.redraws.last() {
            Some(r) if *r.demand_active == *bytes => r.demand_active.clone(),
            _ => Arc::from(bytes),
        };
        if self.redraws.len() >= MAX_REDRAWS {
            let mut i = 0;
            self.redraws.retain(|_| {
                i += 1;
                i % 2 == 0
            });
        }
        self.redraws.push(Redraw {
            at: key.at,
            offset: key.offset,
            line: key.line,
            clock: key.clock,
            last: key.last,
            sidecar_at: key.sidecar_at,
            raw: self.raw,
            demand_active,
        });
    }
}
