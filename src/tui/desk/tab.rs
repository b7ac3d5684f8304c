//! The desk's tabs, in the audit and the console view: what each lists, its
//! columns, the data the caller hands in for it ([`Data`]), and how a row of
//! the store or the live registry becomes a table row (one function per
//! list). What the keys of a tab do is in `audit.rs` and `console.rs`.

use jiff::Timestamp;

use super::super::table::{Column, Row, Table, col};
use super::super::theme::Role;
use crate::live::LiveInfo;
use crate::model::{Account, Asset, CommandFilter, Group, LoginAcl, Permission, User};
use crate::ops::NodeView;
use crate::policy::Reach;
use crate::search::{Found, ScreenHit};
use crate::store::audit_log::{CommandRow, LoginRow, OperationRow, TransferRow};
use crate::store::sessions::SessionRow;
use crate::store::stats::Dashboard;

/// A list the desk shows, in the order of its tab bar.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Tab {
    // Audit view.
    Dashboard,
    Live,
    Sessions,
    Commands,
    Transfers,
    Logins,
    Operations,
    /// Where a text appeared on screen.
    Seen,
    // Console view.
    Users,
    Groups,
    Nodes,
    Assets,
    Accounts,
    Permissions,
    Filters,
    Acls,
    /// Who can reach an asset, or what a user can reach.
    Reach,
}

