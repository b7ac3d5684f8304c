//! Command filters and their bindings.

use std::collections::HashMap;

use jiff::Timestamp;
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};

use super::{Result, StoreError, bool_i, parsed, ts, unique};
use crate::model::{CommandFilter, Id};

/// Binding kinds as stored in `filter_bindings.kind`.
pub const USER: &str = "user";
pub const GROUP: &str = "group";
pub const ASSET: &str = "asset";
pub const NODE: &str = "node";

pub async fn insert(
    conn: &mut AnyConnection,
    filter: &CommandFilter,
    bindings: &[(&'static str, Id)],
    now: Timestamp,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO command_filters (id, name, pattern, action, priority, accounts, active,
                                      created_at, updated_at, scope)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8, $9)",
    )
    .bind(&filter.id)
    .bind(&filter.name)
    .bind(&filter.pattern)
    .bind(filter.action.as_str())
    .bind(filter.priority)
    .bind(filter.accounts.to_string())
    .bind(bool_i(filter.active))
    .bind(ts(now))
    .bind(filter.on.as_str())
    .execute(&mut *conn)
    .await
    .map_err(unique("filter", &filter.name))?;
    insert_bindings(conn, &filter.id, bindings).await
}

/// Replaces a filter's fields and bindings, keeping its id and creation
/// time (`filter.id` names the row; its name may change).
pub async fn update(
    conn: &mut AnyConnection,
    filter: &CommandFilter,
    bindings: &[(&'static str, Id)],
    now: Timestamp,
) -> Result<()> {
    let done = sqlx::query(
        "UPDATE command_filters SET name = $2, pattern = $3, action = $4, priority = $5,
                accounts = $6, active = $7, updated_at = $8, scope = $9
         WHERE id = $1",
    )
    .bind(&filter.id)
    .bind(&filter.name)
    .bind(&filter.pattern)
    .bind(filter.action.as_str())
    .bind(filter.priority)
    .bind(filter.accounts.to_string())
    .bind(bool_i(filter.active))
    .bind(ts(now))
    .bind(filter.on.as_str())
    .execute(&mut *conn)
    .await
    .map_err(unique("filter", &filter.name))?;
    if done.rows_affected() == 0 {
        return Err(StoreError::NotFound {
            kind: "filter",
            name: filter.name.clone(),
        });
    }
    sqlx::query("DELETE FROM filter_bindings WHERE filter_id = $1")
        .bind(&filter.id)
        .execute(&mut *conn)
        .await?;
    insert_bindings(conn, &filter.id, bindings).await
}

async fn insert_bindings(
    conn: &mut AnyConnection,
    filter_id: &str,
    bindings: &[(&'static str, Id)],
) -> Result<()> {
    for (kind, target) in bindings {
        sqlx::query(
            "INSERT INTO filter_bindings (filter_id, kind, target_id) VALUES ($1, $2, $3)
             ON CONFLICT DO NOTHING",
        )
        .bind(filter_id)
        .bind(*kind)
        .bind(target)
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

fn base(row: &AnyRow) -> Result<CommandFilter> {
    Ok(CommandFilter {
        id: row.try_get("id")?,
        name: row.try_get("name")?,
        pattern: row.try_get("pattern")?,
        action: parsed(row, "action")?,
        on: parsed(row, "scope")?,
        priority: row.try_get("priority")?,
        users: Vec::new(),
        groups: Vec::new(),
        assets: Vec::new(),
        nodes: Vec::new(),
        accounts: parsed(row, "accounts")?,
        active: row.try_get::<i64, _>("active")? != 0,
    })
}

/// Every filter with its bindings by name; also the raw binding ids for the
/// policy loader.
pub async fn list_with_ids(
    conn: &mut AnyConnection,
) -> Result<Vec<(CommandFilter, Vec<(String, Id)>)>> {
    let rows = sqlx::query(
        "SELECT id, name, pattern, action, scope, priority, accounts, active FROM command_filters
         ORDER BY priority, name",
    )
    .fetch_all(&mut *conn)
    .await?;
    let mut filters: Vec<(CommandFilter, Vec<(String, Id)>)> = rows
        .iter()
        .map(|r| Ok((base(r)?, Vec::new())))
        .collect::<Result<_>>()?;
    let index: HashMap<String, usize> = filters
        .iter()
        .enumerate()
        .map(|(i, (f, _))| (f.id.clone(), i))
        .collect();
    let bindings = sqlx::query(
        "SELECT b.filter_id, b.kind, b.target_id,
                COALESCE(u.name, g.name, a.name, n.path) AS name
         FROM filter_bindings b
         LEFT JOIN users u ON b.kind = 'user' AND u.id = b.target_id
         LEFT JOIN user_groups g ON b.kind = 'group' AND g.id = b.target_id
         LEFT JOIN assets a ON b.kind = 'asset' AND a.id = b.target_id
         LEFT JOIN nodes n ON b.kind = 'node' AND n.id = b.target_id
         ORDER BY 4",
    )
    .fetch_all(conn)
    .await?;
    for row in bindings {
        let fid: String = row.try_get("filter_id")?;
        let kind: String = row.try_get("kind")?;
        let target: String = row.try_get("target_id")?;
        // A binding whose target was removed names nothing and binds nothing.
        let Some(name) = row.try_get::<Option<String>, _>("name")? else {
            continue;
        };
        let Some(&i) = index.get(&fid) else { continue };
        let (f, ids) = &mut filters[i];
        match kind.as_str() {
            USER => f.users.push(name),
            GROUP => f.groups.push(name),
            ASSET => f.assets.push(name),
            NODE => f.nodes.push(name),
            other => return Err(StoreError::Corrupt(format!("binding kind {other:?}"))),
        }
        ids.push((kind, target));
    }
    Ok(filters)
}

pub async fn list(conn: &mut AnyConnection) -> Result<Vec<CommandFilter>> {
    Ok(list_with_ids(conn)
        .await?
        .into_iter()
        .map(|(f, _)| f)
        .collect())
}

pub async fn get(conn: &mut AnyConnection, name: &str) -> Result<CommandFilter> {
    list(conn)
        .await?
        .into_iter()
        .find(|f| f.name == name)
        .ok_or_else(|| StoreError::NotFound {
            kind: "filter",
            name: name.to_string(),
        })
}

pub async fn delete(conn: &mut AnyConnection, id: &str) -> Result<()> {
    sqlx::query("DELETE FROM command_filters WHERE id = $1")
        .bind(id)
        .execute(conn)
        .await?;
    Ok(())
}

/// Removes bindings that point at a deleted user, group, asset or node (the
/// binding table has no foreign key because it holds all four kinds).
pub async fn forget_target(conn: &mut AnyConnection, target_id: &str) -> Result<()> {
    sqlx::query("DELETE FROM filter_bindings WHERE target_id = $1")
        .bind(target_id)
        .execute(&mut *conn)
        .await?;
    sqlx::query("DELETE FROM acl_bindings WHERE target_id = $1")
        .bind(target_id)
        .execute(conn)
        .await?;
    Ok(())
}
