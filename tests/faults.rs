//! Faults (issue 6): what the person sees, and that every session row and
//! recording is finalised, when things break around a session — a target
//! that cannot be reached, `kill -9` of the bastion mid-session, SIGTERM
//! with a hundred sessions open.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use rampart::model::{Actions, Protocol};
use rampart::ops::{AssetSpec, Caller};
use rampart::store::audit_log::Query;
use support::Bastion;
use support::peers::permit;
use support::ssh::{AcceptAll, Client, TestBastion};

const T: Duration = Duration::from_secs(20);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_target_is_one_line_and_no_session() {
    let b = TestBastion::start().await;
    // A port nothing listens on.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let ops = b.services.ops.clone();
    ops.asset_add(
        &Caller::local(),
        AssetSpec {
            name: "gone".into(),
            address: "127.0.0.1".into(),
            protocols: vec![Protocol {
                name: "ssh".into(),
                port,
            }],
            active: true,
            ..Default::default()
        },
    )
    .await
    .unwrap();
    ops.account_add(
        &Caller::local(),
        "gone",
        "root",
        rampart::ops::AccountSecret::Password(rampart::vault::Secret::new("x".into())),
        false,
    )
    .await
    .unwrap();
    permit(
        &b,
        "admin-gone",
        "admin",
        &["gone"],
        Actions::all_but_tunnel(),
    )
    .await;
    b.reload().await;
    let c = Client::admin(b.addr).await;
    let (out, err, code) = c.exec("gone uname").await;
    // OpenSSH's status for a session that could not run (DESIGN.md §4).
    assert_eq!(code, Some(255));
    assert!(out.is_empty());
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.starts_with("rampart: cannot reach gone (127.0.0.1)"),
        "{err}"
    );
    let rows = b
        .services
        .ops
        .session_list(&Caller::local(), &Query::default(), false)
        .await
        .unwrap();
    assert!(rows.iter().all(|r| r.asset != "gone"), "{rows:#?}");
    // The rest goes on.
    let (out, _, code) = c.exec("demo echo fine").await;
    assert_eq!(code, Some(0));
    assert!(String::from_utf8_lossy(&out).contains("fine"));
}

/// SIGTERM (here: the same shutdown path, in process) with 100 sessions
/// open: each is told, each row is closed with its recording's digest, and
/// the audit chain verifies.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_with_a_hundred_sessions_finalises_every_one() {
    let mut b = TestBastion::start().await;
    let mut clients = Vec::new();
    let mut terms = Vec::new();
    // Ten connections of ten sessions (the per-connection cap).
    for _ in 0..10 {
        let c = Client::admin(b.addr).await;
        for _ in 0..10 {
            terms.push(c.shell(80, 24, Some("demo")).await);
        }
        clients.push(c);
    }
    for (i, term) in terms.iter_mut().enumerate() {
        assert!(
            term.wait_for(T, |s| s.contains("demo@demo:~$")).await,
            "session {i}: {}",
            term.text()
        );
        term.send(format!("echo session-{i}\r").as_bytes()).await;
    }
    for (i, term) in terms.iter_mut().enumerate() {
        let marker = format!("session-{i}\r\n");
        assert!(term.wait_for(T, |s| s.contains(marker.trim_end())).await);
    }
    b.shutdown().await;
    for term in &mut terms {
        assert!(
            term.wait_for(T, |s| s.contains("shutting down")).await,
            "{}",
            term.text()
        );
    }
    let rows = b
        .services
        .ops
        .session_list(
            &Caller::local(),
            &Query {
                limit: Some(1000),
                ..Default::default()
            },
            false,
        )
        .await
        .unwrap();
    assert_eq!(rows.len(), 100);
    for row in &rows {
        assert_eq!(
            (row.status.as_str(), row.reason.as_str()),
            ("closed", "bastion shutdown"),
            "{row:#?}"
        );
        assert!(row.recording_sha256.is_some(), "{row:#?}");
    }
    let report = rampart::audit::verify(&b.services.store, &b.services.recordings)
        .await
        .unwrap();
    assert_eq!(report.broken, None);
    assert_eq!(report.recordings, 100);
}

/// A `rampart serve` process, killed on drop.
struct Serve {
    child: Child,
}

