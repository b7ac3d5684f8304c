//! Reading a parsed TOML table into a [`Config`]: the unknown-key check,
//! every value's type and range, and the small textual forms (durations,
//! sizes, log filters). All messages are made here, so they read alike.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use jiff::tz::TimeZone;
use toml::{Table, Value};

use super::{
    AuthConfig, AuthMethod, BUILTIN_THEMES, ClientsConfig, ClusterConfig, Config, ConfigError,
    DatabaseConfig, Hidden, HttpConfig, KEYS, LogConfig, Mfa, ObjectStoreConfig, OnFailure,
    RdpConfig, RecordingConfig, SshConfig, Theme, TuiConfig,
};

/// One TOML table being read, with its dotted prefix for messages.
struct Section<'a> {
    file: &'a str,
    prefix: &'static str,
    table: &'a Table,
}

impl<'a> Section<'a> {
    fn root(file: &'a str, table: &'a Table) -> Self {
        Section {
            file,
            prefix: "",
            table,
        }
    }

    fn key(&self, name: &str) -> String {
        if self.prefix.is_empty() {
            name.to_string()
        } else {
            format!("{}.{}", self.prefix, name)
        }
    }

    fn invalid(&self, name: &str, problem: impl Into<String>) -> ConfigError {
        ConfigError::Invalid {
            file: self.file.to_string(),
            key: self.key(name),
            problem: problem.into(),
        }
    }

    /// Refuses keys that are not in [`KEYS`] under this prefix.
    fn check_keys(&self) -> Result<(), ConfigError> {
        let allowed = allowed_keys(self.prefix);
        for name in self.table.keys() {
            if !allowed.contains(&name.as_str()) {
                return Err(ConfigError::UnknownKey {
                    file: self.file.to_string(),
                    key: self.key(name),
                    expected: allowed.join(", "),
                });
            }
        }
        Ok(())
    }

    /// The sub-table `name` (`[ssh]`), empty when absent.
    fn table(&self, name: &'static str, empty: &'a Table) -> Result<Section<'a>, ConfigError> {
        let table = match self.table.get(name) {
            None => empty,
            Some(Value::Table(t)) => t,
            Some(other) => {
                return Err(
                    self.invalid(name, format!("expected a table, found {}", describe(other)))
                );
            }
        };
        let section = Section {
            file: self.file,
            prefix: name,
            table,
        };
        section.check_keys()?;
        Ok(section)
    }

    fn string(&self, name: &str) -> Result<Option<&'a str>, ConfigError> {
        match self.table.get(name) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(other) => Err(self.invalid(
                name,
                format!("expected a string, found {}", describe(other)),
            )),
        }
    }

    fn boolean(&self, name: &str, default: bool) -> Result<bool, ConfigError> {
        match self.table.get(name) {
            None => Ok(default),
            Some(Value::Boolean(b)) => Ok(*b),
            Some(other) => Err(self.invalid(
                name,
                format!("expected true or false, found {}", describe(other)),
            )),
        }
    }

    /// An integer in `min..=max`.
    fn integer(&self, name: &str, default: u32, min: u32, max: u32) -> Result<u32, ConfigError> {
        match self.table.get(name) {
            None => Ok(default),
            Some(Value::Integer(n)) => match u32::try_from(*n) {
                Ok(n) if (min..=max).contains(&n) => Ok(n),
                _ => Err(self.invalid(name, format!("{n} is out of range ({min} to {max})"))),
            },
            Some(other) => Err(self.invalid(
                name,
                format!("expected an integer, found {}", describe(other)),
            )),
        }
    }

    /// A duration string; "0" (or any zero) gives `Duration::ZERO`.
    fn duration(&self, name: &str, default: Duration) -> Result<Duration, ConfigError> {
        let Some(text) = self.string(name)? else {
            return Ok(default);
        };
        parse_duration(text).ok_or_else(|| {
            self.invalid(
                name,
                format!("{text:?} is not a duration (use e.g. \"15m\", \"1h30m\")"),
            )
        })
    }

    /// A duration that must not be zero.
    fn positive_duration(&self, name: &str, default: Duration) -> Result<Duration, ConfigError> {
        let d = self.duration(name, default)?;
        if d.is_zero() {
            return Err(self.invalid(name, "must be longer than 0"));
        }
        Ok(d)
    }

    /// A duration where zero means "off".
    fn optional_duration(
        &self,
        name: &str,
        default: Option<Duration>,
    ) -> Result<Option<Duration>, ConfigError> {
        let d = self.duration(name, default.unwrap_or(Duration::ZERO))?;
        Ok((!d.is_zero()).then_some(d))
    }

    fn address(&self, name: &str, value: &Value) -> Result<SocketAddr, ConfigError> {
        let Value::String(text) = value else {
            return Err(self.invalid(
                name,
                format!("expected an address string, found {}", describe(value)),
            ));
        };
        text.trim().parse().map_err(|_| {
            self.invalid(
                name,
                format!("{text:?} is not an address (use IP:PORT, e.g. \"0.0.0.0:2222\" or \"[::]:2222\")"),
            )
        })
    }

    /// A list of strings; a lone string is taken as a list of one, because
    /// `listen = "0.0.0.0:22"` is an easy slip to forgive.
    fn string_list(&self, name: &str) -> Result<Option<Vec<&'a Value>>, ConfigError> {
        match self.table.get(name) {
            None => Ok(None),
            Some(v @ Value::String(_)) => Ok(Some(vec![v])),
            Some(Value::Array(items)) => Ok(Some(items.iter().collect())),
            Some(other) => {
                Err(self.invalid(name, format!("expected a list, found {}", describe(other))))
            }
        }
    }

    fn list_item_string(&self, name: &str, value: &'a Value) -> Result<&'a str, ConfigError> {
        match value {
            Value::String(s) => Ok(s),
            other => Err(self.invalid(
                name,
                format!("expected a list of strings, found {}", describe(other)),
            )),
        }
    }
}

