//! Writes the lines a recorded session put on the screen into the
//! screen-text index, in batches (once a second and at the end), so the
//! pump never waits on the database per line. A failed write is logged and
//! the lines dropped: the recording still holds them, and the index must
//! never stall or end a session.

use std::sync::Mutex;
use std::time::Duration;

use super::{Shared, lock};
use crate::record::ScreenLine;
use crate::services::Services;
use crate::store;

/// Feeds output into the session's collector, if it has one.
pub(super) fn feed(shared: &mut Shared, bytes: &[u8], at: Duration) {
    if let Some(text) = shared.screen.as_mut() {
        text.feed(bytes, at);
    }
}

/// Writes what was collected; with `last`, the unfinished line too.
pub(super) async fn flush(services: &Services, session: &str, shared: &Mutex<Shared>, last: bool) {
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
    // Its own task: the pump may drop this future at any await (the
    // session ends), and a batch already taken must still be written.
    let db = services.store.clone();
    let session = session.to_string();
    let write = tokio::spawn(async move {
        let written = async {
            let mut tx = db.begin().await?;
            store::screen_text::insert(&mut tx, &session, &rows).await?;
            db.commit(tx).await
        }
        .await;
        if let Err(e) = written {
            tracing::warn!(session, lines = rows.len(), "screen text not indexed: {e}");
        }
    });
    let _ = write.await;
}
