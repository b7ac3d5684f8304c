//! The login decision against a real (in-memory) database with a clock moved
//! by hand: lockout per user and per address, what counts as a failure,
//! TOTP reuse, disabled/expired users, login ACLs, and the login log.

use std::net::IpAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use jiff::SignedDuration;
use rampart::audit::Via;
use rampart::auth::gate::{Gate, Limits, Verifier};
use rampart::auth::login::{Authenticator, LoginError, MfaPolicy, Next, Proof, Refusal};
use rampart::auth::{LockoutPolicy, parse_public_key_line, password, totp};
use rampart::clock::{Clock, ManualClock};
use rampart::model::{AclAction, Role};
use rampart::ops::{AclSpec, Caller, Ops, OpsSettings, UserEdit, UserSpec};
use rampart::store::Store;
use rampart::store::audit_log::{self, Query};
use rampart::vault::{MasterKey, Secret, Vault};

const KEY: &str =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAILM+rvN+ot98qgEN796jTiQfZfG1KaT0PtFDJ/XFSqti bob@laptop";
const GOOD: &str = "correct-horse-battery-staple";

struct World {
    clock: Arc<ManualClock>,
    ops: Ops,
    auth: Authenticator,
    store: Store,
    probe: Arc<Probe>,
}

/// Password checks at most at once in these tests, in total and per
/// source, and attempts of one source waiting for their turn.
const LIMITS: Limits = Limits {
    total: 4,
    per_source: 2,
    per_source_waiting: 1,
};

/// Stands in for the hasher: counts the password checks it is asked for and,
/// while held, keeps them waiting (a real argon2 check of the password
/// afterwards, so the outcome is the real one).
#[derive(Default)]
struct Probe {
    calls: AtomicUsize,
    held: Mutex<bool>,
    released: Condvar,
}

struct Held(Arc<Probe>);

impl Drop for Held {
    fn drop(&mut self) {
        *self.0.held.lock().unwrap_or_else(|e| e.into_inner()) = false;
        self.0.released.notify_all();
    }
}

impl Probe {
    fn verifier(self: &Arc<Self>) -> Verifier {
        let probe = self.clone();
        Arc::new(move |password: &Secret<String>, phc: Option<&str>| {
            probe.calls.fetch_add(1, Ordering::SeqCst);
            let mut held = probe.held.lock().unwrap();
            while *held {
                held = probe.released.wait(held).unwrap();
            }
            drop(held);
            phc.is_some_and(|phc| password::verify_password(password, phc))
        })
    }

    fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }

    /// Holds every check until the guard is dropped (on a failed assertion
    /// too, so that no blocking thread is left waiting).
    fn hold(self: &Arc<Self>) -> Held {
        *self.held.lock().unwrap() = true;
        Held(self.clone())
    }

    /// Waits until `n` checks have started.
    async fn started(&self, n: usize) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while self.calls() < n {
            assert!(
                tokio::time::Instant::now() < deadline,
                "{} password checks started, expected {n}",
                self.calls()
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

fn admin() -> Caller {
    Caller {
        name: "root".into(),
        role: Role::Admin,
        via: Via::Cli,
    }
}

fn pw(s: &str) -> Secret<String> {
    Secret::new(s.to_string())
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

async fn world(mfa: MfaPolicy) -> World {
    let store = Store::in_memory().await.unwrap();
    let clock = Arc::new(ManualClock::new("2026-11-23T09:00:00Z".parse().unwrap()));
    let vault = Vault::new(MasterKey::generate());
    let ops = Ops::new(
        store.clone(),
        Some(vault.clone()),
        clock.clone(),
        OpsSettings::default(),
    );
    let policy = LockoutPolicy {
        max_failures_per_user: 3,
        max_failures_per_address: 5,
        window: SignedDuration::from_mins(10),
        lockout: SignedDuration::from_mins(15),
    };
    let probe = Arc::new(Probe::default());
    let auth = Authenticator::new(
        store.clone(),
        Some(vault),
        clock.clone(),
        policy,
        mfa,
        jiff::tz::TimeZone::UTC,
    )
    .with_gate(Gate::with_verifier(LIMITS, probe.verifier()));
    for name in ["alice", "carol", "dave", "erin", "frank", "grace"] {
        ops.user_add(
            &admin(),
            UserSpec {
                name: name.into(),
                password: Some(pw(GOOD)),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    }
    ops.user_add(
        &admin(),
        UserSpec {
            name: "bob".into(),
            keys: vec![KEY.into()],
            ..Default::default()
        },
    )
    .await
    .unwrap();
    World {
        clock,
        ops,
        auth,
        store,
        probe,
    }
}

impl World {
    async fn password(&self, user: &str, password: &str, from: &str) -> Result<Next, LoginError> {
        self.auth
            .first_factor(user, Proof::Password(&pw(password)), ip(from))
            .await
            .map(|a| a.next)
    }

    async fn logins(&self) -> Vec<audit_log::LoginRow> {
        let mut conn = self.store.conn().await.unwrap();
        let mut rows = audit_log::logins(&mut conn, &Query::default())
            .await
            .unwrap();
        rows.reverse();
        rows
    }
}

fn refusal(r: Result<Next, LoginError>) -> Refusal {
    match r {
        Err(LoginError::Refused(refusal)) => refusal,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[tokio::test]
async fn a_user_is_locked_after_max_failures_and_unlocked_by_time() {
    let w = world(MfaPolicy::Optional).await;
    for _ in 0..2 {
        assert_eq!(
            refusal(w.password("alice", "wrong", "10.0.0.1").await),
            Refusal::WrongProof
        );
    }
    // Two failures of three: the right password still works and resets the count.
    assert_eq!(
        w.password("alice", GOOD, "10.0.0.1").await.unwrap(),
        Next::Done
    );
    for _ in 0..3 {
        assert_eq!(
            refusal(w.password("alice", "wrong", "10.0.0.2").await),
            Refusal::WrongProof
        );
    }
    // Locked: even the right password is refused, without being checked.
    assert!(matches!(
        refusal(w.password("alice", GOOD, "10.0.0.3").await),
        Refusal::Locked { scope: "user", .. }
    ));
    let rows = w.logins().await;
    let last_failed = rows.iter().rfind(|r| r.result == "failed").unwrap();
    assert!(
        last_failed.reason.contains("user locked"),
        "{}",
        last_failed.reason
    );
    assert_eq!(rows.last().unwrap().result, "denied");

    w.clock.advance(SignedDuration::from_mins(14));
    assert!(matches!(
        refusal(w.password("alice", GOOD, "10.0.0.3").await),
        Refusal::Locked { .. }
    ));
    w.clock.advance(SignedDuration::from_mins(2));
    assert_eq!(
        w.password("alice", GOOD, "10.0.0.3").await.unwrap(),
        Next::Done
    );
}

#[tokio::test]
async fn failures_spread_beyond_the_window_never_lock() {
    let w = world(MfaPolicy::Optional).await;
    for _ in 0..6 {
        assert_eq!(
            refusal(w.password("alice", "wrong", "10.0.0.1").await),
            Refusal::WrongProof
        );
        w.clock.advance(SignedDuration::from_mins(6));
        assert_eq!(
            refusal(w.password("alice", "wrong", "10.0.0.9").await),
            Refusal::WrongProof
        );
        w.clock.advance(SignedDuration::from_mins(6));
    }
    assert_eq!(
        w.password("alice", GOOD, "10.0.0.1").await.unwrap(),
        Next::Done
    );
}

#[tokio::test]
async fn spraying_from_one_address_locks_the_address_not_the_users() {
    let w = world(MfaPolicy::Optional).await;
    // One wrong password each for five users (and one unknown name).
    for user in ["alice", "carol", "dave", "erin", "nosuchuser"] {
        assert_eq!(
            refusal(w.password(user, "Winter2026!", "203.0.113.7").await),
            Refusal::WrongProof
        );
    }
    // The address is locked now, for every user, right password or not.
    assert!(matches!(
        refusal(w.password("frank", GOOD, "203.0.113.7").await),
        Refusal::Locked {
            scope: "address",
            ..
        }
    ));
    // The same users from elsewhere are fine.
    assert_eq!(
        w.password("alice", GOOD, "10.0.0.1").await.unwrap(),
        Next::Done
    );
    let rows = w.logins().await;
    assert!(
        rows.iter()
            .any(|r| r.reason.contains("source address locked"))
    );
    assert!(
        rows.iter()
            .any(|r| r.user == "nosuchuser" && r.reason.starts_with("unknown user"))
    );
}

#[tokio::test]
async fn only_failed_proofs_count() {
    let w = world(MfaPolicy::Optional).await;
    let key = parse_public_key_line(KEY).unwrap().key;
    let other = parse_public_key_line(
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIEcFdmhnkf5eA+uIKTBvnfZe4xV8iOGvvHoXwEyRTVsk x",
    )
    .unwrap()
    .key;
    // A client offering keys it holds, before any signature: never a failure.
    for _ in 0..10 {
        assert!(!w.auth.key_is_registered("bob", &other).await.unwrap());
    }
    assert!(w.auth.key_is_registered("bob", &key).await.unwrap());
    let accepted = w
        .auth
        .first_factor("bob", Proof::PublicKey(&key), ip("10.0.0.1"))
        .await
        .unwrap();
    assert_eq!(accepted.identity.name, "bob");
    // bob has no password: a password attempt is a failed proof.
    assert_eq!(
        refusal(w.password("bob", "anything", "10.0.0.1").await),
        Refusal::WrongProof
    );
    let rows = w.logins().await;
    assert_eq!(rows.len(), 2, "offers are not logged as attempts");
    assert_eq!(
        (rows[0].method.as_str(), rows[0].result.as_str()),
        ("publickey", "ok")
    );
    assert_eq!(
        (rows[1].method.as_str(), rows[1].result.as_str()),
        ("password", "failed")
    );
}

#[tokio::test]
async fn disabled_and_expired_users_are_refused_after_a_correct_proof_only() {
    let w = world(MfaPolicy::Optional).await;
    w.ops
        .user_set_active(&admin(), "carol", false)
        .await
        .unwrap();
    assert_eq!(
        refusal(w.password("carol", GOOD, "10.0.0.1").await),
        Refusal::Disabled
    );
    assert_eq!(
        refusal(w.password("carol", "wrong", "10.0.0.1").await),
        Refusal::WrongProof
    );

    let soon = w.clock.now() + SignedDuration::from_hours(1);
    w.ops
        .user_edit(
            &admin(),
            "dave",
            UserEdit {
                expires_at: Some(Some(soon)),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(
        w.password("dave", GOOD, "10.0.0.1").await.unwrap(),
        Next::Done
    );
    w.clock.advance(SignedDuration::from_hours(2));
    assert_eq!(
        refusal(w.password("dave", GOOD, "10.0.0.1").await),
        Refusal::Expired
    );
}

#[tokio::test]
async fn login_acls_restrict_by_source_and_time() {
    let w = world(MfaPolicy::Optional).await;
    w.ops
        .acl_add(
            &admin(),
            AclSpec {
                name: "office".into(),
                action: AclAction::Allow,
                priority: 10,
                users: vec!["erin".into()],
                groups: vec![],
                sources: vec!["10.1.0.0/16".into()],
                windows: vec!["Mon-Fri 08:00-18:00".into()],
            },
        )
        .await
        .unwrap();
    w.ops
        .acl_add(
            &admin(),
            AclSpec {
                name: "erin-elsewhere".into(),
                action: AclAction::Deny,
                priority: 20,
                users: vec!["erin".into()],
                groups: vec![],
                sources: vec![],
                windows: vec![],
            },
        )
        .await
        .unwrap();
    // Monday 09:00 UTC, from the office.
    assert_eq!(
        w.password("erin", GOOD, "10.1.2.3").await.unwrap(),
        Next::Done
    );
    assert_eq!(
        refusal(w.password("erin", GOOD, "192.0.2.1").await),
        Refusal::Restricted("erin-elsewhere".into())
    );
    // Monday 19:00: outside the window.
    w.clock.advance(SignedDuration::from_hours(10));
    assert!(matches!(
        refusal(w.password("erin", GOOD, "10.1.2.3").await),
        Refusal::Restricted(_)
    ));
    // Others are not bound by erin's ACLs.
    assert_eq!(
        w.password("frank", GOOD, "192.0.2.1").await.unwrap(),
        Next::Done
    );
}

#[tokio::test]
async fn totp_is_asked_checked_and_never_accepted_twice() {
    let w = world(MfaPolicy::Optional).await;
    let first = w
        .auth
        .first_factor("grace", Proof::Password(&pw(GOOD)), ip("10.0.0.1"))
        .await
        .unwrap();
    assert_eq!(first.next, Next::Done, "no seed enrolled yet");

    let seed = totp::new_secret();
    let code = totp::current_code(seed.expose(), w.clock.now()).unwrap();
    w.auth
        .enrol_totp(&first.identity, &seed, &code, ip("10.0.0.1"))
        .await
        .unwrap();

    let accepted = w
        .auth
        .first_factor("grace", Proof::Password(&pw(GOOD)), ip("10.0.0.1"))
        .await
        .unwrap();
    assert_eq!(accepted.next, Next::Totp);
    // The enrolment code was used: the same code again is a replay.
    let again = w.auth.totp(&accepted.identity, &code, ip("10.0.0.1")).await;
    assert!(
        matches!(again, Err(LoginError::Refused(Refusal::CodeReused))),
        "{again:?}"
    );
    assert!(matches!(
        w.auth
            .totp(&accepted.identity, "000000", ip("10.0.0.1"))
            .await,
        Err(LoginError::Refused(Refusal::WrongProof))
    ));
    w.clock.advance(SignedDuration::from_secs(30));
    let next = totp::current_code(seed.expose(), w.clock.now()).unwrap();
    w.auth
        .totp(&accepted.identity, &next, ip("10.0.0.1"))
        .await
        .unwrap();
    assert!(matches!(
        w.auth.totp(&accepted.identity, &next, ip("10.0.0.1")).await,
        Err(LoginError::Refused(Refusal::CodeReused))
    ));

    // The notice after this login: the previous login, and the failures since.
    let notice = w.auth.notice("grace").await.unwrap();
    let (at, from) = notice.last_login.unwrap();
    assert_eq!(from, "10.0.0.1");
    assert!(at <= w.clock.now());
    // The replayed and the wrong code between the two logins.
    assert_eq!(notice.failures_since, 2);

    // The seed is sealed: the database never holds it in clear.
    let stored: String = sqlx::query_scalar("SELECT totp_secret FROM users WHERE name = 'grace'")
        .fetch_one(w.store.pool())
        .await
        .unwrap();
    assert!(stored.starts_with("v1:") && !stored.contains(seed.expose().as_str()));
}

#[tokio::test]
async fn mfa_required_sends_users_without_a_seed_to_enrolment() {
    let w = world(MfaPolicy::Required).await;
    let accepted = w
        .auth
        .first_factor("alice", Proof::Password(&pw(GOOD)), ip("10.0.0.1"))
        .await
        .unwrap();
    assert_eq!(accepted.next, Next::Enrol);
    assert!(w.logins().await.is_empty(), "not logged in until enrolled");
}

#[tokio::test]
async fn the_audit_chain_covers_logins() {
    let w = world(MfaPolicy::Optional).await;
    let _ = w.password("alice", "wrong", "10.0.0.1").await;
    w.password("alice", GOOD, "10.0.0.1").await.unwrap();
    let report = rampart::audit::verify(
        &w.store,
        &rampart::record::objects::Recordings::local("/nonexistent".into()),
    )
    .await
    .unwrap();
    assert_eq!(report.broken, None);
    // 7 user.add operations and 2 logins.
    assert_eq!(report.rows, 9);
}

/// Issue 13, item 4: a flood from a locked address, or against a locked
/// user, used to cost one argon2 check per attempt (a dummy one, for
/// timing). Now it costs none: the refusal waits out russh's constant
/// rejection delay on a timer instead.
#[tokio::test]
async fn a_locked_address_or_user_costs_no_password_check() {
    let w = world(MfaPolicy::Optional).await;
    for user in ["alice", "carol", "dave", "erin", "nosuchuser"] {
        assert_eq!(
            refusal(w.password(user, "Winter2026!", "203.0.113.7").await),
            Refusal::WrongProof
        );
    }
    assert_eq!(w.probe.calls(), 5);
    for user in ["frank", "grace", "nobody", "alice"] {
        for password in ["wrong", GOOD] {
            assert!(matches!(
                refusal(w.password(user, password, "203.0.113.7").await),
                Refusal::Locked {
                    scope: "address",
                    ..
                }
            ));
        }
    }
    assert_eq!(w.probe.calls(), 5, "a locked address was checked");

    for _ in 0..3 {
        let _ = w.password("frank", "wrong", "10.0.0.1").await;
    }
    assert_eq!(w.probe.calls(), 8);
    for password in ["wrong", GOOD] {
        assert!(matches!(
            refusal(w.password("frank", password, "10.0.0.2").await),
            Refusal::Locked { scope: "user", .. }
        ));
    }
    assert_eq!(w.probe.calls(), 8, "a locked user was checked");
    // Still logged, once per attempt, as denied (not counted).
    let rows = w.logins().await;
    assert_eq!(rows.iter().filter(|r| r.result == "denied").count(), 10);
}

/// Issue 13, item 4: argon2 ran inside a write transaction, so every login
/// (a key login too) and every audit row queued behind each password check.
/// The test database has one connection: a key login and a write must get
/// it while a password check is held in the hasher.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_password_check_holds_no_database_connection() {
    let w = Arc::new(world(MfaPolicy::Optional).await);
    let held = w.probe.hold();
    let flood = {
        let w = w.clone();
        tokio::spawn(async move { w.password("alice", "wrong", "198.51.100.1").await })
    };
    w.probe.started(1).await;

    let key = parse_public_key_line(KEY).unwrap().key;
    let bob = tokio::time::timeout(
        Duration::from_secs(5),
        w.auth
            .first_factor("bob", Proof::PublicKey(&key), ip("10.0.0.1")),
    )
    .await
    .expect("a key login waited for a password check");
    assert_eq!(bob.unwrap().identity.name, "bob");
    let write = tokio::time::timeout(Duration::from_secs(5), async {
        let tx = w.store.begin().await.unwrap();
        w.store.commit(tx).await.unwrap();
    })
    .await;
    assert!(write.is_ok(), "a write waited for a password check");

    drop(held);
    assert_eq!(refusal(flood.await.unwrap()), Refusal::WrongProof);
    let rows = w.logins().await;
    assert!(
        rows.iter()
            .any(|r| r.user == "alice" && r.result == "failed" && r.source == "198.51.100.1"),
        "{rows:?}"
    );
}

/// Issue 13, item 4: one source gets `per_source` password checks at once
/// and `per_source_waiting` attempts queued; the next attempt from it is
/// refused without a check (even with the right password, and without
/// counting as a failure), while another source's attempt is checked.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_source_gets_its_share_of_password_checks_and_no_more() {
    let w = Arc::new(world(MfaPolicy::Optional).await);
    let held = w.probe.hold();
    let source = "198.51.100.9";
    let mut parked = Vec::new();
    for user in ["carol", "dave", "alice"] {
        let w = w.clone();
        parked.push(tokio::spawn(async move {
            w.password(user, "wrong", source).await
        }));
    }
    w.probe.started(LIMITS.per_source).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while w.auth.gate().in_flight(ip(source)) < 3 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the third attempt never queued"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }

    let over = tokio::time::timeout(Duration::from_secs(5), w.password("erin", GOOD, source))
        .await
        .expect("the attempt over the share waited");
    assert_eq!(refusal(over), Refusal::Busy);
    assert_eq!(w.probe.calls(), 2, "the attempt over the share was checked");

    let other = {
        let w = w.clone();
        tokio::spawn(async move { w.password("frank", GOOD, "10.0.0.5").await })
    };
    w.probe.started(3).await;
    drop(held);
    for p in parked {
        assert_eq!(refusal(p.await.unwrap()), Refusal::WrongProof);
    }
    assert_eq!(other.await.unwrap().unwrap(), Next::Done);
    // The source's share is free again.
    assert_eq!(
        refusal(w.password("erin", "wrong", source).await),
        Refusal::WrongProof
    );

    let rows = w.logins().await;
    let unchecked: Vec<_> = rows.iter().filter(|r| r.user == "erin").collect();
    assert_eq!(unchecked.len(), 2, "{rows:?}");
    assert_eq!(unchecked[0].result, "denied");
    assert!(unchecked[0].reason.contains("not checked"), "{rows:?}");
    // Unchecked is not a failure: four failed proofs from the source (the
    // address limit is five), so the right password still works from it.
    assert_eq!(w.password("grace", GOOD, source).await.unwrap(), Next::Done);
}

/// Issue 13, item 4, keeping DESIGN's lockout exact once checks run
/// outside the write lock: guesses for one user from many addresses are
/// checked one at a time, so the user is locked at exactly its limit and
/// the guesses that queued behind are refused unchecked.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_guesses_for_one_user_stop_at_its_failure_limit() {
    let w = Arc::new(world(MfaPolicy::Optional).await);
    let held = w.probe.hold();
    let mut guesses = Vec::new();
    for i in 0..6 {
        let w = w.clone();
        guesses.push(tokio::spawn(async move {
            w.password("alice", "wrong", &format!("10.8.0.{i}")).await
        }));
    }
    w.probe.started(1).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(w.probe.calls(), 1, "two checks of one user at once");
    drop(held);
    let mut wrong = 0;
    let mut locked = 0;
    for g in guesses {
        match refusal(g.await.unwrap()) {
            Refusal::WrongProof => wrong += 1,
            Refusal::Locked { scope: "user", .. } => locked += 1,
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!((wrong, locked), (3, 3));
    assert_eq!(w.probe.calls(), 3);
}

/// Issue 13, item 4: at most `total` password checks run at once; the next
/// one waits for a free core rather than adding its argon2 memory and CPU.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn password_checks_wait_for_a_free_core() {
    let w = Arc::new(world(MfaPolicy::Optional).await);
    let held = w.probe.hold();
    let mut attempts = Vec::new();
    for (i, user) in ["alice", "carol", "dave", "erin", "frank"]
        .into_iter()
        .enumerate()
    {
        let w = w.clone();
        attempts.push(tokio::spawn(async move {
            w.password(user, "wrong", &format!("10.9.0.{i}")).await
        }));
    }
    w.probe.started(LIMITS.total).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(w.probe.calls(), LIMITS.total, "more checks ran than cores");
    drop(held);
    for a in attempts {
        assert_eq!(refusal(a.await.unwrap()), Refusal::WrongProof);
    }
    assert_eq!(w.probe.calls(), 5);
}
