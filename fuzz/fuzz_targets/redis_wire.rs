//! The Redis wire format as the Redis proxy reads it: any byte stream
//! framed as a client's commands and as a server's replies (fed in uneven
//! pieces, as reads deliver it), each command through the text the rules
//! and the log read, each reply through its summary, and the inline word
//! splitter. A command's text must read back into its words: quoting is
//! what keeps a space or quote inside a key from passing for a boundary.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rampart::db::redis::{reply, request, text};

fn command(args: &[bytes::Bytes]) {
    let described = text::describe(args);
    let _ = text::logged(&described);
    if described.contains(text::MASK) {
        return;
    }
    let again = request::split_args(described.as_bytes()).expect("a command's text reads back");
    assert_eq!(again.len(), args.len(), "{described}");
    for (read, arg) in again.iter().zip(args) {
        assert!(read.eq_ignore_ascii_case(arg), "{described}");
    }
}

fuzz_target!(|data: &[u8]| {
    let step = data.first().map_or(1, |b| usize::from(b % 13) + 1);
    let mut requests = request::Requests::new();
    let mut replies = reply::Replies::new();
    for piece in data.chunks(step) {
        requests.push(piece);
        while let Ok(Some(next)) = requests.next_request() {
            if let request::Request::Command(args) = next {
                command(&args);
            }
        }
        replies.push(piece);
        while let Ok(Some(next)) = replies.next_piece() {
            if let reply::Piece::End(answer) = next {
                let _ = text::outcome(&answer);
            }
        }
    }
    if let Ok(words) = request::split_args(data) {
        command(&words);
    }
});
