//! Command-filter rules as the snapshot holds them: each active filter's
//! pattern compiled once, when the snapshot is built, and its bindings
//! resolved to snapshot positions. What a rule decides for a command is
//! `filter.rs`'s; the ops checks use [`check_pattern`] so that a
//! pattern they accept is one the build compiles.

use regex::{Regex, RegexBuilder};

use super::PolicyError;
use super::data::FilterEntry;
use super::lookup::Lookup;
use crate::model::FilterAction;

/// Compiled patterns larger than this are refused: a filter runs on every
/// command of every session.
const PATTERN_SIZE_LIMIT: usize = 1 << 20;

#[derive(Debug)]
pub(super) enum Binding {
    Any,
    /// Positions of listed users/assets and groups/nodes; sorted.
    Some(Vec<u32>, Vec<u32>),
}

#[derive(Debug)]
pub(super) struct FilterRec {
    pub(super) name: String,
    pub(super) regex: Regex,
    pub(super) action: FilterAction,
    pub(super) on: crate::model::Scope,
    pub(super) subjects: Binding,
    pub(super) targets: Binding,
    pub(super) any_account: bool,
    pub(super) all_accounts: bool,
    pub(super) input: bool,
    pub(super) same_user: bool,
    pub(super) names: Vec<String>,
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
                on: f.on,
                subjects,
                targets,
            })
        })
        .collect()
}

/// Checks that a filter pattern compiles the way [`super::Snapshot::build`] will
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
