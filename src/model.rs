//! Plain domain types shared by every module: users, assets, accounts,
//! permissions and their parts. No I/O happens here; parsing of the small
//! textual forms the CLI and the store use (`@ALL`, `ssh/22`, `connect,upload`)
//! lives beside each type so that every caller agrees on one spelling.

use std::fmt;
use std::str::FromStr;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

/// Identifiers are text UUIDs, portable between SQLite and PostgreSQL.
pub type Id = String;

/// A fresh random identifier.
pub fn new_id() -> Id {
    uuid::Uuid::new_v4().to_string()
}

/// The one error type for the textual forms below: what was given and what
/// was expected, ready to be shown to a person.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{what} {given:?} is not valid: {expected}")]
pub struct ParseError {
    pub what: &'static str,
    pub given: String,
    pub expected: String,
}

impl ParseError {
    pub fn new(what: &'static str, given: &str, expected: impl Into<String>) -> Self {
        ParseError {
            what,
            given: given.to_string(),
            expected: expected.into(),
        }
    }
}

/// Names of users, groups, assets and accounts appear inside SSH login names
/// (`alice@root@web1`), so they are kept to a safe, unambiguous alphabet.
pub fn check_name(kind: &'static str, name: &str) -> Result<(), ParseError> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if ok {
        Ok(())
    } else {
        Err(ParseError::new(
            kind,
            name,
            "1-64 letters, digits, '.', '_' or '-', starting with a letter, digit or '_'",
        ))
    }
}

/// A plausible email address: one `@`, a dotted domain, no spaces.
pub fn check_email(email: &str) -> Result<(), ParseError> {
    let ok = email.len() <= 254
        && email
            .split_once('@')
            .is_some_and(|(l, d)| !l.is_empty() && d.contains('.') && !d.starts_with('.'))
        && !email.chars().any(|c| c.is_whitespace() || c.is_control());
    if ok {
        Ok(())
    } else {
        Err(ParseError::new(
            "email",
            email,
            "an address like alice@example.com",
        ))
    }
}

/// A host name or an IP address (IPv6 optionally in brackets, with a zone).
pub fn check_address(address: &str) -> Result<(), ParseError> {
    let ok = !address.is_empty()
        && address.len() <= 253
        && !address.starts_with('-')
        && address.chars().all(|c| {
            c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | ':' | '[' | ']' | '%')
        });
    if ok {
        Ok(())
    } else {
        Err(ParseError::new(
            "address",
            address,
            "a host name or IP address",
        ))
    }
}

/// What a person may do on the bastion itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Manages users, assets, permissions; sees the audit.
    Admin,
    /// Reads the audit, monitors sessions; changes nothing.
    Auditor,
    /// Reaches the assets granted to them.
    User,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Auditor => "auditor",
            Role::User => "user",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = ParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "admin" => Ok(Role::Admin),
            "auditor" => Ok(Role::Auditor),
            "user" => Ok(Role::User),
            _ => Err(ParseError::new("role", s, "one of admin, auditor, user")),
        }
    }
}

/// A person known to the bastion, as stored (without secrets).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct User {
    pub id: Id,
    pub name: String,
    pub role: Role,
    pub email: Option<String>,
    pub active: bool,
    pub expires_at: Option<Timestamp>,
    pub must_change_password: bool,
    pub has_password: bool,
    pub has_totp: bool,
    pub locked_until: Option<Timestamp>,
    pub last_login_at: Option<Timestamp>,
    pub last_login_from: Option<String>,
    pub created_at: Timestamp,
}

/// The authenticated person a request acts for. Built by `auth` after a
/// successful login (or by the CLI for local root), consumed by `policy` and
/// `ops`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub user_id: Id,
    pub name: String,
    pub role: Role,
    /// Ids of the groups the user belongs to.
    pub groups: Vec<Id>,
}

/// An OpenSSH public key registered for a user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UserKey {
    pub id: Id,
    pub user: String,
    pub algorithm: String,
    /// `SHA256:...`, as `ssh-keygen -lf` prints it.
    pub fingerprint: String,
    pub comment: String,
    pub created_at: Timestamp,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Group {
    pub id: Id,
    pub name: String,
    pub members: Vec<String>,
}

/// A node of the asset tree, addressed by its absolute path (`/DEFAULT/prod`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Node {
    pub id: Id,
    pub path: String,
    pub parent_id: Option<Id>,
}

