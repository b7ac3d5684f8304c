//! Output formatting: a readable table by default, one JSON object per line
//! with `--json`. Tables are rendered from the same serialised value as the
//! JSON, so the two always carry the same field names and values.

use std::io::{self, Write};

use serde::Serialize;
use serde_json::Value;

/// A column: its header and the JSON field it shows.
pub type Column = (&'static str, &'static str);

fn cell(value: Option<&Value>) -> String {
    match value {
        None | Some(Value::Null) => "-".to_string(),
        Some(Value::String(s)) if s.is_empty() => "-".to_string(),
        Some(Value::String(s)) => s.clone(),
        Some(Value::Bool(b)) => if *b { "yes" } else { "no" }.to_string(),
        Some(Value::Number(n)) => n.to_string(),
        Some(Value::Array(items)) if items.is_empty() => "-".to_string(),
        Some(Value::Array(items)) => {
            let cells: Vec<String> = items.iter().map(|v| cell(Some(v))).collect();
            let sep = if cells.iter().any(|c| c.contains(' ')) {
                "; "
            } else {
                ","
            };
            cells.join(sep)
        }
        Some(v @ Value::Object(_)) => v.to_string(),
    }
}

/// Control characters in stored text (a user name, a command) must not
/// reach the operator's terminal as escape sequences.
fn printable(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { '\u{fffd}' } else { c })
        .collect()
}

/// Table cells are cut at this many characters (`--json` has everything).
const MAX_CELL: usize = 120;

fn fit(s: String) -> String {
    if s.chars().count() <= MAX_CELL {
        return s;
    }
    let mut cut: String = s.chars().take(MAX_CELL - 1).collect();
    cut.push('…');
    cut
}

pub fn list<T: Serialize>(
    out: &mut (dyn Write + Send),
    items: &[T],
    columns: &[Column],
    json: bool,
) -> io::Result<()> {
    let values: Vec<Value> = items
        .iter()
        .map(|i| serde_json::to_value(i).unwrap_or(Value::Null))
        .collect();
    if json {
        for v in &values {
            writeln!(out, "{v}")?;
        }
        return out.flush();
    }
    let rows: Vec<Vec<String>> = values
        .iter()
        .map(|v| {
            columns
                .iter()
                .map(|(_, key)| fit(printable(&cell(v.get(*key)))))
                .collect()
        })
        .collect();
    let mut widths: Vec<usize> = columns.iter().map(|(h, _)| h.chars().count()).collect();
    for row in &rows {
        for (w, c) in widths.iter_mut().zip(row) {
            *w = (*w).max(c.chars().count());
        }
    }
    let line = |cells: Vec<&str>| -> String {
        let mut s = String::new();
        for (i, (c, w)) in cells.iter().zip(&widths).enumerate() {
            if i + 1 == cells.len() {
                s.push_str(c);
            } else {
                s.push_str(c);
                s.extend(std::iter::repeat_n(' ', w - c.chars().count() + 2));
            }
        }
        s.trim_end().to_string()
    };
    writeln!(out, "{}", line(columns.iter().map(|(h, _)| *h).collect()))?;
    for row in &rows {
        writeln!(out, "{}", line(row.iter().map(String::as_str).collect()))?;
    }
    out.flush()
}

/// One object: `key: value` lines, or one JSON line.
pub fn show<T: Serialize>(out: &mut (dyn Write + Send), item: &T, json: bool) -> io::Result<()> {
    let value = serde_json::to_value(item).unwrap_or(Value::Null);
    if json {
        writeln!(out, "{value}")?;
        return out.flush();
    }
    if let Value::Object(map) = &value {
        let width = map.keys().map(|k| k.len()).max().unwrap_or(0);
        for (k, v) in map {
            match v {
                Value::Array(items) if items.iter().any(Value::is_object) => {
                    writeln!(out, "{k}:")?;
                    for item in items {
                        writeln!(out, "  - {}", printable(&cell(Some(item))))?;
                    }
                }
                _ => writeln!(out, "{k:width$}  {}", printable(&cell(Some(v))))?,
            }
        }
    }
    out.flush()
}

/// `text` as a QR code in half-block characters, one terminal row per two
/// module rows, with the standard quiet zone; `None` when the text is too
/// long for a QR code. Black on white, explicitly: a scanner needs dark
/// modules on a light ground, and a light-on-dark terminal would otherwise
/// draw the code inverted. The text is the otpauth URL, so the drawing is
/// wiped when dropped.
pub fn qr(text: &crate::vault::Secret<String>) -> Option<zeroize::Zeroizing<String>> {
    use qrcode::render::unicode::Dense1x2;
    let code =
        qrcode::QrCode::with_error_correction_level(text.expose().as_bytes(), qrcode::EcLevel::L)
            .ok()?;
    let image = zeroize::Zeroizing::new(
        code.render::<Dense1x2>()
            .dark_color(Dense1x2::Dark)
            .light_color(Dense1x2::Light)
            .quiet_zone(true)
            .build(),
    );
    let mut out = zeroize::Zeroizing::new(String::with_capacity(image.len() * 2));
    for line in image.lines() {
        out.push_str("\x1b[30;47m");
        out.push_str(line);
        out.push_str("\x1b[0m\n");
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_qr_code_is_black_on_white_half_blocks_with_a_quiet_zone() {
        let url = crate::vault::Secret::new(
            "otpauth://totp/rampart:alice?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ&issuer=rampart"
                .to_string(),
        );
        let text = qr(&url).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        let width = lines[0]
            .trim_start_matches("\x1b[30;47m")
            .trim_end_matches("\x1b[0m")
            .chars()
            .count();
        // A QR code is 21 + 4k modules wide; 4 modules of quiet zone each
        // side; two module rows per line. It fits an 80x24 terminal.
        let modules = width - 8;
        assert!(modules >= 21 && (modules - 21).is_multiple_of(4), "{width}");
        assert_eq!(lines.len(), width.div_ceil(2));
        assert!(width <= 80 && lines.len() <= 24, "{width}x{}", lines.len());
        assert!(lines.iter().all(|l| l.starts_with("\x1b[30;47m")));
        // The quiet zone: the first two lines are all light.
        assert!(lines[0].contains(&" ".repeat(width)));
        assert!(lines[1].contains(&" ".repeat(width)));
        assert!(text.contains('█') && text.contains('▀') && text.contains('▄'));
        assert!(qr(&crate::vault::Secret::new("x".repeat(8000))).is_none());
    }
}
