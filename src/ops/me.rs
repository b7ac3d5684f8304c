//! Self-service verbs (`rampart me ...`): every person, whatever their role,
//! acts on their own account: shows it, changes their password (proving the
//! current one), manages their SSH keys and their TOTP second factor. The
//! caller is the object: there is no name to pass, so nothing here reaches
//! another account.
//!
//! TOTP enrolment has two steps, so that it works over a plain `ssh` exec
//! with no terminal: `me mfa enrol` stores a new seed as *pending* (sealed by
//! the vault, never used for login) and returns it once for the QR code;
//! `me mfa confirm CODE` proves the app has it and makes it the login seed.
//! A pending enrolment expires after [`PENDING_ENROLMENT`].
//!
//! A wrong current password or TOTP code here counts towards the user's
//! lockout like a failed login (DESIGN.md §2: only a failed proof counts),
//! so a session left open cannot be used to guess the password; that count
//! is the one thing a refused verb leaves behind.
//!
//! Must never: act for the local operator (`Caller::local()` is no rampart
//! user), change a password without the current one, leave a person with no
//! way to log in, or store a seed unsealed.

use jiff::{SignedDuration, Timestamp};
use serde::Serialize;
use serde_json::json;

use super::{Caller, Ops, OpsError, Result};
use crate::audit::Via;
use crate::auth::login::MfaPolicy;
use crate::auth::{self, FailureState, LockScope, TotpError, totp};
use crate::model::{Role, UserKey};
use crate::store::users::{self, FailureRow, UserRecord};
use crate::store::{self, StoreError};
use crate::vault::Secret;

/// How long `me mfa confirm` may follow `me mfa enrol`.
pub const PENDING_ENROLMENT: SignedDuration = SignedDuration::from_mins(10);

/// What `rampart me` shows.
#[derive(Debug, Clone, Serialize)]
pub struct MeView {
    pub name: String,
    pub role: Role,
    pub email: Option<String>,
    pub groups: Vec<String>,
    /// SHA256 fingerprints of the person's public keys.
    pub keys: Vec<String>,
    pub password: bool,
    /// `on`, `pending` (enrolment begun, not confirmed) or `off`.
    pub mfa: &'static str,
    pub expires_at: Option<Timestamp>,
    pub last_login_at: Option<Timestamp>,
    pub last_login_from: Option<String>,
}

/// What `rampart me mfa` shows.
#[derive(Debug, Clone, Serialize)]
pub struct MfaStatus {
    pub mfa: &'static str,
    /// Whether the server requires a second factor of everyone.
    pub required: bool,
    /// When a pending enrolment stops being confirmable.
    pub pending_until: Option<Timestamp>,
}

/// A pending enrolment, shown once: the seed and the otpauth URL (both
/// secret) for the authenticator app.
#[derive(Debug)]
pub struct MfaEnrolment {
    pub secret: Secret<String>,
    pub otpauth_url: Secret<String>,
    pub confirm_by: Timestamp,
}

/// Refuses the local operator: the `me` verbs act on a rampart user, and
/// the local CLI is run by an OS account, not by one. Whether that user
/// may still act is the store's to say: the front doors build the caller
/// with [`Ops::caller`], and each verb reads the caller's own record
/// through `my_record`, which refuses a disabled, expired or removed one.
pub fn require_person(caller: &Caller) -> Result<()> {
    match caller.via {
        Via::Ssh | Via::Console | Via::Web => Ok(()),
        Via::Cli => Err(OpsError::Invalid(
            "`rampart me` acts on the user you log in as; use it over SSH (ssh -p 2222 USER@BASTION rampart me ...)"
                .into(),
        )),
    }
}

fn failure_state(record: &UserRecord) -> FailureState {
    FailureState {
        failures: record.failures,
        window_start: record.failure_window_start,
        locked_until: record.user.locked_until,
    }
}

fn failure_row(state: &FailureState) -> FailureRow {
    FailureRow {
        failures: state.failures,
        window_start: state.window_start,
        locked_until: state.locked_until,
    }
}

impl Ops {
    /// The caller's own record, refused when they may no longer act
    /// (disabled, expired, removed): a connection opened before is no
    /// way around that.
    async fn my_record(&self, caller: &Caller) -> Result<UserRecord> {
        require_person(caller)?;
        let mut conn = self.store.conn().await?;
        let record = users::find(&mut conn, &caller.name).await?;
        let standing = record.as_ref().map(|r| super::Standing::of(&r.user));
        if let Some(why) = super::withdrawn(standing.as_ref(), &caller.name, None, self.now()) {
            return Err(OpsError::Forbidden(why));
        }
        record.ok_or_else(|| OpsError::Forbidden(format!("{} no longer exists", caller.name)))
    }

