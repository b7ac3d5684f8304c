//! The audit chain's key: HMAC-SHA-256 under a key derived from the master
//! key, so that only a holder of the master key can seal a row into the
//! chain (DESIGN.md §4, issue 13 item 15). The database holds the MACs, never
//! the key.
//!
//! Derivation is HKDF-SHA-256 (RFC 5869) over the master key, with a salt
//! and an `info` label of its own: the chain key is independent of the
//! vault's encryption key (which is the master key itself) and of any other
//! key derived later under another label.
//!
//! This file never exposes the derived key's bytes; callers get MACs.

use std::fmt;

use ring::{hkdf, hmac};

use super::MasterKey;

/// HKDF salt: names the scheme, so a future derivation can change it.
const SALT: &[u8] = b"rampart kdf v1";
/// HKDF info: what the derived key is for.
const INFO: &[u8] = b"rampart audit chain v1";

/// The key that seals audit rows. Cheap to clone. Its `Debug` shows only the
/// id of the master key it was derived from.
///
/// ring keeps the key as precomputed HMAC states rather than raw bytes and
/// does not wipe them on drop; they live as long as the vault that made them.
#[derive(Clone)]
pub struct ChainKey {
    key: hmac::Key,
    id: String,
}

impl ChainKey {
    pub(super) fn derive(master: &MasterKey) -> ChainKey {
        let prk = hkdf::Salt::new(hkdf::HKDF_SHA256, SALT).extract(master.bytes());
        // `expand` fails only for an output longer than 255 hash lengths; one
        // HMAC-SHA-256 key is one.
        let okm = prk
            .expand(&[INFO], hmac::HMAC_SHA256)
            .expect("HKDF output of one hash length");
        ChainKey {
            key: hmac::Key::from(okm),
            id: master.key_id(),
        }
    }

    /// The id of the master key this key was derived from (the id stored
    /// beside sealed secrets, and in the chain's head).
    pub fn id(&self) -> &str {
        &self.id
    }

    /// HMAC-SHA-256 over the concatenation of `parts`, as 64 hex digits.
    pub fn mac(&self, parts: &[&[u8]]) -> String {
        let mut ctx = hmac::Context::with_key(&self.key);
        for part in parts {
            ctx.update(part);
        }
        hex::encode(ctx.sign().as_ref())
    }
}

impl fmt::Debug for ChainKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ChainKey")
            .field("master_key_id", &self.id)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEX: &str = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";

    #[test]
    fn derivation_is_stable_and_separated() {
        let master = MasterKey::from_hex(HEX).unwrap();
        let a = ChainKey::derive(&master);
        let b = ChainKey::derive(&MasterKey::from_hex(HEX).unwrap());
        assert_eq!(a.mac(&[b"x"]), b.mac(&[b"x"]), "same master, same key");
        assert_eq!(a.id(), master.key_id());
        // Parts are concatenated.
        assert_eq!(a.mac(&[b"ab", b"c"]), a.mac(&[b"abc"]));
        // Not HMAC under the master key itself, nor plain SHA-256.
        let raw = hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, master.bytes()), b"x");
        assert_ne!(a.mac(&[b"x"]), hex::encode(raw.as_ref()));
        let other = ChainKey::derive(&MasterKey::generate());
        assert_ne!(a.mac(&[b"x"]), other.mac(&[b"x"]));
        // Pinned (computed independently with Python's hmac and hashlib:
        // HKDF-SHA-256 by RFC 5869, then HMAC-SHA-256), so that a change of
        // derivation is noticed: every chain sealed before it would stop
        // verifying.
        assert_eq!(
            a.mac(&[b"rampart"]),
            "879862c5d14350a73cff270999a48f5f1920178ba3d227654d835fd7f36fcda4"
        );
    }

    #[test]
    fn debug_shows_only_the_id() {
        let key = ChainKey::derive(&MasterKey::from_hex(HEX).unwrap());
        let shown = format!("{key:?}");
        assert!(shown.contains(key.id()), "{shown}");
        assert!(!shown.contains("0001020304"), "{shown}");
    }
}
