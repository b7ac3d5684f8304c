//! `rampart session ...`: sessions past and live, killing one, the
//! requests waiting for approval; and `rampart export`, a session's
//! recording written out. Printed.

use std::path::PathBuf;

use anyhow::{Context, bail};

use super::SessionCmd;
use super::output::{self, Column};
use super::verb::{Io, Outcome, query};
use crate::audit::Via;
use crate::ops::Caller;
use crate::services::Services;

pub(super) const SESSION_COLUMNS: &[Column] = &[
    ("ID", "id"),
    ("USER", "user"),
    ("ASSET", "asset"),
    ("ACCOUNT", "account"),
    ("PROTOCOL", "protocol"),
    ("SOURCE", "source"),
    ("STARTED", "started_at"),
    ("ENDED", "ended_at"),
    ("STATUS", "status"),
];
const LIVE_COLUMNS: &[Column] = &[
    ("ID", "id"),
    ("USER", "user"),
    ("ASSET", "asset"),
    ("ACCOUNT", "account"),
    ("PROTOCOL", "protocol"),
    ("SOURCE", "source"),
    ("STARTED", "started_at"),
    ("NODE", "node"),
    ("IN", "bytes_in"),
    ("OUT", "bytes_out"),
];
const APPROVAL_COLUMNS: &[Column] = &[
    ("ID", "id"),
    ("USER", "user"),
    ("ASSET", "asset"),
    ("ACCOUNT", "account"),
    ("RULE", "rule"),
    ("ASKED", "asked_at"),
    ("WHAT", "command"),
];

pub(super) async fn run(
    services: &Services,
    caller: &Caller,
    cmd: SessionCmd,
    json: bool,
    io: &mut Io<'_>,
) -> anyhow::Result<Outcome> {
    let tz = &services.config.auth.time_zone.clone();
    let now = services.clock.now();
    let ops = &services.ops;
    match cmd {
        SessionCmd::List { live: true, .. } => {
            let sessions = ops
                .live_sessions(caller, &services.config.control_socket_path())
                .await?;
            output::list(io.out, &sessions, LIVE_COLUMNS, json)?
        }
        SessionCmd::List {
            live: false,
            filter,
        } => output::list(
            io.out,
            &ops.session_list(caller, &query(&filter, tz, now)?, false)
                .await?,
            SESSION_COLUMNS,
            json,
        )?,
        SessionCmd::Kill { id, reason } => {
            ops.session_kill(caller, &services.config.control_socket_path(), &id, &reason)
                .await?;
            writeln!(io.out, "session {id} ended: {reason}")?;
        }
        SessionCmd::Link { id } => {
            let link = ops.recording_link(caller, &id).await?;
            if json {
                output::show(io.out, &link, true)?;
            } else {
                let until = link
                    .expires_at
                    .to_zoned(services.config.auth.time_zone.clone())
                    .strftime("%H:%M:%S");
                writeln!(
                    io.out,
                    "the recording of session {id}: open within 60 s (until {until}), once:\n  {}",
                    link.url.expose()
                )?;
            }
        }
        SessionCmd::Approvals => output::list(
            io.out,
            &ops.approvals_waiting(caller, &services.config.control_socket_path())
                .await?,
            APPROVAL_COLUMNS,
            json,
        )?,
        SessionCmd::Approve { id } => {
            let r = ops
                .session_decide(caller, &services.config.control_socket_path(), id, true, "")
                .await?;
            writeln!(
                io.out,
                "request {id} approved: {} on {} as {}: {}",
                r.user, r.asset, r.account, r.command
            )?;
        }
        SessionCmd::Deny { id, reason } => {
            let r = ops
                .session_decide(
                    caller,
                    &services.config.control_socket_path(),
                    id,
                    false,
                    reason.as_deref().unwrap_or_default(),
                )
                .await?;
            writeln!(
                io.out,
                "request {id} denied: {} on {} as {}: {}",
                r.user, r.asset, r.account, r.command
            )?;
        }
    }
    Ok(Outcome::Success)
}

