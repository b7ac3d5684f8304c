//! The terminal input parser of the TUI: any byte stream, fed in two parts,
//! then flushed (a lone Esc). One parser per process (building termwiz's key
//! map costs milliseconds), left clean by the flush after every input.
#![no_main]

use std::cell::RefCell;

use libfuzzer_sys::fuzz_target;
use rampart::tui::input::InputParser;

thread_local! {
    static PARSER: RefCell<InputParser> = RefCell::new(InputParser::new());
}

fuzz_target!(|data: &[u8]| {
    PARSER.with(|parser| {
        let mut parser = parser.borrow_mut();
        let (a, b) = data.split_at(data.first().map_or(0, |&n| n as usize % (data.len() + 1)));
        let _ = parser.feed(a);
        let _ = parser.feed(b);
        let _ = parser.flush();
    });
});
