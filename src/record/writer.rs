//! The synchronous writer behind [`super::RecorderHandle`]: the cast file,
//! the raw sidecar, their digests. It runs on the recorder's own thread and
//! is the only code here that writes recording files.

use std::fs::{DirBuilder, File};
use std::io::{self, Read, Write};
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use jiff::Timestamp;
use sha2::{Digest, Sha256};

use super::header::{Env, Header, RampartHeader, SessionKind};
use super::sidecar::{HashingFile, Sidecar, create_file};
use super::strip::Stripper;
use super::{CAST_SUFFIX, RecordError, SIDECAR_SUFFIX};

/// The cast is written to disk in pieces of about this size between flushes.
const CAST_BUFFER: usize = 64 * 1024;
/// Cast bytes written between two starts of the kernel's writeback.
const WRITEBACK_EVERY: u64 = 8 << 20;
/// How much escape-free text [`Finished::first_output`] keeps.
const FIRST_OUTPUT_LIMIT: usize = 4096;

/// What the header of a recording says about its session.
#[derive(Debug, Clone)]
pub struct RecordingMeta {
    /// The session id (a UUID); it names the file, so anything but hex
    /// digits and dashes is refused.
    pub session: String,
    /// The session start: the header's `timestamp` and the `YYYY/MM/DD`
    /// directory (UTC).
    pub started_at: Timestamp,
    pub user: String,
    pub asset: String,
    pub account: String,
    pub protocol: String,
    pub kind: SessionKind,
    /// Initial size; exec sessions without a pty use 80×24.
    pub cols: u16,
    pub rows: u16,
    pub term: Option<String>,
    pub shell: Option<String>,
    pub title: Option<String>,
    /// The exec'd command line, kept in the header's `rampart` object.
    pub command: Option<String>,
}

/// The sidecar of a finished recording.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SidecarInfo {
    /// Relative to the recording dir, like [`Finished::path`].
    pub path: PathBuf,
    /// SHA-256 (hex) of the compressed file, also named in the cast's last event.
    pub sha256: String,
    /// Size of the compressed file.
    pub bytes: u64,
    /// Output bytes it holds.
    pub raw_bytes: u64,
}

/// A closed recording: what the session row and the audit chain need.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finished {
    /// The cast, relative to the recording dir: `YYYY/MM/DD/<session>.cast`.
    pub path: PathBuf,
    /// SHA-256 (hex) of the whole cast file; it covers the sidecar through
    /// the sidecar's digest in the cast's last event.
    pub sha256: String,
    /// Size of the cast file.
    pub bytes: u64,
    /// Event lines in the cast (the header not counted).
    pub events: u64,
    pub sidecar: Option<SidecarInfo>,
    /// Output bytes relayed to the client (what `export` gives back).
    pub output_bytes: u64,
    /// The first 4 KiB of output as escape-free text: an exec'd command's
    /// output for the command log.
    pub first_output: String,
}

/// A write that failed, with the file it was for; the handle shares it with
/// every later call.
#[derive(Debug)]
pub(crate) struct WriteFailure {
    pub(crate) path: PathBuf,
    pub(crate) source: io::Error,
}

/// Binary output waiting for its marker: the bytes are already in the
/// sidecar, the marker is written when the segment closes.
struct Segment {
    at: Duration,
    len: u64,
}

/// How a chunk of output is kept.
#[derive(Debug, PartialEq, Eq)]
enum Class {
    /// `bytes[..complete]` is UTF-8 text for an `"o"` event; the rest is an
    /// incomplete sequence to carry to the next chunk.
    Text { complete: usize },
    /// Text with a few invalid bytes: raw in the sidecar, lossy in the cast.
    Mixed { complete: usize },
    /// Everything to the sidecar.
    Binary,
}

/// Control bytes that terminals use (BEL, BS, TAB, LF, VT, FF, CR, SO, SI,
/// ESC) are text; the other C0 bytes (NUL above all) mean binary data and
/// cost six bytes each as JSON `\u00XX`.
fn unusual(bytes: &[u8]) -> usize {
    // Branch-free and summed in u8 lanes over 255-byte runs (no run can
    // overflow), so the loop vectorises: this scan sees every output byte.
    let one =
        |b: u8| u8::from(b < 0x07) | (u8::from(b.wrapping_sub(0x10) < 0x10) & u8::from(b != 0x1b));
    bytes
        .chunks(255)
        .map(|run| usize::from(run.iter().fold(0u8, |n, &b| n.wrapping_add(one(b)))))
        .sum()
}

