//! `rampart audit ...`: the audit log's tables, the screen search, the
//! dashboard and the chain check, printed.

use super::AuditCmd;
use super::output::{self, Column};
use super::session::SESSION_COLUMNS;
use super::verb::{Io, Outcome, query};
use crate::ops::Caller;
use crate::services::Services;

const LOGIN_COLUMNS: &[Column] = &[
    ("AT", "at"),
    ("USER", "user"),
    ("SOURCE", "source"),
    ("METHOD", "method"),
    ("RESULT", "result"),
    ("REASON", "reason"),
];
const COMMAND_COLUMNS: &[Column] = &[
    ("AT", "at"),
    ("USER", "user"),
    ("ASSET", "asset"),
    ("ACCOUNT", "account"),
    ("ACTION", "action"),
    ("COMMAND", "command"),
];
const TRANSFER_COLUMNS: &[Column] = &[
    ("AT", "at"),
    ("USER", "user"),
    ("ASSET", "asset"),
    ("OPERATION", "operation"),
    ("PATH", "path"),
    ("SIZE", "size"),
    ("RESULT", "result"),
    ("SHA256", "sha256"),
    ("ERROR", "error"),
];
const SCREEN_COLUMNS: &[Column] = &[
    ("AT", "at"),
    ("USER", "user"),
    ("ASSET", "asset"),
    ("ACCOUNT", "account"),
    ("SESSION", "session"),
    ("OFFSET_MS", "offset_ms"),
    ("LINE", "line"),
];
const REFUSAL_COLUMNS: &[Column] = &[
    ("AT", "at"),
    ("USER", "user"),
    ("SOURCE", "source"),
    ("REQUEST", "request"),
    ("REASON", "reason"),
];
const OPERATION_COLUMNS: &[Column] = &[
    ("AT", "at"),
    ("ACTOR", "actor"),
    ("VIA", "via"),
    ("VERB", "verb"),
    ("OBJECT", "object"),
    ("CHANGES", "changes"),
];

pub(super) async fn run(
    services: &Services,
    caller: &Caller,
    cmd: AuditCmd,
    json: bool,
    io: &mut Io<'_>,
) -> anyhow::Result<Outcome> {
    let tz = &services.config.auth.time_zone.clone();
    let now = services.clock.now();
    let ops = &services.ops;
    match cmd {
        AuditCmd::Logins(f) => output::list(
            io.out,
            &ops.audit_logins(caller, &query(&f, tz, now)?).await?,
            LOGIN_COLUMNS,
            json,
        )?,
        AuditCmd::Sessions(f) => output::list(
            io.out,
            &ops.session_list(caller, &query(&f, tz, now)?, false)
                .await?,
            SESSION_COLUMNS,
            json,
        )?,
        AuditCmd::Commands(f) => output::list(
            io.out,
            &ops.audit_commands(caller, &query(&f, tz, now)?).await?,
            COMMAND_COLUMNS,
            json,
        )?,
        AuditCmd::Screen { text, limit } => {
            let found = ops
                .audit_screen(caller, &services.recordings, &text, limit)
                .await?;
            output::list(io.out, &found.hits, SCREEN_COLUMNS, json)?;
            for note in found.notes(tz) {
                writeln!(io.err, "{note}")?;
            }
        }
        AuditCmd::Dashboard => output::show(io.out, &ops.audit_dashboard(caller).await?, json)?,
        AuditCmd::Transfers(f) => output::list(
            io.out,
            &ops.audit_transfers(caller, &query(&f, tz, now)?).await?,
            TRANSFER_COLUMNS,
            json,
        )?,
        AuditCmd::Operations(f) => output::list(
            io.out,
            &ops.audit_operations(caller, &query(&f, tz, now)?).await?,
            OPERATION_COLUMNS,
            json,
        )?,
        AuditCmd::Refusals(f) => output::list(
            io.out,
            &ops.audit_refusals(caller, &query(&f, tz, now)?).await?,
            REFUSAL_COLUMNS,
            json,
        )?,
        AuditCmd::Verify => {
            let report = ops.audit_verify(caller, &services.recordings).await?;
            match report.broken {
                None => {
                    writeln!(
                        io.out,
                        "audit chain intact: {} rows, {} recordings verified",
                        report.rows, report.recordings
                    )?;
                }
                Some(problem) => {
                    writeln!(io.err, "rampart: audit chain broken: {problem}")?;
                    return Ok(Outcome::Failure);
                }
            }
        }
    }
    Ok(Outcome::Success)
}
