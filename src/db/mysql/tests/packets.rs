//! Framing across any split and the 16 MiB boundaries, where replies end
//! and what they say, the packets' parsers, and MySQL's statement
//! splitting.

use std::sync::Arc;

use bytes::Bytes;

use super::super::sql::{MySqlServer, normalise_mysql, split_mysql};
use super::super::track::{Kind, Pending, Reply, Statements, Step};
use super::super::wire::{self, Decoder, Frame, Head, MAX_PACKET};
use super::super::{Outcome, ProxyError, front};
use super::{CLIENT_CAPS, client_response};

// ---- Framing ----

/// Every frame of `bytes` fed in pieces of `step` bytes.
fn frames(bytes: &[u8], step: usize) -> Vec<Frame> {
    let mut decoder = Decoder::new();
    let mut out = Vec::new();
    for piece in bytes.chunks(step) {
        decoder.push(piece);
        while let Some(frame) = decoder.next_frame() {
            out.push(frame);
        }
    }
    out
}

/// The payloads a frame sequence carries, reassembled, with the sequence
/// ids of their packets.
fn payloads(frames: &[Frame]) -> Vec<(Vec<u8>, Vec<u8>)> {
    let mut out: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
    for frame in frames {
        match frame {
            Frame::Head(h) if h.first => out.push((h.bytes.to_vec(), vec![h.seq])),
            Frame::Head(h) => {
                let last = out.last_mut().unwrap();
                last.0.extend_from_slice(&h.bytes);
                last.1.push(h.seq);
            }
            Frame::More { bytes, .. } => out.last_mut().unwrap().0.extend_from_slice(bytes),
        }
    }
    out
}

#[test]
fn framing_survives_any_split() {
    let mut stream = wire::packet(0, b"\x03select 1").to_vec();
    stream.extend_from_slice(&wire::packet(0, b"\x0e"));
    stream.extend_from_slice(&wire::packet(7, b""));
    for step in [1, 2, 3, 5, 64] {
        let got = payloads(&frames(&stream, step));
        assert_eq!(
            got,
            vec![
                (b"\x03select 1".to_vec(), vec![0]),
                (b"\x0e".to_vec(), vec![0]),
                (vec![], vec![7]),
            ],
            "step {step}"
        );
    }
}

#[test]
fn payloads_over_16_mib_split_and_join() {
    for len in [MAX_PACKET - 1, MAX_PACKET, MAX_PACKET + 1, 2 * MAX_PACKET] {
        let payload: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
        let (framed, next) = wire::packets(250, &payload);
        let packets = len / MAX_PACKET + 1;
        assert_eq!(framed.len(), len + 4 * packets, "{len}");
        assert_eq!(next, 250u8.wrapping_add(packets as u8));
        let mut stream = framed.to_vec();
        stream.extend_from_slice(&wire::packet(0, b"\x01"));
        let got = frames(&stream, 1 << 20);
        // No piece is bigger than a chunk or a read.
        for frame in &got {
            let size = match frame {
                Frame::Head(h) => h.bytes.len(),
                Frame::More { bytes, .. } => bytes.len(),
            };
            assert!(size <= wire::CHUNK.max(1 << 20));
        }
        let heads: Vec<&Head> = got
            .iter()
            .filter_map(|f| match f {
                Frame::Head(h) => Some(h),
                _ => None,
            })
            .collect();
        assert_eq!(heads.len(), packets + 1);
        assert!(heads[0].first && heads.iter().skip(1).take(packets - 1).all(|h| !h.first));
        assert!(heads[packets - 1].last() && heads[packets].first);
        let joined = payloads(&got);
        assert_eq!(joined.len(), 2);
        assert!(joined[0].0 == payload, "{len}");
        let seqs: Vec<u8> = (0..packets).map(|n| 250u8.wrapping_add(n as u8)).collect();
        assert_eq!(joined[0].1, seqs);
        assert_eq!(joined[1], (b"\x01".to_vec(), vec![0]));
    }
}

// ---- Replies ----

fn head(seq: u8, payload: &[u8]) -> Head {
    Head {
        seq,
        len: payload.len(),
        bytes: Bytes::copy_from_slice(payload),
        first: true,
    }
}

