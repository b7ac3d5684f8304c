//! Assets with their protocols, nodes and pinned host keys.

use std::collections::HashMap;

use jiff::Timestamp;
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};

use super::{Result, StoreError, bool_i, parse_ts, ts, unique};
use crate::model::{Asset, HostKey, Id, Protocol};

/// The fields of an asset row itself (protocols and nodes are set apart).
#[derive(Debug, Clone)]
pub struct AssetFields {
    pub name: String,
    pub address: String,
    pub platform: String,
    /// A database asset's default database; empty: none.
    pub database: String,
    /// A database asset's server is reached over TLS.
    pub tls: bool,
    /// A web asset's site; empty: none.
    pub url: String,
    pub active: bool,
    pub comment: String,
}

pub async fn insert(
    conn: &mut AnyConnection,
    id: &str,
    fields: &AssetFields,
    now: Timestamp,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO assets (id, name, address, platform, active, comment, created_at, updated_at,
                             database_name, tls, url)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $7, $8, $9, $10)",
    )
    .bind(id)
    .bind(&fields.name)
    .bind(&fields.address)
    .bind(&fields.platform)
    .bind(bool_i(fields.active))
    .bind(&fields.comment)
    .bind(ts(now))
    .bind(&fields.database)
    .bind(bool_i(fields.tls))
    .bind(&fields.url)
    .execute(conn)
    .await
    .map_err(unique("asset", &fields.name))?;
    Ok(())
}

pub async fn update(
    conn: &mut AnyConnection,
    id: &str,
    fields: &AssetFields,
    now: Timestamp,
) -> Result<()> {
    sqlx::query(
        "UPDATE assets SET name = $2, address = $3, platform = $4, active = $5, comment = $6,
                           updated_at = $7, database_name = $8, tls = $9, url = $10
         WHERE id = $1",
    )
    .bind(id)
    .bind(&fields.name)
    .bind(&fields.address)
    .bind(&fields.platform)
    .bind(bool_i(fields.active))
    .bind(&fields.comment)
    .bind(ts(now))
    .bind(&fields.database)
    .bind(bool_i(fields.tls))
    .bind(&fields.url)
    .execute(conn)
    .await
    .map_err(unique("asset", &fields.name))?;
    Ok(())
}

/// Replaces the asset's protocol list.
pub async fn set_protocols(
    conn: &mut AnyConnection,
    id: &str,
    protocols: &[Protocol],
) -> Result<()> {
    sqlx::query("DELETE FROM asset_protocols WHERE asset_id = $1")
        .bind(id)
        .execute(&mut *conn)
        .await?;
    for p in protocols {
        sqlx::query("INSERT INTO asset_protocols (asset_id, name, port) VALUES ($1, $2, $3)")
            .bind(id)
            .bind(&p.name)
            .bind(i64::from(p.port))
            .execute(&mut *conn)
            .await
            .map_err(|e| match &e {
                sqlx::Error::Database(db) if db.is_unique_violation() => {
                    StoreError::Conflict(format!("protocol {} is given twice", p.name))
                }
                _ => StoreError::from(e),
            })?;
    }
    Ok(())
}

