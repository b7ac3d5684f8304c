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
    /// Frames that did not decode (counted, skipped).
    pub damaged: u64,
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
        self.image = Some(DecodedImage::new(PixelFormat::RgbA32, width, height));
        self.processor = Some(
            ProcessorBuilder {
                io_channel_id: ctx.channel_id,
                user_channel_id: ctx.initiator_id,
                share_id: header.share_id,
                enable_server_pointer: false,
                pointer_software_rendering: false,
            }
            .build(),
        );
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
/// state when the recording is shorter): `feed` is called with it.
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

/// Draws `frame` into `cols` x `rows` terminal cells as half blocks (`▀`:
/// the upper pixel in the foreground colour, the lower in the background),
/// scaled to fit with its aspect kept, each cell pixel the average of the
/// source pixels it covers. The text starts at the top left (`ESC [H`) and
/// uses 24-bit colour.
pub fn half_blocks(frame: &Frame<'_>, cols: u16, rows: u16) -> String {
    let (w, h) = (frame.width as usize, frame.height as usize);
    let (cols, rows) = (usize::from(cols.max(1)), usize::from(rows.max(1)));
    if w == 0 || h == 0 || frame.rgba.len() < w * h * 4 {
        return String::new();
    }
    // Target size in half-block pixels: as large as fits, aspect kept.
    let scale = (cols as f64 / w as f64).min((rows * 2) as f64 / h as f64);
    let tw = ((w as f64 * scale).floor() as usize).clamp(1, cols);
    let th = ((h as f64 * scale).floor() as usize).clamp(1, rows * 2);
    let pixel = |tx: usize, ty: usize| -> [u8; 3] {
        let (x0, x1) = (tx * w / tw, ((tx + 1) * w / tw).max(tx * w / tw + 1));
        let (y0, y1) = (ty * h / th, ((ty + 1) * h / th).max(ty * h / th + 1));
        // Up to 4x4 samples per box: enough for a picture, bounded work.
        let step_x = ((x1 - x0) / 4).max(1);
        let step_y = ((y1 - y0) / 4).max(1);
        let (mut sum, mut n) = ([0u32; 3], 0u32);
        for y in (y0..y1.min(h)).step_by(step_y) {
            for x in (x0..x1.min(w)).step_by(step_x) {
                let at = (y * w + x) * 4;
                for (c, total) in sum.iter_mut().enumerate() {
                    *total += u32::from(frame.rgba[at + c]);
                }
                n += 1;
            }
        }
        let n = n.max(1);
        [(sum[0] / n) as u8, (sum[1] / n) as u8, (sum[2] / n) as u8]
    };
    let mut out = String::with_capacity(tw * th * 20);
    out.push_str("\x1b[H");
    let mut last: Option<([u8; 3], [u8; 3])> = None;
    for row in 0..th.div_ceil(2) {
        for col in 0..tw {
            let top = pixel(col, row * 2);
            let bottom = if row * 2 + 1 < th {
                pixel(col, row * 2 + 1)
            } else {
                [0, 0, 0]
            };
            if last != Some((top, bottom)) {
                let [r, g, b] = top;
                let [br, bg, bb] = bottom;
                out.push_str(&format!("\x1b[38;2;{r};{g};{b};48;2;{br};{bg};{bb}m"));
                last = Some((top, bottom));
            }
            out.push('▀');
        }
        out.push_str("\x1b[0m\x1b[K");
        last = None;
        if row + 1 < th.div_ceil(2) {
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
    mut sleep: impl FnMut(std::time::Duration),
) -> Result<u64, RecordError> {
    let mut desktop = Desktop::new();
    let mut drawn = 0u64;
    let mut previous = 0.0f64;
    let mut last_draw = f64::NEG_INFINITY;
    let mut pending = false;
    let draw = |desktop: &Desktop, out: &mut dyn Write| -> Result<u64, RecordError> {
        let Some(frame) = desktop.frame() else {
            return Ok(0);
        };
        out.write_all(half_blocks(&frame, cols, rows).as_bytes())
            .and_then(|()| out.flush())
            .map_err(RecordError::Output)?;
        Ok(1)
    };
    out.write_all(b"\x1b[2J").map_err(RecordError::Output)?;
    for chunk in super::export::chunks(cast)? {
        let (time, bytes) = chunk?;
        let mut gap = (time - previous).max(0.0);
        if let Some(cap) = idle_cap {
            gap = gap.min(cap);
        }
        previous = time.max(previous);
        if gap > 0.0 {
            if pending {
                drawn += draw(&desktop, out)?;
                last_draw = time;
            }
            sleep(std::time::Duration::from_secs_f64(gap / speed));
        }
        desktop.feed(&bytes);
        pending = time - last_draw < 1.0 / REPLAY_FPS;
        if !pending {
            drawn += draw(&desktop, out)?;
            last_draw = time;
        }
    }
    if pending {
        drawn += draw(&desktop, out)?;
    }
    out.write_all(b"\x1b[0m\r\n").map_err(RecordError::Output)?;
    Ok(drawn)
}

#[cfg(test)]
mod tests {
    use super::{Frame, half_blocks};

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
