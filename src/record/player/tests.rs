//! The player against a straight play: a fresh vt100 terminal fed every
//! event of the file (read with [`crate::record::read`]) up to a time is
//! what the screen must show after any sequence of seeks.

use std::fmt::Write as _;
use std::io::Write as _;
use std::num::NonZeroU16;
use std::path::Path;

use super::*;
use crate::record::reader::EventKind;

/// Deterministic pseudo-random numbers (xorshift64*).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

fn header(cols: u16, rows: u16) -> String {
    format!(
        r#"{{"version":2,"width":{cols},"height":{rows},"timestamp":1767225600,"env":{{"TERM":"xterm-256color"}},"rampart":{{"session":"0b4f6a52-3c1e-4d7a-9f00-5e2a1c0d9b11","user":"alice","asset":"web1","account":"root","protocol":"ssh","kind":"shell"}}}}"#
    )
}

fn event(t: f64, code: &str, data: &str) -> String {
    format!(
        "[{t:.6}, {}, {}]\n",
        serde_json::to_string(code).unwrap(),
        serde_json::to_string(data).unwrap()
    )
}

/// A busy session: coloured text, escape sequences split across events,
/// titles, scroll regions, the alternate screen, wide characters, resizes,
/// command markers, long pauses, keystrokes and a damaged line. Returns the
/// cast and the commands it marks.
fn session(events: usize, seed: u64) -> (String, Vec<String>) {
    let mut rng = Rng(seed);
    let mut cast = header(80, 24);
    cast.push('\n');
    let mut t = 0.0;
    let mut commands = Vec::new();
    let mut carry = String::new();
    for i in 0..events {
        t += if rng.below(40) == 0 {
            3.0 + rng.unit() * 30.0
        } else {
            rng.unit() * 0.3
        };
        match rng.below(100) {
            0..=2 => {
                let cols = 40 + rng.below(90);
                let rows = 10 + rng.below(40);
                cast.push_str(&event(t, "r", &format!("{cols}x{rows}")));
            }
            3..=6 => {
                let cmd = format!("ls -l /srv/{i}");
                cast.push_str(&event(t, "m", &format!("cmd: {cmd}")));
                commands.push(cmd);
            }
            7 => cast.push_str(&event(t, "i", "ls\r")),
            8 if i % 7 == 0 => cast.push_str("this line is not an event\n"),
            _ => {
                let mut out = std::mem::take(&mut carry);
                for _ in 0..1 + rng.below(4) {
                    match rng.below(14) {
                        0 => out.push_str("\x1b[2J\x1b[H"),
                        1 => write!(out, "\x1b[{};{}H", 1 + rng.below(30), 1 + rng.below(100))
                            .unwrap(),
                        2 => out.push_str("\x1b[?1049h"),
                        3 => out.push_str("\x1b[?1049l"),
                        4 => {
                            write!(out, "\x1b[{};{}r", 1 + rng.below(5), 6 + rng.below(20)).unwrap()
                        }
                        5 => out.push_str("\x1b]0;title here\x07"),
                        6 => out.push_str("漢字とかな wide\r\n"),
                        7 => out.push_str("\x1b7\x1b[5;5Hsaved\x1b8"),
                        8 => out.push_str("e\u{301} combining\r\n"),
                        9 => out.push_str("\x1b[K\x1b[1A\x1b[2P"),
                        _ => write!(
                            out,
                            "\x1b[{};{}mline {i} {}\x1b[0m\r\n",
                            rng.below(2),
                            31 + rng.below(7),
                            "x".repeat(rng.below(120) as usize)
                        )
                        .unwrap(),
                    }
                }
                // Cut inside an escape sequence now and then: the next
                // event carries the rest, as a write split by the PTY would.
                if rng.below(4) == 0
                    && let Some(esc) = out.rfind('\x1b')
                {
                    let cut = (esc + 1 + rng.below(3) as usize).min(out.len());
                    if out.is_char_boundary(cut) {
                        carry = out.split_off(cut);
                    }
                }
                cast.push_str(&event(t, "o", &out));
            }
        }
    }
    if !carry.is_empty() {
        cast.push_str(&event(t, "o", &carry));
    }
    (cast, commands)
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    let mut f = File::create(&path).unwrap();
    f.write_all(text.as_bytes()).unwrap();
    path
}

