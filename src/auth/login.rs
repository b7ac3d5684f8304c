//! The login decision against the database: the pieces of this module
//! (passwords, keys, TOTP, lockout, login ACLs) combined in the order a
//! bastion must apply them, with a login-log row for every attempt.
//!
//! The SSH front door calls [`Authenticator`] from its auth callbacks and
//! gets an [`Identity`] or a refusal; it never decides anything itself.
//!
//! Order of checks, and why:
//! 1. A locked source address, then a locked user, is refused before
//!    anything else and without checking the proof: a flood from a locked
//!    address costs a read and a row, no argon2 (russh answers after its
//!    constant rejection delay, from a timer), and a correct password
//!    during a lockout must not unlock it.
//! 2. A password attempt takes a place in the [`Gate`]: one source gets a
//!    share of the checks and a short queue; past that the attempt is
//!    refused unchecked (not a failed proof, so not counted). Checks of one
//!    user name, and the source's share, run one turn at a time, and the
//!    locks are read again when the turn comes, so concurrent guesses cannot
//!    overshoot the failure limits.
//! 3. An unknown user costs the same as a known one (a dummy check), counts
//!    against the address, and is refused like a wrong password.
//! 4. The proof is checked with no database connection held (issue 13,
//!    item 4: argon2 inside a write transaction queued every login and
//!    every audit row behind it); only a failed proof counts as a failure
//!    (DESIGN.md §2, lockout semantics).
//! 5. One short write transaction then confirms what was checked against
//!    the row as it is now (a lock set meanwhile stands), applies standing,
//!    and writes the outcome. Disabled, expired and ACL-refused users are
//!    told only after a correct proof, so the refusal does not reveal to a
//!    guesser which names exist.
//!
//! Timing: known and unknown users both cost one check. A locked user is
//! refused without one; russh's constant rejection delay (500 ms) hides
//! that as long as a check takes less, which it does unless the bastion is
//! saturated.

use std::net::IpAddr;
use std::sync::Arc;

use jiff::Timestamp;
use jiff::tz::TimeZone;
use sqlx::AnyConnection;

use super::acl::{AclDecision, CompiledAcls};
use super::gate::{Gate, Limits};
use super::lockout::{FailureState, LockScope, LockoutPolicy};
use super::{pubkey, totp};
use crate::audit::{self, AuditEvent, LoginResult};
use crate::clock::Clock;
use crate::model::{Identity, User};
use crate::store::users::{self, FailureRow, UserRecord};
use crate::store::{self, Store, StoreError};
use crate::vault::{Secret, Vault};

/// Whether a second factor is asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MfaPolicy {
    /// Asked of users who enrolled a TOTP seed.
    Optional,
    /// Asked of everyone; users without a seed must enrol first.
    Required,
}

/// What the front door must do after a first factor was accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Next {
    /// Logged in.
    Done,
    /// Ask for a TOTP code (keyboard-interactive), then call
    /// [`Authenticator::totp`].
    Totp,
    /// MFA is required and the user has none: show the enrolment screen.
    Enrol,
}

/// An accepted first factor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Accepted {
    pub identity: Identity,
    pub next: Next,
    /// The password was a one-time password or was reset: a new one must be
    /// set before anything else.
    pub must_change_password: bool,
}

/// Why a login was refused. The person sees only that authentication
/// failed (or, for `Restricted`, that login restrictions refused it); the
/// detail goes to the login log.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("wrong credentials")]
    WrongProof,
    #[error("locked ({scope}) until {until}")]
    Locked {
        scope: &'static str,
        until: Timestamp,
    },
    #[error("user disabled")]
    Disabled,
    #[error("user expired")]
    Expired,
    #[error("login restricted by ACL {0}")]
    Restricted(String),
    #[error("verification code already used")]
    CodeReused,
    #[error("method not allowed")]
    MethodNotAllowed,
    /// The source already has its share of password checks running: this
    /// attempt was refused without checking the password.
    #[error("too many password checks at once from this address; not checked")]
    Busy,
}

