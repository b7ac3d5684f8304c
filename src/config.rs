//! The configuration file: where it is looked up, its TOML schema, defaults
//! and validation. This module owns every key name (see [`KEYS`] and
//! `man/rampart.toml.5`) and turns a file into a [`Config`] whose values are
//! already checked, so the rest of the program never re-validates them.
//!
//! It never creates, opens or writes anything in the data directory: it only
//! says where things live (`data_dir()`, `database_path()`...). The one file
//! system check it makes is that a theme given as a path exists, so a typo is
//! caught at start-up rather than when the first person opens the menu.
//!
//! Parsing happens in two steps: the text becomes a `toml::Table` (syntax
//! errors carry a line and column), then each known key is taken out by hand.
//! That second step, rather than `#[derive(Deserialize)]`, is what lets every
//! error name the dotted key (`auth.lockout`) and what was wrong with it;
//! toml's own serde errors do not expose the key path.

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use jiff::tz::TimeZone;
use toml::Table;

#[path = "config/parse.rs"]
mod parse;

pub use parse::{parse_duration, parse_size};

/// Every key a config file may contain, dotted, in the order the man page
/// documents them. The parser derives the accepted keys of each table from
/// this list, so it cannot drift from what is actually read.
pub const KEYS: &[&str] = &[
    "data_dir",
    "ssh.listen",
    "ssh.host_keys",
    "ssh.max_connections",
    "ssh.banner",
    "ssh.login_timeout",
    "ssh.max_auth_attempts",
    "ssh.max_sessions_per_user",
    "ssh.idle_timeout",
    "ssh.keepalive_interval",
    "ssh.shutdown_grace",
    "ssh.proxy_protocol_from",
    "http.listen",
    "http.domain",
    "http.public_port",
    "http.certificate",
    "http.key",
    "http.idle_timeout",
    "http.metrics_listen",
    "rdp.listen",
    "rdp.certificate",
    "rdp.key",
    "rdp.password_lifetime",
    "database.url",
    "database.busy_timeout",
    "database.max_connections",
    "cluster.node",
    "recording.dir",
    "recording.input",
    "recording.on_failure",
    "recording.flush_interval",
    "recording.keep_files",
    "recording.keep_files_max_size",
    "recording.store",
    "recording.s3_endpoint",
    "recording.s3_region",
    "recording.s3_access_key_id",
    "recording.s3_secret_access_key",
    "auth.methods",
    "auth.mfa",
    "auth.max_failures",
    "auth.max_failures_per_address",
    "auth.failure_window",
    "auth.lockout",
    "auth.time_zone",
    "auth.password_min_length",
    "auth.approval_timeout",
    "clients.psql",
    "clients.mysql",
    "clients.redis_cli",
    "tui.theme",
    "log.level",
    "log.file",
];

/// Themes compiled into the binary (`themes/*.toml`).
pub const BUILTIN_THEMES: &[&str] = &["default", "light", "mono"];

/// The file looked for in the working directory when neither `--config` nor
/// `$RAMPART_CONFIG` names one.
pub const DEFAULT_FILE: &str = "rampart.toml";

/// The data directory used when no config file sets one.
pub const DEFAULT_DATA_DIR: &str = "rampart-data";

/// The validated configuration. Fields are public so that tests can adjust a
/// [`Config::default()`]; code that builds one from text goes through
/// [`Config::from_toml_str`] or [`Config::load`], which validate.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    source: Option<PathBuf>,
    /// Already resolved against the config file's directory.
    pub data_dir: PathBuf,
    pub ssh: SshConfig,
    pub http: HttpConfig,
    pub rdp: RdpConfig,
    pub database: DatabaseConfig,
    pub cluster: ClusterConfig,
    pub recording: RecordingConfig,
    pub auth: AuthConfig,
    pub clients: ClientsConfig,
    pub tui: TuiConfig,
    pub log: LogConfig,
}

