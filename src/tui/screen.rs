//! A ratatui terminal that renders into bytes for an SSH channel.
//!
//! ratatui's stock backends write to the *server process's* own tty and ask
//! it for its size and cursor; under a daemon there is no such tty, and the
//! size that matters is the client's, from `pty-req` and `window-change`.
//! [`Screen`] therefore owns a small [`Backend`] of its own that appends ANSI
//! sequences to a `Vec<u8>`, answers size questions from what the session
//! told it, tracks the cursor itself, and never reads anything.
//!
//! A desktop's picture may follow a frame as a kitty or sixel image
//! ([`Screen::draw_picture`], `tui::graphics`), sent only when it changed
//! or the screen was repainted whole.
//!
//! One `Screen` per session: there is no lock shared between sessions, and a
//! slow client only delays its own bytes.

use std::convert::Infallible;
use std::io::Write;

use ratatui::backend::{Backend, ClearType, WindowSize};
use ratatui::buffer::Cell;
use ratatui::layout::{Position, Rect, Size};
use ratatui::style::{Color, Modifier};
use ratatui::{Frame, Terminal, TerminalOptions, Viewport};

use super::graphics::{CellSize, Graphics, Pictures};
use crate::record::desktop::Frame as Picture;

/// Largest size accepted from the client. `pty-req` carries two u32s; a
/// client asking for 65535×65535 would make every frame buffer gigabytes.
/// No real terminal is wider or taller than this.
pub const MAX_COLS: u16 = 1000;
pub const MAX_ROWS: u16 = 500;

/// What colours the client's terminal can show.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColorMode {
    /// Colours as the theme gives them: the 16 named colours, 256-colour
    /// indexes and `#rrggbb` (sent as 24-bit, which every terminal announcing
    /// 256 colours today accepts).
    Full,
    /// Only the 16 ANSI colours; indexed and RGB colours are mapped to the
    /// nearest of them.
    Ansi16,
    /// No colour at all, only attributes (bold, underline, reverse...): for
    /// `NO_COLOR` and terminals without colour. No colour SGR code is sent.
    None,
}

impl ColorMode {
    /// Decides from the client's `TERM` (from `pty-req`) and whether the
    /// person asked for no colour (`NO_COLOR`, https://no-color.org).
    pub fn detect(term: &str, no_color: bool) -> ColorMode {
        let term = term.trim().to_ascii_lowercase();
        if no_color {
            return ColorMode::None;
        }
        // Terminals of the VT100 family have no colour; an empty TERM means
        // the client did not say, so assume the least.
        const MONO: &[&str] = &[
            "",
            "dumb",
            "vt52",
            "vt100",
            "vt102",
            "vt220",
            "vt320",
            "ansi-mono",
        ];
        if MONO.contains(&term.as_str()) || term.ends_with("-mono") || term.ends_with("-m") {
            return ColorMode::None;
        }
        const FULL: &[&str] = &[
            "256color",
            "direct",
            "truecolor",
            "24bit",
            "kitty",
            "alacritty",
            "wezterm",
            "foot",
            "ghostty",
            "iterm",
        ];
        if FULL.iter().any(|f| term.contains(f)) {
            ColorMode::Full
        } else {
            ColorMode::Ansi16
        }
    }
}

/// A terminal of a given size whose frames become bytes.
pub struct Screen {
    terminal: Terminal<AnsiBackend>,
    /// Desktop pictures as images, when the terminal can show them.
    pictures: Pictures,
    /// The next draw repaints everything (a picture is then sent again).
    fresh: bool,
}

impl std::fmt::Debug for Screen {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let b = self.terminal.backend();
        f.debug_struct("Screen")
            .field("size", &b.size)
            .field("mode", &b.mode)
            .finish_non_exhaustive()
    }
}

impl Screen {
    /// A screen of the size the client announced. Sizes are clamped to
    /// `1..=MAX_COLS` × `1..=MAX_ROWS`. The first [`Screen::draw`] paints
    /// everything.
    pub fn new(cols: u16, rows: u16, mode: ColorMode) -> Screen {
        let size = clamp(cols, rows);
        let backend = AnsiBackend {
            out: Vec::with_capacity(16 * 1024),
            size,
            cursor: Position::ORIGIN,
            cursor_visible: None,
            mode,
            pen: Pen::default(),
        };
        Screen {
            terminal: fixed_terminal(backend, size),
            pictures: Pictures::default(),
            fresh: true,
        }
    }

