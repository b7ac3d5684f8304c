//! Real peers for the interop tests (DESIGN.md §5): finding OpenSSH and
//! friends (a missing one skips, or fails under RAMPART_REQUIRE_INTEROP=1),
//! key pairs, a loopback OpenSSH `sshd` target, child processes under a
//! timeout, and the bastion set-up those tests share (an asset on that
//! sshd, the current user's account on it, a permission).

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use rampart::model::{AccountSpec, Actions, Protocol, ProtocolSpec};
use rampart::ops::{AccountSecret, AssetSpec, Caller, PermSpec, UserSpec};
use rampart::vault::Secret;

use super::ssh::TestBastion;

pub fn find(program: &str) -> Option<PathBuf> {
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
pub fn peer(program: &str) -> Option<PathBuf> {
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

/// Every peer in `programs`, or `None` (a skip, reason printed) as soon as
/// one is missing.
pub fn peers<const N: usize>(programs: [&str; N]) -> Option<[PathBuf; N]> {
    let mut found = Vec::with_capacity(N);
    for program in programs {
        found.push(peer(program)?);
    }
    found.try_into().ok()
}

/// A fresh ed25519 key pair made by ssh-keygen: (private key path, public line).
pub fn keypair(dir: &Path, name: &str) -> (PathBuf, String) {
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

/// The client options every OpenSSH client in these tests gets: no user
/// config, no host key prompts or files, no password prompts, only `key`.
pub fn client_options(key: &Path) -> Vec<String> {
    let mut opts: Vec<String> = [
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
    ]
    .map(String::from)
    .to_vec();
    opts.push(key.display().to_string());
    opts
}

/// What a child process gave.
#[derive(Debug)]
pub struct Ran {
    pub stdout: Vec<u8>,
    pub stderr: String,
    /// `None` when killed by a signal.
    pub code: Option<i32>,
}

impl Ran {
    pub fn ok(&self) -> bool {
        self.code == Some(0)
    }

    pub fn stdout_text(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }
}

/// Runs `cmd` with `stdin` written then closed, and fails the test if it
/// has not exited within `limit` (the child is killed: a hang must fail the
/// test, not the CI job).
pub async fn run(mut cmd: tokio::process::Command, stdin: &[u8], limit: Duration) -> Ran {
    let shown = format!("{:?}", cmd.as_std());
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let mut child = cmd.spawn().unwrap_or_else(|e| panic!("spawn {shown}: {e}"));
    let input = child.stdin.take();
    let bytes = stdin.to_vec();
    // Written beside the wait, so that a child that answers before it has
    // read all of its input cannot deadlock the test.
    let writer = tokio::spawn(async move {
        if let Some(mut input) = input {
            use tokio::io::AsyncWriteExt;
            let _ = input.write_all(&bytes).await;
        }
    });
    // On timeout the child is dropped, and kill_on_drop kills it.
    let out = match tokio::time::timeout(limit, child.wait_with_output()).await {
        Ok(out) => out.unwrap_or_else(|e| panic!("wait {shown}: {e}")),
        Err(_) => panic!("{shown} did not finish within {limit:?}"),
    };
    let _ = writer.await;
    Ran {
        stdout: out.stdout,
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        code: out.status.code(),
    }
}

/// Runs OpenSSH `ssh` against the bastion as `login`, with `args` after the host.
pub async fn ssh(
    ssh: &Path,
    key: &Path,
    port: u16,
    login: &str,
    args: &[&str],
    stdin: &[u8],
) -> (String, String, Option<i32>) {
    let mut cmd = tokio::process::Command::new(ssh);
    cmd.args(client_options(key))
        .args(["-p", &port.to_string(), &format!("{login}@127.0.0.1")])
        .args(args);
    let ran = run(cmd, stdin, Duration::from_secs(30)).await;
    (ran.stdout_text(), ran.stderr, ran.code)
}

/// An OpenSSH sshd on a loopback port, accepting `public` for the current
/// user, with the sftp subsystem, killed on drop.
pub struct Sshd {
    child: std::process::Child,
    pub port: u16,
    _dir: tempfile::TempDir,
}

impl Sshd {
    /// Kills (SIGKILL) every process the sshd started for its connections,
    /// leaving the listener: a target that dies in the middle of a session.
    /// Returns how many were killed.
    pub fn kill_sessions(&self) -> usize {
        let mut parents = vec![self.child.id()];
        let mut killed = 0;
        while let Some(parent) = parents.pop() {
            for child in children_of(parent) {
                parents.push(child);
                let _ = Command::new("kill")
                    .arg("-9")
                    .arg(child.to_string())
                    .status();
                killed += 1;
            }
        }
        killed
    }
}

/// The pids whose parent is `pid`, from /proc.
fn children_of(pid: u32) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|p| {
            std::fs::read_to_string(format!("/proc/{p}/stat"))
                .ok()
                .and_then(|stat| {
                    // pid (comm) state ppid ...: comm may hold spaces.
                    let after = &stat[stat.rfind(')')? + 1..];
                    after.split_whitespace().nth(1)?.parse::<u32>().ok()
                })
                == Some(pid)
        })
        .collect()
}

impl Drop for Sshd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn start_sshd(sshd: &Path, public: &str) -> Sshd {
    let dir = tempfile::tempdir().expect("temp dir");
    let (host_key, _) = keypair(dir.path(), "host_key");
    std::fs::write(dir.path().join("authorized_keys"), format!("{public}\n"))
        .expect("authorized_keys");
    let _ = std::fs::create_dir_all("/run/sshd");
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("free port");
        l.local_addr().expect("addr").port()
    };
    // internal-sftp: no dependence on where the distribution puts sftp-server.
    let config = format!(
        "Port {port}\nListenAddress 127.0.0.1\nHostKey {}\nAuthorizedKeysFile {}\n\
         PasswordAuthentication no\nKbdInteractiveAuthentication no\nPubkeyAuthentication yes\n\
         PermitRootLogin prohibit-password\nUsePAM no\nStrictModes no\nPidFile {}\n\
         Subsystem sftp internal-sftp\nAcceptEnv LANG LC_* GIT_PROTOCOL\n",
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

pub fn current_user() -> String {
    std::env::var("USER")
        .ok()
        .filter(|u| !u.is_empty())
        .unwrap_or_else(|| "root".into())
}

// ------------------------------------------------ bastion-side set-up --

/// Adds asset `name` at 127.0.0.1 with `protocols` (names, all on `port`),
/// and the current user's account on it, reached with the private key in
/// `target_key`. Returns the account name.
pub async fn add_loopback_asset(
    b: &TestBastion,
    name: &str,
    port: u16,
    protocols: &[&str],
    target_key: &Path,
) -> String {
    let ops = &b.services.ops;
    let admin = Caller::local();
    ops.asset_add(
        &admin,
        AssetSpec {
            name: name.into(),
            address: "127.0.0.1".into(),
            protocols: protocols
                .iter()
                .map(|p| Protocol {
                    name: (*p).into(),
                    port,
                })
                .collect(),
            active: true,
            ..Default::default()
        },
    )
    .await
    .expect("asset add");
    let account = current_user();
    let pem = std::fs::read_to_string(target_key).expect("target key");
    ops.account_add(
        &admin,
        name,
        &account,
        AccountSecret::PrivateKey(Secret::new(pem)),
        true,
    )
    .await
    .expect("account add");
    account
}

/// Permission `perm` for `user` on `assets`, every account and protocol,
/// with `actions`.
pub async fn permit(b: &TestBastion, perm: &str, user: &str, assets: &[&str], actions: Actions) {
    b.services
        .ops
        .perm_add(
            &Caller::local(),
            PermSpec {
                name: perm.into(),
                users: vec![user.into()],
                groups: vec![],
                assets: assets.iter().map(|a| (*a).into()).collect(),
                nodes: vec![],
                accounts: AccountSpec::all(),
                protocols: ProtocolSpec::All,
                actions,
                valid_from: None,
                valid_until: None,
                comment: String::new(),
                require_approval: false,
            },
        )
        .await
        .expect("perm add");
}

/// A user who logs in with `public` (`admin` exists already: the key is
/// added to it).
pub async fn user_with_key(b: &TestBastion, name: &str, public: &str) {
    let ops = &b.services.ops;
    let admin = Caller::local();
    if name == "admin" {
        ops.user_key_add(&admin, name, public)
            .await
            .expect("admin key");
        return;
    }
    ops.user_add(
        &admin,
        UserSpec {
            name: name.into(),
            keys: vec![public.into()],
            ..Default::default()
        },
    )
    .await
    .expect("user add");
}

/// The set-up most interop tests start from: asset `real` → the loopback
/// `sshd` on `port` (protocols `protocols`), the current user's account on
/// it with `target_key`, and permission `USER-real` for `user` with
/// `actions`. Reloads the policy. Returns the account name.
pub async fn real_asset(
    b: &TestBastion,
    port: u16,
    protocols: &[&str],
    target_key: &Path,
    user: &str,
    actions: Actions,
) -> String {
    let account = add_loopback_asset(b, "real", port, protocols, target_key).await;
    permit(b, &format!("{user}-real"), user, &["real"], actions).await;
    b.reload().await;
    account
}