impl Serve {
    fn start(b: &Bastion, port: u16, demo: bool) -> Serve {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_rampart"));
        cmd.arg("serve")
            .current_dir(b.path())
            .env_remove("RAMPART_CONFIG")
            .env_remove("RAMPART_MASTER_KEY")
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        if demo {
            cmd.arg("--demo");
        }
        // Owned by `Serve` at once, so that it is killed and reaped on every
        // path, the panic below included.
        let serve = Serve {
            child: cmd.spawn().expect("rampart serve"),
        };
        for _ in 0..200 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return serve;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("rampart serve did not listen on {port}");
    }

    fn kill_9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        self.kill_9();
    }
}

fn casts(dir: &Path) -> Vec<PathBuf> {
    support::all_bytes(dir)
        .into_iter()
        .map(|(p, _)| p)
        .filter(|p| p.extension().is_some_and(|e| e == "cast"))
        .collect()
}

/// `rampart serve --demo` as a process of its own, with user `alice` (an
/// ed25519 key) permitted on `demo`.
struct Binary {
    b: Bastion,
    serve: Serve,
    port: u16,
    key: PathBuf,
    _keys: tempfile::TempDir,
}

impl Binary {
    /// `None` (a skip) when ssh-keygen is missing and interop is optional.
    fn start() -> Option<Binary> {
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let b = Bastion::with_config(&format!(
            "[ssh]\nlisten = [\"127.0.0.1:{port}\"]\nshutdown_grace = \"3s\"\n[recording]\nflush_interval = \"200ms\"\n"
        ));
        b.run(&["init"]).ok();
        let keys = tempfile::tempdir().unwrap();
        let key = keys.path().join("alice");
        let status = Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", "", "-f"])
            .arg(&key)
            .status();
        if !status.is_ok_and(|s| s.success()) {
            assert!(
                std::env::var("RAMPART_REQUIRE_INTEROP").as_deref() != Ok("1"),
                "ssh-keygen is required"
            );
            eprintln!("skipped: ssh-keygen is not installed");
            return None;
        }
        let public = key.with_extension("pub");
        b.run(&[
            "user",
            "add",
            "alice",
            "--key-file",
            public.to_str().unwrap(),
        ])
        .ok();
        let serve = Serve::start(&b, port, true);
        // `serve --demo` registers the demo asset; then alice may use it.
        for _ in 0..100 {
            if b.run(&["asset", "show", "demo"]).status == 0 {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        b.run(&[
            "perm",
            "add",
            "alice-demo",
            "--user",
            "alice",
            "--asset",
            "demo",
        ])
        .ok();
        Some(Binary {
            b,
            serve,
            port,
            key,
            _keys: keys,
        })
    }

    async fn client(&self) -> Client {
        let key = russh::keys::load_secret_key(&self.key, None).unwrap();
        let config = Arc::new(russh::client::Config::default());
        let mut handle = russh::client::connect(config, ("127.0.0.1", self.port), AcceptAll)
            .await
            .unwrap();
        let auth = handle
            .authenticate_publickey(
                "alice",
                russh::keys::PrivateKeyWithHashAlg::new(Arc::new(key), None),
            )
            .await
            .unwrap();
        assert!(auth.success());
        Client { handle }
    }

    /// A shell on demo; waits out the policy watcher (a second or so) after
    /// the permission was added.
    async fn demo_shell(&self, client: &Client) -> support::ssh::Term {
        for _ in 0..50 {
            let mut t = client.shell(80, 24, Some("demo")).await;
            if t.wait_for(Duration::from_secs(5), |s| {
                s.contains("demo@demo:~$") || s.contains("no such asset")
            })
            .await
                && t.text().contains("demo@demo:~$")
            {
                return t;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        panic!("alice never reached demo");
    }
}

/// `kill -9` of the bastion in the middle of a session: the recording is a
/// valid asciicast prefix with everything up to the last flush, and the
/// next start marks the session interrupted; the chain still verifies.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_mid_session_leaves_a_valid_recording_and_an_interrupted_row() {
    let Some(mut bin) = Binary::start() else {
        return;
    };
    let client = bin.client().await;
    let mut term = bin.demo_shell(&client).await;
    term.send(b"echo before-the-crash\r").await;
    assert!(
        term.wait_for(T, |s| s.contains("before-the-crash\n")
            || s.matches("before-the-crash").count() >= 2)
            .await
    );
    // Past the flush interval, then the crash.
    tokio::time::sleep(Duration::from_millis(800)).await;
    bin.serve.kill_9();

    let b = &bin.b;
    let recordings = b.data_dir().join("recordings");
    let casts = casts(&recordings);
    assert_eq!(casts.len(), 1, "{casts:?}");
    let text = std::fs::read_to_string(&casts[0]).unwrap();
    let mut lines = text.lines();
    let header: serde_json::Value = serde_json::from_str(lines.next().unwrap()).unwrap();
    assert_eq!(header["version"], 2);
    let mut output = String::new();
    for line in lines {
        let event: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("line {line:?}: {e}"));
        if event[1] == "o" {
            output.push_str(event[2].as_str().unwrap());
        }
    }
    assert!(output.contains("before-the-crash"), "{output}");

    // The next start marks the session interrupted; the chain verifies.
    let serve2 = Serve::start(b, bin.port, false);
    let rows: Vec<serde_json::Value> = b
        .run(&["session", "list", "--json"])
        .ok()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(rows.len(), 1, "{rows:#?}");
    assert_eq!(rows[0]["status"], "interrupted", "{rows:#?}");
    drop(serve2);
    let verified = b.run(&["audit", "verify"]);
    assert_eq!(verified.status, 0, "{}", verified.stderr);
}

/// A target that stops reading (`sleep` never reads its stdin) while the
/// client floods input: the flood is held back by flow control all the way
/// (the bastion buffers nothing of its own), and other people's sessions go
/// on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_target_holds_back_a_flooding_client() {
    use support::peers::{add_loopback_asset, keypair, peers, start_sshd};
    let Some([sshd_bin]) = peers(["sshd"]) else {
        return;
    };
    let b = TestBastion::start().await;
    let keys = tempfile::tempdir().unwrap();
    let (target_key, target_pub) = keypair(keys.path(), "target");
    let sshd = start_sshd(&sshd_bin, &target_pub);
    add_loopback_asset(&b, "real", sshd.port, &["ssh"], &target_key).await;
    permit(
        &b,
        "admin-real",
        "admin",
        &["real"],
        Actions::all_but_tunnel(),
    )
    .await;
    b.reload().await;

    let flooder = Client::admin(b.addr).await;
    let ch = flooder.handle.channel_open_session().await.unwrap();
    ch.exec(true, "real sleep 60").await.unwrap();
    const FLOOD: usize = 256 * 1024 * 1024;
    let chunk = vec![b'x'; 32 * 1024];
    let mut sent = 0usize;
    let _ = tokio::time::timeout(Duration::from_secs(5), async {
        while sent < FLOOD {
            if ch.data(&chunk[..]).await.is_err() {
                break;
            }
            sent += chunk.len();
        }
    })
    .await;
    eprintln!("the flood was held at {sent} bytes");
    assert!(
        sent < 64 * 1024 * 1024,
        "{sent} bytes went into a target that reads nothing: something buffers without bound"
    );

    // Meanwhile, someone else works normally.
    let other = Client::admin(b.addr).await;
    let (out, err, code) = tokio::time::timeout(T, other.exec("demo echo unaffected"))
        .await
        .expect("another session is served");
    assert_eq!(code, Some(0), "{err}");
    assert!(String::from_utf8_lossy(&out).contains("unaffected"));
    drop(ch);
    flooder.close().await;
}

/// The recordings cannot be written (here the recordings dir is a file;
/// a full or read-only disk fails the same way): with the default
/// `on_failure = deny` the session is refused with one line and no row;
/// with `allow` it runs, unrecorded, the person is told, and the row says
/// so.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recordings_that_cannot_be_written_refuse_or_run_unrecorded() {
    for (config, allowed) in [("", false), ("[recording]\non_failure = \"allow\"\n", true)] {
        let b = TestBastion::start_with(config).await;
        let dir = b.services.config.recording_dir();
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::write(&dir, b"not a directory").unwrap();
        let c = Client::admin(b.addr).await;
        let (out, err, code) = c.exec("demo echo recorded-or-not").await;
        let rows = b
            .services
            .ops
            .session_list(&Caller::local(), &Query::default(), false)
            .await
            .unwrap();
        if allowed {
            assert_eq!(code, Some(0), "{err}");
            assert!(String::from_utf8_lossy(&out).contains("recorded-or-not"));
            assert!(err.contains("not recorded"), "{err}");
            assert_eq!(rows.len(), 1, "{rows:#?}");
            assert_eq!(rows[0].status, "closed", "{rows:#?}");
            assert_eq!(rows[0].recording, None, "{rows:#?}");
            assert_eq!(rows[0].recording_sha256, None, "{rows:#?}");
        } else {
            assert_eq!(code, Some(255));
            assert!(out.is_empty());
            assert_eq!(
                err.trim_end(),
                "rampart: the session cannot be recorded, so it is refused; tell an admin"
            );
            assert!(rows.is_empty(), "{rows:#?}");
        }
        // The audit chain holds either way.
        let report = rampart::audit::verify(
            &b.services.store,
            &rampart::record::objects::Recordings::local(dir.clone()),
        )
        .await
        .unwrap();
        assert_eq!(report.broken, None);
    }
}

