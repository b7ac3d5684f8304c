//! A message box: a refusal, an error or a notice the person must
//! acknowledge ("access denied", "the target's host key has changed").
//! Drawn over whatever screen is below it, or on its own.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, Paragraph, Wrap};

use super::input::Key;
use super::theme::Theme;
use super::{Severity, centered, hint_line};

/// A boxed message with a title, dismissed with Enter, Esc, Space or `q`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageBox {
    title: String,
    text: String,
    severity: Severity,
}

impl MessageBox {
    pub fn new(title: impl Into<String>, text: impl Into<String>, severity: Severity) -> Self {
        MessageBox {
            title: title.into(),
            text: text.into(),
            severity,
        }
    }

    pub fn info(text: impl Into<String>) -> Self {
        MessageBox::new("Notice", text, Severity::Info)
    }

    /// A refusal: what was refused and why, in one line.
    pub fn refusal(text: impl Into<String>) -> Self {
        MessageBox::new("Refused", text, Severity::Danger)
    }

    pub fn text(&self) -> &str {
        &self.text
    }

    /// Returns `true` when the key dismisses the box.
    pub fn handle(&mut self, key: Key) -> bool {
        self.dismissed_by(&key)
    }

    /// Whether `key` dismisses the box.
    pub fn dismissed_by(&self, key: &Key) -> bool {
        matches!(
            key,
            Key::Enter | Key::Esc | Key::Char(' ' | 'q') | Key::Ctrl('c' | 'd')
        )
    }

    pub fn render(&self, frame: &mut Frame, theme: &Theme) {
        self.render_in(frame, frame.area(), theme);
    }

    /// Draws the box centred in `area`. The text keeps its line breaks
    /// (a box of several lines is as wide as its longest, up to 100
    /// columns) and wraps what is longer.
    pub fn render_in(&self, frame: &mut Frame, area: Rect, theme: &Theme) {
        let lines: Vec<&str> = self.text.lines().collect();
        let longest = lines.iter().map(|l| l.chars().count()).max().unwrap_or(0);
        let widest = if lines.len() > 1 { 100 } else { 70 };
        let width = (longest as u16)
            .saturating_add(4)
            .clamp(30, widest)
            .min(area.width);
        let inner_width = width.saturating_sub(2).max(1);
        let text_rows: u16 = lines
            .iter()
            .map(|l| (l.chars().count() as u16).div_ceil(inner_width).max(1))
            .sum::<u16>()
            .max(1);
        let height = text_rows.saturating_add(4).min(area.height);
        let rect = centered(area, width, height);
        let style = super::severity_style(theme, self.severity);
        let block = Block::default()
            .borders(Borders::ALL)
            .border_style(style)
            .title(Span::styled(format!(" {} ", self.title), style));
        let mut body: Vec<Line> = lines
            .iter()
            .map(|l| Line::from(Span::styled(l.to_string(), theme.text())))
            .collect();
        body.push(Line::default());
        body.push(hint_line(theme, &[("Enter", "continue")]));
        frame.render_widget(Clear, rect);
        frame.render_widget(
            Paragraph::new(body)
                .block(block)
                .wrap(Wrap { trim: false })
                .style(theme.text()),
            rect,
        );
    }
}
