//! The encoders read back by small decoders (base64 + PNG for kitty, a
//! sixel interpreter), the answers' parser, and the pace of pictures.

use std::time::{Duration, Instant};

use base64::Engine as _;
use ratatui::layout::Rect;

use super::encode::{self, KITTY_ID, Rgb};
use super::*;
use crate::record::desktop::Frame as Picture;

const BLUE: [u8; 3] = [0x33, 0x66, 0xcc];
const RED: [u8; 3] = [0xff, 0, 0];

/// A `w` x `h` RGBA picture, each pixel `colour(x, y)`.
fn rgba(w: u32, h: u32, colour: impl Fn(u32, u32) -> [u8; 3]) -> Vec<u8> {
    (0..h)
        .flat_map(|y| (0..w).map(move |x| (x, y)))
        .flat_map(|(x, y)| {
            let [r, g, b] = colour(x, y);
            [r, g, b, 0xff]
        })
        .collect()
}

fn split(w: u32) -> impl Fn(u32, u32) -> [u8; 3] {
    move |x, _| if x < w / 2 { RED } else { BLUE }
}

/// The APC strings of a kitty transmission: (keys, payload) each.
fn kitty_chunks(bytes: &[u8]) -> Vec<(String, String)> {
    let text = String::from_utf8(bytes.to_vec()).expect("ascii");
    text.split("\x1b\\")
        .filter(|s| !s.is_empty())
        .map(|s| {
            let body = s.strip_prefix("\x1b_G").expect("an APC G string");
            let (keys, data) = body.split_once(';').expect("keys;payload");
            (keys.to_string(), data.to_string())
        })
        .collect()
}

/// The image a kitty transmission carries, decoded: (width, height, RGB).
pub(crate) fn kitty_image(bytes: &[u8]) -> (u32, u32, Vec<u8>) {
    let chunks = kitty_chunks(bytes);
    let mut data = String::new();
    for (i, (keys, payload)) in chunks.iter().enumerate() {
        assert!(
            payload.len() <= 4096,
            "chunk {i} has {} bytes",
            payload.len()
        );
        let more = if i + 1 < chunks.len() { "m=1" } else { "m=0" };
        assert!(keys.split(',').any(|k| k == more), "chunk {i}: {keys}");
        data.push_str(payload);
    }
    let first = &chunks[0].0;
    for key in ["a=T", "f=100", &format!("i={KITTY_ID}"), "q=2"] {
        assert!(first.split(',').any(|k| k == key), "{key} in {first}");
    }
    let png = base64::engine::general_purpose::STANDARD
        .decode(data)
        .expect("base64");
    let decoder = png::Decoder::new(std::io::Cursor::new(png));
    let mut reader = decoder.read_info().expect("a PNG");
    let mut pixels = vec![0; reader.output_buffer_size().expect("size")];
    let info = reader.next_frame(&mut pixels).expect("a frame");
    assert_eq!(info.color_type, png::ColorType::Rgb);
    pixels.truncate(info.buffer_size());
    (info.width, info.height, pixels)
}

