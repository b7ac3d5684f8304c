//! Users, their public keys, and the per-user and per-address failure
//! counters used by lockout.

use jiff::Timestamp;
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};

use super::{Result, StoreError, bool_i, parse_ts, parse_ts_opt, parsed, ts, ts_opt, unique};
use crate::model::{Id, Role, User, UserKey};

/// A user row with the fields only `auth` and `ops` need: the password hash
/// and the sealed TOTP seed (never shown), and the failure state.
#[derive(Debug, Clone)]
pub struct UserRecord {
    pub user: User,
    pub password_hash: Option<String>,
    pub totp_secret: Option<String>,
    pub totp_last_step: Option<u64>,
    pub failures: u32,
    pub failure_window_start: Option<Timestamp>,
}

/// What `insert` needs.
#[derive(Debug, Clone)]
pub struct NewUser {
    pub id: Id,
    pub name: String,
    pub role: Role,
    pub email: Option<String>,
    pub password_hash: Option<String>,
    pub must_change_password: bool,
    pub active: bool,
    pub expires_at: Option<Timestamp>,
}

const COLUMNS: &str = "id, name, role, email, password_hash, must_change_password, totp_secret,
     totp_last_step, active, expires_at, failures, failure_window_start, locked_until,
     last_login_at, last_login_from, created_at";

fn record(row: &AnyRow) -> Result<UserRecord> {
    let password_hash: Option<String> = row.try_get("password_hash")?;
    let totp_secret: Option<String> = row.try_get("totp_secret")?;
    let step: Option<i64> = row.try_get("totp_last_step")?;
    let failures: i64 = row.try_get("failures")?;
    Ok(UserRecord {
        user: User {
            id: row.try_get("id")?,
            name: row.try_get("name")?,
            role: parsed(row, "role")?,
            email: row.try_get("email")?,
            active: row.try_get::<i64, _>("active")? != 0,
            expires_at: parse_ts_opt(row.try_get("expires_at")?)?,
            must_change_password: row.try_get::<i64, _>("must_change_password")? != 0,
            has_password: password_hash.is_some(),
            has_totp: totp_secret.is_some(),
            locked_until: parse_ts_opt(row.try_get("locked_until")?)?,
            last_login_at: parse_ts_opt(row.try_get("last_login_at")?)?,
            last_login_from: row.try_get("last_login_from")?,
            created_at: parse_ts(&row.try_get::<String, _>("created_at")?)?,
        },
        password_hash,
        totp_secret,
        totp_last_step: step.and_then(|s| u64::try_from(s).ok()),
        failures: u32::try_from(failures).unwrap_or(u32::MAX),
        failure_window_start: parse_ts_opt(row.try_get("failure_window_start")?)?,
    })
}

pub async fn insert(conn: &mut AnyConnection, new: &NewUser, now: Timestamp) -> Result<()> {
    sqlx::query(
        "INSERT INTO users (id, name, role, email, password_hash, must_change_password, active,
                            expires_at, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9)",
    )
    .bind(&new.id)
    .bind(&new.name)
    .bind(new.role.as_str())
    .bind(&new.email)
    .bind(&new.password_hash)
    .bind(bool_i(new.must_change_password))
    .bind(bool_i(new.active))
    .bind(ts_opt(new.expires_at))
    .bind(ts(now))
    .execute(conn)
    .await
    .map_err(unique("user", &new.name))?;
    Ok(())
}

pub async fn find(conn: &mut AnyConnection, name: &str) -> Result<Option<UserRecord>> {
    let sql = format!("SELECT {COLUMNS} FROM users WHERE name = $1");
    let row = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(name)
        .fetch_optional(conn)
        .await?;
    row.as_ref().map(record).transpose()
}

pub async fn get(conn: &mut AnyConnection, name: &str) -> Result<UserRecord> {
    find(conn, name).await?.ok_or_else(|| StoreError::NotFound {
        kind: "user",
        name: name.to_string(),
    })
}

