//! Logging a person in to a web asset with the account's vaulted secret
//! ([`WebLogin`]), so the browser never holds it: the headers put on every
//! request (`basic`, `header:`), and the server-side form login (`form:`)
//! that runs once per visit through the proxy's client ([`Fetch`], whose
//! cookie jar keeps the session the site sets).
//!
//! The form login only ever talks to the asset's own site: a redirect's
//! `Location` and a form's `action` give a path and query, and their host,
//! if any, is ignored, so a page cannot steer the secret elsewhere.
//!
//! Must never: put the secret in an error, a log line or a `Debug` output
//! (errors are scrubbed of it, in plain and url-encoded form, in case the
//! client quotes a request), nor follow more than [`MAX_REDIRECTS`]
//! redirects in a row.

use axum::http::{HeaderName, HeaderValue, Method, Request, Response, StatusCode, header};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use bytes::Bytes;
use zeroize::{Zeroize, Zeroizing};

use super::contract::{Fetch, FetchError};
use super::form;
use crate::model::{FormLogin, WebLogin};
use crate::vault::Secret;

/// How much of a page the form login reads.
pub const PAGE_LIMIT: usize = 2 * 1024 * 1024;
/// Redirects followed in a row, to the login page and after the post.
pub const MAX_REDIRECTS: usize = 5;

/// Why a form login failed, in words for the person; never with the
/// secret.
#[derive(Debug, thiserror::Error)]
pub enum LoginError {
    /// The site could not be reached, broke off, or sent too much.
    #[error(transparent)]
    Unreachable(FetchError),
    /// The login page has no login form (the finder's line), did not
    /// load, or redirects without end.
    #[error("no login form: {0}")]
    NoForm(String),
    /// The site answered the login with an error status, or showed the
    /// login form again.
    #[error("the site refused the login: {0}")]
    Refused(String),
    /// The login went through but the page after it lacks the text the
    /// account's spec expects.
    #[error("the page after the login does not say {0:?}")]
    NoSuccessText(String),
}

/// The headers that carry the account's login on every request: HTTP
/// Basic, or the account's header; none for `none` and `form:` (a form
/// login's session is in the proxy's cookie jar). The values are marked
/// sensitive (kept out of HPACK tables and `Debug`).
pub fn headers(
    login: &WebLogin,
    user: &str,
    secret: &Secret<String>,
) -> Result<Vec<(HeaderName, HeaderValue)>, String> {
    match login {
        WebLogin::None | WebLogin::Form(_) => Ok(Vec::new()),
        WebLogin::Basic => {
            if user.contains(':') {
                return Err(format!(
                    "the account name {user:?} has a colon, which HTTP Basic cannot carry"
                ));
            }
            let pair = Zeroizing::new(format!("{user}:{}", secret.expose()));
            let text = Zeroizing::new(format!("Basic {}", STANDARD.encode(pair.as_bytes())));
            let mut value = HeaderValue::from_bytes(text.as_bytes())
                .map_err(|_| "HTTP Basic could not be encoded".to_string())?;
            value.set_sensitive(true);
            Ok(vec![(header::AUTHORIZATION, value)])
        }
        WebLogin::Header { name, template } => {
            let name = HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| format!("{name:?} is not a header name"))?;
            let text = Zeroizing::new(WebLogin::header_value(template, user, secret.expose()));
            let mut value = HeaderValue::from_bytes(text.as_bytes()).map_err(|_| {
                format!(
                    "the {name} header cannot carry the account's name or secret (a line break or control character)"
                )
            })?;
            value.set_sensitive(true);
            Ok(vec![(name, value)])
        }
    }
}

/// Logs in to the site through `fetch` with the login form of `login`:
/// loads the page (following redirects by path), finds the form, fills in
/// `user` and the secret, submits it as the form says and follows the
/// answer's redirects. Good when the last page shows no password form,
/// has a 2xx or 3xx status, and contains `login.success` when given.
pub async fn form_login(
    fetch: &dyn Fetch,
    login: &FormLogin,
    user: &str,
    secret: &Secret<String>,
) -> Result<(), LoginError> {
    submit(fetch, login, user, secret)
        .await
        .map_err(|e| scrub(e, secret))
}

