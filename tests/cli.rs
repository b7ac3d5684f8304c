//! The ops CLI through the real binary, in a temp dir: the newcomer's path
//! (init, a user with a key, an asset, an account with a password from
//! stdin, a permission), the audit trail it leaves, and bad input.

mod support;

use std::os::unix::fs::PermissionsExt;

use support::{ALICE_KEY, Bastion, all_bytes, contains};

const TARGET_PASSWORD: &str = "Tr0ub4dor&3-horse-battery";

/// The newcomer's path, with what an auditor then sees.
fn newcomer() -> Bastion {
    let b = Bastion::new();
    let init = b.run(&["init"]);
    assert_eq!(init.status, 0, "{}", init.stderr);
    assert!(init.stderr.contains("one-time password"), "{}", init.stderr);

    std::fs::write(b.path().join("alice.pub"), format!("{ALICE_KEY}\n")).unwrap();
    b.run(&[
        "user",
        "add",
        "alice",
        "--key-file",
        "alice.pub",
        "--email",
        "alice@example.com",
    ])
    .ok();
    b.run(&["node", "add", "/DEFAULT/prod/web"]).ok();
    b.run(&[
        "asset",
        "add",
        "web1",
        "--address",
        "10.0.0.5",
        "--protocol",
        "ssh/22",
        "--protocol",
        "sftp",
        "--node",
        "/DEFAULT/prod/web",
    ])
    .ok();
    b.run_stdin(
        &[
            "account",
            "add",
            "web1",
            "root",
            "--password-stdin",
            "--privileged",
        ],
        &format!("{TARGET_PASSWORD}\n"),
    )
    .ok();
    b.run(&[
        "perm",
        "add",
        "web-ops",
        "--user",
        "alice",
        "--node",
        "/DEFAULT/prod",
        "--accounts",
        "root",
        "--protocols",
        "ssh,sftp",
        "--actions",
        "connect,upload",
    ])
    .ok();
    b
}

#[test]
fn the_newcomer_path_is_audited_without_the_password() {
    let b = newcomer();

    let ops = b.json_lines(&["audit", "operations"]);
    let verbs: Vec<&str> = ops.iter().map(|o| o["verb"].as_str().unwrap()).collect();
    // Newest first; init's admin creation is the oldest.
    assert_eq!(
        verbs,
        [
            "perm.add",
            "account.add",
            "asset.add",
            "node.add",
            "user.add",
            "user.add"
        ]
    );
    let account = &ops[1];
    assert_eq!(account["object"], "account root@web1");
    assert_eq!(account["after"]["secret"], "password");
    assert!(
        ops.iter()
            .all(|o| o["actor"].as_str().unwrap().starts_with("local:"))
    );

    // The target password is nowhere: not in any output, not in clear in
    // any file of the data dir (the database holds it sealed).
    let table = b.run(&["audit", "operations"]).ok();
    assert!(!table.contains(TARGET_PASSWORD));
    for args in [
        &["account", "list"][..],
        &["asset", "show", "web1"],
        &["asset", "show", "web1", "--json"],
        &["audit", "operations", "--json"],
    ] {
        let out = b.run(args).ok();
        assert!(
            !out.contains(TARGET_PASSWORD),
            "{args:?} shows the password"
        );
    }
    for (path, bytes) in all_bytes(&b.data_dir()) {
        assert!(
            !contains(&bytes, TARGET_PASSWORD),
            "{} holds the password in clear",
            path.display()
        );
    }

    // What the admin asks every day.
    let who = b.json_lines(&["perm", "who", "web1"]);
    assert_eq!(who.len(), 1, "{who:?}");
    assert_eq!(who[0]["user"], "alice");
    assert_eq!(who[0]["permission"], "web-ops");
    let what = b.json_lines(&["perm", "what", "alice"]);
    assert_eq!(what.len(), 1);
    assert_eq!(what[0]["asset"], "web1");

    let verify = b.run(&["audit", "verify"]).ok();
    assert!(verify.contains("audit chain intact: 6 rows"), "{verify}");

    // The dashboard and the screen search answer before any session.
    let dash = b.json_lines(&["audit", "dashboard"]);
    assert_eq!(dash.len(), 1);
    assert_eq!(dash[0]["sessions"]["week"], 0);
    assert_eq!(
        dash[0]["sessions_per_day"].as_object().map(|m| m.len()),
        Some(7)
    );
    assert_eq!(
        dash[0]["logins_per_hour"].as_object().map(|m| m.len()),
        Some(24)
    );
    assert!(b.json_lines(&["audit", "screen", "anything"]).is_empty());
}

#[tokio::test]
async fn audit_verify_names_a_row_changed_by_hand() {
    let b = newcomer();
    b.run(&["audit", "verify"]).ok();

    // Someone with write access to the database rewrites history.
    let pool = b.db().await;
    let id: String = sqlx::query_scalar("SELECT id FROM operation_log WHERE verb = 'perm.add'")
        .fetch_one(&pool)
        .await
        .unwrap();
    sqlx::query("UPDATE operation_log SET actor = 'nobody' WHERE id = $1")
        .bind(&id)
        .execute(&pool)
        .await
        .unwrap();
    pool.close().await;

    let line = b.run(&["audit", "verify"]).refused();
    assert!(line.contains("audit chain broken"), "{line}");
    assert!(line.contains(&format!("operation_log row {id}")), "{line}");
}

#[test]
fn data_files_are_private() {
    let b = Bastion::initialised();
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&b.data_dir()), 0o700);
    for (path, _) in all_bytes(&b.data_dir()) {
        assert_eq!(
            mode(&path) & 0o077,
            0,
            "{} is readable by others",
            path.display()
        );
    }
    assert_eq!(mode(&b.data_dir().join("master.key")), 0o600);
}

#[test]
fn init_twice_is_refused_and_changes_nothing() {
    let b = Bastion::initialised();
    let key = std::fs::read(b.data_dir().join("master.key")).unwrap();
    let line = b.run(&["init"]).refused();
    assert!(line.contains("already initialised"), "{line}");
    assert_eq!(std::fs::read(b.data_dir().join("master.key")).unwrap(), key);
}

