//! The replay screen: an auditor watches a recorded session inside their
//! own SSH session, with play/pause, speed, seeking, a command list that
//! follows playback and jumps to a command, and idle compression.
//!
//! The state is a [`crate::record::Player`] plus what the person chose
//! (playing, speed, panes). The flow is Input → Action → state → render,
//! like the menu: [`Replay::handle`] maps a [`Key`] to a change of state,
//! [`Replay::tick`] advances playback by wall time, [`Replay::render`]
//! draws. Reading the file happens only inside `handle` and `tick`, in one
//! bounded [`Budget`] each (a few milliseconds), so a recording of any size
//! never blocks the session task; a seek far ahead shows its progress and
//! finishes over the next ticks. The caller owns the timer:
//! [`Replay::next_tick`] says how soon it wants the next tick.

mod view;

use std::cell::Cell;
use std::path::Path;
use std::time::{Duration, Instant};

use super::Severity;
use super::graphics::Graphics;
use super::input::Key;
use crate::record::{Budget, Player, PlayerOptions, RecordError, Timeline};

/// The speeds `+` and `-` step through.
pub const SPEEDS: [f64; 7] = [0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0];
/// Index of 1× in [`SPEEDS`].
const NORMAL_SPEED: usize = 2;
/// Left/Right.
const SHORT_SEEK: f64 = 5.0;
/// Up/Down, PgUp/PgDn.
const LONG_SEEK: f64 = 30.0;
/// How long one key or tick may spend reading the recording. The session
/// task is not blocked for longer than this.
const STEP_TIME: Duration = Duration::from_millis(12);
/// How often a playing replay wants to be ticked: 25 frames a second is
/// smooth for terminal output and cheap over SSH.
const FRAME: Duration = Duration::from_millis(40);
/// While the index scan is under way, and nothing plays or seeks.
const INDEX_FRAME: Duration = Duration::from_millis(20);
/// While a seek is under way, intermediate frames are worth drawing this
/// often (the ticks themselves come as fast as the caller can).
const SEEK_FRAME: Duration = Duration::from_millis(100);
/// Width from which the command pane is shown without asking.
const AUTO_PANE_WIDTH: u16 = 110;

/// What the replay asks the caller to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplayOutcome {
    /// `q`, Esc or Ctrl-C: back to where the replay was opened from.
    Close,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Focus {
    Terminal,
    Commands,
}

/// Scroll position and pane size, written by `render` (which takes
/// `&self`) and read by `handle` for paging.
#[derive(Debug, Clone, Copy, Default)]
struct ViewState {
    list_offset: usize,
    list_height: usize,
    commands_shown: bool,
}

/// The replay screen's state for one recording.
pub struct Replay {
    player: Player,
    playing: bool,
    speed: usize,
    /// When playback time was last advanced; `None` right after a start
    /// so the first tick does not count the time spent paused.
    last_tick: Option<Instant>,
    /// A jump the playhead is still working toward.
    seeking: bool,
    /// When a frame of the current seek's progress was last asked for.
    seek_drawn: Option<Instant>,
    /// The person's choice for the command pane; `None`: shown when wide.
    commands: Option<bool>,
    focus: Focus,
    /// The selected command while the pane has the keyboard.
    selected: usize,
    help: bool,
    /// The recorded terminal over the whole screen, without panes.
    zoom: bool,
    /// Feedback on the last key, cleared by the next one.
    message: Option<(Severity, String)>,
    view: Cell<ViewState>,
    /// How a desktop's picture is drawn (see [`Replay::picture`]).
    graphics: Graphics,
    /// Where the last render left room for the picture as an image.
    picture_room: Cell<Option<ratatui::layout::Rect>>,
}

impl std::fmt::Debug for Replay {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Replay")
            .field("player", &self.player)
            .field("playing", &self.playing)
            .field("speed", &self.speed())
            .finish_non_exhaustive()
    }
}

impl Replay {
    /// Opens a recording and starts playing it from the start. Only the
    /// header is read here.
    pub fn open(path: impl AsRef<Path>, options: PlayerOptions) -> Result<Replay, RecordError> {
        Ok(Replay::new(Player::open(path, options)?))
    }

    /// Opens a recording paused at `seconds` since the session start (as
    /// recorded: a command's time from the audit log), to look at that
    /// moment and press Space to go on.
    pub fn open_at(
        path: impl AsRef<Path>,
        options: PlayerOptions,
        seconds: f64,
    ) -> Result<Replay, RecordError> {
        Ok(Replay::open(path, options)?.at(seconds))
    }

    /// A replay of an opened player, playing.
    pub fn new(player: Player) -> Replay {
        Replay {
            player,
            playing: true,
            speed: NORMAL_SPEED,
            last_tick: None,
            seeking: false,
            seek_drawn: None,
            commands: None,
            focus: Focus::Terminal,
            selected: 0,
            help: false,
            zoom: false,
            message: None,
            view: Cell::new(ViewState::default()),
            graphics: Graphics::Blocks,
            picture_room: Cell::new(None),
        }
    }

