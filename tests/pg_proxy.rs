//! The PostgreSQL auditing proxy (`db::pg`) against a real server and the
//! real psql: rows come back, statements are logged with their tags, a
//! rule's refusal reaches psql and never the server, one connection per
//! session, MD5 and SCRAM-SHA-256 logins, the server's refusal passed on
//! without a secret, and a pipelined extended-protocol batch answered in
//! order; and TLS to a server that requires it: the certificate pinned on
//! first use, a right pin, a wrong one refused before any login, a server
//! without TLS refused, cancels over TLS. Skipped with a reason when
//! PostgreSQL or psql is missing, unless RAMPART_REQUIRE_INTEROP=1.

mod support;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::future::BoxFuture;
use rampart::db::contract::Tls;
use rampart::db::pg::{self, Audit, Outcome, ProxyError, Statement, Summary, Upstream, Verdict};
use support::TestCert;
use support::pg::{
    APP_PASSWORD, LEGACY_PASSWORD, PgServer, RawClient, bind, error_text, execute, parse, query,
    sync, tags,
};
use tokio::net::UnixListener;
use tokio::task::JoinHandle;
use zeroize::Zeroizing;

const TOKEN: &str = "one-time-3b9a61";
const T: Duration = Duration::from_secs(60);

/// Denies `DROP TABLE` and `DELETE`, logs everything, and says when a statement was
/// checked (for tests that must wait until psql is connected).
#[derive(Default)]
struct Rules {
    logged: Mutex<Vec<Statement>>,
    checked: tokio::sync::Notify,
}

