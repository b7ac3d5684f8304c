//! Unit tests of the pieces without a server: framing both ways in any
//! split, inline commands, the limits, secrets masked, reply summaries,
//! and the order of the proxy's answers in a pipeline.

use std::time::Duration;

use bytes::Bytes;
use zeroize::Zeroizing;

use super::command::{Action, classify, hello_auth};
use super::reply::{Answer, CHUNK, MAX_DEPTH, Many, Piece, Replies};
use super::request::{MAX_ARGS, MAX_COMMAND, MAX_INLINE, Request, Requests, split_args};
use super::resp::{self, MAX_BULK, RespError};
use super::text::{self, describe, outcome};
use super::track::{Owed, Pending, Settled, TrackError, Tracker};
use super::{Outcome, ProxyError, Upstream};

fn args(words: &[&str]) -> Vec<Bytes> {
    words
        .iter()
        .map(|w| Bytes::copy_from_slice(w.as_bytes()))
        .collect()
}

/// A command as a client library sends it.
fn cmd(words: &[&str]) -> Vec<u8> {
    let words: Vec<&[u8]> = words.iter().map(|w| w.as_bytes()).collect();
    let mut out = Vec::new();
    resp::command_into(&words, &mut out);
    out
}

/// Everything the client decoder makes of `bytes` fed `step` at a time.
fn requests(bytes: &[u8], step: usize) -> Result<Vec<Request>, RespError> {
    let mut decoder = Requests::new();
    let mut got = Vec::new();
    for piece in bytes.chunks(step.max(1)) {
        decoder.push(piece);
        while let Some(request) = decoder.next_request()? {
            got.push(request);
        }
    }
    Ok(got)
}

fn requests_split(bytes: &[u8], at: usize) -> Result<Vec<Request>, RespError> {
    let mut decoder = Requests::new();
    let mut got = Vec::new();
    for piece in [&bytes[..at], &bytes[at..]] {
        decoder.push(piece);
        while let Some(request) = decoder.next_request()? {
            got.push(request);
        }
    }
    Ok(got)
}

/// Everything the server decoder makes of `bytes` fed `step` at a time.
fn pieces(bytes: &[u8], step: usize) -> Result<Vec<Piece>, RespError> {
    let mut decoder = Replies::new();
    let mut got = Vec::new();
    for piece in bytes.chunks(step.max(1)) {
        decoder.push(piece);
        while let Some(piece) = decoder.next_piece()? {
            got.push(piece);
        }
    }
    Ok(got)
}

/// The forwarded bytes and the answers of a run of pieces; checks that
/// each reply starts before its data and ends once.
fn replay(pieces: &[Piece]) -> (Vec<u8>, Vec<Answer>, Vec<bool>) {
    let (mut data, mut answers, mut starts) = (Vec::new(), Vec::new(), Vec::new());
    let mut open = false;
    for piece in pieces {
        match piece {
            Piece::Start { push } => {
                assert!(!open, "a reply starts inside another");
                open = true;
                starts.push(*push);
            }
            Piece::Data(bytes) => {
                assert!(open, "data outside a reply");
                data.extend_from_slice(bytes);
            }
            Piece::End(answer) => {
                assert!(open, "an end without a start");
                open = false;
                answers.push(answer.clone());
            }
        }
    }
    assert!(!open, "a reply left open");
    (data, answers, starts)
}

// ---- The client's side ----

#[test]
fn commands_frame_the_same_in_any_split() {
    let mut stream = cmd(&["SET", "k", "a value\r\nwith CRLF"]);
    stream.extend(b"*0\r\n*-1\r\n"); // ignored, as by the server
    stream.extend(b"GET  k\r\n\r\n"); // inline, then an empty line
    resp::command_into(&[b"", b"\0binary\xff"], &mut stream);
    stream.extend(b"set \"a b\" 'c\\'d' \"\\x41\\n\"\n");
    let want = vec![
        Request::Command(args(&["SET", "k", "a value\r\nwith CRLF"])),
        Request::Command(args(&["GET", "k"])),
        Request::Command(vec![Bytes::new(), Bytes::from_static(b"\0binary\xff")]),
        Request::Command(args(&["set", "a b", "c'd", "A\n"])),
    ];
    for at in 0..=stream.len() {
        assert_eq!(requests_split(&stream, at).unwrap(), want, "split at {at}");
    }
    for step in 1..8 {
        assert_eq!(requests(&stream, step).unwrap(), want, "step {step}");
    }
}

