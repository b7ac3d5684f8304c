//! A vt100 screen drawn into a ratatui buffer: the live mirror of a
//! session and the replay of a recording show a terminal inside a terminal.

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
