//! The two-way pump between a person's channel and a target's channel, for
//! interactive and exec sessions: bytes both ways with backpressure (each
//! direction awaits the other side's SSH window, so `cat /dev/zero` on the
//! target cannot grow the bastion's memory), the command filter applied at
//! Enter before the keystroke reaches the target, and a tee of the output to
//! the recorder, the command tracker and the live registry.
//!
//! The two directions run as two futures polled together: one blocked on a
//! slow side never stops the other from draining its channel, which would
//! otherwise stall russh's connection loop (TECH-NOTES: undrained channels).
//!
//! Must never: drop output, reorder exit-status/EOF/close, or let a denied
//! command's Enter reach the target.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use russh::client::Msg as ClientMsg;
use russh::server::Msg as ServerMsg;
use russh::{ChannelMsg, ChannelReadHalf, ChannelWriteHalf};

use crate::audit::AuditEvent;
use crate::live;
use crate::model::FilterAction;
use crate::policy::{FilterVerdict, Grant, Snapshot};
use crate::record::{CommandTracker, CompletedCommand, Input, LateCommand, RecorderHandle};
use crate::services::Services;

/// The largest terminal the bastion models: a client may claim any size,
/// but every screen model (command tracker, live monitor, menu) costs
/// memory per cell, so claims are clamped to this (a 4K screen with a
/// small font is about 400 x 120).
pub const MAX_COLS: u32 = 512;
pub const MAX_ROWS: u32 = 256;

/// The size a client that claims none gets: `ssh -tt` with no terminal
/// of its own (a script, ansible) sends 0 × 0, and programs on the target
/// then assume 80 × 24. A model of one column would wrap every character.
pub const DEFAULT_COLS: u32 = 80;
pub const DEFAULT_ROWS: u32 = 24;

/// A claimed terminal size, clamped to what the bastion models; 0 (no
/// size) is the default. What the bastion's screen models and recordings
/// use.
pub fn terminal_size(cols: u32, rows: u32) -> (u32, u32) {
    let (cols, rows) = claimed_size(cols, rows);
    let or = |v: u32, default: u32| if v == 0 { default } else { v };
    (or(cols, DEFAULT_COLS), or(rows, DEFAULT_ROWS))
}

/// A claimed terminal size as the target gets it: clamped like
/// [`terminal_size`], but "no size" (0) stays 0, as with direct ssh.
pub fn claimed_size(cols: u32, rows: u32) -> (u32, u32) {
    (cols.min(MAX_COLS), rows.min(MAX_ROWS))
}

/// The exit status the person's client gets when the bastion, not the
/// target, ended or refused the session (killed, revoked, idle, shut down,
/// not recordable, target unreachable): OpenSSH's own status for a session
/// that did not end normally, so scripts cannot take it for the command's.
pub const EXIT_BASTION: u32 = 255;

/// The end of the person's channel. Exit status (or exit signal) and EOF
/// each go out at most once, whoever sends them first: the target's own,
/// forwarded by the relay, or the channel task's when the session is over.
/// A second exit-status is a protocol error to OpenSSH's ControlMaster
/// (`exitval sent twice`, which made every ansible run fail).
#[derive(Debug, Default)]
pub struct ClientEnd {
    exit: std::sync::atomic::AtomicBool,
    eof: std::sync::atomic::AtomicBool,
}

impl ClientEnd {
    fn take(flag: &std::sync::atomic::AtomicBool) -> bool {
        !flag.swap(true, std::sync::atomic::Ordering::AcqRel)
    }

    pub async fn exit_status(&self, write: &ChannelWriteHalf<ServerMsg>, status: u32) {
        if Self::take(&self.exit) {
            let _ = write.exit_status(status).await;
        }
    }

    pub async fn exit_signal(
        &self,
        handle: &russh::server::Handle,
        id: russh::ChannelId,
        signal: russh::Sig,
        core_dumped: bool,
        message: String,
        lang: String,
    ) {
        if Self::take(&self.exit) {
            let _ = handle
                .exit_signal_request(id, signal, core_dumped, message, lang)
                .await;
        }
    }

    pub async fn eof(&self, write: &ChannelWriteHalf<ServerMsg>) {
        if Self::take(&self.eof) {
            let _ = write.eof().await;
        }
    }

    /// Exit status (unless one went out), EOF (unless sent), close.
    pub async fn finish(&self, write: &ChannelWriteHalf<ServerMsg>, status: u32) {
        self.exit_status(write, status).await;
        self.eof(write).await;
        let _ = write.close().await;
    }
}