const COLUMN: &[u8] =
    b"\x03def\x05appdb\x01t\x01t\x01n\x01n\x0c\x3f\x00\x0b\x00\x00\x00\x03\x00\x00\x00\x00\x00";

fn eof(status: u16) -> Vec<u8> {
    let [a, b] = status.to_le_bytes();
    vec![0xfe, 0, 0, a, b]
}

fn ok(affected: u8, status: u16) -> Vec<u8> {
    let [a, b] = status.to_le_bytes();
    vec![0, affected, 0, a, b, 0, 0]
}

fn error(code: u16, state: &str, text: &str) -> Vec<u8> {
    let mut out = vec![0xff];
    out.extend_from_slice(&code.to_le_bytes());
    out.push(b'#');
    out.extend_from_slice(state.as_bytes());
    out.extend_from_slice(text.as_bytes());
    out
}

/// Feeds packets (sequence ids from 1) to a reply; returns the steps, and
/// the logged outcome once it is done.
fn answer(kind: Kind, packets: &[Vec<u8>]) -> (Vec<Step>, Option<Outcome>) {
    let mut reply = Reply::new(kind, 0, Some(Pending::new(Arc::from("select n from t"))));
    let mut steps = Vec::new();
    let mut seq = 1u8;
    for p in packets {
        assert!(!reply.done(), "the reply ended early");
        let step = reply.packet(&head(seq, p)).unwrap();
        seq += if matches!(step, Step::Answer(_)) {
            2
        } else {
            1
        };
        steps.push(step);
    }
    let outcome = reply
        .done()
        .then(|| reply.finish().map(|s| s.outcome))
        .flatten();
    (steps, outcome)
}

fn done(text: &str) -> Option<Outcome> {
    Some(Outcome::Done(text.into()))
}

#[test]
fn replies_end_where_the_server_says() {
    let row = b"\x012".to_vec();
    let (steps, outcome) = answer(
        Kind::Results,
        &[
            vec![1],
            COLUMN.to_vec(),
            eof(2),
            row.clone(),
            row.clone(),
            row,
            eof(2),
        ],
    );
    assert_eq!(outcome, done("3 rows"));
    assert_eq!(steps[6], Step::Forward(7));
    assert_eq!(
        answer(Kind::Results, &[ok(1, 2)]).1,
        done("OK, 1 row affected")
    );
    assert_eq!(
        answer(
            Kind::Results,
            &[error(1146, "42S02", "Table 'appdb.x' doesn't exist")]
        )
        .1,
        Some(Outcome::Error(
            "ERROR 1146 (42S02): Table 'appdb.x' doesn't exist".into()
        ))
    );
    // An empty result set, and rows of 16 MiB or more (their later packets
    // are not rows).
    assert_eq!(
        answer(Kind::Results, &[vec![1], COLUMN.to_vec(), eof(2), eof(2)]).1,
        done("0 rows")
    );
    let mut reply = Reply::new(Kind::Results, 0, None);
    for (seq, p) in [(1, vec![1]), (2, COLUMN.to_vec()), (3, eof(2))] {
        reply.packet(&head(seq, &p)).unwrap();
    }
    let big = Head {
        seq: 4,
        len: MAX_PACKET,
        bytes: Bytes::from_static(b"\xfe\xff"),
        first: true,
    };
    reply.packet(&big).unwrap();
    let rest = Head {
        seq: 5,
        len: 5,
        bytes: Bytes::from(eof(2)),
        first: false,
    };
    reply.packet(&rest).unwrap();
    assert!(!reply.done());
    reply.packet(&head(6, &eof(2))).unwrap();
    assert!(reply.done());
}

#[test]
fn multi_results_are_followed_to_the_last() {
    const MORE: u16 = 0x0008 | 0x0002;
    let (_, outcome) = answer(
        Kind::Results,
        &[
            ok(1, MORE),
            vec![1],
            COLUMN.to_vec(),
            eof(2),
            b"\x011".to_vec(),
            b"\x012".to_vec(),
            eof(MORE),
            ok(0, 2),
        ],
    );
    assert_eq!(outcome, done("OK, 0 rows affected (last of 3 results)"));
    // An error ends the reply, whatever came before.
    let (_, outcome) = answer(
        Kind::Results,
        &[
            ok(1, MORE),
            error(1064, "42000", "You have an error in your SQL syntax"),
        ],
    );
    assert_eq!(
        outcome,
        Some(Outcome::Error(
            "ERROR 1064 (42000): You have an error in your SQL syntax".into()
        ))
    );
}