/// What a screen looks like, in a comparable form.
#[derive(Debug, Clone, PartialEq)]
struct Seen {
    size: (u16, u16),
    contents: String,
    formatted: Vec<u8>,
    cursor: (u16, u16),
    alternate: bool,
}

fn seen(screen: &vt100::Screen) -> Seen {
    let (rows, cols) = screen.size();
    Seen {
        size: (cols.get(), rows.get()),
        contents: screen.contents(),
        formatted: screen.contents_formatted().into_bytes(),
        cursor: screen.cursor_position(),
        alternate: screen.alternate_screen(),
    }
}

/// Straight play: the screen after every event at or before each of
/// `targets` (sorted), on `timeline` with a cap of `cap`.
fn straight(path: &Path, targets: &[f64], timeline: Timeline, cap: f64) -> Vec<Seen> {
    let mut reader = crate::record::read(path).unwrap();
    let header = reader.header().clone();
    let nz = |n: u16| NonZeroU16::new(n).unwrap();
    let mut term = vt100::Parser::new(nz(header.height), nz(header.width), 0);
    let (mut last, mut comp) = (0.0f64, 0.0f64);
    let mut out = Vec::new();
    let mut targets = targets.iter().peekable();
    for event in reader.by_ref() {
        let Ok(event) = event else { continue };
        let rec = event.time.max(last);
        comp += (rec - last).min(cap);
        last = rec;
        let at = match timeline {
            Timeline::Recorded => rec,
            Timeline::Compressed => comp,
        };
        while let Some(t) = targets.next_if(|t| at > **t) {
            let _ = t;
            out.push(seen(term.screen()));
        }
        match event.kind {
            EventKind::Output => term.process(event.data.as_bytes()),
            EventKind::Resize => {
                let (c, r) = event.size().unwrap();
                term.set_size(nz(r), nz(c));
            }
            _ => {}
        }
    }
    for _ in targets {
        out.push(seen(term.screen()));
    }
    out
}

fn play_to(player: &mut Player, at: f64, budget: Budget) {
    player.seek(at);
    let mut steps = 0;
    while !player.caught_up() {
        player.step(budget);
        steps += 1;
        assert!(steps < 1_000_000, "the playhead does not get there");
    }
}

fn small_checkpoints() -> PlayerOptions {
    PlayerOptions {
        checkpoint_spacing: 4096,
        checkpoint_budget: 2 * 1024 * 1024,
        ..PlayerOptions::default()
    }
}

#[test]
fn seeks_land_on_the_screen_of_a_straight_play() {
    let dir = tempfile::tempdir().unwrap();
    let (cast, _) = session(4000, 7);
    let path = write(dir.path(), "s.cast", &cast);
    for timeline in [Timeline::Recorded, Timeline::Compressed] {
        let mut player = Player::open(
            &path,
            PlayerOptions {
                timeline,
                ..small_checkpoints()
            },
        )
        .unwrap();
        // Let the scan finish so the duration is known.
        player.step(Budget {
            play_bytes: 0,
            ..Budget::UNLIMITED
        });
        let end = player.duration().unwrap();
        assert!(end > 100.0, "{end}");
        let mut rng = Rng(11);
        let mut targets: Vec<f64> = (0..150).map(|_| rng.unit() * end * 1.05).collect();
        targets.extend([0.0, end, end + 10.0]);
        let mut sorted = targets.clone();
        sorted.sort_by(f64::total_cmp);
        let expected = straight(&path, &sorted, timeline, 2.0);
        for (n, at) in targets.iter().enumerate() {
            // Small budgets on some seeks: the result must not depend on
            // how the work was cut into steps.
            let budget = if n % 3 == 0 {
                Budget {
                    play_bytes: 3000,
                    scan_bytes: 3000,
                    deadline: None,
                }
            } else {
                Budget::UNLIMITED
            };
            play_to(&mut player, *at, budget);
            let want = sorted.iter().position(|t| t == at).unwrap();
            assert_eq!(
                seen(player.screen()),
                expected[want],
                "{timeline:?} seek #{n} to {at}"
            );
            assert_eq!(player.position(), at.min(end));
        }
        let stats = player.checkpoint_stats();
        assert!(stats.count > 10, "{stats:?}");
        assert!(stats.bytes <= 2 * 1024 * 1024, "{stats:?}");
    }
}

