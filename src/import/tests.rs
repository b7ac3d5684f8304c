//! Tests of import file reading: exact error texts for every kind of bad
//! file, CSV row numbering as editors show it, and XLSX through a workbook
//! written by hand with the `zip` crate.

use std::io::Write;
use std::path::PathBuf;

use super::*;

const ASSETS: &str = "name,address,protocols,platform,nodes,active,comment\n";
const USERS: &str = "name,role,email,groups,active,key,expires\n";

fn write(dir: &tempfile::TempDir, name: &str, text: &str) -> PathBuf {
    let path = dir.path().join(name);
    std::fs::write(&path, text).unwrap();
    path
}

/// The error text for an asset CSV, with the file name replaced by FILE.
fn asset_err(text: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    let path = write(&dir, "assets.csv", text);
    let e = read_assets(&path).unwrap_err().to_string();
    e.replace(&path.display().to_string(), "FILE")
}

fn user_err(text: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    let path = write(&dir, "users.csv", text);
    let e = read_users(&path).unwrap_err().to_string();
    e.replace(&path.display().to_string(), "FILE")
}

#[test]
fn an_asset_csv_becomes_rows() {
    let dir = tempfile::tempdir().unwrap();
    let text = "\u{feff}Name, ADDRESS ,Protocols,Comment,Nodes,active\n\
                web1,10.0.0.1,ssh/22 sftp,\"front, primary\",/DEFAULT/prod/;/DEFAULT/web,no\n\
                \n\
                ,,,,,\n\
                db1 , db1.example , postgresql;ssh/2222 ,,,\n";
    let path = write(&dir, "assets.CSV", text);
    let rows = read_assets(&path).unwrap();
    assert_eq!(rows.len(), 2);
    let web = &rows[0];
    assert_eq!(
        (web.row, web.name.as_str(), web.address.as_str()),
        (2, "web1", "10.0.0.1")
    );
    assert_eq!(
        web.protocols,
        vec!["ssh/22".parse().unwrap(), "sftp/22".parse().unwrap()]
    );
    assert_eq!(web.nodes, vec!["/DEFAULT/prod", "/DEFAULT/web"]);
    assert_eq!(web.platform, "linux");
    assert!(!web.active);
    assert_eq!(web.comment, "front, primary");
    let db = &rows[1];
    // Blank rows are skipped but still counted, as an editor shows them.
    assert_eq!(
        (db.row, db.name.as_str(), db.address.as_str()),
        (5, "db1", "db1.example")
    );
    assert_eq!(db.protocols[0].port, 5432);
    assert_eq!(db.protocols[1].port, 2222);
    assert_eq!(db.nodes, vec![DEFAULT_NODE]);
    assert!(db.active);
}

#[test]
fn header_problems_are_reported_on_row_1() {
    assert_eq!(
        asset_err("name,address\nweb1,10.0.0.1\n"),
        "FILE: row 1: missing required column protocols (required: name, address, protocols)"
    );
    assert_eq!(
        asset_err("name,hostname,address,protocols\n"),
        "FILE: row 1, column hostname: unknown column \
         (accepted: name, address, protocols, platform, nodes, active, comment)"
    );
    assert_eq!(
        asset_err("name,address,protocols,Name\n"),
        "FILE: row 1, column Name: appears twice in the header"
    );
    assert_eq!(
        asset_err("\n\n"),
        "FILE: no header row (expected columns name, address, protocols, platform, nodes, active, comment)"
    );
    // Nothing but a header: nothing to import, and no error.
    let dir = tempfile::tempdir().unwrap();
    assert_eq!(read_assets(&write(&dir, "a.csv", ASSETS)).unwrap(), vec![]);
}

