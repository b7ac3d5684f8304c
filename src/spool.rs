//! The spool: finished recordings on their way to the object store
//! (`recording.store = "s3://..."`).
//!
//! Recordings are written to the recording dir while their session runs,
//! as always: the relay never waits for the object store. While a session
//! runs, each pass sends the whole parts ([`PART`], 5 MiB) its cast has
//! grown by into a multipart upload ([`Recordings::advance_live`]), so a
//! long session is mostly in the bucket before it ends and nothing waits
//! in memory between passes; when it ends, [`run`] sends the rest and
//! completes the object, uploads the sidecar whole, and notes them in the
//! database. A pass runs every [`PASS_EVERY`] and when a session ends.
//! A live upload that fails is given up, and the cast goes whole at the
//! end. When the store is slow or down, sessions go on, their recordings
//! wait in the recording dir, and the passes back off (up to
//! [`MAX_BACKOFF`]) until an upload succeeds, then drain the spool oldest
//! first. Each node uploads the recordings it made. Local copies stay as
//! this node's cache: replay, export and `audit verify` read the object
//! when a file is not here (another node's, or removed by the operator).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::clock::Clock;
use crate::record::objects::{LiveUpload, PART, Recordings};
use crate::record::sidecar_of;
use crate::store::{self, Store};

/// How often the spool is looked at when nothing kicks it.
pub const PASS_EVERY: Duration = Duration::from_secs(5);
/// The longest wait between passes while uploads fail.
pub const MAX_BACKOFF: Duration = Duration::from_secs(60);
/// Recordings taken per pass.
const BATCH: i64 = 50;

/// Wakes the spool when a session has ended, and holds the uploads of the
/// recordings of running sessions between passes. Cheap to clone.
#[derive(Clone, Debug, Default)]
pub struct SpoolHandle {
    wake: Arc<Notify>,
    /// Recording (relative path) -> its upload, begun once the cast had a
    /// whole part.
    live: Arc<tokio::sync::Mutex<HashMap<String, LiveUpload>>>,
}

impl SpoolHandle {
    pub fn kick(&self) {
        self.wake.notify_one();
    }
}

/// What the spool works with.
pub struct Spool {
    pub store: Store,
    pub recordings: Recordings,
    pub clock: Arc<dyn Clock>,
    /// This node: on PostgreSQL the spool uploads the recordings it made
    /// (a SQLite file has one node, whatever its name).
    pub node: String,
    pub handle: SpoolHandle,
}

/// Uploads until `stop`; returns at once when no object store is set.
pub async fn run(spool: Spool, stop: CancellationToken) {
    if !spool.recordings.has_objects() {
        return;
    }
    let mut wait = Duration::ZERO;
    let mut failing = false;
    loop {
        tokio::select! {
            () = tokio::time::sleep(wait) => {}
            () = spool.handle.wake.notified() => {}
            () = stop.cancelled() => return,
        }
        match spool.pass().await {
            Ok(_) => {
                if failing {
                    tracing::info!("recordings upload to the object store again");
                }
                failing = false;
                wait = PASS_EVERY;
            }
            Err(e) => {
                if !failing {
                    tracing::warn!("recordings cannot be uploaded, they wait in the spool: {e}");
                }
                failing = true;
                wait = (wait * 2).clamp(PASS_EVERY, MAX_BACKOFF);
            }
        }
    }
}

impl Spool {
    /// Uploads what waits, oldest first; how many recordings it uploaded.
    /// Stops at the first failure (the store is likely down for all).
    pub async fn pass(&self) -> Result<usize, String> {
        if !self.recordings.has_objects() {
            return Ok(0);
        }
        let node = match self.store.engine() {
            store::Engine::Postgres => Some(self.node.as_str()),
            store::Engine::Sqlite => None,
        };
        let waiting = {
            let mut conn = self.store.conn().await.map_err(|e| e.to_string())?;
            store::spool::waiting(&mut conn, node, BATCH)
                .await
                .map_err(|e| e.to_string())?
        };
        let mut done = 0;
        for w in &waiting {
            let bytes = self.upload(&w.recording).await?;
            let mut tx = self.store.begin().await.map_err(|e| e.to_string())?;
            store::spool::uploaded(&mut tx, &w.session_id, bytes, self.clock.now())
                .await
                .map_err(|e| e.to_string())?;
            self.store.commit(tx).await.map_err(|e| e.to_string())?;
            done += 1;
        }
        self.advance_live(node).await?;
        Ok(done)
    }

    /// Sends the whole parts the casts of running sessions have grown by
    /// (see the module docs). An upload that fails is given up; the cast
    /// is uploaded whole when its session ends.
    async fn advance_live(&self, node: Option<&str>) -> Result<(), String> {
        let running = {
            let mut conn = self.store.conn().await.map_err(|e| e.to_string())?;
            store::spool::live(&mut conn, node, BATCH)
                .await
                .map_err(|e| e.to_string())?
        };
        let mut uploads = self.handle.live.lock().await;
        // Uploads of sessions no longer running that no pass completed
        // (their session row ended elsewhere): given up.
        let gone: Vec<String> = uploads
            .keys()
            .filter(|k| !running.iter().any(|r| &r.recording == *k))
            .cloned()
            .collect();
        for key in gone {
            if let Some(upload) = uploads.remove(&key) {
                upload.abandon().await;
            }
        }
        for r in &running {
            let path = self.recordings.dir().join(&r.recording);
            let size = tokio::fs::metadata(&path).await.map_or(0, |m| m.len());
            let upload = match uploads.remove(&r.recording) {
                Some(upload) => upload,
                None if size >= PART as u64 => self
                    .recordings
                    .begin_live(&r.recording)
                    .await
                    .map_err(|e| e.to_string())?,
                None => continue,
            };
            let mut upload = upload;
            match self
                .recordings
                .advance_live(&mut upload, &r.recording)
                .await
            {
                Ok(_) => {
                    uploads.insert(r.recording.clone(), upload);
                }
                Err(e) => {
                    upload.abandon().await;
                    return Err(e.to_string());
                }
            }
        }
        Ok(())
    }

    /// Uploads a recording's cast and sidecar; their bytes, or -1 when the
    /// cast is neither here nor in the store (lost: `audit verify` names
    /// it), so that it is not tried again and again.
    async fn upload(&self, cast: &str) -> Result<i64, String> {
        let local = self.recordings.dir().join(cast);
        if !tokio::fs::try_exists(&local).await.unwrap_or(false) {
            return match self.recordings.object_size(cast).await {
                Ok(Some(size)) => Ok(i64::try_from(size).unwrap_or(i64::MAX)),
                Ok(None) => {
                    tracing::error!(
                        "recording {cast} is neither in the spool nor in the object store"
                    );
                    Ok(-1)
                }
                Err(e) => Err(e.to_string()),
            };
        }
        // Begun while the session ran: the rest, then complete.
        let live = self.handle.live.lock().await.remove(cast);
        let mut bytes = match live {
            Some(live) => self.recordings.finish_live(live, cast).await,
            None => self.recordings.upload(cast).await,
        }
        .map_err(|e| e.to_string())?;
        let sidecar = sidecar_of(cast);
        if tokio::fs::try_exists(self.recordings.dir().join(&sidecar))
            .await
            .unwrap_or(false)
        {
            bytes += self
                .recordings
                .upload(&sidecar)
                .await
                .map_err(|e| e.to_string())?;
        }
        Ok(i64::try_from(bytes).unwrap_or(i64::MAX))
    }
}