/// The leaf names accepted under `prefix` ("" = top level, where table names
/// count as keys too).
fn allowed_keys(prefix: &str) -> Vec<&'static str> {
    let mut out: Vec<&'static str> = Vec::new();
    for key in KEYS {
        let name = match key.split_once('.') {
            Some((table, leaf)) if table == prefix => leaf,
            Some((table, _)) if prefix.is_empty() => table,
            None if prefix.is_empty() => key,
            _ => continue,
        };
        if !out.contains(&name) {
            out.push(name);
        }
    }
    out
}

/// Reads the whole document; `base` is the config file's directory.
pub(super) fn config(file: &str, table: &Table, base: &Path) -> Result<Config, ConfigError> {
    let root = Section::root(file, table);
    root.check_keys()?;
    let d = Config::default();
    let empty = Table::new();

    let data_dir = match root.string("data_dir")? {
        Some("") => return Err(root.invalid("data_dir", "must not be empty")),
        Some(dir) => base.join(dir),
        None => d.data_dir.clone(),
    };

    let ssh = parse_ssh(&root.table("ssh", &empty)?, &d.ssh)?;

    let http_section = root.table("http", &empty)?;
    let optional_address = |key: &str| match http_section.table.get(key) {
        None => Ok(None),
        Some(v) => http_section.address(key, v).map(Some),
    };
    let http = parse_http(&http_section, &d.http, optional_address("listen")?)?;
    let http = HttpConfig {
        metrics_listen: optional_address("metrics_listen")?,
        ..http
    };
    for (key, addr) in [
        ("listen", http.listen),
        ("metrics_listen", http.metrics_listen),
    ] {
        if let Some(addr) = addr
            && ssh.listen.contains(&addr)
        {
            return Err(http_section.invalid(key, format!("{addr} is also in ssh.listen")));
        }
    }
    if let (Some(a), Some(b)) = (http.listen, http.metrics_listen)
        && a == b
    {
        return Err(http_section.invalid(
            "metrics_listen",
            format!("{b} is also http.listen: give metrics an address of their own"),
        ));
    }

    let rdp = parse_rdp(&root.table("rdp", &empty)?, &d.rdp, &ssh, &http)?;

    let database = parse_database(&root.table("database", &empty)?, &d.database)?;
    let cluster_section = root.table("cluster", &empty)?;
    let cluster = ClusterConfig {
        node: match cluster_section.string("node")? {
            None => d.cluster.node.clone(),
            Some(name) if crate::config::valid_node_name(name) => name.to_string(),
            Some(name) => {
                return Err(cluster_section.invalid(
                    "node",
                    format!(
                        "{name:?} is not a node name (1 to 63 letters, digits, '.', '-' and '_')"
                    ),
                ));
            }
        },
    };
    let recording = parse_recording(&root.table("recording", &empty)?, &d.recording)?;
    let auth = parse_auth(&root.table("auth", &empty)?, &d.auth)?;
    let clients_section = root.table("clients", &empty)?;
    let program = |key: &str, default: &Option<PathBuf>| -> Result<Option<PathBuf>, ConfigError> {
        Ok(match clients_section.string(key)? {
            None => default.clone(),
            Some("") => None,
            // A bare name is looked up on PATH; a path is the config's.
            Some(p) if !p.contains('/') => Some(PathBuf::from(p)),
            Some(p) => Some(base.join(p)),
        })
    };
    let clients = ClientsConfig {
        psql: program("psql", &d.clients.psql)?,
        mysql: program("mysql", &d.clients.mysql)?,
        redis_cli: program("redis_cli", &d.clients.redis_cli)?,
    };

    let tui_section = root.table("tui", &empty)?;
    let theme = match tui_section.string("theme")? {
        None => d.tui.theme.clone(),
        Some(name) if BUILTIN_THEMES.contains(&name) => Theme::Builtin(name.to_string()),
        Some(name) => {
            let path = base.join(name);
            if !path.is_file() {
                return Err(tui_section.invalid(
                    "theme",
                    format!(
                        "{name:?} is neither a built-in theme ({}) nor an existing file",
                        BUILTIN_THEMES.join(", ")
                    ),
                ));
            }
            Theme::File(path)
        }
    };

    let log_section = root.table("log", &empty)?;
    let level = match log_section.string("level")? {
        None => d.log.level.clone(),
        Some(level) => {
            check_log_filter(level).map_err(|problem| log_section.invalid("level", problem))?;
            level.trim().to_string()
        }
    };
    let file = match log_section.string("file")? {
        None => None,
        Some("") => {
            return Err(
                log_section.invalid("file", "must not be empty (leave it out to log to stderr)")
            );
        }
        Some(f) => Some(base.join(f)),
    };

    Ok(Config {
        source: None,
        data_dir,
        ssh,
        http,
        rdp,
        database,
        cluster,
        recording,
        auth,
        clients,
        tui: TuiConfig { theme },
        log: LogConfig { level, file },
    })
}

