//! The client side of SCRAM-SHA-256 (RFC 5802, RFC 7677) as PostgreSQL
//! uses it: no channel binding (gs2 header `n,,`), and the server's
//! signature checked before the login counts as done.
//!
//! The password is used as UTF-8 bytes without SASLprep. For ASCII
//! passwords that is what SASLprep gives; a password SASLprep would change
//! (some non-ASCII ones) fails to log in rather than log in wrongly.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use ring::{digest, hmac, pbkdf2};
use zeroize::Zeroizing;

/// The most PBKDF2 iterations accepted from a server: PostgreSQL's default
/// is 4096; far more only burns the bastion's CPU.
const MAX_ITERATIONS: u32 = 10_000_000;

/// Why a SCRAM exchange failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScramError {
    #[error("the server's first message is malformed")]
    ServerFirst,
    #[error("the server's nonce does not extend ours")]
    Nonce,
    #[error("the server asks for {0} iterations, over the bastion's limit")]
    Iterations(u32),
    #[error("the server reported an error: {0}")]
    Server(String),
    #[error("the server's final message is malformed")]
    ServerFinal,
    #[error("the server's signature is wrong (not the server that holds the password)")]
    Signature,
    #[error("the server answered out of turn")]
    OutOfTurn,
}

/// One SCRAM-SHA-256 exchange, from the client's first message to the
/// check of the server's signature.
pub struct Scram {
    nonce: String,
    client_first_bare: String,
    /// Known once the client's final message is built.
    server_signature: Option<[u8; 32]>,
}

impl std::fmt::Debug for Scram {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Scram").finish_non_exhaustive()
    }
}

impl Scram {
    /// A fresh exchange with a random nonce, and the client's first message.
    pub fn start(user: &str) -> (Scram, String) {
        let nonce = STANDARD.encode(rand::random::<[u8; 18]>());
        Scram::with_nonce(user, &nonce)
    }

    /// An exchange with a given nonce (RFC 7677's example uses one).
    /// PostgreSQL ignores the user here (it has the startup's) and libpq
    /// sends none.
    pub fn with_nonce(user: &str, nonce: &str) -> (Scram, String) {
        let user = user.replace('=', "=3D").replace(',', "=2C");
        let client_first_bare = format!("n={user},r={nonce}");
        let first = format!("n,,{client_first_bare}");
        let scram = Scram {
            nonce: nonce.to_string(),
            client_first_bare,
            server_signature: None,
        };
        (scram, first)
    }

    /// The client's final message (with its proof) for the server's first.
    pub fn client_final(
        &mut self,
        password: &[u8],
        server_first: &[u8],
    ) -> Result<String, ScramError> {
        let server_first =
            std::str::from_utf8(server_first).map_err(|_| ScramError::ServerFirst)?;
        let (mut nonce, mut salt, mut iterations) = (None, None, None);
        for attribute in server_first.split(',') {
            match attribute.split_once('=') {
                Some(("r", v)) => nonce = Some(v),
                Some(("s", v)) => salt = STANDARD.decode(v).ok(),
                Some(("i", v)) => iterations = v.parse::<u32>().ok(),
                // A mandatory extension the client does not know.
                Some(("m", _)) => return Err(ScramError::ServerFirst),
                _ => {}
            }
        }
        let (Some(nonce), Some(salt), Some(iterations)) = (nonce, salt, iterations) else {
            return Err(ScramError::ServerFirst);
        };
        if nonce.len() <= self.nonce.len() || !nonce.starts_with(&self.nonce) {
            return Err(ScramError::Nonce);
        }
        if iterations > MAX_ITERATIONS {
            return Err(ScramError::Iterations(iterations));
        }
        let iterations = std::num::NonZeroU32::new(iterations).ok_or(ScramError::ServerFirst)?;
        let mut salted = Zeroizing::new([0u8; 32]);
        pbkdf2::derive(
            pbkdf2::PBKDF2_HMAC_SHA256,
            iterations,
            &salt,
            password,
            salted.as_mut(),
        );
        let salted_key = hmac::Key::new(hmac::HMAC_SHA256, salted.as_ref());
        let client_key = Zeroizing::new(hmac::sign(&salted_key, b"Client Key").as_ref().to_vec());
        let stored_key = digest::digest(&digest::SHA256, &client_key);
        // "biws" is base64 of the gs2 header "n,,".
        let without_proof = format!("c=biws,r={nonce}");
        let auth_message = format!("{},{server_first},{without_proof}", self.client_first_bare);
        let signature = hmac::sign(
            &hmac::Key::new(hmac::HMAC_SHA256, stored_key.as_ref()),
            auth_message.as_bytes(),
        );
        let proof: Vec<u8> = client_key
            .iter()
            .zip(signature.as_ref())
            .map(|(k, s)| k ^ s)
            .collect();
        let server_key = hmac::sign(&salted_key, b"Server Key");
        let server_signature = hmac::sign(
            &hmac::Key::new(hmac::HMAC_SHA256, server_key.as_ref()),
            auth_message.as_bytes(),
        );
        let mut expected = [0u8; 32];
        expected.copy_from_slice(server_signature.as_ref());
        self.server_signature = Some(expected);
        Ok(format!("{without_proof},p={}", STANDARD.encode(proof)))
    }

    /// Checks the server's final message: its signature proves it holds
    /// the password's verifier, so the login is with the real server.
    pub fn verify(&self, server_final: &[u8]) -> Result<(), ScramError> {
        let expected = self.server_signature.ok_or(ScramError::OutOfTurn)?;
        let text = std::str::from_utf8(server_final).map_err(|_| ScramError::ServerFinal)?;
        let first = text.split(',').next().unwrap_or_default();
        if let Some(error) = first.strip_prefix("e=") {
            return Err(ScramError::Server(error.to_string()));
        }
        let given = first
            .strip_prefix("v=")
            .and_then(|v| STANDARD.decode(v).ok())
            .ok_or(ScramError::ServerFinal)?;
        if super::same_secret(&given, &expected) {
            Ok(())
        } else {
            Err(ScramError::Signature)
        }
    }
}
