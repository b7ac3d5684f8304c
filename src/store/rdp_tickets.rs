//! One-time credentials (migration 0010, `protocol` since 0012): issued
//! for a person, an asset, an account and the front that may redeem them
//! (`rdp`, or a database protocol for a desktop tool's tunnel), redeemed
//! once before they expire. The table kept its first name, `rdp_tickets`.

use jiff::Timestamp;
use sqlx::{AnyConnection, Row};

use super::{Result, parse_ts, ts};

/// A ticket as stored; `secret` is sealed by the vault.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ticket {
    pub id: String,
    pub user_id: String,
    pub asset_id: String,
    pub account: String,
    /// The front that may redeem it: `rdp`, `postgresql`...
    pub protocol: String,
    pub secret: String,
    pub expires_at: Timestamp,
    /// The administrator who approved it, for a permission that needs it.
    pub approved_by: Option<String>,
}

/// Tickets that expired or were redeemed this long ago are deleted.
const KEPT: jiff::SignedDuration = jiff::SignedDuration::from_hours(24);

/// Stores a new ticket, and deletes the long-dead ones.
pub async fn insert(conn: &mut AnyConnection, t: &Ticket, now: Timestamp) -> Result<()> {
    let cutoff = now.checked_sub(KEPT).unwrap_or(now);
    sqlx::query("DELETE FROM rdp_tickets WHERE expires_at < $1")
        .bind(ts(cutoff))
        .execute(&mut *conn)
        .await?;
    sqlx::query(
        "INSERT INTO rdp_tickets
         (id, user_id, asset_id, account, secret, created_at, expires_at, approved_by, protocol)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(&t.id)
    .bind(&t.user_id)
    .bind(&t.asset_id)
    .bind(&t.account)
    .bind(&t.secret)
    .bind(ts(now))
    .bind(ts(t.expires_at))
    .bind(&t.approved_by)
    .bind(&t.protocol)
    .execute(conn)
    .await?;
    Ok(())
}

/// The person's tickets for `asset_id` over `protocol` that are unused and
/// unexpired at `now`, newest first, at most `limit`: the candidates a
/// login is checked against.
pub async fn valid(
    conn: &mut AnyConnection,
    user_id: &str,
    asset_id: &str,
    protocol: &str,
    now: Timestamp,
    limit: i64,
) -> Result<Vec<Ticket>> {
    let rows = sqlx::query(
        "SELECT id, user_id, asset_id, account, protocol, secret, expires_at, approved_by
         FROM rdp_tickets
         WHERE user_id = $1 AND asset_id = $2 AND protocol = $5 AND used_at IS NULL
               AND expires_at > $3
         ORDER BY created_at DESC, id LIMIT $4",
    )
    .bind(user_id)
    .bind(asset_id)
    .bind(ts(now))
    .bind(limit)
    .bind(protocol)
    .fetch_all(conn)
    .await?;
    rows.iter().map(ticket).collect()
}

/// The ticket `id` if it is unused and unexpired at `now` (a web link
/// names its ticket; the secret is checked by the caller).
pub async fn unspent(conn: &mut AnyConnection, id: &str, now: Timestamp) -> Result<Option<Ticket>> {
    let row = sqlx::query(
        "SELECT id, user_id, asset_id, account, protocol, secret, expires_at, approved_by
         FROM rdp_tickets WHERE id = $1 AND used_at IS NULL AND expires_at > $2",
    )
    .bind(id)
    .bind(ts(now))
    .fetch_optional(conn)
    .await?;
    row.map(|r| ticket(&r)).transpose()
}

fn ticket(r: &sqlx::any::AnyRow) -> Result<Ticket> {
    Ok(Ticket {
        id: r.try_get("id")?,
        user_id: r.try_get("user_id")?,
        asset_id: r.try_get("asset_id")?,
        account: r.try_get("account")?,
        protocol: r.try_get("protocol")?,
        secret: r.try_get("secret")?,
        expires_at: parse_ts(&r.try_get::<String, _>("expires_at")?)?,
        approved_by: r.try_get("approved_by")?,
    })
}

/// Marks the ticket used; false when it was used already or has expired
/// (two logins racing for one ticket: one wins).
pub async fn redeem(conn: &mut AnyConnection, id: &str, now: Timestamp) -> Result<bool> {
    let done = sqlx::query(
        "UPDATE rdp_tickets SET used_at = $1 WHERE id = $2 AND used_at IS NULL AND expires_at > $1",
    )
    .bind(ts(now))
    .bind(id)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}
