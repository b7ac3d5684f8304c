//! [`Player`]: a recording opened for the replay screen, with seeking,
//! command markers and idle compression, that never reads the file whole.
//!
//! Two cursors read the cast, each with its own file handle:
//!
//! - the **playhead** feeds events through a vt100 terminal model up to a
//!   target time and leaves checkpoints behind it (the byte offset, the
//!   timeline clock and a copy of the screen), spaced by file size; seeking
//!   back restores the nearest checkpoint at or before the target and plays
//!   forward from its offset, seeking forward goes on from the playhead or
//!   jumps to a later checkpoint;
//! - the **index scan** reads ahead without a terminal model, parsing only
//!   each line's time and code, to learn the duration and to collect the
//!   markers (`cmd: ...`) for the command list.
//!
//! Nothing happens on its own: the caller drives both with [`Player::step`]
//! and a [`Budget`] (file bytes and a deadline), so a screen that calls it
//! once per frame stays responsive however large the file is. Opening reads
//! only the header, so a recording of any size plays at once; a seek far
//! past what the playhead has seen takes as many steps as the output in
//! between needs (the screen shows [`Player::seek_progress`]).
//!
//! Memory stays bounded: checkpoints are screen copies whose total size is
//! capped by [`PlayerOptions::checkpoint_budget`] (when full, every other
//! one is dropped and the spacing doubles), the marker list by
//! [`PlayerOptions::max_markers`], and a line longer than 8 MiB is skipped.
//! A partial last line (a crash) ends the recording where the complete
//! lines end, as [`super::read`] does; a complete line that is not an event
//! is skipped and counted. Output kept only in the raw sidecar (binary) is
//! not shown: what a player shows is the cast's `"o"` text.
//!
//! A desktop recording (RDP) plays the same way with a picture instead of
//! a terminal: each `raw:` marker's sidecar bytes are decoded into it, and
//! checkpoints are the picture (deflated) taken at the writer's `key:`
//! markers, where the sidecar starts a gzip member that can be decoded on
//! its own (`picture`). Seeking back costs at most a restore and 2 MiB of
//! updates. Seeking ahead past the playhead starts from the last stored
//! keyframe before the target (`jump`: a `key:` where the relay had the
//! target repaint the whole desktop, found by the index scan, which runs
//! first for a desktop), so it decodes a few MiB at most however long the
//! recording; without keyframes it decodes what lies between.
//!
//! Times are in seconds on one of two [`Timeline`]s: as recorded, or with
//! every pause longer than the idle cap shortened to the cap. The player
//! keeps both for every position, so switching keeps the same moment.
//!
//! Layout: `head` is the playhead, `picture` a desktop's model, `jump`
//! its seeks through keyframes, `checkpoint` the saved screens, `index`
//! the index scan, `markers` the command list it collects, `lines` the
//! line reader and clocks both share; this file drives them.

mod checkpoint;
mod head;
mod index;
mod jump;
mod lines;
mod markers;
mod picture;
#[cfg(test)]
mod tests;

use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use checkpoint::Checkpoint;
pub use checkpoint::CheckpointStats;
use head::{Head, Read1, nz};
use index::Scan;
use lines::{Clock, Escape, Lines, MAX_LINE, clamp_size};
pub use lines::{Stamp, Timeline};
pub use markers::Marker;
use picture::Picture;

use super::RecordError;
use super::desktop::Frame;
use super::header::Header;
use super::reader::Truncation;

/// How a [`Player`] plays and how much memory it may use.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PlayerOptions {
    /// Pauses longer than this (seconds) are shortened to it on the
    /// compressed timeline.
    pub idle_cap: f64,
    /// The timeline positions are given on at first.
    pub timeline: Timeline,
    /// Bytes of screen copies kept as seek checkpoints.
    pub checkpoint_budget: usize,
    /// File bytes between checkpoints at first; doubles each time the
    /// budget fills up.
    pub checkpoint_spacing: u64,
    /// Most markers kept for the command list.
    pub max_markers: usize,
}

impl Default for PlayerOptions {
    fn default() -> Self {
        PlayerOptions {
            idle_cap: 2.0,
            timeline: Timeline::Compressed,
            checkpoint_budget: 32 * 1024 * 1024,
            checkpoint_spacing: 256 * 1024,
            max_markers: 50_000,
        }
    }
}

/// How much one [`Player::step`] may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Budget {
    /// File bytes the playhead may feed through the terminal model.
    pub play_bytes: u64,
    /// File bytes the index scan may read.
    pub scan_bytes: u64,
    /// Stop once this has passed (checked between events); while the
    /// index scan is not done, the playhead gets the first two thirds of
    /// the time and the scan the rest.
    pub deadline: Option<Instant>,
}

