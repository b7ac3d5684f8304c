//! Session verbs that reach the running server (through its control
//! socket) or a session's recording.

use std::path::{Path, PathBuf};

use serde_json::json;

use super::{Caller, Ops, OpsError, Result, require_admin, require_auditor};
use crate::live;
use crate::store::{self, StoreError};

impl Ops {
    /// The recording file of a session; reading it is itself audited.
    pub async fn session_recording(
        &self,
        caller: &Caller,
        id: &str,
        verb: &str,
        recording_dir: &Path,
    ) -> Result<PathBuf> {
        require_auditor(caller, "reading a recording")?;
        let mut tx = self.store.begin().await?;
        let session = store::sessions::get(&mut tx, id).await?;
        let Some(relative) = &session.recording else {
            return Err(OpsError::Invalid(format!("session {id} has no recording")));
        };
        let path = recording_dir.join(relative);
        if !path.exists() {
            return Err(OpsError::Invalid(format!(
                "the recording of session {id} is missing: {}",
                path.display()
            )));
        }
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
        live::control::list(socket)
            .await
            .map_err(|e| OpsError::Invalid(e.to_string()))
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
            return Err(StoreError::NotFound {
                kind: "live session",
                name: id.to_string(),
            }
            .into());
        }
        let mut tx = self.store.begin().await?;
        self.log(
            &mut tx,
            caller,
            "session.kill",
            format!("session {id}"),
            None,
            Some(json!({ "reason": reason })),
        )
        .await?;
        self.store.commit(tx).await?;
        Ok(())
    }
}