/// The native clients the bastion runs for database assets.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ClientsConfig {
    /// The `psql` executable; `None`: found on PATH (a wrapper script, as
    /// Debian's `/usr/bin/psql` is, resolved to the newest real binary
    /// under `/usr/lib/postgresql`).
    pub psql: Option<PathBuf>,
    /// The `mariadb` (or `mysql`) client; `None`: found on PATH.
    pub mysql: Option<PathBuf>,
    /// The `redis-cli` executable; `None`: found on PATH.
    pub redis_cli: Option<PathBuf>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SshConfig {
    pub listen: Vec<SocketAddr>,
    /// As written: relative paths are relative to `data_dir`
    /// (see [`Config::host_key_paths`]).
    pub host_keys: Vec<PathBuf>,
    /// Connections beyond this wait for a free slot (accept back-pressure).
    pub max_connections: u32,
    /// Text sent before authentication (the SSH userauth banner).
    pub banner: Option<String>,
    /// Time a client has to authenticate before it is disconnected.
    pub login_timeout: Duration,
    /// Failed authentication attempts allowed on one connection.
    pub max_auth_attempts: u32,
    /// Target sessions (recorded shells and commands, SFTP targets,
    /// tunnels excluded) one person may have open at once, over all their
    /// connections.
    pub max_sessions_per_user: u32,
    /// `None`: idle sessions are never closed.
    pub idle_timeout: Option<Duration>,
    /// `None`: no keepalives are sent.
    pub keepalive_interval: Option<Duration>,
    /// How long running sessions may continue after shutdown begins.
    pub shutdown_grace: Duration,
    /// Load balancers whose connections start with a PROXY protocol
    /// header giving the person's address (`ssh::proxy`); empty: none.
    pub proxy_protocol_from: Vec<ipnet::IpNet>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpConfig {
    /// The web side service (web assets, over HTTPS); `None`: off.
    pub listen: Option<SocketAddr>,
    /// The bastion's web domain: web asset `app1` is served at
    /// `https://app1.DOMAIN`, one origin per asset (a wildcard DNS record
    /// and certificate). Needed with `listen`.
    pub domain: Option<String>,
    /// The port browsers reach `listen` on, when a load balancer or NAT
    /// puts it elsewhere; `None`: `listen`'s port.
    pub public_port: Option<u16>,
    /// The listener's TLS certificate and key (PEM), relative to
    /// `data_dir`; generated (self-signed, for `DOMAIN` and `*.DOMAIN`) on
    /// first start when both are missing.
    pub certificate: PathBuf,
    pub key: PathBuf,
    /// A web visit with no request for this long ends.
    pub idle_timeout: Duration,
    /// Health, readiness and metrics (`http` module); `None`: off.
    pub metrics_listen: Option<SocketAddr>,
}

/// The RDP front door (`rdp` module).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RdpConfig {
    /// Empty: the RDP front is off.
    pub listen: Vec<SocketAddr>,
    /// The front's TLS certificate and key (PEM), relative to `data_dir`;
    /// generated on first start when both are missing.
    pub certificate: PathBuf,
    pub key: PathBuf,
    /// How long a `rampart me rdp-password` works; zero: per-person RDP
    /// passwords are off (tickets only).
    pub password_lifetime: Duration,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DatabaseConfig {
    /// `sqlite://FILE` (relative to `data_dir`), `sqlite::memory:`, or
    /// `postgres://...` (accepted here; the store decides what it supports).
    pub url: String,
    pub busy_timeout: Duration,
    pub max_connections: u32,
}

/// This process as one of several nodes sharing a PostgreSQL database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterConfig {
    /// The node's name, unique among the nodes sharing the database: its
    /// sessions are listed, killed and, should it die, marked interrupted
    /// under this name. Default: the host name.
    pub node: String,
}

/// The host name, as the default node name (`localhost` if none is set).
pub fn host_name() -> String {
    let name = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
    let name = name.trim();
    if valid_node_name(name) {
        name.to_string()
    } else {
        "localhost".to_string()
    }
}

/// 1 to 63 letters, digits, `.`, `-` and `_`.
pub fn valid_node_name(name: &str) -> bool {
    (1..=63).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'))
}

