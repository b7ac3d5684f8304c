//! The cookies of one visit (a person on a web asset), kept on the
//! bastion: the site's `Set-Cookie` answers land here and never reach the
//! browser, and each request upstream carries the ones whose path matches
//! (RFC 6265 §5.1.4, §5.3, §5.4).
//!
//! The upstream is one fixed host, so a cookie's Domain only decides
//! whether it is kept at all (the site's host or a domain above it), and
//! `Secure` is not needed to decide what to send. The jar is bounded: a
//! site cannot make the bastion keep more than [`MAX_COOKIES`] cookies of
//! at most [`MAX_COOKIE_BYTES`] each.
//!
//! Must never: keep a cookie for another host, or log a cookie's value.

use jiff::Timestamp;

/// How many cookies one visit keeps.
pub const MAX_COOKIES: usize = 200;
/// The longest cookie (name and value) a visit keeps.
pub const MAX_COOKIE_BYTES: usize = 8 * 1024;

/// The cookie jar of one visit.
#[derive(Debug, Clone)]
pub struct Jar {
    /// The site's host, lower case.
    host: String,
    /// In the order they were first set (the tie-break of §5.4).
    cookies: Vec<Cookie>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Cookie {
    name: String,
    value: String,
    path: String,
    /// `None`: kept until the visit ends.
    expires: Option<Timestamp>,
}

impl Jar {
    /// An empty jar for the site on `host`.
    pub fn new(host: &str) -> Jar {
        Jar {
            host: host.to_ascii_lowercase(),
            cookies: Vec::new(),
        }
    }

    /// How many cookies the jar holds (expired ones included until the
    /// next request drops them).
    pub fn len(&self) -> usize {
        self.cookies.len()
    }

    pub fn is_empty(&self) -> bool {
        self.cookies.is_empty()
    }

    /// Takes one `Set-Cookie` value the site sent in answer to a request
    /// for `request_path`. A cookie for another domain, an oversized one,
    /// or one past the jar's bound is dropped with a warning; one that has
    /// expired deletes its namesake.
    pub fn store(&mut self, set_cookie: &str, request_path: &str, now: Timestamp) {
        let Some(cookie) = self.parse(set_cookie, request_path, now) else {
            return;
        };
        let existing = self
            .cookies
            .iter()
            .position(|c| c.name == cookie.name && c.path == cookie.path);
        if cookie.expires.is_some_and(|at| at <= now) {
            if let Some(i) = existing {
                self.cookies.remove(i);
            }
            return;
        }
        match existing {
            Some(i) => {
                if let Some(slot) = self.cookies.get_mut(i) {
                    *slot = cookie;
                }
            }
            None => {
                if self.cookies.len() >= MAX_COOKIES {
                    self.cookies.retain(|c| c.expires.is_none_or(|at| at > now));
                }
                if self.cookies.len() >= MAX_COOKIES {
                    tracing::warn!(
                        host = %self.host,
                        name = %cookie.name,
                        "the site set more than {MAX_COOKIES} cookies in one visit; this one is dropped"
                    );
                    return;
                }
                self.cookies.push(cookie);
            }
        }
    }

    /// The `Cookie` header for a request to `path` (its query, if any, is
    /// ignored), or `None` when no cookie applies. Expired cookies are
    /// dropped on the way.
    pub fn header(&mut self, path: &str, now: Timestamp) -> Option<String> {
        self.cookies.retain(|c| c.expires.is_none_or(|at| at > now));
        let path = path.split(['?', '#']).next().unwrap_or("/");
        let mut matching: Vec<&Cookie> = self
            .cookies
            .iter()
            .filter(|c| path_matches(path, &c.path))
            .collect();
        if matching.is_empty() {
            return None;
        }
        // Longer paths first; a stable sort keeps the order they were set in.
        matching.sort_by_key(|c| std::cmp::Reverse(c.path.len()));
        let pairs: Vec<String> = matching
            .iter()
            .map(|c| format!("{}={}", c.name, c.value))
            .collect();
        Some(pairs.join("; "))
    }

