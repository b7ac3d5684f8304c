//! What the person's terminal can draw, asked once per SSH session: the
//! first time they open a desktop's replay or monitor, the graphics
//! queries (`tui::graphics::reply::QUERY`) go out and the answers are read
//! for up to `DETECT_TIMEOUT` (one round trip where the terminal answers;
//! the DA1 answer, which every terminal gives, ends it). The result stays
//! with the menu for the rest of the session; answers that come after the
//! wait (a slow link) still count in the replay ([`late`]).
//!
//! The answers come through the same [`InputParser`] as keys, which takes
//! them out; keys typed in these few milliseconds are dropped (the screen
//! they were meant for is not up yet), a window change is kept.

use bytes::Bytes;
use russh::server::Msg;
use russh::{ChannelMsg, ChannelReadHalf, ChannelWriteHalf};

use crate::tui::graphics::{DETECT_TIMEOUT, Detection, Graphics, QUERY};
use crate::tui::{InputParser, Screen};

/// The terminal's graphics, detected the first time (then remembered in
/// `known`), and set on `screen`.
pub(super) async fn ensure(
    known: &mut Option<Detection>,
    read: &mut ChannelReadHalf,
    write: &ChannelWriteHalf<Msg>,
    input: &mut InputParser,
    screen: &mut Screen,
) -> Graphics {
    let detection = match known {
        Some(d) => d,
        None => {
            let found = detect(read, write, input, screen).await;
            tracing::debug!(
                graphics = found.result().0.as_str(),
                answered = found.done(),
                "terminal graphics detected"
            );
            known.insert(found)
        }
    };
    let (graphics, cell) = detection.result();
    screen.set_graphics(graphics, cell);
    graphics
}

/// Answers that came after the wait: they complete the detection, and the
/// new graphics (when they change) are set on `screen` and returned.
pub(super) fn late(
    known: &mut Option<Detection>,
    input: &mut InputParser,
    screen: &mut Screen,
) -> Option<Graphics> {
    let replies = input.take_replies();
    let detection = known.as_mut().filter(|d| !d.done())?;
    for reply in &replies {
        detection.feed(reply);
    }
    let (graphics, cell) = detection.result();
    if graphics == screen.graphics() {
        return None;
    }
    screen.set_graphics(graphics, cell);
    Some(graphics)
}

/// Sends the queries and reads the answers until DA1's or the timeout.
async fn detect(
    read: &mut ChannelReadHalf,
    write: &ChannelWriteHalf<Msg>,
    input: &mut InputParser,
    screen: &mut Screen,
) -> Detection {
    let mut detection = Detection::default();
    // Answers to nothing asked are dropped first.
    input.take_replies();
    if write.data_bytes(Bytes::from_static(QUERY)).await.is_err() {
        return detection;
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
    detection
}
