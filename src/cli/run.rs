//! Runs a parsed command line: opens the services, calls the ops verb as the
//! local admin, prints the result.

use std::io::Write;
use std::path::Path;

use anyhow::{Context, anyhow, bail};
use jiff::Timestamp;
use jiff::tz::TimeZone;

use super::output::{self, Column};
use super::stdin::Stdin;
use super::*;
use crate::audit::Via;
use crate::config::Config;
use crate::import;
use crate::model::{AccountSpec, AclAction, Actions, FilterAction, Protocol, ProtocolSpec, Role};
use crate::ops::{
    self, AccountEdit, AccountSecret, AclSpec, AssetSpec, AssetTest, Caller, FilterSpec,
    HostKeyStatus, PermSpec, UserEdit, UserSpec,
};
use crate::services::Services;
use crate::store::audit_log::Query;
use crate::vault::Secret;

/// What the process should exit with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Success,
    /// The command ran and found a problem (e.g. `audit verify` on a broken chain).
    Failure,
}

/// Reads a file named on the command line. Only the local CLI reads files:
/// over SSH the path would name a file on the bastion, readable by the
/// server process (its database, its master key), not one of the caller's.
fn read_file(caller: &Caller, path: &Path, what: &str) -> anyhow::Result<String> {
    if caller.via != Via::Cli {
        bail!(
            "{what} {}: files are read only by the local CLI on the bastion; over SSH pass the content (e.g. --key LINE)",
            path.display()
        );
    }
    std::fs::read_to_string(path).with_context(|| format!("cannot read {what} {}", path.display()))
}

fn query(f: &AuditFilter, tz: &TimeZone, now: Timestamp) -> anyhow::Result<Query> {
    Ok(Query {
        user: f.user.clone(),
        asset: f.asset.clone(),
        since: f
            .since
            .as_deref()
            .map(|s| ops::parse_since(s, tz, now))
            .transpose()
            .map_err(|e| anyhow!("--since: {e}"))?,
        until: f
            .until
            .as_deref()
            .map(|s| ops::parse_since(s, tz, now))
            .transpose()
            .map_err(|e| anyhow!("--until: {e}"))?,
        limit: f.limit,
    })
}

fn time_opt(text: Option<&str>, tz: &TimeZone, flag: &str) -> anyhow::Result<Option<Timestamp>> {
    text.map(|t| ops::parse_time(t, tz).map_err(|e| anyhow!("{flag}: {e}")))
        .transpose()
}