pub async fn list(conn: &mut AnyConnection) -> Result<Vec<UserRecord>> {
    let sql = format!("SELECT {COLUMNS} FROM users ORDER BY name");
    let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
        .fetch_all(conn)
        .await?;
    rows.iter().map(record).collect()
}

pub async fn count(conn: &mut AnyConnection) -> Result<i64> {
    Ok(sqlx::query_scalar("SELECT COUNT(*) FROM users")
        .fetch_one(conn)
        .await?)
}

/// Names of the groups a user belongs to.
pub async fn group_names(conn: &mut AnyConnection, user_id: &str) -> Result<Vec<String>> {
    Ok(sqlx::query_scalar(
        "SELECT g.name FROM user_groups g JOIN group_members m ON m.group_id = g.id
         WHERE m.user_id = $1 ORDER BY g.name",
    )
    .bind(user_id)
    .fetch_all(conn)
    .await?)
}

pub async fn group_ids(conn: &mut AnyConnection, user_id: &str) -> Result<Vec<Id>> {
    Ok(
        sqlx::query_scalar("SELECT group_id FROM group_members WHERE user_id = $1")
            .bind(user_id)
            .fetch_all(conn)
            .await?,
    )
}

/// The editable profile fields.
#[derive(Debug, Clone)]
pub struct Profile {
    pub role: Role,
    pub email: Option<String>,
    pub active: bool,
    pub expires_at: Option<Timestamp>,
}

