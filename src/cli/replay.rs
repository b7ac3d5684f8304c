//! `rampart replay` of a desktop (RDP) recording on the local terminal:
//! the picture as kitty or sixel images where the terminal shows them
//! (`--graphics`, by default asked of the terminal when standard output is
//! one), half blocks otherwise (`record::desktop::replay_with`).

use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

use ratatui::layout::Rect;

use super::GraphicsArg;
use crate::record::RecordError;
use crate::tui::graphics::ReplyFilter;
use crate::tui::graphics::{CellSize, DETECT_TIMEOUT, Detection, Graphics, Pictures, QUERY};

/// Plays the desktop recording at `path` on standard output.
pub(super) fn desktop(
    path: &Path,
    graphics: GraphicsArg,
    speed: f64,
    idle: Option<f64>,
) -> anyhow::Result<()> {
    let (cols, rows, pixels) = terminal_size();
    let tty =
        rustix::termios::isatty(std::io::stdout()) && rustix::termios::isatty(std::io::stdin());
    let (chosen, answered) = match graphics {
        GraphicsArg::Blocks => (Graphics::Blocks, None),
        GraphicsArg::Sixel => (Graphics::Sixel, None),
        GraphicsArg::Kitty => (Graphics::Kitty, None),
        GraphicsArg::Auto if tty => match detect() {
            Some((g, cell)) => (g, cell),
            None => (Graphics::Blocks, None),
        },
        GraphicsArg::Auto => (Graphics::Blocks, None),
    };
    // The terminal's own answer, else the window's pixel size over its
    // cells, else 10x20.
    let cell = answered
        .or_else(|| {
            let (w, h) = pixels;
            (w >= cols && h > rows).then(|| CellSize {
                width: w / cols.max(1),
                height: h / (rows + 1),
            })
        })
        .unwrap_or_default();
    let mut out = std::io::stdout().lock();
    if chosen == Graphics::Blocks {
        crate::record::desktop::replay_with(
            path,
            &mut out,
            (cols, rows),
            speed,
            idle,
            std::thread::sleep,
        )?;
        return Ok(());
    }
    play(
        path,
        &mut out,
        Pictures::new(chosen, cell),
        (cols, rows),
        (speed, idle),
        std::thread::sleep,
    )?;
    Ok(())
}

/// Plays `cast` as images in `cols` x `rows` cells at `speed` with pauses
/// capped at `idle` (the timing of [`crate::record::desktop::play_timed`]).
/// Returns how many pictures were drawn.
pub(crate) fn play(
    cast: &Path,
    out: &mut impl Write,
    mut pictures: Pictures,
    (cols, rows): (u16, u16),
    (speed, idle): (f64, Option<f64>),
    sleep: impl FnMut(Duration),
) -> Result<u64, RecordError> {
    let room = Rect::new(0, 0, cols.max(1), rows.max(1));
    out.write_all(b"\x1b[2J\x1b[H")
        .map_err(RecordError::Output)?;
    let drawn = crate::record::desktop::play_timed(cast, (speed, idle), sleep, |frame| {
        // Each picture is sent whole: the recording changed since the last.
        let bytes = pictures.place(room, frame, true, Instant::now());
        out.write_all(&bytes)
            .and_then(|()| out.flush())
            .map_err(RecordError::Output)
    })?;
    // The prompt goes below the picture.
    write!(out, "\x1b[{};1H\r\n", rows.max(1)).map_err(RecordError::Output)?;
    Ok(drawn)
}

/// The terminal's size in cells, less a line for the prompt (80x23 when
/// standard output is none), and in pixels (0 when it does not say).
fn terminal_size() -> (u16, u16, (u16, u16)) {
    match rustix::termios::tcgetwinsize(std::io::stdout()) {
        Ok(w) if w.ws_col > 0 && w.ws_row > 1 => {
            (w.ws_col, w.ws_row - 1, (w.ws_xpixel, w.ws_ypixel))
        }
        _ => (80, 23, (0, 0)),
    }
}

