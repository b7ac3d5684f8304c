//! A desktop's picture as terminal graphics: scaled (aspect kept) to a
//! pixel size, then encoded as a kitty graphics transmission (PNG in
//! base64 chunks) or as sixel (a fixed palette, run-length encoded bands).
//! Pure functions over bytes: nothing here writes to a terminal.

use std::fmt::Write as _;

use base64::Engine as _;

use crate::record::desktop::Frame as Picture;

/// The image id rampart's pictures use in the kitty protocol: each new
/// picture with it replaces the previous one, and one delete removes it.
pub const KITTY_ID: u32 = 1_742_017;

/// Largest chunk of base64 in one kitty escape (the protocol's limit).
const KITTY_CHUNK: usize = 4096;

/// An RGB image, row by row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rgb {
    pub width: u32,
    pub height: u32,
    pub pixels: Vec<[u8; 3]>,
}

/// `picture` scaled to exactly `width` x `height` (at least 1x1): each
/// target pixel is the average of at most 4x4 samples of the source
/// pixels it covers (nearest when enlarging). Black where the picture is
/// short of data.
pub fn scale(picture: &Picture<'_>, width: u32, height: u32) -> Rgb {
    let (tw, th) = (width.max(1) as usize, height.max(1) as usize);
    let (w, h) = (picture.width as usize, picture.height as usize);
    let mut pixels = Vec::with_capacity(tw * th);
    let whole = w > 0 && h > 0 && picture.rgba.len() >= w * h * 4;
    for ty in 0..th {
        for tx in 0..tw {
            pixels.push(if whole {
                sample(picture, (tw, th), (tx, ty))
            } else {
                [0, 0, 0]
            });
        }
    }
    Rgb {
        width: tw as u32,
        height: th as u32,
        pixels,
    }
}

/// The mean of the source pixels under target pixel (`tx`, `ty`).
fn sample(picture: &Picture<'_>, (tw, th): (usize, usize), (tx, ty): (usize, usize)) -> [u8; 3] {
    let (w, h) = (picture.width as usize, picture.height as usize);
    let span = |t: usize, len: usize, of: usize| {
        let a = t * len / of;
        (a, ((t + 1) * len / of).max(a + 1).min(len))
    };
    let (x0, x1) = span(tx, w, tw);
    let (y0, y1) = span(ty, h, th);
    let (step_x, step_y) = (((x1 - x0) / 4).max(1), ((y1 - y0) / 4).max(1));
    let (mut sum, mut n) = ([0u32; 3], 0u32);
    for y in (y0..y1).step_by(step_y) {
        for x in (x0..x1).step_by(step_x) {
            // x < w and y < h, and the caller checked rgba holds w * h pixels.
            let at = (y * w + x) * 4;
            if let Some(p) = picture.rgba.get(at..at + 3) {
                for (total, v) in sum.iter_mut().zip(p) {
                    *total += u32::from(*v);
                }
                n += 1;
            }
        }
    }
    let n = n.max(1);
    [(sum[0] / n) as u8, (sum[1] / n) as u8, (sum[2] / n) as u8]
}

/// The largest size of `width` x `height` that fits in `room` (both in
/// pixels), aspect kept, never larger than `cap` in either direction.
pub fn fit(width: u32, height: u32, room: (u32, u32), cap: (u32, u32)) -> (u32, u32) {
    if width == 0 || height == 0 {
        return (0, 0);
    }
    let (rw, rh) = (room.0.min(cap.0), room.1.min(cap.1));
    let scale = (f64::from(rw) / f64::from(width)).min(f64::from(rh) / f64::from(height));
    (
        ((f64::from(width) * scale).floor() as u32).clamp(1, rw.max(1)),
        ((f64::from(height) * scale).floor() as u32).clamp(1, rh.max(1)),
    )
}

/// The image as a kitty graphics transmission shown at the cursor over
/// `cols` x `rows` cells, the cursor not moved (`C=1`), replies off
/// (`q=2`). It replaces any earlier image of [`KITTY_ID`].
pub fn kitty(image: &Rgb, cols: u16, rows: u16) -> Vec<u8> {
    let png = png_bytes(image);
    let data = base64::engine::general_purpose::STANDARD.encode(png);
    let mut out = String::with_capacity(data.len() + data.len() / KITTY_CHUNK * 16 + 64);
    let chunks: Vec<&[u8]> = data.as_bytes().chunks(KITTY_CHUNK).collect();
    let last = chunks.len().saturating_sub(1);
    for (i, chunk) in chunks.iter().enumerate() {
        let more = u8::from(i < last);
        // base64 is ASCII.
        let text = std::str::from_utf8(chunk).unwrap_or_default();
        if i == 0 {
            let _ = write!(
                out,
                "\x1b_Ga=T,f=100,i={KITTY_ID},q=2,C=1,c={cols},r={rows},m={more};{text}\x1b\\"
            );
        } else {
            let _ = write!(out, "\x1b_Gm={more};{text}\x1b\\");
        }
    }
    out.into_bytes()
}

/// Removes rampart's kitty image and its placements, freeing its data.
pub fn kitty_delete() -> Vec<u8> {
    format!("\x1b_Ga=d,d=I,i={KITTY_ID},q=2\x1b\\").into_bytes()
}

