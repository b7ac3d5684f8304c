//! Asset verbs: the node tree, assets, their accounts and pinned host keys.

use serde::Serialize;
use serde_json::json;

use super::{
    Caller, Ops, OpsError, Result, check_name, require_admin, require_auditor, snapshot, with,
};
use crate::model::{
    self, Account, Asset, HostKey, Node, Protocol, RESERVED_ASSET, SecretKind, new_id,
};
use crate::store::{self, StoreError, accounts, assets, nodes};
use crate::vault::Secret;

/// What `asset add` takes, and what `asset edit` replaces an asset with.
#[derive(Debug, Clone, Default)]
pub struct AssetSpec {
    pub name: String,
    pub address: String,
    pub protocols: Vec<Protocol>,
    /// Node paths; empty means `/DEFAULT`.
    pub nodes: Vec<String>,
    pub platform: Option<String>,
    /// A database asset's default database; `None` or empty: none.
    pub database: Option<String>,
    /// A database asset's server is reached over TLS.
    pub tls: bool,
    /// A web asset's site (`http://` or `https://`); `None` or empty: not
    /// a web asset.
    pub url: Option<String>,
    pub comment: String,
    pub active: bool,
}

/// The secret an account is created with.
#[derive(Debug)]
pub enum AccountSecret {
    None,
    Password(Secret<String>),
    /// An OpenSSH (or PEM) private key, unencrypted.
    PrivateKey(Secret<String>),
}

/// What `account edit` changes; `None` keeps that aspect.
#[derive(Debug, Default)]
pub struct AccountEdit {
    /// Replaces the stored secret (checked as for `account add`);
    /// `AccountSecret::None` clears it.
    pub secret: Option<AccountSecret>,
    pub privileged: Option<bool>,
    /// How a web account is logged in with its secret.
    pub web_login: Option<model::WebLogin>,
}

/// An asset with its accounts and host keys, for `asset show`.
#[derive(Debug, Clone, Serialize)]
pub struct AssetView {
    #[serde(flatten)]
    pub asset: Asset,
    pub accounts: Vec<Account>,
    pub host_keys: Vec<HostKey>,
}

/// A node and how many assets are filed directly under it.
#[derive(Debug, Clone, Serialize)]
pub struct NodeView {
    pub path: String,
    pub assets: i64,
}

/// What `node move` did.
#[derive(Debug, Clone, Serialize)]
pub struct NodeMoved {
    /// The path the node had.
    pub from: String,
    /// The node at its new path (same id).
    pub node: Node,
    /// How many nodes below it moved with it.
    pub descendants: usize,
    /// Parents of the new path that did not exist and were created,
    /// outermost first.
    pub created: Vec<String>,
}

/// A host name or an IP address; nothing that could smuggle options into
/// a client command line.
fn check_address(address: &str) -> Result<()> {
    model::check_address(address).map_err(|_| {
        OpsError::Invalid(format!(
            "address {address:?} is not a host name or IP address"
        ))
    })
}

fn check_protocols(protocols: &[Protocol]) -> Result<()> {
    if protocols.is_empty() {
        return Err(OpsError::Invalid(
            "an asset needs at least one --protocol, e.g. --protocol ssh/22".into(),
        ));
    }
    for (i, p) in protocols.iter().enumerate() {
        if protocols[..i].iter().any(|q| q.name == p.name) {
            return Err(OpsError::Invalid(format!(
                "protocol {} is given twice",
                p.name
            )));
        }
    }
    Ok(())
}

impl Ops {
    pub async fn node_add(&self, caller: &Caller, path: &str) -> Result<Node> {
        require_admin(caller, "adding a node")?;
        let path = model::normalize_node_path(path)?;
        let mut tx = self.store.begin().await?;
        let (node, created) = nodes::ensure(&mut tx, &path, self.now()).await?;
        if created.is_empty() {
            return Err(StoreError::Duplicate {
                kind: "node",
                name: path,
            }
            .into());
        }
        self.log(
            &mut tx,
            caller,
            "node.add",
            format!("node {path}"),
            None,
            Some(json!({"created": created})),
        )
        .await?;
        self.store.commit(tx).await?;
        Ok(node)
    }

