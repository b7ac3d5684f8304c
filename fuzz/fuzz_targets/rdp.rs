//! The RDP relay's view of frames from either side: any byte stream cut
//! into frames by their headers, each rewritten as if it came from the
//! person's client and as if it came from the target. Nothing may panic;
//! a rewrite either fails with a reason or yields a frame that frames
//! again to its own length.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rampart::rdp::{Allowed, Login, Rewriter, Verdict, pdu_size};
use rampart::vault::Secret;

fuzz_target!(|data: &[u8]| {
    let login = Login::new("CORP\\Administrator", Secret::new("pw".to_string()));
    let bits = data.first().copied().unwrap_or(0);
    let allowed = Allowed {
        copy: bits & 1 == 1,
        paste: bits & 2 == 2,
        drives: bits & 4 == 4,
    };
    let rewriter = Rewriter::new(
        &login,
        ironrdp_pdu::nego::SecurityProtocol::HYBRID,
        allowed,
    );
    let mut rest = data;
    while let Ok(Some(n)) = pdu_size(rest) {
        if n == 0 || n > rest.len() {
            break;
        }
        let (frame, tail) = rest.split_at(n);
        rest = tail;
        if let Ok(Verdict::Replace(new)) = rewriter.upstream(frame) {
            assert_eq!(pdu_size(&new), Ok(Some(new.len())), "a rewritten frame frames");
        }
        let _ = rewriter.downstream(frame);
    }
    // What the frames left behind: clipboard rows, a monitor's redraw.
    let _ = rewriter.moved(true);
    if let Some(request) = rewriter.refresh_request() {
        assert_eq!(pdu_size(&request), Ok(Some(request.len())), "a refresh request frames");
    }
});
