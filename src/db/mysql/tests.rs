//! Unit tests of the pieces without a server: the password proofs against
//! published vectors (go-sql-driver/mysql's, recomputed here by formula),
//! the caching_sha2_password exchange against a hand-built server, framing
//! across any split and the 16 MiB boundaries, where replies end and what
//! they say, and MySQL's statement splitting.

use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use tokio::io::AsyncWriteExt;
use zeroize::Zeroizing;

use super::front::{self, Agreed, read_packet};
use super::sql::{MySqlServer, normalise_mysql, split_mysql};
use super::track::{Kind, Pending, Reply, Statements, Step};
use super::wire::{self, Decoder, Frame, Greeting, Head, MAX_PACKET, caps};
use super::{Outcome, ProxyError, RsaError, Upstream, auth, scramble};

// ---- Password proofs ----

/// go-sql-driver/mysql's auth_test.go, TestAuthFastNativePassword.
const NATIVE_SCRAMBLE: [u8; 20] = [
    70, 114, 92, 94, 1, 38, 11, 116, 63, 114, 23, 101, 126, 103, 26, 95, 81, 17, 24, 21,
];
/// Its TestAuthFastCachingSHA256PasswordFullRSA.
const SHA2_SCRAMBLE: [u8; 20] = [
    6, 81, 96, 114, 14, 42, 50, 30, 76, 47, 1, 95, 126, 81, 62, 94, 83, 80, 52, 85,
];
const SHA2_SECRET: [u8; 32] = [
    171, 201, 138, 146, 89, 159, 11, 170, 0, 67, 165, 49, 175, 94, 218, 68, 177, 109, 110, 86, 34,
    33, 44, 190, 67, 240, 70, 110, 40, 139, 124, 41,
];

#[test]
fn native_password_matches_its_vectors() {
    assert_eq!(
        scramble::native_password(b"secret", &NATIVE_SCRAMBLE).as_slice(),
        [
            53, 177, 140, 159, 251, 189, 127, 53, 109, 252, 172, 50, 211, 192, 240, 164, 26, 48,
            207, 45
        ]
    );
    // SHA1(p) XOR SHA1(s + SHA1(SHA1(p))), by Python's hashlib; the
    // integration test has MariaDB accept the proxy's own answers.
    assert_eq!(
        hex::encode(scramble::native_password(
            b"one-time-3b9a61",
            b"abcdefghijklmnopqrst"
        )),
        "5bcd6f401ccef9e517b8bcabce87b598d96a67a4"
    );
    assert!(scramble::native_password(b"", &NATIVE_SCRAMBLE).is_empty());
}

#[test]
fn caching_sha2_fast_path_matches_its_vectors() {
    assert_eq!(
        scramble::caching_sha2(b"secret", &SHA2_SCRAMBLE).as_slice(),
        SHA2_SECRET
    );
    // TestScrambleSHA256Pass.
    let s = [
        10, 47, 74, 111, 75, 73, 34, 48, 88, 76, 114, 74, 37, 13, 3, 80, 82, 2, 23, 21,
    ];
    for (password, want) in [
        (
            "secret",
            "f490e76f66d9d86665ce54d98c78d0acfe2fb0b08b423da807144873d30b312c",
        ),
        (
            "secret2",
            "abc3934a012cf342e876071c8ee202de51785b430258a7a0138bc79c4d800bc6",
        ),
    ] {
        assert_eq!(
            hex::encode(scramble::caching_sha2(password.as_bytes(), &s)),
            want
        );
    }
    assert!(scramble::caching_sha2(b"", &s).is_empty());
}

#[test]
fn fresh_scrambles_are_printable_and_differ() {
    let (a, b) = (scramble::fresh(), scramble::fresh());
    assert_ne!(a, b);
    assert!(a.iter().all(|c| (33..=126).contains(c)));
}