#[derive(Debug, thiserror::Error)]
pub enum LoginError {
    #[error(transparent)]
    Refused(#[from] Refusal),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("the stored second factor of {0} cannot be read: {1}")]
    Seed(String, String),
}

/// What a first factor proved before its write transaction.
enum Checked<'a> {
    /// The password matched this stored hash (read before the check).
    Password(String),
    /// A signature by this key verified; whether the key is the user's is
    /// read in the transaction.
    Key(&'a russh::keys::PublicKey),
    /// The RDP front proved a one-time ticket issued to this user (over an
    /// SSH login that passed every factor); the front redeems it only
    /// after this login is accepted.
    Ticket,
}

/// The lock that refuses an attempt without checking its proof: the
/// address's first, then the user's.
fn locked(address: &FailureState, record: Option<&UserRecord>, now: Timestamp) -> Option<Refusal> {
    if let Some(until) = address.locked_until(now) {
        return Some(Refusal::Locked {
            scope: LockScope::Address.as_str(),
            until,
        });
    }
    let until = user_state(record?).locked_until(now)?;
    Some(Refusal::Locked {
        scope: LockScope::User.as_str(),
        until,
    })
}

/// The proof a client presented.
pub enum Proof<'a> {
    Password(&'a Secret<String>),
    /// A public key whose signature the SSH layer has verified.
    PublicKey(&'a russh::keys::PublicKey),
}

impl Proof<'_> {
    fn method(&self) -> &'static str {
        match self {
            Proof::Password(_) => "password",
            Proof::PublicKey(_) => "publickey",
        }
    }
}

/// The last successful login before this one and the failures since, for
/// the notice shown after login.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoginNotice {
    pub last_login: Option<(Timestamp, String)>,
    pub failures_since: i64,
}

#[derive(Clone)]
pub struct Authenticator {
    store: Store,
    vault: Option<Vault>,
    clock: Arc<dyn Clock>,
    lockout: LockoutPolicy,
    mfa: MfaPolicy,
    time_zone: TimeZone,
    gate: Gate,
    metrics: Arc<crate::metrics::Metrics>,
}

fn state(row: &FailureRow) -> FailureState {
    FailureState {
        failures: row.failures,
        window_start: row.window_start,
        locked_until: row.locked_until,
    }
}

fn row(state: &FailureState) -> FailureRow {
    FailureRow {
        failures: state.failures,
        window_start: state.window_start,
        locked_until: state.locked_until,
    }
}

fn user_state(r: &UserRecord) -> FailureState {
    FailureState {
        failures: r.failures,
        window_start: r.failure_window_start,
        locked_until: r.user.locked_until,
    }
}

impl Authenticator {
    pub fn new(
        store: Store,
        vault: Option<Vault>,
        clock: Arc<dyn Clock>,
        lockout: LockoutPolicy,
        mfa: MfaPolicy,
        time_zone: TimeZone,
    ) -> Authenticator {
        Authenticator {
            store,
            vault,
            clock,
            lockout,
            mfa,
            time_zone,
            gate: Gate::new(Limits::default()),
            metrics: Arc::default(),
        }
    }

    /// The same authenticator, counting logins and lockouts in `metrics`.
    pub fn with_metrics(self, metrics: Arc<crate::metrics::Metrics>) -> Authenticator {
        Authenticator { metrics, ..self }
    }

    /// The same authenticator, checking passwords through `gate`.
    pub fn with_gate(self, gate: Gate) -> Authenticator {
        Authenticator { gate, ..self }
    }

    /// The password checks: limits and counts.
    pub fn gate(&self) -> &Gate {
        &self.gate
    }

    /// Whether `key` is registered for `user` — the answer to a public-key
    /// offer before any signature. Never counts as a failure, never logs.
    pub async fn key_is_registered(
        &self,
        user: &str,
        key: &russh::keys::PublicKey,
    ) -> Result<bool, LoginError> {
        let mut conn = self.store.conn().await?;
        let Some(record) = users::find(&mut conn, user).await? else {
            return Ok(false);
        };
        let fp = pubkey::fingerprint_of(key);
        Ok(users::has_key(&mut conn, &record.user.id, &fp).await?)
    }

