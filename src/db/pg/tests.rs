//! Unit tests of the pieces without I/O: SCRAM and MD5 against published
//! vectors, the statement splitter on inputs built to fool it, framing in
//! any split, and the order of the proxy's answers in a pipeline.

use std::sync::Arc;
use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use zeroize::Zeroizing;

use super::auth::upstream_params;
use super::sql::{normalise, split, statements};
use super::track::{Owed, Pending, Tracker};
use super::wire::{self, CHUNK, Decoder, Frame, MAX_STATEMENT, Side, Startup};
use super::{Outcome, ProxyError, Scram, ScramError, Upstream, md5_password};

// ---- SCRAM-SHA-256: RFC 7677, section 3 ----

const NONCE: &str = "rOprNGfwEbeRWgbNEkqO";
const SERVER_FIRST: &str =
    "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096";

#[test]
fn scram_follows_rfc_7677() {
    let (mut scram, first) = Scram::with_nonce("user", NONCE);
    assert_eq!(first, "n,,n=user,r=rOprNGfwEbeRWgbNEkqO");
    let last = scram
        .client_final(b"pencil", SERVER_FIRST.as_bytes())
        .unwrap();
    assert_eq!(
        last,
        "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,\
         p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="
    );
    assert_eq!(
        scram.verify(b"v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="),
        Ok(())
    );
}

#[test]
fn scram_fails_closed() {
    let (mut scram, _) = Scram::with_nonce("user", NONCE);
    // No signature to check before the client's final message.
    assert_eq!(scram.verify(b"v=AAAA"), Err(ScramError::OutOfTurn));
    scram
        .client_final(b"pencil", SERVER_FIRST.as_bytes())
        .unwrap();
    // One bit off in the server's signature.
    assert_eq!(
        scram.verify(b"v=7rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="),
        Err(ScramError::Signature)
    );
    assert_eq!(
        scram.verify(b"e=invalid-proof"),
        Err(ScramError::Server("invalid-proof".into()))
    );
    assert_eq!(scram.verify(b"nonsense"), Err(ScramError::ServerFinal));
    // A server nonce that does not extend the client's.
    let (mut scram, _) = Scram::with_nonce("user", NONCE);
    let other = "r=someone-else,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096";
    assert_eq!(
        scram.client_final(b"pencil", other.as_bytes()),
        Err(ScramError::Nonce)
    );
    let (mut scram, _) = Scram::with_nonce("user", NONCE);
    let greedy = "r=rOprNGfwEbeRWgbNEkqOx,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4000000000";
    assert_eq!(
        scram.client_final(b"pencil", greedy.as_bytes()),
        Err(ScramError::Iterations(4_000_000_000))
    );
    let (mut scram, _) = Scram::with_nonce("user", NONCE);
    assert_eq!(
        scram.client_final(b"pencil", b"r=rOprNGfwEbeRWgbNEkqOx,i=4096"),
        Err(ScramError::ServerFirst)
    );
    // Debug shows nothing of the exchange.
    assert_eq!(format!("{scram:?}"), "Scram { .. }");
}

#[test]
fn scram_nonces_are_fresh() {
    let (_, a) = Scram::start("");
    let (_, b) = Scram::start("");
    assert!(
        a.starts_with("n,,n=,r=") && a.len() == "n,,n=,r=".len() + 24,
        "{a}"
    );
    assert_ne!(a, b);
}

// ---- MD5 ----

#[test]
fn md5_matches_rfc_1321_and_postgres() {
    use md5::{Digest, Md5};
    for (input, digest) in [
        ("", "d41d8cd98f00b204e9800998ecf8427e"),
        ("a", "0cc175b9c0f1b6a831c399e269772661"),
        ("abc", "900150983cd24fb0d6963f7d28e17f72"),
        ("message digest", "f96b697d7cb7938d525a2f31aaf161d0"),
        (
            "12345678901234567890123456789012345678901234567890123456789012345678901234567890",
            "57edf4a22be3c955ac49da2e2107b67a",
        ),
    ] {
        assert_eq!(
            hex::encode(Md5::digest(input.as_bytes())),
            digest,
            "{input}"
        );
    }
    // pg_authid holds md5 || md5(password || user): for postgres/postgres
    // that is md53175bce1d3201d16594cebf9d7eb3f9d; salted for the wire:
    assert_eq!(
        md5_password("postgres", b"postgres", [1, 2, 3, 4]).as_str(),
        "md568be9ed08db75f318087ab337aaea044"
    );
}

