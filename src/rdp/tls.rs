//! TLS on the front: its certificate (configured, or generated on first
//! start). The client side towards a target, which records the certificate
//! the target presented so it can be pinned like an SSH host key, is
//! [`crate::upstream::tls`], shared with the database proxies.

use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use crate::services::StartError;
use crate::upstream::tls::provider;
pub use crate::upstream::tls::{connector, fingerprint};

/// The front's TLS acceptor and its certificate's public key (CredSSP
/// binds the NTLM exchange to it).
#[derive(Clone)]
pub struct Front {
    pub acceptor: tokio_rustls::TlsAcceptor,
    pub public_key: Vec<u8>,
}

/// Loads `cert` and `key` (PEM), or generates both when both are missing
/// (a self-signed ECDSA P-256 certificate for this host's name).
pub fn front(cert: &Path, key: &Path) -> Result<Front, StartError> {
    if !cert.exists() && !key.exists() {
        generate(cert, key)?;
    }
    let refuse = |what: &Path, e: &dyn std::fmt::Display| {
        StartError::Refused(format!("rdp certificate {}: {e}", what.display()))
    };
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .map_err(|e| refuse(cert, &e))?
        .collect::<Result<_, _>>()
        .map_err(|e| refuse(cert, &e))?;
    let first = certs
        .first()
        .ok_or_else(|| refuse(cert, &"no certificate in the file"))?;
    let public_key = public_key(first).map_err(|e| refuse(cert, &e))?;
    let private = PrivateKeyDer::from_pem_file(key).map_err(|e| refuse(key, &e))?;
    let config = rustls::ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS12, &rustls::version::TLS13])
        .map_err(|e| refuse(cert, &e))?
        .with_no_client_auth()
        .with_single_cert(certs, private)
        .map_err(|e| refuse(cert, &e))?;
    Ok(Front {
        acceptor: tokio_rustls::TlsAcceptor::from(Arc::new(config)),
        public_key,
    })
}

fn generate(cert: &Path, key: &Path) -> Result<(), StartError> {
    let refuse = |e: &dyn std::fmt::Display| {
        StartError::Refused(format!(
            "cannot generate the rdp certificate {}: {e}",
            cert.display()
        ))
    };
    let name = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|n| n.trim().to_string())
        .ok()
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| "rampart".into());
    let pair = rcgen::KeyPair::generate().map_err(|e| refuse(&e))?;
    let params = rcgen::CertificateParams::new(vec![name.clone(), "localhost".into()])
        .map_err(|e| refuse(&e))?;
    let made = params.self_signed(&pair).map_err(|e| refuse(&e))?;
    {
        use std::io::Write as _;
        use std::os::unix::fs::OpenOptionsExt as _;
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(key)
            .map_err(|e| refuse(&e))?;
        file.write_all(pair.serialize_pem().as_bytes())
            .map_err(|e| refuse(&e))?;
    }
    std::fs::write(cert, made.pem()).map_err(|e| refuse(&e))?;
    tracing::info!(
        "generated the RDP certificate {} for {name} (SHA-256 {})",
        cert.display(),
        fingerprint(made.der())
    );
    Ok(())
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
