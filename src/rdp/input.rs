//! What the person did with keyboard and mouse, as markers in a desktop
//! recording: the replay lists them beside the clipboard's, so an auditor
//! can jump to where someone typed or clicked. A marker says how many
//! keys were pressed and where the mouse was clicked, never which keys
//! (keystrokes are content; terminals record them only with
//! `recording.input`).
//!
//! Read from fast-path input PDUs, which every current client sends once
//! the connection is up, and from slow-path Input Event PDUs on the I/O
//! channel (a client that turned fast-path off, or sends some events the
//! slow way).

use ironrdp_core::decode;
use ironrdp_pdu::input::fast_path::{FastPathInput, FastPathInputEvent, KeyboardFlags};
use ironrdp_pdu::input::mouse::PointerFlags;
use ironrdp_pdu::input::mouse_x::PointerXFlags;
use ironrdp_pdu::input::{InputEvent, scan_code, unicode};
use ironrdp_pdu::rdp::headers::{ShareControlHeader, ShareControlPdu, ShareDataPdu};

/// At most this many clicks are named in one marker; the rest are counted.
const CLICKS_NAMED: usize = 4;

/// The input since the last marker.
#[derive(Debug, Default)]
pub struct Input {
    keys: u32,
    clicks: Vec<(u16, u16)>,
    more_clicks: u32,
    wheel: u32,
}

/// One event as counted, whichever way it came.
enum Event {
    /// A key went down (releases are not counted).
    Key,
    Click(u16, u16),
    Wheel,
    Other,
}

/// A mouse event of either path, by its pointer flags.
fn mouse(flags: PointerFlags, x: u16, y: u16) -> Event {
    let buttons = PointerFlags::LEFT_BUTTON
        | PointerFlags::RIGHT_BUTTON
        | PointerFlags::MIDDLE_BUTTON_OR_WHEEL;
    if flags.contains(PointerFlags::VERTICAL_WHEEL)
        || flags.contains(PointerFlags::HORIZONTAL_WHEEL)
    {
        Event::Wheel
    } else if flags.contains(PointerFlags::DOWN) && flags.intersects(buttons) {
        Event::Click(x, y)
    } else {
        Event::Other
    }
}

fn key(down: bool) -> Event {
    if down { Event::Key } else { Event::Other }
}

/// An extended-button (4th, 5th) mouse event: a click when a button went
/// down.
fn extended(flags: u16, x: u16, y: u16) -> Event {
    if flags & PointerXFlags::DOWN.bits() != 0 {
        Event::Click(x, y)
    } else {
        Event::Other
    }
}

/// The slow-path share data type of an Input Event PDU.
const PDUTYPE2_INPUT: u8 = 0x1c;

impl Input {
    /// Counts the events of a fast-path input frame; anything else (or a
    /// frame that does not decode) counts nothing.
    pub fn add(&mut self, frame: &[u8]) {
        let Ok(input) = decode::<FastPathInput>(frame) else {
            return;
        };
        for event in input.input_events() {
            self.count(match event {
                FastPathInputEvent::KeyboardEvent(flags, _)
                | FastPathInputEvent::UnicodeKeyboardEvent(flags, _) => {
                    key(!flags.contains(KeyboardFlags::RELEASE))
                }
                FastPathInputEvent::MouseEvent(m) => mouse(m.flags, m.x_position, m.y_position),
                FastPathInputEvent::MouseEventEx(m) => {
                    extended(m.flags.bits(), m.x_position, m.y_position)
                }
                FastPathInputEvent::MouseEventRel(_)
                | FastPathInputEvent::QoeEvent(_)
                | FastPathInputEvent::SyncEvent(_) => Event::Other,
            });
        }
    }

