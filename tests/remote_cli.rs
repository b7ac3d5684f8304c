//! The ops CLI over SSH as people use it (DESIGN.md §2, "Ops CLI"):
//! `ssh bastion rampart ... --password-stdin < file`, the role checks with
//! their refusal rows, and `rampart me ...` for every role. Assertions are
//! on what the person sees (stdout, stderr, exit status), on what logs in
//! afterwards, and on the rows an auditor finds.

mod support;

use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use rampart::auth::totp;
use rampart::model::Role;
use rampart::ops::{Caller, UserSpec};
use rampart::store::audit_log::{OperationRow, Query, RefusalRow};
use rampart::vault::Secret;
use russh::client::{AuthResult, KeyboardInteractiveAuthResponse};
use support::ssh::{Client, TestBastion, new_key};

fn admin() -> Caller {
    Caller::local()
}

async fn add_user(b: &TestBastion, name: &str, role: Role, password: Option<&str>, keys: &[&str]) {
    b.services
        .ops
        .user_add(
            &admin(),
            UserSpec {
                name: name.into(),
                role: Some(role),
                password: password.map(|p| Secret::new(p.to_string())),
                keys: keys.iter().map(|k| k.to_string()).collect(),
                ..Default::default()
            },
        )
        .await
        .expect("user added");
}

async fn operations(b: &TestBastion) -> Vec<OperationRow> {
    b.services
        .ops
        .audit_operations(&admin(), &Query::default())
        .await
        .unwrap()
}

async fn refusals(b: &TestBastion) -> Vec<RefusalRow> {
    b.services
        .ops
        .audit_refusals(&admin(), &Query::default())
        .await
        .unwrap()
}

/// The one line on stderr of a refused verb.
#[track_caller]
fn one_line(err: &str, status: Option<u32>) -> String {
    assert_eq!(status, Some(1), "expected a refusal, stderr: {err}");
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 1, "expected one line on stderr: {err:?}");
    lines[0].to_string()
}

#[track_caller]
fn ok(result: (Vec<u8>, String, Option<u32>)) -> String {
    let (out, err, status) = result;
    assert_eq!(status, Some(0), "expected success, stderr: {err}");
    String::from_utf8(out).expect("UTF-8 output")
}

/// A password login followed by the TOTP code over keyboard-interactive.
async fn login_with_code(b: &TestBastion, user: &str, password: &str, code: &str) -> Client {
    let mut handle = support::ssh::connect(b.addr).await;
    let r = handle.authenticate_password(user, password).await.unwrap();
    assert!(
        matches!(
            r,
            AuthResult::Failure {
                partial_success: true,
                ..
            }
        ),
        "the password alone must not be enough: {r:?}"
    );
    let reply = handle
        .authenticate_keyboard_interactive_start(user, None)
        .await
        .unwrap();
    assert!(
        matches!(reply, KeyboardInteractiveAuthResponse::InfoRequest { .. }),
        "{reply:?}"
    );
    let reply = handle
        .authenticate_keyboard_interactive_respond(vec![code.to_string()])
        .await
        .unwrap();
    assert!(
        matches!(reply, KeyboardInteractiveAuthResponse::Success),
        "{reply:?}"
    );
    Client { handle }
}

/// `--password-stdin` over SSH: the password piped into `ssh` is the one
/// that then logs in, for `user add` and `user passwd`; `account add`
/// takes its secret the same way. The piped passwords appear nowhere: not
/// in the output, not in the operation rows, not in any file of the data
/// dir.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_password_piped_over_ssh_is_the_one_that_logs_in_and_appears_nowhere() {
    const FIRST: &str = "Bob-piped-Secret-41";
    const SECOND: &str = "Bob-second-Secret-42";
    const TARGET: &str = "Svc-target-Secret-43";
    let mut b = TestBastion::start().await;
    let a = Client::admin(b.addr).await;
    let mut seen = String::new();

    let (out, err, status) = a
        .exec_stdin(
            "rampart user add bob --password-stdin",
            format!("{FIRST}\n").as_bytes(),
        )
        .await;
    assert_eq!(status, Some(0), "{err}");
    let out = String::from_utf8_lossy(&out).into_owned();
    assert_eq!(out, "user bob added (user)\n");
    assert!(err.is_empty(), "no one-time password: {err}");
    seen.push_str(&out);
    seen.push_str(&err);
    Client::password(b.addr, "bob", FIRST)
        .await
        .expect("the piped password logs in")
        .close()
        .await;

    // A CR LF line end (a file from Windows) is a line end too.
    let (out, err, status) = a
        .exec_stdin(
            "rampart user passwd bob --password-stdin",
            format!("{SECOND}\r\n").as_bytes(),
        )
        .await;
    assert_eq!(status, Some(0), "{err}");
    assert_eq!(String::from_utf8_lossy(&out), "password of bob changed\n");
    seen.push_str(&String::from_utf8_lossy(&out));
    seen.push_str(&err);
    assert!(Client::password(b.addr, "bob", FIRST).await.is_err());
    Client::password(b.addr, "bob", SECOND)
        .await
        .expect("the new password logs in")
        .close()
        .await;

    let (out, err, status) = a
        .exec_stdin(
            "rampart account add demo svc --password-stdin",
            format!("{TARGET}\n").as_bytes(),
        )
        .await;
    assert_eq!(status, Some(0), "{err}");
    assert_eq!(
        String::from_utf8_lossy(&out),
        "account svc@demo added (secret: password)\n"
    );
    seen.push_str(&String::from_utf8_lossy(&out));
    seen.push_str(&err);

    // A too-weak password is refused in one line that does not quote it.
    let (_, err, status) = a
        .exec_stdin("rampart user passwd bob --password-stdin", b"short\n")
        .await;
    let line = one_line(&err, status);
    assert!(line.contains("too short"), "{line}");
    assert!(!line.contains("short\n") && !line.contains("\"short\""));

    let rows = operations(&b).await;
    let verbs: Vec<(&str, &str, &str)> = rows
        .iter()
        .take(3)
        .map(|r| (r.actor.as_str(), r.via.as_str(), r.verb.as_str()))
        .collect();
    assert_eq!(
        verbs,
        [
            ("admin", "ssh", "account.add"),
            ("admin", "ssh", "user.passwd"),
            ("admin", "ssh", "user.add")
        ]
    );
    let rows_text = serde_json::to_string(&rows).unwrap();
    seen.push_str(&rows_text);
    seen.push_str(&serde_json::to_string(&refusals(&b).await).unwrap());
    for secret in [FIRST, SECOND, TARGET] {
        assert!(!seen.contains(secret), "{secret} was shown or logged");
        for (path, bytes) in support::all_bytes(&b.dir.path().join("data")) {
            assert!(
                !support::contains(&bytes, secret),
                "{secret} is in {} in clear",
                path.display()
            );
        }
    }
    a.close().await;
    b.shutdown().await;
}

