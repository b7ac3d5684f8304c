//! TOTP second factor (RFC 6238 as authenticator apps implement it: SHA-1,
//! 6 digits, 30-second steps), checked at an injected time with one step of
//! clock skew either way, and with replay protection: the caller stores the
//! step of the last accepted code and passes it back in, and a code for that
//! step or any earlier one is refused.
//!
//! Owns the TOTP parameters and the matching logic. Must never log or return
//! a seed or a code in an error; the seed is sealed by the vault before it
//! reaches the store, and the otpauth URL (which contains the seed) is a
//! [`Secret`] too.

use jiff::Timestamp;
use totp_rs::{Algorithm, Builder};
use zeroize::Zeroizing;

use crate::vault::Secret;

/// Seconds per step.
pub const STEP_SECONDS: u64 = 30;
/// Digits per code.
pub const DIGITS: u8 = 6;
/// Steps accepted before and after the current one (RFC 6238 §5.2 advises
/// one: enough for a slow typist or a phone a few seconds off).
pub const SKEW_STEPS: u64 = 1;
/// The issuer shown in authenticator apps.
pub const ISSUER: &str = "rampart";

/// Why a code was not accepted, or why a seed cannot be used. No variant
/// carries the code or the seed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TotpError {
    /// Wrong code, not 6 digits, or not valid at this time.
    #[error("invalid verification code")]
    Invalid,
    /// A correct code for a step at or before the last accepted one: a
    /// replay, or a second login within the same 30 seconds.
    #[error("this verification code was already used; wait for the next one")]
    Reused,
    /// The stored seed is not usable base32 of at least 128 bits.
    #[error(
        "the stored TOTP seed is not valid; reset the user's second factor (rampart user mfa-reset)"
    )]
    BadSecret,
    /// The account name or issuer cannot go into an otpauth URL.
    #[error("cannot build an otpauth URL: {0}")]
    Url(String),
}

/// A new random seed (160 bits, RFC 4226's recommendation), base32 without
/// padding, as authenticator apps expect it typed in.
pub fn new_secret() -> Secret<String> {
    Secret::new(totp_rs::Secret::generate().to_base32())
}

/// The `otpauth://totp/ISSUER:ACCOUNT?secret=...&issuer=ISSUER` URL that
/// authenticator apps import (as text or QR code). It contains the seed, so
/// it is a [`Secret`]. Account names containing ':' are refused (the URL
/// label cannot carry them).
pub fn otpauth_url(
    secret: &Secret<String>,
    account_name: &str,
    issuer: &str,
) -> Result<Secret<String>, TotpError> {
    let seed = decode_secret(secret.expose())?;
    let totp = Builder::new()
        .with_algorithm(Algorithm::SHA1)
        .with_digits(DIGITS)
        .with_step_duration(STEP_SECONDS)
        .with_skew(0)
        .with_secret(seed.to_vec())
        .with_account_name(account_name)
        .with_issuer(Some(issuer))
        .build()
        .map_err(|e| TotpError::Url(e.to_string()))?;
    totp.to_url()
        .map(Secret::new)
        .map_err(|e| TotpError::Url(e.to_string()))
}

