//! The SSH front door: listeners, the connection cap, host keys, the russh
//! configuration, the policy snapshot the sessions decide with, and
//! graceful shutdown.
//!
//! Shape (STYLE.md "Services"): the russh [`handler::Handler`] only
//! authenticates and accepts channels; each session channel is driven by
//! its own task ([`channel::run`]) that drains the channel in order and owns
//! everything about that session. A semaphore permit is taken before each
//! accept, and a source may hold [`MAX_UNAUTHENTICATED_PER_SOURCE`]
//! connections that have not logged in (the source of a connection from a
//! load balancer in `ssh.proxy_protocol_from` is the one its PROXY header
//! gives, [`proxy`]); one cancellation token stops the
//! listeners and tells the sessions; a task tracker lets shutdown wait for
//! them up to a deadline.
//!
//! Must never: await a client write inside a russh callback, keep a channel
//! it does not drain, or decide access itself (that is `policy`).

pub mod admin;
pub mod channel;
mod database;
mod db_tunnel;
mod desk;
mod desktop;
mod graphics;
pub mod handler;
pub mod menu;
pub mod proxy;
pub mod request;
pub mod scp;
pub mod sftp;
pub mod standing;
pub mod target;
pub mod tunnel;
mod web;

use std::net::SocketAddr;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use russh::keys::PrivateKey;
use russh::{MethodKind, MethodSet, Preferred, cipher, kex};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::audit::{self, AuditEvent};
use crate::auth::gate::PerSource;
use crate::auth::login::Authenticator;
use crate::live;
use crate::model::Identity;
use crate::policy::Snapshot;
use crate::services::{Services, StartError};
use crate::store;
use crate::upstream::read_ahead::ReadAhead;

/// What every connection and session shares.
pub struct Shared {
    pub services: Services,
    pub authenticator: Authenticator,
    policy: RwLock<Arc<Snapshot>>,
    pub live: live::Registry,
    pub tracker: TaskTracker,
    pub shutdown: CancellationToken,
    pub theme: crate::tui::Theme,
    pub upstream: crate::upstream::ConnectOptions,
    /// Target sessions each person has open (`ssh.max_sessions_per_user`).
    pub user_sessions: Arc<crate::session::UserSessions>,
}

impl Shared {
    /// The policy as of the last rebuild (at most ~1 s old).
    pub fn policy(&self) -> Arc<Snapshot> {
        self.policy
            .read()
            .map(|p| p.clone())
            .unwrap_or_else(|e| e.into_inner().clone())
    }

    /// Rebuilds the snapshot from the database now.
    pub async fn reload_policy(&self) -> Result<(), String> {
        let snapshot = self
            .services
            .ops
            .policy_snapshot()
            .await
            .map_err(|e| e.to_string())?;
        match self.policy.write() {
            Ok(mut p) => *p = Arc::new(snapshot),
            Err(e) => *e.into_inner() = Arc::new(snapshot),
        }
        Ok(())
    }
}

/// An authenticated connection: who, from where, and the login name's
/// target if it carried one.
#[derive(Debug)]
pub struct Conn {
    pub login: String,
    pub route: Option<crate::route::Login>,
    pub identity: Identity,
    /// MFA is required and the person has no seed yet.
    pub must_enrol: bool,
    pub peer: SocketAddr,
    /// Refusals on this connection so far (see [`refuse_log`]).
    pub refusals: std::sync::atomic::AtomicU32,
    /// The login, counted as in progress from the person's authentication
    /// until their first session shows output or ends, or the menu is up
    /// (streaming sessions give way to it meanwhile).
    pub arrival: Arc<crate::live::arrivals::Arrival>,
}

/// Refusal rows written per connection; later ones are only counted, and
/// one row at the end of the connection says how many (a client asking
/// 10,000 times for a refused tunnel must not write 10,000 rows).
pub const REFUSALS_LOGGED: u32 = 20;

/// Writes the audit row for a refused request (one line went to the person).
pub async fn refuse_log(shared: &Shared, conn: &Conn, request: &str, reason: &str) {
    let before = conn
        .refusals
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    if before >= REFUSALS_LOGGED {
        tracing::debug!(user = %conn.identity.name, request, "refusal not logged: over the per-connection limit");
        return;
    }
    let event = AuditEvent::Refusal {
        user_name: conn.identity.name.clone(),
        source: conn.peer.ip().to_string(),
        request: request.to_string(),
        reason: reason.to_string(),
    };
    audit::record_alone(&shared.services.store, shared.services.clock.now(), &event).await;
}