    pub fn size(&self) -> (u16, u16) {
        let s = self.terminal.backend().size;
        (s.width, s.height)
    }

    pub fn color_mode(&self) -> ColorMode {
        self.terminal.backend().mode
    }

    /// The client's window changed (`window-change`). The next draw clears
    /// the screen and repaints it whole: after a resize the client's
    /// terminal has rewrapped or cropped what it showed, so a diff against
    /// the old frame would be wrong.
    pub fn resize(&mut self, cols: u16, rows: u16) {
        let size = clamp(cols, rows);
        self.terminal.backend_mut().size = size;
        self.repaint_all();
    }

    /// Renders a frame and returns the bytes that bring the client's screen
    /// to it: everything on the first frame (and after [`Screen::resize`] or
    /// [`Screen::enter`]), only the changed cells afterwards.
    pub fn draw(&mut self, render: impl FnOnce(&mut Frame)) -> Vec<u8> {
        // The backend cannot fail (its error type is `Infallible`).
        let Ok(_) = self.terminal.draw(render);
        let backend = self.terminal.backend_mut();
        // Leave the client's terminal in the plain style between frames, so
        // that whatever else is written to the channel is not coloured.
        backend.reset_pen();
        std::mem::take(&mut backend.out)
    }

    /// Draws desktop pictures as `graphics` from now on, for a terminal
    /// whose cells measure `cell`.
    pub fn set_graphics(&mut self, graphics: Graphics, cell: CellSize) {
        if (graphics, cell) != (self.pictures.mode(), self.pictures.cell()) {
            self.pictures = Pictures::new(graphics, cell);
        }
    }

    /// How desktop pictures are drawn on this screen.
    pub fn graphics(&self) -> Graphics {
        self.pictures.mode()
    }

    /// As [`Screen::draw`], for a screen that may show a desktop's
    /// picture: `picture`, asked after `render`, says where it goes (the
    /// room `render` left blank) and what it is. Its image follows the
    /// frame's bytes, sent only when it changed, the screen was repainted
    /// whole, or it moved, and no more often than the pace allows
    /// ([`Screen::picture_due`] then says when to draw again).
    pub fn draw_picture<'p>(
        &mut self,
        render: impl Fn(&mut Frame),
        picture: impl Fn() -> Option<(Rect, Picture<'p>)>,
        now: std::time::Instant,
    ) -> Vec<u8> {
        let mut fresh = std::mem::take(&mut self.fresh);
        let mut out = self.draw(&render);
        if self.pictures.mode() == Graphics::Blocks {
            return out;
        }
        let shown = picture();
        let plan = self.pictures.plan(shown.as_ref().map(|(room, _)| *room));
        if plan.repaint {
            self.repaint_all();
            self.fresh = false;
            fresh = true;
            out = self.draw(&render);
        }
        let mut bytes = plan.before;
        bytes.append(&mut out);
        if let Some((room, p)) = shown {
            bytes.extend(self.pictures.place(room, &p, fresh, now));
        }
        bytes
    }

    /// How soon to draw again for a picture held back by the pace.
    pub fn picture_due(&self, now: std::time::Instant) -> Option<std::time::Duration> {
        self.pictures.due(now)
    }

    /// The screen with a picture goes (back to the desk): bytes that delete
    /// a kitty image; after sixel the next draw repaints whole.
    pub fn end_pictures(&mut self) -> Vec<u8> {
        let (bytes, repaint) = self.pictures.end();
        if repaint {
            self.repaint_all();
        }
        bytes
    }

    /// Bytes that switch the client to the alternate screen, hide the cursor
    /// and turn on bracketed paste; the next draw repaints everything (also
    /// when re-entering the menu after a target session, which used the
    /// screen in between).
    pub fn enter(&mut self) -> Vec<u8> {
        self.repaint_all();
        let backend = self.terminal.backend_mut();
        // The clearing that repaint_all queued would hit the normal screen;
        // the alternate screen is cleared below instead.
        backend.out.clear();
        backend.cursor_visible = Some(false);
        b"\x1b[?1049h\x1b[?25l\x1b[?2004h\x1b[0m\x1b[H\x1b[2J".to_vec()
    }