/// A throwaway 1024-bit key for the RSA step (test only).
const TEST_KEY: &str = "-----BEGIN PRIVATE KEY-----
MIICdgIBADANBgkqhkiG9w0BAQEFAASCAmAwggJcAgEAAoGBALbJGMOSLtSBPaUT
JBmfChQ3Rn4vs7cM9NKgc6Qq19FkM9f0FDj1mjHXZG6iXd3XDkzSCdpFiDi+/orK
DmyQikmCDWZUlOFpOblu3Qy7gy8HLjOEu4inOfohHWlW8zoYVEmLpmjIpq/S+vRl
BEnvUhuv3lnSKfCMlwyPiuat1nXdAgMBAAECgYAvoZu4awGVEtCzkZdYrd78gaL3
Aws76j5qHLHF1/xBbnEsF0ilxyqVTmG3iswXIRFy51D19iSXVP4TwK+djtTZ/bic
UNKs8b3YpPqfkU4089jyPBBZRKw+TbxAAimtfRGNTSNe4wI0/AvkMWriuSrPI7LC
wnoEDXjnBg05MI+7wQJBAO0hj7jjFkXli6u27lbmuCyZ7KBF8bgbknnnNJ30SAuQ
3ANfBZbmKFjV9UQWmAToPWYXriWjkaA+2kpUafRJkokCQQDFVH+N8uI/FBsDKtju
IhyVPJ0o9IFc8XM5zlvXKRpNS4B/2Ck1CJJLz+jVc9Lkmrs0MR9/mmO6Sx4cBDjS
uEO1AkA9rG3p4z4GvdXeujww497g0sPFR4u/m4Q0Klr3/fHC+FEQm2UjwwaZXERn
Cg1NsW1OoTgM2AbnC5HQpTXNcFkpAkA1h3B6nzKEjf2t5EeogZRjX2f6nikhf1YU
jkgXm8zIvvyCsa6r9kFJU4MDtEG3RcoWpGS5Braa6JmoW/TWJKopAkEAzWUvH/bh
+93ZnbFZwOQ7GG2UMu6ewkkQ0ud+jgbgCmSVNe1Xs5gYjZuVmN45lygUsYM1YXo0
UUmJzXw0H9YDDA==
-----END PRIVATE KEY-----
";
const TEST_PUBLIC: &str = "-----BEGIN PUBLIC KEY-----
MIGfMA0GCSqGSIb3DQEBAQUAA4GNADCBiQKBgQC2yRjDki7UgT2lEyQZnwoUN0Z+
L7O3DPTSoHOkKtfRZDPX9BQ49Zox12Ruol3d1w5M0gnaRYg4vv6Kyg5skIpJgg1m
VJThaTm5bt0Mu4MvBy4zhLuIpzn6IR1pVvM6GFRJi6ZoyKav0vr0ZQRJ71Ibr95Z
0inwjJcMj4rmrdZ13QIDAQAB
-----END PUBLIC KEY-----
";

/// What the server does with the proxy's RSA answer.
fn rsa_decrypt(sealed: &[u8]) -> Vec<u8> {
    use base64::Engine;
    use rsa::pkcs8::DecodePrivateKey;
    let body: String = TEST_KEY
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .collect();
    let der = base64::engine::general_purpose::STANDARD
        .decode(body)
        .unwrap();
    let key = rsa::RsaPrivateKey::from_pkcs8_der(&der).unwrap();
    key.decrypt(rsa::Oaep::<sha1::Sha1>::new(), sealed).unwrap()
}

#[test]
fn the_password_is_sealed_to_the_servers_key() {
    let sealed = scramble::rsa_password(TEST_PUBLIC.as_bytes(), b"secret", &SHA2_SCRAMBLE).unwrap();
    assert_eq!(sealed.len(), 128);
    let plain = rsa_decrypt(&sealed);
    let want: Vec<u8> = b"secret\0"
        .iter()
        .zip(SHA2_SCRAMBLE.iter().cycle())
        .map(|(p, s)| p ^ s)
        .collect();
    assert_eq!(plain, want);
    // OAEP is randomised: the same password seals differently each time.
    let again = scramble::rsa_password(TEST_PUBLIC.as_bytes(), b"secret", &SHA2_SCRAMBLE).unwrap();
    assert_ne!(sealed, again);
    assert_eq!(
        scramble::rsa_password(b"not a key", b"secret", &SHA2_SCRAMBLE),
        Err(RsaError::Pem)
    );
    let junk = "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n";
    assert_eq!(
        scramble::rsa_password(junk.as_bytes(), b"secret", &SHA2_SCRAMBLE),
        Err(RsaError::Key)
    );
    let long = vec![b'x'; 200];
    assert_eq!(
        scramble::rsa_password(TEST_PUBLIC.as_bytes(), &long, &SHA2_SCRAMBLE),
        Err(RsaError::Encrypt)
    );
}

