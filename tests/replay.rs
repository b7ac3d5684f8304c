//! The replay screen as the auditor sees it: the screen is rendered through
//! `tui::Screen`, the bytes go into a vt100 terminal emulator (the client's
//! side of the channel), and the assertions read that emulator's screen.
//! Keys go in as the bytes a terminal sends.

use std::io::Write as _;
use std::num::NonZeroU16;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rampart::record::{PlayerOptions, Timeline};
use rampart::tui::{ColorMode, InputParser, Replay, ReplayOutcome, Screen, Theme};

// ---------------------------------------------------------------- fixture

fn header(cols: u16, rows: u16) -> String {
    format!(
        r#"{{"version":2,"width":{cols},"height":{rows},"timestamp":1767268800,"env":{{"TERM":"xterm-256color"}},"rampart":{{"session":"0b4f6a52-3c1e-4d7a-9f00-5e2a1c0d9b11","user":"alice","asset":"web1","account":"root","protocol":"ssh","kind":"shell"}}}}"#
    ) + "\n"
}

fn event(t: f64, code: &str, data: &str) -> String {
    format!(
        "[{t:.6}, {}, {}]\n",
        serde_json::to_string(code).unwrap(),
        serde_json::to_string(data).unwrap()
    )
}

/// A shell session of three commands, each marked when Enter was pressed
/// and its output a little later; a long pause before the third.
fn shell_session(cols: u16, rows: u16) -> String {
    let mut cast = header(cols, rows);
    for (t, code, data) in [
        (0.1, "o", "$ "),
        (0.5, "o", "l"),
        (0.6, "o", "s"),
        (0.8, "m", "cmd: ls"),
        (0.85, "o", "\r\nfile-a  file-b\r\n$ "),
        (2.0, "o", "whoami"),
        (2.2, "m", "cmd: whoami"),
        (2.25, "o", "\r\nroot\r\n$ "),
        (30.0, "o", "uname -a"),
        (30.3, "m", "cmd: uname -a"),
        (30.35, "o", "\r\nLinux web1 6.1.0\r\n$ "),
        (31.0, "o", "exit\r\n"),
    ] {
        cast += &event(t, code, data);
    }
    cast
}

struct Fixture {
    _dir: tempfile::TempDir,
    path: PathBuf,
}

fn fixture(cast: &str) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.cast");
    std::fs::File::create(&path)
        .unwrap()
        .write_all(cast.as_bytes())
        .unwrap();
    Fixture { _dir: dir, path }
}

fn open(path: &Path) -> Replay {
    let mut replay = Replay::open(path, PlayerOptions::default()).unwrap();
    settle(&mut replay);
    replay
}

/// Ticks at one moment until the seek and the index are done: playback
/// does not move (no time passes), the file work finishes.
fn settle(replay: &mut Replay) {
    let now = Instant::now();
    let mut n = 0;
    replay.tick(now);
    while replay.busy() {
        replay.tick(now);
        n += 1;
        assert!(n < 10_000, "the replay never settles");
    }
}

/// The client's side: our bytes go into a terminal emulator of the same
/// size.
struct Client {
    screen: Screen,
    term: vt100::Parser,
    theme: Theme,
}

fn nz(n: u16) -> NonZeroU16 {
    NonZeroU16::new(n).unwrap()
}

impl Client {
    fn new(cols: u16, rows: u16) -> Client {
        let mut screen = Screen::new(cols, rows, ColorMode::Full);
        let enter = screen.enter();
        let mut term = vt100::Parser::new(nz(rows), nz(cols), 0);
        term.process(&enter);
        Client {
            screen,
            term,
            theme: Theme::default(),
        }
    }

    fn show(&mut self, replay: &Replay) {
        let theme = self.theme.clone();
        let bytes = self.screen.draw(|f| replay.render(f, &theme));
        self.term.process(&bytes);
    }

    fn text(&self) -> String {
        self.term.screen().contents()
    }

    fn row(&self, row: u16) -> String {
        let (_, cols) = self.term.screen().size();
        self.term.screen().contents_between(row, 0, row, cols.get())
    }

    /// The row that contains `needle`, and where in it.
    fn find(&self, needle: &str) -> Option<(u16, u16)> {
        let (rows, _) = self.term.screen().size();
        (0..rows.get()).find_map(|r| {
            let row = self.row(r);
            let at = row.find(needle)?;
            Some((r, row[..at].chars().count() as u16))
        })
    }

