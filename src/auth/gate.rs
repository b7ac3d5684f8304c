//! How much work a client that has not logged in can make the bastion do
//! (issue 13, item 4: a password flood from one address slowed everyone's
//! login 43 times and grew the memory by 170 MB).
//!
//! Owns the password checks: each argon2id verification costs tens of
//! milliseconds of CPU and [`super::password::M_COST_KIB`] of memory, so they
//! run on the blocking pool, at most [`Limits::total`] at once (the cores),
//! and at most [`Limits::per_source`] at once for one source. A check over
//! the source's share is not made at all: the caller refuses it unchecked
//! (it is not a failed proof, so it does not count towards lockout), and the
//! client gets the same constant-delay rejection as for a wrong password.
//! [`PerSource`] is the counter behind that share, also used by the SSH front
//! door to cap the connections one source holds open before logging in.
//!
//! A "source" is an IPv4 address or an IPv6 /64: one host usually owns a
//! whole /64, and counting its addresses one by one would give it 2^64
//! shares.
//!
//! Bounding the concurrency also bounds the memory: at most `total` argon2
//! blocks exist at once, instead of one per flooding connection.
//!
//! Must never: hold a database connection or transaction while a check runs
//! (the caller's job, tested in `tests/login.rs`), or see a password outside
//! a [`Secret`].

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::Semaphore;

use super::password;
use crate::vault::Secret;

/// How many password checks may run at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// In total: the CPU cores (more only queue for the same cores while
    /// each holds its argon2 memory).
    pub total: usize,
    /// From one source: half the total (at least one), so that one address
    /// can never take all the hashing capacity from everyone else.
    pub per_source: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        let total = std::thread::available_parallelism().map_or(1, |n| n.get());
        Limits {
            total,
            per_source: (total / 2).max(1),
        }
    }
}

/// Checks a password against a stored PHC string, or, given `None`, spends
/// the same work against a dummy hash and fails (unknown user, no password).
/// Runs on a blocking thread.
pub type Verifier = Arc<dyn Fn(&Secret<String>, Option<&str>) -> bool + Send + Sync>;

fn argon2_verifier() -> Verifier {
    Arc::new(|password: &Secret<String>, phc: Option<&str>| match phc {
        Some(phc) => password::verify_password(password, phc),
        None => {
            password::verify_against_dummy(password);
            false
        }
    })
}

/// The key of a source: the address, or its /64 for IPv6.
fn source_key(ip: IpAddr) -> IpAddr {
    match ip.to_canonical() {
        IpAddr::V4(v4) => IpAddr::V4(v4),
        IpAddr::V6(v6) => {
            let bits = u128::from(v6) & !((1u128 << 64) - 1);
            IpAddr::V6(Ipv6Addr::from(bits))
        }
    }
}

/// Counts something each source holds (checks running, connections not yet
/// logged in) and refuses more than `cap` at once for one source.
#[derive(Debug)]
pub struct PerSource {
    cap: usize,
    held: Mutex<HashMap<IpAddr, usize>>,
}

/// One place in a [`PerSource`] count, given back on drop.
#[derive(Debug)]
pub struct SourceSlot {
    owner: Arc<PerSource>,
    key: IpAddr,
}

impl PerSource {
    pub fn new(cap: usize) -> Arc<PerSource> {
        Arc::new(PerSource {
            cap: cap.max(1),
            held: Mutex::new(HashMap::new()),
        })
    }

    /// A place for `ip`'s source, or `None` when it already holds `cap`.
    pub fn try_take(self: &Arc<Self>, ip: IpAddr) -> Option<SourceSlot> {
        let key = source_key(ip);
        // A poisoned lock only means another thread panicked between two
        // integer updates; the map is still consistent.
        let mut held = self.held.lock().unwrap_or_else(|e| e.into_inner());
        let n = held.entry(key).or_insert(0);
        if *n >= self.cap {
            return None;
        }
        *n += 1;
        Some(SourceSlot {
            owner: self.clone(),
            key,
        })
    }

    /// Places `ip`'s source holds now.
    pub fn held(&self, ip: IpAddr) -> usize {
        let held = self.held.lock().unwrap_or_else(|e| e.into_inner());
        held.get(&source_key(ip)).copied().unwrap_or(0)
    }
}

