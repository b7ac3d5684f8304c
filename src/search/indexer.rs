//! The indexer: reads recordings after the relay wrote them and files their
//! text, block by block, so that no session ever waits for the index.
//!
//! A task finds the recorded sessions not yet indexed to their end (from
//! the watermark on) and hands one job at a time to a thread of its own at
//! low CPU priority (nice 19), which reads the cast from where the last
//! block ended and cuts it into blocks; the task files each block in one
//! short transaction, once the database has been quiet for a moment
//! ([`Store::begin_background`]: a login's writes do not queue behind
//! it). It wakes when a session ends ([`IndexHandle::kick`])
//! and every few seconds for live sessions, and never reads more than
//! [`RATE`] bytes of recordings a second.
//!
//! What is indexed: every line of a session with a pty (interactive work,
//! `ssh -t`), and of exec output without a pty the first [`EXEC_HEAD`]
//! bytes of text and the last [`EXEC_TAIL`] bytes of the cast (a `cat` of
//! a 10 GB log needs no index of its middle to be found; it is in the
//! command log and the recording). A live session's text is filed once a
//! block is full, or [`LIVE_FLUSH`] after it began.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use jiff::{SignedDuration, Timestamp};
use tokio::sync::{Notify, oneshot, watch};
use tokio_util::sync::CancellationToken;

use super::lines::Lines;
use super::scan::{Step, Stretch};
use super::trigram::TrigramSet;
use crate::clock::Clock;
use crate::store::search::{NewBlock, Pending, Progress};
use crate::store::{self, Store};

/// Text per block. Larger blocks make a smaller index (a block costs its
/// distinct trigrams, which grow far slower than its text) but more to read
/// per candidate block in a search.
pub const BLOCK_TEXT: u64 = 1 << 20;
/// Cast bytes per block at most (output that is mostly escapes or binary
/// markers holds little text per byte).
const BLOCK_CAST: u64 = 4 << 20;
/// Exec output without a pty: text indexed from the start...
pub const EXEC_HEAD: u64 = 1 << 20;
/// ...and cast bytes indexed at the end, once the session is over.
pub const EXEC_TAIL: u64 = 2 << 20;
/// A live session's text waits at most this long for its block to fill.
pub const LIVE_FLUSH: Duration = Duration::from_secs(30);
/// Recording bytes read per second, at most.
pub const RATE: u64 = 32 << 20;
/// How often live sessions are looked at.
const POLL: Duration = Duration::from_secs(2);
/// Blocks one job files (in one transaction) before the next session gets
/// its turn: one, so the database's write lock is never held long (a login
/// or a session's end may be waiting for it). While a stream of log-like
/// text kept both cores busy, a transaction of two blocks held it 49 ms on
/// average and up to 280 ms; of one block, 18 ms and up to 75 ms
/// (bench/ssh.sh's second person, timed around each transaction).
const BLOCKS_PER_JOB: usize = 1;
/// The indexer writes once no other write has begun for this long (a
/// login's writes come a few tens of milliseconds apart), or after
/// [`QUIET_AT_MOST`] however busy the bastion is.
const QUIET: Duration = Duration::from_millis(200);
const QUIET_AT_MOST: Duration = Duration::from_secs(1);
/// Sessions looked at per pass.
const SESSIONS_PER_PASS: i64 = 256;
/// How far before the oldest unfinished session the next pass looks (a
/// session row may be written a little after its start time).
const MARGIN: SignedDuration = SignedDuration::from_mins(10);
/// How often the indexer's state is noted when nothing changed.
const NOTE_EVERY: SignedDuration = SignedDuration::from_mins(1);

/// One pass of the indexer over the work it found.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Pass {
    /// Passes begun.
    pub began: u64,
    /// Passes completed.
    pub generation: u64,
    /// The pass found nothing it could index: every ended session is
    /// indexed to its end and live sessions have nothing due.
    pub idle: bool,
}

#[derive(Debug)]
struct Inner {
    kick: Notify,
    pass: watch::Sender<Pass>,
}

