//! Desktop recordings read back: the frames a person's RDP client was sent
//! (after TLS, as `rdp` recorded them) decoded into an image, for
//! `rampart export --format png` and the replay.
//!
//! The stream is fed in order to [`Desktop`]: the server's Demand Active
//! gives the desktop size (a new one on reactivation), fast-path updates
//! are decoded by ironrdp-session into an RGBA image. The relay turned the
//! target's drawing orders, caches and codecs off, so every update is a
//! bitmap (RLE, planar or raw) that decodes on its own. Slow-path
//! graphics updates and pointer shapes are not drawn.

use std::io::Write;
use std::path::Path;

use ironrdp_core::decode;
use ironrdp_graphics::image_processing::PixelFormat;
use ironrdp_pdu::bitmap::{BitmapData, BitmapUpdateData, Compression as BitmapCompression};
use ironrdp_pdu::geometry::InclusiveRectangle;
use ironrdp_pdu::rdp::capability_sets::CapabilitySet;
use ironrdp_pdu::rdp::headers::{ShareControlHeader, ShareControlPdu};
use ironrdp_session::fast_path::{Processor, ProcessorBuilder};
use ironrdp_session::image::DecodedImage;

use super::RecordError;

/// The desktop as the stream so far drew it.
#[derive(Default)]
pub struct Desktop {
    image: Option<DecodedImage>,
    processor: Option<Processor>,
    /// What the processor was built with: the I/O channel, the user
    /// channel and the share.
    ids: Option<(u16, u16, u32)>,
    /// Frames that did not decode (counted, skipped).
    pub damaged: u64,
}

/// A desktop's picture kept to decode on from: a replay's seek checkpoint.
pub(crate) struct Saved {
    width: u16,
    height: u16,
    ids: (u16, u16, u32),
    /// The RGBA pixels, deflated (desktops are mostly flat colour: a
    /// 1920x1080 picture of 8 MiB keeps in a few hundred KiB).
    pixels: Vec<u8>,
}

impl Saved {
    /// Bytes held.
    pub(crate) fn cost(&self) -> usize {
        self.pixels.len() + size_of::<Saved>()
    }
}

impl Desktop {
    pub fn new() -> Desktop {
        Desktop::default()
    }

    /// Feeds one recorded chunk (whole frames, as the relay sent them).
    pub fn feed(&mut self, mut chunk: &[u8]) {
        while let Ok(Some(info)) = ironrdp_pdu::find_size(chunk) {
            let Some((frame, rest)) = chunk.split_at_checked(info.length) else {
                self.damaged += 1;
                return;
            };
            chunk = rest;
            if info.length == 0 {
                return;
            }
            match info.action {
                ironrdp_pdu::Action::X224 => self.slow_path(frame),
                ironrdp_pdu::Action::FastPath => self.fast_path(frame),
            }
        }
    }

    fn slow_path(&mut self, frame: &[u8]) {
        let Ok(ctx) = ironrdp_pdu::mcs::decode_send_data_indication(frame) else {
            return;
        };
        let Ok(header) = decode::<ShareControlHeader>(ctx.user_data) else {
            return;
        };
        let ShareControlPdu::ServerDemandActive(demand) = header.share_control_pdu else {
            return;
        };
        let size = demand.pdu.capability_sets.iter().find_map(|c| match c {
            CapabilitySet::Bitmap(b) => Some((b.desktop_width, b.desktop_height)),
            _ => None,
        });
        let Some((width, height)) = size.filter(|(w, h)| *w > 0 && *h > 0) else {
            return;
        };
        self.activate(
            width,
            height,
            (ctx.channel_id, ctx.initiator_id, header.share_id),
        );
    }

    /// A new, black desktop of this size (a Demand Active, or a restore).
    fn activate(&mut self, width: u16, height: u16, ids: (u16, u16, u32)) {
        let (io_channel_id, user_channel_id, share_id) = ids;
        self.image = Some(DecodedImage::new(PixelFormat::RgbA32, width, height));
        self.processor = Some(
            ProcessorBuilder {
                io_channel_id,
                user_channel_id,
                share_id,
                enable_server_pointer: false,
                pointer_software_rendering: false,
            }
            .build(),
        );
        self.ids = Some(ids);
    }