#[test]
fn local_infile_is_answered_with_an_empty_file() {
    let (steps, outcome) = answer(Kind::Results, &[b"\xfb/etc/passwd".to_vec(), ok(0, 2)]);
    // The server gets an empty packet after its request; the client never
    // sees the request, and the OK comes with the id it expects.
    assert_eq!(
        steps,
        vec![Step::Answer(wire::packet(2, b"")), Step::Forward(1)]
    );
    assert_eq!(
        outcome,
        done("OK, 0 rows affected [LOCAL INFILE refused: the server got an empty file]")
    );
}

#[test]
fn prepares_executes_and_fetches() {
    // id 7, one column, two parameters.
    let prepared = b"\x00\x07\x00\x00\x00\x01\x00\x02\x00\x00\x00\x00".to_vec();
    let mut reply = Reply::new(
        Kind::Prepare,
        0,
        Some(Pending::new(Arc::from("select ?+?"))),
    );
    for (seq, p) in [
        prepared,
        COLUMN.to_vec(),
        COLUMN.to_vec(),
        eof(2),
        COLUMN.to_vec(),
        eof(2),
    ]
    .iter()
    .enumerate()
    {
        assert!(!reply.done());
        reply.packet(&head(seq as u8 + 1, p)).unwrap();
    }
    assert!(reply.done());
    assert_eq!(
        reply.prepared.map(|p| (p.id, p.params, p.columns)),
        Some((7, 2, 1))
    );
    // A prepare that works is not logged (its executions are).
    assert!(reply.finish().is_none());
    let (_, outcome) = answer(Kind::Prepare, &[error(1064, "42000", "syntax")]);
    assert_eq!(
        outcome,
        Some(Outcome::Error("ERROR 1064 (42000): syntax".into()))
    );
    // An execute that opens a cursor ends after its definitions; the rows
    // come by fetch.
    let (_, outcome) = answer(Kind::Results, &[vec![1], COLUMN.to_vec(), eof(0x0042)]);
    assert_eq!(outcome, done("cursor opened"));
    let (_, outcome) = answer(Kind::Fetch, &[b"\x00\x00\x02".to_vec(), eof(0x0082)]);
    assert_eq!(outcome, done("1 row"));
    assert_eq!(answer(Kind::Fields, &[COLUMN.to_vec(), eof(2)]).1, done(""));
    assert_eq!(
        answer(Kind::One, &[ok(0, 2)]).1,
        done("OK, 0 rows affected")
    );
    assert_eq!(answer(Kind::One, &[b"Uptime: 5".to_vec()]).1, done(""));
}

#[test]
fn what_fits_no_reply_ends_the_connection() {
    let mut reply = Reply::new(Kind::Results, 0, None);
    assert!(reply.packet(&head(2, &ok(0, 2))).is_err(), "out of order");
    let mut reply = Reply::new(Kind::Results, 0, None);
    reply.packet(&head(1, &ok(0, 2))).unwrap();
    assert!(
        reply.packet(&head(2, &ok(0, 2))).is_err(),
        "after the reply"
    );
    let mut reply = Reply::new(Kind::Results, 0, None);
    assert!(
        reply.packet(&head(1, &eof(2))).is_err(),
        "an EOF for a result"
    );
    let mut reply = Reply::new(Kind::Results, 0, None);
    for (seq, p) in [(1, vec![1]), (2, COLUMN.to_vec())] {
        reply.packet(&head(seq, &p)).unwrap();
    }
    assert!(
        reply.packet(&head(3, b"\x011")).is_err(),
        "a row before the EOF"
    );
    let unfinished = Reply::new(
        Kind::Results,
        0,
        Some(Pending::new(Arc::from("select sleep(9)"))),
    );
    let statement = unfinished.unfinished().unwrap();
    assert_eq!(
        (statement.text.as_str(), statement.outcome),
        ("select sleep(9)", Outcome::Unfinished)
    );
}

