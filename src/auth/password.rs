//! Passwords: argon2id hashing and verification, the constant-cost check for
//! unknown users, one-time passwords for new accounts, and the strength rule
//! for passwords people choose.
//!
//! Owns the hashing parameters. Must never log or return a password or a
//! stored hash, and never compare hashes itself (argon2's comparison is
//! constant-time).

use argon2::password_hash::phc::PasswordHash;
use argon2::{Algorithm, Argon2, Params, PasswordHasher, PasswordVerifier, Version};
use rand::Rng;

use super::AuthError;
use crate::vault::Secret;

/// Memory cost in KiB: OWASP's minimum for argon2id (19 MiB, 2 passes, one
/// lane). Fixed here rather than taken from argon2's defaults so that a
/// crate upgrade cannot silently change the cost of new hashes.
pub const M_COST_KIB: u32 = 19_456;
pub const T_COST: u32 = 2;
pub const P_COST: u32 = 1;

/// The parameters above, checked at compile time: a bad value is a build
/// error, not a runtime panic.
const PARAMS: Params = match Params::new(M_COST_KIB, T_COST, P_COST, None) {
    Ok(params) => params,
    Err(_) => panic!("invalid argon2 parameters"),
};

/// A hash with exactly the parameters above, of a random password nobody
/// knows (it was thrown away after hashing). Verifying against it costs what
/// verifying a real user's hash costs, so a login for an unknown user takes
/// as long to reject as a wrong password for a real one. A constant rather
/// than a hash computed at first use, so that the first unknown user is not
/// slower than the rest.
const DUMMY_PHC: &str = "$argon2id$v=19$m=19456,t=2,p=1$tsln39/dTdEJMt/GBCqRMQ$tjSURBUCEGFqC0JqrmTG9bQAR6wRoslzM4Vcbv2tENY";

/// Minimum length of a chosen password.
pub const MIN_PASSWORD_LEN: usize = 12;

/// Characters of generated one-time passwords: letters and digits without
/// the look-alikes 0/O/o, 1/l/I, so a password read off a terminal can be
/// typed without guessing.
const OTP_ALPHABET: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnpqrstuvwxyz23456789";

/// Length of generated one-time passwords: 20 characters of a 56-letter
/// alphabet is about 116 bits.
pub const ONE_TIME_PASSWORD_LEN: usize = 20;

fn hasher() -> Argon2<'static> {
    Argon2::new(Algorithm::Argon2id, Version::V0x13, PARAMS.clone())
}

/// Hashes a password with argon2id and a random salt, into a PHC string
/// (`$argon2id$v=19$m=19456,t=2,p=1$salt$hash`) for the store.
pub fn hash_password(password: &Secret<String>) -> Result<String, AuthError> {
    hasher()
        .hash_password(password.expose().as_bytes())
        .map(|hash| hash.to_string())
        .map_err(|e| AuthError::Hash(e.to_string()))
}

/// Whether `password` matches the stored PHC string. A stored value that is
/// not a valid hash is a plain "no" (and a warning without the value in the
/// log), after the same work a real check costs.
pub fn verify_password(password: &Secret<String>, phc: &str) -> bool {
    match PasswordHash::new(phc) {
        Ok(parsed) => hasher()
            .verify_password(password.expose().as_bytes(), &parsed)
            .is_ok(),
        Err(_) => {
            tracing::warn!("a stored password hash is not a valid PHC string; login refused");
            verify_against_dummy(password);
            false
        }
    }
}

/// Spends the time of one real verification and always fails. Call it when
/// the user does not exist (or has no password) so that the rejection takes
/// as long as a wrong password would.
pub fn verify_against_dummy(password: &Secret<String>) {
    let outcome = match PasswordHash::new(DUMMY_PHC) {
        Ok(parsed) => hasher()
            .verify_password(password.expose().as_bytes(), &parsed)
            .is_ok(),
        // DUMMY_PHC is a constant checked by a test; this arm is unreachable
        // in a tested build. Hash instead so the cost stays the same.
        Err(_) => hasher().hash_password(password.expose().as_bytes()).is_ok(),
    };
    // Keeps the optimiser from deciding the work is unused.
    std::hint::black_box(outcome);
}

/// A random password for a new account or a reset, shown once and to be
/// changed at first login. Always passes [`check_password_strength`].
pub fn generate_one_time_password() -> Secret<String> {
    let mut rng = rand::rng();
    loop {
        let mut text = String::with_capacity(ONE_TIME_PASSWORD_LEN);
        for _ in 0..ONE_TIME_PASSWORD_LEN {
            let index = rng.random_range(0..OTP_ALPHABET.len());
            // The index is drawn below the alphabet's length, so `get`
            // always succeeds.
            if let Some(c) = OTP_ALPHABET.get(index) {
                text.push(char::from(*c));
            }
        }
        let candidate = Secret::new(text);
        // Drawing a single character class twenty times in a row is
        // astronomically rare, but the promise above should hold anyway.
        if check_password_strength(candidate.expose()).is_ok() {
            return candidate;
        }
    }
}

