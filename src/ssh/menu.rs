//! The TUI over an SSH channel: first the TOTP enrolment when MFA is
//! required and the person has none, then the asset menu; a choice runs a
//! target session, after which the menu comes back.

use std::sync::Arc;

use bytes::Bytes;
use russh::server::{Handle, Msg};
use russh::{ChannelMsg, ChannelReadHalf, ChannelWriteHalf};

use super::desk;
use super::target::{self, Choice, Pty, Run};
use super::{Conn, Shared};
use crate::auth::totp;
use crate::model::Role;
use crate::store;
use crate::tui::desk::{Op, Tab};
use crate::tui::{
    self, ColorMode, Desk, DeskOutcome, Enrol, EnrolOutcome, InputParser, Key, Menu, MenuOutcome,
    Screen, Theme,
};

/// What the person's terminal did while a screen was up.
enum Event {
    Keys(Vec<Key>),
    Resize(u32, u32),
    /// A second passed (only when asked for: the desk's clock and live list).
    Tick,
    Gone,
    Shutdown,
    /// The person's access ended (disabled, removed, expired, demoted).
    Withdrawn(String),
}

/// How often the staff desk redraws its clock and live list.
const TICK: std::time::Duration = std::time::Duration::from_secs(1);

/// Reads the next input, resolving a lone Esc after a short silence.
async fn next_event(
    shared: &Shared,
    read: &mut ChannelReadHalf,
    input: &mut InputParser,
    esc_pending: &mut bool,
) -> Event {
    next_event_or_tick(shared, read, input, esc_pending, None, None).await
}

async fn next_event_or_tick(
    shared: &Shared,
    read: &mut ChannelReadHalf,
    input: &mut InputParser,
    esc_pending: &mut bool,
    tick: Option<tokio::time::Instant>,
    mut presence: Option<&mut crate::live::Presence>,
) -> Event {
    loop {
        let withdrawn = async {
            match presence.as_deref_mut() {
                Some(p) => p.withdrawn().await,
                None => std::future::pending().await,
            }
        };
        let tick_timer = async {
            match tick {
                Some(at) => tokio::time::sleep_until(at).await,
                None => std::future::pending::<()>().await,
            }
        };
        let timer = async {
            if *esc_pending {
                tokio::time::sleep(tui::ESC_TIMEOUT).await
            } else {
                std::future::pending::<()>().await
            }
        };
        tokio::select! {
            msg = read.wait() => match msg {
                Some(ChannelMsg::Data { data }) => {
                    *esc_pending = data.last() == Some(&0x1b);
                    let keys = input.feed(&data);
                    // Answers to the graphics queries are an event too.
                    if !keys.is_empty() || input.has_replies() {
                        return Event::Keys(keys);
                    }
                }
                Some(ChannelMsg::WindowChange { col_width, row_height, .. }) => {
                    let (cols, rows) = crate::relay::terminal_size(col_width, row_height);
                    return Event::Resize(cols, rows);
                }
                Some(ChannelMsg::Eof | ChannelMsg::Close) | None => return Event::Gone,
                Some(_) => {}
            },
            () = timer => {
                *esc_pending = false;
                let keys = input.flush();
                if !keys.is_empty() {
                    return Event::Keys(keys);
                }
            }
            () = tick_timer => return Event::Tick,
            () = shared.shutdown.cancelled() => return Event::Shutdown,
            reason = withdrawn => return Event::Withdrawn(reason),
        }
    }
}

async fn send(write: &ChannelWriteHalf<Msg>, bytes: Vec<u8>) -> bool {
    bytes.is_empty() || write.data_bytes(Bytes::from(bytes)).await.is_ok()
}