/// What happens to a session whose recording cannot be written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnFailure {
    /// The session is refused or ended: no unrecorded access.
    Deny,
    /// The session goes on; the failure is logged and audited.
    Allow,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordingConfig {
    /// As written: relative to `data_dir` (see [`Config::recording_dir`]).
    pub dir: PathBuf,
    pub input: bool,
    pub on_failure: OnFailure,
    pub flush_interval: Duration,
    /// Keep a copy of every file transferred over SFTP/SCP.
    pub keep_files: bool,
    /// Transferred files larger than this are logged but not kept, in bytes.
    pub keep_files_max_size: u64,
    /// Where finished recordings are kept besides `dir` (their spool).
    pub store: Option<ObjectStoreConfig>,
}

/// An S3-compatible bucket for recordings (`recording.store = "s3://..."`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectStoreConfig {
    pub bucket: String,
    /// Key prefix, without leading or trailing `/` (may be empty).
    pub prefix: String,
    /// `None`: AWS S3 itself.
    pub endpoint: Option<String>,
    pub region: String,
    /// `None`: from the environment (`AWS_ACCESS_KEY_ID`...).
    pub access_key_id: Option<String>,
    pub secret_access_key: Option<Hidden>,
}

/// A configured secret: never printed, not even by `{:?}`.
#[derive(Clone, PartialEq, Eq)]
pub struct Hidden(pub String);

impl std::fmt::Debug for Hidden {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("(hidden)")
    }
}

/// Reads `s3://BUCKET/PREFIX` into its bucket and prefix.
pub fn parse_s3_url(url: &str) -> Result<(String, String), String> {
    let rest = url
        .strip_prefix("s3://")
        .ok_or_else(|| format!("{url:?} is not an s3://BUCKET/PREFIX url"))?;
    let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
    let bucket_ok = (3..=63).contains(&bucket.len())
        && bucket
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.');
    if !bucket_ok {
        return Err(format!(
            "{bucket:?} is not a bucket name (3 to 63 lowercase letters, digits, '-' and '.')"
        ));
    }
    let prefix = prefix.trim_matches('/');
    if prefix
        .split('/')
        .any(|p| p == "." || p == ".." || (p.is_empty() && !prefix.is_empty()))
    {
        return Err(format!(
            "the prefix {prefix:?} must not hold empty, . or .. parts"
        ));
    }
    Ok((bucket.to_string(), prefix.to_string()))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthMethod {
    Password,
    PublicKey,
    KeyboardInteractive,
}

impl AuthMethod {
    pub const ALL: [AuthMethod; 3] = [
        AuthMethod::Password,
        AuthMethod::PublicKey,
        AuthMethod::KeyboardInteractive,
    ];

    /// The SSH method name (RFC 4252, RFC 4256).
    pub fn as_str(self) -> &'static str {
        match self {
            AuthMethod::Password => "password",
            AuthMethod::PublicKey => "publickey",
            AuthMethod::KeyboardInteractive => "keyboard-interactive",
        }
    }
}