// ---- Statements ----

#[test]
fn statements_split_outside_quotes_and_comments() {
    let cases: &[(&str, &[&str])] = &[
        ("select 1; select 2;", &["select 1", "select 2"]),
        ("  ;; \n ; ", &[]),
        ("select ';' ; drop table t", &["select ';'", "drop table t"]),
        ("select 'it''s; fine'; x", &["select 'it''s; fine'", "x"]),
        (
            r"select E'\''; drop table t",
            &[r"select E'\''", "drop table t"],
        ),
        (r"select e'a\\'; b", &[r"select e'a\\'", "b"]),
        (
            "select \"a;\"\"b\" from t; c",
            &["select \"a;\"\"b\" from t", "c"],
        ),
        (
            "do $$ begin; end $$; drop table t",
            &["do $$ begin; end $$", "drop table t"],
        ),
        (
            "select $x$ a $$ ; b $x$; c",
            &["select $x$ a $$ ; b $x$", "c"],
        ),
        ("select $1; drop table t", &["select $1", "drop table t"]),
        // `$` inside an identifier starts no dollar quote.
        (
            "select a$$b; drop table t; $$",
            &["select a$$b", "drop table t", "$$"],
        ),
        // After a number it does (PostgreSQL's lexer ends the number).
        (
            "select 1$$ ' $$; drop table t; --'",
            &["select 1$$ ' $$", "drop table t"],
        ),
        (
            "select 1 -- one; two\n; drop table t",
            &["select 1", "drop table t"],
        ),
        (
            "select /* a /* nested; */ still; */ 1; drop table t",
            &["select 1", "drop table t"],
        ),
        ("DROP/**/TABLE\t\n  t", &["DROP TABLE t"]),
        ("DROP\x0bTABLE t", &["DROP TABLE t"]),
        (
            "select 'unterminated; drop table t",
            &["select 'unterminated; drop table t"],
        ),
    ];
    for (text, want) in cases {
        assert_eq!(statements(text), *want, "{text:?}");
    }
}

#[test]
fn both_readings_of_a_backslash_are_checked() {
    // With standard_conforming_strings off, '\'' is one string: the server
    // then runs a single SELECT; with it on, it runs a DROP. Both are put
    // to the rules, whatever the server last reported.
    let got = statements(r"select '\'; drop table t; --'");
    assert!(got.contains(&"drop table t".to_string()), "{got:?}");
    assert!(
        got.contains(&r"select '\'; drop table t; --'".to_string()),
        "{got:?}"
    );
}

#[test]
fn a_backslash_after_a_multibyte_byte_is_ambiguous() {
    // In SJIS, 0x95 0x5C is one character: the quote after it ends the string.
    let sjis = "select E'\u{95}\\'; drop table t; --'";
    assert!(split(sjis).ambiguous);
    assert!(split("select E'caf\u{e9}\\n'").ambiguous);
    assert!(!split("select E'\\n\u{e9}'").ambiguous);
    // A plain string is an escape string when standard_conforming_strings
    // is off, and both readings count.
    assert!(split("select 'caf\u{e9}\\'").ambiguous);
}

#[test]
fn normalise_keeps_quoted_text() {
    assert_eq!(
        normalise("  select  'a   b' , \"x  y\" -- c\n from t "),
        "select 'a   b' , \"x  y\" from t"
    );
    assert_eq!(normalise("select 1; select 2"), "select 1; select 2");
    assert_eq!(normalise("/* only */ -- comments"), "");
}

// ---- Framing ----

fn raw(tag: u8, body: &[u8]) -> Vec<u8> {
    wire::message(tag, body).to_vec()
}

/// Every frame of `bytes` fed in pieces of `step` bytes.
fn frames(side: Side, bytes: &[u8], step: usize) -> Result<Vec<Frame>, wire::WireError> {
    let mut decoder = Decoder::new(side);
    let mut out = Vec::new();
    for piece in bytes.chunks(step) {
        decoder.push(piece);
        while let Some(frame) = decoder.next_frame()? {
            out.push(frame);
        }
    }
    Ok(out)
}

