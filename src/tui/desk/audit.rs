//! The audit view's tabs (dashboard, live sessions, the history lists and
//! the screen-text search): what their keys do, and the state they keep
//! between loads: the dashboard's figures, the text searched for, the
//! operation rows (for their before and after) and what the history lists
//! are narrowed to.

use jiff::Timestamp;

use super::super::field::Field;
use super::super::form::{Form, FormKey};
use super::super::input::Key;
use super::dialog::{Ask, Dialog, ReasonFor};
use super::tab::{Data, Tab, parse_moment_key};
use super::{Desk, DeskOutcome};
use crate::store::audit_log::OperationRow;
use crate::store::stats::Dashboard;

/// What the history lists (sessions, commands, transfers, logins,
/// operations) are narrowed to when loaded; the `/` filter then works
/// within the rows loaded.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct History {
    pub user: Option<String>,
    pub asset: Option<String>,
    pub since: Option<Timestamp>,
    pub until: Option<Timestamp>,
}

impl History {
    /// "user alice, since 2026-11-01 08:00", or "" when not narrowed.
    fn describe(&self, tz: &jiff::tz::TimeZone) -> String {
        let at = |t: &Timestamp| {
            t.to_zoned(tz.clone())
                .strftime("%Y-%m-%d %H:%M")
                .to_string()
        };
        [
            self.user.as_ref().map(|u| format!("user {u}")),
            self.asset.as_ref().map(|a| format!("asset {a}")),
            self.since.as_ref().map(|t| format!("since {}", at(t))),
            self.until.as_ref().map(|t| format!("before {}", at(t))),
        ]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join(", ")
    }
}

/// What the audit view keeps between loads.
#[derive(Debug, Default)]
pub(super) struct AuditState {
    pub(super) dashboard: Option<Box<Dashboard>>,
    /// The text the Seen tab looks for.
    seen: Option<String>,
    /// The operation rows listed, for their before/after.
    operations: Vec<OperationRow>,
    history: History,
}

impl Desk {
    /// The text the Seen tab searches for, once one was asked.
    pub fn seen_query(&self) -> Option<&str> {
        self.audit.seen.as_deref()
    }

    /// What the history lists are narrowed to.
    pub fn history(&self) -> &History {
        &self.audit.history
    }

    /// Keeps what the audit view needs of `data` beyond its rows, and
    /// titles its lists.
    pub(super) fn audit_data(&mut self, data: &Data) {
        if let Data::Seen(text, found) = data
            && let Some(table) = self.table_mut(Tab::Seen)
        {
            table.set_title(format!("Seen on screen: \"{text}\""));
            // Times on this screen are UTC, like its rows.
            table.set_note(found.summary(&jiff::tz::TimeZone::UTC));
        }
        let tab = data.tab();
        if Tab::HISTORY.contains(&tab) {
            let narrowed = self.audit.history.describe(&self.time_zone);
            if let Some(table) = self.table_mut(tab) {
                table.set_title(if narrowed.is_empty() {
                    tab.title().to_string()
                } else {
                    format!("{} ({narrowed})", tab.title())
                });
            }
        }
        if let Data::Operations(list) = data {
            self.audit.operations = list.clone();
        }
    }

