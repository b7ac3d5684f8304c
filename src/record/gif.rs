//! A desktop recording as a GIF animation (`rampart export --format gif`),
//! in pure Rust: the pictures [`super::desktop`] decodes, sampled at most
//! [`GifOptions::fps`] times a second and only when they changed, scaled
//! down to [`GifOptions::width`], with pauses shortened to the idle cap as
//! the replay does.
//!
//! Every frame uses one fixed palette (6 reds x 7 greens x 6 blues), so
//! no frame waits on a colour quantiser, and after the first each frame is
//! only the rectangle that changed, its unchanged pixels transparent: a
//! desktop where a window moves costs that window, not the screen.

use std::borrow::Cow;
use std::io::Write;
use std::path::Path;

use super::RecordError;
use super::desktop::{Desktop, Frame, scaled_pixel};

/// How the animation is made.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GifOptions {
    /// Widest picture, in pixels (a narrower desktop keeps its size).
    pub width: u16,
    /// Most frames a second.
    pub fps: f64,
    /// Pauses longer than this (seconds) are shortened to it.
    pub idle_cap: f64,
}

impl Default for GifOptions {
    fn default() -> Self {
        GifOptions {
            width: 960,
            fps: 5.0,
            idle_cap: 2.0,
        }
    }
}

/// What was written.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GifReport {
    pub frames: u64,
    pub width: u16,
    pub height: u16,
    /// The animation's length in seconds (pauses shortened).
    pub seconds: f64,
}

/// The palette index left transparent in a changed rectangle.
const TRANSPARENT: u8 = 255;
const LEVELS: [u8; 3] = [6, 7, 6];

/// The fixed palette: 252 colours, then black up to 256 entries.
fn palette() -> Vec<u8> {
    let mut rgb = Vec::with_capacity(256 * 3);
    let level = |i: u8, of: u8| (u16::from(i) * 255 / u16::from(of - 1)) as u8;
    for r in 0..LEVELS[0] {
        for g in 0..LEVELS[1] {
            for b in 0..LEVELS[2] {
                rgb.extend_from_slice(&[
                    level(r, LEVELS[0]),
                    level(g, LEVELS[1]),
                    level(b, LEVELS[2]),
                ]);
            }
        }
    }
    rgb.resize(256 * 3, 0);
    rgb
}

/// The nearest palette entry of a colour.
fn index_of([r, g, b]: [u8; 3]) -> u8 {
    let near = |v: u8, of: u8| ((u16::from(v) * u16::from(of - 1) + 127) / 255) as u8;
    let (r, g, b) = (near(r, LEVELS[0]), near(g, LEVELS[1]), near(b, LEVELS[2]));
    (r * LEVELS[1] + g) * LEVELS[2] + b
}

/// A picture scaled and mapped to the palette.
fn indexed(frame: &Frame<'_>, width: u16, height: u16) -> Vec<u8> {
    let (w, h) = (usize::from(width), usize::from(height));
    let mut out = Vec::with_capacity(w * h);
    for y in 0..h {
        for x in 0..w {
            out.push(index_of(scaled_pixel(frame, (w, h), (x, y))));
        }
    }
    out
}

/// The smallest rectangle holding every pixel that differs:
/// (left, top, width, height), or `None` when nothing does.
fn changed(before: &[u8], after: &[u8], width: usize) -> Option<(usize, usize, usize, usize)> {
    let (mut x0, mut y0, mut x1, mut y1) = (usize::MAX, usize::MAX, 0, 0);
    for (i, (a, b)) in before.iter().zip(after).enumerate() {
        if a != b {
            let (x, y) = (i % width, i / width);
            x0 = x0.min(x);
            x1 = x1.max(x);
            y0 = y0.min(y);
            y1 = y1.max(y);
        }
    }
    (x0 != usize::MAX).then(|| (x0, y0, x1 - x0 + 1, y1 - y0 + 1))
}

/// A frame written once the next one's time says how long it shows.
struct Held {
    at: f64,
    left: u16,
    top: u16,
    width: u16,
    height: u16,
    pixels: Vec<u8>,
}

/// The animation being written.
struct Animation<W: Write> {
    encoder: Option<gif::Encoder<W>>,
    out: Option<W>,
    size: (u16, u16),
    shown: Vec<u8>,
    held: Option<Held>,
    frames: u64,
}