/// Runs the menu until the person quits or goes; returns the exit status.
#[allow(clippy::too_many_arguments)]
pub async fn run(
    shared: &Arc<Shared>,
    conn: &Conn,
    pty: Option<&Pty>,
    no_color: bool,
    read: &mut ChannelReadHalf,
    write: &ChannelWriteHalf<Msg>,
    handle: &Handle,
    id: russh::ChannelId,
) -> u32 {
    let Some(pty) = pty else {
        return 1;
    };
    let pty = pty.clone();
    let theme: Theme = shared.theme.for_session(no_color, &pty.term);
    let mode = ColorMode::detect(&pty.term, no_color);
    let mut screen = Screen::new(pty.cols as u16, pty.rows as u16, mode);
    let mut input = InputParser::new();
    let mut esc = false;
    if !send(write, screen.enter()).await {
        return 0;
    }

    if conn.must_enrol
        && !enrol(
            shared,
            conn,
            &theme,
            &mut screen,
            &mut input,
            &mut esc,
            read,
            write,
        )
        .await
    {
        let _ = send(write, screen.leave()).await;
        return 1;
    }

    let desk = open_desk(shared, conn).await;
    let mut front = Front {
        shared,
        conn,
        read,
        write,
        handle,
        id,
        pty,
        mode,
        theme,
        screen,
        input,
        esc,
        caller: desk::caller(conn),
        desk,
        graphics: None,
    };
    front.desk_loop().await
}

/// The menu (and, for staff, the desk around it) as the person opens it.
async fn open_desk(shared: &Shared, conn: &Conn) -> Desk {
    let now = shared.services.clock.now();
    let assets = shared.policy().visible_assets(&conn.identity, now);
    let mut menu =
        Menu::new(assets, &conn.identity).with_recent(recent(shared, &conn.identity.name).await);
    if let Some(text) = login_notice(shared, &conn.identity.name).await {
        menu = menu.with_notice(tui::Severity::Info, text);
    }
    Desk::new(menu, &conn.identity.name, conn.identity.role, now)
        .with_time_zone(shared.services.config.auth.time_zone.clone())
}

/// The person's channel while the desk is up, and the desk.
struct Front<'a> {
    shared: &'a Arc<Shared>,
    conn: &'a Conn,
    read: &'a mut ChannelReadHalf,
    write: &'a ChannelWriteHalf<Msg>,
    handle: &'a Handle,
    id: russh::ChannelId,
    pty: Pty,
    mode: ColorMode,
    theme: Theme,
    screen: Screen,
    input: InputParser,
    esc: bool,
    caller: crate::ops::Caller,
    desk: Desk,
    /// What the terminal draws pictures with, once asked (`ssh::graphics`).
    graphics: Option<tui::graphics::Detection>,
}

/// Where the desk loop goes after an outcome.
enum Next {
    /// On with the next key typed.
    Key,
    /// Draw the desk again; keys typed while another screen had the channel
    /// are dropped.
    Redraw,
    /// The channel is done, with this exit status.
    Exit(u32),
}

