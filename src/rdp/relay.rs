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
//! Added (client to target): a Refresh Rect of the whole desktop when a
//! monitor starts watching ([`Rewriter::refresh_request`]), so it gets a
//! full picture, and for the recording's keyframes; the rewriter keeps the
//! target's Demand Active for the monitor's decoder
//! ([`Rewriter::demand_active`]) and the keyframes ([`Rewriter::keyframe`]).
//!
//! Channels: `cliprdr` (clipboard) is cut both ways unless the grant has
//! `copy` or `paste`, `rdpdr` (drives, printers) unless it has `upload` or
//! `download`. Cutting means its PDUs are dropped in both directions, so
//! the client never sees the target announce the feature. With only one of
//! `copy` (the target's clipboard to the person) and `paste` (the person's
//! to the target), the clipboard's messages that would move data the other
//! way are dropped: the sender's format list (so the other side never
//! offers to fetch), data and file requests for it, and data and file
//! responses carrying it (every chunk of a chunked one).

use std::borrow::Cow;
use std::sync::Mutex;

use bytes::{Bytes, BytesMut};
use ironrdp_core::{decode, encode_vec};
use ironrdp_pdu::gcc::{ClientEarlyCapabilityFlags, ConferenceCreateRequest};
use ironrdp_pdu::geometry::InclusiveRectangle;
use ironrdp_pdu::mcs::{ConnectInitial, ConnectResponse, McsMessage, SendDataRequest};
use ironrdp_pdu::nego::SecurityProtocol;
use ironrdp_pdu::rdp::ClientInfoPdu;
use ironrdp_pdu::rdp::capability_sets::{
    BitmapCache, CacheDefinition, CacheEntry, CapabilitySet, GlyphCache, GlyphSupportLevel,
    OffscreenBitmapCache, Order, OrderFlags, OrderSupportExFlags,
};
use ironrdp_pdu::rdp::client_info::CompressionType;
use ironrdp_pdu::rdp::client_info::{ClientInfoFlags, Credentials};
use ironrdp_pdu::rdp::headers::{
    CompressionFlags, ShareControlHeader, ShareControlPdu, ShareDataHeader, ShareDataPdu,
    StreamPriority,
};
use ironrdp_pdu::rdp::refresh_rectangle::RefreshRectanglePdu;
use ironrdp_pdu::x224::{X224, X224Data};

use super::back::Login;
use super::clipboard::{Moved, Tally};

/// Which static channels, and clipboard directions, the grant leaves open.
#[derive(Debug, Clone, Copy)]
pub struct Allowed {
    /// The target's clipboard to the person.
    pub copy: bool,
    /// The person's clipboard to the target.
    pub paste: bool,
    pub drives: bool,
}

/// Which way a frame goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Way {
    /// The person's client to the target.
    Up,
    /// The target to the person's client.
    Down,
}

/// Clipboard (MS-RDPECLIP) message types the filter acts on.
const CB_FORMAT_LIST: u16 = 0x0002;
const CB_FORMAT_DATA_REQUEST: u16 = 0x0004;
const CB_FORMAT_DATA_RESPONSE: u16 = 0x0005;
const CB_FILECONTENTS_REQUEST: u16 = 0x0008;
const CB_FILECONTENTS_RESPONSE: u16 = 0x0009;
/// CHANNEL_PDU_HEADER flags: the first and last chunk of a message.
const CHANNEL_FLAG_FIRST: u32 = 0x01;
const CHANNEL_FLAG_LAST: u32 = 0x02;

/// What the relay learnt of the connection: the client's channel names (in
/// order) and the ids the target gave them.
#[derive(Debug, Default)]
struct Channels {
    names: Vec<String>,
    cut: Vec<u16>,
    /// The clipboard channel, when it is open in at least one direction.
    clipboard: Option<u16>,
    io: Option<u16>,
    client_info_sent: bool,
    /// The rest of a chunked clipboard message being dropped, per way.
    dropping: [bool; 2],
    /// The target's last Demand Active as sent, and the desktop size in it:
    /// a monitor's decoder starts from it.
    demand_active: Option<(Bytes, u16, u16)>,
    /// The target's Demand Active says it repaints on a Refresh Rect.
    repaints: bool,
    /// The person's user channel and the share id, from their Confirm
    /// Active: what a refresh request added by the relay is sent as.
    share: Option<(u16, u32)>,
    /// What crossed the clipboard, per way (up, down).
    tally: [Tally; 2],
    /// Keys and clicks since the last input marker.
    input: super::input::Input,
}