fn classify(bytes: &[u8]) -> Class {
    // One unusual or invalid byte in 32 is the line: a colourful `ls` or a
    // TUI redraw stays far below it, `tar`, `gzip` and `/dev/zero` far above.
    // A short chunk may have one: a stray byte in interactive output is
    // still shown.
    let limit = (bytes.len() / 32).max(1);
    // Counting control bytes is one vectorised pass; random data (one byte
    // in ten is such a control) stops here without the UTF-8 walk below,
    // which would stop at an invalid sequence every few bytes.
    let mut bad = unusual(bytes);
    if bad > limit {
        return Class::Binary;
    }
    let mut invalid = false;
    let mut rest = bytes;
    let mut complete = 0usize;
    loop {
        match std::str::from_utf8(rest) {
            Ok(_) => {
                complete += rest.len();
                break;
            }
            Err(e) => {
                let good = e.valid_up_to();
                match e.error_len() {
                    None => {
                        complete += good;
                        break;
                    }
                    Some(n) => {
                        invalid = true;
                        bad += n;
                        complete += good + n;
                        rest = rest.get(good + n..).unwrap_or_default();
                    }
                }
            }
        }
        if bad > limit {
            return Class::Binary;
        }
    }
    if bad > limit {
        Class::Binary
    } else if invalid {
        Class::Mixed { complete }
    } else {
        Class::Text { complete }
    }
}

/// One in each byte lane of a word.
const LANES: u64 = 0x0101_0101_0101_0101;

/// Where the bytes a JSON string escapes (control bytes, `"`, `\\`) are in
/// the word `w` (little-endian): the lowest set bit is in the lane of the
/// first such byte, exactly; lanes above it may be flagged falsely (the
/// classic "has a byte less than n" and "has a zero byte" word tricks, whose
/// borrows only run upwards). Zero: none.
fn escape_mask(w: u64) -> u64 {
    let high = LANES * 0x80;
    let zero = |v: u64| v.wrapping_sub(LANES) & !v & high;
    let below_space = w.wrapping_sub(LANES * 0x20) & !w & high;
    let quote = zero(w ^ (LANES * u64::from(b'"')));
    let backslash = zero(w ^ (LANES * u64::from(b'\\')));
    below_space | quote | backslash
}

fn escaped(b: u8) -> bool {
    b < 0x20 || b == b'"' || b == b'\\'
}

/// Room kept past the bytes still to copy: an eight-byte store and the
/// longest escape (`\u001b`) fit in it.
const ESCAPE_SLACK: usize = 16;

