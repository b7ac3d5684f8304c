//! `rampart db ticket ASSET`: a one-time password for a desktop database
//! tool (see `ops::db`), printed with the tunnel to open and what to type.

use super::DbCmd;
use super::output;
use super::verb::{Io, Outcome};
use crate::ops::Caller;
use crate::services::Services;

pub(super) async fn run(
    services: &Services,
    caller: &Caller,
    cmd: DbCmd,
    json: bool,
    io: &mut Io<'_>,
) -> anyhow::Result<Outcome> {
    match cmd {
        DbCmd::Ticket { asset, account } => {
            let ticket = services
                .ops
                .db_ticket(caller, &asset, account.as_deref())
                .await?;
            if json {
                output::show(io.out, &ticket, true)?;
                return Ok(Outcome::Success);
            }
            write!(io.out, "{}", ticket_text(services, caller, &ticket))?;
        }
    }
    Ok(Outcome::Success)
}

/// The tunnel to open and what to type into the tool, as lines.
pub fn ticket_text(services: &Services, caller: &Caller, ticket: &crate::ops::DbTicket) -> String {
    let seconds = crate::ops::TICKET_LIFETIME.as_secs();
    let until = ticket
        .expires_at
        .to_zoned(services.config.auth.time_zone.clone())
        .strftime("%H:%M:%S");
    let bastion = match services.config.ssh.listen.first() {
        Some(a) if a.port() != 22 => format!("-p {} {}@BASTION", a.port(), caller.name),
        _ => format!("{}@BASTION", caller.name),
    };
    let (asset, port, user) = (&ticket.asset, ticket.port, &ticket.user);
    let password = ticket.password.expose();
    let database = if ticket.database.is_empty() {
        "(the server's default)".to_string()
    } else {
        ticket.database.clone()
    };
    let client = client_line(ticket);
    format!(
        "{asset} for a desktop tool, as {user}: one connection, within {seconds} s (until {until})\n\
         \x20 tunnel    ssh {bastion} -N -L {port}:{asset}:{port}   (needs the tunnel action)\n\
         \x20 host      127.0.0.1\n\
         \x20 port      {port}\n\
         \x20 user      {user}\n\
         \x20 password  {password}\n\
         \x20 database  {database}\n\
         \x20 {client}\n",
    )
}

/// The protocol's own command-line client, pointed at the tunnel (it asks
/// for the password, so the ticket is not left in a shell's history).
fn client_line(ticket: &crate::ops::DbTicket) -> String {
    let (port, user, database) = (ticket.port, &ticket.user, &ticket.database);
    match ticket.protocol.as_str() {
        "mysql" | "mariadb" => {
            let database = if database.is_empty() {
                String::new()
            } else {
                format!(" {database}")
            };
            format!("mysql     mysql -h 127.0.0.1 -P {port} -u {user} -p{database}")
        }
        "redis" => format!("redis-cli redis-cli -h 127.0.0.1 -p {port} --user {user} --askpass"),
        _ => {
            let dbname = if database.is_empty() {
                String::new()
            } else {
                format!(" dbname={database}")
            };
            format!(
                "psql      psql \"host=127.0.0.1 port={port} user={user}{dbname} sslmode=disable\""
            )
        }
    }
}