#[test]
fn markers_are_collected_with_both_times() {
    let dir = tempfile::tempdir().unwrap();
    let (cast, commands) = session(1500, 3);
    let path = write(dir.path(), "m.cast", &cast);
    let mut player = Player::open(&path, PlayerOptions::default()).unwrap();
    assert!(player.markers().is_empty());
    assert!(player.index_progress().is_some_and(|p| p < 0.01));
    player.step(Budget {
        play_bytes: 0,
        scan_bytes: 20_000,
        deadline: None,
    });
    let partial = player.index_progress().unwrap();
    assert!(partial > 0.0 && partial < 1.0, "{partial}");
    player.step(Budget::UNLIMITED);
    assert_eq!(player.index_progress(), None);
    let texts: Vec<&str> = player.markers().iter().map(|m| m.text.as_str()).collect();
    assert_eq!(texts, commands);
    assert!(player.markers().iter().all(|m| m.command));
    // Times agree with a straight read of the file.
    let mut times = Vec::new();
    let mut last = 0.0f64;
    for event in crate::record::read(&path).unwrap().flatten() {
        last = event.time.max(last);
        if event.kind == EventKind::Marker {
            times.push(last);
        }
    }
    let found: Vec<f64> = player.markers().iter().map(|m| m.at.recorded).collect();
    assert_eq!(found, times);
    // Navigation by position.
    let second = player.markers()[1].at.compressed;
    assert_eq!(player.marker_after(0.0), Some(0));
    assert_eq!(player.marker_after(second), Some(2));
    assert_eq!(player.marker_before(second), Some(0));
    assert_eq!(player.marker_at(second), Some(1));
    assert_eq!(player.marker_at(second - 1e-3), Some(0));
    assert!(player.damaged_lines() > 0);
}

#[test]
fn marker_text_is_cleaned_and_writer_markers_are_left_out() {
    let dir = tempfile::tempdir().unwrap();
    let mut cast = header(80, 24) + "\n";
    cast += &event(0.5, "m", "cmd: echo \x1b[31mred");
    cast += &event(0.6, "m", "raw: 12 bytes");
    cast += &event(0.7, "m", &format!("cmd: {}", "y".repeat(300)));
    cast += &event(0.8, "m", "note: raw: x");
    cast += &event(0.9, "m", "sidecar: a.raw.gz sha256=00 bytes=1");
    let path = write(dir.path(), "c.cast", &cast);
    let mut player = Player::open(&path, PlayerOptions::default()).unwrap();
    player.step(Budget::UNLIMITED);
    let markers = player.markers();
    assert_eq!(markers.len(), 3, "{markers:?}");
    assert_eq!(markers[0].text, "echo ?[31mred");
    assert_eq!(markers[1].text.chars().count(), 201);
    assert!(markers[1].text.ends_with('…'));
    assert_eq!(
        (markers[2].text.as_str(), markers[2].command),
        ("note: raw: x", false)
    );
}