/// The name `ssh bastion rampart ...` is routed to: never an asset
/// (DESIGN.md §2).
pub const RESERVED_ASSET: &str = "rampart";

/// The root node every fresh database has.
pub const DEFAULT_NODE: &str = "/DEFAULT";

/// Checks and normalises a node path: absolute, no empty or dot segments,
/// no trailing slash. Returns the normalised form.
pub fn normalize_node_path(path: &str) -> Result<String, ParseError> {
    let expected = "an absolute path such as /DEFAULT/prod/web (segments without '.', '..' or control characters)";
    if !path.starts_with('/') {
        return Err(ParseError::new("node path", path, expected));
    }
    let trimmed = path.trim_end_matches('/');
    if trimmed.is_empty() {
        return Err(ParseError::new("node path", path, expected));
    }
    for segment in trimmed[1..].split('/') {
        if segment.is_empty()
            || segment == "."
            || segment == ".."
            || segment.chars().any(|c| c.is_control())
        {
            return Err(ParseError::new("node path", path, expected));
        }
    }
    Ok(trimmed.to_string())
}

/// The parent of a normalised node path, `None` for a root node.
pub fn parent_node_path(path: &str) -> Option<&str> {
    match path.rfind('/') {
        Some(0) | None => None,
        Some(i) => Some(&path[..i]),
    }
}

/// A protocol an asset speaks, with its port (`ssh/22`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Protocol {
    pub name: String,
    pub port: u16,
}

/// Protocol names rampart knows how to reach, now or in a later release.
pub const KNOWN_PROTOCOLS: &[&str] = &[
    "ssh",
    "sftp",
    "telnet",
    "rdp",
    "vnc",
    "mysql",
    "mariadb",
    "postgresql",
    "redis",
    "mongodb",
    "k8s",
    "http",
    "https",
];

/// The port a protocol listens on when none is given.
pub fn default_port(protocol: &str) -> Option<u16> {
    Some(match protocol {
        "ssh" | "sftp" => 22,
        "telnet" => 23,
        "rdp" => 3389,
        "vnc" => 5900,
        "mysql" | "mariadb" => 3306,
        "postgresql" => 5432,
        "redis" => 6379,
        "mongodb" => 27017,
        "k8s" => 6443,
        "http" => 80,
        "https" => 443,
        _ => return None,
    })
}

impl FromStr for Protocol {
    type Err = ParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let expected = format!(
            "NAME or NAME/PORT with NAME one of {} and PORT 1-65535",
            KNOWN_PROTOCOLS.join(", ")
        );
        let (name, port) = match s.split_once('/') {
            Some((n, p)) => (n, Some(p)),
            None => (s, None),
        };
        let name = name.to_ascii_lowercase();
        if !KNOWN_PROTOCOLS.contains(&name.as_str()) {
            return Err(ParseError::new("protocol", s, expected));
        }
        let port = match port {
            Some(p) => match p.parse::<u16>() {
                Ok(p) if p > 0 => p,
                _ => return Err(ParseError::new("protocol", s, expected)),
            },
            None => default_port(&name).ok_or_else(|| ParseError::new("protocol", s, expected))?,
        };
        Ok(Protocol { name, port })
    }
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.name, self.port)
    }
}

/// A server, database or desktop people reach through the bastion.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Asset {
    pub id: Id,
    pub name: String,
    pub address: String,
    pub platform: String,
    pub protocols: Vec<Protocol>,
    /// Node paths the asset is filed under.
    pub nodes: Vec<String>,
    pub active: bool,
    pub comment: String,
}

/// A target host key pinned for an asset (trust on first use, re-pinned by
/// `asset trust`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HostKey {
    pub algorithm: String,
    pub fingerprint: String,
    pub pinned_at: Timestamp,
}

/// What kind of secret an account holds in the vault.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SecretKind {
    /// No stored secret (for example a key-less account used with @INPUT).
    None,
    Password,
    PrivateKey,
}

impl SecretKind {
    pub fn as_str(self) -> &'static str {
        match self {
            SecretKind::None => "none",
            SecretKind::Password => "password",
            SecretKind::PrivateKey => "private_key",
        }
    }
}