/// Appends `s` as a JSON string, byte for byte what serde_json writes: the
/// cast's hottest loop (every output byte passes here, and a pty's text has
/// an escape every few bytes: `\r\n`). It copies eight bytes at a time
/// into room made beforehand, then steps past them up to the first byte to
/// escape, so a short run costs one store and no call to `memcpy`.
fn push_json_str(buf: &mut Vec<u8>, s: &str) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let bytes = s.as_bytes();
    buf.push(b'"');
    let mut o = buf.len();
    // A pty's text grows by about a fifth (`\r\n` every few bytes).
    buf.resize(o + bytes.len() + bytes.len() / 4 + ESCAPE_SLACK, 0);
    let mut i = 0;
    while let Some(&first) = bytes.get(i) {
        // Each escape writes up to five bytes more than it reads: keep room
        // for every byte left, plus the slack.
        let need = o + (bytes.len() - i) + ESCAPE_SLACK;
        if buf.len() < need {
            buf.resize(need + bytes.len() / 4, 0);
        }
        let b = match (bytes.get(i..i + 8), buf.get_mut(o..o + 8)) {
            (Some(word), Some(room)) => {
                room.copy_from_slice(word);
                let mut lanes = [0u8; 8];
                lanes.copy_from_slice(word);
                let mask = escape_mask(u64::from_le_bytes(lanes));
                if mask == 0 {
                    i += 8;
                    o += 8;
                    continue;
                }
                // The copied bytes up to the lane are kept; the rest are
                // written over.
                let lane = (mask.trailing_zeros() / 8) as usize;
                i += lane;
                o += lane;
                match bytes.get(i) {
                    Some(&b) => b,
                    None => break,
                }
            }
            _ => first,
        };
        // A pty's line end, `\r\n`, in one step.
        if b == b'\r' && bytes.get(i + 1) == Some(&b'\n') {
            if let Some(room) = buf.get_mut(o..o + 4) {
                room.copy_from_slice(b"\\r\\n");
            }
            o += 4;
            i += 2;
            continue;
        }
        let short = match b {
            b'"' => b'"',
            b'\\' => b'\\',
            b'\n' => b'n',
            b'\r' => b'r',
            b'\t' => b't',
            0x08 => b'b',
            0x0c => b'f',
            _ if escaped(b) => b'u',
            // Only at the end, under eight bytes from it: a plain byte.
            _ => {
                if let Some(slot) = buf.get_mut(o) {
                    *slot = b;
                }
                i += 1;
                o += 1;
                continue;
            }
        };
        // Six bytes are always stored (a fixed-size copy, no call), and the
        // output moves on by the escape's length; the room makes it fit.
        let (escape, len) = if short == b'u' {
            // A u8 shifted right by 4, or masked with 15, indexes 16 entries.
            let hex = [HEX[usize::from(b >> 4)], HEX[usize::from(b & 15)]];
            ([b'\\', b'u', b'0', b'0', hex[0], hex[1]], 6)
        } else {
            ([b'\\', short, 0, 0, 0, 0], 2)
        };
        if let Some(room) = buf.get_mut(o..o + 6) {
            room.copy_from_slice(&escape);
        }
        o += len;
        i += 1;
    }
    buf.truncate(o);
    buf.push(b'"');
}

/// The marker for raw bytes; `export` parses it back.
pub(crate) fn raw_marker(len: u64, as_text: bool) -> String {
    if as_text {
        format!("{RAW_PREFIX}{len} bytes as text")
    } else {
        format!("{RAW_PREFIX}{len} bytes")
    }
}

pub(crate) const RAW_PREFIX: &str = "raw: ";
/// A desktop's seek point: the sidecar offset where a gzip member starts,
/// with the next `raw:` marker's bytes.
pub(crate) const KEY_PREFIX: &str = "key: ";
/// Desktop output between two seek points: decoding this much takes a few
/// milliseconds, so a seek from the nearest kept picture is quick.
const KEY_SPACING: u64 = 2 * 1024 * 1024;
pub(crate) const SIDECAR_PREFIX: &str = "sidecar: ";
/// Right after a `key:` marker: the relay asked the target to repaint the
/// whole desktop here, and this is the target's Demand Active (base64), so
/// a replay can start from a black picture of the right size at this key
/// without decoding anything before it (see [`CastWriter::redraw`]).
pub(crate) const REDRAW_PREFIX: &str = "redraw: ";
/// The writer's own marker prefixes: a relay marker that starts like one
/// is written as `note: ...`.
pub(crate) const OWN_PREFIXES: [&str; 4] = [RAW_PREFIX, KEY_PREFIX, SIDECAR_PREFIX, REDRAW_PREFIX];

/// The writer: one per recording, owned by the recorder thread.
pub(crate) struct CastWriter {
    dir: PathBuf,
    rel_dir: PathBuf,
    stem: String,
    cast_path: PathBuf,
    cast: HashingFile,
    /// Lines not yet written to the file: written at flush, or when it
    /// passes [`CAST_BUFFER`], always after the sidecar bytes they refer to.
    buf: Vec<u8>,
    /// Created with the first raw bytes: most sessions never need one.
    sidecar: Option<Sidecar>,
    /// `buf` holds a `raw:` marker whose bytes may still sit in the encoder.
    buf_refers_raw: bool,
    segment: Option<Segment>,
    /// An incomplete UTF-8 sequence (at most 3 bytes) from the end of the
    /// previous output chunk.
    carry: Vec<u8>,
    last: Duration,
    events: u64,
    output_bytes: u64,
    first_output: Stripper,
    /// Cast bytes before this were handed to the kernel's writeback.
    writeback_from: u64,
    /// A desktop recording: every output chunk is binary, stored raw with
    /// its own marker (a replay needs each update's time).
    desktop: bool,
    /// A desktop's output bytes since the last `key:` marker.
    since_key: u64,
}

