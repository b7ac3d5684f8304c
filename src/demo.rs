//! The demo target started by `rampart serve --demo`: a small SSH server on
//! loopback with a built-in shell, so a newcomer reaches a real target
//! through the bastion within a minute of cloning, and tests have a target
//! whose behaviour they know byte for byte.
//!
//! The shell is deliberately tiny and self-contained (no PTY, no processes):
//! it echoes what is typed, edits the line (Backspace, Ctrl-U, Ctrl-C), and
//! knows a few commands (`help` lists them). It is not a sandbox for real
//! work and must never listen on anything but loopback.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use russh::keys::PrivateKey;
use russh::server::{Auth, ChannelOpenHandle, Msg, Session};
use russh::{Channel, ChannelMsg, MethodKind, MethodSet};
use tokio::net::TcpListener;

use crate::vault::Secret;

/// What the demo target accepts and what it has seen (tests read the log).
#[derive(Clone)]
pub struct DemoTarget {
    pub addr: SocketAddr,
    pub username: String,
    /// Every line the shell executed and every exec command, in order.
    pub executed: Arc<Mutex<Vec<String>>>,
    stop: tokio_util::sync::CancellationToken,
}

impl DemoTarget {
    /// Starts the target on `127.0.0.1:0` (or `bind`), accepting `username`
    /// with `password`, presenting `host_key`.
    pub async fn start(
        bind: SocketAddr,
        username: &str,
        password: Secret<String>,
        host_key: PrivateKey,
    ) -> std::io::Result<DemoTarget> {
        let listener = TcpListener::bind(bind).await?;
        let addr = listener.local_addr()?;
        let executed = Arc::new(Mutex::new(Vec::new()));
        let stop = tokio_util::sync::CancellationToken::new();
        let config = Arc::new(russh::server::Config {
            methods: MethodSet::from(&[MethodKind::Password][..]),
            keys: vec![host_key],
            auth_rejection_time: std::time::Duration::from_millis(100),
            auth_rejection_time_initial: Some(std::time::Duration::ZERO),
            inactivity_timeout: None,
            nodelay: true,
            ..Default::default()
        });
        let target = DemoTarget {
            addr,
            username: username.to_string(),
            executed: executed.clone(),
            stop: stop.clone(),
        };
        let password = Arc::new(password);
        let username = username.to_string();
        tokio::spawn(async move {
            loop {
                let (stream, _) = tokio::select! {
                    r = listener.accept() => match r { Ok(x) => x, Err(_) => continue },
                    () = stop.cancelled() => return,
                };
                let handler = DemoHandler {
                    username: username.clone(),
                    password: password.clone(),
                    executed: executed.clone(),
                    authed: false,
                };
                let config = config.clone();
                let stop = stop.clone();
                tokio::spawn(async move {
                    if let Ok(session) = russh::server::run_stream(config, stream, handler).await {
                        let handle = session.handle();
                        tokio::select! {
                            _ = session => {}
                            () = stop.cancelled() => {
                                // The session runs in its own task: end it, as a
                                // target that goes away would.
                                let _ = handle
                                    .disconnect(russh::Disconnect::ByApplication, "demo target stopped".into(), "en".into())
                                    .await;
                            }
                        }
                    }
                });
            }
        });
        Ok(target)
    }

    pub fn stop(&self) {
        self.stop.cancel();
    }

    pub fn executed(&self) -> Vec<String> {
        self.executed.lock().map(|v| v.clone()).unwrap_or_default()
    }
}

struct DemoHandler {
    username: String,
    password: Arc<Secret<String>>,
    executed: Arc<Mutex<Vec<String>>>,
    authed: bool,
}

impl russh::server::Handler for DemoHandler {
    type Error = russh::Error;

    async fn auth_password(&mut self, user: &str, password: &str) -> Result<Auth, Self::Error> {
        if user == self.username && password == self.password.expose() {
            self.authed = true;
            Ok(Auth::Accept)
        } else {
            Ok(Auth::reject())
        }
    }

