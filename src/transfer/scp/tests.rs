use super::*;

/// An event with the borrow gone and neighbouring `Data` merged, so runs
/// over differently split input compare equal.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Seen {
    FileStart(String, u32, u64),
    Data(Vec<u8>),
    FileEnd(String, u64, String),
    SourceError(Option<String>, String, bool),
    DirStart(String, u32),
    DirEnd,
    Unparsable(String),
}

fn record(seen: &mut Vec<Seen>, event: Event<'_>) {
    let owned = match event {
        Event::FileStart { path, mode, size } => Seen::FileStart(path, mode, size),
        Event::Data(bytes) => {
            assert!(!bytes.is_empty(), "empty Data event");
            if let Some(Seen::Data(previous)) = seen.last_mut() {
                previous.extend_from_slice(bytes);
                return;
            }
            Seen::Data(bytes.to_vec())
        }
        Event::FileEnd { path, size, sha256 } => Seen::FileEnd(path, size, sha256),
        Event::SourceError {
            path,
            message,
            fatal,
        } => Seen::SourceError(path, message, fatal),
        Event::DirStart { path, mode } => Seen::DirStart(path, mode),
        Event::DirEnd => Seen::DirEnd,
        Event::Unparsable { reason } => Seen::Unparsable(reason),
    };
    seen.push(owned);
}

/// Feeds the chunks in order, then finishes.
fn run<'c>(
    base: &str,
    chunks: impl IntoIterator<Item = &'c [u8]>,
) -> (Vec<Seen>, Option<(String, u64)>) {
    let mut parser = SourceParser::new(base);
    let mut seen = Vec::new();
    for chunk in chunks {
        parser.feed(chunk, &mut |event| record(&mut seen, event));
    }
    let unfinished = parser.finish();
    (seen, unfinished)
}

fn events(base: &str, stream: &[u8]) -> Vec<Seen> {
    run(base, [stream]).0
}

fn sha256(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

fn file(path: &str, mode: u32, content: &[u8]) -> Vec<Seen> {
    let size = content.len() as u64;
    let mut seen = vec![Seen::FileStart(path.into(), mode, size)];
    if !content.is_empty() {
        seen.push(Seen::Data(content.to_vec()));
    }
    seen.push(Seen::FileEnd(path.into(), size, sha256(content)));
    seen
}

/// splitmix64: a fixed-seed generator, so failures reproduce.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    /// `stream` cut at random places into chunks of 1 to `max` bytes.
    fn chunks<'s>(&mut self, stream: &'s [u8], max: usize) -> Vec<&'s [u8]> {
        let mut chunks = Vec::new();
        let mut rest = stream;
        while !rest.is_empty() {
            let (chunk, after) = rest.split_at((1 + self.below(max)).min(rest.len()));
            chunks.push(chunk);
            rest = after;
        }
        chunks
    }
}

fn tree_stream() -> Vec<u8> {
    let mut stream = Vec::new();
    stream.extend_from_slice(b"T1700000000 0 1700000001 0\nD0755 0 proj\n");
    stream.extend_from_slice(b"T1700000000 0 1700000001 0\nC0644 3 a.rs\nabc\0");
    stream.extend_from_slice(b"C0600 0 empty\n\0");
    stream.extend_from_slice(b"D0700 0 sub\nC0640 2 b\n\n\n\0E\n");
    stream.extend_from_slice(b"E\n");
    stream.extend_from_slice(b"C0644 4 top.txt\n\0C\n\0\0");
    stream.extend_from_slice(b"C0644 2 gone\nxx\x01scp: gone: read error\n");
    stream.extend_from_slice(b"\x01scp: /srv/nope: No such file or directory\n");
    stream
}

