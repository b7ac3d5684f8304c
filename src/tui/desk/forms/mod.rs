//! The console's forms: a user, an asset, an account, a permission, a
//! command filter and a login ACL, each to create or (pre-filled) to edit.
//! Every field is checked as it is typed by the parsers `ops` uses, so what
//! the form accepts is what `ops` accepts; `ops` still decides, and what it
//! refuses brings the form back with the reason (see `Desk::op_done`).
//! This file lays the forms out; `submit.rs` turns a filled-in one into
//! its [`Op`].

mod submit;

use jiff::Timestamp;
use jiff::tz::TimeZone;
use ratatui::Frame;
use ratatui::layout::Rect;

use super::super::field::Field;
use super::super::form::{Form, FormKey};
use super::super::input::Key;
use super::super::theme::Theme;
use super::Op;
use crate::auth::{WeeklyWindow, parse_sources};
use crate::model::{
    self, Account, AccountSpec, Actions, Asset, CommandFilter, LoginAcl, Permission, Protocol,
    ProtocolSpec, Role,
};
use crate::ops::{UserView, parse_time};

/// The names a form may bind, for completion and checking.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Names {
    pub users: Vec<String>,
    pub groups: Vec<String>,
    pub assets: Vec<String>,
    pub nodes: Vec<String>,
}

/// A user made or changed in the console.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewUser {
    pub name: String,
    pub role: Role,
    pub email: Option<String>,
    pub groups: Vec<String>,
    pub expires_at: Option<Timestamp>,
}

/// What a form makes; `None` in a name: a new one.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Editing {
    User(Option<String>),
    Asset(Option<String>),
    /// The account's asset and username.
    Account(Option<(String, String)>),
    Perm(Option<String>),
    Filter(Option<String>),
    Acl(Option<String>),
}

const ROLES: [&str; 3] = ["user", "auditor", "admin"];
const SECRET_NEW: [&str; 3] = ["password", "private key", "none"];
const SECRET_EDIT: [&str; 4] = ["keep", "password", "private key", "none"];
const FILTER_ACTIONS: [&str; 4] = ["deny", "review", "warn", "allow"];
const FILTER_SCOPES: [&str; 3] = ["shell", "sql", "redis"];
const ACL_ACTIONS: [&str; 2] = ["deny", "allow"];
/// Longest private key accepted when pasted (an RSA 8192 key is ~6.5 KB).
const MAX_KEY_CHARS: usize = 16 * 1024;

/// A form of the console and what it is for.
pub(super) struct Editor {
    what: Editing,
    form: Form,
    tz: TimeZone,
    /// Why `ops` refused the last submission, until the form is changed.
    refused: Option<String>,
}

impl std::fmt::Debug for Editor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Editor")
            .field("what", &self.what)
            .finish_non_exhaustive()
    }
}

/// What a key did to an editor.
pub(super) enum Edited {
    Cancel,
    Submit(Op),
}

fn name_check(kind: &'static str) -> impl Fn(&str) -> Result<(), String> + Send + Sync {
    move |text| model::check_name(kind, text).map_err(|e| e.expected)
}

fn parses<T: std::str::FromStr>() -> impl Fn(&str) -> Result<(), String> + Send + Sync
where
    T::Err: std::fmt::Display,
{
    |text| {
        text.parse::<T>()
            .map(|_| ())
            .map_err(|e| short(&e.to_string()))
    }
}

/// A parse error without the "X \"given\" is not valid: " head, which
/// the field beside it already says.
fn short(message: &str) -> String {
    message
        .split_once("expected ")
        .map_or(message.to_string(), |(_, tail)| format!("expected {tail}"))
}

fn time_check(tz: &TimeZone) -> impl Fn(&str) -> Result<(), String> + Send + Sync + use<> {
    let tz = tz.clone();
    move |text| {
        parse_time(text, &tz)
            .map(|_| ())
            .map_err(|e| short(&e.to_string()))
    }
}

fn protocols(text: &str) -> Result<Vec<Protocol>, String> {
    let list = super::super::form::list(text)
        .iter()
        .map(|p| p.parse::<Protocol>().map_err(|e| short(&e.to_string())))
        .collect::<Result<Vec<_>, _>>()?;
    for (i, p) in list.iter().enumerate() {
        if list
            .get(..i)
            .is_some_and(|l| l.iter().any(|q| q.name == p.name))
        {
            return Err(format!("{} is given twice", p.name));
        }
    }
    Ok(list)
}

