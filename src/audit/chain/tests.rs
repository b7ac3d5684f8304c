//! The chain's tests: what verify names after each kind of tampering,
//! with and without the master key, and the upgrade of an unkeyed chain.

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
    let report = verify(store, &Recordings::local(NOWHERE.into()))
        .await
        .unwrap();
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
    let report = verify(&store, &Recordings::local(NOWHERE.into()))
        .await
        .unwrap();
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
    let report = verify_with(&store, None, &Recordings::local(NOWHERE.into()))
        .await
        .unwrap();
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
    let report = verify_with(&store, None, &Recordings::local(NOWHERE.into()))
        .await
        .unwrap();
    assert_eq!((report.broken, report.unkeyed), (None, 4));

    let key = new_key();
    key_chain(&store, &key, Timestamp::now()).await.unwrap();
    key_chain(&store, &key, Timestamp::now()).await.unwrap();
    add_rows(&store, 1).await;
    let report = verify(&store, &Recordings::local(NOWHERE.into()))
        .await
        .unwrap();
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
