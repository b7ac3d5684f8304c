use std::num::NonZeroU16;
use std::time::Duration;

use super::ScreenModel;
use crate::record::{CommandTracker, Input};

/// Seeded xorshift64*: the same streams on every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn one_in(&mut self, n: usize) -> bool {
        self.below(n) == 0
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len())]
    }
}

const WORDS: &[&str] = &[
    "a",
    "log",
    "connection",
    "from",
    "10.0.0.7",
    "übermäßig",
    "漢字",
    "e\u{301}",
    "\u{200b}",
    "x\t",
    "\t",
    "Ω",
    "-----",
];
const SGRS: &[&str] = &[
    "\x1b[m",
    "\x1b[0m",
    "\x1b[1m",
    "\x1b[31m",
    "\x1b[1;34m",
    "\x1b[38;5;208m",
    "\x1b[38:2:1:2:3m",
    "\x1b[0;7m",
    "\x1b[;4m",
    "\x1b[2m",
    "\x1b[90m",
    "\x1b[44m",
    "\x1b[22m",
];
/// Everything else a target may print between runs of text.
const OTHER: &[&[u8]] = &[
    b"\x1b[H",
    b"\x1b[5;10H",
    b"\x1b[A",
    b"\x1b[3B",
    b"\x1b[2J",
    b"\x1b[J",
    b"\x1bM",
    b"\x1b7",
    b"\x1b8",
    b"\x1b[3;8r",
    b"\x1b[r",
    b"\x1b[1;200r",
    b"\x1b[2;1r",
    b"\x1b[?1049h",
    b"\x1b[?1049l",
    b"\x1b[?47h",
    b"\x1b[?47l",
    b"\x1b[4b",
    b"\x1b]0;title\x07",
    b"\x1bP1$r0m\x1b\\",
    b"\x1b[3\x18",
    b"\x1b]2;x\x1a",
    b"\x07",
    b"\x08",
    b"\x1b[?25l",
    b"\x1b[?2004h",
    b"\x1b[6n",
    b"\x1b(B",
    b"\x1b[K",
    b"\x1b[2K",
    b"\x1b[5S",
    b"\x1b[2T",
    b"\x1b[10;5r\x1b[20H",
    b"\x1bc",
    "\u{9b}".as_bytes(),
    b"\x9c",
    b"\x1b[3\n1m",
    b"\x1b[?6h",
    b"\x1b[?6l",
    b"\x1b[?1049h\x1b[3;5r\x1b[?1049l",
    b"\x1b[12X",
    b"\x1b[3@",
    b"\x1b[2P",
    b"\x1b[L",
    b"\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0",
    b"\x1b[\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\x311m",
];

/// A line of text: words, colours, maybe longer than the screen.
fn line(rng: &mut Rng, out: &mut Vec<u8>) {
    let most = if rng.one_in(8) { 80 } else { 12 };
    let words = rng.below(most);
    for _ in 0..words {
        if rng.one_in(4) {
            out.extend_from_slice(rng.pick(SGRS).as_bytes());
        }
        out.extend_from_slice(rng.pick(WORDS).as_bytes());
        out.push(b' ');
    }
    if rng.one_in(6) {
        out.extend_from_slice(b"\x1b[K");
    }
    if rng.one_in(50) {
        // Invalid UTF-8 and a cut character.
        out.extend_from_slice(b"\xff\xe2\x82");
    }
    out.extend_from_slice(match rng.below(10) {
        0 => b"\n".as_slice(),
        1 => b"\r",
        2 => b"\n\r",
        _ => b"\r\n",
    });
}

/// A random stream: long runs of text (some long enough to skip),
/// broken by cursor motion, scroll regions, the alternate screen,
/// strings and controls.
fn stream(rng: &mut Rng, len: usize) -> Vec<u8> {
    let mut out = Vec::new();
    while out.len() < len {
        let lines = match rng.below(4) {
            0 => rng.below(5),
            1 => rng.below(60),
            _ => rng.below(600),
        };
        for _ in 0..lines {
            line(rng, &mut out);
        }
        for _ in 0..rng.below(4) {
            out.extend_from_slice(OTHER[rng.below(OTHER.len())]);
        }
    }
    out
}