/// Why a relayed session ended, as the session row says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EndReason {
    ClientClosed,
    TargetClosed,
    Killed(String),
    IdleTimeout,
    Shutdown,
    GrantEnded,
    /// `recording.on_failure = deny` and the recording failed mid-session.
    RecordingFailed(String),
    Error(String),
}

impl EndReason {
    /// The bastion ended it: the person's exit status is [`EXIT_BASTION`]
    /// whatever the target said last.
    pub fn by_bastion(&self) -> bool {
        !matches!(self, EndReason::ClientClosed | EndReason::TargetClosed)
    }

    pub fn as_str(&self) -> String {
        match self {
            EndReason::ClientClosed => "client closed".into(),
            EndReason::TargetClosed => "target closed".into(),
            EndReason::Killed(r) => format!("killed: {r}"),
            EndReason::IdleTimeout => "idle timeout".into(),
            EndReason::Shutdown => "bastion shutdown".into(),
            EndReason::GrantEnded => "permission ended".into(),
            EndReason::RecordingFailed(e) => format!("recording failed: {e}"),
            EndReason::Error(e) => format!("error: {e}"),
        }
    }
}

/// What a relayed session ended with.
#[derive(Debug)]
pub struct Outcome {
    pub reason: EndReason,
    pub exit_status: Option<u32>,
    pub bytes_in: u64,
    pub bytes_out: u64,
    /// The client's channel is still open (the menu may come back).
    pub client_open: bool,
    /// The last window size the person sent, if any.
    pub size: Option<(u32, u32)>,
}

/// Everything the pump needs besides the two channels.
pub struct Hooks<'a> {
    pub services: &'a Services,
    pub policy: &'a (dyn Fn() -> Arc<Snapshot> + Sync),
    pub grant: &'a Grant,
    pub session_id: &'a str,
    pub recorder: &'a RecorderHandle,
    /// Interactive sessions track commands; exec sessions log their one
    /// command instead.
    pub tracker: Option<CommandTracker>,
    pub live: &'a mut live::LiveSession,
    pub shutdown: &'a tokio_util::sync::CancellationToken,
    pub idle_timeout: Option<Duration>,
    /// `recording.on_failure = allow`: a recording that fails mid-session
    /// stops recording instead of ending the session.
    pub recording_optional: bool,
    /// `Some` when the person's channel ends with the session: the
    /// target's EOF, exit status and exit signal are forwarded through it.
    /// `None` when the menu comes back: none of them is, since OpenSSH
    /// drops all output after an EOF and takes exit-status as the end.
    pub end: Option<&'a ClientEnd>,
    /// The actions the session was granted for (`connect`, or `upload`
    /// and the like for scp and rsync): rechecked every second.
    pub actions: &'a [crate::model::Action],
    /// Watches the raw streams (legacy SCP's file log).
    pub tap: Option<&'a dyn StreamTap>,
    /// Whether the data streams go into the recording: the target's
    /// standard output, and the person's keystrokes with `recording.input`.
    /// Off for legacy SCP, whose data is file content (logged as transfers,
    /// kept only with `recording.keep_files`); standard error is always
    /// recorded.
    pub record_stdout: bool,
}

/// Sees the bytes of an exec session as they pass, without changing them.
pub trait StreamTap: Send + Sync {
    fn person_sent(&self, data: &[u8]);
    fn target_sent(&self, data: &[u8]);
}

/// State both directions touch, behind a mutex held only for short,
/// non-awaiting sections.
struct Shared {
    tracker: Option<CommandTracker>,
    last_activity: Instant,
    bytes_in: u64,
    bytes_out: u64,
    exit_status: Option<u32>,
    size: Option<(u32, u32)>,
    /// Commands to write to the log, collected outside the lock.
    pending_log: Vec<LoggedCommand>,
    /// The filter verdict of the command now running (its row is written
    /// when its output window closes).
    running_verdict: (FilterAction, Option<String>),
}

impl Shared {
    /// `done` ended; it ran under `running_verdict`: queued for the log.
    fn log_done(&mut self, done: CompletedCommand) {
        let (action, rule) = self.running_verdict.clone();
        self.pending_log.push(LoggedCommand {
            command: done.command,
            output: done.output,
            offset: done.at,
            action,
            rule,
        });
    }

    /// A command runs from now under `verdict`; `done`, the one before
    /// it, is logged under its own.
    fn run_next(
        &mut self,
        done: Option<CompletedCommand>,
        verdict: (FilterAction, Option<String>),
    ) {
        if let Some(done) = done {
            self.log_done(done);
        }
        self.running_verdict = verdict;
    }
}

