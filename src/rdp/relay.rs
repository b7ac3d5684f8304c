//! The relay once both legs are authenticated: frames pass both ways, a
//! few connection-sequence PDUs from the client are rewritten on their way
//! to the target, static virtual channels the grant does not allow are
//! cut, and every frame sent to the person is recorded with its time.
//!
//! Rewrites (client to target):
//! - MCS Connect Initial: `serverSelectedProtocol` set to what the target
//!   chose (the client negotiated with rampart's front), and the GFX
//!   pipeline flag removed, so the target sends classic bitmap updates
//!   that the recording can be replayed from;
//! - Client Info: the vaulted login injected (the person's ticket never
//!   reaches the target), bulk compression off;
//! - Confirm Active: drawing orders, glyph, bitmap and offscreen caches
//!   off, and the surface-command, codec and frame-acknowledge sets
//!   removed, so every update is a self-contained bitmap.
//!
//! Channels: `cliprdr` (clipboard) is cut both ways unless the grant has
//! `copy` or `paste`, `rdpdr` (drives, printers) unless it has `upload` or
//! `download`. Cutting means its PDUs are dropped in both directions, so
//! the client never sees the target announce the feature.

use std::borrow::Cow;
use std::sync::Mutex;

use bytes::{Bytes, BytesMut};
use ironrdp_core::{decode, encode_vec};
use ironrdp_pdu::gcc::{ClientEarlyCapabilityFlags, ConferenceCreateRequest};
use ironrdp_pdu::mcs::{ConnectInitial, ConnectResponse, McsMessage, SendDataRequest};
use ironrdp_pdu::nego::SecurityProtocol;
use ironrdp_pdu::rdp::ClientInfoPdu;
use ironrdp_pdu::rdp::capability_sets::{
    BitmapCache, CacheDefinition, CacheEntry, CapabilitySet, GlyphCache, GlyphSupportLevel,
    OffscreenBitmapCache, Order, OrderFlags, OrderSupportExFlags,
};
use ironrdp_pdu::rdp::client_info::{ClientInfoFlags, Credentials};
use ironrdp_pdu::rdp::headers::{ShareControlHeader, ShareControlPdu};
use ironrdp_pdu::x224::{X224, X224Data};

use super::back::Login;

/// Which static channels the grant leaves open.
#[derive(Debug, Clone, Copy)]
pub struct Allowed {
    pub clipboard: bool,
    pub drives: bool,
}

/// What the relay learnt of the connection: the client's channel names (in
/// order) and the ids the target gave them.
#[derive(Debug, Default)]
struct Channels {
    names: Vec<String>,
    cut: Vec<u16>,
    io: Option<u16>,
    client_info_sent: bool,
}

/// The rewriting state shared by both directions.
pub struct Rewriter<'a> {
    login: &'a Login,
    selected: SecurityProtocol,
    allowed: Allowed,
    channels: Mutex<Channels>,
}

/// What becomes of one frame.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    Pass,
    Replace(Bytes),
    Drop,
}

const CONNECT_INITIAL: [u8; 2] = [0x7f, 0x65];
const CONNECT_RESPONSE: [u8; 2] = [0x7f, 0x66];
/// `SEC_INFO_PKT` in the basic security header of a Client Info PDU.
const INFO_PKT: u16 = 0x0040;
/// The share control header's type of a Confirm Active PDU.
const CONFIRM_ACTIVE: u16 = 0x3;