/// The running indexer, as the rest of the server sees it (in
/// [`crate::services::Services`]): wake it, or wait for it.
#[derive(Debug, Clone)]
pub struct IndexHandle {
    inner: Arc<Inner>,
}

impl Default for IndexHandle {
    fn default() -> Self {
        IndexHandle::new()
    }
}

impl IndexHandle {
    pub fn new() -> IndexHandle {
        IndexHandle {
            inner: Arc::new(Inner {
                kick: Notify::new(),
                pass: watch::Sender::new(Pass::default()),
            }),
        }
    }

    /// A session ended (or anything else worth indexing happened): look now.
    pub fn kick(&self) {
        self.inner.kick.notify_one();
    }

    /// Returns once a pass that began after this call found nothing left
    /// to index. Only a server runs the indexer: elsewhere this waits for
    /// ever, so bound it with a timeout.
    pub async fn caught_up(&self) {
        let mut passes = self.inner.pass.subscribe();
        // Passes run one after the other: the next to begin is this one.
        let next = passes.borrow_and_update().began + 1;
        self.kick();
        while passes.changed().await.is_ok() {
            let pass = *passes.borrow_and_update();
            if pass.generation >= next && pass.idle {
                return;
            }
        }
    }
}

/// What the thread is asked to do: index one recording further.
struct Job {
    path: PathBuf,
    ended: bool,
    progress: Progress,
    /// Time since the session started, for [`LIVE_FLUSH`].
    now: Duration,
}

struct Done {
    blocks: Vec<NewBlock>,
    progress: Progress,
    /// Cast bytes read.
    read: u64,
    /// Recorded output is left unindexed after `progress` (a block still
    /// filling, a page of work left for the next job, a live exec
    /// session's middle).
    behind: bool,
}

/// What the indexer works with: the database it reads pending sessions from
/// and files blocks into, the time, the recording dir, and the handle the
/// server wakes it through (the server builds it from its services).
#[derive(Clone)]
pub struct Indexer {
    pub store: Store,
    pub clock: Arc<dyn Clock>,
    pub recording_dir: PathBuf,
    pub handle: IndexHandle,
}

/// Runs the indexer until `shutdown`.
pub async fn run(indexer: Indexer, shutdown: CancellationToken) {
    let (jobs, work) = std::sync::mpsc::channel::<(Job, oneshot::Sender<std::io::Result<Done>>)>();
    let spawned = std::thread::Builder::new()
        .name("rampart-index".into())
        .spawn(move || {
            lower_priority();
            while let Ok((job, reply)) = work.recv() {
                // A set per job (2 MiB, mostly untouched): freed between
                // jobs, so an idle indexer holds no memory.
                let mut trigrams = TrigramSet::new();
                let _ = reply.send(index(job, &mut trigrams));
            }
        });
    if let Err(e) = spawned {
        tracing::error!("the screen-text indexer could not start: {e}");
        return;
    }
    let handle = indexer.handle.clone();
    let mut worked_before = false;
    loop {
        handle.inner.pass.send_modify(|p| p.began += 1);
        let worked = tokio::select! {
            r = pass(&indexer, &jobs) => r,
            () = shutdown.cancelled() => return,
        };
        let worked = match worked {
            Ok(worked) => worked,
            Err(e) => {
                tracing::warn!("screen-text indexing: {e}");
                false
            }
        };
        handle.inner.pass.send_modify(|p| {
            p.generation = p.began;
            p.idle = !worked;
        });
        if worked {
            worked_before = true;
            continue;
        }
        if std::mem::take(&mut worked_before) {
            // Sessions ended and were read: their memory is free now.
            crate::alloc::release_free_memory();
        }
        tokio::select! {
            () = handle.inner.kick.notified() => {}
            () = tokio::time::sleep(POLL) => {}
            () = shutdown.cancelled() => return,
        }
    }
}

/// Nice 19 for the calling thread: indexing gives way to every session and
/// login (on a busy machine it falls behind, and catches up when it calms).
fn lower_priority() {
    // SAFETY: gettid has no preconditions; setpriority with PRIO_PROCESS
    // and who = this thread's id changes only this thread's nice value on
    // Linux, and touches no memory.
    let r = unsafe { libc::setpriority(libc::PRIO_PROCESS, libc::gettid() as libc::id_t, 19) };
    if r != 0 {
        tracing::debug!("the indexer's priority could not be lowered");
    }
}

