//! Counting over the bytes of a run: which bytes a run holds, how far it
//! moves the cursor down, where its line feeds are. Pure functions.

use super::MAX_PARAMS;

/// Bytes a run holds outside escape sequences.
pub(super) fn plain(b: u8) -> bool {
    (b >= 0x20 && b != 0x7f) || b == b'\r' || b == b'\n' || b == b'\t'
}

/// How many bytes at the start of `bytes` are [`plain`].
pub(super) fn plain_len(bytes: &[u8]) -> usize {
    crate::record::strip::leading(bytes, plain)
}

/// How many bytes at the start of `bytes` are control bytes (not
/// [`plain`], not ESC).
pub(super) fn control_len(bytes: &[u8]) -> usize {
    crate::record::strip::leading(bytes, |b| !plain(b) && b != 0x1b)
}

/// Past the escape sequence starting at `bytes[i]` (ESC), inside a run:
/// a CSI ends at its final byte, an escape with intermediates at the byte
/// after them.
pub(super) fn skip_sequence(bytes: &[u8], mut i: usize) -> usize {
    i += 1;
    if bytes.get(i) == Some(&b'[') {
        i += 1;
        while bytes.get(i).is_some_and(|b| !(0x40..=0x7e).contains(b)) {
            i += 1;
        }
    } else {
        while bytes.get(i).is_some_and(|b| (0x20..=0x2f).contains(b)) {
            i += 1;
        }
    }
    i + 1
}

/// Whether a piece of a run prints a printable ASCII character.
pub(super) fn prints_ascii(bytes: &[u8]) -> bool {
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        match b {
            0x1b => i = skip_sequence(bytes, i),
            0x20..=0x7e => return true,
            _ => i += 1,
        }
    }
    false
}

/// The rows a piece of a run (`a`) moves the cursor down, from column
/// `col` of `cols`: line feeds and wraps.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct Advances {
    /// `a.len()` when every wrap is certain; otherwise the last CR before
    /// the first wrap that depends on the width of non-ASCII characters
    /// (taken as at most two columns each), 0 if none.
    pub(super) exact_end: usize,
    /// The rows before `exact_end`.
    pub(super) exact: u64,
    /// The rows of all of `a`, at least (uncertain wraps not counted).
    pub(super) at_least: u64,
}

pub(super) fn advances(a: &[u8], col: u16, cols: u16) -> Advances {
    let cols = u32::from(cols);
    let mut col = u32::from(col);
    // `col` is the column when known, an upper bound otherwise (after a
    // non-ASCII character, until the next CR).
    let mut known = true;
    let mut rows = 0u64;
    let mut last_cr = (0, 0);
    let mut first_doubt = None;
    let mut i = 0;
    while let Some(&b) = a.get(i) {
        match b {
            0x1b => {
                i = skip_sequence(a, i);
                continue;
            }
            b'\r' => {
                last_cr = (i, rows);
                col = 0;
                known = true;
            }
            b'\n' => rows += 1,
            b'\t' => col = (col - col % 8 + 8).min(cols - 1),
            0x20..=0x7e => {
                // A stretch of printable ASCII at once: one column each, a
                // wrap before a character that finds the cursor past the
                // last column.
                let n = a
                    .get(i..)
                    .unwrap_or_default()
                    .iter()
                    .take_while(|b| (0x20..=0x7e).contains(*b))
                    .count();
                let n32 = u32::try_from(n).unwrap_or(u32::MAX);
                if known {
                    if col >= cols {
                        rows += 1;
                        col = 0;
                    }
                    let wraps = (col + n32 - 1) / cols;
                    rows += u64::from(wraps);
                    col = col + n32 - wraps * cols;
                } else {
                    if col + n32 > cols {
                        first_doubt.get_or_insert(last_cr);
                    }
                    col = col.saturating_add(n32);
                }
                i += n;
                continue;
            }
            // UTF-8 continuation bytes (and invalid ones, drawn as nothing).
            0x80..=0xbf => {}
            // The first byte of a character of 0 to 2 columns, or one that
            // widens the cell before it.
            _ => {
                if col + 2 > cols {
                    first_doubt.get_or_insert(last_cr);
                }
                known = false;
                col += 2;
            }
        }
        i += 1;
    }
    let (exact_end, exact) = first_doubt.unwrap_or((a.len(), rows));
    Advances {
        exact_end,
        exact,
        at_least: rows,
    }
}

/// The position of the `n`th `byte` from the end of `bytes`.
pub(super) fn nth_from_end(bytes: &[u8], byte: u8, n: usize) -> Option<usize> {
    if n == 0 {
        return Some(bytes.len());
    }
    bytes
        .iter()
        .enumerate()
        .rev()
        .filter(|&(_, &b)| b == byte)
        .nth(n - 1)
        .map(|(i, _)| i)
}

/// `CSI top ; bottom r` sets the whole screen as the scroll region (vt100's
/// reading of the parameters); `None` when the parameters are unusual.
pub(super) fn full_region(params: &[u8], rows: u16) -> Option<bool> {
    if params.len() >= MAX_PARAMS || params.contains(&b':') {
        return None;
    }
    let mut groups = params.split(|&b| b == b';').map(|group| {
        group.iter().fold(0u16, |v, &d| {
            v.saturating_mul(10).saturating_add(u16::from(d - b'0'))
        })
    });
    let top = groups.next().unwrap_or(0).max(1);
    let bottom = match groups.next().unwrap_or(0) {
        0 => rows,
        b => b,
    };
    let (top, bottom) = (top - 1, (bottom - 1).min(rows - 1));
    Some(top >= bottom || (top == 0 && bottom == rows - 1))
}
