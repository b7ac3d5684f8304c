//! Reading `rampart import assets|users FILE|-` input: a CSV or XLSX file,
//! or the same bytes from standard input, becomes validated rows, or the
//! first problem with its row number and column. This module owns the file
//! formats (which columns, their spelling, the accepted values); it never
//! touches the database. The caller imports the rows in one transaction, so
//! a file with one bad row imports nothing.
//!
//! Every input is first a [`Source`] (a display name, its bytes and its
//! format): a file named on the command line and standard input are parsed
//! by the same code and reported in the same form.
//!
//! Row numbers are those a person sees in a spreadsheet or text editor: the
//! header is row 1 when it is the first line. Blank rows are skipped but keep
//! their numbers counted.

use std::collections::HashMap;
use std::path::Path;

use calamine::{Data, Reader, Xlsx};
use jiff::Timestamp;
use jiff::civil::Date;

use crate::model::{DEFAULT_NODE, Protocol, Role, normalize_node_path};

/// One asset to create, as read from row `row` of the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AssetRow {
    pub row: usize,
    pub name: String,
    pub address: String,
    pub protocols: Vec<Protocol>,
    pub platform: String,
    /// Normalised node paths; `[/DEFAULT]` when the cell is empty.
    pub nodes: Vec<String>,
    pub active: bool,
    pub comment: String,
}

/// One user to create, as read from row `row` of the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserRow {
    pub row: usize,
    pub name: String,
    pub role: Role,
    pub email: Option<String>,
    pub groups: Vec<String>,
    pub active: bool,
    /// One OpenSSH public key line, not yet checked (the caller parses it).
    pub key: Option<String>,
    /// A bare date means "valid through that day (UTC)": the account
    /// expires at the following midnight UTC.
    pub expires: Option<Timestamp>,
}

/// A column of an import file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Column {
    pub name: &'static str,
    pub required: bool,
}

const fn col(name: &'static str, required: bool) -> Column {
    Column { name, required }
}

/// Columns of an asset file, in the order the documentation lists them.
pub const ASSET_COLUMNS: &[Column] = &[
    col("name", true),
    col("address", true),
    col("protocols", true),
    col("platform", false),
    col("nodes", false),
    col("active", false),
    col("comment", false),
];

/// Columns of a user file, in the order the documentation lists them.
pub const USER_COLUMNS: &[Column] = &[
    col("name", true),
    col("role", true),
    col("email", false),
    col("groups", false),
    col("active", false),
    col("key", false),
    col("expires", false),
];

/// Asset names the bastion keeps for itself (DESIGN.md §2).
const RESERVED_ASSET_NAMES: &[&str] = &[crate::model::RESERVED_ASSET];

/// The format of an import file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Csv,
    Xlsx,
}

/// An XLSX workbook is a zip archive, which starts with a local file
/// header; no CSV file a person writes starts with these bytes.
const ZIP_MAGIC: &[u8] = b"PK\x03\x04";

/// Input to import: what errors call it, its bytes and its format.
#[derive(Clone)]
pub struct Source {
    /// The file as named on the command line, or `stdin`.
    pub name: String,
    pub bytes: Vec<u8>,
    pub format: Format,
}

impl std::fmt::Debug for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Source")
            .field("name", &self.name)
            .field("bytes", &self.bytes.len())
            .field("format", &self.format)
            .finish()
    }
}

impl Source {
    /// Bytes read from somewhere other than a named file (standard input).
    /// Without a `format`, a zip archive is read as XLSX, anything else as
    /// CSV.
    pub fn from_bytes(name: &str, bytes: Vec<u8>, format: Option<Format>) -> Source {
        let format = format.unwrap_or(if bytes.starts_with(ZIP_MAGIC) {
            Format::Xlsx
        } else {
            Format::Csv
        });
        Source {
            name: name.to_string(),
            bytes,
            format,
        }
    }

