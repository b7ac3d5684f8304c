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
use std::path::Path;
use std::sync::{LazyLock, Mutex};

use jiff::Timestamp;
use serde_json::json;
use sha2::{Digest, Sha256};
use sqlx::SqliteConnection;

use super::{AuditEvent, Via, record};
use crate::model::Role;
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

/// The database a store is open on: its file, or the unique name sqlx gives
/// an in-memory database.
fn store_name(store: &Store) -> String {
    let options = store.pool().connect_options();
    let path = options.get_filename();
    std::fs::canonicalize(path)
        .unwrap_or_else(|_| path.to_path_buf())
        .display()
        .to_string()
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
    conn: &mut SqliteConnection,
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
pub async fn verify(store: &Store, recording_dir: &Path) -> Result<VerifyReport, StoreError> {
    let key = key_for(store);
    verify_with(store, key.as_ref(), recording_dir).await
}

/// [`verify`] with the key given; `None` checks an unkeyed chain only.
pub async fn verify_with(
    store: &Store,
    key: Option<&ChainKey>,
    recording_dir: &Path,
) -> Result<VerifyReport, StoreError> {
    let mut conn = store.conn().await?;
    let mut rows: Vec<(i64, &'static str, Fields)> = Vec::new();
    for table in audit_log::CHAINED_TABLES {
        for fields in audit_log::sealed_rows(&mut conn, table).await? {
            let seq = int(&fields, "seq").unwrap_or(-1);
            rows.push((seq, table, fields));
        }
    }
    drop(conn);
    rows.sort_by_key(|(seq, _, _)| *seq);
    let mut conn = store.conn().await?;
    let head = audit_log::head(&mut conn).await?;
    drop(conn);

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
    report.broken = recordings(&rows, recording_dir, &mut report);
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
fn recordings(
    rows: &[(i64, &'static str, Fields)],
    recording_dir: &Path,
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
        let file = recording_dir.join(path);
        let id = text(fields, "id").unwrap_or("?");
        match file_sha256(&file) {
            Ok(actual) if actual == digest => report.recordings += 1,
            Ok(_) => {
                return Some(format!(
                    "recording {} of session {id} does not match its digest (edited?)",
                    file.display()
                ));
            }
            Err(e) => {
                return Some(format!(
                    "recording {} of session {id} cannot be read: {e}",
                    file.display()
                ));
            }
        }
    }
    None
}

fn file_sha256(path: &Path) -> std::io::Result<String> {
    let mut file = std::fs::File::open(path)?;
    let mut h = Sha256::new();
    std::io::copy(&mut file, &mut h)?;
    Ok(hex::encode(h.finalize()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::LoginResult;
    use crate::vault::{MasterKey, Vault};

    const NOWHERE: &str = "/nonexistent";

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

    fn login() -> AuditEvent {
        AuditEvent::Login {
            user_name: "alice".into(),
            user_id: None,
            source: "127.0.0.1".into(),
            method: "password".into(),
            result: LoginResult::Failed,
            reason: "wrong password".into(),
        }
    }

    /// `n` pairs of rows (an operation, then a login).
    async fn add_rows(store: &Store, n: usize) {
        for i in 0..n {
            let mut tx = store.begin().await.unwrap();
            record(&mut tx, &op(&format!("verb{i}")), Timestamp::now())
                .await
                .unwrap();
            record(&mut tx, &login(), Timestamp::now()).await.unwrap();
            store.commit(tx).await.unwrap();
        }
    }

    fn new_key() -> ChainKey {
        Vault::new(MasterKey::generate()).chain_key().clone()
    }

    /// A store keyed from its first row, with `n` pairs of rows.
    async fn keyed_store(n: usize) -> (Store, ChainKey) {
        let store = Store::in_memory().await.unwrap();
        let key = new_key();
        key_chain(&store, &key, Timestamp::now()).await.unwrap();
        add_rows(&store, n).await;
        (store, key)
    }

    /// A store as an older rampart left it: rows sealed with plain SHA-256.
    async fn unkeyed_store(n: usize) -> Store {
        let store = Store::in_memory().await.unwrap();
        add_rows(&store, n).await;
        store
    }

    async fn problem(store: &Store) -> String {
        let report = verify(store, Path::new(NOWHERE)).await.unwrap();
        report.broken.expect("verify found nothing")
    }

    async fn exec(store: &Store, sql: &str) {
        sqlx::query(sqlx::AssertSqlSafe(sql.to_string()))
            .execute(store.pool())
            .await
            .unwrap();
    }

    /// What someone who can write the database but has no master key can
    /// do: recompute every link from `from_seq` on with the published
    /// unkeyed formula, and the head.
    async fn rewrite_unkeyed(store: &Store, from_seq: i64) {
        let mut conn = store.conn().await.unwrap();
        let mut rows = Vec::new();
        for table in audit_log::CHAINED_TABLES {
            for fields in audit_log::sealed_rows(&mut conn, table).await.unwrap() {
                rows.push((int(&fields, "seq").unwrap(), *table, fields));
            }
        }
        rows.sort_by_key(|(seq, _, _)| *seq);
        let mut prev = GENESIS.to_string();
        for (seq, table, mut fields) in rows {
            if seq < from_seq {
                prev = text(&fields, "hash").unwrap().to_string();
                continue;
            }
            for (column, value) in &mut fields {
                if column == "prev_hash" {
                    *value = Value::Text(prev.clone());
                }
            }
            let hash = unkeyed_hash(&prev, table, &fields);
            let id = text(&fields, "id").unwrap().to_string();
            audit_log::seal(&mut conn, table, &id, seq, &prev, &hash)
                .await
                .unwrap();
            prev = hash;
        }
        let head = audit_log::head(&mut conn).await.unwrap();
        audit_log::set_head(&mut conn, head.seq, &prev)
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn an_intact_keyed_chain_verifies() {
        let (store, _key) = keyed_store(3).await;
        let report = verify(&store, Path::new(NOWHERE)).await.unwrap();
        assert_eq!(report.broken, None);
        assert_eq!((report.rows, report.unkeyed), (6, 0));
        // Each row is sealed with the key: the public formula does not
        // give its hash.
        let mut conn = store.conn().await.unwrap();
        let row = audit_log::sealed_rows(&mut conn, "operation_log")
            .await
            .unwrap()
            .remove(0);
        assert_ne!(
            text(&row, "hash"),
            Some(unkeyed_hash(GENESIS, "operation_log", &row).as_str())
        );
    }

    #[tokio::test]
    async fn an_edited_row_is_named() {
        let (store, _key) = keyed_store(3).await;
        exec(
            &store,
            "UPDATE operation_log SET object = 'user mallory' WHERE seq = 3",
        )
        .await;
        let broken = problem(&store).await;
        assert!(
            broken.contains("operation_log") && broken.contains("seq 3"),
            "{broken}"
        );
        assert!(broken.contains("edited"), "{broken}");
    }

    #[tokio::test]
    async fn a_deleted_row_is_named() {
        let (store, _key) = keyed_store(3).await;
        exec(&store, "DELETE FROM login_log WHERE seq = 4").await;
        let broken = problem(&store).await;
        assert!(broken.contains("seq 4 is missing"), "{broken}");
    }

    #[tokio::test]
    async fn a_cut_tail_is_detected() {
        let (store, _key) = keyed_store(2).await;
        exec(&store, "DELETE FROM login_log WHERE seq = 4").await;
        let broken = problem(&store).await;
        assert!(broken.contains("rows at the end were deleted"), "{broken}");
    }

    #[tokio::test]
    async fn a_rewrite_without_the_key_is_named_where_it_starts() {
        let (store, _key) = keyed_store(3).await;
        exec(
            &store,
            "UPDATE operation_log SET object = 'x' WHERE seq = 3",
        )
        .await;
        rewrite_unkeyed(&store, 3).await;
        let broken = problem(&store).await;
        assert!(
            broken.contains("operation_log row") && broken.contains("(seq 3,"),
            "{broken}"
        );
        assert!(broken.contains("without the master key"), "{broken}");

        // The whole chain, head included.
        rewrite_unkeyed(&store, 1).await;
        let broken = problem(&store).await;
        assert!(broken.contains("(seq 1,"), "{broken}");
        assert!(broken.contains("without the master key"), "{broken}");
    }

    #[tokio::test]
    async fn the_keying_record_cannot_be_removed_or_moved() {
        let (store, _key) = keyed_store(2).await;
        rewrite_unkeyed(&store, 1).await;
        // Removed: as if the chain had never been keyed.
        exec(
            &store,
            "UPDATE audit_head SET key_id = NULL, keyed_from = NULL, key_mac = NULL",
        )
        .await;
        let broken = problem(&store).await;
        assert!(
            broken.contains("no record of being keyed") && broken.contains("rewritten"),
            "{broken}"
        );
        // Moved past the end, so that every row would count as older.
        let (store, key) = keyed_store(2).await;
        rewrite_unkeyed(&store, 1).await;
        exec(&store, "UPDATE audit_head SET keyed_from = 5").await;
        let broken = problem(&store).await;
        assert!(
            broken.contains("keying record") && broken.contains(key.id()),
            "{broken}"
        );
    }

    #[tokio::test]
    async fn a_head_without_its_key_id_writes_rows_that_are_named() {
        let (store, key) = keyed_store(1).await;
        // Someone clears the key id: the next row is sealed without the key.
        exec(&store, "UPDATE audit_head SET key_id = NULL").await;
        add_rows(&store, 1).await;
        // The next start seals with the key again; the row stays named.
        key_chain(&store, &key, Timestamp::now()).await.unwrap();
        add_rows(&store, 1).await;
        let broken = problem(&store).await;
        assert!(
            broken.contains("(seq 3,") && broken.contains("plain SHA-256"),
            "{broken}"
        );
    }

    #[tokio::test]
    async fn writing_without_the_key_fails_closed() {
        let (store, _key) = keyed_store(1).await;
        exec(
            &store,
            &format!("UPDATE audit_head SET key_id = '{}'", "ab".repeat(8)),
        )
        .await;
        let mut tx = store.begin().await.unwrap();
        let err = record(&mut tx, &op("x"), Timestamp::now())
            .await
            .unwrap_err();
        assert!(err.to_string().contains("has not loaded"), "{err}");
    }

    #[tokio::test]
    async fn a_keyed_chain_is_not_passed_without_its_key() {
        let (store, key) = keyed_store(1).await;
        let report = verify_with(&store, None, Path::new(NOWHERE)).await.unwrap();
        let broken = report.broken.unwrap();
        assert!(
            broken.contains(key.id()) && broken.contains("not loaded"),
            "{broken}"
        );
        // Another master key does not take over the chain.
        let err = key_chain(&store, &new_key(), Timestamp::now())
            .await
            .unwrap_err();
        assert!(err.to_string().contains(key.id()), "{err}");
    }

    /// The upgrade path: rows sealed with plain SHA-256 by an older rampart
    /// stay valid, are pinned by the keying record, and nothing after it
    /// may be sealed without the key.
    #[tokio::test]
    async fn an_unkeyed_chain_is_keyed_at_its_end() {
        let store = unkeyed_store(2).await;
        let report = verify_with(&store, None, Path::new(NOWHERE)).await.unwrap();
        assert_eq!((report.broken, report.unkeyed), (None, 4));

        let key = new_key();
        key_chain(&store, &key, Timestamp::now()).await.unwrap();
        key_chain(&store, &key, Timestamp::now()).await.unwrap();
        add_rows(&store, 1).await;
        let report = verify(&store, Path::new(NOWHERE)).await.unwrap();
        assert_eq!(report.broken, None);
        assert_eq!((report.rows, report.unkeyed), (7, 4));
        let mut conn = store.conn().await.unwrap();
        let ops = audit_log::sealed_rows(&mut conn, "operation_log")
            .await
            .unwrap();
        let keyed = ops
            .iter()
            .find(|r| text(r, "verb") == Some("audit.key-chain"))
            .expect("the keying is an operation row");
        assert_eq!(int(keyed, "seq"), Some(5));
        assert!(text(keyed, "after").unwrap().contains(key.id()));
        drop(conn);
        let vault_keys = {
            let mut conn = store.conn().await.unwrap();
            store::vault_key_ids(&mut conn).await.unwrap()
        };
        assert_eq!(vault_keys, [key.id()], "the key is now needed to open it");

        // Rows after the keying point rewritten with the old formula.
        rewrite_unkeyed(&store, 6).await;
        let broken = problem(&store).await;
        assert!(
            broken.contains("(seq 6,") && broken.contains("without the master key"),
            "{broken}"
        );
    }

    #[tokio::test]
    async fn rows_from_before_the_key_cannot_be_rewritten_either() {
        let store = unkeyed_store(2).await;
        let key = new_key();
        key_chain(&store, &key, Timestamp::now()).await.unwrap();
        add_rows(&store, 1).await;
        // Edit an old row, recompute everything with the old formula...
        exec(
            &store,
            "UPDATE operation_log SET object = 'x' WHERE seq = 1",
        )
        .await;
        rewrite_unkeyed(&store, 1).await;
        let broken = problem(&store).await;
        assert!(
            broken.contains("keying record") && broken.contains("before seq 5"),
            "{broken}"
        );
        // ...or cut the keyed rows off and set the head back.
        let store = unkeyed_store(2).await;
        key_chain(&store, &key, Timestamp::now()).await.unwrap();
        add_rows(&store, 1).await;
        for table in ["operation_log", "login_log"] {
            exec(&store, &format!("DELETE FROM {table} WHERE seq >= 4")).await;
        }
        rewrite_unkeyed(&store, 1).await;
        exec(&store, "UPDATE audit_head SET seq = 3").await;
        let broken = problem(&store).await;
        assert!(broken.contains("row seq 4 is missing"), "{broken}");
    }
}
