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
use russh::{Channel, ChannelId, ChannelOpenFailure, MethodKind, MethodSet};
use tokio::sync::mpsc;

use super::request::{self, Answer, ChannelRequests};
use super::{Conn, Shared, refuse_log};
use crate::auth::gate::Place;
use crate::auth::login::{Accepted, LoginError, Next, Proof, Refusal};
use crate::route;
use crate::vault::Secret;

/// Where a connection is in the login sequence.
#[derive(Default)]
enum Stage {
    #[default]
    Start,
    /// First factor accepted; waiting for a TOTP code and/or a new password.
    Second {
        accepted: Accepted,
        totp_done: bool,
        password_done: bool,
    },
    Done,
}

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

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Asking {
    Nothing,
    Password,
    Totp,
    NewPassword,
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

    fn methods(&self) -> MethodSet {
        let mut set = MethodSet::empty();
        for m in &self.shared.services.config.auth.methods {
            set.push(match m {
                crate::config::AuthMethod::Password => MethodKind::Password,
                crate::config::AuthMethod::PublicKey => MethodKind::PublicKey,
                crate::config::AuthMethod::KeyboardInteractive => MethodKind::KeyboardInteractive,
            });
        }
        set
    }

    fn reject(&self) -> Auth {
        Auth::Reject {
            proceed_with_methods: Some(self.methods()),
            partial_success: false,
        }
    }

    fn keyboard_only() -> Auth {
        Auth::Reject {
            proceed_with_methods: Some(MethodSet::from(&[MethodKind::KeyboardInteractive][..])),
            partial_success: true,
        }
    }

    /// The user part of a login name (`alice` of `alice@root@web1`).
    fn user_of(login: &str) -> Option<String> {
        route::parse_login(login).ok().map(|l| l.user)
    }

    /// What a first factor leads to: done, or a second round.
    fn after_first(&mut self, login: &str, accepted: Accepted) -> Auth {
        let totp_done = accepted.next != Next::Totp;
        let password_done = !accepted.must_change_password;
        if totp_done && password_done {
            self.finish(login, accepted);
            return Auth::Accept;
        }
        self.stage = Stage::Second {
            accepted,
            totp_done,
            password_done,
        };
        Self::keyboard_only()
    }

    fn finish(&mut self, login: &str, accepted: Accepted) {
        let target = route::parse_login(login).ok();
        self.conn = Some(Arc::new(Conn {
            login: login.to_string(),
            route: target,
            identity: accepted.identity,
            must_enrol: accepted.next == Next::Enrol,
            peer: self.peer,
            refusals: Default::default(),
        }));
        self.stage = Stage::Done;
        self.unauthenticated = None;
        self.authenticated
            .store(true, std::sync::atomic::Ordering::Release);
    }

    async fn first_factor(&mut self, login: &str, proof: Proof<'_>, method: &'static str) -> Auth {
        let Some(user) = Self::user_of(login) else {
            return self.reject();
        };
        match self
            .shared
            .authenticator
            .first_factor_via(&user, proof, self.peer.ip(), method)
            .await
        {
            Ok(accepted) => self.after_first(login, accepted),
            Err(LoginError::Refused(_)) => self.reject(),
            Err(e) => {
                tracing::error!(user = %user, "login failed: {e}");
                self.reject()
            }
        }
    }

    /// The next keyboard-interactive question, or acceptance.
    fn next_question(&mut self, login: &str) -> Auth {
        let Stage::Second {
            totp_done,
            password_done,
            ..
        } = &self.stage
        else {
            self.asking = Asking::Password;
            return partial("rampart login", "", &[("Password: ", false)]);
        };
        if !totp_done {
            self.asking = Asking::Totp;
            return partial(
                "rampart second factor",
                "Enter the 6-digit code from your authenticator app.",
                &[("Verification code: ", true)],
            );
        }
        if !password_done {
            self.asking = Asking::NewPassword;
            let repeat = self.new_password.is_some();
            return partial(
                "rampart password change",
                if repeat {
                    "Type the new password again."
                } else {
                    "Your password must be changed before you continue."
                },
                &[(
                    if repeat {
                        "Retype new password: "
                    } else {
                        "New password: "
                    },
                    false,
                )],
            );
        }
        let Stage::Second { accepted, .. } = std::mem::take(&mut self.stage) else {
            return self.reject();
        };
        self.finish(login, accepted);
        Auth::Accept
    }
}

