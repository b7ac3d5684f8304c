//! Command filters: which rule, if any, decides a command typed into a
//! session. Patterns are compiled once, when the snapshot is built.
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

use regex::{Regex, RegexBuilder};

use super::data::FilterEntry;
use super::grant::{Grant, GrantAccount};
use super::index::Lookup;
use super::{PolicyError, Snapshot};
use crate::model::{FilterAction, Identity};

/// Compiled patterns larger than this are refused: a filter runs on every
/// command of every session.
const PATTERN_SIZE_LIMIT: usize = 1 << 20;

/// What to do with a command, and the rule that decided it (`None` when no
/// rule matched and the command is allowed by default).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FilterVerdict {
    pub action: FilterAction,
    pub rule: Option<String>,
}

#[derive(Debug)]
enum Binding {
    Any,
    /// Positions of listed users/assets and groups/nodes; sorted.
    Some(Vec<u32>, Vec<u32>),
}

#[derive(Debug)]
pub(super) struct FilterRec {
    name: String,
    regex: Regex,
    action: FilterAction,
    subjects: Binding,
    targets: Binding,
    any_account: bool,
    all_accounts: bool,
    input: bool,
    same_user: bool,
    names: Vec<String>,
}

pub(super) fn build(
    filters: Vec<FilterEntry>,
    lookup: &Lookup,
) -> Result<Vec<FilterRec>, PolicyError> {
    let mut active: Vec<FilterEntry> = filters.into_iter().filter(|f| f.active).collect();
    active.sort_by(|a, b| (a.priority, &a.name, &a.id).cmp(&(b.priority, &b.name, &b.id)));
    active
        .into_iter()
        .map(|f| {
            let regex = RegexBuilder::new(&f.pattern)
                .size_limit(PATTERN_SIZE_LIMIT)
                .build()
                .map_err(|e| PolicyError::BadPattern {
                    filter: f.name.clone(),
                    pattern: f.pattern.clone(),
                    reason: one_line(&e),
                })?;
            let subjects = if f.user_ids.is_empty() && f.group_ids.is_empty() {
                Binding::Any
            } else {
                Binding::Some(
                    Lookup::resolve(&lookup.users, &f.user_ids),
                    Lookup::resolve(&lookup.groups, &f.group_ids),
                )
            };
            let targets = if f.asset_ids.is_empty() && f.node_ids.is_empty() {
                Binding::Any
            } else {
                Binding::Some(
                    Lookup::resolve(&lookup.assets, &f.asset_ids),
                    Lookup::resolve(&lookup.nodes, &f.node_ids),
                )
            };
            let spec = f.accounts;
            Ok(FilterRec {
                any_account: !spec.all && !spec.input && !spec.same_user && spec.names.is_empty(),
                all_accounts: spec.all,
                input: spec.input,
                same_user: spec.same_user,
                names: spec.names,
                name: f.name,
                regex,
                action: f.action,
                subjects,
                targets,
            })
        })
        .collect()
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
        self.verdict(&session, command)
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
        self.verdict(&session, command)
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
            matches!(f.action, FilterAction::Deny | FilterAction::Review)
                && self.filter_applies(f, &session)
        })
    }

    fn verdict(&self, session: &Session<'_>, command: &str) -> FilterVerdict {
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

/// Checks that a filter pattern compiles the way [`Snapshot::build`] will
/// compile it; the error is the regex crate's own message.
pub fn check_pattern(pattern: &str) -> Result<(), String> {
    RegexBuilder::new(pattern)
        .size_limit(PATTERN_SIZE_LIMIT)
        .build()
        .map(|_| ())
        .map_err(|e| one_line(&e))
}

/// The regex crate reports syntax errors over several lines (the pattern,
/// a caret, the error); a refusal is one line, so keep the error and say
/// where the caret pointed.
fn one_line(e: &regex::Error) -> String {
    let text = e.to_string();
    let lines: Vec<&str> = text.lines().collect();
    let error = lines
        .iter()
        .find_map(|l| l.strip_prefix("error: "))
        .unwrap_or(text.as_str());
    // The pattern line and the caret line share a 4-space indent.
    let column = lines
        .iter()
        .find(|l| l.trim_start().starts_with('^'))
        .and_then(|l| l.find('^'))
        .map(|i| i.saturating_sub(4) + 1);
    match column {
        Some(c) if lines.len() > 1 => format!("{error} (at character {c})"),
        _ => error.replace('\n', " "),
    }
}
