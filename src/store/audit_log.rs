//! The audit tables (login, operation, session, command and transfer logs)
//! and the end of their shared hash chain. The chain arithmetic lives in
//! `audit`; this file only moves rows (and lists what an operation changed,
//! for the reader). Rows are handled generically, as lists of (column,
//! value), so the writer and `audit verify` read exactly the same
//! representation of a row.

use jiff::Timestamp;
use serde::Serialize;
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Column, Row, TypeInfo, ValueRef};

use super::{Result, StoreError, parse_ts, ts};

/// The tables that carry the chain.
pub const CHAINED_TABLES: &[&str] = &[
    "login_log",
    "operation_log",
    "sessions",
    "commands",
    "transfers",
    "refusals",
];

fn checked(table: &str) -> Result<&'static str> {
    CHAINED_TABLES
        .iter()
        .find(|t| **t == table)
        .copied()
        .ok_or_else(|| StoreError::Corrupt(format!("{table} is not an audit table")))
}

/// One column value, as SQLite stores it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum Value {
    Null,
    Int(i64),
    Text(String),
}

impl From<&str> for Value {
    fn from(s: &str) -> Self {
        Value::Text(s.to_string())
    }
}
impl From<String> for Value {
    fn from(s: String) -> Self {
        Value::Text(s)
    }
}
impl From<i64> for Value {
    fn from(n: i64) -> Self {
        Value::Int(n)
    }
}
impl<T: Into<Value>> From<Option<T>> for Value {
    fn from(v: Option<T>) -> Self {
        v.map_or(Value::Null, Into::into)
    }
}
impl From<Timestamp> for Value {
    fn from(t: Timestamp) -> Self {
        Value::Text(ts(t))
    }
}

/// A row read generically: its columns in table order.
pub type Fields = Vec<(String, Value)>;

/// A row read generically: each column's value as stored.
pub(crate) fn row_fields(row: &AnyRow) -> Result<Fields> {
    let mut out = Vec::with_capacity(row.columns().len());
    for (i, column) in row.columns().iter().enumerate() {
        let raw = row.try_get_raw(i)?;
        let value = if raw.is_null() {
            Value::Null
        } else {
            // The storage class of this value, not the declared column type.
            match raw.type_info().name() {
                "INTEGER" | "BIGINT" | "SMALLINT" => Value::Int(row.try_get(i)?),
                "TEXT" => Value::Text(row.try_get(i)?),
                other => {
                    return Err(StoreError::Corrupt(format!(
                        "column {} holds a {other} value",
                        column.name()
                    )));
                }
            }
        };
        out.push((column.name().to_string(), value));
    }
    Ok(out)
}

/// The end of the chain, and the key that seals it (`audit` explains the
/// keying; this only moves the values).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Head {
    /// The last sequence number, 0 before the first row.
    pub seq: i64,
    /// Its hash.
    pub hash: String,
    /// The id of the master key whose chain key seals new rows; `None`
    /// until a rampart holding the master key has opened the database.
    pub key_id: Option<String>,
    /// The first seq sealed with that key.
    pub keyed_from: Option<i64>,
    /// The MAC that binds `key_id` and `keyed_from` to the chain.
    pub key_mac: Option<String>,
}

pub async fn head(conn: &mut AnyConnection) -> Result<Head> {
    let row =
        sqlx::query("SELECT seq, hash, key_id, keyed_from, key_mac FROM audit_head WHERE id = 1")
            .fetch_one(conn)
            .await?;
    Ok(Head {
        seq: row.try_get("seq")?,
        hash: row.try_get("hash")?,
        key_id: row.try_get("key_id")?,
        keyed_from: row.try_get("keyed_from")?,
        key_mac: row.try_get("key_mac")?,
    })
}

pub async fn set_head(conn: &mut AnyConnection, seq: i64, hash: &str) -> Result<()> {
    sqlx::query("UPDATE audit_head SET seq = $1, hash = $2 WHERE id = 1")
        .bind(seq)
        .bind(hash)
        .execute(conn)
        .await?;
    Ok(())
}

/// Records which key seals the chain from which seq on, with its MAC.
pub async fn set_key(
    conn: &mut AnyConnection,
    key_id: &str,
    keyed_from: i64,
    key_mac: &str,
) -> Result<()> {
    sqlx::query("UPDATE audit_head SET key_id = $1, keyed_from = $2, key_mac = $3 WHERE id = 1")
        .bind(key_id)
        .bind(keyed_from)
        .bind(key_mac)
        .execute(conn)
        .await?;
    Ok(())
}

