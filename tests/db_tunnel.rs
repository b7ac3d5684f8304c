//! Desktop database tools through the person's tunnel (issue 19): real
//! OpenSSH holds `ssh -L` open through the bastion, and the protocol's own
//! client (psql, mariadb, redis-cli) run outside the bastion logs in with
//! a one-time password from `rampart db ticket` or the menu. The proxy
//! logs in upstream with the vaulted secret; the statements are logged
//! and judged on the wire as in a recorded session; a spent ticket does
//! not log in twice. Skipped with a reason when a server, a client or ssh
//! is missing, unless RAMPART_REQUIRE_INTEROP=1.

mod support;

use std::process::Output;
use std::time::Duration;

use support::db::{
    DatabaseAsset, Tunnel, bastion_with, field, nowhere_on_disk, postgres, run_ok, tunnel_commands,
};
use support::pty::PtyChild;

const T: Duration = Duration::from_secs(30);

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Runs a client off the test's runtime.
async fn run(mut command: std::process::Command) -> Output {
    tokio::task::spawn_blocking(move || command.output().unwrap())
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn psql_through_ssh_l_logs_in_with_a_one_time_password() {
    let Some([ssh, psql]) = support::peers::peers(["ssh", "psql"]) else {
        return;
    };
    let Some((server, mut b, admin)) = postgres().await else {
        return;
    };
    run_ok(
        &admin,
        "rampart perm add tun --user admin --asset pg1 --actions tunnel",
    )
    .await;
    b.reload().await;
    let tunnel = Tunnel::open(&b, &admin, "pg1", server.port).await;
    let local = tunnel.local;
    let query = |password: String, sql: &'static str| {
        let mut command = std::process::Command::new(&psql);
        command
            .arg(format!(
                "host=127.0.0.1 port={local} user=app dbname=appdb sslmode=disable"
            ))
            .args(["-X", "-A", "-t", "-c", sql])
            .env("PGPASSWORD", password);
        run(command)
    };

    let text = run_ok(&admin, "rampart db ticket pg1").await;
    assert!(
        text.contains(&format!("-L {}:pg1:{}", server.port, server.port)),
        "{text}"
    );
    let password = field(&text, "password ");
    assert_eq!(field(&text, "user "), "app");
    let out = query(password.clone(), "select count(*) from keep_me").await;
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out).trim(), "3");

    // Spent: the same password does not log in twice.
    let out = query(password, "select 1").await;
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("password authentication failed"),
        "{}",
        stderr(&out)
    );

    // A new ticket, from the menu this time: the rules judge the tool's
    // statements as psql's.
    let mut menu = std::process::Command::new(&ssh);
    menu.args(support::peers::client_options(&tunnel.key))
        .args(["-p", &b.addr.port().to_string(), "-tt", "admin@127.0.0.1"]);
    let mut menu = PtyChild::spawn(menu, 120, 30);
    menu.expect(T, |s| s.contains("pg1")).await;
    menu.send(b"pg1");
    menu.expect(T, |s| s.contains("Assets (1 of")).await;
    menu.send(b"\r");
    menu.expect(T, |s| s.contains("desktop tool")).await;
    menu.send(b"\x1b[B\r");
    menu.expect(T, |s| s.contains("Any key: back to the menu"))
        .await;
    let password = field(&menu.text(), "password ");
    menu.send(b" ");
    menu.expect(T, |s| s.contains("the one-time password was shown"))
        .await;
    drop(menu);
    let out = query(password, "drop table keep_me").await;
    assert!(
        stderr(&out).contains("refused by rule no-drop"),
        "{}",
        stderr(&out)
    );
    drop(tunnel);
    b.shutdown().await;

    let kept = server.admin_in("appdb", "SELECT count(*) FROM keep_me");
    assert!(kept.contains('3'), "{kept}");
    let rows = tunnel_commands(&b, "postgresql").await;
    assert!(
        rows.iter()
            .any(|(c, _, a)| c == "select count(*) from keep_me" && a == "allow"),
        "{rows:?}"
    );
    assert!(
        rows.iter()
            .any(|(c, _, a)| c == "drop table keep_me" && a == "deny"),
        "{rows:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mariadb_through_ssh_l_logs_in_with_a_one_time_password() {
    let Some([_, client]) = support::peers::peers(["ssh", "mariadb"]) else {
        return;
    };
    let Some((server, mut b, admin)) = support::db::mariadb().await else {
        return;
    };
    run_ok(
        &admin,
        "rampart perm add tun --user admin --asset my1 --actions tunnel",
    )
    .await;
    b.reload().await;
    let tunnel = Tunnel::open(&b, &admin, "my1", server.port).await;
    let local = tunnel.local.to_string();
    // The user name and database the ticket says, as a person copies
    // them; the password in argv only because this is a test.
    let query = |password: &str, sql: &str| {
        let mut command = std::process::Command::new(&client);
        command
            .args([
                "--no-defaults",
                "-h",
                "127.0.0.1",
                "-P",
                &local,
                "-u",
                "app",
            ])
            .arg(format!("-p{password}"))
            .args(["-N", "-B", "appdb", "-e", sql]);
        run(command)
    };

    let text = run_ok(&admin, "rampart db ticket my1").await;
    assert!(
        text.contains(&format!(
            "mysql -h 127.0.0.1 -P {} -u app -p appdb",
            server.port
        )),
        "{text}"
    );
    let password = field(&text, "password ");
    let out = query(&password, "select count(*) * 21 from keep_me").await;
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out).trim(), "42");

    let out = query(&password, "select 1").await;
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("access denied: not a valid one-time password"),
        "{}",
        stderr(&out)
    );

    let text = run_ok(&admin, "rampart db ticket my1").await;
    let out = query(&field(&text, "password "), "drop table keep_me").await;
    assert!(
        stderr(&out).contains("refused by rule no-drop"),
        "{}",
        stderr(&out)
    );
    drop(tunnel);
    b.shutdown().await;
    assert!(
        server
            .admin("SELECT count(*) FROM appdb.keep_me")
            .contains('2')
    );
    let log = server.general_log();
    assert!(!log.to_lowercase().contains("drop table"), "{log}");
    let rows = tunnel_commands(&b, "mysql").await;
    assert!(
        rows.iter()
            .any(|(c, o, a)| c == "select count(*) * 21 from keep_me"
                && o.starts_with("1 row")
                && a == "allow"),
        "{rows:?}"
    );
    assert!(
        rows.iter()
            .any(|(c, _, a)| c == "drop table keep_me" && a == "deny"),
        "{rows:?}"
    );
    nowhere_on_disk(&b, support::mysql::APP_PASSWORD);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_cli_through_ssh_l_logs_in_with_a_one_time_password() {
    let Some([_, client]) = support::peers::peers(["ssh", "redis-cli"]) else {
        return;
    };
    let Some(server) = tokio::task::spawn_blocking(support::redis::RedisServer::start)
        .await
        .unwrap()
    else {
        return;
    };
    server.cli(3, &["SET", "keep", "me"]);
    let (mut b, admin) = bastion_with(DatabaseAsset {
        name: "r1",
        protocol: format!("redis/{}", server.port),
        database: "3",
        password: support::redis::APP_PASSWORD,
        rule: ("no-flush", "^FLUSH(ALL|DB)", "redis"),
    })
    .await;
    run_ok(
        &admin,
        "rampart perm add tun --user admin --asset r1 --actions tunnel",
    )
    .await;
    b.reload().await;
    let tunnel = Tunnel::open(&b, &admin, "r1", server.port).await;
    let local = tunnel.local.to_string();
    let command = |password: &str, args: &[&str]| {
        let mut command = std::process::Command::new(&client);
        command
            .args([
                "-h",
                "127.0.0.1",
                "-p",
                &local,
                "--user",
                "app",
                "--no-auth-warning",
            ])
            .args(["-a", password])
            .args(args);
        run(command)
    };

    let text = run_ok(&admin, "rampart db ticket r1").await;
    assert!(
        text.contains(&format!(
            "redis-cli -h 127.0.0.1 -p {} --user app --askpass",
            server.port
        )),
        "{text}"
    );
    let password = field(&text, "password ");
    let out = command(&password, &["GET", "keep"]).await;
    assert_eq!(stdout(&out).trim(), "me", "{}", stderr(&out));

    let out = command(&password, &["GET", "keep"]).await;
    let said = stdout(&out) + &stderr(&out);
    assert!(said.contains("WRONGPASS"), "{said}");
    assert!(!stdout(&out).lines().any(|l| l == "me"), "{said}");

    let text = run_ok(&admin, "rampart db ticket r1").await;
    let out = command(&field(&text, "password "), &["FLUSHALL"]).await;
    let said = stdout(&out) + &stderr(&out);
    assert!(said.contains("refused by rule no-flush"), "{said}");
    drop(tunnel);
    b.shutdown().await;
    assert!(server.cli(3, &["GET", "keep"]).contains("me"));
    assert_eq!(server.calls("flushall"), 0, "the server never saw FLUSHALL");
    let rows = tunnel_commands(&b, "redis").await;
    assert!(
        rows.iter()
            .any(|(c, o, a)| c == "GET keep" && o.starts_with("\"me\"") && a == "allow"),
        "{rows:?}"
    );
    assert!(
        rows.iter()
            .any(|(c, _, a)| c.eq_ignore_ascii_case("flushall") && a == "deny"),
        "{rows:?}"
    );
    nowhere_on_disk(&b, support::redis::APP_PASSWORD);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_ends_database_sessions_and_tunnels_and_closes_them_upstream() {
    let Some([_, psql]) = support::peers::peers(["ssh", "psql"]) else {
        return;
    };
    let Some((server, mut b, admin)) = postgres().await else {
        return;
    };
    run_ok(
        &admin,
        "rampart perm add tun --user admin --asset pg1 --actions tunnel",
    )
    .await;
    b.reload().await;
    let app_connections = || {
        server
            .admin_in(
                "appdb",
                "SELECT count(*) FROM pg_stat_activity WHERE usename = 'app'",
            )
            .trim()
            .to_string()
    };

    // psql in the bastion's pty, and a desktop tool's long query through
    // a tunnel, both running when the bastion stops.
    let person = support::ssh::Client::admin(b.addr).await;
    let mut term = person.shell(100, 30, Some("pg1")).await;
    term.expect(T, |s| s.contains("appdb=>")).await;
    let tunnel = Tunnel::open(&b, &admin, "pg1", server.port).await;
    let password = field(&run_ok(&admin, "rampart db ticket pg1").await, "password ");
    let mut tool = std::process::Command::new(&psql);
    tool.arg(format!(
        "host=127.0.0.1 port={} user=app dbname=appdb sslmode=disable",
        tunnel.local
    ))
    .args(["-X", "-A", "-t", "-c", "select pg_sleep(60)"])
    .env("PGPASSWORD", password);
    let tool = tokio::spawn(run(tool));
    let deadline = std::time::Instant::now() + T;
    while app_connections() != "2" {
        assert!(
            std::time::Instant::now() < deadline,
            "two app connections: {}",
            app_connections()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let private_dirs = || {
        std::fs::read_dir(std::env::temp_dir())
            .unwrap()
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().starts_with("rampart-db-"))
            .count()
    };
    let dirs_before = private_dirs();
    assert!(dirs_before >= 1, "the session's private directory");

    let started = std::time::Instant::now();
    b.shutdown().await;
    assert!(started.elapsed() < Duration::from_secs(15));
    term.expect(T, |s| s.contains("shutting down")).await;
    let out = tokio::time::timeout(T, tool)
        .await
        .expect("the tool ends")
        .unwrap();
    assert!(!out.status.success(), "the long query did not finish");

    // Every session row closed with the reason; nothing left upstream or
    // on disk.
    let rows: Vec<(String, String, String)> =
        sqlx::query_as("SELECT kind, status, reason FROM sessions ORDER BY started_at")
            .fetch_all(b.services.store.pool())
            .await
            .unwrap();
    assert_eq!(rows.len(), 2, "{rows:?}");
    assert!(
        rows.iter()
            .all(|(_, status, reason)| status == "closed" && reason == "bastion shutdown"),
        "{rows:?}"
    );
    let deadline = std::time::Instant::now() + T;
    while app_connections() != "0" {
        assert!(
            std::time::Instant::now() < deadline,
            "the server still has app connections: {}",
            app_connections()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        private_dirs(),
        dirs_before - 1,
        "the private directory is gone"
    );
    drop(tunnel);
}