fn tree_events() -> Vec<Seen> {
    let mut expected = vec![Seen::DirStart("/srv/proj".into(), 0o755)];
    expected.extend(file("/srv/proj/a.rs", 0o644, b"abc"));
    expected.extend(file("/srv/proj/empty", 0o600, b""));
    expected.push(Seen::DirStart("/srv/proj/sub".into(), 0o700));
    expected.extend(file("/srv/proj/sub/b", 0o640, b"\n\n"));
    expected.push(Seen::DirEnd);
    expected.push(Seen::DirEnd);
    expected.extend(file("/srv/top.txt", 0o644, b"\0C\n\0"));
    expected.push(Seen::FileStart("/srv/gone".into(), 0o644, 2));
    expected.push(Seen::Data(b"xx".to_vec()));
    expected.push(Seen::SourceError(
        Some("/srv/gone".into()),
        "scp: gone: read error".into(),
        false,
    ));
    expected.push(Seen::SourceError(
        None,
        "scp: /srv/nope: No such file or directory".into(),
        false,
    ));
    expected
}

#[test]
fn single_file_is_logged_with_path_size_and_hash() {
    assert_eq!(
        events("/tmp", b"C0644 5 a.txt\nhello\0"),
        file("/tmp/a.txt", 0o644, b"hello")
    );
}

#[test]
fn zero_length_file_has_no_data_and_the_empty_hash() {
    let seen = events("/tmp", b"C0600 0 empty\n\0");
    assert_eq!(seen, file("/tmp/empty", 0o600, b""));
    assert_eq!(
        seen.last(),
        Some(&Seen::FileEnd(
            "/tmp/empty".into(),
            0,
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855".into()
        ))
    );
}

#[test]
fn content_that_looks_like_records_is_content() {
    let content = b"line\nC0644 1 x\n\0E\n\x01oops\nD0755 0 d\n";
    let mut stream = format!("C0644 {} tricky.bin\n", content.len()).into_bytes();
    stream.extend_from_slice(content);
    stream.push(0);
    stream.extend_from_slice(b"C0644 1 next\nz\0");
    let mut expected = file("/up/tricky.bin", 0o644, content);
    expected.extend(file("/up/next", 0o644, b"z"));
    assert_eq!(events("/up", &stream), expected);
}

#[test]
fn recursive_tree_with_times() {
    let stream = b"T1700000000 0 1700000000 0\nD0755 0 docs\n\
        T1700000000 0 1700000000 0\nC0644 2 a.md\nhi\0\
        C0600 3 b.md\nbye\0\
        E\n\
        T1700000000 0 1700000000 0\nC0755 1 run.sh\n#\0";
    let mut expected = vec![Seen::DirStart("/srv/docs".into(), 0o755)];
    expected.extend(file("/srv/docs/a.md", 0o644, b"hi"));
    expected.extend(file("/srv/docs/b.md", 0o600, b"bye"));
    expected.push(Seen::DirEnd);
    expected.extend(file("/srv/run.sh", 0o755, b"#"));
    assert_eq!(events("/srv", stream), expected);
}

#[test]
fn every_split_gives_the_same_events() {
    let stream = tree_stream();
    let expected = tree_events();
    assert_eq!(run("/srv", [&stream[..]]), (expected.clone(), None));

    let one_by_one = run("/srv", stream.chunks(1));
    assert_eq!(one_by_one, (expected.clone(), None), "one byte at a time");

    for cut in 0..=stream.len() {
        let (head, tail) = stream.split_at(cut);
        assert_eq!(
            run("/srv", [head, tail]),
            (expected.clone(), None),
            "cut at {cut}"
        );
    }

    let mut rng = Rng(0x5C9);
    for round in 0..500 {
        let chunks = rng.chunks(&stream, 1 + round % 40);
        assert_eq!(
            run("/srv", chunks),
            (expected.clone(), None),
            "round {round}"
        );
    }
}