/// Names the key that seals new rows, leaving where keying began as it is.
pub async fn set_key_id(conn: &mut AnyConnection, key_id: &str) -> Result<()> {
    sqlx::query("UPDATE audit_head SET key_id = $1 WHERE id = 1")
        .bind(key_id)
        .execute(conn)
        .await?;
    Ok(())
}

/// Inserts a row given as (column, value) pairs.
pub async fn insert(conn: &mut AnyConnection, table: &str, row: &[(&str, Value)]) -> Result<()> {
    let table = checked(table)?;
    for (column, _) in row {
        if !column
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b == b'_' || b.is_ascii_digit())
        {
            return Err(StoreError::Corrupt(format!("column name {column:?}")));
        }
    }
    // Table and column names come from the allow-list and the check above,
    // never from input.
    insert_fields(conn, table, row).await
}

/// Inserts a row given as (column, value) pairs into `table`, whose name and
/// columns the caller vouches for. A null is written as `NULL` rather than
/// bound: PostgreSQL types a bound null, and a text null does not go into a
/// BIGINT column.
pub(crate) async fn insert_fields(
    conn: &mut AnyConnection,
    table: &str,
    row: &[(&str, Value)],
) -> Result<()> {
    let columns: Vec<&str> = row.iter().map(|(c, _)| *c).collect();
    let mut n = 0;
    let values: Vec<String> = row
        .iter()
        .map(|(_, v)| match v {
            Value::Null => "NULL".to_string(),
            _ => {
                n += 1;
                format!("${n}")
            }
        })
        .collect();
    let sql = format!(
        "INSERT INTO {table} ({}) VALUES ({})",
        columns.join(", "),
        values.join(", ")
    );
    let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
    for (_, value) in row {
        q = match value {
            Value::Null => q,
            Value::Int(n) => q.bind(*n),
            Value::Text(s) => q.bind(s.clone()),
        };
    }
    q.execute(conn).await?;
    Ok(())
}

/// Reads one row by id, generically.
pub async fn read(conn: &mut AnyConnection, table: &str, id: &str) -> Result<Fields> {
    let table = checked(table)?;
    let sql = format!("SELECT * FROM {table} WHERE id = $1");
    let row = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(id)
        .fetch_optional(conn)
        .await?
        .ok_or_else(|| StoreError::NotFound {
            kind: "audit row",
            name: format!("{table}/{id}"),
        })?;
    row_fields(&row)
}

/// Puts a row into the chain: its sequence number, previous hash and hash.
pub async fn seal(
    conn: &mut AnyConnection,
    table: &str,
    id: &str,
    seq: i64,
    prev_hash: &str,
    hash: &str,
) -> Result<()> {
    let table = checked(table)?;
    let sql = format!("UPDATE {table} SET seq = $2, prev_hash = $3, hash = $4 WHERE id = $1");
    sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(id)
        .bind(seq)
        .bind(prev_hash)
        .bind(hash)
        .execute(conn)
        .await?;
    Ok(())
}

/// Every sealed row of one table, in chain order.
pub async fn sealed_rows(conn: &mut AnyConnection, table: &str) -> Result<Vec<Fields>> {
    let table = checked(table)?;
    let sql = format!("SELECT * FROM {table} WHERE seq IS NOT NULL ORDER BY seq");
    let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
        .fetch_all(conn)
        .await?;
    rows.iter().map(row_fields).collect()
}

