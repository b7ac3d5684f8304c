//! A web visit: one person on one web asset as one account, from the
//! one-time link to its end, as a session like any other (row, live
//! entry, kill, revocation, shutdown: `session`). Its requests are its
//! command rows (`GET /path -> 200`), and monitors see them as lines.
//!
//! A visit ends when staff kill it, its permission ends, the bastion
//! shuts down, or no request came for `http.idle_timeout`; its cookie
//! stops working at once (within [`session::RECHECK`] of the order), and
//! its WebSocket tunnels close.
//!
//! Must never: open a visit from a link that is spent, expired, another
//! person's or another asset's; show the browser the account's secret or
//! the site's cookies.

use std::collections::HashMap;
use std::future::Future as _;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{HeaderName, HeaderValue, Request, Response, StatusCode, header};
use bytes::Bytes;
use sha2::{Digest, Sha256};
use tokio::sync::oneshot;

use super::client::Client;
use super::contract::{RequestLog, Site};
use super::front::{COOKIE, Web, page};
use super::proxy::{Exchange, forward};
use crate::audit::AuditEvent;
use crate::model::{Action, Identity, Role, WebLogin};
use crate::policy::{Grant, GrantAccount};
use crate::session::{self, Command, Rows, Session, Spec, Stop};

/// How long the server-side form login may take.
const LOGIN_WAIT: Duration = Duration::from_secs(20);

/// The open visits, by the bastion cookie's value.
#[derive(Default)]
pub struct Visits(Mutex<HashMap<String, Arc<Visit>>>);

impl Visits {
    pub fn get(&self, cookie: &str) -> Option<Arc<Visit>> {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(cookie)
            .cloned()
    }

    fn insert(&self, cookie: String, visit: Arc<Visit>) {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(cookie, visit);
    }

    fn remove(&self, cookie: &str) {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(cookie);
    }

