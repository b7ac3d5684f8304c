use std::time::Duration;

use bytes::Bytes;
use tokio::time::timeout;

use super::*;

fn info(id: &str, user: &str) -> SessionInfo {
    SessionInfo {
        id: id.to_string(),
        user: user.to_string(),
        asset: "web1".to_string(),
        account: "root".to_string(),
        protocol: "ssh".to_string(),
        kind: "shell".to_string(),
        source: "192.0.2.7:50022".to_string(),
        started_at: Timestamp::from_second(1_800_000_000).unwrap_or(Timestamp::UNIX_EPOCH),
        cols: 80,
        rows: 24,
    }
}

/// Waits for the next control message, failing the test instead of hanging.
async fn next_control(live: &mut LiveSession) -> Control {
    match timeout(Duration::from_secs(5), live.control()).await {
        Ok(Some(control)) => control,
        Ok(None) => panic!("control messages ended"),
        Err(_) => panic!("no control message within 5 s"),
    }
}

async fn no_control(live: &mut LiveSession) {
    if let Ok(control) = timeout(Duration::from_millis(50), live.control()).await {
        panic!("unexpected control message {control:?}");
    }
}

fn notice_text(control: Control) -> String {
    match control {
        Control::Notice(text) => text,
        other => panic!("expected a notice, got {other:?}"),
    }
}

#[tokio::test]
async fn sessions_are_listed_while_their_handle_lives() {
    let registry = Registry::new();
    let a = registry.register(info("a", "alice"));
    let b = registry.register(info("b", "bob"));
    a.add_in(5);
    a.add_out(1000);
    a.publisher().add_out(24);
    a.resize(132, 43);

    let list = registry.list();
    assert_eq!(list.len(), 2);
    let first = &list[0];
    assert_eq!(first.session.id, "a");
    assert_eq!((first.bytes_in, first.bytes_out), (5, 1024));
    assert_eq!((first.session.cols, first.session.rows), (132, 43));
    assert_eq!(first.killed, None);
    assert_eq!(a.bytes(), (5, 1024));
    assert_eq!(
        registry.get("b").map(|i| i.session.user),
        Some("bob".into())
    );

    drop(b);
    assert!(registry.get("b").is_none());
    assert_eq!(registry.len(), 1);
    drop(a);
    assert!(registry.is_empty());
}

#[tokio::test]
async fn sessions_sharing_an_id_all_stay_killable() {
    let registry = Registry::new();
    let mut first = registry.register(info("a", "alice"));
    let mut second = registry.register(info("a", "mallory"));
    assert_eq!(registry.len(), 2);
    assert!(registry.kill("a", "both", "admin"));
    for live in [&mut first, &mut second] {
        assert!(matches!(next_control(live).await, Control::Kill { .. }));
    }
    drop(second);
    assert_eq!(
        registry.get("a").map(|i| i.session.user),
        Some("alice".into())
    );
    drop(first);
    assert!(registry.is_empty());
}

#[tokio::test]
async fn kill_reaches_the_relay_before_queued_input() {
    let registry = Registry::new();
    let mut live = registry.register(info("a", "alice"));
    let joined = registry.join("a", "root-admin").unwrap();
    assert_eq!(
        notice_text(next_control(&mut live).await),
        "root-admin joined this session"
    );
    // Fill the input queue: the kill must not wait behind it.
    for _ in 0..INPUT_QUEUE {
        joined.send(Bytes::from_static(b"y")).await.unwrap();
    }
    assert!(registry.kill("a", "policy \x1b[2Jrevoked\n", "ops"));
    match next_control(&mut live).await {
        Control::Kill { reason, by } => {
            assert_eq!(reason, "policy  [2Jrevoked");
            assert_eq!(by, "ops");
        }
        other => panic!("expected the kill first, got {other:?}"),
    }
    // A second kill does not replace the reason being shown, nor is the
    // first delivered twice.
    assert!(registry.kill("a", "other", "someone"));
    assert!(matches!(next_control(&mut live).await, Control::Input(_)));
    assert_eq!(
        live.killed(),
        Some(KillOrder {
            reason: "policy  [2Jrevoked".into(),
            by: "ops".into()
        })
    );
    assert_eq!(
        registry.get("a").and_then(|i| i.killed).map(|k| k.by),
        Some("ops".into())
    );
    assert!(!registry.kill("nope", "x", "ops"));
}

