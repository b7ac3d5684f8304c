//! CSV import of assets and users.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let path = std::env::temp_dir().join(format!("rampart-fuzz-{}.csv", std::process::id()));
    if std::fs::write(&path, data).is_err() {
        return;
    }
    let _ = rampart::import::read_assets(&path);
    let _ = rampart::import::read_users(&path);
});
