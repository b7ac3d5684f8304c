//! Session rows: written when a session starts (status `live`), completed
//! when it ends; `audit` then seals the row into the chain.

use jiff::Timestamp;
use serde::Serialize;
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};

use super::audit_log::Query;
use super::{Result, parse_ts, parse_ts_opt, ts};

#[derive(Debug, Clone, Serialize)]
pub struct SessionRow {
    pub id: String,
    pub user: String,
    pub asset: String,
    pub account: String,
    pub protocol: String,
    pub kind: String,
    pub source: String,
    pub started_at: Timestamp,
    pub ended_at: Option<Timestamp>,
    pub status: String,
    pub reason: String,
    pub recording: Option<String>,
    pub recording_sha256: Option<String>,
    pub bytes_in: i64,
    pub bytes_out: i64,
    pub exit_status: Option<i64>,
}

/// What a starting session records.
#[derive(Debug, Clone)]
pub struct NewSession {
    pub id: String,
    pub user_id: String,
    pub user_name: String,
    pub asset_id: String,
    pub asset_name: String,
    pub account: String,
    pub protocol: String,
    pub kind: String,
    pub source: String,
    pub recording: Option<String>,
}

pub async fn insert(conn: &mut AnyConnection, s: &NewSession, now: Timestamp) -> Result<()> {
    sqlx::query(
        "INSERT INTO sessions (id, user_id, user_name, asset_id, asset_name, account, protocol,
                               kind, source, started_at, status, recording)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, 'live', $11)",
    )
    .bind(&s.id)
    .bind(&s.user_id)
    .bind(&s.user_name)
    .bind(&s.asset_id)
    .bind(&s.asset_name)
    .bind(&s.account)
    .bind(&s.protocol)
    .bind(&s.kind)
    .bind(&s.source)
    .bind(ts(now))
    .bind(&s.recording)
    .execute(conn)
    .await?;
    Ok(())
}

/// How a session ended.
#[derive(Debug, Clone)]
pub struct Ending {
    pub status: String,
    pub reason: String,
    pub recording_sha256: Option<String>,
    pub bytes_in: i64,
    pub bytes_out: i64,
    pub exit_status: Option<i64>,
}

/// Closes a live session's row; false when it is not live any more (another
/// node took this one for dead and closed it), and then nothing changes: a
/// row is closed, and sealed, once.
pub async fn finish(
    conn: &mut AnyConnection,
    id: &str,
    ending: &Ending,
    now: Timestamp,
) -> Result<bool> {
    let done = sqlx::query(
        "UPDATE sessions SET ended_at = $2, status = $3, reason = $4, recording_sha256 = $5,
                             bytes_in = $6, bytes_out = $7, exit_status = $8
         WHERE id = $1 AND status = 'live'",
    )
    .bind(id)
    .bind(ts(now))
    .bind(&ending.status)
    .bind(&ending.reason)
    .bind(&ending.recording_sha256)
    .bind(ending.bytes_in)
    .bind(ending.bytes_out)
    .bind(ending.exit_status)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// The assets a user reached most recently, newest first, without repeats.
pub async fn recent_assets(
    conn: &mut AnyConnection,
    user: &str,
    limit: i64,
) -> Result<Vec<String>> {
    Ok(sqlx::query_scalar(
        "SELECT asset_name FROM sessions WHERE user_name = $1
         GROUP BY asset_name ORDER BY MAX(started_at) DESC LIMIT $2",
    )
    .bind(user)
    .bind(limit)
    .fetch_all(conn)
    .await?)
}

pub(crate) fn session(r: &AnyRow) -> Result<SessionRow> {
    Ok(SessionRow {
        id: r.try_get("id")?,
        user: r.try_get("user_name")?,
        asset: r.try_get("asset_name")?,
        account: r.try_get("account")?,
        protocol: r.try_get("protocol")?,
        kind: r.try_get("kind")?,
        source: r.try_get("source")?,
        started_at: parse_ts(&r.try_get::<String, _>("started_at")?)?,
        ended_at: parse_ts_opt(r.try_get("ended_at")?)?,
        status: r.try_get("status")?,
        reason: r.try_get("reason")?,
        recording: r.try_get("recording")?,
        recording_sha256: r.try_get("recording_sha256")?,
        bytes_in: r.try_get("bytes_in")?,
        bytes_out: r.try_get("bytes_out")?,
        exit_status: r.try_get("exit_status")?,
    })
}

pub async fn get(conn: &mut AnyConnection, id: &str) -> Result<SessionRow> {
    let row = sqlx::query(
        "SELECT id, user_name, asset_name, account, protocol, kind, source, started_at, ended_at,
                status, reason, recording, recording_sha256, bytes_in, bytes_out, exit_status
         FROM sessions WHERE id = $1",
    )
    .bind(id)
    .fetch_optional(conn)
    .await?
    .ok_or_else(|| super::StoreError::NotFound {
        kind: "session",
        name: id.to_string(),
    })?;
    session(&row)
}

pub async fn list(conn: &mut AnyConnection, q: &Query, live_only: bool) -> Result<Vec<SessionRow>> {
    let rows = sqlx::query(
        "SELECT id, user_name, asset_name, account, protocol, kind, source, started_at, ended_at,
                status, reason, recording, recording_sha256, bytes_in, bytes_out, exit_status
         FROM sessions
         WHERE ($1 IS NULL OR user_name = $1) AND ($2 IS NULL OR asset_name = $2)
           AND started_at >= $3 AND ($4 = 0 OR status = 'live')
           AND ($6 = '' OR started_at < $6)
         ORDER BY started_at DESC LIMIT $5",
    )
    .bind(&q.user)
    .bind(&q.asset)
    .bind(q.since.map(ts).unwrap_or_default())
    .bind(i64::from(live_only))
    .bind(q.limit.unwrap_or(i64::MAX))
    .bind(q.until.map(ts).unwrap_or_default())
    .fetch_all(conn)
    .await?;
    rows.iter().map(session).collect()
}
