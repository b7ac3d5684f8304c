//! Recording cost: MB/s through a `RecorderHandle` and bytes on disk per
//! byte recorded, for text, incompressible and all-zero output.
//! `cargo bench --bench record` (release); 256 MiB of each by default,
//! `RAMPART_BENCH_MIB=N` to change it.

use bytes::Bytes;
use rampart::record::{RecordOptions, RecorderHandle, RecordingMeta, SessionKind};

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

fn main() {
    let mib: usize = std::env::var("RAMPART_BENCH_MIB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(256);
    let size = mib * 1024 * 1024;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
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