    /// Counts the events of a slow-path Input Event PDU: `share` is the
    /// user data of an I/O channel frame (a Share Control PDU); anything
    /// else counts nothing, and only input PDUs are decoded.
    pub fn add_slow(&mut self, share: &[u8]) {
        // pduType2 of a Share Data header, after the 6-byte control header
        // and shareId, pad, streamId and uncompressedLength.
        if share.get(14) != Some(&PDUTYPE2_INPUT) {
            return;
        }
        let Ok(header) = decode::<ShareControlHeader>(share) else {
            return;
        };
        let ShareControlPdu::Data(data) = header.share_control_pdu else {
            return;
        };
        let ShareDataPdu::Input(input) = data.share_data_pdu else {
            return;
        };
        for event in input.0 {
            self.count(match event {
                InputEvent::ScanCode(k) => {
                    key(!k.flags.contains(scan_code::KeyboardFlags::RELEASE))
                }
                InputEvent::Unicode(k) => key(!k.flags.contains(unicode::KeyboardFlags::RELEASE)),
                InputEvent::Mouse(m) => mouse(m.flags, m.x_position, m.y_position),
                InputEvent::MouseX(m) => extended(m.flags.bits(), m.x_position, m.y_position),
                InputEvent::Sync(_) | InputEvent::Unused(_) | InputEvent::MouseRel(_) => {
                    Event::Other
                }
            });
        }
    }

    fn count(&mut self, event: Event) {
        match event {
            Event::Key => self.keys = self.keys.saturating_add(1),
            Event::Click(x, y) => self.click(x, y),
            Event::Wheel => self.wheel = self.wheel.saturating_add(1),
            Event::Other => {}
        }
    }

    fn click(&mut self, x: u16, y: u16) {
        if self.clicks.len() < CLICKS_NAMED {
            self.clicks.push((x, y));
        } else {
            self.more_clicks = self.more_clicks.saturating_add(1);
        }
    }

    /// The marker for what was counted since the last one, if anything
    /// was; the count starts again.
    pub fn take(&mut self) -> Option<String> {
        let taken = std::mem::take(self);
        let mut parts = Vec::new();
        if taken.keys > 0 {
            let s = if taken.keys == 1 { "" } else { "s" };
            parts.push(format!("{} key{s}", taken.keys));
        }
        for (x, y) in &taken.clicks {
            parts.push(format!("click at {x},{y}"));
        }
        if taken.more_clicks > 0 {
            parts.push(format!("{} more clicks", taken.more_clicks));
        }
        if taken.wheel > 0 {
            parts.push(format!("{} wheel turns", taken.wheel));
        }
        (!parts.is_empty()).then(|| format!("input: {}", parts.join(", ")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ironrdp_core::encode_vec;
    use ironrdp_pdu::input::mouse::MousePdu;

    fn frame(events: Vec<FastPathInputEvent>) -> Vec<u8> {
        encode_vec(&FastPathInput::new(events).unwrap()).unwrap()
    }

    fn mouse(flags: PointerFlags, x: u16, y: u16) -> FastPathInputEvent {
        FastPathInputEvent::MouseEvent(MousePdu {
            flags,
            number_of_wheel_rotation_units: 0,
            x_position: x,
            y_position: y,
        })
    }

    #[test]
    fn keys_are_counted_and_clicks_placed_never_which_keys() {
        let mut input = Input::default();
        assert_eq!(input.take(), None, "nothing happened");
        input.add(&frame(vec![
            FastPathInputEvent::KeyboardEvent(KeyboardFlags::empty(), 0x1e),
            FastPathInputEvent::KeyboardEvent(KeyboardFlags::RELEASE, 0x1e),
            FastPathInputEvent::UnicodeKeyboardEvent(KeyboardFlags::empty(), u16::from(b'x')),
            mouse(PointerFlags::MOVE, 10, 10),
            mouse(PointerFlags::DOWN | PointerFlags::LEFT_BUTTON, 640, 400),
            mouse(PointerFlags::LEFT_BUTTON, 640, 400),
        ]));
        assert_eq!(
            input.take().as_deref(),
            Some("input: 2 keys, click at 640,400")
        );
        assert_eq!(input.take(), None, "the count starts again");
    }

    #[test]
    fn many_clicks_are_counted_past_the_named_ones_and_garbage_is_nothing() {
        let mut input = Input::default();
        for i in 0..6 {
            input.add(&frame(vec![mouse(
                PointerFlags::DOWN | PointerFlags::RIGHT_BUTTON,
                i,
                i,
            )]));
        }
        input.add(&[0x44, 0x02, 0xff]);
        input.add(&[]);
        assert_eq!(
            input.take().as_deref(),
            Some("input: click at 0,0, click at 1,1, click at 2,2, click at 3,3, 2 more clicks")
        );
    }
}
