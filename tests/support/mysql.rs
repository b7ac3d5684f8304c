//! A throwaway MariaDB server for the MySQL proxy's tests, and a raw
//! protocol client for what the mariadb client cannot show (prepared
//! statements, COM_CHANGE_USER).
//!
//! The server lives in a temp dir on a free loopback port with its socket
//! in the same dir and the general query log on (the test reads what the
//! server received). User `app` at 127.0.0.1 and localhost logs in with
//! mysql_native_password and may use database `appdb` only.
//! [`MariaDb::start_tls`] starts one with TLS on and
//! `require_secure_transport` (TCP logins without TLS refused). As root the
//! server runs with `--user=root` (mariadbd refuses root otherwise). A
//! missing MariaDB skips the test with a printed reason, or fails it under
//! RAMPART_REQUIRE_INTEROP=1. The server is killed and its dir removed
//! when dropped.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use bytes::{Buf, BufMut, Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

pub const APP_PASSWORD: &str = "app-Vaulted-5d2c";

/// A program on PATH or in /usr/sbin.
fn program(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/sbin"), PathBuf::from("/usr/bin")])
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

/// mariadbd, mariadb-install-db and the mariadb client, or a skip (a
/// failure when interop is required).
pub fn programs() -> Option<(PathBuf, PathBuf, PathBuf)> {
    match (
        program("mariadbd"),
        program("mariadb-install-db"),
        program("mariadb"),
    ) {
        (Some(server), Some(install), Some(client)) => Some((server, install, client)),
        _ => {
            assert!(
                std::env::var("RAMPART_REQUIRE_INTEROP").as_deref() != Ok("1"),
                "MariaDB (mariadbd, mariadb-install-db) and the mariadb client are required (RAMPART_REQUIRE_INTEROP=1)"
            );
            eprintln!(
                "skipped: MariaDB's mariadbd, mariadb-install-db or mariadb is not installed"
            );
            None
        }
    }
}

/// A running server, killed and removed when dropped.
pub struct MariaDb {
    dir: tempfile::TempDir,
    child: Child,
    pub client: PathBuf,
    pub port: u16,
}

impl MariaDb {
    /// A fresh server with the user and database above, or `None` (skip).
    pub fn start() -> Option<MariaDb> {
        MariaDb::start_with(None)
    }

    /// As [`MariaDb::start`], with TLS on (`cert` and `key` in PEM) and
    /// required of every TCP login.
    pub fn start_tls(cert: &str, key: &str) -> Option<MariaDb> {
        MariaDb::start_with(Some((cert, key)))
    }

    fn start_with(tls: Option<(&str, &str)>) -> Option<MariaDb> {
        let (server, install, client) = programs()?;
        let dir = tempfile::tempdir().expect("temp dir");
        let data = dir.path().join("data");
        // mariadbd refuses to run as root unless told to.
        let root: &[&str] = if rustix::process::geteuid().is_root() {
            &["--user=root"]
        } else {
            &[]
        };
        // Its own tmpdir: servers bootstrapping at once in /tmp clash over
        // their temporary tables.
        let tmp = dir.path().join("tmp");
        std::fs::create_dir(&tmp).expect("tmp dir");
        let tmpdir = format!("--tmpdir={}", tmp.display());
        let out = Command::new(&install)
            .arg("--no-defaults")
            .arg(format!("--datadir={}", data.display()))
            .args(["--auth-root-authentication-method=normal", "--skip-test-db"])
            .arg(&tmpdir)
            .args(root)
            .stdin(Stdio::null())
            .output()
            .expect("run mariadb-install-db");
        assert!(
            out.status.success(),
            "mariadb-install-db failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let port = free_port();
        let log = |name: &str| dir.path().join(name).display().to_string();
        let mut secure = Vec::new();
        if let Some((cert, key)) = tls {
            std::fs::write(dir.path().join("server.crt"), cert).expect("write the certificate");
            std::fs::write(dir.path().join("server.key"), key).expect("write the key");
            secure.push(format!("--ssl-cert={}", log("server.crt")));
            secure.push(format!("--ssl-key={}", log("server.key")));
            secure.push("--require-secure-transport=ON".into());
        }
        let child = Command::new(&server)
            .arg("--no-defaults")
            .arg(format!("--datadir={}", data.display()))
            .arg(format!("--socket={}", log("server.sock")))
            .arg(format!("--port={port}"))
            .args(["--bind-address=127.0.0.1", "--skip-name-resolve"])
            .arg(format!("--pid-file={}", log("server.pid")))
            .arg(format!("--log-error={}", log("error.log")))
            .args(["--general-log=1"])
            .arg(format!("--general-log-file={}", log("general.log")))
            .args([
                "--innodb-buffer-pool-size=16M",
                "--innodb-flush-log-at-trx-commit=0",
            ])
            .args(&secure)
            .args(root)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start mariadbd");
        let server = MariaDb {
            dir,
            child,
            client,
            port,
        };
        server.wait_ready();
        server.admin(&format!(
            "CREATE DATABASE appdb; \
             CREATE USER 'app'@'127.0.0.1' IDENTIFIED VIA mysql_native_password USING PASSWORD('{APP_PASSWORD}'); \
             CREATE USER 'app'@'localhost' IDENTIFIED VIA mysql_native_password USING PASSWORD('{APP_PASSWORD}'); \
             GRANT ALL ON appdb.* TO 'app'@'127.0.0.1'; GRANT ALL ON appdb.* TO 'app'@'localhost'"
        ));
        Some(server)
    }

    fn wait_ready(&self) {
        let started = Instant::now();
        loop {
            let ping = Command::new(&self.client)
                .arg("--no-defaults")
                .arg(format!("--socket={}", self.socket().display()))
                .args(["-u", "root", "-e", "SELECT 1"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
            if ping.is_ok_and(|s| s.success()) {
                return;
            }
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "mariadbd did not start: {}",
                std::fs::read_to_string(self.dir.path().join("error.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// The server's own socket (the proxy's is elsewhere).
    pub fn socket(&self) -> PathBuf {
        self.dir.path().join("server.sock")
    }

    /// Runs SQL as root over the server's own socket; its output in batch
    /// form.
    pub fn admin(&self, sql: &str) -> String {
        let out = Command::new(&self.client)
            .arg("--no-defaults")
            .arg(format!("--socket={}", self.socket().display()))
            .args(["-u", "root", "--batch", "--skip-column-names", "-e", sql])
            .output()
            .expect("mariadb");
        assert!(
            out.status.success(),
            "admin mariadb failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Every statement the server received so far.
    pub fn general_log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("general.log")).unwrap_or_default()
    }
}

impl Drop for MariaDb {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("addr").port()
}

/// A packet as the test builds it.
pub fn packet(seq: u8, payload: &[u8]) -> Vec<u8> {
    let len = u32::try_from(payload.len()).unwrap().to_le_bytes();
    let mut out = vec![len[0], len[1], len[2], seq];
    out.extend_from_slice(payload);
    out
}

/// The classic protocol written by hand, over any stream.
pub struct RawClient<S> {
    stream: S,
    buf: BytesMut,
}

impl<S: AsyncRead + AsyncWrite + Unpin> RawClient<S> {
    pub fn new(stream: S) -> RawClient<S> {
        RawClient {
            stream,
            buf: BytesMut::new(),
        }
    }

    /// The greeting, a response with `password` as mysql_native_password
    /// (computed by the proxy's own function), and the server's answer.
    pub async fn login(&mut self, user: &str, password: &str, database: &str) -> (u8, Bytes) {
        let (_, greeting) = self.read().await.expect("a greeting");
        let greeting = rampart::db::mysql::wire::greeting(greeting).expect("a HandshakeV10");
        let auth = rampart::db::mysql::native_password(password.as_bytes(), &greeting.scramble);
        // PROTOCOL_41, SECURE_CONNECTION, PLUGIN_AUTH, CONNECT_WITH_DB,
        // MULTI_RESULTS, LONG_PASSWORD.
        let caps: u32 = 0x200 | 0x8000 | 0x80000 | 0x8 | 0x20000 | 0x1;
        let mut body = BytesMut::new();
        body.put_u32_le(caps);
        body.put_u32_le(1 << 24);
        body.put_u8(33);
        body.put_bytes(0, 23);
        body.put_slice(user.as_bytes());
        body.put_u8(0);
        body.put_u8(u8::try_from(auth.len()).unwrap());
        body.put_slice(&auth);
        body.put_slice(database.as_bytes());
        body.put_u8(0);
        body.put_slice(b"mysql_native_password\0");
        self.send(&packet(1, &body)).await;
        self.read().await.expect("an answer to the login")
    }

    pub async fn send(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).await.expect("write");
    }

    /// A command: its packet, sequence id 0.
    pub async fn command(&mut self, command: u8, body: &[u8]) {
        let mut payload = vec![command];
        payload.extend_from_slice(body);
        self.send(&packet(0, &payload)).await;
    }

    /// The next packet, or `None` when the other side closed.
    pub async fn read(&mut self) -> Option<(u8, Bytes)> {
        loop {
            if self.buf.len() >= 4 {
                let len = usize::from(self.buf[0])
                    | usize::from(self.buf[1]) << 8
                    | usize::from(self.buf[2]) << 16;
                if self.buf.len() >= 4 + len {
                    let seq = self.buf[3];
                    self.buf.advance(4);
                    return Some((seq, self.buf.split_to(len).freeze()));
                }
            }
            let read =
                tokio::time::timeout(Duration::from_secs(30), self.stream.read_buf(&mut self.buf));
            match read.await.expect("an answer within 30 s") {
                Ok(0) | Err(_) => return None,
                Ok(_) => {}
            }
        }
    }

    /// Packets up to one that is an OK, an ERR or the `eofs`th EOF.
    pub async fn until(&mut self, eofs: usize) -> Vec<(u8, Bytes)> {
        let mut got = Vec::new();
        let mut seen = 0;
        while let Some((seq, payload)) = self.read().await {
            let first = payload.first().copied();
            let eof = first == Some(0xfe) && payload.len() < 9;
            let end = (first == Some(0x00) && got.is_empty()) || first == Some(0xff);
            got.push((seq, payload));
            seen += usize::from(eof);
            if end || (eof && seen == eofs) {
                break;
            }
        }
        got
    }
}

/// An ERR packet's code and message.
pub fn error_of(payload: &[u8]) -> Option<(u16, String)> {
    let rest = payload.strip_prefix(&[0xff])?;
    let code = u16::from_le_bytes([*rest.first()?, *rest.get(1)?]);
    let message = rest.get(2..)?;
    let message = message
        .strip_prefix(b"#")
        .map_or(message, |m| m.get(5..).unwrap_or_default());
    Some((code, String::from_utf8_lossy(message).into_owned()))
}

pub fn path_str(p: &Path) -> &str {
    p.to_str().expect("a UTF-8 temp path")
}
