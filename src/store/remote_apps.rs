//! The programs a Windows asset publishes for RemoteApp (migration 0015).

use jiff::Timestamp;
use sqlx::{AnyConnection, Row};

use super::{Result, StoreError, ts};
use crate::model::RemoteApp;

pub async fn insert(
    conn: &mut AnyConnection,
    asset_id: &str,
    app: &RemoteApp,
    now: Timestamp,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO remote_apps (asset_id, alias, name, arguments, created_at)
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(asset_id)
    .bind(&app.alias)
    .bind(&app.name)
    .bind(&app.arguments)
    .bind(ts(now))
    .execute(conn)
    .await
    .map_err(|e| match &e {
        sqlx::Error::Database(db) if db.is_unique_violation() => StoreError::Duplicate {
            kind: "remote app",
            name: format!("{}@{}", app.alias, app.asset),
        },
        _ => StoreError::from(e),
    })?;
    Ok(())
}

/// Removes the asset's program `alias`; false when it had none.
pub async fn delete(conn: &mut AnyConnection, asset_id: &str, alias: &str) -> Result<bool> {
    let done = sqlx::query("DELETE FROM remote_apps WHERE asset_id = $1 AND alias = $2")
        .bind(asset_id)
        .bind(alias)
        .execute(conn)
        .await?;
    Ok(done.rows_affected() == 1)
}

/// The published programs, of one asset or all, by asset and alias.
pub async fn list(conn: &mut AnyConnection, asset_id: Option<&str>) -> Result<Vec<RemoteApp>> {
    const SELECT: &str = "SELECT a.name AS asset, r.alias, r.name, r.arguments
         FROM remote_apps r JOIN assets a ON a.id = r.asset_id";
    let rows = match asset_id {
        Some(id) => {
            // Both texts are constants of this function.
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "{SELECT} WHERE r.asset_id = $1 ORDER BY r.alias"
            )))
            .bind(id)
            .fetch_all(conn)
            .await?
        }
        None => {
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "{SELECT} ORDER BY a.name, r.alias"
            )))
            .fetch_all(conn)
            .await?
        }
    };
    rows.iter()
        .map(|r| {
            Ok(RemoteApp {
                asset: r.try_get("asset")?,
                alias: r.try_get("alias")?,
                name: r.try_get("name")?,
                arguments: r.try_get("arguments")?,
            })
        })
        .collect()
}