    async fn mfa_state(&self, record: &UserRecord) -> Result<(&'static str, Option<Timestamp>)> {
        if record.totp_secret.is_some() {
            return Ok(("on", None));
        }
        let mut conn = self.store.conn().await?;
        let pending = users::totp_pending(&mut conn, &record.user.id)
            .await?
            .map(|(_, at)| at.saturating_add(PENDING_ENROLMENT))
            .and_then(|until| until.ok())
            .filter(|until| *until > self.now());
        Ok(match pending {
            Some(until) => ("pending", Some(until)),
            None => ("off", None),
        })
    }

    /// A lock from failed proofs stops the `me` verbs that take a proof,
    /// as it stops logins.
    fn refuse_if_locked(&self, record: &UserRecord) -> Result<()> {
        match failure_state(record).locked_until(self.now()) {
            None => Ok(()),
            Some(until) => Err(OpsError::Refused(format!(
                "your account is locked until {until} after failed attempts: try again later, or ask an admin (rampart user unlock {})",
                record.user.name
            ))),
        }
    }

    /// Counts a failed proof towards the user's lock, in its own
    /// transaction (the verb itself changes nothing), and says so. The count
    /// is read again inside the transaction, so attempts made in parallel
    /// are all counted.
    async fn failed_proof(&self, record: &UserRecord, what: &str) -> OpsError {
        let policy = self.settings.lockout;
        let counted = async {
            let mut tx = self.store.begin().await?;
            // The time is taken once the write lock is held: a failure with
            // an earlier time than the window's start would restart the
            // count (auth::lockout), and waiting for the lock reorders
            // parallel attempts.
            let now = self.now();
            let fresh = users::get(&mut tx, &record.user.name).await?;
            let mut state = failure_state(&fresh);
            let locked = state.record_failure(now, policy.limit(LockScope::User), &policy);
            users::set_user_failures(&mut tx, &fresh.user.id, &failure_row(&state)).await?;
            self.store.commit(tx).await?;
            Ok::<_, StoreError>(state.locked_until.filter(|_| locked))
        }
        .await;
        let locked_until = match counted {
            Ok(until) => until,
            Err(e) => return e.into(),
        };
        let mut text = what.to_string();
        if let Some(until) = locked_until {
            text.push_str(&format!(
                "; too many failed attempts: your account is locked until {until}"
            ));
        }
        OpsError::Refused(text)
    }

    pub async fn me_show(&self, caller: &Caller) -> Result<MeView> {
        let record = self.my_record(caller).await?;
        let (mfa, _) = self.mfa_state(&record).await?;
        let mut conn = self.store.conn().await?;
        let groups = users::group_names(&mut conn, &record.user.id).await?;
        let keys = users::keys(&mut conn, &record.user.id).await?;
        let user = record.user;
        Ok(MeView {
            name: user.name,
            role: user.role,
            email: user.email,
            groups,
            keys: keys.into_iter().map(|k| k.fingerprint).collect(),
            password: user.has_password,
            mfa,
            expires_at: user.expires_at,
            last_login_at: user.last_login_at,
            last_login_from: user.last_login_from,
        })
    }

    /// Changes the caller's password, proven by the current one (an empty
    /// `current` for a person who has none yet). The new password follows
    /// the same rules as `user passwd`; a pending forced change is cleared.
    pub async fn me_passwd(
        &self,
        caller: &Caller,
        current: &Secret<String>,
        new: &Secret<String>,
    ) -> Result<()> {
        let record = self.my_record(caller).await?;
        if current.expose() == new.expose() {
            return Err(OpsError::Invalid(
                "the new password is the same as the current one".into(),
            ));
        }
        // The rules first: a too-short password must not cost an attempt.
        self.check_password_policy(new)?;
        self.refuse_if_locked(&record)?;
        match &record.password_hash {
            Some(hash) => {
                let (pw, hash) = (current.clone(), hash.clone());
                // argon2 costs tens of milliseconds: not on a runtime thread.
                let proven = tokio::task::spawn_blocking(move || auth::verify_password(&pw, &hash))
                    .await
                    .unwrap_or(false);
                if !proven {
                    return Err(self
                        .failed_proof(&record, "the current password is wrong")
                        .await);
                }
            }
            None if current.expose().is_empty() => {}
            None => {
                return Err(OpsError::Invalid(
                    "you have no password yet: give an empty first line, then the new password"
                        .into(),
                ));
            }
        }
        self.set_own_password(caller, &record, new).await
    }

    /// The password change a login forces after a one-time password: the
    /// front door calls it once the person has proven the one-time password
    /// in the same login, so the current one is not asked again. Refused
    /// when no change is pending.
    pub async fn me_passwd_forced(&self, caller: &Caller, new: &Secret<String>) -> Result<()> {
        let record = self.my_record(caller).await?;
        if !record.user.must_change_password {
            return Err(OpsError::Invalid(
                "no password change is pending: use `rampart me passwd`".into(),
            ));
        }
        self.check_password_policy(new)?;
        self.set_own_password(caller, &record, new).await
    }