/// A sixel image interpreted: (width, height, colour of each pixel, None
/// where nothing was drawn).
pub(crate) fn sixel_image(bytes: &[u8]) -> (usize, usize, Vec<Option<[u8; 3]>>) {
    let text = std::str::from_utf8(bytes).expect("ascii");
    let body = text
        .strip_prefix("\x1bP")
        .and_then(|t| t.strip_suffix("\x1b\\"))
        .expect("DCS ... ST");
    let (_, body) = body.split_once('q').expect("q");
    let mut chars = body.chars().peekable();
    let number = |chars: &mut std::iter::Peekable<std::str::Chars>| {
        let mut n = String::new();
        while let Some(c) = chars.next_if(|c| c.is_ascii_digit()) {
            n.push(c);
        }
        n.parse::<usize>().expect("a number")
    };
    let params = |chars: &mut std::iter::Peekable<std::str::Chars>| {
        let mut out = vec![number(chars)];
        while chars.next_if_eq(&';').is_some() {
            out.push(number(chars));
        }
        out
    };
    assert_eq!(chars.next(), Some('"'), "raster attributes first");
    let raster = params(&mut chars);
    let (w, h) = (raster[2], raster[3]);
    let mut pixels = vec![None; w * h];
    let mut palette = std::collections::HashMap::new();
    let (mut colour, mut x, mut band) = (None, 0usize, 0usize);
    while let Some(c) = chars.next() {
        match c {
            '#' => {
                let p = params(&mut chars);
                if p.len() == 5 {
                    assert_eq!(p[1], 2, "RGB colours");
                    let v = |pct: usize| (pct * 255).div_ceil(100) as u8;
                    palette.insert(p[0], [v(p[2]), v(p[3]), v(p[4])]);
                }
                colour = Some(palette[&p[0]]);
            }
            '$' => x = 0,
            '-' => {
                x = 0;
                band += 1;
            }
            '!' | '?'..='~' => {
                let (n, c) = if c == '!' {
                    let n = number(&mut chars);
                    (n, chars.next().expect("the repeated sixel"))
                } else {
                    (1, c)
                };
                let bits = c as u8 - 0x3f;
                for _ in 0..n {
                    for dy in 0..6 {
                        let y = band * 6 + dy;
                        if bits & (1 << dy) != 0 && y < h && x < w {
                            pixels[y * w + x] = colour;
                        }
                    }
                    x += 1;
                }
            }
            other => panic!("unexpected {other:?} in sixel"),
        }
    }
    (w, h, pixels)
}

#[test]
fn a_kitty_picture_decodes_to_its_colours() {
    let data = rgba(40, 20, |_, _| BLUE);
    let picture = Picture {
        width: 40,
        height: 20,
        rgba: &data,
    };
    let bytes = encode::kitty(&encode::scale(&picture, 20, 10), 4, 2);
    let (w, h, pixels) = kitty_image(&bytes);
    assert_eq!((w, h), (20, 10));
    assert!(pixels.chunks(3).all(|p| p == BLUE), "all blue");
    assert!(kitty_chunks(&bytes)[0].0.contains("c=4,r=2"));

    // Two halves: red on the left, blue on the right, scaled by half.
    let data = rgba(64, 32, split(64));
    let picture = Picture {
        width: 64,
        height: 32,
        rgba: &data,
    };
    let (w, h, pixels) = kitty_image(&encode::kitty(&encode::scale(&picture, 32, 16), 4, 2));
    assert_eq!((w, h), (32, 16));
    for y in 0..16 {
        for x in 0..32 {
            let at = (y * 32 + x) * 3;
            let want = if x < 16 { RED } else { BLUE };
            assert_eq!(pixels[at..at + 3], want, "pixel {x},{y}");
        }
    }
}

#[test]
fn a_large_kitty_picture_goes_in_chunks_of_4096() {
    // Noise does not compress: many chunks.
    let data = rgba(200, 200, |x, y| {
        let n = x
            .wrapping_mul(2_654_435_761)
            .wrapping_add(y.wrapping_mul(40_503));
        [(n >> 3) as u8, (n >> 11) as u8, (n >> 19) as u8]
    });
    let picture = Picture {
        width: 200,
        height: 200,
        rgba: &data,
    };
    let bytes = encode::kitty(&encode::scale(&picture, 200, 200), 20, 10);
    assert!(kitty_chunks(&bytes).len() > 10);
    let (w, h, pixels) = kitty_image(&bytes);
    assert_eq!((w, h), (200, 200));
    assert_eq!(pixels[..3], data[..3]);
    assert_eq!(
        String::from_utf8(encode::kitty_delete()).unwrap(),
        format!("\x1b_Ga=d,d=I,i={KITTY_ID},q=2\x1b\\")
    );
}

