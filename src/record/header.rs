//! The cast header (line 1 of every recording): the asciicast v2 fields and
//! rampart's own `rampart` object naming the session. The writer fills it
//! in, the reader and the player read it back; it owns no I/O.

use serde::{Deserialize, Serialize};

/// Whether the session was an interactive shell, an exec'd command, or a
/// remote desktop (RDP: the output is the protocol's own updates, each
/// chunk a `raw:` segment of the sidecar with its own time; see `rdp`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SessionKind {
    Shell,
    Exec,
    Desktop,
}

/// The cast header (line 1).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Header {
    pub version: u32,
    pub width: u16,
    pub height: u16,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timestamp: Option<i64>,
    #[serde(default)]
    pub env: Env,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rampart: Option<RampartHeader>,
}

/// The header's `env` object: the variables asciinema shows.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Env {
    #[serde(rename = "TERM", default, skip_serializing_if = "Option::is_none")]
    pub term: Option<String>,
    #[serde(rename = "SHELL", default, skip_serializing_if = "Option::is_none")]
    pub shell: Option<String>,
}

/// The header's `rampart` object: which session this is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RampartHeader {
    pub session: String,
    pub user: String,
    pub asset: String,
    pub account: String,
    pub protocol: String,
    pub kind: SessionKind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<String>,
}
