//! Per-person RDP passwords (migration 0011): one per person, sealed by
//! the vault, good for the RDP front until it expires.

use jiff::Timestamp;
use sqlx::{AnyConnection, Row};

use super::{Result, parse_ts, ts};

/// A person's RDP password as stored; `secret` is sealed by the vault.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RdpPassword {
    pub secret: String,
    pub expires_at: Timestamp,
}

/// Sets the person's RDP password, replacing any earlier one.
pub async fn set(
    conn: &mut AnyConnection,
    user_id: &str,
    password: &RdpPassword,
    now: Timestamp,
) -> Result<()> {
    sqlx::query("DELETE FROM rdp_passwords WHERE user_id = $1")
        .bind(user_id)
        .execute(&mut *conn)
        .await?;
    sqlx::query(
        "INSERT INTO rdp_passwords (user_id, secret, created_at, expires_at)
         VALUES ($1, $2, $3, $4)",
    )
    .bind(user_id)
    .bind(&password.secret)
    .bind(ts(now))
    .bind(ts(password.expires_at))
    .execute(conn)
    .await?;
    Ok(())
}

/// Removes the person's RDP password; false when there was none.
pub async fn clear(conn: &mut AnyConnection, user_id: &str) -> Result<bool> {
    let done = sqlx::query("DELETE FROM rdp_passwords WHERE user_id = $1")
        .bind(user_id)
        .execute(conn)
        .await?;
    Ok(done.rows_affected() > 0)
}

/// The person's RDP password, if they have one that has not expired at
/// `now`.
pub async fn valid(
    conn: &mut AnyConnection,
    user_id: &str,
    now: Timestamp,
) -> Result<Option<RdpPassword>> {
    let row = sqlx::query(
        "SELECT secret, expires_at FROM rdp_passwords WHERE user_id = $1 AND expires_at > $2",
    )
    .bind(user_id)
    .bind(ts(now))
    .fetch_optional(conn)
    .await?;
    row.map(|r| {
        Ok(RdpPassword {
            secret: r.try_get("secret")?,
            expires_at: parse_ts(&r.try_get::<String, _>("expires_at")?)?,
        })
    })
    .transpose()
}
