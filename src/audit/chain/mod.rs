//! The hash chain over every audit row, keyed with the master key (DESIGN.md
//! §4, issue 13 item 15).
//!
//! Each row carries its `seq`, the `prev_hash` of the row before it and its
//! own `hash`:
//!
//! ```text
//! hash = HMAC-SHA-256(chain key, prev_hash || canonical row)
//! ```
//!
//! The chain key is derived from the master key ([`ChainKey`]) and never
//! stored in the database, so that whoever can write the database but does
//! not hold the master key cannot seal a row: a database rewritten end to
//! end with the published formula and correct-looking hashes is named by
//! [`verify`] at the first row it rewrote.
//!
//! **Rows from before the key.** An older rampart sealed rows with plain
//! `SHA-256(prev_hash || canonical row)`. The first time a rampart holding
//! the master key opens such a database ([`key_chain`]), the head records
//! the key's id and `keyed_from`, the first seq to be sealed with the key,
//! with a MAC over (key id, keyed_from, hash of the row before) under the
//! key, and an operation row `audit.key-chain` says so. From then on:
//! rows before `keyed_from` must check out with plain SHA-256 and end in
//! the hash the MAC names (so they cannot be rewritten either); every row
//! from `keyed_from` on must be sealed with the key, and one sealed with
//! plain SHA-256 there is named as rewritten, never accepted as an old row.
//! A head whose keying record is missing or does not verify is reported as
//! rewritten. A new database is keyed from its first row.
//!
//! **Where the key comes from.** [`key_chain`] (run by `Services` when it
//! opens or initialises a data dir with the master key) registers the key
//! for that database in this process. [`verify`] checks against the key
//! registered for the store it is given, never a key the database names:
//! the local `rampart audit verify` and `ssh bastion rampart audit verify`
//! both run in a process that has loaded the master key. A process that has
//! not (a library user) can only check an unkeyed chain, and reports a
//! keyed one as unverifiable. Writing a row looks the key up by the id in
//! the head; when this process has not loaded it, the write fails rather
//! than seal a row without it. `rampart` refuses to open a data dir without
//! its master key.
//!
//! **What it does not prove.** Someone who holds the master key and can
//! write the database can still rewrite the chain end to end. Deleting rows
//! at the end and setting the head back to the last row kept is not
//! detected by the database alone: keep the row count `audit verify`
//! prints (or a copy of the database) somewhere else and compare; rows can
//! only be added by a holder of the key, so a count that went down means
//! rows were deleted. Deleting rows below the point where the chain was
//! keyed is detected.
//!
//! The canonical form of a row is the JSON object of all its columns but
//! `hash`, keys sorted, plus the table name. Both the writer and [`verify`]
//! build it from the row as read back from the database, so they cannot
//! disagree about a column the writer forgot.

use std::collections::{BTreeMap, HashMap};
use std::sync::{LazyLock, Mutex};

use jiff::Timestamp;
use serde_json::json;
use sha2::{Digest, Sha256};
use sqlx::AnyConnection;

use super::{AuditEvent, Via, record};
use crate::model::Role;
use crate::record::objects::Recordings;
use crate::store::audit_log::{self, Fields, Value};
use crate::store::{self, Store, StoreError};
use crate::vault::ChainKey;

/// The hash before the first row.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// What the keying MAC is over, before its fields; a row's MAC input starts
/// with 64 hex digits, so the two can never be confused.
const KEYING_LABEL: &[u8] = b"rampart audit keying v1\0";

// ------------------------------------------------------------- the keys --

/// The chain keys this process holds, by master key id, and which key each
/// database opened here is sealed with.
#[derive(Default)]
struct Registry {
    keys: HashMap<String, ChainKey>,
    stores: HashMap<String, String>,
}

static REGISTRY: LazyLock<Mutex<Registry>> = LazyLock::new(Mutex::default);

fn registry() -> std::sync::MutexGuard<'static, Registry> {
    // The map stays consistent whatever panicked while it was held: each
    // change is one insert.
    REGISTRY.lock().unwrap_or_else(|e| e.into_inner())
}