const USER_COLUMNS: &[Column] = &[
    ("NAME", "name"),
    ("ROLE", "role"),
    ("EMAIL", "email"),
    ("ACTIVE", "active"),
    ("EXPIRES", "expires_at"),
    ("LOCKED_UNTIL", "locked_until"),
    ("LAST_LOGIN", "last_login_at"),
];
const GROUP_COLUMNS: &[Column] = &[("NAME", "name"), ("MEMBERS", "members")];
const NODE_COLUMNS: &[Column] = &[("PATH", "path"), ("ASSETS", "assets")];
const ASSET_COLUMNS: &[Column] = &[
    ("NAME", "name"),
    ("ADDRESS", "address"),
    ("PLATFORM", "platform"),
    ("PROTOCOLS", "protocols"),
    ("NODES", "nodes"),
    ("ACTIVE", "active"),
];
const ACCOUNT_COLUMNS: &[Column] = &[
    ("ASSET", "asset"),
    ("USERNAME", "username"),
    ("SECRET", "secret_kind"),
    ("PRIVILEGED", "privileged"),
    ("ACTIVE", "active"),
];
const PERM_COLUMNS: &[Column] = &[
    ("NAME", "name"),
    ("USERS", "users"),
    ("GROUPS", "groups"),
    ("ASSETS", "assets"),
    ("NODES", "nodes"),
    ("ACCOUNTS", "accounts"),
    ("PROTOCOLS", "protocols"),
    ("ACTIONS", "actions"),
    ("FROM", "valid_from"),
    ("UNTIL", "valid_until"),
    ("APPROVAL", "require_approval"),
    ("ACTIVE", "active"),
];
const REACH_COLUMNS: &[Column] = &[
    ("USER", "user"),
    ("ASSET", "asset"),
    ("ACCOUNTS", "accounts"),
    ("PROTOCOLS", "protocols"),
    ("ACTIONS", "actions"),
    ("PERMISSION", "permission"),
    ("VIA_GROUP", "group"),
];
const FILTER_COLUMNS: &[Column] = &[
    ("NAME", "name"),
    ("PRIORITY", "priority"),
    ("ACTION", "action"),
    ("PATTERN", "pattern"),
    ("USERS", "users"),
    ("GROUPS", "groups"),
    ("ASSETS", "assets"),
    ("NODES", "nodes"),
    ("ACCOUNTS", "accounts"),
];
const ACL_COLUMNS: &[Column] = &[
    ("NAME", "name"),
    ("PRIORITY", "priority"),
    ("ACTION", "action"),
    ("USERS", "users"),
    ("GROUPS", "groups"),
    ("SOURCES", "sources"),
    ("WINDOWS", "windows"),
];
const SESSION_COLUMNS: &[Column] = &[
    ("ID", "id"),
    ("USER", "user"),
    ("ASSET", "asset"),
    ("ACCOUNT", "account"),
    ("PROTOCOL", "protocol"),
    ("SOURCE", "source"),
    ("STARTED", "started_at"),
    ("ENDED", "ended_at"),
    ("STATUS", "status"),
];
const LIVE_COLUMNS: &[Column] = &[
    ("ID", "id"),
    ("USER", "user"),
    ("ASSET", "asset"),
    ("ACCOUNT", "account"),
    ("PROTOCOL", "protocol"),
    ("SOURCE", "source"),
    ("STARTED", "started_at"),
    ("IN", "bytes_in"),
    ("OUT", "bytes_out"),
];
const APPROVAL_COLUMNS: &[Column] = &[
    ("ID", "id"),
    ("USER", "user"),
    ("ASSET", "asset"),
    ("ACCOUNT", "account"),
    ("RULE", "rule"),
    ("ASKED", "asked_at"),
    ("WHAT", "command"),
];
const LOGIN_COLUMNS: &[Column] = &[
    ("AT", "at"),
    ("USER", "user"),
    ("SOURCE", "source"),
    ("METHOD", "method"),
    ("RESULT", "result"),
    ("REASON", "reason"),
];
const COMMAND_COLUMNS: &[Column] = &[
    ("AT", "at"),
    ("USER", "user"),
    ("ASSET", "asset"),
    ("ACCOUNT", "account"),
    ("ACTION", "action"),
    ("COMMAND", "command"),
];
const TRANSFER_COLUMNS: &[Column] = &[
    ("AT", "at"),
    ("USER", "user"),
    ("ASSET", "asset"),
    ("OPERATION", "operation"),
    ("PATH", "path"),
    ("SIZE", "size"),
    ("RESULT", "result"),
    ("SHA256", "sha256"),
    ("ERROR", "error"),
];
const SCREEN_COLUMNS: &[Column] = &[
    ("AT", "at"),
    ("USER", "user"),
    ("ASSET", "asset"),
    ("ACCOUNT", "account"),
    ("SESSION", "session"),
    ("OFFSET_MS", "offset_ms"),
    ("LINE", "line"),
];
const REFUSAL_COLUMNS: &[Column] = &[
    ("AT", "at"),
    ("USER", "user"),
    ("SOURCE", "source"),
    ("REQUEST", "request"),
    ("REASON", "reason"),
];
const OPERATION_COLUMNS: &[Column] = &[
    ("AT", "at"),
    ("ACTOR", "actor"),
    ("VIA", "via"),
    ("VERB", "verb"),
    ("OBJECT", "object"),
    ("CHANGES", "changes"),
];

