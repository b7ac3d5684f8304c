//! A read-ahead buffer under an SSH connection: russh reads each packet
//! as two exact reads (the length, then the rest), and on a bare socket
//! each is a `recv` of its own, often more than two when the rest has not
//! all arrived. Through [`ReadAhead`] one `recv` takes whatever the kernel
//! holds, up to [`CAPACITY`]: a stream of text from a target went from 134
//! thousand `recv` calls per GB to 18 thousand, and rampart's CPU from 3.40
//! to 3.12 s per GB relayed (`bench/ssh.sh`, `seq` without a pty).
//!
//! The buffer exists only while data flows: after a fill smaller than
//! [`KEEP_BELOW`] (keystrokes, a prompt, a window adjust) is read out it is
//! given back, so an idle or interactive connection holds none. Writes go
//! straight to the socket.
//!
//! After such a small fill the socket also acknowledges at once
//! (`TCP_QUICKACK`): a peer that does not set `TCP_NODELAY` (OpenSSH's
//! `ssh` and `sshd` outside interactive sessions) holds its second small
//! packet until the first is acknowledged, and a delayed acknowledgement
//! costs 40 ms. Every login through rampart waited that long for the
//! target's answer to its channel open (sshd sends `hostkeys-00` just
//! before it, which asks for no reply), and about one in three waited as
//! long again for the person's client during the handshake.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

/// The most one `recv` takes: two of OpenSSH's 32 KiB data packets.
pub const CAPACITY: usize = 64 * 1024;
/// A fill smaller than this gives the buffer back once it has been read.
const KEEP_BELOW: usize = 4 * 1024;

/// A socket (or any stream) read through a buffer that is there only while
/// data streams.
#[derive(Debug)]
pub struct ReadAhead<S> {
    inner: S,
    /// Empty when given back.
    buf: Vec<u8>,
    /// `buf[pos..end]` is read from the socket and not yet taken.
    pos: usize,
    end: usize,
}

impl<S> ReadAhead<S> {
    pub fn new(inner: S) -> Self {
        ReadAhead {
            inner,
            buf: Vec::new(),
            pos: 0,
            end: 0,
        }
    }

    /// Bytes of buffer held now (0 or [`CAPACITY`]).
    #[cfg(test)]
    fn held(&self) -> usize {
        self.buf.len()
    }
}

/// A stream that can be told to acknowledge what it received at once.
pub trait AckNow {
    fn ack_now(&self) {}
}

impl AckNow for TcpStream {
    fn ack_now(&self) {
        // Only the acknowledgement's timing is at stake: a socket that
        // refuses it keeps the kernel's delayed acknowledgements.
        let _ = socket2::SockRef::from(self).set_tcp_quickack(true);
    }
}

#[cfg(test)]
impl AckNow for tokio::io::DuplexStream {}