/// The database a store is open on.
fn store_name(store: &Store) -> String {
    store.name().to_string()
}

fn register(store: &Store, key: &ChainKey) {
    let mut r = registry();
    r.keys.insert(key.id().to_string(), key.clone());
    r.stores.insert(store_name(store), key.id().to_string());
}

fn key_by_id(id: &str) -> Option<ChainKey> {
    registry().keys.get(id).cloned()
}

/// The key `verify` checks a store against: the one registered when the
/// store was opened with its master key.
fn key_for(store: &Store) -> Option<ChainKey> {
    let r = registry();
    let id = r.stores.get(&store_name(store))?;
    r.keys.get(id).cloned()
}

fn keying_mac(key: &ChainKey, keyed_from: i64, hash_before: &str) -> String {
    key.mac(&[
        KEYING_LABEL,
        key.id().as_bytes(),
        b"\0",
        keyed_from.to_string().as_bytes(),
        b"\0",
        hash_before.as_bytes(),
    ])
}

/// Makes `key` seal the chain of `store` from now on, and registers it in
/// this process for writing and [`verify`]. On a database not keyed yet
/// (new, or written by an older rampart), records where keying starts, with
/// its MAC, and an `audit.key-chain` operation row when there were rows
/// before. Refuses a chain sealed with another master key.
pub async fn key_chain(store: &Store, key: &ChainKey, now: Timestamp) -> Result<(), StoreError> {
    register(store, key);
    let seen = {
        let mut conn = store.conn().await?;
        audit_log::head(&mut conn).await?
    };
    if seen.key_id.as_deref() == Some(key.id()) {
        return Ok(());
    }
    let mut tx = store.begin().await?;
    let head = audit_log::head(&mut tx).await?;
    match (&head.key_id, &head.key_mac) {
        (Some(id), _) if id == key.id() => {}
        (Some(other), _) => {
            return Err(StoreError::Conflict(format!(
                "the audit chain is sealed with master key {other}, not the loaded master key {}: \
                 start rampart with the master key that sealed it",
                key.id()
            )));
        }
        (None, Some(_)) => {
            // Someone cleared the id while leaving the keying record: seal
            // with the key again; `verify` names any row written without it.
            tracing::warn!(
                "the audit chain's head had lost its key id; sealing with master key {} again",
                key.id()
            );
            audit_log::set_key_id(&mut tx, key.id()).await?;
        }
        (None, None) => {
            let keyed_from = head.seq + 1;
            let mac = keying_mac(key, keyed_from, &head.hash);
            // From now on this database cannot be opened without this key.
            store::register_vault_key(&mut tx, key.id(), now).await?;
            audit_log::set_key(&mut tx, key.id(), keyed_from, &mac).await?;
            if head.seq > 0 {
                record(
                    &mut tx,
                    &AuditEvent::Operation {
                        actor: "rampart".into(),
                        actor_role: Role::Admin,
                        via: Via::Cli,
                        verb: "audit.key-chain".into(),
                        object: "audit chain".into(),
                        before: Some(json!({ "sealed_with": "sha256", "rows": head.seq })),
                        after: Some(json!({
                            "sealed_with": "hmac-sha256",
                            "master_key_id": key.id(),
                            "keyed_from": keyed_from,
                        })),
                    },
                    now,
                )
                .await?;
            }
        }
    }
    store.commit(tx).await
}

// -------------------------------------------------------------- sealing --

