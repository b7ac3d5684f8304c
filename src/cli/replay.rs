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
use crate::record::desktop::{Desktop, REPLAY_FPS};
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
/// capped at `idle`, drawing at most [`REPLAY_FPS`] pictures a second of
/// the recording. Returns how many pictures were drawn.
pub(crate) fn play(
    cast: &Path,
    out: &mut impl Write,
    mut pictures: Pictures,
    (cols, rows): (u16, u16),
    (speed, idle): (f64, Option<f64>),
    mut sleep: impl FnMut(Duration),
) -> Result<u64, RecordError> {
    let room = Rect::new(0, 0, cols.max(1), rows.max(1));
    let mut desktop = Desktop::new();
    let (mut drawn, mut previous, mut last_draw) = (0u64, 0.0f64, f64::NEG_INFINITY);
    let mut pending = false;
    let mut draw = |desktop: &Desktop, out: &mut dyn Write| -> Result<u64, RecordError> {
        let Some(frame) = desktop.frame() else {
            return Ok(0);
        };
        // Each picture is sent whole: the recording changed since the last.
        let bytes = pictures.place(room, &frame, true, Instant::now());
        out.write_all(&bytes)
            .and_then(|()| out.flush())
            .map_err(RecordError::Output)?;
        Ok(1)
    };
    out.write_all(b"\x1b[2J\x1b[H")
        .map_err(RecordError::Output)?;
    for chunk in crate::record::chunks(cast)? {
        let (time, bytes) = chunk?;
        let mut gap = (time - previous).max(0.0);
        if let Some(cap) = idle {
            gap = gap.min(cap);
        }
        previous = time.max(previous);
        if gap > 0.0 {
            if pending {
                drawn += draw(&desktop, out)?;
                last_draw = time;
            }
            sleep(Duration::from_secs_f64(gap / speed));
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
