//! An in-process bastion on an ephemeral loopback port, with the demo
//! target registered, and a russh client that sees what a person sees
//! (bytes through a vt100 parser).

#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use rampart::config::Config;
use rampart::demo::DemoTarget;
use rampart::services::Services;
use rampart::ssh::{Server, Shared};
use rampart::vault::Secret;
use russh::client;
use russh::keys::{PrivateKey, PublicKeyOrCertificate};
use russh::{ChannelMsg, Disconnect};
use tokio::sync::oneshot;

pub const ADMIN_PASSWORD: &str = "admin-password-for-tests-1";

/// A running bastion and what tests need to reach into it.
pub struct TestBastion {
    pub addr: SocketAddr,
    pub dir: tempfile::TempDir,
    pub services: Services,
    pub shared: Arc<Shared>,
    pub demo: DemoTarget,
    stop: Option<oneshot::Sender<()>>,
    done: Option<tokio::task::JoinHandle<()>>,
}

impl TestBastion {
    /// Initialises a data dir with `extra` config, sets the admin password,
    /// starts the demo target and the server.
    pub async fn start_with(extra: &str) -> TestBastion {
        let dir = tempfile::tempdir().expect("temp dir");
        let text = format!(
            "data_dir = \"{}\"\n[ssh]\nlisten = [\"127.0.0.1:0\"]\nshutdown_grace = \"2s\"\n{}",
            dir.path().join("data").display(),
            super::database_config(extra)
        );
        let config = Config::from_toml_str(&text, dir.path().join("rampart.toml")).expect("config");
        let (services, _init) = Services::init(config).await.expect("init");
        let admin = rampart::ops::Caller::local();
        services
            .ops
            .user_passwd(
                &admin,
                "admin",
                Some(Secret::new(ADMIN_PASSWORD.to_string())),
            )
            .await
            .expect("admin password");
        let demo = rampart::serve::start_demo(&services)
            .await
            .expect("demo target");
        let server = Server::new(services.clone()).await.expect("server");
        let shared = server.shared();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let (stop, stopped) = oneshot::channel::<()>();
        let done = tokio::spawn(async move {
            let _ = server
                .run(vec![listener], async {
                    let _ = stopped.await;
                })
                .await;
        });
        TestBastion {
            addr,
            dir,
            services,
            shared,
            demo,
            stop: Some(stop),
            done: Some(done),
        }
    }

    pub async fn start() -> TestBastion {
        TestBastion::start_with("").await
    }

    /// Stops the server and waits for it (every session finalised).
    pub async fn shutdown(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(done) = self.done.take() {
            let _ = tokio::time::timeout(Duration::from_secs(20), done).await;
        }
    }

    /// Makes the policy snapshot reflect the database now (the server also
    /// notices changes within a second on its own).
    pub async fn reload(&self) {
        self.shared.reload_policy().await.expect("reload");
    }
}

pub struct AcceptAll;

impl client::Handler for AcceptAll {
    type Error = russh::Error;
    async fn check_server_key(
        &mut self,
        _key: &PublicKeyOrCertificate,
    ) -> Result<bool, Self::Error> {
        Ok(true)
    }
}

/// A logged-in SSH client.
pub struct Client {
    pub handle: client::Handle<AcceptAll>,
}

pub async fn connect(addr: SocketAddr) -> client::Handle<AcceptAll> {
    let config = Arc::new(client::Config {
        inactivity_timeout: None,
        ..Default::default()
    });
    client::connect(config, addr, AcceptAll)
        .await
        .expect("connect")
}

impl Client {
    pub async fn password(addr: SocketAddr, login: &str, password: &str) -> Result<Client, String> {
        let mut handle = connect(addr).await;
        let r = handle
            .authenticate_password(login, password)
            .await
            .map_err(|e| e.to_string())?;
        if r.success() {
            Ok(Client { handle })
        } else {
            Err(format!("authentication refused: {r:?}"))
        }
    }

    pub async fn admin(addr: SocketAddr) -> Client {
        Client::password(addr, "admin", ADMIN_PASSWORD)
            .await
            .expect("admin login")
    }

    /// Logs in with a private key.
    pub async fn key(addr: SocketAddr, login: &str, key: &PrivateKey) -> Result<Client, String> {
        let mut handle = connect(addr).await;
        let r = handle
            .authenticate_publickey(
                login,
                russh::keys::PrivateKeyWithHashAlg::new(Arc::new(key.clone()), None),
            )
            .await
            .map_err(|e| e.to_string())?;
        if r.success() {
            Ok(Client { handle })
        } else {
            Err(format!("authentication refused: {r:?}"))
        }
    }

    /// Runs a command without a pty; returns (stdout, stderr, exit status).
    pub async fn exec(&self, command: &str) -> (Vec<u8>, String, Option<u32>) {
        self.exec_with(command, None).await
    }

    /// Runs a command without a pty with `input` as its standard input
    /// (then EOF), as `ssh bastion command < file` does.
    pub async fn exec_stdin(&self, command: &str, input: &[u8]) -> (Vec<u8>, String, Option<u32>) {
        self.exec_with(command, Some(input)).await
    }

    /// Runs a command without a pty and leaves its standard input open, as
    /// an interactive `ssh` without a pty does while the person types
    /// nothing.
    pub async fn exec_open(&self, command: &str) -> (Vec<u8>, String, Option<u32>) {
        self.exec_with(command, None).await
    }