    /// The picture so far, to decode on from later; `None` before the
    /// first Demand Active (a restart from the start does as well).
    pub(crate) fn save(&self) -> Option<Saved> {
        let image = self.image.as_ref()?;
        let mut deflate = flate2::write::DeflateEncoder::new(
            Vec::with_capacity(image.data().len() / 16),
            flate2::Compression::fast(),
        );
        // Writing into a Vec does not fail.
        deflate.write_all(image.data()).ok()?;
        Some(Saved {
            width: image.width(),
            height: image.height(),
            ids: self.ids?,
            pixels: deflate.finish().ok()?,
        })
    }

    /// The desktop as it was when `saved` was taken: the picture goes back
    /// in as one uncompressed bitmap through the same decoder.
    pub(crate) fn restore(saved: &Saved) -> Desktop {
        let mut desktop = Desktop::new();
        desktop.activate(saved.width, saved.height, saved.ids);
        let mut rgba = Vec::new();
        let inflated = std::io::Read::read_to_end(
            &mut flate2::read::DeflateDecoder::new(saved.pixels.as_slice()),
            &mut rgba,
        );
        let (w, h) = (usize::from(saved.width), usize::from(saved.height));
        if inflated.is_err() || rgba.len() != w * h * 4 {
            desktop.damaged += 1;
            return desktop;
        }
        // An uncompressed 32 bpp bitmap is BGRX, bottom row first.
        let mut bgrx = Vec::with_capacity(rgba.len());
        for row in rgba.chunks_exact(w * 4).rev() {
            for p in row.chunks_exact(4) {
                bgrx.extend_from_slice(&[p[2], p[1], p[0], 0xff]);
            }
        }
        let whole = BitmapUpdateData {
            rectangles: vec![BitmapData {
                rectangle: InclusiveRectangle {
                    left: 0,
                    top: 0,
                    right: saved.width - 1,
                    bottom: saved.height - 1,
                },
                width: saved.width,
                height: saved.height,
                bits_per_pixel: 32,
                compression_flags: BitmapCompression::empty(),
                compressed_data_header: None,
                bitmap_data: &bgrx,
            }],
        };
        if let (Some(image), Some(processor)) = (desktop.image.as_mut(), desktop.processor.as_mut())
            && processor.process_bitmap_update(image, whole).is_err()
        {
            desktop.damaged += 1;
        }
        desktop
    }

    fn fast_path(&mut self, frame: &[u8]) {
        let (Some(image), Some(processor)) = (self.image.as_mut(), self.processor.as_mut()) else {
            return;
        };
        let mut answer = ironrdp_core::WriteBuf::new();
        if processor
            .process(image, frame, &mut answer, &mut None)
            .is_err()
        {
            self.damaged += 1;
        }
    }

    /// Whether some pixel was never drawn since the desktop started black
    /// (a decoder marks every pixel it draws opaque; a new picture is all
    /// transparent). `true` before the first Demand Active.
    pub(crate) fn has_undrawn(&self) -> bool {
        self.image
            .as_ref()
            .is_none_or(|image| image.data().chunks_exact(4).any(|p| p[3] == 0))
    }

    /// The image so far: width, height and RGBA pixels.
    pub fn frame(&self) -> Option<Frame<'_>> {
        let image = self.image.as_ref()?;
        Some(Frame {
            width: u32::from(image.width()),
            height: u32::from(image.height()),
            rgba: image.data(),
        })
    }
}

/// One decoded picture of the desktop.
#[derive(Debug, Clone, Copy)]
pub struct Frame<'a> {
    pub width: u32,
    pub height: u32,
    pub rgba: &'a [u8],
}

impl Frame<'_> {
    /// The frame as a PNG file (opaque RGB).
    pub fn write_png(&self, out: impl Write) -> Result<(), RecordError> {
        let mut encoder = png::Encoder::new(out, self.width, self.height);
        encoder.set_color(png::ColorType::Rgb);
        encoder.set_depth(png::BitDepth::Eight);
        let failed = |e: png::EncodingError| RecordError::Output(std::io::Error::other(e));
        let mut writer = encoder.write_header().map_err(failed)?;
        let rgb: Vec<u8> = self
            .rgba
            .chunks_exact(4)
            .flat_map(|p| [p[0], p[1], p[2]])
            .collect();
        writer.write_image_data(&rgb).map_err(failed)?;
        writer.finish().map_err(failed)
    }
}

