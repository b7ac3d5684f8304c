//! The front door: X.224 negotiation (NLA only), TLS with the front's
//! certificate, then CredSSP as the server, where NTLM checks the person's
//! one-time ticket or their RDP password (`me rdp-password`). The person
//! is known, and a ticket redeemed, before any target is dialled.
//!
//! The user name is `PERSON#ASSET`, or `PERSON#ACCOUNT#ASSET` to pick one
//! of several accounts (a ticket names its own).

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use ironrdp_connector::sspi::credssp::{
    CredSspServer, CredentialsProxy, NStatusCode, ServerMode, ServerState, TsRequest,
};
use ironrdp_connector::sspi::{self, AuthIdentity, Username};
use ironrdp_core::{decode, encode_vec};
use ironrdp_pdu::nego::{
    ConnectionConfirm, ConnectionRequest, FailureCode, ResponseFlags, SecurityProtocol,
};
use ironrdp_pdu::x224::X224;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio_rustls::server::TlsStream;

use super::wire::{Reader, WireError};
use crate::model::Identity;
use crate::policy::Snapshot;
use crate::services::Services;
use crate::store::rdp_tickets::Ticket;
use crate::vault::Secret;

/// A person the front let in, with the asset and account their ticket
/// (or their login name) gave.
pub struct Admitted {
    pub reader: Reader<TlsStream<TcpStream>>,
    pub identity: Identity,
    pub asset_id: String,
    pub account: String,
    /// Who approved the ticket, for a permission that needs an approval
    /// (`None` for an RDP password: those need none).
    pub approved_by: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum FrontError {
    #[error("{0}")]
    Wire(#[from] WireError),
    #[error("not an RDP connection request: {0}")]
    NotRdp(String),
    #[error("the client offers no NLA (CredSSP); rampart refuses TLS-only and RDP security")]
    NoNla,
    #[error("TLS: {0}")]
    Tls(std::io::Error),
    #[error("CredSSP: {0}")]
    Credssp(String),
    #[error("login refused for {user}: {why}")]
    Refused { user: String, why: String },
}

/// Runs the front's side of the connection up to an authenticated,
/// redeemed ticket.
pub async fn admit(
    stream: TcpStream,
    peer: SocketAddr,
    services: &Services,
    authenticator: &crate::auth::login::Authenticator,
    policy: Arc<Snapshot>,
    tls: &super::tls::Front,
) -> Result<Admitted, FrontError> {
    let mut reader = Reader::new(stream);
    let request = reader.pdu().await?;
    let request = decode::<X224<ConnectionRequest>>(&request)
        .map_err(|e| FrontError::NotRdp(e.to_string()))?
        .0;
    let requested = request.protocol;
    if !requested.intersects(SecurityProtocol::HYBRID | SecurityProtocol::HYBRID_EX) {
        let refusal = ConnectionConfirm::Failure {
            code: FailureCode::HYBRID_REQUIRED_BY_SERVER,
        };
        let bytes = encode_vec(&X224(refusal)).map_err(|e| FrontError::NotRdp(e.to_string()))?;
        let _ = reader.get_mut().write_all(&bytes).await;
        return Err(FrontError::NoNla);
    }
    let confirm = ConnectionConfirm::Response {
        flags: ResponseFlags::EXTENDED_CLIENT_DATA_SUPPORTED,
        protocol: SecurityProtocol::HYBRID,
    };
    let bytes = encode_vec(&X224(confirm)).map_err(|e| FrontError::NotRdp(e.to_string()))?;
    reader
        .get_mut()
        .write_all(&bytes)
        .await
        .map_err(WireError::Io)?;
    let (stream, ahead) = reader.into_parts();
    if !ahead.is_empty() {
        return Err(FrontError::NotRdp("data before the TLS handshake".into()));
    }
    let stream = tls.acceptor.accept(stream).await.map_err(FrontError::Tls)?;
    let mut reader = Reader::new(stream);

    let asked = Arc::new(Mutex::new(Asked::default()));
    let proxy = Tickets {
        handle: tokio::runtime::Handle::current(),
        services: services.clone(),
        policy: policy.clone(),
        asked: asked.clone(),
    };
    let mut server = CredSspServer::new(
        tls.public_key.clone(),
        proxy,
        ServerMode::Ntlm(sspi::ntlm::NtlmConfig::new("rampart".into())),
    )
    .map_err(|e| FrontError::Credssp(e.to_string()))?;
    let identity = loop {
        let bytes = reader.ts_request().await?;
        let request =
            TsRequest::from_buffer(&bytes).map_err(|e| FrontError::Credssp(e.to_string()))?;
        // The ticket lookup reads the database from inside sspi's
        // synchronous callback: run the step on a blocking thread.
        let (back, result) = tokio::task::spawn_blocking(move || {
            let result = server.process(request).resolve_to_result();
            (server, result)
        })
        .await
        .map_err(|e| FrontError::Credssp(e.to_string()))?;
        server = back;
        match result {
            Ok(ServerState::ReplyNeeded(reply)) => write_ts(&mut reader, &reply).await?,
            Ok(ServerState::Finished(identity)) => break Some(identity),
            Err(err) => {
                if let Some(mut reply) = err.ts_request {
                    if err.error.error_type == sspi::ErrorKind::LogonDenied {
                        reply.error_code = Some(NStatusCode::LOGON_FAILURE);
                    }
                    let _ = write_ts(&mut reader, &reply).await;
                }
                tracing::debug!("rdp: CredSSP failed: {}", err.error);
                break None;
            }
        }
    };
    let asked = std::mem::take(&mut *asked.lock().unwrap_or_else(|e| e.into_inner()));
    let Some((person, _, _)) = asked.login.clone() else {
        // A name that is no PERSON#ASSET is a failed login all the same
        // (an unknown user: it counts against the address).
        let Some(named) = asked.named else {
            return Err(FrontError::Credssp("the client named no user".into()));
        };
        let _ = authenticator
            .rdp_login(&named, false, peer.ip(), "rdp-ticket")
            .await;
        return Err(FrontError::Refused {
            user: named,
            why: "the user name is not PERSON#ASSET".into(),
        });
    };
    // Which of the candidates the client proved: the password it
    // delegated is that one's.
    let proved = identity.as_ref().and_then(|id| {
        asked
            .candidates
            .iter()
            .find(|(_, pw)| pw.expose() == id.password.as_ref())
            .map(|(key, _)| key.clone())
    });
    let refused = |why: String| FrontError::Refused {
        user: person.clone(),
        why,
    };
    let has_password = asked
        .candidates
        .iter()
        .any(|(k, _)| matches!(k, Key::Password));
    let method = match &proved {
        Some(Key::Password) => "rdp-password",
        Some(Key::Ticket(_)) => "rdp-ticket",
        None if has_password => "rdp-password",
        None => "rdp-ticket",
    };
    let accepted = authenticator
        .rdp_login(&person, proved.is_some(), peer.ip(), method)
        .await
        .map_err(|e| refused(e.to_string()))?;
    let ticket = match proved {
        Some(Key::Ticket(ticket)) => ticket,
        Some(Key::Password) => {
            let (asset_id, account) =
                by_name(&policy, &accepted.identity, &asked, services).map_err(refused)?;
            return Ok(Admitted {
                reader,
                identity: accepted.identity,
                asset_id,
                account,
                approved_by: None,
            });
        }
        None => return Err(refused("wrong, used or expired ticket or password".into())),
    };
    let mut conn = services
        .store
        .conn()
        .await
        .map_err(|e| refused(e.to_string()))?;
    let redeemed = crate::store::rdp_tickets::redeem(&mut conn, &ticket.id, services.clock.now())
        .await
        .map_err(|e| refused(e.to_string()))?;
    if !redeemed {
        return Err(refused("the ticket was used meanwhile".into()));
    }
    Ok(Admitted {
        reader,
        identity: accepted.identity,
        asset_id: ticket.asset_id,
        account: ticket.account,
        approved_by: ticket.approved_by,
    })
}

async fn write_ts(
    reader: &mut Reader<TlsStream<TcpStream>>,
    request: &TsRequest,
) -> Result<(), FrontError> {
    let len = request
        .buffer_len()
        .map_err(|e| FrontError::Credssp(e.to_string()))?;
    let mut out = Vec::with_capacity(usize::from(len));
    request
        .encode_ts_request(&mut out)
        .map_err(|e| FrontError::Credssp(e.to_string()))?;
    reader
        .get_mut()
        .write_all(&out)
        .await
        .map_err(WireError::Io)?;
    Ok(())
}

/// `PERSON#ASSET` or `PERSON#ACCOUNT#ASSET` (a domain the client adds is
/// ignored): the person, the account if named, the asset. Not `@`: RDP
/// clients read `user@domain` as a UPN and send only the part before it.
pub fn split_login(name: &str) -> Option<(&str, Option<&str>, &str)> {
    let name = name.rsplit_once('\\').map_or(name, |(_, n)| n);
    let (person, target) = name.split_once('#')?;
    let (account, asset) = match target.rsplit_once('#') {
        Some(("", _)) => return None,
        Some((account, asset)) => (Some(account), asset),
        None => (None, target),
    };
    (!person.is_empty() && !asset.is_empty()).then_some((person, account, asset))
}

/// A secret a login may prove.
#[derive(Clone)]
enum Key {
    Ticket(Ticket),
    /// The person's RDP password (`me rdp-password`).
    Password,
}

/// What NTLM asked the lookup: the login named, and the secrets offered
/// as candidates.
#[derive(Default)]
struct Asked {
    /// The user name NTLM carried, as given.
    named: Option<String>,
    /// Person, account if named, asset.
    login: Option<(String, Option<String>, String)>,
    candidates: Vec<(Key, Secret<String>)>,
}

/// The asset and account a password login names: the account given, or
/// the person's only stored account there over RDP.
fn by_name(
    policy: &Snapshot,
    who: &Identity,
    asked: &Asked,
    services: &Services,
) -> Result<(String, String), String> {
    let Some((_, account, asset)) = &asked.login else {
        return Err("no asset named".into());
    };
    let visible = policy
        .visible_asset(who, asset, services.clock.now())
        .filter(|v| v.protocols().any(|p| p.name == "rdp"))
        .ok_or_else(|| format!("no asset {asset:?} reachable over RDP"))?;
    let account = match account {
        Some(a) => a.clone(),
        None => crate::ops::only_account(&visible, "log in as PERSON#ACCOUNT#ASSET")
            .map_err(|e| e.to_string())?,
    };
    Ok((visible.id().to_string(), account))
}

/// sspi's credentials callback: a person's valid tickets for the asset
/// their login names.
struct Tickets {
    handle: tokio::runtime::Handle,
    services: Services,
    policy: Arc<Snapshot>,
    asked: Arc<Mutex<Asked>>,
}

impl Tickets {
    /// The person's valid tickets for the asset (for the account, if one
    /// is named), and their RDP password if they have one.
    fn lookup(
        &self,
        person: &str,
        account: Option<&str>,
        asset: &str,
    ) -> std::io::Result<Vec<(Key, Secret<String>)>> {
        let (Some(user), Some(asset)) = (
            self.policy.user_by_name(person),
            self.policy.asset_by_name(asset),
        ) else {
            return Ok(Vec::new());
        };
        let Some(vault) = self.services.vault.as_ref() else {
            return Ok(Vec::new());
        };
        let (user_id, asset_id) = (user.id.to_string(), asset.id().to_string());
        let services = self.services.clone();
        let found = self.handle.block_on(async move {
            let mut conn = services.store.conn().await?;
            let now = services.clock.now();
            let tickets = crate::store::rdp_tickets::valid(
                &mut conn,
                &user_id,
                &asset_id,
                "rdp",
                now,
                crate::ops::TICKETS_PER_ASSET,
            )
            .await?;
            let password = crate::store::rdp_passwords::valid(&mut conn, &user_id, now).await?;
            Ok::<_, crate::store::StoreError>((tickets, password))
        });
        let (tickets, password) = found.map_err(std::io::Error::other)?;
        let mut keys: Vec<(Key, Secret<String>)> = tickets
            .into_iter()
            .filter(|t| account.is_none_or(|a| t.account == a))
            .filter_map(|t| {
                let pw = vault.open_string(&t.secret).ok()?;
                Some((Key::Ticket(t), pw))
            })
            .collect();
        if let Some(pw) = password.and_then(|p| vault.open_string(&p.secret).ok()) {
            keys.push((Key::Password, pw));
        }
        Ok(keys)
    }
}

impl CredentialsProxy for Tickets {
    type AuthenticationData = AuthIdentity;

    fn auth_data_by_user(&mut self, username: &Username) -> std::io::Result<AuthIdentity> {
        self.auth_data_candidates_by_user(username)?
            .into_iter()
            .next()
            .ok_or_else(|| std::io::Error::other("no ticket"))
    }

    fn auth_data_candidates_by_user(
        &mut self,
        username: &Username,
    ) -> std::io::Result<Vec<AuthIdentity>> {
        let name = username.account_name();
        self.asked.lock().unwrap_or_else(|e| e.into_inner()).named = Some(name.to_string());
        let Some((person, account, asset)) = split_login(name) else {
            return Err(std::io::Error::other("the user name is not PERSON#ASSET"));
        };
        let found = self.lookup(person, account, asset)?;
        let identities = found
            .iter()
            .map(|(_, pw)| AuthIdentity {
                username: username.clone(),
                password: pw.expose().clone().into(),
            })
            .collect::<Vec<_>>();
        let mut asked = self.asked.lock().unwrap_or_else(|e| e.into_inner());
        asked.login = Some((
            person.to_string(),
            account.map(str::to_string),
            asset.to_string(),
        ));
        asked.candidates = found;
        if identities.is_empty() {
            return Err(std::io::Error::other("no valid ticket"));
        }
        Ok(identities)
    }

    fn auth_data(&mut self) -> std::io::Result<Vec<AuthIdentity>> {
        Ok(Vec::new())
    }
}

#[cfg(test)]
mod tests {
    use super::split_login;

    #[test]
    fn login_names_give_the_person_the_account_and_the_asset() {
        assert_eq!(split_login("alice#win1"), Some(("alice", None, "win1")));
        assert_eq!(
            split_login("CORP\\alice#Administrator#win1"),
            Some(("alice", Some("Administrator"), "win1"))
        );
        for bad in ["alice", "#win1", "alice#", "alice##win1", "alice#adm#"] {
            assert_eq!(split_login(bad), None, "{bad}");
        }
    }
}
