//! Requests waiting for an admin's decision: a command held by a `review`
//! filter, or a connection through a permission with `--require-approval`.
//! The relay asks and waits on its [`Pending`]; every admin desk lists
//! [`Registry::approvals`] and answers with [`Registry::decide`], and so
//! does `rampart session approve|deny` through the control socket.
//!
//! Four eyes: whoever asked (the session's person) and whoever could type
//! into that session (an admin joined to it when it asked, or now) can never
//! answer the request. This is checked here, under the same lock that takes
//! the request off the list, so that no path (desk, CLI, control socket)
//! can skip it.
//!
//! In memory only, like the rest of the registry: who decided what is
//! written by the caller (`ops`), and a request that is not answered in time
//! is the relay's to refuse. Dropping the [`Pending`] (the session ended, was
//! killed, the person pressed Ctrl-C) withdraws the request.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use tokio::sync::oneshot;

use super::{Registry, one_line};

/// What is waiting, as an admin is shown it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApprovalRequest {
    pub id: u64,
    pub session: String,
    pub user: String,
    pub asset: String,
    pub account: String,
    pub command: String,
    /// The filter that asked for review.
    pub rule: String,
    pub asked_at: Timestamp,
}

/// The answer the relay gets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    Approved {
        by: String,
    },
    /// `reason` is shown to the person; empty when none was given.
    Denied {
        by: String,
        reason: String,
    },
}

/// Why a request was not answered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[serde(tag = "why", rename_all = "snake_case")]
pub enum DecideError {
    #[error("that request is no longer waiting (answered, withdrawn or timed out)")]
    NotWaiting,
    /// Four eyes: the one who asked cannot answer it...
    #[error("request {id} is your own: another administrator must answer it")]
    OwnRequest { id: u64 },
    /// ...nor can an admin who typed into the session that asked.
    #[error("you joined the session of request {id}: another administrator must answer it")]
    JoinedSession { id: u64 },
}

/// One waiting request: what admins see, who may not answer it, and where
/// the answer goes.
#[derive(Debug)]
struct Waiting {
    request: ApprovalRequest,
    /// The admins joined to the session when it asked.
    joined: Vec<String>,
    tell: oneshot::Sender<Decision>,
}

#[derive(Debug, Default)]
pub(super) struct Approvals {
    next: AtomicU64,
    waiting: Mutex<Vec<Waiting>>,
}

impl Approvals {
    fn waiting(&self) -> MutexGuard<'_, Vec<Waiting>> {
        // Every critical section is one push, scan or removal.
        self.waiting.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A request being waited on; dropping it withdraws the request.
#[derive(Debug)]
pub struct Pending {
    id: u64,
    answer: oneshot::Receiver<Decision>,
    approvals: Weak<Approvals>,
}

impl Pending {
    pub fn id(&self) -> u64 {
        self.id
    }

    /// The decision; `None` if the registry went away first.
    pub async fn decision(&mut self) -> Option<Decision> {
        (&mut self.answer).await.ok()
    }
}

impl Drop for Pending {
    fn drop(&mut self) {
        if let Some(approvals) = self.approvals.upgrade() {
            approvals.waiting().retain(|w| w.request.id != self.id);
        }
    }
}

impl Registry {
    /// Asks the admins to decide; `request.id` and `asked_at` are set here.
    pub fn ask(&self, mut request: ApprovalRequest) -> Pending {
        let approvals = &self.inner.approvals;
        request.id = approvals.next.fetch_add(1, Ordering::Relaxed) + 1;
        request.asked_at = Timestamp::now();
        request.command = one_line(&request.command);
        let id = request.id;
        let joined = self.joined_to(&request.session);
        let (tell, answer) = oneshot::channel();
        approvals.waiting().push(Waiting {
            request,
            joined,
            tell,
        });
        Pending {
            id,
            answer,
            approvals: Arc::downgrade(approvals),
        }
    }

    /// What is waiting now, oldest first.
    pub fn approvals(&self) -> Vec<ApprovalRequest> {
        self.inner
            .approvals
            .waiting()
            .iter()
            .map(|w| w.request.clone())
            .collect()
    }