impl Budget {
    /// Everything to the end: for tests and tools, never for a screen.
    pub const UNLIMITED: Budget = Budget {
        play_bytes: u64::MAX,
        scan_bytes: u64::MAX,
        deadline: None,
    };

    /// What a screen may spend per frame: at most `time` from now.
    pub fn frame(time: Duration) -> Budget {
        Budget {
            play_bytes: 16 * 1024 * 1024,
            scan_bytes: 256 * 1024 * 1024,
            deadline: Some(Instant::now() + time),
        }
    }
}

/// The picture `at` seconds into the recording `cast` as recorded (its
/// last when the recording is shorter; `None` before the desktop was
/// shown), found the way the replay seeks: from the last stored keyframe
/// before it, so a moment late in a long recording costs no more than one
/// early on.
pub fn picture_at<T>(
    cast: impl AsRef<Path>,
    at: f64,
    then: impl FnOnce(Option<Frame<'_>>) -> T,
) -> Result<T, RecordError> {
    let options = PlayerOptions {
        timeline: Timeline::Recorded,
        ..PlayerOptions::default()
    };
    let mut player = Player::open(cast, options)?;
    if at.is_finite() {
        player.seek_recorded(at);
    } else {
        player.seek_end();
    }
    while !player.caught_up() {
        player.step(Budget::UNLIMITED);
    }
    match player.take_error() {
        Some(e) => Err(e),
        None => Ok(then(player.picture())),
    }
}

/// Work left in one step for one cursor.
#[derive(Debug)]
struct Work {
    bytes: u64,
    deadline: Option<Instant>,
}

impl Work {
    fn left(&self) -> bool {
        self.bytes > 0 && self.deadline.is_none_or(|d| Instant::now() < d)
    }

    fn spend(&mut self, n: usize) {
        self.bytes = self.bytes.saturating_sub(n as u64);
    }
}

/// Where the playhead is going: a time on a timeline (∞: the end).
#[derive(Debug, Clone, Copy, PartialEq)]
struct Target {
    timeline: Timeline,
    at: f64,
}

/// A recording opened for playback. See the module docs.
pub struct Player {
    path: PathBuf,
    header: Header,
    options: PlayerOptions,
    timeline: Timeline,
    file_len: u64,
    /// Offset and line number where the events start (after the header).
    body: (u64, u64),
    initial_size: (u16, u16),
    head: Head,
    scan: Scan,
    checkpoints: Vec<Checkpoint>,
    checkpoint_bytes: usize,
    spacing: u64,
    target: Target,
    /// Where the playhead was when the current target was set.
    seek_from: (Stamp, u64),
    /// The stamp of the last event, once a cursor has reached it.
    end: Option<Stamp>,
    error: Option<RecordError>,
    /// A desktop's jumps to stored keyframes for the current target.
    jumps: Jumps,
}

/// A desktop's jumps to stored keyframes for one target: the keyframe
/// jumped to, if any, and how many more may be tried. The target's repaint
/// normally fills the picture well before the target; when it has not
/// (the target ignored the request, or the target is right after it), the
/// jump is undone and an earlier keyframe tried, and after a few the
/// playhead decodes the ordinary way.
#[derive(Debug, Clone, Copy)]
struct Jumps {
    /// Only keyframes before this cast offset may be tried.
    below: u64,
    left: u8,
    /// The cast offset of the keyframe the playhead started from, until
    /// the seek has arrived and the picture was found whole.
    from: Option<u64>,
}

impl std::fmt::Debug for Player {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Player")
            .field("path", &self.path)
            .field("position", &self.position())
            .field("timeline", &self.timeline)
            .field("checkpoints", &self.checkpoints.len())
            .field("markers", &self.scan.markers.len())
            .finish_non_exhaustive()
    }
}

