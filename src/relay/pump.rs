//! The byte pump of a relayed SSH session: target to person, person to
//! target (through the Enter [`Gate`]), the live entry's orders (kill,
//! joined input, notices, snapshots), the idle timeout and the session's
//! watch (revocation, shutdown), polled together until one ends it.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use russh::server::Msg as ServerMsg;
use russh::{ChannelMsg, ChannelReadHalf, ChannelWriteHalf};
use tokio::sync::mpsc;

use super::gate::{Decision, Gate, Line, Refused, Step};
use super::join::joined;
use super::log::{Shared, flush_log, lock, log_late, log_refused};
use super::{
    ClientEnd, EndReason, Hooks, Outcome, RED, RESET, StreamTap, TargetEnd, TargetEvents, YELLOW,
    claimed_size, review, terminal_size,
};
use crate::live::{self, Publisher};
use crate::policy::{FilterVerdict, Grant, Snapshot};
use crate::record::{CommandTracker, Input, RecorderHandle};
use crate::services::Services;
use crate::session;

/// How long an Enter typed before its echo is held for the echo to show
/// the line on screen.
const ECHO_WAIT: Duration = Duration::from_millis(300);
/// When the typed line is unknown, a line that stayed the same this long is
/// taken as fully echoed.
const ECHO_STEADY: Duration = Duration::from_millis(40);
/// How often a control task blocked on a busy input loop looks for a kill.
const KILL_CHECK: Duration = Duration::from_millis(100);

/// How the target said its program ended, held until its output is over.
enum Exit {
    Status(u32),
    Signal {
        signal_name: russh::Sig,
        core_dumped: bool,
        error_message: String,
        lang_tag: String,
    },
}

/// What the directions share; each runs as a method on it.
struct Pump<'a, T> {
    shared: Mutex<Shared>,
    publish: Publisher,
    client: &'a ChannelWriteHalf<ServerMsg>,
    client_handle: &'a russh::server::Handle,
    client_id: russh::ChannelId,
    target: &'a T,
    services: &'a Services,
    policy: &'a (dyn Fn() -> Arc<Snapshot> + Sync),
    grant: &'a Grant,
    rows: &'a session::Rows,
    recorder: &'a RecorderHandle,
    recording_optional: bool,
    tap: Option<&'a dyn StreamTap>,
    record_stdout: bool,
    terminal: bool,
    end: Option<&'a ClientEnd>,
    arrival: Option<&'a crate::live::arrivals::Arrival>,
    approval_timeout: Duration,
}

/// Pumps until one side closes, the session is killed, idles out, its
/// permission ends, or the bastion shuts down.
pub async fn pump<T: TargetEnd>(
    client_read: &mut ChannelReadHalf,
    client_write: &ChannelWriteHalf<ServerMsg>,
    client_handle: &russh::server::Handle,
    client_id: russh::ChannelId,
    target_read: &mut impl TargetEvents,
    target_write: &T,
    mut hooks: Hooks<'_>,
) -> Outcome {
    let pump = Pump {
        shared: Mutex::new(Shared::new(hooks.tracker.take())),
        publish: hooks.live.publisher(),
        client: client_write,
        client_handle,
        client_id,
        target: target_write,
        services: hooks.services,
        policy: hooks.policy,
        grant: hooks.grant,
        rows: hooks.rows,
        recorder: hooks.recorder,
        recording_optional: hooks.recording_optional,
        tap: hooks.tap,
        record_stdout: hooks.record_stdout,
        terminal: hooks.terminal,
        end: hooks.end,
        arrival: hooks.arrival,
        approval_timeout: hooks.services.config.auth.approval_timeout,
    };
    let check = |line: &str| pump.check(line);
    let guarded = || (pump.policy)().grant_is_guarded(pump.grant);
    let gate = Gate {
        check: &check,
        guarded: &guarded,
    };
    // What a joined admin types comes the same way as the person's keys,
    // so it is filtered and logged like them.
    let (joined_tx, joined_rx) = mpsc::channel::<Bytes>(live::INPUT_QUEUE);
    let actions = hooks.actions;
    let allowed = |now| {
        let snapshot = (pump.policy)();
        actions
            .iter()
            .all(|action| snapshot.recheck(pump.grant, *action, now).is_some())
    };

    let stop = tokio::select! {
        r = pump.target_to_person(target_read) => Err(r),
        r = pump.person_to_target(client_read, joined_rx, &gate) => Err(r),
        () = pump.idle(hooks.idle_timeout) => Err(EndReason::IdleTimeout),
        stop = session::revoked(pump.services, hooks.shutdown, allowed) => Ok(stop),
        stop = pump.control(hooks.live, joined_tx) => Ok(stop),
    };
    let (reason, last_words) = match stop {
        Err(EndReason::IdleTimeout) => (
            EndReason::IdleTimeout,
            Some("session closed after the idle timeout".to_string()),
        ),
        Err(reason) => (reason, None),
        Ok(stop) => {
            let reason = match &stop {
                session::Stop::Killed { reason, .. } => EndReason::Killed(reason.clone()),
                session::Stop::Revoked => EndReason::GrantEnded,
                session::Stop::Shutdown => EndReason::Shutdown,
            };
            (reason, Some(stop.notice()))
        }
    };
    if let Some(text) = last_words {
        let _ = pump
            .notify(format!("\r\n{RED}rampart: {text}{RESET}\r\n"))
            .await;
    }
    pump.finish(reason).await
}

