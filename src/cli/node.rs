//! `rampart node ...`: the node tree assets are filed under, printed.

use super::NodeCmd;
use super::output::{self, Column};
use super::verb::{Io, Outcome};
use crate::ops::Caller;
use crate::services::Services;

const NODE_COLUMNS: &[Column] = &[("PATH", "path"), ("ASSETS", "assets")];

pub(super) async fn run(
    services: &Services,
    caller: &Caller,
    cmd: NodeCmd,
    json: bool,
    io: &mut Io<'_>,
) -> anyhow::Result<Outcome> {
    let ops = &services.ops;
    match cmd {
        NodeCmd::Add { path } => {
            let node = ops.node_add(caller, &path).await?;
            writeln!(io.out, "node {} added", node.path)?;
        }
        NodeCmd::Remove { path } => {
            ops.node_remove(caller, &path).await?;
            writeln!(io.out, "node {path} removed")?;
        }
        NodeCmd::Move { from, to } => {
            let moved = ops.node_move(caller, &from, &to).await?;
            write!(io.out, "node {} moved to {}", moved.from, moved.node.path)?;
            if moved.descendants > 0 {
                write!(io.out, " with {} node(s) below it", moved.descendants)?;
            }
            if !moved.created.is_empty() {
                write!(io.out, "; created {}", moved.created.join(", "))?;
            }
            writeln!(io.out)?;
        }
        NodeCmd::List => output::list(io.out, &ops.node_list(caller).await?, NODE_COLUMNS, json)?,
    }
    Ok(Outcome::Success)
}
