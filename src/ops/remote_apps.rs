//! `rampart asset app add|list|remove`: the programs a Windows asset
//! publishes for RemoteApp. A person who may reach the asset over RDP
//! gets, with their ticket, a `.rdp` file for each (the web side serves
//! it; `http::web::front`), which opens that program alone in a window;
//! the session is an RDP session like any other, recorded.

use serde_json::json;

use super::{Caller, Ops, OpsError, Result, require_admin, require_auditor};
use crate::model::RemoteApp;
use crate::store::{self, assets, remote_apps};

impl Ops {
    /// Publishes `app` (its `asset` named) as an RDP asset's RemoteApp.
    pub async fn remote_app_add(&self, caller: &Caller, app: RemoteApp) -> Result<RemoteApp> {
        require_admin(caller, "adding a RemoteApp")?;
        check(&app)?;
        let now = self.now();
        let mut tx = self.store.begin().await?;
        let asset = assets::get(&mut tx, &app.asset).await?;
        if !asset.protocols.iter().any(|p| p.name == "rdp") {
            return Err(OpsError::Invalid(format!(
                "{} has no rdp protocol: RemoteApps are for Windows desktops (asset edit {} --protocol rdp/3389)",
                asset.name, asset.name
            )));
        }
        remote_apps::insert(&mut tx, &asset.id, &app, now).await?;
        let after = json!({ "alias": app.alias, "name": app.name, "arguments": app.arguments });
        self.log(
            &mut tx,
            caller,
            "asset.app.add",
            format!("asset {}", asset.name),
            None,
            Some(after),
        )
        .await?;
        self.store.commit(tx).await?;
        Ok(app)
    }

    pub async fn remote_app_remove(&self, caller: &Caller, asset: &str, alias: &str) -> Result<()> {
        require_admin(caller, "removing a RemoteApp")?;
        let mut tx = self.store.begin().await?;
        let stored = assets::get(&mut tx, asset).await?;
        if !remote_apps::delete(&mut tx, &stored.id, alias).await? {
            return Err(OpsError::Invalid(format!(
                "{asset} publishes no RemoteApp {alias:?} (`rampart asset app list {asset}`)"
            )));
        }
        self.log(
            &mut tx,
            caller,
            "asset.app.remove",
            format!("asset {asset}"),
            Some(json!({ "alias": alias })),
            None,
        )
        .await?;
        self.store.commit(tx).await?;
        Ok(())
    }

    /// The published programs, of one asset or all.
    pub async fn remote_app_list(
        &self,
        caller: &Caller,
        asset: Option<&str>,
    ) -> Result<Vec<RemoteApp>> {
        require_auditor(caller, "listing RemoteApps")?;
        self.remote_apps_of(asset).await
    }

    /// The published programs, without a role check: for the ticket of a
    /// person who was just granted the asset over RDP.
    pub(crate) async fn remote_apps_of(&self, asset: Option<&str>) -> Result<Vec<RemoteApp>> {
        let mut conn = self.store.conn().await?;
        let asset_id = match asset {
            Some(name) => Some(assets::get(&mut conn, name).await?.id),
            None => None,
        };
        Ok(store::remote_apps::list(&mut conn, asset_id.as_deref()).await?)
    }
}

/// An alias as Windows publishes them; a name and arguments that fit on
/// one line of a `.rdp` file.
fn check(app: &RemoteApp) -> Result<()> {
    let alias_ok = !app.alias.is_empty()
        && app.alias.len() <= 64
        && app
            .alias
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b));
    if !alias_ok {
        return Err(OpsError::Invalid(format!(
            "RemoteApp alias {:?}: 1 to 64 letters, digits, '_', '.' or '-', as the server publishes it",
            app.alias
        )));
    }
    for (what, text, max) in [
        ("name", &app.name, 200),
        ("arguments", &app.arguments, 1024),
    ] {
        if text.len() > max || text.chars().any(char::is_control) {
            return Err(OpsError::Invalid(format!(
                "RemoteApp {what}: at most {max} bytes, on one line"
            )));
        }
    }
    if app.name.trim().is_empty() {
        return Err(OpsError::Invalid(
            "RemoteApp name: give one (--name)".into(),
        ));
    }
    Ok(())
}

/// The `.rdp` file that opens `app` alone in a window through the RDP
/// front at `front`, as `login` (`PERSON#ASSET`); the password (the
/// ticket's) is asked for at connect, so the file holds no secret.
pub fn rdp_file(front: &str, login: &str, app: &RemoteApp) -> String {
    let mut text = format!(
        "full address:s:{front}\r\n\
         username:s:{login}\r\n\
         prompt for credentials:i:1\r\n\
         enablecredsspsupport:i:1\r\n\
         authentication level:i:2\r\n\
         remoteapplicationmode:i:1\r\n\
         remoteapplicationprogram:s:||{}\r\n\
         remoteapplicationname:s:{}\r\n\
         disableremoteappcapscheck:i:1\r\n",
        app.alias, app.name
    );
    if !app.arguments.is_empty() {
        text.push_str(&format!("remoteapplicationcmdline:s:{}\r\n", app.arguments));
    }
    text
}
