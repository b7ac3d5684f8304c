//! When the bastion stops a running session, whatever its protocol: a
//! kill order from staff, its permission ending (revoked, the person
//! disabled, `--until` passed), or the bastion shutting down.
//!
//! A protocol states what "still permitted" means for it (the grant's
//! actions rechecked against the current policy snapshot) and waits on
//! [`Session::stopped`], or, if it takes other orders from its live entry
//! too (a terminal relay answers joins, notices and snapshots through
//! [`crate::live::LiveSession::control`], which also delivers kills), on
//! [`revoked`]. A protocol that runs its own tick asks [`Session::stop_now`].

use std::time::Duration;

use jiff::Timestamp;
use tokio_util::sync::CancellationToken;

use super::Session;
use crate::services::Services;

/// How often a permission is rechecked, and a kill order looked for by a
/// protocol that does not receive it as a message.
pub const RECHECK: Duration = Duration::from_secs(1);

/// Why the bastion stopped a session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stop {
    /// Staff killed it.
    Killed {
        reason: String,
        by: String,
    },
    /// Its permission ended.
    Revoked,
    Shutdown,
}

impl Stop {
    /// The end reason for the session row.
    pub fn reason(&self) -> String {
        match self {
            Stop::Killed { reason, .. } => format!("killed: {reason}"),
            Stop::Revoked => "permission ended".into(),
            Stop::Shutdown => "bastion shutdown".into(),
        }
    }

    /// The line for the person (without the `rampart: ` prefix).
    pub fn notice(&self) -> String {
        match self {
            Stop::Killed { reason, by } => format!("session ended by {by}: {reason}"),
            Stop::Revoked => "your access to this asset has ended".into(),
            Stop::Shutdown => "the bastion is shutting down".into(),
        }
    }
}

/// Resolves when `allowed` (asked every [`RECHECK`] with the time now)
/// says the session's permission has ended, or the bastion shuts down.
pub async fn revoked(
    services: &Services,
    shutdown: &CancellationToken,
    allowed: impl Fn(Timestamp) -> bool,
) -> Stop {
    every_recheck(services, shutdown, |now| {
        (!allowed(now)).then_some(Stop::Revoked)
    })
    .await
}

/// Asks `check` every [`RECHECK`] until it says stop, or the bastion
/// shuts down.
async fn every_recheck(
    services: &Services,
    shutdown: &CancellationToken,
    check: impl Fn(Timestamp) -> Option<Stop>,
) -> Stop {
    loop {
        tokio::select! {
            () = tokio::time::sleep(RECHECK) => {}
            () = shutdown.cancelled() => return Stop::Shutdown,
        }
        if let Some(stop) = check(services.clock.now()) {
            return stop;
        }
    }
}

impl Session {
    /// Resolves when the bastion stops this session (see the module docs):
    /// a kill order, `allowed` turning false, or shutdown.
    pub async fn stopped(
        &self,
        services: &Services,
        shutdown: &CancellationToken,
        allowed: impl Fn(Timestamp) -> bool,
    ) -> Stop {
        every_recheck(services, shutdown, |now| self.stop_now(allowed(now))).await
    }

    /// Whether the bastion stops this session now: a kill order was given,
    /// or its permission (`allowed`, as the protocol rechecked it) ended.
    pub fn stop_now(&self, allowed: bool) -> Option<Stop> {
        if let Some(order) = self.live.killed() {
            return Some(Stop::Killed {
                reason: order.reason,
                by: order.by,
            });
        }
        (!allowed).then_some(Stop::Revoked)
    }
}