/// The database is locked by another writer (a backup, an admin's sqlite3)
/// for longer than `database.busy_timeout`: a login that must write its
/// login-log row is refused rather than let in unaudited, nothing hangs,
/// and once the lock is gone everything works again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_locked_database_refuses_logins_until_it_is_free() {
    if support::on_postgres("a_locked_database_refuses_logins_until_it_is_free") {
        return;
    }
    use sqlx::Connection;
    let b = TestBastion::start_with("[database]\nbusy_timeout = \"1s\"\n").await;
    let db = b.services.config.database_path().expect("sqlite path");
    let mut other = sqlx::SqliteConnection::connect(&format!("sqlite://{}", db.display()))
        .await
        .unwrap();
    sqlx::query("BEGIN EXCLUSIVE")
        .execute(&mut other)
        .await
        .unwrap();

    let started = std::time::Instant::now();
    let refused = tokio::time::timeout(
        Duration::from_secs(30),
        Client::password(b.addr, "admin", support::ssh::ADMIN_PASSWORD),
    )
    .await
    .expect("the login attempt ends instead of hanging");
    assert!(
        refused.is_err(),
        "a login that cannot be audited is refused"
    );
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "{:?}",
        started.elapsed()
    );

    sqlx::query("ROLLBACK").execute(&mut other).await.unwrap();
    drop(other);
    let c = Client::admin(b.addr).await;
    let (out, err, code) = c.exec("demo echo back").await;
    assert_eq!(code, Some(0), "{err}");
    assert!(String::from_utf8_lossy(&out).contains("back"));
}

