//! `rampart rdp ticket ASSET [--account NAME]`: one-time RDP credentials
//! for the caller, bound to them, one asset and one account, valid for
//! [`TICKET_LIFETIME`] and good for one connection (the `rdp` module
//! redeems them).

use jiff::Timestamp;
use serde::Serialize;

use super::{Caller, Ops, OpsError, Result, require_person};
use crate::model::{Action, Identity};
use crate::store;
use crate::vault::Secret;

/// How long a ticket may wait for its connection.
pub const TICKET_LIFETIME: std::time::Duration = std::time::Duration::from_secs(60);

/// A person's tickets still valid for one asset, at most: the newest are
/// the login's candidates, so issuing many cannot make guessing cheaper.
pub const TICKETS_PER_ASSET: i64 = 4;

/// An issued ticket: what the person types into their RDP client.
#[derive(Debug, Serialize)]
pub struct RdpTicket {
    /// The RDP user name: `PERSON#ASSET`.
    pub login: String,
    #[serde(serialize_with = "expose")]
    pub password: Secret<String>,
    pub asset: String,
    pub account: String,
    pub expires_at: Timestamp,
}

fn expose<S: serde::Serializer>(s: &Secret<String>, to: S) -> Result<S::Ok, S::Error> {
    to.serialize_str(s.expose())
}

impl Ops {
    /// Issues a ticket for `asset` as `account` (the only granted stored
    /// account when `None`), if the caller may connect to it over RDP now.
    pub async fn rdp_ticket(
        &self,
        caller: &Caller,
        asset: &str,
        account: Option<&str>,
    ) -> Result<RdpTicket> {
        require_person(caller)?;
        let vault = self.vault()?;
        let snapshot = self.policy_snapshot().await?;
        let now = self.now();
        let no_access = || {
            OpsError::Forbidden(format!(
                "no asset {asset:?} reachable over RDP for you (`rampart me` lists what you may use)"
            ))
        };
        let user = snapshot.user_by_name(&caller.name).ok_or_else(no_access)?;
        let who = Identity {
            user_id: user.id.to_string(),
            name: caller.name.clone(),
            role: caller.role,
            groups: Vec::new(),
        };
        let visible = snapshot
            .visible_asset(&who, asset, now)
            .filter(|v| v.protocols().any(|p| p.name == "rdp"))
            .ok_or_else(no_access)?;
        let account = match account {
            Some(a) => a.to_string(),
            None => {
                let names: Vec<&str> = visible.accounts().map(|a| a.username()).collect();
                match names.as_slice() {
                    [one] => (*one).to_string(),
                    [] => {
                        return Err(OpsError::Invalid(format!(
                            "no stored account of {asset} is yours over RDP; RDP needs the bastion to hold the credential"
                        )));
                    }
                    many => {
                        return Err(OpsError::Invalid(format!(
                            "{asset} has several accounts for you ({}): choose one with --account",
                            many.join(", ")
                        )));
                    }
                }
            }
        };
        let grant = snapshot
            .authorize(&who, asset, &account, "rdp", Action::Connect, now)
            .ok_or_else(|| {
                OpsError::Forbidden(format!(
                    "you may not connect to {asset} as {account} over RDP"
                ))
            })?;
        if !matches!(grant.account(), crate::policy::GrantAccount::Stored { .. }) {
            return Err(OpsError::Invalid(format!(
                "{account} on {asset} is typed in (@INPUT); RDP tickets need an account whose secret the bastion holds"
            )));
        }
        let password = crate::auth::generate_one_time_password();
        let expires_at = now
            .checked_add(jiff::SignedDuration::try_from(TICKET_LIFETIME).unwrap_or_default())
            .unwrap_or(now);
        let ticket = store::rdp_tickets::Ticket {
            id: crate::model::new_id(),
            user_id: grant.user_id().to_string(),
            asset_id: grant.asset_id().to_string(),
            account: grant.account().username().to_string(),
            secret: vault.seal_str(password.expose()),
            expires_at,
        };
        let mut tx = self.store.begin().await?;
        store::rdp_tickets::insert(&mut tx, &ticket, now).await?;
        // Who was given a way in, to what, until when; never the secret.
        let issued = serde_json::json!({
            "asset": grant.asset_name(),
            "account": ticket.account,
            "expires_at": store::ts(expires_at),
        });
        self.log(
            &mut tx,
            caller,
            "rdp.ticket",
            format!("asset {}", grant.asset_name()),
            None,
            Some(issued),
        )
        .await?;
        self.store.commit(tx).await?;
        Ok(RdpTicket {
            login: format!("{}#{}", caller.name, grant.asset_name()),
            password,
            asset: grant.asset_name().to_string(),
            account: ticket.account,
            expires_at,
        })
    }
}
