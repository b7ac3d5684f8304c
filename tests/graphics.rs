//! Desktop pictures as terminal graphics (issue 17), through real OpenSSH
//! `ssh -tt` in a real pty: the test plays the person's terminal, answering
//! (or not) the graphics queries the bastion sends when a desktop replay
//! opens in the audit view, and reads the picture back out of the bytes
//! the terminal received: a sixel image run through a sixel interpreter, a
//! kitty image through base64 and PNG, half blocks through vt100. The
//! desktop recording is a real one: xfreerdp through the bastion to
//! freerdp-shadow-cli serving a desktop of a known colour (the RDP peers
//! of tests/rdp.rs; a skip without them).

mod support;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use base64::Engine as _;
use support::desktop::field;
use support::pty::PtyChild;
use support::rdp::{ShadowTarget, TARGET_RGB};
use support::ssh::{Client, TestBastion, run_ok};

const T: Duration = Duration::from_secs(20);
/// A bastion with asset win1 on a shadow target, and one recorded, ended
/// desktop session on it; the admin over SSH, and with OpenSSH with a key
/// made in `keys`. While the session runs, a kitty terminal monitors it.
async fn recorded_desktop(
    target: &ShadowTarget,
    ssh: &Path,
    keys: &Path,
) -> (TestBastion, Client, std::path::PathBuf) {
    let (b, admin, front) = support::desktop::bastion(target).await;
    let (key, public) = support::peers::keypair(keys, "admin");
    run_ok(&admin, &format!("rampart me keys add --key '{public}'")).await;
    b.reload().await;
    let ticket = run_ok(&admin, "rampart rdp ticket win1").await;
    let (user, password) = (field(&ticket, "user "), field(&ticket, "password "));
    let client = support::desktop::desktop(&front, &user, &password).await;
    let live = run_ok(&admin, "rampart session list --live --json").await;
    let row: serde_json::Value =
        serde_json::from_str(live.lines().next().expect("a live session")).unwrap();
    let id = row["id"].as_str().expect("an id").to_string();
    monitor_in_kitty(&b, ssh, &key).await;
    run_ok(&admin, &format!("rampart session kill {id} --reason done")).await;
    let waited = {
        let client = client.clone();
        tokio::task::spawn_blocking(move || client.wait_exit(T))
            .await
            .unwrap()
    };
    assert!(waited.is_some(), "xfreerdp outlived the kill");
    for _ in 0..100 {
        let rows = run_ok(&admin, "rampart session list --json").await;
        if rows.contains("\"recording_sha256\":\"") {
            return (b, admin, key);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the desktop session did not end");
}

/// OpenSSH in a 100x30 pty at the admin's desk.
async fn desk(b: &TestBastion, ssh: &Path, key: &Path) -> PtyChild {
    let mut cmd = Command::new(ssh);
    cmd.args(support::peers::client_options(key))
        .args(["-p", &b.addr.port().to_string(), "-tt", "admin@127.0.0.1"])
        .env("TERM", "xterm-256color")
        .env_remove("NO_COLOR");
    let term = PtyChild::spawn(cmd, 100, 30);
    term.expect(T, |s| s.contains("F4 Audit")).await;
    term
}

/// Waits until the terminal was sent `what`.
async fn sent(term: &PtyChild, what: &str) {
    let seen = async {
        while !term.raw().contains(what) {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    };
    tokio::time::timeout(T, seen)
        .await
        .unwrap_or_else(|_| panic!("{what:?} never sent:\n{}", term.text()));
}

/// The live desktop monitored from a kitty terminal: its picture as a
/// kitty image, deleted when the monitor is left.
async fn monitor_in_kitty(b: &TestBastion, ssh: &Path, key: &Path) {
    let mut term = desk(b, ssh, key).await;
    term.send(support::ssh::F4);
    term.send(b"2");
    term.expect(T, |s| s.contains("Live (1)")).await;
    term.send(b"\r");
    sent(&term, "\x1b[c").await;
    term.send(b"\x1b_Gi=31;OK\x1b\\\x1b[?62;22c");
    term.expect(T, |s| {
        s.contains("desktop 800×600") && s.contains("monitoring")
    })
    .await;
    let mut share = 0.0;
    for _ in 0..50 {
        let raw = term.raw();
        if let Some(at) = raw.rfind("\x1b_Ga=T,")
            && raw[at..].contains("m=0;")
        {
            let (_, _, pixels, _) = last_kitty(&raw);
            share = share_of_target(pixels.chunks(3).map(|p| [p[0], p[1], p[2]]));
            if share > 0.5 {
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        share > 0.5,
        "{share} of the monitor's kitty picture in the target's colour"
    );
    assert_eq!(half_blocks_of_target(&term.raw()), 0);
    term.send(b"\x1b");
    term.expect(T, |s| s.contains("Live (1)")).await;
    sent(&term, "\x1b_Ga=d,d=I,").await;
}

/// How the test's terminal answers the graphics queries.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Terminal {
    Sixel,
    Kitty,
    Silent,
}

/// OpenSSH in a 100x30 pty, the admin's desk, the desktop session's
/// replay played to its end; the terminal answers as `terminal` does.
async fn replay_in(b: &TestBastion, ssh: &Path, key: &Path, terminal: Terminal) -> PtyChild {
    let mut term = desk(b, ssh, key).await;
    term.send(support::ssh::F4);
    term.send(b"3");
    term.expect(T, |s| s.contains("Sessions (1)") && s.contains("win1"))
        .await;
    term.send(b"\r");
    // The queries go out when the replay opens; a terminal answers each
    // it knows, DA1 last.
    sent(&term, "\x1b[c").await;
    assert!(
        term.raw()
            .contains("\x1b_Gi=31,s=1,v=1,a=q,t=d,f=24;AAAA\x1b\\")
    );
    assert!(term.raw().contains("\x1b[16t"));
    match terminal {
        Terminal::Sixel => term.send(b"\x1b[6;20;10t\x1b[?63;1;2;4;6;9;15;22c"),
        Terminal::Kitty => term.send(b"\x1b_Gi=31;OK\x1b\\\x1b[6;20;10t\x1b[?62;22c"),
        Terminal::Silent => {}
    }
    term.expect(T, |s| s.contains("desktop 800×600")).await;
    term.send(b"\x1b[F"); // End
    term.expect(T, |s| s.contains("ended")).await;
    // The last picture goes out within the pace (a quarter second).
    tokio::time::sleep(Duration::from_millis(600)).await;
    term
}

/// The share of `pixels` within 8 of the target's colour.
fn share_of_target(pixels: impl Iterator<Item = [u8; 3]>) -> f64 {
    let (mut hit, mut all) = (0usize, 0usize);
    for p in pixels {
        all += 1;
        if p.iter().zip(TARGET_RGB).all(|(a, b)| a.abs_diff(b) <= 8) {
            hit += 1;
        }
    }
    hit as f64 / all.max(1) as f64
}

/// The last sixel image in `raw`, interpreted: (width, height, pixels).
fn last_sixel(raw: &str) -> (usize, usize, Vec<[u8; 3]>) {
    let start = raw.rfind("\x1bP0;1;0q").expect("a sixel image");
    let body = &raw[start + "\x1bP0;1;0q".len()..];
    let body = &body[..body.find("\x1b\\").expect("the sixel's end")];
    let mut chars = body.chars().peekable();
    let take = |chars: &mut std::iter::Peekable<std::str::Chars>| {
        let mut out = vec![0usize];
        while let Some(c) = chars.next_if(|c| c.is_ascii_digit() || *c == ';') {
            if c == ';' {
                out.push(0);
            } else {
                let last = out.last_mut().unwrap();
                *last = *last * 10 + (c as usize - '0' as usize);
            }
        }
        out
    };
    assert_eq!(chars.next(), Some('"'));
    let raster = take(&mut chars);
    let (w, h) = (raster[2], raster[3]);
    let mut pixels = vec![[0u8; 3]; w * h];
    let mut palette = std::collections::HashMap::new();
    let (mut colour, mut x, mut band) = ([0u8; 3], 0, 0);
    while let Some(c) = chars.next() {
        match c {
            '#' => {
                let p = take(&mut chars);
                if p.len() == 5 {
                    let v = |pct: usize| (pct * 255).div_ceil(100) as u8;
                    palette.insert(p[0], [v(p[2]), v(p[3]), v(p[4])]);
                }
                colour = palette[&p[0]];
            }
            '$' => x = 0,
            '-' => (x, band) = (0, band + 1),
            _ => {
                let (n, c) = if c == '!' {
                    (take(&mut chars)[0], chars.next().unwrap())
                } else {
                    (1, c)
                };
                let bits = c as u8 - 0x3f;
                for _ in 0..n {
                    for dy in 0..6 {
                        let y = band * 6 + dy;
                        if bits & (1 << dy) != 0 && y < h && x < w {
                            pixels[y * w + x] = colour;
                        }
                    }
                    x += 1;
                }
            }
        }
    }
    (w, h, pixels)
}

/// The last kitty image in `raw`, decoded: (width, height, RGB pixels),
/// and its placement keys.
fn last_kitty(raw: &str) -> (u32, u32, Vec<u8>, String) {
    let start = raw.rfind("\x1b_Ga=T,").expect("a kitty image");
    let mut data = String::new();
    let mut keys = String::new();
    for apc in raw[start..].split("\x1b\\") {
        let body = apc.strip_prefix("\x1b_G").expect("one APC after another");
        let (k, payload) = body.split_once(';').unwrap();
        if keys.is_empty() {
            keys = k.to_string();
        }
        assert!(payload.len() <= 4096);
        data.push_str(payload);
        if k.split(',').any(|k| k == "m=0") {
            break;
        }
    }
    let png = base64::engine::general_purpose::STANDARD
        .decode(data)
        .expect("base64");
    let mut reader = png::Decoder::new(std::io::Cursor::new(png))
        .read_info()
        .expect("PNG");
    let mut pixels = vec![0; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut pixels).expect("a frame");
    pixels.truncate(info.buffer_size());
    (info.width, info.height, pixels, keys)
}

/// Half-block cells of the target's colour on the screen `raw` draws.
fn half_blocks_of_target(raw: &str) -> usize {
    let n = |v| std::num::NonZeroU16::new(v).unwrap();
    let mut screen = vt100::Parser::new(n(30), n(100), 0);
    screen.process(raw.as_bytes());
    let colour = vt100::Color::Rgb(TARGET_RGB[0], TARGET_RGB[1], TARGET_RGB[2]);
    (0..30)
        .flat_map(|r| (0..100).map(move |c| (r, c)))
        .filter(|&(r, c)| {
            screen.screen().cell(r, c).is_some_and(|x| {
                x.contents() == "▀" && x.fgcolor() == colour && x.bgcolor() == colour
            })
        })
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_desktop_replay_is_an_image_where_the_terminal_answers_and_half_blocks_where_not() {
    if !support::rdp::peers_present() {
        return;
    }
    let Some(ssh) = support::peers::peer("ssh") else {
        return;
    };
    let target = support::desktop::start_target().await;
    let keys = tempfile::tempdir().unwrap();
    let (mut b, admin, key) = recorded_desktop(&target, &ssh, keys.path()).await;

    // A sixel terminal: the replay's picture is a sixel image of the
    // desktop's colour, sized for 10x20-pixel cells, and no half blocks.
    let mut term = replay_in(&b, &ssh, &key, Terminal::Sixel).await;
    let raw = term.raw();
    let (w, h, pixels) = last_sixel(&raw);
    assert!(w > 400 && h > 300 && w <= 1000 && h <= 600, "{w}x{h}");
    let share = share_of_target(pixels.into_iter());
    assert!(
        share > 0.5,
        "{share} of the sixel picture in the target's colour"
    );
    assert_eq!(half_blocks_of_target(&raw), 0);
    assert!(
        !raw.contains("\x1b_Ga=T"),
        "no kitty image for a sixel terminal"
    );
    term.send(b"q");
    term.expect(T, |s| s.contains("Sessions (1)")).await;
    drop(term);

    // A kitty terminal: a kitty image (PNG) of the colour; leaving the
    // replay deletes it.
    let mut term = replay_in(&b, &ssh, &key, Terminal::Kitty).await;
    let raw = term.raw();
    let (w, h, pixels, keys) = last_kitty(&raw);
    assert!(w > 400 && h > 300 && w <= 800 && h <= 600, "{w}x{h}");
    assert!(keys.contains("c=") && keys.contains("r="), "{keys}");
    let share = share_of_target(pixels.chunks(3).map(|p| [p[0], p[1], p[2]]));
    assert!(
        share > 0.5,
        "{share} of the kitty picture in the target's colour"
    );
    assert_eq!(half_blocks_of_target(&raw), 0);
    assert!(
        !raw.contains("\x1bP0;1;0q"),
        "no sixel for a kitty terminal"
    );
    term.send(b"q");
    term.expect(T, |s| s.contains("Sessions (1)")).await;
    sent(&term, "\x1b_Ga=d,d=I,").await;
    drop(term);

    // A terminal that answers nothing: half blocks, as before.
    let term = replay_in(&b, &ssh, &key, Terminal::Silent).await;
    let raw = term.raw();
    assert!(!raw.contains("\x1b_Ga=T") && !raw.contains("\x1bP0;1;0q"));
    let cells = half_blocks_of_target(&raw);
    assert!(
        cells > 100 * 20 / 2,
        "{cells} half-block cells of the target's colour"
    );
    drop(term);

    admin.close().await;
    b.shutdown().await;
}
