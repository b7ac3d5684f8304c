//! Giving a recording back: [`export`] writes exactly the bytes the client
//! received (the cast's text merged with the sidecar's raw segments), and
//! [`replay`] plays the output in a terminal with its timing.

use std::fs::File;
use std::io::{self, BufReader, Read, Seek, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use flate2::read::MultiGzDecoder;

use super::reader::{EventKind, Truncation, read};
use super::writer::{KEY_PREFIX, RAW_PREFIX, SIDECAR_PREFIX, file_sha256};
use super::{CAST_SUFFIX, RecordError, SIDECAR_SUFFIX};

/// What an export found besides the bytes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExportReport {
    /// Bytes written out.
    pub bytes: u64,
    /// Of those, bytes taken from the sidecar.
    pub raw_bytes: u64,
    /// The cast ends in a partial line (the session's process died).
    pub truncated: Option<Truncation>,
    /// The cast's final marker named the sidecar's digest and it matched.
    pub sidecar_verified: bool,
    /// Bytes the cast refers to that the sidecar does not have (a crash
    /// between writing the two): the export is short by this much.
    pub missing_raw_bytes: u64,
    /// Sidecar bytes after the last marker (a crash while binary output was
    /// flowing): appended at the end, where they were received.
    pub trailing_raw_bytes: u64,
}

impl ExportReport {
    /// Nothing is known to be missing or out of place.
    pub fn complete(&self) -> bool {
        self.truncated.is_none() && self.missing_raw_bytes == 0 && self.trailing_raw_bytes == 0
    }
}

/// `raw: N bytes` or `raw: N bytes as text` → (N, as_text).
pub(super) fn parse_raw_marker(text: &str) -> Option<(u64, bool)> {
    let rest = text.strip_prefix(RAW_PREFIX)?;
    let (n, as_text) = match rest.strip_suffix(" bytes as text") {
        Some(n) => (n, true),
        None => (rest.strip_suffix(" bytes")?, false),
    };
    Some((n.parse().ok()?, as_text))
}

/// `key: OFFSET` → OFFSET.
pub(super) fn parse_key_marker(text: &str) -> Option<u64> {
    text.strip_prefix(KEY_PREFIX)?.parse().ok()
}

/// `sidecar: NAME sha256=HEX bytes=N` → HEX.
fn parse_sidecar_marker(text: &str) -> Option<&str> {
    let rest = text.strip_prefix(SIDECAR_PREFIX)?;
    rest.split(' ')
        .find_map(|part| part.strip_prefix("sha256="))
}

/// The sidecar beside a cast: `x.cast` → `x.raw.gz`.
pub(crate) fn sidecar_path(cast: &Path) -> PathBuf {
    let name = cast
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let stem = name.strip_suffix(CAST_SUFFIX).unwrap_or(&name);
    cast.with_file_name(format!("{stem}{SIDECAR_SUFFIX}"))
}

/// The decoded sidecar, read as markers ask for it.
pub(super) struct Sidecar {
    path: PathBuf,
    decoder: MultiGzDecoder<BufReader<File>>,
    /// The stream ended (or was cut short by a crash).
    ended: bool,
}

impl Sidecar {
    pub(super) fn open(path: PathBuf) -> Result<Self, RecordError> {
        Sidecar::open_at(path, 0)
    }

    /// Opens the sidecar to decode from `offset`, where a gzip member
    /// starts (a desktop's `key:` marker names one).
    pub(super) fn open_at(path: PathBuf, offset: u64) -> Result<Self, RecordError> {
        let mut file = File::open(&path).map_err(|e| RecordError::Sidecar {
            path: path.clone(),
            reason: format!("the cast refers to it but it cannot be opened: {e}"),
        })?;
        if offset > 0 {
            file.seek(io::SeekFrom::Start(offset))
                .map_err(|e| RecordError::Sidecar {
                    path: path.clone(),
                    reason: format!("cannot seek to {offset}: {e}"),
                })?;
        }
        Ok(Sidecar {
            path,
            decoder: MultiGzDecoder::new(BufReader::new(file)),
            ended: false,
        })
    }