    /// Bytes that undo [`Screen::enter`]: plain style, bracketed paste off,
    /// cursor shown, back to the normal screen the person had before.
    pub fn leave(&mut self) -> Vec<u8> {
        let (mut bytes, _) = self.pictures.end();
        let backend = self.terminal.backend_mut();
        backend.out.clear();
        backend.pen = Pen::default();
        backend.cursor_visible = None;
        bytes.extend_from_slice(b"\x1b[0m\x1b[?2004l\x1b[?25h\x1b[?1049l");
        bytes
    }

    /// Makes the next draw clear the client's screen and paint every cell.
    fn repaint_all(&mut self) {
        let size = self.terminal.backend().size;
        // `Terminal::resize` on a fixed viewport clears it through the
        // backend and forgets the previous frame, which is exactly a full
        // repaint. (`Terminal::clear` would do the same but also moves the
        // cursor back to where it was; neither queries the client.)
        let Ok(()) = self.terminal.resize(Rect::from((Position::ORIGIN, size)));
        self.terminal.backend_mut().cursor_visible = None;
        self.terminal.backend_mut().pen = Pen::default();
        self.fresh = true;
    }
}

fn clamp(cols: u16, rows: u16) -> Size {
    Size::new(cols.clamp(1, MAX_COLS), rows.clamp(1, MAX_ROWS))
}

fn fixed_terminal(backend: AnsiBackend, size: Size) -> Terminal<AnsiBackend> {
    let viewport = Viewport::Fixed(Rect::from((Position::ORIGIN, size)));
    let Ok(terminal) = Terminal::with_options(backend, TerminalOptions { viewport });
    terminal
}

/// The SGR state the client's terminal is in, as far as we have set it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Pen {
    fg: Color,
    bg: Color,
    modifier: Modifier,
}

impl Default for Pen {
    fn default() -> Self {
        Pen {
            fg: Color::Reset,
            bg: Color::Reset,
            modifier: Modifier::empty(),
        }
    }
}

/// The backend: appends to `out`, never reads.
struct AnsiBackend {
    out: Vec<u8>,
    size: Size,
    cursor: Position,
    /// `None`: unknown, so the next show/hide is always sent.
    cursor_visible: Option<bool>,
    mode: ColorMode,
    pen: Pen,
}

impl AnsiBackend {
    fn move_to(&mut self, x: u16, y: u16) {
        // CUP is 1-based. Writing to a Vec cannot fail.
        let _ = write!(self.out, "\x1b[{};{}H", u32::from(y) + 1, u32::from(x) + 1);
        self.cursor = Position { x, y };
    }

    fn reset_pen(&mut self) {
        if self.pen != Pen::default() {
            self.out.extend_from_slice(b"\x1b[0m");
            self.pen = Pen::default();
        }
    }

    /// Brings the terminal's SGR state to `want` with one sequence.
    fn set_pen(&mut self, want: Pen) {
        if want == self.pen {
            return;
        }
        let mut params = String::with_capacity(24);
        let mut fg = want.fg != self.pen.fg;
        let mut bg = want.bg != self.pen.bg;
        if want.modifier != self.pen.modifier {
            // Attributes are switched off inconsistently across terminals
            // (22 clears bold *and* dim); resetting and setting everything
            // again is always right and costs a few bytes.
            params.push('0');
            for (m, code) in MODIFIER_CODES {
                if want.modifier.contains(*m) {
                    params.push(';');
                    params.push_str(code);
                }
            }
            fg = want.fg != Color::Reset;
            bg = want.bg != Color::Reset;
        }
        if self.mode != ColorMode::None {
            if fg {
                push_color(&mut params, want.fg, self.mode, false);
            }
            if bg {
                push_color(&mut params, want.bg, self.mode, true);
            }
        }
        if !params.is_empty() {
            let _ = write!(self.out, "\x1b[{params}m");
        }
        self.pen = want;
    }
}

