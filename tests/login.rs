//! The login decision against a real (in-memory) database with a clock moved
//! by hand: lockout per user and per address, what counts as a failure,
//! TOTP reuse, disabled/expired users, login ACLs, and the login log.

use std::net::IpAddr;
use std::sync::Arc;

use jiff::SignedDuration;
use rampart::audit::Via;
use rampart::auth::login::{Authenticator, LoginError, MfaPolicy, Next, Proof, Refusal};
use rampart::auth::{LockoutPolicy, parse_public_key_line, totp};
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
    let auth = Authenticator::new(
        store.clone(),
        Some(vault),
        clock.clone(),
        policy,
        mfa,
        jiff::tz::TimeZone::UTC,
    );
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
    let report = rampart::audit::verify(&w.store, std::path::Path::new("/nonexistent"))
        .await
        .unwrap();
    assert_eq!(report.broken, None);
    // 7 user.add operations and 2 logins.
    assert_eq!(report.rows, 9);
}
