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
            let apps = services.ops.remote_apps_of(Some(&ticket.asset)).await?;
            write!(io.out, "{}", ticket_text(services, &ticket, &apps))?;
        }
    }
    Ok(Outcome::Success)
}

/// What a person types into their RDP client, as lines (`\n` ends), and
/// a `.rdp` file link for each program the asset publishes.
pub fn ticket_text(
    services: &Services,
    ticket: &crate::ops::RdpTicket,
    apps: &[crate::model::RemoteApp],
) -> String {
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
         \x20   authentication level:i:2\n{}",
        ticket.asset,
        ticket.account,
        remote_apps(services, ticket, apps)
    )
}

/// The lines of the asset's RemoteApps: a `.rdp` file link each (the
/// ticket's password is typed when the client asks).
fn remote_apps(
    services: &Services,
    ticket: &crate::ops::RdpTicket,
    apps: &[crate::model::RemoteApp],
) -> String {
    if apps.is_empty() {
        return String::new();
    }
    let Some(base) = services.ops.settings().web.as_ref() else {
        return " RemoteApps: the web side is off here (http.listen), so no .rdp file links\n"
            .into();
    };
    if services.config.rdp_front_address().is_none() {
        return " RemoteApps: none offered, the RDP front is off (rdp.listen)\n".into();
    }
    let mut text = String::from(" RemoteApps, a .rdp file each (same user and password):\n");
    for app in apps {
        text.push_str(&format!(
            "\x20 {:<20} {}\n",
            app.name,
            base.remote_app_link(&ticket.id, &app.alias)
        ));
    }
    text
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
    services
        .config
        .rdp_front_address()
        .unwrap_or_else(|| "BASTION:3389 (the RDP front is off: rdp.listen is empty)".into())
}
