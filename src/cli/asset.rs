//! `rampart asset ...`: assets, their pinned host keys and the connection
//! test (see `ops::assets`), printed.

use anyhow::bail;

use super::output::{self, Column};
use super::verb::{Io, Outcome};
use super::{AssetAppCmd, AssetCmd};
use crate::model::Protocol;
use crate::ops::{AssetSpec, AssetTest, Caller, HostKeyStatus};
use crate::services::Services;

const ASSET_COLUMNS: &[Column] = &[
    ("NAME", "name"),
    ("ADDRESS", "address"),
    ("PLATFORM", "platform"),
    ("PROTOCOLS", "protocols"),
    ("NODES", "nodes"),
    ("ACTIVE", "active"),
];

/// Prints an `asset test` result: on success one line on standard output;
/// on failure the reason as one line on standard error and the presented
/// host key (with how to pin it) on standard output, and exit status 1.
fn report_asset_test(test: &AssetTest, json: bool, io: &mut Io<'_>) -> anyhow::Result<Outcome> {
    let who = format!("{}@{}", test.account, test.asset);
    if json {
        output::show(io.out, test, true)?;
    }
    let key = test.host_key.as_ref().map(|k| {
        format!(
            "host key {} {} ({})",
            k.algorithm,
            k.fingerprint,
            test.host_key_status.as_str()
        )
    });
    match (&test.error, json) {
        (None, false) => {
            let key = key.unwrap_or_else(|| "no host key seen".into());
            writeln!(
                io.out,
                "ok: {who} authenticated in {} ms; {key}",
                test.elapsed_ms
            )?;
        }
        (None, true) => {}
        (Some(error), _) => {
            writeln!(io.err, "rampart: {who}: {error}")?;
            if let (Some(key), false) = (key, json) {
                writeln!(io.out, "{key}")?;
            }
        }
    }
    let unpinned = matches!(
        test.host_key_status,
        HostKeyStatus::NotPinned | HostKeyStatus::Changed
    );
    if let (Some(k), true, false) = (&test.host_key, unpinned, json) {
        writeln!(
            io.out,
            "check it on the target, then pin it: rampart asset trust {} --key '{}'",
            test.asset, k.openssh
        )?;
    }
    Ok(if test.ok {
        Outcome::Success
    } else {
        Outcome::Failure
    })
}

pub(super) async fn run(
    services: &Services,
    caller: &Caller,
    cmd: AssetCmd,
    json: bool,
    io: &mut Io<'_>,
) -> anyhow::Result<Outcome> {
    let ops = &services.ops;
    match cmd {
        AssetCmd::Add {
            name,
            address,
            protocols,
            nodes,
            platform,
            database,
            tls,
            url,
            comment,
            inactive,
        } => {
            let protocols = protocols
                .iter()
                .map(|p| p.parse::<Protocol>())
                .collect::<Result<Vec<_>, _>>()?;
            let asset = ops
                .asset_add(
                    caller,
                    AssetSpec {
                        name,
                        address,
                        protocols,
                        nodes,
                        platform: Some(platform),
                        database,
                        tls,
                        url,
                        comment,
                        active: !inactive,
                    },
                )
                .await?;
            writeln!(io.out, "asset {} added", asset.name)?;
        }
        AssetCmd::Edit {
            name,
            new_name,
            address,
            protocols,
            nodes,
            platform,
            database,
            tls,
            no_tls,
            url,
            active,
            inactive,
            comment,
        } => {
            let unchanged = new_name.is_none()
                && address.is_none()
                && protocols.is_empty()
                && nodes.is_empty()
                && platform.is_none()
                && database.is_none()
                && !tls
                && !no_tls
                && url.is_none()
                && !active
                && !inactive
                && comment.is_none();
            if unchanged {
                bail!(
                    "nothing to change for asset {name}: give --name, --address, --protocol, --node, --platform, --database, --tls, --no-tls, --url, --active, --inactive or --comment"
                );
            }
            let protocols = protocols
                .iter()
                .map(|p| p.parse::<Protocol>())
                .collect::<Result<Vec<_>, _>>()?;
            // Each option replaces its aspect; the rest is read back.
            let current = ops.asset_show(caller, &name).await?.asset;
            let spec = AssetSpec {
                name: new_name.unwrap_or(current.name),
                address: address.unwrap_or(current.address),
                protocols: if protocols.is_empty() {
                    current.protocols
                } else {
                    protocols
                },
                nodes: if nodes.is_empty() {
                    current.nodes
                } else {
                    nodes
                },
                platform: Some(platform.unwrap_or(current.platform)),
                database: Some(database.unwrap_or(current.database)),
                tls: (current.tls || tls) && !no_tls,
                url: Some(url.unwrap_or(current.url)),
                comment: comment.unwrap_or(current.comment),
                active: (current.active || active) && !inactive,
            };
            let asset = ops.asset_edit(caller, &name, spec).await?;
            if asset.name == name {
                writeln!(io.out, "asset {name} updated")?;
            } else {
                writeln!(io.out, "asset {name} updated and renamed to {}", asset.name)?;
            }
        }
        AssetCmd::Test { name, account } => {
            let test = ops.asset_test(caller, &name, account.as_deref()).await?;
            return report_asset_test(&test, json, io);
        }
        AssetCmd::List => {
            output::list(io.out, &ops.asset_list(caller).await?, ASSET_COLUMNS, json)?
        }
        AssetCmd::Show { name } => {
            output::show(io.out, &ops.asset_show(caller, &name).await?, json)?
        }
        AssetCmd::Remove { name } => {
            ops.asset_remove(caller, &name).await?;
            writeln!(io.out, "asset {name} removed")?;
        }
        AssetCmd::App(cmd) => return app(ops, caller, cmd, json, io).await,
        AssetCmd::Trust { name, key } => {
            let keys = ops.asset_trust(caller, &name, key.as_deref()).await?;
            if keys.is_empty() {
                writeln!(
                    io.out,
                    "host keys of {name} forgotten: the next connection pins the key it sees"
                )?;
            } else {
                for k in keys {
                    writeln!(io.out, "{name}: pinned {} {}", k.algorithm, k.fingerprint)?;
                }
            }
        }
    }
    Ok(Outcome::Success)
}

const APP_COLUMNS: &[Column] = &[
    ("ASSET", "asset"),
    ("ALIAS", "alias"),
    ("NAME", "name"),
    ("ARGUMENTS", "arguments"),
];

/// `asset app ...`.
async fn app(
    ops: &crate::ops::Ops,
    caller: &Caller,
    cmd: AssetAppCmd,
    json: bool,
    io: &mut Io<'_>,
) -> anyhow::Result<Outcome> {
    match cmd {
        AssetAppCmd::Add {
            asset,
            alias,
            name,
            arguments,
        } => {
            let app = crate::model::RemoteApp {
                asset,
                alias,
                name,
                arguments,
            };
            let app = ops.remote_app_add(caller, app).await?;
            writeln!(io.out, "RemoteApp {} published on {}", app.alias, app.asset)?;
        }
        AssetAppCmd::List { asset } => output::list(
            io.out,
            &ops.remote_app_list(caller, asset.as_deref()).await?,
            APP_COLUMNS,
            json,
        )?,
        AssetAppCmd::Remove { asset, alias } => {
            ops.remote_app_remove(caller, &asset, &alias).await?;
            writeln!(io.out, "RemoteApp {alias} removed from {asset}")?;
        }
    }
    Ok(Outcome::Success)
}
