//! The admin and auditor verbs, as functions taking the caller's identity.
//! This is the one path for every change to users, assets, accounts and
//! permissions: the local CLI, `ssh bastion rampart ...` and the console
//! screens all come through here. Each verb checks the caller's role, makes
//! its change and writes its operation-log row in one transaction, so a
//! refused or failed verb leaves nothing behind.
//!
//! `asset test` is the one verb that reaches a target: through
//! `upstream::probe_ssh`, which authenticates and disconnects.
//!
//! Must never: return or log a plaintext secret except the one-time
//! passwords a verb creates for the caller to hand over (returned once, in a
//! `Secret`), or touch SQL directly (that is `store`).

mod access;
mod assets;
mod audit;
mod demo;
mod import;
mod me;
mod probe;
mod sessions;
#[cfg(test)]
mod testing;
mod users;

pub use access::{AclSpec, FilterSpec, PermSpec};
pub use assets::{AccountEdit, AccountSecret, AssetSpec, NodeMoved, NodeView};
pub use demo::{DEMO_ACCOUNT, DEMO_ASSET};
pub use import::ImportSummary;
pub use me::{MeView, MfaEnrolment, MfaStatus, PENDING_ENROLMENT, require_person};
pub use probe::{AssetTest, HostKeyStatus};
pub use users::{UserAdded, UserEdit, UserSpec, UserView};

use std::sync::Arc;

use jiff::Timestamp;
use serde::Serialize;
use sqlx::SqliteConnection;

use crate::audit::{AuditEvent, Via};
use crate::auth::LockoutPolicy;
use crate::auth::login::MfaPolicy;
use crate::clock::Clock;
use crate::model::{ParseError, Role};
use crate::store::{Store, StoreError};
use crate::vault::{Vault, VaultError};

/// Who is asking, and through which door.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    pub name: String,
    pub role: Role,
    pub via: Via,
}

impl Caller {
    /// The local operator on the bastion host: whoever can run the binary
    /// against the data dir can read the database anyway, so they act as
    /// admin (DESIGN.md §3: local root = admin). The log names the OS user.
    pub fn local() -> Caller {
        let user = std::env::var("USER")
            .or_else(|_| std::env::var("LOGNAME"))
            .unwrap_or_else(|_| "root".to_string());
        Caller {
            name: format!("local:{user}"),
            role: Role::Admin,
            via: Via::Cli,
        }
    }
}