#[test]
fn framing_survives_any_split() {
    let mut stream = raw(b'Q', b"select 1\0");
    stream.extend(raw(b'S', b""));
    stream.extend(raw(b'X', b""));
    for step in [1, 2, 3, 5, 7, 64] {
        let got = frames(Side::Client, &stream, step).unwrap();
        assert_eq!(
            got,
            vec![
                Frame::Whole {
                    tag: b'Q',
                    body: Bytes::from_static(b"select 1\0")
                },
                Frame::Whole {
                    tag: b'S',
                    body: Bytes::new()
                },
                Frame::Whole {
                    tag: b'X',
                    body: Bytes::new()
                },
            ],
            "step {step}"
        );
    }
}

#[test]
fn big_rows_stream_in_bounded_pieces() {
    let row = vec![7u8; 3 * CHUNK + 11];
    let mut stream = raw(b'D', &row);
    stream.extend(raw(b'C', b"SELECT 1\0"));
    for step in [1000, 16 << 10, 1 << 20] {
        let got = frames(Side::Server, &stream, step).unwrap();
        let Some(Frame::Start {
            tag: b'D',
            len,
            head,
        }) = got.first()
        else {
            panic!("no start: {got:?}");
        };
        assert_eq!((*len, head.len()), (row.len(), CHUNK));
        let mut body = head.to_vec();
        for frame in got.iter().skip(1) {
            match frame {
                Frame::More(b) => {
                    assert!(b.len() <= step.max(CHUNK));
                    body.extend_from_slice(b);
                }
                Frame::Whole { tag, body: b } => {
                    assert_eq!((*tag, b.as_ref()), (b'C', &b"SELECT 1\0"[..]));
                }
                other => panic!("{other:?}"),
            }
        }
        assert_eq!(body, row);
    }
}

#[test]
fn an_over_long_query_is_skipped_unread() {
    let mut stream = BytesMut::new();
    stream.put_u8(b'Q');
    stream.put_u32(u32::try_from(MAX_STATEMENT + 10 + 4).unwrap());
    stream.put_bytes(b'x', MAX_STATEMENT + 9);
    stream.put_u8(0);
    stream.extend_from_slice(&raw(b'S', b""));
    let got = frames(Side::Client, &stream, 1 << 20).unwrap();
    assert_eq!(
        got,
        vec![
            Frame::TooLong {
                tag: b'Q',
                len: MAX_STATEMENT + 10
            },
            Frame::Whole {
                tag: b'S',
                body: Bytes::new()
            },
        ]
    );
}

#[test]
fn bad_framing_is_an_error() {
    assert_eq!(
        frames(Side::Client, &[b'Q', 0, 0, 0, 3], 5),
        Err(wire::WireError::BadLength(3))
    );
    assert_eq!(
        frames(Side::Client, &[b'Q', 0xff, 0xff, 0xff, 0xff], 5),
        Err(wire::WireError::BadLength(-1))
    );
    assert_eq!(
        frames(Side::Client, &raw(b'Z', b"I"), 64),
        Err(wire::WireError::UnknownType('Z'))
    );
    assert_eq!(
        frames(Side::Server, &raw(b'Q', b"x\0"), 64),
        Err(wire::WireError::UnknownType('Q'))
    );
    // Fields are checked too.
    assert!(wire::query(Bytes::from_static(b"select 1")).is_err());
    assert!(wire::query(Bytes::from_static(b"select 1\0x")).is_err());
    assert!(wire::parse(Bytes::from_static(b"\0select 1\0\0\x01")).is_err());
    assert!(wire::target(b'D', Bytes::from_static(b"Xname\0")).is_err());
    assert!(wire::ready(Bytes::from_static(b"Q")).is_err());
    assert!(wire::notice(b'E', Bytes::from_static(b"SERROR\0")).is_err());
}

