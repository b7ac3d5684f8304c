//! `ssh bastion rampart ARGS...`: the ops CLI over SSH, run as the
//! authenticated person with their role (the `ops` layer checks it), output
//! to the channel. The local CLI and this path share every verb.
//!
//! The channel's data is the client's standard input. It is read only for
//! a verb that reads input (`--password-stdin`, `me passwd`, `me keys add`
//! without `--key`; see `cli::wanted`), before the verb runs: the lines it
//! needs and no more, at most `cli::MAX_INPUT` bytes, each line within
//! `cli::LINE_TIMEOUT`. `import assets|users -` reads everything up to
//! the client's EOF (`ssh ... < FILE` sends it after the file), at most
//! `cli::MAX_IMPORT` bytes, giving up after `cli::IDLE_TIMEOUT` without a
//! byte or `cli::TOTAL_TIMEOUT` in all; and only for an admin, the one
//! role that may import, so no one else can make the bastion hold a file.
//! Any other verb never waits for input.
//!
//! The caller is built for each command from the store ([`Ops::caller`]),
//! so a person disabled or demoted since the connection was made (an
//! OpenSSH ControlMaster keeps one open for long) is refused with their
//! current standing; and a command still running when their access ends
//! stops with one line saying why ([`Shared::attend`]).
//!
//! [`Ops::caller`]: crate::ops::Ops::caller

use std::collections::VecDeque;

use bytes::Bytes;
use clap::Parser;
use russh::server::Msg;
use russh::{ChannelMsg, ChannelReadHalf, ChannelWriteHalf};

use super::{Conn, Shared};
use crate::audit::Via;
use crate::cli::{
    AllCollector, Cli, Command, IDLE_TIMEOUT, Io, LINE_TIMEOUT, LineCollector, Outcome, Stdin,
    StdinError, TOTAL_TIMEOUT, dispatch, reads_all, wanted,
};
use crate::model::Role;
use crate::ops::OpsError;
use crate::vault::Secret;

/// Exit status of a command ended because its person's access ended, as
/// OpenSSH's for a dropped session (DESIGN.md §4).
pub const ENDED: u32 = 255;

pub async fn run(
    shared: &Shared,
    conn: &Conn,
    args: Vec<String>,
    pty: bool,
    read: &mut ChannelReadHalf,
    write: &ChannelWriteHalf<Msg>,
) -> u32 {
    let mut presence = shared.attend(conn);
    let mut out: Vec<u8> = Vec::new();
    let mut err: Vec<u8> = Vec::new();
    // Dropping the command mid-way rolls its transaction back: what it had
    // not committed does not happen. A command that finished is reported
    // as it finished (its own transaction checked the caller).
    let finished = tokio::select! {
        biased;
        status = execute(shared, conn, args, pty, read, write, &mut out, &mut err) => Ok(status),
        reason = presence.withdrawn() => Err(reason),
    };
    let status = match finished {
        Ok(status) => status,
        Err(reason) => {
            out.clear();
            err = format!("{}\n", super::standing::ended_line(&reason)).into_bytes();
            ENDED
        }
    };
    // With `ssh -t` the client's terminal is raw and there is no pty on
    // this side to turn a newline into CR LF.
    if pty {
        out = crlf(&out);
        err = crlf(&err);
    }
    if !out.is_empty() {
        let _ = write.data_bytes(Bytes::from(out)).await;
    }
    if !err.is_empty() {
        let _ = write.extended_data_bytes(1, Bytes::from(err)).await;
    }
    status
}

/// Parses and runs one command, its output into `out` and `err`; returns
/// the exit status.
#[allow(clippy::too_many_arguments)]
async fn execute(
    shared: &Shared,
    conn: &Conn,
    args: Vec<String>,
    pty: bool,
    read: &mut ChannelReadHalf,
    write: &ChannelWriteHalf<Msg>,
    out: &mut Vec<u8>,
    err: &mut Vec<u8>,
) -> u32 {
    // The verb as the audit row names it: `rampart user add`, no arguments
    // (they may hold a password or key).
    let verb: Vec<&str> = args
        .iter()
        .map(String::as_str)
        .take_while(|a| !a.starts_with('-'))
        .take(2)
        .collect();
    let request = format!("rampart {}", verb.join(" "));
    let argv = std::iter::once("rampart".to_string()).chain(args.iter().cloned());
    match Cli::try_parse_from(argv) {
        Err(e) => {
            // Help and version are successes with text; the rest are usage errors.
            let text = e.render().to_string();
            if e.use_stderr() {
                err.extend_from_slice(text.as_bytes());
                2
            } else {
                out.extend_from_slice(text.as_bytes());
                0
            }
        }
        Ok(cli) if cli.config.is_some() => {
            err.extend_from_slice(b"rampart: --config cannot be chosen over SSH: the server's configuration applies\n");
            2
        }
        Ok(Cli {
            command: Command::Init,
            ..
        }) => {
            err.extend_from_slice(b"rampart: init runs only locally, before the first start\n");
            1
        }
        Ok(cli) => {
            let caller = match shared.services.ops.caller(&conn.identity, Via::Ssh).await {
                Ok(caller) => caller,
                Err(e) => {
                    if let OpsError::Forbidden(reason) = &e {
                        super::refuse_log(shared, conn, &request, reason).await;
                    }
                    err.extend_from_slice(format!("rampart: {e}\n").as_bytes());
                    return 1;
                }
            };
            let lines = wanted(&cli.command);
            let stdin = match reads_all(&cli.command) {
                // Anyone else is refused by the verb before it reads.
                Some(what) if caller.role == Role::Admin => {
                    read_all(read, what, pty).await.map(Stdin::All)
                }
                Some(_) => Ok(Stdin::None),
                None if lines.is_empty() => Ok(Stdin::None),
                None => read_lines(read, write, lines, pty).await.map(Stdin::Lines),
            };
            match stdin {
                Err(e) => {
                    err.extend_from_slice(format!("rampart: {e}\n").as_bytes());
                    1
                }
                Ok(stdin) => {
                    let mut io = Io {
                        out: &mut *out,
                        err: &mut *err,
                        stdin,
                    };
                    let result =
                        dispatch(&shared.services, &caller, cli.command, cli.json, &mut io).await;
                    match result {
                        Ok(Outcome::Success) => 0,
                        Ok(Outcome::Failure) => 1,
                        Err(e) => {
                            // A verb refused for the caller's role, or for a
                            // failed proof, is an audit row, like every other
                            // refusal at the front door.
                            if let Some(OpsError::Forbidden(reason) | OpsError::Refused(reason)) =
                                e.downcast_ref::<OpsError>()
                            {
                                super::refuse_log(shared, conn, &request, reason).await;
                            }
                            err.extend_from_slice(format!("rampart: {e:#}\n").as_bytes());
                            1
                        }
                    }
                }
            }
        }
    }
}