fn assert_same(fast: &vt100::Screen, plain: &vt100::Screen, what: &str) {
    assert_eq!(fast.size(), plain.size(), "{what}: size");
    assert_eq!(
        fast.cursor_position(),
        plain.cursor_position(),
        "{what}: cursor"
    );
    assert_eq!(
        fast.alternate_screen(),
        plain.alternate_screen(),
        "{what}: alternate screen"
    );
    if fast.contents() != plain.contents() {
        let (rows, cols) = fast.size();
        for row in 0..rows.get() {
            let a = fast.contents_between(row, 0, row, cols.get());
            let b = plain.contents_between(row, 0, row, cols.get());
            if a != b {
                panic!(
                    "{what}: {rows}x{cols}, row {row} differs:\n fast  {a:?}\n plain {b:?}\n cursor {:?}",
                    plain.cursor_position()
                );
            }
        }
    }
    for row in 0..fast.size().0.get() {
        assert_eq!(
            fast.row_wrapped(row),
            plain.row_wrapped(row),
            "{what}: row {row} wrapped"
        );
    }
    assert_eq!(
        fast.state_formatted(),
        plain.state_formatted(),
        "{what}: cells, attributes, modes"
    );
}

fn size(rows: usize, cols: usize) -> (NonZeroU16, NonZeroU16) {
    let n = |v: usize| NonZeroU16::new(u16::try_from(v).unwrap_or(1)).unwrap_or(NonZeroU16::MIN);
    (n(rows), n(cols))
}

/// The fast-forwarding model and a plain vt100 parser, fed the same
/// random streams in the same random pieces (cutting sequences and
/// characters anywhere), with resizes between pieces: the same screen
/// after every piece, and the fast one skipped most of the text.
#[test]
fn fast_forward_draws_the_same_screen_as_a_plain_parser() {
    let mut skipped = 0;
    let mut total = 0;
    for seed in 1..=40u64 {
        let mut rng = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15));
        let (rows, cols) = size(1 + rng.below(50), 1 + rng.below(160));
        let mut fast = ScreenModel::new(rows, cols, true);
        let mut plain = ScreenModel::new(rows, cols, false);
        let data = stream(&mut rng, 400_000);
        let mut rest = data.as_slice();
        let mut piece = 0;
        while !rest.is_empty() {
            let len = match rng.below(3) {
                0 => 1 + rng.below(16),
                1 => 1 + rng.below(4096),
                _ => 1 + rng.below(32 * 1024),
            };
            let (now, next) = rest.split_at(len.min(rest.len()));
            fast.process(now);
            plain.process(now);
            rest = next;
            piece += 1;
            let what = format!("seed {seed}, piece {piece}");
            assert_same(fast.screen(), plain.screen(), &what);
            if rng.one_in(40) {
                let (rows, cols) = if rng.one_in(10) {
                    size(1 + rng.below(200), 1 + rng.below(300))
                } else {
                    let (r, c) = fast.screen().size();
                    let r = usize::from(r.get());
                    size(
                        r + rng.below(9) - rng.below(9).min(r - 1),
                        usize::from(c.get()),
                    )
                };
                fast.resize(rows, cols);
                plain.resize(rows, cols);
                assert!(!fast.diverged(), "{what}: a resize pulled other rows");
                assert_same(fast.screen(), plain.screen(), &format!("{what}, resized"));
            }
        }
        skipped += fast.skipped();
        total += data.len() as u64;
    }
    // Not a vacuous comparison: much of the text went unparsed.
    assert!(
        skipped * 4 > total,
        "the fast path skipped {skipped} of {total} bytes"
    );
}

