//! The bastion's own TLS certificates, for its RDP front and its web side:
//! loaded from PEM files, or generated on first start (self-signed, ECDSA
//! P-256) when both files are missing. A generated key file is mode 0600.

use std::path::Path;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use crate::upstream::tls::{fingerprint, provider};

/// A certificate chain and its key, as read from the files.
#[derive(Debug)]
pub struct Loaded {
    pub chain: Vec<CertificateDer<'static>>,
    pub key: PrivateKeyDer<'static>,
}

/// Reads `cert` and `key`, or generates both for `names` when both are
/// missing. `what` names them in errors ("rdp certificate").
pub fn load_or_generate(
    cert: &Path,
    key: &Path,
    what: &str,
    names: &[String],
) -> Result<Loaded, String> {
    if !cert.exists() && !key.exists() {
        generate(cert, key, what, names)?;
    }
    let refuse = |path: &Path, e: &dyn std::fmt::Display| format!("{what} {}: {e}", path.display());
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .map_err(|e| refuse(cert, &e))?
        .collect::<Result<_, _>>()
        .map_err(|e| refuse(cert, &e))?;
    if chain.is_empty() {
        return Err(refuse(cert, &"no certificate in the file"));
    }
    let key = PrivateKeyDer::from_pem_file(key).map_err(|e| refuse(key, &e))?;
    Ok(Loaded { chain, key })
}

/// A TLS 1.2/1.3 server configuration for `loaded`, offering `alpn`.
pub fn server_config(
    loaded: Loaded,
    what: &str,
    alpn: &[&[u8]],
) -> Result<rustls::ServerConfig, String> {
    let mut config = rustls::ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS12, &rustls::version::TLS13])
        .map_err(|e| format!("{what}: {e}"))?
        .with_no_client_auth()
        .with_single_cert(loaded.chain, loaded.key)
        .map_err(|e| format!("{what}: {e}"))?;
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Ok(config)
}

/// This host's name, for a generated certificate.
pub fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|n| n.trim().to_string())
        .ok()
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| "rampart".into())
}

fn generate(cert: &Path, key: &Path, what: &str, names: &[String]) -> Result<(), String> {
    let refuse =
        |e: &dyn std::fmt::Display| format!("cannot generate the {what} {}: {e}", cert.display());
    let pair = rcgen::KeyPair::generate().map_err(|e| refuse(&e))?;
    let params = rcgen::CertificateParams::new(names.to_vec()).map_err(|e| refuse(&e))?;
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
        "generated the {what} {} for {} (SHA-256 {})",
        cert.display(),
        names.join(", "),
        fingerprint(made.der())
    );
    Ok(())
}
