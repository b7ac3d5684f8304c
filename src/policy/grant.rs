//! The grant decision and the asset list a person sees: [`Grant`], the only
//! proof of authorization `upstream` accepts, and [`VisibleAsset`], one row of
//! the menu.

use std::fmt;
use std::sync::Arc;

use jiff::Timestamp;

use super::Snapshot;
use super::bits::{BitSet, LocalBits};
use super::index::{AccountInfo, AssetInfo, PermRec, UserRec};
use crate::model::{Action, Actions, Id, Identity, Protocol};

/// Which account a session on the target uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GrantAccount {
    /// An account whose secret the bastion holds.
    Stored { account_id: Id, username: String },
    /// `@INPUT`: the person types the password for this username; nothing is
    /// stored.
    Input { username: String },
}

impl GrantAccount {
    pub fn username(&self) -> &str {
        match self {
            GrantAccount::Stored { username, .. } | GrantAccount::Input { username } => username,
        }
    }

    pub fn is_typed_in(&self) -> bool {
        match self {
            GrantAccount::Stored { .. } => false,
            GrantAccount::Input { .. } => true,
        }
    }
}

/// Permission for one person to use one account of one asset over one
/// protocol. Only [`Snapshot::authorize`] makes one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    user_id: Id,
    user_name: String,
    asset_id: Id,
    asset_name: String,
    address: String,
    protocol: Protocol,
    account: GrantAccount,
    actions: Actions,
    permissions: Vec<String>,
    valid_until: Option<Timestamp>,
    approval: Option<String>,
}

impl Grant {
    pub fn user_id(&self) -> &str {
        &self.user_id
    }
    pub fn user_name(&self) -> &str {
        &self.user_name
    }
    pub fn asset_id(&self) -> &str {
        &self.asset_id
    }
    pub fn asset_name(&self) -> &str {
        &self.asset_name
    }
    pub fn address(&self) -> &str {
        &self.address
    }
    /// The protocol with the asset's declared port.
    pub fn protocol(&self) -> &Protocol {
        &self.protocol
    }
    pub fn account(&self) -> &GrantAccount {
        &self.account
    }
    /// Every action granted for this user, asset, account and protocol, not
    /// only the one asked for.
    pub fn actions(&self) -> Actions {
        self.actions
    }
    pub fn allows(&self, action: Action) -> bool {
        self.actions.contains(action)
    }
    /// Names of the permissions that contributed, sorted.
    pub fn permissions(&self) -> &[String] {
        &self.permissions
    }
    /// When the action asked for stops being granted: the latest end among
    /// the permissions granting it, capped by the user's expiry; `None` when
    /// open-ended. The server ends the session then.
    pub fn valid_until(&self) -> Option<Timestamp> {
        self.valid_until
    }

    /// The permission that asks for an admin's approval before this grant is
    /// used; `None` when any permission granting it does not ask.
    pub fn approval(&self) -> Option<&str> {
        self.approval.as_deref()
    }
}

/// One asset in a person's menu: what they may use on it, as a union over
/// their permissions (ask [`Snapshot::authorize`] for one exact choice).
#[derive(Clone)]
pub struct VisibleAsset {
    /// Every asset's info, shared: one reference count for the whole list
    /// instead of one per asset, each a cache miss when listing 100k assets.
    infos: Arc<[AssetInfo]>,
    /// Position in `infos`; set by the snapshot that made `infos`.
    at: usize,
    protocols: u64,
    accounts: LocalBits,
    input: bool,
    actions: Actions,
}

impl VisibleAsset {
    fn info(&self) -> &AssetInfo {
        &self.infos[self.at]
    }
    pub fn name(&self) -> &str {
        self.info().name()
    }
    pub fn id(&self) -> &str {
        self.info().id()
    }
    pub fn address(&self) -> &str {
        self.info().address()
    }
    pub fn platform(&self) -> &str {
        self.info().platform()
    }
    pub fn comment(&self) -> &str {
        self.info().comment()
    }
    pub fn nodes(&self) -> &[String] {
        self.info().nodes()
    }
    /// Granted protocols with their ports, in the asset's declared order.
    pub fn protocols(&self) -> impl Iterator<Item = &Protocol> {
        let info = self.info();
        info.protocols()
            .iter()
            .zip(&info.proto_ids)
            .filter(|(_, id)| self.protocols & (1 << **id) != 0)
            .map(|(p, _)| p)
    }
    /// Granted stored accounts, sorted by username.
    pub fn accounts(&self) -> impl Iterator<Item = &AccountInfo> {
        self.info()
            .accounts
            .iter()
            .enumerate()
            .filter(|(i, _)| self.accounts.contains(*i))
            .map(|(_, a)| a)
    }
    /// Whether the person may type a username and password (`@INPUT`).
    pub fn input_allowed(&self) -> bool {
        self.input
    }
    pub fn actions(&self) -> Actions {
        self.actions
    }
}

