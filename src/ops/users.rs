//! User verbs: add, edit, enable/disable, remove, passwords, unlock, MFA
//! reset, public keys, and groups with their members.

use jiff::Timestamp;
use serde::Serialize;
use serde_json::json;

use super::{
    Caller, Ops, OpsError, Result, check_name, require_admin, require_auditor, snapshot, with,
};
use crate::auth;
use crate::model::{Group, Role, User, UserKey, new_id};
use crate::store::{self, StoreError, users};
use crate::vault::Secret;

/// What `user add` takes.
#[derive(Debug, Clone, Default)]
pub struct UserSpec {
    pub name: String,
    pub role: Option<Role>,
    pub email: Option<String>,
    /// A password chosen by the admin; none (and no key) means a one-time
    /// password is generated, to be changed at first login.
    pub password: Option<Secret<String>>,
    pub keys: Vec<String>,
    pub groups: Vec<String>,
    pub expires_at: Option<Timestamp>,
}

/// What `user add` gives back: the user, and the one-time password if one
/// was generated (shown once, never stored in clear).
#[derive(Debug)]
pub struct UserAdded {
    pub user: User,
    pub one_time_password: Option<Secret<String>>,
}

/// A user with their groups and keys, for `user show`.
#[derive(Debug, Clone, Serialize)]
pub struct UserView {
    #[serde(flatten)]
    pub user: User,
    pub groups: Vec<String>,
    pub keys: Vec<UserKey>,
}

/// What `user edit` changes; `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct UserEdit {
    pub role: Option<Role>,
    pub email: Option<Option<String>>,
    pub expires_at: Option<Option<Timestamp>>,
    /// Replaces the user's group membership with exactly these groups
    /// (`Some(vec![])` leaves every group); every group must exist.
    pub groups: Option<Vec<String>>,
}

/// See [`crate::model::check_email`].
fn check_email(email: &str) -> Result<()> {
    Ok(crate::model::check_email(email)?)
}

impl Ops {
    /// The rules for a password a person chooses: the configured length and
    /// the strength rule. The error never contains the password.
    pub(super) fn check_password_policy(&self, password: &Secret<String>) -> Result<()> {
        if password.expose().chars().count() < self.settings.password_min_length {
            return Err(OpsError::Invalid(format!(
                "the password is too short: use at least {} characters",
                self.settings.password_min_length
            )));
        }
        auth::check_password_strength(password.expose()).map_err(OpsError::Invalid)
    }

    pub(super) fn password_hash(&self, password: &Secret<String>) -> Result<String> {
        self.check_password_policy(password)?;
        auth::hash_password(password).map_err(|e| OpsError::Invalid(e.to_string()))
    }

    pub async fn user_add(&self, caller: &Caller, spec: UserSpec) -> Result<UserAdded> {
        require_admin(caller, "adding a user")?;
        let mut tx = self.store.begin().await?;
        let added = self.insert_user(&mut tx, caller, &spec).await?;
        store::bump_change_counter(&mut tx).await?;
        self.store.commit(tx).await?;
        Ok(added)
    }

