//! Reading a stretch of a cast: complete event lines from a byte offset,
//! each with the offset after it, for the indexer (which cuts recordings
//! into blocks) and for a search (which reads the blocks the index names).
//! A line still being written (a live session's last, incomplete line) is
//! left for later, never half read.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Cursor, Read, Seek, SeekFrom};
use std::path::Path;
use std::time::Duration;

use crate::record::{Header, leading};

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
    /// The last output event's text, when a JSON parser decoded it.
    data: Vec<u8>,
}

/// An output event's text: as the cast holds it, or decoded.
#[derive(Debug, Clone, Copy)]
pub enum Text<'a> {
    /// The JSON string's contents, escapes and all; checked, so every
    /// escape in it is well formed and its bytes are UTF-8.
    Json(&'a [u8]),
    /// Decoded by a JSON parser (UTF-8).
    Bytes(&'a [u8]),
}

/// What [`Stretch::next`] found.
pub enum Step<'a> {
    /// An output event: when, and what the client received; the stretch
    /// is now at the offset after it.
    Output { at: Duration, text: Text<'a> },
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
            data: Vec::new(),
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
            data: Vec::new(),
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
    pub fn next(&mut self, end: Option<u64>) -> io::Result<Step<'_>> {
        let len = loop {
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
            let len = self.buf.trim_ascii_end().len();
            if len > 0 {
                break len;
            }
        };
        let line = self.buf.get(..len).unwrap_or_default();
        if let Some((time, json)) = output_event(line) {
            return Ok(Step::Output {
                at: moment(time),
                text: Text::Json(json),
            });
        }
        Ok(match serde_json::from_slice::<(f64, &str, String)>(line) {
            Ok((time, "o", data)) => {
                self.data = data.into_bytes();
                Step::Output {
                    at: moment(time),
                    text: Text::Bytes(&self.data),
                }
            }
            _ => Step::Other,
        })
    }
}

/// A time in the cast, into the session.
fn moment(time: f64) -> Duration {
    Duration::try_from_secs_f64(time).unwrap_or_default()
}

/// An output event as the recorder writes it, `[time,"o","text"]` with
/// nothing between the parts, checked without a JSON parser: its time, and
/// the string's contents as they are in `line`. `None` when the line is
/// anything else, or is laid out otherwise (spaces, say): a JSON parser
/// then decides. What this lets through, a JSON parser reads too, to the
/// same text.
fn output_event(line: &[u8]) -> Option<(f64, &[u8])> {
    let inner = line.strip_prefix(b"[")?;
    let comma = inner.iter().position(|&b| b == b',')?;
    let (time, rest) = inner.split_at(comma);
    let time: f64 = serde_json::from_slice(time).ok()?;
    const KIND: &[u8] = b",\"o\",\"";
    let json = rest.strip_prefix(KIND)?.strip_suffix(b"\"]")?;
    let mut left = json;
    while !left.is_empty() {
        let n = leading(left, |b| b >= 0x20 && b != b'"' && b != b'\\');
        left = left.get(n..).unwrap_or_default();
        if left.is_empty() {
            break;
        }
        let taken = match left {
            // The escapes of a terminal's line ends, looked at first.
            [b'\\', b'r' | b'n', ..] => 2,
            _ => json_unit(left)?.1,
        };
        left = left.get(taken..).unwrap_or_default();
    }
    std::str::from_utf8(json).ok()?;
    Some((time, json))
}

/// Up to four bytes: what one unit of a JSON string stands for.
#[derive(Debug, Clone, Copy)]
pub struct Unit {
    bytes: [u8; 4],
    len: usize,
}

impl Unit {
    /// No bytes.
    pub const NONE: Unit = Unit {
        bytes: [0; 4],
        len: 0,
    };

    fn byte(b: u8) -> Unit {
        Unit {
            bytes: [b, 0, 0, 0],
            len: 1,
        }
    }

    fn char(c: char) -> Unit {
        let mut bytes = [0; 4];
        let len = c.encode_utf8(&mut bytes).len();
        Unit { bytes, len }
    }

    pub fn bytes(&self) -> &[u8] {
        self.bytes.get(..self.len).unwrap_or_default()
    }
}

/// The unit of a JSON string at the start of `json` that is not a run of
/// plain bytes: an escape, decoded, or a byte left as it is (DEL), and
/// how many bytes of `json` it took. `None` for what a JSON string cannot
/// hold: a quote or control byte, an unknown escape, half a surrogate
/// pair.
pub fn json_unit(json: &[u8]) -> Option<(Unit, usize)> {
    match json {
        [b'\\', b'u', rest @ ..] => {
            let code = hex4(rest)?;
            if (0xd800..0xdc00).contains(&code) {
                // A pair: the low half follows as an escape of its own.
                let [b'\\', b'u', low @ ..] = rest.get(4..)? else {
                    return None;
                };
                let low = hex4(low).filter(|low| (0xdc00..0xe000).contains(low))?;
                let c = char::from_u32(0x10000 + ((code - 0xd800) << 10) + (low - 0xdc00))?;
                return Some((Unit::char(c), 12));
            }
            Some((Unit::char(char::from_u32(code)?), 6))
        }
        [b'\\', escape, ..] => {
            let b = match escape {
                b'"' => b'"',
                b'\\' => b'\\',
                b'/' => b'/',
                b'b' => 0x08,
                b'f' => 0x0c,
                b'n' => b'\n',
                b'r' => b'\r',
                b't' => b'\t',
                _ => return None,
            };
            Some((Unit::byte(b), 2))
        }
        [b, ..] if *b >= 0x20 && *b != b'"' && *b != b'\\' => Some((Unit::byte(*b), 1)),
        _ => None,
    }
}

