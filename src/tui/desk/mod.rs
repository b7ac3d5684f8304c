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

mod audit;
mod dashboard;
mod forms;
mod keys;
mod view;

pub use audit::{Data, Tab};
pub use forms::{Names, NewUser};

use jiff::Timestamp;

use super::Severity;
use super::field::Field;
use super::input::Key;
use super::menu::{Chosen, Menu, MenuOutcome};
use super::table::{Handled, Table};
use crate::live::ApprovalRequest;
use crate::model::{Account, Asset, CommandFilter, LoginAcl, Permission, Role};
use crate::ops::{AccountSecret, AclSpec, AssetSpec, FilterSpec, PermSpec, UserView};
use crate::store::audit_log::OperationRow;
use crate::vault::Secret;
use forms::{Edited, Editor};
use keys::Keys;

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

/// The two questions an admin asks every day.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReachQuery {
    /// Who can reach this asset.
    Who(String),
    /// What this user can reach.
    What(String),
}

/// What the desk asks the caller to do.
#[derive(Debug)]
pub enum DeskOutcome {
    Quit,
    /// The menu chose a target.
    Connect {
        asset: String,
        account: Chosen,
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

#[derive(Debug)]
enum Dialog {
    Help,
    Confirm {
        text: String,
        op: Op,
    },
    /// A reason to show the person whose session ends.
    Reason {
        title: String,
        field: Field,
        target: ReasonFor,
    },
    Secret {
        title: String,
        secret: Secret<String>,
    },
    Edit(Box<Editor>),
    /// Narrowing the history lists.
    History(Box<super::form::Form>),
    /// A user's public keys.
    Keys(Keys),
    /// A connection test's findings.
    Test(TestReport),
    /// One line to type: what it is for, and the line.
    Prompt(Ask, Field),
    /// Lines to read (an operation's before and after).
    Text {
        title: String,
        lines: Vec<String>,
    },
    /// A command waiting for an admin's decision.
    Approval(ApprovalRequest),
}

/// What a one-line prompt asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Ask {
    /// The text to look for on recorded screens.
    Find,
    GroupAdd,
    NodeAdd,
    /// Where to move a node.
    NodeMove(String),
    /// A public key line for a user.
    KeyAdd(String),
    /// Users to add to (or remove from) a group.
    Members {
        group: String,
        add: bool,
    },
}

impl Ask {
    fn title(&self) -> String {
        match self {
            Ask::Find => " Find text that appeared on a screen ".into(),
            Ask::GroupAdd => " New group ".into(),
            Ask::NodeAdd => " New node ".into(),
            Ask::NodeMove(from) => format!(" Rename or move {from} "),
            Ask::KeyAdd(user) => format!(" Add a public key for {user} "),
            Ask::Members { group, add: true } => format!(" Add members to {group} "),
            Ask::Members { group, add: false } => format!(" Remove members from {group} "),
        }
    }

    fn placeholder(&self) -> &'static str {
        match self {
            Ask::Find => "a word, a hostname, an error message…",
            Ask::GroupAdd => "ops",
            Ask::NodeAdd | Ask::NodeMove(_) => "/DEFAULT/prod/web",
            Ask::KeyAdd(_) => "ssh-ed25519 AAAA... comment",
            Ask::Members { .. } => "user names, comma separated",
        }
    }
}

#[derive(Debug, Clone)]
enum ReasonFor {
    Kill(String),
    Logout(String),
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
    dashboard: Option<Box<crate::store::stats::Dashboard>>,
    reach: Option<ReachQuery>,
    /// The text the Seen tab looks for.
    seen: Option<String>,
    /// The operation rows listed, for their before/after.
    operations: Vec<OperationRow>,
    /// Where typed times are read (`auth.time_zone`).
    time_zone: jiff::tz::TimeZone,
    /// The last rows of the lists whose entries can be edited.
    records: Records,
    /// A form whose change is with `ops`: it comes back if refused.
    submitted: Option<Box<Editor>>,
    /// What the user being loaded is for.
    loading_user: Option<UserThen>,
    history: History,
}

/// The entries the console lists, as loaded, for their edit forms.
#[derive(Debug, Default)]
struct Records {
    assets: Vec<Asset>,
    accounts: Vec<Account>,
    perms: Vec<Permission>,
    filters: Vec<CommandFilter>,
    acls: Vec<LoginAcl>,
}