/// The row that closes a connection whose refusals passed
/// [`REFUSALS_LOGGED`]: how many more there were.
pub async fn refusals_summary(shared: &Shared, conn: &Conn) {
    let all = conn.refusals.load(std::sync::atomic::Ordering::Relaxed);
    if all <= REFUSALS_LOGGED {
        return;
    }
    let event = AuditEvent::Refusal {
        user_name: conn.identity.name.clone(),
        source: conn.peer.ip().to_string(),
        request: "(summary)".into(),
        reason: format!(
            "{} further refused requests on this connection were not logged one by one",
            all - REFUSALS_LOGGED
        ),
    };
    audit::record_alone(&shared.services.store, shared.services.clock.now(), &event).await;
}

/// The russh configuration: modern algorithms only, keepalives instead of
/// an inactivity timeout, constant rejection time for real failures but
/// none for OpenSSH's initial `none` probe.
fn russh_config(services: &Services, keys: Vec<PrivateKey>) -> russh::server::Config {
    let ssh = &services.config.ssh;
    let mut methods = MethodSet::empty();
    for m in &services.config.auth.methods {
        methods.push(match m {
            crate::config::AuthMethod::Password => MethodKind::Password,
            crate::config::AuthMethod::PublicKey => MethodKind::PublicKey,
            crate::config::AuthMethod::KeyboardInteractive => MethodKind::KeyboardInteractive,
        });
    }
    russh::server::Config {
        server_id: russh::SshId::Standard(
            format!("SSH-2.0-rampart_{}", env!("CARGO_PKG_VERSION")).into(),
        ),
        methods,
        auth_rejection_time: Duration::from_millis(500),
        auth_rejection_time_initial: Some(Duration::ZERO),
        keys,
        inactivity_timeout: None,
        keepalive_interval: ssh.keepalive_interval,
        keepalive_max: 3,
        nodelay: true,
        max_auth_attempts: ssh.max_auth_attempts as usize,
        window_size: 2 * 1024 * 1024,
        maximum_packet_size: 32768,
        channel_buffer_size: crate::upstream::CHANNEL_QUEUE,
        preferred: Preferred {
            kex: std::borrow::Cow::Borrowed(&[
                kex::MLKEM768X25519_SHA256,
                kex::CURVE25519,
                kex::CURVE25519_PRE_RFC_8731,
                kex::EXTENSION_SUPPORT_AS_SERVER,
                kex::EXTENSION_OPENSSH_STRICT_KEX_AS_SERVER,
            ]),
            key: std::borrow::Cow::Borrowed(&[
                russh::keys::Algorithm::Ed25519,
                russh::keys::Algorithm::Ecdsa {
                    curve: russh::keys::EcdsaCurve::NistP256,
                },
                russh::keys::Algorithm::Ecdsa {
                    curve: russh::keys::EcdsaCurve::NistP384,
                },
                russh::keys::Algorithm::Ecdsa {
                    curve: russh::keys::EcdsaCurve::NistP521,
                },
                russh::keys::Algorithm::Rsa {
                    hash: Some(russh::keys::HashAlg::Sha512),
                },
                russh::keys::Algorithm::Rsa {
                    hash: Some(russh::keys::HashAlg::Sha256),
                },
            ]),
            cipher: std::borrow::Cow::Borrowed(&[
                cipher::CHACHA20_POLY1305,
                cipher::AES_256_GCM,
                cipher::AES_128_GCM,
            ]),
            ..Preferred::default()
        },
        ..russh::server::Config::default()
    }
}

/// Loads the configured host keys, generating missing ones (ed25519).
fn host_keys(services: &Services) -> Result<Vec<PrivateKey>, StartError> {
    let mut keys = Vec::new();
    for path in services.config.host_key_paths() {
        if !path.exists() {
            crate::services::write_host_key(&path)?;
            tracing::info!("generated host key {}", path.display());
        }
        let key = russh::keys::load_secret_key(&path, None).map_err(|e| {
            StartError::Refused(format!("host key {} cannot be loaded: {e}", path.display()))
        })?;
        keys.push(key);
    }
    Ok(keys)
}