impl Tab {
    pub const AUDIT: &'static [Tab] = &[
        Tab::Dashboard,
        Tab::Live,
        Tab::Sessions,
        Tab::Commands,
        Tab::Transfers,
        Tab::Logins,
        Tab::Operations,
        Tab::Seen,
    ];
    pub const CONSOLE: &'static [Tab] = &[
        Tab::Users,
        Tab::Groups,
        Tab::Nodes,
        Tab::Assets,
        Tab::Accounts,
        Tab::Permissions,
        Tab::Filters,
        Tab::Acls,
        Tab::Reach,
    ];

    /// The lists of what happened, loaded narrowed by [`super::History`].
    pub const HISTORY: &'static [Tab] = &[
        Tab::Sessions,
        Tab::Commands,
        Tab::Transfers,
        Tab::Logins,
        Tab::Operations,
    ];

    pub fn title(self) -> &'static str {
        match self {
            Tab::Dashboard => "Dashboard",
            Tab::Live => "Live",
            Tab::Sessions => "Sessions",
            Tab::Commands => "Commands",
            Tab::Transfers => "Transfers",
            Tab::Logins => "Logins",
            Tab::Operations => "Operations",
            Tab::Seen => "Seen",
            Tab::Users => "Users",
            Tab::Groups => "Groups",
            Tab::Nodes => "Nodes",
            Tab::Assets => "Assets",
            Tab::Accounts => "Accounts",
            Tab::Permissions => "Perms",
            Tab::Filters => "Filters",
            Tab::Acls => "ACLs",
            Tab::Reach => "Reach",
        }
    }

    fn columns(self) -> Vec<Column> {
        match self {
            Tab::Dashboard => vec![],
            Tab::Live => vec![
                col("User", 10),
                col("Asset", 12),
                col("Account", 9),
                col("Proto", 6),
                col("Source", 15),
                col("Node", 8),
                col("Time", 8),
                col("In", 8),
                col("Out", 8),
                col("Watch", 14),
            ],
            Tab::Sessions => vec![
                col("Started", 16),
                col("User", 10),
                col("Asset", 12),
                col("Account", 9),
                col("Kind", 6),
                col("Time", 8),
                col("Status", 11),
                col("Reason", 20),
            ],
            Tab::Commands => vec![
                col("At", 16),
                col("User", 10),
                col("Asset", 12),
                col("Action", 7),
                col("Command", 30),
            ],
            Tab::Transfers => vec![
                col("At", 16),
                col("User", 10),
                col("Asset", 12),
                col("Op", 8),
                col("Size", 9),
                col("Result", 7),
                col("Path", 30),
            ],
            Tab::Logins => vec![
                col("At", 16),
                col("User", 12),
                col("Source", 15),
                col("Method", 10),
                col("Result", 7),
                col("Reason", 30),
            ],
            Tab::Operations => vec![
                col("At", 16),
                col("Actor", 12),
                col("Via", 4),
                col("Verb", 16),
                col("Object", 18),
                col("Changes", 30),
            ],
            Tab::Seen => vec![
                col("At", 19),
                col("User", 10),
                col("Asset", 12),
                col("Line", 40),
            ],
            Tab::Users => vec![
                col("Name", 14),
                col("Role", 8),
                col("State", 9),
                col("MFA", 4),
                col("Email", 22),
                col("Last login", 16),
            ],
            Tab::Groups => vec![col("Group", 16), col("Size", 5), col("Members", 40)],
            Tab::Nodes => vec![col("Node", 40), col("Assets", 6)],
            Tab::Assets => vec![
                col("Asset", 14),
                col("Address", 16),
                col("Platform", 8),
                col("State", 8),
                col("Protocols", 16),
                col("Nodes", 20),
            ],
            Tab::Accounts => vec![
                col("Asset", 14),
                col("Account", 14),
                col("Secret", 10),
                col("Privileged", 10),
                col("State", 8),
            ],
            Tab::Permissions => vec![
                col("Permission", 14),
                col("Who", 16),
                col("Where", 16),
                col("Accounts", 10),
                col("Actions", 14),
                col("Valid", 20),
            ],
            Tab::Filters => vec![
                col("Filter", 14),
                col("Prio", 4),
                col("Action", 6),
                col("Pattern", 22),
                col("Applies to", 24),
            ],
            Tab::Acls => vec![
                col("ACL", 14),
                col("Prio", 4),
                col("Action", 6),
                col("Who", 16),
                col("Sources", 18),
                col("Windows", 18),
            ],
            Tab::Reach => vec![
                col("User", 12),
                col("Asset", 12),
                col("Accounts", 14),
                col("Protocols", 10),
                col("Actions", 16),
                col("Granted by", 20),
            ],
        }
    }

    /// The tab's list; the dashboard has none.
    pub(crate) fn table(self) -> Option<Table> {
        if self == Tab::Dashboard {
            return None;
        }
        let empty = match self {
            Tab::Live => "no session is running",
            Tab::Reach => "w on a user (what can they reach) or an asset (who can reach it)",
            Tab::Seen => "f: find a text that appeared on a session's screen",
            Tab::Users
            | Tab::Groups
            | Tab::Nodes
            | Tab::Assets
            | Tab::Accounts
            | Tab::Permissions
            | Tab::Filters
            | Tab::Acls => "none yet",
            _ => "nothing recorded yet",
        };
        Some(Table::new(self.title(), self.columns()).with_empty(empty))
    }
}

/// What the caller hands the desk for a tab.
#[derive(Debug, Clone)]
pub enum Data {
    Dashboard(Box<Dashboard>),
    Live(Vec<LiveInfo>),
    Sessions(Vec<SessionRow>),
    Commands(Vec<CommandRow>),
    Transfers(Vec<TransferRow>),
    Logins(Vec<LoginRow>),
    Operations(Vec<OperationRow>),
    Users(Vec<User>),
    Groups(Vec<Group>),
    Nodes(Vec<NodeView>),
    Assets(Vec<Asset>),
    Accounts(Vec<Account>),
    Permissions(Vec<Permission>),
    Filters(Vec<CommandFilter>),
    Acls(Vec<LoginAcl>),
    /// The question asked ("who can reach web1") and its answer.
    Reach(String, Vec<Reach>),
    /// The text searched for and where it appeared.
    Seen(String, Box<Found>),
}