fn partial(
    name: &'static str,
    instructions: impl Into<std::borrow::Cow<'static, str>>,
    prompts: &[(&'static str, bool)],
) -> Auth {
    Auth::Partial {
        name: name.into(),
        instructions: instructions.into(),
        prompts: prompts
            .iter()
            .map(|(p, echo)| (std::borrow::Cow::Borrowed(*p), *echo))
            .collect::<Vec<_>>()
            .into(),
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
        match self.asking {
            Asking::Nothing => Ok(self.next_question(login)),
            Asking::Password => {
                self.asking = Asking::Nothing;
                let auth = self
                    .first_factor(login, Proof::Password(&answer), "keyboard-interactive")
                    .await;
                match auth {
                    // A second round within the same method: ask right away.
                    Auth::Reject {
                        partial_success: true,
                        ..
                    } => Ok(self.next_question(login)),
                    other => Ok(other),
                }
            }
            Asking::Totp => {
                self.asking = Asking::Nothing;
                let Stage::Second {
                    accepted,
                    totp_done,
                    ..
                } = &mut self.stage
                else {
                    return Ok(self.reject());
                };
                match self
                    .shared
                    .authenticator
                    .totp(&accepted.identity, answer.expose(), self.peer.ip())
                    .await
                {
                    Ok(()) => {
                        *totp_done = true;
                        Ok(self.next_question(login))
                    }
                    Err(e) => {
                        if !matches!(
                            e,
                            LoginError::Refused(Refusal::WrongProof | Refusal::CodeReused)
                        ) {
                            tracing::error!("second factor failed: {e}");
                        }
                        self.stage = Stage::Start;
                        Ok(self.reject())
                    }
                }
            }
            Asking::NewPassword => {
                self.asking = Asking::Nothing;
                let Stage::Second {
                    accepted,
                    password_done,
                    ..
                } = &mut self.stage
                else {
                    return Ok(self.reject());
                };
                match self.new_password.take() {
                    None => {
                        self.new_password = Some(answer);
                        Ok(self.next_question(login))
                    }
                    Some(first) if first.expose() != answer.expose() => Ok(partial(
                        "rampart password change",
                        "The two passwords differ. Start again.",
                        &[("New password: ", false)],
                    ))
                    .inspect(|_| self.asking = Asking::NewPassword),
                    Some(first) => {
                        let caller = crate::ops::Caller {
                            name: accepted.identity.name.clone(),
                            role: accepted.identity.role,
                            via: crate::audit::Via::Ssh,
                        };
                        match self
                            .shared
                            .services
                            .ops
                            .me_passwd_forced(&caller, &first)
                            .await
                        {
                            Ok(_) => {
                                *password_done = true;
                                Ok(self.next_question(login))
                            }
                            // Too weak: ask again, saying why (the reason
                            // never contains the password).
                            Err(e) => {
                                self.asking = Asking::NewPassword;
                                let why = format!("{e}. Choose another.");
                                Ok(partial(
                                    "rampart password change",
                                    why,
                                    &[("New password: ", false)],
                                ))
                            }
                        }
                    }
                }
            }
        }
    }

    async fn channel_open_session(
        &mut self,
        channel: Channel<Msg>,
        reply: ChannelOpenHandle,
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        let Some(conn) = self.conn.clone() else {
            reply
                .reject(ChannelOpenFailure::AdministrativelyProhibited)
                .await;
            return Ok(());
        };
        let Some(slot) = ChannelSlot::take(&self.sessions, MAX_SESSIONS) else {
            self.over_cap(&conn, reply, "session", MAX_SESSIONS).await;
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
        let Some(conn) = self.conn.clone() else {
            reply
                .reject(ChannelOpenFailure::AdministrativelyProhibited)
                .await;
            return Ok(());
        };
        let Some(slot) = ChannelSlot::take(&self.tunnels, MAX_TUNNELS) else {
            self.over_cap(&conn, reply, "direct-tcpip", MAX_TUNNELS)
                .await;
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
