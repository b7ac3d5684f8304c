//! Recording cost: MB/s through a `RecorderHandle` and bytes on disk per
//! byte recorded, for text, incompressible and all-zero output; and the
//! pty path's command tracker: MB/s through `CommandTracker::output` for
//! `seq` text, syslog-like lines with colours, a full-screen redraw, zeros
//! and random bytes, in the chunk sizes russh delivers (up to 32 KiB),
//! with a command running (its output captured), as a `cat` at a prompt.
//! `cargo bench --bench record` (release); 256 MiB of each recording stream
//! and 64 MiB of each tracker stream by default, `RAMPART_BENCH_MIB=N` to
//! change both. `cargo bench --bench record -- tracker` (or `recorder`,
//! `indexer`) runs one part. The indexer's part times the screen-text
//! indexer over the recording of a pty session streaming `seq` and
//! syslog-like text (64 MiB each by default).

use std::time::{Duration, Instant};

use bytes::Bytes;
use rampart::record::{
    CommandTracker, Input, RecordOptions, RecorderHandle, RecordingMeta, SessionKind,
};

fn meta() -> RecordingMeta {
    RecordingMeta {
        session: "0b4f6a52-3c1e-4d7a-9f00-5e2a1c0d9b11".into(),
        started_at: jiff::Timestamp::now(),
        user: "alice".into(),
        asset: "web1".into(),
        account: "root".into(),
        protocol: "ssh".into(),
        kind: SessionKind::Shell,
        cols: 80,
        rows: 24,
        term: Some("xterm-256color".into()),
        shell: None,
        title: None,
        command: None,
    }
}

/// Deterministic incompressible bytes (xorshift64*).
fn random_bytes(len: usize, mut seed: u64) -> Vec<u8> {
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        seed ^= seed >> 12;
        seed ^= seed << 25;
        seed ^= seed >> 27;
        out.extend_from_slice(&seed.wrapping_mul(0x2545_F491_4F6C_DD1D).to_le_bytes());
    }
    out.truncate(len);
    out
}

/// Deterministic pseudo-random numbers for the generated text.
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

/// `seq 1 N` as a pty with onlcr sends it, at least `len` bytes.
fn seq_text(len: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(len + 16);
    let mut n = 1u64;
    while out.len() < len {
        out.extend_from_slice(n.to_string().as_bytes());
        out.extend_from_slice(b"\r\n");
        n += 1;
    }
    out
}

/// Syslog-like lines with ANSI colours (as `journalctl` or `ccze` show
/// them), some longer than the screen is wide, at least `len` bytes.
fn syslog_text(len: usize) -> Vec<u8> {
    const HOSTS: [&str; 4] = ["web1", "db-primary", "cache03", "gw"];
    const UNITS: [&str; 5] = ["sshd", "systemd", "kernel", "nginx", "postgres"];
    const WORDS: [&str; 12] = [
        "connection",
        "from",
        "accepted",
        "closed",
        "session",
        "user",
        "error",
        "timeout",
        "GET",
        "/api/v1/items",
        "200",
        "übermäßig",
    ];
    let mut rng = Rng(7);
    let mut out = Vec::with_capacity(len + 512);
    while out.len() < len {
        let (h, m, s) = (rng.below(24), rng.below(60), rng.below(60));
        out.extend_from_slice(
            format!(
                "\x1b[2mDec  5 {h:02}:{m:02}:{s:02}\x1b[0m \x1b[1;34m{}\x1b[0m \x1b[33m{}[{}]\x1b[0m: ",
                HOSTS[rng.below(4) as usize],
                UNITS[rng.below(5) as usize],
                rng.below(60000)
            )
            .as_bytes(),
        );
        let level = rng.below(10);
        if level == 0 {
            out.extend_from_slice(b"\x1b[1;31m");
        }
        for _ in 0..3 + rng.below(if level == 1 { 40 } else { 12 }) {
            out.extend_from_slice(WORDS[rng.below(12) as usize].as_bytes());
            out.push(b' ');
        }
        if level == 0 {
            out.extend_from_slice(b"\x1b[0m");
        }
        out.extend_from_slice(b"\x1b[K\r\n");
    }
    out
}