impl<S: AsyncRead + AckNow + Unpin> AsyncRead for ReadAhead<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        out: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.pos == this.end {
            // A read as large as the buffer gains nothing from it.
            if out.remaining() >= CAPACITY {
                return Pin::new(&mut this.inner).poll_read(cx, out);
            }
            if this.buf.is_empty() {
                this.buf = vec![0; CAPACITY];
            }
            let mut fill = ReadBuf::new(&mut this.buf);
            ready!(Pin::new(&mut this.inner).poll_read(cx, &mut fill))?;
            this.pos = 0;
            this.end = fill.filled().len();
            // End of stream: nothing put in `out` says so.
            if this.end > 0 && this.end < KEEP_BELOW {
                this.inner.ack_now();
            }
        }
        let n = out.remaining().min(this.end - this.pos);
        if let Some(ready) = this.buf.get(this.pos..this.pos + n) {
            out.put_slice(ready);
        }
        this.pos += n;
        if this.pos == this.end && this.end < KEEP_BELOW {
            this.buf = Vec::new();
            this.pos = 0;
            this.end = 0;
        }
        Poll::Ready(Ok(()))
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for ReadAhead<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, data)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::{AckNow, CAPACITY, ReadAhead};
    use std::pin::Pin;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::task::{Context, Poll};
    use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt, DuplexStream, ReadBuf};

    /// A stream that counts the immediate acknowledgements asked of it.
    struct Counting {
        inner: DuplexStream,
        acks: Arc<AtomicUsize>,
    }

    impl AckNow for Counting {
        fn ack_now(&self) {
            self.acks.fetch_add(1, Ordering::Relaxed);
        }
    }

    impl AsyncRead for Counting {
        fn poll_read(
            self: Pin<&mut Self>,
            cx: &mut Context<'_>,
            out: &mut ReadBuf<'_>,
        ) -> Poll<std::io::Result<()>> {
            Pin::new(&mut self.get_mut().inner).poll_read(cx, out)
        }
    }

    #[tokio::test]
    async fn small_reads_are_acknowledged_at_once_and_a_stream_is_not() {
        let (mut peer, inner) = tokio::io::duplex(256 * 1024);
        let acks = Arc::new(AtomicUsize::new(0));
        let mut ours = ReadAhead::new(Counting {
            inner,
            acks: acks.clone(),
        });
        // A handshake packet: acknowledged as soon as it is read.
        peer.write_all(&[1u8; 48]).await.unwrap();
        let mut packet = [0u8; 48];
        ours.read_exact(&mut packet).await.unwrap();
        assert_eq!(acks.load(Ordering::Relaxed), 1);
        // Bulk data: the kernel's own acknowledgements are left alone.
        peer.write_all(&vec![2u8; 60_000]).await.unwrap();
        let mut bulk = vec![0u8; 60_000];
        ours.read_exact(&mut bulk).await.unwrap();
        assert_eq!(acks.load(Ordering::Relaxed), 1);
        // End of stream asks for nothing.
        drop(peer);
        let mut rest = Vec::new();
        ours.read_to_end(&mut rest).await.unwrap();
        assert_eq!(acks.load(Ordering::Relaxed), 1);
    }

    #[tokio::test]
    async fn packets_read_as_length_then_body_arrive_whole_and_in_order() {
        let (mut peer, ours) = tokio::io::duplex(256 * 1024);
        let mut ours = ReadAhead::new(ours);
        // Packets as russh reads them: a 4-byte length, then the body;
        // bodies of every size, some larger than the buffer.
        let sizes = [1usize, 5, 4096, 32_768, 70_000, 3, 65_536, 200_000, 17];
        let sent: Vec<Vec<u8>> = sizes
            .iter()
            .enumerate()
            .map(|(k, &n)| (0..n).map(|i| (i * 31 + k) as u8).collect())
            .collect();
        let writer = {
            let sent = sent.clone();
            tokio::spawn(async move {
                for body in &sent {
                    peer.write_all(&(body.len() as u32).to_be_bytes())
                        .await
                        .unwrap();
                    peer.write_all(body).await.unwrap();
                }
                peer.shutdown().await.unwrap();
                peer
            })
        };
        for body in &sent {
            let mut len = [0u8; 4];
            ours.read_exact(&mut len).await.unwrap();
            let mut got = vec![0u8; u32::from_be_bytes(len) as usize];
            ours.read_exact(&mut got).await.unwrap();
            assert_eq!(&got, body);
        }
        let mut rest = Vec::new();
        ours.read_to_end(&mut rest).await.unwrap();
        assert!(rest.is_empty(), "nothing after the last packet");
        drop(writer.await.unwrap());
    }

    #[tokio::test]
    async fn the_buffer_is_given_back_after_a_small_read_and_kept_while_data_streams() {
        let (mut peer, ours) = tokio::io::duplex(256 * 1024);
        let mut ours = ReadAhead::new(ours);
        assert_eq!(ours.held(), 0, "nothing before the first read");
        // A keystroke: read out, the buffer goes.
        peer.write_all(b"x").await.unwrap();
        let mut one = [0u8; 1];
        ours.read_exact(&mut one).await.unwrap();
        assert_eq!(ours.held(), 0, "an interactive read holds no buffer");
        // A stream: part of a large fill is still to be read.
        peer.write_all(&vec![7u8; 50_000]).await.unwrap();
        let mut head = [0u8; 4];
        ours.read_exact(&mut head).await.unwrap();
        assert_eq!(ours.held(), CAPACITY);
        let mut body = vec![0u8; 49_996];
        ours.read_exact(&mut body).await.unwrap();
        assert!(body.iter().all(|&b| b == 7));
        // Writes go through to the peer.
        ours.write_all(b"ack").await.unwrap();
        let mut ack = [0u8; 3];
        peer.read_exact(&mut ack).await.unwrap();
        assert_eq!(&ack, b"ack");
    }
}
