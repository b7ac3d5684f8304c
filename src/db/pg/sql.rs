//! Statements as the rules see them: a query string split where the server
//! would split it, each statement normalised (comments gone, whitespace runs
//! one space), so that `DROP/**/TABLE` and `drop  table` read alike. Two
//! dialects share the lexer: PostgreSQL's ([`split`], [`normalise`]) and
//! MySQL's and MariaDB's ([`split_mysql`], [`normalise_mysql`]).
//!
//! The PostgreSQL splitter follows the server's lexer only as far as `;`
//! goes: single quotes (with `''`), escape strings (`E'...'` with `\'`),
//! double-quoted identifiers, dollar quotes (`$tag$...$tag$`, not inside an
//! identifier such as `a$b`), `--` and nested `/* */` comments.
//!
//! The MySQL splitter follows `sql_lex.cc`: `'...'` and `"..."` strings with
//! backslash escapes (unless `NO_BACKSLASH_ESCAPES`; `"` quotes identifiers
//! under `ANSI_QUOTES`), backquoted identifiers, `#` comments and `-- `
//! comments (the dashes followed by a space or control character; `--1` is
//! two minus signs), `/* */` comments that do not nest, and versioned
//! comments (`/*!50700 ... */`, MariaDB's `/*M!100500 ... */`) whose content
//! is code when the server is at least that version.
//!
//! Where the server's reading depends on state the proxy cannot see (the
//! session's sql_mode, its client character set, where GBK, SJIS or Big5
//! characters may end in a byte that is ASCII `\` or a backquote) the text
//! is read every way and the statements of all readings are put to the
//! rules. Where it must guess it errs towards more statements, never fewer:
//! a statement a rule never saw is how a filter is bypassed. What it cannot
//! read either way is reported [`Split::ambiguous`], and the proxies refuse
//! it.
//!
//! A statement's head need not be what it does: `WITH d AS (DELETE ...)
//! SELECT ...`, `EXPLAIN ANALYZE DELETE ...`, `PREPARE p AS DELETE ...` or
//! MySQL's `PREPARE s FROM 'DELETE ...'` run a DELETE a rule anchored at
//! `^delete` would not see. After the split, each statement is parsed
//! (sqlparser, `nested.rs`) and the statements nested in it are added
//! after the others, normalised, each once; SQL held in a string (a
//! prepared string, a `LANGUAGE sql` function body) is split and read
//! again. A statement the parser cannot read is kept as the splitter gave
//! it and adds nothing. SQL prepared from a variable or an expression
//! (`PREPARE s FROM @v`, MariaDB's `EXECUTE IMMEDIATE CONCAT(...)`) is
//! ambiguous: its text is not in the query.

use super::nested::{self, Found, Lang};

/// What [`split`] found in a query string.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Split {
    /// Every statement the server could see, normalised: those of the
    /// first reading in order, then those only another reading has, then
    /// those nested in them (rendered by the parser, keywords in upper
    /// case).
    pub statements: Vec<String>,
    /// Text the splitter cannot vouch for. PostgreSQL: a backslash right
    /// after a non-ASCII byte inside an escape string (in a client encoding
    /// such as SJIS or GBK that backslash is half of a character and
    /// escapes nothing). MySQL: `--` before a non-ASCII byte (a comment or
    /// not, by the character set), a versioned comment whose reading
    /// depends on the server's version when that is unknown, or one whose
    /// end is not the same read as code and as a comment, or a statement
    /// prepared from a variable or an expression. Either: SQL in strings
    /// nested deeper than a few levels. The proxies refuse such text
    /// rather than guess.
    pub ambiguous: bool,
}

/// What decides how a MySQL-family server reads a versioned comment: its
/// family and version, from the version string of its handshake.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MySqlServer {
    pub mariadb: bool,
    /// `MYSQL_VERSION_ID`: 101114 for 10.11.14, 80036 for 8.0.36.
    pub version: u32,
}