/// Reads the lines a verb wants from the client's standard input. With a
/// terminal (`ssh -t`), each is asked for by name on stderr and typed
/// without echo.
async fn read_lines(
    read: &mut ChannelReadHalf,
    write: &ChannelWriteHalf<Msg>,
    names: &'static [&'static str],
    pty: bool,
) -> Result<VecDeque<Secret<String>>, StdinError> {
    let mut lines = LineCollector::new(names.len(), pty);
    let mut asked = None;
    while !lines.is_done() {
        let n = lines.complete();
        let Some(name) = names.get(n).copied() else {
            break;
        };
        if asked != Some(n) {
            if pty {
                let prompt = if n == 0 {
                    format!("{name}: ")
                } else {
                    format!("\r\n{name}: ")
                };
                let _ = write.extended_data_bytes(1, Bytes::from(prompt)).await;
            }
            asked = Some(n);
        }
        // Each line has its own deadline, so a person typing two
        // passwords gets the full time for each.
        let msg = match tokio::time::timeout(LINE_TIMEOUT, next_data(read, &mut lines)).await {
            Err(_) => return Err(StdinError::Timeout(name)),
            Ok(msg) => msg?,
        };
        if !msg {
            break;
        }
    }
    if pty && asked.is_some() {
        let _ = write.extended_data_bytes(1, Bytes::from("\r\n")).await;
    }
    lines.finish()
}

/// Reads the client's standard input up to EOF, for a verb that takes a
/// whole file.
async fn read_all(
    read: &mut ChannelReadHalf,
    what: &'static str,
    pty: bool,
) -> Result<Vec<u8>, StdinError> {
    if pty {
        // A terminal in raw mode has no EOF to send, and would mangle a
        // binary file on the way.
        return Err(StdinError::Terminal(what));
    }
    let mut all = AllCollector::new();
    let deadline = tokio::time::Instant::now() + TOTAL_TIMEOUT;
    loop {
        let next = tokio::time::timeout(IDLE_TIMEOUT, read.wait());
        let msg = match tokio::time::timeout_at(deadline, next).await {
            Err(_) => return Err(StdinError::TooSlow),
            Ok(Err(_)) => return Err(StdinError::Stalled(what)),
            Ok(Ok(msg)) => msg,
        };
        match msg {
            Some(ChannelMsg::Data { data }) => all.push(&data)?,
            Some(ChannelMsg::Eof | ChannelMsg::Close) | None => return Ok(all.finish()),
            // Window adjustments, signals, stderr from the client: not input.
            Some(_) => {}
        }
    }
}

/// Feeds the channel's data to `lines` until a line more is complete (true)
/// or the input ends (false).
async fn next_data(
    read: &mut ChannelReadHalf,
    lines: &mut LineCollector,
) -> Result<bool, StdinError> {
    let before = lines.complete();
    loop {
        match read.wait().await {
            Some(ChannelMsg::Data { data }) => {
                lines.push(&data)?;
                if lines.is_done() || lines.complete() > before {
                    return Ok(true);
                }
            }
            Some(ChannelMsg::Eof | ChannelMsg::Close) | None => return Ok(false),
            // Window adjustments, signals, stderr from the client: not input.
            Some(_) => {}
        }
    }
}

/// LF to CR LF, leaving existing CR LF alone.
fn crlf(text: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(text.len() + text.len() / 16);
    let mut prev = 0u8;
    for &b in text {
        if b == b'\n' && prev != b'\r' {
            out.push(b'\r');
        }
        out.push(b);
        prev = b;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::crlf;

    #[test]
    fn newlines_become_crlf_once() {
        assert_eq!(crlf(b"a\nb\r\nc\n"), b"a\r\nb\r\nc\r\n");
        assert_eq!(crlf(b""), b"");
    }
}