async fn submit(
    fetch: &dyn Fetch,
    login: &FormLogin,
    user: &str,
    secret: &Secret<String>,
) -> Result<(), LoginError> {
    let get = Step::new(Method::GET, login.path.clone());
    let (page_path, page) = follow(fetch, get, Phase::Page).await?;
    if !page.status().is_success() {
        return Err(LoginError::NoForm(format!(
            "{page_path} answered {}",
            page.status()
        )));
    }
    let html = String::from_utf8_lossy(page.body());
    let on_page = FormLogin {
        path: page_path.clone(),
        ..login.clone()
    };
    let found = form::find(&html, &on_page).map_err(LoginError::NoForm)?;
    let mut fields = found.fields;
    fill(&mut fields, found.user_field.as_deref(), user);
    fill(&mut fields, Some(&found.password_field), secret.expose());
    let encoded = Zeroizing::new(
        form_urlencoded::Serializer::new(String::new())
            .extend_pairs(&fields)
            .finish(),
    );
    for (_, value) in &mut fields {
        value.zeroize();
    }
    let target = resolve(&page_path, &found.action);
    // The request's own copy (a `Bytes` or the URI) cannot be wiped; it
    // lives as long as the proxy's client keeps the request.
    let step = if found.method == "POST" {
        let mut step = Step::new(Method::POST, target);
        step.body = Bytes::copy_from_slice(encoded.as_bytes());
        step.form = true;
        step
    } else {
        // A GET form replaces the action's query with its fields.
        let path = target.split('?').next().unwrap_or_default();
        Step::new(Method::GET, format!("{path}?{}", encoded.as_str()))
    };
    let (end_path, end) = follow(fetch, step, Phase::Submit).await?;
    // Paths without their query: a GET form's query holds the secret.
    let end_path = end_path.split('?').next().unwrap_or_default();
    tracing::debug!(page = %login.path, end = %end_path, status = %end.status(), "web form login answered");
    judge(login, &end)
}

/// Whether the last page says the login worked.
fn judge(login: &FormLogin, end: &Response<Bytes>) -> Result<(), LoginError> {
    let status = end.status();
    if status.is_client_error() || status.is_server_error() {
        return Err(LoginError::Refused(format!("it answered {status}")));
    }
    let html = String::from_utf8_lossy(end.body());
    if form::has_password_form(&html) {
        return Err(LoginError::Refused(
            "it showed the login form again (is the account's name or secret wrong?)".into(),
        ));
    }
    match &login.success {
        Some(text) if !html.contains(text.as_str()) => Err(LoginError::NoSuccessText(text.clone())),
        _ => Ok(()),
    }
}

/// Puts `value` in the first field called `name`.
fn fill(fields: &mut [(String, String)], name: Option<&str>, value: &str) {
    let Some(name) = name else { return };
    if let Some((_, v)) = fields.iter_mut().find(|(n, _)| n == name) {
        v.zeroize();
        v.push_str(value);
    }
}

/// One request of the login.
struct Step {
    method: Method,
    /// The path and query on the site.
    path: String,
    body: Bytes,
    /// The body is a url-encoded form.
    form: bool,
}

impl Step {
    fn new(method: Method, path: String) -> Step {
        Step {
            method,
            path,
            body: Bytes::new(),
            form: false,
        }
    }

    fn request(&self) -> Option<Request<Bytes>> {
        let mut builder = Request::builder()
            .method(self.method.clone())
            .uri(self.path.as_str())
            .header(
                header::ACCEPT,
                "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
            );
        if self.form {
            builder = builder.header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
        }
        builder.body(self.body.clone()).ok()
    }
}

/// Which part of the login a redirect loop or a bad location spoils.
#[derive(Clone, Copy)]
enum Phase {
    Page,
    Submit,
}

impl Phase {
    fn error(self, why: String) -> LoginError {
        match self {
            Phase::Page => LoginError::NoForm(why),
            Phase::Submit => LoginError::Refused(why),
        }
    }
}

/// Sends `step` and follows the redirects of its answers, by path only;
/// returns the last path and answer.
async fn follow(
    fetch: &dyn Fetch,
    mut step: Step,
    phase: Phase,
) -> Result<(String, Response<Bytes>), LoginError> {
    for _ in 0..=MAX_REDIRECTS {
        let request = step.request().ok_or_else(|| {
            phase.error("the site sent the login to an address that is not a path".into())
        })?;
        let answer = fetch
            .fetch(request, PAGE_LIMIT)
            .await
            .map_err(LoginError::Unreachable)?;
        let location = answer
            .headers()
            .get(header::LOCATION)
            .and_then(|l| l.to_str().ok());
        let (Some(location), true) = (location, answer.status().is_redirection()) else {
            return Ok((step.path, answer));
        };
        step.path = resolve(&step.path, location);
        match answer.status() {
            StatusCode::TEMPORARY_REDIRECT | StatusCode::PERMANENT_REDIRECT => {}
            // 301, 302 and 303 turn a post into a get, as browsers do.
            _ if step.method != Method::HEAD => {
                step.method = Method::GET;
                step.body = Bytes::new();
                step.form = false;
            }
            _ => {}
        }
    }
    Err(phase.error(format!(
        "the site redirected more than {MAX_REDIRECTS} times in a row"
    )))
}

