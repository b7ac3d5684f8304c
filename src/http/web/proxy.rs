//! The reverse proxy of a web asset: one browser request in, one request
//! to the site out (through the visit's [`Client`], which cannot reach
//! anything else), one answer back, and one log line.
//!
//! On the way up the browser's own credentials, cookies (the bastion's
//! only), forwarding headers and hop-by-hop headers are dropped, `Origin`
//! and `Referer` are made the site's, and the account's login and the
//! visit's cookies are added. On the way down the site's cookies go into
//! the jar, a `Location` on the site is made the bastion's, and
//! hop-by-hop headers are dropped. Uploads and downloads are cut by the
//! grant; a state-changing request another site started is refused.
//! WebSockets pass through as a counted tunnel.
//!
//! Must never: send a request anywhere but the site, show the browser a
//! cookie of the site, or buffer a whole body.

mod log;
#[cfg(test)]
mod tests;

use std::sync::Arc;

use axum::body::Body;
use axum::http::{
    HeaderMap, HeaderName, HeaderValue, Method, Request, Response, StatusCode, header,
};
use hyper_util::rt::TokioIo;

use self::log::{Counted, Logged, Pending, Shared};
use super::client::Client;
use super::contract::{LogSink, Site};

/// What [`forward`] needs to know of the visit besides its client.
pub struct Exchange<'a> {
    /// The asset's origin on the bastion as the browser sees it:
    /// `https://app1.web.example.com:8443`.
    pub public_origin: &'a str,
    /// Headers the account's login injects on every request (Basic or a
    /// static header), already built.
    pub inject: &'a [(HeaderName, HeaderValue)],
    /// The bastion's own cookie name. The browser's whole `Cookie` header
    /// is dropped (it holds only the bastion's cookies), so this one never
    /// goes upstream either.
    pub bastion_cookie: &'a str,
    pub allow_upload: bool,
    pub allow_download: bool,
    /// Cancelled when the visit ends: its WebSocket tunnels close.
    pub ended: &'a tokio_util::sync::CancellationToken,
}

/// What a refused upload is told and logged as.
pub const NO_UPLOAD: &str = "uploads are not granted to you on this asset";
/// What a refused download is told and logged as.
pub const NO_DOWNLOAD: &str = "downloads are not granted to you on this asset";

/// Forwards one browser request to the site and returns the site's
/// answer for the browser; `log` gets the request's line once the answer
/// has ended (or, for a WebSocket, once its tunnel has closed).
pub async fn forward(
    client: &Client,
    mut req: Request<Body>,
    ex: &Exchange<'_>,
    log: LogSink,
) -> Response<Body> {
    let path = req
        .uri()
        .path_and_query()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "/".into());
    let seen = Shared::default();
    let content_type = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok());
    let mut pending = Pending::new(
        log,
        req.method().as_str(),
        &path,
        content_type,
        seen.clone(),
    );
    if let Some(reason) = refusal(&req, ex) {
        return answer(pending, StatusCode::FORBIDDEN, &reason, true);
    }
    let websocket = is_websocket(&req);
    let browser_side = websocket.then(|| hyper::upgrade::on(&mut req));
    let (parts, body) = req.into_parts();
    let mut headers = request_headers(&parts.headers, ex.public_origin, client.site(), websocket);
    for (name, value) in ex.inject {
        headers.insert(name.clone(), value.clone());
    }
    if let Some(cookies) = client.cookies_for(&path) {
        headers.append(header::COOKIE, cookies);
    }
    let mut upstream = Request::new(Body::new(Counted { inner: body, seen }));
    *upstream.method_mut() = parts.method;
    *upstream.uri_mut() = parts.uri;
    *upstream.headers_mut() = headers;
    let mut answered = match client.send(upstream).await {
        Ok(answered) => answered,
        Err(e) => return answer(pending, StatusCode::BAD_GATEWAY, &e.to_string(), false),
    };
    client.keep_cookies(answered.headers_mut(), &path);
    if let Some(browser_side) = browser_side
        && answered.status() == StatusCode::SWITCHING_PROTOCOLS
    {
        let site_side = hyper::upgrade::on(&mut answered);
        return tunnel(answered, browser_side, site_side, pending, ex.ended.clone());
    }
    let (mut parts, body) = answered.into_parts();
    if !ex.allow_download && is_attachment(&parts.headers) {
        // The site's body is dropped unread: nothing of it reaches the
        // browser (and its connection is not reused).
        drop(body);
        return answer(pending, StatusCode::FORBIDDEN, NO_DOWNLOAD, true);
    }
    response_headers(&mut parts.headers, client.site(), ex.public_origin);
    pending.status(parts.status.as_u16());
    Response::from_parts(parts, Body::new(Logged::new(Body::new(body), pending)))
}

