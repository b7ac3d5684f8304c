//! The writer for the audit rows that come at a person's typing rate
//! (commands) or a client's file rate (transfers): one task that takes them
//! from a queue and writes them in
//! batches, one transaction per batch, so that a thousand people typing do
//! not make a thousand transactions queue for the database's one writer
//! lock, and nobody's keystrokes wait for the database.
//!
//! Rows keep the time they happened (not the time they were written) and
//! their order. A batch that fails because the database is busy (another
//! writer holds its lock: a backup, an admin's sqlite3) is retried, with
//! backoff, for up to five minutes: the queue fills meanwhile and pushes
//! back on whoever writes, and every row lands once the database is free.
//! A batch that fails for another reason, or is still refused after that,
//! is given up with an error naming how many rows were lost (so that a
//! shutdown's flush cannot hang on a lock that is never released). [`AuditWriter::flush`] waits until everything
//! queued before it is committed: a session calls it before its own row is
//! closed, and shutdown before the process exits. What is still queued when
//! the process is killed (`kill -9`) is lost; the recording still holds
//! every command as a marker.
//!
//! Memory and tasks are bounded whatever the database does: [`write`]
//! waits for room in the queue (backpressure: a session logging commands
//! waits here, never on the database itself). Callers that cannot wait (a
//! byte pump's synchronous callback: the legacy SCP tap) use [`queue`],
//! which puts a row into a second bounded queue when the first is full,
//! moved over by one task that waits for room; when that one is full too,
//! the row is lost with an error.
//!
//! [`write`]: AuditWriter::write
//! [`queue`]: AuditWriter::queue

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use jiff::Timestamp;
use tokio::sync::{mpsc, oneshot};

use super::{AuditEvent, record};
use crate::store::{Store, StoreError};

/// Rows waiting, at most; a full queue makes writers wait (backpressure).
const QUEUE: usize = 65_536;
/// Rows from callers that cannot wait, held while the queue is full.
const OVERFLOW: usize = 16_384;
/// Rows per transaction, at most.
const BATCH: usize = 512;
/// Attempts per batch, for errors other than a busy database.
const ATTEMPTS: u32 = 6;
/// The longest wait between two attempts at a batch.
const MAX_BACKOFF: Duration = Duration::from_secs(2);
/// How long a batch waits for a busy database before it is given up.
const BUSY_LIMIT: Duration = Duration::from_secs(300);

enum Item {
    Row(Box<AuditEvent>, Timestamp),
    Flush(oneshot::Sender<()>),
}

/// What one transaction writes.
#[derive(Default)]
struct Batch {
    rows: Vec<(Box<AuditEvent>, Timestamp)>,
}

impl Batch {
    fn len(&self) -> usize {
        self.rows.len()
    }
}

/// A handle on the writer task; cheap to clone.
#[derive(Clone)]
pub struct AuditWriter {
    tx: mpsc::Sender<Item>,
    /// Items from callers that cannot wait, while `tx` is full.
    overflow: mpsc::Sender<Item>,
    lost: Arc<Lost>,
}

/// Counts of what full queues made the writer drop.
#[derive(Default)]
struct Lost {
    rows: AtomicU64,
}

impl std::fmt::Debug for AuditWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuditWriter").finish_non_exhaustive()
    }
}

impl AuditWriter {
    /// Rows waiting to be written (both queues), for the metrics.
    pub fn queued(&self) -> usize {
        (self.tx.max_capacity() - self.tx.capacity())
            + (self.overflow.max_capacity() - self.overflow.capacity())
    }

    /// Starts the writer task (and the one that moves overflow into the
    /// queue) on the current runtime.
    pub fn start(store: Store) -> AuditWriter {
        AuditWriter::start_with(store, QUEUE, OVERFLOW)
    }

    fn start_with(store: Store, queue: usize, overflow: usize) -> AuditWriter {
        let (tx, rx) = mpsc::channel(queue);
        let (overflow_tx, overflow_rx) = mpsc::channel(overflow);
        tokio::spawn(run(store, rx));
        tokio::spawn(forward(overflow_rx, tx.clone()));
        AuditWriter {
            tx,
            overflow: overflow_tx,
            lost: Arc::default(),
        }
    }

    /// Queues a row that happened at `at`. Waits only when the queue is full.
    pub async fn write(&self, event: AuditEvent, at: Timestamp) {
        if self.tx.send(Item::Row(Box::new(event), at)).await.is_err() {
            tracing::error!("the audit writer has stopped: a row is lost");
        }
    }

    /// The same from code that cannot wait (a byte pump's callbacks):
    /// queued at once, or, when the queue is full, held in the bounded
    /// overflow until there is room (the row keeps its time). Lost, with an
    /// error, only when the overflow is full too.
    pub fn queue(&self, event: AuditEvent, at: Timestamp) {
        self.queue_item(Item::Row(Box::new(event), at));
    }

    fn queue_item(&self, item: Item) {
        // Behind what is already waiting in the overflow, so that one
        // caller's rows keep their order.
        let item = if self.overflow.capacity() == self.overflow.max_capacity() {
            match self.tx.try_send(item) {
                Ok(()) => return,
                Err(mpsc::error::TrySendError::Full(item)) => item,
                Err(mpsc::error::TrySendError::Closed(_)) => {
                    tracing::error!("the audit writer has stopped: a row is lost");
                    return;
                }
            }
        } else {
            item
        };
        match self.overflow.try_send(item) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(_)) => {
                let n = self.lost.rows.fetch_add(1, Ordering::Relaxed) + 1;
                if n.is_power_of_two() {
                    tracing::error!(
                        "the audit queue is full (the database is not keeping up): {n} rows lost so far"
                    );
                }
            }
            Err(mpsc::error::TrySendError::Closed(_)) => {
                tracing::error!("the audit writer has stopped: a row is lost");
            }
        }
    }

    /// Returns once every row queued before this call is committed (or
    /// given up), including rows waiting in the overflow.
    pub async fn flush(&self) {
        let (done, wait) = oneshot::channel();
        if self.overflow.send(Item::Flush(done)).await.is_ok() {
            let _ = wait.await;
        }
    }
}

