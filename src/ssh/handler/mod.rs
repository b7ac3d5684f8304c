//! The russh `Handler`: authentication callbacks and channel opening. It
//! stays thin: every decision is `auth::login::Authenticator`'s, and every
//! accepted session channel is handed to its own task
//! ([`super::channel::run`]) which drains it in order.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use russh::keys::PublicKey;
use russh::server::{
    Auth, ChannelOpenHandle, Msg, PublicKeyOffer, Response, Session, VerifiedPublicKey,
};
use russh::{Channel, ChannelId, ChannelOpenFailure};
use tokio::sync::mpsc;

use super::request::{self, Answer, ChannelRequests};
use super::{Conn, Shared, refuse_log};
use crate::auth::gate::Place;
use crate::auth::login::Proof;
use crate::route;
use crate::vault::Secret;

mod login;

use login::{Asking, Stage};

pub struct Handler {
    shared: Arc<Shared>,
    peer: SocketAddr,
    stage: Stage,
    /// Set when authentication completes; channels get a clone.
    conn: Option<Arc<Conn>>,
    /// A new password typed once, waiting for its confirmation.
    new_password: Option<Secret<String>>,
    /// Set by a keyboard-interactive round: what the next answer is for.
    asking: Asking,
    /// Tells the connection task the login deadline no longer applies.
    authenticated: Arc<std::sync::atomic::AtomicBool>,
    /// This connection's place among its source's connections that have not
    /// logged in (`super::MAX_UNAUTHENTICATED_PER_SOURCE`), given back at
    /// login.
    unauthenticated: Option<Place<IpAddr>>,
    /// Open session channels and tunnels of this connection.
    sessions: Arc<AtomicUsize>,
    tunnels: Arc<AtomicUsize>,
    /// A refusal for too many channels is logged once per connection (a
    /// client opening 10,000 must not write 10,000 audit rows).
    over_cap_logged: bool,
    /// Each open session channel's requests so far, and where its task
    /// reads the answers given to them ([`super::request`]).
    channels:
        std::collections::HashMap<ChannelId, (ChannelRequests, mpsc::UnboundedSender<Answer>)>,
}

/// Session channels per connection, as OpenSSH's `MaxSessions` default.
pub const MAX_SESSIONS: usize = 10;
/// Tunnel channels per connection (a browser behind `ssh -L` opens many).
pub const MAX_TUNNELS: usize = 256;

/// The channels a connection's count caps.
#[derive(Debug, Clone, Copy)]
enum Kind {
    Session,
    Tunnel,
}

/// One open channel's place in its connection's count, given back when the
/// channel's task ends.
pub struct ChannelSlot(Arc<AtomicUsize>);

impl ChannelSlot {
    fn take(count: &Arc<AtomicUsize>, max: usize) -> Option<ChannelSlot> {
        count
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < max).then_some(n + 1)
            })
            .ok()
            .map(|_| ChannelSlot(count.clone()))
    }
}

impl Drop for ChannelSlot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Handler {
    pub fn new(
        shared: Arc<Shared>,
        peer: SocketAddr,
        authenticated: Arc<std::sync::atomic::AtomicBool>,
        unauthenticated: Place<IpAddr>,
    ) -> Handler {
        Handler {
            shared,
            peer,
            stage: Stage::Start,
            conn: None,
            new_password: None,
            asking: Asking::Nothing,
            authenticated,
            unauthenticated: Some(unauthenticated),
            sessions: Arc::default(),
            tunnels: Arc::default(),
            over_cap_logged: false,
            channels: std::collections::HashMap::new(),
        }
    }

