//! A desktop database tool through the person's tunnel: `ssh -L
//! 5432:pg1:5432 bastion` (with the `tunnel` action) to a port of a
//! database asset (PostgreSQL, MySQL/MariaDB, Redis) goes to the bastion's
//! wire proxy for that protocol, not to the server. The tool logs in with
//! a one-time password from `rampart db ticket pg1`
//! (bound to this person, this asset and one account, 60 s, one
//! connection); the proxy then logs in to the server with the account's
//! vaulted secret, so the tool never holds it. The connection is a session
//! like a shell's (row, live entry, kill, revocation, end) whose
//! statements are logged and judged on the wire; it is not recorded, as
//! there is no terminal to record.

use std::sync::{Arc, Mutex};

use futures_util::future::BoxFuture;
use russh::Channel;
use russh::server::Msg;
use tokio::sync::oneshot;

use super::{Conn, Shared};
use crate::db::client::Kind;
use crate::db::contract::Proof;
use crate::db::{self, Admitted, Login, Upstream, mysql, pg, redis};
use crate::model::Action;
use crate::policy::{Grant, TunnelGrant};
use crate::session::{self, Session};

/// A session opened by a login, handed to the tunnel's task.
struct Opened {
    session: Session,
    grant: Grant,
    statements: tokio::sync::mpsc::UnboundedReceiver<db::log::Logged>,
}

/// The tunnel's login: a ticket of this person for this asset.
struct TicketLogin<'a> {
    kind: Kind,
    server: db::server::Server,
    shared: &'a Arc<Shared>,
    conn: &'a Conn,
    tunnel: &'a TunnelGrant,
    opened: Mutex<Option<oneshot::Sender<Box<Opened>>>>,
}

/// Runs one tunnel channel to a database port through the proxy.
pub async fn run(shared: Arc<Shared>, conn: Arc<Conn>, channel: Channel<Msg>, tunnel: TunnelGrant) {
    let services = &shared.services;
    let Some(kind) = Kind::of_protocol(&tunnel.protocol().name) else {
        return;
    };
    let request = format!("db tunnel {}", tunnel.asset_name());
    let server =
        match db::server::of_asset(services, tunnel.asset_name(), &tunnel.protocol().name).await {
            Ok(server) => server,
            Err(text) => {
                super::refuse_log(&shared, &conn, &request, &text).await;
                let _ = channel.close().await;
                return;
            }
        };
    // Where the server is, before anyone is let in: a MySQL server greets
    // the client first.
    let address = Upstream {
        host: bare(tunnel.address()).to_string(),
        port: tunnel.protocol().port,
        user: String::new(),
        password: None,
        database: String::new(),
        connect_timeout: shared.upstream.connect_timeout,
        tls: server.tls.clone(),
    };
    let (tx, opened) = oneshot::channel();
    let login = TicketLogin {
        kind,
        server,
        shared: &shared,
        conn: &conn,
        tunnel: &tunnel,
        opened: Mutex::new(Some(tx)),
    };
    let stream = channel.into_stream();
    // Boxed so that it can be dropped (with the session's audit it holds)
    // before this function returns.
    let mut serving: BoxFuture<'_, Result<db::Summary, String>> = match kind {
        Kind::Postgres => Box::pin(async {
            pg::serve_login(stream, &login)
                .await
                .map_err(|e| e.to_string())
        }),
        Kind::Mysql => Box::pin(async {
            mysql::serve_login(stream, &address, &login)
                .await
                .map_err(|e| e.to_string())
        }),
        Kind::Redis => Box::pin(async {
            redis::serve_login(stream, &login)
                .await
                .map_err(|e| e.to_string())
        }),
    };
    // Until the login is decided, nothing but the proxy runs.
    let opened = tokio::select! {
        result = &mut serving => {
            if let Err(e) = result {
                let text = format!("database tunnel to {}: {e}", tunnel.asset_name());
                super::refuse_log(&shared, &conn, &request, &text).await;
            }
            return;
        }
        opened = opened => opened,
    };
    let Ok(opened) = opened else {
        return;
    };
    let Opened {
        session,
        grant,
        statements,
    } = *opened;
    let policy = shared.clone();
    let allowed = |now| {
        let snapshot = policy.policy();
        snapshot.recheck(&grant, Action::Connect, now).is_some()
            && snapshot.recheck_tunnel(&tunnel, now).is_some()
    };
    let relayed = async {
        let ended = tokio::select! {
            result = &mut serving => match result {
                Ok(summary) => (
                    "client closed".to_string(),
                    false,
                    (summary.bytes_from_client, summary.bytes_to_client),
                ),
                Err(e) => (format!("error: {e}"), true, (0, 0)),
            },
            stop = session.stopped(services, &shared.shutdown, allowed) => {
                (stop.reason(), false, session.live().bytes())
            }
        };
        // The proxy goes (with the session's audit it held), which ends
        // the statement writer below once it has written the rest.
        drop(serving);
        ended
    };
    let written =
        db::log::write_statements(services, session.rows(), session.recorder(), statements);
    let ((reason, failed, (bytes_in, bytes_out)), ()) = tokio::join!(relayed, written);
    session
        .end(
            services,
            session::Outcome {
                reason,
                failed,
                exit_status: None,
                bytes_in,
                bytes_out,
            },
        )
        .await;
}