#[test]
fn commands_before_init_say_what_to_do() {
    let b = Bastion::new();
    let line = b.run(&["user", "list"]).refused();
    assert!(line.contains("rampart init"), "{line}");
}

/// Each bad input: one line naming the problem, exit 1, and nothing changed.
#[test]
fn bad_input_is_refused_with_one_line_and_leaves_nothing() {
    let b = newcomer();
    let before = b.json_lines(&["audit", "operations"]).len();
    let cases: &[(&[&str], &str)] = &[
        (
            &["perm", "add", "p1", "--user", "mallory", "--asset", "web1"],
            "user \"mallory\" does not exist",
        ),
        (
            &["perm", "add", "p1", "--user", "alice", "--asset", "nope"],
            "asset \"nope\" does not exist",
        ),
        (
            &["perm", "add", "p1", "--group", "nope", "--asset", "web1"],
            "group \"nope\" does not exist",
        ),
        (
            &[
                "perm",
                "add",
                "p1",
                "--user",
                "alice",
                "--node",
                "/DEFAULT/nope",
            ],
            "node \"/DEFAULT/nope\" does not exist",
        ),
        (
            &[
                "perm",
                "add",
                "p1",
                "--user",
                "alice",
                "--node",
                "DEFAULT/prod",
            ],
            "node path \"DEFAULT/prod\" is not valid",
        ),
        (
            &[
                "perm", "add", "web-ops", "--user", "alice", "--asset", "web1",
            ],
            "permission \"web-ops\" already exists",
        ),
        (
            &[
                "perm",
                "add",
                "p1",
                "--user",
                "alice",
                "--asset",
                "web1",
                "--from",
                "2030-01-02",
                "--until",
                "2030-01-01",
            ],
            "is not after --from",
        ),
        (
            &[
                "perm",
                "add",
                "p1",
                "--user",
                "alice",
                "--asset",
                "web1",
                "--until",
                "2001-01-01",
            ],
            "already past",
        ),
        (
            &[
                "perm",
                "add",
                "p1",
                "--user",
                "alice",
                "--asset",
                "web1",
                "--actions",
                "fly",
            ],
            "actions \"fly\" is not valid",
        ),
        (&["user", "add", "alice"], "user \"alice\" already exists"),
        (
            &["user", "add", "bob", "--key", "ssh-ed25519 AAAA-not-base64"],
            "ssh-ed25519",
        ),
        (
            &["user", "add", "bob@web1"],
            "user name \"bob@web1\" is not valid",
        ),
        (&["node", "add", "prod"], "node path \"prod\" is not valid"),
        (
            &["node", "add", "/DEFAULT/prod/web"],
            "node \"/DEFAULT/prod/web\" already exists",
        ),
        (
            &["node", "remove", "/DEFAULT/prod/web"],
            "still holds 1 asset(s)",
        ),
        (
            &[
                "asset",
                "add",
                "web2",
                "--address",
                "10.0.0.6",
                "--protocol",
                "gopher/70",
            ],
            "protocol \"gopher/70\" is not valid",
        ),
        (
            &[
                "asset",
                "add",
                "rampart",
                "--address",
                "10.0.0.6",
                "--protocol",
                "ssh",
            ],
            "reserved",
        ),
        (
            &[
                "asset",
                "add",
                "web1",
                "--address",
                "10.0.0.6",
                "--protocol",
                "ssh",
            ],
            "asset \"web1\" already exists",
        ),
        (
            &["account", "add", "web1", "root"],
            "account \"root@web1\" already exists",
        ),
        (
            &["account", "add", "nope", "root"],
            "asset \"nope\" does not exist",
        ),
        (
            &[
                "filter",
                "add",
                "f1",
                "--pattern",
                "rm (-rf",
                "--action",
                "deny",
            ],
            "is not a valid regex",
        ),
        (
            &[
                "acl",
                "add",
                "a1",
                "--action",
                "deny",
                "--user",
                "alice",
                "--source",
                "10.0.0.0/33",
            ],
            "10.0.0.0/33",
        ),
        (
            &[
                "acl",
                "add",
                "a1",
                "--action",
                "deny",
                "--user",
                "alice",
                "--window",
                "Funday 08:00-18:00",
            ],
            "Funday",
        ),
        (
            &["group", "members", "add", "nope", "alice"],
            "group \"nope\" does not exist",
        ),
        (&["user", "remove", "admin"], "last active admin"),
        (
            &["perm", "edit", "nope", "--actions", "connect"],
            "permission \"nope\" does not exist",
        ),
        (
            &["perm", "edit", "web-ops", "--user", "mallory"],
            "user \"mallory\" does not exist",
        ),
        (
            &["perm", "edit", "web-ops", "--user", ""],
            "a permission needs at least one --user or --group",
        ),
        (
            &["perm", "edit", "web-ops", "--until", "soon"],
            "--until: time \"soon\" is not valid",
        ),
        (
            &["perm", "edit", "web-ops", "--actions", "fly"],
            "actions \"fly\" is not valid",
        ),
        (
            &["filter", "edit", "nope", "--action", "warn"],
            "filter \"nope\" does not exist",
        ),
        (
            &["acl", "edit", "nope", "--priority", "1"],
            "login acl \"nope\" does not exist",
        ),
        (
            &["node", "move", "/DEFAULT", "/ROOT"],
            "/DEFAULT is the root node and cannot be moved",
        ),
        (
            &["node", "move", "/DEFAULT/prod", "/DEFAULT/prod/web/x"],
            "inside itself",
        ),
        (
            &["node", "rename", "/DEFAULT/prod", "/DEFAULT/prod/web"],
            "inside itself",
        ),
        (
            &["user", "edit", "alice", "--group", "nope"],
            "group \"nope\" does not exist",
        ),
    ];
    for (args, expected) in cases {
        let line = b.run(args).refused();
        assert!(
            line.contains(expected),
            "{args:?}: expected {expected:?} in {line:?}"
        );
        assert!(line.starts_with("rampart: "), "{line}");
    }
    // The regex error is quoted, not paraphrased.
    let line = b
        .run(&[
            "filter",
            "add",
            "f1",
            "--pattern",
            "rm (-rf",
            "--action",
            "deny",
        ])
        .refused();
    assert!(line.contains("unclosed group"), "{line}");
    assert_eq!(
        b.json_lines(&["audit", "operations"]).len(),
        before,
        "a refused verb left a row"
    );
    assert_eq!(b.json_lines(&["perm", "list"]).len(), 1);
    assert!(b.json_lines(&["filter", "list"]).is_empty());
    b.run(&["audit", "verify"]).ok();
}

