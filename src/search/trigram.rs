//! The index's terms: every three-byte window of a line, ASCII letters
//! folded to lower case, written as a five-letter word. A block of text is
//! indexed as the set of its distinct trigrams (tens of thousands at most,
//! however large the block), so the index grows with the variety of the
//! text, not its volume; a search looks for the blocks that hold every
//! trigram of its text and then reads those blocks to confirm.
//!
//! The set is built here, on the indexer's own low-priority thread, so the
//! database only files a short list of words per block.

/// Distinct trigrams there can be: three bytes.
const SPACE: usize = 1 << 24;
/// Terms a search asks the index for, at most: more narrow the candidates
/// little and cost a lookup each.
const QUERY_TERMS: usize = 32;
const ALPHABET: &[u8; 32] = b"abcdefghijklmnopqrstuvwxyz234567";

/// The distinct trigrams of the lines added since the last [`Self::take`].
pub struct TrigramSet {
    /// One bit per possible trigram (2 MiB), so adding a window is a bit
    /// test, not a hash lookup.
    bits: Vec<u64>,
    seen: Vec<u32>,
}

impl Default for TrigramSet {
    fn default() -> Self {
        TrigramSet::new()
    }
}

impl std::fmt::Debug for TrigramSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TrigramSet")
            .field("distinct", &self.seen.len())
            .finish()
    }
}

/// Every three-byte window of `text`, folded, as a number: the last three
/// bytes rolled through, so each byte is folded once.
fn windows(text: &[u8]) -> impl Iterator<Item = u32> + '_ {
    let mut window = 0u32;
    text.iter().enumerate().filter_map(move |(i, b)| {
        window = ((window << 8) | u32::from(b.to_ascii_lowercase())) & 0x00ff_ffff;
        (i >= 2).then_some(window)
    })
}

/// The word for a trigram: five letters of a 32-letter alphabet (25 bits).
fn term(trigram: u32) -> String {
    (0..5)
        .rev()
        .map(|i| char::from(ALPHABET[((trigram >> (i * 5)) & 31) as usize]))
        .collect()
}

impl TrigramSet {
    pub fn new() -> TrigramSet {
        TrigramSet {
            bits: vec![0; SPACE / 64],
            seen: Vec::new(),
        }
    }

    pub fn add_line(&mut self, text: &[u8]) {
        for t in windows(text) {
            let (word, bit) = ((t >> 6) as usize, t & 63);
            if let Some(w) = self.bits.get_mut(word)
                && *w & (1 << bit) == 0
            {
                *w |= 1 << bit;
                self.seen.push(t);
            }
        }
    }

    /// Distinct trigrams so far.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.seen.len()
    }

    /// The set as a document of words for the full-text index, and empty
    /// again.
    pub fn take(&mut self) -> String {
        let mut doc = String::with_capacity(self.seen.len() * 6);
        for t in self.seen.drain(..) {
            if let Some(w) = self.bits.get_mut((t >> 6) as usize) {
                *w = 0;
            }
            if !doc.is_empty() {
                doc.push(' ');
            }
            doc.push_str(&term(t));
        }
        doc
    }
}

/// The words a block must hold to contain `text`; empty when `text` is
/// shorter than three bytes (such a search cannot use the index).
pub fn query_terms(text: &str) -> Vec<String> {
    let mut all: Vec<u32> = windows(text.as_bytes()).collect();
    all.sort_unstable();
    all.dedup();
    if all.len() > QUERY_TERMS {
        // Spread over the whole set rather than the first few.
        let step = all.len().div_ceil(QUERY_TERMS);
        all = all.into_iter().step_by(step).collect();
    }
    all.into_iter().map(term).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_text_is_found_in_a_block_only_through_its_trigrams() {
        let mut set = TrigramSet::new();
        set.add_line("Dec  5 ERROR disk full on /dev/sda1".as_bytes());
        let doc = set.take();
        let words: std::collections::HashSet<&str> = doc.split(' ').collect();
        for query in ["disk full", "error DISK", "sda1", "/dev/"] {
            let terms = query_terms(query);
            assert!(!terms.is_empty());
            assert!(terms.iter().all(|t| words.contains(t.as_str())), "{query}");
        }
        assert!(
            !query_terms("disk empty")
                .iter()
                .all(|t| words.contains(t.as_str()))
        );
        assert!(query_terms("ab").is_empty());
        assert_eq!(set.len(), 0, "take empties the set");
        set.add_line("disk".as_bytes());
        assert_eq!(set.len(), 2, "the bits were cleared by take");
    }

    #[test]
    fn windows_are_every_three_bytes_folded() {
        let text = "Ab\u{e9}CdE fG";
        let expected: Vec<u32> = text
            .as_bytes()
            .windows(3)
            .map(|w| {
                w.iter()
                    .fold(0, |t, b| (t << 8) | u32::from(b.to_ascii_lowercase()))
            })
            .collect();
        assert_eq!(windows(text.as_bytes()).collect::<Vec<_>>(), expected);
        assert_eq!(windows(b"ab").count(), 0);
    }

    #[test]
    fn terms_are_distinct_words_of_the_index_alphabet() {
        let mut set = TrigramSet::new();
        set.add_line("aaaa aaaa \u{e9}\u{e9}\u{e9}".as_bytes());
        let doc = set.take();
        let words: Vec<&str> = doc.split(' ').collect();
        let mut unique = words.clone();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(words.len(), unique.len());
        assert!(
            words
                .iter()
                .all(|w| w.len() == 5 && w.bytes().all(|b| ALPHABET.contains(&b)))
        );
        assert_ne!(term(0x00_61_62), term(0x00_61_63));
        assert_eq!(query_terms(&"x".repeat(500)).len(), 1);
        let long: String = (0..400)
            .map(|i| char::from(b'a' + (i % 26) as u8))
            .collect();
        assert!(query_terms(&long).len() <= QUERY_TERMS);
    }
}
