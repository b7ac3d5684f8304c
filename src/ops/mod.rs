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
//! Roles are read when a verb runs, never taken from a login (issue 13):
//! the SSH front doors build their [`Caller`] for each verb with
//! [`Ops::caller`] or [`Ops::recheck`], which refuse a person who is
//! disabled, expired or removed and take their current role; and every
//! change checks its caller's standing again inside its own transaction,
//! as it writes its operation-log row, so a disable or demotion committed
//! meanwhile leaves no window.
//!
//! Must never: return or log a plaintext secret except the one-time
//! passwords a verb creates for the caller to hand over (returned once, in a
//! `Secret`), or touch SQL directly (that is `store`).

mod access;
mod assets;
mod audit;
mod db;
mod demo;
mod import;
mod me;
mod probe;
mod rdp;
mod recording_link;
mod remote_apps;
mod sessions;
#[cfg(test)]
mod testing;
mod users;
mod web;

pub use access::{AclSpec, FilterSpec, PermSpec};
pub use assets::{AccountEdit, AccountSecret, AssetSpec, NodeMoved, NodeView};
pub use db::{DbTicket, TUNNELLED};
pub use demo::{DEMO_ACCOUNT, DEMO_ASSET};
pub use import::ImportSummary;
pub use me::{MeView, MfaEnrolment, MfaStatus, PENDING_ENROLMENT, require_person};
pub use probe::{AssetTest, HostKeyStatus};
pub use rdp::{RdpPassword, RdpTicket, TICKET_LIFETIME, TICKETS_PER_ASSET, only_account};
pub use recording_link::{RECORDING_TICKET, RecordingLink};
pub use remote_apps::rdp_file;
pub use users::{UserAdded, UserEdit, UserSpec, UserView};
pub use web::{WEB_PROTOCOLS, WebLink};

use std::sync::Arc;

use jiff::Timestamp;
use serde::Serialize;
use sqlx::AnyConnection;

use crate::audit::{AuditEvent, Via};
use crate::auth::LockoutPolicy;
use crate::auth::login::MfaPolicy;
use crate::clock::Clock;
use crate::model::{Identity, ParseError, Role, User};
use crate::store::users as user_rows;
use crate::store::{Store, StoreError};
use crate::vault::{Vault, VaultError};

/// Who is asking, and through which door. A person's `Caller` is built for
/// each verb by [`Ops::caller`] (or refreshed by [`Ops::recheck`]), so its
/// role is the one the store holds now; a changing verb checks it again in
/// its transaction.
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
    #[error(transparent)]
    Search(#[from] crate::search::SearchError),
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
    /// This node's name (`cluster.node`): sessions are listed with the
    /// node that runs them.
    pub node: String,
    /// `rdp.password_lifetime`: zero turns `me rdp-password` off.
    pub rdp_password_lifetime: std::time::Duration,
    /// Where web assets are served (`http.listen` with `http.domain`);
    /// `None`: the web side is off.
    pub web: Option<crate::model::WebBase>,
}