struct LoggedCommand {
    command: String,
    output: String,
    offset: Duration,
    action: FilterAction,
    rule: Option<String>,
}

/// How long an Enter typed before its echo is held for the echo to show
/// the line on screen.
const ECHO_WAIT: Duration = Duration::from_millis(300);
/// When the typed line is unknown, a line that stayed the same this long is
/// taken as fully echoed.
const ECHO_STEADY: Duration = Duration::from_millis(40);

mod review;

/// How often a control task blocked on a busy input loop looks for a kill.
const KILL_CHECK: Duration = Duration::from_millis(100);

pub use review::{Held, await_decision};

const RED: &str = "\x1b[1;31m";
const YELLOW: &str = "\x1b[1;33m";
const RESET: &str = "\x1b[0m";

/// Pumps until one side closes, the session is killed, idles out, or the
/// bastion shuts down.
pub async fn pump(
    client_read: &mut ChannelReadHalf,
    client_write: &ChannelWriteHalf<ServerMsg>,
    client_handle: &russh::server::Handle,
    client_id: russh::ChannelId,
    target_read: &mut ChannelReadHalf,
    target_write: &ChannelWriteHalf<ClientMsg>,
    mut hooks: Hooks<'_>,
) -> Outcome {
    let shared = Mutex::new(Shared {
        tracker: hooks.tracker.take(),
        last_activity: Instant::now(),
        bytes_in: 0,
        bytes_out: 0,
        exit_status: None,
        size: None,
        pending_log: Vec::new(),
        running_verdict: (FilterAction::Allow, None),
    });
    let publish = hooks.live.publisher();
    let recorder = hooks.recorder;
    let recording_optional = hooks.recording_optional;
    let tap = hooks.tap;
    let record_stdout = hooks.record_stdout;
    let grant = hooks.grant;
    let policy = hooks.policy;
    let end = hooks.end;

    // Target -> person.
    let up = async {
        let mut target_eof = false;
        loop {
            let Some(msg) = target_read.wait().await else {
                return EndReason::TargetClosed;
            };
            match msg {
                ChannelMsg::Data { data } => {
                    let late = {
                        // Published under the same lock the tracker's screen is
                        // fed under, so a monitor's snapshot never shows a chunk
                        // twice or misses one.
                        let mut s = lock(&shared);
                        s.bytes_out += data.len() as u64;
                        s.last_activity = Instant::now();
                        let late = match s.tracker.as_mut() {
                            Some(t) => {
                                t.output(&data);
                                t.take_late()
                            }
                            None => Vec::new(),
                        };
                        publish.publish(data.clone());
                        late
                    };
                    if !late.is_empty() {
                        let commands: Vec<String> =
                            late.iter().map(|l| l.command.clone()).collect();
                        log_late(&shared, late, |c| policy().check_grant_command(grant, c));
                        flush_log(hooks.services, grant, hooks.session_id, &shared).await;
                        // Marked in the recording where the shell drew it.
                        for command in &commands {
                            let _ = recorder.command(command).await;
                        }
                    }
                    publish.add_out(data.len() as u64);
                    if let Some(tap) = tap {
                        tap.target_sent(&data);
                    }
                    if record_stdout
                        && let Err(e) = recorder.output(data.clone()).await
                        && !recording_optional
                    {
                        return EndReason::RecordingFailed(e.to_string());
                    }
                    if client_write.data_bytes(data).await.is_err() {
                        return EndReason::ClientClosed;
                    }
                }
                ChannelMsg::ExtendedData { data, ext } => {
                    lock(&shared).bytes_out += data.len() as u64;
                    publish.add_out(data.len() as u64);
                    publish.publish(data.clone());
                    if let Err(e) = recorder.output(data.clone()).await
                        && !recording_optional
                    {
                        return EndReason::RecordingFailed(e.to_string());
                    }
                    if client_write.extended_data_bytes(ext, data).await.is_err() {
                        return EndReason::ClientClosed;
                    }
                }
                ChannelMsg::ExitStatus { exit_status } => {
                    lock(&shared).exit_status = Some(exit_status);
                    if let Some(end) = end {
                        end.exit_status(client_write, exit_status).await;
                        if target_eof {
                            end.eof(client_write).await;
                        }
                    }
                }
                ChannelMsg::ExitSignal {
                    signal_name,
                    core_dumped,
                    error_message,
                    lang_tag,
                } => {
                    if let Some(end) = end {
                        end.exit_signal(
                            client_handle,
                            client_id,
                            signal_name,
                            core_dumped,
                            error_message,
                            lang_tag,
                        )
                        .await;
                        if target_eof {
                            end.eof(client_write).await;
                        }
                    }
                }
                ChannelMsg::Eof => {
                    // Passed on after the exit status, not before: OpenSSH
                    // closes a channel once both sides sent EOF, and russh
                    // answers that close at once, so an exit status the
                    // target sends after its EOF (sshd does) would never
                    // reach the person (ControlMaster then exits 255).
                    target_eof = true;
                }
                ChannelMsg::Close => return EndReason::TargetClosed,
                // Requests a target sends towards the person are not passed on.
                ChannelMsg::Open { .. }
                | ChannelMsg::RequestPty { .. }
                | ChannelMsg::RequestShell { .. }
                | ChannelMsg::Exec { .. }
                | ChannelMsg::Signal { .. }
                | ChannelMsg::RequestSubsystem { .. }
                | ChannelMsg::RequestX11 { .. }
                | ChannelMsg::SetEnv { .. }
                | ChannelMsg::WindowChange { .. }
                | ChannelMsg::AgentForward { .. }
                | ChannelMsg::XonXoff { .. }
                | ChannelMsg::WindowAdjusted { .. }
                | ChannelMsg::Success
                | ChannelMsg::Failure
                | ChannelMsg::OpenFailure(_) => {}
                // ChannelMsg is non-exhaustive: unknown kinds are not passed on.
                _ => {}
            }
        }
    };

    // Person -> target. What a joined admin types comes the same way, so it
    // is filtered and logged like the person's own keystrokes.
    let (joined_tx, mut joined_rx) = tokio::sync::mpsc::channel::<Bytes>(live::INPUT_QUEUE);
    let approval_timeout = hooks.services.config.auth.approval_timeout;
    let down = async {
        // Messages that came while a command waited for approval.
        let mut deferred: VecDeque<ChannelMsg> = VecDeque::new();
        loop {
            let msg = match deferred.pop_front() {
                Some(msg) => msg,
                None => tokio::select! {
                    msg = client_read.wait() => match msg {
                        Some(msg) => msg,
                        None => return EndReason::ClientClosed,
                    },
                    Some(data) = joined_rx.recv() => ChannelMsg::Data { data },
                },
            };
            match msg {
                ChannelMsg::Data { data } => {
                    // Keystrokes go into the cast only with `recording.input`
                    // (the recorder drops them otherwise).
                    if record_stdout {
                        let _ = recorder.input(data.clone()).await;
                    }
                    if let Some(tap) = tap {
                        tap.person_sent(&data);
                    }
                    publish.add_in(data.len() as u64);
                    let pieces = {
                        let mut s = lock(&shared);
                        s.bytes_in += data.len() as u64;
                        s.last_activity = Instant::now();
                        match s.tracker.as_mut() {
                            Some(t) => t.input(&data),
                            None => vec![Input::Data(data.to_vec())],
                        }
                    };
                    for piece in pieces {
                        // The verdict of a line held for review before its
                        // echo, kept with it (its logged text may not be
                        // the text that matched).
                        let mut unseen_review = None;
                        let (command, raw) = match piece {
                            Input::Data(bytes) => {
                                if target_write.data_bytes(Bytes::from(bytes)).await.is_err() {
                                    return EndReason::TargetClosed;
                                }
                                continue;
                            }
                            Input::Enter { command, raw } => (command, raw),
                            Input::EnterFullScreen { typed, raw } => {
                                // No line can be read on the alternate
                                // screen, so a shell that switched to it
                                // would type past the filters: the keys
                                // are checked instead. What they spelled
                                // may be a password, so it is never logged.
                                let verdict = policy().check_grant_command(grant, &typed);
                                if typed.trim().is_empty()
                                    || !matches!(
                                        verdict.action,
                                        FilterAction::Deny | FilterAction::Review
                                    )
                                {
                                    if target_write.data_bytes(Bytes::from(raw)).await.is_err() {
                                        return EndReason::TargetClosed;
                                    }
                                    continue;
                                }
                                let rule = verdict.rule.as_deref().unwrap_or("?").to_string();
                                let text = format!(
                                    "\r\n{RED}rampart: Enter refused: what was typed matches rule {rule}, and lines typed on a full-screen display cannot be reviewed{RESET}\r\n"
                                );
                                let refused = Refused {
                                    logged: "[a line typed on a full-screen display]".into(),
                                    action: FilterAction::Deny,
                                    rule: verdict.rule,
                                    text,
                                };
                                if let Err(end) = refuse_enter(
                                    &shared,
                                    client_write,
                                    recorder,
                                    target_write,
                                    refused,
                                )
                                .await
                                {
                                    return end;
                                }
                                continue;
                            }
                            Input::EnterUnseen { typed, raw } => {
                                // The line was not echoed yet. What was typed is
                                // checked now (a pasted `rm -rf /` + Enter must not
                                // slip through) but logged only once the echo shows
                                // it: it may be a password typed with echo off. The
                                // Enter is held until the echo shows the line.
                                let denied = typed
                                    .as_deref()
                                    .map(|t| policy().check_grant_command(grant, t))
                                    .filter(|v| {
                                        matches!(
                                            v.action,
                                            FilterAction::Deny | FilterAction::Review
                                        )
                                    });
                                let seen = wait_for_echo(&shared, typed.as_deref()).await;
                                // A line to review is held below like any other,
                                // under the verdict of the text that matched the
                                // rule (the echo may differ under type-ahead, and
                                // must not let it pass unreviewed). Not echoed,
                                // it may be a password: approvers, the log and
                                // the recording get a placeholder instead.
                                if let Some(typed) = typed.clone().filter(|_| {
                                    denied
                                        .as_ref()
                                        .is_some_and(|v| v.action == FilterAction::Review)
                                }) {
                                    unseen_review = denied;
                                    let shown = seen.map(|_| typed);
                                    (Some(shown.unwrap_or_else(|| review::UNSEEN.into())), raw)
                                } else if let Some(verdict) = denied {
                                    let rule = verdict.rule.as_deref().unwrap_or("?").to_string();
                                    // Logged as the text the rule matched, once
                                    // the echo showed it is no password.
                                    let command = match (seen, typed) {
                                        (Some(_), Some(typed)) => typed,
                                        _ => "[a line typed without echo]".into(),
                                    };
                                    let refused = Refused {
                                        logged: command,
                                        action: verdict.action,
                                        rule: verdict.rule,
                                        text: format!(
                                            "\r\n{RED}rampart: command refused by rule {rule}{RESET}\r\n"
                                        ),
                                    };
                                    if let Err(end) = refuse_enter(
                                        &shared,
                                        client_write,
                                        recorder,
                                        target_write,
                                        refused,
                                    )
                                    .await
                                    {
                                        return end;
                                    }
                                    continue;
                                } else if seen.is_none()
                                    && typed.is_none()
                                    && policy().grant_is_guarded(grant)
                                {
                                    // Typed ahead with keys that do not say
                                    // what the line is (history, Tab) and not
                                    // shown in time: no filter can read it,
                                    // so its Enter is held back. The line
                                    // stays at the prompt; a second Enter,
                                    // once it shows, is checked as usual.
                                    {
                                        // The command before it still runs:
                                        // its output goes on being captured.
                                        let mut s = lock(&shared);
                                        if let Some(t) = s.tracker.as_mut() {
                                            t.withheld();
                                        }
                                        s.pending_log.push(LoggedCommand {
                                            command: "[a line typed ahead that could not be read]"
                                                .into(),
                                            output: String::new(),
                                            offset: recorder.elapsed(),
                                            action: FilterAction::Deny,
                                            rule: None,
                                        });
                                    }
                                    let text = format!(
                                        "\r\n{YELLOW}rampart: Enter held back: this line was typed ahead with keys that do not show what it is (history, Tab); press Enter again once it shows at the prompt{RESET}\r\n"
                                    );
                                    if notify(client_write, recorder, &shared, text).await.is_err()
                                    {
                                        return EndReason::ClientClosed;
                                    }
                                    continue;
                                } else {
                                    if seen.is_none()
                                        && let Some(t) = lock(&shared).tracker.as_mut()
                                    {
                                        // Forwarded unread: logged should the
                                        // shell draw the typed keys later.
                                        t.expect_echo(recorder.elapsed());
                                    }
                                    (seen, raw)
                                }
                            }
                        };
                        let Some(command) = command else {
                            if target_write.data_bytes(Bytes::from(raw)).await.is_err() {
                                return EndReason::TargetClosed;
                            }
                            continue;
                        };
                        let mut verdict = unseen_review
                            .unwrap_or_else(|| policy().check_grant_command(grant, &command));
                        let offset = recorder.elapsed();
                        let rule = verdict.rule.as_deref().unwrap_or("?").to_string();
                        let (forward, notice) = match verdict.action {
                            FilterAction::Allow => (true, None),
                            FilterAction::Warn => (
                                true,
                                Some(format!(
                                    "\r\n{YELLOW}rampart: warning: this command matches rule {rule} and is flagged in the audit log{RESET}\r\n"
                                )),
                            ),
                            FilterAction::Deny => (
                                false,
                                Some(format!(
                                    "\r\n{RED}rampart: command refused by rule {rule}: {}{RESET}\r\n",
                                    printable(&command)
                                )),
                            ),
                            FilterAction::Review => {
                                let held = review::hold(
                                    &publish,
                                    &command,
                                    &rule,
                                    approval_timeout,
                                    client_read,
                                    &mut deferred,
                                    client_write,
                                    recorder,
                                    &shared,
                                )
                                .await;
                                let line = held.notice(approval_timeout);
                                match held {
                                    review::Held::ClientGone => return EndReason::ClientClosed,
                                    review::Held::Approved { .. } => {
                                        (true, Some(format!("{YELLOW}rampart: {line}{RESET}\r\n")))
                                    }
                                    _ => {
                                        // Logged as refused: it never ran.
                                        verdict.action = FilterAction::Deny;
                                        (false, Some(format!("{RED}rampart: {line}{RESET}\r\n")))
                                    }
                                }
                            }
                        };
                        {
                            let mut s = lock(&shared);
                            if forward {
                                let done = s
                                    .tracker
                                    .as_mut()
                                    .and_then(|t| t.started(command.clone(), offset));
                                s.run_next(done, (verdict.action, verdict.rule.clone()));
                            } else {
                                log_refused(
                                    &mut s,
                                    command.clone(),
                                    offset,
                                    verdict.action,
                                    verdict.rule.clone(),
                                );
                            }
                        }
                        let _ = recorder.command(&command).await;
                        if let Some(n) = notice
                            && notify(client_write, recorder, &shared, n).await.is_err()
                        {
                            return EndReason::ClientClosed;
                        }
                        let to_target = if forward {
                            Bytes::from(raw)
                        } else {
                            Bytes::from_static(b"\x03")
                        };
                        if target_write.data_bytes(to_target).await.is_err() {
                            return EndReason::TargetClosed;
                        }
                    }
                    flush_log(hooks.services, grant, hooks.session_id, &shared).await;
                }
                ChannelMsg::WindowChange {
                    col_width,
                    row_height,
                    pix_width,
                    pix_height,
                } => {
                    let claimed = claimed_size(col_width, row_height);
                    let (col_width, row_height) = terminal_size(col_width, row_height);
                    {
                        let mut s = lock(&shared);
                        s.size = Some((col_width, row_height));
                        if let Some(t) = s.tracker.as_mut() {
                            t.resize(col_width as u16, row_height as u16);
                        }
                    }
                    publish.resize(col_width as u16, row_height as u16);
                    let _ = recorder.resize(col_width as u16, row_height as u16).await;
                    let _ = target_write
                        .window_change(claimed.0, claimed.1, pix_width, pix_height)
                        .await;
                }
                ChannelMsg::Signal { signal } => {
                    let _ = target_write.signal(signal).await;
                }
                ChannelMsg::Eof => {
                    let _ = target_write.eof().await;
                }
                ChannelMsg::Close => return EndReason::ClientClosed,
                // Requests after the session started were refused by the
                // handler as they came (`ssh::request`): a second reply
                // would be taken as the answer to the client's next one.
                ChannelMsg::RequestShell { .. }
                | ChannelMsg::Exec { .. }
                | ChannelMsg::RequestSubsystem { .. }
                | ChannelMsg::RequestPty { .. }
                | ChannelMsg::RequestX11 { .. }
                | ChannelMsg::AgentForward { .. }
                | ChannelMsg::SetEnv { .. }
                | ChannelMsg::Open { .. }
                | ChannelMsg::ExtendedData { .. }
                | ChannelMsg::XonXoff { .. }
                | ChannelMsg::ExitStatus { .. }
                | ChannelMsg::ExitSignal { .. }
                | ChannelMsg::WindowAdjusted { .. }
                | ChannelMsg::Success
                | ChannelMsg::Failure
                | ChannelMsg::OpenFailure(_) => {}
                // ChannelMsg is non-exhaustive: unknown kinds are not passed on.
                _ => {}
            }
        }
    };

    let idle = async {
        let Some(limit) = hooks.idle_timeout else {
            return std::future::pending::<()>().await;
        };
        loop {
            let since = lock(&shared).last_activity.elapsed();
            if since >= limit {
                return;
            }
            tokio::time::sleep(limit - since).await;
        }
    };

    let grant_end = async {
        // Re-checked every second against the current snapshot: a revoked
        // permission, a disabled user or a passed --until ends the session.
        loop {
            tokio::time::sleep(Duration::from_secs(1)).await;
            let now = hooks.services.clock.now();
            let snapshot = policy();
            if hooks
                .actions
                .iter()
                .any(|action| snapshot.recheck(grant, *action, now).is_none())
            {
                return;
            }
        }
    };

    let live = &mut hooks.live;
    let control = async {
        loop {
            match live.control().await {
                Some(live::Control::Kill { reason, by }) => return (reason, by),
                Some(live::Control::Input(bytes)) => {
                    // The input loop may be busy (a command waiting for
                    // review, a target that stopped reading): wait for room,
                    // but never let a kill wait behind it.
                    loop {
                        match tokio::time::timeout(KILL_CHECK, joined_tx.reserve()).await {
                            Ok(Ok(room)) => {
                                room.send(bytes);
                                break;
                            }
                            // The input loop is gone: the session is ending.
                            Ok(Err(_)) => break,
                            Err(_) => {
                                if let Some(order) = live.killed() {
                                    return (order.reason, order.by);
                                }
                            }
                        }
                    }
                }
                Some(live::Control::Notice(text)) => {
                    let _ = notify(
                        client_write,
                        recorder,
                        &shared,
                        format!("\r\n{YELLOW}rampart: {text}{RESET}\r\n"),
                    )
                    .await;
                }
                Some(live::Control::Snapshot(reply)) => {
                    let screen = lock(&shared)
                        .tracker
                        .as_mut()
                        .map(|t| t.screen_formatted())
                        .unwrap_or_default();
                    reply.send(screen);
                }
                None => std::future::pending::<()>().await,
            }
        }
    };

    let (reason, last_words) = tokio::select! {
        r = up => (r, None),
        r = down => (r, None),
        () = idle => (EndReason::IdleTimeout, Some("session closed after the idle timeout".to_string())),
        () = grant_end => (EndReason::GrantEnded, Some("your access to this asset has ended".to_string())),
        (why, by) = control => {
            let text = format!("session ended by {by}: {why}");
            (EndReason::Killed(why), Some(text))
        }
        () = hooks.shutdown.cancelled() => (EndReason::Shutdown, Some("the bastion is shutting down".to_string())),
    };
    if let Some(text) = last_words {
        let _ = notify(
            client_write,
            recorder,
            &shared,
            format!("\r\n{RED}rampart: {text}{RESET}\r\n"),
        )
        .await;
    }

    // The last command's output window closes with the session.
    {
        let late = lock(&shared)
            .tracker
            .as_mut()
            .map(CommandTracker::take_late)
            .unwrap_or_default();
        log_late(&shared, late, |c| policy().check_grant_command(grant, c));
        let mut s = lock(&shared);
        if let Some(done) = s.tracker.as_mut().and_then(|t| t.finish()) {
            s.log_done(done);
        }
    }
    flush_log(hooks.services, grant, hooks.session_id, &shared).await;
    let s = lock(&shared);
    Outcome {
        client_open: !matches!(reason, EndReason::ClientClosed),
        reason,
        exit_status: s.exit_status,
        bytes_in: s.bytes_in,
        bytes_out: s.bytes_out,
        size: s.size,
    }
}

