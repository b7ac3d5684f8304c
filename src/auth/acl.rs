//! Login ACLs: whether a user may log in from this address at this time.
//!
//! A [`LoginAcl`] names users and groups, source networks (any when empty)
//! and weekly windows in the configured time zone (always when empty), and
//! allows or denies. [`CompiledAcls`] parses them once (CIDRs, windows) and
//! evaluates a login: only active ACLs whose users or groups include the
//! person are considered, by ascending priority (ties by name, so the order
//! never depends on storage order); the first whose sources and windows both
//! match decides; a login no ACL matches is allowed. An ACL without users
//! and groups applies to nobody.
//!
//! Owns the textual forms of windows (`Mon-Fri 08:00-18:00`) and sources.
//! Pure: no I/O, the time and zone are passed in. Never sees a secret.

use std::fmt;
use std::net::IpAddr;

use ipnet::{IpNet, Ipv4Net};
use jiff::Timestamp;
use jiff::civil::DateTime;
use jiff::tz::TimeZone;

use crate::model::{AclAction, LoginAcl, ParseError};

const MINUTES_PER_DAY: u16 = 24 * 60;

const DAY_NAMES: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];
const DAY_FULL_NAMES: [&str; 7] = [
    "monday",
    "tuesday",
    "wednesday",
    "thursday",
    "friday",
    "saturday",
    "sunday",
];

const WINDOW_EXPECTED: &str = "DAYS HH:MM-HH:MM, such as 'Mon-Fri 08:00-18:00', \
     'Sat,Sun 10:00-16:00' or '* 22:00-06:00' (days: Mon..Sun as ranges or lists, \
     or * / Daily; 24:00 allowed as the end; an end before the start runs overnight)";

const SOURCE_EXPECTED: &str =
    "an IPv4 or IPv6 address or CIDR block, such as 10.0.0.0/8, 192.0.2.7 or 2001:db8::/32";

/// A weekly time window, in local time of the configured zone.
///
/// An overnight window (`Fri 22:00-06:00`) belongs to the day it starts on:
/// it covers Friday 22:00 to Saturday 06:00.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WeeklyWindow {
    /// Monday first.
    days: [bool; 7],
    /// Minutes after midnight, 0..1440.
    start: u16,
    /// Minutes after midnight, 0..=1440; below `start` means overnight.
    end: u16,
}

impl WeeklyWindow {
    /// Parses `DAYS HH:MM-HH:MM`. Either half may be left out: `Sat,Sun`
    /// means the whole day, `08:00-18:00` means every day.
    pub fn parse(text: &str) -> Result<WeeklyWindow, ParseError> {
        let fail = |reason: &str| {
            ParseError::new(
                "login window",
                text,
                format!("{reason}; expected {WINDOW_EXPECTED}"),
            )
        };
        let tokens: Vec<&str> = text.split_whitespace().collect();
        let (days_text, times_text) = match tokens.as_slice() {
            [days, times] => (Some(*days), Some(*times)),
            [one] if one.contains(':') => (None, Some(*one)),
            [one] => (Some(*one), None),
            [] => return Err(fail("it is empty")),
            _ => return Err(fail("too many parts")),
        };
        let days = match days_text {
            Some(d) => parse_days(d).map_err(|reason| fail(&reason))?,
            None => [true; 7],
        };
        let (start, end) = match times_text {
            Some(t) => parse_times(t).map_err(|reason| fail(&reason))?,
            None => (0, MINUTES_PER_DAY),
        };
        Ok(WeeklyWindow { days, start, end })
    }

    /// Whether a local date and time falls inside the window.
    pub fn contains(&self, local: DateTime) -> bool {
        // 0..=6 for Monday..Sunday, so the index is in bounds; `get` anyway.
        let day = usize::try_from(local.weekday().to_monday_zero_offset()).unwrap_or(0);
        let previous = (day + 6) % 7;
        let hour = u16::try_from(local.hour()).unwrap_or(0);
        let minute = u16::try_from(local.minute()).unwrap_or(0);
        let now = hour * 60 + minute;
        let on = |d: usize| self.days.get(d).copied().unwrap_or(false);
        if self.start < self.end {
            on(day) && self.start <= now && now < self.end
        } else {
            // Overnight: the evening part today, or the morning part of a
            // window that started yesterday.
            (on(day) && now >= self.start) || (on(previous) && now < self.end)
        }
    }
}

