//! Permissions and their bindings to users, groups, assets and nodes.

use std::collections::HashMap;

use jiff::Timestamp;
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};

use super::{Result, StoreError, bool_i, parse_ts_opt, parsed, ts, ts_opt, unique};
use crate::model::{Id, Permission};

/// A permission to insert: the spec fields plus the ids it binds.
#[derive(Debug, Clone)]
pub struct NewPermission {
    pub permission: Permission,
    pub user_ids: Vec<Id>,
    pub group_ids: Vec<Id>,
    pub asset_ids: Vec<Id>,
    pub node_ids: Vec<Id>,
}

pub async fn insert(conn: &mut AnyConnection, new: &NewPermission, now: Timestamp) -> Result<()> {
    let p = &new.permission;
    sqlx::query(
        "INSERT INTO permissions (id, name, accounts, protocols, actions, valid_from, valid_until,
                                  active, comment, created_at, updated_at, require_approval)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $10, $11)",
    )
    .bind(&p.id)
    .bind(&p.name)
    .bind(p.accounts.to_string())
    .bind(p.protocols.to_string())
    .bind(p.actions.to_string())
    .bind(ts_opt(p.valid_from))
    .bind(ts_opt(p.valid_until))
    .bind(bool_i(p.active))
    .bind(&p.comment)
    .bind(ts(now))
    .bind(bool_i(p.require_approval))
    .execute(&mut *conn)
    .await
    .map_err(unique("permission", &p.name))?;
    insert_bindings(conn, new).await
}

/// Replaces a permission's fields and bindings, keeping its id and creation
/// time (`new.permission.id` names the row; its name may change).
pub async fn update(conn: &mut AnyConnection, new: &NewPermission, now: Timestamp) -> Result<()> {
    let p = &new.permission;
    let done = sqlx::query(
        "UPDATE permissions SET name = $2, accounts = $3, protocols = $4, actions = $5,
                valid_from = $6, valid_until = $7, active = $8, comment = $9, updated_at = $10,
                require_approval = $11
         WHERE id = $1",
    )
    .bind(&p.id)
    .bind(&p.name)
    .bind(p.accounts.to_string())
    .bind(p.protocols.to_string())
    .bind(p.actions.to_string())
    .bind(ts_opt(p.valid_from))
    .bind(ts_opt(p.valid_until))
    .bind(bool_i(p.active))
    .bind(&p.comment)
    .bind(ts(now))
    .bind(bool_i(p.require_approval))
    .execute(&mut *conn)
    .await
    .map_err(unique("permission", &p.name))?;
    if done.rows_affected() == 0 {
        return Err(StoreError::NotFound {
            kind: "permission",
            name: p.name.clone(),
        });
    }
    for sql in [
        "DELETE FROM permission_users WHERE permission_id = $1",
        "DELETE FROM permission_groups WHERE permission_id = $1",
        "DELETE FROM permission_assets WHERE permission_id = $1",
        "DELETE FROM permission_nodes WHERE permission_id = $1",
    ] {
        sqlx::query(sql).bind(&p.id).execute(&mut *conn).await?;
    }
    insert_bindings(conn, new).await
}

async fn insert_bindings(conn: &mut AnyConnection, new: &NewPermission) -> Result<()> {
    let p = &new.permission;
    let bindings: [(&str, &Vec<Id>); 4] = [
        (
            "INSERT INTO permission_users (permission_id, user_id) VALUES ($1, $2) ON CONFLICT DO NOTHING",
            &new.user_ids,
        ),
        (
            "INSERT INTO permission_groups (permission_id, group_id) VALUES ($1, $2) ON CONFLICT DO NOTHING",
            &new.group_ids,
        ),
        (
            "INSERT INTO permission_assets (permission_id, asset_id) VALUES ($1, $2) ON CONFLICT DO NOTHING",
            &new.asset_ids,
        ),
        (
            "INSERT INTO permission_nodes (permission_id, node_id) VALUES ($1, $2) ON CONFLICT DO NOTHING",
            &new.node_ids,
        ),
    ];
    for (sql, ids) in bindings {
        for id in ids {
            sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind(&p.id)
                .bind(id)
                .execute(&mut *conn)
                .await?;
        }
    }
    Ok(())
}

