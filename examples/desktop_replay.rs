//! Times the half-block replay of a desktop recording without its pauses:
//! `cargo run --release --example desktop_replay -- CAST [COLS ROWS]`.
//! Prints the pictures drawn and how many per second (bench/rdp.sh).

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let Some(cast) = args.get(1) else {
        eprintln!("usage: desktop_replay CAST [COLS ROWS]");
        std::process::exit(2);
    };
    let cols = args.get(2).and_then(|a| a.parse().ok()).unwrap_or(80);
    let rows = args.get(3).and_then(|a| a.parse().ok()).unwrap_or(24);
    let started = std::time::Instant::now();
    let drawn = rampart::record::desktop::replay_with(
        cast,
        &mut std::io::sink(),
        (cols, rows),
        16.0,
        Some(0.0),
        |_| {},
    )
    .unwrap_or_else(|e| {
        eprintln!("desktop_replay: {e}");
        std::process::exit(1);
    });
    let seconds = started.elapsed().as_secs_f64();
    println!(
        "{drawn} in {seconds:.2}s = {:.0}/s",
        drawn as f64 / seconds.max(1e-9)
    );
}