impl fmt::Display for AuthMethod {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mfa {
    /// Users who enrolled TOTP are asked for a code; others are not.
    Optional,
    /// Every login needs a TOTP code; users without one must enrol first.
    Required,
}

#[derive(Debug, Clone, PartialEq)]
pub struct AuthConfig {
    pub methods: Vec<AuthMethod>,
    pub mfa: Mfa,
    /// Failed proofs per user within `failure_window` before a lockout.
    pub max_failures: u32,
    /// Failed proofs per source address within `failure_window`.
    pub max_failures_per_address: u32,
    pub failure_window: Duration,
    pub lockout: Duration,
    /// Zone in which login ACL time windows are read.
    pub time_zone: TimeZone,
    pub password_min_length: u32,
    /// How long a command held by a `review` filter waits for an admin's
    /// decision before it is refused.
    pub approval_timeout: Duration,
}

/// Where the TUI's colours come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Theme {
    /// One of [`BUILTIN_THEMES`].
    Builtin(String),
    /// A theme file (already resolved against the config file's directory),
    /// applied over the default theme.
    File(PathBuf),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TuiConfig {
    pub theme: Theme,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogConfig {
    /// A `tracing` filter (`info`, `rampart=debug,russh=warn`); `RUST_LOG`
    /// overrides it.
    pub level: String,
    /// `None`: log to stderr (journald under systemd). Already resolved
    /// against the config file's directory.
    pub file: Option<PathBuf>,
}

/// Why a configuration could not be loaded: one line naming the file, the
/// dotted key and what is wrong.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{file}: cannot read config file{origin}: {error}")]
    Read {
        file: String,
        /// Where the path came from, e.g. " (named by $RAMPART_CONFIG)".
        origin: &'static str,
        error: std::io::Error,
    },
    #[error("{file}: line {line}, column {column}: {message}")]
    Syntax {
        file: String,
        line: usize,
        column: usize,
        message: String,
    },
    #[error("{file}: unknown key {key} (expected one of {expected})")]
    UnknownKey {
        file: String,
        key: String,
        expected: String,
    },
    #[error("{file}: {key}: {problem}")]
    Invalid {
        file: String,
        key: String,
        problem: String,
    },
}

impl Default for Config {
    fn default() -> Self {
        Config {
            source: None,
            data_dir: PathBuf::from(DEFAULT_DATA_DIR),
            ssh: SshConfig {
                listen: vec![SocketAddr::from(([127, 0, 0, 1], 2222))],
                host_keys: vec![PathBuf::from("ssh_host_ed25519_key")],
                max_connections: 1000,
                banner: None,
                login_timeout: Duration::from_secs(60),
                max_auth_attempts: 6,
                max_sessions_per_user: 128,
                idle_timeout: None,
                keepalive_interval: Some(Duration::from_secs(30)),
                shutdown_grace: Duration::from_secs(30),
                proxy_protocol_from: Vec::new(),
            },
            http: HttpConfig {
                listen: None,
                domain: None,
                public_port: None,
                certificate: PathBuf::from("http.crt"),
                key: PathBuf::from("http.key"),
                idle_timeout: Duration::from_secs(15 * 60),
                metrics_listen: None,
            },
            rdp: RdpConfig {
                listen: Vec::new(),
                certificate: PathBuf::from("rdp.crt"),
                key: PathBuf::from("rdp.key"),
                password_lifetime: Duration::from_secs(12 * 3600),
            },
            database: DatabaseConfig {
                url: "sqlite://rampart.db".to_string(),
                busy_timeout: Duration::from_secs(5),
                max_connections: 8,
            },
            cluster: ClusterConfig { node: host_name() },
            clients: ClientsConfig::default(),
            recording: RecordingConfig {
                dir: PathBuf::from("recordings"),
                input: false,
                on_failure: OnFailure::Deny,
                flush_interval: Duration::from_secs(1),
                keep_files: false,
                keep_files_max_size: 100 * 1024 * 1024,
                store: None,
            },
            auth: AuthConfig {
                methods: AuthMethod::ALL.to_vec(),
                mfa: Mfa::Optional,
                max_failures: 5,
                max_failures_per_address: 20,
                failure_window: Duration::from_secs(15 * 60),
                lockout: Duration::from_secs(15 * 60),
                time_zone: TimeZone::UTC,
                password_min_length: 12,
                approval_timeout: Duration::from_secs(5 * 60),
            },
            tui: TuiConfig {
                theme: Theme::Builtin("default".to_string()),
            },
            log: LogConfig {
                level: "info".to_string(),
                file: None,
            },
        }
    }
}

impl Config {
    /// Finds and reads the configuration: `explicit` (`--config FILE`), else
    /// `env_config` (the caller passes `std::env::var("RAMPART_CONFIG").ok()`;
    /// an empty value counts as unset), else `./rampart.toml` if it exists,
    /// else the built-in defaults.
    pub fn load(explicit: Option<&Path>, env_config: Option<&str>) -> Result<Config, ConfigError> {
        Self::load_in(explicit, env_config, Path::new(""))
    }