/// `account edit --password-stdin` takes its line over SSH too, and `asset
/// test` run by the server shows that the target now refuses it, with the
/// host key it presented; the piped secret is shown and logged nowhere.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn account_edit_and_asset_test_over_ssh() {
    const WRONG: &str = "Wrong-piped-Secret-44";
    let mut b = TestBastion::start().await;
    let a = Client::admin(b.addr).await;

    let (out, err, status) = a.exec("rampart asset test demo").await;
    assert_eq!(status, Some(0), "{err}");
    let out = String::from_utf8_lossy(&out).into_owned();
    assert!(
        out.starts_with("ok: demo@demo authenticated in ") && out.contains("(not pinned yet)"),
        "{out}"
    );

    let (out, err, status) = a
        .exec_stdin(
            "rampart account edit demo demo --password-stdin",
            format!("{WRONG}\n").as_bytes(),
        )
        .await;
    assert_eq!(status, Some(0), "{err}");
    assert_eq!(
        String::from_utf8_lossy(&out),
        "account demo@demo updated (secret: password, privileged: no)\n"
    );

    let (out, err, status) = a.exec("rampart asset test demo").await;
    let line = one_line(&err, status);
    assert_eq!(
        line,
        "rampart: demo@demo: demo refused the credentials of account demo"
    );
    let out = String::from_utf8_lossy(&out).into_owned();
    assert!(out.contains("host key ssh-ed25519 SHA256:"), "{out}");

    let rows = operations(&b).await;
    let verbs: Vec<(&str, &str)> = rows
        .iter()
        .take(3)
        .map(|r| (r.via.as_str(), r.verb.as_str()))
        .collect();
    assert_eq!(
        verbs,
        [
            ("ssh", "asset.test"),
            ("ssh", "account.edit"),
            ("ssh", "asset.test")
        ]
    );
    assert!(!serde_json::to_string(&rows).unwrap().contains(WRONG));
    a.close().await;
    b.shutdown().await;
}

/// Input over SSH is bounded, and missing input is a clear one-line error
/// that changes nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stdin_over_ssh_is_bounded_and_its_absence_is_said() {
    let mut b = TestBastion::start().await;
    let a = Client::admin(b.addr).await;
    let long = vec![b'x'; 5000];
    let (_, err, status) = a
        .exec_stdin("rampart user add eve --password-stdin", &long)
        .await;
    let line = one_line(&err, status);
    assert_eq!(
        line,
        "rampart: standard input is longer than 4096 bytes: give one short line per value"
    );
    let (_, err, status) = a
        .exec_stdin("rampart user add eve --password-stdin", b"")
        .await;
    let line = one_line(&err, status);
    assert!(
        line.starts_with("rampart: no password on standard input: pipe it in"),
        "{line}"
    );
    let (_, err, status) = a
        .exec_stdin("rampart user add eve --password-stdin", b"\xff\xfe\n")
        .await;
    assert_eq!(
        one_line(&err, status),
        "rampart: standard input is not UTF-8 text"
    );
    let users = ok(a.exec("rampart user list").await);
    assert!(!users.contains("eve"), "nothing was added: {users}");
    a.close().await;
    b.shutdown().await;
}

/// A verb that reads nothing never waits for input, even while the
/// client's standard input stays open; one that reads gives up after the
/// line timeout with one line saying what it waited for.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_verbs_that_read_wait_for_input_and_not_for_ever() {
    let mut b = TestBastion::start().await;
    let a = Client::admin(b.addr).await;
    let (out, err, status) =
        tokio::time::timeout(Duration::from_secs(10), a.exec_open("rampart me"))
            .await
            .expect("`rampart me` does not wait for input");
    assert_eq!(status, Some(0), "{err}");
    assert!(String::from_utf8_lossy(&out).contains("name"));

    let started = std::time::Instant::now();
    let (_, err, status) = tokio::time::timeout(
        rampart::cli::LINE_TIMEOUT + Duration::from_secs(20),
        a.exec_open("rampart user add tim --password-stdin"),
    )
    .await
    .expect("the read gives up by itself");
    assert!(started.elapsed() >= rampart::cli::LINE_TIMEOUT);
    let line = one_line(&err, status);
    assert!(
        line.starts_with("rampart: no password arrived on standard input within 30 s"),
        "{line}"
    );
    a.close().await;
    b.shutdown().await;
}

