//! Recordings as a person would check them: the bytes `export` gives back,
//! the files on disk and their sizes, what a crash leaves, asciinema reading
//! them, and the commands the tracker extracts from a simulated shell.

use std::collections::VecDeque;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use rampart::record::{
    CommandTracker, Elapsed, EventKind, Input, RecordError, RecordOptions, RecorderHandle,
    RecordingMeta, ReplayOptions, SessionKind, export, file_sha256, read, replay_with,
};

/// A clock the test moves by hand.
#[derive(Default)]
struct TestClock(AtomicU64);

impl TestClock {
    fn set(&self, secs: f64) {
        self.0.store((secs * 1e6) as u64, Ordering::SeqCst);
    }
}

impl Elapsed for TestClock {
    fn elapsed(&self) -> Duration {
        Duration::from_micros(self.0.load(Ordering::SeqCst))
    }
}

fn meta(session: &str) -> RecordingMeta {
    RecordingMeta {
        session: session.to_string(),
        started_at: "2026-03-04T05:06:07Z".parse().expect("timestamp"),
        user: "alice".into(),
        asset: "web1".into(),
        account: "root".into(),
        protocol: "ssh".into(),
        kind: SessionKind::Shell,
        cols: 80,
        rows: 24,
        term: Some("xterm-256color".into()),
        shell: None,
        title: Some("root@web1".into()),
        command: None,
    }
}

const SESSION: &str = "0b4f6a52-3c1e-4d7a-9f00-5e2a1c0d9b11";

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

async fn start(dir: &Path, clock: Option<Arc<TestClock>>) -> RecorderHandle {
    let options = RecordOptions {
        clock: clock.map(|c| c as Arc<dyn Elapsed>),
        ..RecordOptions::default()
    };
    RecorderHandle::start(dir, meta(SESSION), options)
        .await
        .expect("recording starts")
}

fn cast_lines(path: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path)
        .expect("cast is UTF-8")
        .lines()
        .map(|l| serde_json::from_str(l).expect("every line is JSON"))
        .collect()
}

fn exported(path: &Path) -> Vec<u8> {
    let mut out = Vec::new();
    let report = export(path, &mut out).expect("export");
    assert!(report.complete(), "{report:?}");
    out
}

#[tokio::test]
async fn a_mixed_session_exports_exactly_the_bytes_the_client_received() {
    let dir = tempfile::tempdir().expect("tempdir");
    let clock = Arc::new(TestClock::default());
    let rec = start(dir.path(), Some(clock.clone())).await;
    let binary = random_bytes(5000, 7);
    let chunks: Vec<(f64, Vec<u8>)> = vec![
        (0.1, b"\x1b[1;32malice@web1\x1b[0m:~$ ".to_vec()),
        (0.5, b"ls\r\nnotes.txt caf\xc3".to_vec()), // é split after its first byte
        (0.6, b"\xa9.txt \xf0\x9f".to_vec()),       // the rest of é, half an emoji
        (0.7, b"\x98\x80\r\n".to_vec()),            // the other half
        (1.0, binary.clone()),
        (1.1, binary[..100].to_vec()), // merged into the same segment
        (
            2.5,
            b"caf\xe9 latin-1 text among plain text, and more\r\n".to_vec(),
        ),
        (3.0, b"bye\r\n\xe2\x82".to_vec()), // ends inside a euro sign
    ];
    let mut sent = Vec::new();
    for (i, (at, data)) in chunks.iter().enumerate() {
        clock.set(*at);
        rec.output(Bytes::from(data.clone())).await.expect("output");
        sent.extend_from_slice(data);
        if i == 2 {
            rec.resize(100, 30).await.expect("resize");
            rec.command("ls").await.expect("marker");
            rec.marker("raw: 99 bytes")
                .await
                .expect("a relay marker cannot forge a raw one");
            rec.marker("key: 0").await.expect("nor a seek point");
            rec.marker("redraw: AAAA").await.expect("nor a keyframe");
            rec.redraw(Bytes::from_static(b"\x03\x00"))
                .await
                .expect("a terminal's keyframe is accepted and ignored");
        }
    }
    clock.set(3.5);
    rec.input(Bytes::from_static(b"secret\r"))
        .await
        .expect("input is accepted and dropped");
    let done = rec.finish().await.expect("finish");

    let cast = dir.path().join(&done.path);
    assert_eq!(
        done.path,
        Path::new("2026/03/04").join(format!("{SESSION}.cast"))
    );
    assert_eq!(exported(&cast), sent, "export gives back every byte");
    assert_eq!(done.output_bytes, sent.len() as u64);
    assert_eq!(done.sha256, file_sha256(&cast).expect("digest"));
    assert_eq!(done.bytes, std::fs::metadata(&cast).expect("cast").len());

    let lines = cast_lines(&cast);
    let header = &lines[0];
    assert_eq!(header["version"], 2);
    assert_eq!(header["width"], 80);
    assert_eq!(header["timestamp"], 1_772_600_767);
    assert_eq!(header["env"]["TERM"], "xterm-256color");
    assert_eq!(header["rampart"]["session"], SESSION);
    assert_eq!(header["rampart"]["user"], "alice");
    assert_eq!(header["rampart"]["asset"], "web1");
    assert_eq!(header["rampart"]["account"], "root");
    assert_eq!(header["rampart"]["protocol"], "ssh");
    assert_eq!(header["rampart"]["kind"], "shell");
    let events = &lines[1..];
    assert_eq!(done.events, events.len() as u64);
    let times: Vec<f64> = events
        .iter()
        .map(|e| e[0].as_f64().expect("time"))
        .collect();
    assert!(
        times.windows(2).all(|w| w[0] <= w[1]),
        "time-ordered: {times:?}"
    );
    let has = |code: &str, data: &str| events.iter().any(|e| e[1] == code && e[2] == data);
    assert!(
        has("o", "ls\r\nnotes.txt caf"),
        "text before the split stays text"
    );
    assert!(has("o", "é.txt "), "split UTF-8 joined: {events:?}");
    assert!(has("o", "😀\r\n"));
    assert!(has("r", "100x30"));
    assert!(has("m", "cmd: ls"));
    assert!(has("m", "note: raw: 99 bytes"));
    assert!(has("m", "note: key: 0"));
    assert!(has("m", "note: redraw: AAAA"));
    assert!(
        !events.iter().any(|e| e[1] == "m"
            && e[2]
                .as_str()
                .is_some_and(|m| m.starts_with("redraw: ") || m.starts_with("key: "))),
        "no keyframe in a terminal recording"
    );
    assert!(
        has("m", "raw: 5100 bytes"),
        "consecutive binary chunks are one segment"
    );
    assert!(
        has(
            "o",
            "caf\u{fffd} latin-1 text among plain text, and more\r\n"
        ),
        "shown lossily"
    );
    assert!(
        events.iter().all(|e| e[1] != "i"),
        "keystrokes are not recorded by default"
    );

    let sidecar = done.sidecar.expect("binary output has a sidecar");
    let side_path = dir.path().join(&sidecar.path);
    assert_eq!(sidecar.sha256, file_sha256(&side_path).expect("digest"));
    let last = events.last().expect("events");
    assert_eq!(last[1], "m");
    assert!(
        last[2]
            .as_str()
            .is_some_and(|m| m.contains(&format!("sha256={}", sidecar.sha256))),
        "the cast's last event pins the sidecar: {last}"
    );
    // Binary, the Latin-1 line, and the incomplete euro sign at the end.
    assert_eq!(sidecar.raw_bytes, 5100 + 46 + 2);

    let mode = |p: &Path| std::fs::metadata(p).expect("metadata").permissions().mode() & 0o777;
    assert_eq!(mode(&cast), 0o600);
    assert_eq!(mode(&side_path), 0o600);
    assert_eq!(mode(&dir.path().join("2026/03/04")), 0o700);
    assert_eq!(mode(&dir.path().join("2026")), 0o700);

    // The reader agrees with the raw JSON.
    let reader = read(&cast).expect("read");
    assert_eq!(
        reader.header().rampart.as_ref().map(|r| r.user.as_str()),
        Some("alice")
    );
    let resize = reader
        .filter_map(Result::ok)
        .find(|e| e.kind == EventKind::Resize)
        .and_then(|e| e.size());
    assert_eq!(resize, Some((100, 30)));
}

