//! A user's SSH public keys, in a box over the Users list: `a` adds one
//! (pasted as an authorized_keys line), `x` removes the selected one.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, Paragraph};

use super::super::input::Key;
use super::super::theme::Theme;
use super::super::{centered, hint_line, pad, truncate};
use crate::model::UserKey;
use crate::ops::UserView;

#[derive(Debug)]
pub(super) struct Keys {
    user: String,
    keys: Vec<UserKey>,
    at: usize,
}

/// What a key press in the box asks for.
pub(super) enum KeysKey {
    Stay,
    Close,
    Add(String),
    Remove { user: String, fingerprint: String },
}

impl Keys {
    pub(super) fn new(view: UserView) -> Keys {
        Keys {
            user: view.user.name,
            keys: view.keys,
            at: 0,
        }
    }

    pub(super) fn handle(&mut self, key: &Key) -> KeysKey {
        match key {
            Key::Esc | Key::Char('q') | Key::Ctrl('c') => KeysKey::Close,
            Key::Up | Key::Char('k') => {
                self.at = self.at.saturating_sub(1);
                KeysKey::Stay
            }
            Key::Down | Key::Char('j') => {
                self.at = (self.at + 1).min(self.keys.len().saturating_sub(1));
                KeysKey::Stay
            }
            Key::Char('a') => KeysKey::Add(self.user.clone()),
            Key::Char('x') | Key::Delete => match self.keys.get(self.at) {
                Some(k) => KeysKey::Remove {
                    user: self.user.clone(),
                    fingerprint: k.fingerprint.clone(),
                },
                None => KeysKey::Stay,
            },
            _ => KeysKey::Stay,
        }
    }

    pub(super) fn render(&self, frame: &mut Frame, area: Rect, theme: &Theme) {
        let height = (self.keys.len().max(1) as u16 + 5).min(area.height);
        let rect = centered(area, 84, height);
        frame.render_widget(Clear, rect);
        let block = Block::default()
            .borders(Borders::ALL)
            .border_style(theme.border_focused())
            .title(Span::styled(
                format!(" Public keys of {} ({}) ", self.user, self.keys.len()),
                theme.title(),
            ));
        let inner = block.inner(rect);
        frame.render_widget(block, rect);
        let width = usize::from(inner.width);
        let mut lines: Vec<Line> = if self.keys.is_empty() {
            vec![Line::from(Span::styled(
                " no keys: this user logs in with a password",
                theme.muted(),
            ))]
        } else {
            self.keys
                .iter()
                .enumerate()
                .map(|(i, k)| {
                    let text = format!(
                        " {} {} {} {}",
                        pad(&k.algorithm, 12),
                        pad(&k.fingerprint, 51),
                        k.created_at.strftime("%Y-%m-%d"),
                        k.comment
                    );
                    let style = if i == self.at {
                        theme.selected()
                    } else {
                        theme.text()
                    };
                    Line::from(Span::styled(truncate(&text, width), style))
                })
                .collect()
        };
        lines.push(Line::default());
        lines.push(hint_line(
            theme,
            &[("a", "add"), ("x", "remove"), ("Esc", "close")],
        ));
        frame.render_widget(Paragraph::new(lines), inner);
    }
}
