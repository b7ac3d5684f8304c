//! vt100, guarded. vt100 0.18.1 panics on some output: a variation
//! selector or combining mark after a wide character at the margin of a
//! narrow screen (an `unwrap` on a cell that is not there). The person
//! picks their window size and the target prints what they ask it to, so
//! every place that feeds a parser output it did not write goes through
//! [`process`], and one that gets `Err` drops that parser and starts
//! a fresh one: its screen was mid-update and is not to be trusted.

use std::panic::{AssertUnwindSafe, catch_unwind};

/// vt100 panicked while parsing; the parser must not be used again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Panicked;

/// [`vt100::Parser::process`], with a panic turned into `Err`.
pub fn process<CB: vt100::Callbacks>(
    parser: &mut vt100::Parser<CB>,
    bytes: &[u8],
) -> Result<(), Panicked> {
    catch_unwind(AssertUnwindSafe(|| parser.process(bytes))).map_err(|_| Panicked)
}

/// [`process`] for a plain parser: after a panic, a blank screen of the
/// same size takes its place (a replay or a monitor goes on from there).
pub fn process_or_restart(parser: &mut vt100::Parser, bytes: &[u8]) {
    if process(parser, bytes).is_err() {
        let (rows, cols) = parser.screen().size();
        *parser = vt100::Parser::new(rows, cols, 0);
    }
}
