//! Standard input for the verbs that read from it: `--password-stdin` (one
//! line), `me passwd` (two lines: the current password, then the new one)
//! and `me keys add` without `--key` (one public key line); and
//! `import assets|users -`, which reads everything up to the end of input
//! (a CSV or XLSX file, at most [`MAX_IMPORT`] bytes).
//!
//! The local CLI reads the process's own standard input. Over SSH the exec
//! channel's data is the client's standard input: `ssh::admin` asks
//! [`wanted`] what the verb will read and, only if it reads something,
//! collects those lines with a [`LineCollector`] (bounded, with a deadline)
//! before the verb runs, handing them over as [`Stdin::Lines`]; for a verb
//! that reads a whole file ([`reads_all`]) it collects the bytes up to EOF
//! with an [`AllCollector`] and hands them over as [`Stdin::All`]. A verb
//! that reads nothing never waits for input.
//!
//! Every line becomes a [`Secret`] as soon as it is complete and the buffer
//! that held it is wiped. Errors never quote the input.

use std::collections::VecDeque;
use std::io::{BufRead, Read};
use std::time::Duration;

use zeroize::{Zeroize, Zeroizing};

use super::{AccountCmd, Command, ImportCmd, MeCmd, MeKeysCmd, UserCmd};
use crate::vault::Secret;

/// At most this many bytes of input, all lines together: a password or a
/// public key line is far shorter, and the bound keeps a client from
/// making the bastion buffer without end.
pub const MAX_INPUT: usize = 4096;

/// How long each line may take to arrive over SSH.
pub const LINE_TIMEOUT: Duration = Duration::from_secs(30);

/// At most this many bytes of a file piped in for `import ... -`: far more
/// than any inventory a person keeps in a spreadsheet, and a bound on what
/// the bastion holds in memory for one command.
pub const MAX_IMPORT: usize = 16 * 1024 * 1024;

/// Over SSH, how long a file piped in may go without a byte arriving...
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(60);

/// ...and how long it may take in all, so a client trickling bytes cannot
/// hold the command open for ever.
pub const TOTAL_TIMEOUT: Duration = Duration::from_secs(600);

/// Why input could not be read. No variant carries any of the input.
#[derive(Debug, thiserror::Error)]
pub enum StdinError {
    #[error(
        "no {0} on standard input: pipe it in, one line each (e.g. `printf '%s\\n' \"$PW\" | ...`, or `... < FILE` over ssh)"
    )]
    Missing(&'static str),
    #[error("standard input is longer than {MAX_INPUT} bytes: give one short line per value")]
    TooLong,
    #[error("standard input is not UTF-8 text")]
    NotUtf8,
    #[error(
        "no {0} arrived on standard input within {secs} s: pipe it in (`... < FILE`), or type it after `ssh -t`",
        secs = LINE_TIMEOUT.as_secs()
    )]
    Timeout(&'static str),
    #[error(
        "nothing on standard input: pipe the {0} in (e.g. `ssh BASTION rampart import assets - < FILE.csv`)"
    )]
    Empty(&'static str),
    #[error(
        "standard input is longer than {} MiB: split the file and import the parts",
        MAX_IMPORT / (1024 * 1024)
    )]
    TooLarge,
    #[error(
        "no data arrived on standard input for {secs} s: pipe the {0} in (`... < FILE`), and end it (EOF)",
        secs = IDLE_TIMEOUT.as_secs()
    )]
    Stalled(&'static str),
    #[error(
        "standard input did not end within {secs} s",
        secs = TOTAL_TIMEOUT.as_secs()
    )]
    TooSlow,
    #[error(
        "the {0} is read from a pipe, not a terminal: run `ssh BASTION rampart import ... - < FILE` without -t"
    )]
    Terminal(&'static str),
    #[error("cancelled")]
    Cancelled,
    #[error("cannot read standard input: {0}")]
    Read(std::io::Error),
    #[error("this verb does not read standard input")]
    NotAvailable,
}

/// Where a verb reads its input lines from.
pub enum Stdin {
    /// The process's own standard input (the local CLI).
    Process,
    /// Lines read from the SSH client before the verb ran.
    Lines(VecDeque<Secret<String>>),
    /// Everything the SSH client sent up to EOF, for a verb that reads a
    /// whole file.
    All(Vec<u8>),
    /// Nothing (over SSH, for a verb that reads nothing).
    None,
}