/// Why a user is being loaded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum UserThen {
    Edit,
    Keys,
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
            dashboard: None,
            reach: None,
            seen: None,
            operations: Vec::new(),
            time_zone: jiff::tz::TimeZone::UTC,
            records: Records::default(),
            submitted: None,
            loading_user: None,
            history: History::default(),
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

    /// The names for the open form, once loaded.
    pub fn set_names(&mut self, names: Names) {
        if let Some(Dialog::Edit(form)) = &mut self.dialog {
            form.set_names(&names);
        }
    }

    /// The user asked for with [`DeskOutcome::LoadUser`], and the names
    /// its form may bind.
    pub fn set_user(&mut self, view: UserView, names: Names) {
        match self.loading_user.take() {
            Some(UserThen::Edit) => {
                let mut form = Editor::user(Some(&view), &self.time_zone);
                form.set_names(&names);
                self.dialog = Some(Dialog::Edit(Box::new(form)));
            }
            Some(UserThen::Keys) => self.dialog = Some(Dialog::Keys(Keys::new(view))),
            None => {}
        }
    }

    fn open_form(&mut self, form: Editor) -> Option<DeskOutcome> {
        let wants = form.wants_names();
        self.dialog = Some(Dialog::Edit(Box::new(form)));
        wants.then_some(DeskOutcome::LoadNames)
    }

    /// The question the Reach tab answers, once one was asked.
    pub fn reach_query(&self) -> Option<&ReachQuery> {
        self.reach.as_ref()
    }

    /// What the history lists are narrowed to.
    pub fn history(&self) -> &History {
        &self.history
    }

    fn history_form(&self) -> super::form::Form {
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
        let h = &self.history;
        super::form::Form::new("Narrow the history", "apply")
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

    /// The text the Seen tab searches for, once one was asked.
    pub fn seen_query(&self) -> Option<&str> {
        self.seen.as_deref()
    }

    fn ask_reach(&mut self, query: ReachQuery) -> Option<DeskOutcome> {
        self.reach = Some(query);
        let at = Tab::CONSOLE.iter().position(|t| *t == Tab::Reach)?;
        self.select_tab(at)
    }

    pub fn set_data(&mut self, data: Data) {
        if let Data::Reach(title, _) = &data
            && let Some(table) = self.table_mut(Tab::Reach)
        {
            table.set_title(title.clone());
        }
        if let Data::Seen(text, found) = &data
            && let Some(table) = self.table_mut(Tab::Seen)
        {
            table.set_title(format!("Seen on screen: \"{text}\""));
            // Times on this screen are UTC, like its rows.
            table.set_note(found.summary(&jiff::tz::TimeZone::UTC));
        }
        if let Data::Dashboard(d) = data {
            self.dashboard = Some(d);
            return;
        }
        let tab = data.tab();
        if Tab::HISTORY.contains(&tab) {
            let narrowed = self.history.describe(&self.time_zone);
            if let Some(table) = self.table_mut(tab) {
                table.set_title(if narrowed.is_empty() {
                    tab.title().to_string()
                } else {
                    format!("{} ({narrowed})", tab.title())
                });
            }
        }
        match &data {
            Data::Operations(list) => self.operations = list.clone(),
            Data::Assets(list) => self.records.assets = list.clone(),
            Data::Accounts(list) => self.records.accounts = list.clone(),
            Data::Permissions(list) => self.records.perms = list.clone(),
            Data::Filters(list) => self.records.filters = list.clone(),
            Data::Acls(list) => self.records.acls = list.clone(),
            _ => {}
        }
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
        let submitted = self.submitted.take();
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
                MenuOutcome::Connect { asset, account, .. } => {
                    Some(DeskOutcome::Connect { asset, account })
                }
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
            other => return self.tab_key(tab, other),
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

    fn selected_account(&self) -> Option<&Account> {
        let key = self.selected_key(Tab::Accounts)?;
        let (asset, user) = key.split_once('/')?;
        self.records
            .accounts
            .iter()
            .find(|a| a.asset == asset && a.username == user)
    }

    fn needs_admin(&mut self, what: &str) -> bool {
        if self.role == Role::Admin {
            return false;
        }
        self.notice = Some((Severity::Warning, format!("{what} needs the admin role")));
        true
    }

    /// Keys that act on the selected row of a tab.
    fn tab_key(&mut self, tab: Tab, key: Key) -> Option<DeskOutcome> {
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
            (Tab::Sessions, Key::Enter) => Some(DeskOutcome::Replay {
                session: selected?,
                at: None,
            }),
            (Tab::Operations, Key::Enter) => {
                let key = selected?;
                let op = key
                    .strip_prefix("op#")
                    .and_then(|n| n.parse::<usize>().ok())
                    .and_then(|n| self.operations.get(n))?;
                self.dialog = Some(Dialog::Text {
                    title: format!(" {} {} by {} ", op.verb, op.object, op.actor),
                    lines: view::operation_lines(op),
                });
                None
            }
            (Tab::Sessions | Tab::Seen, Key::Char('f')) => {
                self.dialog = Some(Dialog::Prompt(Ask::Find, Field::plain(200)));
                None
            }
            (Tab::Seen | Tab::Commands, Key::Enter) => {
                let (session, at) = audit::parse_moment_key(&selected?)?;
                Some(DeskOutcome::Replay { session, at })
            }
            (Tab::Users, Key::Char('e') | Key::Enter) => {
                self.loading_user = Some(UserThen::Edit);
                Some(DeskOutcome::LoadUser(selected?))
            }
            (Tab::Users, Key::Char('K')) => {
                self.loading_user = Some(UserThen::Keys);
                Some(DeskOutcome::LoadUser(selected?))
            }
            (Tab::Users, Key::Char('a')) => self.open_form(Editor::user(None, &self.time_zone)),
            (Tab::Assets, Key::Char('a')) => self.open_form(Editor::asset(None, &self.time_zone)),
            (Tab::Assets, Key::Char('e') | Key::Enter) => {
                let asset = self
                    .records
                    .assets
                    .iter()
                    .find(|a| Some(&a.name) == selected.as_ref())?;
                let form = Editor::asset(Some(asset), &self.time_zone);
                self.open_form(form)
            }
            (Tab::Assets, Key::Char('t')) => {
                if self.needs_admin("testing an asset") {
                    return None;
                }
                self.set_notice(
                    Severity::Info,
                    format!("testing {}...", selected.as_deref()?),
                );
                Some(DeskOutcome::Op(Op::AssetTest {
                    asset: selected?,
                    account: None,
                }))
            }
            (Tab::Accounts, Key::Char('a')) => {
                let asset = self.selected_account().map(|a| a.asset.clone());
                let form = Editor::account(None, asset.as_deref(), &self.time_zone);
                self.open_form(form)
            }
            (Tab::Accounts, Key::Char('e') | Key::Enter) => {
                let account = self.selected_account()?;
                let form = Editor::account(Some(account), None, &self.time_zone);
                self.open_form(form)
            }
            (Tab::Accounts, Key::Char('t')) => {
                let account = self.selected_account()?;
                let (asset, username) = (account.asset.clone(), account.username.clone());
                if self.needs_admin("testing an account") {
                    return None;
                }
                self.set_notice(Severity::Info, format!("testing {username}@{asset}..."));
                Some(DeskOutcome::Op(Op::AssetTest {
                    asset,
                    account: Some(username),
                }))
            }
            (Tab::Permissions, Key::Char('e') | Key::Enter) => {
                let perm = self
                    .records
                    .perms
                    .iter()
                    .find(|p| Some(&p.name) == selected.as_ref())?;
                let form = Editor::perm(Some(perm), &self.time_zone);
                self.open_form(form)
            }
            (Tab::Filters, Key::Char('a')) => self.open_form(Editor::filter(None, &self.time_zone)),
            (Tab::Filters, Key::Char('e') | Key::Enter) => {
                let filter = self
                    .records
                    .filters
                    .iter()
                    .find(|f| Some(&f.name) == selected.as_ref())?;
                let form = Editor::filter(Some(filter), &self.time_zone);
                self.open_form(form)
            }
            (Tab::Acls, Key::Char('a')) => self.open_form(Editor::acl(None, &self.time_zone)),
            (Tab::Acls, Key::Char('e') | Key::Enter) => {
                let acl = self
                    .records
                    .acls
                    .iter()
                    .find(|a| Some(&a.name) == selected.as_ref())?;
                let form = Editor::acl(Some(acl), &self.time_zone);
                self.open_form(form)
            }
            (Tab::Nodes, Key::Char('e' | 'm') | Key::Enter) => {
                let from = selected?;
                let mut field = Field::plain(400);
                field.set(&from);
                self.dialog = Some(Dialog::Prompt(Ask::NodeMove(from), field));
                None
            }
            (Tab::Users, Key::Char('d')) => {
                let name = selected?;
                let active = self.selected_cell(tab, 2).as_deref() == Some("disabled");
                let text = if active {
                    format!("Enable {name}? They can log in again.")
                } else {
                    format!("Disable {name}? They can no longer log in, and their sessions end.")
                };
                self.dialog = Some(Dialog::Confirm {
                    text,
                    op: Op::UserSetActive { name, active },
                });
                None
            }
            (Tab::Groups, Key::Char('a')) => {
                self.dialog = Some(Dialog::Prompt(Ask::GroupAdd, Field::plain(64)));
                None
            }
            (Tab::Nodes, Key::Char('a')) => {
                self.dialog = Some(Dialog::Prompt(Ask::NodeAdd, Field::plain(400)));
                None
            }
            (Tab::Groups, Key::Char(c @ ('m' | 'r'))) => {
                let group = selected?;
                self.dialog = Some(Dialog::Prompt(
                    Ask::Members {
                        group,
                        add: c == 'm',
                    },
                    Field::plain(400),
                ));
                None
            }
            (Tab::Permissions, Key::Char('a')) => {
                self.open_form(Editor::perm(None, &self.time_zone))
            }
            (Tab::Users, Key::Char('w')) => self.ask_reach(ReachQuery::What(selected?)),
            (Tab::Assets, Key::Char('w')) => self.ask_reach(ReachQuery::Who(selected?)),
            (
                Tab::Users
                | Tab::Groups
                | Tab::Nodes
                | Tab::Assets
                | Tab::Accounts
                | Tab::Permissions
                | Tab::Filters
                | Tab::Acls,
                Key::Char('x') | Key::Delete,
            ) => {
                let name = selected?;
                let what = match tab {
                    Tab::Users => "user (with their keys and group memberships)",
                    Tab::Groups => "group",
                    Tab::Nodes => "node",
                    Tab::Assets => "asset (with its accounts)",
                    Tab::Accounts => "account",
                    Tab::Permissions => "permission",
                    Tab::Filters => "command filter",
                    _ => "login ACL",
                };
                self.dialog = Some(Dialog::Confirm {
                    text: format!("Remove {what} {name}? This cannot be undone."),
                    op: Op::Remove { what: tab, name },
                });
                None
            }
            (Tab::Users, Key::Char('u')) => {
                Some(DeskOutcome::Op(Op::UserUnlock { name: selected? }))
            }
            (Tab::Users, Key::Char('M')) => {
                let name = selected?;
                self.dialog = Some(Dialog::Confirm {
                    text: format!("Reset {name}'s MFA? They enrol again at their next login."),
                    op: Op::UserMfaReset { name },
                });
                None
            }
            (Tab::Users, Key::Char('p')) => {
                let name = selected?;
                self.dialog = Some(Dialog::Confirm {
                    text: format!(
                        "Give {name} a new one-time password? Their current password stops working."
                    ),
                    op: Op::UserPasswd { name },
                });
                None
            }
            _ => None,
        }
    }

    fn handle_dialog(&mut self, dialog: Dialog, key: Key) -> Option<DeskOutcome> {
        match dialog {
            Dialog::Test(report) => match (key, report.untrusted_key.clone()) {
                (Key::Char('t'), Some(key)) => {
                    self.dialog = Some(Dialog::Confirm {
                        text: format!(
                            "Pin the key {} now presents? Connections then accept only that key.",
                            report.asset
                        ),
                        op: Op::AssetTrust {
                            asset: report.asset,
                            key,
                        },
                    });
                    None
                }
                _ => None,
            },
            Dialog::Keys(mut keys) => match keys.handle(&key) {
                keys::KeysKey::Close => None,
                keys::KeysKey::Add(user) => {
                    self.dialog = Some(Dialog::Prompt(Ask::KeyAdd(user), Field::plain(16 * 1024)));
                    None
                }
                keys::KeysKey::Remove { user, fingerprint } => {
                    self.dialog = Some(Dialog::Confirm {
                        text: format!(
                            "Remove {user}'s key {fingerprint}? Logins with it stop working."
                        ),
                        op: Op::KeyRemove { user, fingerprint },
                    });
                    None
                }
                keys::KeysKey::Stay => {
                    self.dialog = Some(Dialog::Keys(keys));
                    None
                }
            },
            Dialog::Help | Dialog::Secret { .. } | Dialog::Text { .. } => {
                // Any key closes; the secret is dropped (and zeroised) here.
                None
            }
            Dialog::Confirm { text, op } => match key {
                Key::Char('y' | 'Y') | Key::Enter => Some(DeskOutcome::Op(op)),
                Key::Char('n' | 'N' | 'q') | Key::Esc | Key::Ctrl('c') => None,
                _ => {
                    self.dialog = Some(Dialog::Confirm { text, op });
                    None
                }
            },
            Dialog::Reason {
                title,
                mut field,
                target,
            } => match key {
                Key::Esc | Key::Ctrl('c') => None,
                Key::Enter => {
                    let reason = field.text().trim().to_string();
                    let reason = if reason.is_empty() {
                        crate::live::DEFAULT_KILL_REASON.to_string()
                    } else {
                        reason
                    };
                    Some(DeskOutcome::Op(match target {
                        ReasonFor::Kill(session) => Op::Kill { session, reason },
                        ReasonFor::Logout(user) => Op::ForceLogout { user, reason },
                    }))
                }
                other => {
                    field.handle(&other);
                    self.dialog = Some(Dialog::Reason {
                        title,
                        field,
                        target,
                    });
                    None
                }
            },
            Dialog::Approval(request) => match key {
                Key::Char('a' | 'y') => Some(DeskOutcome::Op(Op::Decide {
                    id: request.id,
                    approve: true,
                })),
                Key::Char('d' | 'n') => Some(DeskOutcome::Op(Op::Decide {
                    id: request.id,
                    approve: false,
                })),
                Key::Esc | Key::Char('l') => {
                    self.set_aside.push(request.id);
                    None
                }
                _ => {
                    self.dialog = Some(Dialog::Approval(request));
                    None
                }
            },
            Dialog::Prompt(ask, mut field) => match key {
                Key::Esc | Key::Ctrl('c') => None,
                Key::Enter if !field.text().trim().is_empty() => {
                    let text = field.text().trim().to_string();
                    match ask {
                        Ask::Find => {
                            self.seen = Some(text);
                            let at = Tab::AUDIT.iter().position(|t| *t == Tab::Seen)?;
                            self.select_tab(at)
                        }
                        Ask::GroupAdd => Some(DeskOutcome::Op(Op::GroupAdd { name: text })),
                        Ask::NodeAdd => Some(DeskOutcome::Op(Op::NodeAdd { path: text })),
                        Ask::NodeMove(from) if from == text => None,
                        Ask::NodeMove(from) => {
                            Some(DeskOutcome::Op(Op::NodeMove { from, to: text }))
                        }
                        Ask::KeyAdd(user) => Some(DeskOutcome::Op(Op::KeyAdd { user, line: text })),
                        Ask::Members { group, add } => Some(DeskOutcome::Op(Op::Members {
                            group,
                            users: super::form::list(&text),
                            add,
                        })),
                    }
                }
                other => {
                    field.handle(&other);
                    self.dialog = Some(Dialog::Prompt(ask, field));
                    None
                }
            },
            Dialog::History(mut form) => match form.handle(&key) {
                Some(super::form::FormKey::Cancel) => None,
                Some(super::form::FormKey::Submit) => {
                    let when = |label: &str| match form.get(label) {
                        "" => None,
                        text => crate::ops::parse_since(text, &self.time_zone, self.now).ok(),
                    };
                    let text =
                        |label: &str| Some(form.get(label).to_string()).filter(|t| !t.is_empty());
                    self.history = History {
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
            },
            Dialog::Edit(mut form) => match form.handle(&key) {
                Some(Edited::Cancel) => None,
                Some(Edited::Submit(op)) => {
                    self.submitted = Some(form);
                    Some(DeskOutcome::Op(op))
                }
                None => {
                    self.dialog = Some(Dialog::Edit(form));
                    None
                }
            },
        }
    }
}
