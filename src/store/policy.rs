//! Loads everything the policy engine needs in one read transaction.

use std::collections::HashMap;

use sqlx::{AnyConnection, Row};

use super::{Result, StoreError, parse_ts_opt, parsed};
use crate::model::{Id, Protocol};
use crate::policy::data::{
    AccountEntry, AssetEntry, FilterEntry, GroupEntry, NodeEntry, PermissionEntry, PolicyData,
    UserEntry,
};

fn pairs(rows: Vec<sqlx::any::AnyRow>) -> Result<HashMap<Id, Vec<Id>>> {
    let mut map: HashMap<Id, Vec<Id>> = HashMap::new();
    for r in rows {
        let owner: String = r.try_get(0)?;
        let target: String = r.try_get(1)?;
        map.entry(owner).or_default().push(target);
    }
    Ok(map)
}

/// Everything the policy engine needs, one part after the other.
pub async fn load(conn: &mut AnyConnection) -> Result<PolicyData> {
    Ok(PolicyData {
        users: users(conn).await?,
        groups: groups(conn).await?,
        nodes: nodes(conn).await?,
        assets: assets(conn).await?,
        accounts: accounts(conn).await?,
        permissions: permissions(conn).await?,
        filters: filters(conn).await?,
    })
}

async fn users(conn: &mut AnyConnection) -> Result<Vec<UserEntry>> {
    let mut users = Vec::new();
    for r in sqlx::query("SELECT id, name, active, expires_at FROM users")
        .fetch_all(&mut *conn)
        .await?
    {
        users.push(UserEntry {
            id: r.try_get("id")?,
            name: r.try_get("name")?,
            active: r.try_get::<i64, _>("active")? != 0,
            expires_at: parse_ts_opt(r.try_get("expires_at")?)?,
        });
    }
    Ok(users)
}

/// Groups with their members.
async fn groups(conn: &mut AnyConnection) -> Result<Vec<GroupEntry>> {
    let mut members = pairs(
        sqlx::query("SELECT group_id, user_id FROM group_members")
            .fetch_all(&mut *conn)
            .await?,
    )?;
    let mut groups = Vec::new();
    for r in sqlx::query("SELECT id, name FROM user_groups")
        .fetch_all(&mut *conn)
        .await?
    {
        let id: String = r.try_get("id")?;
        groups.push(GroupEntry {
            member_ids: members.remove(&id).unwrap_or_default(),
            id,
            name: r.try_get("name")?,
        });
    }
    Ok(groups)
}

async fn nodes(conn: &mut AnyConnection) -> Result<Vec<NodeEntry>> {
    let mut nodes = Vec::new();
    for r in sqlx::query("SELECT id, path FROM nodes")
        .fetch_all(&mut *conn)
        .await?
    {
        nodes.push(NodeEntry {
            id: r.try_get("id")?,
            path: r.try_get("path")?,
        });
    }
    Ok(nodes)
}

/// Assets with their protocols and the nodes they are in.
async fn assets(conn: &mut AnyConnection) -> Result<Vec<AssetEntry>> {
    let mut protocols: HashMap<Id, Vec<Protocol>> = HashMap::new();
    for r in sqlx::query("SELECT asset_id, name, port FROM asset_protocols ORDER BY name")
        .fetch_all(&mut *conn)
        .await?
    {
        let port: i64 = r.try_get("port")?;
        protocols
            .entry(r.try_get("asset_id")?)
            .or_default()
            .push(Protocol {
                name: r.try_get("name")?,
                port: u16::try_from(port)
                    .map_err(|_| StoreError::Corrupt(format!("port {port}")))?,
            });
    }
    let mut asset_nodes = pairs(
        sqlx::query("SELECT asset_id, node_id FROM asset_nodes")
            .fetch_all(&mut *conn)
            .await?,
    )?;
    let mut assets = Vec::new();
    for r in sqlx::query("SELECT id, name, address, platform, comment, active FROM assets")
        .fetch_all(&mut *conn)
        .await?
    {
        let id: String = r.try_get("id")?;
        assets.push(AssetEntry {
            protocols: protocols.remove(&id).unwrap_or_default(),
            node_ids: asset_nodes.remove(&id).unwrap_or_default(),
            id,
            name: r.try_get("name")?,
            address: r.try_get("address")?,
            platform: r.try_get("platform")?,
            comment: r.try_get("comment")?,
            active: r.try_get::<i64, _>("active")? != 0,
        });
    }
    Ok(assets)
}

