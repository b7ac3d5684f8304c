//! The man pages stay true: `man/rampart.8` is generated from the clap
//! definitions and must match them (run with `RAMPART_UPDATE_MAN=1` to
//! regenerate), and `man/rampart.toml.5` must describe every config key.

use std::path::Path;

use clap::Command;
use rampart::cli::Cli;

/// Renders the page: the top-level sections clap_mangen writes, then one
/// subsection per verb with its synopsis, description and options.
fn render() -> String {
    let cmd = Cli::command();
    let man = clap_mangen::Man::new(cmd.clone())
        .title("RAMPART")
        .section("8")
        .manual("rampart manual")
        .source(format!("rampart {}", env!("CARGO_PKG_VERSION")));
    let mut out = Vec::new();
    man.render_title(&mut out).unwrap();
    man.render_name_section(&mut out).unwrap();
    man.render_synopsis_section(&mut out).unwrap();
    man.render_description_section(&mut out).unwrap();
    man.render_options_section(&mut out).unwrap();
    out.extend_from_slice(b".SH COMMANDS\n");
    for (path, sub) in leaves(&cmd, "rampart") {
        let sub = sub.bin_name(&path);
        let sub_man = clap_mangen::Man::new(sub.clone());
        let mut part = Vec::new();
        sub_man.render_synopsis_section(&mut part).unwrap();
        out.extend_from_slice(format!(".SS \"{path}\"\n").as_bytes());
        out.extend_from_slice(body(part).as_bytes());
        if let Some(about) = sub.get_about() {
            out.extend_from_slice(format!(".PP\n{}\n", escape(&about.to_string())).as_bytes());
        }
        let mut opts = Vec::new();
        sub_man.render_options_section(&mut opts).unwrap();
        out.extend_from_slice(body(opts).as_bytes());
    }
    out.extend_from_slice(
        b".SH AUDIT CHAIN\nEvery audit row (login, operation, session end, command, transfer, \
refusal) is sealed into one chain: its hash is HMAC\\-SHA\\-256 of the previous row's hash and \
the row, under a key derived from the master key (HKDF\\-SHA\\-256). The key is never in the \
database, so \\fBrampart audit verify\\fR, run locally or over SSH (both hold the master key), \
names the first row of a database that was edited, lost rows in the middle, or was rewritten \
end to end with recomputed hashes by someone without the master key. rampart does not open a \
data dir without its master key.\n.PP\nRows sealed with plain SHA\\-256 by an older rampart \
stay valid: the first start with the master key records, under the key, the seq from which rows \
are keyed and the hash of the row before it, and writes an \\fBaudit.key\\-chain\\fR operation \
row. After that point a row with a plain SHA\\-256 hash is reported as rewritten, and the older \
rows can no longer be changed either.\n.PP\nWhat it does not prove: someone who holds the master \
key and can write the database can still rewrite the chain; rows deleted from the end, with the \
head set back to the last row kept, are not detected from the database alone. Keep the row count \
that \\fBaudit verify\\fR prints somewhere else and compare: only a holder of the master key \
can add rows, so a count that went down means rows were deleted.\n\
.SH SCREEN\\-TEXT SEARCH\n\\fBrampart audit screen TEXT\\fR (and \\fBf\\fR in the staff desk) \
finds the lines of recorded sessions that contain TEXT (ASCII letters in either case), newest \
session first, with who saw them and when. The index is built by \\fBrampart serve\\fR in the \
background from the recordings, never while a session runs: ended sessions are indexed within \
seconds, live ones every 30 seconds at most, at a bounded rate and at low CPU priority. It keeps \
no copy of the text: each stretch of about 1 MiB of a recording is filed under the distinct \
three\\-character sequences in it, and a search reads the stretches that hold all of those of \
TEXT from the recordings. Every line of a session with a terminal is found; of exec output \
without a terminal, the first MiB of text and the last 2 MiB of the recording. Texts shorter \
than three characters cannot use the index and are looked for in the newest recordings only. \
A search reads for at most 800 ms. Lines on standard error say when the index is behind \
(\\fBindexed up to\\fR a time), when stretches were left unread in that time (search for a \
longer text), and how many exec sessions are indexed only in part.\n\
.SH COMMAND FILTERS\nA filter rule (deny, review, warn, allow) is checked against each command \
line a person runs: the whole command of \\fBssh bastion ASSET COMMAND\\fR before it starts, and \
every line typed in a session with a terminal (shells, and commands run with \\fBssh \\-t\\fR) at \
Enter, before the Enter reaches the target; the line is read from the screen the shell drew. \
Where a deny or review rule applies to the person and asset, a shell without a terminal is \
refused (its input cannot be split into lines), and on the alternate screen (an editor, a pager, \
or a shell that switched to it) the keys typed since the last Enter are checked instead of a line; \
a match is refused and logged without the keys.\n.PP\nThe limits: a filter is a guard\\-rail \
against mistakes, not a sandbox. It sees command lines, not what runs: a script, an alias, a \
function, a command assembled from variables or read from a file, or one run by a program the \
person started, is not checked. A line whose keys do not show what it is (history, Tab) and that \
is typed ahead before the shell draws it is held back where a deny or review rule applies. Lines \
typed with echo off (passwords) are never logged or shown to approvers.\n\
.SH FILES\n.TP\n\\fIrampart.toml\\fR\nconfiguration, see \\fBrampart.toml\\fR(5)\n\
.TP\n\\fIDATA_DIR\\fR\ndatabase, host keys, master key, recordings (mode 0700; rampart refuses \
to start when group or others may access it: chmod 700 DATA_DIR)\n\
.TP\n\\fIDATA_DIR/rampart.db\\fR\nthe SQLite database (mode 0600)\n\
.TP\n\\fIDATA_DIR/master.key\\fR\nthe vault's master key (mode 0600), unless RAMPART_MASTER_KEY is set\n\
.SH ENVIRONMENT\n.TP\nRAMPART_CONFIG\nconfiguration file when \\-\\-config is not given\n\
.TP\nRAMPART_MASTER_KEY\nthe master key as 64 hex characters, instead of DATA_DIR/master.key\n\
.SH EXIT STATUS\n0 on success, 1 when an operation is refused or fails (one line on standard error), \
2 on a usage error.\n.SH SEE ALSO\n\\fBrampart.toml\\fR(5), \\fBrampart\\-ssh\\fR(1)\n",
    );
    String::from_utf8(out).unwrap()
}