    /// A file on this machine. Without a `format`, its extension says
    /// which (`.csv` or `.xlsx`).
    pub fn from_path(path: &Path, format: Option<Format>) -> Result<Source, ImportError> {
        let name = path.display().to_string();
        let format = match format {
            Some(f) => f,
            None => {
                let ext = path
                    .extension()
                    .and_then(|e| e.to_str())
                    .map(str::to_ascii_lowercase);
                match ext.as_deref() {
                    Some("csv") => Format::Csv,
                    Some("xlsx") => Format::Xlsx,
                    other => {
                        let what = other.map_or("a file without extension".to_string(), |e| {
                            format!(".{e} files")
                        });
                        return Err(ImportError::new(
                            &name,
                            None,
                            None,
                            format!("cannot import {what} (supported: .csv, .xlsx)"),
                        ));
                    }
                }
            }
        };
        let bytes = std::fs::read(path)
            .map_err(|e| ImportError::new(&name, None, None, format!("cannot read: {e}")))?;
        Ok(Source {
            name,
            bytes,
            format,
        })
    }
}

/// What is wrong with an import file, and where:
/// `FILE: row N, column COL: what is wrong`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}: {}{problem}", location(*.row, .column.as_deref()))]
pub struct ImportError {
    pub file: String,
    /// The row as a spreadsheet or editor numbers it (header = 1).
    pub row: Option<usize>,
    /// The column's header name, or `field N` / a column letter beyond the
    /// header.
    pub column: Option<String>,
    pub problem: String,
}

impl ImportError {
    /// Also for the caller, to report a row the database refuses (a name
    /// that already exists) in the same form.
    pub fn new(
        file: &str,
        row: Option<usize>,
        column: Option<&str>,
        problem: impl Into<String>,
    ) -> Self {
        ImportError {
            file: file.to_string(),
            row,
            column: column.map(str::to_string),
            problem: problem.into(),
        }
    }
}

fn location(row: Option<usize>, column: Option<&str>) -> String {
    match (row, column) {
        (Some(r), Some(c)) => format!("row {r}, column {c}: "),
        (Some(r), None) => format!("row {r}: "),
        (None, Some(c)) => format!("column {c}: "),
        (None, None) => String::new(),
    }
}

/// Reads an asset file (`.csv` or `.xlsx`, by its extension).
pub fn read_assets(path: &Path) -> Result<Vec<AssetRow>, ImportError> {
    parse_assets(&Source::from_path(path, None)?)
}

/// Reads the rows of an asset file, wherever it came from.
pub fn parse_assets(source: &Source) -> Result<Vec<AssetRow>, ImportError> {
    let table = Table::read(source, ASSET_COLUMNS)?;
    let mut names = Names::default();
    let mut out = Vec::new();
    for row in table.rows() {
        let name = row.required("name")?;
        check_name(&row, "name", name)?;
        if RESERVED_ASSET_NAMES.contains(&name) {
            return Err(row.error(
                "name",
                format!("{name:?} is reserved for the bastion itself"),
            ));
        }
        names.insert(&row, name)?;
        let address = row.required("address")?;
        if address.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(row.error(
                "address",
                format!("{address:?} is not a host name or IP address"),
            ));
        }
        out.push(AssetRow {
            row: row.number,
            name: name.to_string(),
            address: address.to_string(),
            protocols: parse_protocols(&row)?,
            platform: parse_platform(&row)?,
            nodes: parse_nodes(&row)?,
            active: parse_active(&row)?,
            comment: row.get("comment").to_string(),
        });
    }
    Ok(out)
}

/// Reads a user file (`.csv` or `.xlsx`, by its extension).
pub fn read_users(path: &Path) -> Result<Vec<UserRow>, ImportError> {
    parse_users(&Source::from_path(path, None)?)
}

