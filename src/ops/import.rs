//! The database side of `import assets|users`: every row goes in, in one
//! transaction, or none does; a row the database refuses (a name that
//! already exists, an unknown group or node) is reported with its row
//! number like a parse error. A file named on the command line and
//! standard input arrive the same way, as an [`import::Source`].

use std::fmt;

use serde::Serialize;

use super::{AssetSpec, Caller, Ops, OpsError, Result, UserSpec, require_admin};
use crate::import::{self, ImportError, Source};
use crate::store;

/// What an import did.
#[derive(Debug, Clone, Serialize)]
pub struct ImportSummary {
    pub kind: &'static str,
    pub file: String,
    pub imported: usize,
    /// Users created without a password or key get a one-time password;
    /// their names are listed so the admin can hand them over
    /// (`rampart user passwd NAME` prints a new one).
    pub needs_password: Vec<String>,
}

impl fmt::Display for ImportSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "imported {} {} from {}",
            self.imported, self.kind, self.file
        )?;
        if !self.needs_password.is_empty() {
            write!(
                f,
                "\nthese users have no password or key yet; set one with `rampart user passwd NAME`: {}",
                self.needs_password.join(", ")
            )?;
        }
        Ok(())
    }
}

fn at_row(file: &str, row: usize, e: OpsError) -> OpsError {
    ImportError::new(file, Some(row), None, e.to_string()).into()
}

impl Ops {
    pub async fn import_assets(&self, caller: &Caller, source: &Source) -> Result<ImportSummary> {
        require_admin(caller, "importing assets")?;
        let rows = import::parse_assets(source)?;
        let mut tx = self.store.begin().await?;
        for row in &rows {
            let spec = AssetSpec {
                name: row.name.clone(),
                address: row.address.clone(),
                protocols: row.protocols.clone(),
                nodes: row.nodes.clone(),
                platform: Some(row.platform.clone()),
                database: None,
                tls: false,
                url: None,
                comment: row.comment.clone(),
                active: row.active,
            };
            self.insert_asset(&mut tx, caller, &spec)
                .await
                .map_err(|e| at_row(&source.name, row.row, e))?;
        }
        store::bump_change_counter(&mut tx).await?;
        self.store.commit(tx).await?;
        Ok(ImportSummary {
            kind: "assets",
            file: source.name.clone(),
            imported: rows.len(),
            needs_password: Vec::new(),
        })
    }

    pub async fn import_users(&self, caller: &Caller, source: &Source) -> Result<ImportSummary> {
        require_admin(caller, "importing users")?;
        let rows = import::parse_users(source)?;
        let mut tx = self.store.begin().await?;
        let mut needs_password = Vec::new();
        for row in &rows {
            let spec = UserSpec {
                name: row.name.clone(),
                role: Some(row.role),
                email: row.email.clone(),
                password: None,
                keys: row.key.iter().cloned().collect(),
                groups: row.groups.clone(),
                expires_at: row.expires,
            };
            let added = self
                .insert_user(&mut tx, caller, &spec)
                .await
                .map_err(|e| at_row(&source.name, row.row, e))?;
            if !row.active {
                let profile = store::users::Profile {
                    role: added.user.role,
                    email: added.user.email.clone(),
                    active: false,
                    expires_at: added.user.expires_at,
                };
                store::users::update_profile(&mut tx, &added.user.id, &profile, self.now()).await?;
            }
            // A generated one-time password is not printed for a bulk import
            // (it would scroll past); the admin sets passwords one by one.
            if added.one_time_password.is_some() {
                needs_password.push(added.user.name.clone());
            }
        }
        store::bump_change_counter(&mut tx).await?;
        self.store.commit(tx).await?;
        Ok(ImportSummary {
            kind: "users",
            file: source.name.clone(),
            imported: rows.len(),
            needs_password,
        })
    }
}
