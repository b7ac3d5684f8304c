//! Access verbs: permissions, command filters, login ACLs, and the two
//! questions admins ask every day ("who can reach X", "what can Y reach").

use jiff::Timestamp;

use super::{Caller, Ops, OpsError, Result, check_name, require_admin, require_auditor, snapshot};
use crate::model::{
    self, AccountSpec, AclAction, Actions, CommandFilter, FilterAction, Id, LoginAcl, Permission,
    ProtocolSpec, new_id,
};
use crate::policy::{Reach, Snapshot};
use crate::store::{self, Conn, StoreError};

/// What `perm add` and `perm edit` take.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PermSpec {
    pub name: String,
    pub users: Vec<String>,
    pub groups: Vec<String>,
    pub assets: Vec<String>,
    pub nodes: Vec<String>,
    pub accounts: AccountSpec,
    pub protocols: ProtocolSpec,
    pub actions: Actions,
    pub valid_from: Option<Timestamp>,
    pub valid_until: Option<Timestamp>,
    pub comment: String,
    /// Connections it grants wait for an admin's approval.
    pub require_approval: bool,
}

/// What `filter add` and `filter edit` take. Empty binding lists mean "any".
#[derive(Debug, Clone)]
pub struct FilterSpec {
    pub name: String,
    pub pattern: String,
    pub action: FilterAction,
    /// What the pattern is matched against.
    pub on: crate::model::Scope,
    pub priority: i32,
    pub users: Vec<String>,
    pub groups: Vec<String>,
    pub assets: Vec<String>,
    pub nodes: Vec<String>,
    pub accounts: AccountSpec,
}

/// What `acl add` and `acl edit` take.
#[derive(Debug, Clone)]
pub struct AclSpec {
    pub name: String,
    pub action: AclAction,
    pub priority: i32,
    pub users: Vec<String>,
    pub groups: Vec<String>,
    pub sources: Vec<String>,
    pub windows: Vec<String>,
}

/// Ids of the named users, groups, assets and nodes; the first unknown name
/// is an error and nothing is changed.
struct Resolved {
    users: Vec<Id>,
    groups: Vec<Id>,
    assets: Vec<Id>,
    nodes: Vec<Id>,
}

async fn resolve(
    conn: &mut Conn,
    users: &[String],
    groups: &[String],
    assets: &[String],
    nodes: &[String],
) -> Result<Resolved> {
    let mut r = Resolved {
        users: Vec::new(),
        groups: Vec::new(),
        assets: Vec::new(),
        nodes: Vec::new(),
    };
    for name in users {
        r.users.push(store::users::get(conn, name).await?.user.id);
    }
    for name in groups {
        r.groups.push(store::groups::get(conn, name).await?.id);
    }
    for name in assets {
        r.assets.push(store::assets::get(conn, name).await?.id);
    }
    for path in nodes {
        let path = model::normalize_node_path(path)?;
        r.nodes.push(store::nodes::get(conn, &path).await?.id);
    }
    Ok(r)
}

impl Ops {
    /// The rules every permission spec meets, for `perm add` and `perm edit`.
    fn check_perm_spec(&self, spec: &PermSpec) -> Result<()> {
        check_name("permission name", &spec.name)?;
        if spec.users.is_empty() && spec.groups.is_empty() {
            return Err(OpsError::Invalid(
                "a permission needs at least one --user or --group".into(),
            ));
        }
        if spec.assets.is_empty() && spec.nodes.is_empty() {
            return Err(OpsError::Invalid(
                "a permission needs at least one --asset or --node".into(),
            ));
        }
        if let (Some(from), Some(until)) = (spec.valid_from, spec.valid_until)
            && until <= from
        {
            return Err(OpsError::Invalid(format!(
                "--until {until} is not after --from {from}"
            )));
        }
        if let Some(until) = spec.valid_until
            && until <= self.now()
        {
            return Err(OpsError::Invalid(format!(
                "--until {until} is already past: the permission would never hold"
            )));
        }
        Ok(())
    }

    pub async fn perm_add(&self, caller: &Caller, spec: PermSpec) -> Result<Permission> {
        require_admin(caller, "adding a permission")?;
        self.check_perm_spec(&spec)?;
        let mut tx = self.store.begin().await?;
        let new = perm_row(&mut tx, new_id(), true, &spec).await?;
        store::permissions::insert(&mut tx, &new, self.now()).await?;
        let perm = store::permissions::get(&mut tx, &spec.name).await?;
        self.log(
            &mut tx,
            caller,
            "perm.add",
            format!("permission {}", spec.name),
            None,
            snapshot(&perm),
        )
        .await?;
        store::bump_change_counter(&mut tx).await?;
        self.store.commit(tx).await?;
        Ok(perm)
    }

