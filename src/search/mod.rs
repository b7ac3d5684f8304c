//! Screen-text search: "who saw this text, and when", over every recorded
//! session, without costing the sessions anything.
//!
//! `search` owns the index and the queries over it. It is fed from the
//! recordings after the relay wrote them, never from the relay: the
//! [indexer](indexer) reads casts at a bounded rate on a low-priority
//! thread, so a session's throughput does not depend on it, and when it
//! falls behind the only effect is that results come later (the search
//! says how far it got: [`IndexStatus::behind_since`]).
//!
//! The index keeps no second copy of the output (the recordings hold every
//! byte): a recording is cut into blocks of about 1 MiB of text, and each
//! block is filed under the set of its distinct trigrams
//! ([`trigram`]), which grows with the variety of the text, not its volume
//! (about 0.015 bytes of index per byte of log text, 0.003 for `seq`). A
//! search asks the index for the blocks that hold every trigram of its text,
//! then reads those stretches of the recordings and keeps the lines that
//! really contain it ([`search`]), newest session first, within a time
//! budget; a hit carries its moment, so the replay opens there.
//!
//! What is findable: every line of a session with a pty; of exec output
//! without a pty, the first MiB of text and the last 2 MiB of the
//! recording ([`IndexStatus::partly_indexed`] says how many sessions that
//! left out). Texts of fewer than three characters cannot use the index:
//! they are looked for in the newest blocks, as far as the time budget goes.
//!
//! With an object store (`recording.store`), a block whose recording is not
//! in the local recording dir (another node made it, or it was removed
//! after its upload) is read from the object, that block's bytes only.
//!
//! Must never: block or slow a session, write outside the database, read
//! outside the recording dir and its object store, or show a line that is
//! not in a recording.

pub mod indexer;
mod lines;
mod scan;
mod trigram;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::record::objects::Recordings;

use jiff::{SignedDuration, Timestamp};
use serde::Serialize;

pub use indexer::IndexHandle;
pub use lines::{Lines, ScreenLine};

use crate::store::{self, Store, StoreError};
use scan::{Step, Stretch};

/// A search reads candidate blocks for at most this long.
pub const TIME_BUDGET: Duration = Duration::from_millis(800);
/// Candidate blocks asked of the index, at most.
const MAX_CANDIDATES: i64 = 20_000;

/// A place where the text was seen.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ScreenHit {
    pub session: String,
    pub user: String,
    pub asset: String,
    pub account: String,
    /// When the line appeared: the session's start plus its offset.
    pub at: Timestamp,
    pub offset_ms: i64,
    pub line: String,
}

/// How complete the index is.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct IndexStatus {
    /// The earliest recorded output not indexed yet: results from after it
    /// may be missing. `None`: the index is up to date (as of the
    /// indexer's last pass).
    pub behind_since: Option<Timestamp>,
    /// When the indexer last looked; `None`: it never ran.
    pub checked_at: Option<Timestamp>,
    /// Exec sessions without a pty whose middle output is not indexed, and
    /// the recording bytes that left out.
    pub partly_indexed: u64,
    pub skipped_bytes: u64,
}

/// A search's answer.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Found {
    pub hits: Vec<ScreenHit>,
    pub index: IndexStatus,
    /// Candidate blocks not read within [`TIME_BUDGET`]: more hits may be
    /// there (a longer text narrows the search).
    pub unread: usize,
}

impl Found {
    /// What a reader of these results must know, one line each: how far
    /// the index got, what was not read, what is not indexed.
    pub fn notes(&self, tz: &jiff::tz::TimeZone) -> Vec<String> {
        let mut notes = Vec::new();
        let when = |t: Timestamp| {
            t.to_zoned(tz.clone())
                .strftime("%Y-%m-%d %H:%M:%S")
                .to_string()
        };
        match (self.index.checked_at, self.index.behind_since) {
            (None, _) => notes.push(
                "the screen-text index is not built yet: `rampart serve` builds it in the background"
                    .to_string(),
            ),
            (Some(_), Some(t)) => notes.push(format!(
                "indexed up to {}: output recorded after that may be missing here",
                when(t)
            )),
            (Some(_), None) => {}
        }
        if self.unread > 0 {
            notes.push(format!(
                "{} blocks of recordings were not read within {} ms: more places may exist (search for a longer text)",
                self.unread,
                TIME_BUDGET.as_millis()
            ));
        }
        if self.index.partly_indexed > 0 {
            notes.push(format!(
                "{} exec sessions without a pty are indexed only at the start and end of their output ({} MB of recording not searched)",
                self.index.partly_indexed,
                self.index.skipped_bytes.div_ceil(1_000_000)
            ));
        }
        notes
    }

    /// The same, short, for a title line.
    pub fn summary(&self, tz: &jiff::tz::TimeZone) -> String {
        let mut parts = Vec::new();
        match (self.index.checked_at, self.index.behind_since) {
            (None, _) => parts.push("index not built yet".to_string()),
            (Some(_), Some(t)) => parts.push(format!(
                "indexed up to {}",
                t.to_zoned(tz.clone()).strftime("%H:%M:%S")
            )),
            (Some(_), None) => {}
        }
        if self.unread > 0 {
            parts.push(format!("{} blocks unread", self.unread));
        }
        if self.index.partly_indexed > 0 {
            parts.push(format!(
                "{} exec sessions partly indexed",
                self.index.partly_indexed
            ));
        }
        parts.join(" · ")
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SearchError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("the search stopped unexpectedly")]
    Gone,
}

