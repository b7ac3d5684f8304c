//! The plain input the policy engine is built from. The store loads it in one
//! pass (`store::policy::load`); tests and benchmarks build it by hand.
//! References between entries are by id.

use jiff::Timestamp;

use crate::model::{AccountSpec, Actions, FilterAction, Id, Protocol, ProtocolSpec};

#[derive(Debug, Clone, Default)]
pub struct PolicyData {
    pub users: Vec<UserEntry>,
    pub groups: Vec<GroupEntry>,
    pub nodes: Vec<NodeEntry>,
    pub assets: Vec<AssetEntry>,
    pub accounts: Vec<AccountEntry>,
    pub permissions: Vec<PermissionEntry>,
    pub filters: Vec<FilterEntry>,
}

#[derive(Debug, Clone)]
pub struct UserEntry {
    pub id: Id,
    pub name: String,
    pub active: bool,
    pub expires_at: Option<Timestamp>,
}

#[derive(Debug, Clone)]
pub struct GroupEntry {
    pub id: Id,
    pub name: String,
    pub member_ids: Vec<Id>,
}

/// A node of the tree; `path` is normalised (`/DEFAULT/prod`), and every
/// ancestor path of a node is itself a node.
#[derive(Debug, Clone)]
pub struct NodeEntry {
    pub id: Id,
    pub path: String,
}

#[derive(Debug, Clone)]
pub struct AssetEntry {
    pub id: Id,
    pub name: String,
    pub address: String,
    pub platform: String,
    pub comment: String,
    pub active: bool,
    pub protocols: Vec<Protocol>,
    pub node_ids: Vec<Id>,
}

#[derive(Debug, Clone)]
pub struct AccountEntry {
    pub id: Id,
    pub asset_id: Id,
    pub username: String,
    pub privileged: bool,
    pub active: bool,
}

#[derive(Debug, Clone)]
pub struct PermissionEntry {
    pub id: Id,
    pub name: String,
    pub user_ids: Vec<Id>,
    pub group_ids: Vec<Id>,
    pub asset_ids: Vec<Id>,
    pub node_ids: Vec<Id>,
    pub accounts: AccountSpec,
    pub protocols: ProtocolSpec,
    pub actions: Actions,
    pub valid_from: Option<Timestamp>,
    pub valid_until: Option<Timestamp>,
    pub active: bool,
    pub require_approval: bool,
}

/// A command filter rule; empty binding lists mean "any" (see
/// `model::CommandFilter`).
#[derive(Debug, Clone)]
pub struct FilterEntry {
    pub id: Id,
    pub name: String,
    pub pattern: String,
    pub action: FilterAction,
    pub on: crate::model::Scope,
    pub priority: i32,
    pub user_ids: Vec<Id>,
    pub group_ids: Vec<Id>,
    pub asset_ids: Vec<Id>,
    pub node_ids: Vec<Id>,
    pub accounts: AccountSpec,
    pub active: bool,
}