/// `rampart export SESSION [-o FILE] [--raw]`.
/// What `rampart export` writes.
pub(super) enum Export {
    /// The asciicast file as stored.
    Cast,
    /// Exactly the bytes the client received.
    Raw,
    /// One picture of a desktop recording, at a moment (default: the end).
    Png { at: Option<String> },
    /// A desktop recording as a GIF animation.
    Gif,
    /// A desktop recording as an MP4 video (by ffmpeg).
    Mp4,
}

/// `90`, `90.5`, `1:30` or `00:01:30`: seconds from the start.
fn parse_moment(text: &str) -> anyhow::Result<f64> {
    let bad = || anyhow::anyhow!("--at {text:?}: give seconds (90) or [HH:]MM:SS (00:01:30)");
    let mut seconds = 0.0;
    for part in text.trim().split(':') {
        let v: f64 = part.parse().map_err(|_| bad())?;
        if !v.is_finite() || v < 0.0 {
            return Err(bad());
        }
        seconds = seconds * 60.0 + v;
    }
    if text.split(':').count() > 3 {
        return Err(bad());
    }
    Ok(seconds)
}

/// Refuses a picture format for a terminal recording.
fn desktop_only(path: &std::path::Path, session: &str, format: &str) -> anyhow::Result<()> {
    let kind = crate::record::read(path)?
        .header()
        .rampart
        .as_ref()
        .map(|r| r.kind);
    if kind != Some(crate::record::SessionKind::Desktop) {
        bail!(
            "--format {format} shows desktop (RDP) recordings; {session} is a terminal session: export it as is, or --raw"
        );
    }
    Ok(())
}

pub(super) async fn export(
    services: &Services,
    caller: &Caller,
    session: String,
    file: Option<PathBuf>,
    what: Export,
    io: &mut Io<'_>,
) -> anyhow::Result<Outcome> {
    let ops = &services.ops;
    let local = caller.via == Via::Cli;
    let path = ops
        .session_recording(caller, &session, "session.export", &services.recordings)
        .await?;
    let mut buf: Vec<u8> = Vec::new();
    match what {
        Export::Raw => {
            crate::record::export(&path, &mut buf)?;
        }
        Export::Cast => {
            buf =
                std::fs::read(&path).with_context(|| format!("cannot read {}", path.display()))?;
        }
        Export::Png { at } => {
            let at = match at.as_deref() {
                None => f64::INFINITY,
                Some(t) => parse_moment(t)?,
            };
            desktop_only(&path, &session, "png")?;
            // Decoding takes seconds on a long recording: off the runtime.
            let (written, png) = tokio::task::spawn_blocking(move || {
                let mut png = Vec::new();
                let written = crate::record::picture_at(&path, at, |frame| {
                    frame.map(|frame| frame.write_png(&mut png))
                });
                (written, png)
            })
            .await?;
            match written? {
                Some(result) => result?,
                None => bail!(
                    "the recording has no picture yet at that moment (the desktop was not shown)"
                ),
            }
            buf = png;
        }
        Export::Gif => {
            desktop_only(&path, &session, "gif")?;
            let options = crate::record::gif::GifOptions::default();
            buf = tokio::task::spawn_blocking(move || {
                let mut gif = Vec::new();
                crate::record::gif::write_gif(&path, &mut gif, options).map(|_| gif)
            })
            .await??;
        }
        Export::Mp4 => {
            desktop_only(&path, &session, "mp4")?;
            let options = crate::record::video::VideoOptions::default();
            buf = tokio::task::spawn_blocking(move || {
                let mut mp4 = Vec::new();
                crate::record::video::write_mp4(&path, &mut mp4, options).map(|_| mp4)
            })
            .await??;
        }
    }
    match file {
        Some(f) if local => {
            std::fs::write(&f, &buf).with_context(|| format!("cannot write {}", f.display()))?
        }
        Some(_) => bail!(
            "-o writes a file on the bastion: only in the local CLI; over SSH the recording goes to standard output"
        ),
        None => io.out.write_all(&buf)?,
    }
    Ok(Outcome::Success)
}
