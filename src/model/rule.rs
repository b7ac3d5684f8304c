//! Rules checked at connect time and at each command: command filters and
//! login ACLs.

use std::fmt;
use std::str::FromStr;

use serde::Serialize;

use super::{AccountSpec, Id, ParseError};

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

/// What a command filter's pattern is matched against: the lines typed
/// into terminal sessions (`shell`, the default), the statements of
/// database sessions (`sql`), or Redis commands (`redis`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    #[default]
    Shell,
    Sql,
    Redis,
}

impl Scope {
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Shell => "shell",
            Scope::Sql => "sql",
            Scope::Redis => "redis",
        }
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Scope {
    type Err = ParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "shell" => Ok(Scope::Shell),
            "sql" => Ok(Scope::Sql),
            "redis" => Ok(Scope::Redis),
            _ => Err(ParseError::new(
                "filter scope",
                s,
                "one of shell, sql, redis",
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
    /// What the pattern is matched against.
    pub on: Scope,
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
