//! Legacy SCP (the old rcp protocol that `scp -O` speaks) as seen by a relay:
//! which command the client ran, and which files went past, with their sizes
//! and SHA-256s.
//!
//! The OpenSSH client runs `scp -t PATH` on the far side for an upload (the
//! client is the *source*, the remote `scp -t` is the *sink*) or
//! `scp -f PATH` for a download (the remote `scp -f` is the source, the client
//! is the sink). The source sends records, each a single line ending in
//! `\n`; the sink answers each with a one-byte ack on the other stream:
//!
//! ```text
//!  C0644 5 a.txt\n   a file: 4 octal mode digits, decimal size, name;
//!  hello\0           then exactly `size` raw bytes, then `\0` (all read),
//!                    or `\x01`/`\x02` + message line if reading failed
//!  D0755 0 dir\n     enter a directory (recursive copies)
//!  E\n               leave it
//!  T<mtime> 0 <atime> 0\n   times for the next C/D record (`-p`)
//!  \x01msg\n         an error the source reports instead of a record
//!  \x02msg\n         the same, fatal
//! ```
//!
//! This module owns two pure pieces: [`parse_command`] recognises the exec
//! command, and [`SourceParser`] follows the source's byte stream in whatever
//! chunks it arrives and reports every file as [`Event`]s. It never writes to
//! either stream and cannot stop or alter a transfer: the relay forwards the
//! bytes whatever the parser thinks of them. It keeps no file content:
//! memory is one record line (at most 4096 bytes), the directory stack (at
//! most 16 KiB of names) and one SHA-256 state, whatever the file sizes.
//!
//! Limits, by design:
//! - The logged path of a file is `base/dirs/name` (see [`SourceParser::new`]).
//!   The relay cannot know whether an upload target is a directory, so
//!   `scp -t /tmp/new.txt` followed by `C0644 5 a.txt` is logged as
//!   `/tmp/new.txt/a.txt`, though the sink writes `/tmp/new.txt`.
//! - Paths in the command are unquoted, never expanded: `~` and glob
//!   characters are logged as typed, not as the remote shell expands them.
//! - What is logged is what the source sent, not what the sink stored: the
//!   sink's acks (a full disk, a permission error) flow the other way and are
//!   not read here.
//! - Names are bytes on the wire; they are shown as UTF-8, lossily.
//! - The parser accepts what OpenSSH's sink accepts (`scp.c`, `sink()`), with
//!   three exceptions: a name may not contain a NUL byte (the sink would
//!   see a shorter name than the log), a name may not be `.` (as in sinks
//!   since the fix of CVE-2018-20685), and a byte other than `\0`, `\x01`
//!   or `\x02` after a file's data is a protocol break (the sink reads it as
//!   the start of a fatal error). After an [`Event::Unparsable`] the parser
//!   reports nothing more; what the relay does with the rest of the
//!   session is its decision.
//! - `scp` without `-O` uses SFTP since OpenSSH 9.0; that is another protocol
//!   and not handled here.

use std::mem;

use sha2::{Digest, Sha256};

/// The longest record or message line accepted, newline not counted.
const MAX_LINE: usize = 4096;
/// The most bytes of directory names (plus one separator each) a stream may
/// stack up. Far beyond `PATH_MAX`, so only a hostile stream reaches it; it
/// keeps the parser's memory bounded.
const MAX_DIR_PATH: usize = 16 * 1024;
/// The sink stores sizes in an `off_t`, so larger sizes are a protocol error.
const MAX_SIZE: u64 = i64::MAX as u64;

/// Which way files flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// `scp -t`: the client sends files to the target.
    Upload,
    /// `scp -f`: the target sends files to the client.
    Download,
}

/// A recognised legacy scp exec command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScpCommand {
    pub direction: Direction,
    /// `-r`: directories may follow as `D`/`E` records.
    pub recursive: bool,
    /// `-d`: the path must be a directory (the client sends several files).
    pub directory: bool,
    /// The one path operand, unquoted as the remote shell would.
    pub path: String,
}

/// Recognises the remote side of legacy scp: `scp [options] -t [--] PATH` or
/// `-f`.
///
/// Options seen in practice from OpenSSH: -v -r -p -d -t -f, combined or
/// separate (e.g. `scp -r -t -- /tmp/x`, `scp -v -d -t /tmp`, `scp -pt path`);
/// options end at the first operand, as with the BSD `getopt` scp uses. The
/// command is split into words with POSIX shell quoting (single quotes,
/// double quotes, backslash escapes). Leading `/usr/bin/scp` also counts as
/// scp.
///
/// Returns `None` for anything else: another program, both or neither of
/// `-t`/`-f`, an unknown option, no path or more than one, an empty path, and
/// any command the shell would read as more than a simple command — an
/// unquoted `;`, `&`, `|`, `<`, `>`, `(`, `)`, a `#` comment, any `$` or
/// backquote outside single quotes — or any control character, even quoted.
/// A command this function cannot read with certainty is not reported as
/// scp at all, so nothing else can hide behind a file transfer.
pub fn parse_command(command: &str) -> Option<ScpCommand> {
    let words = shell_words(command)?;
    let (program, arguments) = words.split_first()?;
    if program != "scp" && program != "/usr/bin/scp" {
        return None;
    }

    let mut sink = false;
    let mut source = false;
    let mut recursive = false;
    let mut directory = false;
    let mut operands = arguments;
    while let Some((word, after)) = operands.split_first() {
        if word == "--" {
            operands = after;
            break;
        }
        // A lone "-" is an operand to getopt, not an option.
        let Some(letters) = word.strip_prefix('-').filter(|l| !l.is_empty()) else {
            break;
        };
        for letter in letters.chars() {
            match letter {
                't' => sink = true,
                'f' => source = true,
                'r' => recursive = true,
                'd' => directory = true,
                'v' | 'p' => {}
                _ => return None,
            }
        }
        operands = after;
    }

    let [path] = operands else {
        return None;
    };
    if path.is_empty() {
        return None;
    }
    let direction = match (sink, source) {
        (true, false) => Direction::Upload,
        (false, true) => Direction::Download,
        (true, true) | (false, false) => return None,
    };
    Some(ScpCommand {
        direction,
        recursive,
        directory,
        path: path.clone(),
    })
}

