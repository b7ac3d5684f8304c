//! Invalid UTF-8 in text, taken out before vte reads it.
//!
//! Why: vte 0.15 reads text in its ground state by finding the next ESC
//! and validating everything up to it as UTF-8. At an invalid byte it
//! prints U+FFFD (or, for a lone byte 0x80–0x9F, executes it as a C1
//! control) and starts again after it, finding the same ESC again: binary
//! output (`cat` of a compressed file in a terminal) cost a scan of about
//! 256 bytes per invalid byte, most of the relay's CPU for random bytes in
//! a pty.
//!
//! How: vt100 0.18 draws neither U+FFFD nor C1 controls (both go to its
//! `unhandled_*` callbacks, which the model does not implement), so each
//! invalid sequence vte would turn into one of them changes nothing on the
//! screen, and is dropped here: vte then validates each stretch once. The
//! unit dropped is the maximal invalid subpart `str::from_utf8` reports,
//! the unit vte replaces, so the characters around it read the same. What
//! vte may still hold or complete across calls (a character cut at the
//! end of the bytes it was given, and the up to three bytes it completes
//! one from) is left as it came. The model's property tests compare the
//! screen with a plain parser's.

/// Rewrites `text`, bytes vte reads in its ground state with no escape
/// sequence between them, into `out` (appended). `keep` bytes at the start
/// are copied unchanged. `closed`: an ASCII byte follows `text` in the
/// same stream, so a character cut at its end is invalid, not incomplete.
/// Returns false, leaving `out` as it was, when nothing needs rewriting.
pub(super) fn rewrite(text: &[u8], keep: usize, closed: bool, out: &mut Vec<u8>) -> bool {
    let mut at = keep.min(text.len());
    let mut copied = 0;
    let start = out.len();
    while let Some(offset) = text
        .get(at..)
        .and_then(|rest| rest.iter().position(|&b| b >= 0x80))
    {
        let lead = at + offset;
        let rest = text.get(lead..).unwrap_or_default();
        let len = match sequence(rest) {
            Sequence::Valid(len) => {
                at = lead + len;
                continue;
            }
            Sequence::Invalid(len) => len,
            Sequence::Cut if closed => rest.len(),
            Sequence::Cut => break,
        };
        out.extend_from_slice(text.get(copied..lead).unwrap_or_default());
        at = lead + len;
        copied = at;
    }
    if copied == 0 {
        out.truncate(start);
        return false;
    }
    out.extend_from_slice(text.get(copied..).unwrap_or_default());
    true
}

/// The UTF-8 sequence at the start of some bytes, as `str::from_utf8`
/// reads it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Sequence {
    /// A character of this many bytes.
    Valid(usize),
    /// Invalid: its maximal subpart, this many bytes.
    Invalid(usize),
    /// The valid start of a character the bytes end inside.
    Cut,
}

/// Reads the sequence at the start of `bytes` (not empty, first byte
/// over 0x7f), by the table of well-formed sequences (Unicode 15, table
/// 3-7).
fn sequence(bytes: &[u8]) -> Sequence {
    let Some(&lead) = bytes.first() else {
        return Sequence::Cut;
    };
    // The range the second byte must be in, and the sequence's length.
    let (second, len) = match lead {
        0xc2..=0xdf => (0x80..=0xbf, 2),
        0xe0 => (0xa0..=0xbf, 3),
        0xe1..=0xec | 0xee..=0xef => (0x80..=0xbf, 3),
        0xed => (0x80..=0x9f, 3),
        0xf0 => (0x90..=0xbf, 4),
        0xf1..=0xf3 => (0x80..=0xbf, 4),
        0xf4 => (0x80..=0x8f, 4),
        _ => return Sequence::Invalid(1),
    };
    for i in 1..len {
        let Some(&b) = bytes.get(i) else {
            return Sequence::Cut;
        };
        let fits = if i == 1 {
            second.contains(&b)
        } else {
            (0x80..=0xbf).contains(&b)
        };
        if !fits {
            return Sequence::Invalid(i);
        }
    }
    Sequence::Valid(len)
}

