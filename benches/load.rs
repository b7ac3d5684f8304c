//! Load (issue 6): N concurrent interactive sessions through a real
//! `rampart serve`, with the bastion's memory and CPU per session, the rate
//! at which it accepts sessions, and every recording checked byte for byte
//! against what its client received.
//!
//! ```text
//! cargo bench --bench load -- [--sessions N] [--lines K] [--stream-lines S]
//!                             [--rampart PATH] [--in-flight C] [--deadline SECONDS]
//!                             [--nodes 2 --database postgres://...]
//! ```
//!
//! With `--nodes 2` (issue 16) the generator runs two `rampart serve`
//! nodes sharing the PostgreSQL database `--database` (an empty one; the
//! second node gets copies of the first one's master key and host key) and
//! spreads the connections over both, alternately; memory and CPU are the
//! two processes' summed. `bench/load_cluster.sh` starts a throwaway
//! PostgreSQL for it.
//!
//! The generator builds a scratch data dir (config, `rampart init`, user
//! `load` with an ed25519 key, asset `load`, account `demo`, permission
//! `load`, all through the CLI), runs the demo target in its own process and
//! `rampart serve` as a child, so that the bastion's memory
//! (`/proc/PID/status`) and CPU (`/proc/PID/stat`) are its own. The bastion
//! allows 10 session channels per connection, so N sessions are ceil(N/10)
//! connections, set up C at a time (default 32). Each session is a pty
//! (80x24) with `exec "load"` (a jump to the asset's shell); once all are at
//! the prompt, each types K command lines, paced 20-100 ms apart, the first
//! `echo` of a unique token, then `exit`. The lines are what people type and
//! what streams text back (issue 14: text is what people stream): `echo` of
//! random printable ASCII, `echo -e` with ANSI colours, `cat` of a text file,
//! `log N` (N syslog-like lines in colour, 5-40) and `seq N`; halfway through,
//! one `log S` streams a longer run (S lines, default 500, about 150 bytes
//! each; 0 leaves it out). Everything the client receives (stdout and stderr,
//! in arrival order) must equal the concatenated "o" events of the session's
//! recording.
//!
//! Time is bounded: a global deadline (default 600 s), and a session that
//! sees nothing for 60 s when it expects output counts as failed. The exit
//! status is non-zero when a session failed, a recording differs, or a
//! session row was not finalised within 120 s of the last close. The command
//! audit (rows holding exactly a typed line) is reported, not judged.
//! `RAMPART=PATH` names the binary too; `KEEP_TMP=1` keeps the scratch dir
//! (with the bastion's log, `rampart.log`).

use std::collections::HashMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rampart::demo::DemoTarget;
use rampart::record::EventKind;
use rampart::vault::Secret;
use russh::keys::{PrivateKeyWithHashAlg, PublicKeyOrCertificate};
use russh::{ChannelMsg, Disconnect, client};
use tokio::sync::{Notify, Semaphore, mpsc, watch};

/// Session channels per SSH connection the bastion allows.
const PER_CONNECTION: usize = rampart::ssh::handler::MAX_SESSIONS;
/// A session that sees nothing for this long while it expects output fails.
const STUCK: Duration = Duration::from_secs(60);
/// The demo target's prompt: the session is open when it shows.
const PROMPT: &[u8] = b"demo@demo:~$ ";
const TARGET_PASSWORD: &str = "load-target-password-1";
/// What a person may keep per session, by issue 6.
const AIM_KIB_PER_SESSION: u64 = 2048;

struct Options {
    sessions: usize,
    lines: usize,
    stream_lines: usize,
    rampart: PathBuf,
    in_flight: usize,
    deadline: Duration,
    nodes: usize,
    database: Option<String>,
}

fn usage() -> String {
    "usage: cargo bench --bench load -- [--sessions N] [--lines K] [--stream-lines S] \
     [--rampart PATH] [--in-flight C] [--deadline SECONDS] [--nodes 2 --database URL]"
        .to_string()
}

fn options() -> Result<Options, String> {
    let mut o = Options {
        sessions: 1000,
        lines: 20,
        stream_lines: 500,
        // The binary cargo built beside this bench (target/release/rampart
        // under `cargo bench`), unless told otherwise.
        rampart: std::env::var_os("RAMPART")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_rampart"))),
        in_flight: 32,
        deadline: Duration::from_secs(600),
        nodes: 1,
        database: None,
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = |name: &str| {
            args.next()
                .ok_or(format!("{name} needs a value\n{}", usage()))
        };
        let number = |name: &str, v: String| -> Result<usize, String> {
            v.parse::<usize>()
                .ok()
                .filter(|n| *n > 0)
                .ok_or(format!("{name}: {v:?} is not a positive number"))
        };
        match arg.as_str() {
            // cargo bench passes --bench to harness-less benches.
            "--bench" => {}
            "--sessions" => o.sessions = number(&arg, value(&arg)?)?,
            "--lines" => o.lines = number(&arg, value(&arg)?)?,
            // 0 is allowed: no long stream.
            "--stream-lines" => {
                let v = value(&arg)?;
                o.stream_lines = v
                    .parse()
                    .map_err(|_| format!("{arg}: {v:?} is not a number"))?;
            }
            "--rampart" => o.rampart = PathBuf::from(value(&arg)?),
            "--in-flight" => o.in_flight = number(&arg, value(&arg)?)?,
            "--deadline" => o.deadline = Duration::from_secs(number(&arg, value(&arg)?)? as u64),
            "--nodes" => o.nodes = number(&arg, value(&arg)?)?,
            "--database" => o.database = Some(value(&arg)?),
            "-h" | "--help" => return Err(usage()),
            other => return Err(format!("unknown argument {other:?}\n{}", usage())),
        }
    }
    if o.nodes > 2 {
        return Err("--nodes: 1 or 2".into());
    }
    if o.nodes == 2
        && !o
            .database
            .as_deref()
            .is_some_and(|u| u.starts_with("postgres"))
    {
        return Err(
            "--nodes 2 needs --database postgres://... (an empty database; bench/load_cluster.sh \
             starts a throwaway PostgreSQL)"
                .into(),
        );
    }
    Ok(o)
}

/// xorshift64*: enough randomness for typing, no crate needed.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform enough in `lo..=hi` for pacing and lengths.
    fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next() % (hi - lo + 1)
    }

    fn pick<'a>(&mut self, of: &[&'a str]) -> &'a str {
        let at = self.next() % of.len().max(1) as u64;
        of.get(at as usize).copied().unwrap_or_default()
    }
}

/// Random printable ASCII, `len` characters.
fn printable(rng: &mut Rng, len: usize) -> String {
    (0..len)
        .map(|_| char::from(rng.range(0x20, 0x7e) as u8))
        .collect()
}