#[tokio::test]
async fn keystrokes_are_recorded_only_when_input_recording_is_on() {
    let dir = tempfile::tempdir().expect("tempdir");
    let options = RecordOptions {
        input: true,
        ..RecordOptions::default()
    };
    let rec = RecorderHandle::start(dir.path(), meta(SESSION), options)
        .await
        .expect("start");
    rec.input(Bytes::from_static(b"ls\r")).await.expect("input");
    let done = rec.finish().await.expect("finish");
    let lines = cast_lines(&dir.path().join(&done.path));
    assert!(lines[1..].iter().any(|e| e[1] == "i" && e[2] == "ls\r"));
}

/// Bytes on disk: the cast and the sidecar.
fn recorded_size(done: &rampart::record::Finished) -> u64 {
    done.bytes + done.sidecar.as_ref().map_or(0, |s| s.bytes)
}

#[tokio::test]
async fn binary_output_costs_at_most_a_tenth_more_and_text_is_not_stored_twice() {
    const SIZE: usize = 10 * 1024 * 1024;
    let random = random_bytes(SIZE, 42);
    let line =
        b"drwxr-xr-x  2 root root 4096 Mar  4 05:06 some-directory-name-of-a-certain-length\r\n";
    let text: Vec<u8> = line.iter().copied().cycle().take(SIZE).collect();
    for (name, data, max_ratio, sidecar) in [
        ("random", &random, 1.1, true),
        ("text", &text, 1.1, false),
        ("zeros", &vec![0u8; SIZE], 0.01, true),
    ] {
        let dir = tempfile::tempdir().expect("tempdir");
        let rec = start(dir.path(), None).await;
        for chunk in data.chunks(32 * 1024) {
            rec.output(Bytes::copy_from_slice(chunk))
                .await
                .expect("output");
        }
        let done = rec.finish().await.expect("finish");
        let size = recorded_size(&done);
        let ratio = size as f64 / SIZE as f64;
        println!("{name}: {SIZE} bytes relayed, {size} recorded ({ratio:.4}×)");
        assert!(ratio <= max_ratio, "{name}: {ratio}");
        assert_eq!(done.sidecar.is_some(), sidecar, "{name}");
        if let Some(s) = &done.sidecar {
            assert_eq!(
                s.raw_bytes, SIZE as u64,
                "{name}: only binary goes to the sidecar"
            );
        }
        assert!(
            exported(&dir.path().join(&done.path)) == *data,
            "{name}: export differs"
        );
    }
}

#[tokio::test]
async fn events_reach_the_file_within_a_second_without_finish() {
    let dir = tempfile::tempdir().expect("tempdir");
    let rec = start(dir.path(), None).await;
    rec.output(Bytes::from_static(b"first line\r\n"))
        .await
        .expect("output");
    rec.output(Bytes::from(random_bytes(3000, 1)))
        .await
        .expect("output");
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let cast = dir.path().join(rec.relative_path());
    let lines = cast_lines(&cast);
    assert!(
        lines.iter().any(|e| e[2] == "first line\r\n"),
        "flushed by the timer: {lines:?}"
    );
    assert!(lines.iter().any(|e| e[2] == "raw: 3000 bytes"));

    // A crash now: the files as they are on disk, copied before finish.
    let crash = tempfile::tempdir().expect("tempdir");
    let copy = crash.path().join(format!("{SESSION}.cast"));
    std::fs::copy(&cast, &copy).expect("copy cast");
    std::fs::copy(
        cast.with_file_name(format!("{SESSION}.raw.gz")),
        crash.path().join(format!("{SESSION}.raw.gz")),
    )
    .expect("copy sidecar");
    let mut out = Vec::new();
    let report = export(&copy, &mut out).expect("export of a crashed recording");
    let mut expected = b"first line\r\n".to_vec();
    expected.extend(random_bytes(3000, 1));
    assert_eq!(
        out, expected,
        "the sidecar was flushed before the marker: {report:?}"
    );
    assert!(!report.sidecar_verified, "no final marker after a crash");
    rec.finish().await.expect("finish");
}

