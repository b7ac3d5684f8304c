//! Issue 13's trust holes, each shown through the client that found it:
//! real OpenSSH (`ssh -tt` in a real pty, ControlMaster, git) where the
//! behaviour depends on the client, the in-process russh client for
//! protocol abuse. A missing peer skips, or fails under
//! RAMPART_REQUIRE_INTEROP=1.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use rampart::model::{Action, Actions};
use rampart::ops::Caller;
use rampart::store::audit_log::Query;
use support::peers::{
    client_options, keypair, peer, real_asset, run, ssh, start_sshd, user_with_key,
};
use support::pty::PtyChild;
use support::ssh::{Client, TestBastion};

const T: Duration = Duration::from_secs(15);

/// OpenSSH `ssh` to the bastion as `login`, as a command to start.
fn ssh_command(ssh: &Path, key: &Path, port: u16, login: &str, args: &[&str]) -> Command {
    let mut cmd = Command::new(ssh);
    cmd.args(client_options(key))
        .args(["-p", &port.to_string(), &format!("{login}@127.0.0.1")])
        .args(args);
    cmd
}

/// A bastion whose admin logs in with a fresh key; returns the key's path.
async fn bastion_with_admin_key(extra: &str) -> (TestBastion, tempfile::TempDir, PathBuf) {
    let b = TestBastion::start_with(extra).await;
    let keys = tempfile::tempdir().unwrap();
    let (key, public) = keypair(keys.path(), "admin");
    user_with_key(&b, "admin", &public).await;
    (b, keys, key)
}

/// A bastion whose admin logs in with a fresh key, and asset `real` on a
/// loopback OpenSSH sshd, with `actions` for admin.
struct Real {
    b: TestBastion,
    keys: tempfile::TempDir,
    key: PathBuf,
    account: String,
    sshd: support::peers::Sshd,
}

async fn with_real_target(sshd_bin: &Path, extra: &str, actions: Actions) -> Real {
    let (b, keys, key) = bastion_with_admin_key(extra).await;
    let (target_key, target_pub) = keypair(keys.path(), "target");
    let sshd = start_sshd(sshd_bin, &target_pub);
    let account = real_asset(&b, sshd.port, &["ssh"], &target_key, "admin", actions).await;
    Real {
        b,
        keys,
        key,
        account,
        sshd,
    }
}

// ---------------------------------------------------------------- item 1 --

/// Menu, a session, `exit`, the menu again, a second session, `q`: the
/// target's EOF and exit status must not reach OpenSSH while the menu is to
/// come back (it drops all output after an EOF).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openssh_gets_the_menu_back_after_each_session() {
    let Some(ssh_bin) = peer("ssh") else { return };
    let (mut b, _keys, key) = bastion_with_admin_key("").await;
    let cmd = ssh_command(&ssh_bin, &key, b.addr.port(), "admin", &["-tt"]);
    let mut term = PtyChild::spawn(cmd, 100, 30);
    for round in 1..=2 {
        assert!(
            term.wait_for(T, |s| s.contains("demo") && s.contains("127.0.0.1"))
                .await,
            "round {round}, no menu:\n{}",
            term.text()
        );
        term.send(b"\r");
        assert!(
            term.wait_for(T, |s| s.contains("demo@demo:~$")).await,
            "round {round}, no shell:\n{}",
            term.text()
        );
        term.send(format!("echo round-{round}\r").as_bytes());
        assert!(
            term.wait_for(T, |s| s.matches(&format!("round-{round}")).count() >= 2)
                .await,
            "{}",
            term.text()
        );
        term.send(b"exit\r");
        assert!(
            term.wait_for(T, |s| s.contains("session on demo ended"))
                .await,
            "round {round}, the menu did not come back:\n{}",
            term.text()
        );
    }
    term.send(b"q");
    assert_eq!(term.wait_exit(T).await, Some(0), "{}", term.text());
    b.shutdown().await;
}

