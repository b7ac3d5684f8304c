//! The target side: X.224 negotiation asking for CredSSP or TLS, TLS (the
//! certificate presented is kept for pinning), then CredSSP as the client
//! with the vaulted credential. The person's own credentials never reach
//! the target.

use std::time::Duration;

use ironrdp_connector::credssp::CredsspSequence;
use ironrdp_connector::{Credentials, ServerName};
use ironrdp_core::{WriteBuf, decode, encode_vec};
use ironrdp_pdu::nego::{ConnectionConfirm, ConnectionRequest, RequestFlags, SecurityProtocol};
use ironrdp_pdu::x224::X224;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;

use super::wire::{Reader, WireError};
use crate::vault::Secret;

/// A target connection ready for the MCS phase.
pub struct Target {
    pub reader: Reader<TlsStream<TcpStream>>,
    /// The protocol the target chose (CredSSP, or TLS only).
    pub selected: SecurityProtocol,
    /// The DER certificate the target presented.
    pub certificate: Vec<u8>,
}

#[derive(Debug, thiserror::Error)]
pub enum BackError {
    #[error("cannot reach {0}")]
    Connect(String),
    #[error("{0}")]
    Wire(#[from] WireError),
    #[error("the target answered no RDP: {0}")]
    NotRdp(String),
    #[error("the target refused the security protocols rampart speaks (failure code {0})")]
    Refused(u32),
    #[error("TLS with the target: {0}")]
    Tls(std::io::Error),
    #[error("the target refused the stored credential ({0})")]
    Credssp(String),
    #[error(
        "the target's TLS certificate is {presented}, not the pinned {pinned}; if it was renewed, an admin checks it and runs `rampart asset trust ASSET` to pin the new one"
    )]
    CertificateChanged { presented: String, pinned: String },
}

/// How a target's certificate is filed among an asset's pinned host keys.
pub const PIN_ALGORITHM: &str = "rdp-tls";

/// The vaulted login for the target.
pub struct Login {
    pub username: String,
    pub domain: Option<String>,
    pub password: Secret<String>,
}

impl Login {
    /// `DOMAIN\user` or `user@domain` splits; a bare name has no domain.
    pub fn new(account: &str, password: Secret<String>) -> Login {
        let (username, domain) = match account.split_once('\\') {
            Some((d, u)) => (u.to_string(), Some(d.to_string())),
            None => (account.to_string(), None),
        };
        Login {
            username,
            domain,
            password,
        }
    }
}

/// Connects and authenticates; `pinned` is the certificate fingerprint
/// pinned for the asset, checked before the credential is sent.
pub async fn connect(
    address: &str,
    port: u16,
    login: &Login,
    timeout: Duration,
    pinned: Option<&str>,
) -> Result<Target, BackError> {
    let dial = TcpStream::connect((address, port));
    let stream = match tokio::time::timeout(timeout, dial).await {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => return Err(BackError::Connect(format!("{address}:{port}: {e}"))),
        Err(_) => return Err(BackError::Connect(format!("{address}:{port}: no answer"))),
    };
    let _ = stream.set_nodelay(true);
    let mut reader = Reader::new(stream);
    let request = ConnectionRequest {
        nego_data: None,
        flags: RequestFlags::empty(),
        protocol: SecurityProtocol::HYBRID | SecurityProtocol::SSL,
        correlation_info: None,
    };
    let bytes = encode_vec(&X224(request)).map_err(|e| BackError::NotRdp(e.to_string()))?;
    reader
        .get_mut()
        .write_all(&bytes)
        .await
        .map_err(WireError::Io)?;
    let answer = reader.pdu().await?;
    let selected = match decode::<X224<ConnectionConfirm>>(&answer)
        .map_err(|e| BackError::NotRdp(e.to_string()))?
        .0
    {
        ConnectionConfirm::Response { protocol, .. } => protocol,
        ConnectionConfirm::Failure { code } => return Err(BackError::Refused(u32::from(code))),
    };
    if !selected.intersects(SecurityProtocol::HYBRID | SecurityProtocol::SSL) {
        return Err(BackError::NotRdp(format!(
            "it chose {selected}, which rampart does not speak"
        )));
    }
    let (stream, ahead) = reader.into_parts();
    if !ahead.is_empty() {
        return Err(BackError::NotRdp("data before the TLS handshake".into()));
    }
    let (connector, seen) = super::tls::connector();
    let name = rustls::pki_types::ServerName::try_from(address.to_string())
        .unwrap_or_else(|_| rustls::pki_types::ServerName::try_from("rdp-target").expect("valid"));
    let stream = connector
        .connect(name, stream)
        .await
        .map_err(BackError::Tls)?;
    let certificate = seen
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .take()
        .unwrap_or_default();
    if let Some(pinned) = pinned {
        let presented = super::tls::fingerprint(&certificate);
        if presented != pinned {
            return Err(BackError::CertificateChanged {
                presented,
                pinned: pinned.to_string(),
            });
        }
    }
    let mut reader = Reader::new(stream);
    if selected.contains(SecurityProtocol::HYBRID) {
        let public_key = super::tls::public_key(&certificate).map_err(BackError::NotRdp)?;
        credssp(&mut reader, address, login, selected, public_key).await?;
    }
    Ok(Target {
        reader,
        selected,
        certificate,
    })
}

async fn credssp(
    reader: &mut Reader<TlsStream<TcpStream>>,
    address: &str,
    login: &Login,
    selected: SecurityProtocol,
    public_key: Vec<u8>,
) -> Result<(), BackError> {
    let failed = |e: &dyn std::fmt::Display| BackError::Credssp(e.to_string());
    let credentials = Credentials::UsernamePassword {
        username: login.username.clone(),
        password: login.password.expose().clone(),
    };
    let (mut sequence, mut request) = CredsspSequence::init(
        credentials,
        login.domain.as_deref(),
        selected,
        ServerName::new(address),
        public_key,
        None,
    )
    .map_err(|e| failed(&e))?;
    let mut out = WriteBuf::new();
    loop {
        let state = sequence
            .process_ts_request(request)
            .resolve_to_result()
            .map_err(|e| failed(&e))?;
        out.clear();
        let written = sequence
            .handle_process_result(state, &mut out)
            .map_err(|e| failed(&e))?;
        if let Some(n) = written.size() {
            reader
                .get_mut()
                .write_all(&out[..n])
                .await
                .map_err(WireError::Io)?;
        }
        let Some(hint) = sequence.next_pdu_hint() else {
            return Ok(());
        };
        let bytes = reader
            .frame(|b| match hint.find_size(b) {
                Ok(found) => Ok(found.map(|(_, n)| n)),
                Err(e) => Err(e.to_string()),
            })
            .await
            .map_err(|e| match e {
                // The target drops the connection on a wrong password.
                WireError::Closed => BackError::Credssp("it closed the connection".into()),
                other => BackError::Wire(other),
            })?;
        match sequence
            .decode_server_message(&bytes)
            .map_err(|e| failed(&e))?
        {
            Some(next) => request = next,
            None => return Ok(()),
        }
    }
}
