//! The log line of each proxied request: bodies counted as they stream
//! (the request's first [`BODY_CAP`] bytes kept for the line), the line
//! handed to the sink exactly once, when the response body ends or is
//! dropped, and the request body as the line shows it, with passwords,
//! secrets and tokens redacted.
//!
//! Must never: buffer a whole body, or put a password, secret, token,
//! injected header or cookie in a line.

use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, ready};
use std::time::Instant;

use axum::body::Body;
use bytes::Bytes;
use http_body::{Frame, SizeHint};

use crate::http::web::contract::{BODY_CAP, LogSink, PATH_CAP, RequestLog};

/// What the request body showed on its way upstream.
#[derive(Debug, Default)]
pub(super) struct Seen {
    bytes: u64,
    head: Vec<u8>,
}

pub(super) type Shared = Arc<Mutex<Seen>>;

/// The request body on its way upstream, counted.
pub(super) struct Counted {
    pub inner: Body,
    pub seen: Shared,
}

impl http_body::Body for Counted {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        let this = self.get_mut();
        let frame = ready!(Pin::new(&mut this.inner).poll_frame(cx));
        if let Some(data) = frame.as_ref().and_then(|f| f.as_ref().ok()?.data_ref()) {
            let mut seen = this.seen.lock().unwrap_or_else(|e| e.into_inner());
            seen.bytes += data.len() as u64;
            let room = BODY_CAP.saturating_sub(seen.head.len());
            seen.head
                .extend_from_slice(data.get(..room.min(data.len())).unwrap_or_default());
        }
        Poll::Ready(frame)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// A request's line, waiting for its response to end.
pub(super) struct Pending {
    sink: Option<LogSink>,
    line: RequestLog,
    started: Instant,
    seen: Shared,
    content_type: Option<String>,
}

impl Pending {
    pub fn new(
        sink: LogSink,
        method: &str,
        path: &str,
        content_type: Option<&str>,
        seen: Shared,
    ) -> Pending {
        Pending {
            sink: Some(sink),
            line: RequestLog {
                method: method.to_string(),
                path: cap(&redact_query(path), PATH_CAP).to_string(),
                status: 0,
                bytes_in: 0,
                bytes_out: 0,
                duration: Default::default(),
                body: String::new(),
                refused: None,
            },
            started: Instant::now(),
            seen,
            content_type: content_type.map(str::to_string),
        }
    }

    pub fn status(&mut self, status: u16) {
        self.line.status = status;
    }

    pub fn refused(&mut self, reason: &str) {
        self.line.refused = Some(reason.to_string());
    }

