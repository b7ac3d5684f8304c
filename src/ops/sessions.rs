//! Session verbs that reach the running server (through its control
//! socket) or a session's recording.

use std::path::{Path, PathBuf};

use serde_json::json;

use super::{Caller, Ops, OpsError, Result, require_admin, require_auditor};
use crate::live;
use crate::live::approval::DecideError;
use crate::record::objects::{ObjectError, Recordings};
use crate::record::sidecar_of;
use crate::store::{self, StoreError};

impl Ops {
    /// The recording file of a session, copied from the object store first
    /// when it is only there (with its raw sidecar); reading it is itself
    /// audited.
    pub async fn session_recording(
        &self,
        caller: &Caller,
        id: &str,
        verb: &str,
        recordings: &Recordings,
    ) -> Result<PathBuf> {
        require_auditor(caller, "reading a recording")?;
        let session = {
            let mut conn = self.store.conn().await?;
            store::sessions::get(&mut conn, id).await?
        };
        let Some(relative) = &session.recording else {
            return Err(OpsError::Invalid(format!("session {id} has no recording")));
        };
        // Fetched before the write transaction: a download must not hold
        // every other writer back.
        let path = recordings.fetch(relative).await.map_err(|e| {
            OpsError::Invalid(format!("the recording of session {id} cannot be read: {e}"))
        })?;
        match recordings.fetch(&sidecar_of(relative)).await {
            Ok(_) | Err(ObjectError::Missing(_)) => {}
            Err(e) => tracing::warn!(session = %id, "the raw sidecar cannot be fetched: {e}"),
        }
        let mut tx = self.store.begin().await?;
        self.log(
            &mut tx,
            caller,
            verb,
            format!("session {id}"),
            None,
            Some(json!({ "user": session.user, "asset": session.asset })),
        )
        .await?;
        self.store.commit(tx).await?;
        Ok(path)
    }

    /// The sessions running now, as the running server sees them.
    pub async fn live_sessions(
        &self,
        caller: &Caller,
        socket: &Path,
    ) -> Result<Vec<live::LiveInfo>> {
        require_auditor(caller, "listing live sessions")?;
        let here = live::control::list(socket)
            .await
            .map_err(|e| OpsError::Invalid(e.to_string()))?;
        self.with_other_nodes(here).await
    }

    /// The sessions running in this server (the console's live list).
    pub async fn live_list(
        &self,
        caller: &Caller,
        registry: &live::Registry,
    ) -> Result<Vec<live::LiveInfo>> {
        require_auditor(caller, "listing live sessions")?;
        self.with_other_nodes(registry.list()).await
    }

    /// This node's live sessions (named with it) and, after them, those
    /// the other nodes sharing the database run, as their rows say: sizes
    /// and byte counts are known only where a session runs.
    async fn with_other_nodes(&self, here: Vec<live::LiveInfo>) -> Result<Vec<live::LiveInfo>> {
        let me = &self.settings.node;
        let mut all: Vec<live::LiveInfo> = here
            .into_iter()
            .map(|info| live::LiveInfo {
                node: me.clone(),
                ..info
            })
            .collect();
        let now = self.clock.now();
        let mut conn = self.store.conn().await?;
        for (row, node) in store::cluster::live_elsewhere(&mut conn, me).await? {
            let since = now.duration_since(row.started_at).as_secs().max(0);
            all.push(live::LiveInfo {
                session: live::SessionInfo {
                    id: row.id,
                    user: row.user,
                    asset: row.asset,
                    account: row.account,
                    protocol: row.protocol,
                    kind: row.kind,
                    source: row.source,
                    started_at: row.started_at,
                    cols: 0,
                    rows: 0,
                },
                bytes_in: 0,
                bytes_out: 0,
                duration_secs: u64::try_from(since).unwrap_or(0),
                watchers: 0,
                joined: Vec::new(),
                killed: None,
                node,
            });
        }
        Ok(all)
    }

