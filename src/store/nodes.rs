//! The node tree. Paths are absolute and normalised (`/DEFAULT/prod`); every
//! ancestor of a node is itself a node, and `/DEFAULT` always exists.

use jiff::Timestamp;
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};

use super::{Result, StoreError, ts};
use crate::model::{self, Node};

fn node(row: &AnyRow) -> Result<Node> {
    Ok(Node {
        id: row.try_get("id")?,
        path: row.try_get("path")?,
        parent_id: row.try_get("parent_id")?,
    })
}

pub async fn find(conn: &mut AnyConnection, path: &str) -> Result<Option<Node>> {
    let row = sqlx::query("SELECT id, path, parent_id FROM nodes WHERE path = $1")
        .bind(path)
        .fetch_optional(conn)
        .await?;
    row.as_ref().map(node).transpose()
}

pub async fn get(conn: &mut AnyConnection, path: &str) -> Result<Node> {
    find(conn, path).await?.ok_or_else(|| StoreError::NotFound {
        kind: "node",
        name: path.to_string(),
    })
}

pub async fn list(conn: &mut AnyConnection) -> Result<Vec<Node>> {
    let rows = sqlx::query("SELECT id, path, parent_id FROM nodes ORDER BY path")
        .fetch_all(conn)
        .await?;
    rows.iter().map(node).collect()
}

/// Creates a normalised path and its missing ancestors; returns the node
/// and the paths that were created (empty if it already existed).
pub async fn ensure(
    conn: &mut AnyConnection,
    path: &str,
    now: Timestamp,
) -> Result<(Node, Vec<String>)> {
    let mut created = Vec::new();
    let mut chain = vec![path.to_string()];
    let mut cursor = path;
    while let Some(parent) = model::parent_node_path(cursor) {
        chain.push(parent.to_string());
        cursor = parent;
    }
    let mut parent_id: Option<String> = None;
    let mut last = None;
    for p in chain.iter().rev() {
        let existing = find(conn, p).await?;
        let n = match existing {
            Some(n) => n,
            None => {
                let n = Node {
                    id: model::new_id(),
                    path: p.clone(),
                    parent_id: parent_id.clone(),
                };
                sqlx::query(
                    "INSERT INTO nodes (id, path, parent_id, created_at) VALUES ($1, $2, $3, $4)",
                )
                .bind(&n.id)
                .bind(&n.path)
                .bind(&n.parent_id)
                .bind(ts(now))
                .execute(&mut *conn)
                .await?;
                created.push(p.clone());
                n
            }
        };
        parent_id = Some(n.id.clone());
        last = Some(n);
    }
    let node = last.ok_or_else(|| StoreError::Corrupt(format!("node path {path:?}")))?;
    Ok((node, created))
}

/// Moves the node `from` and every node below it to `to`: paths are
/// rewritten (`from/x` becomes `to/x`), ids stay, so the assets filed there
/// and the permissions and filters bound there follow. `to`'s parent must
/// already be a node (`new_parent_id`, `None` for a new root); the caller
/// checks that `to` is neither taken nor inside `from`. Returns each moved
/// node's old and new path, the node itself first.
pub async fn move_subtree(
    conn: &mut AnyConnection,
    from: &Node,
    to: &str,
    new_parent_id: Option<&str>,
) -> Result<Vec<(String, String)>> {
    let prefix = format!("{}/", from.path);
    let mut moved = Vec::new();
    for n in list(conn).await? {
        let rest = if n.id == from.id {
            ""
        } else if let Some(rest) = n.path.strip_prefix(&prefix) {
            rest
        } else {
            continue;
        };
        let path = if rest.is_empty() {
            to.to_string()
        } else {
            format!("{to}/{rest}")
        };
        moved.push((n.id, n.path, path));
    }
    // The node first, then its subtree in path order (`list` sorts by path).
    moved.sort_by_key(|(id, _, _)| *id != from.id);
    for (id, _, path) in &moved {
        sqlx::query("UPDATE nodes SET path = $2 WHERE id = $1")
            .bind(id)
            .bind(path)
            .execute(&mut *conn)
            .await
            .map_err(super::unique("node", path))?;
    }
    sqlx::query("UPDATE nodes SET parent_id = $2 WHERE id = $1")
        .bind(&from.id)
        .bind(new_parent_id)
        .execute(&mut *conn)
        .await?;
    Ok(moved.into_iter().map(|(_, old, new)| (old, new)).collect())
}

/// How many assets are filed directly under a node, and how many child
/// nodes it has: a node is only removed when both are zero.
pub async fn usage(conn: &mut AnyConnection, id: &str) -> Result<(i64, i64)> {
    let assets: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM asset_nodes WHERE node_id = $1")
        .bind(id)
        .fetch_one(&mut *conn)
        .await?;
    let children: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM nodes WHERE parent_id = $1")
        .bind(id)
        .fetch_one(conn)
        .await?;
    Ok((assets, children))
}

pub async fn asset_counts(conn: &mut AnyConnection) -> Result<Vec<(String, i64)>> {
    let rows = sqlx::query(
        "SELECT n.path, COUNT(a.asset_id) AS n FROM nodes n
         LEFT JOIN asset_nodes a ON a.node_id = n.id GROUP BY n.path ORDER BY n.path",
    )
    .fetch_all(conn)
    .await?;
    rows.iter()
        .map(|r| Ok((r.try_get("path")?, r.try_get("n")?)))
        .collect()
}

pub async fn delete(conn: &mut AnyConnection, id: &str) -> Result<()> {
    sqlx::query("DELETE FROM nodes WHERE id = $1")
        .bind(id)
        .execute(conn)
        .await?;
    Ok(())
}