/// Weekly windows are separated by `;` (a window's days use commas).
fn windows(text: &str) -> Vec<String> {
    text.split(';')
        .map(str::trim)
        .filter(|w| !w.is_empty())
        .map(str::to_string)
        .collect()
}

fn local(at: Option<Timestamp>, tz: &TimeZone) -> String {
    at.map(|t| {
        t.to_zoned(tz.clone())
            .strftime("%Y-%m-%d %H:%M")
            .to_string()
    })
    .unwrap_or_default()
}

fn title(new: &str, editing: Option<&str>) -> String {
    match editing {
        None => format!("New {new}"),
        Some(name) => format!("Edit {new} {name}"),
    }
}

fn action(editing: bool) -> &'static str {
    if editing { "save" } else { "create" }
}

/// A form for a new `what`, or to edit the one called `name`, that opens
/// with the name (checked as a name of `kind`).
fn named(what: &str, kind: &'static str, hint: &str, name: Option<&str>) -> Form {
    Form::new(title(what, name), action(name.is_some()))
        .text("Name", 64, hint)
        .required()
        .check(name_check(kind))
        .value(name.unwrap_or(""))
}

/// The bindings shared by permissions and filters: users, groups, assets
/// and nodes, filled in from `now` when editing.
fn bindings(form: Form, now: Option<[&[String]; 4]>) -> Form {
    let [users, groups, assets, nodes] = now.unwrap_or_default();
    form.names("Users", "user", "comma separated; Tab completes")
        .value(&users.join(", "))
        .names("Groups", "group", "comma separated; Tab completes")
        .value(&groups.join(", "))
        .names("Assets", "asset", "comma separated; Tab completes")
        .value(&assets.join(", "))
        .names("Nodes", "node", "/DEFAULT/prod; Tab completes")
        .value(&nodes.join(", "))
}

impl Editor {
    fn with(what: Editing, form: Form, tz: &TimeZone) -> Editor {
        Editor {
            what,
            form,
            tz: tz.clone(),
            refused: None,
        }
    }

    pub(super) fn user(view: Option<&UserView>, tz: &TimeZone) -> Editor {
        let user = view.map(|v| &v.user);
        let form = named("user", "name", "alice", user.map(|u| u.name.as_str()));
        let form = if user.is_some() { form.locked() } else { form };
        let form = form
            .choice("Role", &ROLES)
            .value(&user.map_or(Role::User, |u| u.role).to_string())
            .text("Email", 254, "optional")
            .check(|t| model::check_email(t).map_err(|e| e.expected))
            .value(user.and_then(|u| u.email.as_deref()).unwrap_or(""))
            .names("Groups", "group", "optional; Tab completes")
            .value(&view.map(|v| v.groups.join(", ")).unwrap_or_default())
            .text("Expires", 40, "optional: 2026-12-31 or 2026-12-31 18:00")
            .check(time_check(tz))
            .value(&local(user.and_then(|u| u.expires_at), tz));
        Editor::with(Editing::User(user.map(|u| u.name.clone())), form, tz)
    }

    pub(super) fn asset(asset: Option<&Asset>, tz: &TimeZone) -> Editor {
        let protocols_text = asset.map(|a| {
            a.protocols
                .iter()
                .map(|p| format!("{}/{}", p.name, p.port))
                .collect::<Vec<_>>()
                .join(", ")
        });
        let form = named(
            "asset",
            "asset name",
            "web1",
            asset.map(|a| a.name.as_str()),
        )
        .text("Address", 253, "10.0.0.7 or web1.example.com")
        .required()
        .check(|t| model::check_address(t).map_err(|e| e.expected))
        .value(asset.map_or("", |a| a.address.as_str()))
        .text("Protocols", 200, "ssh/22, sftp/22")
        .required()
        .check(|t| protocols(t).map(|_| ()))
        .value(protocols_text.as_deref().unwrap_or("ssh/22"))
        .names("Nodes", "node", "/DEFAULT if empty; Tab completes")
        .value(&asset.map(|a| a.nodes.join(", ")).unwrap_or_default())
        .text("Platform", 64, "linux")
        .check(name_check("platform"))
        .value(asset.map_or("linux", |a| a.platform.as_str()))
        .text(
            "Database",
            63,
            "default database of a database asset; optional",
        )
        .value(asset.map_or("", |a| a.database.as_str()))
        .text("URL", 400, "a web asset's site: https://HOST[:PORT]/")
        .value(asset.map_or("", |a| a.url.as_str()))
        .toggle(
            "TLS",
            "a database server reached over TLS, its certificate pinned",
        )
        .on(asset.is_some_and(|a| a.tls))
        .toggle("Active", "people can connect to it")
        .on(asset.is_none_or(|a| a.active))
        .text("Comment", 400, "optional")
        .value(asset.map_or("", |a| a.comment.as_str()));
        Editor::with(Editing::Asset(asset.map(|a| a.name.clone())), form, tz)
    }

