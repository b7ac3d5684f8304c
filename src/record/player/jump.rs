//! A desktop's seeks through stored keyframes: the recording marks where
//! the relay asked the target for a full repaint (`key:` then `redraw:`,
//! collected by the index scan), so a seek far past the playhead starts a
//! black picture there and decodes only what follows, instead of every
//! update since the start. A jump is checked when the seek arrives: if
//! some pixel was never drawn (the target ignored the request, or the
//! moment is too soon after it), the playhead goes back and tries the
//! keyframe before, and after [`Jumps::TRIES`] decodes the ordinary way.

use super::lines::Escape;
use super::{Jumps, Player};

/// Seconds after a keyframe that its repaint is assumed to take: a seek
/// to a moment sooner than this after one starts from the one before.
const SETTLE: f64 = 1.0;

impl Player {
    /// Moves the playhead to the last keyframe before the target, if that
    /// is ahead of it.
    pub(super) fn jump(&mut self) {
        if self.jumps.left == 0 || self.caught_up() {
            return;
        }
        let (on, t) = (self.target.timeline, self.target.at);
        let below = self.jumps.below;
        let Some(redraw) = self
            .scan
            .redraws
            .iter()
            .rev()
            .find(|r| r.offset < below && r.at.on(on) + SETTLE <= t)
        else {
            return;
        };
        if redraw.offset <= self.head.resume_offset() {
            return;
        }
        let redraw = redraw.clone();
        if let Err(source) = self.head.lines.seek(redraw.offset, redraw.line) {
            self.fail(source);
            return;
        }
        let head = &mut self.head;
        head.clock = redraw.clock;
        head.last = redraw.last;
        head.pending = None;
        head.eof = false;
        head.escape = Escape::Ground;
        if let Some(picture) = head.picture.as_mut() {
            picture.jump(&redraw.demand_active, redraw.sidecar_at, redraw.raw);
        }
        self.jumps.from = Some(redraw.offset);
        self.jumps.left -= 1;
    }

    /// Once a seek that jumped has arrived: keeps the jump if the picture
    /// is whole, else goes back to before that keyframe (the next step
    /// tries an earlier one, or decodes from a checkpoint or the start).
    pub(super) fn check_jump(&mut self) {
        let Some(from) = self.jumps.from else {
            return;
        };
        if self.error.is_some() || !self.caught_up() {
            return;
        }
        self.jumps.from = None;
        if self.head.picture.as_mut().is_none_or(|p| p.whole()) {
            return;
        }
        self.jumps.below = from;
        let (on, t) = (self.target.timeline, self.target.at);
        let before = self.checkpoints.partition_point(|c| c.last.on(on) <= t);
        match before.checked_sub(1) {
            Some(i) => self.restore(i),
            None => self.restart(),
        }
    }
}

impl Jumps {
    pub(super) const TRIES: u8 = 3;

    pub(super) fn new() -> Jumps {
        Jumps {
            below: u64::MAX,
            left: Jumps::TRIES,
            from: None,
        }
    }
}