/// The SSH front door, ready to serve.
pub struct Server {
    shared: Arc<Shared>,
    config: Arc<russh::server::Config>,
    max_connections: usize,
    node: crate::cluster::Node,
    /// `http.metrics_listen`, bound.
    http: Option<TcpListener>,
}

impl Server {
    pub async fn new(services: Services) -> Result<Server, StartError> {
        let keys = host_keys(&services)?;
        let config = Arc::new(russh_config(&services, keys));
        // The same lockout and MFA settings as the `me` verbs use.
        let settings = services.ops.settings();
        let authenticator = Authenticator::new(
            services.store.clone(),
            services.vault.clone(),
            services.clock.clone(),
            settings.lockout,
            settings.mfa,
            services.config.auth.time_zone.clone(),
        )
        .with_metrics(services.metrics.clone());
        let theme = crate::tui::Theme::load(&services.config.tui.theme)
            .map_err(|e| StartError::Refused(e.to_string()))?;
        let snapshot = services.ops.policy_snapshot().await?;
        let node = crate::cluster::Node::join(&services).await?;
        let max_connections = services.config.ssh.max_connections as usize;
        let shared = Arc::new(Shared {
            services,
            authenticator,
            policy: RwLock::new(Arc::new(snapshot)),
            live: live::Registry::new(),
            tracker: TaskTracker::new(),
            shutdown: CancellationToken::new(),
            theme,
            upstream: crate::upstream::ConnectOptions::default(),
            user_sessions: Arc::new(crate::session::UserSessions::default()),
        });
        shared.live.set_elsewhere(node.others());
        let http = crate::http::bind(&shared.services).await?;
        Ok(Server {
            shared,
            config,
            max_connections,
            node,
            http,
        })
    }

    pub fn shared(&self) -> Arc<Shared> {
        self.shared.clone()
    }

    /// Binds the configured addresses.
    pub async fn bind(&self) -> Result<Vec<TcpListener>, StartError> {
        let mut listeners = Vec::new();
        for addr in &self.shared.services.config.ssh.listen {
            let l = TcpListener::bind(addr)
                .await
                .map_err(|e| StartError::Refused(format!("cannot listen on {addr}: {e}")))?;
            listeners.push(l);
        }
        Ok(listeners)
    }

