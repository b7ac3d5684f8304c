//! Writes the lines a recorded session put on the screen into the
//! screen-text index, in batches (once a second and at the end) queued to
//! the audit writer, so the pump never waits on the database. A write that
//! fails after the writer's retries is logged and the lines dropped: the
//! recording still holds them, and the index must never stall or end a
//! session.

use std::sync::Mutex;
use std::time::Duration;

use super::{Shared, lock};
use crate::record::ScreenLine;
use crate::services::Services;

/// Feeds output into the session's collector, if it has one.
pub(super) fn feed(shared: &mut Shared, bytes: &[u8], at: Duration) {
    if let Some(text) = shared.screen.as_mut() {
        text.feed(bytes, at);
    }
}

/// Queues what was collected for writing; with `last`, the unfinished line too.
pub(super) fn flush(services: &Services, session: &str, shared: &Mutex<Shared>, last: bool) {
    let lines: Vec<ScreenLine> = {
        let mut s = lock(shared);
        match s.screen.as_mut() {
            Some(text) if last => text.finish(),
            Some(text) => text.take(),
            None => return,
        }
    };
    if lines.is_empty() {
        return;
    }
    let rows: Vec<(i64, String)> = lines
        .into_iter()
        .map(|l| (i64::try_from(l.at.as_millis()).unwrap_or(i64::MAX), l.text))
        .collect();
    // Batched with the audit rows: a thousand sessions flushing once a
    // second must not make a thousand transactions wait for the database's
    // one writer lock (they timed out at N=1000 in the load test).
    services.audit.queue_screen(session, rows);
}