fn png_bytes(image: &Rgb) -> Vec<u8> {
    let mut out = Vec::new();
    let mut encoder = png::Encoder::new(&mut out, image.width, image.height);
    encoder.set_color(png::ColorType::Rgb);
    encoder.set_depth(png::BitDepth::Eight);
    // Speed over size: a picture is sent a few times a second at most.
    encoder.set_compression(png::Compression::Fast);
    let flat: Vec<u8> = image.pixels.iter().flatten().copied().collect();
    // Writing a well-formed image into a Vec does not fail.
    if let Ok(mut writer) = encoder.write_header() {
        let _ = writer.write_image_data(&flat);
        let _ = writer.finish();
    }
    out
}

/// The sixel palette: a 6x6x6 colour cube (216 entries) and 24 greys.
const CUBE: [u8; 6] = [0, 51, 102, 153, 204, 255];
const GREYS: usize = 24;

fn palette() -> Vec<[u8; 3]> {
    let mut colours = Vec::with_capacity(216 + GREYS);
    for r in CUBE {
        for g in CUBE {
            for b in CUBE {
                colours.push([r, g, b]);
            }
        }
    }
    for i in 0..GREYS {
        let v = (8 + i * 10) as u8;
        colours.push([v, v, v]);
    }
    colours
}

/// The palette entry nearest to `rgb`: the nearest cube colour, or the
/// nearest grey when that is closer (a desktop is full of greys).
fn nearest(rgb: [u8; 3]) -> usize {
    let level = |v: u8| (usize::from(v) + 25) / 51;
    let [r, g, b] = rgb;
    let cube = level(r) * 36 + level(g) * 6 + level(b);
    let dist = |c: [u8; 3]| -> u32 {
        c.iter()
            .zip(rgb)
            .map(|(a, b)| (i32::from(*a) - i32::from(b)).unsigned_abs().pow(2))
            .sum()
    };
    // level() of a byte is at most (255 + 25) / 51 = 5: in CUBE.
    let cube_rgb = [CUBE[level(r)], CUBE[level(g)], CUBE[level(b)]];
    let mean = (u32::from(r) + u32::from(g) + u32::from(b)) / 3;
    let grey = ((mean.saturating_sub(3)) / 10).min(GREYS as u32 - 1) as usize;
    let grey_v = (8 + grey * 10) as u8;
    if dist([grey_v; 3]) < dist(cube_rgb) {
        216 + grey
    } else {
        cube
    }
}

/// The image as sixel: `ESC P q`, raster attributes, the palette entries
/// it uses, then six-pixel bands, each colour's row run-length encoded,
/// then `ESC \`. The cursor ends below the image (callers save and restore
/// it).
pub fn sixel(image: &Rgb) -> Vec<u8> {
    let (w, h) = (image.width as usize, image.height as usize);
    if w == 0 || h == 0 || image.pixels.len() != w * h {
        return Vec::new();
    }
    let colours = palette();
    let index: Vec<u16> = image.pixels.iter().map(|p| nearest(*p) as u16).collect();
    let mut used = vec![false; colours.len()];
    for &i in &index {
        used[usize::from(i)] = true;
    }
    let mut out = String::with_capacity(w * h / 4 + 1024);
    // P2=1: pixels left at 0 keep what is behind them (nothing is).
    let _ = write!(out, "\x1bP0;1;0q\"1;1;{w};{h}");
    for (n, rgb) in colours.iter().enumerate().filter(|(n, _)| used[*n]) {
        let pct = |v: u8| u32::from(v) * 100 / 255;
        let _ = write!(
            out,
            "#{n};2;{};{};{}",
            pct(rgb[0]),
            pct(rgb[1]),
            pct(rgb[2])
        );
    }
    // One pass per band fills a row of sixels for each colour in it. The
    // slices are in bounds: `index` has w * h entries (checked above) and
    // every entry is a palette index (from nearest()).
    let mut planes: Vec<Option<Vec<u8>>> = vec![None; colours.len()];
    let bands = h.div_ceil(6);
    for band in 0..bands {
        let top = band * 6;
        for dy in 0..(h - top).min(6) {
            let row = &index[(top + dy) * w..(top + dy + 1) * w];
            for (x, &colour) in row.iter().enumerate() {
                let plane = planes[usize::from(colour)].get_or_insert_with(|| vec![0u8; w]);
                plane[x] |= 1 << dy;
            }
        }
        let mut first = true;
        for (colour, plane) in planes.iter_mut().enumerate() {
            let Some(bits) = plane.take() else { continue };
            // `$`: back to the band's start for the next colour.
            if !first {
                out.push('$');
            }
            first = false;
            let _ = write!(out, "#{colour}");
            run_length(&bits, &mut out);
        }
        // `-`: down to the next band (none after the last: it could
        // scroll the screen).
        if band + 1 < bands {
            out.push('-');
        }
    }
    out.push_str("\x1b\\");
    out.into_bytes()
}

/// One colour's row of sixels, runs of 4 or more as `!N`.
fn run_length(band: &[u8], out: &mut String) {
    let mut i = 0;
    while i < band.len() {
        let bits = band[i];
        let mut n = 1;
        while i + n < band.len() && band[i + n] == bits {
            n += 1;
        }
        let c = char::from(0x3f + bits);
        if n >= 4 {
            let _ = write!(out, "!{n}{c}");
        } else {
            for _ in 0..n {
                out.push(c);
            }
        }
        i += n;
    }
}
