//! The menu's type-to-filter: a case-insensitive fuzzy subsequence match
//! with fzf-like scoring (consecutive characters, word starts and the asset
//! name count most), fast enough to rescore 100k assets on every keystroke.
//!
//! Speed comes from doing the expensive work once: each asset's searchable
//! text is lowercased into one [`Haystack`] when the menu is built, a query is
//! lowercased once per keystroke, and matching an item allocates nothing. The
//! subsequence test uses `str::find(char)`, which is memchr underneath.

/// Separates the fields of a haystack; never typed, so a match never
/// depends on it.
const FIELD_SEP: char = '\u{1f}';

/// One asset's searchable text: name, address, node paths and comment,
/// lowercased, in that order.
#[derive(Debug, Clone)]
pub(crate) struct Haystack {
    text: Box<str>,
    /// Byte length of the (lowercased) name at the start of `text`.
    name_len: usize,
}

impl Haystack {
    pub(crate) fn new(name: &str, address: &str, nodes: &[String], comment: &str) -> Haystack {
        let mut text = String::with_capacity(
            name.len()
                + address.len()
                + comment.len()
                + nodes.iter().map(|n| n.len() + 1).sum::<usize>()
                + 3,
        );
        push_lower(&mut text, name);
        let name_len = text.len();
        text.push(FIELD_SEP);
        push_lower(&mut text, address);
        for node in nodes {
            text.push(FIELD_SEP);
            push_lower(&mut text, node);
        }
        text.push(FIELD_SEP);
        push_lower(&mut text, comment);
        Haystack {
            text: text.into_boxed_str(),
            name_len,
        }
    }

    /// The lowercased name.
    pub(crate) fn name(&self) -> &str {
        self.text.get(..self.name_len).unwrap_or("")
    }
}

fn push_lower(out: &mut String, s: &str) {
    if s.is_ascii() {
        out.extend(s.chars().map(|c| c.to_ascii_lowercase()));
    } else {
        for c in s.chars() {
            // The separator must not appear inside a field.
            if c != FIELD_SEP {
                out.extend(c.to_lowercase());
            }
        }
    }
}

/// A lowercased query, ready to match against many haystacks.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Query {
    chars: Vec<char>,
}

impl Query {
    pub(crate) fn new(text: &str) -> Query {
        Query {
            chars: text
                .chars()
                .filter(|c| !c.is_whitespace() && *c != FIELD_SEP)
                .flat_map(char::to_lowercase)
                .collect(),
        }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.chars.is_empty()
    }

    /// Whether every item matching `self` also matches `longer`, so the
    /// next keystroke can search only the previous matches.
    pub(crate) fn narrows_to(&self, longer: &Query) -> bool {
        longer.chars.starts_with(&self.chars)
    }

    /// The score of `hay`, higher is better; `None` when the query is not a
    /// subsequence of it.
    pub(crate) fn score(&self, hay: &Haystack) -> Option<u32> {
        let text = &*hay.text;
        let (start, end) = self.window(text)?;
        let mut score: i32 = 0;
        let mut pos = start;
        let mut prev_end: Option<usize> = None;
        for (i, &c) in self.chars.iter().enumerate() {
            // Inside the window a greedy forward scan cannot fail: the
            // window was found by matching these characters in order.
            let at = pos + text.get(pos..end)?.find(c)?;
            let boundary = at == 0
                || text
                    .get(..at)
                    .and_then(|b| b.chars().next_back())
                    .is_some_and(|p| !p.is_alphanumeric());
            score += 16;
            if prev_end == Some(at) {
                score += 24;
            }
            if boundary {
                // A match that starts a word counts most for the first
                // character (the person usually types from a word start).
                score += if i == 0 { 40 } else { 12 };
            }
            prev_end = Some(at + c.len_utf8());
            pos = at + c.len_utf8();
        }
        let matched: usize = self.chars.iter().map(|c| c.len_utf8()).sum();
        let gaps = (end - start).saturating_sub(matched);
        score -= i32::try_from(gaps.min(200)).unwrap_or(200);
        if end <= hay.name_len {
            score += 60;
            if start == 0 {
                score += 40;
                if end == hay.name_len && gaps == 0 {
                    // The whole name, exactly.
                    score += 80;
                }
            }
        }
        // Earlier fields first: address before node paths before comment.
        score -= i32::try_from((start / 8).min(32)).unwrap_or(32);
        Some(u32::try_from(score.max(1)).unwrap_or(1))
    }

    /// Byte offsets (in the lowercased name) of the characters to highlight
    /// when the match lies within the name, else empty.
    pub(crate) fn name_positions(&self, hay: &Haystack) -> Vec<usize> {
        let name = hay.name();
        let Some((start, end)) = self.window(name) else {
            return Vec::new();
        };
        let mut out = Vec::with_capacity(self.chars.len());
        let mut pos = start;
        for &c in &self.chars {
            let Some(at) = name.get(pos..end).and_then(|w| w.find(c)) else {
                return Vec::new();
            };
            out.push(pos + at);
            pos += at + c.len_utf8();
        }
        out
    }

    /// The shortest-ending, then latest-starting window of `text` that
    /// contains the query as a subsequence (fzf's v1 algorithm: one forward
    /// pass to find the end, one backward pass to tighten the start).
    fn window(&self, text: &str) -> Option<(usize, usize)> {
        let mut end = 0;
        for &c in &self.chars {
            end += text.get(end..)?.find(c)? + c.len_utf8();
        }
        let mut start = end;
        for &c in self.chars.iter().rev() {
            start = text.get(..start)?.rfind(c)?;
        }
        Some((start, end))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hay(name: &str) -> Haystack {
        Haystack::new(name, "10.0.0.1", &["/DEFAULT/prod".to_string()], "")
    }

    #[test]
    fn subsequence_case_insensitive() {
        let q = Query::new("WbS");
        assert!(q.score(&hay("web-server")).is_some());
        assert!(q.score(&hay("database")).is_none());
    }

    #[test]
    fn exact_prefix_beats_scattered() {
        let q = Query::new("web");
        let exact = q.score(&hay("web")).unwrap_or(0);
        let prefix = q.score(&hay("web12")).unwrap_or(0);
        let inner = q.score(&hay("newebox")).unwrap_or(0);
        let scattered = q.score(&hay("w-e-b")).unwrap_or(0);
        // Like fzf, word starts outweigh contiguity inside a word.
        assert!(
            exact > prefix && prefix > scattered && scattered > inner,
            "{exact} {prefix} {inner} {scattered}"
        );
    }

    #[test]
    fn name_beats_other_fields() {
        let q = Query::new("prod");
        let in_name = q.score(&hay("prod-db")).unwrap_or(0);
        let in_node = q.score(&hay("db1")).unwrap_or(0);
        assert!(in_name > in_node && in_node > 0);
    }

    #[test]
    fn positions_in_name() {
        let q = Query::new("wb");
        assert_eq!(q.name_positions(&hay("web")), vec![0, 2]);
        assert!(Query::new("10").name_positions(&hay("web")).is_empty());
    }

    #[test]
    fn non_ascii() {
        let q = Query::new("ÉCO");
        assert!(q.score(&hay("serveur-écoles")).is_some());
    }
}