/// Splits a command line into words the way a POSIX shell would, or `None`
/// when the line is more than a plain command with literal words (see
/// [`parse_command`]).
fn shell_words(command: &str) -> Option<Vec<String>> {
    let mut words = Vec::new();
    let mut word = String::new();
    // Whether a word has begun: `''` is an empty word, not nothing.
    let mut in_word = false;
    let mut chars = command.chars();
    while let Some(c) = chars.next() {
        match c {
            ' ' | '\t' => {
                if in_word {
                    words.push(mem::take(&mut word));
                    in_word = false;
                }
            }
            '\'' => {
                in_word = true;
                loop {
                    match literal(chars.next()?)? {
                        '\'' => break,
                        c => word.push(c),
                    }
                }
            }
            '"' => {
                in_word = true;
                loop {
                    match literal(chars.next()?)? {
                        '"' => break,
                        // Inside double quotes a backslash only escapes these;
                        // before anything else it is itself.
                        '\\' => match literal(chars.next()?)? {
                            escaped @ ('$' | '`' | '"' | '\\') => word.push(escaped),
                            other => {
                                word.push('\\');
                                word.push(other);
                            }
                        },
                        // Expansion and command substitution: not literal.
                        '$' | '`' => return None,
                        c => word.push(c),
                    }
                }
            }
            '\\' => {
                in_word = true;
                word.push(literal(chars.next()?)?);
            }
            ';' | '&' | '|' | '<' | '>' | '(' | ')' | '$' | '`' => return None,
            '#' if !in_word => return None,
            c => {
                in_word = true;
                word.push(literal(c)?);
            }
        }
    }
    if in_word {
        words.push(word);
    }
    Some(words)
}

/// `c`, unless it is a control character: a newline ends a shell command,
/// and none of them belongs in a logged path.
fn literal(c: char) -> Option<char> {
    (!c.is_control()).then_some(c)
}

/// The directory a download's files land relative to: the parent of the
/// requested path, `.` for a bare name, `/` for `/x`. Trailing slashes are
/// ignored, as the source ignores them (`/etc/` arrives as `D0755 0 etc`).
///
/// Pass this, not the requested path, to [`SourceParser::new`] for a
/// [`Direction::Download`]: `scp -f /etc/hostname` sends a `C` record named
/// `hostname`, to be logged as `/etc/hostname`.
pub fn download_base(path: &str) -> String {
    let trimmed = path.trim_end_matches('/');
    if trimmed.is_empty() {
        return if path.is_empty() { "." } else { "/" }.to_owned();
    }
    match trimmed.rsplit_once('/') {
        None => ".".to_owned(),
        Some((parent, _name)) => match parent.trim_end_matches('/') {
            "" => "/".to_owned(),
            parent => parent.to_owned(),
        },
    }
}

/// One thing that happened in the source's stream.
#[derive(Debug, PartialEq, Eq)]
pub enum Event<'a> {
    /// A `C` record: a file begins. `path` is the name joined onto the base
    /// and the current directory stack (see [`SourceParser::new`]).
    FileStart { path: String, mode: u32, size: u64 },
    /// File content bytes, in order, borrowed from the input chunk; never
    /// empty.
    Data(&'a [u8]),
    /// The file's bytes all passed and the source sent its `\0` ack after
    /// them. `sha256` is the lowercase hex digest of exactly `size` bytes.
    FileEnd {
        path: String,
        size: u64,
        sha256: String,
    },
    /// The source reported an error (a `\x01` or `\x02` line) instead of the
    /// ack after a file's data, or in place of a record. `path` is the file
    /// in progress, if any; `fatal` for `\x02`.
    SourceError {
        path: Option<String>,
        message: String,
        fatal: bool,
    },
    /// A `D` record: a directory is entered (pushed onto the stack).
    DirStart { path: String, mode: u32 },
    /// An `E` record: the innermost directory is left.
    DirEnd,
    /// The stream broke the protocol: a line over 4096 bytes without a
    /// newline, a bad mode or size, a bad name (empty, `.`, `..`, with a `/`
    /// or a NUL), an `E` with nothing to pop, an unknown record type, or a
    /// byte other than an ack after a file's data. Parsing stops for good:
    /// every later `feed` emits nothing. `reason` is one short line.
    Unparsable { reason: String },
}

/// Follows the source side of a legacy scp stream and reports its files.
///
/// Every [`Event::FileStart`] is closed by exactly one of
/// [`Event::FileEnd`], an [`Event::SourceError`] with its path, or
/// [`SourceParser::finish`] returning it; an [`Event::Unparsable`] in the
/// middle of a file leaves it to `finish`.
pub struct SourceParser {
    /// The normalised base with a trailing `/`, or empty for a relative base.
    prefix: String,
    /// Names of the directories entered by `D` records, outermost first.
    dirs: Vec<String>,
    /// Bytes in `dirs`, one separator per name included.
    dirs_len: usize,
    state: State,
    /// The record or message line being read; reused, at most `MAX_LINE`.
    line: Vec<u8>,
}

/// Where in the stream the parser is.
enum State {
    /// At a record boundary, or inside a record line (in `line`).
    Record,
    /// Inside a file's content.
    Data(FileInProgress),
    /// After a file's content: the next byte is the source's verdict.
    Ack(FileInProgress),
    /// Reading the error line sent instead of the ack (in `line`).
    AckMessage { file: FileInProgress, fatal: bool },
    /// After an `Unparsable` or `finish`: input is ignored. `unfinished` is
    /// the file that was in progress, for `finish`.
    Stopped { unfinished: Option<(String, u64)> },
}

