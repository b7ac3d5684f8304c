//! Watching a live session: a read-only mirror (monitor) or a shared
//! keyboard (join). The session's screen is kept in a vt100 model of its
//! own size, first from the relay's snapshot and then from the stream, and
//! drawn cell by cell inside a frame. A session larger than the watcher's
//! window is cropped around its cursor, with a note saying so.
//!
//! A desktop (RDP) session is mirrored as its picture: the relay's
//! snapshot is the target's Demand Active, the stream its updates, decoded
//! here (on the watcher's task, never the relay's) and drawn as half
//! blocks, or as an image where the terminal shows them (`tui::graphics`).
//!
//! Keys while joined are not parsed here: the caller passes the bytes to
//! the session as typed and only looks for [`LEAVE_BYTE`] (Ctrl-]).

use std::cell::Cell;
use std::num::NonZeroU16;

use ratatui::Frame;
use ratatui::layout::{Alignment, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Paragraph};

use super::centered;
use super::graphics::Graphics;
use super::input::Key;
use super::term::{copy_picture, copy_screen};
use super::theme::Theme;
use crate::live::LiveInfo;
use crate::record::desktop::Desktop;

/// Ctrl-]: leaves a joined session (the byte telnet made familiar).
pub const LEAVE_BYTE: u8 = 0x1d;

pub struct Watch {
    title: String,
    joined: bool,
    terminal: vt100::Parser,
    /// A desktop session's picture, decoded from its updates (the
    /// terminal stays unused).
    desktop: Option<Box<Desktop>>,
    ended: Option<String>,
    /// How the desktop's picture is drawn (see [`Watch::picture`]).
    graphics: Graphics,
    /// Where the last render left room for the picture as an image.
    picture_room: Cell<Option<Rect>>,
}

impl std::fmt::Debug for Watch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Watch")
            .field("title", &self.title)
            .field("joined", &self.joined)
            .finish_non_exhaustive()
    }
}

fn size(n: u16) -> NonZeroU16 {
    NonZeroU16::new(n).unwrap_or(NonZeroU16::MIN)
}

impl Watch {
    pub fn new(info: &LiveInfo, joined: bool) -> Watch {
        let s = &info.session;
        let (cols, rows) = if s.cols == 0 || s.rows == 0 {
            (80, 24)
        } else {
            (s.cols, s.rows)
        };
        Watch {
            title: format!(
                "{} on {} as {} from {}",
                s.user, s.asset, s.account, s.source
            ),
            joined,
            terminal: vt100::Parser::new(size(rows), size(cols), 0),
            desktop: (s.kind == "desktop").then(|| Box::new(Desktop::new())),
            ended: None,
            graphics: Graphics::Blocks,
            picture_room: Cell::new(None),
        }
    }

    /// Starts over from a snapshot of the session's screen (at the start,
    /// and after falling behind the stream). A desktop's snapshot is the
    /// target's Demand Active (the size and ids a decoder starts from);
    /// the full redraw the relay asks for follows in the stream.
    pub fn snapshot(&mut self, cols: u16, rows: u16, contents: &[u8]) {
        if let Some(desktop) = self.desktop.as_mut() {
            **desktop = Desktop::new();
        } else {
            self.terminal = vt100::Parser::new(size(rows), size(cols), 0);
        }
        self.feed(contents);
    }

    pub fn feed(&mut self, bytes: &[u8]) {
        match self.desktop.as_mut() {
            Some(desktop) => desktop.feed(bytes),
            None => crate::record::vt::process_or_restart(&mut self.terminal, bytes),
        }
    }

    pub fn resize(&mut self, cols: u16, rows: u16) {
        self.terminal.screen_mut().set_size(size(rows), size(cols));
    }

    /// Draws a desktop's picture as `graphics`: other than blocks, the
    /// render leaves its room blank and [`Watch::picture`] gives it.
    pub fn set_graphics(&mut self, graphics: Graphics) {
        self.graphics = graphics;
    }

    /// Whether this mirrors a desktop (its picture may be an image).
    pub fn is_desktop(&self) -> bool {
        self.desktop.is_some()
    }

    /// Where the last render left room for the picture, and the picture:
    /// for [`super::Screen::draw_picture`].
    pub fn picture(&self) -> Option<(Rect, crate::record::desktop::Frame<'_>)> {
        let room = self.picture_room.get()?;
        Some((room, self.desktop.as_ref()?.frame()?))
    }

    /// The session ended; the screen stays up with `why` until a key.
    pub fn end(&mut self, why: impl Into<String>) {
        self.ended = Some(why.into());
    }

    pub fn is_ended(&self) -> bool {
        self.ended.is_some()
    }

    /// The mirrored screen's text (for tests and the audit of what was seen).
    pub fn contents(&self) -> String {
        self.terminal.screen().contents()
    }