#[test]
fn large_file_hash_matches_and_data_is_borrowed_not_copied() {
    let mut rng = Rng(7);
    let content: Vec<u8> = (0..300_000).map(|_| rng.next() as u8).collect();
    let mut stream = format!("C0644 {} big.bin\n", content.len()).into_bytes();
    stream.extend_from_slice(&content);
    stream.push(0);

    let mut parser = SourceParser::new("/data");
    let mut seen = Vec::new();
    for chunk in rng.chunks(&stream, 70_000) {
        let range = chunk.as_ptr_range();
        parser.feed(chunk, &mut |event| {
            if let Event::Data(bytes) = &event {
                let inside = range.start <= bytes.as_ptr() && bytes.as_ptr_range().end <= range.end;
                assert!(inside, "Data must borrow from the chunk fed");
            }
            record(&mut seen, event);
        });
    }
    assert_eq!(parser.finish(), None);
    assert_eq!(seen, file("/data/big.bin", 0o644, &content));
}

#[test]
fn source_errors_after_data_and_at_record_position() {
    let stream = b"C0644 3 a\nabc\x01scp: a: Input/output error\n\
        C0644 1 b\nB\0\
        \x02scp: fatal: lost\n";
    let mut expected = vec![
        Seen::FileStart("/t/a".into(), 0o644, 3),
        Seen::Data(b"abc".to_vec()),
        Seen::SourceError(
            Some("/t/a".into()),
            "scp: a: Input/output error".into(),
            false,
        ),
    ];
    expected.extend(file("/t/b", 0o644, b"B"));
    expected.push(Seen::SourceError(None, "scp: fatal: lost".into(), true));
    assert_eq!(events("/t", stream), expected);

    let fatal = events("/t", b"C0644 1 c\nc\x02broken pipe\n");
    assert_eq!(
        fatal.last(),
        Some(&Seen::SourceError(
            Some("/t/c".into()),
            "broken pipe".into(),
            true
        ))
    );
}

#[test]
fn protocol_breaks_are_unparsable() {
    let long_line = [b"C0644 1 ".as_slice(), &[b'n'; 5000]].concat();
    let cases: [(&str, &[u8], &str); 14] = [
        ("dot-dot name", b"C0644 1 ../x\nx\0", "bad name in C record"),
        ("name is ..", b"D0755 0 ..\n", "bad name in D record"),
        ("name is .", b"C0644 1 .\nx\0", "bad name in C record"),
        ("slash in name", b"C0644 1 a/b\nx\0", "bad name in C record"),
        ("empty name", b"C0644 1 \nx\0", "bad name in C record"),
        ("nul in name", b"C0644 1 a\0b\nx\0", "bad name in C record"),
        (
            "size not a number",
            b"C0644 abc f\n",
            "bad size in C record",
        ),
        (
            "size past off_t",
            b"C0644 9223372036854775808 f\n",
            "bad size in C record",
        ),
        ("mode not octal", b"C0684 1 f\nx\0", "bad mode in C record"),
        ("mode too short", b"C644 1 f\nx\0", "bad mode in C record"),
        ("5000-byte line", &long_line, "record line over 4096 bytes"),
        ("E at top", b"E\n", "E record with no directory to leave"),
        ("unknown record", b"X123\n", "unknown record type 0x58"),
        ("empty line", b"\n", "empty record line"),
    ];
    for (what, stream, reason) in cases {
        assert_eq!(
            events("/t", stream),
            [Seen::Unparsable(reason.into())],
            "{what}"
        );
    }

    // A record line of exactly 4096 bytes is still fine.
    let name = "n".repeat(MAX_LINE - "C0644 1 ".len());
    let stream = format!("C0644 1 {name}\nx\0");
    assert_eq!(events("", stream.as_bytes()), file(&name, 0o644, b"x"));
}

