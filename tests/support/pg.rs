//! A throwaway PostgreSQL server for the database proxy's tests, and a raw
//! protocol client for what psql cannot show (pipelining, cancels).
//!
//! The server lives in a temp dir on a free loopback port with
//! `log_statement=all` to a file the test reads; role `app` logs in with
//! SCRAM-SHA-256 and role `legacy` with MD5, each owning nothing but
//! allowed into database `appdb`. [`PgServer::start_tls`] starts one
//! that takes TCP logins over TLS only (`hostssl`), with
//! `log_connections` on. As root the server runs as `nobody`
//! (initdb refuses root), as `tests/with_postgres.sh` does. A missing
//! PostgreSQL or psql skips the test with a printed reason, or fails it
//! under RAMPART_REQUIRE_INTEROP=1.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;

pub const APP_PASSWORD: &str = "app-Vaulted-7f3e";
pub const LEGACY_PASSWORD: &str = "legacy-Vaulted-9c1d";

/// A program on PATH, or in the Debian server package's directory.
fn program(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let mut dirs: Vec<PathBuf> = std::env::split_paths(&path).collect();
    if let Ok(versions) = std::fs::read_dir("/usr/lib/postgresql") {
        let mut found: Vec<PathBuf> = versions.flatten().map(|v| v.path().join("bin")).collect();
        found.sort();
        dirs.extend(found.into_iter().rev());
    }
    dirs.into_iter().map(|d| d.join(name)).find(|p| p.is_file())
}

/// PostgreSQL's programs and psql, or a skip (a failure when interop is
/// required).
pub fn programs() -> Option<(PathBuf, PathBuf, PathBuf)> {
    let found = (program("initdb"), program("pg_ctl"), program("psql"));
    match found {
        (Some(initdb), Some(pg_ctl), Some(psql)) => Some((initdb, pg_ctl, psql)),
        _ => {
            assert!(
                std::env::var("RAMPART_REQUIRE_INTEROP").as_deref() != Ok("1"),
                "PostgreSQL (initdb, pg_ctl) and psql are required (RAMPART_REQUIRE_INTEROP=1)"
            );
            eprintln!("skipped: PostgreSQL's initdb and pg_ctl, or psql, are not installed");
            None
        }
    }
}

/// A running server, stopped and removed when dropped.
pub struct PgServer {
    dir: tempfile::TempDir,
    pg_ctl: PathBuf,
    pub psql: PathBuf,
    pub port: u16,
    root: bool,
}

impl PgServer {
    /// A fresh server with the roles and database above, or `None` (skip).
    pub fn start() -> Option<PgServer> {
        PgServer::start_with(None)
    }

    /// As [`PgServer::start`], with TLS on (`cert` and `key` in PEM) and
    /// required of every TCP login.
    pub fn start_tls(cert: &str, key: &str) -> Option<PgServer> {
        PgServer::start_with(Some((cert, key)))
    }

    fn start_with(tls: Option<(&str, &str)>) -> Option<PgServer> {
        let (initdb, pg_ctl, psql) = programs()?;
        let dir = tempfile::tempdir().expect("temp dir");
        let root = rustix::process::geteuid().is_root();
        if root {
            let chown = Command::new("chown").arg("nobody").arg(dir.path()).status();
            assert!(chown.is_ok_and(|s| s.success()), "chown nobody");
        }
        let port = free_port();
        let server = PgServer {
            dir,
            pg_ctl,
            psql,
            port,
            root,
        };
        let data = server.dir.path().join("data");
        server.run(
            &initdb,
            &[
                "-D",
                path(&data),
                "-A",
                "trust",
                "-U",
                "postgres",
                "--no-sync",
            ],
        );
        // With TLS, `hostssl` only: a TCP login without it finds no line.
        let host = if tls.is_some() { "hostssl" } else { "host" };
        std::fs::write(
            data.join("pg_hba.conf"),
            format!(
                "local all postgres trust\n\
                 {host} all app 127.0.0.1/32 scram-sha-256\n\
                 {host} all legacy 127.0.0.1/32 md5\n"
            ),
        )
        .expect("pg_hba.conf");
        let mut options = format!(
            "-c listen_addresses=127.0.0.1 -p {port} -k {} -c log_statement=all \
             -c fsync=off -c synchronous_commit=off",
            server.dir.path().display()
        );
        if let Some((cert, key)) = tls {
            let (cert_file, key_file) = (data.join("server.crt"), data.join("server.key"));
            server.write_private(&cert_file, cert);
            server.write_private(&key_file, key);
            options.push_str(&format!(
                " -c ssl=on -c ssl_cert_file={} -c ssl_key_file={} -c log_connections=on",
                cert_file.display(),
                key_file.display()
            ));
        }
        let log = server.log_path();
        server.run(
            &server.pg_ctl,
            &[
                "-D",
                path(&data),
                "-l",
                path(&log),
                "-w",
                "-o",
                &options,
                "start",
            ],
        );
        server.admin("SET password_encryption = 'scram-sha-256'; CREATE ROLE app LOGIN PASSWORD 'app-Vaulted-7f3e'");
        server.admin("SET password_encryption = 'md5'; CREATE ROLE legacy LOGIN PASSWORD 'legacy-Vaulted-9c1d'");
        server.admin("CREATE DATABASE appdb OWNER app");
        Some(server)
    }

