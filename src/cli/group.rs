//! `rampart group ...`: user groups and their members, printed.

use super::output::{self, Column};
use super::verb::{Io, Outcome};
use super::{GroupCmd, MembersCmd};
use crate::ops::Caller;
use crate::services::Services;

const GROUP_COLUMNS: &[Column] = &[("NAME", "name"), ("MEMBERS", "members")];

pub(super) async fn run(
    services: &Services,
    caller: &Caller,
    cmd: GroupCmd,
    json: bool,
    io: &mut Io<'_>,
) -> anyhow::Result<Outcome> {
    let ops = &services.ops;
    match cmd {
        GroupCmd::Add { name } => {
            ops.group_add(caller, &name).await?;
            writeln!(io.out, "group {name} added")?;
        }
        GroupCmd::Remove { name } => {
            ops.group_remove(caller, &name).await?;
            writeln!(io.out, "group {name} removed")?;
        }
        GroupCmd::List => {
            output::list(io.out, &ops.group_list(caller).await?, GROUP_COLUMNS, json)?
        }
        GroupCmd::Members(MembersCmd::Add { group, users }) => {
            let g = ops.group_members(caller, &group, &users, true).await?;
            writeln!(io.out, "group {group}: {}", g.members.join(", "))?;
        }
        GroupCmd::Members(MembersCmd::Remove { group, users }) => {
            let g = ops.group_members(caller, &group, &users, false).await?;
            writeln!(io.out, "group {group}: {}", g.members.join(", "))?;
        }
    }
    Ok(Outcome::Success)
}