fn report_init(init: &crate::services::Initialised) {
    eprintln!("initialised {}", init.data_dir.display());
    for key in &init.host_keys {
        eprintln!("host key: {}", key.display());
    }
    eprintln!(
        "user {:?} created with the one-time password: {}",
        init.admin,
        init.admin_password.expose()
    );
    eprintln!("it is shown only now and must be changed at the first login");
}

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

/// Runs one command line to completion.
pub async fn run(cli: Cli) -> anyhow::Result<Outcome> {
    let env_config = std::env::var("RAMPART_CONFIG").ok();
    let config = Config::load(cli.config.as_deref(), env_config.as_deref())?;
    let json = cli.json;

    match cli.command {
        Command::Init => {
            let (services, init) = Services::init(config).await?;
            report_init(&init);
            services.store.close().await;
            return Ok(Outcome::Success);
        }
        Command::Serve { demo } => {
            let services = if Services::is_initialised(&config) {
                Services::open(config).await?
            } else {
                let (services, init) = Services::init(config).await?;
                report_init(&init);
                services
            };
            crate::serve::serve(services, demo).await?;
            return Ok(Outcome::Success);
        }
        Command::Replay {
            session,
            speed,
            idle_cap,
        } => {
            let services = Services::open(config).await?;
            let path = services
                .ops
                .session_recording(
                    &Caller::local(),
                    &session,
                    "session.replay",
                    &services.config.recording_dir(),
                )
                .await?;
            let speed = speed.clamp(0.25, 16.0);
            let idle = (idle_cap > 0.0).then_some(idle_cap);
            tokio::task::spawn_blocking(move || {
                let mut out = std::io::stdout().lock();
                crate::record::replay(
                    &path,
                    &mut out,
                    crate::record::ReplayOptions {
                        speed,
                        idle_cap: idle,
                    },
                )
            })
            .await??;
            return Ok(Outcome::Success);
        }
        _ => {}
    }

    let services = Services::open(config).await?;
    let mut stdout = std::io::stdout();
    let mut stderr = std::io::stderr();
    let mut io = Io {
        out: &mut stdout,
        err: &mut stderr,
        stdin: Stdin::Process,
    };
    let outcome = dispatch(&services, &Caller::local(), cli.command, json, &mut io).await;
    services.store.close().await;
    outcome
}

/// Where a verb's output goes and its input comes from: the terminal for
/// the local CLI, the SSH channel for `ssh bastion rampart ...`.
pub struct Io<'a> {
    pub out: &'a mut (dyn Write + Send),
    pub err: &'a mut (dyn Write + Send),
    /// `--password-stdin` and the other verbs that read lines (see
    /// [`super::wanted`]).
    pub stdin: Stdin,
}

