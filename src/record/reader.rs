//! Reading a cast back, line by line, tolerant of the partial last line a
//! crash leaves behind.

use std::fs::File;
use std::io::{self, BufRead, BufReader};
use std::path::{Path, PathBuf};

use super::RecordError;
use super::header::Header;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EventKind {
    /// `"o"`: output to the client.
    Output,
    /// `"i"`: keystrokes.
    Input,
    /// `"r"`: window change, data `COLSxROWS`.
    Resize,
    /// `"m"`: a marker.
    Marker,
    /// Any other code (asciicast allows extensions).
    Other(String),
}

/// One event line.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    /// Seconds since the start of the recording.
    pub time: f64,
    pub kind: EventKind,
    pub data: String,
}

impl Event {
    /// `(cols, rows)` of a resize event.
    pub fn size(&self) -> Option<(u16, u16)> {
        if self.kind != EventKind::Resize {
            return None;
        }
        let (cols, rows) = self.data.split_once('x')?;
        Some((cols.parse().ok()?, rows.parse().ok()?))
    }
}

/// A last line cut short, as a crash leaves it: the events before it are
/// whole and have been returned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Truncation {
    /// 1-based line number in the file (the header is line 1).
    pub line: u64,
    /// Bytes of the partial line that were ignored.
    pub bytes: usize,
}

/// The events of a cast, in file order. A damaged complete line is an `Err`
/// item (iteration can go on); a partial last line ends the iteration and is
/// reported by [`Reader::truncated`].
#[derive(Debug)]
pub struct Reader {
    path: PathBuf,
    input: BufReader<File>,
    header: Header,
    line: u64,
    truncated: Option<Truncation>,
    done: bool,
    buf: Vec<u8>,
}

/// Opens a cast and reads its header.
pub fn read(path: impl AsRef<Path>) -> Result<Reader, RecordError> {
    let path = path.as_ref().to_path_buf();
    let file = File::open(&path).map_err(|source| RecordError::Read {
        path: path.clone(),
        source,
    })?;
    let mut input = BufReader::with_capacity(256 * 1024, file);
    let mut buf = Vec::new();
    input
        .read_until(b'\n', &mut buf)
        .map_err(|source| RecordError::Read {
            path: path.clone(),
            source,
        })?;
    let format = |reason: String| RecordError::Format {
        path: path.clone(),
        line: 1,
        reason,
    };
    if !buf.ends_with(b"\n") {
        return Err(format("the header line is incomplete".into()));
    }
    let header: Header = serde_json::from_slice(&buf)
        .map_err(|e| format(format!("not an asciicast header: {e}")))?;
    if header.version != 2 {
        return Err(format(format!(
            "asciicast version {} (only version 2 is read)",
            header.version
        )));
    }
    Ok(Reader {
        path,
        input,
        header,
        line: 1,
        truncated: None,
        done: false,
        buf,
    })
}

impl Reader {
    pub fn header(&self) -> &Header {
        &self.header
    }

    /// Set once iteration met a partial last line.
    pub fn truncated(&self) -> Option<&Truncation> {
        self.truncated.as_ref()
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Iterator for Reader {
    type Item = Result<Event, RecordError>;

    fn next(&mut self) -> Option<Self::Item> {
        while !self.done {
            self.buf.clear();
            let n = match self.input.read_until(b'\n', &mut self.buf) {
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(source) => {
                    self.done = true;
                    return Some(Err(RecordError::Read {
                        path: self.path.clone(),
                        source,
                    }));
                }
            };
            if n == 0 {
                self.done = true;
                return None;
            }
            self.line += 1;
            let complete = self.buf.ends_with(b"\n");
            let line = self.buf.trim_ascii_end();
            if line.is_empty() {
                continue;
            }
            match serde_json::from_slice::<(f64, String, String)>(line) {
                Ok((time, code, data)) => {
                    let kind = match code.as_str() {
                        "o" => EventKind::Output,
                        "i" => EventKind::Input,
                        "r" => EventKind::Resize,
                        "m" => EventKind::Marker,
                        _ => EventKind::Other(code),
                    };
                    return Some(Ok(Event { time, kind, data }));
                }
                // Only the last line can lack its newline: the writer
                // appends whole lines, so this is where a crash cut it.
                Err(_) if !complete => {
                    self.done = true;
                    self.truncated = Some(Truncation {
                        line: self.line,
                        bytes: n,
                    });
                    return None;
                }
                Err(e) => {
                    return Some(Err(RecordError::Format {
                        path: self.path.clone(),
                        line: self.line,
                        reason: format!("not an event: {e}"),
                    }));
                }
            }
        }
        None
    }
}
