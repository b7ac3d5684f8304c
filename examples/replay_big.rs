//! Replay of a very large recording: how long from opening it to the
//! first frame, how long until the index (markers, duration) is complete,
//! how long seeks to the middle and to the end take and how long one frame
//! of that work blocks the session at most, and the peak memory.
//!
//! `cargo run --release --example replay_big` generates a 1 GiB cast in a
//! temporary directory (deleted afterwards); `RAMPART_BENCH_MIB=N` changes
//! the size. It drives `tui::Replay` the way the SSH session does: a tick,
//! then a frame drawn through `tui::Screen`, in a loop.

use std::io::{BufWriter, Write};
use std::time::{Duration, Instant};

use rampart::record::PlayerOptions;
use rampart::tui::{ColorMode, Key, Replay, Screen, Theme};

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
}

/// A long shell session: `ls -l`-like coloured listings, full-screen
/// redraws (a `top`-like program), a command marker every ~100 events,
/// a resize now and then, short gaps and occasional long pauses.
fn generate(path: &std::path::Path, bytes: u64) -> std::io::Result<(u64, u64)> {
    let mut out = BufWriter::with_capacity(1 << 20, std::fs::File::create(path)?);
    let header = r#"{"version":2,"width":120,"height":40,"timestamp":1767268800,"env":{"TERM":"xterm-256color"},"rampart":{"session":"0b4f6a52-3c1e-4d7a-9f00-5e2a1c0d9b11","user":"alice","asset":"web1","account":"root","protocol":"ssh","kind":"shell"}}"#;
    writeln!(out, "{header}")?;
    let mut rng = Rng(42);
    let mut written = header.len() as u64 + 1;
    let mut t = 0.0f64;
    let mut events = 0u64;
    let mut markers = 0u64;
    let mut data = String::new();
    while written < bytes {
        events += 1;
        t += if rng.below(500) == 0 {
            5.0 + rng.below(55) as f64
        } else {
            (1 + rng.below(50)) as f64 / 1000.0
        };
        data.clear();
        let code = match rng.below(200) {
            0..=1 => {
                markers += 1;
                data.push_str(&format!("cmd: ls -l --color /srv/data/{events}"));
                "m"
            }
            2 if events.is_multiple_of(3) => {
                data.push_str(if rng.below(2) == 0 {
                    "120x40"
                } else {
                    "100x30"
                });
                "r"
            }
            3..=20 => {
                data.push_str("\x1b[H");
                for row in 0..40 {
                    data.push_str(&format!(
                        "\x1b[7m{row:>4}\x1b[0m {:>8} root      20   0 {:>7}   {:>5}  S  {:>4}.{} \x1b[1m{}\x1b[0m\x1b[K\r\n",
                        rng.below(99999),
                        rng.below(9_999_999),
                        rng.below(99999),
                        rng.below(100),
                        rng.below(10),
                        ["sshd", "postgres", "nginx", "java", "python3"][rng.below(5) as usize]
                    ));
                }
                "o"
            }
            _ => {
                for _ in 0..1 + rng.below(30) {
                    data.push_str(&format!(
                        "-rw-r--r--  1 root root {:>8} Mar  4 05:06 \x1b[01;34mfile-{}\x1b[0m.log\r\n",
                        rng.below(10_000_000),
                        rng.below(1_000_000)
                    ));
                }
                data.push_str("root@web1:/srv/data# ");
                "o"
            }
        };
        let line = format!(
            "[{t:.6}, \"{code}\", {}]\n",
            serde_json::to_string(&data).unwrap_or_default()
        );
        out.write_all(line.as_bytes())?;
        written += line.len() as u64;
    }
    out.flush()?;
    Ok((events, markers))
}

fn peak_rss() -> String {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .filter(|l| l.starts_with("VmHWM") || l.starts_with("VmRSS"))
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect::<Vec<_>>()
        .join(", ")
}

/// How long each tick (plus its draw) kept the session task busy.
#[derive(Default)]
struct Busy(Vec<Duration>);

impl std::fmt::Display for Busy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut v = self.0.clone();
        v.sort();
        let at = |q: f64| {
            v.get(((v.len() as f64 - 1.0) * q).round() as usize)
                .copied()
                .unwrap_or_default()
        };
        write!(
            f,
            "tick+draw median {:.1?}, p99 {:.1?}, max {:.1?}",
            at(0.5),
            at(0.99),
            at(1.0)
        )
    }
}

/// The session loop: wait as long as the replay asks, tick, draw when it
/// says so; until `done`. Returns the time taken, the ticks, the frames
/// drawn and how long each tick plus draw took.
fn run_until(
    replay: &mut Replay,
    screen: &mut Screen,
    theme: &Theme,
    done: impl Fn(&Replay) -> bool,
) -> (Duration, u32, u32, Busy) {
    let start = Instant::now();
    let (mut ticks, mut frames) = (0, 0);
    let mut busy = Busy::default();
    while !done(replay) {
        if let Some(wait) = replay.next_tick().filter(|d| !d.is_zero()) {
            std::thread::sleep(wait);
        }
        let t = Instant::now();
        if replay.tick(t) {
            let _bytes = screen.draw(|f| replay.render(f, theme));
            frames += 1;
        }
        busy.0.push(t.elapsed());
        ticks += 1;
    }
    (start.elapsed(), ticks, frames, busy)
}