#[test]
fn a_truncated_last_line_ends_the_recording_where_the_whole_lines_end() {
    let dir = tempfile::tempdir().unwrap();
    let mut cast = header(40, 10) + "\n";
    cast += &event(0.1, "o", "first\r\n");
    cast += &event(0.2, "m", "cmd: make");
    cast += &event(1.0, "o", "second\r\n");
    cast += r#"[1.5, "o", "thi"#;
    let path = write(dir.path(), "t.cast", &cast);
    let mut player = Player::open(&path, PlayerOptions::default()).unwrap();
    player.seek_end();
    player.step(Budget::UNLIMITED);
    assert!(player.at_end());
    assert_eq!(player.duration(), Some(1.0));
    assert_eq!(player.position(), 1.0);
    let truncated = player.truncated().unwrap();
    assert_eq!(truncated.line, 5);
    assert!(player.screen().contents().starts_with("first\nsecond"));
    assert_eq!(player.markers().len(), 1);
    assert!(player.error().is_none());
    // And back again.
    play_to(&mut player, 0.5, Budget::UNLIMITED);
    assert_eq!(player.screen().contents().trim_end(), "first");
}

#[test]
fn idle_compression_shortens_long_pauses() {
    let dir = tempfile::tempdir().unwrap();
    let mut cast = header(40, 10) + "\n";
    cast += &event(0.5, "o", "a");
    cast += &event(1.0, "o", "b");
    cast += &event(11.0, "m", "cmd: sleep 10");
    cast += &event(11.0, "o", "c");
    cast += &event(12.0, "o", "d");
    cast += &event(112.0, "o", "e");
    let path = write(dir.path(), "i.cast", &cast);
    let mut player = Player::open(&path, PlayerOptions::default()).unwrap();
    player.step(Budget {
        play_bytes: 0,
        ..Budget::UNLIMITED
    });
    assert_eq!(player.timeline(), Timeline::Compressed);
    assert_eq!(player.duration(), Some(6.0));
    assert_eq!(
        player.markers()[0].at,
        Stamp {
            recorded: 11.0,
            compressed: 3.0
        }
    );
    let text = |p: &Player| p.screen().contents().trim_end().to_string();
    play_to(&mut player, 3.0, Budget::UNLIMITED);
    assert_eq!(text(&player), "abc");
    play_to(&mut player, 2.9, Budget::UNLIMITED);
    assert_eq!(text(&player), "ab");
    // In the middle of a shortened pause, switching keeps the moment: the
    // compressed gap maps onto the start of the recorded one.
    play_to(&mut player, 5.5, Budget::UNLIMITED);
    assert_eq!(text(&player), "abcd");
    player.set_timeline(Timeline::Recorded);
    assert_eq!(player.position(), 13.5);
    assert_eq!(player.duration(), Some(112.0));
    assert_eq!(text(&player), "abcd");
    play_to(&mut player, 112.0, Budget::UNLIMITED);
    assert_eq!(text(&player), "abcde");
    player.set_timeline(Timeline::Compressed);
    assert_eq!(player.position(), 6.0);
    // A command time from the audit log is in recorded seconds.
    player.seek_recorded(11.0);
    player.step(Budget::UNLIMITED);
    assert_eq!(player.position(), 3.0);
    assert_eq!(text(&player), "abc");
    // A cap of zero or less means no compression.
    let flat = Player::open(
        &path,
        PlayerOptions {
            idle_cap: 0.0,
            ..PlayerOptions::default()
        },
    );
    let mut flat = flat.unwrap();
    flat.step(Budget::UNLIMITED);
    assert_eq!(flat.duration(), Some(112.0));
}

#[test]
fn steps_are_bounded_and_report_progress() {
    let dir = tempfile::tempdir().unwrap();
    let (cast, _) = session(3000, 5);
    let path = write(dir.path(), "b.cast", &cast);
    let mut player = Player::open(&path, small_checkpoints()).unwrap();
    let budget = Budget {
        play_bytes: 10_000,
        scan_bytes: 10_000,
        deadline: None,
    };
    player.seek_end();
    let mut last = -1.0;
    let mut steps = 0;
    while let Some(p) = player.seek_progress() {
        assert!(p >= last, "progress goes forward: {p} after {last}");
        last = p;
        let before = player.head.lines.offset();
        player.step(budget);
        // At most one line past the budget.
        assert!(player.head.lines.offset() - before < 10_000 + 64 * 1024);
        steps += 1;
    }
    assert!(steps > 10, "{steps}");
    assert!(player.at_end());
    assert_eq!(
        player.duration().map(|d| player.position() == d),
        Some(true)
    );
    // A deadline in the past still makes progress of at most one event.
    player.seek(0.0);
    player.seek(1e9);
    player.step(Budget {
        deadline: Some(Instant::now()),
        ..Budget::UNLIMITED
    });
    assert!(!player.caught_up());
}