#[test]
fn ragged_rows_are_refused() {
    assert_eq!(
        asset_err("name,address,protocols\nweb1,10.0.0.1\n"),
        "FILE: row 2: 2 fields, but the header has 3"
    );
    assert_eq!(
        asset_err("name,address,protocols\nweb1,10.0.0.1,ssh,extra\n"),
        "FILE: row 2: 4 fields, but the header has 3"
    );
    assert_eq!(
        asset_err("name,address,protocols,\nweb1,10.0.0.1,ssh,oops\n"),
        "FILE: row 2, column field 4: a value in a column without a header name"
    );
}

#[test]
fn row_numbers_are_editor_lines() {
    // CRLF line ends, a blank line, and a quoted cell spanning two lines.
    let text = "name,address,protocols,comment\r\n\
                web1,a,ssh,\r\n\
                \r\n\
                web2,b,ssh,\"two\r\nlines\"\r\n\
                web3,,ssh,\r\n";
    assert_eq!(
        asset_err(text),
        "FILE: row 6, column address: empty, but this column is required"
    );
}

#[test]
fn bad_asset_cells_name_row_and_column() {
    let cases: &[(&str, &str)] = &[
        (
            ",10.0.0.1,ssh",
            "FILE: row 2, column name: empty, but this column is required",
        ),
        (
            "web1,,ssh",
            "FILE: row 2, column address: empty, but this column is required",
        ),
        (
            "web 1,10.0.0.1,ssh",
            r#"FILE: row 2, column name: "web 1" is not a valid name (no spaces, control characters, '@' or '/')"#,
        ),
        (
            "rampart,10.0.0.1,ssh",
            r#"FILE: row 2, column name: "rampart" is reserved for the bastion itself"#,
        ),
        (
            "web1,10.0.0.1,ssh/0",
            "FILE: row 2, column protocols: protocol \"ssh/0\" is not valid: NAME or NAME/PORT with NAME one of ssh, sftp, telnet, rdp, vnc, mysql, mariadb, postgresql, redis, mongodb, k8s, http, https and PORT 1-65535",
        ),
        (
            "web1,10.0.0.1,ssh ssh/2222",
            "FILE: row 2, column protocols: protocol ssh is listed twice",
        ),
        (
            "web1,10.0.0.1,;",
            r#"FILE: row 2, column protocols: no protocol given (e.g. "ssh/22")"#,
        ),
        (
            "web1,10.0.0.1,ssh,,prod",
            "FILE: row 2, column nodes: node path \"prod\" is not valid: an absolute path such as /DEFAULT/prod/web (segments without '.', '..' or control characters)",
        ),
        (
            "web1,10.0.0.1,ssh,,,maybe",
            r#"FILE: row 2, column active: "maybe" is not true or false (use true/false, yes/no or 1/0)"#,
        ),
    ];
    for (row, want) in cases {
        let text = format!(
            "name,address,protocols,platform,nodes,active\n{}\n",
            pad(row, 6)
        );
        assert_eq!(&asset_err(&text), want, "for {row}");
    }
    assert_eq!(
        asset_err(&format!(
            "{ASSETS}web1,a,ssh,,,,\nweb2,b,ssh,,,,\n\nweb1,c,ssh,,,,\n"
        )),
        r#"FILE: row 5, column name: duplicate name "web1" (also on row 2)"#
    );
}

/// Pads a CSV row with empty fields up to `n`.
fn pad(row: &str, n: usize) -> String {
    let have = row.matches(',').count() + 1;
    format!("{row}{}", ",".repeat(n.saturating_sub(have)))
}