#[test]
fn inline_commands_split_as_the_server_splits_them() {
    let split = |s: &[u8]| split_args(s).map(|v| v.iter().map(|b| b.to_vec()).collect::<Vec<_>>());
    let words = |w: &[&[u8]]| Ok(w.iter().map(|b| b.to_vec()).collect::<Vec<_>>());
    assert_eq!(split(b"  SET\tk  v "), words(&[b"SET", b"k", b"v"]));
    assert_eq!(split(b"a\"b c\"d x"), Err(RespError::Quotes));
    assert_eq!(split(b"a\"b c\" x"), words(&[b"ab c", b"x"]));
    assert_eq!(
        split(b"\"\\x00\\xzz\\t\\\\\\\"\" ''"),
        words(&[b"\0xzz\t\\\"", b""])
    );
    assert_eq!(split(b"'it\\'s' '\\n'"), words(&[b"it's", b"\\n"]));
    assert_eq!(split(b"\"open"), Err(RespError::Quotes));
    assert_eq!(split(b"'open"), Err(RespError::Quotes));
    assert_eq!(split(b"\"a\"b"), Err(RespError::Quotes));
    // A vertical tab separates words only where `isspace` is asked.
    assert_eq!(split(b"\x0ba\x0bb \"c\"\x0b"), words(&[b"a\x0bb", b"c"]));
    // The server reads a C string: a NUL ends the line.
    assert_eq!(split(b"GET k\0 FLUSHALL"), words(&[b"GET", b"k"]));
    assert_eq!(split(b""), words(&[]));
}

#[test]
fn an_over_long_command_is_skipped_unread_and_the_next_goes_on() {
    let big = "x".repeat(MAX_COMMAND);
    let mut stream = cmd(&["SET", "k", &big]);
    let len = stream.len();
    stream.extend(cmd(&["GET", "k"]));
    for step in [7, 64 << 10] {
        let got = requests(&stream, step).unwrap();
        assert_eq!(
            got,
            vec![
                Request::TooLong {
                    head: args(&["SET", "k"]),
                    len
                },
                Request::Command(args(&["GET", "k"])),
            ]
        );
    }
    // The limit counts the whole command: just under it is read.
    let fits = "y".repeat(MAX_COMMAND - 64);
    let got = requests(&cmd(&["SET", "k", &fits]), 1 << 20).unwrap();
    assert!(matches!(&got[..], [Request::Command(a)] if a[2].len() == fits.len()));
    // So are the arguments: each costs memory beyond its bytes.
    let mut many = resp::array_header(MAX_ARGS + 1);
    many.extend(b"$4\r\nMSET\r\n");
    for _ in 0..MAX_ARGS {
        many.extend(b"$0\r\n\r\n");
    }
    let got = requests(&many, 1 << 16).unwrap();
    assert!(
        matches!(&got[..], [Request::TooLong { head, len }] if head == &args(&["MSET", "", "", ""]) && *len == many.len()),
        "{:?}",
        got.first().map(|r| matches!(r, Request::Command(_)))
    );
}

