//! The Redis auditing wire proxy.
//!
//! A session hands [`serve`] a Unix listener in its private directory,
//! where and as whom to log in ([`Upstream`], with the vaulted secret), and
//! an [`Audit`]. A connection goes:
//!
//! 1. **Front** (`login.rs`): on the session's Unix socket the client
//!    needs no password. redis-cli cannot read one from a file (only from
//!    its command line or environment, which other processes may see), and
//!    the socket lives in a 0700 directory owned by the session's sandbox
//!    uid, so whoever can connect is the session's own client. The first
//!    connection is the only one; later ones get an error and are closed.
//!    [`serve_connection`] with a token wants `AUTH token`, `AUTH user
//!    token` or `HELLO n AUTH user token` first, compared in constant
//!    time; [`serve_login`] (a desktop tool through the person's tunnel)
//!    puts the password given that way to a [`crate::db::Login`], which
//!    says as whom the proxy logs in and which session audits it.
//! 2. **Login** (`login.rs`): TCP to the server, and when the asset asks
//!    for TLS ([`Upstream::tls`]) TLS from the first byte (Redis has no
//!    upgrade in the protocol), the server's certificate compared with the
//!    pinned fingerprint (or handed to be pinned when none is yet) before
//!    the password is sent; then `AUTH user password` (Redis 6 ACL; `AUTH
//!    password` for the `default` user) and `SELECT n`. A refusal is an
//!    error carrying the server's message.
//! 3. **Relay** (`proxy.rs`): both directions at once. Each command is
//!    read whole (`request.rs`, at most 16 MiB; inline commands are
//!    re-encoded as arrays so the server runs exactly what was checked),
//!    shown as redis-cli would quote it with secrets masked (`text.rs`),
//!    put to [`Audit::check`] and only then forwarded. Replies stream
//!    through in bounded pieces (`reply.rs`); the pure bookkeeping of which
//!    reply answers which command (`track.rs`) logs each command with its
//!    outcome and places the proxy's own answers behind the replies still
//!    owed for commands sent before them, as a pipelining client expects.
//!
//! Some commands the proxy handles itself (`command.rs`): a client's
//! `AUTH` is answered `+OK` and never forwarded (the session's account must
//! not change), nor is the `AUTH` option of `HELLO`; `QUIT` is answered and
//! ends the connection. Commands whose replies cannot be matched one to one
//! (`SUBSCRIBE` and the other pub/sub modes, `MONITOR`, `CLIENT REPLY
//! OFF|SKIP`), replication (`SYNC`, `PSYNC`, `REPLCONF`) and `RESET` (which
//! logs the connection out of the session's account) are refused with the
//! rule `bastion`. `HELLO 3` is allowed: RESP3 replies are framed as well,
//! and pushed messages (client tracking) go to the client unmatched. A
//! command refused inside `MULTI` makes the proxy turn the `EXEC` into a
//! `DISCARD` and answer `EXECABORT`, as the server does for a command it
//! could not queue, so a transaction never runs with a piece missing.
//!
//! The proxy never forwards a refused command nor a byte it could not
//! frame; the vaulted secret and a token appear in no log, error, `Debug`
//! output or logged command. Rules see the command text, not its effect:
//! `EVAL`, `FCALL` and `MULTI` blocks are for the rules to judge.

mod command;
mod login;
mod proxy;
pub mod reply;
pub mod request;
pub mod resp;
pub mod text;
mod track;

#[cfg(test)]
mod tests;

pub use super::contract::{Accepted, Audit, Outcome, Statement, Summary, Upstream, Verdict};
pub use proxy::{serve, serve_connection, serve_login};

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
    #[error("the client did not authenticate with the session's token")]
    NoToken,
    #[error("the client gave a wrong token")]
    BadToken,
    #[error(
        "a second connection to the session's database was refused: one connection per session"
    )]
    Second,
    #[error("cannot reach {address}: {reason}")]
    Connect { address: String, reason: String },
    #[error("the connection to the Redis server failed: {0}")]
    Server(std::io::Error),
    #[error("the Redis server broke the protocol: {0}")]
    ServerProtocol(String),
    #[error("timed out waiting for {0}")]
    Timeout(&'static str),
    #[error("upstream refused the login: {0}")]
    Refused(String),
    #[error("the asset's database must be a Redis database number, not {0:?}")]
    Database(String),
}
