//! `rampart perm ...`: permissions (who may reach which assets, how and
//! when) and the `who`/`what` reach queries, printed.

use super::PermCmd;
use super::output::{self, Column};
use super::verb::{Io, Outcome, time_opt};
use crate::model::{AccountSpec, Actions, ProtocolSpec};
use crate::ops::{Caller, PermSpec};
use crate::services::Services;

const PERM_COLUMNS: &[Column] = &[
    ("NAME", "name"),
    ("USERS", "users"),
    ("GROUPS", "groups"),
    ("ASSETS", "assets"),
    ("NODES", "nodes"),
    ("ACCOUNTS", "accounts"),
    ("PROTOCOLS", "protocols"),
    ("ACTIONS", "actions"),
    ("FROM", "valid_from"),
    ("UNTIL", "valid_until"),
    ("APPROVAL", "require_approval"),
    ("ACTIVE", "active"),
];
const REACH_COLUMNS: &[Column] = &[
    ("USER", "user"),
    ("ASSET", "asset"),
    ("ACCOUNTS", "accounts"),
    ("PROTOCOLS", "protocols"),
    ("ACTIONS", "actions"),
    ("PERMISSION", "permission"),
    ("VIA_GROUP", "group"),
];

pub(super) async fn run(
    services: &Services,
    caller: &Caller,
    cmd: PermCmd,
    json: bool,
    io: &mut Io<'_>,
) -> anyhow::Result<Outcome> {
    let tz = &services.config.auth.time_zone.clone();
    let ops = &services.ops;
    match cmd {
        PermCmd::Add {
            name,
            bindings,
            accounts,
            protocols,
            actions,
            from,
            until,
            comment,
            require_approval,
        } => {
            let perm = ops
                .perm_add(
                    caller,
                    PermSpec {
                        name,
                        users: bindings.users.clone(),
                        groups: bindings.groups.clone(),
                        assets: bindings.assets.clone(),
                        nodes: bindings.nodes.clone(),
                        accounts: accounts.parse::<AccountSpec>()?,
                        protocols: protocols.parse::<ProtocolSpec>()?,
                        actions: actions.parse::<Actions>()?,
                        valid_from: time_opt(from.as_deref(), tz, "--from")?,
                        valid_until: time_opt(until.as_deref(), tz, "--until")?,
                        comment,
                        require_approval,
                    },
                )
                .await?;
            writeln!(io.out, "permission {} added", perm.name)?;
        }
        PermCmd::List => output::list(io.out, &ops.perm_list(caller).await?, PERM_COLUMNS, json)?,
        PermCmd::Show { name } => output::show(io.out, &ops.perm_show(caller, &name).await?, json)?,
        PermCmd::Edit(edit) => {
            let line = super::edit::perm(ops, caller, *edit, tz).await?;
            writeln!(io.out, "{line}")?;
        }
        PermCmd::Remove { name } => {
            ops.perm_remove(caller, &name).await?;
            writeln!(io.out, "permission {name} removed")?;
        }
        PermCmd::Disable { name } => {
            ops.perm_set_active(caller, &name, false).await?;
            writeln!(io.out, "permission {name} disabled")?;
        }
        PermCmd::Enable { name } => {
            ops.perm_set_active(caller, &name, true).await?;
            writeln!(io.out, "permission {name} enabled")?;
        }
        PermCmd::Who { asset } => output::list(
            io.out,
            &ops.perm_who(caller, &asset).await?,
            REACH_COLUMNS,
            json,
        )?,
        PermCmd::What { user } => output::list(
            io.out,
            &ops.perm_what(caller, &user).await?,
            REACH_COLUMNS,
            json,
        )?,
    }
    Ok(Outcome::Success)
}
