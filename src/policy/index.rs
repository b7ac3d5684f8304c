//! Turning [`PolicyData`] into the dense [`Snapshot`] index: names and ids
//! become positions in name-sorted vectors, the node tree is laid out depth
//! first so that a subtree is one contiguous range, and account usernames and
//! protocol names are interned so the hot paths compare integers.

use jiff::Timestamp;

use super::data::{AccountEntry, AssetEntry, PermissionEntry, PolicyData, UserEntry};
use super::hash::{Map, Set};
use super::lookup::Lookup;
use super::{PolicyError, Snapshot, rule};
use crate::model::{AccountSpec, Actions, Id, Protocol, ProtocolSpec, parent_node_path};

/// An asset as shown to people and admins. Shared between the snapshot and
/// every [`super::VisibleAsset`] handed out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AssetInfo {
    id: Id,
    name: String,
    address: String,
    platform: String,
    comment: String,
    pub(super) active: bool,
    /// Paths of the nodes the asset is filed under, sorted.
    nodes: Vec<String>,
    /// Declared protocols, first entry kept when a name repeats.
    protocols: Vec<Protocol>,
    /// Active stored accounts, sorted by username.
    pub(super) accounts: Vec<AccountInfo>,
    /// Interned name of each entry of `protocols`.
    pub(super) proto_ids: Vec<u8>,
}

impl AssetInfo {
    pub fn id(&self) -> &str {
        &self.id
    }
    pub fn name(&self) -> &str {
        &self.name
    }
    pub fn address(&self) -> &str {
        &self.address
    }
    pub fn platform(&self) -> &str {
        &self.platform
    }
    pub fn comment(&self) -> &str {
        &self.comment
    }
    pub fn is_active(&self) -> bool {
        self.active
    }
    pub fn nodes(&self) -> &[String] {
        &self.nodes
    }
    pub fn protocols(&self) -> &[Protocol] {
        &self.protocols
    }
    /// Active stored accounts, sorted by username.
    pub fn accounts(&self) -> &[AccountInfo] {
        &self.accounts
    }
}

/// A stored account of an asset (never its secret).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountInfo {
    id: Id,
    username: String,
    privileged: bool,
}

impl AccountInfo {
    pub fn id(&self) -> &str {
        &self.id
    }
    pub fn username(&self) -> &str {
        &self.username
    }
    pub fn privileged(&self) -> bool {
        self.privileged
    }
}

#[derive(Debug)]
pub(super) struct UserRec {
    pub(super) id: Id,
    pub(super) name: String,
    pub(super) active: bool,
    pub(super) expires_at: Option<Timestamp>,
    /// Groups, by snapshot membership; sorted.
    pub(super) groups: Vec<u32>,
    /// Permissions naming the user or one of their groups; sorted.
    pub(super) perms: Vec<u32>,
    /// The user's name interned among account usernames, for `@USER`.
    pub(super) sym: Option<u32>,
}

impl UserRec {
    pub(super) fn live(&self, now: Timestamp) -> bool {
        self.active && self.expires_at.is_none_or(|e| now < e)
    }
}

#[derive(Debug)]
pub(super) struct GroupRec {
    pub(super) name: String,
    /// Sorted.
    pub(super) members: Vec<u32>,
}

#[derive(Debug)]
pub(super) struct NodeRec {
    /// One past the last node of this node's subtree.
    pub(super) end: u32,
}

#[derive(Debug)]
pub(super) struct AssetRec {
    pub(super) active: bool,
    /// Nodes the asset is filed under; sorted.
    pub(super) nodes: Vec<u32>,
    /// Interned names of the declared protocols.
    pub(super) proto_mask: u64,
    /// The asset's run in `Snapshot::account_syms`. Kept here, beside the
    /// other fields the menu query reads for every asset, rather than read
    /// from the asset's info: that extra pointer chase doubled its time.
    pub(super) acc_start: u32,
    pub(super) acc_len: u32,
}

/// Which stored accounts a permission grants, with usernames interned.
#[derive(Debug, Default)]
pub(super) struct AccountRule {
    pub(super) all: bool,
    pub(super) input: bool,
    pub(super) same_user: bool,
    pub(super) names: Vec<u32>,
}

impl AccountRule {
    /// Whether the stored account whose username is `sym` is granted to a
    /// person whose name is `user_sym`.
    pub(super) fn grants(&self, sym: u32, user_sym: Option<u32>) -> bool {
        self.all || self.names.contains(&sym) || (self.same_user && user_sym == Some(sym))
    }
}