    /// Copies up to `n` bytes (all if `None`) to `out`; returns how many.
    pub(super) fn copy(
        &mut self,
        n: Option<u64>,
        out: &mut impl Write,
        buf: &mut [u8],
    ) -> Result<u64, RecordError> {
        let mut copied = 0u64;
        while !self.ended && n.is_none_or(|n| copied < n) {
            let want = n.map_or(buf.len(), |n| {
                buf.len()
                    .min(usize::try_from(n - copied).unwrap_or(usize::MAX))
            });
            let Some(chunk) = buf.get_mut(..want) else {
                break;
            };
            match self.decoder.read(chunk) {
                Ok(0) => self.ended = true,
                Ok(got) => {
                    out.write_all(chunk.get(..got).unwrap_or_default())
                        .map_err(RecordError::Output)?;
                    copied += got as u64;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                // A crash leaves the gzip stream without its end: what was
                // flushed before it decodes, the rest is simply not there.
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => self.ended = true,
                Err(e) => {
                    return Err(RecordError::Sidecar {
                        path: self.path.clone(),
                        reason: format!("damaged: {e}"),
                    });
                }
            }
        }
        Ok(copied)
    }
}

/// Writes exactly the output bytes the client received, in order: the
/// cast's `"o"` text, with each `raw:` marker replaced by its bytes from the
/// sidecar (and the lossy stand-in after a `raw: N bytes as text` skipped).
/// A damaged sidecar, or one whose digest differs from the one the cast
/// names, is an error; what a crash left incomplete is in the report.
pub fn export(cast: impl AsRef<Path>, out: &mut impl Write) -> Result<ExportReport, RecordError> {
    let cast = cast.as_ref();
    let mut reader = read(cast)?;
    let side_path = sidecar_path(cast);
    let mut sidecar: Option<Sidecar> = None;
    let mut report = ExportReport::default();
    let mut skip_next_output = false;
    let mut buf = vec![0u8; 64 * 1024];
    for event in reader.by_ref() {
        let event = event?;
        match event.kind {
            EventKind::Output => {
                if skip_next_output {
                    skip_next_output = false;
                    continue;
                }
                out.write_all(event.data.as_bytes())
                    .map_err(RecordError::Output)?;
                report.bytes += event.data.len() as u64;
            }
            EventKind::Marker => {
                if let Some((n, as_text)) = parse_raw_marker(&event.data) {
                    if sidecar.is_none() {
                        sidecar = Some(Sidecar::open(side_path.clone())?);
                    }
                    let got = match sidecar.as_mut() {
                        Some(s) => s.copy(Some(n), out, &mut buf)?,
                        None => 0,
                    };
                    report.bytes += got;
                    report.raw_bytes += got;
                    report.missing_raw_bytes += n - got;
                    skip_next_output = as_text;
                } else if let Some(expected) = parse_sidecar_marker(&event.data) {
                    let actual = file_sha256(&side_path)?;
                    if actual != expected {
                        return Err(RecordError::Sidecar {
                            path: side_path,
                            reason: format!(
                                "its SHA-256 is {actual}, the recording says {expected}"
                            ),
                        });
                    }
                    report.sidecar_verified = true;
                }
            }
            EventKind::Input | EventKind::Resize | EventKind::Other(_) => {}
        }
    }
    report.truncated = reader.truncated().cloned();
    // After a crash the sidecar may hold the open segment whose marker was
    // never written; every earlier segment has its marker, so those bytes
    // come last. A sidecar no marker mentioned is opened for the same reason.
    if sidecar.is_none() && !report.sidecar_verified && side_path.exists() {
        sidecar = Some(Sidecar::open(side_path)?);
    }
    if let Some(s) = sidecar.as_mut() {
        let tail = s.copy(None, out, &mut buf)?;
        report.bytes += tail;
        report.raw_bytes += tail;
        report.trailing_raw_bytes = tail;
    }
    out.flush().map_err(RecordError::Output)?;
    Ok(report)
}

/// How to play a recording.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ReplayOptions {
    /// 0.25 to 16; 2 plays twice as fast.
    pub speed: f64,
    /// Longest pause, in seconds of the recording, before speed applies
    /// (asciinema's `--idle-time-limit`); `None` keeps pauses as recorded.
    pub idle_cap: Option<f64>,
}