#[test]
fn messages_parse_and_build() {
    let parse = wire::parse(Bytes::from_static(b"s1\0select $1\0\0\x01\0\0\0\x17")).unwrap();
    assert_eq!(
        (parse.name.as_ref(), parse.text.as_ref()),
        (&b"s1"[..], &b"select $1"[..])
    );
    let (portal, statement) = wire::bind_names(Bytes::from_static(b"p\0s1\0\0\0")).unwrap();
    assert_eq!(
        (portal.as_ref(), statement.as_ref()),
        (&b"p"[..], &b"s1"[..])
    );
    let error = wire::error_response("ERROR", "42501", "rampart: no");
    let body = error.slice(5..);
    let notice = wire::notice(b'E', body).unwrap();
    assert_eq!(notice.line(), "ERROR 42501: rampart: no");
    let startup =
        wire::startup_message(&[(Bytes::from_static(b"user"), Bytes::from_static(b"app"))]);
    assert_eq!(
        wire::startup(startup.slice(4..)).unwrap(),
        Startup::Params {
            minor: 0,
            params: vec![(Bytes::from_static(b"user"), Bytes::from_static(b"app"))],
        }
    );
    let cancel = wire::cancel_request(&[1, 2, 3, 4, 5, 6, 7, 8]);
    assert_eq!(
        wire::startup(Bytes::copy_from_slice(&cancel[4..])).unwrap(),
        Startup::Cancel {
            key: [1, 2, 3, 4, 5, 6, 7, 8]
        }
    );
    let ssl = [0x04, 0xd2, 0x16, 0x2f];
    assert_eq!(
        wire::startup(Bytes::copy_from_slice(&ssl)).unwrap(),
        Startup::Ssl
    );
    assert_eq!(
        wire::startup(Bytes::from_static(&[0, 2, 0, 0])).unwrap(),
        Startup::Unsupported { major: 2, minor: 0 }
    );
    let password = wire::password(Bytes::from_static(b"secret\0")).unwrap();
    assert_eq!(password.as_slice(), b"secret");
    assert_eq!(
        wire::auth(Bytes::from_static(
            b"\0\0\0\x0aSCRAM-SHA-256-PLUS\0SCRAM-SHA-256\0\0"
        ))
        .unwrap(),
        wire::Auth::Sasl {
            mechanisms: vec!["SCRAM-SHA-256-PLUS".into(), "SCRAM-SHA-256".into()],
        }
    );
}

// ---- The order of answers ----

fn server(tag: u8, body: &[u8]) -> (u8, Bytes) {
    (tag, Bytes::copy_from_slice(body))
}

/// Feeds server messages; returns what the client gets, as message types,
/// and the statements logged.
fn replay(tracker: &mut Tracker, messages: &[(u8, Bytes)]) -> (Vec<u8>, Vec<super::Statement>) {
    let (mut out, mut logged) = (Vec::new(), Vec::new());
    let mut due = Vec::new();
    tracker.due(&mut due);
    out.extend(due.drain(..).map(|b: Bytes| b[0]));
    for (tag, body) in messages {
        tracker.answer(*tag, body, &mut logged).unwrap();
        out.push(*tag);
        tracker.due(&mut due);
        out.extend(due.drain(..).map(|b: Bytes| b[0]));
    }
    (out, logged)
}

#[test]
fn a_refused_parse_answers_after_the_earlier_messages() {
    let mut tracker = Tracker::new(b'I');
    tracker.sent(Owed::Parse);
    tracker.sent(Owed::Bind);
    tracker.sent(Owed::Execute(Pending::new(Arc::from("select 1"))));
    assert!(tracker.refuse(Owed::Refusal(wire::error_response("ERROR", "42501", "no"))));
    tracker.sent(Owed::Sync);
    let (out, logged) = replay(
        &mut tracker,
        &[
            server(b'1', b""),
            server(b'2', b""),
            server(b'C', b"SELECT 1\0"),
            server(b'Z', b"I"),
        ],
    );
    assert_eq!(out, b"12CEZ");
    assert_eq!(logged.len(), 1);
    assert_eq!(logged[0].outcome, Outcome::Done("SELECT 1".into()));
    assert!(tracker.finish().is_empty());
}

#[test]
fn a_refusal_inside_a_failed_batch_is_not_sent() {
    let mut tracker = Tracker::new(b'T');
    tracker.sent(Owed::Parse);
    tracker.sent(Owed::Bind);
    tracker.sent(Owed::Execute(Pending::new(Arc::from("insert into t"))));
    tracker.refuse(Owed::Refusal(wire::error_response("ERROR", "42501", "no")));
    tracker.sent(Owed::Sync);
    let error = wire::error_response("ERROR", "23505", "duplicate key");
    let (out, logged) = replay(
        &mut tracker,
        &[
            server(b'1', b""),
            server(b'2', b""),
            server(b'E', &error[5..]),
            server(b'Z', b"E"),
        ],
    );
    // One error per batch, as the server would send.
    assert_eq!(out, b"12EZ");
    assert_eq!(
        logged[0].outcome,
        Outcome::Error("ERROR 23505: duplicate key".into())
    );
}

