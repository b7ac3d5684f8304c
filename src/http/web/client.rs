//! The HTTP client of one visit to one web asset: a pooled HTTP/1.1
//! client whose connector dials the asset's site and nothing else,
//! whatever URI a request names, over TLS with the site's certificate
//! pinned like a host key when the site is `https://`. It holds the
//! visit's cookie jar.
//!
//! Must never: connect to another host or port, accept a certificate
//! other than the pinned one, or let a `Set-Cookie` of the site through
//! to its caller.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Body;
use axum::http::{HeaderValue, Request, Response, Uri, header};
use bytes::{Bytes, BytesMut};
use futures_util::future::BoxFuture;
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper_util::client::legacy::connect::{Connected, Connection};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpStream;

use super::contract::{Fetch, FetchError, Site};
use super::jar::Jar;
use crate::clock::Clock;
use crate::db::contract::{FirstUse, Server, ServerStream, Tls};

/// How long the site may take to start its answer (a slow report or
/// export still gets its body streamed for as long as it takes).
pub const ANSWER_WAIT: Duration = Duration::from_secs(120);

/// How long the connection to the site, TLS included, may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long an idle connection to the site stays open for the next
/// request.
const IDLE: Duration = Duration::from_secs(60);

/// The client of one visit (see the module docs).
pub struct Client {
    site: Site,
    origin: String,
    host: HeaderValue,
    http: hyper_util::client::legacy::Client<Dial, Body>,
    jar: Mutex<Jar>,
    clock: Arc<dyn Clock>,
}

impl Client {
    /// A client for `site`. `tls` is the site's pin (ignored for an
    /// `http://` site); when nothing is pinned, the first certificate the
    /// site presents goes to `tls.first_use` once and is what every later
    /// connection of this client must present.
    pub fn new(site: Site, tls: Tls, clock: Arc<dyn Clock>) -> Client {
        let origin = site.origin();
        let host = HeaderValue::from_str(&site.authority())
            .unwrap_or_else(|_| HeaderValue::from_static("localhost"));
        let dial = Dial {
            site: Arc::new(site.clone()),
            pin: Arc::new(PinState {
                pinned: Mutex::new(tls.pinned),
                first_use: Mutex::new(tls.first_use),
            }),
        };
        let http = hyper_util::client::legacy::Client::builder(TokioExecutor::new())
            .pool_idle_timeout(IDLE)
            .pool_max_idle_per_host(8)
            .retry_canceled_requests(false)
            .build(dial);
        let jar = Mutex::new(Jar::new(&site.host));
        Client {
            site,
            origin,
            host,
            http,
            jar,
            clock,
        }
    }

    pub fn site(&self) -> &Site {
        &self.site
    }

    /// The site's origin, `https://host[:port]`.
    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// The `Cookie` header the jar holds for a request to `path`.
    pub(crate) fn cookies_for(&self, path: &str) -> Option<HeaderValue> {
        let now = self.clock.now();
        let header = self
            .jar
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .header(path, now)?;
        HeaderValue::from_str(&header).ok()
    }

    /// Moves every `Set-Cookie` of an answer to a request for `path` into
    /// the jar.
    pub(crate) fn keep_cookies(&self, headers: &mut axum::http::HeaderMap, path: &str) {
        let now = self.clock.now();
        let mut jar = self.jar.lock().unwrap_or_else(|e| e.into_inner());
        for value in headers.get_all(header::SET_COOKIE) {
            match value.to_str() {
                Ok(text) => jar.store(text, path, now),
                Err(_) => {
                    tracing::warn!(host = %self.site.host, "the site set a cookie that is not text; it is dropped")
                }
            }
        }
        headers.remove(header::SET_COOKIE);
    }

    /// Sends `req` to the site as it is, but for its URI (the site's
    /// origin and the request's path and query) and its `Host` (the
    /// site's). Cookies are the caller's to add and keep.
    pub(crate) async fn send(
        &self,
        mut req: Request<Body>,
    ) -> Result<Response<Incoming>, FetchError> {
        let path = req
            .uri()
            .path_and_query()
            .map(|p| p.as_str())
            .unwrap_or("/");
        let uri: Uri = format!("{}{}", self.origin, path)
            .parse()
            .map_err(|_| FetchError::Broken(format!("{path:?} is not a path on the site")))?;
        *req.uri_mut() = uri;
        *req.version_mut() = axum::http::Version::HTTP_11;
        req.headers_mut().insert(header::HOST, self.host.clone());
        let answered = tokio::time::timeout(ANSWER_WAIT, self.http.request(req))
            .await
            .map_err(|_| {
                FetchError::Broken(format!("no answer within {} s", ANSWER_WAIT.as_secs()))
            })?;
        answered.map_err(|e| match find::<Refused>(&e) {
            Some(refused) => FetchError::Unreachable(refused.0.clone()),
            None if e.is_connect() => FetchError::Unreachable(chain(&e)),
            None => FetchError::Broken(chain(&e)),
        })
    }
}