/// A paste holding bytes that are not UTF-8, from a real terminal through
/// OpenSSH, into the menu: it used to crash the menu (termwiz consumed
/// more than it had buffered). The menu takes it as text and goes on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paste_that_is_not_utf8_leaves_the_menu_working() {
    let Some(ssh_bin) = peer("ssh") else { return };
    let (mut b, _keys, key) = bastion_with_admin_key("").await;
    let cmd = ssh_command(&ssh_bin, &key, b.addr.port(), "admin", &["-tt"]);
    let mut term = PtyChild::spawn(cmd, 100, 30);
    assert!(
        term.wait_for(T, |s| s.contains("demo") && s.contains("127.0.0.1"))
            .await,
        "no menu:\n{}",
        term.text()
    );
    term.send(b"\x1b[200~de\xff\xfe\x1b[201~");
    tokio::time::sleep(Duration::from_millis(300)).await;
    // Out of the filter again, then into the demo target as usual.
    term.send(b"\x7f\x7f\x7f\x7f");
    tokio::time::sleep(Duration::from_millis(300)).await;
    term.send(b"\r");
    assert!(
        term.wait_for(T, |s| s.contains("demo@demo:~$")).await,
        "the menu did not go on after the paste:\n{}",
        term.text()
    );
    term.send(b"exit\r");
    assert!(
        term.wait_for(T, |s| s.contains("session on demo ended"))
            .await,
        "{}",
        term.text()
    );
    term.send(b"q");
    assert_eq!(term.wait_exit(T).await, Some(0), "{}", term.text());
    b.shutdown().await;
}

// ------------------------------------------------------- items 2 and 12 --

/// Several sessions over one OpenSSH ControlMaster connection, with and
/// without a terminal: each gets its output and exactly one exit status
/// (a second one is "exitval sent twice" to the mux, which failed every
/// ansible run).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn controlmaster_sessions_each_get_one_exit_status() {
    let (Some(ssh_bin), Some(sshd_bin)) = (peer("ssh"), peer("sshd")) else {
        return;
    };
    let Real {
        mut b,
        keys,
        key,
        account: _,
        sshd: _sshd,
    } = with_real_target(&sshd_bin, "", Actions::all_but_tunnel()).await;
    let port = b.addr.port();
    let control = keys.path().join("ctl");
    let mux = |args: &[&str]| {
        let mut cmd = Command::new(&ssh_bin);
        cmd.args(client_options(&key))
            .args(["-o", "ControlMaster=auto", "-o", "ControlPersist=30"])
            .arg("-o")
            .arg(format!("ControlPath={}", control.display()))
            .args(["-p", &port.to_string(), "admin@127.0.0.1"])
            .args(args);
        cmd
    };
    for i in 0..5 {
        let ran = run(
            mux(&["real", &format!("echo mux-{i}; exit {i}")]).into(),
            b"",
            T,
        )
        .await;
        if ran.code != Some(i) {
            let rows = b
                .services
                .ops
                .session_list(&Caller::local(), &Query::default(), false)
                .await
                .unwrap();
            panic!(
                "session {i}: exit {:?}, stdout {:?}, stderr {:?}; the bastion's rows: {rows:#?}",
                ran.code,
                ran.stdout_text(),
                ran.stderr
            );
        }
        assert_eq!(ran.stdout_text(), format!("mux-{i}\n"), "{}", ran.stderr);
        assert!(!ran.stderr.contains("exitval"), "{}", ran.stderr);
    }
    // Stdin a terminal, through the same master (this is what failed for
    // every one of 5 sessions before).
    for i in 0..3 {
        let mut term = PtyChild::spawn(mux(&["-tt", "real"]), 100, 30);
        assert!(
            term.wait_for(T, |s| s.contains('$') || s.contains('#'))
                .await,
            "{}",
            term.text()
        );
        term.send(format!("echo tty-$((40+{i}))\rexit {}\r", 10 + i).as_bytes());
        assert!(
            term.wait_for(T, |s| s.contains(&format!("tty-{}", 40 + i)))
                .await,
            "{}",
            term.text()
        );
        assert_eq!(term.wait_exit(T).await, Some(10 + i), "{}", term.raw());
        assert!(!term.raw().contains("exitval"), "{}", term.raw());
    }
    let _ = mux(&["-O", "exit", "real"]).output();
    b.shutdown().await;
}

/// `env` requests come without want-reply: a reply to them was taken by
/// OpenSSH as the answer to the exec after it. Allowed ones reach the
/// target (git's GIT_PROTOCOL among them), refused ones cost nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn env_requests_without_want_reply_do_not_answer_the_exec() {
    let (Some(ssh_bin), Some(sshd_bin)) = (peer("ssh"), peer("sshd")) else {
        return;
    };
    let Real {
        mut b,
        keys: _keys,
        key,
        account,
        sshd: _sshd,
    } = with_real_target(&sshd_bin, "", Actions::all_but_tunnel()).await;
    let port = b.addr.port();
    let (out, err, code) = ssh(
        &ssh_bin,
        &key,
        port,
        &format!("admin@{account}@real"),
        &[
            // One SetEnv option: OpenSSH takes only the first given.
            "-o",
            "SetEnv=GIT_PROTOCOL=version=2 NOT_ALLOWED=1 LC_RAMPART=passed",
            "echo \"[$GIT_PROTOCOL] [$LC_RAMPART] [$NOT_ALLOWED]\"",
        ],
        b"",
    )
    .await;
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(out, "[version=2] [passed] []\n", "{err}");
    b.shutdown().await;
}