#[test]
fn a_usage_error_exits_2() {
    let b = Bastion::initialised();
    assert_eq!(b.run(&["user", "add"]).status, 2);
    assert_eq!(b.run(&["frobnicate"]).status, 2);
    assert_eq!(
        b.run(&["asset", "add", "x", "--address", "h"]).status,
        2,
        "--protocol is required"
    );
    assert_eq!(
        b.run(&["perm", "edit", "p", "--require-approval", "--no-approval"])
            .status,
        2
    );
    assert_eq!(b.run(&["node", "move", "/DEFAULT/a"]).status, 2);
}

/// The edit verbs: each option given replaces that field or list, the rest
/// stays, a lone "" empties a list; one operation row each.
#[test]
fn edit_verbs_replace_what_is_given_and_keep_the_rest() {
    let b = newcomer();
    b.run(&["group", "add", "dba"]).ok();

    let out = b
        .run(&["perm", "edit", "web-ops", "--actions", "connect"])
        .ok();
    assert_eq!(out, "permission web-ops updated\n");
    let p = &b.json_lines(&["perm", "show", "web-ops"])[0];
    assert_eq!(p["users"], serde_json::json!(["alice"]));
    assert_eq!(p["nodes"], serde_json::json!(["/DEFAULT/prod"]));
    assert_eq!(p["accounts"], "root");
    assert_eq!(p["protocols"], "ssh,sftp");
    assert_eq!(p["actions"], serde_json::json!(["connect"]));

    let out = b
        .run(&[
            "perm",
            "edit",
            "web-ops",
            "--name",
            "web-admin",
            "--user",
            "",
            "--group",
            "dba",
            "--until",
            "2099-01-01",
            "--require-approval",
            "--comment",
            "by group",
        ])
        .ok();
    assert_eq!(out, "permission web-ops updated and renamed to web-admin\n");
    let p = &b.json_lines(&["perm", "show", "web-admin"])[0];
    assert_eq!(p["users"], serde_json::json!([]));
    assert_eq!(p["groups"], serde_json::json!(["dba"]));
    assert_eq!(p["nodes"], serde_json::json!(["/DEFAULT/prod"]));
    assert_eq!(p["actions"], serde_json::json!(["connect"]));
    assert_eq!(p["valid_until"], "2099-01-01T00:00:00Z");
    assert_eq!(p["require_approval"], true);
    assert_eq!(p["comment"], "by group");
    b.run(&[
        "perm",
        "edit",
        "web-admin",
        "--until",
        "never",
        "--no-approval",
    ])
    .ok();
    let p = &b.json_lines(&["perm", "show", "web-admin"])[0];
    assert!(p["valid_until"].is_null(), "{p}");
    assert_eq!(p["require_approval"], false);
    assert_eq!(p["groups"], serde_json::json!(["dba"]));

    b.run(&[
        "filter",
        "add",
        "no-rm",
        "--pattern",
        "rm -rf",
        "--action",
        "deny",
        "--user",
        "alice",
    ])
    .ok();
    let out = b
        .run(&["filter", "edit", "no-rm", "--action", "warn", "--user", ""])
        .ok();
    assert_eq!(out, "filter no-rm updated\n");
    let f = &b.json_lines(&["filter", "show", "no-rm"])[0];
    assert_eq!(f["action"], "warn");
    assert_eq!(f["pattern"], "rm -rf");
    assert_eq!(f["users"], serde_json::json!([]));

    b.run(&[
        "acl",
        "add",
        "office",
        "--action",
        "allow",
        "--user",
        "alice",
        "--source",
        "10.1.0.0/16",
    ])
    .ok();
    let out = b
        .run(&["acl", "edit", "office", "--window", "Mon-Fri 08:00-18:00"])
        .ok();
    assert_eq!(out, "login acl office updated\n");
    let a = &b.json_lines(&["acl", "list"])[0];
    assert_eq!(a["sources"], serde_json::json!(["10.1.0.0/16"]));
    assert_eq!(a["windows"], serde_json::json!(["Mon-Fri 08:00-18:00"]));
    assert_eq!(a["users"], serde_json::json!(["alice"]));

    let out = b
        .run(&["node", "move", "/DEFAULT/prod", "/DEFAULT/live"])
        .ok();
    assert_eq!(
        out,
        "node /DEFAULT/prod moved to /DEFAULT/live with 1 node(s) below it\n"
    );
    let out = b
        .run(&["node", "rename", "/DEFAULT/live/web", "/SITE/web"])
        .ok();
    assert_eq!(
        out,
        "node /DEFAULT/live/web moved to /SITE/web; created /SITE\n"
    );
    let asset = &b.json_lines(&["asset", "show", "web1"])[0];
    assert_eq!(asset["nodes"], serde_json::json!(["/SITE/web"]));
    let p = &b.json_lines(&["perm", "show", "web-admin"])[0];
    assert_eq!(p["nodes"], serde_json::json!(["/DEFAULT/live"]));

    b.run(&["user", "edit", "alice", "--group", "dba"]).ok();
    let u = &b.json_lines(&["user", "show", "alice"])[0];
    assert_eq!(u["groups"], serde_json::json!(["dba"]));
    assert_eq!(u["email"], "alice@example.com", "what is not given stays");
    b.run(&["user", "edit", "alice", "--group", ""]).ok();
    let u = &b.json_lines(&["user", "show", "alice"])[0];
    assert_eq!(u["groups"], serde_json::json!([]));

    let ops = b.json_lines(&["audit", "operations", "--limit", "11"]);
    let verbs: Vec<&str> = ops.iter().map(|o| o["verb"].as_str().unwrap()).collect();
    assert_eq!(
        verbs,
        [
            "user.edit",
            "user.edit",
            "node.move",
            "node.move",
            "acl.edit",
            "acl.add",
            "filter.edit",
            "filter.add",
            "perm.edit",
            "perm.edit",
            "perm.edit",
        ]
    );
    b.run(&["audit", "verify"]).ok();
}

