//! Interop with the real peers (DESIGN.md §5): the OpenSSH `ssh` client
//! through the bastion, OpenSSH `sshd` as a target, and `asciinema cat` on
//! the recordings. A missing peer skips with a printed reason, unless
//! RAMPART_REQUIRE_INTEROP=1, where it fails.

mod support;

use std::process::{Command, Stdio};

use rampart::model::Actions;
use rampart::ops::Caller;
use rampart::store::audit_log::Query;
use support::peers::{keypair, peer, real_asset, ssh, start_sshd, user_with_key};
use support::ssh::TestBastion;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openssh_client_through_the_bastion_to_openssh_sshd() {
    let (Some(ssh_bin), Some(sshd_bin)) = (peer("ssh"), peer("sshd")) else {
        return;
    };
    let mut b = TestBastion::start().await;
    let keys = tempfile::tempdir().unwrap();
    let (admin_key, admin_pub) = keypair(keys.path(), "admin");
    let (target_key, target_pub) = keypair(keys.path(), "target");
    let sshd = start_sshd(&sshd_bin, &target_pub);
    user_with_key(&b, "admin", &admin_pub).await;
    let user = real_asset(
        &b,
        sshd.port,
        &["ssh"],
        &target_key,
        "admin",
        Actions::all_but_tunnel(),
    )
    .await;
    let ops = b.services.ops.clone();
    let admin = Caller::local();
    let port = b.addr.port();

    // Exec: output and exit status come back unchanged.
    let expected =
        String::from_utf8(Command::new("uname").arg("-a").output().unwrap().stdout).unwrap();
    let (out, err, code) = ssh(
        &ssh_bin,
        &admin_key,
        port,
        "admin",
        &["real", "uname", "-a"],
        b"",
    )
    .await;
    assert_eq!(out, expected, "stderr: {err}");
    assert_eq!(code, Some(0));
    let (_, _, code) = ssh(
        &ssh_bin,
        &admin_key,
        port,
        "admin",
        &["real", "exit 7"],
        b"",
    )
    .await;
    assert_eq!(code, Some(7));
    // The target in the login name: stdin passes through, as scp and rsync need.
    let (out, err, code) = ssh(
        &ssh_bin,
        &admin_key,
        port,
        &format!("admin@{user}@real"),
        &["cat"],
        b"through stdin\n",
    )
    .await;
    assert_eq!(
        (out.as_str(), code),
        ("through stdin\n", Some(0)),
        "stderr: {err}"
    );

    // An interactive shell on the real sshd, with a pty.
    let (out, err, code) = ssh(
        &ssh_bin,
        &admin_key,
        port,
        "admin",
        &["-tt", "real"],
        b"echo interop-$((6*7))\nexit 4\n",
    )
    .await;
    assert!(out.contains("interop-42"), "out: {out} err: {err}");
    assert_eq!(code, Some(4));

    // The demo target too, and the usage text without a pty.
    let (out, _, code) = ssh(
        &ssh_bin,
        &admin_key,
        port,
        "admin",
        &["demo", "echo", "hi"],
        b"",
    )
    .await;
    assert_eq!((out.as_str(), code), ("hi\n", Some(0)));

    b.shutdown().await;
    let sessions = ops
        .session_list(&admin, &Query::default(), false)
        .await
        .unwrap();
    assert!(sessions.len() >= 5, "{sessions:?}");
    assert!(
        sessions.iter().all(|s| s.status == "closed"),
        "{sessions:?}"
    );
    let report = rampart::audit::verify(&b.services.store, &b.services.config.recording_dir())
        .await
        .unwrap();
    assert_eq!(report.broken, None);

    // asciinema accepts the recordings (`asciinema cat` wants a terminal:
    // util-linux `script` gives it one).
    if let (Some(asciinema), Some(script)) = (peer("asciinema"), peer("script")) {
        let shell = sessions
            .iter()
            .find(|s| s.kind == "shell")
            .expect("the -tt session");
        let cast = b
            .services
            .config
            .recording_dir()
            .join(shell.recording.as_ref().unwrap());
        let out = Command::new(script)
            .arg("-qec")
            .arg(format!("{} cat {}", asciinema.display(), cast.display()))
            .arg("/dev/null")
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "asciinema cat: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(String::from_utf8_lossy(&out.stdout).contains("interop-42"));
    }
}