/// `git clone` and `git push` through the bastion with the target in the
/// login name, as a developer would.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn git_clone_and_push_through_the_bastion() {
    let (Some(ssh_bin), Some(sshd_bin), Some(git)) = (peer("ssh"), peer("sshd"), peer("git"))
    else {
        return;
    };
    let Real {
        mut b,
        keys: _keys,
        key,
        account,
        sshd: _sshd,
    } = with_real_target(&sshd_bin, "", Actions::all_but_tunnel()).await;
    let work = tempfile::tempdir().unwrap();
    let origin = work.path().join("origin.git");
    let git_run = |args: &[&str], dir: &Path| {
        let out = Command::new(&git)
            .args(args)
            .current_dir(dir)
            .env(
                "GIT_SSH_COMMAND",
                format!(
                    "{} {} -p {}",
                    ssh_bin.display(),
                    client_options(&key).join(" "),
                    b.addr.port()
                ),
            )
            .env("GIT_AUTHOR_NAME", "t")
            .env("GIT_AUTHOR_EMAIL", "t@example.org")
            .env("GIT_COMMITTER_NAME", "t")
            .env("GIT_COMMITTER_EMAIL", "t@example.org")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "git {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    git_run(
        &["init", "-q", "--bare", origin.to_str().unwrap()],
        work.path(),
    );
    let url = format!("ssh://admin@{account}@real@127.0.0.1{}", origin.display());
    git_run(&["clone", "-q", &url, "clone"], work.path());
    let clone = work.path().join("clone");
    std::fs::write(clone.join("README"), "through the bastion\n").unwrap();
    git_run(&["add", "README"], &clone);
    git_run(&["commit", "-q", "-m", "first"], &clone);
    git_run(&["push", "-q", "origin", "HEAD:refs/heads/main"], &clone);
    git_run(&["clone", "-q", "-b", "main", &url, "again"], work.path());
    assert_eq!(
        std::fs::read_to_string(work.path().join("again/README")).unwrap(),
        "through the bastion\n"
    );
    b.shutdown().await;
}

// ---------------------------------------------------------------- item 3 --

/// A session the bastion ends (killed, revoked, idle, shut down) or one
/// the target ends with a signal is not a success: OpenSSH exits 255.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_the_bastion_ends_exit_255() {
    let (Some(ssh_bin), Some(sshd_bin)) = (peer("ssh"), peer("sshd")) else {
        return;
    };
    let Real {
        mut b,
        keys: _keys,
        key,
        account: _,
        sshd: _sshd,
    } = with_real_target(
        &sshd_bin,
        "idle_timeout = \"2s\"\n",
        Actions::all_but_tunnel(),
    )
    .await;
    let port = b.addr.port();
    let start = |command: &str| {
        let mut cmd: tokio::process::Command =
            ssh_command(&ssh_bin, &key, port, "admin", &["real", command]).into();
        cmd.stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .kill_on_drop(true);
        cmd.spawn().unwrap()
    };
    let finished = |child: tokio::process::Child| async move {
        let out = tokio::time::timeout(T, child.wait_with_output())
            .await
            .expect("ssh exits")
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let live_one = |b: &TestBastion| {
        let b = b.shared.clone();
        async move {
            for _ in 0..200 {
                if let Some(s) = b.live.list().first() {
                    return s.session.id.clone();
                }
                tokio::time::sleep(Duration::from_millis(25)).await;
            }
            panic!("no live session");
        }
    };

    // The target's own statuses pass unchanged, 0 included.
    let (code, err) = finished(start("exit 0")).await;
    assert_eq!(code, Some(0), "{err}");
    // Killed by a signal on the target.
    let (code, err) = finished(start("kill -9 $$")).await;
    assert_eq!(code, Some(255), "signal: {err}");
    // Killed by staff.
    let child = start("echo started; sleep 1; while :; do echo tick; sleep 1; done");
    let id = live_one(&b).await;
    assert!(b.shared.live.kill(&id, "test", "auditor"));
    let (code, err) = finished(child).await;
    assert_eq!(code, Some(255), "kill: {err}");
    assert!(err.contains("session ended by auditor"), "{err}");
    // Idle timeout (2 s without output).
    let (code, err) = finished(start("sleep 30")).await;
    assert_eq!(code, Some(255), "idle: {err}");
    assert!(err.contains("idle"), "{err}");
    // Revoked: the permission goes while it runs.
    let child = start("while :; do echo tick; sleep 1; done");
    live_one(&b).await;
    b.services
        .ops
        .perm_remove(&Caller::local(), "admin-real")
        .await
        .unwrap();
    b.reload().await;
    let (code, err) = finished(child).await;
    assert_eq!(code, Some(255), "revoked: {err}");
    // Bastion shutdown.
    real_asset_again(&b).await;
    let child = start("while :; do echo tick; sleep 1; done");
    live_one(&b).await;
    b.shutdown().await;
    let (code, err) = finished(child).await;
    assert_eq!(code, Some(255), "shutdown: {err}");
}

