//! `rampart web link ASSET`: a one-time link to a web asset (see
//! `ops::web`), printed with a QR code for a phone or another machine's
//! camera.

use super::WebCmd;
use super::output;
use super::verb::{Io, Outcome};
use crate::ops::Caller;
use crate::services::Services;

pub(super) async fn run(
    services: &Services,
    caller: &Caller,
    cmd: WebCmd,
    json: bool,
    io: &mut Io<'_>,
) -> anyhow::Result<Outcome> {
    match cmd {
        WebCmd::Link {
            asset,
            account,
            no_qr,
        } => {
            let link = services
                .ops
                .web_link(caller, &asset, account.as_deref())
                .await?;
            if json {
                output::show(io.out, &link, true)?;
                return Ok(Outcome::Success);
            }
            write!(io.out, "{}", link_text(services, &link, !no_qr))?;
        }
    }
    Ok(Outcome::Success)
}

/// What a person opens in their browser, as lines (`\n` ends).
pub fn link_text(services: &Services, link: &crate::ops::WebLink, qr: bool) -> String {
    let seconds = crate::ops::TICKET_LIFETIME.as_secs();
    let until = link
        .expires_at
        .to_zoned(services.config.auth.time_zone.clone())
        .strftime("%H:%M:%S");
    let mut text = format!(
        "{} as {}: open within {seconds} s (until {until}), once:\n  {}\n",
        link.asset,
        link.account,
        link.url.expose()
    );
    if qr && let Some(code) = output::qr(&link.url) {
        text.push_str(&code);
    }
    text
}
