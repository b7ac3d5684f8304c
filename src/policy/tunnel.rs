//! Tunnels (`ssh -L`, `ssh -W`, `ssh -J` through the bastion): permission to
//! open a TCP connection to one declared port of one asset. No account is
//! involved, so this is its own decision: a permission covering the asset,
//! granting a protocol declared on that port, with the `tunnel` action
//! (which `all` never includes).

use jiff::Timestamp;

use super::Snapshot;
use crate::model::{Action, Id, Identity, Protocol};

/// Permission for one person to tunnel to one port of one asset. Only
/// [`Snapshot::authorize_tunnel`] makes one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TunnelGrant {
    user_id: Id,
    user_name: String,
    asset_id: Id,
    asset_name: String,
    address: String,
    protocol: Protocol,
    permissions: Vec<String>,
}

impl TunnelGrant {
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
    /// The declared protocol on the tunnelled port.
    pub fn protocol(&self) -> &Protocol {
        &self.protocol
    }
    /// Names of the permissions that grant it, sorted.
    pub fn permissions(&self) -> &[String] {
        &self.permissions
    }
}

impl Snapshot {
    /// May `who` open a tunnel to `port` of `asset` at `now`? `asset` is the
    /// asset's name or, when no asset has that name, the address of exactly
    /// one asset `who` may see (so `ssh -J bastion root@10.0.0.5` works).
    /// `None` alike for a missing asset, an undeclared port and a refusal.
    pub fn authorize_tunnel(
        &self,
        who: &Identity,
        asset: &str,
        port: u16,
        now: Timestamp,
    ) -> Option<TunnelGrant> {
        let a = match self.asset_by_name.get(asset) {
            Some(&a) => a,
            None => {
                let mut by_address = self
                    .visible_assets(who, now)
                    .into_iter()
                    .filter(|v| v.address() == asset);
                let only = by_address.next()?;
                if by_address.next().is_some() {
                    return None;
                }
                *self.asset_by_id.get(only.id())?
            }
        };
        self.tunnel_to(&who.user_id, a, port, now)
    }

    /// Does a tunnel grant still hold at `now`? Asked after every rebuild
    /// and once a second by a running tunnel.
    pub fn recheck_tunnel(&self, grant: &TunnelGrant, now: Timestamp) -> Option<TunnelGrant> {
        let &a = self.asset_by_id.get(grant.asset_id())?;
        self.tunnel_to(grant.user_id(), a, grant.protocol().port, now)
    }

    fn tunnel_to(&self, user_id: &str, a: u32, port: u16, now: Timestamp) -> Option<TunnelGrant> {
        let user = self.live_user(user_id, now)?;
        let rec = &self.assets[a as usize];
        let info = &self.infos[a as usize];
        if !rec.active {
            return None;
        }
        // Every protocol declared on that port (ssh and sftp may share 22).
        let mut bits = 0u64;
        let mut protocol = None;
        for (p, &id) in info.protocols().iter().zip(&info.proto_ids) {
            if p.port == port {
                bits |= 1 << id;
                protocol.get_or_insert(p);
            }
        }
        let protocol = protocol?;
        let mut permissions: Vec<String> = user
            .perms
            .iter()
            .map(|&pi| &self.perms[pi as usize])
            .filter(|p| {
                p.protocols & bits != 0
                    && p.actions.contains(Action::Tunnel)
                    && p.live(now)
                    && self.perm_covers(p, a)
            })
            .map(|p| p.name.clone())
            .collect();
        if permissions.is_empty() {
            return None;
        }
        permissions.sort();
        Some(TunnelGrant {
            user_id: user.id.clone(),
            user_name: user.name.clone(),
            asset_id: info.id().to_string(),
            asset_name: info.name().to_string(),
            address: info.address().to_string(),
            protocol: protocol.clone(),
            permissions,
        })
    }
}