/// The permission of `real` for admin, again (after a test removed it).
async fn real_asset_again(b: &TestBastion) {
    support::peers::permit(
        b,
        "admin-real-2",
        "admin",
        &["real"],
        Actions::all_but_tunnel(),
    )
    .await;
    b.reload().await;
}

// ---------------------------------------------------------------- item 7 --

/// With `mfa = "required"`, a login that has not enrolled has passed one
/// factor: no tunnel, like no session.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mfa_required_applies_to_tunnels() {
    let mut b = TestBastion::start_with("[auth]\nmfa = \"required\"\n").await;
    support::peers::permit(
        &b,
        "tunnels",
        "admin",
        &["demo"],
        Actions::all_but_tunnel().with(Action::Tunnel),
    )
    .await;
    b.reload().await;
    let c = Client::admin(b.addr).await;
    let port = b.demo.addr.port();
    let opened = c
        .handle
        .channel_open_direct_tcpip("demo", u32::from(port), "127.0.0.1", 5000)
        .await;
    assert!(opened.is_err(), "a tunnel opened with one factor");
    let rows = b
        .services
        .ops
        .audit_refusals(&Caller::local(), &Query::default())
        .await
        .unwrap();
    assert!(
        rows.iter()
            .any(|r| r.request == "direct-tcpip" && r.reason.contains("enrolment")),
        "{rows:#?}"
    );
    b.shutdown().await;
}

// ---------------------------------------------------------------- item 8 --

/// A deny rule on `touch ...rampart-marker...`, for everyone.
async fn deny_marker(b: &TestBastion) {
    b.services
        .ops
        .filter_add(
            &Caller::local(),
            rampart::ops::FilterSpec {
                name: "no-marker".into(),
                pattern: r"touch\s+\S*rampart-marker".into(),
                action: rampart::model::FilterAction::Deny,
                on: Default::default(),
                priority: 10,
                users: vec![],
                groups: vec![],
                assets: vec![],
                nodes: vec![],
                accounts: rampart::model::AccountSpec::all(),
            },
        )
        .await
        .unwrap();
    b.reload().await;
}

/// A command the filters refuse is refused before the bastion logs in to
/// the target: the vaulted credential is not used for it, and a target
/// never reached gets no host key pinned on first use.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_exec_never_reaches_the_target() {
    let (Some(ssh_bin), Some(sshd_bin)) = (peer("ssh"), peer("sshd")) else {
        return;
    };
    let Real {
        mut b,
        keys: _keys,
        key,
        account: _,
        sshd: _sshd,
    } = with_real_target(&sshd_bin, "", Actions::all_but_tunnel()).await;
    deny_marker(&b).await;
    let cmd: tokio::process::Command = ssh_command(
        &ssh_bin,
        &key,
        b.addr.port(),
        "admin",
        &["real", "touch /tmp/rampart-marker-never"],
    )
    .into();
    let ran = run(cmd, b"", T).await;
    assert_eq!(ran.code, Some(255), "{}", ran.stderr);
    assert!(
        ran.stderr.contains("command refused by rule no-marker"),
        "{}",
        ran.stderr
    );
    let asset = b
        .services
        .ops
        .asset_show(&Caller::local(), "real")
        .await
        .unwrap()
        .asset
        .id;
    let mut conn = b.services.store.conn().await.unwrap();
    let pinned = rampart::store::assets::host_keys(&mut conn, &asset)
        .await
        .unwrap();
    assert!(pinned.is_empty(), "the target was connected: {pinned:?}");
    drop(conn);
    b.shutdown().await;
}