#[test]
fn bad_ack_stops_and_finish_reports_the_file() {
    let (seen, unfinished) = run("/t", [b"C0644 1 f\nxZC0644 1 g\ny\0".as_slice()]);
    assert_eq!(
        seen,
        [
            Seen::FileStart("/t/f".into(), 0o644, 1),
            Seen::Data(b"x".to_vec()),
            Seen::Unparsable("byte 0x5a after file data instead of an ack".into()),
        ]
    );
    assert_eq!(unfinished, Some(("/t/f".into(), 1)));
}

#[test]
fn feeding_after_unparsable_emits_nothing() {
    let mut parser = SourceParser::new("/t");
    let mut seen = Vec::new();
    parser.feed(b"E\n", &mut |event| record(&mut seen, event));
    assert_eq!(seen.len(), 1);
    for chunk in [
        &b"C0644 1 ok\nx\0"[..],
        b"D0755 0 d\n",
        b"\x01msg\n",
        b"E\n",
    ] {
        parser.feed(chunk, &mut |event| record(&mut seen, event));
    }
    assert_eq!(
        seen,
        [Seen::Unparsable(
            "E record with no directory to leave".into()
        )]
    );
    assert_eq!(parser.finish(), None);
}

#[test]
fn deep_directory_stack_is_bounded() {
    let level = b"D0755 0 dddddddddddddddddddddddddddddddddddddddddddddddddddddddddddd\n";
    let stream = level.repeat(MAX_DIR_PATH / 60 + 10);
    let seen = events("/t", &stream);
    assert_eq!(
        seen.last(),
        Some(&Seen::Unparsable("directory path over 16 KiB".into()))
    );
    assert!(seen.len() > 200, "real depths must pass: {}", seen.len());
}

#[test]
fn finish_reports_the_file_in_progress() {
    let (seen, unfinished) = run("/t", [&b"C0644 10 f\n0123"[..], b"45"]);
    assert_eq!(
        seen,
        [
            Seen::FileStart("/t/f".into(), 0o644, 10),
            Seen::Data(b"012345".to_vec())
        ]
    );
    assert_eq!(unfinished, Some(("/t/f".into(), 6)));

    // All bytes in but no ack, or half an error line: still unfinished.
    assert_eq!(
        run("/t", [&b"C0644 2 f\nab"[..]]).1,
        Some(("/t/f".into(), 2))
    );
    assert_eq!(
        run("/t", [&b"C0644 2 f\nab\x01half"[..]]).1,
        Some(("/t/f".into(), 2))
    );

    // Between records, or halfway through a record line, nothing is.
    assert_eq!(run("/t", [&b"C0644 1 f\nx\0"[..]]).1, None);
    assert_eq!(run("/t", [&b"C0644 1 f"[..]]), (vec![], None));

    // finish ends the parser.
    let mut parser = SourceParser::new("/t");
    parser.feed(b"C0644 3 f\nab", &mut |_| {});
    assert_eq!(parser.finish(), Some(("/t/f".into(), 2)));
    assert_eq!(parser.finish(), None);
    let mut after = 0;
    parser.feed(b"c\0C0644 1 g\nx\0", &mut |_| after += 1);
    assert_eq!(after, 0);
}

#[test]
fn logged_paths_follow_the_base() {
    let stream = b"D0755 0 d\nC0644 1 f\nx\0E\n";
    let cases = [
        ("", "d", "d/f"),
        (".", "d", "d/f"),
        ("/", "/d", "/d/f"),
        ("/tmp/", "/tmp/d", "/tmp/d/f"),
        ("//srv//up//", "/srv/up/d", "/srv/up/d/f"),
        ("rel/dir", "rel/dir/d", "rel/dir/d/f"),
    ];
    for (base, dir, path) in cases {
        let mut expected = vec![Seen::DirStart(dir.into(), 0o755)];
        expected.extend(file(path, 0o644, b"x"));
        expected.push(Seen::DirEnd);
        assert_eq!(events(base, stream), expected, "base {base:?}");
    }
}