#[test]
fn client_framing_errors() {
    let bad = |bytes: &[u8]| requests(bytes, 1).unwrap_err();
    assert_eq!(bad(b"*1\r\n:1\r\n"), RespError::NotBulk(':'));
    assert_eq!(bad(b"*01\r\n"), RespError::BadNumber("01".into()));
    assert_eq!(bad(b"*+1\r\n"), RespError::BadNumber("+1".into()));
    assert_eq!(bad(b"*1\r\n$-1\r\n"), RespError::BadNumber("-1".into()));
    assert_eq!(bad(b"*1\r\n$3\r\nabcXY"), RespError::NoCrlf);
    let over = format!("*1\r\n${}\r\n", MAX_BULK + 1);
    assert!(matches!(bad(over.as_bytes()), RespError::BulkTooLong(_)));
    assert!(matches!(
        bad(&[b'*'; 40]),
        RespError::LongLine("array header", _)
    ));
    // An inline command longer than the server's own limit, with no end.
    let long = vec![b'a'; MAX_INLINE + 1];
    assert!(matches!(
        bad(&long),
        RespError::LongLine("inline command", _)
    ));
    assert_eq!(bad(b"GET \"k\n"), RespError::Quotes);
    // A skipped command's framing is still checked.
    let mut skipped = cmd(&["SET", "k", &"z".repeat(MAX_COMMAND)]);
    let at = skipped.len() - 2;
    skipped[at] = b'X';
    assert_eq!(requests(&skipped, 1 << 16).unwrap_err(), RespError::NoCrlf);
}

// ---- The server's side ----

#[test]
fn replies_frame_the_same_in_any_split() {
    let stream: &[u8] = b"+OK\r\n-ERR no such key\r\n:-42\r\n$5\r\nhello\r\n$-1\r\n*-1\r\n*0\r\n\
        *3\r\n$1\r\na\r\n*2\r\n:1\r\n*0\r\n+x\r\n\
        _\r\n,3.14\r\n#t\r\n(123456789012345678901234567890\r\n!9\r\nSYNTAX no\r\n\
        =7\r\ntxt:abc\r\n%1\r\n+k\r\n:1\r\n~2\r\n:1\r\n:2\r\n\
        |1\r\n+ttl\r\n:9\r\n$1\r\nv\r\n>2\r\n$10\r\ninvalidate\r\n*1\r\n$1\r\nk\r\n\
        *2\r\n|1\r\n+a\r\n+b\r\n:1\r\n:2\r\n";
    let want = vec![
        Answer::Status("OK".into()),
        Answer::Error("ERR no such key".into()),
        Answer::Integer(-42),
        Answer::Bulk {
            head: Bytes::from_static(b"hello"),
            len: 5,
        },
        Answer::Null,
        Answer::Null,
        Answer::Many {
            kind: Many::Array,
            len: 0,
        },
        Answer::Many {
            kind: Many::Array,
            len: 3,
        },
        Answer::Null,
        Answer::Double("3.14".into()),
        Answer::Boolean(true),
        Answer::BigNumber("123456789012345678901234567890".into()),
        Answer::Error("SYNTAX no".into()),
        Answer::Bulk {
            head: Bytes::from_static(b"abc"),
            len: 3,
        },
        Answer::Many {
            kind: Many::Map,
            len: 1,
        },
        Answer::Many {
            kind: Many::Set,
            len: 2,
        },
        // An attribute describes the value after it, which is the reply.
        Answer::Bulk {
            head: Bytes::from_static(b"v"),
            len: 1,
        },
        Answer::Many {
            kind: Many::Push,
            len: 2,
        },
        Answer::Many {
            kind: Many::Array,
            len: 2,
        },
    ];
    let mut pushes = vec![false; want.len()];
    pushes[17] = true;
    for at in 0..=stream.len() {
        let mut decoder = Replies::new();
        let mut got = Vec::new();
        for part in [&stream[..at], &stream[at..]] {
            decoder.push(part);
            while let Some(piece) = decoder.next_piece().unwrap() {
                got.push(piece);
            }
        }
        let (data, answers, starts) = replay(&got);
        assert_eq!(data, stream, "split at {at}");
        assert_eq!(answers, want, "split at {at}");
        assert_eq!(starts, pushes);
        assert!(decoder.at_boundary());
    }
    for step in 1..6 {
        let (data, answers, _) = replay(&pieces(stream, step).unwrap());
        assert_eq!((data.as_slice(), answers), (stream, want.clone()));
    }
}