struct FileInProgress {
    path: String,
    size: u64,
    /// Content bytes still to come.
    remaining: u64,
    hasher: Sha256,
}

/// How far reading a line got.
enum LineProgress<'a> {
    /// The line is in `SourceParser::line`; the input after its newline.
    Complete(&'a [u8]),
    /// The input ran out first; the part read is kept.
    Partial,
    /// More than `MAX_LINE` bytes without a newline.
    TooLong,
}

/// The fields of a `C` or `D` record.
struct Entry<'a> {
    mode: u32,
    size: u64,
    name: &'a [u8],
}

impl SourceParser {
    /// A parser for a stream that has not started.
    ///
    /// `base` is used only to build the logged paths: a file's path is
    /// `base/dir/…/name`, with duplicate slashes collapsed, or just the
    /// relative `dir/…/name` when `base` is empty or `.`. For an upload pass
    /// the [`ScpCommand`] path; for a download pass
    /// [`download_base`]`(path)`, because the source names each file by its
    /// last component only.
    pub fn new(base: &str) -> SourceParser {
        let prefix = if base.is_empty() || base == "." {
            String::new()
        } else {
            collapse_slashes(&format!("{base}/"))
        };
        SourceParser {
            prefix,
            dirs: Vec::new(),
            dirs_len: 0,
            state: State::Record,
            line: Vec::new(),
        }
    }

    /// Feeds the next chunk of the SOURCE's stream; calls `out` for each
    /// event, in order. Chunks may split the stream anywhere. Never panics on
    /// any input; never allocates in proportion to a file's size.
    pub fn feed<'a>(&mut self, chunk: &'a [u8], out: &mut impl FnMut(Event<'a>)) {
        let mut rest = chunk;
        while !rest.is_empty() {
            // The state is moved out so each step can consume it (a file in
            // progress moves from `Data` to `Ack` to done) and put back its
            // successor.
            let state = mem::replace(&mut self.state, State::Record);
            let (next, after) = match state {
                State::Record => self.read_record(rest, out),
                State::Data(file) => read_data(file, rest, out),
                State::Ack(file) => read_ack(file, rest, out),
                State::AckMessage { file, fatal } => self.read_ack_message(file, fatal, rest, out),
                stopped @ State::Stopped { .. } => (stopped, &[][..]),
            };
            self.state = next;
            rest = after;
        }
    }

    /// The stream ended (EOF). Returns the file in progress, if any, as
    /// (path, bytes seen so far) so the caller can log it as failed. After
    /// this the parser is done: `feed` ignores input and `finish` returns
    /// `None`.
    pub fn finish(&mut self) -> Option<(String, u64)> {
        let state = mem::replace(&mut self.state, State::Stopped { unfinished: None });
        match state {
            State::Record => None,
            State::Data(file) => Some((file.path, file.size - file.remaining)),
            State::Ack(file) | State::AckMessage { file, .. } => Some((file.path, file.size)),
            State::Stopped { unfinished } => unfinished,
        }
    }

    /// Appends `input` up to its first newline to `self.line`.
    fn collect_line<'a>(&mut self, input: &'a [u8]) -> LineProgress<'a> {
        let newline = input.iter().position(|&b| b == b'\n');
        let part_len = newline.unwrap_or(input.len());
        if self.line.len() + part_len > MAX_LINE {
            return LineProgress::TooLong;
        }
        // `part_len` is a position in `input` or its length: in bounds.
        let (part, after) = input.split_at(part_len);
        self.line.extend_from_slice(part);
        match after.split_first() {
            Some((_newline, after)) => LineProgress::Complete(after),
            None => LineProgress::Partial,
        }
    }

    fn read_record<'a>(
        &mut self,
        input: &'a [u8],
        out: &mut impl FnMut(Event<'a>),
    ) -> (State, &'a [u8]) {
        match self.collect_line(input) {
            LineProgress::Partial => (State::Record, &[]),
            LineProgress::TooLong => (stop("record line over 4096 bytes", None, out), &[]),
            LineProgress::Complete(after) => {
                let line = mem::take(&mut self.line);
                let next = self.record(&line, out);
                self.line = line;
                self.line.clear();
                (next, after)
            }
        }
    }

    /// Acts on one complete record line; returns the state after it.
    fn record<'a>(&mut self, line: &[u8], out: &mut impl FnMut(Event<'a>)) -> State {
        let Some((&kind, body)) = line.split_first() else {
            return stop("empty record line", None, out);
        };
        match kind {
            b'C' => self.start_file(body, out),
            b'D' => self.start_dir(body, out),
            b'E' => {
                // OpenSSH's sink ignores anything after the `E`; so do we.
                let Some(left) = self.dirs.pop() else {
                    return stop("E record with no directory to leave", None, out);
                };
                self.dirs_len -= left.len() + 1;
                out(Event::DirEnd);
                State::Record
            }
            // Times for the next record: the sink's business, not the log's.
            // Not checked, so a stream the sink accepts is never refused here.
            b'T' => State::Record,
            1 | 2 => {
                out(Event::SourceError {
                    path: None,
                    message: String::from_utf8_lossy(body).into_owned(),
                    fatal: kind == 2,
                });
                State::Record
            }
            other => stop(&format!("unknown record type 0x{other:02x}"), None, out),
        }
    }

    fn start_file<'a>(&mut self, body: &[u8], out: &mut impl FnMut(Event<'a>)) -> State {
        let entry = match parse_entry(body) {
            Ok(entry) => entry,
            Err(what) => return stop(&format!("{what} in C record"), None, out),
        };
        let path = self.path_of(entry.name);
        out(Event::FileStart {
            path: path.clone(),
            mode: entry.mode,
            size: entry.size,
        });
        let file = FileInProgress {
            path,
            size: entry.size,
            remaining: entry.size,
            hasher: Sha256::new(),
        };
        if entry.size == 0 {
            State::Ack(file)
        } else {
            State::Data(file)
        }
    }

    fn start_dir<'a>(&mut self, body: &[u8], out: &mut impl FnMut(Event<'a>)) -> State {
        // The size of a D record is meaningless (OpenSSH sends 0 and its sink
        // ignores it) but must still be well formed.
        let entry = match parse_entry(body) {
            Ok(entry) => entry,
            Err(what) => return stop(&format!("{what} in D record"), None, out),
        };
        let name = String::from_utf8_lossy(entry.name).into_owned();
        if self.dirs_len + name.len() + 1 > MAX_DIR_PATH {
            return stop("directory path over 16 KiB", None, out);
        }
        let path = self.path_of(entry.name);
        self.dirs_len += name.len() + 1;
        self.dirs.push(name);
        out(Event::DirStart {
            path,
            mode: entry.mode,
        });
        State::Record
    }

    fn read_ack_message<'a>(
        &mut self,
        file: FileInProgress,
        fatal: bool,
        input: &'a [u8],
        out: &mut impl FnMut(Event<'a>),
    ) -> (State, &'a [u8]) {
        match self.collect_line(input) {
            LineProgress::Partial => (State::AckMessage { file, fatal }, &[]),
            LineProgress::TooLong => {
                let unfinished = Some((file.path, file.size));
                (stop("error line over 4096 bytes", unfinished, out), &[])
            }
            LineProgress::Complete(after) => {
                out(Event::SourceError {
                    path: Some(file.path),
                    message: String::from_utf8_lossy(&self.line).into_owned(),
                    fatal,
                });
                self.line.clear();
                (State::Record, after)
            }
        }
    }

    /// The logged path of `name` in the current directory.
    fn path_of(&self, name: &[u8]) -> String {
        let mut path = String::with_capacity(self.prefix.len() + self.dirs_len + name.len());
        path.push_str(&self.prefix);
        for dir in &self.dirs {
            path.push_str(dir);
            path.push('/');
        }
        path.push_str(&String::from_utf8_lossy(name));
        path
    }
}