/// The roles over SSH: an auditor reads but does not change, a user does
/// neither (only `me`); each refusal is one line, exit 1, and a refusals
/// row naming the verb (never its arguments).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn roles_are_enforced_over_ssh_with_a_refusal_row_each() {
    let mut b = TestBastion::start().await;
    add_user(&b, "carol", Role::Auditor, Some("carol-Password-123"), &[]).await;
    add_user(&b, "dave", Role::User, Some("dave-Password-123"), &[]).await;
    let carol = Client::password(b.addr, "carol", "carol-Password-123")
        .await
        .unwrap();
    let dave = Client::password(b.addr, "dave", "dave-Password-123")
        .await
        .unwrap();

    let (out, err, status) = carol
        .exec_stdin(
            "rampart user add mallory --password-stdin",
            b"Mallory-Secret-123\n",
        )
        .await;
    assert!(out.is_empty());
    assert_eq!(
        one_line(&err, status),
        "rampart: permission denied: adding a user needs the admin role (carol is auditor)"
    );
    let listed = ok(carol.exec("rampart user list").await);
    assert!(listed.contains("dave") && !listed.contains("mallory"));
    ok(carol.exec("rampart audit operations").await);

    let (_, err, status) = dave.exec("rampart user list").await;
    assert_eq!(
        one_line(&err, status),
        "rampart: permission denied: listing users needs the auditor or admin role (dave is user)"
    );
    // Their own password goes through `me passwd`, which asks for the
    // current one, not through the admin verb.
    let (_, err, status) = dave
        .exec_stdin(
            "rampart user passwd dave --password-stdin",
            b"Dave-New-Password-1\n",
        )
        .await;
    let line = one_line(&err, status);
    assert!(line.contains("rampart me passwd"), "{line}");

    let rows = refusals(&b).await;
    let got: Vec<(&str, &str)> = rows
        .iter()
        .map(|r| (r.user.as_str(), r.request.as_str()))
        .collect();
    assert_eq!(
        got,
        [
            ("dave", "rampart user passwd"),
            ("dave", "rampart user list"),
            ("carol", "rampart user add"),
        ]
    );
    assert!(rows.iter().all(|r| r.source == "127.0.0.1"));
    assert!(!serde_json::to_string(&rows).unwrap().contains("Secret-123"));
    Client::password(b.addr, "dave", "dave-Password-123")
        .await
        .expect("dave's password is unchanged")
        .close()
        .await;
    carol.close().await;
    dave.close().await;
    b.shutdown().await;
}

/// Roles are read when a verb runs, not when the connection was made
/// (issue 13, item 6): an admin disabled, and another demoted, while their
/// connections stay open cannot add an admin on a new channel of those
/// connections. Each refusal is one line, exit 1, and a refusals row.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_disabled_or_demoted_admin_cannot_act_on_a_connection_opened_before() {
    let mut b = TestBastion::start().await;
    add_user(&b, "eve", Role::Admin, Some("eve-Password-123"), &[]).await;
    add_user(&b, "frank", Role::Admin, Some("frank-Password-123"), &[]).await;
    let eve = Client::password(b.addr, "eve", "eve-Password-123")
        .await
        .unwrap();
    let frank = Client::password(b.addr, "frank", "frank-Password-123")
        .await
        .unwrap();
    assert!(ok(eve.exec("rampart user list").await).contains("frank"));
    assert!(ok(frank.exec("rampart user list").await).contains("eve"));

    // As `rampart user disable eve` and `rampart user edit frank --role
    // auditor` run by the local operator.
    let ops = &b.services.ops;
    ops.user_set_active(&admin(), "eve", false).await.unwrap();
    ops.user_edit(
        &admin(),
        "frank",
        rampart::ops::UserEdit {
            role: Some(Role::Auditor),
            ..Default::default()
        },
    )
    .await
    .unwrap();

    let (out, err, status) = eve
        .exec_stdin(
            "rampart user add mallory --role admin --password-stdin",
            b"Mallory-Secret-123\n",
        )
        .await;
    assert!(out.is_empty());
    assert_eq!(
        one_line(&err, status),
        "rampart: permission denied: eve is disabled"
    );
    let (_, err, status) = eve.exec("rampart user list").await;
    assert_eq!(
        one_line(&err, status),
        "rampart: permission denied: eve is disabled"
    );
    let (_, err, status) = frank
        .exec_stdin(
            "rampart user add mallory --role admin --password-stdin",
            b"Mallory-Secret-123\n",
        )
        .await;
    assert_eq!(
        one_line(&err, status),
        "rampart: permission denied: adding a user needs the admin role (frank is auditor)"
    );

    let users = ops.user_list(&admin()).await.unwrap();
    assert!(
        users.iter().all(|u| u.name != "mallory"),
        "no admin was added"
    );
    let got: Vec<(String, String)> = refusals(&b)
        .await
        .into_iter()
        .map(|r| (r.user, r.request))
        .collect();
    for (user, request) in [
        ("eve", "rampart user add"),
        ("eve", "rampart user list"),
        ("frank", "rampart user add"),
    ] {
        assert!(
            got.iter().any(|(u, r)| u == user && r == request),
            "no refusal row for {user} {request}: {got:?}"
        );
    }
    eve.close().await;
    frank.close().await;
    b.shutdown().await;
}

