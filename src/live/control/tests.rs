use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use jiff::Timestamp;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::UnixStream;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio::time::timeout;

use super::*;
use crate::live::{Control, DEFAULT_KILL_REASON, LiveSession, Registry, SessionInfo};

fn info(id: &str, user: &str) -> SessionInfo {
    SessionInfo {
        id: id.to_string(),
        user: user.to_string(),
        asset: "web1".to_string(),
        account: "root".to_string(),
        protocol: "ssh".to_string(),
        kind: "shell".to_string(),
        source: "192.0.2.7:50022".to_string(),
        started_at: Timestamp::UNIX_EPOCH,
        cols: 80,
        rows: 24,
    }
}

struct Server {
    stop: oneshot::Sender<()>,
    task: JoinHandle<Result<(), ControlError>>,
    reloads: mpsc::Receiver<()>,
}

async fn start(path: &Path, registry: &Registry) -> Server {
    let server = ControlServer::bind(path).await.unwrap();
    let (reload, reloads) = mpsc::channel(1);
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(server.serve(registry.clone(), reload, async move {
        let _ = stopped.await;
    }));
    Server {
        stop,
        task,
        reloads,
    }
}

impl Server {
    async fn stop(self) {
        let _ = self.stop.send(());
        let result = timeout(Duration::from_secs(5), self.task).await;
        assert!(matches!(result, Ok(Ok(Ok(())))), "{result:?}");
    }
}

fn socket_in(dir: &tempfile::TempDir) -> PathBuf {
    socket_path(dir.path())
}

/// One request line written by hand, the answer line as received.
async fn raw(path: &Path, line: &str) -> String {
    let mut stream = UnixStream::connect(path).await.unwrap();
    stream.write_all(line.as_bytes()).await.unwrap();
    let mut answer = String::new();
    timeout(
        Duration::from_secs(5),
        BufReader::new(stream).read_line(&mut answer),
    )
    .await
    .unwrap()
    .unwrap();
    answer
}

async fn kill_reason(live: &mut LiveSession) -> String {
    match timeout(Duration::from_secs(5), live.control()).await {
        Ok(Some(Control::Kill { reason, .. })) => reason,
        other => panic!("expected a kill, got {other:?}"),
    }
}

#[tokio::test]
async fn list_kill_and_reload_round_trip_over_a_real_socket() {
    let dir = tempfile::tempdir().unwrap();
    let path = socket_in(&dir);
    let registry = Registry::new();
    let mut s1 = registry.register(info("s1", "alice"));
    let mut s2 = registry.register(info("s2", "alice"));
    let mut s3 = registry.register(info("s3", "bob"));
    s1.add_out(42);
    let mut server = start(&path, &registry).await;

    let sessions = list(&path).await.unwrap();
    let ids: Vec<&str> = sessions.iter().map(|s| s.session.id.as_str()).collect();
    assert_eq!(ids, ["s1", "s2", "s3"]);
    assert_eq!(sessions[0].bytes_out, 42);

    assert!(
        kill(&path, "s1", "maintenance window", "admin")
            .await
            .unwrap()
    );
    assert_eq!(kill_reason(&mut s1).await, "maintenance window");
    assert!(!kill(&path, "nope", "x", "admin").await.unwrap());

    assert_eq!(
        kill_user(&path, "alice", "user disabled", "admin")
            .await
            .unwrap(),
        2
    );
    assert_eq!(kill_reason(&mut s2).await, "user disabled");

    // The wire format, as another client would write it; the reason may be
    // left out.
    assert_eq!(
        raw(&path, "{\"op\":\"kill\",\"id\":\"s3\",\"by\":\"admin\"}\n").await,
        "{\"result\":\"killed\",\"count\":1}\n"
    );
    assert_eq!(kill_reason(&mut s3).await, DEFAULT_KILL_REASON);

    reload(&path).await.unwrap();
    // A reload already pending absorbs another one.
    reload(&path).await.unwrap();
    assert_eq!(server.reloads.recv().await, Some(()));
    assert!(server.reloads.try_recv().is_err());

    server.stop().await;
    assert!(!path.exists(), "socket left behind at shutdown");
    let error = list(&path).await.unwrap_err();
    assert!(
        matches!(error, ControlError::NotRunning { .. }),
        "{error:?}"
    );
    assert_eq!(
        error.to_string(),
        format!("no running rampart server at {}", path.display())
    );
}

#[tokio::test]
async fn the_socket_is_private_to_its_owner() {
    let dir = tempfile::tempdir().unwrap();
    let path = socket_in(&dir);
    let server = start(&path, &Registry::new()).await;
    let mode = std::fs::metadata(&path).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "mode {mode:o}");
    server.stop().await;
}

