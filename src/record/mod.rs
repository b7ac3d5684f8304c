//! Session recordings and command extraction.
//!
//! `record` owns everything about what a session leaves on disk and what can
//! be read back from it:
//!
//! - the **asciicast v2 file** `YYYY/MM/DD/<session>.cast` under the
//!   recording dir (DESIGN.md §4), written as the session runs by
//!   [`RecorderHandle`] on its own thread;
//! - the **raw sidecar** `<session>.raw.gz` beside it, which keeps output
//!   bytes that a cast cannot hold (not UTF-8, or mostly control bytes such as
//!   `tar c` or `/dev/zero`) byte-exact and compressed;
//! - the **digests**: [`Finished::sha256`] is the SHA-256 of the cast file,
//!   and covers the sidecar because the cast's last event names the
//!   sidecar's own SHA-256 (see "Format" below);
//! - **reading back**: [`read`] (tolerant of a crash-truncated last line),
//!   [`export()`] (exactly the bytes the client received), [`replay()`],
//!   and [`Player`] for the replay screen (seeking by checkpoints, markers,
//!   idle compression, bounded work per step);
//! - **command extraction** from a vt100 model of the screen,
//!   [`CommandTracker`], with the first 4 KiB of each command's output;
//!   the model skips streamed text that scrolls away unread (`model/`).
//!
//! It must never block the relay (all disk I/O happens on the recorder's
//! thread; the relay only awaits when the bounded queue is full), never lose
//! or reorder output bytes (backpressure instead of dropping; a write error
//! is reported, not hidden), never write keystrokes unless input recording is
//! on (they contain passwords typed at sudo prompts), and never touch the
//! database: the relay writes rows from what [`Finished`] and
//! [`CompletedCommand`] return.
//!
//! # Format
//!
//! Line 1 is the header
//! `{"version":2,"width":W,"height":H,"timestamp":UNIX_SECS,"env":{"TERM":..,"SHELL":..},"title":..,"rampart":{"session":..,"user":..,"asset":..,"account":..,"protocol":..,"kind":"shell"|"exec"|"desktop"}}`,
//! then one event per line, `[seconds, code, data]` with `seconds` since the
//! start written with microsecond precision and never decreasing:
//!
//! | event | meaning |
//! |---|---|
//! | `[t,"o",text]` | output the client received (valid UTF-8, carried across chunk borders) |
//! | `[t,"i",text]` | keystrokes, only when input recording is on (lossy if not UTF-8) |
//! | `[t,"r","COLSxROWS"]` | window change |
//! | `[t,"m","cmd: ..."]` | a logged command ([`RecorderHandle::command`]; other relay markers: [`RecorderHandle::marker`]) |
//! | `[t,"m","raw: N bytes"]` | the next N bytes of the sidecar were output here; players show nothing |
//! | `[t,"m","raw: N bytes as text"]` | the same, and the very next `"o"` event shows them lossily (invalid bytes as U+FFFD) |
//! | `[t,"m","key: OFFSET"]` | desktops only, every 2 MiB of output: the sidecar starts a new gzip member at byte OFFSET of its file, so a replay that kept the picture here decodes on from here |
//! | `[t,"m","sidecar: NAME sha256=HEX bytes=N"]` | last event, when a sidecar exists: its name, digest and size |
//!
//! The sidecar is a gzip file (one or more members: level 1 for data that
//! compresses, stored blocks for data that does not) whose content is the
//! concatenation, in order, of the bytes of every `raw:` marker, so `zcat`
//! gives them back and text output is never stored twice.
//!
//! Which output goes there: a chunk is text when it is valid UTF-8 with at
//! most 1 in 32 bytes (or one byte, in a short chunk) being an unusual
//! control byte (NUL and the like; ESC, CR, LF, TAB, BS, BEL are usual). A
//! chunk with a few invalid bytes is stored raw *and* shown lossily;
//! anything else is binary: consecutive binary chunks are merged into one
//! segment per flush (about one marker a second), so a recording of binary
//! output is its compressed bytes plus a few dozen bytes a second (measured
//! on 10 MiB: random data 1.0002×, zeros 0.005×; `ls -l` text 1.025×, all
//! in the cast).
//!
//! The digest rule: [`Finished::sha256`] = SHA-256 over the whole cast file;
//! the sidecar's SHA-256 (over its compressed bytes) is inside the cast's
//! final `sidecar:` marker, so one digest in the session row and the audit
//! chain pins both files. [`export()`] checks the sidecar against it.
//!
//! Crash safety: complete lines are only ever appended, at least once a
//! second and at close (fsync at close), and the sidecar is flushed before
//! any cast line that refers to it, so a crash leaves a cast whose complete
//! lines are valid events and a sidecar that covers them.