/// The same through a real OpenSSH ControlMaster connection, opened before
/// the disable (the way it was reproduced): the mux's next session is
/// refused in one line, and no admin is added.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_disabled_admin_cannot_act_through_an_openssh_control_master() {
    let Some([ssh]) = support::peers::peers(["ssh"]) else {
        return;
    };
    let mut b = TestBastion::start().await;
    let dir = tempfile::tempdir().unwrap();
    let (key, public) = support::peers::keypair(dir.path(), "eve");
    add_user(&b, "eve", Role::Admin, None, &[public.as_str()]).await;
    let socket = dir.path().join("mux");
    let port = b.addr.port().to_string();
    let login = "eve@127.0.0.1";
    // The master: authenticated, backgrounded (-f), no command (-N).
    let mut master = std::process::Command::new(&ssh);
    master
        .args(support::peers::client_options(&key))
        .args(["-o", "ControlMaster=yes", "-o", "ControlPersist=no"])
        .arg("-o")
        .arg(format!("ControlPath={}", socket.display()))
        .args(["-f", "-N", "-p", &port, login])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    let started = tokio::task::spawn_blocking(move || master.status())
        .await
        .unwrap()
        .expect("ssh master");
    assert!(started.success(), "the master connection logs in");
    let through_mux = |args: &[&str], stdin: &'static [u8]| {
        let mut cmd = tokio::process::Command::new(&ssh);
        cmd.args(support::peers::client_options(&key))
            .args(["-o", "ControlMaster=no"])
            .arg("-o")
            .arg(format!("ControlPath={}", socket.display()))
            .args(["-p", &port, login])
            .args(args);
        support::peers::run(cmd, stdin, Duration::from_secs(30))
    };
    let listed = through_mux(&["rampart", "user", "list"], b"").await;
    assert!(listed.ok(), "{}", listed.stderr);
    assert!(listed.stdout_text().contains("eve"));

    b.services
        .ops
        .user_set_active(&admin(), "eve", false)
        .await
        .unwrap();
    let added = through_mux(
        &[
            "rampart",
            "user",
            "add",
            "mallory",
            "--role",
            "admin",
            "--password-stdin",
        ],
        b"Mallory-Secret-123\n",
    )
    .await;
    assert_eq!(added.code, Some(1), "{}", added.stderr);
    assert_eq!(
        added.stderr.trim_end(),
        "rampart: permission denied: eve is disabled"
    );
    let users = b.services.ops.user_list(&admin()).await.unwrap();
    assert!(users.iter().all(|u| u.name != "mallory"));

    let mut exit = std::process::Command::new(&ssh);
    exit.args(["-F", "/dev/null", "-O", "exit", "-o"])
        .arg(format!("ControlPath={}", socket.display()))
        .args(["-p", &port, login])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    let _ = tokio::task::spawn_blocking(move || exit.status()).await;
    b.shutdown().await;
}

/// An admin command still running (here waiting for its password on
/// standard input) ends within about two seconds of its admin being
/// disabled, saying why, and does nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_command_in_progress_ends_when_its_admin_is_disabled() {
    let mut b = TestBastion::start().await;
    add_user(&b, "eve", Role::Admin, Some("eve-Password-123"), &[]).await;
    let eve = Client::password(b.addr, "eve", "eve-Password-123")
        .await
        .unwrap();
    let mut ch = eve.handle.channel_open_session().await.unwrap();
    ch.exec(true, &b"rampart user add mallory --password-stdin"[..])
        .await
        .unwrap();
    // The verb is waiting for its line.
    tokio::time::sleep(Duration::from_millis(300)).await;
    b.services
        .ops
        .user_set_active(&admin(), "eve", false)
        .await
        .unwrap();
    let disabled = std::time::Instant::now();
    let mut err = Vec::new();
    let mut status = None;
    let closed = tokio::time::timeout(Duration::from_secs(5), async {
        while let Some(msg) = ch.wait().await {
            match msg {
                russh::ChannelMsg::ExtendedData { data, .. } => err.extend_from_slice(&data),
                russh::ChannelMsg::ExitStatus { exit_status } => status = Some(exit_status),
                russh::ChannelMsg::Close => break,
                _ => {}
            }
        }
    })
    .await;
    let err = String::from_utf8_lossy(&err).into_owned();
    assert!(
        closed.is_ok(),
        "the channel stayed open; stderr so far: {err:?}"
    );
    assert!(
        disabled.elapsed() < Duration::from_millis(3000),
        "{:?}",
        disabled.elapsed()
    );
    assert_eq!(status, Some(255), "ended, as OpenSSH's dropped session");
    assert_eq!(err, "rampart: access ended: eve is disabled\n");
    // Too late now: the line arrives after the channel ended.
    let _ = ch.data(&b"Mallory-Secret-123\n"[..]).await;
    let users = b.services.ops.user_list(&admin()).await.unwrap();
    assert!(users.iter().all(|u| u.name != "mallory"));
    eve.close().await;
    b.shutdown().await;
}

/// `ssh bastion rampart import assets - < FILE`: the file piped in is
/// imported as a whole, one operation row per asset; a bad row refuses
/// every row and names the row; a path names a file on the bastion and is
/// refused; an auditor is refused before any input is read, with a
/// refusal row; too much input is one line.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn assets_are_imported_from_standard_input_over_ssh() {
    let mut b = TestBastion::start().await;
    add_user(&b, "carol", Role::Auditor, Some("carol-Password-123"), &[]).await;
    let a = Client::admin(b.addr).await;
    let before = operations(&b).await.len();

    let bad = b"name,address,protocols\r\nweb1,10.0.0.1,ssh/22\r\nweb2,10.0.0.2,\r\n";
    let (out, err, status) = a.exec_stdin("rampart import assets -", bad).await;
    assert!(out.is_empty(), "{}", String::from_utf8_lossy(&out));
    assert_eq!(
        one_line(&err, status),
        "rampart: stdin: row 3, column protocols: empty, but this column is required"
    );
    let listed = ok(a.exec("rampart asset list").await);
    assert!(!listed.contains("web1"), "nothing was imported: {listed}");
    assert_eq!(operations(&b).await.len(), before);

    let (_, err, status) = a.exec_stdin("rampart import assets /etc/passwd", b"").await;
    let line = one_line(&err, status);
    assert!(
        line.contains("only in the local CLI") && line.contains("import assets - < FILE"),
        "{line}"
    );

    let good = b"name,address,protocols,comment\nweb1,10.0.0.1,ssh/22,front\nweb2,10.0.0.2,ssh/22;sftp/22,back\n";
    let out = ok(a.exec_stdin("rampart import assets -", good).await);
    assert_eq!(out, "imported 2 assets from stdin\n");
    let listed = ok(a.exec("rampart asset list").await);
    assert!(
        listed.contains("web1") && listed.contains("10.0.0.2"),
        "{listed}"
    );
    let rows = operations(&b).await;
    let added: Vec<(&str, &str)> = rows
        .iter()
        .filter(|r| r.verb == "asset.add" && r.via == "ssh")
        .map(|r| (r.actor.as_str(), r.object.as_str()))
        .collect();
    assert_eq!(added, [("admin", "asset web2"), ("admin", "asset web1")]);

    let carol = Client::password(b.addr, "carol", "carol-Password-123")
        .await
        .unwrap();
    let (out, err, status) = carol
        .exec_stdin(
            "rampart import assets -",
            b"name,address,protocols\nevil,10.6.6.6,ssh/22\n",
        )
        .await;
    assert!(out.is_empty());
    assert_eq!(
        one_line(&err, status),
        "rampart: permission denied: importing assets needs the admin role (carol is auditor)"
    );
    assert!(!ok(a.exec("rampart asset list").await).contains("evil"));
    let refused: Vec<(String, String)> = refusals(&b)
        .await
        .into_iter()
        .map(|r| (r.user, r.request))
        .collect();
    assert_eq!(
        refused,
        [("carol".to_string(), "rampart import assets".to_string())]
    );

    let huge = vec![b'x'; rampart::cli::MAX_IMPORT + 1];
    let (_, err, status) = tokio::time::timeout(
        Duration::from_secs(60),
        a.exec_stdin("rampart import assets -", &huge),
    )
    .await
    .expect("an oversized input is refused, not waited on");
    assert_eq!(
        one_line(&err, status),
        "rampart: standard input is longer than 16 MiB: split the file and import the parts"
    );
    carol.close().await;
    a.close().await;
    b.shutdown().await;
}

