//! What a database session's wire proxy asks of the session around it
//! ([`pg::Audit`]): the verdict of the command filters on each statement
//! (rules scoped `--on sql`, or `--on redis` for Redis), an administrator's answer for one held by a
//! `review` rule, and the command log, where each statement becomes a row
//! and a `cmd:` marker of the recording, as a shell's commands do.
//!
//! The proxy's relay never waits for the database: statements go to the
//! writer ([`write_statements`]) through a queue. The queue is not capped,
//! since every row is audit and none may be dropped, but it holds at most
//! what the server answered faster than the audit writer takes rows: each
//! entry is one answered statement, its text capped by the proxy.

use std::sync::Arc;
use std::time::Duration;

use futures_util::future::BoxFuture;
use tokio::sync::mpsc;

use super::pg::{self, Outcome, Statement, Verdict};
use crate::live::Publisher;
use crate::model::FilterAction;
use crate::policy::{Grant, Snapshot};
use crate::record::RecorderHandle;
use crate::services::Services;
use crate::session::{self, Command, Rows};

/// A statement as logged, with the filter action it ran (or was refused)
/// under.
pub struct Logged {
    statement: Statement,
    action: FilterAction,
    rule: Option<String>,
}

/// The session's answers to its proxy.
pub struct SessionAudit {
    /// Whose rules judge, and how a logged text splits into statements.
    kind: super::client::Kind,
    policy: Box<dyn Fn() -> Arc<Snapshot> + Send + Sync>,
    grant: Grant,
    /// Asks the desks for approvals, and tells the person while a
    /// statement waits.
    live: Publisher,
    registry: crate::live::Registry,
    session_id: String,
    approval_timeout: Duration,
    log: mpsc::UnboundedSender<Logged>,
}

impl SessionAudit {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        kind: super::client::Kind,
        policy: Box<dyn Fn() -> Arc<Snapshot> + Send + Sync>,
        grant: Grant,
        live: Publisher,
        registry: crate::live::Registry,
        session_id: String,
        approval_timeout: Duration,
    ) -> (Arc<SessionAudit>, mpsc::UnboundedReceiver<Logged>) {
        let (log, rx) = mpsc::unbounded_channel();
        let audit = SessionAudit {
            kind,
            policy,
            grant,
            live,
            registry,
            session_id,
            approval_timeout,
            log,
        };
        (Arc::new(audit), rx)
    }

    /// The strongest verdict of the rules on the statements of `text`,
    /// for its log row: a statement that ran under a `review` rule was
    /// approved, one under `warn` ran with the warning.
    fn verdict_of(&self, text: &str) -> (FilterAction, Option<String>) {
        let policy = (self.policy)();
        let mut strongest = (FilterAction::Allow, None);
        for statement in self.kind.statements(text) {
            let v = policy.check_grant_statement(&self.grant, self.kind.scope(), &statement);
            let rank = |a: FilterAction| match a {
                FilterAction::Review => 2,
                FilterAction::Warn => 1,
                _ => 0,
            };
            if rank(v.action) > rank(strongest.0) {
                strongest = (v.action, v.rule);
            }
        }
        strongest
    }

    async fn review(&self, statement: &str, rule: String) -> Verdict {
        let Some(pending) = self.live.ask(statement, &rule) else {
            return Verdict::Deny { rule };
        };
        self.registry.notice(
            &self.session_id,
            &format!(
                "statement held for an administrator's review (rule {rule}); waiting at most {}s",
                self.approval_timeout.as_secs()
            ),
        );
        let held = session::decided(pending, self.approval_timeout, std::future::pending()).await;
        let line = held.notice(self.approval_timeout);
        self.registry.notice(&self.session_id, &line);
        match held {
            session::Held::Approved { .. } => Verdict::Allow,
            _ => Verdict::Deny { rule },
        }
    }
}

impl pg::Audit for SessionAudit {
    fn check<'a>(&'a self, statement: &'a str) -> BoxFuture<'a, Verdict> {
        Box::pin(async move {
            let verdict =
                (self.policy)().check_grant_statement(&self.grant, self.kind.scope(), statement);
            match verdict.action {
                FilterAction::Allow => Verdict::Allow,
                FilterAction::Warn => {
                    if let Some(rule) = &verdict.rule {
                        self.registry.notice(
                            &self.session_id,
                            &format!("warning: this statement matches rule {rule}; it is logged"),
                        );
                    }
                    Verdict::Allow
                }
                FilterAction::Deny => Verdict::Deny {
                    rule: verdict.rule.unwrap_or_default(),
                },
                FilterAction::Review => {
                    self.review(statement, verdict.rule.unwrap_or_default())
                        .await
                }
            }
        })
    }

    fn logged(&self, statement: Statement) {
        let (action, rule) = match &statement.outcome {
            Outcome::Refused { rule } => (FilterAction::Deny, Some(rule.clone())),
            _ => self.verdict_of(&statement.text),
        };
        let _ = self.log.send(Logged {
            statement,
            action,
            rule,
        });
    }
}

/// Writes the statements of a session as its proxy logs them, until the
/// proxy is gone: a command row each (through the audit writer) and a
/// `cmd:` marker in the recording.
pub async fn write_statements(
    services: &Services,
    rows: &Rows,
    recorder: &RecorderHandle,
    mut queue: mpsc::UnboundedReceiver<Logged>,
) {
    while let Some(Logged {
        statement,
        action,
        rule,
    }) = queue.recv().await
    {
        let offset = recorder.elapsed().saturating_sub(statement.duration);
        let _ = recorder.command(&one_line(&statement.text)).await;
        let output = match &statement.outcome {
            Outcome::Done(tag) => format!("{tag} ({})", millis(statement.duration)),
            Outcome::Error(error) => format!("{error} ({})", millis(statement.duration)),
            Outcome::Refused { rule } => format!("refused by rule {rule}"),
            Outcome::Unfinished => "unfinished: the connection ended first".to_string(),
        };
        let row = rows.command(Command {
            offset,
            command: statement.text,
            output,
            action: action.as_str().to_string(),
            rule,
        });
        services.audit.write(row, services.clock.now()).await;
    }
}

fn millis(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

/// A statement as a recording marker: one line, at most 200 characters.
fn one_line(text: &str) -> String {
    let line: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    match line.char_indices().nth(200) {
        Some((i, _)) => format!("{}…", &line[..i]),
        None => line,
    }
}
