//! Reading a stretch of a cast: complete event lines from a byte offset,
//! each with the offset after it, for the indexer (which cuts recordings
//! into blocks) and for a search (which reads the blocks the index names).
//! A line still being written (a live session's last, incomplete line) is
//! left for later, never half read.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Cursor, Read, Seek, SeekFrom};
use std::path::Path;
use std::time::Duration;

use crate::record::Header;

/// An output event: when, and what the client received.
#[derive(Debug)]
pub struct Output {
    pub at: Duration,
    pub data: String,
}

/// Where a stretch reads from: a cast file, or a piece of one fetched from
/// the object store.
trait Input: BufRead + Seek + Send {}

impl<T: BufRead + Seek + Send> Input for T {}

/// Bytes `base..` of a cast, read with the cast's own offsets.
struct Piece {
    base: u64,
    bytes: Cursor<Vec<u8>>,
}

impl Read for Piece {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.bytes.read(buf)
    }
}

impl BufRead for Piece {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        self.bytes.fill_buf()
    }

    fn consume(&mut self, amount: usize) {
        self.bytes.consume(amount);
    }
}

impl Seek for Piece {
    fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
        let SeekFrom::Start(at) = to else {
            return Err(io::Error::other("a piece of a cast is read from offsets"));
        };
        let inside = at
            .checked_sub(self.base)
            .ok_or_else(|| io::Error::other("an offset before the piece of the cast"))?;
        self.bytes.seek(SeekFrom::Start(inside))?;
        Ok(at)
    }
}

/// Complete lines of a cast from an offset on.
pub struct Stretch {
    input: Box<dyn Input>,
    pos: u64,
    buf: Vec<u8>,
}

/// What [`Stretch::next`] found.
pub enum Step {
    /// An output event; the stretch is now at the offset after it.
    Output(Output),
    /// Any other complete line (input, resize, marker, a line that is no
    /// event): passed over.
    Other,
    /// No complete line left.
    End,
}

impl Stretch {
    pub fn open(path: &Path, from: u64) -> io::Result<Stretch> {
        let mut file = File::open(path)?;
        file.seek(SeekFrom::Start(from))?;
        Ok(Stretch {
            input: Box::new(BufReader::with_capacity(256 * 1024, file)),
            pos: from,
            buf: Vec::new(),
        })
    }

    /// The stretch of a cast whose bytes from offset `from` on are `bytes`
    /// (a range fetched from the object store).
    pub fn of_piece(bytes: Vec<u8>, from: u64) -> Stretch {
        Stretch {
            input: Box::new(Piece {
                base: from,
                bytes: Cursor::new(bytes),
            }),
            pos: from,
            buf: Vec::new(),
        }
    }

    /// The offset of the next line.
    pub fn pos(&self) -> u64 {
        self.pos
    }

    /// Moves to the start of the first line at or after `at` (so a stretch
    /// can begin anywhere, e.g. the tail of a long recording).
    pub fn sync_from(&mut self, at: u64) -> io::Result<()> {
        if at == 0 {
            return self.seek(0);
        }
        self.seek(at - 1)?;
        self.buf.clear();
        let n = self.input.read_until(b'\n', &mut self.buf)?;
        if self.buf.ends_with(b"\n") {
            self.pos += n as u64;
        }
        Ok(())
    }

    fn seek(&mut self, to: u64) -> io::Result<()> {
        self.input.seek(SeekFrom::Start(to))?;
        self.pos = to;
        Ok(())
    }

    /// The header, when the stretch is at the start of the file; the
    /// stretch then stands after it. `None`: no complete header line yet.
    pub fn header(&mut self) -> io::Result<Option<Header>> {
        self.buf.clear();
        let n = self.input.read_until(b'\n', &mut self.buf)?;
        if !self.buf.ends_with(b"\n") {
            return Ok(None);
        }
        self.pos += n as u64;
        Ok(serde_json::from_slice(&self.buf).ok())
    }

    /// The next complete line, without going past `end`.
    pub fn next(&mut self, end: Option<u64>) -> io::Result<Step> {
        loop {
            if end.is_some_and(|end| self.pos >= end) {
                return Ok(Step::End);
            }
            self.buf.clear();
            let n = self.input.read_until(b'\n', &mut self.buf)?;
            if n == 0 || !self.buf.ends_with(b"\n") {
                // Not complete yet: read again from here next time.
                let at = self.pos;
                self.seek(at)?;
                return Ok(Step::End);
            }
            self.pos += n as u64;
            let line = self.buf.trim_ascii_end();
            if line.is_empty() {
                continue;
            }
            return Ok(match serde_json::from_slice::<(f64, &str, String)>(line) {
                Ok((time, "o", data)) => Step::Output(Output {
                    at: Duration::try_from_secs_f64(time).unwrap_or_default(),
                    data,
                }),
                _ => Step::Other,
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn only_complete_lines_are_read_and_a_stretch_ends_where_asked() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.cast");
        let mut f = File::create(&path).unwrap();
        f.write_all(b"{\"version\":2,\"width\":80,\"height\":24,\"env\":{\"TERM\":\"xterm\"}}\n[0.5,\"o\",\"hello\\r\\n\"]\n[0.6,\"m\",\"cmd: x\"]\n[0.7,\"o\",\"wor")
            .unwrap();
        let mut s = Stretch::open(&path, 0).unwrap();
        let header = s.header().unwrap().unwrap();
        assert_eq!(header.env.term.as_deref(), Some("xterm"));
        let first = s.pos();
        let Step::Output(o) = s.next(None).unwrap() else {
            panic!("an output event")
        };
        assert_eq!(
            (o.at, o.data.as_str()),
            (Duration::from_millis(500), "hello\r\n")
        );
        assert!(matches!(s.next(None).unwrap(), Step::Other));
        let complete = s.pos();
        assert!(matches!(s.next(None).unwrap(), Step::End));
        assert_eq!(s.pos(), complete, "the incomplete line is left for later");
        f.write_all(b"ld\"]\n").unwrap();
        assert!(matches!(s.next(None).unwrap(), Step::Output(o) if o.data == "world"));
        let mut again = Stretch::open(&path, first).unwrap();
        assert!(matches!(
            again.next(Some(complete)).unwrap(),
            Step::Output(_)
        ));
        assert!(matches!(again.next(Some(complete)).unwrap(), Step::Other));
        assert!(matches!(again.next(Some(complete)).unwrap(), Step::End));
        let mut tail = Stretch::open(&path, 0).unwrap();
        tail.sync_from(first + 3).unwrap();
        assert!(
            matches!(tail.next(None).unwrap(), Step::Other),
            "synced to the marker line"
        );
        // A piece of the file read as the file is, from the same offsets.
        let whole = std::fs::read(&path).unwrap();
        let mut piece = Stretch::of_piece(whole[first as usize..].to_vec(), first);
        assert!(
            matches!(piece.next(Some(complete)).unwrap(), Step::Output(o) if o.data == "hello\r\n")
        );
        assert!(matches!(piece.next(Some(complete)).unwrap(), Step::Other));
        assert!(matches!(piece.next(Some(complete)).unwrap(), Step::End));
        assert_eq!(piece.pos(), complete);
        assert!(piece.sync_from(first - 1).is_err(), "before the piece");
    }
}