#[test]
fn a_user_csv_becomes_rows() {
    let dir = tempfile::tempdir().unwrap();
    let text = format!(
        "{USERS}alice,Admin,alice@example.com,ops; dba ;ops,yes,ssh-ed25519 AAAAC3Nz alice@laptop,2026-12-31\n\
         bob,user,,,0,,2026-06-30T18:00:00+02:00\n"
    );
    let rows = read_users(&write(&dir, "users.csv", &text)).unwrap();
    let alice = &rows[0];
    assert_eq!(
        (alice.row, alice.role, alice.active),
        (2, Role::Admin, true)
    );
    assert_eq!(alice.email.as_deref(), Some("alice@example.com"));
    assert_eq!(alice.groups, vec!["ops", "dba"]);
    assert_eq!(
        alice.key.as_deref(),
        Some("ssh-ed25519 AAAAC3Nz alice@laptop")
    );
    // Valid through the named day: expires at the next midnight UTC.
    assert_eq!(alice.expires, Some("2027-01-01T00:00:00Z".parse().unwrap()));
    let bob = &rows[1];
    assert_eq!((bob.row, bob.role, bob.active), (3, Role::User, false));
    assert_eq!(
        (bob.email.clone(), bob.groups.len(), bob.key.clone()),
        (None, 0, None)
    );
    assert_eq!(bob.expires, Some("2026-06-30T16:00:00Z".parse().unwrap()));
}

#[test]
fn bad_user_cells_name_row_and_column() {
    let cases: &[(&str, &str)] = &[
        (
            "alice,boss",
            r#"FILE: row 2, column role: role "boss" is not valid: one of admin, auditor, user"#,
        ),
        (
            "alice,",
            "FILE: row 2, column role: empty, but this column is required",
        ),
        (
            "al@ce,user",
            r#"FILE: row 2, column name: "al@ce" is not a valid name (no spaces, control characters, '@' or '/')"#,
        ),
        (
            "alice,user,alice",
            r#"FILE: row 2, column email: "alice" is not an email address"#,
        ),
        (
            "alice,user,,,,,31/12/2026",
            r#"FILE: row 2, column expires: "31/12/2026" is not a date (use YYYY-MM-DD, or a time with its offset such as 2026-12-31T18:00:00Z)"#,
        ),
        (
            "alice,user,,,,,2026-12-31T10:00",
            r#"FILE: row 2, column expires: "2026-12-31T10:00" is not a date (use YYYY-MM-DD, or a time with its offset such as 2026-12-31T18:00:00Z)"#,
        ),
    ];
    for (row, want) in cases {
        assert_eq!(
            &user_err(&format!("{USERS}{}\n", pad(row, 7))),
            want,
            "for {row}"
        );
    }
    assert_eq!(
        user_err("name\nalice\n"),
        "FILE: row 1: missing required column role (required: name, role)"
    );
}

#[test]
fn unreadable_files_say_why() {
    let dir = tempfile::tempdir().unwrap();
    let ods = write(&dir, "assets.ods", "");
    assert_eq!(
        read_assets(&ods).unwrap_err().to_string(),
        format!(
            "{}: cannot import .ods files (supported: .csv, .xlsx)",
            ods.display()
        )
    );
    let bare = write(&dir, "assets", "");
    assert_eq!(
        read_assets(&bare).unwrap_err().to_string(),
        format!(
            "{}: cannot import a file without extension (supported: .csv, .xlsx)",
            bare.display()
        )
    );
    let missing = dir.path().join("missing.csv");
    let e = read_assets(&missing).unwrap_err().to_string();
    assert!(
        e.starts_with(&format!("{}: cannot read: ", missing.display())),
        "{e}"
    );
    let latin1 = dir.path().join("latin1.csv");
    std::fs::write(&latin1, b"name,address,protocols\ncaf\xe9,10.0.0.1,ssh\n").unwrap();
    assert_eq!(
        read_assets(&latin1).unwrap_err().to_string(),
        format!(
            "{}: row 2: not UTF-8 text (save the file as CSV UTF-8)",
            latin1.display()
        )
    );
    let not_zip = write(&dir, "fake.xlsx", "name,address\n");
    let e = read_assets(&not_zip).unwrap_err().to_string();
    assert!(
        e.starts_with(&format!(
            "{}: cannot read as an XLSX workbook: ",
            not_zip.display()
        )),
        "{e}"
    );
}

