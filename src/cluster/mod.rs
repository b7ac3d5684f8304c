//! Several rampart nodes sharing one database (`cluster.node` names each).
//!
//! - **Heartbeats.** Every node renews its row in `cluster_nodes` every
//!   [`HEARTBEAT`]. A node whose row is [`SILENCE`] old is taken for dead:
//!   the first node to notice marks the sessions it ran `interrupted`, with
//!   a reason naming it, and forgets it. A node that dies is thus dealt
//!   with within `SILENCE + HEARTBEAT` (25 s).
//! - **One name, one process.** At start a node takes its name over from
//!   the process that held it before, marking that process's sessions
//!   `interrupted` (it stopped, or crashed, with them running). On
//!   PostgreSQL a running node holds an advisory lock on its name, on a
//!   connection of its own, which PostgreSQL lets go when the process dies:
//!   a restart after a crash takes the name at once, while a second process
//!   under the name of a running one waits, then refuses to start. A SQLite
//!   file has one node.
//! - **Kills across nodes.** A session to end that is not this node's goes
//!   to the node that runs it ([`store::cluster::owner`]) as a PostgreSQL
//!   `NOTIFY` on [`CHANNEL`], which that node answers the same way: the
//!   database already connects every node, so no other broker or cluster
//!   protocol is needed. On SQLite there is no other node to ask.
//!
//! - **Watching and joining across nodes.** A monitor or a joined admin on
//!   one node watches a session of another through a feed that node sends
//!   on a channel of the watch's own, bounded in rate and memory
//!   ([`watch`]).
//!
//! The live list reads the other nodes' sessions from their rows
//! (`ops::sessions`).

mod watch;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use crate::live::{self, BoxFuture};
use crate::services::{Services, StartError};
use crate::store::{self, Engine, Store};

/// How often a node renews its heartbeat and looks for silent nodes.
pub const HEARTBEAT: Duration = Duration::from_secs(5);
/// A node whose heartbeat is this old is taken for dead.
pub const SILENCE: Duration = Duration::from_secs(20);
/// The PostgreSQL notification channel nodes talk on.
pub const CHANNEL: &str = "rampart_control";
/// How long a node waits for another to answer.
const ANSWER_WAIT: Duration = Duration::from_secs(3);
/// What the sessions of a node taken for dead are closed with.
fn silent_reason(node: &str, last: Timestamp) -> String {
    format!(
        "node {node} stopped answering (last heartbeat {last}); the session was cut off with it"
    )
}
const STOPPED_REASON: &str = "the bastion stopped while the session was running";

/// This process as a node: its name, and the handle other parts use to
/// reach the other nodes.
pub struct Node {
    services: Services,
    name: String,
    instance: String,
    others: Arc<Others>,
    /// The connection holding this node's name lock (PostgreSQL).
    /// (In a mutex only to make the node shareable between threads.)
    _name_held: Mutex<Option<sqlx::AnyConnection>>,
}