fn failed(e: impl std::fmt::Display) -> RecordError {
    RecordError::Output(std::io::Error::other(e.to_string()))
}

impl<W: Write> Animation<W> {
    /// Adds the picture as it is at `at` (animation seconds), if it
    /// differs from the last one.
    fn add(&mut self, frame: &Frame<'_>, at: f64, max_width: u16) -> Result<(), RecordError> {
        if self.encoder.is_none() {
            let width = (frame.width.min(u32::from(max_width))).max(1);
            let height = (u64::from(frame.height) * u64::from(width) / u64::from(frame.width))
                .clamp(1, u64::from(u16::MAX));
            // Both fit: width is at most max_width, height is clamped.
            self.size = (width as u16, height as u16);
            let out = self.out.take().ok_or_else(|| failed("written twice"))?;
            let mut encoder =
                gif::Encoder::new(out, self.size.0, self.size.1, &palette()).map_err(failed)?;
            encoder.set_repeat(gif::Repeat::Infinite).map_err(failed)?;
            self.encoder = Some(encoder);
        }
        let pixels = indexed(frame, self.size.0, self.size.1);
        let width = usize::from(self.size.0);
        let held = if self.shown.is_empty() {
            Held {
                at,
                left: 0,
                top: 0,
                width: self.size.0,
                height: self.size.1,
                pixels: pixels.clone(),
            }
        } else {
            let Some((x, y, w, h)) = changed(&self.shown, &pixels, width) else {
                return Ok(());
            };
            let mut part = Vec::with_capacity(w * h);
            for row in y..y + h {
                for col in x..x + w {
                    let i = row * width + col;
                    let (old, new) = (self.shown[i], pixels[i]);
                    part.push(if old == new { TRANSPARENT } else { new });
                }
            }
            // The rectangle lies inside the picture, whose sides fit u16.
            Held {
                at,
                left: x as u16,
                top: y as u16,
                width: w as u16,
                height: h as u16,
                pixels: part,
            }
        };
        self.shown = pixels;
        self.flush(Some(held))
    }

    /// Writes the held frame, showing until `next` (or briefly at the end).
    fn flush(&mut self, next: Option<Held>) -> Result<(), RecordError> {
        let until = next.as_ref().map(|n| n.at);
        if let (Some(held), Some(encoder)) = (self.held.take(), self.encoder.as_mut()) {
            let shows = until.map_or(1.0, |t| t - held.at);
            // Centiseconds; under 2 many viewers play as 10.
            let delay = (shows * 100.0).round().clamp(2.0, f64::from(u16::MAX)) as u16;
            let frame = gif::Frame {
                delay,
                dispose: gif::DisposalMethod::Keep,
                transparent: Some(TRANSPARENT),
                left: held.left,
                top: held.top,
                width: held.width,
                height: held.height,
                buffer: Cow::Owned(held.pixels),
                ..gif::Frame::default()
            };
            encoder.write_frame(&frame).map_err(failed)?;
            self.frames += 1;
        }
        self.held = next;
        Ok(())
    }
}