/// Writes a minimal workbook: `rows` are (row number, cells); a cell
/// that parses as a number is stored as one, `!X` as the error X, and
/// an empty one is left out.
fn xlsx(dir: &tempfile::TempDir, rows: &[(u32, &[&str])]) -> PathBuf {
    const MAIN: &str = "http://schemas.openxmlformats.org/spreadsheetml/2006/main";
    const REL: &str = "http://schemas.openxmlformats.org/officeDocument/2006/relationships";
    const PKG: &str = "http://schemas.openxmlformats.org/package/2006/relationships";
    let mut sheet = format!("<worksheet xmlns=\"{MAIN}\"><sheetData>");
    for (r, cells) in rows {
        sheet.push_str(&format!("<row r=\"{r}\">"));
        for (i, cell) in cells.iter().enumerate() {
            let at = format!("{}{r}", column_letter(i));
            if cell.is_empty() {
            } else if let Some(e) = cell.strip_prefix('!') {
                sheet.push_str(&format!("<c r=\"{at}\" t=\"e\"><v>{e}</v></c>"));
            } else if cell.parse::<f64>().is_ok() {
                sheet.push_str(&format!("<c r=\"{at}\"><v>{cell}</v></c>"));
            } else {
                sheet.push_str(&format!(
                    "<c r=\"{at}\" t=\"inlineStr\"><is><t>{cell}</t></is></c>"
                ));
            }
        }
        sheet.push_str("</row>");
    }
    sheet.push_str("</sheetData></worksheet>");
    let parts = [
        (
            "[Content_Types].xml",
            "<Types xmlns=\"http://schemas.openxmlformats.org/package/2006/content-types\">\
             <Default Extension=\"rels\" ContentType=\"application/vnd.openxmlformats-package.relationships+xml\"/>\
             <Default Extension=\"xml\" ContentType=\"application/xml\"/>\
             <Override PartName=\"/xl/workbook.xml\" ContentType=\"application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml\"/>\
             <Override PartName=\"/xl/worksheets/sheet1.xml\" ContentType=\"application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml\"/>\
             </Types>"
                .to_string(),
        ),
        (
            "_rels/.rels",
            format!("<Relationships xmlns=\"{PKG}\"><Relationship Id=\"rId1\" Type=\"{REL}/officeDocument\" Target=\"xl/workbook.xml\"/></Relationships>"),
        ),
        (
            "xl/workbook.xml",
            format!("<workbook xmlns=\"{MAIN}\" xmlns:r=\"{REL}\"><sheets><sheet name=\"Assets\" sheetId=\"1\" r:id=\"rId1\"/></sheets></workbook>"),
        ),
        (
            "xl/_rels/workbook.xml.rels",
            format!("<Relationships xmlns=\"{PKG}\"><Relationship Id=\"rId1\" Type=\"{REL}/worksheet\" Target=\"worksheets/sheet1.xml\"/></Relationships>"),
        ),
        ("xl/worksheets/sheet1.xml", sheet),
    ];
    let path = dir.path().join("book.xlsx");
    let mut zip = zip::ZipWriter::new(std::fs::File::create(&path).unwrap());
    let options =
        zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    for (name, text) in parts {
        zip.start_file(name, options).unwrap();
        zip.write_all(text.as_bytes()).unwrap();
    }
    zip.finish().unwrap();
    path
}

#[test]
fn an_xlsx_workbook_becomes_rows() {
    let dir = tempfile::tempdir().unwrap();
    // The header on row 2 (row 1 left blank), a number as a name, a
    // blank row, and a bare number as a boolean.
    let path = xlsx(
        &dir,
        &[
            (2, &["Name", "Address", "Protocols", "Active"]),
            (3, &["1001", "10.0.0.1", "ssh/22", "0"]),
            (5, &["web2", "10.0.0.2", "ssh/2222", ""]),
        ],
    );
    let rows = read_assets(&path).unwrap();
    assert_eq!(rows.len(), 2);
    assert_eq!(
        (rows[0].row, rows[0].name.as_str(), rows[0].active),
        (3, "1001", false)
    );
    assert_eq!(
        (rows[1].row, rows[1].name.as_str(), rows[1].active),
        (5, "web2", true)
    );
    assert_eq!(rows[1].protocols[0].port, 2222);
}