#[test]
fn group_membership_reaches_permissions() {
    let b = newcomer();
    b.run(&["user", "add", "bob", "--key", ALICE_KEY]).ok();
    b.run(&["group", "add", "dba"]).ok();
    b.run(&["group", "members", "add", "dba", "bob"]).ok();
    b.run(&[
        "perm",
        "add",
        "dba-web",
        "--group",
        "dba",
        "--asset",
        "web1",
        "--accounts",
        "@ALL",
    ])
    .ok();
    let what = b.json_lines(&["perm", "what", "bob"]);
    assert_eq!(what.len(), 1, "{what:?}");
    assert_eq!(what[0]["group"], "dba");
    b.run(&["group", "members", "remove", "dba", "bob"]).ok();
    assert!(b.json_lines(&["perm", "what", "bob"]).is_empty());
}

#[test]
fn a_missing_or_wrong_master_key_refuses_to_start() {
    let b = newcomer();
    let key_path = b.data_dir().join("master.key");
    let key = std::fs::read_to_string(&key_path).unwrap();
    std::fs::remove_file(&key_path).unwrap();

    let line = b.run(&["user", "list"]).refused();
    assert!(line.contains("master key is missing"), "{line}");
    assert!(
        !key_path.exists(),
        "a new key was created over existing secrets"
    );

    let wrong = "11".repeat(32);
    let line = b
        .run_env(&["user", "list"], &[("RAMPART_MASTER_KEY", &wrong)])
        .refused();
    assert!(line.contains("is not the key that sealed"), "{line}");

    // The right key in the environment works.
    b.run_env(&["user", "list"], &[("RAMPART_MASTER_KEY", key.trim())])
        .ok();
}

#[tokio::test]
async fn a_locked_database_waits_then_says_so() {
    if support::on_postgres("a_locked_database_waits_then_says_so") {
        return;
    }
    let b = Bastion::with_config("[database]\nbusy_timeout = \"300ms\"\n");
    b.run(&["init"]).ok();
    let url = format!("sqlite://{}", b.db_path().display());
    let pool = sqlx::SqlitePool::connect(&url).await.unwrap();
    let mut conn = pool.acquire().await.unwrap();
    sqlx::query("BEGIN IMMEDIATE")
        .execute(&mut *conn)
        .await
        .unwrap();

    let started = std::time::Instant::now();
    let line = b.run(&["group", "add", "ops"]).refused();
    assert!(line.contains("database is locked"), "{line}");
    assert!(started.elapsed() >= std::time::Duration::from_millis(300));

    sqlx::query("ROLLBACK").execute(&mut *conn).await.unwrap();
    drop(conn);
    pool.close().await;
    b.run(&["group", "add", "ops"]).ok();
}

#[test]
fn a_data_dir_that_cannot_be_created_is_named() {
    let b = Bastion::with_config("");
    std::fs::write(
        b.path().join("rampart.toml"),
        "data_dir = \"/dev/null/rampart\"\n",
    )
    .unwrap();
    let line = b.run(&["init"]).refused();
    assert!(line.contains("/dev/null/rampart"), "{line}");
}

#[test]
fn lists_print_tables_and_json_lines_with_the_same_fields() {
    let b = newcomer();
    let table = b.run(&["asset", "list"]).ok();
    let mut lines = table.lines();
    let header = lines.next().unwrap();
    assert!(
        header.starts_with("NAME") && header.contains("PROTOCOLS"),
        "{header}"
    );
    let row = lines.next().unwrap();
    assert!(row.contains("web1") && row.contains("ssh/22"), "{row}");
    let json = b.json_lines(&["asset", "list"]);
    assert_eq!(json[0]["name"], "web1");
    assert_eq!(
        json[0]["protocols"],
        serde_json::json!(["sftp/22", "ssh/22"])
    );
}

#[test]
fn disable_enable_and_passwords() {
    let b = newcomer();
    b.run(&["user", "disable", "alice"]).ok();
    assert_eq!(b.json_lines(&["user", "show", "alice"])[0]["active"], false);
    // A disabled user reaches nothing.
    assert!(b.json_lines(&["perm", "what", "alice"]).is_empty());
    b.run(&["user", "enable", "alice"]).ok();
    assert_eq!(b.json_lines(&["perm", "what", "alice"]).len(), 1);

    // So do a disabled permission and a disabled account (DESIGN.md:
    // inactive, it does not exist), until enabled again.
    b.run(&["perm", "disable", "web-ops"]).ok();
    assert_eq!(
        b.json_lines(&["perm", "show", "web-ops"])[0]["active"],
        false
    );
    assert!(b.run(&["perm", "list"]).stdout.contains("ACTIVE"));
    assert!(b.json_lines(&["perm", "what", "alice"]).is_empty());
    b.run(&["perm", "enable", "web-ops"]).ok();
    assert_eq!(b.json_lines(&["perm", "what", "alice"]).len(), 1);
    b.run(&["account", "disable", "web1", "root"]).ok();
    assert_eq!(
        b.json_lines(&["account", "list", "web1"])[0]["active"],
        false
    );
    assert!(b.json_lines(&["perm", "what", "alice"]).is_empty());
    b.run(&["account", "enable", "web1", "root"]).ok();
    assert_eq!(b.json_lines(&["perm", "what", "alice"]).len(), 1);
    assert!(
        b.run(&["account", "disable", "web1", "nobody"])
            .refused()
            .contains("nobody@web1"),
        "an unknown account is named"
    );
    let ops: Vec<String> = b
        .json_lines(&["audit", "operations"])
        .iter()
        .map(|r| r["verb"].as_str().unwrap_or_default().to_string())
        .collect();
    for verb in [
        "perm.disable",
        "perm.enable",
        "account.disable",
        "account.enable",
    ] {
        assert!(ops.iter().any(|a| a == verb), "{verb} in {ops:?}");
    }

    let weak = b.run_stdin(&["user", "passwd", "alice", "--password-stdin"], "short\n");
    assert!(weak.refused().contains("too short"));
    let out = b.run(&["user", "passwd", "alice"]);
    assert_eq!(out.status, 0);
    assert!(
        out.stderr.contains("one-time password for alice"),
        "{}",
        out.stderr
    );
    assert_eq!(
        b.json_lines(&["user", "show", "alice"])[0]["must_change_password"],
        true
    );
}