impl fmt::Debug for VisibleAsset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VisibleAsset")
            .field("name", &self.name())
            .field(
                "protocols",
                &self
                    .protocols()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>(),
            )
            .field(
                "accounts",
                &self
                    .accounts()
                    .map(AccountInfo::username)
                    .collect::<Vec<_>>(),
            )
            .field("input", &self.input)
            .field("actions", &self.actions)
            .finish()
    }
}

/// The union of what some permissions grant.
#[derive(Default, Clone, Copy)]
struct Slot {
    protocols: u64,
    actions: Actions,
    input: bool,
}

impl Slot {
    fn add(&mut self, protocols: u64, p: &PermRec) {
        self.protocols |= protocols;
        self.actions = self.actions.union(p.actions);
        self.input |= p.accounts.input;
    }
}

/// Which kind of account a decision may grant.
#[derive(Clone, Copy)]
enum Kind {
    /// A granted stored account first, else `@INPUT`.
    Either,
    Stored,
    Input,
}

/// One authorization question, for `Snapshot::decide`.
struct Ask<'a> {
    account: &'a str,
    protocol: &'a str,
    action: Action,
    now: Timestamp,
    kind: Kind,
}

/// Permissions granting one kind of account, for [`Snapshot::authorize`].
#[derive(Default)]
struct Contrib<'a> {
    actions: Actions,
    perms: Vec<&'a PermRec>,
}

impl<'a> Contrib<'a> {
    fn add(&mut self, p: &'a PermRec) {
        self.actions = self.actions.union(p.actions);
        self.perms.push(p);
    }
}

impl Snapshot {
    /// May `who` use `account` on `asset` over `protocol` for `action` at
    /// `now`? `None` both when the asset does not exist and when it is not
    /// permitted. A stored account the person is granted wins over `@INPUT`;
    /// when only `@INPUT` grants the action the account is typed in. Only
    /// `who.user_id` is read: name and groups come from the snapshot.
    pub fn authorize(
        &self,
        who: &Identity,
        asset: &str,
        account: &str,
        protocol: &str,
        action: Action,
        now: Timestamp,
    ) -> Option<Grant> {
        let &a = self.asset_by_name.get(asset)?;
        let user = self.live_user(&who.user_id, now)?;
        let ask = Ask {
            account,
            protocol,
            action,
            now,
            kind: Kind::Either,
        };
        self.decide(user, a, &ask)
    }

    /// Does `grant`, made by an earlier snapshot, still hold for `action` at
    /// `now`? The same user, asset (by id, so a rename changes nothing),
    /// account of the same kind and protocol; the server asks this after
    /// every rebuild and ends the session on `None`.
    pub fn recheck(&self, grant: &Grant, action: Action, now: Timestamp) -> Option<Grant> {
        let &a = self.asset_by_id.get(grant.asset_id())?;
        let user = self.live_user(grant.user_id(), now)?;
        let kind = match grant.account() {
            GrantAccount::Stored { .. } => Kind::Stored,
            GrantAccount::Input { .. } => Kind::Input,
        };
        let ask = Ask {
            account: grant.account().username(),
            protocol: &grant.protocol().name,
            action,
            now,
            kind,
        };
        let renewed = self.decide(user, a, &ask)?;
        // A stored account re-created under the same name is another
        // account (another secret): the session's grant does not carry over.
        (renewed.account == grant.account).then_some(renewed)
    }

    fn decide(&self, user: &UserRec, a: u32, ask: &Ask<'_>) -> Option<Grant> {
        let &Ask {
            account,
            protocol,
            action,
            now,
            kind,
        } = ask;
        let rec = &self.assets[a as usize];
        let info = &self.infos[a as usize];
        if !rec.active {
            return None;
        }
        let pos = info.protocols().iter().position(|p| p.name == protocol)?;
        let proto_bit = 1u64 << info.proto_ids[pos];
        let stored = info
            .accounts
            .binary_search_by(|acc| acc.username().cmp(account))
            .ok();
        let stored_sym = stored.map(|i| self.account_syms[rec.acc_start as usize + i]);

        let mut by_stored = Contrib::default();
        let mut by_input = Contrib::default();
        for &pi in &user.perms {
            let p = &self.perms[pi as usize];
            if p.protocols & proto_bit == 0 || !p.live(now) || !self.perm_covers(p, a) {
                continue;
            }
            if stored_sym.is_some_and(|sym| p.accounts.grants(sym, user.sym)) {
                by_stored.add(p);
            }
            if p.accounts.input {
                by_input.add(p);
            }
        }

        let use_stored = match kind {
            Kind::Either | Kind::Stored => stored.filter(|_| by_stored.actions.contains(action)),
            Kind::Input => None,
        };
        let use_input = match kind {
            Kind::Either | Kind::Input => by_input.actions.contains(action) && typeable(account),
            Kind::Stored => false,
        };
        let (contrib, granted) = match use_stored {
            Some(i) => {
                let acc = &info.accounts[i];
                let granted = GrantAccount::Stored {
                    account_id: acc.id().to_string(),
                    username: acc.username().to_string(),
                };
                (by_stored, granted)
            }
            None if use_input => {
                let granted = GrantAccount::Input {
                    username: account.to_string(),
                };
                (by_input, granted)
            }
            None => return None,
        };
        Some(Grant {
            user_id: user.id.clone(),
            user_name: user.name.clone(),
            asset_id: info.id().to_string(),
            asset_name: info.name().to_string(),
            address: info.address().to_string(),
            protocol: info.protocols()[pos].clone(),
            account: granted,
            actions: contrib.actions,
            valid_until: ends(&contrib.perms, action, user),
            approval: approval(&contrib.perms, action),
            permissions: contrib.perms.iter().map(|p| p.name.clone()).collect(),
        })
    }

