//! The mirror of vte's state machine: which bytes begin, continue and end
//! an escape sequence, and whether a sequence may sit inside a run (see the
//! parent module's docs).

use super::scan::full_region;
use super::{MAX_PARAMS, ScreenModel, Sgr};

/// vte 0.15's parser states, which the mirror follows byte for byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum State {
    Ground,
    Escape,
    EscapeIntermediate,
    CsiEntry,
    CsiParam,
    CsiIntermediate,
    CsiIgnore,
    DcsEntry,
    DcsParam,
    DcsIntermediate,
    DcsPassthrough,
    DcsIgnore,
    Osc,
    SosPmApc,
}

impl ScreenModel {
    /// The common CSI, read at once when all of it is in `bytes` from `i`
    /// (ground state): `ESC [`, maybe a private marker, parameter bytes, a
    /// final byte. vte reads it as: CSI entry, the marker collected, CSI
    /// param, dispatch. Returns where it ends.
    pub(super) fn whole_csi(&mut self, bytes: &[u8], fed: &mut usize, i: usize) -> Option<usize> {
        let rest = bytes.get(i..)?;
        if rest.get(1) != Some(&b'[') {
            return None;
        }
        let private = rest.get(2).is_some_and(|b| (0x3c..=0x3f).contains(b));
        let from = 2 + usize::from(private);
        let params = rest
            .get(from..)?
            .iter()
            .take_while(|b| (0x30..=0x3b).contains(*b))
            .count();
        let last = from + params;
        let b = *rest.get(last)?;
        if !(0x40..=0x7e).contains(&b) {
            return None;
        }
        self.seq_start = Some(i);
        self.seq_ok = !private;
        self.seq_odd = private;
        self.params.clear();
        let kept = params.min(MAX_PARAMS);
        self.params
            .extend_from_slice(rest.get(from..from + kept).unwrap_or_default());
        self.state = State::CsiParam;
        self.csi_dispatch(bytes, fed, i + last, b);
        Some(i + last + 1)
    }

    /// An ESC starts a sequence (in any state: it aborts one being read).
    pub(super) fn begin_sequence(&mut self, bytes: &[u8], fed: &mut usize, i: usize) {
        if self.state != State::Ground {
            self.end_sequence(bytes, fed, false);
        }
        self.state = State::Escape;
        self.seq_start = Some(i);
        self.seq_ok = true;
        self.seq_odd = false;
        self.params.clear();
    }

    /// The sequence being read is over; back to the ground state. One a
    /// run cannot hold ends the run before it.
    pub(super) fn end_sequence(&mut self, bytes: &[u8], fed: &mut usize, ok: bool) {
        self.state = State::Ground;
        if !(ok && self.seq_ok) {
            let at = self.seq_start.unwrap_or(0);
            self.close_run(bytes, fed, at);
        }
    }

