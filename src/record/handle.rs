//! The relay's side of a recording: an async handle feeding a dedicated
//! writer thread.
//!
//! Why a thread per recording and not a task: file writes, fsync and
//! compression block, and a recording lives as long as its session, which
//! would pin a `spawn_blocking` slot (512 by default) for hours. The queue is
//! bounded in bytes by a semaphore: the relay awaits only when the writer is
//! that far behind, which is the backpressure that keeps memory bounded
//! without dropping a byte. Timestamps are taken when the relay calls, not
//! when the writer gets to the event.

use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, RecvTimeoutError, TryRecvError};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::sync::{Semaphore, oneshot};

use super::RecordError;
use super::writer::{CastWriter, Finished, RecordingMeta, WriteFailure, check_session_id};

/// Time since the start of the recording. The default is a monotonic clock
/// started by [`RecorderHandle::start`]; tests inject their own.
pub trait Elapsed: Send + Sync {
    fn elapsed(&self) -> Duration;
}

struct Monotonic(Instant);

impl Elapsed for Monotonic {
    fn elapsed(&self) -> Duration {
        self.0.elapsed()
    }
}

/// How a recording is made.
#[derive(Clone)]
pub struct RecordOptions {
    /// Record keystrokes (`recording.input`); off by default because they
    /// contain passwords typed at sudo prompts.
    pub input: bool,
    /// How long written events may wait before they reach the file
    /// (`recording.flush_interval`), held between 10 ms and 1 s: DESIGN.md
    /// promises at least once a second.
    pub flush_interval: Duration,
    /// Bytes queued for the writer before the relay waits.
    pub queue_bytes: u32,
    pub clock: Option<Arc<dyn Elapsed>>,
}

impl Default for RecordOptions {
    fn default() -> Self {
        RecordOptions {
            input: false,
            flush_interval: Duration::from_secs(1),
            queue_bytes: 1024 * 1024,
            clock: None,
        }
    }
}

impl std::fmt::Debug for RecordOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecordOptions")
            .field("input", &self.input)
            .field("flush_interval", &self.flush_interval)
            .field("queue_bytes", &self.queue_bytes)
            .field("clock", &self.clock.as_ref().map(|_| "custom"))
            .finish()
    }
}

enum Msg {
    Output(Duration, Bytes),
    Input(Duration, Bytes),
    Resize(Duration, u16, u16),
    Marker(Duration, String),
    Redraw(Duration, Bytes),
    Finish(oneshot::Sender<Result<Finished, RecordError>>),
}

/// The first write error, kept so every later call reports it.
#[derive(Default)]
struct Failure(Mutex<Option<(PathBuf, Arc<std::io::Error>)>>);

impl Failure {
    fn set(&self, f: WriteFailure) {
        let mut slot = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        if slot.is_none() {
            *slot = Some((f.path, Arc::new(f.source)));
        }
    }

    fn get(&self) -> Option<RecordError> {
        let slot = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        slot.as_ref().map(|(path, source)| RecordError::Write {
            path: path.clone(),
            source: source.clone(),
        })
    }
}

/// A running recording. Cheap calls from the relay; see the module docs of
/// [`crate::record`] for the file format.
pub struct RecorderHandle {
    tx: mpsc::Sender<(Msg, u32)>,
    budget: Arc<Semaphore>,
    queue_bytes: u32,
    failure: Arc<Failure>,
    clock: Arc<dyn Elapsed>,
    input: bool,
    path: PathBuf,
}

