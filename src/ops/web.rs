//! `rampart web link ASSET [--account NAME]`: a one-time link to a web
//! asset, bound to the caller, the asset and one account, valid for
//! [`super::TICKET_LIFETIME`] and good for one visit. The web side
//! (`http::web`) redeems it: it opens the visit, logs in to the site with
//! the account's secret, and gives the browser a cookie of the bastion's
//! own; the site's login never reaches the browser.

use jiff::Timestamp;
use serde::Serialize;

use super::{Caller, Ops, OpsError, Result};
use crate::model::LINK_PATH;
use crate::vault::Secret;

/// The protocols of web assets.
pub const WEB_PROTOCOLS: &[&str] = &["https", "http"];

/// What the person opens in their browser.
#[derive(Debug, Serialize)]
pub struct WebLink {
    /// The one-time link (it carries the secret).
    #[serde(serialize_with = "expose")]
    pub url: Secret<String>,
    pub asset: String,
    pub account: String,
    pub expires_at: Timestamp,
}

fn expose<S: serde::Serializer>(s: &Secret<String>, to: S) -> Result<S::Ok, S::Error> {
    to.serialize_str(s.expose())
}

impl Ops {
    /// Issues a link to `asset` as `account` (the only granted stored
    /// account when `None`), if the caller may use it now without an
    /// approval.
    pub async fn web_link(
        &self,
        caller: &Caller,
        asset: &str,
        account: Option<&str>,
    ) -> Result<WebLink> {
        let base = self.settings.web.clone().ok_or_else(|| {
            OpsError::Invalid(
                "the web side is off on this bastion (http.listen and http.domain): ask an admin to turn it on".into(),
            )
        })?;
        let (_, protocol) = self.asset_over(asset, WEB_PROTOCOLS, "web asset").await?;
        let protocol = protocol.name;
        let grant = self
            .ticket_grant(caller, asset, account, &protocol, "the web")
            .await?;
        let issued = self.issue_ticket(caller, &grant, &protocol, None).await?;
        let url = format!(
            "{}{LINK_PATH}{}.{}",
            base.origin(grant.asset_name()),
            issued.id,
            issued.password.expose()
        );
        Ok(WebLink {
            url: Secret::new(url),
            asset: grant.asset_name().to_string(),
            account: issued.account,
            expires_at: issued.expires_at,
        })
    }
}
