//! Interop with the real peers (DESIGN.md §5): the OpenSSH `ssh` client
//! through the bastion, OpenSSH `sshd` as a target, and `asciinema cat` on
//! the recordings. A missing peer skips with a printed reason, unless
//! RAMPART_REQUIRE_INTEROP=1, where it fails.

mod support;

use std::process::{Command, Stdio};

use rampart::model::Actions;
use rampart::ops::Caller;
use rampart::store::audit_log::Query;
use support::peers::{client_options, keypair, peer, real_asset, ssh, start_sshd, user_with_key};
use support::ssh::TestBastion;

/// A bastion whose admin logs in with a fresh key, and asset `real` on a
/// loopback OpenSSH sshd that admin may use (all actions but tunnel).
struct Real {
    b: TestBastion,
    keys: tempfile::TempDir,
    admin_key: std::path::PathBuf,
    account: String,
    sshd: support::peers::Sshd,
}

async fn with_real_target(sshd_bin: &std::path::Path) -> Real {
    let b = TestBastion::start().await;
    let keys = tempfile::tempdir().unwrap();
    let (admin_key, admin_pub) = keypair(keys.path(), "admin");
    let (target_key, target_pub) = keypair(keys.path(), "target");
    let sshd = start_sshd(sshd_bin, &target_pub);
    user_with_key(&b, "admin", &admin_pub).await;
    let account = real_asset(
        &b,
        sshd.port,
        &["ssh"],
        &target_key,
        "admin",
        Actions::all_but_tunnel(),
    )
    .await;
    Real {
        b,
        keys,
        admin_key,
        account,
        sshd,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openssh_client_through_the_bastion_to_openssh_sshd() {
    let (Some(ssh_bin), Some(sshd_bin)) = (peer("ssh"), peer("sshd")) else {
        return;
    };
    let Real {
        mut b,
        keys: _keys,
        admin_key,
        account: user,
        sshd: _sshd,
    } = with_real_target(&sshd_bin).await;
    let ops = b.services.ops.clone();
    let admin = Caller::local();
    let port = b.addr.port();

    // Exec: output and exit status come back unchanged.
    let expected =
        String::from_utf8(Command::new("uname").arg("-a").output().unwrap().stdout).unwrap();
    let (out, err, code) = ssh(
        &ssh_bin,
        &admin_key,
        port,
        "admin",
        &["real", "uname", "-a"],
        b"",
    )
    .await;
    assert_eq!(out, expected, "stderr: {err}");
    assert_eq!(code, Some(0));
    let (_, _, code) = ssh(
        &ssh_bin,
        &admin_key,
        port,
        "admin",
        &["real", "exit 7"],
        b"",
    )
    .await;
    assert_eq!(code, Some(7));
    // The target in the login name: stdin passes through, as scp and rsync need.
    let (out, err, code) = ssh(
        &ssh_bin,
        &admin_key,
        port,
        &format!("admin@{user}@real"),
        &["cat"],
        b"through stdin\n",
    )
    .await;
    assert_eq!(
        (out.as_str(), code),
        ("through stdin\n", Some(0)),
        "stderr: {err}"
    );

    // An interactive shell on the real sshd, with a pty.
    let (out, err, code) = ssh(
        &ssh_bin,
        &admin_key,
        port,
        "admin",
        &["-tt", "real"],
        b"echo interop-$((6*7))\nexit 4\n",
    )
    .await;
    assert!(out.contains("interop-42"), "out: {out} err: {err}");
    assert_eq!(code, Some(4));

    // `ssh -tt` from a script claims no terminal size (0 x 0): the target
    // sees none, as with direct ssh, and the bastion models and records
    // the 80 x 24 programs then assume (not one column, which wraps every
    // character).
    let (out, err, code) = ssh(
        &ssh_bin,
        &admin_key,
        port,
        "admin",
        &["-tt", "real", "stty size"],
        b"",
    )
    .await;
    assert_eq!((out.as_str(), code), ("0 0\r\n", Some(0)), "stderr: {err}");

    // The demo target too, and the usage text without a pty.
    let (out, _, code) = ssh(
        &ssh_bin,
        &admin_key,
        port,
        "admin",
        &["demo", "echo", "hi"],
        b"",
    )
    .await;
    assert_eq!((out.as_str(), code), ("hi\n", Some(0)));

    let dir = b.services.config.recording_dir();
    b.shutdown().await;
    let sessions = ops
        .session_list(&admin, &Query::default(), false)
        .await
        .unwrap();
    assert!(sessions.len() >= 5, "{sessions:?}");
    let header = sessions
        .iter()
        .filter_map(|s| {
            let cast = std::fs::read_to_string(dir.join(s.recording.as_deref()?)).ok()?;
            let header = cast.lines().next()?.to_string();
            header
                .contains(r#""command":"stty size""#)
                .then_some(header)
        })
        .next()
        .expect("the stty session's recording");
    assert!(header.contains(r#""width":80,"height":24"#), "{header}");
    assert!(
        sessions.iter().all(|s| s.status == "closed"),
        "{sessions:?}"
    );
    let report = rampart::audit::verify(&b.services.store, &b.services.recordings)
        .await
        .unwrap();
    assert_eq!(report.broken, None);

    // asciinema accepts the recordings (`asciinema cat` wants a terminal:
    // util-linux `script` gives it one).
    if let (Some(asciinema), Some(script)) = (peer("asciinema"), peer("script")) {
        let shell = sessions
            .iter()
            .find(|s| s.kind == "shell")
            .expect("the -tt session");
        let cast = b
            .services
            .config
            .recording_dir()
            .join(shell.recording.as_ref().unwrap());
        let out = Command::new(script)
            .arg("-qec")
            .arg(format!("{} cat {}", asciinema.display(), cast.display()))
            .arg("/dev/null")
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "asciinema cat: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(String::from_utf8_lossy(&out.stdout).contains("interop-42"));
    }
}

/// Where `got` first departs from `want`, with a little of each around it.
fn difference(got: &[u8], want: &[u8]) -> String {
    let at = got
        .iter()
        .zip(want)
        .position(|(a, b)| a != b)
        .unwrap_or(got.len().min(want.len()));
    let around = |s: &[u8]| {
        String::from_utf8_lossy(&s[at.saturating_sub(40).min(s.len())..(at + 40).min(s.len())])
            .into_owned()
    };
    format!(
        "{} bytes, {} expected, first difference at {at}: got {:?}, expected {:?}",
        got.len(),
        want.len(),
        around(got),
        around(want)
    )
}

/// Log-like text with colours, `len` bytes, from a fixed seed: varied
/// lines (hosts, programs, levels, addresses, ids), with `middle` planted
/// halfway and `end` near the end.
fn log_text(len: usize, middle: &str, end: &str) -> Vec<u8> {
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let words = [
        "connection",
        "accepted",
        "closed",
        "session",
        "opened",
        "for",
        "user",
        "failed",
        "password",
        "invalid",
        "request",
        "GET",
        "/api/v1/items",
        "timeout",
        "upstream",
        "worker",
        "reload",
        "config",
        "cache",
        "miss",
    ];
    let levels = [
        ("32", "INFO"),
        ("33", "WARN"),
        ("31", "ERROR"),
        ("36", "DEBUG"),
    ];
    let mut out = Vec::with_capacity(len + 4096);
    let mut planted = (false, false);
    while out.len() < len {
        let r = next();
        let (colour, level) = levels[(r % 4) as usize];
        let mut msg = String::new();
        for i in 0..(3 + r % 9) {
            msg.push_str(words[((r >> (i * 5)) % 20) as usize]);
            msg.push(' ');
        }
        let line = format!(
            "Dec  5 {:02}:{:02}:{:02} web{:02} sshd[{}]: \x1b[{colour}m{level}\x1b[0m {msg}src=10.{}.{}.{} id={:08x}\n",
            (r >> 8) % 24,
            (r >> 16) % 60,
            (r >> 24) % 60,
            (r >> 32) % 40,
            (r >> 40) % 65536,
            (r >> 20) % 256,
            (r >> 28) % 256,
            (r >> 36) % 256,
            r as u32,
        );
        out.extend_from_slice(line.as_bytes());
        if !planted.0 && out.len() >= len / 2 {
            out.extend_from_slice(format!("kernel: {middle} seen here\n").as_bytes());
            planted.0 = true;
        }
        if !planted.1 && out.len() >= len - 64 * 1024 {
            out.extend_from_slice(format!("kernel: {end} seen here\n").as_bytes());
            planted.1 = true;
        }
    }
    out
}

/// Bytes the database uses (its pages less the free ones).
async fn database_bytes(b: &TestBastion) -> u64 {
    let mut conn = b.services.store.conn().await.unwrap();
    if b.services.store.engine() == rampart::store::Engine::Postgres {
        let size: i64 = sqlx::query_scalar("SELECT pg_database_size(current_database())")
            .fetch_one(&mut *conn)
            .await
            .unwrap();
        return size as u64;
    }
    let mut pragma = async |name: &str| -> u64 {
        sqlx::query_scalar::<_, i64>(sqlx::AssertSqlSafe(format!("PRAGMA {name}")))
            .fetch_one(&mut *conn)
            .await
            .unwrap() as u64
    };
    (pragma("page_count").await - pragma("freelist_count").await) * pragma("page_size").await
}

/// 50 MB of log-like text through a pty session and an exec session (issue
/// 14): every byte recorded, the command log as before, the database
/// growing by at most 0.05 bytes per byte relayed, and a line from the
/// middle of the pty session found once the indexer has caught up (the
/// middle of exec output without a pty is not indexed, its end is).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn text_streams_are_recorded_exactly_and_found_without_growing_the_database() {
    const LEN: usize = 50_000_000;
    let (Some(ssh_bin), Some(sshd_bin)) = (peer("ssh"), peer("sshd")) else {
        return;
    };
    let Real {
        mut b,
        keys,
        admin_key,
        sshd: _sshd,
        ..
    } = with_real_target(&sshd_bin).await;
    let text = log_text(LEN, "MIDDLE-TOKEN-5150", "END-TOKEN-8086");
    let file = keys.path().join("app.log");
    std::fs::write(&file, &text).unwrap();
    let cat = format!("cat {}", file.display());
    let port = b.addr.port();
    let before = database_bytes(&b).await;

    let run_ssh = |args: Vec<String>| {
        let mut cmd = tokio::process::Command::new(&ssh_bin);
        cmd.args(client_options(&admin_key))
            .args(["-p", &port.to_string(), "admin@127.0.0.1"])
            .args(args);
        support::peers::run(cmd, b"", std::time::Duration::from_secs(120))
    };
    // A second person logs in, again and again, while the pty session
    // streams: the stream gives way to each login (`live::arrivals`), and
    // must still arrive whole through the real client.
    let streaming = std::sync::atomic::AtomicBool::new(true);
    let stream = async {
        let ran = run_ssh(vec!["-tt".into(), "real".into(), cat.clone()]).await;
        streaming.store(false, std::sync::atomic::Ordering::Relaxed);
        ran
    };
    let logins = async {
        let mut ran = Vec::new();
        while streaming.load(std::sync::atomic::Ordering::Relaxed) && ran.len() < 20 {
            ran.push(run_ssh(vec!["real".into(), "true".into()]).await);
        }
        ran
    };
    let (pty, logins) = tokio::join!(stream, logins);
    assert_eq!(pty.code, Some(0), "{}", pty.stderr);
    assert!(!logins.is_empty());
    eprintln!("{} logins while the pty session streamed", logins.len());
    for login in &logins {
        assert_eq!(
            login.code,
            Some(0),
            "a login while one streamed: {}",
            login.stderr
        );
    }
    // The pty turned each \n into \r\n.
    let crlf = text
        .split(|&c| c == b'\n')
        .collect::<Vec<_>>()
        .join(&b"\r\n"[..]);
    assert!(
        pty.stdout == crlf,
        "the pty session's output arrived whole: {}",
        difference(&pty.stdout, &crlf)
    );
    let exec = run_ssh(vec!["real".into(), cat.clone()]).await;
    assert_eq!(exec.code, Some(0), "{}", exec.stderr);
    assert!(
        exec.stdout == text,
        "the exec session's output arrived whole: {}",
        difference(&exec.stdout, &text)
    );

    tokio::time::timeout(
        std::time::Duration::from_secs(120),
        b.services.index.caught_up(),
    )
    .await
    .expect("the indexer catches up");
    let growth = database_bytes(&b).await.saturating_sub(before);
    let relayed = (pty.stdout.len() + exec.stdout.len()) as u64;
    eprintln!("database grew by {growth} bytes for {relayed} bytes of text relayed");
    assert!(
        growth * 20 <= relayed,
        "the database grew by {growth} bytes for {relayed} bytes relayed (bound: 0.05 per byte)"
    );

    let ops = b.services.ops.clone();
    let admin = Caller::local();
    let sessions = ops
        .session_list(&admin, &Query::default(), false)
        .await
        .unwrap();
    let dir = b.services.config.recording_dir();
    let by_bytes = |n: usize| {
        sessions
            .iter()
            .find(|s| s.bytes_out as usize == n)
            .unwrap_or_else(|| panic!("a session of {n} bytes in {sessions:?}"))
    };
    let (pty_row, exec_row) = (by_bytes(crlf.len()), by_bytes(text.len()));
    for (row, sent) in [(pty_row, &crlf), (exec_row, &text)] {
        let mut exported = Vec::new();
        rampart::record::export(dir.join(row.recording.as_deref().unwrap()), &mut exported)
            .unwrap();
        assert!(
            &exported == sent,
            "the recording of {} is byte-exact",
            row.id
        );
    }
    for row in [pty_row, exec_row] {
        let mut conn = b.services.store.conn().await.unwrap();
        let logged: Vec<(String, String)> =
            sqlx::query_as("SELECT command, output FROM commands WHERE session_id = $1")
                .bind(&row.id)
                .fetch_all(&mut *conn)
                .await
                .unwrap();
        assert_eq!(logged.len(), 1, "{logged:?}");
        let (command, output) = &logged[0];
        assert_eq!(command, &cat);
        assert!(
            output.starts_with("Dec  5 ") && !output.contains('\x1b') && output.len() <= 4096,
            "the first output, without escapes: {output:?}"
        );
    }

    let found = ops
        .audit_screen(&admin, &b.services.recordings, "middle-token-5150", 10)
        .await
        .unwrap();
    let sessions_hit: Vec<&str> = found.hits.iter().map(|h| h.session.as_str()).collect();
    assert_eq!(sessions_hit, [pty_row.id.as_str()], "{found:?}");
    let hit = &found.hits[0];
    assert_eq!(hit.line, "kernel: MIDDLE-TOKEN-5150 seen here");
    // Only auditors and admins may ask: a person with the user role is
    // refused, and learns nothing of what was seen.
    let person = Caller {
        name: "bob".into(),
        role: rampart::model::Role::User,
        via: rampart::audit::Via::Ssh,
    };
    let refused = ops
        .audit_screen(&person, &b.services.recordings, "middle-token-5150", 10)
        .await;
    assert!(
        matches!(refused, Err(rampart::ops::OpsError::Forbidden(_))),
        "{refused:?}"
    );
    assert!(hit.offset_ms >= 0 && hit.at >= pty_row.started_at);
    assert_eq!(found.index.behind_since, None, "{found:?}");
    let found = ops
        .audit_screen(&admin, &b.services.recordings, "END-TOKEN-8086", 10)
        .await
        .unwrap();
    let mut sessions_hit: Vec<&str> = found.hits.iter().map(|h| h.session.as_str()).collect();
    sessions_hit.sort_unstable();
    let mut both = [pty_row.id.as_str(), exec_row.id.as_str()];
    both.sort_unstable();
    assert_eq!(
        sessions_hit, both,
        "the end of exec output is indexed: {found:?}"
    );
    assert_eq!(found.index.partly_indexed, 1, "{found:?}");
    assert!(
        found
            .notes(&jiff::tz::TimeZone::UTC)
            .iter()
            .any(|n| n.contains("1 exec sessions without a pty")),
        "{:?}",
        found.notes(&jiff::tz::TimeZone::UTC)
    );
    b.shutdown().await;
}

/// sshd sends a session's exit status as soon as the program exits, and
/// goes on relaying what is still written to its output (here by a
/// background job; with a pty, the last of the terminal's buffer). A
/// session the bastion ends in that gap did not end as the command did:
/// the person's client exits 255 with the bastion's reason, not with the
/// status the target sent before the output was cut short.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_ended_between_the_exit_status_and_the_last_output_exits_255() {
    use tokio::io::AsyncReadExt;
    let (Some(ssh_bin), Some(sshd_bin)) = (peer("ssh"), peer("sshd")) else {
        return;
    };
    let Real {
        mut b,
        keys: _keys,
        admin_key,
        sshd: _sshd,
        ..
    } = with_real_target(&sshd_bin).await;
    let mut client = tokio::process::Command::new(&ssh_bin)
        .args(client_options(&admin_key))
        .args(["-p", &b.addr.port().to_string(), "admin@127.0.0.1"])
        .args(["real", "(sleep 4; echo LATE-OUTPUT) & echo STARTED; exit 0"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut stdout = client.stdout.take().unwrap();
    let mut seen = Vec::new();
    let started = tokio::time::timeout(std::time::Duration::from_secs(20), async {
        let mut buf = [0u8; 4096];
        while !String::from_utf8_lossy(&seen).contains("STARTED") {
            let n = stdout.read(&mut buf).await.unwrap();
            assert!(n > 0, "the session ended early");
            seen.extend_from_slice(&buf[..n]);
        }
    })
    .await;
    assert!(started.is_ok(), "{:?}", String::from_utf8_lossy(&seen));
    // The shell exits at once (sshd sends its status); the job holds the
    // output open for a few seconds more.
    tokio::time::sleep(std::time::Duration::from_millis(700)).await;
    let socket = b.services.config.control_socket_path();
    let live = b
        .services
        .ops
        .live_sessions(&Caller::local(), &socket)
        .await
        .unwrap();
    assert_eq!(live.len(), 1, "{live:?}");
    b.services
        .ops
        .session_kill(
            &Caller::local(),
            &socket,
            &live[0].session.id,
            "change freeze",
        )
        .await
        .unwrap();
    let out = tokio::time::timeout(
        std::time::Duration::from_secs(20),
        client.wait_with_output(),
    )
    .await
    .expect("the client exits once the session is killed")
    .unwrap();
    seen.extend_from_slice(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!String::from_utf8_lossy(&seen).contains("LATE-OUTPUT"));
    assert!(stderr.contains("change freeze"), "{stderr}");
    assert_eq!(out.status.code(), Some(255), "{stderr}");
    b.shutdown().await;
}
