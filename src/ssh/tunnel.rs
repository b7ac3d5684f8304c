//! Tunnels: a `direct-tcpip` channel (`ssh -L`, `ssh -W`, `ssh -J`) to a
//! port an asset declares, with the `tunnel` action. The bastion opens the
//! TCP connection itself and copies bytes both ways; a tunnel is audited (a
//! session row of protocol and kind `tunnel` with who, when, where and the
//! bytes each way) but not recorded: what flows is the client's own protocol,
//! often encrypted end to end (`ssh -J` carries an SSH session the bastion
//! cannot see into). It is listed live, can be killed, and ends within a
//! second when the grant is revoked.

use std::sync::Arc;

use bytes::Bytes;
use russh::server::Msg;
use russh::{Channel, ChannelMsg};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::{Conn, Shared};
use crate::policy::TunnelGrant;
use crate::session::Session;

/// Copy buffer for target -> person.
const CHUNK: usize = 32 * 1024;

/// Runs one accepted tunnel channel to the end.
pub async fn run(shared: Arc<Shared>, conn: Arc<Conn>, channel: Channel<Msg>, grant: TunnelGrant) {
    // A database port goes through the bastion's wire proxy, so that a
    // desktop tool's statements are logged and judged like psql's.
    if crate::ops::TUNNELLED.contains(&grant.protocol().name.as_str()) {
        return super::db_tunnel::run(shared, conn, channel, grant).await;
    }
    let services = &shared.services;
    let address = grant
        .address()
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_string();
    let port = grant.protocol().port;
    let connecting = TcpStream::connect((address.as_str(), port));
    let stream = match tokio::time::timeout(shared.upstream.connect_timeout, connecting).await {
        Ok(Ok(s)) => s,
        failed => {
            let reason = match failed {
                Ok(Err(e)) => e.to_string(),
                _ => "no answer".to_string(),
            };
            super::refuse_log(
                &shared,
                &conn,
                &format!("direct-tcpip {}:{port}", grant.asset_name()),
                &format!(
                    "cannot reach {} ({address}:{port}): {reason}",
                    grant.asset_name()
                ),
            )
            .await;
            let _ = channel.close().await;
            return;
        }
    };
    let _ = stream.set_nodelay(true);

    let spec = crate::session::Spec {
        user_id: grant.user_id().to_string(),
        user_name: grant.user_name().to_string(),
        asset_id: grant.asset_id().to_string(),
        asset_name: grant.asset_name().to_string(),
        account: String::new(),
        live_account: Some(format!("port {port}")),
        protocol: "tunnel".into(),
        kind: "tunnel".into(),
        source: conn.peer.ip(),
        recording: None,
    };
    let session = match Session::open(services, &shared.live, spec).await {
        Ok(session) => session,
        Err(e) => {
            tracing::error!("cannot open the session of a tunnel: {e}");
            let _ = channel.close().await;
            return;
        }
    };
    tracing::info!(target: "audit", session = %session.id(), user = %grant.user_name(),
        asset = %grant.asset_name(), port, "tunnel opened");
    let live = session.live();

    let (mut tcp_read, mut tcp_write) = stream.into_split();
    let (mut read, write) = channel.split();
    // Person -> target.
    let down = async {
        while let Some(msg) = read.wait().await {
            match msg {
                ChannelMsg::Data { data } => {
                    live.add_in(data.len() as u64);
                    if tcp_write.write_all(&data).await.is_err() {
                        return "target closed";
                    }
                }
                ChannelMsg::Eof => {
                    let _ = tcp_write.shutdown().await;
                }
                ChannelMsg::Close => return "client closed",
                _ => {}
            }
        }
        "client closed"
    };
    // Target -> person.
    let up = async {
        let mut buf = vec![0u8; CHUNK];
        loop {
            match tcp_read.read(&mut buf).await {
                Ok(0) | Err(_) => {
                    let _ = write.eof().await;
                    return "target closed";
                }
                Ok(n) => {
                    live.add_out(n as u64);
                    if write
                        .data_bytes(Bytes::copy_from_slice(&buf[..n]))
                        .await
                        .is_err()
                    {
                        return "client closed";
                    }
                }
            }
        }
    };
    // Kill orders, revocation, shutdown.
    let watch = session.stopped(services, &shared.shutdown, |now| {
        shared.policy().recheck_tunnel(&grant, now).is_some()
    });
    // A tunnel ends when the person's side ends, or the target's side has
    // ended and everything it sent was passed on.
    let reason = tokio::select! {
        r = down => r.to_string(),
        r = up => r.to_string(),
        stop = watch => stop.reason(),
    };
    let _ = write.eof().await;
    let _ = write.close().await;
    session.end_counted(services, reason, false).await;
}