    /// [`Config::load`] with the working directory made explicit, for tests.
    fn load_in(
        explicit: Option<&Path>,
        env_config: Option<&str>,
        cwd: &Path,
    ) -> Result<Config, ConfigError> {
        if let Some(path) = explicit {
            return Self::read_file(path, " (named by --config)");
        }
        if let Some(path) = env_config.filter(|p| !p.is_empty()) {
            return Self::read_file(Path::new(path), " (named by $RAMPART_CONFIG)");
        }
        let local = cwd.join(DEFAULT_FILE);
        if local.is_file() {
            return Self::read_file(&local, "");
        }
        Ok(Config::default())
    }

    fn read_file(path: &Path, origin: &'static str) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|error| ConfigError::Read {
            file: path.display().to_string(),
            origin,
            error,
        })?;
        Self::from_toml_str(&text, path)
    }

    /// Parses and validates `text`, read from the file `source`. `source`
    /// names the file in errors, and relative `data_dir`, `tui.theme` and
    /// `log.file` paths are resolved against its directory.
    pub fn from_toml_str(text: &str, source: impl AsRef<Path>) -> Result<Config, ConfigError> {
        let source = source.as_ref();
        let file = source.display().to_string();
        let table: Table = text.parse().map_err(|e: toml::de::Error| {
            let span = e.span().unwrap_or(0..0);
            let (line, column) = parse::line_column(text, span.start);
            let mut message = e.message().trim_end().to_string();
            // toml says "duplicate key" without naming it; the span does.
            if message == "duplicate key"
                && let Some(key) = text
                    .get(span)
                    .filter(|k| !k.is_empty() && !k.contains('\n'))
            {
                message = format!("duplicate key {key}");
            }
            ConfigError::Syntax {
                file: file.clone(),
                line,
                column,
                message,
            }
        })?;
        let base = source.parent().unwrap_or(Path::new(""));
        let mut config = parse::config(&file, &table, base)?;
        config.source = Some(source.to_path_buf());
        Ok(config)
    }

    /// The file this configuration came from; `None` for built-in defaults.
    pub fn source(&self) -> Option<&Path> {
        self.source.as_deref()
    }

    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// The SQLite database file, for `sqlite:` urls other than `:memory:`.
    pub fn database_path(&self) -> Option<PathBuf> {
        let rest = self.database.url.strip_prefix("sqlite:")?;
        let rest = rest.strip_prefix("//").unwrap_or(rest);
        // sqlx-style options (`?mode=rwc`) are not part of the path.
        let path = rest.split('?').next().unwrap_or(rest);
        if path.is_empty() || path == ":memory:" {
            return None;
        }
        Some(self.data_dir.join(path))
    }

    /// Where RDP clients connect: the first `rdp.listen` address, with
    /// `BASTION` for a wildcard one (the name people reach the bastion by
    /// is not known here); `None`: the RDP front is off.
    pub fn rdp_front_address(&self) -> Option<String> {
        let a = self.rdp.listen.first()?;
        Some(if a.ip().is_unspecified() {
            format!("BASTION:{}", a.port())
        } else {
            a.to_string()
        })
    }

    pub fn recording_dir(&self) -> PathBuf {
        self.data_dir.join(&self.recording.dir)
    }

    pub fn host_key_paths(&self) -> Vec<PathBuf> {
        self.ssh
            .host_keys
            .iter()
            .map(|p| self.data_dir.join(p))
            .collect()
    }

    /// The vault's master key, unless `RAMPART_MASTER_KEY` provides it.
    pub fn master_key_path(&self) -> PathBuf {
        self.data_dir.join("master.key")
    }

    /// The socket through which the CLI reaches a running server.
    pub fn control_socket_path(&self) -> PathBuf {
        self.data_dir.join("control.sock")
    }
}

#[cfg(test)]
#[path = "config/tests.rs"]
mod tests;