#[tokio::test]
async fn a_recording_dropped_without_finish_is_still_closed_complete() {
    let dir = tempfile::tempdir().expect("tempdir");
    let rec = start(dir.path(), None).await;
    let cast = dir.path().join(rec.relative_path());
    rec.output(Bytes::from_static(b"before the relay task died\r\n"))
        .await
        .expect("output");
    rec.output(Bytes::from(random_bytes(2000, 4)))
        .await
        .expect("output");
    drop(rec);
    let mut last = String::new();
    for _ in 0..100 {
        last = std::fs::read_to_string(&cast).expect("cast");
        if last.contains("sidecar: ") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        last.contains("sidecar: "),
        "closed with its final marker: {last}"
    );
    let mut expected = b"before the relay task died\r\n".to_vec();
    expected.extend(random_bytes(2000, 4));
    assert_eq!(exported(&cast), expected);
}

#[tokio::test]
async fn a_truncated_last_line_is_reported_and_the_events_before_it_are_kept() {
    let dir = tempfile::tempdir().expect("tempdir");
    let rec = start(dir.path(), None).await;
    for i in 0..5 {
        rec.output(Bytes::from(format!("line {i}\r\n")))
            .await
            .expect("output");
    }
    let done = rec.finish().await.expect("finish");
    let cast = dir.path().join(&done.path);
    let mut bytes = std::fs::read(&cast).expect("cast");
    bytes.extend_from_slice(b"[12.5,\"o\",\"half a li");
    std::fs::write(&cast, &bytes).expect("write");

    let mut reader = read(&cast).expect("read");
    let events: Vec<_> = reader
        .by_ref()
        .collect::<Result<_, _>>()
        .expect("complete lines parse");
    assert_eq!(events.len(), 5);
    assert_eq!(events[4].data, "line 4\r\n");
    let cut = reader.truncated().expect("truncation reported");
    assert_eq!(cut.line, 7);
    let mut out = Vec::new();
    let report = export(&cast, &mut out).expect("export");
    assert_eq!(out, b"line 0\r\nline 1\r\nline 2\r\nline 3\r\nline 4\r\n");
    assert!(report.truncated.is_some() && !report.complete());
}

#[tokio::test]
async fn a_write_error_is_reported_on_the_next_call_and_at_finish() {
    let dir = tempfile::tempdir().expect("tempdir");
    // The recording dir cannot be created: refused at start.
    let file = dir.path().join("not-a-dir");
    std::fs::write(&file, b"").expect("file");
    let err = RecorderHandle::start(&file, meta(SESSION), RecordOptions::default()).await;
    assert!(matches!(err, Err(RecordError::Create { .. })), "{err:?}");

    // The directory disappears mid-session (as good as a dead disk: the
    // sidecar cannot be created when binary output arrives).
    let rec = start(dir.path(), None).await;
    rec.output(Bytes::from_static(b"text\r\n"))
        .await
        .expect("text");
    std::fs::remove_dir_all(dir.path().join("2026")).expect("remove");
    let mut failed = None;
    for _ in 0..50 {
        match rec.output(Bytes::from(random_bytes(4096, 3))).await {
            Ok(()) => tokio::time::sleep(Duration::from_millis(20)).await,
            Err(e) => {
                failed = Some(e);
                break;
            }
        }
    }
    let failed = failed.expect("the error surfaces on a later call");
    assert!(matches!(failed, RecordError::Write { .. }), "{failed}");
    assert!(
        failed.to_string().contains(".raw.gz"),
        "names the file: {failed}"
    );
    assert!(rec.failure().is_some());
    assert!(matches!(rec.finish().await, Err(RecordError::Write { .. })));
}

#[tokio::test]
async fn a_session_id_that_is_not_a_uuid_cannot_name_a_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let err = RecorderHandle::start(
        dir.path(),
        meta("../../etc/passwd"),
        RecordOptions::default(),
    )
    .await;
    assert!(matches!(err, Err(RecordError::InvalidSession(_))));
}

fn asciinema_available() -> bool {
    let found = |cmd: &str| {
        std::process::Command::new(cmd)
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success())
    };
    // `asciinema cat` opens /dev/tty: util-linux `script` gives it one.
    let ok = found("asciinema") && found("script");
    if !ok {
        if std::env::var("RAMPART_REQUIRE_INTEROP").as_deref() == Ok("1") {
            panic!("asciinema or script is missing and RAMPART_REQUIRE_INTEROP=1");
        }
        eprintln!("skipped: asciinema (and util-linux script) not on PATH");
    }
    ok
}

