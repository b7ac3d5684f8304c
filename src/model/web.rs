//! How the bastion logs a person in to a web asset with the account's
//! vaulted secret (`account add ASSET NAME --web SPEC`): the browser never
//! sees the secret. The text form, as the CLI takes it and the store keeps
//! it:
//!
//! - `none`: nothing is injected; the person logs in to the site
//!   themselves (the visit is still proxied, logged and cut off);
//! - `basic`: HTTP Basic with the account's name and secret;
//! - `header:NAME` or `header:NAME=TEMPLATE`: a static header on every
//!   request, its value the secret, or `TEMPLATE` with `{secret}` (and
//!   `{user}`) replaced (`header:Authorization=Bearer {secret}`);
//! - `form:PATH[;form=SELECTOR][;user=FIELD][;password=FIELD][;success=TEXT]`:
//!   the bastion fetches `PATH`, finds the form (the one matching
//!   `SELECTOR`, else the first with a password input), keeps its other
//!   inputs (CSRF tokens), fills in the account's name and secret, posts
//!   it, and counts the login good when the answer no longer shows a
//!   password input (and contains `TEXT`, when given).
//!
//! `;` cannot appear inside a part.
//!
//! Also here: the [`Site`] a web asset's `url` names.

use std::fmt;
use std::str::FromStr;

use serde::Serialize;

/// A web account's login (see the module docs).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum WebLogin {
    #[default]
    None,
    Basic,
    Header {
        name: String,
        /// The value, with `{secret}` and `{user}` in it.
        template: String,
    },
    Form(FormLogin),
}

/// A server-side form login.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FormLogin {
    /// The login page's path on the site (`/login`), absolute.
    pub path: String,
    /// A selector for the form: `form`, `#id`, `.class`, `form#id`,
    /// `form[action=/login]`...; `None`: the first form with a password
    /// input.
    pub form: Option<String>,
    /// The name of the user-name input; `None`: the text or email input
    /// before the password input.
    pub user_field: Option<String>,
    /// The name of the password input; `None`: the first password input.
    pub password_field: Option<String>,
    /// Text the page after a good login contains.
    pub success: Option<String>,
}

impl WebLogin {
    /// The header value for `Header`, with the secret and user put in.
    pub fn header_value(template: &str, user: &str, secret: &str) -> String {
        template.replace("{user}", user).replace("{secret}", secret)
    }
}

impl fmt::Display for WebLogin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WebLogin::None => f.write_str("none"),
            WebLogin::Basic => f.write_str("basic"),
            WebLogin::Header { name, template } if template == "{secret}" => {
                write!(f, "header:{name}")
            }
            WebLogin::Header { name, template } => write!(f, "header:{name}={template}"),
            WebLogin::Form(form) => {
                write!(f, "form:{}", form.path)?;
                for (key, value) in [
                    ("form", &form.form),
                    ("user", &form.user_field),
                    ("password", &form.password_field),
                    ("success", &form.success),
                ] {
                    if let Some(value) = value {
                        write!(f, ";{key}={value}")?;
                    }
                }
                Ok(())
            }
        }
    }
}

const USAGE: &str = "expected none, basic, header:NAME[=TEMPLATE] or form:PATH[;form=SELECTOR][;user=FIELD][;password=FIELD][;success=TEXT]";

impl FromStr for WebLogin {
    type Err = String;

    fn from_str(s: &str) -> Result<WebLogin, String> {
        let s = s.trim();
        match s {
            "" | "none" => return Ok(WebLogin::None),
            "basic" => return Ok(WebLogin::Basic),
            _ => {}
        }
        if let Some(rest) = s.strip_prefix("header:") {
            let (name, template) = rest.split_once('=').unwrap_or((rest, "{secret}"));
            let name = name.trim();
            if name.is_empty() || !name.bytes().all(is_token_byte) {
                return Err(format!("web login {s:?}: {name:?} is not a header name"));
            }
            if !template.contains("{secret}") {
                return Err(format!(
                    "web login {s:?}: the header's value must contain {{secret}}"
                ));
            }
            if template.bytes().any(|b| b.is_ascii_control()) {
                return Err(format!(
                    "web login {s:?}: the header's value has a control character"
                ));
            }
            let lower = name.to_ascii_lowercase();
            if [
                "host",
                "cookie",
                "content-length",
                "transfer-encoding",
                "connection",
            ]
            .contains(&lower.as_str())
            {
                return Err(format!(
                    "web login {s:?}: the bastion sets {name} itself; inject another header"
                ));
            }
            return Ok(WebLogin::Header {
                name: name.to_string(),
                template: template.to_string(),
            });
        }
        if let Some(rest) = s.strip_prefix("form:") {
            let mut parts = rest.split(';');
            let path = parts.next().unwrap_or_default().trim();
            if !path.starts_with('/') || path.starts_with("//") {
                return Err(format!(
                    "web login {s:?}: the login page must be a path on the site, such as /login"
                ));
            }
            let mut form = FormLogin {
                path: path.to_string(),
                ..FormLogin::default()
            };
            for part in parts {
                let Some((key, value)) = part.split_once('=') else {
                    return Err(format!(
                        "web login {s:?}: {part:?} is not KEY=VALUE ({USAGE})"
                    ));
                };
                let value = Some(value.trim().to_string()).filter(|v| !v.is_empty());
                match key.trim() {
                    "form" => form.form = value,
                    "user" => form.user_field = value,
                    "password" => form.password_field = value,
                    "success" => form.success = value,
                    other => {
                        return Err(format!(
                            "web login {s:?}: unknown part {other:?} (expected form, user, password or success)"
                        ));
                    }
                }
            }
            return Ok(WebLogin::Form(form));
        }
        Err(format!("web login {s:?}: {USAGE}"))
    }
}

