//! The bundle every task is handed: configuration, store, vault, clock and
//! the ops verbs over them; and the two ways to get one, initialising an
//! empty data dir ([`Services::init`]) or opening an existing one
//! ([`Services::open`]).
//!
//! Opening enforces the vault's one hard rule: a missing or different master
//! key while sealed secrets are stored is a refusal to start, never a new key.
//! An initialised data dir is never opened without its master key at all:
//! the audit chain is sealed with a key derived from it
//! ([`crate::audit::chain`]), and no audit row could be written without it.
//!
//! Files: the process runs with umask 077 ([`private_umask`], set by the
//! binary before anything else), so that what SQLite creates beside the
//! database (`-wal`, `-shm`) is the owner's alone like everything else; and a
//! data dir that group or others may enter is refused at start, with the
//! `chmod` that fixes it.

use std::fs;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::clock::{Clock, SystemClock};
use crate::config::Config;
use crate::model::Role;
use crate::ops::{Caller, Ops, OpsSettings, UserSpec};
use crate::store::{self, Location, Store};
use crate::vault::{self, MasterKey, Secret, Vault};

/// Why the data dir could not be opened or initialised; one line each.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("{0}")]
    Refused(String),
    #[error(transparent)]
    Store(#[from] store::StoreError),
    #[error(transparent)]
    Vault(#[from] vault::VaultError),
    #[error(transparent)]
    Ops(#[from] crate::ops::OpsError),
    #[error("{path}: {error}")]
    Io { path: String, error: std::io::Error },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> StartError + '_ {
    move |error| StartError::Io {
        path: path.display().to_string(),
        error,
    }
}

/// What `init` created, for the caller to report once.
#[derive(Debug)]
pub struct Initialised {
    pub data_dir: PathBuf,
    pub admin: String,
    pub admin_password: Secret<String>,
    pub host_keys: Vec<PathBuf>,
}

#[derive(Clone)]
pub struct Services {
    pub config: Arc<Config>,
    pub store: Store,
    pub vault: Option<Vault>,
    pub clock: Arc<dyn Clock>,
    pub ops: Ops,
    /// Batched writes of the rows that come at typing rate (commands).
    pub audit: crate::audit::AuditWriter,
    /// The screen-text indexer (run by the server): woken when a session
    /// ends.
    pub index: crate::search::IndexHandle,
    /// The recording dir, and the object store behind it when configured.
    pub recordings: crate::record::objects::Recordings,
    /// The uploads of finished recordings (run by the server): woken when
    /// a session ends.
    pub spool: crate::spool::SpoolHandle,
    /// What ops scrape (`http.metrics_listen`).
    pub metrics: Arc<crate::metrics::Metrics>,
    /// The logins in progress, which streaming sessions give way to.
    pub arrivals: Arc<crate::live::arrivals::Arrivals>,
}

impl Services {
    /// Whether the data dir already holds a rampart database.
    /// For SQLite, whether the file exists; for PostgreSQL, whether the
    /// database holds an initialised rampart (asked of the server).
    pub async fn is_initialised(config: &Config) -> Result<bool, StartError> {
        match location(config)? {
            Location::Sqlite(path) => Ok(path.exists()),
            postgres => {
                let store = Store::open(&postgres, true, config.database.busy_timeout, 1).await?;
                let initialised = store.is_initialised().await?;
                store.close().await;
                Ok(initialised)
            }
        }
    }

    /// Opens an initialised data dir.
    pub async fn open(config: Config) -> Result<Services, StartError> {
        refuse_open_dir(config.data_dir())?;
        let location = location(&config)?;
        if let Location::Sqlite(db_path) = &location
            && !db_path.exists()
        {
            return Err(StartError::Refused(format!(
                "no rampart database at {}: run `rampart init` first (or check data_dir in your config)",
                db_path.display()
            )));
        }
        let store = Store::open(
            &location,
            false,
            config.database.busy_timeout,
            config.database.max_connections,
        )
        .await?;
        let env = std::env::var("RAMPART_MASTER_KEY").ok();
        let key = vault::resolve_master_key(config.data_dir(), env.as_deref())?;
        let vault = check_key(&store, key, &config.master_key_path()).await?;
        crate::audit::key_chain(&store, vault.chain_key(), SystemClock.now()).await?;
        let recordings = recordings(&config)?;
        Ok(Services::assemble(
            config,
            recordings,
            store,
            Some(vault),
            Arc::new(SystemClock),
        ))
    }

    fn assemble(
        config: Config,
        recordings: crate::record::objects::Recordings,
        store: Store,
        vault: Option<Vault>,
        clock: Arc<dyn Clock>,
    ) -> Services {
        let auth = &config.auth;
        let settings = OpsSettings {
            password_min_length: auth.password_min_length as usize,
            time_zone: auth.time_zone.clone(),
            lockout: crate::auth::LockoutPolicy {
                max_failures_per_user: auth.max_failures,
                max_failures_per_address: auth.max_failures_per_address,
                window: jiff::SignedDuration::try_from(auth.failure_window)
                    .unwrap_or(jiff::SignedDuration::from_mins(15)),
                lockout: jiff::SignedDuration::try_from(auth.lockout)
                    .unwrap_or(jiff::SignedDuration::from_mins(15)),
            },
            mfa: match auth.mfa {
                crate::config::Mfa::Optional => crate::auth::login::MfaPolicy::Optional,
                crate::config::Mfa::Required => crate::auth::login::MfaPolicy::Required,
            },
            password_login: auth.methods.iter().any(|m| {
                matches!(
                    m,
                    crate::config::AuthMethod::Password
                        | crate::config::AuthMethod::KeyboardInteractive
                )
            }),
            node: config.cluster.node.clone(),
            rdp_password_lifetime: config.rdp.password_lifetime,
            web: web_base(&config.http),
        };
        let ops = Ops::new(store.clone(), vault.clone(), clock.clone(), settings);
        let audit = crate::audit::AuditWriter::start(store.clone());
        Services {
            config: Arc::new(config),
            store,
            vault,
            clock,
            ops,
            audit,
            index: crate::search::IndexHandle::new(),
            recordings,
            spool: crate::spool::SpoolHandle::default(),
            metrics: Arc::new(crate::metrics::Metrics::new()),
            arrivals: Arc::default(),
        }
    }

    /// What the recordings' uploader works with, for the server to run it
    /// ([`crate::spool::run`]).
    pub fn spooler(&self) -> crate::spool::Spool {
        crate::spool::Spool {
            store: self.store.clone(),
            recordings: self.recordings.clone(),
            clock: self.clock.clone(),
            node: self.config.cluster.node.clone(),
            handle: self.spool.clone(),
        }
    }

    /// What the screen-text indexer works with, for the server to run it
    /// ([`crate::search::indexer::run`]).
    pub fn indexer(&self) -> crate::search::indexer::Indexer {
        crate::search::indexer::Indexer {
            store: self.store.clone(),
            clock: self.clock.clone(),
            recording_dir: self.config.recording_dir(),
            handle: self.index.clone(),
        }
    }

    /// Initialises an empty data dir: directory (0700), master key (0600,
    /// unless `RAMPART_MASTER_KEY` provides it), database, ed25519 host key,
    /// and an `admin` user with a one-time password to change at first login.
    pub async fn init(config: Config) -> Result<(Services, Initialised), StartError> {
        let data_dir = config.data_dir().to_path_buf();
        let location = location(&config)?;
        if let Location::Sqlite(db_path) = &location
            && db_path.exists()
        {
            return Err(StartError::Refused(format!(
                "{} is already initialised (database {} exists)",
                data_dir.display(),
                db_path.display()
            )));
        }
        refuse_open_dir(&data_dir)?;
        create_private_dir(&data_dir)?;
        if let Location::Sqlite(db_path) = &location
            && let Some(parent) = db_path.parent()
        {
            create_private_dir(parent)?;
        }
        create_private_dir(&config.recording_dir())?;

        let env = std::env::var("RAMPART_MASTER_KEY").ok();
        let key = match vault::resolve_master_key(&data_dir, env.as_deref())? {
            Some(key) => key,
            None => {
                let key = MasterKey::generate();
                key.write_new_file(&config.master_key_path())?;
                key
            }
        };
        let host_keys = config.host_key_paths();
        for path in &host_keys {
            if !path.exists() {
                write_host_key(path)?;
            }
        }
        let store = Store::open(
            &location,
            true,
            config.database.busy_timeout,
            config.database.max_connections,
        )
        .await?;
        match &location {
            Location::Sqlite(db_path) => restrict_file(db_path)?,
            Location::Postgres(_) => {
                if store.is_initialised().await? {
                    return Err(StartError::Refused(format!(
                        "the database {} is already initialised (it has users); \
                         point database.url at an empty database",
                        location.describe()
                    )));
                }
            }
        }
        let vault = Vault::new(key);
        crate::audit::key_chain(&store, vault.chain_key(), SystemClock.now()).await?;
        let recordings = recordings(&config)?;
        let services = Services::assemble(
            config,
            recordings,
            store,
            Some(vault),
            Arc::new(SystemClock),
        );
        let added = services
            .ops
            .user_add(
                &Caller::local(),
                UserSpec {
                    name: "admin".into(),
                    role: Some(Role::Admin),
                    ..Default::default()
                },
            )
            .await?;
        let admin_password = added.one_time_password.ok_or_else(|| {
            StartError::Refused("the admin user was created without a password".into())
        })?;
        Ok((
            services,
            Initialised {
                data_dir,
                admin: added.user.name,
                admin_password,
                host_keys,
            },
        ))
    }
}

/// What `rampart migrate` did: the rows copied and the chain checked on the
/// copy.
pub struct Migrated {
    pub from: String,
    pub to: String,
    pub copied: store::copy::Copied,
    pub verified: crate::audit::VerifyReport,
}

/// `rampart migrate`: copies the database at `from` into the empty one at
/// `to` (urls, SQLite paths relative to the working directory), then checks
/// the audit chain and the recordings' digests on the copy with this data
/// dir's master key. The source is left as it was, apart from pending
/// schema migrations.
pub async fn migrate(config: &Config, from: &str, to: &str) -> Result<Migrated, StartError> {
    let here = std::env::current_dir().map_err(io(Path::new(".")))?;
    let from = Location::parse(from, &here).map_err(StartError::Refused)?;
    let to = Location::parse(to, &here).map_err(StartError::Refused)?;
    if from == to {
        return Err(StartError::Refused(
            "--from and --to are the same database".into(),
        ));
    }
    if let Location::Sqlite(path) = &from
        && !path.exists()
    {
        return Err(StartError::Refused(format!(
            "no database at {}",
            path.display()
        )));
    }
    let env = std::env::var("RAMPART_MASTER_KEY").ok();
    let key = vault::resolve_master_key(config.data_dir(), env.as_deref())?.ok_or_else(|| {
        StartError::Refused(format!(
            "the master key is needed to check the copy's audit chain, and {} does not exist \
             (nor RAMPART_MASTER_KEY): run migrate with the data dir's config",
            config.master_key_path().display()
        ))
    })?;
    let busy = config.database.busy_timeout;
    let source = Store::open(&from, false, busy, 2).await?;
    if let Location::Sqlite(path) = &to
        && path.exists()
    {
        return Err(StartError::Refused(format!(
            "{} exists: copy into a new file",
            path.display()
        )));
    }
    let target = Store::open(&to, true, busy, 2).await?;
    if let Location::Sqlite(path) = &to {
        restrict_file(path)?;
    }
    let copied = store::copy::copy(&source, &target).await?;
    let vault = Vault::new(key);
    crate::audit::key_chain(&target, vault.chain_key(), SystemClock.now()).await?;
    let verified = crate::audit::verify(&target, &recordings(config)?).await?;
    source.close().await;
    target.close().await;
    Ok(Migrated {
        from: from.describe(),
        to: to.describe(),
        copied,
        verified,
    })
}

/// The recording dir, with the object store of `recording.store` behind it.
pub fn recordings(config: &Config) -> Result<crate::record::objects::Recordings, StartError> {
    use crate::record::objects::Recordings;
    match &config.recording.store {
        None => Ok(Recordings::local(config.recording_dir())),
        Some(objects) => Recordings::with_objects(config.recording_dir(), objects)
            .map_err(|e| StartError::Refused(format!("recording.store: {e}"))),
    }
}

/// Where `[database] url` points.
pub fn location(config: &Config) -> Result<Location, StartError> {
    let url = &config.database.url;
    if let Some(path) = config.database_path() {
        Ok(Location::Sqlite(path))
    } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        Ok(Location::Postgres(url.clone()))
    } else {
        Err(StartError::Refused(format!(
            "database.url {} is not a database rampart can keep its state in: \
             use sqlite://FILE or postgres://USER@HOST/DB",
            store::redact_url(url)
        )))
    }
}

/// Checks the master key against the key ids recorded beside the sealed
/// secrets and the audit chain, refusing to start rather than running with
/// the wrong key or none.
async fn check_key(
    store: &Store,
    key: Option<MasterKey>,
    key_path: &Path,
) -> Result<Vault, StartError> {
    let mut conn = store.conn().await?;
    let known = store::vault_key_ids(&mut conn).await?;
    let sealed = store::has_sealed_rows(&mut conn).await?;
    match key {
        None if sealed || !known.is_empty() => Err(StartError::Refused(format!(
            "the master key is missing ({} does not exist and RAMPART_MASTER_KEY is not set) \
             but the database holds secrets or an audit chain sealed with it: restore the key; \
             rampart will not create a new one over them",
            key_path.display()
        ))),
        None => Err(StartError::Refused(format!(
            "the master key is missing ({} does not exist and RAMPART_MASTER_KEY is not set): \
             restore it; rampart needs it to seal the audit chain and will not create a new one \
             for an existing database",
            key_path.display()
        ))),
        Some(key) => {
            let id = key.key_id();
            if !known.is_empty() && !known.contains(&id) {
                return Err(StartError::Refused(format!(
                    "the master key (id {id}) is not the key that sealed the stored secrets \
                     (id {}): restore the right key file or RAMPART_MASTER_KEY",
                    known.join(", ")
                )));
            }
            Ok(Vault::new(key))
        }
    }
}

/// Sets the process umask to 077, so that every file created from now on
/// (SQLite's `-wal` and `-shm` beside the database, logs, anything a
/// dependency writes) is readable by its owner only; files that must be
/// private already set 0600 themselves. Called by the binary first thing.
pub fn private_umask() {
    use rustix::fs::Mode;
    rustix::process::umask(Mode::RWXG | Mode::RWXO);
}

/// Refuses a data dir that group or others may read, write or enter: it
/// holds the database, the master key and the recordings.
fn refuse_open_dir(path: &Path) -> Result<(), StartError> {
    use std::os::unix::fs::MetadataExt;
    let Ok(meta) = fs::metadata(path) else {
        return Ok(()); // not there yet: `init` creates it 0700
    };
    let mode = meta.mode() & 0o777;
    if meta.is_dir() && mode & 0o077 != 0 {
        let shown = fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
        return Err(StartError::Refused(format!(
            "data directory {} is accessible by group or others (mode {mode:04o}): \
             run `chmod 700 {}`",
            shown.display(),
            shown.display()
        )));
    }
    Ok(())
}

/// Creates a directory readable only by its owner (0700); an existing one is
/// checked for being writable, with a clear message if not.
fn create_private_dir(path: &Path) -> Result<(), StartError> {
    if path.is_dir() {
        let probe = path.join(".rampart-write-test");
        fs::File::create(&probe).map_err(|e| {
            StartError::Refused(format!(
                "data directory {} is not writable: {e}",
                path.display()
            ))
        })?;
        let _ = fs::remove_file(&probe);
        return Ok(());
    }
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(path)
        .map_err(|e| {
            StartError::Refused(format!("cannot create directory {}: {e}", path.display()))
        })
}

fn restrict_file(path: &Path) -> Result<(), StartError> {
    fs::set_permissions(path, fs::Permissions::from_mode(0o600)).map_err(io(path))
}

/// Writes a new ed25519 host key in OpenSSH format, mode 0600.
pub fn write_host_key(path: &Path) -> Result<(), StartError> {
    use russh::keys::ssh_key::private::Ed25519Keypair;
    use russh::keys::ssh_key::{LineEnding, PrivateKey};
    let mut seed = zeroize::Zeroizing::new([0u8; 32]);
    rand::fill(&mut seed[..]);
    let key = PrivateKey::from(Ed25519Keypair::from_seed(&seed));
    let text = key
        .to_openssh(LineEnding::LF)
        .map_err(|e| StartError::Refused(format!("cannot encode the host key: {e}")))?;
    if let Some(parent) = path.parent() {
        create_private_dir(parent)?;
    }
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(io(path))?;
    file.write_all(text.as_bytes()).map_err(io(path))?;
    Ok(())
}

/// Where web assets are served, when the web side is on.
pub fn web_base(http: &crate::config::HttpConfig) -> Option<crate::model::WebBase> {
    let (listen, domain) = (http.listen?, http.domain.clone()?);
    Some(crate::model::WebBase {
        domain,
        port: http.public_port.unwrap_or(listen.port()),
    })
}
