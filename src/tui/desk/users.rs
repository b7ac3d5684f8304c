//! The new-user form of the console: name, role and email, each checked
//! as it is typed with the same rules `ops` applies, the error shown beside
//! the field.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, Paragraph};

use super::super::field::Field;
use super::super::input::Key;
use super::super::theme::Theme;
use super::super::{centered, hint_line};
use crate::model::{self, Role};

const ROLES: [Role; 3] = [Role::User, Role::Auditor, Role::Admin];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Focus {
    Name,
    Role,
    Email,
}

/// What the form asks for when submitted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewUser {
    pub name: String,
    pub role: Role,
    pub email: Option<String>,
}

#[derive(Debug)]
pub(super) struct UserForm {
    name: Field,
    role: usize,
    email: Field,
    focus: Focus,
    /// Set when Enter was pressed with errors: they are then shown even
    /// for fields not yet touched.
    tried: bool,
    /// Editing an existing user: the name is fixed.
    editing: bool,
}

pub(super) enum FormOutcome {
    Cancel,
    Submit(NewUser),
    /// The edited user, under the same name.
    Edit(NewUser),
}

impl UserForm {
    pub(super) fn new() -> UserForm {
        UserForm {
            name: Field::plain(64),
            role: 0,
            email: Field::plain(254),
            focus: Focus::Name,
            tried: false,
            editing: false,
        }
    }

    /// The form for changing `user`'s role and email.
    pub(super) fn edit(user: &NewUser) -> UserForm {
        let mut form = UserForm::new();
        for c in user.name.chars() {
            form.name.handle(&Key::Char(c));
        }
        for c in user.email.as_deref().unwrap_or("").chars() {
            form.email.handle(&Key::Char(c));
        }
        form.role = ROLES.iter().position(|r| *r == user.role).unwrap_or(0);
        form.editing = true;
        form.focus = Focus::Role;
        form
    }

    fn name_error(&self) -> Option<String> {
        if self.name.is_empty() {
            return (self.tried).then(|| "required".to_string());
        }
        model::check_name("name", self.name.text())
            .err()
            .map(|e| e.expected)
    }

    fn email_error(&self) -> Option<String> {
        if self.email.is_empty() {
            return None;
        }
        model::check_email(self.email.text())
            .err()
            .map(|e| e.expected)
    }

    pub(super) fn handle(&mut self, key: &Key) -> Option<FormOutcome> {
        match key {
            Key::Esc | Key::Ctrl('c') => return Some(FormOutcome::Cancel),
            Key::Tab | Key::Down => {
                self.focus = match self.focus {
                    Focus::Name => Focus::Role,
                    Focus::Role => Focus::Email,
                    Focus::Email if self.editing => Focus::Role,
                    Focus::Email => Focus::Name,
                }
            }
            Key::BackTab | Key::Up => {
                self.focus = match self.focus {
                    Focus::Name => Focus::Email,
                    Focus::Role if self.editing => Focus::Email,
                    Focus::Role => Focus::Name,
                    Focus::Email => Focus::Role,
                }
            }
            Key::Enter => {
                self.tried = true;
                if self.name_error().is_none() && self.email_error().is_none() {
                    let user = NewUser {
                        name: self.name.text().to_string(),
                        role: ROLES.get(self.role).copied().unwrap_or(Role::User),
                        email: (!self.email.is_empty()).then(|| self.email.text().to_string()),
                    };
                    return Some(if self.editing {
                        FormOutcome::Edit(user)
                    } else {
                        FormOutcome::Submit(user)
                    });
                }
            }
            other => match self.focus {
                Focus::Name if !self.editing => {
                    self.name.handle(other);
                }
                Focus::Name => {}
                Focus::Email => {
                    self.email.handle(other);
                }
                Focus::Role => match other {
                    Key::Left => self.role = (self.role + ROLES.len() - 1) % ROLES.len(),
                    Key::Right | Key::Char(' ') => self.role = (self.role + 1) % ROLES.len(),
                    Key::Char('u') => self.role = 0,
                    Key::Char('a') => self.role = 2,
                    _ => {}
                },
            },
        }
        None
    }

