//! Protocol abuse by an unprivileged user (issue 6, "hostile input"): every
//! channel and global request SSH allows that the front door does not offer
//! is refused, leaves an audit row, and the bastion goes on serving.

mod support;

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use rampart::model::{Actions, Role};
use rampart::ops::{Caller, UserSpec};
use rampart::store::audit_log::{Query, RefusalRow};
use rampart::vault::Secret;
use russh::ChannelMsg;
use support::peers::{permit, user_with_key};
use support::ssh::{AcceptAll, Client, TestBastion, new_key};
use tokio::io::AsyncReadExt;

const PASSWORD: &str = "mallory-password-123";

/// A bastion with `mallory`, a plain user who may connect to `demo` (no
/// tunnel, no admin role).
async fn with_mallory() -> (TestBastion, Client) {
    let b = TestBastion::start().await;
    let ops = b.services.ops.clone();
    let admin = Caller::local();
    ops.user_add(
        &admin,
        UserSpec {
            name: "mallory".into(),
            role: Some(Role::User),
            password: Some(Secret::new(PASSWORD.into())),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    permit(
        &b,
        "mallory-demo",
        "mallory",
        &["demo"],
        Actions::all_but_tunnel(),
    )
    .await;
    b.reload().await;
    let client = Client::password(b.addr, "mallory", PASSWORD)
        .await
        .expect("mallory logs in");
    (b, client)
}

async fn refusals(b: &TestBastion) -> Vec<RefusalRow> {
    b.services
        .ops
        .audit_refusals(
            &Caller::local(),
            &Query {
                user: Some("mallory".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap()
}

/// Waits for the answer to a request that wanted one.
async fn answer(ch: &mut russh::Channel<russh::client::Msg>) -> ChannelMsg {
    loop {
        match tokio::time::timeout(Duration::from_secs(10), ch.wait()).await {
            Ok(Some(msg @ (ChannelMsg::Success | ChannelMsg::Failure))) => return msg,
            Ok(Some(_)) => {}
            Ok(None) => panic!("channel closed instead of answering"),
            Err(_) => panic!("no answer within 10 s"),
        }
    }
}

/// The bastion still serves: a fresh login runs a command on the demo target.
async fn still_serving(b: &TestBastion) {
    let c = Client::password(b.addr, "mallory", PASSWORD)
        .await
        .expect("a new login works");
    let (out, err, code) = c.exec("demo echo alive").await;
    assert_eq!(code, Some(0), "{err}");
    assert!(String::from_utf8_lossy(&out).contains("alive"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn channel_requests_the_front_door_does_not_offer_are_refused_and_logged() {
    let (b, c) = with_mallory().await;

    let mut ch = c.handle.channel_open_session().await.unwrap();
    ch.request_x11(true, false, "MIT-MAGIC-COOKIE-1", "00ff", 0)
        .await
        .unwrap();
    assert!(matches!(answer(&mut ch).await, ChannelMsg::Failure), "x11");
    ch.agent_forward(true).await.unwrap();
    assert!(
        matches!(answer(&mut ch).await, ChannelMsg::Failure),
        "agent"
    );
    ch.set_env(true, "LD_PRELOAD", "/tmp/evil.so")
        .await
        .unwrap();
    assert!(matches!(answer(&mut ch).await, ChannelMsg::Failure), "env");
    ch.set_env(true, "LANG", "C.UTF-8").await.unwrap();
    assert!(
        matches!(answer(&mut ch).await, ChannelMsg::Success),
        "LANG passes"
    );
    // A pty of absurd size and a window change beyond any terminal: clamped,
    // not trusted (a 100000x100000 screen model would be 10^10 cells).
    ch.request_pty(true, "xterm", 100_000, 100_000, 0, 0, &[])
        .await
        .unwrap();
    assert!(matches!(answer(&mut ch).await, ChannelMsg::Success), "pty");
    ch.window_change(u32::MAX, u32::MAX, u32::MAX, u32::MAX)
        .await
        .unwrap();
    ch.signal(russh::Sig::KILL).await.unwrap();
    // A subsystem other than sftp.
    ch.request_subsystem(true, "netconf").await.unwrap();
    let mut text = Vec::new();
    let mut status = None;
    let mut failed = false;
    while let Some(msg) = tokio::time::timeout(Duration::from_secs(10), ch.wait())
        .await
        .expect("the refused subsystem ends the channel")
    {
        match msg {
            ChannelMsg::ExtendedData { data, .. } | ChannelMsg::Data { data } => {
                text.extend_from_slice(&data)
            }
            ChannelMsg::ExitStatus { exit_status } => status = Some(exit_status),
            ChannelMsg::Failure => failed = true,
            ChannelMsg::Close => break,
            _ => {}
        }
    }
    // Refused with a failure reply (not a success and then a close), so
    // nothing started and there is no exit status.
    assert!(failed, "the subsystem request gets a failure reply");
    assert_eq!(status, None);
    let text = String::from_utf8_lossy(&text);
    assert!(text.contains("netconf"), "{text}");

    // A session with a huge pty, resized to the largest size SSH can
    // carry while it runs: the bastion models a clamped screen (an
    // unclamped one would be 4 * 10^9 cells and end the process) and the
    // session goes on.
    let mut ch = c.handle.channel_open_session().await.unwrap();
    ch.request_pty(true, "xterm", 100_000, 100_000, 0, 0, &[])
        .await
        .unwrap();
    ch.exec(true, "demo").await.unwrap();
    let mut seen = Vec::new();
    let mut resized = false;
    let alive = tokio::time::timeout(Duration::from_secs(60), async {
        while let Some(msg) = ch.wait().await {
            if let ChannelMsg::Data { data } = msg {
                seen.extend_from_slice(&data);
                let text = String::from_utf8_lossy(&seen).into_owned();
                if !resized && text.contains('$') {
                    resized = true;
                    seen.clear();
                    ch.window_change(u32::MAX, u32::MAX, 0, 0).await.unwrap();
                    ch.data(&b"echo still-here\r"[..]).await.unwrap();
                } else if resized && text.contains("still-here\r\n") {
                    return true;
                }
            }
        }
        false
    })
    .await;
    assert_eq!(
        alive,
        Ok(true),
        "after the resize: {}",
        String::from_utf8_lossy(&seen)
    );
    ch.data(&b"exit\r"[..]).await.unwrap();

    let rows = refusals(&b).await;
    for request in ["x11-req", "auth-agent-req", "env"] {
        assert!(
            rows.iter().any(|r| r.request == request),
            "no {request} refusal: {rows:#?}"
        );
    }
    assert!(
        rows.iter().any(|r| r.reason.contains("netconf")),
        "no subsystem refusal: {rows:#?}"
    );
    still_serving(&b).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forwarding_requests_are_refused_and_logged() {
    let (b, c) = with_mallory().await;

    // Remote forwarding (ssh -R) and its Unix-socket form.
    assert!(c.handle.tcpip_forward("127.0.0.1", 0).await.is_err());
    assert!(
        c.handle
            .streamlocal_forward("/tmp/rampart-abuse.sock")
            .await
            .is_err()
    );
    // Tunnels without the tunnel action, to an undeclared port, to a host
    // that is no asset, and to a Unix socket on the bastion.
    let demo_port = b.demo.addr.port() as u32;
    for (host, port) in [
        ("demo", demo_port),
        ("demo", 1),
        ("127.0.0.1", b.addr.port() as u32),
    ] {
        assert!(
            c.handle
                .channel_open_direct_tcpip(host, port, "127.0.0.1", 4000)
                .await
                .is_err(),
            "direct-tcpip to {host}:{port}"
        );
    }
    assert!(
        c.handle
            .channel_open_direct_streamlocal("/var/run/docker.sock")
            .await
            .is_err()
    );

    let rows = refusals(&b).await;
    for request in ["tcpip-forward", "streamlocal-forward", "direct-streamlocal"] {
        assert!(
            rows.iter().any(|r| r.request == request),
            "no {request} refusal: {rows:#?}"
        );
    }
    assert_eq!(
        rows.iter().filter(|r| r.request == "direct-tcpip").count(),
        3,
        "{rows:#?}"
    );
    still_serving(&b).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_verbs_are_refused_to_a_plain_user() {
    let (b, c) = with_mallory().await;
    for command in [
        "rampart user add eve --role admin",
        "rampart perm add all --user mallory --node / --actions all,tunnel",
        "rampart user passwd admin",
        "rampart session kill 00000000-0000-0000-0000-000000000000",
        "rampart session approvals",
        "rampart session approve 1",
        "rampart session deny 1",
    ] {
        let (out, err, code) = c.exec(command).await;
        assert_eq!(code, Some(1), "{command}: {err}");
        assert!(
            out.is_empty(),
            "{command}: {}",
            String::from_utf8_lossy(&out)
        );
        assert!(err.contains("role"), "{command}: {err}");
    }
    // Each refusal is an audit row naming the verb (not its arguments).
    let rows = refusals(&b).await;
    for verb in [
        "rampart user add",
        "rampart perm add",
        "rampart user passwd",
        "rampart session kill",
        "rampart session approve",
    ] {
        assert!(
            rows.iter()
                .any(|r| r.request == verb && r.reason.contains("role")),
            "no refusal row for {verb}: {rows:#?}"
        );
    }
    // Nothing changed.
    let users = b.services.ops.user_list(&Caller::local()).await.unwrap();
    assert!(users.iter().all(|u| u.name != "eve"));
    still_serving(&b).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_channels_on_one_connection_are_capped() {
    let (b, c) = with_mallory().await;
    // Channels that never make a request stay open; past the cap each open
    // is refused, quickly, without an audit row each.
    let mut open = Vec::new();
    let mut refused = 0;
    let started = std::time::Instant::now();
    for _ in 0..10_000 {
        match c.handle.channel_open_session().await {
            Ok(ch) => open.push(ch),
            Err(_) => refused += 1,
        }
    }
    assert_eq!(open.len(), rampart::ssh::handler::MAX_SESSIONS);
    assert_eq!(refused, 10_000 - rampart::ssh::handler::MAX_SESSIONS);
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "10k opens took {:?}",
        started.elapsed()
    );
    let rows = refusals(&b).await;
    assert_eq!(
        rows.iter().filter(|r| r.request == "session").count(),
        1,
        "one row for the whole flood: {rows:#?}"
    );
    // Closing channels frees their places.
    for ch in open.drain(..3) {
        ch.close().await.unwrap();
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        match c.handle.channel_open_session().await {
            Ok(ch) => {
                open.push(ch);
                break;
            }
            Err(_) if tokio::time::Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(e) => panic!("a closed channel's place was not given back: {e}"),
        }
    }
    still_serving(&b).await;
}

/// A TCP connection to the bastion from `source` (any 127.0.0.0/8 address
/// is this machine).
async fn tcp_from(source: &str, addr: SocketAddr) -> std::io::Result<tokio::net::TcpStream> {
    let socket = tokio::net::TcpSocket::new_v4()?;
    let source: IpAddr = source.parse().expect("source address");
    socket.bind(SocketAddr::new(source, 0))?;
    socket.connect(addr).await
}

/// What the server sends first on a fresh connection: its SSH version line,
/// or nothing when it closes the connection at once.
async fn greeting(stream: &mut tokio::net::TcpStream) -> String {
    let mut seen = Vec::new();
    let mut buf = [0u8; 256];
    let read = tokio::time::timeout(Duration::from_secs(10), async {
        while !seen.contains(&b'\n') {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => seen.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await;
    assert!(read.is_ok(), "neither a greeting nor a close within 10 s");
    String::from_utf8_lossy(&seen).into_owned()
}

/// Issue 13, item 4: one address flooding wrong passwords got one argon2
/// check per attempt, all at once, each inside a database write lock; a
/// key login from elsewhere took 43 times as long. Now the address gets
/// its share of checks and the rest of its attempts are refused unchecked,
/// while a key login and a session from another address go through.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_password_flood_from_one_address_leaves_other_logins_alone() {
    // Lockout raised out of the way: every attempt would need a check.
    let b =
        TestBastion::start_with("[auth]\nmax_failures = 1000\nmax_failures_per_address = 100000\n")
            .await;
    let (key, public) = new_key("alice");
    user_with_key(&b, "alice", &public).await;
    permit(
        &b,
        "alice-demo",
        "alice",
        &["demo"],
        Actions::all_but_tunnel(),
    )
    .await;
    b.reload().await;

    // More than the source's share of checks and queue, fewer than its cap
    // of connections not logged in.
    let limits = rampart::auth::gate::Limits::default();
    let flooders = ((limits.per_source + limits.per_source_waiting) * 2 + 4)
        .min(rampart::ssh::MAX_UNAUTHENTICATED_PER_SOURCE);
    let stop = Arc::new(AtomicBool::new(false));
    let attempts = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for i in 0..flooders {
        let (stop, attempts, addr) = (stop.clone(), attempts.clone(), b.addr);
        tasks.push(tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                let Ok(stream) = tcp_from("127.0.0.2", addr).await else {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                };
                let config = Arc::new(russh::client::Config::default());
                let Ok(mut handle) = russh::client::connect_stream(config, stream, AcceptAll).await
                else {
                    continue;
                };
                while !stop.load(Ordering::Relaxed) {
                    attempts.fetch_add(1, Ordering::Relaxed);
                    match handle
                        .authenticate_password(format!("spray{i}"), "Winter2026!")
                        .await
                    {
                        Ok(r) if !r.success() => {}
                        _ => break,
                    }
                }
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;

    let login = tokio::time::timeout(Duration::from_secs(60), async {
        let c = Client::key(b.addr, "alice", &key)
            .await
            .expect("alice logs in");
        c.exec("demo echo ok").await
    })
    .await
    .expect("alice's login and command within 60 s under the flood");
    assert_eq!(login.2, Some(0), "{}", login.1);

    stop.store(true, Ordering::Relaxed);
    for t in tasks {
        let _ = tokio::time::timeout(Duration::from_secs(30), t).await;
    }
    // Every attempt the server took in has been answered and written.
    let gate = b.shared.authenticator.gate();
    let flooder: IpAddr = "127.0.0.2".parse().unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while gate.in_flight(flooder) > 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "checks still in flight"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let attempts = attempts.load(Ordering::Relaxed);
    let checks = gate.checks_started();
    let rows = b
        .services
        .ops
        .audit_logins(&Caller::local(), &Query::default())
        .await
        .unwrap();
    let flood: Vec<_> = rows.iter().filter(|r| r.source == "127.0.0.2").collect();
    let failed = flood.iter().filter(|r| r.result == "failed").count();
    let unchecked = flood
        .iter()
        .filter(|r| r.result == "denied" && r.reason.contains("not checked"))
        .count();
    assert!(
        unchecked > 0,
        "every one of {attempts} attempts was checked"
    );
    // Every check is a failed proof with its row; nothing else was hashed.
    assert_eq!(
        checks as usize, failed,
        "{checks} checks, {failed} failed rows"
    );
    assert!(
        rows.iter()
            .any(|r| r.user == "alice" && r.result == "ok" && r.source == "127.0.0.1"),
        "alice's login row"
    );
    still_serving_alice(&b, &key).await;
}

async fn still_serving_alice(b: &TestBastion, key: &russh::keys::PrivateKey) {
    let c = Client::key(b.addr, "alice", key)
        .await
        .expect("a new login works");
    let (_, err, code) = c.exec("demo echo ok").await;
    assert_eq!(code, Some(0), "{err}");
}

/// Issue 13, item 4: connections that have not logged in are capped per
/// source address: past the cap the bastion closes a new connection before
/// its SSH greeting (no key exchange, no buffers), other addresses are
/// served, and a place comes back when one of those connections ends.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_not_logged_in_are_capped_per_source() {
    let b = TestBastion::start().await;
    let cap = rampart::ssh::MAX_UNAUTHENTICATED_PER_SOURCE;
    let mut held = Vec::new();
    for i in 0..cap {
        let mut s = tcp_from("127.0.0.2", b.addr).await.expect("connect");
        let hello = greeting(&mut s).await;
        assert!(hello.starts_with("SSH-2.0-"), "connection {i}: {hello:?}");
        held.push(s);
    }
    let mut over = tcp_from("127.0.0.2", b.addr).await.expect("connect");
    assert_eq!(greeting(&mut over).await, "", "connection {cap} was served");

    // Another address is served, and logs in.
    let mut other = tcp_from("127.0.0.3", b.addr).await.expect("connect");
    assert!(greeting(&mut other).await.starts_with("SSH-2.0-"));
    Client::admin(b.addr).await;

    // A connection that ends gives its place back.
    drop(held.pop());
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let mut s = tcp_from("127.0.0.2", b.addr).await.expect("connect");
        if greeting(&mut s).await.starts_with("SSH-2.0-") {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the closed connection's place was not given back"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Polls `cond` every 10 ms for up to `limit`; whether it held.
async fn becomes(limit: Duration, cond: impl Fn() -> bool) -> bool {
    let until = tokio::time::Instant::now() + limit;
    while tokio::time::Instant::now() < until {
        if cond() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    cond()
}

/// Streams give way to logins in progress (`rampart::live::arrivals`). A
/// stranger's connection never counts as one, however far its handshake
/// gets; a person's login counts from their authentication until their
/// session shows output.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_a_person_who_logged_in_counts_as_arriving_until_their_session_shows_output() {
    use rampart::live::arrivals::AT_MOST;
    let (b, mallory) = with_mallory().await;
    let arrivals = b.services.arrivals.clone();
    mallory.close().await;
    // Mallory's own login is done with: it showed no output, so it counts
    // until it closed (or AT_MOST passed).
    assert!(
        becomes(AT_MOST + Duration::from_secs(3), || !arrivals.any()).await,
        "a closed connection still counted as logging in"
    );

    let mut stranger = tcp_from("127.0.0.5", b.addr).await.unwrap();
    assert!(greeting(&mut stranger).await.starts_with("SSH-2.0-"));
    let refused = Client::password(b.addr, "mallory", "not-the-password").await;
    assert!(refused.is_err());
    assert!(
        !becomes(Duration::from_millis(500), || arrivals.any()).await,
        "a connection that did not log in counted as a login in progress"
    );
    drop(stranger);

    let c = Client::password(b.addr, "mallory", PASSWORD)
        .await
        .expect("mallory logs in");
    assert!(arrivals.any(), "logged in, with no session yet");
    let (out, err, code) = c.exec("demo echo arrived").await;
    assert_eq!(code, Some(0), "{err}");
    assert!(String::from_utf8_lossy(&out).contains("arrived"));
    assert!(
        !arrivals.any(),
        "the session showed output, and the login still counted"
    );
    c.close().await;
    still_serving(&b).await;
}