#[test]
fn import_is_all_rows_or_none() {
    let b = Bastion::initialised();
    b.run(&["node", "add", "/DEFAULT/db"]).ok();
    let bad = "name,address,protocols,nodes\n\
               db1,10.0.1.1,ssh/22,/DEFAULT/db\n\
               db2,10.0.1.2,ssh/22;postgresql/5432,/DEFAULT/db\n\
               db3,10.0.1.3,,/DEFAULT/db\n";
    std::fs::write(b.path().join("bad.csv"), bad).unwrap();
    let line = b.run(&["import", "assets", "bad.csv"]).refused();
    assert!(
        line.contains("row 4") && line.contains("protocols"),
        "{line}"
    );
    assert!(
        b.json_lines(&["asset", "list"]).is_empty(),
        "a failed import left assets behind"
    );

    // A row the database refuses (an unknown node) is named by its row too.
    let unknown_node = "name,address,protocols,nodes\n\
                        db1,10.0.1.1,ssh/22,/DEFAULT/db\n\
                        db2,10.0.1.2,ssh/22,/DEFAULT/nowhere\n";
    std::fs::write(b.path().join("node.csv"), unknown_node).unwrap();
    let line = b.run(&["import", "assets", "node.csv"]).refused();
    assert!(
        line.contains("row 3") && line.contains("/DEFAULT/nowhere"),
        "{line}"
    );
    assert!(b.json_lines(&["asset", "list"]).is_empty());

    let good = "name,address,protocols,nodes,comment\n\
                db1,10.0.1.1,ssh/22,/DEFAULT/db,primary\n\
                db2,10.0.1.2,ssh/22;postgresql/5432,/DEFAULT/db,replica\n";
    std::fs::write(b.path().join("good.csv"), good).unwrap();
    let out = b.run(&["import", "assets", "good.csv"]).ok();
    assert!(out.contains("imported 2 assets"), "{out}");
    let assets = b.json_lines(&["asset", "list"]);
    assert_eq!(assets.len(), 2);
    assert_eq!(
        assets[1]["protocols"],
        serde_json::json!(["postgresql/5432", "ssh/22"])
    );

    let users = format!("name,role,groups,key\nbob,user,,{ALICE_KEY}\ncarol,auditor,,\n");
    std::fs::write(b.path().join("users.csv"), users).unwrap();
    let out = b.run(&["import", "users", "users.csv"]).ok();
    assert!(
        out.contains("imported 2 users") && out.contains("carol"),
        "{out}"
    );
    assert_eq!(
        b.json_lines(&["user", "show", "bob"])[0]["keys"][0]["algorithm"],
        "ssh-ed25519"
    );
    b.run(&["audit", "verify"]).ok();
}

/// `import users -`: the file on standard input, parsed and checked like
/// a named file, errors naming `stdin` and the row; all rows or none.
#[test]
fn import_users_reads_standard_input() {
    let b = Bastion::initialised();
    let bad = "name,role,email\nbob,user,bob@example.com\ncarol,superuser,\n";
    let line = b.run_stdin(&["import", "users", "-"], bad).refused();
    assert_eq!(
        line.matches("stdin: row 3, column role: ").count(),
        1,
        "the row is named once: {line}"
    );
    assert!(
        line.starts_with("rampart: stdin: row 3, column role: "),
        "{line}"
    );
    assert!(
        !b.run(&["user", "list"]).ok().contains("bob"),
        "a failed import left users behind"
    );
    let line = b.run_stdin(&["import", "users", "-"], "").refused();
    assert!(
        line.starts_with("rampart: nothing on standard input: pipe the import file in"),
        "{line}"
    );

    let good =
        format!("name,role,email,key\nbob,user,bob@example.com,{ALICE_KEY}\ncarol,auditor,,\n");
    let out = b.run_stdin(&["import", "users", "-"], &good).ok();
    assert!(out.contains("imported 2 users from stdin"), "{out}");
    let bob = &b.json_lines(&["user", "show", "bob"])[0];
    assert_eq!(bob["email"], "bob@example.com");
    assert_eq!(bob["keys"][0]["algorithm"], "ssh-ed25519");
    assert_eq!(
        b.json_lines(&["user", "show", "carol"])[0]["role"],
        "auditor"
    );
    // A second import of the same names is refused by the database, by row.
    let line = b.run_stdin(&["import", "users", "-"], &good).refused();
    assert!(line.contains("stdin: row 2"), "{line}");
    b.run(&["audit", "verify"]).ok();
}