/// The path and query that `reference` (a form's action, a redirect's
/// location) names, seen from the page at `base`: relative references are
/// resolved, an absolute URL's scheme and host are dropped, the fragment
/// too, and what a request line cannot carry is percent-encoded.
fn resolve(base: &str, reference: &str) -> String {
    // Browsers drop tabs and line breaks anywhere in a URL.
    let cleaned: String = reference
        .trim()
        .chars()
        .filter(|c| !matches!(c, '\t' | '\n' | '\r'))
        .collect();
    let reference = cleaned.split('#').next().unwrap_or_default();
    let reference = match scheme_rest(reference) {
        // http://host/p, //host/p: only what follows the authority.
        Some(rest) if rest.starts_with("//") => match rest
            .get(2..)
            .and_then(|r| r.find(['/', '?']).and_then(|i| r.get(i..)))
        {
            Some(p) if p.starts_with('?') => format!("/{p}"),
            Some(p) => p.to_string(),
            None => "/".to_string(),
        },
        // javascript:, mailto:...: not a page; the form posts to itself.
        Some(_) => String::new(),
        None => reference.to_string(),
    };
    let (base_path, _) = base.split_once('?').unwrap_or((base, ""));
    let joined = if reference.is_empty() {
        base.to_string()
    } else if reference.starts_with('?') {
        format!("{base_path}{reference}")
    } else if reference.starts_with('/') {
        reference
    } else {
        let dir = base_path
            .rfind('/')
            .and_then(|i| base_path.get(..=i))
            .unwrap_or("/");
        format!("{dir}{reference}")
    };
    let (path, query) = match joined.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (joined.as_str(), None),
    };
    let mut out = encode(&remove_dots(path));
    if let Some(query) = query {
        out.push('?');
        out.push_str(&encode(query));
    }
    out
}

/// What follows `scheme:` when `reference` starts with a scheme, or a
/// `//host` reference as it is.
fn scheme_rest(reference: &str) -> Option<&str> {
    if reference.starts_with("//") {
        return Some(reference);
    }
    let (scheme, rest) = reference.split_once(':')?;
    let mut chars = scheme.chars();
    let first_ok = chars.next().is_some_and(|c| c.is_ascii_alphabetic());
    let rest_ok = chars.all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c));
    (first_ok && rest_ok).then_some(rest)
}

/// `/a/b/../c/./d` → `/a/c/d` (RFC 3986 5.2.4, for an absolute path).
fn remove_dots(path: &str) -> String {
    let segments: Vec<&str> = path.split('/').skip(1).collect();
    let last = segments.len().saturating_sub(1);
    let mut out: Vec<&str> = Vec::new();
    for (i, segment) in segments.iter().enumerate() {
        match *segment {
            "." | ".." => {
                if *segment == ".." {
                    out.pop();
                }
                if i == last {
                    out.push("");
                }
            }
            s => out.push(s),
        }
    }
    format!("/{}", out.join("/"))
}

/// Percent-encodes the bytes a request target cannot carry as they are
/// (spaces, quotes, non-ASCII...); `%` is kept, as already encoded.
fn encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for &b in text.as_bytes() {
        let keep = b.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=:@/?%".contains(&b);
        if keep {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// `err` with the secret, plain or url-encoded, replaced by `***`.
fn scrub(err: LoginError, secret: &Secret<String>) -> LoginError {
    let plain = secret.expose();
    if plain.is_empty() {
        return err;
    }
    let encoded: Zeroizing<String> =
        Zeroizing::new(form_urlencoded::byte_serialize(plain.as_bytes()).collect());
    let clean = |text: String| {
        if text.contains(plain.as_str()) || text.contains(encoded.as_str()) {
            text.replace(plain.as_str(), "***")
                .replace(encoded.as_str(), "***")
        } else {
            text
        }
    };
    match err {
        LoginError::Unreachable(FetchError::Unreachable(t)) => {
            LoginError::Unreachable(FetchError::Unreachable(clean(t)))
        }
        LoginError::Unreachable(FetchError::Broken(t)) => {
            LoginError::Unreachable(FetchError::Broken(clean(t)))
        }
        LoginError::Unreachable(e @ FetchError::TooLarge(_)) => LoginError::Unreachable(e),
        LoginError::NoForm(t) => LoginError::NoForm(clean(t)),
        LoginError::Refused(t) => LoginError::Refused(clean(t)),
        LoginError::NoSuccessText(t) => LoginError::NoSuccessText(clean(t)),
    }
}

#[cfg(test)]
mod tests;
