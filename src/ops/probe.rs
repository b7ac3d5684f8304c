//! `asset test`: an admin checks that the bastion can reach an asset and log
//! in with one of its accounts, and sees the host key the target presents
//! beside the pinned one. The test is audited; it pins nothing (an admin
//! trusts a new key with `asset trust NAME --key LINE`).

use std::time::{Duration, Instant};

use serde::Serialize;
use serde_json::json;

use super::{Caller, Ops, OpsError, Result, require_admin};
use crate::model::{Account, Asset, HostKey, SecretKind};
use crate::store::{self, StoreError, accounts, assets};
use crate::upstream::{self, ConnectOptions, Credential, PresentedKey, ProbeTarget, UpstreamError};

/// How long a test waits for the target to answer (the authentication step
/// gets as long again).
const TEST_TIMEOUT: Duration = Duration::from_secs(10);

/// The presented host key against the pinned ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum HostKeyStatus {
    /// It is one of the pinned keys.
    Pinned,
    /// No key is pinned for the asset yet: the test did not pin it.
    NotPinned,
    /// Keys are pinned and this is none of them: sessions are refused.
    Changed,
    /// No key exchange happened (the target was not reached).
    NotSeen,
}

impl HostKeyStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            HostKeyStatus::Pinned => "pinned",
            HostKeyStatus::NotPinned => "not pinned yet",
            HostKeyStatus::Changed => "not the pinned key",
            HostKeyStatus::NotSeen => "not seen",
        }
    }
}

/// The outcome of `asset test`.
#[derive(Debug, Clone, Serialize)]
pub struct AssetTest {
    pub asset: String,
    /// The account username the test logged in with.
    pub account: String,
    pub address: String,
    pub port: u16,
    /// Whether the target accepted the account's credential.
    pub ok: bool,
    /// Why not, as one line (unreachable with the reason, credentials
    /// refused, host key changed with both fingerprints...).
    pub error: Option<String>,
    /// The key the target presented, also when it was refused.
    pub host_key: Option<PresentedKey>,
    pub host_key_status: HostKeyStatus,
    /// Fingerprints of the keys pinned for the asset.
    pub pinned: Vec<String>,
    /// From the start of the connection to the end of authentication.
    pub elapsed_ms: u64,
}

impl Ops {
    /// Connects to `asset` over its `ssh` protocol as `username` (or the
    /// first account with a stored secret), with the stored secret and the
    /// pinned host keys, authenticates and disconnects. A target that cannot
    /// be reached or refuses is an `Ok` result with `ok: false`; an `Err`
    /// means the test could not be made (role, no such asset or account,
    /// no ssh protocol, no master key).
    pub async fn asset_test(
        &self,
        caller: &Caller,
        asset: &str,
        username: Option<&str>,
    ) -> Result<AssetTest> {
        require_admin(caller, "testing an asset's connection")?;
        // No transaction is held over the network: read, connect, then log.
        let (target, account, pinned, sealed) = {
            let mut conn = self.store.conn().await?;
            let target = assets::get(&mut conn, asset).await?;
            let account = test_account(&mut conn, &target, username).await?;
            let pinned = assets::host_keys(&mut conn, &target.id).await?;
            let (_, sealed) = accounts::secret(&mut conn, &account.id).await?;
            (target, account, pinned, sealed)
        };
        let port = target
            .protocols
            .iter()
            .find(|p| p.name == "ssh")
            .map(|p| p.port)
            .ok_or_else(|| {
                OpsError::Invalid(format!(
                    "asset {asset} has no ssh protocol: only ssh connections can be tested"
                ))
            })?;
        let credential = match &sealed {
            Some(sealed) => match self.vault()?.open_string(sealed) {
                Ok(secret) => Credential::from_secret(account.secret_kind, Some(secret)),
                Err(e) => {
                    tracing::warn!(
                        "the secret of account {}@{asset} cannot be opened: {e}",
                        account.username
                    );
                    Err(UpstreamError::BadSecret)
                }
            },
            None => Credential::from_secret(account.secret_kind, None),
        };

        let options = ConnectOptions {
            connect_timeout: TEST_TIMEOUT,
            keepalive_interval: None,
        };
        let started = Instant::now();
        let probe = match credential {
            Ok(credential) => {
                upstream::probe_ssh(
                    ProbeTarget {
                        asset: &target.name,
                        address: &target.address,
                        port,
                    },
                    &account.username,
                    credential,
                    pinned.clone(),
                    &options,
                )
                .await
            }
            Err(e) => upstream::Probe {
                result: Err(e),
                presented: None,
            },
        };
        let elapsed_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        let result = report(&target, &account, port, &pinned, probe, elapsed_ms);

        let mut tx = self.store.begin().await?;
        self.log(
            &mut tx,
            caller,
            "asset.test",
            format!("asset {}", target.name),
            None,
            Some(json!({
                "account": result.account,
                "ok": result.ok,
                "error": result.error,
                "fingerprint": result.host_key.as_ref().map(|k| &k.fingerprint),
            })),
        )
        .await?;
        self.store.commit(tx).await?;
        Ok(result)
    }
}

/// The named account, or the first (by username) with a stored secret.
async fn test_account(
    conn: &mut store::Conn,
    asset: &Asset,
    username: Option<&str>,
) -> Result<Account> {
    match username {
        Some(name) => Ok(accounts::find(conn, &asset.id, name)
            .await?
            .ok_or_else(|| StoreError::NotFound {
                kind: "account",
                name: format!("{name}@{}", asset.name),
            })?),
        None => accounts::list(conn, Some(&asset.id))
            .await?
            .into_iter()
            .find(|a| a.secret_kind != SecretKind::None)
            .ok_or_else(|| {
                OpsError::Invalid(format!(
                    "asset {} has no account with a stored secret: name one with --account USER, \
                     or add one with `rampart account add {} USER --password-stdin`",
                    asset.name, asset.name
                ))
            }),
    }
}

fn report(
    target: &Asset,
    account: &Account,
    port: u16,
    pinned: &[HostKey],
    probe: upstream::Probe,
    elapsed_ms: u64,
) -> AssetTest {
    let host_key_status = match &probe.presented {
        None => HostKeyStatus::NotSeen,
        Some(_) if pinned.is_empty() => HostKeyStatus::NotPinned,
        Some(k) if pinned.iter().any(|p| p.fingerprint == k.fingerprint) => HostKeyStatus::Pinned,
        Some(_) => HostKeyStatus::Changed,
    };
    AssetTest {
        asset: target.name.clone(),
        account: account.username.clone(),
        address: target.address.clone(),
        port,
        ok: probe.result.is_ok(),
        error: probe.result.err().map(|e| e.to_string()),
        host_key: probe.presented,
        host_key_status,
        pinned: pinned.iter().map(|k| k.fingerprint.clone()).collect(),
        elapsed_ms,
    }
}

#[cfg(test)]
mod tests;