    /// Replaces the permission `name` with `spec` as a whole (the console's
    /// edit form and `perm edit` send every field; `spec.name` may rename
    /// it). It keeps its id and its active flag. The server re-checks the
    /// running sessions against the new policy, as after `perm remove`, and
    /// ends those it no longer allows.
    pub async fn perm_edit(
        &self,
        caller: &Caller,
        name: &str,
        spec: PermSpec,
    ) -> Result<Permission> {
        require_admin(caller, "editing a permission")?;
        self.check_perm_spec(&spec)?;
        let mut tx = self.store.begin().await?;
        let before = store::permissions::get(&mut tx, name).await?;
        let new = perm_row(&mut tx, before.id.clone(), before.active, &spec).await?;
        store::permissions::update(&mut tx, &new, self.now()).await?;
        let after = store::permissions::get(&mut tx, &spec.name).await?;
        self.log(
            &mut tx,
            caller,
            "perm.edit",
            format!("permission {name}"),
            snapshot(&before),
            snapshot(&after),
        )
        .await?;
        store::bump_change_counter(&mut tx).await?;
        self.store.commit(tx).await?;
        Ok(after)
    }

    /// Enables or disables a permission. A disabled one grants nothing;
    /// the sessions only it allowed end at the change counter's bump.
    pub async fn perm_set_active(
        &self,
        caller: &Caller,
        name: &str,
        active: bool,
    ) -> Result<Permission> {
        require_admin(
            caller,
            if active {
                "enabling a permission"
            } else {
                "disabling a permission"
            },
        )?;
        let mut tx = self.store.begin().await?;
        let before = store::permissions::get(&mut tx, name).await?;
        store::permissions::set_active(&mut tx, &before.id, active, self.now()).await?;
        let after = store::permissions::get(&mut tx, name).await?;
        self.log(
            &mut tx,
            caller,
            if active {
                "perm.enable"
            } else {
                "perm.disable"
            },
            format!("permission {name}"),
            snapshot(&before),
            snapshot(&after),
        )
        .await?;
        store::bump_change_counter(&mut tx).await?;
        self.store.commit(tx).await?;
        Ok(after)
    }

    pub async fn perm_list(&self, caller: &Caller) -> Result<Vec<Permission>> {
        require_auditor(caller, "listing permissions")?;
        let mut conn = self.store.conn().await?;
        Ok(store::permissions::list(&mut conn).await?)
    }

    pub async fn perm_show(&self, caller: &Caller, name: &str) -> Result<Permission> {
        require_auditor(caller, "showing a permission")?;
        let mut conn = self.store.conn().await?;
        Ok(store::permissions::get(&mut conn, name).await?)
    }

    pub async fn perm_remove(&self, caller: &Caller, name: &str) -> Result<()> {
        require_admin(caller, "removing a permission")?;
        let mut tx = self.store.begin().await?;
        let perm = store::permissions::get(&mut tx, name).await?;
        store::permissions::delete(&mut tx, &perm.id).await?;
        self.log(
            &mut tx,
            caller,
            "perm.remove",
            format!("permission {name}"),
            snapshot(&perm),
            None,
        )
        .await?;
        store::bump_change_counter(&mut tx).await?;
        self.store.commit(tx).await?;
        Ok(())
    }

    /// The policy as it stands now, built from the database.
    pub async fn policy_snapshot(&self) -> Result<Snapshot> {
        let mut conn = self.store.conn().await?;
        let data = store::policy::load(&mut conn).await?;
        Snapshot::build(data).map_err(|e| OpsError::Invalid(e.to_string()))
    }

    /// Who can reach an asset now, and through which permission.
    pub async fn perm_who(&self, caller: &Caller, asset: &str) -> Result<Vec<Reach>> {
        require_auditor(caller, "asking who can reach an asset")?;
        let snapshot = self.policy_snapshot().await?;
        snapshot.who_can_reach(asset, self.now()).ok_or_else(|| {
            StoreError::NotFound {
                kind: "asset",
                name: asset.to_string(),
            }
            .into()
        })
    }

    /// What a user can reach now, and through which permission.
    pub async fn perm_what(&self, caller: &Caller, user: &str) -> Result<Vec<Reach>> {
        if caller.name != user {
            require_auditor(caller, "asking what another user can reach")?;
        }
        let snapshot = self.policy_snapshot().await?;
        snapshot.what_can_reach(user, self.now()).ok_or_else(|| {
            StoreError::NotFound {
                kind: "user",
                name: user.to_string(),
            }
            .into()
        })
    }

    // ------------------------------------------------------------- filters --