/// One look at every unfinished session; whether anything was indexed.
async fn pass(
    indexer: &Indexer,
    jobs: &std::sync::mpsc::Sender<(Job, oneshot::Sender<std::io::Result<Done>>)>,
) -> Result<bool, String> {
    let store = &indexer.store;
    let now = indexer.clock.now();
    let (noted, pending) = {
        let mut conn = store.conn().await.map_err(|e| e.to_string())?;
        let noted = store::search::state(&mut conn)
            .await
            .map_err(|e| e.to_string())?;
        let since = noted.as_ref().map_or(Timestamp::MIN, |s| s.watermark);
        let pending = store::search::pending(&mut conn, since, SESSIONS_PER_PASS)
            .await
            .map_err(|e| e.to_string())?;
        (noted, pending)
    };
    let mut worked = false;
    let mut behind: Option<Timestamp> = None;
    let dir = &indexer.recording_dir;
    for p in &pending {
        let started = Instant::now();
        let job = Job {
            path: dir.join(&p.recording),
            ended: p.ended,
            progress: p.progress.clone(),
            now: now
                .duration_since(p.started_at)
                .try_into()
                .unwrap_or_default(),
        };
        let (reply, answer) = oneshot::channel();
        if jobs.send((job, reply)).is_err() {
            return Err("the indexer thread stopped".into());
        }
        let done = match answer.await {
            Ok(Ok(done)) => done,
            Ok(Err(e)) if e.kind() == std::io::ErrorKind::NotFound && p.ended => {
                // A closed session whose recording is gone (moved away,
                // deleted by retention): nothing to index, ever.
                Done {
                    blocks: Vec::new(),
                    progress: Progress {
                        done: true,
                        ..p.progress.clone()
                    },
                    read: 0,
                    behind: false,
                }
            }
            Ok(Err(e)) if p.ended => {
                // Fail open: the index is derived data, and one unreadable
                // recording must not hold every later one back.
                tracing::warn!(session = %p.session, "recording not readable, left out of the screen-text index: {e}");
                Done {
                    blocks: Vec::new(),
                    progress: Progress {
                        done: true,
                        ..p.progress.clone()
                    },
                    read: 0,
                    behind: false,
                }
            }
            Ok(Err(e)) => {
                tracing::debug!(session = %p.session, "recording not readable yet for the index: {e}");
                behind = earliest(behind, p.started_at);
                continue;
            }
            Err(_) => return Err("the indexer thread stopped".into()),
        };
        if done.progress != p.progress || !done.blocks.is_empty() {
            file(store, &p.session, &done)
                .await
                .map_err(|e| e.to_string())?;
            worked = true;
        }
        if done.behind {
            let ms = i64::try_from(done.progress.indexed_ms).unwrap_or(i64::MAX);
            let at = p
                .started_at
                .checked_add(SignedDuration::from_millis(ms))
                .unwrap_or(p.started_at);
            behind = earliest(behind, at);
        }
        pace(done.read, started.elapsed()).await;
    }
    if pending.len() as i64 >= SESSIONS_PER_PASS
        && let Some(last) = pending.last()
    {
        // Sessions past this page wait for the next pass.
        behind = earliest(behind, last.started_at);
    }
    let state = store::search::State {
        watermark: watermark_after(&pending, now),
        behind_since: behind,
        updated_at: now,
    };
    // Noted when it changed, and once a minute (an idle bastion does not
    // write every two seconds).
    let stale = |noted: &store::search::State| {
        noted.behind_since != state.behind_since
            || state.watermark.duration_since(noted.watermark) >= NOTE_EVERY
            || now.duration_since(noted.updated_at) >= NOTE_EVERY
    };
    if noted.as_ref().is_none_or(stale) {
        // In the writers' queue like any write (outside it, it would meet
        // a writer inside the database and sleep in SQLite's busy handler).
        let note = async {
            let mut tx = store.begin_background(QUIET, QUIET_AT_MOST).await?;
            store::search::set_state(&mut tx, &state).await?;
            store.commit(tx).await
        };
        note.await.map_err(|e| e.to_string())?;
    }
    Ok(worked)
}