#[derive(Debug)]
pub(super) struct PermRec {
    pub(super) name: String,
    /// Sorted.
    pub(super) users: Vec<u32>,
    /// Sorted.
    pub(super) groups: Vec<u32>,
    /// Active assets only; sorted.
    pub(super) assets: Vec<u32>,
    /// Sorted, without nodes that another listed node already contains.
    pub(super) nodes: Vec<u32>,
    pub(super) accounts: AccountRule,
    /// Interned protocol names granted; all bits for `all`.
    pub(super) protocols: u64,
    pub(super) actions: Actions,
    pub(super) valid_from: Option<Timestamp>,
    pub(super) valid_until: Option<Timestamp>,
    pub(super) active: bool,
    pub(super) require_approval: bool,
}

impl PermRec {
    pub(super) fn live(&self, now: Timestamp) -> bool {
        self.active
            && self.valid_from.is_none_or(|f| f <= now)
            && self.valid_until.is_none_or(|u| now < u)
    }
}

pub(super) fn build(data: PolicyData) -> Result<Snapshot, PolicyError> {
    let PolicyData {
        users,
        groups,
        nodes,
        assets,
        accounts,
        permissions,
        filters,
    } = data;
    // Positions are stored as u32; this check is what makes every `as u32`
    // below lossless.
    for (len, kind) in [
        (users.len(), "users"),
        (groups.len(), "groups"),
        (nodes.len(), "nodes"),
        (assets.len(), "assets"),
        (accounts.len(), "accounts"),
        (permissions.len(), "permissions"),
        (filters.len(), "filters"),
    ] {
        if len >= u32::MAX as usize {
            return Err(PolicyError::TooLarge { kind });
        }
    }

    let users = sorted(users, |u| (0, &u.name, ""));
    let user_by_id = positions(users.iter().map(|u| u.id.as_str()), "user id")?;
    let user_by_name = positions(users.iter().map(|u| u.name.as_str()), "user name")?;

    let groups = sorted(groups, |g| (0, &g.name, ""));
    let group_by_id = positions(groups.iter().map(|g| g.id.as_str()), "group id")?;
    positions(groups.iter().map(|g| g.name.as_str()), "group name")?;
    let group_recs: Vec<GroupRec> = groups
        .into_iter()
        .map(|g| GroupRec {
            members: Lookup::resolve(&user_by_id, &g.member_ids),
            name: g.name,
        })
        .collect();

    let NodeTree {
        recs: node_recs,
        by_id: node_by_id,
        paths: node_paths,
    } = build_nodes(nodes)?;

    let assets = sorted(assets, |a| (0, &a.name, ""));
    let asset_by_id = positions(assets.iter().map(|a| a.id.as_str()), "asset id")?;
    let asset_by_name = positions(assets.iter().map(|a| a.name.as_str()), "asset name")?;

    let mut usernames = Interner::default();
    let (accounts, runs) = group_accounts(accounts, &assets, &asset_by_id)?;
    let mut accounts = accounts.into_iter();
    let mut protocol_names: Map<String, u8> = Map::default();
    let mut account_syms = Vec::new();
    let mut asset_recs = Vec::with_capacity(assets.len());
    let mut infos = Vec::with_capacity(assets.len());
    for (asset, run) in assets.into_iter().zip(runs) {
        let (rec, info) = build_asset(
            asset,
            accounts.by_ref().take(run as usize),
            &node_by_id,
            &node_paths,
            &mut protocol_names,
            &mut usernames,
            &mut account_syms,
        )?;
        asset_recs.push(rec);
        infos.push(info);
    }

    let (node_asset_start, node_assets) = place_assets(&asset_recs, node_recs.len())?;

    let lookup = Lookup {
        users: user_by_id,
        groups: group_by_id,
        nodes: node_by_id,
        assets: asset_by_id,
    };

    unique(permissions.iter().map(|p| p.id.as_str()), "permission id")?;
    let permissions = sorted(permissions, |p| (0, &p.name, &p.id));
    let perm_recs: Vec<PermRec> = permissions
        .into_iter()
        .map(|p| {
            build_perm(
                p,
                &lookup,
                &node_recs,
                &asset_recs,
                &usernames,
                &protocol_names,
            )
        })
        .collect();

    let user_recs = build_users(users, &group_recs, &perm_recs, &usernames);

    let filter_recs = rule::build(filters, &lookup)?;

    Ok(Snapshot {
        users: user_recs,
        groups: group_recs,
        nodes: node_recs,
        assets: asset_recs,
        infos: infos.into(),
        perms: perm_recs,
        filters: filter_recs,
        account_syms,
        node_asset_start,
        node_assets,
        user_by_id: lookup.users,
        user_by_name,
        asset_by_id: lookup.assets,
        asset_by_name,
    })
}