/// One command line as a person might type it into the demo shell: short
/// `echo`s, coloured `echo -e`, `cat` of a text file, a few lines of a
/// coloured log, a `seq`. Without the CR.
fn command_line(rng: &mut Rng) -> String {
    const COLOURS: &[&str] = &["31", "32", "33", "34", "35", "36", "1;31", "2", "1"];
    const WORDS: &[&str] = &[
        "deploy",
        "done",
        "failed",
        "ok",
        "restarting",
        "nginx",
        "postgres",
        "backup",
        "checking",
        "warning:",
        "error:",
        "upstream",
        "release",
        "v2.14.1",
        "web-01",
    ];
    match rng.range(0, 9) {
        0..=2 => {
            let len = rng.range(10, 60) as usize;
            format!("echo {}", printable(rng, len))
        }
        3 | 4 => {
            let mut line = String::from("echo -e");
            for _ in 0..rng.range(1, 6) {
                let colour = rng.pick(COLOURS);
                let word = rng.pick(WORDS);
                line.push_str(&format!(" \\e[{colour}m{word}\\e[0m {}", rng.pick(WORDS)));
            }
            line
        }
        5 | 6 => format!(
            "cat {}",
            rng.pick(&["README", "motd", "services", "services"])
        ),
        7 | 8 => format!("log {}", rng.range(5, 40)),
        _ => format!("seq {}", rng.range(10, 300)),
    }
}

fn seed() -> u64 {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(1);
    t ^ u64::from(std::process::id()) << 32
}

// ------------------------------------------------------------------ setup --

/// The scratch dir: removed at the end unless KEEP_TMP is set.
struct Scratch {
    dir: Option<tempfile::TempDir>,
    path: PathBuf,
}

impl Scratch {
    fn new() -> Result<Scratch, String> {
        let dir = tempfile::Builder::new()
            .prefix("rampart-load.")
            .tempdir()
            .map_err(|e| format!("temp dir: {e}"))?;
        let path = dir.path().to_path_buf();
        Ok(Scratch {
            dir: Some(dir),
            path,
        })
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        if std::env::var_os("KEEP_TMP").is_some_and(|v| !v.is_empty())
            && let Some(dir) = self.dir.take()
        {
            eprintln!("[load] kept {}", dir.keep().display());
        }
    }
}