fn base(row: &AnyRow) -> Result<Permission> {
    Ok(Permission {
        id: row.try_get("id")?,
        name: row.try_get("name")?,
        users: Vec::new(),
        groups: Vec::new(),
        assets: Vec::new(),
        nodes: Vec::new(),
        accounts: parsed(row, "accounts")?,
        protocols: parsed(row, "protocols")?,
        actions: parsed(row, "actions")?,
        valid_from: parse_ts_opt(row.try_get("valid_from")?)?,
        valid_until: parse_ts_opt(row.try_get("valid_until")?)?,
        active: row.try_get::<i64, _>("active")? != 0,
        comment: row.try_get("comment")?,
        require_approval: row.try_get::<i64, _>("require_approval")? != 0,
    })
}

const BINDINGS: &str = "
    SELECT pu.permission_id AS pid, 'user' AS kind, u.name AS name FROM permission_users pu
        JOIN users u ON u.id = pu.user_id
    UNION ALL
    SELECT pg.permission_id, 'group', g.name FROM permission_groups pg
        JOIN user_groups g ON g.id = pg.group_id
    UNION ALL
    SELECT pa.permission_id, 'asset', a.name FROM permission_assets pa
        JOIN assets a ON a.id = pa.asset_id
    UNION ALL
    SELECT pn.permission_id, 'node', n.path FROM permission_nodes pn
        JOIN nodes n ON n.id = pn.node_id
    ORDER BY 3";

pub async fn list(conn: &mut AnyConnection) -> Result<Vec<Permission>> {
    let rows = sqlx::query(
        "SELECT id, name, accounts, protocols, actions, valid_from, valid_until, active, comment,
                require_approval
         FROM permissions ORDER BY name",
    )
    .fetch_all(&mut *conn)
    .await?;
    let mut perms = rows.iter().map(base).collect::<Result<Vec<_>>>()?;
    let index: HashMap<String, usize> = perms
        .iter()
        .enumerate()
        .map(|(i, p)| (p.id.clone(), i))
        .collect();
    for row in sqlx::query(BINDINGS).fetch_all(conn).await? {
        let pid: String = row.try_get("pid")?;
        let kind: String = row.try_get("kind")?;
        let name: String = row.try_get("name")?;
        let Some(&i) = index.get(&pid) else { continue };
        let p = &mut perms[i];
        match kind.as_str() {
            "user" => p.users.push(name),
            "group" => p.groups.push(name),
            "asset" => p.assets.push(name),
            "node" => p.nodes.push(name),
            other => return Err(StoreError::Corrupt(format!("binding kind {other:?}"))),
        }
    }
    Ok(perms)
}

pub async fn find(conn: &mut AnyConnection, name: &str) -> Result<Option<Permission>> {
    Ok(list(conn).await?.into_iter().find(|p| p.name == name))
}

pub async fn get(conn: &mut AnyConnection, name: &str) -> Result<Permission> {
    find(conn, name).await?.ok_or_else(|| StoreError::NotFound {
        kind: "permission",
        name: name.to_string(),
    })
}

pub async fn set_active(
    conn: &mut AnyConnection,
    id: &str,
    active: bool,
    now: Timestamp,
) -> Result<()> {
    sqlx::query("UPDATE permissions SET active = $2, updated_at = $3 WHERE id = $1")
        .bind(id)
        .bind(bool_i(active))
        .bind(ts(now))
        .execute(conn)
        .await?;
    Ok(())
}

pub async fn delete(conn: &mut AnyConnection, id: &str) -> Result<()> {
    sqlx::query("DELETE FROM permissions WHERE id = $1")
        .bind(id)
        .execute(conn)
        .await?;
    Ok(())
}