#[test]
fn prepared_statements_are_bounded() {
    let mut statements = Statements::default();
    let text: Arc<str> = Arc::from("select 1");
    for id in 0..10_000 {
        statements.insert(id, text.clone()).unwrap();
    }
    assert!(statements.insert(7, text.clone()).is_ok());
    assert!(matches!(
        statements.insert(10_000, text.clone()),
        Err(ProxyError::TooManyPrepared)
    ));
    statements.remove(7);
    assert!(statements.insert(10_000, text.clone()).is_ok());
    // MariaDB's id -1 is the last prepared.
    assert_eq!(statements.get(u32::MAX).as_deref(), Some("select 1"));
    statements.clear();
    assert!(statements.get(10_000).is_none());
}

// ---- Packets ----

/// MariaDB 10.11's greeting, captured.
const MARIADB_GREETING: &str = "0a352e352e352d31302e31312e31342d4d6172696144422d302b646562313275322d6c6f6700050000003c2235265b7a724e00fef7080200ff81150000000000001d0000006e5e6b7e5b2d6a523a6b2f46006d7973716c5f6e61746976655f70617373776f726400";

#[test]
fn greetings_parse_and_build() {
    let payload = Bytes::from(hex::decode(MARIADB_GREETING).unwrap());
    let g = wire::greeting(payload).unwrap();
    assert_eq!(g.version, "5.5.5-10.11.14-MariaDB-0+deb12u2-log");
    assert_eq!((g.connection, g.charset, g.status), (5, 8, 2));
    assert_eq!(g.scramble, b"<\"5&[zrNn^k~[-jR:k/F");
    assert_eq!(g.plugin, "mysql_native_password");
    assert_ne!(g.caps & front::REQUIRED, 0);
    assert_eq!(
        MySqlServer::from_version(&g.version),
        Some(MySqlServer {
            mariadb: true,
            version: 101114
        })
    );
    assert_eq!(
        MySqlServer::from_version("8.0.36"),
        Some(MySqlServer {
            mariadb: false,
            version: 80036
        })
    );
    assert_eq!(MySqlServer::from_version("rampart"), None);
    let mine = wire::build_greeting(&g, front::OFFER, &[b'x'; 20]);
    let again = wire::greeting(mine.slice(4..)).unwrap();
    assert_eq!((again.version, again.scramble), (g.version, vec![b'x'; 20]));
    assert_eq!(
        (again.caps, again.plugin.as_str()),
        (front::OFFER, "mysql_native_password")
    );
}

#[test]
fn packets_parse() {
    let r =
        wire::response(client_response(CLIENT_CAPS, &[1; 20], "appdb", "p").slice(4..)).unwrap();
    assert_eq!((r.caps, r.charset, r.auth.len()), (CLIENT_CAPS, 33, 20));
    assert_eq!(
        (r.database.as_deref(), r.plugin.as_deref()),
        (Some(&b"appdb"[..]), Some("p"))
    );
    // A pre-4.1 client is not spoken to.
    assert!(wire::response(Bytes::from_static(&[0; 40])).is_err());
    let e = wire::error(Bytes::from_static(b"\xff\x10\x04Too many connections")).unwrap();
    assert_eq!(e.line(), "ERROR 1040 (HY000): Too many connections");
    let o = wire::ok(Bytes::from_static(b"\x00\xfc\x10\x27\x05\x02\x00\x01\x00")).unwrap();
    assert_eq!(
        (o.affected, o.insert_id, o.status, o.warnings),
        (10_000, 5, 2, 1)
    );
    assert_eq!(o.line(), "OK, 10000 rows affected");
    assert_eq!(wire::column_count(Bytes::from_static(b"\x03")), Ok(3));
    assert!(wire::column_count(Bytes::from_static(b"\x00")).is_err());
    assert!(wire::column_count(Bytes::from_static(b"\xfb")).is_err());
    assert_eq!(wire::statement_id(b"\x17\x07\x00\x00\x00\x00"), Ok(7));
    assert!(wire::statement_id(b"\x17\x07").is_err());
    assert_eq!(wire::command_name(0x11), "COM_CHANGE_USER");
    assert_eq!(wire::command_name(0x99), "command 0x99");
}

