//! Forms: labelled inputs, each checked as it is typed, with what is wrong
//! drawn beside the field and, in full, on the status line under the form.
//! The console's forms (users, assets, accounts, permissions, filters,
//! login ACLs) are all built from this one.
//!
//! A form knows its fields; whether the values make a whole (a permission
//! names at least one user or group) is the owner's to say, and is passed
//! to [`Form::render`] as the problem to show. Inputs are found by label.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, Paragraph};

use super::field::Field;
use super::input::Key;
use super::theme::Theme;
use super::{centered, hint_line, truncate};
use crate::vault::Secret;

/// A check of one field's text: what is wrong with it, in a few words.
pub(crate) type Check = Box<dyn Fn(&str) -> Result<(), String> + Send + Sync>;

enum Input {
    /// Free text, plain or masked.
    Text(Field),
    /// Names of one kind, comma separated; Tab completes the last one and
    /// a name that does not exist is an error.
    Names {
        field: Field,
        kind: &'static str,
        known: Vec<String>,
    },
    /// One of a few options: ← → or Space.
    Choice { options: Vec<String>, at: usize },
    /// On or off: Space.
    Toggle { on: bool, text: String },
}

struct Item {
    label: &'static str,
    input: Input,
    hint: String,
    check: Option<Check>,
    required: bool,
    /// Shown, not editable (the name of the account being edited).
    locked: bool,
}

impl Item {
    fn field(&self) -> Option<&Field> {
        match &self.input {
            Input::Text(field) | Input::Names { field, .. } => Some(field),
            _ => None,
        }
    }

    fn field_mut(&mut self) -> Option<&mut Field> {
        match &mut self.input {
            Input::Text(field) | Input::Names { field, .. } => Some(field),
            _ => None,
        }
    }

    fn text(&self) -> &str {
        self.field().map_or("", |f| f.text().trim())
    }

    /// What is wrong with this field; `tried` adds "required" to empty
    /// required fields (not shown before the first Enter).
    fn error(&self, tried: bool) -> Option<String> {
        if self.locked {
            return None;
        }
        let text = self.text();
        if text.is_empty() && self.field().is_some() {
            return (self.required && tried).then(|| "required".to_string());
        }
        if let Input::Names { kind, known, .. } = &self.input
            && let Some(unknown) = list(text).into_iter().find(|n| !known.contains(n))
        {
            return Some(format!("no {kind} is called {unknown:?}"));
        }
        self.check.as_ref().and_then(|check| check(text).err())
    }

    /// Completes the last name of a names field; whether it did.
    fn complete(&mut self) -> bool {
        let Input::Names { field, known, .. } = &mut self.input else {
            return false;
        };
        let text = field.text().to_string();
        let (head, last) = match text.rsplit_once(',') {
            Some((head, last)) => (format!("{}, ", head.trim_end()), last.trim()),
            None => (String::new(), text.trim()),
        };
        if last.is_empty() {
            return false;
        }
        let Some(found) = known.iter().find(|n| n.starts_with(last) && *n != last) else {
            return false;
        };
        field.set(&format!("{head}{found}"));
        true
    }
}

/// Comma-separated names, trimmed, blanks dropped.
pub(crate) fn list(text: &str) -> Vec<String> {
    text.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

/// What a key did to a form.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FormKey {
    Cancel,
    /// Enter with every field valid: the owner builds what it makes.
    Submit,
}

pub(crate) struct Form {
    title: String,
    /// What Enter does, for the hints: "create", "save".
    action: &'static str,
    items: Vec<Item>,
    focus: usize,
    /// Enter was pressed: empty required fields now say so.
    tried: bool,
}

impl std::fmt::Debug for Form {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the values: a form may hold a password.
        f.debug_struct("Form")
            .field("title", &self.title)
            .field("focus", &self.focus)
            .finish_non_exhaustive()
    }
}

impl Form {
    pub(crate) fn new(title: impl Into<String>, action: &'static str) -> Form {
        Form {
            title: title.into(),
            action,
            items: Vec::new(),
            focus: 0,
            tried: false,
        }
    }

    fn push(mut self, label: &'static str, input: Input, hint: &str) -> Form {
        self.items.push(Item {
            label,
            input,
            hint: hint.to_string(),
            check: None,
            required: false,
            locked: false,
        });
        self
    }

    pub(crate) fn text(self, label: &'static str, max_chars: usize, hint: &str) -> Form {
        self.push(label, Input::Text(Field::plain(max_chars)), hint)
    }