    pub async fn filter_add(&self, caller: &Caller, spec: FilterSpec) -> Result<CommandFilter> {
        require_admin(caller, "adding a command filter")?;
        check_filter_spec(&spec)?;
        let mut tx = self.store.begin().await?;
        let (filter, bindings) = filter_row(&mut tx, new_id(), true, &spec).await?;
        store::filters::insert(&mut tx, &filter, &bindings, self.now()).await?;
        let stored = store::filters::get(&mut tx, &spec.name).await?;
        self.log(
            &mut tx,
            caller,
            "filter.add",
            format!("filter {}", spec.name),
            None,
            snapshot(&stored),
        )
        .await?;
        store::bump_change_counter(&mut tx).await?;
        self.store.commit(tx).await?;
        Ok(stored)
    }

    /// Replaces the command filter `name` with `spec` as a whole
    /// (`spec.name` may rename it); it keeps its id and active flag.
    pub async fn filter_edit(
        &self,
        caller: &Caller,
        name: &str,
        spec: FilterSpec,
    ) -> Result<CommandFilter> {
        require_admin(caller, "editing a command filter")?;
        check_filter_spec(&spec)?;
        let mut tx = self.store.begin().await?;
        let before = store::filters::get(&mut tx, name).await?;
        let (filter, bindings) =
            filter_row(&mut tx, before.id.clone(), before.active, &spec).await?;
        store::filters::update(&mut tx, &filter, &bindings, self.now()).await?;
        let after = store::filters::get(&mut tx, &spec.name).await?;
        self.log(
            &mut tx,
            caller,
            "filter.edit",
            format!("filter {name}"),
            snapshot(&before),
            snapshot(&after),
        )
        .await?;
        store::bump_change_counter(&mut tx).await?;
        self.store.commit(tx).await?;
        Ok(after)
    }

    pub async fn filter_list(&self, caller: &Caller) -> Result<Vec<CommandFilter>> {
        require_auditor(caller, "listing command filters")?;
        let mut conn = self.store.conn().await?;
        Ok(store::filters::list(&mut conn).await?)
    }

    pub async fn filter_show(&self, caller: &Caller, name: &str) -> Result<CommandFilter> {
        require_auditor(caller, "showing a command filter")?;
        let mut conn = self.store.conn().await?;
        Ok(store::filters::get(&mut conn, name).await?)
    }

    pub async fn filter_remove(&self, caller: &Caller, name: &str) -> Result<()> {
        require_admin(caller, "removing a command filter")?;
        let mut tx = self.store.begin().await?;
        let filter = store::filters::get(&mut tx, name).await?;
        store::filters::delete(&mut tx, &filter.id).await?;
        self.log(
            &mut tx,
            caller,
            "filter.remove",
            format!("filter {name}"),
            snapshot(&filter),
            None,
        )
        .await?;
        store::bump_change_counter(&mut tx).await?;
        self.store.commit(tx).await?;
        Ok(())
    }

    // ---------------------------------------------------------- login ACLs --

    pub async fn acl_add(&self, caller: &Caller, spec: AclSpec) -> Result<LoginAcl> {
        require_admin(caller, "adding a login ACL")?;
        check_acl_spec(&spec)?;
        let mut tx = self.store.begin().await?;
        let ids = resolve(&mut tx, &spec.users, &spec.groups, &[], &[]).await?;
        let acl = acl_row(new_id(), true, &spec);
        store::acls::insert(&mut tx, &acl, &ids.users, &ids.groups, self.now()).await?;
        let stored = find_acl(&mut tx, &spec.name).await?;
        self.log(
            &mut tx,
            caller,
            "acl.add",
            format!("login acl {}", spec.name),
            None,
            snapshot(&stored),
        )
        .await?;
        self.store.commit(tx).await?;
        Ok(stored)
    }

    /// Replaces the login ACL `name` with `spec` as a whole (`spec.name` may
    /// rename it); it keeps its id and active flag. Like `acl add` it does
    /// not touch the change counter: ACLs are read at each login, and a
    /// session already open stays open.
    pub async fn acl_edit(&self, caller: &Caller, name: &str, spec: AclSpec) -> Result<LoginAcl> {
        require_admin(caller, "editing a login ACL")?;
        check_acl_spec(&spec)?;
        let mut tx = self.store.begin().await?;
        let before = find_acl(&mut tx, name).await?;
        let ids = resolve(&mut tx, &spec.users, &spec.groups, &[], &[]).await?;
        let acl = acl_row(before.id.clone(), before.active, &spec);
        store::acls::update(&mut tx, &acl, &ids.users, &ids.groups).await?;
        let after = find_acl(&mut tx, &spec.name).await?;
        self.log(
            &mut tx,
            caller,
            "acl.edit",
            format!("login acl {name}"),
            snapshot(&before),
            snapshot(&after),
        )
        .await?;
        self.store.commit(tx).await?;
        Ok(after)
    }

