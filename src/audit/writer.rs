//! The writer for the audit rows that come at a person's typing rate
//! (commands), a client's file rate (transfers) or a screen's rate (the
//! screen-text index, once a second per session): one task that takes them
//! from a queue and writes them in
//! batches, one transaction per batch, so that a thousand people typing do
//! not make a thousand transactions queue for the database's one writer
//! lock, and nobody's keystrokes wait for the database.
//!
//! Rows keep the time they happened (not the time they were written) and
//! their order. A batch that fails (the database busy past its timeout) is
//! retried with backoff before it is given up, with an error naming how
//! many rows were lost. [`AuditWriter::flush`] waits until everything
//! queued before it is committed: a session calls it before its own row is
//! closed, and shutdown before the process exits. What is still queued when
//! the process is killed (`kill -9`) is lost; the recording still holds
//! every command as a marker.

use std::time::Duration;

use jiff::Timestamp;
use tokio::sync::{mpsc, oneshot};

use super::{AuditEvent, record};
use crate::store::{self, Store, StoreError};

/// Rows waiting, at most; a full queue makes writers wait (backpressure),
/// never drops a row.
const QUEUE: usize = 65_536;
/// Rows per transaction, at most.
const BATCH: usize = 512;
/// Attempts per batch before it is given up.
const ATTEMPTS: u32 = 6;

enum Item {
    Row(Box<AuditEvent>, Timestamp),
    /// Lines of a session's screen for the screen-text index (not part of
    /// the hash chain): (offset in ms, text).
    Screen(String, Vec<(i64, String)>),
    Flush(oneshot::Sender<()>),
}

/// What one transaction writes.
#[derive(Default)]
struct Batch {
    rows: Vec<(Box<AuditEvent>, Timestamp)>,
    screens: Vec<(String, Vec<(i64, String)>)>,
}

impl Batch {
    fn len(&self) -> usize {
        self.rows.len() + self.screens.len()
    }
}

/// A handle on the writer task; cheap to clone.
#[derive(Clone)]
pub struct AuditWriter {
    tx: mpsc::Sender<Item>,
}

impl std::fmt::Debug for AuditWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuditWriter").finish_non_exhaustive()
    }
}

impl AuditWriter {
    /// Starts the writer task on the current runtime.
    pub fn start(store: Store) -> AuditWriter {
        let (tx, rx) = mpsc::channel(QUEUE);
        tokio::spawn(run(store, rx));
        AuditWriter { tx }
    }

    /// Queues a row that happened at `at`. Waits only when the queue is full.
    pub async fn write(&self, event: AuditEvent, at: Timestamp) {
        if self.tx.send(Item::Row(Box::new(event), at)).await.is_err() {
            tracing::error!("the audit writer has stopped: a row is lost");
        }
    }

    /// The same from code that cannot wait (a relay's callbacks): queued at
    /// once, or, when the queue is full, by a task that waits for room (the
    /// row keeps its time; only its place in the queue may move).
    pub fn queue(&self, event: AuditEvent, at: Timestamp) {
        self.queue_item(Item::Row(Box::new(event), at));
    }

    /// Queues lines for the screen-text index of `session`, as
    /// [`Self::queue`] does: a session's pump never waits for them.
    pub fn queue_screen(&self, session: &str, lines: Vec<(i64, String)>) {
        self.queue_item(Item::Screen(session.to_string(), lines));
    }

    fn queue_item(&self, item: Item) {
        match self.tx.try_send(item) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(item)) => {
                let tx = self.tx.clone();
                tokio::spawn(async move {
                    if tx.send(item).await.is_err() {
                        tracing::error!("the audit writer has stopped: a row is lost");
                    }
                });
            }
            Err(mpsc::error::TrySendError::Closed(_)) => {
                tracing::error!("the audit writer has stopped: a row is lost");
            }
        }
    }

    /// Returns once every row queued before this call is committed (or
    /// given up).
    pub async fn flush(&self) {
        let (done, wait) = oneshot::channel();
        if self.tx.send(Item::Flush(done)).await.is_ok() {
            let _ = wait.await;
        }
    }
}