    /// An account to add (on `asset`, if one is selected) or to edit.
    pub(super) fn account(account: Option<&Account>, asset: Option<&str>, tz: &TimeZone) -> Editor {
        let editing = account.map(|a| (a.asset.clone(), a.username.clone()));
        let form = Form::new(
            title(
                "account",
                editing.as_ref().map(|(a, u)| format!("{u}@{a}")).as_deref(),
            ),
            action(account.is_some()),
        )
        .names("Asset", "asset", "web1; Tab completes")
        .required()
        .check(|t| match super::super::form::list(t).len() {
            1 => Ok(()),
            _ => Err("one asset".to_string()),
        })
        .value(account.map_or(asset.unwrap_or(""), |a| a.asset.as_str()));
        let form = if account.is_some() {
            form.locked()
        } else {
            form
        };
        let form = form
            .text("Username", 64, "root")
            .required()
            .check(name_check("account username"))
            .value(account.map_or("", |a| a.username.as_str()));
        let form = if account.is_some() {
            form.locked()
        } else {
            form
        };
        let form = if account.is_some() {
            form.choice("Secret", &SECRET_EDIT)
        } else {
            form.choice("Secret", &SECRET_NEW)
        };
        let form = form
            .secret(
                "Value",
                Field::masked(MAX_KEY_CHARS).keep_lines(),
                "typed password, or a pasted private key",
            )
            .toggle("Privileged", "root or sudo-capable (shown in menus)")
            .on(account.is_some_and(|a| a.privileged));
        Editor::with(Editing::Account(editing), form, tz)
    }

    pub(super) fn perm(perm: Option<&Permission>, tz: &TimeZone) -> Editor {
        let form = named(
            "permission",
            "name",
            "web-ops",
            perm.map(|p| p.name.as_str()),
        );
        let form = bindings(
            form,
            perm.map(|p| [&p.users[..], &p.groups, &p.assets, &p.nodes]),
        );
        let form = form
            .text("Accounts", 400, "@ALL, @INPUT, @USER or usernames")
            .check(parses::<AccountSpec>())
            .value(&perm.map_or("@ALL".into(), |p| p.accounts.to_string()))
            .text("Protocols", 200, "all, or ssh,sftp,...")
            .check(parses::<ProtocolSpec>())
            .value(&perm.map_or("all".into(), |p| p.protocols.to_string()))
            .text(
                "Actions",
                200,
                "all, or connect,upload,download,delete,copy,paste,share,tunnel",
            )
            .check(parses::<Actions>())
            .value(&perm.map_or("connect".into(), |p| p.actions.to_string()))
            .text("From", 40, "optional: 2026-12-01 or 2026-12-01 08:00")
            .check(time_check(tz))
            .value(&local(perm.and_then(|p| p.valid_from), tz))
            .text("Until", 40, "optional: 2026-12-31 or 2026-12-31 18:00")
            .check(time_check(tz))
            .value(&local(perm.and_then(|p| p.valid_until), tz))
            .toggle("Approval", "each connection waits for an admin's approval")
            .on(perm.is_some_and(|p| p.require_approval))
            .text("Comment", 400, "optional")
            .value(perm.map_or("", |p| p.comment.as_str()));
        Editor::with(Editing::Perm(perm.map(|p| p.name.clone())), form, tz)
    }

    pub(super) fn filter(filter: Option<&CommandFilter>, tz: &TimeZone) -> Editor {
        let form = named(
            "command filter",
            "filter name",
            "no-reboot",
            filter.map(|f| f.name.as_str()),
        )
        .text(
            "Pattern",
            400,
            r"a regex matched against each command: ^(reboot|shutdown)\b",
        )
        .required()
        .check(crate::policy::check_pattern)
        .value(filter.map_or("", |f| f.pattern.as_str()))
        .choice("Action", &FILTER_ACTIONS)
        .value(&filter.map_or("deny".into(), |f| f.action.to_string()))
        .choice("On", &FILTER_SCOPES)
        .value(filter.map_or("shell", |f| f.on.as_str()))
        .text("Priority", 6, "50: lower numbers win among non-deny rules")
        .check(parses::<i32>())
        .value(&filter.map_or(50, |f| f.priority).to_string());
        let form = bindings(
            form,
            filter.map(|f| [&f.users[..], &f.groups, &f.assets, &f.nodes]),
        );
        let form = form
            .text("Accounts", 400, "@ALL, or account usernames")
            .check(parses::<AccountSpec>())
            .value(&filter.map_or("@ALL".into(), |f| f.accounts.to_string()));
        Editor::with(Editing::Filter(filter.map(|f| f.name.clone())), form, tz)
    }