    fn last_row(&self) -> String {
        let (rows, _) = self.term.screen().size();
        self.row(rows.get() - 1)
    }
}

/// Types `bytes` as a terminal would send them; the last outcome.
fn press(replay: &mut Replay, bytes: &[u8]) -> Option<ReplayOutcome> {
    let mut parser = InputParser::new();
    let mut keys = parser.feed(bytes);
    keys.extend(parser.flush());
    let mut outcome = None;
    for key in keys {
        if let Some(o) = replay.handle(key) {
            outcome = Some(o);
        }
        settle(replay);
    }
    outcome
}

/// The recorded screen after every event up to `at` seconds (recorded
/// timeline), as a terminal of the recording's size shows it.
fn straight(cast: &str, at: f64) -> Vec<String> {
    let mut lines = cast.lines();
    let header: serde_json::Value = serde_json::from_str(lines.next().unwrap()).unwrap();
    let cols = header["width"].as_u64().unwrap() as u16;
    let rows = header["height"].as_u64().unwrap() as u16;
    let mut term = vt100::Parser::new(nz(rows), nz(cols), 0);
    for line in lines {
        let (t, code, data): (f64, String, String) = serde_json::from_str(line).unwrap();
        if t > at {
            break;
        }
        if code == "o" {
            term.process(data.as_bytes());
        }
    }
    term.screen()
        .contents()
        .lines()
        .map(|l| l.trim_end().to_string())
        .filter(|l| !l.is_empty())
        .collect()
}

// ------------------------------------------------------------------ tests

#[test]
fn n_twice_shows_the_second_command_and_the_list_highlights_it() {
    let cast = shell_session(60, 12);
    let f = fixture(&cast);
    let mut replay = open(&f.path);
    let mut client = Client::new(80, 24);
    // Pause first, so the only movement is the jumps.
    press(&mut replay, b" c");
    client.show(&replay);
    assert!(client.text().contains("Commands (3)"), "{}", client.text());
    press(&mut replay, b"nn");
    client.show(&replay);
    let text = client.text();
    // The recording is cropped to the room left by the pane: compare what
    // the person sees with a straight play, line by line.
    for line in straight(&cast, 2.2) {
        let shown: String = line.chars().take(20).collect();
        assert!(text.contains(&shown), "{shown:?} missing:\n{text}");
    }
    assert!(text.contains("$ whoami"), "{text}");
    assert!(
        !text.contains("root\n") && !text.contains("Linux"),
        "{text}"
    );
    // The pane marks the current command and only that one.
    let (row, col) = client.find("▸").expect("a current command");
    assert!(client.row(row).contains("whoami"), "{text}");
    let cell = client.term.screen().cell(row, col + 2).unwrap();
    assert_ne!(
        cell.bgcolor(),
        vt100::Color::Default,
        "the current command is highlighted"
    );
    assert_eq!(text.matches('▸').count(), 1, "{text}");
    assert!(text.contains("00:02 / 00:05"), "compressed time:\n{text}");
    // p goes back to the first one.
    press(&mut replay, b"p");
    client.show(&replay);
    let (row, _) = client.find("▸").unwrap();
    assert!(client.row(row).contains(" ls"), "{}", client.text());
    assert!(!client.text().contains("file-a"), "{}", client.text());
}

