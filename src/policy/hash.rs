//! A fast non-cryptographic hasher for the snapshot's name and id maps.
//!
//! Their keys come from the database, written by admins; requests only look
//! keys up and can never add colliding ones, so SipHash's flooding protection
//! buys nothing here, while building the maps for 100k assets with it was a
//! large part of `Snapshot::build`. Each 8-byte word is mixed with a folded
//! 64x64->128 multiply (as foldhash and wyhash do): the plain Fx
//! rotate-xor-multiply scheme gave thousands of full collisions on keys like
//! `acc12345-root`.

use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasherDefault, Hasher};

pub(super) type Map<K, V> = HashMap<K, V, BuildHasherDefault<FoldHasher>>;
pub(super) type Set<K> = HashSet<K, BuildHasherDefault<FoldHasher>>;

#[derive(Default, Clone, Copy)]
pub(super) struct FoldHasher(u64);

const MIX: u64 = 0x9e37_79b9_7f4a_7c15;
const FINISH: u64 = 0x517c_c1b7_2722_0a95;

fn folded_multiply(a: u64, b: u64) -> u64 {
    let full = u128::from(a) * u128::from(b);
    (full as u64) ^ ((full >> 64) as u64)
}

impl FoldHasher {
    fn add(&mut self, word: u64) {
        self.0 = folded_multiply(self.0 ^ word, MIX);
    }
}

impl Hasher for FoldHasher {
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for chunk in &mut chunks {
            let mut word = [0u8; 8];
            word.copy_from_slice(chunk);
            self.add(u64::from_le_bytes(word));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut word = [0u8; 8];
            word[..rest.len()].copy_from_slice(rest);
            self.add(u64::from_le_bytes(word));
        }
    }

    fn write_u8(&mut self, i: u8) {
        self.add(u64::from(i));
    }

    fn write_u32(&mut self, i: u32) {
        self.add(u64::from(i));
    }

    fn write_u64(&mut self, i: u64) {
        self.add(i);
    }

    fn write_usize(&mut self, i: usize) {
        self.add(i as u64);
    }

    fn finish(&self) -> u64 {
        folded_multiply(self.0, FINISH)
    }
}

#[cfg(test)]
mod tests {
    use std::hash::BuildHasher;

    use super::*;

    #[test]
    fn structured_keys_spread_over_buckets() {
        let build = BuildHasherDefault::<FoldHasher>::default();
        let keys = (0..100_000).map(|i| format!("acc{i}-root"));
        let hashes: Vec<u64> = keys.map(|k| build.hash_one(k.as_str())).collect();
        let full: HashSet<u64> = hashes.iter().copied().collect();
        assert_eq!(full.len(), hashes.len(), "full 64-bit collisions");
        // hashbrown picks the bucket from the low bits: with 2^17 buckets,
        // random hashes fill about 71% of them.
        let buckets: HashSet<u64> = hashes.iter().map(|h| h & ((1 << 17) - 1)).collect();
        assert!(
            buckets.len() > 65_000,
            "only {} buckets used",
            buckets.len()
        );
    }
}
