//! Legacy SCP: the exec command recognisers (scp and rsync, through
//! `ExecTransfer::classify`) and the source-stream parser, fed in two
//! chunks.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rampart::transfer::ExecTransfer;
use rampart::transfer::scp::SourceParser;

fuzz_target!(|data: &[u8]| {
    let _ = ExecTransfer::classify(&String::from_utf8_lossy(data));
    let mut parser = SourceParser::new("/base");
    let cut = data.first().map_or(0, |&n| n as usize % (data.len() + 1));
    let (a, b) = data.split_at(cut);
    parser.feed(a, &mut |_| {});
    parser.feed(b, &mut |_| {});
    let _ = parser.finish();
});