/// Checks `code` against the seed at time `now`. Returns the step the code
/// belongs to, which the caller stores as the new `last_used_step`.
///
/// Codes of the previous, current and next step are accepted; a code whose
/// step is at or before `last_used_step` is [`TotpError::Reused`]. Spaces in
/// the code are ignored (apps show `123 456`).
pub fn check(
    secret_b32: &str,
    code: &str,
    last_used_step: Option<u64>,
    now: Timestamp,
) -> Result<u64, TotpError> {
    let seed = decode_secret(secret_b32)?;
    let totp = single_step_totp(&seed)?;
    let code: Zeroizing<String> =
        Zeroizing::new(code.chars().filter(|c| !c.is_whitespace()).collect());
    if code.len() != usize::from(DIGITS) || !code.bytes().all(|b| b.is_ascii_digit()) {
        return Err(TotpError::Invalid);
    }
    // A clock before 1970 cannot match any code a phone shows.
    let Ok(seconds) = u64::try_from(now.as_second()) else {
        return Err(TotpError::Invalid);
    };
    let current = seconds / STEP_SECONDS;
    // Try every candidate step without stopping at the first match, so the
    // time taken does not say which step matched. The comparison itself is
    // totp-rs's constant-time one (`check` with a skew of zero).
    let mut matched: Option<u64> = None;
    for step in current.saturating_sub(SKEW_STEPS)..=current.saturating_add(SKEW_STEPS) {
        let Some(time) = step.checked_mul(STEP_SECONDS) else {
            continue;
        };
        if totp.check(&code, time) == Some(step) {
            // On the (one in a million) chance that two adjacent steps share a
            // code, keep the later step: it refuses more replays.
            matched = Some(step);
        }
    }
    match (matched, last_used_step) {
        (None, _) => Err(TotpError::Invalid),
        (Some(step), Some(last)) if step <= last => Err(TotpError::Reused),
        (Some(step), _) => Ok(step),
    }
}

/// The code valid at `now`; for tests and the demo target.
pub fn current_code(secret_b32: &str, now: Timestamp) -> Result<String, TotpError> {
    let seed = decode_secret(secret_b32)?;
    let totp = single_step_totp(&seed)?;
    let seconds = u64::try_from(now.as_second()).map_err(|_| TotpError::Invalid)?;
    Ok(totp.generate(seconds).to_string())
}

/// Decodes a base32 seed, tolerating what people and apps add: lower case,
/// spaces, dashes and `=` padding.
fn decode_secret(secret_b32: &str) -> Result<Zeroizing<Vec<u8>>, TotpError> {
    let normalised: Zeroizing<String> = Zeroizing::new(
        secret_b32
            .chars()
            .filter(|c| !c.is_whitespace() && *c != '-' && *c != '=')
            .map(|c| c.to_ascii_uppercase())
            .collect(),
    );
    let seed =
        totp_rs::Secret::try_from_base32(normalised.as_str()).map_err(|_| TotpError::BadSecret)?;
    let bytes = Zeroizing::new(seed.as_bytes().to_vec());
    // RFC 4226 §4: at least 128 bits.
    if bytes.len() < 16 {
        return Err(TotpError::BadSecret);
    }
    Ok(bytes)
}