#[tokio::test]
async fn a_stale_socket_from_a_crashed_server_is_replaced() {
    let dir = tempfile::tempdir().unwrap();
    let path = socket_in(&dir);
    // A listener that is dropped leaves its file behind, like a crash.
    drop(std::os::unix::net::UnixListener::bind(&path).unwrap());
    assert!(path.exists());
    let error = list(&path).await.unwrap_err();
    assert!(
        matches!(error, ControlError::NotRunning { .. }),
        "{error:?}"
    );

    let registry = Registry::new();
    let _live = registry.register(info("s1", "alice"));
    let server = start(&path, &registry).await;
    assert_eq!(list(&path).await.unwrap().len(), 1);
    server.stop().await;
}

#[tokio::test]
async fn a_second_server_is_refused_and_the_first_keeps_serving() {
    let dir = tempfile::tempdir().unwrap();
    let path = socket_in(&dir);
    let registry = Registry::new();
    let _live = registry.register(info("s1", "alice"));
    let server = start(&path, &registry).await;

    let second = serve_control(&path, Registry::new(), mpsc::channel(1).0, async {}).await;
    assert!(
        matches!(second, Err(ControlError::AlreadyRunning { .. })),
        "{second:?}"
    );
    assert_eq!(list(&path).await.unwrap().len(), 1);
    server.stop().await;
}

#[tokio::test]
async fn a_file_that_is_not_a_socket_is_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    let path = socket_in(&dir);
    std::fs::write(&path, "keep me").unwrap();
    let error = ControlServer::bind(&path).await.unwrap_err();
    assert!(
        matches!(error, ControlError::NotASocket { .. }),
        "{error:?}"
    );
    assert_eq!(std::fs::read_to_string(&path).unwrap(), "keep me");
}

#[tokio::test]
async fn cancelling_the_server_removes_its_socket() {
    let dir = tempfile::tempdir().unwrap();
    let path = socket_in(&dir);
    let server = ControlServer::bind(&path).await.unwrap();
    let task =
        tokio::spawn(server.serve(Registry::new(), mpsc::channel(1).0, std::future::pending()));
    assert!(list(&path).await.unwrap().is_empty());
    task.abort();
    let _ = task.await;
    assert!(!path.exists());
}

#[tokio::test]
async fn bad_requests_get_a_one_line_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = socket_in(&dir);
    let (reload, reloads) = mpsc::channel(1);
    let server = ControlServer::bind(&path).await.unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(server.serve(Registry::new(), reload, async move {
        let _ = stopped.await;
    }));

    for line in [
        "hello\n",
        "{\"op\":\"format_disk\"}\n",
        "{\"op\":\"kill\"}\n",
    ] {
        let answer = raw(&path, line).await;
        let parsed: Response = serde_json::from_str(&answer).unwrap();
        assert!(
            matches!(parsed, Response::Error { .. }),
            "{line} -> {answer}"
        );
    }
    let huge = format!("{}\n", "x".repeat(100_000));
    assert!(raw(&path, &huge).await.contains("longer than"));

    // A server error becomes ControlError::Refused on the client side.
    drop(reloads);
    let error = reload_now(&path).await;
    assert!(
        matches!(&error, ControlError::Refused { message } if message.contains("reload")),
        "{error:?}"
    );

    let _ = stop.send(());
    assert!(matches!(task.await, Ok(Ok(()))));
}

async fn reload_now(path: &Path) -> ControlError {
    match reload(path).await {
        Ok(()) => panic!("reload accepted with nobody listening"),
        Err(error) => error,
    }
}

#[tokio::test]
async fn a_server_that_does_not_answer_times_out() {
    let dir = tempfile::tempdir().unwrap();
    let path = socket_in(&dir);
    // Accepts connections (the kernel queues them) but never answers.
    let _silent = tokio::net::UnixListener::bind(&path).unwrap();
    let error = request_within(&path, &Request::List, Duration::from_millis(100))
        .await
        .unwrap_err();
    assert!(matches!(error, ControlError::Timeout { .. }), "{error:?}");
}

#[test]
fn requests_have_a_stable_wire_form() {
    let cases = [
        (Request::List, r#"{"op":"list"}"#),
        (Request::Reload, r#"{"op":"reload"}"#),
        (
            Request::Kill {
                id: "1".into(),
                reason: "r".into(),
                by: "admin".into(),
            },
            r#"{"op":"kill","id":"1","reason":"r","by":"admin"}"#,
        ),
        (
            Request::KillUser {
                user: "alice".into(),
                reason: "r".into(),
                by: "admin".into(),
            },
            r#"{"op":"kill_user","user":"alice","reason":"r","by":"admin"}"#,
        ),
    ];
    for (request, json) in cases {
        assert_eq!(serde_json::to_string(&request).unwrap(), json);
        assert_eq!(serde_json::from_str::<Request>(json).unwrap(), request);
    }
}