    pub(super) fn acl(acl: Option<&LoginAcl>, tz: &TimeZone) -> Editor {
        let form = named(
            "login ACL",
            "acl name",
            "office-only",
            acl.map(|a| a.name.as_str()),
        )
        .choice("Action", &ACL_ACTIONS)
        .value(acl.map_or("deny", |a| a.action.as_str()))
        .text("Priority", 6, "50: lower numbers are tried first")
        .check(parses::<i32>())
        .value(&acl.map_or(50, |a| a.priority).to_string())
        .names("Users", "user", "comma separated; Tab completes")
        .value(&acl.map(|a| a.users.join(", ")).unwrap_or_default())
        .names("Groups", "group", "comma separated; Tab completes")
        .value(&acl.map(|a| a.groups.join(", ")).unwrap_or_default())
        .text("Sources", 2000, "any if empty: 10.0.0.0/8, 192.0.2.7")
        .check(|t| {
            parse_sources(&super::super::form::list(t))
                .map(|_| ())
                .map_err(|e| short(&e.to_string()))
        })
        .value(&acl.map(|a| a.sources.join(", ")).unwrap_or_default())
        .text(
            "Windows",
            2000,
            "always if empty: Mon-Fri 08:00-18:00; Sat 09:00-12:00",
        )
        .check(|t| {
            windows(t)
                .iter()
                .try_for_each(|w| WeeklyWindow::parse(w).map(|_| ()))
                .map_err(|e| short(&e.to_string()))
        })
        .value(&acl.map(|a| a.windows.join("; ")).unwrap_or_default());
        Editor::with(Editing::Acl(acl.map(|a| a.name.clone())), form, tz)
    }

    /// Whether the form completes names, which the caller loads.
    pub(super) fn wants_names(&self) -> bool {
        !matches!(self.what, Editing::Account(Some(_)))
    }

    pub(super) fn set_names(&mut self, names: &Names) {
        self.form.set_known("user", &names.users);
        self.form.set_known("group", &names.groups);
        self.form.set_known("asset", &names.assets);
        self.form.set_known("node", &names.nodes);
    }

    /// Brings the form back with why `ops` refused it.
    pub(super) fn refuse(&mut self, reason: String) {
        self.refused = Some(reason);
    }

    fn problem(&self) -> Option<String> {
        if self.form.error().is_some() {
            return None;
        }
        self.build().err()
    }

    pub(super) fn handle(&mut self, key: &Key) -> Option<Edited> {
        self.refused = None;
        match self.form.handle(key)? {
            FormKey::Cancel => Some(Edited::Cancel),
            FormKey::Submit => match self.build() {
                Ok(op) => Some(Edited::Submit(self.with_secret(op))),
                Err(e) => {
                    self.refused = Some(e);
                    None
                }
            },
        }
    }