impl Front<'_> {
    /// Draws the desk and handles what the person does until they quit or
    /// go; returns the exit status.
    async fn desk_loop(&mut self) -> u32 {
        let staff = self.conn.identity.role != Role::User;
        let mut presence = self.shared.attend(self.conn);
        let mut next_tick = tokio::time::Instant::now();
        loop {
            if staff && tokio::time::Instant::now() >= next_tick {
                next_tick = tokio::time::Instant::now() + TICK;
                self.tick().await;
            }
            let frame = self.screen.draw(|f| self.desk.render(f, &self.theme));
            if !send(self.write, frame).await {
                return 0;
            }
            let tick = staff.then_some(next_tick);
            let event = next_event_or_tick(
                self.shared,
                self.read,
                &mut self.input,
                &mut self.esc,
                tick,
                Some(&mut presence),
            )
            .await;
            let keys = match event {
                Event::Keys(keys) => keys,
                Event::Tick => continue,
                Event::Resize(cols, rows) => {
                    self.pty.cols = cols;
                    self.pty.rows = rows;
                    self.screen.resize(cols as u16, rows as u16);
                    continue;
                }
                Event::Gone => return 0,
                Event::Withdrawn(reason) => {
                    let _ = send(self.write, self.screen.leave()).await;
                    let line = format!("{}\r\n", super::standing::ended_line(&reason));
                    let _ = self.write.data_bytes(Bytes::from(line)).await;
                    return super::admin::ENDED;
                }
                Event::Shutdown => {
                    let _ = send(self.write, self.screen.leave()).await;
                    let _ = self
                        .write
                        .data_bytes(Bytes::from_static(
                            b"rampart: the bastion is shutting down\r\n",
                        ))
                        .await;
                    return 0;
                }
            };
            for key in keys {
                let Some(outcome) = self.desk.handle(key) else {
                    continue;
                };
                match self.outcome(outcome).await {
                    Next::Key => {}
                    Next::Redraw => break,
                    Next::Exit(status) => return status,
                }
            }
        }
    }

    /// Once a second, for staff: the clock, the approvals waiting (admins)
    /// and the live list when it shows.
    async fn tick(&mut self) {
        set_clock(self.shared, &mut self.desk);
        if self.conn.identity.role == Role::Admin {
            self.desk.set_approvals(self.shared.live.approvals());
        }
        if self.desk.showing() == Some(Tab::Live) {
            load(self.shared, &self.caller, &mut self.desk, Tab::Live).await;
        }
    }

    async fn outcome(&mut self, outcome: DeskOutcome) -> Next {
        let (shared, caller) = (self.shared, &self.caller);
        match outcome {
            DeskOutcome::Quit => {
                let _ = send(self.write, self.screen.leave()).await;
                Next::Exit(0)
            }
            DeskOutcome::Fetch(tab) => {
                load(shared, caller, &mut self.desk, tab).await;
                Next::Key
            }
            DeskOutcome::LoadNames => {
                match desk::names(shared, caller).await {
                    Ok(names) => self.desk.set_names(names),
                    Err(e) => self.desk.set_notice(tui::Severity::Danger, e),
                }
                Next::Key
            }
            DeskOutcome::LoadUser(name) => {
                match desk::user(shared, caller, &name).await {
                    Ok((view, names)) => self.desk.set_user(view, names),
                    Err(e) => self.desk.set_notice(tui::Severity::Danger, e),
                }
                Next::Key
            }
            DeskOutcome::Op(op) => self.op(op).await,
            DeskOutcome::Monitor { session } => self.watch(&session, false).await,
            DeskOutcome::Join { session } => self.watch(&session, true).await,
            DeskOutcome::Replay { session, at } => self.replay(&session, at).await,
            DeskOutcome::Link { session } => self.recording_link(&session).await,
            DeskOutcome::Connect {
                asset,
                account,
                protocol,
            } => self.connect(asset, account, protocol).await,
        }
    }

    /// Runs a change the desk asked for, and reloads the tab it shows.
    async fn op(&mut self, op: Op) -> Next {
        // What the desk says while a change runs ("testing web1...": a
        // connection test takes seconds) is shown before it starts.
        let frame = self.screen.draw(|f| self.desk.render(f, &self.theme));
        if !send(self.write, frame).await {
            return Next::Exit(0);
        }
        let done = desk::run_op(self.shared, &self.caller, op).await;
        self.desk.op_done(done);
        if let Some(tab) = self.desk.showing() {
            load(self.shared, &self.caller, &mut self.desk, tab).await;
        }
        Next::Key
    }

    /// Monitors (or joins) a live session until the person goes back.
    async fn watch(&mut self, session: &str, join: bool) -> Next {
        let watched = desk::watch(
            self.shared,
            self.conn,
            session,
            join,
            &mut self.screen,
            &self.theme,
            self.read,
            self.write,
            &mut self.graphics,
        )
        .await;
        if !send(self.write, self.screen.end_pictures()).await {
            return Next::Exit(0);
        }
        match watched {
            Ok(desk::Watched::Back) => {}
            Ok(desk::Watched::Gone) => return Next::Exit(0),
            Err(e) => self.desk.set_notice(tui::Severity::Danger, e),
        }
        Next::Redraw
    }

    /// Plays a recording until the person closes it.
    async fn replay(&mut self, session: &str, at: Option<jiff::Timestamp>) -> Next {
        if let Some((title, lines)) = desk::request_list(self.shared, &self.caller, session).await {
            self.desk.show_text(title, lines);
            return Next::Redraw;
        }
        match desk::open_replay(self.shared, &self.caller, session, at).await {
            Ok(mut replay) => {
                if replay.player().is_desktop() {
                    replay.set_graphics(
                        super::graphics::ensure(
                            &mut self.graphics,
                            self.read,
                            self.write,
                            &mut self.input,
                            &mut self.screen,
                        )
                        .await,
                    );
                }
                let open = replay_loop(
                    self.shared,
                    &mut self.graphics,
                    &mut replay,
                    &self.theme,
                    &mut self.screen,
                    &mut self.input,
                    &mut self.esc,
                    self.read,
                    self.write,
                )
                .await;
                if !open || !send(self.write, self.screen.end_pictures()).await {
                    return Next::Exit(0);
                }
            }
            Err(e) => self.desk.set_notice(tui::Severity::Danger, e),
        }
        Next::Redraw
    }

    /// A recording's one-time link, printed on the plain terminal (so it
    /// copies whole) until a key; then the desk again.
    async fn recording_link(&mut self, session: &str) -> Next {
        let text = match desk::recording_link(self.shared, &self.caller, session).await {
            Ok(text) => text,
            Err(e) => {
                self.desk.set_notice(tui::Severity::Danger, e);
                return Next::Redraw;
            }
        };
        let _ = send(self.write, self.screen.leave()).await;
        let mut person = target::PersonChannel {
            read: &mut *self.read,
            write: self.write,
            handle: self.handle,
            id: self.id,
            pty: Some(&self.pty),
            env: &[],
            end: None,
        };
        let say = target::Say {
            write: self.write,
            pty: true,
        };
        let ended = super::desktop::show_ticket(&mut person, say, text).await;
        if !self.back(ended.into_menu()).await {
            return Next::Exit(0);
        }
        Next::Redraw
    }

    /// Back from the plain terminal (`open`: the person's channel is, and
    /// their terminal's size if it changed): a fresh screen of that size;
    /// false when the channel closed.
    async fn back(&mut self, (open, size): (bool, Option<(u32, u32)>)) -> bool {
        if !open {
            return false;
        }
        if let Some((cols, rows)) = size {
            self.pty.cols = cols;
            self.pty.rows = rows;
        }
        self.screen = Screen::new(self.pty.cols as u16, self.pty.rows as u16, self.mode);
        send(self.write, self.screen.enter()).await
    }

    /// Runs a target session on the channel; the menu comes back after it,
    /// with the assets the policy allows now.
    async fn connect(&mut self, asset: String, account: tui::Chosen, protocol: String) -> Next {
        let _ = send(self.write, self.screen.leave()).await;
        let (username, password) = match account {
            tui::Chosen::Stored(name) => (name, None),
            tui::Chosen::Input { username, password } => (username, Some(password)),
        };
        let choice = Choice {
            asset: asset.clone(),
            account: Some(username),
            input_password: password,
            protocol: Some(protocol.clone()),
        };
        // The menu comes back afterwards: nothing that ends the person's
        // channel is forwarded (`end: None`).
        let mut person = target::PersonChannel {
            read: &mut *self.read,
            write: self.write,
            handle: self.handle,
            id: self.id,
            pty: Some(&self.pty),
            env: &[],
            end: None,
        };
        let ended =
            super::database::run_session(self.shared, self.conn, choice, Run::Shell, &mut person)
                .await;
        // Back to the menu: a fresh screen, the current policy.
        if !self.back(ended.into_menu()).await {
            return Next::Exit(0);
        }
        let now = self.shared.services.clock.now();
        let menu = self.desk.menu_mut();
        menu.set_assets(
            self.shared
                .policy()
                .visible_assets(&self.conn.identity, now),
        );
        let notice = if protocol == "rdp" {
            format!("RDP to {asset}: the ticket was shown")
        } else if crate::ops::WEB_PROTOCOLS.contains(&protocol.as_str()) {
            format!("{asset}: the one-time link was shown")
        } else if tui::menu::of_desktop_tool(&protocol).is_some() {
            format!("{asset} for a desktop tool: the one-time password was shown")
        } else {
            format!("session on {asset} ended")
        };
        menu.set_notice(Some((tui::Severity::Info, notice)));
        Next::Redraw
    }
}

