//! What every database wire proxy shares with the session around it,
//! whatever the protocol (PostgreSQL today; MySQL and Redis take the same):
//! where it logs in upstream, the verdict it asks for on each statement,
//! and the statements it logs with their outcome.

use std::time::Duration;

use futures_util::future::BoxFuture;
use zeroize::Zeroizing;

/// Where and as whom the proxy logs in.
pub struct Upstream {
    pub host: String,
    pub port: u16,
    pub user: String,
    /// The vaulted secret: never logged, never in an error.
    pub password: Option<Zeroizing<String>>,
    /// The database when the client names none.
    pub database: String,
    pub connect_timeout: Duration,
}

impl std::fmt::Debug for Upstream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Upstream")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("user", &self.user)
            .field("password", &self.password.as_ref().map(|_| "(redacted)"))
            .field("database", &self.database)
            .field("connect_timeout", &self.connect_timeout)
            .finish()
    }
}

impl Upstream {
    /// `host:port` as people write it.
    pub fn address(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

/// Whether two secrets are equal, in time that depends on their lengths
/// only (ring's `verify_slices_are_equal` is deprecated for outside use).
pub(crate) fn same_secret(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let diff = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    std::hint::black_box(diff) == 0
}

/// What a rule says about one statement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Allow,
    Deny { rule: String },
}

/// What happened to one logged statement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The CommandComplete tag: `SELECT 3`, `INSERT 0 1`, `DROP TABLE`;
    /// empty for an empty query, `SUSPENDED` for a portal that stopped at
    /// its row limit.
    Done(String),
    /// Severity, SQLSTATE and message: `ERROR 42P01: relation "t" does not exist`.
    Error(String),
    /// Denied by a rule, never sent to the server.
    Refused { rule: String },
    /// The connection ended before an answer.
    Unfinished,
}

/// One logged statement: a simple Query's text, or the text an extended
/// Execute ran.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Statement {
    pub text: String,
    pub outcome: Outcome,
    pub duration: Duration,
}

/// What the proxy asks of the session around it. `check` may wait (an
/// administrator's approval); `logged` must not block.
pub trait Audit: Send + Sync {
    fn check<'a>(&'a self, statement: &'a str) -> BoxFuture<'a, Verdict>;
    fn logged(&self, statement: Statement);
}

/// What one proxied connection moved.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Summary {
    pub bytes_from_client: u64,
    pub bytes_to_client: u64,
    /// Statements logged, refused ones included.
    pub statements: u64,
}

/// Called once a proxy accepted its session's first connection (the
/// client's one-time password file can go then).
pub type Accepted = Box<dyn FnOnce() + Send>;

/// Who may log in through a proxied connection that is not a session's
/// own (a desktop tool through `ssh -L`), and as whom it logs in upstream:
/// asked with the user name and password the client gave.
pub trait Login: Send + Sync {
    /// `None`: refused; the client is told its password is wrong.
    fn admit<'a>(&'a self, user: &'a str, password: &'a [u8]) -> BoxFuture<'a, Option<Admitted>>;
}

/// A connection a [`Login`] let in: where it goes, and the session that
/// judges and logs its statements.
pub struct Admitted {
    pub upstream: Upstream,
    pub audit: std::sync::Arc<dyn Audit>,
}
