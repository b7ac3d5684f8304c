//! What a database session needs of its asset beyond the grant: the
//! default database, and whether the server is reached over TLS with the
//! certificate pinned for it. Read when the session starts; an asset that
//! cannot be read refuses the session, since the proxy could not know
//! whether the credential may go over plain TCP.

use std::sync::Arc;

use super::contract::{FirstUse, Tls};
use crate::services::Services;

/// A database asset's server settings.
#[derive(Debug)]
pub struct Server {
    /// The database when the client names none; empty: the server's.
    pub database: String,
    pub tls: Option<Tls>,
}

/// How a database protocol's certificate is filed among the asset's
/// pinned host keys: `postgresql-tls`, `mysql-tls`, `redis-tls`.
pub fn pin_algorithm(protocol: &str) -> String {
    format!("{protocol}-tls")
}

/// The settings of `asset` for `protocol`; `Err`: why the session cannot
/// start, for the person and the log.
pub async fn of_asset(services: &Services, asset: &str, protocol: &str) -> Result<Server, String> {
    let unreadable = |e: &dyn std::fmt::Display| format!("cannot read asset {asset}: {e}");
    let stored = {
        let mut c = services.store.conn().await.map_err(|e| unreadable(&e))?;
        crate::store::assets::find(&mut c, asset)
            .await
            .map_err(|e| unreadable(&e))?
            .ok_or_else(|| format!("asset {asset} is gone"))?
    };
    let tls = if stored.tls {
        Some(tls(services, &stored.id, asset, protocol).await?)
    } else {
        None
    };
    Ok(Server {
        database: stored.database,
        tls,
    })
}

/// The pin for the asset's certificate, or, with none yet, the callback
/// that pins the first one presented.
async fn tls(
    services: &Services,
    asset_id: &str,
    asset: &str,
    protocol: &str,
) -> Result<Tls, String> {
    let algorithm = pin_algorithm(protocol);
    let pinned = crate::upstream::tls::pinned(&services.store, asset_id, &algorithm)
        .await
        .map_err(|e| format!("the pinned certificate of {asset} cannot be read: {e}"))?;
    let first_use = pinned.is_none().then(|| {
        let (store, clock) = (services.store.clone(), services.clock.clone());
        let (asset_id, asset) = (asset_id.to_string(), asset.to_string());
        Arc::new(move |der: &[u8]| {
            let (store, now, der) = (store.clone(), clock.now(), der.to_vec());
            let (asset_id, asset, algorithm) = (asset_id.clone(), asset.clone(), algorithm.clone());
            tokio::spawn(async move {
                crate::upstream::tls::pin_first(&store, now, &asset_id, &asset, &algorithm, &der)
                    .await;
            });
        }) as FirstUse
    });
    Ok(Tls { pinned, first_use })
}