/// Where a seek's time goes: the first `mib` MiB of events decoded from
/// JSON, then decoded and fed through a vt100 terminal.
fn breakdown(path: &std::path::Path, mib: u64) {
    let limit = mib * 1024 * 1024;
    let run = |terminal: bool| {
        let t = Instant::now();
        let Ok(reader) = rampart::record::read(path) else {
            return (0, t.elapsed());
        };
        let nz = |n| std::num::NonZeroU16::new(n).unwrap_or(std::num::NonZeroU16::MIN);
        let mut term = vt100::Parser::new(nz(40), nz(120), 0);
        let mut bytes = 0u64;
        for event in reader.flatten() {
            if event.kind == rampart::record::EventKind::Output {
                bytes += event.data.len() as u64;
                if terminal {
                    term.process(event.data.as_bytes());
                }
            }
            if bytes > limit {
                break;
            }
        }
        (bytes, t.elapsed())
    };
    let (bytes, decode) = run(false);
    let (_, both) = run(true);
    let mbs = |d: Duration| bytes as f64 / 1e6 / d.as_secs_f64();
    println!(
        "where the time goes ({:.0} MiB of output): JSON decode {decode:.2?} ({:.0} MB/s); decode + vt100 {both:.2?} ({:.0} MB/s)",
        bytes as f64 / 1048576.0,
        mbs(decode),
        mbs(both)
    );
}

fn main() -> std::io::Result<()> {
    let mib: u64 = std::env::var("RAMPART_BENCH_MIB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1024);
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("big.cast");
    let t = Instant::now();
    let (events, markers) = generate(&path, mib * 1024 * 1024)?;
    let size = std::fs::metadata(&path)?.len();
    println!(
        "generated {:.1} MiB, {events} events, {markers} markers in {:.1?}",
        size as f64 / 1048576.0,
        t.elapsed()
    );
    println!("memory after generating: {}", peak_rss());

    let theme = Theme::default();
    let mut screen = Screen::new(120, 40, ColorMode::Full);
    let _ = screen.enter();

    // Open → first frame.
    let t = Instant::now();
    let mut replay = Replay::open(&path, PlayerOptions::default())
        .map_err(|e| std::io::Error::other(e.to_string()))?;
    replay.tick(Instant::now());
    let first = screen.draw(|f| replay.render(f, &theme));
    println!(
        "open → first frame: {:.1?} ({} bytes)",
        t.elapsed(),
        first.len()
    );
    // Playing: until the recorded terminal shows output.
    let (took, _, frames, _) = run_until(&mut replay, &mut screen, &theme, |r| {
        !r.player().screen().contents().trim().is_empty()
    });
    println!("open → first output on screen while playing: {took:.1?} more, {frames} frames");
    replay.handle(Key::Char(' '));

    // The index: markers and duration complete, while paused.
    let (took, _, frames, longest) = run_until(&mut replay, &mut screen, &theme, |r| {
        r.player().index_progress().is_none()
    });
    let player = replay.player();
    let duration = player.duration().unwrap_or_default();
    println!(
        "index complete (paused, paced as the session would): {took:.2?}, {frames} frames, {longest}; duration {:.0} s compressed, {} markers",
        duration,
        player.markers().len()
    );

    let seek = |replay: &mut Replay, screen: &mut Screen, label: &str, go: &dyn Fn(&mut Replay)| {
        let t = Instant::now();
        go(replay);
        let first = t.elapsed();
        let (took, ticks, frames, longest) =
            run_until(replay, screen, &theme, |r| r.player().caught_up());
        let stats = replay.player().checkpoint_stats();
        println!(
            "{label}: {:.2?} (the call {first:.1?}, then {ticks} ticks, {frames} frames drawn, {longest}); at {:.0} s; checkpoints {} ({:.1} MiB, one every {:.1} MiB)",
            first + took,
            replay.player().position(),
            stats.count,
            stats.bytes as f64 / 1048576.0,
            stats.spacing as f64 / 1048576.0,
        );
    };
    let middle = duration / 2.0;
    seek(
        &mut replay,
        &mut screen,
        "seek to the middle (first time)",
        &|r| r.seek(middle),
    );
    seek(&mut replay, &mut screen, "seek to the end (End)", &|r| {
        r.handle(Key::End);
    });
    seek(&mut replay, &mut screen, "back to the middle", &|r| {
        r.seek(middle)
    });
    seek(&mut replay, &mut screen, "back to a quarter", &|r| {
        r.seek(duration / 4.0)
    });
    seek(&mut replay, &mut screen, "previous command (p)", &|r| {
        r.handle(Key::Char('p'));
    });
    seek(&mut replay, &mut screen, "back 30 s (Up)", &|r| {
        r.handle(Key::Up);
    });
    seek(&mut replay, &mut screen, "to the start (Home)", &|r| {
        r.handle(Key::Home);
    });
    // Playing at 16× for a second of wall time.
    for _ in 0..4 {
        replay.handle(Key::Char('+'));
    }
    replay.handle(Key::Char(' '));
    let from = replay.player().position();
    let start = Instant::now();
    let (mut frames, mut longest) = (0, Duration::ZERO);
    while start.elapsed() < Duration::from_secs(1) {
        // Paced as the session would: the next tick when the replay asks.
        std::thread::sleep(replay.next_tick().unwrap_or(Duration::from_millis(40)));
        let t = Instant::now();
        replay.tick(t);
        let _bytes = screen.draw(|f| replay.render(f, &theme));
        longest = longest.max(t.elapsed());
        frames += 1;
    }
    println!(
        "playing at 16× for 1 s: {:.1} s of recording, {frames} frames, longest tick+draw {longest:.1?}",
        replay.player().position() - from
    );
    println!("memory at the end: {}", peak_rss());
    breakdown(&path, 64);
    Ok(())
}
