//! The MySQL auditing proxy (`db::mysql`) against a real MariaDB and the
//! real mariadb client: rows come back, statements are logged with their
//! outcomes, a rule's refusal reaches the client and never the server,
//! one connection per session, a wrong one-time password and a wrong
//! vaulted password refused without secrets, a multi-statement query
//! judged statement by statement, and prepared statements logged by their
//! text; and TLS to a server that requires it: the certificate pinned on
//! first use, a right pin, a wrong one refused before any login, a server
//! without TLS refused. Skipped with a reason when MariaDB is missing,
//! unless RAMPART_REQUIRE_INTEROP=1.

mod support;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::future::BoxFuture;
use rampart::db::contract::Tls;
use rampart::db::mysql::{self, Audit, Outcome, ProxyError, Statement, Summary, Upstream, Verdict};
use support::TestCert;
use support::mysql::{APP_PASSWORD, MariaDb, RawClient, error_of};
use tokio::net::{TcpStream, UnixListener, UnixStream};
use tokio::task::JoinHandle;
use zeroize::Zeroizing;

const TOKEN: &str = "one-time-8c41d7";
const T: Duration = Duration::from_secs(60);

/// Denies `DROP TABLE` and `DELETE`, logs everything.
#[derive(Default)]
struct Rules {
    logged: Mutex<Vec<Statement>>,
    checked: Mutex<Vec<String>>,
}

