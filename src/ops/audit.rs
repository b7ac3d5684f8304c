//! Auditor verbs: the audit listings, session list and chain verification.

use super::{Caller, Ops, Result, require_auditor};
use crate::audit::{self, VerifyReport};
use crate::store::audit_log::{
    self, CommandRow, LoginRow, OperationRow, Query, RefusalRow, TransferRow,
};
use crate::store::sessions::{self, SessionRow};
use crate::store::stats;

impl Ops {
    pub async fn audit_logins(&self, caller: &Caller, q: &Query) -> Result<Vec<LoginRow>> {
        require_auditor(caller, "reading the login log")?;
        let mut conn = self.store.conn().await?;
        Ok(audit_log::logins(&mut conn, q).await?)
    }

    pub async fn audit_operations(&self, caller: &Caller, q: &Query) -> Result<Vec<OperationRow>> {
        require_auditor(caller, "reading the operation log")?;
        let mut conn = self.store.conn().await?;
        Ok(audit_log::operations(&mut conn, q).await?)
    }

    pub async fn audit_commands(&self, caller: &Caller, q: &Query) -> Result<Vec<CommandRow>> {
        require_auditor(caller, "reading the command log")?;
        let mut conn = self.store.conn().await?;
        Ok(audit_log::commands(&mut conn, q).await?)
    }

    /// A session's commands with their output, in order (a web visit's
    /// requests), at most `limit`.
    pub async fn audit_session_commands(
        &self,
        caller: &Caller,
        session: &str,
        limit: i64,
    ) -> Result<Vec<audit_log::SessionCommand>> {
        require_auditor(caller, "reading the command log")?;
        let mut conn = self.store.conn().await?;
        Ok(audit_log::session_commands(&mut conn, session, limit).await?)
    }

    pub async fn audit_transfers(&self, caller: &Caller, q: &Query) -> Result<Vec<TransferRow>> {
        require_auditor(caller, "reading the transfer log")?;
        let mut conn = self.store.conn().await?;
        Ok(audit_log::transfers(&mut conn, q).await?)
    }

    pub async fn audit_refusals(&self, caller: &Caller, q: &Query) -> Result<Vec<RefusalRow>> {
        require_auditor(caller, "reading refused requests")?;
        let mut conn = self.store.conn().await?;
        Ok(audit_log::refusals(&mut conn, q).await?)
    }

    /// Where `text` appeared on the screen of a recorded session (read from
    /// `recordings`: the local dir, else the object store), newest first,
    /// with how complete the index is.
    pub async fn audit_screen(
        &self,
        caller: &Caller,
        recordings: &crate::record::objects::Recordings,
        text: &str,
        limit: usize,
    ) -> Result<crate::search::Found> {
        require_auditor(caller, "searching screen text")?;
        Ok(crate::search::search(&self.store, recordings, text, limit).await?)
    }

    /// Today's and the week's figures for the audit dashboard.
    pub async fn audit_dashboard(&self, caller: &Caller) -> Result<stats::Dashboard> {
        require_auditor(caller, "reading the audit dashboard")?;
        let mut conn = self.store.conn().await?;
        Ok(stats::dashboard(&mut conn, self.now()).await?)
    }

    pub async fn session_list(
        &self,
        caller: &Caller,
        q: &Query,
        live_only: bool,
    ) -> Result<Vec<SessionRow>> {
        require_auditor(caller, "listing sessions")?;
        let mut conn = self.store.conn().await?;
        Ok(sessions::list(&mut conn, q, live_only).await?)
    }

    /// Recomputes the hash chain and the recordings' digests.
    pub async fn audit_verify(
        &self,
        caller: &Caller,
        recordings: &crate::record::objects::Recordings,
    ) -> Result<VerifyReport> {
        require_auditor(caller, "verifying the audit chain")?;
        Ok(audit::verify(&self.store, recordings).await?)
    }
}