// ---- The upstream login, against hand-built servers ----

fn upstream(password: &str) -> Upstream {
    Upstream {
        host: "10.0.0.7".into(),
        port: 3306,
        user: "root".into(),
        password: Some(Zeroizing::new(password.into())),
        database: "appdb".into(),
        connect_timeout: Duration::from_secs(5),
    }
}

fn greeting_of(plugin: &str, scramble: &[u8]) -> Greeting {
    Greeting {
        version: "8.0.36".into(),
        connection: 7,
        scramble: scramble.to_vec(),
        caps: front::OFFER | caps::SSL | caps::DEPRECATE_EOF,
        charset: 45,
        status: 2,
        plugin: plugin.into(),
    }
}

fn agreed() -> Agreed {
    Agreed {
        caps: caps::PROTOCOL_41 | caps::SECURE_CONNECTION | caps::PLUGIN_AUTH | caps::MULTI_RESULTS,
        max_packet: 1 << 24,
        charset: 45,
        database: None,
        seq: 2,
    }
}

/// The auth data, database and plugin of a handshake response the proxy
/// sent.
fn sent_response(payload: &Bytes) -> (u32, Vec<u8>, Vec<u8>, String) {
    let mut f = wire::Fields::new("test", payload.clone());
    let caps = f.u32().unwrap();
    f.bytes(4 + 1 + 23).unwrap();
    assert_eq!(f.cstr().unwrap().as_ref(), b"root");
    let n = usize::from(f.u8().unwrap());
    let auth = f.bytes(n).unwrap().to_vec();
    let database = f.cstr().unwrap().to_vec();
    let plugin = String::from_utf8(f.cstr().unwrap().to_vec()).unwrap();
    (caps, auth, database, plugin)
}

async fn expect(stream: &mut tokio::io::DuplexStream, seq: u8) -> Bytes {
    let (got, payload) = read_packet(stream).await.unwrap().unwrap();
    assert_eq!(got, seq);
    payload
}

#[tokio::test]
async fn caching_sha2_full_login_seals_the_password() {
    let (mut proxy, mut server) = tokio::io::duplex(1 << 16);
    let fake = tokio::spawn(async move {
        let response = expect(&mut server, 1).await;
        let (caps, auth, database, plugin) = sent_response(&response);
        assert_eq!(auth, SHA2_SECRET);
        assert_eq!(
            (database.as_slice(), plugin.as_str()),
            (&b"appdb"[..], "caching_sha2_password")
        );
        assert_eq!(caps & (caps::SSL | caps::DEPRECATE_EOF), 0);
        assert_ne!(caps & caps::CONNECT_WITH_DB, 0);
        // "Perform full authentication" (go-sql-driver's capture).
        server.write_all(&[2, 0, 0, 2, 1, 4]).await.unwrap();
        assert_eq!(expect(&mut server, 3).await.as_ref(), [2]);
        let mut key = vec![1];
        key.extend_from_slice(TEST_PUBLIC.as_bytes());
        server.write_all(&wire::packet(4, &key)).await.unwrap();
        let sealed = expect(&mut server, 5).await;
        server.write_all(&wire::build_ok(6, 2)).await.unwrap();
        rsa_decrypt(&sealed)
    });
    let greeting = greeting_of("caching_sha2_password", &SHA2_SCRAMBLE);
    let login = auth::login(&upstream("secret"), &mut proxy, &greeting, &agreed()).await;
    assert!(matches!(login, Ok(2)), "{:?}", login.err().map(|f| f.error));
    let plain = fake.await.unwrap();
    assert_eq!(plain.len(), 7);
    assert_eq!(plain[0], b's' ^ SHA2_SCRAMBLE[0]);
    assert_eq!(plain[6], SHA2_SCRAMBLE[6]);
}