    /// Checks a first factor from `source`. Every outcome is logged.
    pub async fn first_factor(
        &self,
        user_name: &str,
        proof: Proof<'_>,
        source: IpAddr,
    ) -> Result<Accepted, LoginError> {
        let method = proof.method();
        self.first_factor_via(user_name, proof, source, method)
            .await
    }

    /// An RDP login (`rdp` module): `proven` says whether the person's RDP
    /// client proved a valid one-time ticket or RDP password of theirs.
    /// Locks, standing and login ACLs apply as to any login, a wrong,
    /// used or expired one counts as a failed proof, and every outcome is
    /// logged with `method` (`rdp-ticket`, `rdp-password`).
    pub async fn rdp_login(
        &self,
        user_name: &str,
        proven: bool,
        source: IpAddr,
        method: &'static str,
    ) -> Result<Accepted, LoginError> {
        let address = source.to_string();
        let (addr_state, record) = self.read(user_name, &address).await?;
        let user = record.as_ref().map(|r| &r.user);
        if let Some(refusal) = locked(&addr_state, record.as_ref(), self.clock.now()) {
            return self
                .refuse(user_name, user, &address, method, refusal, false)
                .await;
        }
        if !proven {
            return self
                .refuse(user_name, user, &address, method, Refusal::WrongProof, true)
                .await;
        }
        self.accept(user_name, Checked::Ticket, source, method)
            .await
    }

    /// [`Self::first_factor`], naming the SSH method that carried the proof
    /// in the login log (a password typed at a keyboard-interactive prompt
    /// is logged as `keyboard-interactive`).
    pub async fn first_factor_via(
        &self,
        user_name: &str,
        proof: Proof<'_>,
        source: IpAddr,
        method: &str,
    ) -> Result<Accepted, LoginError> {
        let address = source.to_string();
        let (addr_state, record) = self.read(user_name, &address).await?;
        if let Some(refusal) = locked(&addr_state, record.as_ref(), self.clock.now()) {
            // No check at all: russh sends the rejection after its constant
            // delay, from a timer.
            let user = record.as_ref().map(|r| &r.user);
            return self
                .refuse(user_name, user, &address, method, refusal, false)
                .await;
        }
        let password = match proof {
            Proof::PublicKey(key) => {
                return self
                    .accept(user_name, Checked::Key(key), source, method)
                    .await;
            }
            Proof::Password(password) => password,
        };
        let user = record.as_ref().map(|r| &r.user);
        let Some(entry) = self.gate.enter(source, user_name) else {
            return self
                .refuse(user_name, user, &address, method, Refusal::Busy, false)
                .await;
        };
        // Held until the outcome is written: the source's and the user's
        // failures are counted one check at a time, as the limits say.
        let turn = entry.turn().await;
        // A lock may have been set while this attempt waited.
        let (addr_state, record) = self.read(user_name, &address).await?;
        let user = record.as_ref().map(|r| &r.user);
        if let Some(refusal) = locked(&addr_state, record.as_ref(), self.clock.now()) {
            return self
                .refuse(user_name, user, &address, method, refusal, false)
                .await;
        }
        // Unknown users and users without a password cost a dummy check.
        let phc = record.as_ref().and_then(|r| r.password_hash.clone());
        let proven = self.gate.verify(&turn, password, phc.clone()).await;
        match phc {
            Some(phc) if proven => {
                self.accept(user_name, Checked::Password(phc), source, method)
                    .await
            }
            _ => {
                self.refuse(user_name, user, &address, method, Refusal::WrongProof, true)
                    .await
            }
        }
    }