pub async fn update_profile(
    conn: &mut AnyConnection,
    id: &str,
    profile: &Profile,
    now: Timestamp,
) -> Result<()> {
    sqlx::query(
        "UPDATE users SET role = $2, email = $3, active = $4, expires_at = $5, updated_at = $6
         WHERE id = $1",
    )
    .bind(id)
    .bind(profile.role.as_str())
    .bind(&profile.email)
    .bind(bool_i(profile.active))
    .bind(ts_opt(profile.expires_at))
    .bind(ts(now))
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn set_password(
    conn: &mut AnyConnection,
    id: &str,
    hash: &str,
    must_change: bool,
    now: Timestamp,
) -> Result<()> {
    sqlx::query(
        "UPDATE users SET password_hash = $2, must_change_password = $3, updated_at = $4
         WHERE id = $1",
    )
    .bind(id)
    .bind(hash)
    .bind(bool_i(must_change))
    .bind(ts(now))
    .execute(conn)
    .await?;
    Ok(())
}

/// Stores (or with `None` clears) the sealed TOTP seed; the last accepted
/// step and any pending enrolment are reset with it.
pub async fn set_totp(
    conn: &mut AnyConnection,
    id: &str,
    sealed_secret: Option<&str>,
    now: Timestamp,
) -> Result<()> {
    sqlx::query(
        "UPDATE users SET totp_secret = $2, totp_last_step = NULL, totp_pending = NULL,
         totp_pending_at = NULL, updated_at = $3 WHERE id = $1",
    )
    .bind(id)
    .bind(sealed_secret)
    .bind(ts(now))
    .execute(conn)
    .await?;
    Ok(())
}

/// A TOTP enrolment begun and not yet confirmed: the sealed seed and when
/// it was begun.
pub async fn totp_pending(
    conn: &mut AnyConnection,
    id: &str,
) -> Result<Option<(String, Timestamp)>> {
    let row = sqlx::query("SELECT totp_pending, totp_pending_at FROM users WHERE id = $1")
        .bind(id)
        .fetch_optional(conn)
        .await?;
    let Some(row) = row else {
        return Ok(None);
    };
    let sealed: Option<String> = row.try_get("totp_pending")?;
    let at = parse_ts_opt(row.try_get("totp_pending_at")?)?;
    Ok(sealed.zip(at))
}

/// Stores (or with `None` clears) a pending enrolment's sealed seed; the
/// enrolled seed, if any, stays as it is.
pub async fn set_totp_pending(
    conn: &mut AnyConnection,
    id: &str,
    sealed_secret: Option<&str>,
    now: Timestamp,
) -> Result<()> {
    sqlx::query(
        "UPDATE users SET totp_pending = $2, totp_pending_at = $3, updated_at = $4 WHERE id = $1",
    )
    .bind(id)
    .bind(sealed_secret)
    .bind(sealed_secret.map(|_| ts(now)))
    .bind(ts(now))
    .execute(conn)
    .await?;
    Ok(())
}

/// Records the step of an accepted TOTP code so it cannot be used again.
/// Returns false when a concurrent login already used this or a later step.
pub async fn advance_totp_step(conn: &mut AnyConnection, id: &str, step: u64) -> Result<bool> {
    let step = i64::try_from(step).map_err(|_| StoreError::Corrupt("TOTP step".into()))?;
    let done = sqlx::query(
        "UPDATE users SET totp_last_step = $2
         WHERE id = $1 AND (totp_last_step IS NULL OR totp_last_step < $2)",
    )
    .bind(id)
    .bind(step)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Failure counters of one user or one source address.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FailureRow {
    pub failures: u32,
    pub window_start: Option<Timestamp>,
    pub locked_until: Option<Timestamp>,
}

pub async fn set_user_failures(
    conn: &mut AnyConnection,
    id: &str,
    state: &FailureRow,
) -> Result<()> {
    sqlx::query(
        "UPDATE users SET failures = $2, failure_window_start = $3, locked_until = $4
         WHERE id = $1",
    )
    .bind(id)
    .bind(i64::from(state.failures))
    .bind(ts_opt(state.window_start))
    .bind(ts_opt(state.locked_until))
    .execute(conn)
    .await?;
    Ok(())
}

/// A user's failure counters as stored now; `None` when the user is gone.
pub async fn failures(conn: &mut AnyConnection, id: &str) -> Result<Option<FailureRow>> {
    let row =
        sqlx::query("SELECT failures, failure_window_start, locked_until FROM users WHERE id = $1")
            .bind(id)
            .fetch_optional(conn)
            .await?;
    row.map(|row| {
        Ok(FailureRow {
            failures: u32::try_from(row.try_get::<i64, _>("failures")?).unwrap_or(u32::MAX),
            window_start: parse_ts_opt(row.try_get("failure_window_start")?)?,
            locked_until: parse_ts_opt(row.try_get("locked_until")?)?,
        })
    })
    .transpose()
}

pub async fn address_failures(conn: &mut AnyConnection, address: &str) -> Result<FailureRow> {
    let row = sqlx::query(
        "SELECT failures, failure_window_start, locked_until FROM address_failures
         WHERE address = $1",
    )
    .bind(address)
    .fetch_optional(conn)
    .await?;
    match row {
        None => Ok(FailureRow::default()),
        Some(row) => Ok(FailureRow {
            failures: u32::try_from(row.try_get::<i64, _>("failures")?).unwrap_or(u32::MAX),
            window_start: parse_ts_opt(row.try_get("failure_window_start")?)?,
            locked_until: parse_ts_opt(row.try_get("locked_until")?)?,
        }),
    }
}

pub async fn set_address_failures(
    conn: &mut AnyConnection,
    address: &str,
    state: &FailureRow,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO address_failures (address, failures, failure_window_start, locked_until)
         VALUES ($1, $2, $3, $4)
         ON CONFLICT (address) DO UPDATE SET failures = excluded.failures,
             failure_window_start = excluded.failure_window_start,
             locked_until = excluded.locked_until",
    )
    .bind(address)
    .bind(i64::from(state.failures))
    .bind(ts_opt(state.window_start))
    .bind(ts_opt(state.locked_until))
    .execute(conn)
    .await?;
    Ok(())
}

/// Lifts a user's lock and clears their failure count.
pub async fn unlock(conn: &mut AnyConnection, id: &str) -> Result<()> {
    set_user_failures(conn, id, &FailureRow::default()).await
}

pub async fn record_login(
    conn: &mut AnyConnection,
    id: &str,
    at: Timestamp,
    from: &str,
) -> Result<()> {
    sqlx::query("UPDATE users SET last_login_at = $2, last_login_from = $3 WHERE id = $1")
        .bind(id)
        .bind(ts(at))
        .bind(from)
        .execute(conn)
        .await?;
    Ok(())
}

pub async fn delete(conn: &mut AnyConnection, id: &str) -> Result<()> {
    sqlx::query("DELETE FROM users WHERE id = $1")
        .bind(id)
        .execute(conn)
        .await?;
    Ok(())
}

// ------------------------------------------------------------------ keys --

/// What `add_key` stores: a key already parsed and fingerprinted by `auth`.
#[derive(Debug, Clone)]
pub struct NewKey {
    pub algorithm: String,
    pub fingerprint: String,
    pub public_key: String,
    pub comment: String,
}

pub async fn add_key(
    conn: &mut AnyConnection,
    user_id: &str,
    user_name: &str,
    key: &NewKey,
    now: Timestamp,
) -> Result<Id> {
    let id = crate::model::new_id();
    sqlx::query(
        "INSERT INTO user_keys (id, user_id, algorithm, fingerprint, public_key, comment,
                                created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(&id)
    .bind(user_id)
    .bind(&key.algorithm)
    .bind(&key.fingerprint)
    .bind(&key.public_key)
    .bind(&key.comment)
    .bind(ts(now))
    .execute(conn)
    .await
    .map_err(|e| match &e {
        sqlx::Error::Database(db) if db.is_unique_violation() => StoreError::Conflict(format!(
            "user {user_name:?} already has the key {}",
            key.fingerprint
        )),
        _ => StoreError::from(e),
    })?;
    Ok(id)
}

fn key_row(row: &AnyRow) -> Result<UserKey> {
    Ok(UserKey {
        id: row.try_get("id")?,
        user: row.try_get("user_name")?,
        algorithm: row.try_get("algorithm")?,
        fingerprint: row.try_get("fingerprint")?,
        comment: row.try_get("comment")?,
        created_at: parse_ts(&row.try_get::<String, _>("created_at")?)?,
    })
}

pub async fn keys(conn: &mut AnyConnection, user_id: &str) -> Result<Vec<UserKey>> {
    let rows = sqlx::query(
        "SELECT k.id, u.name AS user_name, k.algorithm, k.fingerprint, k.comment, k.created_at
         FROM user_keys k JOIN users u ON u.id = k.user_id
         WHERE k.user_id = $1 ORDER BY k.created_at",
    )
    .bind(user_id)
    .fetch_all(conn)
    .await?;
    rows.iter().map(key_row).collect()
}

/// The user owning a key with this fingerprint, if the key is registered for
/// the named user (public key authentication).
pub async fn has_key(conn: &mut AnyConnection, user_id: &str, fingerprint: &str) -> Result<bool> {
    let n: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM user_keys WHERE user_id = $1 AND fingerprint = $2",
    )
    .bind(user_id)
    .bind(fingerprint)
    .fetch_one(conn)
    .await?;
    Ok(n > 0)
}

/// Removes a key by fingerprint (or by key id); returns whether one went.
pub async fn remove_key(conn: &mut AnyConnection, user_id: &str, which: &str) -> Result<bool> {
    let done =
        sqlx::query("DELETE FROM user_keys WHERE user_id = $1 AND (fingerprint = $2 OR id = $2)")
            .bind(user_id)
            .bind(which)
            .execute(conn)
            .await?;
    Ok(done.rows_affected() > 0)
}