#[test]
fn asset_edit_replaces_only_what_is_given() {
    let b = newcomer();
    let out = b
        .run(&[
            "asset",
            "edit",
            "web1",
            "--name",
            "web2",
            "--address",
            "10.0.0.9",
            "--inactive",
        ])
        .ok();
    assert_eq!(out, "asset web1 updated and renamed to web2\n");
    let shown = &b.json_lines(&["asset", "show", "web2"])[0];
    assert_eq!(shown["address"], "10.0.0.9");
    assert_eq!(shown["active"], false);
    // What was not given is kept.
    assert_eq!(shown["protocols"], serde_json::json!(["sftp/22", "ssh/22"]));
    assert_eq!(shown["nodes"], serde_json::json!(["/DEFAULT/prod/web"]));
    assert_eq!(shown["platform"], "linux");
    assert_eq!(shown["accounts"][0]["username"], "root");

    b.run(&[
        "asset",
        "edit",
        "web2",
        "--active",
        "--protocol",
        "ssh/2222",
        "--node",
        "/DEFAULT",
        "--comment",
        "moved",
    ])
    .ok();
    let shown = &b.json_lines(&["asset", "show", "web2"])[0];
    assert_eq!(shown["active"], true);
    assert_eq!(shown["protocols"], serde_json::json!(["ssh/2222"]));
    assert_eq!(shown["nodes"], serde_json::json!(["/DEFAULT"]));
    assert_eq!(shown["comment"], "moved");
    assert_eq!(shown["address"], "10.0.0.9");

    let ops = b.json_lines(&["audit", "operations"]);
    let edits: Vec<_> = ops.iter().filter(|o| o["verb"] == "asset.edit").collect();
    assert_eq!(edits.len(), 2);
    assert_eq!(edits[1]["object"], "asset web1");
    assert_eq!(edits[1]["before"]["name"], "web1");
    assert_eq!(edits[1]["after"]["name"], "web2");

    for (args, expected) in [
        (
            &["asset", "edit", "web2"][..],
            "nothing to change for asset web2",
        ),
        (&["asset", "edit", "web2", "--name", "rampart"], "reserved"),
        (
            &["asset", "edit", "nope", "--comment", "x"],
            "asset \"nope\" does not exist",
        ),
        (
            &["asset", "edit", "web2", "--node", "/DEFAULT/none"],
            "node \"/DEFAULT/none\" does not exist",
        ),
        (
            &["asset", "edit", "web2", "--protocol", "gopher/70"],
            "protocol \"gopher/70\" is not valid",
        ),
    ] {
        let line = b.run(args).refused();
        assert!(line.contains(expected), "{args:?}: {line}");
    }
    assert_eq!(
        b.run(&["asset", "edit", "web2", "--active", "--inactive"])
            .status,
        2
    );
    b.run(&["audit", "verify"]).ok();
}

#[test]
fn account_edit_replaces_the_secret_and_the_flag() {
    const NEW_PASSWORD: &str = "correct-Horse-battery-9";
    let b = newcomer();
    let out = b
        .run_stdin(
            &["account", "edit", "web1", "root", "--password-stdin"],
            &format!("{NEW_PASSWORD}\n"),
        )
        .ok();
    assert_eq!(
        out,
        "account root@web1 updated (secret: password, privileged: yes)\n"
    );
    let out = b
        .run(&["account", "edit", "web1", "root", "--unprivileged"])
        .ok();
    assert!(out.contains("privileged: no"), "{out}");
    let out = b
        .run(&["account", "edit", "web1", "root", "--no-secret"])
        .ok();
    assert!(out.contains("secret: none"), "{out}");
    assert_eq!(
        b.json_lines(&["account", "list", "web1"])[0]["secret_kind"],
        "none"
    );

    std::fs::write(b.path().join("not-a-key"), "hello\n").unwrap();
    for (args, stdin, expected) in [
        (
            &["account", "edit", "web1", "root", "--password-stdin"][..],
            "\n",
            "no password on standard input",
        ),
        (
            &["account", "edit", "web1", "root", "--key-file", "not-a-key"],
            "",
            "not a private key",
        ),
        (
            &["account", "edit", "web1", "root"],
            "",
            "nothing to change for account root@web1",
        ),
        (
            &["account", "edit", "web1", "nobody", "--privileged"],
            "",
            "account \"nobody@web1\" does not exist",
        ),
    ] {
        let line = b.run_stdin(args, stdin).refused();
        assert!(line.contains(expected), "{args:?}: {line}");
    }
    assert_eq!(
        b.run(&[
            "account",
            "edit",
            "web1",
            "root",
            "--no-secret",
            "--password-stdin"
        ])
        .status,
        2
    );

    let ops = b.json_lines(&["audit", "operations"]);
    let edits: Vec<_> = ops.iter().filter(|o| o["verb"] == "account.edit").collect();
    assert_eq!(edits.len(), 3);
    assert_eq!(edits[2]["after"]["secret"], "password");
    assert_eq!(edits[0]["after"]["secret"], "none");
    for (path, bytes) in all_bytes(&b.data_dir()) {
        assert!(
            !contains(&bytes, NEW_PASSWORD),
            "{} holds the new password in clear",
            path.display()
        );
    }
    let log = b.run(&["audit", "operations", "--json"]).ok();
    assert!(!log.contains(NEW_PASSWORD));
}