/// `rampart me` for every role: the table and `--json` carry the same
/// fields; `me keys list --json` is one object per line.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn me_shows_the_caller_for_every_role_as_text_and_json() {
    let mut b = TestBastion::start().await;
    add_user(&b, "carol", Role::Auditor, Some("carol-Password-123"), &[]).await;
    add_user(
        &b,
        "dave",
        Role::User,
        Some("dave-Password-123"),
        &[support::ALICE_KEY],
    )
    .await;
    b.services
        .ops
        .group_add(&admin(), "ops")
        .await
        .expect("group");
    b.services
        .ops
        .group_members(&admin(), "ops", &["dave".into()], true)
        .await
        .expect("member");
    for (name, password, role) in [
        ("admin", support::ssh::ADMIN_PASSWORD, "admin"),
        ("carol", "carol-Password-123", "auditor"),
        ("dave", "dave-Password-123", "user"),
    ] {
        let c = Client::password(b.addr, name, password).await.unwrap();
        let text = ok(c.exec("rampart me").await);
        assert!(
            text.lines()
                .any(|l| l.starts_with("name") && l.ends_with(name))
        );
        assert!(
            text.lines()
                .any(|l| l.starts_with("role") && l.ends_with(role))
        );
        assert!(
            text.lines()
                .any(|l| l.starts_with("mfa") && l.ends_with("off"))
        );
        let json = ok(c.exec("rampart me --json").await);
        assert_eq!(json.lines().count(), 1, "{json}");
        let value: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(value["name"], name);
        assert_eq!(value["role"], role);
        let keys: Vec<&String> = value.as_object().unwrap().keys().collect();
        for key in &keys {
            assert!(
                text.lines().any(|l| l.starts_with(key.as_str())),
                "field {key} is in the JSON but not the table: {text}"
            );
        }
        for field in [
            "email",
            "groups",
            "keys",
            "mfa",
            "last_login_at",
            "last_login_from",
        ] {
            assert!(value.get(field).is_some(), "{field}");
        }
        // The login that ran this is already the last one.
        assert_eq!(value["last_login_from"], "127.0.0.1");
        assert_eq!(ok(c.exec("rampart me show --json").await), json);
        c.close().await;
    }

    let d = Client::password(b.addr, "dave", "dave-Password-123")
        .await
        .unwrap();
    let me: serde_json::Value =
        serde_json::from_str(&ok(d.exec("rampart me --json").await)).unwrap();
    assert_eq!(me["groups"], serde_json::json!(["ops"]));
    let fingerprint = me["keys"][0].as_str().unwrap().to_string();
    assert!(fingerprint.starts_with("SHA256:"));
    let table = ok(d.exec("rampart me keys list").await);
    let mut lines = table.lines();
    assert_eq!(
        lines.next().unwrap().split_whitespace().collect::<Vec<_>>(),
        ["FINGERPRINT", "ALGORITHM", "COMMENT", "ADDED"]
    );
    assert!(lines.next().unwrap().starts_with(&fingerprint));
    let json = ok(d.exec("rampart me keys list --json").await);
    let rows: Vec<serde_json::Value> = json
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0]["fingerprint"], fingerprint.as_str());
    assert_eq!(rows[0]["comment"], "alice@laptop");
    for field in ["algorithm", "created_at"] {
        assert!(rows[0].get(field).is_some(), "{field}");
    }
    d.close().await;
    b.shutdown().await;
}

