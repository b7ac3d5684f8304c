//! Database assets through the bastion (issue 19), against a throwaway
//! PostgreSQL server and the real psql, driven by real OpenSSH in a pty:
//! `ssh -t bastion pg1` gives the person psql on the asset's database; the
//! statements are logged from the wire; a denied `DROP TABLE` never reaches
//! the server; the account's password is nowhere the person, `ps`, the
//! recording or the database could show it; psql cannot start programs;
//! and a session kill ends the session. Skipped with a reason when
//! PostgreSQL, psql or ssh is missing, unless RAMPART_REQUIRE_INTEROP=1.

mod support;

use std::time::Duration;

use support::db::{
    DatabaseAsset, bastion_with, commands, nowhere_on_disk, openssh, postgres, run_ok,
};
use support::pg::{APP_PASSWORD, PgServer};
use support::ssh::{Client, TestBastion};

const T: Duration = Duration::from_secs(30);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn psql_through_openssh_logs_statements_and_refuses_a_drop_on_the_wire() {
    if support::peers::peer("ssh").is_none() {
        return;
    }
    let Some((server, mut b, admin)) = postgres().await else {
        return;
    };
    let (mut term, _keys) = openssh(&b, &admin, &["pg1"]).await;
    term.expect(T, |s| s.contains("appdb=>")).await;

    // The secret is in no process's arguments while psql runs.
    let ps = std::process::Command::new("ps")
        .args(["-eww", "-o", "args"])
        .output()
        .unwrap();
    let ps = String::from_utf8_lossy(&ps.stdout);
    assert!(ps.contains("psql"), "psql runs: {ps}");
    assert!(!ps.contains(APP_PASSWORD), "the password in ps: {ps}");

    // A query: rows on the person's screen.
    term.send(b"select count(*) * 14 as answer from keep_me;\r");
    term.expect(T, |s| s.contains("42") && s.contains("(1 row)"))
        .await;

    // A denied statement: psql shows the refusal, the session goes on,
    // and the server never sees it.
    term.send(b"drop table keep_me;\r");
    term.expect(T, |s| {
        s.contains("rampart: statement refused by rule no-drop")
    })
    .await;
    term.send(b"select 'still here' as status;\r");
    term.expect(T, |s| {
        s.contains("still here") && s.matches("(1 row)").count() >= 2
    })
    .await;

    // psql cannot start programs: `\!` runs nothing (the marker's place
    // is one any user may write to, so only the sandbox can stop it).
    let marker = std::env::temp_dir().join(format!("rampart-escape-{}", std::process::id()));
    let _ = std::fs::remove_file(&marker);
    term.send(format!("\\! touch {}\r", marker.display()).as_bytes());
    term.send(b"select 'after escape' as status;\r");
    term.expect(T, |s| s.contains("after escape")).await;
    assert!(!marker.exists(), "psql ran a program");

    term.send(b"\\q\r");
    let code = term.wait_exit(T).await;
    assert_eq!(code, Some(0), "{}", term.text());

    let kept = server.admin_in("appdb", "SELECT count(*) FROM keep_me");
    assert!(kept.contains('3'), "the table is still there: {kept}");
    let log = server.log();
    assert!(
        !log.to_lowercase().contains("drop table"),
        "the server saw the DROP: {log}"
    );
    assert!(log.contains("select count(*) * 14"), "{log}");

    b.shutdown().await;
    let rows = commands(&b).await;
    let find = |needle: &str| {
        rows.iter()
            .find(|(c, _, _)| c.contains(needle))
            .unwrap_or_else(|| panic!("no row for {needle}: {rows:?}"))
            .clone()
    };
    let (_, output, action) = find("select count(*) * 14");
    assert!(output.starts_with("SELECT 1 ("), "{output}");
    assert_eq!(action, "allow");
    let (_, output, action) = find("drop table keep_me");
    assert_eq!(action, "deny");
    assert!(output.contains("no-drop"), "{output}");

    let session: (String, String, String) = sqlx::query_as(
        "SELECT protocol, asset_name, reason FROM sessions WHERE protocol = 'postgresql'",
    )
    .fetch_one(b.services.store.pool())
    .await
    .unwrap();
    assert_eq!(
        (session.0.as_str(), session.1.as_str()),
        ("postgresql", "pg1")
    );

    nowhere_on_disk(&b, APP_PASSWORD);
    drop(admin);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_database_session_ends_with_the_reason() {
    let Some((_server, mut b, admin)) = postgres().await else {
        return;
    };
    let person = Client::admin(b.addr).await;
    let mut term = person.shell(100, 30, Some("pg1")).await;
    term.expect(T, |s| s.contains("appdb=>")).await;
    let live = run_ok(&admin, "rampart session list --live --json").await;
    let id = live
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|v| v["asset"] == "pg1")
        .and_then(|v| v["id"].as_str().map(str::to_string))
        .unwrap_or_else(|| panic!("pg1 is live: {live}"));
    run_ok(
        &admin,
        &format!("rampart session kill {id} --reason 'audit window'"),
    )
    .await;
    // The notice is the terminal's, on a line of its own (not standard
    // error's bare line feeds, which staircase in a raw terminal).
    term.expect(T, |s| {
        s.lines()
            .any(|l| l.starts_with("rampart: ") && l.contains("audit window"))
    })
    .await;
    assert!(term.wait_close(T).await, "the channel closes");
    b.shutdown().await;
    let reason: (String,) = sqlx::query_as("SELECT reason FROM sessions WHERE id = $1")
        .bind(&id)
        .fetch_one(b.services.store.pool())
        .await
        .unwrap();
    assert!(reason.0.contains("audit window"), "{}", reason.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn removing_the_permission_ends_a_running_database_session() {
    let Some((_server, mut b, admin)) = postgres().await else {
        return;
    };
    let person = Client::admin(b.addr).await;
    let mut term = person.shell(100, 30, Some("pg1")).await;
    term.expect(T, |s| s.contains("appdb=>")).await;
    run_ok(&admin, "rampart perm remove on-pg1").await;
    term.expect(T, |s| s.contains("your access to this asset has ended"))
        .await;
    assert!(term.wait_close(T).await, "the channel closes");
    b.shutdown().await;
    let reason: (String,) =
        sqlx::query_as("SELECT reason FROM sessions WHERE protocol = 'postgresql'")
            .fetch_one(b.services.store.pool())
            .await
            .unwrap();
    assert_eq!(reason.0, "permission ended");
}

/// The value of the line `NAME value` in the ticket's text.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_cli_through_openssh_logs_commands_and_refuses_a_flushall() {
    if support::peers::peer("ssh").is_none() {
        return;
    }
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
    let (mut term, _keys) = openssh(&b, &admin, &["r1"]).await;
    term.expect(T, |s| s.contains("redis.sock>")).await;
    term.send(b"GET keep\r");
    term.expect(T, |s| s.contains("\"me\"")).await;
    term.send(b"flushall\r");
    term.expect(T, |s| {
        s.contains("rampart: command refused by rule no-flush")
    })
    .await;
    term.send(b"quit\r");
    assert_eq!(term.wait_exit(T).await, Some(0), "{}", term.text());
    assert!(
        server.cli(3, &["GET", "keep"]).contains("me"),
        "the key survived"
    );
    assert_eq!(server.calls("flushall"), 0, "the server never saw FLUSHALL");
    b.shutdown().await;
    let rows = commands(&b).await;
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
    drop(admin);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mariadb_through_openssh_logs_statements_and_refuses_a_drop() {
    if support::peers::peer("ssh").is_none() {
        return;
    }
    let Some((server, mut b, admin)) = support::db::mariadb().await else {
        return;
    };
    let (mut term, _keys) = openssh(&b, &admin, &["my1"]).await;
    term.expect(T, |s| s.contains("[appdb]>")).await;
    term.send(b"select count(*) * 21 as answer from keep_me;\r");
    term.expect(T, |s| s.contains("42") && s.contains("1 row in set"))
        .await;
    term.send(b"drop table keep_me;\r");
    term.expect(T, |s| {
        s.contains("rampart: statement refused by rule no-drop")
    })
    .await;
    // --sandbox: the client's own way out is shut.
    term.send(b"\\! id\r");
    term.expect(T, |s| s.contains("sandbox")).await;
    term.send(b"quit\r");
    assert_eq!(term.wait_exit(T).await, Some(0), "{}", term.text());
    assert!(
        server
            .admin("SELECT count(*) FROM appdb.keep_me")
            .contains('2')
    );
    let log = server.general_log();
    assert!(!log.to_lowercase().contains("drop table"), "{log}");
    b.shutdown().await;
    let rows = commands(&b).await;
    assert!(
        rows.iter()
            .any(|(c, o, a)| c.starts_with("select count(*) * 21")
                && o.starts_with("1 row")
                && a == "allow"),
        "{rows:?}"
    );
    assert!(
        rows.iter()
            .any(|(c, _, a)| c.starts_with("drop table keep_me") && a == "deny"),
        "{rows:?}"
    );
    nowhere_on_disk(&b, support::mysql::APP_PASSWORD);
    drop(admin);
}

/// The id of the request waiting for `what`, once it waits.
async fn waiting(b: &TestBastion, what: &str) -> u64 {
    let deadline = std::time::Instant::now() + T;
    loop {
        if let Some(r) = b
            .shared
            .live
            .approvals()
            .into_iter()
            .find(|r| r.command.contains(what))
        {
            return r.id;
        }
        assert!(std::time::Instant::now() < deadline, "{what} never waited");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_statement_under_a_review_rule_waits_for_another_administrator() {
    let Some((server, mut b, admin)) = postgres().await else {
        return;
    };
    run_ok(
        &admin,
        "rampart filter add hold-delete --pattern '(?i)^delete' --action review --on sql",
    )
    .await;
    b.services
        .ops
        .user_add(
            &rampart::ops::Caller::local(),
            rampart::ops::UserSpec {
                name: "ada".into(),
                role: Some(rampart::model::Role::Admin),
                password: Some(rampart::vault::Secret::new("ada-Passw0rd-long".into())),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    b.reload().await;
    let ada = Client::password(b.addr, "ada", "ada-Passw0rd-long")
        .await
        .unwrap();
    let mut term = admin.shell(100, 30, Some("pg1")).await;
    term.expect(T, |s| s.contains("appdb=>")).await;

    // Approved by another administrator: it runs.
    term.send(b"delete from keep_me where id = 1;\r").await;
    let id = waiting(&b, "delete from keep_me where id = 1").await;
    term.expect(T, |s| s.contains("held for an administrator's review"))
        .await;
    run_ok(&ada, &format!("rampart session approve {id}")).await;
    term.expect(T, |s| s.contains("DELETE 1")).await;

    // Denied: it never reaches the server, and psql says so.
    term.send(b"delete from keep_me;\r").await;
    let id = waiting(&b, "delete from keep_me").await;
    run_ok(&ada, &format!("rampart session deny {id}")).await;
    term.expect(T, |s| s.contains("refused by rule hold-delete"))
        .await;
    term.send(b"\\q\r").await;
    assert!(term.wait_close(T).await);
    b.shutdown().await;

    let kept = server.admin_in("appdb", "SELECT count(*) FROM keep_me");
    assert!(kept.contains('2'), "one row deleted, not all: {kept}");
    let rows = commands(&b).await;
    assert!(
        rows.iter()
            .any(|(c, o, a)| c == "delete from keep_me where id = 1;"
                && o.starts_with("DELETE 1")
                && a == "review"),
        "{rows:?}"
    );
    assert!(
        rows.iter()
            .any(|(c, _, a)| c == "delete from keep_me;" && a == "deny"),
        "{rows:?}"
    );
}

/// The fingerprint pinned for asset `asset` under `algorithm`, once there.
async fn pinned(b: &TestBastion, asset: &str, algorithm: &str) -> Option<String> {
    sqlx::query_scalar(
        "SELECT k.fingerprint FROM asset_host_keys k JOIN assets a ON a.id = k.asset_id
         WHERE a.name = $1 AND k.algorithm = $2",
    )
    .bind(asset)
    .bind(algorithm)
    .fetch_optional(b.services.store.pool())
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tls_asset_pins_the_servers_certificate_and_refuses_another() {
    if support::peers::peer("ssh").is_none() {
        return;
    }
    let cert = support::TestCert::generate();
    let (pem, key) = (cert.pem.clone(), cert.key.clone());
    let Some(server) = tokio::task::spawn_blocking(move || PgServer::start_tls(&pem, &key))
        .await
        .unwrap()
    else {
        return;
    };
    let (mut b, admin) = bastion_with(DatabaseAsset {
        name: "pg1",
        protocol: format!("postgresql/{}", server.port),
        database: "appdb",
        password: APP_PASSWORD,
        rule: ("no-drop", r"(?i)^drop\s+table", "sql"),
    })
    .await;

    // Without --tls the server (hostssl only) refuses the proxy's login.
    let (term, _keys) = openssh(&b, &admin, &["pg1"]).await;
    term.expect(T, |s| s.contains("no encryption")).await;
    assert_eq!(pinned(&b, "pg1", "postgresql-tls").await, None);
    drop(term);

    // With it: TLS to the server, and its certificate pinned on first use.
    run_ok(&admin, "rampart asset edit pg1 --tls").await;
    b.reload().await;
    let (mut term, _keys) = openssh(&b, &admin, &["pg1"]).await;
    term.expect(T, |s| s.contains("appdb=>")).await;
    term.send(b"select ssl from pg_stat_ssl where pid = pg_backend_pid();\r");
    term.expect(T, |s| s.contains("\n t\n(1 row)")).await;
    term.send(b"\\q\r");
    assert_eq!(term.wait_exit(T).await, Some(0), "{}", term.text());
    let deadline = std::time::Instant::now() + T;
    while pinned(&b, "pg1", "postgresql-tls").await.is_none() {
        assert!(std::time::Instant::now() < deadline, "nothing was pinned");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        pinned(&b, "pg1", "postgresql-tls").await.as_deref(),
        Some(cert.fingerprint.as_str())
    );

    // Another certificate than the pinned one (as after a man in the
    // middle, or a renewal nobody checked): refused before the password is
    // sent, and the person is told what to ask for.
    let logins = server
        .log()
        .matches("connection authorized: user=app")
        .count();
    let other = format!("SHA256:{}", "0".repeat(64));
    sqlx::query("UPDATE asset_host_keys SET fingerprint = $1 WHERE algorithm = 'postgresql-tls'")
        .bind(&other)
        .execute(b.services.store.pool())
        .await
        .unwrap();
    let (term, _keys) = openssh(&b, &admin, &["pg1"]).await;
    term.expect(T, |s| {
        s.contains(&format!("not the pinned {other}")) && s.contains("rampart asset trust")
    })
    .await;
    drop(term);
    assert_eq!(
        server
            .log()
            .matches("connection authorized: user=app")
            .count(),
        logins,
        "the server saw a login"
    );

    // `asset trust` forgets the pin; the next session pins again.
    run_ok(&admin, "rampart asset trust pg1").await;
    let (mut term, _keys) = openssh(&b, &admin, &["pg1"]).await;
    term.expect(T, |s| s.contains("appdb=>")).await;
    term.send(b"\\q\r");
    assert_eq!(term.wait_exit(T).await, Some(0), "{}", term.text());
    b.shutdown().await;
    assert_eq!(
        pinned(&b, "pg1", "postgresql-tls").await.as_deref(),
        Some(cert.fingerprint.as_str())
    );
    nowhere_on_disk(&b, APP_PASSWORD);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_mariadb_session_stops_its_running_statement_on_the_server() {
    if support::peers::peer("ssh").is_none() {
        return;
    }
    let Some((server, mut b, admin)) = support::db::mariadb().await else {
        return;
    };
    let sleeping = || support::db::running(&server, "select benchmark(");
    let (mut term, _keys) = openssh(&b, &admin, &["my1"]).await;
    term.expect(T, |s| s.contains("[appdb]>")).await;
    // Work that does not look at the client's socket (SLEEP does, and
    // ends with it).
    term.send(b"select benchmark(50000000000, md5('x'));\r");
    let deadline = std::time::Instant::now() + T;
    while sleeping() != "1" {
        assert!(std::time::Instant::now() < deadline, "the statement runs");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let live = run_ok(&admin, "rampart session list --live --json").await;
    let id = live
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|v| v["asset"] == "my1")
        .and_then(|v| v["id"].as_str().map(str::to_string))
        .unwrap_or_else(|| panic!("my1 is live: {live}"));
    run_ok(
        &admin,
        &format!("rampart session kill {id} --reason 'runaway'"),
    )
    .await;
    term.expect(T, |s| s.contains("runaway")).await;
    // The server stops the statement now, not when it would have ended.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while sleeping() != "0" {
        assert!(
            std::time::Instant::now() < deadline,
            "the statement still runs on the server"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    b.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ctrl_c_in_mariadb_stops_the_running_statement_and_the_session_goes_on() {
    if support::peers::peer("ssh").is_none() {
        return;
    }
    let Some((server, mut b, admin)) = support::db::mariadb().await else {
        return;
    };
    let running = || support::db::running(&server, "select benchmark(");
    let (mut term, _keys) = openssh(&b, &admin, &["my1"]).await;
    term.expect(T, |s| s.contains("[appdb]>")).await;
    term.send(b"select benchmark(50000000000, md5('x'));\r");
    let deadline = std::time::Instant::now() + T;
    while running() != "1" {
        assert!(std::time::Instant::now() < deadline, "the statement runs");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    term.send(b"\x03");
    term.expect(T, |s| {
        s.contains("Ctrl-C -- query killed") && s.contains("row in set")
    })
    .await;
    assert_eq!(running(), "0", "the server stopped it");
    term.send(b"select 6 * 7 as answer;\r");
    term.expect(T, |s| s.contains("42")).await;
    term.send(b"quit\r");
    assert_eq!(term.wait_exit(T).await, Some(0), "{}", term.text());
    b.shutdown().await;
    nowhere_on_disk(&b, support::mysql::APP_PASSWORD);
}