/// Replaces the asset's node list (node ids).
pub async fn set_nodes(conn: &mut AnyConnection, id: &str, node_ids: &[Id]) -> Result<()> {
    sqlx::query("DELETE FROM asset_nodes WHERE asset_id = $1")
        .bind(id)
        .execute(&mut *conn)
        .await?;
    for node in node_ids {
        sqlx::query(
            "INSERT INTO asset_nodes (asset_id, node_id) VALUES ($1, $2)
             ON CONFLICT (asset_id, node_id) DO NOTHING",
        )
        .bind(id)
        .bind(node)
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

fn base(row: &AnyRow) -> Result<Asset> {
    Ok(Asset {
        id: row.try_get("id")?,
        name: row.try_get("name")?,
        address: row.try_get("address")?,
        platform: row.try_get("platform")?,
        database: row.try_get("database_name")?,
        tls: row.try_get::<i64, _>("tls")? != 0,
        url: row.try_get("url")?,
        protocols: Vec::new(),
        nodes: Vec::new(),
        active: row.try_get::<i64, _>("active")? != 0,
        comment: row.try_get("comment")?,
    })
}

async fn fill(conn: &mut AnyConnection, assets: &mut [Asset], only: Option<&str>) -> Result<()> {
    let index: HashMap<String, usize> = assets
        .iter()
        .enumerate()
        .map(|(i, a)| (a.id.clone(), i))
        .collect();
    let (psql, nsql) = if only.is_some() {
        (
            "SELECT asset_id, name, port FROM asset_protocols WHERE asset_id = $1 ORDER BY name",
            "SELECT an.asset_id, n.path FROM asset_nodes an JOIN nodes n ON n.id = an.node_id
             WHERE an.asset_id = $1 ORDER BY n.path",
        )
    } else {
        (
            "SELECT asset_id, name, port FROM asset_protocols ORDER BY name",
            "SELECT an.asset_id, n.path FROM asset_nodes an JOIN nodes n ON n.id = an.node_id
             ORDER BY n.path",
        )
    };
    let mut q = sqlx::query(psql);
    if let Some(id) = only {
        q = q.bind(id);
    }
    for row in q.fetch_all(&mut *conn).await? {
        let asset_id: String = row.try_get("asset_id")?;
        let port: i64 = row.try_get("port")?;
        if let Some(&i) = index.get(&asset_id) {
            assets[i].protocols.push(Protocol {
                name: row.try_get("name")?,
                port: u16::try_from(port)
                    .map_err(|_| StoreError::Corrupt(format!("port {port}")))?,
            });
        }
    }
    let mut q = sqlx::query(nsql);
    if let Some(id) = only {
        q = q.bind(id);
    }
    for row in q.fetch_all(&mut *conn).await? {
        let asset_id: String = row.try_get("asset_id")?;
        if let Some(&i) = index.get(&asset_id) {
            assets[i].nodes.push(row.try_get("path")?);
        }
    }
    Ok(())
}

pub async fn find(conn: &mut AnyConnection, name: &str) -> Result<Option<Asset>> {
    let row = sqlx::query(
        "SELECT id, name, address, platform, database_name, tls, url, active, comment FROM assets WHERE name = $1",
    )
    .bind(name)
    .fetch_optional(&mut *conn)
    .await?;
    let Some(row) = row else { return Ok(None) };
    let mut assets = [base(&row)?];
    let id = assets[0].id.clone();
    fill(conn, &mut assets, Some(&id)).await?;
    let [asset] = assets;
    Ok(Some(asset))
}

pub async fn get(conn: &mut AnyConnection, name: &str) -> Result<Asset> {
    find(conn, name).await?.ok_or_else(|| StoreError::NotFound {
        kind: "asset",
        name: name.to_string(),
    })
}

pub async fn list(conn: &mut AnyConnection) -> Result<Vec<Asset>> {
    let rows = sqlx::query(
        "SELECT id, name, address, platform, database_name, tls, url, active, comment FROM assets ORDER BY name",
    )
    .fetch_all(&mut *conn)
    .await?;
    let mut assets = rows.iter().map(base).collect::<Result<Vec<_>>>()?;
    fill(conn, &mut assets, None).await?;
    Ok(assets)
}

pub async fn delete(conn: &mut AnyConnection, id: &str) -> Result<()> {
    sqlx::query("DELETE FROM assets WHERE id = $1")
        .bind(id)
        .execute(conn)
        .await?;
    Ok(())
}

// ------------------------------------------------------------- host keys --

pub async fn host_keys(conn: &mut AnyConnection, asset_id: &str) -> Result<Vec<HostKey>> {
    let rows = sqlx::query(
        "SELECT algorithm, fingerprint, pinned_at FROM asset_host_keys WHERE asset_id = $1
         ORDER BY algorithm",
    )
    .bind(asset_id)
    .fetch_all(conn)
    .await?;
    rows.iter()
        .map(|r| {
            Ok(HostKey {
                algorithm: r.try_get("algorithm")?,
                fingerprint: r.try_get("fingerprint")?,
                pinned_at: parse_ts(&r.try_get::<String, _>("pinned_at")?)?,
            })
        })
        .collect()
}

/// Pins a host key, replacing any earlier key of the same algorithm.
pub async fn pin_host_key(
    conn: &mut AnyConnection,
    asset_id: &str,
    algorithm: &str,
    fingerprint: &str,
    public_key: &str,
    now: Timestamp,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO asset_host_keys (asset_id, algorithm, fingerprint, public_key, pinned_at)
         VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (asset_id, algorithm) DO UPDATE SET fingerprint = excluded.fingerprint,
             public_key = excluded.public_key, pinned_at = excluded.pinned_at",
    )
    .bind(asset_id)
    .bind(algorithm)
    .bind(fingerprint)
    .bind(public_key)
    .bind(ts(now))
    .execute(conn)
    .await?;
    Ok(())
}

/// Pins the key a target presented on first use, unless a key of that
/// algorithm is pinned already: a first pin never replaces one. Returns
/// whether it was pinned.
pub async fn pin_first_host_key(
    conn: &mut AnyConnection,
    asset_id: &str,
    algorithm: &str,
    fingerprint: &str,
    public_key: &str,
    now: Timestamp,
) -> Result<bool> {
    let done = sqlx::query(
        "INSERT INTO asset_host_keys (asset_id, algorithm, fingerprint, public_key, pinned_at)
         VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (asset_id, algorithm) DO NOTHING",
    )
    .bind(asset_id)
    .bind(algorithm)
    .bind(fingerprint)
    .bind(public_key)
    .bind(ts(now))
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Forgets every pinned key of an asset; the next connection pins anew.
pub async fn clear_host_keys(conn: &mut AnyConnection, asset_id: &str) -> Result<u64> {
    let done = sqlx::query("DELETE FROM asset_host_keys WHERE asset_id = $1")
        .bind(asset_id)
        .execute(conn)
        .await?;
    Ok(done.rows_affected())
}
