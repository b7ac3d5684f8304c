//! Drawing the desk: the header with the views, the tab bar, the lists or
//! the dashboard, the key hints and the keys `?` lists; each box over them
//! is drawn by `dialog.rs`.

use ratatui::Frame;
use ratatui::layout::{Alignment, Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Paragraph};

use super::super::theme::Theme;
use super::super::{hint_line, severity_style};
use super::{Desk, Tab, View, dashboard};
use crate::model::Role;

/// Keys listed by `?` on every tab of the console and audit views.
const HELP: &[(&str, &str)] = &[
    ("F2 F3 F4", "workbench / console / audit (Ctrl-T cycles)"),
    ("Tab 1-9", "next tab / tab by number"),
    ("↑ ↓ PgUp PgDn", "move; Home End first / last"),
    ("/", "filter the list; Esc clears"),
    ("s S", "sort by the next column / reverse"),
    ("r", "reload the list"),
    ("F5", "commands waiting for approval (a approve, d deny)"),
    ("q", "quit"),
];

/// The keys of one tab, listed by `?` after [`HELP`].
fn tab_help(tab: Tab) -> &'static [(&'static str, &'static str)] {
    match tab {
        Tab::Dashboard => &[],
        Tab::Live => &[
            ("Enter m", "monitor the session (read-only)"),
            ("j", "join it: your keys go to the session; Ctrl-] leaves"),
            ("k", "end it, with a reason the person sees"),
            ("L", "end every session of its user (force logout)"),
        ],
        Tab::Sessions => &[
            ("Enter", "replay the recording"),
            ("l", "a one-time link to the recording (asciinema-player)"),
            ("f", "find a text that appeared on a screen"),
            ("t", "narrow to a user, an asset, a time range"),
        ],
        Tab::Commands => &[
            ("Enter", "replay the session at that command"),
            ("t", "narrow to a user, an asset, a time range"),
        ],
        Tab::Transfers | Tab::Logins => &[("t", "narrow to a user, an asset, a time range")],
        Tab::Operations => &[
            ("Enter", "what changed: the whole before and after"),
            ("t", "narrow to a user (the actor) and a time range"),
        ],
        Tab::Seen => &[
            ("Enter", "replay the session at that moment"),
            ("f", "find another text"),
        ],
        Tab::Users => &[
            ("a", "add a user"),
            ("e Enter", "edit role, email, groups, expiry"),
            ("K", "public keys (a add, x remove)"),
            ("d u", "disable or enable / unlock"),
            ("p M", "new one-time password / reset MFA"),
            ("w", "what can this user reach"),
            ("x Del", "remove the user"),
        ],
        Tab::Groups => &[
            ("a", "add a group"),
            ("m r", "add / remove members"),
            ("x Del", "remove the group"),
        ],
        Tab::Nodes => &[
            ("a", "add a node"),
            ("e Enter", "rename or move it with everything under it"),
            ("x Del", "remove it (refused while it holds assets)"),
        ],
        Tab::Assets => &[
            ("a e", "add / edit an asset"),
            ("t", "test the connection (then t: trust the key)"),
            ("w", "who can reach this asset"),
            ("x Del", "remove it with its accounts"),
        ],
        Tab::Accounts => &[
            ("a e", "add / edit an account (secret typed masked)"),
            ("t", "test the connection with this account"),
            ("x Del", "remove it"),
        ],
        Tab::Permissions | Tab::Filters | Tab::Acls => &[
            ("a", "add one"),
            ("e Enter", "edit it"),
            ("x Del", "remove it"),
        ],
        Tab::Reach => &[],
    }
}

impl Desk {
    pub fn render(&self, frame: &mut Frame, theme: &Theme) {
        let area = frame.area();
        if !self.staff() {
            self.menu.render(frame, theme);
            return;
        }
        frame.render_widget(Block::default().style(theme.text()), area);
        let show_notice = self.notice.is_some() && self.view != View::Workbench;
        let [header, notice, body] = Layout::vertical([
            Constraint::Length(1),
            Constraint::Length(u16::from(show_notice)),
            Constraint::Min(0),
        ])
        .areas(area);
        self.render_header(frame, header, theme);
        if let Some((severity, text)) = self.notice.as_ref().filter(|_| show_notice) {
            frame.render_widget(
                Paragraph::new(Span::styled(
                    format!(" {text}"),
                    severity_style(theme, *severity),
                )),
                notice,
            );
        }
        match self.view {
            View::Workbench => self.menu.render_in(frame, body, theme, false),
            View::Console | View::Audit => self.render_tabs(frame, body, theme),
        }
        self.render_dialog(frame, area, theme);
    }

