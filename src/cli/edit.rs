//! The edit verbs of the CLI (`perm edit`, `filter edit`, `acl edit`): read
//! the object as it is, replace what the command line gives, and hand the
//! whole spec to `ops`, as the console's edit forms do. A list option given
//! replaces that list, one not given keeps it, and a lone "" empties it.

use anyhow::anyhow;
use jiff::Timestamp;
use jiff::tz::TimeZone;

use super::{AclEdit, EditBindings, FilterEdit, PermEdit};
use crate::model::{AccountSpec, AclAction, Actions, FilterAction, ProtocolSpec};
use crate::ops::{self, AclSpec, Caller, FilterSpec, Ops, PermSpec};

/// A list option of an edit verb: not given keeps `current`, given
/// replaces it; empty values are dropped, so `--user ""` empties the list.
pub(super) fn replace_list(current: Vec<String>, given: Vec<String>) -> Vec<String> {
    if given.is_empty() {
        current
    } else {
        given.into_iter().filter(|v| !v.is_empty()).collect()
    }
}

/// A time option of an edit verb: not given keeps `current`, "never"
/// clears it.
fn replace_time(
    current: Option<Timestamp>,
    given: Option<&str>,
    tz: &TimeZone,
    flag: &str,
) -> anyhow::Result<Option<Timestamp>> {
    match given {
        None => Ok(current),
        Some("never") => Ok(None),
        Some(t) => ops::parse_time(t, tz)
            .map(Some)
            .map_err(|e| anyhow!("{flag}: {e} (or \"never\")")),
    }
}

/// The bindings after an edit: (users, groups, assets, nodes).
fn replace_bindings(current: [Vec<String>; 4], given: EditBindings) -> [Vec<String>; 4] {
    let [users, groups, assets, nodes] = current;
    [
        replace_list(users, given.users),
        replace_list(groups, given.groups),
        replace_list(assets, given.assets),
        replace_list(nodes, given.nodes),
    ]
}

/// The line an edit prints: `KIND NAME updated`, or renamed.
pub(super) fn updated(kind: &str, old: &str, new: &str) -> String {
    if old == new {
        format!("{kind} {old} updated")
    } else {
        format!("{kind} {old} updated and renamed to {new}")
    }
}

pub(super) async fn perm(
    ops: &Ops,
    caller: &Caller,
    edit: PermEdit,
    tz: &TimeZone,
) -> anyhow::Result<String> {
    ops::require_admin(caller, "editing a permission")?;
    let now = ops.perm_show(caller, &edit.name).await?;
    let [users, groups, assets, nodes] = replace_bindings(
        [now.users, now.groups, now.assets, now.nodes],
        edit.bindings,
    );
    let spec = PermSpec {
        name: edit.new_name.unwrap_or_else(|| now.name.clone()),
        users,
        groups,
        assets,
        nodes,
        accounts: match edit.accounts {
            Some(a) => a.parse::<AccountSpec>()?,
            None => now.accounts,
        },
        protocols: match edit.protocols {
            Some(p) => p.parse::<ProtocolSpec>()?,
            None => now.protocols,
        },
        actions: match edit.actions {
            Some(a) => a.parse::<Actions>()?,
            None => now.actions,
        },
        valid_from: replace_time(now.valid_from, edit.from.as_deref(), tz, "--from")?,
        valid_until: replace_time(now.valid_until, edit.until.as_deref(), tz, "--until")?,
        comment: edit.comment.unwrap_or(now.comment),
        require_approval: match (edit.require_approval, edit.no_approval) {
            (true, _) => true,
            (false, true) => false,
            (false, false) => now.require_approval,
        },
    };
    let perm = ops.perm_edit(caller, &edit.name, spec).await?;
    Ok(updated("permission", &edit.name, &perm.name))
}

pub(super) async fn filter(ops: &Ops, caller: &Caller, edit: FilterEdit) -> anyhow::Result<String> {
    ops::require_admin(caller, "editing a command filter")?;
    let now = ops.filter_show(caller, &edit.name).await?;
    let [users, groups, assets, nodes] = replace_bindings(
        [now.users, now.groups, now.assets, now.nodes],
        edit.bindings,
    );
    let spec = FilterSpec {
        name: edit.new_name.unwrap_or_else(|| now.name.clone()),
        pattern: edit.pattern.unwrap_or(now.pattern),
        action: match edit.action {
            Some(a) => a.parse::<FilterAction>()?,
            None => now.action,
        },
        on: match edit.on {
            Some(on) => on.parse::<crate::model::Scope>()?,
            None => now.on,
        },
        priority: edit.priority.unwrap_or(now.priority),
        users,
        groups,
        assets,
        nodes,
        accounts: match edit.accounts {
            Some(a) => a.parse::<AccountSpec>()?,
            None => now.accounts,
        },
    };
    let filter = ops.filter_edit(caller, &edit.name, spec).await?;
    Ok(updated("filter", &edit.name, &filter.name))
}

pub(super) async fn acl(ops: &Ops, caller: &Caller, edit: AclEdit) -> anyhow::Result<String> {
    ops::require_admin(caller, "editing a login ACL")?;
    let now = ops
        .acl_list(caller)
        .await?
        .into_iter()
        .find(|a| a.name == edit.name)
        .ok_or_else(|| anyhow!("login acl {:?} does not exist", edit.name))?;
    let spec = AclSpec {
        name: edit.new_name.unwrap_or_else(|| now.name.clone()),
        action: match edit.action {
            Some(a) => a.parse::<AclAction>()?,
            None => now.action,
        },
        priority: edit.priority.unwrap_or(now.priority),
        users: replace_list(now.users, edit.users),
        groups: replace_list(now.groups, edit.groups),
        sources: replace_list(now.sources, edit.sources),
        windows: replace_list(now.windows, edit.windows),
    };
    let acl = ops.acl_edit(caller, &edit.name, spec).await?;
    Ok(updated("login acl", &edit.name, &acl.name))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn a_list_option_keeps_replaces_or_empties() {
        assert_eq!(replace_list(v(&["a", "b"]), v(&[])), v(&["a", "b"]));
        assert_eq!(replace_list(v(&["a", "b"]), v(&["c"])), v(&["c"]));
        assert_eq!(replace_list(v(&["a", "b"]), v(&[""])), v(&[]));
    }

    #[test]
    fn a_time_option_keeps_replaces_or_clears() {
        let tz = TimeZone::UTC;
        let t: Timestamp = "2030-01-01T00:00:00Z".parse().unwrap();
        assert_eq!(
            replace_time(Some(t), None, &tz, "--until").unwrap(),
            Some(t)
        );
        assert_eq!(
            replace_time(Some(t), Some("never"), &tz, "--until").unwrap(),
            None
        );
        assert_eq!(
            replace_time(None, Some("2030-01-01"), &tz, "--until").unwrap(),
            Some(t)
        );
        let err = replace_time(None, Some("soon"), &tz, "--until").unwrap_err();
        assert!(err.to_string().starts_with("--until: "), "{err}");
    }
}