    /// The failure state of `address` and the user's row, read without the
    /// write lock.
    async fn read(
        &self,
        user_name: &str,
        address: &str,
    ) -> Result<(FailureState, Option<UserRecord>), LoginError> {
        let mut conn = self.store.conn().await?;
        let addr_state = state(&users::address_failures(&mut conn, address).await?);
        let record = users::find(&mut conn, user_name).await?;
        Ok((addr_state, record))
    }

    /// The rest of a first factor, in one short write transaction: a key is
    /// looked up, a password's check is confirmed against the row as it is
    /// now, standing is checked, and the outcome is written.
    async fn accept(
        &self,
        user_name: &str,
        checked: Checked<'_>,
        source: IpAddr,
        method: &str,
    ) -> Result<Accepted, LoginError> {
        let now = self.clock.now();
        let address = source.to_string();
        let mut tx = self.store.begin().await?;
        let addr_state = state(&users::address_failures(&mut tx, &address).await?);
        let record = users::find(&mut tx, user_name).await?;
        // A lock set since the proof was checked stands: a correct proof
        // never lifts one.
        if let Some(refusal) = locked(&addr_state, record.as_ref(), now) {
            let user = record.as_ref().map(|r| &r.user);
            return self
                .refuse_in(tx, user_name, user, &address, method, refusal, false)
                .await;
        }
        let proven = match (&checked, &record) {
            (Checked::Key(key), Some(r)) => {
                users::has_key(&mut tx, &r.user.id, &pubkey::fingerprint_of(key)).await?
            }
            // The password matched the hash read before the check; if the
            // hash changed or the user was removed meanwhile, the proof is
            // stale (refused, but not a failed proof).
            (Checked::Password(phc), Some(r)) => r.password_hash.as_deref() == Some(phc.as_str()),
            (Checked::Ticket, Some(_)) => true,
            (_, None) => false,
        };
        let record = match record {
            Some(record) if proven => record,
            other => {
                let counts = matches!(checked, Checked::Key(_));
                let user = other.as_ref().map(|r| &r.user);
                return self
                    .refuse_in(
                        tx,
                        user_name,
                        user,
                        &address,
                        method,
                        Refusal::WrongProof,
                        counts,
                    )
                    .await;
            }
        };

        if let Some(refusal) = self.standing(&mut tx, &record.user, source, now).await? {
            return self
                .refuse_in(
                    tx,
                    user_name,
                    Some(&record.user),
                    &address,
                    method,
                    refusal,
                    false,
                )
                .await;
        }

        // A correct proof clears the user's failure count (not the
        // address's: one good login must not hide a spray from that address).
        let mut ok = user_state(&record);
        ok.record_success();
        users::set_user_failures(&mut tx, &record.user.id, &row(&ok)).await?;

        let ticket = matches!(checked, Checked::Ticket);
        let next = match (record.totp_secret.is_some(), self.mfa) {
            // The ticket was issued after every factor.
            _ if ticket => Next::Done,
            (true, _) => Next::Totp,
            (false, MfaPolicy::Required) => Next::Enrol,
            (false, MfaPolicy::Optional) => Next::Done,
        };
        let identity = Identity {
            user_id: record.user.id.clone(),
            name: record.user.name.clone(),
            role: record.user.role,
            groups: users::group_ids(&mut tx, &record.user.id).await?,
        };
        if next == Next::Done {
            self.log_ok(&mut tx, &record.user, &address, method, now)
                .await?;
        }
        self.store.commit(tx).await?;
        Ok(Accepted {
            identity,
            next,
            must_change_password: record.user.must_change_password,
        })
    }

    /// Disabled, expired or refused by a login ACL.
    async fn standing(
        &self,
        conn: &mut AnyConnection,
        user: &User,
        source: IpAddr,
        now: Timestamp,
    ) -> Result<Option<Refusal>, LoginError> {
        if !user.active {
            return Ok(Some(Refusal::Disabled));
        }
        if user.expires_at.is_some_and(|t| t <= now) {
            return Ok(Some(Refusal::Expired));
        }
        let acls = store::acls::list(conn).await?;
        if acls.is_empty() {
            return Ok(None);
        }
        let groups = users::group_names(conn, &user.id).await?;
        // Stored ACLs were validated when added; one that no longer parses
        // refuses the login rather than silently allowing it.
        let decision = match CompiledAcls::compile(&acls) {
            Ok(compiled) => compiled.evaluate(&user.name, &groups, source, now, &self.time_zone),
            Err(e) => AclDecision::Deny { acl: e.to_string() },
        };
        Ok(match decision {
            AclDecision::Allow => None,
            AclDecision::Deny { acl } => Some(Refusal::Restricted(acl)),
        })
    }