impl Default for ReplayOptions {
    fn default() -> Self {
        ReplayOptions {
            speed: 1.0,
            idle_cap: None,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct ReplayReport {
    /// Output events written.
    pub events: u64,
    /// Total time waited between them.
    pub waited: Duration,
    pub truncated: Option<Truncation>,
}

/// Plays the output of a cast to `out` (a terminal) in real time, scaled by
/// `speed`, with pauses capped. Binary output kept only in the sidecar is
/// not written: it would garble the terminal and was not text to begin
/// with. Blocking: run it on a blocking thread.
pub fn replay(
    cast: impl AsRef<Path>,
    out: &mut impl Write,
    options: ReplayOptions,
) -> Result<ReplayReport, RecordError> {
    replay_with(cast, out, options, std::thread::sleep)
}

/// [`replay`] with the waiting done by `sleep` (tests pass one that records
/// the pauses instead of sleeping).
pub fn replay_with(
    cast: impl AsRef<Path>,
    out: &mut impl Write,
    options: ReplayOptions,
    mut sleep: impl FnMut(Duration),
) -> Result<ReplayReport, RecordError> {
    let speed = options.speed;
    if !(0.25..=16.0).contains(&speed) {
        return Err(RecordError::Speed(speed));
    }
    let cap = options.idle_cap.filter(|c| c.is_finite() && *c > 0.0);
    let mut reader = read(cast)?;
    let mut report = ReplayReport {
        events: 0,
        waited: Duration::ZERO,
        truncated: None,
    };
    let mut previous = 0.0f64;
    for event in reader.by_ref() {
        let event = event?;
        if event.kind != EventKind::Output {
            continue;
        }
        let mut gap = (event.time - previous).max(0.0);
        if let Some(cap) = cap {
            gap = gap.min(cap);
        }
        previous = event.time.max(previous);
        let wait = Duration::try_from_secs_f64(gap / speed).unwrap_or(Duration::ZERO);
        if !wait.is_zero() {
            sleep(wait);
            report.waited += wait;
        }
        out.write_all(event.data.as_bytes())
            .map_err(RecordError::Output)?;
        out.flush().map_err(RecordError::Output)?;
        report.events += 1;
    }
    report.truncated = reader.truncated().cloned();
    Ok(report)
}

/// The output of a recording as the chunks it was recorded in, each with
/// its time in seconds: a desktop recording's screen updates, one chunk
/// per batch the relay sent (see `rdp`). Text output comes as its bytes.
pub struct Chunks {
    reader: super::reader::Reader,
    sidecar_path: PathBuf,
    sidecar: Option<Sidecar>,
    skip_next_output: bool,
    buf: Vec<u8>,
}

/// Opens `cast` for [`Chunks`].
pub fn chunks(cast: impl AsRef<Path>) -> Result<Chunks, RecordError> {
    let cast = cast.as_ref();
    Ok(Chunks {
        reader: read(cast)?,
        sidecar_path: sidecar_path(cast),
        sidecar: None,
        skip_next_output: false,
        buf: vec![0u8; 64 * 1024],
    })
}

impl Chunks {
    pub fn header(&self) -> &super::header::Header {
        self.reader.header()
    }
}

impl Iterator for Chunks {
    type Item = Result<(f64, Vec<u8>), RecordError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            let event = match self.reader.next()? {
                Ok(e) => e,
                Err(e) => return Some(Err(e)),
            };
            match event.kind {
                EventKind::Output if self.skip_next_output => self.skip_next_output = false,
                EventKind::Output => return Some(Ok((event.time, event.data.into_bytes()))),
                EventKind::Marker => {
                    let Some((n, as_text)) = parse_raw_marker(&event.data) else {
                        continue;
                    };
                    self.skip_next_output = as_text;
                    if self.sidecar.is_none() {
                        match Sidecar::open(self.sidecar_path.clone()) {
                            Ok(s) => self.sidecar = Some(s),
                            Err(e) => return Some(Err(e)),
                        }
                    }
                    let mut out = Vec::with_capacity(usize::try_from(n).unwrap_or(0).min(1 << 20));
                    if let Some(s) = self.sidecar.as_mut()
                        && let Err(e) = s.copy(Some(n), &mut out, &mut self.buf)
                    {
                        return Some(Err(e));
                    }
                    return Some(Ok((event.time, out)));
                }
                EventKind::Input | EventKind::Resize | EventKind::Other(_) => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::{parse_raw_marker, parse_sidecar_marker, sidecar_path};
    use crate::record::writer::raw_marker;

    #[test]
    fn markers_round_trip() {
        assert_eq!(
            parse_raw_marker(&raw_marker(65536, false)),
            Some((65536, false))
        );
        assert_eq!(parse_raw_marker(&raw_marker(3, true)), Some((3, true)));
        assert_eq!(parse_raw_marker("cmd: raw: 3 bytes"), None);
        assert_eq!(parse_raw_marker("raw: many bytes"), None);
        assert_eq!(
            parse_sidecar_marker("sidecar: a.raw.gz sha256=ab12 bytes=9"),
            Some("ab12")
        );
        assert_eq!(
            sidecar_path(Path::new("/r/2026/01/02/abc.cast")),
            Path::new("/r/2026/01/02/abc.raw.gz")
        );
    }
}
