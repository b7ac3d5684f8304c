//! How much work a client that has not logged in can make the bastion do
//! (issue 13, item 4: a password flood from one address made everyone's
//! login 43 times slower and grew the memory by 170 MB for good).
//!
//! Owns the password checks. Each argon2id verification costs tens of
//! milliseconds of CPU and [`super::password::M_COST_KIB`] KiB of memory, so:
//! - at most [`Limits::total`] run at once (the cores), on the blocking pool;
//! - one source gets [`Limits::per_source`] of them at once and at most
//!   [`Limits::per_source_waiting`] more attempts queued behind; an attempt
//!   past that is refused unchecked by the caller: it is not a failed proof,
//!   so it does not count towards lockout, and the client gets the same
//!   constant-delay rejection as for a wrong password;
//! - the checks of one user name run one at a time, so that concurrent
//!   guesses from many sources cannot overshoot the per-user failure limit
//!   (the caller reads the lock state once its turn has come).
//!
//! [`PerSource`] is the counter behind the source limits; the SSH front door
//! uses one to cap the connections a source holds open before logging in.
//! A "source" is an IPv4 address or an IPv6 /64: one host usually owns a
//! whole /64, and counting its addresses one by one would give it 2^64
//! shares.
//!
//! Memory: glibc serves an allocation of argon2's size from a heap once a
//! freed block of that size raised its mmap threshold, and then keeps the
//! pages after the check. The first real gate pins the threshold below
//! argon2's block size, so each check's memory is unmapped when it ends and
//! the resident size returns to where it was after a flood.
//!
//! Must never: hold a database connection or transaction while a check runs
//! (the caller's job, tested in `tests/login.rs`), or see a password outside
//! a [`Secret`].

use std::borrow::Borrow;
use std::collections::HashMap;
use std::hash::Hash;
use std::net::{IpAddr, Ipv6Addr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::password;
use crate::vault::Secret;

/// How many password checks may run at once, and queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// In total: the CPU cores (more would only share the same cores while
    /// each holds its argon2 memory).
    pub total: usize,
    /// For one source at once: half the total (at least one), so that one
    /// address can never take all the hashing capacity from everyone else.
    pub per_source: usize,
    /// Attempts of one source waiting for its turn; past them, refused
    /// unchecked. Enough for a burst of honest logins from one place (an
    /// ansible run with `-k` logs in five at once by default).
    pub per_source_waiting: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        let total = std::thread::available_parallelism().map_or(1, |n| n.get());
        Limits {
            total,
            per_source: (total / 2).max(1),
            per_source_waiting: 8,
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
        IpAddr::V6(v6) => IpAddr::V6(Ipv6Addr::from(u128::from(v6) & !u128::from(u64::MAX))),
    }
}

/// Places per key (a source, a user name): at most `cap` holders at once,
/// of which `turns` at a time may do the work. Only keys with holders are
/// kept, so a spray from many addresses or names leaves nothing behind.
#[derive(Debug)]
pub struct Places<K: Eq + Hash + Clone> {
    cap: usize,
    turns: usize,
    held: Mutex<HashMap<K, Held>>,
}

#[derive(Debug)]
struct Held {
    holders: usize,
    turns: Arc<Semaphore>,
}

/// One place under a key, given back on drop.
#[derive(Debug)]
pub struct Place<K: Eq + Hash + Clone> {
    owner: Arc<Places<K>>,
    key: K,
    turns: Arc<Semaphore>,
}

impl<K: Eq + Hash + Clone> Places<K> {
    pub fn new(cap: usize, turns: usize) -> Arc<Places<K>> {
        Arc::new(Places {
            cap: cap.max(1),
            turns: turns.max(1),
            held: Mutex::new(HashMap::new()),
        })
    }

    /// A place under `key`, or `None` when it already has `cap` holders.
    pub fn try_take(self: &Arc<Self>, key: K) -> Option<Place<K>> {
        // A poisoned lock only means another thread panicked between two
        // integer updates; the map is still consistent.
        let mut held = self.held.lock().unwrap_or_else(|e| e.into_inner());
        let entry = held.entry(key.clone()).or_insert_with(|| Held {
            holders: 0,
            turns: Arc::new(Semaphore::new(self.turns)),
        });
        if entry.holders >= self.cap {
            return None;
        }
        entry.holders += 1;
        Some(Place {
            owner: self.clone(),
            key,
            turns: entry.turns.clone(),
        })
    }

    /// Holders under `key` now.
    pub fn holders<Q>(&self, key: &Q) -> usize
    where
        K: Borrow<Q>,
        Q: Eq + Hash + ?Sized,
    {
        let held = self.held.lock().unwrap_or_else(|e| e.into_inner());
        held.get(key).map_or(0, |h| h.holders)
    }
}

impl<K: Eq + Hash + Clone> Place<K> {
    /// Waits until this holder may do the work (one of `turns` at a time).
    async fn turn(&self) -> Option<OwnedSemaphorePermit> {
        // The semaphore is never closed; `None` would mean it was.
        self.turns.clone().acquire_owned().await.ok()
    }
}

impl<K: Eq + Hash + Clone> Drop for Place<K> {
    fn drop(&mut self) {
        let mut held = self.owner.held.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(h) = held.get_mut(&self.key) {
            h.holders = h.holders.saturating_sub(1);
            if h.holders == 0 {
                held.remove(&self.key);
            }
        }
    }
}

/// Places per source address (IPv4, or IPv6 /64).
#[derive(Debug)]
pub struct PerSource(Arc<Places<IpAddr>>);

impl PerSource {
    pub fn new(cap: usize) -> PerSource {
        PerSource(Places::new(cap, 1))
    }