#[test]
fn a_sixel_picture_decodes_to_its_colours_in_place() {
    // 13 rows: two whole bands and one of a single row.
    let data = rgba(30, 13, split(30));
    let picture = Picture {
        width: 30,
        height: 13,
        rgba: &data,
    };
    let (w, h, pixels) = sixel_image(&encode::sixel(&encode::scale(&picture, 30, 13)));
    assert_eq!((w, h), (30, 13));
    for y in 0..13 {
        for x in 0..30 {
            let want = if x < 15 { RED } else { BLUE };
            assert_eq!(pixels[y * 30 + x], Some(want), "pixel {x},{y}");
        }
    }
    // A colour off the palette comes out near it; a grey as a grey.
    let data = rgba(8, 6, |x, _| {
        if x < 4 {
            [200, 90, 20]
        } else {
            [128, 128, 128]
        }
    });
    let picture = Picture {
        width: 8,
        height: 6,
        rgba: &data,
    };
    let (_, _, pixels) = sixel_image(&encode::sixel(&encode::scale(&picture, 8, 6)));
    let [r, g, b] = pixels[0].expect("drawn");
    assert!(r.abs_diff(200) <= 30 && g.abs_diff(90) <= 30 && b.abs_diff(20) <= 30);
    let [r, g, b] = pixels[7].expect("drawn");
    assert!(r == g && g == b && r.abs_diff(128) <= 6, "{r},{g},{b}");
}

#[test]
fn scaling_keeps_the_aspect() {
    assert_eq!(encode::fit(1920, 1080, (800, 480), MAX_PIXELS), (800, 450));
    assert_eq!(encode::fit(800, 600, (4000, 4000), MAX_PIXELS), (1280, 960));
    assert_eq!(encode::fit(0, 600, (100, 100), MAX_PIXELS), (0, 0));
    let image: Rgb = encode::scale(
        &Picture {
            width: 2,
            height: 1,
            rgba: &[1, 2, 3, 255],
        },
        3,
        3,
    );
    assert!(
        image.pixels.iter().all(|p| *p == [0, 0, 0]),
        "short data is black"
    );
}

/// Feeds `bytes` one at a time: keys and answers.
fn filter_bytewise(bytes: &[u8]) -> (Vec<u8>, Vec<Reply>) {
    let mut filter = ReplyFilter::default();
    let (mut keys, mut replies) = (Vec::new(), Vec::new());
    for b in bytes {
        filter.feed(&[*b], &mut keys, &mut replies);
    }
    keys.extend(filter.flush());
    (keys, replies)
}

#[test]
fn answers_are_parsed_whole_or_split_and_keys_pass() {
    let cases: &[(&[u8], &[u8], Vec<Reply>)] = &[
        (
            b"\x1b[?62;4;6c",
            b"",
            vec![Reply::Attributes { sixel: true }],
        ),
        (
            b"\x1b[?62;6;22c",
            b"",
            vec![Reply::Attributes { sixel: false }],
        ),
        // A VT132's class is 4: not sixel.
        (b"\x1b[?4;6c", b"", vec![Reply::Attributes { sixel: false }]),
        (b"\x1b_Gi=31;OK\x1b\\", b"", vec![Reply::Kitty { ok: true }]),
        (
            b"\x1b_Gi=31;ENOENT:unsupported\x1b\\",
            b"",
            vec![Reply::Kitty { ok: false }],
        ),
        (b"\x1b_Gi=7;OK\x1b\\", b"", vec![Reply::Other]),
        (
            b"\x1b[6;20;10t",
            b"",
            vec![Reply::CellSize(CellSize {
                width: 10,
                height: 20,
            })],
        ),
        (b"\x1b[6;0;10t", b"", vec![Reply::Other]),
        // Keys around answers; PageDown and arrows are keys.
        (
            b"a\x1b[?1;2cb\x1b[6~\x1b[A",
            b"ab\x1b[6~\x1b[A",
            vec![Reply::Attributes { sixel: false }],
        ),
        (
            b"\x1b\x1b[?65;4c",
            b"\x1b",
            vec![Reply::Attributes { sixel: true }],
        ),
        (b"\x1bx", b"\x1bx", vec![]),
        (b"\x1b", b"\x1b", vec![]),
        (b"plain \xff text", b"plain \xff text", vec![]),
    ];
    for (input, keys, replies) in cases {
        let mut filter = ReplyFilter::default();
        let (mut k, mut r) = (Vec::new(), Vec::new());
        filter.feed(input, &mut k, &mut r);
        k.extend(filter.flush());
        assert_eq!((&k, &r), (&keys.to_vec(), replies), "{input:?} whole");
        assert_eq!(
            filter_bytewise(input),
            (keys.to_vec(), replies.clone()),
            "{input:?} split"
        );
    }
    // An endless APC string is dropped, not kept.
    let mut filter = ReplyFilter::default();
    let (mut k, mut r) = (Vec::new(), Vec::new());
    filter.feed(b"\x1b_G", &mut k, &mut r);
    filter.feed(&vec![b'x'; 10_000], &mut k, &mut r);
    assert!(!filter.holding() || filter.flush().len() < 4096 + 8);
}

