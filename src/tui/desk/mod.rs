//! The desk: what a person sees after login, by role. Everyone has the
//! Workbench (the asset menu); admins also the Console (users today), and
//! auditors and admins the Audit view (live sessions, session history,
//! commands, transfers, logins, operations). One key switches view (F2, F3,
//! F4, or Ctrl-T to cycle), and the header names the person, their role and
//! the time.
//!
//! The desk holds only screen state. It asks the caller for data
//! ([`DeskOutcome::Fetch`]) and for actions ([`DeskOutcome::Op`],
//! [`DeskOutcome::Monitor`]...), which the caller runs through `ops` with
//! the person's identity (so the role checks and audit rows are the CLI's)
//! and reports back with [`Desk::set_data`] and [`Desk::op_done`]. Offering a
//! key only to the roles it works for is courtesy; `ops` decides.
//!
//! This file is the frame: the views, switching view and tab, the keys that
//! work on every tab, and handing the rest on. The tabs are listed in
//! `tab.rs` (columns, rows); what a tab's keys do, and the state its tab
//! keeps, is in `audit.rs` or `console.rs` by view; the boxes over the
//! lists in `dialog.rs`, the console's forms in `forms/`, a user's keys in
//! `keys.rs`; drawing in `view.rs` and `dashboard.rs`.

mod audit;
mod console;
mod dashboard;
mod dialog;
mod forms;
mod keys;
mod tab;
mod view;

pub use audit::History;
pub use console::ReachQuery;
pub use forms::{Names, NewUser};
pub use tab::{Data, Tab};

use jiff::Timestamp;

use super::Severity;
use super::input::Key;
use super::menu::{Chosen, Menu, MenuOutcome};
use super::table::{Handled, Table};
use crate::live::ApprovalRequest;
use crate::model::Role;
use crate::ops::{AccountSecret, AclSpec, AssetSpec, FilterSpec, PermSpec};
use crate::vault::Secret;
use audit::AuditState;
use console::ConsoleState;
use dialog::Dialog;

/// The three views of the desk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum View {
    Workbench,
    Console,
    Audit,
}

/// A change the person asked for; the caller runs it through `ops`.
#[derive(Debug)]
pub enum Op {
    Kill {
        session: String,
        reason: String,
    },
    /// Ends every session of a user.
    ForceLogout {
        user: String,
        reason: String,
    },
    UserAdd(NewUser),
    /// Sets a user's role, email, groups and expiry.
    UserEdit(NewUser),
    /// Adds a public key (an authorized_keys line) to a user.
    KeyAdd {
        user: String,
        line: String,
    },
    KeyRemove {
        user: String,
        fingerprint: String,
    },
    UserSetActive {
        name: String,
        active: bool,
    },
    UserUnlock {
        name: String,
    },
    UserMfaReset {
        name: String,
    },
    /// A new one-time password, shown once.
    UserPasswd {
        name: String,
    },
    GroupAdd {
        name: String,
    },
    NodeAdd {
        path: String,
    },
    /// Renames or moves a node with everything under it.
    NodeMove {
        from: String,
        to: String,
    },
    AssetAdd(Box<AssetSpec>),
    /// Replaces the asset `name` (the spec may rename it).
    AssetEdit {
        name: String,
        spec: Box<AssetSpec>,
    },
    /// Connects to an asset with an account (the first with a secret if
    /// none is named) and reports what happened.
    AssetTest {
        asset: String,
        account: Option<String>,
    },
    /// Pins exactly this host key (an OpenSSH public key line).
    AssetTrust {
        asset: String,
        key: String,
    },
    AccountAdd {
        asset: String,
        username: String,
        secret: AccountSecret,
        privileged: bool,
    },
    /// Changes an account; `secret: None` keeps the stored one.
    AccountEdit {
        asset: String,
        username: String,
        secret: Option<AccountSecret>,
        privileged: bool,
    },
    /// Adds users to a group, or removes them.
    Members {
        group: String,
        users: Vec<String>,
        add: bool,
    },
    /// Adds a permission made in the console's form.
    PermAdd(Box<PermSpec>),
    /// Replaces the permission `name` (the spec may rename it).
    PermEdit {
        name: String,
        spec: Box<PermSpec>,
    },
    FilterAdd(Box<FilterSpec>),
    FilterEdit {
        name: String,
        spec: Box<FilterSpec>,
    },
    AclAdd(Box<AclSpec>),
    AclEdit {
        name: String,
        spec: Box<AclSpec>,
    },
    /// Answers a command waiting for review.
    Decide {
        id: u64,
        approve: bool,
    },
    /// Removes a group, node, asset, account (`asset/user`), permission,
    /// filter or login ACL.
    Remove {
        what: Tab,
        name: String,
    },
}