/// Reads the rows of a user file, wherever it came from.
pub fn parse_users(source: &Source) -> Result<Vec<UserRow>, ImportError> {
    let table = Table::read(source, USER_COLUMNS)?;
    let mut names = Names::default();
    let mut out = Vec::new();
    for row in table.rows() {
        let name = row.required("name")?;
        check_name(&row, "name", name)?;
        names.insert(&row, name)?;
        let role_text = row.required("role")?;
        let role: Role = role_text
            .to_ascii_lowercase()
            .parse()
            .map_err(|e: crate::model::ParseError| row.error("role", e.to_string()))?;
        let email = match row.get("email") {
            "" => None,
            e if is_email(e) => Some(e.to_string()),
            e => return Err(row.error("email", format!("{e:?} is not an email address"))),
        };
        let mut groups: Vec<String> = Vec::new();
        for group in row
            .get("groups")
            .split(';')
            .map(str::trim)
            .filter(|g| !g.is_empty())
        {
            if group.chars().any(char::is_control) {
                return Err(row.error(
                    "groups",
                    format!("group {group:?} contains control characters"),
                ));
            }
            if !groups.iter().any(|g| g == group) {
                groups.push(group.to_string());
            }
        }
        let key = match row.get("key") {
            "" => None,
            k => Some(k.to_string()),
        };
        out.push(UserRow {
            row: row.number,
            name: name.to_string(),
            role,
            email,
            groups,
            active: parse_active(&row)?,
            key,
            expires: parse_expires(&row)?,
        });
    }
    Ok(out)
}

/// Names seen so far, to report a duplicate with both row numbers.
#[derive(Default)]
struct Names(HashMap<String, usize>);

impl Names {
    fn insert(&mut self, row: &Row<'_>, name: &str) -> Result<(), ImportError> {
        if let Some(first) = self.0.insert(name.to_string(), row.number) {
            return Err(row.error(
                "name",
                format!("duplicate name {name:?} (also on row {first})"),
            ));
        }
        Ok(())
    }
}

/// Names appear in login strings (`alice@web1@bastion`) and SFTP paths
/// (`/web1/root/...`), so they cannot hold `@`, `/` or blanks.
fn check_name(row: &Row<'_>, column: &str, name: &str) -> Result<(), ImportError> {
    if name
        .chars()
        .any(|c| c.is_whitespace() || c.is_control() || c == '@' || c == '/')
    {
        return Err(row.error(
            column,
            format!("{name:?} is not a valid name (no spaces, control characters, '@' or '/')"),
        ));
    }
    Ok(())
}

fn is_email(text: &str) -> bool {
    match text.split_once('@') {
        Some((local, domain)) => {
            !local.is_empty()
                && !domain.is_empty()
                && !domain.contains('@')
                && !text.chars().any(|c| c.is_whitespace() || c.is_control())
        }
        None => false,
    }
}

fn parse_protocols(row: &Row<'_>) -> Result<Vec<Protocol>, ImportError> {
    let cell = row.required("protocols")?;
    let mut out: Vec<Protocol> = Vec::new();
    let items = cell
        .split(|c: char| c.is_whitespace() || c == ';' || c == ',')
        .filter(|i| !i.is_empty());
    for item in items {
        let protocol: Protocol = item
            .parse()
            .map_err(|e: crate::model::ParseError| row.error("protocols", e.to_string()))?;
        // Permissions name protocols, not ports: two ports for one protocol
        // would be ambiguous.
        if out.iter().any(|p| p.name == protocol.name) {
            return Err(row.error(
                "protocols",
                format!("protocol {} is listed twice", protocol.name),
            ));
        }
        out.push(protocol);
    }
    if out.is_empty() {
        return Err(row.error("protocols", "no protocol given (e.g. \"ssh/22\")"));
    }
    Ok(out)
}

fn parse_platform(row: &Row<'_>) -> Result<String, ImportError> {
    match row.get("platform") {
        "" => Ok("linux".to_string()),
        p if p.chars().any(char::is_control) => {
            Err(row.error("platform", format!("{p:?} contains control characters")))
        }
        p => Ok(p.to_string()),
    }
}