// ---- Statements ----

const MARIADB: Option<MySqlServer> = Some(MySqlServer {
    mariadb: true,
    version: 101114,
});
const MYSQL: Option<MySqlServer> = Some(MySqlServer {
    mariadb: false,
    version: 80036,
});

fn pieces(text: &[u8], server: Option<MySqlServer>) -> Vec<String> {
    let split = split_mysql(text, server);
    assert!(!split.ambiguous, "{:?}", String::from_utf8_lossy(text));
    split.statements
}

#[test]
fn mysql_statements_split_outside_quotes_and_comments() {
    let cases: &[(&[u8], &[&str])] = &[
        (b"select 1; select 2;", &["select 1", "select 2"]),
        (
            b"select `a;``b` from t; drop table t",
            &["select `a;``b` from t", "drop table t"],
        ),
        (
            b"select 1 # one; two\n; drop table t",
            &["select 1", "drop table t"],
        ),
        (
            b"select 1 -- one; two\n; drop table t",
            &["select 1", "drop table t"],
        ),
        (b"select 1 --\tx; y\n;z", &["select 1", "z"]),
        // `--1` is two minus signs, not a comment.
        (
            b"select 1--1; drop table t",
            &["select 1--1", "drop table t"],
        ),
        (b"select 'a;''b' ; c", &["select 'a;''b'", "c"]),
        // Comments do not nest.
        (
            b"select /* a /* b; */ 1; drop table t",
            &["select 1", "drop table t"],
        ),
        (b"DROP/**/TABLE\t\n  t", &["DROP TABLE t"]),
        // A newline or a NUL ends a line comment, nothing else.
        (b"select 1 # x\r; drop table t\n", &["select 1"]),
        (
            b"select 1 # x\0; drop table t",
            &["select 1 \0", "drop table t"],
        ),
        (b"select $$ ; drop table t", &["select $$", "drop table t"]),
    ];
    for (text, want) in cases {
        assert_eq!(
            pieces(text, MARIADB),
            *want,
            "{:?}",
            String::from_utf8_lossy(text)
        );
    }
}

#[test]
fn every_reading_of_a_backslash_is_checked() {
    // By default '\'' is one string; under NO_BACKSLASH_ESCAPES it ends at
    // the backslash and a DROP follows. Both go to the rules.
    for text in [
        &b"select 'a\\'; drop table t; -- '"[..],
        b"select \"a\\\"; drop table t; #\"",
    ] {
        let got = pieces(text, MARIADB);
        assert!(got.contains(&"drop table t".to_string()), "{got:?}");
        assert_eq!(
            got[0],
            String::from_utf8_lossy(text),
            "the default reading first"
        );
    }
    // In GBK, SJIS or Big5 the backslash or backquote after 0x95 is half a
    // character: the quote after it is real.
    for text in [
        &b"select '\x95\\'; drop table t; -- '"[..],
        b"select \x95`; drop table t; -- `",
        b"select `\x95``; drop table t; -- `",
    ] {
        let got = pieces(text, MARIADB);
        assert!(got.contains(&"drop table t".to_string()), "{got:?}");
    }
    // MySQL 9's dollar quotes.
    let got = pieces(b"select $$ ' $$; drop table t; -- '", MYSQL);
    assert!(got.contains(&"drop table t".to_string()), "{got:?}");
}

#[test]
fn versioned_comments_read_as_the_server_reads_them() {
    let cases: &[(&[u8], Option<MySqlServer>, &[&str])] = &[
        (
            b"/*!40101 SET NAMES utf8 */; select 1",
            MARIADB,
            &["SET NAMES utf8", "select 1"],
        ),
        (b"/*! drop table t */", MARIADB, &["drop table t"]),
        (b"/*!100000 drop table t */", MARIADB, &["drop table t"]),
        (
            b"/*!110000 drop table t */ select 1",
            MARIADB,
            &["select 1"],
        ),
        // MariaDB skips MySQL 5.7+ versions unless marked M.
        (b"/*!80016 drop table t */ select 1", MARIADB, &["select 1"]),
        (
            b"/*M!80016 drop table t */ select 1",
            MARIADB,
            &["drop table t select 1"],
        ),
        (b"/*!80016 drop table t */", MYSQL, &["drop table t"]),
        (b"/*M!80016 drop table t */ select 1", MYSQL, &["select 1"]),
        (b"/*!90000 drop table t */ select 1", MYSQL, &["select 1"]),
        (
            b"/*!40000 select /* x */ 1 */; y",
            MARIADB,
            &["select 1", "y"],
        ),
    ];
    for (text, server, want) in cases {
        assert_eq!(
            pieces(text, *server),
            *want,
            "{:?}",
            String::from_utf8_lossy(text)
        );
    }
}

