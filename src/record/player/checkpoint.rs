//! Checkpoints: copies of the playhead's screen left behind it, spaced by
//! file size and thinned to a memory budget, that seeking back restores.

use super::head::nz;
use super::lines::{Clock, Escape};
use super::picture::Point;
use super::{Player, Stamp};

/// Checkpoint memory, for reports and tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CheckpointStats {
    pub count: usize,
    /// Estimated bytes held by their screen copies.
    pub bytes: usize,
    /// File bytes between checkpoints now.
    pub spacing: u64,
}

/// The screen at some position, to restart from.
#[derive(Debug)]
pub(super) struct Checkpoint {
    /// Offset of the first line not applied.
    pub(super) offset: u64,
    pub(super) line: u64,
    /// The last event applied, and the clock after it.
    pub(super) last: Stamp,
    pub(super) clock: Clock,
    pub(super) size: (u16, u16),
    pub(super) screen: vt100::Screen,
    /// A desktop's picture here.
    pub(super) picture: Option<Point>,
    /// Estimated bytes.
    pub(super) cost: usize,
}

impl Player {
    pub(super) fn restore(&mut self, index: usize) {
        let Some(c) = self.checkpoints.get(index) else {
            return;
        };
        if let Err(source) = self.head.lines.seek(c.offset, c.line) {
            self.fail(source);
            return;
        }
        let mut parser = vt100::Parser::new(nz(c.size.1), nz(c.size.0), 0);
        *parser.screen_mut() = c.screen.clone();
        let head = &mut self.head;
        head.parser = parser;
        head.escape = Escape::Ground;
        head.clock = c.clock;
        head.last = c.last;
        head.size = c.size;
        head.pending = None;
        head.eof = false;
        if let Some(picture) = head.picture.as_mut() {
            picture.restore(c.picture.as_ref());
        }
    }

    /// Leaves a checkpoint where the playhead is, if it is far enough past
    /// the last one and between escape sequences.
    pub(super) fn checkpoint(&mut self) {
        let head = &self.head;
        if head.escape != Escape::Ground || head.pending.is_some() {
            return;
        }
        // A desktop is spaced by the updates decoded, and can only be
        // taken up again where the sidecar starts a member (a `key:`).
        let (from, at) = match &head.picture {
            Some(picture) => {
                let from = self
                    .checkpoints
                    .last()
                    .and_then(|c| c.picture.as_ref())
                    .map_or(0, |p| p.raw);
                (from, picture.raw)
            }
            None => (
                self.checkpoints.last().map_or(self.body.0, |c| c.offset),
                head.lines.offset(),
            ),
        };
        if at < from.saturating_add(self.spacing) {
            return;
        }
        let point = match self.head.picture.as_mut() {
            Some(picture) => match picture.point() {
                Some(point) => Some(point),
                None => return,
            },
            None => None,
        };
        let head = &self.head;
        let offset = head.lines.offset();
        let (cols, rows) = head.size;
        // Both grids (the alternate one exists once used) plus row headers.
        let cost = usize::from(cols) * usize::from(rows) * size_of::<vt100::Cell>() * 2
            + usize::from(rows) * 64
            + 512
            + point.as_ref().map_or(0, Point::cost);
        self.checkpoints.push(Checkpoint {
            picture: point,
            offset,
            line: head.lines.line(),
            last: head.last,
            clock: head.clock,
            size: head.size,
            screen: head.parser.screen().clone(),
            cost,
        });
        self.checkpoint_bytes += cost;
        while self.checkpoint_bytes > self.options.checkpoint_budget && !self.checkpoints.is_empty()
        {
            self.thin();
        }
    }

    /// Drops every other checkpoint (keeping the latest) and doubles the
    /// spacing, so the survivors stay evenly spread over the file.
    pub(super) fn thin(&mut self) {
        let len = self.checkpoints.len();
        if len <= 1 {
            self.checkpoints.clear();
        } else {
            let mut i = 0;
            self.checkpoints.retain(|_| {
                i += 1;
                (len - i).is_multiple_of(2)
            });
        }
        self.spacing = self.spacing.saturating_mul(2);
        self.checkpoint_bytes = self.checkpoints.iter().map(|c| c.cost).sum();
    }

    pub fn checkpoint_stats(&self) -> CheckpointStats {
        CheckpointStats {
            count: self.checkpoints.len(),
            bytes: self.checkpoint_bytes,
            spacing: self.spacing,
        }
    }
}
