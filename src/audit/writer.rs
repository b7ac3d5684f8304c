//! The writer for the audit rows that come at a person's typing rate
//! (commands) or a client's file rate (transfers): one task that takes them from a queue and writes them in
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
use crate::store::{Store, StoreError};

/// Rows waiting, at most; a full queue makes writers wait (backpressure),
/// never drops a row.
const QUEUE: usize = 65_536;
/// Rows per transaction, at most.
const BATCH: usize = 512;
/// Attempts per batch before it is given up.
const ATTEMPTS: u32 = 6;

enum Item {
    Row(Box<AuditEvent>, Timestamp),
    Flush(oneshot::Sender<()>),
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
        match self.tx.try_send(Item::Row(Box::new(event), at)) {
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
    let mut rows: Vec<(Box<AuditEvent>, Timestamp)> = Vec::new();
    let mut flushes = Vec::new();
    while let Some(item) = rx.recv().await {
        let mut next = Some(item);
        while let Some(item) = next.take() {
            match item {
                Item::Row(event, at) => rows.push((event, at)),
                Item::Flush(done) => flushes.push(done),
            }
            if rows.len() < BATCH {
                next = rx.try_recv().ok();
            }
        }
        if !rows.is_empty() {
            write_batch(&store, &rows).await;
            rows.clear();
        }
        for done in flushes.drain(..) {
            let _ = done.send(());
        }
    }
}

async fn write_batch(store: &Store, rows: &[(Box<AuditEvent>, Timestamp)]) {
    let mut wait = Duration::from_millis(50);
    for attempt in 1..=ATTEMPTS {
        match try_write(store, rows).await {
            Ok(()) => return,
            Err(e) if attempt < ATTEMPTS => {
                tracing::warn!(
                    rows = rows.len(),
                    attempt,
                    "audit rows not written yet, retrying: {e}"
                );
                tokio::time::sleep(wait).await;
                wait *= 2;
            }
            Err(e) => {
                tracing::error!(
                    rows = rows.len(),
                    "audit rows lost after {ATTEMPTS} attempts: {e}"
                );
            }
        }
    }
}

async fn try_write(store: &Store, rows: &[(Box<AuditEvent>, Timestamp)]) -> Result<(), StoreError> {
    let mut tx = store.begin().await?;
    for (event, at) in rows {
        record(&mut tx, event, *at).await?;
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
        }
        writer.flush().await;
        let mut conn = store.conn().await.unwrap();
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