/// The active assets filed directly under each node, in node order: the
/// snapshot's `node_asset_start` and `node_assets`.
fn place_assets(
    asset_recs: &[AssetRec],
    nodes: usize,
) -> Result<(Vec<u32>, Vec<u32>), PolicyError> {
    let placed: usize = asset_recs
        .iter()
        .filter(|a| a.active)
        .map(|a| a.nodes.len())
        .sum();
    if placed >= u32::MAX as usize {
        return Err(PolicyError::TooLarge {
            kind: "asset placements in nodes",
        });
    }
    let mut per_node = vec![0u32; nodes + 1];
    for a in asset_recs.iter().filter(|a| a.active) {
        for &n in &a.nodes {
            per_node[n as usize + 1] += 1;
        }
    }
    for i in 1..per_node.len() {
        per_node[i] += per_node[i - 1];
    }
    let node_asset_start = per_node.clone();
    let mut node_assets = vec![0u32; placed];
    for (i, a) in asset_recs.iter().enumerate().filter(|(_, a)| a.active) {
        for &n in &a.nodes {
            let slot = &mut per_node[n as usize];
            node_assets[*slot as usize] = i as u32;
            *slot += 1;
        }
    }
    Ok((node_asset_start, node_assets))
}

/// The user records, with their groups and the permissions naming them or
/// one of their groups.
fn build_users(
    users: Vec<UserEntry>,
    group_recs: &[GroupRec],
    perm_recs: &[PermRec],
    usernames: &Interner,
) -> Vec<UserRec> {
    let mut user_recs: Vec<UserRec> = users
        .into_iter()
        .map(|u| UserRec {
            sym: usernames.get(&u.name),
            id: u.id,
            name: u.name,
            active: u.active,
            expires_at: u.expires_at,
            groups: Vec::new(),
            perms: Vec::new(),
        })
        .collect();
    for (g, group) in group_recs.iter().enumerate() {
        for &m in &group.members {
            user_recs[m as usize].groups.push(g as u32);
        }
    }
    for (i, p) in perm_recs.iter().enumerate() {
        for &u in &p.users {
            user_recs[u as usize].perms.push(i as u32);
        }
        for &g in &p.groups {
            for &m in &group_recs[g as usize].members {
                user_recs[m as usize].perms.push(i as u32);
            }
        }
    }
    for u in &mut user_recs {
        u.perms.sort_unstable();
        u.perms.dedup();
    }
    user_recs
}

fn unique<'a>(keys: impl Iterator<Item = &'a str>, kind: &'static str) -> Result<(), PolicyError> {
    let mut seen = Set::default();
    for key in keys {
        if !seen.insert(key) {
            return Err(duplicate(kind, key));
        }
    }
    Ok(())
}

fn duplicate(kind: &'static str, key: &str) -> PolicyError {
    PolicyError::Duplicate {
        kind,
        key: key.to_string(),
    }
}

/// Key -> position, refusing a key seen twice.
fn positions<'a>(
    keys: impl ExactSizeIterator<Item = &'a str>,
    kind: &'static str,
) -> Result<Map<String, u32>, PolicyError> {
    let mut map = Map::default();
    map.reserve(keys.len());
    for (i, key) in keys.enumerate() {
        if map.insert(key.to_string(), i as u32).is_some() {
            return Err(duplicate(kind, key));
        }
    }
    Ok(map)
}

#[derive(Default)]
struct Interner(Map<String, u32>);

impl Interner {
    fn intern(&mut self, s: &str) -> u32 {
        if let Some(&i) = self.0.get(s) {
            return i;
        }
        let i = self.0.len() as u32;
        self.0.insert(s.to_string(), i);
        i
    }

    fn get(&self, s: &str) -> Option<u32> {
        self.0.get(s).copied()
    }
}

/// The nodes in depth-first order: records, id -> position, path of each
/// position.
struct NodeTree {
    recs: Vec<NodeRec>,
    by_id: Map<String, u32>,
    paths: Vec<String>,
}

