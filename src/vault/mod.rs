//! The vault: secrets at rest (DESIGN.md §4).
//!
//! Owns the master key ([`MasterKey`], [`resolve_master_key`]), the
//! [`Secret`] wrapper, the sealing of account passwords, private keys
//! and TOTP seeds with XChaCha20-Poly1305 before they reach the store, and
//! the audit chain's key ([`ChainKey`], derived from the master key with
//! HKDF so that the chain can only be sealed by whoever holds it).
//!
//! A sealed value is text, so it fits a TEXT column in SQLite and Postgres:
//!
//! ```text
//! v1:<key id, 16 hex>:<hex(24-byte nonce || ciphertext || 16-byte tag)>
//! ```
//!
//! Every value gets its own random 192-bit nonce (large enough that random
//! nonces never repeat in practice), and the version and key id are bound as
//! associated data, so editing the header is detected like editing the
//! ciphertext. A value sealed under another master key is reported as such
//! ([`VaultError::UnknownKey`]) rather than as damage, which is what an
//! operator who started with the wrong key needs to hear.
//!
//! Start-up rule (enforced by the caller, documented here because it is the
//! vault's invariant): the key comes from `RAMPART_MASTER_KEY`, else
//! `data_dir/master.key`. A new key is generated only when the data
//! directory is being initialised. When the key is missing but the database
//! already holds sealed rows, rampart refuses to start: silently generating
//! a new key would make every stored secret unreadable.
//!
//! This module must never log, print or put into an error message any key
//! material or plaintext, and never write a key file over an existing one.

mod chain;
mod key;
mod secret;

use std::path::PathBuf;
use std::sync::Arc;

use chacha20poly1305::aead::{Aead, AeadCore, KeyInit, OsRng, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};

pub use chain::ChainKey;
pub use key::{KEY_LEN, MASTER_KEY_ENV, MASTER_KEY_FILE, MasterKey, resolve_master_key};
pub use secret::Secret;

/// Version tag of the sealed text form.
const FORMAT_V1: &str = "v1";
/// XChaCha20 nonce length.
const NONCE_LEN: usize = 24;
/// Poly1305 tag length.
const TAG_LEN: usize = 16;
/// Length of a key id in hex characters.
const KEY_ID_LEN: usize = 16;

/// What can go wrong with keys and sealed values. No variant carries key
/// material or plaintext.
#[derive(Debug, thiserror::Error)]
pub enum VaultError {
    /// The text is not a sealed value in a format this version knows.
    #[error("not a sealed secret (expected v1:<key id>:<hex>)")]
    Malformed,
    /// Sealed under a different master key than the one loaded.
    #[error(
        "the master key does not match: this secret was sealed under key {key_id}; \
         start rampart with that master key (RAMPART_MASTER_KEY or data_dir/master.key)"
    )]
    UnknownKey { key_id: String },
    /// The value has our format and key id but does not authenticate.
    #[error("a sealed secret failed authentication: it was altered or corrupted in storage")]
    Tampered,
    /// The decrypted value is not the UTF-8 text the caller asked for.
    #[error("a sealed secret is binary data, not text")]
    NotText,
    /// A key file could not be read or written.
    #[error("could not {action} {path}: {source}")]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A master key (from the environment, a file or text) is unusable.
    #[error("{origin} is not a usable master key: {reason}")]
    BadKey { origin: String, reason: String },
}

/// Seals and opens secrets under the master key. Cheap to clone (an `Arc`);
/// hand one to every task that needs it.
#[derive(Clone)]
pub struct Vault {
    inner: Arc<Inner>,
}

struct Inner {
    /// Holds a copy of the key; the cipher wipes it on drop.
    cipher: XChaCha20Poly1305,
    key_id: String,
    chain: ChainKey,
}

impl Vault {
    /// Takes the key; it is wiped when the last clone of the vault is dropped.
    pub fn new(key: MasterKey) -> Vault {
        let cipher = XChaCha20Poly1305::new(key.bytes().into());
        let key_id = key.key_id();
        let chain = ChainKey::derive(&key);
        Vault {
            inner: Arc::new(Inner {
                cipher,
                key_id,
                chain,
            }),
        }
    }

    /// The key that seals the audit chain, derived from this master key.
    pub fn chain_key(&self) -> &ChainKey {
        &self.inner.chain
    }

