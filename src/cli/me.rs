//! `rampart me ...`: the self-service verbs (see `ops::me`), printed.
//!
//! Input contracts (DESIGN.md: `--password-stdin` reads lines, strips the
//! line end):
//! - `me passwd --password-stdin`: two lines, the current password (an
//!   empty line for a person who has none yet), then the new one.
//! - `me keys add` without `--key`: one public key line.
//! - `me mfa enrol` prints a QR code and the secret and leaves the
//!   enrolment pending; `me mfa confirm CODE` finishes it.
use super::output::{self, Column};
use super::stdin::StdinError;
use super::verb::{Io, Outcome};
use super::{MeArgs, MeCmd, MeKeysCmd, MeMfaCmd};
use crate::auth::totp;
use crate::ops::{self, Caller};
use crate::services::Services;

const KEY_COLUMNS: &[Column] = &[
    ("FINGERPRINT", "fingerprint"),
    ("ALGORITHM", "algorithm"),
    ("COMMENT", "comment"),
    ("ADDED", "created_at"),
];

pub(super) async fn run(
    services: &Services,
    caller: &Caller,
    args: MeArgs,
    json: bool,
    io: &mut Io<'_>,
) -> anyhow::Result<Outcome> {
    let ops = &services.ops;
    // Before any input is read: the local operator is no rampart user.
    ops::require_person(caller)?;
    match args.cmd.unwrap_or(MeCmd::Show) {
        MeCmd::Show => output::show(io.out, &ops.me_show(caller).await?, json)?,
        MeCmd::Passwd { .. } => {
            let current = io
                .stdin
                .line("current password")?
                .ok_or(StdinError::Missing("current password"))?;
            let new = io.stdin.secret("new password")?;
            ops.me_passwd(caller, &current, &new).await?;
            writeln!(io.out, "password of {} changed", caller.name)?;
        }
        MeCmd::Keys(MeKeysCmd::List) => {
            output::list(io.out, &ops.me_keys(caller).await?, KEY_COLUMNS, json)?
        }
        MeCmd::Keys(MeKeysCmd::Add { key }) => {
            let line = match key {
                Some(line) => line,
                None => io.stdin.secret("public key")?.expose().trim().to_string(),
            };
            let key = ops.me_key_add(caller, &line).await?;
            if json {
                output::show(io.out, &key, true)?;
            } else {
                writeln!(io.out, "key {} added", key.fingerprint)?;
            }
        }
        MeCmd::Keys(MeKeysCmd::Remove { fingerprint }) => {
            ops.me_key_remove(caller, &fingerprint).await?;
            writeln!(io.out, "key {fingerprint} removed")?;
        }
        MeCmd::RdpPassword { off: true } => {
            if ops.rdp_password_off(caller).await? {
                writeln!(io.out, "your RDP password is off")?;
            } else {
                writeln!(io.out, "you had no RDP password")?;
            }
        }
        MeCmd::RdpPassword { off: false } => {
            let password = ops.rdp_password(caller).await?;
            if json {
                output::show(io.out, &password, true)?;
            } else {
                write!(io.out, "{}", super::rdp::password_text(services, &password))?;
            }
        }
        MeCmd::Mfa(mfa) => match mfa.cmd.unwrap_or(MeMfaCmd::Status) {
            MeMfaCmd::Status => output::show(io.out, &ops.me_mfa(caller).await?, json)?,
            MeMfaCmd::Enrol => {
                let enrolment = ops.me_mfa_enrol(caller).await?;
                if json {
                    let value = serde_json::json!({
                        "secret": enrolment.secret.expose(),
                        "otpauth_url": enrolment.otpauth_url.expose(),
                        "confirm_by": enrolment.confirm_by,
                    });
                    writeln!(io.out, "{value}")?;
                } else {
                    print_enrolment(io, caller, &enrolment)?;
                }
            }
            MeMfaCmd::Confirm { code } => {
                ops.me_mfa_confirm(caller, &code).await?;
                writeln!(io.out, "MFA is on: logins now ask for a code from the app")?;
            }
            MeMfaCmd::Reset { code } => {
                ops.me_mfa_reset(caller, &code).await?;
                writeln!(io.out, "MFA is off")?;
            }
        },
    }
    Ok(Outcome::Success)
}

fn print_enrolment(
    io: &mut Io<'_>,
    caller: &Caller,
    enrolment: &ops::MfaEnrolment,
) -> std::io::Result<()> {
    match output::qr(&enrolment.otpauth_url) {
        Some(code) => {
            writeln!(
                io.out,
                "Scan this QR code with your authenticator app, or type the secret below into it:\n"
            )?;
            io.out.write_all(code.as_bytes())?;
        }
        None => writeln!(io.out, "Type this secret into your authenticator app:")?,
    }
    // Grouped in fours, as the apps show it.
    let mut grouped = zeroize::Zeroizing::new(String::new());
    for (i, c) in enrolment.secret.expose().chars().enumerate() {
        if i > 0 && i % 4 == 0 {
            grouped.push(' ');
        }
        grouped.push(c);
    }
    let minutes = ops::PENDING_ENROLMENT.as_secs() / 60;
    writeln!(
        io.out,
        "\nsecret:  {}\naccount: {}:{}\n\nThen confirm within {minutes} minutes with a code from the app:\n  rampart me mfa confirm CODE",
        grouped.as_str(),
        totp::ISSUER,
        caller.name
    )?;
    io.out.flush()
}
