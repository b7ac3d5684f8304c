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
    /// The ticket's id: a RemoteApp file's link names it.
    pub id: String,
    /// The RDP user name: `PERSON#ASSET`.
    pub login: String,
    #[serde(serialize_with = "expose")]
    pub password: Secret<String>,
    pub asset: String,
    pub account: String,
    pub expires_at: Timestamp,
}

/// A person's RDP password, as `me rdp-password` gives it: shown once.
#[derive(Debug, Serialize)]
pub struct RdpPassword {
    /// The RDP user name to give with it, for an asset: `PERSON#ASSET`,
    /// or `PERSON#ACCOUNT#ASSET` where the person has several accounts.
    pub login: String,
    #[serde(serialize_with = "expose")]
    pub password: Secret<String>,
    pub expires_at: Timestamp,
}

/// The one stored account of `visible` (an asset seen over RDP); where
/// there are several, the error says so and ends with `choose`.
pub fn only_account(visible: &crate::policy::VisibleAsset, choose: &str) -> Result<String> {
    let asset = visible.name();
    let names: Vec<&str> = visible.accounts().map(|a| a.username()).collect();
    match names.as_slice() {
        [one] => Ok((*one).to_string()),
        [] => Err(OpsError::Invalid(format!(
            "no stored account of {asset} is yours over RDP; RDP needs the bastion to hold the credential"
        ))),
        many => Err(OpsError::Invalid(format!(
            "{asset} has several accounts for you ({}): {choose}",
            many.join(", ")
        ))),
    }
}

fn expose<S: serde::Serializer>(s: &Secret<String>, to: S) -> Result<S::Ok, S::Error> {
    to.serialize_str(s.expose())
}

impl Ops {
    /// Issues a ticket for `asset` as `account` (the only granted stored
    /// account when `None`), if the caller may connect to it over RDP now
    /// without an approval.
    pub async fn rdp_ticket(
        &self,
        caller: &Caller,
        asset: &str,
        account: Option<&str>,
    ) -> Result<RdpTicket> {
        let grant = self.rdp_grant(caller, asset, account).await?;
        self.issue_rdp_ticket(caller, &grant, None).await
    }

    /// Whether the caller may connect to `asset` as `account` (the only
    /// granted stored account when `None`) over RDP now: the grant a
    /// ticket is issued under.
    pub async fn rdp_grant(
        &self,
        caller: &Caller,
        asset: &str,
        account: Option<&str>,
    ) -> Result<crate::policy::Grant> {
        self.ticket_grant(caller, asset, account, "rdp", "RDP")
            .await
    }

