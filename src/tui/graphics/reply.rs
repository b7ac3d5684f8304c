//! Asking the person's terminal what it can draw, and reading its answers.
//!
//! [`QUERY`] asks three things at once: the kitty graphics protocol (a
//! one-pixel query image, id 31, that a kitty terminal answers with
//! `ESC _G i=31;OK ESC \` and stores nothing), the cell size in pixels
//! (`CSI 16 t`, answered `CSI 6 ; height ; width t`) and the primary device
//! attributes (DA1, `CSI c`, answered `CSI ? class ; features c`, where the
//! feature 4 is sixel). Terminals answer in order and all of them answer
//! DA1, so its answer ends the detection; one that answers nothing within
//! [`DETECT_TIMEOUT`] gets half blocks.
//!
//! The answers arrive in the same stream as keys. [`ReplyFilter`] takes
//! them out (also when split across reads) before the key parser sees
//! them: an unexpected `ESC [ ? 6 2 ; 4 c` must never be an Escape key
//! that closes the screen, nor typed text.

use std::time::Duration;

use super::{CellSize, Graphics};

/// Sent once to detect: kitty query, cell size, then DA1 (last: its
/// answer means the others have come, if they come at all).
pub const QUERY: &[u8] = b"\x1b_Gi=31,s=1,v=1,a=q,t=d,f=24;AAAA\x1b\\\x1b[16t\x1b[c";

/// How long a terminal has to answer [`QUERY`].
pub const DETECT_TIMEOUT: Duration = Duration::from_millis(300);

/// The id of the kitty query image.
const QUERY_ID: &str = "31";

/// The longest answer kept: anything longer is dropped whole.
const MAX_REPLY: usize = 4096;

/// One answer of the terminal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// DA1: whether sixel (feature 4) is listed.
    Attributes { sixel: bool },
    /// The kitty graphics answer to the query image.
    Kitty { ok: bool },
    /// `CSI 16 t`: one cell's size in pixels.
    CellSize(CellSize),
    /// An answer rampart did not ask for (another APC string, another
    /// private report): swallowed all the same.
    Other,
}

/// Takes terminal answers out of an input stream. Bytes that may start an
/// answer are held until it is clear whether they are one.
#[derive(Debug, Default)]
pub struct ReplyFilter {
    held: Vec<u8>,
}

/// What the bytes held so far are.
enum Held {
    /// Could still become an answer.
    Open,
    /// A whole answer.
    Reply(Reply),
    /// Not an answer: they are keys.
    Keys,
}

impl ReplyFilter {
    /// Splits `bytes` into key bytes (appended to `keys`) and answers
    /// (appended to `replies`). The start of a possible answer at the end
    /// is held for the next call.
    pub fn feed(&mut self, bytes: &[u8], keys: &mut Vec<u8>, replies: &mut Vec<Reply>) {
        for &b in bytes {
            if self.held.is_empty() {
                if b == 0x1b {
                    self.held.push(b);
                } else {
                    keys.push(b);
                }
                continue;
            }
            self.held.push(b);
            match classify(&self.held) {
                Held::Open if self.held.len() <= MAX_REPLY => {}
                Held::Open => self.held.clear(),
                Held::Reply(r) => {
                    replies.push(r);
                    self.held.clear();
                }
                Held::Keys => {
                    // The last byte may itself start an answer (`ESC ESC [`).
                    let last = self.held.pop();
                    keys.append(&mut self.held);
                    if let Some(last) = last {
                        self.feed(&[last], keys, replies);
                    }
                }
            }
        }
    }

    /// After a pause: whatever is held was typed (a lone `ESC` is the
    /// Escape key).
    pub fn flush(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.held)
    }

    /// Whether bytes are held.
    pub fn holding(&self) -> bool {
        !self.held.is_empty()
    }
}

