//! Login ACLs and their user/group bindings.

use std::collections::HashMap;

use jiff::Timestamp;
use sqlx::{AnyConnection, Row};

use super::{Result, StoreError, bool_i, parsed, ts, unique};
use crate::model::{Id, LoginAcl};

pub async fn insert(
    conn: &mut AnyConnection,
    acl: &LoginAcl,
    user_ids: &[Id],
    group_ids: &[Id],
    now: Timestamp,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO login_acls (id, name, action, priority, sources, windows, active, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(&acl.id)
    .bind(&acl.name)
    .bind(acl.action.as_str())
    .bind(acl.priority)
    .bind(acl.sources.join(","))
    .bind(acl.windows.join("|"))
    .bind(bool_i(acl.active))
    .bind(ts(now))
    .execute(&mut *conn)
    .await
    .map_err(unique("login acl", &acl.name))?;
    insert_bindings(conn, &acl.id, user_ids, group_ids).await
}

/// Replaces a login ACL's fields and bindings, keeping its id (`acl.id`
/// names the row; its name may change).
pub async fn update(
    conn: &mut AnyConnection,
    acl: &LoginAcl,
    user_ids: &[Id],
    group_ids: &[Id],
) -> Result<()> {
    let done = sqlx::query(
        "UPDATE login_acls SET name = $2, action = $3, priority = $4, sources = $5, windows = $6,
                active = $7
         WHERE id = $1",
    )
    .bind(&acl.id)
    .bind(&acl.name)
    .bind(acl.action.as_str())
    .bind(acl.priority)
    .bind(acl.sources.join(","))
    .bind(acl.windows.join("|"))
    .bind(bool_i(acl.active))
    .execute(&mut *conn)
    .await
    .map_err(unique("login acl", &acl.name))?;
    if done.rows_affected() == 0 {
        return Err(StoreError::NotFound {
            kind: "login acl",
            name: acl.name.clone(),
        });
    }
    sqlx::query("DELETE FROM acl_bindings WHERE acl_id = $1")
        .bind(&acl.id)
        .execute(&mut *conn)
        .await?;
    insert_bindings(conn, &acl.id, user_ids, group_ids).await
}

async fn insert_bindings(
    conn: &mut AnyConnection,
    acl_id: &str,
    user_ids: &[Id],
    group_ids: &[Id],
) -> Result<()> {
    let bindings = user_ids
        .iter()
        .map(|id| ("user", id))
        .chain(group_ids.iter().map(|id| ("group", id)));
    for (kind, target) in bindings {
        sqlx::query(
            "INSERT INTO acl_bindings (acl_id, kind, target_id) VALUES ($1, $2, $3)
             ON CONFLICT DO NOTHING",
        )
        .bind(acl_id)
        .bind(kind)
        .bind(target)
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

fn split(s: &str) -> Vec<String> {
    s.split(',')
        .map(str::trim)
        .filter(|x| !x.is_empty())
        .map(String::from)
        .collect()
}

pub async fn list(conn: &mut AnyConnection) -> Result<Vec<LoginAcl>> {
    let rows = sqlx::query(
        "SELECT id, name, action, priority, sources, windows, active FROM login_acls
         ORDER BY priority, name",
    )
    .fetch_all(&mut *conn)
    .await?;
    let mut acls = Vec::with_capacity(rows.len());
    for r in &rows {
        let sources: String = r.try_get("sources")?;
        let windows: String = r.try_get("windows")?;
        acls.push(LoginAcl {
            id: r.try_get("id")?,
            name: r.try_get("name")?,
            action: parsed(r, "action")?,
            priority: r.try_get("priority")?,
            users: Vec::new(),
            groups: Vec::new(),
            // Windows contain commas of their own (`Sat,Sun 10:00-12:00`), so
            // they are stored separated by '|' (see `insert`).
            sources: split(&sources),
            windows: windows
                .split('|')
                .map(str::trim)
                .filter(|x| !x.is_empty())
                .map(String::from)
                .collect(),
            active: r.try_get::<i64, _>("active")? != 0,
        });
    }
    let index: HashMap<String, usize> = acls
        .iter()
        .enumerate()
        .map(|(i, a)| (a.id.clone(), i))
        .collect();
    let bindings = sqlx::query(
        "SELECT b.acl_id, b.kind, COALESCE(u.name, g.name) AS name FROM acl_bindings b
         LEFT JOIN users u ON b.kind = 'user' AND u.id = b.target_id
         LEFT JOIN user_groups g ON b.kind = 'group' AND g.id = b.target_id
         ORDER BY 3",
    )
    .fetch_all(conn)
    .await?;
    for row in bindings {
        let aid: String = row.try_get("acl_id")?;
        let kind: String = row.try_get("kind")?;
        let Some(name) = row.try_get::<Option<String>, _>("name")? else {
            continue;
        };
        let Some(&i) = index.get(&aid) else { continue };
        match kind.as_str() {
            "user" => acls[i].users.push(name),
            "group" => acls[i].groups.push(name),
            other => return Err(StoreError::Corrupt(format!("acl binding kind {other:?}"))),
        }
    }
    Ok(acls)
}

pub async fn delete(conn: &mut AnyConnection, id: &str) -> Result<()> {
    sqlx::query("DELETE FROM login_acls WHERE id = $1")
        .bind(id)
        .execute(conn)
        .await?;
    Ok(())
}