impl MySqlServer {
    /// From a handshake's version string: `8.0.36`, or
    /// `5.5.5-10.11.14-MariaDB-log` (MariaDB's prefix for old clients).
    pub fn from_version(text: &str) -> Option<MySqlServer> {
        let mariadb = text.to_ascii_lowercase().contains("mariadb");
        let text = text.strip_prefix("5.5.5-").unwrap_or(text);
        let mut parts = text.splitn(3, '.');
        let mut number = |max: u32| -> Option<u32> {
            let digits: String = parts
                .next()?
                .chars()
                .take_while(char::is_ascii_digit)
                .collect();
            digits.parse().ok().filter(|n| *n < max)
        };
        let version = number(100)? * 10_000 + number(100)? * 100 + number(100)?;
        Some(MySqlServer { mariadb, version })
    }
}

/// The statements of a query string, normalised, empty ones dropped.
pub fn statements(text: &str) -> Vec<String> {
    split(text).statements
}

/// The statements of a PostgreSQL query string read both with and without
/// standard conforming strings (the union, first reading first), and
/// whether the text is ambiguous across client encodings. The client can
/// change `standard_conforming_strings` with a pipelined `SET`, faster
/// than the server reports it, so both readings count.
pub fn split(text: &str) -> Split {
    split_postgres(text, 0)
}

fn split_postgres(text: &str, depth: usize) -> Split {
    let readings = [false, true].map(|single| Reading {
        single,
        ..Reading::POSTGRES
    });
    let again = Again {
        lang: Lang::Postgres,
        normalise: &normalise,
        split: &split_postgres,
    };
    with_nested(split_all(text.as_bytes(), &readings), text, &again, depth)
}

/// One PostgreSQL statement with its comments removed, whitespace runs
/// outside quotes collapsed to one space, trimmed. Quoted text is kept.
pub fn normalise(statement: &str) -> String {
    lex(statement.as_bytes(), Reading::POSTGRES, false)
        .pieces
        .pop()
        .unwrap_or_default()
}

/// The statements of a MySQL query (raw bytes: the client's character set
/// is not known to be UTF-8) under every sql_mode and character set that
/// reads them differently; see [`Split`].
pub fn split_mysql(text: &[u8], server: Option<MySqlServer>) -> Split {
    split_mysql_at(text, server, 0)
}

fn split_mysql_at(text: &[u8], server: Option<MySqlServer>, depth: usize) -> Split {
    let backslash = text.contains(&b'\\');
    let multibyte = text
        .windows(2)
        .any(|w| matches!(w, [0x81..=0xfe, b'\\' | b'`']));
    // Default; NO_BACKSLASH_ESCAPES; ANSI_QUOTES.
    let quoting: &[(bool, bool)] = if backslash {
        &[(true, true), (false, false), (true, false)]
    } else {
        &[(true, true)]
    };
    let leads: &[Lead] = if multibyte {
        &[Lead::None, Lead::Gbk, Lead::Sjis, Lead::Big5]
    } else {
        &[Lead::None]
    };
    // MySQL 9 reads dollar-quoted strings; older servers and MariaDB do
    // not.
    let mariadb = server.is_some_and(|s| s.mariadb);
    let dollars: &[bool] = if text.contains(&b'$') && !mariadb {
        &[false, true]
    } else {
        &[false]
    };
    let mut readings = Vec::new();
    for &(single, double) in quoting {
        for &lead in leads {
            for &dollar in dollars {
                readings.push(Reading {
                    dialect: Dialect::MySql(server),
                    single,
                    double,
                    dollar,
                    lead,
                });
            }
        }
    }
    let again = Again {
        lang: Lang::MySql,
        normalise: &|t: &str| normalise_mysql(t.as_bytes(), server),
        split: &|t: &str, depth| split_mysql_at(t.as_bytes(), server, depth),
    };
    let whole = String::from_utf8_lossy(text);
    with_nested(split_all(text, &readings), &whole, &again, depth)
}

/// One MySQL statement normalised as the server reads it by default
/// (versioned comments the server runs are kept, without their markers).
pub fn normalise_mysql(statement: &[u8], server: Option<MySqlServer>) -> String {
    let reading = Reading {
        dialect: Dialect::MySql(server),
        ..Reading::POSTGRES
    }
    .mysql_default();
    lex(statement, reading, false)
        .pieces
        .pop()
        .unwrap_or_default()
}