#[test]
fn download_base_is_the_parent() {
    let cases = [
        ("/etc/hostname", "/etc"),
        ("hostname", "."),
        ("/x", "/"),
        ("a/b", "a"),
        ("a//b", "a"),
        ("/etc/", "/"),
        ("/srv/data/", "/srv"),
        ("/", "/"),
        ("", "."),
        ("~/notes.txt", "~"),
        ("/var/log/*.log", "/var/log"),
    ];
    for (path, base) in cases {
        assert_eq!(download_base(path), base, "{path:?}");
    }
    assert_eq!(
        events(&download_base("/etc/hostname"), b"C0644 2 hostname\nh\n\0"),
        file("/etc/hostname", 0o644, b"h\n")
    );
}

#[test]
fn parse_command_accepts_what_openssh_sends() {
    use Direction::{Download, Upload};
    let cases = [
        ("scp -t /tmp", Upload, false, "/tmp"),
        ("scp -t -- '/tmp/my file'", Upload, false, "/tmp/my file"),
        ("scp -r -d -t -- /srv", Upload, true, "/srv"),
        ("scp -r -t -- /tmp/x", Upload, true, "/tmp/x"),
        ("scp -v -d -t /tmp", Upload, false, "/tmp"),
        ("scp -pt path", Upload, false, "path"),
        ("scp -rpt dir", Upload, true, "dir"),
        ("/usr/bin/scp -t .", Upload, false, "."),
        ("scp -t -- -dash", Upload, false, "-dash"),
        ("scp -t my\\ file", Upload, false, "my file"),
        ("scp -t 'it'\\''s'", Upload, false, "it's"),
        ("  scp\t-t   /a  ", Upload, false, "/a"),
        ("scp -f /etc/passwd", Download, false, "/etc/passwd"),
        ("scp -v -f -- \"x y\"", Download, false, "x y"),
        ("scp -r -f \"a\\\"b\\\\c\\d\"", Download, true, "a\"b\\c\\d"),
        ("scp -f ~/notes.txt", Download, false, "~/notes.txt"),
        ("scp -f /var/log/*.log", Download, false, "/var/log/*.log"),
        ("scp -f a#b", Download, false, "a#b"),
        ("scp -f 'ünï cødé'", Download, false, "ünï cødé"),
    ];
    for (command, direction, recursive, path) in cases {
        let expected = ScpCommand {
            direction,
            recursive,
            directory: command.contains(" -d "),
            path: path.into(),
        };
        assert_eq!(parse_command(command), Some(expected), "{command}");
    }
}

#[test]
fn parse_command_rejects_everything_else() {
    let cases = [
        "scp -t /a /b",
        "scp -t",
        "scp -t --",
        "scp -t ''",
        "scp -x -t /a",
        "scp -P 22 -t /a",
        "rsync --server -vlogDtpre.iLsfxC . /a",
        "scp -t /a; reboot",
        "scp -t /a;reboot",
        "scp -t /a && reboot",
        "scp -t /a | tee x",
        "scp -t /a > /dev/null",
        "scp -t $(reboot)",
        "scp -t `reboot`",
        "scp -t \"$(reboot)\"",
        "scp -t \"`reboot`\"",
        "scp -t $HOME",
        "scp -f '$HOME;`x`'",
        "scp -t '/a&b'",
        "scp -t /a\\|b",
        "scp -t *",
        "scp -t ?x",
        "scp -t [a]",
        "scp -t -- *",
        "scp -t /a # comment",
        "scp -t /a\nreboot",
        "scp -t '/a\nb'",
        "scp -t /a\r",
        "scp -f -t /a",
        "scp -ft /a",
        "scp -r /a",
        "scp /a /b",
        "scp -t /a -r",
        "scp -t 'unterminated",
        "scp -t \"unterminated",
        "scp -t trailing\\",
        "sudo scp -t /a",
        "FOO=1 scp -t /a",
        "/usr/local/bin/scp -t /a",
        "scpx -t /a",
        "scp",
        "",
        "   ",
    ];
    for command in cases {
        assert_eq!(parse_command(command), None, "{command:?}");
    }
}