/// Lays the nodes out depth first. A node's parent is its nearest ancestor
/// path that is itself a node, so ancestry follows path segments even if an
/// intermediate node is missing.
fn build_nodes(nodes: Vec<super::data::NodeEntry>) -> Result<NodeTree, PolicyError> {
    unique(nodes.iter().map(|n| n.id.as_str()), "node id")?;
    unique(nodes.iter().map(|n| n.path.as_str()), "node path")?;
    let nodes = sorted(nodes, |n| (0, &n.path, ""));
    let by_path: Map<&str, usize> = nodes
        .iter()
        .enumerate()
        .map(|(i, n)| (n.path.as_str(), i))
        .collect();
    let mut children: Vec<Vec<usize>> = vec![Vec::new(); nodes.len()];
    let mut roots = Vec::new();
    for (i, n) in nodes.iter().enumerate() {
        let mut up = parent_node_path(&n.path);
        let parent = loop {
            match up {
                None => break None,
                Some(p) => match by_path.get(p) {
                    Some(&j) => break Some(j),
                    None => up = parent_node_path(p),
                },
            }
        };
        match parent {
            Some(j) => children[j].push(i),
            None => roots.push(i),
        }
    }

    // Pre-order positions; children were pushed in path order.
    let mut order = Vec::with_capacity(nodes.len());
    let mut stack: Vec<usize> = roots.into_iter().rev().collect();
    while let Some(i) = stack.pop() {
        order.push(i);
        stack.extend(children[i].iter().rev());
    }
    let mut pos = vec![0u32; nodes.len()];
    for (p, &i) in order.iter().enumerate() {
        pos[i] = p as u32;
    }
    // Subtree sizes, children before parents.
    let mut size = vec![1u32; nodes.len()];
    for &i in order.iter().rev() {
        for &c in &children[i] {
            size[i] += size[c];
        }
    }
    let recs = order
        .iter()
        .enumerate()
        .map(|(p, &i)| NodeRec {
            end: p as u32 + size[i],
        })
        .collect();
    let by_id = nodes
        .iter()
        .enumerate()
        .map(|(i, n)| (n.id.clone(), pos[i]))
        .collect();
    let mut paths = vec![String::new(); nodes.len()];
    for (i, n) in nodes.into_iter().enumerate() {
        paths[pos[i] as usize] = n.path;
    }
    Ok(NodeTree { recs, by_id, paths })
}

/// Sorts by `key`, ties in input order. The key is compared field by field
/// and is wide enough for every sort here: (0, name, ""), (0, name, id) and
/// (asset position, username, ""). Sorting compact (key, position) pairs and
/// moving each entry once is several times faster than sorting the large
/// entries in place.
fn sorted<T>(items: Vec<T>, key: impl Fn(&T) -> (u32, &str, &str)) -> Vec<T> {
    let order: Vec<usize> = {
        let mut keyed: Vec<((u32, &str, &str), usize)> =
            items.iter().enumerate().map(|(i, t)| (key(t), i)).collect();
        keyed.sort_unstable();
        keyed.into_iter().map(|(_, i)| i).collect()
    };
    let mut slots: Vec<Option<T>> = items.into_iter().map(Some).collect();
    order.iter().filter_map(|&i| slots[i].take()).collect()
}

/// The active accounts of known assets, ordered by asset position then
/// username, and how many each asset has (its run). Accounts are told apart
/// by (asset, username) here; their ids are only carried into grants.
fn group_accounts(
    accounts: Vec<AccountEntry>,
    assets: &[AssetEntry],
    asset_by_id: &Map<String, u32>,
) -> Result<(Vec<AccountEntry>, Vec<u32>), PolicyError> {
    // The store lists an asset's accounts together: remembering the last
    // lookup saves most of them.
    let mut last: Option<(String, u32)> = None;
    let mut keyed: Vec<(u32, AccountEntry)> = Vec::with_capacity(accounts.len());
    for acc in accounts {
        let a = match &last {
            Some((id, a)) if *id == acc.asset_id => *a,
            _ => match asset_by_id.get(&acc.asset_id) {
                Some(&a) => {
                    last = Some((acc.asset_id.clone(), a));
                    a
                }
                None => continue,
            },
        };
        keyed.push((a, acc));
    }
    keyed = sorted(keyed, |(a, acc)| (*a, &acc.username, ""));
    if let Some(twin) = keyed
        .windows(2)
        .find(|w| w[0].0 == w[1].0 && w[0].1.username == w[1].1.username)
    {
        let (a, acc) = &twin[0];
        return Err(duplicate(
            "account",
            &format!("{}@{}", acc.username, assets[*a as usize].name),
        ));
    }
    let mut runs = vec![0u32; assets.len()];
    let mut out = Vec::with_capacity(keyed.len());
    for (a, acc) in keyed.into_iter().filter(|(_, acc)| acc.active) {
        runs[a as usize] += 1;
        out.push(acc);
    }
    Ok((out, runs))
}