/// `asset test` from the CLI process against an in-process demo target.
#[test]
fn asset_test_reports_success_refusal_and_the_key_to_pin() {
    const PASSWORD: &str = "demo-Target-pw-cli-1";
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let target = rt
        .block_on(rampart::demo::DemoTarget::start(
            "127.0.0.1:0".parse().unwrap(),
            "demo",
            rampart::vault::Secret::new(PASSWORD.into()),
            russh::keys::PrivateKey::from(
                russh::keys::ssh_key::private::Ed25519Keypair::from_seed(&[5u8; 32]),
            ),
        ))
        .unwrap();
    let port = target.addr.port().to_string();
    let b = Bastion::initialised();
    let ssh = format!("ssh/{port}");
    b.run(&[
        "asset",
        "add",
        "web1",
        "--address",
        "127.0.0.1",
        "--protocol",
        &ssh,
    ])
    .ok();
    b.run_stdin(
        &["account", "add", "web1", "demo", "--password-stdin"],
        &format!("{PASSWORD}\n"),
    )
    .ok();

    // First test: authenticated, the key reported but not pinned.
    let out = b.run(&["asset", "test", "web1"]).ok();
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 2, "{out}");
    assert!(
        lines[0].starts_with("ok: demo@web1 authenticated in ")
            && lines[0].contains("; host key ssh-ed25519 SHA256:")
            && lines[0].ends_with("(not pinned yet)"),
        "{out}"
    );
    let key = lines[1]
        .strip_prefix("check it on the target, then pin it: rampart asset trust web1 --key '")
        .and_then(|l| l.strip_suffix('\''))
        .unwrap_or_else(|| panic!("{out}"));
    assert!(
        b.json_lines(&["asset", "show", "web1"])[0]["host_keys"]
            .as_array()
            .unwrap()
            .is_empty()
    );

    // Pinning exactly that key: the next test says it matches.
    b.run(&["asset", "trust", "web1", "--key", key]).ok();
    let out = b.run(&["asset", "test", "web1", "--account", "demo"]).ok();
    assert!(
        out.ends_with("(pinned)\n") && out.lines().count() == 1,
        "{out}"
    );
    let json = b.json_lines(&["asset", "test", "web1"]);
    assert_eq!(json[0]["ok"], true);
    assert_eq!(json[0]["host_key_status"], "pinned");
    assert_eq!(json[0]["host_key"]["openssh"], key);

    // A wrong password: exit 1, the reason on stderr, the key on stdout.
    b.run_stdin(
        &["account", "edit", "web1", "demo", "--password-stdin"],
        "wrong-password-1\n",
    )
    .ok();
    let run = b.run(&["asset", "test", "web1"]);
    let stdout = run.stdout.clone();
    assert_eq!(
        run.refused(),
        "rampart: demo@web1: web1 refused the credentials of account demo"
    );
    assert!(stdout.contains("(pinned)"), "{stdout}");

    // A different pinned key: refused with both fingerprints.
    b.run(&["asset", "trust", "web1", "--key", ALICE_KEY]).ok();
    let run = b.run(&["asset", "test", "web1"]);
    let stdout = run.stdout.clone();
    let line = run.refused();
    assert!(line.contains("the host key of web1 has changed"), "{line}");
    assert!(
        stdout.contains("(not the pinned key)") && stdout.contains(key),
        "{stdout}"
    );

    // Nothing listening: unreachable.
    target.stop();
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let closed_port = closed.local_addr().unwrap().port();
    drop(closed);
    b.run(&[
        "asset",
        "edit",
        "web1",
        "--protocol",
        &format!("ssh/{closed_port}"),
    ])
    .ok();
    let line = b.run(&["asset", "test", "web1"]).refused();
    assert!(
        line.starts_with("rampart: demo@web1: cannot reach web1 (127.0.0.1): "),
        "{line}"
    );

    let tests: Vec<_> = b
        .json_lines(&["audit", "operations"])
        .into_iter()
        .filter(|o| o["verb"] == "asset.test")
        .collect();
    assert_eq!(tests.len(), 6);
    assert_eq!(tests[0]["after"]["ok"], false);
    assert_eq!(tests[5]["after"]["ok"], true);
    assert_eq!(tests[5]["after"]["account"], "demo");
    let log = b.run(&["audit", "operations", "--json"]).ok();
    assert!(!log.contains(PASSWORD) && !log.contains("wrong-password-1"));
    drop(rt);
}

#[test]
fn audit_listings_take_a_time_range() {
    let b = newcomer();
    let all = b.json_lines(&["audit", "operations"]);
    assert_eq!(all.len(), 6);
    // The fourth newest row's moment splits the log: before it and since it.
    let split = all[3]["at"].as_str().unwrap().to_string();
    let since = b.json_lines(&["audit", "operations", "--since", &split]);
    let until = b.json_lines(&["audit", "operations", "--until", &split]);
    assert!(since.len() >= 4, "{since:?}");
    assert_eq!(since.len() + until.len(), 6, "each row on exactly one side");
    assert!(
        until
            .iter()
            .all(|o| o["at"].as_str().unwrap() < split.as_str())
    );
    assert!(
        b.json_lines(&["audit", "operations", "--until", "1h"])
            .is_empty()
    );
    assert_eq!(
        b.json_lines(&["audit", "operations", "--since", "1h"])
            .len(),
        6
    );
    let line = b
        .run(&["audit", "operations", "--until", "tomorrowish"])
        .refused();
    assert!(
        line.contains("--until") && line.contains("duration ago"),
        "{line}"
    );
}

/// Issue 13 item 15: the chain is keyed with a key derived from the master
/// key, kept outside the database, so a database rewritten end to end with
/// correct-looking unkeyed hashes is named by `audit verify`.
#[tokio::test]
async fn audit_verify_names_a_database_rewritten_end_to_end() {
    let b = newcomer();
    b.run(&["audit", "verify"]).ok();

    let pool = b.db().await;
    let (id, seq): (String, i64) =
        sqlx::query_as("SELECT id, seq FROM operation_log WHERE verb = 'perm.add'")
            .fetch_one(&pool)
            .await
            .unwrap();
    sqlx::query("UPDATE operation_log SET actor = 'nobody' WHERE id = $1")
        .bind(&id)
        .execute(&pool)
        .await
        .unwrap();

    // From the edited row on: the edited row is the one named.
    support::rewrite_chain_unkeyed(&pool, seq).await;
    let line = b.run(&["audit", "verify"]).refused();
    assert!(line.contains("audit chain broken"), "{line}");
    assert!(
        line.contains(&format!("operation_log row {id} (seq {seq},")),
        "{line}"
    );
    assert!(line.contains("without the master key"), "{line}");

    // The whole chain, from its first row: the first row is named.
    support::rewrite_chain_unkeyed(&pool, 1).await;
    pool.close().await;
    let line = b.run(&["audit", "verify"]).refused();
    assert!(line.contains("(seq 1,"), "{line}");
    assert!(line.contains("without the master key"), "{line}");
}

/// Issue 13 item 14: whatever the umask rampart is started with, what it
/// creates in its data dir is its own: the database with its `-wal` and
/// `-shm` files, the recordings and their folders.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_creates_private_files_whatever_the_umask() {
    const PASSWORD: &str = "admin-password-for-modes-1";
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let b = Bastion::with_config(&format!(
        "[ssh]\nlisten = [\"127.0.0.1:{port}\"]\n[recording]\nflush_interval = \"200ms\"\n"
    ));
    // `serve` on an empty dir initialises it itself, under a loose umask.
    let mut serve = std::process::Command::new("sh")
        .args(["-c", "umask 022 && exec \"$0\" serve --demo"])
        .arg(env!("CARGO_BIN_EXE_rampart"))
        .current_dir(b.path())
        .env_remove("RAMPART_CONFIG")
        .env_remove("RAMPART_MASTER_KEY")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    struct Kill<'a>(&'a mut std::process::Child);
    impl Drop for Kill<'_> {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let _kill = Kill(&mut serve);
    let mut up = false;
    for _ in 0..200 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
            && b.run(&["asset", "show", "demo"]).status == 0
        {
            up = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(up, "rampart serve --demo did not come up");
    b.run_stdin(
        &["user", "passwd", "admin", "--password-stdin"],
        &format!("{PASSWORD}\n"),
    )
    .ok();
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let client = support::ssh::Client::password(addr, "admin", PASSWORD)
        .await
        .unwrap();
    let (_, stderr, status) = client.exec("demo echo recorded").await;
    assert_eq!(status, Some(0), "{stderr}");

    let data = b.data_dir();
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    // On PostgreSQL the data dir holds no database file.
    if support::postgres().is_none() {
        for name in ["rampart.db", "rampart.db-wal", "rampart.db-shm"] {
            assert_eq!(mode(&data.join(name)), 0o600, "{name}");
        }
    }
    let mut casts = 0;
    let mut stack = vec![data.clone()];
    while let Some(dir) = stack.pop() {
        assert_eq!(mode(&dir), 0o700, "{}", dir.display());
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                casts += usize::from(path.extension().is_some_and(|e| e == "cast"));
                assert_eq!(
                    mode(&path) & 0o077,
                    0,
                    "{} is open to others",
                    path.display()
                );
            }
        }
    }
    assert!(casts >= 1, "the session left no recording");
}

