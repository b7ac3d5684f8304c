//! The target's end of a session as the relay drives it: a channel on an
//! SSH target, or a program the bastion runs in a pty of its own
//! ([`super::pty`]). The relay (`crate::relay::pump`) is written against
//! these two traits only.

use bytes::Bytes;
use russh::client::Msg as ClientMsg;
use russh::{ChannelMsg, ChannelReadHalf, ChannelWriteHalf};

/// The target's end of a relayed session, as the pump writes to it: a
/// channel on an SSH target, or a program the bastion runs in a pty of its
/// own (a database client, [`super::pty`]). Errors are the end of the
/// target; the pump needs no more than that.
pub trait TargetEnd: Sync {
    fn send(&self, data: Bytes) -> impl Future<Output = Result<(), ()>> + Send;
    fn resize(
        &self,
        cols: u32,
        rows: u32,
        pix_width: u32,
        pix_height: u32,
    ) -> impl Future<Output = ()> + Send;
    fn signal(&self, signal: russh::Sig) -> impl Future<Output = ()> + Send;
    fn eof(&self) -> impl Future<Output = ()> + Send;
}

/// What the target sends, as the pump reads it: channel messages (data,
/// exit status, EOF, close); `None` once it is gone.
pub trait TargetEvents: Send {
    fn next(&mut self) -> impl Future<Output = Option<ChannelMsg>> + Send;

    /// The next message if it has already come, without waiting: `None`
    /// when nothing is waiting, `Some(None)` once the target is gone. The
    /// implementations' `next` is cancel-safe (a channel's receive), so a
    /// poll that finds nothing loses nothing.
    fn ready(&mut self) -> Option<Option<ChannelMsg>> {
        let mut next = std::pin::pin!(self.next());
        let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
        match next.as_mut().poll(&mut cx) {
            std::task::Poll::Ready(msg) => Some(msg),
            std::task::Poll::Pending => None,
        }
    }
}

impl TargetEnd for ChannelWriteHalf<ClientMsg> {
    async fn send(&self, data: Bytes) -> Result<(), ()> {
        self.data_bytes(data).await.map_err(|_| ())
    }

    async fn resize(&self, cols: u32, rows: u32, pix_width: u32, pix_height: u32) {
        let _ = self.window_change(cols, rows, pix_width, pix_height).await;
    }

    async fn signal(&self, signal: russh::Sig) {
        let _ = ChannelWriteHalf::signal(self, signal).await;
    }

    async fn eof(&self) {
        let _ = ChannelWriteHalf::eof(self).await;
    }
}

impl TargetEvents for ChannelReadHalf {
    async fn next(&mut self) -> Option<ChannelMsg> {
        self.wait().await
    }
}