#[test]
fn big_replies_stream_in_bounded_pieces() {
    let len = 3 * CHUNK + 17;
    let mut stream = format!("${len}\r\n").into_bytes();
    stream.extend(std::iter::repeat_n(b'v', len));
    stream.extend(b"\r\n");
    // One read holding all of it still comes out in pieces.
    let got = pieces(&stream, stream.len()).unwrap();
    assert!(got.iter().all(|p| match p {
        Piece::Data(d) => d.len() <= CHUNK,
        _ => true,
    }));
    let (data, answers, _) = replay(&got);
    assert_eq!(data, stream);
    let [Answer::Bulk { head, len: l }] = &answers[..] else {
        panic!("{answers:?}")
    };
    assert_eq!((head.len(), *l), (super::reply::PREVIEW, len));
    // The body goes before it has all arrived.
    let mut decoder = Replies::new();
    decoder.push(&stream[..1000]);
    let mut forwarded = 0;
    while let Some(piece) = decoder.next_piece().unwrap() {
        if let Piece::Data(d) = piece {
            forwarded += d.len();
        }
    }
    assert_eq!(forwarded, 1000);
    assert!(!decoder.at_boundary());
}

#[test]
fn server_framing_errors() {
    let bad = |bytes: &[u8]| pieces(bytes, 3).unwrap_err();
    assert_eq!(bad(b"?\r\n"), RespError::UnknownType('?'));
    assert_eq!(bad(b"$3\r\nabcd\r\n"), RespError::NoCrlf);
    assert_eq!(bad(b"$-2\r\n"), RespError::BadNumber("-2".into()));
    assert_eq!(bad(b"*-2\r\n"), RespError::BadValue('*'));
    assert_eq!(bad(b"%-1\r\n"), RespError::BadValue('%'));
    assert_eq!(bad(b"+a\rb\r\n"), RespError::BadValue('+'));
    assert_eq!(bad(b"#x\r\n"), RespError::BadValue('#'));
    assert_eq!(bad(b"=3\r\nabc\r\n"), RespError::BadValue('='));
    assert_eq!(bad(b"*?\r\n"), RespError::BadNumber("?".into()));
    assert_eq!(bad(b":1.5\r\n"), RespError::BadNumber("1.5".into()));
    let over = format!("${}\r\n", MAX_BULK + 1);
    assert!(matches!(bad(over.as_bytes()), RespError::BulkTooLong(_)));
    assert!(matches!(bad(&[b':'; 40]), RespError::LongLine(..)));
    let deep = "*1\r\n".repeat(MAX_DEPTH + 1);
    assert_eq!(bad(deep.as_bytes()), RespError::TooDeep(MAX_DEPTH));
    let fine = format!("{}:1\r\n", "*1\r\n".repeat(MAX_DEPTH));
    assert_eq!(replay(&pieces(fine.as_bytes(), 5).unwrap()).1.len(), 1);
}

// ---- What the log and the rules read ----

#[test]
fn commands_read_as_redis_cli_quotes_them() {
    let described = |w: &[&str]| describe(&args(w));
    assert_eq!(described(&["set", "k", "v"]), "SET k v");
    assert_eq!(described(&["flushall", "async"]), "FLUSHALL async");
    assert_eq!(
        described(&["client", "kill", "id", "7"]),
        "CLIENT KILL id 7"
    );
    assert_eq!(
        described(&["set", "a b", "", "it's", "\"q\"", "x\\y"]),
        r#"SET "a b" "" "it's" "\"q\"" "x\\y""#
    );
    assert_eq!(
        described(&["set", "caf\u{e9}", "l1\nl2\t\x07\x08\r\x01"]),
        r#"SET "caf\xc3\xa9" "l1\nl2\t\a\b\r\x01""#
    );
    // The text reads back into the same words: nothing inside a word can
    // pass for a boundary.
    let words = args(&["SET", "k\" FLUSHALL \"", "x' y", "\\x41", "\u{7f}\u{0}", ""]);
    let again = split_args(describe(&words).as_bytes()).unwrap();
    assert_eq!(again, words);
}