    /// For a monitor: whether the key leaves.
    pub fn leaves(&self, key: &Key) -> bool {
        self.ended.is_some() || matches!(key, Key::Esc | Key::Char('q') | Key::Ctrl('c' | ']'))
    }

    pub fn render(&self, frame: &mut Frame, theme: &Theme) {
        let area = frame.area();
        frame.render_widget(Block::default().style(theme.text()), area);
        self.picture_room.set(None);
        if area.height < 4 || area.width < 10 {
            return;
        }
        let (mode, leave) = if self.joined {
            ("joined: your keys go to the session", "Ctrl-] leave")
        } else {
            ("monitoring, read-only", "Esc leave")
        };
        let header = Rect::new(area.x, area.y, area.width, 1);
        frame.render_widget(
            Paragraph::new(Line::from(vec![
                Span::styled(" rampart ", theme.title()),
                Span::styled(self.title.clone(), theme.header()),
                Span::styled(format!("  {mode}"), theme.live()),
            ])),
            header,
        );
        frame.render_widget(
            Paragraph::new(Span::styled(format!("{leave} "), theme.key_hint()))
                .alignment(Alignment::Right),
            header,
        );
        if let Some(desktop) = &self.desktop {
            self.render_desktop(frame, area, theme, desktop);
            return;
        }
        let screen = self.terminal.screen();
        let (rows, cols) = screen.size();
        let (rows, cols) = (rows.get(), cols.get());
        let frame_area = Rect::new(area.x, area.y + 1, area.width, area.height - 2);
        let block = Block::default()
            .borders(Borders::ALL)
            .border_style(if self.joined {
                theme.warning()
            } else {
                theme.border_focused()
            })
            .title(Span::styled(format!(" {cols}×{rows} "), theme.muted()));
        let inner = block.inner(frame_area);
        frame.render_widget(block, frame_area);
        let cropped = cols > inner.width || rows > inner.height;
        // A smaller session sits in the middle; a larger one is cropped
        // around its cursor, where the person works.
        let shown = centered(inner, cols.min(inner.width), rows.min(inner.height));
        copy_screen(screen, shown, frame.buffer_mut(), !theme.is_mono());
        let status = Rect::new(area.x, area.y + area.height - 1, area.width, 1);
        let line = if let Some(why) = &self.ended {
            Span::styled(
                format!(" session ended: {why}; any key to go back"),
                theme.warning(),
            )
        } else if cropped {
            Span::styled(
                format!(
                    " cropped: the session is {cols}×{rows}, this window shows {}×{}",
                    inner.width.min(cols),
                    inner.height.min(rows)
                ),
                theme.warning(),
            )
        } else {
            Span::styled(" the screen as the person sees it", theme.muted())
        };
        frame.render_widget(Paragraph::new(line), status);
    }

