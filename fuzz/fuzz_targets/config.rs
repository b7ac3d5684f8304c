//! The config loader: any text as `rampart.toml`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = rampart::config::Config::from_toml_str(text, "/fuzz/rampart.toml");
});
