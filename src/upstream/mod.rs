//! Connectors to targets. Every session starts from a [`Grant`]: there is
//! no way to open a channel on a target without one. Today: SSH via the
//! russh client, with the account's secret opened from the vault (or the
//! person's typed-in @INPUT pair), the target's host key pinned on first use
//! and a changed key refused until an admin re-trusts it. The one
//! connection without a grant is an admin's connection test
//! ([`probe_ssh`]): it authenticates, disconnects and returns no handle.
//!
//! Must never: log or return the secret, accept a changed host key, or let
//! the target open channels towards the person (agent forwarding and the
//! like are refused).

mod end;
pub mod pty;
pub mod read_ahead;
pub mod tls;

pub use end::{TargetEnd, TargetEvents};

use std::sync::{Arc, Mutex};
use std::time::Duration;

use russh::client;
use russh::keys::{HashAlg, PrivateKey, PrivateKeyWithHashAlg, PublicKey, PublicKeyOrCertificate};
use russh::{ChannelOpenFailure, Preferred, cipher, kex};

use crate::auth::fingerprint_of;
use crate::model::HostKey;
use crate::policy::Grant;
use crate::vault::Secret;

/// How the bastion proves itself to the target.
pub enum Credential {
    Password(Secret<String>),
    PrivateKey(Box<PrivateKey>),
    /// Nothing stored and nothing typed: only `none` auth can work.
    None,
}

impl Credential {
    /// Turns a vault-opened secret of the given kind into a credential.
    pub fn from_secret(
        kind: crate::model::SecretKind,
        secret: Option<Secret<String>>,
    ) -> Result<Credential, UpstreamError> {
        use crate::model::SecretKind;
        match (kind, secret) {
            (SecretKind::Password, Some(pw)) => Ok(Credential::Password(pw)),
            (SecretKind::PrivateKey, Some(pem)) => {
                russh::keys::decode_secret_key(pem.expose(), None)
                    .map(|k| Credential::PrivateKey(Box::new(k)))
                    .map_err(|_| UpstreamError::BadSecret)
            }
            (SecretKind::None, _) => Ok(Credential::None),
            (SecretKind::Password | SecretKind::PrivateKey, None) => Err(UpstreamError::BadSecret),
        }
    }
}

/// Why a target could not be reached; `Display` is what the person sees.
#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    #[error("cannot reach {asset} ({address}): {reason}")]
    Unreachable {
        asset: String,
        address: String,
        reason: String,
    },
    #[error(
        "the host key of {asset} has changed (now {presented}, pinned {pinned}): refusing to connect; \
         an admin must check it and run `rampart asset trust {asset}`"
    )]
    HostKeyChanged {
        asset: String,
        presented: String,
        pinned: String,
    },
    #[error("{asset} refused the credentials of account {account}")]
    AuthFailed { asset: String, account: String },
    #[error("the stored secret of this account cannot be used; an admin must set it again")]
    BadSecret,
    #[error("no master key is loaded, so the stored secret cannot be opened; tell an admin")]
    NoVault,
    /// A caller passed a secret that is not the grant's account's.
    #[error("the credential does not belong to the granted account")]
    NotThisAccount,
    #[error("{asset}: {reason}")]
    Protocol { asset: String, reason: String },
}

/// Options for connecting.
#[derive(Debug, Clone)]
pub struct ConnectOptions {
    pub connect_timeout: Duration,
    pub keepalive_interval: Option<Duration>,
}

impl Default for ConnectOptions {
    fn default() -> Self {
        ConnectOptions {
            connect_timeout: Duration::from_secs(10),
            keepalive_interval: Some(Duration::from_secs(30)),
        }
    }
}

/// An authenticated connection to a target.
pub struct Upstream {
    handle: client::Handle<TargetHandler>,
    /// The key the target presented, to pin when none was pinned.
    pub presented_key: Option<HostKey>,
    /// The key line (`ALGO BASE64`) to store when pinning.
    pub presented_key_line: Option<String>,
}

impl Upstream {
    /// Opens a session channel on the target.
    pub async fn open_session(&self) -> Result<russh::Channel<client::Msg>, russh::Error> {
        self.handle.channel_open_session().await
    }

    pub async fn disconnect(&self) {
        let _ = self
            .handle
            .disconnect(russh::Disconnect::ByApplication, "session ended", "en")
            .await;
    }
}

/// What the target presented during key exchange.
#[derive(Default)]
struct Seen {
    key: Option<(HostKey, String)>,
    changed: Option<(String, String)>,
}