fn parse_nodes(row: &Row<'_>) -> Result<Vec<String>, ImportError> {
    let mut out: Vec<String> = Vec::new();
    for item in row
        .get("nodes")
        .split(';')
        .map(str::trim)
        .filter(|i| !i.is_empty())
    {
        let path = normalize_node_path(item).map_err(|e| row.error("nodes", e.to_string()))?;
        if !out.contains(&path) {
            out.push(path);
        }
    }
    if out.is_empty() {
        out.push(DEFAULT_NODE.to_string());
    }
    Ok(out)
}

fn parse_active(row: &Row<'_>) -> Result<bool, ImportError> {
    match row.get("active").to_ascii_lowercase().as_str() {
        "" | "true" | "yes" | "1" => Ok(true),
        "false" | "no" | "0" => Ok(false),
        _ => Err(row.error(
            "active",
            format!(
                "{:?} is not true or false (use true/false, yes/no or 1/0)",
                row.get("active")
            ),
        )),
    }
}

fn parse_expires(row: &Row<'_>) -> Result<Option<Timestamp>, ImportError> {
    let text = row.get("expires");
    if text.is_empty() {
        return Ok(None);
    }
    if let Ok(ts) = text.parse::<Timestamp>() {
        return Ok(Some(ts));
    }
    let bad = || {
        let hint = "use YYYY-MM-DD, or a time with its offset such as 2026-12-31T18:00:00Z";
        row.error("expires", format!("{text:?} is not a date ({hint})"))
    };
    // A bare date keeps the account usable through the whole day it names.
    let date: Date = text.parse().map_err(|_| bad())?;
    if text.len() != 10 {
        // jiff also reads "2026-12-31T10:00" as a date; a time without an
        // offset is ambiguous, so it is refused rather than truncated.
        return Err(bad());
    }
    date.tomorrow()
        .and_then(|d| d.to_zoned(jiff::tz::TimeZone::UTC))
        .map(|z| Some(z.timestamp()))
        .map_err(|_| bad())
}

/// A file read into rows of trimmed text, with its header checked.
struct Table {
    file: String,
    /// Index in the raw row of each known column present in the header.
    columns: HashMap<&'static str, usize>,
    /// Data rows (header excluded, blank rows dropped): number and cells.
    rows: Vec<(usize, Vec<String>)>,
}

/// One data row with access by column name.
struct Row<'a> {
    table: &'a Table,
    number: usize,
    cells: &'a [String],
}

impl Row<'_> {
    /// The trimmed cell, "" when empty or when the column is absent.
    fn get(&self, column: &str) -> &str {
        self.table
            .columns
            .get(column)
            .and_then(|&i| self.cells.get(i))
            .map_or("", String::as_str)
    }

    fn required(&self, column: &str) -> Result<&str, ImportError> {
        match self.get(column) {
            "" => Err(self.error(column, "empty, but this column is required")),
            text => Ok(text),
        }
    }

    fn error(&self, column: &str, problem: impl Into<String>) -> ImportError {
        ImportError {
            file: self.table.file.clone(),
            row: Some(self.number),
            column: Some(column.to_string()),
            problem: problem.into(),
        }
    }
}

/// A row before the header is understood: its number and trimmed cells.
struct RawRow {
    number: usize,
    cells: Vec<String>,
}