/// Plays a recording until the person closes it; false when their
/// connection went.
#[allow(clippy::too_many_arguments)]
async fn replay_loop(
    shared: &Shared,
    graphics: &mut Option<tui::graphics::Detection>,
    replay: &mut tui::Replay,
    theme: &Theme,
    screen: &mut Screen,
    input: &mut InputParser,
    esc: &mut bool,
    read: &mut ChannelReadHalf,
    write: &ChannelWriteHalf<Msg>,
) -> bool {
    let mut dirty = true;
    loop {
        if dirty {
            let shown = &*replay;
            let frame = screen.draw_picture(
                |f| shown.render(f, theme),
                || shown.picture(),
                std::time::Instant::now(),
            );
            if !send(write, frame).await {
                return false;
            }
        }
        // A picture held back by the pace wants a draw of its own.
        let due = screen.picture_due(std::time::Instant::now());
        let tick = [replay.next_tick(), due]
            .into_iter()
            .flatten()
            .min()
            .map(|d| tokio::time::Instant::now() + d);
        dirty = match next_event_or_tick(shared, read, input, esc, tick, None).await {
            Event::Keys(keys) => {
                if replay.player().is_desktop()
                    && let Some(g) = super::graphics::late(graphics, input, screen)
                {
                    replay.set_graphics(g);
                }
                for key in keys {
                    if replay.handle(key).is_some() {
                        return true;
                    }
                }
                true
            }
            Event::Tick => {
                let now = std::time::Instant::now();
                replay.tick(now) || screen.picture_due(now).is_some()
            }
            Event::Resize(cols, rows) => {
                screen.resize(cols as u16, rows as u16);
                true
            }
            Event::Gone | Event::Shutdown | Event::Withdrawn(_) => return false,
        };
    }
}