/// A full-screen app (top, htop) on the alternate screen, redrawing every
/// row with cursor addressing, at least `len` bytes.
fn redraw_text(len: usize) -> Vec<u8> {
    let mut rng = Rng(11);
    let mut out = b"\x1b[?1049h\x1b[H\x1b[2J".to_vec();
    while out.len() < len {
        out.extend_from_slice(
            b"\x1b[H\x1b[7m  PID USER      PR  NI    VIRT    RES  %CPU COMMAND\x1b[K\x1b[0m",
        );
        for row in 2..=24 {
            out.extend_from_slice(
                format!(
                    "\x1b[{row};1H{:5} root      20   0 {:7} {:6} \x1b[1m{:5.1}\x1b[0m worker-{}\x1b[K",
                    rng.below(40000),
                    rng.below(9_999_999),
                    rng.below(999_999),
                    rng.below(1000) as f64 / 10.0,
                    rng.below(100)
                )
                .as_bytes(),
            );
        }
    }
    out.extend_from_slice(b"\x1b[?1049l");
    out
}

/// Chunks of the sizes russh hands the relay: mostly full 32 KiB packets,
/// some smaller (the end of a write, a slow producer).
fn chunks(data: &[u8]) -> Vec<&[u8]> {
    let mut rng = Rng(3);
    let mut out = Vec::new();
    let mut rest = data;
    while !rest.is_empty() {
        let size = match rng.below(4) {
            0 => 1 + rng.below(4096) as usize,
            1 => 1 + rng.below(32 * 1024) as usize,
            _ => 32 * 1024,
        };
        let (now, next) = rest.split_at(size.min(rest.len()));
        out.push(now);
        rest = next;
    }
    out
}

/// A tracker at a shell prompt where `cat big.log` was just typed and let
/// run: its output is being captured.
fn running_tracker() -> CommandTracker {
    let mut t = CommandTracker::new(80, 24);
    t.output(b"user@web1:~$ ");
    for key in b"cat big.log" {
        t.input(std::slice::from_ref(key));
        t.output(std::slice::from_ref(key));
    }
    let Some(Input::Enter {
        command: Some(command),
        ..
    }) = t.input(b"\r").pop()
    else {
        panic!("the bench's command was not read");
    };
    t.started(command, Duration::ZERO);
    t
}

fn bench_tracker(size: usize) {
    let streams = [
        ("seq", seq_text(size)),
        ("syslog", syslog_text(size)),
        ("redraw", redraw_text(size)),
        ("zeros", vec![0u8; size]),
        ("random", random_bytes(size, 5)),
    ];
    // `RAMPART_BENCH_STREAMS=seq,syslog` runs some (for a profile of one).
    let only = std::env::var("RAMPART_BENCH_STREAMS").unwrap_or_default();
    println!("{:<8} {:>10}", "tracker", "MB/s");
    for (name, data) in &streams {
        if !only.is_empty() && !only.split(',').any(|o| o == *name) {
            continue;
        }
        let pieces = chunks(data);
        // The best of three: the machine is shared.
        let mut best = f64::MAX;
        for _ in 0..3 {
            let mut tracker = running_tracker();
            let t = Instant::now();
            for piece in &pieces {
                tracker.output(piece);
            }
            best = best.min(t.elapsed().as_secs_f64());
            std::hint::black_box(tracker.finish());
        }
        println!("{name:<8} {:>10.1}", data.len() as f64 / best / 1e6);
    }
}

