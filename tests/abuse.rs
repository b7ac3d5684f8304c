//! Protocol abuse by an unprivileged user (issue 6, "hostile input"): every
//! channel and global request SSH allows that the front door does not offer
//! is refused, leaves an audit row, and the bastion goes on serving.

mod support;

use std::time::Duration;

use rampart::model::{Actions, Role};
use rampart::ops::{Caller, UserSpec};
use rampart::store::audit_log::{Query, RefusalRow};
use rampart::vault::Secret;
use russh::ChannelMsg;
use support::peers::permit;
use support::ssh::{Client, TestBastion};

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
