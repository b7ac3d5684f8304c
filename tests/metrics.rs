//! The ops endpoints on `http.metrics_listen` (issue 18, part 1), as a
//! scraper and a load balancer see them: plain HTTP requests over TCP, the
//! metrics read with a Prometheus text-format parser.

mod support;

use std::io::{Read, Write};
use std::time::Duration;

use support::ssh::{Client, TestBastion};

const T: Duration = Duration::from_secs(10);

fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

/// `GET path`: the status code and the body.
async fn get(port: u16, path: &str) -> (u16, String) {
    let path = path.to_string();
    tokio::task::spawn_blocking(move || {
        let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        write!(
            s,
            "GET {path} HTTP/1.1\r\nHost: metrics\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        let mut answer = String::new();
        s.read_to_string(&mut answer).unwrap();
        let status = answer
            .split_whitespace()
            .nth(1)
            .and_then(|c| c.parse().ok())
            .unwrap_or(0);
        let body = answer
            .split_once("\r\n\r\n")
            .map(|(_, b)| b.to_string())
            .unwrap_or_default();
        (status, body)
    })
    .await
    .unwrap()
}

/// The scrape, parsed: each sample's value by its name and labels
/// (`name{a="1",b="2"}`, labels sorted).
async fn scrape(port: u16) -> std::collections::HashMap<String, f64> {
    let (status, body) = get(port, "/metrics").await;
    assert_eq!(status, 200, "{body}");
    let lines = body.lines().map(|l| Ok(l.to_string()));
    let scrape = prometheus_parse::Scrape::parse(lines).expect("a valid scrape");
    let mut samples = std::collections::HashMap::new();
    for s in scrape.samples {
        let mut labels: Vec<String> = s
            .labels
            .iter()
            .map(|(k, v)| format!("{k}=\"{v}\""))
            .collect();
        labels.sort();
        let value = match s.value {
            prometheus_parse::Value::Counter(v)
            | prometheus_parse::Value::Gauge(v)
            | prometheus_parse::Value::Untyped(v) => v,
            prometheus_parse::Value::Histogram(buckets) => {
                buckets.iter().map(|b| b.count).fold(0.0, f64::max)
            }
            prometheus_parse::Value::Summary(_) => continue,
        };
        samples.insert(format!("{}{{{}}}", s.metric, labels.join(",")), value);
    }
    samples
}

fn value(samples: &std::collections::HashMap<String, f64>, key: &str) -> f64 {
    samples.get(key).copied().unwrap_or(0.0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scraper_sees_sessions_logins_and_bytes_move_and_readiness_names_what_fails() {
    let port = free_port();
    // Three failed logins from one address lock it (tried last).
    let mut b = TestBastion::start_with(&format!(
        "[http]\nmetrics_listen = \"127.0.0.1:{port}\"\n[auth]\nmax_failures_per_address = 3\n"
    ))
    .await;

    let (status, body) = get(port, "/healthz").await;
    assert_eq!((status, body.as_str()), (200, "ok\n"));
    let (status, body) = get(port, "/readyz").await;
    assert_eq!((status, body.as_str()), (200, "ready\n"));
    let (status, _) = get(port, "/admin").await;
    assert_eq!(status, 404, "nothing but the three paths");

    let before = scrape(port).await;
    let ssh = "rampart_sessions_started_total{protocol=\"ssh\"}";
    assert_eq!(value(&before, ssh), 0.0);

    // A person opens a shell on the demo target (counted live while it
    // runs), then runs a command; someone else gets the password wrong.
    let c = Client::admin(b.addr).await;
    let mut shell = c.shell(80, 24, Some("demo")).await;
    shell.expect(T, |s| s.contains("demo@demo:~$")).await;
    let live = scrape(port).await;
    assert_eq!(value(&live, "rampart_sessions_live{protocol=\"ssh\"}"), 1.0);
    assert!(value(&live, "rampart_live_relayed_bytes{direction=\"out\"}") > 0.0);
    shell.send(b"exit\r").await;
    assert!(shell.wait_close(T).await);
    let (out, err, status) = c.exec("demo echo counted").await;
    assert_eq!(status, Some(0), "{err}");
    assert!(String::from_utf8_lossy(&out).contains("counted"));
    c.close().await;
    assert!(
        Client::password(b.addr, "admin", "not the password")
            .await
            .is_err()
    );

    // A session's end is counted once its row is closed.
    let started = std::time::Instant::now();
    let after = loop {
        let now = scrape(port).await;
        let ended: f64 = now
            .iter()
            .filter(|(k, _)| k.starts_with("rampart_sessions_ended_total{protocol=\"ssh\""))
            .map(|(_, v)| v)
            .sum();
        if ended >= 2.0 {
            break now;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "no ended session counted: {now:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(value(&after, ssh), 2.0);
    assert_eq!(
        value(&after, "rampart_sessions_live{protocol=\"ssh\"}"),
        0.0
    );
    assert!(
        value(&after, "rampart_relayed_bytes_total{direction=\"out\"}") >= 8.0,
        "{after:?}"
    );
    assert_eq!(
        value(
            &after,
            "rampart_logins_total{method=\"password\",result=\"success\"}"
        ),
        1.0,
        "{after:?}"
    );
    assert_eq!(
        value(
            &after,
            "rampart_logins_total{method=\"password\",result=\"failure\"}"
        ),
        1.0,
        "{after:?}"
    );
    assert_eq!(value(&after, "rampart_target_connect_seconds_count{}"), 2.0);
    assert_eq!(value(&after, "rampart_channel_open_seconds_count{}"), 2.0);
    assert_eq!(value(&after, "rampart_lockouts_total{}"), 0.0);
    assert!(value(&after, "rampart_process_resident_memory_bytes{}") > 1e6);
    assert!(value(&after, "rampart_process_open_files{}") >= 3.0);
    // No secret, user name or address in the text.
    let (_, text) = get(port, "/metrics").await;
    for never in ["admin", "127.0.0.1", "not the password"] {
        assert!(!text.contains(never), "{never} in the metrics");
    }

    // The recording dir turns into a file: not ready, and the reason says
    // which part; back as a dir, ready again.
    let recordings = b.services.config.recording_dir();
    let aside = recordings.with_extension("aside");
    std::fs::rename(&recordings, &aside).unwrap();
    std::fs::write(&recordings, b"not a dir").unwrap();
    let (status, body) = get(port, "/readyz").await;
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("recordings: cannot write in"), "{body}");
    assert!(!body.contains("database:"), "{body}");
    std::fs::remove_file(&recordings).unwrap();
    std::fs::rename(&aside, &recordings).unwrap();
    assert_eq!(get(port, "/readyz").await.0, 200);

    // Two more failures from this address (the third in all) lock it.
    for _ in 0..2 {
        assert!(
            Client::password(b.addr, "nobody-here", "guess")
                .await
                .is_err()
        );
    }
    assert_eq!(value(&scrape(port).await, "rampart_lockouts_total{}"), 1.0);

    b.shutdown().await;
}