const MODIFIER_CODES: &[(Modifier, &str)] = &[
    (Modifier::BOLD, "1"),
    (Modifier::DIM, "2"),
    (Modifier::ITALIC, "3"),
    (Modifier::UNDERLINED, "4"),
    (Modifier::SLOW_BLINK, "5"),
    (Modifier::RAPID_BLINK, "6"),
    (Modifier::REVERSED, "7"),
    (Modifier::HIDDEN, "8"),
    (Modifier::CROSSED_OUT, "9"),
];

fn push_color(params: &mut String, color: Color, mode: ColorMode, background: bool) {
    use std::fmt::Write as _;
    if !params.is_empty() {
        params.push(';');
    }
    let base = if background { 10 } else { 0 };
    let color = match (mode, color) {
        (ColorMode::Ansi16, Color::Indexed(i)) => indexed_to_16(i),
        (ColorMode::Ansi16, Color::Rgb(r, g, b)) => nearest_16(r, g, b),
        (_, c) => c,
    };
    let _ = match color {
        Color::Reset => write!(params, "{}", 39 + base),
        Color::Indexed(i) => write!(params, "{};5;{i}", 38 + base),
        Color::Rgb(r, g, b) => write!(params, "{};2;{r};{g};{b}", 38 + base),
        named => write!(params, "{}", named_code(named) + base),
    };
}

/// SGR foreground code of a named colour (ratatui's `Gray` is ANSI white,
/// its `White` is bright white).
fn named_code(color: Color) -> u16 {
    match color {
        Color::Black => 30,
        Color::Red => 31,
        Color::Green => 32,
        Color::Yellow => 33,
        Color::Blue => 34,
        Color::Magenta => 35,
        Color::Cyan => 36,
        Color::Gray => 37,
        Color::DarkGray => 90,
        Color::LightRed => 91,
        Color::LightGreen => 92,
        Color::LightYellow => 93,
        Color::LightBlue => 94,
        Color::LightMagenta => 95,
        Color::LightCyan => 96,
        Color::White => 97,
        Color::Reset | Color::Indexed(_) | Color::Rgb(..) => 39,
    }
}

/// The 16 ANSI colours in index order with xterm's default RGB values.
const ANSI16: [(Color, (u8, u8, u8)); 16] = [
    (Color::Black, (0, 0, 0)),
    (Color::Red, (205, 0, 0)),
    (Color::Green, (0, 205, 0)),
    (Color::Yellow, (205, 205, 0)),
    (Color::Blue, (0, 0, 238)),
    (Color::Magenta, (205, 0, 205)),
    (Color::Cyan, (0, 205, 205)),
    (Color::Gray, (229, 229, 229)),
    (Color::DarkGray, (127, 127, 127)),
    (Color::LightRed, (255, 0, 0)),
    (Color::LightGreen, (0, 255, 0)),
    (Color::LightYellow, (255, 255, 0)),
    (Color::LightBlue, (92, 92, 255)),
    (Color::LightMagenta, (255, 0, 255)),
    (Color::LightCyan, (0, 255, 255)),
    (Color::White, (255, 255, 255)),
];

fn indexed_to_16(i: u8) -> Color {
    if let Some((c, _)) = ANSI16.get(usize::from(i)) {
        return *c;
    }
    let (r, g, b) = if i >= 232 {
        let v = 8 + (i - 232) * 10;
        (v, v, v)
    } else {
        // 16..=231: a 6×6×6 cube.
        let n = i - 16;
        let level = |v: u8| if v == 0 { 0 } else { 55 + v * 40 };
        (level(n / 36), level((n / 6) % 6), level(n % 6))
    };
    nearest_16(r, g, b)
}

fn nearest_16(r: u8, g: u8, b: u8) -> Color {
    let dist = |(cr, cg, cb): (u8, u8, u8)| {
        let d = |a: u8, b: u8| (i32::from(a) - i32::from(b)).pow(2);
        d(r, cr) + d(g, cg) + d(b, cb)
    };
    ANSI16
        .iter()
        .min_by_key(|(_, rgb)| dist(*rgb))
        .map_or(Color::Reset, |(c, _)| *c)
}

impl Backend for AnsiBackend {
    type Error = Infallible;

