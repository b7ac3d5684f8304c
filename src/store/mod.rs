//! The store: the only place with SQL. It owns the connection pool, the
//! schema migrations (embedded from `migrations/`) and one file per
//! aggregate. Functions take a `&mut AnyConnection` so that callers (the
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
pub mod cluster;
pub mod copy;
pub mod filters;
pub mod groups;
pub mod nodes;
pub mod permissions;
pub mod policy;
pub mod rdp_passwords;
pub mod rdp_tickets;
pub mod remote_apps;
pub mod search;
pub mod sessions;
pub mod spool;
pub mod stats;
pub mod users;

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use jiff::Timestamp;
use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{AnyConnection, AnyPool, Row};

pub use sqlx::AnyConnection as Conn;

/// An open write transaction ([`Store::begin`]); derefs to a connection for
/// the aggregate functions. It holds this process's turn among the store's
/// writers until it is committed or dropped (a drop rolls it back).
pub struct Tx {
    tx: sqlx::Transaction<'static, sqlx::Any>,
    _turn: tokio::sync::OwnedMutexGuard<()>,
}

impl Tx {
    pub async fn commit(self) -> std::result::Result<(), sqlx::Error> {
        let Tx { tx, _turn } = self;
        tx.commit().await
    }
}

impl std::ops::Deref for Tx {
    type Target = AnyConnection;
    fn deref(&self) -> &AnyConnection {
        &self.tx
    }
}

impl std::fmt::Debug for Tx {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Tx")
    }
}

impl std::ops::DerefMut for Tx {
    fn deref_mut(&mut self) -> &mut AnyConnection {
        &mut self.tx
    }
}

/// The SQLite migrations, in order. Each is applied once, in its own
/// transaction.
const SQLITE_MIGRATIONS: &[(i64, &str, &str)] = &[
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
    (
        8,
        "cluster",
        include_str!("../../migrations/0008_cluster.sql"),
    ),
    (
        9,
        "recording objects",
        include_str!("../../migrations/0009_recording_objects.sql"),
    ),
    (
        10,
        "rdp tickets",
        include_str!("../../migrations/0010_rdp_tickets.sql"),
    ),
    (
        11,
        "rdp passwords",
        include_str!("../../migrations/0011_rdp_passwords.sql"),
    ),
    (
        12,
        "databases",
        include_str!("../../migrations/0012_databases.sql"),
    ),
    (
        13,
        "database tls",
        include_str!("../../migrations/0013_database_tls.sql"),
    ),
    (14, "web", include_str!("../../migrations/0014_web.sql")),
    (
        15,
        "remote apps",
        include_str!("../../migrations/0015_remote_apps.sql"),
    ),
];

/// The PostgreSQL migrations: the first is the whole schema as of SQLite's
/// migration 7; later ones pair with the SQLite migration of their number.
const POSTGRES_MIGRATIONS: &[(i64, &str, &str)] = &[
    (
        7,
        "schema",
        include_str!("../../migrations/postgres/0007_schema.sql"),
    ),
    (
        8,
        "cluster",
        include_str!("../../migrations/postgres/0008_cluster.sql"),
    ),
    (
        9,
        "recording objects",
        include_str!("../../migrations/postgres/0009_recording_objects.sql"),
    ),
    (
        10,
        "rdp tickets",
        include_str!("../../migrations/postgres/0010_rdp_tickets.sql"),
    ),
    (
        11,
        "rdp passwords",
        include_str!("../../migrations/postgres/0011_rdp_passwords.sql"),
    ),
    (
        12,
        "databases",
        include_str!("../../migrations/postgres/0012_databases.sql"),
    ),
    (
        13,
        "database tls",
        include_str!("../../migrations/postgres/0013_database_tls.sql"),
    ),
    (
        14,
        "web",
        include_str!("../../migrations/postgres/0014_web.sql"),
    ),
    (
        15,
        "remote apps",
        include_str!("../../migrations/postgres/0015_remote_apps.sql"),
    ),
];

/// The advisory lock every PostgreSQL write transaction takes first: writes
/// are serialised across all nodes, as SQLite's `BEGIN IMMEDIATE` serialises
/// them on one, so the audit chain and the lockout counters need no other
/// coordination. Reads never take it.
const WRITE_LOCK: i64 = 0x0072_616d_7061_7274; // "rampart"

