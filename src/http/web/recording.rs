//! A recording's one-time link on the bastion's own web origin
//! (`https://DOMAIN/.rampart/recording/TICKET.SECRET/ID.cast`, from
//! `rampart session link`): the asciicast, streamed, once, to whoever
//! holds the link, if the auditor who asked for it still may read it (the
//! download is logged under their name). It may be fetched by
//! asciinema-player from another origin, so it allows any.

use axum::body::Body;
use axum::http::{HeaderValue, Response, StatusCode, header};
use sha2::{Digest, Sha256};

use super::front::{Web, page};
use crate::audit::Via;
use crate::model::{Identity, Role};

/// Serves `rest` (`TICKET.SECRET/ID.cast`); every refusal reads the same.
pub async fn serve(web: &Web, rest: &str) -> Response<Body> {
    match file(web, rest).await {
        Ok(file) => {
            let stream = tokio_util::io::ReaderStream::new(file);
            let mut response = Response::new(Body::from_stream(stream));
            let headers = response.headers_mut();
            headers.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/x-asciicast"),
            );
            headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            headers.insert(
                header::ACCESS_CONTROL_ALLOW_ORIGIN,
                HeaderValue::from_static("*"),
            );
            response
        }
        Err(why) => {
            tracing::info!("recording link refused: {why}");
            page(
                StatusCode::NOT_FOUND,
                "no such recording link, or it is used or expired: get a new one with `ssh BASTION rampart session link ID`",
            )
        }
    }
}

async fn file(web: &Web, rest: &str) -> Result<tokio::fs::File, String> {
    let (token, name) = rest.split_once('/').ok_or("no ticket in the path")?;
    let (id, secret) = token.split_once('.').ok_or("no secret in the link")?;
    let session = name.strip_suffix(".cast").ok_or("not a .cast file")?;
    let services = &web.context.services;
    let now = services.clock.now();
    let mut conn = services.store.conn().await.map_err(|e| e.to_string())?;
    let ticket = crate::store::rdp_tickets::unspent(&mut conn, id, now)
        .await
        .map_err(|e| e.to_string())?
        .filter(|t| t.protocol == crate::ops::RECORDING_TICKET && t.account == session)
        .ok_or("no unspent link to this recording")?;
    let vault = services.vault.as_ref().ok_or("the vault is not open")?;
    let expected = vault
        .open_string(&ticket.secret)
        .map_err(|_| "the link's secret cannot be read")?;
    if Sha256::digest(expected.expose().as_bytes()) != Sha256::digest(secret.as_bytes()) {
        return Err("wrong secret for the link".into());
    }
    if !crate::store::rdp_tickets::redeem(&mut conn, &ticket.id, now)
        .await
        .map_err(|e| e.to_string())?
    {
        return Err("the link was used meanwhile".into());
    }
    drop(conn);
    let name = web
        .context
        .policy()
        .user_by_id(&ticket.user_id)
        .map(|u| u.name.to_string())
        .ok_or("the link's auditor is gone")?;
    let who = Identity {
        user_id: ticket.user_id.clone(),
        name,
        role: Role::User,
        groups: Vec::new(),
    };
    let ops = &services.ops;
    let caller = ops
        .caller(&who, Via::Web)
        .await
        .map_err(|e| e.to_string())?;
    let path = ops
        .session_recording(&caller, session, "session.download", &services.recordings)
        .await
        .map_err(|e| e.to_string())?;
    tokio::fs::File::open(&path)
        .await
        .map_err(|e| format!("{}: {e}", path.display()))
}
