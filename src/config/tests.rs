//! Tests of the config schema: defaults, lookup order, every error message,
//! and that the man page, the example config and the themes agree with it.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use toml::{Table, Value};

use super::parse::{parse_duration, parse_size};
use super::*;

fn err(text: &str) -> String {
    match Config::from_toml_str(text, "rampart.toml") {
        Ok(_) => panic!("accepted: {text}"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn an_empty_file_gives_the_defaults() {
    let c = Config::from_toml_str("", "/etc/rampart/rampart.toml").unwrap();
    let d = Config::default();
    assert_eq!(c.source(), Some(Path::new("/etc/rampart/rampart.toml")));
    assert_eq!(d.source(), None);
    // Only the source differs; relative data_dir of the defaults stays
    // relative to the working directory.
    assert_eq!(
        Config { source: None, ..c },
        Config {
            data_dir: PathBuf::from(DEFAULT_DATA_DIR),
            ..d.clone()
        }
    );
    assert_eq!(
        d.ssh.listen,
        vec!["127.0.0.1:2222".parse::<SocketAddr>().unwrap()]
    );
    assert_eq!(d.auth.lockout, Duration::from_secs(900));
    assert_eq!(d.recording.keep_files_max_size, 100 * 1024 * 1024);
    assert_eq!(d.tui.theme, Theme::Builtin("default".into()));
}

#[test]
fn the_design_example_parses() {
    let text = r#"
data_dir = "/var/lib/rampart"
[ssh]
listen = ["0.0.0.0:2222", "[::]:2222"]
host_keys = ["ssh_host_ed25519_key", "/etc/rampart/extra_key"]
idle_timeout = "1h30m"
keepalive_interval = "0"
[http]
listen = "127.0.0.1:8080"
[database]
url = "sqlite://rampart.db"
[recording]
dir = "recordings"
input = true
on_failure = "allow"
keep_files_max_size = "2 GiB"
[auth]
methods = ["publickey", "keyboard-interactive"]
mfa = "required"
max_failures = 3
lockout = "1h"
time_zone = "Europe/Paris"
[tui]
theme = "mono"
[log]
level = "rampart=debug,info"
file = "/var/log/rampart/rampart.log"
"#;
    let c = Config::from_toml_str(text, "/etc/rampart/rampart.toml").unwrap();
    assert_eq!(c.ssh.listen.len(), 2);
    assert_eq!(c.ssh.idle_timeout, Some(Duration::from_secs(5400)));
    assert_eq!(c.ssh.keepalive_interval, None);
    assert_eq!(c.http.listen, Some("127.0.0.1:8080".parse().unwrap()));
    assert_eq!(c.http.domain, None);
    assert_eq!(c.http.idle_timeout, Duration::from_secs(900));
    assert!(c.recording.input);
    assert_eq!(c.recording.on_failure, OnFailure::Allow);
    assert_eq!(c.recording.keep_files_max_size, 2 << 30);
    assert_eq!(
        c.auth.methods,
        vec![AuthMethod::PublicKey, AuthMethod::KeyboardInteractive]
    );
    assert_eq!(c.auth.mfa, Mfa::Required);
    assert_eq!(c.auth.max_failures, 3);
    assert_eq!(c.auth.lockout, Duration::from_secs(3600));
    assert_eq!(c.auth.time_zone.iana_name(), Some("Europe/Paris"));
    assert_eq!(c.tui.theme, Theme::Builtin("mono".into()));
    assert_eq!(
        c.log.file,
        Some(PathBuf::from("/var/log/rampart/rampart.log"))
    );
    assert_eq!(c.data_dir(), Path::new("/var/lib/rampart"));
    assert_eq!(
        c.database_path(),
        Some(PathBuf::from("/var/lib/rampart/rampart.db"))
    );
    assert_eq!(
        c.recording_dir(),
        PathBuf::from("/var/lib/rampart/recordings")
    );
    assert_eq!(
        c.host_key_paths(),
        vec![
            PathBuf::from("/var/lib/rampart/ssh_host_ed25519_key"),
            PathBuf::from("/etc/rampart/extra_key")
        ]
    );
    assert_eq!(
        c.master_key_path(),
        PathBuf::from("/var/lib/rampart/master.key")
    );
    assert_eq!(
        c.control_socket_path(),
        PathBuf::from("/var/lib/rampart/control.sock")
    );
}

#[test]
fn relative_paths_follow_the_config_file() {
    let c = Config::from_toml_str(
        "data_dir = \"data\"\n[log]\nfile = \"r.log\"",
        "/etc/rampart/rampart.toml",
    )
    .unwrap();
    assert_eq!(c.data_dir(), Path::new("/etc/rampart/data"));
    assert_eq!(c.log.file, Some(PathBuf::from("/etc/rampart/r.log")));
    let c = Config::from_toml_str("", "rampart.toml").unwrap();
    assert_eq!(
        c.database_path(),
        Some(PathBuf::from("rampart-data/rampart.db"))
    );
}

#[test]
fn database_urls() {
    let with =
        |url: &str| Config::from_toml_str(&format!("[database]\nurl = {url:?}"), "/c/r.toml");
    assert_eq!(
        with("sqlite:///srv/r.db?mode=rwc").unwrap().database_path(),
        Some(PathBuf::from("/srv/r.db"))
    );
    assert_eq!(with("sqlite::memory:").unwrap().database_path(), None);
    assert_eq!(
        with("postgres://db.example/rampart")
            .unwrap()
            .database_path(),
        None
    );
    assert_eq!(
        with("mysql://x/y").unwrap_err().to_string(),
        r#"/c/r.toml: database.url: "mysql://x/y" is not a database url (use "sqlite://FILE" or "postgres://HOST/DB")"#
    );
    assert!(with("sqlite://").is_err());
}

#[test]
fn bad_values_name_the_file_the_key_and_the_problem() {
    let cases: &[(&str, &str)] = &[
        (
            "[auth]\nlockout = \"15 minutes\"",
            r#"rampart.toml: auth.lockout: "15 minutes" is not a duration (use e.g. "15m", "1h30m")"#,
        ),
        (
            "[auth]\nlockout = \"0\"",
            "rampart.toml: auth.lockout: must be longer than 0",
        ),
        (
            "[auth]\nlockout = 15",
            "rampart.toml: auth.lockout: expected a string, found an integer 15",
        ),
        (
            "[ssh]\nlisten = [\"localhost:22\"]",
            r#"rampart.toml: ssh.listen: "localhost:22" is not an address (use IP:PORT, e.g. "0.0.0.0:2222" or "[::]:2222")"#,
        ),
        (
            "[ssh]\nlisten = []",
            "rampart.toml: ssh.listen: must list at least one address",
        ),
        (
            "[ssh]\nlisten = [\"0.0.0.0:22\", \"0.0.0.0:22\"]",
            "rampart.toml: ssh.listen: 0.0.0.0:22 is listed twice",
        ),
        (
            "[ssh]\nhost_keys = []",
            r#"rampart.toml: ssh.host_keys: must list at least one key file (e.g. ["ssh_host_ed25519_key"])"#,
        ),
        (
            "[ssh]\nhost_keys = [1]",
            "rampart.toml: ssh.host_keys: expected a list of strings, found an integer 1",
        ),
        (
            "[ssh]\nmax_connections = 0",
            "rampart.toml: ssh.max_connections: 0 is out of range (1 to 1000000)",
        ),
        (
            "[http]\nlisten = \"127.0.0.1:2222\"",
            "rampart.toml: http.listen: 127.0.0.1:2222 is also in ssh.listen",
        ),
        (
            "[http]\ndomain = \"web bastion\"",
            "rampart.toml: http.domain: \"web bastion\" is not a DNS name, such as web.bastion.example.com",
        ),
        (
            "[http]\nidle_timeout = \"0\"",
            "rampart.toml: http.idle_timeout: must be more than 0",
        ),
        (
            "[http]\nmetrics_listen = \"127.0.0.1:2222\"",
            "rampart.toml: http.metrics_listen: 127.0.0.1:2222 is also in ssh.listen",
        ),
        (
            "[http]\nlisten = \"127.0.0.1:8080\"\nmetrics_listen = \"127.0.0.1:8080\"",
            "rampart.toml: http.metrics_listen: 127.0.0.1:8080 is also http.listen: give metrics an address of their own",
        ),
        (
            "[auth]\nmfa = \"always\"",
            r#"rampart.toml: auth.mfa: "always" is not optional or required"#,
        ),
        (
            "[auth]\nmfa = \"required\"\nmethods = [\"password\"]",
            r#"rampart.toml: auth.mfa: "required" needs "keyboard-interactive" in auth.methods (TOTP codes are asked over it)"#,
        ),
        (
            "[auth]\nmax_failures = 0",
            "rampart.toml: auth.max_failures: 0 is out of range (1 to 1000)",
        ),
        (
            "[auth]\nmax_failures = -1",
            "rampart.toml: auth.max_failures: -1 is out of range (1 to 1000)",
        ),
        (
            "[auth]\npassword_min_length = 4",
            "rampart.toml: auth.password_min_length: 4 is out of range (8 to 1024)",
        ),
        (
            "[auth]\ntime_zone = \"Mars/Olympus\"",
            r#"rampart.toml: auth.time_zone: "Mars/Olympus" is not a known IANA time zone (e.g. "UTC", "Europe/Paris")"#,
        ),
        (
            "[auth]\nmethods = [\"gssapi\"]",
            r#"rampart.toml: auth.methods: "gssapi" is not an authentication method (use password, publickey, keyboard-interactive)"#,
        ),
        (
            "[auth]\nmethods = []",
            "rampart.toml: auth.methods: must list at least one method",
        ),
        (
            "[recording]\non_failure = \"ignore\"",
            r#"rampart.toml: recording.on_failure: "ignore" is not deny or allow"#,
        ),
        (
            "[recording]\ninput = \"yes\"",
            r#"rampart.toml: recording.input: expected true or false, found a string "yes""#,
        ),
        (
            "[recording]\nflush_interval = \"5s\"",
            "rampart.toml: recording.flush_interval: must be at most 1s",
        ),
        (
            "[recording]\nkeep_files_max_size = \"lots\"",
            r#"rampart.toml: recording.keep_files_max_size: "lots" is not a size (use e.g. "100MiB", "2GiB")"#,
        ),
        (
            "[tui]\ntheme = \"solarized\"",
            r#"rampart.toml: tui.theme: "solarized" is neither a built-in theme (default, light, mono) nor an existing file"#,
        ),
        (
            "[log]\nlevel = \"loud\"",
            r#"rampart.toml: log.level: "loud" is not a log filter (use e.g. "info" or "rampart=debug,info")"#,
        ),
        (
            "ssh = 1",
            "rampart.toml: ssh: expected a table, found an integer 1",
        ),
        (
            "data_dir = \"\"",
            "rampart.toml: data_dir: must not be empty",
        ),
    ];
    for (text, want) in cases {
        assert_eq!(&err(text), want, "for {text}");
    }
}

#[test]
fn unknown_keys_list_the_expected_ones() {
    assert_eq!(
        err("[ssh]\nlistne = []"),
        "rampart.toml: unknown key ssh.listne (expected one of listen, host_keys, max_connections, \
         banner, login_timeout, max_auth_attempts, max_sessions_per_user, idle_timeout, keepalive_interval, \
         shutdown_grace, proxy_protocol_from)"
    );
    assert_eq!(
        err("listen = []"),
        "rampart.toml: unknown key listen (expected one of data_dir, ssh, http, rdp, database, cluster, recording, auth, clients, tui, log)"
    );
    assert_eq!(
        err("[ssh.extra]\nx = 1"),
        "rampart.toml: unknown key ssh.extra (expected one of listen, host_keys, max_connections, \
         banner, login_timeout, max_auth_attempts, max_sessions_per_user, idle_timeout, keepalive_interval, \
         shutdown_grace, proxy_protocol_from)"
    );
}

#[test]
fn syntax_errors_carry_line_and_column() {
    let e = err("[ssh]\nlisten = [\"0.0.0.0:22\"\nmax = 1\n");
    assert!(e.starts_with("rampart.toml: line 3, column "), "{e}");
    let e = err("[auth]\nmfa = \"optional\"\nmfa = \"required\"\n");
    assert_eq!(e, "rampart.toml: line 3, column 1: duplicate key mfa");
    assert_eq!(
        err("[ssh]\n[ssh]\n"),
        "rampart.toml: line 2, column 2: duplicate key ssh"
    );
}

#[test]
fn durations_and_sizes() {
    assert_eq!(parse_duration("15m"), Some(Duration::from_secs(900)));
    assert_eq!(parse_duration("1h30m"), Some(Duration::from_secs(5400)));
    assert_eq!(parse_duration("250ms"), Some(Duration::from_millis(250)));
    assert_eq!(parse_duration("2d"), Some(Duration::from_secs(172_800)));
    assert_eq!(parse_duration("0s"), Some(Duration::ZERO));
    for bad in [
        "",
        "15",
        "m",
        "15 minutes",
        "1.5h",
        "-1s",
        "15M",
        "99999999999999999999s",
    ] {
        assert_eq!(parse_duration(bad), None, "{bad}");
    }
    assert_eq!(parse_size("100MiB"), Some(100 << 20));
    assert_eq!(parse_size("500 MB"), Some(500_000_000));
    assert_eq!(parse_size("4096"), Some(4096));
    for bad in ["", "MiB", "1.5GiB", "10 mib", "99999999999TiB"] {
        assert_eq!(parse_size(bad), None, "{bad}");
    }
}

#[test]
fn lookup_order_is_flag_then_env_then_working_directory() {
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, text: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path
    };
    let flag = write("flag.toml", "data_dir = \"/from/flag\"");
    let env = write("env.toml", "data_dir = \"/from/env\"");
    let env = env.to_str().unwrap();
    let cwd = dir.path().join("cwd");
    std::fs::create_dir(&cwd).unwrap();

    let c = Config::load_in(Some(&flag), Some(env), &cwd).unwrap();
    assert_eq!(c.data_dir(), Path::new("/from/flag"));
    assert_eq!(c.source(), Some(flag.as_path()));
    let c = Config::load_in(None, Some(env), &cwd).unwrap();
    assert_eq!(c.data_dir(), Path::new("/from/env"));
    // Nothing named and no ./rampart.toml: built-in defaults.
    let c = Config::load_in(None, Some(""), &cwd).unwrap();
    assert_eq!(c, Config::default());
    std::fs::write(cwd.join(DEFAULT_FILE), "data_dir = \"d\"").unwrap();
    let c = Config::load_in(None, None, &cwd).unwrap();
    assert_eq!(c.data_dir(), cwd.join("d"));
    assert_eq!(c.source(), Some(cwd.join(DEFAULT_FILE).as_path()));

    let missing = dir.path().join("missing.toml");
    let e = Config::load_in(None, missing.to_str(), &cwd)
        .unwrap_err()
        .to_string();
    assert!(
        e.starts_with(&format!(
            "{}: cannot read config file (named by $RAMPART_CONFIG): ",
            missing.display()
        )),
        "{e}"
    );
    let e = Config::load_in(Some(&missing), None, &cwd)
        .unwrap_err()
        .to_string();
    assert!(e.contains("(named by --config)"), "{e}");
}

#[test]
fn a_theme_may_be_a_file_beside_the_config() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("mine.toml"), "[roles]\n").unwrap();
    let source = dir.path().join("rampart.toml");
    let c = Config::from_toml_str("[tui]\ntheme = \"mine.toml\"", &source).unwrap();
    assert_eq!(c.tui.theme, Theme::File(dir.path().join("mine.toml")));
}