mod command;
pub mod desktop;
mod export;
pub mod gif;
mod handle;
mod header;
mod model;
pub mod objects;
mod player;
mod reader;
mod sidecar;
mod strip;
pub mod video;
pub(crate) mod vt;
mod writer;

use std::io;
use std::path::PathBuf;
use std::sync::Arc;

pub use command::{CommandTracker, CompletedCommand, Input, LateCommand, OUTPUT_CAPTURE_LIMIT};
pub use export::{
    Chunks, ExportReport, ReplayOptions, ReplayReport, chunks, export, replay, replay_with,
};
pub use handle::{Elapsed, RecordOptions, RecorderHandle};
pub use header::{Env, Header, RampartHeader, SessionKind};
pub use player::{
    Budget, CheckpointStats, Marker, Player, PlayerOptions, Stamp, Timeline, picture_at,
};
pub use reader::{Event, EventKind, Reader, Truncation, read};
#[cfg(test)]
pub(crate) use strip::Stripper;
pub(crate) use strip::{Escapes, leading};
pub use writer::{Finished, RecordingMeta, SidecarInfo, file_sha256};

/// The sidecar's path beside a cast's, both relative to the recording dir:
/// `2026/12/05/x.cast` → `2026/12/05/x.raw.gz`.
pub fn sidecar_of(cast: &str) -> String {
    let stem = cast.strip_suffix(CAST_SUFFIX).unwrap_or(cast);
    format!("{stem}{SIDECAR_SUFFIX}")
}

/// File name suffix of the cast.
pub const CAST_SUFFIX: &str = ".cast";
/// File name suffix of the raw sidecar beside a cast.
pub const SIDECAR_SUFFIX: &str = ".raw.gz";

/// Why recording, reading back or replaying failed. Messages name the file
/// and the cause; the relay decides what the person sees
/// (`recording.on_failure`).
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    #[error("session id {0:?} cannot name a recording file (expected a UUID)")]
    InvalidSession(String),
    #[error("cannot create recording {}: {source}", path.display())]
    Create {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// Disk full, read-only file system, I/O error: reported on every call
    /// after it happened and by `finish`.
    #[error("recording {} could not be written: {source}", path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: Arc<io::Error>,
    },
    #[error("the recording writer stopped unexpectedly")]
    WriterGone,
    #[error("cannot read recording {}: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("recording {} line {line}: {reason}", path.display())]
    Format {
        path: PathBuf,
        line: u64,
        reason: String,
    },
    /// The sidecar is missing, damaged or does not match the digest the cast
    /// names: the export would not be the bytes the client received.
    #[error("raw sidecar {}: {reason}", path.display())]
    Sidecar { path: PathBuf, reason: String },
    #[error("replay speed {0} is outside 0.25 to 16")]
    Speed(f64),
    #[error("writing out the recording failed: {0}")]
    Output(#[source] io::Error),
    /// A video could not be made (no ffmpeg, or ffmpeg failed): what to do.
    #[error("{0}")]
    Video(String),
}
