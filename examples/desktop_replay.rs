//! Times decoding a desktop recording back (bench/rdp.sh):
//! `cargo run --release --example desktop_replay -- CAST [COLS ROWS]`.
//!
//! Prints, on one line each:
//! - the half-block replay of `rampart replay` without its pauses: the
//!   pictures drawn and how many per second;
//! - the audit view's player: playing the whole recording through, then
//!   seeking back to several moments (from its checkpoints) and, with a
//!   fresh player, straight to the end (no checkpoints yet: everything
//!   before is decoded).

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
    let mut player = Player::open(cast, options).unwrap_or_else(|e| fail(e));
    let started = Instant::now();
    player.seek_end();
    player.step(Budget::UNLIMITED);
    let through = started.elapsed().as_secs_f64();
    let length = player.duration().unwrap_or(0.0);
    let stats = player.checkpoint_stats();
    println!(
        "player: {length:.1}s of recording decoded in {through:.2}s; {} checkpoints, {:.1} MiB",
        stats.count,
        stats.bytes as f64 / (1 << 20) as f64
    );
    let mut worst = 0.0f64;
    for fraction in [0.5, 0.1, 0.9, 0.3, 0.7] {
        let started = Instant::now();
        player.seek(length * fraction);
        player.step(Budget::UNLIMITED);
        worst = worst.max(started.elapsed().as_secs_f64());
    }
    println!("player: seek back, worst of 5: {:.0} ms", worst * 1000.0);
    let mut fresh = Player::open(cast, options).unwrap_or_else(|e| fail(e));
    let started = Instant::now();
    fresh.seek(length);
    fresh.step(Budget::UNLIMITED);
    println!(
        "player: a fresh seek to the end: {:.2}s",
        started.elapsed().as_secs_f64()
    );
    if let Some(e) = player.error().or(fresh.error()) {
        fail(e);
    }
}

fn fail(e: impl std::fmt::Display) -> ! {
    eprintln!("desktop_replay: {e}");
    std::process::exit(1);
}
