//! Copies a whole database into another, empty one: `rampart migrate`, for
//! an install that moves from SQLite to PostgreSQL (or back). Every table
//! is copied row for row, values unchanged, so the audit chain (whose
//! hashes cover each row's columns and values) verifies on the copy. The
//! screen-text index is not copied: it is derived from the recordings, and
//! the indexer rebuilds it on the new database at its bounded rate.

use sqlx::{AnyConnection, Row};

use super::audit_log::{self, Value};
use super::{Engine, Result, Store, StoreError};

/// Tables not copied: bookkeeping of the schema itself, and the search
/// index (derived data, engine-specific in form).
const NOT_COPIED: &[&str] = &[
    "schema_migrations",
    "search_blocks",
    "search_terms",
    "search_progress",
    "search_state",
];

/// What a copy moved.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Copied {
    /// Each table copied, in copy order, with its row count.
    pub tables: Vec<(String, u64)>,
}

impl Copied {
    pub fn rows(&self) -> u64 {
        self.tables.iter().map(|(_, n)| n).sum()
    }
}

/// The tables of a database in creation order (which is also an order in
/// which every foreign key points at a table already copied), with the
/// search index's internal tables left out.
async fn tables(conn: &mut AnyConnection) -> Result<Vec<String>> {
    let sql = match Engine::of(conn) {
        // sqlite_master lists objects in creation order; FTS5 keeps its
        // shadow tables there too (search_terms_data, ...).
        Engine::Sqlite => {
            "SELECT name FROM sqlite_master WHERE type = 'table'
               AND name NOT LIKE 'sqlite_%' ORDER BY rowid"
        }
        // pg_class oids grow with creation.
        Engine::Postgres => {
            "SELECT c.relname::TEXT FROM pg_class c
               JOIN pg_namespace n ON n.oid = c.relnamespace
              WHERE c.relkind = 'r' AND n.nspname = current_schema() ORDER BY c.oid"
        }
    };
    let names: Vec<String> = sqlx::query_scalar(sql).fetch_all(conn).await?;
    Ok(names
        .into_iter()
        .filter(|n| !NOT_COPIED.contains(&n.as_str()) && !n.starts_with("search_terms_"))
        .collect())
}

/// Copies every table of `from` into `to`, in one transaction on `to`.
/// `to` must hold the schema and no users (a database `rampart init` has
/// never run on); its few seeded rows (the root node, the counters) are
/// replaced by the source's. Both must be at the same schema version.
pub async fn copy(from: &Store, to: &Store) -> Result<Copied> {
    if to.is_initialised().await? {
        return Err(StoreError::Conflict(
            "the target database already holds a rampart install (it has users): \
             copy into an empty database"
                .into(),
        ));
    }
    let mut source = from.conn().await?;
    let mut tx = to.begin().await?;
    let (have, want) = (version(&mut source).await?, version(&mut tx).await?);
    if have != want {
        return Err(StoreError::Conflict(format!(
            "the source database is at schema version {have} and the target at {want}: \
             run the same rampart on both"
        )));
    }
    let names = tables(&mut source).await?;
    let present = tables(&mut tx).await?;
    if let Some(missing) = names.iter().find(|n| !present.contains(n)) {
        return Err(StoreError::Conflict(format!(
            "the target database has no table {missing}"
        )));
    }
    // Children before parents, so no foreign key is left dangling.
    for table in names.iter().rev() {
        sqlx::query(sqlx::AssertSqlSafe(format!("DELETE FROM {table}")))
            .execute(&mut *tx)
            .await?;
    }
    let mut copied = Copied::default();
    for table in &names {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!("SELECT * FROM {table}")))
            .fetch_all(&mut *source)
            .await?;
        for row in &rows {
            let fields = audit_log::row_fields(row)?;
            insert(&mut tx, table, &fields).await?;
        }
        copied.tables.push((table.clone(), rows.len() as u64));
    }
    to.commit(tx).await?;
    Ok(copied)
}

async fn version(conn: &mut AnyConnection) -> Result<i64> {
    Ok(
        sqlx::query_scalar("SELECT COALESCE(MAX(version), 0) FROM schema_migrations")
            .fetch_one(conn)
            .await?,
    )
}

/// Inserts one row as read from the source; table and column names come
/// from the source's own schema, never from input.
async fn insert(conn: &mut AnyConnection, table: &str, fields: &[(String, Value)]) -> Result<()> {
    let row: Vec<(&str, Value)> = fields
        .iter()
        .map(|(c, v)| (c.as_str(), v.clone()))
        .collect();
    audit_log::insert_fields(conn, table, &row).await
}

/// Counts the rows of `table`, for checks after a copy.
pub async fn count(conn: &mut AnyConnection, table: &str) -> Result<i64> {
    let row = sqlx::query(sqlx::AssertSqlSafe(format!("SELECT COUNT(*) FROM {table}")))
        .fetch_one(conn)
        .await?;
    Ok(row.try_get(0)?)
}
