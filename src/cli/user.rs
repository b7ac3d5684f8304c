//! `rampart user ...`: users, their keys, passwords and MFA (see
//! `ops::users`), printed.

use anyhow::{anyhow, bail};

use super::output::{self, Column};
use super::verb::{Io, Outcome, read_file, time_opt};
use super::{KeyCmd, UserCmd};
use crate::model::Role;
use crate::ops::{self, Caller, Ops, UserEdit, UserSpec};
use crate::services::Services;

const USER_COLUMNS: &[Column] = &[
    ("NAME", "name"),
    ("ROLE", "role"),
    ("EMAIL", "email"),
    ("ACTIVE", "active"),
    ("EXPIRES", "expires_at"),
    ("LOCKED_UNTIL", "locked_until"),
    ("LAST_LOGIN", "last_login_at"),
];

pub(super) async fn run(
    services: &Services,
    caller: &Caller,
    cmd: UserCmd,
    json: bool,
    io: &mut Io<'_>,
) -> anyhow::Result<Outcome> {
    let tz = &services.config.auth.time_zone.clone();
    let ops = &services.ops;
    match cmd {
        UserCmd::Add {
            name,
            role,
            email,
            password_stdin,
            key,
            key_file,
            group,
            expires,
        } => {
            let mut keys = key;
            for file in &key_file {
                keys.push(
                    read_file(caller, file, "public key file")?
                        .trim()
                        .to_string(),
                );
            }
            let password = if password_stdin {
                Some(io.stdin.secret("password")?)
            } else {
                None
            };
            let added = ops
                .user_add(
                    caller,
                    UserSpec {
                        name,
                        role: Some(role.parse::<Role>()?),
                        email,
                        password,
                        keys,
                        groups: group,
                        expires_at: time_opt(expires.as_deref(), tz, "--expires")?,
                    },
                )
                .await?;
            if json {
                output::show(io.out, &added.user, true)?;
            } else {
                writeln!(
                    io.out,
                    "user {} added ({})",
                    added.user.name, added.user.role
                )?;
            }
            if let Some(otp) = added.one_time_password {
                writeln!(
                    io.err,
                    "one-time password for {}: {}  (shown once; to be changed at first login)",
                    added.user.name,
                    otp.expose()
                )?;
            }
        }
        UserCmd::List => output::list(io.out, &ops.user_list(caller).await?, USER_COLUMNS, json)?,
        UserCmd::Show { name } => output::show(io.out, &ops.user_show(caller, &name).await?, json)?,
        UserCmd::Edit {
            name,
            role,
            email,
            expires,
            group,
        } => {
            let expires_at = match expires.as_deref() {
                None => None,
                Some("never") => Some(None),
                Some(t) => Some(Some(
                    ops::parse_time(t, tz).map_err(|e| anyhow!("--expires: {e}"))?,
                )),
            };
            let user = ops
                .user_edit(
                    caller,
                    &name,
                    UserEdit {
                        role: role.as_deref().map(str::parse).transpose()?,
                        email: email.map(|e| if e.is_empty() { None } else { Some(e) }),
                        expires_at,
                        groups: (!group.is_empty())
                            .then(|| super::edit::replace_list(Vec::new(), group)),
                    },
                )
                .await?;
            writeln!(io.out, "user {} updated", user.name)?;
        }
        UserCmd::Disable { name } => {
            ops.user_set_active(caller, &name, false).await?;
            writeln!(io.out, "user {name} disabled")?;
        }
        UserCmd::Enable { name } => {
            ops.user_set_active(caller, &name, true).await?;
            writeln!(io.out, "user {name} enabled")?;
        }
        UserCmd::Remove { name } => {
            ops.user_remove(caller, &name).await?;
            writeln!(io.out, "user {name} removed")?;
        }
        UserCmd::Passwd {
            name,
            password_stdin,
        } => {
            let password = if password_stdin {
                Some(io.stdin.secret("password")?)
            } else {
                None
            };
            match ops.user_passwd(caller, &name, password).await? {
                Some(otp) => writeln!(
                    io.err,
                    "one-time password for {name}: {}  (shown once; to be changed at next login)",
                    otp.expose()
                )?,
                None => writeln!(io.out, "password of {name} changed")?,
            }
        }
        UserCmd::Unlock { name } => {
            ops.user_unlock(caller, &name).await?;
            writeln!(io.out, "user {name} unlocked")?;
        }
        UserCmd::MfaReset { name } => {
            ops.user_mfa_reset(caller, &name).await?;
            writeln!(
                io.out,
                "MFA of {name} reset: they enrol again at the next login"
            )?;
        }
        UserCmd::Key(cmd) => key(ops, caller, cmd, io).await?,
    }
    Ok(Outcome::Success)
}

/// `rampart user key add|remove`.
async fn key(ops: &Ops, caller: &Caller, cmd: KeyCmd, io: &mut Io<'_>) -> anyhow::Result<()> {
    match cmd {
        KeyCmd::Add {
            name,
            key,
            key_file,
        } => {
            let line = match (key, key_file) {
                (Some(line), _) => line,
                (None, Some(file)) => read_file(caller, &file, "public key file")?
                    .trim()
                    .to_string(),
                (None, None) => bail!("give --key LINE or --key-file FILE"),
            };
            let key = ops.user_key_add(caller, &name, &line).await?;
            writeln!(io.out, "key {} added to {name}", key.fingerprint)?;
        }
        KeyCmd::Remove { name, fingerprint } => {
            ops.user_key_remove(caller, &name, &fingerprint).await?;
            writeln!(io.out, "key {fingerprint} removed from {name}")?;
        }
    }
    Ok(())
}
