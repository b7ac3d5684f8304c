//! The audit trail: a typed [`AuditEvent`] for every login, admin change,
//! session end, command and file transfer, written to its table and to the
//! `tracing` target `audit`, and sealed into one hash chain across all those
//! tables (DESIGN.md §4): `hash = SHA-256(prev_hash || canonical row)`.
//!
//! The canonical form of a row is the JSON object of all its columns but
//! `hash`, keys sorted, plus the table name. Both the writer and
//! [`verify`] build it from the row as read back from the database, so they
//! cannot disagree about a column the writer forgot.
//!
//! Must never: put a secret in an event (callers pass redacted
//! before/after values), or write an audit row outside the caller's
//! transaction (a change and its audit row land together).

mod writer;

pub use writer::AuditWriter;

use std::collections::BTreeMap;
use std::path::Path;

use jiff::Timestamp;
use serde_json::json;
use sha2::{Digest, Sha256};
use sqlx::SqliteConnection;

use crate::model::{Role, new_id};
use crate::store::audit_log::{self, Fields, Value};
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
}

impl Via {
    pub fn as_str(self) -> &'static str {
        match self {
            Via::Cli => "cli",
            Via::Ssh => "ssh",
            Via::Console => "console",
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

/// The hash before the first row.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// Records one event in a transaction of its own, for callers that cannot
/// stop for a failure (a refusal at the front door): a failure is logged as an
/// error instead of returned.
pub async fn record_alone(services: &crate::services::Services, event: &AuditEvent) {
    let now = services.clock.now();
    let result = async {
        let mut tx = services.store.begin().await?;
        record(&mut tx, event, now).await?;
        services.store.commit(tx).await
    }
    .await;
    if let Err(e) = result {
        tracing::error!("cannot write an audit row: {e}");
    }
}

/// Writes an event into its table and seals it into the chain, inside the
/// caller's transaction (which must be a write transaction: `Store::begin`).
pub async fn record(
    conn: &mut SqliteConnection,
    event: &AuditEvent,
    now: Timestamp,
) -> Result<(), StoreError> {
    let id = new_id();
    let (table, id) = match event {
        AuditEvent::Login {
            user_name,
            user_id,
            source,
            method,
            result,
            reason,
        } => {
            // Field order and names are what contrib/fail2ban matches; the
            // user name is quoted (Debug) so a crafted name cannot forge a line.
            tracing::info!(target: "audit", user = ?user_name, %source, %method, %reason,
                "login {}", result.as_str());
            audit_log::insert(
                conn,
                "login_log",
                &[
                    ("id", id.as_str().into()),
                    ("at", now.into()),
                    ("user_name", user_name.as_str().into()),
                    ("user_id", user_id.clone().into()),
                    ("source", source.as_str().into()),
                    ("method", method.as_str().into()),
                    ("result", result.as_str().into()),
                    ("reason", reason.as_str().into()),
                ],
            )
            .await?;
            ("login_log", id)
        }
        AuditEvent::Operation {
            actor,
            actor_role,
            via,
            verb,
            object,
            before,
            after,
        } => {
            tracing::info!(target: "audit", %actor, role = actor_role.as_str(),
                via = via.as_str(), %verb, %object, "operation");
            audit_log::insert(
                conn,
                "operation_log",
                &[
                    ("id", id.as_str().into()),
                    ("at", now.into()),
                    ("actor", actor.as_str().into()),
                    ("actor_role", actor_role.as_str().into()),
                    ("via", via.as_str().into()),
                    ("verb", verb.as_str().into()),
                    ("object", object.as_str().into()),
                    ("before", before.as_ref().map(|v| v.to_string()).into()),
                    ("after", after.as_ref().map(|v| v.to_string()).into()),
                ],
            )
            .await?;
            ("operation_log", id)
        }
        AuditEvent::SessionEnd { session_id } => {
            tracing::info!(target: "audit", session = %session_id, "session end");
            ("sessions", session_id.clone())
        }
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
        } => {
            tracing::info!(target: "audit", session = %session_id, user = %user_name,
                asset = %asset_name, %account, %action, "command");
            audit_log::insert(
                conn,
                "commands",
                &[
                    ("id", id.as_str().into()),
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
            )
            .await?;
            ("commands", id)
        }
        AuditEvent::Refusal {
            user_name,
            source,
            request,
            reason,
        } => {
            tracing::info!(target: "audit", user = %user_name, %source, %request, %reason, "refused");
            audit_log::insert(
                conn,
                "refusals",
                &[
                    ("id", id.as_str().into()),
                    ("at", now.into()),
                    ("user_name", user_name.as_str().into()),
                    ("source", source.as_str().into()),
                    ("request", request.as_str().into()),
                    ("reason", reason.as_str().into()),
                ],
            )
            .await?;
            ("refusals", id)
        }
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
        } => {
            tracing::info!(target: "audit", session = %session_id, user = %user_name,
                asset = %asset_name, %operation, %result, "transfer");
            audit_log::insert(
                conn,
                "transfers",
                &[
                    ("id", id.as_str().into()),
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
            )
            .await?;
            ("transfers", id)
        }
    };
    seal(conn, table, &id).await
}

async fn seal(conn: &mut SqliteConnection, table: &str, id: &str) -> Result<(), StoreError> {
    let (last_seq, prev_hash) = audit_log::head(conn).await?;
    let seq = last_seq + 1;
    let mut fields = audit_log::read(conn, table, id).await?;
    for (column, value) in &mut fields {
        match column.as_str() {
            "seq" => *value = Value::Int(seq),
            "prev_hash" => *value = Value::Text(prev_hash.clone()),
            _ => {}
        }
    }
    let hash = chain_hash(&prev_hash, table, &fields);
    audit_log::seal(conn, table, id, seq, &prev_hash, &hash).await?;
    audit_log::set_head(conn, seq, &hash).await
}

/// The canonical text of a row: its table and every column but `hash`,
/// as a JSON object with sorted keys.
fn canonical(table: &str, fields: &Fields) -> String {
    let mut map: BTreeMap<&str, &Value> = BTreeMap::new();
    for (column, value) in fields {
        if column != "hash" {
            map.insert(column.as_str(), value);
        }
    }
    json!({ "table": table, "row": map }).to_string()
}

fn chain_hash(prev_hash: &str, table: &str, fields: &Fields) -> String {
    let mut h = Sha256::new();
    h.update(prev_hash.as_bytes());
    h.update(canonical(table, fields).as_bytes());
    hex::encode(h.finalize())
}

/// The fields that differ between an operation's before and after, as
/// `field: old -> new` lines (`field: new` when created, `field: old -> ∅`
/// when removed). Ids are left out: they only add noise for a reader.
pub fn changes(
    before: Option<&serde_json::Value>,
    after: Option<&serde_json::Value>,
) -> Vec<String> {
    use serde_json::Value as J;
    fn text(v: &J) -> String {
        match v {
            J::String(s) => s.clone(),
            other => other.to_string(),
        }
    }
    let empty = serde_json::Map::new();
    let object = |v: Option<&J>| match v {
        Some(J::Object(m)) => m.clone(),
        _ => empty.clone(),
    };
    let (b, a) = (object(before), object(after));
    let mut keys: Vec<&String> = b.keys().chain(a.keys()).collect();
    keys.sort();
    keys.dedup();
    keys.into_iter()
        .filter(|k| !k.ends_with("id"))
        .filter_map(|k| match (b.get(k), a.get(k)) {
            (Some(x), Some(y)) if x == y => None,
            (Some(x), Some(y)) => Some(format!("{k}: {} -> {}", text(x), text(y))),
            (None, Some(y)) => Some(format!("{k}: {}", text(y))),
            (Some(x), None) => Some(format!("{k}: {} -> ∅", text(x))),
            (None, None) => None,
        })
        .collect()
}

/// What `audit verify` found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyReport {
    /// Rows checked in the chain.
    pub rows: u64,
    /// Recordings whose digest was checked.
    pub recordings: u64,
    /// The first problem, if any, naming the row.
    pub broken: Option<String>,
}

fn text<'a>(fields: &'a Fields, column: &str) -> Option<&'a str> {
    fields.iter().find_map(|(c, v)| match v {
        Value::Text(s) if c == column => Some(s.as_str()),
        _ => None,
    })
}

