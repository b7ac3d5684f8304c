//! Target connections: opened on first use (grant, secret, SSH, the SFTP
//! subsystem, version exchange, session row, live entry), read by a task
//! of their own, and closed with their rows finished.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use tokio::sync::Notify;

use super::*;
use crate::session::Session;

impl Relay<'_> {
    /// Connects `asset` as `account` for SFTP: grant, secret, connection,
    /// subsystem, version exchange, session row, reader task.
    pub(super) async fn mount(&mut self, asset: &str, account: &str) -> Result<usize, String> {
        let shared = self.shared;
        let grant = sftp_grant(shared, self.conn, asset, account)
            .ok_or_else(|| no_access(asset).trim_start_matches("rampart: ").to_string())?;
        if let crate::policy::GrantAccount::Input { .. } = grant.account() {
            return Err(format!(
                "{asset}: account {account} is typed in at connect time, which SFTP cannot ask for"
            ));
        }
        let upstream = connect_target(shared, self.conn, &grant, None).await?;
        let opened = async {
            let channel = upstream.open_session().await.map_err(|e| e.to_string())?;
            let (mut read, write) = channel.split();
            write
                .request_subsystem(true, "sftp")
                .await
                .map_err(|e| e.to_string())?;
            loop {
                match read.wait().await {
                    Some(ChannelMsg::Success) => break,
                    Some(ChannelMsg::Failure)
                    | None
                    | Some(ChannelMsg::Close | ChannelMsg::Eof) => {
                        return Err("the target does not offer SFTP".to_string());
                    }
                    Some(_) => {}
                }
            }
            let mut hello = BytesMut::new();
            wire::encode_init(&mut hello, 3);
            write
                .data_bytes(hello.freeze())
                .await
                .map_err(|e| e.to_string())?;
            let mut frames = Frames::default();
            let version = loop {
                match read.wait().await {
                    Some(ChannelMsg::Data { data }) => {
                        frames.push(&data);
                        match frames.next_packet() {
                            Ok(Some(p)) => {
                                break wire::parse_server(p).map_err(|e| e.to_string())?;
                            }
                            Ok(None) => {}
                            Err(e) => return Err(e.to_string()),
                        }
                    }
                    Some(ChannelMsg::ExtendedData { .. } | ChannelMsg::WindowAdjusted { .. }) => {}
                    _ => return Err("the target closed SFTP at the start".to_string()),
                }
            };
            let ServerPacket::Version {
                version,
                extensions,
            } = version
            else {
                return Err("the target did not answer with its SFTP version".to_string());
            };
            if version < 3 {
                return Err(format!("the target speaks SFTP version {version}, not 3"));
            }
            Ok((read, write, frames, extensions))
        };
        let (read, write, frames, extensions) =
            match tokio::time::timeout(Duration::from_secs(20), opened).await {
                Ok(Ok(x)) => x,
                Ok(Err(e)) => {
                    upstream.disconnect().await;
                    return Err(format!("{asset}: {e}"));
                }
                Err(_) => {
                    upstream.disconnect().await;
                    return Err(format!("{asset}: no SFTP answer within 20 s"));
                }
            };

        let spec = crate::session::Spec::of_grant(&grant, "sftp", "sftp", self.conn.peer.ip());
        let session = match Session::open(&shared.services, &shared.live, spec).await {
            Ok(session) => session,
            Err(refused) => {
                upstream.disconnect().await;
                return Err(refused.to_string());
            }
        };
        let index = self.backends.len();
        let tx = self.tx.clone();
        tokio::spawn(read_target(index, read, tx));
        self.backends.push(Backend {
            asset: asset.to_string(),
            account: account.to_string(),
            grant,
            upstream,
            writer: TargetWriter::spawn(write, self.drained.clone()),
            frames,
            out: BytesMut::new(),
            extensions,
            session,
            bytes_in: 0,
            bytes_out: 0,
            gone: None,
        });
        self.mounts
            .insert((asset.to_string(), account.to_string()), index);
        Ok(index)
    }

    /// Closes every target: files still open are logged as failed, and
    /// each session row is finished.
    pub(super) async fn finish(&mut self) {
        let open: Vec<u32> = self.handles.keys().copied().collect();
        for h in open {
            if let Some(Open::File(f)) = self.handles.remove(&h) {
                self.log_file(*f, Some("the session ended with the file open".into()));
            }
        }
        let ids: Vec<u32> = self.pending.keys().copied().collect();
        for id in ids {
            if let Some(Pending {
                what: Await::Close(f),
                ..
            }) = self.pending.remove(&id)
            {
                self.log_file(
                    *f,
                    Some("the session ended before the target confirmed".into()),
                );
            }
        }
        // The transfer rows are in the chain before the session rows close.
        self.write_rows().await;
        self.shared.services.audit.flush().await;
        for b in std::mem::take(&mut self.backends) {
            b.writer.close().await;
            b.upstream.disconnect().await;
            let outcome = crate::session::Outcome {
                reason: b.gone.unwrap_or_else(|| "client closed".to_string()),
                failed: false,
                exit_status: None,
                bytes_in: b.bytes_in,
                bytes_out: b.bytes_out,
            };
            b.session.end(&self.shared.services, outcome).await;
        }
    }
}