    pub async fn node_remove(&self, caller: &Caller, path: &str) -> Result<()> {
        require_admin(caller, "removing a node")?;
        let path = model::normalize_node_path(path)?;
        if path == model::DEFAULT_NODE {
            return Err(OpsError::Invalid(format!(
                "{path} is the root node and cannot be removed"
            )));
        }
        let mut tx = self.store.begin().await?;
        let node = nodes::get(&mut tx, &path).await?;
        let (assets, children) = nodes::usage(&mut tx, &node.id).await?;
        if assets > 0 || children > 0 {
            return Err(OpsError::Invalid(format!(
                "node {path} still holds {assets} asset(s) and {children} child node(s): move or remove them first"
            )));
        }
        nodes::delete(&mut tx, &node.id).await?;
        store::filters::forget_target(&mut tx, &node.id).await?;
        self.log(
            &mut tx,
            caller,
            "node.remove",
            format!("node {path}"),
            snapshot(&node),
            None,
        )
        .await?;
        store::bump_change_counter(&mut tx).await?;
        self.store.commit(tx).await?;
        Ok(())
    }

    /// Renames or moves the node `from` to the path `to`, carrying its whole
    /// subtree. Assets filed in it and the permissions and filters bound to
    /// it follow (they refer to nodes by id). Missing parents of `to` are
    /// created, as `node add` does (`mkdir -p`), and named in the result.
    /// Refused: the root `/DEFAULT`, a `to` that exists, a `to` inside
    /// `from`.
    pub async fn node_move(&self, caller: &Caller, from: &str, to: &str) -> Result<NodeMoved> {
        require_admin(caller, "moving a node")?;
        let from = model::normalize_node_path(from)?;
        let to = model::normalize_node_path(to)?;
        if from == model::DEFAULT_NODE {
            return Err(OpsError::Invalid(format!(
                "{from} is the root node and cannot be moved: move the nodes below it instead"
            )));
        }
        if to == from || to.starts_with(&format!("{from}/")) {
            return Err(OpsError::Invalid(format!(
                "cannot move node {from} to {to}, inside itself: choose a path outside {from}"
            )));
        }
        let mut tx = self.store.begin().await?;
        let node = nodes::get(&mut tx, &from).await?;
        let taken = format!("{to}/");
        if let Some(n) = nodes::list(&mut tx)
            .await?
            .into_iter()
            .find(|n| n.path == to || n.path.starts_with(&taken))
        {
            return Err(StoreError::Duplicate {
                kind: "node",
                name: n.path,
            }
            .into());
        }
        let now = self.now();
        let (parent_id, created) = match model::parent_node_path(&to) {
            Some(parent) => {
                let (parent, created) = nodes::ensure(&mut tx, parent, now).await?;
                (Some(parent.id), created)
            }
            None => (None, Vec::new()),
        };
        let paths = nodes::move_subtree(&mut tx, &node, &to, parent_id.as_deref()).await?;
        let moved = nodes::get(&mut tx, &to).await?;
        let (old, new): (Vec<String>, Vec<String>) = paths.into_iter().unzip();
        self.log(
            &mut tx,
            caller,
            "node.move",
            format!("node {from}"),
            Some(json!({ "path": from, "nodes": old })),
            Some(json!({ "path": to, "nodes": new, "created": created })),
        )
        .await?;
        store::bump_change_counter(&mut tx).await?;
        self.store.commit(tx).await?;
        Ok(NodeMoved {
            from,
            descendants: new.len().saturating_sub(1),
            node: moved,
            created,
        })
    }

    pub async fn node_list(&self, caller: &Caller) -> Result<Vec<NodeView>> {
        require_auditor(caller, "listing nodes")?;
        let mut conn = self.store.conn().await?;
        Ok(nodes::asset_counts(&mut conn)
            .await?
            .into_iter()
            .map(|(path, assets)| NodeView { path, assets })
            .collect())
    }

    pub async fn asset_add(&self, caller: &Caller, spec: AssetSpec) -> Result<Asset> {
        require_admin(caller, "adding an asset")?;
        let mut tx = self.store.begin().await?;
        let asset = self.insert_asset(&mut tx, caller, &spec).await?;
        store::bump_change_counter(&mut tx).await?;
        self.store.commit(tx).await?;
        Ok(asset)
    }