#[test]
fn checkpoint_memory_stays_within_the_budget() {
    let dir = tempfile::tempdir().unwrap();
    let (cast, _) = session(6000, 9);
    let path = write(dir.path(), "k.cast", &cast);
    let budget = 400 * 1024;
    let mut player = Player::open(
        &path,
        PlayerOptions {
            checkpoint_budget: budget,
            checkpoint_spacing: 4096,
            ..PlayerOptions::default()
        },
    )
    .unwrap();
    player.seek_end();
    player.step(Budget::UNLIMITED);
    let stats = player.checkpoint_stats();
    assert!(stats.bytes <= budget, "{stats:?}");
    assert!(stats.count >= 2, "{stats:?}");
    assert!(stats.spacing > 4096, "{stats:?}");
    // Evenly spread: no gap much wider than the spacing.
    let offsets: Vec<u64> = player.checkpoints.iter().map(|c| c.offset).collect();
    for pair in offsets.windows(2) {
        assert!(pair[1] - pair[0] < stats.spacing * 2, "{offsets:?}");
    }
}

#[test]
fn oversized_headers_and_resizes_are_clamped() {
    let dir = tempfile::tempdir().unwrap();
    let mut cast = header(65535, 65535) + "\n";
    cast += &event(0.1, "o", "hi");
    cast += &event(0.2, "r", "99999x3");
    let path = write(dir.path(), "h.cast", &cast);
    let mut player = Player::open(&path, PlayerOptions::default()).unwrap();
    assert_eq!(player.recorded_size(), (1000, 500));
    player.seek_end();
    player.step(Budget::UNLIMITED);
    assert_eq!(player.recorded_size(), (1000, 3));
}

#[test]
fn what_is_not_a_cast_is_refused_at_open() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "x.cast", "hello\n");
    assert!(matches!(
        Player::open(&path, PlayerOptions::default()),
        Err(RecordError::Format { line: 1, .. })
    ));
    let path = write(
        dir.path(),
        "v1.cast",
        "{\"version\":1,\"width\":80,\"height\":24}\n",
    );
    assert!(Player::open(&path, PlayerOptions::default()).is_err());
    assert!(matches!(
        Player::open(dir.path().join("missing.cast"), PlayerOptions::default()),
        Err(RecordError::Read { .. })
    ));
}

/// A recording whose output makes vt100 panic (`record::vt`) still plays
/// to its end: an auditor's replay goes on from a blank screen.
#[test]
fn output_that_panics_vt100_does_not_end_the_replay() {
    let dir = tempfile::tempdir().unwrap();
    let mut cast = header(2, 2) + "\n";
    cast += &event(
        0.1,
        "o",
        "\u{fe0f}#\n\u{2603}\u{fe0f}\x1b[1;80H \x1b[D\x1b[1b\x1b[M",
    );
    cast += &event(0.2, "o", "ok");
    let path = write(dir.path(), "t.cast", &cast);
    let mut player = Player::open(&path, PlayerOptions::default()).unwrap();
    play_to(&mut player, 1.0, Budget::UNLIMITED);
    assert!(player.at_end());
    assert!(player.error().is_none());
    assert!(player.screen().contents().contains("ok"));
}

