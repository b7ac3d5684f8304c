//! `rampart serve`: the SSH front door until SIGTERM or SIGINT, plus the
//! demo target with `--demo`. The binary opens (or initialises) the data dir
//! and hands the services over; the ops CLI never starts a server.

use std::net::SocketAddr;

use crate::audit::Via;
use crate::demo::DemoTarget;
use crate::model::Role;
use crate::ops::{Caller, DEMO_ACCOUNT};
use crate::services::{Services, StartError, write_host_key};
use crate::ssh::Server;

/// Runs until a signal, then shuts down gracefully.
pub async fn serve(services: Services, demo: bool) -> Result<(), StartError> {
    let demo_target = if demo {
        Some(start_demo(&services).await?)
    } else {
        None
    };
    crate::alloc::release_periodically();
    let server = Server::new(services.clone()).await?;
    let listeners = server.bind().await?;
    for l in &listeners {
        if let Ok(addr) = l.local_addr() {
            tracing::info!("rampart listening on {addr}");
            eprintln!("rampart: listening on {addr}");
        }
    }
    if let Some(d) = &demo_target {
        eprintln!(
            "rampart: demo target on {} (asset `demo`, reachable by admin)",
            d.addr
        );
    }
    server.run(listeners, signal()).await?;
    if let Some(d) = demo_target {
        d.stop();
    }
    services.store.close().await;
    Ok(())
}

/// Starts the demo target on a free loopback port and registers it.
pub async fn start_demo(services: &Services) -> Result<DemoTarget, StartError> {
    let key_path = services.config.data_dir().join("demo_host_key");
    if !key_path.exists() {
        write_host_key(&key_path)?;
    }
    let key = russh::keys::load_secret_key(&key_path, None)
        .map_err(|e| StartError::Refused(format!("demo host key {}: {e}", key_path.display())))?;
    let password = crate::auth::generate_one_time_password();
    let bind: SocketAddr = ([127, 0, 0, 1], 0).into();
    let target = DemoTarget::start(bind, DEMO_ACCOUNT, password.clone(), key)
        .await
        .map_err(|e| StartError::Refused(format!("cannot start the demo target: {e}")))?;
    let caller = Caller {
        name: "rampart-demo".into(),
        role: Role::Admin,
        via: Via::Cli,
    };
    services
        .ops
        .demo_register(&caller, target.addr.port(), &password)
        .await?;
    Ok(target)
}

/// Resolves on SIGTERM or SIGINT.
async fn signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        () = ctrl_c => {}
        () = term => {}
    }
}
