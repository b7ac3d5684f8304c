//! The SFTP wire format and the virtual tree's path resolution: any byte
//! stream split into packets, parsed as client and as target packets.
#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use rampart::sftp::{tree, wire};

fuzz_target!(|data: &[u8]| {
    let mut frames = wire::Frames::default();
    frames.push(data);
    while let Ok(Some(packet)) = frames.next_packet() {
        if let Ok(wire::ClientPacket::Request(r)) = wire::parse_client(packet.clone()) {
            for f in &r.fields {
                let _ = tree::locate(f);
            }
            let mut out = bytes::BytesMut::new();
            r.encode(&mut out);
        }
        if let Ok(wire::ServerPacket::Reply { body, .. }) = wire::parse_server(packet) {
            let _ = wire::status_of(&body);
            let _ = wire::first_name(&body);
            let _ = wire::first_string(&body);
        }
    }
    let _ = tree::locate(data);
    let _ = tree::virtual_path("a", "b", data);
    let _ = Bytes::new();
});