/// Four hex digits.
fn hex4(bytes: &[u8]) -> Option<u32> {
    bytes
        .get(..4)?
        .iter()
        .try_fold(0, |code, &b| Some(code << 4 | char::from(b).to_digit(16)?))
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
        let Step::Output { at, text } = s.next(None).unwrap() else {
            panic!("an output event")
        };
        assert_eq!(
            (at, decoded(text)),
            (Duration::from_millis(500), b"hello\r\n".to_vec())
        );
        assert!(matches!(s.next(None).unwrap(), Step::Other));
        let complete = s.pos();
        assert!(matches!(s.next(None).unwrap(), Step::End));
        assert_eq!(s.pos(), complete, "the incomplete line is left for later");
        f.write_all(b"ld\"]\n").unwrap();
        assert!(
            matches!(s.next(None).unwrap(), Step::Output { text, .. } if decoded(text) == b"world")
        );
        let mut again = Stretch::open(&path, first).unwrap();
        assert!(matches!(
            again.next(Some(complete)).unwrap(),
            Step::Output { .. }
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
            matches!(piece.next(Some(complete)).unwrap(), Step::Output { text, .. } if decoded(text) == b"hello\r\n")
        );
        assert!(matches!(piece.next(Some(complete)).unwrap(), Step::Other));
        assert!(matches!(piece.next(Some(complete)).unwrap(), Step::End));
        assert_eq!(piece.pos(), complete);
        assert!(piece.sync_from(first - 1).is_err(), "before the piece");
    }

    fn decoded(text: Text) -> Vec<u8> {
        match text {
            Text::Bytes(bytes) => bytes.to_vec(),
            Text::Json(mut json) => {
                let mut out = Vec::new();
                while !json.is_empty() {
                    let (unit, taken) = json_unit(json).expect("a checked string");
                    out.extend_from_slice(unit.bytes());
                    json = &json[taken..];
                }
                out
            }
        }
    }

    /// Event lines checked without the JSON parser decode to what it
    /// decodes them to, and lines it must read (or refuse) are left to it.
    #[test]
    fn output_events_read_as_serde_json_reads_them() {
        let texts = [
            "plain",
            "",
            "\r\n\t\u{1b}[0m\u{0}\u{7f}\\\"/",
            "é€😀 mixed\u{8}\u{c}",
        ];
        for text in texts {
            let line = format!("[12.345678,\"o\",{}]", serde_json::to_string(text).unwrap());
            let (time, json) = output_event(line.as_bytes()).expect(&line);
            assert_eq!(time, 12.345678, "{line}");
            assert_eq!(decoded(Text::Json(json)), text.as_bytes(), "{line}");
        }
        let (_, json) = output_event(br#"[1.5,"o","\/\u00e9\ud83d\ude00\u001B"]"#).unwrap();
        assert_eq!(
            decoded(Text::Json(json)),
            "/é😀\u{1b}".as_bytes(),
            "escapes serde_json writes only when asked, and a pair"
        );
        for (line, serde) in [
            (r#"[1.5, "o", "spaced"]"#, Some("spaced")),
            (r#"[1.5,"i","typed"]"#, None),
            (r#"[1.5,"o","\u+041"]"#, None),
            (r#"[1.5,"o","\ud800"]"#, None),
            (r#"[1.5,"o","\udc00\ud800"]"#, None),
            (r#"[1.5,"o","\x"]"#, None),
            (r#"[1.5,"o","a\"]"#, None),
            (r#"[1.5,"o","a"b"]"#, None),
            (r#"[1.5,"o","open"#, None),
            (r#"[1.5,"o","a"] x"#, None),
            ("[1.5,\"o\",\"raw\ttab\"]", None),
        ] {
            assert_eq!(
                output_event(line.as_bytes()),
                None,
                "{line} is left to serde_json"
            );
            let parsed = serde_json::from_slice::<(f64, &str, String)>(line.as_bytes())
                .ok()
                .filter(|(_, kind, _)| *kind == "o")
                .map(|(_, _, data)| data);
            assert_eq!(parsed.as_deref(), serde, "{line}");
        }
        assert_eq!(
            output_event(b"[1.5,\"o\",\"\xff\"]"),
            None,
            "invalid UTF-8 is left to serde_json, which refuses it"
        );
        // Through a stretch, a line only serde_json reads is an output event.
        let spaced = br#"[2.5, "o", "ok"]"#;
        let mut s = Stretch::of_piece([spaced.as_slice(), b"\n"].concat(), 0);
        assert!(matches!(
            s.next(None).unwrap(),
            Step::Output { at, text } if at == Duration::from_millis(2500) && decoded(text) == b"ok"
        ));
    }
}