#[test]
fn kitty_wins_over_sixel_and_silence_is_blocks() {
    let mut d = Detection::default();
    assert_eq!(d.result(), (Graphics::Blocks, CellSize::default()));
    d.feed(&Reply::Kitty { ok: true });
    d.feed(&Reply::CellSize(CellSize {
        width: 9,
        height: 18,
    }));
    assert!(!d.done());
    d.feed(&Reply::Attributes { sixel: true });
    assert!(d.done());
    assert_eq!(
        d.result(),
        (
            Graphics::Kitty,
            CellSize {
                width: 9,
                height: 18
            }
        )
    );
    let mut d = Detection::default();
    d.feed(&Reply::Attributes { sixel: true });
    assert_eq!(d.result().0, Graphics::Sixel);
    assert_eq!(Graphics::parse("KITTY"), Ok(Some(Graphics::Kitty)));
    assert_eq!(Graphics::parse("auto"), Ok(None));
    assert!(Graphics::parse("ascii").is_err());
}

#[test]
fn answers_never_become_keys() {
    use crate::tui::{InputParser, Key};
    let mut p = InputParser::new();
    assert!(p.feed(b"\x1b_Gi=31;OK\x1b\\\x1b[6;16;8t\x1b[?6").is_empty());
    assert_eq!(p.feed(b"2;4c q"), vec![Key::Char(' '), Key::Char('q')]);
    assert_eq!(
        p.take_replies(),
        vec![
            Reply::Kitty { ok: true },
            Reply::CellSize(CellSize {
                width: 8,
                height: 16
            }),
            Reply::Attributes { sixel: true },
        ]
    );
    // Esc is still the Escape key after a pause, and arrows still arrive.
    assert!(p.feed(b"\x1b").is_empty());
    assert_eq!(p.flush(), vec![Key::Esc]);
    assert_eq!(p.feed(b"\x1b[B"), vec![Key::Down]);
}

