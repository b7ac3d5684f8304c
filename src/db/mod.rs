//! Wire proxies for database sessions: the person's client (psql,
//! mariadb, redis-cli) talks to a socket in the session's private
//! directory, or a desktop tool to the person's SSH tunnel, and the proxy
//! logs in to the real server with the vaulted secret.
//!
//! What this module owns: the database protocols as the bastion speaks
//! them, every statement logged with its outcome and filtered on the wire
//! before it reaches the server. What it must never do: forward a statement
//! a rule denied, forward bytes it could not parse, or let the vaulted
//! secret or the session's one-time password reach a log, an error or a
//! logged statement. The client never holds the real secret.
//!
//! Each proxy speaks TLS to its server when the asset asks for it
//! ([`Upstream::tls`]): PostgreSQL and MySQL ask the server to start it
//! (and refuse one that does not offer it, rather than log in in clear),
//! Redis speaks it from the first byte. Any certificate passes the
//! handshake ([`crate::upstream::tls`]); the check is the pin, as for an
//! SSH host key: the certificate's `SHA256:hex` fingerprint must be the
//! asset's pinned one, else the connection ends before the credential is
//! sent, the error naming both fingerprints; with nothing pinned yet the
//! certificate is handed to the session to pin (trust on first use).
//!
//! The parts:
//! - [`contract`]: what every protocol's proxy shares with its session
//!   ([`Audit`], [`Statement`], [`Upstream`]), and the [`Login`] of a
//!   tunnelled connection, asked with the client's [`contract::Proof`];
//! - [`pg`]: the PostgreSQL proxy (framing, upstream login, statement
//!   splitting, the relay with refusals answered in pipeline order);
//! - [`redis`]: the Redis proxy (RESP framing both ways, ACL login
//!   upstream, commands shown as redis-cli quotes them with secrets
//!   masked, replies streamed and matched to commands in pipeline order);
//!   on its Unix socket the client needs no password (see there why);
//! - [`mysql`]: the MySQL and MariaDB proxy (framing, the client's and the
//!   upstream login with `mysql_native_password` or
//!   `caching_sha2_password`, the relay that reads each answer to its end);
//!   its statements are split by [`pg::sql`]'s MySQL dialect;
//! - [`client`]: the person's native client (psql) in a sandboxed pty
//!   ([`crate::upstream::pty`]) with a private directory, the one-time
//!   password file and the proxy's socket;
//! - [`log`]: what the proxy asks of its session (filter verdicts scoped
//!   `--on sql`, approvals for `review` rules) and the command rows and
//!   recording markers of its statements.
//!
//! The SSH side (`ssh -t bastion pg1`, the menu) is `ssh::database`; the
//! session lifecycle around it is [`crate::session`]'s, as for a shell.

pub mod client;
pub mod contract;
pub mod log;
pub mod mysql;
pub mod pg;
pub mod redis;
pub mod server;

pub use contract::{
    Accepted, Admitted, Audit, Login, Outcome, Statement, Summary, Upstream, Verdict,
};