    pub(super) fn render(&self, frame: &mut Frame, area: Rect, theme: &Theme) {
        let rect = centered(area, 80, 11);
        frame.render_widget(Clear, rect);
        let block = Block::default()
            .borders(Borders::ALL)
            .border_style(theme.border_focused())
            .title(Span::styled(
                if self.editing {
                    " Edit user "
                } else {
                    " New user "
                },
                theme.title(),
            ));
        let inner = block.inner(rect);
        frame.render_widget(block, rect);
        if inner.height < 9 || inner.width < 20 {
            return;
        }
        let label_w = 8u16;
        let field_w = inner.width.saturating_sub(label_w + 1).min(40);
        // Each field's error goes on the line under it, at full width.
        let error_x = inner.x + 1;
        let error_w = inner.width.saturating_sub(2);
        let row = |n: u16| inner.y + n * 3;
        let label = |frame: &mut Frame, n: u16, text: &str, focus: bool| {
            let style = if focus { theme.title() } else { theme.muted() };
            frame.render_widget(
                Paragraph::new(Span::styled(format!(" {text}"), style)),
                Rect::new(inner.x, row(n), label_w, 1),
            );
        };
        let error = |frame: &mut Frame, n: u16, text: Option<String>| {
            if let Some(text) = text {
                frame.render_widget(
                    Paragraph::new(Span::styled(text, theme.danger())),
                    Rect::new(error_x, row(n) + 1, error_w, 1),
                );
            }
        };
        label(frame, 0, "Name", self.focus == Focus::Name);
        self.name.render(
            frame,
            Rect::new(inner.x + label_w, row(0), field_w, 1),
            theme.input(),
            Some(("alice", theme.placeholder())),
            self.focus == Focus::Name,
        );
        error(frame, 0, self.name_error());
        label(frame, 1, "Role", self.focus == Focus::Role);
        let roles: Vec<Span> = ROLES
            .iter()
            .enumerate()
            .flat_map(|(i, r)| {
                let style = if i == self.role {
                    if self.focus == Focus::Role {
                        theme.selected()
                    } else {
                        theme.tab_active()
                    }
                } else {
                    theme.muted()
                };
                [Span::styled(format!(" {r} "), style), Span::raw(" ")]
            })
            .collect();
        frame.render_widget(
            Paragraph::new(Line::from(roles)),
            Rect::new(inner.x + label_w, row(1), inner.width - label_w, 1),
        );
        label(frame, 2, "Email", self.focus == Focus::Email);
        self.email.render(
            frame,
            Rect::new(inner.x + label_w, row(2), field_w, 1),
            theme.input(),
            Some(("optional", theme.placeholder())),
            self.focus == Focus::Email,
        );
        error(frame, 2, self.email_error());
        let hints = hint_line(
            theme,
            &[
                ("Tab", "next field"),
                ("←→", "role"),
                ("Enter", "create"),
                ("Esc", "cancel"),
            ],
        );
        frame.render_widget(
            Paragraph::new(hints),
            Rect::new(inner.x, inner.y + inner.height - 1, inner.width, 1),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn typed(form: &mut UserForm, text: &str) {
        for c in text.chars() {
            form.handle(&Key::Char(c));
        }
    }

    #[test]
    fn validates_as_typed_and_submits_only_when_valid() {
        let mut form = UserForm::new();
        assert!(form.name_error().is_none(), "no error before typing");
        typed(&mut form, "bob smith");
        assert!(
            form.name_error()
                .is_some_and(|e| e.contains("letters, digits"))
        );
        for _ in 0..6 {
            form.handle(&Key::Backspace);
        }
        assert_eq!(form.name_error(), None);
        form.handle(&Key::Tab);
        form.handle(&Key::Right);
        form.handle(&Key::Tab);
        typed(&mut form, "bob@");
        assert!(form.email_error().is_some());
        assert!(
            form.handle(&Key::Enter).is_none(),
            "an invalid email blocks"
        );
        typed(&mut form, "example.com");
        match form.handle(&Key::Enter) {
            Some(FormOutcome::Submit(user)) => assert_eq!(
                user,
                NewUser {
                    name: "bob".into(),
                    role: Role::Auditor,
                    email: Some("bob@example.com".into()),
                }
            ),
            _ => panic!("the form should submit"),
        }
    }
}