impl Node {
    /// Takes this node's name (see the module docs) and marks the sessions
    /// its previous process left running `interrupted`.
    pub async fn join(services: &Services) -> Result<Node, StartError> {
        let name = services.config.cluster.node.clone();
        let instance = uuid::Uuid::new_v4().to_string();
        let store = &services.store;
        let name_held = match store.engine() {
            Engine::Postgres => Some(hold_name(services, &name).await?),
            Engine::Sqlite => None,
        };
        let now = services.clock.now();
        let mut tx = store.begin().await?;
        store::cluster::join(&mut tx, &name, &instance, now).await?;
        // Sessions from before nodes were recorded are this node's: it is
        // the install that recorded them (the first node to start after
        // the upgrade). Its spool uploads them; it interrupts those left live.
        store::cluster::claim_unowned(&mut tx, &name).await?;
        store.commit(tx).await?;
        let interrupted =
            crate::audit::interrupt_sessions_of(store, &name, true, STOPPED_REASON, now).await?;
        if interrupted > 0 {
            tracing::warn!(
                "{interrupted} session(s) were running when the bastion last stopped: marked interrupted"
            );
        }
        let others = Arc::new(Others {
            store: store.clone(),
            url: services.config.database.url.clone(),
            me: name.clone(),
            waiting: Mutex::default(),
            watches: Mutex::default(),
        });
        Ok(Node {
            services: services.clone(),
            name,
            instance,
            others,
            _name_held: Mutex::new(name_held),
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// What the live registry asks about sessions of other nodes.
    pub fn others(&self) -> Arc<dyn live::Elsewhere> {
        self.others.clone()
    }

    /// Heartbeats, the watch for silent nodes and, on PostgreSQL, the
    /// notifications from other nodes, until `stop`.
    pub async fn run(self, registry: live::Registry, stop: CancellationToken) {
        let listening = match self.services.store.engine() {
            Engine::Postgres => Some(tokio::spawn(listen(
                self.services.config.database.url.clone(),
                self.others.clone(),
                registry,
                stop.clone(),
            ))),
            Engine::Sqlite => None,
        };
        let mut tick = tokio::time::interval(HEARTBEAT);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                () = stop.cancelled() => break,
            }
            if let Err(e) = self.beat().await {
                tracing::warn!("cluster heartbeat failed: {e}");
            }
            if let Err(e) = self.sweep().await {
                tracing::warn!("looking for silent nodes failed: {e}");
            }
        }
        if let Some(task) = listening {
            let _ = task.await;
        }
    }

    async fn beat(&self) -> Result<(), store::StoreError> {
        let store = &self.services.store;
        let now = self.services.clock.now();
        let mut conn = store.conn().await?;
        if !store::cluster::beat(&mut conn, &self.name, &self.instance, now).await? {
            // Taken for dead while out of touch with the database (its
            // sessions were closed by another node), or the name was taken
            // over: hold it again and say so.
            tracing::error!(
                node = %self.name,
                "this node's heartbeat row was gone or taken: another node took it for dead, \
                 or another process runs under the same cluster.node"
            );
            store::cluster::join(&mut conn, &self.name, &self.instance, now).await?;
        }
        Ok(())
    }

    /// Closes the sessions of nodes silent for [`SILENCE`], and forgets
    /// those nodes.
    async fn sweep(&self) -> Result<(), store::StoreError> {
        let store = &self.services.store;
        let now = self.services.clock.now();
        let before = now - SignedDuration::try_from(SILENCE).unwrap_or(SignedDuration::ZERO);
        let silent = {
            let mut conn = store.conn().await?;
            store::cluster::silent(&mut conn, &self.name, before).await?
        };
        for node in silent {
            let reason = silent_reason(&node.name, node.heartbeat_at);
            let closed =
                crate::audit::interrupt_sessions_of(store, &node.name, false, &reason, now).await?;
            let mut tx = store.begin().await?;
            store::cluster::forget(&mut tx, &node.name, &node.instance).await?;
            store.commit(tx).await?;
            tracing::warn!(
                node = %node.name,
                sessions = closed,
                "node stopped answering (last heartbeat {}): its sessions are marked interrupted",
                node.heartbeat_at
            );
        }
        Ok(())
    }
}

/// The advisory lock that says a process runs as node `name`: held on a
/// connection of its own for as long as the process lives, and let go by
/// PostgreSQL the moment that connection ends, crash or not.
fn name_lock(name: &str) -> i64 {
    // FNV-1a, stable across builds; the high bits keep it apart from the
    // store's write lock.
    let mut h: u32 = 0x811c_9dc5;
    for b in name.bytes() {
        h = (h ^ u32::from(b)).wrapping_mul(0x0100_0193);
    }
    0x0072_616d_0000_0000 | i64::from(h)
}

/// Takes node `name`'s lock on a connection of its own (PostgreSQL). A
/// crashed predecessor let go of it when it died; a process still running
/// under the name holds it, and this one waits for at most a silence, then
/// refuses to start: two processes must never share a name, or each would
/// close the other's sessions.
async fn hold_name(services: &Services, name: &str) -> Result<sqlx::AnyConnection, StartError> {
    use sqlx::Connection as _;
    let url = &services.config.database.url;
    let mut conn = sqlx::AnyConnection::connect(url)
        .await
        .map_err(store::StoreError::from)?;
    let started = Instant::now();
    let mut told = false;
    loop {
        let held: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock($1)")
            .bind(name_lock(name))
            .fetch_one(&mut conn)
            .await
            .map_err(store::StoreError::from)?;
        if held {
            return Ok(conn);
        }
        if started.elapsed() > SILENCE + HEARTBEAT {
            return Err(StartError::Refused(format!(
                "another process is running as node {name}: give every node its own cluster.node"
            )));
        }
        if !told {
            tracing::warn!(
                "another process holds node name {name}: waiting up to {}s for it to end",
                (SILENCE + HEARTBEAT).as_secs()
            );
            told = true;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// One notification between nodes.
#[derive(Debug, Serialize, Deserialize)]
struct Note {
    to: String,
    from: String,
    /// Pairs an answer with its question.
    id: String,
    #[serde(flatten)]
    what: What,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "what", rename_all = "snake_case")]
enum What {
    /// End this session, showing the reason to its person.
    Kill {
        session: String,
        reason: String,
        by: String,
    },
    /// End every session of this user.
    KillUser {
        user: String,
        reason: String,
        by: String,
    },
    /// The answer: how many sessions there were.
    Done { count: usize },
    /// Feed this session to `channel` (see [`watch`]), joining it as
    /// `join_as` if given.
    Watch {
        session: String,
        channel: String,
        join_as: Option<String>,
    },
    /// A watch asks for the session's screen.
    Resync { channel: String },
    /// A joined admin's keystrokes, base64.
    Input { channel: String, data: String },
    /// The watcher is still there.
    Alive { channel: String },
    /// The watcher left.
    Leave { channel: String },
}

/// The other nodes, as this one reaches them.
struct Others {
    store: Store,
    /// The database's address, for the listeners of watches.
    url: String,
    me: String,
    waiting: Mutex<HashMap<String, oneshot::Sender<usize>>>,
    /// The watches this node feeds to others, by channel.
    watches: Mutex<HashMap<String, mpsc::Sender<watch::Command>>>,
}

impl Others {
    fn watches(&self) -> std::sync::MutexGuard<'_, HashMap<String, mpsc::Sender<watch::Command>>> {
        self.watches.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn waiting(&self) -> std::sync::MutexGuard<'_, HashMap<String, oneshot::Sender<usize>>> {
        self.waiting.lock().unwrap_or_else(PoisonError::into_inner)
    }

    async fn send(&self, note: &Note) -> Result<(), store::StoreError> {
        let payload = serde_json::to_string(note)
            .map_err(|e| store::StoreError::Corrupt(format!("a note to {}: {e}", note.to)))?;
        sqlx::query("SELECT pg_notify($1, $2)")
            .bind(CHANNEL)
            .bind(payload)
            .execute(self.store.pool())
            .await?;
        Ok(())
    }

    /// Asks `node` and waits for its answer; `None` when it does not answer
    /// in time.
    async fn ask(&self, node: &str, what: What) -> Option<usize> {
        let id = uuid::Uuid::new_v4().to_string();
        let (tx, rx) = oneshot::channel();
        self.waiting().insert(id.clone(), tx);
        let note = Note {
            to: node.to_string(),
            from: self.me.clone(),
            id: id.clone(),
            what,
        };
        let answer = match self.send(&note).await {
            Ok(()) => tokio::time::timeout(ANSWER_WAIT, rx)
                .await
                .ok()
                .and_then(Result::ok),
            Err(e) => {
                tracing::warn!(%node, "cannot reach node: {e}");
                None
            }
        };
        self.waiting().remove(&id);
        answer
    }

    async fn kill_remote(&self, id: &str, reason: &str, by: &str) -> Option<String> {
        if self.store.engine() != Engine::Postgres {
            return None;
        }
        let mut conn = self.store.conn().await.ok()?;
        let node = store::cluster::owner(&mut conn, id).await.ok()??;
        let row = store::sessions::get(&mut conn, id).await.ok()?;
        drop(conn);
        if node == self.me || row.status != "live" {
            return None;
        }
        let what = What::Kill {
            session: id.to_string(),
            reason: reason.to_string(),
            by: by.to_string(),
        };
        let count = self.ask(&node, what).await?;
        (count > 0).then_some(node)
    }

    async fn watch_remote(
        &self,
        id: &str,
        join_as: Option<&str>,
    ) -> Result<live::Remote, live::LiveError> {
        let not_found = || live::LiveError::NotFound { id: id.to_string() };
        if self.store.engine() != Engine::Postgres {
            return Err(not_found());
        }
        let mut conn = self.store.conn().await.map_err(|_| not_found())?;
        let node = store::cluster::owner(&mut conn, id)
            .await
            .ok()
            .flatten()
            .ok_or_else(not_found)?;
        let live = store::sessions::get(&mut conn, id)
            .await
            .is_ok_and(|row| row.status == "live");
        drop(conn);
        if node == self.me || !live {
            return Err(not_found());
        }
        watch::watch(self, node, id, join_as).await
    }

    async fn kill_user_remote(&self, user: &str, reason: &str, by: &str) -> usize {
        if self.store.engine() != Engine::Postgres {
            return 0;
        }
        let nodes = match self.store.conn().await {
            Ok(mut conn) => live_nodes(&mut conn, &self.me).await,
            Err(_) => Vec::new(),
        };
        let mut count = 0;
        for node in nodes {
            let what = What::KillUser {
                user: user.to_string(),
                reason: reason.to_string(),
                by: by.to_string(),
            };
            count += self.ask(&node, what).await.unwrap_or(0);
        }
        count
    }
}

/// The other nodes (a silent one is forgotten within a heartbeat of its
/// silence; until then, asking it just goes unanswered).
async fn live_nodes(conn: &mut store::Conn, me: &str) -> Vec<String> {
    let rows: Vec<String> = sqlx::query_scalar("SELECT name FROM cluster_nodes WHERE name <> $1")
        .bind(me)
        .fetch_all(conn)
        .await
        .unwrap_or_default();
    rows
}

impl live::Elsewhere for Others {
    fn kill<'a>(
        &'a self,
        id: &'a str,
        reason: &'a str,
        by: &'a str,
    ) -> BoxFuture<'a, Option<String>> {
        Box::pin(self.kill_remote(id, reason, by))
    }