    /// Ends a running session; the person sees `reason`.
    pub async fn session_kill(
        &self,
        caller: &Caller,
        socket: &Path,
        id: &str,
        reason: &str,
    ) -> Result<()> {
        require_admin(caller, "ending a session")?;
        let found = live::control::kill(socket, id, reason, &caller.name)
            .await
            .map_err(|e| OpsError::Invalid(e.to_string()))?;
        if !found {
            return Err(not_live(id));
        }
        self.log_session(caller, "session.kill", id, json!({ "reason": reason }))
            .await
    }

    /// As [`Ops::session_kill`], from inside the running server (the
    /// console), straight on its registry.
    pub async fn live_kill(
        &self,
        caller: &Caller,
        registry: &live::Registry,
        id: &str,
        reason: &str,
    ) -> Result<()> {
        require_admin(caller, "ending a session")?;
        if registry
            .kill_anywhere(id, reason, &caller.name)
            .await
            .is_none()
        {
            return Err(not_live(id));
        }
        self.log_session(caller, "session.kill", id, json!({ "reason": reason }))
            .await
    }

    /// Ends every running session of `user` (force logout); returns how
    /// many there were.
    pub async fn live_kill_user(
        &self,
        caller: &Caller,
        registry: &live::Registry,
        user: &str,
        reason: &str,
    ) -> Result<usize> {
        require_admin(caller, "logging a user out")?;
        let ended = registry
            .kill_user_everywhere(user, reason, &caller.name)
            .await;
        let mut tx = self.store.begin().await?;
        self.log(
            &mut tx,
            caller,
            "user.logout",
            format!("user {user}"),
            None,
            Some(json!({ "reason": reason, "sessions": ended })),
        )
        .await?;
        self.store.commit(tx).await?;
        Ok(ended)
    }

    /// Starts watching a running session (auditors and admins); the
    /// operation log says who watched what.
    pub async fn live_monitor(
        &self,
        caller: &Caller,
        registry: &live::Registry,
        id: &str,
    ) -> Result<live::Monitor> {
        require_auditor(caller, "monitoring a session")?;
        let (monitor, _) = self.watch(registry, id, None).await?;
        let info = &monitor.info().session;
        let detail = json!({ "user": info.user, "asset": info.asset });
        self.log_session(caller, "session.monitor", id, detail)
            .await?;
        Ok(monitor)
    }

    /// Joins a running session (admins): the monitor to watch it and the
    /// handle that types into it. The session's person is told.
    pub async fn live_join(
        &self,
        caller: &Caller,
        registry: &live::Registry,
        id: &str,
    ) -> Result<(live::Monitor, live::Joined)> {
        require_admin(caller, "joining a session")?;
        let (monitor, joined) = self.watch(registry, id, Some(&caller.name)).await?;
        let Some(joined) = joined else {
            return Err(not_live(id));
        };
        let info = &monitor.info().session;
        let detail = json!({ "user": info.user, "asset": info.asset });
        self.log_session(caller, "session.join", id, detail).await?;
        Ok((monitor, joined))
    }

    /// Approves or denies a command waiting for review, or a connection
    /// through a permission with `--require-approval` (the console, inside
    /// the running server); the request as it was. Fails when it is no
    /// longer waiting (decided by another admin, withdrawn, timed out), and
    /// when the caller asked for it: four eyes are two people.
    pub async fn approval_decide(
        &self,
        caller: &Caller,
        registry: &live::Registry,
        id: u64,
        approve: bool,
    ) -> Result<live::ApprovalRequest> {
        require_admin(caller, "approving commands")?;
        let answer = registry.decide(id, approve, &caller.name, "");
        self.log_decision(caller, id, approve, "", answer).await
    }

    /// The requests waiting for an admin's decision in the running server
    /// (`session approvals`), oldest first.
    pub async fn approvals_waiting(
        &self,
        caller: &Caller,
        socket: &Path,
    ) -> Result<Vec<live::ApprovalRequest>> {
        require_admin(caller, "listing requests waiting for approval")?;
        live::control::approvals(socket)
            .await
            .map_err(|e| OpsError::Invalid(e.to_string()))
    }