/// Bytes looked at in each of three places by [`looks_binary`].
const SAMPLE: usize = 256;
/// Bytes of a sample that are not text, at least, for output to look
/// binary: a quarter. Text in a legacy 8-bit encoding (Latin-1 accents,
/// each an invalid byte) stays far below; random bytes are about half.
const NOT_TEXT: usize = SAMPLE / 4;

/// Output that is not text (a compressed file or an image sent to the
/// terminal): at its start, middle and end, a quarter or more of the
/// bytes are invalid UTF-8 or C0 controls text does not use. NUL is not
/// counted: it draws nothing, and `/dev/zero` is cheap to parse.
pub(super) fn looks_binary(bytes: &[u8]) -> bool {
    let Some(last) = bytes.len().checked_sub(SAMPLE) else {
        return false;
    };
    [0, last / 2, last].iter().all(|&at| {
        let sample = bytes.get(at..at + SAMPLE).unwrap_or_default();
        not_text(sample) >= NOT_TEXT
    })
}

/// Bytes of `sample` that are invalid UTF-8 or odd C0 controls.
fn not_text(sample: &[u8]) -> usize {
    let mut count = 0;
    let mut i = 0;
    while let Some(&b) = sample.get(i) {
        if b < 0x80 {
            let odd = b < 0x20 && !matches!(b, 0x00 | 0x07 | 0x08 | b'\t' | b'\n' | b'\r' | 0x1b);
            count += usize::from(odd);
            i += 1;
            continue;
        }
        match sequence(sample.get(i..).unwrap_or_default()) {
            Sequence::Valid(len) => i += len,
            Sequence::Invalid(len) => {
                count += len;
                i += len;
            }
            Sequence::Cut => break,
        }
    }
    count
}

