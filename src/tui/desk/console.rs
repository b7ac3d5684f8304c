//! The console view's tabs (users, groups, nodes, assets, accounts,
//! permissions, command filters, login ACLs, reach): what their keys do,
//! and the state they keep: the entries last listed (for their edit forms),
//! the form whose change is with `ops`, the user being loaded and the
//! question the Reach tab answers.

use super::super::Severity;
use super::super::field::Field;
use super::super::input::Key;
use super::dialog::{Ask, Dialog};
use super::forms::{Edited, Editor, Names};
use super::keys::Keys;
use super::tab::{Data, Tab};
use super::{Desk, DeskOutcome, Op};
use crate::model::{Account, Asset, CommandFilter, LoginAcl, Permission};
use crate::ops::UserView;

/// The two questions an admin asks every day.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReachQuery {
    /// Who can reach this asset.
    Who(String),
    /// What this user can reach.
    What(String),
}

/// What the console view keeps between loads.
#[derive(Debug, Default)]
pub(super) struct ConsoleState {
    reach: Option<ReachQuery>,
    /// The last rows of the lists whose entries can be edited.
    records: Records,
    /// A form whose change is with `ops`: it comes back if refused.
    pub(super) submitted: Option<Box<Editor>>,
    /// What the user being loaded is for.
    loading_user: Option<UserThen>,
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

impl Desk {
    /// The names for the open form, once loaded.
    pub fn set_names(&mut self, names: Names) {
        if let Some(Dialog::Edit(form)) = &mut self.dialog {
            form.set_names(&names);
        }
    }

    /// The user asked for with [`DeskOutcome::LoadUser`], and the names
    /// its form may bind.
    pub fn set_user(&mut self, view: UserView, names: Names) {
        match self.console.loading_user.take() {
            Some(UserThen::Edit) => {
                let mut form = Editor::user(Some(&view), &self.time_zone);
                form.set_names(&names);
                self.dialog = Some(Dialog::Edit(Box::new(form)));
            }
            Some(UserThen::Keys) => self.dialog = Some(Dialog::Keys(Keys::new(view))),
            None => {}
        }
    }

    /// The question the Reach tab answers, once one was asked.
    pub fn reach_query(&self) -> Option<&ReachQuery> {
        self.console.reach.as_ref()
    }

    /// Keeps what the console's forms need of `data`, and titles the Reach
    /// tab with its question.
    pub(super) fn console_data(&mut self, data: &Data) {
        if let Data::Reach(title, _) = data
            && let Some(table) = self.table_mut(Tab::Reach)
        {
            table.set_title(title.clone());
        }
        let records = &mut self.console.records;
        match data {
            Data::Assets(list) => records.assets = list.clone(),
            Data::Accounts(list) => records.accounts = list.clone(),
            Data::Permissions(list) => records.perms = list.clone(),
            Data::Filters(list) => records.filters = list.clone(),
            Data::Acls(list) => records.acls = list.clone(),
            _ => {}
        }
    }

    fn open_form(&mut self, form: Editor) -> Option<DeskOutcome> {
        let wants = form.wants_names();
        self.dialog = Some(Dialog::Edit(Box::new(form)));
        wants.then_some(DeskOutcome::LoadNames)
    }

    /// A key in an open form: a change to submit goes to `ops`, and the
    /// form is kept until `ops` answers.
    pub(super) fn edit_key(&mut self, mut form: Box<Editor>, key: Key) -> Option<DeskOutcome> {
        match form.handle(&key) {
            Some(Edited::Cancel) => None,
            Some(Edited::Submit(op)) => {
                self.console.submitted = Some(form);
                Some(DeskOutcome::Op(op))
            }
            None => {
                self.dialog = Some(Dialog::Edit(form));
                None
            }
        }
    }

    fn ask_reach(&mut self, query: ReachQuery) -> Option<DeskOutcome> {
        self.console.reach = Some(query);
        let at = Tab::CONSOLE.iter().position(|t| *t == Tab::Reach)?;
        self.select_tab(at)
    }

    fn selected_account(&self) -> Option<&Account> {
        let key = self.selected_key(Tab::Accounts)?;
        let (asset, user) = key.split_once('/')?;
        self.console
            .records
            .accounts
            .iter()
            .find(|a| a.asset == asset && a.username == user)
    }