/// `held` starts with ESC and has at least two bytes.
fn classify(held: &[u8]) -> Held {
    match held.get(1) {
        Some(b'[') => csi(held),
        Some(b'_') => apc(held),
        _ => Held::Keys,
    }
}

/// `ESC [ ? params c` (DA1) and `ESC [ 6 ; h ; w t` (the cell size); any
/// other CSI is a key.
fn csi(held: &[u8]) -> Held {
    let Some(&lead) = held.get(2) else {
        return Held::Open;
    };
    if lead != b'?' && lead != b'6' {
        return Held::Keys;
    }
    let body = held.get(2..).unwrap_or_default();
    let Some((&last, params)) = body.split_last() else {
        return Held::Open;
    };
    if last.is_ascii_digit() || last == b';' || (last == b'?' && params.is_empty()) {
        return Held::Open;
    }
    let params = std::str::from_utf8(params).unwrap_or_default();
    match (lead, last) {
        (b'?', b'c') => {
            // The first parameter is the device class (a VT132 is `4`).
            let sixel = params
                .trim_start_matches('?')
                .split(';')
                .skip(1)
                .any(|p| p == "4");
            Held::Reply(Reply::Attributes { sixel })
        }
        (b'?', _) => Held::Reply(Reply::Other),
        (b'6', b't') => {
            let numbers: Vec<u16> = params.split(';').filter_map(|p| p.parse().ok()).collect();
            match numbers.as_slice() {
                [6, height, width] if *height > 0 && *width > 0 => {
                    Held::Reply(Reply::CellSize(CellSize {
                        width: *width,
                        height: *height,
                    }))
                }
                _ => Held::Reply(Reply::Other),
            }
        }
        // `ESC [ 6 ~` is PageDown, `ESC [ 6 ; 5 ~` Ctrl-PageDown.
        _ => Held::Keys,
    }
}

/// `ESC _ ... ESC \` (or BEL): an application program command, which only
/// a terminal answer carries.
fn apc(held: &[u8]) -> Held {
    let Some(body) = held.get(2..) else {
        return Held::Open;
    };
    let text = if let Some(t) = body.strip_suffix(b"\x1b\\") {
        t
    } else if let Some(t) = body.strip_suffix(b"\x07") {
        t
    } else {
        return Held::Open;
    };
    let Some(kitty) = text.strip_prefix(b"G") else {
        return Held::Reply(Reply::Other);
    };
    let kitty = String::from_utf8_lossy(kitty);
    let Some((keys, message)) = kitty.split_once(';') else {
        return Held::Reply(Reply::Other);
    };
    if !keys.split(',').any(|k| k == format!("i={QUERY_ID}")) {
        return Held::Reply(Reply::Other);
    }
    Held::Reply(Reply::Kitty {
        ok: message == "OK",
    })
}

/// What the answers so far say.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Detection {
    kitty: bool,
    sixel: bool,
    cell: Option<CellSize>,
    /// The DA1 answer came: nothing more will.
    done: bool,
}

impl Detection {
    pub fn feed(&mut self, reply: &Reply) {
        match reply {
            Reply::Attributes { sixel } => {
                self.sixel = *sixel;
                self.done = true;
            }
            Reply::Kitty { ok } => self.kitty = *ok,
            Reply::CellSize(c) => self.cell = Some(*c),
            Reply::Other => {}
        }
    }

    pub fn done(&self) -> bool {
        self.done
    }

    /// Whether the terminal said its cell size.
    pub fn cell_known(&self) -> bool {
        self.cell.is_some()
    }

    /// The best the terminal can draw (kitty over sixel, blocks without
    /// either) and its cell size (10x20 when it did not say).
    pub fn result(&self) -> (Graphics, CellSize) {
        let graphics = if self.kitty {
            Graphics::Kitty
        } else if self.sixel {
            Graphics::Sixel
        } else {
            Graphics::Blocks
        };
        (graphics, self.cell.unwrap_or_default())
    }
}
