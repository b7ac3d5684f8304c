//! The screen-text index's tables (`migrations/0007_search.sql`): blocks of
//! recordings filed under their trigrams (SQLite FTS5, contentless, no
//! positions: only which blocks hold a term), how far each recording is
//! indexed, and the indexer's watermark. The `search` module decides what
//! goes in; this file only reads and writes rows.

use jiff::Timestamp;
use sqlx::{AnyConnection, Row};

use super::{Engine, Result, bool_i, parse_ts, parse_ts_opt, ts};

/// How far one recording is indexed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Progress {
    /// Bytes of the cast read into blocks (the next block starts here).
    pub cast_offset: u64,
    /// The session moment indexed up to.
    pub indexed_ms: u64,
    pub text_bytes: u64,
    /// Cast bytes passed over without indexing.
    pub skipped_bytes: u64,
    /// The line left unfinished at `cast_offset`, and when it began.
    pub carry: String,
    pub carry_ms: u64,
    pub done: bool,
}

/// A recorded session the indexer has not finished.
#[derive(Debug, Clone)]
pub struct Pending {
    pub session: String,
    /// The cast, relative to the recording dir.
    pub recording: String,
    pub started_at: Timestamp,
    /// The session has ended: its recording is complete.
    pub ended: bool,
    pub progress: Progress,
}

/// A stretch of a recording to file.
#[derive(Debug, Clone)]
pub struct NewBlock {
    pub cast_start: u64,
    pub cast_end: u64,
    pub first_ms: u64,
    pub last_ms: u64,
    pub carry: String,
    pub carry_ms: u64,
    pub last: bool,
    /// The block's distinct trigrams as words.
    pub terms: String,
}

/// A block that may hold a searched text, with its session.
#[derive(Debug, Clone)]
pub struct Candidate {
    pub block: i64,
    pub session: String,
    pub user: String,
    pub asset: String,
    pub account: String,
    pub started_at: Timestamp,
    pub recording: String,
    pub cast_start: u64,
    pub cast_end: u64,
    pub carry: String,
    pub carry_ms: u64,
    pub last: bool,
}

fn int(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

fn uint(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

/// Recorded sessions started at or after `since` whose recording is not
/// indexed to its end, oldest first.
pub async fn pending(
    conn: &mut AnyConnection,
    since: Timestamp,
    limit: i64,
) -> Result<Vec<Pending>> {
    let rows = sqlx::query(
        "SELECT s.id, s.recording, s.started_at, s.status,
                p.cast_offset, p.indexed_ms, p.text_bytes, p.skipped_bytes, p.carry, p.carry_ms
         FROM sessions s LEFT JOIN search_progress p ON p.session_id = s.id
         WHERE s.started_at >= $1 AND s.recording IS NOT NULL AND s.recording != ''
           AND COALESCE(p.done, 0) = 0
         ORDER BY s.started_at LIMIT $2",
    )
    .bind(ts(since))
    .bind(limit)
    .fetch_all(&mut *conn)
    .await?;
    rows.iter()
        .map(|r| {
            let progress = match r.try_get::<Option<i64>, _>(4)? {
                None => Progress::default(),
                Some(offset) => Progress {
                    cast_offset: uint(offset),
                    indexed_ms: uint(r.try_get(5)?),
                    text_bytes: uint(r.try_get(6)?),
                    skipped_bytes: uint(r.try_get(7)?),
                    carry: r.try_get(8)?,
                    carry_ms: uint(r.try_get(9)?),
                    done: false,
                },
            };
            Ok(Pending {
                session: r.try_get(0)?,
                recording: r.try_get(1)?,
                started_at: parse_ts(&r.try_get::<String, _>(2)?)?,
                ended: r.try_get::<String, _>(3)? != "live",
                progress,
            })
        })
        .collect()
}

/// Records how far `session` is indexed.
pub async fn set_progress(conn: &mut AnyConnection, session: &str, p: &Progress) -> Result<()> {
    sqlx::query(
        "INSERT INTO search_progress (session_id, cast_offset, indexed_ms, text_bytes,
                                      skipped_bytes, carry, carry_ms, done)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
         ON CONFLICT (session_id) DO UPDATE SET
             cast_offset = excluded.cast_offset, indexed_ms = excluded.indexed_ms,
             text_bytes = excluded.text_bytes, skipped_bytes = excluded.skipped_bytes,
             carry = excluded.carry, carry_ms = excluded.carry_ms, done = excluded.done",
    )
    .bind(session)
    .bind(int(p.cast_offset))
    .bind(int(p.indexed_ms))
    .bind(int(p.text_bytes))
    .bind(int(p.skipped_bytes))
    .bind(&p.carry)
    .bind(int(p.carry_ms))
    .bind(bool_i(p.done))
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Files a block of `session` under its terms.
pub async fn add_block(conn: &mut AnyConnection, session: &str, b: &NewBlock) -> Result<()> {
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO search_blocks (session_id, cast_start, cast_end, first_ms, last_ms,
                                    carry, carry_ms, last)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id",
    )
    .bind(session)
    .bind(int(b.cast_start))
    .bind(int(b.cast_end))
    .bind(int(b.first_ms))
    .bind(int(b.last_ms))
    .bind(&b.carry)
    .bind(int(b.carry_ms))
    .bind(bool_i(b.last))
    .fetch_one(&mut *conn)
    .await?;
    let sql = match Engine::of(conn) {
        Engine::Sqlite => "INSERT INTO search_terms (rowid, terms) VALUES ($1, $2)",
        Engine::Postgres => {
            "INSERT INTO search_terms (block_id, terms) VALUES ($1, string_to_array($2, ' '))"
        }
    };
    sqlx::query(sql)
        .bind(id)
        .bind(&b.terms)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// An FTS5 query asking for every term (each quoted: never query syntax).
fn all_of(terms: &[String]) -> String {
    terms
        .iter()
        .map(|t| format!("\"{}\"", t.replace('"', "\"\"")))
        .collect::<Vec<_>>()
        .join(" AND ")
}

/// Blocks holding every one of `terms` (every block when `terms` is
/// empty), newest session first, at most `limit`.
pub async fn candidates(
    conn: &mut AnyConnection,
    terms: &[String],
    limit: i64,
) -> Result<Vec<Candidate>> {
    let select = "SELECT b.id, b.session_id, s.user_name, s.asset_name, s.account, s.started_at,
                         s.recording, b.cast_start, b.cast_end, b.carry, b.carry_ms, b.last
                  FROM search_blocks b JOIN sessions s ON s.id = b.session_id";
    let order = "ORDER BY s.started_at DESC, b.id DESC LIMIT $1";
    let rows = if terms.is_empty() {
        sqlx::query(sqlx::AssertSqlSafe(format!("{select} {order}")))
            .bind(limit)
            .fetch_all(&mut *conn)
            .await?
    } else {
        // SQLite: an FTS5 query for every term; PostgreSQL: the array of
        // terms contains them all (GIN-indexed).
        let (matching, query) = match Engine::of(conn) {
            Engine::Sqlite => (
                "SELECT rowid FROM search_terms WHERE search_terms MATCH $2",
                all_of(terms),
            ),
            Engine::Postgres => (
                "SELECT block_id FROM search_terms WHERE terms @> string_to_array($2, ' ')",
                terms.join(" "),
            ),
        };
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "{select} WHERE b.id IN ({matching}) {order}"
        )))
        .bind(limit)
        .bind(query)
        .fetch_all(&mut *conn)
        .await?
    };
    rows.iter()
        .map(|r| {
            Ok(Candidate {
                block: r.try_get(0)?,
                session: r.try_get(1)?,
                user: r.try_get(2)?,
                asset: r.try_get(3)?,
                account: r.try_get(4)?,
                started_at: parse_ts(&r.try_get::<String, _>(5)?)?,
                recording: r.try_get::<Option<String>, _>(6)?.unwrap_or_default(),
                cast_start: uint(r.try_get(7)?),
                cast_end: uint(r.try_get(8)?),
                carry: r.try_get(9)?,
                carry_ms: uint(r.try_get(10)?),
                last: r.try_get::<i64, _>(11)? != 0,
            })
        })
        .collect()
}

