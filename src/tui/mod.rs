//! `tui`: ratatui applications over an SSH channel.
//!
//! What this module owns:
//! - [`input`]: the bytes a client's terminal sends, parsed into [`Key`]s
//!   (arrows, Home/End, PgUp/PgDn, Alt- vs Esc, Ctrl-keys, UTF-8 split across
//!   reads, bracketed paste);
//! - [`screen`]: a ratatui terminal that renders into bytes for the channel,
//!   sized from `pty-req` / `window-change` ([`Screen`], [`ColorMode`]);
//! - [`theme`]: semantic colour roles from `themes/*.toml` ([`Theme`]);
//! - [`graphics`]: a desktop's picture as a kitty or sixel image where the
//!   terminal can show one ([`Graphics`]), the queries that detect it and
//!   the parser of the answers;
//! - the screens: the asset [`Menu`]; the staff [`Desk`] around it (console
//!   and audit views over lists of rows, the dashboard, the new-user form,
//!   approval prompts); the [`Watch`] mirror of a live session; the
//!   [`Replay`] of a recording (read through [`crate::record::Player`] in
//!   bounded steps); TOTP enrolment ([`Enrol`]), the forced password change
//!   ([`Passwd`]) and a [`MessageBox`] for refusals.
//!
//! Each screen follows Input → Action → state → render: `handle(Key)`
//! changes plain state and may return an outcome for the caller,
//! `render(&self, frame, &Theme)` draws it. State is testable without a
//! terminal; tests drive it through [`Screen`] and read the bytes back with a
//! terminal emulator, as the client would.
//!
//! What it must never do:
//! - query the database, the vault or the network: the session task hands it
//!   the person's assets (`policy::VisibleAsset`) and takes back what they
//!   chose; `policy::authorize` still decides;
//! - block or wait on I/O: every call returns at once, the caller writes the
//!   bytes and owns timers (such as [`input::ESC_TIMEOUT`]);
//! - echo a password: typed secrets are drawn as `*`, kept in
//!   [`crate::vault::Secret`], and never appear in `Debug` output, in an
//!   error or in any byte sent to the client.

pub mod desk;
pub mod enrol;
mod field;
mod filter;
mod form;
pub mod graphics;
pub mod input;
pub mod menu;
pub mod notice;
pub mod passwd;
pub mod replay;
pub mod screen;
mod table;
mod term;
pub mod theme;
mod tree;
pub mod watch;

use ratatui::layout::Rect;
use ratatui::style::Style;
use ratatui::text::{Line, Span};

pub use desk::{Desk, DeskOutcome};
pub use enrol::{Enrol, EnrolOutcome};
pub use graphics::Graphics;
pub use input::{ESC_TIMEOUT, InputParser, Key};
pub use menu::{Chosen, Menu, MenuOutcome};
pub use notice::MessageBox;
pub use passwd::{Passwd, PasswdOutcome};
pub use replay::{Replay, ReplayOutcome};
pub use screen::{ColorMode, Screen};
pub use theme::{Role, Theme, ThemeError};
pub use watch::Watch;

/// How serious a notice or message is; decides its style.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    Info,
    Warning,
    Danger,
}

pub(crate) fn severity_style(theme: &Theme, severity: Severity) -> Style {
    match severity {
        Severity::Info => theme.info(),
        Severity::Warning => theme.warning(),
        Severity::Danger => theme.danger(),
    }
}

/// A framed pane titled `title`, drawn as having the keyboard when
/// `focused`.
pub(crate) fn pane(
    theme: &Theme,
    title: String,
    focused: bool,
) -> ratatui::widgets::Block<'static> {
    let (border, title_style) = if focused {
        (theme.border_focused(), theme.title())
    } else {
        (theme.border(), theme.muted())
    };
    ratatui::widgets::Block::default()
        .borders(ratatui::widgets::Borders::ALL)
        .border_style(border)
        .title(Span::styled(title, title_style))
}

/// A `width`×`height` rectangle centred in `area`, shrunk to fit.
pub(crate) fn centered(area: Rect, width: u16, height: u16) -> Rect {
    let width = width.min(area.width);
    let height = height.min(area.height);
    Rect::new(
        area.x + (area.width - width) / 2,
        area.y + (area.height - height) / 2,
        width,
        height,
    )
}

/// The `?` box: each key and what it does, centred in `area`.
pub(crate) fn help_box(
    frame: &mut ratatui::Frame,
    area: Rect,
    theme: &Theme,
    keys: &[(&str, &str)],
) {
    use ratatui::widgets::{Block, Borders, Clear, Paragraph};
    let key_w = keys
        .iter()
        .map(|(k, _)| k.chars().count())
        .max()
        .unwrap_or(0);
    let lines: Vec<Line> = keys
        .iter()
        .map(|(k, what)| {
            Line::from(vec![
                Span::styled(format!(" {k:<key_w$}  "), theme.key_hint()),
                Span::styled(what.to_string(), theme.text()),
            ])
        })
        .collect();
    let rect = centered(area, 66, keys.len() as u16 + 2);
    frame.render_widget(Clear, rect);
    let block = Block::default()
        .borders(Borders::ALL)
        .border_style(theme.border_focused())
        .title(Span::styled(" Keys ", theme.title()));
    frame.render_widget(Paragraph::new(lines).block(block).style(theme.text()), rect);
}

/// `Enter connect  Esc back` with the keys in the key-hint style.
pub(crate) fn hint_line(theme: &Theme, hints: &[(&str, &str)]) -> Line<'static> {
    let mut spans = Vec::with_capacity(hints.len() * 2 + 1);
    spans.push(Span::raw(" "));
    for (key, what) in hints {
        spans.push(Span::styled(key.to_string(), theme.key_hint()));
        spans.push(Span::raw(format!(" {what}  ")));
    }
    Line::from(spans)
}

/// The first row to show so that `selected` is visible in `height` rows,
/// moving as little as possible from `offset`.
pub(crate) fn scroll(offset: usize, selected: usize, height: usize, len: usize) -> usize {
    if height == 0 {
        return 0;
    }
    let mut offset = offset.min(len.saturating_sub(height));
    if selected < offset {
        offset = selected;
    } else if selected >= offset + height {
        offset = selected + 1 - height;
    }
    offset
}

/// `text` cut to `width` characters, with `…` when cut.
pub(crate) fn truncate(text: &str, width: usize) -> String {
    if text.chars().count() <= width {
        return text.to_string();
    }
    let mut out: String = text.chars().take(width.saturating_sub(1)).collect();
    if width > 0 {
        out.push('…');
    }
    out
}

/// `text` padded with spaces to `width` characters (a selected row's
/// highlight then spans the pane).
pub(crate) fn pad(text: &str, width: usize) -> String {
    let mut out = truncate(text, width);
    let len = out.chars().count();
    out.extend(std::iter::repeat_n(' ', width.saturating_sub(len)));
    out
}