/// Why a verb did not happen; its `Display` is the one line a person sees.
#[derive(Debug, thiserror::Error)]
pub enum OpsError {
    #[error("permission denied: {0}")]
    Forbidden(String),
    /// A failed proof after login (a wrong current password or TOTP code in
    /// `me ...`), or a lock from such failures. Like `Forbidden`, the front
    /// door logs it as a refusal.
    #[error("{0}")]
    Refused(String),
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Parse(#[from] ParseError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Vault(#[from] VaultError),
    // Transparent: with `{0}` the error's text appeared twice, once as this
    // error and once as its source, in the `{:#}` chain the CLI prints.
    #[error(transparent)]
    Import(#[from] crate::import::ImportError),
}

pub type Result<T, E = OpsError> = std::result::Result<T, E>;

/// Settings the verbs need from the configuration.
#[derive(Debug, Clone)]
pub struct OpsSettings {
    pub password_min_length: usize,
    pub time_zone: jiff::tz::TimeZone,
    /// Failed proofs in `me ...` (a wrong current password or code) count
    /// towards the same lock as failed logins.
    pub lockout: LockoutPolicy,
    pub mfa: MfaPolicy,
    /// Whether a password can log in at all (`auth.methods` has password or
    /// keyboard-interactive): decides what counts as a person's last way in.
    pub password_login: bool,
}

impl Default for OpsSettings {
    fn default() -> Self {
        OpsSettings {
            password_min_length: 12,
            time_zone: jiff::tz::TimeZone::UTC,
            lockout: LockoutPolicy::default(),
            mfa: MfaPolicy::Optional,
            password_login: true,
        }
    }
}

/// The verbs, bound to a store, a vault and a clock.
#[derive(Clone)]
pub struct Ops {
    store: Store,
    vault: Option<Vault>,
    clock: Arc<dyn Clock>,
    settings: OpsSettings,
}

impl Ops {
    pub fn new(
        store: Store,
        vault: Option<Vault>,
        clock: Arc<dyn Clock>,
        settings: OpsSettings,
    ) -> Ops {
        Ops {
            store,
            vault,
            clock,
            settings,
        }
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    pub fn settings(&self) -> &OpsSettings {
        &self.settings
    }

    fn now(&self) -> Timestamp {
        self.clock.now()
    }

    fn vault(&self) -> Result<&Vault> {
        self.vault.as_ref().ok_or_else(|| {
            OpsError::Invalid(
                "no master key is available: set RAMPART_MASTER_KEY or restore data_dir/master.key"
                    .into(),
            )
        })
    }

    /// Writes the operation-log row of a change, in the change's transaction.
    async fn log(
        &self,
        conn: &mut SqliteConnection,
        caller: &Caller,
        verb: &str,
        object: String,
        before: Option<serde_json::Value>,
        after: Option<serde_json::Value>,
    ) -> Result<()> {
        crate::audit::record(
            conn,
            &AuditEvent::Operation {
                actor: caller.name.clone(),
                actor_role: caller.role,
                via: caller.via,
                verb: verb.to_string(),
                object,
                before,
                after,
            },
            self.now(),
        )
        .await?;
        Ok(())
    }
}

pub(crate) fn require_admin(caller: &Caller, what: &str) -> Result<()> {
    match caller.role {
        Role::Admin => Ok(()),
        Role::Auditor | Role::User => Err(OpsError::Forbidden(format!(
            "{what} needs the admin role ({} is {})",
            caller.name, caller.role
        ))),
    }
}

fn require_auditor(caller: &Caller, what: &str) -> Result<()> {
    match caller.role {
        Role::Admin | Role::Auditor => Ok(()),
        Role::User => Err(OpsError::Forbidden(format!(
            "{what} needs the auditor or admin role ({} is {})",
            caller.name, caller.role
        ))),
    }
}

/// A value as it goes into an operation-log row.
fn snapshot<T: Serialize>(value: &T) -> Option<serde_json::Value> {
    serde_json::to_value(value).ok()
}

/// An object snapshot with extra top-level fields merged in (`password:
/// set`, `groups`), so operation rows stay flat and diffable.
fn with(base: Option<serde_json::Value>, extra: serde_json::Value) -> Option<serde_json::Value> {
    match (base, extra) {
        (Some(serde_json::Value::Object(mut b)), serde_json::Value::Object(e)) => {
            b.extend(e);
            Some(serde_json::Value::Object(b))
        }
        (base, _) => base,
    }
}

/// See [`crate::model::check_name`].
fn check_name(kind: &'static str, name: &str) -> Result<()> {
    Ok(crate::model::check_name(kind, name)?)
}

/// Parses a time given on the command line: RFC 3339 (`2026-12-01T08:00:00Z`),
/// a civil date-time in the configured zone (`2026-12-01 08:00`), or a date
/// (`2026-12-01`, midnight in the configured zone).
pub fn parse_time(text: &str, tz: &jiff::tz::TimeZone) -> Result<Timestamp, ParseError> {
    let expected = "RFC 3339 (2026-12-01T08:00:00Z), 'YYYY-MM-DD HH:MM' or 'YYYY-MM-DD'";
    if let Ok(t) = text.parse::<Timestamp>() {
        return Ok(t);
    }
    let civil = text
        .parse::<jiff::civil::DateTime>()
        .or_else(|_| {
            text.parse::<jiff::civil::Date>()
                .map(|d| d.to_datetime(jiff::civil::Time::midnight()))
        })
        .map_err(|_| ParseError::new("time", text, expected))?;
    tz.to_ambiguous_zoned(civil)
        .compatible()
        .map(|z| z.timestamp())
        .map_err(|_| ParseError::new("time", text, expected))
}

/// A moment to list from or to: a time as for [`parse_time`], or a
/// duration ago (`30m`, `24h`, `7d`, `2w`).
pub fn parse_since(
    text: &str,
    tz: &jiff::tz::TimeZone,
    now: Timestamp,
) -> Result<Timestamp, ParseError> {
    let ago = text
        .strip_suffix(['s', 'm', 'h', 'd', 'w'])
        .and_then(|n| n.parse::<i64>().ok())
        .filter(|n| *n >= 0);
    if let (Some(n), Some(unit)) = (ago, text.chars().last()) {
        let seconds = match unit {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            'd' => 86_400,
            _ => 7 * 86_400,
        };
        let span = jiff::SignedDuration::from_secs(n.saturating_mul(seconds));
        return Ok(now.checked_sub(span).unwrap_or(Timestamp::MIN));
    }
    parse_time(text, tz).map_err(|_| {
        ParseError::new(
            "time",
            text,
            "a time (2026-12-01, 2026-12-01 08:00, RFC 3339) or a duration ago (24h, 7d)",
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_safe_in_login_names() {
        for ok in ["alice", "web-1", "db.prod", "_svc", "A1"] {
            assert!(check_name("user", ok).is_ok(), "{ok}");
        }
        for bad in ["", "al ice", "root@web1", "-x", ".hidden", "a/b", "é"] {
            assert!(check_name("user", bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn times_parse_in_the_configured_zone() {
        let paris = jiff::tz::TimeZone::get("Europe/Paris").unwrap();
        let t = parse_time("2026-12-01 08:00", &paris).unwrap();
        assert_eq!(t.to_string(), "2026-12-01T07:00:00Z");
        assert_eq!(
            parse_time("2026-12-01", &jiff::tz::TimeZone::UTC)
                .unwrap()
                .to_string(),
            "2026-12-01T00:00:00Z"
        );
        assert!(parse_time("tomorrow", &paris).is_err());
    }
}
