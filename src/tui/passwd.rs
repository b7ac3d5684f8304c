//! The forced password change: a new password typed twice, masked. This
//! screen checks only that the two entries match; the caller applies the
//! password rules and reports a refusal with [`Passwd::set_error`].

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::Span;
use ratatui::widgets::{Block, Borders, Clear, Paragraph, Wrap};
use zeroize::Zeroize;

use super::field::Field;
use super::input::Key;
use super::theme::Theme;
use super::{centered, hint_line};
use crate::vault::Secret;

/// Longest password accepted, in characters (argon2 takes any length; this
/// bounds the fixed buffer a masked field allocates).
pub(crate) const MAX_PASSWORD: usize = 256;

/// What the person did on the password screen.
#[derive(Debug, Clone)]
pub enum PasswdOutcome {
    /// The new password, typed the same twice.
    New(Secret<String>),
    Cancel,
}

/// The password change screen's state.
#[derive(Debug)]
pub struct Passwd {
    intro: String,
    new: Field,
    confirm: Field,
    /// 0: the new password field has the keyboard, 1: the confirmation.
    focus: u8,
    error: Option<String>,
}

impl Default for Passwd {
    fn default() -> Self {
        Passwd::new("Your password must be changed before you continue.")
    }
}

impl Passwd {
    /// `intro` says why (first login, expired, reset by an admin).
    pub fn new(intro: impl Into<String>) -> Passwd {
        Passwd {
            intro: intro.into(),
            new: Field::masked(MAX_PASSWORD),
            confirm: Field::masked(MAX_PASSWORD),
            focus: 0,
            error: None,
        }
    }

    /// Shows why the password was refused (too short, reused...), clears
    /// both fields and starts again at the first.
    pub fn set_error(&mut self, message: impl Into<String>) {
        self.error = Some(message.into());
        self.new.clear();
        self.confirm.clear();
        self.focus = 0;
    }

    pub fn handle(&mut self, mut key: Key) -> Option<PasswdOutcome> {
        let outcome = self.apply(&key);
        // A paste into this screen is a password: wipe our copy.
        if let Key::Paste(text) = &mut key {
            text.zeroize();
        }
        outcome
    }

    fn apply(&mut self, key: &Key) -> Option<PasswdOutcome> {
        match key {
            Key::Esc | Key::Ctrl('c' | 'd') => return Some(PasswdOutcome::Cancel),
            Key::Tab | Key::BackTab | Key::Up | Key::Down => self.focus ^= 1,
            Key::Enter if self.focus == 0 => {
                if self.new.is_empty() {
                    self.error = Some("Type a new password.".into());
                } else {
                    self.focus = 1;
                }
            }
            Key::Enter => {
                if self.new.text() != self.confirm.text() {
                    self.set_error("The two passwords do not match; type them again.");
                } else if self.new.is_empty() {
                    self.set_error("Type a new password.");
                } else {
                    self.error = None;
                    self.confirm.clear();
                    self.focus = 0;
                    return Some(PasswdOutcome::New(self.new.take_secret()));
                }
            }
            key => {
                if self.focus == 0 {
                    self.new.handle(key);
                } else {
                    self.confirm.handle(key);
                }
            }
        }
        None
    }

    pub fn render(&self, frame: &mut Frame, theme: &Theme) {
        let area = frame.area();
        frame.render_widget(Paragraph::new("").style(theme.text()), area);
        let rect = centered(area, 60, 12);
        let block = Block::default()
            .borders(Borders::ALL)
            .border_style(theme.border_focused())
            .title(Span::styled(" Change password ", theme.title()));
        let inner = block.inner(rect);
        frame.render_widget(Clear, rect);
        frame.render_widget(block, rect);
        let [intro, _, new_row, confirm_row, _, error, hints] = Layout::vertical([
            Constraint::Length(2),
            Constraint::Length(1),
            Constraint::Length(1),
            Constraint::Length(1),
            Constraint::Length(1),
            Constraint::Length(2),
            Constraint::Length(1),
        ])
        .areas(inner);
        let wrap = Wrap { trim: true };
        frame.render_widget(
            Paragraph::new(Span::styled(self.intro.clone(), theme.text())).wrap(wrap),
            intro,
        );
        self.render_field(
            frame,
            new_row,
            theme,
            "New password",
            &self.new,
            self.focus == 0,
        );
        self.render_field(
            frame,
            confirm_row,
            theme,
            "Again",
            &self.confirm,
            self.focus == 1,
        );
        if let Some(message) = &self.error {
            frame.render_widget(
                Paragraph::new(Span::styled(message.clone(), theme.danger())).wrap(wrap),
                error,
            );
        }
        frame.render_widget(
            Paragraph::new(hint_line(
                theme,
                &[
                    ("Enter", "next/confirm"),
                    ("Tab", "switch"),
                    ("Esc", "cancel"),
                ],
            )),
            hints,
        );
    }

    fn render_field(
        &self,
        frame: &mut Frame,
        row: Rect,
        theme: &Theme,
        label: &str,
        field: &Field,
        focused: bool,
    ) {
        let [label_area, field_area] =
            Layout::horizontal([Constraint::Length(14), Constraint::Min(1)]).areas(row);
        let style = if focused { theme.title() } else { theme.text() };
        frame.render_widget(
            Paragraph::new(Span::styled(label.to_string(), style)),
            label_area,
        );
        field.render(frame, field_area, theme.input(), None, focused);
    }
}