/// The desk's clock: minutes in the configured time zone.
fn set_clock(shared: &Shared, desk: &mut Desk) {
    let now = shared.services.clock.now();
    let tz = &shared.services.config.auth.time_zone;
    let text = now.to_zoned(tz.clone()).strftime("%H:%M %Z").to_string();
    desk.set_clock(now, text);
}

/// Loads a tab's rows into the desk, or says why not.
async fn load(shared: &Shared, caller: &crate::ops::Caller, desk: &mut Desk, tab: Tab) {
    let reach = desk.reach_query().cloned();
    let seen = desk.seen_query().map(str::to_string);
    let history = desk.history().clone();
    match desk::fetch(
        shared,
        caller,
        tab,
        reach.as_ref(),
        seen.as_deref(),
        &history,
    )
    .await
    {
        Ok(data) => desk.set_data(data),
        Err(e) => desk.set_notice(tui::Severity::Danger, e),
    }
}

/// The account chooser for one asset (a direct jump that did not name an
/// account, where several, or a typed-in one, are possible). `None` when
/// the person quits, or may not use the asset (they were told).
pub async fn choose(
    shared: &Arc<Shared>,
    conn: &Conn,
    asset: &str,
    pty: &Pty,
    no_color: bool,
    read: &mut ChannelReadHalf,
    write: &ChannelWriteHalf<Msg>,
) -> Option<Choice> {
    let now = shared.services.clock.now();
    let Some(visible) = shared.policy().visible_asset(&conn.identity, asset, now) else {
        let line = format!("{}\r\n", target::no_access(asset));
        let _ = write.extended_data_bytes(1, Bytes::from(line)).await;
        return None;
    };
    let theme: Theme = shared.theme.for_session(no_color, &pty.term);
    let mut screen = Screen::new(
        pty.cols as u16,
        pty.rows as u16,
        ColorMode::detect(&pty.term, no_color),
    );
    let mut input = InputParser::new();
    let mut esc = false;
    let mut menu = Menu::new(vec![visible], &conn.identity);
    // Enter on the only asset opens its account chooser right away.
    let mut outcome = menu.handle(Key::Enter);
    if !send(write, screen.enter()).await {
        return None;
    }
    loop {
        match outcome.take() {
            Some(MenuOutcome::Quit) => {
                let _ = send(write, screen.leave()).await;
                return None;
            }
            Some(MenuOutcome::Connect {
                asset,
                account,
                protocol,
            }) => {
                let _ = send(write, screen.leave()).await;
                let (username, password) = match account {
                    tui::Chosen::Stored(name) => (name, None),
                    tui::Chosen::Input { username, password } => (username, Some(password)),
                };
                return Some(Choice {
                    asset,
                    account: Some(username),
                    input_password: password,
                    protocol: Some(protocol),
                });
            }
            None => {}
        }
        let frame = screen.draw(|f| menu.render(f, &theme));
        if !send(write, frame).await {
            return None;
        }
        match next_event(shared, read, &mut input, &mut esc).await {
            Event::Keys(keys) => {
                for key in keys {
                    outcome = menu.handle(key);
                    if outcome.is_some() {
                        break;
                    }
                }
            }
            Event::Resize(cols, rows) => screen.resize(cols as u16, rows as u16),
            Event::Tick => {}
            Event::Gone | Event::Shutdown | Event::Withdrawn(_) => return None,
        }
    }
}