serialize_as_text!(WebLogin);

/// Where the bastion serves web assets (`http.domain`, and the port
/// browsers use): asset `app1` is at `https://app1.DOMAIN[:PORT]`, an
/// origin of its own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebBase {
    pub domain: String,
    pub port: u16,
}

/// The path under every asset's origin where one-time links are opened.
pub const LINK_PATH: &str = "/.rampart/link/";

/// The path under the bastion's own web origin (`https://DOMAIN`) where
/// RemoteApp files are served: `/.rampart/rdp/TICKET/ALIAS.rdp`.
pub const RDP_FILE_PATH: &str = "/.rampart/rdp/";

/// The path under the bastion's own web origin where a recording's
/// one-time link is opened: `/.rampart/recording/TICKET.SECRET/ID.cast`.
pub const RECORDING_PATH: &str = "/.rampart/recording/";

impl WebBase {
    /// The origin of `asset` on the bastion.
    pub fn origin(&self, asset: &str) -> String {
        let host = format!("{}.{}", asset.to_ascii_lowercase(), self.domain);
        if self.port == 443 {
            format!("https://{host}")
        } else {
            format!("https://{host}:{}", self.port)
        }
    }

    /// The bastion's own web origin, `https://DOMAIN[:PORT]`.
    pub fn own_origin(&self) -> String {
        if self.port == 443 {
            format!("https://{}", self.domain)
        } else {
            format!("https://{}:{}", self.domain, self.port)
        }
    }

    /// Whether a request's `Host` is the bastion's own (`DOMAIN[:PORT]`).
    pub fn is_own_host(&self, host: &str) -> bool {
        let host = host.to_ascii_lowercase();
        let name = match host.rsplit_once(':') {
            Some((name, port)) if port.bytes().all(|b| b.is_ascii_digit()) => name,
            _ => host.as_str(),
        };
        name == self.domain
    }

    /// The link of RemoteApp `alias`'s `.rdp` file for RDP ticket
    /// `ticket`.
    pub fn remote_app_link(&self, ticket: &str, alias: &str) -> String {
        format!("{}{RDP_FILE_PATH}{ticket}/{alias}.rdp", self.own_origin())
    }

    /// The asset a request's `Host` names (`app1.DOMAIN[:PORT]`), as
    /// written there (lowercase); `None` for any other host.
    pub fn asset_of_host(&self, host: &str) -> Option<String> {
        let host = host.to_ascii_lowercase();
        let name = match host.rsplit_once(':') {
            Some((name, port)) if port.bytes().all(|b| b.is_ascii_digit()) => name,
            _ => host.as_str(),
        };
        let label = name.strip_suffix(&self.domain)?.strip_suffix('.')?;
        is_dns_label(label).then(|| label.to_string())
    }
}

/// A name that can be one DNS label: what a web asset's name must be.
pub fn is_dns_label(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 63
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        && !name.starts_with('-')
        && !name.ends_with('-')
}

/// A byte allowed in an HTTP header name (RFC 9110 token).
fn is_token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_form_reads_back_as_written() {
        for text in [
            "none",
            "basic",
            "header:X-Api-Key",
            "header:Authorization=Bearer {secret}",
            "form:/login",
            "form:/account/login;form=form#login;user=email;password=pass;success=Sign out",
        ] {
            let login: WebLogin = text.parse().unwrap();
            assert_eq!(login.to_string(), text);
        }
        assert_eq!("".parse::<WebLogin>().unwrap(), WebLogin::None);
    }

    #[test]
    fn bad_forms_are_refused_with_what_was_wrong() {
        for (text, says) in [
            ("cookie", "expected none, basic"),
            ("header:", "is not a header name"),
            ("header:X Y", "is not a header name"),
            ("header:X-Key=static", "must contain {secret}"),
            ("header:Cookie", "sets Cookie itself"),
            ("header:X=a\r\nb{secret}", "control character"),
            ("form:login", "must be a path"),
            ("form://evil.example/login", "must be a path"),
            ("form:/login;colour=red", "unknown part"),
            ("form:/login;user", "is not KEY=VALUE"),
        ] {
            let err = text.parse::<WebLogin>().unwrap_err();
            assert!(err.contains(says), "{text}: {err}");
        }
    }

    #[test]
    fn each_asset_has_an_origin_of_its_own() {
        let base = WebBase {
            domain: "web.example.com".into(),
            port: 8443,
        };
        assert_eq!(base.origin("App1"), "https://app1.web.example.com:8443");
        assert_eq!(
            base.asset_of_host("APP1.web.example.com:8443").as_deref(),
            Some("app1")
        );
        assert_eq!(base.asset_of_host("a.b.web.example.com"), None);
        assert_eq!(base.asset_of_host("web.example.com"), None);
        assert_eq!(base.asset_of_host("app1.web.example.com.evil"), None);
        assert_eq!(base.asset_of_host("app1xweb.example.com"), None);
        let base = WebBase { port: 443, ..base };
        assert_eq!(base.origin("app1"), "https://app1.web.example.com");
    }

    #[test]
    fn a_template_takes_the_secret_and_user() {
        assert_eq!(
            WebLogin::header_value("Bearer {secret} for {user}", "bob", "s3"),
            "Bearer s3 for bob"
        );
    }

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
