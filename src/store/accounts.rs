//! Accounts on assets and account templates. Secrets arrive here already
//! sealed by the vault and leave sealed; this file never sees plaintext.

use jiff::Timestamp;
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};

use super::{Result, StoreError, bool_i, parsed, ts};
use crate::model::{Account, SecretKind};

#[derive(Debug, Clone)]
pub struct NewAccount {
    pub id: String,
    pub asset_id: String,
    pub username: String,
    pub secret_kind: SecretKind,
    pub sealed_secret: Option<String>,
    pub privileged: bool,
    pub template_id: Option<String>,
}

pub async fn insert(
    conn: &mut AnyConnection,
    asset_name: &str,
    new: &NewAccount,
    now: Timestamp,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO accounts (id, asset_id, username, secret_kind, secret, privileged, active,
                               template_id, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, 1, $7, $8, $8)",
    )
    .bind(&new.id)
    .bind(&new.asset_id)
    .bind(&new.username)
    .bind(new.secret_kind.as_str())
    .bind(&new.sealed_secret)
    .bind(bool_i(new.privileged))
    .bind(&new.template_id)
    .bind(ts(now))
    .execute(conn)
    .await
    .map_err(|e| match &e {
        sqlx::Error::Database(db) if db.is_unique_violation() => StoreError::Duplicate {
            kind: "account",
            name: format!("{}@{asset_name}", new.username),
        },
        _ => StoreError::from(e),
    })?;
    Ok(())
}

fn account(row: &AnyRow) -> Result<Account> {
    Ok(Account {
        id: row.try_get("id")?,
        asset_id: row.try_get("asset_id")?,
        asset: row.try_get("asset")?,
        username: row.try_get("username")?,
        secret_kind: parsed(row, "secret_kind")?,
        privileged: row.try_get::<i64, _>("privileged")? != 0,
        active: row.try_get::<i64, _>("active")? != 0,
        web_login: parsed(row, "web_login")?,
    })
}

const SELECT: &str = "SELECT ac.id, ac.asset_id, a.name AS asset, ac.username, ac.secret_kind,
     ac.privileged, ac.active, ac.web_login FROM accounts ac JOIN assets a ON a.id = ac.asset_id";

pub async fn list(conn: &mut AnyConnection, asset_id: Option<&str>) -> Result<Vec<Account>> {
    let rows = match asset_id {
        Some(id) => {
            let sql = format!("{SELECT} WHERE ac.asset_id = $1 ORDER BY ac.username");
            sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind(id)
                .fetch_all(conn)
                .await?
        }
        None => {
            let sql = format!("{SELECT} ORDER BY a.name, ac.username");
            sqlx::query(sqlx::AssertSqlSafe(sql))
                .fetch_all(conn)
                .await?
        }
    };
    rows.iter().map(account).collect()
}

pub async fn find(
    conn: &mut AnyConnection,
    asset_id: &str,
    username: &str,
) -> Result<Option<Account>> {
    let sql = format!("{SELECT} WHERE ac.asset_id = $1 AND ac.username = $2");
    let row = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(asset_id)
        .bind(username)
        .fetch_optional(conn)
        .await?;
    row.as_ref().map(account).transpose()
}

/// The sealed secret of an account, for `upstream` (which opens it with the
/// vault only when it connects).
pub async fn sealed_secret(conn: &mut AnyConnection, account_id: &str) -> Result<Option<String>> {
    Ok(
        sqlx::query_scalar::<_, Option<String>>("SELECT secret FROM accounts WHERE id = $1")
            .bind(account_id)
            .fetch_optional(conn)
            .await?
            .flatten(),
    )
}

/// The secret kind and sealed secret of an account.
pub async fn secret(
    conn: &mut AnyConnection,
    account_id: &str,
) -> Result<(SecretKind, Option<String>)> {
    let row = sqlx::query("SELECT secret_kind, secret FROM accounts WHERE id = $1")
        .bind(account_id)
        .fetch_optional(conn)
        .await?
        .ok_or_else(|| StoreError::NotFound {
            kind: "account",
            name: account_id.to_string(),
        })?;
    Ok((parsed(&row, "secret_kind")?, row.try_get("secret")?))
}

