//! Authentication primitives: who may log in, and with what proof.
//!
//! Owns password hashing ([`password`], argon2id), TOTP second factors
//! ([`totp`]), parsing and fingerprinting OpenSSH public keys ([`pubkey`]),
//! the failure counting behind lockouts ([`lockout`]), login ACLs by
//! source address and weekly time window ([`acl`]), and the limits on the
//! password checks a client can cause before it has logged in ([`gate`]).
//!
//! Everything here is a pure function or plain state with the time passed
//! in, so the store-backed authenticator that combines these pieces with the
//! database (and the SSH front door that calls it) can be tested with a
//! `ManualClock` and no sleeping.
//!
//! What this module must never do: log, return, or put into an error any
//! secret — a password, a TOTP seed or code, an otpauth URL, a password
//! hash. Secrets come in and go out as [`crate::vault::Secret`]. Rejections
//! tell the caller *that* a proof failed, never *how close* it was; the
//! caller decides what the person sees (one line, no detail that would help
//! guessing).

pub mod acl;
pub mod gate;
pub mod lockout;
pub mod login;
pub mod password;
pub mod pubkey;
pub mod totp;

pub use acl::{AclDecision, CompiledAcls, WeeklyWindow, parse_sources};
pub use lockout::{FailureState, LockScope, LockoutPolicy, active_lock};
pub use password::{
    check_password_strength, generate_one_time_password, hash_password, verify_against_dummy,
    verify_password,
};
pub use pubkey::{KeyError, ParsedKey, fingerprint_of, parse_public_key_line};
pub use totp::TotpError;

/// Errors of the auth primitives that are not a plain "no": something the
/// operator must fix (a broken stored value, a bad ACL), never a wrong proof.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// Hashing a password failed (argon2 parameters or the random source).
    /// The text comes from argon2 and never contains the password.
    #[error("could not hash the password: {0}")]
    Hash(String),
    #[error(transparent)]
    Totp(#[from] TotpError),
    #[error(transparent)]
    Key(#[from] KeyError),
    #[error(transparent)]
    Acl(#[from] crate::model::ParseError),
}