    fn render_header(&self, frame: &mut Frame, area: Rect, theme: &Theme) {
        let mut spans = vec![Span::styled(" rampart ", theme.title())];
        for view in self.views() {
            let (key, name) = match view {
                View::Workbench => ("F2", "Workbench"),
                View::Console => ("F3", "Console"),
                View::Audit => ("F4", "Audit"),
            };
            let style = if *view == self.view {
                theme.tab_active()
            } else {
                theme.tab()
            };
            spans.push(Span::raw(" "));
            spans.push(Span::styled(format!("{key} {name}"), style));
        }
        if !self.approvals.is_empty() {
            spans.push(Span::raw("  "));
            spans.push(Span::styled(
                format!(" {} waiting for approval (F5) ", self.approvals.len()),
                theme.warning(),
            ));
        }
        frame.render_widget(Paragraph::new(Line::from(spans)), area);
        let right = Line::from(vec![
            Span::styled(self.user.clone(), theme.header()),
            Span::styled(format!(" ({}) ", self.role), theme.muted()),
            Span::styled(format!("{} ", self.clock), theme.muted()),
        ]);
        if area.width >= 60 {
            frame.render_widget(Paragraph::new(right).alignment(Alignment::Right), area);
        }
    }

    fn render_tabs(&self, frame: &mut Frame, area: Rect, theme: &Theme) {
        let Some(tab) = self.showing() else {
            return;
        };
        let tabs = if self.view == View::Audit {
            Tab::AUDIT
        } else {
            Tab::CONSOLE
        };
        let [bar, body, status] = Layout::vertical([
            Constraint::Length(1),
            Constraint::Min(0),
            Constraint::Length(1),
        ])
        .areas(area);
        let mut spans = vec![Span::raw(" ")];
        for (n, t) in tabs.iter().enumerate() {
            let style = if *t == tab {
                theme.tab_active()
            } else {
                theme.tab()
            };
            spans.push(Span::styled(format!("{} {}", n + 1, t.title()), style));
            spans.push(Span::raw("  "));
        }
        frame.render_widget(Paragraph::new(Line::from(spans)), bar);
        if tab == Tab::Dashboard {
            dashboard::render(self.audit.dashboard.as_deref(), frame, body, theme);
        } else if let Some(table) = self.table(tab) {
            table.render(frame, body, theme, self.dialog.is_none());
        }
        let admin = self.role == Role::Admin;
        let mut hints: Vec<(&str, &str)> = match tab {
            Tab::Live if admin => vec![("Enter", "monitor"), ("j", "join"), ("k", "end")],
            Tab::Live => vec![("Enter", "monitor")],
            Tab::Sessions => vec![("Enter", "replay"), ("f", "find on screen")],
            Tab::Seen => vec![("Enter", "replay there"), ("f", "find")],
            Tab::Commands => vec![("Enter", "replay")],
            Tab::Users => vec![
                ("a", "add"),
                ("e", "edit"),
                ("d", "disable/enable"),
                ("w", "reach"),
            ],
            Tab::Dashboard => vec![("r", "refresh")],
            Tab::Assets => vec![("w", "who can reach"), ("x", "remove")],
            Tab::Permissions => vec![("a", "add"), ("x", "remove")],
            Tab::Groups => vec![("a", "add"), ("m r", "members"), ("x", "remove")],
            Tab::Nodes => vec![("a", "add"), ("x", "remove")],
            Tab::Accounts | Tab::Filters | Tab::Acls => vec![("x", "remove")],
            Tab::Reach => vec![],
            Tab::Operations => vec![("Enter", "before/after")],
            Tab::Transfers | Tab::Logins => vec![],
        };
        hints.extend([
            ("/", "filter"),
            ("Tab", "next"),
            ("?", "help"),
            ("q", "quit"),
        ]);
        frame.render_widget(
            Paragraph::new(hint_line(theme, &hints)).style(theme.status_bar()),
            status,
        );
    }

    /// The keys `?` lists: every tab's, then the tab's own.
    pub(super) fn help_keys(&self) -> Vec<(&'static str, &'static str)> {
        let mut keys = HELP.to_vec();
        if let Some(tab) = self.showing() {
            keys.extend_from_slice(tab_help(tab));
        }
        keys
    }
}
