//! TLS on both legs: the front's certificate (configured, or generated on
//! first start), and the client side towards a target, which records the
//! certificate the target presented so it can be pinned like an SSH host
//! key.

use std::path::Path;
use std::sync::{Arc, Mutex};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use sha2::{Digest, Sha256};

use crate::services::StartError;

/// The front's TLS acceptor and its certificate's public key (CredSSP
/// binds the NTLM exchange to it).
#[derive(Clone)]
pub struct Front {
    pub acceptor: tokio_rustls::TlsAcceptor,
    pub public_key: Vec<u8>,
}

/// ring's provider, as the object store uses (deprecated only because it
/// lacks post-quantum key exchange, which RDP clients do not offer).
fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    #[allow(deprecated)]
    Arc::new(rustls::crypto::ring::default_provider())
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

/// `SHA256:hex` of a DER certificate: how pins are shown and stored.
pub fn fingerprint(der: &[u8]) -> String {
    format!("SHA256:{}", hex::encode(Sha256::digest(der)))
}

/// TLS towards a target: every certificate is accepted here, and the one
/// presented is kept for the caller to pin or compare (a target's RDP
/// certificate is self-signed far more often than not).
pub fn connector() -> (tokio_rustls::TlsConnector, Arc<Mutex<Option<Vec<u8>>>>) {
    let seen = Arc::new(Mutex::new(None));
    let verifier = Arc::new(Presented {
        seen: seen.clone(),
        provider: provider(),
    });
    let config = rustls::ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS12, &rustls::version::TLS13])
        .expect("ring supports TLS 1.2 and 1.3")
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth();
    (tokio_rustls::TlsConnector::from(Arc::new(config)), seen)
}

#[derive(Debug)]
struct Presented {
    seen: Arc<Mutex<Option<Vec<u8>>>>,
    provider: Arc<rustls::crypto::CryptoProvider>,
}

impl rustls::client::danger::ServerCertVerifier for Presented {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        *self.seen.lock().unwrap_or_else(|e| e.into_inner()) = Some(end_entity.to_vec());
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}
