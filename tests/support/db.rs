//! What the database tests share: a bastion with one database asset
//! behind a rule, real OpenSSH logged in with a key (in a pty, or as a
//! tunnel), the command log, and the check that a secret is on no disk.

use std::time::Duration;

use super::pty::PtyChild;
use super::ssh::{Client, TestBastion};

const T: Duration = Duration::from_secs(30);

pub use super::ssh::run_ok;

/// A bastion where the admin may use the database at `protocol` on
/// loopback as asset `name` (`--database` as given), account app with
/// `password` vaulted, under a rule `rule` that denies `pattern` on the
/// wire (`--on scope`).
pub struct DatabaseAsset<'a> {
    pub name: &'a str,
    pub protocol: String,
    pub database: &'a str,
    pub password: &'a str,
    pub rule: (&'a str, &'a str, &'a str),
}

pub async fn bastion_with(asset: DatabaseAsset<'_>) -> (TestBastion, Client) {
    let b = TestBastion::start().await;
    let admin = Client::admin(b.addr).await;
    let name = asset.name;
    run_ok(
        &admin,
        &format!(
            "rampart asset add {name} --address 127.0.0.1 --protocol {} --database {}",
            asset.protocol, asset.database
        ),
    )
    .await;
    let (_, err, status) = admin
        .exec_stdin(
            &format!("rampart account add {name} app --password-stdin"),
            format!("{}\n", asset.password).as_bytes(),
        )
        .await;
    assert_eq!(status, Some(0), "{err}");
    run_ok(
        &admin,
        &format!("rampart perm add on-{name} --user admin --asset {name} --actions connect"),
    )
    .await;
    let (rule, pattern, scope) = asset.rule;
    run_ok(
        &admin,
        &format!("rampart filter add {rule} --pattern '{pattern}' --action deny --on {scope}"),
    )
    .await;
    b.reload().await;
    (b, admin)
}

/// Real OpenSSH in a pty, logged in as the admin with a key of its own:
/// `ssh -tt admin@bastion ARGS...`. The key's directory goes with it.
pub async fn openssh(
    b: &TestBastion,
    admin: &Client,
    args: &[&str],
) -> (PtyChild, tempfile::TempDir) {
    let ssh = super::peers::peer("ssh").expect("ssh");
    let keys = tempfile::tempdir().unwrap();
    let (key, public) = super::peers::keypair(keys.path(), "admin");
    run_ok(admin, &format!("rampart me keys add --key '{public}'")).await;
    let mut command = std::process::Command::new(&ssh);
    command
        .args(super::peers::client_options(&key))
        .args(["-p", &b.addr.port().to_string(), "-tt", "admin@127.0.0.1"])
        .args(args);
    (PtyChild::spawn(command, 120, 30), keys)
}

/// The secret is in no file of the bastion's: recordings, database, logs.
pub fn nowhere_on_disk(b: &TestBastion, secret: &str) {
    for (path, bytes) in super::all_bytes(b.dir.path()) {
        assert!(
            !super::contains(&bytes, secret),
            "the secret is in {}",
            path.display()
        );
    }
}

pub async fn commands(b: &TestBastion) -> Vec<(String, String, String)> {
    sqlx::query_as::<_, (String, String, String)>(
        "SELECT command, output, action FROM commands ORDER BY seq",
    )
    .fetch_all(b.services.store.pool())
    .await
    .unwrap()
}

/// The value on the line that starts with `name` (a ticket's fields).
pub fn field(text: &str, name: &str) -> String {
    text.lines()
        .find_map(|l| l.trim().strip_prefix(name).map(|v| v.trim().to_string()))
        .unwrap_or_else(|| panic!("no {name} line in {text}"))
}

/// Real OpenSSH holding `-L LOCAL:ASSET:PORT` open through the bastion as
/// the admin, with a key of its own; killed when dropped.
pub struct Tunnel {
    child: std::process::Child,
    /// The local end, listening.
    pub local: u16,
    /// The admin's private key, for more OpenSSH logins.
    pub key: std::path::PathBuf,
    _keys: tempfile::TempDir,
}