    fn render_desktop(&self, frame: &mut Frame, area: Rect, theme: &Theme, desktop: &Desktop) {
        let picture = desktop.frame();
        let title = match &picture {
            Some(p) => format!(" desktop {}×{} ", p.width, p.height),
            None => " desktop ".into(),
        };
        let frame_area = Rect::new(area.x, area.y + 1, area.width, area.height - 2);
        let block = Block::default()
            .borders(Borders::ALL)
            .border_style(theme.border_focused())
            .title(Span::styled(title, theme.muted()));
        let inner = block.inner(frame_area);
        frame.render_widget(block, frame_area);
        match &picture {
            // An image goes into the blank room after the frame (see
            // Screen::draw_picture); without colour, half blocks' shades.
            Some(_) if self.graphics != Graphics::Blocks && !theme.is_mono() => {
                self.picture_room.set(Some(inner));
            }
            Some(p) => {
                copy_picture(p, inner, frame.buffer_mut(), !theme.is_mono());
            }
            None => {}
        }
        let status = Rect::new(area.x, area.y + area.height - 1, area.width, 1);
        let line = match (&self.ended, &picture) {
            (Some(why), _) => Span::styled(
                format!(" session ended: {why}; any key to go back"),
                theme.warning(),
            ),
            (None, None) => Span::styled(" waiting for the desktop's picture…", theme.muted()),
            (None, Some(_)) => Span::styled(
                " the desktop as the person sees it, scaled to this window",
                theme.muted(),
            ),
        };
        frame.render_widget(Paragraph::new(line), status);
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::tui::{ColorMode, Screen};

    /// A live SSH session of `cols` x `rows` (also the graphics tests').
    pub(crate) fn info(cols: u16, rows: u16) -> LiveInfo {
        LiveInfo {
            session: crate::live::SessionInfo {
                id: "s1".into(),
                user: "alice".into(),
                asset: "web1".into(),
                account: "root".into(),
                protocol: "ssh".into(),
                kind: "shell".into(),
                source: "127.0.0.1".into(),
                started_at: jiff::Timestamp::UNIX_EPOCH,
                cols,
                rows,
            },
            bytes_in: 0,
            bytes_out: 0,
            duration_secs: 0,
            watchers: 0,
            joined: vec![],
            killed: None,
            node: String::new(),
        }
    }

    fn seen(watch: &Watch, cols: u16, rows: u16) -> String {
        let mut screen = Screen::new(cols, rows, ColorMode::Full);
        let bytes = screen.draw(|f| watch.render(f, &Theme::default()));
        let mut client = vt100::Parser::new(size(rows), size(cols), 0);
        client.process(&bytes);
        client.screen().contents()
    }

    #[test]
    fn mirrors_the_screen_and_says_when_it_crops() {
        let mut watch = Watch::new(&info(40, 10), false);
        watch.feed(b"$ uptime\r\n up 3 days\r\n$ ");
        let text = seen(&watch, 80, 24);
        assert!(text.contains("$ uptime"), "{text}");
        assert!(text.contains("up 3 days"));
        assert!(text.contains("alice on web1 as root"));
        assert!(text.contains("monitoring, read-only"));
        assert!(!text.contains("cropped"));

        // A 120×40 session in an 80×24 window: cropped around the cursor.
        let mut big = Watch::new(&info(120, 40), true);
        let mut stream = Vec::new();
        for n in 0..39 {
            stream.extend_from_slice(format!("line {n}\r\n").as_bytes());
        }
        stream.extend_from_slice(b"$ tail");
        big.feed(&stream);
        let text = seen(&big, 80, 24);
        assert!(text.contains("cropped: the session is 120×40"), "{text}");
        assert!(text.contains("$ tail"), "the cursor's row is shown: {text}");
        assert!(!text.contains("line 0\n"));
        assert!(text.contains("joined"));
    }

    /// Output that makes vt100 panic (`record::vt`) leaves the monitor
    /// running, on a blank screen that goes on with what follows.
    #[test]
    fn output_that_panics_vt100_does_not_end_the_monitor() {
        let mut watch = Watch::new(&info(2, 2), false);
        watch.feed("\u{fe0f}#\n\u{2603}\u{fe0f}\x1b[1;80H \x1b[D\x1b[1b\x1b[M".as_bytes());
        watch.feed(b"ok");
        let text = seen(&watch, 80, 24);
        assert!(text.contains("ok"), "{text}");
    }

    #[test]
    fn a_desktop_is_mirrored_as_its_picture_from_the_demand_active_on() {
        use crate::record::desktop::synth;
        let mut desktop_info = info(0, 0);
        desktop_info.session.kind = "desktop".into();
        desktop_info.session.protocol = "rdp".into();
        let mut watch = Watch::new(&desktop_info, false);
        assert!(seen(&watch, 80, 24).contains("waiting for the desktop's picture"));
        // Updates before the snapshot cannot be drawn: no size yet.
        watch.feed(&synth::fill(0, 0, 64, 64, [0xff, 0, 0]));
        watch.snapshot(0, 0, &synth::demand_active(128, 64));
        for x in [0, 64] {
            watch.feed(&synth::fill(x, 0, 64, 64, [0x33, 0x66, 0xcc]));
        }
        let mut screen = Screen::new(80, 24, ColorMode::Full);
        let bytes = screen.draw(|f| watch.render(f, &Theme::default()));
        let mut client = vt100::Parser::new(size(24), size(80), 0);
        client.process(&bytes);
        let text = client.screen().contents();
        assert!(text.contains("desktop 128×64"), "{text}");
        assert!(text.contains("monitoring, read-only"), "{text}");
        let blue = vt100::Color::Rgb(0x33, 0x66, 0xcc);
        let cells = (0..24)
            .flat_map(|r| (0..80).map(move |c| (r, c)))
            .filter(|&(r, c)| {
                client
                    .screen()
                    .cell(r, c)
                    .is_some_and(|x| x.contents() == "▀" && x.fgcolor() == blue)
            })
            .count();
        // 78 columns of room: 128x64 pixels scale to 78x39, 20 cell rows.
        assert!(cells >= 78 * 19, "{cells} cells of the desktop's colour");
    }

    #[test]
    fn a_snapshot_replaces_what_was_there() {
        let mut watch = Watch::new(&info(20, 5), false);
        watch.feed(b"old text");
        watch.snapshot(30, 6, b"\x1b[H\x1b[2Jnew text");
        let text = seen(&watch, 80, 24);
        assert!(text.contains("new text"));
        assert!(!text.contains("old text"));
        assert!(text.contains("30×6"));
    }
}