    /// Serves until `stop` resolves, then shuts down gracefully: stop
    /// accepting, tell the sessions, give them `ssh.shutdown_grace`, close
    /// what is left and wait for every recording to be finalised.
    pub async fn run(
        self,
        listeners: Vec<TcpListener>,
        stop: impl std::future::Future<Output = ()>,
    ) -> Result<(), StartError> {
        let shared = self.shared.clone();
        let permits = Arc::new(Semaphore::new(self.max_connections.max(1)));
        let unauthenticated = Arc::new(PerSource::new(MAX_UNAUTHENTICATED_PER_SOURCE));
        let watcher = tokio::spawn(watch_changes(shared.clone()));
        let people = tokio::spawn(standing::watch(shared.clone()));
        let control = spawn_control(shared.clone());
        let spool = tokio::spawn(crate::spool::run(
            shared.services.spooler(),
            shared.shutdown.clone(),
        ));
        let cluster = tokio::spawn(self.node.run(shared.live.clone(), shared.shutdown.clone()));
        let indexer = tokio::spawn(crate::search::indexer::run(
            shared.services.indexer(),
            shared.shutdown.clone(),
        ));
        let ready = Arc::new(std::sync::atomic::AtomicBool::new(false));
        // The ops endpoints outlive the shutdown grace: /readyz says the
        // node stopped accepting while its sessions finish.
        let http_stop = CancellationToken::new();
        let ops_endpoints = self.http.map(|listener| {
            let ops = crate::http::Ops {
                services: shared.services.clone(),
                live: shared.live.clone(),
                accepting: ready.clone(),
            };
            tokio::spawn(crate::http::serve(listener, ops, http_stop.clone()))
        });
        let mut accepting = tokio::task::JoinSet::new();
        let policy_of = shared.clone();
        let context = Arc::new(crate::session::Context {
            services: shared.services.clone(),
            authenticator: shared.authenticator.clone(),
            live: shared.live.clone(),
            policy: Box::new(move || policy_of.policy()),
            shutdown: shared.shutdown.clone(),
            tracker: shared.tracker.clone(),
            user_sessions: shared.user_sessions.clone(),
            connect_timeout: shared.upstream.connect_timeout,
        });
        if let Some((rdp_listeners, front)) = crate::rdp::bind(&shared.services.config).await? {
            for listener in rdp_listeners {
                accepting.spawn(crate::rdp::serve(listener, context.clone(), front.clone()));
            }
        }
        if let Some((listener, tls, base)) = crate::http::web::bind(&shared.services.config).await?
        {
            let web = Arc::new(crate::http::web::Web {
                context: context.clone(),
                base,
                visits: crate::http::web::visit::Visits::default(),
            });
            accepting.spawn(crate::http::web::serve(listener, tls, web));
        }
        for listener in listeners {
            accepting.spawn(accept_loop(
                listener,
                shared.clone(),
                self.config.clone(),
                permits.clone(),
                unauthenticated.clone(),
            ));
        }
        ready.store(true, std::sync::atomic::Ordering::Release);
        stop.await;
        ready.store(false, std::sync::atomic::Ordering::Release);
        tracing::info!("shutting down: no new connections");
        shared.shutdown.cancel();
        accepting.abort_all();
        watcher.abort();
        people.abort();
        shared.tracker.close();
        let grace = shared.services.config.ssh.shutdown_grace + Duration::from_secs(5);
        if tokio::time::timeout(grace, shared.tracker.wait())
            .await
            .is_err()
        {
            tracing::warn!("some sessions did not finish within the shutdown grace");
        }
        // Every queued audit row is written before the process exits.
        shared.services.audit.flush().await;
        control.abort();
        let _ = indexer.await;
        let _ = cluster.await;
        // One last pass uploads what the sessions that just ended left.
        if let Err(e) = shared.services.spooler().pass().await {
            tracing::warn!("recordings left in the spool at shutdown: {e}");
        }
        let _ = spool.await;
        http_stop.cancel();
        if let Some(task) = ops_endpoints {
            let _ = task.await;
        }
        Ok(())
    }
}

/// Connections one source (an IPv4 address or an IPv6 /64) may hold open
/// before logging in; past it a new one is closed before the SSH greeting.
pub const MAX_UNAUTHENTICATED_PER_SOURCE: usize = 64;

async fn accept_loop(
    listener: TcpListener,
    shared: Arc<Shared>,
    config: Arc<russh::server::Config>,
    permits: Arc<Semaphore>,
    unauthenticated: Arc<PerSource>,
) {
    loop {
        // Take the permit before accepting: beyond the cap, clients wait in
        // the kernel's backlog instead of costing memory here.
        let Ok(permit) = permits.clone().acquire_owned().await else {
            return;
        };
        let Some((stream, peer)) = crate::session::accept(&listener, &shared.shutdown).await else {
            return;
        };
        let shared = shared.clone();
        let config = config.clone();
        let unauthenticated = unauthenticated.clone();
        shared.tracker.clone().spawn(async move {
            let _permit = permit;
            let mut stream = stream;
            let login_timeout = shared.services.config.ssh.login_timeout;
            let greeted_by = tokio::time::Instant::now() + login_timeout;
            let Some(peer) = person_behind(&shared, &mut stream, peer, greeted_by).await else {
                return;
            };
            // Its place is held until the connection logs in (the handler
            // gives it back) or ends.
            let Some(place) = unauthenticated.try_take(peer.ip()) else {
                tracing::debug!(%peer, "too many connections not logged in from this source: closed");
                return;
            };
            // Its login will write soon: the indexer waits for it.
            shared.services.store.expect_writes();
            let authenticated = Arc::new(std::sync::atomic::AtomicBool::new(false));
            let handler = handler::Handler::new(shared.clone(), peer, authenticated.clone(), place);
            // The version exchange happens inside run_stream: a client that
            // never sends its id is dropped at the same deadline.
            let started = tokio::time::timeout_at(greeted_by, russh::server::run_stream(config, ReadAhead::new(stream), handler)).await;
            let Ok(started) = started else {
                tracing::debug!(%peer, "no SSH version exchange within the login timeout");
                return;
            };
            match started {
                Ok(session) => {
                    let handle = session.handle();
                    // A client that has not logged in by the deadline is let go:
                    // unauthenticated connections must not hold a slot forever.
                    let deadline = async {
                        tokio::time::sleep(login_timeout).await;
                        if authenticated.load(std::sync::atomic::Ordering::Acquire) {
                            std::future::pending::<()>().await;
                        }
                    };
                    tokio::select! {
                        r = session => {
                            if let Err(e) = r {
                                tracing::debug!(%peer, "connection ended: {e}");
                            }
                        }
                        () = deadline => {
                            let _ = handle
                                .disconnect(russh::Disconnect::ByApplication, "login timeout".into(), "en".into())
                                .await;
                        }
                        () = shutdown_after_sessions(&shared) => {
                            let _ = handle
                                .disconnect(russh::Disconnect::ByApplication, "the bastion is shutting down".into(), "en".into())
                                .await;
                        }
                    }
                }
                Err(e) => tracing::debug!(%peer, "handshake failed: {e}"),
            }
        });
    }
}