/// The three ways around the command filter that real OpenSSH clients
/// found: a shell started by an exec with a pty, a shell without a pty,
/// and lines typed after switching to the alternate screen. Each is
/// filtered or refused, and nothing denied runs on the target.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn command_filters_cover_exec_shells_pty_less_shells_and_the_alternate_screen() {
    let (Some(ssh_bin), Some(sshd_bin)) = (peer("ssh"), peer("sshd")) else {
        return;
    };
    let Real {
        mut b,
        keys: _keys,
        key,
        account: _,
        sshd: _sshd,
    } = with_real_target(&sshd_bin, "", Actions::all_but_tunnel()).await;
    deny_marker(&b).await;
    let port = b.addr.port();
    let markers = tempfile::tempdir().unwrap();
    let marker = |n: u32| markers.path().join(format!("rampart-marker-{n}"));

    // 1. `ssh -t bastion real bash`: an exec with a pty that is a shell.
    let mut term = PtyChild::spawn(
        ssh_command(
            &ssh_bin,
            &key,
            port,
            "admin",
            &["-tt", "real", "bash --norc -i"],
        ),
        100,
        30,
    );
    assert!(
        term.wait_for(T, |s| s.contains('$') || s.contains('#'))
            .await,
        "{}",
        term.text()
    );
    term.send(format!("touch {}\r", marker(1).display()).as_bytes());
    assert!(
        term.wait_for(T, |s| s.contains("refused by rule no-marker"))
            .await,
        "{}",
        term.text()
    );
    term.send(b"exit\r");
    term.wait_exit(T).await;
    assert!(
        !marker(1).exists(),
        "the denied command ran in an exec'd shell"
    );

    // 2. `ssh -T bastion real` with commands on stdin: refused, with why.
    let cmd: tokio::process::Command =
        ssh_command(&ssh_bin, &key, port, "admin", &["-T", "real"]).into();
    let ran = run(
        cmd,
        format!("touch {}\n", marker(2).display()).as_bytes(),
        T,
    )
    .await;
    assert_eq!(ran.code, Some(255), "{}", ran.stderr);
    assert!(ran.stderr.contains("cannot be filtered"), "{}", ran.stderr);
    assert!(!marker(2).exists(), "a pty-less shell ran a denied command");

    // 3. The alternate screen: the shell switches to it, then the line.
    let mut term = PtyChild::spawn(
        ssh_command(&ssh_bin, &key, port, "admin", &["-tt", "real"]),
        100,
        30,
    );
    assert!(
        term.wait_for(T, |s| s.contains('$') || s.contains('#'))
            .await,
        "{}",
        term.text()
    );
    term.send(b"printf '\\033[?1049h'\r");
    tokio::time::sleep(Duration::from_millis(500)).await;
    term.send(format!("touch {}\r", marker(3).display()).as_bytes());
    assert!(
        term.wait_for(T, |s| s.contains("refused")).await,
        "{}",
        term.text()
    );
    term.send(b"printf '\\033[?1049l'\rexit\r");
    term.wait_exit(T).await;
    assert!(
        !marker(3).exists(),
        "a line typed on the alternate screen passed the filter"
    );

    // Each refusal is in the command log, as refused.
    let rows = b
        .services
        .ops
        .audit_commands(&Caller::local(), &Query::default())
        .await
        .unwrap();
    let refused = rows.iter().filter(|r| r.action == "deny").count();
    assert!(refused >= 2, "{rows:#?}");
    b.shutdown().await;
}

// ---------------------------------------------------------------- item 5 --

/// A store that cannot read an asset's pinned keys must refuse the
/// connection, not treat the asset as never pinned (the credential would
/// go to whoever answers, and the answer would be pinned).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreadable_host_key_pins_refuse_the_connection() {
    let mut b = TestBastion::start().await;
    let c = Client::admin(b.addr).await;
    // Pinned on first use.
    let (out, err, code) = c.exec("demo echo first").await;
    assert_eq!((out.as_slice(), code), (&b"first\n"[..], Some(0)), "{err}");
    sqlx::query("ALTER TABLE asset_host_keys RENAME TO asset_host_keys_away")
        .execute(b.services.store.pool())
        .await
        .unwrap();
    let (out, err, code) = c.exec("demo echo second").await;
    assert!(
        out.is_empty(),
        "it connected: {}",
        String::from_utf8_lossy(&out)
    );
    assert_eq!(code, Some(255), "{err}");
    assert!(err.contains("pinned host key cannot be read"), "{err}");
    b.shutdown().await;
}

