//! The answer each channel request of a session channel gets, decided in
//! the russh callback, in the order the requests arrived.
//!
//! Why here and not in the channel's task: OpenSSH pipelines its requests
//! (`pty-req` and `shell`/`exec`/`subsystem` with want-reply, `env` without)
//! and russh keeps only one "wants a reply" flag per channel, overwritten by
//! each new request. A reply sent later from another task lands on whatever
//! request came last: a reply to an `env` that wanted none was taken by
//! OpenSSH as the answer to the `exec` after it (git's `GIT_PROTOCOL` made
//! every `git clone` fail), and a late `pty-req` reply was dropped. Answering
//! inside the callback, while the flag is the request's own, gives every
//! want-reply request exactly one reply, in order, and a request without
//! want-reply none.
//!
//! The decisions here are pure and cheap (the login's route and the policy
//! snapshot in memory): a callback must not wait. The channel's task gets
//! each [`Answer`] in the same order as the requests, so it acts on exactly
//! what the client was told.
//!
//! Must never: accept a second shell/exec/subsystem on a channel, or let a
//! refused one start anything.

use super::target;
use super::{Conn, Shared};
use crate::route::{self, Intent, Request};

/// Requests a channel may make before its session starts. OpenSSH sends a
/// handful (pty-req, a few env, then shell/exec/subsystem); past this the
/// client is not a shell client, and the channel is closed.
pub const MAX_SETUP_REQUESTS: usize = 64;
/// Environment variables taken per channel, and their sizes: `LC_*` is an
/// open family, so without a cap a client could park megabytes per channel.
pub const MAX_ENV: usize = 24;
pub const MAX_ENV_NAME: usize = 64;
pub const MAX_ENV_VALUE: usize = 512;

/// What the handler told the client, for the channel's task.
#[derive(Debug)]
pub enum Answer {
    /// A pty-req or env request was taken (the task reads its contents
    /// from the message itself).
    Taken,
    /// Refused with a failure reply; `reason` is the line the person got on
    /// standard error and goes into the refusal row.
    Refused {
        request: &'static str,
        reason: String,
    },
    /// A shell, exec or subsystem request was accepted: what it runs.
    Start(Intent),
    /// A shell, exec or subsystem request was refused: nothing starts.
    StartRefused {
        request: &'static str,
        reason: String,
    },
}

/// A session channel's requests as the handler has seen them.
#[derive(Debug, Default)]
pub struct ChannelRequests {
    pub pty: bool,
    pub env: usize,
    pub started: bool,
    pub setup: usize,
}

/// Environment variables a client may set (DESIGN.md §2), plus
/// `GIT_PROTOCOL`, which git needs for protocol v2 and passes on to the
/// target.
pub fn env_allowed(name: &str) -> bool {
    name == "TERM"
        || name == "LANG"
        || name.starts_with("LC_")
        || name == "NO_COLOR"
        || name == target::GIT_PROTOCOL
}

/// Whether an env request is taken; `Err` is the line the person gets.
pub fn env(state: &ChannelRequests, name: &str, value: &str) -> Result<(), String> {
    if state.started {
        return Err(format!(
            "environment variable {} is not passed on: the session has started",
            shown(name)
        ));
    }
    if !env_allowed(name) {
        return Err(format!(
            "environment variable {} is not passed on (only TERM, LANG, LC_*, NO_COLOR and GIT_PROTOCOL)",
            shown(name)
        ));
    }
    if state.env >= MAX_ENV || name.len() > MAX_ENV_NAME || value.len() > MAX_ENV_VALUE {
        return Err(format!(
            "environment variable {} is not passed on: at most {MAX_ENV} variables of {MAX_ENV_VALUE} bytes",
            shown(name)
        ));
    }
    if name == target::GIT_PROTOCOL && !git_protocol_value(value) {
        return Err(
            "GIT_PROTOCOL is not passed on: its value is not a git protocol setting".into(),
        );
    }
    Ok(())
}