    /// How many visits are open.
    pub fn len(&self) -> usize {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// One open visit.
pub struct Visit {
    asset: String,
    client: Client,
    inject: Vec<(HeaderName, HeaderValue)>,
    public_origin: String,
    allow_upload: bool,
    allow_download: bool,
    rows: Rows,
    live: crate::live::Publisher,
    started: Instant,
    /// Milliseconds from `started` to the last request.
    last: AtomicU64,
    /// Ends the visit's WebSocket tunnels and in-flight answers.
    ended: tokio_util::sync::CancellationToken,
}

impl Visit {
    /// Whether this visit is of `asset` (a host's label).
    pub fn is_for(&self, asset: &str) -> bool {
        self.asset.eq_ignore_ascii_case(asset)
    }

    /// Forwards one request of the visit through its proxy, and logs it.
    pub async fn forward(self: &Arc<Self>, web: &Arc<Web>, req: Request<Body>) -> Response<Body> {
        self.touch();
        let ex = Exchange {
            public_origin: &self.public_origin,
            inject: &self.inject,
            bastion_cookie: COOKIE,
            allow_upload: self.allow_upload,
            allow_download: self.allow_download,
            ended: &self.ended,
        };
        let visit = self.clone();
        let services = web.context.services.clone();
        let log = Box::new(move |line: RequestLog| visit.log(&services, line));
        let answer = tokio::select! {
            answer = forward(&self.client, req, &ex, log) => answer,
            () = self.ended.cancelled() => return page(StatusCode::GONE, "this visit has ended"),
        };
        // A download still streaming when the visit ends is cut there.
        let ended = Box::pin(self.ended.clone().cancelled_owned());
        answer.map(|inner| Body::new(Until { inner, ended }))
    }

    fn touch(&self) {
        let now = u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last.store(now, Ordering::Relaxed);
    }

    fn idle_for(&self) -> Duration {
        let last = Duration::from_millis(self.last.load(Ordering::Relaxed));
        self.started.elapsed().saturating_sub(last)
    }

    /// The request's command row and its line for monitors.
    fn log(&self, services: &crate::services::Services, line: RequestLog) {
        self.live.add_in(line.bytes_in);
        self.live.add_out(line.bytes_out);
        let summary = format!(
            "{} {} -> {} ({} B in, {} B out, {} ms)",
            line.method,
            line.path,
            line.status,
            line.bytes_in,
            line.bytes_out,
            line.duration.as_millis()
        );
        self.live
            .publish(Bytes::from(format!("{summary}\r\n").into_bytes()));
        let output = match &line.refused {
            Some(why) => format!("{summary}\nrefused: {why}\n{}", line.body),
            None => format!("{summary}\n{}", line.body),
        };
        let command = Command {
            offset: self.started.elapsed(),
            command: format!("{} {}", line.method, line.path),
            output,
            action: if line.refused.is_some() {
                "deny"
            } else {
                "allow"
            }
            .into(),
            rule: line.refused,
        };
        services
            .audit
            .queue(self.rows.command(command), services.clock.now());
    }
}

/// An answer's body, cut when its visit ends.
struct Until {
    inner: Body,
    ended: std::pin::Pin<Box<tokio_util::sync::WaitForCancellationFutureOwned>>,
}

impl http_body::Body for Until {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Bytes>, axum::Error>>> {
        let this = self.get_mut();
        if this.ended.as_mut().poll(cx).is_ready() {
            return std::task::Poll::Ready(Some(Err(axum::Error::new("the visit has ended"))));
        }
        std::pin::Pin::new(&mut this.inner).poll_frame(cx)
    }
}

/// Opens a visit from the link's `token` (`ID.SECRET`) for `asset`, and
/// answers with the bastion's cookie and a redirect to the site's start;
/// any refusal reads the same to the browser, the reason goes to the log.
pub async fn open(web: &Arc<Web>, asset: &str, token: &str, peer: SocketAddr) -> Response<Body> {
    let refused = || {
        page(
            StatusCode::FORBIDDEN,
            "this link is used, expired or not yours: get a new one with `ssh BASTION rampart web link ASSET`",
        )
    };
    let admitted = match redeem(web, asset, token).await {
        Ok(admitted) => admitted,
        // A link that names no live ticket is anybody's guess: logged, not
        // audited, so strangers cannot fill the audit log.
        Err(Refusal::Unknown(why)) => {
            tracing::info!(%peer, asset, "web link refused: {why}");
            return refused();
        }
        Err(Refusal::Ticket { user, why }) => {
            refuse(web, &user, peer, &format!("web link for {asset}"), &why).await;
            return refused();
        }
    };
    let (tx, rx) = oneshot::channel();
    let web2 = web.clone();
    web.context.tracker.spawn(async move {
        run(web2, admitted, peer, tx).await;
    });
    match rx.await {
        Ok(Ok((cookie, start))) => {
            let mut response = Response::new(Body::empty());
            *response.status_mut() = StatusCode::SEE_OTHER;
            let headers = response.headers_mut();
            let set = format!("{COOKIE}={cookie}; Path=/; Secure; HttpOnly; SameSite=Lax");
            if let (Ok(set), Ok(location)) =
                (HeaderValue::from_str(&set), HeaderValue::from_str(&start))
            {
                headers.insert(header::SET_COOKIE, set);
                headers.insert(header::LOCATION, location);
            }
            headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            response
        }
        Ok(Err(text)) => page(StatusCode::BAD_GATEWAY, &text),
        Err(_) => page(
            StatusCode::SERVICE_UNAVAILABLE,
            "the visit could not be opened; try a new link",
        ),
    }
}

/// A redeemed link: who, on what, as which account, over which protocol.
struct Admitted {
    grant: Grant,
}

/// Why a link was refused.
enum Refusal {
    /// It names no unspent, unexpired ticket (or the store failed).
    Unknown(String),
    /// It names one, of this person (by name, or `-`), and failed.
    Ticket { user: String, why: String },
}

/// Checks and spends the link: the ticket must be unspent, unexpired, for
/// this asset over the web, its secret right; then the person must still
/// be allowed.
async fn redeem(web: &Web, asset: &str, token: &str) -> Result<Admitted, Refusal> {
    let services = &web.context.services;
    let unknown = |why: &str| Refusal::Unknown(why.to_string());
    let (id, secret) = token
        .split_once('.')
        .ok_or_else(|| unknown("the link is malformed (no secret)"))?;
    let now = services.clock.now();
    let mut conn = services
        .store
        .conn()
        .await
        .map_err(|e| unknown(&e.to_string()))?;
    let ticket = crate::store::rdp_tickets::unspent(&mut conn, id, now)
        .await
        .map_err(|e| unknown(&e.to_string()))?
        .ok_or_else(|| unknown("no unspent, unexpired link with this id"))?;
    let policy = web.context.policy();
    let user = policy
        .user_by_id(&ticket.user_id)
        .map_or_else(|| "-".to_string(), |u| u.name.to_string());
    let failed = |why: String| Refusal::Ticket {
        user: user.clone(),
        why,
    };
    let info = policy
        .asset_by_id(&ticket.asset_id)
        .ok_or_else(|| failed("the link's asset no longer exists".into()))?;
    if !info.name().eq_ignore_ascii_case(asset)
        || !crate::ops::WEB_PROTOCOLS.contains(&ticket.protocol.as_str())
    {
        return Err(failed(format!(
            "the link is for {} and not this asset",
            info.name()
        )));
    }
    let vault = services
        .vault
        .as_ref()
        .ok_or_else(|| failed("the vault is not open".into()))?;
    let expected = vault
        .open_string(&ticket.secret)
        .map_err(|_| failed("the link's secret cannot be read".into()))?;
    if Sha256::digest(expected.expose().as_bytes()) != Sha256::digest(secret.as_bytes()) {
        return Err(failed("wrong secret for the link".into()));
    }
    if !crate::store::rdp_tickets::redeem(&mut conn, &ticket.id, now)
        .await
        .map_err(|e| failed(e.to_string()))?
    {
        return Err(failed("the link was used meanwhile".into()));
    }
    let person = policy
        .user_by_id(&ticket.user_id)
        .filter(|u| u.is_live_at(now))
        .ok_or_else(|| failed("the link's person is disabled or gone".into()))?;
    let who = Identity {
        user_id: ticket.user_id.clone(),
        name: person.name.to_string(),
        role: Role::User,
        groups: Vec::new(),
    };
    let grant = session::authorize(
        &policy,
        &who,
        info.name(),
        &ticket.account,
        &ticket.protocol,
        &[Action::Connect],
        now,
    )
    .map_err(|_| failed(format!("{} may not use {} any more", who.name, info.name())))?;
    // A link carries no administrator's approval: a permission that came
    // to need one since the link was issued admits nothing through it.
    if let Some(permission) = grant.approval() {
        return Err(failed(format!(
            "permission {permission} needs an administrator's approval for each connection"
        )));
    }
    Ok(Admitted { grant })
}

/// What the visit's opening tells the link's request: the cookie and
/// where to go, or the line for the person.
type Opened = Result<(String, String), String>;

/// The visit's task: opens it (login to the site, session), reports to
/// the link's request, then waits for its end and ends it.
async fn run(web: Arc<Web>, admitted: Admitted, peer: SocketAddr, tx: oneshot::Sender<Opened>) {
    let ctx = &web.context;
    let services = &ctx.services;
    let grant = admitted.grant;
    let request = format!(
        "web {} as {}",
        grant.asset_name(),
        grant.account().username()
    );
    let max = services.config.ssh.max_sessions_per_user;
    let Some(_slot) = ctx.user_sessions.take(grant.user_id(), max) else {
        let why = format!("{max} sessions open already (ssh.max_sessions_per_user)");
        refuse(&web, grant.user_name(), peer, &request, &why).await;
        let _ = tx.send(Err(format!("you have {why}")));
        return;
    };
    let prepared = match prepare(&web, &grant).await {
        Ok(p) => p,
        Err(why) => {
            refuse(&web, grant.user_name(), peer, &request, &why).await;
            let _ = tx.send(Err(why));
            return;
        }
    };
    let spec = Spec::of_grant(&grant, grant.protocol().name.as_str(), "web", peer.ip());
    let session = match Session::open(services, &ctx.live, spec).await {
        Ok(s) => s,
        Err(e) => {
            refuse(&web, grant.user_name(), peer, &request, &e.to_string()).await;
            let _ = tx.send(Err(e.to_string()));
            return;
        }
    };
    let now = services.clock.now();
    let policy = ctx.policy();
    let may = |action| policy.recheck(&grant, action, now).is_some();
    let visit = Arc::new(Visit {
        asset: grant.asset_name().to_string(),
        client: prepared.client,
        inject: prepared.inject,
        public_origin: web.base.origin(grant.asset_name()),
        allow_upload: may(Action::Upload),
        allow_download: may(Action::Download),
        rows: session.rows().clone(),
        live: session.live().publisher(),
        started: Instant::now(),
        last: AtomicU64::new(0),
        ended: tokio_util::sync::CancellationToken::new(),
    });
    let cookie = new_cookie();
    web.visits.insert(cookie.clone(), visit.clone());
    tracing::info!(target: "audit", session = %session.id(), user = %grant.user_name(),
        asset = %grant.asset_name(), "web visit opened");
    if tx.send(Ok((cookie.clone(), prepared.start))).is_err() {
        // The browser went before it got its cookie: nobody can use it.
        web.visits.remove(&cookie);
        visit.ended.cancel();
        session
            .end_counted(services, "client closed".into(), false)
            .await;
        return;
    }
    let reason = watch(&web, &grant, &session, &visit).await;
    web.visits.remove(&cookie);
    visit.ended.cancel();
    session.end_counted(services, reason, false).await;
}

/// Waits for the visit's end: stopped by the bastion, or idle.
async fn watch(web: &Web, grant: &Grant, session: &Session, visit: &Visit) -> String {
    let ctx = &web.context;
    let idle = ctx.services.config.http.idle_timeout;
    let allowed = |now| ctx.policy().recheck(grant, Action::Connect, now).is_some();
    let idled = async {
        loop {
            let left = idle.saturating_sub(visit.idle_for());
            if left.is_zero() {
                return;
            }
            tokio::time::sleep(left.max(session::RECHECK)).await;
        }
    };
    tokio::select! {
        stop = session.stopped(&ctx.services, &ctx.shutdown, allowed) => {
            if let Stop::Killed { by, .. } = &stop {
                tracing::info!(target: "audit", session = %session.id(), by, "web visit killed");
            }
            stop.reason()
        }
        () = idled => "idle timeout".into(),
    }
}

/// What a visit needs before it opens: the site's client, logged in.
struct Prepared {
    client: Client,
    inject: Vec<(HeaderName, HeaderValue)>,
    /// Where the browser goes first (the site's start path).
    start: String,
}

/// Reads the asset's site and the account's login and secret, and logs
/// in to the site (a `form:` login), so the browser arrives logged in.
async fn prepare(web: &Web, grant: &Grant) -> Result<Prepared, String> {
    let services = &web.context.services;
    let (asset, account) = {
        let mut c = services.store.conn().await.map_err(|e| e.to_string())?;
        let asset = crate::store::assets::find(&mut c, grant.asset_name())
            .await
            .map_err(|e| e.to_string())?
            .ok_or("the asset is gone")?;
        let account = crate::store::accounts::find(&mut c, &asset.id, grant.account().username())
            .await
            .map_err(|e| e.to_string())?;
        (asset, account)
    };
    let site = Site::parse(&asset.url).map_err(|e| format!("the asset's url: {e}"))?;
    let login = account.map(|a| a.web_login).unwrap_or_default();
    let secret = match (&login, grant.account()) {
        (WebLogin::None, _) => None,
        (_, GrantAccount::Stored { account_id, .. }) => Some(secret(web, account_id).await?),
        _ => return Err("the account's secret is not stored on the bastion".into()),
    };
    let tls = super::client_tls(services, &asset.id, &asset.name, site.https).await?;
    let client = Client::new(site.clone(), tls, services.clock.clone());
    let user = grant.account().username();
    let inject = match &secret {
        Some(secret) => super::login::headers(&login, user, secret)?,
        None => Vec::new(),
    };
    if let (WebLogin::Form(form), Some(secret)) = (&login, &secret) {
        let logged_in = tokio::time::timeout(
            LOGIN_WAIT,
            super::login::form_login(&client, form, user, secret),
        );
        match logged_in.await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Err(format!("the login to {} failed: {e}", asset.name)),
            Err(_) => {
                return Err(format!(
                    "the login to {} took over {}s",
                    asset.name,
                    LOGIN_WAIT.as_secs()
                ));
            }
        }
    }
    Ok(Prepared {
        client,
        inject,
        start: site.start,
    })
}

async fn secret(web: &Web, account_id: &str) -> Result<crate::vault::Secret<String>, String> {
    let services = &web.context.services;
    let read = async {
        let mut c = services.store.conn().await.ok()?;
        let (_, sealed) = crate::store::accounts::secret(&mut c, account_id)
            .await
            .ok()?;
        services.vault.as_ref()?.open_string(&sealed?).ok()
    };
    read.await
        .ok_or_else(|| "the account's secret cannot be read".to_string())
}

/// A fresh cookie value: 256 random bits, base64url.
fn new_cookie() -> String {
    use base64::Engine as _;
    let bytes: [u8; 32] = rand::random();
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

async fn refuse(web: &Web, user: &str, peer: SocketAddr, request: &str, reason: &str) {
    tracing::info!(target: "audit", user, %peer, request, reason, "web refused");
    let event = AuditEvent::Refusal {
        user_name: user.to_string(),
        source: peer.ip().to_string(),
        request: request.to_string(),
        reason: reason.to_string(),
    };
    let services = &web.context.services;
    crate::audit::record_alone(&services.store, services.clock.now(), &event).await;
}
