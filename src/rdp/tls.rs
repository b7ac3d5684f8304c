//! TLS on the front: its certificate (configured, or generated on first
//! start). The client side towards a target, which records the certificate
//! the target presented so it can be pinned like an SSH host key, is
//! [`crate::upstream::tls`], shared with the database proxies.

use std::path::Path;
use std::sync::Arc;

use crate::services::StartError;
pub use crate::upstream::tls::{connector, fingerprint};

/// The front's TLS acceptor and its certificate's public key (CredSSP
/// binds the NTLM exchange to it).
#[derive(Clone)]
pub struct Front {
    pub acceptor: tokio_rustls::TlsAcceptor,
    pub public_key: Vec<u8>,
}

/// Loads `cert` and `key` (PEM), or generates both when both are missing
/// (a self-signed certificate for this host's name).
pub fn front(cert: &Path, key: &Path) -> Result<Front, StartError> {
    let what = "rdp certificate";
    let names = [crate::certificate::host_name(), "localhost".to_string()];
    let loaded = crate::certificate::load_or_generate(cert, key, what, &names)
        .map_err(StartError::Refused)?;
    let first = loaded
        .chain
        .first()
        .ok_or_else(|| StartError::Refused(format!("{what}: no certificate")))?;
    let public_key = public_key(first)
        .map_err(|e| StartError::Refused(format!("{what} {}: {e}", cert.display())))?;
    let config =
        crate::certificate::server_config(loaded, what, &[]).map_err(StartError::Refused)?;
    Ok(Front {
        acceptor: tokio_rustls::TlsAcceptor::from(Arc::new(config)),
        public_key,
    })
}

/// The certificate's subjectPublicKey bits, as CredSSP's public key
/// binding wants them.
pub fn public_key(cert: &[u8]) -> Result<Vec<u8>, String> {
    use x509_cert::der::Decode;
    let parsed = x509_cert::Certificate::from_der(cert).map_err(|e| e.to_string())?;
    Ok(parsed
        .tbs_certificate()
        .subject_public_key_info()
        .subject_public_key
        .raw_bytes()
        .to_vec())
}