/// What the fuzz target checks, briefly: any words, quoted, read back as
/// the same words (the name in any case).
#[test]
fn any_command_text_reads_back_into_its_words() {
    use rand::{Rng, SeedableRng};
    let mut rng = rand::rngs::StdRng::seed_from_u64(16379);
    let alphabet = b"aZ09 \t\r\n\"'\\\x00\x07\x0b\x7f\xc3\xa9*$:-";
    for _ in 0..2000 {
        let words: Vec<Bytes> = (0..rng.random_range(1..6))
            .map(|_| {
                (0..rng.random_range(0..6))
                    .map(|_| alphabet[rng.random_range(0..alphabet.len())])
                    .collect::<Vec<u8>>()
                    .into()
            })
            .collect();
        let described = describe(&words);
        if described.contains(text::MASK) {
            continue;
        }
        let again = split_args(described.as_bytes()).unwrap();
        assert_eq!(again.len(), words.len(), "{described}");
        for (read, word) in again.iter().zip(&words) {
            assert!(read.eq_ignore_ascii_case(word), "{described}");
        }
    }
}

#[test]
fn secrets_are_masked() {
    let described = |w: &[&str]| describe(&args(w));
    assert_eq!(described(&["auth", "hunter2"]), "AUTH ***");
    assert_eq!(described(&["AUTH", "app", "hunter2"]), "AUTH ***");
    assert_eq!(described(&["AUTH"]), "AUTH");
    assert_eq!(
        described(&["hello", "3", "auth", "app", "hunter2", "setname", "me"]),
        "HELLO 3 auth app *** setname me"
    );
    assert_eq!(
        described(&[
            "MIGRATE", "h", "6379", "", "0", "5000", "COPY", "AUTH2", "u", "hunter2", "KEYS",
            "auth", "a"
        ]),
        "MIGRATE h 6379 \"\" 0 5000 COPY AUTH2 u *** KEYS auth a"
    );
    assert_eq!(
        described(&["MIGRATE", "h", "6379", "k", "0", "5000", "auth", "hunter2"]),
        "MIGRATE h 6379 k 0 5000 auth ***"
    );
    assert_eq!(
        described(&[
            "acl", "setuser", "bob", "on", ">hunter2", "<old", "#abc", "!def", "~k*", "+get"
        ]),
        "ACL SETUSER bob on >*** <*** #*** !*** ~k* +get"
    );
    assert_eq!(
        described(&[
            "config",
            "set",
            "maxmemory",
            "1gb",
            "REQUIREPASS",
            "hunter2",
            "masterauth",
            "x y"
        ]),
        "CONFIG SET maxmemory 1gb REQUIREPASS *** masterauth ***"
    );
    // Not a secret where it is not one.
    assert_eq!(described(&["SET", "auth", "hunter2"]), "SET auth hunter2");
}

#[test]
fn long_commands_are_cut_for_the_log() {
    let short = "SET k v";
    assert_eq!(text::logged(short), short);
    let long = format!("SET k {}", "\u{e9}".repeat(40 << 10));
    let logged = text::logged(&long);
    assert!(logged.len() < text::MAX_LOGGED + 40, "{}", logged.len());
    assert!(logged.ends_with(&format!(" … [{} bytes in all]", long.len())));
}

