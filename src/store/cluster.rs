//! The nodes sharing this database and which of them runs each session
//! (migration 0008). Every node keeps a heartbeat row; the others read it
//! to find a node that died (`cluster` explains the timing).

use jiff::Timestamp;
use sqlx::{AnyConnection, Row};

use super::sessions::{SessionRow, session};
use super::{Result, parse_ts, ts};

/// A node's heartbeat row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeRow {
    pub name: String,
    /// Which process holds the name: a new one each start.
    pub instance: String,
    pub started_at: Timestamp,
    pub heartbeat_at: Timestamp,
}

/// A row of `SELECT name, instance, started_at, heartbeat_at`.
fn node_row(r: &sqlx::any::AnyRow) -> Result<NodeRow> {
    Ok(NodeRow {
        name: r.try_get(0)?,
        instance: r.try_get(1)?,
        started_at: parse_ts(&r.try_get::<String, _>(2)?)?,
        heartbeat_at: parse_ts(&r.try_get::<String, _>(3)?)?,
    })
}

pub async fn node(conn: &mut AnyConnection, name: &str) -> Result<Option<NodeRow>> {
    let row = sqlx::query(
        "SELECT name, instance, started_at, heartbeat_at FROM cluster_nodes WHERE name = $1",
    )
    .bind(name)
    .fetch_optional(conn)
    .await?;
    row.as_ref().map(node_row).transpose()
}

/// Takes the name for this process (`instance`), replacing whatever row it
/// had.
pub async fn join(
    conn: &mut AnyConnection,
    name: &str,
    instance: &str,
    now: Timestamp,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO cluster_nodes (name, instance, started_at, heartbeat_at)
         VALUES ($1, $2, $3, $3)
         ON CONFLICT (name) DO UPDATE SET instance = excluded.instance,
             started_at = excluded.started_at, heartbeat_at = excluded.heartbeat_at",
    )
    .bind(name)
    .bind(instance)
    .bind(ts(now))
    .execute(conn)
    .await?;
    Ok(())
}

/// Renews this process's heartbeat; false when its row is gone or another
/// process holds the name now (the node was taken for dead).
pub async fn beat(
    conn: &mut AnyConnection,
    name: &str,
    instance: &str,
    now: Timestamp,
) -> Result<bool> {
    let done =
        sqlx::query("UPDATE cluster_nodes SET heartbeat_at = $3 WHERE name = $1 AND instance = $2")
            .bind(name)
            .bind(instance)
            .bind(ts(now))
            .execute(conn)
            .await?;
    Ok(done.rows_affected() == 1)
}

/// Nodes other than `me` whose last heartbeat is older than `before`.
pub async fn silent(conn: &mut AnyConnection, me: &str, before: Timestamp) -> Result<Vec<NodeRow>> {
    let rows = sqlx::query(
        "SELECT name, instance, started_at, heartbeat_at FROM cluster_nodes
         WHERE name <> $1 AND heartbeat_at < $2 ORDER BY name",
    )
    .bind(me)
    .bind(ts(before))
    .fetch_all(conn)
    .await?;
    rows.iter().map(node_row).collect()
}

/// Forgets a node whose sessions were dealt with; only the process seen
/// silent (`instance`), not one that took the name since.
pub async fn forget(conn: &mut AnyConnection, name: &str, instance: &str) -> Result<()> {
    sqlx::query("DELETE FROM cluster_nodes WHERE name = $1 AND instance = $2")
        .bind(name)
        .bind(instance)
        .execute(conn)
        .await?;
    Ok(())
}

/// Notes which node runs a session (in the transaction that inserts it).
pub async fn own(conn: &mut AnyConnection, session_id: &str, node: &str) -> Result<()> {
    sqlx::query("INSERT INTO session_nodes (session_id, node) VALUES ($1, $2)")
        .bind(session_id)
        .bind(node)
        .execute(conn)
        .await?;
    Ok(())
}

/// Gives `node` every session no node is recorded for (written before nodes
/// were: the install this node was, before others joined it); how many.
pub async fn claim_unowned(conn: &mut AnyConnection, node: &str) -> Result<u64> {
    let done = sqlx::query(
        "INSERT INTO session_nodes (session_id, node)
         SELECT s.id, $1 FROM sessions s
         WHERE NOT EXISTS (SELECT 1 FROM session_nodes n WHERE n.session_id = s.id)",
    )
    .bind(node)
    .execute(conn)
    .await?;
    Ok(done.rows_affected())
}

/// The node that runs (or ran) a session; `None` for sessions from before
/// nodes were recorded.
pub async fn owner(conn: &mut AnyConnection, session_id: &str) -> Result<Option<String>> {
    Ok(
        sqlx::query_scalar("SELECT node FROM session_nodes WHERE session_id = $1")
            .bind(session_id)
            .fetch_optional(conn)
            .await?,
    )
}

/// Ids of the sessions still marked live that `node` runs, oldest first;
/// with `unowned`, also those no node is recorded for (rows written before
/// nodes were).
pub async fn live_ids(conn: &mut AnyConnection, node: &str, unowned: bool) -> Result<Vec<String>> {
    Ok(sqlx::query_scalar(
        "SELECT s.id FROM sessions s LEFT JOIN session_nodes n ON n.session_id = s.id
         WHERE s.status = 'live' AND (n.node = $1 OR ($2 = 1 AND n.node IS NULL))
         ORDER BY s.started_at",
    )
    .bind(node)
    .bind(i64::from(unowned))
    .fetch_all(conn)
    .await?)
}

/// The sessions marked live that other nodes run, with their node, oldest
/// first.
pub async fn live_elsewhere(
    conn: &mut AnyConnection,
    me: &str,
) -> Result<Vec<(SessionRow, String)>> {
    let rows = sqlx::query(
        "SELECT s.id, s.user_name, s.asset_name, s.account, s.protocol, s.kind, s.source,
                s.started_at, s.ended_at, s.status, s.reason, s.recording, s.recording_sha256,
                s.bytes_in, s.bytes_out, s.exit_status, n.node
         FROM sessions s JOIN session_nodes n ON n.session_id = s.id
         WHERE s.status = 'live' AND n.node <> $1
         ORDER BY s.started_at, s.id",
    )
    .bind(me)
    .fetch_all(conn)
    .await?;
    rows.iter()
        .map(|r| Ok((session(r)?, r.try_get::<String, _>("node")?)))
        .collect()
}