#[test]
fn a_refused_query_waits_for_the_answers_before_it() {
    let mut tracker = Tracker::new(b'I');
    tracker.sent(Owed::Query(Pending::new(Arc::from("begin"))));
    assert!(tracker.refuse(Owed::Answer(wire::error_response("ERROR", "42501", "no"))));
    let mut due = Vec::new();
    tracker.due(&mut due);
    assert!(due.is_empty(), "sent before the server's answer to BEGIN");
    let (out, logged) = replay(
        &mut tracker,
        &[server(b'C', b"BEGIN\0"), server(b'Z', b"T")],
    );
    assert_eq!(out, b"CZEZ");
    assert_eq!(logged[0].outcome, Outcome::Done("BEGIN".into()));
    // The proxy's ReadyForQuery carries the status the server last reported.
    let mut tracker = Tracker::new(b'T');
    assert!(!tracker.refuse(Owed::Answer(wire::error_response("ERROR", "42501", "no"))));
    tracker.due(&mut due);
    assert_eq!(due[1], wire::ready_for_query(b'T'));
}

#[test]
fn outcomes_of_simple_queries() {
    let mut tracker = Tracker::new(b'I');
    tracker.sent(Owed::Query(Pending::new(Arc::from("select 1; select 2"))));
    tracker.sent(Owed::Query(Pending::new(Arc::from(""))));
    tracker.sent(Owed::Query(Pending::new(Arc::from(
        "select 1; select * from nope; select 3",
    ))));
    tracker.sent(Owed::Query(Pending::new(Arc::from("select pg_sleep(9)"))));
    let error = wire::error_response("ERROR", "42P01", "relation \"nope\" does not exist");
    let (_, logged) = replay(
        &mut tracker,
        &[
            server(b'T', b"\0\0"),
            server(b'C', b"SELECT 1\0"),
            server(b'C', b"SELECT 2\0"),
            server(b'Z', b"I"),
            server(b'I', b""),
            server(b'Z', b"I"),
            server(b'C', b"SELECT 1\0"),
            server(b'E', &error[5..]),
            server(b'Z', b"I"),
        ],
    );
    let outcomes: Vec<_> = logged.into_iter().map(|s| s.outcome).collect();
    assert_eq!(
        outcomes,
        vec![
            Outcome::Done("SELECT 2".into()),
            Outcome::Done(String::new()),
            Outcome::Error("ERROR 42P01: relation \"nope\" does not exist".into()),
        ]
    );
    let unfinished = tracker.finish();
    assert_eq!(unfinished[0].outcome, Outcome::Unfinished);
    assert_eq!(unfinished[0].text, "select pg_sleep(9)");
}

#[test]
fn answers_to_nothing_end_the_connection() {
    let mut tracker = Tracker::new(b'I');
    let mut logged = Vec::new();
    assert!(
        tracker
            .answer(b'C', &Bytes::from_static(b"SELECT 1\0"), &mut logged)
            .is_err()
    );
    assert!(
        tracker
            .answer(b'Z', &Bytes::from_static(b"I"), &mut logged)
            .is_err()
    );
    assert!(tracker.stream(b'D').is_err());
    tracker.sent(Owed::Bind);
    assert!(tracker.answer(b'1', &Bytes::new(), &mut logged).is_err());
    // An unsafe client encoding, reported at any time, is refused.
    let sjis = Bytes::from_static(b"client_encoding\0SJIS\0");
    assert!(tracker.answer(b'S', &sjis, &mut logged).is_err());
}

#[test]
fn prepared_names_are_bounded() {
    let mut names = super::proxy::Names::default();
    let text: Arc<str> = Arc::from("select 1");
    for n in 0..10_000 {
        names
            .insert(Bytes::from(format!("s{n}")), text.clone())
            .unwrap();
    }
    // The unnamed statement and known names are replaced, not added.
    assert!(names.insert(Bytes::from("s7"), text.clone()).is_ok());
    assert!(matches!(
        names.insert(Bytes::from("one more"), text.clone()),
        Err(ProxyError::TooManyPrepared)
    ));
    names.remove(&Bytes::from("s7"));
    assert!(names.insert(Bytes::from("one more"), text.clone()).is_ok());
    assert_eq!(
        names.get(&Bytes::from("one more")).as_deref(),
        Some("select 1")
    );
    // And so is the text they keep.
    let mut names = super::proxy::Names::default();
    let big: Arc<str> = Arc::from("x".repeat(64 << 10));
    let mut n = 0;
    while names
        .insert(Bytes::from(format!("b{n}")), big.clone())
        .is_ok()
    {
        n += 1;
    }
    assert_eq!(n, 1023);
}

