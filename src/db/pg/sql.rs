//! Statements as the rules see them: a query string split where the server
//! would split it, each statement normalised (comments gone, whitespace runs
//! one space), so that `DROP/**/TABLE` and `drop  table` read alike.
//!
//! The splitter follows PostgreSQL's lexer only as far as `;` goes: single
//! quotes (with `''`), escape strings (`E'...'` with `\'`), double-quoted
//! identifiers, dollar quotes (`$tag$...$tag$`, not inside an identifier
//! such as `a$b`), `--` and nested `/* */` comments. Where it must guess it
//! errs towards more statements, never fewer: a statement a rule never saw
//! is how a filter is bypassed.

/// How the server reads a plain `'...'`, which `standard_conforming_strings`
/// decides. The client can change it with a pipelined `SET`, faster than the
/// server reports it, so [`split`] reads the text both ways.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Strings {
    Standard,
    Escape,
}

/// What [`split`] found in a query string.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Split {
    /// Every statement the server could see, normalised: those of the
    /// standard reading in order, then those only the other reading has.
    pub statements: Vec<String>,
    /// A backslash right after a non-ASCII byte inside an escape string:
    /// in a client encoding such as SJIS or GBK that backslash is half of a
    /// character and escapes nothing, so the quote after it would end the
    /// string where this splitter thinks it goes on. The proxy refuses such
    /// text rather than guess the encoding.
    pub ambiguous: bool,
}

/// The statements of a query string, normalised, empty ones dropped.
pub fn statements(text: &str) -> Vec<String> {
    split(text).statements
}

/// The statements of a query string read both with and without standard
/// conforming strings (the union, first reading first), and whether the
/// text is ambiguous across client encodings.
pub fn split(text: &str) -> Split {
    let standard = lex(text.as_bytes(), Strings::Standard, true);
    let escape = lex(text.as_bytes(), Strings::Escape, true);
    let mut statements = standard.pieces;
    if escape.pieces != statements {
        // A set, not `contains`: a 16 MiB text may hold a million pieces.
        let mut seen: std::collections::HashSet<String> = statements.iter().cloned().collect();
        for piece in escape.pieces {
            if seen.insert(piece.clone()) {
                statements.push(piece);
            }
        }
    }
    Split {
        statements,
        ambiguous: standard.ambiguous || escape.ambiguous,
    }
}

/// One statement with its comments removed, whitespace runs outside quotes
/// collapsed to one space, trimmed. Quoted text is kept as it is.
pub fn normalise(statement: &str) -> String {
    lex(statement.as_bytes(), Strings::Standard, false)
        .pieces
        .pop()
        .unwrap_or_default()
}

#[derive(Default)]
struct Lexed {
    pieces: Vec<String>,
    ambiguous: bool,
}

/// PostgreSQL's `ident_start`: letters, `_` and any byte of a multibyte
/// character.
fn ident_start(b: u8) -> bool {
    b.is_ascii_alphabetic() || b == b'_' || b >= 0x80
}

/// PostgreSQL's `ident_cont`: `ident_start`, digits, and `$`.
fn ident_cont(b: u8) -> bool {
    ident_start(b) || b.is_ascii_digit() || b == b'$'
}

/// The output of one lexing pass: pieces, and the statement being built.
struct Out {
    lexed: Lexed,
    current: Vec<u8>,
    space: bool,
}

impl Out {
    /// Copies `bytes` of one token, after a single space if whitespace or a
    /// comment came before it.
    fn token(&mut self, bytes: &[u8]) {
        if self.space && !self.current.is_empty() {
            self.current.push(b' ');
        }
        self.space = false;
        self.current.extend_from_slice(bytes);
    }

    fn finish(&mut self) {
        let piece = String::from_utf8_lossy(&self.current).trim().to_string();
        if !piece.is_empty() {
            self.lexed.pieces.push(piece);
        }
        self.current.clear();
        self.space = false;
    }
}