    /// A masked field: drawn as `*`, taken out with [`Form::take_secret`].
    pub(crate) fn secret(self, label: &'static str, field: Field, hint: &str) -> Form {
        self.push(label, Input::Text(field), hint)
    }

    pub(crate) fn names(self, label: &'static str, kind: &'static str, hint: &str) -> Form {
        let input = Input::Names {
            field: Field::plain(2000),
            kind,
            known: Vec::new(),
        };
        self.push(label, input, hint)
    }

    pub(crate) fn choice(self, label: &'static str, options: &[&str]) -> Form {
        let input = Input::Choice {
            options: options.iter().map(|o| o.to_string()).collect(),
            at: 0,
        };
        self.push(label, input, "")
    }

    pub(crate) fn toggle(self, label: &'static str, text: &str) -> Form {
        let input = Input::Toggle {
            on: false,
            text: text.to_string(),
        };
        self.push(label, input, "")
    }

    fn last(&mut self) -> Option<&mut Item> {
        self.items.last_mut()
    }

    /// Checks the last input added.
    pub(crate) fn check(
        mut self,
        check: impl Fn(&str) -> Result<(), String> + Send + Sync + 'static,
    ) -> Form {
        if let Some(item) = self.last() {
            item.check = Some(Box::new(check));
        }
        self
    }

    /// The last input added must not be left empty.
    pub(crate) fn required(mut self) -> Form {
        if let Some(item) = self.last() {
            item.required = true;
        }
        self
    }

    /// The last input added is shown but cannot be changed.
    pub(crate) fn locked(mut self) -> Form {
        if let Some(item) = self.last() {
            item.locked = true;
        }
        if self.items.len() == self.focus + 1 {
            self.focus += 1;
        }
        self
    }

    /// Fills in the last input: text, the option of that name, or "on".
    pub(crate) fn value(mut self, value: &str) -> Form {
        if let Some(item) = self.last() {
            match &mut item.input {
                Input::Text(field) | Input::Names { field, .. } => field.set(value),
                Input::Choice { options, at } => {
                    *at = options.iter().position(|o| o == value).unwrap_or(*at);
                }
                Input::Toggle { on, .. } => *on = value == "on",
            }
        }
        self
    }

    /// Fills in the last toggle.
    pub(crate) fn on(self, on: bool) -> Form {
        self.value(if on { "on" } else { "off" })
    }

    /// The names a names field of `kind` may take.
    pub(crate) fn set_known(&mut self, of: &str, names: &[String]) {
        for item in &mut self.items {
            if let Input::Names { kind, known, .. } = &mut item.input
                && *kind == of
            {
                known.clear();
                known.extend_from_slice(names);
            }
        }
    }

    fn item(&self, label: &str) -> Option<&Item> {
        self.items.iter().find(|i| i.label == label)
    }

    /// The trimmed text of a field ("" for another kind of input).
    pub(crate) fn get(&self, label: &str) -> &str {
        self.item(label).map_or("", Item::text)
    }

    /// The names of a names (or text) field.
    pub(crate) fn get_list(&self, label: &str) -> Vec<String> {
        list(self.get(label))
    }

    /// The chosen option of a choice.
    pub(crate) fn chosen(&self, label: &str) -> &str {
        match self.item(label).map(|i| &i.input) {
            Some(Input::Choice { options, at }) => options.get(*at).map_or("", String::as_str),
            _ => "",
        }
    }

    pub(crate) fn is_on(&self, label: &str) -> bool {
        matches!(
            self.item(label).map(|i| &i.input),
            Some(Input::Toggle { on: true, .. })
        )
    }

    /// Moves a (masked) field's text out, leaving it empty.
    pub(crate) fn take_secret(&mut self, label: &str) -> Secret<String> {
        self.items
            .iter_mut()
            .find(|i| i.label == label)
            .and_then(Item::field_mut)
            .map_or_else(|| Secret::new(String::new()), Field::take_secret)
    }

    /// Whether a field is empty (a secret is checked without reading it).
    pub(crate) fn is_blank(&self, label: &str) -> bool {
        self.item(label)
            .and_then(Item::field)
            .is_none_or(|f| f.text().trim().is_empty())
    }

    /// The first thing wrong with a field, as "Label: what".
    pub(crate) fn error(&self) -> Option<String> {
        self.items.iter().find_map(|item| {
            item.error(true)
                .map(|e| format!("{}: {e}", item.label.to_lowercase()))
        })
    }