/// The recordings disk fills up in the middle of a session (a 64 KiB tmpfs
/// mounted as the recordings dir; needs root, as in CI): with the default
/// `on_failure = deny` the session ends with a line saying why, its row says
/// `failed`, the chain still verifies, and new sessions are refused, not
/// run unrecorded.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recordings_disk_that_fills_up_ends_the_session_it_cannot_record() {
    let b = TestBastion::start().await;
    let dir = b.services.config.recording_dir();
    std::fs::create_dir_all(&dir).unwrap();
    let mounted = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=64k", "tmpfs"])
        .arg(&dir)
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !mounted {
        assert!(
            std::env::var("RAMPART_REQUIRE_INTEROP").as_deref() != Ok("1"),
            "mounting a tmpfs is required in CI (run as root)"
        );
        eprintln!("skipped: cannot mount a tmpfs (not root?)");
        return;
    }
    struct Unmount(PathBuf);
    impl Drop for Unmount {
        fn drop(&mut self) {
            let _ = Command::new("umount").arg("-l").arg(&self.0).status();
        }
    }
    let _unmount = Unmount(dir.clone());

    let c = Client::admin(b.addr).await;
    // Text the demo shell echoes back, far more than the disk holds.
    let mut term = c.shell(200, 50, Some("demo")).await;
    assert!(term.wait_for(T, |s| s.contains("demo@demo:~$")).await);
    let line = format!("echo {}\r", "0123456789".repeat(40));
    let mut ended = false;
    for _ in 0..2000 {
        term.send(line.as_bytes()).await;
        if term.wait_close(Duration::from_millis(20)).await {
            ended = true;
            break;
        }
    }
    assert!(ended, "the session went on without its recording");
    assert!(
        term.text()
            .contains("rampart: the session was ended because it can no longer be recorded"),
        "the person is told why: {}",
        term.text()
    );
    let rows = b
        .services
        .ops
        .session_list(&Caller::local(), &Query::default(), false)
        .await
        .unwrap();
    assert_eq!(rows.len(), 1, "{rows:#?}");
    assert_eq!(rows[0].status, "failed", "{rows:#?}");
    assert!(rows[0].reason.contains("recording"), "{rows:#?}");
    let (_, err, code) = c.exec("demo echo again").await;
    assert_eq!(code, Some(255));
    assert!(err.contains("cannot be recorded"), "{err}");
    let report = rampart::audit::verify(
        &b.services.store,
        &rampart::record::objects::Recordings::local(dir.clone()),
    )
    .await
    .unwrap();
    assert_eq!(report.broken, None);
}

