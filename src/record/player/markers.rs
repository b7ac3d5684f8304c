//! Command markers: the list the index scan collects, and moving between
//! them.

use super::{Player, Stamp};

/// A marker (`[t, "m", text]`) for the command list.
#[derive(Debug, Clone, PartialEq)]
pub struct Marker {
    pub at: Stamp,
    /// The command line without `cmd: `, or another marker's text; control
    /// characters replaced by `?`, cut at 200 characters.
    pub text: String,
    /// A logged command (`cmd: ...`) rather than another kind of marker.
    pub command: bool,
}

impl Player {
    /// The markers found so far, in time order.
    pub fn markers(&self) -> &[Marker] {
        &self.scan.markers
    }

    /// Markers left out because the list was full.
    pub fn markers_dropped(&self) -> u64 {
        self.scan.dropped
    }

    /// The last marker at or before `at` (current timeline).
    pub fn marker_at(&self, at: f64) -> Option<usize> {
        let on = self.timeline;
        self.scan
            .markers
            .partition_point(|m| m.at.on(on) <= at)
            .checked_sub(1)
    }

    /// The first marker after `at`.
    pub fn marker_after(&self, at: f64) -> Option<usize> {
        let on = self.timeline;
        let i = self
            .scan
            .markers
            .partition_point(|m| m.at.on(on) <= at + TIME_EPSILON);
        (i < self.scan.markers.len()).then_some(i)
    }

    /// The last marker before `at`.
    pub fn marker_before(&self, at: f64) -> Option<usize> {
        let on = self.timeline;
        self.scan
            .markers
            .partition_point(|m| m.at.on(on) < at - TIME_EPSILON)
            .checked_sub(1)
    }
}

/// Marker navigation treats times this close as equal, so that `n` after
/// a jump to a marker goes to the next one.
const TIME_EPSILON: f64 = 1e-6;