async fn accounts(conn: &mut AnyConnection) -> Result<Vec<AccountEntry>> {
    let mut accounts = Vec::new();
    for r in sqlx::query("SELECT id, asset_id, username, privileged, active FROM accounts")
        .fetch_all(&mut *conn)
        .await?
    {
        accounts.push(AccountEntry {
            id: r.try_get("id")?,
            asset_id: r.try_get("asset_id")?,
            username: r.try_get("username")?,
            privileged: r.try_get::<i64, _>("privileged")? != 0,
            active: r.try_get::<i64, _>("active")? != 0,
        });
    }
    Ok(accounts)
}

/// Permissions with the users, groups, assets and nodes they name.
async fn permissions(conn: &mut AnyConnection) -> Result<Vec<PermissionEntry>> {
    let mut users = pairs(
        sqlx::query("SELECT permission_id, user_id FROM permission_users")
            .fetch_all(&mut *conn)
            .await?,
    )?;
    let mut groups = pairs(
        sqlx::query("SELECT permission_id, group_id FROM permission_groups")
            .fetch_all(&mut *conn)
            .await?,
    )?;
    let mut assets = pairs(
        sqlx::query("SELECT permission_id, asset_id FROM permission_assets")
            .fetch_all(&mut *conn)
            .await?,
    )?;
    let mut nodes = pairs(
        sqlx::query("SELECT permission_id, node_id FROM permission_nodes")
            .fetch_all(&mut *conn)
            .await?,
    )?;
    let mut permissions = Vec::new();
    for r in sqlx::query(
        "SELECT id, name, accounts, protocols, actions, valid_from, valid_until, active,
                require_approval
         FROM permissions",
    )
    .fetch_all(&mut *conn)
    .await?
    {
        let id: String = r.try_get("id")?;
        permissions.push(PermissionEntry {
            user_ids: users.remove(&id).unwrap_or_default(),
            group_ids: groups.remove(&id).unwrap_or_default(),
            asset_ids: assets.remove(&id).unwrap_or_default(),
            node_ids: nodes.remove(&id).unwrap_or_default(),
            id,
            name: r.try_get("name")?,
            accounts: parsed(&r, "accounts")?,
            protocols: parsed(&r, "protocols")?,
            actions: parsed(&r, "actions")?,
            valid_from: parse_ts_opt(r.try_get("valid_from")?)?,
            valid_until: parse_ts_opt(r.try_get("valid_until")?)?,
            active: r.try_get::<i64, _>("active")? != 0,
            require_approval: r.try_get::<i64, _>("require_approval")? != 0,
        });
    }
    Ok(permissions)
}

/// Command filters with the users, groups, assets and nodes they bind to.
async fn filters(conn: &mut AnyConnection) -> Result<Vec<FilterEntry>> {
    let mut filters = Vec::new();
    for (f, bindings) in super::filters::list_with_ids(conn).await? {
        let of = |kind: &str| -> Vec<Id> {
            bindings
                .iter()
                .filter(|(k, _)| k == kind)
                .map(|(_, id)| id.clone())
                .collect()
        };
        filters.push(FilterEntry {
            user_ids: of(super::filters::USER),
            group_ids: of(super::filters::GROUP),
            asset_ids: of(super::filters::ASSET),
            node_ids: of(super::filters::NODE),
            id: f.id,
            name: f.name,
            pattern: f.pattern,
            action: f.action,
            on: f.on,
            priority: f.priority,
            accounts: f.accounts,
            active: f.active,
        });
    }
    Ok(filters)
}