#[test]
fn space_seek_speed_and_idle_change_the_status() {
    let f = fixture(&shell_session(60, 12));
    let mut replay = open(&f.path);
    let mut client = Client::new(100, 30);
    client.show(&replay);
    let text = client.text();
    assert!(text.contains("▶ playing"), "{text}");
    assert!(text.contains(" 1× "), "{text}");
    assert!(text.contains("idle ≤2s"), "{text}");
    assert!(text.contains("00:00 / 00:05"), "{text}");
    press(&mut replay, b" ");
    client.show(&replay);
    assert!(client.text().contains("‖ paused"), "{}", client.text());
    press(&mut replay, b"+>>");
    client.show(&replay);
    assert!(client.text().contains(" 8× "), "{}", client.text());
    press(&mut replay, b"-");
    client.show(&replay);
    assert!(client.text().contains(" 4× "), "{}", client.text());
    press(&mut replay, b"++++++++");
    client.show(&replay);
    assert!(client.text().contains(" 16× "), "{}", client.text());
    press(&mut replay, b"\x1b[C");
    client.show(&replay);
    assert!(client.text().contains("00:05 / 00:05"), "{}", client.text());
    assert!(client.text().contains("Linux web1"), "{}", client.text());
    press(&mut replay, b"\x1b[D");
    client.show(&replay);
    assert!(client.text().contains("00:00 / 00:05"), "{}", client.text());
    // Idle compression off: the pause is as long as it was.
    press(&mut replay, b"i");
    client.show(&replay);
    let text = client.text();
    assert!(text.contains("idle as recorded"), "{text}");
    assert!(text.contains("00:00 / 00:31"), "{text}");
    press(&mut replay, b"\x1b[B");
    client.show(&replay);
    assert!(client.text().contains("00:30 / 00:31"), "{}", client.text());
    press(&mut replay, b"\x1b[F");
    client.show(&replay);
    let text = client.text();
    assert!(
        text.contains("00:31 / 00:31") && text.contains("ended"),
        "{text}"
    );
    // Space at the end plays again from the start.
    press(&mut replay, b" ");
    client.show(&replay);
    assert!(client.text().contains("00:00 / 00:31"), "{}", client.text());
    assert!(replay.is_playing());
}

#[test]
fn playback_follows_wall_time_at_the_chosen_speed() {
    let f = fixture(&shell_session(60, 12));
    let mut replay = Replay::open(&f.path, PlayerOptions::default()).unwrap();
    let t0 = Instant::now();
    replay.tick(t0);
    replay.tick(t0 + Duration::from_millis(700));
    assert!((replay.player().position() - 0.7).abs() < 1e-9);
    assert_eq!(replay.next_tick(), Some(Duration::from_millis(40)));
    let mut client = Client::new(100, 30);
    client.show(&replay);
    assert!(client.text().contains("$ ls"), "{}", client.text());
    assert!(!client.text().contains("file-a"), "{}", client.text());
    replay.handle(rampart::tui::Key::Char('+'));
    replay.tick(t0 + Duration::from_millis(1000));
    replay.tick(t0 + Duration::from_millis(1500));
    // 0.7 s, then 0.5 s at 2× (the time before the first tick after a
    // speed change does not count).
    assert!((replay.player().position() - 1.7).abs() < 1e-9);
    // To the end: it stops there.
    replay.tick(t0 + Duration::from_secs(60));
    settle(&mut replay);
    assert!(!replay.is_playing());
    assert!(replay.player().at_end());
    assert_eq!(replay.next_tick(), None);
}

#[test]
fn at_80x24_everything_fits_and_the_recording_follows_the_cursor() {
    let mut cast = header(80, 24);
    for i in 0..40 {
        cast += &event(0.1 * f64::from(i), "o", &format!("line {i}\r\n"));
    }
    cast += &event(5.0, "o", "$ tail");
    let f = fixture(&cast);
    let mut replay = open(&f.path);
    press(&mut replay, b"\x1b[F");
    let mut client = Client::new(80, 24);
    client.show(&replay);
    let text = client.text();
    assert!(client.row(0).contains("Replay") && client.row(0).contains("alice → root@web1"));
    assert!(client.row(0).contains("2026-01-01 12:00:00 UTC"), "{text}");
    assert!(text.contains("cropped: recorded at 80×24"), "{text}");
    // The cursor's line (the prompt at the bottom) is in view.
    assert!(text.contains("$ tail"), "{text}");
    assert!(text.contains("line 39"), "{text}");
    assert!(client.row(22).contains("00:05 / 00:05"), "{text}");
    assert!(client.last_row().contains("help"), "{text}");
    // Zoomed: the recording over the screen, the state in the status line.
    press(&mut replay, b"z");
    client.show(&replay);
    let text = client.text();
    assert!(!text.contains("Replay"), "{text}");
    assert!(
        client.last_row().contains("cropped: recorded at 80×24"),
        "{text}"
    );
    assert!(client.last_row().contains("00:05"), "{text}");
    assert!(client.row(22).contains("$ tail"), "{text}");
}

#[test]
fn a_recording_larger_than_the_viewer_is_cropped_with_a_note() {
    let mut cast = header(120, 40);
    cast += &event(0.5, "o", "\x1b[1;1Htop-left\x1b[1;100Hfar-right");
    let f = fixture(&cast);
    let mut replay = open(&f.path);
    press(&mut replay, b"\x1b[F");
    let mut client = Client::new(80, 24);
    client.show(&replay);
    let text = client.text();
    assert!(text.contains("cropped: recorded at 120×40"), "{text}");
    // The cursor is at the end of "far-right", so that is what shows.
    assert!(text.contains("far-right"), "{text}");
}

