//! Output the target has already sent, joined before it is relayed.

use bytes::{Bytes, BytesMut};
use russh::ChannelMsg;

use super::TargetEvents;

/// Output joined, at most this many bytes: one packet of OpenSSH's.
pub(super) const JOIN: usize = 32 * 1024;

/// `first` with the output the target has already sent behind it (up to
/// [`JOIN`] bytes), and the message that stopped the join, if one did:
/// a pty hands sshd a few KiB per read, and each piece would otherwise
/// cost a pass through the command tracker, the recorder's queue and a
/// packet (and a write) to the person. Only what has already arrived is
/// joined, so nothing waits for more; the bytes and their order are the
/// target's.
pub(super) fn joined(
    first: Bytes,
    target_read: &mut impl TargetEvents,
) -> (Bytes, Option<Option<ChannelMsg>>) {
    let mut len = first.len();
    let mut behind: Vec<Bytes> = Vec::new();
    let mut held = None;
    while len < JOIN {
        match target_read.ready() {
            Some(Some(ChannelMsg::Data { data })) => {
                len += data.len();
                behind.push(data);
            }
            Some(other) => {
                held = Some(other);
                break;
            }
            None => break,
        }
    }
    if behind.is_empty() {
        return (first, held);
    }
    // Sized to the bytes, not to the limit: a join of two small pieces
    // waiting in the recorder's queue holds no more than they do.
    let mut out = BytesMut::with_capacity(len);
    out.extend_from_slice(&first);
    for piece in &behind {
        out.extend_from_slice(piece);
    }
    (out.freeze(), held)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::VecDeque;

    /// Messages that have all arrived; then the target is gone.
    struct Arrived(VecDeque<ChannelMsg>);

    impl TargetEvents for Arrived {
        async fn next(&mut self) -> Option<ChannelMsg> {
            self.0.pop_front()
        }
    }

    /// Messages that have arrived; then nothing more comes for now.
    struct Waiting(VecDeque<ChannelMsg>);

    impl TargetEvents for Waiting {
        async fn next(&mut self) -> Option<ChannelMsg> {
            match self.0.pop_front() {
                Some(msg) => Some(msg),
                None => std::future::pending().await,
            }
        }
    }

    fn data(bytes: &[u8]) -> ChannelMsg {
        ChannelMsg::Data {
            data: Bytes::copy_from_slice(bytes),
        }
    }

    #[test]
    fn output_that_has_arrived_is_joined_in_order_up_to_what_stops_it() {
        let mut target = Waiting(VecDeque::from([
            data(b"two "),
            data(b"three\r\n"),
            ChannelMsg::ExitStatus { exit_status: 3 },
            data(b"after"),
        ]));
        let (out, held) = joined(Bytes::from_static(b"one "), &mut target);
        assert_eq!(&out[..], b"one two three\r\n");
        assert!(matches!(
            held,
            Some(Some(ChannelMsg::ExitStatus { exit_status: 3 }))
        ));
        assert_eq!(target.0.len(), 1, "the output after the status is left");

        let (out, held) = joined(Bytes::from_static(b"x"), &mut Waiting(VecDeque::new()));
        assert_eq!(&out[..], b"x");
        assert!(held.is_none(), "nothing waited for: nothing held");

        let mut target = Waiting(VecDeque::from([data(b"bc")]));
        let (out, _) = joined(Bytes::from_static(b"a"), &mut target);
        assert_eq!(out.len(), 3);

        let (_, held) = joined(Bytes::from_static(b"x"), &mut Arrived(VecDeque::new()));
        assert!(matches!(held, Some(None)), "the target's end is held");
    }

    #[test]
    fn a_join_stops_once_it_holds_a_packet() {
        let piece = vec![b'a'; 10_000];
        let mut target = Waiting((0..10).map(|_| data(&piece)).collect());
        let mut sizes = Vec::new();
        let mut all = 0;
        while let Some(ChannelMsg::Data { data }) = target.0.pop_front() {
            let (out, held) = joined(data, &mut target);
            assert!(held.is_none());
            sizes.push(out.len());
            all += out.len();
        }
        assert_eq!(all, 100_000, "every byte once");
        assert_eq!(sizes, [40_000, 40_000, 20_000]);
        assert!(sizes.iter().all(|&n| n < JOIN + piece.len()));
    }
}