    pub async fn acl_list(&self, caller: &Caller) -> Result<Vec<LoginAcl>> {
        require_auditor(caller, "listing login ACLs")?;
        let mut conn = self.store.conn().await?;
        Ok(store::acls::list(&mut conn).await?)
    }

    pub async fn acl_remove(&self, caller: &Caller, name: &str) -> Result<()> {
        require_admin(caller, "removing a login ACL")?;
        let mut tx = self.store.begin().await?;
        let acl = find_acl(&mut tx, name).await?;
        store::acls::delete(&mut tx, &acl.id).await?;
        self.log(
            &mut tx,
            caller,
            "acl.remove",
            format!("login acl {name}"),
            snapshot(&acl),
            None,
        )
        .await?;
        self.store.commit(tx).await?;
        Ok(())
    }
}

/// The permission row `spec` describes, with the ids it binds; the first
/// unknown name is an error.
async fn perm_row(
    conn: &mut Conn,
    id: Id,
    active: bool,
    spec: &PermSpec,
) -> Result<store::permissions::NewPermission> {
    let ids = resolve(conn, &spec.users, &spec.groups, &spec.assets, &spec.nodes).await?;
    Ok(store::permissions::NewPermission {
        permission: Permission {
            id,
            name: spec.name.clone(),
            users: spec.users.clone(),
            groups: spec.groups.clone(),
            assets: spec.assets.clone(),
            nodes: spec.nodes.clone(),
            accounts: spec.accounts.clone(),
            protocols: spec.protocols.clone(),
            actions: spec.actions,
            valid_from: spec.valid_from,
            valid_until: spec.valid_until,
            active,
            comment: spec.comment.clone(),
            require_approval: spec.require_approval,
        },
        user_ids: ids.users,
        group_ids: ids.groups,
        asset_ids: ids.assets,
        node_ids: ids.nodes,
    })
}

/// The rules every filter spec meets, for `filter add` and `filter edit`.
fn check_filter_spec(spec: &FilterSpec) -> Result<()> {
    check_name("filter name", &spec.name)?;
    crate::policy::check_pattern(&spec.pattern).map_err(|reason| {
        OpsError::Invalid(format!(
            "pattern {:?} is not a valid regex: {reason}",
            spec.pattern
        ))
    })
}

/// The filter row `spec` describes, with its bindings by id.
async fn filter_row(
    conn: &mut Conn,
    id: Id,
    active: bool,
    spec: &FilterSpec,
) -> Result<(CommandFilter, Vec<(&'static str, Id)>)> {
    let ids = resolve(conn, &spec.users, &spec.groups, &spec.assets, &spec.nodes).await?;
    let filter = CommandFilter {
        id,
        name: spec.name.clone(),
        pattern: spec.pattern.clone(),
        action: spec.action,
        on: spec.on,
        priority: spec.priority,
        users: spec.users.clone(),
        groups: spec.groups.clone(),
        assets: spec.assets.clone(),
        nodes: spec.nodes.clone(),
        accounts: spec.accounts.clone(),
        active,
    };
    let bindings = ids
        .users
        .into_iter()
        .map(|id| (store::filters::USER, id))
        .chain(ids.groups.into_iter().map(|id| (store::filters::GROUP, id)))
        .chain(ids.assets.into_iter().map(|id| (store::filters::ASSET, id)))
        .chain(ids.nodes.into_iter().map(|id| (store::filters::NODE, id)))
        .collect();
    Ok((filter, bindings))
}

/// The rules every login ACL spec meets, for `acl add` and `acl edit`.
fn check_acl_spec(spec: &AclSpec) -> Result<()> {
    check_name("acl name", &spec.name)?;
    if spec.users.is_empty() && spec.groups.is_empty() {
        return Err(OpsError::Invalid(
            "a login ACL needs at least one --user or --group".into(),
        ));
    }
    crate::auth::parse_sources(&spec.sources)?;
    for window in &spec.windows {
        crate::auth::WeeklyWindow::parse(window)?;
    }
    Ok(())
}

fn acl_row(id: Id, active: bool, spec: &AclSpec) -> LoginAcl {
    LoginAcl {
        id,
        name: spec.name.clone(),
        action: spec.action,
        priority: spec.priority,
        users: spec.users.clone(),
        groups: spec.groups.clone(),
        sources: spec.sources.clone(),
        windows: spec.windows.clone(),
        active,
    }
}

async fn find_acl(conn: &mut Conn, name: &str) -> Result<LoginAcl> {
    store::acls::list(conn)
        .await?
        .into_iter()
        .find(|a| a.name == name)
        .ok_or_else(|| {
            StoreError::NotFound {
                kind: "login acl",
                name: name.to_string(),
            }
            .into()
        })
}