impl<'a> Rewriter<'a> {
    pub fn new(login: &'a Login, selected: SecurityProtocol, allowed: Allowed) -> Rewriter<'a> {
        Rewriter {
            login,
            selected,
            allowed,
            channels: Mutex::new(Channels::default()),
        }
    }

    fn channels(&self) -> std::sync::MutexGuard<'_, Channels> {
        self.channels.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A frame from the person's client, on its way to the target.
    pub fn upstream(&self, frame: &[u8]) -> Result<Verdict, String> {
        if !super::wire::is_x224(frame) {
            return Ok(Verdict::Pass); // fast-path input
        }
        if let Ok(X224(data)) = decode::<X224<X224Data<'_>>>(frame)
            && data.data.starts_with(&CONNECT_INITIAL)
        {
            return self.connect_initial(&data.data).map(Verdict::Replace);
        }
        let Ok(X224(McsMessage::SendDataRequest(request))) = decode::<X224<McsMessage<'_>>>(frame)
        else {
            return Ok(Verdict::Pass);
        };
        let mut channels = self.channels();
        if channels.cut.contains(&request.channel_id) {
            return Ok(Verdict::Drop);
        }
        if Some(request.channel_id) != channels.io {
            return Ok(Verdict::Pass);
        }
        let data = &request.user_data;
        let word = |at: usize| {
            data.get(at..at + 2)
                .map(|b| u16::from_le_bytes([b[0], b[1]]))
        };
        if !channels.client_info_sent && word(0).is_some_and(|f| f & INFO_PKT != 0) {
            channels.client_info_sent = true;
            let user_data = self.client_info(data)?;
            return encode_request(&request, user_data).map(Verdict::Replace);
        }
        if word(2).is_some_and(|t| t & 0xf == CONFIRM_ACTIVE) {
            let user_data = confirm_active(data)?;
            return encode_request(&request, user_data).map(Verdict::Replace);
        }
        Ok(Verdict::Pass)
    }

    /// A frame from the target, on its way to the person.
    pub fn downstream(&self, frame: &[u8]) -> Verdict {
        if !super::wire::is_x224(frame) {
            return Verdict::Pass; // fast-path output
        }
        let mut channels = self.channels();
        if channels.io.is_none() {
            if let Ok(X224(data)) = decode::<X224<X224Data<'_>>>(frame)
                && data.data.starts_with(&CONNECT_RESPONSE)
                && let Ok(response) = decode::<ConnectResponse>(&data.data)
            {
                channels.io = Some(response.global_channel_id());
                let ids = response.channel_ids();
                let cut: Vec<u16> = channels
                    .names
                    .iter()
                    .zip(ids)
                    .filter(|(name, _)| {
                        (name.as_str() == "cliprdr" && !self.allowed.clipboard)
                            || (name.as_str() == "rdpdr" && !self.allowed.drives)
                    })
                    .map(|(_, id)| id)
                    .collect();
                channels.cut = cut;
            }
            return Verdict::Pass;
        }
        if channels.cut.is_empty() {
            return Verdict::Pass;
        }
        match ironrdp_pdu::mcs::decode_send_data_indication(frame) {
            Ok(ctx) if channels.cut.contains(&ctx.channel_id) => Verdict::Drop,
            _ => Verdict::Pass,
        }
    }

    fn connect_initial(&self, data: &[u8]) -> Result<Bytes, String> {
        let mut initial = decode::<ConnectInitial>(data).map_err(|e| e.to_string())?;
        let mut blocks = initial.conference_create_request.into_gcc_blocks();
        blocks.core.optional_data.server_selected_protocol = Some(self.selected);
        if let Some(flags) = blocks.core.optional_data.early_capability_flags.as_mut() {
            flags.remove(ClientEarlyCapabilityFlags::SUPPORT_DYN_VC_GFX_PROTOCOL);
        }
        self.channels().names = blocks
            .network
            .as_ref()
            .map(|n| {
                n.channels
                    .iter()
                    .map(|c| c.name.as_str().unwrap_or_default().to_ascii_lowercase())
                    .collect()
            })
            .unwrap_or_default();
        initial.conference_create_request =
            ConferenceCreateRequest::new(blocks).map_err(|e| e.to_string())?;
        let inner = encode_vec(&initial).map_err(|e| e.to_string())?;
        let frame = X224(X224Data {
            data: Cow::Owned(inner),
        });
        Ok(Bytes::from(encode_vec(&frame).map_err(|e| e.to_string())?))
    }

    fn client_info(&self, data: &[u8]) -> Result<Vec<u8>, String> {
        let mut pdu = decode::<ClientInfoPdu>(data).map_err(|e| e.to_string())?;
        let info = &mut pdu.client_info;
        info.credentials = Credentials {
            username: self.login.username.clone(),
            password: self.login.password.expose().clone(),
            domain: self.login.domain.clone(),
        };
        info.password_cookie = None;
        info.flags.remove(ClientInfoFlags::COMPRESSION);
        info.flags.insert(ClientInfoFlags::AUTOLOGON);
        encode_vec(&pdu).map_err(|e| e.to_string())
    }
}

fn encode_request(request: &SendDataRequest<'_>, user_data: Vec<u8>) -> Result<Bytes, String> {
    let frame = X224(SendDataRequest {
        initiator_id: request.initiator_id,
        channel_id: request.channel_id,
        user_data: Cow::Owned(user_data),
    });
    Ok(Bytes::from(encode_vec(&frame).map_err(|e| e.to_string())?))
}

/// The client's capabilities as the target should see them (module docs).
fn confirm_active(data: &[u8]) -> Result<Vec<u8>, String> {
    let mut header = decode::<ShareControlHeader>(data).map_err(|e| e.to_string())?;
    if let ShareControlPdu::ClientConfirmActive(confirm) = &mut header.share_control_pdu {
        let sets = &mut confirm.pdu.capability_sets;
        sets.retain(|set| {
            !matches!(
                set,
                CapabilitySet::SurfaceCommands(_)
                    | CapabilitySet::BitmapCodecs(_)
                    | CapabilitySet::FrameAcknowledge(_)
                    | CapabilitySet::BitmapCacheRev2(_)
                    | CapabilitySet::BitmapCacheV3(_)
            )
        });
        let none = CacheDefinition {
            entries: 0,
            max_cell_size: 0,
        };
        for set in sets.iter_mut() {
            match set {
                CapabilitySet::Order(_) => {
                    *set = CapabilitySet::Order(Order::new(
                        OrderFlags::NEGOTIATE_ORDER_SUPPORT
                            | OrderFlags::ZERO_BOUNDS_DELTAS_SUPPORT,
                        OrderSupportExFlags::empty(),
                        0,
                        0,
                    ));
                }
                CapabilitySet::GlyphCache(glyphs) => {
                    *glyphs = GlyphCache {
                        glyph_cache: [none; 10],
                        frag_cache: none,
                        glyph_support_level: GlyphSupportLevel::None,
                    };
                }
                CapabilitySet::BitmapCache(cache) => {
                    *cache = BitmapCache {
                        caches: [CacheEntry {
                            entries: 0,
                            max_cell_size: 0,
                        }; 3],
                    };
                }
                CapabilitySet::OffscreenBitmapCache(offscreen) => {
                    *offscreen = OffscreenBitmapCache {
                        is_supported: false,
                        cache_size: 0,
                        cache_entries: 0,
                    };
                }
                _ => {}
            }
        }
    }
    encode_vec(&header).map_err(|e| e.to_string())
}

/// Appends a batch's frames that pass, replaced where rewritten.
pub fn join(out: &mut BytesMut, frame: &Bytes, verdict: Verdict) {
    match verdict {
        Verdict::Pass => out.extend_from_slice(frame),
        Verdict::Replace(b) => out.extend_from_slice(&b),
        Verdict::Drop => {}
    }
}