/// `version=2` and the like: what git sends, nothing a target's shell or
/// git could read as more.
fn git_protocol_value(value: &str) -> bool {
    !value.is_empty()
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"=:._-".contains(&b))
}

/// The decision on a shell, exec or subsystem request. Refusals here are
/// those the person can be told before anything starts: a request that
/// cannot be understood, one the front door does not offer, an asset that
/// does not exist for them, two-factor enrolment still due. Later refusals
/// (an action not granted, an approval denied, a target that is down) end
/// an accepted session with a line and exit status 255.
pub fn start(shared: &Shared, conn: &Conn, request: &Request) -> Result<Intent, String> {
    let login = conn.route.clone().unwrap_or(route::Login {
        user: conn.identity.name.clone(),
        target: None,
    });
    let intent = route::route(&login, request).map_err(|e| format!("rampart: {e}"))?;
    if conn.must_enrol && !matches!(intent, Intent::Menu) {
        return Err(
            "rampart: two-factor enrolment is required first: log in interactively (`ssh -t bastion`)"
                .into(),
        );
    }
    let now = shared.services.clock.now();
    let visible = |asset: &str| {
        shared
            .policy()
            .visible_asset(&conn.identity, asset, now)
            .is_some()
    };
    match &intent {
        Intent::Refuse { reason } => return Err(format!("rampart: {reason}")),
        Intent::Jump { target, .. } | Intent::Exec { target, .. } if !visible(&target.asset) => {
            return Err(target::no_access(&target.asset));
        }
        Intent::Sftp {
            target: Some(target),
        } if !visible(&target.asset) => return Err(target::no_access(&target.asset)),
        // Without a terminal there is no chooser: the account must be
        // clear now.
        Intent::Exec {
            target, pty: false, ..
        } if target.account.is_none() => {
            target::pick_account(shared, conn, &target.asset)?;
        }
        _ => {}
    }
    Ok(intent)
}

/// The name of a request, for its refusal row.
pub fn name(request: &Request) -> &'static str {
    match request {
        Request::Shell { .. } => "shell",
        Request::Exec { .. } => "exec",
        Request::Subsystem(_) => "subsystem",
    }
}

/// A client-chosen name, safe to show on one line.
fn shown(name: &str) -> String {
    let mut s: String = name
        .chars()
        .take(MAX_ENV_NAME)
        .map(|c| if c.is_control() { '?' } else { c })
        .collect();
    if name.chars().count() > MAX_ENV_NAME {
        s.push('…');
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_takes_the_designed_names_within_the_caps() {
        let mut state = ChannelRequests::default();
        assert!(env(&state, "LANG", "C.UTF-8").is_ok());
        assert!(env(&state, "LC_ALL", "C").is_ok());
        assert!(env(&state, "GIT_PROTOCOL", "version=2").is_ok());
        assert!(env(&state, "GIT_PROTOCOL", "version=2;rm -rf /").is_err());
        assert!(env(&state, "LD_PRELOAD", "/tmp/x.so").is_err());
        assert!(env(&state, "LC_X", &"x".repeat(MAX_ENV_VALUE + 1)).is_err());
        state.env = MAX_ENV;
        let refused = env(&state, "LC_MORE", "1").unwrap_err();
        assert!(refused.contains("at most"), "{refused}");
        state.env = 0;
        state.started = true;
        assert!(env(&state, "LANG", "C").is_err());
    }

    #[test]
    fn a_hostile_variable_name_is_shown_on_one_short_line() {
        let state = ChannelRequests::default();
        let refused = env(&state, &format!("A\r\n\x1b[2J{}", "B".repeat(500)), "1").unwrap_err();
        assert!(
            !refused.contains('\n') && !refused.contains('\x1b'),
            "{refused}"
        );
        assert!(refused.len() < 200, "{refused}");
    }
}