    /// Validates and inserts one user with keys and groups, and logs it, in
    /// the caller's transaction (shared by `user add` and `import users`).
    pub(super) async fn insert_user(
        &self,
        tx: &mut store::Conn,
        caller: &Caller,
        spec: &UserSpec,
    ) -> Result<UserAdded> {
        check_name("user name", &spec.name)?;
        if let Some(email) = &spec.email {
            check_email(email)?;
        }
        let parsed_keys = spec
            .keys
            .iter()
            .map(|line| auth::parse_public_key_line(line))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| OpsError::Invalid(e.to_string()))?;
        let (hash, one_time_password) = match (&spec.password, parsed_keys.is_empty()) {
            (Some(pw), _) => (Some(self.password_hash(pw)?), None),
            (None, true) => {
                let otp = auth::generate_one_time_password();
                let hash =
                    auth::hash_password(&otp).map_err(|e| OpsError::Invalid(e.to_string()))?;
                (Some(hash), Some(otp))
            }
            (None, false) => (None, None),
        };
        let now = self.now();
        let new = users::NewUser {
            id: new_id(),
            name: spec.name.clone(),
            role: spec.role.unwrap_or(Role::User),
            email: spec.email.clone(),
            password_hash: hash,
            must_change_password: one_time_password.is_some(),
            active: true,
            expires_at: spec.expires_at,
        };
        users::insert(tx, &new, now).await?;
        for key in &parsed_keys {
            users::add_key(tx, &new.id, &new.name, &stored_key(key), now).await?;
        }
        for group in &spec.groups {
            let g = store::groups::get(tx, group).await?;
            store::groups::add_member(tx, &g.id, &new.id).await?;
        }
        let user = users::get(tx, &spec.name).await?.user;
        let after = with(
            snapshot(&user),
            json!({
                "groups": spec.groups,
                "keys": parsed_keys.iter().map(|k| &k.fingerprint).collect::<Vec<_>>(),
                "password": if new.password_hash.is_some() { "set" } else { "none" },
            }),
        );
        self.log(
            tx,
            caller,
            "user.add",
            format!("user {}", spec.name),
            None,
            after,
        )
        .await?;
        Ok(UserAdded {
            user,
            one_time_password,
        })
    }

    pub async fn user_list(&self, caller: &Caller) -> Result<Vec<User>> {
        require_auditor(caller, "listing users")?;
        let mut conn = self.store.conn().await?;
        Ok(users::list(&mut conn)
            .await?
            .into_iter()
            .map(|r| r.user)
            .collect())
    }

    pub async fn user_show(&self, caller: &Caller, name: &str) -> Result<UserView> {
        if caller.name != name {
            require_auditor(caller, "showing another user")?;
        }
        let mut conn = self.store.conn().await?;
        let record = users::get(&mut conn, name).await?;
        let groups = users::group_names(&mut conn, &record.user.id).await?;
        let keys = users::keys(&mut conn, &record.user.id).await?;
        Ok(UserView {
            user: record.user,
            groups,
            keys,
        })
    }

    /// Refuses a change that would leave no active admin to undo it.
    async fn keep_an_admin(&self, conn: &mut store::Conn, changing: &User) -> Result<()> {
        if changing.role != Role::Admin || !changing.active {
            return Ok(());
        }
        let others = users::list(conn)
            .await?
            .into_iter()
            .filter(|r| r.user.role == Role::Admin && r.user.active && r.user.id != changing.id)
            .count();
        if others == 0 {
            return Err(OpsError::Invalid(format!(
                "{} is the last active admin: add or enable another admin first",
                changing.name
            )));
        }
        Ok(())
    }

    pub async fn user_edit(&self, caller: &Caller, name: &str, edit: UserEdit) -> Result<User> {
        require_admin(caller, "editing a user")?;
        if let Some(Some(email)) = &edit.email {
            check_email(email)?;
        }
        let mut tx = self.store.begin().await?;
        let before = users::get(&mut tx, name).await?.user;
        if edit.role.is_some_and(|r| r != Role::Admin) {
            self.keep_an_admin(&mut tx, &before).await?;
        }
        let profile = users::Profile {
            role: edit.role.unwrap_or(before.role),
            email: edit.email.clone().unwrap_or_else(|| before.email.clone()),
            active: before.active,
            expires_at: edit.expires_at.unwrap_or(before.expires_at),
        };
        users::update_profile(&mut tx, &before.id, &profile, self.now()).await?;
        let groups_before = users::group_names(&mut tx, &before.id).await?;
        if let Some(groups) = &edit.groups {
            set_groups(&mut tx, &before.id, &groups_before, groups).await?;
        }
        let after = users::get(&mut tx, name).await?.user;
        let groups_after = users::group_names(&mut tx, &before.id).await?;
        self.log(
            &mut tx,
            caller,
            "user.edit",
            format!("user {name}"),
            with(snapshot(&before), json!({ "groups": groups_before })),
            with(snapshot(&after), json!({ "groups": groups_after })),
        )
        .await?;
        store::bump_change_counter(&mut tx).await?;
        self.store.commit(tx).await?;
        Ok(after)
    }

    pub async fn user_set_active(&self, caller: &Caller, name: &str, active: bool) -> Result<User> {
        require_admin(
            caller,
            if active {
                "enabling a user"
            } else {
                "disabling a user"
            },
        )?;
        let mut tx = self.store.begin().await?;
        let before = users::get(&mut tx, name).await?.user;
        if !active {
            self.keep_an_admin(&mut tx, &before).await?;
        }
        let profile = users::Profile {
            role: before.role,
            email: before.email.clone(),
            active,
            expires_at: before.expires_at,
        };
        users::update_profile(&mut tx, &before.id, &profile, self.now()).await?;
        let after = users::get(&mut tx, name).await?.user;
        let verb = if active {
            "user.enable"
        } else {
            "user.disable"
        };
        self.log(
            &mut tx,
            caller,
            verb,
            format!("user {name}"),
            snapshot(&before),
            snapshot(&after),
        )
        .await?;
        store::bump_change_counter(&mut tx).await?;
        self.store.commit(tx).await?;
        Ok(after)
    }

    pub async fn user_remove(&self, caller: &Caller, name: &str) -> Result<()> {
        require_admin(caller, "removing a user")?;
        let mut tx = self.store.begin().await?;
        let before = users::get(&mut tx, name).await?.user;
        self.keep_an_admin(&mut tx, &before).await?;
        users::delete(&mut tx, &before.id).await?;
        store::filters::forget_target(&mut tx, &before.id).await?;
        self.log(
            &mut tx,
            caller,
            "user.remove",
            format!("user {name}"),
            snapshot(&before),
            None,
        )
        .await?;
        store::bump_change_counter(&mut tx).await?;
        self.store.commit(tx).await?;
        Ok(())
    }

    /// Sets a password chosen by the admin (`Some`), or generates a one-time
    /// password to be changed at the next login (`None`, returned once).
    /// Admins only, for themselves too: a person changes their own password
    /// with `me passwd`, which asks for the current one.
    pub async fn user_passwd(
        &self,
        caller: &Caller,
        name: &str,
        password: Option<Secret<String>>,
    ) -> Result<Option<Secret<String>>> {
        require_admin(
            caller,
            "setting a user's password (yours: `rampart me passwd`)",
        )?;
        let (hash, otp) = match &password {
            Some(pw) => (self.password_hash(pw)?, None),
            None => {
                let otp = auth::generate_one_time_password();
                let hash =
                    auth::hash_password(&otp).map_err(|e| OpsError::Invalid(e.to_string()))?;
                (hash, Some(otp))
            }
        };
        let mut tx = self.store.begin().await?;
        let user = users::get(&mut tx, name).await?.user;
        users::set_password(&mut tx, &user.id, &hash, otp.is_some(), self.now()).await?;
        let after = json!({
            "password": "changed",
            "must_change_password": otp.is_some(),
        });
        self.log(
            &mut tx,
            caller,
            "user.passwd",
            format!("user {name}"),
            None,
            Some(after),
        )
        .await?;
        self.store.commit(tx).await?;
        Ok(otp)
    }

    pub async fn user_unlock(&self, caller: &Caller, name: &str) -> Result<User> {
        require_admin(caller, "unlocking a user")?;
        let mut tx = self.store.begin().await?;
        let before = users::get(&mut tx, name).await?.user;
        users::unlock(&mut tx, &before.id).await?;
        let after = users::get(&mut tx, name).await?.user;
        self.log(
            &mut tx,
            caller,
            "user.unlock",
            format!("user {name}"),
            snapshot(&before),
            snapshot(&after),
        )
        .await?;
        self.store.commit(tx).await?;
        Ok(after)
    }

    /// Clears a user's TOTP seed: they enrol again at the next login.
    pub async fn user_mfa_reset(&self, caller: &Caller, name: &str) -> Result<()> {
        require_admin(caller, "resetting a user's MFA")?;
        let mut tx = self.store.begin().await?;
        let record = users::get(&mut tx, name).await?;
        if record.totp_secret.is_none() {
            return Err(OpsError::Invalid(format!(
                "user {name:?} has no MFA enrolled"
            )));
        }
        users::set_totp(&mut tx, &record.user.id, None, self.now()).await?;
        self.log(
            &mut tx,
            caller,
            "user.mfa-reset",
            format!("user {name}"),
            Some(json!({"mfa": "enrolled"})),
            Some(json!({"mfa": "none"})),
        )
        .await?;
        self.store.commit(tx).await?;
        Ok(())
    }

    pub async fn user_key_add(&self, caller: &Caller, name: &str, line: &str) -> Result<UserKey> {
        require_admin(
            caller,
            "adding a key to a user (yours: `rampart me keys add`)",
        )?;
        self.key_add(caller, name, line).await
    }

    /// Adds a public key and logs it; the caller has been checked.
    pub(super) async fn key_add(&self, caller: &Caller, name: &str, line: &str) -> Result<UserKey> {
        let key =
            auth::parse_public_key_line(line).map_err(|e| OpsError::Invalid(e.to_string()))?;
        let mut tx = self.store.begin().await?;
        let user = users::get(&mut tx, name).await?.user;
        let id = users::add_key(&mut tx, &user.id, name, &stored_key(&key), self.now()).await?;
        let added = users::keys(&mut tx, &user.id)
            .await?
            .into_iter()
            .find(|k| k.id == id)
            .ok_or_else(|| StoreError::Corrupt("key just added is missing".into()))?;
        self.log(
            &mut tx,
            caller,
            "user.key-add",
            format!("user {name}"),
            None,
            snapshot(&added),
        )
        .await?;
        self.store.commit(tx).await?;
        Ok(added)
    }

    pub async fn user_key_remove(
        &self,
        caller: &Caller,
        name: &str,
        fingerprint: &str,
    ) -> Result<()> {
        require_admin(
            caller,
            "removing a user's key (yours: `rampart me keys remove`)",
        )?;
        let mut tx = self.store.begin().await?;
        let user = users::get(&mut tx, name).await?.user;
        let before = users::keys(&mut tx, &user.id)
            .await?
            .into_iter()
            .find(|k| k.fingerprint == fingerprint || k.id == fingerprint);
        if !users::remove_key(&mut tx, &user.id, fingerprint).await? {
            return Err(OpsError::Invalid(format!(
                "user {name:?} has no key {fingerprint} (see `rampart user show {name}`)"
            )));
        }
        self.log_key_remove(&mut tx, caller, name, before).await?;
        self.store.commit(tx).await?;
        Ok(())
    }

    pub(super) async fn log_key_remove(
        &self,
        tx: &mut store::Conn,
        caller: &Caller,
        name: &str,
        before: Option<UserKey>,
    ) -> Result<()> {
        self.log(
            tx,
            caller,
            "user.key-remove",
            format!("user {name}"),
            snapshot(&before),
            None,
        )
        .await
    }

    // -------------------------------------------------------------- groups --

    pub async fn group_add(&self, caller: &Caller, name: &str) -> Result<Group> {
        require_admin(caller, "adding a group")?;
        check_name("group name", name)?;
        let mut tx = self.store.begin().await?;
        store::groups::insert(&mut tx, &new_id(), name, self.now()).await?;
        let group = store::groups::get(&mut tx, name).await?;
        self.log(
            &mut tx,
            caller,
            "group.add",
            format!("group {name}"),
            None,
            snapshot(&group),
        )
        .await?;
        self.store.commit(tx).await?;
        Ok(group)
    }

    pub async fn group_remove(&self, caller: &Caller, name: &str) -> Result<()> {
        require_admin(caller, "removing a group")?;
        let mut tx = self.store.begin().await?;
        let group = store::groups::get(&mut tx, name).await?;
        store::groups::delete(&mut tx, &group.id).await?;
        store::filters::forget_target(&mut tx, &group.id).await?;
        self.log(
            &mut tx,
            caller,
            "group.remove",
            format!("group {name}"),
            snapshot(&group),
            None,
        )
        .await?;
        store::bump_change_counter(&mut tx).await?;
        self.store.commit(tx).await?;
        Ok(())
    }

    pub async fn group_list(&self, caller: &Caller) -> Result<Vec<Group>> {
        require_auditor(caller, "listing groups")?;
        let mut conn = self.store.conn().await?;
        Ok(store::groups::list(&mut conn).await?)
    }

    /// Adds (`add = true`) or removes members; all named users must exist,
    /// and nothing changes if one does not.
    pub async fn group_members(
        &self,
        caller: &Caller,
        group: &str,
        names: &[String],
        add: bool,
    ) -> Result<Group> {
        require_admin(caller, "changing group members")?;
        let mut tx = self.store.begin().await?;
        let before = store::groups::get(&mut tx, group).await?;
        for name in names {
            let user = users::get(&mut tx, name).await?.user;
            let changed = if add {
                store::groups::add_member(&mut tx, &before.id, &user.id).await?
            } else {
                store::groups::remove_member(&mut tx, &before.id, &user.id).await?
            };
            if !changed && !add {
                return Err(OpsError::Invalid(format!(
                    "user {name:?} is not a member of group {group:?}"
                )));
            }
        }
        let after = store::groups::get(&mut tx, group).await?;
        let verb = if add {
            "group.members-add"
        } else {
            "group.members-remove"
        };
        self.log(
            &mut tx,
            caller,
            verb,
            format!("group {group}"),
            snapshot(&before),
            snapshot(&after),
        )
        .await?;
        store::bump_change_counter(&mut tx).await?;
        self.store.commit(tx).await?;
        Ok(after)
    }
}

/// Makes `user_id` a member of exactly `wanted` (it is in `current` now);
/// an unknown group name is an error before anything changes.
async fn set_groups(
    tx: &mut store::Conn,
    user_id: &str,
    current: &[String],
    wanted: &[String],
) -> Result<()> {
    let mut groups = Vec::with_capacity(wanted.len());
    for name in wanted {
        groups.push(store::groups::get(tx, name).await?);
    }
    for name in current.iter().filter(|g| !wanted.contains(g)) {
        let group = store::groups::get(tx, name).await?;
        store::groups::remove_member(tx, &group.id, user_id).await?;
    }
    for group in groups {
        store::groups::add_member(tx, &group.id, user_id).await?;
    }
    Ok(())
}

fn stored_key(key: &auth::ParsedKey) -> users::NewKey {
    users::NewKey {
        algorithm: key.algorithm.clone(),
        fingerprint: key.fingerprint.clone(),
        public_key: key.openssh.clone(),
        comment: key.comment.clone(),
    }
}
