//! Logins before streams. While a person is logging in, from their
//! authentication until their first session shows output or ends (at most
//! [`AT_MOST`]), a session streaming bulk output gives way: after each
//! full chunk it passes on it waits [`PAUSE`].
//!
//! On a bastion whose cores one `cat` of a large log keeps busy (the
//! person's client, the target's sshd and the relay share them), a login
//! otherwise waits for CPU at every step of its two handshakes. Measured
//! with bench/ssh.sh's second person on 2 cores (ten logins plus `true`
//! while one session streams log-like text in a pty for 30 s): 2.19x and
//! 2.26x their idle time without this, 1.56x and 1.58x with it, and the
//! stream moved 54.0 MB/s before, 54.6 and 56.1 MB/s after (direct ssh
//! beside it: 1.6x-2.0x). Output a person reads as it comes (echo, a
//! prompt, a screen redraw) comes in pieces far smaller than a chunk and
//! never waits.
//!
//! Only people who authenticated count: a stranger opening connections
//! cannot slow anyone's stream this way. The key exchange before the
//! login gets no such priority (it took 13 ms idle and about 30 ms under
//! the stream).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

/// How long one arrival is counted at most.
pub const AT_MOST: Duration = Duration::from_secs(2);
/// Output passed on in one piece from this size on is a stream's: the
/// relay joins output that queued up behind a slow reader into pieces of
/// up to 32 KiB, and typing never produces one this large.
pub const BULK: usize = 16 * 1024;
/// What a stream waits after each bulk piece while someone logs in (at
/// most ~30 pieces of 32 KiB in the 100 ms a login takes on a busy
/// bastion, with the timer's granularity).
pub const PAUSE: Duration = Duration::from_millis(1);

/// The logins in progress on this node.
#[derive(Debug, Default)]
pub struct Arrivals {
    arriving: AtomicUsize,
}

impl Arrivals {
    /// Someone arrived: counted until [`Arrival::done`], the last clone
    /// is dropped, or [`AT_MOST`] passed. Needs a tokio runtime.
    pub fn arrive(self: &Arc<Self>) -> Arc<Arrival> {
        self.arriving.fetch_add(1, Ordering::Relaxed);
        let arrival = Arc::new(Arrival {
            arrivals: self.clone(),
            counted: AtomicBool::new(true),
        });
        let expires = Arc::downgrade(&arrival);
        tokio::spawn(async move {
            tokio::time::sleep(AT_MOST).await;
            if let Some(arrival) = expires.upgrade() {
                arrival.done();
            }
        });
        arrival
    }

    /// Whether anyone is logging in.
    pub fn any(&self) -> bool {
        self.arriving.load(Ordering::Relaxed) > 0
    }

    /// A relay passed on `len` bytes of output in one piece: if it was a
    /// stream's and someone is logging in, wait a moment.
    pub async fn give_way(&self, len: usize) {
        if len >= BULK && self.any() {
            tokio::time::sleep(PAUSE).await;
        }
    }
}

/// One login in progress ([`Arrivals::arrive`]).
#[derive(Debug)]
pub struct Arrival {
    arrivals: Arc<Arrivals>,
    counted: AtomicBool,
}

impl Arrival {
    /// The person is in (their session relays, or the menu is up): no
    /// longer counted. Idempotent.
    pub fn done(&self) {
        // Called for every piece of a session's output: a load first.
        if self.counted.load(Ordering::Relaxed) && self.counted.swap(false, Ordering::Relaxed) {
            self.arrivals.arriving.fetch_sub(1, Ordering::Relaxed);
        }
    }
}

impl Drop for Arrival {
    fn drop(&mut self) {
        self.done();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn an_arrival_counts_until_done_dropped_or_expired() {
        let arrivals = Arc::new(Arrivals::default());
        assert!(!arrivals.any());

        let first = arrivals.arrive();
        let second = arrivals.arrive();
        assert!(arrivals.any());
        first.done();
        first.done();
        assert!(arrivals.any(), "done twice counts once");
        drop(second);
        assert!(!arrivals.any(), "a dropped arrival no longer counts");
        drop(first);
        assert!(!arrivals.any());

        let lingering = arrivals.arrive();
        tokio::time::sleep(AT_MOST - Duration::from_millis(1)).await;
        assert!(arrivals.any());
        tokio::time::sleep(Duration::from_millis(2)).await;
        assert!(!arrivals.any(), "an arrival counts for AT_MOST at most");
        drop(lingering);
        assert!(!arrivals.any(), "expired then dropped: not taken off twice");
    }

    #[tokio::test(start_paused = true)]
    async fn only_bulk_output_waits_and_only_while_someone_logs_in() {
        let arrivals = Arc::new(Arrivals::default());
        let waited = |len| {
            let arrivals = arrivals.clone();
            async move {
                let before = tokio::time::Instant::now();
                arrivals.give_way(len).await;
                before.elapsed()
            }
        };
        assert_eq!(waited(32 * 1024).await, Duration::ZERO);
        let _arrival = arrivals.arrive();
        assert_eq!(waited(BULK - 1).await, Duration::ZERO, "typing never waits");
        assert!(waited(BULK).await >= PAUSE);
    }
}
