//! What the SFTP relay sends to the person, queued for a writer of its own,
//! so that the relay never waits on the person's connection.
//!
//! russh widens the person's window as their data arrives, not as the
//! relay takes it: what bounds an upload is the channel's queue
//! ([`crate::upstream::CHANNEL_QUEUE`]), and when it is full russh stops
//! the whole connection, the relay's own replies to the person included.
//! A relay that waited on those replies would then stop taking in the
//! upload that would unblock them: a hang, reached when a client keeps
//! more in flight than the relay's budget and a target is slower than the
//! person. With the replies queued here the relay goes on taking in
//! requests as its targets allow, and the connection moves again.
//!
//! The queue is bounded by the relay, not here: it stops taking the
//! targets' replies past [`super::PERSON_BACKLOG`] bytes waiting for the
//! person, and the person's own requests well past that.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use bytes::Bytes;
use russh::ChannelWriteHalf;
use russh::server::Msg as ServerMsg;
use tokio::sync::{Notify, mpsc};

/// The relay's end: pushes never wait.
pub struct Outbox {
    tx: Option<mpsc::UnboundedSender<Bytes>>,
    queued: Arc<AtomicUsize>,
    sent: Arc<Notify>,
}

/// The writer's end, run beside the relay.
pub struct Sending {
    rx: mpsc::UnboundedReceiver<Bytes>,
    queued: Arc<AtomicUsize>,
    sent: Arc<Notify>,
}

pub fn outbox() -> (Outbox, Sending) {
    let (tx, rx) = mpsc::unbounded_channel();
    let queued = Arc::new(AtomicUsize::new(0));
    let sent = Arc::new(Notify::new());
    (
        Outbox {
            tx: Some(tx),
            queued: queued.clone(),
            sent: sent.clone(),
        },
        Sending { rx, queued, sent },
    )
}

impl Outbox {
    /// Queues `data` for the person. After [`Outbox::close`], or once the
    /// writer has failed, it is dropped: the person's channel is gone.
    pub fn push(&self, data: Bytes) {
        let Some(tx) = &self.tx else {
            return;
        };
        let len = data.len();
        self.queued.fetch_add(len, Ordering::AcqRel);
        if tx.send(data).is_err() {
            self.queued.fetch_sub(len, Ordering::AcqRel);
        }
    }

    /// Bytes queued and not yet taken by the person's channel.
    pub fn queued(&self) -> usize {
        self.queued.load(Ordering::Acquire)
    }

    /// Told each time the writer has handed a piece to the person's channel.
    pub fn sent(&self) -> Arc<Notify> {
        self.sent.clone()
    }

    /// No more pieces: the writer ends once it has sent what is queued.
    pub fn close(&mut self) {
        self.tx = None;
    }
}

/// Where the writer sends: the person's channel.
pub trait Sink {
    fn send(&self, data: Bytes) -> impl Future<Output = Result<(), ()>>;
}

impl Sink for ChannelWriteHalf<ServerMsg> {
    async fn send(&self, data: Bytes) -> Result<(), ()> {
        self.data_bytes(data).await.map_err(|_| ())
    }
}

impl Sending {
    /// Sends every piece in order until the outbox is closed and empty;
    /// `Err` when the person's channel failed (what was still queued is
    /// dropped).
    pub async fn run(mut self, sink: &impl Sink) -> Result<(), ()> {
        while let Some(data) = self.rx.recv().await {
            let len = data.len();
            let sent = sink.send(data).await;
            self.queued.fetch_sub(len, Ordering::AcqRel);
            self.sent.notify_one();
            if sent.is_err() {
                self.rx.close();
                return Err(());
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::{Sink, outbox};
    use bytes::Bytes;
    use std::sync::Mutex;
    use tokio::sync::Semaphore;

    /// A person's channel that takes one piece per permit.
    struct Stalled {
        open: Semaphore,
        got: Mutex<Vec<Bytes>>,
        fail: bool,
    }

    impl Sink for Stalled {
        async fn send(&self, data: Bytes) -> Result<(), ()> {
            self.open.acquire().await.map_err(|_| ())?.forget();
            if self.fail {
                return Err(());
            }
            self.got.lock().unwrap().push(data);
            Ok(())
        }
    }

    fn stalled(fail: bool) -> Stalled {
        Stalled {
            open: Semaphore::new(0),
            got: Mutex::new(Vec::new()),
            fail,
        }
    }

    /// The relay queues answers while the person's channel takes nothing,
    /// and they go out whole and in order once it moves, before the writer
    /// ends.
    #[tokio::test]
    async fn pushes_never_wait_and_go_out_in_order() {
        let (mut out, sending) = outbox();
        let sink = stalled(false);
        let writer = sending.run(&sink);
        tokio::pin!(writer);
        for i in 0..100u8 {
            out.push(Bytes::from(vec![i; 1000]));
        }
        // The writer holds the first piece, waiting on the channel.
        assert!(
            tokio::time::timeout(std::time::Duration::from_millis(50), &mut writer)
                .await
                .is_err()
        );
        assert_eq!(out.queued(), 100_000);
        let sent = out.sent();
        sink.open.add_permits(10);
        tokio::time::timeout(std::time::Duration::from_secs(5), async {
            while out.queued() > 90_000 {
                tokio::select! {
                    _ = &mut writer => unreachable!("the outbox is open"),
                    () = sent.notified() => {}
                }
            }
        })
        .await
        .expect("the writer sends what the channel takes");
        out.close();
        sink.open.add_permits(90);
        assert_eq!(writer.await, Ok(()));
        assert_eq!(out.queued(), 0);
        let got = sink.got.lock().unwrap();
        assert_eq!(got.len(), 100);
        assert!(
            got.iter()
                .enumerate()
                .all(|(i, b)| b[..] == [i as u8; 1000])
        );
    }

    /// A failed channel ends the writer with an error; what the relay
    /// pushes after that is dropped, not counted.
    #[tokio::test]
    async fn a_failed_channel_ends_the_writer() {
        let (out, sending) = outbox();
        let sink = stalled(true);
        sink.open.add_permits(1);
        out.push(Bytes::from_static(b"answer"));
        assert_eq!(sending.run(&sink).await, Err(()));
        out.push(Bytes::from_static(b"more"));
        assert_eq!(out.queued(), 0);
    }
}
