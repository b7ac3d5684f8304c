//! The new-permission form of the console: who (users, groups), where
//! (assets, nodes), which accounts, protocols and actions, until when, and
//! whether each connection waits for approval. Name lists complete with Tab
//! from the names that exist, and every field is checked as it is typed,
//! with the error under the form, by the same parsers `ops` uses.

use jiff::Timestamp;
use jiff::tz::TimeZone;
use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, Paragraph};

use super::super::field::Field;
use super::super::input::Key;
use super::super::theme::Theme;
use super::super::{centered, hint_line};
use crate::model::{self, AccountSpec, Actions, ProtocolSpec};
use crate::ops::{PermSpec, parse_time};

/// The names a permission may bind, for completion and checking.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Names {
    pub users: Vec<String>,
    pub groups: Vec<String>,
    pub assets: Vec<String>,
    pub nodes: Vec<String>,
}

const LABELS: [&str; 10] = [
    "Name",
    "Users",
    "Groups",
    "Assets",
    "Nodes",
    "Accounts",
    "Protocols",
    "Actions",
    "Until",
    "Approval",
];
const APPROVAL: usize = 9;

#[derive(Debug)]
pub(super) struct PermForm {
    fields: Vec<Field>,
    approval: bool,
    focus: usize,
    names: Names,
    tz: TimeZone,
}

pub(super) enum PermFormOutcome {
    Cancel,
    Submit(Box<PermSpec>),
}

