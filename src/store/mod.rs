//! The store: the only place with SQL. It owns the connection pool, the
//! schema migrations (embedded from `migrations/`) and one file per
//! aggregate. Functions take a `&mut SqliteConnection` so that callers (the
//! `ops` layer) compose several of them, plus the audit row, in one
//! transaction: a change and its operation-log row land together or not at
//! all.
//!
//! Portability: statements use `$N` placeholders, TEXT ids, INTEGER booleans
//! and TEXT UTC timestamps, so the PostgreSQL backend planned for multi-node
//! can run the same queries. This module never sees a plaintext secret: the
//! vault seals them before they arrive.

pub mod accounts;
pub mod acls;
pub mod assets;
pub mod audit_log;
pub mod filters;
pub mod groups;
pub mod nodes;
pub mod permissions;
pub mod policy;
pub mod search;
pub mod sessions;
pub mod stats;
pub mod users;

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use jiff::Timestamp;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{Row, SqliteConnection};

pub use sqlx::SqliteConnection as Conn;

/// An open transaction; derefs to a connection for the aggregate functions.
pub type Tx = sqlx::Transaction<'static, sqlx::Sqlite>;

/// The migrations, in order. Each is applied once, in its own transaction.
const MIGRATIONS: &[(i64, &str, &str)] = &[
    (1, "init", include_str!("../../migrations/0001_init.sql")),
    (
        2,
        "refusals",
        include_str!("../../migrations/0002_refusals.sql"),
    ),
    (
        3,
        "totp_pending",
        include_str!("../../migrations/0003_totp_pending.sql"),
    ),
    (
        4,
        "screen text",
        include_str!("../../migrations/0004_screen_text.sql"),
    ),
    (
        5,
        "permission approval",
        include_str!("../../migrations/0005_perm_approval.sql"),
    ),
    (
        6,
        "audit key",
        include_str!("../../migrations/0006_audit_key.sql"),
    ),
    (
        7,
        "search",
        include_str!("../../migrations/0007_search.sql"),
    ),
];

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{kind} {name:?} does not exist")]
    NotFound { kind: &'static str, name: String },
    #[error("{kind} {name:?} already exists")]
    Duplicate { kind: &'static str, name: String },
    #[error("{0}")]
    Conflict(String),
    #[error(
        "the database is locked by another process (waited {0:?}); try again when it has finished"
    )]
    Busy(Duration),
    #[error("the database at {path} cannot be opened: {reason}")]
    Open { path: String, reason: String },
    #[error("stored data is not valid: {0}")]
    Corrupt(String),
    #[error("database error: {0}")]
    Db(#[source] sqlx::Error),
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        if let sqlx::Error::Database(db) = &e {
            // SQLITE_BUSY (5) and SQLITE_LOCKED (6), with extended codes.
            if let Some(code) = db.code()
                && let Ok(n) = code.parse::<i32>()
                && matches!(n & 0xff, 5 | 6)
            {
                return StoreError::Busy(Duration::ZERO);
            }
        }
        StoreError::Db(e)
    }
}

/// Maps a unique-constraint failure to `Duplicate`, anything else through
/// `From`.
pub(crate) fn unique(kind: &'static str, name: &str) -> impl FnOnce(sqlx::Error) -> StoreError {
    let name = name.to_string();
    move |e| match &e {
        sqlx::Error::Database(db) if db.is_unique_violation() => {
            StoreError::Duplicate { kind, name }
        }
        _ => StoreError::from(e),
    }
}

/// The database handle: a pool plus what it was opened with.
#[derive(Clone, Debug)]
pub struct Store {
    pool: SqlitePool,
    busy_timeout: Duration,
}

impl Store {
    /// Opens (creating if `create`) the SQLite database at `path` and
    /// applies pending migrations.
    pub async fn open(
        path: &Path,
        create: bool,
        busy_timeout: Duration,
        max_connections: u32,
    ) -> Result<Store> {
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(create)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            .busy_timeout(busy_timeout);
        let pool = SqlitePoolOptions::new()
            .max_connections(max_connections.max(1))
            .acquire_timeout(busy_timeout + Duration::from_secs(5))
            .connect_with(options)
            .await
            .map_err(|e| StoreError::Open {
                path: path.display().to_string(),
                reason: open_reason(&e),
            })?;
        let store = Store { pool, busy_timeout };
        store.migrate().await?;
        Ok(store)
    }

    /// An in-memory database with the schema applied; for tests.
    pub async fn in_memory() -> Result<Store> {
        let options = SqliteConnectOptions::from_str("sqlite::memory:")?.foreign_keys(true);
        // One connection: every connection to :memory: is its own database.
        let pool = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(options)
            .await?;
        let store = Store {
            pool,
            busy_timeout: Duration::from_secs(5),
        };
        store.migrate().await?;
        Ok(store)
    }

    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    /// Starts a write transaction. `BEGIN IMMEDIATE` takes the write lock up
    /// front, so two writers queue on the busy timeout instead of one of them
    /// failing when it upgrades a read lock.
    pub async fn begin(&self) -> Result<Tx> {
        self.pool
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(|e| self.busy(e))
    }