/// A first pin never replaces a key pinned meanwhile.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_first_pin_never_overwrites_a_pinned_key() {
    let mut b = TestBastion::start().await;
    let asset = b
        .services
        .ops
        .asset_show(&Caller::local(), "demo")
        .await
        .unwrap()
        .asset
        .id;
    let mut conn = b.services.store.conn().await.unwrap();
    let now = jiff::Timestamp::now();
    use rampart::store::assets::{host_keys, pin_first_host_key};
    assert!(
        pin_first_host_key(
            &mut conn,
            &asset,
            "ssh-ed25519",
            "SHA256:real",
            "ssh-ed25519 AAAA",
            now
        )
        .await
        .unwrap()
    );
    assert!(
        !pin_first_host_key(
            &mut conn,
            &asset,
            "ssh-ed25519",
            "SHA256:attacker",
            "ssh-ed25519 BBBB",
            now
        )
        .await
        .unwrap()
    );
    let keys = host_keys(&mut conn, &asset).await.unwrap();
    assert_eq!(keys.len(), 1);
    assert_eq!(keys[0].fingerprint, "SHA256:real");
    drop(conn);
    b.shutdown().await;
}

// --------------------------------------------------------------- item 16 --

/// The connector takes the account from the grant: a secret of another
/// account (or a typed one for a stored account) is refused before any
/// connection is made.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_grant_only_connects_with_its_own_account() {
    use rampart::upstream::{TargetSecret, UpstreamError, connect_ssh};
    let mut b = TestBastion::start().await;
    let admin = b
        .services
        .ops
        .user_show(&Caller::local(), "admin")
        .await
        .unwrap();
    let identity = rampart::model::Identity {
        user_id: admin.user.id.clone(),
        name: "admin".into(),
        role: rampart::model::Role::Admin,
        groups: vec![],
    };
    let grant = b
        .shared
        .policy()
        .authorize(
            &identity,
            "demo",
            "demo",
            "ssh",
            Action::Connect,
            jiff::Timestamp::now(),
        )
        .expect("admin may use demo");
    let other = TargetSecret::Stored {
        account_id: "another-account".into(),
        kind: rampart::model::SecretKind::Password,
        sealed: None,
    };
    let options = rampart::upstream::ConnectOptions::default();
    let typed = TargetSecret::Typed(rampart::vault::Secret::new("typed".into()));
    for secret in [other, typed] {
        let result = connect_ssh(&grant, secret, b.services.vault.as_ref(), vec![], &options).await;
        assert!(
            matches!(result, Err(UpstreamError::NotThisAccount)),
            "{:?}",
            result.err()
        );
    }
    b.shutdown().await;
}

// --------------------------------------------------------------- item 13 --

/// Refused tunnels are logged up to a limit per connection; the rest are
/// counted in one row when the connection ends.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusal_rows_are_capped_per_connection_and_summarised() {
    let mut b = TestBastion::start().await;
    let c = Client::admin(b.addr).await;
    for i in 0..60u32 {
        let _ = c
            .handle
            .channel_open_direct_tcpip("nowhere", 1000 + i, "127.0.0.1", 5000)
            .await;
    }
    let rows = || async {
        b.services
            .ops
            .audit_refusals(&Caller::local(), &Query::default())
            .await
            .unwrap()
    };
    let tunnels = rows()
        .await
        .iter()
        .filter(|r| r.request == "direct-tcpip")
        .count();
    assert_eq!(tunnels as u32, rampart::ssh::REFUSALS_LOGGED);
    c.close().await;
    let mut summary = None;
    for _ in 0..100 {
        summary = rows().await.into_iter().find(|r| r.request == "(summary)");
        if summary.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let summary = summary.expect("a summary row");
    assert!(summary.reason.contains("40 further"), "{summary:?}");
    b.shutdown().await;
}

/// `ssh.max_sessions_per_user`: one session more is refused with a line.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_per_person_are_capped() {
    let mut b = TestBastion::start_with("max_sessions_per_user = 2\n").await;
    let c = Client::admin(b.addr).await;
    let mut one = c.shell(80, 24, Some("demo")).await;
    let mut two = c.shell(80, 24, Some("demo")).await;
    for t in [&mut one, &mut two] {
        assert!(
            t.wait_for(T, |s| s.contains("demo@demo:~$")).await,
            "{}",
            t.text()
        );
    }
    let (out, err, code) = c.exec("demo echo three").await;
    assert!(out.is_empty());
    assert_eq!(code, Some(255));
    assert!(err.contains("max_sessions_per_user"), "{err}");
    one.send(b"exit\r").await;
    assert!(one.wait_close(T).await);
    let (out, err, code) = c.exec("demo echo three").await;
    assert_eq!((out.as_slice(), code), (&b"three\n"[..], Some(0)), "{err}");
    b.shutdown().await;
}

// ---------------------------------------------------------------- item 9 --

