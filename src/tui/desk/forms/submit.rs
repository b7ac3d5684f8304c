//! What a submitted form asks `ops` to do: the [`Op`] its fields make, or
//! why they do not make one yet, and the typed secret moved into an
//! account's change.

use jiff::Timestamp;

use super::super::Op;
use super::{Editing, Editor, NewUser, protocols, windows};
use crate::model::{AclAction, FilterAction, Role};
use crate::ops::{AccountSecret, AclSpec, AssetSpec, FilterSpec, PermSpec, parse_time};

impl Editor {
    fn time(&self, label: &str) -> Result<Option<Timestamp>, String> {
        match self.form.get(label) {
            "" => Ok(None),
            text => parse_time(text, &self.tz)
                .map(Some)
                .map_err(|e| e.to_string()),
        }
    }

    fn priority(&self) -> i32 {
        self.form.get("Priority").parse().unwrap_or(50)
    }

    /// The change valid fields make, or what keeps them from making a
    /// whole. An account's secret is not in it: see `with_secret`.
    pub(super) fn build(&self) -> Result<Op, String> {
        let f = &self.form;
        let text = |label: &str| f.get(label).to_string();
        let parse = |label: &str, e: &dyn std::fmt::Display| format!("{label}: {e}");
        match &self.what {
            Editing::User(name) => {
                let user = NewUser {
                    name: text("Name"),
                    role: f.chosen("Role").parse().unwrap_or(Role::User),
                    email: Some(text("Email")).filter(|e| !e.is_empty()),
                    groups: f.get_list("Groups"),
                    expires_at: self.time("Expires")?,
                };
                Ok(if name.is_some() {
                    Op::UserEdit(user)
                } else {
                    Op::UserAdd(user)
                })
            }
            Editing::Asset(name) => {
                let spec = AssetSpec {
                    name: text("Name"),
                    address: text("Address"),
                    protocols: protocols(f.get("Protocols"))?,
                    nodes: f.get_list("Nodes"),
                    platform: Some(text("Platform")).filter(|p| !p.is_empty()),
                    database: Some(text("Database")),
                    tls: f.is_on("TLS"),
                    url: Some(text("URL")),
                    comment: text("Comment"),
                    active: f.is_on("Active"),
                };
                Ok(add_or_edit(name, spec, Op::AssetAdd, |name, spec| {
                    Op::AssetEdit { name, spec }
                }))
            }
            Editing::Account(editing) => {
                let kind = f.chosen("Secret");
                let blank = f.is_blank("Value");
                match (kind, blank) {
                    ("password", true) => return Err("type the password under Value".into()),
                    ("private key", true) => {
                        return Err("paste the private key under Value".into());
                    }
                    ("keep" | "none", false) => {
                        return Err(format!(
                            "Value is used only with a password or a private key, not with {kind:?}"
                        ));
                    }
                    _ => {}
                }
                let privileged = f.is_on("Privileged");
                Ok(match editing {
                    Some((asset, username)) => Op::AccountEdit {
                        asset: asset.clone(),
                        username: username.clone(),
                        secret: None,
                        privileged,
                    },
                    None => Op::AccountAdd {
                        asset: text("Asset"),
                        username: text("Username"),
                        secret: AccountSecret::None,
                        privileged,
                    },
                })
            }
            Editing::Perm(name) => {
                let spec = PermSpec {
                    name: text("Name"),
                    users: f.get_list("Users"),
                    groups: f.get_list("Groups"),
                    assets: f.get_list("Assets"),
                    nodes: f.get_list("Nodes"),
                    accounts: f
                        .get("Accounts")
                        .parse()
                        .map_err(|e| parse("accounts", &e))?,
                    protocols: f
                        .get("Protocols")
                        .parse()
                        .map_err(|e| parse("protocols", &e))?,
                    actions: f.get("Actions").parse().map_err(|e| parse("actions", &e))?,
                    valid_from: self.time("From")?,
                    valid_until: self.time("Until")?,
                    comment: text("Comment"),
                    require_approval: f.is_on("Approval"),
                };
                if spec.users.is_empty() && spec.groups.is_empty() {
                    return Err("name at least one user or group".into());
                }
                if spec.assets.is_empty() && spec.nodes.is_empty() {
                    return Err("name at least one asset or node".into());
                }
                if let (Some(from), Some(until)) = (spec.valid_from, spec.valid_until)
                    && until <= from
                {
                    return Err("until must come after from".into());
                }
                Ok(add_or_edit(name, spec, Op::PermAdd, |name, spec| {
                    Op::PermEdit { name, spec }
                }))
            }
            Editing::Filter(name) => {
                let spec = FilterSpec {
                    name: text("Name"),
                    pattern: f.get("Pattern").to_string(),
                    action: f
                        .chosen("Action")
                        .parse::<FilterAction>()
                        .map_err(|e| parse("action", &e))?,
                    on: f.chosen("On").parse().map_err(|e| parse("on", &e))?,
                    priority: self.priority(),
                    users: f.get_list("Users"),
                    groups: f.get_list("Groups"),
                    assets: f.get_list("Assets"),
                    nodes: f.get_list("Nodes"),
                    accounts: f
                        .get("Accounts")
                        .parse()
                        .map_err(|e| parse("accounts", &e))?,
                };
                Ok(add_or_edit(name, spec, Op::FilterAdd, |name, spec| {
                    Op::FilterEdit { name, spec }
                }))
            }
            Editing::Acl(name) => {
                let spec = AclSpec {
                    name: text("Name"),
                    action: f
                        .chosen("Action")
                        .parse::<AclAction>()
                        .map_err(|e| parse("action", &e))?,
                    priority: self.priority(),
                    users: f.get_list("Users"),
                    groups: f.get_list("Groups"),
                    sources: f.get_list("Sources"),
                    windows: windows(f.get("Windows")),
                };
                if spec.users.is_empty() && spec.groups.is_empty() {
                    return Err("name at least one user or group".into());
                }
                Ok(add_or_edit(name, spec, Op::AclAdd, |name, spec| {
                    Op::AclEdit { name, spec }
                }))
            }
        }
    }

    /// Moves the typed secret into an account's change; the form keeps
    /// no copy.
    pub(super) fn with_secret(&mut self, op: Op) -> Op {
        let secret = match self.form.chosen("Secret") {
            "password" => Some(AccountSecret::Password(self.form.take_secret("Value"))),
            "private key" => Some(AccountSecret::PrivateKey(self.form.take_secret("Value"))),
            "none" => Some(AccountSecret::None),
            _ => None,
        };
        match op {
            Op::AccountAdd {
                asset,
                username,
                privileged,
                ..
            } => Op::AccountAdd {
                asset,
                username,
                secret: secret.unwrap_or(AccountSecret::None),
                privileged,
            },
            Op::AccountEdit {
                asset,
                username,
                privileged,
                ..
            } => Op::AccountEdit {
                asset,
                username,
                secret,
                privileged,
            },
            other => other,
        }
    }
}

/// The change a form makes: `add` for a new one, `edit` of the one called
/// `name`.
fn add_or_edit<S>(
    name: &Option<String>,
    spec: S,
    add: impl FnOnce(Box<S>) -> Op,
    edit: impl FnOnce(String, Box<S>) -> Op,
) -> Op {
    match name {
        None => add(Box::new(spec)),
        Some(name) => edit(name.clone(), Box::new(spec)),
    }
}
