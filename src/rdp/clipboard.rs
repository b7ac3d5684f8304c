//! What crosses a desktop's clipboard, for the audit: every clipboard
//! data response (text, pictures, file lists) and every file copied
//! through it, with its direction, size and SHA-256, as the relay passes
//! their chunks on. Hashing is streamed: nothing of the data is kept.
//!
//! Clipboard messages (MS-RDPECLIP) ride a static virtual channel in
//! chunks, each with a CHANNEL_PDU_HEADER (length, flags: first, last);
//! the first chunk starts with the clipboard header (type, flags, data
//! length). A file comes as file-contents responses to range requests,
//! all with the stream id the request gave it: consecutive ones of one
//! stream make one row. The relay asked for no bulk compression, so the
//! chunks are plain.

use sha2::{Digest, Sha256};

/// Clipboard message types and flags that matter here.
const CB_FORMAT_DATA_RESPONSE: u16 = 0x0005;
const CB_FILECONTENTS_RESPONSE: u16 = 0x0009;
const CB_RESPONSE_OK: u16 = 0x0001;
const CHANNEL_FLAG_FIRST: u32 = 0x01;
const CHANNEL_FLAG_LAST: u32 = 0x02;

/// One thing that crossed the clipboard.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Moved {
    /// The target's clipboard to the person (a copy); else a paste.
    pub copy: bool,
    /// File contents (a file pasted or copied), not clipboard data.
    pub file: bool,
    pub size: u64,
    pub sha256: String,
    /// The sender said it failed (the bytes, if any, still crossed).
    pub failed: bool,
}

impl Moved {
    /// The transfer row's operation.
    pub fn operation(&self) -> &'static str {
        match (self.file, self.copy) {
            (false, true) => "clipboard-copy",
            (false, false) => "clipboard-paste",
            (true, true) => "clipboard-file-copy",
            (true, false) => "clipboard-file-paste",
        }
    }

    /// The transfer row's path: what it was, as far as the wire says.
    pub fn what(&self) -> &'static str {
        if self.file {
            "a file, through the clipboard"
        } else {
            "clipboard data"
        }
    }

    /// The recording's marker, shown in the replay's list.
    pub fn marker(&self) -> String {
        let way = if self.copy {
            "desktop to person"
        } else {
            "person to desktop"
        };
        let failed = if self.failed { ", failed" } else { "" };
        format!("{}: {} bytes, {way}{failed}", self.operation(), self.size)
    }
}

/// A message being hashed.
struct Moving {
    file: bool,
    /// The file-contents stream it belongs to.
    stream: Option<u32>,
    failed: bool,
    size: u64,
    hasher: Sha256,
    /// Header bytes still to come before the data (a header split across
    /// chunks; real clients send 1600-byte chunks, where it never is).
    skip: usize,
}

impl Moving {
    fn feed(&mut self, bytes: &[u8]) {
        let skipped = self.skip.min(bytes.len());
        self.skip -= skipped;
        let data = bytes.get(skipped..).unwrap_or_default();
        self.size += data.len() as u64;
        self.hasher.update(data);
    }

    fn done(self, copy: bool) -> Moved {
        Moved {
            copy,
            file: self.file,
            size: self.size,
            sha256: hex::encode(self.hasher.finalize()),
            failed: self.failed,
        }
    }
}

/// Where the chunks of the message arriving go.
enum Current {
    /// Clipboard data, hashed on its own.
    Data(Moving),
    /// File contents: into the file of [`Tally::file`].
    File,
}

/// The clipboard traffic of one direction.
#[derive(Default)]
pub(super) struct Tally {
    current: Option<Current>,
    /// The file whose ranges are arriving, one response after another:
    /// its SHA-256 is over the ranges in the order they came (a client
    /// that reads a file in order, as mstsc and FreeRDP do, gives the
    /// file's own).
    file: Option<Moving>,
    done: Vec<Moved>,
}

impl std::fmt::Debug for Tally {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tally")
            .field("file", &self.file.as_ref().map(|m| m.size))
            .field("done", &self.done.len())
            .finish_non_exhaustive()
    }
}

fn word(data: &[u8], at: usize) -> Option<u16> {
    data.get(at..at + 2)
        .map(|b| u16::from_le_bytes([b[0], b[1]]))
}

fn dword(data: &[u8], at: usize) -> Option<u32> {
    data.get(at..at + 4)
        .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
}

impl Tally {
    /// A chunk of the clipboard channel that the filter let through this
    /// way (`copy`: from the target): the channel header, then its part of
    /// the message.
    pub(super) fn chunk(&mut self, data: &[u8], copy: bool) {
        let Some(flags) = dword(data, 4) else {
            return;
        };
        let payload = data.get(8..).unwrap_or_default();
        if flags & CHANNEL_FLAG_FIRST != 0 {
            self.current = None;
            let kind = word(payload, 0);
            let ok = word(payload, 2).is_some_and(|f| f & CB_RESPONSE_OK != 0);
            match kind {
                Some(CB_FORMAT_DATA_RESPONSE) => {
                    self.end_file(copy);
                    // The clipboard header: type, flags, data length.
                    let mut moving = new_moving(false, None, ok);
                    moving.skip = 8;
                    moving.feed(payload);
                    self.current = Some(Current::Data(moving));
                }
                Some(CB_FILECONTENTS_RESPONSE) => {
                    let stream = dword(payload, 8);
                    if self.file.as_ref().is_some_and(|f| f.stream != stream) {
                        self.end_file(copy);
                    }
                    let file = self
                        .file
                        .get_or_insert_with(|| new_moving(true, stream, ok));
                    file.failed |= !ok;
                    // The header, then the stream id.
                    file.skip = 12;
                    file.feed(payload);
                    self.current = Some(Current::File);
                }
                _ => {}
            }
        } else {
            match self.current.as_mut() {
                Some(Current::Data(moving)) => moving.feed(payload),
                Some(Current::File) => {
                    if let Some(file) = self.file.as_mut() {
                        file.feed(payload);
                    }
                }
                None => {}
            }
        }
        if flags & CHANNEL_FLAG_LAST != 0
            && let Some(Current::Data(moving)) = self.current.take()
        {
            self.done.push(moving.done(copy));
        }
    }

