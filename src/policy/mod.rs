//! Who may reach what: the policy engine. It owns the in-memory [`Snapshot`]
//! built from [`data::PolicyData`], the node-tree expansion, the grant
//! decision ([`Snapshot::authorize`]), the asset list a person sees
//! ([`Snapshot::visible_assets`]), the admin's "who can reach / what can be
//! reached" views and command filter matching ([`Snapshot::check_command`]).
//!
//! It is the only module that constructs a [`Grant`]; `upstream` cannot
//! connect without one. It never does I/O and never reads the clock: the
//! caller passes `now`, and the store hands it plain data.
//!
//! Decisions this module makes, and why:
//! - Group membership comes from the snapshot (`PolicyData::groups`), never
//!   from `Identity::groups`: an identity captured at login may be stale, and
//!   a person removed from a group must lose that group's access at the next
//!   rebuild, not at their next login. Roles grant no asset access.
//! - A grant's actions are the union over the permissions that grant the
//!   *same kind* of account: a stored account's actions come only from
//!   permissions granting that stored account, typed-in (`@INPUT`) actions
//!   only from `@INPUT` permissions, so an `@INPUT`-only permission never lets
//!   anyone use a stored secret.
//! - `@INPUT` lets the person type any non-empty username, whether or not a
//!   stored account of that name exists (or is inactive); nothing is stored.
//! - "No such asset" and "not permitted" give the same answer (`None`).

pub mod data;

mod bits;
mod filter;
mod grant;
mod hash;
mod index;
mod lookup;
mod reach;
mod rule;
mod tunnel;

use std::sync::Arc;

use jiff::Timestamp;
use serde::Serialize;

pub use filter::FilterVerdict;
pub use grant::{Grant, GrantAccount, VisibleAsset};
pub use index::{AccountInfo, AssetInfo};
pub use reach::Reach;
pub use rule::check_pattern;
pub use tunnel::TunnelGrant;

use data::PolicyData;
use hash::Map;
use index::{AssetRec, GroupRec, NodeRec, PermRec, UserRec};
use rule::FilterRec;

/// Why a snapshot could not be built. The store's constraints normally make
/// these impossible; when one happens the server keeps its previous snapshot.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    #[error("command filter {filter:?}: pattern {pattern:?} does not compile: {reason}")]
    BadPattern {
        filter: String,
        pattern: String,
        reason: String,
    },
    #[error("duplicate {kind} {key:?} in the policy data")]
    Duplicate { kind: &'static str, key: String },
    #[error("assets declare more than 64 distinct protocol names")]
    TooManyProtocols,
    #[error("the policy data has too many {kind} to index")]
    TooLarge { kind: &'static str },
}

/// Sizes of a snapshot, for logs and health output.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct Stats {
    pub users: usize,
    pub groups: usize,
    pub nodes: usize,
    pub assets: usize,
    /// Active accounts only: inactive ones are not indexed.
    pub accounts: usize,
    pub permissions: usize,
    /// Active filters only.
    pub filters: usize,
}

/// A user as the snapshot knows them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserView<'a> {
    pub id: &'a str,
    pub name: &'a str,
    pub active: bool,
    pub expires_at: Option<Timestamp>,
    /// Names of the groups the user belongs to, sorted.
    pub groups: Vec<&'a str>,
}

impl UserView<'_> {
    /// Active and not expired at `now`.
    pub fn is_live_at(&self, now: Timestamp) -> bool {
        self.active && self.expires_at.is_none_or(|e| now < e)
    }
}

/// The immutable policy index. Cheap to share (`Arc<Snapshot>`); rebuilt
/// whole when the database changes. `Snapshot::default()` is the empty
/// policy, which grants nothing.
///
/// Every `u32` stored in the index fields below is a position in one of this
/// snapshot's own vectors, produced by [`Snapshot::build`] from the same data,
/// so indexing with them cannot go out of bounds.
#[derive(Debug, Default)]
pub struct Snapshot {
    /// Sorted by name.
    users: Vec<UserRec>,
    /// Sorted by name.
    groups: Vec<GroupRec>,
    /// In depth-first order, so a node's subtree is the range `n..end`.
    nodes: Vec<NodeRec>,
    /// Sorted by name, so visiting them in index order yields sorted output.
    assets: Vec<AssetRec>,
    /// What is shown of each asset, by the same position as `assets`.
    infos: Arc<[AssetInfo]>,
    /// Sorted by name.
    perms: Vec<PermRec>,
    /// Active filters, sorted by (priority, name).
    filters: Vec<FilterRec>,
    /// Interned username of every indexed account; an asset's accounts are
    /// the contiguous run starting at its `acc_start`.
    account_syms: Vec<u32>,
    /// Active assets filed directly under each node, as one array cut by
    /// `node_asset_start` (length `nodes.len() + 1`); because nodes are in
    /// depth-first order a whole subtree is one contiguous slice.
    node_asset_start: Vec<u32>,
    node_assets: Vec<u32>,
    user_by_id: Map<String, u32>,
    user_by_name: Map<String, u32>,
    asset_by_id: Map<String, u32>,
    asset_by_name: Map<String, u32>,
}