impl Fetch for Client {
    fn fetch(
        &self,
        req: Request<Bytes>,
        limit: usize,
    ) -> BoxFuture<'_, Result<Response<Bytes>, FetchError>> {
        Box::pin(async move {
            let (mut parts, body) = req.into_parts();
            let path = parts
                .uri
                .path_and_query()
                .map(|p| p.as_str().to_string())
                .unwrap_or_else(|| "/".into());
            parts.headers.remove(header::COOKIE);
            // A posted login carries the site's own origin, as a browser's
            // would: sites' CSRF checks (Django's) refuse a POST without it.
            if !matches!(
                parts.method,
                axum::http::Method::GET | axum::http::Method::HEAD
            ) && !parts.headers.contains_key(header::ORIGIN)
                && let Ok(origin) = HeaderValue::from_str(self.origin())
            {
                parts.headers.insert(header::ORIGIN, origin);
            }
            if let Some(cookies) = self.cookies_for(&path) {
                parts.headers.insert(header::COOKIE, cookies);
            }
            let answer = self
                .send(Request::from_parts(parts, Body::from(body)))
                .await?;
            let (mut parts, mut body) = answer.into_parts();
            self.keep_cookies(&mut parts.headers, &path);
            let mut whole = BytesMut::new();
            while let Some(frame) = body.frame().await {
                let frame = frame.map_err(|e| FetchError::Broken(chain(&e)))?;
                if let Ok(data) = frame.into_data() {
                    if whole.len() + data.len() > limit {
                        return Err(FetchError::TooLarge(limit));
                    }
                    whole.extend_from_slice(&data);
                }
            }
            Ok(Response::from_parts(parts, whole.freeze()))
        })
    }
}

/// An error's text with its causes, for a reason shown to the person.
fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// The first error of type `T` in `e`'s chain.
fn find<'e, T: std::error::Error + 'static>(
    e: &'e (dyn std::error::Error + 'static),
) -> Option<&'e T> {
    let mut current = Some(e);
    while let Some(error) = current {
        if let Some(found) = error.downcast_ref::<T>() {
            return Some(found);
        }
        current = error.source();
    }
    None
}

/// Why the connector did not connect, in words for the person.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct Refused(String);

/// The pin shared by every connection of one client.
struct PinState {
    pinned: Mutex<Option<String>>,
    /// Taken at the first certificate seen when nothing was pinned.
    first_use: Mutex<Option<FirstUse>>,
}

/// The connector: every URI leads to the site.
#[derive(Clone)]
struct Dial {
    site: Arc<Site>,
    pin: Arc<PinState>,
}

impl tower_service::Service<Uri> for Dial {
    type Response = TokioIo<ServerStream>;
    type Error = Refused;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Refused>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Refused>> {
        Poll::Ready(Ok(()))
    }

    /// The URI is ignored on purpose: the site is the only destination.
    fn call(&mut self, _uri: Uri) -> Self::Future {
        let dial = self.clone();
        Box::pin(async move {
            match tokio::time::timeout(CONNECT_TIMEOUT, dial.connect()).await {
                Ok(result) => result.map(TokioIo::new),
                Err(_) => Err(Refused(format!(
                    "no connection within {} seconds",
                    CONNECT_TIMEOUT.as_secs()
                ))),
            }
        })
    }
}

impl Dial {
    async fn connect(&self) -> Result<ServerStream, Refused> {
        let site = &self.site;
        let tcp = TcpStream::connect((site.host.as_str(), site.port))
            .await
            .map_err(|e| Refused(crate::upstream::io_reason(&e)))?;
        let _ = tcp.set_nodelay(true);
        if !site.https {
            return Ok(Server::Plain(tcp));
        }
        let (connector, seen) = crate::upstream::tls::connector();
        let stream = connector
            .with_alpn(vec![b"http/1.1".to_vec()])
            .connect(crate::upstream::tls::server_name(&site.host), tcp)
            .await
            .map_err(|e| {
                Refused(format!(
                    "TLS handshake failed: {}",
                    crate::upstream::io_reason(&e)
                ))
            })?;
        let certificate = seen
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
            .unwrap_or_default();
        self.check_pin(&certificate)?;
        Ok(ServerStream::tls(stream))
    }

    /// The certificate against the pin, or pinned when nothing is.
    fn check_pin(&self, certificate: &[u8]) -> Result<(), Refused> {
        let presented = crate::upstream::tls::fingerprint(certificate);
        {
            let mut pinned = self.pin.pinned.lock().unwrap_or_else(|e| e.into_inner());
            match pinned.as_deref() {
                Some(pin) if pin != presented => {
                    return Err(Refused(format!(
                        "the site's TLS certificate is {presented}, not the pinned {pin}; if it was renewed, an admin checks it and runs `rampart asset trust ASSET` to pin the new one"
                    )));
                }
                Some(_) => return Ok(()),
                None => *pinned = Some(presented),
            }
        }
        let first_use = self
            .pin
            .first_use
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        if let Some(first_use) = first_use {
            first_use(certificate);
        }
        Ok(())
    }
}

impl Connection for ServerStream {
    fn connected(&self) -> Connected {
        Connected::new()
    }
}
