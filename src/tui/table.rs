//! A list of rows with columns, shared by the console and audit screens:
//! a count in the title, a filter (`/`), sorting by any column (`s`, `S`),
//! and a selection that survives a refresh of the rows.
//!
//! Only the rows on screen are drawn, so a refresh of a thousand audit rows
//! once a second costs one sort and one filter pass.

use std::cell::Cell;
use std::cmp::Ordering;

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Paragraph};

use super::field::Field;
use super::input::Key;
use super::theme::{Role, Theme};
use super::{pad, scroll};

/// What a key did to the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Handled {
    Consumed,
    NotConsumed,
}

/// A column: its title and the width it asks for (the last one takes what
/// is left).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Column {
    pub title: &'static str,
    pub width: u16,
}

pub(crate) const fn col(title: &'static str, width: u16) -> Column {
    Column { title, width }
}

/// One row: a key that identifies it across refreshes (a session id, a
/// user name), its cells, and what to sort each cell by.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Row {
    pub key: String,
    cells: Vec<String>,
    /// Numeric sort keys, by column; a text cell sorts by its text.
    nums: Vec<Option<i64>>,
    pub role: Option<Role>,
}

impl Row {
    pub(crate) fn new(key: impl Into<String>) -> Row {
        Row {
            key: key.into(),
            cells: Vec::new(),
            nums: Vec::new(),
            role: None,
        }
    }

    pub(crate) fn text(mut self, text: impl Into<String>) -> Row {
        self.cells.push(text.into());
        self.nums.push(None);
        self
    }

    /// A cell shown as `text` and sorted by `value` (sizes, durations).
    pub(crate) fn num(mut self, text: impl Into<String>, value: i64) -> Row {
        self.cells.push(text.into());
        self.nums.push(Some(value));
        self
    }

    pub(crate) fn styled(mut self, role: Role) -> Row {
        self.role = Some(role);
        self
    }

    pub(crate) fn cell(&self, column: usize) -> &str {
        self.cells.get(column).map_or("", String::as_str)
    }

    fn matches(&self, needle: &str) -> bool {
        self.cells.iter().any(|c| c.to_lowercase().contains(needle))
    }

    fn compare(&self, other: &Row, column: usize) -> Ordering {
        match (
            self.nums.get(column).copied().flatten(),
            other.nums.get(column).copied().flatten(),
        ) {
            (Some(a), Some(b)) => a.cmp(&b),
            _ => self.cell(column).cmp(other.cell(column)),
        }
    }
}

#[derive(Debug)]
pub(crate) struct Table {
    title: String,
    columns: Vec<Column>,
    rows: Vec<Row>,
    /// Indexes into `rows`, filtered and sorted.
    visible: Vec<usize>,
    selected: usize,
    filter: Field,
    filtering: bool,
    /// Column and descending.
    sort: Option<(usize, bool)>,
    /// Set by the last render: the first row drawn and how many fit.
    offset: Cell<usize>,
    height: Cell<usize>,
    empty: String,
    /// Shown after the count (`Seen (3) · indexed up to 12:03`).
    note: String,
}

impl Table {
    pub(crate) fn new(title: impl Into<String>, columns: Vec<Column>) -> Table {
        Table {
            title: title.into(),
            columns,
            rows: Vec::new(),
            visible: Vec::new(),
            selected: 0,
            filter: Field::plain(80),
            filtering: false,
            sort: None,
            offset: Cell::new(0),
            height: Cell::new(1),
            empty: "nothing to show".to_string(),
            note: String::new(),
        }
    }

    pub(crate) fn set_title(&mut self, title: String) {
        self.title = title;
    }

    pub(crate) fn set_note(&mut self, note: String) {
        self.note = note;
    }

    /// The text shown when there are no rows at all.
    pub(crate) fn with_empty(mut self, text: impl Into<String>) -> Table {
        self.empty = text.into();
        self
    }

    /// Replaces the rows, keeping the selection on the same key if it is
    /// still there.
    pub(crate) fn set_rows(&mut self, rows: Vec<Row>) {
        let key = self.selected_row().map(|r| r.key.clone());
        self.rows = rows;
        self.refilter();
        if let Some(key) = key
            && let Some(at) = self
                .visible
                .iter()
                .position(|&i| self.rows.get(i).is_some_and(|r| r.key == key))
        {
            self.selected = at;
        }
    }

    pub(crate) fn selected_row(&self) -> Option<&Row> {
        self.visible
            .get(self.selected)
            .and_then(|&i| self.rows.get(i))
    }

