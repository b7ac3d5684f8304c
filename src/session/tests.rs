//! A toy protocol through the whole life of a session, in process: no
//! network, no SSH. It is what the module docs tell a new protocol to do.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use bytes::Bytes;
use tokio_util::sync::CancellationToken;

use super::*;
use crate::config::Config;
use crate::ops::Caller;
use crate::store::audit_log::Query;

async fn services() -> (tempfile::TempDir, Services) {
    let dir = tempfile::tempdir().expect("temp dir");
    let text = format!("data_dir = \"{}\"\n", dir.path().join("data").display());
    let config = Config::from_toml_str(&text, dir.path().join("rampart.toml")).expect("config");
    let (services, _) = Services::init(config).await.expect("init");
    (dir, services)
}

fn spec(recording: Option<Recording>) -> Spec {
    Spec {
        user_id: "u-alice".into(),
        user_name: "alice".into(),
        asset_id: "a-toy1".into(),
        asset_name: "toy1".into(),
        account: "operator".into(),
        live_account: None,
        protocol: "toy".into(),
        kind: "shell".into(),
        source: IpAddr::V4(Ipv4Addr::new(192, 0, 2, 7)),
        recording,
    }
}

fn recording() -> Recording {
    Recording {
        kind: SessionKind::Shell,
        cols: 80,
        rows: 24,
        term: Some("xterm".into()),
        title: Some("operator@toy1".into()),
        command: None,
    }
}

async fn row(services: &Services, id: &str) -> crate::store::sessions::SessionRow {
    let rows = services
        .ops
        .session_list(&Caller::local(), &Query::default(), false)
        .await
        .expect("sessions");
    rows.into_iter()
        .find(|r| r.id == id)
        .expect("the session row")
}

/// What the bastion asks of the toy's session while it runs.
struct Orders {
    shutdown: CancellationToken,
    allowed: AtomicBool,
}

impl Orders {
    fn new() -> Orders {
        Orders {
            shutdown: CancellationToken::new(),
            allowed: AtomicBool::new(true),
        }
    }
}

