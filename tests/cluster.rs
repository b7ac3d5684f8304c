//! Two rampart nodes sharing one PostgreSQL database and one S3 bucket
//! (issue 16, "several nodes"): two `rampart serve` processes on loopback,
//! each with its own data dir holding the same master key and host key, and
//! moto's S3 server. Node B lists, monitors, joins and kills a session on
//! node A, and closes it when node A dies. Runs when the tests have a
//! PostgreSQL server (`bash tests/with_postgres.sh cargo test --test
//! cluster`); on SQLite alone it says it is skipped.

mod support;

use std::net::SocketAddr;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use support::Bastion;
use support::peers::{client_options, keypair, peer};
use support::pty::PtyChild;
use support::s3::S3;
use support::ssh::Client;

const PASSWORD: &str = "admin-password-for-two-nodes-1";
const AUDITOR_PASSWORD: &str = "auditor-password-for-two-nodes-1";
const T: Duration = Duration::from_secs(15);

fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

/// A `rampart serve` process, killed with SIGKILL when dropped.
struct Serve(Child);

impl Serve {
    fn start(b: &Bastion, demo: bool) -> Serve {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_rampart"));
        cmd.arg("serve");
        if demo {
            cmd.arg("--demo");
        }
        let child = cmd
            .current_dir(b.path())
            .env_remove("RAMPART_CONFIG")
            .env_remove("RAMPART_MASTER_KEY")
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(b.path().join("serve.log")).unwrap())
            .spawn()
            .unwrap();
        Serve(child)
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Gives `b` its own data dir with the cluster's master key and host key
/// (from `a`), on `a`'s database.
fn join_cluster(a: &Bastion, b: &Bastion) {
    b.use_database(&a.db_url());
    std::fs::DirBuilder::new()
        .mode(0o700)
        .create(b.data_dir())
        .unwrap();
    for file in ["master.key", "ssh_host_ed25519_key"] {
        std::fs::copy(a.data_dir().join(file), b.data_dir().join(file)).unwrap();
        std::fs::set_permissions(
            b.data_dir().join(file),
            std::fs::Permissions::from_mode(0o600),
        )
        .unwrap();
    }
}

async fn log_in(port: u16) -> Client {
    log_in_as(port, "admin", PASSWORD).await
}

async fn log_in_as(port: u16, user: &str, password: &str) -> Client {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let started = Instant::now();
    while std::net::TcpStream::connect(addr).is_err() {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "nothing listens on port {port}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    loop {
        match Client::password(addr, user, password).await {
            Ok(c) => return c,
            Err(e) if started.elapsed() > Duration::from_secs(30) => {
                panic!("no login on port {port}: {e}")
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
}

/// `rampart ...` over SSH, as JSON lines.
async fn json(c: &Client, command: &str) -> Vec<serde_json::Value> {
    let (out, err, status) = c.exec(&format!("{command} --json")).await;
    assert_eq!(status, Some(0), "{command}: {err}");
    String::from_utf8(out)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

async fn status_of(c: &Client, id: &str) -> (String, String) {
    let rows = json(c, "rampart session list").await;
    let row = rows
        .iter()
        .find(|r| r["id"] == id)
        .unwrap_or_else(|| panic!("session {id} not listed: {rows:?}"));
    (
        row["status"].as_str().unwrap_or_default().to_string(),
        row["reason"].as_str().unwrap_or_default().to_string(),
    )
}

/// The id of the one live session node `node` runs, as node B lists it.
async fn live_on(c: &Client, node: &str) -> String {
    let started = Instant::now();
    loop {
        let live = json(c, "rampart session list --live").await;
        let theirs: Vec<&serde_json::Value> = live.iter().filter(|s| s["node"] == node).collect();
        if theirs.len() == 1 {
            return theirs[0]["id"].as_str().unwrap().to_string();
        }
        assert!(
            started.elapsed() < T,
            "no single live session on {node}: {live:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_list_watch_join_and_kill_each_others_sessions_and_close_a_dead_nodes() {
    if support::postgres().is_none() {
        eprintln!(
            "two_nodes: skipped, needs PostgreSQL (bash tests/with_postgres.sh cargo test --test cluster)"
        );
        return;
    }
    let (port_a, port_b) = (free_port(), free_port());
    // The recordings in one bucket, so that either node can replay and
    // verify what the other recorded.
    let Some(s3) = S3::start(free_port()) else {
        return;
    };
    let node = |name: &str, port: u16| {
        format!(
            "[ssh]\nlisten = [\"127.0.0.1:{port}\"]\n[cluster]\nnode = \"{name}\"\n{}",
            s3.config()
        )
    };
    let a = Bastion::with_config(&node("node-a", port_a));
    let b = Bastion::with_config(&node("node-b", port_b));
    a.run(&["init"]).ok();
    a.run_stdin(
        &["user", "passwd", "admin", "--password-stdin"],
        &format!("{PASSWORD}\n"),
    )
    .ok();
    // An auditor, who may list sessions but not end them.
    a.run_stdin(
        &[
            "user",
            "add",
            "audrey",
            "--role",
            "auditor",
            "--password-stdin",
        ],
        &format!("{AUDITOR_PASSWORD}\n"),
    )
    .ok();
    // Alice reaches the demo target with OpenSSH and a key.
    let keys = tempfile::tempdir().unwrap();
    let (alice_key, alice_public) = keypair(keys.path(), "alice");
    std::fs::write(a.path().join("alice.pub"), format!("{alice_public}\n")).unwrap();
    a.run(&["user", "add", "alice", "--key-file", "alice.pub"])
        .ok();
    join_cluster(&a, &b);
    let mut node_a = Serve::start(&a, true);
    let _node_b = Serve::start(&b, false);
    let on_a = log_in(port_a).await;
    let on_b = log_in(port_b).await;
    a.run(&[
        "perm",
        "add",
        "alice-demo",
        "--user",
        "alice",
        "--asset",
        "demo",
    ])
    .ok();
    // Node A takes in the change within a second.
    tokio::time::sleep(Duration::from_millis(1500)).await;

    // Alice's shell through node A, from OpenSSH in a real terminal,
    // listed by node B under node A's name.
    let Some(ssh_bin) = peer("ssh") else { return };
    let mut ssh = Command::new(&ssh_bin);
    ssh.args(client_options(&alice_key)).args([
        "-p",
        &port_a.to_string(),
        "alice@127.0.0.1",
        "-tt",
        "demo",
    ]);
    let mut term = PtyChild::spawn(ssh, 80, 24);
    assert!(
        term.wait_for(T, |s| s.contains("alice@demo:~$")
            || s.contains("demo@demo:~$"))
            .await,
        "{}",
        term.text()
    );
    let id = live_on(&on_b, "node-a").await;

    // An admin at the desk on node B monitors it: the mirror shows what
    // the person's terminal on node A shows, and what follows streams in.
    term.send(b"echo before-the-watch\r");
    term.expect(T, |s| s.matches("before-the-watch").count() >= 2)
        .await;
    let mut desk = on_b.shell(100, 30, None).await;
    desk.expect(T, |s| s.contains("F4 Audit")).await;
    desk.audit_tab(b"2", T, |s| s.contains("Live (1)") && s.contains("node-a"))
        .await;
    desk.send(b"\r").await;
    desk.expect(T, |s| {
        s.contains("monitoring, read-only") && s.contains("before-the-watch")
    })
    .await;
    term.send(b"echo streamed-across-nodes\r");
    desk.expect(T, |s| s.matches("streamed-across-nodes").count() >= 2)
        .await;
    // A flood faster than a watch carries: the mirror drops output and
    // redraws from node A's screen, and ends on what the person sees.
    term.send(b"seq 300000\r");
    term.expect(T, |s| s.contains("299999\n300000\ndemo@demo:~$"))
        .await;
    desk.expect(T, |s| s.contains("299999") && s.contains("300000"))
        .await;
    term.send(b"echo flood-over\r");
    desk.expect(T, |s| s.matches("flood-over").count() >= 2)
        .await;
    desk.send(b"\x1b").await;
    desk.expect(T, |s| s.contains("Live (1)")).await;
    // Joining from node B: the person on node A is told, and the admin's
    // keys reach the target; leaving is told too.
    desk.send(b"j").await;
    desk.expect(T, |s| s.contains("joined: your keys go to the session"))
        .await;
    term.expect(T, |s| s.contains("admin joined this session"))
        .await;
    desk.send(b"echo typed-on-node-b").await;
    term.expect(T, |s| s.contains("echo typed-on-node-b")).await;
    desk.send(b"\r").await;
    term.expect(T, |s| s.matches("typed-on-node-b").count() >= 2)
        .await;
    desk.send(b"\x1d").await;
    term.expect(T, |s| s.contains("admin left this session"))
        .await;
    desk.send(b"q").await;
    assert!(desk.wait_close(T).await);

    // An auditor on node B may not end it: refused, and it runs on.
    let audrey = log_in_as(port_b, "audrey", AUDITOR_PASSWORD).await;
    let (_, err, status) = audrey
        .exec(&format!(
            "rampart session kill {id} --reason 'not mine to end'"
        ))
        .await;
    assert_eq!(status, Some(1), "{err}");
    assert!(err.contains("permission denied"), "{err}");
    assert_eq!(live_on(&on_b, "node-a").await, id);
    assert!(!term.text().contains("not mine to end"), "{}", term.text());

    // Killed by an admin on node B: the person on node A sees why, OpenSSH
    // exits, and the row says so.
    let (_, err, status) = on_b
        .exec(&format!(
            "rampart session kill {id} --reason 'moved to node b'"
        ))
        .await;
    assert_eq!(status, Some(0), "{err}");
    assert!(term.wait_exit(T).await.is_some(), "{}", term.text());
    assert!(term.text().contains("moved to node b"), "{}", term.text());
    let started = Instant::now();
    loop {
        let (status, reason) = status_of(&on_b, &id).await;
        if status != "live" {
            assert!(reason.contains("moved to node b"), "{status}: {reason}");
            break;
        }
        assert!(started.elapsed() < T, "still {status}: {reason}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Node A uploaded its recording: node B can read it.
    let rows = json(&on_b, "rampart session list").await;
    let recording = rows.iter().find(|r| r["id"] == id).unwrap()["recording"]
        .as_str()
        .unwrap()
        .to_string();
    s3.object(&recording).await;
    let (out, err, status) = on_b.exec(&format!("rampart export {id}")).await;
    assert_eq!(status, Some(0), "{err}");
    assert!(String::from_utf8_lossy(&out).contains("demo@demo"));

    // Node A dies with a session running: node B closes it within 30 s.
    let mut term = on_a.shell(80, 24, Some("demo")).await;
    assert!(term.wait_for(T, |s| s.contains("demo@demo:~$")).await);
    let id = live_on(&on_b, "node-a").await;
    // Meanwhile a second process is started under node B's name by
    // mistake: it must not take the name (and close node B's sessions).
    let twin = Bastion::with_config(&node("node-b", free_port()));
    join_cluster(&a, &twin);
    let mut twin_serve = Serve::start(&twin, false);
    let twin_started = Instant::now();
    node_a.0.kill().unwrap();
    node_a.0.wait().unwrap();
    let died = Instant::now();
    loop {
        let (status, reason) = status_of(&on_b, &id).await;
        if status == "interrupted" {
            assert!(reason.contains("node node-a stopped answering"), "{reason}");
            break;
        }
        assert!(
            died.elapsed() < Duration::from_secs(30),
            "node A's session still {status} after 30 s"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    eprintln!(
        "node A's session was marked interrupted {:.1} s after node A died",
        died.elapsed().as_secs_f64()
    );
    assert!(
        json(&on_b, "rampart session list --live").await.is_empty(),
        "nothing is left listed live"
    );

    // The twin gave up, saying why; node B still serves.
    let status = loop {
        if let Some(status) = twin_serve.0.try_wait().unwrap() {
            break status;
        }
        assert!(
            twin_started.elapsed() < Duration::from_secs(40),
            "a second node-b is still running"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    assert!(!status.success());
    let said = std::fs::read_to_string(twin.path().join("serve.log")).unwrap();
    assert!(
        said.contains("another process is running as node node-b"),
        "{said}"
    );
    assert!(json(&on_b, "rampart session list --live").await.is_empty());

    // Both nodes wrote the one chain: it verifies.
    let (out, err, status) = on_b.exec("rampart audit verify").await;
    assert_eq!(status, Some(0), "{err}");
    assert!(
        String::from_utf8_lossy(&out).contains("audit chain intact"),
        "{}",
        String::from_utf8_lossy(&out)
    );
}
