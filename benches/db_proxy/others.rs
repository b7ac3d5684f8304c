//! The MySQL/MariaDB and Redis halves of the bench: what each proxy adds
//! to a statement's round trip, against the same server straight, in
//! one run.
//!
//! - MySQL: a loop of the classic protocol by hand (the tests' raw
//!   client), one primary-key SELECT per round trip, each timed, for the
//!   given seconds; direct over TCP with the vaulted password, through the
//!   proxy's Unix socket with its one-time password (the proxy then over
//!   TCP to the same server). mysqlslap reports only averages, hence the
//!   loop.
//! - Redis: `redis-benchmark -t get -c 1 --csv` (its p50 at a precision
//!   of 3), direct over TCP as user app, through the proxy's Unix socket.
//!
//! Both proxies check every statement against a regex and queue it for a
//! writer, as a session's do.

use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rampart::db::{Audit, Statement, Upstream, mysql, redis};
use zeroize::Zeroizing;

use super::{Rules, TOKEN, mysql_server, percentile_ms, redis_server};

fn audit() -> (Arc<dyn Audit>, tokio::task::JoinHandle<u64>) {
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Statement>();
    let drained = tokio::spawn(async move {
        let mut n = 0u64;
        while rx.recv().await.is_some() {
            n += 1;
        }
        n
    });
    let rules = Rules {
        deny: regex::Regex::new(r"(?i)^(drop\s+table|flushall)").unwrap(),
        log: tx,
    };
    (Arc::new(rules), drained)
}

fn upstream(port: u16, user: &str, password: &str, database: &str) -> Upstream {
    Upstream {
        host: "127.0.0.1".into(),
        port,
        user: user.into(),
        password: Some(Zeroizing::new(password.into())),
        database: database.into(),
        connect_timeout: Duration::from_secs(5),
        tls: None,
    }
}

/// Round trips of one SELECT for `seconds` on a logged-in connection;
/// each one's time in microseconds.
async fn select_loop<S>(client: &mut mysql_server::RawClient<S>, seconds: u64) -> Vec<u64>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let end = Instant::now() + Duration::from_secs(seconds);
    let mut latencies = Vec::new();
    while Instant::now() < end {
        let start = Instant::now();
        client
            .command(0x03, b"SELECT n FROM appdb.bench WHERE id = 1")
            .await;
        let answer = client.until(2).await;
        latencies.push(start.elapsed().as_micros() as u64);
        assert!(
            answer.last().is_some_and(|(_, p)| p.first() == Some(&0xfe)),
            "a result set"
        );
    }
    latencies.sort_unstable();
    latencies
}

pub async fn mysql(seconds: u64, dir: &Path) {
    let Some(server) = tokio::task::spawn_blocking(mysql_server::MariaDb::start)
        .await
        .unwrap()
    else {
        return;
    };
    server.admin("CREATE TABLE appdb.bench (id int primary key, n int); INSERT INTO appdb.bench VALUES (1, 42)");
    let socket = dir.join("mysql.sock");
    let listener = tokio::net::UnixListener::bind(&socket).unwrap();
    let (audit, drained) = audit();
    let port = server.port;
    let serving = tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let audit = audit.clone();
            tokio::spawn(async move {
                let upstream = upstream(port, "app", mysql_server::APP_PASSWORD, "appdb");
                let _ = mysql::serve_connection(stream, TOKEN, &upstream, &*audit).await;
            });
        }
    });
    println!();
    println!("MariaDB: one primary-key SELECT per round trip, {seconds} s per run, on loopback");
    println!(
        "{:<8} {:>10} {:>10} {:>10}",
        "path", "queries", "median ms", "p99 ms"
    );
    let (mut direct, mut proxied) = (Vec::new(), Vec::new());
    for _ in 0..2 {
        let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .unwrap();
        let mut client = mysql_server::RawClient::new(tcp);
        let (_, ok) = client
            .login("app", mysql_server::APP_PASSWORD, "appdb")
            .await;
        assert_eq!(ok.first(), Some(&0), "the direct login");
        let latencies = select_loop(&mut client, seconds).await;
        row("direct", &latencies);
        direct.extend(latencies);
        let unix = tokio::net::UnixStream::connect(&socket).await.unwrap();
        let mut client = mysql_server::RawClient::new(unix);
        let (_, ok) = client.login("app", TOKEN, "appdb").await;
        assert_eq!(ok.first(), Some(&0), "the proxy's login");
        let latencies = select_loop(&mut client, seconds).await;
        row("proxy", &latencies);
        proxied.extend(latencies);
    }
    verdict(&mut direct, &mut proxied);
    serving.abort();
    drained.abort();
}

