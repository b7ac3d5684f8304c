//! The person's side of a database session: their native client (`psql`,
//! `mariadb --sandbox`, `redis-cli`; [`Kind`]) in a sandboxed pty
//! ([`crate::upstream::pty`]), talking to the session's own wire proxy
//! over a Unix socket in a private directory.
//!
//! The client never holds the account's secret. psql and mariadb log in to
//! the proxy with a one-time password of the session, which they read from
//! a 0600 file (`PGPASSFILE`, an option file) in the private directory:
//! never in their arguments or environment, which `ps` shows. The file is
//! removed as soon as the proxy sees the connection, and the proxy takes
//! no second connection. redis-cli cannot read a password from a file; its
//! socket's directory is its sandbox user's alone ([`super::redis`]). The
//! proxy logs in to the server with the vaulted secret.
//!
//! Must never: start a client outside its sandbox, leave the private
//! directory behind, or accept a second login with the token.

use std::io;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use tokio::task::JoinHandle;
use zeroize::Zeroizing;

use super::{Accepted, Audit, Upstream, pg};
use crate::upstream::pty::{self, Output, Program, Sandbox, Terminal};

/// The uids sandboxed clients run as when the bastion runs as root: one of
/// its own per session, far above any a distribution hands out, so no file
/// on the system belongs to it.
pub const SANDBOX_UID_BASE: u32 = 2_100_000_000;
const SANDBOX_UIDS: u32 = 1_000_000;
static NEXT_UID: AtomicU32 = AtomicU32::new(0);

/// The native clients the bastion runs, one per database protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Postgres,
    Mysql,
    Redis,
}

impl Kind {
    /// The client for an asset protocol, if the bastion runs one.
    pub fn of_protocol(protocol: &str) -> Option<Kind> {
        match protocol {
            "postgresql" => Some(Kind::Postgres),
            "mysql" | "mariadb" => Some(Kind::Mysql),
            "redis" => Some(Kind::Redis),
            _ => None,
        }
    }

    /// The client's name, as the person knows it.
    pub fn program(self) -> &'static str {
        match self {
            Kind::Postgres => "psql",
            Kind::Mysql => "mariadb",
            Kind::Redis => "redis-cli",
        }
    }

    /// What its command filters are scoped to (`filter add --on`).
    pub fn scope(self) -> crate::model::Scope {
        match self {
            Kind::Postgres | Kind::Mysql => crate::model::Scope::Sql,
            Kind::Redis => crate::model::Scope::Redis,
        }
    }

    /// The statements of a text its proxy logged, as its rules judge them.
    pub fn statements(self, text: &str) -> Vec<String> {
        match self {
            Kind::Postgres => pg::sql::statements(text),
            // The server's version is the proxy's to know; every reading.
            Kind::Mysql => pg::sql::split_mysql(text.as_bytes(), None).statements,
            Kind::Redis => vec![text.to_string()],
        }
    }
}

/// What to start.
pub struct Start<'a> {
    pub kind: Kind,
    pub session_id: &'a str,
    /// The configured programs (`clients.*`).
    pub clients: &'a crate::config::ClientsConfig,
    pub upstream: Upstream,
    /// The account the client names (the proxy logs in as it upstream).
    pub account: &'a str,
    /// The database to open; empty: the server's default.
    pub database: &'a str,
    /// TERM and the locale the person's client sent.
    pub env: Vec<(String, String)>,
    pub cols: u16,
    pub rows: u16,
}

