//! `rampart filter ...`: command filters (deny, allow, warn, review),
//! printed.

use super::FilterCmd;
use super::output::{self, Column};
use super::verb::{Io, Outcome};
use crate::model::{AccountSpec, FilterAction, Scope};
use crate::ops::{Caller, FilterSpec};
use crate::services::Services;

const FILTER_COLUMNS: &[Column] = &[
    ("NAME", "name"),
    ("PRIORITY", "priority"),
    ("ACTION", "action"),
    ("ON", "on"),
    ("PATTERN", "pattern"),
    ("USERS", "users"),
    ("GROUPS", "groups"),
    ("ASSETS", "assets"),
    ("NODES", "nodes"),
    ("ACCOUNTS", "accounts"),
];

pub(super) async fn run(
    services: &Services,
    caller: &Caller,
    cmd: FilterCmd,
    json: bool,
    io: &mut Io<'_>,
) -> anyhow::Result<Outcome> {
    let ops = &services.ops;
    match cmd {
        FilterCmd::Add {
            name,
            pattern,
            action,
            on,
            priority,
            bindings,
            accounts,
        } => {
            let filter = ops
                .filter_add(
                    caller,
                    FilterSpec {
                        name,
                        pattern,
                        action: action.parse::<FilterAction>()?,
                        on: on.parse::<Scope>()?,
                        priority,
                        users: bindings.users,
                        groups: bindings.groups,
                        assets: bindings.assets,
                        nodes: bindings.nodes,
                        accounts: accounts.parse::<AccountSpec>()?,
                    },
                )
                .await?;
            writeln!(io.out, "filter {} added", filter.name)?;
        }
        FilterCmd::List => output::list(
            io.out,
            &ops.filter_list(caller).await?,
            FILTER_COLUMNS,
            json,
        )?,
        FilterCmd::Show { name } => {
            output::show(io.out, &ops.filter_show(caller, &name).await?, json)?
        }
        FilterCmd::Edit(edit) => {
            let line = super::edit::filter(ops, caller, *edit).await?;
            writeln!(io.out, "{line}")?;
        }
        FilterCmd::Remove { name } => {
            ops.filter_remove(caller, &name).await?;
            writeln!(io.out, "filter {name} removed")?;
        }
    }
    Ok(Outcome::Success)
}