    /// Paused at `seconds` since the start, as recorded.
    pub fn at(mut self, seconds: f64) -> Replay {
        self.playing = false;
        self.seek_recorded(seconds);
        self
    }

    /// Jumps to `seconds` since the start as recorded (a command's time
    /// from the audit log), playing or paused as before. Like a key, it
    /// does one bounded step of the work; ticks finish it.
    pub fn seek_recorded(&mut self, seconds: f64) {
        self.player.seek_recorded(seconds);
        self.seeking = true;
        self.last_tick = None;
        self.work();
    }

    /// Jumps to `seconds` on the timeline shown (compressed or not).
    pub fn seek(&mut self, seconds: f64) {
        self.jump(seconds);
        self.work();
    }

    /// Draws a desktop's picture as `graphics`: other than blocks, the
    /// render leaves its room blank and [`Replay::picture`] gives it.
    pub fn set_graphics(&mut self, graphics: Graphics) {
        self.graphics = graphics;
    }

    /// Where the last render left room for the picture, and the picture:
    /// for [`super::Screen::draw_picture`].
    pub fn picture(&self) -> Option<(ratatui::layout::Rect, crate::record::desktop::Frame<'_>)> {
        let room = self.picture_room.get()?;
        Some((room, self.player.picture()?))
    }

    pub fn player(&self) -> &Player {
        &self.player
    }

    pub fn is_playing(&self) -> bool {
        self.playing
    }

    pub fn speed(&self) -> f64 {
        SPEEDS.get(self.speed).copied().unwrap_or(1.0)
    }

    /// How soon the caller should call [`Replay::tick`]: at once while a
    /// seek is under way (each tick is bounded, the person is waiting for
    /// it), every frame while playing, soon while only the index is being
    /// built, never when paused with nothing to do (the next key will say).
    pub fn next_tick(&self) -> Option<Duration> {
        if self.seeking && !self.player.caught_up() {
            Some(Duration::ZERO)
        } else if self.playing {
            Some(FRAME)
        } else if self.busy() {
            Some(INDEX_FRAME)
        } else {
            None
        }
    }

    /// A seek or the index scan is under way.
    pub fn busy(&self) -> bool {
        self.player.error().is_none()
            && (!self.player.caught_up() || self.player.index_progress().is_some())
    }

    /// Advances playback to `now` and works on the file for one budget.
    /// Returns whether to draw: the screen changed, or, during a long seek,
    /// its progress is worth showing (at most every 100 ms).
    pub fn tick(&mut self, now: Instant) -> bool {
        let was_busy = self.busy();
        let was_seeking = self.seeking;
        if self.playing {
            // While the playhead lags (dense output at a high speed) the
            // clock waits for it, rather than skip what it did not show.
            if let Some(before) = self.last_tick
                && self.player.caught_up()
            {
                let elapsed = now.saturating_duration_since(before).as_secs_f64();
                if elapsed > 0.0 {
                    let to = self.player.position() + elapsed * self.speed();
                    match self.player.duration() {
                        Some(end) => self.player.seek(to.min(end)),
                        None => self.player.seek(to),
                    }
                }
            }
            self.last_tick = Some(now);
        }
        self.work();
        if was_seeking && self.seeking {
            let due = self
                .seek_drawn
                .is_none_or(|t| now.saturating_duration_since(t) >= SEEK_FRAME);
            if due {
                self.seek_drawn = Some(now);
            }
            return due;
        }
        self.seek_drawn = None;
        self.playing || was_busy
    }

    /// One bounded step of reading, and what follows from it.
    fn work(&mut self) {
        self.player.step(Budget::frame(STEP_TIME));
        if self.player.caught_up() {
            self.seeking = false;
        }
        if self.playing && self.player.at_end() {
            self.playing = false;
        }
        if let Some(e) = self.player.error() {
            self.playing = false;
            self.message = Some((Severity::Danger, format!("cannot read on: {e}")));
        }
    }

    /// Applies a key; `Some` when the caller should close the replay.
    pub fn handle(&mut self, key: Key) -> Option<ReplayOutcome> {
        self.message = None;
        if self.help {
            self.help = false;
            return None;
        }
        let outcome = self.apply(key);
        if outcome.is_none() {
            self.work();
        }
        outcome
    }

