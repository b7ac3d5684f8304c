//! A web asset asked for over SSH: `ssh -t bastion grafana` for an asset
//! the person may use over the web and not over SSH, or the web protocol
//! picked in the menu. Instead of a shell the person gets a one-time link
//! to open in their browser, with a QR code of it (`ops::Ops::web_link`);
//! under the menu it stays on the screen until a key.

use super::target::{Choice, Ended, PersonChannel, Run, Say};
use super::{Conn, Shared};
use crate::ops::WEB_PROTOCOLS;

/// The link instead of a session, when the person wants a web asset;
/// `None`: not a web asset, the session goes on.
pub async fn link_instead(
    shared: &Shared,
    conn: &Conn,
    choice: &Choice,
    run: &Run,
    person: &mut PersonChannel<'_>,
) -> Option<Ended> {
    let asset = choice.asset.as_str();
    let now = shared.services.clock.now();
    let visible = shared.policy().visible_asset(&conn.identity, asset, now)?;
    let over = |name: &str| visible.protocols().any(|p| p.name == name);
    let chose_web = choice
        .protocol
        .as_deref()
        .is_some_and(|p| WEB_PROTOCOLS.contains(&p));
    let web = WEB_PROTOCOLS.iter().any(|p| over(p));
    let other = visible
        .protocols()
        .any(|p| !WEB_PROTOCOLS.contains(&p.name.as_str()));
    if !web || (other && !chose_web) || !matches!(run, Run::Shell) {
        return None;
    }
    let say = Say {
        write: person.write,
        pty: person.pty.is_some(),
    };
    let ops = &shared.services.ops;
    let issued = async {
        let caller = ops.caller(&conn.identity, crate::audit::Via::Ssh).await?;
        ops.web_link(&caller, asset, choice.account.as_deref())
            .await
    };
    match issued.await {
        Ok(link) => {
            let text = crate::cli::web_link_text(&shared.services, &link, say.pty);
            Some(super::desktop::show_ticket(person, say, text).await)
        }
        Err(e) => {
            let text = format!("rampart: {asset}: {e}");
            say.refused(shared, conn, &format!("web link {asset}"), text)
                .await;
            Some(Ended::refused())
        }
    }
}