pub async fn set_secret(
    conn: &mut AnyConnection,
    account_id: &str,
    kind: SecretKind,
    sealed: Option<&str>,
    now: Timestamp,
) -> Result<()> {
    sqlx::query("UPDATE accounts SET secret_kind = $2, secret = $3, updated_at = $4 WHERE id = $1")
        .bind(account_id)
        .bind(kind.as_str())
        .bind(sealed)
        .bind(ts(now))
        .execute(conn)
        .await?;
    Ok(())
}

pub async fn set_privileged(
    conn: &mut AnyConnection,
    account_id: &str,
    privileged: bool,
    now: Timestamp,
) -> Result<()> {
    sqlx::query("UPDATE accounts SET privileged = $2, updated_at = $3 WHERE id = $1")
        .bind(account_id)
        .bind(bool_i(privileged))
        .bind(ts(now))
        .execute(conn)
        .await?;
    Ok(())
}

/// Sets how a web account is logged in (`none`, `basic`, ...).
pub async fn set_web_login(
    conn: &mut AnyConnection,
    account_id: &str,
    login: &crate::model::WebLogin,
    now: Timestamp,
) -> Result<()> {
    sqlx::query("UPDATE accounts SET web_login = $2, updated_at = $3 WHERE id = $1")
        .bind(account_id)
        .bind(login.to_string())
        .bind(ts(now))
        .execute(conn)
        .await?;
    Ok(())
}

pub async fn set_active(
    conn: &mut AnyConnection,
    account_id: &str,
    active: bool,
    now: Timestamp,
) -> Result<()> {
    sqlx::query("UPDATE accounts SET active = $2, updated_at = $3 WHERE id = $1")
        .bind(account_id)
        .bind(bool_i(active))
        .bind(ts(now))
        .execute(conn)
        .await?;
    Ok(())
}

pub async fn delete(conn: &mut AnyConnection, account_id: &str) -> Result<()> {
    sqlx::query("DELETE FROM accounts WHERE id = $1")
        .bind(account_id)
        .execute(conn)
        .await?;
    Ok(())
}

// ------------------------------------------------------------- templates --

/// An account template: a username and secret to stamp onto many assets.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Template {
    pub id: String,
    pub name: String,
    pub username: String,
    pub secret_kind: SecretKind,
    pub privileged: bool,
    #[serde(skip)]
    pub sealed_secret: Option<String>,
}

pub async fn insert_template(conn: &mut AnyConnection, t: &Template, now: Timestamp) -> Result<()> {
    sqlx::query(
        "INSERT INTO account_templates (id, name, username, secret_kind, secret, privileged,
                                        created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(&t.id)
    .bind(&t.name)
    .bind(&t.username)
    .bind(t.secret_kind.as_str())
    .bind(&t.sealed_secret)
    .bind(bool_i(t.privileged))
    .bind(ts(now))
    .execute(conn)
    .await
    .map_err(super::unique("account template", &t.name))?;
    Ok(())
}

fn template(row: &AnyRow) -> Result<Template> {
    Ok(Template {
        id: row.try_get("id")?,
        name: row.try_get("name")?,
        username: row.try_get("username")?,
        secret_kind: parsed(row, "secret_kind")?,
        privileged: row.try_get::<i64, _>("privileged")? != 0,
        sealed_secret: row.try_get("secret")?,
    })
}

pub async fn find_template(conn: &mut AnyConnection, name: &str) -> Result<Option<Template>> {
    let row = sqlx::query(
        "SELECT id, name, username, secret_kind, secret, privileged FROM account_templates
         WHERE name = $1",
    )
    .bind(name)
    .fetch_optional(conn)
    .await?;
    row.as_ref().map(template).transpose()
}

pub async fn list_templates(conn: &mut AnyConnection) -> Result<Vec<Template>> {
    let rows = sqlx::query(
        "SELECT id, name, username, secret_kind, secret, privileged FROM account_templates
         ORDER BY name",
    )
    .fetch_all(conn)
    .await?;
    rows.iter().map(template).collect()
}

pub async fn delete_template(conn: &mut AnyConnection, id: &str) -> Result<()> {
    sqlx::query("DELETE FROM account_templates WHERE id = $1")
        .bind(id)
        .execute(conn)
        .await?;
    Ok(())
}
