//! File transfers as the audit sees them: the bytes of one file as they pass
//! through the bastion, counted and hashed in file order without a second
//! read ([`Passing`]), and the legacy SCP protocol ([`scp`]). The SFTP
//! protocol is in [`crate::sftp`]; the sessions that carry both are in
//! `ssh`.

pub mod scp;

use std::collections::BTreeMap;

use bytes::Bytes;
use sha2::{Digest, Sha256};

/// How many bytes may arrive ahead of a gap (pipelined reads answered out of
/// order) before the digest is given up for that file.
const MAX_EARLY: usize = 64 * 1024 * 1024;

/// The bytes of one file as they pass, at the offsets they were written or
/// read. The SHA-256 covers the file from offset 0 when every byte passed
/// exactly once; a resumed, sparse or rewritten transfer has a byte count
/// but no digest (it would not be the digest of any file).
pub struct Passing {
    next: u64,
    hasher: Sha256,
    early: BTreeMap<u64, Bytes>,
    early_bytes: usize,
    digest_lost: bool,
    bytes: u64,
}

impl Default for Passing {
    fn default() -> Self {
        Passing::new()
    }
}

impl Passing {
    pub fn new() -> Passing {
        Passing {
            next: 0,
            hasher: Sha256::new(),
            early: BTreeMap::new(),
            early_bytes: 0,
            digest_lost: false,
            bytes: 0,
        }
    }

    /// `data` passed at `offset`.
    pub fn add(&mut self, offset: u64, data: Bytes) {
        self.bytes += data.len() as u64;
        if self.digest_lost || data.is_empty() {
            return;
        }
        if offset < self.next {
            self.lose_digest();
            return;
        }
        if offset > self.next {
            self.early_bytes += data.len();
            if self.early_bytes > MAX_EARLY || self.early.insert(offset, data).is_some() {
                self.lose_digest();
            }
            return;
        }
        self.take(&data);
        // Whatever was waiting for this gap follows now.
        while let Some(entry) = self.early.first_entry() {
            let at = *entry.key();
            if at > self.next {
                break;
            }
            let chunk = entry.remove();
            self.early_bytes -= chunk.len();
            if at < self.next {
                self.lose_digest();
                return;
            }
            self.take(&chunk);
        }
    }

    fn take(&mut self, data: &[u8]) {
        self.hasher.update(data);
        self.next += data.len() as u64;
    }

    fn lose_digest(&mut self) {
        self.digest_lost = true;
        self.early.clear();
        self.early_bytes = 0;
    }

    /// Bytes that passed, counting any that passed twice.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// The lowercase hex SHA-256 of the file, when the bytes that passed
    /// were the whole of it from offset 0, once each.
    pub fn finish(self) -> Option<String> {
        (!self.digest_lost && self.early.is_empty()).then(|| hex::encode(self.hasher.finalize()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sha(data: &[u8]) -> String {
        hex::encode(Sha256::digest(data))
    }

    #[test]
    fn in_order_bytes_give_the_file_digest() {
        let data: Vec<u8> = (0..100_000u32).map(|i| (i * 7) as u8).collect();
        let mut p = Passing::new();
        for (i, chunk) in data.chunks(32768).enumerate() {
            p.add(i as u64 * 32768, Bytes::copy_from_slice(chunk));
        }
        assert_eq!(p.bytes(), data.len() as u64);
        assert_eq!(p.finish(), Some(sha(&data)));
        assert_eq!(Passing::new().finish(), Some(sha(b"")));
    }

    #[test]
    fn pipelined_answers_out_of_order_are_put_back_in_order() {
        let data: Vec<u8> = (0..10_000u32).map(|i| (i * 13) as u8).collect();
        let chunks: Vec<(u64, &[u8])> = data
            .chunks(1000)
            .enumerate()
            .map(|(i, c)| (i as u64 * 1000, c))
            .collect();
        let mut p = Passing::new();
        for &i in &[3usize, 1, 0, 2, 9, 5, 4, 6, 8, 7] {
            let (at, c) = chunks[i];
            p.add(at, Bytes::copy_from_slice(c));
        }
        assert_eq!(p.finish(), Some(sha(&data)));
    }

    #[test]
    fn short_reads_followed_by_the_remainder_keep_the_digest() {
        // The client asked 0..8 and 8..16; the first answer was short (0..5),
        // so it asks 5..8 again after 8..16 arrived.
        let data = b"0123456789abcdef";
        let mut p = Passing::new();
        p.add(0, Bytes::from_static(&data[..5]));
        p.add(8, Bytes::from_static(&data[8..]));
        p.add(5, Bytes::from_static(&data[5..8]));
        assert_eq!(p.finish(), Some(sha(data)));
    }

    #[test]
    fn resumed_rewritten_or_gappy_transfers_have_no_digest() {
        let mut resumed = Passing::new();
        resumed.add(100, Bytes::from_static(b"tail"));
        assert_eq!(resumed.bytes(), 4);
        assert_eq!(resumed.finish(), None);

        let mut twice = Passing::new();
        twice.add(0, Bytes::from_static(b"abcd"));
        twice.add(0, Bytes::from_static(b"abcd"));
        assert_eq!(twice.bytes(), 8);
        assert_eq!(twice.finish(), None);

        let mut overlap = Passing::new();
        overlap.add(4, Bytes::from_static(b"efgh"));
        overlap.add(0, Bytes::from_static(b"abcdef"));
        assert_eq!(overlap.finish(), None);
    }
}
