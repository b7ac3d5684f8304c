//! The web side: web assets reached through the bastion with the
//! account's login injected, on `http.listen`.
//!
//! Layout: `contract` (the site, the request log, the login's one call to
//! the proxy), `client` (the client of one visit: dials the site only,
//! its certificate pinned, the visit's cookies), `jar` (the visit's
//! cookie jar, kept on the bastion), `proxy` (one browser request to the
//! site and back: header rules, upload/download cuts, cross-site
//! refusals, WebSocket tunnels, the request's log line), `form` (the
//! login form in a page: which form, its fields, where it posts), `login`
//! (the account's login: the headers of `basic` and `header:`, the
//! server-side `form:` login through the proxy's client), `front` (the
//! HTTPS listener: routing by host, link or cookie), `visit` (a visit as a
//! session: opened from a link, its requests logged, ended by staff, its
//! permission, shutdown or idleness), `remote_app` (RemoteApp `.rdp`
//! files on the bastion's own origin), `recording` (a recording's
//! one-time link, for auditors).

pub mod client;
pub mod contract;
pub mod form;
pub mod front;
pub mod jar;
pub mod login;
pub mod proxy;
pub mod recording;
pub mod remote_app;
pub mod visit;

pub use front::{Web, bind, serve};

/// The algorithm a web asset's pinned certificate is stored under.
pub const PIN_ALGORITHM: &str = "https-tls";

/// TLS towards an `https://` site: its pinned certificate, or the first
/// one it presents pinned (like an SSH host key; `asset trust` forgets
/// it).
pub async fn client_tls(
    services: &crate::services::Services,
    asset_id: &str,
    asset: &str,
    https: bool,
) -> Result<crate::db::contract::Tls, String> {
    if !https {
        return Ok(crate::db::contract::Tls {
            pinned: None,
            first_use: None,
        });
    }
    let pinned = crate::upstream::tls::pinned(&services.store, asset_id, PIN_ALGORITHM)
        .await
        .map_err(|e| format!("the pinned certificate cannot be read: {e}"))?;
    let (store, clock) = (services.store.clone(), services.clock.clone());
    let (asset_id, asset) = (asset_id.to_string(), asset.to_string());
    let first_use: crate::db::contract::FirstUse = std::sync::Arc::new(move |der: &[u8]| {
        let (store, now, der) = (store.clone(), clock.now(), der.to_vec());
        let (asset_id, asset) = (asset_id.clone(), asset.clone());
        tokio::spawn(async move {
            crate::upstream::tls::pin_first(&store, now, &asset_id, &asset, PIN_ALGORITHM, &der)
                .await;
        });
    });
    Ok(crate::db::contract::Tls {
        pinned,
        first_use: Some(first_use),
    })
}