// ---- Secrets ----

fn upstream() -> Upstream {
    Upstream {
        host: "10.0.0.7".into(),
        port: 5432,
        user: "app".into(),
        password: Some(Zeroizing::new("vaulted-secret".into())),
        database: "appdb".into(),
        connect_timeout: Duration::from_secs(5),
        tls: None,
    }
}

#[test]
fn upstream_debug_hides_the_password() {
    let text = format!("{:?}", upstream());
    assert!(!text.contains("vaulted-secret"), "{text}");
    assert!(
        text.contains("redacted") && text.contains("10.0.0.7"),
        "{text}"
    );
}

#[test]
fn startup_parameters_for_the_server() {
    let client = vec![
        (Bytes::from_static(b"user"), Bytes::from_static(b"person")),
        (
            Bytes::from_static(b"application_name"),
            Bytes::from_static(b"psql"),
        ),
        (Bytes::from_static(b"_pq_.thing"), Bytes::from_static(b"1")),
    ];
    let params = upstream_params(&client, &upstream());
    let names: Vec<(&[u8], &[u8])> = params
        .iter()
        .map(|(k, v)| (k.as_ref(), v.as_ref()))
        .collect();
    assert_eq!(
        names,
        vec![
            (&b"user"[..], &b"app"[..]),
            (b"database", b"appdb"),
            (b"application_name", b"psql"),
        ]
    );
    let mut client = client;
    client.push((
        Bytes::from_static(b"database"),
        Bytes::from_static(b"other"),
    ));
    let params = upstream_params(&client, &upstream());
    assert!(
        params
            .iter()
            .any(|(k, v)| k.as_ref() == b"database" && v.as_ref() == b"other")
    );
    let mut none = upstream();
    none.database.clear();
    let params = upstream_params(&client[..1], &none);
    assert!(!params.iter().any(|(k, _)| k.as_ref() == b"database"));
}

#[test]
fn errors_read_as_one_line() {
    let errors = [
        ProxyError::Refused("password authentication failed for user \"app\"".into()),
        ProxyError::Connect {
            address: "10.0.0.7:5432".into(),
            reason: "connection refused".into(),
        },
        ProxyError::NoToken,
    ];
    let texts: Vec<String> = errors.iter().map(|e| e.to_string()).collect();
    assert_eq!(
        texts,
        [
            "upstream refused the login: password authentication failed for user \"app\"",
            "cannot reach 10.0.0.7:5432: connection refused",
            "the client did not give the session's one-time password",
        ]
    );
}

/// What the fuzz target does, briefly, on every `cargo test`: random and
/// mutated byte streams through both decoders, the parsers and the
/// splitter, which must answer without panicking.
#[test]
fn random_bytes_never_panic() {
    use rand::{Rng, SeedableRng};
    let mut rng = rand::rngs::StdRng::seed_from_u64(5432);
    let mut seed = raw(b'P', b"s\0select $$;$$, E'\\'' -- x\0\0\0");
    seed.extend(raw(b'B', b"p\0s\0\0\0\0\0\0\0"));
    seed.extend(raw(b'D', b"\0\x01\0\0\0\x0242"));
    seed.extend(raw(b'E', b"SERROR\0C42501\0Mno\0\0"));
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
        for side in [Side::Client, Side::Server] {
            let step = rng.random_range(1..16);
            if let Ok(got) = frames(side, &data, step) {
                for frame in got {
                    if let Frame::Whole { tag, body } = frame {
                        let _ = wire::notice(tag, body.clone());
                        let _ = wire::parse(body.clone());
                        let _ = wire::auth(body.clone());
                        let _ = wire::startup(body);
                    }
                }
            }
        }
        let text = String::from_utf8_lossy(&data);
        let _ = split(&text);
        let _ = normalise(&text);
    }
}