impl Audit for Rules {
    fn check<'a>(&'a self, statement: &'a str) -> BoxFuture<'a, Verdict> {
        Box::pin(async move {
            self.checked.notify_one();
            if statement.to_lowercase().starts_with("drop table") {
                Verdict::Deny {
                    rule: "no-drop-table".into(),
                }
            } else if statement.to_lowercase().starts_with("delete ") {
                // As an admin writes it: `filter add no-delete --pattern
                // '(?i)^delete\s' --action deny --on sql`.
                Verdict::Deny {
                    rule: "no-delete".into(),
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

/// A proxy serving one session on `DIR/.s.PGSQL.5432`.
struct Proxy {
    dir: tempfile::TempDir,
    rules: Arc<Rules>,
    task: JoinHandle<Result<Summary, ProxyError>>,
}

impl Proxy {
    fn start(server: &PgServer, user: &str, password: &str) -> Proxy {
        Proxy::start_with(server, user, password, None)
    }

    fn start_with(server: &PgServer, user: &str, password: &str, tls: Option<Tls>) -> Proxy {
        let dir = tempfile::tempdir().expect("temp dir");
        let listener = UnixListener::bind(dir.path().join(".s.PGSQL.5432")).expect("bind");
        let rules = Arc::new(Rules::default());
        let upstream = Upstream {
            host: "127.0.0.1".into(),
            port: server.port,
            user: user.into(),
            password: Some(Zeroizing::new(password.into())),
            database: "appdb".into(),
            connect_timeout: Duration::from_secs(10),
            tls,
        };
        let audit: Arc<dyn Audit> = rules.clone();
        let token = Zeroizing::new(TOKEN.to_string());
        let task = tokio::spawn(pg::serve(listener, token, upstream, audit, None));
        Proxy { dir, rules, task }
    }

    fn socket(&self) -> PathBuf {
        self.dir.path().join(".s.PGSQL.5432")
    }

    async fn result(self) -> Result<Summary, ProxyError> {
        tokio::time::timeout(T, self.task)
            .await
            .expect("the proxy ends with its connection")
            .expect("the proxy task")
    }
}

struct Ran {
    status: i32,
    stdout: String,
    stderr: String,
}

/// psql through the proxy, with the one-time password only in its
/// environment; each `-c` is one Query.
async fn psql(server: &PgServer, dir: &Path, password: &str, commands: &[&str]) -> Ran {
    let mut cmd = tokio::process::Command::new(&server.psql);
    cmd.arg("-h").arg(dir).args([
        "-p", "5432", "-U", "app", "-d", "appdb", "-X", "-q", "-A", "-t",
    ]);
    for c in commands {
        cmd.args(["-c", c]);
    }
    cmd.env("PGPASSWORD", password)
        .env_remove("PGHOST")
        .env_remove("PGSERVICE")
        .kill_on_drop(true);
    let out = tokio::time::timeout(T, cmd.output())
        .await
        .expect("psql ends")
        .expect("run psql");
    Ran {
        status: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn done(tag: &str) -> Outcome {
    Outcome::Done(tag.into())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn psql_gets_rows_and_a_refusal_and_everything_is_logged() {
    let Some(server) = PgServer::start() else {
        return;
    };
    let proxy = Proxy::start(&server, "app", APP_PASSWORD);
    let ran = psql(
        &server,
        proxy.dir.path(),
        TOKEN,
        &[
            "CREATE TABLE t (n int)",
            "INSERT INTO t VALUES (1), (2), (3)",
            "SELECT n FROM t ORDER BY n",
            "select 1; /* sneaky */ DROP\n  TABLE t",
            "SELECT count(*) FROM t",
        ],
    )
    .await;
    assert_eq!(ran.stdout, "1\n2\n3\n3\n", "stderr: {}", ran.stderr);
    assert!(
        ran.stderr
            .contains("ERROR:  rampart: statement refused by rule no-drop-table"),
        "{}",
        ran.stderr
    );
    let rules = proxy.rules.clone();
    let result = proxy.result().await.expect("the session ends cleanly");
    assert_eq!(result.statements, 5);
    assert!(result.bytes_from_client > 100 && result.bytes_to_client > 100);
    assert_eq!(
        rules.logged(),
        vec![
            ("CREATE TABLE t (n int)".into(), done("CREATE TABLE")),
            (
                "INSERT INTO t VALUES (1), (2), (3)".into(),
                done("INSERT 0 3")
            ),
            ("SELECT n FROM t ORDER BY n".into(), done("SELECT 3")),
            (
                "select 1; /* sneaky */ DROP\n  TABLE t".into(),
                Outcome::Refused {
                    rule: "no-drop-table".into()
                }
            ),
            ("SELECT count(*) FROM t".into(), done("SELECT 1")),
        ]
    );
    let log = server.log();
    assert!(log.contains("INSERT INTO t VALUES (1), (2), (3)"), "{log}");
    assert!(!log.to_lowercase().contains("drop"), "{log}");
    assert!(!log.contains("sneaky"), "{log}");
    // The table is still there.
    assert_eq!(
        server
            .admin_in(
                "appdb",
                "SELECT count(*) FROM pg_tables WHERE tablename = 't'"
            )
            .trim(),
        "1"
    );
    // The server's error comes back as such, and is logged with its code.
    let proxy = Proxy::start(&server, "app", APP_PASSWORD);
    let ran = psql(&server, proxy.dir.path(), TOKEN, &["SELECT * FROM nope"]).await;
    assert!(
        ran.stderr.contains("relation \"nope\" does not exist"),
        "{}",
        ran.stderr
    );
    let rules = proxy.rules.clone();
    proxy.result().await.expect("ends cleanly");
    assert_eq!(
        rules.logged(),
        vec![(
            "SELECT * FROM nope".into(),
            Outcome::Error("ERROR 42P01: relation \"nope\" does not exist".into())
        )]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn md5_and_scram_roles_log_in_and_secrets_stay_out_of_errors() {
    let Some(server) = PgServer::start() else {
        return;
    };
    for (user, password) in [("app", APP_PASSWORD), ("legacy", LEGACY_PASSWORD)] {
        let proxy = Proxy::start(&server, user, password);
        let ran = psql(&server, proxy.dir.path(), TOKEN, &["SELECT current_user"]).await;
        assert_eq!((ran.status, ran.stdout.trim()), (0, user), "{}", ran.stderr);
        proxy.result().await.expect("ends cleanly");
    }
    // A wrong vaulted password: the server's own message, to psql and in
    // the error, and neither secret anywhere in the error's text.
    let proxy = Proxy::start(&server, "app", "not-the-Vaulted-one");
    let ran = psql(&server, proxy.dir.path(), TOKEN, &["SELECT 1"]).await;
    assert_ne!(ran.status, 0);
    assert!(
        ran.stderr
            .contains("password authentication failed for user \"app\""),
        "{}",
        ran.stderr
    );
    let error = proxy.result().await.expect_err("the login fails");
    let text = error.to_string();
    assert_eq!(
        text,
        "upstream refused the login: password authentication failed for user \"app\""
    );
    for secret in ["not-the-Vaulted-one", TOKEN] {
        assert!(!text.contains(secret) && !format!("{error:?}").contains(secret));
        assert!(!ran.stderr.contains(secret));
    }
    // A wrong one-time password never reaches the server; the token is spent.
    let proxy = Proxy::start(&server, "app", APP_PASSWORD);
    let ran = psql(&server, proxy.dir.path(), "guess", &["SELECT 1"]).await;
    assert!(
        ran.stderr.contains("password authentication failed"),
        "{}",
        ran.stderr
    );
    let socket = proxy.socket();
    assert!(matches!(proxy.result().await, Err(ProxyError::BadToken)));
    assert!(std::os::unix::net::UnixStream::connect(socket).is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_connection_per_session_and_cancel_reaches_the_server() {
    let Some(server) = PgServer::start() else {
        return;
    };
    let proxy = Proxy::start(&server, "app", APP_PASSWORD);
    let mut main = RawClient::connect(&proxy.socket()).await;
    let login = main.login(TOKEN).await;
    assert!(tags(&login).ends_with('Z'), "{}", tags(&login));
    // A second psql with the same token, while the first is connected.
    let second = psql(&server, proxy.dir.path(), TOKEN, &["SELECT 1"]).await;
    assert_ne!(second.status, 0);
    assert!(
        second.stderr.contains("one connection per session"),
        "{}",
        second.stderr
    );
    // A long query, then a cancel request on a new connection, as psql's
    // Ctrl-C sends it.
    main.send(&query("SELECT pg_sleep(30)")).await;
    proxy.rules.checked.notified().await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut cancel = tokio::net::UnixStream::connect(proxy.socket())
        .await
        .unwrap();
    let mut request = vec![0, 0, 0, 16, 0x04, 0xd2, 0x16, 0x2e];
    request.extend_from_slice(&main.key);
    tokio::io::AsyncWriteExt::write_all(&mut cancel, &request)
        .await
        .unwrap();
    let answer = main.until_ready().await;
    assert_eq!(
        error_text(&answer).as_deref(),
        Some("canceling statement due to user request"),
        "{}",
        tags(&answer)
    );
    main.send(&pg_terminate()).await;
    proxy.result().await.expect("ends cleanly");
}

fn pg_terminate() -> Vec<u8> {
    support::pg::message(b'X', b"")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pipelined_refusal_comes_after_the_answers_before_it() {
    let Some(server) = PgServer::start() else {
        return;
    };
    server.admin_in(
        "appdb",
        "CREATE TABLE keep (n int); ALTER TABLE keep OWNER TO app",
    );
    let proxy = Proxy::start(&server, "app", APP_PASSWORD);
    let mut client = RawClient::connect(&proxy.socket()).await;
    client.login(TOKEN).await;
    // One write: an allowed statement's Parse/Bind/Execute, then a denied
    // Parse and the rest of its batch, then Sync.
    let mut batch = Vec::new();
    batch.extend(parse("", "SELECT 41 + 1"));
    batch.extend(bind("", ""));
    batch.extend(execute(""));
    batch.extend(parse("s2", "DROP TABLE keep"));
    batch.extend(bind("", "s2"));
    batch.extend(execute(""));
    batch.extend(sync());
    client.send(&batch).await;
    let answer = client.until_ready().await;
    assert_eq!(tags(&answer), "12DCEZ");
    assert_eq!(answer[2].1.as_ref(), b"\0\x01\0\0\0\x0242");
    assert_eq!(
        error_text(&answer).as_deref(),
        Some("rampart: statement refused by rule no-drop-table")
    );
    assert_eq!(answer[5].1.as_ref(), b"I");
    // The connection goes on, in both protocols.
    let mut next = Vec::new();
    next.extend(parse("", "SELECT count(*) FROM keep"));
    next.extend(bind("", ""));
    next.extend(execute(""));
    next.extend(sync());
    next.extend(query("drop table keep"));
    next.extend(query("SELECT 2"));
    client.send(&next).await;
    assert_eq!(tags(&client.until_ready().await), "12DCZ");
    assert_eq!(tags(&client.until_ready().await), "EZ");
    assert_eq!(tags(&client.until_ready().await), "TDCZ");
    // A query over the 16 MiB limit is refused unread, and the rest goes on.
    let mut huge = query(&"x".repeat((16 << 20) + 1));
    huge.extend(query("SELECT 3"));
    client.send(&huge).await;
    let refused = client.until_ready().await;
    assert!(
        error_text(&refused).is_some_and(|e| e.starts_with("statement too long for the bastion")),
        "{refused:?}"
    );
    assert_eq!(tags(&client.until_ready().await), "TDCZ");
    client.send(&pg_terminate()).await;
    let rules = proxy.rules.clone();
    proxy.result().await.expect("ends cleanly");
    // Refusals are logged when refused, outcomes when they come: sort.
    let mut logged = rules.logged();
    logged.sort_by(|a, b| a.0.cmp(&b.0));
    let refused = |rule: &str| Outcome::Refused { rule: rule.into() };
    let big = format!("(a statement of {} bytes, not read)", (16 << 20) + 2);
    let mut want = vec![
        ("SELECT 41 + 1".to_string(), done("SELECT 1")),
        ("DROP TABLE keep".into(), refused("no-drop-table")),
        ("SELECT count(*) FROM keep".into(), done("SELECT 1")),
        ("drop table keep".into(), refused("no-drop-table")),
        ("SELECT 2".into(), done("SELECT 1")),
        (big, refused("size limit")),
        ("SELECT 3".into(), done("SELECT 1")),
    ];
    want.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(logged, want);
    let log = server.log();
    assert!(
        !log.contains("DROP TABLE keep") && !log.contains("drop table keep"),
        "{log}"
    );
    assert!(log.contains("SELECT 41 + 1"), "{log}");
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
async fn tls_pins_on_first_use_and_a_wrong_pin_is_refused_before_the_login() {
    let cert = TestCert::generate();
    let Some(server) = PgServer::start_tls(&cert.pem, &cert.key) else {
        return;
    };
    let authorized = || {
        server
            .log()
            .matches("connection authorized: user=app")
            .count()
    };
    let ssl = "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()";

    // Nothing pinned: the query runs over TLS, and the session is told
    // the certificate the server presented.
    let (first_use, told) = tls(None);
    let proxy = Proxy::start_with(&server, "app", APP_PASSWORD, Some(first_use));
    let ran = psql(&server, proxy.dir.path(), TOKEN, &[ssl]).await;
    assert_eq!(
        (ran.status, ran.stdout.as_str()),
        (0, "t\n"),
        "{}",
        ran.stderr
    );
    proxy.result().await.expect("ends cleanly");
    assert_eq!(fingerprints(&told), vec![cert.fingerprint.clone()]);
    assert_eq!(authorized(), 1, "{}", server.log());

    // The right pin: the same, and nothing to pin.
    let (pinned, told) = tls(Some(&cert.fingerprint));
    let proxy = Proxy::start_with(&server, "app", APP_PASSWORD, Some(pinned));
    let ran = psql(&server, proxy.dir.path(), TOKEN, &[ssl]).await;
    assert_eq!(
        (ran.status, ran.stdout.as_str()),
        (0, "t\n"),
        "{}",
        ran.stderr
    );
    proxy.result().await.expect("ends cleanly");
    assert!(fingerprints(&told).is_empty());
    assert_eq!(authorized(), 2, "{}", server.log());

    // A wrong pin: refused after the handshake, before the StartupMessage;
    // the error names both fingerprints and the server saw no login.
    let (wrong, told) = tls(Some(WRONG_PIN));
    let proxy = Proxy::start_with(&server, "app", APP_PASSWORD, Some(wrong));
    let ran = psql(&server, proxy.dir.path(), TOKEN, &["SELECT 1"]).await;
    assert_ne!(ran.status, 0);
    assert!(
        ran.stderr
            .contains("rampart: cannot reach the database server"),
        "{}",
        ran.stderr
    );
    let error = proxy.result().await.expect_err("refused").to_string();
    assert!(
        error.contains(&cert.fingerprint) && error.contains(WRONG_PIN),
        "{error}"
    );
    assert!(!error.contains(APP_PASSWORD) && !ran.stderr.contains(APP_PASSWORD));
    assert!(fingerprints(&told).is_empty());
    assert_eq!(authorized(), 2, "{}", server.log());

    // No TLS asked: the server itself refuses the login, so it does
    // require TLS.
    let proxy = Proxy::start(&server, "app", APP_PASSWORD);
    let ran = psql(&server, proxy.dir.path(), TOKEN, &["SELECT 1"]).await;
    assert_ne!(ran.status, 0);
    assert!(ran.stderr.contains("no encryption"), "{}", ran.stderr);
    let error = proxy.result().await.expect_err("refused").to_string();
    assert!(
        error.starts_with("upstream refused the login: no pg_hba.conf entry")
            && error.ends_with("no encryption"),
        "{error}"
    );
    assert_eq!(authorized(), 2, "{}", server.log());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_asked_of_a_server_without_it_is_refused() {
    let Some(server) = PgServer::start() else {
        return;
    };
    let (first_use, told) = tls(None);
    let proxy = Proxy::start_with(&server, "app", APP_PASSWORD, Some(first_use));
    let ran = psql(&server, proxy.dir.path(), TOKEN, &["SELECT 1"]).await;
    assert_ne!(ran.status, 0);
    assert!(
        ran.stderr
            .contains("rampart: cannot reach the database server"),
        "{}",
        ran.stderr
    );
    let error = proxy.result().await.expect_err("refused").to_string();
    assert_eq!(
        error,
        format!(
            "cannot reach 127.0.0.1:{}: the server does not offer TLS, and the asset asks for it",
            server.port
        )
    );
    assert!(fingerprints(&told).is_empty());
    // It never got as far as a statement.
    assert!(!server.log().contains("SELECT 1"), "{}", server.log());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancel_goes_over_tls_too() {
    let cert = TestCert::generate();
    let Some(server) = PgServer::start_tls(&cert.pem, &cert.key) else {
        return;
    };
    let (first_use, told) = tls(None);
    let proxy = Proxy::start_with(&server, "app", APP_PASSWORD, Some(first_use));
    let mut main = RawClient::connect(&proxy.socket()).await;
    let login = main.login(TOKEN).await;
    assert!(tags(&login).ends_with('Z'), "{}", tags(&login));
    main.send(&query("SELECT pg_sleep(30)")).await;
    proxy.rules.checked.notified().await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut cancel = tokio::net::UnixStream::connect(proxy.socket())
        .await
        .unwrap();
    let mut request = vec![0, 0, 0, 16, 0x04, 0xd2, 0x16, 0x2e];
    request.extend_from_slice(&main.key);
    tokio::io::AsyncWriteExt::write_all(&mut cancel, &request)
        .await
        .unwrap();
    let answer = main.until_ready().await;
    assert_eq!(
        error_text(&answer).as_deref(),
        Some("canceling statement due to user request"),
        "{}",
        tags(&answer)
    );
    // The cancel's connection made its own TLS handshake: the certificate
    // was told twice, once for the login and once for the cancel.
    assert_eq!(
        fingerprints(&told),
        vec![cert.fingerprint.clone(), cert.fingerprint.clone()]
    );
    main.send(&pg_terminate()).await;
    proxy.result().await.expect("ends cleanly");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delete_hidden_in_a_with_meets_the_delete_rule() {
    let Some(server) = PgServer::start() else {
        return;
    };
    server.admin_in(
        "appdb",
        "CREATE TABLE keep_me (n int); INSERT INTO keep_me VALUES (1), (2); \
         GRANT ALL ON keep_me TO app",
    );
    let proxy = Proxy::start(&server, "app", APP_PASSWORD);
    let hidden = "WITH d AS (DELETE FROM keep_me RETURNING *) SELECT count(*) FROM d";
    let ran = psql(
        &server,
        proxy.dir.path(),
        TOKEN,
        &[
            hidden,
            "EXPLAIN ANALYZE DELETE FROM keep_me",
            "SELECT count(*) FROM keep_me",
        ],
    )
    .await;
    assert_eq!(ran.stdout, "2\n", "stderr: {}", ran.stderr);
    assert_eq!(
        ran.stderr
            .matches("ERROR:  rampart: statement refused by rule no-delete")
            .count(),
        2,
        "{}",
        ran.stderr
    );
    let rules = proxy.rules.clone();
    proxy.result().await.expect("ends cleanly");
    let refused = Outcome::Refused {
        rule: "no-delete".into(),
    };
    assert_eq!(
        rules.logged(),
        vec![
            (hidden.into(), refused.clone()),
            ("EXPLAIN ANALYZE DELETE FROM keep_me".into(), refused),
            ("SELECT count(*) FROM keep_me".into(), done("SELECT 1")),
        ]
    );
    // The rows survive, and the server never saw the statements.
    assert_eq!(
        server
            .admin_in("appdb", "SELECT count(*) FROM keep_me")
            .trim(),
        "2"
    );
    let log = server.log();
    assert!(log.contains("SELECT count(*) FROM keep_me"), "{log}");
    assert!(!log.to_lowercase().contains("delete"), "{log}");
}