impl Table {
    fn read(source: &Source, spec: &[Column]) -> Result<Table, ImportError> {
        let file = source.name.clone();
        let path = file.as_str();
        let format = source.format;
        let raw = match format {
            Format::Csv => read_csv(source)?,
            Format::Xlsx => read_xlsx(source)?,
        };
        let mut raw = raw
            .into_iter()
            .filter(|r| r.cells.iter().any(|c| !c.is_empty()));
        let accepted = || spec.iter().map(|c| c.name).collect::<Vec<_>>().join(", ");
        let Some(header) = raw.next() else {
            return Err(ImportError::new(
                path,
                None,
                None,
                format!("no header row (expected columns {})", accepted()),
            ));
        };
        let header_error = |column: Option<&str>, problem: String| {
            ImportError::new(path, Some(header.number), column, problem)
        };
        let mut columns: HashMap<&'static str, usize> = HashMap::new();
        for (i, cell) in header.cells.iter().enumerate() {
            if cell.is_empty() {
                continue;
            }
            let wanted = cell.to_lowercase();
            let Some(known) = spec.iter().find(|c| c.name == wanted) else {
                return Err(header_error(
                    Some(cell),
                    format!("unknown column (accepted: {})", accepted()),
                ));
            };
            if columns.insert(known.name, i).is_some() {
                return Err(header_error(
                    Some(cell),
                    "appears twice in the header".to_string(),
                ));
            }
        }
        let required = || {
            spec.iter()
                .filter(|c| c.required)
                .map(|c| c.name)
                .collect::<Vec<_>>()
                .join(", ")
        };
        if let Some(missing) = spec
            .iter()
            .find(|c| c.required && !columns.contains_key(c.name))
        {
            return Err(header_error(
                None,
                format!(
                    "missing required column {} (required: {})",
                    missing.name,
                    required()
                ),
            ));
        }
        let width = header.cells.len();
        let mut rows = Vec::new();
        for row in raw {
            // CSV rows may be ragged; a spreadsheet range is rectangular,
            // so there this only fires on a value under an empty header cell.
            if matches!(format, Format::Csv) && row.cells.len() != width {
                return Err(ImportError::new(
                    path,
                    Some(row.number),
                    None,
                    format!("{} fields, but the header has {width}", row.cells.len()),
                ));
            }
            if let Some((i, _)) =
                row.cells.iter().enumerate().find(|(i, c)| {
                    !c.is_empty() && header.cells.get(*i).is_none_or(|h| h.is_empty())
                })
            {
                let column = match format {
                    Format::Csv => format!("field {}", i + 1),
                    Format::Xlsx => column_letter(i),
                };
                return Err(ImportError::new(
                    path,
                    Some(row.number),
                    Some(&column),
                    "a value in a column without a header name",
                ));
            }
            rows.push((row.number, row.cells));
        }
        Ok(Table {
            file,
            columns,
            rows,
        })
    }

    fn rows(&self) -> impl Iterator<Item = Row<'_>> {
        self.rows.iter().map(|(number, cells)| Row {
            table: self,
            number: *number,
            cells,
        })
    }
}

fn read_csv(source: &Source) -> Result<Vec<RawRow>, ImportError> {
    let path = source.name.as_str();
    let bytes = source.bytes.as_slice();
    // Spreadsheet programs put a UTF-8 byte order mark before the header.
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let mut lines = LineCounter::new(bytes);
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(bytes);
    let mut out = Vec::new();
    for record in reader.records() {
        let record = record.map_err(|e| {
            let row = e.position().map(|p| lines.line_at(p.byte()));
            let problem = match e.kind() {
                csv::ErrorKind::Utf8 { .. } => {
                    "not UTF-8 text (save the file as CSV UTF-8)".to_string()
                }
                _ => e.to_string(),
            };
            ImportError::new(path, row, None, problem)
        })?;
        let number = record.position().map_or(0, |p| lines.line_at(p.byte()));
        out.push(RawRow {
            number,
            cells: record.iter().map(|c| c.trim().to_string()).collect(),
        });
    }
    Ok(out)
}

/// Line numbers of CSV records. The csv crate's own line count skips blank
/// lines and counts CRLF wrongly, and a record's byte position is where the
/// previous one ended; so the line is counted here from the bytes.
struct LineCounter<'a> {
    bytes: &'a [u8],
    offset: usize,
    line: usize,
}

impl<'a> LineCounter<'a> {
    fn new(bytes: &'a [u8]) -> Self {
        LineCounter {
            bytes,
            offset: 0,
            line: 1,
        }
    }