fn main() {
    let mib: Option<usize> = std::env::var("RAMPART_BENCH_MIB")
        .ok()
        .and_then(|v| v.parse().ok());
    // `cargo bench` passes `--bench`; other arguments pick a part.
    let only: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let run = |part: &str| only.is_empty() || only.iter().any(|o| part.contains(o.as_str()));
    if run("tracker") {
        bench_tracker(mib.unwrap_or(64) * 1024 * 1024);
    }
    if run("recorder") {
        bench_recorder(mib.unwrap_or(256) * 1024 * 1024);
    }
    if run("indexer") {
        bench_indexer(mib.unwrap_or(64) * 1024 * 1024);
    }
}

/// A runtime like the server's on this bench machine: two workers.
fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

/// The screen-text indexer over the recording of a pty session that
/// streamed each text (it indexes every line of such a session), in the
/// chunk sizes a pty hands sshd: MB/s of output relayed, and its CPU per
/// GB (one thread, so seconds of CPU are seconds of wall time).
fn bench_indexer(size: usize) {
    let runtime = runtime();
    println!(
        "{:<8} {:>10} {:>8} {:>8} {:>8}",
        "indexer", "MB/s", "s/GB", "blocks", "terms"
    );
    let only = std::env::var("RAMPART_BENCH_STREAMS").unwrap_or_default();
    for (name, data) in [("seq", seq_text(size)), ("syslog", syslog_text(size))] {
        if !only.is_empty() && !only.split(',').any(|o| o == name) {
            continue;
        }
        let dir = tempfile::tempdir().expect("tempdir");
        let path = runtime.block_on(async {
            let rec = RecorderHandle::start(dir.path(), meta(), RecordOptions::default())
                .await
                .expect("start");
            // Pieces of 2.5 KiB, what sshd sent per packet from a pty in
            // `bench/ssh.sh`'s runs. The relay joins pieces that queued up,
            // so real recordings hold fewer, larger events (4.2 KiB on
            // average for `seq` in a pty).
            for chunk in data.chunks(2560) {
                rec.output(Bytes::copy_from_slice(chunk))
                    .await
                    .expect("output");
            }
            dir.path().join(rec.finish().await.expect("finish").path)
        });
        let mut best = f64::MAX;
        let mut indexed = None;
        for _ in 0..3 {
            let t = Instant::now();
            indexed = Some(rampart::search::indexer::index_recording(&path).expect("index"));
            best = best.min(t.elapsed().as_secs_f64());
        }
        let indexed = indexed.expect("indexed three times");
        println!(
            "{name:<8} {:>10.1} {:>8.2} {:>8} {:>8}",
            data.len() as f64 / best / 1e6,
            best / data.len() as f64 * 1e9,
            indexed.blocks,
            indexed.terms
        );
    }
}

fn bench_recorder(size: usize) {
    let runtime = runtime();
    let random = random_bytes(size, 5);
    let line = b"drwxr-xr-x  2 root root 4096 Mar  4 05:06 \x1b[01;34msome-directory\x1b[0m\r\n";
    let text: Vec<u8> = line.iter().copied().cycle().take(size).collect();
    let zeros = vec![0u8; size];
    println!("{:<8} {:>10} {:>12}", "output", "MB/s", "on disk");
    for (name, data) in [("text", &text), ("random", &random), ("zeros", &zeros)] {
        let dir = tempfile::tempdir().expect("tempdir");
        let chunks: Vec<Bytes> = data.chunks(32 * 1024).map(Bytes::copy_from_slice).collect();
        let (secs, on_disk) = runtime.block_on(async {
            let t = std::time::Instant::now();
            let rec = RecorderHandle::start(dir.path(), meta(), RecordOptions::default())
                .await
                .expect("start");
            for chunk in chunks {
                rec.output(chunk).await.expect("output");
            }
            let done = rec.finish().await.expect("finish");
            let on_disk = done.bytes + done.sidecar.as_ref().map_or(0, |s| s.bytes);
            (t.elapsed().as_secs_f64(), on_disk)
        });
        println!(
            "{name:<8} {:>10.0} {:>11.3}×",
            size as f64 / secs / 1e6,
            on_disk as f64 / size as f64
        );
    }
}
