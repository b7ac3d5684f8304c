//! The SSH front door in-process: a russh client -> the bastion -> the
//! in-process demo target, asserting what the person notices (bytes, screen
//! text, exit status) and what the auditor finds (rows, recordings).

mod support;

use std::time::Duration;

use rampart::model::{AccountSpec, Actions, FilterAction, Protocol, ProtocolSpec, Role};
use rampart::ops::{AssetSpec, Caller, FilterSpec, PermSpec, UserSpec};
use rampart::store::audit_log::Query;
use rampart::vault::Secret;
use support::ssh::{ADMIN_PASSWORD, Client, TestBastion};

const T: Duration = Duration::from_secs(10);

fn admin() -> Caller {
    Caller::local()
}

async fn sessions(b: &TestBastion) -> Vec<rampart::store::sessions::SessionRow> {
    b.services
        .ops
        .session_list(&admin(), &Query::default(), false)
        .await
        .unwrap()
}

async fn commands(b: &TestBastion) -> Vec<rampart::store::audit_log::CommandRow> {
    b.services
        .ops
        .audit_commands(&admin(), &Query::default())
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exec_passes_output_and_exit_status_back() {
    let mut b = TestBastion::start().await;
    let c = Client::admin(b.addr).await;
    let (out, err, status) = c.exec("demo echo hello from the target").await;
    assert_eq!(
        String::from_utf8_lossy(&out),
        "hello from the target\n",
        "stderr: {err}"
    );
    assert_eq!(status, Some(0));
    let (_, _, status) = c.exec("demo exit 3").await;
    assert_eq!(status, Some(3));
    let (out, _, status) = c.exec("demo@demo whoami").await;
    assert_eq!(
        (String::from_utf8_lossy(&out).as_ref(), status),
        ("demo\n", Some(0))
    );
    c.close().await;
    b.shutdown().await;

    // Each exec is a closed session with a verified recording and its command.
    let rows = sessions(&b).await;
    assert_eq!(rows.len(), 3, "{rows:?}");
    assert!(
        rows.iter()
            .all(|r| r.status == "closed" && r.kind == "exec" && r.recording_sha256.is_some())
    );
    let cmds = commands(&b).await;
    assert!(
        cmds.iter()
            .any(|c| c.command == "echo hello from the target")
    );
    let report = rampart::audit::verify(&b.services.store, &b.services.recordings)
        .await
        .unwrap();
    assert_eq!(report.broken, None);
    assert_eq!(report.recordings, 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_and_forbidden_assets_get_the_same_message() {
    let mut b = TestBastion::start().await;
    let ops = b.services.ops.clone();
    ops.asset_add(
        &admin(),
        AssetSpec {
            name: "secret-db".into(),
            address: "127.0.0.1".into(),
            protocols: vec![Protocol {
                name: "ssh".into(),
                port: 1,
            }],
            active: true,
            ..Default::default()
        },
    )
    .await
    .unwrap();
    b.reload().await;
    let c = Client::admin(b.addr).await;
    let (_, missing, s1) = c.exec("nosuch uname").await;
    let (_, forbidden, s2) = c.exec("secret-db uname").await;
    // Refused before anything starts: a failure reply to the exec request,
    // so no exit status (OpenSSH then exits 255).
    assert_eq!(s1, None);
    assert_eq!(s2, None);
    assert_eq!(
        missing.replace("nosuch", "X"),
        forbidden.replace("secret-db", "X"),
        "the two refusals must not differ"
    );
    assert!(
        missing.contains("no such asset, or you may not use it"),
        "{missing}"
    );
    c.close().await;
    b.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_pty_and_command_the_person_gets_the_list_and_usage() {
    let mut b = TestBastion::start().await;
    let c = Client::admin(b.addr).await;
    let mut ch = c.handle.channel_open_session().await.unwrap();
    ch.request_shell(true).await.unwrap();
    let mut out = Vec::new();
    let mut status = None;
    while let Some(msg) = ch.wait().await {
        match msg {
            russh::ChannelMsg::Data { data } => out.extend_from_slice(&data),
            russh::ChannelMsg::ExitStatus { exit_status } => status = Some(exit_status),
            russh::ChannelMsg::Close => break,
            _ => {}
        }
    }
    let text = String::from_utf8_lossy(&out);
    assert_eq!(status, Some(0));
    assert!(
        text.contains("demo") && text.contains("127.0.0.1"),
        "{text}"
    );
    assert!(text.contains("Usage:"), "{text}");
    c.close().await;
    b.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_direct_jump_is_interactive_recorded_and_audited() {
    let mut b = TestBastion::start().await;
    let c = Client::admin(b.addr).await;
    let mut term = c.shell(80, 24, Some("demo")).await;
    assert!(
        term.wait_for(T, |s| s.contains("demo@demo:~$")).await,
        "{}",
        term.text()
    );
    term.send(b"echo jump-works\r").await;
    assert!(
        term.wait_for(T, |s| s.contains("jump-works\n")
            || s.matches("jump-works").count() >= 2)
            .await,
        "{}",
        term.text()
    );
    term.send(b"exit 5\r").await;
    assert!(term.wait_close(T).await);
    assert_eq!(term.exit, Some(5));
    c.close().await;
    b.shutdown().await;

    let rows = sessions(&b).await;
    assert_eq!(rows.len(), 1);
    let row = &rows[0];
    assert_eq!(
        (row.user.as_str(), row.asset.as_str(), row.account.as_str()),
        ("admin", "demo", "demo")
    );
    assert_eq!(row.exit_status, Some(5));
    assert!(row.bytes_out > 0 && row.bytes_in > 0);
    let cmds = commands(&b).await;
    let echo = cmds
        .iter()
        .find(|c| c.command == "echo jump-works")
        .expect("command logged");
    assert_eq!(echo.action, "allow");

    // The recording gives back exactly the bytes the client received.
    let path = b
        .services
        .config
        .recording_dir()
        .join(row.recording.as_ref().unwrap());
    let mut exported = Vec::new();
    rampart::record::export(&path, &mut exported).unwrap();
    assert_eq!(
        exported, term.raw,
        "export differs from what the client received"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_denied_command_never_reaches_the_target() {
    let mut b = TestBastion::start().await;
    b.services
        .ops
        .filter_add(
            &admin(),
            FilterSpec {
                name: "no-secrets".into(),
                pattern: r"^cat\s+README".into(),
                action: FilterAction::Deny,
                on: Default::default(),
                priority: 10,
                users: vec![],
                groups: vec![],
                assets: vec![],
                nodes: vec![],
                accounts: AccountSpec::all(),
            },
        )
        .await
        .unwrap();
    b.reload().await;
    let c = Client::admin(b.addr).await;
    let mut term = c.shell(80, 24, Some("demo")).await;
    assert!(term.wait_for(T, |s| s.contains("demo@demo:~$")).await);
    term.send(b"cat README\r").await;
    assert!(
        term.wait_for(T, |s| s.contains("command refused by rule no-secrets"))
            .await,
        "{}",
        term.text()
    );
    term.send(b"echo still-here\r").await;
    assert!(
        term.wait_for(T, |s| s.matches("still-here").count() >= 2)
            .await,
        "{}",
        term.text()
    );
    term.send(b"exit\r").await;
    assert!(term.wait_close(T).await);
    c.close().await;
    b.shutdown().await;

    let executed = b.demo.executed();
    assert!(
        !executed.iter().any(|l| l.contains("README")),
        "the target ran it: {executed:?}"
    );
    assert!(executed.iter().any(|l| l == "echo still-here"));
    let cmds = commands(&b).await;
    let denied = cmds
        .iter()
        .find(|c| c.command == "cat README")
        .expect("refusal logged");
    assert_eq!(
        (denied.action.as_str(), denied.rule.as_deref()),
        ("deny", Some("no-secrets"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lockout_over_ssh_and_the_login_log() {
    let mut b = TestBastion::start_with("[auth]\nmax_failures = 3\n").await;
    for _ in 0..3 {
        assert!(
            Client::password(b.addr, "admin", "wrong-password")
                .await
                .is_err()
        );
    }
    // Locked: the right password no longer works.
    assert!(
        Client::password(b.addr, "admin", ADMIN_PASSWORD)
            .await
            .is_err()
    );
    let logins = b
        .services
        .ops
        .audit_logins(&admin(), &Query::default())
        .await
        .unwrap();
    assert!(
        logins
            .iter()
            .any(|l| l.result == "failed" && l.reason.contains("user locked")),
        "{logins:?}"
    );
    assert_eq!(logins[0].result, "denied");
    assert!(
        logins
            .iter()
            .all(|l| l.source == "127.0.0.1" && l.method == "password")
    );
    b.services.ops.user_unlock(&admin(), "admin").await.unwrap();
    Client::admin(b.addr).await.close().await;
    b.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_totp_second_factor_over_keyboard_interactive() {
    let mut b = TestBastion::start().await;
    let ops = b.services.ops.clone();
    ops.user_add(
        &admin(),
        UserSpec {
            name: "carol".into(),
            role: Some(Role::User),
            password: Some(Secret::new("carol-password-123".into())),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    // Enrol a seed as the SSH enrolment screen would.
    let seed = rampart::auth::totp::new_secret();
    let code = rampart::auth::totp::current_code(seed.expose(), jiff::Timestamp::now()).unwrap();
    let identity = b
        .shared
        .authenticator
        .first_factor(
            "carol",
            rampart::auth::login::Proof::Password(&Secret::new("carol-password-123".into())),
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

    // The password alone is a partial success; then keyboard-interactive.
    let mut handle = support::ssh::connect(b.addr).await;
    let r = handle
        .authenticate_password("carol", "carol-password-123")
        .await
        .unwrap();
    assert!(
        matches!(
            r,
            russh::client::AuthResult::Failure {
                partial_success: true,
                ..
            }
        ),
        "{r:?}"
    );
    let reply = handle
        .authenticate_keyboard_interactive_start("carol", None)
        .await
        .unwrap();
    let russh::client::KeyboardInteractiveAuthResponse::InfoRequest { prompts, .. } = reply else {
        panic!("expected a prompt, got {reply:?}");
    };
    assert!(prompts[0].prompt.contains("Verification code"));
    // The enrolment code was already used: a replay is refused.
    let reply = handle
        .authenticate_keyboard_interactive_respond(vec![code.clone()])
        .await
        .unwrap();
    assert!(
        matches!(
            reply,
            russh::client::KeyboardInteractiveAuthResponse::Failure { .. }
        ),
        "{reply:?}"
    );
    b.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_changed_host_key_is_refused_until_trusted() {
    let mut b = TestBastion::start().await;
    let c = Client::admin(b.addr).await;
    // First use pins the demo target's key.
    let (_, _, status) = c.exec("demo true").await;
    assert_eq!(
        status,
        Some(127),
        "the demo shell has no `true`, but it ran"
    );
    let shown = b.services.ops.asset_show(&admin(), "demo").await.unwrap();
    assert_eq!(shown.host_keys.len(), 1);

    // Another target answers on the same address with a different key.
    let other = rampart::demo::DemoTarget::start(
        "127.0.0.1:0".parse().unwrap(),
        "demo",
        Secret::new("x-other-password".into()),
        russh::keys::PrivateKey::from(russh::keys::ssh_key::private::Ed25519Keypair::from_seed(
            &[7u8; 32],
        )),
    )
    .await
    .unwrap();
    let mut conn = b.services.store.conn().await.unwrap();
    let asset = rampart::store::assets::get(&mut conn, "demo")
        .await
        .unwrap();
    rampart::store::assets::set_protocols(
        &mut conn,
        &asset.id,
        &[Protocol {
            name: "ssh".into(),
            port: other.addr.port(),
        }],
    )
    .await
    .unwrap();
    drop(conn);
    b.reload().await;
    let (_, err, status) = c.exec("demo echo hi").await;
    assert_eq!(status, Some(255));
    assert!(
        err.contains("host key of demo has changed") && err.contains("rampart asset trust demo"),
        "{err}"
    );
    assert!(other.executed().is_empty(), "nothing ran on the impostor");
    let refusals = b
        .services
        .ops
        .audit_refusals(&admin(), &Query::default())
        .await
        .unwrap();
    assert!(refusals.iter().any(|r| r.reason.contains("host key")));

    b.services
        .ops
        .asset_trust(&admin(), "demo", None)
        .await
        .unwrap();
    // Now it pins the new key (it refuses the password, which is fine here).
    let (_, err, _) = c.exec("demo echo hi").await;
    assert!(!err.contains("has changed"), "{err}");
    c.close().await;
    other.stop();
    b.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_vanishes_leaves_a_closed_session_and_recording() {
    let mut b = TestBastion::start().await;
    let c = Client::admin(b.addr).await;
    let mut term = c.shell(80, 24, Some("demo")).await;
    assert!(term.wait_for(T, |s| s.contains("demo@demo:~$")).await);
    term.send(b"echo before-vanishing\r").await;
    assert!(
        term.wait_for(T, |s| s.matches("before-vanishing").count() >= 2)
            .await
    );
    drop(term);
    drop(c); // the TCP connection goes away without a goodbye
    let mut closed = false;
    for _ in 0..50 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        if sessions(&b)
            .await
            .first()
            .is_some_and(|s| s.status == "closed")
        {
            closed = true;
            break;
        }
    }
    assert!(closed, "{:?}", sessions(&b).await);
    let row = &sessions(&b).await[0];
    assert!(row.recording_sha256.is_some());
    b.shutdown().await;
    let report = rampart::audit::verify(&b.services.store, &b.services.recordings)
        .await
        .unwrap();
    assert_eq!(report.broken, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_ops_cli_runs_over_ssh_with_the_callers_role() {
    let mut b = TestBastion::start().await;
    let ops = b.services.ops.clone();
    ops.user_add(
        &admin(),
        UserSpec {
            name: "dave".into(),
            role: Some(Role::User),
            password: Some(Secret::new("dave-password-123".into())),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    ops.perm_add(
        &admin(),
        PermSpec {
            name: "dave-demo".into(),
            users: vec!["dave".into()],
            groups: vec![],
            assets: vec!["demo".into()],
            nodes: vec![],
            accounts: AccountSpec::all(),
            protocols: ProtocolSpec::All,
            actions: Actions::all_but_tunnel(),
            valid_from: None,
            valid_until: None,
            comment: String::new(),
            require_approval: false,
        },
    )
    .await
    .unwrap();
    let a = Client::admin(b.addr).await;
    let (out, err, status) = a.exec("rampart user list --json").await;
    assert_eq!(status, Some(0), "{err}");
    assert!(String::from_utf8_lossy(&out).contains("\"name\":\"dave\""));
    let d = Client::password(b.addr, "dave", "dave-password-123")
        .await
        .unwrap();
    let (_, err, status) = d.exec("rampart user list").await;
    assert_eq!(status, Some(1));
    assert!(err.contains("needs the auditor or admin role"), "{err}");
    let (out, _, status) = d.exec("rampart perm what dave").await;
    assert_eq!(status, Some(0));
    assert!(String::from_utf8_lossy(&out).contains("demo"));
    let (_, err, status) = d.exec("rampart frobnicate").await;
    assert_eq!(status, Some(2), "{err}");
    // The admin's change over SSH is logged as theirs, via ssh.
    let (_, err, status) = a.exec("rampart group add ops").await;
    assert_eq!(status, Some(0), "{err}");
    let ops_rows = b
        .services
        .ops
        .audit_operations(&admin(), &Query::default())
        .await
        .unwrap();
    assert_eq!(
        (ops_rows[0].actor.as_str(), ops_rows[0].via.as_str()),
        ("admin", "ssh")
    );
    a.close().await;
    d.close().await;
    b.shutdown().await;
}

/// An SFTP client that sends garbage gets an error status for each packet
/// it can be answered, a closed channel for a stream that is not SFTP, and
/// the bastion goes on serving.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_sftp_packets_get_errors_or_a_closed_channel() {
    use bytes::{BufMut, Bytes, BytesMut};
    use rampart::sftp::wire::{self, Frames, ServerPacket, kind, status};
    use russh::ChannelMsg;

    let b = TestBastion::start().await;
    let client = Client::admin(b.addr).await;
    let mut ch = client.handle.channel_open_session().await.expect("channel");
    ch.request_subsystem(true, "sftp").await.expect("subsystem");

    // One raw packet: the body after the length.
    fn raw(body: &[u8]) -> Bytes {
        let mut out = BytesMut::new();
        out.put_u32(body.len() as u32);
        out.extend_from_slice(body);
        out.freeze()
    }
    fn request(code: u8, id: u32, rest: &[u8]) -> Bytes {
        let mut body = vec![code];
        body.extend_from_slice(&id.to_be_bytes());
        body.extend_from_slice(rest);
        raw(&body)
    }
    fn string(s: &[u8]) -> Vec<u8> {
        let mut out = (s.len() as u32).to_be_bytes().to_vec();
        out.extend_from_slice(s);
        out
    }
    let mut frames = Frames::default();
    let mut next = async |ch: &mut russh::Channel<russh::client::Msg>| -> Option<ServerPacket> {
        loop {
            if let Some(p) = frames
                .next_packet()
                .expect("the bastion's packets are SFTP")
            {
                return Some(wire::parse_server(p).expect("parse"));
            }
            match tokio::time::timeout(Duration::from_secs(10), ch.wait()).await {
                Ok(Some(ChannelMsg::Data { data })) => frames.push(&data),
                Ok(Some(ChannelMsg::Close | ChannelMsg::Eof)) | Ok(None) => return None,
                Ok(Some(_)) => {}
                Err(_) => panic!("no answer within 10 s: the session is stuck"),
            }
        }
    };
    let status_of = |p: Option<ServerPacket>| match p {
        Some(ServerPacket::Reply { code, id, body }) if code == kind::STATUS => {
            (id, wire::status_of(&body).expect("status").0)
        }
        other => panic!("expected a status, got {other:?}"),
    };

    ch.data(&raw(&[kind::INIT, 0, 0, 0, 3])[..]).await.unwrap();
    assert!(matches!(
        next(&mut ch).await,
        Some(ServerPacket::Version { version: 3, .. })
    ));

    // An unknown packet type, a READ cut short, an unknown extension, a
    // handle that was never issued, a write to the read-only top level.
    ch.data(&request(99, 5, b"junk")[..]).await.unwrap();
    assert_eq!(status_of(next(&mut ch).await), (5, status::BAD_MESSAGE));
    ch.data(&request(kind::READ, 6, &string(b"h"))[..])
        .await
        .unwrap();
    assert_eq!(status_of(next(&mut ch).await), (6, status::BAD_MESSAGE));
    let mut ext = string(b"copy-data");
    ext.extend_from_slice(&string(b"x"));
    ch.data(&request(kind::EXTENDED, 7, &ext)[..])
        .await
        .unwrap();
    assert_eq!(status_of(next(&mut ch).await), (7, status::OP_UNSUPPORTED));
    let mut read = string(b"\0\0\0\x2a");
    read.extend_from_slice(&[0; 8]);
    read.extend_from_slice(&32768u32.to_be_bytes());
    ch.data(&request(kind::READ, 8, &read)[..]).await.unwrap();
    assert_eq!(status_of(next(&mut ch).await), (8, status::FAILURE));
    // Opening a file at the top level: an asset that does not exist (or
    // may not be seen) is "no such file"; the read-only root refuses.
    for (id, path, expected) in [
        (9, &b"/x"[..], status::NO_SUCH_FILE),
        (10, &b"/"[..], status::PERMISSION_DENIED),
    ] {
        let mut open = string(path);
        open.extend_from_slice(&[0, 0, 0, 0x1a, 0, 0, 0, 0]);
        ch.data(&request(kind::OPEN, id, &open)[..]).await.unwrap();
        assert_eq!(status_of(next(&mut ch).await), (id, expected));
    }

    // A length no SFTP packet can have: the stream cannot be followed, so
    // the channel is closed.
    ch.data(&[0xff, 0xff, 0xff, 0xf0, kind::READ][..])
        .await
        .unwrap();
    assert!(next(&mut ch).await.is_none(), "the channel is closed");

    // The bastion is fine, and the refusal is an audit row.
    let other = Client::admin(b.addr).await;
    let (out, _, code) = other.exec("rampart user list").await;
    assert_eq!(code, Some(0));
    assert!(String::from_utf8_lossy(&out).contains("admin"));
    let refusals = b
        .services
        .ops
        .audit_refusals(&Caller::local(), &Query::default())
        .await
        .unwrap();
    assert!(
        refusals.iter().any(|r| r.reason.contains("malformed SFTP")),
        "{refusals:#?}"
    );
}

/// (command, output, action) of every command row, oldest first, read
/// from the database itself (the ops listing leaves the output out).
/// A deny filter `no-readme` on `cat README`, for everyone, in force.
async fn deny_cat_readme(b: &mut TestBastion) {
    b.services
        .ops
        .filter_add(
            &admin(),
            FilterSpec {
                name: "no-readme".into(),
                pattern: r"^cat\s+README".into(),
                action: FilterAction::Deny,
                on: Default::default(),
                priority: 10,
                users: vec![],
                groups: vec![],
                assets: vec![],
                nodes: vec![],
                accounts: AccountSpec::all(),
            },
        )
        .await
        .unwrap();
    b.reload().await;
}

/// (command, output, action) rows as [`command_rows`] returns them.
fn owned_rows(expected: &[(&str, &str, &str)]) -> Vec<(String, String, String)> {
    expected
        .iter()
        .map(|(c, o, a)| (c.to_string(), o.to_string(), a.to_string()))
        .collect()
}

async fn command_rows(b: &TestBastion) -> Vec<(String, String, String)> {
    sqlx::query_as::<_, (String, String, String)>(
        "SELECT command, output, action FROM commands ORDER BY seq",
    )
    .fetch_all(b.services.store.pool())
    .await
    .unwrap()
}

/// Type-ahead (a pasted script, `ssh -tt` with piped stdin, a fast typist
/// on a slow link): each line and its Enter leave the client in one write,
/// back to back, before any echo comes back. Every row must be exactly the
/// line typed, with its own output, and a line a deny rule matches must
/// still be refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lines_typed_ahead_are_logged_exactly_with_their_own_output() {
    let mut b = TestBastion::start().await;
    deny_cat_readme(&mut b).await;
    let c = Client::admin(b.addr).await;
    let mut term = c.shell(80, 24, Some("demo")).await;
    assert!(term.wait_for(T, |s| s.contains("demo@demo:~$")).await);

    // One write per line, no pause between them.
    // The same line twice: the second must not be taken for the first,
    // still on the screen.
    for line in [
        "echo ahead-one",
        "echo ahead-two x y",
        "whoami",
        "whoami",
        "pwd",
    ] {
        term.send(format!("{line}\r").as_bytes()).await;
    }
    // Several lines in one write, a refused one among them.
    term.send(b"echo ahead-three\rcat README\rhostname\r").await;
    // Paced like a fast typist: a line arrives while the previous command's
    // output is on its way.
    for line in ["echo paced-one", "echo paced-two"] {
        term.send(format!("{line}\r").as_bytes()).await;
        tokio::time::sleep(Duration::from_millis(3)).await;
    }
    term.send(b"exit 3\r").await;
    assert!(term.wait_close(T).await, "{}", term.text());
    assert_eq!(term.exit, Some(3));
    c.close().await;
    b.shutdown().await;

    let executed = b.demo.executed();
    assert!(
        !executed.iter().any(|l| l.contains("README")),
        "the target ran it: {executed:?}"
    );
    let rows = command_rows(&b).await;
    let expected = owned_rows(&[
        ("echo ahead-one", "ahead-one", "allow"),
        ("echo ahead-two x y", "ahead-two x y", "allow"),
        ("whoami", "demo", "allow"),
        ("whoami", "demo", "allow"),
        ("pwd", "/home/demo", "allow"),
        ("echo ahead-three", "ahead-three", "allow"),
        ("cat README", "", "deny"),
        ("hostname", "demo", "allow"),
        ("echo paced-one", "paced-one", "allow"),
        ("echo paced-two", "paced-two", "allow"),
        ("exit 3", "", "allow"),
    ]);
    // Written in typing order: a refused line closes the output window of
    // the command before it.
    assert_eq!(rows, expected);
}

/// A line typed ahead behind a command that runs longer than the relay's
/// wait for an echo: it is checked on its keys and forwarded unread, and
/// logged, with its own output, once the shell draws it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_line_typed_ahead_behind_a_long_command_is_logged_once_the_shell_draws_it() {
    let mut b = TestBastion::start().await;
    let c = Client::admin(b.addr).await;
    let mut term = c.shell(80, 24, Some("demo")).await;
    assert!(term.wait_for(T, |s| s.contains("demo@demo:~$")).await);
    term.send(b"sleep 1.2\r").await;
    assert!(term.wait_for(T, |s| s.contains("sleep 1.2")).await);
    tokio::time::sleep(Duration::from_millis(100)).await;
    // The demo shell reads (and echoes) nothing while it sleeps.
    term.send(b"echo after-the-sleep\r").await;
    assert!(
        term.wait_for(T, |s| s.matches("after-the-sleep").count() == 2)
            .await,
        "{}",
        term.text()
    );
    term.send(b"exit\r").await;
    assert!(term.wait_close(T).await, "{}", term.text());
    c.close().await;
    b.shutdown().await;

    let rows = command_rows(&b).await;
    let expected = owned_rows(&[
        ("sleep 1.2", "", "allow"),
        ("echo after-the-sleep", "after-the-sleep", "allow"),
        ("exit", "", "allow"),
    ]);
    assert_eq!(rows, expected);
}

/// A line typed ahead behind a running command, with keys that do not say
/// what it is (an arrow, Tab), cannot be read by any filter before its
/// Enter would go out: where a deny or review rule applies, that Enter is
/// held back instead of passing unchecked, and the line, once it shows at
/// the prompt, is checked like any other.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreadable_line_typed_ahead_is_not_forwarded_past_a_filter() {
    let mut b = TestBastion::start().await;
    deny_cat_readme(&mut b).await;
    let c = Client::admin(b.addr).await;
    let mut term = c.shell(80, 24, Some("demo")).await;
    assert!(term.wait_for(T, |s| s.contains("demo@demo:~$")).await);
    term.send(b"sleep 1.5").await;
    assert!(term.wait_for(T, |s| s.contains("sleep 1.5")).await);
    term.send(b"\r").await;
    // While it sleeps: an arrow key (which this shell ignores), the line
    // and Enter, in one write.
    tokio::time::sleep(Duration::from_millis(100)).await;
    term.send(b"\x1b[Acat README\r").await;
    assert!(
        term.wait_for(T, |s| s.contains("Enter held back")).await,
        "{}",
        term.text()
    );
    // The line shows at the prompt once the shell reads it; Enter again is
    // checked against the rule and refused.
    assert!(
        term.wait_for(T, |s| s.contains("demo@demo:~$ cat README"))
            .await,
        "{}",
        term.text()
    );
    term.send(b"\r").await;
    assert!(
        term.wait_for(T, |s| s.contains("command refused by rule no-readme"))
            .await,
        "{}",
        term.text()
    );
    term.send(b"exit\r").await;
    assert!(term.wait_close(T).await, "{}", term.text());
    c.close().await;
    b.shutdown().await;
    let executed = b.demo.executed();
    assert!(
        !executed.iter().any(|l| l.contains("README")),
        "the target ran it: {executed:?}"
    );
    let rows = command_rows(&b).await;
    assert!(
        rows.iter()
            .any(|(c, _, a)| c == "[a line typed ahead that could not be read]" && a == "deny"),
        "{rows:?}"
    );
    assert!(
        rows.iter()
            .any(|(c, _, a)| c == "cat README" && a == "deny"),
        "{rows:?}"
    );
}

/// A TCP balancer on loopback in front of the bastion: it connects from
/// `from` (127.0.0.2: one of `ssh.proxy_protocol_from`) and sends `header`
/// before the client's bytes.
async fn balancer(bastion: std::net::SocketAddr, header: Vec<u8>) -> std::net::SocketAddr {
    use tokio::io::AsyncWriteExt;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        while let Ok((mut client, _)) = listener.accept().await {
            let header = header.clone();
            tokio::spawn(async move {
                let socket = tokio::net::TcpSocket::new_v4().expect("socket");
                socket
                    .bind("127.0.0.2:0".parse().expect("addr"))
                    .expect("bind 127.0.0.2");
                let Ok(mut upstream) = socket.connect(bastion).await else {
                    return;
                };
                if upstream.write_all(&header).await.is_err() {
                    return;
                }
                let _ = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
            });
        }
    });
    addr
}

/// Behind a load balancer that sends a PROXY header: the person's address
/// decides login ACLs and is what the login log records, through real
/// OpenSSH too; the balancer's connections without a header are closed;
/// a header from an address that is not a balancer is not believed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_balancers_proxy_header_gives_the_persons_address() {
    let Some(ssh) = support::peers::peer("ssh") else {
        return;
    };
    let mut b = TestBastion::start_with("proxy_protocol_from = [\"127.0.0.2\"]\n").await;
    let (key, public) = support::peers::keypair(b.dir.path(), "alice_key");
    support::peers::user_with_key(&b, "alice", &public).await;
    let acl = |name: &str, action, priority, sources: &[&str]| rampart::ops::AclSpec {
        name: name.into(),
        action,
        priority,
        users: vec!["alice".into()],
        groups: vec![],
        sources: sources.iter().map(|s| s.to_string()).collect(),
        windows: vec![],
    };
    use rampart::model::AclAction;
    let ops = &b.services.ops;
    ops.acl_add(
        &admin(),
        acl("office", AclAction::Allow, 10, &["203.0.113.0/24"]),
    )
    .await
    .expect("acl");
    ops.acl_add(&admin(), acl("elsewhere", AclAction::Deny, 20, &[]))
        .await
        .expect("acl");
    b.reload().await;

    let office = balancer(
        b.addr,
        b"PROXY TCP4 203.0.113.7 127.0.0.1 40001 22\r\n".to_vec(),
    )
    .await;
    let cafe = {
        let mut v2 = b"\r\n\r\n\0\r\nQUIT\n\x21\x11\x00\x0c".to_vec();
        v2.extend_from_slice(&[198, 51, 100, 9, 127, 0, 0, 1, 0x9c, 0x41, 0, 22]);
        balancer(b.addr, v2).await
    };
    let run = |port: u16| {
        let mut cmd = tokio::process::Command::new(&ssh);
        cmd.args(support::peers::client_options(&key)).args([
            "-p",
            &port.to_string(),
            "alice@127.0.0.1",
            "rampart",
            "me",
        ]);
        support::peers::run(cmd, b"", Duration::from_secs(30))
    };
    let ran = run(office.port()).await;
    assert!(ran.ok(), "from the office: {ran:?}");
    assert!(ran.stdout_text().contains("alice"), "{ran:?}");
    let ran = run(cafe.port()).await;
    assert!(!ran.ok(), "from a cafe: {ran:?}");
    // Straight to the bastion (127.0.0.1, not a balancer): the address is
    // the connection's, and a PROXY header claiming the office is not read
    // as one.
    let ran = run(b.addr.port()).await;
    assert!(!ran.ok(), "direct: {ran:?}");
    let forged = {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut s = tokio::net::TcpStream::connect(b.addr)
            .await
            .expect("connect");
        s.write_all(b"PROXY TCP4 203.0.113.7 127.0.0.1 40001 22\r\nSSH-2.0-OpenSSH_9.2\r\n")
            .await
            .expect("write");
        let mut got = Vec::new();
        let _ = tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut got)).await;
        got
    };
    assert!(
        !String::from_utf8_lossy(&forged).contains("SSH-2.0-OpenSSH_9.2"),
        "the forged header was taken"
    );
    // A balancer connection that does not start with a header is closed
    // before the SSH greeting.
    let bare = balancer(b.addr, Vec::new()).await;
    let ran = run(bare.port()).await;
    assert!(!ran.ok(), "no header: {ran:?}");

    let logins = b
        .services
        .ops
        .audit_logins(&admin(), &Query::default())
        .await
        .expect("logins");
    let sources = |result: &str| -> Vec<String> {
        logins
            .iter()
            .filter(|l| l.user == "alice" && l.result == result)
            .map(|l| l.source.clone())
            .collect()
    };
    assert_eq!(sources("ok"), ["203.0.113.7"], "{logins:#?}");
    let refused = sources("denied");
    assert!(refused.contains(&"198.51.100.9".to_string()), "{logins:#?}");
    assert!(refused.contains(&"127.0.0.1".to_string()), "{logins:#?}");
    assert!(
        !refused
            .iter()
            .chain(&sources("failed"))
            .any(|s| s == "127.0.0.2"),
        "the balancer's own address was taken for a person: {logins:#?}"
    );
    b.shutdown().await;
}