/// Writes the desktop recording `cast` to `out` as a GIF animation.
pub fn write_gif(
    cast: impl AsRef<Path>,
    out: impl Write,
    options: GifOptions,
) -> Result<GifReport, RecordError> {
    let step = 1.0 / options.fps.clamp(0.1, 50.0);
    let cap = if options.idle_cap > 0.0 {
        options.idle_cap
    } else {
        f64::INFINITY
    };
    let mut desktop = Desktop::new();
    let mut animation = Animation {
        encoder: None,
        out: Some(out),
        size: (0, 0),
        shown: Vec::new(),
        held: None,
        frames: 0,
    };
    let (mut clock, mut previous) = (0.0f64, 0.0f64);
    let mut sampled: Option<f64> = None;
    for chunk in super::export::chunks(cast)? {
        let (time, bytes) = chunk?;
        let gap = (time - previous).max(0.0);
        previous = previous.max(time);
        let next = clock + gap.min(cap);
        // The picture the chunks so far drew, taken (if it changed) when
        // the next chunk is a frame's time away from the last one taken.
        if sampled.is_none_or(|s| next - s >= step)
            && let Some(frame) = desktop.frame()
        {
            let at = sampled.map_or(clock, |s| clock.max(s + step));
            animation.add(&frame, at, options.width)?;
            sampled = Some(at);
        }
        clock = next;
        desktop.feed(&bytes);
    }
    if let Some(frame) = desktop.frame() {
        let at = sampled.map_or(clock, |s| clock.max(s + step));
        animation.add(&frame, at, options.width)?;
        clock = clock.max(at);
    }
    animation.flush(None)?;
    if animation.encoder.is_none() {
        return Err(RecordError::Output(std::io::Error::other(
            "the recording has no picture (the desktop was never shown)",
        )));
    }
    let (width, height) = animation.size;
    Ok(GifReport {
        frames: animation.frames,
        width,
        height,
        seconds: clock,
    })
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::{GifOptions, index_of, palette, write_gif};
    use crate::record::desktop::synth;

    #[test]
    fn a_desktop_animates_in_changed_rectangles_with_pauses_capped() {
        let dir = tempfile::tempdir().expect("tempdir");
        let secs = Duration::from_secs_f64;
        let mut chunks = vec![(secs(0.0), synth::demand_active(320, 240))];
        // A blue square, drawn in four quick updates: one frame at 5 fps.
        for (i, x) in [0u16, 64, 128, 192].into_iter().enumerate() {
            chunks.push((
                secs(0.1 + 0.01 * i as f64),
                synth::fill(x, 0, 64, 64, [0, 0, 255]),
            ));
        }
        // Ten seconds later a red square: the pause shows as 2 s.
        chunks.push((secs(10.2), synth::fill(100, 100, 40, 20, [255, 0, 0])));
        let path = synth::recording(dir.path(), &chunks);
        let mut gif = Vec::new();
        let report = write_gif(&path, &mut gif, GifOptions::default()).expect("gif");
        assert_eq!((report.width, report.height), (320, 240));
        // The desktop is black until the first update, then blue, then red.
        assert_eq!(report.frames, 3, "{report:?}");

        let mut options = gif::DecodeOptions::new();
        options.set_color_output(gif::ColorOutput::Indexed);
        let mut decoder = options.read_info(gif.as_slice()).expect("a GIF");
        assert_eq!((decoder.width(), decoder.height()), (320, 240));
        let mut next = || {
            decoder
                .read_next_frame()
                .expect("read")
                .expect("a frame")
                .clone()
        };
        let black = next();
        assert_eq!(
            (black.left, black.top, black.width, black.height),
            (0, 0, 320, 240)
        );
        assert!(black.buffer.iter().all(|&i| i == index_of([0, 0, 0])));
        assert_eq!(black.delay, 20, "shown until the next frame, 0.2 s on");
        let blue = next();
        assert_eq!(
            (blue.left, blue.top, blue.width, blue.height),
            (0, 0, 256, 64),
            "only what changed: the four updates in one frame"
        );
        assert!(blue.buffer.iter().all(|&i| i == index_of([0, 0, 255])));
        assert_eq!(blue.delay, 193, "the 10 s pause shows as 2 s");
        let red = next();
        assert_eq!(
            (red.left, red.top, red.width, red.height),
            (100, 100, 40, 20)
        );
        assert!(red.buffer.iter().all(|&i| i == index_of([255, 0, 0])));
        assert!(decoder.read_next_frame().expect("read").is_none());
    }

    #[test]
    fn a_recording_without_a_picture_says_so() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = synth::recording(dir.path(), &[(Duration::ZERO, vec![0x03, 0, 0, 4])]);
        let e = write_gif(&path, Vec::new(), GifOptions::default()).expect_err("no picture");
        assert!(e.to_string().contains("no picture"), "{e}");
    }

    #[test]
    fn the_palette_holds_its_own_colours_and_black_and_white() {
        let rgb = palette();
        for i in 0..252u8 {
            let at = usize::from(i) * 3;
            let colour = [rgb[at], rgb[at + 1], rgb[at + 2]];
            assert_eq!(index_of(colour), i, "{colour:?}");
        }
        assert_eq!(index_of([0, 0, 0]), 0);
        assert_eq!(index_of([255, 255, 255]), 251);
        assert_ne!(index_of([0x33, 0x66, 0xcc]), super::TRANSPARENT);
    }
}