impl Stdin {
    /// The next line without its line end, or `None` at the end of input.
    /// May be empty.
    pub fn line(&mut self, what: &'static str) -> Result<Option<Secret<String>>, StdinError> {
        match self {
            Stdin::Process => read_process_line(&mut std::io::stdin().lock()),
            Stdin::Lines(lines) => Ok(lines.pop_front()),
            Stdin::All(_) | Stdin::None => {
                tracing::warn!("a verb read its {what} from stdin without asking for it first");
                Err(StdinError::NotAvailable)
            }
        }
    }

    /// The next line, which must be there and not be empty.
    pub fn secret(&mut self, what: &'static str) -> Result<Secret<String>, StdinError> {
        match self.line(what)? {
            Some(line) if !line.expose().is_empty() => Ok(line),
            _ => Err(StdinError::Missing(what)),
        }
    }
}

impl Stdin {
    /// Everything up to the end of input, at most [`MAX_IMPORT`] bytes and
    /// not empty.
    pub fn all(&mut self, what: &'static str) -> Result<Vec<u8>, StdinError> {
        let bytes = match self {
            Stdin::Process => read_process_all(&mut std::io::stdin().lock())?,
            Stdin::All(bytes) => std::mem::take(bytes),
            Stdin::Lines(_) | Stdin::None => {
                tracing::warn!("a verb read its {what} from stdin without asking for it first");
                return Err(StdinError::NotAvailable);
            }
        };
        if bytes.is_empty() {
            return Err(StdinError::Empty(what));
        }
        Ok(bytes)
    }
}

/// Everything from a reader, refused beyond [`MAX_IMPORT`] bytes.
fn read_process_all(reader: &mut impl Read) -> Result<Vec<u8>, StdinError> {
    let mut all = AllCollector::new();
    let mut chunk = vec![0u8; 64 * 1024];
    loop {
        match reader.read(&mut chunk) {
            Ok(0) => return Ok(all.finish()),
            Ok(n) => all.push(chunk.get(..n).unwrap_or_default())?,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(StdinError::Read(e)),
        }
    }
}

/// Collects a whole input from chunks as they arrive, up to
/// [`MAX_IMPORT`] bytes.
#[derive(Default)]
pub struct AllCollector {
    bytes: Vec<u8>,
}

impl AllCollector {
    pub fn new() -> AllCollector {
        AllCollector::default()
    }

    pub fn push(&mut self, data: &[u8]) -> Result<(), StdinError> {
        if self.bytes.len().saturating_add(data.len()) > MAX_IMPORT {
            return Err(StdinError::TooLarge);
        }
        self.bytes.extend_from_slice(data);
        Ok(())
    }

    pub fn finish(self) -> Vec<u8> {
        self.bytes
    }
}

/// One line of at most [`MAX_INPUT`] bytes from a reader.
fn read_process_line(reader: &mut impl BufRead) -> Result<Option<Secret<String>>, StdinError> {
    let mut buf = Zeroizing::new(Vec::new());
    let limit = u64::try_from(MAX_INPUT).unwrap_or(u64::MAX) + 1;
    let n = reader
        .take(limit)
        .read_until(b'\n', &mut buf)
        .map_err(StdinError::Read)?;
    if n == 0 {
        return Ok(None);
    }
    let mut collector = LineCollector::new(1, false);
    collector.push(&buf)?;
    Ok(collector.finish()?.pop_front())
}

/// What a verb reads from standard input, one name per line, in order (the
/// names appear in prompts and errors). Empty: it reads nothing.
pub fn wanted(command: &Command) -> &'static [&'static str] {
    match command {
        Command::User(UserCmd::Add {
            password_stdin: true,
            ..
        })
        | Command::User(UserCmd::Passwd {
            password_stdin: true,
            ..
        })
        | Command::Account(AccountCmd::Add {
            password_stdin: true,
            ..
        })
        | Command::Account(AccountCmd::Edit {
            password_stdin: true,
            ..
        }) => &["password"],
        Command::Me(me) => match &me.cmd {
            Some(MeCmd::Passwd { .. }) => &["current password", "new password"],
            Some(MeCmd::Keys(MeKeysCmd::Add { key: None })) => &["public key"],
            _ => &[],
        },
        _ => &[],
    }
}