impl Data {
    pub fn tab(&self) -> Tab {
        match self {
            Data::Dashboard(_) => Tab::Dashboard,
            Data::Live(_) => Tab::Live,
            Data::Sessions(_) => Tab::Sessions,
            Data::Commands(_) => Tab::Commands,
            Data::Transfers(_) => Tab::Transfers,
            Data::Logins(_) => Tab::Logins,
            Data::Operations(_) => Tab::Operations,
            Data::Users(_) => Tab::Users,
            Data::Groups(_) => Tab::Groups,
            Data::Nodes(_) => Tab::Nodes,
            Data::Assets(_) => Tab::Assets,
            Data::Accounts(_) => Tab::Accounts,
            Data::Permissions(_) => Tab::Permissions,
            Data::Filters(_) => Tab::Filters,
            Data::Acls(_) => Tab::Acls,
            Data::Reach(..) => Tab::Reach,
            Data::Seen(..) => Tab::Seen,
        }
    }

    /// The rows, with keys the desk's actions use: a session id for the
    /// session lists, `session@seconds` for commands, a user name for users.
    pub(crate) fn rows(&self, now: Timestamp) -> Vec<Row> {
        match self {
            Data::Dashboard(_) => Vec::new(),
            Data::Live(list) => list.iter().map(live_row).collect(),
            Data::Sessions(list) => list.iter().map(|s| session_row(s, now)).collect(),
            Data::Commands(list) => list.iter().map(command_row).collect(),
            Data::Transfers(list) => list.iter().enumerate().map(transfer_row).collect(),
            Data::Logins(list) => list.iter().enumerate().map(login_row).collect(),
            Data::Operations(list) => list.iter().enumerate().map(operation_row).collect(),
            Data::Users(list) => list.iter().map(|u| user_row(u, now)).collect(),
            Data::Groups(list) => list.iter().map(group_row).collect(),
            Data::Nodes(list) => list.iter().map(node_row).collect(),
            Data::Assets(list) => list.iter().map(asset_row).collect(),
            Data::Accounts(list) => list.iter().map(account_row).collect(),
            Data::Permissions(list) => list.iter().map(permission_row).collect(),
            Data::Filters(list) => list.iter().map(filter_row).collect(),
            Data::Acls(list) => list.iter().map(acl_row).collect(),
            Data::Seen(_, found) => found.hits.iter().map(seen_row).collect(),
            Data::Reach(_, list) => list.iter().enumerate().map(reach_row).collect(),
        }
    }
}

fn live_row(s: &LiveInfo) -> Row {
    let i = &s.session;
    let watch = match (s.joined.is_empty(), s.watchers) {
        (false, _) => format!("joined: {}", s.joined.join(",")),
        (true, 0) => String::new(),
        (true, n) => format!("{n} watching"),
    };
    let row = Row::new(&i.id)
        .text(&i.user)
        .text(&i.asset)
        .text(&i.account)
        .text(&i.protocol)
        .text(&i.source)
        .text(&s.node)
        .num(duration(s.duration_secs), s.duration_secs as i64)
        .num(bytes(s.bytes_in), s.bytes_in as i64)
        .num(bytes(s.bytes_out), s.bytes_out as i64)
        .text(if s.killed.is_some() {
            "ending".to_string()
        } else {
            watch
        });
    if s.killed.is_some() {
        row.styled(Role::Danger)
    } else {
        row.styled(Role::Live)
    }
}

fn session_row(s: &SessionRow, now: Timestamp) -> Row {
    let secs = s
        .ended_at
        .unwrap_or(now)
        .duration_since(s.started_at)
        .as_secs()
        .max(0);
    let row = Row::new(&s.id)
        .num(stamp(s.started_at), s.started_at.as_second())
        .text(&s.user)
        .text(&s.asset)
        .text(&s.account)
        .text(&s.kind)
        .num(duration(secs as u64), secs)
        .text(&s.status)
        .text(&s.reason);
    match s.status.as_str() {
        "live" => row.styled(Role::Live),
        "interrupted" | "killed" | "failed" => row.styled(Role::Warning),
        _ => row,
    }
}

fn command_row(c: &CommandRow) -> Row {
    let row = Row::new(moment_key(&c.session, c.at))
        .num(stamp(c.at), c.at.as_second())
        .text(&c.user)
        .text(&c.asset)
        .text(&c.action)
        .text(&c.command);
    match c.action.as_str() {
        "deny" => row.styled(Role::Danger),
        "warn" | "review" => row.styled(Role::Warning),
        _ => row,
    }
}