impl std::fmt::Debug for RecorderHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecorderHandle")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl RecorderHandle {
    /// Creates the cast (directories, file, header) on the writer thread and
    /// returns once it exists, so `recording.on_failure = deny` can refuse
    /// the session before it starts.
    pub async fn start(
        dir: impl AsRef<Path>,
        meta: RecordingMeta,
        options: RecordOptions,
    ) -> Result<Self, RecordError> {
        check_session_id(&meta.session)?;
        // Time zero is when the session asked for its recording.
        let clock = options
            .clock
            .clone()
            .unwrap_or_else(|| Arc::new(Monotonic(Instant::now())));
        let root = dir.as_ref().to_path_buf();
        let budget = Arc::new(Semaphore::new(options.queue_bytes.max(1) as usize));
        let failure = Arc::new(Failure::default());
        let interval = options
            .flush_interval
            .clamp(Duration::from_millis(10), Duration::from_secs(1));
        let (tx, rx) = mpsc::channel();
        let (ready_tx, ready_rx) = oneshot::channel();
        let thread_budget = budget.clone();
        let thread_failure = failure.clone();
        let spawned = std::thread::Builder::new()
            .name("rampart-record".into())
            .stack_size(256 * 1024)
            .spawn(move || {
                let writer = match CastWriter::create(&root, &meta) {
                    Ok(w) => w,
                    Err(e) => {
                        let _ = ready_tx.send(Err(e));
                        return;
                    }
                };
                if ready_tx.send(Ok(writer.relative_path())).is_err() {
                    // start() was cancelled: leave a complete, empty cast.
                    let _ = writer.finish();
                    return;
                }
                run(writer, rx, &thread_budget, &thread_failure, interval);
            });
        if let Err(source) = spawned {
            return Err(RecordError::Create {
                path: dir.as_ref().to_path_buf(),
                source,
            });
        }
        let path = ready_rx.await.map_err(|_| RecordError::WriterGone)??;
        Ok(RecorderHandle {
            tx,
            budget,
            queue_bytes: options.queue_bytes.max(1),
            failure,
            clock,
            input: options.input,
            path,
        })
    }

    /// A handle that records nothing, for a session that
    /// `recording.on_failure = allow` lets run although its recording
    /// cannot be written: every call fails with [`RecordError::WriterGone`],
    /// which the relay ignores when the recording is optional.
    pub fn unrecorded() -> RecorderHandle {
        let (tx, _) = mpsc::channel();
        RecorderHandle {
            tx,
            budget: Arc::new(Semaphore::new(1)),
            queue_bytes: 1,
            failure: Arc::new(Failure::default()),
            clock: Arc::new(Monotonic(Instant::now())),
            input: false,
            path: PathBuf::new(),
        }
    }

    /// The cast, relative to the recording dir (for the session row).
    pub fn relative_path(&self) -> &Path {
        &self.path
    }

    /// Time since the recording started, on the recording's clock: use it
    /// for [`super::CommandTracker::started`] so commands line up with the
    /// cast.
    pub fn elapsed(&self) -> Duration {
        self.clock.elapsed()
    }

    /// The write error that stopped the recording, if one did.
    pub fn failure(&self) -> Option<RecordError> {
        self.failure.get()
    }

    async fn send(&self, msg: Msg, len: usize) -> Result<(), RecordError> {
        if let Some(e) = self.failure.get() {
            return Err(e);
        }
        // A message costs its bytes plus a little; one larger than the whole
        // queue takes all of it rather than waiting forever.
        let cost = u32::try_from(len.saturating_add(64))
            .unwrap_or(u32::MAX)
            .min(self.queue_bytes);
        match self.budget.acquire_many(cost).await {
            // The writer gives the permits back when it has written the event.
            Ok(permit) => permit.forget(),
            // Closed by the writer when it failed.
            Err(_) => return Err(self.failure.get().unwrap_or(RecordError::WriterGone)),
        }
        self.tx
            .send((msg, cost))
            .map_err(|_| self.failure.get().unwrap_or(RecordError::WriterGone))
    }

    /// Output to the client. Awaits only while the queue is full.
    pub async fn output(&self, data: Bytes) -> Result<(), RecordError> {
        let at = self.clock.elapsed();
        if data.is_empty() {
            return Ok(());
        }
        let len = data.len();
        self.send(Msg::Output(at, data), len).await
    }

    /// Keystrokes; dropped here (not queued) unless input recording is on.
    pub async fn input(&self, data: Bytes) -> Result<(), RecordError> {
        if !self.input || data.is_empty() {
            return self.failure.get().map_or(Ok(()), Err);
        }
        let at = self.clock.elapsed();
        let len = data.len();
        self.send(Msg::Input(at, data), len).await
    }

    pub async fn resize(&self, cols: u16, rows: u16) -> Result<(), RecordError> {
        let at = self.clock.elapsed();
        self.send(Msg::Resize(at, cols, rows), 0).await
    }

    /// A marker, e.g. `cmd: ls -l`. Texts starting `raw:` or `sidecar:`
    /// (the writer's own markers) are written as `note: ...`.
    pub async fn marker(&self, text: impl Into<String>) -> Result<(), RecordError> {
        let at = self.clock.elapsed();
        let text = text.into();
        let len = text.len();
        self.send(Msg::Marker(at, text), len).await
    }

    /// A desktop's keyframe: the relay has just asked the target for a
    /// full repaint; `demand_active` is the target's Demand Active (see
    /// the writer's `redraw`).
    pub async fn redraw(&self, demand_active: Bytes) -> Result<(), RecordError> {
        let at = self.clock.elapsed();
        let len = demand_active.len();
        self.send(Msg::Redraw(at, demand_active), len).await
    }

    /// The `cmd: ...` marker of a logged command.
    pub async fn command(&self, command: &str) -> Result<(), RecordError> {
        self.marker(format!("cmd: {command}")).await
    }

    /// Closes the recording (everything written, fsync'd) and returns its
    /// path, digest and sizes; the first write error if there was one.
    pub async fn finish(self) -> Result<Finished, RecordError> {
        if let Some(e) = self.failure.get() {
            return Err(e);
        }
        let (reply, answer) = oneshot::channel();
        if self.tx.send((Msg::Finish(reply), 0)).is_err() {
            return Err(self.failure.get().unwrap_or(RecordError::WriterGone));
        }
        match answer.await {
            Ok(result) => result,
            Err(_) => Err(self.failure.get().unwrap_or(RecordError::WriterGone)),
        }
    }
}