    /// The id of the master key this vault seals with.
    pub fn key_id(&self) -> &str {
        &self.inner.key_id
    }

    /// Encrypts `plaintext` into the `v1:<key id>:<hex>` text form, with a
    /// fresh random nonce: sealing the same value twice gives two different
    /// texts.
    ///
    /// # Panics
    /// Only if `plaintext` exceeds XChaCha20-Poly1305's limit of 256 GiB,
    /// which no password, key or seed (nor any `Vec` that fits in memory on
    /// the machines rampart runs on) comes near.
    pub fn seal(&self, plaintext: &[u8]) -> String {
        let nonce = XChaCha20Poly1305::generate_nonce(&mut OsRng);
        let aad = associated_data(&self.inner.key_id);
        let ciphertext = self
            .inner
            .cipher
            .encrypt(
                &nonce,
                Payload {
                    msg: plaintext,
                    aad: aad.as_bytes(),
                },
            )
            // The only error is a plaintext over the 2^38-byte limit (see the
            // doc comment), not something input of realistic size can cause.
            .expect("plaintext exceeds the XChaCha20-Poly1305 size limit");
        let mut body = Vec::with_capacity(NONCE_LEN + ciphertext.len());
        body.extend_from_slice(nonce.as_slice());
        body.extend_from_slice(&ciphertext);
        format!("{FORMAT_V1}:{}:{}", self.inner.key_id, hex::encode(body))
    }

    /// Seals a text secret.
    pub fn seal_str(&self, plaintext: &str) -> String {
        self.seal(plaintext.as_bytes())
    }

    /// Decrypts a value made by [`Vault::seal`]. A value that was changed in
    /// any way is an error, never a wrong plaintext.
    pub fn open(&self, sealed: &str) -> Result<Secret<Vec<u8>>, VaultError> {
        let mut parts = sealed.trim().splitn(3, ':');
        let (Some(version), Some(key_id), Some(body_hex)) =
            (parts.next(), parts.next(), parts.next())
        else {
            return Err(VaultError::Malformed);
        };
        if version != FORMAT_V1
            || key_id.len() != KEY_ID_LEN
            || !key_id.bytes().all(|b| b.is_ascii_hexdigit())
        {
            return Err(VaultError::Malformed);
        }
        if key_id != self.inner.key_id {
            return Err(VaultError::UnknownKey {
                key_id: key_id.to_string(),
            });
        }
        let body = hex::decode(body_hex).map_err(|_| VaultError::Malformed)?;
        if body.len() < NONCE_LEN + TAG_LEN {
            return Err(VaultError::Malformed);
        }
        let (nonce, ciphertext) = body.split_at(NONCE_LEN);
        let aad = associated_data(key_id);
        let plaintext = self
            .inner
            .cipher
            .decrypt(
                XNonce::from_slice(nonce),
                Payload {
                    msg: ciphertext,
                    aad: aad.as_bytes(),
                },
            )
            .map_err(|_| VaultError::Tampered)?;
        Ok(Secret::new(plaintext))
    }

    /// Opens a value sealed with [`Vault::seal_str`].
    pub fn open_string(&self, sealed: &str) -> Result<Secret<String>, VaultError> {
        let bytes = self.open(sealed)?;
        match std::str::from_utf8(bytes.expose()) {
            // Copied into a new zeroising wrapper; `bytes` wipes the original.
            Ok(text) => Ok(Secret::new(text.to_string())),
            Err(_) => Err(VaultError::NotText),
        }
    }
}

impl std::fmt::Debug for Vault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Vault")
            .field("key_id", &self.inner.key_id)
            .finish_non_exhaustive()
    }
}