impl Default for OpsSettings {
    fn default() -> Self {
        OpsSettings {
            password_min_length: 12,
            time_zone: jiff::tz::TimeZone::UTC,
            lockout: LockoutPolicy::default(),
            mfa: MfaPolicy::Optional,
            password_login: true,
            node: String::new(),
            rdp_password_lifetime: std::time::Duration::from_secs(12 * 3600),
            web: None,
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
        conn: &mut AnyConnection,
        caller: &Caller,
        verb: &str,
        object: String,
        before: Option<serde_json::Value>,
        after: Option<serde_json::Value>,
    ) -> Result<()> {
        self.still_standing(conn, caller, &object, before.as_ref())
            .await?;
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

/// A person's standing: what decides whether they may still act, and with
/// which role. Read from the store, or from the `before` image of a change
/// to their own row.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
pub struct Standing {
    pub id: String,
    pub role: Role,
    pub active: bool,
    pub expires_at: Option<Timestamp>,
}

impl Standing {
    fn of(user: &User) -> Standing {
        Standing {
            id: user.id.clone(),
            role: user.role,
            active: user.active,
            expires_at: user.expires_at,
        }
    }
}

/// Why `name` may no longer act on the bastion, as the line they are
/// shown, or `None` while they may. `standing` is `None` when no user has
/// that name; `user_id`, when known, is the account they logged in as (a
/// user removed and added again under the same name is someone else).
/// The role is not judged here: see [`role_changed`].
pub fn withdrawn(
    standing: Option<&Standing>,
    name: &str,
    user_id: Option<&str>,
    now: Timestamp,
) -> Option<String> {
    let Some(standing) = standing.filter(|s| user_id.is_none_or(|id| id == s.id)) else {
        return Some(format!("{name} no longer exists"));
    };
    if !standing.active {
        return Some(format!("{name} is disabled"));
    }
    // As a grant's window and the policy's user check: expired at the instant.
    match standing.expires_at {
        Some(at) if now >= at => Some(format!("{name} expired at {at}")),
        _ => None,
    }
}

/// The line for a person whose role is no longer the one they act with.
pub fn role_changed(standing: &Standing, name: &str, role: Role) -> Option<String> {
    (standing.role != role).then(|| format!("{name} is now {}", standing.role))
}

impl Ops {
    /// The person behind `identity` as the store knows them now, acting
    /// through `via`: their current role, or a refusal saying why they may
    /// no longer act (disabled, expired, removed). The SSH front doors call
    /// it for every verb, so a role captured at login is never checked.
    pub async fn caller(&self, identity: &Identity, via: Via) -> Result<Caller> {
        self.current(&identity.name, Some(&identity.user_id), via)
            .await
    }

    /// `caller` as the store knows them now (the desk holds one for as long
    /// as it is open). The local operator is no rampart user and stays as
    /// is.
    pub async fn recheck(&self, caller: &Caller) -> Result<Caller> {
        match caller.via {
            Via::Cli => Ok(caller.clone()),
            Via::Ssh | Via::Console | Via::Web => {
                self.current(&caller.name, None, caller.via).await
            }
        }
    }

    /// The standing of the user called `name`, `None` when there is none.
    /// For the server's watch over open channels; verbs use [`Ops::caller`].
    pub async fn standing(&self, name: &str) -> Result<Option<Standing>> {
        let mut conn = self.store.conn().await?;
        Ok(user_rows::find(&mut conn, name)
            .await?
            .map(|r| Standing::of(&r.user)))
    }

    async fn current(&self, name: &str, user_id: Option<&str>, via: Via) -> Result<Caller> {
        let standing = self.standing(name).await?;
        if let Some(why) = withdrawn(standing.as_ref(), name, user_id, self.now()) {
            return Err(OpsError::Forbidden(why));
        }
        let role = standing.map_or(Role::User, |s| s.role);
        Ok(Caller {
            name: name.to_string(),
            role,
            via,
        })
    }

    /// The caller's standing, checked in the transaction of the change it
    /// makes: a disable, removal, expiry or demotion committed since the
    /// caller was built refuses the change, which then rolls back. A change
    /// to the caller's own row (an admin disabling, demoting or removing
    /// themselves) is judged by its `before` image, which the verb read in
    /// this same transaction.
    async fn still_standing(
        &self,
        conn: &mut AnyConnection,
        caller: &Caller,
        object: &str,
        before: Option<&serde_json::Value>,
    ) -> Result<()> {
        if caller.via == Via::Cli {
            return Ok(());
        }
        let own = object
            .strip_prefix("user ")
            .is_some_and(|name| name == caller.name);
        let before = before
            .filter(|_| own)
            .and_then(|b| serde_json::from_value::<Standing>(b.clone()).ok());
        let standing = match before {
            Some(before) => Some(before),
            None => user_rows::find(conn, &caller.name)
                .await?
                .map(|r| Standing::of(&r.user)),
        };
        let why = withdrawn(standing.as_ref(), &caller.name, None, self.now()).or_else(|| {
            standing
                .as_ref()
                .and_then(|s| role_changed(s, &caller.name, caller.role))
        });
        match why {
            None => Ok(()),
            Some(why) => Err(OpsError::Forbidden(why)),
        }
    }
}

/// Refuses a caller without the admin role. The role is the caller's
/// current one (see [`Ops::caller`]); a change checks it again in its
/// transaction.
pub(crate) fn require_admin(caller: &Caller, what: &str) -> Result<()> {
    match caller.role {
        Role::Admin => Ok(()),
        Role::Auditor | Role::User => Err(OpsError::Forbidden(format!(
            "{what} needs the admin role ({} is {})",
            caller.name, caller.role
        ))),
    }
}

/// Refuses a caller who is neither auditor nor admin, as [`require_admin`].
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
    use crate::model::Identity;

    /// An admin named `name`, and the identity they would log in with.
    async fn staff(ops: &Ops, name: &str) -> Identity {
        let root = testing::admin();
        let spec = UserSpec {
            name: name.into(),
            role: Some(Role::Admin),
            ..Default::default()
        };
        ops.user_add(&root, spec).await.unwrap();
        let user = ops.user_show(&root, name).await.unwrap().user;
        Identity {
            user_id: user.id,
            name: user.name,
            role: user.role,
            groups: Vec::new(),
        }
    }

    fn forbidden(result: Result<impl std::fmt::Debug>) -> String {
        match result {
            Err(OpsError::Forbidden(why)) => why,
            other => panic!("expected a refusal, got {other:?}"),
        }
    }

    /// Issue 13, item 6: the role a verb checks is the store's, never the
    /// one captured at login, and a change re-reads it in its own
    /// transaction.
    #[tokio::test]
    async fn a_caller_stands_as_the_store_says_when_the_verb_runs() {
        let ops = testing::ops().await;
        let root = testing::admin();
        let eve = staff(&ops, "eve").await;
        let frank = staff(&ops, "frank").await;
        let gina = staff(&ops, "gina").await;
        let hank = staff(&ops, "hank").await;

        // Disabling oneself still works: judged by the row before the change.
        let self_caller = ops.caller(&gina, Via::Ssh).await.unwrap();
        ops.user_set_active(&self_caller, "gina", false)
            .await
            .unwrap();
        assert_eq!(
            forbidden(ops.caller(&gina, Via::Ssh).await),
            "gina is disabled"
        );

        // A caller built before a demotion cannot change anything after
        // it, even though its own role still says admin: the change's
        // transaction reads the store and rolls back.
        let stale = ops.caller(&eve, Via::Console).await.unwrap();
        assert_eq!(stale.role, Role::Admin);
        let demote = UserEdit {
            role: Some(Role::Auditor),
            ..Default::default()
        };
        ops.user_edit(&root, "eve", demote).await.unwrap();
        assert_eq!(
            forbidden(ops.group_add(&stale, "ops").await),
            "eve is now auditor"
        );
        assert!(ops.group_list(&root).await.unwrap().is_empty());
        let fresh = ops.recheck(&stale).await.unwrap();
        assert_eq!(fresh.role, Role::Auditor);
        assert_eq!(
            forbidden(ops.group_add(&fresh, "ops").await),
            "adding a group needs the admin role (eve is auditor)"
        );

        // Disabled, removed, expired: refused before any verb.
        let stale = ops.caller(&frank, Via::Ssh).await.unwrap();
        ops.user_set_active(&root, "frank", false).await.unwrap();
        assert_eq!(forbidden(ops.recheck(&stale).await), "frank is disabled");
        assert_eq!(
            forbidden(ops.group_add(&stale, "ops").await),
            "frank is disabled"
        );
        ops.user_remove(&root, "frank").await.unwrap();
        assert_eq!(
            forbidden(ops.caller(&frank, Via::Ssh).await),
            "frank no longer exists"
        );
        let expired = UserEdit {
            expires_at: Some(Some(ops.now())),
            ..Default::default()
        };
        ops.user_edit(&root, "hank", expired).await.unwrap();
        assert_eq!(
            forbidden(ops.caller(&hank, Via::Ssh).await),
            "hank expired at 2026-11-23T09:00:00Z"
        );
        assert!(ops.group_list(&root).await.unwrap().is_empty());
        // The local operator is no rampart user and is not looked up.
        assert_eq!(ops.recheck(&root).await.unwrap(), root);
    }

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
