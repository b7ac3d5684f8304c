//! Output capture: the command that runs, the first
//! [`OUTPUT_CAPTURE_LIMIT`](super::OUTPUT_CAPTURE_LIMIT) bytes of plain text
//! after it, and the command completed when the next one starts or the
//! session ends.

use std::time::Duration;

use super::{CommandTracker, CompletedCommand, OUTPUT_CAPTURE_LIMIT, Running};
use crate::record::strip::Stripper;

impl CommandTracker {
    /// The relay let `command` run (or logged it as refused): capture the
    /// output that follows it. Returns the previous command, completed.
    pub fn started(&mut self, command: String, at: Duration) -> Option<CompletedCommand> {
        self.catch_up();
        // The shell has moved on: lines still waiting for their echo will
        // not be told from this one's.
        self.late.clear();
        self.unresolved = None;
        let prompt = self.last_prompt.take();
        let previous = self
            .running
            .take()
            .map(|r| complete(r, prompt.as_deref(), Some(&command)));
        self.running = Some(Running {
            command,
            at,
            capture: Stripper::new(OUTPUT_CAPTURE_LIMIT),
        });
        previous
    }

    /// The relay refused `command` (it never reached the target): the
    /// command that ran before it is complete, its output ending where the
    /// refused line was typed; the refusal and what the target prints for
    /// the Ctrl-C sent instead belong to no command. Returns that previous
    /// command, completed.
    pub fn refused(&mut self, command: &str) -> Option<CompletedCommand> {
        self.catch_up();
        self.late.clear();
        self.unresolved = None;
        let prompt = self.last_prompt.take();
        self.running
            .take()
            .map(|r| complete(r, prompt.as_deref(), Some(command)))
    }

    /// The session ended: the last command, completed.
    pub fn finish(&mut self) -> Option<CompletedCommand> {
        self.catch_up();
        self.running.take().map(|r| complete(r, None, None))
    }
}

/// The captured output of `r`, without the echo of its own Enter at the
/// start and, when it can be recognised, the next prompt and the echo of
/// the next command at the end.
pub(super) fn complete(r: Running, prompt: Option<&str>, next: Option<&str>) -> CompletedCommand {
    let truncated = r.capture.truncated();
    let mut output = r.capture.text();
    if output.starts_with('\n') {
        output.remove(0);
    }
    if !truncated && let Some(prompt) = prompt.filter(|p| !p.is_empty()) {
        // The last occurrence followed by nothing or by the next command is
        // the prompt; an earlier one may be output or part of the command.
        let cut = output.rmatch_indices(prompt).map(|(i, _)| i).find(|&i| {
            let rest = output.get(i + prompt.len()..).unwrap_or_default().trim();
            rest.is_empty() || next.is_some_and(|n| n.trim() == rest)
        });
        if let Some(i) = cut {
            output.truncate(i);
        }
    }
    let end = output.trim_end().len();
    output.truncate(end);
    CompletedCommand {
        command: r.command,
        at: r.at,
        output,
        output_truncated: truncated,
    }
}