#[tokio::test]
async fn a_kill_without_reason_still_tells_the_person_something() {
    let registry = Registry::new();
    let mut live = registry.register(info("a", "alice"));
    registry.kill("a", "  ", "admin");
    match next_control(&mut live).await {
        Control::Kill { reason, .. } => assert_eq!(reason, DEFAULT_KILL_REASON),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn kill_user_ends_only_that_users_sessions() {
    let registry = Registry::new();
    let mut a1 = registry.register(info("a1", "alice"));
    let mut a2 = registry.register(info("a2", "alice"));
    let mut b = registry.register(info("b", "bob"));
    assert_eq!(registry.kill_user("alice", "user disabled", "admin"), 2);
    for live in [&mut a1, &mut a2] {
        assert!(matches!(next_control(live).await, Control::Kill { .. }));
    }
    no_control(&mut b).await;
    assert_eq!(registry.kill_user("carol", "x", "admin"), 0);
}

#[tokio::test]
async fn join_types_into_the_session_and_the_person_is_told() {
    let registry = Registry::new();
    let mut live = registry.register(info("a", "alice"));
    let joined = registry.join("a", "admin").unwrap();
    assert_eq!(joined.session_id(), "a");
    assert_eq!(
        notice_text(next_control(&mut live).await),
        "admin joined this session"
    );
    assert_eq!(
        registry.get("a").map(|i| i.joined),
        Some(vec!["admin".to_string()])
    );

    joined.send(Bytes::from_static(b"uptime\r")).await.unwrap();
    match next_control(&mut live).await {
        Control::Input(bytes) => assert_eq!(&bytes[..], b"uptime\r"),
        other => panic!("{other:?}"),
    }

    drop(joined);
    assert_eq!(
        notice_text(next_control(&mut live).await),
        "admin left this session"
    );
    assert_eq!(registry.get("a").map(|i| i.joined), Some(vec![]));

    let joined = registry.join("a", "admin").unwrap();
    drop(live);
    assert_eq!(
        joined.send(Bytes::from_static(b"x")).await,
        Err(LiveError::NotFound { id: "a".into() })
    );
    assert!(matches!(
        registry.join("a", "admin"),
        Err(LiveError::NotFound { .. })
    ));
}

#[tokio::test]
async fn join_is_refused_when_the_person_cannot_be_told() {
    let registry = Registry::new();
    let _live = registry.register(info("a", "alice"));
    // The relay is not reading: fill its control queue.
    for n in 0..CONTROL_QUEUE {
        assert!(registry.notice("a", &format!("notice {n}")));
    }
    assert!(!registry.notice("a", "one too many"));
    assert_eq!(
        registry.join("a", "admin").err(),
        Some(LiveError::Busy { id: "a".into() })
    );
    assert_eq!(registry.get("a").map(|i| i.joined), Some(vec![]));
}

/// A relay that answers snapshot requests with everything published so far,
/// as a vt100 model of the screen would contain it.
async fn relay(mut live: LiveSession, mut chunks: mpsc::Receiver<&'static [u8]>) {
    let mut screen = Vec::new();
    loop {
        tokio::select! {
            // Output first, so the snapshot always covers frames the monitor
            // has also received: the overlap it must skip.
            biased;
            chunk = chunks.recv() => match chunk {
                Some(chunk) => {
                    screen.extend_from_slice(chunk);
                    live.publish(Bytes::from_static(chunk));
                }
                None => return,
            },
            control = live.control() => match control {
                Some(Control::Snapshot(request)) => request.send(screen.clone()),
                Some(Control::Kill { .. } | Control::Input(_) | Control::Notice(_)) | None => {}
            },
        }
    }
}

async fn next_event(monitor: &mut Monitor) -> MonitorEvent {
    match timeout(Duration::from_secs(5), monitor.next()).await {
        Ok(event) => event,
        Err(_) => panic!("no monitor event within 5 s"),
    }
}

#[tokio::test]
async fn a_monitor_gets_the_screen_then_only_what_follows_it() {
    let registry = Registry::new();
    let live = registry.register(info("a", "alice"));
    let (chunks, rx) = mpsc::channel::<&'static [u8]>(8);
    chunks.send(b"one ").await.unwrap();
    let relay = tokio::spawn(relay(live, rx));

    let mut monitor = registry.subscribe("a").unwrap();
    assert_eq!(monitor.info().session.id, "a");
    chunks.send(b"two ").await.unwrap();
    let screen = timeout(Duration::from_secs(5), monitor.screen())
        .await
        .ok()
        .flatten()
        .unwrap();
    // Whatever the snapshot holds, the stream continues exactly after it.
    let mut seen = screen.contents.clone();
    assert_eq!((screen.cols, screen.rows), (80, 24));
    chunks.send(b"three").await.unwrap();
    while seen != b"one two three" {
        match next_event(&mut monitor).await {
            MonitorEvent::Frame(Frame::Output { bytes, .. }) => seen.extend_from_slice(&bytes),
            other => panic!("{other:?} with {:?} seen", String::from_utf8_lossy(&seen)),
        }
    }
    assert_eq!(registry.get("a").map(|i| i.watchers), Some(1));

    drop(chunks);
    relay.await.unwrap();
    assert_eq!(next_event(&mut monitor).await, MonitorEvent::Ended);
    assert!(monitor.screen().await.is_none());
    assert!(registry.subscribe("a").is_none());
}

#[tokio::test]
async fn a_slow_monitor_lags_and_never_blocks_publishing() {
    let registry = Registry::new();
    let live = registry.register(info("a", "alice"));
    let mut monitor = registry.subscribe("a").unwrap();
    let chunk = Bytes::from(vec![b'x'; 32 * 1024]);
    // Far more than the broadcast holds; publish is synchronous, so getting
    // past this loop at all shows it never waited for the monitor.
    for _ in 0..OUTPUT_FRAMES * 8 {
        live.publish(chunk.clone());
    }
    match next_event(&mut monitor).await {
        MonitorEvent::Lagged(n) => assert_eq!(n, (OUTPUT_FRAMES * 7) as u64),
        other => panic!("{other:?}"),
    }
    live.resize(100, 30);
    let mut last = None;
    for _ in 0..=OUTPUT_FRAMES {
        last = Some(next_event(&mut monitor).await);
    }
    assert_eq!(
        last,
        Some(MonitorEvent::Frame(Frame::Resize {
            seq: (OUTPUT_FRAMES * 8 + 1) as u64,
            cols: 100,
            rows: 30
        }))
    );
}

#[test]
fn live_info_round_trips_as_flat_json() {
    let registry = Registry::new();
    let live = registry.register(info("a", "alice"));
    live.add_out(7);
    let listed = live.info();
    let json = serde_json::to_value(&listed).unwrap();
    assert_eq!(json["user"], "alice");
    assert_eq!(json["kind"], "shell");
    assert_eq!(json["bytes_out"], 7);
    assert_eq!(json["started_at"], "2027-01-15T08:00:00Z");
    let back: LiveInfo = serde_json::from_value(json).unwrap();
    assert_eq!(back, listed);
}

#[test]
fn text_for_a_terminal_is_one_bounded_line() {
    assert_eq!(
        one_line("  killed\r\nby \x1b]0;x\x07 ops "),
        "killed  by  ]0;x  ops"
    );
    assert_eq!(one_line(&"é".repeat(1000)).chars().count(), MAX_LINE);
}

#[tokio::test]
async fn a_presence_is_listed_dismissed_once_and_gone_when_dropped() {
    let registry = Registry::new();
    let mut eve = registry.attend("eve", "u-eve", crate::model::Role::Admin);
    let other = registry.attend("dave", "u-dave", crate::model::Role::User);
    let listed: Vec<(String, u64)> = registry
        .attendees()
        .into_iter()
        .map(|a| (a.user, a.key))
        .collect();
    assert_eq!(
        listed,
        [
            ("eve".to_string(), eve.attendee().key),
            ("dave".to_string(), other.attendee().key)
        ]
    );
    // Not yet: pending.
    assert!(
        tokio::time::timeout(std::time::Duration::from_millis(50), eve.withdrawn())
            .await
            .is_err()
    );
    assert!(registry.dismiss(eve.attendee().key, "eve is disabled\x1b[2J"));
    assert!(registry.dismiss(eve.attendee().key, "a second reason"));
    assert_eq!(eve.withdrawn().await, "eve is disabled [2J");
    // Asked again (a select! loop polls it again): the same reason.
    assert_eq!(eve.withdrawn().await, "eve is disabled [2J");
    let key = eve.attendee().key;
    drop(eve);
    assert!(!registry.dismiss(key, "gone"));
    assert_eq!(registry.attendees().len(), 1);
    drop(other);
    assert!(registry.attendees().is_empty());
}