struct TargetHandler {
    pinned: Vec<HostKey>,
    seen: Arc<Mutex<Seen>>,
}

impl client::Handler for TargetHandler {
    type Error = russh::Error;

    async fn check_server_key(
        &mut self,
        key: &PublicKeyOrCertificate,
    ) -> Result<bool, Self::Error> {
        let key: &PublicKey = match key {
            PublicKeyOrCertificate::PublicKey { key, .. } => key,
            // Host certificates are not trusted by pinning: refuse.
            PublicKeyOrCertificate::Certificate(_) => return Ok(false),
        };
        let algorithm = key.algorithm().as_str().to_string();
        let fingerprint = fingerprint_of(key);
        let line = key.to_openssh().unwrap_or_default();
        let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        seen.key = Some((
            HostKey {
                algorithm: algorithm.clone(),
                fingerprint: fingerprint.clone(),
                pinned_at: jiff::Timestamp::now(),
            },
            line,
        ));
        if self.pinned.is_empty() {
            // Trust on first use: the caller pins it after authentication.
            return Ok(true);
        }
        if self.pinned.iter().any(|p| p.fingerprint == fingerprint) {
            return Ok(true);
        }
        let pinned = self
            .pinned
            .iter()
            .map(|p| p.fingerprint.clone())
            .collect::<Vec<_>>()
            .join(", ");
        seen.changed = Some((fingerprint, pinned));
        Ok(false)
    }

    async fn server_channel_open_agent_forward(
        &mut self,
        _channel: russh::Channel<client::Msg>,
        reply: client::ChannelOpenHandle,
        _session: &mut client::Session,
    ) -> Result<(), Self::Error> {
        // The person's agent never reaches the target.
        reply
            .reject(ChannelOpenFailure::AdministrativelyProhibited)
            .await;
        Ok(())
    }
}

/// Messages russh queues per channel, on both of the bastion's SSH ends,
/// before it stops reading the connection: up to 32 KiB each, so 512 KiB
/// per channel instead of russh's default of 100 (3.2 MB). russh widens
/// the peer's window as data arrives, not as it is taken, so this queue,
/// not the window, is what a channel whose reader waits (an upload to a
/// slower target, output to a slower person) holds.
pub const CHANNEL_QUEUE: usize = 16;

fn client_config(options: &ConnectOptions) -> client::Config {
    client::Config {
        channel_buffer_size: CHANNEL_QUEUE,
        inactivity_timeout: None,
        keepalive_interval: options.keepalive_interval,
        nodelay: true,
        window_size: 2 * 1024 * 1024,
        maximum_packet_size: 32768,
        preferred: Preferred {
            kex: std::borrow::Cow::Borrowed(&[
                kex::MLKEM768X25519_SHA256,
                kex::CURVE25519,
                kex::CURVE25519_PRE_RFC_8731,
                kex::DH_G16_SHA512,
                kex::DH_G14_SHA256,
                kex::EXTENSION_SUPPORT_AS_CLIENT,
                kex::EXTENSION_OPENSSH_STRICT_KEX_AS_CLIENT,
            ]),
            // AES-GCM first: on CPUs with AES instructions ring's AES-GCM
            // costs a fraction of its ChaCha20-Poly1305 (an unfused cipher
            // and MAC), and every byte a target sends is decrypted here
            // (issue 14: CPU per GB relayed). Both are AEAD ciphers of
            // equal standing; a target without GCM gets ChaCha20.
            cipher: std::borrow::Cow::Borrowed(&[
                cipher::AES_256_GCM,
                cipher::AES_128_GCM,
                cipher::CHACHA20_POLY1305,
                cipher::AES_256_CTR,
                cipher::AES_128_CTR,
            ]),
            ..Preferred::default()
        },
        ..client::Config::default()
    }
}

/// The secret to reach a grant's account with: the account's own sealed
/// secret as the store holds it, or the password the person typed for an
/// `@INPUT` account. [`connect_ssh`] takes the username from the grant and
/// refuses a secret that belongs to another account, so no caller can pair
/// a grant with another account's credential.
pub enum TargetSecret {
    Stored {
        account_id: String,
        kind: crate::model::SecretKind,
        sealed: Option<String>,
    },
    Typed(Secret<String>),
}