impl fmt::Display for WeeklyWindow {
    /// The normalised form: `Mon-Fri 08:00-18:00`, `* 00:00-24:00`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.days.iter().all(|d| *d) {
            f.write_str("*")?;
        } else {
            // Runs of consecutive days, as (first, last) names.
            let mut runs: Vec<(&str, &str, usize)> = Vec::new();
            let mut open: Option<(&str, &str, usize)> = None;
            for (on, name) in self.days.iter().zip(DAY_NAMES) {
                open = match (open, on) {
                    (Some((first, _, len)), true) => Some((first, name, len + 1)),
                    (None, true) => Some((name, name, 1)),
                    (Some(run), false) => {
                        runs.push(run);
                        None
                    }
                    (None, false) => None,
                };
            }
            runs.extend(open);
            let parts: Vec<String> = runs
                .into_iter()
                .map(|(first, last, len)| match len {
                    1 => first.to_string(),
                    2 => format!("{first},{last}"),
                    _ => format!("{first}-{last}"),
                })
                .collect();
            f.write_str(&parts.join(","))?;
        }
        write!(
            f,
            " {:02}:{:02}-{:02}:{:02}",
            self.start / 60,
            self.start % 60,
            self.end / 60,
            self.end % 60
        )
    }
}

fn parse_day(name: &str) -> Option<usize> {
    let lower = name.to_ascii_lowercase();
    DAY_NAMES
        .iter()
        .position(|d| d.eq_ignore_ascii_case(&lower))
        .or_else(|| DAY_FULL_NAMES.iter().position(|d| *d == lower))
}

fn parse_days(text: &str) -> Result<[bool; 7], String> {
    if text == "*" || text.eq_ignore_ascii_case("daily") {
        return Ok([true; 7]);
    }
    let mut days = [false; 7];
    for item in text.split(',') {
        let item = item.trim();
        if item.is_empty() {
            return Err("empty item in the day list".to_string());
        }
        let (from, to) = match item.split_once('-') {
            Some((a, b)) => (a, b),
            None => (item, item),
        };
        let unknown = |d: &str| format!("unknown day {d:?}");
        let from = parse_day(from).ok_or_else(|| unknown(from))?;
        let to = parse_day(to).ok_or_else(|| unknown(to))?;
        // Ranges may wrap the week end: Fri-Mon is Fri, Sat, Sun, Mon.
        let mut d = from;
        loop {
            // `d` is a position in the 7-day table, kept below 7 by `% 7`.
            if let Some(slot) = days.get_mut(d) {
                *slot = true;
            }
            if d == to {
                break;
            }
            d = (d + 1) % 7;
        }
    }
    Ok(days)
}

/// `HH:MM-HH:MM` into minutes after midnight.
fn parse_times(text: &str) -> Result<(u16, u16), String> {
    let Some((start, end)) = text.split_once('-') else {
        return Err("the times need a start and an end, HH:MM-HH:MM".to_string());
    };
    let start = parse_clock(start)?;
    let end = parse_clock(end)?;
    if start == MINUTES_PER_DAY {
        return Err("24:00 can only end a window".to_string());
    }
    if start == end {
        return Err("start and end are equal (for the whole day use 00:00-24:00)".to_string());
    }
    Ok((start, end))
}

fn parse_clock(text: &str) -> Result<u16, String> {
    let bad = || format!("{text:?} is not a time HH:MM");
    let (h, m) = text.split_once(':').ok_or_else(bad)?;
    if h.is_empty() || h.len() > 2 || m.len() != 2 {
        return Err(bad());
    }
    if !h.bytes().chain(m.bytes()).all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    let hour: u16 = h.parse().map_err(|_| bad())?;
    let minute: u16 = m.parse().map_err(|_| bad())?;
    if minute > 59 || hour > 24 || (hour == 24 && minute != 0) {
        return Err(format!("{text:?} is not a time of day (00:00 to 24:00)"));
    }
    Ok(hour * 60 + minute)
}