fn build_asset(
    asset: AssetEntry,
    accounts: impl ExactSizeIterator<Item = AccountEntry>,
    node_by_id: &Map<String, u32>,
    node_paths: &[String],
    protocol_names: &mut Map<String, u8>,
    usernames: &mut Interner,
    account_syms: &mut Vec<u32>,
) -> Result<(AssetRec, AssetInfo), PolicyError> {
    let nodes = Lookup::resolve(node_by_id, &asset.node_ids);
    let mut protocols: Vec<Protocol> = Vec::with_capacity(asset.protocols.len());
    let mut proto_ids = Vec::with_capacity(asset.protocols.len());
    let mut proto_mask = 0u64;
    for p in asset.protocols {
        if protocols.iter().any(|q| q.name == p.name) {
            continue;
        }
        let id = match protocol_names.get(&p.name) {
            Some(&id) => id,
            None => {
                // Protocol sets are u64 bit masks.
                let next = protocol_names.len();
                if next >= 64 {
                    return Err(PolicyError::TooManyProtocols);
                }
                protocol_names.insert(p.name.clone(), next as u8);
                next as u8
            }
        };
        proto_mask |= 1 << id;
        proto_ids.push(id);
        protocols.push(p);
    }
    let acc_start = account_syms.len() as u32;
    let acc_len = accounts.len() as u32;
    let accounts = accounts
        .map(|a| {
            account_syms.push(usernames.intern(&a.username));
            AccountInfo {
                id: a.id,
                username: a.username,
                privileged: a.privileged,
            }
        })
        .collect();
    let mut node_list: Vec<String> = nodes
        .iter()
        .map(|&n| node_paths[n as usize].clone())
        .collect();
    node_list.sort();
    let rec = AssetRec {
        active: asset.active,
        nodes,
        proto_mask,
        acc_start,
        acc_len,
    };
    let info = AssetInfo {
        id: asset.id,
        name: asset.name,
        address: asset.address,
        platform: asset.platform,
        comment: asset.comment,
        active: asset.active,
        nodes: node_list,
        protocols,
        accounts,
        proto_ids,
    };
    Ok((rec, info))
}

fn build_perm(
    p: PermissionEntry,
    lookup: &Lookup,
    nodes: &[NodeRec],
    assets: &[AssetRec],
    usernames: &Interner,
    protocol_names: &Map<String, u8>,
) -> PermRec {
    let mut assets_of: Vec<u32> = Lookup::resolve(&lookup.assets, &p.asset_ids);
    assets_of.retain(|&a| assets[a as usize].active);
    // Sorted by position, a node inside an earlier kept node's range adds
    // nothing: drop it so no subtree is walked twice.
    let mut node_list = Vec::new();
    let mut kept_end = 0u32;
    for n in Lookup::resolve(&lookup.nodes, &p.node_ids) {
        if node_list.is_empty() || n >= kept_end {
            node_list.push(n);
            kept_end = nodes[n as usize].end;
        }
    }
    PermRec {
        users: Lookup::resolve(&lookup.users, &p.user_ids),
        groups: Lookup::resolve(&lookup.groups, &p.group_ids),
        assets: assets_of,
        nodes: node_list,
        accounts: account_rule(&p.accounts, usernames),
        protocols: match &p.protocols {
            ProtocolSpec::All => u64::MAX,
            ProtocolSpec::Named(names) => names
                .iter()
                .filter_map(|n| protocol_names.get(n))
                .fold(0, |m, &id| m | 1 << id),
        },
        actions: p.actions,
        valid_from: p.valid_from,
        valid_until: p.valid_until,
        active: p.active,
        require_approval: p.require_approval,
        name: p.name,
    }
}

/// Usernames no account has can never match a stored account, so they are
/// dropped here.
fn account_rule(spec: &AccountSpec, usernames: &Interner) -> AccountRule {
    let mut names: Vec<u32> = spec.names.iter().filter_map(|n| usernames.get(n)).collect();
    names.sort_unstable();
    names.dedup();
    AccountRule {
        all: spec.all,
        input: spec.input,
        same_user: spec.same_user,
        names,
    }
}
