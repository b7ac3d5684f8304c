//! The PostgreSQL auditing wire proxy.
//!
//! A session hands [`serve`] a Unix listener in its private directory, the
//! one-time password it gave the client, where and as whom to log in
//! ([`Upstream`], with the vaulted secret), and an [`Audit`]. A connection
//! goes:
//!
//! 1. **Front** (`front.rs`): the client's StartupMessage (SSL and GSS
//!    encryption requests answered `N`), then a cleartext password request;
//!    the answer is compared with the one-time password in constant time.
//!    The first connection is the session's only one: later ones may only
//!    carry a CancelRequest for it.
//! 2. **Login** (`auth.rs`): TCP to the server; when the asset asks for
//!    TLS ([`Upstream::tls`]), an SSLRequest and the TLS handshake, the
//!    server's certificate compared with the pinned fingerprint (or handed
//!    to be pinned when none is yet) before a byte of the login is sent; a
//!    server that answers `N` is refused, never logged in to in clear.
//!    Then the client's startup parameters with the vaulted user, then
//!    trust, cleartext, MD5 or SCRAM-SHA-256 (`scram.rs`, the server's
//!    signature checked). A refusal reaches the client as the server sent
//!    it. Cancel requests go to the server the same way, TLS included.
//! 3. **Relay** (`proxy.rs`): both directions at once. Query and Parse
//!    texts are split into statements (`sql.rs`) and each is put to
//!    [`Audit::check`] before anything is forwarded; rows and COPY data
//!    stream through in bounded pieces (`wire.rs`). The pure bookkeeping of
//!    which server answer belongs to which client message (`track.rs`)
//!    logs every statement with its outcome and places the proxy's own
//!    answers to refused messages after the server's answers to earlier
//!    ones, as a pipelining client expects.
//!
//! The proxy never forwards a refused statement nor a byte it could not
//! frame; the vaulted secret and the one-time password appear in no log,
//! error, `Debug` output or logged statement. Rules see the statement text,
//! not its effect: `PREPARE`, functions and `DO` blocks are for the rules to
//! judge.

mod auth;
mod front;
mod nested;
mod proxy;
mod scram;
pub mod sql;
mod track;
pub mod wire;

#[cfg(test)]
mod tests;

pub(crate) use super::contract::same_secret;
pub use super::contract::{
    Accepted, Admitted, Audit, Login, Outcome, Statement, Summary, Upstream, Verdict,
};
pub use auth::md5_password;
pub use proxy::{CancelKeys, serve, serve_connection, serve_later, serve_login};
pub use scram::{Scram, ScramError};

/// Why a proxied connection ended in failure. Each text is one line that
/// names no secret.
#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    #[error("cannot accept on the session's socket: {0}")]
    Accept(std::io::Error),
    #[error("the client's connection failed: {0}")]
    Client(std::io::Error),
    #[error("the client broke the protocol: {0}")]
    ClientProtocol(String),
    #[error("the client did not give the session's one-time password")]
    NoToken,
    #[error("the client gave a wrong one-time password")]
    BadToken,
    #[error("the client asked for protocol {0}.{1}; the bastion speaks 3.0")]
    Version(u16, u16),
    #[error(
        "a second connection to the session's database was refused: one connection per session"
    )]
    Second,
    #[error("the client asked for a replication connection, which the bastion does not proxy")]
    Replication,
    #[error("cannot reach {address}: {reason}")]
    Connect { address: String, reason: String },
    #[error("the connection to the database server failed: {0}")]
    Server(std::io::Error),
    #[error("the database server broke the protocol: {0}")]
    ServerProtocol(String),
    #[error("timed out waiting for {0}")]
    Timeout(&'static str),
    #[error("upstream refused the login: {0}")]
    Refused(String),
    #[error("the server asks for a password and the account has none")]
    NoPassword,
    #[error("the server asks for {0} authentication, which the bastion does not speak")]
    Method(String),
    #[error("SCRAM-SHA-256 login failed: {0}")]
    Scram(#[from] ScramError),
    #[error(
        "the client encoding {0} is refused: its characters can hide a quote from the statement filter"
    )]
    Encoding(String),
    #[error(
        "the client keeps more prepared statements or portals than the bastion tracks (10000, or 64 MiB of text)"
    )]
    TooManyPrepared,
}