#[test]
fn replies_are_summed_up_as_redis_cli_shows_them() {
    let done = |s: &str| Outcome::Done(s.into());
    assert_eq!(outcome(&Answer::Status("OK".into())), done("OK"));
    assert_eq!(
        outcome(&Answer::Error("WRONGTYPE Operation".into())),
        Outcome::Error("WRONGTYPE Operation".into())
    );
    assert_eq!(outcome(&Answer::Integer(3)), done("(integer) 3"));
    assert_eq!(outcome(&Answer::Null), done("(nil)"));
    assert_eq!(
        outcome(&Answer::Bulk {
            head: Bytes::from_static(b"va\"l\n"),
            len: 5
        }),
        done(r#""va\"l\n""#)
    );
    let head = Bytes::from(vec![b'x'; 1024]);
    assert_eq!(
        outcome(&Answer::Bulk { head, len: 5000 }),
        done(&format!("\"{}\"… (5000 bytes)", "x".repeat(200)))
    );
    let many = |kind, len| outcome(&Answer::Many { kind, len });
    assert_eq!(many(Many::Array, 12), done("(array) 12 items"));
    assert_eq!(many(Many::Array, 1), done("(array) 1 item"));
    assert_eq!(many(Many::Array, 0), done("(empty array)"));
    assert_eq!(many(Many::Map, 7), done("(map) 7 items"));
    assert_eq!(outcome(&Answer::Boolean(false)), done("(false)"));
    assert_eq!(outcome(&Answer::Double("1.5".into())), done("(double) 1.5"));
}

// ---- What the proxy does by the command's name ----

#[test]
fn commands_the_proxy_answers_or_refuses() {
    assert_eq!(classify(args(&["auth", "x"])), Action::Auth);
    assert_eq!(classify(args(&["Quit"])), Action::Quit);
    for refused in [
        &["SUBSCRIBE", "c"][..],
        &["psubscribe", "c*"],
        &["ssubscribe", "c"],
        &["UNSUBSCRIBE"],
        &["monitor"],
        &["sync"],
        &["PSYNC", "?", "-1"],
        &["replconf", "ack", "0"],
        &["reset"],
        &["client", "reply", "off"],
        &["CLIENT", "REPLY", "skip"],
        &["CLIENT", "REPLY"],
    ] {
        assert!(
            matches!(classify(args(refused)), Action::Refuse(_)),
            "{refused:?}"
        );
    }
    for passed in [
        &["CLIENT", "REPLY", "on"][..],
        &["CLIENT", "KILL", "ID", "3"],
        &["FLUSHALL"],
        &["HELLO", "3"],
    ] {
        assert_eq!(classify(args(passed)), Action::Forward(args(passed)));
    }
    // HELLO's AUTH is not forwarded: the account does not change.
    let hello = args(&["HELLO", "3", "AUTH", "u", "p", "SETNAME", "n"]);
    assert_eq!(
        hello_auth(&hello),
        Some((&Bytes::from("u"), &Bytes::from("p")))
    );
    assert_eq!(
        classify(hello),
        Action::Forward(args(&["HELLO", "3", "SETNAME", "n"]))
    );
    assert_eq!(
        classify(args(&["hello", "2", "auth", "u"])),
        Action::Forward(args(&["hello", "2"]))
    );
}

// ---- Which reply answers which command ----

/// The bytes the client gets for server replies `stream`, and what is
/// logged, as the relay's server half does it.
fn deliver(tracker: &mut Tracker, stream: &[u8]) -> Result<(Vec<u8>, Vec<String>), TrackError> {
    let (mut out, mut settled, mut logged) = (Vec::new(), Settled::default(), Vec::new());
    let mut take = |settled: &mut Settled, out: &mut Vec<u8>| {
        out.extend(settled.bytes.drain(..).flat_map(|b| b.to_vec()));
        logged.extend(
            settled
                .logged
                .drain(..)
                .map(|s| format!("{} -> {:?}", s.text, s.outcome)),
        );
    };
    let mut forward = true;
    for piece in pieces(stream, 4).unwrap() {
        match piece {
            Piece::Start { push } => {
                let begun = tracker.begin(push, &mut settled);
                take(&mut settled, &mut out);
                forward = begun?;
            }
            Piece::Data(d) if forward => out.extend_from_slice(&d),
            Piece::Data(_) => {}
            Piece::End(answer) => {
                tracker.end(&answer, &mut settled);
                take(&mut settled, &mut out);
            }
        }
    }
    tracker.due(&mut settled);
    take(&mut settled, &mut out);
    Ok((out, logged))
}

fn reply(text: &str) -> Owed {
    Owed::Reply(Pending::new(text.into()))
}

/// The proxy's answer to `text`, logged as refused.
fn refusal(error: &str, text: &str) -> Owed {
    Owed::Answer {
        bytes: resp::error(error),
        logged: Some(super::Statement {
            text: text.into(),
            outcome: Outcome::Refused { rule: "r".into() },
            duration: Duration::ZERO,
        }),
    }
}

#[test]
fn refusals_come_after_the_replies_owed_before_them() {
    let mut tracker = Tracker::new();
    tracker.sent(reply("SET a 1"));
    tracker.sent(refusal("ERR refused 1", "FLUSHALL"));
    tracker.sent(reply("GET a"));
    tracker.sent(refusal("ERR refused 2", "FLUSHDB"));
    tracker.sent(Owed::Answer {
        bytes: resp::status("OK"),
        logged: None,
    });
    // Nothing is due while the server owes the first reply.
    let mut settled = Settled::default();
    tracker.due(&mut settled);
    assert!(settled.bytes.is_empty() && settled.logged.is_empty());
    let (out, logged) = deliver(&mut tracker, b"+OK\r\n$1\r\n1\r\n").unwrap();
    assert_eq!(
        String::from_utf8(out).unwrap(),
        "+OK\r\n-ERR refused 1\r\n$1\r\n1\r\n-ERR refused 2\r\n+OK\r\n"
    );
    // Logged in the order of the commands.
    assert_eq!(
        logged,
        vec![
            "SET a 1 -> Done(\"OK\")".to_string(),
            "FLUSHALL -> Refused { rule: \"r\" }".into(),
            "GET a -> Done(\"\\\"1\\\"\")".into(),
            "FLUSHDB -> Refused { rule: \"r\" }".into(),
        ]
    );
    // A refusal with nothing owed before it is due at once.
    tracker.sent(refusal("ERR now", "X"));
    tracker.due(&mut settled);
    assert_eq!(settled.bytes, vec![resp::error("ERR now")]);
}

#[test]
fn a_push_settles_nothing_and_a_stray_reply_is_an_error() {
    let mut tracker = Tracker::new();
    tracker.sent(reply("GET k"));
    let (out, logged) = deliver(&mut tracker, b">2\r\n+invalidate\r\n*0\r\n$-1\r\n").unwrap();
    assert_eq!(out, b">2\r\n+invalidate\r\n*0\r\n$-1\r\n");
    assert_eq!(logged, vec!["GET k -> Done(\"(nil)\")".to_string()]);
    assert_eq!(
        deliver(&mut tracker, b"+OK\r\n").unwrap_err(),
        TrackError::Unasked
    );
    let mut tracker = Tracker::new();
    tracker.sent(refusal("ERR no", "X"));
    assert_eq!(
        deliver(&mut tracker, b"+OK\r\n").unwrap_err(),
        TrackError::Unasked
    );
}

#[test]
fn a_swallowed_reply_is_replaced_and_the_rest_is_unfinished() {
    let mut tracker = Tracker::new();
    tracker.sent(Owed::Instead {
        pending: Pending::new("EXEC".into()),
        answer: resp::error("EXECABORT no"),
        outcome: Outcome::Error("EXECABORT no".into()),
    });
    tracker.sent(reply("GET k"));
    tracker.sent(reply("BLPOP q 0"));
    tracker.sent(refusal("ERR no", "FLUSHALL"));
    let (out, logged) = deliver(&mut tracker, b"+OK\r\n$1\r\nv\r\n").unwrap();
    assert_eq!(out, b"-EXECABORT no\r\n$1\r\nv\r\n");
    assert_eq!(logged[0], "EXEC -> Error(\"EXECABORT no\")");
    tracker.close();
    assert!(!tracker.done());
    // The connection ends: the command still owed a reply is unfinished,
    // the refusal not yet sent is logged as refused.
    let left: Vec<_> = tracker
        .finish()
        .into_iter()
        .map(|s| (s.text, s.outcome))
        .collect();
    assert_eq!(
        left,
        vec![
            ("BLPOP q 0".to_string(), Outcome::Unfinished),
            ("FLUSHALL".into(), Outcome::Refused { rule: "r".into() })
        ]
    );
    assert!(tracker.done() && !tracker.full());
}

// ---- Logins and errors ----

fn upstream(port: u16, password: &str) -> Upstream {
    Upstream {
        host: "127.0.0.1".into(),
        port,
        user: "app".into(),
        password: Some(Zeroizing::new(password.into())),
        database: "2".into(),
        connect_timeout: Duration::from_secs(5),
        tls: None,
    }
}

/// A server that reads the login and answers `replies`; returns what it
/// read.
async fn fake_server(replies: &'static [u8]) -> (u16, tokio::task::JoinHandle<Vec<u8>>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let task = tokio::spawn(async move {
        let (mut s, _) = listener.accept().await.unwrap();
        let mut got = vec![0u8; 4096];
        let n = s.read(&mut got).await.unwrap();
        got.truncate(n);
        s.write_all(replies).await.unwrap();
        got
    });
    (port, task)
}