    /// Keys that act on the selected row of an audit tab.
    pub(super) fn audit_key(&mut self, tab: Tab, key: Key) -> Option<DeskOutcome> {
        let selected = self.selected_key(tab);
        match (tab, key) {
            (Tab::Live, Key::Enter | Key::Char('m')) => {
                Some(DeskOutcome::Monitor { session: selected? })
            }
            (Tab::Live, Key::Char('j')) => {
                let session = selected?;
                if self.needs_admin("joining a session") {
                    return None;
                }
                Some(DeskOutcome::Join { session })
            }
            (Tab::Live, Key::Char('k')) => {
                let session = selected?;
                if self.needs_admin("ending a session") {
                    return None;
                }
                let who = self.selected_cell(tab, 0).unwrap_or_default();
                let asset = self.selected_cell(tab, 1).unwrap_or_default();
                self.dialog = Some(Dialog::Reason {
                    title: format!(" End {who}'s session on {asset} "),
                    field: Field::plain(crate::live::MAX_LINE),
                    target: ReasonFor::Kill(session),
                });
                None
            }
            (Tab::Live, Key::Char('L')) => {
                let user = self.selected_cell(tab, 0)?;
                if self.needs_admin("logging a user out") {
                    return None;
                }
                self.dialog = Some(Dialog::Reason {
                    title: format!(" End every session of {user} "),
                    field: Field::plain(crate::live::MAX_LINE),
                    target: ReasonFor::Logout(user),
                });
                None
            }
            (tab, Key::Char('t')) if Tab::HISTORY.contains(&tab) => {
                self.dialog = Some(Dialog::History(Box::new(self.history_form())));
                None
            }
            (Tab::Sessions, Key::Char('l')) => Some(DeskOutcome::Link { session: selected? }),
            (Tab::Sessions, Key::Enter) => Some(DeskOutcome::Replay {
                session: selected?,
                at: None,
            }),
            (Tab::Operations, Key::Enter) => {
                let key = selected?;
                let op = key
                    .strip_prefix("op#")
                    .and_then(|n| n.parse::<usize>().ok())
                    .and_then(|n| self.audit.operations.get(n))?;
                self.dialog = Some(Dialog::Text {
                    title: format!(" {} {} by {} ", op.verb, op.object, op.actor),
                    lines: operation_lines(op),
                });
                None
            }
            (Tab::Sessions | Tab::Seen, Key::Char('f')) => {
                self.dialog = Some(Dialog::Prompt(Ask::Find, Field::plain(200)));
                None
            }
            (Tab::Seen | Tab::Commands, Key::Enter) => {
                let (session, at) = parse_moment_key(&selected?)?;
                Some(DeskOutcome::Replay { session, at })
            }
            _ => None,
        }
    }

    /// Looks for `text` on recorded screens: the Seen tab, loaded.
    pub(super) fn find_on_screen(&mut self, text: String) -> Option<DeskOutcome> {
        self.audit.seen = Some(text);
        let at = Tab::AUDIT.iter().position(|t| *t == Tab::Seen)?;
        self.select_tab(at)
    }

    fn history_form(&self) -> Form {
        let at = |t: Option<Timestamp>| {
            t.map(|t| {
                t.to_zoned(self.time_zone.clone())
                    .strftime("%Y-%m-%d %H:%M")
                    .to_string()
            })
            .unwrap_or_default()
        };
        let check = |tz: jiff::tz::TimeZone, now: Timestamp| {
            move |text: &str| {
                crate::ops::parse_since(text, &tz, now)
                    .map(|_| ())
                    .map_err(|e| e.expected)
            }
        };
        let h = &self.audit.history;
        Form::new("Narrow the history", "apply")
            .text("User", 64, "any user")
            .value(h.user.as_deref().unwrap_or(""))
            .text("Asset", 64, "any asset")
            .value(h.asset.as_deref().unwrap_or(""))
            .text("Since", 40, "7d, 24h, 2026-11-01 or 2026-11-01 08:00")
            .check(check(self.time_zone.clone(), self.now))
            .value(&at(h.since))
            .text("Until", 40, "optional, same forms")
            .check(check(self.time_zone.clone(), self.now))
            .value(&at(h.until))
    }

    /// A key in the box that narrows the history lists.
    pub(super) fn history_key(&mut self, mut form: Box<Form>, key: Key) -> Option<DeskOutcome> {
        match form.handle(&key) {
            Some(FormKey::Cancel) => None,
            Some(FormKey::Submit) => {
                let when = |label: &str| match form.get(label) {
                    "" => None,
                    text => crate::ops::parse_since(text, &self.time_zone, self.now).ok(),
                };
                let text =
                    |label: &str| Some(form.get(label).to_string()).filter(|t| !t.is_empty());
                self.audit.history = History {
                    user: text("User"),
                    asset: text("Asset"),
                    since: when("Since"),
                    until: when("Until"),
                };
                self.showing().map(DeskOutcome::Fetch)
            }
            None => {
                self.dialog = Some(Dialog::History(form));
                None
            }
        }
    }
}

/// An operation as an auditor reads it: when, who, through what, then each
/// changed field, then the whole before and after.
fn operation_lines(op: &OperationRow) -> Vec<String> {
    let mut lines = vec![format!(
        "{} by {} ({}, {})",
        op.at.strftime("%Y-%m-%d %H:%M:%S UTC"),
        op.actor,
        op.role,
        op.via
    )];
    if !op.changes.is_empty() {
        lines.push(String::new());
        lines.push("changed:".to_string());
        lines.extend(op.changes.iter().map(|c| format!("  {c}")));
    }
    for (label, value) in [("before", &op.before), ("after", &op.after)] {
        if let Some(value) = value {
            lines.push(String::new());
            lines.push(format!("{label}: {value}"));
        }
    }
    lines
}