/// Seals a row just written into the chain, with the key the head names.
pub(super) async fn seal(
    conn: &mut AnyConnection,
    table: &str,
    id: &str,
) -> Result<(), StoreError> {
    let head = audit_log::head(conn).await?;
    let key = match &head.key_id {
        None => None,
        Some(key_id) => Some(key_by_id(key_id).ok_or_else(|| {
            StoreError::Conflict(format!(
                "the audit chain is sealed with master key {key_id}, which this process has \
                 not loaded: no audit row can be written"
            ))
        })?),
    };
    let seq = head.seq + 1;
    let prev_hash = head.hash;
    let mut fields = audit_log::read(conn, table, id).await?;
    for (column, value) in &mut fields {
        match column.as_str() {
            "seq" => *value = Value::Int(seq),
            "prev_hash" => *value = Value::Text(prev_hash.clone()),
            _ => {}
        }
    }
    let hash = match &key {
        Some(key) => keyed_hash(key, &prev_hash, table, &fields),
        None => unkeyed_hash(&prev_hash, table, &fields),
    };
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

fn keyed_hash(key: &ChainKey, prev_hash: &str, table: &str, fields: &Fields) -> String {
    key.mac(&[prev_hash.as_bytes(), canonical(table, fields).as_bytes()])
}

/// The formula of rows sealed before the chain was keyed (and of chains in
/// a process without a master key): plain SHA-256, which anyone can
/// recompute.
pub fn unkeyed_hash(prev_hash: &str, table: &str, fields: &Fields) -> String {
    let mut h = Sha256::new();
    h.update(prev_hash.as_bytes());
    h.update(canonical(table, fields).as_bytes());
    hex::encode(h.finalize())
}

// ------------------------------------------------------------ verifying --

/// What `audit verify` found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyReport {
    /// Rows checked in the chain.
    pub rows: u64,
    /// Of those, rows sealed with plain SHA-256 before the chain was keyed.
    pub unkeyed: u64,
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

/// Recomputes the whole chain, with the key this process registered for
/// `store`, and the recordings' digests, and names the first row that does
/// not check out: edited (its hash no longer matches), rewritten without
/// the master key (a plain SHA-256 hash where the chain is keyed), deleted
/// (a gap in the sequence), or cut off at the end (the head points past the
/// last row).
pub async fn verify(store: &Store, recordings: &Recordings) -> Result<VerifyReport, StoreError> {
    let key = key_for(store);
    verify_with(store, key.as_ref(), recordings).await
}

/// [`verify`] with the key given; `None` checks an unkeyed chain only.
pub async fn verify_with(
    store: &Store,
    key: Option<&ChainKey>,
    recordings: &Recordings,
) -> Result<VerifyReport, StoreError> {
    let (read, head) = {
        let mut conn = store.conn().await?;
        audit_log::chain_snapshot(&mut conn).await?
    };
    let mut rows: Vec<(i64, &'static str, Fields)> = read
        .into_iter()
        .map(|(table, fields)| (int(&fields, "seq").unwrap_or(-1), table, fields))
        .collect();
    rows.sort_by_key(|(seq, _, _)| *seq);

    let mut report = VerifyReport {
        rows: 0,
        unkeyed: 0,
        recordings: 0,
        broken: None,
    };
    let keyed_from = match keying(key, &head, &rows) {
        Ok(from) => from,
        Err(problem) => {
            report.broken = Some(problem);
            return Ok(report);
        }
    };
    if let Some(problem) = walk(key, keyed_from, &head, &rows, &mut report) {
        report.broken = Some(problem);
        return Ok(report);
    }
    report.broken = check_recordings(&rows, recordings, &mut report).await;
    Ok(report)
}

/// Checks the head's keying record against the key, before any row is
/// trusted: the first seq that must be sealed with the key (`i64::MAX` for
/// an unkeyed chain checked without a key), or the problem.
fn keying(
    key: Option<&ChainKey>,
    head: &audit_log::Head,
    rows: &[(i64, &'static str, Fields)],
) -> Result<i64, String> {
    let Some(key) = key else {
        return match &head.key_id {
            Some(id) => Err(format!(
                "the chain is sealed with master key {id}, which is not loaded here: \
                 run `rampart audit verify` where the master key is"
            )),
            None => Ok(i64::MAX),
        };
    };
    let (Some(from), Some(mac)) = (head.keyed_from, &head.key_mac) else {
        return Err(format!(
            "the chain's head has no record of being keyed with master key {}: the database \
             was rewritten without the master key",
            key.id()
        ));
    };
    if head.key_id.as_deref() != Some(key.id()) {
        return Err(format!(
            "the chain's head names master key {}, not the loaded key {}: the database was \
             altered",
            head.key_id.as_deref().unwrap_or("(none)"),
            key.id()
        ));
    }
    let before = if from <= 1 {
        Some(GENESIS)
    } else {
        rows.iter()
            .find(|(seq, _, _)| *seq == from - 1)
            .and_then(|(_, _, fields)| text(fields, "hash"))
    };
    let Some(before) = before else {
        return Err(format!(
            "row seq {} is missing: the chain was keyed after it, so rows were deleted \
             (the database was rewritten without the master key)",
            from - 1
        ));
    };
    if from < 1 || keying_mac(key, from, before) != *mac {
        return Err(format!(
            "the chain's keying record (keyed from seq {from}) does not verify with master key \
             {}: it, or a row before seq {from}, was rewritten without the master key",
            key.id()
        ));
    }
    Ok(from)
}

/// Walks the rows in seq order; the first problem, naming the row.
fn walk(
    key: Option<&ChainKey>,
    keyed_from: i64,
    head: &audit_log::Head,
    rows: &[(i64, &'static str, Fields)],
    report: &mut VerifyReport,
) -> Option<String> {
    let mut prev = GENESIS.to_string();
    let mut expected_seq = 1;
    for (seq, table, fields) in rows {
        let name = format!(
            "{table} row {} (seq {seq}, at {})",
            text(fields, "id").unwrap_or("?"),
            text(fields, "at")
                .or_else(|| text(fields, "ended_at"))
                .unwrap_or("?")
        );
        if *seq != expected_seq {
            return Some(format!(
                "row seq {expected_seq} is missing (deleted?): the chain resumes at {name}"
            ));
        }
        if text(fields, "prev_hash") != Some(prev.as_str()) {
            return Some(format!(
                "{name}: prev_hash does not match the row before it"
            ));
        }
        let stored = text(fields, "hash");
        let unkeyed = unkeyed_hash(&prev, table, fields);
        let hash = match key.filter(|_| *seq >= keyed_from) {
            Some(key) => {
                let keyed = keyed_hash(key, &prev, table, fields);
                if stored == Some(unkeyed.as_str()) {
                    return Some(format!(
                        "{name}: sealed with plain SHA-256 where the chain is keyed: it was \
                         rewritten without the master key"
                    ));
                }
                keyed
            }
            None => {
                report.unkeyed += 1;
                unkeyed
            }
        };
        if stored != Some(hash.as_str()) {
            return Some(format!(
                "{name}: contents do not match its hash (edited after it was written)"
            ));
        }
        prev = hash;
        expected_seq += 1;
        report.rows += 1;
    }
    if head.seq != expected_seq - 1 || head.hash != prev {
        return Some(format!(
            "the chain ends at seq {} but its head says {}: rows at the end were deleted",
            expected_seq - 1,
            head.seq
        ));
    }
    None
}

/// Checks each closed session's recording against the digest in its row.
/// Each recording against the digest its session's row holds: the object
/// in the object store when there is one, else the file in the recording
/// dir.
async fn check_recordings(
    rows: &[(i64, &'static str, Fields)],
    recordings: &Recordings,
    report: &mut VerifyReport,
) -> Option<String> {
    for (_, table, fields) in rows {
        if *table != "sessions" {
            continue;
        }
        let (Some(path), Some(digest)) =
            (text(fields, "recording"), text(fields, "recording_sha256"))
        else {
            continue;
        };
        let id = text(fields, "id").unwrap_or("?");
        let shown = match recordings.objects_name() {
            Some(_) => path.to_string(),
            None => recordings.dir().join(path).display().to_string(),
        };
        match recordings.sha256(path).await {
            Ok(actual) if actual == digest => report.recordings += 1,
            Ok(_) => {
                return Some(format!(
                    "recording {shown} of session {id} does not match its digest (edited?)"
                ));
            }
            Err(e) => {
                return Some(format!(
                    "recording {shown} of session {id} cannot be read: {e}"
                ));
            }
        }
    }
    None
}

#[cfg(test)]
mod tests;