/// Where the bytes after a cut may still complete a character vte holds:
/// up to and including the first ASCII byte at index 2 or later (vte
/// completes from the first three bytes, and from that ASCII byte on
/// both read the same characters). All of `text` if there is none.
pub(super) fn held_head(text: &[u8]) -> usize {
    text.iter()
        .enumerate()
        .skip(2)
        .find(|&(_, &b)| b < 0x80)
        .map_or(text.len(), |(k, _)| k + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rw(text: &[u8], keep: usize, closed: bool) -> Option<Vec<u8>> {
        let mut out = b"x".to_vec();
        let changed = rewrite(text, keep, closed, &mut out);
        if changed {
            Some(out.split_off(1))
        } else {
            assert_eq!(out, b"x", "unchanged output is left as it was");
            None
        }
    }

    /// The table read against the standard library's reading, on every
    /// lead byte with followers from a small set of edges.
    #[test]
    fn sequences_are_read_as_from_utf8_reads_them() {
        let edges = [
            0x00u8, 0x41, 0x7f, 0x80, 0x8f, 0x90, 0x9f, 0xa0, 0xbf, 0xc0, 0xe0, 0xff,
        ];
        for lead in 0x80..=0xffu8 {
            for &a in &edges {
                for &b in &edges {
                    for &c in &edges {
                        for len in 1..=4 {
                            let bytes = &[lead, a, b, c][..len];
                            let expected = match std::str::from_utf8(bytes) {
                                Ok(s) => {
                                    Sequence::Valid(s.chars().next().map_or(0, char::len_utf8))
                                }
                                Err(e) if e.valid_up_to() > 0 => {
                                    Sequence::Valid(e.valid_up_to().min(4))
                                }
                                Err(e) => e.error_len().map_or(Sequence::Cut, Sequence::Invalid),
                            };
                            let got = sequence(bytes);
                            // A valid prefix longer than one character is
                            // only its first character.
                            if let (Sequence::Valid(n), Sequence::Valid(m)) = (got, expected) {
                                assert!(n <= m, "{bytes:x?}");
                                assert!(std::str::from_utf8(&bytes[..n]).is_ok(), "{bytes:x?}");
                            } else {
                                assert_eq!(got, expected, "{bytes:x?}");
                            }
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn random_bytes_look_binary_and_text_does_not() {
        let mut x = 0x2545_f491_4f6c_dd1du64;
        let random: Vec<u8> = (0..64 * 1024)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                (x >> 24) as u8
            })
            .collect();
        assert!(looks_binary(&random));
        let text =
            "Dec  5 12:00:01 web1 \x1b[1;34msshd\x1b[0m[811]: übermäßig 漢字 ok\r\n".repeat(600);
        assert!(!looks_binary(text.as_bytes()));
        // Latin-1 (one invalid byte per accent), NULs, and text that has
        // a binary stretch at its start only.
        let latin1: Vec<u8> =
            b"d\xe9j\xe0 vu, \xe7a co\xfbte cher \xe0 l'\xe9t\xe9\r\n".repeat(1000);
        assert!(!looks_binary(&latin1));
        assert!(!looks_binary(&[0u8; 32 * 1024]));
        let mut mixed = random[..8192].to_vec();
        mixed.extend_from_slice(text.as_bytes());
        assert!(!looks_binary(&mixed));
        assert!(!looks_binary(&random[..200]), "too short to judge");
    }

    #[test]
    fn valid_text_is_not_copied() {
        assert_eq!(rw(b"plain text", 0, true), None);
        assert_eq!(rw("übermäßig 漢字".as_bytes(), 0, false), None);
        assert_eq!(rw(b"", 0, true), None);
    }

    #[test]
    fn invalid_subparts_are_dropped_and_the_characters_around_them_kept() {
        assert_eq!(rw(b"a\xffb", 0, false), Some(b"ab".to_vec()));
        // E2 82 is the valid start of a three-byte character, cut by 'x'.
        assert_eq!(
            rw(b"\xe2\x82x\xe2\x82\xac", 0, false),
            Some("x€".as_bytes().to_vec())
        );
        // Lone continuation bytes, C1 or not; a surrogate.
        assert_eq!(
            rw(b"a\x85\x9b\xa0b\xed\xa0\x80", 0, false),
            Some(b"ab".to_vec())
        );
        // An invalid byte between the bytes of what would otherwise be
        // one character: both pieces are invalid.
        assert_eq!(rw(b"\xe2\xff\x82\xac!", 0, false), Some(b"!".to_vec()));
    }

    /// vt100 draws none of what vte makes of the dropped bytes.
    #[test]
    fn vt100_draws_no_replacement_character_or_c1_control() {
        let size = |n| std::num::NonZeroU16::new(n).unwrap_or(std::num::NonZeroU16::MIN);
        let mut p = vt100::Parser::new(size(2), size(10), 0);
        p.process("a\u{fffd}\u{85}b".as_bytes());
        p.process(b"\x85\xffc");
        assert_eq!(p.screen().contents(), "abc");
        assert_eq!(p.screen().cursor_position(), (0, 3));
    }

    #[test]
    fn a_cut_character_at_the_end_waits_unless_closed() {
        assert_eq!(rw(b"\xffa\xe2\x82", 0, false), Some(b"a\xe2\x82".to_vec()));
        assert_eq!(rw(b"a\xe2\x82", 0, false), None);
        assert_eq!(rw(b"a\xe2\x82", 0, true), Some(b"a".to_vec()));
    }

    #[test]
    fn the_kept_head_is_copied_as_it_came() {
        assert_eq!(rw(b"\x82\xffa\xff", 3, false), Some(b"\x82\xffa".to_vec()));
        assert_eq!(held_head(b"\x82\xffa\xff"), 3);
        assert_eq!(held_head(b"ab"), 2);
        assert_eq!(held_head(b"a\xffb\xff"), 3);
        assert_eq!(held_head(b"\x82\xff\xff\xff"), 4);
    }
}
