//! The remote half of rsync over SSH, recognised from its exec command.
//!
//! An rsync client runs `rsync --server [--sender] FLAGS [OPTIONS] . PATH...`
//! on the far side (rsync's `server_options()`): `--sender` when the far
//! side sends (a download), one cluster of single-letter flags ending in
//! `e` and the protocol capabilities (`-logDtpre.iLsfxCIvu`), the long
//! options that the server needs to know, a `.`, then the paths. Since
//! rsync 3.2.4 it backslash-escapes the shell's characters in the paths and
//! option values, and writes a path that begins with `-` as `./-x`.
//!
//! [`parse_command`] accepts exactly that: the options rsync sends, with
//! values of the shape it sends, and paths that the remote shell can only
//! take as paths. Anything else — shell syntax or a path holding one of the
//! shell's characters, even escaped (see [`super::shell`]), an
//! option rsync does not send to a server (`--daemon`, `--config`,
//! `--log-file`, `--rsh`: each would let the person run or write more than
//! a transfer), `--secluded-args` (`-s`: the real arguments then come on
//! standard input, unseen), an rsync binary outside the system's
//! directories (one the person may have uploaded) — is not rsync to the
//! bastion: the command needs `connect` like any other. Options a person
//! passes on with `rsync -M` are refused the same way unless they are in
//! the list below.

use super::shell::{self, Word};

/// Where an rsync run by the target's shell may come from: its search path,
/// or the system's own directories (not a path the person could write to).
const PROGRAMS: &[&str] = &[
    "rsync",
    "/usr/bin/rsync",
    "/usr/local/bin/rsync",
    "/bin/rsync",
];

/// Letters of the flag cluster (`server_options()`), `s` excepted: with
/// `--secluded-args` the rest of the command line comes on standard input.
const FLAG_LETTERS: &str = "vqbunldKmOJyWHogDtUNpEAXrcCIRxSz";

/// Long options sent without a value.
const SWITCHES: &[&str] = &[
    "--append",
    "--copy-devices",
    "--copy-unsafe-links",
    "--delay-updates",
    "--delete",
    "--delete-after",
    "--delete-before",
    "--delete-delay",
    "--delete-during",
    "--delete-excluded",
    "--delete-missing-args",
    "--existing",
    "--files-from=-",
    "--force",
    "--from0",
    "--fsync",
    "--ignore-errors",
    "--ignore-existing",
    "--ignore-missing-args",
    "--inplace",
    "--list-only",
    "--log-format=%i",
    "--log-format=%i%I",
    "--log-format=%o",
    "--log-format=X",
    "--mkpath",
    "--msgs2stderr",
    "--new-compress",
    "--no-W",
    "--no-implied-dirs",
    "--no-msgs2stderr",
    "--no-r",
    "--no-relative",
    "--no-specials",
    "--numeric-ids",
    "--old-compress",
    "--only-write-batch=X",
    "--open-noatime",
    "--partial",
    "--preallocate",
    "--remove-sent-files",
    "--remove-source-files",
    "--safe-links",
    "--size-only",
    "--specials",
    "--stats",
    "--super",
    "--use-qsort",
    "--write-devices",
];

/// Long options sent as `--name=VALUE`.
const VALUED: &[&str] = &[
    "--bwlimit",
    "--checksum-choice",
    "--checksum-seed",
    "--compress-choice",
    "--compress-level",
    "--groupmap",
    "--iconv",
    "--info",
    "--max-alloc",
    "--max-delete",
    "--max-size",
    "--min-size",
    "--modify-window",
    "--skip-compress",
    "--suffix",
    "--timeout",
    "--usermap",
];

/// Long options sent as `--name VALUE` (two words).
const WITH_ARGUMENT: &[&str] = &[
    "--backup-dir",
    "--compare-dest",
    "--copy-dest",
    "--files-from",
    "--link-dest",
    "--partial-dir",
    "--temp-dir",
];

/// What a recognised `rsync --server` command does on the target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RsyncCommand {
    /// `--sender`: the target sends files (a download).
    pub sender: bool,
    /// It may remove files on the target (`--delete*`,
    /// `--remove-source-files`).
    pub deletes: bool,
    /// It reads a file list from a file on the target (`--files-from PATH`),
    /// which an upload alone would not.
    pub reads_list: bool,
}

/// Recognises the command an rsync client runs on the target; `None` for
/// anything else (see the module documentation).
pub fn parse_command(command: &str) -> Option<RsyncCommand> {
    let words = shell::words(command)?;
    let mut words = words.iter();
    if !PROGRAMS.contains(&words.next()?.literal()?) || words.next()?.literal()? != "--server" {
        return None;
    }
    let mut rest = words.as_slice();
    let sender = rest.first()?.literal()? == "--sender";
    if sender {
        rest = &rest[1..];
    }
    // The flag cluster, when there is one, comes first.
    if let Some(letters) = rest
        .first()?
        .literal()?
        .strip_prefix('-')
        .filter(|l| !l.starts_with('-') && !l.starts_with('B') && !l.starts_with('@'))
    {
        if !flag_cluster(letters) {
            return None;
        }
        rest = &rest[1..];
    }

    let mut deletes = false;
    let mut reads_list = false;
    loop {
        let (word, after) = rest.split_first()?;
        rest = after;
        let word = word.literal()?;
        if word == "." {
            break;
        }
        if let Some(n) = word.strip_prefix("-B") {
            number(n.strip_prefix('-').unwrap_or(n))?;
            continue;
        }
        if let Some(n) = word.strip_prefix("-@") {
            number(n.strip_prefix('-').unwrap_or(n))?;
            continue;
        }
        deletes |= word.starts_with("--delete") || word.starts_with("--remove-s");
        if SWITCHES.contains(&word) {
            continue;
        }
        if let Some((name, _value)) = word.split_once('=')
            && VALUED.contains(&name)
        {
            continue;
        }
        if WITH_ARGUMENT.contains(&word) {
            let (value, after) = rest.split_first()?;
            value.literal()?;
            rest = after;
            reads_list |= word == "--files-from";
            continue;
        }
        return None;
    }

    // The paths: at least one, and only one where the target receives.
    if rest.is_empty() || (!sender && rest.len() != 1) || !rest.iter().all(path) {
        return None;
    }
    Some(RsyncCommand {
        sender,
        deletes,
        reads_list,
    })
}

/// `-` + flags, optionally ending in `e` + capabilities (`e.iLsfxCIvu`,
/// `e32.0iLsfxCIvu` for a pre-release protocol).
fn flag_cluster(letters: &str) -> bool {
    let (flags, capabilities) = letters.split_once('e').unwrap_or((letters, ""));
    !letters.is_empty()
        && flags.chars().all(|c| FLAG_LETTERS.contains(c))
        && (!letters.contains('e')
            || (capabilities.contains('.')
                && capabilities
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '.')))
}

fn number(digits: &str) -> Option<()> {
    (!digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit())).then_some(())
}

/// A path operand: never read as an option by rsync (rsync itself writes
/// `./-x`), and if the shell expands it, into words that still are not.
fn path(word: &Word) -> bool {
    !word.text.is_empty() && !word.text.starts_with('-') && !word.open_start
}
