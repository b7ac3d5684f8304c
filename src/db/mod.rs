//! Wire proxies for database sessions: the person's client (psql, a
//! desktop tool) talks to a socket in the session's private directory, and
//! the proxy logs in to the real server with the vaulted secret.
//!
//! What this module owns: the database protocols as the bastion speaks
//! them, every statement logged with its outcome and filtered on the wire
//! before it reaches the server. What it must never do: forward a statement
//! a rule denied, forward bytes it could not parse, or let the vaulted
//! secret or the session's one-time password reach a log, an error or a
//! logged statement. The client never holds the real secret.
//!
//! Only PostgreSQL so far ([`pg`]); the pty and sandbox around the client
//! belong to the session that starts the proxy.

pub mod pg;