#[test]
fn what_the_splitter_cannot_read_is_ambiguous() {
    for (text, server) in [
        // The server's version decides, and it is not known.
        (&b"/*!40101 SET NAMES utf8 */"[..], None),
        // Skipped as a comment, but read as code it would not end there.
        (b"/*!99999 ' */ ; drop table t; -- '", MARIADB),
        (b"/*!40000 select 1; */ drop table t", MARIADB),
        (b"/*!40000 # */ ; drop table t;", MARIADB),
        // MySQL reads five digits or six; these differ.
        (b"/*!100000 drop table t */", MYSQL),
        // A space in latin1, not in utf8.
        (b"select 1 --\xa0x\n; drop table t", MARIADB),
    ] {
        assert!(
            split_mysql(text, server).ambiguous,
            "{:?}",
            String::from_utf8_lossy(text)
        );
    }
    let split = split_mysql(b"/*!99999 ' */ ; drop table t; -- '", MARIADB);
    assert_eq!(split.statements, vec!["drop table t".to_string()]);
}

#[test]
fn mysql_normalise_keeps_quoted_text_and_runs_code_comments() {
    assert_eq!(
        normalise_mysql(b"  DROP/**/TABLE\t`a  b` # x\n WHERE s = 'x  y'", MARIADB),
        "DROP TABLE `a  b` WHERE s = 'x  y'"
    );
    assert_eq!(
        normalise_mysql(b"/*!50001 CREATE */ /*!50013 VIEW v */", MARIADB),
        "CREATE VIEW v"
    );
    assert_eq!(normalise_mysql(b"-- only\n# comments", MARIADB), "");
}

/// What the fuzz target does, briefly, on every `cargo test`: random and
/// mutated byte streams through the decoder, the reply parser, the packet
/// parsers and the splitter, which must answer without panicking.
#[test]
fn random_bytes_never_panic() {
    use rand::{Rng, SeedableRng};
    let mut rng = rand::rngs::StdRng::seed_from_u64(3306);
    let mut seed = wire::packet(0, &hex::decode(MARIADB_GREETING).unwrap()).to_vec();
    seed.extend_from_slice(&wire::packet(1, b"\x01"));
    seed.extend_from_slice(&wire::packet(2, COLUMN));
    seed.extend_from_slice(&wire::packet(3, &eof(2)));
    seed.extend_from_slice(&wire::packet(
        0,
        b"\x03select '\\'' /*!40101 x */ `a` # c\n; d",
    ));
    for round in 0..3000 {
        let mut data = if round % 2 == 0 {
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
        let mut reply = Reply::new(Kind::Results, 0, None);
        let mut prepare = Reply::new(Kind::Prepare, 0, None);
        for frame in frames(&data, step) {
            let Frame::Head(h) = frame else { continue };
            let _ = reply.packet(&h);
            let _ = prepare.packet(&h);
            let _ = wire::greeting(h.bytes.clone());
            let _ = wire::response(h.bytes.clone());
            let _ = wire::ok(h.bytes.clone());
            let _ = wire::error(h.bytes.clone());
            let _ = wire::eof_status(h.bytes.clone());
            let _ = wire::prepared(h.bytes.clone());
            let _ = wire::auth_switch(h.bytes.clone());
            let _ = wire::column_count(h.bytes.clone());
        }
        for server in [None, MARIADB, MYSQL] {
            let _ = split_mysql(&data, server);
            let _ = normalise_mysql(&data, server);
        }
    }
}
