//! The audit trail: a typed [`AuditEvent`] for every login, admin change,
//! session end, command and file transfer, written to its table and to the
//! `tracing` target `audit`, and sealed into one hash chain across all those
//! tables, keyed with a key derived from the master key so that rewriting
//! the database alone is detected (DESIGN.md §4; [`chain`] says how, and
//! what it does and does not prove).
//!
//! Must never: put a secret in an event (callers pass redacted
//! before/after values), or write an audit row outside the caller's
//! transaction (a change and its audit row land together).

pub mod chain;
mod writer;

pub use chain::{GENESIS, VerifyReport, key_chain, verify, verify_with};
pub use writer::AuditWriter;

use jiff::Timestamp;
use sqlx::AnyConnection;

use crate::model::{Role, new_id};
use crate::store::audit_log::{self, Value};
use crate::store::{self, Store, StoreError};

/// How a person reached the bastion to make a change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Via {
    /// The local ops CLI (`rampart ...` on the bastion host).
    Cli,
    /// `ssh bastion rampart ...`.
    Ssh,
    /// The TUI console.
    Console,
    /// A one-time link opened on the web side (a recording's download).
    Web,
}

impl Via {
    pub fn as_str(self) -> &'static str {
        match self {
            Via::Cli => "cli",
            Via::Ssh => "ssh",
            Via::Console => "console",
            Via::Web => "web",
        }
    }
}

/// The outcome of a login attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoginResult {
    Ok,
    /// A proof was wrong (counts towards lockout).
    Failed,
    /// Refused before checking the proof: locked, disabled, expired, ACL.
    Denied,
}

impl LoginResult {
    pub fn as_str(self) -> &'static str {
        match self {
            LoginResult::Ok => "ok",
            LoginResult::Failed => "failed",
            LoginResult::Denied => "denied",
        }
    }
}

/// Everything that is audited.
#[derive(Debug, Clone)]
pub enum AuditEvent {
    Login {
        user_name: String,
        user_id: Option<String>,
        source: String,
        method: String,
        result: LoginResult,
        reason: String,
    },
    Operation {
        actor: String,
        actor_role: Role,
        via: Via,
        verb: String,
        object: String,
        /// The object before and after the change, secrets redacted.
        before: Option<serde_json::Value>,
        after: Option<serde_json::Value>,
    },
    /// Seals a session row completed with `store::sessions::finish`.
    SessionEnd { session_id: String },
    Command {
        session_id: String,
        offset_ms: i64,
        user_name: String,
        asset_name: String,
        account: String,
        command: String,
        output: String,
        action: String,
        rule: Option<String>,
    },
    /// A request refused after login (forwarding, x11, agent, env, ...).
    Refusal {
        user_name: String,
        source: String,
        request: String,
        reason: String,
    },
    Transfer {
        session_id: String,
        user_name: String,
        asset_name: String,
        account: String,
        operation: String,
        path: String,
        size: i64,
        result: String,
        sha256: Option<String>,
        error: String,
    },
}

/// Records one event in a transaction of its own, for callers that cannot
/// stop for a failure (a refusal at the front door): a failure is logged as an
/// error instead of returned.
pub async fn record_alone(store: &Store, now: Timestamp, event: &AuditEvent) {
    let result = async {
        let mut tx = store.begin().await?;
        record(&mut tx, event, now).await?;
        store.commit(tx).await
    }
    .await;
    if let Err(e) = result {
        tracing::error!("cannot write an audit row: {e}");
    }
}

/// Writes an event into its table and seals it into the chain, inside the
/// caller's transaction (which must be a write transaction: `Store::begin`).
pub async fn record(
    conn: &mut AnyConnection,
    event: &AuditEvent,
    now: Timestamp,
) -> Result<(), StoreError> {
    log(event);
    let id = new_id();
    match row(event, &id, now) {
        Row::New(table, columns) => {
            audit_log::insert(conn, table, &columns).await?;
            chain::seal(conn, table, &id).await
        }
        Row::Session(session_id) => chain::seal(conn, "sessions", session_id).await,
    }
}

/// The line an event writes to the `tracing` target `audit`.
fn log(event: &AuditEvent) {
    match event {
        AuditEvent::Login {
            user_name,
            source,
            method,
            result,
            reason,
            ..
        } => {
            // Field order and names are what contrib/fail2ban matches; the
            // user name is quoted (Debug) so a crafted name cannot forge a line.
            tracing::info!(target: "audit", user = ?user_name, %source, %method, %reason,
                "login {}", result.as_str());
        }
        AuditEvent::Operation {
            actor,
            actor_role,
            via,
            verb,
            object,
            ..
        } => {
            tracing::info!(target: "audit", %actor, role = actor_role.as_str(),
                via = via.as_str(), %verb, %object, "operation");
        }
        AuditEvent::SessionEnd { session_id } => {
            tracing::info!(target: "audit", session = %session_id, "session end");
        }
        AuditEvent::Command {
            session_id,
            user_name,
            asset_name,
            account,
            action,
            ..
        } => {
            tracing::info!(target: "audit", session = %session_id, user = %user_name,
                asset = %asset_name, %account, %action, "command");
        }
        AuditEvent::Refusal {
            user_name,
            source,
            request,
            reason,
        } => {
            tracing::info!(target: "audit", user = %user_name, %source, %request, %reason, "refused");
        }
        AuditEvent::Transfer {
            session_id,
            user_name,
            asset_name,
            operation,
            result,
            ..
        } => {
            tracing::info!(target: "audit", session = %session_id, user = %user_name,
                asset = %asset_name, %operation, %result, "transfer");
        }
    }
}

