//! Requests waiting for an admin's decision: a command held by a `review`
//! filter. The relay asks and waits on its [`Pending`]; every admin desk
//! lists [`Registry::approvals`] and answers with [`Registry::decide`].
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
    Approved { by: String },
    Denied { by: String },
}

#[derive(Debug, Default)]
pub(super) struct Approvals {
    next: AtomicU64,
    waiting: Mutex<Vec<(ApprovalRequest, oneshot::Sender<Decision>)>>,
}

impl Approvals {
    fn waiting(&self) -> MutexGuard<'_, Vec<(ApprovalRequest, oneshot::Sender<Decision>)>> {
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
            approvals.waiting().retain(|(r, _)| r.id != self.id);
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
        let (tell, answer) = oneshot::channel();
        approvals.waiting().push((request, tell));
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
            .map(|(r, _)| r.clone())
            .collect()
    }

    /// Answers a request; the request as it was, or `None` when it is no
    /// longer waiting (decided by someone else, withdrawn, timed out).
    pub fn decide(&self, id: u64, approve: bool, by: &str) -> Option<ApprovalRequest> {
        let (request, tell) = {
            let mut waiting = self.inner.approvals.waiting();
            let at = waiting.iter().position(|(r, _)| r.id == id)?;
            waiting.remove(at)
        };
        let by = one_line(by);
        let decision = if approve {
            Decision::Approved { by }
        } else {
            Decision::Denied { by }
        };
        // The relay may have stopped waiting a moment ago; then nothing ran.
        tell.send(decision).ok()?;
        Some(request)
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
        let decided = registry.decide(first.id(), true, "root-admin");
        assert_eq!(
            decided.map(|r| r.command),
            Some("systemctl restart nginx".into())
        );
        assert_eq!(
            first.decision().await,
            Some(Decision::Approved {
                by: "root-admin".into()
            })
        );
        // A second answer to the same request finds nothing.
        assert!(registry.decide(first.id(), false, "other").is_none());
        let id = second.id();
        drop(second);
        assert!(registry.approvals().is_empty());
        assert!(registry.decide(id, true, "late").is_none());
    }
}