/// `me passwd`: two lines on stdin, the current password then the new
/// one. A wrong current password is a failed proof: one line, a refusal
/// row, and it counts towards the lock like a failed login.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn me_passwd_takes_the_current_password_and_counts_wrong_ones() {
    const OLD: &str = "dave-Password-123";
    const NEW: &str = "Dave-Changed-Secret-9";
    let mut b = TestBastion::start_with("[auth]\nmax_failures = 3\n").await;
    add_user(&b, "dave", Role::User, Some(OLD), &[]).await;
    add_user(&b, "erin", Role::User, Some("erin-Password-123"), &[]).await;
    let d = Client::password(b.addr, "dave", OLD).await.unwrap();

    // Without the flag: a usage error, nothing read.
    let (_, _, status) = d.exec("rampart me passwd").await;
    assert_eq!(status, Some(2));

    let (_, err, status) = d
        .exec_stdin(
            "rampart me passwd --password-stdin",
            format!("not-my-Password-1\n{NEW}\n").as_bytes(),
        )
        .await;
    assert_eq!(
        one_line(&err, status),
        "rampart: the current password is wrong"
    );
    let last = &refusals(&b).await[0];
    assert_eq!(
        (
            last.user.as_str(),
            last.request.as_str(),
            last.reason.as_str()
        ),
        ("dave", "rampart me passwd", "the current password is wrong")
    );
    // A new password that breaks the rules is refused before the current
    // one is checked: it costs no attempt.
    for _ in 0..3 {
        let (_, err, status) = d
            .exec_stdin(
                "rampart me passwd --password-stdin",
                b"wrong-but-uncounted\nshort\n",
            )
            .await;
        assert!(one_line(&err, status).contains("too short"));
    }
    // Only the current password line: the new one is missing.
    let (_, err, status) = d
        .exec_stdin(
            "rampart me passwd --password-stdin",
            format!("{OLD}\n").as_bytes(),
        )
        .await;
    assert!(
        one_line(&err, status).starts_with("rampart: no new password on standard input"),
        "{err}"
    );
    let (out, err, status) = d
        .exec_stdin(
            "rampart me passwd --password-stdin",
            format!("{OLD}\n{NEW}\n").as_bytes(),
        )
        .await;
    assert_eq!(status, Some(0), "{err}");
    assert_eq!(String::from_utf8_lossy(&out), "password of dave changed\n");
    assert!(Client::password(b.addr, "dave", OLD).await.is_err());
    Client::password(b.addr, "dave", NEW)
        .await
        .expect("the new password logs in")
        .close()
        .await;
    let row = &operations(&b).await[0];
    assert_eq!(
        (
            row.actor.as_str(),
            row.via.as_str(),
            row.verb.as_str(),
            row.object.as_str()
        ),
        ("dave", "ssh", "user.passwd", "user dave")
    );
    let text = serde_json::to_string(&row).unwrap();
    assert!(!text.contains(OLD) && !text.contains(NEW), "{text}");

    // Three wrong current passwords lock erin, as three failed logins would.
    let e = Client::password(b.addr, "erin", "erin-Password-123")
        .await
        .unwrap();
    for i in 1..=3 {
        let (_, err, status) = e
            .exec_stdin(
                "rampart me passwd --password-stdin",
                b"guess-Number-1234\nErin-New-Password-1\n",
            )
            .await;
        let line = one_line(&err, status);
        assert_eq!(line.contains("locked until"), i == 3, "attempt {i}: {line}");
    }
    let (_, err, status) = e
        .exec_stdin(
            "rampart me passwd --password-stdin",
            b"erin-Password-123\nErin-New-Password-1\n",
        )
        .await;
    assert!(
        one_line(&err, status).contains("your account is locked until"),
        "even the right password is refused while locked"
    );
    assert!(
        Client::password(b.addr, "erin", "erin-Password-123")
            .await
            .is_err(),
        "the lock stops logins too"
    );
    d.close().await;
    e.close().await;
    b.shutdown().await;
}

/// Wrong current passwords sent in parallel (one channel each) are all
/// counted: guessing faster does not get round the lock.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parallel_wrong_current_passwords_are_all_counted() {
    let mut b = TestBastion::start_with("[auth]\nmax_failures = 4\n").await;
    add_user(&b, "ivan", Role::User, Some("ivan-Password-123"), &[]).await;
    let i = Client::password(b.addr, "ivan", "ivan-Password-123")
        .await
        .unwrap();
    let verb = "rampart me passwd --password-stdin";
    let results = tokio::join!(
        i.exec_stdin(verb, b"guess-Number-0001\nIvan-New-Password-1\n"),
        i.exec_stdin(verb, b"guess-Number-0002\nIvan-New-Password-1\n"),
        i.exec_stdin(verb, b"guess-Number-0003\nIvan-New-Password-1\n"),
        i.exec_stdin(verb, b"guess-Number-0004\nIvan-New-Password-1\n"),
    );
    for (_, err, status) in [results.0, results.1, results.2, results.3] {
        assert!(one_line(&err, status).contains("the current password is wrong"));
    }
    assert!(
        Client::password(b.addr, "ivan", "ivan-Password-123")
            .await
            .is_err(),
        "four failures in parallel lock ivan as four in a row would"
    );
    i.close().await;
    b.shutdown().await;
}

/// With `ssh -t`, `me passwd` asks for each line by name and takes what is
/// typed (Enter sends CR in a raw terminal); nothing typed is echoed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn me_passwd_can_be_typed_after_ssh_t() {
    let mut b = TestBastion::start().await;
    add_user(&b, "dave", Role::User, Some("dave-Password-123"), &[]).await;
    let d = Client::password(b.addr, "dave", "dave-Password-123")
        .await
        .unwrap();
    let mut t = d
        .shell(80, 24, Some("rampart me passwd --password-stdin"))
        .await;
    assert!(
        t.wait_for(Duration::from_secs(10), |s| s.contains("current password:"))
            .await,
        "{}",
        t.text()
    );
    t.send(b"dave-Password-123\r").await;
    assert!(
        t.wait_for(Duration::from_secs(10), |s| s.contains("new password:"))
            .await,
        "{}",
        t.text()
    );
    t.send(b"Typed-New-Password-7\r").await;
    assert!(t.wait_close(Duration::from_secs(10)).await);
    assert_eq!(t.exit, Some(0), "{}", t.text());
    let screen = t.text();
    assert!(screen.contains("password of dave changed"), "{screen}");
    assert!(!screen.contains("Typed-New") && !screen.contains("dave-Password"));
    Client::password(b.addr, "dave", "Typed-New-Password-7")
        .await
        .expect("the typed password logs in")
        .close()
        .await;
    d.close().await;
    b.shutdown().await;
}