/// Moves what callers that cannot wait queued into the queue, waiting for
/// room: one task, whatever the number of rows.
async fn forward(mut overflow: mpsc::Receiver<Item>, tx: mpsc::Sender<Item>) {
    while let Some(item) = overflow.recv().await {
        if tx.send(item).await.is_err() {
            tracing::error!("the audit writer has stopped: a row is lost");
            return;
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
    let mut attempt = 0;
    let started = tokio::time::Instant::now();
    loop {
        let error = match try_write(store, batch).await {
            Ok(()) => return,
            Err(e) => e,
        };
        // A busy database frees up: wait for it (the queue behind pushes
        // back meanwhile). Anything else may never succeed.
        let busy = matches!(error, StoreError::Busy(_)) && started.elapsed() < BUSY_LIMIT;
        if !busy {
            attempt += 1;
        }
        if attempt >= ATTEMPTS {
            tracing::error!(
                rows = batch.rows.len(),
                "audit rows lost after {:?} and {ATTEMPTS} attempts: {error}",
                started.elapsed()
            );
            return;
        }
        tracing::warn!(
            rows = batch.rows.len(),
            attempt,
            "audit rows not written yet, retrying: {error}"
        );
        tokio::time::sleep(wait).await;
        wait = (wait * 2).min(MAX_BACKOFF);
    }
}

async fn try_write(store: &Store, batch: &Batch) -> Result<(), StoreError> {
    let mut tx = store.begin().await?;
    for (event, at) in &batch.rows {
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
        let store = Store::open(
            &crate::store::Location::Sqlite(dir.path().join("a.db")),
            true,
            Duration::from_secs(5),
            4,
        )
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
        let report = crate::audit::verify(
            &store,
            &crate::record::objects::Recordings::local(dir.path().to_path_buf()),
        )
        .await
        .unwrap();
        assert_eq!(report.broken, None);
        assert_eq!(report.rows, 1500);
    }
}

#[cfg(test)]
mod backpressure_tests {
    use super::*;

    fn command(i: usize) -> AuditEvent {
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
        }
    }

    /// The database's write lock held by someone else for a while: rows
    /// from callers that cannot wait are held in bounded queues (no task
    /// per row), callers that can wait are pushed back, and every row lands
    /// once the lock is released.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_blocked_database_pushes_back_with_bounded_tasks_and_loses_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(
            &crate::store::Location::Sqlite(dir.path().join("a.db")),
            true,
            Duration::from_millis(50),
            4,
        )
        .await
        .unwrap();
        let metrics = tokio::runtime::Handle::current().metrics();
        let (queue, overflow) = (64, 64);
        let writer = AuditWriter::start_with(store.clone(), queue, overflow);
        let t0: Timestamp = "2026-01-01T00:00:00Z".parse().unwrap();
        let at = move |i: usize| t0 + Duration::from_millis(i as u64);

        let lock = store.begin().await.unwrap();
        let tasks_before = metrics.num_alive_tasks();
        // As the legacy SCP tap does, from a callback that cannot wait: a
        // full queue and a full overflow (the writer also holds the batch
        // it keeps retrying).
        let sync_rows = queue + overflow;
        for i in 0..sync_rows {
            writer.queue(command(i), at(i));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
        // Slack for the database pool's own housekeeping, which varies with
        // the machine's load (+4 failed once in a full run); a task per row
        // would be 128 here.
        let slack = 16;
        assert!(
            metrics.num_alive_tasks() <= tasks_before + slack,
            "{} tasks alive after {sync_rows} rows queued on a blocked database, {tasks_before} before",
            metrics.num_alive_tasks()
        );
        // Callers that can wait are pushed back, not given a task each.
        let waiting: Vec<_> = (0..8)
            .map(|w| {
                let writer = writer.clone();
                tokio::spawn(async move {
                    for i in 0..50 {
                        let n = sync_rows + w * 50 + i;
                        writer.write(command(n), at(n)).await;
                    }
                })
            })
            .collect();
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert!(
            waiting.iter().all(|t| !t.is_finished()),
            "writers were not pushed back by a full queue"
        );
        assert!(metrics.num_alive_tasks() <= tasks_before + slack + waiting.len());

        // Longer than the old writer's six attempts would have lasted.
        tokio::time::sleep(Duration::from_secs(4)).await;
        drop(lock);
        for t in waiting {
            t.await.unwrap();
        }
        writer.flush().await;
        let total = sync_rows + 8 * 50;
        let mut conn = store.conn().await.unwrap();
        let written: Vec<String> = sqlx::query_scalar("SELECT command FROM commands")
            .fetch_all(&mut *conn)
            .await
            .unwrap();
        let mut seen: Vec<usize> = written
            .iter()
            .map(|c| c.trim_start_matches("echo ").parse().unwrap())
            .collect();
        seen.sort_unstable();
        assert_eq!(seen, (0..total).collect::<Vec<_>>(), "every row once");
        let report = crate::audit::verify(
            &store,
            &crate::record::objects::Recordings::local(dir.path().to_path_buf()),
        )
        .await
        .unwrap();
        assert_eq!((report.broken, report.rows), (None, total as u64));
    }
}
