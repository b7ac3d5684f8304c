//! Reading the screen: the line from a boundary to the cursor's line end,
//! the keys just left of the cursor, the prompt a line typed ahead follows.

use super::{CommandTracker, Held};

impl CommandTracker {
    /// The cursor row, as `enter_row` counts.
    pub(super) fn cursor_row(&self) -> i32 {
        i32::from(self.model.screen().cursor_position().0)
    }

    /// Whether the screen shows `typed` just left of the cursor, on the
    /// line the held Enter belongs to; the prompt (what precedes it on that
    /// line) if so.
    pub(super) fn shows_typed(&self, typed: &str, held: &Held) -> Option<String> {
        let screen = self.model.screen();
        let (row, col) = screen.cursor_position();
        let first = self.line_start(row);
        if held.boundary.is_none() && i32::from(first) <= held.after? {
            // Typed ahead: only on a line the shell drew after the
            // previous Enter went out.
            return None;
        }
        let shown = screen.contents_between(first, 0, row, col);
        let prompt = shown.trim_end().strip_suffix(typed)?;
        // From the boundary on: never text left of it (a password prompt
        // that happens to end with the password).
        if let Some((brow, bcol)) = held.boundary {
            let from = screen.contents_between(brow, bcol, row, col);
            if !from.trim_end().ends_with(typed) {
                return None;
            }
        }
        Some(prompt.trim().to_string())
    }

    /// The first row of the (wrapped) line holding `row`.
    pub(super) fn line_start(&self, row: u16) -> u16 {
        let screen = self.model.screen();
        let mut first = row;
        while first > 0 && screen.row_wrapped(first - 1) {
            first -= 1;
        }
        first
    }

    /// For a line typed ahead: the boundary just after the expected prompt
    /// on the cursor's line, if that line was drawn after the previous
    /// Enter went out and starts with the prompt.
    pub(super) fn after_prompt(&self, held: &Held) -> Option<((u16, u16), String)> {
        let after = held.after?;
        if held.prompt.is_empty() {
            return None;
        }
        let screen = self.model.screen();
        let (row, _) = screen.cursor_position();
        let first = self.line_start(row);
        if i32::from(first) <= after {
            return None;
        }
        let (_, cols) = screen.size();
        let mut text = String::new();
        for col in 0..cols.get() {
            let cell = screen.cell(first, col)?;
            if cell.is_wide_continuation() {
                continue;
            }
            if cell.has_contents() {
                text.push_str(cell.contents());
            } else {
                text.push(' ');
            }
            if text.trim_start() == held.prompt {
                return Some(((first, col + 1), held.prompt.clone()));
            }
            if !held.prompt.starts_with(text.trim_start()) {
                return None;
            }
        }
        None
    }

    /// Screen text from `boundary` to the end of the line holding the
    /// cursor (following wrapped rows), without trailing suggestions.
    pub(super) fn read_line(&self, boundary: (u16, u16)) -> Option<String> {
        let screen = self.model.screen();
        let (rows, cols) = screen.size();
        let (rows, cols) = (rows.get(), cols.get());
        let cursor = screen.cursor_position();
        let mut end = cursor.0.max(boundary.0);
        while end + 1 < rows && screen.row_wrapped(end) {
            end += 1;
        }
        // (text, is a suggestion) per cell; None for a row break.
        let mut cells: Vec<Option<(String, bool)>> = Vec::new();
        for row in boundary.0..=end {
            let start = if row == boundary.0 { boundary.1 } else { 0 };
            for col in start..cols {
                let Some(cell) = screen.cell(row, col) else {
                    break;
                };
                if cell.is_wide_continuation() {
                    continue;
                }
                if !cell.has_contents() {
                    cells.push(Some((" ".to_string(), false)));
                    continue;
                }
                let suggestion =
                    (row, col) >= cursor && (cell.dim() || cell.fgcolor() == vt100::Color::Idx(8));
                cells.push(Some((cell.contents().to_string(), suggestion)));
            }
            if row < end && !screen.row_wrapped(row) {
                cells.push(None);
            }
        }
        // Drop what trails the last real character: blanks and suggestions.
        let keep = cells
            .iter()
            .rposition(|c| matches!(c, Some((text, false)) if text != " "))
            .map_or(0, |i| i + 1);
        cells.truncate(keep);
        let mut text = String::new();
        for cell in cells {
            match cell {
                Some((t, _)) => text.push_str(&t),
                None => text.push('\n'),
            }
        }
        let lines: Vec<&str> = text.lines().map(str::trim_end).collect();
        let command = lines.join("\n").trim().to_string();
        (!command.is_empty()).then_some(command)
    }
}

/// Where the echo of `typed` begins in `shown`, a line read from a boundary
/// that fell inside the prompt: after a space, the rest is a start of
/// `typed`.
pub(super) fn echo_start(shown: &str, typed: &str) -> Option<usize> {
    shown
        .char_indices()
        .filter(|&(i, c)| c == ' ' && i + 1 < shown.len())
        .map(|(i, _)| i + 1)
        .find(|&start| {
            shown
                .get(start..)
                .is_some_and(|rest| typed.starts_with(rest))
        })
}

/// Whether `shown`, the text left of a line drawn late, can be the prompt
/// the line was typed at (`expected`, when known): a shell prompt keeps its
/// last character (`$`, `#`, `%`, `>`) when its directory part changes,
/// where a password prompt that happens to end with the password does not.
pub(super) fn prompt_fits(shown: &str, expected: &str) -> bool {
    match expected.chars().last() {
        Some(last) => shown.ends_with(last),
        None => !shown.is_empty(),
    }
}