async fn run(store: Store, mut rx: mpsc::Receiver<Item>) {
    let mut batch = Batch::default();
    let mut flushes = Vec::new();
    while let Some(item) = rx.recv().await {
        let mut next = Some(item);
        while let Some(item) = next.take() {
            match item {
                Item::Row(event, at) => batch.rows.push((event, at)),
                Item::Screen(session, lines) => batch.screens.push((session, lines)),
                Item::Flush(done) => flushes.push(done),
            }
            if batch.len() < BATCH {
                next = rx.try_recv().ok();
            }
        }
        if batch.len() > 0 {
            write_batch(&store, &batch).await;
            batch = Batch::default();
        }
        for done in flushes.drain(..) {
            let _ = done.send(());
        }
    }
}

async fn write_batch(store: &Store, batch: &Batch) {
    let mut wait = Duration::from_millis(50);
    for attempt in 1..=ATTEMPTS {
        match try_write(store, batch).await {
            Ok(()) => return,
            Err(e) if attempt < ATTEMPTS => {
                tracing::warn!(
                    rows = batch.rows.len(),
                    screens = batch.screens.len(),
                    attempt,
                    "audit rows not written yet, retrying: {e}"
                );
                tokio::time::sleep(wait).await;
                wait *= 2;
            }
            Err(e) => {
                tracing::error!(
                    rows = batch.rows.len(),
                    screens = batch.screens.len(),
                    "audit rows lost after {ATTEMPTS} attempts: {e}"
                );
            }
        }
    }
}

async fn try_write(store: &Store, batch: &Batch) -> Result<(), StoreError> {
    let mut tx = store.begin().await?;
    for (event, at) in &batch.rows {
        record(&mut tx, event, *at).await?;
    }
    for (session, lines) in &batch.screens {
        store::screen_text::insert(&mut tx, session, lines).await?;
    }
    store.commit(tx).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::audit_log::Query;

    #[tokio::test]
    async fn rows_are_written_in_order_with_their_own_times_and_flush_waits() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("a.db"), true, Duration::from_secs(5), 4)
            .await
            .unwrap();
        let writer = AuditWriter::start(store.clone());
        let t0: Timestamp = "2026-01-01T00:00:00Z".parse().unwrap();
        for i in 0..1500 {
            let at = t0 + Duration::from_millis(i);
            writer
                .write(
                    AuditEvent::Command {
                        session_id: "s".into(),
                        offset_ms: i as i64,
                        user_name: "u".into(),
                        asset_name: "a".into(),
                        account: "r".into(),
                        command: format!("echo {i}"),
                        output: String::new(),
                        action: "allow".into(),
                        rule: None,
                    },
                    at,
                )
                .await;
            if i % 500 == 0 {
                writer.queue_screen("s", vec![(i as i64, format!("line {i}"))]);
            }
        }
        writer.flush().await;
        let mut conn = store.conn().await.unwrap();
        let screen: Vec<String> =
            sqlx::query_scalar("SELECT line FROM screen_text WHERE session_id = 's' ORDER BY id")
                .fetch_all(&mut *conn)
                .await
                .unwrap();
        assert_eq!(
            screen,
            ["line 0", "line 500", "line 1000"],
            "screen lines go in the batches"
        );
        let rows = crate::store::audit_log::commands(&mut conn, &Query::default())
            .await
            .unwrap();
        assert_eq!(rows.len(), 1500);
        // Newest first; each keeps the time it happened.
        assert_eq!(rows[0].command, "echo 1499");
        assert_eq!(rows[0].at, t0 + Duration::from_millis(1499));
        assert_eq!(rows[1499].command, "echo 0");
        let report = crate::audit::verify(&store, dir.path()).await.unwrap();
        assert_eq!(report.broken, None);
        assert_eq!(report.rows, 1500);
    }
}