    /// Validates and inserts one asset and logs it, in the caller's
    /// transaction (shared by `asset add` and `import assets`).
    pub(super) async fn insert_asset(
        &self,
        tx: &mut store::Conn,
        caller: &Caller,
        spec: &AssetSpec,
    ) -> Result<Asset> {
        let (fields, node_ids) = checked_spec(tx, spec).await?;
        let id = new_id();
        assets::insert(tx, &id, &fields, self.now()).await?;
        assets::set_protocols(tx, &id, &spec.protocols).await?;
        assets::set_nodes(tx, &id, &node_ids).await?;
        let asset = assets::get(tx, &spec.name).await?;
        self.log(
            tx,
            caller,
            "asset.add",
            format!("asset {}", spec.name),
            None,
            snapshot(&asset),
        )
        .await?;
        Ok(asset)
    }

    /// Replaces every field of asset `name` with `spec`, which reads as for
    /// `asset add` (no platform: linux; no nodes: `/DEFAULT`); a new
    /// `spec.name` renames it. Accounts, pinned host keys and the
    /// permissions and filters naming it stay (they hold its id). Running
    /// sessions the edit no longer allows (inactive, protocol gone, moved
    /// out of the granting node) end at the server's next policy reload.
    pub async fn asset_edit(&self, caller: &Caller, name: &str, spec: AssetSpec) -> Result<Asset> {
        require_admin(caller, "editing an asset")?;
        let mut tx = self.store.begin().await?;
        let before = assets::get(&mut tx, name).await?;
        let (fields, node_ids) = checked_spec(&mut tx, &spec).await?;
        assets::update(&mut tx, &before.id, &fields, self.now()).await?;
        assets::set_protocols(&mut tx, &before.id, &spec.protocols).await?;
        assets::set_nodes(&mut tx, &before.id, &node_ids).await?;
        let after = assets::get(&mut tx, &spec.name).await?;
        self.log(
            &mut tx,
            caller,
            "asset.edit",
            format!("asset {name}"),
            snapshot(&before),
            snapshot(&after),
        )
        .await?;
        store::bump_change_counter(&mut tx).await?;
        self.store.commit(tx).await?;
        Ok(after)
    }

    pub async fn asset_list(&self, caller: &Caller) -> Result<Vec<Asset>> {
        require_auditor(caller, "listing all assets")?;
        let mut conn = self.store.conn().await?;
        Ok(assets::list(&mut conn).await?)
    }

    pub async fn asset_show(&self, caller: &Caller, name: &str) -> Result<AssetView> {
        require_auditor(caller, "showing an asset")?;
        let mut conn = self.store.conn().await?;
        let asset = assets::get(&mut conn, name).await?;
        let accounts = accounts::list(&mut conn, Some(&asset.id)).await?;
        let host_keys = assets::host_keys(&mut conn, &asset.id).await?;
        Ok(AssetView {
            asset,
            accounts,
            host_keys,
        })
    }

    pub async fn asset_remove(&self, caller: &Caller, name: &str) -> Result<()> {
        require_admin(caller, "removing an asset")?;
        let mut tx = self.store.begin().await?;
        let asset = assets::get(&mut tx, name).await?;
        let accounts = accounts::list(&mut tx, Some(&asset.id)).await?;
        assets::delete(&mut tx, &asset.id).await?;
        store::filters::forget_target(&mut tx, &asset.id).await?;
        let before = with(snapshot(&asset), json!({ "accounts": accounts }));
        self.log(
            &mut tx,
            caller,
            "asset.remove",
            format!("asset {name}"),
            before,
            None,
        )
        .await?;
        store::bump_change_counter(&mut tx).await?;
        self.store.commit(tx).await?;
        Ok(())
    }