/// What the desk asks the caller to do.
#[derive(Debug)]
pub enum DeskOutcome {
    Quit,
    /// The menu chose a target.
    Connect {
        asset: String,
        account: Chosen,
        protocol: String,
    },
    /// Load the rows of this tab and hand them to [`Desk::set_data`].
    Fetch(Tab),
    /// Watch a live session, read-only.
    Monitor {
        session: String,
    },
    /// Watch a live session and type into it.
    Join {
        session: String,
    },
    /// Load the names a form may bind and hand them to
    /// [`Desk::set_names`].
    LoadNames,
    /// Load this user (with groups and keys) and the names a form may bind,
    /// and hand them to [`Desk::set_user`].
    LoadUser(String),
    /// Play a recording, from the moment `at` if given.
    Replay {
        session: String,
        at: Option<Timestamp>,
    },
    /// A one-time link to the session's recording.
    Link {
        session: String,
    },
    Op(Op),
}

/// What an [`Op`] came to.
#[derive(Debug, Default)]
pub struct OpDone {
    pub message: String,
    /// A one-time password to show once.
    pub secret: Option<Secret<String>>,
    /// A connection test's findings.
    pub test: Option<TestReport>,
}

impl OpDone {
    pub fn said(message: String) -> OpDone {
        OpDone {
            message,
            ..OpDone::default()
        }
    }
}

/// What testing an asset found, to show in a box.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TestReport {
    pub asset: String,
    pub ok: bool,
    /// The outcome, the host key and whether it is pinned, one per line.
    pub lines: Vec<String>,
    /// The key the target presented when it is not (or not the) pinned
    /// one: what "trust" pins.
    pub untrusted_key: Option<String>,
}

pub struct Desk {
    user: String,
    role: Role,
    clock: String,
    now: Timestamp,
    view: View,
    menu: Menu,
    tables: Vec<(Tab, Table)>,
    audit_tab: usize,
    console_tab: usize,
    dialog: Option<Dialog>,
    notice: Option<(Severity, String)>,
    /// Commands waiting for review (admins only), and the ones this admin
    /// put aside with Esc (F5 brings them back).
    approvals: Vec<ApprovalRequest>,
    set_aside: Vec<u64>,
    /// Where typed times are read (`auth.time_zone`).
    time_zone: jiff::tz::TimeZone,
    /// What the audit view's tabs keep between loads.
    audit: AuditState,
    /// What the console view's tabs keep between loads.
    console: ConsoleState,
}

impl std::fmt::Debug for Desk {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Desk")
            .field("user", &self.user)
            .field("view", &self.view)
            .finish_non_exhaustive()
    }
}

impl Desk {
    pub fn new(menu: Menu, user: &str, role: Role, now: Timestamp) -> Desk {
        let tables = Tab::AUDIT
            .iter()
            .chain(Tab::CONSOLE)
            .filter_map(|&t| t.table().map(|table| (t, table)))
            .collect();
        Desk {
            user: user.to_string(),
            role,
            clock: String::new(),
            now,
            view: View::Workbench,
            menu,
            tables,
            audit_tab: 0,
            console_tab: 0,
            dialog: None,
            notice: None,
            approvals: Vec::new(),
            set_aside: Vec::new(),
            time_zone: jiff::tz::TimeZone::UTC,
            audit: AuditState::default(),
            console: ConsoleState::default(),
        }
    }

