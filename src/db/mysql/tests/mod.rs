//! Unit tests of the pieces without a server: the password proofs against
//! published vectors (go-sql-driver/mysql's, recomputed here by formula),
//! both logins against hand-built peers (caching_sha2_password's RSA step
//! included); `packets.rs` has framing, replies and statement splitting.

mod packets;

use std::time::Duration;

use bytes::{Bytes, BytesMut};
use tokio::io::AsyncWriteExt;
use zeroize::Zeroizing;

use super::front::{self, Agreed, read_packet};
use super::wire::{self, Greeting, caps};
use super::{ProxyError, RsaError, Upstream, auth, scramble};

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
        tls: None,
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
    let login = auth::login(&upstream("secret"), &mut proxy, &greeting, &agreed(), false).await;
    assert!(matches!(login, Ok(2)), "{:?}", login.err().map(|f| f.error));
    let plain = fake.await.unwrap();
    assert_eq!(plain.len(), 7);
    assert_eq!(plain[0], b's' ^ SHA2_SCRAMBLE[0]);
    assert_eq!(plain[6], SHA2_SCRAMBLE[6]);
}

/// Over TLS (the stream here stands for the TLS one): the response is
/// packet 2 with CLIENT_SSL, and the full login sends the password as it
/// is, NUL-terminated, with no RSA key asked for.
#[tokio::test]
async fn caching_sha2_full_login_over_tls_sends_the_password_as_it_is() {
    let (mut proxy, mut server) = tokio::io::duplex(1 << 16);
    let fake = tokio::spawn(async move {
        let response = expect(&mut server, 2).await;
        let (caps, auth, _, plugin) = sent_response(&response);
        assert_eq!(
            (auth.as_slice(), plugin.as_str()),
            (&SHA2_SECRET[..], "caching_sha2_password")
        );
        assert_ne!(caps & caps::SSL, 0);
        server.write_all(&[2, 0, 0, 3, 1, 4]).await.unwrap();
        let clear = expect(&mut server, 4).await;
        server.write_all(&wire::build_ok(5, 2)).await.unwrap();
        clear
    });
    let greeting = greeting_of("caching_sha2_password", &SHA2_SCRAMBLE);
    let login = auth::login(&upstream("secret"), &mut proxy, &greeting, &agreed(), true).await;
    assert!(matches!(login, Ok(2)), "{:?}", login.err().map(|f| f.error));
    assert_eq!(fake.await.unwrap().as_ref(), b"secret\0");
}

#[test]
fn the_ssl_request_is_a_response_cut_after_its_filler() {
    let request = wire::build_ssl_request(caps::PROTOCOL_41, 1 << 24, 45);
    let mut want = vec![32, 0, 0, 1];
    want.extend_from_slice(&(caps::PROTOCOL_41 | caps::SSL).to_le_bytes());
    want.extend_from_slice(&(1u32 << 24).to_le_bytes());
    want.push(45);
    want.extend_from_slice(&[0; 23]);
    assert_eq!(request.as_ref(), want.as_slice());
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
    let login = auth::login(&upstream("secret"), &mut proxy, &greeting, &agreed(), false).await;
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
    let login = auth::login(&upstream("secret"), &mut proxy, &greeting, &agreed(), false).await;
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
    let Err(failed) = auth::login(
        &upstream("vault-7"),
        &mut proxy,
        &greeting,
        &agreed(),
        false,
    )
    .await
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
    let Err(failed) = auth::login(
        &upstream("vault-7"),
        &mut proxy,
        &greeting,
        &agreed(),
        false,
    )
    .await
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
pub(super) fn client_response(caps: u32, auth: &[u8], database: &str, plugin: &str) -> Bytes {
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

pub(super) const CLIENT_CAPS: u32 = caps::PROTOCOL_41
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