fn parse_http(
    s: &Section<'_>,
    d: &HttpConfig,
    listen: Option<SocketAddr>,
) -> Result<HttpConfig, ConfigError> {
    let domain = match s.string("domain")? {
        None => None,
        Some(name) => {
            let name = name.trim_end_matches('.').to_ascii_lowercase();
            let label_ok = |l: &str| {
                !l.is_empty()
                    && l.len() <= 63
                    && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                    && !l.starts_with('-')
                    && !l.ends_with('-')
            };
            if name.len() > 200 || !name.split('.').all(label_ok) {
                return Err(s.invalid(
                    "domain",
                    format!("{name:?} is not a DNS name, such as web.bastion.example.com"),
                ));
            }
            Some(name)
        }
    };
    let public_port = match s.table.get("public_port") {
        None => None,
        Some(_) => Some(u16::try_from(s.integer("public_port", 443, 1, 65535)?).unwrap_or(443)),
    };
    let path = |key: &str, default: &PathBuf| match s.string(key)? {
        None => Ok(default.clone()),
        Some("") => Err(s.invalid(key, "must not be empty")),
        Some(p) => Ok(PathBuf::from(p)),
    };
    let idle_timeout = s.duration("idle_timeout", d.idle_timeout)?;
    if idle_timeout.is_zero() {
        return Err(s.invalid("idle_timeout", "must be more than 0"));
    }
    Ok(HttpConfig {
        listen,
        domain,
        public_port,
        certificate: path("certificate", &d.certificate)?,
        key: path("key", &d.key)?,
        idle_timeout,
        metrics_listen: None,
    })
}