    /// The line of the record whose position is `byte`. Positions only grow,
    /// so each byte is looked at once.
    fn line_at(&mut self, byte: u64) -> usize {
        let mut at = usize::try_from(byte)
            .unwrap_or(usize::MAX)
            .min(self.bytes.len());
        // A record cannot start with a line break (a quoted one starts with
        // '"'), so the breaks after `byte` belong to blank lines before it.
        while let Some(b'\r' | b'\n') = self.bytes.get(at) {
            at += 1;
        }
        if at > self.offset {
            let skipped = self.bytes.get(self.offset..at).unwrap_or_default();
            self.line += skipped.iter().filter(|&&b| b == b'\n').count();
            self.offset = at;
        }
        self.line
    }
}

fn read_xlsx(source: &Source) -> Result<Vec<RawRow>, ImportError> {
    let path = source.name.as_str();
    let fail = |what: String| ImportError::new(path, None, None, what);
    let mut workbook = Xlsx::new(std::io::Cursor::new(source.bytes.as_slice()))
        .map_err(|e| fail(format!("cannot read as an XLSX workbook: {e}")))?;
    let range = match workbook.worksheet_range_at(0) {
        None => return Err(fail("the workbook has no worksheet".to_string())),
        Some(r) => r.map_err(|e| fail(format!("cannot read the first worksheet: {e}")))?,
    };
    // The range starts at the first used cell, which need not be A1.
    let (first_row, first_col) = range.start().unwrap_or((0, 0));
    let mut out = Vec::new();
    for (i, cells) in range.rows().enumerate() {
        let number = first_row as usize + i + 1;
        let mut texts = Vec::with_capacity(cells.len());
        for (j, cell) in cells.iter().enumerate() {
            let text = cell_text(cell).map_err(|problem| {
                let column = column_letter(first_col as usize + j);
                ImportError::new(path, Some(number), Some(&column), problem)
            })?;
            texts.push(text.trim().to_string());
        }
        out.push(RawRow {
            number,
            cells: texts,
        });
    }
    Ok(out)
}

/// A cell as the text a person sees, so that every column is validated the
/// same way whatever the file format.
fn cell_text(cell: &Data) -> Result<String, String> {
    Ok(match cell {
        Data::Empty => String::new(),
        Data::String(s) | Data::DateTimeIso(s) | Data::DurationIso(s) => s.clone(),
        Data::Int(n) => n.to_string(),
        // Spreadsheets store every number as a float; 22 must read "22".
        Data::Float(x) if x.fract() == 0.0 && x.abs() < 1e15 => format!("{}", *x as i64),
        Data::Float(x) => x.to_string(),
        Data::Bool(b) => b.to_string(),
        Data::DateTime(dt) if dt.is_datetime() => {
            let (y, mo, d, h, mi, s, ms) = dt.to_ymd_hms_milli();
            if (h, mi, s, ms) == (0, 0, 0, 0) {
                format!("{y:04}-{mo:02}-{d:02}")
            } else {
                // No zone in a spreadsheet date: left for the column's own
                // check to refuse where a zone matters.
                format!("{y:04}-{mo:02}-{d:02} {h:02}:{mi:02}:{s:02}")
            }
        }
        Data::DateTime(dt) => dt.as_f64().to_string(),
        Data::Error(e) => return Err(format!("the cell holds the error {e}")),
    })
}

/// 0 -> "A", 25 -> "Z", 26 -> "AA".
fn column_letter(index: usize) -> String {
    let mut n = index + 1;
    let mut out = Vec::new();
    while n > 0 {
        let rem = (n - 1) % 26;
        // rem < 26, so the addition stays within 'A'..='Z'.
        out.push(char::from(b'A' + rem as u8));
        n = (n - 1) / 26;
    }
    out.iter().rev().collect()
}

#[cfg(test)]
#[path = "import/tests.rs"]
mod tests;