/// Recording ids name files: only what a UUID is made of.
pub(crate) fn check_session_id(id: &str) -> Result<(), RecordError> {
    if id.is_empty() || id.len() > 64 || !id.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-') {
        return Err(RecordError::InvalidSession(id.to_string()));
    }
    Ok(())
}

/// Where a session's cast goes, relative to the recording dir.
pub(crate) fn relative_dir(started_at: Timestamp) -> PathBuf {
    let date = started_at.to_zoned(jiff::tz::TimeZone::UTC).date();
    PathBuf::from(format!(
        "{:04}/{:02}/{:02}",
        date.year(),
        date.month(),
        date.day()
    ))
}

impl CastWriter {
    /// Creates the directories (0700) and the cast (0600), and writes the
    /// header, so the file is a valid (empty) recording from the start.
    pub(crate) fn create(root: &Path, meta: &RecordingMeta) -> Result<Self, RecordError> {
        check_session_id(&meta.session)?;
        let rel_dir = relative_dir(meta.started_at);
        let dir = root.join(&rel_dir);
        DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&dir)
            .map_err(|source| RecordError::Create {
                path: dir.clone(),
                source,
            })?;
        let cast_path = dir.join(format!("{}{CAST_SUFFIX}", meta.session));
        let file = create_file(&cast_path).map_err(|source| RecordError::Create {
            path: cast_path.clone(),
            source,
        })?;
        let header = Header {
            version: 2,
            width: meta.cols.max(1),
            height: meta.rows.max(1),
            timestamp: Some(meta.started_at.as_second()),
            env: Env {
                term: meta.term.clone(),
                shell: meta.shell.clone(),
            },
            title: meta.title.clone(),
            rampart: Some(RampartHeader {
                session: meta.session.clone(),
                user: meta.user.clone(),
                asset: meta.asset.clone(),
                account: meta.account.clone(),
                protocol: meta.protocol.clone(),
                kind: meta.kind,
                command: meta.command.clone(),
            }),
        };
        let mut w = CastWriter {
            dir,
            rel_dir,
            stem: meta.session.clone(),
            cast_path: cast_path.clone(),
            cast: HashingFile::new(file),
            buf: Vec::with_capacity(CAST_BUFFER + 1024),
            sidecar: None,
            buf_refers_raw: false,
            segment: None,
            carry: Vec::new(),
            last: Duration::ZERO,
            events: 0,
            output_bytes: 0,
            first_output: Stripper::new(FIRST_OUTPUT_LIMIT),
            writeback_from: 0,
            desktop: meta.kind == SessionKind::Desktop,
            since_key: 0,
        };
        serde_json::to_writer(&mut w.buf, &header).map_err(|e| RecordError::Create {
            path: cast_path.clone(),
            source: io::Error::other(e),
        })?;
        w.buf.push(b'\n');
        w.write_buf().map_err(|f| RecordError::Create {
            path: f.path,
            source: f.source,
        })?;
        Ok(w)
    }

    pub(crate) fn relative_path(&self) -> PathBuf {
        self.rel_dir.join(format!("{}{CAST_SUFFIX}", self.stem))
    }

    fn sidecar_path(&self) -> PathBuf {
        self.dir.join(format!("{}{SIDECAR_SUFFIX}", self.stem))
    }

    fn cast_err(&self, source: io::Error) -> WriteFailure {
        WriteFailure {
            path: self.cast_path.clone(),
            source,
        }
    }

    fn sidecar_err(&self, source: io::Error) -> WriteFailure {
        WriteFailure {
            path: self.sidecar_path(),
            source,
        }
    }

    /// Event times never go backwards, even if two relay tasks race.
    fn stamp(&mut self, at: Duration) -> Duration {
        self.last = self.last.max(at);
        self.last
    }

    fn event(&mut self, at: Duration, code: &str, data: &str) {
        let micros = at.as_micros();
        // Writing into a Vec cannot fail, and a str always serialises.
        let _ = write!(
            self.buf,
            "[{}.{:06},\"{code}\",",
            micros / 1_000_000,
            micros % 1_000_000
        );
        push_json_str(&mut self.buf, data);
        self.buf.extend_from_slice(b"]\n");
        self.events += 1;
    }

    /// True when something is not yet on disk.
    pub(crate) fn dirty(&self) -> bool {
        !self.buf.is_empty()
            || self.segment.is_some()
            || self.sidecar.as_ref().is_some_and(Sidecar::dirty)
    }

    pub(crate) fn output(&mut self, at: Duration, data: &[u8]) -> Result<(), WriteFailure> {
        if data.is_empty() {
            return Ok(());
        }
        let at = self.stamp(at);
        self.output_bytes += data.len() as u64;
        if self.desktop {
            self.key_if_due(at)?;
            self.since_key += data.len() as u64;
            self.raw(at, data, false)?;
            return self.maybe_write_buf();
        }
        if !self.first_output.done() {
            self.first_output.feed(data);
        }
        let joined;
        let bytes: &[u8] = if self.carry.is_empty() {
            data
        } else {
            joined = [self.carry.as_slice(), data].concat();
            self.carry.clear();
            &joined
        };
        match classify(bytes) {
            Class::Text { complete } => {
                let (text, tail) = bytes.split_at(complete.min(bytes.len()));
                if !text.is_empty() {
                    self.close_segment();
                    match std::str::from_utf8(text) {
                        Ok(s) => self.event(at, "o", s),
                        // classify checked it; should it ever disagree,
                        // the raw path keeps the bytes anyway.
                        Err(_) => self.raw(at, text, true)?,
                    }
                }
                self.carry.extend_from_slice(tail);
            }
            Class::Mixed { complete } => {
                let (text, tail) = bytes.split_at(complete.min(bytes.len()));
                self.close_segment();
                self.raw(at, text, true)?;
                self.carry.extend_from_slice(tail);
            }
            Class::Binary => self.segment_append(at, bytes)?,
        }
        self.maybe_write_buf()
    }

    /// Keystrokes: lossy if not UTF-8 (input is not part of the export).
    pub(crate) fn input(&mut self, at: Duration, data: &[u8]) -> Result<(), WriteFailure> {
        if data.is_empty() {
            return Ok(());
        }
        let at = self.stamp(at);
        self.close_segment();
        self.event(at, "i", &String::from_utf8_lossy(data));
        self.maybe_write_buf()
    }

    pub(crate) fn resize(
        &mut self,
        at: Duration,
        cols: u16,
        rows: u16,
    ) -> Result<(), WriteFailure> {
        let at = self.stamp(at);
        self.close_segment();
        self.event(at, "r", &format!("{cols}x{rows}"));
        self.maybe_write_buf()
    }

    /// A relay marker. Texts that would read as one of the writer's own
    /// markers ([`OWN_PREFIXES`]) get a `note: ` prefix so that export and
    /// replay can never be misled by what a relay (or a person's command)
    /// wrote.
    pub(crate) fn marker(&mut self, at: Duration, text: &str) -> Result<(), WriteFailure> {
        let at = self.stamp(at);
        self.close_segment();
        if OWN_PREFIXES.iter().any(|p| text.starts_with(p.trim_end())) {
            self.event(at, "m", &format!("note: {text}"));
        } else {
            self.event(at, "m", text);
        }
        self.maybe_write_buf()
    }

    /// Stores `bytes` in the sidecar with a marker, and (as_text) a lossy
    /// `"o"` stand-in right after it.
    fn raw(&mut self, at: Duration, bytes: &[u8], as_text: bool) -> Result<(), WriteFailure> {
        self.sidecar_write(bytes)?;
        self.event(at, "m", &raw_marker(bytes.len() as u64, as_text));
        if as_text {
            self.event(at, "o", &String::from_utf8_lossy(bytes));
        }
        self.buf_refers_raw = true;
        Ok(())
    }

    /// A desktop's stored keyframe: the relay has just asked the target to
    /// repaint the whole desktop, so the updates from here on draw a full
    /// picture. A seek point (`key:`) goes here with a `redraw:` marker
    /// holding `demand_active`, the target's Demand Active that gives the
    /// size and ids a decoder starts from. Nothing before the first output
    /// (the recording's start is such a point already), and nothing for a
    /// terminal recording.
    pub(crate) fn redraw(
        &mut self,
        at: Duration,
        demand_active: &[u8],
    ) -> Result<(), WriteFailure> {
        use base64::Engine as _;
        if !self.desktop || self.sidecar.is_none() {
            return Ok(());
        }
        let at = self.stamp(at);
        self.since_key = KEY_SPACING;
        self.key_if_due(at)?;
        let encoded = base64::engine::general_purpose::STANDARD.encode(demand_active);
        self.event(at, "m", &format!("{REDRAW_PREFIX}{encoded}"));
        self.maybe_write_buf()
    }

    /// Every [`KEY_SPACING`] bytes of a desktop's output, a seek point:
    /// the sidecar starts a new gzip member and a `key: OFFSET` marker says
    /// where, so a replay that kept the picture at this moment can go on
    /// decoding from here instead of from the start.
    fn key_if_due(&mut self, at: Duration) -> Result<(), WriteFailure> {
        if self.since_key < KEY_SPACING {
            return Ok(());
        }
        let Some(sidecar) = self.sidecar.as_mut() else {
            return Ok(());
        };
        let offset = match sidecar.restart() {
            Ok(offset) => offset,
            Err(e) => return Err(self.sidecar_err(e)),
        };
        self.since_key = 0;
        self.event(at, "m", &format!("{KEY_PREFIX}{offset}"));
        Ok(())
    }

    fn segment_append(&mut self, at: Duration, bytes: &[u8]) -> Result<(), WriteFailure> {
        self.sidecar_write(bytes)?;
        match &mut self.segment {
            Some(seg) => seg.len += bytes.len() as u64,
            None => {
                self.segment = Some(Segment {
                    at,
                    len: bytes.len() as u64,
                })
            }
        }
        Ok(())
    }

    /// Writes the marker of the open binary segment. Every other event
    /// closes it first, so markers stay in time order with the rest.
    fn close_segment(&mut self) {
        if let Some(seg) = self.segment.take() {
            self.event(seg.at, "m", &raw_marker(seg.len, false));
            self.buf_refers_raw = true;
        }
    }

    fn sidecar_write(&mut self, bytes: &[u8]) -> Result<(), WriteFailure> {
        let result = match &mut self.sidecar {
            Some(sidecar) => sidecar.write(bytes),
            None => Sidecar::create(&self.sidecar_path()).and_then(|mut sidecar| {
                let written = sidecar.write(bytes);
                self.sidecar = Some(sidecar);
                written
            }),
        };
        result.map_err(|e| self.sidecar_err(e))
    }

    /// Once the buffer holds a [`CAST_BUFFER`], writes it up to the last
    /// file offset that is a multiple of [`CAST_BUFFER`] and keeps the rest.
    /// Writes of whole aligned pieces go into the page cache as large
    /// folios, which halves the kernel's cost per byte (`dd` of 1 GB on
    /// ext4: 0.17 s of system time in aligned 64 KiB writes, 0.32 s in
    /// 65000-byte ones); the cast is written once per byte relayed.
    fn maybe_write_buf(&mut self) -> Result<(), WriteFailure> {
        if self.buf.len() < CAST_BUFFER {
            return Ok(());
        }
        let piece = CAST_BUFFER as u64;
        let start = self.cast.bytes();
        let end = (start + self.buf.len() as u64) / piece * piece;
        // The buffer holds a whole piece, so `end` is past `start`.
        let len = usize::try_from(end.saturating_sub(start)).unwrap_or(self.buf.len());
        self.write_front(len)
    }

    /// Appends every buffered line to the cast.
    fn write_buf(&mut self) -> Result<(), WriteFailure> {
        self.write_front(self.buf.len())
    }

    /// Appends the first `len` buffered bytes to the cast, after making the
    /// sidecar bytes that any buffered line refers to decodable on disk (a
    /// gzip sync flush).
    fn write_front(&mut self, len: usize) -> Result<(), WriteFailure> {
        if self.buf_refers_raw {
            self.flush_sidecar()?;
            self.buf_refers_raw = false;
        }
        let len = len.min(self.buf.len());
        if len > 0 {
            let result = self.cast.write_all(self.buf.get(..len).unwrap_or_default());
            result.map_err(|e| self.cast_err(e))?;
            self.buf.drain(..len);
        }
        Ok(())
    }

    fn flush_sidecar(&mut self) -> Result<(), WriteFailure> {
        let result = match &mut self.sidecar {
            Some(sidecar) => sidecar.flush(),
            None => Ok(()),
        };
        result.map_err(|e| self.sidecar_err(e))
    }

    /// The periodic flush: everything so far reaches the files (not
    /// necessarily the disk; that is fsync at close).
    pub(crate) fn flush(&mut self) -> Result<(), WriteFailure> {
        self.close_segment();
        self.flush_sidecar()?;
        self.write_buf()?;
        self.start_writeback();
        Ok(())
    }

    /// Asks the kernel to start writing what the cast gained since the last
    /// call, without waiting for it: otherwise a long stream leaves
    /// gigabytes of dirty pages for the fsync at close, and the person's
    /// client waits that long for its exit (1.2 s after a 2 GB stream).
    fn start_writeback(&mut self) {
        let written = self.cast.bytes();
        if written - self.writeback_from < WRITEBACK_EVERY {
            return;
        }
        #[cfg(target_os = "linux")]
        {
            use std::os::fd::AsRawFd;
            let from = libc::off64_t::try_from(self.writeback_from).unwrap_or(0);
            let len = libc::off64_t::try_from(written - self.writeback_from).unwrap_or(0);
            // SAFETY: sync_file_range on a file descriptor this writer owns,
            // with a range inside the file; it only schedules writeback.
            // Failure changes nothing but the fsync's share of the work.
            let _ = unsafe {
                libc::sync_file_range(
                    self.cast.file.as_raw_fd(),
                    from,
                    len,
                    libc::SYNC_FILE_RANGE_WRITE,
                )
            };
        }
        self.writeback_from = written;
    }

    /// Closes the recording: carried bytes and the open segment, the gzip
    /// trailer, fsync of the sidecar, the `sidecar:` marker, fsync of the
    /// cast and (best effort) of the directory.
    pub(crate) fn finish(mut self) -> Result<Finished, WriteFailure> {
        if !self.carry.is_empty() {
            // An incomplete sequence at the very end: not text, keep it raw.
            let carry = std::mem::take(&mut self.carry);
            let at = self.last;
            self.segment_append(at, &carry)?;
        }
        self.close_segment();
        let sidecar = match self.sidecar.take() {
            Some(sidecar) => {
                let raw_bytes = sidecar.raw_bytes();
                let (sha256, bytes) = sidecar.finish().map_err(|e| self.sidecar_err(e))?;
                let name = format!("{}{SIDECAR_SUFFIX}", self.stem);
                let at = self.last;
                self.event(
                    at,
                    "m",
                    &format!("{SIDECAR_PREFIX}{name} sha256={sha256} bytes={bytes}"),
                );
                Some(SidecarInfo {
                    path: self.rel_dir.join(name),
                    sha256,
                    bytes,
                    raw_bytes,
                })
            }
            None => None,
        };
        self.buf_refers_raw = false;
        self.write_buf()?;
        self.cast.file.sync_all().map_err(|e| self.cast_err(e))?;
        // The new directory entries survive a power loss only once the
        // directory itself is synced; some file systems refuse, which is
        // not worth failing a finished recording for.
        if let Err(e) = File::open(&self.dir).and_then(|d| d.sync_all()) {
            tracing::debug!(dir = %self.dir.display(), "cannot fsync the recording dir: {e}");
        }
        Ok(Finished {
            path: self.relative_path(),
            bytes: self.cast.bytes(),
            sha256: self.cast.digest(),
            events: self.events,
            sidecar,
            output_bytes: self.output_bytes,
            first_output: self.first_output.text(),
        })
    }
}

