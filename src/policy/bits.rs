//! Small bit sets for the per-request scratch state of the policy queries:
//! positions are dense indices, so a bit per position beats hashing.

/// A fixed-size set of positions `0..len`.
pub(super) struct BitSet {
    words: Vec<u64>,
}

impl BitSet {
    pub(super) fn new(len: usize) -> Self {
        BitSet {
            words: vec![0; len.div_ceil(64)],
        }
    }

    pub(super) fn insert(&mut self, i: usize) {
        if let Some(w) = self.words.get_mut(i / 64) {
            *w |= 1 << (i % 64);
        }
    }

    pub(super) fn contains(&self, i: usize) -> bool {
        self.words
            .get(i / 64)
            .is_some_and(|w| w & (1 << (i % 64)) != 0)
    }
}

/// A subset of one asset's account list, by position. Inline for the usual
/// handful of accounts, so listing 100k assets does not allocate per asset.
#[derive(Clone, PartialEq, Eq)]
pub(super) enum LocalBits {
    Inline(u64),
    Heap(Box<[u64]>),
}

impl LocalBits {
    /// The positions `start..start + len` of `set`, renumbered from 0.
    pub(super) fn slice(set: &BitSet, start: usize, len: usize) -> Self {
        if len <= 64 {
            let mut w = 0u64;
            for i in 0..len {
                if set.contains(start + i) {
                    w |= 1 << i;
                }
            }
            LocalBits::Inline(w)
        } else {
            let mut words = vec![0u64; len.div_ceil(64)];
            for (i, slot) in (0..len).map(|i| (i, i / 64)) {
                if set.contains(start + i) {
                    words[slot] |= 1 << (i % 64);
                }
            }
            LocalBits::Heap(words.into_boxed_slice())
        }
    }

    pub(super) fn contains(&self, i: usize) -> bool {
        match self {
            LocalBits::Inline(w) => i < 64 && w & (1 << i) != 0,
            LocalBits::Heap(words) => words.get(i / 64).is_some_and(|w| w & (1 << (i % 64)) != 0),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_slices_renumber_from_zero() {
        let mut set = BitSet::new(300);
        for i in [3, 64, 65, 200, 299] {
            set.insert(i);
        }
        let small = LocalBits::slice(&set, 63, 3);
        assert!(!small.contains(0) && small.contains(1) && small.contains(2));
        let big = LocalBits::slice(&set, 100, 200);
        assert!(big.contains(100) && big.contains(199) && !big.contains(0));
        assert!(!big.contains(500));
    }
}