/// SIGTERM to the `rampart serve` process with 100 sessions open (ten
/// connections of ten): every person is told, the process exits 0 within
/// the grace time, every row is closed with its recording's digest, and the
/// chain verifies.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_with_a_hundred_sessions_open() {
    let Some(mut bin) = Binary::start() else {
        return;
    };
    let mut clients = Vec::new();
    let mut terms = Vec::new();
    for _ in 0..10 {
        let c = bin.client().await;
        for _ in 0..10 {
            terms.push(bin.demo_shell(&c).await);
        }
        clients.push(c);
    }
    let started = std::time::Instant::now();
    let pid = bin.serve.child.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    for term in &mut terms {
        assert!(
            term.wait_for(T, |s| s.contains("shutting down")).await,
            "{}",
            term.text()
        );
    }
    let status = loop {
        if let Some(status) = bin.serve.child.try_wait().unwrap() {
            break status;
        }
        assert!(started.elapsed() < Duration::from_secs(30), "still running");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(status.success(), "{status:?}");
    let rows: Vec<serde_json::Value> = bin
        .b
        .run(&["session", "list", "--json"])
        .ok()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(rows.len(), 100);
    for row in &rows {
        assert_eq!(row["status"], "closed", "{row}");
        assert_eq!(row["reason"], "bastion shutdown", "{row}");
        assert!(row["recording_sha256"].is_string(), "{row}");
    }
    let verified = bin.b.run(&["audit", "verify"]);
    assert_eq!(verified.status, 0, "{}", verified.stderr);
}

/// The person's TCP connection is reset (no SSH goodbye, not even a FIN)
/// in the middle of a session: the session row is closed and its recording
/// finalised, and the bastion goes on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_connection_reset_mid_session_finalises_it() {
    let b = TestBastion::start().await;
    // A relay between client and bastion that can reset the bastion's side.
    let proxy = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let proxy_addr = proxy.local_addr().unwrap();
    let bastion = b.addr;
    let (reset_tx, reset_rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(async move {
        let (mut client_side, _) = proxy.accept().await.unwrap();
        let mut upstream = tokio::net::TcpStream::connect(bastion).await.unwrap();
        tokio::select! {
            _ = tokio::io::copy_bidirectional(&mut client_side, &mut upstream) => {}
            _ = reset_rx => {
                // SO_LINGER 0: close sends a RST.
                let _ = upstream.set_zero_linger();
                drop(upstream);
            }
        }
    });
    let c = Client::password(proxy_addr, "admin", support::ssh::ADMIN_PASSWORD)
        .await
        .unwrap();
    let mut term = c.shell(80, 24, Some("demo")).await;
    assert!(term.wait_for(T, |s| s.contains("demo@demo:~$")).await);
    term.send(b"echo before-the-reset\r").await;
    assert!(
        term.wait_for(T, |s| s.matches("before-the-reset").count() >= 2)
            .await
    );
    reset_tx.send(()).unwrap();

    let deadline = tokio::time::Instant::now() + T;
    let row = loop {
        let rows = b
            .services
            .ops
            .session_list(&Caller::local(), &Query::default(), false)
            .await
            .unwrap();
        if let Some(row) = rows.into_iter().find(|r| r.status != "live") {
            break row;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the session stays live"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(row.status, "closed", "{row:#?}");
    assert!(row.recording_sha256.is_some(), "{row:#?}");
    let other = Client::admin(b.addr).await;
    let (_, _, code) = other.exec("demo echo fine").await;
    assert_eq!(code, Some(0));
    let report = rampart::audit::verify(&b.services.store, &b.services.recordings)
        .await
        .unwrap();
    assert_eq!(report.broken, None);
}