/// A totp-rs generator with no skew of its own: this module decides which
/// steps to try.
fn single_step_totp(seed: &[u8]) -> Result<totp_rs::Totp, TotpError> {
    Builder::new()
        .with_algorithm(Algorithm::SHA1)
        .with_digits(DIGITS)
        .with_step_duration(STEP_SECONDS)
        .with_skew(0)
        .with_secret(seed.to_vec())
        .build()
        .map_err(|_| TotpError::BadSecret)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::{Clock, ManualClock};
    use jiff::SignedDuration;

    /// RFC 6238 Appendix B's SHA-1 seed, "12345678901234567890".
    const RFC_SEED: &str = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ";

    fn at(seconds: i64) -> Timestamp {
        Timestamp::from_second(seconds).unwrap()
    }

    fn code_at(seconds: i64) -> String {
        current_code(RFC_SEED, at(seconds)).unwrap()
    }

    #[test]
    fn matches_rfc_6238_vectors() {
        // Appendix B, SHA-1, last 6 of the 8 digits.
        for (t, code) in [
            (59, "287082"),
            (1_111_111_109, "081804"),
            (1_111_111_111, "050471"),
            (1_234_567_890, "005924"),
            (2_000_000_000, "279037"),
        ] {
            assert_eq!(code_at(t), code, "t={t}");
        }
    }

    #[test]
    fn accepts_previous_current_and_next_step_only() {
        let now = 1_700_000_000;
        let step = (now / 30) as u64;
        for (offset, expected) in [
            (-60, Err(TotpError::Invalid)),
            (-30, Ok(step - 1)),
            (0, Ok(step)),
            (30, Ok(step + 1)),
            (60, Err(TotpError::Invalid)),
        ] {
            let code = code_at(now + offset);
            assert_eq!(
                check(RFC_SEED, &code, None, at(now)),
                expected,
                "offset {offset}"
            );
        }
    }

    #[test]
    fn rejects_reuse_and_older_codes_then_accepts_the_next() {
        let clock = ManualClock::new(at(1_700_000_000));
        let code = current_code(RFC_SEED, clock.now()).unwrap();
        let used = check(RFC_SEED, &code, None, clock.now()).unwrap();
        assert_eq!(
            check(RFC_SEED, &code, Some(used), clock.now()),
            Err(TotpError::Reused)
        );
        // An older code (previous step, still inside the skew) is refused too.
        let older = current_code(RFC_SEED, at(1_700_000_000 - 30)).unwrap();
        assert_eq!(
            check(RFC_SEED, &older, Some(used), clock.now()),
            Err(TotpError::Reused)
        );
        // Still refused in the next step, while it remains inside the skew.
        clock.advance(SignedDuration::from_secs(30));
        assert_eq!(
            check(RFC_SEED, &code, Some(used), clock.now()),
            Err(TotpError::Reused)
        );
        // The next step's code is fine.
        let next = current_code(RFC_SEED, clock.now()).unwrap();
        assert_eq!(
            check(RFC_SEED, &next, Some(used), clock.now()),
            Ok(used + 1)
        );
    }

    #[test]
    fn malformed_codes_are_invalid() {
        let now = at(1_700_000_000);
        let good = current_code(RFC_SEED, now).unwrap();
        let spaced = format!("{} {}", &good[..3], &good[3..]);
        assert!(check(RFC_SEED, &spaced, None, now).is_ok());
        for bad in ["", "12345", "1234567", "abcdef", "+12345", "１２３４５６"] {
            assert_eq!(
                check(RFC_SEED, bad, None, now),
                Err(TotpError::Invalid),
                "{bad}"
            );
        }
        assert_eq!(
            check(RFC_SEED, &good, None, at(-100)),
            Err(TotpError::Invalid)
        );
    }

    #[test]
    fn bad_seeds_are_reported_without_the_seed() {
        let now = at(1_700_000_000);
        for seed in ["", "not base32!", "GEZDGNBV"] {
            let err = check(seed, "123456", None, now).unwrap_err();
            assert_eq!(err, TotpError::BadSecret, "{seed}");
            assert!(err.to_string().contains("mfa-reset"));
        }
        // Lower case and grouping are tolerated.
        let grouped = "gezd gnbv gy3t qojq gezd gnbv gy3t qojq";
        assert_eq!(
            current_code(grouped, now).unwrap(),
            current_code(RFC_SEED, now).unwrap()
        );
    }

    #[test]
    fn new_secrets_work_and_differ() {
        let a = new_secret();
        let b = new_secret();
        assert_ne!(a.expose(), b.expose());
        assert_eq!(a.expose().len(), 32, "160 bits is 32 base32 characters");
        let now = at(1_700_000_000);
        let code = current_code(a.expose(), now).unwrap();
        assert!(check(a.expose(), &code, None, now).is_ok());
    }

    #[test]
    fn otpauth_url_carries_seed_account_and_issuer() {
        let secret = Secret::from(RFC_SEED.to_string());
        let url = otpauth_url(&secret, "alice", ISSUER).unwrap();
        assert_eq!(format!("{url:?}"), "[redacted]");
        let url = url.expose();
        assert!(url.starts_with("otpauth://totp/rampart:alice?"), "{url}");
        assert!(url.contains(&format!("secret={RFC_SEED}")), "{url}");
        assert!(url.contains("issuer=rampart"), "{url}");
        assert!(otpauth_url(&secret, "ali:ce", ISSUER).is_err());
    }
}
