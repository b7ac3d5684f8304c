//! `rampart db ticket ASSET [--account NAME]`: a one-time password for a
//! desktop database tool (DBeaver, DataGrip, or psql, mysql and redis-cli
//! on the person's own machine) reaching a database asset through `ssh
//! -L`. Like an RDP ticket it is bound to the caller, one asset and one account, valid for
//! [`super::TICKET_LIFETIME`] and good for one connection; the tunnel's
//! wire proxy redeems it (`ssh::db_tunnel`).

use jiff::Timestamp;
use serde::Serialize;

use super::{Caller, Ops, Result};
use crate::vault::Secret;

/// The database protocols a desktop tool reaches through the proxy.
pub const TUNNELLED: &[&str] = &["postgresql", "mysql", "mariadb", "redis"];

/// What the person types into their tool.
#[derive(Debug, Serialize)]
pub struct DbTicket {
    pub asset: String,
    pub protocol: String,
    /// The asset's port for that protocol: `ssh -L PORT:ASSET:PORT`.
    pub port: u16,
    /// The user name to give (the account's).
    pub user: String,
    #[serde(serialize_with = "expose")]
    pub password: Secret<String>,
    /// The asset's default database, if it has one.
    pub database: String,
    pub expires_at: Timestamp,
}

fn expose<S: serde::Serializer>(s: &Secret<String>, to: S) -> Result<S::Ok, S::Error> {
    to.serialize_str(s.expose())
}

impl Ops {
    /// Issues a ticket for a desktop tool on `asset` as `account` (the only
    /// granted stored account when `None`), if the caller may connect to
    /// it now without an approval.
    pub async fn db_ticket(
        &self,
        caller: &Caller,
        asset: &str,
        account: Option<&str>,
    ) -> Result<DbTicket> {
        let (stored, protocol) = self.asset_over(asset, TUNNELLED, "database").await?;
        let grant = self
            .ticket_grant(
                caller,
                asset,
                account,
                &protocol.name,
                "a desktop database tool",
            )
            .await?;
        let issued = self
            .issue_ticket(caller, &grant, &protocol.name, None)
            .await?;
        Ok(DbTicket {
            asset: grant.asset_name().to_string(),
            protocol: protocol.name,
            port: protocol.port,
            user: issued.account,
            password: issued.password,
            database: stored.database,
            expires_at: issued.expires_at,
        })
    }
}
