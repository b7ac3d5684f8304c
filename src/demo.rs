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

const HELP: &str = "commands: help, echo TEXT, date, whoami, hostname, uname [-a], pwd, ls, cat FILE,\n\
seq N, bytes N (N zero bytes, like head -c N /dev/zero), sleep SECONDS, fullscreen (press q to leave),\n\
read-secret (asks for a secret without echo), exit [STATUS]\n";

const FILES: &[(&str, &str)] = &[
    (
        "README",
        "This is the rampart demo target. Everything you type here is recorded.\n",
    ),
    ("motd", "Have a nice day.\n"),
];

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