    /// A file the server reads and no one else may: mode 0600, the
    /// server's user's (PostgreSQL refuses a key others can read).
    fn write_private(&self, file: &Path, text: &str) {
        use std::os::unix::fs::PermissionsExt;
        std::fs::write(file, text).expect("write a server file");
        std::fs::set_permissions(file, std::fs::Permissions::from_mode(0o600)).expect("chmod");
        if self.root {
            let chown = Command::new("chown").arg("nobody").arg(file).status();
            assert!(chown.is_ok_and(|s| s.success()), "chown nobody");
        }
    }

    fn run(&self, program: &Path, args: &[&str]) {
        let mut cmd = if self.root {
            let mut c = Command::new("runuser");
            c.args(["-u", "nobody", "--"]).arg(program);
            c
        } else {
            Command::new(program)
        };
        let out = cmd
            .args(args)
            .current_dir(self.dir.path())
            .stdin(Stdio::null())
            .output()
            .expect("run a PostgreSQL program");
        assert!(
            out.status.success(),
            "{} failed: {}{}",
            program.display(),
            String::from_utf8_lossy(&out.stderr),
            std::fs::read_to_string(self.log_path()).unwrap_or_default()
        );
    }

    /// Runs SQL as the superuser over the server's own socket.
    pub fn admin(&self, sql: &str) -> String {
        self.admin_in("postgres", sql)
    }

