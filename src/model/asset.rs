//! Assets and how they are reached: protocols with their ports, pinned
//! host keys, and the accounts whose secrets the bastion holds.

use std::fmt;
use std::str::FromStr;

use jiff::Timestamp;
use serde::Serialize;

use super::{Id, ParseError};

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
    /// A database asset's default database (`--database`); empty: none.
    pub database: String,
    /// A database asset's server is reached over TLS (`--tls`), its
    /// certificate pinned like a host key.
    pub tls: bool,
    /// A web asset's site (`--url`): the one place its proxy reaches;
    /// empty: not a web asset.
    pub url: String,
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
    /// How a web asset's account is logged in with its secret.
    pub web_login: super::WebLogin,
}

/// A program a Windows asset publishes, opened alone in a window through
/// the RDP front (RemoteApp).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RemoteApp {
    pub asset: String,
    /// The alias the server publishes it under (`||ALIAS` in a `.rdp`
    /// file).
    pub alias: String,
    /// What people see.
    pub name: String,
    /// Its command line arguments; empty: none.
    pub arguments: String,
}

serialize_as_text!(Protocol);