/// Runs the CLI against the scratch dir; stdout, or the reason it failed.
fn cli(rampart: &Path, dir: &Path, args: &[&str], stdin: Option<&str>) -> Result<String, String> {
    let mut cmd = Command::new(rampart);
    cmd.args(args)
        .current_dir(dir)
        .env_remove("RAMPART_CONFIG")
        .env_remove("RAMPART_MASTER_KEY")
        .env_remove("RUST_LOG")
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd
        .spawn()
        .map_err(|e| format!("{}: {e}", rampart.display()))?;
    if let (Some(text), Some(mut pipe)) = (stdin, child.stdin.take()) {
        pipe.write_all(text.as_bytes())
            .map_err(|e| format!("rampart {}: stdin: {e}", args.join(" ")))?;
    }
    let out = child
        .wait_with_output()
        .map_err(|e| format!("rampart {}: {e}", args.join(" ")))?;
    if !out.status.success() {
        return Err(format!(
            "rampart {}: {}: {}",
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn keygen(path: &Path, comment: &str) -> Result<(), String> {
    let status = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", comment, "-f"])
        .arg(path)
        .stdin(Stdio::null())
        .status()
        .map_err(|e| format!("ssh-keygen (install openssh-client): {e}"))?;
    if !status.success() {
        return Err(format!("ssh-keygen {}: {status}", path.display()));
    }
    Ok(())
}

fn free_port() -> Result<u16, String> {
    let l = std::net::TcpListener::bind("127.0.0.1:0").map_err(|e| format!("bind: {e}"))?;
    l.local_addr()
        .map(|a| a.port())
        .map_err(|e| format!("bind: {e}"))
}

/// Copies the cluster's master key and host key into another node's data
/// dir (0700, the keys 0600), as `contrib/` tells an operator to.
fn share_keys(from: &Path, to: &Path) -> Result<(), String> {
    use std::os::unix::fs::{DirBuilderExt as _, PermissionsExt as _};
    std::fs::DirBuilder::new()
        .mode(0o700)
        .recursive(true)
        .create(to)
        .map_err(|e| format!("{}: {e}", to.display()))?;
    for file in ["master.key", "ssh_host_ed25519_key"] {
        let target = to.join(file);
        std::fs::copy(from.join(file), &target).map_err(|e| format!("{file}: {e}"))?;
        std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o600))
            .map_err(|e| format!("{file}: {e}"))?;
    }
    Ok(())
}

/// `rampart serve` as a child; SIGTERM'd by [`Serve::stop`], killed on drop.
struct Serve {
    child: Child,
    pid: u32,
}

impl Serve {
    fn start(rampart: &Path, dir: &Path, port: u16) -> Result<Serve, String> {
        let stderr = std::fs::File::create(dir.join("serve.stderr"))
            .map_err(|e| format!("serve.stderr: {e}"))?;
        let child = Command::new(rampart)
            .arg("serve")
            .current_dir(dir)
            .env_remove("RAMPART_CONFIG")
            .env_remove("RAMPART_MASTER_KEY")
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .map_err(|e| format!("rampart serve: {e}"))?;
        let pid = child.id();
        let mut serve = Serve { child, pid };
        let until = Instant::now() + Duration::from_secs(30);
        while Instant::now() < until {
            if let Ok(Some(status)) = serve.child.try_wait() {
                return Err(format!("rampart serve exited at start: {status}"));
            }
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return Ok(serve);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Err(format!(
            "rampart serve did not listen on {port} within 30 s"
        ))
    }

    fn running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// SIGTERM, as an operator would, so that it finalises what is open.
    fn stop(&mut self) -> String {
        if !self.running() {
            return "had already exited".into();
        }
        let _ = Command::new("kill")
            .args(["-TERM", &self.pid.to_string()])
            .status();
        let until = Instant::now() + Duration::from_secs(45);
        while Instant::now() < until {
            if let Ok(Some(status)) = self.child.try_wait() {
                return format!("stopped by SIGTERM ({status})");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        "did not stop within 45 s of SIGTERM: killed".into()
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        if self.running() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// A field of /proc/PID/status in KiB (VmRSS, VmHWM).
fn status_kib(pid: u32, key: &str) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix(':'))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
}

fn clock_ticks() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
        .unwrap_or(100.0)
}

/// utime + stime of a process, in seconds.
fn cpu_seconds(pid: u32, ticks: f64) -> Option<f64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces: count from its ')'.
    let rest = text.get(text.rfind(')')? + 1..)?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // After ')': state is field 3, so utime (14) and stime (15) are 11, 12.
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) / ticks)
}

/// Summed over the nodes' processes; `None` when one cannot be read.
fn rss_kib(pids: &[u32]) -> Option<u64> {
    pids.iter().map(|p| status_kib(*p, "VmRSS")).sum()
}

fn hwm_kib(pids: &[u32]) -> Option<u64> {
    pids.iter().map(|p| status_kib(*p, "VmHWM")).sum()
}

fn cpu_sum(pids: &[u32], ticks: f64) -> Option<f64> {
    pids.iter().map(|p| cpu_seconds(*p, ticks)).sum()
}

/// The soft and hard open-file limits of this process.
fn nofile() -> Option<(u64, u64)> {
    let text = std::fs::read_to_string("/proc/self/limits").ok()?;
    let mut v = text
        .lines()
        .find_map(|l| l.strip_prefix("Max open files"))?
        .split_whitespace();
    let parse = |s: Option<&str>| match s? {
        "unlimited" => Some(u64::MAX),
        n => n.parse().ok(),
    };
    Some((parse(v.next())?, parse(v.next())?))
}

/// Makes sure both processes can open what N sessions need (the bastion
/// inherits this limit): raised to the hard limit with `prlimit` if needed.
fn ensure_files(sessions: usize, connections: usize) -> Result<u64, String> {
    // Generator: its client sockets plus the demo target's side of every
    // upstream connection. Bastion: client sockets, upstream sockets, a cast
    // per session (and its sidecar when one is made), the database.
    let need = (connections + 3 * sessions + 256) as u64;
    let Some((soft, hard)) = nofile() else {
        return Ok(0);
    };
    if soft >= need {
        return Ok(soft);
    }
    if hard >= need {
        let _ = Command::new("prlimit")
            .args([
                "--pid",
                &std::process::id().to_string(),
                &format!("--nofile={hard}:{hard}"),
            ])
            .status();
    }
    match nofile() {
        Some((soft, _)) if soft >= need => Ok(soft),
        Some((soft, hard)) => Err(format!(
            "{sessions} sessions need about {need} open files per process; the limit is {soft} \
             (hard {hard}): raise it (ulimit -n {need}) or lower --sessions"
        )),
        None => Ok(0),
    }
}

// ---------------------------------------------------------------- sessions --

struct AcceptAll;

impl client::Handler for AcceptAll {
    type Error = russh::Error;

    async fn check_server_key(&mut self, _: &PublicKeyOrCertificate) -> Result<bool, Self::Error> {
        Ok(true)
    }
}

/// What the sessions share with the conductor.
struct Ctx {
    /// The nodes' addresses; connection `c` goes to `addrs[c % len]`.
    addrs: Vec<std::net::SocketAddr>,
    key: Arc<russh::keys::PrivateKey>,
    lines: usize,
    stream_lines: usize,
    deadline: tokio::time::Instant,
    connects: Semaphore,
    /// Sessions that reached the prompt, and those that gave up before it.
    prompted: AtomicUsize,
    settled: AtomicUsize,
    settled_changed: Notify,
    first_connect: Mutex<Option<Instant>>,
    last_prompt: Mutex<Option<Instant>>,
    go: watch::Receiver<bool>,
}

/// One session as its client saw it.
struct Outcome {
    token: String,
    received: Vec<u8>,
    error: Option<String>,
    prompted: bool,
    /// From the first line typed to the channel's close.
    typing: Option<Duration>,
    /// The command lines typed, `exit` included, without the CR.
    typed: Vec<String>,
}

/// Counts a session as settled (at its prompt, or failed before it) exactly
/// once, whatever way its task ends, and tells its connection.
struct Settle {
    ctx: Arc<Ctx>,
    tx: Option<mpsc::Sender<()>>,
}

impl Settle {
    fn now(&mut self) {
        if let Some(tx) = self.tx.take() {
            let _ = tx.try_send(());
            self.ctx.settled.fetch_add(1, Ordering::SeqCst);
            self.ctx.settled_changed.notify_waiters();
        }
    }
}

impl Drop for Settle {
    fn drop(&mut self) {
        self.now();
    }
}

fn token(idx: usize, rng: &mut Rng) -> String {
    format!("lt{idx:07}x{:016x}", rng.next())
}

/// Finds a token `lt0000042x0123456789abcdef` in bytes.
fn find_token<'a>(bytes: &[u8], tokens: &'a HashMap<String, usize>) -> Option<(&'a str, usize)> {
    const LEN: usize = 2 + 7 + 1 + 16;
    let mut from = 0;
    while let Some(at) = bytes.get(from..)?.windows(2).position(|w| w == b"lt") {
        let start = from + at;
        if let Some(candidate) = bytes.get(start..start + LEN)
            && let Ok(text) = std::str::from_utf8(candidate)
            && let Some((k, v)) = tokens.get_key_value(text)
        {
            return Some((k.as_str(), *v));
        }
        from = start + 1;
    }
    None
}

