//! A database asked for over SSH: `ssh -t bastion pg1`, or the database
//! picked in the menu. The person gets the database's own client (`psql`)
//! on their terminal, run by the bastion in a sandboxed pty against the
//! session's wire proxy ([`crate::db`]). The session is the same as a
//! shell's: admitted (grant, approval, cap), recorded, live (monitor,
//! join, kill), cut off on revocation, and ended with its row and chain
//! entry; its statements are logged and filtered on the wire.

use std::sync::Arc;

use super::target::{self, Choice, Ended, PersonChannel, Run, Say};
use super::{Conn, Shared};
use crate::db;
use crate::relay::{self, EndReason, Hooks};
use crate::session::{self, Session};

/// The database protocols the bastion runs a client for.
pub const CLIENT_PROTOCOLS: &[&str] = &["postgresql", "mysql", "mariadb", "redis"];

/// A session on a target, a database client, or for a desktop a ticket:
/// for a jump and for the menu.
pub async fn run_session(
    shared: &Arc<Shared>,
    conn: &Conn,
    choice: Choice,
    run: Run,
    person: &mut PersonChannel<'_>,
) -> Ended {
    if let Some(ended) = desktop_tool(shared, conn, &choice, person).await {
        return ended;
    }
    if let Some(ended) = super::web::link_instead(shared, conn, &choice, &run, person).await {
        return ended;
    }
    match database_protocol(shared, conn, &choice) {
        Some(protocol) => match db::client::Kind::of_protocol(protocol) {
            Some(kind) => run_client(shared, conn, choice, run, protocol, kind, person).await,
            None => super::desktop::run_session(shared, conn, choice, run, person).await,
        },
        None => super::desktop::run_session(shared, conn, choice, run, person).await,
    }
}

/// A one-time password for a desktop tool, picked in the menu: shown
/// until a key. `None`: not that choice.
async fn desktop_tool(
    shared: &Shared,
    conn: &Conn,
    choice: &Choice,
    person: &mut PersonChannel<'_>,
) -> Option<Ended> {
    choice
        .protocol
        .as_deref()
        .and_then(crate::tui::menu::of_desktop_tool)?;
    let say = Say {
        write: person.write,
        pty: person.pty.is_some(),
    };
    let ops = &shared.services.ops;
    let asset = &choice.asset;
    let issued = async {
        let caller = ops.caller(&conn.identity, crate::audit::Via::Ssh).await?;
        let ticket = ops
            .db_ticket(&caller, asset, choice.account.as_deref())
            .await?;
        Ok::<_, crate::ops::OpsError>(crate::cli::db_ticket_text(
            &shared.services,
            &caller,
            &ticket,
        ))
    };
    match issued.await {
        Ok(text) => Some(super::desktop::show_ticket(person, say, text).await),
        Err(e) => {
            let text = format!("rampart: {asset}: {e}");
            say.refused(shared, conn, &format!("db ticket {asset}"), text)
                .await;
            Some(Ended::refused())
        }
    }
}

/// The database protocol the person asked for: the one picked in a
/// chooser, or the asset's when it offers no SSH.
fn database_protocol(shared: &Shared, conn: &Conn, choice: &Choice) -> Option<&'static str> {
    let now = shared.services.clock.now();
    let visible = shared
        .policy()
        .visible_asset(&conn.identity, &choice.asset, now)?;
    let offered = |name: &str| visible.protocols().any(|p| p.name == name);
    if let Some(chosen) = choice.protocol.as_deref() {
        return CLIENT_PROTOCOLS
            .iter()
            .find(|p| **p == chosen && offered(p))
            .copied();
    }
    if offered("ssh") {
        return None;
    }
    CLIENT_PROTOCOLS.iter().find(|p| offered(p)).copied()
}