fn transfer_row((n, t): (usize, &TransferRow)) -> Row {
    let row = Row::new(format!("{}#{n}", t.session))
        .num(stamp(t.at), t.at.as_second())
        .text(&t.user)
        .text(&t.asset)
        .text(&t.operation)
        .num(bytes(t.size.max(0) as u64), t.size)
        .text(&t.result)
        .text(&t.path);
    match t.result.as_str() {
        "denied" | "failed" => row.styled(Role::Danger),
        _ => row,
    }
}

fn login_row((n, l): (usize, &LoginRow)) -> Row {
    let row = Row::new(format!("{}#{n}", l.user))
        .num(stamp(l.at), l.at.as_second())
        .text(&l.user)
        .text(&l.source)
        .text(&l.method)
        .text(&l.result)
        .text(&l.reason);
    if l.result == "ok" {
        row
    } else {
        row.styled(Role::Warning)
    }
}

fn operation_row((n, o): (usize, &OperationRow)) -> Row {
    Row::new(format!("op#{n}"))
        .num(stamp(o.at), o.at.as_second())
        .text(&o.actor)
        .text(&o.via)
        .text(&o.verb)
        .text(&o.object)
        .text(o.changes.join("; "))
}

fn user_row(u: &User, now: Timestamp) -> Row {
    let state = if !u.active {
        "disabled"
    } else if u.locked_until.is_some_and(|t| t > now) {
        "locked"
    } else if u.expires_at.is_some_and(|t| t <= now) {
        "expired"
    } else {
        "active"
    };
    let row = Row::new(&u.name)
        .text(&u.name)
        .text(u.role.to_string())
        .text(state)
        .text(if u.has_totp { "on" } else { "" })
        .text(u.email.clone().unwrap_or_default())
        .num(
            u.last_login_at.map(stamp).unwrap_or_default(),
            u.last_login_at.map_or(0, |t| t.as_second()),
        );
    if state == "active" {
        row
    } else {
        row.styled(Role::Muted)
    }
}

fn group_row(g: &Group) -> Row {
    Row::new(&g.name)
        .text(&g.name)
        .num(g.members.len().to_string(), g.members.len() as i64)
        .text(g.members.join(", "))
}

fn node_row(n: &NodeView) -> Row {
    Row::new(&n.path)
        .text(&n.path)
        .num(n.assets.to_string(), n.assets)
}

fn asset_row(a: &Asset) -> Row {
    let row = Row::new(&a.name)
        .text(&a.name)
        .text(&a.address)
        .text(&a.platform)
        .text(if a.active { "active" } else { "inactive" })
        .text(join(&a.protocols))
        .text(a.nodes.join(", "));
    if a.active {
        row
    } else {
        row.styled(Role::Muted)
    }
}

fn account_row(a: &Account) -> Row {
    Row::new(format!("{}/{}", a.asset, a.username))
        .text(&a.asset)
        .text(&a.username)
        .text(format!("{:?}", a.secret_kind).to_lowercase())
        .text(if a.privileged { "yes" } else { "" })
        .text(if a.active { "active" } else { "inactive" })
}

fn permission_row(p: &Permission) -> Row {
    let valid = match (p.valid_from, p.valid_until) {
        (None, None) => "always".to_string(),
        (from, until) => format!(
            "{} → {}",
            from.map(stamp).unwrap_or_default(),
            until.map(stamp).unwrap_or_default()
        ),
    };
    let row = Row::new(&p.name)
        .text(&p.name)
        .text(who(&p.users, &p.groups))
        .text(where_(&p.assets, &p.nodes))
        .text(p.accounts.to_string())
        .text(p.actions.to_string())
        .text(valid);
    if p.active {
        row
    } else {
        row.styled(Role::Muted)
    }
}

