//! Interop with the real peers (DESIGN.md §5): the OpenSSH `ssh` client
//! through the bastion, OpenSSH `sshd` as a target, and `asciinema cat` on
//! the recordings. A missing peer skips with a printed reason, unless
//! RAMPART_REQUIRE_INTEROP=1, where it fails.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use rampart::model::{AccountSpec, Actions, Protocol, ProtocolSpec};
use rampart::ops::{AccountSecret, AssetSpec, Caller, PermSpec};
use rampart::store::audit_log::Query;
use rampart::vault::Secret;
use support::ssh::TestBastion;

fn find(program: &str) -> Option<PathBuf> {
    for dir in [
        "/usr/bin",
        "/usr/sbin",
        "/usr/local/bin",
        "/usr/local/sbin",
        "/bin",
        "/sbin",
    ] {
        let p = Path::new(dir).join(program);
        if p.exists() {
            return Some(p);
        }
    }
    None
}

/// The peer, or a skip (a failure when interop is required).
fn peer(program: &str) -> Option<PathBuf> {
    match find(program) {
        Some(p) => Some(p),
        None if std::env::var("RAMPART_REQUIRE_INTEROP").as_deref() == Ok("1") => {
            panic!("{program} is required (RAMPART_REQUIRE_INTEROP=1) but not installed")
        }
        None => {
            eprintln!("skipped: {program} is not installed");
            None
        }
    }
}

/// A fresh ed25519 key pair made by ssh-keygen: (private key path, public line).
fn keypair(dir: &Path, name: &str) -> (PathBuf, String) {
    let path = dir.join(name);
    let status = Command::new(find("ssh-keygen").expect("ssh-keygen"))
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(&path)
        .status()
        .expect("ssh-keygen");
    assert!(status.success());
    let public = std::fs::read_to_string(path.with_extension("pub")).expect("pub key");
    (path, public.trim().to_string())
}

/// Runs OpenSSH `ssh` against the bastion as `login`, with `args` after the host.
async fn ssh(
    ssh: &Path,
    key: &Path,
    port: u16,
    login: &str,
    args: &[&str],
    stdin: &[u8],
) -> (String, String, Option<i32>) {
    let mut cmd = tokio::process::Command::new(ssh);
    cmd.args([
        "-F",
        "/dev/null",
        "-o",
        "StrictHostKeyChecking=no",
        "-o",
        "UserKnownHostsFile=/dev/null",
        "-o",
        "BatchMode=yes",
        "-o",
        "LogLevel=ERROR",
        "-o",
        "IdentitiesOnly=yes",
        "-i",
    ])
    .arg(key)
    .args(["-p", &port.to_string(), &format!("{login}@127.0.0.1")])
    .args(args)
    .stdin(Stdio::piped())
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .kill_on_drop(true);
    let mut child = cmd.spawn().expect("spawn ssh");
    if let Some(mut input) = child.stdin.take() {
        use tokio::io::AsyncWriteExt;
        input.write_all(stdin).await.expect("stdin");
    }
    let out = tokio::time::timeout(Duration::from_secs(30), child.wait_with_output())
        .await
        .expect("ssh finished in time")
        .expect("ssh output");
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
        out.status.code(),
    )
}

/// An OpenSSH sshd on a loopback port, accepting `public` for the current
/// user, killed on drop.
struct Sshd {
    child: std::process::Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Drop for Sshd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_sshd(sshd: &Path, public: &str) -> Sshd {
    let dir = tempfile::tempdir().expect("temp dir");
    let (host_key, _) = keypair(dir.path(), "host_key");
    std::fs::write(dir.path().join("authorized_keys"), format!("{public}\n"))
        .expect("authorized_keys");
    let _ = std::fs::create_dir_all("/run/sshd");
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("free port");
        l.local_addr().expect("addr").port()
    };
    let config = format!(
        "Port {port}\nListenAddress 127.0.0.1\nHostKey {}\nAuthorizedKeysFile {}\n\
         PasswordAuthentication no\nKbdInteractiveAuthentication no\nPubkeyAuthentication yes\n\
         PermitRootLogin prohibit-password\nUsePAM no\nStrictModes no\nPidFile {}\n",
        host_key.display(),
        dir.path().join("authorized_keys").display(),
        dir.path().join("sshd.pid").display(),
    );
    let config_path = dir.path().join("sshd_config");
    std::fs::write(&config_path, config).expect("sshd_config");
    let child = Command::new(sshd)
        .arg("-D")
        .arg("-e")
        .arg("-f")
        .arg(&config_path)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start sshd");
    for _ in 0..100 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Sshd {
        child,
        port,
        _dir: dir,
    }
}

fn current_user() -> String {
    std::env::var("USER").unwrap_or_else(|_| "root".into())
}

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
    let ops = b.services.ops.clone();
    let admin = Caller::local();
    ops.user_key_add(&admin, "admin", &admin_pub).await.unwrap();
    ops.asset_add(
        &admin,
        AssetSpec {
            name: "real".into(),
            address: "127.0.0.1".into(),
            protocols: vec![Protocol {
                name: "ssh".into(),
                port: sshd.port,
            }],
            active: true,
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let user = current_user();
    let pem = std::fs::read_to_string(&target_key).unwrap();
    ops.account_add(
        &admin,
        "real",
        &user,
        AccountSecret::PrivateKey(Secret::new(pem)),
        true,
    )
    .await
    .unwrap();
    ops.perm_add(
        &admin,
        PermSpec {
            name: "admin-real".into(),
            users: vec!["admin".into()],
            groups: vec![],
            assets: vec!["real".into()],
            nodes: vec![],
            accounts: AccountSpec::all(),
            protocols: ProtocolSpec::All,
            actions: Actions::all_but_tunnel(),
            valid_from: None,
            valid_until: None,
            comment: String::new(),
        },
    )
    .await
    .unwrap();
    b.reload().await;
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