/// Every sealed row of every chained table (with its table), and the head,
/// read in one read transaction: a consistent picture even while a server
/// goes on writing rows.
pub async fn chain_snapshot(
    conn: &mut AnyConnection,
) -> Result<(Vec<(&'static str, Fields)>, Head)> {
    use sqlx::Connection;
    let mut tx = conn.begin().await?;
    let mut rows = Vec::new();
    for table in CHAINED_TABLES {
        for fields in sealed_rows(&mut tx, table).await? {
            rows.push((*table, fields));
        }
    }
    let head = head(&mut tx).await?;
    tx.commit().await?;
    Ok((rows, head))
}

// ----------------------------------------------------------- the queries --

/// Filters shared by the `audit` listings.
#[derive(Debug, Clone, Default)]
pub struct Query {
    pub user: Option<String>,
    pub asset: Option<String>,
    pub since: Option<Timestamp>,
    /// Only rows before this time.
    pub until: Option<Timestamp>,
    pub limit: Option<i64>,
}

impl Query {
    fn limit(&self) -> i64 {
        self.limit.unwrap_or(i64::MAX)
    }
    fn since(&self) -> String {
        self.since.map(ts).unwrap_or_default()
    }
    /// `''` for no end.
    fn until(&self) -> String {
        self.until.map(ts).unwrap_or_default()
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct LoginRow {
    pub at: Timestamp,
    pub user: String,
    pub source: String,
    pub method: String,
    pub result: String,
    pub reason: String,
}

pub async fn logins(conn: &mut AnyConnection, q: &Query) -> Result<Vec<LoginRow>> {
    let rows = sqlx::query(
        "SELECT at, user_name, source, method, result, reason FROM login_log
         WHERE ($1 IS NULL OR user_name = $1) AND at >= $2 AND ($4 = '' OR at < $4)
         ORDER BY at DESC, seq DESC LIMIT $3",
    )
    .bind(&q.user)
    .bind(q.since())
    .bind(q.limit())
    .bind(q.until())
    .fetch_all(conn)
    .await?;
    rows.iter()
        .map(|r| {
            Ok(LoginRow {
                at: parse_ts(&r.try_get::<String, _>("at")?)?,
                user: r.try_get("user_name")?,
                source: r.try_get("source")?,
                method: r.try_get("method")?,
                result: r.try_get("result")?,
                reason: r.try_get("reason")?,
            })
        })
        .collect()
}

/// The successful login before the latest one (time, source) and the
/// failures between them: the notice shown right after a login.
pub async fn login_notice(
    conn: &mut AnyConnection,
    user: &str,
) -> Result<(Option<(Timestamp, String)>, i64)> {
    let oks = sqlx::query(
        "SELECT seq, at, source FROM login_log WHERE user_name = $1 AND result = 'ok'
         ORDER BY seq DESC LIMIT 2",
    )
    .bind(user)
    .fetch_all(&mut *conn)
    .await?;
    let latest: i64 = match oks.first() {
        Some(r) => r.try_get("seq")?,
        None => i64::MAX,
    };
    let (previous, after_seq) = match oks.get(1) {
        Some(r) => (
            Some((
                parse_ts(&r.try_get::<String, _>("at")?)?,
                r.try_get("source")?,
            )),
            r.try_get::<i64, _>("seq")?,
        ),
        None => (None, 0),
    };
    let failures: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM login_log WHERE user_name = $1 AND result = 'failed'
         AND seq > $2 AND seq < $3",
    )
    .bind(user)
    .bind(after_seq)
    .bind(latest)
    .fetch_one(conn)
    .await?;
    Ok((previous, failures))
}

#[derive(Debug, Clone, Serialize)]
pub struct OperationRow {
    pub at: Timestamp,
    pub actor: String,
    pub role: String,
    pub via: String,
    pub verb: String,
    pub object: String,
    pub before: Option<serde_json::Value>,
    pub after: Option<serde_json::Value>,
    /// `field: old -> new` for each top-level field that differs.
    pub changes: Vec<String>,
}

fn json(text: Option<String>) -> Result<Option<serde_json::Value>> {
    text.map(|t| {
        serde_json::from_str(&t).map_err(|e| StoreError::Corrupt(format!("operation detail: {e}")))
    })
    .transpose()
}

pub async fn operations(conn: &mut AnyConnection, q: &Query) -> Result<Vec<OperationRow>> {
    let rows = sqlx::query(
        "SELECT at, actor, actor_role, via, verb, object, before, after FROM operation_log
         WHERE ($1 IS NULL OR actor = $1) AND at >= $2 AND ($4 = '' OR at < $4)
         ORDER BY seq DESC LIMIT $3",
    )
    .bind(&q.user)
    .bind(q.since())
    .bind(q.limit())
    .bind(q.until())
    .fetch_all(conn)
    .await?;
    rows.iter()
        .map(|r| {
            let before = json(r.try_get("before")?)?;
            let after = json(r.try_get("after")?)?;
            Ok(OperationRow {
                at: parse_ts(&r.try_get::<String, _>("at")?)?,
                actor: r.try_get("actor")?,
                role: r.try_get("actor_role")?,
                via: r.try_get("via")?,
                verb: r.try_get("verb")?,
                object: r.try_get("object")?,
                changes: changes(before.as_ref(), after.as_ref()),
                before,
                after,
            })
        })
        .collect()
}

/// The fields that differ between an operation's before and after, as
/// `field: old -> new` lines (`field: new` when created, `field: old -> ∅`
/// when removed). Ids are left out: they only add noise for a reader.
fn changes(before: Option<&serde_json::Value>, after: Option<&serde_json::Value>) -> Vec<String> {
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

#[derive(Debug, Clone, Serialize)]
pub struct RefusalRow {
    pub at: Timestamp,
    pub user: String,
    pub source: String,
    pub request: String,
    pub reason: String,
}

pub async fn refusals(conn: &mut AnyConnection, q: &Query) -> Result<Vec<RefusalRow>> {
    let rows = sqlx::query(
        "SELECT at, user_name, source, request, reason FROM refusals
         WHERE ($1 IS NULL OR user_name = $1) AND at >= $2 AND ($4 = '' OR at < $4)
         ORDER BY seq DESC LIMIT $3",
    )
    .bind(&q.user)
    .bind(q.since())
    .bind(q.limit())
    .bind(q.until())
    .fetch_all(conn)
    .await?;
    rows.iter()
        .map(|r| {
            Ok(RefusalRow {
                at: parse_ts(&r.try_get::<String, _>("at")?)?,
                user: r.try_get("user_name")?,
                source: r.try_get("source")?,
                request: r.try_get("request")?,
                reason: r.try_get("reason")?,
            })
        })
        .collect()
}

#[derive(Debug, Clone, Serialize)]
pub struct CommandRow {
    pub at: Timestamp,
    pub session: String,
    pub user: String,
    pub asset: String,
    pub account: String,
    pub command: String,
    pub action: String,
    pub rule: Option<String>,
}

/// One command of a session with its output: a web visit's request with
/// its summary line and logged body.
#[derive(Debug, Clone, Serialize)]
pub struct SessionCommand {
    pub at: Timestamp,
    pub command: String,
    pub output: String,
    pub action: String,
}

/// A session's commands in the order they ran, at most `limit`.
pub async fn session_commands(
    conn: &mut AnyConnection,
    session_id: &str,
    limit: i64,
) -> Result<Vec<SessionCommand>> {
    let rows = sqlx::query(
        "SELECT at, command, output, action FROM commands WHERE session_id = $1
         ORDER BY seq LIMIT $2",
    )
    .bind(session_id)
    .bind(limit)
    .fetch_all(conn)
    .await?;
    rows.iter()
        .map(|r| {
            Ok(SessionCommand {
                at: parse_ts(&r.try_get::<String, _>("at")?)?,
                command: r.try_get("command")?,
                output: r.try_get("output")?,
                action: r.try_get("action")?,
            })
        })
        .collect()
}

pub async fn commands(conn: &mut AnyConnection, q: &Query) -> Result<Vec<CommandRow>> {
    let rows = sqlx::query(
        "SELECT at, session_id, user_name, asset_name, account, command, action, rule
         FROM commands
         WHERE ($1 IS NULL OR user_name = $1) AND ($2 IS NULL OR asset_name = $2) AND at >= $3 AND ($5 = '' OR at < $5)
         ORDER BY at DESC LIMIT $4",
    )
    .bind(&q.user)
    .bind(&q.asset)
    .bind(q.since())
    .bind(q.limit())
    .bind(q.until())
    .fetch_all(conn)
    .await?;
    rows.iter()
        .map(|r| {
            Ok(CommandRow {
                at: parse_ts(&r.try_get::<String, _>("at")?)?,
                session: r.try_get("session_id")?,
                user: r.try_get("user_name")?,
                asset: r.try_get("asset_name")?,
                account: r.try_get("account")?,
                command: r.try_get("command")?,
                action: r.try_get("action")?,
                rule: r.try_get("rule")?,
            })
        })
        .collect()
}

#[derive(Debug, Clone, Serialize)]
pub struct TransferRow {
    pub at: Timestamp,
    pub session: String,
    pub user: String,
    pub asset: String,
    pub account: String,
    pub operation: String,
    pub path: String,
    pub size: i64,
    pub result: String,
    pub sha256: Option<String>,
    /// Why a transfer failed or was denied; empty when it went well.
    pub error: String,
}

pub async fn transfers(conn: &mut AnyConnection, q: &Query) -> Result<Vec<TransferRow>> {
    let rows = sqlx::query(
        "SELECT at, session_id, user_name, asset_name, account, operation, path, size, result,
                sha256, error
         FROM transfers
         WHERE ($1 IS NULL OR user_name = $1) AND ($2 IS NULL OR asset_name = $2) AND at >= $3 AND ($5 = '' OR at < $5)
         ORDER BY at DESC LIMIT $4",
    )
    .bind(&q.user)
    .bind(&q.asset)
    .bind(q.since())
    .bind(q.limit())
    .bind(q.until())
    .fetch_all(conn)
    .await?;
    rows.iter()
        .map(|r| {
            Ok(TransferRow {
                at: parse_ts(&r.try_get::<String, _>("at")?)?,
                session: r.try_get("session_id")?,
                user: r.try_get("user_name")?,
                asset: r.try_get("asset_name")?,
                account: r.try_get("account")?,
                operation: r.try_get("operation")?,
                path: r.try_get("path")?,
                size: r.try_get("size")?,
                result: r.try_get("result")?,
                sha256: r.try_get("sha256")?,
                error: r.try_get("error")?,
            })
        })
        .collect()
}