#[test]
fn a_smaller_recording_is_centred_in_a_frame() {
    let mut cast = header(20, 5);
    cast += &event(0.5, "o", "small");
    let f = fixture(&cast);
    let mut replay = open(&f.path);
    press(&mut replay, b"\x1b[F");
    let mut client = Client::new(100, 30);
    client.show(&replay);
    let text = client.text();
    assert!(!text.contains("cropped"), "{text}");
    let (row, col) = client.find("small").unwrap();
    // Centred, inside its frame.
    assert!(col > 35 && row > 10, "at {row},{col}:\n{text}");
    assert!(client.row(row - 1).contains("20×5"), "{text}");
}

#[test]
fn the_command_list_takes_tab_and_enter_jumps() {
    let cast = shell_session(60, 12);
    let f = fixture(&cast);
    let mut replay = open(&f.path);
    let mut client = Client::new(120, 30);
    press(&mut replay, b" ");
    client.show(&replay);
    assert!(client.text().contains("Commands (3)"), "{}", client.text());
    // Tab into the list, down to the third, Enter.
    press(&mut replay, b"\t");
    press(&mut replay, b"\x1b[B\x1b[B\x1b[B\r");
    client.show(&replay);
    let text = client.text();
    assert!(text.contains("$ uname -a"), "{text}");
    assert!(!text.contains("Linux web1"), "{text}");
    let (row, _) = client.find("▸").unwrap();
    assert!(client.row(row).contains("uname -a"), "{text}");
    assert!(client.last_row().contains("jump"), "{text}");
    // Esc leaves the list first, then closes.
    assert_eq!(press(&mut replay, b"\x1b"), None);
    assert_eq!(press(&mut replay, b"\x1b"), Some(ReplayOutcome::Close));
    assert_eq!(press(&mut replay, b"q"), Some(ReplayOutcome::Close));
}

#[test]
fn question_mark_lists_the_keys() {
    let f = fixture(&shell_session(60, 12));
    let mut replay = open(&f.path);
    let mut client = Client::new(80, 24);
    press(&mut replay, b"?");
    client.show(&replay);
    let text = client.text();
    for key in [
        "Space",
        "speed",
        "5 s",
        "30 s",
        "next command",
        "Home End",
        "idle",
        "close",
    ] {
        assert!(text.contains(key), "{key} missing:\n{text}");
    }
    // Any key closes the help and does nothing else.
    assert_eq!(press(&mut replay, b"q"), None);
    client.show(&replay);
    assert!(!client.text().contains("any key closes"));
}

#[test]
fn opening_at_a_command_moment_is_paused_there() {
    let cast = shell_session(60, 12);
    let f = fixture(&cast);
    // 30.3 s as recorded: the third command, past the long pause.
    let mut replay = Replay::open_at(&f.path, PlayerOptions::default(), 30.3).unwrap();
    settle(&mut replay);
    assert!(!replay.is_playing());
    assert_eq!(replay.player().timeline(), Timeline::Compressed);
    let mut client = Client::new(100, 30);
    client.show(&replay);
    let text = client.text();
    assert!(
        text.contains("$ uname -a") && !text.contains("Linux"),
        "{text}"
    );
    assert!(text.contains("00:04 / 00:05"), "{text}");
    assert!(text.contains("‖ paused"), "{text}");
}

#[test]
fn a_cut_short_recording_plays_and_says_so() {
    let mut cast = header(40, 10);
    cast += &event(0.2, "o", "before the crash");
    cast += r#"[0.9, "o", "after th"#;
    let f = fixture(&cast);
    let mut replay = open(&f.path);
    press(&mut replay, b"\x1b[F");
    let mut client = Client::new(100, 30);
    client.show(&replay);
    let text = client.text();
    assert!(text.contains("before the crash"), "{text}");
    assert!(text.contains("cut short at line 3"), "{text}");
    assert!(text.contains("00:00 / 00:00"), "{text}");
}

#[test]
fn a_file_that_is_not_a_recording_is_refused() {
    let f = fixture("not a cast\n");
    let err = Replay::open(&f.path, PlayerOptions::default()).unwrap_err();
    assert!(err.to_string().contains("line 1"), "{err}");
}
