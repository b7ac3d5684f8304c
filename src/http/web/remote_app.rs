//! RemoteApp files on the bastion's own web origin (`https://DOMAIN`):
//! `/.rampart/rdp/TICKET/ALIAS.rdp`, the `.rdp` file that opens a
//! published program through the RDP front with an RDP ticket
//! (`rampart rdp ticket` lists the links). The file holds the front's
//! address, the ticket's user name and the program, never a password; it
//! is served while the ticket is unspent and unexpired, and only for a
//! program the ticket's asset publishes.

use axum::body::Body;
use axum::http::{HeaderValue, Response, StatusCode, header};

use super::front::{Web, page};

/// Serves `rest` (`TICKET/ALIAS.rdp`); every refusal reads the same.
pub async fn serve(web: &Web, rest: &str) -> Response<Body> {
    match file(web, rest).await {
        Ok((alias, text)) => {
            let mut response = Response::new(Body::from(text));
            let headers = response.headers_mut();
            headers.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/x-rdp"),
            );
            if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{alias}.rdp\"")) {
                headers.insert(header::CONTENT_DISPOSITION, v);
            }
            headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            response
        }
        Err(why) => {
            tracing::info!("RemoteApp file refused: {why}");
            page(
                StatusCode::NOT_FOUND,
                "no such RemoteApp file, or its ticket is used or expired: get a new one with `ssh BASTION rampart rdp ticket ASSET`",
            )
        }
    }
}

async fn file(web: &Web, rest: &str) -> Result<(String, String), String> {
    let (ticket_id, file) = rest.split_once('/').ok_or("no ticket in the path")?;
    let alias = file.strip_suffix(".rdp").ok_or("not a .rdp file")?;
    let services = &web.context.services;
    let front = services
        .config
        .rdp_front_address()
        .ok_or("the RDP front is off (rdp.listen)")?;
    let now = services.clock.now();
    let mut conn = services.store.conn().await.map_err(|e| e.to_string())?;
    let ticket = crate::store::rdp_tickets::unspent(&mut conn, ticket_id, now)
        .await
        .map_err(|e| e.to_string())?
        .filter(|t| t.protocol == "rdp")
        .ok_or("no unspent RDP ticket with this id")?;
    let apps = crate::store::remote_apps::list(&mut conn, Some(&ticket.asset_id))
        .await
        .map_err(|e| e.to_string())?;
    let app = apps
        .into_iter()
        .find(|a| a.alias == alias)
        .ok_or("the asset publishes no such program")?;
    let policy = web.context.policy();
    let person = policy
        .user_by_id(&ticket.user_id)
        .ok_or("the ticket's person is gone")?;
    let login = format!("{}#{}", person.name, app.asset);
    Ok((
        app.alias.clone(),
        crate::ops::rdp_file(&front, &login, &app),
    ))
}