    /// Answers one request of a session channel now, while russh's
    /// want-reply flag is this request's own, and hands the answer to the
    /// channel's task in the same order ([`super::request`]). After a
    /// shell, exec or subsystem started, every further such request is
    /// refused, and the task is not told (it is no longer reading answers).
    fn answer(
        &mut self,
        channel: ChannelId,
        session: &mut Session,
        decide: impl FnOnce(&mut ChannelRequests) -> Answer,
    ) -> Result<(), russh::Error> {
        let Some((state, answers)) = self.channels.get_mut(&channel) else {
            return session.channel_failure(channel);
        };
        if state.started {
            return session.channel_failure(channel);
        }
        state.setup += 1;
        if state.setup > request::MAX_SETUP_REQUESTS {
            // The task closes the channel when it reads this answer.
            session.channel_failure(channel)?;
            let _ = answers.send(Answer::StartRefused {
                request: "request",
                reason: format!(
                    "more than {} requests before a session on one channel",
                    request::MAX_SETUP_REQUESTS
                ),
            });
            return Ok(());
        }
        let answer = decide(state);
        let end = if state.pty { "\r\n" } else { "\n" };
        match &answer {
            Answer::Taken => session.channel_success(channel)?,
            Answer::Start(_) => {
                state.started = true;
                session.channel_success(channel)?;
            }
            Answer::Refused { reason, .. } => {
                session.extended_data(channel, 1, format!("rampart: {reason}{end}"))?;
                session.channel_failure(channel)?;
            }
            Answer::StartRefused { reason, .. } => {
                session.extended_data(channel, 1, format!("{reason}{end}"))?;
                session.channel_failure(channel)?;
            }
        }
        let _ = answers.send(answer);
        Ok(())
    }

    /// The answer to a shell, exec or subsystem request.
    fn answer_start(
        &mut self,
        channel: ChannelId,
        session: &mut Session,
        request: impl FnOnce(bool) -> route::Request,
    ) -> Result<(), russh::Error> {
        let (shared, conn) = (self.shared.clone(), self.conn.clone());
        self.answer(channel, session, |state| {
            let request = request(state.pty);
            let name = request::name(&request);
            let decided = match &conn {
                Some(conn) => request::start(&shared, conn, &request),
                None => Err("rampart: not logged in".into()),
            };
            match decided {
                Ok(intent) => Answer::Start(intent),
                Err(reason) => Answer::StartRefused {
                    request: name,
                    reason,
                },
            }
        })
    }

    /// A logged-in connection and a place under its cap for one more
    /// channel of `kind`, with the reply still to give; `None`: the open
    /// was refused (not logged in, or over the cap).
    async fn place(
        &mut self,
        reply: ChannelOpenHandle,
        kind: Kind,
    ) -> Option<(Arc<Conn>, ChannelSlot, ChannelOpenHandle)> {
        let Some(conn) = self.conn.clone() else {
            reply
                .reject(ChannelOpenFailure::AdministrativelyProhibited)
                .await;
            return None;
        };
        let (count, max, what) = match kind {
            Kind::Session => (&self.sessions, MAX_SESSIONS, "session"),
            Kind::Tunnel => (&self.tunnels, MAX_TUNNELS, "direct-tcpip"),
        };
        match ChannelSlot::take(count, max) {
            Some(slot) => Some((conn, slot, reply)),
            None => {
                self.over_cap(&conn, reply, what, max).await;
                None
            }
        }
    }

    /// Refuses a channel over the cap: the reply, and one audit row per
    /// connection.
    async fn over_cap(&mut self, conn: &Conn, reply: ChannelOpenHandle, what: &str, max: usize) {
        reply.reject(ChannelOpenFailure::ResourceShortage).await;
        if !self.over_cap_logged {
            self.over_cap_logged = true;
            refuse_log(
                &self.shared,
                conn,
                what,
                &format!("more than {max} {what} channels at once on one connection (further ones refused silently)"),
            )
            .await;
        }
    }
}

impl Drop for Handler {
    fn drop(&mut self) {
        // The connection is over: one row for the refusals it was not
        // allowed to log one by one.
        if let Some(conn) = self.conn.take()
            && conn.refusals.load(std::sync::atomic::Ordering::Relaxed) > super::REFUSALS_LOGGED
        {
            let shared = self.shared.clone();
            self.shared.tracker.spawn(async move {
                super::refusals_summary(&shared, &conn).await;
            });
        }
    }
}

impl russh::server::Handler for Handler {
    type Error = russh::Error;

    async fn authentication_banner(&mut self) -> Result<Option<String>, Self::Error> {
        Ok(self.shared.services.config.ssh.banner.clone())
    }