/// How long the writer thread lets output gather after it took some, before
/// it looks at the queue again. While output streams, the relay then queues
/// chunks without waking the thread for each (a wake-up and the switches
/// around it cost more than writing a 4 KiB chunk); an idle session's
/// thread sleeps in `recv` and costs nothing. The queue's byte budget
/// covers the wait at several hundred MB/s.
const GATHER: Duration = Duration::from_millis(2);

/// The writer thread: events as they come, a flush at most `interval` after
/// something was written (a timer, so a quiet session is on disk too), and
/// on the first error: remember it, wake every waiting caller, stop.
fn run(
    mut writer: CastWriter,
    rx: mpsc::Receiver<(Msg, u32)>,
    budget: &Semaphore,
    failure: &Failure,
    interval: Duration,
) {
    let mut due: Option<Instant> = None;
    // The last event taken was output: let more gather before waiting.
    let mut gather = false;
    loop {
        let next = match rx.try_recv() {
            Ok(next) => Ok(next),
            Err(TryRecvError::Disconnected) => Err(RecvTimeoutError::Disconnected),
            Err(TryRecvError::Empty) if std::mem::take(&mut gather) => {
                std::thread::sleep(GATHER);
                continue;
            }
            Err(TryRecvError::Empty) => match due {
                Some(due) => rx.recv_timeout(due.saturating_duration_since(Instant::now())),
                None => rx.recv().map_err(|_| RecvTimeoutError::Disconnected),
            },
        };
        let step = match next {
            Ok((Msg::Finish(reply), _)) => {
                let result = writer.finish().map_err(|f| {
                    failure.set(f);
                    failure.get().unwrap_or(RecordError::WriterGone)
                });
                let _ = reply.send(result);
                return;
            }
            Ok((msg, cost)) => {
                gather = matches!(msg, Msg::Output(..));
                let step = match msg {
                    Msg::Output(at, data) => writer.output(at, &data),
                    Msg::Input(at, data) => writer.input(at, &data),
                    Msg::Resize(at, cols, rows) => writer.resize(at, cols, rows),
                    Msg::Marker(at, text) => writer.marker(at, &text),
                    Msg::Redraw(at, demand_active) => writer.redraw(at, &demand_active),
                    // Handled above; kept exhaustive on purpose.
                    Msg::Finish(_) => Ok(()),
                };
                budget.add_permits(cost as usize);
                step
            }
            Err(RecvTimeoutError::Timeout) => Ok(()),
            Err(RecvTimeoutError::Disconnected) => {
                // The handle was dropped without finish (the relay task
                // ended abnormally): still leave a complete recording.
                match writer.finish() {
                    Ok(f) => {
                        tracing::warn!(path = %f.path.display(), "recording closed without finish")
                    }
                    Err(f) => {
                        tracing::error!(path = %f.path.display(), "recording failed at close: {}", f.source)
                    }
                }
                return;
            }
        };
        let step = step.and_then(|()| {
            let now = Instant::now();
            match due {
                Some(at) if now >= at => {
                    due = None;
                    writer.flush()
                }
                None if writer.dirty() => {
                    due = Some(now + interval);
                    Ok(())
                }
                _ => Ok(()),
            }
        });
        if let Err(f) = step {
            tracing::error!(path = %f.path.display(), "recording write failed: {}", f.source);
            failure.set(f);
            budget.close();
            return;
        }
    }
}