fn earliest(a: Option<Timestamp>, b: Timestamp) -> Option<Timestamp> {
    Some(a.map_or(b, |a| a.min(b)))
}

/// Where the next pass starts: a little before the oldest session still
/// unfinished (they come oldest first), else a little before now.
fn watermark_after(pending: &[Pending], now: Timestamp) -> Timestamp {
    let oldest = pending.first().map_or(now, |p| p.started_at).min(now);
    oldest.checked_sub(MARGIN).unwrap_or(oldest)
}

/// Waits so that reading `read` bytes took at least `read / RATE`.
async fn pace(read: u64, took: Duration) {
    let due = Duration::from_secs_f64(read as f64 / RATE as f64);
    if let Some(rest) = due.checked_sub(took) {
        tokio::time::sleep(rest).await;
    }
}

/// Files a job's blocks and progress in one transaction.
async fn file(store: &Store, session: &str, done: &Done) -> Result<(), store::StoreError> {
    let mut tx = store.begin_background(QUIET, QUIET_AT_MOST).await?;
    for block in &done.blocks {
        store::search::add_block(&mut tx, session, block).await?;
    }
    store::search::set_progress(&mut tx, session, &done.progress).await?;
    store.commit(tx).await
}

fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// Reads a recording on from its progress and cuts blocks (on the
/// indexer's thread).
fn index(job: Job, trigrams: &mut TrigramSet) -> std::io::Result<Done> {
    let mut p = job.progress;
    let mut stretch = Stretch::open(&job.path, 0)?;
    let len = stretch_len(&job.path)?;
    let Some(header) = stretch.header()? else {
        // No header: not written yet, or (once the session ended) never.
        p.done = job.ended;
        return Ok(Done {
            blocks: Vec::new(),
            progress: p,
            read: 0,
            behind: !job.ended,
        });
    };
    let pty = header.env.term.is_some();
    let mut read = stretch.pos();
    if p.cast_offset < stretch.pos() {
        p.cast_offset = stretch.pos();
    }
    let mut blocks = Vec::new();
    let mut behind = true;
    loop {
        // Exec output without a pty: the head, then (once it ended) the tail.
        let mut text_limit = BLOCK_TEXT;
        if !pty && p.skipped_bytes == 0 {
            let head_left = EXEC_HEAD.saturating_sub(p.text_bytes);
            if head_left == 0 {
                if !job.ended {
                    break;
                }
                let tail = len.saturating_sub(EXEC_TAIL);
                if tail > p.cast_offset {
                    stretch.sync_from(tail)?;
                    p.skipped_bytes = stretch.pos() - p.cast_offset;
                    p.cast_offset = stretch.pos();
                    p.carry.clear();
                }
            } else {
                text_limit = head_left.min(BLOCK_TEXT);
            }
        }
        let start = p.cast_offset;
        let mut s = Stretch::open(&job.path, start)?;
        let mut lines = Lines::resume(&p.carry, Duration::from_millis(p.carry_ms));
        let (mut first, mut last) = (None, None);
        let mut at_end = false;
        loop {
            if lines.text_bytes() >= text_limit || s.pos() - start >= BLOCK_CAST {
                break;
            }
            match s.next(None)? {
                Step::Output { at, text } => {
                    first.get_or_insert(at);
                    last = Some(at);
                    lines.feed_text(text, at, |_, line| trigrams.add_line(line));
                }
                Step::Other => {}
                Step::End => {
                    at_end = true;
                    break;
                }
            }
        }
        read += s.pos() - start;
        let final_block = at_end && job.ended;
        if final_block {
            lines.finish(|_, line| trigrams.add_line(line));
        }
        let first = first.unwrap_or(Duration::from_millis(p.carry_ms));
        let due = !at_end
            || final_block
            || job.now.saturating_sub(first) >= LIVE_FLUSH && s.pos() > start;
        if !due {
            // A live session's block still filling: read again next time.
            trigrams.take();
            behind = s.pos() > start;
            break;
        }
        let terms = trigrams.take();
        if !terms.is_empty() {
            blocks.push(NewBlock {
                cast_start: start,
                cast_end: s.pos(),
                first_ms: ms(first),
                last_ms: ms(last.unwrap_or(first)),
                carry: p.carry.clone(),
                carry_ms: p.carry_ms,
                last: final_block,
                terms,
            });
        }
        p.text_bytes += lines.text_bytes();
        p.cast_offset = s.pos();
        if let Some(last) = last {
            p.indexed_ms = ms(last);
        }
        (p.carry, p.carry_ms) = if final_block {
            (String::new(), 0)
        } else {
            let (carry, at) = lines.carry();
            (carry, ms(at))
        };
        if final_block {
            p.done = true;
            behind = false;
            break;
        }
        if at_end {
            behind = false;
            break;
        }
        if blocks.len() >= BLOCKS_PER_JOB {
            break;
        }
    }
    Ok(Done {
        blocks,
        progress: p,
        read,
        behind,
    })
}