/// The header bound to every ciphertext: moving a ciphertext under another
/// version or key id makes it fail authentication.
fn associated_data(key_id: &str) -> String {
    format!("rampart-vault:{FORMAT_V1}:{key_id}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vault() -> Vault {
        Vault::new(MasterKey::generate())
    }

    /// Replaces the hex digit at `index` by a different hex digit, so the
    /// text stays well-formed and only the bytes change.
    fn flip_hex_digit(text: &str, index: usize) -> String {
        let mut chars: Vec<char> = text.chars().collect();
        chars[index] = if chars[index] == '0' { '1' } else { '0' };
        chars.into_iter().collect()
    }

    #[test]
    fn round_trip() {
        let v = vault();
        for plaintext in [
            &b""[..],
            b"x",
            b"correct horse battery staple",
            &[0u8, 255, 7][..],
        ] {
            let sealed = v.seal(plaintext);
            assert!(
                sealed.starts_with(&format!("v1:{}:", v.key_id())),
                "{sealed}"
            );
            assert_eq!(v.open(&sealed).unwrap().expose().as_slice(), plaintext);
        }
        let sealed = v.seal_str("s3cret pässword");
        assert_eq!(v.open_string(&sealed).unwrap().expose(), "s3cret pässword");
        // A clone shares the key.
        assert_eq!(
            v.clone().open_string(&sealed).unwrap().expose(),
            "s3cret pässword"
        );
    }

    #[test]
    fn each_seal_uses_a_new_nonce() {
        let v = vault();
        let a = v.seal_str("same");
        let b = v.seal_str("same");
        assert_ne!(a, b);
        assert_ne!(a[20..68], b[20..68], "nonces repeat");
    }

    #[test]
    fn sealed_text_does_not_contain_the_plaintext() {
        let v = vault();
        let sealed = v.seal_str("plaintext-marker");
        assert!(!sealed.contains("plaintext-marker"));
        assert!(!sealed.contains(&hex::encode("plaintext-marker")));
    }

    #[test]
    fn any_flipped_digit_is_an_error_never_garbage() {
        let v = vault();
        let sealed = v.seal_str("attack at dawn");
        let body_start = 3 + KEY_ID_LEN + 1;
        // Every digit of the key id, the nonce, the ciphertext and the tag.
        for i in 3..sealed.len() {
            if i == body_start - 1 {
                continue; // the ':' separator
            }
            let changed = flip_hex_digit(&sealed, i);
            match v.open(&changed) {
                Ok(_) => panic!("flipped digit {i} opened"),
                Err(VaultError::UnknownKey { .. }) => assert!(i < body_start, "{i}"),
                Err(VaultError::Tampered) => assert!(i >= body_start, "{i}"),
                Err(other) => panic!("digit {i}: unexpected {other}"),
            }
        }
    }

    #[test]
    fn wrong_key_is_named_as_such() {
        let sealed = vault().seal_str("x");
        let other = vault();
        let err = other.open(&sealed).unwrap_err();
        assert!(matches!(err, VaultError::UnknownKey { .. }), "{err}");
        assert!(
            err.to_string().contains("master key does not match"),
            "{err}"
        );
    }

    #[test]
    fn same_key_id_but_different_key_is_tampered() {
        // A forged header claiming our key id cannot pass authentication.
        let v = vault();
        let foreign = vault().seal_str("x");
        let forged = format!("v1:{}:{}", v.key_id(), &foreign[20..]);
        assert!(matches!(v.open(&forged), Err(VaultError::Tampered)));
    }

    #[test]
    fn malformed_inputs_are_malformed() {
        let v = vault();
        let id = v.key_id().to_string();
        let short = format!("v1:{id}:{}", "00".repeat(NONCE_LEN + TAG_LEN - 1));
        for text in [
            "",
            "plain password",
            "v1",
            &format!("v1:{id}"),
            &format!("v2:{id}:00"),
            &format!("v1:{id}:zz"),
            &format!("v1:{id}:0"),
            "v1:short:00",
            &short,
        ] {
            assert!(
                matches!(v.open(text), Err(VaultError::Malformed)),
                "{text:?}"
            );
        }
    }

    #[test]
    fn binary_is_not_text() {
        let v = vault();
        let sealed = v.seal(&[0xff, 0xfe]);
        assert!(matches!(v.open_string(&sealed), Err(VaultError::NotText)));
    }

    #[test]
    fn errors_and_debug_leak_nothing() {
        let v = vault();
        let sealed = v.seal_str("leak-check");
        let opened = v.open_string(&sealed).unwrap();
        assert_eq!(format!("{opened:?}"), "[redacted]");
        let shown = format!("{v:?}");
        assert!(
            shown.contains(v.key_id()) && !shown.contains("cipher"),
            "{shown}"
        );
        let err = v
            .open(&flip_hex_digit(&sealed, sealed.len() - 1))
            .unwrap_err();
        assert!(!format!("{err} {err:?}").contains("leak-check"));
    }
}