    fn step(&mut self, forward: bool) {
        let n = self.items.len();
        for _ in 0..n {
            self.focus = if forward {
                (self.focus + 1) % n
            } else {
                (self.focus + n - 1) % n
            };
            if self.items.get(self.focus).is_some_and(|i| !i.locked) {
                return;
            }
        }
    }

    pub(crate) fn handle(&mut self, key: &Key) -> Option<FormKey> {
        if self.items.is_empty() {
            return Some(FormKey::Cancel);
        }
        let focus = self.focus;
        match key {
            Key::Esc | Key::Ctrl('c') => return Some(FormKey::Cancel),
            Key::Tab if self.items.get_mut(focus).is_some_and(Item::complete) => {}
            Key::Tab | Key::Down => self.step(true),
            Key::BackTab | Key::Up => self.step(false),
            Key::Enter => {
                self.tried = true;
                match self.items.iter().position(|i| i.error(true).is_some()) {
                    None => return Some(FormKey::Submit),
                    Some(at) => self.focus = at,
                }
            }
            other => {
                let item = self.items.get_mut(focus).filter(|i| !i.locked)?;
                match &mut item.input {
                    Input::Text(field) | Input::Names { field, .. } => {
                        field.handle(other);
                    }
                    Input::Choice { options, at } => {
                        let n = options.len().max(1);
                        match other {
                            Key::Left => *at = (*at + n - 1) % n,
                            Key::Right | Key::Char(' ') => *at = (*at + 1) % n,
                            _ => {}
                        }
                    }
                    Input::Toggle { on, .. } => {
                        if matches!(other, Key::Char(' ') | Key::Left | Key::Right) {
                            *on = !*on;
                        }
                    }
                }
            }
        }
        None
    }