    /// A connection for reads.
    pub async fn conn(&self) -> Result<sqlx::pool::PoolConnection<sqlx::Sqlite>> {
        self.pool.acquire().await.map_err(|e| self.busy(e))
    }

    /// Commits, naming a lock timeout as such.
    pub async fn commit(&self, tx: Tx) -> Result<()> {
        tx.commit().await.map_err(|e| self.busy(e))
    }

    fn busy(&self, e: sqlx::Error) -> StoreError {
        match StoreError::from(e) {
            StoreError::Busy(_) => StoreError::Busy(self.busy_timeout),
            other => other,
        }
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }

    async fn migrate(&self) -> Result<()> {
        let mut conn = self.pool.acquire().await?;
        sqlx::raw_sql(
            "CREATE TABLE IF NOT EXISTS schema_migrations (
                 version BIGINT PRIMARY KEY,
                 description TEXT NOT NULL,
                 applied_at TEXT NOT NULL)",
        )
        .execute(&mut *conn)
        .await?;
        for (version, description, sql) in MIGRATIONS {
            let mut tx = conn.begin_with("BEGIN IMMEDIATE").await?;
            let applied: Option<i64> =
                sqlx::query_scalar("SELECT version FROM schema_migrations WHERE version = $1")
                    .bind(version)
                    .fetch_optional(&mut *tx)
                    .await?;
            if applied.is_none() {
                sqlx::raw_sql(sqlx::AssertSqlSafe(*sql))
                    .execute(&mut *tx)
                    .await?;
                sqlx::query(
                    "INSERT INTO schema_migrations (version, description, applied_at)
                     VALUES ($1, $2, $3)",
                )
                .bind(version)
                .bind(description)
                .bind(ts(Timestamp::now()))
                .execute(&mut *tx)
                .await?;
            }
            tx.commit().await?;
        }
        Ok(())
    }
}

use sqlx::Connection as _;

fn open_reason(e: &sqlx::Error) -> String {
    match e {
        sqlx::Error::Database(db) => db.message().to_string(),
        sqlx::Error::Io(io) => io.to_string(),
        other => other.to_string(),
    }
}

/// The one text form of a timestamp in the database: UTC, microseconds,
/// fixed width, so that text order is time order.
pub fn ts(t: Timestamp) -> String {
    t.strftime("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()
}

pub fn ts_opt(t: Option<Timestamp>) -> Option<String> {
    t.map(ts)
}

pub(crate) fn parse_ts(s: &str) -> Result<Timestamp> {
    s.parse()
        .map_err(|e| StoreError::Corrupt(format!("timestamp {s:?}: {e}")))
}

pub(crate) fn parse_ts_opt(s: Option<String>) -> Result<Option<Timestamp>> {
    s.as_deref().map(parse_ts).transpose()
}

/// Reads a column and parses it with `FromStr`, reporting bad stored text
/// as corruption rather than panicking.
pub(crate) fn parsed<T>(row: &sqlx::sqlite::SqliteRow, column: &str) -> Result<T>
where
    T: FromStr,
    T::Err: std::fmt::Display,
{
    let text: String = row.try_get(column)?;
    text.parse()
        .map_err(|e| StoreError::Corrupt(format!("{column} {text:?}: {e}")))
}

/// Bumps the change counter a running server watches to reload policy.
pub async fn bump_change_counter(conn: &mut SqliteConnection) -> Result<()> {
    sqlx::query("UPDATE change_counter SET counter = counter + 1 WHERE id = 1")
        .execute(conn)
        .await?;
    Ok(())
}

pub async fn change_counter(conn: &mut SqliteConnection) -> Result<i64> {
    Ok(
        sqlx::query_scalar("SELECT counter FROM change_counter WHERE id = 1")
            .fetch_one(conn)
            .await?,
    )
}

/// Whether anything sealed by the vault is stored (accounts, templates, TOTP
/// seeds), and which key ids sealed it.
pub async fn vault_key_ids(conn: &mut SqliteConnection) -> Result<Vec<String>> {
    Ok(
        sqlx::query_scalar("SELECT key_id FROM vault_keys ORDER BY created_at")
            .fetch_all(conn)
            .await?,
    )
}

pub async fn has_sealed_rows(conn: &mut SqliteConnection) -> Result<bool> {
    let n: i64 = sqlx::query_scalar(
        "SELECT (SELECT COUNT(*) FROM accounts WHERE secret IS NOT NULL)
              + (SELECT COUNT(*) FROM account_templates WHERE secret IS NOT NULL)
              + (SELECT COUNT(*) FROM users WHERE totp_secret IS NOT NULL)
              + (SELECT COUNT(*) FROM users WHERE totp_pending IS NOT NULL)",
    )
    .fetch_one(conn)
    .await?;
    Ok(n > 0)
}

pub async fn register_vault_key(
    conn: &mut SqliteConnection,
    key_id: &str,
    now: Timestamp,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO vault_keys (key_id, created_at) VALUES ($1, $2)
         ON CONFLICT (key_id) DO NOTHING",
    )
    .bind(key_id)
    .bind(ts(now))
    .execute(conn)
    .await?;
    Ok(())
}

pub(crate) fn bool_i(b: bool) -> i64 {
    i64::from(b)
}