/// How a dialect reads again what a statement holds.
struct Again<'a> {
    lang: Lang,
    normalise: &'a dyn Fn(&str) -> String,
    split: &'a dyn Fn(&str, usize) -> Split,
}

/// How deep SQL in a string may hold SQL in a string (a prepared string
/// that prepares, a function whose body creates a function): deeper is
/// refused as ambiguous, since no one writes it but to hide a statement.
const MAX_DEPTH: usize = 4;

/// `split` with the statements nested in its statements added after them
/// (see nested.rs), each normalised and each once. `text` is the whole
/// query, at `depth` strings deep.
fn with_nested(mut split: Split, text: &str, again: &Again, depth: usize) -> Split {
    let mut found = Vec::new();
    let mut unparsed = false;
    for statement in &split.statements {
        match nested::nested(statement, again.lang) {
            Some(more) => found.extend(more),
            None => unparsed = true,
        }
    }
    // A compound body (MySQL's BEGIN ... END, PostgreSQL's BEGIN ATOMIC,
    // MariaDB's IF ... END IF outside a program) holds `;`: the splitter
    // cuts it where the server does not, and its pieces do not parse. The
    // whole query may.
    if unparsed && split.statements.len() > 1 {
        let whole = (again.normalise)(text);
        found.extend(nested::nested(&whole, again.lang).unwrap_or_default());
    }
    let mut seen: std::collections::HashSet<String> = split.statements.iter().cloned().collect();
    for f in found {
        let more = match f {
            Found::Statement(statement) => vec![(again.normalise)(&statement)],
            Found::Text(text) if depth < MAX_DEPTH => {
                let inner = (again.split)(&text, depth + 1);
                split.ambiguous |= inner.ambiguous;
                inner.statements
            }
            Found::Text(_) | Found::Unreadable => {
                split.ambiguous = true;
                continue;
            }
        };
        for statement in more {
            if !statement.is_empty() && seen.insert(statement.clone()) {
                split.statements.push(statement);
            }
        }
    }
    split
}

/// The union of the readings' statements, the first reading's first.
fn split_all(text: &[u8], readings: &[Reading]) -> Split {
    let mut out = Split::default();
    // A set, not `contains`: a 16 MiB text may hold a million pieces.
    let mut seen = std::collections::HashSet::new();
    for (n, reading) in readings.iter().enumerate() {
        let lexed = lex(text, *reading, true);
        out.ambiguous |= lexed.ambiguous;
        if n == 0 {
            seen.extend(lexed.pieces.iter().cloned());
            out.statements = lexed.pieces;
        } else if lexed.pieces != out.statements {
            for piece in lexed.pieces {
                if seen.insert(piece.clone()) {
                    out.statements.push(piece);
                }
            }
        }
    }
    out
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Dialect {
    Postgres,
    MySql(Option<MySqlServer>),
}

/// A multibyte character set whose second bytes include ASCII `\` and
/// `` ` ``: a lead byte followed by one of its trail bytes is one
/// character, and the ASCII byte in it is neither an escape nor a quote.
/// gb18030's four-byte characters pair as two single bytes here, which
/// reads their bytes (never ASCII punctuation) the same.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Lead {
    None,
    Gbk,
    Sjis,
    Big5,
}

impl Lead {
    fn pairs(self, a: u8, b: Option<u8>) -> bool {
        let Some(b) = b else { return false };
        match self {
            Lead::None => false,
            Lead::Gbk => matches!((a, b), (0x81..=0xfe, 0x40..=0x7e | 0x80..=0xfe)),
            Lead::Sjis => matches!(
                (a, b),
                (0x81..=0x9f | 0xe0..=0xfc, 0x40..=0x7e | 0x80..=0xfc)
            ),
            Lead::Big5 => matches!((a, b), (0xa1..=0xf9, 0x40..=0x7e | 0xa1..=0xfe)),
        }
    }
}

/// One way the server may read the text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Reading {
    dialect: Dialect,
    /// Backslash escapes inside `'...'`.
    single: bool,
    /// Backslash escapes inside `"..."` (a MySQL string by default).
    double: bool,
    dollar: bool,
    lead: Lead,
}

impl Reading {
    const POSTGRES: Reading = Reading {
        dialect: Dialect::Postgres,
        single: false,
        double: false,
        dollar: true,
        lead: Lead::None,
    };

