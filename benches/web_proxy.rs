//! What the web side adds to a page load, and what a web visit costs in
//! memory (issue 18).
//!
//! `cargo bench --bench web_proxy` (release). A bastion with the web side
//! on loopback and the test web app (tests/support/webapp.rs) as web
//! asset `app1` (HTTP Basic injected); then, for a 1 KiB and a 1 MiB page,
//! RAMPART_BENCH_REQUESTS (default 2000 and 200) GETs one after another on
//! one kept-alive connection each way:
//! - direct: plain HTTP to the app;
//! - through the bastion: HTTPS to `app1.web.test` with the visit's
//!   cookie, as a browser, the bastion proxying to the app (every request
//!   logged as a command row);
//!
//! in turn, twice; the medians, their difference and the 99th percentiles
//! are printed. Then 50 more visits are opened (a link each, the login
//! done) and kept: the process's resident memory per visit.

#[path = "../tests/support/mod.rs"]
mod support;

use std::time::{Duration, Instant};

use axum::body::Body;
use http_body_util::BodyExt;
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use support::ssh::{Client, TestBastion};
use support::webapp::WebApp;

const PASSWORD: &str = "bench-Secret-1234";

fn requests(default: usize) -> usize {
    std::env::var("RAMPART_BENCH_REQUESTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

async fn exec(admin: &Client, command: &str) -> String {
    let (out, err, status) = admin.exec(command).await;
    assert_eq!(status, Some(0), "{command}: {err}");
    String::from_utf8_lossy(&out).into_owned()
}

async fn plain(port: u16) -> SendRequest<Body> {
    let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    tcp.set_nodelay(true).unwrap();
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tcp))
        .await
        .unwrap();
    tokio::spawn(conn);
    sender
}

async fn tls(port: u16, host: &str) -> SendRequest<Body> {
    let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    tcp.set_nodelay(true).unwrap();
    let (connector, _) = rampart::upstream::tls::connector();
    let name = rustls::pki_types::ServerName::try_from(host.to_string()).unwrap();
    let stream = connector.connect(name, tcp).await.unwrap();
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(conn);
    sender
}

/// One GET: its status and body length.
async fn get(
    sender: &mut SendRequest<Body>,
    host: &str,
    path: &str,
    cookie: Option<&str>,
) -> (u16, usize, Vec<(String, String)>) {
    let mut req = axum::http::Request::get(path).header("host", host);
    if let Some(cookie) = cookie {
        req = req.header("cookie", cookie);
    }
    sender.ready().await.unwrap();
    let res = sender
        .send_request(req.body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = res.status().as_u16();
    let headers = res
        .headers()
        .iter()
        .map(|(n, v)| (n.to_string(), v.to_str().unwrap_or("").to_string()))
        .collect();
    let body = res.into_body().collect().await.unwrap().to_bytes();
    (status, body.len(), headers)
}

/// Opens a visit from a fresh link: its cookie.
async fn visit(admin: &Client, port: u16, host: &str) -> String {
    let text = exec(admin, "rampart web link app1 --no-qr").await;
    let link = text
        .split_whitespace()
        .find(|w| w.starts_with("https://"))
        .expect("a link");
    let path = &link[link.find("/.rampart/").expect("a link path")..];
    let mut sender = tls(port, host).await;
    let (status, _, headers) = get(&mut sender, &format!("{host}:{port}"), path, None).await;
    assert_eq!(status, 303);
    headers
        .iter()
        .find(|(n, _)| n == "set-cookie")
        .and_then(|(_, v)| v.split(';').next())
        .expect("a cookie")
        .to_string()
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted.get(i).copied().unwrap_or_default()
}

async fn run(
    sender: &mut SendRequest<Body>,
    host: &str,
    path: &str,
    cookie: Option<&str>,
    n: usize,
    size: usize,
) -> Vec<Duration> {
    let mut times = Vec::with_capacity(n);
    for _ in 0..n {
        let start = Instant::now();
        let (status, len, _) = get(sender, host, path, cookie).await;
        times.push(start.elapsed());
        assert_eq!((status, len), (200, size));
    }
    times.sort();
    times
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let app = WebApp::start("admin", PASSWORD, "unused").await;
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let b = TestBastion::start_with(&format!(
        "[http]\nlisten = \"127.0.0.1:{port}\"\ndomain = \"web.test\"\n[log]\nlevel = \"warn\"\n"
    ))
    .await;
    let admin = Client::admin(b.addr).await;
    let app_port = app.addr.port();
    exec(
        &admin,
        &format!(
            "rampart asset add app1 --address 127.0.0.1 --protocol http/{app_port} --url {}/",
            app.url()
        ),
    )
    .await;
    let (_, err, status) = admin
        .exec_stdin(
            "rampart account add app1 admin --password-stdin --web basic",
            format!("{PASSWORD}\n").as_bytes(),
        )
        .await;
    assert_eq!(status, Some(0), "{err}");
    exec(
        &admin,
        "rampart perm add on-app1 --user admin --asset app1 --actions connect",
    )
    .await;
    b.reload().await;

    let host = "app1.web.test";
    let cookie = visit(&admin, port, host).await;
    let mut direct = plain(app_port).await;
    let mut proxied = tls(port, host).await;
    let direct_host = format!("127.0.0.1:{app_port}");
    let proxied_host = format!("{host}:{port}");
    println!("web proxy: GET of a page, one kept-alive connection each, loopback");
    println!(
        "{:>8} {:>6} {:>14} {:>14} {:>10} {:>12} {:>12}",
        "page", "round", "direct med", "bastion med", "added", "direct p99", "bastion p99"
    );
    for (size, n) in [(1024, requests(2000)), (1 << 20, requests(200))] {
        let path = format!("/big?bytes={size}");
        for round in 1..=2 {
            let d = run(&mut direct, &direct_host, &path, None, n, size).await;
            let p = run(&mut proxied, &proxied_host, &path, Some(&cookie), n, size).await;
            let (dm, pm) = (percentile(&d, 0.5), percentile(&p, 0.5));
            println!(
                "{:>8} {:>6} {:>11.3} ms {:>11.3} ms {:>7.3} ms {:>9.3} ms {:>9.3} ms",
                if size == 1024 { "1 KiB" } else { "1 MiB" },
                round,
                dm.as_secs_f64() * 1e3,
                pm.as_secs_f64() * 1e3,
                (pm.as_secs_f64() - dm.as_secs_f64()) * 1e3,
                percentile(&d, 0.99).as_secs_f64() * 1e3,
                percentile(&p, 0.99).as_secs_f64() * 1e3,
            );
        }
    }

    // Memory per visit: 50 more, each logged in and kept.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let before = rss_kib();
    let mut kept = Vec::new();
    for _ in 0..50 {
        let cookie = visit(&admin, port, host).await;
        let mut s = tls(port, host).await;
        let (status, _, _) = get(&mut s, &proxied_host, "/big?bytes=1024", Some(&cookie)).await;
        assert_eq!(status, 200);
        kept.push((cookie, s));
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let after = rss_kib();
    println!(
        "memory: {} KiB resident more for 50 visits, each with one kept-alive browser connection: {:.1} KiB per visit",
        after.saturating_sub(before),
        after.saturating_sub(before) as f64 / 50.0
    );
    drop(kept);
}