    /// One `Set-Cookie` value as a cookie (§5.2), or `None` when it is to
    /// be ignored.
    fn parse(&self, set_cookie: &str, request_path: &str, now: Timestamp) -> Option<Cookie> {
        let mut parts = set_cookie.split(';');
        let (name, value) = parts.next()?.split_once('=')?;
        let (name, value) = (name.trim(), value.trim());
        if name.is_empty() {
            return None;
        }
        if name.len() + value.len() > MAX_COOKIE_BYTES {
            tracing::warn!(
                host = %self.host,
                %name,
                "the site set a cookie over {MAX_COOKIE_BYTES} bytes; it is dropped"
            );
            return None;
        }
        let mut path = None;
        let mut max_age = None;
        let mut expires = None;
        for attribute in parts {
            let (key, val) = attribute.split_once('=').unwrap_or((attribute, ""));
            let (key, val) = (key.trim(), val.trim());
            if key.eq_ignore_ascii_case("path") {
                path = val.starts_with('/').then(|| val.to_string());
            } else if key.eq_ignore_ascii_case("max-age") {
                max_age = max_age_at(val, now).or(max_age);
            } else if key.eq_ignore_ascii_case("expires") {
                expires = parse_date(val).or(expires);
            } else if key.eq_ignore_ascii_case("domain") && !self.domain_fits(val) {
                tracing::warn!(
                    host = %self.host,
                    %name,
                    domain = %val,
                    "the site set a cookie for another domain; it is dropped"
                );
                return None;
            }
        }
        Some(Cookie {
            name: name.to_string(),
            value: value.to_string(),
            path: path.unwrap_or_else(|| default_path(request_path)),
            expires: max_age.or(expires),
        })
    }