    fn mysql_default(self) -> Reading {
        Reading {
            single: true,
            double: true,
            dollar: false,
            ..self
        }
    }

    fn mysql(&self) -> bool {
        matches!(self.dialect, Dialect::MySql(_))
    }
}

#[derive(Default)]
struct Lexed {
    pieces: Vec<String>,
    ambiguous: bool,
}

/// PostgreSQL's `ident_start`: letters, `_` and any byte of a multibyte
/// character (MySQL's identifiers start the same way, or with `$`).
fn ident_start(b: u8) -> bool {
    b.is_ascii_alphabetic() || b == b'_' || b >= 0x80
}

/// PostgreSQL's `ident_cont`: `ident_start`, digits, and `$`.
fn ident_cont(b: u8) -> bool {
    ident_start(b) || b.is_ascii_digit() || b == b'$'
}

/// A MySQL versioned comment being read.
struct Versioned {
    /// Where it ends read as a comment (after its `*/`).
    close: usize,
    /// Whether its content is code for this server (else it is lexed only
    /// to check that it ends where the comment does).
    emit: bool,
}

/// One lexing pass: the pieces so far and the statement being built.
struct Lexer<'t> {
    text: &'t [u8],
    reading: Reading,
    split: bool,
    lexed: Lexed,
    current: Vec<u8>,
    space: bool,
    /// The identifier or keyword being read (start and end), where `$` is
    /// an ordinary character and a PostgreSQL `E` prefixes an escape string.
    word: Option<(usize, usize)>,
    versioned: Option<Versioned>,
}

fn lex(text: &[u8], reading: Reading, split: bool) -> Lexed {
    let mut lexer = Lexer {
        text,
        reading,
        split,
        lexed: Lexed::default(),
        current: Vec::new(),
        space: false,
        word: None,
        versioned: None,
    };
    let mut i = 0;
    while i < text.len() {
        i = lexer.step(i);
    }
    if let Some(v) = lexer.versioned.take()
        && v.close < text.len()
    {
        // Read as code the comment never ends (the server then refuses the
        // statement), read as a comment it does.
        lexer.lexed.ambiguous = true;
    }
    lexer.finish();
    lexer.lexed
}

