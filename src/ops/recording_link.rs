//! `rampart session link ID`: a one-time link to a terminal session's
//! recording (an asciicast), for an auditor to open in asciinema-player or
//! download. Like a ticket it is bound to the auditor and one session,
//! valid for [`super::TICKET_LIFETIME`] and good for one download; the web
//! side serves it on the bastion's own origin (`http::web::recording`),
//! checking the auditor's role again and logging the download.

use jiff::Timestamp;
use serde::Serialize;

use super::{Caller, Ops, OpsError, Result, require_auditor};
use crate::model::RECORDING_PATH;
use crate::store;
use crate::vault::Secret;

/// The front a recording's ticket is redeemed by.
pub const RECORDING_TICKET: &str = "recording";

/// A recording's one-time link.
#[derive(Debug, Serialize)]
pub struct RecordingLink {
    #[serde(serialize_with = "expose")]
    pub url: Secret<String>,
    pub session: String,
    pub expires_at: Timestamp,
}

fn expose<S: serde::Serializer>(s: &Secret<String>, to: S) -> Result<S::Ok, S::Error> {
    to.serialize_str(s.expose())
}

impl Ops {
    /// Issues a link to session `id`'s recording for the caller (an
    /// auditor or admin).
    pub async fn recording_link(&self, caller: &Caller, id: &str) -> Result<RecordingLink> {
        require_auditor(caller, "linking a recording")?;
        let base = self.settings.web.clone().ok_or_else(|| {
            OpsError::Invalid(
                "the web side is off on this bastion (http.listen and http.domain): use `rampart export ID` instead".into(),
            )
        })?;
        let snapshot = self.policy_snapshot().await?;
        let user_id = snapshot
            .user_by_name(&caller.name)
            .map(|u| u.id.to_string());
        let user_id = user_id.ok_or_else(|| {
            OpsError::Invalid(
                "a link is for a person: run it as yourself over SSH (`ssh bastion rampart session link ID`)".into(),
            )
        })?;
        let session = {
            let mut conn = self.store.conn().await?;
            store::sessions::get(&mut conn, id).await?
        };
        if session.recording.is_none() {
            return Err(OpsError::Invalid(format!("session {id} has no recording")));
        }
        if session.kind == "desktop" {
            return Err(OpsError::Invalid(format!(
                "session {id} is a desktop: asciinema-player cannot play it; use `rampart export {id} --format gif` (or png, mp4)"
            )));
        }
        let to = super::rdp::Ticketed {
            user_id,
            asset_id: String::new(),
            account: id.to_string(),
            protocol: RECORDING_TICKET.to_string(),
            approved_by: None,
        };
        let detail = |t: &store::rdp_tickets::Ticket| serde_json::json!({ "expires_at": store::ts(t.expires_at) });
        let issued = self
            .store_ticket(caller, to, "session.link", format!("session {id}"), detail)
            .await?;
        let url = format!(
            "{}{RECORDING_PATH}{}.{}/{id}.cast",
            base.own_origin(),
            issued.id,
            issued.password.expose()
        );
        Ok(RecordingLink {
            url: Secret::new(url),
            session: id.to_string(),
            expires_at: issued.expires_at,
        })
    }
}