impl Channels {
    /// Whether a clipboard frame's user data (CHANNEL_PDU_HEADER, then the
    /// clipboard header in a first chunk) going `way` moves data the grant
    /// does not allow that way.
    fn clipboard_refused(&mut self, way: Way, data: &[u8], allowed: Allowed) -> bool {
        let word32 = |at: usize| {
            data.get(at..at + 4)
                .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        };
        let Some(flags) = word32(4) else {
            return true; // not even a channel header: nothing to pass on
        };
        let slot = usize::from(way == Way::Down);
        if flags & CHANNEL_FLAG_FIRST == 0 {
            let dropping = self.dropping[slot];
            if flags & CHANNEL_FLAG_LAST != 0 {
                self.dropping[slot] = false;
            }
            return dropping;
        }
        let Some(kind) = data.get(8..10).map(|b| u16::from_le_bytes([b[0], b[1]])) else {
            return true;
        };
        // Data leaving its side: the person's going up is a paste, the
        // target's going down a copy. Requests ask the other side for its.
        let (sends, asks) = match way {
            Way::Up => (allowed.paste, allowed.copy),
            Way::Down => (allowed.copy, allowed.paste),
        };
        let refused = match kind {
            CB_FORMAT_LIST | CB_FORMAT_DATA_RESPONSE | CB_FILECONTENTS_RESPONSE => !sends,
            CB_FORMAT_DATA_REQUEST | CB_FILECONTENTS_REQUEST => !asks,
            _ => false,
        };
        self.dropping[slot] = refused && flags & CHANNEL_FLAG_LAST == 0;
        refused
    }
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
/// ... and of a Demand Active PDU (its low byte).
const DEMAND_ACTIVE: u8 = 0x1;

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
            self.channels().input.add(frame); // fast-path input
            return Ok(Verdict::Pass);
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
        if Some(request.channel_id) == channels.clipboard {
            let refused = channels.clipboard_refused(Way::Up, &request.user_data, self.allowed);
            if refused {
                return Ok(Verdict::Drop);
            }
            channels.tally[0].chunk(&request.user_data, false);
            return Ok(Verdict::Pass);
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
            let share_id = data
                .get(6..10)
                .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]));
            channels.share = share_id.map(|id| (request.initiator_id, id));
            let user_data = confirm_active(data)?;
            return encode_request(&request, user_data).map(Verdict::Replace);
        }
        channels.input.add_slow(data); // slow-path input
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
                let clipboard = self.allowed.copy || self.allowed.paste;
                let named: Vec<(String, u16)> = channels.names.iter().cloned().zip(ids).collect();
                for (name, id) in named {
                    match name.as_str() {
                        "cliprdr" if clipboard => channels.clipboard = Some(id),
                        "cliprdr" => channels.cut.push(id),
                        "rdpdr" if !self.allowed.drives => channels.cut.push(id),
                        _ => {}
                    }
                }
            }
            return Verdict::Pass;
        }
        let Ok(ctx) = ironrdp_pdu::mcs::decode_send_data_indication(frame) else {
            return Verdict::Pass;
        };
        if Some(ctx.channel_id) == channels.io {
            let kind = ctx.user_data.get(2..4).map(|b| b[0] & 0xf);
            if kind == Some(DEMAND_ACTIVE)
                && let Ok(header) = decode::<ShareControlHeader>(ctx.user_data)
                && let ShareControlPdu::ServerDemandActive(demand) = header.share_control_pdu
            {
                let size = demand.pdu.capability_sets.iter().find_map(|c| match c {
                    CapabilitySet::Bitmap(b) => Some((b.desktop_width, b.desktop_height)),
                    _ => None,
                });
                channels.demand_active = size.map(|(w, h)| (Bytes::copy_from_slice(frame), w, h));
                channels.repaints = demand
                    .pdu
                    .capability_sets
                    .iter()
                    .any(|c| matches!(c, CapabilitySet::General(g) if g.refresh_rect_support));
            }
            return Verdict::Pass;
        }
        if channels.cut.contains(&ctx.channel_id) {
            return Verdict::Drop;
        }
        if Some(ctx.channel_id) == channels.clipboard {
            if channels.clipboard_refused(Way::Down, ctx.user_data, self.allowed) {
                return Verdict::Drop;
            }
            channels.tally[1].chunk(ctx.user_data, true);
        }
        Verdict::Pass
    }

    /// What crossed the clipboard since last asked, both ways; with
    /// `end`, a file still arriving too.
    /// The marker for the person's keys and clicks since the last one, if
    /// there were any (see `rdp::input`).
    pub fn input_marker(&self) -> Option<String> {
        self.channels().input.take()
    }

    pub fn moved(&self, end: bool) -> Vec<Moved> {
        let mut channels = self.channels();
        let mut moved = channels.tally[0].take(false, end);
        moved.extend(channels.tally[1].take(true, end));
        moved
    }

    /// The target's last Demand Active, as sent: where a decoder that
    /// joins a running desktop starts (it gives the size and the ids).
    pub fn demand_active(&self) -> Option<Bytes> {
        self.channels()
            .demand_active
            .as_ref()
            .map(|(b, _, _)| b.clone())
    }

    /// The target's Demand Active, if the target announced that it
    /// answers a Refresh Rect: what a stored keyframe needs.
    pub fn keyframe(&self) -> Option<Bytes> {
        let channels = self.channels();
        if !channels.repaints {
            return None;
        }
        channels.demand_active.as_ref().map(|(b, _, _)| b.clone())
    }

    /// A Refresh Rect PDU, as the person's client would send it, asking
    /// the target to redraw the whole desktop: a monitor that just started
    /// decoding gets a full picture. `None` before the desktop is up.
    pub fn refresh_request(&self) -> Option<Bytes> {
        let channels = self.channels();
        let (_, width, height) = channels.demand_active.as_ref()?;
        let (user, share_id) = channels.share?;
        let io = channels.io?;
        let data = ShareDataHeader {
            share_data_pdu: ShareDataPdu::RefreshRectangle(RefreshRectanglePdu {
                areas_to_refresh: vec![InclusiveRectangle {
                    left: 0,
                    top: 0,
                    right: width.checked_sub(1)?,
                    bottom: height.checked_sub(1)?,
                }],
            }),
            stream_priority: StreamPriority::Medium,
            compression_flags: CompressionFlags::empty(),
            compression_type: CompressionType::K8,
        };
        let header = ShareControlHeader {
            share_control_pdu: ShareControlPdu::Data(data),
            pdu_source: user,
            share_id,
        };
        let frame = X224(SendDataRequest {
            initiator_id: user,
            channel_id: io,
            user_data: Cow::Owned(encode_vec(&header).ok()?),
        });
        encode_vec(&frame).ok().map(Bytes::from)
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

#[cfg(test)]
mod tests {
    use std::borrow::Cow;

    use ironrdp_core::encode_vec;
    use ironrdp_pdu::mcs::{SendDataIndication, SendDataRequest};
    use ironrdp_pdu::nego::SecurityProtocol;
    use ironrdp_pdu::x224::X224;

    use super::*;
    use crate::vault::Secret;

    const IO: u16 = 1003;
    const CLIP: u16 = 1004;

    /// A clipboard message of `kind` in one chunk with `flags`.
    fn clip(kind: u16, flags: u32) -> Vec<u8> {
        let mut data = Vec::new();
        data.extend_from_slice(&12u32.to_le_bytes());
        data.extend_from_slice(&flags.to_le_bytes());
        data.extend_from_slice(&kind.to_le_bytes());
        data.extend_from_slice(&0u16.to_le_bytes());
        data.extend_from_slice(&4u32.to_le_bytes());
        data.extend_from_slice(b"data");
        data
    }

    fn up(r: &Rewriter<'_>, channel: u16, user_data: Vec<u8>) -> Verdict {
        let frame = encode_vec(&X224(SendDataRequest {
            initiator_id: 1007,
            channel_id: channel,
            user_data: Cow::Owned(user_data),
        }))
        .unwrap();
        r.upstream(&frame).unwrap()
    }

    fn down(r: &Rewriter<'_>, channel: u16, user_data: Vec<u8>) -> Verdict {
        let frame = encode_vec(&X224(SendDataIndication {
            initiator_id: 1002,
            channel_id: channel,
            user_data: Cow::Owned(user_data),
        }))
        .unwrap();
        r.downstream(&frame)
    }

    fn rewriter(login: &Login, copy: bool, paste: bool) -> Rewriter<'_> {
        let r = Rewriter::new(
            login,
            SecurityProtocol::HYBRID,
            Allowed {
                copy,
                paste,
                drives: false,
            },
        );
        {
            let mut c = r.channels();
            c.io = Some(IO);
            if copy || paste {
                c.clipboard = Some(CLIP);
            } else {
                c.cut.push(CLIP);
            }
        }
        r
    }

    const WHOLE: u32 = CHANNEL_FLAG_FIRST | CHANNEL_FLAG_LAST;

    #[test]
    fn fast_path_input_passes_unchanged_and_is_counted_for_a_marker() {
        use ironrdp_pdu::input::fast_path::{FastPathInput, FastPathInputEvent, KeyboardFlags};
        let login = Login::new("Administrator", Secret::new("pw".into()));
        let r = rewriter(&login, false, false);
        let keys = FastPathInput::new(vec![
            FastPathInputEvent::KeyboardEvent(KeyboardFlags::empty(), 0x10),
            FastPathInputEvent::KeyboardEvent(KeyboardFlags::RELEASE, 0x10),
        ])
        .unwrap();
        let frame = encode_vec(&keys).unwrap();
        assert_eq!(r.upstream(&frame), Ok(Verdict::Pass));
        assert_eq!(r.upstream(&frame), Ok(Verdict::Pass));
        assert_eq!(r.input_marker().as_deref(), Some("input: 2 keys"));
        assert_eq!(r.input_marker(), None);
    }

    #[test]
    fn slow_path_input_passes_unchanged_and_is_counted_for_a_marker() {
        use ironrdp_pdu::input::mouse::{MousePdu, PointerFlags};
        use ironrdp_pdu::input::scan_code::{KeyboardFlags, ScanCodePdu};
        use ironrdp_pdu::input::{InputEvent, InputEventPdu};
        let login = Login::new("Administrator", Secret::new("pw".into()));
        let r = rewriter(&login, false, false);
        r.channels().client_info_sent = true;
        let key = |flags| {
            InputEvent::ScanCode(ScanCodePdu {
                flags,
                key_code: 0x1e,
            })
        };
        let click = InputEvent::Mouse(MousePdu {
            flags: PointerFlags::DOWN | PointerFlags::LEFT_BUTTON,
            number_of_wheel_rotation_units: 0,
            x_position: 640,
            y_position: 400,
        });
        let input = ShareControlHeader {
            share_control_pdu: ShareControlPdu::Data(ShareDataHeader {
                share_data_pdu: ShareDataPdu::Input(InputEventPdu(vec![
                    key(KeyboardFlags::empty()),
                    key(KeyboardFlags::RELEASE),
                    click,
                ])),
                stream_priority: StreamPriority::Medium,
                compression_flags: CompressionFlags::empty(),
                compression_type: CompressionType::K8,
            }),
            pdu_source: 1007,
            share_id: 0x1_03ea,
        };
        assert_eq!(up(&r, IO, encode_vec(&input).unwrap()), Verdict::Pass);
        assert_eq!(
            r.input_marker().as_deref(),
            Some("input: 1 key, click at 640,400")
        );
        // Another share data PDU on the I/O channel counts nothing.
        let refresh = ShareControlHeader {
            share_control_pdu: ShareControlPdu::Data(ShareDataHeader {
                share_data_pdu: ShareDataPdu::RefreshRectangle(RefreshRectanglePdu {
                    areas_to_refresh: vec![InclusiveRectangle {
                        left: 0,
                        top: 0,
                        right: 9,
                        bottom: 9,
                    }],
                }),
                stream_priority: StreamPriority::Medium,
                compression_flags: CompressionFlags::empty(),
                compression_type: CompressionType::K8,
            }),
            pdu_source: 1007,
            share_id: 0x1_03ea,
        };
        assert_eq!(up(&r, IO, encode_vec(&refresh).unwrap()), Verdict::Pass);
        assert_eq!(r.input_marker(), None);
    }

    #[test]
    fn copy_without_paste_lets_the_targets_clipboard_out_and_nothing_in() {
        let login = Login::new("Administrator", Secret::new("pw".into()));
        let r = rewriter(&login, true, false);
        // The target offers its clipboard and hands its data over.
        assert_eq!(down(&r, CLIP, clip(CB_FORMAT_LIST, WHOLE)), Verdict::Pass);
        assert_eq!(
            up(&r, CLIP, clip(CB_FORMAT_DATA_REQUEST, WHOLE)),
            Verdict::Pass
        );
        assert_eq!(
            down(&r, CLIP, clip(CB_FORMAT_DATA_RESPONSE, WHOLE)),
            Verdict::Pass
        );
        // What crossed is logged: 4 bytes, from the desktop to the person.
        let moved = r.moved(false);
        assert_eq!(moved.len(), 1, "{moved:?}");
        assert_eq!((moved[0].operation(), moved[0].size), ("clipboard-copy", 4));
        // The person's clipboard is never offered, asked for or sent, not
        // even in pieces.
        assert_eq!(up(&r, CLIP, clip(CB_FORMAT_LIST, WHOLE)), Verdict::Drop);
        assert_eq!(
            down(&r, CLIP, clip(CB_FORMAT_DATA_REQUEST, WHOLE)),
            Verdict::Drop
        );
        assert_eq!(
            down(&r, CLIP, clip(CB_FILECONTENTS_REQUEST, WHOLE)),
            Verdict::Drop
        );
        assert_eq!(
            up(&r, CLIP, clip(CB_FORMAT_DATA_RESPONSE, CHANNEL_FLAG_FIRST)),
            Verdict::Drop
        );
        assert_eq!(up(&r, CLIP, clip(0, 0)), Verdict::Drop, "a middle chunk");
        assert_eq!(
            up(&r, CLIP, clip(0, CHANNEL_FLAG_LAST)),
            Verdict::Drop,
            "the last chunk"
        );
        assert!(
            r.moved(true).is_empty(),
            "nothing refused is logged as moved"
        );
        // Other clipboard messages and other channels pass.
        assert_eq!(
            up(&r, CLIP, clip(0x0007, WHOLE)),
            Verdict::Pass,
            "capabilities"
        );
        assert_eq!(up(&r, 1005, clip(CB_FORMAT_LIST, WHOLE)), Verdict::Pass);
        assert_eq!(up(&r, CLIP, vec![1, 2]), Verdict::Drop, "no channel header");
    }

    #[test]
    fn paste_without_copy_is_the_mirror_and_neither_cuts_the_channel() {
        let login = Login::new("Administrator", Secret::new("pw".into()));
        let r = rewriter(&login, false, true);
        assert_eq!(up(&r, CLIP, clip(CB_FORMAT_LIST, WHOLE)), Verdict::Pass);
        assert_eq!(
            down(&r, CLIP, clip(CB_FORMAT_DATA_REQUEST, WHOLE)),
            Verdict::Pass
        );
        assert_eq!(
            up(&r, CLIP, clip(CB_FORMAT_DATA_RESPONSE, WHOLE)),
            Verdict::Pass
        );
        assert_eq!(down(&r, CLIP, clip(CB_FORMAT_LIST, WHOLE)), Verdict::Drop);
        assert_eq!(
            up(&r, CLIP, clip(CB_FORMAT_DATA_REQUEST, WHOLE)),
            Verdict::Drop
        );
        assert_eq!(
            down(&r, CLIP, clip(CB_FILECONTENTS_RESPONSE, WHOLE)),
            Verdict::Drop
        );

        let r = rewriter(&login, false, false);
        assert_eq!(up(&r, CLIP, clip(0x0007, WHOLE)), Verdict::Drop);
        assert_eq!(
            down(&r, CLIP, clip(0x0001, WHOLE)),
            Verdict::Drop,
            "monitor ready"
        );
    }
}