impl Lexer<'_> {
    fn at(&self, i: usize) -> Option<u8> {
        self.text.get(i).copied()
    }

    /// Whether the byte at `i` continues the word before it.
    fn continues(&self, i: usize) -> bool {
        self.word.is_some_and(|(_, end)| end == i)
    }

    /// Reads what starts at `i`; returns where the next thing starts.
    fn step(&mut self, i: usize) -> usize {
        let (b, next) = (self.text.get(i).copied().unwrap_or(0), self.at(i + 1));
        if self.reading.lead.pairs(b, next) {
            return self.word_byte(i, i + 2);
        }
        if let Some(end) = self.comment(i, b, next) {
            self.gap();
            return end;
        }
        if self.versioned.is_some() && b == b'*' && next == Some(b'/') {
            return self.close_versioned(i);
        }
        match b {
            b';' if self.split => {
                if self.versioned.is_some() {
                    self.lexed.ambiguous = true;
                }
                self.finish();
                self.word = None;
                i + 1
            }
            // PostgreSQL 16 counts \v as whitespace too; counting it here
            // whatever the version only ever joins a rule's words.
            b if b.is_ascii_whitespace() || b == 0x0b => {
                self.gap();
                i + 1
            }
            b'\'' | b'"' => self.quoted(i, b),
            b'`' if self.reading.mysql() => self.quoted(i, b),
            b'$' if self.reading.dollar && !self.continues(i) => match dollar_tag(self.text, i) {
                Some(tag) => {
                    let end = dollar_end(self.text, i + tag.len(), tag);
                    self.emit(i, end)
                }
                // A parameter such as `$1`: not the start of a word.
                None => self.emit(i, i + 1),
            },
            b if ident_start(b) || (ident_cont(b) && self.continues(i)) => self.word_byte(i, i + 1),
            _ => self.emit(i, i + 1),
        }
    }

    /// A comment starting at `i`, if one does: where it ends.
    fn comment(&mut self, i: usize, b: u8, next: Option<u8>) -> Option<usize> {
        let mysql = self.reading.mysql();
        match (b, next) {
            (b'-', Some(b'-')) if !mysql => Some(line_end(self.text, i + 2, b"\n\r")),
            (b'-', Some(b'-')) => match self.at(i + 2) {
                // `my_isspace || my_iscntrl`; the end of the text is a NUL.
                None | Some(0..=0x20 | 0x7f) => Some(line_end(self.text, i + 2, b"\n\0")),
                // A space in some character sets (latin1's 0xA0), not in
                // others.
                Some(0x80..) => {
                    self.lexed.ambiguous = true;
                    None
                }
                Some(_) => None,
            },
            (b'#', _) if mysql => Some(line_end(self.text, i + 1, b"\n\0")),
            (b'/', Some(b'*')) if !mysql => Some(block_end(self.text, i + 2, true)),
            (b'/', Some(b'*')) => Some(self.mysql_block(i)),
            _ => None,
        }
    }

    /// A MySQL `/*` at `i`: a comment, or a versioned comment whose
    /// content may be code. Inside a versioned comment every `/*` is a
    /// plain comment, as in the server.
    fn mysql_block(&mut self, i: usize) -> usize {
        let Dialect::MySql(server) = self.reading.dialect else {
            return block_end(self.text, i + 2, false);
        };
        if self.versioned.is_some() {
            return block_end(self.text, i + 2, false);
        }
        let mariadb_marker = self.at(i + 2) == Some(b'M') && self.at(i + 3) == Some(b'!');
        if self.at(i + 2) != Some(b'!') && !mariadb_marker {
            return block_end(self.text, i + 2, false);
        }
        if mariadb_marker && server.is_some_and(|s| !s.mariadb) {
            // `/*M!` is a plain comment to MySQL.
            return block_end(self.text, i + 2, false);
        }
        let marker = if mariadb_marker { i + 4 } else { i + 3 };
        let digits = self
            .text
            .iter()
            .skip(marker)
            .take(7)
            .take_while(|b| b.is_ascii_digit())
            .count();
        if digits < 5 {
            // `/*!` without a version: always code, with no other reading.
            self.versioned = Some(Versioned {
                close: usize::MAX,
                emit: true,
            });
            return marker;
        }
        let (runs, skip) = self.runs(server, mariadb_marker, marker, digits);
        // Read as a comment it may hold one plain comment.
        let close = block_end(self.text, marker, true);
        if runs {
            self.versioned = Some(Versioned { close, emit: true });
            return marker + skip;
        }
        // Skipped; but it must end in the same place read as code, or the
        // text depends on a version the proxy may have wrong.
        let mut check = Lexer {
            text: self.text.get(..close).unwrap_or(self.text),
            reading: self.reading,
            split: true,
            lexed: Lexed::default(),
            current: Vec::new(),
            space: false,
            word: None,
            versioned: Some(Versioned { close, emit: false }),
        };
        let mut j = marker + skip;
        while j < check.text.len() {
            j = check.step(j);
        }
        self.lexed.ambiguous |= check.lexed.ambiguous || check.versioned.is_some();
        close
    }

    /// Whether the server runs a versioned comment's content, and how many
    /// digits its version takes; ambiguous when that is not known.
    fn runs(
        &mut self,
        server: Option<MySqlServer>,
        mariadb_marker: bool,
        at: usize,
        digits: usize,
    ) -> (bool, usize) {
        let number = |n: usize| -> u32 {
            self.text
                .iter()
                .skip(at)
                .take(n)
                .fold(0, |v, d| v * 10 + u32::from(d.saturating_sub(b'0')))
        };
        let Some(server) = server else {
            self.lexed.ambiguous = true;
            return (true, digits.min(6));
        };
        if server.mariadb {
            // Five or six digits; MySQL 5.7+ versions (50700 to 99999) are
            // MySQL's syntax and ignored unless marked `M!`.
            let n = digits.min(6);
            let v = number(n);
            let runs = v <= server.version && (!(50700..=99_999).contains(&v) || mariadb_marker);
            return (runs, n);
        }
        // MySQL reads five digits; newer releases six when a space
        // follows. Where the two disagree the text is refused.
        if digits >= 6 {
            self.lexed.ambiguous = true;
        }
        (number(5) <= server.version, 5)
    }

    /// The `*/` at `i` inside a versioned comment.
    fn close_versioned(&mut self, i: usize) -> usize {
        if let Some(v) = self.versioned.take()
            && v.close != usize::MAX
            && v.close != i + 2
        {
            // Read as code it ends elsewhere than read as a comment.
            self.lexed.ambiguous = true;
        }
        self.gap();
        i + 2
    }

    /// A quoted string or identifier opening at `i` with `quote`.
    fn quoted(&mut self, i: usize, quote: u8) -> usize {
        let r = self.reading;
        let escape = match quote {
            b'\'' if r.mysql() => r.single,
            b'\'' => {
                let e_prefix = self.continues(i)
                    && self
                        .word
                        .and_then(|(start, end)| self.text.get(start..end))
                        .is_some_and(|w| w.eq_ignore_ascii_case(b"e"));
                r.single || e_prefix
            }
            b'"' => r.double,
            _ => false,
        };
        let (end, ambiguous) = quote_end(self.text, i + 1, escape, r.lead);
        // A backslash in a multibyte character: PostgreSQL's readings do
        // not cover the encoding; MySQL's do.
        self.lexed.ambiguous |= ambiguous && !r.mysql();
        self.emit(i, end)
    }

    /// A byte (or multibyte character) of an identifier or keyword.
    fn word_byte(&mut self, i: usize, end: usize) -> usize {
        let start = match self.word {
            Some((start, last)) if last == i => start,
            _ => i,
        };
        let end = self.emit(i, end);
        self.word = Some((start, end));
        end
    }

    /// Copies `text[i..end]` as one token, after a single space if
    /// whitespace or a comment came before it.
    fn emit(&mut self, i: usize, end: usize) -> usize {
        let end = end.min(self.text.len()).max(i + 1);
        self.word = None;
        if let Some(v) = &self.versioned
            && v.close != usize::MAX
            && end > v.close.saturating_sub(2)
        {
            // A string or identifier runs past the comment's `*/`.
            self.lexed.ambiguous = true;
            self.versioned = None;
        }
        if self.versioned.as_ref().is_some_and(|v| !v.emit) {
            self.space = true;
            return end;
        }
        if self.space && !self.current.is_empty() {
            self.current.push(b' ');
        }
        self.space = false;
        self.current
            .extend_from_slice(self.text.get(i..end).unwrap_or_default());
        end
    }

    fn gap(&mut self) {
        self.space = true;
        self.word = None;
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

/// Where a line comment ends: at (PostgreSQL: after) the first of `ends`,
/// or at the end. MySQL ends `#` and `-- ` comments at a newline or a NUL
/// and nowhere else.
fn line_end(text: &[u8], from: usize, ends: &[u8]) -> usize {
    let found = text.iter().skip(from).position(|b| ends.contains(b));
    match found {
        // PostgreSQL's newline is part of the comment; either way it only
        // separates tokens.
        Some(p) if ends.contains(&b'\r') => from + p + 1,
        Some(p) => from + p,
        None => text.len(),
    }
}

/// Where a `/*` comment ends: after its `*/`, or at the end (the server
/// then refuses the whole string). PostgreSQL nests comments; MySQL does
/// not, except that a versioned comment read as a comment may hold one
/// plain comment (`nest` here).
fn block_end(text: &[u8], mut i: usize, nest: bool) -> usize {
    let mut depth = 1usize;
    while i < text.len() {
        match (text.get(i), text.get(i + 1)) {
            (Some(b'/'), Some(b'*')) if nest => {
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
/// its closing quote), and whether it held a backslash right after a
/// non-ASCII byte. The quote character is the one before `i`; a doubled
/// quote stands for itself.
fn quote_end(text: &[u8], mut i: usize, escape: bool, lead: Lead) -> (usize, bool) {
    let Some(&quote) = i.checked_sub(1).and_then(|q| text.get(q)) else {
        return (text.len(), false);
    };
    let mut ambiguous = false;
    while let Some(&b) = text.get(i) {
        if lead.pairs(b, text.get(i + 1).copied()) {
            i += 2;
        } else if escape && b == b'\\' {
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