#[allow(clippy::too_many_arguments)]
async fn run_client(
    shared: &Arc<Shared>,
    conn: &Conn,
    choice: Choice,
    run: Run,
    protocol: &str,
    kind: db::client::Kind,
    person: &mut PersonChannel<'_>,
) -> Ended {
    let say = Say {
        write: person.write,
        pty: person.pty.is_some(),
    };
    let asset = choice.asset.clone();
    if let Run::Exec(_) = run {
        let text = format!(
            "rampart: {asset} is a database: `ssh -t bastion {asset}` opens its client ({})",
            kind.program()
        );
        say.refused(shared, conn, &format!("exec on {asset}"), text)
            .await;
        return Ended::refused();
    }
    let Some(pty) = person.pty.cloned() else {
        let text =
            format!("rampart: {asset}: its client needs a terminal: `ssh -t bastion {asset}`");
        say.refused(shared, conn, &format!("connect {asset}"), text)
            .await;
        return Ended::refused();
    };
    let Some(admitted) = target::admit(
        shared,
        conn,
        &asset,
        choice.account,
        &run,
        protocol,
        person,
        say,
    )
    .await
    else {
        return Ended::refused();
    };
    let grant = &admitted.grant;
    let services = &shared.services;
    let password = match target::target_secret(shared, grant, choice.input_password).await {
        Ok(secret) => match secret.password(grant, services.vault.as_ref()) {
            Ok(password) => password,
            Err(e) => {
                say.line(format!("rampart: {e}")).await;
                return Ended::refused();
            }
        },
        Err(line) => {
            say.line(format!("rampart: {line}")).await;
            return Ended::refused();
        }
    };
    let server = match db::server::of_asset(services, grant.asset_name(), protocol).await {
        Ok(server) => server,
        Err(line) => {
            say.line(format!("rampart: {line}")).await;
            return Ended::refused();
        }
    };
    let database = server.database;
    let mut session = match Session::open(
        services,
        &shared.live,
        target::spec(conn, grant, &run, Some(&pty)),
    )
    .await
    {
        Ok(session) => session,
        Err(refused) => {
            say.line(format!("rampart: {refused}")).await;
            return Ended::refused();
        }
    };
    if session.unrecorded() {
        say.line("rampart: warning: this session is not recorded (the recording cannot be written); it is still audited").await;
    }
    let rows = session.rows().clone();
    let policy_of = shared.clone();
    let (audit, statements) = db::log::SessionAudit::new(
        kind,
        Box::new(move || policy_of.policy()),
        grant.clone(),
        session.live().publisher(),
        shared.live.clone(),
        session.id().to_string(),
        services.config.auth.approval_timeout,
    );
    let (cols, rows_) = relay::terminal_size(pty.cols, pty.rows);
    let start = db::client::Start {
        kind,
        session_id: session.id(),
        clients: &services.config.clients,
        upstream: db::Upstream {
            host: grant.address().to_string(),
            port: grant.protocol().port,
            user: grant.account().username().to_string(),
            password: Some(zeroize::Zeroizing::new(password.expose().to_string())),
            database: database.clone(),
            connect_timeout: shared.upstream.connect_timeout,
            tls: server.tls,
        },
        account: grant.account().username(),
        database: &database,
        env: client_env(&pty, person.env),
        cols: cols as u16,
        rows: rows_ as u16,
    };
    let client = match db::client::start(start, audit) {
        Ok(client) => client,
        Err(e) => {
            tracing::error!("database client for {asset}: {e}");
            say.line(format!("rampart: {asset}: {e}")).await;
            let closing = session.finish_recording().await;
            let outcome = relay::Outcome {
                reason: EndReason::Error(e.to_string()),
                exit_status: None,
                bytes_in: 0,
                bytes_out: 0,
                client_open: true,
                size: None,
            };
            return target::conclude(services, closing, outcome, say, None).await;
        }
    };
    // The session is open: the login no longer counts as in progress (its
    // own output would give way to it otherwise).
    conn.arrival.done();
    let outcome = pump(
        shared,
        person,
        &admitted,
        &mut session,
        client,
        statements,
        &rows,
    )
    .await;
    let closing = session.finish_recording().await;
    target::conclude(services, closing, outcome, say, None).await
}

/// TERM and the locale of the person's client: nothing else of theirs
/// reaches the client's environment.
fn client_env(pty: &target::Pty, env: &[(String, String)]) -> Vec<(String, String)> {
    let mut out = vec![("TERM".to_string(), pty.term.clone())];
    out.extend(
        env.iter()
            .filter(|(name, _)| name == "LANG" || name.starts_with("LC_"))
            .cloned(),
    );
    out
}

/// Pumps the person's channel and the client's terminal until either
/// ends, while the statements the proxy logs are written; then the client
/// and its proxy are stopped.
async fn pump(
    shared: &Arc<Shared>,
    person: &mut PersonChannel<'_>,
    admitted: &target::Admitted<'_>,
    session: &mut Session,
    mut client: db::client::Client,
    statements: tokio::sync::mpsc::UnboundedReceiver<db::log::Logged>,
    rows: &session::Rows,
) -> relay::Outcome {
    let services = &shared.services;
    let policy_of = shared.clone();
    let policy_fn = move || policy_of.policy();
    let (recorder, live) = session.recorder_and_live();
    let relayed = async {
        let outcome = relay::pump(
            person.read,
            person.write,
            person.handle,
            person.id,
            &mut client.output,
            &client.terminal,
            Hooks {
                services,
                policy: &policy_fn,
                grant: &admitted.grant,
                rows,
                recorder,
                tracker: None,
                live,
                shutdown: &shared.shutdown,
                idle_timeout: services.config.ssh.idle_timeout,
                recording_optional: services.config.recording.on_failure
                    == crate::config::OnFailure::Allow,
                end: person.end,
                actions: &admitted.actions,
                tap: None,
                arrival: None,
                record_stdout: true,
                terminal: true,
            },
        )
        .await;
        client.stop().await;
        outcome
    };
    let written = db::log::write_statements(services, rows, recorder, statements);
    let (outcome, ()) = tokio::join!(relayed, written);
    outcome
}
