//! The raw sidecar `<session>.raw.gz`: output bytes a cast cannot hold,
//! byte-exact, as a gzip stream, and the hashing file both recording files
//! are written through.
//!
//! Why several gzip members: compressing costs more than the relay can
//! afford on data that does not compress (random, encrypted, already
//! compressed: deflate runs near 100 MB/s there, even miniz's level 0, and
//! saves nothing). Each binary chunk's byte entropy is estimated from a
//! sample; incompressible stretches go into a member of stored deflate
//! blocks written here (a 5-byte block header, the bytes, a CRC: copy
//! speed), the rest into a member deflated at level 1. A new member starts
//! only when the kind changes. `zcat` and `MultiGzDecoder` read the
//! concatenation as one stream.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use flate2::write::GzEncoder;
use flate2::{Compression, Crc};
use sha2::{Digest, Sha256};

/// A file whose SHA-256 and size are computed as it is written, so the
/// digest at close costs no second read.
pub(crate) struct HashingFile {
    pub(crate) file: File,
    hasher: Sha256,
    bytes: u64,
}

impl HashingFile {
    pub(crate) fn new(file: File) -> Self {
        HashingFile {
            file,
            hasher: Sha256::new(),
            bytes: 0,
        }
    }

    pub(crate) fn bytes(&self) -> u64 {
        self.bytes
    }

    /// The hex SHA-256 of everything written.
    pub(crate) fn digest(self) -> String {
        hex::encode(self.hasher.finalize())
    }
}

impl Write for HashingFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.file.write(buf)?;
        let written = buf.get(..n).unwrap_or(buf);
        self.hasher.update(written);
        self.bytes += written.len() as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

/// Order-0 entropy above this (bits per byte, of 8) means deflate would
/// not gain enough to pay for itself. Random data samples at about 7.95,
/// gzip and JPEG near 7.9; text is 4-5, executables 5-6.5.
const STORE_ABOVE_BITS: f64 = 7.5;
/// Chunks shorter than this keep the current member's kind.
const SAMPLE_MIN: usize = 1024;

/// Whether a chunk is not worth compressing, from the byte histogram of up
/// to 4096 evenly spaced samples; `None` for chunks too short to tell.
fn incompressible(bytes: &[u8]) -> Option<bool> {
    if bytes.len() < SAMPLE_MIN {
        return None;
    }
    let step = (bytes.len() / 4096).max(1);
    let mut counts = [0u32; 256];
    let mut n = 0u32;
    for &b in bytes.iter().step_by(step) {
        // A u8 always indexes a 256-entry table.
        counts[usize::from(b)] += 1;
        n += 1;
    }
    let n = f64::from(n);
    let bits: f64 = counts
        .iter()
        .filter(|&&c| c > 0)
        .map(|&c| {
            let p = f64::from(c) / n;
            -p * p.log2()
        })
        .sum();
    Some(bits > STORE_ABOVE_BITS)
}

/// The gzip header flate2 writes too: deflate, no flags, no mtime, OS unknown.
const GZIP_HEADER: [u8; 10] = [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff];
/// A stored deflate block holds at most this many bytes (RFC 1951 §3.2.4).
const STORED_MAX: usize = 0xffff;

/// The gzip member being written.
enum Member {
    Deflate(Box<GzEncoder<HashingFile>>),
    /// Stored blocks, written directly; each is complete when written, so
    /// there is nothing to flush.
    Stored {
        file: HashingFile,
        crc: Crc,
    },
}

impl Member {
    fn start(mut file: HashingFile, stored: bool) -> io::Result<Self> {
        if stored {
            file.write_all(&GZIP_HEADER)?;
            Ok(Member::Stored {
                file,
                crc: Crc::new(),
            })
        } else {
            Ok(Member::Deflate(Box::new(GzEncoder::new(
                file,
                Compression::fast(),
            ))))
        }
    }

    fn write(&mut self, bytes: &[u8]) -> io::Result<()> {
        match self {
            Member::Deflate(enc) => enc.write_all(bytes),
            Member::Stored { file, crc } => {
                for block in bytes.chunks(STORED_MAX) {
                    // chunks() never yields more than STORED_MAX bytes.
                    let len = u16::try_from(block.len()).unwrap_or(u16::MAX);
                    let mut header = [0u8; 5];
                    // BFINAL = 0, BTYPE = 00 (stored), padded to the byte.
                    header[1..3].copy_from_slice(&len.to_le_bytes());
                    header[3..5].copy_from_slice(&(!len).to_le_bytes());
                    file.write_all(&header)?;
                    file.write_all(block)?;
                    crc.update(block);
                }
                Ok(())
            }
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Member::Deflate(enc) => enc.flush(),
            Member::Stored { .. } => Ok(()),
        }
    }

    /// Writes the member's end (final block, CRC, size) and gives the file back.
    fn finish(self) -> io::Result<HashingFile> {
        match self {
            Member::Deflate(enc) => enc.finish(),
            Member::Stored { mut file, crc } => {
                // An empty final stored block: BFINAL = 1, LEN 0, NLEN 0xffff.
                file.write_all(&[1, 0, 0, 0xff, 0xff])?;
                file.write_all(&crc.sum().to_le_bytes())?;
                file.write_all(&crc.amount().to_le_bytes())?;
                Ok(file)
            }
        }
    }
}