fn lex(text: &[u8], strings: Strings, split: bool) -> Lexed {
    let mut out = Out {
        lexed: Lexed::default(),
        current: Vec::new(),
        space: false,
    };
    // Inside an identifier or keyword, where `$` is an ordinary character.
    let mut word: &[u8] = &[];
    let mut i = 0;
    while let Some(&b) = text.get(i) {
        let next = text.get(i + 1).copied();
        let end = match b {
            b'-' if next == Some(b'-') => {
                out.space = true;
                word = &[];
                i = line_end(text, i + 2);
                continue;
            }
            b'/' if next == Some(b'*') => {
                out.space = true;
                word = &[];
                i = block_end(text, i + 2);
                continue;
            }
            b';' if split => {
                out.finish();
                word = &[];
                i += 1;
                continue;
            }
            // PostgreSQL 16 counts \v as whitespace too; counting it here
            // whatever the version only ever joins a rule's words.
            b if b.is_ascii_whitespace() || b == 0x0b => {
                out.space = true;
                word = &[];
                i += 1;
                continue;
            }
            b'\'' => {
                let escape = strings == Strings::Escape || word.eq_ignore_ascii_case(b"e");
                let (end, ambiguous) = quote_end(text, i + 1, escape);
                out.lexed.ambiguous |= ambiguous;
                word = &[];
                end
            }
            b'"' => {
                word = &[];
                quote_end(text, i + 1, false).0
            }
            b'$' if word.is_empty() => match dollar_tag(text, i) {
                Some(tag) => dollar_end(text, i + tag.len(), tag),
                // A parameter such as `$1`: not the start of a word.
                None => i + 1,
            },
            b if ident_start(b) || (ident_cont(b) && !word.is_empty()) => {
                let start = if word.is_empty() { i } else { i - word.len() };
                word = text.get(start..=i).unwrap_or_default();
                i + 1
            }
            _ => {
                word = &[];
                i + 1
            }
        };
        let end = end.min(text.len());
        out.token(text.get(i..end).unwrap_or_default());
        i = end;
    }
    out.finish();
    out.lexed
}

/// Where a `--` comment ends: after its newline, or at the end.
fn line_end(text: &[u8], from: usize) -> usize {
    text.iter()
        .skip(from)
        .position(|&b| b == b'\n' || b == b'\r')
        .map_or(text.len(), |p| from + p + 1)
}

/// Where a `/*` comment ends, nested ones included: after its `*/`, or at
/// the end (the server then refuses the whole string).
fn block_end(text: &[u8], mut i: usize) -> usize {
    let mut depth = 1usize;
    while i < text.len() {
        match (text.get(i), text.get(i + 1)) {
            (Some(b'/'), Some(b'*')) => {
                depth += 1;
                i += 2;
            }
            (Some(b'*'), Some(b'/')) => {
                depth -= 1;
                i += 2;
                if depth == 0 {
                    return i;
                }
            }
            _ => i += 1,
        }
    }
    text.len()
}

/// Where a quoted string or identifier that opened before `i` ends (after
/// its closing quote), and whether it held an ambiguous backslash. The
/// quote character is the one before `i`.
fn quote_end(text: &[u8], mut i: usize, escape: bool) -> (usize, bool) {
    let Some(&quote) = i.checked_sub(1).and_then(|q| text.get(q)) else {
        return (text.len(), false);
    };
    let mut ambiguous = false;
    while let Some(&b) = text.get(i) {
        if escape && b == b'\\' {
            ambiguous |= i
                .checked_sub(1)
                .and_then(|p| text.get(p))
                .is_some_and(|&p| p >= 0x80);
            i += 2;
        } else if b == quote {
            if text.get(i + 1) == Some(&quote) {
                i += 2;
            } else {
                return (i + 1, ambiguous);
            }
        } else {
            i += 1;
        }
    }
    (text.len(), ambiguous)
}

/// The dollar-quote delimiter starting at `i` (`$$` or `$tag$`), if there
/// is one: a tag starts with `ident_start` and goes on with letters, digits
/// and `_` (no `$`).
fn dollar_tag(text: &[u8], i: usize) -> Option<&[u8]> {
    let mut j = i + 1;
    while let Some(&b) = text.get(j) {
        if b == b'$' {
            return text.get(i..=j);
        }
        let ok = if j == i + 1 {
            ident_start(b)
        } else {
            ident_start(b) || b.is_ascii_digit()
        };
        if !ok {
            return None;
        }
        j += 1;
    }
    None
}

/// Where a dollar-quoted string whose body starts at `from` ends: after the
/// closing delimiter, or at the end.
fn dollar_end(text: &[u8], from: usize, tag: &[u8]) -> usize {
    text.get(from..)
        .and_then(|rest| rest.windows(tag.len()).position(|w| w == tag))
        .map_or(text.len(), |p| from + p + tag.len())
}
