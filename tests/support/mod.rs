//! Helpers shared by the integration tests: a temporary bastion data dir
//! driven through the real `rampart` binary, the way a newcomer uses it.

#![allow(dead_code)]

pub mod db;
pub mod desktop;
pub mod mysql;
pub mod peers;
pub mod pg;
pub mod pty;
pub mod rdp;
pub mod redis;
pub mod s3;
pub mod ssh;
pub mod webapp;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// An ed25519 public key line for tests (its private half is not needed:
/// these tests only register keys).
pub const ALICE_KEY: &str =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAILM+rvN+ot98qgEN796jTiQfZfG1KaT0PtFDJ/XFSqti alice@laptop";

/// A self-signed certificate for a test server's TLS: PEM for the server,
/// and its fingerprint as the bastion pins it.
pub struct TestCert {
    pub pem: String,
    pub key: String,
    pub fingerprint: String,
}

impl TestCert {
    pub fn generate() -> TestCert {
        let pair = rcgen::KeyPair::generate().expect("a key pair");
        let names = vec!["localhost".to_string(), "127.0.0.1".to_string()];
        let params = rcgen::CertificateParams::new(names).expect("certificate names");
        let cert = params
            .self_signed(&pair)
            .expect("a self-signed certificate");
        TestCert {
            pem: cert.pem(),
            key: pair.serialize_pem(),
            fingerprint: rampart::upstream::tls::fingerprint(cert.der()),
        }
    }
}

/// A data dir in a temp dir, and the binary run against it.
pub struct Bastion {
    pub dir: tempfile::TempDir,
}

/// What one run of the binary gave.
pub struct Run {
    pub status: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    fn from(out: Output) -> Run {
        Run {
            status: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// Asserts success and returns stdout.
    #[track_caller]
    pub fn ok(self) -> String {
        assert_eq!(self.status, 0, "expected success; stderr: {}", self.stderr);
        self.stdout
    }

    /// Asserts a refusal (exit 1 with exactly one line on stderr) and
    /// returns that line.
    #[track_caller]
    pub fn refused(self) -> String {
        assert_eq!(
            self.status, 1,
            "expected exit 1; stdout: {} stderr: {}",
            self.stdout, self.stderr
        );
        let lines: Vec<&str> = self.stderr.lines().collect();
        assert_eq!(
            lines.len(),
            1,
            "expected one line on stderr, got: {:?}",
            self.stderr
        );
        lines[0].to_string()
    }
}

impl Bastion {
    /// A fresh, uninitialised directory with a config file pointing at it.
    pub fn new() -> Bastion {
        Bastion::with_config("")
    }

    /// Same, with extra config text appended after `data_dir` (and the
    /// database of [`database_config`]).
    pub fn with_config(extra: &str) -> Bastion {
        let dir = tempfile::tempdir().expect("temp dir");
        let config = format!("data_dir = \"data\"\n{}", database_config(extra));
        std::fs::write(dir.path().join("rampart.toml"), config).expect("write config");
        Bastion { dir }
    }

    /// Initialised, with the admin's one-time password discarded.
    pub fn initialised() -> Bastion {
        let b = Bastion::new();
        b.run(&["init"]).ok();
        b
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    pub fn db_path(&self) -> PathBuf {
        self.data_dir().join("rampart.db")
    }

    /// The database, opened beside the running binary (whichever engine
    /// the tests run on): for what only someone with database access does.
    pub async fn db(&self) -> sqlx::AnyPool {
        sqlx::any::install_default_drivers();
        sqlx::AnyPool::connect(&self.db_url())
            .await
            .expect("open the database")
    }

    /// The url of the database this bastion keeps its state in.
    pub fn db_url(&self) -> String {
        let text = std::fs::read_to_string(self.path().join("rampart.toml")).expect("config");
        text.lines()
            .find_map(|l| {
                l.strip_prefix("url = \"")?
                    .strip_suffix('"')
                    .map(str::to_string)
            })
            .unwrap_or_else(|| format!("sqlite://{}", self.db_path().display()))
    }

    /// Points the config at another database.
    pub fn use_database(&self, url: &str) {
        let path = self.path().join("rampart.toml");
        let text = std::fs::read_to_string(&path).expect("config");
        let kept: Vec<&str> = text
            .lines()
            .filter(|l| !l.starts_with("url = ") && *l != "[database]")
            .collect();
        let text = format!("{}\n[database]\nurl = \"{url}\"\n", kept.join("\n"));
        std::fs::write(path, text).expect("write config");
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_rampart"));
        cmd.args(args)
            .current_dir(self.dir.path())
            .env_remove("RAMPART_CONFIG")
            .env_remove("RAMPART_MASTER_KEY")
            .env_remove("RUST_LOG");
        cmd
    }

    pub fn run(&self, args: &[&str]) -> Run {
        self.run_env(args, &[])
    }

    pub fn run_env(&self, args: &[&str], env: &[(&str, &str)]) -> Run {
        let mut cmd = self.command(args);
        for (k, v) in env {
            cmd.env(k, v);
        }
        Run::from(cmd.stdin(Stdio::null()).output().expect("run rampart"))
    }

    /// Runs with `input` on stdin (for --password-stdin).
    pub fn run_stdin(&self, args: &[&str], input: &str) -> Run {
        let mut child = self
            .command(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn rampart");
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(input.as_bytes())
            .expect("write stdin");
        Run::from(child.wait_with_output().expect("wait rampart"))
    }

    /// Every line of `--json` output, parsed.
    pub fn json_lines(&self, args: &[&str]) -> Vec<serde_json::Value> {
        let mut all = args.to_vec();
        all.push("--json");
        self.run(&all)
            .ok()
            .lines()
            .map(|l| serde_json::from_str(l).expect("a JSON line"))
            .collect()
    }
}

/// Every file under a directory, read as bytes (for secret greps).
pub fn all_bytes(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).expect("read dir") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                stack.push(path);
            } else {
                out.push((path.clone(), std::fs::read(&path).unwrap_or_default()));
            }
        }
    }
    out
}