/// The bastion's own one-line answer: a refusal or an unreachable site.
fn answer(mut pending: Pending, status: StatusCode, reason: &str, refused: bool) -> Response<Body> {
    pending.status(status.as_u16());
    if refused {
        pending.refused(reason);
    }
    let text = format!("rampart: {reason}\n");
    let mut response = Response::new(Body::new(Logged::new(Body::from(text), pending)));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

/// Why the bastion refuses a request before it goes upstream, if it does.
fn refusal(req: &Request<Body>, ex: &Exchange<'_>) -> Option<String> {
    let headers = req.headers();
    let text = |name: HeaderName| {
        headers
            .get(name)
            .map(|v| v.to_str().unwrap_or("(not text)"))
    };
    let safe = matches!(
        *req.method(),
        Method::GET | Method::HEAD | Method::OPTIONS | Method::TRACE
    );
    if !safe {
        if let Some(site) = text(HeaderName::from_static("sec-fetch-site"))
            && !site.eq_ignore_ascii_case("same-origin")
            && !site.eq_ignore_ascii_case("none")
        {
            return Some(format!(
                "a {} started by another site ({site}) is refused, to protect the asset from cross-site requests",
                req.method()
            ));
        }
        if let Some(origin) = text(header::ORIGIN)
            && !origin.eq_ignore_ascii_case(ex.public_origin)
        {
            return Some(format!(
                "a {} from another origin is refused, to protect the asset from cross-site requests",
                req.method()
            ));
        }
    }
    let multipart = text(header::CONTENT_TYPE)
        .and_then(|t| t.split(';').next())
        .is_some_and(|t| t.trim().eq_ignore_ascii_case("multipart/form-data"));
    (multipart && !ex.allow_upload).then(|| NO_UPLOAD.to_string())
}

/// A GET that asks to become a WebSocket.
fn is_websocket(req: &Request<Body>) -> bool {
    req.method() == Method::GET
        && req
            .headers()
            .get(header::UPGRADE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.trim().eq_ignore_ascii_case("websocket"))
        && connection_tokens(req.headers())
            .iter()
            .any(|t| t == "upgrade")
}

/// The lower-case header names a `Connection` header lists.
fn connection_tokens(headers: &HeaderMap) -> Vec<String> {
    headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|t| t.trim().to_ascii_lowercase())
        .filter(|t| !t.is_empty())
        .collect()
}

/// A header that describes one hop only (RFC 9110 §7.6.1), or that a
/// proxy must not pass on.
fn is_hop_by_hop(name: &str, named: &[String]) -> bool {
    matches!(
        name,
        "connection" | "keep-alive" | "te" | "trailer" | "transfer-encoding" | "upgrade"
    ) || name.starts_with("proxy-")
        || named.iter().any(|n| n == name)
}

/// The browser's headers as the site gets them (see the module docs),
/// before the login and the jar's cookies are added.
fn request_headers(
    from: &HeaderMap,
    public_origin: &str,
    site: &Site,
    websocket: bool,
) -> HeaderMap {
    let named = connection_tokens(from);
    let mut out = HeaderMap::new();
    for (name, value) in from {
        let key = name.as_str();
        let dropped = is_hop_by_hop(key, &named)
            || matches!(
                key,
                "host" | "authorization" | "cookie" | "forwarded" | "x-real-ip"
            )
            || key.starts_with("x-forwarded-");
        if dropped {
            continue;
        }
        let value = match key {
            "origin" | "referer" => {
                let Some(rest) = value
                    .to_str()
                    .ok()
                    .and_then(|v| strip_origin(v, public_origin))
                else {
                    continue;
                };
                match HeaderValue::from_str(&format!("{}{rest}", site.origin())) {
                    Ok(v) => v,
                    Err(_) => continue,
                }
            }
            _ => value.clone(),
        };
        out.append(name.clone(), value);
    }
    if websocket {
        out.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
        out.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
    }
    out
}

