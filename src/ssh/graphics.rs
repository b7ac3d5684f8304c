//! What the person's terminal can draw, asked once per SSH session: the
//! first time they open a desktop's replay or monitor, the graphics
//! queries (`tui::graphics::reply::QUERY`) go out and the answers are read
//! for up to `DETECT_TIMEOUT` (one round trip where the terminal answers;
//! the DA1 answer, which every terminal gives, ends it). The result stays
//! with the menu for the rest of the session.
//!
//! The answers come through the same [`InputParser`] as keys, which takes
//! them out; keys typed in these few milliseconds are dropped (the screen
//! they were meant for is not up yet), a window change is kept.

use bytes::Bytes;
use russh::server::Msg;
use russh::{ChannelMsg, ChannelReadHalf, ChannelWriteHalf};

use crate::tui::graphics::{CellSize, DETECT_TIMEOUT, Detection, Graphics, QUERY};
use crate::tui::{InputParser, Screen};

/// The terminal's graphics, detected the first time (then remembered in
/// `known`), and set on `screen`.
pub(super) async fn ensure(
    known: &mut Option<(Graphics, CellSize)>,
    read: &mut ChannelReadHalf,
    write: &ChannelWriteHalf<Msg>,
    input: &mut InputParser,
    screen: &mut Screen,
) -> Graphics {
    let (graphics, cell) = match *known {
        Some(k) => k,
        None => {
            let found = detect(read, write, input, screen).await;
            tracing::debug!(graphics = found.0.as_str(), "terminal graphics detected");
            *known = Some(found);
            found
        }
    };
    screen.set_graphics(graphics, cell);
    graphics
}

/// Sends the queries and reads the answers until DA1's or the timeout.
async fn detect(
    read: &mut ChannelReadHalf,
    write: &ChannelWriteHalf<Msg>,
    input: &mut InputParser,
    screen: &mut Screen,
) -> (Graphics, CellSize) {
    let mut detection = Detection::default();
    // Answers to nothing asked are dropped first.
    input.take_replies();
    if write.data_bytes(Bytes::from_static(QUERY)).await.is_err() {
        return detection.result();
    }
    let deadline = tokio::time::Instant::now() + DETECT_TIMEOUT;
    while !detection.done() {
        let msg = tokio::select! {
            msg = read.wait() => msg,
            () = tokio::time::sleep_until(deadline) => break,
        };
        match msg {
            Some(ChannelMsg::Data { data }) => {
                let _typed = input.feed(&data);
                for reply in input.take_replies() {
                    detection.feed(&reply);
                }
            }
            Some(ChannelMsg::WindowChange {
                col_width,
                row_height,
                ..
            }) => {
                let (cols, rows) = crate::relay::terminal_size(col_width, row_height);
                screen.resize(cols as u16, rows as u16);
            }
            Some(ChannelMsg::Eof | ChannelMsg::Close) | None => break,
            Some(_) => {}
        }
    }
    detection.result()
}
