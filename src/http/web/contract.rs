//! What the parts of the web side agree on: the site a web asset proxies
//! to, the log line of each request, and the one call the server-side
//! login needs from the proxy's client.

use std::time::Duration;

use bytes::Bytes;
use futures_util::future::BoxFuture;

/// The fixed upstream of one web asset, read from its `url`: the proxy
/// dials this host and port and nothing else, whatever a request says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Site {
    pub https: bool,
    /// A host name or an IP address (without brackets).
    pub host: String,
    pub port: u16,
    /// Where the site starts (`/`, or `/admin/`): the path a fresh visit
    /// opens.
    pub start: String,
}

impl Site {
    /// Reads an asset's `url`: `http://` or `https://`, a host, an optional
    /// port and path; no user info, query or fragment.
    pub fn parse(url: &str) -> Result<Site, String> {
        let (https, rest) = if let Some(rest) = url.strip_prefix("https://") {
            (true, rest)
        } else if let Some(rest) = url.strip_prefix("http://") {
            (false, rest)
        } else {
            return Err(format!("{url:?} is not an http:// or https:// url"));
        };
        let (authority, path) = match rest.find('/') {
            Some(i) => rest.split_at(i),
            None => (rest, "/"),
        };
        if authority.contains('@') || path.contains(['?', '#']) || authority.contains(['?', '#']) {
            return Err(format!(
                "{url:?}: give the site's address and path only (no user, query or fragment)"
            ));
        }
        let default_port = if https { 443 } else { 80 };
        let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
            let (host, after) = v6
                .split_once(']')
                .ok_or_else(|| format!("{url:?}: an IPv6 address needs its closing ]"))?;
            let port = match after.strip_prefix(':') {
                Some(p) => p.parse().map_err(|_| format!("{url:?}: bad port {p:?}"))?,
                None if after.is_empty() => default_port,
                None => return Err(format!("{url:?}: unexpected {after:?} after the address")),
            };
            (host.to_string(), port)
        } else {
            match authority.rsplit_once(':') {
                Some((h, p)) => (
                    h.to_string(),
                    p.parse().map_err(|_| format!("{url:?}: bad port {p:?}"))?,
                ),
                None => (authority.to_string(), default_port),
            }
        };
        if host.is_empty() || port == 0 {
            return Err(format!("{url:?}: no host or port"));
        }
        Ok(Site {
            https,
            host: host.to_ascii_lowercase(),
            port,
            start: path.to_string(),
        })
    }

    /// `https://host[:port]`, the port left out when it is the scheme's.
    pub fn origin(&self) -> String {
        let scheme = if self.https { "https" } else { "http" };
        let default_port = if self.https { 443 } else { 80 };
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        if self.port == default_port {
            format!("{scheme}://{host}")
        } else {
            format!("{scheme}://{host}:{}", self.port)
        }
    }

    /// What the `Host` header says upstream: `host[:port]`.
    pub fn authority(&self) -> String {
        self.origin()
            .split_once("://")
            .map(|(_, a)| a.to_string())
            .unwrap_or_default()
    }
}

/// One request through the proxy, as the request log keeps it (a command
/// row of the visit's session).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestLog {
    pub method: String,
    /// The path and query, at most [`PATH_CAP`] bytes.
    pub path: String,
    /// The status the browser got (403 for a refused request, 502 when
    /// the site could not be reached).
    pub status: u16,
    /// The request body's bytes, and the response body's as sent to the
    /// browser (counted as they stream; a response the browser stopped
    /// reading counts what was sent).
    pub bytes_in: u64,
    pub bytes_out: u64,
    /// From the request's arrival to the response body's end.
    pub duration: Duration,
    /// A form or JSON body, at most [`BODY_CAP`] bytes, with every field
    /// whose name says password, secret or token replaced by `***`;
    /// `(N bytes)` for other bodies.
    pub body: String,
    /// Why the bastion refused it ("upload is not granted"), if it did.
    pub refused: Option<String>,
}

/// How much of a request's path the log keeps.
pub const PATH_CAP: usize = 2048;
/// How much of a request's body the log keeps.
pub const BODY_CAP: usize = 4096;

/// Where the proxy hands a request's log line, once its response has
/// ended.
pub type LogSink = Box<dyn FnOnce(RequestLog) + Send>;

/// Why a fetch failed.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    /// Could not connect, TLS failed, or the pin did not match; the text
    /// says which, for the person.
    #[error("cannot reach the site: {0}")]
    Unreachable(String),
    #[error("the site's answer is over {0} bytes")]
    TooLarge(usize),
    #[error("the site broke off: {0}")]
    Broken(String),
}

/// What the server-side login needs from the proxy's client: one request
/// to the site, with the visit's cookie jar (the cookies the site set
/// are kept, never shown to the browser).
pub trait Fetch: Send + Sync {
    /// Sends `req` (its URI is the path and query on the site) and
    /// returns the answer with its whole body, at most `limit` bytes.
    /// Redirects are not followed.
    fn fetch(
        &self,
        req: axum::http::Request<Bytes>,
        limit: usize,
    ) -> BoxFuture<'_, Result<axum::http::Response<Bytes>, FetchError>>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_site_is_read_from_its_url() {
        let s = Site::parse("https://Panel.internal:8443/admin/").unwrap();
        assert_eq!(
            (s.https, s.host.as_str(), s.port, s.start.as_str()),
            (true, "panel.internal", 8443, "/admin/")
        );
        assert_eq!(s.origin(), "https://panel.internal:8443");
        let s = Site::parse("http://10.0.0.5").unwrap();
        assert_eq!((s.port, s.start.as_str()), (80, "/"));
        assert_eq!(s.authority(), "10.0.0.5");
        let s = Site::parse("http://[::1]:8080/x").unwrap();
        assert_eq!((s.host.as_str(), s.port), ("::1", 8080));
        assert_eq!(s.origin(), "http://[::1]:8080");
        for bad in [
            "ftp://x",
            "https://user:pw@x/",
            "https://x/?q=1",
            "https://x:99999/",
            "https://:80/",
            "https://[::1/",
        ] {
            assert!(Site::parse(bad).is_err(), "{bad}");
        }
    }
}
