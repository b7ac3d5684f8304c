//! `ssh bastion rampart ARGS...`: the ops CLI over SSH, run as the
//! authenticated person with their role (the `ops` layer checks it), output
//! to the channel. The local CLI and this path share every verb.

use bytes::Bytes;
use clap::Parser;
use russh::ChannelWriteHalf;
use russh::server::Msg;

use super::{Conn, Shared};
use crate::audit::Via;
use crate::cli::{Cli, Command, Io, Outcome, dispatch};
use crate::ops::{Caller, OpsError};

pub async fn run(
    shared: &Shared,
    conn: &Conn,
    args: Vec<String>,
    write: &ChannelWriteHalf<Msg>,
) -> u32 {
    let mut out: Vec<u8> = Vec::new();
    let mut err: Vec<u8> = Vec::new();
    // The verb as the audit row names it: `rampart user add`, no arguments
    // (they may hold a password or key).
    let verb: Vec<&str> = args
        .iter()
        .map(String::as_str)
        .take_while(|a| !a.starts_with('-'))
        .take(2)
        .collect();
    let request = format!("rampart {}", verb.join(" "));
    let argv = std::iter::once("rampart".to_string()).chain(args.iter().cloned());
    let status = match Cli::try_parse_from(argv) {
        Err(e) => {
            // Help and version are successes with text; the rest are usage errors.
            let text = e.render().to_string();
            if e.use_stderr() {
                err.extend_from_slice(text.as_bytes());
                2
            } else {
                out.extend_from_slice(text.as_bytes());
                0
            }
        }
        Ok(cli) if cli.config.is_some() => {
            err.extend_from_slice(b"rampart: --config cannot be chosen over SSH: the server's configuration applies\n");
            2
        }
        Ok(Cli {
            command: Command::Init,
            ..
        }) => {
            err.extend_from_slice(b"rampart: init runs only locally, before the first start\n");
            1
        }
        Ok(cli) => {
            let caller = Caller {
                name: conn.identity.name.clone(),
                role: conn.identity.role,
                via: Via::Ssh,
            };
            let mut io = Io {
                out: &mut out,
                err: &mut err,
                stdin: false,
            };
            match dispatch(&shared.services, &caller, cli.command, cli.json, &mut io).await {
                Ok(Outcome::Success) => 0,
                Ok(Outcome::Failure) => 1,
                Err(e) => {
                    // A verb refused for the caller's role is an audit row,
                    // like every other refusal at the front door.
                    if let Some(OpsError::Forbidden(reason)) = e.downcast_ref::<OpsError>() {
                        super::refuse_log(shared, conn, &request, reason).await;
                    }
                    err.extend_from_slice(format!("rampart: {e:#}\n").as_bytes());
                    1
                }
            }
        }
    };
    if !out.is_empty() {
        let _ = write.data_bytes(Bytes::from(out)).await;
    }
    if !err.is_empty() {
        let _ = write.extended_data_bytes(1, Bytes::from(err)).await;
    }
    status
}