/// Parses ACL sources: CIDR blocks or bare addresses (a host: /32 or /128).
/// Host bits below the prefix are cleared (`10.1.2.3/8` is `10.0.0.0/8`);
/// IPv4-mapped IPv6 blocks (`::ffff:10.0.0.0/104`) become IPv4 blocks, so
/// they match the way addresses are compared.
pub fn parse_sources(sources: &[String]) -> Result<Vec<IpNet>, ParseError> {
    sources
        .iter()
        .map(|s| {
            let text = s.trim();
            let net = match text.parse::<IpNet>() {
                Ok(net) => net.trunc(),
                Err(_) => match text.parse::<IpAddr>() {
                    Ok(addr) => IpNet::from(addr),
                    Err(_) => return Err(ParseError::new("login ACL source", s, SOURCE_EXPECTED)),
                },
            };
            Ok(unmap_net(net))
        })
        .collect()
}

fn unmap_net(net: IpNet) -> IpNet {
    if let IpNet::V6(v6) = net
        && let Some(v4) = v6.addr().to_ipv4_mapped()
        && v6.prefix_len() >= 96
        && let Ok(v4net) = Ipv4Net::new(v4, v6.prefix_len() - 96)
    {
        return IpNet::V4(v4net);
    }
    net
}

/// A client address as compared with ACL sources: an IPv4 client reaching a
/// dual-stack listener appears as `::ffff:a.b.c.d`, and must match IPv4
/// blocks like any other IPv4 client.
fn unmap_addr(addr: IpAddr) -> IpAddr {
    match addr {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(addr),
        IpAddr::V4(_) => addr,
    }
}

/// The outcome of ACL evaluation for one login.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AclDecision {
    Allow,
    /// Refused by the named ACL (for the login log; the person is told only
    /// that login restrictions refused them).
    Deny {
        acl: String,
    },
}

#[derive(Debug, Clone)]
struct CompiledAcl {
    name: String,
    action: AclAction,
    priority: i32,
    users: Vec<String>,
    groups: Vec<String>,
    sources: Vec<IpNet>,
    windows: Vec<WeeklyWindow>,
}

impl CompiledAcl {
    fn applies_to(&self, user_name: &str, user_groups: &[String]) -> bool {
        self.users.iter().any(|u| u == user_name)
            || self.groups.iter().any(|g| user_groups.contains(g))
    }

    fn matches(&self, source: IpAddr, local: DateTime) -> bool {
        (self.sources.is_empty() || self.sources.iter().any(|net| net.contains(&source)))
            && (self.windows.is_empty() || self.windows.iter().any(|w| w.contains(local)))
    }
}

/// The active login ACLs, parsed and in evaluation order.
#[derive(Debug, Clone, Default)]
pub struct CompiledAcls {
    acls: Vec<CompiledAcl>,
}