    async fn channel_open_session(
        &mut self,
        channel: Channel<Msg>,
        reply: ChannelOpenHandle,
        _session: &mut Session,
    ) -> Result<(), Self::Error> {
        if !self.authed {
            return Ok(());
        }
        reply.accept().await;
        let executed = self.executed.clone();
        let user = self.username.clone();
        tokio::spawn(drive(channel, user, executed));
        Ok(())
    }
}

/// Drives one session channel: requests, then the shell or the command.
async fn drive(channel: Channel<Msg>, user: String, executed: Arc<Mutex<Vec<String>>>) {
    let (mut read, write) = channel.split();
    let mut pty = false;
    let mut env: HashMap<String, String> = HashMap::new();
    while let Some(msg) = read.wait().await {
        match msg {
            ChannelMsg::RequestPty { .. } => {
                pty = true;
            }
            ChannelMsg::SetEnv {
                variable_name,
                variable_value,
                ..
            } => {
                env.insert(variable_name, variable_value);
            }
            ChannelMsg::RequestShell { .. } => {
                let status = shell(&mut read, &write, &user, pty, &executed).await;
                let _ = write.exit_status(status).await;
                let _ = write.eof().await;
                let _ = write.close().await;
                return;
            }
            ChannelMsg::Exec { command, .. } => {
                let command = String::from_utf8_lossy(&command).into_owned();
                record(&executed, &command);
                let mut out = Out {
                    write: &write,
                    crlf: pty,
                };
                let ran = run(&command, &user, &mut out).await;
                let _ = write.exit_status(ran.status).await;
                let _ = write.eof().await;
                let _ = write.close().await;
                return;
            }
            ChannelMsg::Eof | ChannelMsg::Close => return,
            _ => {}
        }
    }
}

fn record(executed: &Mutex<Vec<String>>, line: &str) {
    if let Ok(mut v) = executed.lock() {
        v.push(line.to_string());
    }
}

struct Out<'a> {
    write: &'a russh::ChannelWriteHalf<Msg>,
    crlf: bool,
}

impl Out<'_> {
    async fn text(&mut self, s: &str) {
        let s = if self.crlf {
            s.replace('\n', "\r\n")
        } else {
            s.to_string()
        };
        let _ = self.write.data_bytes(Bytes::from(s)).await;
    }

    async fn raw(&mut self, b: Bytes) {
        let _ = self.write.data_bytes(b).await;
    }
}

const HELP: &str = "commands: help, echo [-e] TEXT (-e: \\e, \\n, \\t, \\\\ escapes), date, whoami, hostname,\n\
uname [-a], pwd, ls, cat FILE, seq N, log N (N syslog-like lines in colour), bytes N (N zero bytes,\n\
like head -c N /dev/zero), sleep SECONDS, fullscreen (press q to leave), read-secret (asks for a\n\
secret without echo), exit [STATUS]\n";

const FILES: &[(&str, &str)] = &[
    (
        "README",
        "This is the rampart demo target. Everything you type here is recorded.\n",
    ),
    ("motd", "Have a nice day.\n"),
    ("services", SERVICES),
];