/// Asks the local terminal what it draws: the queries on standard output,
/// the answers read from standard input in raw mode for up to
/// [`DETECT_TIMEOUT`]. `None` when the terminal cannot be put in raw mode.
fn detect() -> Option<(Graphics, Option<CellSize>)> {
    use rustix::termios::{OptionalActions, SpecialCodeIndex, tcgetattr, tcsetattr};
    let stdin = std::io::stdin();
    let saved = tcgetattr(&stdin).ok()?;
    let mut raw = saved.clone();
    raw.make_raw();
    // A read returns after a tenth of a second without input.
    raw.special_codes[SpecialCodeIndex::VMIN] = 0;
    raw.special_codes[SpecialCodeIndex::VTIME] = 1;
    tcsetattr(&stdin, OptionalActions::Now, &raw).ok()?;
    let mut detection = Detection::default();
    let mut filter = ReplyFilter::default();
    let asked = {
        let mut out = std::io::stdout().lock();
        out.write_all(QUERY).and_then(|()| out.flush()).is_ok()
    };
    let deadline = Instant::now() + DETECT_TIMEOUT;
    let mut buf = [0u8; 1024];
    while asked && !detection.done() && Instant::now() < deadline {
        let Ok(n) = rustix::io::read(&stdin, &mut buf) else {
            break;
        };
        let (mut typed, mut replies) = (Vec::new(), Vec::new());
        filter.feed(buf.get(..n).unwrap_or_default(), &mut typed, &mut replies);
        for reply in &replies {
            detection.feed(reply);
        }
    }
    // Flush: what was typed meanwhile, or an answer coming late, must not
    // reach the shell after rampart exits.
    let _ = tcsetattr(&stdin, OptionalActions::Flush, &saved);
    let (graphics, cell) = detection.result();
    Some((graphics, detection.cell_known().then_some(cell)))
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::play;
    use crate::record::desktop::synth;
    use crate::tui::graphics::tests::{kitty_image, sixel_image};
    use crate::tui::graphics::{CellSize, Graphics, Pictures};

    const BLUE: [u8; 3] = [0x33, 0x66, 0xcc];

    /// A desktop of 128x64 painted blue, then its right half red.
    fn recording(dir: &std::path::Path) -> std::path::PathBuf {
        let at = Duration::from_millis;
        synth::recording(
            dir,
            &[
                (at(0), synth::demand_active(128, 64)),
                (at(100), synth::fill(0, 0, 64, 64, BLUE)),
                (at(150), synth::fill(64, 0, 64, 64, BLUE)),
                (at(900), synth::fill(64, 0, 64, 64, [0xff, 0, 0])),
            ],
        )
    }

    /// The last sixel image in `out`, `ESC P` to `ESC \\`.
    fn last_sixel(out: &[u8]) -> &[u8] {
        let start = b"\x1bP0;1;0q";
        let at = out
            .windows(start.len())
            .rposition(|w| w == start)
            .expect("a sixel image");
        let end = out[at..]
            .windows(2)
            .position(|w| w == b"\x1b\\")
            .expect("its end");
        &out[at..at + end + 2]
    }

    #[test]
    fn the_cli_plays_a_desktop_as_sixel_and_kitty_images() {
        let dir = tempfile::tempdir().expect("dir");
        let cast = recording(dir.path());
        let mut waited = Duration::ZERO;
        let mut out = Vec::new();
        let pictures = Pictures::new(Graphics::Sixel, CellSize::default());
        let drawn = play(&cast, &mut out, pictures, (80, 23), (2.0, Some(2.0)), |d| {
            waited += d
        })
        .expect("played");
        assert!(drawn >= 2, "{drawn} pictures");
        assert!(waited >= Duration::from_millis(400), "{waited:?} at 2x");
        let (w, h, pixels) = sixel_image(last_sixel(&out));
        // 80x23 cells of 10x20 pixels: 800x460; the 2:1 desktop fills the width.
        assert_eq!((w, h), (800, 400));
        assert_eq!(pixels[0], Some(BLUE), "left half");
        assert_eq!(
            pixels[w - 1],
            Some([0xff, 0, 0]),
            "right half, last picture"
        );
        assert!(
            out.ends_with(b"\x1b[23;1H\r\n"),
            "the prompt below the picture"
        );

        let mut out = Vec::new();
        let pictures = Pictures::new(Graphics::Kitty, CellSize::default());
        play(&cast, &mut out, pictures, (80, 23), (1.0, None), |_| {}).expect("played");
        let at = out
            .windows(6)
            .rposition(|w| w == b"\x1b_Ga=T")
            .expect("a kitty image");
        let end = out.len() - b"\x1b8\x1b[23;1H\r\n".len();
        let (w, h, rgb) = kitty_image(&out[at..end]);
        assert_eq!((w, h), (128, 64), "not enlarged: the terminal scales it");
        assert_eq!(rgb[..3], BLUE);
        assert_eq!(rgb[(w as usize - 1) * 3..w as usize * 3], [0xff, 0, 0]);
    }
}