    async fn auth_none(&mut self, _user: &str) -> Result<Auth, Self::Error> {
        Ok(self.reject())
    }

    async fn auth_password(&mut self, login: &str, password: &str) -> Result<Auth, Self::Error> {
        if !matches!(self.stage, Stage::Start) {
            return Ok(self.reject());
        }
        let secret = Secret::new(password.to_string());
        Ok(self
            .first_factor(login, Proof::Password(&secret), "password")
            .await)
    }

    async fn auth_publickey_offered(
        &mut self,
        login: &str,
        offer: PublicKeyOffer<'_>,
    ) -> Result<Auth, Self::Error> {
        let Some(user) = Self::user_of(login) else {
            return Ok(self.reject());
        };
        // An offer is not a proof: it never counts and is not logged.
        match self
            .shared
            .authenticator
            .key_is_registered(&user, offer.public_key)
            .await
        {
            Ok(true) => Ok(Auth::Accept),
            Ok(false) | Err(_) => Ok(self.reject()),
        }
    }

    async fn auth_publickey(
        &mut self,
        login: &str,
        key: VerifiedPublicKey<'_>,
    ) -> Result<Auth, Self::Error> {
        if !matches!(self.stage, Stage::Start) {
            return Ok(self.reject());
        }
        let key: PublicKey = key.public_key.clone();
        Ok(self
            .first_factor(login, Proof::PublicKey(&key), "publickey")
            .await)
    }

