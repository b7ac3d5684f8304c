//! RDP through the bastion (issue 17), with real peers: xfreerdp on its
//! own Xvfb display connects to rampart's RDP front with a one-time ticket
//! issued over SSH, and rampart connects to freerdp-shadow-cli (NLA only)
//! serving an Xvfb desktop of a known colour, with the vaulted password.

mod support;

use std::sync::Arc;
use std::time::Duration;

use support::desktop::{bastion as setup, desktop, field, start_target};
use support::rdp::{Client as Rdp, ShadowTarget, TARGET_RGB};
use support::ssh::{Client, TestBastion, run_ok};

const T: Duration = Duration::from_secs(20);
/// A shadow target and a bastion set up for it, or `None` (a skip, the
/// reason printed) without the RDP peers.
async fn prepared() -> Option<(ShadowTarget, TestBastion, Client, String)> {
    if !support::rdp::peers_present() {
        return None;
    }
    let target = start_target().await;
    let (b, admin, front) = setup(&target).await;
    Some((target, b, admin, front))
}

/// A ticket for win1 over SSH: the RDP user name and password it prints.
async fn ticket(admin: &Client, front: &str) -> (String, String) {
    let out = run_ok(admin, "rampart rdp ticket win1").await;
    assert!(out.contains(front), "the ticket names the front: {out}");
    (field(&out, "user "), field(&out, "password "))
}

/// Runs xfreerdp until it exits: its exit code and what it printed.
async fn attempt(
    front: &str,
    user: &str,
    password: &str,
    extra: &'static [&'static str],
) -> (Option<i32>, String) {
    let (front, user, password) = (front.to_string(), user.to_string(), password.to_string());
    tokio::task::spawn_blocking(move || {
        let c = Rdp::connect(&front, &user, &password, extra);
        let code = c.wait_exit(T);
        (code, c.output())
    })
    .await
    .unwrap()
}

async fn exits(client: &Arc<Rdp>, within: Duration) -> Option<i32> {
    let client = client.clone();
    tokio::task::spawn_blocking(move || client.wait_exit(within))
        .await
        .unwrap()
}

/// A PNG file's size and RGB pixels.
fn decode_png(bytes: &[u8]) -> ((u32, u32), Vec<u8>) {
    let decoder = png::Decoder::new(std::io::Cursor::new(bytes));
    let mut reader = decoder.read_info().expect("a PNG file");
    let mut pixels = vec![0; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut pixels).expect("a frame");
    assert_eq!(info.color_type, png::ColorType::Rgb);
    pixels.truncate(info.buffer_size());
    ((info.width, info.height), pixels)
}

/// The session rows, as `session list --json` gives them.
/// Half-block cells of `colour` (below and above) on a client's screen.
fn cells_in(term: &vt100::Parser, colour: vt100::Color) -> usize {
    let (rows, cols) = term.screen().size();
    (0..rows.get())
        .flat_map(|r| (0..cols.get()).map(move |c| (r, c)))
        .filter(|&(r, c)| {
            term.screen().cell(r, c).is_some_and(|x| {
                x.contents() == "▀" && x.fgcolor() == colour && x.bgcolor() == colour
            })
        })
        .count()
}

