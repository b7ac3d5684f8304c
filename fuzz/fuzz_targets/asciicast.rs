//! The asciicast reader (replay, export, audit verify read casts written by
//! the bastion, but a cast on disk may be damaged or hand-edited).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // The reader opens files: a per-process file on tmpfs.
    let path = std::env::temp_dir().join(format!("rampart-fuzz-{}.cast", std::process::id()));
    if std::fs::write(&path, data).is_err() {
        return;
    }
    if let Ok(reader) = rampart::record::read(&path) {
        let _ = reader.header();
        for event in reader.take(100_000) {
            let _ = event;
        }
    }
    // Nothing is left behind in the temp dir when the run ends.
    let _ = std::fs::remove_file(&path);
});