    async fn auth_keyboard_interactive<'a>(
        &'a mut self,
        login: &str,
        _submethods: &str,
        response: Option<Response<'a>>,
    ) -> Result<Auth, Self::Error> {
        let Some(mut response) = response else {
            return Ok(self.next_question(login));
        };
        let answer = Secret::new(
            response
                .next()
                .map(|b| String::from_utf8_lossy(&b).into_owned())
                .unwrap_or_default(),
        );
        Ok(self.keyboard_answer(login, answer).await)
    }

    async fn channel_open_session(
        &mut self,
        channel: Channel<Msg>,
        reply: ChannelOpenHandle,
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        let Some((conn, slot, reply)) = self.place(reply, Kind::Session).await else {
            return Ok(());
        };
        reply.accept().await;
        let shared = self.shared.clone();
        let handle = session.handle();
        let (answers, answered) = mpsc::unbounded_channel();
        // Channels whose task has ended go, whether or not the client
        // confirmed their close (the count of open ones is capped, so this
        // map stays as small).
        self.channels.retain(|_, (_, answers)| !answers.is_closed());
        self.channels
            .insert(channel.id(), (ChannelRequests::default(), answers));
        self.shared.tracker.spawn(async move {
            super::channel::run(shared, conn, channel, answered, handle).await;
            drop(slot);
        });
        Ok(())
    }

    async fn channel_close(
        &mut self,
        channel: ChannelId,
        _session: &mut Session,
    ) -> Result<(), Self::Error> {
        self.channels.remove(&channel);
        Ok(())
    }

    async fn pty_request(
        &mut self,
        channel: ChannelId,
        _term: &str,
        _col_width: u32,
        _row_height: u32,
        _pix_width: u32,
        _pix_height: u32,
        _modes: &[(russh::Pty, u32)],
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        self.answer(channel, session, |state| {
            state.pty = true;
            Answer::Taken
        })
    }

    async fn env_request(
        &mut self,
        channel: ChannelId,
        variable_name: &str,
        variable_value: &str,
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        self.answer(channel, session, |state| {
            match request::env(state, variable_name, variable_value) {
                Ok(()) => {
                    state.env += 1;
                    Answer::Taken
                }
                Err(reason) => Answer::Refused {
                    request: "env",
                    reason,
                },
            }
        })
    }

    async fn x11_request(
        &mut self,
        channel: ChannelId,
        _single_connection: bool,
        _x11_auth_protocol: &str,
        _x11_auth_cookie: &str,
        _x11_screen_number: u32,
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        self.answer(channel, session, |_| Answer::Refused {
            request: "x11-req",
            reason: "X11 forwarding is not available through the bastion".into(),
        })
    }

    async fn shell_request(
        &mut self,
        channel: ChannelId,
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        self.answer_start(channel, session, |pty| route::Request::Shell { pty })
    }

    async fn exec_request(
        &mut self,
        channel: ChannelId,
        data: &[u8],
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        let command = String::from_utf8_lossy(data).into_owned();
        self.answer_start(channel, session, |pty| route::Request::Exec {
            command,
            pty,
        })
    }

    async fn subsystem_request(
        &mut self,
        channel: ChannelId,
        name: &str,
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        let name = name.to_string();
        self.answer_start(channel, session, |_| route::Request::Subsystem(name))
    }

    async fn channel_open_direct_tcpip(
        &mut self,
        channel: Channel<Msg>,
        host: &str,
        port: u32,
        _originator_address: &str,
        _originator_port: u32,
        reply: ChannelOpenHandle,
        _session: &mut Session,
    ) -> Result<(), Self::Error> {
        let Some((conn, slot, reply)) = self.place(reply, Kind::Tunnel).await else {
            return Ok(());
        };
        // Deciding scans the person's assets: done in the tunnel's own task,
        // never in the connection's event loop.
        let shared = self.shared.clone();
        let host = host.to_string();
        self.shared.tracker.spawn(async move {
            let now = shared.services.clock.now();
            // With `mfa = "required"`, a login that still has to enrol has
            // passed one factor only: no tunnel, as no session.
            let grant = if conn.must_enrol {
                None
            } else {
                u16::try_from(port).ok().and_then(|port| {
                    shared
                        .policy()
                        .authorize_tunnel(&conn.identity, &host, port, now)
                })
            };
            let Some(grant) = grant else {
                // The person learns only "administratively prohibited",
                // whatever the reason: a missing asset and a refused one
                // look the same. The row is written first.
                let reason = if conn.must_enrol {
                    format!("tunnel to {host}:{port} refused: two-factor enrolment is required first")
                } else {
                    format!(
                        "tunnel to {host}:{port} refused: no such asset or declared port, or no tunnel permission"
                    )
                };
                refuse_log(&shared, &conn, "direct-tcpip", &reason).await;
                reply
                    .reject(ChannelOpenFailure::AdministrativelyProhibited)
                    .await;
                return;
            };
            reply.accept().await;
            super::tunnel::run(shared, conn, channel, grant).await;
            drop(slot);
        });
        Ok(())
    }

    async fn channel_open_direct_streamlocal(
        &mut self,
        _channel: Channel<Msg>,
        socket_path: &str,
        reply: ChannelOpenHandle,
        _session: &mut Session,
    ) -> Result<(), Self::Error> {
        reply
            .reject(ChannelOpenFailure::AdministrativelyProhibited)
            .await;
        if let Some(conn) = &self.conn {
            refuse_log(
                &self.shared,
                conn,
                "direct-streamlocal",
                &format!("forwarding to {socket_path} is refused"),
            )
            .await;
        }
        Ok(())
    }

    async fn channel_open_x11(
        &mut self,
        _channel: Channel<Msg>,
        _originator_address: &str,
        _originator_port: u32,
        reply: ChannelOpenHandle,
        _session: &mut Session,
    ) -> Result<(), Self::Error> {
        reply
            .reject(ChannelOpenFailure::AdministrativelyProhibited)
            .await;
        Ok(())
    }

    async fn tcpip_forward(
        &mut self,
        address: &str,
        port: &mut u32,
        _session: &mut Session,
    ) -> Result<bool, Self::Error> {
        if let Some(conn) = &self.conn {
            refuse_log(
                &self.shared,
                conn,
                "tcpip-forward",
                &format!("remote forwarding of {address}:{port} is refused"),
            )
            .await;
        }
        Ok(false)
    }

    async fn streamlocal_forward(
        &mut self,
        socket_path: &str,
        _session: &mut Session,
    ) -> Result<bool, Self::Error> {
        if let Some(conn) = &self.conn {
            refuse_log(
                &self.shared,
                conn,
                "streamlocal-forward",
                &format!("remote forwarding of {socket_path} is refused"),
            )
            .await;
        }
        Ok(false)
    }
}