/// A rendered section without its heading and the string definitions
/// clap_mangen repeats before each one: it becomes part of a subsection.
fn body(section: Vec<u8>) -> String {
    String::from_utf8(section)
        .unwrap()
        .lines()
        .filter(|l| {
            !l.starts_with(".SH ") && !l.starts_with(".ie \\n(.g") && !l.starts_with(".el .ds Aq")
        })
        .map(|l| format!("{l}\n"))
        .collect()
}

/// Every runnable verb, depth first, with its full command path.
fn leaves(cmd: &Command, path: &str) -> Vec<(String, Command)> {
    let mut out = Vec::new();
    for sub in cmd.get_subcommands().filter(|s| s.get_name() != "help") {
        let sub_path = format!("{path} {}", sub.get_name());
        if sub.has_subcommands() {
            out.extend(leaves(sub, &sub_path));
        } else {
            out.push((sub_path, sub.clone()));
        }
    }
    out
}

fn escape(text: &str) -> String {
    text.replace('\\', "\\\\").replace('-', "\\-")
}

#[test]
fn rampart_8_matches_the_cli() {
    let page = Path::new(env!("CARGO_MANIFEST_DIR")).join("man/rampart.8");
    let fresh = render();
    if std::env::var_os("RAMPART_UPDATE_MAN").is_some() {
        std::fs::write(&page, &fresh).unwrap();
    }
    let committed = std::fs::read_to_string(&page).unwrap_or_default();
    assert!(
        committed == fresh,
        "man/rampart.8 is stale: run `RAMPART_UPDATE_MAN=1 cargo test --test man` and commit it"
    );
    for verb in [
        "rampart user add",
        "rampart perm who",
        "rampart audit verify",
    ] {
        assert!(committed.contains(verb), "{verb} missing from the page");
    }
}

#[test]
fn rampart_toml_5_describes_every_config_key() {
    let page =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("man/rampart.toml.5"))
            .unwrap();
    let missing: Vec<&str> = rampart::config::KEYS
        .iter()
        .filter(|key| !page.contains(&format!(".B {key}\n")))
        .copied()
        .collect();
    assert!(
        missing.is_empty(),
        "keys not described in man/rampart.toml.5: {missing:?}"
    );
}
