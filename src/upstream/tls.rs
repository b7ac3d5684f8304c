//! TLS towards a target (an RDP host, a database server that asks for it):
//! every certificate is accepted by the handshake, and the one presented
//! is kept for the caller to pin on first use or compare with the pin,
//! like an SSH host key. A target's certificate is self-signed far more
//! often than not, so a CA check would only teach people to turn it off;
//! the pin is the check.

use std::sync::{Arc, Mutex};

use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use sha2::{Digest, Sha256};

/// ring's provider, as the object store uses (deprecated only because it
/// lacks post-quantum key exchange, which RDP clients and database servers
/// do not offer).
pub fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    #[allow(deprecated)]
    Arc::new(rustls::crypto::ring::default_provider())
}

/// `SHA256:hex` of a DER certificate: how pins are shown and stored.
pub fn fingerprint(der: &[u8]) -> String {
    format!("SHA256:{}", hex::encode(Sha256::digest(der)))
}

/// The name sent in the handshake's SNI for `address` (a host name, or an
/// IP address, which rustls sends none for); an address rustls cannot
/// take gets a fixed stand-in, since the pin and not the name is checked.
pub fn server_name(address: &str) -> ServerName<'static> {
    ServerName::try_from(address.to_string())
        .unwrap_or_else(|_| ServerName::try_from("rampart-target").expect("a valid DNS name"))
}

/// A connector that accepts any certificate, and where the one presented
/// is put once the handshake has verified the server holds its key.
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
