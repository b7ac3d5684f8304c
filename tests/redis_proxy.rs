//! The Redis auditing proxy (`db::redis`) against a real server and the
//! real redis-cli: replies come back, commands are logged with their
//! outcomes, a rule's refusal reaches redis-cli and never the server, the
//! client's AUTH is answered by the proxy and masked, one connection per
//! session, the server's refusal of the login passed on without a secret,
//! a pipelined batch answered in order, and the token login of
//! `serve_connection`; and TLS to a server that speaks nothing else: the
//! certificate pinned on first use, a right pin, a wrong one refused
//! before AUTH. Skipped with a reason when redis-server or redis-cli is
//! missing, unless RAMPART_REQUIRE_INTEROP=1.

mod support;

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::future::BoxFuture;
use rampart::db::contract::Tls;
use rampart::db::redis::{self, ProxyError};
use rampart::db::{Audit, Outcome, Statement, Summary, Upstream, Verdict};
use support::TestCert;
use support::redis::{APP_PASSWORD, DEFAULT_PASSWORD, RawClient, RedisServer, cli_via, command};
use tokio::net::{UnixListener, UnixStream};
use tokio::task::JoinHandle;
use zeroize::Zeroizing;

const T: Duration = Duration::from_secs(60);
const TOKEN: &str = "one-time-8d41c0";

/// Denies `FLUSHALL`, holds `GET held` until released (as a rule waiting
/// for an administrator), logs everything.
#[derive(Default)]
struct Rules {
    logged: Mutex<Vec<Statement>>,
    release: tokio::sync::Notify,
}

impl Audit for Rules {
    fn check<'a>(&'a self, statement: &'a str) -> BoxFuture<'a, Verdict> {
        Box::pin(async move {
            if statement == "GET held" {
                self.release.notified().await;
            }
            if statement.starts_with("FLUSHALL") {
                Verdict::Deny {
                    rule: "no-flushall".into(),
                }
            } else {
                Verdict::Allow
            }
        })
    }

    fn logged(&self, statement: Statement) {
        self.logged.lock().unwrap().push(statement);
    }
}

impl Rules {
    fn logged(&self) -> Vec<(String, Outcome)> {
        let logged = self.logged.lock().unwrap();
        logged
            .iter()
            .map(|s| (s.text.clone(), s.outcome.clone()))
            .collect()
    }
}

fn upstream(server: &RedisServer, password: &str) -> Upstream {
    Upstream {
        host: "127.0.0.1".into(),
        port: server.port,
        user: "app".into(),
        password: Some(Zeroizing::new(password.into())),
        database: "1".into(),
        connect_timeout: Duration::from_secs(10),
        tls: None,
    }
}

/// A proxy serving one session on `DIR/redis.sock`.
struct Proxy {
    dir: tempfile::TempDir,
    rules: Arc<Rules>,
    task: JoinHandle<Result<Summary, ProxyError>>,
}

impl Proxy {
    fn start(server: &RedisServer, password: &str) -> Proxy {
        Proxy::start_with(server, password, None)
    }

    fn start_with(server: &RedisServer, password: &str, tls: Option<Tls>) -> Proxy {
        let dir = tempfile::tempdir().expect("temp dir");
        let listener = UnixListener::bind(dir.path().join("redis.sock")).expect("bind");
        let rules = Arc::new(Rules::default());
        let audit: Arc<dyn Audit> = rules.clone();
        let token = Zeroizing::new(TOKEN.to_string());
        let upstream = Upstream {
            tls,
            ..upstream(server, password)
        };
        let task = tokio::spawn(redis::serve(listener, token, upstream, audit, None));
        Proxy { dir, rules, task }
    }

    fn socket(&self) -> PathBuf {
        self.dir.path().join("redis.sock")
    }

    async fn result(self) -> Result<Summary, ProxyError> {
        tokio::time::timeout(T, self.task)
            .await
            .expect("the proxy ends with its connection")
            .expect("the proxy task")
    }
}

