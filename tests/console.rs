//! The staff desk over SSH as admins and auditors see it (screen text
//! through a vt100 parser): the audit view's live list with monitor, join
//! and kill; the console's user screen; the role limits.

mod support;

use std::time::Duration;

use rampart::model::Role;
use rampart::ops::{Caller, UserSpec};
use rampart::store::audit_log::Query;
use rampart::vault::Secret;
use support::ssh::{Client, F4, TestBastion};

const T: Duration = Duration::from_secs(10);
const F3: &[u8] = b"\x1bOR";
const F5: &[u8] = b"\x1b[15~";

async fn operations(b: &TestBastion) -> Vec<(String, String, String)> {
    b.services
        .ops
        .audit_operations(&Caller::local(), &Query::default())
        .await
        .unwrap()
        .into_iter()
        .map(|o| (o.actor, o.via, o.verb))
        .collect()
}

/// A user who logs in with `password`.
async fn user(b: &TestBastion, name: &str, role: Role, password: &str) {
    b.services
        .ops
        .user_add(
            &Caller::local(),
            UserSpec {
                name: name.into(),
                role: Some(role),
                password: Some(Secret::new(password.into())),
                ..Default::default()
            },
        )
        .await
        .unwrap();
}

/// A permission for `user` on the demo asset: any account and protocol,
/// connect only.
fn demo_perm(name: &str, user: &str) -> rampart::ops::PermSpec {
    rampart::ops::PermSpec {
        name: name.into(),
        users: vec![user.into()],
        groups: vec![],
        assets: vec!["demo".into()],
        nodes: vec![],
        accounts: rampart::model::AccountSpec::all(),
        protocols: rampart::model::ProtocolSpec::All,
        actions: "connect".parse().unwrap(),
        valid_from: None,
        valid_until: None,
        comment: String::new(),
        require_approval: false,
    }
}