#[test]
fn a_picture_is_sent_when_it_changed_and_at_a_pace() {
    let blue = rgba(64, 32, |_, _| BLUE);
    let red = rgba(64, 32, |_, _| RED);
    let picture = |data| Picture {
        width: 64,
        height: 32,
        rgba: data,
    };
    let room = Rect::new(2, 3, 40, 10);
    let mut p = Pictures::new(Graphics::Kitty, CellSize::default());
    let t0 = Instant::now();
    let first = p.place(room, &picture(&blue), false, t0);
    // 40x10 cells of 10x20 pixels: 400x200, the picture fits at 400x200,
    // at the room's top left (1-based).
    assert!(
        first.starts_with(b"\x1b7\x1b[4;3H\x1b_G"),
        "{:?}",
        &first[..20]
    );
    assert!(first.ends_with(b"\x1b8"));
    let late = t0 + Duration::from_secs(1);
    assert!(
        p.place(room, &picture(&blue), false, late).is_empty(),
        "unchanged"
    );
    assert!(
        !p.place(room, &picture(&blue), true, late).is_empty(),
        "repainted"
    );
    let soon = late + Duration::from_millis(10);
    assert!(
        p.place(room, &picture(&red), false, soon).is_empty(),
        "too soon"
    );
    assert!(p.due(soon).is_some_and(|d| d > Duration::ZERO));
    let later = late + Duration::from_secs(1);
    assert!(!p.place(room, &picture(&red), false, later).is_empty());
    assert_eq!(p.due(later), None);
    // The room moves: the kitty image is deleted first; leaving deletes it.
    assert_eq!(
        p.plan(Some(Rect::new(0, 0, 10, 10))).before,
        encode::kitty_delete()
    );
    assert!(
        p.place(room, &picture(&red), false, later)
            .starts_with(b"\x1b7")
    );
    assert_eq!(p.end().0, encode::kitty_delete());
    // Sixel leaves pixels behind: the screen is repainted instead.
    let mut p = Pictures::new(Graphics::Sixel, CellSize::default());
    assert!(
        p.place(room, &picture(&red), false, t0)
            .windows(3)
            .any(|w| w == b"\x1bPq" || w == b"\x1bP0")
    );
    assert!(p.plan(None).repaint);
}

/// Through the screen: the monitor of a desktop leaves the picture's room
/// blank and the image follows the frame; a resize sends it again.
#[test]
fn the_screen_sends_the_picture_after_the_frame_and_again_after_a_resize() {
    use crate::record::desktop::synth;
    use crate::tui::{ColorMode, Screen, Theme, Watch};
    let mut info = crate::tui::watch::tests::info(0, 0);
    info.session.asset = "win1".into();
    info.session.account = "Administrator".into();
    info.session.protocol = "rdp".into();
    info.session.kind = "desktop".into();
    let mut watch = Watch::new(&info, false);
    watch.snapshot(0, 0, &synth::demand_active(128, 64));
    for x in [0, 64] {
        watch.feed(&synth::fill(x, 0, 64, 64, BLUE));
    }
    watch.set_graphics(Graphics::Kitty);
    let mut screen = Screen::new(80, 24, ColorMode::Full);
    screen.set_graphics(Graphics::Kitty, CellSize::default());
    let now = Instant::now();
    let bytes = screen.draw_picture(
        |f| watch.render(f, &Theme::default()),
        || watch.picture(),
        now,
    );
    let at = bytes
        .windows(4)
        .position(|w| w == b"\x1b_Ga")
        .expect("a kitty image");
    let (w, h, pixels) = kitty_image(&bytes[at..bytes.len() - 2]);
    assert_eq!((w, h), (128, 64), "no larger than the desktop");
    assert!(pixels.chunks(3).all(|p| p == BLUE));
    let mut client = vt100::Parser::new(
        std::num::NonZeroU16::new(24).unwrap(),
        std::num::NonZeroU16::new(80).unwrap(),
        0,
    );
    client.process(&bytes);
    assert!(!client.screen().contents().contains('▀'), "no half blocks");
    assert!(client.screen().contents().contains("desktop 128×64"));
    // Nothing changed: no image; after a resize, the image again.
    let again = screen.draw_picture(
        |f| watch.render(f, &Theme::default()),
        || watch.picture(),
        now + Duration::from_secs(1),
    );
    assert!(!again.windows(4).any(|w| w == b"\x1b_Ga"));
    screen.resize(100, 30);
    let resized = screen.draw_picture(
        |f| watch.render(f, &Theme::default()),
        || watch.picture(),
        now + Duration::from_secs(1),
    );
    assert!(resized.windows(4).any(|w| w == b"\x1b_Ga"));
    // Leaving deletes it.
    assert_eq!(screen.end_pictures(), encode::kitty_delete());
}