/// Which database engine a store runs on. The queries are the same; the few
/// statements that differ ask for this.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Engine {
    Sqlite,
    Postgres,
}

impl Engine {
    /// The engine behind a connection.
    pub fn of(conn: &AnyConnection) -> Engine {
        if conn.backend_name() == "PostgreSQL" {
            Engine::Postgres
        } else {
            Engine::Sqlite
        }
    }
}

/// Where the database is: `[database] url` resolved against the data dir.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Location {
    /// A SQLite file.
    Sqlite(PathBuf),
    /// A PostgreSQL server: the url as configured (it may hold a password,
    /// so it is never printed; [`Location::describe`] is).
    Postgres(String),
}

impl Location {
    /// Reads a database url: `sqlite://FILE` (relative to `base`) or
    /// `postgres://...`. Says what is wrong with anything else.
    pub fn parse(url: &str, base: &Path) -> std::result::Result<Location, String> {
        let url = url.trim();
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            return Ok(Location::Postgres(url.to_string()));
        }
        let bad = || {
            format!(
                "{} is not a database url: use sqlite://FILE or postgres://USER@HOST/DB",
                redact_url(url)
            )
        };
        let rest = url.strip_prefix("sqlite:").ok_or_else(bad)?;
        let rest = rest.strip_prefix("//").unwrap_or(rest);
        let path = rest.split('?').next().unwrap_or(rest);
        if path.is_empty() || path == ":memory:" {
            return Err(bad());
        }
        Ok(Location::Sqlite(base.join(path)))
    }

    /// The location without any password, for messages and logs.
    pub fn describe(&self) -> String {
        match self {
            Location::Sqlite(path) => path.display().to_string(),
            Location::Postgres(url) => redact_url(url),
        }
    }
}

