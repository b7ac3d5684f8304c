//! The PostgreSQL wire format as the database proxy reads it: any byte
//! stream framed as a client's and as a server's (fed in uneven pieces, as
//! reads deliver it), every message through its side's parser, the startup
//! packet parser, and the statement splitter the rules rely on (with the
//! sqlparser reading of the statements nested in each).
#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use rampart::db::pg::{sql, wire};

fn client(frame: wire::Frame) {
    match frame {
        wire::Frame::Whole { tag, body } => match tag {
            b'Q' => {
                if let Ok(text) = wire::query(body) {
                    let _ = sql::split(&String::from_utf8_lossy(&text));
                }
            }
            b'P' => {
                if let Ok(p) = wire::parse(body) {
                    let _ = sql::statements(&String::from_utf8_lossy(&p.text));
                }
            }
            b'C' | b'D' => drop(wire::target(tag, body)),
            b'E' => drop(wire::execute(body)),
            b'f' => drop(wire::copy_fail(body)),
            b'p' => drop(wire::password(body)),
            _ => drop(wire::empty(tag, &body)),
        },
        wire::Frame::Start { tag: b'B', head, .. } => drop(wire::bind_names(head)),
        _ => {}
    }
}

fn server(frame: wire::Frame) {
    let wire::Frame::Whole { tag, body } = frame else {
        return;
    };
    match tag {
        b'E' | b'N' => {
            if let Ok(n) = wire::notice(tag, body) {
                let _ = n.line();
            }
        }
        b'C' => drop(wire::command_complete(body)),
        b'Z' => drop(wire::ready(body)),
        b'S' => drop(wire::parameter_status(body)),
        b'K' => drop(wire::backend_key(body)),
        b'R' => drop(wire::auth(body)),
        _ => drop(wire::empty(tag, &body)),
    }
}

fuzz_target!(|data: &[u8]| {
    for side in [wire::Side::Client, wire::Side::Server] {
        let mut decoder = wire::Decoder::new(side);
        for piece in data.chunks(7) {
            decoder.push(piece);
            while let Ok(Some(frame)) = decoder.next_frame() {
                match side {
                    wire::Side::Client => client(frame),
                    wire::Side::Server => server(frame),
                }
            }
        }
    }
    // The startup packet after its length, as the proxy reads it.
    let _ = wire::startup(Bytes::copy_from_slice(data.get(4..).unwrap_or_default()));
    let text = String::from_utf8_lossy(data);
    let _ = sql::split(&text);
    let _ = sql::normalise(&text);
});
