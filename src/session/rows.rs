//! The audit rows a running session writes besides its own: each command
//! and each file transfer, named by the session they belong to (its id,
//! person, asset and account), whatever the protocol. A protocol hands
//! [`Rows`] what happened; the rows go through the audit writer
//! (`services.audit`) into the chain, before the session's own row closes
//! (see [`super::Closing::end`]).

use std::time::Duration;

use crate::audit::AuditEvent;

/// Who the rows of one session name; cheap to clone into the session's
/// tasks.
#[derive(Debug, Clone)]
pub struct Rows {
    session_id: String,
    user_name: String,
    asset_name: String,
    account: String,
}

/// A command the person ran (or tried to), as the command log keeps it.
#[derive(Debug, Clone)]
pub struct Command {
    /// Where in the recording it was typed.
    pub offset: Duration,
    pub command: String,
    /// The output it produced, as the command log keeps it.
    pub output: String,
    /// The filter action it ran (or was refused) under: `allow`, `warn`,
    /// `deny`, `review`.
    pub action: String,
    /// The filter rule that decided, if one did.
    pub rule: Option<String>,
}

/// A file moved through the session (or an attempt).
#[derive(Debug, Clone)]
pub struct Transfer {
    /// `upload`, `download`, `delete`, `rename`...
    pub operation: String,
    pub path: String,
    pub size: u64,
    /// `ok`, `failed`, `refused`...
    pub result: String,
    pub sha256: Option<String>,
    pub error: String,
}

impl Rows {
    /// The rows of session `session_id` (a command refused before its
    /// session opened has an id of its own and no session row).
    pub fn new(session_id: &str, user_name: &str, asset_name: &str, account: &str) -> Rows {
        Rows {
            session_id: session_id.to_string(),
            user_name: user_name.to_string(),
            asset_name: asset_name.to_string(),
            account: account.to_string(),
        }
    }

    /// The rows of `grant`'s session `session_id`.
    pub fn of_grant(session_id: &str, grant: &crate::policy::Grant) -> Rows {
        Rows::new(
            session_id,
            grant.user_name(),
            grant.asset_name(),
            grant.account().username(),
        )
    }

    pub fn session_id(&self) -> &str {
        &self.session_id
    }

    /// The row of a command.
    pub fn command(&self, c: Command) -> AuditEvent {
        AuditEvent::Command {
            session_id: self.session_id.clone(),
            offset_ms: i64::try_from(c.offset.as_millis()).unwrap_or(i64::MAX),
            user_name: self.user_name.clone(),
            asset_name: self.asset_name.clone(),
            account: self.account.clone(),
            command: c.command,
            output: c.output,
            action: c.action,
            rule: c.rule,
        }
    }

    /// The row of a transfer.
    pub fn transfer(&self, t: Transfer) -> AuditEvent {
        AuditEvent::Transfer {
            session_id: self.session_id.clone(),
            user_name: self.user_name.clone(),
            asset_name: self.asset_name.clone(),
            account: self.account.clone(),
            operation: t.operation,
            path: t.path,
            size: i64::try_from(t.size).unwrap_or(i64::MAX),
            result: t.result,
            sha256: t.sha256,
            error: t.error,
        }
    }
}