    /// Re-pins the target's host key: with a key line, pins exactly that
    /// key; without, forgets the pinned keys so the next connection pins
    /// what the target presents (trust on first use, audited here).
    pub async fn asset_trust(
        &self,
        caller: &Caller,
        name: &str,
        key_line: Option<&str>,
    ) -> Result<Vec<HostKey>> {
        require_admin(caller, "trusting a host key")?;
        let parsed = key_line
            .map(crate::auth::parse_public_key_line)
            .transpose()
            .map_err(|e| OpsError::Invalid(format!("host key: {e}")))?;
        let mut tx = self.store.begin().await?;
        let asset = assets::get(&mut tx, name).await?;
        let before = assets::host_keys(&mut tx, &asset.id).await?;
        match &parsed {
            Some(key) => {
                assets::pin_host_key(
                    &mut tx,
                    &asset.id,
                    &key.algorithm,
                    &key.fingerprint,
                    &key.openssh,
                    self.now(),
                )
                .await?
            }
            None => {
                assets::clear_host_keys(&mut tx, &asset.id).await?;
            }
        }
        let after = assets::host_keys(&mut tx, &asset.id).await?;
        self.log(
            &mut tx,
            caller,
            "asset.trust",
            format!("asset {name}"),
            snapshot(&before),
            snapshot(&after),
        )
        .await?;
        self.store.commit(tx).await?;
        Ok(after)
    }

    // ------------------------------------------------------------ accounts --

    pub async fn account_add(
        &self,
        caller: &Caller,
        asset: &str,
        username: &str,
        secret: AccountSecret,
        privileged: bool,
    ) -> Result<Account> {
        require_admin(caller, "adding an account")?;
        check_name("account username", username)?;
        let (kind, sealed) = self.seal_secret(&secret)?;
        let now = self.now();
        let mut tx = self.store.begin().await?;
        let target = assets::get(&mut tx, asset).await?;
        if sealed.is_some() {
            store::register_vault_key(&mut tx, self.vault()?.key_id(), now).await?;
        }
        let new = accounts::NewAccount {
            id: new_id(),
            asset_id: target.id.clone(),
            username: username.to_string(),
            secret_kind: kind,
            sealed_secret: sealed,
            privileged,
            template_id: None,
        };
        accounts::insert(&mut tx, asset, &new, now).await?;
        let account = accounts::find(&mut tx, &target.id, username)
            .await?
            .ok_or_else(|| StoreError::Corrupt("account just added is missing".into()))?;
        // The secret itself never enters the log: only that one was set.
        let after = with(snapshot(&account), json!({ "secret": kind.as_str() }));
        self.log(
            &mut tx,
            caller,
            "account.add",
            format!("account {username}@{asset}"),
            None,
            after,
        )
        .await?;
        store::bump_change_counter(&mut tx).await?;
        self.store.commit(tx).await?;
        Ok(account)
    }

    /// Replaces an account's secret and/or its privileged flag. The log row
    /// says only which kind of secret it now holds, never the secret.
    pub async fn account_edit(
        &self,
        caller: &Caller,
        asset: &str,
        username: &str,
        edit: AccountEdit,
    ) -> Result<Account> {
        require_admin(caller, "editing an account")?;
        if edit.secret.is_none() && edit.privileged.is_none() && edit.web_login.is_none() {
            return Err(OpsError::Invalid(format!(
                "nothing to change for account {username}@{asset}: give a new secret, the privileged flag or a web login"
            )));
        }
        let sealed = edit
            .secret
            .as_ref()
            .map(|secret| self.seal_secret(secret))
            .transpose()?;
        let now = self.now();
        let mut tx = self.store.begin().await?;
        let target = assets::get(&mut tx, asset).await?;
        let before = find_account(&mut tx, &target, username).await?;
        let mut after_extra = serde_json::Map::new();
        if let Some((kind, sealed)) = &sealed {
            if sealed.is_some() {
                store::register_vault_key(&mut tx, self.vault()?.key_id(), now).await?;
            }
            accounts::set_secret(&mut tx, &before.id, *kind, sealed.as_deref(), now).await?;
            after_extra.insert("secret".into(), json!(kind.as_str()));
        }
        if let Some(privileged) = edit.privileged {
            accounts::set_privileged(&mut tx, &before.id, privileged, now).await?;
        }
        if let Some(login) = &edit.web_login {
            accounts::set_web_login(&mut tx, &before.id, login, now).await?;
        }
        let account = find_account(&mut tx, &target, username).await?;
        self.log(
            &mut tx,
            caller,
            "account.edit",
            format!("account {username}@{asset}"),
            snapshot(&before),
            with(snapshot(&account), serde_json::Value::Object(after_extra)),
        )
        .await?;
        store::bump_change_counter(&mut tx).await?;
        self.store.commit(tx).await?;
        Ok(account)
    }

