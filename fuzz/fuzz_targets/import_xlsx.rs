//! XLSX import of assets and users: a zip of XML parts, any bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rampart::import::{Format, Source, parse_assets, parse_users};

fuzz_target!(|data: &[u8]| {
    let source = Source::from_bytes("fuzz", data.to_vec(), Some(Format::Xlsx));
    let _ = parse_assets(&source);
    let _ = parse_users(&source);
});