/// `postgres://user:secret@host/db` without the secret.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return "(a database url)".into();
    };
    let (authority, tail) = match rest.find(['/', '?']) {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    let tail = match tail.split_once('?') {
        Some((path, query)) => {
            let kept: Vec<String> = query
                .split('&')
                .map(|kv| match kv.split_once('=') {
                    Some((k, _)) if k.eq_ignore_ascii_case("password") => format!("{k}=***"),
                    _ => kv.to_string(),
                })
                .collect();
            format!("{path}?{}", kept.join("&"))
        }
        None => tail.to_string(),
    };
    match authority.rsplit_once('@') {
        Some((userinfo, host)) => {
            let user = userinfo.split(':').next().unwrap_or("");
            if userinfo.contains(':') {
                format!("{scheme}://{user}:***@{host}{tail}")
            } else {
                format!("{scheme}://{user}@{host}{tail}")
            }
        }
        None => format!("{scheme}://{authority}{tail}"),
    }
}

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
        if let sqlx::Error::Database(db) = &e
            && let Some(code) = db.code()
        {
            // SQLITE_BUSY (5) and SQLITE_LOCKED (6), with extended codes;
            // PostgreSQL's lock_not_available (a lock_timeout ran out).
            let sqlite_busy = code.parse::<i32>().is_ok_and(|n| matches!(n & 0xff, 5 | 6));
            if sqlite_busy || code == "55P03" {
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
    pool: AnyPool,
    engine: Engine,
    busy_timeout: Duration,
    name: std::sync::Arc<str>,
    /// The writers' queue in this process: one write transaction at a time,
    /// first come first served, holding no pooled connection while it
    /// waits. Without it they all waited inside the database, each on a
    /// connection of its own, where SQLite's busy handler sleeps and
    /// retries (1, 2, 5, ... 100 ms) in no order: 15 logins while one
    /// session streamed (and the indexer filed its text) met 47 such sleeps,
    /// 5 with the queue (bench/ssh.sh's setup, `perf record -e
    /// syscalls:sys_enter_clock_nanosleep -g`). Other processes (the CLI,
    /// other nodes) still meet the database's own lock.
    writers: std::sync::Arc<tokio::sync::Mutex<()>>,
    /// When a write transaction other than a background one last began
    /// ([`Store::begin_background`] waits for a quiet moment after it).
    foreground: std::sync::Arc<std::sync::Mutex<Option<std::time::Instant>>>,
}

impl Store {
    /// Opens the database at `location` and applies pending migrations. A
    /// SQLite file is created when `create`; a PostgreSQL database must
    /// exist (its administrator creates it) and, unless `create`, must hold
    /// rampart's schema already.
    pub async fn open(
        location: &Location,
        create: bool,
        busy_timeout: Duration,
        max_connections: u32,
    ) -> Result<Store> {
        sqlx::any::install_default_drivers();
        let (url, engine) = match location {
            Location::Sqlite(path) => {
                let mode = if create { "rwc" } else { "rw" };
                (sqlite_url(path, mode), Engine::Sqlite)
            }
            Location::Postgres(url) => (url.clone(), Engine::Postgres),
        };
        let opened = |e: sqlx::Error| StoreError::Open {
            path: location.describe(),
            reason: open_reason(&e),
        };
        let options: AnyConnectOptions = url.parse().map_err(opened)?;
        let mut pool = pool_options(engine, busy_timeout);
        if engine == Engine::Sqlite {
            pool = pool
                .min_connections(1)
                .max_lifetime(SQLITE_CONNECTION_LIFETIME)
                // Also how often the pool looks for connections to close.
                .idle_timeout(SQLITE_CONNECTION_LIFETIME / 2);
        }
        let pool = pool
            .max_connections(max_connections.max(1))
            .acquire_timeout(busy_timeout + Duration::from_secs(5))
            .connect_with(options)
            .await
            .map_err(opened)?;
        let name = match location {
            Location::Sqlite(path) => std::fs::canonicalize(path)
                .unwrap_or_else(|_| path.clone())
                .display()
                .to_string(),
            Location::Postgres(url) => redact_url(url),
        };
        let store = Store {
            pool,
            engine,
            busy_timeout,
            name: name.into(),
            writers: Default::default(),
            foreground: Default::default(),
        };
        if engine == Engine::Postgres && !create && !store.has_schema().await? {
            return Err(StoreError::Open {
                path: location.describe(),
                reason: "it holds no rampart schema: run `rampart init` first".into(),
            });
        }
        store.migrate().await?;
        Ok(store)
    }

    /// An in-memory SQLite database with the schema applied; for tests.
    pub async fn in_memory() -> Result<Store> {
        sqlx::any::install_default_drivers();
        let options: AnyConnectOptions = "sqlite::memory:".parse()?;
        // One connection: every connection to :memory: is its own database.
        let pool = pool_options(Engine::Sqlite, Duration::from_secs(5))
            .max_connections(1)
            .connect_with(options)
            .await?;
        static MEMORY: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = MEMORY.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let store = Store {
            pool,
            engine: Engine::Sqlite,
            busy_timeout: Duration::from_secs(5),
            name: format!(":memory: {n}").into(),
            writers: Default::default(),
            foreground: Default::default(),
        };
        store.migrate().await?;
        Ok(store)
    }

    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    pub fn engine(&self) -> Engine {
        self.engine
    }

    /// Which database this is, for telling stores apart within a process:
    /// the SQLite file's canonical path, the PostgreSQL url without its
    /// password, or a unique name for an in-memory database.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Whether rampart's schema is there (a database `rampart init` set up).
    pub async fn has_schema(&self) -> Result<bool> {
        let sql = match self.engine {
            Engine::Sqlite => {
                "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = 'users'"
            }
            Engine::Postgres => {
                "SELECT COUNT(*) FROM information_schema.tables
                 WHERE table_schema = current_schema() AND table_name = 'users'"
            }
        };
        let n: i64 = sqlx::query_scalar(sql).fetch_one(&self.pool).await?;
        Ok(n > 0)
    }

    /// Whether the database holds an initialised rampart (its first user).
    pub async fn is_initialised(&self) -> Result<bool> {
        if !self.has_schema().await? {
            return Ok(false);
        }
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM users")
            .fetch_one(&self.pool)
            .await?;
        Ok(n > 0)
    }

    /// Starts a write transaction. Writers queue for the write lock up front
    /// (SQLite's `BEGIN IMMEDIATE`, PostgreSQL's [`WRITE_LOCK`]), so two of
    /// them wait on the busy timeout instead of one failing when it upgrades
    /// a read lock, and the audit chain is extended by one writer at a time.
    /// Writers in this process queue for their turn before that ([`Store`]'s
    /// `writers`), also for up to the busy timeout.
    pub async fn begin(&self) -> Result<Tx> {
        self.expect_writes();
        self.take_turn().await
    }

    /// Someone is about to write (a connection arrived): background
    /// writers hold back as if a write had begun ([`Store::begin_background`]).
    pub fn expect_writes(&self) {
        if let Ok(mut last) = self.foreground.lock() {
            *last = Some(std::time::Instant::now());
        }
    }

    /// Starts a write transaction for work no person waits on (the
    /// screen-text index): once no other write has begun for `quiet`, or
    /// after `at_most` whatever happens. A login writes several times, a
    /// few tens of milliseconds apart (its record, the session's, the
    /// audit chain's); a background writer that slipped in between would
    /// hold each of them up for as long as it takes. Background work on a
    /// busy bastion still goes on, one transaction per `at_most` at least.
    pub async fn begin_background(&self, quiet: Duration, at_most: Duration) -> Result<Tx> {
        let until = tokio::time::Instant::now() + at_most;
        loop {
            let last = self.foreground.lock().ok().and_then(|last| *last);
            let Some(wait) = last.and_then(|last| quiet.checked_sub(last.elapsed())) else {
                break;
            };
            if tokio::time::Instant::now() + wait >= until {
                tokio::time::sleep_until(until).await;
                break;
            }
            tokio::time::sleep(wait).await;
        }
        self.take_turn().await
    }

    async fn take_turn(&self) -> Result<Tx> {
        let turn = tokio::time::timeout(self.busy_timeout, self.writers.clone().lock_owned())
            .await
            .map_err(|_| StoreError::Busy(self.busy_timeout))?;
        let tx = match self.engine {
            Engine::Sqlite => self.pool.begin_with("BEGIN IMMEDIATE").await,
            Engine::Postgres => self.pool.begin().await,
        };
        let mut tx = tx.map_err(|e| self.busy(e))?;
        if self.engine == Engine::Postgres {
            sqlx::query("SELECT pg_advisory_xact_lock($1)")
                .bind(WRITE_LOCK)
                .execute(&mut *tx)
                .await
                .map_err(|e| self.busy(e))?;
        }
        Ok(Tx { tx, _turn: turn })
    }

    /// A connection for reads.
    pub async fn conn(&self) -> Result<sqlx::pool::PoolConnection<sqlx::Any>> {
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
        sqlx::raw_sql(
            "CREATE TABLE IF NOT EXISTS schema_migrations (
                 version BIGINT PRIMARY KEY,
                 description TEXT NOT NULL,
                 applied_at TEXT NOT NULL)",
        )
        .execute(&self.pool)
        .await?;
        let migrations = match self.engine {
            Engine::Sqlite => SQLITE_MIGRATIONS,
            Engine::Postgres => POSTGRES_MIGRATIONS,
        };
        for (version, description, sql) in migrations {
            let mut tx = self.begin().await?;
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

/// Frees every page SQLite caches that no statement holds, in every
/// connection of the process (at most [`SQLITE_HEAP_BYTES`] in all; the
/// next query reads them from the kernel's page cache again). Prepared
/// statements stay.
pub fn release_sqlite_cache() {
    // SAFETY: sqlite3_release_memory is thread-safe in this build
    // (SQLITE_THREADSAFE=1, as sqlx builds it) and frees only cache pages
    // no statement holds; it touches no memory Rust owns.
    unsafe {
        libsqlite3_sys::sqlite3_release_memory(i32::MAX);
    }
}

/// How long a SQLite connection lives. Each keeps its own prepared
/// statements (sqlx caches up to 100 per connection), and the pool hands
/// its connections out in turn, so none ever idles: after a burst of
/// logins had opened two more, SQLite held 2.2 MB of statements for good,
/// from 0.6 MB before (bench/ssh.sh). Renewed each minute, the pool shrinks
/// back to what is used at once; a new connection costs about a
/// millisecond.
const SQLITE_CONNECTION_LIFETIME: Duration = Duration::from_secs(60);

/// What SQLite may hold for the whole process (every connection's page
/// cache and statements) before it reuses cache pages instead of growing:
/// left at its default, eight connections could each cache 2 MB, and
/// SQLite alone reached 8 MB of a 40 MB bastion during a burst of logins
/// beside an indexed stream (bench/ssh.sh, `sqlite3_memory_highwater`).
/// A soft limit: past it SQLite frees cache, it never fails a query.
const SQLITE_HEAP_BYTES: u64 = 3 << 20;

/// Per-connection settings: SQLite's journal and busy wait; PostgreSQL's
/// lock wait, so a writer queued behind another gives up as SQLite's does.
fn pool_options(engine: Engine, busy_timeout: Duration) -> AnyPoolOptions {
    let millis = busy_timeout.as_millis().min(i32::MAX as u128);
    AnyPoolOptions::new().after_connect(move |conn, _| {
        Box::pin(async move {
            let settings = match engine {
                Engine::Sqlite => format!(
                    "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;
                     PRAGMA foreign_keys = ON; PRAGMA busy_timeout = {millis};
                     PRAGMA soft_heap_limit = {SQLITE_HEAP_BYTES};"
                ),
                Engine::Postgres => format!(
                    "SET lock_timeout = {millis}; SET TIME ZONE 'UTC';
                     SET client_min_messages = WARNING;"
                ),
            };
            sqlx::raw_sql(sqlx::AssertSqlSafe(settings))
                .execute(conn)
                .await?;
            Ok(())
        })
    })
}

/// A sqlx SQLite url for a file path (`mode=rwc` creates it).
fn sqlite_url(path: &Path, mode: &str) -> String {
    let text = path.display().to_string();
    // Characters that would end the path or start the query part.
    let escaped = text
        .replace('%', "%25")
        .replace('?', "%3F")
        .replace('#', "%23");
    format!("sqlite://{escaped}?mode={mode}")
}

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
pub(crate) fn parsed<T>(row: &sqlx::any::AnyRow, column: &str) -> Result<T>
where
    T: FromStr,
    T::Err: std::fmt::Display,
{
    let text: String = row.try_get(column)?;
    text.parse()
        .map_err(|e| StoreError::Corrupt(format!("{column} {text:?}: {e}")))
}

/// Bumps the change counter a running server watches to reload policy.
pub async fn bump_change_counter(conn: &mut AnyConnection) -> Result<()> {
    sqlx::query("UPDATE change_counter SET counter = counter + 1 WHERE id = 1")
        .execute(conn)
        .await?;
    Ok(())
}

pub async fn change_counter(conn: &mut AnyConnection) -> Result<i64> {
    Ok(
        sqlx::query_scalar("SELECT counter FROM change_counter WHERE id = 1")
            .fetch_one(conn)
            .await?,
    )
}

/// Whether anything sealed by the vault is stored (accounts, templates, TOTP
/// seeds), and which key ids sealed it.
pub async fn vault_key_ids(conn: &mut AnyConnection) -> Result<Vec<String>> {
    Ok(
        sqlx::query_scalar("SELECT key_id FROM vault_keys ORDER BY created_at")
            .fetch_all(conn)
            .await?,
    )
}

pub async fn has_sealed_rows(conn: &mut AnyConnection) -> Result<bool> {
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
    conn: &mut AnyConnection,
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

#[cfg(test)]
mod tests {
    use super::*;

    async fn sqlite_file(dir: &Path, busy: Duration, connections: u32) -> Store {
        Store::open(&Location::Sqlite(dir.join("w.db")), true, busy, connections)
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn writers_take_their_turns_in_order_and_wait_without_a_connection() {
        let dir = tempfile::tempdir().unwrap();
        // Two connections: the open transaction's and one to spare.
        let store = sqlite_file(dir.path(), Duration::from_secs(5), 2).await;
        let first = store.begin().await.unwrap();
        let order = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let mut writers = Vec::new();
        for n in 0..4 {
            let (store, order) = (store.clone(), order.clone());
            writers.push(tokio::spawn(async move {
                let mut tx = store.begin().await?;
                order.lock().unwrap().push(n);
                sqlx::query("SELECT 1").execute(&mut *tx).await?;
                store.commit(tx).await
            }));
            // Each is queued before the next asks.
            for _ in 0..10 {
                tokio::task::yield_now().await;
            }
        }
        // Four writers wait, and a reader still gets the spare connection.
        let read = tokio::time::timeout(Duration::from_secs(2), store.conn()).await;
        assert!(
            matches!(read, Ok(Ok(_))),
            "a read waited behind queued writers"
        );
        drop(read);
        assert!(order.lock().unwrap().is_empty());
        store.commit(first).await.unwrap();
        for w in writers {
            w.await.unwrap().unwrap();
        }
        assert_eq!(*order.lock().unwrap(), [0, 1, 2, 3]);
    }

    #[tokio::test]
    async fn a_background_writer_waits_for_a_quiet_moment_or_at_most_its_bound() {
        let dir = tempfile::tempdir().unwrap();
        let store = sqlite_file(dir.path(), Duration::from_secs(5), 2).await;
        let (quiet, at_most) = (Duration::from_millis(300), Duration::from_millis(900));
        let timed = |store: Store| async move {
            let began = std::time::Instant::now();
            let tx = store.begin_background(quiet, at_most).await.unwrap();
            store.commit(tx).await.unwrap();
            began.elapsed()
        };
        // Just opened (the migrations wrote): it waits for quiet, and
        // never past at_most.
        assert!(timed(store.clone()).await < at_most);

        let tx = store.begin().await.unwrap();
        store.commit(tx).await.unwrap();
        let written = std::time::Instant::now();
        timed(store.clone()).await;
        assert!(
            written.elapsed() >= quiet,
            "a background write began within {quiet:?} of another write"
        );

        // A login arriving counts as a write about to come.
        store.expect_writes();
        let arrived = std::time::Instant::now();
        timed(store.clone()).await;
        assert!(arrived.elapsed() >= quiet);

        // Writes that never pause hold it back for at_most, no longer.
        let busy = tokio::spawn({
            let store = store.clone();
            async move {
                loop {
                    store.expect_writes();
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            }
        });
        store.expect_writes();
        let waited = timed(store.clone()).await;
        busy.abort();
        assert!(waited >= at_most, "{waited:?}");
        assert!(waited < at_most + Duration::from_secs(4), "{waited:?}");
    }

    #[tokio::test]
    async fn a_writer_gives_up_after_the_busy_timeout_and_the_next_gets_in() {
        let dir = tempfile::tempdir().unwrap();
        let store = sqlite_file(dir.path(), Duration::from_millis(100), 4).await;
        let first = store.begin().await.unwrap();
        let e = store.begin().await.unwrap_err();
        assert!(
            matches!(e, StoreError::Busy(d) if d == Duration::from_millis(100)),
            "{e:?}"
        );
        // A transaction dropped without a commit gives the turn back too.
        drop(first);
        let tx = store.begin().await.unwrap();
        store.commit(tx).await.unwrap();
    }

    #[test]
    fn a_database_url_is_shown_without_its_password() {
        for (url, shown) in [
            (
                "postgres://rampart:s3cret@db.example:5432/rampart",
                "postgres://rampart:***@db.example:5432/rampart",
            ),
            (
                "postgres://rampart:p%40ss@db/r?sslmode=require",
                "postgres://rampart:***@db/r?sslmode=require",
            ),
            (
                "postgres://db/r?user=x&password=s3cret",
                "postgres://db/r?user=x&password=***",
            ),
            ("postgres://rampart@db/r", "postgres://rampart@db/r"),
            ("sqlite://rampart.db", "sqlite://rampart.db"),
            ("s3cret", "(a database url)"),
        ] {
            assert_eq!(redact_url(url), shown);
            assert!(!redact_url(url).contains("s3cret"));
        }
        let at = Location::Postgres("postgres://u:s3cret@h/d".into());
        assert_eq!(at.describe(), "postgres://u:***@h/d");
    }

    #[test]
    fn database_urls_are_read_or_refused_in_one_line() {
        let base = Path::new("/srv/rampart");
        assert_eq!(
            Location::parse("sqlite://rampart.db", base),
            Ok(Location::Sqlite(base.join("rampart.db")))
        );
        assert_eq!(
            Location::parse("sqlite:///var/lib/r.db?mode=rwc", base),
            Ok(Location::Sqlite("/var/lib/r.db".into()))
        );
        assert_eq!(
            Location::parse("postgresql://u@h/d", base),
            Ok(Location::Postgres("postgresql://u@h/d".into()))
        );
        for bad in [
            "sqlite::memory:",
            "sqlite://",
            "mysql://u:s3cret@h/d",
            "rampart.db",
        ] {
            let e = Location::parse(bad, base).unwrap_err();
            assert!(e.contains("use sqlite://FILE or postgres://"), "{e}");
            assert!(!e.contains("s3cret"), "{e}");
        }
    }
}