/// A desktop recording written by the recorder: 320x240, then `fills`
/// 64x64 bitmaps of varied colours at varied places, one every 0.1 s.
/// Returns the cast's path.
fn desktop_recording(dir: &Path, fills: usize) -> PathBuf {
    use crate::record::desktop::synth;
    let at = |i: usize| std::time::Duration::from_millis(100 * i as u64);
    let mut chunks = vec![(at(0), synth::demand_active(320, 240))];
    let mut rng = Rng(7);
    for i in 0..fills {
        let (x, y) = (rng.below(320 - 64) as u16, rng.below(240 - 64) as u16);
        let rgb = [rng.below(256) as u8, rng.below(256) as u8, (i % 256) as u8];
        chunks.push((at(i + 1), synth::fill(x, y, 64, 64, rgb)));
    }
    synth::recording(dir, &chunks)
}

/// The picture a straight decode of every chunk up to `at` gives, as RGB.
fn desktop_straight(path: &Path, at: f64) -> Vec<u8> {
    crate::record::desktop::at(path, at, |d| rgb(d.frame().unwrap().rgba)).unwrap()
}

fn rgb(rgba: &[u8]) -> Vec<u8> {
    rgba.chunks_exact(4)
        .flat_map(|p| [p[0], p[1], p[2]])
        .collect()
}

#[test]
fn a_desktop_plays_and_seeks_back_through_its_key_points() {
    let dir = tempfile::tempdir().unwrap();
    // 16 KiB an update: 700 of them cross five 2 MiB key points.
    let path = desktop_recording(dir.path(), 700);
    let cast = std::fs::read_to_string(&path).unwrap();
    let keys = cast.matches("\"key: ").count();
    assert!(keys >= 4, "{keys} key markers");
    let options = PlayerOptions {
        timeline: Timeline::Recorded,
        ..PlayerOptions::default()
    };
    let mut player = Player::open(&path, options).unwrap();
    assert!(player.is_desktop());
    play_to(&mut player, 65.0, Budget::UNLIMITED);
    assert!(
        player.checkpoint_stats().count >= 3,
        "{:?}",
        player.checkpoint_stats()
    );
    assert!(rgb(player.picture().unwrap().rgba) == desktop_straight(&path, 65.0));
    // Back to before the last key points: a checkpoint is restored, and
    // the sidecar decoded on from its gzip member.
    for at in [50.0, 23.45, 0.35, 41.0] {
        play_to(&mut player, at, Budget::UNLIMITED);
        let shown = rgb(player.picture().unwrap().rgba);
        assert!(shown == desktop_straight(&path, at), "at {at}");
    }
    assert_eq!(player.damaged_updates(), 0);
    assert!(player.error().is_none());
    // A fresh player seeking straight to a late moment shows the same.
    let mut fresh = Player::open(&path, options).unwrap();
    play_to(&mut fresh, 69.0, Budget::UNLIMITED);
    assert!(rgb(fresh.picture().unwrap().rgba) == desktop_straight(&path, 69.0));
    assert!(
        fresh.markers().is_empty(),
        "key and raw markers are not listed"
    );
}

#[test]
fn a_desktop_without_its_sidecar_stops_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let path = desktop_recording(dir.path(), 3);
    std::fs::remove_file(crate::record::export::sidecar_path(&path)).unwrap();
    let mut player = Player::open(&path, PlayerOptions::default()).unwrap();
    player.seek_end();
    player.step(Budget::UNLIMITED);
    let error = player.error().map(|e| e.to_string()).unwrap_or_default();
    assert!(error.contains("raw.gz"), "{error}");
    assert!(player.picture().is_none());
}

