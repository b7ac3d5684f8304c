//! What the database wire proxies add to a statement's round trip, and
//! what a proxied PostgreSQL connection costs in memory (issue 19). The
//! PostgreSQL part is here; MySQL/MariaDB and Redis follow in
//! `db_proxy/others.rs`.
//!
//! `cargo bench --bench db_proxy` (release). A throwaway PostgreSQL 15 on
//! loopback (as tests/support/pg.rs starts it, so with `log_statement=all`
//! on both paths), then `pgbench -S` (one client, one prepared-free
//! select per transaction) for RAMPART_BENCH_SECONDS (default 10) each:
//! - direct: pgbench to the server's TCP port;
//! - proxy: pgbench to the proxy's Unix socket, the proxy to the same TCP
//!   port, every statement checked by a rule (a regex, as the filters run)
//!   and logged into a queue a task drains, as a session's are;
//!
//! run in turn, twice, each pgbench writing every transaction's latency
//! (`--log`); the medians, their difference (the target: at most 0.3 ms)
//! and the 99th percentiles are printed. Then 50 idle connections held
//! through the proxy show its resident memory per connection.

#[path = "../tests/support/pg.rs"]
mod pg_server;

#[path = "../tests/support/mysql.rs"]
mod mysql_server;

#[path = "../tests/support/redis.rs"]
mod redis_server;

#[path = "db_proxy/others.rs"]
mod others;

use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use futures_util::future::BoxFuture;
use rampart::db::{Audit, Statement, Upstream, Verdict, pg};
use zeroize::Zeroizing;

const TOKEN: &str = "bench-one-time-token";

/// As a session's: a regex per statement, every statement queued for a
/// writer task.
struct Rules {
    deny: regex::Regex,
    log: tokio::sync::mpsc::UnboundedSender<Statement>,
}

impl Audit for Rules {
    fn check<'a>(&'a self, statement: &'a str) -> BoxFuture<'a, Verdict> {
        Box::pin(async move {
            if self.deny.is_match(statement) {
                Verdict::Deny {
                    rule: "no-drop".into(),
                }
            } else {
                Verdict::Allow
            }
        })
    }

    fn logged(&self, statement: Statement) {
        let _ = self.log.send(statement);
    }
}

fn upstream(port: u16) -> Upstream {
    Upstream {
        host: "127.0.0.1".into(),
        port,
        user: "app".into(),
        password: Some(Zeroizing::new(pg_server::APP_PASSWORD.into())),
        database: "appdb".into(),
        connect_timeout: Duration::from_secs(5),
        tls: None,
    }
}

/// Serves every connection on `socket` through the proxy (the bench's
/// pgbench connects more than once; a session's proxy takes one).
async fn proxy(socket: &Path, port: u16) -> tokio::sync::mpsc::UnboundedReceiver<Statement> {
    let listener = tokio::net::UnixListener::bind(socket).expect("bind the proxy socket");
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let audit: Arc<dyn Audit> = Arc::new(Rules {
        deny: regex::Regex::new(r"(?i)^drop\s+table").unwrap(),
        log: tx,
    });
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let audit = audit.clone();
            tokio::spawn(async move {
                let keys = pg::CancelKeys::default();
                let _ = pg::serve_connection(stream, TOKEN, &upstream(port), &*audit, &keys).await;
            });
        }
    });
    rx
}

/// Runs pgbench -S against `host`:`port` for `seconds`; every
/// transaction's latency in microseconds, sorted.
fn pgbench(host: &str, port: u16, password: &str, seconds: u64, dir: &Path) -> Vec<u64> {
    let prefix = dir.join(format!("log-{}", rand::random::<u32>()));
    let out = Command::new("pgbench")
        .args(["-S", "-n", "-c", "1", "-T", &seconds.to_string(), "-l"])
        .arg(format!("--log-prefix={}", prefix.display()))
        .args(["-h", host, "-p", &port.to_string(), "-U", "app", "appdb"])
        .env("PGPASSWORD", password)
        .output()
        .expect("pgbench");
    assert!(
        out.status.success(),
        "pgbench failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut latencies = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if !name.starts_with(prefix.file_name().unwrap().to_str().unwrap()) {
            continue;
        }
        let text = std::fs::read_to_string(entry.path()).unwrap();
        latencies.extend(
            text.lines()
                .filter_map(|l| l.split(' ').nth(2)?.parse::<u64>().ok()),
        );
    }
    latencies.sort_unstable();
    assert!(!latencies.is_empty(), "pgbench logged no transaction");
    latencies
}