/// Lines the screen showed only after their Enter went out: each ends the
/// command before it and runs from its Enter under the verdict its keys
/// had (checked again here: the same text, the same rules).
fn log_late(shared: &Mutex<Shared>, late: Vec<LateCommand>, check: impl Fn(&str) -> FilterVerdict) {
    let mut s = lock(shared);
    for l in late {
        let verdict = check(&l.command);
        s.run_next(l.previous, (verdict.action, verdict.rule));
    }
}

/// Logs a command that did not run; the one that ran before it is complete
/// (its output window closes where the refused line was typed).
fn log_refused(
    s: &mut Shared,
    command: String,
    offset: Duration,
    action: FilterAction,
    rule: Option<String>,
) {
    if let Some(done) = s.tracker.as_mut().and_then(|t| t.refused(&command)) {
        s.log_done(done);
    }
    s.pending_log.push(LoggedCommand {
        command,
        output: String::new(),
        offset,
        action,
        rule,
    });
}

/// An Enter refused before it reached the target.
struct Refused {
    /// What the command log says was typed (a placeholder where it may be
    /// a password).
    logged: String,
    action: FilterAction,
    rule: Option<String>,
    /// The line the person gets.
    text: String,
}

/// Refuses an Enter: logged as refused, the person told, and a Ctrl-C to
/// the target for the line left at its prompt.
async fn refuse_enter(
    shared: &Mutex<Shared>,
    client_write: &ChannelWriteHalf<ServerMsg>,
    recorder: &RecorderHandle,
    target_write: &ChannelWriteHalf<ClientMsg>,
    refused: Refused,
) -> Result<(), EndReason> {
    log_refused(
        &mut lock(shared),
        refused.logged,
        recorder.elapsed(),
        refused.action,
        refused.rule,
    );
    if notify(client_write, recorder, shared, refused.text)
        .await
        .is_err()
    {
        return Err(EndReason::ClientClosed);
    }
    target_write
        .data_bytes(Bytes::from_static(b"\x03"))
        .await
        .map_err(|_| EndReason::TargetClosed)
}