impl Audit for Rules {
    fn check<'a>(&'a self, statement: &'a str) -> BoxFuture<'a, Verdict> {
        Box::pin(async move {
            self.checked.lock().unwrap().push(statement.to_string());
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

/// A proxy serving one session on `DIR/mysql.sock`.
struct Proxy {
    dir: tempfile::TempDir,
    rules: Arc<Rules>,
    task: JoinHandle<Result<Summary, ProxyError>>,
}

impl Proxy {
    fn start(server: &MariaDb, password: &str) -> Proxy {
        Proxy::start_with(server, password, None)
    }

    fn start_with(server: &MariaDb, password: &str, tls: Option<Tls>) -> Proxy {
        let dir = tempfile::tempdir().expect("temp dir");
        let listener = UnixListener::bind(dir.path().join("mysql.sock")).expect("bind");
        let rules = Arc::new(Rules::default());
        let upstream = Upstream {
            host: "127.0.0.1".into(),
            port: server.port,
            user: "app".into(),
            password: Some(Zeroizing::new(password.into())),
            database: "appdb".into(),
            connect_timeout: Duration::from_secs(10),
            tls,
        };
        let audit: Arc<dyn Audit> = rules.clone();
        let token = Zeroizing::new(TOKEN.to_string());
        let task = tokio::spawn(mysql::serve(listener, token, upstream, audit, None));
        Proxy { dir, rules, task }
    }

    fn socket(&self) -> PathBuf {
        self.dir.path().join("mysql.sock")
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

/// The mariadb client through the proxy, in batch mode, comments kept,
/// `sql` on its standard input (with `-e` it stops at the first error
/// even under `--force`).
async fn mariadb(server: &MariaDb, socket: &Path, password: &str, sql: &str) -> Ran {
    let mut cmd = tokio::process::Command::new(&server.client);
    cmd.arg("--no-defaults")
        .arg(format!("--socket={}", socket.display()))
        .args(["-u", "app", "--batch", "--skip-column-names"])
        .args(["--comments", "--force"])
        .arg(format!("--password={password}"))
        .arg("appdb")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true);
    let mut child = cmd.spawn().expect("run mariadb");
    let mut stdin = child.stdin.take().expect("stdin");
    tokio::io::AsyncWriteExt::write_all(&mut stdin, sql.as_bytes())
        .await
        .expect("write to mariadb");
    drop(stdin);
    let out = tokio::time::timeout(T, child.wait_with_output())
        .await
        .expect("mariadb ends")
        .expect("run mariadb");
    Ran {
        status: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn done(text: &str) -> Outcome {
    Outcome::Done(text.into())
}

fn refused() -> Outcome {
    Outcome::Refused {
        rule: "no-drop-table".into(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mariadb_gets_rows_and_a_refusal_and_everything_is_logged() {
    let Some(server) = MariaDb::start() else {
        return;
    };
    let proxy = Proxy::start(&server, APP_PASSWORD);
    let ran = mariadb(
        &server,
        &proxy.socket(),
        TOKEN,
        "CREATE TABLE t (n int); INSERT INTO t VALUES (1), (2), (3);\n\
         SELECT n FROM t ORDER BY n; DROP /* sneaky */ TABLE t; SELECT count(*) FROM t;\n\
         SELECT * FROM nope;\n",
    )
    .await;
    assert_eq!(ran.stdout, "1\n2\n3\n3\n", "stderr: {}", ran.stderr);
    assert!(
        ran.stderr.contains(
            "ERROR 1227 (42000) at line 2: rampart: statement refused by rule no-drop-table"
        ),
        "{}",
        ran.stderr
    );
    assert!(
        ran.stderr.contains("Table 'appdb.nope' doesn't exist"),
        "{}",
        ran.stderr
    );
    let rules = proxy.rules.clone();
    let result = proxy.result().await.expect("the session ends cleanly");
    assert_eq!(result.statements, 6);
    assert!(result.bytes_from_client > 100 && result.bytes_to_client > 100);
    assert_eq!(
        rules.logged(),
        vec![
            ("CREATE TABLE t (n int)".into(), done("OK, 0 rows affected")),
            (
                "INSERT INTO t VALUES (1), (2), (3)".into(),
                done("OK, 3 rows affected")
            ),
            ("SELECT n FROM t ORDER BY n".into(), done("3 rows")),
            ("DROP /* sneaky */ TABLE t".into(), refused()),
            ("SELECT count(*) FROM t".into(), done("1 row")),
            (
                "SELECT * FROM nope".into(),
                Outcome::Error("ERROR 1146 (42S02): Table 'appdb.nope' doesn't exist".into())
            ),
        ]
    );
    // The rules saw the statement as normalised, the server never saw it.
    assert!(
        rules
            .checked
            .lock()
            .unwrap()
            .contains(&"DROP TABLE t".to_string())
    );
    let log = server.general_log();
    assert!(log.contains("INSERT INTO t VALUES (1), (2), (3)"), "{log}");
    assert!(!log.to_lowercase().contains("drop"), "{log}");
    assert!(!log.contains("sneaky"), "{log}");
    assert_eq!(
        server
            .admin(
                "SELECT count(*) FROM information_schema.tables \
                 WHERE table_schema = 'appdb' AND table_name = 't'"
            )
            .trim(),
        "1"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn multi_statement_queries_are_judged_statement_by_statement() {
    let Some(server) = MariaDb::start() else {
        return;
    };
    server.admin("CREATE TABLE appdb.keep (n int); INSERT INTO appdb.keep VALUES (7)");
    let proxy = Proxy::start(&server, APP_PASSWORD);
    // With another delimiter the client sends each line as one query; the
    // server runs its statements one after the other.
    let ran = mariadb(
        &server,
        &proxy.socket(),
        TOKEN,
        "delimiter //\n\
         SELECT 1; SELECT n FROM keep //\n\
         SELECT 2; /*!40000 DROP\tTABLE keep */ //\n\
         SELECT 3 # ; DROP TABLE keep\n//\n\
         LOAD DATA LOCAL INFILE '/etc/hostname' INTO TABLE keep //\n",
    )
    .await;
    assert_eq!(ran.stdout, "1\n7\n3\n", "stderr: {}", ran.stderr);
    assert!(
        ran.stderr
            .contains("rampart: statement refused by rule no-drop-table"),
        "{}",
        ran.stderr
    );
    let rules = proxy.rules.clone();
    proxy.result().await.expect("ends cleanly");
    let logged = rules.logged();
    assert_eq!(logged.len(), 4, "{logged:?}");
    assert_eq!(
        logged[0],
        (
            "SELECT 1; SELECT n FROM keep".into(),
            done("1 row (last of 2 results)")
        )
    );
    assert_eq!(logged[1].1, refused());
    assert_eq!(logged[2].1, done("1 row"));
    // LOCAL INFILE is not offered: the server itself refuses, and no file
    // is read.
    assert!(
        matches!(&logged[3].1, Outcome::Error(e) if e.contains("local infile")),
        "{logged:?}"
    );
    let log = server.general_log();
    assert!(!log.contains("/*!40000"), "{log}");
    assert!(log.contains("SELECT 1; SELECT n FROM keep"), "{log}");
    assert_eq!(server.admin("SELECT n FROM appdb.keep").trim(), "7");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_passwords_and_second_connections_are_refused_without_secrets() {
    let Some(server) = MariaDb::start() else {
        return;
    };
    // A wrong one-time password never reaches the server; the token is
    // spent either way.
    let proxy = Proxy::start(&server, APP_PASSWORD);
    let ran = mariadb(&server, &proxy.socket(), "guess", "SELECT 1").await;
    assert_ne!(ran.status, 0);
    assert!(
        ran.stderr.contains(
            "ERROR 1045 (28000): rampart: access denied: not this session's one-time password"
        ),
        "{}",
        ran.stderr
    );
    let socket = proxy.socket();
    assert!(matches!(proxy.result().await, Err(ProxyError::BadToken)));
    assert!(UnixStream::connect(socket).await.is_err());

    // A wrong vaulted password: the server's own message, to the client
    // and in the error, and neither secret in it.
    let proxy = Proxy::start(&server, "not-the-Vaulted-one");
    let ran = mariadb(&server, &proxy.socket(), TOKEN, "SELECT 1").await;
    assert_ne!(ran.status, 0);
    let denied = "Access denied for user 'app'@'127.0.0.1' (using password: YES)";
    assert!(ran.stderr.contains(denied), "{}", ran.stderr);
    let error = proxy.result().await.expect_err("the login fails");
    let text = error.to_string();
    assert_eq!(
        text,
        format!("upstream refused the login: ERROR 1045 (28000): {denied}")
    );
    for secret in ["not-the-Vaulted-one", TOKEN] {
        assert!(!text.contains(secret) && !format!("{error:?}").contains(secret));
        assert!(!ran.stderr.contains(secret));
    }

    // One connection per session: a second client (even with the token)
    // may only stop the first one's statement, as a client's Ctrl-C does.
    let proxy = Proxy::start(&server, APP_PASSWORD);
    let mut main = RawClient::new(UnixStream::connect(proxy.socket()).await.unwrap());
    let (_, ok) = main.login("app", TOKEN, "appdb").await;
    assert_eq!(ok.first(), Some(&0), "{ok:?}");
    let second = mariadb(&server, &proxy.socket(), TOKEN, "SELECT 1").await;
    assert!(
        second
            .stderr
            .contains("a second connection may only stop the session's running statement")
            && !second.stdout.contains('1'),
        "{} {}",
        second.stdout,
        second.stderr
    );
    let second = mariadb(&server, &proxy.socket(), "guess", "SELECT 1").await;
    assert!(
        second
            .stderr
            .contains("not this session's one-time password"),
        "{}",
        second.stderr
    );
    main.command(0x01, b"").await;
    assert_eq!(proxy.result().await.expect("ends cleanly").statements, 0);
}

/// COM_STMT_PREPARE's answer: the statement id, or the ERR.
async fn prepare<S>(client: &mut RawClient<S>, sql: &str) -> Result<u32, (u16, String)>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    client.command(0x16, sql.as_bytes()).await;
    let (_, first) = client.read().await.expect("an answer to the prepare");
    if let Some(error) = error_of(&first) {
        return Err(error);
    }
    let id = u32::from_le_bytes(first[1..5].try_into().unwrap());
    let columns = u16::from_le_bytes(first[5..7].try_into().unwrap());
    let params = u16::from_le_bytes(first[7..9].try_into().unwrap());
    let eofs = usize::from(columns > 0) + usize::from(params > 0);
    if eofs > 0 {
        client.until(eofs).await;
    }
    Ok(id)
}

/// COM_STMT_EXECUTE of a statement with one BIGINT parameter.
fn execute(id: u32, value: i64) -> Vec<u8> {
    let mut body = id.to_le_bytes().to_vec();
    body.extend_from_slice(&[0, 1, 0, 0, 0]);
    // The NULL bitmap, "types follow", BIGINT signed, the value.
    body.extend_from_slice(&[0, 1, 0x08, 0]);
    body.extend_from_slice(&value.to_le_bytes());
    body
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prepared_statements_are_logged_by_their_text() {
    let Some(server) = MariaDb::start() else {
        return;
    };
    server.admin("CREATE TABLE appdb.keep (n int)");
    // The proxy's mysql_native_password, straight to the server: MariaDB
    // accepts it.
    let tcp = TcpStream::connect(("127.0.0.1", server.port))
        .await
        .unwrap();
    let mut direct = RawClient::new(tcp);
    let (_, ok) = direct.login("app", APP_PASSWORD, "appdb").await;
    assert_eq!(ok.first(), Some(&0), "{:?}", error_of(&ok));

    let proxy = Proxy::start(&server, APP_PASSWORD);
    let mut client = RawClient::new(UnixStream::connect(proxy.socket()).await.unwrap());
    let (_, ok) = client.login("app", TOKEN, "").await;
    assert_eq!(ok.first(), Some(&0), "{:?}", error_of(&ok));
    // COM_INIT_DB is judged and logged as USE.
    client.command(0x02, b"appdb").await;
    assert_eq!(client.read().await.unwrap().1.first(), Some(&0));
    let id = prepare(&mut client, "SELECT ? + 1")
        .await
        .expect("prepared");
    client.command(0x17, &execute(id, 41)).await;
    let rows = client.until(2).await;
    // Column count, definition, EOF, one binary row, EOF.
    assert_eq!(rows.len(), 5, "{rows:?}");
    assert_eq!(rows[3].1.first(), Some(&0));
    let denied = prepare(&mut client, "DROP TABLE keep").await;
    assert_eq!(
        denied,
        Err((
            1227,
            "rampart: statement refused by rule no-drop-table".into()
        ))
    );
    // COM_CHANGE_USER would log in as someone else: refused unread.
    client.command(0x11, b"root\0\0").await;
    let (_, answer) = client.read().await.unwrap();
    let (code, text) = error_of(&answer).expect("an ERR");
    assert_eq!(code, 1227);
    assert!(text.contains("COM_CHANGE_USER is refused"), "{text}");
    client.command(0x19, &id.to_le_bytes()).await;
    client.command(0x01, b"").await;
    let rules = proxy.rules.clone();
    proxy.result().await.expect("ends cleanly");
    assert_eq!(
        rules.logged(),
        vec![
            ("USE appdb".into(), done("OK, 0 rows affected")),
            ("SELECT ? + 1".into(), done("1 row")),
            ("DROP TABLE keep".into(), refused()),
            (
                "(COM_CHANGE_USER)".into(),
                Outcome::Refused {
                    rule: "protocol command".into()
                }
            ),
        ]
    );
    let log = server.general_log();
    assert!(log.contains("SELECT ? + 1"), "{log}");
    assert!(!log.contains("DROP"), "{log}");
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
    let Some(server) = MariaDb::start_tls(&cert.pem, &cert.key) else {
        return;
    };
    // The server's general log has a Connect line for each login of app.
    let logins = || server.general_log().matches("Connect\tapp@").count();
    let version = "SHOW SESSION STATUS LIKE 'Ssl_version';\n";

    // Nothing pinned: the statement runs over TLS, and the session is told
    // the certificate the server presented.
    let (first_use, told) = tls(None);
    let proxy = Proxy::start_with(&server, APP_PASSWORD, Some(first_use));
    let ran = mariadb(&server, &proxy.socket(), TOKEN, version).await;
    assert_eq!(ran.status, 0, "{}", ran.stderr);
    assert!(
        ran.stdout.starts_with("Ssl_version\tTLSv1."),
        "{}",
        ran.stdout
    );
    proxy.result().await.expect("ends cleanly");
    assert_eq!(fingerprints(&told), vec![cert.fingerprint.clone()]);
    assert_eq!(logins(), 1, "{}", server.general_log());

    // The right pin: the same, and nothing to pin.
    let (pinned, told) = tls(Some(&cert.fingerprint));
    let proxy = Proxy::start_with(&server, APP_PASSWORD, Some(pinned));
    let ran = mariadb(&server, &proxy.socket(), TOKEN, version).await;
    assert_eq!(ran.status, 0, "{}", ran.stderr);
    assert!(
        ran.stdout.starts_with("Ssl_version\tTLSv1."),
        "{}",
        ran.stdout
    );
    proxy.result().await.expect("ends cleanly");
    assert!(fingerprints(&told).is_empty());
    assert_eq!(logins(), 2, "{}", server.general_log());

    // A wrong pin: refused after the handshake, before the response with
    // the credential; the error names both fingerprints and the server
    // logged no login.
    let (wrong, told) = tls(Some(WRONG_PIN));
    let proxy = Proxy::start_with(&server, APP_PASSWORD, Some(wrong));
    let ran = mariadb(&server, &proxy.socket(), TOKEN, "SELECT 'unseen';\n").await;
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
    assert_eq!(logins(), 2, "{}", server.general_log());
    assert!(!server.general_log().contains("unseen"));

    // No TLS asked: the server itself refuses the same password over
    // plain TCP (MariaDB 10.11 words require_secure_transport's refusal
    // as a denied login), so it does require TLS.
    let proxy = Proxy::start(&server, APP_PASSWORD);
    let ran = mariadb(&server, &proxy.socket(), TOKEN, "SELECT 'plain';\n").await;
    assert_ne!(ran.status, 0);
    let denied = "Access denied for user 'app'@'127.0.0.1'";
    assert!(ran.stderr.contains(denied), "{}", ran.stderr);
    let error = proxy.result().await.expect_err("refused").to_string();
    assert!(
        error.starts_with("upstream refused the login: ") && error.contains(denied),
        "{error}"
    );
    assert!(!server.general_log().contains("SELECT 'plain'"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_asked_of_a_server_without_it_is_refused() {
    let Some(server) = MariaDb::start() else {
        return;
    };
    let (first_use, told) = tls(None);
    let proxy = Proxy::start_with(&server, APP_PASSWORD, Some(first_use));
    let ran = mariadb(&server, &proxy.socket(), TOKEN, "SELECT 'unseen';\n").await;
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
    let log = server.general_log();
    assert!(
        !log.contains("Connect\tapp@") && !log.contains("unseen"),
        "{log}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delete_prepared_from_a_string_meets_the_delete_rule() {
    let Some(server) = MariaDb::start() else {
        return;
    };
    server.admin("CREATE TABLE appdb.keep (n int); INSERT INTO appdb.keep VALUES (7)");
    let proxy = Proxy::start(&server, APP_PASSWORD);
    // The client goes on after each error (`--force`). Prepared from a
    // variable, what a statement runs cannot be read: refused too.
    let ran = mariadb(
        &server,
        &proxy.socket(),
        TOKEN,
        "PREPARE s FROM 'DELETE FROM appdb.keep';\n\
         EXECUTE s;\n\
         SET @s = 'DELETE FROM appdb.keep';\n\
         PREPARE s FROM @s;\n\
         EXECUTE s;\n",
    )
    .await;
    assert!(
        ran.stderr
            .contains("rampart: statement refused by rule no-delete"),
        "{}",
        ran.stderr
    );
    assert!(
        ran.stderr
            .contains("rampart: statement refused by rule unreadable"),
        "{}",
        ran.stderr
    );
    let rules = proxy.rules.clone();
    proxy.result().await.expect("ends cleanly");
    let logged = rules.logged();
    assert_eq!(logged.len(), 5, "{logged:?}");
    assert_eq!(
        logged[0],
        (
            "PREPARE s FROM 'DELETE FROM appdb.keep'".into(),
            Outcome::Refused {
                rule: "no-delete".into()
            }
        )
    );
    assert_eq!(logged[2].1, done("OK, 0 rows affected"), "{logged:?}");
    assert!(
        matches!(&logged[3].1, Outcome::Refused { rule } if rule.starts_with("unreadable")),
        "{logged:?}"
    );
    // Nothing was prepared, so nothing ran: the server refused both
    // EXECUTEs, never saw a PREPARE, and the row is still there.
    assert!(matches!(&logged[1].1, Outcome::Error(_)), "{logged:?}");
    assert!(matches!(&logged[4].1, Outcome::Error(_)), "{logged:?}");
    let log = server.general_log();
    assert!(!log.contains("PREPARE"), "{log}");
    assert_eq!(server.admin("SELECT n FROM appdb.keep").trim(), "7");
}
