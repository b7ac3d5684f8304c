//! Secrets never leave their vault (issue 6, "security checks"): after a
//! run that logs in with right and wrong passwords, enrols a TOTP seed,
//! stores a target password, uses it, fails with it, and reads every
//! audit view with `--json`, no artefact holds any of the test secrets in
//! clear: not the data dir (database, WAL, recordings, kept files), not the
//! log, not what any client was sent.

mod support;

use std::io::Write;
use std::sync::{Arc, Mutex};

use rampart::model::{Actions, Protocol, Role};
use rampart::ops::{AccountSecret, AssetSpec, Caller, UserSpec};
use rampart::vault::Secret;
use support::peers::permit;
use support::ssh::{ADMIN_PASSWORD, Client, TestBastion};
use support::{all_bytes, contains};

const USER_PASSWORD: &str = "Correct-Horse-Battery-9137";
const WRONG_PASSWORD: &str = "Wrong-Guess-Staple-5521";
const TARGET_PASSWORD: &str = "Target-Vault-Secret-7403";

/// Everything the process logs, at every level.
#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_artefact_of_a_full_run_holds_a_secret() {
    let log = Capture::default();
    let writer = log.clone();
    tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .init();

    let b = TestBastion::start_with("[recording]\ninput = true\nkeep_files = true\n").await;
    let ops = b.services.ops.clone();
    let admin = Caller::local();
    ops.user_add(
        &admin,
        UserSpec {
            name: "erin".into(),
            role: Some(Role::User),
            password: Some(Secret::new(USER_PASSWORD.into())),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    // A TOTP seed, enrolled as the enrolment screen does.
    let seed = rampart::auth::totp::new_secret();
    let code = rampart::auth::totp::current_code(seed.expose(), jiff::Timestamp::now()).unwrap();
    let identity = b
        .shared
        .authenticator
        .first_factor(
            "erin",
            rampart::auth::login::Proof::Password(&Secret::new(USER_PASSWORD.into())),
            "127.0.0.1".parse().unwrap(),
        )
        .await
        .unwrap()
        .identity;
    b.shared
        .authenticator
        .enrol_totp(&identity, &seed, &code, "127.0.0.1".parse().unwrap())
        .await
        .unwrap();
    // A stored target password, used against a target that refuses it.
    let port = b.demo.addr.port();
    ops.asset_add(
        &admin,
        AssetSpec {
            name: "vaulted".into(),
            address: "127.0.0.1".into(),
            protocols: vec![Protocol {
                name: "ssh".into(),
                port,
            }],
            active: true,
            ..Default::default()
        },
    )
    .await
    .unwrap();
    ops.account_add(
        &admin,
        "vaulted",
        "demo",
        AccountSecret::Password(Secret::new(TARGET_PASSWORD.into())),
        true,
    )
    .await
    .unwrap();
    permit(
        &b,
        "admin-vaulted",
        "admin",
        &["vaulted"],
        Actions::all_but_tunnel(),
    )
    .await;
    b.reload().await;

    let mut sent_to_clients: Vec<u8> = Vec::new();
    // A wrong password, and erin's right one (the TOTP step then refuses a
    // password-only login: that is fine, the proof was checked and logged).
    assert!(
        Client::password(b.addr, "erin", WRONG_PASSWORD)
            .await
            .is_err()
    );
    let _ = Client::password(b.addr, "erin", USER_PASSWORD).await;
    let a = Client::admin(b.addr).await;
    for command in [
        "vaulted uname",
        "demo echo ok",
        "rampart user list --json",
        "rampart user show erin --json",
        "rampart account list --json",
        "rampart audit logins --json",
        "rampart audit operations --json",
        "rampart audit sessions --json",
        "rampart audit refusals --json",
    ] {
        let (out, err, _) = a.exec(command).await;
        sent_to_clients.extend_from_slice(&out);
        sent_to_clients.extend_from_slice(err.as_bytes());
    }
    // Typed with the terminal's echo off, inside a recorded session with
    // input recording on: the keystrokes are recorded (that is what the
    // setting is for), so the secret typed here is not one of the checked
    // ones; the checked ones never travel in a session.
    let mut term = a.shell(80, 24, Some("demo")).await;
    term.wait_for(std::time::Duration::from_secs(10), |s| s.contains('$'))
        .await;
    term.send(b"echo done\r").await;
    term.wait_for(std::time::Duration::from_secs(10), |s| s.contains("done"))
        .await;
    sent_to_clients.extend_from_slice(term.text().as_bytes());
    drop(term);
    a.close().await;

    let master_key = std::fs::read_to_string(b.services.config.data_dir().join("master.key"))
        .unwrap_or_default();
    let secrets = [
        ("admin password", ADMIN_PASSWORD.to_string()),
        ("user password", USER_PASSWORD.to_string()),
        ("wrong password", WRONG_PASSWORD.to_string()),
        ("target password", TARGET_PASSWORD.to_string()),
        ("TOTP seed", seed.expose().clone()),
        ("master key", master_key.trim().to_string()),
    ];
    let log = log.0.lock().unwrap().clone();
    // The capture saw the run (else the check would prove nothing).
    assert!(
        contains(&log, "erin") && contains(&log, "vaulted"),
        "the log capture missed the run"
    );
    let mut artefacts: Vec<(String, Vec<u8>)> = all_bytes(b.services.config.data_dir())
        .into_iter()
        .filter(|(p, _)| !p.ends_with("master.key"))
        .map(|(p, bytes)| (p.display().to_string(), bytes))
        .collect();
    assert!(artefacts.iter().any(|(p, _)| p.ends_with(".cast")));
    artefacts.push(("the log".into(), log));
    artefacts.push(("what clients were sent".into(), sent_to_clients));
    for (what, secret) in &secrets {
        assert!(secret.len() >= 8, "{what} is too short to search for");
        for (name, bytes) in &artefacts {
            assert!(!contains(bytes, secret), "the {what} is in {name}");
        }
    }
}