#[test]
fn xlsx_errors_use_spreadsheet_rows_and_columns() {
    let dir = tempfile::tempdir().unwrap();
    let header: &[&str] = &["name", "address", "protocols"];
    let path = xlsx(&dir, &[(1, header), (2, &["web1", "", "ssh"])]);
    assert_eq!(
        read_assets(&path).unwrap_err().to_string(),
        format!(
            "{}: row 2, column address: empty, but this column is required",
            path.display()
        )
    );
    let path = xlsx(&dir, &[(1, header), (2, &["web1", "!#N/A", "ssh"])]);
    assert_eq!(
        read_assets(&path).unwrap_err().to_string(),
        format!(
            "{}: row 2, column B: the cell holds the error #N/A",
            path.display()
        )
    );
    let path = xlsx(&dir, &[(1, header), (2, &["web1", "h", "ssh", "stray"])]);
    assert_eq!(
        read_assets(&path).unwrap_err().to_string(),
        format!(
            "{}: row 2, column D: a value in a column without a header name",
            path.display()
        )
    );
}

/// Bytes from standard input go through the same parser as a file: the
/// same rows and errors, named `stdin`; a zip archive is read as XLSX
/// unless a format is given.
#[test]
fn bytes_from_stdin_parse_like_a_file() {
    let text = format!("{ASSETS}web1,10.0.0.1,ssh/22,,,,\nweb2,10.0.0.2,,,,,\n");
    let source = Source::from_bytes("stdin", text.clone().into_bytes(), None);
    assert_eq!(source.format, Format::Csv);
    assert_eq!(
        parse_assets(&source).unwrap_err().to_string(),
        "stdin: row 3, column protocols: empty, but this column is required"
    );
    assert_eq!(
        asset_err(&text),
        "FILE: row 3, column protocols: empty, but this column is required"
    );

    let dir = tempfile::tempdir().unwrap();
    let book = xlsx(
        &dir,
        &[
            (1, &["name", "address", "protocols"]),
            (2, &["web1", "10.0.0.1", "ssh/22"]),
        ],
    );
    let bytes = std::fs::read(&book).unwrap();
    let source = Source::from_bytes("stdin", bytes.clone(), None);
    assert_eq!(source.format, Format::Xlsx);
    assert_eq!(parse_assets(&source).unwrap(), read_assets(&book).unwrap());
    // Told it is CSV, the same bytes are not UTF-8 text.
    let forced = Source::from_bytes("stdin", bytes, Some(Format::Csv));
    let e = parse_assets(&forced).unwrap_err().to_string();
    assert!(e.starts_with("stdin: "), "{e}");
    // --format also overrides a file's extension.
    let txt = write(
        &dir,
        "assets.txt",
        &format!("{ASSETS}web1,10.0.0.1,ssh/22,,,,\n"),
    );
    let rows = parse_assets(&Source::from_path(&txt, Some(Format::Csv)).unwrap()).unwrap();
    assert_eq!(rows[0].name, "web1");
    // And text told to be XLSX is not a workbook.
    let forced = Source::from_bytes("stdin", text.into_bytes(), Some(Format::Xlsx));
    let e = parse_assets(&forced).unwrap_err().to_string();
    assert!(
        e.starts_with("stdin: cannot read as an XLSX workbook: "),
        "{e}"
    );
}

#[test]
fn column_letters() {
    let letters: Vec<String> = [0, 1, 25, 26, 27, 51, 52, 701, 702]
        .map(column_letter)
        .into();
    assert_eq!(
        letters,
        ["A", "B", "Z", "AA", "AB", "AZ", "BA", "ZZ", "AAA"]
    );
}