/// A text file of some length, for `cat`.
const SERVICES: &str = "\
# Network services, Internet style (an excerpt)
tcpmux          1/tcp                           # TCP port service multiplexer
echo            7/tcp
discard         9/tcp           sink null
daytime         13/tcp
ftp-data        20/tcp
ftp             21/tcp
ssh             22/tcp                          # SSH Remote Login Protocol
telnet          23/tcp
smtp            25/tcp          mail
domain          53/tcp                          # Domain Name Server
http            80/tcp          www             # WorldWideWeb HTTP
kerberos        88/tcp          kerberos5 krb5 kerberos-sec     # Kerberos v5
pop3            110/tcp         pop-3           # POP version 3
sunrpc          111/tcp         portmapper      # RPC 4.0 portmapper
ntp             123/udp                         # Network Time Protocol
imap2           143/tcp         imap2 imap      # Interim Mail Access P 2 and 4
snmp            161/udp                         # Simple Net Mgmt Protocol
ldap            389/tcp                         # Lightweight Directory Access Protocol
https           443/tcp                         # http protocol over TLS/SSL
submissions     465/tcp         ssmtp smtps urd # Submission over TLS [RFC8314]
syslog          514/udp
ldaps           636/tcp                         # LDAP over SSL
rsync           873/tcp
imaps           993/tcp                         # IMAP over SSL
pop3s           995/tcp                         # POP-3 over SSL
ms-sql-s        1433/tcp                        # Microsoft SQL Server
openvpn         1194/tcp
mysql           3306/tcp
rdp             3389/tcp        ms-wbt-server   # Remote Desktop Protocol
postgresql      5432/tcp        postgres        # PostgreSQL Database
redis           6379/tcp
kubernetes      6443/tcp                        # Kubernetes API server
http-alt        8080/tcp        webcache        # WWW caching service
";

/// xorshift64*: varied text for `log`, the same for the same seed.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) % n.max(1)
    }

    fn pick<'a>(&mut self, of: &[&'a str]) -> &'a str {
        of.get(self.below(of.len() as u64) as usize)
            .copied()
            .unwrap_or_default()
    }
}

/// One syslog-like line in ANSI colours (a dim timestamp, a bold host,
/// `program[pid]:`, a coloured level, a message with users, addresses and
/// paths), as `journalctl` or `tail -f` of a colourised log shows it: the
/// kind of output people stream through a bastion. Line `i` of a run.
fn log_line(i: u64, rng: &mut Rng) -> String {
    const LEVELS: &[&str] = &[
        "\x1b[32mINFO  ",
        "\x1b[32mINFO  ",
        "\x1b[36mDEBUG ",
        "\x1b[33mWARN  ",
        "\x1b[31mERROR ",
        "\x1b[34mNOTICE",
    ];
    const HOSTS: &[&str] = &[
        "web-01",
        "web-02",
        "db-01",
        "cache-03",
        "api-07",
        "worker-12",
    ];
    const PROGRAMS: &[&str] = &[
        "sshd", "nginx", "postgres", "kernel", "systemd", "cron", "sudo",
    ];
    const USERS: &[&str] = &["alice", "bob", "carol", "deploy", "postgres", "root"];
    const PATHS: &[&str] = &[
        "/var/log/nginx/access.log",
        "/etc/ssl/private/server.key",
        "/srv/app/releases/current/config.yml",
        "/var/lib/postgresql/15/main/pg_wal",
        "/home/deploy/.ssh/authorized_keys",
    ];
    let secs = i / 50;
    let stamp = format!(
        "2025-12-05T{:02}:{:02}:{:02}.{:06}Z",
        secs / 3600 % 24,
        secs / 60 % 60,
        secs % 60,
        rng.below(1_000_000)
    );
    let ip = format!(
        "10.{}.{}.{}",
        rng.below(256),
        rng.below(256),
        1 + rng.below(254)
    );
    let user = rng.pick(USERS);
    let message = match rng.below(6) {
        0 => format!(
            "Accepted publickey for {user} from {ip} port {} ssh2",
            1024 + rng.below(64_000)
        ),
        1 => format!(
            "{ip} - {user} \"GET /api/v1/items/{} HTTP/1.1\" {} {}",
            rng.below(100_000),
            rng.pick(&["200", "200", "304", "404", "500"]),
            rng.below(1_000_000)
        ),
        2 => format!(
            "duration: {}.{:03} ms  statement: SELECT * FROM events WHERE id = {}",
            rng.below(900),
            rng.below(1000),
            rng.below(1_000_000)
        ),
        3 => format!(
            "{user} : TTY=pts/{} ; PWD=/home/{user} ; USER=root ; COMMAND=/usr/bin/cat {}",
            rng.below(20),
            rng.pick(PATHS)
        ),
        4 => format!(
            "upstream timed out while reading {} from {ip}:{} ({} bytes)",
            rng.pick(PATHS),
            1024 + rng.below(64_000),
            rng.below(10_000_000)
        ),
        _ => {
            // Now and then a long line, as JSON payloads and stack traces make.
            let items: Vec<String> = (0..2 + rng.below(30))
                .map(|_| {
                    format!(
                        "{{\"sku\":\"{:08x}\",\"qty\":{}}}",
                        rng.below(u64::MAX),
                        rng.below(99)
                    )
                })
                .collect();
            format!(
                "request body {{\"user\":\"{user}\",\"items\":[{}]}}",
                items.join(",")
            )
        }
    };
    format!(
        "\x1b[2m{stamp}\x1b[0m \x1b[1m{}\x1b[0m {}[{}]: {}\x1b[0m {message}\n",
        rng.pick(HOSTS),
        rng.pick(PROGRAMS),
        300 + rng.below(99_000),
        rng.pick(LEVELS)
    )
}