    /// A Domain attribute the site's host domain-matches (§5.1.3): the
    /// host itself, or a domain above it when the host is a name.
    fn domain_fits(&self, domain: &str) -> bool {
        let domain = domain.trim_start_matches('.').to_ascii_lowercase();
        if domain.is_empty() || domain == self.host {
            return true;
        }
        let is_address = self.host.parse::<std::net::IpAddr>().is_ok();
        !is_address
            && self
                .host
                .strip_suffix(&domain)
                .is_some_and(|above| above.ends_with('.'))
    }
}

/// When a `Max-Age` of `val` seconds ends (§5.2.2): zero or less is the
/// earliest time, which deletes the cookie.
fn max_age_at(val: &str, now: Timestamp) -> Option<Timestamp> {
    let digits = val.strip_prefix('-').unwrap_or(val);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let seconds: i64 = val.parse().unwrap_or(if val.starts_with('-') {
        i64::MIN
    } else {
        i64::MAX
    });
    if seconds <= 0 {
        return Some(Timestamp::MIN);
    }
    let span = jiff::SignedDuration::from_secs(seconds);
    Some(now.checked_add(span).unwrap_or(Timestamp::MAX))
}

/// The default path of a cookie set in answer to `request_path` (§5.1.4):
/// its directory.
fn default_path(request_path: &str) -> String {
    let path = request_path.split(['?', '#']).next().unwrap_or("");
    if !path.starts_with('/') {
        return "/".into();
    }
    match path.rfind('/') {
        Some(0) | None => "/".into(),
        Some(i) => path.get(..i).unwrap_or("/").to_string(),
    }
}

/// Whether a request for `path` carries a cookie of `cookie_path` (§5.1.4).
fn path_matches(path: &str, cookie_path: &str) -> bool {
    if path == cookie_path {
        return true;
    }
    match path.strip_prefix(cookie_path) {
        Some(rest) => cookie_path.ends_with('/') || rest.starts_with('/'),
        None => false,
    }
}

/// A cookie date (§5.1.1): the time, day of month, month and year tokens
/// in any order, whatever the delimiters; `None` for a date that is not
/// one.
fn parse_date(text: &str) -> Option<Timestamp> {
    let is_delimiter = |c: char| {
        c == '\t'
            || (' '..='/').contains(&c)
            || (';'..='@').contains(&c)
            || ('['..='`').contains(&c)
            || ('{'..='~').contains(&c)
    };
    let (mut time, mut day, mut month, mut year) = (None, None, None, None);
    for token in text.split(is_delimiter).filter(|t| !t.is_empty()) {
        if time.is_none()
            && let Some(t) = parse_time(token)
        {
            time = Some(t);
        } else if day.is_none()
            && let Some(d) = leading_number(token, 1, 2)
        {
            day = Some(d);
        } else if month.is_none()
            && let Some(m) = month_of(token)
        {
            month = Some(m);
        } else if year.is_none()
            && let Some(y) = leading_number(token, 2, 4)
        {
            year = Some(y);
        }
    }
    let (hour, minute, second) = time?;
    let mut year = year?;
    if (70..=99).contains(&year) {
        year += 1900;
    } else if year <= 69 {
        year += 2000;
    }
    if year < 1601 || hour > 23 || minute > 59 || second > 59 {
        return None;
    }
    let date =
        jiff::civil::Date::new(i16::try_from(year).ok()?, month?, i8::try_from(day?).ok()?).ok()?;
    let at = date.at(
        i8::try_from(hour).ok()?,
        i8::try_from(minute).ok()?,
        i8::try_from(second).ok()?,
        0,
    );
    at.to_zoned(jiff::tz::TimeZone::UTC)
        .ok()
        .map(|z| z.timestamp())
}

/// `hh:mm:ss`, each one or two digits, anything after the seconds ignored.
fn parse_time(token: &str) -> Option<(u32, u32, u32)> {
    let mut fields = token.splitn(3, ':');
    let hour = whole_number(fields.next()?, 2)?;
    let minute = whole_number(fields.next()?, 2)?;
    let second = leading_number(fields.next()?, 1, 2)?;
    Some((hour, minute, second))
}

/// A token of one or two digits and nothing else.
fn whole_number(token: &str, most: usize) -> Option<u32> {
    let ok = !token.is_empty() && token.len() <= most && token.bytes().all(|b| b.is_ascii_digit());
    if ok { token.parse().ok() } else { None }
}

/// The `least..=most` digits a token starts with, when a non-digit or the
/// end follows them.
fn leading_number(token: &str, least: usize, most: usize) -> Option<u32> {
    let digits = token.bytes().take_while(u8::is_ascii_digit).count();
    if digits < least || digits > most {
        return None;
    }
    token.get(..digits)?.parse().ok()
}

fn month_of(token: &str) -> Option<i8> {
    const MONTHS: [&str; 12] = [
        "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
    ];
    let prefix = token.get(..3)?.to_ascii_lowercase();
    let index = MONTHS.iter().position(|m| *m == prefix)?;
    i8::try_from(index + 1).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> Timestamp {
        text.parse().unwrap()
    }

    fn now() -> Timestamp {
        at("2026-06-01T12:00:00Z")
    }

    #[test]
    fn a_cookie_is_sent_back_on_its_path_only() {
        let mut jar = Jar::new("app.internal");
        jar.store("sid=abc; Path=/; HttpOnly; Secure", "/login", now());
        jar.store("pref=dark; Path=/admin", "/admin/x", now());
        jar.store("local=1", "/docs/guide/page", now());
        assert_eq!(jar.header("/", now()).as_deref(), Some("sid=abc"));
        assert_eq!(
            jar.header("/admin/users?q=1", now()).as_deref(),
            Some("pref=dark; sid=abc")
        );
        assert_eq!(
            jar.header("/admin", now()).as_deref(),
            Some("pref=dark; sid=abc")
        );
        assert_eq!(
            jar.header("/administrator", now()).as_deref(),
            Some("sid=abc")
        );
        assert_eq!(
            jar.header("/docs/guide/other", now()).as_deref(),
            Some("local=1; sid=abc")
        );
        assert_eq!(
            jar.header("/docs/guidebook", now()).as_deref(),
            Some("sid=abc")
        );
    }

    #[test]
    fn the_default_path_is_the_request_directory() {
        assert_eq!(default_path("/a/b/c?x=/y"), "/a/b");
        assert_eq!(default_path("/a"), "/");
        assert_eq!(default_path(""), "/");
        assert_eq!(default_path("x/y"), "/");
        assert!(path_matches("/a/b", "/a/"));
        assert!(!path_matches("/ab", "/a/"));
    }

    #[test]
    fn a_cookie_is_replaced_and_deleted_by_name_and_path() {
        let mut jar = Jar::new("app.internal");
        jar.store("sid=1; Path=/", "/", now());
        jar.store("sid=2; Path=/", "/", now());
        assert_eq!(jar.header("/", now()).as_deref(), Some("sid=2"));
        jar.store("sid=; Path=/; Max-Age=0", "/", now());
        assert_eq!(jar.header("/", now()), None);
        jar.store("sid=3; Path=/", "/", now());
        jar.store(
            "sid=; Path=/; Expires=Thu, 01 Jan 1970 00:00:00 GMT",
            "/",
            now(),
        );
        assert_eq!(jar.header("/", now()), None);
        assert!(jar.is_empty());
    }

    #[test]
    fn a_cookie_expires_with_time() {
        let mut jar = Jar::new("app.internal");
        jar.store("short=1; Max-Age=60", "/", now());
        jar.store("dated=1; Expires=Mon, 01 Jun 2026 13:00:00 GMT", "/", now());
        // Max-Age wins over Expires, in either order.
        jar.store(
            "both=1; Max-Age=10; Expires=Wed, 01 Jun 2050 13:00:00 GMT",
            "/",
            now(),
        );
        let later = |s| {
            now()
                .checked_add(jiff::SignedDuration::from_secs(s))
                .unwrap()
        };
        assert_eq!(
            jar.header("/", later(5)).as_deref(),
            Some("short=1; dated=1; both=1")
        );
        assert_eq!(
            jar.header("/", later(30)).as_deref(),
            Some("short=1; dated=1")
        );
        assert_eq!(jar.header("/", later(120)).as_deref(), Some("dated=1"));
        assert_eq!(jar.header("/", later(7200)), None);
    }

    #[test]
    fn cookie_dates_are_read_leniently() {
        let want = at("2015-10-21T07:28:00Z");
        for text in [
            "Wed, 21 Oct 2015 07:28:00 GMT",
            "Wednesday, 21-Oct-15 07:28:00 GMT",
            "Wed Oct 21 07:28:00 2015",
            "21 oct 2015 07:28:00",
        ] {
            assert_eq!(parse_date(text), Some(want), "{text}");
        }
        for bad in [
            "",
            "tomorrow",
            "Wed, 32 Oct 2015 07:28:00 GMT",
            "21 Oct 2015 25:00:00",
        ] {
            assert_eq!(parse_date(bad), None, "{bad}");
        }
        // An unreadable Expires leaves a cookie for the visit.
        let mut jar = Jar::new("h");
        jar.store("a=1; Expires=soon", "/", now());
        assert_eq!(jar.header("/", now()).as_deref(), Some("a=1"));
    }

    #[test]
    fn only_the_sites_domain_is_kept() {
        let mut jar = Jar::new("app.example.com");
        jar.store("a=1; Domain=app.example.com", "/", now());
        jar.store("b=1; Domain=.example.com", "/", now());
        jar.store("c=1; Domain=other.example.com", "/", now());
        jar.store("d=1; Domain=evil.com", "/", now());
        jar.store("e=1; Domain=pp.example.com", "/", now());
        assert_eq!(jar.header("/", now()).as_deref(), Some("a=1; b=1"));
        let mut by_address = Jar::new("10.0.0.5");
        by_address.store("a=1; Domain=10.0.0.5", "/", now());
        by_address.store("b=1; Domain=0.0.5", "/", now());
        assert_eq!(by_address.header("/", now()).as_deref(), Some("a=1"));
    }

    #[test]
    fn malformed_cookies_are_ignored() {
        let mut jar = Jar::new("h");
        for bad in ["", "novalue", "=v", " ; Path=/"] {
            jar.store(bad, "/", now());
        }
        assert!(jar.is_empty());
        // A relative Path is ignored: the default path applies.
        jar.store("a=1; Path=admin", "/x/y", now());
        assert_eq!(jar.header("/x/z", now()).as_deref(), Some("a=1"));
        assert_eq!(jar.header("/admin", now()), None);
    }

    #[test]
    fn the_jar_is_bounded() {
        let mut jar = Jar::new("h");
        let big = "v".repeat(MAX_COOKIE_BYTES);
        jar.store(&format!("big={big}"), "/", now());
        assert!(jar.is_empty());
        for i in 0..MAX_COOKIES + 10 {
            jar.store(&format!("c{i}=1"), "/", now());
        }
        assert_eq!(jar.len(), MAX_COOKIES);
        // A replacement still fits when the jar is full.
        jar.store("c0=2", "/", now());
        assert!(jar.header("/", now()).unwrap().starts_with("c0=2; c1=1"));
        // Expired cookies make room.
        jar.store("c1=1; Max-Age=1", "/", now());
        let later = now()
            .checked_add(jiff::SignedDuration::from_secs(5))
            .unwrap();
        jar.store("fresh=1", "/", later);
        assert!(jar.header("/", later).unwrap().ends_with("fresh=1"));
    }
}