impl Tunnel {
    pub async fn open(b: &TestBastion, admin: &Client, asset: &str, port: u16) -> Tunnel {
        let ssh = super::peers::peer("ssh").expect("ssh");
        let keys = tempfile::tempdir().unwrap();
        let (key, public) = super::peers::keypair(keys.path(), "admin");
        run_ok(admin, &format!("rampart me keys add --key '{public}'")).await;
        let local = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = std::process::Command::new(&ssh)
            .args(super::peers::client_options(&key))
            .args([
                "-p",
                &b.addr.port().to_string(),
                "-N",
                "-o",
                "ExitOnForwardFailure=yes",
            ])
            .arg("-L")
            .arg(format!("{local}:{asset}:{port}"))
            .arg("admin@127.0.0.1")
            .spawn()
            .unwrap();
        let deadline = std::time::Instant::now() + T;
        while std::net::TcpStream::connect(("127.0.0.1", local)).is_err() {
            assert!(
                std::time::Instant::now() < deadline,
                "the tunnel never listened"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Tunnel {
            child,
            local,
            key,
            _keys: keys,
        }
    }
}

impl Drop for Tunnel {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The commands of the bastion's tunnel sessions of `protocol`: text,
/// output and action.
pub async fn tunnel_commands(b: &TestBastion, protocol: &str) -> Vec<(String, String, String)> {
    sqlx::query_as(
        "SELECT c.command, c.output, c.action FROM commands c JOIN sessions s ON s.id = c.session_id
         WHERE s.protocol = $1 AND s.kind = 'tunnel' ORDER BY c.seq",
    )
    .bind(protocol)
    .fetch_all(b.services.store.pool())
    .await
    .unwrap()
}

/// A server with table `keep_me` in appdb, and a bastion where the admin
/// may use it as asset pg1 (account app, password vaulted), with a rule
/// that denies `DROP TABLE` on the wire.
pub async fn postgres() -> Option<(super::pg::PgServer, TestBastion, Client)> {
    let server = tokio::task::spawn_blocking(super::pg::PgServer::start)
        .await
        .unwrap()?;
    server.admin_in(
        "appdb",
        "CREATE TABLE keep_me (id int); INSERT INTO keep_me VALUES (1), (2), (3); ALTER TABLE keep_me OWNER TO app",
    );
    let (b, admin) = bastion_with(DatabaseAsset {
        name: "pg1",
        protocol: format!("postgresql/{}", server.port),
        database: "appdb",
        password: super::pg::APP_PASSWORD,
        rule: ("no-drop", r"(?i)^drop\s+table", "sql"),
    })
    .await;
    Some((server, b, admin))
}

/// A MariaDB server with table `keep_me` (two rows) in appdb, and a
/// bastion where the admin may use it as asset my1 (account app, password
/// vaulted), with a rule that denies `DROP TABLE` on the wire.
pub async fn mariadb() -> Option<(super::mysql::MariaDb, TestBastion, Client)> {
    let server = tokio::task::spawn_blocking(super::mysql::MariaDb::start)
        .await
        .unwrap()?;
    server.admin("CREATE TABLE appdb.keep_me (id int); INSERT INTO appdb.keep_me VALUES (1), (2)");
    let (b, admin) = bastion_with(DatabaseAsset {
        name: "my1",
        protocol: format!("mysql/{}", server.port),
        database: "appdb",
        password: super::mysql::APP_PASSWORD,
        rule: ("no-drop", r"(?i)^drop\s+table", "sql"),
    })
    .await;
    Some((server, b, admin))
}

/// How many of the MariaDB server's connections run a statement that
/// starts with `head` (lower case, as typed).
pub fn running(server: &super::mysql::MariaDb, head: &str) -> String {
    server
        .admin(&format!(
            "SELECT count(*) FROM information_schema.processlist WHERE info LIKE '{head}%'"
        ))
        .trim()
        .to_string()
}