    /// Draws the form centred in `area`. `problem` is what keeps the values
    /// from making a whole (from the owner), shown when no field is wrong.
    pub(crate) fn render(
        &self,
        frame: &mut Frame,
        area: Rect,
        theme: &Theme,
        problem: Option<String>,
    ) {
        let rows = self.items.len() as u16;
        let rect = centered(area, 84, rows + 5);
        frame.render_widget(Clear, rect);
        let block = Block::default()
            .borders(Borders::ALL)
            .border_style(theme.border_focused())
            .title(Span::styled(format!(" {} ", self.title), theme.title()));
        let inner = block.inner(rect);
        frame.render_widget(block, rect);
        if inner.height < 4 || inner.width < 30 {
            return;
        }
        // Fields, a blank line, the status line and the hints.
        let visible = usize::from(inner.height - 3).min(self.items.len());
        let first = super::scroll(0, self.focus, visible, self.items.len());
        let label_w = self
            .items
            .iter()
            .map(|i| i.label.len() as u16 + 2)
            .max()
            .unwrap_or(8)
            .min(14);
        let field_w = (inner.width - label_w).min(44);
        let error_x = inner.x + label_w + field_w + 1;
        let error_w = (inner.x + inner.width).saturating_sub(error_x);
        for (row, (at, item)) in self
            .items
            .iter()
            .enumerate()
            .skip(first)
            .take(visible)
            .enumerate()
        {
            let y = inner.y + row as u16;
            let focused = at == self.focus;
            let label_style = if focused {
                theme.title()
            } else {
                theme.muted()
            };
            frame.render_widget(
                Paragraph::new(Span::styled(format!(" {}", item.label), label_style)),
                Rect::new(inner.x, y, label_w, 1),
            );
            let area = Rect::new(inner.x + label_w, y, field_w, 1);
            match &item.input {
                Input::Text(field) | Input::Names { field, .. } => {
                    let style = if item.locked {
                        theme.muted()
                    } else {
                        theme.input()
                    };
                    field.render(
                        frame,
                        area,
                        style,
                        Some((item.hint.as_str(), theme.placeholder())),
                        focused,
                    );
                }
                Input::Choice { options, at } => {
                    let spans: Vec<Span> = options
                        .iter()
                        .enumerate()
                        .flat_map(|(i, o)| {
                            let style = match (i == *at, focused) {
                                (true, true) => theme.selected(),
                                (true, false) => theme.tab_active(),
                                _ => theme.muted(),
                            };
                            [Span::styled(format!(" {o} "), style), Span::raw(" ")]
                        })
                        .collect();
                    let wide = Rect::new(area.x, y, inner.width - label_w, 1);
                    frame.render_widget(Paragraph::new(Line::from(spans)), wide);
                }
                Input::Toggle { on, text } => {
                    let mark = if *on { "[x]" } else { "[ ]" };
                    let style = if focused {
                        theme.selected()
                    } else {
                        theme.text()
                    };
                    let wide = Rect::new(area.x, y, inner.width - label_w, 1);
                    frame.render_widget(
                        Paragraph::new(Span::styled(format!("{mark} {text}"), style)),
                        wide,
                    );
                }
            }
            if let Some(error) = item.error(self.tried).filter(|_| error_w > 3) {
                frame.render_widget(
                    Paragraph::new(Span::styled(
                        truncate(&error, usize::from(error_w)),
                        theme.danger(),
                    )),
                    Rect::new(error_x, y, error_w, 1),
                );
            }
        }
        let y = inner.y + inner.height - 2;
        let status = match self.error().or(problem) {
            Some(e) => Span::styled(format!(" {e}"), theme.danger()),
            None => Span::styled(format!(" ready: Enter to {}", self.action), theme.success()),
        };
        frame.render_widget(
            Paragraph::new(Line::from(status)),
            Rect::new(inner.x, y, inner.width, 1),
        );
        frame.render_widget(
            Paragraph::new(hint_line(
                theme,
                &[
                    ("Tab", "complete / next"),
                    ("←→ Space", "choose"),
                    ("Enter", self.action),
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

    fn typed(form: &mut Form, text: &str) {
        for c in text.chars() {
            form.handle(&Key::Char(c));
        }
    }

    fn sample() -> Form {
        let mut form = Form::new("New thing", "create")
            .text("Name", 64, "web1")
            .required()
            .check(|t| {
                (!t.contains(' '))
                    .then_some(())
                    .ok_or_else(|| "no spaces".to_string())
            })
            .names("Users", "user", "alice, bob")
            .choice("Kind", &["one", "two", "three"])
            .value("two")
            .toggle("Active", "in use")
            .on(true);
        form.set_known("user", &["alice".into(), "albert".into(), "bob".into()]);
        form
    }

    #[test]
    fn fields_are_checked_as_typed_and_enter_goes_to_the_first_wrong_one() {
        let mut form = sample();
        assert_eq!(form.error(), Some("name: required".into()));
        assert_eq!(form.items[0].error(false), None, "not before Enter");
        typed(&mut form, "web 1");
        assert_eq!(form.error(), Some("name: no spaces".into()));
        form.handle(&Key::Tab);
        typed(&mut form, "bob, alb");
        assert!(form.handle(&Key::Tab).is_none());
        assert_eq!(form.get("Users"), "bob, albert");
        typed(&mut form, ", carol");
        assert_eq!(form.handle(&Key::Enter), None);
        assert_eq!(form.focus, 0, "Enter moved to the first wrong field");
        for _ in 0..2 {
            form.handle(&Key::Backspace);
        }
        typed(&mut form, "1");
        assert_eq!(form.get("Name"), "web1");
        assert_eq!(
            form.error(),
            Some("users: no user is called \"carol\"".into())
        );
        form.handle(&Key::Down);
        for _ in 0..", carol".len() {
            form.handle(&Key::Backspace);
        }
        form.handle(&Key::Down);
        form.handle(&Key::Right);
        form.handle(&Key::Down);
        form.handle(&Key::Char(' '));
        assert_eq!(form.handle(&Key::Enter), Some(FormKey::Submit));
        assert_eq!(form.get_list("Users"), ["bob", "albert"]);
        assert_eq!(form.chosen("Kind"), "three");
        assert!(!form.is_on("Active"));
    }

    #[test]
    fn a_locked_field_is_skipped_and_kept() {
        let mut form = Form::new("Edit", "save")
            .text("Name", 64, "")
            .value("web1")
            .locked()
            .text("Address", 64, "")
            .value("10.0.0.1");
        assert_eq!(form.focus, 1, "focus starts after the locked field");
        form.handle(&Key::Down);
        assert_eq!(form.focus, 1, "the locked field is never focused");
        typed(&mut form, "0");
        assert_eq!(form.get("Name"), "web1");
        assert_eq!(form.get("Address"), "10.0.0.10");
    }

    #[test]
    fn a_secret_is_taken_out_and_never_debug_printed() {
        let mut form = Form::new("Account", "save").secret(
            "Secret",
            Field::masked(64).keep_lines(),
            "typed or pasted",
        );
        form.handle(&Key::Paste("line one\r\nline two".into()));
        assert!(!format!("{form:?}").contains("line"));
        assert!(!form.is_blank("Secret"));
        let secret = form.take_secret("Secret");
        assert_eq!(secret.expose(), "line one\nline two");
        assert!(form.is_blank("Secret"));
    }
}