    /// Runs SQL as the superuser in `database`.
    pub fn admin_in(&self, database: &str, sql: &str) -> String {
        let out = Command::new(&self.psql)
            .arg("-h")
            .arg(self.dir.path())
            .args([
                "-p",
                &self.port.to_string(),
                "-U",
                "postgres",
                "-d",
                database,
            ])
            .args(["-X", "-q", "-t", "-A", "-v", "ON_ERROR_STOP=1", "-c", sql])
            .env_remove("PGPASSWORD")
            .output()
            .expect("psql");
        assert!(
            out.status.success(),
            "admin psql failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn log_path(&self) -> PathBuf {
        self.dir.path().join("server.log")
    }

    /// The server's log so far: every statement it received.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }
}

impl Drop for PgServer {
    fn drop(&mut self) {
        let data = self.dir.path().join("data");
        let mut cmd = if self.root {
            let mut c = Command::new("runuser");
            c.args(["-u", "nobody", "--"]).arg(&self.pg_ctl);
            c
        } else {
            Command::new(&self.pg_ctl)
        };
        let _ = cmd
            .args(["-D", path(&data), "-m", "immediate", "stop"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

fn path(p: &Path) -> &str {
    p.to_str().expect("a UTF-8 temp path")
}

fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("addr").port()
}

/// A protocol 3.0 client written by hand, over the proxy's Unix socket.
pub struct RawClient {
    stream: UnixStream,
    buf: BytesMut,
    /// BackendKeyData, once logged in.
    pub key: [u8; 8],
}

/// A message as the test builds it: type, then body.
pub fn message(tag: u8, body: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    out.extend_from_slice(&u32::try_from(body.len() + 4).unwrap().to_be_bytes());
    out.extend_from_slice(body);
    out
}

pub fn parse(name: &str, sql: &str) -> Vec<u8> {
    message(b'P', format!("{name}\0{sql}\0\0\0").as_bytes())
}

pub fn bind(portal: &str, statement: &str) -> Vec<u8> {
    message(
        b'B',
        format!("{portal}\0{statement}\0\0\0\0\0\0\0").as_bytes(),
    )
}

pub fn execute(portal: &str) -> Vec<u8> {
    message(b'E', format!("{portal}\0\0\0\0\0").as_bytes())
}

pub fn sync() -> Vec<u8> {
    message(b'S', b"")
}

pub fn query(sql: &str) -> Vec<u8> {
    message(b'Q', format!("{sql}\0").as_bytes())
}

impl RawClient {
    pub async fn connect(socket: &Path) -> RawClient {
        RawClient {
            stream: UnixStream::connect(socket)
                .await
                .expect("connect to the proxy"),
            buf: BytesMut::new(),
            key: [0; 8],
        }
    }

    /// StartupMessage and password; returns the messages up to the first
    /// ReadyForQuery (or the error that ended the login).
    pub async fn login(&mut self, password: &str) -> Vec<(u8, Bytes)> {
        let mut body = BytesMut::new();
        body.put_u32(3 << 16);
        body.put_slice(b"user\0app\0database\0appdb\0\0");
        let mut startup = BytesMut::new();
        startup.put_u32(u32::try_from(body.len() + 4).unwrap());
        startup.put_slice(&body);
        self.send(&startup).await;
        let (tag, body) = self.read().await.expect("an answer to the startup");
        assert_eq!(
            (tag, body.as_ref()),
            (b'R', &[0, 0, 0, 3][..]),
            "cleartext asked"
        );
        self.send(&message(b'p', format!("{password}\0").as_bytes()))
            .await;
        let got = self.until_ready().await;
        if let Some((_, key)) = got.iter().find(|(t, _)| *t == b'K') {
            self.key.copy_from_slice(key);
        }
        got
    }

    pub async fn send(&mut self, bytes: &[u8]) {
        self.stream
            .write_all(bytes)
            .await
            .expect("write to the proxy");
    }

    /// The next message, or `None` when the proxy closed.
    pub async fn read(&mut self) -> Option<(u8, Bytes)> {
        loop {
            if self.buf.len() >= 5 {
                let len = u32::from_be_bytes(self.buf[1..5].try_into().unwrap()) as usize;
                // The type byte, then `len` bytes counting the length itself.
                let whole = len + 1;
                if self.buf.len() >= whole {
                    let tag = self.buf.get_u8();
                    self.buf.advance(4);
                    return Some((tag, self.buf.split_to(len - 4).freeze()));
                }
            }
            let read =
                tokio::time::timeout(Duration::from_secs(30), self.stream.read_buf(&mut self.buf));
            match read.await.expect("the proxy answers within 30 s") {
                Ok(0) | Err(_) => return None,
                Ok(_) => {}
            }
        }
    }

    /// Messages up to and including the next ReadyForQuery (or the end).
    pub async fn until_ready(&mut self) -> Vec<(u8, Bytes)> {
        let mut got = Vec::new();
        while let Some((tag, body)) = self.read().await {
            got.push((tag, body));
            if tag == b'Z' {
                break;
            }
        }
        got
    }
}

/// The types of messages, as a string for assertions (`12DCZ`).
pub fn tags(messages: &[(u8, Bytes)]) -> String {
    messages.iter().map(|(t, _)| char::from(*t)).collect()
}

/// The message field of the first ErrorResponse among `messages`.
pub fn error_text(messages: &[(u8, Bytes)]) -> Option<String> {
    let (_, body) = messages.iter().find(|(t, _)| *t == b'E')?;
    let mut fields = body.split(|b| *b == 0);
    fields.find_map(|f| {
        f.strip_prefix(b"M")
            .map(|m| String::from_utf8_lossy(m).into_owned())
    })
}