/// Passes file content through the hash and out as `Data`.
fn read_data<'a>(
    mut file: FileInProgress,
    input: &'a [u8],
    out: &mut impl FnMut(Event<'a>),
) -> (State, &'a [u8]) {
    let take = usize::try_from(file.remaining).map_or(input.len(), |left| left.min(input.len()));
    // `take` is at most `input.len()`: in bounds.
    let (content, after) = input.split_at(take);
    file.hasher.update(content);
    file.remaining -= content.len() as u64;
    if !content.is_empty() {
        out(Event::Data(content));
    }
    if file.remaining == 0 {
        (State::Ack(file), after)
    } else {
        (State::Data(file), after)
    }
}

/// Reads the byte after a file's content: `\0`, or the start of an error.
fn read_ack<'a>(
    file: FileInProgress,
    input: &'a [u8],
    out: &mut impl FnMut(Event<'a>),
) -> (State, &'a [u8]) {
    let Some((&verdict, after)) = input.split_first() else {
        return (State::Ack(file), input);
    };
    match verdict {
        0 => {
            out(Event::FileEnd {
                path: file.path,
                size: file.size,
                sha256: hex::encode(file.hasher.finalize()),
            });
            (State::Record, after)
        }
        1 | 2 => (
            State::AckMessage {
                file,
                fatal: verdict == 2,
            },
            after,
        ),
        other => {
            let reason = format!("byte 0x{other:02x} after file data instead of an ack");
            (stop(&reason, Some((file.path, file.size)), out), &[])
        }
    }
}

/// Reports the broken protocol and returns the state that ignores the rest.
fn stop<'a>(
    reason: &str,
    unfinished: Option<(String, u64)>,
    out: &mut impl FnMut(Event<'a>),
) -> State {
    out(Event::Unparsable {
        reason: reason.to_owned(),
    });
    State::Stopped { unfinished }
}

/// Parses `<mode> <size> <name>`, the body of a `C` or `D` record, by the
/// rules of OpenSSH's sink: exactly four octal digits, one space, decimal
/// digits that fit an `off_t`, one space, a name that is a single path
/// component.
fn parse_entry(body: &[u8]) -> Result<Entry<'_>, &'static str> {
    const BAD_MODE: &str = "bad mode";
    const BAD_SIZE: &str = "bad size";
    let (mode_digits, rest) = body.split_at_checked(4).ok_or(BAD_MODE)?;
    let mode = mode_digits
        .iter()
        .try_fold(0u32, |mode, &digit| match digit {
            b'0'..=b'7' => Some(mode << 3 | u32::from(digit - b'0')),
            _ => None,
        })
        .ok_or(BAD_MODE)?;
    let rest = rest.strip_prefix(b" ").ok_or(BAD_MODE)?;

    let digits = rest.iter().take_while(|b| b.is_ascii_digit()).count();
    // `digits` counts a prefix of `rest`: in bounds.
    let (size_digits, rest) = rest.split_at(digits);
    if size_digits.is_empty() {
        return Err(BAD_SIZE);
    }
    let size = size_digits
        .iter()
        .try_fold(0u64, |size, &digit| {
            size.checked_mul(10)?.checked_add(u64::from(digit - b'0'))
        })
        .filter(|&size| size <= MAX_SIZE)
        .ok_or(BAD_SIZE)?;
    let name = rest.strip_prefix(b" ").ok_or(BAD_SIZE)?;

    // A name must not reach outside the target (CVE-2018-20685, CVE-2019-6111).
    if name.is_empty() || name == b"." || name == b".." || name.contains(&b'/') || name.contains(&0)
    {
        return Err("bad name");
    }
    Ok(Entry { mode, size, name })
}