    /// Every asset `who` may use at `now` in any way, sorted by name.
    pub fn visible_assets(&self, who: &Identity, now: Timestamp) -> Vec<VisibleAsset> {
        let Some(user) = self.live_user(&who.user_id, now) else {
            return Vec::new();
        };
        let mut slots = vec![Slot::default(); self.assets.len()];
        let mut granted = BitSet::new(self.account_syms.len());
        for &pi in &user.perms {
            let p = &self.perms[pi as usize];
            if !p.live(now) {
                continue;
            }
            for a in self.covered(p) {
                let rec = &self.assets[a as usize];
                let start = rec.acc_start as usize;
                if let Some(protocols) =
                    self.reach_on(p, rec, user.sym, |i| granted.insert(start + i))
                {
                    slots[a as usize].add(protocols, p);
                }
            }
        }
        // Assets are indexed in name order, so this is already sorted.
        let mut out = Vec::with_capacity(slots.iter().filter(|s| s.protocols != 0).count());
        for (at, (slot, rec)) in slots.iter().zip(&self.assets).enumerate() {
            if slot.protocols != 0 {
                out.push(VisibleAsset {
                    infos: Arc::clone(&self.infos),
                    at,
                    protocols: slot.protocols,
                    accounts: LocalBits::slice(
                        &granted,
                        rec.acc_start as usize,
                        rec.acc_len as usize,
                    ),
                    input: slot.input,
                    actions: slot.actions,
                });
            }
        }
        out
    }

    /// The one menu row for `asset`, as in [`Snapshot::visible_assets`];
    /// `None` when the person may not use it (or it does not exist).
    pub fn visible_asset(
        &self,
        who: &Identity,
        asset: &str,
        now: Timestamp,
    ) -> Option<VisibleAsset> {
        let user = self.live_user(&who.user_id, now)?;
        let &a = self.asset_by_name.get(asset)?;
        let rec = &self.assets[a as usize];
        let mut slot = Slot::default();
        let mut granted = BitSet::new(rec.acc_len as usize);
        for &pi in &user.perms {
            let p = &self.perms[pi as usize];
            if !p.live(now) || !self.perm_covers(p, a) {
                continue;
            }
            if let Some(protocols) = self.reach_on(p, rec, user.sym, |i| granted.insert(i)) {
                slot.add(protocols, p);
            }
        }
        (slot.protocols != 0).then(|| VisibleAsset {
            infos: Arc::clone(&self.infos),
            at: a as usize,
            protocols: slot.protocols,
            accounts: LocalBits::slice(&granted, 0, rec.acc_len as usize),
            input: slot.input,
            actions: slot.actions,
        })
    }
}

/// A typed-in username must be something `upstream` can send: non-empty,
/// no control characters or spaces.
fn typeable(username: &str) -> bool {
    !username.is_empty()
        && !username
            .chars()
            .any(|c| c.is_control() || c.is_whitespace())
}

/// The permission whose approval is needed: only when every permission
/// granting `action` asks for it (the grant is a union, and one that does
/// not ask is enough).
fn approval(perms: &[&PermRec], action: Action) -> Option<String> {
    let mut granting = perms
        .iter()
        .filter(|p| p.actions.contains(action))
        .peekable();
    granting.peek()?;
    let mut first = None;
    for p in granting {
        if !p.require_approval {
            return None;
        }
        first.get_or_insert_with(|| p.name.clone());
    }
    first
}

/// When `action` stops being granted by `perms` (all live now): the latest
/// end among those granting it, `None` if any is open-ended, capped by the
/// user's own expiry.
fn ends(perms: &[&PermRec], action: Action, user: &UserRec) -> Option<Timestamp> {
    let mut latest: Option<Timestamp> = None;
    for p in perms.iter().filter(|p| p.actions.contains(action)) {
        match p.valid_until {
            None => return user.expires_at,
            Some(u) => latest = Some(latest.map_or(u, |l| l.max(u))),
        }
    }
    match (latest, user.expires_at) {
        (Some(l), Some(e)) => Some(l.min(e)),
        (l, e) => l.or(e),
    }
}
