//! The command log of a relayed session: the state both directions of the
//! pump share (the tracker, byte counts, the verdict of the command now
//! running) and the rows it queues for the audit writer, written outside
//! the lock and never waited on by a keystroke.

use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::model::FilterAction;
use crate::policy::FilterVerdict;
use crate::record::{CommandTracker, CompletedCommand, LateCommand};
use crate::services::Services;
use crate::session::{Command, Rows};

/// State both directions touch, behind a mutex held only for short,
/// non-awaiting sections.
pub(super) struct Shared {
    pub(super) tracker: Option<CommandTracker>,
    pub(super) last_activity: Instant,
    pub(super) bytes_in: u64,
    pub(super) bytes_out: u64,
    pub(super) exit_status: Option<u32>,
    pub(super) size: Option<(u32, u32)>,
    /// Commands to write to the log, collected outside the lock.
    pub(super) pending_log: Vec<LoggedCommand>,
    /// The filter verdict of the command now running (its row is written
    /// when its output window closes).
    pub(super) running_verdict: (FilterAction, Option<String>),
}

impl Shared {
    pub(super) fn new(tracker: Option<CommandTracker>) -> Shared {
        Shared {
            tracker,
            last_activity: Instant::now(),
            bytes_in: 0,
            bytes_out: 0,
            exit_status: None,
            size: None,
            pending_log: Vec::new(),
            running_verdict: (FilterAction::Allow, None),
        }
    }

    /// `done` ended; it ran under `running_verdict`: queued for the log.
    pub(super) fn log_done(&mut self, done: CompletedCommand) {
        let (action, rule) = self.running_verdict.clone();
        self.pending_log.push(LoggedCommand {
            command: done.command,
            output: done.output,
            offset: done.at,
            action,
            rule,
        });
    }

    /// A command runs from now under `verdict`; `done`, the one before
    /// it, is logged under its own.
    pub(super) fn run_next(
        &mut self,
        done: Option<CompletedCommand>,
        verdict: (FilterAction, Option<String>),
    ) {
        if let Some(done) = done {
            self.log_done(done);
        }
        self.running_verdict = verdict;
    }
}

pub(super) struct LoggedCommand {
    pub(super) command: String,
    pub(super) output: String,
    pub(super) offset: Duration,
    pub(super) action: FilterAction,
    pub(super) rule: Option<String>,
}

/// Lines the screen showed only after their Enter went out: each ends the
/// command before it and runs from its Enter under the verdict its keys
/// had (checked again here: the same text, the same rules).
pub(super) fn log_late(
    shared: &Mutex<Shared>,
    late: Vec<LateCommand>,
    check: impl Fn(&str) -> FilterVerdict,
) {
    let mut s = lock(shared);
    for l in late {
        let verdict = check(&l.command);
        s.run_next(l.previous, (verdict.action, verdict.rule));
    }
}

/// Logs a command that did not run; the one that ran before it is complete
/// (its output window closes where the refused line was typed).
pub(super) fn log_refused(
    s: &mut Shared,
    command: String,
    offset: Duration,
    action: FilterAction,
    rule: Option<String>,
) {
    if let Some(done) = s.tracker.as_mut().and_then(|t| t.refused(&command)) {
        s.log_done(done);
    }
    s.pending_log.push(LoggedCommand {
        command,
        output: String::new(),
        offset,
        action,
        rule,
    });
}

pub(super) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Writes the commands waiting to be logged, each in its own transaction.
pub(super) async fn flush_log(services: &Services, rows: &Rows, shared: &Mutex<Shared>) {
    let pending = std::mem::take(&mut lock(shared).pending_log);
    for c in pending {
        let event = rows.command(Command {
            offset: c.offset,
            command: c.command,
            output: c.output,
            action: c.action.as_str().to_string(),
            rule: c.rule,
        });
        // Queued for the batching writer: the person's next keystroke
        // never waits for the database.
        services.audit.write(event, services.clock.now()).await;
    }
}

/// Logs the command of an exec session with the first output it produced.
pub async fn log_exec_command(
    services: &Services,
    rows: &Rows,
    command: &str,
    output: String,
    action: FilterAction,
    rule: Option<String>,
) {
    let mut shared = Shared::new(None);
    shared.pending_log.push(LoggedCommand {
        command: command.to_string(),
        output,
        offset: Duration::ZERO,
        action,
        rule,
    });
    let shared = Mutex::new(shared);
    flush_log(services, rows, &shared).await;
}