/// `log N`: N lines, the same for the same N.
fn log_lines(n: u64) -> impl Iterator<Item = String> {
    let mut rng = Rng(n.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
    (0..n).map(move |i| log_line(i, &mut rng))
}

/// `echo -e`: `\\e` and `\\033` (ESC), `\\n`, `\\t` and `\\\\`; any other
/// backslash stays as typed.
fn unescape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        let with = match chars.peek() {
            Some('e') => '\x1b',
            Some('n') => '\n',
            Some('t') => '\t',
            Some('\\') => '\\',
            Some('0') => {
                let mut ahead = chars.clone();
                ahead.next();
                if ahead.next() == Some('3') && ahead.next() == Some('3') {
                    chars = ahead;
                    out.push('\x1b');
                } else {
                    out.push('\\');
                }
                continue;
            }
            _ => {
                out.push('\\');
                continue;
            }
        };
        chars.next();
        out.push(with);
    }
    out
}

/// How a command ended: its status, and whether the shell should exit.
struct Ran {
    status: u32,
    exit: bool,
}

const OK: Ran = Ran {
    status: 0,
    exit: false,
};

/// Runs one command line.
async fn run(line: &str, user: &str, out: &mut Out<'_>) -> Ran {
    let mut words = line.split_whitespace();
    let Some(cmd) = words.next() else {
        return OK;
    };
    let rest: Vec<&str> = words.collect();
    match cmd {
        "help" => out.text(HELP).await,
        "echo" if rest.first() == Some(&"-e") => {
            let text = rest.get(1..).unwrap_or_default().join(" ");
            out.text(&format!("{}\n", unescape(&text))).await
        }
        "echo" => out.text(&format!("{}\n", rest.join(" "))).await,
        "date" => {
            out.text(&format!(
                "{}\n",
                jiff::Timestamp::now().strftime("%a %b %e %H:%M:%S UTC %Y")
            ))
            .await
        }
        "whoami" => out.text(&format!("{user}\n")).await,
        "hostname" => out.text("demo\n").await,
        "uname" if rest.first() == Some(&"-a") => {
            out.text("Linux demo 6.1.0-rampart #1 SMP x86_64 GNU/Linux\n")
                .await
        }
        "uname" => out.text("Linux\n").await,
        "pwd" => out.text(&format!("/home/{user}\n")).await,
        "ls" => {
            let names: Vec<&str> = FILES.iter().map(|(n, _)| *n).collect();
            out.text(&format!("{}\n", names.join("  "))).await
        }
        "cat" => {
            for name in &rest {
                match FILES.iter().find(|(n, _)| n == name) {
                    Some((_, text)) => out.text(text).await,
                    None => {
                        out.text(&format!("cat: {name}: No such file or directory\n"))
                            .await;
                        return Ran {
                            status: 1,
                            exit: false,
                        };
                    }
                }
            }
        }
        "seq" => {
            let n: u64 = rest
                .first()
                .and_then(|n| n.parse().ok())
                .unwrap_or(10)
                .min(1_000_000);
            let mut text = String::new();
            for i in 1..=n {
                text.push_str(&format!("{i}\n"));
                if text.len() > 16 * 1024 {
                    out.text(&text).await;
                    text.clear();
                }
            }
            out.text(&text).await;
        }
        "log" => {
            let n: u64 = rest
                .first()
                .and_then(|n| n.parse().ok())
                .unwrap_or(10)
                .min(1_000_000);
            let mut text = String::new();
            for line in log_lines(n) {
                text.push_str(&line);
                if text.len() > 16 * 1024 {
                    out.text(&text).await;
                    text.clear();
                }
            }
            out.text(&text).await;
        }
        "bytes" => {
            let mut left: u64 = rest.first().and_then(|n| n.parse().ok()).unwrap_or(0);
            let chunk = Bytes::from(vec![0u8; 32 * 1024]);
            while left > 0 {
                let n = left.min(chunk.len() as u64) as usize;
                out.raw(chunk.slice(..n)).await;
                left -= n as u64;
            }
        }
        "sleep" => {
            let secs: f64 = rest.first().and_then(|n| n.parse().ok()).unwrap_or(1.0);
            tokio::time::sleep(std::time::Duration::from_secs_f64(secs.clamp(0.0, 30.0))).await;
        }
        "exit" => {
            return Ran {
                status: rest.first().and_then(|n| n.parse().ok()).unwrap_or(0),
                exit: true,
            };
        }
        other => {
            out.text(&format!("{other}: command not found\n")).await;
            return Ran {
                status: 127,
                exit: false,
            };
        }
    }
    OK
}