/// The desktop as it was `at` seconds into the recording `cast` (its last
/// state when the recording is shorter), decoded straight from the start:
/// `then` is called with it. [`super::picture_at`] gets there faster.
pub fn at<T>(
    cast: impl AsRef<Path>,
    at: f64,
    then: impl FnOnce(&Desktop) -> T,
) -> Result<T, RecordError> {
    let mut desktop = Desktop::new();
    for chunk in super::export::chunks(cast)? {
        let (time, bytes) = chunk?;
        if time > at {
            break;
        }
        desktop.feed(&bytes);
    }
    Ok(then(&desktop))
}

/// A picture scaled into terminal cells drawn as half blocks (`▀`): each
/// cell's upper pixel (the foreground) and lower pixel (the background).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cells {
    pub cols: usize,
    pub rows: usize,
    /// Row by row, `cols` per row.
    pub pairs: Vec<([u8; 3], [u8; 3])>,
}

impl Cells {
    pub fn get(&self, col: usize, row: usize) -> Option<([u8; 3], [u8; 3])> {
        (col < self.cols)
            .then(|| self.pairs.get(row * self.cols + col).copied())
            .flatten()
    }
}

/// Scales `frame` into at most `cols` x `rows` cells of two pixels each,
/// its aspect kept (see [`scaled_pixel`]).
pub fn cells(frame: &Frame<'_>, cols: u16, rows: u16) -> Cells {
    let (w, h) = (frame.width as usize, frame.height as usize);
    let (cols, rows) = (usize::from(cols.max(1)), usize::from(rows.max(1)));
    if w == 0 || h == 0 || frame.rgba.len() < w * h * 4 {
        return Cells {
            cols: 0,
            rows: 0,
            pairs: Vec::new(),
        };
    }
    // Target size in half-block pixels: as large as fits, aspect kept.
    let scale = (cols as f64 / w as f64).min((rows * 2) as f64 / h as f64);
    let tw = ((w as f64 * scale).floor() as usize).clamp(1, cols);
    let th = ((h as f64 * scale).floor() as usize).clamp(1, rows * 2);
    let pixel = |tx: usize, ty: usize| scaled_pixel(frame, (tw, th), (tx, ty));
    let cell_rows = th.div_ceil(2);
    let mut pairs = Vec::with_capacity(tw * cell_rows);
    for row in 0..cell_rows {
        for col in 0..tw {
            let bottom = if row * 2 + 1 < th {
                pixel(col, row * 2 + 1)
            } else {
                [0, 0, 0]
            };
            pairs.push((pixel(col, row * 2), bottom));
        }
    }
    Cells {
        cols: tw,
        rows: cell_rows,
        pairs,
    }
}

/// Pixel (`tx`, `ty`) of `frame` scaled to `tw` x `th` (no larger than
/// the frame): the average of the source pixels it covers, at most 4x4
/// samples of them (enough for a picture, bounded work). Black outside.
pub(crate) fn scaled_pixel(
    frame: &Frame<'_>,
    (tw, th): (usize, usize),
    (tx, ty): (usize, usize),
) -> [u8; 3] {
    let (w, h) = (frame.width as usize, frame.height as usize);
    if tw == 0 || th == 0 || frame.rgba.len() < w * h * 4 {
        return [0, 0, 0];
    }
    let (x0, x1) = (tx * w / tw, ((tx + 1) * w / tw).max(tx * w / tw + 1));
    let (y0, y1) = (ty * h / th, ((ty + 1) * h / th).max(ty * h / th + 1));
    let step_x = ((x1 - x0) / 4).max(1);
    let step_y = ((y1 - y0) / 4).max(1);
    let (mut sum, mut n) = ([0u32; 3], 0u32);
    for y in (y0..y1.min(h)).step_by(step_y) {
        for x in (x0..x1.min(w)).step_by(step_x) {
            // In bounds: x < w, y < h, and rgba holds w * h pixels.
            let at = (y * w + x) * 4;
            for (c, total) in sum.iter_mut().enumerate() {
                *total += u32::from(frame.rgba[at + c]);
            }
            n += 1;
        }
    }
    let n = n.max(1);
    [(sum[0] / n) as u8, (sum[1] / n) as u8, (sum[2] / n) as u8]
}