/// Runs redis-benchmark GET with one client for about `seconds`; its p50
/// in milliseconds and the requests it made.
fn redis_benchmark(target: &[&str], requests: u64) -> (f64, u64) {
    let out = Command::new("redis-benchmark")
        .args(target)
        .args(["-t", "get", "-c", "1", "-n", &requests.to_string()])
        .args(["--csv", "--precision", "3"])
        .output()
        .expect("redis-benchmark");
    let text = String::from_utf8_lossy(&out.stdout);
    // "test","rps","avg_latency_ms","min_latency_ms","p50_latency_ms",...
    let p50 = text
        .lines()
        .find(|l| l.starts_with("\"GET\""))
        .and_then(|l| l.split(',').nth(4))
        .and_then(|v| v.trim_matches('"').parse().ok())
        .unwrap_or_else(|| {
            panic!(
                "no GET line from redis-benchmark: {text} {}",
                String::from_utf8_lossy(&out.stderr)
            )
        });
    (p50, requests)
}

pub async fn redis(seconds: u64, dir: &Path) {
    if Command::new("redis-benchmark")
        .arg("--version")
        .output()
        .is_err()
    {
        println!("redis: redis-benchmark is not installed (apt install redis-tools)");
        return;
    }
    let Some(server) = tokio::task::spawn_blocking(redis_server::RedisServer::start)
        .await
        .unwrap()
    else {
        return;
    };
    let socket = dir.join("redis.sock");
    let listener = tokio::net::UnixListener::bind(&socket).unwrap();
    let (audit, drained) = audit();
    let port = server.port;
    let serving = tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let audit = audit.clone();
            tokio::spawn(async move {
                let upstream = upstream(port, "app", redis_server::APP_PASSWORD, "");
                let _ = redis::serve_connection(stream, None, &upstream, &*audit).await;
            });
        }
    });
    // About `seconds` per run at loopback speed (~20k GETs a second).
    let requests = seconds * 15_000;
    let port_text = port.to_string();
    let socket_text = socket.display().to_string();
    println!();
    println!("Redis: redis-benchmark GET, 1 client, {requests} requests per run, on loopback");
    println!("{:<8} {:>10} {:>10}", "path", "requests", "p50 ms");
    let (mut direct, mut proxied) = (Vec::new(), Vec::new());
    for _ in 0..2 {
        let target = [
            "-h",
            "127.0.0.1",
            "-p",
            &port_text,
            "--user",
            "app",
            "-a",
            redis_server::APP_PASSWORD,
        ];
        let owned: Vec<String> = target.iter().map(|s| s.to_string()).collect();
        let (p50, n) = tokio::task::spawn_blocking(move || {
            let target: Vec<&str> = owned.iter().map(String::as_str).collect();
            redis_benchmark(&target, requests)
        })
        .await
        .unwrap();
        println!("{:<8} {:>10} {:>10.3}", "direct", n, p50);
        direct.push(p50);
        let socket = socket_text.clone();
        let (p50, n) =
            tokio::task::spawn_blocking(move || redis_benchmark(&["-s", &socket], requests))
                .await
                .unwrap();
        println!("{:<8} {:>10} {:>10.3}", "proxy", n, p50);
        proxied.push(p50);
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        (v[0] + v[v.len() - 1]) / 2.0
    };
    let added = median(&mut proxied) - median(&mut direct);
    println!(
        "p50 added by the proxy (mean of the two runs' p50s): {added:.3} ms (target <= 0.3 ms: {})",
        if added <= 0.3 { "PASS" } else { "FAIL" }
    );
    serving.abort();
    drained.abort();
}

fn row(path: &str, latencies: &[u64]) {
    println!(
        "{:<8} {:>10} {:>10.3} {:>10.3}",
        path,
        latencies.len(),
        percentile_ms(latencies, 0.5),
        percentile_ms(latencies, 0.99)
    );
}

fn verdict(direct: &mut [u64], proxied: &mut [u64]) {
    direct.sort_unstable();
    proxied.sort_unstable();
    let added = percentile_ms(proxied, 0.5) - percentile_ms(direct, 0.5);
    println!(
        "median added by the proxy: {added:.3} ms (target <= 0.3 ms: {})",
        if added <= 0.3 { "PASS" } else { "FAIL" }
    );
}