/// Why a client could not be started; `Display` is the person's line.
#[derive(Debug, thiserror::Error)]
pub enum LaunchError {
    #[error("{0} is not installed on the bastion (or clients.{0} names no program); tell an admin")]
    NoProgram(&'static str),
    #[error("the database client's sandbox cannot be set up ({0}); tell an admin")]
    Sandbox(io::Error),
    #[error("the database session's private directory cannot be made ({0}); tell an admin")]
    Dir(io::Error),
}

/// A started client: its terminal for the relay, and the proxy it talks
/// to. Dropping it kills the client and removes its directory.
pub struct Client {
    pub terminal: Terminal,
    pub output: Output,
    proxy: JoinHandle<()>,
    _dir: PrivateDir,
}

/// How long a stopped client's proxy has to log what was in flight.
const PROXY_GRACE: std::time::Duration = std::time::Duration::from_secs(3);

impl Client {
    /// Stops the client, then its proxy (its connection closing ends it;
    /// it is given a moment to log what was in flight), and removes the
    /// private directory.
    pub async fn stop(self) {
        let Client {
            terminal,
            output,
            mut proxy,
            _dir,
        } = self;
        drop(terminal);
        drop(output);
        if tokio::time::timeout(PROXY_GRACE, &mut proxy).await.is_err() {
            proxy.abort();
        }
    }
}

/// How one kind of client is set up in its private directory `dir`.
struct Setup {
    program: PathBuf,
    /// The proxy's socket, as the client is told to find it.
    socket: PathBuf,
    /// The one-time password file and its text, if the client reads one.
    secret_file: Option<(PathBuf, String)>,
    args: Vec<String>,
    env: Vec<(String, String)>,
}

fn setup(start: &Start<'_>, dir: &Path, token: &str) -> Result<Setup, LaunchError> {
    let home = dir.display().to_string();
    match start.kind {
        Kind::Postgres => {
            let program =
                find_psql(start.clients.psql.as_deref()).ok_or(LaunchError::NoProgram("psql"))?;
            let passfile = dir.join(".pgpass");
            // No psqlrc, never prompt for a password, no pager (it would
            // be a program to start, which the sandbox refuses). psql
            // finds the server at DIR/.s.PGSQL.5432.
            let mut args: Vec<String> = ["-X", "-w", "-P", "pager=off", "-h", &home]
                .iter()
                .chain(&["-p", "5432", "-U", start.account])
                .map(|s| s.to_string())
                .collect();
            if !start.database.is_empty() {
                args.extend(["-d".to_string(), start.database.to_string()]);
            }
            let env = [
                ("PGPASSFILE", passfile.display().to_string()),
                ("PSQL_HISTORY", format!("{home}/.psql_history")),
                ("PSQL_PAGER", "cat".to_string()),
                ("PSQL_EDITOR", "/bin/false".to_string()),
            ];
            Ok(Setup {
                program,
                socket: dir.join(".s.PGSQL.5432"),
                secret_file: Some((passfile, format!("*:*:*:*:{token}\n"))),
                args,
                env: env.map(|(k, v)| (k.to_string(), v)).to_vec(),
            })
        }
        Kind::Mysql => {
            let program = find_program(start.clients.mysql.as_deref(), "mariadb")
                .or_else(|| find_program(None, "mysql"))
                .ok_or(LaunchError::NoProgram("mariadb"))?;
            let option_file = dir.join("my.cnf");
            let socket = dir.join("mysql.sock");
            // The option file must come first. `--sandbox` refuses the
            // client's own commands that reach the file system or start
            // programs (\! system, source, tee, pager); no auto-rehash,
            // which would send statements of the client's own.
            let mut args = vec![
                format!("--defaults-extra-file={}", option_file.display()),
                "--sandbox".to_string(),
                "--no-auto-rehash".to_string(),
                format!("--socket={}", socket.display()),
                format!("--user={}", start.account),
            ];
            if !start.database.is_empty() {
                args.push(start.database.to_string());
            }
            let env = vec![(
                "MYSQL_HISTFILE".to_string(),
                format!("{home}/.mysql_history"),
            )];
            Ok(Setup {
                program,
                socket,
                secret_file: Some((option_file, format!("[client]\npassword={token}\n"))),
                args,
                env,
            })
        }
        Kind::Redis => {
            let program = find_program(start.clients.redis_cli.as_deref(), "redis-cli")
                .ok_or(LaunchError::NoProgram("redis-cli"))?;
            // No password: the socket is in a directory only the
            // client's sandbox user may enter, and the proxy takes one
            // connection (db::redis). The asset's database is selected
            // by the proxy upstream.
            let socket = dir.join("redis.sock");
            let args = vec!["-s".to_string(), socket.display().to_string()];
            let env = vec![
                (
                    "REDISCLI_HISTFILE".to_string(),
                    format!("{home}/.rediscli_history"),
                ),
                ("REDISCLI_RCFILE".to_string(), "/dev/null".to_string()),
            ];
            Ok(Setup {
                program,
                socket,
                secret_file: None,
                args,
                env,
            })
        }
    }
}

/// Starts the kind's proxy on the client's socket.
fn spawn_proxy(
    kind: Kind,
    listener: tokio::net::UnixListener,
    token: Zeroizing<String>,
    upstream: Upstream,
    audit: Arc<dyn Audit>,
    accepted: Accepted,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let ended = match kind {
            Kind::Postgres => pg::serve(listener, token, upstream, audit, Some(accepted))
                .await
                .map_err(|e| e.to_string()),
            Kind::Mysql => super::mysql::serve(listener, token, upstream, audit, Some(accepted))
                .await
                .map_err(|e| e.to_string()),
            Kind::Redis => super::redis::serve(listener, token, upstream, audit, Some(accepted))
                .await
                .map_err(|e| e.to_string()),
        };
        if let Err(e) = ended {
            tracing::info!(target: "db", "database proxy: {e}");
        }
    })
}