impl FromStr for SecretKind {
    type Err = ParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "none" => Ok(SecretKind::None),
            "password" => Ok(SecretKind::Password),
            "private_key" => Ok(SecretKind::PrivateKey),
            _ => Err(ParseError::new(
                "secret kind",
                s,
                "one of none, password, private_key",
            )),
        }
    }
}

/// A login on an asset whose secret the bastion holds (the secret itself
/// stays in the store, sealed by the vault, and is not part of this type).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Account {
    pub id: Id,
    pub asset_id: Id,
    pub asset: String,
    pub username: String,
    pub secret_kind: SecretKind,
    pub privileged: bool,
    pub active: bool,
}

/// Which accounts of an asset a permission grants.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AccountSpec {
    /// `@ALL`: every account of the asset.
    pub all: bool,
    /// `@INPUT`: the person types a username and password when connecting.
    pub input: bool,
    /// `@USER`: the account whose username equals the person's name.
    pub same_user: bool,
    /// Explicit usernames.
    pub names: Vec<String>,
}

impl AccountSpec {
    pub fn all() -> Self {
        AccountSpec {
            all: true,
            ..Default::default()
        }
    }
}

impl FromStr for AccountSpec {
    type Err = ParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut spec = AccountSpec::default();
        for item in s.split(',').map(str::trim) {
            match item {
                "@ALL" => spec.all = true,
                "@INPUT" => spec.input = true,
                "@USER" => spec.same_user = true,
                "" => {}
                name if name.starts_with('@') => {
                    return Err(ParseError::new(
                        "accounts",
                        s,
                        "a comma list of @ALL, @INPUT, @USER or account usernames",
                    ));
                }
                name => {
                    if !spec.names.iter().any(|n| n == name) {
                        spec.names.push(name.to_string());
                    }
                }
            }
        }
        if !spec.all && !spec.input && !spec.same_user && spec.names.is_empty() {
            return Err(ParseError::new(
                "accounts",
                s,
                "at least one of @ALL, @INPUT, @USER or an account username",
            ));
        }
        Ok(spec)
    }
}

impl fmt::Display for AccountSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts: Vec<&str> = Vec::new();
        if self.all {
            parts.push("@ALL");
        }
        if self.input {
            parts.push("@INPUT");
        }
        if self.same_user {
            parts.push("@USER");
        }
        parts.extend(self.names.iter().map(String::as_str));
        f.write_str(&parts.join(","))
    }
}

/// Which protocols a permission grants: `all` or named ones.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProtocolSpec {
    All,
    Named(Vec<String>),
}

impl ProtocolSpec {
    pub fn allows(&self, protocol: &str) -> bool {
        match self {
            ProtocolSpec::All => true,
            ProtocolSpec::Named(names) => names.iter().any(|n| n == protocol),
        }
    }
}

impl FromStr for ProtocolSpec {
    type Err = ParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.trim() == "all" {
            return Ok(ProtocolSpec::All);
        }
        let mut names = Vec::new();
        for item in s.split(',').map(str::trim).filter(|i| !i.is_empty()) {
            let name = item.to_ascii_lowercase();
            if !KNOWN_PROTOCOLS.contains(&name.as_str()) {
                return Err(ParseError::new(
                    "protocols",
                    s,
                    format!("all, or a comma list of {}", KNOWN_PROTOCOLS.join(", ")),
                ));
            }
            if !names.contains(&name) {
                names.push(name);
            }
        }
        if names.is_empty() {
            return Err(ParseError::new(
                "protocols",
                s,
                "all, or a comma list of protocol names",
            ));
        }
        Ok(ProtocolSpec::Named(names))
    }
}

impl fmt::Display for ProtocolSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProtocolSpec::All => f.write_str("all"),
            ProtocolSpec::Named(names) => f.write_str(&names.join(",")),
        }
    }
}

/// One thing a person may do on an asset.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    /// Interactive shells and exec commands.
    Connect,
    /// SFTP/SCP writes and creates.
    Upload,
    /// SFTP/SCP reads.
    Download,
    /// SFTP remove, rmdir, rename over an existing file.
    Delete,
    /// Clipboard from the target (RDP).
    Copy,
    /// Clipboard to the target (RDP).
    Paste,
    /// Inviting others into a session.
    Share,
    /// Port forwarding to the asset's declared ports; never implied by `all`.
    Tunnel,
}

