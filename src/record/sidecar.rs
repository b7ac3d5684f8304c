//! The raw sidecar `<session>.raw.gz`: output bytes a cast cannot hold,
//! byte-exact, as a gzip stream, and the hashing file both recording files
//! are written through.
//!
//! Why several gzip members: compressing costs more than the relay can
//! afford on data that does not compress (random, encrypted, already
//! compressed: deflate runs near 100 MB/s there, even miniz's level 0, and
//! saves nothing). The byte entropy of a sample is estimated, at most once
//! per [`CHECK_EVERY`] bytes; incompressible stretches go into a member of
//! stored deflate blocks written here (a 5-byte block header, the bytes, a
//! CRC: copy speed), the rest into a member deflated by zlib-rs at level 2.
//! A new member starts only when the kind changes. `zcat` and
//! `MultiGzDecoder` read the concatenation as one stream.
//!
//! Why zlib-rs, called directly: flate2 takes the C zlib whenever any crate
//! in the build asks for it (the RDP stack does), and the system's zlib
//! 1.2 deflates a desktop's bitmap updates at about 0.9 GB/s, zlib-rs's
//! level 2 at 3.8 GB/s to the same size (zeros 1.1 against 6.8 GB/s, `seq`
//! text 0.24 against 0.36 GB/s): the recorder thread's main cost for
//! desktops and binary output.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use flate2::Crc;
use sha2::{Digest, Sha256};
use zlib_rs::{Deflate, DeflateFlush, Status};

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
/// The entropy is estimated once per this many bytes at most: its 256
/// logarithms cost more than deflating a small chunk.
const CHECK_EVERY: u64 = 64 * 1024;
/// The deflate level: zlib-rs's level 1 is a quicker strategy with static
/// codes that stores a desktop's updates 1.7 times larger.
const LEVEL: i32 = 2;
/// Raw deflate (no zlib header: the gzip framing is written here), with
/// the usual 32 KiB window.
const WINDOW_BITS: u8 = 15;
/// The compressed bytes are written out through a buffer of this size.
const OUT_BUFFER: usize = 64 * 1024;

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

/// zlib-rs's deflater and the buffer its output goes through: about
/// 400 KiB, allocated once per recording and reset for each member (a new
/// one per member, every few MiB, grew the resident size by 4 MB a
/// desktop session in bench/rdp.sh).
struct Engine {
    deflate: Deflate,
    out: Vec<u8>,
}

impl Engine {
    fn new() -> Box<Self> {
        Box::new(Engine {
            deflate: Deflate::new(LEVEL, false, WINDOW_BITS),
            out: vec![0; OUT_BUFFER],
        })
    }
}

/// A deflated gzip member: zlib-rs's raw deflate between a gzip header
/// and trailer written here.
struct Deflated {
    file: HashingFile,
    engine: Box<Engine>,
    crc: Crc,
}

fn deflate_err(e: zlib_rs::DeflateError) -> io::Error {
    io::Error::other(format!("deflate: {}", e.as_str()))
}

impl Deflated {
    /// Starts a member on `engine` (reset), or on a new one.
    fn start(mut file: HashingFile, engine: Option<Box<Engine>>) -> io::Result<Self> {
        file.write_all(&GZIP_HEADER)?;
        let engine = match engine {
            Some(mut engine) => {
                engine.deflate.reset();
                engine
            }
            None => Engine::new(),
        };
        Ok(Deflated {
            file,
            engine,
            crc: Crc::new(),
        })
    }

    /// Runs the deflater over `input` with `flush`, writing what it makes,
    /// until the input is taken and, for a flush, everything is out.
    fn run(&mut self, mut input: &[u8], flush: DeflateFlush) -> io::Result<()> {
        let Engine { deflate, out } = &mut *self.engine;
        loop {
            let (taken, made) = (deflate.total_in(), deflate.total_out());
            let status = deflate.compress(input, out, flush).map_err(deflate_err)?;
            let taken = usize::try_from(deflate.total_in() - taken).unwrap_or(usize::MAX);
            let made = usize::try_from(deflate.total_out() - made).unwrap_or(usize::MAX);
            self.file.write_all(out.get(..made).unwrap_or(out))?;
            input = input.get(taken..).unwrap_or_default();
            // A full buffer may hold back more; otherwise the call is done.
            let more = made == out.len();
            match flush {
                DeflateFlush::Finish if status == Status::StreamEnd => return Ok(()),
                DeflateFlush::Finish => {}
                _ if input.is_empty() && !more => return Ok(()),
                _ => {}
            }
            if taken == 0 && made == 0 {
                return Err(io::Error::other("deflate: no progress"));
            }
        }
    }
}

/// The gzip member being written.
enum Member {
    Deflate(Box<Deflated>),
    /// Stored blocks, written directly; each is complete when written, so
    /// there is nothing to flush.
    Stored {
        file: HashingFile,
        crc: Crc,
    },
}

