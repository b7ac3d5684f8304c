//! The playhead: a vt100 terminal model (or, for a desktop, the picture)
//! fed the cast's events, one line at a time, and where it is in the file.

use std::num::NonZeroU16;

use super::Stamp;
use super::lines::{Clock, Code, Escape, LineEnd, Lines, parse, parse_size};
use super::picture::Picture;
use crate::record::RecordError;
use crate::record::reader::Truncation;

/// An event read by the playhead but not applied yet: it is after the
/// target.
#[derive(Debug)]
pub(super) struct Pending {
    pub(super) at: Stamp,
    pub(super) code: Code,
    pub(super) data: Option<String>,
    /// Its line's length in the file.
    pub(super) bytes: usize,
}

/// What a playhead read: at most one line per call, so work is bounded.
pub(super) enum Read1 {
    Event(Pending),
    /// A blank, damaged or too long line of this many bytes.
    Skipped(usize),
    End,
}

/// The playhead: a terminal model and where it is in the file.
pub(super) struct Head {
    pub(super) lines: Lines,
    pub(super) parser: vt100::Parser,
    pub(super) escape: Escape,
    pub(super) clock: Clock,
    /// The last event applied (zero before the first).
    pub(super) last: Stamp,
    /// The recorded terminal's size now, (cols, rows).
    pub(super) size: (u16, u16),
    pub(super) pending: Option<Pending>,
    /// Every event has been applied.
    pub(super) eof: bool,
    pub(super) buf: Vec<u8>,
    pub(super) truncated: Option<Truncation>,
    pub(super) damaged: u64,
    /// A desktop recording's picture (its cast has no text).
    pub(super) picture: Option<Box<Picture>>,
}

impl Head {
    /// Offset of the first line not applied.
    pub(super) fn resume_offset(&self) -> u64 {
        let pending = self.pending.as_ref().map_or(0, |p| p.bytes as u64);
        self.lines.offset() - pending
    }

    pub(super) fn read(&mut self) -> std::io::Result<Read1> {
        let Some((n, end)) = self.lines.next(&mut self.buf)? else {
            return Ok(Read1::End);
        };
        if end == LineEnd::TooLong {
            self.damaged += 1;
            return Ok(Read1::Skipped(n));
        }
        if self.buf.trim_ascii().is_empty() {
            return Ok(Read1::Skipped(n));
        }
        match parse(&self.buf, true) {
            Some(p) => Ok(Read1::Event(Pending {
                at: self.clock.step(p.time),
                code: p.code,
                data: p.data,
                bytes: n,
            })),
            None if end == LineEnd::Partial => {
                self.truncated = Some(Truncation {
                    line: self.lines.line(),
                    bytes: n,
                });
                Ok(Read1::End)
            }
            None => {
                self.damaged += 1;
                Ok(Read1::Skipped(n))
            }
        }
    }

    /// Applies an event; an error is the sidecar's (a desktop's updates
    /// cannot be read), which stops playback.
    pub(super) fn apply(&mut self, event: Pending) -> Result<(), RecordError> {
        self.last = event.at;
        let Some(data) = event.data else {
            return Ok(());
        };
        match event.code {
            Code::Marker if self.picture.is_some() => {
                if let Some(picture) = self.picture.as_mut() {
                    picture.marker(&data)?;
                }
            }
            Code::Output => {
                crate::record::vt::process_or_restart(&mut self.parser, data.as_bytes());
                self.escape = self.escape.feed(data.as_bytes());
            }
            Code::Resize => {
                if let Some(size) = parse_size(&data).filter(|s| *s != self.size) {
                    self.parser.set_size(nz(size.1), nz(size.0));
                    self.size = size;
                }
            }
            Code::Marker | Code::Other => {}
        }
        Ok(())
    }
}

pub(super) fn nz(n: u16) -> NonZeroU16 {
    NonZeroU16::new(n).unwrap_or(NonZeroU16::MIN)
}