/// `me keys`: add (`--key` or stdin), list, remove; the last way to log in
/// cannot be removed; every change is an operation row of the caller's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn me_keys_add_list_remove_but_never_the_last_way_in() {
    let mut b = TestBastion::start().await;
    let (key1, public1) = new_key("frank@one");
    let (key2, public2) = new_key("frank@two");
    add_user(&b, "frank", Role::User, None, &[&public1]).await;
    let f = Client::key(b.addr, "frank", &key1).await.unwrap();
    let me: serde_json::Value =
        serde_json::from_str(&ok(f.exec("rampart me --json").await)).unwrap();
    assert_eq!(me["password"], false);
    let first = me["keys"][0].as_str().unwrap().to_string();

    let (_, err, status) = f.exec(&format!("rampart me keys remove {first}")).await;
    let line = one_line(&err, status);
    assert!(line.contains("your only way to log in"), "{line}");

    let added = ok(f
        .exec_stdin("rampart me keys add", format!("{public2}\n").as_bytes())
        .await);
    assert!(added.starts_with("key SHA256:") && added.ends_with(" added\n"));
    let listed = ok(f.exec("rampart me keys list").await);
    assert!(listed.contains("frank@one") && listed.contains("frank@two"));
    Client::key(b.addr, "frank", &key2)
        .await
        .expect("the added key logs in")
        .close()
        .await;

    ok(f.exec(&format!("rampart me keys remove {first}")).await);
    assert!(
        Client::key(b.addr, "frank", &key1).await.is_err(),
        "the removed key no longer logs in"
    );
    // A third key by --key, then an unknown fingerprint.
    let (_, public3) = new_key("frank@three");
    let out = ok(f
        .exec(&format!("rampart me keys add --key '{public3}' --json"))
        .await);
    let key: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(key["comment"], "frank@three");
    let (_, err, status) = f.exec("rampart me keys remove SHA256:nope").await;
    assert!(one_line(&err, status).contains("you have no key SHA256:nope"));
    // Files on the bastion are never read over SSH.
    let (_, _, status) = f.exec("rampart me keys add --key-file /etc/passwd").await;
    assert_eq!(status, Some(2), "me keys add has no --key-file");

    let verbs: Vec<(String, String)> = operations(&b)
        .await
        .iter()
        .take(3)
        .map(|r| (r.actor.clone(), r.verb.clone()))
        .collect();
    assert_eq!(
        verbs,
        [
            ("frank".to_string(), "user.key-add".to_string()),
            ("frank".to_string(), "user.key-remove".to_string()),
            ("frank".to_string(), "user.key-add".to_string()),
        ]
    );
    // The admin verbs on keys are the admin's, even on oneself.
    let (_, err, status) = f
        .exec(&format!("rampart user key add frank --key '{public3}'"))
        .await;
    assert!(one_line(&err, status).contains("needs the admin role"));
    f.close().await;
    b.shutdown().await;
}

/// `me mfa enrol` draws a QR code and the secret and leaves the enrolment
/// pending; `me mfa confirm CODE` turns it on, after which a password alone
/// no longer logs in; `me mfa reset CODE` turns it off again. The seed is
/// sealed at rest.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn me_mfa_enrol_confirm_and_reset_with_codes_from_the_app() {
    let mut b = TestBastion::start().await;
    add_user(&b, "gina", Role::Auditor, Some("gina-Password-123"), &[]).await;
    let g = Client::password(b.addr, "gina", "gina-Password-123")
        .await
        .unwrap();
    let shown = ok(g.exec("rampart me mfa").await);
    assert!(
        shown
            .lines()
            .any(|l| l.starts_with("mfa ") && l.ends_with(" off")),
        "{shown}"
    );

    let shown = ok(g.exec("rampart me mfa enrol").await);
    assert!(shown.contains("\x1b[30;47m"), "a QR code, black on white");
    assert!(shown.contains('█') && shown.contains('▀'));
    assert!(shown.contains("account: rampart:gina"));
    assert!(shown.contains("rampart me mfa confirm CODE"));
    let secret: String = shown
        .lines()
        .find_map(|l| l.strip_prefix("secret:"))
        .expect("the secret is printed")
        .split_whitespace()
        .collect();
    assert_eq!(secret.len(), 32);
    let status: serde_json::Value =
        serde_json::from_str(&ok(g.exec("rampart me mfa status --json").await)).unwrap();
    assert_eq!(status["mfa"], "pending");
    assert_eq!(status["required"], false);
    // Pending is not on: the password alone still logs in.
    Client::password(b.addr, "gina", "gina-Password-123")
        .await
        .expect("a pending enrolment does not change logins")
        .close()
        .await;

    let now = Timestamp::now();
    let code = totp::current_code(&secret, now).unwrap();
    let wrong = format!("{:06}", (code.parse::<u32>().unwrap() + 1) % 1_000_000);
    let (_, err, status) = g.exec(&format!("rampart me mfa confirm {wrong}")).await;
    assert!(one_line(&err, status).contains("invalid verification code"));
    let out = ok(g.exec(&format!("rampart me mfa confirm {code}")).await);
    assert_eq!(out, "MFA is on: logins now ask for a code from the app\n");
    let (_, err, status) = g.exec("rampart me mfa enrol").await;
    assert!(one_line(&err, status).contains("MFA is already on"));

    // The next step's code (inside the allowed skew) logs in; the
    // password alone is only a partial success.
    let next = totp::current_code(&secret, now + SignedDuration::from_secs(30)).unwrap();
    login_with_code(&b, "gina", "gina-Password-123", &next)
        .await
        .close()
        .await;
    for (path, bytes) in support::all_bytes(&b.dir.path().join("data")) {
        assert!(
            !support::contains(&bytes, &secret),
            "the seed is in {} in clear",
            path.display()
        );
    }

    // Reset needs a code that was not used yet.
    let (_, err, status) = g.exec(&format!("rampart me mfa reset {next}")).await;
    assert!(one_line(&err, status).contains("already used"));
    // The confirmation used step s and the login s + 1; a code of a later
    // step inside the allowed skew (one step ahead of the clock) is needed,
    // so while the clock is still in step s, wait for the next one.
    let s = now.as_second() / 30;
    let reset_code = loop {
        let current = Timestamp::now().as_second() / 30;
        if current > s {
            let step = current.max(s + 2);
            break totp::current_code(&secret, Timestamp::from_second(step * 30).unwrap()).unwrap();
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    let out = ok(g.exec(&format!("rampart me mfa reset {reset_code}")).await);
    assert_eq!(out, "MFA is off\n");
    Client::password(b.addr, "gina", "gina-Password-123")
        .await
        .expect("without MFA the password logs in again")
        .close()
        .await;
    let verbs: Vec<String> = operations(&b)
        .await
        .iter()
        .take(3)
        .map(|r| format!("{} {}", r.actor, r.verb))
        .collect();
    assert_eq!(
        verbs,
        [
            "gina user.mfa-reset",
            "gina user.mfa-enrol",
            "gina user.mfa-enrol-start"
        ]
    );
    g.close().await;
    b.shutdown().await;
}

/// With `auth.mfa = "required"` nobody removes their own second factor:
/// that is an admin's `user mfa-reset`, and the refusal is logged.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn me_mfa_reset_is_refused_when_the_server_requires_mfa() {
    let mut b = TestBastion::start_with("[auth]\nmfa = \"required\"\n").await;
    add_user(&b, "hal", Role::User, Some("hal-Password-1234"), &[]).await;
    // Enrol as the login's enrolment screen would.
    let seed = totp::new_secret();
    let now = Timestamp::now();
    let code = totp::current_code(seed.expose(), now).unwrap();
    let identity = b
        .shared
        .authenticator
        .first_factor(
            "hal",
            rampart::auth::login::Proof::Password(&Secret::new("hal-Password-1234".into())),
            "127.0.0.1".parse().unwrap(),
        )
        .await
        .unwrap()
        .identity;
    b.shared
        .authenticator
        .enrol_totp(&identity, &seed, &code, "127.0.0.1".parse().unwrap())
        .await
        .unwrap();
    let next = totp::current_code(seed.expose(), now + SignedDuration::from_secs(30)).unwrap();
    let h = login_with_code(&b, "hal", "hal-Password-1234", &next).await;
    let status: serde_json::Value =
        serde_json::from_str(&ok(h.exec("rampart me mfa --json").await)).unwrap();
    assert_eq!(status["mfa"], "on");
    assert_eq!(status["required"], true);
    let (_, err, status) = h.exec("rampart me mfa reset 123456").await;
    let line = one_line(&err, status);
    assert!(
        line.starts_with("rampart: permission denied: the server requires MFA")
            && line.contains("rampart user mfa-reset hal"),
        "{line}"
    );
    assert_eq!(refusals(&b).await[0].request, "rampart me mfa");
    h.close().await;
    b.shutdown().await;
}

