//! The recordings still to upload to the object store, and those uploaded
//! (migration 0009).

use jiff::Timestamp;
use sqlx::{AnyConnection, Row};

use super::{Result, ts};

/// A recording waiting in this node's spool: its session and cast (relative
/// to the recording dir).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Waiting {
    pub session_id: String,
    pub recording: String,
}

/// Ended sessions of `node` (of any node with `None`) whose recording is not
/// uploaded yet, oldest first, at most `limit`. Each node uploads what it
/// recorded; a SQLite file has one node, whatever its name was.
pub async fn waiting(
    conn: &mut AnyConnection,
    node: Option<&str>,
    limit: i64,
) -> Result<Vec<Waiting>> {
    let rows = sqlx::query(
        "SELECT s.id, s.recording FROM sessions s
           LEFT JOIN recording_objects o ON o.session_id = s.id
           LEFT JOIN session_nodes n ON n.session_id = s.id
         WHERE s.recording IS NOT NULL AND s.status <> 'live' AND o.session_id IS NULL
           AND ($1 IS NULL OR n.node = $1)
         ORDER BY s.ended_at, s.id LIMIT $2",
    )
    .bind(node)
    .bind(limit)
    .fetch_all(conn)
    .await?;
    waitings(&rows)
}

/// Live sessions of `node` (of any node with `None`) that are recorded:
/// their recordings are uploaded in parts as they grow.
pub async fn live(
    conn: &mut AnyConnection,
    node: Option<&str>,
    limit: i64,
) -> Result<Vec<Waiting>> {
    let rows = sqlx::query(
        "SELECT s.id, s.recording FROM sessions s
           LEFT JOIN session_nodes n ON n.session_id = s.id
         WHERE s.recording IS NOT NULL AND s.status = 'live'
           AND ($1 IS NULL OR n.node = $1)
         ORDER BY s.started_at, s.id LIMIT $2",
    )
    .bind(node)
    .bind(limit)
    .fetch_all(conn)
    .await?;
    waitings(&rows)
}

/// Rows of (session id, recording).
fn waitings(rows: &[sqlx::any::AnyRow]) -> Result<Vec<Waiting>> {
    rows.iter()
        .map(|r| {
            Ok(Waiting {
                session_id: r.try_get(0)?,
                recording: r.try_get(1)?,
            })
        })
        .collect()
}

/// Notes a session's recording as uploaded.
pub async fn uploaded(
    conn: &mut AnyConnection,
    session_id: &str,
    bytes: i64,
    now: Timestamp,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO recording_objects (session_id, uploaded_at, bytes) VALUES ($1, $2, $3)
         ON CONFLICT (session_id) DO NOTHING",
    )
    .bind(session_id)
    .bind(ts(now))
    .bind(bytes)
    .execute(conn)
    .await?;
    Ok(())
}

/// Whether a session's recording is in the object store.
pub async fn is_uploaded(conn: &mut AnyConnection, session_id: &str) -> Result<bool> {
    let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM recording_objects WHERE session_id = $1")
        .bind(session_id)
        .fetch_one(conn)
        .await?;
    Ok(n > 0)
}