fn collapse_slashes(path: &str) -> String {
    let mut collapsed = String::with_capacity(path.len());
    for c in path.chars() {
        if c == '/' && collapsed.ends_with('/') {
            continue;
        }
        collapsed.push(c);
    }
    collapsed
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An event with the borrow gone and neighbouring `Data` merged, so runs
    /// over differently split input compare equal.
    #[derive(Debug, Clone, PartialEq, Eq)]
    enum Seen {
        FileStart(String, u32, u64),
        Data(Vec<u8>),
        FileEnd(String, u64, String),
        SourceError(Option<String>, String, bool),
        DirStart(String, u32),
        DirEnd,
        Unparsable(String),
    }

    fn record(seen: &mut Vec<Seen>, event: Event<'_>) {
        let owned = match event {
            Event::FileStart { path, mode, size } => Seen::FileStart(path, mode, size),
            Event::Data(bytes) => {
                assert!(!bytes.is_empty(), "empty Data event");
                if let Some(Seen::Data(previous)) = seen.last_mut() {
                    previous.extend_from_slice(bytes);
                    return;
                }
                Seen::Data(bytes.to_vec())
            }
            Event::FileEnd { path, size, sha256 } => Seen::FileEnd(path, size, sha256),
            Event::SourceError {
                path,
                message,
                fatal,
            } => Seen::SourceError(path, message, fatal),
            Event::DirStart { path, mode } => Seen::DirStart(path, mode),
            Event::DirEnd => Seen::DirEnd,
            Event::Unparsable { reason } => Seen::Unparsable(reason),
        };
        seen.push(owned);
    }

    /// Feeds the chunks in order, then finishes.
    fn run<'c>(
        base: &str,
        chunks: impl IntoIterator<Item = &'c [u8]>,
    ) -> (Vec<Seen>, Option<(String, u64)>) {
        let mut parser = SourceParser::new(base);
        let mut seen = Vec::new();
        for chunk in chunks {
            parser.feed(chunk, &mut |event| record(&mut seen, event));
        }
        let unfinished = parser.finish();
        (seen, unfinished)
    }

    fn events(base: &str, stream: &[u8]) -> Vec<Seen> {
        run(base, [stream]).0
    }

    fn sha256(bytes: &[u8]) -> String {
        hex::encode(Sha256::digest(bytes))
    }

    fn file(path: &str, mode: u32, content: &[u8]) -> Vec<Seen> {
        let size = content.len() as u64;
        let mut seen = vec![Seen::FileStart(path.into(), mode, size)];
        if !content.is_empty() {
            seen.push(Seen::Data(content.to_vec()));
        }
        seen.push(Seen::FileEnd(path.into(), size, sha256(content)));
        seen
    }

    /// splitmix64: a fixed-seed generator, so failures reproduce.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = self.0;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^ (z >> 31)
        }

        fn below(&mut self, n: usize) -> usize {
            (self.next() % n as u64) as usize
        }

        /// `stream` cut at random places into chunks of 1 to `max` bytes.
        fn chunks<'s>(&mut self, stream: &'s [u8], max: usize) -> Vec<&'s [u8]> {
            let mut chunks = Vec::new();
            let mut rest = stream;
            while !rest.is_empty() {
                let (chunk, after) = rest.split_at((1 + self.below(max)).min(rest.len()));
                chunks.push(chunk);
                rest = after;
            }
            chunks
        }
    }

    fn tree_stream() -> Vec<u8> {
        let mut stream = Vec::new();
        stream.extend_from_slice(b"T1700000000 0 1700000001 0\nD0755 0 proj\n");
        stream.extend_from_slice(b"T1700000000 0 1700000001 0\nC0644 3 a.rs\nabc\0");
        stream.extend_from_slice(b"C0600 0 empty\n\0");
        stream.extend_from_slice(b"D0700 0 sub\nC0640 2 b\n\n\n\0E\n");
        stream.extend_from_slice(b"E\n");
        stream.extend_from_slice(b"C0644 4 top.txt\n\0C\n\0\0");
        stream.extend_from_slice(b"C0644 2 gone\nxx\x01scp: gone: read error\n");
        stream.extend_from_slice(b"\x01scp: /srv/nope: No such file or directory\n");
        stream
    }

    fn tree_events() -> Vec<Seen> {
        let mut expected = vec![Seen::DirStart("/srv/proj".into(), 0o755)];
        expected.extend(file("/srv/proj/a.rs", 0o644, b"abc"));
        expected.extend(file("/srv/proj/empty", 0o600, b""));
        expected.push(Seen::DirStart("/srv/proj/sub".into(), 0o700));
        expected.extend(file("/srv/proj/sub/b", 0o640, b"\n\n"));
        expected.push(Seen::DirEnd);
        expected.push(Seen::DirEnd);
        expected.extend(file("/srv/top.txt", 0o644, b"\0C\n\0"));
        expected.push(Seen::FileStart("/srv/gone".into(), 0o644, 2));
        expected.push(Seen::Data(b"xx".to_vec()));
        expected.push(Seen::SourceError(
            Some("/srv/gone".into()),
            "scp: gone: read error".into(),
            false,
        ));
        expected.push(Seen::SourceError(
            None,
            "scp: /srv/nope: No such file or directory".into(),
            false,
        ));
        expected
    }

    #[test]
    fn single_file_is_logged_with_path_size_and_hash() {
        assert_eq!(
            events("/tmp", b"C0644 5 a.txt\nhello\0"),
            file("/tmp/a.txt", 0o644, b"hello")
        );
    }

    #[test]
    fn zero_length_file_has_no_data_and_the_empty_hash() {
        let seen = events("/tmp", b"C0600 0 empty\n\0");
        assert_eq!(seen, file("/tmp/empty", 0o600, b""));
        assert_eq!(
            seen.last(),
            Some(&Seen::FileEnd(
                "/tmp/empty".into(),
                0,
                "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855".into()
            ))
        );
    }

    #[test]
    fn content_that_looks_like_records_is_content() {
        let content = b"line\nC0644 1 x\n\0E\n\x01oops\nD0755 0 d\n";
        let mut stream = format!("C0644 {} tricky.bin\n", content.len()).into_bytes();
        stream.extend_from_slice(content);
        stream.push(0);
        stream.extend_from_slice(b"C0644 1 next\nz\0");
        let mut expected = file("/up/tricky.bin", 0o644, content);
        expected.extend(file("/up/next", 0o644, b"z"));
        assert_eq!(events("/up", &stream), expected);
    }

    #[test]
    fn recursive_tree_with_times() {
        let stream = b"T1700000000 0 1700000000 0\nD0755 0 docs\n\
            T1700000000 0 1700000000 0\nC0644 2 a.md\nhi\0\
            C0600 3 b.md\nbye\0\
            E\n\
            T1700000000 0 1700000000 0\nC0755 1 run.sh\n#\0";
        let mut expected = vec![Seen::DirStart("/srv/docs".into(), 0o755)];
        expected.extend(file("/srv/docs/a.md", 0o644, b"hi"));
        expected.extend(file("/srv/docs/b.md", 0o600, b"bye"));
        expected.push(Seen::DirEnd);
        expected.extend(file("/srv/run.sh", 0o755, b"#"));
        assert_eq!(events("/srv", stream), expected);
    }

    #[test]
    fn every_split_gives_the_same_events() {
        let stream = tree_stream();
        let expected = tree_events();
        assert_eq!(run("/srv", [&stream[..]]), (expected.clone(), None));

        let one_by_one = run("/srv", stream.chunks(1));
        assert_eq!(one_by_one, (expected.clone(), None), "one byte at a time");

        for cut in 0..=stream.len() {
            let (head, tail) = stream.split_at(cut);
            assert_eq!(
                run("/srv", [head, tail]),
                (expected.clone(), None),
                "cut at {cut}"
            );
        }

        let mut rng = Rng(0x5C9);
        for round in 0..500 {
            let chunks = rng.chunks(&stream, 1 + round % 40);
            assert_eq!(
                run("/srv", chunks),
                (expected.clone(), None),
                "round {round}"
            );
        }
    }

    #[test]
    fn large_file_hash_matches_and_data_is_borrowed_not_copied() {
        let mut rng = Rng(7);
        let content: Vec<u8> = (0..300_000).map(|_| rng.next() as u8).collect();
        let mut stream = format!("C0644 {} big.bin\n", content.len()).into_bytes();
        stream.extend_from_slice(&content);
        stream.push(0);

        let mut parser = SourceParser::new("/data");
        let mut seen = Vec::new();
        for chunk in rng.chunks(&stream, 70_000) {
            let range = chunk.as_ptr_range();
            parser.feed(chunk, &mut |event| {
                if let Event::Data(bytes) = &event {
                    let inside =
                        range.start <= bytes.as_ptr() && bytes.as_ptr_range().end <= range.end;
                    assert!(inside, "Data must borrow from the chunk fed");
                }
                record(&mut seen, event);
            });
        }
        assert_eq!(parser.finish(), None);
        assert_eq!(seen, file("/data/big.bin", 0o644, &content));
    }

    #[test]
    fn source_errors_after_data_and_at_record_position() {
        let stream = b"C0644 3 a\nabc\x01scp: a: Input/output error\n\
            C0644 1 b\nB\0\
            \x02scp: fatal: lost\n";
        let mut expected = vec![
            Seen::FileStart("/t/a".into(), 0o644, 3),
            Seen::Data(b"abc".to_vec()),
            Seen::SourceError(
                Some("/t/a".into()),
                "scp: a: Input/output error".into(),
                false,
            ),
        ];
        expected.extend(file("/t/b", 0o644, b"B"));
        expected.push(Seen::SourceError(None, "scp: fatal: lost".into(), true));
        assert_eq!(events("/t", stream), expected);

        let fatal = events("/t", b"C0644 1 c\nc\x02broken pipe\n");
        assert_eq!(
            fatal.last(),
            Some(&Seen::SourceError(
                Some("/t/c".into()),
                "broken pipe".into(),
                true
            ))
        );
    }

    #[test]
    fn protocol_breaks_are_unparsable() {
        let long_line = [b"C0644 1 ".as_slice(), &[b'n'; 5000]].concat();
        let cases: [(&str, &[u8], &str); 14] = [
            ("dot-dot name", b"C0644 1 ../x\nx\0", "bad name in C record"),
            ("name is ..", b"D0755 0 ..\n", "bad name in D record"),
            ("name is .", b"C0644 1 .\nx\0", "bad name in C record"),
            ("slash in name", b"C0644 1 a/b\nx\0", "bad name in C record"),
            ("empty name", b"C0644 1 \nx\0", "bad name in C record"),
            ("nul in name", b"C0644 1 a\0b\nx\0", "bad name in C record"),
            (
                "size not a number",
                b"C0644 abc f\n",
                "bad size in C record",
            ),
            (
                "size past off_t",
                b"C0644 9223372036854775808 f\n",
                "bad size in C record",
            ),
            ("mode not octal", b"C0684 1 f\nx\0", "bad mode in C record"),
            ("mode too short", b"C644 1 f\nx\0", "bad mode in C record"),
            ("5000-byte line", &long_line, "record line over 4096 bytes"),
            ("E at top", b"E\n", "E record with no directory to leave"),
            ("unknown record", b"X123\n", "unknown record type 0x58"),
            ("empty line", b"\n", "empty record line"),
        ];
        for (what, stream, reason) in cases {
            assert_eq!(
                events("/t", stream),
                [Seen::Unparsable(reason.into())],
                "{what}"
            );
        }

        // A record line of exactly 4096 bytes is still fine.
        let name = "n".repeat(MAX_LINE - "C0644 1 ".len());
        let stream = format!("C0644 1 {name}\nx\0");
        assert_eq!(events("", stream.as_bytes()), file(&name, 0o644, b"x"));
    }

    #[test]
    fn bad_ack_stops_and_finish_reports_the_file() {
        let (seen, unfinished) = run("/t", [b"C0644 1 f\nxZC0644 1 g\ny\0".as_slice()]);
        assert_eq!(
            seen,
            [
                Seen::FileStart("/t/f".into(), 0o644, 1),
                Seen::Data(b"x".to_vec()),
                Seen::Unparsable("byte 0x5a after file data instead of an ack".into()),
            ]
        );
        assert_eq!(unfinished, Some(("/t/f".into(), 1)));
    }

    #[test]
    fn feeding_after_unparsable_emits_nothing() {
        let mut parser = SourceParser::new("/t");
        let mut seen = Vec::new();
        parser.feed(b"E\n", &mut |event| record(&mut seen, event));
        assert_eq!(seen.len(), 1);
        for chunk in [
            &b"C0644 1 ok\nx\0"[..],
            b"D0755 0 d\n",
            b"\x01msg\n",
            b"E\n",
        ] {
            parser.feed(chunk, &mut |event| record(&mut seen, event));
        }
        assert_eq!(
            seen,
            [Seen::Unparsable(
                "E record with no directory to leave".into()
            )]
        );
        assert_eq!(parser.finish(), None);
    }

    #[test]
    fn deep_directory_stack_is_bounded() {
        let level = b"D0755 0 dddddddddddddddddddddddddddddddddddddddddddddddddddddddddddd\n";
        let stream = level.repeat(MAX_DIR_PATH / 60 + 10);
        let seen = events("/t", &stream);
        assert_eq!(
            seen.last(),
            Some(&Seen::Unparsable("directory path over 16 KiB".into()))
        );
        assert!(seen.len() > 200, "real depths must pass: {}", seen.len());
    }

    #[test]
    fn finish_reports_the_file_in_progress() {
        let (seen, unfinished) = run("/t", [&b"C0644 10 f\n0123"[..], b"45"]);
        assert_eq!(
            seen,
            [
                Seen::FileStart("/t/f".into(), 0o644, 10),
                Seen::Data(b"012345".to_vec())
            ]
        );
        assert_eq!(unfinished, Some(("/t/f".into(), 6)));

        // All bytes in but no ack, or half an error line: still unfinished.
        assert_eq!(
            run("/t", [&b"C0644 2 f\nab"[..]]).1,
            Some(("/t/f".into(), 2))
        );
        assert_eq!(
            run("/t", [&b"C0644 2 f\nab\x01half"[..]]).1,
            Some(("/t/f".into(), 2))
        );

        // Between records, or halfway through a record line, nothing is.
        assert_eq!(run("/t", [&b"C0644 1 f\nx\0"[..]]).1, None);
        assert_eq!(run("/t", [&b"C0644 1 f"[..]]), (vec![], None));

        // finish ends the parser.
        let mut parser = SourceParser::new("/t");
        parser.feed(b"C0644 3 f\nab", &mut |_| {});
        assert_eq!(parser.finish(), Some(("/t/f".into(), 2)));
        assert_eq!(parser.finish(), None);
        let mut after = 0;
        parser.feed(b"c\0C0644 1 g\nx\0", &mut |_| after += 1);
        assert_eq!(after, 0);
    }

    #[test]
    fn logged_paths_follow_the_base() {
        let stream = b"D0755 0 d\nC0644 1 f\nx\0E\n";
        let cases = [
            ("", "d", "d/f"),
            (".", "d", "d/f"),
            ("/", "/d", "/d/f"),
            ("/tmp/", "/tmp/d", "/tmp/d/f"),
            ("//srv//up//", "/srv/up/d", "/srv/up/d/f"),
            ("rel/dir", "rel/dir/d", "rel/dir/d/f"),
        ];
        for (base, dir, path) in cases {
            let mut expected = vec![Seen::DirStart(dir.into(), 0o755)];
            expected.extend(file(path, 0o644, b"x"));
            expected.push(Seen::DirEnd);
            assert_eq!(events(base, stream), expected, "base {base:?}");
        }
    }

    #[test]
    fn download_base_is_the_parent() {
        let cases = [
            ("/etc/hostname", "/etc"),
            ("hostname", "."),
            ("/x", "/"),
            ("a/b", "a"),
            ("a//b", "a"),
            ("/etc/", "/"),
            ("/srv/data/", "/srv"),
            ("/", "/"),
            ("", "."),
            ("~/notes.txt", "~"),
            ("/var/log/*.log", "/var/log"),
        ];
        for (path, base) in cases {
            assert_eq!(download_base(path), base, "{path:?}");
        }
        assert_eq!(
            events(&download_base("/etc/hostname"), b"C0644 2 hostname\nh\n\0"),
            file("/etc/hostname", 0o644, b"h\n")
        );
    }

    #[test]
    fn parse_command_accepts_what_openssh_sends() {
        use Direction::{Download, Upload};
        let cases = [
            ("scp -t /tmp", Upload, false, "/tmp"),
            ("scp -t -- '/tmp/my file'", Upload, false, "/tmp/my file"),
            ("scp -r -d -t -- /srv", Upload, true, "/srv"),
            ("scp -r -t -- /tmp/x", Upload, true, "/tmp/x"),
            ("scp -v -d -t /tmp", Upload, false, "/tmp"),
            ("scp -pt path", Upload, false, "path"),
            ("scp -rpt dir", Upload, true, "dir"),
            ("/usr/bin/scp -t .", Upload, false, "."),
            ("scp -t -- -dash", Upload, false, "-dash"),
            ("scp -t my\\ file", Upload, false, "my file"),
            ("scp -t 'it'\\''s'", Upload, false, "it's"),
            ("  scp\t-t   /a  ", Upload, false, "/a"),
            ("scp -f /etc/passwd", Download, false, "/etc/passwd"),
            ("scp -v -f -- \"x y\"", Download, false, "x y"),
            ("scp -r -f \"a\\\"b\\\\c\\d\"", Download, true, "a\"b\\c\\d"),
            ("scp -f '$HOME;`x`'", Download, false, "$HOME;`x`"),
            ("scp -f ~/notes.txt", Download, false, "~/notes.txt"),
            ("scp -f /var/log/*.log", Download, false, "/var/log/*.log"),
            ("scp -f a#b", Download, false, "a#b"),
            ("scp -f 'ünï cødé'", Download, false, "ünï cødé"),
        ];
        for (command, direction, recursive, path) in cases {
            let expected = ScpCommand {
                direction,
                recursive,
                directory: command.contains(" -d "),
                path: path.into(),
            };
            assert_eq!(parse_command(command), Some(expected), "{command}");
        }
    }

    #[test]
    fn parse_command_rejects_everything_else() {
        let cases = [
            "scp -t /a /b",
            "scp -t",
            "scp -t --",
            "scp -t ''",
            "scp -x -t /a",
            "scp -P 22 -t /a",
            "rsync --server -vlogDtpre.iLsfxC . /a",
            "scp -t /a; reboot",
            "scp -t /a;reboot",
            "scp -t /a && reboot",
            "scp -t /a | tee x",
            "scp -t /a > /dev/null",
            "scp -t $(reboot)",
            "scp -t `reboot`",
            "scp -t \"$(reboot)\"",
            "scp -t \"`reboot`\"",
            "scp -t $HOME",
            "scp -t /a # comment",
            "scp -t /a\nreboot",
            "scp -t '/a\nb'",
            "scp -t /a\r",
            "scp -f -t /a",
            "scp -ft /a",
            "scp -r /a",
            "scp /a /b",
            "scp -t /a -r",
            "scp -t 'unterminated",
            "scp -t \"unterminated",
            "scp -t trailing\\",
            "sudo scp -t /a",
            "FOO=1 scp -t /a",
            "/usr/local/bin/scp -t /a",
            "scpx -t /a",
            "scp",
            "",
            "   ",
        ];
        for command in cases {
            assert_eq!(parse_command(command), None, "{command:?}");
        }
    }

    /// A well-formed stream of random records with up to three random byte
    /// edits, so fuzz runs reach the states deep in the protocol.
    fn plausible_stream(rng: &mut Rng) -> Vec<u8> {
        let mut stream = Vec::new();
        let mut depth = 0;
        for _ in 0..rng.below(12) {
            match rng.below(6) {
                0 | 1 => {
                    let size = rng.below(40);
                    let record = format!("C0644 {size} f{}\n", rng.below(9));
                    stream.extend_from_slice(record.as_bytes());
                    stream.extend((0..size).map(|_| rng.next() as u8));
                    let verdict: &[u8] = if rng.below(4) == 0 {
                        b"\x01read error\n"
                    } else {
                        b"\0"
                    };
                    stream.extend_from_slice(verdict);
                }
                2 => {
                    stream.extend_from_slice(b"D0755 0 d\n");
                    depth += 1;
                }
                3 if depth > 0 => {
                    stream.extend_from_slice(b"E\n");
                    depth -= 1;
                }
                3 | 4 => stream.extend_from_slice(b"T1700000000 0 1700000000 0\n"),
                _ => stream.extend_from_slice(b"\x01scp: warning\n"),
            }
        }
        for _ in 0..rng.below(4) {
            if stream.is_empty() {
                break;
            }
            let at = rng.below(stream.len());
            match rng.below(3) {
                0 => stream[at] = rng.next() as u8,
                1 => {
                    stream.remove(at);
                }
                _ => stream.insert(at, rng.next() as u8),
            }
        }
        stream
    }

    /// Record fragments and random bytes in any order.
    fn soup_stream(rng: &mut Rng) -> Vec<u8> {
        const PIECES: [&[u8]; 14] = [
            b"C0644 ",
            b"D0755 0 ",
            b"E\n",
            b"T1 0 2 0\n",
            b"\x01err\n",
            b"\x02fatal\n",
            b"3 ",
            b"18446744073709551616 ",
            b"name",
            b"..",
            b"/",
            b"\n",
            b"\0",
            b"xyz",
        ];
        let mut stream = Vec::new();
        for _ in 0..rng.below(64) {
            if rng.below(3) == 0 {
                stream.extend((0..rng.below(20)).map(|_| rng.next() as u8));
            } else {
                stream.extend_from_slice(PIECES[rng.below(PIECES.len())]);
            }
        }
        stream
    }

    #[test]
    fn random_input_never_panics() {
        let mut rng = Rng(2024);
        for _ in 0..2000 {
            let stream = if rng.below(2) == 0 {
                plausible_stream(&mut rng)
            } else {
                soup_stream(&mut rng)
            };
            let max = 1 + rng.below(16);
            let chunks = rng.chunks(&stream, max);
            let (seen, unfinished) = run(&download_base("/x/y"), chunks);

            // What the docs promise, whatever the input: every started file
            // is closed exactly once, and nothing follows an Unparsable.
            let mut open: Option<u64> = None;
            for (index, event) in seen.iter().enumerate() {
                match event {
                    Seen::FileStart(..) => assert_eq!(open.replace(0), None, "{seen:?}"),
                    Seen::Data(bytes) => {
                        let so_far = open.as_mut().expect("Data inside a file");
                        *so_far += bytes.len() as u64;
                    }
                    Seen::FileEnd(..) | Seen::SourceError(Some(_), ..) => {
                        assert!(open.take().is_some(), "{seen:?}");
                    }
                    Seen::Unparsable(_) => assert_eq!(index + 1, seen.len(), "{seen:?}"),
                    Seen::SourceError(None, ..) | Seen::DirStart(..) | Seen::DirEnd => {
                        assert_eq!(open, None, "{seen:?}");
                    }
                }
            }
            assert_eq!(open.is_some(), unfinished.is_some(), "{seen:?}");
        }
    }
}