/// An address without the brackets of an IPv6 literal.
fn bare(address: &str) -> &str {
    address.trim_start_matches('[').trim_end_matches(']')
}

impl Login for TicketLogin<'_> {
    fn admit<'a>(
        &'a self,
        _user: &'a str,
        proof: &'a Proof<'a>,
    ) -> BoxFuture<'a, Option<Admitted>> {
        Box::pin(async move {
            match self.admitted(proof).await {
                Ok(admitted) => Some(admitted),
                Err(text) => {
                    let request = format!("db tunnel {}", self.tunnel.asset_name());
                    super::refuse_log(self.shared, self.conn, &request, &text).await;
                    None
                }
            }
        })
    }
}

impl TicketLogin<'_> {
    /// The ticket the password redeems, the grant it stands for, the
    /// account's secret, and the session opened for it. `Err`: why not,
    /// for the refusal log (the tool is only told the password is wrong).
    async fn admitted(&self, proof: &Proof<'_>) -> Result<Admitted, String> {
        let shared = self.shared;
        let services = &shared.services;
        let asset = self.tunnel.asset_name();
        let protocol = self.tunnel.protocol().name.clone();
        let ticket = self.redeem(proof, &protocol).await?;
        let now = services.clock.now();
        let grant = shared
            .policy()
            .authorize(
                &self.conn.identity,
                asset,
                &ticket.account,
                &protocol,
                Action::Connect,
                now,
            )
            .ok_or_else(|| {
                format!(
                    "{asset}: the ticket's account {} is no longer granted",
                    ticket.account
                )
            })?;
        if grant.approval().is_some() && ticket.approved_by.is_none() {
            return Err(format!(
                "{asset}: the permission needs an approval the ticket does not carry"
            ));
        }
        let secret = super::target::target_secret(shared, &grant, None).await?;
        let password = secret
            .password(&grant, services.vault.as_ref())
            .map_err(|e| e.to_string())?;
        let spec = session::Spec::of_grant(&grant, &protocol, "tunnel", self.conn.peer.ip());
        let session = Session::open(services, &shared.live, spec)
            .await
            .map_err(|e| e.to_string())?;
        let policy_of = shared.clone();
        let (audit, statements) = db::log::SessionAudit::new(
            self.kind,
            Box::new(move || policy_of.policy()),
            grant.clone(),
            session.live().publisher(),
            shared.live.clone(),
            session.id().to_string(),
            services.config.auth.approval_timeout,
        );
        let upstream = Upstream {
            host: bare(grant.address()).to_string(),
            port: grant.protocol().port,
            user: grant.account().username().to_string(),
            password: Some(zeroize::Zeroizing::new(password.expose().to_string())),
            database: self.server.database.clone(),
            connect_timeout: shared.upstream.connect_timeout,
            tls: self.server.tls.clone(),
        };
        let sender = self.opened.lock().unwrap_or_else(|e| e.into_inner()).take();
        let opened = Box::new(Opened {
            session,
            grant,
            statements,
        });
        if let Some(Err(unsent)) = sender.map(|s| s.send(opened)) {
            let session = unsent.session;
            let outcome = session::Outcome {
                reason: "client closed".into(),
                failed: false,
                exit_status: None,
                bytes_in: 0,
                bytes_out: 0,
            };
            session.end(services, outcome).await;
            return Err(format!("{asset}: the tunnel closed while logging in"));
        }
        Ok(Admitted { upstream, audit })
    }

    /// Redeems the person's ticket for this asset whose password this is.
    async fn redeem(
        &self,
        proof: &Proof<'_>,
        protocol: &str,
    ) -> Result<crate::store::rdp_tickets::Ticket, String> {
        let services = &self.shared.services;
        let wrong = || "wrong, used or expired database ticket".to_string();
        let vault = services.vault.as_ref().ok_or_else(wrong)?;
        let mut c = services.store.conn().await.map_err(|e| e.to_string())?;
        let now = services.clock.now();
        let tickets = crate::store::rdp_tickets::valid(
            &mut c,
            &self.conn.identity.user_id,
            self.tunnel.asset_id(),
            protocol,
            now,
            crate::ops::TICKETS_PER_ASSET,
        )
        .await
        .map_err(|e| e.to_string())?;
        // Every candidate is opened and compared, so the time taken does
        // not say which one came closest.
        let mut found = None;
        for ticket in tickets {
            let Ok(secret) = vault.open_string(&ticket.secret) else {
                continue;
            };
            if proof.proves(secret.expose().as_bytes()) && found.is_none() {
                found = Some(ticket);
            }
        }
        let ticket = found.ok_or_else(wrong)?;
        let redeemed = crate::store::rdp_tickets::redeem(&mut c, &ticket.id, now)
            .await
            .map_err(|e| e.to_string())?;
        if !redeemed {
            return Err("the database ticket was used meanwhile".into());
        }
        Ok(ticket)
    }
}
