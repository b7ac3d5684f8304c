//! The HTTP side service. Built so far: the ops endpoints on
//! `http.metrics_listen` (plain HTTP; put it on loopback or a management
//! network):
//!
//! - `GET /healthz`: 200 while the process runs;
//! - `GET /readyz`: 200 when the database answers, the recording dir takes
//!   a file and the SSH listeners accept; otherwise 503, naming each part
//!   that fails;
//! - `GET /metrics`: the [`crate::metrics`] in the Prometheus text format.
//!
//! The web side on `http.listen` (web assets with the account's login
//! injected, RemoteApp files) is [`web`].
//!
//! Must never: answer anything but these three paths, show a secret, a
//! user's name or an address, or slow a session (a scrape reads counters
//! and asks the database one short query).

pub mod web;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::live;
use crate::metrics::Present;
use crate::services::{Services, StartError};

/// How long a readiness check waits for the database.
const DATABASE_WAIT: Duration = Duration::from_secs(2);

/// What the endpoints read.
#[derive(Clone)]
pub struct Ops {
    pub services: Services,
    pub live: live::Registry,
    /// The SSH listeners accept connections (set by the server once its
    /// accept loops run, cleared when it stops accepting).
    pub accepting: Arc<AtomicBool>,
}

/// Binds `http.metrics_listen`, if set.
pub async fn bind(services: &Services) -> Result<Option<TcpListener>, StartError> {
    let Some(addr) = services.config.http.metrics_listen else {
        return Ok(None);
    };
    let listener = TcpListener::bind(addr).await.map_err(|e| {
        StartError::Refused(format!(
            "cannot listen on {addr} (http.metrics_listen): {e}"
        ))
    })?;
    Ok(Some(listener))
}

/// Serves the ops endpoints until `stop`.
pub async fn serve(listener: TcpListener, ops: Ops, stop: CancellationToken) {
    let app = Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .with_state(ops);
    if let Err(e) = axum::serve(listener, app)
        .with_graceful_shutdown(stop.cancelled_owned())
        .await
    {
        tracing::error!("http.metrics_listen stopped: {e}");
    }
}

async fn healthz() -> &'static str {
    "ok\n"
}

async fn readyz(State(ops): State<Ops>) -> Response {
    let mut failing = Vec::new();
    if let Err(why) = database_answers(&ops.services).await {
        failing.push(format!("database: {why}"));
    }
    if let Err(why) = recordings_writable(&ops.services).await {
        failing.push(format!("recordings: {why}"));
    }
    if !ops.accepting.load(Ordering::Acquire) {
        failing.push("ssh: the listeners are not accepting connections".to_string());
    }
    if failing.is_empty() {
        (StatusCode::OK, "ready\n").into_response()
    } else {
        let text = format!("not ready\n{}\n", failing.join("\n"));
        (StatusCode::SERVICE_UNAVAILABLE, text).into_response()
    }
}

async fn database_answers(services: &Services) -> Result<(), String> {
    let ask = async {
        let mut conn = services.store.conn().await?;
        crate::store::change_counter(&mut conn).await
    };
    match tokio::time::timeout(DATABASE_WAIT, ask).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err(format!("no answer within {}s", DATABASE_WAIT.as_secs())),
    }
}

/// Creates, writes and removes a file in the recording dir.
async fn recordings_writable(services: &Services) -> Result<(), String> {
    let dir = services.config.recording_dir();
    let probe = dir.join(format!(".ready-{}", std::process::id()));
    let written = async {
        let mut file = tokio::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(&probe)
            .await?;
        tokio::io::AsyncWriteExt::write_all(&mut file, b"ready").await?;
        drop(file);
        tokio::fs::remove_file(&probe).await
    };
    written
        .await
        .map_err(|e| format!("cannot write in {}: {e}", dir.display()))
}

async fn metrics(State(ops): State<Ops>) -> Response {
    let services = &ops.services;
    let index_lag = match crate::search::status(&services.store).await {
        Ok(status) => status.behind_since.map_or(0.0, |since| {
            let lag = services.clock.now().duration_since(since);
            lag.as_secs_f64().max(0.0)
        }),
        Err(e) => {
            tracing::warn!("metrics: the indexer's status cannot be read: {e}");
            0.0
        }
    };
    let live = ops.live.list();
    let present = Present {
        live_bytes: live.iter().fold((0, 0), |(i, o), s| {
            (i.saturating_add(s.bytes_in), o.saturating_add(s.bytes_out))
        }),
        live: live.into_iter().map(|s| s.session.protocol).collect(),
        audit_queue: services.audit.queued(),
        index_lag,
    };
    let text = services.metrics.render(&present);
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        text,
    )
        .into_response()
}
