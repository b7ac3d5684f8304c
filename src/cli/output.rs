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