    async fn exec_with(
        &self,
        command: &str,
        input: Option<&[u8]>,
    ) -> (Vec<u8>, String, Option<u32>) {
        let mut ch = self.handle.channel_open_session().await.expect("channel");
        ch.exec(true, command.as_bytes().to_vec())
            .await
            .expect("exec");
        if let Some(input) = input {
            if !input.is_empty() {
                ch.data(input).await.expect("stdin");
            }
            ch.eof().await.expect("eof");
        }
        let mut out = Vec::new();
        let mut err = Vec::new();
        let mut status = None;
        while let Some(msg) = ch.wait().await {
            match msg {
                ChannelMsg::Data { data } => out.extend_from_slice(&data),
                ChannelMsg::ExtendedData { data, .. } => err.extend_from_slice(&data),
                ChannelMsg::ExitStatus { exit_status } => status = Some(exit_status),
                ChannelMsg::Close => break,
                _ => {}
            }
        }
        (out, String::from_utf8_lossy(&err).into_owned(), status)
    }

    /// Opens an interactive session with a pty of the given size.
    pub async fn shell(&self, cols: u32, rows: u32, exec: Option<&str>) -> Term {
        let ch = self.handle.channel_open_session().await.expect("channel");
        ch.request_pty(true, "xterm-256color", cols, rows, 0, 0, &[])
            .await
            .expect("pty");
        match exec {
            Some(cmd) => ch.exec(true, cmd.as_bytes().to_vec()).await.expect("exec"),
            None => ch.request_shell(true).await.expect("shell"),
        }
        Term {
            channel: ch,
            parser: vt100::Parser::new(
                std::num::NonZeroU16::new(rows as u16).expect("rows"),
                std::num::NonZeroU16::new(cols as u16).expect("cols"),
                0,
            ),
            raw: Vec::new(),
            exit: None,
            closed: false,
        }
    }

    pub async fn close(self) {
        let _ = self
            .handle
            .disconnect(Disconnect::ByApplication, "", "en")
            .await;
    }
}

/// The person's terminal: what the bastion sent, as a screen.
pub struct Term {
    pub channel: russh::Channel<client::Msg>,
    pub parser: vt100::Parser,
    /// Every byte received on stdout.
    pub raw: Vec<u8>,
    pub exit: Option<u32>,
    pub closed: bool,
}

/// The F4 key, as a terminal in application mode sends it.
pub const F4: &[u8] = b"\x1bOS";

impl Term {
    pub fn text(&self) -> String {
        self.parser.screen().contents()
    }

    pub async fn send(&self, bytes: &[u8]) {
        self.channel.data(bytes).await.expect("send");
    }

    pub async fn resize(&self, cols: u32, rows: u32) {
        self.channel
            .window_change(cols, rows, 0, 0)
            .await
            .expect("resize");
    }

    /// Reads until `pred(screen text)` holds or the timeout passes; returns
    /// whether it held.
    pub async fn wait_for(&mut self, timeout: Duration, pred: impl Fn(&str) -> bool) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if pred(&self.text()) {
                return true;
            }
            if self.closed {
                return false;
            }
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            if left.is_zero() {
                return false;
            }
            match tokio::time::timeout(left, self.channel.wait()).await {
                Err(_) => return pred(&self.text()),
                Ok(None) => self.closed = true,
                Ok(Some(msg)) => self.take(msg),
            }
        }
    }

    /// As [`Term::wait_for`], failing the test with the screen when the
    /// screen never satisfies `pred`.
    pub async fn expect(&mut self, timeout: Duration, pred: impl Fn(&str) -> bool) {
        let held = self.wait_for(timeout, pred).await;
        assert!(held, "{}", self.text());
    }

    /// At the staff desk: F4 opens the audit view, `tab` picks a tab ("2"
    /// the live sessions), and the screen must then satisfy `pred`.
    pub async fn audit_tab(&mut self, tab: &[u8], timeout: Duration, pred: impl Fn(&str) -> bool) {
        self.send(F4).await;
        self.send(tab).await;
        self.expect(timeout, pred).await;
    }

    /// Reads until the channel closes.
    pub async fn wait_close(&mut self, timeout: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        while !self.closed {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match tokio::time::timeout(left, self.channel.wait()).await {
                Err(_) => return false,
                Ok(None) => self.closed = true,
                Ok(Some(msg)) => self.take(msg),
            }
        }
        true
    }

    fn take(&mut self, msg: ChannelMsg) {
        match msg {
            ChannelMsg::Data { data } => {
                self.raw.extend_from_slice(&data);
                self.parser.process(&data);
            }
            ChannelMsg::ExtendedData { data, .. } => self.parser.process(&data),
            ChannelMsg::ExitStatus { exit_status } => self.exit = Some(exit_status),
            ChannelMsg::Close => self.closed = true,
            _ => {}
        }
    }
}

pub fn bytes(s: &str) -> Bytes {
    Bytes::copy_from_slice(s.as_bytes())
}

/// A new ed25519 key pair: the private key and its public line.
pub fn new_key(comment: &str) -> (PrivateKey, String) {
    use russh::keys::ssh_key::private::Ed25519Keypair;
    let mut seed = [0u8; 32];
    rand::fill(&mut seed[..]);
    let mut key = PrivateKey::from(Ed25519Keypair::from_seed(&seed));
    key.set_comment(comment);
    let public = key.public_key().to_openssh().expect("public key line");
    (key, public)
}

/// Runs `command` over SSH and returns its output; fails the test with its
/// error output unless it exits 0.
pub async fn run_ok(c: &Client, command: &str) -> String {
    let (out, err, status) = c.exec(command).await;
    assert_eq!(status, Some(0), "{command}: {err}");
    String::from_utf8_lossy(&out).into_owned()
}
