//! Times decoding a desktop recording back (bench/rdp.sh):
//! `cargo run --release --example desktop_replay -- CAST [COLS ROWS]`.
//!
//! Prints, on one line each:
//! - the half-block replay of `rampart replay` without its pauses: the
//!   pictures drawn and how many per second;
//! - the audit view's player: playing the whole recording through, then
//!   seeking back to several moments (from its checkpoints) and, with
//!   fresh players, straight to the end and to other moments (no
//!   checkpoints yet: from the last stored keyframe before, or from the
//!   start in a recording without keyframes).

use std::time::Instant;

use rampart::record::{Budget, Player, PlayerOptions, Timeline};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let Some(cast) = args.get(1) else {
        eprintln!("usage: desktop_replay CAST [COLS ROWS]");
        std::process::exit(2);
    };
    let cols = args.get(2).and_then(|a| a.parse().ok()).unwrap_or(80);
    let rows = args.get(3).and_then(|a| a.parse().ok()).unwrap_or(24);
    let started = Instant::now();
    let drawn = rampart::record::desktop::replay_with(
        cast,
        &mut std::io::sink(),
        (cols, rows),
        16.0,
        Some(0.0),
        |_| {},
    )
    .unwrap_or_else(|e| fail(e));
    let seconds = started.elapsed().as_secs_f64();
    println!(
        "replay: {drawn} pictures in {seconds:.2}s = {:.0}/s",
        drawn as f64 / seconds.max(1e-9)
    );

    let options = PlayerOptions {
        timeline: Timeline::Recorded,
        ..PlayerOptions::default()
    };
    // Played through as a person would: the target moving on a second at
    // a time (no keyframe jumps), leaving checkpoints behind.
    let mut player = Player::open(cast, options).unwrap_or_else(|e| fail(e));
    let started = Instant::now();
    let mut at = 0.0;
    loop {
        arrive(&mut player, |p| p.seek(at));
        if player.at_end() {
            break;
        }
        at += 1.0;
    }
    let through = started.elapsed().as_secs_f64();
    let length = player.duration().unwrap_or(0.0);
    let stats = player.checkpoint_stats();
    println!(
        "player: {length:.1}s of recording played through in {through:.2}s; {} checkpoints, {:.1} MiB",
        stats.count,
        stats.bytes as f64 / (1 << 20) as f64
    );
    let mut worst = 0.0f64;
    for fraction in [0.5, 0.1, 0.9, 0.3, 0.7] {
        let started = Instant::now();
        arrive(&mut player, |p| p.seek(length * fraction));
        worst = worst.max(started.elapsed().as_secs_f64());
    }
    println!("player: seek back, worst of 5: {:.0} ms", worst * 1000.0);
    let mut fresh = Player::open(cast, options).unwrap_or_else(|e| fail(e));
    let started = Instant::now();
    arrive(&mut fresh, |p| p.seek(length));
    println!(
        "player: a fresh seek to the end: {:.2}s (decoded {:.1} MB)",
        started.elapsed().as_secs_f64(),
        fresh.desktop_decoded() as f64 / 1e6
    );
    // Fresh players, each seeking once to a moment: the worst of them.
    let mut cold = 0.0f64;
    for fraction in [0.95, 0.5, 0.75, 0.25] {
        let mut fresh = Player::open(cast, options).unwrap_or_else(|e| fail(e));
        let started = Instant::now();
        arrive(&mut fresh, |p| p.seek(length * fraction));
        cold = cold.max(started.elapsed().as_secs_f64());
        if let Some(e) = fresh.error() {
            fail(e);
        }
    }
    println!("player: a fresh seek, worst of 4 moments: {cold:.2}s");
    if let Some(e) = player.error().or(fresh.error()) {
        fail(e);
    }
}

/// Sets a target and steps until the playhead is there.
fn arrive(player: &mut Player, target: impl FnOnce(&mut Player)) {
    target(player);
    while !player.caught_up() {
        player.step(Budget::UNLIMITED);
    }
}

fn fail(e: impl std::fmt::Display) -> ! {
    eprintln!("desktop_replay: {e}");
    std::process::exit(1);
}