/// Every key is documented in the man page and used in the example
/// config, and the example config is valid.
#[test]
fn keys_are_documented_and_exemplified() {
    let man = include_str!("../../man/rampart.toml.5");
    let example = include_str!("../../contrib/rampart.toml");
    let table: Table = example.parse().unwrap();
    for key in KEYS {
        assert!(
            man.contains(&format!(".B {key}\n")),
            "{key} missing from man/rampart.toml.5"
        );
        let found = match key.split_once('.') {
            Some((t, leaf)) => table
                .get(t)
                .and_then(Value::as_table)
                .is_some_and(|t| t.contains_key(leaf)),
            None => table.contains_key(*key),
        };
        // Keys that only go with another value (the s3_* keys with an s3://
        // store) or with what only the site knows (http.listen, http.public_port) are shown
        // commented out.
        let commented = key.split_once('.').is_some_and(|(_, leaf)| {
            (leaf.starts_with("s3_") || ["http.listen", "http.public_port"].contains(key))
                && example.contains(&format!("\n# {leaf} = "))
        });
        assert!(
            found || commented,
            "{key} missing from contrib/rampart.toml"
        );
    }
    Config::from_toml_str(example, "/etc/rampart/rampart.toml").unwrap();
}

/// The built-in themes are TOML with a `[roles]` table of styles, and
/// the monochrome one uses no colour at all.
#[test]
fn builtin_themes_are_well_formed() {
    let themes = [
        ("default", include_str!("../../themes/default.toml")),
        ("light", include_str!("../../themes/light.toml")),
        ("mono", include_str!("../../themes/mono.toml")),
    ];
    let default_roles: Table = themes[0].1.parse().unwrap();
    let default_roles = default_roles["roles"].as_table().unwrap().clone();
    for (name, text) in themes {
        assert!(BUILTIN_THEMES.contains(&name));
        let theme: Table = text.parse().unwrap();
        let roles = theme["roles"].as_table().unwrap();
        for (role, style) in roles {
            assert!(
                default_roles.contains_key(role),
                "{name}: role {role} not in default"
            );
            let style = style.as_table().unwrap();
            for (attr, value) in style {
                assert!(
                    ["fg", "bg", "bold", "dim", "italic", "underline", "reverse"]
                        .contains(&attr.as_str()),
                    "{name}.{role}.{attr}"
                );
                if name == "mono" {
                    assert!(value.is_bool(), "mono theme uses colour in {role}.{attr}");
                }
            }
        }
        assert_eq!(
            roles.len(),
            default_roles.len(),
            "{name} does not define every role"
        );
    }
}

#[test]
fn proxy_protocol_sources_are_networks_or_addresses() {
    let c = Config::from_toml_str(
        "[ssh]\nproxy_protocol_from = [\"10.0.0.5\", \"10.1.2.3/16\", \"2001:db8::/32\"]",
        "rampart.toml",
    )
    .unwrap();
    let nets: Vec<String> = c
        .ssh
        .proxy_protocol_from
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(nets, ["10.0.0.5/32", "10.1.0.0/16", "2001:db8::/32"]);
    assert_eq!(
        err("[ssh]\nproxy_protocol_from = [\"lb1\"]"),
        "rampart.toml: ssh.proxy_protocol_from: \"lb1\" is not an address or network \
         (use e.g. \"10.0.0.5\" or \"10.0.0.0/24\")"
    );
}