/// What a verb reads as a whole file from standard input (its name in
/// errors), or `None`: `import assets|users -`.
pub fn reads_all(command: &Command) -> Option<&'static str> {
    match command {
        Command::Import(ImportCmd::Assets(args) | ImportCmd::Users(args)) if args.is_stdin() => {
            Some("import file")
        }
        _ => None,
    }
}

/// Collects lines from chunks of bytes as they arrive.
///
/// A line ends at `\n`, `\r` or `\r\n` (a terminal in raw mode, as with
/// `ssh -t`, sends `\r` for Enter). With a terminal, Backspace removes the
/// last character, Ctrl-C cancels and Ctrl-D ends the input. Bytes after
/// the last wanted line are ignored.
pub struct LineCollector {
    want: usize,
    pty: bool,
    current: Zeroizing<Vec<u8>>,
    lines: VecDeque<Secret<String>>,
    seen: usize,
    after_cr: bool,
    ended: bool,
}

impl LineCollector {
    pub fn new(want: usize, pty: bool) -> LineCollector {
        LineCollector {
            want,
            pty,
            // Room for the whole bound up front, so the buffer never moves
            // and leaves a copy of a secret behind.
            current: Zeroizing::new(Vec::with_capacity(MAX_INPUT)),
            lines: VecDeque::new(),
            seen: 0,
            after_cr: false,
            ended: false,
        }
    }

    /// Lines complete so far.
    pub fn complete(&self) -> usize {
        self.lines.len()
    }

    /// Whether nothing more is needed: every wanted line is there, or the
    /// person ended the input (Ctrl-D).
    pub fn is_done(&self) -> bool {
        self.ended || self.lines.len() >= self.want
    }

    pub fn push(&mut self, data: &[u8]) -> Result<(), StdinError> {
        for &b in data {
            if self.is_done() {
                break;
            }
            self.seen += 1;
            if self.seen > MAX_INPUT {
                return Err(StdinError::TooLong);
            }
            let after_cr = std::mem::replace(&mut self.after_cr, false);
            match b {
                b'\n' if after_cr => {}
                b'\n' => self.end_line()?,
                b'\r' => {
                    self.after_cr = true;
                    self.end_line()?;
                }
                0x03 if self.pty => return Err(StdinError::Cancelled),
                0x04 if self.pty => {
                    if !self.current.is_empty() {
                        self.end_line()?;
                    }
                    self.ended = true;
                }
                0x7f | 0x08 if self.pty => {
                    // Remove one character: its continuation bytes, then its first byte.
                    while self.current.last().is_some_and(|c| c & 0xc0 == 0x80) {
                        self.current.pop();
                    }
                    self.current.pop();
                }
                _ => self.current.push(b),
            }
        }
        Ok(())
    }

    /// The end of the input (EOF, or the channel closed): a last line
    /// without a line end counts.
    pub fn finish(mut self) -> Result<VecDeque<Secret<String>>, StdinError> {
        if !self.current.is_empty() && self.lines.len() < self.want {
            self.end_line()?;
        }
        Ok(std::mem::take(&mut self.lines))
    }