/// A well-formed stream of random records with up to three random byte
/// edits, so fuzz runs reach the states deep in the protocol.
fn plausible_stream(rng: &mut Rng) -> Vec<u8> {
    let mut stream = Vec::new();
    let mut depth = 0;
    for _ in 0..rng.below(12) {
        match rng.below(6) {
            0 | 1 => {
                let size = rng.below(40);
                let record = format!("C0644 {size} f{}\n", rng.below(9));
                stream.extend_from_slice(record.as_bytes());
                stream.extend((0..size).map(|_| rng.next() as u8));
                let verdict: &[u8] = if rng.below(4) == 0 {
                    b"\x01read error\n"
                } else {
                    b"\0"
                };
                stream.extend_from_slice(verdict);
            }
            2 => {
                stream.extend_from_slice(b"D0755 0 d\n");
                depth += 1;
            }
            3 if depth > 0 => {
                stream.extend_from_slice(b"E\n");
                depth -= 1;
            }
            3 | 4 => stream.extend_from_slice(b"T1700000000 0 1700000000 0\n"),
            _ => stream.extend_from_slice(b"\x01scp: warning\n"),
        }
    }
    for _ in 0..rng.below(4) {
        if stream.is_empty() {
            break;
        }
        let at = rng.below(stream.len());
        match rng.below(3) {
            0 => stream[at] = rng.next() as u8,
            1 => {
                stream.remove(at);
            }
            _ => stream.insert(at, rng.next() as u8),
        }
    }
    stream
}

/// Record fragments and random bytes in any order.
fn soup_stream(rng: &mut Rng) -> Vec<u8> {
    const PIECES: [&[u8]; 14] = [
        b"C0644 ",
        b"D0755 0 ",
        b"E\n",
        b"T1 0 2 0\n",
        b"\x01err\n",
        b"\x02fatal\n",
        b"3 ",
        b"18446744073709551616 ",
        b"name",
        b"..",
        b"/",
        b"\n",
        b"\0",
        b"xyz",
    ];
    let mut stream = Vec::new();
    for _ in 0..rng.below(64) {
        if rng.below(3) == 0 {
            stream.extend((0..rng.below(20)).map(|_| rng.next() as u8));
        } else {
            stream.extend_from_slice(PIECES[rng.below(PIECES.len())]);
        }
    }
    stream
}

#[test]
fn random_input_never_panics() {
    let mut rng = Rng(2024);
    for _ in 0..2000 {
        let stream = if rng.below(2) == 0 {
            plausible_stream(&mut rng)
        } else {
            soup_stream(&mut rng)
        };
        let max = 1 + rng.below(16);
        let chunks = rng.chunks(&stream, max);
        let (seen, unfinished) = run(&download_base("/x/y"), chunks);

        // What the docs promise, whatever the input: every started file
        // is closed exactly once, and nothing follows an Unparsable.
        let mut open: Option<u64> = None;
        for (index, event) in seen.iter().enumerate() {
            match event {
                Seen::FileStart(..) => assert_eq!(open.replace(0), None, "{seen:?}"),
                Seen::Data(bytes) => {
                    let so_far = open.as_mut().expect("Data inside a file");
                    *so_far += bytes.len() as u64;
                }
                Seen::FileEnd(..) | Seen::SourceError(Some(_), ..) => {
                    assert!(open.take().is_some(), "{seen:?}");
                }
                Seen::Unparsable(_) => assert_eq!(index + 1, seen.len(), "{seen:?}"),
                Seen::SourceError(None, ..) | Seen::DirStart(..) | Seen::DirEnd => {
                    assert_eq!(open, None, "{seen:?}");
                }
            }
        }
        assert_eq!(open.is_some(), unfinished.is_some(), "{seen:?}");
    }
}