    pub(super) fn render(&self, frame: &mut Frame, area: Rect, theme: &Theme) {
        self.form
            .render(frame, area, theme, self.problem().or(self.refused.clone()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::AclAction;
    use crate::ops::AccountSecret;

    fn typed(editor: &mut Editor, text: &str) {
        for c in text.chars() {
            editor.handle(&Key::Char(c));
        }
    }

    fn names() -> Names {
        Names {
            users: vec!["alice".into(), "bob".into()],
            groups: vec!["ops".into()],
            assets: vec!["web1".into(), "web2".into()],
            nodes: vec!["/DEFAULT/prod".into()],
        }
    }

    #[test]
    fn a_permission_is_what_was_typed_and_needs_who_and_where() {
        let mut form = Editor::perm(None, &TimeZone::UTC);
        form.set_names(&names());
        typed(&mut form, "web-ops");
        assert_eq!(
            form.problem(),
            Some("name at least one user or group".into())
        );
        form.handle(&Key::Down);
        typed(&mut form, "al");
        form.handle(&Key::Tab);
        typed(&mut form, ", bob");
        form.handle(&Key::Down);
        form.handle(&Key::Down);
        typed(&mut form, "we");
        form.handle(&Key::Tab);
        assert_eq!(form.problem(), None);
        // Accounts, Protocols, Actions, From, Until, Approval.
        for _ in 0..4 {
            form.handle(&Key::Down);
        }
        form.handle(&Key::Ctrl('u'));
        typed(&mut form, "connect,upload");
        form.handle(&Key::Down);
        form.handle(&Key::Down);
        typed(&mut form, "2030-01-01");
        form.handle(&Key::Down);
        form.handle(&Key::Char(' '));
        match form.handle(&Key::Enter) {
            Some(Edited::Submit(Op::PermAdd(spec))) => {
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
            _ => panic!("the form should submit: {:?}", form.problem()),
        }
    }

    #[test]
    fn an_edited_permission_starts_from_what_it_is_and_keeps_its_name() {
        let perm = Permission {
            id: "p1".into(),
            name: "web-ops".into(),
            users: vec!["alice".into()],
            groups: vec![],
            assets: vec![],
            nodes: vec!["/DEFAULT/prod".into()],
            accounts: "root".parse().unwrap(),
            protocols: "ssh".parse().unwrap(),
            actions: "connect".parse().unwrap(),
            valid_from: None,
            valid_until: None,
            active: true,
            comment: "on call".into(),
            require_approval: false,
        };
        let mut form = Editor::perm(Some(&perm), &TimeZone::UTC);
        form.set_names(&names());
        form.handle(&Key::Down);
        typed(&mut form, ", bob");
        match form.handle(&Key::Enter) {
            Some(Edited::Submit(Op::PermEdit { name, spec })) => {
                assert_eq!(name, "web-ops");
                assert_eq!(spec.users, ["alice", "bob"]);
                assert_eq!(spec.nodes, ["/DEFAULT/prod"]);
                assert_eq!(spec.accounts.to_string(), "root");
                assert_eq!(spec.comment, "on call");
            }
            _ => panic!("the form should submit: {:?}", form.problem()),
        }
    }

    #[test]
    fn an_account_takes_its_secret_out_of_the_form() {
        let mut form = Editor::account(None, Some("web1"), &TimeZone::UTC);
        form.set_names(&names());
        assert_eq!(form.form.get("Asset"), "web1", "the selected asset");
        form.handle(&Key::Down);
        typed(&mut form, "deploy");
        form.handle(&Key::Enter);
        assert_eq!(
            form.problem(),
            Some("type the password under Value".into()),
            "a password account without one"
        );
        form.handle(&Key::Down);
        form.handle(&Key::Down);
        typed(&mut form, "s3cret pw");
        let Some(Edited::Submit(Op::AccountAdd {
            asset,
            username,
            secret: AccountSecret::Password(pw),
            privileged: false,
        })) = form.handle(&Key::Enter)
        else {
            panic!("the form should submit: {:?}", form.problem());
        };
        assert_eq!((asset.as_str(), username.as_str()), ("web1", "deploy"));
        assert_eq!(pw.expose(), "s3cret pw");
        assert!(form.form.is_blank("Value"), "no copy stays in the form");
    }

    #[test]
    fn acl_windows_are_split_on_semicolons_and_checked() {
        let mut form = Editor::acl(None, &TimeZone::UTC);
        form.set_names(&names());
        typed(&mut form, "office");
        form.handle(&Key::Down);
        form.handle(&Key::Right);
        form.handle(&Key::Down);
        form.handle(&Key::Down);
        typed(&mut form, "bob");
        form.handle(&Key::Down);
        form.handle(&Key::Down);
        typed(&mut form, "10.0.0.0/8, 192.0.2.7");
        form.handle(&Key::Down);
        typed(&mut form, "Mon-Fri 08:00-18:00; Sat,Sun");
        assert_eq!(form.form.error(), None);
        match form.handle(&Key::Enter) {
            Some(Edited::Submit(Op::AclAdd(spec))) => {
                assert_eq!(spec.action, AclAction::Allow);
                assert_eq!(spec.users, ["bob"]);
                assert_eq!(spec.sources, ["10.0.0.0/8", "192.0.2.7"]);
                assert_eq!(spec.windows, ["Mon-Fri 08:00-18:00", "Sat,Sun"]);
            }
            _ => panic!("the form should submit: {:?}", form.problem()),
        }
        let mut bad = Editor::acl(None, &TimeZone::UTC);
        typed(&mut bad, "late");
        for _ in 0..6 {
            bad.handle(&Key::Down);
        }
        typed(&mut bad, "Someday 25:00");
        assert!(
            bad.form.error().is_some_and(|e| e.starts_with("windows: ")),
            "{:?}",
            bad.form.error()
        );
    }
}