#[tokio::test]
async fn caching_sha2_fast_login_and_a_switch_to_native() {
    let (mut proxy, mut server) = tokio::io::duplex(1 << 16);
    let fake = tokio::spawn(async move {
        expect(&mut server, 1).await;
        // Fast authentication succeeded, then the OK.
        server.write_all(&[2, 0, 0, 2, 1, 3]).await.unwrap();
        server.write_all(&wire::build_ok(3, 2)).await.unwrap();
    });
    let greeting = greeting_of("caching_sha2_password", &SHA2_SCRAMBLE);
    let login = auth::login(&upstream("secret"), &mut proxy, &greeting, &agreed()).await;
    assert!(matches!(login, Ok(2)));
    fake.await.unwrap();

    let (mut proxy, mut server) = tokio::io::duplex(1 << 16);
    let fake = tokio::spawn(async move {
        expect(&mut server, 1).await;
        let mut switch = vec![0xfe];
        switch.extend_from_slice(b"mysql_native_password\0");
        switch.extend_from_slice(&NATIVE_SCRAMBLE);
        switch.push(0);
        server.write_all(&wire::packet(2, &switch)).await.unwrap();
        let answer = expect(&mut server, 3).await;
        server.write_all(&wire::build_ok(4, 2)).await.unwrap();
        answer
    });
    let greeting = greeting_of("caching_sha2_password", &SHA2_SCRAMBLE);
    let login = auth::login(&upstream("secret"), &mut proxy, &greeting, &agreed()).await;
    assert!(matches!(login, Ok(2)));
    let answer = fake.await.unwrap();
    assert_eq!(
        answer.as_ref(),
        scramble::native_password(b"secret", &NATIVE_SCRAMBLE).as_slice()
    );
}

#[tokio::test]
async fn refusals_and_unknown_plugins_name_no_secret() {
    let (mut proxy, mut server) = tokio::io::duplex(1 << 16);
    let fake = tokio::spawn(async move {
        expect(&mut server, 1).await;
        let error = wire::build_error(
            2,
            1045,
            "28000",
            "Access denied for user 'root'@'10.0.0.1' (using password: YES)",
        );
        server.write_all(&error).await.unwrap();
    });
    let greeting = greeting_of("mysql_native_password", &NATIVE_SCRAMBLE);
    let Err(failed) = auth::login(&upstream("vault-7"), &mut proxy, &greeting, &agreed()).await
    else {
        panic!("the login succeeded");
    };
    fake.await.unwrap();
    let text = failed.error.to_string();
    assert_eq!(
        text,
        "upstream refused the login: ERROR 1045 (28000): Access denied for user 'root'@'10.0.0.1' (using password: YES)"
    );
    assert!(!text.contains("vault-7") && !format!("{:?}", failed.error).contains("vault-7"));
    let raw = failed.refusal.unwrap();
    assert_eq!(wire::error(raw).unwrap().code, 1045);

    let (mut proxy, mut server) = tokio::io::duplex(1 << 16);
    let fake = tokio::spawn(async move {
        expect(&mut server, 1).await;
        let mut switch = vec![0xfe];
        switch.extend_from_slice(b"client_ed25519\0");
        switch.extend_from_slice(&[7; 32]);
        server.write_all(&wire::packet(2, &switch)).await.unwrap();
    });
    let Err(failed) = auth::login(&upstream("vault-7"), &mut proxy, &greeting, &agreed()).await
    else {
        panic!("the login succeeded");
    };
    fake.await.unwrap();
    assert_eq!(
        failed.error.to_string(),
        "the server asks for client_ed25519 authentication, which the bastion does not speak"
    );
}

// ---- The client's login ----

/// A HandshakeResponse41 as a client writes it.
fn client_response(caps: u32, auth: &[u8], database: &str, plugin: &str) -> Bytes {
    let mut out = BytesMut::new();
    out.extend_from_slice(&caps.to_le_bytes());
    out.extend_from_slice(&(1u32 << 24).to_le_bytes());
    out.extend_from_slice(&[33]);
    out.extend_from_slice(&[0; 23]);
    out.extend_from_slice(b"app\0");
    out.extend_from_slice(&[u8::try_from(auth.len()).unwrap()]);
    out.extend_from_slice(auth);
    out.extend_from_slice(database.as_bytes());
    out.extend_from_slice(b"\0");
    out.extend_from_slice(plugin.as_bytes());
    out.extend_from_slice(b"\0");
    wire::packet(1, &out)
}