    async fn set_own_password(
        &self,
        caller: &Caller,
        record: &UserRecord,
        new: &Secret<String>,
    ) -> Result<()> {
        let hash = self.password_hash(new)?;
        let mut tx = self.store.begin().await?;
        // A lock set while the proof was checked (by attempts in parallel)
        // still stands.
        let fresh = users::get(&mut tx, &record.user.name).await?;
        self.refuse_if_locked(&fresh)?;
        users::set_password(&mut tx, &record.user.id, &hash, false, self.now()).await?;
        // A proven password clears the failure count, as a login does.
        let mut state = failure_state(&fresh);
        state.record_success();
        users::set_user_failures(&mut tx, &record.user.id, &failure_row(&state)).await?;
        self.log(
            &mut tx,
            caller,
            "user.passwd",
            format!("user {}", record.user.name),
            Some(json!({
                "password": if record.password_hash.is_some() { "set" } else { "none" },
                "must_change_password": record.user.must_change_password,
            })),
            Some(json!({"password": "changed", "must_change_password": false})),
        )
        .await?;
        self.store.commit(tx).await?;
        Ok(())
    }

    pub async fn me_keys(&self, caller: &Caller) -> Result<Vec<UserKey>> {
        let record = self.my_record(caller).await?;
        let mut conn = self.store.conn().await?;
        Ok(users::keys(&mut conn, &record.user.id).await?)
    }

    pub async fn me_key_add(&self, caller: &Caller, line: &str) -> Result<UserKey> {
        require_person(caller)?;
        self.key_add(caller, &caller.name, line).await
    }

    /// Removes one of the caller's keys, unless it is their last way to log
    /// in (no other key, and no password that the server accepts).
    pub async fn me_key_remove(&self, caller: &Caller, fingerprint: &str) -> Result<()> {
        require_person(caller)?;
        let name = caller.name.as_str();
        let mut tx = self.store.begin().await?;
        let record = users::get(&mut tx, name).await?;
        let keys = users::keys(&mut tx, &record.user.id).await?;
        let Some(key) = keys
            .iter()
            .find(|k| k.fingerprint == fingerprint || k.id == fingerprint)
            .cloned()
        else {
            return Err(OpsError::Invalid(format!(
                "you have no key {fingerprint} (see `rampart me keys list`)"
            )));
        };
        let password_left = record.password_hash.is_some() && self.settings.password_login;
        if keys.len() == 1 && !password_left {
            return Err(OpsError::Invalid(format!(
                "{} is your only way to log in: add another key (or set a password with `rampart me passwd`) first",
                key.fingerprint
            )));
        }
        users::remove_key(&mut tx, &record.user.id, &key.id).await?;
        self.log_key_remove(&mut tx, caller, name, Some(key))
            .await?;
        self.store.commit(tx).await?;
        Ok(())
    }

    pub async fn me_mfa(&self, caller: &Caller) -> Result<MfaStatus> {
        let record = self.my_record(caller).await?;
        let (mfa, pending_until) = self.mfa_state(&record).await?;
        Ok(MfaStatus {
            mfa,
            required: self.settings.mfa == MfaPolicy::Required,
            pending_until,
        })
    }

    /// Begins an enrolment: a new seed, sealed and stored as pending (it
    /// replaces an earlier pending one), returned once for the app.
    pub async fn me_mfa_enrol(&self, caller: &Caller) -> Result<MfaEnrolment> {
        let record = self.my_record(caller).await?;
        if record.totp_secret.is_some() {
            return Err(OpsError::Invalid(self.already_enrolled(&record.user.name)));
        }
        let vault = self.vault()?;
        let secret = totp::new_secret();
        let otpauth_url = totp::otpauth_url(&secret, &record.user.name, totp::ISSUER)
            .map_err(|e| OpsError::Invalid(e.to_string()))?;
        let sealed = vault.seal_str(secret.expose());
        let now = self.now();
        let (before, _) = self.mfa_state(&record).await?;
        let mut tx = self.store.begin().await?;
        store::register_vault_key(&mut tx, vault.key_id(), now).await?;
        users::set_totp_pending(&mut tx, &record.user.id, Some(&sealed), now).await?;
        self.log(
            &mut tx,
            caller,
            "user.mfa-enrol-start",
            format!("user {}", record.user.name),
            Some(json!({ "mfa": before })),
            Some(json!({ "mfa": "pending" })),
        )
        .await?;
        self.store.commit(tx).await?;
        Ok(MfaEnrolment {
            secret,
            otpauth_url,
            confirm_by: now.saturating_add(PENDING_ENROLMENT).unwrap_or(now),
        })
    }