    fn end_line(&mut self) -> Result<(), StdinError> {
        let text = std::str::from_utf8(&self.current).map(str::to_string);
        self.current.zeroize();
        let text = text.map_err(|_| StdinError::NotUtf8)?;
        self.lines.push_back(Secret::new(text));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn collect(want: usize, pty: bool, chunks: &[&[u8]]) -> Result<Vec<String>, StdinError> {
        let mut c = LineCollector::new(want, pty);
        for chunk in chunks {
            c.push(chunk)?;
        }
        Ok(c.finish()?
            .into_iter()
            .map(|s| s.expose().clone())
            .collect())
    }

    #[test]
    fn lines_end_at_newline_cr_or_crlf_even_across_chunks() {
        assert_eq!(collect(1, false, &[b"pw1\n", b"rest\n"]).unwrap(), ["pw1"]);
        assert_eq!(
            collect(2, false, &[b"old\r", b"\nnew\r\n"]).unwrap(),
            ["old", "new"]
        );
        assert_eq!(collect(2, true, &[b"old\rnew\r"]).unwrap(), ["old", "new"]);
        // An empty first line is a line (`me passwd` for a user without a password).
        assert_eq!(collect(2, false, &[b"\nnew\n"]).unwrap(), ["", "new"]);
    }

    #[test]
    fn the_end_of_input_ends_the_last_line() {
        assert_eq!(collect(1, false, &[b"pw"]).unwrap(), ["pw"]);
        assert_eq!(collect(2, false, &[b"only\n"]).unwrap(), ["only"]);
        assert!(collect(1, false, &[]).unwrap().is_empty());
    }

    #[test]
    fn input_is_bounded() {
        let long = vec![b'a'; MAX_INPUT + 1];
        assert!(matches!(
            collect(1, false, &[&long]),
            Err(StdinError::TooLong)
        ));
        // Exactly the bound, newline included, is fine.
        let mut fits = vec![b'a'; MAX_INPUT - 1];
        fits.push(b'\n');
        assert_eq!(collect(1, false, &[&fits]).unwrap()[0].len(), MAX_INPUT - 1);
        // What follows the wanted lines is not counted.
        assert_eq!(collect(1, false, &[b"pw\n", &long]).unwrap(), ["pw"]);
    }

    #[test]
    fn a_terminal_can_edit_cancel_and_end() {
        assert_eq!(
            collect(1, true, &["pé\x7f\x7fw\x08x\r".as_bytes()]).unwrap(),
            ["x"]
        );
        assert!(matches!(
            collect(1, true, &[b"pw\x03"]),
            Err(StdinError::Cancelled)
        ));
        let mut c = LineCollector::new(2, true);
        c.push(b"old\x04").unwrap();
        assert!(c.is_done());
        assert_eq!(c.finish().unwrap().len(), 1);
        // Without a terminal these are ordinary bytes.
        assert_eq!(collect(1, false, &[b"a\x7fb\n"]).unwrap(), ["a\x7fb"]);
    }

    #[test]
    fn a_whole_input_is_bounded() {
        let mut all = AllCollector::new();
        all.push(&vec![b'a'; MAX_IMPORT - 1]).unwrap();
        all.push(b"b").unwrap();
        assert!(matches!(all.push(b"c"), Err(StdinError::TooLarge)));
        assert_eq!(all.finish().len(), MAX_IMPORT);

        let mut fits = std::io::Cursor::new(b"name,address\r\nx,y\n".to_vec());
        assert_eq!(
            read_process_all(&mut fits).unwrap(),
            b"name,address\r\nx,y\n"
        );
        let mut long = std::io::Cursor::new(vec![0u8; MAX_IMPORT + 1]);
        assert!(matches!(
            read_process_all(&mut long),
            Err(StdinError::TooLarge)
        ));
        assert!(matches!(
            Stdin::All(Vec::new()).all("import file"),
            Err(StdinError::Empty("import file"))
        ));
        assert_eq!(
            StdinError::TooLarge.to_string(),
            "standard input is longer than 16 MiB: split the file and import the parts"
        );
    }

    #[test]
    fn errors_do_not_quote_the_input() {
        let err = collect(1, false, &[b"secret\xff\n"]).unwrap_err();
        assert!(matches!(err, StdinError::NotUtf8));
        assert!(!err.to_string().contains("secret"));
    }

    #[test]
    fn the_process_reader_takes_one_bounded_line() {
        let mut input = std::io::Cursor::new(b"first\r\nsecond\n".to_vec());
        assert_eq!(
            read_process_line(&mut input).unwrap().unwrap().expose(),
            "first"
        );
        assert_eq!(
            read_process_line(&mut input).unwrap().unwrap().expose(),
            "second"
        );
        assert!(read_process_line(&mut input).unwrap().is_none());
        let mut long = std::io::Cursor::new(vec![b'a'; 2 * MAX_INPUT]);
        assert!(matches!(
            read_process_line(&mut long),
            Err(StdinError::TooLong)
        ));
    }
}