    /// Keys that act on the selected row of a console tab.
    pub(super) fn console_key(&mut self, tab: Tab, key: Key) -> Option<DeskOutcome> {
        let selected = self.selected_key(tab);
        if matches!(key, Key::Char('x') | Key::Delete) {
            return self.confirm_remove(tab, selected?);
        }
        match tab {
            Tab::Users => self.users_key(key, selected),
            Tab::Groups => self.groups_key(key, selected),
            Tab::Nodes => self.nodes_key(key, selected),
            Tab::Assets => self.assets_key(key, selected),
            Tab::Accounts => self.accounts_key(key),
            Tab::Permissions => match key {
                Key::Char('e') | Key::Enter => {
                    let perm = self
                        .console
                        .records
                        .perms
                        .iter()
                        .find(|p| Some(&p.name) == selected.as_ref())?;
                    let form = Editor::perm(Some(perm), &self.time_zone);
                    self.open_form(form)
                }
                Key::Char('a') => self.open_form(Editor::perm(None, &self.time_zone)),
                _ => None,
            },
            Tab::Filters => match key {
                Key::Char('a') => self.open_form(Editor::filter(None, &self.time_zone)),
                Key::Char('e') | Key::Enter => {
                    let filter = self
                        .console
                        .records
                        .filters
                        .iter()
                        .find(|f| Some(&f.name) == selected.as_ref())?;
                    let form = Editor::filter(Some(filter), &self.time_zone);
                    self.open_form(form)
                }
                _ => None,
            },
            Tab::Acls => match key {
                Key::Char('a') => self.open_form(Editor::acl(None, &self.time_zone)),
                Key::Char('e') | Key::Enter => {
                    let acl = self
                        .console
                        .records
                        .acls
                        .iter()
                        .find(|a| Some(&a.name) == selected.as_ref())?;
                    let form = Editor::acl(Some(acl), &self.time_zone);
                    self.open_form(form)
                }
                _ => None,
            },
            Tab::Reach
            | Tab::Dashboard
            | Tab::Live
            | Tab::Sessions
            | Tab::Commands
            | Tab::Transfers
            | Tab::Logins
            | Tab::Operations
            | Tab::Seen => None,
        }
    }

    /// `x` or Delete: asks before removing the selected entry.
    fn confirm_remove(&mut self, tab: Tab, name: String) -> Option<DeskOutcome> {
        let what = match tab {
            Tab::Users => "user (with their keys and group memberships)",
            Tab::Groups => "group",
            Tab::Nodes => "node",
            Tab::Assets => "asset (with its accounts)",
            Tab::Accounts => "account",
            Tab::Permissions => "permission",
            Tab::Filters => "command filter",
            Tab::Acls => "login ACL",
            Tab::Reach
            | Tab::Dashboard
            | Tab::Live
            | Tab::Sessions
            | Tab::Commands
            | Tab::Transfers
            | Tab::Logins
            | Tab::Operations
            | Tab::Seen => return None,
        };
        self.dialog = Some(Dialog::Confirm {
            text: format!("Remove {what} {name}? This cannot be undone."),
            op: Op::Remove { what: tab, name },
        });
        None
    }

    fn users_key(&mut self, key: Key, selected: Option<String>) -> Option<DeskOutcome> {
        match key {
            Key::Char('e') | Key::Enter => {
                self.console.loading_user = Some(UserThen::Edit);
                Some(DeskOutcome::LoadUser(selected?))
            }
            Key::Char('K') => {
                self.console.loading_user = Some(UserThen::Keys);
                Some(DeskOutcome::LoadUser(selected?))
            }
            Key::Char('a') => self.open_form(Editor::user(None, &self.time_zone)),
            Key::Char('d') => {
                let name = selected?;
                let active = self.selected_cell(Tab::Users, 2).as_deref() == Some("disabled");
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
            Key::Char('w') => self.ask_reach(ReachQuery::What(selected?)),
            Key::Char('u') => Some(DeskOutcome::Op(Op::UserUnlock { name: selected? })),
            Key::Char('M') => {
                let name = selected?;
                self.dialog = Some(Dialog::Confirm {
                    text: format!("Reset {name}'s MFA? They enrol again at their next login."),
                    op: Op::UserMfaReset { name },
                });
                None
            }
            Key::Char('p') => {
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

    fn groups_key(&mut self, key: Key, selected: Option<String>) -> Option<DeskOutcome> {
        match key {
            Key::Char('a') => {
                self.dialog = Some(Dialog::Prompt(Ask::GroupAdd, Field::plain(64)));
                None
            }
            Key::Char(c @ ('m' | 'r')) => {
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
            _ => None,
        }
    }

    fn nodes_key(&mut self, key: Key, selected: Option<String>) -> Option<DeskOutcome> {
        match key {
            Key::Char('e' | 'm') | Key::Enter => {
                let from = selected?;
                let mut field = Field::plain(400);
                field.set(&from);
                self.dialog = Some(Dialog::Prompt(Ask::NodeMove(from), field));
                None
            }
            Key::Char('a') => {
                self.dialog = Some(Dialog::Prompt(Ask::NodeAdd, Field::plain(400)));
                None
            }
            _ => None,
        }
    }

    fn assets_key(&mut self, key: Key, selected: Option<String>) -> Option<DeskOutcome> {
        match key {
            Key::Char('a') => self.open_form(Editor::asset(None, &self.time_zone)),
            Key::Char('e') | Key::Enter => {
                let asset = self
                    .console
                    .records
                    .assets
                    .iter()
                    .find(|a| Some(&a.name) == selected.as_ref())?;
                let form = Editor::asset(Some(asset), &self.time_zone);
                self.open_form(form)
            }
            Key::Char('t') => {
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
            Key::Char('w') => self.ask_reach(ReachQuery::Who(selected?)),
            _ => None,
        }
    }

    fn accounts_key(&mut self, key: Key) -> Option<DeskOutcome> {
        match key {
            Key::Char('a') => {
                let asset = self.selected_account().map(|a| a.asset.clone());
                let form = Editor::account(None, asset.as_deref(), &self.time_zone);
                self.open_form(form)
            }
            Key::Char('e') | Key::Enter => {
                let account = self.selected_account()?;
                let form = Editor::account(Some(account), None, &self.time_zone);
                self.open_form(form)
            }
            Key::Char('t') => {
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
            _ => None,
        }
    }
}
