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

/// The certificate fingerprint pinned for an asset under `algorithm`
/// (`rdp-tls`, `postgresql-tls`, ...), if any.
pub async fn pinned(
    store: &crate::store::Store,
    asset_id: &str,
    algorithm: &str,
) -> Result<Option<String>, crate::store::StoreError> {
    let mut conn = store.conn().await?;
    let keys = crate::store::assets::host_keys(&mut conn, asset_id).await?;
    Ok(keys
        .into_iter()
        .find(|k| k.algorithm == algorithm)
        .map(|k| k.fingerprint))
}

/// Pins the certificate a target presented on first use, among the
/// asset's host keys (`asset trust` forgets it); audited in the log when
/// it is new, and a failure only warned about (the next connection pins).
pub async fn pin_first(
    store: &crate::store::Store,
    now: jiff::Timestamp,
    asset_id: &str,
    asset: &str,
    algorithm: &str,
    der: &[u8],
) {
    use base64::Engine as _;
    let fingerprint = fingerprint(der);
    let encoded = base64::engine::general_purpose::STANDARD.encode(der);
    let pinned = async {
        let mut tx = store.begin().await?;
        let first = crate::store::assets::pin_first_host_key(
            &mut tx,
            asset_id,
            algorithm,
            &fingerprint,
            &encoded,
            now,
        )
        .await?;
        store.commit(tx).await?;
        Ok::<_, crate::store::StoreError>(first)
    };
    match pinned.await {
        Ok(true) => {
            tracing::info!(target: "audit", asset, algorithm, %fingerprint, "TLS certificate pinned on first use")
        }
        Ok(false) => {}
        Err(e) => tracing::warn!(asset, algorithm, "cannot pin the TLS certificate: {e}"),
    }
}