    /// Whether typed characters go to the filter (so the screen must not
    /// take them as commands).
    pub(crate) fn is_filtering(&self) -> bool {
        self.filtering
    }

    pub(crate) fn counts(&self) -> (usize, usize) {
        (self.visible.len(), self.rows.len())
    }

    fn refilter(&mut self) {
        let needle = self.filter.text().to_lowercase();
        let mut visible: Vec<usize> = (0..self.rows.len())
            .filter(|&i| needle.is_empty() || self.rows.get(i).is_some_and(|r| r.matches(&needle)))
            .collect();
        if let Some((column, descending)) = self.sort {
            visible.sort_by(|&a, &b| {
                let order = match (self.rows.get(a), self.rows.get(b)) {
                    (Some(a), Some(b)) => a.compare(b, column),
                    _ => Ordering::Equal,
                };
                if descending { order.reverse() } else { order }
            });
        }
        self.visible = visible;
        self.selected = self.selected.min(self.visible.len().saturating_sub(1));
    }

    pub(crate) fn handle(&mut self, key: &Key) -> Handled {
        if self.filtering {
            match key {
                Key::Enter | Key::Down | Key::Up | Key::Tab => self.filtering = false,
                Key::Esc => {
                    self.filtering = false;
                    self.filter.clear();
                    self.refilter();
                }
                other => {
                    if self.filter.handle(other) {
                        self.selected = 0;
                        self.refilter();
                    }
                }
            }
            return Handled::Consumed;
        }
        let page = self.height.get().max(1) as isize;
        match key {
            Key::Up | Key::Ctrl('p') => self.move_by(-1),
            Key::Down | Key::Ctrl('n') => self.move_by(1),
            Key::PageUp => self.move_by(-page),
            Key::PageDown => self.move_by(page),
            Key::Home => self.move_by(isize::MIN),
            Key::End => self.move_by(isize::MAX),
            Key::Char('/') => self.filtering = true,
            Key::Esc if !self.filter.is_empty() => {
                self.filter.clear();
                self.refilter();
            }
            Key::Char('s') => {
                let next = match self.sort {
                    None => Some((0, false)),
                    Some((c, d)) if c + 1 < self.columns.len() => Some((c + 1, d)),
                    Some(_) => None,
                };
                self.sort = next;
                self.refilter();
            }
            Key::Char('S') => {
                self.sort = Some(match self.sort {
                    None => (0, true),
                    Some((c, d)) => (c, !d),
                });
                self.refilter();
            }
            _ => return Handled::NotConsumed,
        }
        Handled::Consumed
    }

    fn move_by(&mut self, delta: isize) {
        let len = self.visible.len();
        if len > 0 {
            self.selected = self.selected.saturating_add_signed(delta).min(len - 1);
        }
    }

    /// The title with its count: `Users (3 of 12)`.
    fn heading(&self) -> String {
        let (shown, total) = self.counts();
        let count = if shown == total {
            format!("{total}")
        } else {
            format!("{shown} of {total}")
        };
        let sort = match self.sort {
            Some((c, d)) => format!(
                ", by {}{}",
                self.columns.get(c).map_or("", |c| c.title).to_lowercase(),
                if d { " ↓" } else { " ↑" }
            ),
            None => String::new(),
        };
        if self.note.is_empty() {
            format!(" {} ({count}{sort}) ", self.title)
        } else {
            format!(" {} ({count}{sort}) · {} ", self.title, self.note)
        }
    }