/// What [`index_recording`] did with one recording.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Indexed {
    pub blocks: usize,
    /// Bytes of screen text filed.
    pub text_bytes: u64,
    /// Distinct trigrams over all blocks, counted once per block.
    pub terms: usize,
}

/// Cuts a whole, finished recording into blocks exactly as the indexer's
/// thread does, without a database: what `benches/record.rs` times (the
/// indexer's CPU per byte relayed counts in the bastion's).
pub fn index_recording(path: &std::path::Path) -> std::io::Result<Indexed> {
    let mut trigrams = TrigramSet::new();
    let mut progress = Progress::default();
    let mut indexed = Indexed {
        blocks: 0,
        text_bytes: 0,
        terms: 0,
    };
    loop {
        let job = Job {
            path: path.to_path_buf(),
            ended: true,
            progress,
            now: Duration::ZERO,
        };
        let done = index(job, &mut trigrams)?;
        indexed.blocks += done.blocks.len();
        indexed.terms += done
            .blocks
            .iter()
            .map(|b| b.terms.len().div_ceil(6))
            .sum::<usize>();
        indexed.text_bytes = done.progress.text_bytes;
        if done.progress.done || done.blocks.is_empty() {
            return Ok(indexed);
        }
        progress = done.progress;
    }
}

fn stretch_len(path: &std::path::Path) -> std::io::Result<u64> {
    Ok(std::fs::metadata(path)?.len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn cast(path: &std::path::Path, pty: bool, events: &[(f64, &str)]) {
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .unwrap();
        if f.metadata().unwrap().len() == 0 {
            let env = if pty { r#"{"TERM":"xterm"}"# } else { "{}" };
            writeln!(f, r#"{{"version":2,"width":80,"height":24,"env":{env}}}"#).unwrap();
        }
        for (t, data) in events {
            writeln!(f, "[{t},\"o\",{}]", serde_json::to_string(data).unwrap()).unwrap();
        }
    }

    fn job(path: &std::path::Path, ended: bool, progress: &Progress, now_s: u64) -> Job {
        Job {
            path: path.to_path_buf(),
            ended,
            progress: progress.clone(),
            now: Duration::from_secs(now_s),
        }
    }

    fn lines_of(path: &std::path::Path, b: &NewBlock) -> Vec<String> {
        let c = store::search::Candidate {
            block: 1,
            session: "s".into(),
            user: "u".into(),
            asset: "a".into(),
            account: "r".into(),
            started_at: Timestamp::UNIX_EPOCH,
            recording: String::new(),
            cast_start: b.cast_start,
            cast_end: b.cast_end,
            carry: b.carry.clone(),
            carry_ms: b.carry_ms,
            last: b.last,
        };
        super::super::block_lines(Stretch::open(path, c.cast_start).unwrap(), &c)
            .unwrap()
            .into_iter()
            .map(|l| l.text)
            .collect()
    }

    #[test]
    fn a_live_session_is_filed_after_a_while_and_its_last_line_at_the_end() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.cast");
        let mut set = TrigramSet::new();
        cast(&path, true, &[(1.0, "first line\r\nsecond li")]);
        let fresh = index(job(&path, false, &Progress::default(), 5), &mut set).unwrap();
        assert!(fresh.blocks.is_empty(), "a block still filling waits");
        assert!(fresh.behind, "and the search says so");
        assert_eq!(
            (fresh.progress.text_bytes, fresh.progress.carry.as_str()),
            (0, ""),
            "nothing read into a block yet: {:?}",
            fresh.progress
        );

        let due = index(job(&path, false, &Progress::default(), 40), &mut set).unwrap();
        assert_eq!(due.blocks.len(), 1, "filed {LIVE_FLUSH:?} after it began");
        assert!(!due.behind);
        assert_eq!(lines_of(&path, &due.blocks[0]), ["first line"]);
        assert_eq!(
            due.progress.carry, "second li",
            "the unfinished line goes on"
        );

        cast(&path, true, &[(50.0, "ne\r\nlast words")]);
        let end = index(job(&path, true, &due.progress, 60), &mut set).unwrap();
        assert!(end.progress.done);
        assert_eq!(end.blocks.len(), 1);
        assert_eq!(
            lines_of(&path, &end.blocks[0]),
            ["second line", "last words"]
        );
        assert_eq!(end.blocks[0].first_ms, 50_000);
    }

    #[test]
    fn a_whole_recording_is_indexed_block_by_block_to_its_end() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.cast");
        // Three blocks of text (a block closes past 1 MiB of it) and a last
        // line without its line break.
        let line = format!("{}\r\n", "x".repeat(999));
        let events: Vec<(f64, String)> = (0..3 * 1050)
            .map(|i| (f64::from(i) / 100.0, line.clone()))
            .chain([(40.0, "the end".to_string())])
            .collect();
        let events: Vec<(f64, &str)> = events.iter().map(|(t, s)| (*t, s.as_str())).collect();
        cast(&path, true, &events);
        let indexed = index_recording(&path).unwrap();
        assert_eq!(indexed.blocks, 4, "{indexed:?}");
        assert_eq!(indexed.text_bytes, 3 * 1050 * 999 + 7);
        // A block holds 1050 lines of x, one trigram ("xxx"); the last
        // holds "the end": "the", "he ", "e e", " en", "end".
        assert_eq!(indexed.terms, 3 + 5, "{indexed:?}");
    }

    #[test]
    fn exec_output_without_a_pty_is_filed_at_its_head_and_tail_only() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.cast");
        let mut set = TrigramSet::new();
        let line = "x".repeat(1000) + "\n";
        let chunk = line.repeat(64);
        let mut t = 0.0;
        let events: Vec<(f64, String)> = (0..200)
            .map(|i| {
                t += 0.01;
                let text = if i == 100 {
                    format!("middle-marker\n{chunk}")
                } else if i == 199 {
                    format!("{chunk}tail-marker\n")
                } else {
                    chunk.clone()
                };
                (t, text)
            })
            .collect();
        let refs: Vec<(f64, &str)> = events.iter().map(|(t, s)| (*t, s.as_str())).collect();
        cast(&path, false, &refs);
        let mut p = Progress::default();
        let mut blocks = Vec::new();
        loop {
            let done = index(job(&path, true, &p, 10), &mut set).unwrap();
            blocks.extend(done.blocks);
            if done.progress == p {
                break;
            }
            p = done.progress;
            if p.done {
                break;
            }
        }
        assert!(p.done);
        assert!(p.skipped_bytes > 0, "the middle was passed over");
        assert!(p.text_bytes < EXEC_HEAD + EXEC_TAIL);
        let all: Vec<String> = blocks.iter().flat_map(|b| lines_of(&path, b)).collect();
        assert!(all.iter().any(|l| l == "tail-marker"));
        assert!(!all.iter().any(|l| l == "middle-marker"));
    }
}