/// Waits (up to [`ECHO_WAIT`]) for the target to echo the line of a held
/// Enter, then takes it from the screen model: the typed line itself once
/// the shell drew exactly those keys, or else a line that stopped changing.
/// `None`: nothing was echoed (echo off) or the screen is not a prompt.
async fn wait_for_echo(shared: &Mutex<Shared>, typed: Option<&str>) -> Option<String> {
    let deadline = Instant::now() + ECHO_WAIT;
    let mut last: Option<String> = None;
    let mut steady_since = Instant::now();
    while Instant::now() < deadline {
        let line = lock(shared).tracker.as_mut().and_then(|t| t.pending_line());
        if line.is_some() && line.as_deref() == typed {
            break;
        }
        if line != last {
            last = line;
            steady_since = Instant::now();
        } else if last.is_some() && steady_since.elapsed() >= ECHO_STEADY {
            // The screen shows a line other than the keys (or the keys were
            // not simple) and it stopped changing: the shell has drawn it.
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    lock(shared)
        .tracker
        .as_mut()
        .and_then(|t| t.resolve_pending())
}

/// Text from the bastion to the person: sent, recorded and fed to the
/// screen model like target output, so the recording stays exactly what the
/// person saw.
async fn notify(
    client_write: &ChannelWriteHalf<ServerMsg>,
    recorder: &RecorderHandle,
    shared: &Mutex<Shared>,
    text: String,
) -> Result<(), ()> {
    let terminal = {
        let mut s = lock(shared);
        match s.tracker.as_mut() {
            Some(t) => {
                t.output(text.as_bytes());
                true
            }
            None => false,
        }
    };
    if terminal {
        let bytes = Bytes::from(text);
        let _ = recorder.output(bytes.clone()).await;
        return client_write.data_bytes(bytes).await.map_err(|_| ());
    }
    // Without a terminal, standard output is the command's own (a pipe, a
    // file, scp's protocol): the bastion's line goes to standard error,
    // plain.
    let plain = text
        .replace(RED, "")
        .replace(YELLOW, "")
        .replace(RESET, "")
        .replace("\r\n", "\n");
    let plain = format!("{}\n", plain.trim_matches('\n'));
    let bytes = Bytes::from(plain);
    let _ = recorder.output(bytes.clone()).await;
    client_write
        .extended_data_bytes(1, bytes)
        .await
        .map_err(|_| ())
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Control characters in a command must not reach the terminal raw.
fn printable(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .collect()
}

/// Writes the commands waiting to be logged, each in its own transaction.
async fn flush_log(services: &Services, grant: &Grant, session_id: &str, shared: &Mutex<Shared>) {
    let pending = std::mem::take(&mut lock(shared).pending_log);
    for c in pending {
        let rule = c.rule;
        let event = AuditEvent::Command {
            session_id: session_id.to_string(),
            offset_ms: i64::try_from(c.offset.as_millis()).unwrap_or(i64::MAX),
            user_name: grant.user_name().to_string(),
            asset_name: grant.asset_name().to_string(),
            account: grant.account().username().to_string(),
            command: c.command,
            output: c.output,
            action: c.action.as_str().to_string(),
            rule,
        };
        // Queued for the batching writer: the person's next keystroke
        // never waits for the database.
        services.audit.write(event, services.clock.now()).await;
    }
}

/// Logs the command of an exec session with the first output it produced.
pub async fn log_exec_command(
    services: &Services,
    grant: &Grant,
    session_id: &str,
    command: &str,
    output: String,
    action: FilterAction,
    rule: Option<String>,
) {
    let shared = Mutex::new(Shared {
        tracker: None,
        last_activity: Instant::now(),
        bytes_in: 0,
        bytes_out: 0,
        exit_status: None,
        size: None,
        running_verdict: (FilterAction::Allow, None),
        pending_log: vec![LoggedCommand {
            command: command.to_string(),
            output,
            offset: Duration::ZERO,
            action,
            rule,
        }],
    });
    flush_log(services, grant, session_id, &shared).await;
}
