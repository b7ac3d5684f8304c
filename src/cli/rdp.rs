//! `rampart rdp ticket ASSET`: one-time RDP credentials (see `ops::rdp`),
//! printed with what to type into an RDP client.

use super::RdpCmd;
use super::output;
use super::verb::{Io, Outcome};
use crate::ops::Caller;
use crate::services::Services;

pub(super) async fn run(
    services: &Services,
    caller: &Caller,
    cmd: RdpCmd,
    json: bool,
    io: &mut Io<'_>,
) -> anyhow::Result<Outcome> {
    match cmd {
        RdpCmd::Ticket { asset, account } => {
            let ticket = services
                .ops
                .rdp_ticket(caller, &asset, account.as_deref())
                .await?;
            if json {
                output::show(io.out, &ticket, true)?;
                return Ok(Outcome::Success);
            }
            write!(io.out, "{}", ticket_text(services, &ticket))?;
        }
    }
    Ok(Outcome::Success)
}

/// What a person types into their RDP client, as lines (`\n` ends).
pub fn ticket_text(services: &Services, ticket: &crate::ops::RdpTicket) -> String {
    let front = front_address(services);
    let seconds = crate::ops::TICKET_LIFETIME.as_secs();
    let until = ticket
        .expires_at
        .to_zoned(services.config.auth.time_zone.clone())
        .strftime("%H:%M:%S");
    let password = ticket.password.expose();
    let login = &ticket.login;
    format!(
        "RDP to {} as {}: one connection, within {seconds} s (until {until})\n\
         \x20 address   {front}\n\
         \x20 user      {login}\n\
         \x20 password  {password}\n\
         \x20 xfreerdp  xfreerdp /v:{front} /u:'{login}' /p:'{password}' /sec:nla\n\
         \x20 .rdp file (the password is asked for):\n\
         \x20   full address:s:{front}\n\
         \x20   username:s:{login}\n\
         \x20   enablecredsspsupport:i:1\n\
         \x20   authentication level:i:2\n",
        ticket.asset, ticket.account
    )
}

/// What a person gives their RDP client with their RDP password.
pub fn password_text(services: &Services, password: &crate::ops::RdpPassword) -> String {
    let front = front_address(services);
    let until = password
        .expires_at
        .to_zoned(services.config.auth.time_zone.clone())
        .strftime("%Y-%m-%d %H:%M %Z");
    let person = password.login.trim_end_matches("#ASSET");
    format!(
        "Your RDP password, for every desktop you may use over RDP, until {until}.\n\
         It replaces any earlier one; it is not shown again.\n\
         \x20 address   {front}\n\
         \x20 user      {person}#ASSET (or {person}#ACCOUNT#ASSET where you have several accounts)\n\
         \x20 password  {}\n\
         Turn it off with: rampart me rdp-password --off\n",
        password.password.expose()
    )
}

/// Where RDP clients connect: the first `rdp.listen` address, with
/// `BASTION` for a wildcard one (the name people reach the bastion by is
/// not known here).
fn front_address(services: &Services) -> String {
    match services.config.rdp.listen.first() {
        None => "BASTION:3389 (the RDP front is off: rdp.listen is empty)".into(),
        Some(a) if a.ip().is_unspecified() => format!("BASTION:{}", a.port()),
        Some(a) => a.to_string(),
    }
}