/// The lines of `screen` that carry text, trimmed.
fn lines(screen: &str) -> Vec<String> {
    screen
        .lines()
        .map(|l| l.trim().to_string())
        .filter(|l| !l.is_empty())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_audit_view_monitors_joins_and_kills_a_live_session() {
    let mut b = TestBastion::start().await;
    // The person at work.
    let person = Client::admin(b.addr).await;
    let mut work = person.shell(80, 24, Some("demo")).await;
    assert!(work.wait_for(T, |s| s.contains("demo@demo:~$")).await);
    work.send(b"echo watched-text").await;
    assert!(work.wait_for(T, |s| s.contains("echo watched-text")).await);
    work.send(b"\r").await;
    assert!(
        work.wait_for(T, |s| s.matches("watched-text").count() >= 2)
            .await
    );

    // The admin at the desk: F4 opens the audit view on the live list.
    let staff = Client::admin(b.addr).await;
    let mut desk = staff.shell(100, 30, None).await;
    assert!(
        desk.wait_for(T, |s| s.contains("F4 Audit") && s.contains("demo"))
            .await,
        "{}",
        desk.text()
    );
    desk.audit_tab(b"2", T, |s| {
        s.contains("Live (1)") && s.contains("127.0.0.1")
    })
    .await;

    // Enter monitors: the mirror shows what the person's terminal shows.
    desk.send(b"\r").await;
    assert!(
        desk.wait_for(T, |s| s.contains("monitoring, read-only")
            && s.contains("watched-text"))
            .await,
        "{}",
        desk.text()
    );
    let mirrored = desk.text();
    for line in lines(&work.text()) {
        assert!(
            mirrored.contains(&line),
            "{line:?} is on the person's screen but not in the monitor:\n{mirrored}"
        );
    }
    // What the person does next streams in.
    work.send(b"echo streamed-later").await;
    assert!(
        work.wait_for(T, |s| s.contains("echo streamed-later"))
            .await
    );
    work.send(b"\r").await;
    assert!(
        desk.wait_for(T, |s| s.matches("streamed-later").count() >= 2)
            .await,
        "{}",
        desk.text()
    );
    desk.send(b"\x1b").await;
    assert!(
        desk.wait_for(T, |s| s.contains("Live (1)")).await,
        "{}",
        desk.text()
    );

    // Join: the person is told, and the admin's keys reach the target.
    desk.send(b"j").await;
    assert!(
        desk.wait_for(T, |s| s.contains("joined: your keys go to the session"))
            .await,
        "{}",
        desk.text()
    );
    assert!(
        work.wait_for(T, |s| s.contains("admin joined this session"))
            .await,
        "{}",
        work.text()
    );
    // Typed as a person types: the line, then Enter once it shows.
    desk.send(b"echo typed-by-the-joiner").await;
    assert!(
        work.wait_for(T, |s| s.contains("echo typed-by-the-joiner"))
            .await,
        "{}",
        work.text()
    );
    desk.send(b"\r").await;
    assert!(
        work.wait_for(T, |s| s.matches("typed-by-the-joiner").count() >= 2)
            .await,
        "{}",
        work.text()
    );
    desk.send(b"\x1d").await;
    assert!(
        work.wait_for(T, |s| s.contains("admin left this session"))
            .await,
        "{}",
        work.text()
    );

    // The live list counts the session's bytes as they pass.
    let live = b.shared.live.list();
    assert!(
        live[0].bytes_in >= 20 && live[0].bytes_out >= 40,
        "{live:?}"
    );

    // Kill with a reason the person sees.
    assert!(desk.wait_for(T, |s| s.contains("Live (1)")).await);
    desk.send(b"k").await;
    assert!(
        desk.wait_for(T, |s| s.contains("Reason shown to the person"))
            .await,
        "{}",
        desk.text()
    );
    desk.send(b"audit hold\r").await;
    assert!(
        work.wait_for(T, |s| s.contains("audit hold")).await,
        "{}",
        work.text()
    );
    assert!(work.wait_close(T).await);
    assert!(
        desk.wait_for(T, |s| s.contains("Live (0)")).await,
        "{}",
        desk.text()
    );
    desk.send(b"q").await;
    assert!(desk.wait_close(T).await);
    person.close().await;
    staff.close().await;
    b.shutdown().await;

    let rows = b
        .services
        .ops
        .session_list(&Caller::local(), &Query::default(), false)
        .await
        .unwrap();
    let session = rows
        .iter()
        .find(|r| r.kind == "shell")
        .expect("the session row");
    assert_eq!(session.reason, "killed: audit hold");
    assert!(
        session.recording_sha256.is_some(),
        "the recording is finalised"
    );
    // What the joiner typed is in the command log like the person's own.
    let commands = b
        .services
        .ops
        .audit_commands(&Caller::local(), &Query::default())
        .await
        .unwrap();
    assert!(
        commands
            .iter()
            .any(|c| c.command == "echo typed-by-the-joiner"),
        "{commands:?}"
    );
    let ops = operations(&b).await;
    for verb in ["session.monitor", "session.join", "session.kill"] {
        assert!(
            ops.iter()
                .any(|(actor, via, v)| actor == "admin" && via == "console" && v == verb),
            "no {verb} row from the console: {ops:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_adds_a_user_with_a_one_time_password() {
    let mut b = TestBastion::start().await;
    let staff = Client::admin(b.addr).await;
    let mut desk = staff.shell(100, 30, None).await;
    assert!(desk.wait_for(T, |s| s.contains("F3 Console")).await);
    desk.send(F3).await;
    assert!(
        desk.wait_for(T, |s| s.contains("Users (1)") && s.contains("admin"))
            .await,
        "{}",
        desk.text()
    );
    desk.send(b"a").await;
    assert!(desk.wait_for(T, |s| s.contains("New user")).await);
    // The name is checked as it is typed, the error beside the field.
    desk.send(b"bob smith").await;
    assert!(
        desk.wait_for(T, |s| s.contains("letters, digits")).await,
        "{}",
        desk.text()
    );
    desk.send(b"\x7f\x7f\x7f\x7f\x7f\x7f").await;
    assert!(
        desk.wait_for(T, |s| !s.contains("letters, digits")).await,
        "{}",
        desk.text()
    );
    // Role: auditor; then create.
    desk.send(b"\t\x1b[C\r").await;
    assert!(
        desk.wait_for(T, |s| s.contains("not shown again")).await,
        "{}",
        desk.text()
    );
    // The one-time password is the line under the explanation.
    let screen = desk.text();
    let otp = screen
        .lines()
        .skip_while(|l| !l.contains("not shown again"))
        .skip(1)
        .map(|l| l.trim_matches(|c: char| c == '│' || c.is_whitespace()))
        .find(|l| !l.is_empty())
        .expect("a password line")
        .to_string();
    desk.send(b" ").await;
    assert!(
        desk.wait_for(T, |s| s.contains("Users (2)")
            && s.contains("bob")
            && s.contains("auditor"))
            .await,
        "{}",
        desk.text()
    );
    // The change is in the operation log, with its after-image.
    desk.send(F4).await;
    desk.send(b"7").await;
    assert!(
        desk.wait_for(T, |s| s.contains("Operations (") && s.contains("user.add"))
            .await,
        "{}",
        desk.text()
    );
    desk.send(b"\r").await;
    assert!(
        desk.wait_for(T, |s| s.contains("user.add user bob by admin")
            && s.contains("(admin, console)")
            && s.contains("after:"))
            .await,
        "{}",
        desk.text()
    );
    assert!(
        !desk.text().contains(&otp),
        "the password is never in the log"
    );
    desk.send(b" ").await;
    // Editing: bob becomes an admin.
    desk.send(F3).await;
    desk.send(b"/bob\r").await;
    assert!(
        desk.wait_for(T, |s| s.contains("Users (1 of 2)")).await,
        "{}",
        desk.text()
    );
    desk.send(b"e").await;
    assert!(desk.wait_for(T, |s| s.contains("Edit user")).await);
    desk.send(b"\x1b[C\r").await;
    assert!(
        desk.wait_for(T, |s| s.contains("bob saved (admin)")).await,
        "{}",
        desk.text()
    );
    desk.send(b"q").await;
    assert!(desk.wait_close(T).await);
    staff.close().await;

    // The password shown is the one that works (and must be changed).
    let mut handle = support::ssh::connect(b.addr).await;
    let r = handle
        .authenticate_password("bob", otp.as_str())
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
        "{r:?} for {otp:?}"
    );
    b.shutdown().await;
    let ops = operations(&b).await;
    assert!(
        ops.iter()
            .any(|(actor, via, v)| actor == "admin" && via == "console" && v == "user.add"),
        "{ops:?}"
    );
    let user = b
        .services
        .ops
        .user_show(&Caller::local(), "bob")
        .await
        .unwrap();
    assert_eq!(user.user.role, Role::Admin);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_auditor_watches_but_cannot_change_anything() {
    let mut b = TestBastion::start().await;
    user(&b, "audrey", Role::Auditor, "correct horse battery staple").await;
    let person = Client::admin(b.addr).await;
    let mut work = person.shell(80, 24, Some("demo")).await;
    assert!(work.wait_for(T, |s| s.contains("demo@demo:~$")).await);

    let auditor = Client::password(b.addr, "audrey", "correct horse battery staple")
        .await
        .unwrap();
    let mut desk = auditor.shell(100, 30, None).await;
    assert!(
        desk.wait_for(T, |s| s.contains("F4 Audit")).await,
        "{}",
        desk.text()
    );
    assert!(!desk.text().contains("F3 Console"));
    desk.send(F3).await;
    assert!(
        desk.wait_for(T, |s| s.contains("the console needs the admin role"))
            .await,
        "{}",
        desk.text()
    );
    // The dashboard: a failed login and the running session are counted,
    // and admin is the top user.
    assert!(
        Client::password(b.addr, "admin", "wrong password")
            .await
            .is_err()
    );
    desk.send(F4).await;
    assert!(
        desk.wait_for(T, |s| s.contains("Sessions per day")
            && s.contains("Top users")
            && s.contains("Logins per hour"))
            .await,
        "{}",
        desk.text()
    );
    let screen = desk.text();
    let today = screen
        .lines()
        .find(|l| l.contains("Today"))
        .expect("today's figures")
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    assert!(
        today.contains("logins 2 failed 1 sessions 1 denied 0 transfers 0"),
        "{today}\n{screen}"
    );
    assert!(
        screen
            .lines()
            .any(|l| l.contains("admin") && l.contains("1 █")),
        "{screen}"
    );
    desk.send(b"2").await;
    assert!(
        desk.wait_for(T, |s| s.contains("Live (1)")).await,
        "{}",
        desk.text()
    );
    desk.send(b"k").await;
    assert!(
        desk.wait_for(T, |s| s.contains("ending a session needs the admin role"))
            .await,
        "{}",
        desk.text()
    );
    desk.send(b"j").await;
    assert!(
        desk.wait_for(T, |s| s.contains("joining a session needs the admin role"))
            .await,
        "{}",
        desk.text()
    );
    // Monitoring is an auditor's job.
    desk.send(b"\r").await;
    assert!(
        desk.wait_for(T, |s| s.contains("monitoring, read-only"))
            .await,
        "{}",
        desk.text()
    );
    desk.send(b"q").await;
    desk.send(b"q").await;
    assert!(desk.wait_close(T).await);
    work.send(b"exit\r").await;
    assert!(work.wait_close(T).await);
    person.close().await;
    auditor.close().await;
    b.shutdown().await;
    let ops = operations(&b).await;
    assert!(
        ops.iter()
            .any(|(a, _, v)| a == "audrey" && v == "session.monitor")
    );
    assert!(
        !ops.iter()
            .any(|(a, _, v)| a == "audrey" && v == "session.kill")
    );
}

/// Roles are read when the desk acts, not when it opened (issue 13, item
/// 6): an admin demoted to auditor while their console is open cannot add
/// a user from it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_demoted_admins_open_desk_cannot_add_a_user() {
    let mut b = TestBastion::start().await;
    user(&b, "eve", Role::Admin, "eve-Password-123").await;
    let staff = Client::password(b.addr, "eve", "eve-Password-123")
        .await
        .unwrap();
    let mut desk = staff.shell(100, 30, None).await;
    assert!(desk.wait_for(T, |s| s.contains("F3 Console")).await);
    desk.send(F3).await;
    assert!(
        desk.wait_for(T, |s| s.contains("Users (2)")).await,
        "{}",
        desk.text()
    );
    b.services
        .ops
        .user_edit(
            &Caller::local(),
            "eve",
            rampart::ops::UserEdit {
                role: Some(Role::Auditor),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    // The form the desk still offers, filled and sent at once.
    desk.send(b"amallory\t\x1b[C\x1b[C\r").await;
    assert!(
        desk.wait_for(T, |s| s
            .contains("adding a user needs the admin role (eve is auditor)")
            || s.contains("access ended: eve is now auditor"))
            .await,
        "{}",
        desk.text()
    );
    let users = b.services.ops.user_list(&Caller::local()).await.unwrap();
    assert!(
        users.iter().all(|u| u.name != "mallory"),
        "no user was added"
    );
    staff.close().await;
    b.shutdown().await;
    assert!(
        !operations(&b)
            .await
            .iter()
            .any(|(actor, _, verb)| actor == "eve" && verb == "user.add")
    );
}

/// Disabling an admin ends their open desk within about two seconds, here
/// while they monitor a live session, with the reason on their screen.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disabling_an_admin_ends_their_monitor_with_the_reason_on_screen() {
    let mut b = TestBastion::start().await;
    user(&b, "eve", Role::Admin, "eve-Password-123").await;
    let person = Client::admin(b.addr).await;
    let mut work = person.shell(80, 24, Some("demo")).await;
    assert!(work.wait_for(T, |s| s.contains("demo@demo:~$")).await);

    let staff = Client::password(b.addr, "eve", "eve-Password-123")
        .await
        .unwrap();
    let mut desk = staff.shell(100, 30, None).await;
    assert!(desk.wait_for(T, |s| s.contains("F4 Audit")).await);
    desk.audit_tab(b"2", T, |s| s.contains("Live (1)")).await;
    desk.send(b"\r").await;
    assert!(
        desk.wait_for(T, |s| s.contains("monitoring, read-only"))
            .await,
        "{}",
        desk.text()
    );

    b.services
        .ops
        .user_set_active(&Caller::local(), "eve", false)
        .await
        .unwrap();
    let disabled = std::time::Instant::now();
    assert!(
        desk.wait_for(T, |s| s.contains("rampart: access ended: eve is disabled"))
            .await,
        "{}",
        desk.text()
    );
    assert!(desk.wait_close(T).await);
    assert!(
        disabled.elapsed() < Duration::from_secs(3),
        "{:?}",
        disabled.elapsed()
    );
    // The person's own session goes on.
    work.send(b"echo still-here\r").await;
    assert!(
        work.wait_for(T, |s| s.matches("still-here").count() >= 2)
            .await
    );
    work.send(b"exit\r").await;
    assert!(work.wait_close(T).await);
    person.close().await;
    staff.close().await;
    b.shutdown().await;
}

async fn review_filter(b: &TestBastion) {
    b.services
        .ops
        .filter_add(
            &Caller::local(),
            rampart::ops::FilterSpec {
                name: "release-review".into(),
                pattern: "^echo release".into(),
                action: rampart::model::FilterAction::Review,
                on: Default::default(),
                priority: 10,
                users: vec![],
                groups: vec![],
                assets: vec!["demo".into()],
                nodes: vec![],
                accounts: rampart::model::AccountSpec::all(),
            },
        )
        .await
        .unwrap();
    b.reload().await;
}

async fn commands(b: &TestBastion) -> Vec<(String, String)> {
    b.services
        .ops
        .audit_commands(&Caller::local(), &Query::default())
        .await
        .unwrap()
        .into_iter()
        .map(|c| (c.command, c.action))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_command_under_review_runs_only_when_an_admin_approves() {
    let mut b = TestBastion::start().await;
    review_filter(&b).await;
    let staff = second_admin(&b).await;
    let mut desk = staff.shell(100, 30, None).await;
    assert!(desk.wait_for(T, |s| s.contains("F4 Audit")).await);
    // The person is an admin too, with a desk of their own open.
    let own = Client::admin(b.addr).await;
    let mut own_desk = own.shell(100, 30, None).await;
    assert!(own_desk.wait_for(T, |s| s.contains("F4 Audit")).await);

    let person = Client::admin(b.addr).await;
    let mut work = person.shell(80, 24, Some("demo")).await;
    assert!(work.wait_for(T, |s| s.contains("demo@demo:~$")).await);
    work.send(b"echo release-one\r").await;
    assert!(
        work.wait_for(T, |s| s.contains("needs an administrator's approval"))
            .await,
        "{}",
        work.text()
    );
    // Every other admin's desk gets the prompt, whatever view it is on.
    assert!(
        desk.wait_for(T, |s| s.contains("Waiting for your approval")
            && s.contains("echo release-one")
            && s.contains("release-review"))
            .await,
        "{}",
        desk.text()
    );
    // Issue 13 item 11: the requester's own desk lists it but cannot
    // answer it.
    assert!(
        own_desk
            .wait_for(T, |s| s.contains("1 waiting for approval (F5)"))
            .await,
        "{}",
        own_desk.text()
    );
    assert!(!own_desk.text().contains("Waiting for your approval"));
    own_desk.send(F5).await;
    assert!(
        own_desk
            .wait_for(T, |s| s.contains("Your own request")
                && s.contains("echo release-one"))
            .await,
        "{}",
        own_desk.text()
    );
    own_desk.send(b"a").await;
    assert!(
        own_desk
            .wait_for(T, |s| s.contains("another administrator must answer it")
                && s.contains("permission denied"))
            .await,
        "{}",
        own_desk.text()
    );
    assert_eq!(b.shared.live.approvals().len(), 1, "still waiting");
    // Nothing ran while it waited.
    assert_eq!(
        work.text().matches("release-one").count(),
        1,
        "{}",
        work.text()
    );
    desk.send(b"a").await;
    assert!(
        work.wait_for(T, |s| s.contains("approved by ada")
            && s.matches("release-one").count() >= 2)
            .await,
        "{}",
        work.text()
    );

    // Denied: the line is cleared and never runs.
    work.send(b"echo release-two\r").await;
    assert!(
        desk.wait_for(T, |s| s.contains("echo release-two")).await,
        "{}",
        desk.text()
    );
    desk.send(b"d").await;
    assert!(
        work.wait_for(T, |s| s.contains("denied by ada; it was not run"))
            .await,
        "{}",
        work.text()
    );
    work.send(b"echo after\r").await;
    assert!(work.wait_for(T, |s| s.matches("after").count() >= 2).await);
    assert_eq!(
        work.text().matches("release-two").count(),
        1,
        "{}",
        work.text()
    );

    work.send(b"exit\r").await;
    assert!(work.wait_close(T).await);
    desk.send(b"q").await;
    assert!(desk.wait_close(T).await);
    person.close().await;
    staff.close().await;
    own.close().await;
    b.shutdown().await;
    let rows = commands(&b).await;
    assert!(
        rows.contains(&("echo release-one".into(), "review".into())),
        "{rows:?}"
    );
    assert!(
        rows.contains(&("echo release-two".into(), "deny".into())),
        "{rows:?}"
    );
    let ops = operations(&b).await;
    for verb in ["command.approve", "command.deny"] {
        assert!(
            ops.iter()
                .any(|(a, via, v)| a == "ada" && via == "console" && v == verb),
            "{ops:?}"
        );
    }
    assert!(
        !ops.iter()
            .any(|(a, _, v)| a == "admin" && v.starts_with("command.")),
        "{ops:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unanswered_review_is_refused_after_the_timeout() {
    let mut b = TestBastion::start_with("[auth]\napproval_timeout = \"1s\"\n").await;
    review_filter(&b).await;
    let person = Client::admin(b.addr).await;
    let mut work = person.shell(80, 24, Some("demo")).await;
    assert!(work.wait_for(T, |s| s.contains("demo@demo:~$")).await);
    work.send(b"echo release-nobody\r").await;
    assert!(
        work.wait_for(T, |s| s.contains("no administrator answered within 1s"))
            .await,
        "{}",
        work.text()
    );
    // And Ctrl-C withdraws one without waiting.
    work.send(b"echo release-withdrawn\r").await;
    assert!(
        work.wait_for(T, |s| s.matches("Ctrl-C withdraws").count() >= 2)
            .await,
        "{}",
        work.text()
    );
    work.send(b"\x03").await;
    assert!(
        work.wait_for(T, |s| s.contains("withdrawn; it was not run"))
            .await,
        "{}",
        work.text()
    );
    assert!(b.shared.live.approvals().is_empty());
    work.send(b"exit\r").await;
    assert!(work.wait_close(T).await);
    person.close().await;
    b.shutdown().await;
    let rows = commands(&b).await;
    assert!(
        rows.contains(&("echo release-nobody".into(), "deny".into())),
        "{rows:?}"
    );
    assert!(!work.text().contains("release-nobody\r\nrelease-nobody"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_answers_who_can_reach_and_removes_a_permission() {
    let mut b = TestBastion::start().await;
    let password = "correct horse battery staple";
    user(&b, "bob", Role::User, password).await;
    support::peers::permit(
        &b,
        "bob-demo",
        "bob",
        &["demo"],
        rampart::model::Actions::all_but_tunnel(),
    )
    .await;
    b.reload().await;

    let staff = Client::admin(b.addr).await;
    let mut desk = staff.shell(100, 30, None).await;
    assert!(desk.wait_for(T, |s| s.contains("F3 Console")).await);
    desk.send(F3).await;
    desk.send(b"4").await;
    assert!(
        desk.wait_for(T, |s| s.contains("Assets (1)") && s.contains("127.0.0.1"))
            .await,
        "{}",
        desk.text()
    );
    desk.send(b"w").await;
    assert!(
        desk.wait_for(T, |s| s.contains("Who can reach demo (2)"))
            .await,
        "{}",
        desk.text()
    );
    let screen = desk.text();
    let row = |user: &str, perm: &str| {
        screen
            .lines()
            .any(|l| l.contains(&format!("│{user} ")) && l.contains(perm))
    };
    assert!(row("admin", "demo-admin"), "{screen}");
    assert!(row("bob", "bob-demo"), "{screen}");

    // Remove bob's permission from the Perms list, with confirmation.
    desk.send(b"6").await;
    assert!(
        desk.wait_for(T, |s| s.contains("Perms (2)")).await,
        "{}",
        desk.text()
    );
    desk.send(b"/bob\r").await;
    assert!(
        desk.wait_for(T, |s| s.contains("Perms (1 of 2)")).await,
        "{}",
        desk.text()
    );
    desk.send(b"x").await;
    assert!(
        desk.wait_for(T, |s| s.contains("Remove permission bob-demo?"))
            .await,
        "{}",
        desk.text()
    );
    desk.send(b"y").await;
    assert!(
        desk.wait_for(T, |s| s.contains("bob-demo removed")
            && s.contains("Perms (0 of 1)"))
            .await,
        "{}",
        desk.text()
    );
    // Groups and their members, and nodes, are made here too.
    desk.send(b"2").await;
    assert!(desk.wait_for(T, |s| s.contains("Groups (0)")).await);
    desk.send(b"a").await;
    assert!(desk.wait_for(T, |s| s.contains("New group")).await);
    desk.send(b"ops\r").await;
    assert!(
        desk.wait_for(T, |s| s.contains("group ops added")
            && s.contains("Groups (1)"))
            .await,
        "{}",
        desk.text()
    );
    desk.send(b"m").await;
    assert!(desk.wait_for(T, |s| s.contains("Add members to ops")).await);
    desk.send(b"bob\r").await;
    assert!(
        desk.wait_for(T, |s| s.contains("group ops: bob")).await,
        "{}",
        desk.text()
    );
    desk.send(b"3a").await;
    assert!(desk.wait_for(T, |s| s.contains("New node")).await);
    desk.send(b"/DEFAULT/prod\r").await;
    assert!(
        desk.wait_for(T, |s| s.contains("node /DEFAULT/prod added"))
            .await,
        "{}",
        desk.text()
    );
    desk.send(b"q").await;
    assert!(desk.wait_close(T).await);
    staff.close().await;

    // Bob's menu no longer offers demo.
    b.reload().await;
    let bob = Client::password(b.addr, "bob", password).await.unwrap();
    let mut menu = bob.shell(80, 24, None).await;
    assert!(
        menu.wait_for(T, |s| s.contains("No assets are available to you"))
            .await,
        "{}",
        menu.text()
    );
    bob.close().await;
    b.shutdown().await;
    let ops = operations(&b).await;
    assert!(
        ops.iter()
            .any(|(a, via, v)| a == "admin" && via == "console" && v == "perm.remove"),
        "{ops:?}"
    );
    let groups = b.services.ops.group_list(&Caller::local()).await.unwrap();
    assert_eq!(groups[0].members, ["bob"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn text_seen_on_a_screen_is_found_with_who_and_when() {
    let mut b = TestBastion::start().await;
    let person = Client::admin(b.addr).await;
    let mut work = person.shell(80, 24, Some("demo")).await;
    assert!(work.wait_for(T, |s| s.contains("demo@demo:~$")).await);
    work.send(b"echo \x1b[1mlaunch\x1b[0m-code-4711").await;
    assert!(work.wait_for(T, |s| s.contains("launch-code-4711")).await);
    work.send(b"\r").await;
    assert!(
        work.wait_for(T, |s| s.matches("launch-code-4711").count() >= 2)
            .await
    );
    work.send(b"exit\r").await;
    assert!(work.wait_close(T).await);
    person.close().await;
    // The index is built from the recording after the session: wait for it.
    tokio::time::timeout(T, b.services.index.caught_up())
        .await
        .expect("the indexer catches up");

    let staff = Client::admin(b.addr).await;
    let mut desk = staff.shell(100, 30, None).await;
    assert!(desk.wait_for(T, |s| s.contains("F4 Audit")).await);
    desk.send(F4).await;
    desk.send(b"3").await;
    assert!(
        desk.wait_for(T, |s| s.contains("Sessions (1)")).await,
        "{}",
        desk.text()
    );
    desk.send(b"f").await;
    assert!(desk.wait_for(T, |s| s.contains("Find text")).await);
    desk.send(b"CODE-47\r").await;
    assert!(
        desk.wait_for(T, |s| s.contains("Seen on screen: \"CODE-47\" (2)"))
            .await,
        "{}",
        desk.text()
    );
    let screen = desk.text();
    assert!(
        screen.lines().any(|l| l.contains("admin")
            && l.contains("demo")
            && l.trim_end_matches('│')
                .trim_end()
                .ends_with("launch-code-4711")),
        "the output line, with who and where: {screen}"
    );
    assert!(
        screen.contains("demo@demo:~$ echo launch-code-4711"),
        "{screen}"
    );
    // Enter replays the session from that moment: paused there, the text on
    // the recorded screen.
    desk.send(b"\r").await;
    assert!(
        desk.wait_for(T, |s| (s.contains("‖ paused") || s.contains("■ ended"))
            && s.matches("launch-code-4711").count() >= 2)
            .await,
        "{}",
        desk.text()
    );
    desk.send(b"q").await;
    assert!(
        desk.wait_for(T, |s| s.contains("Seen on screen")).await,
        "{}",
        desk.text()
    );
    // From the command log too.
    desk.send(b"4").await;
    assert!(
        desk.wait_for(T, |s| s.contains("Commands (2)")).await,
        "{}",
        desk.text()
    );
    desk.send(b"\r").await;
    assert!(
        desk.wait_for(T, |s| (s.contains("‖ paused") || s.contains("■ ended"))
            && s.contains("launch"))
            .await,
        "{}",
        desk.text()
    );
    desk.send(b"q").await;
    desk.send(b"q").await;
    assert!(desk.wait_close(T).await);
    staff.close().await;
    b.shutdown().await;
    // A search shorter than the index's trigrams still finds it.
    let found = b
        .services
        .ops
        .audit_screen(&Caller::local(), &b.services.recordings, "47", 10)
        .await
        .unwrap();
    assert_eq!(found.hits.len(), 2, "{found:?}");
    assert!(
        found
            .hits
            .iter()
            .all(|h| h.user == "admin" && h.asset == "demo")
    );
    let ops = operations(&b).await;
    assert!(
        ops.iter()
            .any(|(a, via, v)| a == "admin" && via == "console" && v == "session.replay"),
        "replaying is audited: {ops:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_permission_with_require_approval_waits_for_an_admin_at_connect() {
    let mut b = TestBastion::start().await;
    let password = "correct horse battery staple";
    user(&b, "bob", Role::User, password).await;
    b.services
        .ops
        .perm_add(
            &Caller::local(),
            rampart::ops::PermSpec {
                actions: rampart::model::Actions::all_but_tunnel(),
                require_approval: true,
                ..demo_perm("bob-demo-approved", "bob")
            },
        )
        .await
        .unwrap();
    b.reload().await;
    let staff = Client::admin(b.addr).await;
    let mut desk = staff.shell(100, 30, None).await;
    assert!(desk.wait_for(T, |s| s.contains("F4 Audit")).await);

    let bob = Client::password(b.addr, "bob", password).await.unwrap();
    let mut work = bob.shell(80, 24, Some("demo")).await;
    assert!(
        work.wait_for(T, |s| s.contains("needs an administrator's approval"))
            .await,
        "{}",
        work.text()
    );
    assert!(
        desk.wait_for(T, |s| s.contains("Waiting for your approval")
            && s.contains("bob on demo as demo")
            && s.contains("connect (interactive)")
            && s.contains("bob-demo-approved"))
            .await,
        "{}",
        desk.text()
    );
    desk.send(b"a").await;
    assert!(
        work.wait_for(T, |s| s.contains("approved by admin")
            && s.contains("demo@demo:~$"))
            .await,
        "{}",
        work.text()
    );
    work.send(b"exit\r").await;
    assert!(work.wait_close(T).await);
    assert!(
        desk.wait_for(T, |s| !s.contains("Waiting for your approval"))
            .await,
        "{}",
        desk.text()
    );

    // Denied: no session, and the person is told.
    let mut again = bob.shell(80, 24, Some("demo")).await;
    assert!(
        desk.wait_for(T, |s| s.contains("Waiting for your approval"))
            .await,
        "{}",
        desk.text()
    );
    desk.send(b"d").await;
    assert!(
        again
            .wait_for(T, |s| s.contains("denied by admin; it was not run"))
            .await,
        "{}\n{}",
        again.text(),
        desk.text()
    );
    assert!(again.wait_close(T).await);
    assert!(!again.text().contains("demo@demo:~$"));
    desk.send(b"q").await;
    assert!(desk.wait_close(T).await);
    bob.close().await;
    staff.close().await;
    b.shutdown().await;
    let ops = operations(&b).await;
    for verb in ["connect.approve", "connect.deny"] {
        assert!(
            ops.iter().any(|(a, _, v)| a == "admin" && v == verb),
            "{ops:?}"
        );
    }
    let sessions = b
        .services
        .ops
        .session_list(&Caller::local(), &Query::default(), false)
        .await
        .unwrap();
    assert_eq!(
        sessions.len(),
        1,
        "only the approved connection became a session"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_permission_made_in_the_console_puts_the_asset_in_the_users_menu() {
    let mut b = TestBastion::start().await;
    let password = "correct horse battery staple";
    user(&b, "carol", Role::User, password).await;
    let carol = Client::password(b.addr, "carol", password).await.unwrap();
    let mut before = carol.shell(80, 24, None).await;
    assert!(
        before
            .wait_for(T, |s| s.contains("No assets are available to you"))
            .await
    );
    before.send(b"q").await;
    assert!(before.wait_close(T).await);

    let staff = Client::admin(b.addr).await;
    let mut desk = staff.shell(100, 30, None).await;
    assert!(desk.wait_for(T, |s| s.contains("F3 Console")).await);
    desk.send(F3).await;
    desk.send(b"6").await;
    assert!(desk.wait_for(T, |s| s.contains("Perms (1)")).await);
    desk.send(b"a").await;
    assert!(desk.wait_for(T, |s| s.contains("New permission")).await);
    desk.send(b"carol-demo\x1b[B").await;
    // Names complete with Tab; an unknown one is named at once.
    desk.send(b"caro").await;
    assert!(
        desk.wait_for(T, |s| s.contains("no user is called \"caro\""))
            .await,
        "{}",
        desk.text()
    );
    desk.send(b"\t").await;
    desk.send(b"\x1b[B\x1b[Bde\t").await;
    assert!(
        desk.wait_for(T, |s| s.contains("ready: Enter to create"))
            .await,
        "{}",
        desk.text()
    );
    desk.send(b"\r").await;
    assert!(
        desk.wait_for(T, |s| s.contains("permission carol-demo added")
            && s.contains("Perms (2)"))
            .await,
        "{}",
        desk.text()
    );
    desk.send(b"q").await;
    assert!(desk.wait_close(T).await);
    staff.close().await;

    // Carol's next menu has the asset (the server notices within a second).
    b.reload().await;
    let mut after = carol.shell(80, 24, None).await;
    assert!(
        after
            .wait_for(T, |s| s.contains("demo") && s.contains("127.0.0.1"))
            .await,
        "{}",
        after.text()
    );
    after.send(b"q").await;
    assert!(after.wait_close(T).await);
    carol.close().await;
    b.shutdown().await;
    let perm = b
        .services
        .ops
        .perm_show(&Caller::local(), "carol-demo")
        .await
        .unwrap();
    assert_eq!(
        (perm.users, perm.assets),
        (vec!["carol".to_string()], vec!["demo".to_string()])
    );
    let ops = operations(&b).await;
    assert!(
        ops.iter()
            .any(|(a, via, v)| a == "admin" && via == "console" && v == "perm.add"),
        "{ops:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_adds_an_asset_and_an_account_tests_it_and_trusts_its_key() {
    let mut b = TestBastion::start().await;
    let target_password = "target-pw-5521";
    let (host_key, host_public) = support::ssh::new_key("web9");
    let target = rampart::demo::DemoTarget::start(
        "127.0.0.1:0".parse().unwrap(),
        "ops",
        Secret::new(target_password.into()),
        host_key,
    )
    .await
    .unwrap();
    let port = target.addr.port();

    let staff = Client::admin(b.addr).await;
    let mut desk = staff.shell(100, 30, None).await;
    assert!(desk.wait_for(T, |s| s.contains("F3 Console")).await);
    desk.send(F3).await;
    desk.send(b"4").await;
    assert!(desk.wait_for(T, |s| s.contains("Assets (1)")).await);
    desk.send(b"a").await;
    assert!(desk.wait_for(T, |s| s.contains("New asset")).await);
    // A bad address is named beside its field as it is typed.
    desk.send(b"web9\x1b[B127.0.0.1 x").await;
    assert!(
        desk.wait_for(T, |s| s.contains("address: a host name or IP address"))
            .await,
        "{}",
        desk.text()
    );
    desk.send(b"\x7f\x7f\x1b[B\x15").await;
    desk.send(format!("ssh/{port}").as_bytes()).await;
    assert!(
        desk.wait_for(T, |s| s.contains("ready: Enter to create"))
            .await,
        "{}",
        desk.text()
    );
    desk.send(b"\r").await;
    assert!(
        desk.wait_for(T, |s| s.contains("asset web9 added")
            && s.contains("Assets (2)"))
            .await,
        "{}",
        desk.text()
    );

    // The account: the password is typed masked and never shown.
    desk.send(b"5").await;
    assert!(desk.wait_for(T, |s| s.contains("Accounts (1)")).await);
    desk.send(b"a").await;
    assert!(desk.wait_for(T, |s| s.contains("New account")).await);
    desk.send(b"\x15web9\x1b[Bops\x1b[B\x1b[B").await;
    desk.send(target_password.as_bytes()).await;
    assert!(
        desk.wait_for(T, |s| s.contains("*****")).await,
        "{}",
        desk.text()
    );
    assert!(!desk.text().contains(target_password));
    desk.send(b"\r").await;
    assert!(
        desk.wait_for(T, |s| s.contains("account ops@web9 added")
            && s.contains("Accounts (2)"))
            .await,
        "{}",
        desk.text()
    );

    // Test: it works, and the key it presents is not pinned yet; trust it.
    desk.send(b"/web9\r").await;
    assert!(desk.wait_for(T, |s| s.contains("Accounts (1 of 2)")).await);
    desk.send(b"t").await;
    let fingerprint = rampart::auth::parse_public_key_line(&host_public)
        .unwrap()
        .fingerprint;
    assert!(
        desk.wait_for(T, |s| s.contains("web9: connection works")
            && s.contains("authenticated in")
            && s.contains(&fingerprint)
            && s.contains("not pinned"))
            .await,
        "{}",
        desk.text()
    );
    desk.send(b"t").await;
    assert!(desk.wait_for(T, |s| s.contains("Pin the key web9")).await);
    desk.send(b"y").await;
    assert!(
        desk.wait_for(T, |s| s.contains(&format!("web9: pinned {fingerprint}")))
            .await,
        "{}",
        desk.text()
    );

    // Edit: the asset is taken out of use.
    desk.send(b"4/web9\r").await;
    assert!(desk.wait_for(T, |s| s.contains("Assets (1 of 2)")).await);
    desk.send(b"e").await;
    assert!(desk.wait_for(T, |s| s.contains("Edit asset web9")).await);
    // Name, Address, Protocols, Nodes, Platform, Database, URL, TLS,
    // then Active.
    desk.send(b"\x1b[B\x1b[B\x1b[B\x1b[B\x1b[B\x1b[B\x1b[B\x1b[B ")
        .await;
    assert!(
        desk.wait_for(T, |s| s.contains("[ ] people can connect"))
            .await,
        "{}",
        desk.text()
    );
    desk.send(b"\r").await;
    assert!(
        desk.wait_for(T, |s| s.contains("asset web9 saved")).await,
        "{}",
        desk.text()
    );
    desk.send(b"q").await;
    assert!(desk.wait_close(T).await);
    b.shutdown().await;

    let ops = &b.services.ops;
    let shown = ops.asset_show(&Caller::local(), "web9").await.unwrap();
    assert!(!shown.asset.active);
    assert_eq!(shown.asset.protocols[0].port, port);
    assert_eq!(
        shown
            .host_keys
            .iter()
            .map(|k| k.fingerprint.as_str())
            .collect::<Vec<_>>(),
        [fingerprint.as_str()]
    );
    assert_eq!(shown.accounts.len(), 1);
    let log = operations(&b).await;
    for verb in [
        "asset.add",
        "account.add",
        "asset.test",
        "asset.trust",
        "asset.edit",
    ] {
        assert!(
            log.iter()
                .any(|(a, via, v)| a == "admin" && via == "console" && v == verb),
            "{verb}: {log:?}"
        );
    }
    let rows = ops
        .audit_operations(&Caller::local(), &Query::default())
        .await
        .unwrap();
    assert!(
        !format!("{rows:?}").contains(target_password),
        "the account password is in no log row"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_edits_users_keys_nodes_filters_acls_and_permissions() {
    let mut b = TestBastion::start().await;
    let ops = &b.services.ops;
    let local = Caller::local();
    user(&b, "carol", Role::User, "correct horse battery staple").await;
    user(&b, "dave", Role::User, "correct horse battery staple").await;
    ops.group_add(&local, "oncall").await.unwrap();
    ops.node_add(&local, "/DEFAULT/prod").await.unwrap();
    ops.perm_add(&local, demo_perm("carol-demo", "carol"))
        .await
        .unwrap();
    let (_, public) = support::ssh::new_key("carol@laptop");

    let staff = Client::admin(b.addr).await;
    let mut desk = staff.shell(100, 30, None).await;
    assert!(desk.wait_for(T, |s| s.contains("F3 Console")).await);
    desk.send(F3).await;
    assert!(desk.wait_for(T, |s| s.contains("Users (3)")).await);
    // `?` lists the keys of this screen, the common ones first.
    desk.send(b"?").await;
    assert!(
        desk.wait_for(T, |s| s.contains("public keys (a add, x remove)")
            && s.contains("reload the list")
            && s.contains("quit")
            && !s.contains("force logout"))
            .await,
        "{}",
        desk.text()
    );
    desk.send(b" ").await;
    assert!(
        desk.wait_for(T, |s| !s.contains("public keys (a add"))
            .await
    );

    // A user's groups and expiry, in the edit form.
    desk.send(b"/carol\r").await;
    assert!(desk.wait_for(T, |s| s.contains("Users (1 of 3)")).await);
    desk.send(b"e").await;
    assert!(desk.wait_for(T, |s| s.contains("Edit user carol")).await);
    // Role, Email, then Groups (Tab completes), then Expires.
    desk.send(b"\x1b[B\x1b[Bon\t\x1b[B2030-01-01").await;
    assert!(
        desk.wait_for(T, |s| s.contains("oncall")
            && s.contains("ready: Enter to save"))
            .await,
        "{}",
        desk.text()
    );
    desk.send(b"\r").await;
    assert!(
        desk.wait_for(T, |s| s.contains("carol saved (user)")).await,
        "{}",
        desk.text()
    );

    // Her public keys: none yet; one added.
    desk.send(b"K").await;
    assert!(
        desk.wait_for(T, |s| s.contains("Public keys of carol (0)"))
            .await,
        "{}",
        desk.text()
    );
    desk.send(b"a").await;
    assert!(
        desk.wait_for(T, |s| s.contains("Add a public key for carol"))
            .await
    );
    desk.send(public.as_bytes()).await;
    desk.send(b"\r").await;
    assert!(
        desk.wait_for(T, |s| s.contains("added to carol")).await,
        "{}",
        desk.text()
    );

    // A node moved, with the parent it needs made on the way.
    desk.send(b"3/prod\r").await;
    assert!(desk.wait_for(T, |s| s.contains("Nodes (1 of")).await);
    desk.send(b"e").await;
    assert!(
        desk.wait_for(T, |s| s.contains("Rename or move /DEFAULT/prod"))
            .await
    );
    desk.send(b"\x15/DEFAULT/live/web\r").await;
    assert!(
        desk.wait_for(T, |s| s.contains(
            "node /DEFAULT/prod moved to /DEFAULT/live/web; created /DEFAULT/live"
        ))
        .await,
        "{}",
        desk.text()
    );

    // A command filter and a login ACL.
    desk.send(b"7").await;
    assert!(desk.wait_for(T, |s| s.contains("Filters (")).await);
    desk.send(b"a").await;
    assert!(desk.wait_for(T, |s| s.contains("New command filter")).await);
    desk.send(b"no-reboot\x1b[B^(reboot\x1b[B").await;
    assert!(
        desk.wait_for(T, |s| s.contains("pattern: ")).await,
        "an unclosed group is named: {}",
        desk.text()
    );
    // Pattern, then Action, On, Priority, Users.
    desk.send(b"\x1b[A)\x1b[B\x1b[B\x1b[B\x1b[Bcarol\r").await;
    assert!(
        desk.wait_for(T, |s| s.contains("command filter no-reboot added"))
            .await,
        "{}",
        desk.text()
    );
    desk.send(b"8").await;
    assert!(desk.wait_for(T, |s| s.contains("ACLs (")).await);
    for round in 0..2 {
        desk.send(b"a").await;
        assert!(desk.wait_for(T, |s| s.contains("New login ACL")).await);
        desk.send(b"office\x1b[B\x1b[B\x1b[Bcarol\x1b[B\x1b[B10.0.0.0/8\r")
            .await;
        if round == 0 {
            assert!(
                desk.wait_for(T, |s| s.contains("login ACL office added"))
                    .await,
                "{}",
                desk.text()
            );
        }
    }
    // The second is refused by ops: the form comes back, with the reason.
    assert!(
        desk.wait_for(T, |s| s.contains("New login ACL")
            && s.contains("already exists"))
            .await,
        "{}",
        desk.text()
    );
    desk.send(b"\x1b").await;
    assert!(desk.wait_for(T, |s| !s.contains("New login ACL")).await);

    // The permission, edited: uploads too.
    desk.send(b"6/carol\r").await;
    assert!(desk.wait_for(T, |s| s.contains("Perms (1 of")).await);
    desk.send(b"e").await;
    assert!(
        desk.wait_for(T, |s| s.contains("Edit permission carol-demo"))
            .await
    );
    // Name, Users, Groups, Assets, Nodes, Accounts, Protocols, Actions.
    desk.send(b"\x1b[B\x1b[B\x1b[B\x1b[B\x1b[B\x1b[B\x1b[B\x15connect,upload\r")
        .await;
    assert!(
        desk.wait_for(T, |s| s.contains("permission carol-demo saved"))
            .await,
        "{}",
        desk.text()
    );

    // A user removed, after a confirmation.
    desk.send(b"1/\x15dave\r").await;
    assert!(desk.wait_for(T, |s| s.contains("Users (1 of 3)")).await);
    desk.send(b"x").await;
    assert!(
        desk.wait_for(T, |s| s
            .contains("Remove user (with their keys and group memberships) dave?"))
            .await,
        "{}",
        desk.text()
    );
    desk.send(b"y").await;
    assert!(
        desk.wait_for(T, |s| s.contains("dave removed")).await,
        "{}",
        desk.text()
    );

    // The operation log, narrowed when loaded: by whom, and since when.
    desk.send(F4).await;
    desk.send(b"7").await;
    assert!(
        desk.wait_for(T, |s| s.contains("local:root")).await,
        "{}",
        desk.text()
    );
    desk.send(b"t").await;
    assert!(desk.wait_for(T, |s| s.contains("Narrow the history")).await);
    desk.send(b"admin\x1b[B\x1b[Bsoon").await;
    assert!(
        desk.wait_for(T, |s| s.contains("duration ago")).await,
        "a bad time is named: {}",
        desk.text()
    );
    desk.send(b"\x15" as &[u8]).await;
    desk.send(b"1h\r").await;
    assert!(
        desk.wait_for(T, |s| s.contains("Operations (user admin, since")
            && s.contains("perm.edit")
            && !s.contains("local:root"))
            .await,
        "{}",
        desk.text()
    );
    desk.send(b"q").await;
    assert!(desk.wait_close(T).await);
    b.shutdown().await;

    let ops = &b.services.ops;
    assert!(ops.user_show(&local, "dave").await.is_err());
    let carol = ops.user_show(&local, "carol").await.unwrap();
    assert_eq!(carol.groups, ["oncall"]);
    assert_eq!(
        carol.user.expires_at.map(|t| t.to_string()),
        Some("2030-01-01T00:00:00Z".into())
    );
    assert_eq!(carol.keys.len(), 1);
    let nodes: Vec<String> = ops
        .node_list(&local)
        .await
        .unwrap()
        .into_iter()
        .map(|n| n.path)
        .collect();
    assert!(
        nodes.contains(&"/DEFAULT/live/web".to_string()),
        "{nodes:?}"
    );
    assert!(!nodes.contains(&"/DEFAULT/prod".to_string()), "{nodes:?}");
    let filter = ops.filter_show(&local, "no-reboot").await.unwrap();
    assert_eq!(filter.pattern, "^(reboot)");
    assert_eq!(filter.users, ["carol"]);
    let acls = ops.acl_list(&local).await.unwrap();
    assert_eq!(acls.len(), 1);
    assert_eq!(acls[0].sources, ["10.0.0.0/8"]);
    let perm = ops.perm_show(&local, "carol-demo").await.unwrap();
    assert_eq!(perm.actions.to_string(), "connect,upload");
    let log = operations(&b).await;
    for verb in [
        "user.edit",
        "user.key-add",
        "node.move",
        "filter.add",
        "acl.add",
        "perm.edit",
        "user.remove",
    ] {
        assert!(
            log.iter()
                .any(|(a, via, v)| a == "admin" && via == "console" && v == verb),
            "{verb}: {log:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn force_logout_ends_every_session_of_that_user_and_no_other() {
    let mut b = TestBastion::start().await;
    let password = "correct horse battery staple";
    user(&b, "carol", Role::User, password).await;
    b.services
        .ops
        .perm_add(&Caller::local(), demo_perm("carol-demo", "carol"))
        .await
        .unwrap();
    b.reload().await;
    let carol = Client::password(b.addr, "carol", password).await.unwrap();
    let mut first = carol.shell(80, 24, Some("demo")).await;
    let carol2 = Client::password(b.addr, "carol", password).await.unwrap();
    let mut second = carol2.shell(80, 24, Some("demo")).await;
    // Carol's menu, open beside her sessions, ends with them.
    let carol3 = Client::password(b.addr, "carol", password).await.unwrap();
    let mut menu = carol3.shell(80, 24, None).await;
    assert!(
        menu.wait_for(T, |s| s.contains("demo")).await,
        "{}",
        menu.text()
    );
    let other = Client::admin(b.addr).await;
    let mut bystander = other.shell(80, 24, Some("demo")).await;
    for term in [&mut first, &mut second, &mut bystander] {
        assert!(
            term.wait_for(T, |s| s.contains("demo@demo:~$")).await,
            "{}",
            term.text()
        );
    }

    let staff = Client::admin(b.addr).await;
    let mut desk = staff.shell(100, 30, None).await;
    assert!(desk.wait_for(T, |s| s.contains("F4 Audit")).await);
    desk.audit_tab(b"2", T, |s| s.contains("Live (3)")).await;
    desk.send(b"/carol\r").await;
    assert!(desk.wait_for(T, |s| s.contains("Live (2 of 3)")).await);
    desk.send(b"L").await;
    assert!(
        desk.wait_for(T, |s| s.contains("End every session of carol"))
            .await,
        "{}",
        desk.text()
    );
    desk.send(b"account review\r").await;
    assert!(
        desk.wait_for(T, |s| s.contains("ended 2 session(s) of carol"))
            .await,
        "{}",
        desk.text()
    );
    for term in [&mut first, &mut second] {
        assert!(
            term.wait_for(T, |s| s.contains("account review")).await,
            "{}",
            term.text()
        );
        assert!(term.wait_close(T).await);
    }
    assert!(
        menu.wait_for(T, |s| s.contains("logged out by admin: account review"))
            .await,
        "{}",
        menu.text()
    );
    assert!(menu.wait_close(T).await);
    // The bystander's session goes on.
    bystander.send(b"echo still-here").await;
    assert!(
        bystander
            .wait_for(T, |s| s.contains("echo still-here"))
            .await
    );
    bystander.send(b"\r").await;
    assert!(
        bystander
            .wait_for(T, |s| s.matches("still-here").count() >= 2)
            .await
    );
    assert_eq!(b.shared.live.list().len(), 1);
    desk.send(b"q").await;
    assert!(desk.wait_close(T).await);
    b.shutdown().await;
    let log = operations(&b).await;
    assert!(
        log.iter()
            .any(|(a, via, v)| a == "admin" && via == "console" && v == "user.logout"),
        "{log:?}"
    );
    let sessions = b
        .services
        .ops
        .session_list(&Caller::local(), &Query::default(), false)
        .await
        .unwrap();
    let carols: Vec<_> = sessions.iter().filter(|s| s.user == "carol").collect();
    assert_eq!(carols.len(), 2);
    assert!(
        carols
            .iter()
            .all(|s| s.ended_at.is_some() && s.recording.is_some()),
        "{carols:?}"
    );
}

/// A second admin, who may answer what `admin` asks for.
const ADA_PASSWORD: &str = "ada's own long password";

async fn second_admin(b: &TestBastion) -> Client {
    user(b, "ada", Role::Admin, ADA_PASSWORD).await;
    Client::password(b.addr, "ada", ADA_PASSWORD).await.unwrap()
}

/// Issue 13 item 10: a line typed with echo off (a password at a prompt)
/// that a review rule matches is held like any other, but what was typed
/// reaches no approver, no command row, no recording and no operation row.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_line_typed_without_echo_under_review_is_never_shown_or_stored() {
    const SECRET: &str = "hunter2-top-secret";
    let mut b = TestBastion::start().await;
    b.services
        .ops
        .filter_add(
            &Caller::local(),
            rampart::ops::FilterSpec {
                name: "hunter-review".into(),
                pattern: "^hunter".into(),
                action: rampart::model::FilterAction::Review,
                on: Default::default(),
                priority: 10,
                users: vec![],
                groups: vec![],
                assets: vec!["demo".into()],
                nodes: vec![],
                accounts: rampart::model::AccountSpec::all(),
            },
        )
        .await
        .unwrap();
    b.reload().await;
    let staff = second_admin(&b).await;
    let mut desk = staff.shell(100, 30, None).await;
    assert!(desk.wait_for(T, |s| s.contains("F4 Audit")).await);

    let person = Client::admin(b.addr).await;
    let mut work = person.shell(80, 24, Some("demo")).await;
    assert!(work.wait_for(T, |s| s.contains("demo@demo:~$")).await);
    work.send(b"read-secret\r").await;
    assert!(work.wait_for(T, |s| s.contains("Secret: ")).await);
    work.send(format!("{SECRET}\r").as_bytes()).await;
    assert!(
        work.wait_for(T, |s| s.contains("needs an administrator's approval"))
            .await,
        "{}",
        work.text()
    );
    assert!(
        desk.wait_for(T, |s| s.contains("Waiting for your approval")
            && s.contains("hunter-review"))
            .await,
        "{}",
        desk.text()
    );
    let waiting = b.shared.live.approvals();
    assert_eq!(waiting.len(), 1);
    assert_eq!(waiting[0].command, "[a line typed without echo]");
    assert!(!desk.text().contains("hunter2"), "{}", desk.text());
    assert!(desk.text().contains("[a line typed without echo]"));
    desk.send(b"a").await;
    // Approved, it reaches the prompt that asked for it.
    assert!(
        work.wait_for(T, |s| s.contains("approved by ada")
            && s.contains(&format!(
                "secret of {} characters accepted",
                SECRET.len()
            )))
        .await,
        "{}",
        work.text()
    );
    assert!(!work.text().contains("hunter2"), "{}", work.text());
    work.send(b"exit\r").await;
    assert!(work.wait_close(T).await);
    desk.send(b"q").await;
    assert!(desk.wait_close(T).await);
    person.close().await;
    staff.close().await;
    b.shutdown().await;

    let rows = commands(&b).await;
    assert!(
        rows.contains(&("[a line typed without echo]".into(), "review".into())),
        "{rows:?}"
    );
    let ops = b
        .services
        .ops
        .audit_operations(&Caller::local(), &Query::default())
        .await
        .unwrap();
    let approval = ops
        .iter()
        .find(|o| o.verb == "command.approve")
        .expect("the approval row");
    assert_eq!(approval.actor, "ada");
    assert!(!format!("{ops:?}").contains("hunter2"), "{ops:?}");
    assert!(!format!("{rows:?}").contains("hunter2"), "{rows:?}");
    // Nothing on disk: the database (with its WAL), the recording and its
    // command marker.
    for (path, bytes) in support::all_bytes(b.dir.path()) {
        assert!(
            !support::contains(&bytes, SECRET),
            "{} holds the secret",
            path.display()
        );
    }
}

/// Runs the local ops CLI, a separate process, against the bastion's data
/// dir (it reaches the running server through its control socket).
async fn local_cli(b: &TestBastion, args: &[&str]) -> std::process::Output {
    let config = b.dir.path().join("cli.toml");
    std::fs::write(
        &config,
        format!(
            "data_dir = \"{}\"\n[database]\nurl = \"{}\"\n",
            b.dir.path().join("data").display(),
            b.services.config.database.url
        ),
    )
    .unwrap();
    tokio::process::Command::new(env!("CARGO_BIN_EXE_rampart"))
        .arg("--config")
        .arg(&config)
        .args(args)
        .env_remove("RAMPART_CONFIG")
        .env_remove("RAMPART_MASTER_KEY")
        .env("USER", "operator")
        .output()
        .await
        .unwrap()
}

/// The id of the one request `session approvals --json` lists for `what`.
fn request_id(json_lines: &[u8], what: &str) -> u64 {
    let text = String::from_utf8_lossy(json_lines);
    let found: Vec<u64> = text
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|v| v["command"] == what)
        .map(|v| v["id"].as_u64().unwrap())
        .collect();
    assert_eq!(found.len(), 1, "{text}");
    found[0]
}

/// Issue 13 item 11: `rampart session approvals|approve|deny`, over SSH and
/// locally, under the rule that the one who asked never answers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_answers_waiting_requests_but_never_the_requesters_own() {
    let mut b = TestBastion::start().await;
    review_filter(&b).await;
    let ada = second_admin(&b).await;
    let person = Client::admin(b.addr).await;
    let mut work = person.shell(80, 24, Some("demo")).await;
    assert!(work.wait_for(T, |s| s.contains("demo@demo:~$")).await);
    work.send(b"echo release-ssh\r").await;
    assert!(
        work.wait_for(T, |s| s.contains("needs an administrator's approval"))
            .await,
        "{}",
        work.text()
    );

    // Over SSH: the table shows the waiting request and its id.
    let (out, err, status) = ada.exec("rampart session approvals").await;
    assert_eq!(status, Some(0), "{err}");
    let table = String::from_utf8(out).unwrap();
    assert!(
        table.lines().next().unwrap().starts_with("ID")
            && table.contains("echo release-ssh")
            && table.contains("release-review"),
        "{table}"
    );
    let (out, _, _) = ada.exec("rampart session approvals --json").await;
    let id = request_id(&out, "echo release-ssh");

    // The requester, an admin, is refused over SSH, for approve and deny.
    let requester = Client::admin(b.addr).await;
    for verb in ["approve", "deny"] {
        let (out, err, status) = requester
            .exec(&format!("rampart session {verb} {id}"))
            .await;
        assert_eq!(status, Some(1), "{verb}: {}", String::from_utf8_lossy(&out));
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(
            err.contains(&format!(
                "permission denied: request {id} is your own: another administrator must answer it"
            )),
            "{err}"
        );
    }
    assert_eq!(b.shared.live.approvals().len(), 1, "still waiting");
    assert_eq!(work.text().matches("release-ssh").count(), 1);

    // Another admin approves over SSH: the held command runs.
    let (out, err, status) = ada.exec(&format!("rampart session approve {id}")).await;
    assert_eq!(status, Some(0), "{err}");
    assert_eq!(
        String::from_utf8(out).unwrap(),
        format!("request {id} approved: admin on demo as demo: echo release-ssh\n")
    );
    assert!(
        work.wait_for(T, |s| s.contains("approved by ada")
            && s.matches("release-ssh").count() >= 2)
            .await,
        "{}",
        work.text()
    );
    // Answered once only.
    let (_, err, status) = ada.exec(&format!("rampart session approve {id}")).await;
    assert_eq!(status, Some(1));
    assert!(err.contains("no longer waiting"), "{err}");

    // The local CLI denies the next one: the person is told why.
    work.send(b"echo release-local\r").await;
    assert!(
        work.wait_for(T, |s| s
            .matches("needs an administrator's approval")
            .count()
            >= 2)
            .await,
        "{}",
        work.text()
    );
    let listed = local_cli(&b, &["session", "approvals", "--json"]).await;
    assert!(
        listed.status.success(),
        "{}",
        String::from_utf8_lossy(&listed.stderr)
    );
    let id = request_id(&listed.stdout, "echo release-local");
    let denied = local_cli(
        &b,
        &[
            "session",
            "deny",
            &id.to_string(),
            "--reason",
            "not during the freeze",
        ],
    )
    .await;
    assert!(
        denied.status.success(),
        "{}",
        String::from_utf8_lossy(&denied.stderr)
    );
    assert!(
        work.wait_for(T, |s| s.contains(
            "denied by local:operator: not during the freeze; it was not run"
        ))
        .await,
        "{}",
        work.text()
    );
    assert_eq!(work.text().matches("release-local").count(), 1);

    work.send(b"exit\r").await;
    assert!(work.wait_close(T).await);
    person.close().await;
    requester.close().await;
    ada.close().await;
    b.shutdown().await;
    let rows = commands(&b).await;
    assert!(
        rows.contains(&("echo release-ssh".into(), "review".into())),
        "{rows:?}"
    );
    assert!(
        rows.contains(&("echo release-local".into(), "deny".into())),
        "{rows:?}"
    );
    let ops = b
        .services
        .ops
        .audit_operations(&Caller::local(), &Query::default())
        .await
        .unwrap();
    let approve: Vec<_> = ops.iter().filter(|o| o.verb == "command.approve").collect();
    assert_eq!(approve.len(), 1, "{ops:?}");
    assert_eq!(
        (approve[0].actor.as_str(), approve[0].via.as_str()),
        ("ada", "ssh")
    );
    let deny: Vec<_> = ops.iter().filter(|o| o.verb == "command.deny").collect();
    assert_eq!(deny.len(), 1, "{ops:?}");
    assert_eq!(
        (deny[0].actor.as_str(), deny[0].via.as_str()),
        ("local:operator", "cli")
    );
    assert_eq!(
        deny[0].after.as_ref().unwrap()["reason"],
        "not during the freeze"
    );
}

/// Issue 13 item 11, at connect: an admin whose access to an asset needs
/// approval cannot approve it themselves.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_cannot_approve_their_own_connection() {
    let mut b = TestBastion::start().await;
    let ada = second_admin(&b).await;
    b.services
        .ops
        .perm_add(
            &Caller::local(),
            rampart::ops::PermSpec {
                actions: rampart::model::Actions::all_but_tunnel(),
                require_approval: true,
                ..demo_perm("ada-demo-approved", "ada")
            },
        )
        .await
        .unwrap();
    b.reload().await;
    let mut work = ada.shell(80, 24, Some("demo")).await;
    assert!(
        work.wait_for(T, |s| s.contains("needs an administrator's approval"))
            .await,
        "{}",
        work.text()
    );
    let own = Client::password(b.addr, "ada", ADA_PASSWORD).await.unwrap();
    let (out, _, _) = own.exec("rampart session approvals --json").await;
    let id = request_id(&out, "connect (interactive)");
    let (_, err, status) = own.exec(&format!("rampart session approve {id}")).await;
    assert_eq!(status, Some(1), "{err}");
    assert!(err.contains("is your own"), "{err}");
    assert!(!work.text().contains("demo@demo:~$"));
    let admin = Client::admin(b.addr).await;
    let (_, err, status) = admin.exec(&format!("rampart session approve {id}")).await;
    assert_eq!(status, Some(0), "{err}");
    assert!(
        work.wait_for(T, |s| s.contains("approved by admin")
            && s.contains("demo@demo:~$"))
            .await,
        "{}",
        work.text()
    );
    work.send(b"exit\r").await;
    assert!(work.wait_close(T).await);
    ada.close().await;
    own.close().await;
    admin.close().await;
    b.shutdown().await;
    let ops = operations(&b).await;
    assert!(
        ops.contains(&("admin".into(), "ssh".into(), "connect.approve".into())),
        "{ops:?}"
    );
    assert!(
        !ops.iter()
            .any(|(a, _, v)| a == "ada" && v == "connect.approve")
    );
}