/// Draws `frame` into `cols` x `rows` terminal cells as half blocks (see
/// [`cells`]). The text starts at the top left (`ESC [H`) and uses 24-bit
/// colour.
pub fn half_blocks(frame: &Frame<'_>, cols: u16, rows: u16) -> String {
    let cells = cells(frame, cols, rows);
    let mut out = String::with_capacity(cells.pairs.len() * 20);
    out.push_str("\x1b[H");
    for (row, line) in cells.pairs.chunks(cells.cols.max(1)).enumerate() {
        let mut last = None;
        for &(top, bottom) in line {
            if last != Some((top, bottom)) {
                let [r, g, b] = top;
                let [br, bg, bb] = bottom;
                out.push_str(&format!("\x1b[38;2;{r};{g};{b};48;2;{br};{bg};{bb}m"));
                last = Some((top, bottom));
            }
            out.push('▀');
        }
        out.push_str("\x1b[0m\x1b[K");
        if row + 1 < cells.rows {
            out.push_str("\r\n");
        }
    }
    out
}

/// Frames drawn per second of replay at most: a redraw costs the whole
/// screen, so updates between two draws are only decoded.
pub const REPLAY_FPS: f64 = 10.0;

/// Plays a desktop recording to a terminal of `cols` x `rows` in half
/// blocks, at `speed` with pauses capped at `idle_cap` seconds, waiting
/// with `sleep`. Returns how many pictures were drawn.
pub fn replay_with(
    cast: impl AsRef<Path>,
    out: &mut impl Write,
    (cols, rows): (u16, u16),
    speed: f64,
    idle_cap: Option<f64>,
    sleep: impl FnMut(std::time::Duration),
) -> Result<u64, RecordError> {
    out.write_all(b"\x1b[2J").map_err(RecordError::Output)?;
    let drawn = play_timed(cast, (speed, idle_cap), sleep, |frame| {
        out.write_all(half_blocks(frame, cols, rows).as_bytes())
            .and_then(|()| out.flush())
            .map_err(RecordError::Output)
    })?;
    out.write_all(b"\x1b[0m\r\n").map_err(RecordError::Output)?;
    Ok(drawn)
}