/// Creates a recording file (the cast or the sidecar) for writing.
pub(crate) fn create_file(path: &Path) -> io::Result<File> {
    // create_new: a recording is never appended to or overwritten.
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
}

pub(crate) struct Sidecar {
    /// `None` only after a failed member switch; the writer stops then.
    member: Option<Member>,
    stored: bool,
    raw: u64,
    /// Bytes in the deflater since the last sync flush.
    dirty: bool,
}

fn closed() -> io::Error {
    io::Error::other("the sidecar was closed by an earlier error")
}

impl Sidecar {
    pub(crate) fn create(path: &Path) -> io::Result<Self> {
        let file = create_file(path)?;
        Ok(Sidecar {
            member: Some(Member::start(HashingFile::new(file), false)?),
            stored: false,
            raw: 0,
            dirty: false,
        })
    }

    pub(crate) fn raw_bytes(&self) -> u64 {
        self.raw
    }

    pub(crate) fn dirty(&self) -> bool {
        self.dirty
    }

    pub(crate) fn write(&mut self, bytes: &[u8]) -> io::Result<()> {
        if let Some(stored) = incompressible(bytes)
            && stored != self.stored
        {
            let file = self.member.take().ok_or_else(closed)?.finish()?;
            self.member = Some(Member::start(file, stored)?);
            self.stored = stored;
            self.dirty = false;
        }
        self.member.as_mut().ok_or_else(closed)?.write(bytes)?;
        self.raw += bytes.len() as u64;
        self.dirty = !self.stored;
        Ok(())
    }

    /// Ends the current member and starts a new one of the same kind, so
    /// a reader can start decoding here (a replay's seek point). Returns
    /// the file offset where the new member begins.
    pub(crate) fn restart(&mut self) -> io::Result<u64> {
        let file = self.member.take().ok_or_else(closed)?.finish()?;
        let offset = file.bytes();
        self.member = Some(Member::start(file, self.stored)?);
        self.dirty = false;
        Ok(offset)
    }

    /// A gzip sync flush: every byte written so far decodes from the file.
    pub(crate) fn flush(&mut self) -> io::Result<()> {
        if self.dirty {
            self.member.as_mut().ok_or_else(closed)?.flush()?;
            self.dirty = false;
        }
        Ok(())
    }

    /// Ends the last member, fsyncs, and returns the file's digest and size.
    pub(crate) fn finish(self) -> io::Result<(String, u64)> {
        let inner = self.member.ok_or_else(closed)?.finish()?;
        inner.file.sync_all()?;
        let bytes = inner.bytes();
        Ok((inner.digest(), bytes))
    }
}

#[cfg(test)]
mod tests {
    use std::io::Read;

    use flate2::read::MultiGzDecoder;

    use super::{Sidecar, incompressible};

    fn random(len: usize) -> Vec<u8> {
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        (0..len)
            .map(|_| {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                seed.to_le_bytes()[3]
            })
            .collect()
    }

    fn decode(bytes: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        // A cut stream ends in UnexpectedEof after what did decode.
        let _ = MultiGzDecoder::new(bytes).read_to_end(&mut out);
        out
    }

    #[test]
    fn stored_and_deflated_members_decode_as_one_stream_even_when_cut() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("s.raw.gz");
        let mut sidecar = Sidecar::create(&path).expect("create");
        let text = b"a line of text that compresses well\n".repeat(200);
        let noise = random(100_000);
        let mut expected = Vec::new();
        for part in [&text[..], &noise[..], &text[..], &noise[..5000]] {
            sidecar.write(part).expect("write");
            expected.extend_from_slice(part);
        }
        sidecar.flush().expect("flush");
        let crashed = std::fs::read(&path).expect("read");
        assert_eq!(decode(&crashed), expected, "a crash prefix decodes");
        let (digest, bytes) = sidecar.finish().expect("finish");
        let file = std::fs::read(&path).expect("read");
        assert_eq!(bytes, file.len() as u64);
        assert_eq!(digest, crate::record::file_sha256(&path).expect("digest"));
        assert_eq!(decode(&file), expected);
        assert!(
            file.len() < expected.len(),
            "{} {}",
            file.len(),
            expected.len()
        );
        // What the module docs promise: zcat reads it (when gzip is here).
        if let Ok(out) = std::process::Command::new("gzip")
            .arg("-dc")
            .arg(&path)
            .output()
        {
            assert!(out.status.success());
            assert!(out.stdout == expected, "gzip -dc differs");
        }
    }

    #[test]
    fn entropy_tells_random_bytes_from_text_and_zeros() {
        assert_eq!(incompressible(&random(32 * 1024)), Some(true));
        let text = b"total 48\ndrwxr-xr-x 2 root root 4096 notes\n".repeat(100);
        assert_eq!(incompressible(&text), Some(false));
        assert_eq!(incompressible(&[0u8; 8192]), Some(false));
        assert_eq!(incompressible(&[1, 2, 3]), None);
    }
}