pub fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

/// What someone with write access to the database, but not the master key,
/// can do with the published formula (`SHA-256(prev_hash || canonical row)`):
/// recompute `prev_hash` and `hash` of every row from `from_seq` on, and the
/// head, so that every link checks out without the key.
pub async fn rewrite_chain_unkeyed(pool: &sqlx::AnyPool, from_seq: i64) {
    use rampart::store::audit_log::{CHAINED_TABLES, Value, sealed_rows};
    use sha2::{Digest, Sha256};
    let mut conn = pool.acquire().await.unwrap();
    let mut rows = Vec::new();
    for table in CHAINED_TABLES {
        for fields in sealed_rows(&mut conn, table).await.unwrap() {
            let seq = fields
                .iter()
                .find_map(|(c, v)| match v {
                    Value::Int(n) if c == "seq" => Some(*n),
                    _ => None,
                })
                .unwrap();
            rows.push((seq, *table, fields));
        }
    }
    rows.sort_by_key(|(seq, _, _)| *seq);
    let mut prev = "0".repeat(64);
    for (seq, table, mut fields) in rows {
        let stored = |fields: &Vec<(String, Value)>, column: &str| {
            fields
                .iter()
                .find_map(|(c, v)| match v {
                    Value::Text(s) if c == column => Some(s.clone()),
                    _ => None,
                })
                .unwrap()
        };
        if seq < from_seq {
            prev = stored(&fields, "hash");
            continue;
        }
        for (column, value) in &mut fields {
            if column == "prev_hash" {
                *value = Value::Text(prev.clone());
            }
        }
        let row: std::collections::BTreeMap<&str, &Value> = fields
            .iter()
            .filter(|(c, _)| c != "hash")
            .map(|(c, v)| (c.as_str(), v))
            .collect();
        let canonical = serde_json::json!({ "table": table, "row": row }).to_string();
        let mut h = Sha256::new();
        h.update(prev.as_bytes());
        h.update(canonical.as_bytes());
        let hash = hex::encode(h.finalize());
        let id = stored(&fields, "id");
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "UPDATE {table} SET prev_hash = $1, hash = $2 WHERE id = $3"
        )))
        .bind(&prev)
        .bind(&hash)
        .bind(&id)
        .execute(&mut *conn)
        .await
        .unwrap();
        prev = hash;
    }
    sqlx::query("UPDATE audit_head SET hash = $1 WHERE id = 1")
        .bind(&prev)
        .execute(&mut *conn)
        .await
        .unwrap();
}

/// The server the tests keep their databases on, when they run against
/// PostgreSQL: `RAMPART_TEST_POSTGRES` is `1` (the server at
/// `postgres://postgres@127.0.0.1:5432/postgres`) or an administrator's url.
pub fn postgres() -> Option<String> {
    let value = std::env::var("RAMPART_TEST_POSTGRES").ok()?;
    match value.as_str() {
        "" | "0" => None,
        "1" => Some("postgres://postgres@127.0.0.1:5432/postgres".into()),
        url => Some(url.to_string()),
    }
}

/// A new, empty PostgreSQL database for one test (created with `psql`),
/// as its url; `None` when the tests run on SQLite.
pub fn fresh_postgres_database() -> Option<String> {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    let admin = postgres()?;
    let name = format!(
        "rampart_test_{}_{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    );
    let out = Command::new("psql")
        .args([admin.as_str(), "-q", "-v", "ON_ERROR_STOP=1", "-c"])
        .arg(format!("CREATE DATABASE {name}"))
        .output()
        .expect("run psql (RAMPART_TEST_POSTGRES is set)");
    assert!(
        out.status.success(),
        "psql could not create {name}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (server, _) = admin.rsplit_once('/').expect("a url with a database");
    Some(format!("{server}/{name}"))
}

/// `extra` config text with the test's database added: nothing on SQLite
/// (the data dir's file), a fresh PostgreSQL database when the tests run
/// against PostgreSQL.
pub fn database_config(extra: &str) -> String {
    let Some(url) = fresh_postgres_database() else {
        return extra.to_string();
    };
    let line = format!("url = \"{url}\"\n");
    if extra.contains("[database]\n") {
        extra.replacen("[database]\n", &format!("[database]\n{line}"), 1)
    } else {
        format!("{extra}\n[database]\n{line}")
    }
}

/// Whether the tests run against PostgreSQL; a test of SQLite's own
/// behaviour (its file, its locks) says it is skipped and returns.
pub fn on_postgres(test: &str) -> bool {
    let yes = postgres().is_some();
    if yes {
        eprintln!("{test}: SQLite-only, skipped on PostgreSQL");
    }
    yes
}
