//! The two views an admin asks for every day: who can reach an asset
//! (`rampart perm who ASSET`) and what a user can reach (`rampart perm what
//! USER`), one row per user, asset and permission.

use jiff::Timestamp;
use serde::Serialize;

use super::Snapshot;
use super::index::{PermRec, UserRec};
use crate::model::{Actions, Protocol};

/// One way a user reaches an asset: through one permission.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Reach {
    pub user: String,
    pub asset: String,
    /// Granted stored account usernames, sorted, then `@INPUT` when the
    /// person may type one in.
    pub accounts: Vec<String>,
    pub protocols: Vec<Protocol>,
    pub actions: Actions,
    /// The permission this row comes from.
    pub permission: String,
    /// The group through which the permission applies; `None` when it names
    /// the user directly. Of several groups, the first by name.
    pub group: Option<String>,
}

impl Snapshot {
    /// Who can reach `asset` at `now`, sorted by user then permission.
    /// `None` when no asset has that name.
    pub fn who_can_reach(&self, asset: &str, now: Timestamp) -> Option<Vec<Reach>> {
        let &a = self.asset_by_name.get(asset)?;
        let mut rows = Vec::new();
        for p in self.perms.iter().filter(|p| p.live(now)) {
            if !self.perm_covers(p, a) {
                continue;
            }
            // (user, via group): `None` sorts first, so a direct listing wins,
            // then the group first by name (groups are indexed in name order).
            let mut subjects: Vec<(u32, Option<u32>)> =
                p.users.iter().map(|&u| (u, None)).collect();
            for &g in &p.groups {
                subjects.extend(
                    self.groups[g as usize]
                        .members
                        .iter()
                        .map(|&m| (m, Some(g))),
                );
            }
            subjects.sort_unstable();
            subjects.dedup_by_key(|s| s.0);
            for (u, g) in subjects {
                let user = &self.users[u as usize];
                if user.live(now)
                    && let Some(row) = self.reach_row(user, a, p, g)
                {
                    rows.push(row);
                }
            }
        }
        // Users and permissions are indexed in name order and perms are
        // visited in order, so a stable sort by user finishes the job.
        rows.sort_by(|x, y| x.user.cmp(&y.user));
        Some(rows)
    }

    /// What `user` can reach at `now`, sorted by asset then permission.
    /// `None` when no user has that name.
    pub fn what_can_reach(&self, user: &str, now: Timestamp) -> Option<Vec<Reach>> {
        let &u = self.user_by_name.get(user)?;
        let rec = &self.users[u as usize];
        if !rec.live(now) {
            return Some(Vec::new());
        }
        let mut rows: Vec<(u32, u32, Reach)> = Vec::new();
        let mut targets = Vec::new();
        for &pi in &rec.perms {
            let p = &self.perms[pi as usize];
            if !p.live(now) {
                continue;
            }
            let group = if p.users.binary_search(&u).is_ok() {
                None
            } else {
                rec.groups
                    .iter()
                    .copied()
                    .find(|g| p.groups.binary_search(g).is_ok())
            };
            targets.clear();
            targets.extend(self.covered(p));
            targets.sort_unstable();
            targets.dedup();
            for &a in &targets {
                if let Some(row) = self.reach_row(rec, a, p, group) {
                    rows.push((a, pi, row));
                }
            }
        }
        rows.sort_unstable_by_key(|(a, pi, _)| (*a, *pi));
        Some(rows.into_iter().map(|(_, _, row)| row).collect())
    }

    fn reach_row(&self, user: &UserRec, a: u32, p: &PermRec, group: Option<u32>) -> Option<Reach> {
        let info = &self.infos[a as usize];
        let mut granted = Vec::new();
        let protocols =
            self.reach_on(p, &self.assets[a as usize], user.sym, |i| granted.push(i))?;
        let mut accounts: Vec<String> = granted
            .into_iter()
            .filter_map(|i| info.accounts().get(i))
            .map(|acc| acc.username().to_string())
            .collect();
        if p.accounts.input {
            accounts.push("@INPUT".to_string());
        }
        Some(Reach {
            user: user.name.clone(),
            asset: info.name().to_string(),
            accounts,
            protocols: info
                .protocols()
                .iter()
                .zip(&info.proto_ids)
                .filter(|(_, id)| protocols & (1 << **id) != 0)
                .map(|(proto, _)| proto.clone())
                .collect(),
            actions: p.actions,
            permission: p.name.clone(),
            group: group.map(|g| self.groups[g as usize].name.clone()),
        })
    }
}