impl Action {
    pub const ALL: [Action; 8] = [
        Action::Connect,
        Action::Upload,
        Action::Download,
        Action::Delete,
        Action::Copy,
        Action::Paste,
        Action::Share,
        Action::Tunnel,
    ];

    fn bit(self) -> u16 {
        1 << (self as u16)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Action::Connect => "connect",
            Action::Upload => "upload",
            Action::Download => "download",
            Action::Delete => "delete",
            Action::Copy => "copy",
            Action::Paste => "paste",
            Action::Share => "share",
            Action::Tunnel => "tunnel",
        }
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Action {
    type Err = ParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Action::ALL
            .into_iter()
            .find(|a| a.as_str() == s)
            .ok_or_else(|| {
                ParseError::new(
                    "action",
                    s,
                    "one of connect, upload, download, delete, copy, paste, share, tunnel",
                )
            })
    }
}

/// Types whose text form is their serialised form (`ssh/22`, `@ALL,root`,
/// `all`), so JSON output reads like the CLI input.
macro_rules! serialize_as_text {
    ($($t:ty),*) => {$(
        impl Serialize for $t {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_str(self)
            }
        }
    )*};
}
serialize_as_text!(Protocol, AccountSpec, ProtocolSpec);

/// A set of actions, as a small bit set.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Actions(u16);

impl Actions {
    pub const NONE: Actions = Actions(0);

    /// What `all` means: every action except `tunnel`, which is always
    /// explicit (DESIGN.md §2).
    pub fn all_but_tunnel() -> Actions {
        Action::ALL
            .into_iter()
            .filter(|a| *a != Action::Tunnel)
            .fold(Actions::NONE, |s, a| s.with(a))
    }

    pub fn with(self, action: Action) -> Actions {
        Actions(self.0 | action.bit())
    }

    pub fn contains(self, action: Action) -> bool {
        self.0 & action.bit() != 0
    }

    pub fn union(self, other: Actions) -> Actions {
        Actions(self.0 | other.0)
    }

    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    pub fn iter(self) -> impl Iterator<Item = Action> {
        Action::ALL.into_iter().filter(move |a| self.contains(*a))
    }
}

impl fmt::Debug for Actions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Actions({self})")
    }
}

impl fmt::Display for Actions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = self.iter().map(Action::as_str).collect();
        f.write_str(&names.join(","))
    }
}

impl Serialize for Actions {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.iter().map(Action::as_str))
    }
}

impl FromStr for Actions {
    type Err = ParseError;
    /// `all` (everything but tunnel), or a comma list; `all,tunnel` gives
    /// every action.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut set = Actions::NONE;
        for item in s.split(',').map(str::trim).filter(|i| !i.is_empty()) {
            if item == "all" {
                set = set.union(Actions::all_but_tunnel());
            } else {
                set = set.with(item.parse().map_err(|_| {
                    ParseError::new(
                        "actions",
                        s,
                        "all, or a comma list of connect, upload, download, delete, copy, paste, share, tunnel",
                    )
                })?);
            }
        }
        if set.is_empty() {
            return Err(ParseError::new("actions", s, "at least one action"));
        }
        Ok(set)
    }
}

/// A permission as stored: who × what × which accounts × protocols × actions
/// × when. Users and groups, assets and nodes are named (resolved by the
/// store).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Permission {
    pub id: Id,
    pub name: String,
    pub users: Vec<String>,
    pub groups: Vec<String>,
    pub assets: Vec<String>,
    pub nodes: Vec<String>,
    pub accounts: AccountSpec,
    pub protocols: ProtocolSpec,
    pub actions: Actions,
    pub valid_from: Option<Timestamp>,
    pub valid_until: Option<Timestamp>,
    pub active: bool,
    pub comment: String,
    /// Connections granted only by this permission wait for an admin's
    /// approval in the console.
    pub require_approval: bool,
}

/// What a command filter rule does when its pattern matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum FilterAction {
    /// The command is not sent; the person is told.
    Deny,
    /// The command is sent; no other rule applies.
    Allow,
    /// The command is sent; the person sees a warning, the log flags it.
    Warn,
    /// The command waits for an approval (console issue); until then denied.
    Review,
}

impl FilterAction {
    pub fn as_str(self) -> &'static str {
        match self {
            FilterAction::Deny => "deny",
            FilterAction::Allow => "allow",
            FilterAction::Warn => "warn",
            FilterAction::Review => "review",
        }
    }
}