#[tokio::test]
async fn the_login_sends_auth_and_select_and_masks_an_echo() {
    let (port, server) = fake_server(b"+OK\r\n+OK\r\n").await;
    let (_, replies) = super::login::connect(&upstream(port, "s3cret"))
        .await
        .unwrap();
    assert!(replies.at_boundary());
    let mut want = cmd(&["AUTH", "app", "s3cret"]);
    want.extend(cmd(&["SELECT", "2"]));
    assert_eq!(server.await.unwrap(), want);
    // A refusal carries the server's words, never the password.
    let (port, _server) = fake_server(b"-WRONGPASS s3cret is wrong\r\n").await;
    let Err(error) = super::login::connect(&upstream(port, "s3cret")).await else {
        panic!("the login succeeds");
    };
    assert_eq!(
        error.to_string(),
        "upstream refused the login: WRONGPASS *** is wrong"
    );
    assert!(!format!("{error:?}").contains("s3cret"));
    let mut named = upstream(port, "s3cret");
    named.database = "cache".into();
    assert!(matches!(
        super::login::connect(&named).await,
        Err(ProxyError::Database(_))
    ));
}

#[test]
fn errors_read_as_one_line() {
    for error in [
        ProxyError::Second,
        ProxyError::BadToken,
        ProxyError::Refused("WRONGPASS x".into()),
        ProxyError::ClientProtocol(RespError::Quotes.to_string()),
    ] {
        assert!(!error.to_string().contains('\n'));
    }
    assert_eq!(
        resp::error("ERR a\r\nb"),
        Bytes::from_static(b"-ERR a  b\r\n")
    );
}