#[tokio::test]
async fn asciinema_reads_the_recording() {
    if !asciinema_available() {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let rec = start(dir.path(), None).await;
    rec.output(Bytes::from_static(b"hello from \xc3"))
        .await
        .expect("output");
    rec.output(Bytes::from_static(b"\xa9cole\r\n"))
        .await
        .expect("output");
    rec.resize(120, 40).await.expect("resize");
    rec.command("tar c /etc").await.expect("marker");
    rec.output(Bytes::from(random_bytes(20_000, 9)))
        .await
        .expect("output");
    rec.output(Bytes::from_static(b"caf\xe9 done\r\n"))
        .await
        .expect("output");
    let done = rec.finish().await.expect("finish");
    let cast = dir.path().join(&done.path);
    let out = std::process::Command::new("script")
        .args([
            "-qec",
            &format!("asciinema cat {}", cast.display()),
            "/dev/null",
        ])
        .stdin(std::process::Stdio::null())
        .output()
        .expect("run asciinema");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "asciinema cat failed: {stdout} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("hello from école"), "{stdout}");
    assert!(stdout.contains("caf\u{fffd} done"), "{stdout}");
}

#[tokio::test]
async fn replay_honours_speed_and_idle_cap() {
    let dir = tempfile::tempdir().expect("tempdir");
    let clock = Arc::new(TestClock::default());
    let rec = start(dir.path(), Some(clock.clone())).await;
    for (at, text) in [(1.0, "a"), (2.0, "b"), (12.0, "c")] {
        clock.set(at);
        rec.output(Bytes::from(text)).await.expect("output");
    }
    clock.set(12.5);
    rec.command("x").await.expect("marker");
    let done = rec.finish().await.expect("finish");
    let cast = dir.path().join(&done.path);

    let mut waits = Vec::new();
    let mut out = Vec::new();
    let options = ReplayOptions {
        speed: 2.0,
        idle_cap: Some(3.0),
    };
    let report = replay_with(&cast, &mut out, options, |d| waits.push(d)).expect("replay");
    assert_eq!(out, b"abc");
    assert_eq!(report.events, 3);
    assert_eq!(
        waits,
        [
            Duration::from_millis(500),
            Duration::from_millis(500),
            Duration::from_millis(1500)
        ],
        "gaps 1, 1, 10 s capped at 3 and played twice as fast"
    );
    let bad = ReplayOptions {
        speed: 100.0,
        idle_cap: None,
    };
    assert!(matches!(
        replay_with(&cast, &mut Vec::new(), bad, |_| {}),
        Err(RecordError::Speed(_))
    ));
}

// --- command extraction -------------------------------------------------

/// A person at a terminal and a target that echoes.
struct Shell {
    tracker: CommandTracker,
}

impl Shell {
    fn new() -> Self {
        let mut tracker = CommandTracker::new(80, 24);
        tracker.output(b"Last login: today\r\n\x1b[1;32malice@web1\x1b[0m:~$ ");
        Shell { tracker }
    }

    /// Keys typed one at a time, each echoed by the target.
    fn type_echoed(&mut self, text: &str) {
        for c in text.chars() {
            let mut buf = [0u8; 4];
            let key = c.encode_utf8(&mut buf).as_bytes();
            assert_eq!(self.tracker.input(key), vec![Input::Data(key.to_vec())]);
            self.tracker.output(key);
        }
    }

    fn enter(&mut self) -> Input {
        let mut items = self.tracker.input(b"\r");
        assert_eq!(items.len(), 1, "{items:?}");
        items.remove(0)
    }
}

fn command(input: Input) -> Option<String> {
    match input {
        Input::Enter { command, raw } => {
            assert_eq!(raw, b"\r");
            command
        }
        other => panic!("expected a seen Enter, got {other:?}"),
    }
}

#[test]
fn a_typed_command_is_read_from_the_screen_at_enter() {
    let mut sh = Shell::new();
    sh.type_echoed("ls -l");
    assert_eq!(command(sh.enter()), Some("ls -l".into()));
}

#[test]
fn line_editing_and_history_recall_give_the_line_the_shell_shows() {
    let mut sh = Shell::new();
    sh.type_echoed("lss");
    assert_eq!(
        sh.tracker.input(b"\x7f"),
        vec![Input::Data(b"\x7f".to_vec())]
    );
    sh.tracker.output(b"\x08\x1b[K");
    sh.type_echoed(" /tmp");
    assert_eq!(command(sh.enter()), Some("ls /tmp".into()));
    sh.tracker.output(b"\r\nfile\r\nalice@web1:~$ ");

    // Up arrow: the shell redraws the line from history.
    sh.tracker.input(b"\x1b[A");
    sh.tracker.output(b"ls /tmp");
    // Left three times and Enter in the middle of the line: the whole line runs.
    sh.tracker.input(b"\x1b[D\x1b[D\x1b[D");
    sh.tracker.output(b"\x1b[3D");
    assert_eq!(command(sh.enter()), Some("ls /tmp".into()));
    sh.tracker.output(b"\r\nfile\r\nalice@web1:~$ ");

    // Tab completion.
    sh.type_echoed("cat /etc/hostn");
    sh.tracker.input(b"\t");
    sh.tracker.output(b"ame ");
    assert_eq!(command(sh.enter()), Some("cat /etc/hostname".into()));
}

#[test]
fn nothing_is_extracted_in_the_alternate_screen_or_with_echo_off() {
    let mut sh = Shell::new();
    sh.type_echoed("vim notes");
    assert_eq!(command(sh.enter()), Some("vim notes".into()));
    sh.tracker.output(b"\r\n\x1b[?1049h\x1b[H\x1b[2J~\r\n~\r\n");
    sh.type_echoed(":wq");
    // vim's command line is not a shell command: no command, only the keys
    // for a filter check (issue 13: a shell on the alternate screen).
    assert_eq!(
        sh.enter(),
        Input::EnterFullScreen {
            typed: ":wq".into(),
            raw: b"\r".to_vec()
        }
    );
    // Edited keys are followed; Ctrl-U starts again.
    sh.type_echoed("rm -rf x");
    sh.tracker.input(b"\x7f\x15");
    sh.type_echoed("ls");
    assert_eq!(
        sh.enter(),
        Input::EnterFullScreen {
            typed: "ls".into(),
            raw: b"\r".to_vec()
        }
    );
    sh.tracker.output(b"\x1b[?1049l\r\nalice@web1:~$ ");

    sh.type_echoed("sudo id");
    assert_eq!(command(sh.enter()), Some("sudo id".into()));
    sh.tracker.output(b"\r\n[sudo] password for alice: ");
    // Typed slowly, echo off: nothing comes back after any key.
    for key in [b"s", b"3", b"c"] {
        sh.tracker.input(key);
    }
    match sh.enter() {
        Input::EnterUnseen { raw, .. } => assert_eq!(raw, b"\r"),
        other => panic!("{other:?}"),
    }
    // The relay waited: still nothing on the screen, so no command.
    assert_eq!(sh.tracker.pending_line(), None);
    assert_eq!(sh.tracker.resolve_pending(), None);
}

#[test]
fn an_enter_before_the_echo_is_resolved_once_the_echo_arrives() {
    let mut sh = Shell::new();
    let items = sh.tracker.input(b"rm -rf /tmp/x\r");
    assert_eq!(items[0], Input::Data(b"rm -rf /tmp/x".to_vec()));
    assert_eq!(
        items[1],
        Input::EnterUnseen {
            typed: Some("rm -rf /tmp/x".into()),
            raw: b"\r".to_vec()
        }
    );
    assert_eq!(sh.tracker.pending_line(), None, "not echoed yet");
    sh.tracker.output(b"rm -rf /tmp/x");
    assert_eq!(sh.tracker.pending_line(), Some("rm -rf /tmp/x".into()));
    assert_eq!(sh.tracker.resolve_pending(), Some("rm -rf /tmp/x".into()));
    assert_eq!(sh.tracker.resolve_pending(), None, "resolved once");
}

#[test]
fn lines_typed_ahead_are_resolved_in_order_once_the_shell_draws_them() {
    let mut sh = Shell::new();
    let items = sh.tracker.input(b"ls\rpwd\r");
    let unseen: Vec<_> = items
        .iter()
        .filter_map(|i| match i {
            Input::EnterUnseen { typed, .. } => Some(typed.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(unseen, [Some("ls".to_string()), Some("pwd".to_string())]);
    // The relay holds from the first Enter on; the target echoes "ls".
    sh.tracker.output(b"ls");
    let first = sh.tracker.resolve_pending().expect("first line");
    assert_eq!(sh.tracker.started(first, Duration::from_secs(1)), None);
    // Enter and "pwd" forwarded: output, the prompt, and the typed-ahead line.
    sh.tracker
        .output(b"\r\nfile\r\n\x1b[1;32malice@web1\x1b[0m:~$ pwd");
    assert_eq!(sh.tracker.pending_line(), Some("pwd".into()));
    let second = sh.tracker.resolve_pending().expect("second line");
    let done = sh
        .tracker
        .started(second, Duration::from_secs(2))
        .expect("ls completed");
    assert_eq!(
        (done.command.as_str(), done.output.as_str()),
        ("ls", "file")
    );
}

#[test]
fn a_bracketed_paste_is_one_multi_line_command_at_the_next_enter() {
    let mut tracker = CommandTracker::new(80, 24);
    tracker.output(b"\x1b[?2004h$ ");
    let items = tracker.input(b"\x1b[200~echo a\recho b\x1b[201~");
    assert!(
        items.iter().all(|i| matches!(i, Input::Data(_))),
        "no Enter inside a paste: {items:?}"
    );
    tracker.output(b"echo a\r\n> echo b");
    match tracker.input(b"\r").remove(0) {
        Input::Enter { command, .. } => assert_eq!(command.as_deref(), Some("echo a\n> echo b")),
        other => panic!("{other:?}"),
    }

    // Without mode 2004 the target would run each line: so are they Enters.
    let mut tracker = CommandTracker::new(80, 24);
    tracker.output(b"$ ");
    let enters = tracker
        .input(b"\x1b[200~echo a\recho b\x1b[201~")
        .into_iter()
        .filter(|i| !matches!(i, Input::Data(_)))
        .count();
    assert_eq!(enters, 1);
}

#[test]
fn ctrl_c_abandons_the_line_and_long_lines_wrap() {
    let mut tracker = CommandTracker::new(20, 5);
    tracker.output(b"$ ");
    tracker.input(b"ls");
    tracker.output(b"ls");
    tracker.input(b"\x03");
    tracker.output(b"^C\r\n$ ");
    let long = "echo 0123456789abcdefghijklmnopqrstuvwxyz";
    for c in long.bytes() {
        tracker.input(&[c]);
        tracker.output(&[c]);
    }
    match tracker.input(b"\r").remove(0) {
        Input::Enter { command, .. } => assert_eq!(command.as_deref(), Some(long)),
        other => panic!("{other:?}"),
    }
    // An Enter glued to an escape sequence is still an Enter (unseen: the
    // ESC key drew nothing yet), and resolves to the line on the screen.
    tracker.output(b"\r\n$ ");
    tracker.input(b"id");
    tracker.output(b"id");
    let items = tracker.input(b"\x1b\r");
    assert!(
        matches!(items.last(), Some(Input::EnterUnseen { .. })),
        "{items:?}"
    );
    assert_eq!(tracker.resolve_pending().as_deref(), Some("id"));
    // A window-change to an absurd size is clamped, not allocated.
    tracker.resize(u16::MAX, u16::MAX);
    tracker.output(b"\r\n$ ");
}

#[test]
fn each_command_keeps_the_first_4_kib_of_its_output_as_plain_text() {
    let mut sh = Shell::new();
    sh.type_echoed("echo hi");
    let cmd = command(sh.enter()).expect("command");
    assert_eq!(sh.tracker.started(cmd, Duration::from_secs(1)), None);
    sh.tracker.output(
        b"\r\n\x1b[31mhi\x1b[0m\r\n\x1b]0;alice@web1: ~\x07\x1b[1;32malice@web1\x1b[0m:~$ ",
    );

    sh.type_echoed("cat big.log");
    let cmd = command(sh.enter()).expect("command");
    let done = sh
        .tracker
        .started(cmd, Duration::from_secs(2))
        .expect("previous command");
    assert_eq!(done.command, "echo hi");
    assert_eq!(done.at, Duration::from_secs(1));
    assert_eq!(
        done.output, "hi",
        "escapes, the next prompt and its echo are gone"
    );
    assert!(!done.output_truncated);

    sh.tracker.output(b"\r\n");
    for i in 0..500 {
        sh.tracker
            .output(format!("\x1b[2mline {i:04}\x1b[0m of the log\r\n").as_bytes());
    }
    let done = sh.tracker.finish().expect("last command");
    assert_eq!(done.command, "cat big.log");
    assert!(
        done.output.len() <= 4096 && done.output.len() > 4000,
        "{}",
        done.output.len()
    );
    assert!(done.output.starts_with("line 0000 of the log\nline 0001"));
    assert!(!done.output.contains('\x1b') && !done.output.contains('\r'));
    assert!(done.output_truncated);
}

/// The relay's side of a held Enter: resolve it, then (as the relay does
/// when it lets the command run) start it.
fn run_held(tracker: &mut CommandTracker, at: u64) -> (Option<String>, Option<(String, String)>) {
    let line = tracker.resolve_pending();
    let done = line
        .clone()
        .and_then(|l| tracker.started(l, Duration::from_secs(at)))
        .map(|d| (d.command, d.output));
    (line, done)
}

#[test]
fn a_fast_typist_whose_echo_lags_gets_the_whole_line_not_the_echoed_part() {
    let mut sh = Shell::new();
    // Keys leave one by one; the echo of the first comes back after the
    // third key, so output did come after a key, but not all of the echo.
    for key in [b"l", b"s", b" "] {
        sh.tracker.input(key);
    }
    sh.tracker.output(b"l");
    sh.tracker.input(b"-");
    sh.tracker.output(b"s");
    sh.tracker.input(b"a");
    sh.tracker.output(b" ");
    match sh.enter() {
        Input::EnterUnseen { typed, .. } => assert_eq!(typed.as_deref(), Some("ls -a")),
        other => panic!("the screen shows only \"ls \": {other:?}"),
    }
    assert_eq!(sh.tracker.pending_line(), None, "echo incomplete");
    sh.tracker.output(b"-a");
    assert_eq!(sh.tracker.pending_line().as_deref(), Some("ls -a"));
    assert_eq!(run_held(&mut sh.tracker, 1), (Some("ls -a".into()), None));
}

#[test]
fn a_line_typed_before_the_previous_enter_is_answered_is_read_below_it() {
    let mut sh = Shell::new();
    // Line one in one write, held until its echo, then forwarded.
    sh.tracker.input(b"whoami\r");
    sh.tracker.output(b"whoami");
    assert_eq!(run_held(&mut sh.tracker, 1), (Some("whoami".into()), None));
    // The same line again, in the next write, before the target answered:
    // the screen still shows the first one at the cursor.
    let items = sh.tracker.input(b"whoami\r");
    assert!(
        matches!(items.last(), Some(Input::EnterUnseen { .. })),
        "{items:?}"
    );
    assert_eq!(
        sh.tracker.pending_line(),
        None,
        "the line on the screen is the previous one"
    );
    // The answer comes in pieces: output first, then the prompt and the echo.
    sh.tracker.output(b"\r\nalice\r\n");
    assert_eq!(sh.tracker.pending_line(), None);
    sh.tracker.output(b"\x1b[1;32malice@web1\x1b[0m:~$ whoami");
    assert_eq!(sh.tracker.pending_line().as_deref(), Some("whoami"));
    assert_eq!(
        run_held(&mut sh.tracker, 2),
        (
            Some("whoami".into()),
            Some(("whoami".into(), "alice".into()))
        )
    );

    // Typed ahead after output began: the line started on an output row.
    sh.tracker.output(b"\r\n");
    sh.tracker.input(b"echo one two\r");
    sh.tracker
        .output(b"alice\r\n\x1b[1;32malice@web1\x1b[0m:~$ echo one tw");
    assert_eq!(sh.tracker.pending_line(), None, "echo incomplete");
    sh.tracker.output(b"o");
    assert_eq!(
        run_held(&mut sh.tracker, 3),
        (
            Some("echo one two".into()),
            Some(("whoami".into(), "alice".into()))
        )
    );
}

#[test]
fn a_history_recall_typed_ahead_is_read_after_the_prompt() {
    let mut sh = Shell::new();
    sh.type_echoed("uptime");
    assert_eq!(command(sh.enter()), Some("uptime".into()));
    // Up arrow and Enter before the target answered `uptime`: the keys do
    // not say what the line is; the screen does, after the prompt.
    let items = sh.tracker.input(b"\x1b[A\r");
    match items.last() {
        Some(Input::EnterUnseen { typed, .. }) => assert_eq!(typed, &None),
        other => panic!("{other:?}"),
    }
    assert_eq!(sh.tracker.pending_line(), None, "still the old line");
    sh.tracker
        .output(b"\r\n up 3 days\r\n\x1b[1;32malice@web1\x1b[0m:~$ uptime");
    assert_eq!(sh.tracker.pending_line().as_deref(), Some("uptime"));
    assert_eq!(sh.tracker.resolve_pending().as_deref(), Some("uptime"));
}

#[test]
fn a_password_typed_ahead_is_never_taken_for_a_command() {
    let mut sh = Shell::new();
    let items = sh.tracker.input(b"sudo id\rword:\r");
    let typed: Vec<_> = items
        .iter()
        .filter_map(|i| match i {
            Input::EnterUnseen { typed, .. } => Some(typed.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(typed.len(), 2, "{items:?}");
    sh.tracker.output(b"sudo id");
    assert_eq!(sh.tracker.resolve_pending().as_deref(), Some("sudo id"));
    // sudo asks with echo off; the prompt happens to end like the password.
    sh.tracker.output(b"\r\n[sudo] password for alice: ");
    assert_eq!(sh.tracker.pending_line(), None);
    assert_eq!(sh.tracker.resolve_pending(), None);
    sh.tracker.output(b"\r\nuid=0(root)\r\n");
}

#[test]
fn the_screen_decides_when_the_line_editor_differs_from_the_key_model() {
    // zsh's Ctrl-W stops at `/` where the key model (bash's) goes to the
    // space: the keys say "ls bar", the shell shows and runs "ls /tmp/bar".
    let mut sh = Shell::new();
    sh.type_echoed("ls /tmp/foo");
    sh.tracker.input(b"\x17");
    sh.tracker.output(b"\x08\x08\x08\x1b[K");
    sh.type_echoed("bar");
    assert_eq!(command(sh.enter()), Some("ls /tmp/bar".into()));
}

#[test]
fn a_refused_line_closes_the_output_of_the_command_before_it() {
    let mut sh = Shell::new();
    sh.type_echoed("echo hi");
    let cmd = command(sh.enter()).expect("command");
    assert_eq!(sh.tracker.started(cmd, Duration::from_secs(1)), None);
    sh.tracker
        .output(b"\r\nhi\r\n\x1b[1;32malice@web1\x1b[0m:~$ ");
    sh.type_echoed("rm -rf /");
    let refused = command(sh.enter()).expect("command");
    let done = sh.tracker.refused(&refused).expect("previous command");
    assert_eq!(
        (done.command.as_str(), done.output.as_str()),
        ("echo hi", "hi")
    );
    // The notice and the target's answer to the Ctrl-C belong to no command.
    sh.tracker
        .output(b"\r\nrampart: command refused\r\n^C\r\nalice@web1:~$ ");
    assert_eq!(sh.tracker.finish(), None);
}

#[test]
fn a_withheld_line_typed_ahead_is_read_from_the_screen_at_its_next_enter() {
    let mut sh = Shell::new();
    sh.type_echoed("sleep 2");
    assert!(matches!(
        sh.tracker.input(b"\r").as_slice(),
        [Input::Enter { command: Some(c), .. }] if c == "sleep 2"
    ));
    sh.tracker.started("sleep 2".into(), Duration::from_secs(1));
    sh.tracker.output(b"\r\n");
    // While it runs: an arrow (history), a line and Enter, in one write.
    let items = sh.tracker.input(b"\x1b[Acat README\r");
    assert!(
        matches!(items.last(), Some(Input::EnterUnseen { typed: None, .. })),
        "{items:?}"
    );
    assert_eq!(sh.tracker.resolve_pending(), None, "nothing shows yet");
    sh.tracker.withheld();
    sh.tracker.output(b"\r\nrampart: Enter held back\r\n");
    // The command ends; the shell draws its prompt and the line it read.
    sh.tracker
        .output(b"\x1b[1;32malice@web1\x1b[0m:~$ cat README");
    let items = sh.tracker.input(b"\r");
    assert!(
        matches!(items.last(), Some(Input::EnterUnseen { typed: None, .. })),
        "{items:?}"
    );
    assert_eq!(sh.tracker.pending_line().as_deref(), Some("cat README"));
    assert_eq!(sh.tracker.resolve_pending().as_deref(), Some("cat README"));
}

#[test]
fn a_line_typed_ahead_behind_a_long_command_is_logged_when_the_shell_draws_it() {
    let mut sh = Shell::new();
    sh.type_echoed("sleep 5");
    let cmd = command(sh.enter()).expect("command");
    assert_eq!(sh.tracker.started(cmd, Duration::from_secs(1)), None);
    sh.tracker.output(b"\r\n");
    // While it runs, a line and its Enter in one write; the target does
    // not echo it until `sleep` ends, long after the relay's wait.
    let items = sh.tracker.input(b"uname -a\r");
    match items.last() {
        Some(Input::EnterUnseen { typed, .. }) => assert_eq!(typed.as_deref(), Some("uname -a")),
        other => panic!("{other:?}"),
    }
    assert_eq!(sh.tracker.resolve_pending(), None, "no echo in time");
    sh.tracker.expect_echo(Duration::from_secs(2));
    assert!(sh.tracker.take_late().is_empty());
    // The end of `sleep`, the prompt, the echo and the output of the line
    // typed ahead, all in one chunk: the echo is at the cursor only
    // before its line break.
    sh.tracker.output(
        b"slept\r\n\x1b[1;32malice@web1\x1b[0m:~$ uname -a\r\nLinux web1\r\n\x1b[1;32malice@web1\x1b[0m:~$ ",
    );
    let late = sh.tracker.take_late();
    assert_eq!(late.len(), 1, "{late:?}");
    assert_eq!(late[0].command, "uname -a");
    assert_eq!(
        late[0].at,
        Duration::from_secs(2),
        "when its Enter went out"
    );
    let previous = late[0].previous.clone().expect("sleep is complete");
    assert_eq!(
        (previous.command.as_str(), previous.output.as_str()),
        ("sleep 5", "slept"),
        "its output ends where the line was drawn"
    );
    assert!(sh.tracker.take_late().is_empty(), "taken once");
    let done = sh.tracker.finish().expect("the late line ran");
    assert_eq!(done.command, "uname -a");
    assert!(done.output.starts_with("Linux web1\n"), "{:?}", done.output);
}

#[test]
fn a_password_forwarded_before_its_echo_is_never_logged_later() {
    let mut sh = Shell::new();
    sh.type_echoed("sudo -k id");
    let cmd = command(sh.enter()).expect("command");
    sh.tracker.started(cmd, Duration::from_secs(1));
    // The password is typed ahead before sudo asks, with echo off.
    let items = sh.tracker.input(b"alice:\r");
    assert!(matches!(items.last(), Some(Input::EnterUnseen { .. })));
    assert_eq!(sh.tracker.resolve_pending(), None);
    sh.tracker.expect_echo(Duration::from_secs(2));
    // sudo's prompt ends, at the cursor, exactly like the password; it is
    // no shell prompt, so it is not taken for the line's echo.
    sh.tracker.output(
        b"\r\n[sudo] password for alice: \r\nuid=0(root)\r\n\x1b[1;32malice@web1\x1b[0m:~$ ",
    );
    assert!(sh.tracker.take_late().is_empty());
    // The next command starts: the line is no longer looked for.
    sh.type_echoed("alice:");
    let cmd = command(sh.enter()).expect("typed and echoed at a prompt");
    sh.tracker.started(cmd, Duration::from_secs(3));
    sh.tracker
        .output(b"\r\nalice:: command not found\r\n\x1b[1;32malice@web1\x1b[0m:~$ alice:");
    assert!(sh.tracker.take_late().is_empty());
}

#[test]
fn a_line_whose_echo_came_after_the_wait_is_logged_from_the_chunk_that_brings_it() {
    let mut sh = Shell::new();
    // A line and its Enter in one write at a prompt, on a loaded machine:
    // no echo within the wait, so the Enter goes out unread.
    let items = sh.tracker.input(b"hostname\r");
    assert!(matches!(items.last(), Some(Input::EnterUnseen { .. })));
    assert_eq!(sh.tracker.resolve_pending(), None);
    sh.tracker.expect_echo(Duration::from_secs(1));
    // Echo, output and the next prompt arrive together.
    sh.tracker
        .output(b"hostname\r\nweb1\r\n\x1b[1;32malice@web1\x1b[0m:~$ ");
    let late = sh.tracker.take_late();
    assert_eq!(late.len(), 1, "{late:?}");
    assert_eq!(
        (late[0].command.as_str(), late[0].previous.clone()),
        ("hostname", None)
    );
    let done = sh.tracker.finish().expect("it ran");
    assert!(done.output.starts_with("web1\n"), "{:?}", done.output);
}

#[test]
fn a_line_typed_ahead_at_a_two_row_prompt_is_read_after_its_last_row() {
    // A prompt of two rows (a status line, then `$ `): only its last row
    // precedes the line, and that is the prompt looked for.
    let mut tracker = CommandTracker::new(80, 24);
    tracker.output(b"alice@web1 ~/src (main)\r\n$ ");
    for c in b"make" {
        tracker.input(&[*c]);
        tracker.output(&[*c]);
    }
    match tracker.input(b"\r").remove(0) {
        Input::Enter { command, .. } => assert_eq!(command.as_deref(), Some("make")),
        other => panic!("{other:?}"),
    }
    tracker.started("make".into(), Duration::from_secs(1));
    // Up arrow and Enter while make runs: the keys do not say the line.
    let items = tracker.input(b"\x1b[A\r");
    assert!(
        matches!(items.last(), Some(Input::EnterUnseen { typed: None, .. })),
        "{items:?}"
    );
    tracker.output(b"\r\nbuilt\r\nalice@web1 ~/src (main)\r\n$ make");
    assert_eq!(tracker.pending_line().as_deref(), Some("make"));
    assert_eq!(tracker.resolve_pending().as_deref(), Some("make"));
    let done = tracker.started("make".into(), Duration::from_secs(2));
    assert_eq!(
        done.map(|d| d.output).as_deref(),
        Some("built\nalice@web1 ~/src (main)"),
        "the prompt's first row stays in the output: only its last row is known as the prompt"
    );
}

/// A shell on the far side of a slow link, for [`the_command_log_under_type_ahead_and_lag_is_exact_or_silent`]:
/// it echoes each key as it comes and answers `echo TEXT` with TEXT and a
/// new prompt, as the demo target does.
struct LaggedShell {
    line: String,
    /// Output produced, not yet delivered to the tracker.
    unsent: VecDeque<u8>,
}

impl LaggedShell {
    const PROMPT: &'static [u8] = b"demo@demo:~$ ";

    fn receive(&mut self, bytes: &[u8]) {
        for &b in bytes {
            match b {
                b'\r' => {
                    let line = std::mem::take(&mut self.line);
                    self.unsent.extend(b"\r\n");
                    if let Some(text) = line.strip_prefix("echo ") {
                        self.unsent.extend(text.as_bytes());
                        self.unsent.extend(b"\r\n");
                    }
                    self.unsent.extend(Self::PROMPT);
                }
                b'\x03' => {
                    self.line.clear();
                    self.unsent.extend(b"^C\r\n");
                    self.unsent.extend(Self::PROMPT);
                }
                _ => {
                    self.line.push(char::from(b));
                    self.unsent.push_back(b);
                }
            }
        }
    }
}

#[test]
fn the_command_log_under_type_ahead_and_lag_is_exact_or_silent() {
    // The relay's loop against a shell whose output reaches the bastion
    // late and in chunks of any size, with lines typed without waiting for
    // the prompt: whatever is logged must be exactly a line that was typed,
    // in order. Seeds are fixed, so a failure repeats.
    let mut logged_total = 0;
    let mut typed_total = 0;
    for seed in 1..=300u64 {
        let mut rng = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
        let mut next = move |n: u64| {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            rng % n.max(1)
        };
        let mut tracker = CommandTracker::new(80, 24);
        let mut shell = LaggedShell {
            line: String::new(),
            unsent: VecDeque::new(),
        };
        shell.unsent.extend(LaggedShell::PROMPT);
        let lines: Vec<String> = (0..12)
            .map(|_| {
                let len = 3 + next(40) as usize;
                let text: String = (0..len)
                    .map(|_| char::from(0x21 + next(0x5d) as u8))
                    .collect();
                format!("echo {text}")
            })
            .collect();
        let mut logged: Vec<String> = Vec::new();
        let mut clock = 0u64;
        // Delivers up to a random number of output bytes.
        let deliver = |tracker: &mut CommandTracker,
                       shell: &mut LaggedShell,
                       logged: &mut Vec<String>,
                       next: &mut dyn FnMut(u64) -> u64| {
            let n = (next(24) as usize).min(shell.unsent.len());
            let chunk: Vec<u8> = shell.unsent.drain(..n).collect();
            tracker.output(&chunk);
            for late in tracker.take_late() {
                logged.push(late.command);
            }
        };
        let mut pending_input: VecDeque<u8> = VecDeque::new();
        let mut to_type = lines.iter();
        loop {
            clock += 1;
            // The person types the next line (and its Enter) now and then,
            // prompt or not; SSH may bring two in one packet.
            if next(6) == 0 {
                match to_type.next() {
                    Some(line) => {
                        pending_input.extend(line.as_bytes());
                        pending_input.push_back(b'\r');
                    }
                    None if pending_input.is_empty() && shell.unsent.is_empty() => break,
                    None => {}
                }
            }
            if !pending_input.is_empty() && next(3) == 0 {
                let bytes: Vec<u8> = pending_input.drain(..).collect();
                for piece in tracker.input(&bytes) {
                    match piece {
                        Input::Data(data) => shell.receive(&data),
                        Input::EnterFullScreen { raw, .. } => shell.receive(&raw),
                        Input::Enter { command, raw } => {
                            if let Some(c) = command {
                                logged.push(c.clone());
                                tracker.started(c, Duration::from_millis(clock));
                            }
                            shell.receive(&raw);
                        }
                        Input::EnterUnseen { typed, raw } => {
                            // Held for the echo, for a random wait.
                            let wait = next(30);
                            for _ in 0..wait {
                                if typed.is_some() && tracker.pending_line() == typed {
                                    break;
                                }
                                deliver(&mut tracker, &mut shell, &mut logged, &mut next);
                            }
                            match tracker.resolve_pending() {
                                Some(c) => {
                                    logged.push(c.clone());
                                    tracker.started(c, Duration::from_millis(clock));
                                }
                                None => tracker.expect_echo(Duration::from_millis(clock)),
                            }
                            shell.receive(&raw);
                        }
                    }
                }
            }
            deliver(&mut tracker, &mut shell, &mut logged, &mut next);
            assert!(clock < 100_000, "seed {seed}: the simulation does not end");
        }
        // In order, each exactly a typed line.
        let mut rest = lines.iter();
        for c in &logged {
            assert!(
                rest.any(|l| l == c),
                "seed {seed}: logged {c:?}, not a typed line in order\ntyped: {lines:#?}\nlogged: {logged:#?}"
            );
        }
        logged_total += logged.len();
        typed_total += lines.len();
    }
    eprintln!("{logged_total} of {typed_total} typed lines logged");
}