    fn kill_user<'a>(
        &'a self,
        user: &'a str,
        reason: &'a str,
        by: &'a str,
    ) -> BoxFuture<'a, usize> {
        Box::pin(self.kill_user_remote(user, reason, by))
    }

    fn watch<'a>(
        &'a self,
        id: &'a str,
        join_as: Option<&'a str>,
    ) -> BoxFuture<'a, Result<live::Remote, live::LiveError>> {
        Box::pin(self.watch_remote(id, join_as))
    }
}

/// Answers the notes addressed to this node, and hands answers to whoever
/// asked, until `stop`. Reconnects after losing the database.
async fn listen(
    url: String,
    others: Arc<Others>,
    registry: live::Registry,
    stop: CancellationToken,
) {
    loop {
        let listener = async {
            let mut l = sqlx::postgres::PgListener::connect(&url).await?;
            l.listen(CHANNEL).await?;
            Ok::<_, sqlx::Error>(l)
        };
        let mut listener = tokio::select! {
            l = listener => match l {
                Ok(l) => l,
                Err(e) => {
                    tracing::warn!("cannot listen for other nodes: {}", store::StoreError::from(e));
                    tokio::select! {
                        () = tokio::time::sleep(HEARTBEAT) => continue,
                        () = stop.cancelled() => return,
                    }
                }
            },
            () = stop.cancelled() => return,
        };
        loop {
            let note = tokio::select! {
                n = listener.recv() => n,
                () = stop.cancelled() => return,
            };
            match note {
                Ok(n) => answer(n.payload(), &others, &registry).await,
                Err(e) => {
                    tracing::warn!(
                        "lost the other nodes' notifications: {}",
                        store::StoreError::from(e)
                    );
                    break;
                }
            }
        }
    }
}