    /// Sends the line, with `extra_in` bytes beyond the request body (a
    /// tunnel's) and `bytes_out`; only the first call sends.
    pub fn finish(&mut self, extra_in: u64, bytes_out: u64) {
        let Some(sink) = self.sink.take() else {
            return;
        };
        let (body_bytes, body) = {
            let seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
            (
                seen.bytes,
                summary(self.content_type.as_deref(), seen.bytes, &seen.head),
            )
        };
        let mut line = self.line.clone();
        line.bytes_in = body_bytes + extra_in;
        line.bytes_out = bytes_out;
        line.duration = self.started.elapsed();
        line.body = body;
        sink(line);
    }
}

impl Drop for Pending {
    /// A line nobody finished (a tunnel whose upgrade failed) is still
    /// sent.
    fn drop(&mut self) {
        self.finish(0, 0);
    }
}

/// The response body on its way to the browser, counted; the line goes
/// out when it ends or is dropped.
pub(super) struct Logged {
    inner: Body,
    out: u64,
    pending: Pending,
}

impl Logged {
    pub fn new(inner: Body, pending: Pending) -> Logged {
        Logged {
            inner,
            out: 0,
            pending,
        }
    }
}

impl http_body::Body for Logged {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        let this = self.get_mut();
        let frame = ready!(Pin::new(&mut this.inner).poll_frame(cx));
        match &frame {
            Some(Ok(f)) => {
                if let Some(data) = f.data_ref() {
                    this.out += data.len() as u64;
                }
            }
            Some(Err(_)) | None => this.pending.finish(0, this.out),
        }
        Poll::Ready(frame)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl Drop for Logged {
    fn drop(&mut self) {
        self.pending.finish(0, self.out);
    }
}

/// `text`, cut to at most `most` bytes on a character boundary.
pub(super) fn cap(text: &str, most: usize) -> &str {
    let mut end = most.min(text.len());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text.get(..end).unwrap_or_default()
}

/// A request body as its line shows it (see [`RequestLog::body`]): a
/// form or JSON with its secret fields redacted, `(N bytes)` otherwise,
/// empty for no body. `head` is the body's first bytes, `total` its size.
pub(super) fn summary(content_type: Option<&str>, total: u64, head: &[u8]) -> String {
    if total == 0 {
        return String::new();
    }
    let mime = content_type
        .and_then(|t| t.split(';').next())
        .map(|t| t.trim().to_ascii_lowercase())
        .unwrap_or_default();
    let whole = head.len() as u64 == total;
    let shown = if mime == "application/x-www-form-urlencoded" {
        Some(redact_form(&String::from_utf8_lossy(head)))
    } else if (mime == "application/json" || mime.ends_with("+json")) && whole {
        serde_json::from_slice::<serde_json::Value>(head)
            .ok()
            .map(|mut value| {
                redact_json(&mut value);
                value.to_string()
            })
    } else {
        None
    };
    match shown {
        Some(text) => cap(&text, BODY_CAP).to_string(),
        None => format!("({total} bytes)"),
    }
}

/// Whether a field's name says it holds a secret.
fn is_secret(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    ["password", "passwd", "secret", "token"]
        .iter()
        .any(|word| name.contains(word))
}

/// A path whose query's secret fields (`?token=...`) are redacted as a
/// form body's are.
fn redact_query(path: &str) -> String {
    match path.split_once('?') {
        Some((path, query)) => format!("{path}?{}", redact_form(query)),
        None => path.to_string(),
    }
}

fn redact_form(text: &str) -> String {
    text.split('&')
        .map(|pair| match pair.split_once('=') {
            Some((name, _)) if is_secret(&percent_decode(name)) => format!("{name}=***"),
            _ => pair.to_string(),
        })
        .collect::<Vec<_>>()
        .join("&")
}

fn redact_json(value: &mut serde_json::Value) {
    match value {
        serde_json::Value::Object(fields) => {
            for (name, field) in fields.iter_mut() {
                if is_secret(name) {
                    *field = serde_json::Value::String("***".into());
                } else {
                    redact_json(field);
                }
            }
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(redact_json),
        _ => {}
    }
}

/// A form field's name, `+` and `%XX` decoded (a malformed escape is kept
/// as it is).
fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        let escaped = (b == b'%')
            .then(|| bytes.get(i + 1..i + 3))
            .flatten()
            .and_then(|hex| std::str::from_utf8(hex).ok())
            .and_then(|hex| u8::from_str_radix(hex, 16).ok());
        match (b, escaped) {
            (_, Some(decoded)) => {
                out.push(decoded);
                i += 3;
            }
            (b'+', None) => {
                out.push(b' ');
                i += 1;
            }
            (other, None) => {
                out.push(other);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_querys_secrets_are_redacted_in_the_logged_path() {
        assert_eq!(
            redact_query("/api?user=bob&access_token=abc&Password=x"),
            "/api?user=bob&access_token=***&Password=***"
        );
        assert_eq!(redact_query("/plain"), "/plain");
    }

    #[test]
    fn forms_and_json_are_shown_with_their_secrets_redacted() {
        let form = Some("application/x-www-form-urlencoded; charset=UTF-8");
        let body = b"user=ann&Password=hunter2&csrf_TOKEN=abc&user%5Bpasswd%5D=x&note=a+b";
        assert_eq!(
            summary(form, body.len() as u64, body),
            "user=ann&Password=***&csrf_TOKEN=***&user%5Bpasswd%5D=***&note=a+b"
        );
        let json = br#"{"user":"ann","auth":{"clientSecret":"s","list":[{"token":1}]},"n":2}"#;
        let shown = summary(Some("application/json"), json.len() as u64, json);
        assert!(!shown.contains("\"s\"") && !shown.contains(":1"), "{shown}");
        assert!(shown.contains(r#""clientSecret":"***""#) && shown.contains(r#""user":"ann""#));
        assert_eq!(summary(Some("application/vnd.api+json"), 3, b"[1]"), "[1]");
    }

    #[test]
    fn other_bodies_are_a_size() {
        assert_eq!(summary(None, 0, b""), "");
        assert_eq!(summary(Some("image/png"), 10, b"0123456789"), "(10 bytes)");
        // JSON cut at the cap cannot be read, so only its size shows.
        assert_eq!(
            summary(Some("application/json"), 9000, br#"{"password":"#),
            "(9000 bytes)"
        );
        assert_eq!(summary(Some("application/json"), 5, b"nope!"), "(5 bytes)");
        let long = "a=1&".repeat(2000);
        let shown = summary(
            Some("application/x-www-form-urlencoded"),
            long.len() as u64,
            long.as_bytes(),
        );
        assert!(shown.len() <= BODY_CAP);
    }

    #[test]
    fn a_path_is_capped_on_a_character_boundary() {
        assert_eq!(cap("/é", 2), "/");
        assert_eq!(cap("/abc", 10), "/abc");
        assert_eq!(percent_decode("a%2Bb+c%zz%4"), "a+b c%zz%4");
    }
}