/// An upload-only person's scp that takes several seconds is not cut off
/// by the per-second recheck (it used to recheck `connect`, which they
/// do not have).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upload_only_transfer_outlives_the_recheck() {
    let (Some(scp_bin), Some(sshd_bin)) = (peer("scp"), peer("sshd")) else {
        return;
    };
    let upload = Actions::NONE.with(Action::Upload);
    let Real {
        mut b,
        keys: _keys,
        key,
        account,
        sshd: _sshd,
    } = with_real_target(&sshd_bin, "", upload).await;
    let dir = tempfile::tempdir().unwrap();
    let source = dir.path().join("payload");
    std::fs::write(&source, vec![b'x'; 400 * 1024]).unwrap();
    let dest = dir.path().join("arrived");
    let mut cmd = tokio::process::Command::new(&scp_bin);
    // 800 kbit/s: about 4 seconds for 400 KiB.
    cmd.args(client_options(&key))
        .args(["-O", "-l", "800", "-P", &b.addr.port().to_string()])
        .arg(&source)
        .arg(format!("admin@{account}@real@127.0.0.1:{}", dest.display()));
    let started = std::time::Instant::now();
    let ran = run(cmd, b"", Duration::from_secs(60)).await;
    assert_eq!(ran.code, Some(0), "{}", ran.stderr);
    assert!(
        started.elapsed() > Duration::from_secs(2),
        "the transfer was not slow enough to test"
    );
    assert_eq!(std::fs::metadata(&dest).unwrap().len(), 400 * 1024);
    b.shutdown().await;
}

/// ansible through the bastion, with its default ControlMaster
/// multiplexing (it failed with "exitval sent twice" before): ping, copy
/// and shell on a real sshd, the target in the login name.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ansible_ping_copy_and_shell_through_the_bastion() {
    let (Some(sshd_bin), Some(ansible)) = (peer("sshd"), on_path("ansible")) else {
        return;
    };
    let Real {
        mut b,
        keys: _keys,
        key,
        account,
        sshd: _sshd,
    } = with_real_target(&sshd_bin, "", Actions::all_but_tunnel()).await;
    let work = tempfile::tempdir().unwrap();
    let inventory = work.path().join("hosts");
    std::fs::write(
        &inventory,
        format!(
            "real ansible_host=127.0.0.1 ansible_port={} ansible_user=admin@{account}@real \
             ansible_ssh_private_key_file={} ansible_python_interpreter=/usr/bin/python3 \
             ansible_ssh_common_args='-F /dev/null -o UserKnownHostsFile=/dev/null -o IdentitiesOnly=yes'\n",
            b.addr.port(),
            key.display()
        ),
    )
    .unwrap();
    let source = work.path().join("payload");
    std::fs::write(&source, "copied by ansible\n").unwrap();
    let dest = work.path().join("arrived");
    let module = |args: &[&str]| {
        let mut cmd = tokio::process::Command::new(&ansible);
        cmd.arg("real")
            .arg("-i")
            .arg(&inventory)
            .args(args)
            .env("ANSIBLE_HOST_KEY_CHECKING", "False")
            .env("ANSIBLE_SSH_CONTROL_PATH_DIR", work.path().join("cp"))
            .env("ANSIBLE_LOCAL_TEMP", work.path().join("tmp"))
            .env("ANSIBLE_NOCOLOR", "1");
        cmd
    };
    let ran = run(module(&["-m", "ping"]), b"", Duration::from_secs(120)).await;
    assert_eq!(ran.code, Some(0), "{}{}", ran.stdout_text(), ran.stderr);
    assert!(ran.stdout_text().contains("pong"), "{}", ran.stdout_text());
    let copy = format!("src={} dest={}", source.display(), dest.display());
    let ran = run(
        module(&["-m", "copy", "-a", &copy]),
        b"",
        Duration::from_secs(120),
    )
    .await;
    assert_eq!(ran.code, Some(0), "{}{}", ran.stdout_text(), ran.stderr);
    assert_eq!(
        std::fs::read_to_string(&dest).unwrap(),
        "copied by ansible\n"
    );
    let ran = run(
        module(&["-m", "shell", "-a", "echo shell-$((6*7))"]),
        b"",
        Duration::from_secs(120),
    )
    .await;
    assert_eq!(ran.code, Some(0), "{}{}", ran.stdout_text(), ran.stderr);
    assert!(
        ran.stdout_text().contains("shell-42"),
        "{}",
        ran.stdout_text()
    );
    b.shutdown().await;
}

/// A program on PATH (pip installs ansible outside the system folders
/// `peer` looks in), or a skip (a failure when interop is required).
fn on_path(program: &str) -> Option<PathBuf> {
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(program))
            .find(|p| p.is_file())
    });
    if found.is_none() {
        return peer(program);
    }
    found
}

