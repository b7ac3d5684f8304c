//! The password proofs of MySQL's authentication plugins, and the RSA
//! step of `caching_sha2_password`. The hashes that stand for the password
//! are copied into memory that is wiped when dropped (ring's own digest
//! values are plain stack data).

use ring::digest::{self, Context, SHA1_FOR_LEGACY_USE_ONLY, SHA256};
use zeroize::Zeroizing;

/// Why the password could not be encrypted to the server's key. The text
/// names no secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RsaError {
    #[error("the server's public key is not PEM")]
    Pem,
    #[error("the server's public key is not an RSA key")]
    Key,
    #[error("the password is too long for the server's RSA key")]
    Encrypt,
}

/// A fresh 20-byte challenge for the client, printable and without NUL
/// (clients read its second half as a C string), as servers make them.
pub fn fresh() -> [u8; 20] {
    rand::random::<[u8; 20]>().map(|b| 33 + b % 94)
}

fn xor(a: &[u8], b: &[u8]) -> Zeroizing<Vec<u8>> {
    Zeroizing::new(a.iter().zip(b).map(|(x, y)| x ^ y).collect())
}

/// `mysql_native_password`: SHA1(password) XOR SHA1(scramble +
/// SHA1(SHA1(password))); empty for an empty password.
pub fn native_password(password: &[u8], scramble: &[u8]) -> Zeroizing<Vec<u8>> {
    if password.is_empty() {
        return Zeroizing::new(Vec::new());
    }
    let stage1 = Zeroizing::new(
        digest::digest(&SHA1_FOR_LEGACY_USE_ONLY, password)
            .as_ref()
            .to_vec(),
    );
    let stage2 = digest::digest(&SHA1_FOR_LEGACY_USE_ONLY, &stage1);
    let mut ctx = Context::new(&SHA1_FOR_LEGACY_USE_ONLY);
    // The server's challenge is the first 20 bytes of its auth data.
    ctx.update(scramble.get(..20).unwrap_or(scramble));
    ctx.update(stage2.as_ref());
    xor(&stage1, ctx.finish().as_ref())
}

/// `caching_sha2_password`'s fast path: SHA256(password) XOR
/// SHA256(SHA256(SHA256(password)) + scramble); empty for an empty
/// password.
pub fn caching_sha2(password: &[u8], scramble: &[u8]) -> Zeroizing<Vec<u8>> {
    if password.is_empty() {
        return Zeroizing::new(Vec::new());
    }
    let p1 = Zeroizing::new(digest::digest(&SHA256, password).as_ref().to_vec());
    let p2 = digest::digest(&SHA256, &p1);
    let mut ctx = Context::new(&SHA256);
    ctx.update(p2.as_ref());
    ctx.update(scramble.get(..20).unwrap_or(scramble));
    xor(&p1, ctx.finish().as_ref())
}

/// The full `caching_sha2_password` login without TLS: the password and a
/// NUL, XOR the scramble (repeated), encrypted with RSA-OAEP (SHA-1) to the
/// public key the server sent as PEM (SubjectPublicKeyInfo, or PKCS#1).
pub fn rsa_password(pem: &[u8], password: &[u8], scramble: &[u8]) -> Result<Vec<u8>, RsaError> {
    use rsa::pkcs1::DecodeRsaPublicKey;
    use rsa::pkcs8::DecodePublicKey;

    let der = pem_body(pem)?;
    let key = rsa::RsaPublicKey::from_public_key_der(&der)
        .or_else(|_| rsa::RsaPublicKey::from_pkcs1_der(&der))
        .map_err(|_| RsaError::Key)?;
    let scramble = scramble.get(..20).unwrap_or(scramble);
    if scramble.is_empty() {
        return Err(RsaError::Encrypt);
    }
    let mut plain = Zeroizing::new(password.to_vec());
    plain.push(0);
    for (b, s) in plain.iter_mut().zip(scramble.iter().cycle()) {
        *b ^= s;
    }
    // The OS random source; a failure of it would panic in UnwrapErr, as
    // in every other use of OS randomness here (there is no fallible
    // encrypt in rsa 0.10).
    let mut rng = getrandom::rand_core::UnwrapErr(getrandom::SysRng);
    key.encrypt(&mut rng, rsa::Oaep::<sha1::Sha1>::new(), &plain)
        .map_err(|_| RsaError::Encrypt)
}

/// The DER inside a PEM block.
fn pem_body(pem: &[u8]) -> Result<Vec<u8>, RsaError> {
    use base64::Engine;
    let text = std::str::from_utf8(pem).map_err(|_| RsaError::Pem)?;
    let mut lines = text.lines().map(str::trim).filter(|l| !l.is_empty());
    if !lines.next().is_some_and(|l| l.starts_with("-----BEGIN ")) {
        return Err(RsaError::Pem);
    }
    let mut body = String::new();
    for line in lines {
        if line.starts_with("-----END ") {
            return base64::engine::general_purpose::STANDARD
                .decode(body.as_bytes())
                .map_err(|_| RsaError::Pem);
        }
        body.push_str(line);
    }
    Err(RsaError::Pem)
}