impl<T: TargetEnd> Pump<'_, T> {
    fn check(&self, line: &str) -> FilterVerdict {
        (self.policy)().check_grant_command(self.grant, line)
    }

    /// Target -> person.
    ///
    /// The target's exit status (or signal) is held until its EOF or
    /// close: sshd sends it as soon as the program exits, and goes on
    /// relaying what is still written to the output (the rest of a
    /// terminal's buffer, a background job's lines). Passed on at once, a
    /// session the bastion ended in that gap (killed, recording failed)
    /// would have told the person's client the command's own status over
    /// output cut short; held, the client gets [`super::EXIT_BASTION`].
    async fn target_to_person(&self, target_read: &mut impl TargetEvents) -> EndReason {
        let mut target_eof = false;
        let mut exit: Option<Exit> = None;
        // What came behind output that was joined (see `joined`).
        let mut held: Option<Option<ChannelMsg>> = None;
        loop {
            let next = match held.take() {
                Some(next) => next,
                None => target_read.next().await,
            };
            let Some(msg) = next else {
                self.pass_exit(exit.take(), false).await;
                return EndReason::TargetClosed;
            };
            match msg {
                ChannelMsg::Data { data } => {
                    let (data, behind) = joined(data, target_read);
                    held = behind;
                    if let Err(end) = self.output(data).await {
                        return end;
                    }
                }
                ChannelMsg::ExtendedData { data, ext } => {
                    lock(&self.shared).bytes_out += data.len() as u64;
                    self.publish.add_out(data.len() as u64);
                    self.publish.publish(data.clone());
                    if let Err(e) = self.recorder.output(data.clone()).await
                        && !self.recording_optional
                    {
                        return EndReason::RecordingFailed(e.to_string());
                    }
                    if self.client.extended_data_bytes(ext, data).await.is_err() {
                        return EndReason::ClientClosed;
                    }
                }
                ChannelMsg::ExitStatus { exit_status } => {
                    lock(&self.shared).exit_status = Some(exit_status);
                    exit = Some(Exit::Status(exit_status));
                    if target_eof {
                        self.pass_exit(exit.take(), true).await;
                    }
                }
                ChannelMsg::ExitSignal {
                    signal_name,
                    core_dumped,
                    error_message,
                    lang_tag,
                } => {
                    exit = Some(Exit::Signal {
                        signal_name,
                        core_dumped,
                        error_message,
                        lang_tag,
                    });
                    if target_eof {
                        self.pass_exit(exit.take(), true).await;
                    }
                }
                ChannelMsg::Eof => {
                    // Passed on after the exit status, not before: OpenSSH
                    // closes a channel once both sides sent EOF, and russh
                    // answers that close at once, so an exit status the
                    // target sends after its EOF (sshd does) would never
                    // reach the person (ControlMaster then exits 255).
                    target_eof = true;
                    if exit.is_some() {
                        self.pass_exit(exit.take(), true).await;
                    }
                }
                ChannelMsg::Close => {
                    self.pass_exit(exit.take(), false).await;
                    return EndReason::TargetClosed;
                }
                // Requests a target sends towards the person are not passed
                // on; ChannelMsg is non-exhaustive: unknown kinds are not
                // passed on either.
                _ => {}
            }
        }
    }

    /// The target's held exit status or signal to the person (when their
    /// channel ends with the session), then its EOF if it sent one.
    async fn pass_exit(&self, exit: Option<Exit>, eof: bool) {
        let Some(end) = self.end else {
            return;
        };
        match exit {
            Some(Exit::Status(status)) => end.exit_status(self.client, status).await,
            Some(Exit::Signal {
                signal_name,
                core_dumped,
                error_message,
                lang_tag,
            }) => {
                end.exit_signal(
                    self.client_handle,
                    self.client_id,
                    signal_name,
                    core_dumped,
                    error_message,
                    lang_tag,
                )
                .await
            }
            None => {}
        }
        if eof {
            end.eof(self.client).await;
        }
    }

    /// One chunk of the target's standard output: to the tracker and the
    /// monitors (under one lock, so a monitor's snapshot never shows a
    /// chunk twice or misses one), the command log, the recording, the
    /// person.
    async fn output(&self, data: Bytes) -> Result<(), EndReason> {
        let late = {
            let mut s = lock(&self.shared);
            s.bytes_out += data.len() as u64;
            s.last_activity = Instant::now();
            let late = match s.tracker.as_mut() {
                Some(t) => {
                    t.output(&data);
                    t.take_late()
                }
                None => Vec::new(),
            };
            self.publish.publish(data.clone());
            late
        };
        if !late.is_empty() {
            let commands: Vec<String> = late.iter().map(|l| l.command.clone()).collect();
            log_late(&self.shared, late, |c| self.check(c));
            self.flush_log().await;
            // Marked in the recording where the shell drew it.
            for command in &commands {
                let _ = self.recorder.command(command).await;
            }
        }
        self.publish.add_out(data.len() as u64);
        if let Some(tap) = self.tap {
            tap.target_sent(&data);
        }
        if self.record_stdout
            && let Err(e) = self.recorder.output(data.clone()).await
            && !self.recording_optional
        {
            return Err(EndReason::RecordingFailed(e.to_string()));
        }
        let len = data.len();
        if self.client.data_bytes(data).await.is_err() {
            return Err(EndReason::ClientClosed);
        }
        if let Some(arrival) = self.arrival {
            arrival.done();
        }
        self.services.arrivals.give_way(len).await;
        Ok(())
    }

    /// Person -> target, and what joined admins type.
    async fn person_to_target(
        &self,
        client_read: &mut ChannelReadHalf,
        mut joined: mpsc::Receiver<Bytes>,
        gate: &Gate<'_>,
    ) -> EndReason {
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
                    Some(data) = joined.recv() => ChannelMsg::Data { data },
                },
            };
            match msg {
                ChannelMsg::Data { data } => {
                    if let Err(end) = self.input(data, gate, client_read, &mut deferred).await {
                        return end;
                    }
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
                        let mut s = lock(&self.shared);
                        s.size = Some((col_width, row_height));
                        if let Some(t) = s.tracker.as_mut() {
                            t.resize(col_width as u16, row_height as u16);
                        }
                    }
                    self.publish.resize(col_width as u16, row_height as u16);
                    let _ = self
                        .recorder
                        .resize(col_width as u16, row_height as u16)
                        .await;
                    self.target
                        .resize(claimed.0, claimed.1, pix_width, pix_height)
                        .await;
                }
                ChannelMsg::Signal { signal } => {
                    self.target.signal(signal).await;
                }
                ChannelMsg::Eof => {
                    self.target.eof().await;
                }
                ChannelMsg::Close => return EndReason::ClientClosed,
                // Requests after the session started were refused by the
                // handler as they came (`ssh::request`): a second reply
                // would be taken as the answer to the client's next one.
                // ChannelMsg is non-exhaustive: unknown kinds are not passed
                // on.
                _ => {}
            }
        }
    }

    /// Keys from the person (or a joined admin): recorded, counted, split
    /// by the tracker at each Enter, and each piece through the gate.
    async fn input(
        &self,
        data: Bytes,
        gate: &Gate<'_>,
        client_read: &mut ChannelReadHalf,
        deferred: &mut VecDeque<ChannelMsg>,
    ) -> Result<(), EndReason> {
        // Keystrokes go into the cast only with `recording.input` (the
        // recorder drops them otherwise).
        if self.record_stdout {
            let _ = self.recorder.input(data.clone()).await;
        }
        if let Some(tap) = self.tap {
            tap.person_sent(&data);
        }
        self.publish.add_in(data.len() as u64);
        let pieces = {
            let mut s = lock(&self.shared);
            s.bytes_in += data.len() as u64;
            s.last_activity = Instant::now();
            match s.tracker.as_mut() {
                Some(t) => t.input(&data),
                None => vec![Input::Data(data.to_vec())],
            }
        };
        for piece in pieces {
            let mut step = gate.enter(piece);
            if let Step::AwaitEcho(unseen) = step {
                let seen = self.wait_for_echo(unseen.typed()).await;
                step = gate.echoed(unseen, seen);
            }
            match step {
                Step::Pass(raw) => self.to_target(raw).await?,
                Step::PassUnread(raw) => {
                    if let Some(t) = lock(&self.shared).tracker.as_mut() {
                        // Logged should the shell draw the typed keys later.
                        t.expect_echo(self.recorder.elapsed());
                    }
                    self.to_target(raw).await?;
                }
                Step::AwaitEcho(_) => unreachable!("the echo was awaited above"),
                Step::Refuse(refused) => self.refuse_enter(refused).await?,
                Step::HoldBack(held) => self.hold_back(held).await?,
                Step::Judge(line) => self.run_line(line, client_read, deferred).await?,
            }
        }
        self.flush_log().await;
        Ok(())
    }

    async fn to_target(&self, raw: Vec<u8>) -> Result<(), EndReason> {
        self.target
            .send(Bytes::from(raw))
            .await
            .map_err(|()| EndReason::TargetClosed)
    }

    /// A readable line: forwarded, refused, or held for an administrator,
    /// by its verdict; logged as started or refused, marked in the
    /// recording, the person told.
    async fn run_line(
        &self,
        mut line: Line,
        client_read: &mut ChannelReadHalf,
        deferred: &mut VecDeque<ChannelMsg>,
    ) -> Result<(), EndReason> {
        let offset = self.recorder.elapsed();
        let mut decision = line.decide();
        if let Decision::Review { rule } = &decision {
            let held = review::hold(
                &self.publish,
                &line.command,
                rule,
                self.approval_timeout,
                client_read,
                deferred,
                self.client,
                self.recorder,
                &self.shared,
            )
            .await;
            decision = line
                .reviewed(&held, self.approval_timeout)
                .ok_or(EndReason::ClientClosed)?;
        }
        let (forward, notice) = match decision {
            Decision::Forward { notice } => (true, notice),
            Decision::Refuse { notice } => (false, Some(notice)),
            Decision::Review { .. } => unreachable!("a review was decided above"),
        };
        {
            let mut s = lock(&self.shared);
            let verdict = (line.verdict.action, line.verdict.rule.clone());
            if forward {
                let done = s
                    .tracker
                    .as_mut()
                    .and_then(|t| t.started(line.command.clone(), offset));
                s.run_next(done, verdict);
            } else {
                log_refused(&mut s, line.command.clone(), offset, verdict.0, verdict.1);
            }
        }
        let _ = self.recorder.command(&line.command).await;
        if let Some(n) = notice
            && self.notify(n).await.is_err()
        {
            return Err(EndReason::ClientClosed);
        }
        if forward {
            self.to_target(line.raw).await
        } else {
            self.to_target(b"\x03".to_vec()).await
        }
    }

    /// Refuses an Enter: logged as refused, the person told, and a Ctrl-C
    /// to the target for the line left at its prompt.
    async fn refuse_enter(&self, refused: Refused) -> Result<(), EndReason> {
        log_refused(
            &mut lock(&self.shared),
            refused.logged,
            self.recorder.elapsed(),
            refused.action,
            refused.rule,
        );
        if self.notify(refused.text).await.is_err() {
            return Err(EndReason::ClientClosed);
        }
        self.to_target(b"\x03".to_vec()).await
    }

    /// Holds an Enter back: logged, the person told; the command before it
    /// still runs, and its output goes on being captured.
    async fn hold_back(&self, held: Refused) -> Result<(), EndReason> {
        {
            let mut s = lock(&self.shared);
            if let Some(t) = s.tracker.as_mut() {
                t.withheld();
            }
            s.pending_log.push(super::log::LoggedCommand {
                command: held.logged,
                output: String::new(),
                offset: self.recorder.elapsed(),
                action: held.action,
                rule: held.rule,
            });
        }
        self.notify(held.text)
            .await
            .map_err(|()| EndReason::ClientClosed)
    }

    /// Waits (up to [`ECHO_WAIT`]) for the target to echo the line of a
    /// held Enter, then takes it from the screen model: the typed line
    /// itself once the shell drew exactly those keys, or else a line that
    /// stopped changing. `None`: nothing was echoed (echo off) or the
    /// screen is not a prompt.
    async fn wait_for_echo(&self, typed: Option<&str>) -> Option<String> {
        let deadline = Instant::now() + ECHO_WAIT;
        let mut last: Option<String> = None;
        let mut steady_since = Instant::now();
        while Instant::now() < deadline {
            let line = lock(&self.shared)
                .tracker
                .as_mut()
                .and_then(|t| t.pending_line());
            if line.is_some() && line.as_deref() == typed {
                break;
            }
            if line != last {
                last = line;
                steady_since = Instant::now();
            } else if last.is_some() && steady_since.elapsed() >= ECHO_STEADY {
                // The screen shows a line other than the keys (or the keys
                // were not simple) and it stopped changing: the shell has
                // drawn it.
                break;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        lock(&self.shared)
            .tracker
            .as_mut()
            .and_then(|t| t.resolve_pending())
    }

    /// Resolves when the session has idled out.
    async fn idle(&self, limit: Option<Duration>) {
        let Some(limit) = limit else {
            return std::future::pending::<()>().await;
        };
        loop {
            let since = lock(&self.shared).last_activity.elapsed();
            if since >= limit {
                return;
            }
            tokio::time::sleep(limit - since).await;
        }
    }

    /// The live entry's orders; resolves with a kill.
    async fn control(
        &self,
        live: &mut live::LiveSession,
        joined: mpsc::Sender<Bytes>,
    ) -> session::Stop {
        loop {
            match live.control().await {
                Some(live::Control::Kill { reason, by }) => {
                    return session::Stop::Killed { reason, by };
                }
                Some(live::Control::Input(bytes)) => {
                    // The input loop may be busy (a command waiting for
                    // review, a target that stopped reading): wait for room,
                    // but never let a kill wait behind it.
                    loop {
                        match tokio::time::timeout(KILL_CHECK, joined.reserve()).await {
                            Ok(Ok(room)) => {
                                room.send(bytes);
                                break;
                            }
                            // The input loop is gone: the session is ending.
                            Ok(Err(_)) => break,
                            Err(_) => {
                                if let Some(order) = live.killed() {
                                    return session::Stop::Killed {
                                        reason: order.reason,
                                        by: order.by,
                                    };
                                }
                            }
                        }
                    }
                }
                Some(live::Control::Notice(text)) => {
                    let _ = self
                        .notify(format!("\r\n{YELLOW}rampart: {text}{RESET}\r\n"))
                        .await;
                }
                Some(live::Control::Snapshot(reply)) => {
                    let screen = lock(&self.shared)
                        .tracker
                        .as_mut()
                        .map(|t| t.screen_formatted())
                        .unwrap_or_default();
                    reply.send(screen);
                }
                None => std::future::pending::<()>().await,
            }
        }
    }

    /// Text from the bastion to the person (see [`super::notify`]).
    async fn notify(&self, text: String) -> Result<(), ()> {
        super::notify(
            self.client,
            self.recorder,
            &self.shared,
            self.terminal,
            text,
        )
        .await
    }

    async fn flush_log(&self) {
        flush_log(self.services, self.rows, &self.shared).await;
    }

    /// The last command's output window closes with the session.
    async fn finish(self, reason: EndReason) -> Outcome {
        {
            let late = lock(&self.shared)
                .tracker
                .as_mut()
                .map(CommandTracker::take_late)
                .unwrap_or_default();
            log_late(&self.shared, late, |c| self.check(c));
            let mut s = lock(&self.shared);
            if let Some(done) = s.tracker.as_mut().and_then(|t| t.finish()) {
                s.log_done(done);
            }
        }
        self.flush_log().await;
        let s = lock(&self.shared);
        Outcome {
            client_open: !matches!(reason, EndReason::ClientClosed),
            reason,
            exit_status: s.exit_status,
            bytes_in: s.bytes_in,
            bytes_out: s.bytes_out,
            size: s.size,
        }
    }
}