/// Binary output (a compressed file sent to a terminal): random bytes,
/// runs of bytes over 0x7f, characters cut by the pieces, between lines of
/// text. Its invalid UTF-8 is dropped before vte reads it (`utf8`); the
/// screen is the same as a plain parser's after every piece.
#[test]
fn binary_output_draws_the_same_screen_as_a_plain_parser() {
    for seed in 1..=30u64 {
        let mut rng = Rng(seed.wrapping_mul(0xd1b5_4a32_d192_ed03));
        let (rows, cols) = size(1 + rng.below(40), 1 + rng.below(120));
        let mut data = Vec::new();
        while data.len() < 200_000 {
            let n = 1 + rng.below(3000);
            match rng.below(4) {
                0 => data.extend((0..n).map(|_| rng.next() as u8)),
                1 => data.extend((0..n).map(|_| 0x80 | rng.next() as u8)),
                2 => {
                    for _ in 0..n / 8 {
                        let word = rng.pick(&["é", "漢", "\u{1f600}", "Ω", "a", " ", "\r\n"]);
                        let bytes = word.as_bytes();
                        // Now and then only the start of a character.
                        let cut = if rng.one_in(5) {
                            1 + rng.below(bytes.len())
                        } else {
                            bytes.len()
                        };
                        data.extend_from_slice(&bytes[..cut]);
                    }
                }
                _ => line(&mut rng, &mut data),
            }
        }
        let mut fast = ScreenModel::new(rows, cols, true);
        let mut plain = ScreenModel::new(rows, cols, false);
        let mut rest = data.as_slice();
        let mut piece = 0;
        while !rest.is_empty() {
            let len = match rng.below(3) {
                0 => 1 + rng.below(4),
                1 => 1 + rng.below(600),
                _ => 1 + rng.below(32 * 1024),
            };
            let (now, next) = rest.split_at(len.min(rest.len()));
            fast.process(now);
            plain.process(now);
            rest = next;
            piece += 1;
            assert_same(
                fast.screen(),
                plain.screen(),
                &format!("seed {seed}, piece {piece}"),
            );
        }
        assert!(fast.rewrites > 0, "seed {seed}: nothing was rewritten");
    }
}

/// Streams the fast path is for, in the pieces russh delivers: skipped
/// nearly whole, the screen the same, the last character kept for REP.
#[test]
fn long_text_runs_are_skipped_exactly() {
    let mut seq = Vec::new();
    for n in 1..200_000u32 {
        seq.extend_from_slice(format!("{n}\r\n").as_bytes());
    }
    seq.extend_from_slice(b"\x1b[5b");
    let mut rng = Rng(99);
    let mut colours = Vec::new();
    while colours.len() < 1_000_000 {
        colours.extend_from_slice(b"\x1b[2mDec  5\x1b[0m \x1b[1;34mweb1\x1b[0m ");
        line(&mut rng, &mut colours);
        colours.extend_from_slice(b"\x1b[K\r\n");
    }
    colours.extend_from_slice(b"\x1b[31m\x1b[3b");
    for data in [seq, colours] {
        let (rows, cols) = size(24, 80);
        let mut fast = ScreenModel::new(rows, cols, true);
        let mut plain = ScreenModel::new(rows, cols, false);
        for piece in data.chunks(32 * 1024) {
            fast.process(piece);
            plain.process(piece);
        }
        assert_same(fast.screen(), plain.screen(), "end");
        assert!(
            fast.skipped() as usize > data.len() * 8 / 10,
            "skipped {} of {}",
            fast.skipped(),
            data.len()
        );
        // A height increase pulls blank rows from the (theoretical)
        // scrollback both kept.
        let (rows, cols) = size(200, 100);
        fast.resize(rows, cols);
        plain.resize(rows, cols);
        assert_same(fast.screen(), plain.screen(), "grown");
    }
}

/// What a person sees of the command log around a long `cat` in a
/// pty: the command is read at its Enter, its output is captured from
/// the start, the next command typed at the prompt is read, and almost
/// none of the text went through vt100.
#[test]
fn a_long_cat_is_fast_forwarded_and_the_command_log_still_works() {
    let mut t = CommandTracker::new(80, 24);
    t.output(b"\x1b[1muser@web1\x1b[0m:~$ ");
    key_steps(&mut t, b"seq 1 1000000", true);
    let Some(Input::Enter {
        command: Some(command),
        ..
    }) = t.input(b"\r").pop()
    else {
        panic!("the command was not read");
    };
    assert_eq!(command, "seq 1 1000000");
    assert_eq!(t.started(command, Duration::ZERO), None);
    let seq = seq_through_a_pty(&mut t);
    let next = typed_at_prompt(&mut t, "ls -l");
    assert_eq!(next, "ls -l");
    let done = t
        .started(next, Duration::from_secs(9))
        .expect("the cat completed");
    assert_eq!(done.command, "seq 1 1000000");
    assert!(
        done.output.starts_with("1\n2\n3\n"),
        "{:?}",
        done.output.get(..20)
    );
    assert!(done.output_truncated);
    let skipped = t.skipped_output();
    assert!(
        skipped as usize > seq.len() * 95 / 100,
        "parsed {} of {} bytes",
        seq.len() as u64 - skipped,
        seq.len()
    );
}