const CLIENT_CAPS: u32 = caps::PROTOCOL_41
    | caps::SECURE_CONNECTION
    | caps::PLUGIN_AUTH
    | caps::CONNECT_WITH_DB
    | caps::MULTI_STATEMENTS
    | caps::MULTI_RESULTS
    | caps::LOCAL_FILES
    | caps::DEPRECATE_EOF;

#[tokio::test]
async fn the_client_logs_in_with_the_token_after_a_plugin_switch() {
    let (mut client, mut proxy) = tokio::io::duplex(1 << 16);
    let server = greeting_of("caching_sha2_password", &SHA2_SCRAMBLE);
    let fake = tokio::spawn(async move {
        let greeting = wire::greeting(expect(&mut client, 0).await).unwrap();
        assert_eq!(greeting.plugin, "mysql_native_password");
        assert_eq!(
            (greeting.version.as_str(), greeting.connection),
            ("8.0.36", 7)
        );
        assert_eq!(
            greeting.caps & (caps::SSL | caps::DEPRECATE_EOF | caps::LOCAL_FILES),
            0
        );
        let wrong = scramble::caching_sha2(b"token-1", &greeting.scramble);
        client
            .write_all(&client_response(
                CLIENT_CAPS,
                &wrong,
                "appdb",
                "caching_sha2_password",
            ))
            .await
            .unwrap();
        let (plugin, challenge) = wire::auth_switch(expect(&mut client, 2).await).unwrap();
        assert_eq!(
            (plugin.as_str(), challenge.as_ref()),
            ("mysql_native_password", &greeting.scramble[..])
        );
        let answer = scramble::native_password(b"token-1", &challenge);
        client.write_all(&wire::packet(3, &answer)).await.unwrap();
    });
    let agreed = front::greet(&mut proxy, "token-1", &server).await.unwrap();
    fake.await.unwrap();
    assert_eq!(agreed.seq, 4);
    assert_eq!(agreed.database.as_deref(), Some(&b"appdb"[..]));
    // What the client asked for and the proxy does not follow is dropped.
    assert_eq!(agreed.caps & (caps::LOCAL_FILES | caps::DEPRECATE_EOF), 0);
    assert_ne!(agreed.caps & caps::MULTI_STATEMENTS, 0);
}

#[tokio::test]
async fn a_wrong_token_is_refused_with_access_denied() {
    let (mut client, mut proxy) = tokio::io::duplex(1 << 16);
    let server = greeting_of("mysql_native_password", &NATIVE_SCRAMBLE);
    let fake = tokio::spawn(async move {
        let greeting = wire::greeting(expect(&mut client, 0).await).unwrap();
        let answer = scramble::native_password(b"guess", &greeting.scramble);
        let response = client_response(CLIENT_CAPS, &answer, "", "mysql_native_password");
        client.write_all(&response).await.unwrap();
        wire::error(expect(&mut client, 2).await).unwrap()
    });
    let result = front::greet(&mut proxy, "token-1", &server).await;
    assert!(matches!(result, Err(ProxyError::BadToken)));
    let error = fake.await.unwrap();
    assert_eq!((error.code, error.state.as_str()), (1045, "28000"));
    assert!(error.message.starts_with("rampart: access denied"));
}

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

// ---- Secrets ----

#[test]
fn errors_read_as_one_line() {
    let errors = [
        ProxyError::Refused(
            "ERROR 1045 (28000): Access denied for user 'app'@'10.0.0.1' (using password: YES)"
                .into(),
        ),
        ProxyError::Connect {
            address: "10.0.0.7:3306".into(),
            reason: "connection refused".into(),
        },
        ProxyError::Rsa(RsaError::Key),
        ProxyError::Method("client_ed25519".into()),
    ];
    for e in errors {
        let text = e.to_string();
        assert!(!text.contains('\n'), "{text}");
    }
    let text = format!("{:?}", upstream("vault-7"));
    assert!(!text.contains("vault-7"), "{text}");
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
