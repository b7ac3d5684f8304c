//! The web side's listener: HTTPS on `http.listen`, each web asset on an
//! origin of its own (`https://ASSET.DOMAIN`). A request is routed by its
//! `Host`: a one-time link (`/.rampart/link/ID.SECRET`) opens a visit and
//! gives the browser the bastion's cookie; every other request needs that
//! cookie, for that asset, and goes through the visit's proxy.
//!
//! Must never: answer for a host that is not `ASSET.DOMAIN`, let one
//! asset's cookie open another's site, or tell a stranger whether an
//! asset exists (every refused link reads the same).

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, Response, StatusCode, header};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

use super::visit::{self, Visits};
use crate::model::{LINK_PATH, RDP_FILE_PATH, RECORDING_PATH, WebBase};
use crate::services::StartError;
use crate::session::{self, Context};

/// How long a request's head may take to arrive, and a kept-alive
/// connection may wait for the next one.
const HEADER_WAIT: std::time::Duration = std::time::Duration::from_secs(30);

/// The bastion's cookie: host-only, HTTPS-only, out of scripts' reach.
pub const COOKIE: &str = "__Host-rampart";

/// The web side, as the listener's tasks share it.
pub struct Web {
    pub context: Arc<Context>,
    pub base: WebBase,
    pub visits: Visits,
}

/// Binds `http.listen` and loads (or generates) its certificate; `None`
/// when the web side is off.
pub async fn bind(
    config: &crate::config::Config,
) -> Result<Option<(TcpListener, tokio_rustls::TlsAcceptor, WebBase)>, StartError> {
    let Some(addr) = config.http.listen else {
        return Ok(None);
    };
    let base = crate::services::web_base(&config.http).ok_or_else(|| {
        StartError::Refused(
            "http.listen needs http.domain: web asset APP is served at https://APP.DOMAIN".into(),
        )
    })?;
    let dir = config.data_dir();
    let names = [base.domain.clone(), format!("*.{}", base.domain)];
    let what = "http certificate";
    let loaded = crate::certificate::load_or_generate(
        &dir.join(&config.http.certificate),
        &dir.join(&config.http.key),
        what,
        &names,
    )
    .map_err(StartError::Refused)?;
    let tls = crate::certificate::server_config(loaded, what, &[b"http/1.1"])
        .map_err(StartError::Refused)?;
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|e| StartError::Refused(format!("cannot listen on {addr} (http.listen): {e}")))?;
    Ok(Some((
        listener,
        tokio_rustls::TlsAcceptor::from(Arc::new(tls)),
        base,
    )))
}

/// Accepts browsers until shutdown.
pub async fn serve(listener: TcpListener, tls: tokio_rustls::TlsAcceptor, web: Arc<Web>) {
    let max = web.context.services.config.ssh.max_connections as usize;
    let permits = Arc::new(tokio::sync::Semaphore::new(max.max(1)));
    loop {
        let Ok(permit) = permits.clone().acquire_owned().await else {
            return;
        };
        let Some((stream, peer)) = session::accept(&listener, &web.context.shutdown).await else {
            return;
        };
        let (tls, web2) = (tls.clone(), web.clone());
        web.context.tracker.spawn(async move {
            let _permit = permit;
            connection(stream, peer, tls, web2).await;
        });
    }
}

/// One browser connection: TLS, then HTTP/1.1 with upgrades (WebSockets),
/// until either side closes or the bastion shuts down.
async fn connection(
    stream: tokio::net::TcpStream,
    peer: SocketAddr,
    tls: tokio_rustls::TlsAcceptor,
    web: Arc<Web>,
) {
    let handshake = tokio::time::timeout(
        web.context.services.config.ssh.login_timeout,
        tls.accept(stream),
    );
    let stream = match handshake.await {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => {
            tracing::debug!(%peer, "web: TLS handshake failed: {e}");
            return;
        }
        Err(_) => return,
    };
    let shutdown = web.context.shutdown.clone();
    let service = hyper::service::service_fn(move |req: Request<hyper::body::Incoming>| {
        let web = web.clone();
        async move { Ok::<_, Infallible>(route(&web, req.map(Body::new), peer).await) }
    });
    // A browser that opens a connection and sends nothing (or dribbles a
    // request's head) does not hold it for ever.
    let served = hyper::server::conn::http1::Builder::new()
        .timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(HEADER_WAIT)
        .serve_connection(TokioIo::new(stream), service)
        .with_upgrades();
    tokio::pin!(served);
    tokio::select! {
        r = &mut served => if let Err(e) = r {
            tracing::debug!(%peer, "web: connection ended: {e}");
        },
        () = shutdown.cancelled() => served.as_mut().graceful_shutdown(),
    }
}

/// Routes one request by its host, then by link or cookie.
async fn route(web: &Arc<Web>, req: Request<Body>, peer: SocketAddr) -> Response<Body> {
    let host = req
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .or_else(|| req.uri().authority().map(|a| a.as_str()))
        .unwrap_or_default();
    if web.base.is_own_host(host) {
        let path = req.uri().path();
        if req.method() != axum::http::Method::GET {
            return page(StatusCode::NOT_FOUND, "nothing here");
        }
        if let Some(rest) = path.strip_prefix(RDP_FILE_PATH) {
            return super::remote_app::serve(web, rest).await;
        }
        if let Some(rest) = path.strip_prefix(RECORDING_PATH) {
            return super::recording::serve(web, rest).await;
        }
        return page(StatusCode::NOT_FOUND, "nothing here");
    }
    let Some(asset) = web.base.asset_of_host(host) else {
        return page(
            StatusCode::NOT_FOUND,
            "this is not a web asset's address on this bastion",
        );
    };
    // `/.rampart/` is the bastion's: nothing under it reaches the site.
    if let Some(token) = req.uri().path().strip_prefix(LINK_PATH) {
        if req.method() != axum::http::Method::GET {
            return page(StatusCode::METHOD_NOT_ALLOWED, "open the link with GET");
        }
        return visit::open(web, &asset, token, peer).await;
    }
    if req.uri().path().starts_with("/.rampart/") {
        return page(StatusCode::NOT_FOUND, "nothing here");
    }
    let Some(visit) = cookie(&req).and_then(|c| web.visits.get(&c)) else {
        return ended(&asset);
    };
    if !visit.is_for(&asset) {
        return ended(&asset);
    }
    visit.forward(web, req).await
}

/// The bastion's cookie of a request, if it sent one.
fn cookie(req: &Request<Body>) -> Option<String> {
    req.headers()
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .map(|(_, value)| value.to_string())
}

/// The answer to a request without a live visit of that asset.
fn ended(asset: &str) -> Response<Body> {
    page(
        StatusCode::UNAUTHORIZED,
        &format!(
            "no visit of {asset} is open in this browser (it ended, or never began): get a link with `ssh BASTION rampart web link {asset}` or from the menu"
        ),
    )
}

/// The bastion's own one-line answer.
pub fn page(status: StatusCode, text: &str) -> Response<Body> {
    let mut response = Response::new(Body::from(format!("rampart: {text}\n")));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        axum::http::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    headers.insert(
        header::CACHE_CONTROL,
        axum::http::HeaderValue::from_static("no-store"),
    );
    response
}
