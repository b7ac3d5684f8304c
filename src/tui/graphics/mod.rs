//! Desktop pictures as terminal graphics (issue 17): where the person's
//! terminal speaks the kitty graphics protocol or sixel, a desktop's
//! picture is sent as an image instead of half blocks (80x24 cells of half
//! blocks are 80x48 pixels: illegible).
//!
//! - [`Graphics`]: how pictures are drawn, parsed from
//!   `auto|blocks|sixel|kitty` (the CLI's `--graphics`);
//! - [`reply`]: the detection queries, the parser of the terminal's
//!   answers, and the filter that keeps those answers out of the keys;
//! - [`encode`]: scaling and the kitty and sixel encoders;
//! - [`Pictures`]: one screen's picture state, used by
//!   [`super::Screen::draw_picture`]: where the picture went, whether it
//!   changed, and the pace (a picture is sent only when it changed or the
//!   screen was repainted whole, and at most [`PER_SECOND`] a second).
//!
//! It never writes to a terminal itself and never waits: the session task
//! (`ssh::menu`) and the CLI (`cli::replay`) send the queries and bytes.

pub mod encode;
pub mod reply;

use std::hash::{DefaultHasher, Hash, Hasher};
use std::time::{Duration, Instant};

use ratatui::layout::Rect;

use crate::record::desktop::Frame as Picture;
pub use reply::{DETECT_TIMEOUT, Detection, QUERY, Reply, ReplyFilter};

/// How a desktop's picture is drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Graphics {
    /// Half blocks (`▀`) in 24-bit colour: works everywhere.
    #[default]
    Blocks,
    /// DEC sixel.
    Sixel,
    /// The kitty graphics protocol (kitty, WezTerm, Ghostty, Konsole...).
    Kitty,
}

impl Graphics {
    /// Parses `auto|blocks|sixel|kitty`; `Ok(None)` is `auto` (detect).
    pub fn parse(text: &str) -> Result<Option<Graphics>, String> {
        match text.trim().to_ascii_lowercase().as_str() {
            "auto" => Ok(None),
            "blocks" => Ok(Some(Graphics::Blocks)),
            "sixel" => Ok(Some(Graphics::Sixel)),
            "kitty" => Ok(Some(Graphics::Kitty)),
            other => Err(format!(
                "unknown graphics {other:?}: auto, blocks, sixel or kitty"
            )),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Graphics::Blocks => "blocks",
            Graphics::Sixel => "sixel",
            Graphics::Kitty => "kitty",
        }
    }
}

/// One terminal cell's size in pixels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CellSize {
    pub width: u16,
    pub height: u16,
}

/// What most terminals' cells measure when they do not say.
impl Default for CellSize {
    fn default() -> Self {
        CellSize {
            width: 10,
            height: 20,
        }
    }
}

/// Pictures sent per second at most (a 1080p desktop playing at 16× must
/// not become megabytes a second on the person's link).
pub const PER_SECOND: u32 = 4;
/// No picture is encoded larger than this, whatever the room.
pub const MAX_PIXELS: (u32, u32) = (1280, 1024);

/// Where a picture is shown: its room and the cells it covers there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Shown {
    room: Rect,
    cells: Rect,
    digest: u64,
}

/// What [`Pictures::plan`] asks of the screen.
#[derive(Debug, Default)]
pub(crate) struct Plan {
    /// Bytes to send before the frame (a kitty delete).
    pub before: Vec<u8>,
    /// Repaint the screen whole first (sixel pixels are text-layer cells:
    /// a picture that moved or went leaves its pixels behind otherwise).
    pub repaint: bool,
}

/// One screen's pictures: the mode, the cell size, and what was sent.
#[derive(Debug, Default)]
pub struct Pictures {
    mode: Graphics,
    cell: CellSize,
    shown: Option<Shown>,
    last_sent: Option<Instant>,
    /// A changed picture is waiting for the pace to allow it.
    pending: bool,
}

impl Pictures {
    pub fn new(mode: Graphics, cell: CellSize) -> Pictures {
        Pictures {
            mode,
            cell,
            ..Pictures::default()
        }
    }

    pub fn mode(&self) -> Graphics {
        self.mode
    }

    pub fn cell(&self) -> CellSize {
        self.cell
    }