    fn apply(&mut self, key: Key) -> Option<ReplayOutcome> {
        let in_list = self.focus == Focus::Commands && self.view.get().commands_shown;
        match key {
            Key::Char('q') | Key::Ctrl('c' | 'd') => return Some(ReplayOutcome::Close),
            Key::Esc if in_list => self.focus = Focus::Terminal,
            Key::Esc => return Some(ReplayOutcome::Close),
            Key::Char('?') => self.help = true,
            Key::Char(' ') => self.toggle_play(),
            Key::Char('+' | '=' | '>') => self.set_speed(self.speed + 1),
            Key::Char('-' | '<') => self.set_speed(self.speed.saturating_sub(1)),
            Key::Char('i') => self.toggle_idle(),
            Key::Char('c') => {
                let shown = self.view.get().commands_shown;
                self.commands = Some(!shown);
                if shown {
                    self.focus = Focus::Terminal;
                }
            }
            Key::Char('z') => self.zoom = !self.zoom,
            Key::Tab | Key::BackTab => self.switch_focus(),
            Key::Char('n' | ']') => self.next_command(),
            Key::Char('p' | '[') => self.previous_command(),
            Key::Enter if in_list => self.jump_to_command(self.selected),
            Key::Up if in_list => self.select_by(-1),
            Key::Down if in_list => self.select_by(1),
            Key::PageUp if in_list => self.select_by(-self.page()),
            Key::PageDown if in_list => self.select_by(self.page()),
            Key::Home if in_list => self.selected = 0,
            Key::End if in_list => {
                self.selected = self.player.markers().len().saturating_sub(1);
            }
            Key::Left => self.jump_by(-SHORT_SEEK),
            Key::Right => self.jump_by(SHORT_SEEK),
            Key::Up | Key::PageUp => self.jump_by(-LONG_SEEK),
            Key::Down | Key::PageDown => self.jump_by(LONG_SEEK),
            Key::Home => self.jump(0.0),
            Key::End => {
                self.player.seek_end();
                self.seeking = true;
            }
            _ => {}
        }
        None
    }

    fn toggle_play(&mut self) {
        if self.playing {
            self.playing = false;
            return;
        }
        if self.player.at_end() {
            self.jump(0.0);
        }
        self.playing = true;
        self.last_tick = None;
    }

    fn set_speed(&mut self, index: usize) {
        self.speed = index.min(SPEEDS.len() - 1);
        // The time until the next tick counts at the new speed.
        self.last_tick = None;
    }

    fn toggle_idle(&mut self) {
        let next = match self.player.timeline() {
            Timeline::Compressed => Timeline::Recorded,
            Timeline::Recorded => Timeline::Compressed,
        };
        if !self.player.idle_cap().is_finite() {
            self.message = Some((
                Severity::Info,
                "idle compression is off for this replay".into(),
            ));
            return;
        }
        self.player.set_timeline(next);
    }

    fn switch_focus(&mut self) {
        self.focus = match self.focus {
            Focus::Commands => Focus::Terminal,
            Focus::Terminal => {
                if !self.view.get().commands_shown {
                    self.commands = Some(true);
                    let mut view = self.view.get();
                    view.commands_shown = true;
                    self.view.set(view);
                }
                self.selected = self.player.marker_at(self.player.position()).unwrap_or(0);
                Focus::Commands
            }
        };
    }

    fn page(&self) -> isize {
        isize::try_from(self.view.get().list_height.saturating_sub(1).max(1)).unwrap_or(1)
    }

    fn select_by(&mut self, delta: isize) {
        let len = self.player.markers().len();
        if len == 0 {
            return;
        }
        self.selected = self.selected.saturating_add_signed(delta).min(len - 1);
    }

    fn jump(&mut self, at: f64) {
        let at = match self.player.duration() {
            Some(end) => at.clamp(0.0, end),
            None => at.max(0.0),
        };
        self.player.seek(at);
        self.seeking = true;
        self.last_tick = None;
    }

    fn jump_by(&mut self, delta: f64) {
        self.jump(self.player.position() + delta);
    }

    fn jump_to_command(&mut self, index: usize) {
        let timeline = self.player.timeline();
        if let Some(marker) = self.player.markers().get(index) {
            let at = marker.at.on(timeline);
            self.selected = index;
            self.jump(at);
        }
    }

    fn next_command(&mut self) {
        match self.player.marker_after(self.player.position()) {
            Some(i) => self.jump_to_command(i),
            None => self.no_command("later"),
        }
    }

    fn previous_command(&mut self) {
        match self.player.marker_before(self.player.position()) {
            Some(i) => self.jump_to_command(i),
            None => self.no_command("earlier"),
        }
    }

    fn no_command(&mut self, which: &str) {
        let text = match self.player.index_progress() {
            Some(p) if which == "later" => {
                format!("no {which} command found yet (indexing… {}%)", percent(p))
            }
            _ => format!("no {which} command"),
        };
        self.message = Some((Severity::Info, text));
    }
}

/// 0..=1 as a whole percentage, never showing 100 before it is done.
fn percent(fraction: f64) -> u32 {
    // Truncation is the point: 99.9% is not done.
    ((fraction * 100.0) as u32).min(99)
}
