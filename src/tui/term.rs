//! A vt100 screen drawn into a ratatui buffer: the live mirror of a
//! session and the replay of a recording show a terminal inside a terminal.
//! A desktop's picture is drawn as half blocks ([`copy_picture`]), unless
//! the terminal shows images (`tui::graphics`: the view then leaves the
//! room blank and the image follows the frame).

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::{Color, Modifier, Style};

/// Copies the recorded screen into `area`: from the top-left, or, when it
/// is larger, scrolled just enough that the cursor (where the activity is)
/// is in view.
pub(crate) fn copy_screen(screen: &vt100::Screen, area: Rect, buf: &mut Buffer, colour: bool) {
    let (rows, cols) = screen.size();
    let (rows, cols) = (rows.get(), cols.get());
    let (cursor_row, cursor_col) = screen.cursor_position();
    let offset = |cursor: u16, len: u16, room: u16| {
        if len <= room {
            0
        } else {
            cursor
                .saturating_add(1)
                .saturating_sub(room)
                .min(len - room)
        }
    };
    let row0 = offset(cursor_row, rows, area.height);
    let col0 = offset(cursor_col, cols, area.width);
    let show_cursor = !screen.hide_cursor();
    for y in 0..area.height.min(rows) {
        for x in 0..area.width.min(cols) {
            let (row, col) = (row0 + y, col0 + x);
            let Some(cell) = screen.cell(row, col) else {
                continue;
            };
            let Some(out) = buf.cell_mut((area.x + x, area.y + y)) else {
                continue;
            };
            // A wide character takes two cells; ratatui wants the second
            // blank. One cut by the crop or the edge is shown as a blank.
            let symbol = if cell.is_wide_continuation()
                || (cell.is_wide() && x + 1 >= area.width)
                || !cell.has_contents()
            {
                " "
            } else {
                cell.contents()
            };
            let mut style = Style::default();
            if colour {
                style = style.fg(color(cell.fgcolor())).bg(color(cell.bgcolor()));
            }
            let mut modifier = Modifier::empty();
            for (on, m) in [
                (cell.bold(), Modifier::BOLD),
                (cell.dim(), Modifier::DIM),
                (cell.italic(), Modifier::ITALIC),
                (cell.underline(), Modifier::UNDERLINED),
                (cell.inverse(), Modifier::REVERSED),
            ] {
                if on {
                    modifier |= m;
                }
            }
            if show_cursor && (row, col) == (cursor_row, cursor_col) {
                modifier ^= Modifier::REVERSED;
            }
            style = style.add_modifier(modifier);
            out.reset();
            out.set_symbol(symbol).set_style(style);
        }
    }
}

fn color(c: vt100::Color) -> Color {
    match c {
        vt100::Color::Default => Color::Reset,
        vt100::Color::Idx(i) => Color::Indexed(i),
        vt100::Color::Rgb(r, g, b) => Color::Rgb(r, g, b),
    }
}

/// Shades from dark to light, for a picture without colour (NO_COLOR).
const SHADES: [&str; 5] = [" ", "░", "▒", "▓", "█"];

/// Draws a desktop's picture, scaled into `area` as half blocks (`▀`, the
/// upper pixel in the foreground colour, the lower in the background) and
/// centred. Without colour each cell is a shade of its brightness. Returns
/// the cells used.
pub(crate) fn copy_picture(
    picture: &crate::record::desktop::Frame<'_>,
    area: Rect,
    buf: &mut Buffer,
    colour: bool,
) -> Rect {
    let cells = crate::record::desktop::cells(picture, area.width, area.height);
    // cells() never returns more than it was given room for.
    let (w, h) = (cells.cols as u16, cells.rows as u16);
    let at = Rect::new(
        area.x + (area.width.saturating_sub(w)) / 2,
        area.y + (area.height.saturating_sub(h)) / 2,
        w.min(area.width),
        h.min(area.height),
    );
    for y in 0..at.height {
        for x in 0..at.width {
            let (Some((top, bottom)), Some(out)) = (
                cells.get(usize::from(x), usize::from(y)),
                buf.cell_mut((at.x + x, at.y + y)),
            ) else {
                continue;
            };
            out.reset();
            if colour {
                let rgb = |[r, g, b]: [u8; 3]| Color::Rgb(r, g, b);
                out.set_symbol("▀")
                    .set_style(Style::default().fg(rgb(top)).bg(rgb(bottom)));
            } else {
                let light = |[r, g, b]: [u8; 3]| {
                    (u32::from(r) * 299 + u32::from(g) * 587 + u32::from(b) * 114) / 1000
                };
                let level = (light(top) + light(bottom)) / 2;
                // level is 0..=255, so the index is 0..=4.
                let shade = SHADES[(level as usize * SHADES.len() / 256).min(SHADES.len() - 1)];
                out.set_symbol(shade);
            }
        }
    }
    at
}
