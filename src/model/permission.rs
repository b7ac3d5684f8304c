//! Permissions and their parts: which accounts, protocols and actions a
//! permission grants.

use std::fmt;
use std::str::FromStr;

use jiff::Timestamp;
use serde::Serialize;

use super::{Id, KNOWN_PROTOCOLS, ParseError};

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

serialize_as_text!(AccountSpec, ProtocolSpec);

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