    /// The commands waiting for review now. A new one opens its prompt
    /// unless another dialog is up or this admin asked for it (another
    /// admin must answer it; F5 still lists it); one decided elsewhere
    /// closes it.
    pub fn set_approvals(&mut self, waiting: Vec<ApprovalRequest>) {
        if self.role != Role::Admin {
            return;
        }
        self.set_aside
            .retain(|id| waiting.iter().any(|r| r.id == *id));
        if let Some(Dialog::Approval(open)) = &self.dialog
            && !waiting.iter().any(|r| r.id == open.id)
        {
            self.dialog = None;
            self.notice = Some((
                Severity::Info,
                "that request was answered elsewhere or withdrawn".into(),
            ));
        }
        self.approvals = waiting;
        if self.dialog.is_none()
            && let Some(next) = self
                .approvals
                .iter()
                .find(|r| !self.set_aside.contains(&r.id) && r.user != self.user)
        {
            self.dialog = Some(Dialog::Approval(next.clone()));
        }
    }

    pub fn menu(&self) -> &Menu {
        &self.menu
    }

    pub fn menu_mut(&mut self) -> &mut Menu {
        &mut self.menu
    }

    pub fn view(&self) -> View {
        self.view
    }

    /// The header's clock, and the time lists measure durations against.
    pub fn set_clock(&mut self, now: Timestamp, text: String) {
        self.now = now;
        self.clock = text;
    }

    /// The tab on screen, if the view has tabs: the caller refreshes it
    /// (the live list every second).
    pub fn showing(&self) -> Option<Tab> {
        match self.view {
            View::Workbench => None,
            View::Audit => Tab::AUDIT.get(self.audit_tab).copied(),
            View::Console => Tab::CONSOLE.get(self.console_tab).copied(),
        }
    }

    /// The zone typed times are read in (`auth.time_zone`).
    pub fn with_time_zone(mut self, tz: jiff::tz::TimeZone) -> Desk {
        self.time_zone = tz;
        self
    }

    pub fn set_data(&mut self, data: Data) {
        if let Data::Dashboard(d) = data {
            // No rows: the dashboard draws its figures as they are.
            self.audit.dashboard = Some(d);
            return;
        }
        self.audit_data(&data);
        self.console_data(&data);
        let rows = data.rows(self.now);
        if let Some(table) = self.table_mut(data.tab()) {
            table.set_rows(rows);
        }
    }

    /// Reports how an [`Op`] went: a line in the notice bar, and a
    /// one-time password in a box that is shown once.
    /// A form's change refused by `ops` brings the form back, with the
    /// reason and everything typed except a secret.
    pub fn op_done(&mut self, result: Result<OpDone, String>) {
        let submitted = self.console.submitted.take();
        match result {
            Ok(done) => {
                if let Some(secret) = done.secret {
                    self.dialog = Some(Dialog::Secret {
                        title: done.message.clone(),
                        secret,
                    });
                } else if let Some(report) = done.test {
                    self.dialog = Some(Dialog::Test(report));
                }
                self.set_notice(Severity::Info, done.message);
            }
            Err(e) => match submitted {
                Some(mut form) if self.dialog.is_none() => {
                    form.refuse(e);
                    self.dialog = Some(Dialog::Edit(form));
                }
                _ => self.set_notice(Severity::Danger, e),
            },
        }
    }

    /// A text for the person to read, closed by any key.
    pub fn show_text(&mut self, title: String, lines: Vec<String>) {
        self.dialog = Some(dialog::Dialog::Text { title, lines });
    }

    /// One line for the person: under the header, or in the menu's own
    /// notice line on the workbench.
    pub fn set_notice(&mut self, severity: Severity, text: impl Into<String>) {
        if self.view == View::Workbench {
            self.menu.set_notice(Some((severity, text.into())));
        } else {
            self.notice = Some((severity, text.into()));
        }
    }

    fn staff(&self) -> bool {
        matches!(self.role, Role::Admin | Role::Auditor)
    }

