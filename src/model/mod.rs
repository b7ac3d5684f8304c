//! Plain domain types shared by every module: users, assets, accounts,
//! permissions and their parts. No I/O happens here; parsing of the small
//! textual forms the CLI and the store use (`@ALL`, `ssh/22`, `connect,upload`)
//! lives beside each type so that every caller agrees on one spelling.
//!
//! Layout: people, their names and the node tree here; `asset` (assets,
//! protocols, accounts), `permission` (what a permission grants), `rule`
//! (command filters, login ACLs).

use std::fmt;
use std::str::FromStr;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

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

mod asset;
mod permission;
mod rule;
#[cfg(test)]
mod tests;
mod web;

pub use asset::{
    Account, Asset, HostKey, KNOWN_PROTOCOLS, Protocol, RemoteApp, SecretKind, default_port,
};
pub use permission::{AccountSpec, Action, Actions, Permission, ProtocolSpec};
pub use rule::{AclAction, CommandFilter, FilterAction, LoginAcl, Scope};
pub use web::{
    FormLogin, LINK_PATH, RDP_FILE_PATH, RECORDING_PATH, Site, WebBase, WebLogin, is_dns_label,
};

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
