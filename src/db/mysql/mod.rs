//! The MySQL and MariaDB auditing wire proxy.
//!
//! A session hands [`serve`] a Unix listener in its private directory, the
//! one-time password it gave the client, where and as whom to log in
//! ([`Upstream`], with the vaulted secret), and an [`Audit`]. A connection
//! goes:
//!
//! 1. **Login** (`auth.rs`, `front.rs`): TCP to the server and its
//!    handshake first, so the client is greeted in the server's name (its
//!    version string and connection id) with the capabilities both sides
//!    share and the proxy follows (`front::OFFER`: no TLS, compression,
//!    LOCAL INFILE, DEPRECATE_EOF or session tracking). The client's
//!    answer is checked as `mysql_native_password` against the one-time
//!    password, in constant time; then the proxy logs in as the vaulted
//!    user. When the asset asks for TLS ([`Upstream::tls`]) an SSL
//!    Request goes first and the rest of the login over TLS, the server's
//!    certificate compared with the pinned fingerprint (or handed to be
//!    pinned when none is yet) before the credential is sent; a server
//!    whose greeting lacks CLIENT_SSL is refused, never logged in to in
//!    clear. Then the server's plugin, `mysql_native_password` or
//!    `caching_sha2_password` (its full login sends the password sealed to
//!    the server's RSA key over plain TCP, and in clear inside TLS, as
//!    MySQL's own clients do; both are unit-tested against hand-built
//!    exchanges, not against a real MySQL 8), and the client gets its OK,
//!    or the server's refusal as the server sent it.
//!    [`serve_login`] (a desktop tool through the person's tunnel) greets
//!    the same way and puts the client's user name and answer to a
//!    [`crate::db::Login`] (as a challenge-response proof, so the password
//!    itself never crosses), which says as whom the proxy logs in and
//!    which session audits it.
//! 2. **Relay** (`proxy.rs`): MySQL packets both ways. COM_QUERY and
//!    COM_STMT_PREPARE texts are split into statements (`sql`, MySQL's
//!    quoting) and each is put to [`Audit::check`] before anything is
//!    forwarded; COM_INIT_DB is judged as `USE db`. COM_STMT_EXECUTE is
//!    logged with the text prepared under its id. Commands rules cannot
//!    read (COM_CHANGE_USER, replication, COM_SHUTDOWN, COM_PROCESS_KILL
//!    and the like) are refused. The protocol is strictly request and
//!    answer: the proxy reads no new command from the client while an
//!    answer is owed (a pipelining client's commands wait in the socket),
//!    and the reply parser (`track.rs`) tells where each answer ends and
//!    what it said. Rows stream through in bounded pieces (`wire.rs`).
//!
//! A later connection on the session's socket is the client's Ctrl-C
//! (`cancel.rs`): with the one-time password again it may send `KILL
//! QUERY` for the session's connection and nothing else, and the proxy
//! runs it as the session's account. A relay dropped from outside (kill,
//! revocation, shutdown) kills its running statement the same way.
//!
//! The proxy never forwards a refused statement nor a byte it could not
//! frame; the vaulted secret and the one-time password appear in no log,
//! error, `Debug` output or logged statement. A LOCAL INFILE request from
//! the server is answered with an empty file and never reaches the client,
//! so no client file is read. Rules see the statement text, not its
//! effect: SQL `PREPARE`, stored procedures and events are for the rules
//! to judge.

mod auth;
mod cancel;
mod front;
mod proxy;
mod scramble;
/// Public for the fuzz target; the proxy is its only other user.
pub mod track;
pub mod wire;

#[cfg(test)]
mod tests;

pub(crate) use super::contract::same_secret;
pub use super::contract::{Accepted, Audit, Outcome, Statement, Summary, Upstream, Verdict};
/// The statement splitter, MySQL's dialect of the one PostgreSQL uses.
pub use super::pg::sql;
pub use proxy::{serve, serve_connection, serve_login};
pub use scramble::{RsaError, caching_sha2, native_password};

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
    #[error(
        "a second connection to the session's database was refused: one connection per session"
    )]
    Second,
    #[error("cannot reach {address}: {reason}")]
    Connect { address: String, reason: String },
    #[error("the connection to the database server failed: {0}")]
    Server(std::io::Error),
    #[error("the database server broke the protocol: {0}")]
    ServerProtocol(String),
    #[error("the database server ({0}) lacks protocol 4.1 logins with plugins")]
    ServerTooOld(String),
    #[error("timed out waiting for {0}")]
    Timeout(&'static str),
    #[error("upstream refused the login: {0}")]
    Refused(String),
    #[error("the server asks for a password and the account has none")]
    NoPassword,
    #[error("the server asks for {0} authentication, which the bastion does not speak")]
    Method(String),
    #[error("caching_sha2_password login failed: {0}")]
    Rsa(#[from] RsaError),
    #[error(
        "the client keeps more prepared statements than the bastion tracks (10000, or 64 MiB of text)"
    )]
    TooManyPrepared,
}

/// TCP to the server, within its connect timeout.
async fn connect(upstream: &Upstream) -> Result<tokio::net::TcpStream, ProxyError> {
    super::contract::connect(upstream)
        .await
        .map_err(unreachable)
}

fn unreachable(u: super::contract::Unreachable) -> ProxyError {
    ProxyError::Connect {
        address: u.address,
        reason: u.reason,
    }
}