/// Comma-separated names, trimmed, blanks dropped.
pub(super) fn list(text: &str) -> Vec<String> {
    text.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

impl PermForm {
    pub(super) fn new(names: Names, tz: TimeZone) -> PermForm {
        let mut fields: Vec<Field> = (0..APPROVAL).map(|_| Field::plain(400)).collect();
        for (at, default) in [(5, "@ALL"), (6, "all"), (7, "connect")] {
            if let Some(field) = fields.get_mut(at) {
                for c in default.chars() {
                    field.handle(&Key::Char(c));
                }
            }
        }
        PermForm {
            fields,
            approval: false,
            focus: 0,
            names,
            tz,
        }
    }

    pub(super) fn set_names(&mut self, names: Names) {
        self.names = names;
    }

    fn text(&self, at: usize) -> &str {
        self.fields.get(at).map_or("", |f| f.text().trim())
    }

    fn known(&self, at: usize) -> Option<(&'static str, &[String])> {
        match at {
            1 => Some(("user", &self.names.users)),
            2 => Some(("group", &self.names.groups)),
            3 => Some(("asset", &self.names.assets)),
            4 => Some(("node", &self.names.nodes)),
            _ => None,
        }
    }

    /// The first thing wrong with the form, as one line.
    fn error(&self) -> Option<String> {
        if !self.text(0).is_empty()
            && let Err(e) = model::check_name("name", self.text(0))
        {
            return Some(e.to_string());
        }
        for at in 1..=4 {
            if let Some((kind, known)) = self.known(at)
                && let Some(unknown) = list(self.text(at)).into_iter().find(|n| !known.contains(n))
            {
                return Some(format!(
                    "no {kind} is called {unknown:?} (Tab completes names)"
                ));
            }
        }
        if self.text(5).parse::<AccountSpec>().is_err() {
            return Some("accounts: @ALL, @INPUT, @USER or usernames, comma separated".into());
        }
        if let Err(e) = self.text(6).parse::<ProtocolSpec>() {
            return Some(e.to_string());
        }
        if let Err(e) = self.text(7).parse::<Actions>() {
            return Some(e.to_string());
        }
        if !self.text(8).is_empty()
            && let Err(e) = parse_time(self.text(8), &self.tz)
        {
            return Some(e.to_string());
        }
        None
    }

    fn complete(&mut self) -> bool {
        let Some((_, known)) = self.known(self.focus) else {
            return false;
        };
        let text = self.text(self.focus).to_string();
        let (head, last) = match text.rsplit_once(',') {
            Some((head, last)) => (format!("{head}, "), last.trim().to_string()),
            None => (String::new(), text.trim().to_string()),
        };
        if last.is_empty() {
            return false;
        }
        let Some(found) = known
            .iter()
            .find(|n| n.starts_with(&last) && **n != last)
            .cloned()
        else {
            return false;
        };
        if let Some(field) = self.fields.get_mut(self.focus) {
            field.clear();
            for c in format!("{head}{found}").chars() {
                field.handle(&Key::Char(c));
            }
        }
        true
    }

    fn spec(&self) -> Result<PermSpec, String> {
        // What is wrong with a field comes before what is still missing.
        if let Some(e) = self.error() {
            return Err(e);
        }
        if self.text(0).is_empty() {
            return Err("the permission needs a name".into());
        }
        if list(self.text(1)).is_empty() && list(self.text(2)).is_empty() {
            return Err("name at least one user or group".into());
        }
        if list(self.text(3)).is_empty() && list(self.text(4)).is_empty() {
            return Err("name at least one asset or node".into());
        }
        let until: Option<Timestamp> = match self.text(8) {
            "" => None,
            text => Some(parse_time(text, &self.tz).map_err(|e| e.to_string())?),
        };
        Ok(PermSpec {
            name: self.text(0).to_string(),
            users: list(self.text(1)),
            groups: list(self.text(2)),
            assets: list(self.text(3)),
            nodes: list(self.text(4)),
            accounts: self.text(5).parse().map_err(|_| "accounts".to_string())?,
            protocols: self
                .text(6)
                .parse()
                .map_err(|e: model::ParseError| e.to_string())?,
            actions: self
                .text(7)
                .parse()
                .map_err(|e: model::ParseError| e.to_string())?,
            valid_from: None,
            valid_until: until,
            comment: String::new(),
            require_approval: self.approval,
        })
    }

    /// The error to show: what is wrong now, or why Enter was refused.
    pub(super) fn handle(&mut self, key: &Key) -> Option<PermFormOutcome> {
        match key {
            Key::Esc | Key::Ctrl('c') => return Some(PermFormOutcome::Cancel),
            Key::Tab if self.complete() => {}
            Key::Tab | Key::Down => self.focus = (self.focus + 1) % LABELS.len(),
            Key::BackTab | Key::Up => self.focus = (self.focus + LABELS.len() - 1) % LABELS.len(),
            Key::Enter => {
                if let Ok(spec) = self.spec() {
                    return Some(PermFormOutcome::Submit(Box::new(spec)));
                }
                // Not ready: the line under the form already says why.
                self.focus = (self.focus + 1) % LABELS.len();
            }
            Key::Char(' ') if self.focus == APPROVAL => self.approval = !self.approval,
            other => {
                if let Some(field) = self.fields.get_mut(self.focus) {
                    field.handle(other);
                }
            }
        }
        None
    }

    pub(super) fn render(&self, frame: &mut Frame, area: Rect, theme: &Theme) {
        let height = LABELS.len() as u16 + 5;
        let rect = centered(area, 80, height);
        frame.render_widget(Clear, rect);
        let block = Block::default()
            .borders(Borders::ALL)
            .border_style(theme.border_focused())
            .title(Span::styled(" New permission ", theme.title()));
        let inner = block.inner(rect);
        frame.render_widget(block, rect);
        if inner.height < LABELS.len() as u16 + 3 || inner.width < 30 {
            return;
        }
        let label_w = 11u16;
        for (at, label) in LABELS.iter().enumerate() {
            let y = inner.y + at as u16;
            let focused = at == self.focus;
            frame.render_widget(
                Paragraph::new(Span::styled(
                    format!(" {label}"),
                    if focused {
                        theme.title()
                    } else {
                        theme.muted()
                    },
                )),
                Rect::new(inner.x, y, label_w, 1),
            );
            let field_area = Rect::new(inner.x + label_w, y, inner.width - label_w - 1, 1);
            if at == APPROVAL {
                let text = if self.approval {
                    "[x] each connection waits for an admin's approval"
                } else {
                    "[ ] each connection waits for an admin's approval"
                };
                let style = if focused {
                    theme.selected()
                } else {
                    theme.text()
                };
                frame.render_widget(Paragraph::new(Span::styled(text, style)), field_area);
                continue;
            }
            let hint = match at {
                1 | 2 => "comma separated; Tab completes",
                3 | 4 => "names or /node/paths; Tab completes",
                7 => "all, or connect,upload,download,delete,copy,paste,share,tunnel",
                8 => "optional: 2026-12-31 or 2026-12-31 18:00",
                _ => "",
            };
            if let Some(field) = self.fields.get(at) {
                field.render(
                    frame,
                    field_area,
                    theme.input(),
                    Some((hint, theme.placeholder())),
                    focused,
                );
            }
        }
        let y = inner.y + LABELS.len() as u16 + 1;
        let status = match self.spec() {
            Ok(_) => Line::from(Span::styled(" ready: Enter creates it", theme.success())),
            Err(e) => Line::from(Span::styled(format!(" {e}"), theme.danger())),
        };
        frame.render_widget(
            Paragraph::new(status),
            Rect::new(inner.x, y, inner.width, 1),
        );
        frame.render_widget(
            Paragraph::new(hint_line(
                theme,
                &[
                    ("Tab", "complete / next"),
                    ("Space", "toggle"),
                    ("Enter", "create"),
                    ("Esc", "cancel"),
                ],
            )),
            Rect::new(inner.x, y + 1, inner.width, 1),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn typed(form: &mut PermForm, text: &str) {
        for c in text.chars() {
            form.handle(&Key::Char(c));
        }
    }

    #[test]
    fn names_complete_and_are_checked_and_the_spec_is_what_was_typed() {
        let names = Names {
            users: vec!["alice".into(), "bob".into()],
            groups: vec!["ops".into()],
            assets: vec!["web1".into(), "web2".into()],
            nodes: vec!["/DEFAULT/prod".into()],
        };
        let mut form = PermForm::new(names, TimeZone::UTC);
        typed(&mut form, "web-ops");
        form.handle(&Key::Down);
        typed(&mut form, "al");
        form.handle(&Key::Tab);
        assert_eq!(form.text(1), "alice");
        typed(&mut form, ", bobx");
        assert!(form.error().is_some_and(|e| e.contains("\"bobx\"")));
        form.handle(&Key::Backspace);
        assert_eq!(form.error(), None);
        form.handle(&Key::Tab); // nothing to complete: next field
        form.handle(&Key::Tab);
        typed(&mut form, "we");
        form.handle(&Key::Tab);
        assert_eq!(form.text(3), "web1");
        for _ in 0..4 {
            form.handle(&Key::Down);
        }
        for _ in 0.."connect".len() {
            form.handle(&Key::Backspace);
        }
        typed(&mut form, "connect,upload");
        form.handle(&Key::Down);
        typed(&mut form, "2030-01-01");
        form.handle(&Key::Down);
        form.handle(&Key::Char(' '));
        match form.handle(&Key::Enter) {
            Some(PermFormOutcome::Submit(spec)) => {
                assert_eq!(spec.name, "web-ops");
                assert_eq!(spec.users, ["alice", "bob"]);
                assert_eq!(spec.assets, ["web1"]);
                assert_eq!(spec.actions.to_string(), "connect,upload");
                assert_eq!(
                    spec.valid_until.map(|t| t.to_string()),
                    Some("2030-01-01T00:00:00Z".into())
                );
                assert!(spec.require_approval);
            }
            _ => panic!("the form should submit: {:?}", form.spec().err()),
        }
    }
}
