//! The menu over SSH as the person sees it (screen text through a vt100
//! parser), the forced password change, kill from the CLI's control socket,
//! and a graceful shutdown with a session open.

mod support;

use std::time::Duration;

use rampart::ops::{AssetSpec, Caller, PermSpec};
use rampart::store::audit_log::Query;
use support::ssh::{ADMIN_PASSWORD, Client, TestBastion};

const T: Duration = Duration::from_secs(10);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_menu_lists_filters_connects_and_comes_back() {
    let mut b = TestBastion::start().await;
    let c = Client::admin(b.addr).await;
    let mut term = c.shell(80, 24, None).await;
    assert!(
        term.wait_for(T, |s| s.contains("demo") && s.contains("admin"))
            .await,
        "{}",
        term.text()
    );
    // Type-to-filter: a name that matches nothing empties the list.
    term.send(b"zzz").await;
    assert!(
        term.wait_for(T, |s| !s.contains("127.0.0.1")).await,
        "{}",
        term.text()
    );
    term.send(b"\x7f\x7f\x7f").await;
    term.send(b"dem").await;
    assert!(
        term.wait_for(T, |s| s.contains("127.0.0.1")).await,
        "{}",
        term.text()
    );
    // Enter connects (one account, one protocol: no chooser).
    term.send(b"\r").await;
    assert!(
        term.wait_for(T, |s| s.contains("demo@demo:~$")).await,
        "{}",
        term.text()
    );
    term.send(b"echo from-the-menu\r").await;
    assert!(
        term.wait_for(T, |s| s.matches("from-the-menu").count() >= 2)
            .await,
        "{}",
        term.text()
    );
    term.send(b"exit\r").await;
    // The menu comes back, and says the session ended.
    assert!(
        term.wait_for(T, |s| s.contains("session on demo ended"))
            .await,
        "{}",
        term.text()
    );
    // A resize repaints at the new size.
    term.resize(100, 30).await;
    term.parser.screen_mut().set_size(
        std::num::NonZeroU16::new(30).unwrap(),
        std::num::NonZeroU16::new(100).unwrap(),
    );
    assert!(term.wait_for(T, |s| s.contains("demo")).await);
    // The filter survived the session; Esc clears it, then q quits.
    term.send(b"\x1b").await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    term.send(b"q").await;
    assert!(term.wait_close(T).await, "{}", term.text());
    assert_eq!(term.exit, Some(0));
    c.close().await;
    b.shutdown().await;
    let cmds = b
        .services
        .ops
        .audit_commands(&Caller::local(), &Query::default())
        .await
        .unwrap();
    assert!(cmds.iter().any(|c| c.command == "echo from-the-menu"));
}