/// The shell draws its prompt, the person types `keys` (echoed) and
/// presses Enter: the command the tracker read there.
fn typed_at_prompt(t: &mut CommandTracker, keys: &str) -> String {
    t.output(b"\x1b[1muser@web1\x1b[0m:~$ ");
    key_steps(t, keys.as_bytes(), true);
    let Some(Input::Enter {
        command: Some(command),
        ..
    }) = t.input(b"\r").pop()
    else {
        panic!("{keys:?} was not read");
    };
    command
}

/// `cat` of an archive in a terminal: the binary flood is not parsed,
/// the screen model starts over after it, and the next command typed at
/// the prompt the shell draws after it is read; the capture of the cat's
/// output still has its start.
#[test]
fn a_binary_flood_is_not_parsed_and_the_next_command_is_read() {
    let mut t = CommandTracker::new(80, 24);
    let command = typed_at_prompt(&mut t, "cat backup.tar.gz");
    assert_eq!(t.started(command, Duration::ZERO), None);
    t.output(b"\r\n");
    let mut rng = Rng(7);
    let flood: Vec<u8> = (0..2_000_000).map(|_| rng.next() as u8).collect();
    for chunk in flood.chunks(4096) {
        t.output(chunk);
    }
    t.output(b"\r\n");
    let next = typed_at_prompt(&mut t, "reset");
    assert_eq!(next, "reset");
    let done = t
        .started(next, Duration::from_secs(9))
        .expect("the cat completed");
    assert_eq!(done.command, "cat backup.tar.gz");
    assert!(done.output_truncated);
    let skipped = t.skipped_output();
    assert!(
        skipped as usize > flood.len() * 95 / 100,
        "parsed {} of {} bytes",
        flood.len() as u64 - skipped,
        flood.len()
    );
}

/// `ssh -tt bastion web1 'seq 1 1000000'`: a pty, no prompt, no keys;
/// the screen model parses next to nothing of what streams through.
#[test]
fn an_exec_with_a_pty_streams_past_the_model() {
    let mut t = CommandTracker::new(80, 24);
    let seq = seq_through_a_pty(&mut t);
    let skipped = t.skipped_output();
    assert!(
        skipped as usize > seq.len() * 95 / 100,
        "parsed {} of {} bytes",
        seq.len() as u64 - skipped,
        seq.len()
    );
    let screen = t.screen_formatted();
    assert!(screen.windows(7).any(|w| w == b"1000000"), "the last line");
}

/// vt100 0.18.1 panics on some output at the margin of a narrow
/// screen (a variation selector after a wide character there). A
/// client chooses its window size and the target prints what the
/// person asks it to, so this must not bring the session down: the
/// model starts over, and what comes after is read as usual.
#[test]
fn output_that_panics_vt100_gives_a_fresh_screen_not_a_dead_session() {
    let poison = "\u{fe0f}#\n\u{2603}\u{fe0f}\x1b[1;80H \x1b[D\x1b[1b\x1b[M";
    for fast in [true, false] {
        let mut t = if fast {
            CommandTracker::new(2, 2)
        } else {
            CommandTracker::new_plain(2, 2)
        };
        t.output(poison.as_bytes());
        t.resize(80, 24);
        t.output(b"\x1b[H\x1b[2J$ ");
        key_steps(&mut t, b"ls", true);
        assert!(
            matches!(
                t.input(b"\r").pop(),
                Some(Input::Enter { command: Some(c), .. }) if c == "ls"
            ),
            "fast {fast}: the next command is read"
        );
    }
}

/// `seq 1 1000000` as a pty prints it, given to `t` in the pieces a
/// pty hands over (about 4 KiB); returns the bytes.
fn seq_through_a_pty(t: &mut CommandTracker) -> Vec<u8> {
    let mut seq = b"\r\n".to_vec();
    for n in 1..=1_000_000u32 {
        seq.extend_from_slice(format!("{n}\r\n").as_bytes());
    }
    for piece in seq.chunks(4000) {
        t.output(piece);
    }
    seq
}