    pub(crate) fn render(&self, frame: &mut Frame, area: Rect, theme: &Theme, focused: bool) {
        let block = Block::default()
            .borders(Borders::ALL)
            .border_style(if focused {
                theme.border_focused()
            } else {
                theme.border()
            })
            .title(Span::styled(self.heading(), theme.title()));
        let inner = block.inner(area);
        frame.render_widget(block, area);
        if inner.height < 2 {
            return;
        }
        // The filter line, when there is one, takes the last line.
        let show_filter = self.filtering || !self.filter.is_empty();
        let list_h = inner.height - 1 - u16::from(show_filter);
        let widths = self.widths(inner.width);
        let header = self.line(
            self.columns.iter().map(|c| c.title.to_string()).collect(),
            &widths,
        );
        frame.render_widget(
            Paragraph::new(Line::from(Span::styled(header, theme.muted()))),
            Rect::new(inner.x, inner.y, inner.width, 1),
        );
        let body = Rect::new(inner.x, inner.y + 1, inner.width, list_h);
        let height = usize::from(list_h);
        self.height.set(height);
        let offset = scroll(self.offset.get(), self.selected, height, self.visible.len());
        self.offset.set(offset);
        if self.visible.is_empty() {
            let text = if self.rows.is_empty() {
                self.empty.clone()
            } else {
                format!("no row matches \"{}\"", self.filter.text())
            };
            frame.render_widget(
                Paragraph::new(Span::styled(format!(" {text}"), theme.muted())),
                body,
            );
        } else {
            let lines: Vec<Line> = self
                .visible
                .iter()
                .enumerate()
                .skip(offset)
                .take(height)
                .filter_map(|(at, &i)| self.rows.get(i).map(|r| (at, r)))
                .map(|(at, row)| {
                    let text = self.line(row.cells.clone(), &widths);
                    let style = if at == self.selected {
                        if focused {
                            theme.selected()
                        } else {
                            theme.selected_unfocused()
                        }
                    } else {
                        row.role.map_or(theme.text(), |r| theme.style(r))
                    };
                    Line::from(Span::styled(text, style))
                })
                .collect();
            frame.render_widget(Paragraph::new(lines), body);
        }
        if show_filter {
            let y = inner.y + inner.height - 1;
            let label = " Filter: ";
            frame.render_widget(
                Paragraph::new(Span::styled(label, theme.muted())),
                Rect::new(inner.x, y, label.len() as u16, 1),
            );
            let x = inner.x + label.len() as u16;
            self.filter.render(
                frame,
                Rect::new(x, y, inner.width.saturating_sub(label.len() as u16), 1),
                theme.input(),
                None,
                self.filtering,
            );
        }
    }

    /// Column widths for `width` cells: each asks for its width, the last
    /// takes the rest; narrow terminals shrink the earlier ones evenly.
    fn widths(&self, width: u16) -> Vec<usize> {
        let n = self.columns.len().max(1);
        let asked: usize = self.columns.iter().map(|c| usize::from(c.width) + 1).sum();
        let width = usize::from(width);
        let mut widths: Vec<usize> = self
            .columns
            .iter()
            .map(|c| {
                let w = usize::from(c.width);
                if asked > width {
                    (w * width / asked.max(1)).max(3)
                } else {
                    w
                }
            })
            .collect();
        let used: usize = widths.iter().take(n - 1).map(|w| w + 1).sum();
        if let Some(last) = widths.last_mut() {
            *last = width.saturating_sub(used).max(1);
        }
        widths
    }

    fn line(&self, cells: Vec<String>, widths: &[usize]) -> String {
        let mut out = String::new();
        for (i, w) in widths.iter().enumerate() {
            let cell = cells.get(i).map_or("", String::as_str);
            out.push_str(&pad(cell, *w));
            if i + 1 < widths.len() {
                out.push(' ');
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table() -> Table {
        let mut t = Table::new("Users", vec![col("Name", 10), col("Size", 8)]);
        t.set_rows(vec![
            Row::new("b").text("bob").num("2 KiB", 2048),
            Row::new("a").text("alice").num("10 B", 10),
            Row::new("c").text("carol").num("1 MiB", 1 << 20),
        ]);
        t
    }

    fn keys(t: &mut Table, text: &str) {
        for c in text.chars() {
            t.handle(&Key::Char(c));
        }
    }

    #[test]
    fn filters_sorts_and_keeps_the_selection_across_a_refresh() {
        let mut t = table();
        assert_eq!(t.counts(), (3, 3));
        keys(&mut t, "/ca");
        assert!(t.is_filtering());
        assert_eq!(t.counts(), (1, 3));
        assert_eq!(t.selected_row().map(|r| r.key.as_str()), Some("c"));
        t.handle(&Key::Enter);
        assert!(!t.is_filtering());
        t.handle(&Key::Esc);
        assert_eq!(t.counts(), (3, 3));
        // Sorting by the size column sorts numerically, not by the text.
        keys(&mut t, "ss");
        let order: Vec<&str> = t.visible.iter().map(|&i| t.rows[i].key.as_str()).collect();
        assert_eq!(order, ["a", "b", "c"]);
        keys(&mut t, "S");
        t.handle(&Key::Home);
        assert_eq!(t.selected_row().map(|r| r.key.as_str()), Some("c"));
        t.handle(&Key::Down);
        assert_eq!(t.selected_row().map(|r| r.key.as_str()), Some("b"));
        // A refresh that reorders keeps bob selected.
        t.set_rows(vec![
            Row::new("d").text("dave").num("1 GiB", 1 << 30),
            Row::new("b").text("bob").num("2 KiB", 2048),
        ]);
        assert_eq!(t.selected_row().map(|r| r.key.as_str()), Some("b"));
        assert_eq!(t.heading(), " Users (2, by size ↓) ");
    }
}