fn filter_row(f: &CommandFilter) -> Row {
    let mut scope = vec![who(&f.users, &f.groups), where_(&f.assets, &f.nodes)];
    scope.retain(|s| !s.is_empty());
    let row = Row::new(&f.name)
        .text(&f.name)
        .num(f.priority.to_string(), i64::from(f.priority))
        .text(f.action.to_string())
        .text(&f.pattern)
        .text(if scope.is_empty() {
            "everyone".to_string()
        } else {
            scope.join("; ")
        });
    match f.action {
        crate::model::FilterAction::Deny => row.styled(Role::Danger),
        crate::model::FilterAction::Review => row.styled(Role::Warning),
        _ => row,
    }
}

fn acl_row(a: &LoginAcl) -> Row {
    Row::new(&a.name)
        .text(&a.name)
        .num(a.priority.to_string(), i64::from(a.priority))
        .text(a.action.as_str())
        .text(who(&a.users, &a.groups))
        .text(a.sources.join(", "))
        .text(a.windows.join(", "))
}

fn seen_row(h: &ScreenHit) -> Row {
    Row::new(moment_key(&h.session, h.at))
        .num(
            h.at.strftime("%Y-%m-%d %H:%M:%S").to_string(),
            h.at.as_millisecond(),
        )
        .text(&h.user)
        .text(&h.asset)
        .text(&h.line)
}

fn reach_row((n, r): (usize, &Reach)) -> Row {
    let by = match &r.group {
        Some(group) => format!("{} (group {group})", r.permission),
        None => r.permission.clone(),
    };
    Row::new(format!("{}#{n}", r.user))
        .text(&r.user)
        .text(&r.asset)
        .text(r.accounts.join(","))
        .text(join(&r.protocols))
        .text(r.actions.to_string())
        .text(by)
}

/// The key of a row that replays a session at a moment: `SESSION@MILLIS`.
fn moment_key(session: &str, at: Timestamp) -> String {
    format!("{session}@{}", at.as_millisecond())
}

/// The session and moment of a [`moment_key`].
pub(super) fn parse_moment_key(key: &str) -> Option<(String, Option<Timestamp>)> {
    let (session, at) = key.rsplit_once('@')?;
    let at = at
        .parse::<i64>()
        .ok()
        .and_then(|ms| Timestamp::from_millisecond(ms).ok());
    Some((session.to_string(), at))
}

fn join<T: std::fmt::Display>(items: &[T]) -> String {
    items
        .iter()
        .map(|i| i.to_string())
        .collect::<Vec<_>>()
        .join(",")
}

/// `alice, bob, @ops` (groups marked with `@`).
fn who(users: &[String], groups: &[String]) -> String {
    users
        .iter()
        .cloned()
        .chain(groups.iter().map(|g| format!("@{g}")))
        .collect::<Vec<_>>()
        .join(", ")
}

/// `web1, /DEFAULT/prod` (nodes are paths).
fn where_(assets: &[String], nodes: &[String]) -> String {
    assets
        .iter()
        .chain(nodes)
        .cloned()
        .collect::<Vec<_>>()
        .join(", ")
}

/// `2026-11-23 14:05` in UTC: the audit lists are compared across sites.
pub(crate) fn stamp(at: Timestamp) -> String {
    at.strftime("%Y-%m-%d %H:%M").to_string()
}

/// `0:42`, `1:02:03`.
pub(crate) fn duration(secs: u64) -> String {
    let (h, m, s) = (secs / 3600, secs / 60 % 60, secs % 60);
    if h > 0 {
        format!("{h}:{m:02}:{s:02}")
    } else {
        format!("{m}:{s:02}")
    }
}

/// `512 B`, `1.5 KiB`, `3.2 MiB`.
pub(crate) fn bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = n as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{value:.1} {}", UNITS.get(unit).unwrap_or(&"B"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn figures_read_as_people_write_them() {
        assert_eq!(duration(42), "0:42");
        assert_eq!(duration(3723), "1:02:03");
        assert_eq!(bytes(512), "512 B");
        assert_eq!(bytes(1536), "1.5 KiB");
        assert_eq!(bytes(5 << 30), "5.0 GiB");
    }
}