/// What the fuzz target does, briefly, on every `cargo test`: random and
/// mutated byte streams through both decoders and the word splitter.
#[test]
fn random_bytes_never_panic() {
    use rand::{Rng, SeedableRng};
    let mut rng = rand::rngs::StdRng::seed_from_u64(6379);
    let mut seed = cmd(&["SET", "k", "v"]);
    seed.extend(
        b"GET \"a\\x41\" 'b'\r\n*2\r\n$1\r\na\r\n%1\r\n+k\r\n|1\r\n:1\r\n:2\r\n=5\r\ntxt:x\r\n",
    );
    for round in 0..3000 {
        let mut data: Vec<u8> = if round % 2 == 0 {
            seed.clone()
        } else {
            (0..rng.random_range(0..300))
                .map(|_| rng.random())
                .collect()
        };
        for _ in 0..rng.random_range(0..8) {
            if let Some(len) = std::num::NonZeroUsize::new(data.len()) {
                let at = rng.random_range(0..len.get());
                data[at] = rng.random();
            }
        }
        let step = rng.random_range(1..16);
        if let Ok(got) = requests(&data, step) {
            for request in got {
                if let Request::Command(words) = request {
                    let _ = describe(&words);
                    let _ = classify(words);
                }
            }
        }
        if let Ok(got) = pieces(&data, step) {
            for piece in got {
                if let Piece::End(answer) = piece {
                    let _ = outcome(&answer);
                }
            }
        }
        let _ = split_args(&data);
    }
}