impl Member {
    /// Starts a member; a deflated one on `engine` if there is one.
    fn start(mut file: HashingFile, stored: bool, engine: Option<Box<Engine>>) -> io::Result<Self> {
        if stored {
            file.write_all(&GZIP_HEADER)?;
            Ok(Member::Stored {
                file,
                crc: Crc::new(),
            })
        } else {
            Ok(Member::Deflate(Box::new(Deflated::start(file, engine)?)))
        }
    }

    fn write(&mut self, bytes: &[u8]) -> io::Result<()> {
        match self {
            Member::Deflate(member) => {
                member.crc.update(bytes);
                member.run(bytes, DeflateFlush::NoFlush)
            }
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

    /// A sync flush: every byte written so far decodes from the file.
    fn flush(&mut self) -> io::Result<()> {
        match self {
            Member::Deflate(member) => member.run(&[], DeflateFlush::SyncFlush),
            Member::Stored { .. } => Ok(()),
        }
    }

    /// Writes the member's end (final block, CRC, size) and gives the file
    /// back, with the deflater for the next member.
    fn finish(self) -> io::Result<(HashingFile, Option<Box<Engine>>)> {
        let (mut file, crc, engine) = match self {
            Member::Deflate(mut member) => {
                member.run(&[], DeflateFlush::Finish)?;
                let Deflated { file, crc, engine } = *member;
                (file, crc, Some(engine))
            }
            Member::Stored { mut file, crc } => {
                // An empty final stored block: BFINAL = 1, LEN 0, NLEN 0xffff.
                file.write_all(&[1, 0, 0, 0xff, 0xff])?;
                (file, crc, None)
            }
        };
        file.write_all(&crc.sum().to_le_bytes())?;
        file.write_all(&crc.amount().to_le_bytes())?;
        Ok((file, engine))
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
    /// The deflater kept while a stored member is written, for the next
    /// deflated one.
    engine: Option<Box<Engine>>,
    stored: bool,
    raw: u64,
    /// Bytes written since the entropy was last estimated.
    unchecked: u64,
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
            member: Some(Member::start(HashingFile::new(file), false, None)?),
            engine: None,
            stored: false,
            raw: 0,
            unchecked: CHECK_EVERY,
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
        self.unchecked = self.unchecked.saturating_add(bytes.len() as u64);
        let check = self.unchecked >= CHECK_EVERY;
        if let Some(stored) = check.then(|| incompressible(bytes)).flatten() {
            self.unchecked = 0;
            if stored != self.stored {
                self.next_member(stored)?;
            }
        }
        self.member.as_mut().ok_or_else(closed)?.write(bytes)?;
        self.raw += bytes.len() as u64;
        self.dirty = !self.stored;
        Ok(())
    }

    /// Ends the current member and starts a new one, of the same kind or
    /// not, so a reader can start decoding here (a replay's seek point).
    /// The deflater goes on to the next deflated member, kept here while
    /// stored members are written. Returns the file offset where the new
    /// member begins.
    fn next_member(&mut self, stored: bool) -> io::Result<u64> {
        let (file, engine) = self.member.take().ok_or_else(closed)?.finish()?;
        if engine.is_some() {
            self.engine = engine;
        }
        let offset = file.bytes();
        let engine = if stored { None } else { self.engine.take() };
        self.member = Some(Member::start(file, stored, engine)?);
        self.stored = stored;
        self.dirty = false;
        Ok(offset)
    }

    /// A seek point: a new member of the same kind. Returns its offset.
    pub(crate) fn restart(&mut self) -> io::Result<u64> {
        self.next_member(self.stored)
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
        let (inner, _) = self.member.ok_or_else(closed)?.finish()?;
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
    fn output_larger_than_the_deflaters_buffer_and_small_chunks_decode() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("s.raw.gz");
        let mut sidecar = Sidecar::create(&path).expect("create");
        // Letters only: entropy under the line, so deflated, to several
        // times the 64 KiB buffer in one write.
        let letters: Vec<u8> = random(1 << 20).iter().map(|b| b'a' + b % 26).collect();
        sidecar.write(&letters).expect("write");
        assert!(!sidecar.stored);
        let mut expected = letters.clone();
        // Small random chunks: the kind is decided once per CHECK_EVERY
        // bytes, so they switch to stored within that.
        let noise = random(2048);
        for _ in 0..40 {
            sidecar.write(&noise).expect("write");
            expected.extend_from_slice(&noise);
        }
        assert!(sidecar.stored, "random chunks are stored after a check");
        sidecar.write(&letters[..100]).expect("write");
        expected.extend_from_slice(&letters[..100]);
        sidecar.flush().expect("flush");
        assert_eq!(decode(&std::fs::read(&path).expect("read")), expected);
        sidecar.finish().expect("finish");
        assert_eq!(decode(&std::fs::read(&path).expect("read")), expected);
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