/// The enrolment screen: a QR code and the secret; succeeds when the person
/// types a valid code from it.
#[allow(clippy::too_many_arguments)]
async fn enrol(
    shared: &Shared,
    conn: &Conn,
    theme: &Theme,
    screen: &mut Screen,
    input: &mut InputParser,
    esc: &mut bool,
    read: &mut ChannelReadHalf,
    write: &ChannelWriteHalf<Msg>,
) -> bool {
    let seed = totp::new_secret();
    let Ok(url) = totp::otpauth_url(&seed, &conn.identity.name, totp::ISSUER) else {
        return false;
    };
    let mut view = Enrol::new(&url, seed.clone());
    loop {
        let frame = screen.draw(|f| view.render(f, theme));
        if !send(write, frame).await {
            return false;
        }
        let keys = match next_event(shared, read, input, esc).await {
            Event::Keys(keys) => keys,
            Event::Resize(cols, rows) => {
                screen.resize(cols as u16, rows as u16);
                continue;
            }
            Event::Tick => continue,
            Event::Gone | Event::Shutdown | Event::Withdrawn(_) => return false,
        };
        for key in keys {
            match view.handle(key) {
                None => {}
                Some(EnrolOutcome::Cancel) => return false,
                Some(EnrolOutcome::Code(code)) => {
                    match shared
                        .authenticator
                        .enrol_totp(&conn.identity, &seed, &code, conn.peer.ip())
                        .await
                    {
                        Ok(()) => return true,
                        Err(_) => view.set_error("that code does not match: check the time on your phone and try the next one"),
                    }
                }
            }
        }
    }
}

/// The last successful login before this one and the failures since.
async fn login_notice(shared: &Shared, user: &str) -> Option<String> {
    let notice = shared.authenticator.notice(user).await.ok()?;
    let mut text = match notice.last_login {
        Some((at, from)) => format!(
            "last login {} from {from}",
            at.strftime("%Y-%m-%d %H:%M UTC")
        ),
        None => "first login".to_string(),
    };
    if notice.failures_since > 0 {
        text.push_str(&format!(
            "; {} failed attempt(s) since",
            notice.failures_since
        ));
    }
    Some(text)
}

/// Assets the person used recently, most recent first.
async fn recent(shared: &Shared, user: &str) -> Vec<String> {
    match shared.services.store.conn().await {
        Ok(mut conn) => store::sessions::recent_assets(&mut conn, user, 10)
            .await
            .unwrap_or_default(),
        Err(_) => Vec::new(),
    }
}