    /// Checks the TOTP code of a user whose first factor was accepted.
    pub async fn totp(
        &self,
        identity: &Identity,
        code: &str,
        source: IpAddr,
    ) -> Result<(), LoginError> {
        let now = self.clock.now();
        let address = source.to_string();
        let mut tx = self.store.begin().await?;
        let record = users::get(&mut tx, &identity.name).await?;
        let method = "keyboard-interactive/totp";
        if let Some(until) = user_state(&record).locked_until(now) {
            let refusal = Refusal::Locked {
                scope: LockScope::User.as_str(),
                until,
            };
            return self
                .refuse_in(
                    tx,
                    &identity.name,
                    Some(&record.user),
                    &address,
                    method,
                    refusal,
                    false,
                )
                .await;
        }
        let Some(sealed) = &record.totp_secret else {
            return self
                .refuse_in(
                    tx,
                    &identity.name,
                    Some(&record.user),
                    &address,
                    method,
                    Refusal::WrongProof,
                    true,
                )
                .await;
        };
        let vault = self.vault.as_ref().ok_or_else(|| {
            LoginError::Seed(identity.name.clone(), "no master key is loaded".into())
        })?;
        let seed = vault
            .open_string(sealed)
            .map_err(|e| LoginError::Seed(identity.name.clone(), e.to_string()))?;
        match totp::check(seed.expose(), code, record.totp_last_step, now) {
            Ok(step) => {
                if !users::advance_totp_step(&mut tx, &record.user.id, step).await? {
                    return self
                        .refuse_in(
                            tx,
                            &identity.name,
                            Some(&record.user),
                            &address,
                            method,
                            Refusal::CodeReused,
                            true,
                        )
                        .await;
                }
                self.log_ok(&mut tx, &record.user, &address, method, now)
                    .await?;
                self.store.commit(tx).await?;
                Ok(())
            }
            Err(totp::TotpError::Reused) => {
                self.refuse_in(
                    tx,
                    &identity.name,
                    Some(&record.user),
                    &address,
                    method,
                    Refusal::CodeReused,
                    true,
                )
                .await
            }
            Err(totp::TotpError::BadSecret) => Err(LoginError::Seed(
                identity.name.clone(),
                totp::TotpError::BadSecret.to_string(),
            )),
            Err(_) => {
                self.refuse_in(
                    tx,
                    &identity.name,
                    Some(&record.user),
                    &address,
                    method,
                    Refusal::WrongProof,
                    true,
                )
                .await
            }
        }
    }

    /// Logs a refusal in a transaction of its own; see [`Self::refuse_in`].
    async fn refuse<T>(
        &self,
        user_name: &str,
        user: Option<&User>,
        address: &str,
        method: &str,
        refusal: Refusal,
        counts: bool,
    ) -> Result<T, LoginError> {
        let tx = self.store.begin().await?;
        self.refuse_in(tx, user_name, user, address, method, refusal, counts)
            .await
    }