/// The rule for passwords people choose: at least 12 characters, and more
/// than one kind of character (lower case, upper case, digits, others —
/// spaces count, so a passphrase of several words passes). The error says
/// what to do and does not repeat or measure the password.
pub fn check_password_strength(password: &str) -> Result<(), String> {
    if password.chars().count() < MIN_PASSWORD_LEN {
        return Err(format!(
            "password too short: use at least {MIN_PASSWORD_LEN} characters \
             (a few unrelated words make a good passphrase)"
        ));
    }
    let (mut lower, mut upper, mut digit, mut other) = (false, false, false, false);
    for c in password.chars() {
        if c.is_lowercase() {
            lower = true;
        } else if c.is_uppercase() {
            upper = true;
        } else if c.is_numeric() {
            digit = true;
        } else {
            other = true;
        }
    }
    if [lower, upper, digit, other]
        .into_iter()
        .filter(|seen| *seen)
        .count()
        < 2
    {
        return Err(
            "password uses only one kind of character: mix in upper case letters, \
                    digits, symbols or spaces"
                .to_string(),
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    fn secret(s: &str) -> Secret<String> {
        Secret::from(s.to_string())
    }

    #[test]
    fn hash_then_verify() {
        let pw = secret("correct horse battery staple");
        let phc = hash_password(&pw).unwrap();
        assert!(phc.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{phc}");
        assert!(verify_password(&pw, &phc));
        assert!(!verify_password(
            &secret("correct horse battery stapl"),
            &phc
        ));
        assert!(!verify_password(&secret(""), &phc));
        // Salted: the same password hashes differently each time.
        assert_ne!(phc, hash_password(&pw).unwrap());
    }

    #[test]
    fn malformed_stored_hash_is_false() {
        let pw = secret("anything at all 1");
        for stored in ["", "plain", "$argon2id$v=19$m=19456", "$2b$12$notargon"] {
            assert!(!verify_password(&pw, stored), "{stored}");
        }
    }

    #[test]
    fn dummy_has_the_real_parameters_and_never_matches() {
        let parsed = PasswordHash::new(DUMMY_PHC).unwrap();
        assert_eq!(parsed.algorithm.as_str(), "argon2id");
        let params = Params::try_from(&parsed).unwrap();
        assert_eq!(
            (params.m_cost(), params.t_cost(), params.p_cost()),
            (M_COST_KIB, T_COST, P_COST)
        );
        // Same shape as a fresh hash (salt and output lengths included).
        let fresh = hash_password(&secret("x")).unwrap();
        assert_eq!(fresh.len(), DUMMY_PHC.len());
        assert!(!verify_password(&secret(""), DUMMY_PHC));
    }

    #[test]
    fn dummy_costs_about_as_much_as_a_real_check() {
        let pw = secret("timing check password 1");
        let phc = hash_password(&pw).unwrap();
        let wrong = secret("timing check password 2");
        // Warm up, then take the best of three of each (robust to a busy CI).
        verify_password(&wrong, &phc);
        verify_against_dummy(&wrong);
        let best = |f: &dyn Fn()| {
            (0..3)
                .map(|_| {
                    let start = Instant::now();
                    f();
                    start.elapsed()
                })
                .min()
                .unwrap()
        };
        let real = best(&|| {
            verify_password(&wrong, &phc);
        });
        let dummy = best(&|| verify_against_dummy(&wrong));
        let ratio = dummy.as_secs_f64() / real.as_secs_f64();
        assert!(
            (0.4..2.5).contains(&ratio),
            "real {real:?}, dummy {dummy:?}"
        );
    }

    #[test]
    fn one_time_passwords_are_strong_unambiguous_and_distinct() {
        let a = generate_one_time_password();
        let b = generate_one_time_password();
        assert_ne!(a.expose(), b.expose());
        for pw in [&a, &b] {
            assert_eq!(pw.expose().len(), ONE_TIME_PASSWORD_LEN);
            assert!(pw.expose().bytes().all(|c| OTP_ALPHABET.contains(&c)));
            assert!(!pw.expose().contains(['0', 'O', 'o', '1', 'l', 'I']));
            check_password_strength(pw.expose()).unwrap();
        }
    }

    #[test]
    fn strength_rule() {
        for ok in [
            "correct horse battery",
            "Tr0ub4dor&3xx",
            "abcdefghijk1",
            "ALLCAPSBUT1DIGIT",
        ] {
            assert!(check_password_strength(ok).is_ok(), "{ok}");
        }
        let short = check_password_strength("Ab1!").unwrap_err();
        assert!(short.contains("at least 12"), "{short}");
        for one_class in ["abcdefghijklmnop", "ABCDEFGHIJKLMNOP", "123456789012345"] {
            let err = check_password_strength(one_class).unwrap_err();
            assert!(err.contains("one kind"), "{err}");
            assert!(!err.contains(one_class));
        }
    }
}