/// How long the requests still queued for a target may take to go out
/// when the session ends.
const CLOSE_WAIT: Duration = Duration::from_secs(5);

/// The writing side of a target's SFTP channel, run by a task of its own:
/// the relay hands it requests and never waits for the target's window.
/// (A target stops reading requests while its replies wait to be taken;
/// a relay waiting to write to it would never take them.) The relay stops
/// reading the person's requests instead while it is [`Self::full`].
pub(super) struct TargetWriter {
    tx: mpsc::UnboundedSender<Bytes>,
    backlog: Arc<AtomicUsize>,
    failed: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<()>,
}

impl TargetWriter {
    /// Starts the task; `drained` is told when the backlog falls under
    /// [`WRITE_BACKLOG`] or the channel fails.
    fn spawn(write: ChannelWriteHalf<russh::client::Msg>, drained: Arc<Notify>) -> Self {
        let (tx, mut rx) = mpsc::unbounded_channel::<Bytes>();
        let backlog = Arc::new(AtomicUsize::new(0));
        let failed = Arc::new(AtomicBool::new(false));
        let (left, broke) = (backlog.clone(), failed.clone());
        let task = tokio::spawn(async move {
            while let Some(data) = rx.recv().await {
                let len = data.len();
                let sent = write.data_bytes(data).await.is_ok();
                let before = left.fetch_sub(len, Ordering::AcqRel);
                if !sent {
                    broke.store(true, Ordering::Release);
                    drained.notify_one();
                    return;
                }
                if before >= WRITE_BACKLOG && before - len < WRITE_BACKLOG {
                    drained.notify_one();
                }
            }
            let _ = write.eof().await;
            let _ = write.close().await;
        });
        TargetWriter {
            tx,
            backlog,
            failed,
            task,
        }
    }

    /// Queues bytes for the target.
    pub(super) fn send(&self, data: Bytes) {
        self.backlog.fetch_add(data.len(), Ordering::AcqRel);
        if self.tx.send(data).is_err() {
            self.failed.store(true, Ordering::Release);
        }
    }

    /// [`WRITE_BACKLOG`] bytes or more are queued for a target that is
    /// still there: the relay reads no more requests until they go out.
    pub(super) fn full(&self) -> bool {
        !self.failed() && self.backlog.load(Ordering::Acquire) >= WRITE_BACKLOG
    }

    /// A write to the target failed: it closed the connection.
    pub(super) fn failed(&self) -> bool {
        self.failed.load(Ordering::Acquire)
    }

    /// Lets the queued requests go out, for [`CLOSE_WAIT`] at most, then
    /// sends EOF and closes the channel.
    async fn close(self) {
        let TargetWriter { tx, task, .. } = self;
        drop(tx);
        let abort = task.abort_handle();
        if tokio::time::timeout(CLOSE_WAIT, task).await.is_err() {
            abort.abort();
        }
    }
}

/// Passes a target's SFTP bytes to the relay until the channel ends.
async fn read_target(index: usize, mut read: ChannelReadHalf, tx: mpsc::Sender<Event>) {
    loop {
        match read.wait().await {
            Some(ChannelMsg::Data { data }) => {
                if tx.send(Event::Data(index, data)).await.is_err() {
                    return;
                }
            }
            Some(ChannelMsg::Eof | ChannelMsg::Close) | None => break,
            Some(_) => {}
        }
    }
    let _ = tx.send(Event::Closed(index)).await;
}