async fn sessions(admin: &Client) -> Vec<serde_json::Value> {
    run_ok(admin, "rampart session list --json")
        .await
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

/// The session's row once it has ended.
async fn ended(admin: &Client, id: &str) -> serde_json::Value {
    for _ in 0..100 {
        if let Some(row) = sessions(admin).await.into_iter().find(|r| r["id"] == id)
            && row["status"] != "live"
        {
            return row;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("session {id} did not end");
}

/// The one live RDP session's id.
async fn live_rdp(admin: &Client) -> String {
    let rows: Vec<serde_json::Value> = sessions(admin)
        .await
        .into_iter()
        .filter(|s| s["protocol"] == "rdp" && s["status"] == "live")
        .collect();
    assert_eq!(rows.len(), 1, "{rows:?}");
    rows[0]["id"].as_str().unwrap().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ticket_opens_a_recorded_desktop_once_and_a_kill_ends_it() {
    let Some((_target, mut b, admin, front)) = prepared().await else {
        return;
    };
    let (user, password) = ticket(&admin, &front).await;
    assert_eq!(user, "admin#win1");

    // A wrong password is refused before any target is dialled.
    let wrong = attempt(&front, &user, "not-the-ticket", &[]).await;
    assert!(
        matches!(wrong.0, Some(c) if c != 0),
        "wrong ticket: {wrong:?}"
    );

    // The ticket connects, and the person sees the target's desktop.
    let client = desktop(&front, &user, &password).await;
    // The person clicks and types in it (real X input to xfreerdp).
    let typed = std::process::Command::new(support::peers::peer("xdotool").expect("xdotool"))
        .args(["mousemove", "200", "150", "click", "1", "type", "abc"])
        .env("DISPLAY", client.display().name())
        .status()
        .unwrap();
    assert!(typed.success());

    // It is a live session with a row, and the ticket is spent.
    let id = live_rdp(&admin).await;
    let again = attempt(&front, &user, &password, &[]).await;
    assert!(
        matches!(again.0, Some(c) if c != 0),
        "a reused ticket: {again:?}"
    );

    // Staff watch it live from the desk: the relay asks the target for a
    // full redraw, and the monitor decodes it into the desktop's picture.
    let colour = vt100::Color::Rgb(TARGET_RGB[0], TARGET_RGB[1], TARGET_RGB[2]);
    let mut watch = admin.shell(100, 30, None).await;
    assert!(watch.wait_for(T, |s| s.contains("F4 Audit")).await);
    watch.audit_tab(b"2", T, |s| s.contains("Live (1)")).await;
    watch.send(b"\r").await;
    watch
        .expect(T, |s| {
            s.contains("desktop 800×600") && s.contains("monitoring, read-only")
        })
        .await;
    let mut shown = 0;
    for _ in 0..50 {
        shown = cells_in(&watch.parser, colour);
        if shown > 100 * 20 / 2 {
            break;
        }
        watch.wait_for(Duration::from_millis(100), |_| false).await;
    }
    assert!(
        shown > 100 * 20 / 2,
        "{shown} cells of the target's colour in the live monitor:\n{}",
        watch.text()
    );
    watch.send(b"\x1b").await;
    watch.expect(T, |s| s.contains("Live (1)")).await;
    // A desktop has no keyboard to share from a terminal.
    let joined = b
        .services
        .ops
        .live_join(&rampart::ops::Caller::local(), &b.shared.live, &id)
        .await;
    let refusal = joined.err().map(|e| e.to_string()).unwrap_or_default();
    assert!(refusal.contains("cannot be joined"), "{refusal}");

    // The ticket's issue is in the operations log, without the password.
    let operations = run_ok(&admin, "rampart audit operations --json").await;
    assert!(operations.contains("rdp.ticket"), "{operations}");
    assert!(
        !operations.contains(&password),
        "the ticket's password was logged"
    );

    // A kill ends the person's connection; the row says why.
    run_ok(
        &admin,
        &format!("rampart session kill {id} --reason 'end of test'"),
    )
    .await;
    assert!(
        exits(&client, T).await.is_some(),
        "the client still runs after the kill"
    );
    let row = ended(&admin, &id).await;
    assert!(
        row["reason"].as_str().unwrap_or("").contains("end of test"),
        "{row}"
    );
    assert!(
        row["recording_sha256"]
            .as_str()
            .is_some_and(|d| d.len() == 64),
        "{row}"
    );

    // The recording holds every byte the person's client was sent.
    let sent = row["bytes_out"].as_i64().unwrap_or(0);
    assert!(sent > 10_000, "{row}");
    let (raw, err, status) = admin.exec(&format!("rampart export {id} --raw")).await;
    assert_eq!(status, Some(0), "{err}");
    assert_eq!(
        raw.len() as i64,
        sent,
        "the recording's bytes against the row's"
    );
    assert_eq!(
        raw.first(),
        Some(&0x03),
        "it starts with the target's MCS response (TPKT)"
    );

    // A picture exported from the recording shows the target's desktop.
    let (png, err, status) = admin
        .exec(&format!("rampart export {id} --format png"))
        .await;
    assert_eq!(status, Some(0), "{err}");
    let (size, rgb) = decode_png(&png);
    assert_eq!(size, support::rdp::TARGET_SIZE);
    let blue = support::rdp::count_in(&rgb, TARGET_RGB, 0);
    assert!(
        blue > 100_000,
        "{blue} pixels of the target's colour in the exported frame"
    );
    let (_, err, status) = admin
        .exec(&format!("rampart export {id} --format png --at 0"))
        .await;
    assert_ne!(status, Some(0), "no picture before the desktop was shown");
    assert!(err.contains("no picture yet"), "{err}");

    // An animation of it, as a GIF a browser or image viewer plays.
    let (gif, err, status) = admin
        .exec(&format!("rampart export {id} --format gif"))
        .await;
    assert_eq!(status, Some(0), "{err}");
    assert!(gif.starts_with(b"GIF89a"), "{:?}", &gif[..gif.len().min(8)]);
    let width = u16::from_le_bytes([gif[6], gif[7]]);
    assert_eq!(width, 800, "the desktop's width (under the 960 cap)");
    if let Ok(identify) = std::process::Command::new("identify")
        .arg("-")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
    {
        use std::io::Write as _;
        let mut identify = identify;
        identify
            .stdin
            .take()
            .expect("stdin")
            .write_all(&gif)
            .expect("write");
        let out = identify.wait_with_output().expect("identify");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success() && text.contains("GIF 800x600"),
            "{text}"
        );
    }
    // A video, where ffmpeg is installed; ffprobe reads it back.
    if let Some(ffprobe) = support::peers::peer("ffprobe") {
        let (mp4, err, status) = admin
            .exec(&format!("rampart export {id} --format mp4"))
            .await;
        assert_eq!(status, Some(0), "{err}");
        assert_eq!(mp4.get(4..8), Some(&b"ftyp"[..]), "an MP4 file");
        let file = tempfile::NamedTempFile::new().expect("temp");
        std::fs::write(file.path(), &mp4).expect("write");
        let probe = std::process::Command::new(ffprobe)
            .args(["-v", "error", "-select_streams", "v:0"])
            .args([
                "-show_entries",
                "stream=codec_name,width,height",
                "-of",
                "csv=p=0",
            ])
            .arg(file.path())
            .output()
            .expect("ffprobe");
        let said = String::from_utf8_lossy(&probe.stdout);
        assert_eq!(
            said.trim(),
            "h264,800,600",
            "{}",
            String::from_utf8_lossy(&probe.stderr)
        );
    }
    let (_, err, status) = admin
        .exec(&format!("rampart export {id} --format gif --at 3"))
        .await;
    assert_ne!(status, Some(0));
    assert!(err.contains("--at picks one picture"), "{err}");

    // The replay draws it in the terminal: half blocks in its colour.
    let cast = b
        .services
        .config
        .recording_dir()
        .join(row["recording"].as_str().expect("a recording"));
    // The clicks and keys are marked in the recording, not which keys.
    let text = String::from_utf8_lossy(&std::fs::read(&cast).unwrap()).into_owned();
    let marks: Vec<&str> = text.lines().filter(|l| l.contains("\"input: ")).collect();
    assert!(
        marks.iter().any(|l| l.contains("click at 200,150")),
        "{marks:?}"
    );
    assert!(marks.iter().any(|l| l.contains(" keys")), "{marks:?}");
    let mut screen = Vec::new();
    let drawn = rampart::record::desktop::replay_with(
        &cast,
        &mut screen,
        (80, 24),
        16.0,
        Some(0.1),
        |_| {},
    )
    .expect("the replay");
    assert!(drawn >= 1, "no picture drawn");
    let size = |n| std::num::NonZeroU16::new(n).unwrap();
    let mut term = vt100::Parser::new(size(24), size(80), 0);
    term.process(&screen);
    let cells = (0..24)
        .flat_map(|r| (0..80).map(move |c| (r, c)))
        .filter(|&(r, c)| {
            term.screen()
                .cell(r, c)
                .is_some_and(|x| x.bgcolor() == colour)
        })
        .count();
    assert!(
        cells > 80 * 24 / 4,
        "{cells} cells of the target's colour in the replay"
    );

    // So does the audit view's replay, over SSH: the session from the
    // list, played to its end, in the desktop's colour.
    let mut desk = admin.shell(100, 30, None).await;
    assert!(desk.wait_for(T, |s| s.contains("F4 Audit")).await);
    desk.audit_tab(b"3", T, |s| {
        s.contains("Sessions (1)") && s.contains("win1")
    })
    .await;
    desk.send(b"\r").await;
    desk.expect(T, |s| s.contains("desktop 800×600")).await;
    desk.send(b"\x1b[F").await; // End
    desk.expect(T, |s| s.contains("ended")).await;
    let shown = cells_in(&desk.parser, colour);
    assert!(
        shown > 100 * 20 / 2,
        "{shown} cells of the target's colour in the audit replay:\n{}",
        desk.text()
    );
    desk.send(b"q").await;
    desk.expect(T, |s| s.contains("Sessions (1)")).await;

    // The login log has the failure and the success, by method.
    let logins = run_ok(&admin, "rampart audit logins --json").await;
    let rdp: Vec<&str> = logins
        .lines()
        .filter(|l| l.contains("rdp-ticket"))
        .collect();
    assert!(rdp.len() >= 3, "two failures and a success: {logins}");
    admin.close().await;
    b.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nla_is_required_a_revocation_cuts_the_desktop_and_a_new_certificate_waits_for_trust() {
    let Some((_target, mut b, admin, front)) = prepared().await else {
        return;
    };

    // A client that will not do NLA is refused at negotiation.
    let (user, password) = ticket(&admin, &front).await;
    let tls_only = attempt(&front, &user, &password, &["/sec:tls"]).await;
    assert!(
        matches!(tls_only.0, Some(c) if c != 0),
        "TLS only: {tls_only:?}"
    );

    // A user name that is no PERSON#ASSET is refused, as a failed login.
    let logged = |text: String| text.lines().filter(|l| l.contains("rdp-ticket")).count();
    let before = logged(run_ok(&admin, "rampart audit logins --json").await);
    let odd = attempt(&front, "admin", &password, &[]).await;
    assert!(
        matches!(odd.0, Some(c) if c != 0),
        "no asset in the name: {odd:?}"
    );
    let after = logged(run_ok(&admin, "rampart audit logins --json").await);
    assert_eq!(after, before + 1, "the refusal is in the login log");

    // Revoking the permission cuts a running desktop off within seconds.
    let client = desktop(&front, &user, &password).await;
    let id = live_rdp(&admin).await;
    run_ok(&admin, "rampart perm remove desk").await;
    assert!(
        exits(&client, Duration::from_secs(5)).await.is_some(),
        "the desktop outlived its permission"
    );
    let row = ended(&admin, &id).await;
    assert_eq!(row["reason"], "permission ended", "{row}");
    // Without the permission there is no ticket to be had.
    let (_, err, status) = admin.exec("rampart rdp ticket win1").await;
    assert_ne!(status, Some(0), "a ticket without a permission");
    assert!(err.contains("reachable over RDP"), "{err}");

    // The asset now answers with another certificate (another server):
    // refused until an admin trusts it again.
    let other = start_target().await;
    run_ok(
        &admin,
        &format!("rampart asset edit win1 --protocol rdp/{}", other.port),
    )
    .await;
    run_ok(
        &admin,
        "rampart perm add desk --user admin --asset win1 --actions connect",
    )
    .await;
    b.reload().await;
    let (user, password) = ticket(&admin, &front).await;
    let changed = attempt(&front, &user, &password, &[]).await;
    assert!(
        matches!(changed.0, Some(c) if c != 0),
        "a changed certificate: {changed:?}"
    );
    let refusals = run_ok(&admin, "rampart audit refusals --json").await;
    assert!(refusals.contains("not the pinned"), "{refusals}");
    run_ok(&admin, "rampart asset trust win1").await;
    let (user, password) = ticket(&admin, &front).await;
    let client = desktop(&front, &user, &password).await;
    drop(client);
    admin.close().await;
    b.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ssh_to_a_desktop_with_openssh_prints_a_ticket_that_connects() {
    let Some(ssh) = support::peers::peer("ssh") else {
        return;
    };
    let Some((_target, mut b, admin, front)) = prepared().await else {
        return;
    };
    let keys = tempfile::tempdir().unwrap();
    let (key, public) = support::peers::keypair(keys.path(), "admin");
    run_ok(&admin, &format!("rampart me keys add --key '{public}'")).await;

    // `ssh -t bastion win1` for a desktop: the ticket instead of a shell.
    let port = b.addr.port().to_string();
    let openssh = |extra: &[&str]| {
        let mut command = std::process::Command::new(&ssh);
        command
            .args(support::peers::client_options(&key))
            .args(["-p", &port, "-tt", "admin@127.0.0.1"])
            .args(extra);
        command
    };
    let command = openssh(&["win1"]);
    let term = support::pty::PtyChild::spawn(command, 120, 24);
    term.expect(T, |s| s.contains("xfreerdp /v:")).await;
    let screen = term.text();
    let (user, password) = (field(&screen, "user "), field(&screen, "password "));
    assert_eq!(user, "admin#win1", "{screen}");
    assert!(screen.contains(&front), "{screen}");
    let client = desktop(&front, &user, &password).await;
    drop(client);
    drop(term);

    // From the menu: picking the desktop shows the ticket until a key,
    // and the menu comes back.
    let mut menu = support::pty::PtyChild::spawn(openssh(&[]), 120, 30);
    menu.expect(T, |s| s.contains("win1")).await;
    menu.send(b"win1");
    menu.expect(T, |s| s.contains("Assets (1 of")).await;
    menu.send(b"\r");
    menu.expect(T, |s| s.contains("Any key: back to the menu"))
        .await;
    let screen = menu.text();
    let (user, password) = (field(&screen, "user "), field(&screen, "password "));
    assert_eq!(user, "admin#win1", "{screen}");
    let client = desktop(&front, &user, &password).await;
    drop(client);
    menu.send(b" ");
    menu.expect(T, |s| s.contains("RDP to win1: the ticket was shown"))
        .await;
    drop(menu);
    admin.close().await;
    b.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_rdp_password_opens_desktops_until_it_is_turned_off() {
    let Some((_target, mut b, admin, front)) = prepared().await else {
        return;
    };

    // Asked for over SSH, shown once, with how to use it.
    let out = run_ok(&admin, "rampart me rdp-password").await;
    let password = field(&out, "password ");
    assert!(out.contains("admin#ASSET"), "{out}");
    assert!(out.contains(&front), "{out}");

    // It opens the desktop, more than once, with or without the account.
    for user in ["admin#win1", "admin#Administrator#win1"] {
        let client = desktop(&front, user, &password).await;
        drop(client);
    }
    let id = {
        let rows = sessions(&admin).await;
        assert!(rows.len() >= 2, "{rows:?}");
        rows[0]["id"].as_str().unwrap_or_default().to_string()
    };
    assert!(!id.is_empty());
    // A wrong account name is no way around the grant.
    let (code, _) = attempt(&front, "admin#root#win1", &password, &[]).await;
    assert!(matches!(code, Some(c) if c != 0), "an account not granted");

    // The login log names the method; the operations log has the issue,
    // never the password.
    let logins = run_ok(&admin, "rampart audit logins --json").await;
    assert!(
        logins
            .lines()
            .filter(|l| l.contains("rdp-password"))
            .count()
            >= 2,
        "{logins}"
    );
    let operations = run_ok(&admin, "rampart audit operations --json").await;
    assert!(operations.contains("rdp.password"), "{operations}");
    assert!(!operations.contains(&password), "the password was logged");

    // A new one replaces it; --off ends it.
    let again = run_ok(&admin, "rampart me rdp-password").await;
    assert!(!again.contains(&password), "a fresh password each time");
    let (code, _) = attempt(&front, "admin#win1", &password, &[]).await;
    assert!(matches!(code, Some(c) if c != 0), "the replaced password");
    assert!(
        run_ok(&admin, "rampart me rdp-password --off")
            .await
            .contains("is off")
    );
    let newer = field(&again, "password ");
    let (code, _) = attempt(&front, "admin#win1", &newer, &[]).await;
    assert!(matches!(code, Some(c) if c != 0), "a password turned off");
    admin.close().await;
    b.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_desktop_behind_an_approval_needs_one_for_each_ticket() {
    let Some((_target, mut b, admin, front)) = prepared().await else {
        return;
    };
    // Alice may use win1 only with an administrator's yes each time.
    let (_, err, status) = admin
        .exec_stdin(
            "rampart user add alice --role user --password-stdin",
            b"Alice-Password-1\n",
        )
        .await;
    assert_eq!(status, Some(0), "{err}");
    run_ok(
        &admin,
        "rampart perm add gated --user alice --asset win1 --actions connect --require-approval",
    )
    .await;
    b.reload().await;
    let alice = Client::password(b.addr, "alice", "Alice-Password-1")
        .await
        .expect("alice logs in");

    // No ticket without it, and the refusal says how to ask.
    let (_, err, status) = alice.exec("rampart rdp ticket win1").await;
    assert_ne!(status, Some(0));
    assert!(err.contains("needs an administrator's approval"), "{err}");
    assert!(err.contains("ssh -t"), "{err}");

    // `ssh -t bastion win1` waits for it; the admin approves; the ticket
    // it then shows opens the desktop.
    let mut waiting = alice.shell(100, 30, Some("win1")).await;
    waiting
        .expect(T, |s| s.contains("needs an administrator's approval"))
        .await;
    let mut id = String::new();
    for _ in 0..50 {
        let list = run_ok(&admin, "rampart session approvals --json").await;
        if let Some(line) = list.lines().find(|l| l.contains("alice")) {
            let row: serde_json::Value = serde_json::from_str(line).expect("json");
            id = row["id"].to_string();
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(!id.is_empty(), "alice's request is listed");
    run_ok(&admin, &format!("rampart session approve {id}")).await;
    waiting
        .expect(T, |s| {
            s.contains("approved by admin") && s.contains("xfreerdp /v:")
        })
        .await;
    let screen = waiting.text();
    let password = field(&screen, "password ");
    let client = desktop(&front, "alice#win1", &password).await;
    drop(client);
    let operations = run_ok(&admin, "rampart audit operations --json").await;
    assert!(
        operations
            .lines()
            .any(|l| l.contains("rdp.ticket") && l.contains("\"approved_by\":\"admin\"")),
        "{operations}"
    );

    // An RDP password is no way around it: the front refuses it there.
    let out = run_ok(&alice, "rampart me rdp-password").await;
    let password = field(&out, "password ");
    let (code, _) = attempt(&front, "alice#win1", &password, &[]).await;
    assert!(
        matches!(code, Some(c) if c != 0),
        "a password through a gated permission"
    );
    alice.close().await;
    admin.close().await;
    b.shutdown().await;
}