fn key_steps(t: &mut CommandTracker, keys: &[u8], echo: bool) -> Vec<Input> {
    let mut out = Vec::new();
    for key in keys {
        out.extend(t.input(std::slice::from_ref(key)));
        if echo {
            t.output(std::slice::from_ref(key));
        }
    }
    out
}

/// Two trackers, one plain: a shell session with commands typed at a
/// prompt, typed ahead during long output, a password, resizes and
/// full-screen apps between them. Every Enter gives the same result,
/// every command the same captured output, and the live monitor's
/// snapshot is the same after every piece.
#[test]
fn tracker_results_are_the_same_with_the_fast_path() {
    for seed in 1..=12u64 {
        let mut rng = Rng(seed.wrapping_mul(0x2545_f491_4f6c_dd1d));
        let cols = 20 + rng.below(120) as u16;
        let rows = 2 + rng.below(40) as u16;
        let mut fast = CommandTracker::new(cols, rows);
        let mut plain = CommandTracker::new_plain(cols, rows);
        let mut at = Duration::ZERO;
        for step in 0..60 {
            let what = format!("seed {seed}, step {step}");
            let prompt = b"\x1b[32muser@web1\x1b[0m:~$ ";
            let command = ["cat big.log", "ls -l", "seq 1 100000", "journalctl -f"][rng.below(4)];
            let len = rng.below(200_000);
            let output = stream(&mut rng, len);
            let typed_ahead = rng.one_in(3);
            let mut results = Vec::new();
            for t in [&mut fast, &mut plain] {
                t.output(prompt);
                let mut got = key_steps(t, command.as_bytes(), true);
                got.extend(t.input(b"\r"));
                results.push(got);
            }
            assert_eq!(results[0], results[1], "{what}: the Enter");
            let command_text = match results[0].last() {
                Some(Input::Enter {
                    command: Some(c), ..
                }) => c.clone(),
                other => panic!("{what}: no command read: {other:?}"),
            };
            at += Duration::from_secs(1);
            assert_eq!(
                fast.started(command_text.clone(), at),
                plain.started(command_text, at),
                "{what}: the previous command"
            );
            let mut rest = output.as_slice();
            let mut pieces = 0;
            while !rest.is_empty() {
                let len = 1 + rng.below(32 * 1024);
                let (now, next) = rest.split_at(len.min(rest.len()));
                fast.output(now);
                plain.output(now);
                rest = next;
                pieces += 1;
                if typed_ahead && pieces == 2 {
                    // Keys typed while the output streams.
                    let a = fast.input(b"whoami");
                    let b = plain.input(b"whoami");
                    assert_eq!(a, b, "{what}: keys typed ahead");
                }
                assert_eq!(
                    fast.screen_formatted(),
                    plain.screen_formatted(),
                    "{what}: snapshot"
                );
            }
            // Leave a full-screen app and end the line, as a shell does.
            for t in [&mut fast, &mut plain] {
                t.output(b"\x1b[?1049l\x1b[r\x1b[0m\r\n");
            }
            if typed_ahead {
                let a = fast.input(b"\r");
                let b = plain.input(b"\r");
                assert_eq!(a, b, "{what}: Enter typed ahead");
                if matches!(a.last(), Some(Input::EnterUnseen { .. })) {
                    for t in [&mut fast, &mut plain] {
                        t.output(prompt);
                        t.output(b"whoami\r\n");
                    }
                    assert_eq!(
                        fast.resolve_pending(),
                        plain.resolve_pending(),
                        "{what}: resolved"
                    );
                }
            }
            if rng.one_in(3) {
                let cols = 20 + rng.below(120) as u16;
                let rows = 2 + rng.below(40) as u16;
                fast.resize(cols, rows);
                plain.resize(cols, rows);
            }
            assert_eq!(
                fast.screen_formatted(),
                plain.screen_formatted(),
                "{what}: end"
            );
        }
        assert_eq!(fast.finish(), plain.finish(), "seed {seed}: last command");
    }
}
