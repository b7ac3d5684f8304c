//! `rampart account ...`: the accounts the bastion holds on assets. A
//! secret comes from standard input or a local file and is never printed.

use anyhow::bail;

use super::AccountCmd;
use super::output::{self, Column};
use super::verb::{Io, Outcome, read_file};
use crate::model::WebLogin;
use crate::ops::{AccountEdit, AccountSecret, Caller};
use crate::services::Services;
use crate::vault::Secret;

const ACCOUNT_COLUMNS: &[Column] = &[
    ("ASSET", "asset"),
    ("USERNAME", "username"),
    ("SECRET", "secret_kind"),
    ("PRIVILEGED", "privileged"),
    ("ACTIVE", "active"),
];

pub(super) async fn run(
    services: &Services,
    caller: &Caller,
    cmd: AccountCmd,
    json: bool,
    io: &mut Io<'_>,
) -> anyhow::Result<Outcome> {
    let ops = &services.ops;
    match cmd {
        AccountCmd::Add {
            asset,
            username,
            password_stdin,
            key_file,
            privileged,
            web,
        } => {
            // Checked before anything is stored.
            let web_login = web
                .map(|w| w.parse::<WebLogin>())
                .transpose()
                .map_err(anyhow::Error::msg)?;
            let secret = match (password_stdin, key_file) {
                (true, _) => AccountSecret::Password(io.stdin.secret("password")?),
                (false, Some(file)) => AccountSecret::PrivateKey(Secret::new(read_file(
                    caller,
                    &file,
                    "private key file",
                )?)),
                (false, None) => AccountSecret::None,
            };
            let mut account = ops
                .account_add(caller, &asset, &username, secret, privileged)
                .await?;
            if let Some(web_login) = web_login {
                let edit = AccountEdit {
                    web_login: Some(web_login),
                    ..AccountEdit::default()
                };
                account = ops.account_edit(caller, &asset, &username, edit).await?;
            }
            writeln!(
                io.out,
                "account {}@{} added (secret: {})",
                account.username,
                account.asset,
                account.secret_kind.as_str()
            )?;
        }
        AccountCmd::Edit {
            asset,
            username,
            password_stdin,
            key_file,
            no_secret,
            privileged,
            unprivileged,
            web,
        } => {
            let web_login = web
                .map(|w| w.parse::<WebLogin>())
                .transpose()
                .map_err(anyhow::Error::msg)?;
            let privileged = match (privileged, unprivileged) {
                (true, _) => Some(true),
                (false, true) => Some(false),
                (false, false) => None,
            };
            if !password_stdin
                && key_file.is_none()
                && !no_secret
                && privileged.is_none()
                && web_login.is_none()
            {
                bail!(
                    "nothing to change for account {username}@{asset}: give --password-stdin, --key-file FILE, --no-secret, --privileged, --unprivileged or --web SPEC"
                );
            }
            let secret =
                match (password_stdin, key_file, no_secret) {
                    (true, _, _) => Some(AccountSecret::Password(io.stdin.secret("password")?)),
                    (false, Some(file), _) => Some(AccountSecret::PrivateKey(Secret::new(
                        read_file(caller, &file, "private key file")?,
                    ))),
                    (false, None, true) => Some(AccountSecret::None),
                    (false, None, false) => None,
                };
            let account = ops
                .account_edit(
                    caller,
                    &asset,
                    &username,
                    AccountEdit {
                        secret,
                        privileged,
                        web_login,
                    },
                )
                .await?;
            writeln!(
                io.out,
                "account {}@{} updated (secret: {}, privileged: {})",
                account.username,
                account.asset,
                account.secret_kind.as_str(),
                if account.privileged { "yes" } else { "no" }
            )?;
        }
        AccountCmd::List { asset } => output::list(
            io.out,
            &ops.account_list(caller, asset.as_deref()).await?,
            ACCOUNT_COLUMNS,
            json,
        )?,
        AccountCmd::Remove { asset, username } => {
            ops.account_remove(caller, &asset, &username).await?;
            writeln!(io.out, "account {username}@{asset} removed")?;
        }
        AccountCmd::Disable { asset, username } => {
            ops.account_set_active(caller, &asset, &username, false)
                .await?;
            writeln!(io.out, "account {username}@{asset} disabled")?;
        }
        AccountCmd::Enable { asset, username } => {
            ops.account_set_active(caller, &asset, &username, true)
                .await?;
            writeln!(io.out, "account {username}@{asset} enabled")?;
        }
    }
    Ok(Outcome::Success)
}