// --------------------------------------------------------------- item 12 --

/// Every want-reply request gets exactly one reply, in order; one without
/// want-reply gets none; requests after the session started are refused
/// once each, on every kind of channel.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_request_wanting_a_reply_gets_exactly_one_in_order() {
    use russh::ChannelMsg;
    let mut b = TestBastion::start().await;
    let c = Client::admin(b.addr).await;
    /// The replies (true: success) until `until` of them came, then a
    /// short wait for any stray one.
    async fn replies(ch: &mut russh::Channel<russh::client::Msg>, until: usize) -> Vec<bool> {
        let mut got = Vec::new();
        loop {
            let wait = if got.len() < until {
                T
            } else {
                Duration::from_millis(300)
            };
            match tokio::time::timeout(wait, ch.wait()).await {
                Ok(Some(ChannelMsg::Success)) => got.push(true),
                Ok(Some(ChannelMsg::Failure)) => got.push(false),
                Ok(Some(_)) => {}
                Ok(None) | Err(_) => return got,
            }
        }
    }
    // Pipelined as OpenSSH sends them: pty (reply), env x2 (none), shell.
    let mut ch = c.handle.channel_open_session().await.unwrap();
    ch.request_pty(true, "xterm", 80, 24, 0, 0, &[])
        .await
        .unwrap();
    ch.set_env(false, "LANG", "C.UTF-8").await.unwrap();
    ch.set_env(false, "NOT_ALLOWED", "1").await.unwrap();
    ch.exec(true, "demo").await.unwrap();
    assert_eq!(replies(&mut ch, 2).await, vec![true, true], "pty, exec");
    // After the start: each is refused once; env without want-reply gets
    // nothing.
    ch.exec(true, "demo").await.unwrap();
    ch.set_env(false, "LANG", "C").await.unwrap();
    ch.request_shell(true).await.unwrap();
    assert_eq!(
        replies(&mut ch, 2).await,
        vec![false, false],
        "after the start"
    );
    // The menu and the admin CLI channels answer the same way.
    for command in [None, Some("rampart user list")] {
        let mut ch = c.handle.channel_open_session().await.unwrap();
        ch.request_pty(true, "xterm", 80, 24, 0, 0, &[])
            .await
            .unwrap();
        match command {
            Some(cmd) => ch.exec(true, cmd).await.unwrap(),
            None => ch.request_shell(true).await.unwrap(),
        }
        ch.request_subsystem(true, "sftp").await.unwrap();
        assert_eq!(
            replies(&mut ch, 3).await,
            vec![true, true, false],
            "{command:?}"
        );
    }
    b.shutdown().await;
}

/// `LC_*` is an open family: a client setting hundreds gets 24 taken, the
/// rest refused, and past 64 requests before a session the channel closes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn environment_variables_are_capped_per_channel() {
    use russh::ChannelMsg;
    let mut b = TestBastion::start().await;
    let c = Client::admin(b.addr).await;
    let mut ch = c.handle.channel_open_session().await.unwrap();
    let (mut taken, mut refused, mut closed) = (0, 0, false);
    let tally =
        |msg: ChannelMsg, taken: &mut usize, refused: &mut usize, closed: &mut bool| match msg {
            ChannelMsg::Success => *taken += 1,
            ChannelMsg::Failure => *refused += 1,
            ChannelMsg::Close => *closed = true,
            _ => {}
        };
    // The replies are read while sending: unread, they fill the client's
    // channel queue, its session task waits on it, and the next send waits
    // on that task (the test hung that way now and then).
    'send: for i in 0..100 {
        let sent = tokio::time::timeout(
            T,
            ch.set_env(true, format!("LC_FLOOD_{i}"), "x".repeat(100)),
        )
        .await;
        if !matches!(sent, Ok(Ok(()))) {
            break;
        }
        while let Ok(Some(msg)) = tokio::time::timeout(Duration::ZERO, ch.wait()).await {
            tally(msg, &mut taken, &mut refused, &mut closed);
            if closed {
                break 'send;
            }
        }
    }
    while !closed {
        match tokio::time::timeout(T, ch.wait()).await {
            Ok(Some(msg)) => tally(msg, &mut taken, &mut refused, &mut closed),
            _ => break,
        }
    }
    assert_eq!(taken, rampart::ssh::request::MAX_ENV);
    assert!(
        closed,
        "the channel stays open after {taken} + {refused} requests"
    );
    assert!(taken + refused <= 100, "{taken} + {refused}");
    b.shutdown().await;
}