/// The person's address: `peer`, or, for a connection from a load
/// balancer in `ssh.proxy_protocol_from`, the one its PROXY header gives
/// ([`proxy`]). `None`: the balancer sent no valid header by `deadline`,
/// and the connection is to be closed.
async fn person_behind(
    shared: &Shared,
    stream: &mut tokio::net::TcpStream,
    peer: SocketAddr,
    deadline: tokio::time::Instant,
) -> Option<SocketAddr> {
    let balancers = &shared.services.config.ssh.proxy_protocol_from;
    let ip = peer.ip().to_canonical();
    if !balancers.iter().any(|net| net.contains(&ip)) {
        return Some(peer);
    }
    match tokio::time::timeout_at(deadline, proxy::read_header(stream)).await {
        Ok(Ok(person)) => Some(person.unwrap_or(peer)),
        Ok(Err(e)) => {
            tracing::warn!(balancer = %peer, "PROXY protocol: {e}; connection closed");
            None
        }
        Err(_) => {
            tracing::warn!(balancer = %peer, "no PROXY header within the login timeout; connection closed");
            None
        }
    }
}

/// Resolves once shutdown began and the grace period has passed, so a
/// connection whose sessions already ended is dropped at the deadline.
async fn shutdown_after_sessions(shared: &Shared) {
    shared.shutdown.cancelled().await;
    tokio::time::sleep(shared.services.config.ssh.shutdown_grace + Duration::from_secs(1)).await;
}

/// Rebuilds the policy snapshot when the database says something changed
/// (the CLI is another process: it bumps `change_counter`).
async fn watch_changes(shared: Arc<Shared>) {
    let mut last = None;
    loop {
        let counter = match shared.services.store.conn().await {
            Ok(mut conn) => store::change_counter(&mut conn).await.ok(),
            Err(_) => None,
        };
        if counter.is_some() && counter != last {
            if last.is_some()
                && let Err(e) = shared.reload_policy().await
            {
                tracing::error!("policy reload failed, keeping the previous one: {e}");
            }
            last = counter;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// Starts the control socket (`data_dir/control.sock`) for the CLI's
/// `session list --live` and `session kill`.
fn spawn_control(shared: Arc<Shared>) -> tokio::task::JoinHandle<()> {
    let path = shared.services.config.control_socket_path();
    let (reload_tx, mut reload_rx) = tokio::sync::mpsc::channel::<()>(4);
    let reloader = shared.clone();
    tokio::spawn(async move {
        while reload_rx.recv().await.is_some() {
            if let Err(e) = reloader.reload_policy().await {
                tracing::error!("policy reload failed: {e}");
            }
        }
    });
    let registry = shared.live.clone();
    let stop = shared.shutdown.clone();
    tokio::spawn(async move {
        if let Err(e) =
            live::control::serve_control(&path, registry, reload_tx, stop.cancelled_owned()).await
        {
            tracing::error!("control socket {}: {e}", path.display());
        }
    })
}