    /// Checks a new account secret and seals it; the plaintext goes no
    /// further than the vault.
    fn seal_secret(&self, secret: &AccountSecret) -> Result<(SecretKind, Option<String>)> {
        Ok(match secret {
            AccountSecret::None => (SecretKind::None, None),
            AccountSecret::Password(pw) => {
                if pw.expose().is_empty() {
                    return Err(OpsError::Invalid("the account password is empty".into()));
                }
                (
                    SecretKind::Password,
                    Some(self.vault()?.seal_str(pw.expose())),
                )
            }
            AccountSecret::PrivateKey(pem) => {
                check_private_key(pem)?;
                (
                    SecretKind::PrivateKey,
                    Some(self.vault()?.seal_str(pem.expose())),
                )
            }
        })
    }

    pub async fn account_list(&self, caller: &Caller, asset: Option<&str>) -> Result<Vec<Account>> {
        require_auditor(caller, "listing accounts")?;
        let mut conn = self.store.conn().await?;
        let asset_id = match asset {
            Some(name) => Some(assets::get(&mut conn, name).await?.id),
            None => None,
        };
        Ok(accounts::list(&mut conn, asset_id.as_deref()).await?)
    }

    pub async fn account_remove(&self, caller: &Caller, asset: &str, username: &str) -> Result<()> {
        require_admin(caller, "removing an account")?;
        let mut tx = self.store.begin().await?;
        let target = assets::get(&mut tx, asset).await?;
        let account = accounts::find(&mut tx, &target.id, username)
            .await?
            .ok_or_else(|| StoreError::NotFound {
                kind: "account",
                name: format!("{username}@{asset}"),
            })?;
        accounts::delete(&mut tx, &account.id).await?;
        self.log(
            &mut tx,
            caller,
            "account.remove",
            format!("account {username}@{asset}"),
            snapshot(&account),
            None,
        )
        .await?;
        store::bump_change_counter(&mut tx).await?;
        self.store.commit(tx).await?;
        Ok(())
    }

    /// Enables or disables an account. A disabled account is granted by no
    /// permission (DESIGN.md, permission semantics); the sessions using it
    /// end at the change counter's bump, like any revocation.
    pub async fn account_set_active(
        &self,
        caller: &Caller,
        asset: &str,
        username: &str,
        active: bool,
    ) -> Result<()> {
        require_admin(
            caller,
            if active {
                "enabling an account"
            } else {
                "disabling an account"
            },
        )?;
        let mut tx = self.store.begin().await?;
        let target = assets::get(&mut tx, asset).await?;
        let not_found = || StoreError::NotFound {
            kind: "account",
            name: format!("{username}@{asset}"),
        };
        let before = accounts::find(&mut tx, &target.id, username)
            .await?
            .ok_or_else(not_found)?;
        accounts::set_active(&mut tx, &before.id, active, self.now()).await?;
        let after = accounts::find(&mut tx, &target.id, username)
            .await?
            .ok_or_else(not_found)?;
        self.log(
            &mut tx,
            caller,
            if active {
                "account.enable"
            } else {
                "account.disable"
            },
            format!("account {username}@{asset}"),
            snapshot(&before),
            snapshot(&after),
        )
        .await?;
        store::bump_change_counter(&mut tx).await?;
        self.store.commit(tx).await?;
        Ok(())
    }
}