impl TargetSecret {
    /// The password of `grant`'s account, for targets that log in with
    /// nothing else (databases); a stored key or no secret is refused.
    pub fn password(
        self,
        grant: &Grant,
        vault: Option<&crate::vault::Vault>,
    ) -> Result<Secret<String>, UpstreamError> {
        match self.credential(grant, vault)? {
            Credential::Password(password) => Ok(password),
            Credential::PrivateKey(_) | Credential::None => Err(UpstreamError::Protocol {
                asset: grant.asset_name().to_string(),
                reason: format!(
                    "account {} holds no password, and a database logs in with one; an admin sets it with `account edit {} {} --password-stdin`",
                    grant.account().username(),
                    grant.asset_name(),
                    grant.account().username()
                ),
            }),
        }
    }

    /// Opens the secret for `grant`'s account, or refuses it.
    fn credential(
        self,
        grant: &Grant,
        vault: Option<&crate::vault::Vault>,
    ) -> Result<Credential, UpstreamError> {
        use crate::policy::GrantAccount;
        match (grant.account(), self) {
            (
                GrantAccount::Stored { account_id, .. },
                TargetSecret::Stored {
                    account_id: of,
                    kind,
                    sealed,
                },
            ) if *account_id == of => {
                let secret = match (vault, sealed) {
                    (Some(vault), Some(sealed)) => {
                        Some(vault.open_string(&sealed).map_err(|e| {
                            tracing::error!("account secret cannot be opened: {e}");
                            UpstreamError::BadSecret
                        })?)
                    }
                    (None, Some(_)) => return Err(UpstreamError::NoVault),
                    (_, None) => None,
                };
                Credential::from_secret(kind, secret)
            }
            (GrantAccount::Input { .. }, TargetSecret::Typed(password)) => {
                Ok(Credential::Password(password))
            }
            _ => Err(UpstreamError::NotThisAccount),
        }
    }
}

/// Connects to the target of `grant` on its SSH port and authenticates as
/// the grant's account with `secret`. `pinned` are the host keys stored for
/// the asset (empty: trust on first use; the caller pins `presented_key`).
pub async fn connect_ssh(
    grant: &Grant,
    secret: TargetSecret,
    vault: Option<&crate::vault::Vault>,
    pinned: Vec<HostKey>,
    options: &ConnectOptions,
) -> Result<Upstream, UpstreamError> {
    let credential = secret.credential(grant, vault)?;
    let target = ProbeTarget {
        asset: grant.asset_name(),
        address: grant.address(),
        port: grant.protocol().port,
    };
    let seen = Arc::new(Mutex::new(Seen::default()));
    let username = grant.account().username();
    let handle = dial(&target, username, credential, pinned, options, &seen).await?;
    let (presented_key, presented_key_line) =
        match seen.lock().unwrap_or_else(|e| e.into_inner()).key.take() {
            Some((key, line)) => (Some(key), Some(line)),
            None => (None, None),
        };
    Ok(Upstream {
        handle,
        presented_key,
        presented_key_line,
    })
}

/// Where to connect: an asset's name (for messages), address and SSH port.
#[derive(Debug, Clone, Copy)]
pub struct ProbeTarget<'a> {
    pub asset: &'a str,
    pub address: &'a str,
    pub port: u16,
}

/// A host key as the target presented it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct PresentedKey {
    /// The key type, e.g. `ssh-ed25519`.
    pub algorithm: String,
    /// `SHA256:...`, as `ssh-keygen -lf` prints it.
    pub fingerprint: String,
    /// `ALGO BASE64`: what `rampart asset trust NAME --key LINE` pins.
    pub openssh: String,
}

/// What [`probe_ssh`] found.
#[derive(Debug)]
pub struct Probe {
    /// `Ok` when the target accepted the credential.
    pub result: Result<(), UpstreamError>,
    /// The host key the target presented, also when it is not the pinned
    /// one or authentication failed; `None` when no key exchange happened.
    pub presented: Option<PresentedKey>,
}