fn percentile_ms(sorted: &[u64], p: f64) -> f64 {
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[i] as f64 / 1000.0
}

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse().ok())
        .unwrap_or(0)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    if Command::new("pgbench").arg("--version").output().is_err() {
        eprintln!(
            "db_proxy: pgbench is not installed (apt install postgresql-contrib or postgresql)"
        );
        return;
    }
    let Some(server) = tokio::task::spawn_blocking(pg_server::PgServer::start)
        .await
        .unwrap()
    else {
        return;
    };
    let seconds: u64 = std::env::var("RAMPART_BENCH_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(10);
    let dir = tempfile::tempdir().unwrap();
    let init = Command::new("pgbench")
        .args([
            "-i",
            "-q",
            "-s",
            "1",
            "-h",
            "127.0.0.1",
            "-p",
            &server.port.to_string(),
        ])
        .args(["-U", "app", "appdb"])
        .env("PGPASSWORD", pg_server::APP_PASSWORD)
        .output()
        .expect("pgbench -i");
    assert!(
        init.status.success(),
        "{}",
        String::from_utf8_lossy(&init.stderr)
    );
    let socket_dir = dir.path().join("sock");
    std::fs::create_dir(&socket_dir).unwrap();
    let mut logged = proxy(&socket_dir.join(".s.PGSQL.5432"), server.port).await;
    let drained = tokio::spawn(async move {
        let mut n = 0u64;
        while logged.recv().await.is_some() {
            n += 1;
        }
        n
    });

    println!("pgbench -S, 1 client, {seconds} s per run, PostgreSQL 15 on loopback");
    println!(
        "{:<8} {:>10} {:>10} {:>10}",
        "path", "txns", "median ms", "p99 ms"
    );
    let (mut direct, mut proxied) = (Vec::new(), Vec::new());
    let port = server.port;
    let socket_host = socket_dir.display().to_string();
    for _ in 0..2 {
        let d = dir.path().to_path_buf();
        let run = tokio::task::spawn_blocking(move || {
            pgbench("127.0.0.1", port, pg_server::APP_PASSWORD, seconds, &d)
        });
        let latencies = run.await.unwrap();
        println!(
            "{:<8} {:>10} {:>10.3} {:>10.3}",
            "direct",
            latencies.len(),
            percentile_ms(&latencies, 0.5),
            percentile_ms(&latencies, 0.99)
        );
        direct.extend(latencies);
        let (d, host) = (dir.path().to_path_buf(), socket_host.clone());
        let run = tokio::task::spawn_blocking(move || pgbench(&host, 5432, TOKEN, seconds, &d));
        let latencies = run.await.unwrap();
        println!(
            "{:<8} {:>10} {:>10.3} {:>10.3}",
            "proxy",
            latencies.len(),
            percentile_ms(&latencies, 0.5),
            percentile_ms(&latencies, 0.99)
        );
        proxied.extend(latencies);
    }
    direct.sort_unstable();
    proxied.sort_unstable();
    let added = percentile_ms(&proxied, 0.5) - percentile_ms(&direct, 0.5);
    println!(
        "median added by the proxy: {added:.3} ms (target <= 0.3 ms: {})",
        if added <= 0.3 { "PASS" } else { "FAIL" }
    );

    // Memory: 50 idle connections held through the proxy.
    let before = rss_kib();
    let mut held = Vec::new();
    for _ in 0..50 {
        let mut child = Command::new("psql");
        child
            .args([
                "-X",
                "-q",
                "-h",
                &socket_host,
                "-p",
                "5432",
                "-U",
                "app",
                "appdb",
            ])
            .env("PGPASSWORD", TOKEN)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::null());
        held.push(child.spawn().expect("psql"));
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    let during = rss_kib();
    for mut child in held {
        drop(child.stdin.take());
        let _ = child.wait();
    }
    println!(
        "proxy memory: {:.1} KiB resident per idle connection (50 held: {before} -> {during} KiB)",
        (during.saturating_sub(before)) as f64 / 50.0
    );
    drained.abort();
    drop(server);

    others::mysql(seconds, dir.path()).await;
    others::redis(seconds, dir.path()).await;
}