fn parse_rdp(
    s: &Section<'_>,
    d: &RdpConfig,
    ssh: &SshConfig,
    http: &HttpConfig,
) -> Result<RdpConfig, ConfigError> {
    let mut listen: Vec<SocketAddr> = Vec::new();
    for item in s.string_list("listen")?.unwrap_or_default() {
        let addr = s.address("listen", item)?;
        if listen.contains(&addr) {
            return Err(s.invalid("listen", format!("{addr} is listed twice")));
        }
        if ssh.listen.contains(&addr) || [http.listen, http.metrics_listen].contains(&Some(addr)) {
            return Err(s.invalid("listen", format!("{addr} is also an SSH or HTTP address")));
        }
        listen.push(addr);
    }
    let path = |key: &str, default: &PathBuf| match s.string(key)? {
        None => Ok(default.clone()),
        Some("") => Err(s.invalid(key, "must not be empty")),
        Some(p) => Ok(PathBuf::from(p)),
    };
    Ok(RdpConfig {
        listen,
        certificate: path("certificate", &d.certificate)?,
        key: path("key", &d.key)?,
        password_lifetime: s.duration("password_lifetime", d.password_lifetime)?,
    })
}

fn parse_ssh(s: &Section<'_>, d: &SshConfig) -> Result<SshConfig, ConfigError> {
    let listen = match s.string_list("listen")? {
        None => d.listen.clone(),
        Some(items) => {
            let mut out: Vec<SocketAddr> = Vec::new();
            for item in items {
                let addr = s.address("listen", item)?;
                if out.contains(&addr) {
                    return Err(s.invalid("listen", format!("{addr} is listed twice")));
                }
                out.push(addr);
            }
            if out.is_empty() {
                return Err(s.invalid("listen", "must list at least one address"));
            }
            out
        }
    };
    let host_keys = match s.string_list("host_keys")? {
        None => d.host_keys.clone(),
        Some(items) => {
            let mut out: Vec<PathBuf> = Vec::new();
            for item in items {
                let path = s.list_item_string("host_keys", item)?;
                if path.is_empty() {
                    return Err(s.invalid("host_keys", "a path is empty"));
                }
                if out.iter().any(|p| p == Path::new(path)) {
                    return Err(s.invalid("host_keys", format!("{path:?} is listed twice")));
                }
                out.push(PathBuf::from(path));
            }
            if out.is_empty() {
                return Err(s.invalid(
                    "host_keys",
                    "must list at least one key file (e.g. [\"ssh_host_ed25519_key\"])",
                ));
            }
            out
        }
    };
    let proxy_protocol_from = match s.string_list("proxy_protocol_from")? {
        None => d.proxy_protocol_from.clone(),
        Some(items) => {
            let mut out: Vec<ipnet::IpNet> = Vec::new();
            for item in items {
                let text = s.list_item_string("proxy_protocol_from", item)?.trim();
                let net = text
                    .parse::<ipnet::IpNet>()
                    .map(|n| n.trunc())
                    .or_else(|_| text.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
                    .map_err(|_| {
                        s.invalid(
                            "proxy_protocol_from",
                            format!(
                                "{text:?} is not an address or network (use e.g. \"10.0.0.5\" or \"10.0.0.0/24\")"
                            ),
                        )
                    })?;
                out.push(net);
            }
            out
        }
    };
    let banner = s
        .string("banner")?
        .filter(|b| !b.is_empty())
        .map(str::to_string);
    Ok(SshConfig {
        listen,
        host_keys,
        max_connections: s.integer("max_connections", d.max_connections, 1, 1_000_000)?,
        banner,
        login_timeout: s.positive_duration("login_timeout", d.login_timeout)?,
        max_auth_attempts: s.integer("max_auth_attempts", d.max_auth_attempts, 1, 100)?,
        max_sessions_per_user: s.integer(
            "max_sessions_per_user",
            d.max_sessions_per_user,
            1,
            100_000,
        )?,
        idle_timeout: s.optional_duration("idle_timeout", d.idle_timeout)?,
        keepalive_interval: s.optional_duration("keepalive_interval", d.keepalive_interval)?,
        shutdown_grace: s.duration("shutdown_grace", d.shutdown_grace)?,
        proxy_protocol_from,
    })
}

fn parse_database(s: &Section<'_>, d: &DatabaseConfig) -> Result<DatabaseConfig, ConfigError> {
    let url = match s.string("url")? {
        None => d.url.clone(),
        Some(url) => {
            let url = url.trim();
            let ok = if let Some(rest) = url.strip_prefix("sqlite:") {
                let path = rest.strip_prefix("//").unwrap_or(rest);
                !path.split('?').next().unwrap_or("").is_empty()
            } else {
                url.starts_with("postgres://") || url.starts_with("postgresql://")
            };
            if !ok {
                return Err(s.invalid(
                    "url",
                    format!("{url:?} is not a database url (use \"sqlite://FILE\" or \"postgres://HOST/DB\")"),
                ));
            }
            url.to_string()
        }
    };
    Ok(DatabaseConfig {
        url,
        busy_timeout: s.duration("busy_timeout", d.busy_timeout)?,
        max_connections: s.integer("max_connections", d.max_connections, 1, 1000)?,
    })
}

fn parse_recording(s: &Section<'_>, d: &RecordingConfig) -> Result<RecordingConfig, ConfigError> {
    let dir = match s.string("dir")? {
        Some("") => return Err(s.invalid("dir", "must not be empty")),
        Some(dir) => PathBuf::from(dir),
        None => d.dir.clone(),
    };
    let on_failure = match s.string("on_failure")? {
        None => d.on_failure,
        Some("deny") => OnFailure::Deny,
        Some("allow") => OnFailure::Allow,
        Some(other) => {
            return Err(s.invalid("on_failure", format!("{other:?} is not deny or allow")));
        }
    };
    let flush_interval = s.positive_duration("flush_interval", d.flush_interval)?;
    // DESIGN.md §4 promises a crash leaves at most a second of a session
    // unwritten; a longer interval would break that promise.
    if flush_interval > Duration::from_secs(1) {
        return Err(s.invalid("flush_interval", "must be at most 1s"));
    }
    let keep_files_max_size = match s.table.get("keep_files_max_size") {
        None => d.keep_files_max_size,
        Some(Value::Integer(n)) => u64::try_from(*n)
            .map_err(|_| s.invalid("keep_files_max_size", format!("{n} is negative")))?,
        Some(Value::String(text)) => parse_size(text).ok_or_else(|| {
            s.invalid(
                "keep_files_max_size",
                format!("{text:?} is not a size (use e.g. \"100MiB\", \"2GiB\")"),
            )
        })?,
        Some(other) => {
            return Err(s.invalid(
                "keep_files_max_size",
                format!(
                    "expected a size such as \"100MiB\", found {}",
                    describe(other)
                ),
            ));
        }
    };
    Ok(RecordingConfig {
        dir,
        input: s.boolean("input", d.input)?,
        on_failure,
        flush_interval,
        keep_files: s.boolean("keep_files", d.keep_files)?,
        keep_files_max_size,
        store: parse_object_store(s)?,
    })
}

/// `recording.store` and the `s3_*` keys that go with it.
fn parse_object_store(s: &Section<'_>) -> Result<Option<ObjectStoreConfig>, ConfigError> {
    let s3_keys = [
        "s3_endpoint",
        "s3_region",
        "s3_access_key_id",
        "s3_secret_access_key",
    ];
    let url = match s.string("store")? {
        None | Some("local") => {
            if let Some(key) = s3_keys.iter().find(|k| s.table.contains_key(**k)) {
                return Err(s.invalid(key, "is set but recording.store is not an s3:// url"));
            }
            return Ok(None);
        }
        Some(url) => url,
    };
    let (bucket, prefix) =
        crate::config::parse_s3_url(url).map_err(|problem| s.invalid("store", problem))?;
    let endpoint = match s.string("s3_endpoint")? {
        None => None,
        Some(e) if e.starts_with("https://") || e.starts_with("http://") => {
            Some(e.trim_end_matches('/').to_string())
        }
        Some(e) => {
            return Err(s.invalid(
                "s3_endpoint",
                format!("{e:?} is not an https:// (or http://) url"),
            ));
        }
    };
    let access_key_id = s.string("s3_access_key_id")?.map(str::to_string);
    let secret_access_key = s
        .string("s3_secret_access_key")?
        .map(|k| Hidden(k.to_string()));
    if access_key_id.is_some() != secret_access_key.is_some() {
        return Err(s.invalid(
            "s3_access_key_id",
            "s3_access_key_id and s3_secret_access_key go together (or leave both out to use the environment)",
        ));
    }
    Ok(Some(ObjectStoreConfig {
        bucket,
        prefix,
        endpoint,
        region: s.string("s3_region")?.unwrap_or("us-east-1").to_string(),
        access_key_id,
        secret_access_key,
    }))
}

fn parse_auth(s: &Section<'_>, d: &AuthConfig) -> Result<AuthConfig, ConfigError> {
    let methods = match s.string_list("methods")? {
        None => d.methods.clone(),
        Some(items) => {
            let mut out: Vec<AuthMethod> = Vec::new();
            for item in items {
                let name = s.list_item_string("methods", item)?;
                let method = AuthMethod::ALL
                    .into_iter()
                    .find(|m| m.as_str() == name)
                    .ok_or_else(|| {
                        s.invalid(
                            "methods",
                            format!(
                                "{name:?} is not an authentication method (use password, publickey, keyboard-interactive)"
                            ),
                        )
                    })?;
                if out.contains(&method) {
                    return Err(s.invalid("methods", format!("{name:?} is listed twice")));
                }
                out.push(method);
            }
            if out.is_empty() {
                return Err(s.invalid("methods", "must list at least one method"));
            }
            out
        }
    };
    let mfa = match s.string("mfa")? {
        None => d.mfa,
        Some("optional") => Mfa::Optional,
        Some("required") => Mfa::Required,
        Some(other) => {
            return Err(s.invalid("mfa", format!("{other:?} is not optional or required")));
        }
    };
    // TOTP codes are asked over keyboard-interactive; without it a required
    // second factor could never be given and nobody could log in.
    if mfa == Mfa::Required && !methods.contains(&AuthMethod::KeyboardInteractive) {
        return Err(s.invalid(
            "mfa",
            "\"required\" needs \"keyboard-interactive\" in auth.methods (TOTP codes are asked over it)",
        ));
    }
    let time_zone = match s.string("time_zone")? {
        None => d.time_zone.clone(),
        Some(name) => TimeZone::get(name).map_err(|_| {
            s.invalid(
                "time_zone",
                format!("{name:?} is not a known IANA time zone (e.g. \"UTC\", \"Europe/Paris\")"),
            )
        })?,
    };
    Ok(AuthConfig {
        methods,
        mfa,
        max_failures: s.integer("max_failures", d.max_failures, 1, 1000)?,
        max_failures_per_address: s.integer(
            "max_failures_per_address",
            d.max_failures_per_address,
            1,
            100_000,
        )?,
        failure_window: s.positive_duration("failure_window", d.failure_window)?,
        lockout: s.positive_duration("lockout", d.lockout)?,
        time_zone,
        // Below 8 characters is weaker than any current guidance allows.
        password_min_length: s.integer("password_min_length", d.password_min_length, 8, 1024)?,
        approval_timeout: s.positive_duration("approval_timeout", d.approval_timeout)?,
    })
}

/// Checks a `tracing` env-filter string in its common forms
/// (`LEVEL` or `TARGET=LEVEL`, comma separated), so a typo fails at start-up
/// rather than silently logging nothing.
fn check_log_filter(filter: &str) -> Result<(), String> {
    const LEVELS: &[&str] = &["trace", "debug", "info", "warn", "error", "off"];
    let bad =
        || format!("{filter:?} is not a log filter (use e.g. \"info\" or \"rampart=debug,info\")");
    if filter.trim().is_empty() {
        return Err(bad());
    }
    for directive in filter.split(',').map(str::trim) {
        let level = match directive.split_once('=') {
            Some((target, level)) if !target.is_empty() => level,
            Some(_) => return Err(bad()),
            None => directive,
        };
        if !LEVELS.contains(&level.to_ascii_lowercase().as_str()) {
            return Err(bad());
        }
    }
    Ok(())
}

/// `"0"` or a run of NUMBER+UNIT parts (`ms`, `s`, `m`, `h`, `d`):
/// `"30s"`, `"15m"`, `"1h30m"`. Deliberately narrower than jiff's friendly
/// format ("15 minutes"), so there is one spelling in every config file.
pub fn parse_duration(text: &str) -> Option<Duration> {
    let text = text.trim();
    if text == "0" {
        return Some(Duration::ZERO);
    }
    let mut total = Duration::ZERO;
    let mut chars = text.chars().peekable();
    // An empty string has no first part.
    chars.peek()?;
    while chars.peek().is_some() {
        let mut number: u64 = 0;
        let mut digits = 0;
        while let Some(c) = chars.peek().and_then(|c| c.to_digit(10)) {
            number = number.checked_mul(10)?.checked_add(u64::from(c))?;
            digits += 1;
            chars.next();
        }
        let mut unit = String::new();
        while let Some(&c) = chars.peek().filter(|c| c.is_ascii_alphabetic()) {
            unit.push(c);
            chars.next();
        }
        let millis_per_unit: u64 = match unit.as_str() {
            "ms" => 1,
            "s" => 1_000,
            "m" => 60_000,
            "h" => 3_600_000,
            "d" => 86_400_000,
            _ => return None,
        };
        if digits == 0 {
            return None;
        }
        total = total.checked_add(Duration::from_millis(number.checked_mul(millis_per_unit)?))?;
    }
    Some(total)
}

/// A byte count with an optional unit: `"100MiB"`, `"2 GiB"`, `"500MB"`, `"4096"`.
pub fn parse_size(text: &str) -> Option<u64> {
    let text = text.trim();
    let split = text
        .char_indices()
        .find(|(_, c)| !c.is_ascii_digit())
        .map_or(text.len(), |(i, _)| i);
    // `split` is a char boundary: it comes from char_indices.
    let (number, unit) = text.split_at(split);
    let number: u64 = number.parse().ok()?;
    let multiplier: u64 = match unit.trim() {
        "" | "B" => 1,
        "KiB" => 1 << 10,
        "MiB" => 1 << 20,
        "GiB" => 1 << 30,
        "TiB" => 1 << 40,
        "kB" | "KB" => 1_000,
        "MB" => 1_000_000,
        "GB" => 1_000_000_000,
        "TB" => 1_000_000_000_000,
        _ => return None,
    };
    number.checked_mul(multiplier)
}

/// "a string \"x\"", "an integer 3": what was found, for type errors.
fn describe(value: &Value) -> String {
    match value {
        Value::String(s) => format!("a string {s:?}"),
        Value::Integer(n) => format!("an integer {n}"),
        Value::Float(x) => format!("a number {x}"),
        Value::Boolean(b) => format!("a boolean {b}"),
        Value::Datetime(dt) => format!("a date-time {dt}"),
        Value::Array(_) => "a list".to_string(),
        Value::Table(_) => "a table".to_string(),
    }
}

/// 1-based line and column (in characters) of a byte offset.
pub(super) fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let mut line = 1;
    let mut column = 1;
    for (i, c) in text.char_indices() {
        if i >= offset {
            break;
        }
        if c == '\n' {
            line += 1;
            column = 1;
        } else {
            column += 1;
        }
    }
    (line, column)
}