/// Issue 13 item 14: a data dir that group or others may enter is refused
/// at start, by the CLI and by `serve`, with one line naming the fix.
#[test]
fn a_data_dir_open_to_others_is_refused() {
    let b = Bastion::initialised();
    let data = b.data_dir();
    let fix = format!("chmod 700 {}", data.canonicalize().unwrap().display());
    for loose in [0o755, 0o750, 0o701] {
        std::fs::set_permissions(&data, std::fs::Permissions::from_mode(loose)).unwrap();
        for verb in [&["user", "list"][..], &["serve"], &["audit", "verify"]] {
            let line = b.run(verb).refused();
            assert!(line.contains(&fix), "{verb:?} {loose:o}: {line}");
            assert!(line.contains(&format!("{loose:04o}")), "{line}");
        }
    }
    std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o700)).unwrap();
    b.run(&["user", "list"]).ok();

    // A data dir made beforehand with the usual umask, before `init`.
    let fresh = Bastion::new();
    std::fs::create_dir(fresh.data_dir()).unwrap();
    std::fs::set_permissions(fresh.data_dir(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let line = fresh.run(&["init"]).refused();
    assert!(line.contains("chmod 700"), "{line}");
    assert!(!fresh.db_path().exists(), "init went ahead");
}

/// Issue 13 item 15, the upgrade: a data dir an older rampart left (rows
/// sealed with plain SHA-256, nothing about a key in the head) is keyed the
/// first time rampart opens it with the master key, says so in the
/// operation log, and from then on its old rows cannot be rewritten either.
#[tokio::test]
async fn a_chain_from_before_the_key_is_keyed_at_first_open_and_pinned() {
    let b = newcomer();
    let pool = b.db().await;
    support::rewrite_chain_unkeyed(&pool, 1).await;
    sqlx::query("UPDATE audit_head SET key_id = NULL, keyed_from = NULL, key_mac = NULL")
        .execute(&pool)
        .await
        .unwrap();

    let out = b.run(&["audit", "verify"]).ok();
    assert!(out.contains("audit chain intact: 7 rows"), "{out}");
    let ops = b.json_lines(&["audit", "operations"]);
    assert_eq!(ops[0]["verb"], "audit.key-chain", "{:?}", ops[0]);
    assert_eq!(ops[0]["before"]["rows"], 6);
    assert_eq!(ops[0]["after"]["keyed_from"], 7);
    // Later rows are keyed; the chain still verifies.
    b.run(&["group", "add", "ops"]).ok();
    b.run(&["audit", "verify"]).ok();

    // An old row edited and everything recomputed without the key.
    sqlx::query("UPDATE operation_log SET actor = 'nobody' WHERE seq = 2")
        .execute(&pool)
        .await
        .unwrap();
    support::rewrite_chain_unkeyed(&pool, 1).await;
    pool.close().await;
    let line = b.run(&["audit", "verify"]).refused();
    assert!(
        line.contains("keying record") && line.contains("before seq 7"),
        "{line}"
    );
}

/// `rampart migrate` copies a whole install into an empty database of the
/// other engine (or a new SQLite file when the tests run on SQLite): the
/// copy serves the same users and assets, and its audit chain verifies
/// with the data dir's master key. A second copy into the now full database
/// is refused in one line.
#[test]
fn migrate_copies_an_install_and_its_audit_chain_verifies_on_the_copy() {
    let b = newcomer();
    b.run(&["group", "add", "ops"]).ok();
    let from = b.db_url();
    // From PostgreSQL to SQLite when the tests run on PostgreSQL, SQLite to
    // PostgreSQL when a server is given, else SQLite to SQLite.
    let to = match (
        from.starts_with("postgres"),
        support::fresh_postgres_database(),
    ) {
        (false, Some(url)) => url,
        _ => format!("sqlite://{}", b.path().join("copy.db").display()),
    };
    b.run(&["audit", "verify"]).ok();

    let out = b.run(&["migrate", "--from", &from, "--to", &to]);
    assert_eq!(out.status, 0, "{}", out.stderr);
    assert!(
        out.stdout.contains("audit chain intact on the copy"),
        "{}",
        out.stdout
    );
    assert!(out.stderr.contains("operation_log: "), "{}", out.stderr);
    assert!(!out.stderr.contains("search_"), "{}", out.stderr);

    b.use_database(&to);
    assert!(
        b.run(&["audit", "verify"])
            .ok()
            .contains("audit chain intact")
    );
    let users = b.json_lines(&["user", "list"]);
    assert!(users.iter().any(|u| u["name"] == "alice"), "{users:?}");
    let assets = b.json_lines(&["asset", "list"]);
    assert!(assets.iter().any(|a| a["name"] == "web1"), "{assets:?}");
    // The copy goes on: a change lands in its chain.
    b.run(&["group", "add", "dev"]).ok();
    assert!(
        b.run(&["audit", "verify"])
            .ok()
            .contains("audit chain intact")
    );

    let again = b.run(&["migrate", "--from", &from, "--to", &to]);
    let line = again.refused();
    assert!(
        line.contains("exists") || line.contains("already holds a rampart install"),
        "{line}"
    );
}