/// Where an event is kept.
enum Row<'a> {
    /// A new row: its table and columns.
    New(&'static str, Vec<(&'static str, Value)>),
    /// The session row `store::sessions::finish` completed, sealed as it is.
    Session(&'a str),
}

/// The row an event adds (with `id`, at `now`), or the row it seals.
fn row<'a>(event: &'a AuditEvent, id: &str, now: Timestamp) -> Row<'a> {
    match event {
        AuditEvent::Login {
            user_name,
            user_id,
            source,
            method,
            result,
            reason,
        } => Row::New(
            "login_log",
            vec![
                ("id", id.into()),
                ("at", now.into()),
                ("user_name", user_name.as_str().into()),
                ("user_id", user_id.clone().into()),
                ("source", source.as_str().into()),
                ("method", method.as_str().into()),
                ("result", result.as_str().into()),
                ("reason", reason.as_str().into()),
            ],
        ),
        AuditEvent::Operation {
            actor,
            actor_role,
            via,
            verb,
            object,
            before,
            after,
        } => Row::New(
            "operation_log",
            vec![
                ("id", id.into()),
                ("at", now.into()),
                ("actor", actor.as_str().into()),
                ("actor_role", actor_role.as_str().into()),
                ("via", via.as_str().into()),
                ("verb", verb.as_str().into()),
                ("object", object.as_str().into()),
                ("before", before.as_ref().map(|v| v.to_string()).into()),
                ("after", after.as_ref().map(|v| v.to_string()).into()),
            ],
        ),
        AuditEvent::SessionEnd { session_id } => Row::Session(session_id),
        AuditEvent::Command {
            session_id,
            offset_ms,
            user_name,
            asset_name,
            account,
            command,
            output,
            action,
            rule,
        } => Row::New(
            "commands",
            vec![
                ("id", id.into()),
                ("session_id", session_id.as_str().into()),
                ("at", now.into()),
                ("offset_ms", (*offset_ms).into()),
                ("user_name", user_name.as_str().into()),
                ("asset_name", asset_name.as_str().into()),
                ("account", account.as_str().into()),
                ("command", command.as_str().into()),
                ("output", output.as_str().into()),
                ("action", action.as_str().into()),
                ("rule", rule.clone().into()),
            ],
        ),
        AuditEvent::Refusal {
            user_name,
            source,
            request,
            reason,
        } => Row::New(
            "refusals",
            vec![
                ("id", id.into()),
                ("at", now.into()),
                ("user_name", user_name.as_str().into()),
                ("source", source.as_str().into()),
                ("request", request.as_str().into()),
                ("reason", reason.as_str().into()),
            ],
        ),
        AuditEvent::Transfer {
            session_id,
            user_name,
            asset_name,
            account,
            operation,
            path,
            size,
            result,
            sha256,
            error,
        } => Row::New(
            "transfers",
            vec![
                ("id", id.into()),
                ("session_id", session_id.as_str().into()),
                ("at", now.into()),
                ("user_name", user_name.as_str().into()),
                ("asset_name", asset_name.as_str().into()),
                ("account", account.as_str().into()),
                ("operation", operation.as_str().into()),
                ("path", path.as_str().into()),
                ("size", (*size).into()),
                ("result", result.as_str().into()),
                ("sha256", sha256.clone().into()),
                ("error", error.as_str().into()),
            ],
        ),
    }
}

/// Marks the sessions `node` left `live` when its process died as
/// `interrupted`, with `reason`, and seals them; with `unowned` also those
/// no node is recorded for (from before nodes were). Run at server start
/// for the node itself, and by any node for one whose heartbeat stopped.
/// Returns how many there were.
pub async fn interrupt_sessions_of(
    store: &Store,
    node: &str,
    unowned: bool,
    reason: &str,
    now: Timestamp,
) -> Result<usize, StoreError> {
    let mut tx = store.begin().await?;
    let ids = store::cluster::live_ids(&mut tx, node, unowned).await?;
    for id in &ids {
        store::sessions::finish(
            &mut tx,
            id,
            &store::sessions::Ending {
                status: "interrupted".into(),
                reason: reason.to_string(),
                recording_sha256: None,
                bytes_in: 0,
                bytes_out: 0,
                exit_status: None,
            },
            now,
        )
        .await?;
        record(
            &mut tx,
            &AuditEvent::SessionEnd {
                session_id: id.clone(),
            },
            now,
        )
        .await?;
    }
    store.commit(tx).await?;
    Ok(ids.len())
}
