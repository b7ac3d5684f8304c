//! Command filters: which rule, if any, decides a command typed into a
//! session. The rules were compiled when the snapshot was built
//! ([`super::rule`]).
//!
//! A filter applies to a session when it is active and its bindings match:
//! - users/groups: the person is listed or is a member (snapshot membership)
//!   of a listed group; both lists empty means everyone;
//! - assets/nodes: the asset is listed or filed under a listed node or one of
//!   its descendants; both empty means every asset;
//! - accounts: `@ALL` is any account, stored or typed in; a username matches
//!   that username whether stored or typed in (a rule against `root` must not
//!   be dodged by typing `root` in); `@USER` matches the account named like
//!   the person; `@INPUT` matches typed-in accounts only; an empty spec means
//!   any account.
//!
//! Bindings that name only removed users or assets bind to nobody, never to
//! everyone: "empty means any" is decided on the stored lists.
//!
//! Among applicable filters whose pattern matches anywhere in the command, a
//! deny wins; otherwise the lowest priority number, ties broken by name.
//!
//! A filter applies only to what its scope names (`--on`): the lines typed
//! into terminal sessions (`shell`), or the statements of database sessions
//! (`sql`, `redis`), each checked on its own.

use super::Snapshot;
use super::grant::{Grant, GrantAccount};
use super::rule::{Binding, FilterRec};
use crate::model::{FilterAction, Identity, Scope};

/// What to do with a command, and the rule that decided it (`None` when no
/// rule matched and the command is allowed by default).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FilterVerdict {
    pub action: FilterAction,
    pub rule: Option<String>,
}

/// The session a command is checked for, resolved against the snapshot.
struct Session<'a> {
    user: Option<u32>,
    person: &'a str,
    asset: Option<u32>,
    account: &'a GrantAccount,
}

impl Snapshot {
    /// The verdict on `command` typed by `who` into a session on `asset`
    /// (by name) as `account`.
    pub fn check_command(
        &self,
        who: &Identity,
        asset: &str,
        account: &GrantAccount,
        command: &str,
    ) -> FilterVerdict {
        let user = self.user_by_id.get(&who.user_id).copied();
        let person = match user {
            Some(u) => self.users[u as usize].name.as_str(),
            None => who.name.as_str(),
        };
        let session = Session {
            user,
            person,
            asset: self.asset_by_name.get(asset).copied(),
            account,
        };
        self.verdict(&session, Scope::Shell, command)
    }

    /// The verdict on `command` typed into the session `grant` opened. By
    /// ids, so it holds across renames and snapshot rebuilds.
    pub fn check_grant_command(&self, grant: &Grant, command: &str) -> FilterVerdict {
        let user = self.user_by_id.get(grant.user_id()).copied();
        let person = match user {
            Some(u) => self.users[u as usize].name.as_str(),
            None => grant.user_name(),
        };
        let session = Session {
            user,
            person,
            asset: self.asset_by_id.get(grant.asset_id()).copied(),
            account: grant.account(),
        };
        self.verdict(&session, Scope::Shell, command)
    }

    /// The verdict on one statement of a database session `grant` opened,
    /// by the rules of `scope`.
    pub fn check_grant_statement(
        &self,
        grant: &Grant,
        scope: Scope,
        statement: &str,
    ) -> FilterVerdict {
        let user = self.user_by_id.get(grant.user_id()).copied();
        let session = Session {
            user,
            person: match user {
                Some(u) => self.users[u as usize].name.as_str(),
                None => grant.user_name(),
            },
            asset: self.asset_by_id.get(grant.asset_id()).copied(),
            account: grant.account(),
        };
        self.verdict(&session, scope, statement)
    }

    /// Whether any deny or review rule applies to the session `grant`
    /// opened, whatever the command: a line nobody can read must then not
    /// go through unchecked.
    pub fn grant_is_guarded(&self, grant: &Grant) -> bool {
        let user = self.user_by_id.get(grant.user_id()).copied();
        let session = Session {
            user,
            person: match user {
                Some(u) => self.users[u as usize].name.as_str(),
                None => grant.user_name(),
            },
            asset: self.asset_by_id.get(grant.asset_id()).copied(),
            account: grant.account(),
        };
        self.filters.iter().any(|f| {
            f.on == Scope::Shell
                && matches!(f.action, FilterAction::Deny | FilterAction::Review)
                && self.filter_applies(f, &session)
        })
    }

    fn verdict(&self, session: &Session<'_>, scope: Scope, command: &str) -> FilterVerdict {
        // Filters are sorted by (priority, name): the first matching non-deny
        // rule wins unless a deny matches anywhere, so once one is found only
        // deny rules still need their pattern run.
        let mut chosen: Option<&FilterRec> = None;
        for f in &self.filters {
            let deny = match f.action {
                FilterAction::Deny => true,
                FilterAction::Allow | FilterAction::Warn | FilterAction::Review => false,
            };
            if (chosen.is_some() && !deny)
                || f.on != scope
                || !self.filter_applies(f, session)
                || !f.regex.is_match(command)
            {
                continue;
            }
            if deny {
                return FilterVerdict {
                    action: f.action,
                    rule: Some(f.name.clone()),
                };
            }
            chosen = Some(f);
        }
        match chosen {
            Some(f) => FilterVerdict {
                action: f.action,
                rule: Some(f.name.clone()),
            },
            None => FilterVerdict {
                action: FilterAction::Allow,
                rule: None,
            },
        }
    }

    fn filter_applies(&self, f: &FilterRec, s: &Session<'_>) -> bool {
        let subject = match (&f.subjects, s.user) {
            (Binding::Any, _) => true,
            (Binding::Some(..), None) => false,
            (Binding::Some(users, groups), Some(u)) => {
                users.binary_search(&u).is_ok()
                    || self.users[u as usize]
                        .groups
                        .iter()
                        .any(|g| groups.binary_search(g).is_ok())
            }
        };
        let target = match (&f.targets, s.asset) {
            (Binding::Any, _) => true,
            (Binding::Some(..), None) => false,
            (Binding::Some(assets, nodes), Some(a)) => {
                assets.binary_search(&a).is_ok()
                    || nodes
                        .iter()
                        .any(|&n| self.node_covers(n, &self.assets[a as usize]))
            }
        };
        let username = s.account.username();
        let account = f.any_account
            || f.all_accounts
            || (f.input && s.account.is_typed_in())
            || (f.same_user && username == s.person)
            || f.names.iter().any(|n| n == username);
        subject && target && account
    }
}
