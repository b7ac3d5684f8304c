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
        matches!(
            key,
            Key::Enter | Key::Esc | Key::Char(' ' | 'q') | Key::Ctrl('c' | 'd')
        )
    }

    pub fn render(&self, frame: &mut Frame, theme: &Theme) {
        self.render_in(frame, frame.area(), theme);
    }

    pub fn render_in(&self, frame: &mut Frame, area: Rect, theme: &Theme) {
        let width = (self.text.chars().count() as u16)
            .saturating_add(4)
            .clamp(30, 70)
            .min(area.width);
        let inner_width = width.saturating_sub(2).max(1);
        let text_rows = (self.text.chars().count() as u16)
            .div_ceil(inner_width)
            .max(1);
        let height = text_rows.saturating_add(4).min(area.height);
        let rect = centered(area, width, height);
        let style = super::severity_style(theme, self.severity);
        let block = Block::default()
            .borders(Borders::ALL)
            .border_style(style)
            .title(Span::styled(format!(" {} ", self.title), style));
        let body = vec![
            Line::from(Span::styled(self.text.clone(), theme.text())),
            Line::default(),
            hint_line(theme, &[("Enter", "continue")]),
        ];
        frame.render_widget(Clear, rect);
        frame.render_widget(
            Paragraph::new(body)
                .block(block)
                .wrap(Wrap { trim: true })
                .style(theme.text()),
            rect,
        );
    }
}