/// Starts the proxy on a socket in a new private directory, then the
/// client in its sandbox.
pub fn start(start: Start<'_>, audit: Arc<dyn Audit>) -> Result<Client, LaunchError> {
    let root = rustix::process::geteuid().is_root();
    let uid =
        root.then(|| SANDBOX_UID_BASE + NEXT_UID.fetch_add(1, Ordering::Relaxed) % SANDBOX_UIDS);
    let dir = PrivateDir::new(start.session_id, uid).map_err(LaunchError::Dir)?;
    let token = Zeroizing::new(hex::encode(rand::random::<[u8; 24]>()));
    let Setup {
        program,
        socket,
        secret_file,
        args,
        env,
    } = setup(&start, &dir.path, &token)?;
    let spent = match secret_file {
        Some((path, text)) => {
            write_private(&path, &text, uid).map_err(LaunchError::Dir)?;
            Some(path)
        }
        None => None,
    };
    let listener = tokio::net::UnixListener::bind(&socket).map_err(LaunchError::Dir)?;
    if let Some(uid) = uid {
        std::os::unix::fs::chown(&socket, Some(uid), Some(uid)).map_err(LaunchError::Dir)?;
    }
    // The password file goes once the proxy has the connection: the client
    // read it before connecting, and the token is spent anyway.
    let accepted: Accepted = Box::new(move || {
        if let Some(spent) = spent
            && let Err(e) = std::fs::remove_file(&spent)
        {
            tracing::warn!("cannot remove {}: {e}", spent.display());
        }
    });
    let proxy = spawn_proxy(start.kind, listener, token, start.upstream, audit, accepted);
    let home = dir.path.display().to_string();
    let mut environment = start.env;
    environment.extend(env);
    environment.extend(
        [
            ("HOME", home.as_str()),
            ("PATH", "/usr/bin:/bin"),
            ("PAGER", "cat"),
            ("EDITOR", "/bin/false"),
            ("VISUAL", "/bin/false"),
            ("SHELL", "/bin/false"),
        ]
        .map(|(k, v)| (k.to_string(), v.to_string())),
    );
    let program = Program {
        path: program,
        args,
        env: environment,
        dir: dir.path.clone(),
        cols: start.cols,
        rows: start.rows,
    };
    let sandbox = Sandbox {
        uid,
        own_network: true,
        no_exec: true,
    };
    let (terminal, output) = match pty::spawn(&program, sandbox) {
        Ok(started) => started,
        Err(e) => {
            proxy.abort();
            return Err(LaunchError::Sandbox(e));
        }
    };
    Ok(Client {
        terminal,
        output,
        proxy,
        _dir: dir,
    })
}

/// The program `name` to run: the configured one, else the first on PATH.
fn find_program(configured: Option<&Path>, name: &str) -> Option<PathBuf> {
    let named = configured.unwrap_or(Path::new(name));
    if named.components().count() > 1 {
        return named.is_file().then(|| named.to_path_buf());
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(named))
        .find(|p| p.is_file())
}

/// The psql to run: the configured one, else the first on PATH. A script
/// (Debian's `pg_wrapper`) would exec the real binary, which the sandbox
/// refuses, so a script is replaced by the newest real binary under
/// `/usr/lib/postgresql`.
fn find_psql(configured: Option<&Path>) -> Option<PathBuf> {
    let found = find_program(configured, "psql")?;
    if !is_script(&found) {
        return Some(found);
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .flatten()
        .filter_map(|e| {
            let version = e.file_name().to_str()?.parse::<u32>().ok()?;
            let psql = e.path().join("bin/psql");
            psql.is_file().then_some((version, psql))
        })
        .collect();
    versions.sort();
    versions.pop().map(|(_, p)| p)
}

fn is_script(path: &Path) -> bool {
    use std::io::Read;
    let mut start = [0u8; 2];
    std::fs::File::open(path)
        .and_then(|mut f| f.read_exact(&mut start))
        .map(|()| &start == b"#!")
        .unwrap_or(false)
}

/// Writes `text` to a new file only its owner may read, owned by `uid`.
fn write_private(path: &Path, text: &str, uid: Option<u32>) -> io::Result<()> {
    use std::io::Write;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(text.as_bytes())?;
    if let Some(uid) = uid {
        std::os::unix::fs::fchown(&file, Some(uid), Some(uid))?;
    }
    Ok(())
}

/// A directory of one session's client: its HOME, the one-time password
/// file and the proxy's socket. Made afresh (never an existing path, so
/// nobody can plant it), 0700 and owned by the sandbox uid; removed with
/// everything in it when dropped.
struct PrivateDir {
    path: PathBuf,
}

impl PrivateDir {
    fn new(session_id: &str, uid: Option<u32>) -> io::Result<PrivateDir> {
        let name = format!(
            "rampart-db-{}-{}",
            session_id.get(..8).unwrap_or(session_id),
            hex::encode(rand::random::<[u8; 8]>())
        );
        let path = std::env::temp_dir().join(name);
        std::fs::DirBuilder::new().mode(0o700).create(&path)?;
        let dir = PrivateDir { path };
        if let Some(uid) = uid {
            std::os::unix::fs::chown(&dir.path, Some(uid), Some(uid))?;
        }
        Ok(dir)
    }
}

impl Drop for PrivateDir {
    fn drop(&mut self) {
        if let Err(e) = std::fs::remove_dir_all(&self.path) {
            tracing::warn!("cannot remove {}: {e}", self.path.display());
        }
    }
}