/// Disabling a user ends their open menu within about two seconds, with
/// the reason on their screen, even with no target session running
/// (issue 13, item 6).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disabling_a_user_ends_their_open_menu_with_the_reason() {
    let mut b = TestBastion::start().await;
    let ops = &b.services.ops;
    ops.user_add(
        &Caller::local(),
        rampart::ops::UserSpec {
            name: "dave".into(),
            password: Some(rampart::vault::Secret::new("dave-Password-123".into())),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let c = Client::password(b.addr, "dave", "dave-Password-123")
        .await
        .unwrap();
    let mut term = c.shell(80, 24, None).await;
    assert!(
        term.wait_for(T, |s| s.contains("dave")).await,
        "{}",
        term.text()
    );
    ops.user_set_active(&Caller::local(), "dave", false)
        .await
        .unwrap();
    let disabled = std::time::Instant::now();
    assert!(
        term.wait_for(T, |s| s.contains("rampart: access ended: dave is disabled"))
            .await,
        "{}",
        term.text()
    );
    assert!(term.wait_close(T).await);
    assert!(
        disabled.elapsed() < Duration::from_secs(3),
        "{:?}",
        disabled.elapsed()
    );
    assert_ne!(term.exit, Some(0), "an ended menu is not a success");
    c.close().await;
    b.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_one_time_password_must_be_changed_at_first_login() {
    let mut b = TestBastion::start().await;
    let otp = b
        .services
        .ops
        .user_passwd(&Caller::local(), "admin", None)
        .await
        .unwrap()
        .unwrap();
    let mut handle = support::ssh::connect(b.addr).await;
    let r = handle
        .authenticate_password("admin", otp.expose().as_str())
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
    use russh::client::KeyboardInteractiveAuthResponse as K;
    let reply = handle
        .authenticate_keyboard_interactive_start("admin", None)
        .await
        .unwrap();
    let K::InfoRequest { prompts, .. } = reply else {
        panic!("{reply:?}")
    };
    assert!(prompts[0].prompt.contains("New password"));
    // A weak password is refused with the reason, and asked again.
    let reply = handle
        .authenticate_keyboard_interactive_respond(vec!["short".into()])
        .await
        .unwrap();
    let K::InfoRequest { prompts, .. } = reply else {
        panic!("{reply:?}")
    };
    assert!(prompts[0].prompt.contains("Retype"));
    let reply = handle
        .authenticate_keyboard_interactive_respond(vec!["short".into()])
        .await
        .unwrap();
    let K::InfoRequest { instructions, .. } = reply else {
        panic!("{reply:?}")
    };
    assert!(instructions.contains("too short"), "{instructions}");
    let reply = handle
        .authenticate_keyboard_interactive_respond(vec!["a-much-better-passphrase".into()])
        .await
        .unwrap();
    assert!(matches!(reply, K::InfoRequest { .. }), "{reply:?}");
    let reply = handle
        .authenticate_keyboard_interactive_respond(vec!["a-much-better-passphrase".into()])
        .await
        .unwrap();
    assert!(matches!(reply, K::Success), "{reply:?}");
    // The new password works on its own; the one-time one no longer does.
    Client::password(b.addr, "admin", "a-much-better-passphrase")
        .await
        .unwrap()
        .close()
        .await;
    assert!(
        Client::password(b.addr, "admin", otp.expose())
            .await
            .is_err()
    );
    b.shutdown().await;
    let _ = ADMIN_PASSWORD;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_killed_from_the_cli_shows_the_reason() {
    let mut b = TestBastion::start().await;
    let c = Client::admin(b.addr).await;
    let mut term = c.shell(80, 24, Some("demo")).await;
    assert!(term.wait_for(T, |s| s.contains("demo@demo:~$")).await);
    let socket = b.services.config.control_socket_path();
    let mut live = Vec::new();
    for _ in 0..50 {
        live = b
            .services
            .ops
            .live_sessions(&Caller::local(), &socket)
            .await
            .unwrap();
        if !live.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(live.len(), 1);
    let id = live[0].session.id.clone();
    b.services
        .ops
        .session_kill(&Caller::local(), &socket, &id, "maintenance window")
        .await
        .unwrap();
    assert!(
        term.wait_for(T, |s| s.contains("maintenance window")).await,
        "{}",
        term.text()
    );
    assert!(term.wait_close(T).await);
    c.close().await;
    b.shutdown().await;
    let rows = b
        .services
        .ops
        .session_list(&Caller::local(), &Query::default(), false)
        .await
        .unwrap();
    assert_eq!(rows[0].reason, "killed: maintenance window");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_tells_open_sessions_and_finalises_them() {
    let mut b = TestBastion::start().await;
    let c = Client::admin(b.addr).await;
    let mut term = c.shell(80, 24, Some("demo")).await;
    assert!(term.wait_for(T, |s| s.contains("demo@demo:~$")).await);
    let started = std::time::Instant::now();
    b.shutdown().await;
    assert!(started.elapsed() < Duration::from_secs(15));
    assert!(
        term.wait_for(T, |s| s.contains("shutting down")).await,
        "{}",
        term.text()
    );
    let rows = b
        .services
        .ops
        .session_list(&Caller::local(), &Query::default(), false)
        .await
        .unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(
        (rows[0].status.as_str(), rows[0].reason.as_str()),
        ("closed", "bastion shutdown")
    );
    assert!(rows[0].recording_sha256.is_some());
    // New connections are refused now.
    assert!(
        tokio::time::timeout(
            Duration::from_secs(3),
            tokio::net::TcpStream::connect(b.addr)
        )
        .await
        .map(|r| r.is_err())
        .unwrap_or(true)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoking_the_permission_ends_the_running_session() {
    let mut b = TestBastion::start().await;
    let c = Client::admin(b.addr).await;
    let mut term = c.shell(80, 24, Some("demo")).await;
    assert!(term.wait_for(T, |s| s.contains("demo@demo:~$")).await);
    // As the CLI would do it, from another process: the server notices the
    // change within a second and re-checks the running sessions.
    b.services
        .ops
        .perm_remove(&Caller::local(), "demo-admin")
        .await
        .unwrap();
    assert!(
        term.wait_for(T, |s| s.contains("your access to this asset has ended"))
            .await,
        "{}",
        term.text()
    );
    assert!(term.wait_close(T).await);
    c.close().await;
    b.shutdown().await;
    let rows = b
        .services
        .ops
        .session_list(&Caller::local(), &Query::default(), false)
        .await
        .unwrap();
    assert_eq!(rows[0].reason, "permission ended");
}

/// `asset edit` as the console or the CLI would call it: the demo asset as
/// it is, changed by `change`.
async fn edit_demo(b: &TestBastion, change: impl FnOnce(&mut AssetSpec)) {
    let ops = &b.services.ops;
    let current = ops
        .asset_show(&Caller::local(), "demo")
        .await
        .unwrap()
        .asset;
    let mut spec = AssetSpec {
        name: current.name,
        address: current.address,
        protocols: current.protocols,
        nodes: current.nodes,
        platform: Some(current.platform),
        database: None,
        tls: false,
        url: None,
        comment: current.comment,
        active: current.active,
    };
    change(&mut spec);
    ops.asset_edit(&Caller::local(), "demo", spec)
        .await
        .unwrap();
}

/// A running session on demo, ended by an edit that takes its grant away,
/// the way a removed permission ends one.
async fn an_edit_ends_the_session(b: &mut TestBastion, change: impl FnOnce(&mut AssetSpec)) {
    let c = Client::admin(b.addr).await;
    let mut term = c.shell(80, 24, Some("demo")).await;
    assert!(term.wait_for(T, |s| s.contains("demo@demo:~$")).await);
    edit_demo(b, change).await;
    assert!(
        term.wait_for(T, |s| s.contains("your access to this asset has ended"))
            .await,
        "{}",
        term.text()
    );
    assert!(term.wait_close(T).await);
    c.close().await;
    b.shutdown().await;
    let rows = b
        .services
        .ops
        .session_list(&Caller::local(), &Query::default(), false)
        .await
        .unwrap();
    assert_eq!(rows[0].reason, "permission ended");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disabling_the_asset_ends_the_running_session() {
    let mut b = TestBastion::start().await;
    an_edit_ends_the_session(&mut b, |spec| spec.active = false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn moving_the_asset_out_of_the_granting_node_ends_the_running_session() {
    let mut b = TestBastion::start().await;
    let ops = &b.services.ops;
    let admin = Caller::local();
    // Granted through node /DEFAULT/lab only.
    ops.node_add(&admin, "/DEFAULT/lab").await.unwrap();
    edit_demo(&b, |spec| spec.nodes = vec!["/DEFAULT/lab".into()]).await;
    ops.perm_add(
        &admin,
        PermSpec {
            name: "lab".into(),
            users: vec!["admin".into()],
            groups: Vec::new(),
            assets: Vec::new(),
            nodes: vec!["/DEFAULT/lab".into()],
            accounts: "@ALL".parse().unwrap(),
            protocols: "all".parse().unwrap(),
            actions: "all".parse().unwrap(),
            valid_from: None,
            valid_until: None,
            comment: String::new(),
            require_approval: false,
        },
    )
    .await
    .unwrap();
    ops.perm_remove(&admin, "demo-admin").await.unwrap();
    b.reload().await;
    an_edit_ends_the_session(&mut b, |spec| spec.nodes = vec!["/DEFAULT".into()]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn narrowing_the_permission_ends_the_running_session() {
    let mut b = TestBastion::start().await;
    let c = Client::admin(b.addr).await;
    let mut term = c.shell(80, 24, Some("demo")).await;
    assert!(term.wait_for(T, |s| s.contains("demo@demo:~$")).await);
    // The console's edit form: the whole permission, with `connect` gone.
    let ops = &b.services.ops;
    let perm = ops.perm_show(&Caller::local(), "demo-admin").await.unwrap();
    let spec = PermSpec {
        name: perm.name.clone(),
        users: perm.users,
        groups: perm.groups,
        assets: perm.assets,
        nodes: perm.nodes,
        accounts: perm.accounts,
        protocols: perm.protocols,
        actions: "download".parse().unwrap(),
        valid_from: perm.valid_from,
        valid_until: perm.valid_until,
        comment: perm.comment,
        require_approval: perm.require_approval,
    };
    ops.perm_edit(&Caller::local(), "demo-admin", spec)
        .await
        .unwrap();
    assert!(
        term.wait_for(T, |s| s.contains("your access to this asset has ended"))
            .await,
        "{}",
        term.text()
    );
    assert!(term.wait_close(T).await);
    c.close().await;
    b.shutdown().await;
    let rows = b
        .services
        .ops
        .session_list(&Caller::local(), &Query::default(), false)
        .await
        .unwrap();
    assert_eq!(rows[0].reason, "permission ended");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_never_logs_in_is_disconnected() {
    let mut b = TestBastion::start_with("login_timeout = \"1s\"\n").await;
    let mut stream = tokio::net::TcpStream::connect(b.addr).await.unwrap();
    use tokio::io::AsyncReadExt;
    let mut buf = vec![0u8; 4096];
    // Read the server's banner, say nothing, and wait to be dropped.
    let closed = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return true,
                Ok(_) => {}
            }
        }
    })
    .await
    .unwrap_or(false);
    assert!(closed, "an idle unauthenticated connection was kept");
    b.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_target_that_vanishes_leaves_a_finalised_session() {
    let mut b = TestBastion::start().await;
    let c = Client::admin(b.addr).await;
    let mut term = c.shell(80, 24, Some("demo")).await;
    assert!(term.wait_for(T, |s| s.contains("demo@demo:~$")).await);
    term.send(b"echo before-the-target-went\r").await;
    assert!(
        term.wait_for(T, |s| s.matches("before-the-target-went").count() >= 2)
            .await
    );
    b.demo.stop();
    assert!(term.wait_close(T).await, "the person's channel stayed open");
    c.close().await;
    b.shutdown().await;
    let rows = b
        .services
        .ops
        .session_list(&Caller::local(), &Query::default(), false)
        .await
        .unwrap();
    assert_eq!(
        (rows[0].status.as_str(), rows[0].reason.as_str()),
        ("closed", "target closed")
    );
    assert!(rows[0].recording_sha256.is_some());
    let report = rampart::audit::verify(&b.services.store, &b.services.recordings)
        .await
        .unwrap();
    assert_eq!(report.broken, None);
    assert_eq!(report.recordings, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mfa_required_enrols_with_a_qr_code_then_opens_the_menu() {
    let mut b = TestBastion::start_with("[auth]\nmfa = \"required\"\n").await;
    let c = Client::admin(b.addr).await;
    // Without a terminal the enrolment cannot happen: refused, with the way out.
    let (_, err, status) = c.exec("demo echo hi").await;
    assert_eq!(status, None, "refused with a failure reply");
    assert!(err.contains("enrolment is required"), "{err}");
    let mut term = c.shell(100, 40, None).await;
    assert!(
        term.wait_for(T, |s| s.contains("▀") || s.contains("▄") || s.contains("█"))
            .await,
        "{}",
        term.text()
    );
    // The secret is shown in text (groups of four) beside the code: read it
    // off the screen, as a person would type it into their app.
    let text = term.text();
    let is_group = |w: &str| {
        w.len() == 4
            && w.chars()
                .all(|c| c.is_ascii_uppercase() || ('2'..='7').contains(&c))
    };
    let line = text
        .lines()
        .find(|l| l.split_whitespace().filter(|w| is_group(w)).count() >= 6)
        .expect("the base32 secret is on screen");
    let secret: String = line.split_whitespace().filter(|w| is_group(w)).collect();
    let code = rampart::auth::totp::current_code(&secret, jiff::Timestamp::now()).unwrap();
    term.send(code.as_bytes()).await;
    term.send(b"\r").await;
    assert!(
        term.wait_for(T, |s| s.contains("demo") && s.contains("127.0.0.1"))
            .await,
        "{}",
        term.text()
    );
    term.send(b"q").await;
    assert!(term.wait_close(T).await);
    c.close().await;
    // From now on the password alone is not enough.
    let mut handle = support::ssh::connect(b.addr).await;
    let r = handle
        .authenticate_password("admin", ADMIN_PASSWORD)
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
    b.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_direct_jump_with_several_accounts_asks_which() {
    let mut b = TestBastion::start().await;
    b.services
        .ops
        .account_add(
            &Caller::local(),
            "demo",
            "other",
            rampart::ops::AccountSecret::Password(rampart::vault::Secret::new("other-pw".into())),
            false,
        )
        .await
        .unwrap();
    b.reload().await;
    let c = Client::admin(b.addr).await;
    // Without a terminal there is nobody to ask: the choices are named.
    let (_, err, status) = c.exec("demo whoami").await;
    assert_eq!(status, None, "refused with a failure reply");
    assert!(
        err.contains("several accounts") && err.contains("demo, other"),
        "{err}"
    );
    // With one, the chooser for this asset opens; the first entry is `demo`.
    let mut term = c.shell(80, 24, Some("demo")).await;
    assert!(
        term.wait_for(T, |s| s.contains("other")).await,
        "{}",
        term.text()
    );
    term.send(b"\r").await;
    assert!(
        term.wait_for(T, |s| s.contains("demo@demo:~$")).await,
        "{}",
        term.text()
    );
    term.send(b"whoami\r").await;
    assert!(term.wait_for(T, |s| s.matches("demo").count() >= 3).await);
    term.send(b"exit\r").await;
    assert!(term.wait_close(T).await);
    c.close().await;
    b.shutdown().await;
}