    fn views(&self) -> &'static [View] {
        match self.role {
            Role::Admin => &[View::Workbench, View::Console, View::Audit],
            Role::Auditor => &[View::Workbench, View::Audit],
            Role::User => &[View::Workbench],
        }
    }

    fn table_mut(&mut self, tab: Tab) -> Option<&mut Table> {
        self.tables
            .iter_mut()
            .find(|(t, _)| *t == tab)
            .map(|(_, table)| table)
    }

    fn table(&self, tab: Tab) -> Option<&Table> {
        self.tables
            .iter()
            .find(|(t, _)| *t == tab)
            .map(|(_, table)| table)
    }

    fn switch(&mut self, view: View) -> Option<DeskOutcome> {
        if !self.views().contains(&view) {
            if self.staff() {
                self.set_notice(Severity::Warning, "the console needs the admin role");
            }
            return None;
        }
        self.view = view;
        self.showing().map(DeskOutcome::Fetch)
    }

    fn select_tab(&mut self, at: usize) -> Option<DeskOutcome> {
        let tabs = match self.view {
            View::Audit => Tab::AUDIT,
            View::Console => Tab::CONSOLE,
            View::Workbench => return None,
        };
        if at >= tabs.len() {
            return None;
        }
        match self.view {
            View::Audit => self.audit_tab = at,
            _ => self.console_tab = at,
        }
        self.showing().map(DeskOutcome::Fetch)
    }

    /// A key goes to the open box if there is one; then the view keys, the
    /// menu or the tab's list, the keys of every tab, and last the tab's own
    /// (`audit.rs`, `console.rs`).
    pub fn handle(&mut self, key: Key) -> Option<DeskOutcome> {
        if let Some(dialog) = self.dialog.take() {
            return self.handle_dialog(dialog, key);
        }
        let filtering = self
            .showing()
            .and_then(|t| self.table(t))
            .is_some_and(Table::is_filtering);
        // View keys work everywhere except inside a filter being typed.
        if self.staff() && !filtering {
            let views = self.views();
            match key {
                Key::F(2) => return self.switch(View::Workbench),
                Key::F(3) => return self.switch(View::Console),
                Key::F(4) => return self.switch(View::Audit),
                Key::F(5) if !self.approvals.is_empty() => {
                    self.set_aside.clear();
                    if let Some(first) = self.approvals.first() {
                        self.dialog = Some(Dialog::Approval(first.clone()));
                    }
                    return None;
                }
                Key::Ctrl('t') => {
                    let at = views.iter().position(|v| *v == self.view).unwrap_or(0);
                    let next = views.get((at + 1) % views.len()).copied();
                    return next.and_then(|v| self.switch(v));
                }
                _ => {}
            }
        }
        if self.view == View::Workbench {
            return match self.menu.handle(key)? {
                MenuOutcome::Quit => Some(DeskOutcome::Quit),
                MenuOutcome::Connect {
                    asset,
                    account,
                    protocol,
                } => Some(DeskOutcome::Connect {
                    asset,
                    account,
                    protocol,
                }),
            };
        }
        let tab = self.showing()?;
        self.notice = None;
        if let Some(table) = self.table_mut(tab)
            && table.handle(&key) == Handled::Consumed
        {
            return None;
        }
        let tabs = if self.view == View::Audit {
            Tab::AUDIT
        } else {
            Tab::CONSOLE
        };
        let current = if self.view == View::Audit {
            self.audit_tab
        } else {
            self.console_tab
        };
        match key {
            Key::Char('q') | Key::Ctrl('c' | 'd') => return Some(DeskOutcome::Quit),
            Key::Char('?') | Key::F(1) => self.dialog = Some(Dialog::Help),
            Key::Char('r') => return Some(DeskOutcome::Fetch(tab)),
            Key::Tab => return self.select_tab((current + 1) % tabs.len()),
            Key::BackTab => return self.select_tab((current + tabs.len() - 1) % tabs.len()),
            Key::Char(c @ '1'..='9') => {
                return self.select_tab(c as usize - '1' as usize);
            }
            other => {
                return match self.view {
                    View::Audit => self.audit_key(tab, other),
                    View::Console => self.console_key(tab, other),
                    View::Workbench => None,
                };
            }
        }
        None
    }

    fn selected_key(&self, tab: Tab) -> Option<String> {
        self.table(tab)
            .and_then(Table::selected_row)
            .map(|r| r.key.clone())
    }

    fn selected_cell(&self, tab: Tab, column: usize) -> Option<String> {
        self.table(tab)
            .and_then(Table::selected_row)
            .map(|r| r.cell(column).to_string())
    }

    fn needs_admin(&mut self, what: &str) -> bool {
        if self.role == Role::Admin {
            return false;
        }
        self.notice = Some((Severity::Warning, format!("{what} needs the admin role")));
        true
    }
}
