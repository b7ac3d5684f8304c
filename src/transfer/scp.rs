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
/// options end at the first operand, as with the BSD `getopt` scp uses.
/// OpenSSH's scp quotes nothing itself (`scp -O f 'host:/a b'` runs
/// `scp -t /a b`): the person quotes for the remote shell, so the command is
/// split into words as that shell would ([`super::shell`]). Leading
/// `/usr/bin/scp` also counts as scp.
///
/// Returns `None` for anything else: another program, both or neither of
/// `-t`/`-f`, an unknown option, no path or more than one, an empty path, a
/// path whose first character is an unquoted wildcard (`scp -t *` could
/// expand to `scp -t -f secret`), and any command the shell would read as
/// more than a simple command or that holds a character some shell acts on,
/// even quoted (see [`super::shell::words`]). A command this
/// function cannot read with certainty is not reported as scp at all, so
/// nothing else can hide behind a file transfer.
pub fn parse_command(command: &str) -> Option<ScpCommand> {
    let words = super::shell::words(command)?;
    let (program, arguments) = words.split_first()?;
    if !matches!(program.literal()?, "scp" | "/usr/bin/scp") {
        return None;
    }

    let mut sink = false;
    let mut source = false;
    let mut recursive = false;
    let mut directory = false;
    let mut operands = arguments;
    while let Some((word, after)) = operands.split_first() {
        let word = &word.text;
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
    if path.text.is_empty() || path.open_start {
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
        path: path.text.clone(),
    })
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
mod tests;