impl fmt::Display for FilterAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for FilterAction {
    type Err = ParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "deny" => Ok(FilterAction::Deny),
            "allow" => Ok(FilterAction::Allow),
            "warn" => Ok(FilterAction::Warn),
            "review" => Ok(FilterAction::Review),
            _ => Err(ParseError::new(
                "filter action",
                s,
                "one of deny, allow, warn, review",
            )),
        }
    }
}

/// A command filter rule and what it is bound to. Empty binding lists mean
/// "any": a filter with no users and no groups applies to everyone, one with
/// no assets and no nodes to every asset.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CommandFilter {
    pub id: Id,
    pub name: String,
    pub pattern: String,
    pub action: FilterAction,
    /// Lower numbers win among non-deny rules.
    pub priority: i32,
    pub users: Vec<String>,
    pub groups: Vec<String>,
    pub assets: Vec<String>,
    pub nodes: Vec<String>,
    pub accounts: AccountSpec,
    pub active: bool,
}

/// What a login ACL does to a login it matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum AclAction {
    Allow,
    Deny,
}

impl AclAction {
    pub fn as_str(self) -> &'static str {
        match self {
            AclAction::Allow => "allow",
            AclAction::Deny => "deny",
        }
    }
}

impl FromStr for AclAction {
    type Err = ParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "allow" => Ok(AclAction::Allow),
            "deny" => Ok(AclAction::Deny),
            _ => Err(ParseError::new("acl action", s, "allow or deny")),
        }
    }
}

/// A login restriction: for the users and groups it names, a login from one
/// of `sources` (any when empty) during one of `windows` (always when empty)
/// is allowed or denied. ACLs are tried by ascending priority; the first that
/// matches decides; a login no ACL matches is allowed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LoginAcl {
    pub id: Id,
    pub name: String,
    pub action: AclAction,
    pub priority: i32,
    pub users: Vec<String>,
    pub groups: Vec<String>,
    /// CIDR blocks (`10.0.0.0/8`, `2001:db8::/32`, a bare address is /32 or /128).
    pub sources: Vec<String>,
    /// Weekly windows such as `Mon-Fri 08:00-18:00`, in the configured zone.
    pub windows: Vec<String>,
    pub active: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_paths_are_absolute_and_clean() {
        assert_eq!(
            normalize_node_path("/DEFAULT/prod/").unwrap(),
            "/DEFAULT/prod"
        );
        for bad in ["DEFAULT", "/", "//x", "/a//b", "/a/../b", "/a/./b", ""] {
            assert!(normalize_node_path(bad).is_err(), "{bad} accepted");
        }
        assert_eq!(parent_node_path("/DEFAULT/prod"), Some("/DEFAULT"));
        assert_eq!(parent_node_path("/DEFAULT"), None);
    }

    #[test]
    fn actions_all_never_includes_tunnel() {
        let all: Actions = "all".parse().unwrap();
        assert!(all.contains(Action::Connect));
        assert!(!all.contains(Action::Tunnel));
        let with: Actions = "all,tunnel".parse().unwrap();
        assert!(with.contains(Action::Tunnel));
        assert_eq!(
            "connect,upload".parse::<Actions>().unwrap().to_string(),
            "connect,upload"
        );
        assert!("fly".parse::<Actions>().is_err());
    }

    #[test]
    fn account_specs_round_trip() {
        let spec: AccountSpec = "@INPUT,root,@USER".parse().unwrap();
        assert!(spec.input && spec.same_user && !spec.all);
        assert_eq!(spec.names, vec!["root"]);
        assert_eq!(spec.to_string(), "@INPUT,@USER,root");
        assert!("@SOME".parse::<AccountSpec>().is_err());
        assert!("".parse::<AccountSpec>().is_err());
    }

    #[test]
    fn protocols_take_default_ports() {
        assert_eq!("ssh".parse::<Protocol>().unwrap().port, 22);
        assert_eq!("ssh/2200".parse::<Protocol>().unwrap().port, 2200);
        assert!("ssh/0".parse::<Protocol>().is_err());
        assert!("gopher/70".parse::<Protocol>().is_err());
        assert_eq!(
            "ssh,sftp".parse::<ProtocolSpec>().unwrap(),
            ProtocolSpec::Named(vec!["ssh".into(), "sftp".into()])
        );
    }
}