    /// Logs a refusal, counting it towards lockout when it was a failed
    /// proof (against the failure state as it is in `tx`), and commits that.
    #[allow(clippy::too_many_arguments)]
    async fn refuse_in<T>(
        &self,
        mut tx: store::Tx,
        user_name: &str,
        user: Option<&User>,
        address: &str,
        method: &str,
        refusal: Refusal,
        counts: bool,
    ) -> Result<T, LoginError> {
        let now = self.clock.now();
        let mut reason = refusal.to_string();
        if user.is_none() && refusal == Refusal::WrongProof {
            reason = "unknown user".to_string();
        }
        if counts {
            let mut addr = state(&users::address_failures(&mut tx, address).await?);
            if addr.record_failure(now, self.lockout.limit(LockScope::Address), &self.lockout) {
                reason.push_str("; source address locked");
                self.metrics.lockout();
            }
            users::set_address_failures(&mut tx, address, &row(&addr)).await?;
            if let Some(u) = user
                && let Some(current) = users::failures(&mut tx, &u.id).await?
            {
                let mut failures = state(&current);
                if failures.record_failure(now, self.lockout.limit(LockScope::User), &self.lockout)
                {
                    reason.push_str("; user locked");
                    self.metrics.lockout();
                }
                users::set_user_failures(&mut tx, &u.id, &row(&failures)).await?;
            }
        }
        let result = if counts {
            LoginResult::Failed
        } else {
            LoginResult::Denied
        };
        audit::record(
            &mut tx,
            &AuditEvent::Login {
                user_name: user_name.to_string(),
                user_id: user.map(|u| u.id.clone()),
                source: address.to_string(),
                method: method.to_string(),
                result,
                reason,
            },
            now,
        )
        .await?;
        self.store.commit(tx).await?;
        self.metrics.login(method, false);
        Err(LoginError::Refused(refusal))
    }

    async fn log_ok(
        &self,
        conn: &mut AnyConnection,
        user: &User,
        address: &str,
        method: &str,
        now: Timestamp,
    ) -> Result<(), LoginError> {
        users::record_login(conn, &user.id, now, address).await?;
        audit::record(
            conn,
            &AuditEvent::Login {
                user_name: user.name.clone(),
                user_id: Some(user.id.clone()),
                source: address.to_string(),
                method: method.to_string(),
                result: LoginResult::Ok,
                reason: String::new(),
            },
            now,
        )
        .await?;
        self.metrics.login(method, true);
        Ok(())
    }

    /// For the notice after a successful login: the successful login before
    /// this one, and the failed attempts between the two.
    pub async fn notice(&self, user_name: &str) -> Result<LoginNotice, LoginError> {
        let mut conn = self.store.conn().await?;
        let (last, failures) = store::audit_log::login_notice(&mut conn, user_name).await?;
        Ok(LoginNotice {
            last_login: last,
            failures_since: failures,
        })
    }

    /// Enrols a TOTP seed for a user (after they confirmed a code from it).
    pub async fn enrol_totp(
        &self,
        identity: &Identity,
        seed: &Secret<String>,
        code: &str,
        source: IpAddr,
    ) -> Result<(), LoginError> {
        let now = self.clock.now();
        let step = totp::check(seed.expose(), code, None, now).map_err(|_| Refusal::WrongProof)?;
        let vault = self.vault.as_ref().ok_or_else(|| {
            LoginError::Seed(identity.name.clone(), "no master key is loaded".into())
        })?;
        let sealed = vault.seal_str(seed.expose());
        let mut tx = self.store.begin().await?;
        store::register_vault_key(&mut tx, vault.key_id(), now).await?;
        let record = users::get(&mut tx, &identity.name).await?;
        users::set_totp(&mut tx, &record.user.id, Some(&sealed), now).await?;
        users::advance_totp_step(&mut tx, &record.user.id, step).await?;
        audit::record(
            &mut tx,
            &AuditEvent::Operation {
                actor: identity.name.clone(),
                actor_role: identity.role,
                via: audit::Via::Ssh,
                verb: "user.mfa-enrol".into(),
                object: format!("user {}", identity.name),
                before: Some(serde_json::json!({"mfa": "none"})),
                after: Some(serde_json::json!({"mfa": "totp"})),
            },
            now,
        )
        .await?;
        self.log_ok(
            &mut tx,
            &record.user,
            &source.to_string(),
            "keyboard-interactive/totp-enrol",
            now,
        )
        .await?;
        self.store.commit(tx).await?;
        Ok(())
    }
}