impl Drop for SourceSlot {
    fn drop(&mut self) {
        let mut held = self.owner.held.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = held.get_mut(&self.key) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                // Forget the source: the map holds only sources with work in
                // flight, so a spray from many addresses leaves nothing behind.
                held.remove(&self.key);
            }
        }
    }
}

/// The password checks of one server. Cheap to clone.
#[derive(Clone)]
pub struct Gate {
    inner: Arc<Inner>,
}

struct Inner {
    hashing: Semaphore,
    sources: Arc<PerSource>,
    verifier: Verifier,
    /// Checks started (real or dummy), for tests and metrics.
    started: AtomicU64,
}

impl Gate {
    /// argon2id checks under `limits`.
    pub fn new(limits: Limits) -> Gate {
        Gate::with_verifier(limits, argon2_verifier())
    }

    /// Checks made by `verifier` instead of argon2 (tests count and hold them).
    pub fn with_verifier(limits: Limits, verifier: Verifier) -> Gate {
        Gate {
            inner: Arc::new(Inner {
                hashing: Semaphore::new(limits.total.max(1)),
                sources: PerSource::new(limits.per_source),
                verifier,
                started: AtomicU64::new(0),
            }),
        }
    }

    /// A place for one check from `ip`, or `None` when its source already
    /// has its share running or waiting: refuse the attempt unchecked.
    pub fn try_source(&self, ip: IpAddr) -> Option<SourceSlot> {
        self.inner.sources.try_take(ip)
    }

    /// Checks `password` against `phc` (`None`: the dummy, always false),
    /// waiting for a free core. The caller holds a [`Self::try_source`] place
    /// for the whole check, and no database connection.
    pub async fn verify(&self, password: &Secret<String>, phc: Option<String>) -> bool {
        // The semaphore is never closed; a failure would mean it was, and
        // then nothing is checked.
        let Ok(_permit) = self.inner.hashing.acquire().await else {
            return false;
        };
        self.inner.started.fetch_add(1, Ordering::Relaxed);
        let (password, verifier) = (password.clone(), self.inner.verifier.clone());
        tokio::task::spawn_blocking(move || verifier(&password, phc.as_deref()))
            .await
            .unwrap_or(false)
    }

    /// Password checks started since the server started.
    pub fn checks_started(&self) -> u64 {
        self.inner.started.load(Ordering::Relaxed)
    }

    /// Checks running or waiting for `ip`'s source now.
    pub fn in_flight(&self, ip: IpAddr) -> usize {
        self.inner.sources.held(ip)
    }
}

impl std::fmt::Debug for Gate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gate")
            .field("checks_started", &self.checks_started())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn a_source_gets_its_cap_and_no_more_and_places_come_back() {
        let counter = PerSource::new(2);
        let a = counter.try_take(ip("192.0.2.1")).unwrap();
        let _b = counter.try_take(ip("192.0.2.1")).unwrap();
        assert!(counter.try_take(ip("192.0.2.1")).is_none());
        // Another source is not affected.
        assert!(counter.try_take(ip("192.0.2.2")).is_some());
        drop(a);
        assert_eq!(counter.held(ip("192.0.2.1")), 1);
        assert!(counter.try_take(ip("192.0.2.1")).is_some());
    }

    #[test]
    fn an_ipv6_64_is_one_source_and_mapped_ipv4_is_the_ipv4() {
        let counter = PerSource::new(1);
        let _a = counter.try_take(ip("2001:db8:1:2::1")).unwrap();
        assert!(counter.try_take(ip("2001:db8:1:2:ffff::9")).is_none());
        assert!(counter.try_take(ip("2001:db8:1:3::1")).is_some());
        let _v4 = counter.try_take(ip("192.0.2.7")).unwrap();
        assert!(counter.try_take(ip("::ffff:192.0.2.7")).is_none());
    }

    #[test]
    fn forgotten_when_idle() {
        let counter = PerSource::new(3);
        for i in 0..100u8 {
            drop(counter.try_take(IpAddr::from([10, 0, 0, i])).unwrap());
        }
        assert!(counter.held.lock().unwrap().is_empty());
    }

    #[test]
    fn default_limits_leave_half_for_everyone_else() {
        let limits = Limits::default();
        assert!(limits.total >= 1);
        assert!(limits.per_source >= 1);
        assert!(limits.per_source <= limits.total.div_ceil(2));
    }
}