    /// Before the frame's bytes: what the picture's room becoming `room`
    /// (`None`: no picture in this frame) needs.
    pub(crate) fn plan(&mut self, room: Option<Rect>) -> Plan {
        let mut plan = Plan::default();
        let Some(shown) = self.shown else {
            return plan;
        };
        if room == Some(shown.room) {
            return plan;
        }
        match self.mode {
            Graphics::Kitty => plan.before = encode::kitty_delete(),
            Graphics::Sixel => plan.repaint = true,
            Graphics::Blocks => {}
        }
        self.shown = None;
        plan
    }

    /// The image bytes for `picture` in `room`, placed at the room's cells
    /// (cursor saved and restored around it); empty when nothing is to be
    /// sent: unchanged, or too soon after the last one (then
    /// [`Pictures::due`] says when). `fresh`: the screen was just repainted
    /// whole, so the picture is sent whatever it is.
    pub fn place(
        &mut self,
        room: Rect,
        picture: &Picture<'_>,
        fresh: bool,
        now: Instant,
    ) -> Vec<u8> {
        if self.mode == Graphics::Blocks || room.width == 0 || room.height == 0 {
            return Vec::new();
        }
        let known = self.shown.filter(|s| s.room == room && !fresh);
        let pace = Duration::from_secs(1) / PER_SECOND;
        if known.is_some()
            && self
                .last_sent
                .is_some_and(|t| now.saturating_duration_since(t) < pace)
        {
            self.pending = true;
            return Vec::new();
        }
        self.pending = false;
        let (cell_w, cell_h) = (u32::from(self.cell.width), u32::from(self.cell.height));
        let px_room = (
            u32::from(room.width) * cell_w,
            u32::from(room.height) * cell_h,
        );
        let (w, h) = encode::fit(picture.width, picture.height, px_room, MAX_PIXELS);
        if w == 0 {
            return Vec::new();
        }
        // The terminal scales a kitty image to its cells: a small desktop
        // is not enlarged before it is sent.
        let (sw, sh) = match self.mode {
            Graphics::Kitty => encode::fit(
                picture.width,
                picture.height,
                (w, h),
                (picture.width, picture.height),
            ),
            _ => (w, h),
        };
        let image = encode::scale(picture, sw, sh);
        let digest = digest(&image);
        if known.is_some_and(|s| s.digest == digest) {
            return Vec::new();
        }
        let (cols, rows) = match self.mode {
            // The picture is stretched to the cells it is given.
            Graphics::Kitty => (
                (f64::from(w) / f64::from(cell_w)).round().max(1.0) as u16,
                (f64::from(h) / f64::from(cell_h)).round().max(1.0) as u16,
            ),
            _ => (w.div_ceil(cell_w) as u16, h.div_ceil(cell_h) as u16),
        };
        let (cols, rows) = (cols.min(room.width), rows.min(room.height));
        let cells = Rect::new(
            room.x + (room.width - cols) / 2,
            room.y + (room.height - rows) / 2,
            cols,
            rows,
        );
        let body = match self.mode {
            Graphics::Kitty => encode::kitty(&image, cols, rows),
            Graphics::Sixel => encode::sixel(&image),
            Graphics::Blocks => return Vec::new(),
        };
        self.shown = Some(Shown {
            room,
            cells,
            digest,
        });
        self.last_sent = Some(now);
        let mut out = format!(
            "\x1b7\x1b[{};{}H",
            u32::from(cells.y) + 1,
            u32::from(cells.x) + 1
        )
        .into_bytes();
        out.extend_from_slice(&body);
        out.extend_from_slice(b"\x1b8");
        out
    }

    /// How soon a changed picture held back by the pace may go.
    pub fn due(&self, now: Instant) -> Option<Duration> {
        if !self.pending {
            return None;
        }
        let pace = Duration::from_secs(1) / PER_SECOND;
        Some(match self.last_sent {
            Some(t) => pace.saturating_sub(now.saturating_duration_since(t)),
            None => Duration::ZERO,
        })
    }

    /// The screen with the picture goes: a kitty image is deleted (the
    /// bytes returned); whether the screen must be repainted whole (sixel
    /// pixels stay until overwritten).
    pub(crate) fn end(&mut self) -> (Vec<u8>, bool) {
        self.pending = false;
        match (self.shown.take(), self.mode) {
            (Some(_), Graphics::Kitty) => (encode::kitty_delete(), false),
            (Some(_), Graphics::Sixel) => (Vec::new(), true),
            _ => (Vec::new(), false),
        }
    }
}

fn digest(image: &encode::Rgb) -> u64 {
    let mut h = DefaultHasher::new();
    (image.width, image.height).hash(&mut h);
    image.pixels.hash(&mut h);
    h.finish()
}

#[cfg(test)]
pub(crate) mod tests;