/// The toy protocol: it echoes each line it is given, upper-cased, until
/// its input ends (`repeat`: never) or the bastion stops it; that is all a
/// protocol's pump does besides speaking its own wire format.
async fn toy_pump(
    services: &Services,
    session: &Session,
    orders: &Orders,
    input: &[&str],
    repeat: bool,
) -> Outcome {
    let work = async {
        loop {
            for line in input {
                let typed = Bytes::from(format!("{line}\r"));
                session.input(typed).await.expect("recorded");
                let out = Bytes::from(format!("{}\r\n", line.to_uppercase()));
                session.output(out).await.expect("recorded");
                session
                    .marker(format!("line: {line}"))
                    .await
                    .expect("marked");
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            if !repeat {
                return ("client closed".to_string(), Some(0));
            }
        }
    };
    let stopped = session.stopped(services, &orders.shutdown, |_| {
        orders.allowed.load(Ordering::SeqCst)
    });
    let (reason, exit_status) = tokio::select! {
        ended = work => ended,
        stop = stopped => (stop.reason(), None),
    };
    let (bytes_in, bytes_out) = session.bytes();
    Outcome {
        reason,
        exit_status,
        bytes_in,
        bytes_out,
        ..Outcome::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_toy_protocol_is_opened_recorded_listed_killed_and_ended() {
    let (_dir, services) = services().await;
    let live = Registry::new();
    let session = Session::open(&services, &live, spec(Some(recording())))
        .await
        .expect("opened");
    assert!(!session.unrecorded());
    let id = session.id().to_string();

    // Staff see it while it runs, and kill it.
    let listed = live.list();
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(
        (
            listed[0].session.user.as_str(),
            listed[0].session.protocol.as_str()
        ),
        ("alice", "toy")
    );
    let orders = Orders::new();
    let first = toy_pump(&services, &session, &orders, &["hello", "world"], false).await;
    assert_eq!(
        (first.reason.as_str(), first.bytes_in),
        ("client closed", 12)
    );
    // Killed while it runs: the watch stops it within a recheck.
    let killer = async {
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(live.kill(&id, "end of shift", "root"));
    };
    let (outcome, ()) = tokio::join!(
        toy_pump(&services, &session, &orders, &["still typing"], true),
        killer
    );
    assert_eq!(outcome.reason, "killed: end of shift");
    assert!(outcome.bytes_in > 12, "it ran until the kill");
    session.end(&services, outcome).await;
    assert!(live.list().is_empty(), "the live entry is gone");

    // A row with its reason and bytes, a recording with the output, a
    // chain entry, and `audit verify` passes over both.
    let row = row(&services, &id).await;
    assert_eq!(
        (row.status.as_str(), row.reason.as_str()),
        ("closed", "killed: end of shift")
    );
    assert!(row.bytes_in > 12 && row.bytes_out > 14, "{row:?}");
    let dir = services.config.recording_dir();
    let cast = std::fs::read_to_string(dir.join(row.recording.as_deref().expect("recorded")))
        .expect("the cast");
    assert!(
        cast.contains("HELLO\\r\\n")
            && cast.contains("WORLD")
            && cast.contains("STILL TYPING")
            && cast.contains("line: hello"),
        "{cast}"
    );
    assert_eq!(
        row.recording_sha256.as_deref(),
        Some(
            crate::record::file_sha256(dir.join(row.recording.as_deref().unwrap()))
                .unwrap()
                .as_str()
        )
    );
    let mut conn = services.store.conn().await.expect("conn");
    let sealed: Option<String> = sqlx::query_scalar("SELECT hash FROM sessions WHERE id = ?")
        .bind(&id)
        .fetch_one(&mut *conn)
        .await
        .expect("row");
    assert!(sealed.is_some(), "the row's end is in the chain");
    drop(conn);
    let report = services
        .ops
        .audit_verify(&Caller::local(), &services.recordings)
        .await
        .expect("verify");
    assert_eq!(report.broken, None);
    assert!(report.recordings >= 1);
}

/// A permission that ends, or a bastion that shuts down, stops a running
/// session with the reason the row keeps.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_permission_and_a_shutdown_stop_a_running_session() {
    let (_dir, services) = services().await;
    let live = Registry::new();
    for (stop, reason) in [
        ("revoke", "permission ended"),
        ("shutdown", "bastion shutdown"),
    ] {
        let session = Session::open(&services, &live, spec(Some(recording())))
            .await
            .expect("opened");
        let id = session.id().to_string();
        let orders = Orders::new();
        let order = async {
            tokio::time::sleep(Duration::from_millis(50)).await;
            match stop {
                "revoke" => orders.allowed.store(false, Ordering::SeqCst),
                _ => orders.shutdown.cancel(),
            }
        };
        let (outcome, ()) = tokio::join!(
            toy_pump(&services, &session, &orders, &["line"], true),
            order
        );
        assert_eq!(outcome.reason, reason);
        session.end(&services, outcome).await;
        assert_eq!(row(&services, &id).await.reason, reason);
    }
    assert!(live.list().is_empty());
}

/// A protocol that records nothing (a tunnel, SFTP) gets a row and a live
/// entry, and a refusal to audit is a refusal to open.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unrecorded_session_has_a_row_and_one_that_cannot_be_audited_is_refused() {
    let (_dir, services) = services().await;
    let live = Registry::new();
    let session = Session::open(&services, &live, spec(None))
        .await
        .expect("opened");
    assert_eq!(live.list().len(), 1);
    let id = session.id().to_string();
    // Nothing to record: output is still counted and shown to monitors.
    let mut monitor = live.subscribe(&id).expect("monitored");
    session
        .output(Bytes::from_static(b"moved 3 files\r\n"))
        .await
        .expect("an unrecorded session takes output");
    assert_eq!(session.bytes(), (0, 15));
    match monitor.next().await {
        crate::live::MonitorEvent::Frame(crate::live::Frame::Output { bytes, .. }) => {
            assert_eq!(&bytes[..], b"moved 3 files\r\n");
        }
        other => panic!("the monitor sees the output, not {other:?}"),
    }
    let (in_, out) = session.bytes();
    session
        .end(
            &services,
            Outcome {
                reason: "target closed".into(),
                bytes_in: in_,
                bytes_out: out,
                ..Outcome::default()
            },
        )
        .await;
    let row = row(&services, &id).await;
    assert_eq!(
        (row.status.as_str(), row.recording.as_deref(), row.bytes_out),
        ("closed", None, 15)
    );

    // The store refuses writes: nothing opens, nothing is left listed.
    sqlx::query("CREATE TRIGGER no_sessions BEFORE INSERT ON sessions BEGIN SELECT RAISE(ABORT, 'read-only'); END")
        .execute(services.store.pool())
        .await
        .expect("trigger");
    let refused = Session::open(&services, &live, spec(None)).await;
    assert_eq!(refused.err(), Some(Refused::NotAudited));
    assert!(live.list().is_empty());
}
