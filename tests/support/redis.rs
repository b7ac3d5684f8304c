//! A throwaway Redis server for the Redis proxy's tests, redis-cli run
//! through the proxy or straight at the server, and a raw RESP client for
//! what redis-cli cannot show (pipelining, the token login).
//!
//! The server listens on a free loopback port with its directory in a temp
//! dir and saves nothing; the `default` user has a `requirepass`, and the
//! ACL user `app` may run every command on every key.
//! [`RedisServer::start_tls`] starts one that speaks TLS only (no plain
//! port). It is killed when dropped. A missing redis-server or redis-cli skips the test with a
//! printed reason, or fails it under RAMPART_REQUIRE_INTEROP=1.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;

pub const APP_PASSWORD: &str = "app-Vaulted-6b2e";
pub const DEFAULT_PASSWORD: &str = "default-Vaulted-41c9";

fn program(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

/// redis-server and redis-cli, or a skip (a failure when interop is
/// required).
pub fn programs() -> Option<(PathBuf, PathBuf)> {
    match (program("redis-server"), program("redis-cli")) {
        (Some(server), Some(cli)) => Some((server, cli)),
        _ => {
            assert!(
                std::env::var("RAMPART_REQUIRE_INTEROP").as_deref() != Ok("1"),
                "redis-server and redis-cli are required (RAMPART_REQUIRE_INTEROP=1)"
            );
            eprintln!("skipped: redis-server or redis-cli is not installed");
            None
        }
    }
}

/// A running server, killed when dropped.
pub struct RedisServer {
    dir: tempfile::TempDir,
    child: Child,
    pub cli: PathBuf,
    pub port: u16,
    /// Whether the port speaks TLS only.
    tls: bool,
}

impl RedisServer {
    /// A fresh server with the users above, or `None` (skip).
    pub fn start() -> Option<RedisServer> {
        RedisServer::start_with(None)
    }

    /// As [`RedisServer::start`], speaking TLS only (`cert` and `key` in
    /// PEM; clients need no certificate).
    pub fn start_tls(cert: &str, key: &str) -> Option<RedisServer> {
        RedisServer::start_with(Some((cert, key)))
    }

    fn start_with(tls: Option<(&str, &str)>) -> Option<RedisServer> {
        let (server, cli) = programs()?;
        let dir = tempfile::tempdir().expect("temp dir");
        let port = free_port().to_string();
        let log = dir.path().join("redis.log");
        let listen: Vec<String> = match tls {
            None => vec!["--port".into(), port.clone()],
            Some((cert, key)) => {
                let (cert_file, key_file) =
                    (dir.path().join("cert.pem"), dir.path().join("key.pem"));
                std::fs::write(&cert_file, cert).expect("write the certificate");
                std::fs::write(&key_file, key).expect("write the key");
                vec![
                    "--port".into(),
                    "0".into(),
                    "--tls-port".into(),
                    port.clone(),
                    "--tls-cert-file".into(),
                    cert_file.display().to_string(),
                    "--tls-key-file".into(),
                    key_file.display().to_string(),
                    "--tls-auth-clients".into(),
                    "no".into(),
                ]
            }
        };
        let child = Command::new(&server)
            .args(&listen)
            .args(["--bind", "127.0.0.1", "--dir"])
            .arg(dir.path())
            .args(["--save", "", "--appendonly", "no", "--daemonize", "no"])
            .args(["--requirepass", DEFAULT_PASSWORD, "--logfile"])
            .arg(&log)
            .args(["--user", "app", "on", &format!(">{APP_PASSWORD}")])
            .args(["~*", "&*", "+@all"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .spawn()
            .expect("run redis-server");
        let mut server = RedisServer {
            dir,
            child,
            cli,
            port: port.parse().expect("a port"),
            tls: tls.is_some(),
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        while server.try_cli(&["PING"]).trim() != "PONG" {
            let exited = server.child.try_wait().expect("redis-server status");
            assert!(
                exited.is_none() && Instant::now() < deadline,
                "redis-server did not start: {}",
                std::fs::read_to_string(&log).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Some(server)
    }

    fn try_cli(&self, args: &[&str]) -> String {
        // The test's own server: its certificate is not checked.
        let tls: &[&str] = if self.tls {
            &["--tls", "--insecure"]
        } else {
            &[]
        };
        let out = Command::new(&self.cli)
            .args(tls)
            .args(["-p", &self.port.to_string(), "--user", "app", "--pass"])
            .args([APP_PASSWORD, "--no-auth-warning"])
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("run redis-cli");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Runs a command straight at the server as `app`, in database `db`;
    /// its raw output.
    pub fn cli(&self, db: u32, args: &[&str]) -> String {
        let mut all = vec!["-n".to_string(), db.to_string()];
        all.extend(args.iter().map(|a| a.to_string()));
        let all: Vec<&str> = all.iter().map(String::as_str).collect();
        self.try_cli(&all)
    }

    /// How often the server ran `command` (from INFO commandstats).
    pub fn calls(&self, command: &str) -> u64 {
        let stats = self.try_cli(&["INFO", "commandstats"]);
        let key = format!("cmdstat_{}:calls=", command.to_lowercase());
        stats
            .lines()
            .find_map(|l| l.strip_prefix(&key))
            .and_then(|rest| rest.split(',').next())
            .map_or(0, |n| n.parse().expect("a count"))
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("addr").port()
}

/// What one run of redis-cli gave.
pub struct Ran {
    pub status: i32,
    pub stdout: String,
    pub stderr: String,
}

/// redis-cli through the proxy's socket, no password (`--no-raw`: replies
/// read as a person sees them). `stdin` holds one command a line.
pub async fn cli_via(cli: &Path, socket: &Path, args: &[&str], stdin: Option<&str>) -> Ran {
    let mut cmd = tokio::process::Command::new(cli);
    cmd.arg("-s")
        .arg(socket)
        .arg("--no-raw")
        .args(args)
        .env_remove("REDISCLI_AUTH")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let mut child = cmd.spawn().expect("run redis-cli");
    let mut input = child.stdin.take().expect("stdin");
    input
        .write_all(stdin.unwrap_or_default().as_bytes())
        .await
        .expect("write redis-cli's input");
    drop(input);
    let out = tokio::time::timeout(Duration::from_secs(60), child.wait_with_output())
        .await
        .expect("redis-cli ends")
        .expect("redis-cli");
    Ran {
        status: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// A command as a client library sends it.
pub fn command(words: &[&str]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", words.len()).into_bytes();
    for w in words {
        out.extend(format!("${}\r\n", w.len()).bytes());
        out.extend(w.bytes());
        out.extend(b"\r\n");
    }
    out
}

/// Where the whole reply at the start of `buf` ends, once all of it came.
fn reply_end(buf: &[u8]) -> Option<usize> {
    let line = buf.windows(2).position(|w| w == b"\r\n")?;
    let head = std::str::from_utf8(&buf[1..line]).ok();
    let after = line + 2;
    let n = || head.and_then(|h| h.parse::<i64>().ok()).unwrap_or(0);
    match buf[0] {
        b'$' | b'=' | b'!' if n() < 0 => Some(after),
        b'$' | b'=' | b'!' => {
            let end = after + n() as usize + 2;
            (buf.len() >= end).then_some(end)
        }
        b'*' | b'~' | b'>' | b'%' => {
            let count = if buf[0] == b'%' { 2 * n() } else { n() };
            let mut at = after;
            for _ in 0..count.max(0) {
                at += reply_end(&buf[at..])?;
            }
            Some(at)
        }
        _ => Some(after),
    }
}

/// A RESP client written by hand, over the proxy's socket.
pub struct RawClient {
    stream: UnixStream,
    buf: Vec<u8>,
}

impl RawClient {
    pub async fn connect(socket: &Path) -> RawClient {
        RawClient::over(UnixStream::connect(socket).await.expect("connect"))
    }

    pub fn over(stream: UnixStream) -> RawClient {
        RawClient {
            stream,
            buf: Vec::new(),
        }
    }

    pub async fn send(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).await.expect("write");
    }

    /// The next whole reply, raw; `None` when the proxy closed.
    pub async fn reply(&mut self) -> Option<String> {
        loop {
            if let Some(end) = (!self.buf.is_empty())
                .then(|| reply_end(&self.buf))
                .flatten()
            {
                let reply: Vec<u8> = self.buf.drain(..end).collect();
                return Some(String::from_utf8_lossy(&reply).into_owned());
            }
            let mut more = vec![0u8; 64 << 10];
            let read = tokio::time::timeout(Duration::from_secs(30), self.stream.read(&mut more));
            match read.await.expect("the proxy answers within 30 s") {
                Ok(0) | Err(_) => return None,
                Ok(n) => self.buf.extend_from_slice(&more[..n]),
            }
        }
    }
}