fn int(fields: &Fields, column: &str) -> Option<i64> {
    fields.iter().find_map(|(c, v)| match v {
        Value::Int(n) if c == column => Some(*n),
        _ => None,
    })
}

/// Recomputes the whole chain and the recordings' digests, and names the
/// first row that does not check out: edited (its hash no longer matches),
/// deleted (a gap in the sequence), or cut off at the end (the head points
/// past the last row).
pub async fn verify(store: &Store, recording_dir: &Path) -> Result<VerifyReport, StoreError> {
    let mut conn = store.conn().await?;
    let mut rows: Vec<(i64, &'static str, Fields)> = Vec::new();
    for table in audit_log::CHAINED_TABLES {
        for fields in audit_log::sealed_rows(&mut conn, table).await? {
            let seq = int(&fields, "seq").unwrap_or(-1);
            rows.push((seq, table, fields));
        }
    }
    rows.sort_by_key(|(seq, _, _)| *seq);
    let (head_seq, head_hash) = audit_log::head(&mut conn).await?;

    let mut report = VerifyReport {
        rows: 0,
        recordings: 0,
        broken: None,
    };
    let mut prev = GENESIS.to_string();
    let mut expected_seq = 1;
    for (seq, table, fields) in &rows {
        let name = format!(
            "{table} row {} (seq {seq}, at {})",
            text(fields, "id").unwrap_or("?"),
            text(fields, "at")
                .or_else(|| text(fields, "ended_at"))
                .unwrap_or("?")
        );
        if *seq != expected_seq {
            report.broken = Some(format!(
                "row seq {expected_seq} is missing (deleted?): the chain resumes at {name}"
            ));
            return Ok(report);
        }
        if text(fields, "prev_hash") != Some(prev.as_str()) {
            report.broken = Some(format!(
                "{name}: prev_hash does not match the row before it"
            ));
            return Ok(report);
        }
        let hash = chain_hash(&prev, table, fields);
        if text(fields, "hash") != Some(hash.as_str()) {
            report.broken = Some(format!(
                "{name}: contents do not match its hash (edited after it was written)"
            ));
            return Ok(report);
        }
        prev = hash;
        expected_seq += 1;
        report.rows += 1;
    }
    if head_seq != expected_seq - 1 || head_hash != prev {
        report.broken = Some(format!(
            "the chain ends at seq {} but its head says {head_seq}: rows at the end were deleted",
            expected_seq - 1
        ));
        return Ok(report);
    }

    for (_, table, fields) in &rows {
        if *table != "sessions" {
            continue;
        }
        let (Some(path), Some(digest)) =
            (text(fields, "recording"), text(fields, "recording_sha256"))
        else {
            continue;
        };
        let file = recording_dir.join(path);
        let id = text(fields, "id").unwrap_or("?");
        match file_sha256(&file) {
            Ok(actual) if actual == digest => report.recordings += 1,
            Ok(_) => {
                report.broken = Some(format!(
                    "recording {} of session {id} does not match its digest (edited?)",
                    file.display()
                ));
                return Ok(report);
            }
            Err(e) => {
                report.broken = Some(format!(
                    "recording {} of session {id} cannot be read: {e}",
                    file.display()
                ));
                return Ok(report);
            }
        }
    }
    Ok(report)
}

fn file_sha256(path: &Path) -> std::io::Result<String> {
    let mut file = std::fs::File::open(path)?;
    let mut h = Sha256::new();
    std::io::copy(&mut file, &mut h)?;
    Ok(hex::encode(h.finalize()))
}

/// Marks sessions left `live` by a process that died as `interrupted` and
/// seals them; run at server start. Returns how many there were.
pub async fn interrupt_stale_sessions(store: &Store, now: Timestamp) -> Result<usize, StoreError> {
    let mut tx = store.begin().await?;
    let ids = store::sessions::live_ids(&mut tx).await?;
    for id in &ids {
        store::sessions::finish(
            &mut tx,
            id,
            &store::sessions::Ending {
                status: "interrupted".into(),
                reason: "the bastion stopped while the session was running".into(),
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

#[cfg(test)]
mod tests {
    use super::*;

    fn op(verb: &str) -> AuditEvent {
        AuditEvent::Operation {
            actor: "admin".into(),
            actor_role: Role::Admin,
            via: Via::Cli,
            verb: verb.into(),
            object: "user alice".into(),
            before: None,
            after: Some(json!({"name": "alice"})),
        }
    }

    async fn store_with_rows(n: usize) -> Store {
        let store = Store::in_memory().await.unwrap();
        for i in 0..n {
            let mut tx = store.begin().await.unwrap();
            record(&mut tx, &op(&format!("verb{i}")), Timestamp::now())
                .await
                .unwrap();
            record(
                &mut tx,
                &AuditEvent::Login {
                    user_name: "alice".into(),
                    user_id: None,
                    source: "127.0.0.1".into(),
                    method: "password".into(),
                    result: LoginResult::Failed,
                    reason: "wrong password".into(),
                },
                Timestamp::now(),
            )
            .await
            .unwrap();
            store.commit(tx).await.unwrap();
        }
        store
    }

    #[tokio::test]
    async fn an_intact_chain_verifies() {
        let store = store_with_rows(3).await;
        let report = verify(&store, Path::new("/nonexistent")).await.unwrap();
        assert_eq!(report.broken, None);
        assert_eq!(report.rows, 6);
    }

    #[tokio::test]
    async fn an_edited_row_is_named() {
        let store = store_with_rows(3).await;
        sqlx::query("UPDATE operation_log SET object = 'user mallory' WHERE seq = 3")
            .execute(store.pool())
            .await
            .unwrap();
        let report = verify(&store, Path::new("/nonexistent")).await.unwrap();
        let broken = report.broken.unwrap();
        assert!(
            broken.contains("operation_log") && broken.contains("seq 3"),
            "{broken}"
        );
        assert!(broken.contains("edited"), "{broken}");
    }

    #[tokio::test]
    async fn a_deleted_row_is_named() {
        let store = store_with_rows(3).await;
        sqlx::query("DELETE FROM login_log WHERE seq = 4")
            .execute(store.pool())
            .await
            .unwrap();
        let broken = verify(&store, Path::new("/nonexistent"))
            .await
            .unwrap()
            .broken
            .unwrap();
        assert!(broken.contains("seq 4 is missing"), "{broken}");
    }

    #[tokio::test]
    async fn a_cut_tail_is_detected() {
        let store = store_with_rows(2).await;
        sqlx::query("DELETE FROM login_log WHERE seq = 4")
            .execute(store.pool())
            .await
            .unwrap();
        let broken = verify(&store, Path::new("/nonexistent"))
            .await
            .unwrap()
            .broken
            .unwrap();
        assert!(broken.contains("rows at the end were deleted"), "{broken}");
    }

    #[tokio::test]
    async fn a_recomputed_row_breaks_the_next_link() {
        // An attacker who edits a row and recomputes its hash still breaks
        // the following row's prev_hash.
        let store = store_with_rows(2).await;
        let mut conn = store.conn().await.unwrap();
        sqlx::query("UPDATE operation_log SET object = 'x' WHERE seq = 1")
            .execute(&mut *conn)
            .await
            .unwrap();
        let fields = audit_log::sealed_rows(&mut conn, "operation_log")
            .await
            .unwrap()
            .remove(0);
        let rehash = chain_hash(GENESIS, "operation_log", &fields);
        sqlx::query("UPDATE operation_log SET hash = $1 WHERE seq = 1")
            .bind(rehash)
            .execute(&mut *conn)
            .await
            .unwrap();
        drop(conn);
        let broken = verify(&store, Path::new("/nonexistent"))
            .await
            .unwrap()
            .broken
            .unwrap();
        assert!(
            broken.contains("seq 2") && broken.contains("prev_hash"),
            "{broken}"
        );
    }
}