async fn answer(payload: &str, others: &Arc<Others>, registry: &live::Registry) {
    let Ok(note) = serde_json::from_str::<Note>(payload) else {
        tracing::warn!("an unreadable note on {CHANNEL}: ignored");
        return;
    };
    if note.to != others.me {
        return;
    }
    let count = match note.what {
        What::Done { count } => {
            if let Some(waiting) = others.waiting().remove(&note.id) {
                let _ = waiting.send(count);
            }
            return;
        }
        What::Kill {
            session,
            reason,
            by,
        } => {
            let found = registry.kill(&session, &reason, &by);
            tracing::info!(%session, %by, from = %note.from, found, "kill from another node");
            usize::from(found)
        }
        What::KillUser { user, reason, by } => {
            let count = registry.kill_user(&user, &reason, &by);
            tracing::info!(%user, %by, from = %note.from, count, "user's sessions killed from another node");
            count
        }
        What::Watch {
            session,
            channel,
            join_as,
        } => {
            tracing::info!(%session, from = %note.from, "watch from another node");
            tokio::spawn(watch::serve(
                Arc::clone(others),
                registry.clone(),
                session,
                channel,
                join_as,
            ));
            return;
        }
        What::Resync { channel } => {
            watch::route(others, &channel, watch::Command::Screen);
            return;
        }
        What::Input { channel, data } => {
            use base64::Engine as _;
            match base64::engine::general_purpose::STANDARD.decode(data) {
                Ok(bytes) => {
                    watch::route(others, &channel, watch::Command::Input(bytes.into()));
                }
                Err(_) => {
                    tracing::warn!(from = %note.from, "unreadable keystrokes from a watch: dropped")
                }
            }
            return;
        }
        What::Alive { channel } => {
            watch::route(others, &channel, watch::Command::Alive);
            return;
        }
        What::Leave { channel } => {
            watch::route(others, &channel, watch::Command::Leave);
            return;
        }
    };
    let done = Note {
        to: note.from,
        from: others.me.clone(),
        id: note.id,
        what: What::Done { count },
    };
    if let Err(e) = others.send(&done).await {
        tracing::warn!("cannot answer node {}: {e}", done.to);
    }
}