/// A desktop recording painted whole at the start, then `fills` random
/// 64x64 bitmaps one every 0.1 s; at each of `keyframes` (fill indexes) a
/// stored keyframe, followed (if `repaint`) by the target's full repaint.
fn keyframed_recording(dir: &Path, fills: usize, keyframes: &[usize], repaint: bool) -> PathBuf {
    use crate::record::desktop::synth;
    let at = |i: usize| std::time::Duration::from_millis(100 * i as u64);
    let whole = |rgb: [u8; 3]| -> Vec<u8> {
        let mut tiles = Vec::new();
        for y in [0, 64, 128, 176] {
            for x in [0, 64, 128, 192, 256] {
                tiles.extend(synth::fill(x, y, 64, 64, rgb));
            }
        }
        tiles
    };
    let mut chunks = vec![
        (at(0), synth::demand_active(320, 240)),
        (at(0), whole([10, 20, 30])),
    ];
    let mut marks = Vec::new();
    let mut rng = Rng(11);
    for i in 0..fills {
        if keyframes.contains(&i) {
            marks.push(chunks.len());
            if repaint {
                chunks.push((at(i + 1), whole([i as u8, 99, 7])));
            }
        }
        let (x, y) = (rng.below(320 - 64) as u16, rng.below(240 - 64) as u16);
        let rgb = [rng.below(256) as u8, rng.below(256) as u8, (i % 256) as u8];
        chunks.push((at(i + 1), synth::fill(x, y, 64, 64, rgb)));
    }
    synth::recording_with_keyframes(dir, &chunks, &marks)
}

fn recorded() -> PlayerOptions {
    PlayerOptions {
        timeline: Timeline::Recorded,
        ..PlayerOptions::default()
    }
}

#[test]
fn a_cold_seek_starts_at_the_last_stored_keyframe() {
    let dir = tempfile::tempdir().unwrap();
    let path = keyframed_recording(dir.path(), 700, &[200, 600], true);
    let cast = std::fs::read_to_string(&path).unwrap();
    assert_eq!(cast.matches("\"redraw: ").count(), 2, "two keyframes");
    let total = std::fs::read_to_string(&path)
        .unwrap()
        .lines()
        .filter_map(|l| l.split("raw: ").nth(1))
        .filter_map(|r| r.split(' ').next()?.parse::<u64>().ok())
        .sum::<u64>();
    // To the end: only what follows the second keyframe is decoded.
    let mut fresh = Player::open(&path, recorded()).unwrap();
    fresh.seek_end();
    while !fresh.caught_up() {
        fresh.step(Budget::UNLIMITED);
    }
    assert!(rgb(fresh.picture().unwrap().rgba) == desktop_straight(&path, 1e9));
    assert!(
        fresh.desktop_decoded() < total / 5,
        "decoded {} of {total}",
        fresh.desktop_decoded()
    );
    // Between the two: from the first; then back before it: the start.
    let mut player = Player::open(&path, recorded()).unwrap();
    for (at, most) in [(45.0, total / 2), (12.3, u64::MAX), (64.0, u64::MAX)] {
        play_to(&mut player, at, Budget::UNLIMITED);
        let shown = rgb(player.picture().unwrap().rgba);
        assert!(shown == desktop_straight(&path, at), "at {at}");
        assert!(player.desktop_decoded() < most, "at {at}");
    }
    assert!(fresh.markers().is_empty(), "keyframes are not listed");
    assert_eq!(player.damaged_updates(), 0);
}

#[test]
fn a_keyframe_the_target_did_not_repaint_after_is_not_trusted() {
    let dir = tempfile::tempdir().unwrap();
    // Keyframes marked, but no repaint followed them: starting black
    // there would leave most of the picture black.
    let path = keyframed_recording(dir.path(), 500, &[100, 300], false);
    let mut fresh = Player::open(&path, recorded()).unwrap();
    play_to(&mut fresh, 45.0, Budget::UNLIMITED);
    assert!(rgb(fresh.picture().unwrap().rgba) == desktop_straight(&path, 45.0));
    // Half a second after a keyframe (before its repaint is taken to be
    // done), with a repaint: the one before is used, and shows the same.
    let path = keyframed_recording(&dir.path().join("b"), 500, &[100, 300], true);
    let mut fresh = Player::open(&path, recorded()).unwrap();
    play_to(&mut fresh, 30.55, Budget::UNLIMITED);
    assert!(rgb(fresh.picture().unwrap().rgba) == desktop_straight(&path, 30.55));
    assert!(fresh.error().is_none());
}