impl CompiledAcls {
    /// Parses the sources and windows of every active ACL. Inactive ones are
    /// skipped (they may be edited later; they decide nothing). An error
    /// names the ACL in its `expected` text.
    pub fn compile(acls: &[LoginAcl]) -> Result<CompiledAcls, ParseError> {
        let name_it = |acl: &LoginAcl, mut e: ParseError| {
            e.expected = format!("{} (in login ACL {:?})", e.expected, acl.name);
            e
        };
        let mut compiled = Vec::new();
        for acl in acls.iter().filter(|a| a.active) {
            let sources = parse_sources(&acl.sources).map_err(|e| name_it(acl, e))?;
            let windows = acl
                .windows
                .iter()
                .map(|w| WeeklyWindow::parse(w))
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| name_it(acl, e))?;
            compiled.push(CompiledAcl {
                name: acl.name.clone(),
                action: acl.action,
                priority: acl.priority,
                users: acl.users.clone(),
                groups: acl.groups.clone(),
                sources,
                windows,
            });
        }
        compiled.sort_by(|a, b| {
            a.priority
                .cmp(&b.priority)
                .then_with(|| a.name.cmp(&b.name))
        });
        Ok(CompiledAcls { acls: compiled })
    }

    /// Number of active ACLs.
    pub fn len(&self) -> usize {
        self.acls.len()
    }

    pub fn is_empty(&self) -> bool {
        self.acls.is_empty()
    }

    /// Decides a login by `user_name` (member of the groups named in
    /// `user_groups`) from `source` at `now`, with windows read in `tz`.
    pub fn evaluate(
        &self,
        user_name: &str,
        user_groups: &[String],
        source: IpAddr,
        now: Timestamp,
        tz: &TimeZone,
    ) -> AclDecision {
        let source = unmap_addr(source);
        let local = tz.to_datetime(now);
        self.acls
            .iter()
            .filter(|acl| acl.applies_to(user_name, user_groups))
            .find(|acl| acl.matches(source, local))
            .map_or(AclDecision::Allow, |acl| match acl.action {
                AclAction::Allow => AclDecision::Allow,
                AclAction::Deny => AclDecision::Deny {
                    acl: acl.name.clone(),
                },
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn acl(
        name: &str,
        action: AclAction,
        priority: i32,
        users: &[&str],
        groups: &[&str],
        sources: &[&str],
        windows: &[&str],
    ) -> LoginAcl {
        let strings = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        LoginAcl {
            id: crate::model::new_id(),
            name: name.to_string(),
            action,
            priority,
            users: strings(users),
            groups: strings(groups),
            sources: strings(sources),
            windows: strings(windows),
            active: true,
        }
    }

    /// Europe/Paris from the system database, or the same rules as a POSIX
    /// TZ string where no tzdata is installed (a bare CI image).
    fn paris() -> TimeZone {
        TimeZone::get("Europe/Paris")
            .or_else(|_| TimeZone::posix("CET-1CEST,M3.5.0,M10.5.0/3"))
            .unwrap()
    }

    fn local(text: &str) -> DateTime {
        text.parse().unwrap()
    }

    #[test]
    fn windows_parse_and_normalise() {
        for (text, normalised) in [
            ("Mon-Fri 08:00-18:00", "Mon-Fri 08:00-18:00"),
            ("mon-fri 8:00-18:00", "Mon-Fri 08:00-18:00"),
            ("Sat,Sun 10:00-14:00", "Sat,Sun 10:00-14:00"),
            ("Mon,Wed-Fri 09:30-17:45", "Mon,Wed-Fri 09:30-17:45"),
            ("* 00:00-24:00", "* 00:00-24:00"),
            ("Daily 22:00-06:00", "* 22:00-06:00"),
            ("Fri-Mon 12:00-13:00", "Mon,Fri-Sun 12:00-13:00"),
            ("Saturday", "Sat 00:00-24:00"),
            ("07:00-19:00", "* 07:00-19:00"),
        ] {
            let window = WeeklyWindow::parse(text).unwrap();
            assert_eq!(window.to_string(), normalised, "{text}");
            assert_eq!(WeeklyWindow::parse(normalised).unwrap(), window);
        }
    }

    #[test]
    fn bad_windows_quote_the_input_and_the_form() {
        for (text, reason) in [
            ("", "empty"),
            ("Mon-Fri 08:00-18:00 extra", "too many parts"),
            ("Mun-Fri 08:00-18:00", "unknown day"),
            ("Mon,,Tue 08:00-18:00", "empty item"),
            ("Mon 08:00", "start and an end"),
            ("Mon 8-18", "not a time"),
            ("Mon 25:00-26:00", "not a time of day"),
            ("Mon 08:60-09:00", "not a time of day"),
            ("Mon 24:00-06:00", "only end"),
            ("Mon 24:30-01:00", "not a time of day"),
            ("Mon 08:00-08:00", "equal"),
        ] {
            let err = WeeklyWindow::parse(text).unwrap_err();
            let shown = err.to_string();
            assert!(shown.contains(&format!("{text:?}")), "{shown}");
            assert!(shown.contains(reason), "{text}: {shown}");
            assert!(shown.contains("Mon-Fri 08:00-18:00"), "{shown}");
        }
    }

    #[test]
    fn window_membership() {
        // 2026-03-02 is a Monday.
        let office = WeeklyWindow::parse("Mon-Fri 08:00-18:00").unwrap();
        let night = WeeklyWindow::parse("Fri 22:00-06:00").unwrap();
        let whole = WeeklyWindow::parse("Sun 00:00-24:00").unwrap();
        for (window, at, inside) in [
            (&office, "2026-03-02T08:00", true),
            (&office, "2026-03-02T07:59", false),
            (&office, "2026-03-02T17:59", true),
            (&office, "2026-03-02T18:00", false),
            (&office, "2026-03-07T10:00", false), // Saturday
            (&night, "2026-03-06T22:00", true),   // Friday evening
            (&night, "2026-03-06T21:59", false),
            (&night, "2026-03-07T05:59", true), // Saturday morning: Friday's
            (&night, "2026-03-07T06:00", false),
            (&night, "2026-03-06T05:00", false), // Friday morning: Thursday's
            (&night, "2026-03-07T23:00", false), // Saturday evening
            (&whole, "2026-03-08T00:00", true),
            (&whole, "2026-03-08T23:59", true),
            (&whole, "2026-03-09T00:00", false),
        ] {
            assert_eq!(window.contains(local(at)), inside, "{window} at {at}");
        }
    }

    #[test]
    fn sources_parse() {
        let parsed = parse_sources(&[
            "10.0.0.0/8".into(),
            " 192.0.2.7 ".into(),
            "2001:db8::/32".into(),
            "2001:db8::1".into(),
            "10.1.2.3/16".into(),
            "::ffff:198.51.100.0/120".into(),
        ])
        .unwrap();
        let shown: Vec<String> = parsed.iter().map(ToString::to_string).collect();
        assert_eq!(
            shown,
            [
                "10.0.0.0/8",
                "192.0.2.7/32",
                "2001:db8::/32",
                "2001:db8::1/128",
                "10.1.0.0/16",
                "198.51.100.0/24"
            ]
        );
        for bad in ["10.0.0.0/33", "office", "10.0.0", "fe80::1%eth0", ""] {
            let err = parse_sources(&[bad.to_string()]).unwrap_err();
            assert!(err.to_string().contains("CIDR"), "{err}");
        }
    }

    #[test]
    fn evaluation_table() {
        let acls = CompiledAcls::compile(&[
            // Admins only from the admin network, any time.
            acl(
                "admins-from-lan",
                AclAction::Allow,
                10,
                &[],
                &["admins"],
                &["10.0.0.0/8", "2001:db8::/32"],
                &[],
            ),
            acl(
                "admins-elsewhere",
                AclAction::Deny,
                20,
                &[],
                &["admins"],
                &[],
                &[],
            ),
            // Contractors: office hours only.
            acl(
                "contractor-hours",
                AclAction::Allow,
                10,
                &["carol"],
                &[],
                &[],
                &["Mon-Fri 08:00-18:00"],
            ),
            acl(
                "contractor-else",
                AclAction::Deny,
                20,
                &["carol"],
                &[],
                &[],
                &[],
            ),
            // Night maintenance block for dave, evaluated before his allow.
            acl(
                "dave-night",
                AclAction::Deny,
                5,
                &["dave"],
                &[],
                &[],
                &["* 22:00-06:00"],
            ),
            acl("erin-blocked", AclAction::Deny, 0, &["erin"], &[], &[], &[]),
            // Inactive: decides nothing, even at the top priority.
            LoginAcl {
                active: false,
                ..acl("frank-off", AclAction::Deny, 0, &["frank"], &[], &[], &[])
            },
        ])
        .unwrap();
        assert_eq!(acls.len(), 6);

        let utc = TimeZone::UTC;
        let groups = |g: &[&str]| g.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let deny = |name: &str| AclDecision::Deny {
            acl: name.to_string(),
        };
        // Monday 2026-03-02, 10:00 UTC.
        let monday_10 = "2026-03-02T10:00:00Z";
        for (user, user_groups, source, at, expected) in [
            (
                "alice",
                groups(&["admins"]),
                "10.1.2.3",
                monday_10,
                AclDecision::Allow,
            ),
            (
                "alice",
                groups(&["admins"]),
                "192.0.2.1",
                monday_10,
                deny("admins-elsewhere"),
            ),
            (
                "alice",
                groups(&["admins"]),
                "2001:db8::5",
                monday_10,
                AclDecision::Allow,
            ),
            (
                "alice",
                groups(&["admins"]),
                "2001:db9::5",
                monday_10,
                deny("admins-elsewhere"),
            ),
            // An IPv4 client on a dual-stack listener.
            (
                "alice",
                groups(&["admins"]),
                "::ffff:10.9.9.9",
                monday_10,
                AclDecision::Allow,
            ),
            (
                "alice",
                groups(&["admins"]),
                "::ffff:192.0.2.1",
                monday_10,
                deny("admins-elsewhere"),
            ),
            // Not in any ACL: allowed.
            (
                "bob",
                groups(&["devs"]),
                "192.0.2.1",
                monday_10,
                AclDecision::Allow,
            ),
            (
                "carol",
                groups(&[]),
                "192.0.2.1",
                monday_10,
                AclDecision::Allow,
            ),
            (
                "carol",
                groups(&[]),
                "192.0.2.1",
                "2026-03-02T19:00:00Z",
                deny("contractor-else"),
            ),
            (
                "carol",
                groups(&[]),
                "192.0.2.1",
                "2026-03-07T10:00:00Z",
                deny("contractor-else"),
            ),
            (
                "dave",
                groups(&[]),
                "192.0.2.1",
                "2026-03-02T23:30:00Z",
                deny("dave-night"),
            ),
            (
                "dave",
                groups(&[]),
                "192.0.2.1",
                "2026-03-03T05:30:00Z",
                deny("dave-night"),
            ),
            (
                "dave",
                groups(&[]),
                "192.0.2.1",
                monday_10,
                AclDecision::Allow,
            ),
            (
                "erin",
                groups(&[]),
                "192.0.2.1",
                monday_10,
                deny("erin-blocked"),
            ),
            (
                "frank",
                groups(&[]),
                "192.0.2.1",
                monday_10,
                AclDecision::Allow,
            ),
        ] {
            let source: IpAddr = source.parse().unwrap();
            let now: Timestamp = at.parse().unwrap();
            assert_eq!(
                acls.evaluate(user, &user_groups, source, now, &utc),
                expected,
                "{user} from {source} at {at}"
            );
        }
    }

    #[test]
    fn ties_are_broken_by_name() {
        let acls = CompiledAcls::compile(&[
            acl("b-allow", AclAction::Allow, 10, &["alice"], &[], &[], &[]),
            acl("a-deny", AclAction::Deny, 10, &["alice"], &[], &[], &[]),
        ])
        .unwrap();
        let decision = acls.evaluate(
            "alice",
            &[],
            "192.0.2.1".parse().unwrap(),
            Timestamp::UNIX_EPOCH,
            &TimeZone::UTC,
        );
        assert_eq!(
            decision,
            AclDecision::Deny {
                acl: "a-deny".into()
            }
        );
    }

    #[test]
    fn windows_are_read_in_the_configured_zone() {
        let acls = CompiledAcls::compile(&[
            acl(
                "office",
                AclAction::Allow,
                10,
                &["alice"],
                &[],
                &[],
                &["Mon-Fri 08:00-18:00"],
            ),
            acl("closed", AclAction::Deny, 20, &["alice"], &[], &[], &[]),
        ])
        .unwrap();
        let from: IpAddr = "192.0.2.1".parse().unwrap();
        let check =
            |at: &str, tz: &TimeZone| acls.evaluate("alice", &[], from, at.parse().unwrap(), tz);
        let closed = AclDecision::Deny {
            acl: "closed".into(),
        };
        // Monday 07:30 UTC is 08:30 in Paris (CET, UTC+1): open there only.
        assert_eq!(check("2026-03-02T07:30:00Z", &paris()), AclDecision::Allow);
        assert_eq!(check("2026-03-02T07:30:00Z", &TimeZone::UTC), closed);
        // Monday 17:30 UTC is 18:30 in Paris: closed there, open in UTC.
        assert_eq!(check("2026-03-02T17:30:00Z", &paris()), closed);
        assert_eq!(
            check("2026-03-02T17:30:00Z", &TimeZone::UTC),
            AclDecision::Allow
        );
        // Summer time (CEST, UTC+2): 06:30 UTC is 08:30 in Paris.
        assert_eq!(check("2026-07-06T06:30:00Z", &paris()), AclDecision::Allow);
        // Friday 23:30 UTC is already Saturday in Paris.
        assert_eq!(check("2026-03-06T16:30:00Z", &paris()), AclDecision::Allow);
        assert_eq!(check("2026-03-06T23:30:00Z", &paris()), closed);
    }

    #[test]
    fn compile_errors_name_the_acl() {
        let err = CompiledAcls::compile(&[acl(
            "vpn-only",
            AclAction::Allow,
            1,
            &["alice"],
            &[],
            &["10.0.0.0/40"],
            &[],
        )])
        .unwrap_err();
        assert!(err.to_string().contains("vpn-only"), "{err}");
        assert!(err.to_string().contains("10.0.0.0/40"), "{err}");
        let err = CompiledAcls::compile(&[acl(
            "hours",
            AclAction::Allow,
            1,
            &["alice"],
            &[],
            &[],
            &["Mon-Fry 08:00-18:00"],
        )])
        .unwrap_err();
        assert!(
            err.to_string().contains("hours") && err.to_string().contains("Fry"),
            "{err}"
        );
    }
}