    /// Whether the caller may connect to `asset` as `account` (the only
    /// granted stored account when `None`) over `protocol` (`label` as
    /// people say it) now: the grant a one-time credential is issued under.
    pub(super) async fn ticket_grant(
        &self,
        caller: &Caller,
        asset: &str,
        account: Option<&str>,
        protocol: &str,
        label: &str,
    ) -> Result<crate::policy::Grant> {
        require_person(caller)?;
        let snapshot = self.policy_snapshot().await?;
        let now = self.now();
        let no_access = || {
            OpsError::Forbidden(format!(
                "no asset {asset:?} reachable over {label} for you (`rampart me` lists what you may use)"
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
            .filter(|v| v.protocols().any(|p| p.name == protocol))
            .ok_or_else(no_access)?;
        let account = match account {
            Some(a) => a.to_string(),
            None => only_account(&visible, "choose one with --account")?,
        };
        let grant = snapshot
            .authorize(&who, asset, &account, protocol, Action::Connect, now)
            .ok_or_else(|| {
                OpsError::Forbidden(format!(
                    "you may not connect to {asset} as {account} over {label}"
                ))
            })?;
        if !matches!(grant.account(), crate::policy::GrantAccount::Stored { .. }) {
            return Err(OpsError::Invalid(format!(
                "{account} on {asset} is typed in (@INPUT); {label} tickets need an account whose secret the bastion holds"
            )));
        }
        Ok(grant)
    }

    /// Issues a ticket under `grant` (from [`Ops::rdp_grant`]). A
    /// permission that needs an approval needs `approved_by`: the
    /// administrator who said yes to this one connection.
    pub async fn issue_rdp_ticket(
        &self,
        caller: &Caller,
        grant: &crate::policy::Grant,
        approved_by: Option<String>,
    ) -> Result<RdpTicket> {
        let issued = self.issue_ticket(caller, grant, "rdp", approved_by).await?;
        Ok(RdpTicket {
            id: issued.id,
            login: format!("{}#{}", caller.name, grant.asset_name()),
            password: issued.password,
            asset: grant.asset_name().to_string(),
            account: issued.account,
            expires_at: issued.expires_at,
        })
    }

    /// Stores a one-time credential under `grant` for the front of
    /// `protocol`, and logs who was given a way in (never the secret). A
    /// permission that needs an approval needs `approved_by`.
    pub(super) async fn issue_ticket(
        &self,
        caller: &Caller,
        grant: &crate::policy::Grant,
        protocol: &str,
        approved_by: Option<String>,
    ) -> Result<Issued> {
        if let Some(permission) = grant.approval()
            && approved_by.is_none()
        {
            return Err(OpsError::Forbidden(format!(
                "{} through permission {permission} needs an administrator's approval for each connection: ask for it with `ssh -t BASTION {}`",
                grant.asset_name(),
                grant.asset_name()
            )));
        }
        let verb = match protocol {
            "rdp" => "rdp.ticket",
            "http" | "https" => "web.link",
            _ => "db.ticket",
        };
        let to = Ticketed {
            user_id: grant.user_id().to_string(),
            asset_id: grant.asset_id().to_string(),
            account: grant.account().username().to_string(),
            protocol: protocol.to_string(),
            approved_by,
        };
        let detail = |t: &store::rdp_tickets::Ticket| {
            serde_json::json!({
                "asset": grant.asset_name(),
                "account": t.account,
                "protocol": protocol,
                "expires_at": store::ts(t.expires_at),
                "approved_by": t.approved_by,
            })
        };
        let object = format!("asset {}", grant.asset_name());
        self.store_ticket(caller, to, verb, object, detail).await
    }

    /// Stores a one-time credential for `to`, valid for
    /// [`TICKET_LIFETIME`], and logs its issue as `verb` on `object` with
    /// `detail` of it (never the secret), in one transaction.
    pub(super) async fn store_ticket(
        &self,
        caller: &Caller,
        to: Ticketed,
        verb: &str,
        object: String,
        detail: impl FnOnce(&store::rdp_tickets::Ticket) -> serde_json::Value,
    ) -> Result<Issued> {
        let vault = self.vault()?;
        let now = self.now();
        let password = crate::auth::generate_one_time_password();
        let expires_at = now
            .checked_add(jiff::SignedDuration::try_from(TICKET_LIFETIME).unwrap_or_default())
            .unwrap_or(now);
        let ticket = store::rdp_tickets::Ticket {
            id: crate::model::new_id(),
            user_id: to.user_id,
            asset_id: to.asset_id,
            account: to.account,
            protocol: to.protocol,
            secret: vault.seal_str(password.expose()),
            expires_at,
            approved_by: to.approved_by,
        };
        let mut tx = self.store.begin().await?;
        store::rdp_tickets::insert(&mut tx, &ticket, now).await?;
        let detail = detail(&ticket);
        self.log(&mut tx, caller, verb, object, None, Some(detail))
            .await?;
        self.store.commit(tx).await?;
        Ok(Issued {
            id: ticket.id,
            password,
            account: ticket.account,
            expires_at,
        })
    }
}

/// Whom and what a one-time credential is for.
pub(super) struct Ticketed {
    pub(super) user_id: String,
    /// Empty for a recording's link.
    pub(super) asset_id: String,
    /// The account; a recording link's session id.
    pub(super) account: String,
    /// The front that redeems it: `rdp`, a database or web protocol,
    /// `recording`.
    pub(super) protocol: String,
    pub(super) approved_by: Option<String>,
}

impl Ops {
    /// The stored asset `asset` and its first protocol among `kinds`, or
    /// the refusal a person sees (which does not say whether the asset
    /// exists): for the issuers of database tickets and web links.
    pub(super) async fn asset_over(
        &self,
        asset: &str,
        kinds: &[&str],
        what: &str,
    ) -> Result<(crate::model::Asset, crate::model::Protocol)> {
        let stored = {
            let mut c = self.store.conn().await?;
            store::assets::find(&mut c, asset).await?
        };
        stored
            .and_then(|a| {
                let protocol = a
                    .protocols
                    .iter()
                    .find(|p| kinds.contains(&p.name.as_str()))
                    .cloned()?;
                Some((a, protocol))
            })
            .ok_or_else(|| {
                OpsError::Forbidden(format!(
                    "no {what} {asset:?} reachable for you (`rampart me` lists what you may use)"
                ))
            })
    }
}

/// A stored one-time credential, as its issuer hands it on.
pub(super) struct Issued {
    pub(super) id: String,
    pub(super) password: Secret<String>,
    pub(super) account: String,
    pub(super) expires_at: Timestamp,
}

impl Ops {
    /// Gives the caller an RDP password for every desktop they may use,
    /// valid for `rdp.password_lifetime`, replacing any earlier one. It is
    /// issued from a logged-in (and, where required, second-factor)
    /// session, and is shown only here.
    pub async fn rdp_password(&self, caller: &Caller) -> Result<RdpPassword> {
        require_person(caller)?;
        let lifetime = self.settings().rdp_password_lifetime;
        if lifetime.is_zero() {
            return Err(OpsError::Invalid(
                "per-person RDP passwords are off here (rdp.password_lifetime = \"0\"): use `rampart rdp ticket ASSET`".into(),
            ));
        }
        let vault = self.vault()?;
        let snapshot = self.policy_snapshot().await?;
        let user = snapshot
            .user_by_name(&caller.name)
            .ok_or_else(|| OpsError::Forbidden(format!("{} is not a user here", caller.name)))?;
        let now = self.now();
        let expires_at = now
            .checked_add(jiff::SignedDuration::try_from(lifetime).unwrap_or_default())
            .unwrap_or(now);
        let password = crate::auth::generate_one_time_password();
        let stored = store::rdp_passwords::RdpPassword {
            secret: vault.seal_str(password.expose()),
            expires_at,
        };
        let mut tx = self.store.begin().await?;
        store::rdp_passwords::set(&mut tx, user.id, &stored, now).await?;
        let detail = serde_json::json!({ "expires_at": store::ts(expires_at) });
        self.log(
            &mut tx,
            caller,
            "rdp.password",
            format!("user {}", caller.name),
            None,
            Some(detail),
        )
        .await?;
        self.store.commit(tx).await?;
        Ok(RdpPassword {
            login: format!("{}#ASSET", caller.name),
            password,
            expires_at,
        })
    }

    /// Turns the caller's RDP password off; false when they had none.
    pub async fn rdp_password_off(&self, caller: &Caller) -> Result<bool> {
        require_person(caller)?;
        let snapshot = self.policy_snapshot().await?;
        let Some(user) = snapshot.user_by_name(&caller.name) else {
            return Ok(false);
        };
        let mut tx = self.store.begin().await?;
        let had = store::rdp_passwords::clear(&mut tx, user.id).await?;
        if had {
            self.log(
                &mut tx,
                caller,
                "rdp.password.off",
                format!("user {}", caller.name),
                None,
                None,
            )
            .await?;
        }
        self.store.commit(tx).await?;
        Ok(had)
    }
}
