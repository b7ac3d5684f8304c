//! A toy protocol through the whole life of a session, in process: no
//! network, no SSH. It is what the module docs tell a new protocol to do.

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use bytes::Bytes;

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

/// The toy protocol: it echoes each line it is given, upper-cased, until
/// its input ends or staff kill it; that is all a protocol's pump does
/// besides speaking its own wire format.
async fn toy_pump(session: &Session, input: &[&str]) -> Outcome {
    let mut bytes_in = 0;
    let mut bytes_out = 0;
    for line in input {
        if let Some(order) = session.live().killed() {
            return Outcome {
                reason: format!("killed: {}", order.reason),
                bytes_in,
                bytes_out,
                ..Outcome::default()
            };
        }
        bytes_in += line.len() as u64;
        session.live().add_in(line.len() as u64);
        let out = Bytes::from(format!("{}\r\n", line.to_uppercase()));
        bytes_out += out.len() as u64;
        session.live().add_out(out.len() as u64);
        session.live().publish(out.clone());
        session.recorder().output(out).await.expect("recorded");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    Outcome {
        reason: "client closed".into(),
        exit_status: Some(0),
        bytes_in,
        bytes_out,
        ..Outcome::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_toy_protocol_is_opened_recorded_listed_killed_and_ended() {
    let (_dir, services) = services().await;
    let live = Registry::new();
    let recording = Recording {
        kind: SessionKind::Shell,
        cols: 80,
        rows: 24,
        term: Some("xterm".into()),
        title: Some("operator@toy1".into()),
        command: None,
    };
    let session = Session::open(&services, &live, spec(Some(recording)))
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
    let first = toy_pump(&session, &["hello", "world"]).await;
    assert_eq!(first.reason, "client closed");
    assert!(live.kill(&id, "end of shift", "root"));
    let outcome = toy_pump(&session, &["never seen"]).await;
    assert_eq!(outcome.reason, "killed: end of shift");
    let outcome = Outcome {
        bytes_in: first.bytes_in,
        bytes_out: first.bytes_out,
        ..outcome
    };
    session.end(&services, outcome).await;
    assert!(live.list().is_empty(), "the live entry is gone");

    // A row with its reason and bytes, a recording with the output, a
    // chain entry, and `audit verify` passes over both.
    let row = row(&services, &id).await;
    assert_eq!(
        (row.status.as_str(), row.reason.as_str()),
        ("closed", "killed: end of shift")
    );
    assert_eq!((row.bytes_in, row.bytes_out), (10, 14));
    let dir = services.config.recording_dir();
    let cast = std::fs::read_to_string(dir.join(row.recording.as_deref().expect("recorded")))
        .expect("the cast");
    assert!(
        cast.contains("HELLO\\r\\n") && cast.contains("WORLD"),
        "{cast}"
    );
    assert!(!cast.contains("NEVER"), "{cast}");
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
        .audit_verify(&Caller::local(), &dir)
        .await
        .expect("verify");
    assert_eq!(report.broken, None);
    assert!(report.recordings >= 1);
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
    session
        .end(
            &services,
            Outcome {
                reason: "target closed".into(),
                ..Outcome::default()
            },
        )
        .await;
    let row = row(&services, &id).await;
    assert_eq!(
        (row.status.as_str(), row.recording.as_deref()),
        ("closed", None)
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