    fn end_file(&mut self, copy: bool) {
        if let Some(file) = self.file.take() {
            self.done.push(file.done(copy));
        }
    }

    /// What crossed and is complete; with `end`, the file still arriving
    /// too (the session is over).
    pub(super) fn take(&mut self, copy: bool, end: bool) -> Vec<Moved> {
        if end {
            self.end_file(copy);
        }
        std::mem::take(&mut self.done)
    }
}

fn new_moving(file: bool, stream: Option<u32>, ok: bool) -> Moving {
    Moving {
        file,
        stream,
        failed: !ok,
        size: 0,
        hasher: Sha256::new(),
        skip: 0,
    }
}

#[cfg(test)]
mod tests {
    use sha2::{Digest, Sha256};

    use super::*;

    /// A clipboard message split into channel chunks of at most `chunk`
    /// bytes.
    fn chunks(kind: u16, ok: bool, body: &[u8], chunk: usize) -> Vec<Vec<u8>> {
        let mut message = Vec::new();
        message.extend_from_slice(&kind.to_le_bytes());
        message.extend_from_slice(&u16::from(ok).to_le_bytes());
        message.extend_from_slice(&(body.len() as u32).to_le_bytes());
        message.extend_from_slice(body);
        let parts: Vec<&[u8]> = message.chunks(chunk).collect();
        parts
            .iter()
            .enumerate()
            .map(|(i, part)| {
                let mut flags = 0;
                if i == 0 {
                    flags |= CHANNEL_FLAG_FIRST;
                }
                if i + 1 == parts.len() {
                    flags |= CHANNEL_FLAG_LAST;
                }
                let mut out = (message.len() as u32).to_le_bytes().to_vec();
                out.extend_from_slice(&flags.to_le_bytes());
                out.extend_from_slice(part);
                out
            })
            .collect()
    }

    fn range(stream: u32, bytes: &[u8]) -> Vec<Vec<u8>> {
        let mut body = stream.to_le_bytes().to_vec();
        body.extend_from_slice(bytes);
        chunks(CB_FILECONTENTS_RESPONSE, true, &body, 1600)
    }

    #[test]
    fn data_and_files_are_counted_and_hashed_across_chunks() {
        let mut tally = Tally::default();
        let text: Vec<u8> = "secret plans\0"
            .encode_utf16()
            .flat_map(u16::to_le_bytes)
            .collect();
        for c in chunks(CB_FORMAT_DATA_RESPONSE, true, &text, 7) {
            tally.chunk(&c, true);
        }
        // Not yet a file: a format list passing does not count.
        for c in chunks(0x0002, false, b"formats", 1600) {
            tally.chunk(&c, true);
        }
        let moved = tally.take(true, false);
        assert_eq!(moved.len(), 1, "{moved:?}");
        assert_eq!(moved[0].operation(), "clipboard-copy");
        assert_eq!(moved[0].size, text.len() as u64);
        assert_eq!(moved[0].sha256, hex::encode(Sha256::digest(&text)));
        assert!(!moved[0].failed);
        assert!(moved[0].marker().contains("desktop to person"));

        // A file in three ranges of stream 7, then one of stream 8.
        let file: Vec<u8> = (0..10_000u32).map(|i| (i % 251) as u8).collect();
        for part in file.chunks(4096) {
            for c in range(7, part) {
                tally.chunk(&c, false);
            }
        }
        assert!(tally.take(false, false).is_empty(), "still arriving");
        for c in range(8, b"other") {
            tally.chunk(&c, false);
        }
        let moved = tally.take(false, true);
        assert_eq!(moved.len(), 2, "{moved:?}");
        assert_eq!(moved[0].operation(), "clipboard-file-paste");
        assert_eq!(moved[0].size, 10_000);
        assert_eq!(
            moved[0].sha256,
            hex::encode(Sha256::digest(&file)),
            "the file's own"
        );
        assert_eq!(moved[1].size, 5);
        // A failed response says so.
        for c in chunks(CB_FORMAT_DATA_RESPONSE, false, b"", 1600) {
            tally.chunk(&c, true);
        }
        assert!(tally.take(true, true)[0].failed);
    }

    #[test]
    fn truncated_chunks_are_ignored() {
        let mut tally = Tally::default();
        for bad in [&[][..], &[1, 2, 3], &[0, 0, 0, 0, 3, 0, 0, 0, 5]] {
            tally.chunk(bad, true);
        }
        assert!(tally.take(true, true).is_empty());
    }
}