impl Player {
    /// Opens a cast: reads its header only. Fails when the file cannot be
    /// opened or the header is not an asciicast v2 header.
    pub fn open(path: impl AsRef<Path>, options: PlayerOptions) -> Result<Player, RecordError> {
        let path = path.as_ref().to_path_buf();
        let read_err = |source| RecordError::Read {
            path: path.clone(),
            source,
        };
        let file = File::open(&path).map_err(read_err)?;
        let file_len = file.metadata().map_err(read_err)?.len();
        let mut first = Vec::new();
        BufReader::new(&file)
            .take(MAX_LINE as u64)
            .read_until(b'\n', &mut first)
            .map_err(read_err)?;
        let format = |reason: String| RecordError::Format {
            path: path.clone(),
            line: 1,
            reason,
        };
        if !first.ends_with(b"\n") {
            return Err(format("the header line is incomplete".into()));
        }
        let header: Header = serde_json::from_slice(&first)
            .map_err(|e| format(format!("not an asciicast header: {e}")))?;
        if header.version != 2 {
            return Err(format(format!(
                "asciicast version {} (only version 2 is read)",
                header.version
            )));
        }
        let body = (first.len() as u64, 1);
        let size = clamp_size(u32::from(header.width), u32::from(header.height));
        let cap = if options.idle_cap.is_finite() && options.idle_cap > 0.0 {
            options.idle_cap
        } else {
            f64::INFINITY
        };
        let head_lines = Lines::new(file, body.0, body.1).map_err(read_err)?;
        let scan_file = File::open(&path).map_err(read_err)?;
        let scan_lines = Lines::new(scan_file, body.0, body.1).map_err(read_err)?;
        let desktop = header
            .rampart
            .as_ref()
            .is_some_and(|r| r.kind == super::SessionKind::Desktop);
        // A desktop's checkpoints are spaced by decoded update bytes, at
        // least one `key:` apart (see `picture`).
        let spacing = if desktop {
            options.checkpoint_spacing.max(4096).saturating_mul(4)
        } else {
            options.checkpoint_spacing.max(4096)
        };
        let picture = desktop.then(|| Box::new(Picture::new(super::export::sidecar_path(&path))));
        Ok(Player {
            header,
            options: PlayerOptions {
                idle_cap: cap,
                ..options
            },
            timeline: options.timeline,
            file_len,
            body,
            initial_size: size,
            head: Head {
                lines: head_lines,
                parser: vt100::Parser::new(nz(size.1), nz(size.0), 0),
                escape: Escape::Ground,
                clock: Clock::new(cap),
                last: Stamp::default(),
                size,
                pending: None,
                eof: false,
                buf: Vec::new(),
                truncated: None,
                damaged: 0,
                picture,
            },
            scan: Scan::new(scan_lines, cap, options.max_markers),
            checkpoints: Vec::new(),
            checkpoint_bytes: 0,
            spacing,
            target: Target {
                timeline: options.timeline,
                at: 0.0,
            },
            seek_from: (Stamp::default(), body.0),
            end: None,
            error: None,
            jumps: Jumps::new(),
            path,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn header(&self) -> &Header {
        &self.header
    }

    /// The recorded terminal at the playhead.
    pub fn screen(&self) -> &vt100::Screen {
        self.head.parser.screen()
    }

    /// A desktop recording: [`Player::picture`] shows it, the terminal
    /// stays blank.
    pub fn is_desktop(&self) -> bool {
        self.head.picture.is_some()
    }

    /// A desktop recording's picture at the playhead, once the recording
    /// has said its size.
    pub fn picture(&self) -> Option<Frame<'_>> {
        self.head.picture.as_ref()?.frame()
    }

    /// The recorded terminal's size at the playhead, (cols, rows).
    pub fn recorded_size(&self) -> (u16, u16) {
        self.head.size
    }

    /// The idle cap in seconds (∞ when compression is off by option).
    pub fn idle_cap(&self) -> f64 {
        self.options.idle_cap
    }

    pub fn timeline(&self) -> Timeline {
        self.timeline
    }

    /// Switches the timeline positions are given on, keeping the moment.
    pub fn set_timeline(&mut self, timeline: Timeline) {
        if timeline == self.timeline {
            return;
        }
        if self.caught_up() && self.target.at.is_finite() {
            self.target = Target {
                timeline,
                at: self.convert(self.target, timeline),
            };
        }
        self.timeline = timeline;
    }

    /// Where playback is, in seconds on the current timeline: the target
    /// of the last seek (within the recording), or, while the playhead is
    /// still getting there on another timeline, where the playhead is.
    pub fn position(&self) -> f64 {
        let pos = if self.target.timeline == self.timeline && self.target.at.is_finite() {
            self.target.at
        } else if self.caught_up() && self.target.at.is_finite() {
            self.convert(self.target, self.timeline)
        } else {
            self.head.last.on(self.timeline)
        };
        match self.duration() {
            Some(end) => pos.min(end),
            None => pos,
        }
    }

    /// The length on the current timeline, once known.
    pub fn duration(&self) -> Option<f64> {
        self.end.map(|e| e.on(self.timeline))
    }

    /// The length as far as it is known (the duration once known).
    pub fn known_duration(&self) -> f64 {
        self.scan
            .last
            .on(self.timeline)
            .max(self.head.last.on(self.timeline))
    }

    /// Moves playback to `at` seconds on the current timeline (clamped to
    /// the start). Cheap: at most one screen copy; the playhead gets there
    /// in later [`Player::step`]s.
    pub fn seek(&mut self, at: f64) {
        self.seek_to(Target {
            timeline: self.timeline,
            at: at.max(0.0),
        });
    }

    /// [`Player::seek`] to a moment given as recorded seconds since the
    /// start (the audit log's command times), whichever timeline is shown.
    pub fn seek_recorded(&mut self, at: f64) {
        self.seek_to(Target {
            timeline: Timeline::Recorded,
            at: at.max(0.0),
        });
    }

    /// [`Player::seek`] to the end, known or not.
    pub fn seek_end(&mut self) {
        self.seek_to(Target {
            timeline: self.timeline,
            at: f64::INFINITY,
        });
    }

    fn seek_to(&mut self, target: Target) {
        let t = target.at;
        let on = target.timeline;
        self.target = target;
        self.jumps = Jumps::new();
        // The last checkpoint at or before the target.
        let at_or_before = self.checkpoints.partition_point(|c| c.last.on(on) <= t);
        let checkpoint = at_or_before.checked_sub(1);
        let head_usable = self.head.last.on(on) <= t;
        let restore = match checkpoint.and_then(|i| self.checkpoints.get(i)) {
            Some(c) if !head_usable || c.offset > self.head.resume_offset() => checkpoint,
            _ => None,
        };
        if let Some(i) = restore {
            self.restore(i);
        } else if !head_usable {
            self.restart();
        }
        self.seek_from = (self.head.last, self.head.resume_offset());
    }

    fn restart(&mut self) {
        if let Err(source) = self.head.lines.seek(self.body.0, self.body.1) {
            self.fail(source);
            return;
        }
        let size = self.initial_size;
        let head = &mut self.head;
        head.parser = vt100::Parser::new(nz(size.1), nz(size.0), 0);
        head.escape = Escape::Ground;
        head.clock = Clock::new(self.options.idle_cap);
        head.last = Stamp::default();
        head.size = size;
        head.pending = None;
        head.eof = false;
        if let Some(picture) = head.picture.as_mut() {
            picture.restore(None);
        }
    }

    fn fail(&mut self, source: std::io::Error) {
        self.stop(RecordError::Read {
            path: self.path.clone(),
            source,
        });
    }

    fn stop(&mut self, error: RecordError) {
        self.error = Some(error);
        self.head.eof = true;
        self.scan.done = true;
    }

    /// Moves the playhead toward the target and the index scan ahead,
    /// within `budget`.
    pub fn step(&mut self, budget: Budget) {
        if self.error.is_some() {
            return;
        }
        if self.head.picture.is_some() {
            self.step_desktop(budget);
        } else {
            self.step_terminal(budget);
        }
        if self.scan.done && self.end.is_none() {
            self.end = Some(self.scan.last);
        }
    }

    fn step_terminal(&mut self, budget: Budget) {
        let start = Instant::now();
        // Once the scan is done the playhead has the whole budget.
        let play_deadline = match budget.deadline {
            Some(d) if !self.scan.done => Some(start + d.saturating_duration_since(start) * 2 / 3),
            other => other,
        };
        let mut play = Work {
            bytes: budget.play_bytes,
            deadline: play_deadline,
        };
        if let Err(e) = self.advance(&mut play) {
            self.stop(e);
            return;
        }
        let mut scan = Work {
            bytes: budget.scan_bytes,
            deadline: budget.deadline,
        };
        if let Err(e) = self.scan.step(&mut scan) {
            self.fail(e);
        }
    }

    /// A desktop: the scan goes first, and has the whole step while it has
    /// not reached the target (its cast is small, the updates being in the
    /// sidecar, and decoding what a keyframe may make needless is wasted).
    /// Then the playhead jumps to the last keyframe before the target if
    /// that is ahead of it, decodes on, and a seek that has arrived checks
    /// that the picture is whole.
    fn step_desktop(&mut self, budget: Budget) {
        let start = Instant::now();
        let behind =
            |scan: &Scan, target: Target| !scan.done && scan.last.on(target.timeline) < target.at;
        let scan_deadline = match budget.deadline {
            Some(d) if !behind(&self.scan, self.target) => {
                Some(start + d.saturating_duration_since(start) / 3)
            }
            other => other,
        };
        let mut scan = Work {
            bytes: budget.scan_bytes,
            deadline: scan_deadline,
        };
        if let Err(e) = self.scan.step(&mut scan) {
            self.fail(e);
            return;
        }
        if behind(&self.scan, self.target) {
            return;
        }
        self.jump();
        let mut play = Work {
            bytes: budget.play_bytes,
            deadline: budget.deadline,
        };
        if let Err(e) = self.advance(&mut play) {
            self.stop(e);
            return;
        }
        self.check_jump();
    }

    fn advance(&mut self, work: &mut Work) -> Result<(), RecordError> {
        let on = self.target.timeline;
        let t = self.target.at;
        while !self.head.eof && work.left() {
            let event = match self.head.pending.take() {
                Some(p) => p,
                None => match self.head.read().map_err(|source| RecordError::Read {
                    path: self.path.clone(),
                    source,
                })? {
                    Read1::Event(p) => {
                        work.spend(p.bytes);
                        p
                    }
                    Read1::Skipped(n) => {
                        work.spend(n);
                        continue;
                    }
                    Read1::End => {
                        self.head.eof = true;
                        self.end = Some(self.head.last);
                        if self.target.at.is_infinite() {
                            self.target = Target {
                                timeline: self.timeline,
                                at: self.head.last.on(self.timeline),
                            };
                        }
                        break;
                    }
                },
            };
            if event.at.on(on) > t {
                self.head.pending = Some(event);
                break;
            }
            self.head.apply(event)?;
            self.checkpoint();
        }
        Ok(())
    }

    /// `target` on another timeline, through the playhead's neighbourhood
    /// (exact when the playhead has caught up with it).
    fn convert(&self, target: Target, to: Timeline) -> f64 {
        if target.timeline == to {
            return target.at;
        }
        let last = self.head.last;
        let into = target.at - last.on(target.timeline);
        let mut at = last.on(to) + into.max(0.0);
        if let Some(next) = &self.head.pending {
            at = at.min(next.at.on(to));
        } else if let Some(end) = self.end {
            at = at.min(end.on(to));
        }
        at
    }

    /// The playhead has applied every event up to the target.
    pub fn caught_up(&self) -> bool {
        self.error.is_some()
            || self.head.eof
            || self
                .head
                .pending
                .as_ref()
                .is_some_and(|p| p.at.on(self.target.timeline) > self.target.at)
    }

    /// Every event has been applied: playback is at the end.
    pub fn at_end(&self) -> bool {
        self.head.eof
    }

    /// How far the playhead has come toward the target since it was set,
    /// 0 to 1; `None` once it is there.
    pub fn seek_progress(&self) -> Option<f64> {
        if self.caught_up() {
            return None;
        }
        let (from, from_offset) = self.seek_from;
        let on = self.target.timeline;
        let fraction = if self.target.at.is_finite() {
            let span = self.target.at - from.on(on);
            (self.head.last.on(on) - from.on(on)) / span
        } else {
            let span = self.file_len.saturating_sub(from_offset).max(1);
            self.head.resume_offset().saturating_sub(from_offset) as f64 / span as f64
        };
        Some(if fraction.is_finite() {
            fraction.clamp(0.0, 1.0)
        } else {
            0.0
        })
    }

    /// How much of the file the index scan has read, 0 to 1; `None` once it
    /// has read it all (markers and duration are complete).
    pub fn index_progress(&self) -> Option<f64> {
        if self.scan.done {
            return None;
        }
        Some((self.scan.offset() as f64 / self.file_len.max(1) as f64).clamp(0.0, 1.0))
    }

    /// The cast ends in a partial line (the session's process died).
    pub fn truncated(&self) -> Option<&Truncation> {
        self.head
            .truncated
            .as_ref()
            .or(self.scan.truncated.as_ref())
    }

    /// Complete lines that were not events, skipped.
    pub fn damaged_lines(&self) -> u64 {
        self.head.damaged.max(self.scan.damaged)
    }

    /// Bytes of a desktop's updates decoded since the player was opened
    /// (again after each seek back): what seeking cost.
    pub fn desktop_decoded(&self) -> u64 {
        self.head.picture.as_ref().map_or(0, |p| p.decoded)
    }

    /// A desktop's updates that did not decode, skipped.
    pub fn damaged_updates(&self) -> u64 {
        self.head.picture.as_ref().map_or(0, |p| p.damaged())
    }

    /// A read error that stopped playback.
    pub fn error(&self) -> Option<&RecordError> {
        self.error.as_ref()
    }

    /// The error that stopped playback, taken out (for a caller that is
    /// done with the player).
    pub fn take_error(&mut self) -> Option<RecordError> {
        self.error.take()
    }
}