    /// A place for `ip`'s source, or `None` when it already holds the cap.
    pub fn try_take(&self, ip: IpAddr) -> Option<Place<IpAddr>> {
        self.0.try_take(source_key(ip))
    }

    pub fn held(&self, ip: IpAddr) -> usize {
        self.0.holders(&source_key(ip))
    }
}

/// The password checks of one server. Cheap to clone.
#[derive(Clone)]
pub struct Gate {
    inner: Arc<Inner>,
}

struct Inner {
    cores: Semaphore,
    sources: Arc<Places<IpAddr>>,
    users: Arc<Places<String>>,
    verifier: Verifier,
    /// Checks started (real or dummy), for tests and metrics.
    started: AtomicU64,
}

/// An attempt's places under its source and its user name: see
/// [`Gate::enter`].
pub struct Entry {
    source: Place<IpAddr>,
    user: Place<String>,
}

/// The attempt's turn: while it is held, no other check of the same user
/// name runs, and the source has one of its `per_source` turns.
pub struct Turn {
    _source: Option<OwnedSemaphorePermit>,
    _user: Option<OwnedSemaphorePermit>,
}

impl Entry {
    /// Waits for the source's and then the user's turn (always in this
    /// order, so two attempts can never wait on each other).
    pub async fn turn(&self) -> Turn {
        let source = self.source.turn().await;
        let user = self.user.turn().await;
        Turn {
            _source: source,
            _user: user,
        }
    }
}

impl Gate {
    /// argon2id checks under `limits`.
    pub fn new(limits: Limits) -> Gate {
        crate::alloc::keep_big_blocks_unmapped();
        Gate::with_verifier(limits, argon2_verifier())
    }

    /// Checks made by `verifier` instead of argon2 (tests count and hold them).
    pub fn with_verifier(limits: Limits, verifier: Verifier) -> Gate {
        let per_source = limits.per_source.max(1);
        Gate {
            inner: Arc::new(Inner {
                cores: Semaphore::new(limits.total.max(1)),
                sources: Places::new(
                    per_source.saturating_add(limits.per_source_waiting),
                    per_source,
                ),
                // A user name has no cap of its own: its attempts are
                // already capped per source. One check at a time.
                users: Places::new(usize::MAX, 1),
                verifier,
                started: AtomicU64::new(0),
            }),
        }
    }

    /// A place for one password attempt from `ip` for `user`, or `None` when
    /// the source already has its share running and waiting: refuse the
    /// attempt unchecked.
    pub fn enter(&self, ip: IpAddr, user: &str) -> Option<Entry> {
        let source = self.inner.sources.try_take(source_key(ip))?;
        let user = self.inner.users.try_take(user.to_string())?;
        Some(Entry { source, user })
    }

    /// Checks `password` against `phc` (`None`: the dummy, always false),
    /// waiting for a free core. The caller holds its [`Entry`]'s turn and no
    /// database connection.
    pub async fn verify(
        &self,
        _turn: &Turn,
        password: &Secret<String>,
        phc: Option<String>,
    ) -> bool {
        // The semaphore is never closed; if it were, nothing is checked.
        let Ok(_core) = self.inner.cores.acquire().await else {
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

    /// Attempts of `ip`'s source running or waiting now.
    pub fn in_flight(&self, ip: IpAddr) -> usize {
        self.inner.sources.holders(&source_key(ip))
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
    fn keys_are_forgotten_when_idle() {
        let counter = PerSource::new(3);
        for i in 0..100u8 {
            drop(counter.try_take(IpAddr::from([10, 0, 0, i])).unwrap());
        }
        assert!(counter.0.held.lock().unwrap().is_empty());
        let gate = Gate::with_verifier(Limits::default(), argon2_verifier());
        for i in 0..100u8 {
            drop(gate.enter(IpAddr::from([10, 0, 1, i]), &format!("user{i}")));
        }
        assert!(gate.inner.sources.held.lock().unwrap().is_empty());
        assert!(gate.inner.users.held.lock().unwrap().is_empty());
    }

    #[tokio::test]
    async fn one_turn_per_user_name_and_per_source_share() {
        let limits = Limits {
            total: 8,
            per_source: 2,
            per_source_waiting: 1,
        };
        let gate = Gate::with_verifier(limits, argon2_verifier());
        let a = gate.enter(ip("192.0.2.1"), "alice").unwrap();
        let b = gate.enter(ip("192.0.2.1"), "bob").unwrap();
        let c = gate.enter(ip("192.0.2.1"), "carol").unwrap();
        assert!(
            gate.enter(ip("192.0.2.1"), "dave").is_none(),
            "2 running + 1 waiting"
        );
        assert_eq!(gate.in_flight(ip("192.0.2.1")), 3);
        let _ta = a.turn().await;
        let _tb = b.turn().await;
        // The source's two turns are taken: carol waits.
        let waiting = tokio::time::timeout(std::time::Duration::from_millis(50), c.turn()).await;
        assert!(waiting.is_err());
        // alice from elsewhere waits for alice's turn, bob's name is free.
        let other = gate.enter(ip("192.0.2.9"), "alice").unwrap();
        let waiting =
            tokio::time::timeout(std::time::Duration::from_millis(50), other.turn()).await;
        assert!(waiting.is_err());
        drop(_ta);
        let _t = tokio::time::timeout(std::time::Duration::from_secs(5), other.turn())
            .await
            .expect("alice's turn comes when the other check ends");
    }

    #[test]
    fn default_limits_leave_half_for_everyone_else() {
        let limits = Limits::default();
        assert!(limits.total >= 1);
        assert!(limits.per_source >= 1);
        assert!(limits.per_source <= limits.total.div_ceil(2));
        assert!(limits.per_source + limits.per_source_waiting >= 5);
    }
}