    /// Answers a request as `by`; the request as it was. A denial shows
    /// `reason` to the person. Refused when it is no longer waiting (decided
    /// by someone else, withdrawn, timed out), and when `by` asked for it or
    /// typed into its session: then it stays waiting for another admin.
    pub fn decide(
        &self,
        id: u64,
        approve: bool,
        by: &str,
        reason: &str,
    ) -> Result<ApprovalRequest, DecideError> {
        let by = one_line(by);
        // Who is joined now, read before the approvals lock (the two locks
        // are never held together).
        let session = self
            .inner
            .approvals
            .waiting()
            .iter()
            .find(|w| w.request.id == id)
            .map(|w| w.request.session.clone())
            .ok_or(DecideError::NotWaiting)?;
        let joined_now = self.joined_to(&session);
        let Waiting { request, tell, .. } = {
            let mut waiting = self.inner.approvals.waiting();
            let at = waiting
                .iter()
                .position(|w| w.request.id == id)
                .ok_or(DecideError::NotWaiting)?;
            let Some(w) = waiting.get(at) else {
                return Err(DecideError::NotWaiting);
            };
            if w.request.user == by {
                return Err(DecideError::OwnRequest { id });
            }
            if w.joined.contains(&by) || joined_now.contains(&by) {
                return Err(DecideError::JoinedSession { id });
            }
            waiting.remove(at)
        };
        let decision = if approve {
            Decision::Approved { by }
        } else {
            Decision::Denied {
                by,
                reason: one_line(reason),
            }
        };
        // The relay may have stopped waiting a moment ago; then nothing ran.
        tell.send(decision).map_err(|_| DecideError::NotWaiting)?;
        Ok(request)
    }

    /// The admins joined to a live session now (none for a connection that
    /// has no session yet).
    fn joined_to(&self, session: &str) -> Vec<String> {
        if session.is_empty() {
            return Vec::new();
        }
        self.entry(session)
            .map(|entry| entry.joined().clone())
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(command: &str) -> ApprovalRequest {
        ApprovalRequest {
            id: 0,
            session: "s1".into(),
            user: "alice".into(),
            asset: "web1".into(),
            account: "root".into(),
            command: command.into(),
            rule: "prod-review".into(),
            asked_at: Timestamp::UNIX_EPOCH,
        }
    }

    #[tokio::test]
    async fn one_decision_reaches_the_waiter_and_a_withdrawn_request_goes() {
        let registry = Registry::new();
        let mut first = registry.ask(request("systemctl restart nginx"));
        let second = registry.ask(request("rm -rf /srv/cache\x1b[2J"));
        let listed = registry.approvals();
        assert_eq!(listed.len(), 2);
        assert_eq!(
            listed[1].command, "rm -rf /srv/cache [2J",
            "one printable line"
        );
        let decided = registry.decide(first.id(), true, "root-admin", "");
        assert_eq!(
            decided.map(|r| r.command),
            Ok("systemctl restart nginx".into())
        );
        assert_eq!(
            first.decision().await,
            Some(Decision::Approved {
                by: "root-admin".into()
            })
        );
        // A second answer to the same request finds nothing.
        assert_eq!(
            registry.decide(first.id(), false, "other", ""),
            Err(DecideError::NotWaiting)
        );
        let id = second.id();
        drop(second);
        assert!(registry.approvals().is_empty());
        assert_eq!(
            registry.decide(id, true, "late", ""),
            Err(DecideError::NotWaiting)
        );
    }

    /// Issue 13 item 11: four eyes are two people.
    #[tokio::test]
    async fn the_requester_can_never_answer_their_own_request() {
        let registry = Registry::new();
        // A connection through --require-approval has no session yet.
        let mut connect = registry.ask(ApprovalRequest {
            session: String::new(),
            ..request("connect (interactive)")
        });
        for approve in [true, false] {
            assert_eq!(
                registry.decide(connect.id(), approve, "alice", "mine"),
                Err(DecideError::OwnRequest { id: connect.id() })
            );
        }
        // Still waiting, for someone else.
        assert_eq!(registry.approvals().len(), 1);
        assert!(registry.decide(connect.id(), true, "bob", "").is_ok());
        assert_eq!(
            connect.decision().await,
            Some(Decision::Approved { by: "bob".into() })
        );
    }

    #[tokio::test]
    async fn an_admin_who_typed_into_the_session_cannot_answer_its_request() {
        let registry = Registry::new();
        let _live = registry.register(crate::live::SessionInfo {
            id: "s1".into(),
            user: "alice".into(),
            asset: "web1".into(),
            account: "root".into(),
            protocol: "ssh".into(),
            kind: "shell".into(),
            source: "192.0.2.7:50022".into(),
            started_at: Timestamp::UNIX_EPOCH,
            cols: 80,
            rows: 24,
        });
        let joined = registry.join("s1", "mallory").unwrap();
        let mut pending = registry.ask(request("systemctl stop firewall"));
        // Leaving the session before answering does not help.
        drop(joined);
        assert_eq!(
            registry.decide(pending.id(), true, "mallory", ""),
            Err(DecideError::JoinedSession { id: pending.id() })
        );
        // Joined only after it asked still counts while joined.
        let _late = registry.join("s1", "trudy").unwrap();
        assert_eq!(
            registry.decide(pending.id(), true, "trudy", ""),
            Err(DecideError::JoinedSession { id: pending.id() })
        );
        assert!(
            registry
                .decide(pending.id(), false, "bob", "not during the freeze\x1b[2J")
                .is_ok()
        );
        assert_eq!(
            pending.decision().await,
            Some(Decision::Denied {
                by: "bob".into(),
                reason: "not during the freeze [2J".into()
            })
        );
    }
}