fn done(summary: &str) -> Outcome {
    Outcome::Done(summary.into())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_cli_gets_its_replies_and_everything_is_logged() {
    let Some(server) = RedisServer::start() else {
        return;
    };
    let proxy = Proxy::start(&server, APP_PASSWORD);
    let input = "SET k v\nGET k\nINCR n\nGET nothing\nRPUSH l a \"b c\"\nLRANGE l 0 -1\nHGET k f\n";
    let ran = cli_via(&server.cli, &proxy.socket(), &[], Some(input)).await;
    assert_eq!(
        ran.stdout,
        "OK\n\"v\"\n(integer) 1\n(nil)\n(integer) 2\n1) \"a\"\n2) \"b c\"\n\
         (error) WRONGTYPE Operation against a key holding the wrong kind of value\n",
        "stderr: {}",
        ran.stderr
    );
    let rules = proxy.rules.clone();
    let summary = proxy.result().await.expect("the session ends cleanly");
    let mut logged = rules.logged();
    // redis-cli asks for the commands' docs first, for its hints: a big
    // nested reply, streamed through.
    let (text, docs) = logged.remove(0);
    assert_eq!(text, "COMMAND DOCS");
    assert!(
        matches!(&docs, Outcome::Done(s) if s.starts_with("(array) ")),
        "{docs:?}"
    );
    assert_eq!(
        logged,
        vec![
            ("SET k v".into(), done("OK")),
            ("GET k".into(), done("\"v\"")),
            ("INCR n".into(), done("(integer) 1")),
            ("GET nothing".into(), done("(nil)")),
            ("RPUSH l a \"b c\"".into(), done("(integer) 2")),
            ("LRANGE l 0 -1".into(), done("(array) 2 items")),
            (
                "HGET k f".into(),
                Outcome::Error(
                    "WRONGTYPE Operation against a key holding the wrong kind of value".into()
                )
            ),
        ]
    );
    assert_eq!(summary.statements, 8);
    assert!(summary.bytes_from_client > 100 && summary.bytes_to_client > 10_000);
    // The proxy selected the asset's database.
    assert_eq!(server.cli(1, &["GET", "k"]).trim(), "v");
    assert_eq!(server.cli(0, &["EXISTS", "k"]).trim(), "0");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_command_never_reaches_the_server() {
    let Some(server) = RedisServer::start() else {
        return;
    };
    server.cli(1, &["SET", "keep", "me"]);
    for typed in ["FLUSHALL", "flushall"] {
        let proxy = Proxy::start(&server, APP_PASSWORD);
        let ran = cli_via(&server.cli, &proxy.socket(), &[typed], None).await;
        assert_eq!(
            ran.stdout.trim(),
            "(error) ERR rampart: command refused by rule no-flushall",
            "{}",
            ran.stderr
        );
        let rules = proxy.rules.clone();
        let summary = proxy.result().await.expect("ends cleanly");
        assert_eq!(summary.statements, 1);
        let refused = Outcome::Refused {
            rule: "no-flushall".into(),
        };
        assert_eq!(rules.logged(), vec![("FLUSHALL".to_string(), refused)]);
    }
    assert_eq!(server.cli(1, &["GET", "keep"]).trim(), "me");
    assert_eq!(server.calls("flushall"), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_clients_auth_is_answered_by_the_proxy_and_masked() {
    let Some(server) = RedisServer::start() else {
        return;
    };
    let before = server.calls("auth");
    let proxy = Proxy::start(&server, APP_PASSWORD);
    // As redis-cli -a sends it, then as a person types it.
    let input = format!("AUTH default {DEFAULT_PASSWORD}\nACL WHOAMI\n");
    let ran = cli_via(
        &server.cli,
        &proxy.socket(),
        &["-a", "typed-Secret-1", "--no-auth-warning"],
        Some(&input),
    )
    .await;
    assert_eq!(ran.stdout, "OK\n\"app\"\n", "{}", ran.stderr);
    let rules = proxy.rules.clone();
    proxy.result().await.expect("ends cleanly");
    let logged = rules.logged();
    let texts: Vec<&str> = logged.iter().map(|(t, _)| t.as_str()).collect();
    assert_eq!(
        texts,
        ["AUTH ***", "COMMAND DOCS", "AUTH ***", "ACL WHOAMI"]
    );
    assert_eq!(logged[0].1, done("OK"));
    for (text, _) in &logged {
        assert!(!text.contains("typed-Secret-1") && !text.contains(DEFAULT_PASSWORD));
    }
    // The server saw the proxy's login and this check's own, nothing else.
    assert_eq!(server.calls("auth"), before + 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_connection_per_session() {
    let Some(server) = RedisServer::start() else {
        return;
    };
    let proxy = Proxy::start(&server, APP_PASSWORD);
    let mut main = RawClient::connect(&proxy.socket()).await;
    main.send(&command(&["PING"])).await;
    assert_eq!(main.reply().await.as_deref(), Some("+PONG\r\n"));
    let second = cli_via(&server.cli, &proxy.socket(), &["PING"], None).await;
    assert_eq!(
        second.stdout.trim(),
        "(error) ERR rampart: one connection per session",
        "{}",
        second.stderr
    );
    // The first goes on, and ends with QUIT.
    main.send(b"PING hello\r\nQUIT\r\n").await;
    assert_eq!(main.reply().await.as_deref(), Some("$5\r\nhello\r\n"));
    assert_eq!(main.reply().await.as_deref(), Some("+OK\r\n"));
    assert_eq!(main.reply().await, None);
    let rules = proxy.rules.clone();
    proxy.result().await.expect("ends cleanly");
    let texts: Vec<String> = rules.logged().into_iter().map(|(t, _)| t).collect();
    assert_eq!(texts, ["PING", "PING hello", "QUIT"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_upstream_password_is_an_error_without_it() {
    let Some(server) = RedisServer::start() else {
        return;
    };
    let proxy = Proxy::start(&server, "not-the-Vaulted-one");
    let ran = cli_via(&server.cli, &proxy.socket(), &["PING"], None).await;
    assert_eq!(
        ran.stdout.trim(),
        "(error) ERR rampart: the Redis server refused the bastion's login: \
         WRONGPASS invalid username-password pair or user is disabled.",
        "{}",
        ran.stderr
    );
    let error = proxy.result().await.expect_err("the login fails");
    assert_eq!(
        error.to_string(),
        "upstream refused the login: WRONGPASS invalid username-password pair or user is disabled."
    );
    for text in [error.to_string(), format!("{error:?}"), ran.stdout] {
        assert!(!text.contains("not-the-Vaulted-one") && !text.contains(TOKEN));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pipelined_batch_is_answered_in_order() {
    let Some(server) = RedisServer::start() else {
        return;
    };
    let proxy = Proxy::start(&server, APP_PASSWORD);
    let mut client = RawClient::connect(&proxy.socket()).await;
    let big = "b".repeat(300_000);
    let mut batch = Vec::new();
    for words in [
        &["SET", "a", "1"][..],
        &["FLUSHALL"],
        &["SUBSCRIBE", "news"],
        &["SET", "big", &big],
        &["GET", "big"],
        &["GET", "a"],
        &["MULTI"],
        &["SET", "t", "2"],
        &["FLUSHALL", "SYNC"],
        &["EXEC"],
        &["GET", "t"],
    ] {
        batch.extend(command(words));
    }
    batch.extend(b"ECHO \"inline\\tword\"\r\n");
    batch.extend(command(&["SET", "huge", &"h".repeat(16 << 20)]));
    batch.extend(command(&["GET", "a"]));
    // One write: the proxy reads it in pieces, the replies keep the order.
    client.send(&batch).await;
    let refused = "-ERR rampart: command refused by rule no-flushall\r\n";
    let mut want = vec![
        "+OK\r\n".to_string(),
        refused.into(),
        "-ERR rampart: pub/sub and MONITOR are not available through the bastion \
         (their messages answer no command, so they cannot be audited)\r\n"
            .into(),
        "+OK\r\n".into(),
        format!("$300000\r\n{big}\r\n"),
        "$1\r\n1\r\n".into(),
        "+OK\r\n".into(),
        "+QUEUED\r\n".into(),
        refused.into(),
        "-EXECABORT Transaction discarded because of previous errors \
         (a command was refused by the bastion).\r\n"
            .into(),
        "$-1\r\n".into(),
        "$11\r\ninline\tword\r\n".into(),
    ];
    want.push(format!(
        "-ERR rampart: command too long for the bastion ({} bytes, at most 16 MiB)\r\n",
        command(&["SET", "huge", &"h".repeat(16 << 20)]).len()
    ));
    want.push("$1\r\n1\r\n".into());
    for (i, expected) in want.iter().enumerate() {
        let got = client.reply().await.expect("a reply");
        assert!(
            got == *expected,
            "reply {i}: {:.200} != {expected:.200}",
            got
        );
    }
    drop(client);
    let rules = proxy.rules.clone();
    proxy.result().await.expect("ends cleanly");
    let logged = rules.logged();
    assert_eq!(logged.len(), 14);
    let outcome = |text: &str| {
        logged
            .iter()
            .find(|(t, _)| t == text)
            .map(|(_, o)| o.clone())
    };
    assert_eq!(
        outcome("SUBSCRIBE news"),
        Some(Outcome::Refused {
            rule: "bastion".into()
        })
    );
    assert_eq!(
        outcome("FLUSHALL SYNC"),
        Some(Outcome::Refused {
            rule: "no-flushall".into()
        })
    );
    assert!(matches!(outcome("EXEC"), Some(Outcome::Error(e)) if e.starts_with("EXECABORT")));
    assert_eq!(
        outcome("ECHO \"inline\\tword\""),
        Some(done("\"inline\\tword\""))
    );
    assert!(
        logged
            .iter()
            .any(|(t, o)| t.starts_with("SET huge … [a command of")
                && *o
                    == Outcome::Refused {
                        rule: "size limit".into()
                    })
    );
    // The transaction did not run; nothing refused reached the server.
    assert_eq!(server.cli(1, &["EXISTS", "t"]).trim(), "0");
    assert_eq!(server.cli(1, &["EXISTS", "huge"]).trim(), "0");
    assert_eq!(server.calls("flushall"), 0);
    assert_eq!(server.calls("subscribe"), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_command_waiting_for_approval_holds_back_only_what_follows() {
    let Some(server) = RedisServer::start() else {
        return;
    };
    let proxy = Proxy::start(&server, APP_PASSWORD);
    let mut client = RawClient::connect(&proxy.socket()).await;
    let pings = server.calls("ping");
    let mut batch = command(&["SET", "held", "x"]);
    batch.extend(command(&["GET", "held"]));
    batch.extend(command(&["PING"]));
    client.send(&batch).await;
    // The SET went out and was answered while GET waits for its verdict.
    assert_eq!(client.reply().await.as_deref(), Some("+OK\r\n"));
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(server.cli(1, &["GET", "held"]).trim(), "x");
    assert_eq!(server.calls("ping"), pings);
    proxy.rules.release.notify_one();
    assert_eq!(client.reply().await.as_deref(), Some("$1\r\nx\r\n"));
    assert_eq!(client.reply().await.as_deref(), Some("+PONG\r\n"));
    drop(client);
    proxy.result().await.expect("ends cleanly");
}

/// `serve_connection` with a token, over a socket pair.
async fn token_session(
    server: &RedisServer,
) -> (
    RawClient,
    Arc<Rules>,
    JoinHandle<Result<Summary, ProxyError>>,
) {
    let (ours, theirs) = UnixStream::pair().expect("a socket pair");
    let rules = Arc::new(Rules::default());
    let audit = rules.clone();
    let upstream = upstream(server, APP_PASSWORD);
    let task = tokio::spawn(async move {
        redis::serve_connection(theirs, Some(TOKEN), &upstream, &*audit).await
    });
    (RawClient::over(ours), rules, task)
}

async fn ended(task: JoinHandle<Result<Summary, ProxyError>>) -> Result<Summary, ProxyError> {
    tokio::time::timeout(T, task)
        .await
        .expect("the connection ends")
        .expect("the proxy task")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_token_front_wants_auth_first() {
    let Some(server) = RedisServer::start() else {
        return;
    };
    server.cli(1, &["SET", "k", "v"]);
    // No AUTH, then a wrong one: the connection ends.
    let (mut client, _, task) = token_session(&server).await;
    client.send(&command(&["GET", "k"])).await;
    assert_eq!(
        client.reply().await.as_deref(),
        Some("-NOAUTH Authentication required.\r\n")
    );
    client.send(&command(&["AUTH", "guess"])).await;
    let wrong = client.reply().await.expect("an answer");
    assert!(wrong.starts_with("-WRONGPASS"), "{wrong}");
    assert_eq!(client.reply().await, None);
    assert!(matches!(ended(task).await, Err(ProxyError::BadToken)));
    // Gone without a word.
    let (client, _, task) = token_session(&server).await;
    drop(client);
    assert!(matches!(ended(task).await, Err(ProxyError::NoToken)));
    // The right one, pipelined with the first command.
    let (mut client, rules, task) = token_session(&server).await;
    let mut login = command(&["AUTH", "anyone", TOKEN]);
    login.extend(command(&["GET", "k"]));
    client.send(&login).await;
    assert_eq!(client.reply().await.as_deref(), Some("+OK\r\n"));
    assert_eq!(client.reply().await.as_deref(), Some("$1\r\nv\r\n"));
    client.send(&command(&["QUIT"])).await;
    assert_eq!(client.reply().await.as_deref(), Some("+OK\r\n"));
    ended(task).await.expect("ends cleanly");
    assert_eq!(
        rules.logged(),
        vec![
            ("GET k".to_string(), done("\"v\"")),
            ("QUIT".into(), done("OK"))
        ]
    );
    // HELLO 3 with the token: RESP3 from then on, the token masked.
    let (mut client, rules, task) = token_session(&server).await;
    client
        .send(&command(&["HELLO", "3", "AUTH", "anyone", TOKEN]))
        .await;
    let hello = client.reply().await.expect("HELLO's map");
    assert!(hello.starts_with('%') && hello.contains("redis"), "{hello}");
    client.send(&command(&["HGETALL", "nothing"])).await;
    assert_eq!(client.reply().await.as_deref(), Some("%0\r\n"));
    drop(client);
    ended(task).await.expect("ends cleanly");
    let logged = rules.logged();
    assert_eq!(logged[0].0, "HELLO 3 AUTH anyone ***");
    assert!(matches!(&logged[0].1, Outcome::Done(s) if s.starts_with("(map) ")));
    assert_eq!(logged[1], ("HGETALL nothing".into(), done("(empty map)")));
}

// ---- TLS to the server ----

/// TLS with `pinned`, and the certificates the proxy was told to pin.
fn tls(pinned: Option<&str>) -> (Tls, Arc<Mutex<Vec<Vec<u8>>>>) {
    let told = Arc::new(Mutex::new(Vec::new()));
    let into = told.clone();
    let tls = Tls {
        pinned: pinned.map(str::to_string),
        first_use: Some(Arc::new(move |der: &[u8]| {
            into.lock().unwrap().push(der.to_vec());
        })),
    };
    (tls, told)
}

fn fingerprints(told: &Mutex<Vec<Vec<u8>>>) -> Vec<String> {
    let told = told.lock().unwrap();
    told.iter()
        .map(|der| rampart::upstream::tls::fingerprint(der))
        .collect()
}

/// A wrong pin, as if the asset's certificate had been another.
const WRONG_PIN: &str = "SHA256:0000000000000000000000000000000000000000000000000000000000000000";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_pins_on_first_use_and_a_wrong_pin_is_refused_before_auth() {
    let cert = TestCert::generate();
    let Some(server) = RedisServer::start_tls(&cert.pem, &cert.key) else {
        return;
    };

    // Nothing pinned: the commands run (the server speaks TLS only), and
    // the session is told the certificate the server presented.
    let (first_use, told) = tls(None);
    let proxy = Proxy::start_with(&server, APP_PASSWORD, Some(first_use));
    let ran = cli_via(&server.cli, &proxy.socket(), &[], Some("SET k v\nGET k\n")).await;
    assert_eq!(ran.stdout, "OK\n\"v\"\n", "{}", ran.stderr);
    proxy.result().await.expect("ends cleanly");
    assert_eq!(fingerprints(&told), vec![cert.fingerprint.clone()]);
    assert_eq!(server.cli(1, &["GET", "k"]), "v\n");

    // The right pin: the same, and nothing to pin.
    let (pinned, told) = tls(Some(&cert.fingerprint));
    let proxy = Proxy::start_with(&server, APP_PASSWORD, Some(pinned));
    let ran = cli_via(&server.cli, &proxy.socket(), &["GET", "k"], None).await;
    assert_eq!(ran.stdout, "\"v\"\n", "{}", ran.stderr);
    proxy.result().await.expect("ends cleanly");
    assert!(fingerprints(&told).is_empty());

    // A wrong pin: refused after the handshake, before AUTH; the error
    // names both fingerprints, and the server ran no AUTH and no command.
    // Each count logs in itself: the AUTHs are counted last.
    let sets = server.calls("set");
    let auths = server.calls("auth");
    let (wrong, told) = tls(Some(WRONG_PIN));
    let proxy = Proxy::start_with(&server, APP_PASSWORD, Some(wrong));
    let ran = cli_via(&server.cli, &proxy.socket(), &["SET", "k", "w"], None).await;
    assert!(
        ran.stdout
            .contains("ERR rampart: cannot reach the Redis server"),
        "{} {}",
        ran.stdout,
        ran.stderr
    );
    let error = proxy.result().await.expect_err("refused").to_string();
    assert!(
        error.contains(&cert.fingerprint) && error.contains(WRONG_PIN),
        "{error}"
    );
    assert!(!error.contains(APP_PASSWORD) && !ran.stdout.contains(APP_PASSWORD));
    assert!(fingerprints(&told).is_empty());
    // The one AUTH since is the second count's own.
    assert_eq!(server.calls("auth"), auths + 1);
    assert_eq!(server.calls("set"), sets);
    assert_eq!(server.cli(1, &["GET", "k"]), "v\n");

    // No TLS asked: the server, TLS only, takes no login in clear.
    let auths = server.calls("auth");
    let proxy = Proxy::start(&server, APP_PASSWORD);
    let ran = cli_via(&server.cli, &proxy.socket(), &["SET", "k", "p"], None).await;
    assert!(
        ran.stdout
            .contains("ERR rampart: the login to the Redis server failed"),
        "{} {}",
        ran.stdout,
        ran.stderr
    );
    let error = proxy.result().await.expect_err("refused");
    assert!(
        matches!(error, ProxyError::Server(_) | ProxyError::ServerProtocol(_)),
        "{error}"
    );
    assert_eq!(server.calls("auth"), auths + 1);
    assert_eq!(server.cli(1, &["GET", "k"]), "v\n");
}
