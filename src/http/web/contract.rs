//! What the parts of the web side agree on: the site a web asset proxies
//! to, the log line of each request, and the one call the server-side
//! login needs from the proxy's client.

use std::time::Duration;

use bytes::Bytes;
use futures_util::future::BoxFuture;

pub use crate::model::Site;

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