/// Checks an asset spec as `asset add` and `asset edit` take it and
/// resolves its node paths: the row's fields and the node ids.
async fn checked_spec(
    tx: &mut store::Conn,
    spec: &AssetSpec,
) -> Result<(assets::AssetFields, Vec<model::Id>)> {
    check_name("asset name", &spec.name)?;
    if spec.name == RESERVED_ASSET {
        return Err(OpsError::Invalid(format!(
            "{RESERVED_ASSET:?} is reserved for `ssh bastion rampart ...`: choose another asset name"
        )));
    }
    check_address(&spec.address)?;
    check_protocols(&spec.protocols)?;
    let paths = if spec.nodes.is_empty() {
        vec![model::DEFAULT_NODE.to_string()]
    } else {
        spec.nodes
            .iter()
            .map(|p| model::normalize_node_path(p))
            .collect::<Result<Vec<_>, _>>()?
    };
    let platform = spec.platform.clone().unwrap_or_else(|| "linux".to_string());
    check_name("platform", &platform)?;
    let database = spec.database.clone().unwrap_or_default();
    check_database(&database)?;
    let url = spec.url.clone().unwrap_or_default();
    check_url(&url, &spec.protocols)?;
    if !url.is_empty() && !model::is_dns_label(&spec.name) {
        return Err(OpsError::Invalid(format!(
            "a web asset is served at https://NAME.DOMAIN, so {:?} must be letters, digits and '-' (at most 63)",
            spec.name
        )));
    }
    let mut node_ids = Vec::new();
    for path in &paths {
        node_ids.push(nodes::get(tx, path).await?.id);
    }
    let fields = assets::AssetFields {
        name: spec.name.clone(),
        address: spec.address.clone(),
        platform,
        database,
        tls: spec.tls,
        url,
        active: spec.active,
        comment: spec.comment.clone(),
    };
    Ok((fields, node_ids))
}

/// A web asset (one with protocol `http` or `https`) names its site, whose
/// scheme is one of those protocols; no other asset has one.
fn check_url(url: &str, protocols: &[Protocol]) -> Result<()> {
    let web: Vec<&str> = protocols
        .iter()
        .map(|p| p.name.as_str())
        .filter(|n| matches!(*n, "http" | "https"))
        .collect();
    if url.is_empty() {
        if let Some(first) = web.first() {
            return Err(OpsError::Invalid(format!(
                "a web asset needs its site: give --url {first}://HOST[:PORT]/"
            )));
        }
        return Ok(());
    }
    if web.is_empty() {
        return Err(OpsError::Invalid(
            "--url is for web assets: give --protocol https/443 (or http/80) too".into(),
        ));
    }
    let site = model::Site::parse(url).map_err(|e| OpsError::Invalid(format!("--url {e}")))?;
    let scheme = if site.https { "https" } else { "http" };
    if !web.contains(&scheme) {
        return Err(OpsError::Invalid(format!(
            "--url {url:?} is {scheme}, but the asset's web protocol is {}",
            web.join(", ")
        )));
    }
    Ok(())
}

/// A database name as the servers take it: up to 63 bytes (PostgreSQL's
/// and MySQL's limit), printable, no quotes or slashes; empty is none.
fn check_database(name: &str) -> Result<()> {
    let bad = |c: char| c.is_control() || matches!(c, '\'' | '"' | '`' | '/' | '\\');
    if name.len() > 63 || name.chars().any(bad) {
        return Err(OpsError::Invalid(format!(
            "database name {name:?}: at most 63 bytes, without control characters, quotes, slashes or backslashes"
        )));
    }
    Ok(())
}

/// The account `username` of `asset`, or a not-found error naming both.
async fn find_account(tx: &mut store::Conn, asset: &Asset, username: &str) -> Result<Account> {
    Ok(accounts::find(tx, &asset.id, username)
        .await?
        .ok_or_else(|| StoreError::NotFound {
            kind: "account",
            name: format!("{username}@{}", asset.name),
        })?)
}

/// Refuses what is not an unencrypted private key, without echoing it.
fn check_private_key(pem: &Secret<String>) -> Result<()> {
    let text = pem.expose();
    if text.contains("ENCRYPTED") {
        return Err(OpsError::Invalid(
            "the private key is encrypted: give an unencrypted copy (ssh-keygen -p -N '' -f COPY)"
                .into(),
        ));
    }
    match russh::keys::decode_secret_key(text, None) {
        Ok(_) => Ok(()),
        Err(russh::keys::Error::KeyIsEncrypted) => Err(OpsError::Invalid(
            "the private key is encrypted: give an unencrypted copy (ssh-keygen -p -N '' -f COPY)"
                .into(),
        )),
        Err(_) => Err(OpsError::Invalid(
            "not a private key: expected an OpenSSH or PEM private key file".into(),
        )),
    }
}

#[cfg(test)]
mod tests;