    /// vte's transitions outside the ground state (vte 0.15 `advance_*`).
    pub(super) fn step(&mut self, bytes: &[u8], fed: &mut usize, i: usize, b: u8) {
        use State::*;
        // "Anywhere" transitions: CAN and SUB end any sequence, ESC starts
        // a new one (except in the escape state, which ignores it, and
        // where vte lists them itself below).
        let executes = matches!(b, 0x00..=0x17 | 0x19 | 0x1c..=0x1f);
        match self.state {
            Ground => {}
            Escape => match b {
                _ if executes => self.seq_ok = false,
                0x20..=0x2f => self.state = EscapeIntermediate,
                0x5b => self.state = CsiEntry,
                0x50 => self.enter(DcsEntry),
                0x5d => self.enter(Osc),
                0x58 | 0x5e | 0x5f => self.enter(SosPmApc),
                0x30..=0x7e => {
                    if b == b'c' {
                        // RIS: a new screen, scroll regions and scrollback
                        // included.
                        self.end_sequence(bytes, fed, false);
                        self.catch_up(bytes, fed, i);
                        self.main_full = true;
                        self.pulled = self.parser.callbacks().total;
                        self.owed = 0;
                    } else {
                        self.end_sequence(bytes, fed, false);
                    }
                }
                0x18 | 0x1a => self.end_sequence(bytes, fed, false),
                _ => self.seq_ok = false,
            },
            EscapeIntermediate => match b {
                _ if executes => self.seq_ok = false,
                0x20..=0x2f => {}
                // vt100 ignores escapes with intermediates (`ESC ( B`).
                0x30..=0x7e => self.end_sequence(bytes, fed, true),
                0x7f => self.seq_ok = false,
                _ => self.anywhere(bytes, fed, i, b),
            },
            CsiEntry | CsiParam | CsiIntermediate | CsiIgnore => match b {
                // Executed inside the sequence (a CR or LF in a CSI moves
                // the cursor): the sequence is no run's.
                _ if executes => self.seq_ok = false,
                0x40..=0x7e => {
                    if self.state == CsiIgnore {
                        self.end_sequence(bytes, fed, false);
                    } else {
                        self.csi_dispatch(bytes, fed, i, b);
                    }
                }
                0x20..=0x2f => {
                    self.seq_ok = false;
                    if self.state != CsiIgnore {
                        self.seq_odd = true;
                        self.state = CsiIntermediate;
                    }
                }
                0x30..=0x3f => match self.state {
                    CsiEntry | CsiParam if b <= 0x3b => {
                        self.state = CsiParam;
                        if self.params.len() < MAX_PARAMS {
                            self.params.push(b);
                        }
                    }
                    CsiEntry => {
                        // A private marker (`CSI ?`): collected as an
                        // intermediate.
                        self.seq_ok = false;
                        self.seq_odd = true;
                        self.state = CsiParam;
                    }
                    CsiParam | CsiIntermediate => {
                        self.seq_ok = false;
                        self.state = CsiIgnore;
                    }
                    _ => {}
                },
                0x7f => self.seq_ok = false,
                _ => self.anywhere(bytes, fed, i, b),
            },
            DcsEntry | DcsParam | DcsIntermediate => match b {
                _ if executes => {}
                0x20..=0x2f => self.state = DcsIntermediate,
                0x30..=0x3f => {
                    self.state = match (self.state, b) {
                        (DcsEntry, _) => DcsParam,
                        (DcsParam, 0x30..=0x3b) => DcsParam,
                        _ => DcsIgnore,
                    }
                }
                0x40..=0x7e => self.state = DcsPassthrough,
                0x7f => {}
                _ => self.anywhere(bytes, fed, i, b),
            },
            DcsPassthrough => match b {
                0x18 | 0x1a | 0x9c => self.end_sequence(bytes, fed, false),
                0x1b => self.begin_sequence(bytes, fed, i),
                _ => {}
            },
            Osc => match b {
                0x07 | 0x18 | 0x1a => self.end_sequence(bytes, fed, false),
                0x1b => self.begin_sequence(bytes, fed, i),
                _ => {}
            },
            DcsIgnore | SosPmApc => self.anywhere(bytes, fed, i, b),
        }
    }

    /// A string sequence (DCS, OSC, SOS, PM, APC): no run's.
    pub(super) fn enter(&mut self, state: State) {
        self.seq_ok = false;
        self.state = state;
    }

    pub(super) fn anywhere(&mut self, bytes: &[u8], fed: &mut usize, i: usize, b: u8) {
        match b {
            0x18 | 0x1a => self.end_sequence(bytes, fed, false),
            0x1b => self.begin_sequence(bytes, fed, i),
            _ => self.seq_ok = false,
        }
    }

    pub(super) fn csi_dispatch(&mut self, bytes: &[u8], fed: &mut usize, i: usize, b: u8) {
        let ok = !self.seq_odd && matches!(b, b'm' | b'K');
        if ok
            && b == b'm'
            && self.seq_ok
            && self.run.is_some()
            && let Some(start) = self.seq_start
        {
            let p = self.params.as_slice();
            let resets = p.is_empty() || p == b"0" || p.starts_with(b";") || p.starts_with(b"0;");
            self.sgrs.push(Sgr {
                start,
                end: i + 1,
                resets,
            });
        }
        self.end_sequence(bytes, fed, ok);
        if b == b'r' && !self.seq_odd {
            // DECSTBM: the region of the screen shown now.
            self.catch_up(bytes, fed, i);
            let screen = self.parser.screen();
            if !screen.alternate_screen() {
                let rows = screen.size().0.get();
                self.main_full = full_region(&self.params, rows).unwrap_or(false);
            }
        }
    }
}