/// SHA-256 (hex) of a file, e.g. to check a cast against its session row.
pub fn file_sha256(path: impl AsRef<Path>) -> Result<String, RecordError> {
    let path = path.as_ref();
    let read_err = |source| RecordError::Read {
        path: path.to_path_buf(),
        source,
    };
    let mut file = File::open(path).map_err(read_err)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = match file.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(read_err(e)),
        };
        hasher.update(buf.get(..n).unwrap_or_default());
    }
    Ok(hex::encode(hasher.finalize()))
}

#[cfg(test)]
mod tests {
    use super::{Class, classify, escape_mask, escaped, push_json_str};

    #[test]
    fn strings_are_escaped_exactly_as_serde_json_does() {
        let mut samples: Vec<String> = vec![
            String::new(),
            "plain ascii text that is longer than a word".into(),
            "12345\n12346\n".repeat(5),
            "\x1b[31mERROR\x1b[0m \"quoted\" back\\slash\ttab\r\n".into(),
            "é ü 日本語 \u{7f} \u{1f600}".into(),
        ];
        samples.push((0u8..=0x7f).map(char::from).collect());
        let mut state = 7u32;
        for len in 0..200 {
            let s: String = (0..len)
                .map(|_| {
                    state = state.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                    char::from_u32((state >> 24) % 0x90).unwrap_or('x')
                })
                .collect();
            samples.push(s);
        }
        // Escape-heavy strings outgrow the room first made for them.
        samples.push("\u{1}".repeat(5000));
        samples.push("\r\n".repeat(3000) + "tail");
        for s in &samples {
            let mut ours = Vec::new();
            push_json_str(&mut ours, s);
            assert_eq!(ours, serde_json::to_vec(s).unwrap(), "{s:?}");
            // After what a line already holds, as in a cast.
            let prefix = b"[1.000000,\"o\",";
            let mut line = prefix.to_vec();
            push_json_str(&mut line, s);
            assert_eq!(line.get(prefix.len()..), Some(&ours[..]), "{s:?}");
        }
        for b in 0..=255u8 {
            let w = u64::from_le_bytes([b'a', b'b', b, b'c', b'd', b'e', b'f', b'g']);
            assert_eq!(escape_mask(w) != 0, escaped(b), "byte {b:#x}");
        }
        let near = [
            0x00u8, 0x1f, 0x20, 0x21, 0x22, 0x23, 0x5b, 0x5c, 0x5d, 0x7f, 0x80, 0xa2, 0xdc, 0xff,
        ];
        let mut state = 1u64;
        for _ in 0..200_000 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let lanes: [u8; 8] =
                std::array::from_fn(|k| near[((state >> (k * 4)) % near.len() as u64) as usize]);
            let first = lanes.iter().position(|&b| escaped(b));
            let mask = escape_mask(u64::from_le_bytes(lanes));
            let flagged = (mask != 0).then(|| (mask.trailing_zeros() / 8) as usize);
            assert_eq!(flagged, first, "the first byte to escape in {lanes:?}");
        }
    }

    #[test]
    fn chunks_are_classified_by_what_a_cast_can_hold() {
        assert_eq!(
            classify(b"\x1b[1mls\x1b[0m\r\n"),
            Class::Text { complete: 12 }
        );
        // A split euro sign: the two bytes wait for the next chunk.
        assert_eq!(classify(b"price: \xe2\x82"), Class::Text { complete: 7 });
        // Latin-1 text: one bad byte in 40.
        let latin1 = b"caf\xe9 au lait, a long line of plain text";
        assert_eq!(
            classify(latin1),
            Class::Mixed {
                complete: latin1.len()
            }
        );
        assert_eq!(classify(&[0u8; 4096]), Class::Binary);
        assert_eq!(classify(b"\x00"), Class::Text { complete: 1 });
        assert_eq!(classify(b"\x00\x01"), Class::Binary);
        assert_eq!(
            classify(&[0x9f, 0x92, 0x96, 0xff, 0xfe, 0x80, 0x00, 0x01]),
            Class::Binary
        );
    }
}
