//! `rampart acl ...`: login ACLs (source addresses and time windows),
//! printed.

use super::AclCmd;
use super::output::{self, Column};
use super::verb::{Io, Outcome};
use crate::model::AclAction;
use crate::ops::{AclSpec, Caller};
use crate::services::Services;

const ACL_COLUMNS: &[Column] = &[
    ("NAME", "name"),
    ("PRIORITY", "priority"),
    ("ACTION", "action"),
    ("USERS", "users"),
    ("GROUPS", "groups"),
    ("SOURCES", "sources"),
    ("WINDOWS", "windows"),
];

pub(super) async fn run(
    services: &Services,
    caller: &Caller,
    cmd: AclCmd,
    json: bool,
    io: &mut Io<'_>,
) -> anyhow::Result<Outcome> {
    let ops = &services.ops;
    match cmd {
        AclCmd::Add {
            name,
            action,
            priority,
            users,
            groups,
            sources,
            windows,
        } => {
            let acl = ops
                .acl_add(
                    caller,
                    AclSpec {
                        name,
                        action: action.parse::<AclAction>()?,
                        priority,
                        users,
                        groups,
                        sources,
                        windows,
                    },
                )
                .await?;
            writeln!(io.out, "login acl {} added", acl.name)?;
        }
        AclCmd::List => output::list(io.out, &ops.acl_list(caller).await?, ACL_COLUMNS, json)?,
        AclCmd::Edit(edit) => {
            let line = super::edit::acl(ops, caller, *edit).await?;
            writeln!(io.out, "{line}")?;
        }
        AclCmd::Remove { name } => {
            ops.acl_remove(caller, &name).await?;
            writeln!(io.out, "login acl {name} removed")?;
        }
    }
    Ok(Outcome::Success)
}
