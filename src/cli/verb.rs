//! What every verb of the CLI shares, whatever its noun: where its output
//! goes and its input comes from ([`Io`]), what the process exits with
//! ([`Outcome`]), and reading the arguments several nouns take (a file
//! named on the command line, a time, an audit filter). Imports no other
//! verb module, so the noun files and `run` depend on it and not on each
//! other.

use std::io::Write;
use std::path::Path;

use anyhow::{Context, anyhow, bail};
use jiff::Timestamp;
use jiff::tz::TimeZone;

use super::AuditFilter;
use super::stdin::Stdin;
use crate::audit::Via;
use crate::ops::{self, Caller};
use crate::store::audit_log::Query;

/// What the process should exit with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Success,
    /// The command ran and found a problem (e.g. `audit verify` on a broken chain).
    Failure,
}

/// Where a verb's output goes and its input comes from: the terminal for
/// the local CLI, the SSH channel for `ssh bastion rampart ...`.
pub struct Io<'a> {
    pub out: &'a mut (dyn Write + Send),
    pub err: &'a mut (dyn Write + Send),
    /// `--password-stdin` and the other verbs that read lines (see
    /// [`super::wanted`]).
    pub stdin: Stdin,
}

/// Reads a file named on the command line. Only the local CLI reads files:
/// over SSH the path would name a file on the bastion, readable by the
/// server process (its database, its master key), not one of the caller's.
pub(super) fn read_file(caller: &Caller, path: &Path, what: &str) -> anyhow::Result<String> {
    if caller.via != Via::Cli {
        bail!(
            "{what} {}: files are read only by the local CLI on the bastion; over SSH pass the content (e.g. --key LINE)",
            path.display()
        );
    }
    std::fs::read_to_string(path).with_context(|| format!("cannot read {what} {}", path.display()))
}

pub(super) fn query(f: &AuditFilter, tz: &TimeZone, now: Timestamp) -> anyhow::Result<Query> {
    Ok(Query {
        user: f.user.clone(),
        asset: f.asset.clone(),
        since: f
            .since
            .as_deref()
            .map(|s| ops::parse_since(s, tz, now))
            .transpose()
            .map_err(|e| anyhow!("--since: {e}"))?,
        until: f
            .until
            .as_deref()
            .map(|s| ops::parse_since(s, tz, now))
            .transpose()
            .map_err(|e| anyhow!("--until: {e}"))?,
        limit: f.limit,
    })
}

pub(super) fn time_opt(
    text: Option<&str>,
    tz: &TimeZone,
    flag: &str,
) -> anyhow::Result<Option<Timestamp>> {
    text.map(|t| ops::parse_time(t, tz).map_err(|e| anyhow!("{flag}: {e}")))
        .transpose()
}