/// Tests an account of an asset: connects, checks the host key against
/// `pinned` exactly as [`connect_ssh`] does, authenticates, disconnects.
/// It is the one connection made without a [`Grant`] (an admin's test, the
/// caller checks the role): it never opens a channel and hands no
/// connection back, so it cannot carry a session. It pins nothing: with no
/// pinned key the presented one is reported, for an admin to trust.
pub async fn probe_ssh(
    target: ProbeTarget<'_>,
    username: &str,
    credential: Credential,
    pinned: Vec<HostKey>,
    options: &ConnectOptions,
) -> Probe {
    let seen = Arc::new(Mutex::new(Seen::default()));
    // The connect timeout covers the TCP connection and key exchange; a
    // target that then stalls in authentication must not hold the test.
    let limit = options.connect_timeout.saturating_mul(2);
    let dialled = tokio::time::timeout(
        limit,
        dial(&target, username, credential, pinned, options, &seen),
    )
    .await;
    let result = match dialled {
        Ok(Ok(handle)) => {
            let _ = handle
                .disconnect(russh::Disconnect::ByApplication, "connection test", "en")
                .await;
            Ok(())
        }
        Ok(Err(e)) => Err(e),
        Err(_) => Err(UpstreamError::Protocol {
            asset: target.asset.to_string(),
            reason: format!("no answer to authentication within {limit:?}"),
        }),
    };
    let presented = seen
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .key
        .take()
        .map(|(key, line)| PresentedKey {
            algorithm: key.algorithm,
            fingerprint: key.fingerprint,
            openssh: line,
        });
    Probe { result, presented }
}

/// Connects, checks the host key and authenticates; what the target
/// presented is left in `seen`.
async fn dial(
    target: &ProbeTarget<'_>,
    username: &str,
    credential: Credential,
    pinned: Vec<HostKey>,
    options: &ConnectOptions,
    seen: &Arc<Mutex<Seen>>,
) -> Result<client::Handle<TargetHandler>, UpstreamError> {
    let asset = target.asset.to_string();
    let address = target.address.to_string();
    let handler = TargetHandler {
        pinned,
        seen: seen.clone(),
    };
    let config = Arc::new(client_config(options));
    let socket = (
        address
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_string(),
        target.port,
    );
    let connecting = async move {
        let stream = tokio::net::TcpStream::connect(socket).await?;
        if config.nodelay
            && let Err(e) = stream.set_nodelay(true)
        {
            tracing::debug!("TCP_NODELAY on the target connection: {e}");
        }
        client::connect_stream(config, read_ahead::ReadAhead::new(stream), handler).await
    };
    let result = tokio::time::timeout(options.connect_timeout, connecting).await;
    let mut handle = match result {
        Err(_) => {
            return Err(UpstreamError::Unreachable {
                asset,
                address,
                reason: format!("no answer within {:?}", options.connect_timeout),
            });
        }
        Ok(Err(e)) => {
            let seen = seen.lock().unwrap_or_else(|e| e.into_inner());
            if let Some((presented, pinned)) = &seen.changed {
                return Err(UpstreamError::HostKeyChanged {
                    asset,
                    presented: presented.clone(),
                    pinned: pinned.clone(),
                });
            }
            return Err(UpstreamError::Unreachable {
                asset,
                address,
                reason: short_reason(&e),
            });
        }
        Ok(Ok(handle)) => handle,
    };

    let auth = match credential {
        Credential::Password(pw) => {
            handle
                .authenticate_password(username, pw.expose().as_str())
                .await
        }
        Credential::PrivateKey(key) => {
            let hash = match key.algorithm() {
                russh::keys::Algorithm::Rsa { .. } => handle
                    .best_supported_rsa_hash()
                    .await
                    .ok()
                    .flatten()
                    .flatten()
                    .or(Some(HashAlg::Sha256)),
                _ => None,
            };
            handle
                .authenticate_publickey(username, PrivateKeyWithHashAlg::new(Arc::new(*key), hash))
                .await
        }
        Credential::None => handle.authenticate_none(username).await,
    };
    match auth {
        Ok(r) if r.success() => Ok(handle),
        Ok(_) => Err(UpstreamError::AuthFailed {
            asset,
            account: username.to_string(),
        }),
        Err(e) => Err(UpstreamError::Protocol {
            asset,
            reason: short_reason(&e),
        }),
    }
}

/// The last line of an error chain, without internals a person cannot use.
fn short_reason(e: &russh::Error) -> String {
    match e {
        russh::Error::IO(io) => io.to_string(),
        russh::Error::ConnectionTimeout => "connection timed out".into(),
        russh::Error::Disconnect => "the target closed the connection".into(),
        russh::Error::UnknownKey => "the target's host key was refused".into(),
        other => other.to_string(),
    }
}

/// An I/O error towards a target as a short lower-case reason, for the
/// line a person sees (the database proxies, the web side).
pub fn io_reason(e: &std::io::Error) -> String {
    use std::io::ErrorKind::*;
    match e.kind() {
        ConnectionRefused => "connection refused".into(),
        TimedOut => "timed out".into(),
        HostUnreachable => "host unreachable".into(),
        NetworkUnreachable => "network unreachable".into(),
        _ => e.to_string(),
    }
}