/// Over SSH the CLI never reads a file on the bastion: the path would name
/// the server's files, not the caller's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn files_on_the_bastion_are_not_read_over_ssh() {
    let mut b = TestBastion::start().await;
    let a = Client::admin(b.addr).await;
    for command in [
        "rampart user add eve --key-file /etc/passwd",
        "rampart user key add admin --key-file /etc/hostname",
        "rampart account add demo svc --key-file /etc/passwd",
        "rampart import users /etc/passwd",
    ] {
        let (out, err, status) = a.exec(command).await;
        let line = one_line(&err, status);
        assert!(
            line.contains("only by the local CLI") || line.contains("only in the local CLI"),
            "{command}: {line}"
        );
        assert!(out.is_empty());
        assert!(!err.contains("root:"), "nothing of the file is shown");
    }
    a.close().await;
    b.shutdown().await;
}

/// The local CLI runs as the OS operator, who is no rampart user: `me` is
/// refused there in one line, before reading any input.
#[test]
fn me_is_refused_by_the_local_cli() {
    let b = support::Bastion::initialised();
    for args in [
        &["me"][..],
        &["me", "keys", "list"],
        &["me", "mfa", "enrol"],
    ] {
        let line = b.run(args).refused();
        assert_eq!(
            line,
            "rampart: `rampart me` acts on the user you log in as; use it over SSH (ssh -p 2222 USER@BASTION rampart me ...)",
            "{args:?}"
        );
    }
    let line = b
        .run_stdin(
            &["me", "passwd", "--password-stdin"],
            "old-Password-123\nnew-Password-123\n",
        )
        .refused();
    assert!(line.contains("use it over SSH"), "{line}");
}

/// Issue 13 item 15 over SSH: the server holds the chain key, so
/// `ssh bastion rampart audit verify` names a database rewritten with
/// correct-looking unkeyed hashes, as the local CLI does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audit_verify_over_ssh_names_a_database_rewritten_without_the_key() {
    let b = TestBastion::start().await;
    let a = Client::admin(b.addr).await;
    let out = ok(a.exec("rampart audit verify").await);
    assert!(out.contains("audit chain intact"), "{out}");

    let pool = b.services.store.pool();
    let (id, seq): (String, i64) = sqlx::query_as(
        "SELECT id, seq FROM login_log WHERE user_name = 'admin' ORDER BY seq LIMIT 1",
    )
    .fetch_one(pool)
    .await
    .unwrap();
    sqlx::query("UPDATE login_log SET source = '10.9.9.9' WHERE id = $1")
        .bind(&id)
        .execute(pool)
        .await
        .unwrap();
    support::rewrite_chain_unkeyed(pool, seq).await;

    let (_, err, status) = a.exec("rampart audit verify").await;
    let line = one_line(&err, status);
    assert!(
        line.contains(&format!("login_log row {id} (seq {seq},")),
        "{line}"
    );
    assert!(line.contains("without the master key"), "{line}");
}