/// One connection: connect and authenticate (one of `in_flight` at a time,
/// until each of its sessions is at the prompt), then its sessions.
async fn connection(ctx: Arc<Ctx>, first: usize, count: usize, seed: u64) -> Vec<(usize, Outcome)> {
    let mut rng = Rng::new(seed);
    let tokens: Vec<String> = (first..first + count).map(|i| token(i, &mut rng)).collect();
    let failed_all = |why: String| -> Vec<(usize, Outcome)> {
        tokens
            .iter()
            .enumerate()
            .map(|(i, t)| {
                (
                    first + i,
                    Outcome {
                        token: t.clone(),
                        received: Vec::new(),
                        error: Some(why.clone()),
                        prompted: false,
                        typing: None,
                        typed: Vec::new(),
                    },
                )
            })
            .collect()
    };
    let Ok(permit) = ctx.connects.acquire().await else {
        return failed_all("no connect permit".into());
    };
    {
        let mut first_connect = ctx.first_connect.lock().unwrap_or_else(|e| e.into_inner());
        first_connect.get_or_insert_with(Instant::now);
    }
    let config = Arc::new(client::Config {
        inactivity_timeout: None,
        ..Default::default()
    });
    let connect = async {
        let addr = ctx.addrs[(first / PER_CONNECTION) % ctx.addrs.len()];
        let mut handle = client::connect(config, addr, AcceptAll)
            .await
            .map_err(|e| format!("connect: {e}"))?;
        let auth = handle
            .authenticate_publickey("load", PrivateKeyWithHashAlg::new(ctx.key.clone(), None))
            .await
            .map_err(|e| format!("authenticate: {e}"))?;
        if !auth.success() {
            return Err(format!("authentication refused: {auth:?}"));
        }
        Ok(handle)
    };
    let handle = match tokio::time::timeout(STUCK, connect).await {
        Ok(Ok(h)) => Arc::new(h),
        Ok(Err(e)) => {
            for _ in 0..count {
                ctx.settled.fetch_add(1, Ordering::SeqCst);
            }
            ctx.settled_changed.notify_waiters();
            return failed_all(e);
        }
        Err(_) => {
            for _ in 0..count {
                ctx.settled.fetch_add(1, Ordering::SeqCst);
            }
            ctx.settled_changed.notify_waiters();
            return failed_all(format!(
                "connect and authenticate: nothing within {STUCK:?}"
            ));
        }
    };
    let (settled_tx, mut settled_rx) = mpsc::channel::<()>(count);
    let mut tasks = tokio::task::JoinSet::new();
    for (i, token) in tokens.into_iter().enumerate() {
        let settle = Settle {
            ctx: ctx.clone(),
            tx: Some(settled_tx.clone()),
        };
        let ctx = ctx.clone();
        let handle = handle.clone();
        let seed = rng.next();
        tasks.spawn(async move {
            let mut outcome = Outcome {
                token,
                received: Vec::new(),
                error: None,
                prompted: false,
                typing: None,
                typed: Vec::new(),
            };
            let deadline = ctx.deadline;
            let run = session(&ctx, &handle, settle, &mut outcome, Rng::new(seed));
            outcome.error = match tokio::time::timeout_at(deadline, run).await {
                Ok(Ok(())) => None,
                Ok(Err(e)) => Some(e),
                Err(_) => Some("global deadline passed".into()),
            };
            (first + i, outcome)
        });
    }
    drop(settled_tx);
    // Hold the connect permit until each session is at its prompt or failed.
    while settled_rx.recv().await.is_some() {}
    drop(permit);
    let mut out = Vec::with_capacity(count);
    while let Some(r) = tasks.join_next().await {
        match r {
            Ok(x) => out.push(x),
            Err(e) => eprintln!("[load] a session task failed: {e}"),
        }
    }
    let _ = handle.disconnect(Disconnect::ByApplication, "", "en").await;
    out
}

#[derive(PartialEq)]
enum Phase {
    Prompt,
    Waiting,
    Typing,
    Closing,
}

/// One interactive session: pty, `exec load`, wait for everyone, type,
/// `exit`, read to the close. Every byte received goes to `outcome`.
async fn session(
    ctx: &Ctx,
    handle: &client::Handle<AcceptAll>,
    mut settle: Settle,
    outcome: &mut Outcome,
    mut rng: Rng,
) -> Result<(), String> {
    let open = async {
        let ch = handle
            .channel_open_session()
            .await
            .map_err(|e| format!("channel open: {e}"))?;
        ch.request_pty(false, "xterm-256color", 80, 24, 0, 0, &[])
            .await
            .map_err(|e| format!("pty-req: {e}"))?;
        ch.exec(true, "load")
            .await
            .map_err(|e| format!("exec: {e}"))?;
        Ok::<_, String>(ch)
    };
    let ch = tokio::time::timeout(STUCK, open)
        .await
        .map_err(|_| format!("channel open and exec: nothing within {STUCK:?}"))??;
    let (mut read, write) = ch.split();
    // Typing goes through a task of its own: a write that waits for the
    // client's connection loop must never stop this task from reading, or
    // the loop, blocked handing this channel output it does not take,
    // would never take the write (and every channel of the connection
    // would stall with it).
    let (typing, mut to_type) = mpsc::unbounded_channel::<Vec<u8>>();
    let typist = tokio::spawn(async move {
        while let Some(line) = to_type.recv().await {
            write
                .data_bytes(line)
                .await
                .map_err(|e| format!("typing: {e}"))?;
        }
        Ok::<_, String>(write)
    });
    let mut typist = Some(typist);
    let mut go = ctx.go.clone();
    let mut phase = Phase::Prompt;
    let mut idle_until = tokio::time::Instant::now() + STUCK;
    let mut typed = 0usize;
    let mut next_send = tokio::time::Instant::now();
    let far = tokio::time::Instant::now() + Duration::from_secs(86_400);
    let mut typing_since = Instant::now();
    loop {
        if phase == Phase::Waiting && *go.borrow_and_update() {
            phase = Phase::Typing;
            typing_since = Instant::now();
            idle_until = tokio::time::Instant::now() + STUCK;
            next_send = tokio::time::Instant::now();
        }
        let sending = phase == Phase::Typing;
        let idle = if phase == Phase::Waiting {
            far
        } else {
            idle_until
        };
        tokio::select! {
            msg = read.wait() => {
                let Some(msg) = msg else {
                    return match phase {
                        Phase::Closing => {
                            outcome.typing = Some(typing_since.elapsed());
                            Ok(())
                        }
                        _ => Err(format!("channel closed before the end ({} lines typed)", typed)),
                    };
                };
                idle_until = tokio::time::Instant::now() + STUCK;
                match msg {
                    ChannelMsg::Data { data } => outcome.received.extend_from_slice(&data),
                    ChannelMsg::ExtendedData { data, .. } => outcome.received.extend_from_slice(&data),
                    ChannelMsg::Close => {
                        return match phase {
                            Phase::Closing => {
                                outcome.typing = Some(typing_since.elapsed());
                                Ok(())
                            }
                            _ => Err(format!("channel closed before the end ({} lines typed)", typed)),
                        };
                    }
                    ChannelMsg::Failure => return Err("the bastion refused the exec".into()),
                    _ => {}
                }
                if phase == Phase::Prompt && outcome.received.windows(PROMPT.len()).any(|w| w == PROMPT) {
                    phase = Phase::Waiting;
                    outcome.prompted = true;
                    ctx.prompted.fetch_add(1, Ordering::SeqCst);
                    *ctx.last_prompt.lock().unwrap_or_else(|e| e.into_inner()) = Some(Instant::now());
                    settle.now();
                }
            }
            _ = go.changed(), if phase == Phase::Waiting => {}
            () = tokio::time::sleep_until(next_send), if sending => {
                let line = if typed == 0 {
                    format!("echo {}\r", outcome.token)
                } else if typed == ctx.lines / 2 && ctx.stream_lines > 0 {
                    format!("log {}\r", ctx.stream_lines)
                } else if typed < ctx.lines {
                    format!("{}\r", command_line(&mut rng))
                } else {
                    "exit\r".to_string()
                };
                outcome.typed.push(line.trim_end_matches('\r').to_string());
                if typing.send(line.into_bytes()).is_err() {
                    // The typist ended on an error: say which.
                    let ended = match typist.take() {
                        Some(task) => task.await,
                        None => Ok(Err("typing: the writer task ended".into())),
                    };
                    return Err(match ended {
                        Ok(Err(e)) => e,
                        _ => "typing: the writer task ended".into(),
                    });
                }
                if typed == ctx.lines {
                    phase = Phase::Closing;
                    idle_until = tokio::time::Instant::now() + STUCK;
                } else {
                    typed += 1;
                    next_send = tokio::time::Instant::now() + Duration::from_millis(rng.range(20, 100));
                }
            }
            () = tokio::time::sleep_until(idle) => {
                return Err(match phase {
                    Phase::Prompt => format!("no prompt within {STUCK:?}"),
                    Phase::Closing => format!("no close within {STUCK:?} of exit"),
                    _ => format!("stuck: nothing received for {STUCK:?} after {typed} lines"),
                });
            }
        }
    }
}