    /// As [`Ops::approval_decide`], from the CLI (local or over SSH) through
    /// the running server's control socket; a denial shows `reason` to the
    /// person.
    pub async fn session_decide(
        &self,
        caller: &Caller,
        socket: &Path,
        id: u64,
        approve: bool,
        reason: &str,
    ) -> Result<live::ApprovalRequest> {
        require_admin(caller, "approving commands")?;
        let answer = live::control::decide(socket, id, approve, reason, &caller.name)
            .await
            .map_err(|e| OpsError::Invalid(e.to_string()))?;
        self.log_decision(caller, id, approve, reason, answer).await
    }

    /// The operation row of an answered request, or the one line of why it
    /// was not answered.
    async fn log_decision(
        &self,
        caller: &Caller,
        id: u64,
        approve: bool,
        reason: &str,
        answer: std::result::Result<live::ApprovalRequest, DecideError>,
    ) -> Result<live::ApprovalRequest> {
        let request = answer.map_err(|e| match e {
            DecideError::OwnRequest { .. } | DecideError::JoinedSession { .. } => {
                OpsError::Forbidden(e.to_string())
            }
            DecideError::NotWaiting => OpsError::Invalid(e.to_string()),
        })?;
        let verb = match (approve, request.session.is_empty()) {
            (true, false) => "command.approve",
            (false, false) => "command.deny",
            (true, true) => "connect.approve",
            (false, true) => "connect.deny",
        };
        let mut detail = json!({
            "request": id,
            "user": request.user,
            "asset": request.asset,
            "account": request.account,
            "command": request.command,
            "rule": request.rule,
        });
        if !approve && !reason.is_empty() {
            detail["reason"] = json!(live::one_line(reason));
        }
        // A connection waiting for approval has no session yet.
        let object = if request.session.is_empty() {
            format!(
                "connect {}@{} as {}",
                request.user, request.asset, request.account
            )
        } else {
            format!("session {}", request.session)
        };
        let mut tx = self.store.begin().await?;
        self.log(&mut tx, caller, verb, object, None, Some(detail))
            .await?;
        self.store.commit(tx).await?;
        Ok(request)
    }

    async fn log_session(
        &self,
        caller: &Caller,
        verb: &str,
        id: &str,
        detail: serde_json::Value,
    ) -> Result<()> {
        let mut tx = self.store.begin().await?;
        self.log(
            &mut tx,
            caller,
            verb,
            format!("session {id}"),
            None,
            Some(detail),
        )
        .await?;
        self.store.commit(tx).await?;
        Ok(())
    }
}

impl Ops {
    /// Watches a session wherever it runs (this node or another sharing
    /// the database), joining it as `join_as` if given.
    async fn watch(
        &self,
        registry: &live::Registry,
        id: &str,
        join_as: Option<&str>,
    ) -> Result<(live::Monitor, Option<live::Joined>)> {
        // A desktop is mirrored as a picture, decoded from its updates as
        // they pass; it has no keyboard to share from a terminal, and its
        // updates are too heavy for the node-to-node feed.
        let mut conn = self.store.conn().await?;
        let desktop = store::sessions::get(&mut conn, id)
            .await
            .is_ok_and(|row| row.kind == "desktop");
        drop(conn);
        if desktop {
            if join_as.is_some() {
                return Err(OpsError::Invalid(format!(
                    "{id} is a desktop (RDP) session: it cannot be joined from a terminal; monitor it, or `session kill` it"
                )));
            }
            return match registry.subscribe(id) {
                Some(monitor) => Ok((monitor, None)),
                None => Err(OpsError::Invalid(format!(
                    "{id} is a desktop (RDP) session, watched only on the node it runs on: log in to that node (`session list` shows it)"
                ))),
            };
        }
        registry
            .watch_anywhere(id, join_as)
            .await
            .map_err(|e| match e {
                live::LiveError::NotFound { .. } => not_live(id),
                e => OpsError::Invalid(e.to_string()),
            })
    }
}

fn not_live(id: &str) -> OpsError {
    StoreError::NotFound {
        kind: "live session",
        name: id.to_string(),
    }
    .into()
}