/// The timing of a desktop replay on a terminal: every update of `cast`
/// is decoded, the recorded pauses are waited out with `sleep` (at
/// `speed`, each capped at `idle_cap` seconds), and `draw` shows the
/// picture at most [`REPLAY_FPS`] times a second of the recording and
/// once at the end. Returns how many pictures were drawn.
pub fn play_timed(
    cast: impl AsRef<Path>,
    (speed, idle_cap): (f64, Option<f64>),
    mut sleep: impl FnMut(std::time::Duration),
    mut draw: impl FnMut(&Frame<'_>) -> Result<(), RecordError>,
) -> Result<u64, RecordError> {
    let mut desktop = Desktop::new();
    let mut drawn = 0u64;
    let mut previous = 0.0f64;
    let mut last_draw = f64::NEG_INFINITY;
    let mut pending = false;
    let mut show = |desktop: &Desktop| -> Result<u64, RecordError> {
        match desktop.frame() {
            Some(frame) => draw(&frame).map(|()| 1),
            None => Ok(0),
        }
    };
    for chunk in super::export::chunks(cast)? {
        let (time, bytes) = chunk?;
        let mut gap = (time - previous).max(0.0);
        if let Some(cap) = idle_cap {
            gap = gap.min(cap);
        }
        previous = time.max(previous);
        if gap > 0.0 {
            if pending {
                drawn += show(&desktop)?;
                last_draw = time;
            }
            sleep(std::time::Duration::from_secs_f64(gap / speed));
        }
        desktop.feed(&bytes);
        pending = time - last_draw < 1.0 / REPLAY_FPS;
        if !pending {
            drawn += show(&desktop)?;
            last_draw = time;
        }
    }
    if pending {
        drawn += show(&desktop)?;
    }
    Ok(drawn)
}

/// Made-up RDP output for tests: a Demand Active and uncompressed bitmap
/// updates, as a target would send them.
#[cfg(test)]
pub(crate) mod synth {
    use std::borrow::Cow;

    use ironrdp_core::encode_vec;
    use ironrdp_pdu::bitmap::{BitmapData, BitmapUpdateData, Compression};
    use ironrdp_pdu::fast_path::{
        EncryptionFlags, FastPathHeader, FastPathUpdatePdu, Fragmentation, UpdateCode,
    };
    use ironrdp_pdu::geometry::InclusiveRectangle;
    use ironrdp_pdu::mcs::{McsMessage, SendDataIndication};
    use ironrdp_pdu::rdp::capability_sets::{
        Bitmap, BitmapDrawingFlags, CapabilitySet, DemandActive, ServerDemandActive,
    };
    use ironrdp_pdu::rdp::headers::{ShareControlHeader, ShareControlPdu};
    use ironrdp_pdu::x224::X224;

    /// A desktop recording of these chunks (time, bytes), written by the
    /// recorder into `dir`; returns the cast's path.
    pub(crate) fn recording(
        dir: &std::path::Path,
        chunks: &[(std::time::Duration, Vec<u8>)],
    ) -> std::path::PathBuf {
        recording_with_keyframes(dir, chunks, &[])
    }

    /// [`recording`] with a stored keyframe (the relay's `redraw`, with a
    /// 320x240 Demand Active) before each chunk whose index is listed.
    pub(crate) fn recording_with_keyframes(
        dir: &std::path::Path,
        chunks: &[(std::time::Duration, Vec<u8>)],
        keyframes: &[usize],
    ) -> std::path::PathBuf {
        use crate::record::writer::{CastWriter, RecordingMeta};
        let meta = RecordingMeta {
            session: "0b4f6a52-3c1e-4d7a-9f00-5e2a1c0d9b12".into(),
            started_at: jiff::Timestamp::from_second(1_767_225_600).expect("time"),
            user: "alice".into(),
            asset: "win1".into(),
            account: "Administrator".into(),
            protocol: "rdp".into(),
            kind: crate::record::SessionKind::Desktop,
            cols: 0,
            rows: 0,
            term: None,
            shell: None,
            title: None,
            command: None,
        };
        let mut writer = CastWriter::create(dir, &meta).expect("create");
        for (i, (at, bytes)) in chunks.iter().enumerate() {
            if keyframes.contains(&i) {
                writer
                    .redraw(*at, &demand_active(320, 240))
                    .expect("keyframe");
            }
            writer.output(*at, bytes).expect("output");
        }
        let path = dir.join(writer.relative_path());
        writer.finish().expect("finish");
        path
    }

    /// The server's Demand Active for a desktop of this size.
    pub(crate) fn demand_active(width: u16, height: u16) -> Vec<u8> {
        let header = ShareControlHeader {
            share_control_pdu: ShareControlPdu::ServerDemandActive(ServerDemandActive {
                pdu: DemandActive {
                    source_descriptor: "RDP".into(),
                    capability_sets: vec![CapabilitySet::Bitmap(Bitmap {
                        pref_bits_per_pix: 32,
                        desktop_width: width,
                        desktop_height: height,
                        desktop_resize_flag: false,
                        drawing_flags: BitmapDrawingFlags::empty(),
                    })],
                },
            }),
            pdu_source: 1002,
            share_id: 0x1_03ea,
        };
        let user_data = encode_vec(&header).expect("share control");
        encode_vec(&X224(McsMessage::SendDataIndication(SendDataIndication {
            initiator_id: 1002,
            channel_id: 1003,
            user_data: Cow::Owned(user_data),
        })))
        .expect("send data indication")
    }

    /// A fast-path update filling a rectangle (at most 64x64) with `rgb`.
    pub(crate) fn fill(x: u16, y: u16, w: u16, h: u16, [r, g, b]: [u8; 3]) -> Vec<u8> {
        let pixels = [b, g, r, 0].repeat(usize::from(w) * usize::from(h));
        let update = BitmapUpdateData {
            rectangles: vec![BitmapData {
                rectangle: InclusiveRectangle {
                    left: x,
                    top: y,
                    right: x + w - 1,
                    bottom: y + h - 1,
                },
                width: w,
                height: h,
                bits_per_pixel: 32,
                compression_flags: Compression::empty(),
                compressed_data_header: None,
                bitmap_data: &pixels,
            }],
        };
        let data = encode_vec(&update).expect("bitmap update");
        let pdu = FastPathUpdatePdu {
            fragmentation: Fragmentation::Single,
            update_code: UpdateCode::Bitmap,
            compression_flags: None,
            compression_type: None,
            data: &data,
        };
        let body = encode_vec(&pdu).expect("fast-path update");
        let mut out =
            encode_vec(&FastPathHeader::new(EncryptionFlags::empty(), body.len())).expect("header");
        out.extend_from_slice(&body);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::{Desktop, Frame, half_blocks, synth};

    #[test]
    fn a_saved_picture_restores_exactly_and_decodes_on() {
        let mut desktop = Desktop::new();
        desktop.feed(&synth::demand_active(200, 120));
        desktop.feed(&synth::fill(0, 0, 64, 64, [0x33, 0x66, 0xcc]));
        desktop.feed(&synth::fill(100, 50, 40, 30, [0xff, 0x80, 0x00]));
        assert_eq!(desktop.damaged, 0);
        let before: Vec<u8> = desktop.frame().expect("picture").rgba.to_vec();
        assert_eq!(&before[..4], &[0x33, 0x66, 0xcc, 0xff]);
        let at = (50 * 200 + 100) * 4;
        assert_eq!(&before[at..at + 3], &[0xff, 0x80, 0x00]);
        let saved = desktop.save().expect("saved");
        assert!(saved.cost() < before.len() / 4, "{} bytes", saved.cost());
        let mut restored = Desktop::restore(&saved);
        assert_eq!(restored.damaged, 0);
        // Alpha is not shown (PNG and half blocks take RGB): a restored
        // picture is opaque where the first was never drawn.
        let rgb = |rgba: &[u8]| -> Vec<u8> {
            rgba.chunks_exact(4)
                .flat_map(|p| [p[0], p[1], p[2]])
                .collect()
        };
        assert!(rgb(restored.frame().expect("restored").rgba) == rgb(&before));
        // The same ids: updates after the restore still decode.
        restored.feed(&synth::fill(10, 100, 8, 8, [1, 2, 3]));
        desktop.feed(&synth::fill(10, 100, 8, 8, [1, 2, 3]));
        assert_eq!(restored.damaged, 0);
        assert!(rgb(restored.frame().expect("a").rgba) == rgb(desktop.frame().expect("b").rgba));
        assert!(
            Desktop::new().save().is_none(),
            "nothing to keep before the size"
        );
    }

    #[test]
    fn half_blocks_keep_the_aspect_and_average_colours() {
        // 4x2 pixels: left half red, right half blue; top row only.
        let mut rgba = Vec::new();
        for y in 0..2 {
            for x in 0..4 {
                let px: [u8; 4] = match (x < 2, y) {
                    (true, 0) => [255, 0, 0, 255],
                    (false, 0) => [0, 0, 255, 255],
                    _ => [0, 0, 0, 255],
                };
                rgba.extend_from_slice(&px);
            }
        }
        let frame = Frame {
            width: 4,
            height: 2,
            rgba: &rgba,
        };
        // 8x8 cells fit 8x16 half-block pixels: scale 2, so 8 columns, 4
        // pixel rows = 2 cell rows.
        let text = half_blocks(&frame, 8, 8);
        let eight = std::num::NonZeroU16::new(8).expect("8");
        let mut parser = vt100::Parser::new(eight, eight, 0);
        parser.process(text.as_bytes());
        let cell = |r, c| parser.screen().cell(r, c).cloned().unwrap();
        assert_eq!(cell(0, 0).contents(), "▀");
        assert_eq!(cell(0, 0).fgcolor(), vt100::Color::Rgb(255, 0, 0));
        assert_eq!(cell(0, 0).bgcolor(), vt100::Color::Rgb(255, 0, 0));
        assert_eq!(cell(0, 7).fgcolor(), vt100::Color::Rgb(0, 0, 255));
        assert_eq!(cell(1, 0).fgcolor(), vt100::Color::Rgb(0, 0, 0));
        assert_eq!(cell(2, 0).contents(), "", "nothing below the picture");
    }
}