// ------------------------------------------------------------ recordings --

/// The JSON lines `rampart ARGS --json` prints, run against the data dir.
async fn rampart_json(
    rampart: &Path,
    dir: &Path,
    args: &[&str],
) -> Result<Vec<serde_json::Value>, String> {
    let what = format!("rampart {}", args.join(" "));
    let out = tokio::process::Command::new(rampart)
        .args(args)
        .arg("--json")
        .current_dir(dir)
        .env_remove("RAMPART_CONFIG")
        .env_remove("RAMPART_MASTER_KEY")
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .output()
        .await
        .map_err(|e| format!("{what}: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "{what}: {}: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).map_err(|e| format!("{what}: line {l:?}: {e}")))
        .collect()
}

/// Session rows as `rampart session list --json` shows them.
async fn session_rows(
    rampart: &Path,
    dir: &Path,
    limit: usize,
) -> Result<Vec<serde_json::Value>, String> {
    let limit = limit.to_string();
    rampart_json(rampart, dir, &["session", "list", "--limit", &limit]).await
}

/// The text of every command row (`rampart audit commands --json`).
async fn audit_commands(rampart: &Path, dir: &Path) -> Result<Vec<String>, String> {
    let rows = rampart_json(rampart, dir, &["audit", "commands", "--limit", "100000000"]).await?;
    Ok(rows
        .iter()
        .map(|row| row["command"].as_str().unwrap_or_default().to_string())
        .collect())
}

/// The "o" events of a cast, concatenated; and whether it had other output
/// (sidecar markers) that a plain concatenation would miss.
fn cast_output(path: &Path) -> Result<(Vec<u8>, usize), String> {
    let reader = rampart::record::read(path).map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    let mut raw_markers = 0;
    let mut reader = reader;
    for event in reader.by_ref() {
        let event = event.map_err(|e| e.to_string())?;
        match event.kind {
            EventKind::Output => out.extend_from_slice(event.data.as_bytes()),
            EventKind::Marker if event.data.starts_with("raw: ") => raw_markers += 1,
            _ => {}
        }
    }
    if let Some(t) = reader.truncated() {
        return Err(format!("truncated at line {} ({} bytes)", t.line, t.bytes));
    }
    Ok((out, raw_markers))
}

/// Where two byte strings first differ, with some context of each.
fn first_difference(recorded: &[u8], received: &[u8]) -> String {
    let at = recorded
        .iter()
        .zip(received)
        .position(|(a, b)| a != b)
        .unwrap_or(recorded.len().min(received.len()));
    let from = at.saturating_sub(40);
    let show = |b: &[u8]| {
        let end = (at + 60).min(b.len());
        b.get(from..end)
            .unwrap_or_default()
            .escape_ascii()
            .to_string()
    };
    format!(
        "recording {} bytes, client {} bytes, first difference at byte {at}\n      \
         recording: ...{}...\n      client:    ...{}...",
        recorded.len(),
        received.len(),
        show(recorded),
        show(received)
    )
}

// ------------------------------------------------------------------- main --

struct Report {
    nodes: usize,
    sessions: usize,
    connections: usize,
    accept_rate: Option<f64>,
    accept_secs: Option<f64>,
    rss_before: u64,
    rss_all_open: Option<u64>,
    rss_peak: u64,
    hwm_end: Option<u64>,
    cpu_per_session_ms: Option<f64>,
    /// From the first connect until every session sits at its prompt.
    cpu_open_per_session_ms: Option<f64>,
    /// From then to the end, per line typed (and per `exit`).
    cpu_per_line_ms: Option<f64>,
    /// Median and slowest session, first line typed to close.
    typing: Option<(f64, f64)>,
    completed: usize,
    failed: usize,
    /// Bytes the completed sessions received, all told.
    received: usize,
    checked: usize,
    mismatched: usize,
    wall: Duration,
}

