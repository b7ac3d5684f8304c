//! User groups and their members.

use jiff::Timestamp;
use sqlx::{AnyConnection, Row};

use super::{Result, StoreError, ts, unique};
use crate::model::{Group, Id};

pub async fn insert(conn: &mut AnyConnection, id: &str, name: &str, now: Timestamp) -> Result<()> {
    sqlx::query("INSERT INTO user_groups (id, name, created_at) VALUES ($1, $2, $3)")
        .bind(id)
        .bind(name)
        .bind(ts(now))
        .execute(conn)
        .await
        .map_err(unique("group", name))?;
    Ok(())
}

pub async fn find(conn: &mut AnyConnection, name: &str) -> Result<Option<Group>> {
    let row = sqlx::query("SELECT id, name FROM user_groups WHERE name = $1")
        .bind(name)
        .fetch_optional(&mut *conn)
        .await?;
    let Some(row) = row else { return Ok(None) };
    let id: Id = row.try_get("id")?;
    let members = members(conn, &id).await?;
    Ok(Some(Group {
        id,
        name: row.try_get("name")?,
        members,
    }))
}

pub async fn get(conn: &mut AnyConnection, name: &str) -> Result<Group> {
    find(conn, name).await?.ok_or_else(|| StoreError::NotFound {
        kind: "group",
        name: name.to_string(),
    })
}

pub async fn members(conn: &mut AnyConnection, group_id: &str) -> Result<Vec<String>> {
    Ok(sqlx::query_scalar(
        "SELECT u.name FROM users u JOIN group_members m ON m.user_id = u.id
         WHERE m.group_id = $1 ORDER BY u.name",
    )
    .bind(group_id)
    .fetch_all(conn)
    .await?)
}

pub async fn list(conn: &mut AnyConnection) -> Result<Vec<Group>> {
    let rows = sqlx::query(
        "SELECT g.id, g.name, u.name AS member
         FROM user_groups g
         LEFT JOIN group_members m ON m.group_id = g.id
         LEFT JOIN users u ON u.id = m.user_id
         ORDER BY g.name, u.name",
    )
    .fetch_all(conn)
    .await?;
    let mut groups: Vec<Group> = Vec::new();
    for row in rows {
        let id: Id = row.try_get("id")?;
        let member: Option<String> = row.try_get("member")?;
        match groups.last_mut() {
            Some(g) if g.id == id => g.members.extend(member),
            _ => groups.push(Group {
                id,
                name: row.try_get("name")?,
                members: member.into_iter().collect(),
            }),
        }
    }
    Ok(groups)
}

/// Adds a member; returns false if they already were one.
pub async fn add_member(conn: &mut AnyConnection, group_id: &str, user_id: &str) -> Result<bool> {
    let done = sqlx::query(
        "INSERT INTO group_members (group_id, user_id) VALUES ($1, $2)
         ON CONFLICT (group_id, user_id) DO NOTHING",
    )
    .bind(group_id)
    .bind(user_id)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

pub async fn remove_member(
    conn: &mut AnyConnection,
    group_id: &str,
    user_id: &str,
) -> Result<bool> {
    let done = sqlx::query("DELETE FROM group_members WHERE group_id = $1 AND user_id = $2")
        .bind(group_id)
        .bind(user_id)
        .execute(conn)
        .await?;
    Ok(done.rows_affected() == 1)
}

pub async fn delete(conn: &mut AnyConnection, id: &str) -> Result<()> {
    sqlx::query("DELETE FROM user_groups WHERE id = $1")
        .bind(id)
        .execute(conn)
        .await?;
    Ok(())
}