/// What the indexer noted after its last pass.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct State {
    /// Every recorded session started before this is indexed to its end.
    pub watermark: Timestamp,
    /// The earliest recorded output not yet indexed; `None`: none.
    pub behind_since: Option<Timestamp>,
    pub updated_at: Timestamp,
}

pub async fn state(conn: &mut AnyConnection) -> Result<Option<State>> {
    let row =
        sqlx::query("SELECT watermark, behind_since, updated_at FROM search_state WHERE id = 1")
            .fetch_optional(&mut *conn)
            .await?;
    row.map(|r| {
        Ok(State {
            watermark: parse_ts(&r.try_get::<String, _>(0)?)?,
            behind_since: parse_ts_opt(r.try_get(1)?)?,
            updated_at: parse_ts(&r.try_get::<String, _>(2)?)?,
        })
    })
    .transpose()
}

pub async fn set_state(conn: &mut AnyConnection, s: &State) -> Result<()> {
    sqlx::query(
        "INSERT INTO search_state (id, watermark, behind_since, updated_at) VALUES (1, $1, $2, $3)
         ON CONFLICT (id) DO UPDATE SET watermark = excluded.watermark,
             behind_since = excluded.behind_since, updated_at = excluded.updated_at",
    )
    .bind(ts(s.watermark))
    .bind(s.behind_since.map(ts))
    .bind(ts(s.updated_at))
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Sessions whose output was only partly indexed (long exec output without
/// a pty), and the cast bytes left out.
pub async fn partly_indexed(conn: &mut AnyConnection) -> Result<(u64, u64)> {
    let row = sqlx::query(
        "SELECT COUNT(*), CAST(COALESCE(SUM(skipped_bytes), 0) AS BIGINT) FROM search_progress
         WHERE skipped_bytes > 0",
    )
    .fetch_one(&mut *conn)
    .await?;
    Ok((uint(row.try_get(0)?), uint(row.try_get(1)?)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn terms_are_never_query_syntax() {
        assert_eq!(
            all_of(&["abcde".into(), "x\"OR".into()]),
            r#""abcde" AND "x""OR""#
        );
    }
}