    fn draw<'a, I>(&mut self, content: I) -> Result<(), Infallible>
    where
        I: Iterator<Item = (u16, u16, &'a Cell)>,
    {
        let mut last: Option<Position> = None;
        for (x, y, cell) in content {
            // Only a cell right after a one-column cell continues where the
            // terminal's cursor is; after a wide character the terminal's
            // idea of its width may differ from ours, so move explicitly.
            if !matches!(last, Some(p) if p.y == y && p.x.checked_add(1) == Some(x)) {
                self.move_to(x, y);
            }
            last = Some(Position { x, y });
            self.set_pen(Pen {
                fg: cell.fg,
                bg: cell.bg,
                modifier: cell.modifier,
            });
            let symbol = cell.symbol();
            // ratatui drops control characters when text is set, but a
            // symbol is written to a person's terminal verbatim: an escape
            // sequence smuggled into an asset name or comment must never
            // reach it.
            if symbol.chars().any(char::is_control) {
                self.out.push(b'?');
            } else {
                self.out.extend_from_slice(symbol.as_bytes());
            }
            self.cursor = Position {
                x: x.saturating_add(1),
                y,
            };
        }
        Ok(())
    }

    fn hide_cursor(&mut self) -> Result<(), Infallible> {
        if self.cursor_visible != Some(false) {
            self.out.extend_from_slice(b"\x1b[?25l");
            self.cursor_visible = Some(false);
        }
        Ok(())
    }

    fn show_cursor(&mut self) -> Result<(), Infallible> {
        if self.cursor_visible != Some(true) {
            self.out.extend_from_slice(b"\x1b[?25h");
            self.cursor_visible = Some(true);
        }
        Ok(())
    }

    fn get_cursor_position(&mut self) -> Result<Position, Infallible> {
        Ok(self.cursor)
    }

    fn set_cursor_position<P: Into<Position>>(&mut self, position: P) -> Result<(), Infallible> {
        let p = position.into();
        self.move_to(p.x, p.y);
        Ok(())
    }

    fn clear(&mut self) -> Result<(), Infallible> {
        self.clear_region(ClearType::All)
    }

    fn clear_region(&mut self, clear_type: ClearType) -> Result<(), Infallible> {
        // Erasing fills with the current background colour on most
        // terminals: erase in the plain style.
        self.reset_pen();
        let seq: &[u8] = match clear_type {
            ClearType::All => b"\x1b[2J",
            ClearType::AfterCursor => b"\x1b[J",
            ClearType::BeforeCursor => b"\x1b[1J",
            ClearType::CurrentLine => b"\x1b[2K",
            ClearType::UntilNewLine => b"\x1b[K",
        };
        self.out.extend_from_slice(seq);
        Ok(())
    }

    fn size(&self) -> Result<Size, Infallible> {
        Ok(self.size)
    }

    fn window_size(&mut self) -> Result<WindowSize, Infallible> {
        // Pixel sizes from pty-req are unreliable (often 0) and unused.
        Ok(WindowSize {
            columns_rows: self.size,
            pixels: Size::new(0, 0),
        })
    }

    fn flush(&mut self) -> Result<(), Infallible> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detects_colour_support_from_term() {
        assert_eq!(ColorMode::detect("xterm-256color", false), ColorMode::Full);
        assert_eq!(ColorMode::detect("xterm", false), ColorMode::Ansi16);
        assert_eq!(ColorMode::detect("dumb", false), ColorMode::None);
        assert_eq!(ColorMode::detect("", false), ColorMode::None);
        assert_eq!(ColorMode::detect("xterm-256color", true), ColorMode::None);
    }

    #[test]
    fn maps_colours_down_to_sixteen() {
        assert_eq!(indexed_to_16(1), Color::Red);
        assert_eq!(indexed_to_16(231), Color::White);
        assert_eq!(indexed_to_16(16), Color::Black);
        assert_eq!(nearest_16(250, 10, 10), Color::LightRed);
    }

    #[test]
    fn absurd_sizes_are_clamped() {
        let s = Screen::new(u16::MAX, 0, ColorMode::Full);
        assert_eq!(s.size(), (MAX_COLS, 1));
    }
}