#[tokio::main(flavor = "multi_thread")]
async fn main() -> ExitCode {
    let opts = match options() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    match run(&opts).await {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("[load] error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn log(msg: impl AsRef<str>) {
    eprintln!(
        "[load {}] {}",
        jiff::Zoned::now().strftime("%H:%M:%S"),
        msg.as_ref()
    );
}

async fn run(opts: &Options) -> Result<bool, String> {
    let wall = Instant::now();
    let deadline = tokio::time::Instant::now() + opts.deadline;
    let n = opts.sessions;
    let connections = n.div_ceil(PER_CONNECTION);
    if !opts.rampart.is_file() {
        return Err(format!(
            "{} not found: build it first (cargo build --release) or pass --rampart PATH",
            opts.rampart.display()
        ));
    }
    let files = ensure_files(n, connections)?;
    let load_at_start = std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next().map(str::to_string))
        .unwrap_or_else(|| "?".into());

    let scratch = Scratch::new()?;
    let dir = scratch.path.clone();
    // Node 1 in the scratch dir, node 2 (if any) in `node2` under it.
    let node_dirs: Vec<PathBuf> = (0..opts.nodes)
        .map(|i| {
            if i == 0 {
                dir.clone()
            } else {
                dir.join(format!("node{}", i + 1))
            }
        })
        .collect();
    let mut ports = Vec::new();
    for (i, node_dir) in node_dirs.iter().enumerate() {
        let port = free_port()?;
        ports.push(port);
        // All sessions belong to one user: lift the per-person cap (128 by
        // default) with the connection cap, or the rest would be refused.
        let mut config = format!(
            "data_dir = \"data\"\n\
             [ssh]\nlisten = [\"127.0.0.1:{port}\"]\nmax_connections = {}\nmax_sessions_per_user = {}\n\
             shutdown_grace = \"10s\"\n\
             [log]\nlevel = \"info\"\nfile = \"rampart.log\"\n",
            n.max(1000),
            n.max(1000)
        );
        if let Some(url) = &opts.database {
            config.push_str(&format!(
                "[database]\nurl = \"{url}\"\n[cluster]\nnode = \"load-{}\"\n",
                i + 1
            ));
        }
        std::fs::create_dir_all(node_dir).map_err(|e| format!("{}: {e}", node_dir.display()))?;
        std::fs::write(node_dir.join("rampart.toml"), config)
            .map_err(|e| format!("config: {e}"))?;
    }
    let rampart = opts.rampart.as_path();
    cli(rampart, &dir, &["init"], None)?;
    let key_path = dir.join("load_key");
    keygen(&key_path, "load")?;
    let target_key_path = dir.join("target_host_key");
    keygen(&target_key_path, "load-target")?;
    cli(
        rampart,
        &dir,
        &[
            "user",
            "add",
            "load",
            "--key-file",
            &key_path.with_extension("pub").display().to_string(),
        ],
        None,
    )?;
    let target_key = russh::keys::load_secret_key(&target_key_path, None)
        .map_err(|e| format!("target host key: {e}"))?;
    let demo = DemoTarget::start(
        "127.0.0.1:0".parse().map_err(|e| format!("{e}"))?,
        "demo",
        Secret::new(TARGET_PASSWORD.to_string()),
        target_key,
    )
    .await
    .map_err(|e| format!("demo target: {e}"))?;
    cli(
        rampart,
        &dir,
        &[
            "asset",
            "add",
            "load",
            "--address",
            "127.0.0.1",
            "--protocol",
            &format!("ssh/{}", demo.addr.port()),
        ],
        None,
    )?;
    cli(
        rampart,
        &dir,
        &["account", "add", "load", "demo", "--password-stdin"],
        Some(&format!("{TARGET_PASSWORD}\n")),
    )?;
    cli(
        rampart,
        &dir,
        &["perm", "add", "load", "--user", "load", "--asset", "load"],
        None,
    )?;
    let key = Arc::new(
        russh::keys::load_secret_key(&key_path, None).map_err(|e| format!("client key: {e}"))?,
    );
    // The other node: the cluster's master key and host key, in a data dir
    // of its own.
    for node_dir in node_dirs.iter().skip(1) {
        share_keys(&dir.join("data"), &node_dir.join("data"))?;
    }

    let mut serves = Vec::new();
    for (node_dir, port) in node_dirs.iter().zip(&ports) {
        serves.push(Serve::start(rampart, node_dir, *port)?);
    }
    let pids: Vec<u32> = serves.iter().map(|s| s.pid).collect();
    let ticks = clock_ticks();
    log(format!(
        "rampart serve pid(s) {pids:?} on 127.0.0.1 port(s) {ports:?}, demo target {}, {n} sessions over \
         {connections} connections, {} lines each, open-file limit {files}, tmp {}",
        demo.addr,
        opts.lines,
        dir.display()
    ));
    // Let it settle (policy load, first allocations) before the baseline.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let rss_before = rss_kib(&pids).ok_or("cannot read the bastion's VmRSS")?;
    let cpu_before = cpu_sum(&pids, ticks);

    let (go_tx, go_rx) = watch::channel(false);
    let ctx = Arc::new(Ctx {
        addrs: ports.iter().map(|p| ([127, 0, 0, 1], *p).into()).collect(),
        key,
        lines: opts.lines,
        stream_lines: opts.stream_lines,
        deadline,
        connects: Semaphore::new(opts.in_flight),
        prompted: AtomicUsize::new(0),
        settled: AtomicUsize::new(0),
        settled_changed: Notify::new(),
        first_connect: Mutex::new(None),
        last_prompt: Mutex::new(None),
        go: go_rx,
    });

    // Memory, once a second, for as long as sessions run.
    let peak = Arc::new(AtomicU64::new(rss_before));
    let sampling = tokio_util::sync::CancellationToken::new();
    let sampler = {
        let peak = peak.clone();
        let stop = sampling.clone();
        let pids = pids.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            loop {
                tokio::select! {
                    _ = tick.tick() => {}
                    () = stop.cancelled() => return,
                }
                if let Some(kib) = rss_kib(&pids) {
                    peak.fetch_max(kib, Ordering::SeqCst);
                }
            }
        })
    };

    let mut rng = Rng::new(seed());
    let mut conns = tokio::task::JoinSet::new();
    for c in 0..connections {
        let first = c * PER_CONNECTION;
        let count = PER_CONNECTION.min(n - first);
        conns.spawn(connection(ctx.clone(), first, count, rng.next()));
    }

    // Everyone at the prompt (or failed on the way): then all type at once.
    let mut reported = 0;
    loop {
        let notified = ctx.settled_changed.notified();
        let settled = ctx.settled.load(Ordering::SeqCst);
        if settled >= n {
            break;
        }
        if settled >= reported + n.div_ceil(10) {
            reported = settled;
            // A session counts as prompted just before it counts as
            // settled: read after `settled`, `prompted` may be ahead of it.
            let prompted = ctx.prompted.load(Ordering::SeqCst);
            log(format!(
                "{prompted} of {n} sessions at the prompt, {} failed",
                settled.saturating_sub(prompted)
            ));
        }
        tokio::select! {
            () = notified => {}
            () = tokio::time::sleep(Duration::from_millis(500)) => {}
            () = tokio::time::sleep_until(deadline) => break,
        }
    }
    let prompted = ctx.prompted.load(Ordering::SeqCst);
    let first_connect = *ctx.first_connect.lock().unwrap_or_else(|e| e.into_inner());
    let last_prompt = *ctx.last_prompt.lock().unwrap_or_else(|e| e.into_inner());
    let accept_secs = match (first_connect, last_prompt) {
        (Some(a), Some(b)) if prompted == n => Some(b.duration_since(a).as_secs_f64()),
        _ => None,
    };
    let rss_all_open = rss_kib(&pids);
    let cpu_open = cpu_sum(&pids, ticks);
    if let Some(kib) = rss_all_open {
        peak.fetch_max(kib, Ordering::SeqCst);
    }
    log(format!(
        "{prompted} of {n} sessions at the prompt{}; typing {} lines each",
        accept_secs.map_or(String::new(), |s| format!(" after {s:.1} s")),
        opts.lines
    ));
    let _ = go_tx.send(true);

    let mut outcomes: Vec<Option<Outcome>> = (0..n).map(|_| None).collect();
    while let Some(r) = conns.join_next().await {
        match r {
            Ok(list) => {
                for (i, o) in list {
                    if let Some(slot) = outcomes.get_mut(i) {
                        *slot = Some(o);
                    }
                }
            }
            Err(e) => log(format!("a connection task failed: {e}")),
        }
    }
    sampling.cancel();
    let _ = sampler.await;
    if let Some(kib) = rss_kib(&pids) {
        peak.fetch_max(kib, Ordering::SeqCst);
    }
    let completed = outcomes
        .iter()
        .filter(|o| o.as_ref().is_some_and(|o| o.error.is_none()))
        .count();
    let failed = n - completed;
    log(format!(
        "sessions done: {completed} completed, {failed} failed"
    ));
    let mut errors: HashMap<String, usize> = HashMap::new();
    for o in outcomes.iter() {
        match o {
            Some(Outcome { error: Some(e), .. }) => *errors.entry(e.clone()).or_default() += 1,
            None => *errors.entry("session task lost".into()).or_default() += 1,
            _ => {}
        }
    }

    // The bastion finalises each session after its close: wait for the rows.
    let limit = 2 * n + 100;
    let finalise_by = tokio::time::Instant::now() + Duration::from_secs(120);
    let mut rows = Vec::new();
    loop {
        match session_rows(rampart, &dir, limit).await {
            Ok(r) => rows = r,
            Err(e) => log(e),
        }
        let live = rows.iter().filter(|r| r["status"] == "live").count();
        let closed = rows.iter().filter(|r| r["status"] == "closed").count();
        if live == 0 && closed >= prompted {
            break;
        }
        let now = tokio::time::Instant::now();
        if now >= finalise_by || now >= deadline {
            log(format!(
                "still {live} live and {closed} closed session rows of {prompted}: checking what is there"
            ));
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    // A row still live now was never finalised (no digest in the chain).
    let unfinalised = rows.iter().filter(|r| r["status"] == "live").count();
    let mut statuses: HashMap<String, usize> = HashMap::new();
    for r in &rows {
        let key = format!(
            "{} ({})",
            r["status"].as_str().unwrap_or("?"),
            r["reason"].as_str().unwrap_or("")
        );
        *statuses.entry(key).or_default() += 1;
    }

    // Every recording against its client, byte for byte.
    let tokens: HashMap<String, usize> = outcomes
        .iter()
        .enumerate()
        .filter_map(|(i, o)| o.as_ref().map(|o| (o.token.clone(), i)))
        .collect();
    let recordings: Vec<PathBuf> = node_dirs
        .iter()
        .map(|d| d.join("data").join("recordings"))
        .collect();
    let mut cast_of: HashMap<usize, PathBuf> = HashMap::new();
    let mut unreadable = Vec::new();
    let mut raw_markers = 0usize;
    let mut casts: HashMap<usize, Vec<u8>> = HashMap::new();
    for row in &rows {
        let Some(rel) = row["recording"].as_str() else {
            continue;
        };
        // On the node that ran it.
        let path = recordings
            .iter()
            .map(|r| r.join(rel))
            .find(|p| p.is_file())
            .unwrap_or_else(|| recordings[0].join(rel));
        match cast_output(&path) {
            Ok((bytes, raw)) => {
                raw_markers += raw;
                if let Some((_, idx)) = find_token(&bytes, &tokens) {
                    cast_of.insert(idx, path);
                    casts.insert(idx, bytes);
                }
            }
            Err(e) => unreadable.push(format!("{}: {e}", path.display())),
        }
    }
    let mut checked = 0;
    let mut mismatched = 0;
    let mut first_mismatch: Option<String> = None;
    for (idx, o) in outcomes.iter().enumerate() {
        let Some(o) = o else { continue };
        if o.error.is_some() {
            continue;
        }
        checked += 1;
        let problem = match casts.get(&idx) {
            None => Some("no recording names its token".to_string()),
            Some(recorded) if recorded[..] != o.received[..] => {
                Some(first_difference(recorded, &o.received))
            }
            Some(_) => None,
        };
        if let Some(p) = problem {
            mismatched += 1;
            if first_mismatch.is_none() {
                first_mismatch = Some(format!(
                    "session {idx} (token {}, {}):\n      {p}",
                    o.token,
                    cast_of
                        .get(&idx)
                        .map_or("no cast".into(), |p| p.display().to_string())
                ));
            }
        }
    }

    // The command audit: each line typed should be one row with its text.
    let mut expected: HashMap<String, usize> = HashMap::new();
    for o in outcomes.iter().flatten().filter(|o| o.error.is_none()) {
        for line in &o.typed {
            *expected.entry(line.trim().to_string()).or_default() += 1;
        }
    }
    let typed_total: usize = expected.values().sum();
    let audited = match audit_commands(rampart, &dir).await {
        Ok(commands) => {
            let total = commands.len();
            let mut exact = 0;
            let mut wrong = Vec::new();
            for c in commands {
                match expected.get_mut(&c) {
                    Some(left) if *left > 0 => {
                        *left -= 1;
                        exact += 1;
                    }
                    _ => wrong.push(c),
                }
            }
            Some((total, exact, wrong))
        }
        Err(e) => {
            log(e);
            None
        }
    };

    let hwm_end = hwm_kib(&pids);
    let cpu_after = cpu_sum(&pids, ticks);
    let serve_alive = serves.iter_mut().all(Serve::running);
    let report = Report {
        nodes: opts.nodes,
        sessions: n,
        connections,
        accept_rate: accept_secs.map(|s| n as f64 / s.max(1e-9)),
        accept_secs,
        rss_before,
        rss_all_open,
        rss_peak: peak.load(Ordering::SeqCst),
        hwm_end,
        cpu_per_session_ms: match (cpu_before, cpu_after) {
            (Some(a), Some(b)) => Some((b - a) * 1000.0 / n as f64),
            _ => None,
        },
        cpu_open_per_session_ms: match (cpu_before, cpu_open) {
            (Some(a), Some(b)) => Some((b - a) * 1000.0 / n as f64),
            _ => None,
        },
        // Each session sends its lines and `exit`; the span also holds the
        // session ends (row, recording, audit flush).
        cpu_per_line_ms: match (cpu_open, cpu_after) {
            (Some(a), Some(b)) => Some((b - a) * 1000.0 / (n * (opts.lines + 1)) as f64),
            _ => None,
        },
        typing: {
            let mut t: Vec<f64> = outcomes
                .iter()
                .filter_map(|o| o.as_ref()?.typing.map(|d| d.as_secs_f64()))
                .collect();
            t.sort_by(f64::total_cmp);
            t.get(t.len() / 2).zip(t.last()).map(|(m, x)| (*m, *x))
        },
        completed,
        failed,
        received: outcomes
            .iter()
            .flatten()
            .filter(|o| o.error.is_none())
            .map(|o| o.received.len())
            .sum(),
        checked,
        mismatched,
        wall: wall.elapsed(),
    };
    let stopped: Vec<String> = serves.iter_mut().map(Serve::stop).collect();
    demo.stop();

    print_table(&report, opts, &load_at_start);
    println!("bastion: {}", stopped.join("; "));
    if !serve_alive {
        println!("bastion: had exited before the end of the run");
    }
    let mut statuses: Vec<_> = statuses.into_iter().collect();
    statuses.sort();
    println!(
        "session rows: {}",
        statuses
            .iter()
            .map(|(k, v)| format!("{v} {k}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    if let Some((total, exact, wrong)) = &audited {
        println!(
            "command audit: {typed_total} lines typed in completed sessions, {total} rows, \
             {exact} with exactly a typed line, {} other{}",
            wrong.len(),
            if wrong.is_empty() {
                String::new()
            } else {
                format!(
                    " (e.g. {})",
                    wrong
                        .iter()
                        .take(5)
                        .map(|c| format!("{c:?}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            }
        );
    }
    if raw_markers > 0 {
        println!(
            "note: {raw_markers} sidecar (raw) markers in the casts: output not in \"o\" events"
        );
    }
    if !errors.is_empty() {
        let mut errors: Vec<_> = errors.into_iter().collect();
        errors.sort_by_key(|e| std::cmp::Reverse(e.1));
        println!("session failures:");
        for (e, count) in errors.iter().take(10) {
            println!("  {count} x {e}");
        }
    }
    for u in unreadable.iter().take(5) {
        println!("unreadable recording: {u}");
    }
    if let Some(m) = &first_mismatch {
        println!("first mismatch: {m}");
    }
    let mut log_text = String::new();
    for node_dir in &node_dirs {
        let text = std::fs::read_to_string(node_dir.join("rampart.log")).unwrap_or_default();
        let count = |needle: &str| text.lines().filter(|l| l.contains(needle)).count();
        println!(
            "bastion log: {} lines, {} ERROR, {} WARN ({})",
            text.lines().count(),
            count("ERROR"),
            count("WARN"),
            node_dir.join("rampart.log").display()
        );
        log_text.push_str(&text);
    }
    if unfinalised > 0 {
        println!("session rows never finalised (still live after the wait): {unfinalised}");
    }
    let ok =
        failed == 0 && mismatched == 0 && unreadable.is_empty() && unfinalised == 0 && serve_alive;
    if !ok {
        for line in log_text
            .lines()
            .filter(|l| l.contains("ERROR") || l.contains("WARN"))
            .take(20)
        {
            println!("    {line}");
        }
        let stderr = std::fs::read_to_string(node_dirs[0].join("serve.stderr")).unwrap_or_default();
        if !stderr.trim().is_empty() {
            println!("bastion stderr (last lines):");
            for line in stderr
                .lines()
                .rev()
                .take(20)
                .collect::<Vec<_>>()
                .iter()
                .rev()
            {
                println!("    {line}");
            }
        }
    }
    drop(scratch);
    Ok(ok)
}

fn print_table(r: &Report, opts: &Options, load_at_start: &str) {
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let per_session = r.rss_peak.saturating_sub(r.rss_before) / r.sessions as u64;
    let per_idle = r
        .rss_all_open
        .map(|open| open.saturating_sub(r.rss_before) / r.sessions as u64);
    let opt = |v: Option<String>| v.unwrap_or_else(|| "n/a".into());
    println!();
    println!(
        "rampart load  ({}, {cores} cores, load at start {load_at_start})",
        jiff::Timestamp::now().strftime("%Y-%m-%dT%H:%MZ")
    );
    if r.nodes > 1 {
        println!(
            "{} nodes sharing one PostgreSQL database, connections spread over them; memory and \
             CPU are the nodes' summed",
            r.nodes
        );
    }
    println!(
        "{} sessions over {} connections, pty 80x24, exec \"load\" (demo target in the generator), \
         {} lines each paced 20-100 ms (echo, echo -e in colour, cat, log N, seq N; one log {}), \
         recording on",
        r.sessions, r.connections, opts.lines, opts.stream_lines
    );
    println!();
    let row = |name: &str, value: String| println!("{name:<40} {value:>12}");
    row("sessions (N)", r.sessions.to_string());
    row("connections", r.connections.to_string());
    row(
        "sessions/s accepted",
        opt(r.accept_rate.map(|v| format!("{v:.1}"))),
    );
    row(
        "  first connect to N-th prompt (s)",
        opt(r.accept_secs.map(|v| format!("{v:.2}"))),
    );
    row("bastion RSS before (KiB)", r.rss_before.to_string());
    row(
        "bastion RSS all open (KiB)",
        opt(r.rss_all_open.map(|v| v.to_string())),
    );
    row("bastion RSS peak (KiB)", r.rss_peak.to_string());
    row(
        "bastion RSS per session (KiB)",
        format!(
            "{per_session}{}",
            if per_session < AIM_KIB_PER_SESSION {
                ""
            } else {
                " (over 2 MiB)"
            }
        ),
    );
    row(
        "  idle: all at the prompt (KiB)",
        opt(per_idle.map(|v| v.to_string())),
    );
    row(
        "bastion VmHWM at end (KiB)",
        opt(r.hwm_end.map(|v| v.to_string())),
    );
    row(
        "bastion CPU per session (ms)",
        opt(r.cpu_per_session_ms.map(|v| format!("{v:.1}"))),
    );
    row(
        "  connect to prompt, per session (ms)",
        opt(r.cpu_open_per_session_ms.map(|v| format!("{v:.1}"))),
    );
    row(
        "  typing to close, per line (ms)",
        opt(r.cpu_per_line_ms.map(|v| format!("{v:.2}"))),
    );
    row(
        "typing to close, median / max (s)",
        opt(r.typing.map(|(m, x)| format!("{m:.1} / {x:.1}"))),
    );
    println!(
        "{:<40} {:>12}",
        "  (paced alone it would take, s)",
        format!("~{:.1}", opts.lines as f64 * 0.06)
    );
    row(
        "output received, completed sessions (MB)",
        format!("{:.1}", r.received as f64 / 1e6),
    );
    row(
        "sessions completed / failed",
        format!("{} / {}", r.completed, r.failed),
    );
    row(
        "recordings checked / mismatched",
        format!("{} / {}", r.checked, r.mismatched),
    );
    row("wall time (s)", format!("{:.1}", r.wall.as_secs_f64()));
    println!();
}
