//! An administrator's yes before something runs, whatever the protocol: a
//! connection through a permission with `--require-approval`, or a command
//! held by a `review` filter. The request waits in the live registry (the
//! desks and `rampart session approvals` list it; `live::approval` makes
//! sure the person cannot approve their own); [`decided`] waits for the
//! answer, at most `auth.approval_timeout`, while the person may withdraw.
//! Anything but an approval means it does not run.

use std::future::Future;
use std::time::Duration;

use crate::live::{Decision, Pending};

/// What became of a held command or connection.
#[derive(Debug)]
pub enum Held {
    Approved {
        by: String,
    },
    /// `reason` is what the admin gave, empty when nothing.
    Denied {
        by: String,
        reason: String,
    },
    TimedOut,
    /// The person withdrew it (Ctrl-C on a terminal).
    Withdrawn,
    /// The person's connection closed meanwhile.
    ClientGone,
}

/// What the person did while a request waited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Withdrawal {
    Withdrawn,
    Gone,
}

impl Held {
    /// The line shown to the person once it is decided.
    pub fn notice(&self, timeout: Duration) -> String {
        match self {
            Held::Approved { by } => format!("approved by {by}"),
            Held::Denied { by, reason } if reason.is_empty() => {
                format!("denied by {by}; it was not run")
            }
            Held::Denied { by, reason } => format!("denied by {by}: {reason}; it was not run"),
            Held::TimedOut => format!(
                "no administrator answered within {}; it was not run",
                humanize(timeout)
            ),
            Held::Withdrawn | Held::ClientGone => "withdrawn; it was not run".to_string(),
        }
    }
}

/// Waits for the answer to `pending`, at most `timeout`; `withdrawn`
/// resolves when the person withdraws the request or goes (the protocol
/// watches its own client for that).
pub async fn decided(
    mut pending: Pending,
    timeout: Duration,
    withdrawn: impl Future<Output = Withdrawal>,
) -> Held {
    tokio::select! {
        decision = pending.decision() => match decision {
            Some(Decision::Approved { by }) => Held::Approved { by },
            Some(Decision::Denied { by, reason }) => Held::Denied { by, reason },
            None => Held::TimedOut,
        },
        () = tokio::time::sleep(timeout) => Held::TimedOut,
        withdrawal = withdrawn => match withdrawal {
            Withdrawal::Withdrawn => Held::Withdrawn,
            Withdrawal::Gone => Held::ClientGone,
        },
    }
}

/// `5m`, `90s`, `1h`.
fn humanize(d: Duration) -> String {
    let s = d.as_secs();
    if s >= 3600 && s.is_multiple_of(3600) {
        format!("{}h", s / 3600)
    } else if s >= 60 && s.is_multiple_of(60) {
        format!("{}m", s / 60)
    } else {
        format!("{s}s")
    }
}
