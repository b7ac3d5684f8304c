//! Registering the demo target of `rampart serve --demo`: asset `demo` on
//! loopback, its account, and a permission for `admin`, refreshed at every
//! start (the port and the account password change), with the usual
//! operation rows.

use serde_json::json;

use super::{AssetSpec, Caller, Ops, Result, require_admin};
use crate::model::{AccountSpec, Actions, Permission, Protocol, ProtocolSpec, SecretKind, new_id};
use crate::store::{self, accounts, assets};
use crate::vault::Secret;

pub const DEMO_ASSET: &str = "demo";
pub const DEMO_ACCOUNT: &str = "demo";
const DEMO_PERMISSION: &str = "demo-admin";

impl Ops {
    pub async fn demo_register(
        &self,
        caller: &Caller,
        port: u16,
        password: &Secret<String>,
    ) -> Result<()> {
        require_admin(caller, "registering the demo target")?;
        let vault = self.vault()?.clone();
        let now = self.now();
        let mut tx = self.store.begin().await?;
        let protocol = Protocol {
            name: "ssh".into(),
            port,
        };
        let asset = match assets::find(&mut tx, DEMO_ASSET).await? {
            Some(a) => {
                assets::set_protocols(&mut tx, &a.id, std::slice::from_ref(&protocol)).await?;
                a
            }
            None => {
                let spec = AssetSpec {
                    name: DEMO_ASSET.into(),
                    address: "127.0.0.1".into(),
                    protocols: vec![protocol.clone()],
                    nodes: Vec::new(),
                    platform: Some("linux".into()),
                    database: None,
                    tls: false,
                    url: None,
                    comment: "built-in demo target (rampart serve --demo)".into(),
                    active: true,
                };
                self.insert_asset(&mut tx, caller, &spec).await?
            }
        };
        let sealed = vault.seal_str(password.expose());
        store::register_vault_key(&mut tx, vault.key_id(), now).await?;
        match accounts::find(&mut tx, &asset.id, DEMO_ACCOUNT).await? {
            Some(account) => {
                accounts::set_secret(
                    &mut tx,
                    &account.id,
                    SecretKind::Password,
                    Some(&sealed),
                    now,
                )
                .await?;
            }
            None => {
                let new = accounts::NewAccount {
                    id: new_id(),
                    asset_id: asset.id.clone(),
                    username: DEMO_ACCOUNT.into(),
                    secret_kind: SecretKind::Password,
                    sealed_secret: Some(sealed),
                    privileged: false,
                    template_id: None,
                };
                accounts::insert(&mut tx, DEMO_ASSET, &new, now).await?;
            }
        }
        if store::permissions::find(&mut tx, DEMO_PERMISSION)
            .await?
            .is_none()
            && let Some(admin) = store::users::find(&mut tx, "admin").await?
        {
            let new = store::permissions::NewPermission {
                permission: Permission {
                    id: new_id(),
                    name: DEMO_PERMISSION.into(),
                    users: vec!["admin".into()],
                    groups: Vec::new(),
                    assets: vec![DEMO_ASSET.into()],
                    nodes: Vec::new(),
                    accounts: AccountSpec::all(),
                    protocols: ProtocolSpec::All,
                    actions: Actions::all_but_tunnel(),
                    valid_from: None,
                    valid_until: None,
                    active: true,
                    comment: "lets admin try the demo target".into(),
                    require_approval: false,
                },
                user_ids: vec![admin.user.id],
                group_ids: Vec::new(),
                asset_ids: vec![asset.id.clone()],
                node_ids: Vec::new(),
            };
            store::permissions::insert(&mut tx, &new, now).await?;
        }
        self.log(
            &mut tx,
            caller,
            "demo.register",
            format!("asset {DEMO_ASSET}"),
            None,
            Some(json!({ "port": port, "account": DEMO_ACCOUNT, "secret": "password", "permission": DEMO_PERMISSION })),
        )
        .await?;
        store::bump_change_counter(&mut tx).await?;
        self.store.commit(tx).await?;
        Ok(())
    }
}