const PROMPT: &str = "demo@demo:~$ ";

/// The interactive shell: echo, line editing, commands, until `exit`,
/// Ctrl-D on an empty line, or the channel closing.
async fn shell(
    read: &mut russh::ChannelReadHalf,
    write: &russh::ChannelWriteHalf<Msg>,
    user: &str,
    pty: bool,
    executed: &Mutex<Vec<String>>,
) -> u32 {
    let mut out = Out { write, crlf: pty };
    out.text("Welcome to the rampart demo target. Type 'help' for the commands.\n")
        .await;
    out.raw(Bytes::from_static(PROMPT.as_bytes())).await;
    let mut line = String::new();
    let mut pending: Vec<u8> = Vec::new();
    let mut escape = 0u8;
    // A program with its own screen (the alternate screen), or a prompt that
    // does not echo.
    let mut fullscreen = false;
    let mut secret: Option<String> = None;
    while let Some(msg) = read.wait().await {
        let data = match msg {
            ChannelMsg::Data { data } => data,
            ChannelMsg::Eof | ChannelMsg::Close => return 0,
            _ => continue,
        };
        pending.extend_from_slice(&data);
        let text = match std::str::from_utf8(&pending) {
            Ok(t) => t.to_string(),
            Err(e) if e.error_len().is_none() => {
                // An incomplete UTF-8 sequence: keep it for the next read.
                let valid = e.valid_up_to();
                let t = String::from_utf8_lossy(&pending[..valid]).into_owned();
                pending.drain(..valid);
                if t.is_empty() {
                    continue;
                }
                t
            }
            Err(_) => String::from_utf8_lossy(&pending).into_owned(),
        };
        if std::str::from_utf8(&pending).is_ok() {
            pending.clear();
        }
        for c in text.chars() {
            if fullscreen {
                if c == 'q' {
                    fullscreen = false;
                    out.raw(Bytes::from_static(b"\x1b[?1049l")).await;
                    out.raw(Bytes::from_static(PROMPT.as_bytes())).await;
                }
                continue;
            }
            if escape > 0 {
                // Skip the rest of an escape sequence (arrow keys and the like).
                escape = if escape == 1 && c == '[' {
                    2
                } else if c.is_ascii_alphabetic() || c == '~' {
                    0
                } else {
                    escape
                };
                continue;
            }
            match c {
                '\x1b' => escape = 1,
                '\r' | '\n' => {
                    out.text("\n").await;
                    if let Some(mut s) = secret.take() {
                        out.text(&format!(
                            "secret of {} characters accepted\n",
                            s.chars().count()
                        ))
                        .await;
                        zeroize::Zeroize::zeroize(&mut s);
                        out.raw(Bytes::from_static(PROMPT.as_bytes())).await;
                        continue;
                    }
                    let cmd = std::mem::take(&mut line);
                    let trimmed = cmd.trim();
                    if !trimmed.is_empty() {
                        record(executed, trimmed);
                    }
                    match trimmed {
                        "fullscreen" => {
                            fullscreen = true;
                            out.raw(Bytes::from_static(
                                b"\x1b[?1049h\x1b[H\x1b[2JFULLSCREEN demo: press q to leave",
                            ))
                            .await;
                            continue;
                        }
                        "read-secret" => {
                            secret = Some(String::new());
                            out.text("Secret: ").await;
                            continue;
                        }
                        _ => {}
                    }
                    let ran = run(trimmed, user, &mut out).await;
                    if ran.exit {
                        return ran.status;
                    }
                    out.raw(Bytes::from_static(PROMPT.as_bytes())).await;
                }
                '\x03' => {
                    line.clear();
                    secret = None;
                    out.text("^C\n").await;
                    out.raw(Bytes::from_static(PROMPT.as_bytes())).await;
                }
                '\x04' if line.is_empty() => {
                    out.text("logout\n").await;
                    return 0;
                }
                '\x15' => {
                    let n = line.chars().count();
                    line.clear();
                    out.text(&"\x08 \x08".repeat(n)).await;
                }
                '\x7f' | '\x08' => {
                    if let Some(s) = secret.as_mut() {
                        s.pop();
                    } else if line.pop().is_some() {
                        out.raw(Bytes::from_static(b"\x08 \x08")).await;
                    }
                }
                c if c.is_control() => {}
                c => {
                    if let Some(s) = secret.as_mut() {
                        s.push(c);
                    } else {
                        line.push(c);
                        let mut buf = [0u8; 4];
                        out.raw(Bytes::copy_from_slice(c.encode_utf8(&mut buf).as_bytes()))
                            .await;
                    }
                }
            }
        }
    }
    0
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `log N`'s lines, as the shell prints them (before a pty's CR LF).
    fn log(n: u64) -> Vec<String> {
        log_lines(n).collect()
    }

    #[test]
    fn log_lines_are_varied_coloured_syslog_text() {
        let lines = log(2000);
        let distinct: std::collections::HashSet<&String> = lines.iter().collect();
        assert_eq!(distinct.len(), lines.len(), "no line repeats");
        for line in &lines {
            assert!(
                line.ends_with('\n') && line.matches('\n').count() == 1,
                "{line:?}"
            );
            assert!(line.starts_with("\x1b[2m2025-12-05T"), "{line:?}");
            assert!(
                line.contains("]: \x1b["),
                "a coloured level after program[pid]: {line:?}"
            );
        }
        let long = lines.iter().filter(|l| l.len() > 300).count();
        assert!(long > 0 && long < lines.len() / 5, "{long} long lines");
        let levels = ["INFO", "WARN", "ERROR", "DEBUG", "NOTICE"];
        assert!(levels.iter().all(|l| lines.iter().any(|x| x.contains(l))));
        // The same N gives the same text: a recording can be checked against it.
        assert_eq!(log(2000), lines);
    }

    #[test]
    fn echo_e_turns_escapes_into_bytes() {
        assert_eq!(unescape(r"\e[31mred\e[0m"), "\x1b[31mred\x1b[0m");
        assert_eq!(
            unescape(r"\033[1mbold\033[0m a\tb\nc \\"),
            "\x1b[1mbold\x1b[0m a\tb\nc \\"
        );
        assert_eq!(unescape(r"\x \0 \03 trailing\"), r"\x \0 \03 trailing\");
        assert_eq!(unescape("plain"), "plain");
    }
}