    fn already_enrolled(&self, name: &str) -> String {
        match self.settings.mfa {
            MfaPolicy::Optional => {
                "MFA is already on: to move it to a new device, `rampart me mfa reset CODE`, then enrol again".into()
            }
            MfaPolicy::Required => format!(
                "MFA is already on: to move it to a new device, ask an admin (rampart user mfa-reset {name})"
            ),
        }
    }

    /// Finishes an enrolment with a code from the app: the pending seed
    /// becomes the login seed, and the code's step is used up.
    pub async fn me_mfa_confirm(&self, caller: &Caller, code: &str) -> Result<()> {
        let record = self.my_record(caller).await?;
        if record.totp_secret.is_some() {
            return Err(OpsError::Invalid(self.already_enrolled(&record.user.name)));
        }
        let now = self.now();
        let mut tx = self.store.begin().await?;
        let Some((sealed, begun)) = users::totp_pending(&mut tx, &record.user.id).await? else {
            return Err(OpsError::Invalid(
                "no enrolment is pending: begin one with `rampart me mfa enrol`".into(),
            ));
        };
        if begun
            .saturating_add(PENDING_ENROLMENT)
            .map_or(true, |until| until <= now)
        {
            return Err(OpsError::Invalid(
                "the pending enrolment has expired: begin again with `rampart me mfa enrol`".into(),
            ));
        }
        let seed = self.vault()?.open_string(&sealed)?;
        // A wrong code here is a typo against a seed the caller was just
        // shown, not a guess at a protected secret: it does not count
        // towards the lock.
        let step = totp::check(seed.expose(), code, None, now).map_err(|e| match e {
            TotpError::BadSecret => OpsError::Invalid(e.to_string()),
            _ => OpsError::Invalid(
                "invalid verification code: give the 6 digits the app shows for rampart now".into(),
            ),
        })?;
        users::set_totp(&mut tx, &record.user.id, Some(&sealed), now).await?;
        users::advance_totp_step(&mut tx, &record.user.id, step).await?;
        self.log(
            &mut tx,
            caller,
            "user.mfa-enrol",
            format!("user {}", record.user.name),
            Some(json!({"mfa": "pending"})),
            Some(json!({"mfa": "totp"})),
        )
        .await?;
        self.store.commit(tx).await?;
        Ok(())
    }

    /// Turns the caller's second factor off, proven by a current code.
    /// Refused while the server requires MFA: then only an admin can reset
    /// it (and the person enrols again at the next login).
    pub async fn me_mfa_reset(&self, caller: &Caller, code: &str) -> Result<()> {
        let record = self.my_record(caller).await?;
        if self.settings.mfa == MfaPolicy::Required {
            return Err(OpsError::Forbidden(format!(
                "the server requires MFA (auth.mfa = \"required\"): only an admin can reset yours (rampart user mfa-reset {})",
                record.user.name
            )));
        }
        let Some(sealed) = &record.totp_secret else {
            return Err(OpsError::Invalid("MFA is not on".into()));
        };
        self.refuse_if_locked(&record)?;
        let seed = self.vault()?.open_string(sealed)?;
        let now = self.now();
        let step = match totp::check(seed.expose(), code, record.totp_last_step, now) {
            Ok(step) => step,
            Err(TotpError::BadSecret) => {
                return Err(OpsError::Invalid(TotpError::BadSecret.to_string()));
            }
            Err(e @ TotpError::Reused) => {
                return Err(self.failed_proof(&record, &e.to_string()).await);
            }
            Err(_) => {
                return Err(self
                    .failed_proof(&record, "invalid verification code")
                    .await);
            }
        };
        let mut tx = self.store.begin().await?;
        let fresh = users::get(&mut tx, &record.user.name).await?;
        self.refuse_if_locked(&fresh)?;
        // Use the code's step up first, so a concurrent login or reset
        // cannot use the same code.
        if !users::advance_totp_step(&mut tx, &record.user.id, step).await? {
            return Err(OpsError::Refused(TotpError::Reused.to_string()));
        }
        users::set_totp(&mut tx, &record.user.id, None, now).await?;
        let mut state = failure_state(&fresh);
        state.record_success();
        users::set_user_failures(&mut tx, &record.user.id, &failure_row(&state)).await?;
        self.log(
            &mut tx,
            caller,
            "user.mfa-reset",
            format!("user {}", record.user.name),
            Some(json!({"mfa": "totp"})),
            Some(json!({"mfa": "none"})),
        )
        .await?;
        self.store.commit(tx).await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_people_use_me() {
        let person = Caller {
            name: "alice".into(),
            role: Role::User,
            via: Via::Ssh,
        };
        assert!(require_person(&person).is_ok());
        let err = require_person(&Caller::local()).unwrap_err();
        assert!(err.to_string().contains("use it over SSH"), "{err}");
    }
}