/// The site's headers as the browser gets them (`Set-Cookie` is already
/// in the jar).
fn response_headers(headers: &mut HeaderMap, site: &Site, public_origin: &str) {
    let named = connection_tokens(headers);
    let hop: Vec<HeaderName> = headers
        .keys()
        .filter(|name| is_hop_by_hop(name.as_str(), &named))
        .cloned()
        .collect();
    for name in hop {
        headers.remove(name);
    }
    headers.remove(header::SET_COOKIE);
    let rewritten = headers
        .get(header::LOCATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|location| site_path(location, site))
        .and_then(|rest| HeaderValue::from_str(&format!("{public_origin}{rest}")).ok());
    if let Some(location) = rewritten {
        headers.insert(header::LOCATION, location);
    }
}

/// What follows `origin` in `url` when `url` is on that origin (an
/// origin's case does not matter): `""`, or text starting with `/`, `?`
/// or `#`.
fn strip_origin<'u>(url: &'u str, origin: &str) -> Option<&'u str> {
    let head = url.get(..origin.len())?;
    let rest = url.get(origin.len()..)?;
    let on_origin =
        head.eq_ignore_ascii_case(origin) && (rest.is_empty() || rest.starts_with(['/', '?', '#']));
    on_origin.then_some(rest)
}

/// The path of a URL on the site (written with or without its scheme's
/// default port), if it is one.
fn site_path<'u>(url: &'u str, site: &Site) -> Option<&'u str> {
    let scheme = if site.https { "https" } else { "http" };
    let host = if site.host.contains(':') {
        format!("[{}]", site.host)
    } else {
        site.host.clone()
    };
    let explicit = format!("{scheme}://{host}:{}", site.port);
    strip_origin(url, &site.origin()).or_else(|| strip_origin(url, &explicit))
}

/// A response the site wants saved as a file.
fn is_attachment(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_DISPOSITION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|kind| kind.trim().eq_ignore_ascii_case("attachment"))
}

/// Answers the browser's upgrade with the site's `101` and joins the two
/// upgraded connections; the line goes out when the tunnel closes.
fn tunnel(
    answered: Response<hyper::body::Incoming>,
    browser_side: hyper::upgrade::OnUpgrade,
    site_side: hyper::upgrade::OnUpgrade,
    mut pending: Pending,
    ended: tokio_util::sync::CancellationToken,
) -> Response<Body> {
    let (mut parts, _) = answered.into_parts();
    let named = connection_tokens(&parts.headers);
    let hop: Vec<HeaderName> = parts
        .headers
        .keys()
        .filter(|name| name.as_str() != "upgrade" && is_hop_by_hop(name.as_str(), &named))
        .cloned()
        .collect();
    for name in hop {
        parts.headers.remove(name);
    }
    parts
        .headers
        .insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
    pending.status(StatusCode::SWITCHING_PROTOCOLS.as_u16());
    tokio::spawn(async move {
        let (browser, site) = match tokio::join!(browser_side, site_side) {
            (Ok(browser), Ok(site)) => (browser, site),
            (Err(e), _) | (_, Err(e)) => {
                tracing::debug!("a WebSocket upgrade failed: {e}");
                pending.finish(0, 0);
                return;
            }
        };
        let counts = Arc::new(crate::db::contract::Counts::default());
        let mut browser = crate::db::contract::Counted {
            inner: TokioIo::new(browser),
            counts: counts.clone(),
        };
        let mut site = TokioIo::new(site);
        tokio::select! {
            copied = tokio::io::copy_bidirectional(&mut browser, &mut site) => {
                if let Err(e) = copied {
                    tracing::debug!("a WebSocket tunnel ended: {e}");
                }
            }
            () = ended.cancelled() => {}
        }
        let read = counts.read.load(std::sync::atomic::Ordering::Relaxed);
        let written = counts.written.load(std::sync::atomic::Ordering::Relaxed);
        pending.finish(read, written);
    });
    Response::from_parts(parts, Body::empty())
}