/// Runs one verb as `caller`, writing to `io`.
pub async fn dispatch(
    services: &Services,
    caller: &Caller,
    command: Command,
    json: bool,
    io: &mut Io<'_>,
) -> anyhow::Result<Outcome> {
    let tz = &services.config.auth.time_zone.clone();
    let now = services.clock.now();
    let ops = &services.ops;
    let local = caller.via == Via::Cli;
    match command {
        Command::Init => bail!("the data dir is already initialised"),
        Command::Serve { .. } | Command::Replay { .. } => {
            bail!("this verb runs only in the local CLI on the bastion")
        }
        Command::Export {
            session,
            output: file,
            raw,
        } => {
            let path = ops
                .session_recording(
                    caller,
                    &session,
                    "session.export",
                    &services.config.recording_dir(),
                )
                .await?;
            let mut buf: Vec<u8> = Vec::new();
            if raw {
                crate::record::export(&path, &mut buf)?;
            } else {
                buf = std::fs::read(&path)
                    .with_context(|| format!("cannot read {}", path.display()))?;
            }
            match file {
                Some(f) if local => std::fs::write(&f, &buf)
                    .with_context(|| format!("cannot write {}", f.display()))?,
                Some(_) => bail!(
                    "-o writes a file on the bastion: only in the local CLI; over SSH the recording goes to standard output"
                ),
                None => io.out.write_all(&buf)?,
            }
        }
        Command::User(cmd) => match cmd {
            UserCmd::Add {
                name,
                role,
                email,
                password_stdin,
                key,
                key_file,
                group,
                expires,
            } => {
                let mut keys = key;
                for file in &key_file {
                    keys.push(
                        read_file(caller, file, "public key file")?
                            .trim()
                            .to_string(),
                    );
                }
                let password = if password_stdin {
                    Some(io.stdin.secret("password")?)
                } else {
                    None
                };
                let added = ops
                    .user_add(
                        caller,
                        UserSpec {
                            name,
                            role: Some(role.parse::<Role>()?),
                            email,
                            password,
                            keys,
                            groups: group,
                            expires_at: time_opt(expires.as_deref(), tz, "--expires")?,
                        },
                    )
                    .await?;
                if json {
                    output::show(io.out, &added.user, true)?;
                } else {
                    writeln!(
                        io.out,
                        "user {} added ({})",
                        added.user.name, added.user.role
                    )?;
                }
                if let Some(otp) = added.one_time_password {
                    writeln!(
                        io.err,
                        "one-time password for {}: {}  (shown once; to be changed at first login)",
                        added.user.name,
                        otp.expose()
                    )?;
                }
            }
            UserCmd::List => {
                output::list(io.out, &ops.user_list(caller).await?, USER_COLUMNS, json)?
            }
            UserCmd::Show { name } => {
                output::show(io.out, &ops.user_show(caller, &name).await?, json)?
            }
            UserCmd::Edit {
                name,
                role,
                email,
                expires,
                group,
            } => {
                let expires_at = match expires.as_deref() {
                    None => None,
                    Some("never") => Some(None),
                    Some(t) => Some(Some(
                        ops::parse_time(t, tz).map_err(|e| anyhow!("--expires: {e}"))?,
                    )),
                };
                let user = ops
                    .user_edit(
                        caller,
                        &name,
                        UserEdit {
                            role: role.as_deref().map(str::parse).transpose()?,
                            email: email.map(|e| if e.is_empty() { None } else { Some(e) }),
                            expires_at,
                            groups: (!group.is_empty())
                                .then(|| super::edit::replace_list(Vec::new(), group)),
                        },
                    )
                    .await?;
                writeln!(io.out, "user {} updated", user.name)?;
            }
            UserCmd::Disable { name } => {
                ops.user_set_active(caller, &name, false).await?;
                writeln!(io.out, "user {name} disabled")?;
            }
            UserCmd::Enable { name } => {
                ops.user_set_active(caller, &name, true).await?;
                writeln!(io.out, "user {name} enabled")?;
            }
            UserCmd::Remove { name } => {
                ops.user_remove(caller, &name).await?;
                writeln!(io.out, "user {name} removed")?;
            }
            UserCmd::Passwd {
                name,
                password_stdin,
            } => {
                let password = if password_stdin {
                    Some(io.stdin.secret("password")?)
                } else {
                    None
                };
                match ops.user_passwd(caller, &name, password).await? {
                    Some(otp) => writeln!(
                        io.err,
                        "one-time password for {name}: {}  (shown once; to be changed at next login)",
                        otp.expose()
                    )?,
                    None => writeln!(io.out, "password of {name} changed")?,
                }
            }
            UserCmd::Unlock { name } => {
                ops.user_unlock(caller, &name).await?;
                writeln!(io.out, "user {name} unlocked")?;
            }
            UserCmd::MfaReset { name } => {
                ops.user_mfa_reset(caller, &name).await?;
                writeln!(
                    io.out,
                    "MFA of {name} reset: they enrol again at the next login"
                )?;
            }
            UserCmd::Key(KeyCmd::Add {
                name,
                key,
                key_file,
            }) => {
                let line = match (key, key_file) {
                    (Some(line), _) => line,
                    (None, Some(file)) => read_file(caller, &file, "public key file")?
                        .trim()
                        .to_string(),
                    (None, None) => bail!("give --key LINE or --key-file FILE"),
                };
                let key = ops.user_key_add(caller, &name, &line).await?;
                writeln!(io.out, "key {} added to {name}", key.fingerprint)?;
            }
            UserCmd::Key(KeyCmd::Remove { name, fingerprint }) => {
                ops.user_key_remove(caller, &name, &fingerprint).await?;
                writeln!(io.out, "key {fingerprint} removed from {name}")?;
            }
        },
        Command::Group(cmd) => match cmd {
            GroupCmd::Add { name } => {
                ops.group_add(caller, &name).await?;
                writeln!(io.out, "group {name} added")?;
            }
            GroupCmd::Remove { name } => {
                ops.group_remove(caller, &name).await?;
                writeln!(io.out, "group {name} removed")?;
            }
            GroupCmd::List => {
                output::list(io.out, &ops.group_list(caller).await?, GROUP_COLUMNS, json)?
            }
            GroupCmd::Members(MembersCmd::Add { group, users }) => {
                let g = ops.group_members(caller, &group, &users, true).await?;
                writeln!(io.out, "group {group}: {}", g.members.join(", "))?;
            }
            GroupCmd::Members(MembersCmd::Remove { group, users }) => {
                let g = ops.group_members(caller, &group, &users, false).await?;
                writeln!(io.out, "group {group}: {}", g.members.join(", "))?;
            }
        },
        Command::Node(cmd) => match cmd {
            NodeCmd::Add { path } => {
                let node = ops.node_add(caller, &path).await?;
                writeln!(io.out, "node {} added", node.path)?;
            }
            NodeCmd::Remove { path } => {
                ops.node_remove(caller, &path).await?;
                writeln!(io.out, "node {path} removed")?;
            }
            NodeCmd::Move { from, to } => {
                let moved = ops.node_move(caller, &from, &to).await?;
                write!(io.out, "node {} moved to {}", moved.from, moved.node.path)?;
                if moved.descendants > 0 {
                    write!(io.out, " with {} node(s) below it", moved.descendants)?;
                }
                if !moved.created.is_empty() {
                    write!(io.out, "; created {}", moved.created.join(", "))?;
                }
                writeln!(io.out)?;
            }
            NodeCmd::List => {
                output::list(io.out, &ops.node_list(caller).await?, NODE_COLUMNS, json)?
            }
        },
        Command::Asset(cmd) => match cmd {
            AssetCmd::Add {
                name,
                address,
                protocols,
                nodes,
                platform,
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
                active,
                inactive,
                comment,
            } => {
                let unchanged = new_name.is_none()
                    && address.is_none()
                    && protocols.is_empty()
                    && nodes.is_empty()
                    && platform.is_none()
                    && !active
                    && !inactive
                    && comment.is_none();
                if unchanged {
                    bail!(
                        "nothing to change for asset {name}: give --name, --address, --protocol, --node, --platform, --active, --inactive or --comment"
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
        },
        Command::Account(cmd) => match cmd {
            AccountCmd::Add {
                asset,
                username,
                password_stdin,
                key_file,
                privileged,
            } => {
                let secret = match (password_stdin, key_file) {
                    (true, _) => AccountSecret::Password(io.stdin.secret("password")?),
                    (false, Some(file)) => AccountSecret::PrivateKey(Secret::new(read_file(
                        caller,
                        &file,
                        "private key file",
                    )?)),
                    (false, None) => AccountSecret::None,
                };
                let account = ops
                    .account_add(caller, &asset, &username, secret, privileged)
                    .await?;
                writeln!(
                    io.out,
                    "account {}@{} added (secret: {})",
                    account.username,
                    account.asset,
                    account.secret_kind.as_str()
                )?;
            }
            AccountCmd::Edit {
                asset,
                username,
                password_stdin,
                key_file,
                no_secret,
                privileged,
                unprivileged,
            } => {
                let privileged = match (privileged, unprivileged) {
                    (true, _) => Some(true),
                    (false, true) => Some(false),
                    (false, false) => None,
                };
                if !password_stdin && key_file.is_none() && !no_secret && privileged.is_none() {
                    bail!(
                        "nothing to change for account {username}@{asset}: give --password-stdin, --key-file FILE, --no-secret, --privileged or --unprivileged"
                    );
                }
                let secret = match (password_stdin, key_file, no_secret) {
                    (true, _, _) => Some(AccountSecret::Password(io.stdin.secret("password")?)),
                    (false, Some(file), _) => Some(AccountSecret::PrivateKey(Secret::new(
                        read_file(caller, &file, "private key file")?,
                    ))),
                    (false, None, true) => Some(AccountSecret::None),
                    (false, None, false) => None,
                };
                let account = ops
                    .account_edit(
                        caller,
                        &asset,
                        &username,
                        AccountEdit { secret, privileged },
                    )
                    .await?;
                writeln!(
                    io.out,
                    "account {}@{} updated (secret: {}, privileged: {})",
                    account.username,
                    account.asset,
                    account.secret_kind.as_str(),
                    if account.privileged { "yes" } else { "no" }
                )?;
            }
            AccountCmd::List { asset } => output::list(
                io.out,
                &ops.account_list(caller, asset.as_deref()).await?,
                ACCOUNT_COLUMNS,
                json,
            )?,
            AccountCmd::Remove { asset, username } => {
                ops.account_remove(caller, &asset, &username).await?;
                writeln!(io.out, "account {username}@{asset} removed")?;
            }
            AccountCmd::Disable { asset, username } => {
                ops.account_set_active(caller, &asset, &username, false)
                    .await?;
                writeln!(io.out, "account {username}@{asset} disabled")?;
            }
            AccountCmd::Enable { asset, username } => {
                ops.account_set_active(caller, &asset, &username, true)
                    .await?;
                writeln!(io.out, "account {username}@{asset} enabled")?;
            }
        },
        Command::Perm(cmd) => match cmd {
            PermCmd::Add {
                name,
                bindings,
                accounts,
                protocols,
                actions,
                from,
                until,
                comment,
                require_approval,
            } => {
                let perm = ops
                    .perm_add(
                        caller,
                        PermSpec {
                            name,
                            users: bindings.users.clone(),
                            groups: bindings.groups.clone(),
                            assets: bindings.assets.clone(),
                            nodes: bindings.nodes.clone(),
                            accounts: accounts.parse::<AccountSpec>()?,
                            protocols: protocols.parse::<ProtocolSpec>()?,
                            actions: actions.parse::<Actions>()?,
                            valid_from: time_opt(from.as_deref(), tz, "--from")?,
                            valid_until: time_opt(until.as_deref(), tz, "--until")?,
                            comment,
                            require_approval,
                        },
                    )
                    .await?;
                writeln!(io.out, "permission {} added", perm.name)?;
            }
            PermCmd::List => {
                output::list(io.out, &ops.perm_list(caller).await?, PERM_COLUMNS, json)?
            }
            PermCmd::Show { name } => {
                output::show(io.out, &ops.perm_show(caller, &name).await?, json)?
            }
            PermCmd::Edit(edit) => {
                let line = super::edit::perm(ops, caller, *edit, tz).await?;
                writeln!(io.out, "{line}")?;
            }
            PermCmd::Remove { name } => {
                ops.perm_remove(caller, &name).await?;
                writeln!(io.out, "permission {name} removed")?;
            }
            PermCmd::Disable { name } => {
                ops.perm_set_active(caller, &name, false).await?;
                writeln!(io.out, "permission {name} disabled")?;
            }
            PermCmd::Enable { name } => {
                ops.perm_set_active(caller, &name, true).await?;
                writeln!(io.out, "permission {name} enabled")?;
            }
            PermCmd::Who { asset } => output::list(
                io.out,
                &ops.perm_who(caller, &asset).await?,
                REACH_COLUMNS,
                json,
            )?,
            PermCmd::What { user } => output::list(
                io.out,
                &ops.perm_what(caller, &user).await?,
                REACH_COLUMNS,
                json,
            )?,
        },
        Command::Filter(cmd) => match cmd {
            FilterCmd::Add {
                name,
                pattern,
                action,
                priority,
                bindings,
                accounts,
            } => {
                let filter = ops
                    .filter_add(
                        caller,
                        FilterSpec {
                            name,
                            pattern,
                            action: action.parse::<FilterAction>()?,
                            priority,
                            users: bindings.users,
                            groups: bindings.groups,
                            assets: bindings.assets,
                            nodes: bindings.nodes,
                            accounts: accounts.parse::<AccountSpec>()?,
                        },
                    )
                    .await?;
                writeln!(io.out, "filter {} added", filter.name)?;
            }
            FilterCmd::List => output::list(
                io.out,
                &ops.filter_list(caller).await?,
                FILTER_COLUMNS,
                json,
            )?,
            FilterCmd::Show { name } => {
                output::show(io.out, &ops.filter_show(caller, &name).await?, json)?
            }
            FilterCmd::Edit(edit) => {
                let line = super::edit::filter(ops, caller, *edit).await?;
                writeln!(io.out, "{line}")?;
            }
            FilterCmd::Remove { name } => {
                ops.filter_remove(caller, &name).await?;
                writeln!(io.out, "filter {name} removed")?;
            }
        },
        Command::Acl(cmd) => match cmd {
            AclCmd::Add {
                name,
                action,
                priority,
                users,
                groups,
                sources,
                windows,
            } => {
                let acl = ops
                    .acl_add(
                        caller,
                        AclSpec {
                            name,
                            action: action.parse::<AclAction>()?,
                            priority,
                            users,
                            groups,
                            sources,
                            windows,
                        },
                    )
                    .await?;
                writeln!(io.out, "login acl {} added", acl.name)?;
            }
            AclCmd::List => output::list(io.out, &ops.acl_list(caller).await?, ACL_COLUMNS, json)?,
            AclCmd::Edit(edit) => {
                let line = super::edit::acl(ops, caller, *edit).await?;
                writeln!(io.out, "{line}")?;
            }
            AclCmd::Remove { name } => {
                ops.acl_remove(caller, &name).await?;
                writeln!(io.out, "login acl {name} removed")?;
            }
        },
        Command::Session(SessionCmd::List { live: true, .. }) => {
            let sessions = ops
                .live_sessions(caller, &services.config.control_socket_path())
                .await?;
            output::list(io.out, &sessions, LIVE_COLUMNS, json)?
        }
        Command::Session(SessionCmd::List {
            live: false,
            filter,
        }) => output::list(
            io.out,
            &ops.session_list(caller, &query(&filter, tz, now)?, false)
                .await?,
            SESSION_COLUMNS,
            json,
        )?,
        Command::Session(SessionCmd::Kill { id, reason }) => {
            ops.session_kill(caller, &services.config.control_socket_path(), &id, &reason)
                .await?;
            writeln!(io.out, "session {id} ended: {reason}")?;
        }
        Command::Session(SessionCmd::Approvals) => output::list(
            io.out,
            &ops.approvals_waiting(caller, &services.config.control_socket_path())
                .await?,
            APPROVAL_COLUMNS,
            json,
        )?,
        Command::Session(SessionCmd::Approve { id }) => {
            let r = ops
                .session_decide(caller, &services.config.control_socket_path(), id, true, "")
                .await?;
            writeln!(
                io.out,
                "request {id} approved: {} on {} as {}: {}",
                r.user, r.asset, r.account, r.command
            )?;
        }
        Command::Session(SessionCmd::Deny { id, reason }) => {
            let r = ops
                .session_decide(
                    caller,
                    &services.config.control_socket_path(),
                    id,
                    false,
                    reason.as_deref().unwrap_or_default(),
                )
                .await?;
            writeln!(
                io.out,
                "request {id} denied: {} on {} as {}: {}",
                r.user, r.asset, r.account, r.command
            )?;
        }
        Command::Import(cmd) => {
            let (args, what) = match &cmd {
                ImportCmd::Assets(args) => (args, "importing assets"),
                ImportCmd::Users(args) => (args, "importing users"),
            };
            let source = if args.is_stdin() {
                // The role first: over SSH only an admin's input is read
                // (see `ssh::admin`), so anyone else is refused here rather
                // than told their input is missing.
                ops::require_admin(caller, what)?;
                let bytes = io.stdin.all("import file")?;
                import::Source::from_bytes("stdin", bytes, args.format)
            } else {
                if !local {
                    bail!(
                        "import reads {} on the bastion: only in the local CLI; over SSH pipe the file in with `rampart import {} - < FILE`",
                        args.file.display(),
                        cmd.kind()
                    );
                }
                import::Source::from_path(&args.file, args.format).map_err(ops::OpsError::from)?
            };
            let summary = match cmd {
                ImportCmd::Assets(_) => ops.import_assets(caller, &source).await?,
                ImportCmd::Users(_) => ops.import_users(caller, &source).await?,
            };
            if json {
                output::show(io.out, &summary, true)?;
            } else {
                writeln!(io.out, "{summary}")?;
            }
        }
        Command::Me(me) => return super::me::run(services, caller, me, json, io).await,
        Command::Audit(cmd) => match cmd {
            AuditCmd::Logins(f) => output::list(
                io.out,
                &ops.audit_logins(caller, &query(&f, tz, now)?).await?,
                LOGIN_COLUMNS,
                json,
            )?,
            AuditCmd::Sessions(f) => output::list(
                io.out,
                &ops.session_list(caller, &query(&f, tz, now)?, false)
                    .await?,
                SESSION_COLUMNS,
                json,
            )?,
            AuditCmd::Commands(f) => output::list(
                io.out,
                &ops.audit_commands(caller, &query(&f, tz, now)?).await?,
                COMMAND_COLUMNS,
                json,
            )?,
            AuditCmd::Screen { text, limit } => {
                let found = ops
                    .audit_screen(caller, &services.config.recording_dir(), &text, limit)
                    .await?;
                output::list(io.out, &found.hits, SCREEN_COLUMNS, json)?;
                for note in found.notes(tz) {
                    writeln!(io.err, "{note}")?;
                }
            }
            AuditCmd::Dashboard => output::show(io.out, &ops.audit_dashboard(caller).await?, json)?,
            AuditCmd::Transfers(f) => output::list(
                io.out,
                &ops.audit_transfers(caller, &query(&f, tz, now)?).await?,
                TRANSFER_COLUMNS,
                json,
            )?,
            AuditCmd::Operations(f) => output::list(
                io.out,
                &ops.audit_operations(caller, &query(&f, tz, now)?).await?,
                OPERATION_COLUMNS,
                json,
            )?,
            AuditCmd::Refusals(f) => output::list(
                io.out,
                &ops.audit_refusals(caller, &query(&f, tz, now)?).await?,
                REFUSAL_COLUMNS,
                json,
            )?,
            AuditCmd::Verify => {
                let report = ops
                    .audit_verify(caller, &services.config.recording_dir())
                    .await?;
                match report.broken {
                    None => {
                        writeln!(
                            io.out,
                            "audit chain intact: {} rows, {} recordings verified",
                            report.rows, report.recordings
                        )?;
                    }
                    Some(problem) => {
                        writeln!(io.err, "rampart: audit chain broken: {problem}")?;
                        return Ok(Outcome::Failure);
                    }
                }
            }
        },
    }
    Ok(Outcome::Success)
}