impl Snapshot {
    /// Indexes `data`. Fails on duplicate ids or names (users, groups, nodes,
    /// assets, permissions; an asset's account usernames) and on an active
    /// command filter whose pattern does not compile. Dangling references (a
    /// permission naming a removed user) are ignored and grant nothing.
    pub fn build(data: PolicyData) -> Result<Snapshot, PolicyError> {
        index::build(data)
    }

    pub fn stats(&self) -> Stats {
        Stats {
            users: self.users.len(),
            groups: self.groups.len(),
            nodes: self.nodes.len(),
            assets: self.assets.len(),
            accounts: self.account_syms.len(),
            permissions: self.perms.len(),
            filters: self.filters.len(),
        }
    }

    /// The asset of that name, active or not. For admin views; people's
    /// requests go through [`Snapshot::authorize`], which does not reveal
    /// whether an asset exists.
    pub fn asset_by_name(&self, name: &str) -> Option<&AssetInfo> {
        let &a = self.asset_by_name.get(name)?;
        Some(&self.infos[a as usize])
    }

    pub fn asset_by_id(&self, id: &str) -> Option<&AssetInfo> {
        let &a = self.asset_by_id.get(id)?;
        Some(&self.infos[a as usize])
    }

    pub fn user_by_name(&self, name: &str) -> Option<UserView<'_>> {
        let &u = self.user_by_name.get(name)?;
        Some(self.user_view(u))
    }

    pub fn user_by_id(&self, id: &str) -> Option<UserView<'_>> {
        let &u = self.user_by_id.get(id)?;
        Some(self.user_view(u))
    }

    fn user_view(&self, u: u32) -> UserView<'_> {
        let rec = &self.users[u as usize];
        UserView {
            id: &rec.id,
            name: &rec.name,
            active: rec.active,
            expires_at: rec.expires_at,
            groups: rec
                .groups
                .iter()
                .map(|&g| self.groups[g as usize].name.as_str())
                .collect(),
        }
    }

    /// The user with that id if they may do anything at `now`.
    fn live_user(&self, user_id: &str, now: Timestamp) -> Option<&UserRec> {
        let &u = self.user_by_id.get(user_id)?;
        let rec = &self.users[u as usize];
        rec.live(now).then_some(rec)
    }

    /// The active assets filed under node `n` or any of its descendants
    /// (an asset filed under two of them appears twice).
    fn subtree_assets(&self, n: u32) -> &[u32] {
        let start = self.node_asset_start[n as usize] as usize;
        let end = self.node_asset_start[self.nodes[n as usize].end as usize] as usize;
        &self.node_assets[start..end]
    }

    /// The active assets a permission targets, directly or through a node
    /// (possibly repeated).
    fn covered<'a>(&'a self, p: &'a PermRec) -> impl Iterator<Item = u32> + 'a {
        p.assets.iter().copied().chain(
            p.nodes
                .iter()
                .flat_map(move |&n| self.subtree_assets(n).iter().copied()),
        )
    }

    /// Whether node `n` is asset `a`'s node or an ancestor of one of them.
    fn node_covers(&self, n: u32, a: &AssetRec) -> bool {
        let end = self.nodes[n as usize].end;
        a.nodes.iter().any(|&m| n <= m && m < end)
    }

    fn perm_covers(&self, p: &PermRec, a: u32) -> bool {
        let rec = &self.assets[a as usize];
        rec.active
            && (p.assets.binary_search(&a).is_ok()
                || p.nodes.iter().any(|&n| self.node_covers(n, rec)))
    }

    /// What permission `p` grants on `asset` to a person whose interned name
    /// is `user_sym`: the protocol bits, calling `on_account` with the
    /// position of each stored account it grants. `None` when it grants no
    /// declared protocol, or neither a stored account nor `@INPUT`.
    fn reach_on(
        &self,
        p: &PermRec,
        asset: &AssetRec,
        user_sym: Option<u32>,
        mut on_account: impl FnMut(usize),
    ) -> Option<u64> {
        let protos = p.protocols & asset.proto_mask;
        if protos == 0 {
            return None;
        }
        let start = asset.acc_start as usize;
        let syms = &self.account_syms[start..start + asset.acc_len as usize];
        let mut any = false;
        for (i, &sym) in syms.iter().enumerate() {
            if p.accounts.grants(sym, user_sym) {
                on_account(i);
                any = true;
            }
        }
        (any || p.accounts.input).then_some(protos)
    }
}
