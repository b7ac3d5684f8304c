//! The login sequence of one connection: the first factor (password,
//! public key, or a keyboard-interactive password), then, in
//! keyboard-interactive rounds, a TOTP code and a forced password change
//! where the account needs them. Every decision is
//! `auth::login::Authenticator`'s; this file keeps the connection's place
//! in the sequence and words the questions.

use std::sync::Arc;

use russh::server::Auth;
use russh::{MethodKind, MethodSet};

use super::Handler;
use crate::auth::login::{Accepted, LoginError, Next, Proof, Refusal};
use crate::route;
use crate::ssh::Conn;
use crate::vault::Secret;

/// Where a connection is in the login sequence.
#[derive(Default)]
pub(super) enum Stage {
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

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Asking {
    Nothing,
    Password,
    Totp,
    NewPassword,
}

impl Handler {
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

    pub(super) fn reject(&self) -> Auth {
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
    pub(super) fn user_of(login: &str) -> Option<String> {
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
            arrival: self.shared.services.arrivals.arrive(),
        }));
        self.stage = Stage::Done;
        self.unauthenticated = None;
        self.authenticated
            .store(true, std::sync::atomic::Ordering::Release);
    }

    pub(super) async fn first_factor(
        &mut self,
        login: &str,
        proof: Proof<'_>,
        method: &'static str,
    ) -> Auth {
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
    pub(super) fn next_question(&mut self, login: &str) -> Auth {
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

    /// The answer to a keyboard-interactive question.
    pub(super) async fn keyboard_answer(&mut self, login: &str, answer: Secret<String>) -> Auth {
        match self.asking {
            Asking::Nothing => self.next_question(login),
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
                    } => self.next_question(login),
                    other => other,
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
                    return self.reject();
                };
                match self
                    .shared
                    .authenticator
                    .totp(&accepted.identity, answer.expose(), self.peer.ip())
                    .await
                {
                    Ok(()) => {
                        *totp_done = true;
                        self.next_question(login)
                    }
                    Err(e) => {
                        if !matches!(
                            e,
                            LoginError::Refused(Refusal::WrongProof | Refusal::CodeReused)
                        ) {
                            tracing::error!("second factor failed: {e}");
                        }
                        self.stage = Stage::Start;
                        self.reject()
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
                    return self.reject();
                };
                match self.new_password.take() {
                    None => {
                        self.new_password = Some(answer);
                        self.next_question(login)
                    }
                    Some(first) if first.expose() != answer.expose() => {
                        self.asking = Asking::NewPassword;
                        partial(
                            "rampart password change",
                            "The two passwords differ. Start again.",
                            &[("New password: ", false)],
                        )
                    }
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
                                self.next_question(login)
                            }
                            // Too weak: ask again, saying why (the reason
                            // never contains the password).
                            Err(e) => {
                                self.asking = Asking::NewPassword;
                                let why = format!("{e}. Choose another.");
                                partial(
                                    "rampart password change",
                                    why,
                                    &[("New password: ", false)],
                                )
                            }
                        }
                    }
                }
            }
        }
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