/// How complete the index is, from what the indexer noted last.
pub async fn status(store: &Store) -> Result<IndexStatus, SearchError> {
    let mut conn = store.conn().await?;
    let state = store::search::state(&mut conn).await?;
    let (partly_indexed, skipped_bytes) = store::search::partly_indexed(&mut conn).await?;
    Ok(IndexStatus {
        behind_since: state.as_ref().and_then(|s| s.behind_since),
        checked_at: state.map(|s| s.updated_at),
        partly_indexed,
        skipped_bytes,
    })
}

/// Where `text` appeared on a recorded screen, newest session first, at
/// most `limit` places. ASCII letters match either case.
pub async fn search(
    store: &Store,
    recordings: &Recordings,
    text: &str,
    limit: usize,
) -> Result<Found, SearchError> {
    let text = text.trim();
    let index = status(store).await?;
    if text.is_empty() || limit == 0 {
        return Ok(Found {
            index,
            ..Found::default()
        });
    }
    let terms = trigram::query_terms(text);
    let candidates = {
        let mut conn = store.conn().await?;
        store::search::candidates(&mut conn, &terms, MAX_CANDIDATES).await?
    };
    let needle = text.to_ascii_lowercase();
    let (hits, unread) = confirm(recordings, candidates, &needle, limit, TIME_BUDGET).await;
    Ok(Found {
        hits,
        index,
        unread,
    })
}

/// Reads the candidate blocks in order and keeps the lines that contain
/// `needle`; stops at `limit` hits or when `budget` is spent. Returns the
/// hits and how many candidates were left unread.
async fn confirm(
    recordings: &Recordings,
    candidates: Vec<store::search::Candidate>,
    needle: &str,
    limit: usize,
    budget: Duration,
) -> (Vec<ScreenHit>, usize) {
    let start = Instant::now();
    let mut hits = Vec::new();
    let total = candidates.len();
    for (i, c) in candidates.into_iter().enumerate() {
        if hits.len() >= limit {
            return (hits, 0);
        }
        if start.elapsed() >= budget {
            return (hits, total - i);
        }
        let lines = match read_block(recordings, &c).await {
            Ok(Some(lines)) => lines,
            Ok(None) => continue,
            Err(e) => {
                tracing::warn!(session = %c.session, "recording not readable for a search: {e}");
                continue;
            }
        };
        // Newest first within the block too.
        for line in lines.into_iter().rev() {
            if hits.len() >= limit {
                break;
            }
            if !line.text.to_ascii_lowercase().contains(needle) {
                continue;
            }
            let offset_ms = i64::try_from(line.at.as_millis()).unwrap_or(i64::MAX);
            hits.push(ScreenHit {
                session: c.session.clone(),
                user: c.user.clone(),
                asset: c.asset.clone(),
                account: c.account.clone(),
                at: c
                    .started_at
                    .checked_add(SignedDuration::from_millis(offset_ms))
                    .unwrap_or(c.started_at),
                offset_ms,
                line: line.text,
            });
        }
    }
    (hits, 0)
}

/// The recording's path, if it stays inside the recording dir (a row
/// naming `../` anything is not followed).
fn within(dir: &Path, recording: &str) -> Option<PathBuf> {
    let rel = Path::new(recording);
    rel.components()
        .all(|c| matches!(c, std::path::Component::Normal(_)))
        .then(|| dir.join(rel))
}

/// The lines of one candidate block: from the local cast when it is here,
/// else from the object store (the block's bytes only, one ranged read: a
/// recording another node made, or one removed here after its upload).
/// `None`: the recording is in neither, or its row names a path outside
/// the recording dir.
async fn read_block(
    recordings: &Recordings,
    c: &store::search::Candidate,
) -> Result<Option<Vec<ScreenLine>>, String> {
    let Some(path) = within(recordings.dir(), &c.recording) else {
        return Ok(None);
    };
    let local = tokio::fs::try_exists(&path).await.unwrap_or(false);
    let stretch = if local {
        None
    } else {
        let range = c.cast_start..c.cast_end.max(c.cast_start);
        match recordings.object_range(&c.recording, range).await {
            Ok(Some(bytes)) => Some(Stretch::of_piece(bytes, c.cast_start)),
            Ok(None) => return Ok(None),
            Err(e) => return Err(e.to_string()),
        }
    };
    let c = c.clone();
    tokio::task::spawn_blocking(move || {
        let stretch = match stretch {
            Some(stretch) => stretch,
            None => Stretch::open(&path, c.cast_start)?,
        };
        block_lines(stretch, &c)
    })
    .await
    .map_err(|_| "the search stopped unexpectedly".to_string())?
    .map(Some)
    .map_err(|e| e.to_string())
}

/// The lines of one block, read as the indexer read them.
fn block_lines(
    mut stretch: Stretch,
    c: &store::search::Candidate,
) -> std::io::Result<Vec<ScreenLine>> {
    let mut lines = Lines::resume(&c.carry, Duration::from_millis(c.carry_ms));
    let mut out = Vec::new();
    loop {
        match stretch.next(Some(c.cast_end))? {
            Step::Output { at, text } => lines.feed_text(text, at, |at, line| {
                out.push(ScreenLine {
                    at,
                    text: String::from_utf8_lossy(line).into_owned(),
                })
            }),
            Step::Other => {}
            Step::End => break,
        }
    }
    if c.last {
        lines.finish(|at, line| {
            out.push(ScreenLine {
                at,
                text: String::from_utf8_lossy(line).into_owned(),
            })
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_recording_outside_the_recording_dir_is_never_read() {
        let dir = Path::new("/var/lib/rampart/recordings");
        assert!(within(dir, "2026/12/05/x.cast").is_some());
        assert!(within(dir, "../master.key").is_none());
        assert!(within(dir, "/etc/shadow").is_none());
        assert!(within(dir, "2026/../../x").is_none());
    }
}
