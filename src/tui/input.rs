//! Bytes a terminal sends → [`Key`]s.
//!
//! The SSH channel hands us raw bytes in arbitrary chunks: an arrow key may
//! arrive split across two reads, a UTF-8 character likewise, and a lone
//! `ESC` is ambiguous (the Escape key, or the first byte of `Alt-x` / an
//! escape sequence). `termwiz`'s parser handles the sequences; this wrapper
//! turns its events into rampart's own [`Key`], so nothing outside this file
//! depends on termwiz types, and it bounds how much the parser may buffer.
//!
//! Bytes that are not UTF-8 become U+FFFD before termwiz sees them:
//! termwiz measures a paste by its lossy copy and, given invalid bytes,
//! consumes more than it buffered and panics.
//!
//! The caller feeds every chunk with [`InputParser::feed`] and, when no byte
//! has arrived for [`ESC_TIMEOUT`], calls [`InputParser::flush`] to resolve a
//! pending `ESC` as the Escape key. The terminal's answers to rampart's
//! graphics queries (`tui::graphics::reply`) are taken out before the keys
//! are parsed and handed over by [`InputParser::take_replies`]. Mouse reports (the menu never enables
//! mouse tracking, but a client may still send them) are dropped.

use std::borrow::Cow;
use std::fmt;
use std::time::Duration;

use termwiz::input::{InputEvent, InputParser as Termwiz, KeyCode, KeyEvent, Modifiers};

use super::graphics::{Reply, ReplyFilter};

/// How long to wait after a lone `ESC` before taking it as the Escape key
/// rather than the start of `Alt-x` or an escape sequence. Terminals send a
/// sequence in one write, so over SSH its bytes arrive together or within a
/// few milliseconds; 50 ms is what vim's `ttimeoutlen` and tmux use, and a
/// person does not notice it.
pub const ESC_TIMEOUT: Duration = Duration::from_millis(50);

/// The most bytes the parser may hold without producing a key: an
/// unterminated bracketed paste (`ESC [200~` with no `ESC [201~`) would
/// otherwise grow without bound on a hostile or broken client. Nothing in a
/// menu needs a paste this large.
const MAX_PENDING: usize = 64 * 1024;

/// Terminal answers kept until taken.
const MAX_REPLIES: usize = 16;

/// U+FFFD, in UTF-8.
const REPLACEMENT: &[u8] = "\u{fffd}".as_bytes();

/// One key press (or paste) as the TUI understands it.
#[derive(Clone, PartialEq, Eq)]
pub enum Key {
    /// A printable character, already shifted (`A`, `?`, `é`).
    Char(char),
    Enter,
    Tab,
    /// Shift-Tab.
    BackTab,
    Backspace,
    Delete,
    Esc,
    Up,
    Down,
    Left,
    Right,
    Home,
    End,
    PageUp,
    PageDown,
    Insert,
    /// Function key `F1`..`F20`.
    F(u8),
    /// Ctrl with a letter, always lower case (`Ctrl('c')`), or one of the
    /// other control characters a terminal can send (`Ctrl(' ')` for Ctrl-@).
    Ctrl(char),
    /// Alt (Meta) with a character: `ESC` immediately followed by it.
    Alt(char),
    /// A bracketed paste, delivered whole.
    Paste(String),
}

/// Redacts paste contents: a paste into a password prompt is a password, and
/// a `{:?}` of a key must not put it into a log line.
impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Key::Char(c) => write!(f, "Char({c:?})"),
            Key::Enter => f.write_str("Enter"),
            Key::Tab => f.write_str("Tab"),
            Key::BackTab => f.write_str("BackTab"),
            Key::Backspace => f.write_str("Backspace"),
            Key::Delete => f.write_str("Delete"),
            Key::Esc => f.write_str("Esc"),
            Key::Up => f.write_str("Up"),
            Key::Down => f.write_str("Down"),
            Key::Left => f.write_str("Left"),
            Key::Right => f.write_str("Right"),
            Key::Home => f.write_str("Home"),
            Key::End => f.write_str("End"),
            Key::PageUp => f.write_str("PageUp"),
            Key::PageDown => f.write_str("PageDown"),
            Key::Insert => f.write_str("Insert"),
            Key::F(n) => write!(f, "F({n})"),
            Key::Ctrl(c) => write!(f, "Ctrl({c:?})"),
            Key::Alt(c) => write!(f, "Alt({c:?})"),
            Key::Paste(text) => write!(f, "Paste([{} chars])", text.chars().count()),
        }
    }
}

/// A stateful parser for one session's input stream.
pub struct InputParser {
    inner: Termwiz,
    /// Bytes fed since the last call that produced a key; an upper bound on
    /// what the inner parser buffers.
    pending: usize,
    /// The start of a UTF-8 character cut off at the end of the last read
    /// (at most three bytes).
    carry: Vec<u8>,
    /// Takes the terminal's answers to rampart's queries out of the keys.
    filter: ReplyFilter,
    /// Answers found, until [`InputParser::take_replies`].
    replies: Vec<Reply>,
}

impl Default for InputParser {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for InputParser {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("InputParser")
            .field("pending", &self.pending)
            .finish_non_exhaustive()
    }
}

impl InputParser {
    pub fn new() -> Self {
        InputParser {
            inner: Termwiz::new(),
            pending: 0,
            carry: Vec::new(),
            filter: ReplyFilter::default(),
            replies: Vec::new(),
        }
    }

    /// The terminal's answers to queries (`tui::graphics::reply`) that
    /// came since the last call; they never become keys.
    pub fn take_replies(&mut self) -> Vec<Reply> {
        std::mem::take(&mut self.replies)
    }

    /// Whether answers wait to be taken.
    pub fn has_replies(&self) -> bool {
        !self.replies.is_empty()
    }

    /// Parses one chunk as it came off the channel. Incomplete sequences
    /// (half an arrow key, half a UTF-8 character, a lone `ESC`) are kept for
    /// the next call or for [`InputParser::flush`].
    pub fn feed(&mut self, bytes: &[u8]) -> Vec<Key> {
        let mut typed = Vec::with_capacity(bytes.len());
        self.filter.feed(bytes, &mut typed, &mut self.replies);
        // Nobody may ask for answers; a client sending them unasked keeps
        // only the last few.
        let excess = self.replies.len().saturating_sub(MAX_REPLIES);
        self.replies.drain(..excess);
        let text = self.utf8(&typed);
        let keys = self.run(&text, true);
        if keys.is_empty() {
            self.pending = self.pending.saturating_add(bytes.len());
        } else {
            self.pending = bytes.len();
        }
        if self.pending > MAX_PENDING {
            // Drop whatever was buffered (see MAX_PENDING): the next bytes
            // start from a clean state.
            self.inner = Termwiz::new();
            self.pending = 0;
            self.carry.clear();
            self.filter = ReplyFilter::default();
        }
        keys
    }

    /// Called after [`ESC_TIMEOUT`] without input: whatever is still
    /// buffered is taken as typed (a lone `ESC` becomes [`Key::Esc`]).
    /// Harmless when nothing is pending.
    pub fn flush(&mut self) -> Vec<Key> {
        // What the answer filter held (a lone ESC) was typed after all.
        let held = self.filter.flush();
        let mut keys = if held.is_empty() {
            Vec::new()
        } else {
            let text = self.utf8(&held).into_owned();
            self.run(&text, true)
        };
        self.pending = 0;
        // A character still incomplete after a pause never will be.
        let cut = if self.carry.is_empty() {
            &[][..]
        } else {
            REPLACEMENT
        };
        self.carry.clear();
        keys.extend(self.run(cut, false));
        keys
    }

    /// `bytes` as valid UTF-8: invalid sequences become U+FFFD, and an
    /// incomplete character at the end waits in `carry` for the next read.
    fn utf8<'a>(&mut self, bytes: &'a [u8]) -> Cow<'a, [u8]> {
        if self.carry.is_empty() && std::str::from_utf8(bytes).is_ok() {
            return Cow::Borrowed(bytes);
        }
        let mut rest = std::mem::take(&mut self.carry);
        rest.extend_from_slice(bytes);
        let mut out = Vec::with_capacity(rest.len() + 8);
        let mut at = 0;
        while at < rest.len() {
            match std::str::from_utf8(&rest[at..]) {
                Ok(_) => {
                    out.extend_from_slice(&rest[at..]);
                    break;
                }
                Err(e) => {
                    let good = at + e.valid_up_to();
                    out.extend_from_slice(&rest[at..good]);
                    match e.error_len() {
                        Some(bad) => {
                            out.extend_from_slice(REPLACEMENT);
                            at = good + bad;
                        }
                        None => {
                            self.carry = rest[good..].to_vec();
                            break;
                        }
                    }
                }
            }
        }
        Cow::Owned(out)
    }

    fn run(&mut self, bytes: &[u8], maybe_more: bool) -> Vec<Key> {
        let mut keys = Vec::new();
        self.inner.parse(
            bytes,
            |event| {
                if let Some(key) = convert(event) {
                    keys.push(key);
                }
            },
            maybe_more,
        );
        keys
    }
}

fn convert(event: InputEvent) -> Option<Key> {
    match event {
        InputEvent::Key(key) => convert_key(key),
        InputEvent::Paste(text) => Some(Key::Paste(text)),
        // Mouse reports and the rest carry nothing the TUI acts on.
        InputEvent::Mouse(_)
        | InputEvent::PixelMouse(_)
        | InputEvent::Resized { .. }
        | InputEvent::Wake => None,
    }
}

fn convert_key(KeyEvent { key, modifiers }: KeyEvent) -> Option<Key> {
    let ctrl = modifiers.contains(Modifiers::CTRL);
    let alt = modifiers.contains(Modifiers::ALT);
    let shift = modifiers.contains(Modifiers::SHIFT);
    Some(match key {
        KeyCode::Char(c) => return Some(convert_char(c, ctrl, alt)),
        KeyCode::Enter => Key::Enter,
        KeyCode::Tab if shift => Key::BackTab,
        KeyCode::Tab => Key::Tab,
        KeyCode::Backspace => Key::Backspace,
        KeyCode::Delete => Key::Delete,
        KeyCode::Escape => Key::Esc,
        KeyCode::UpArrow | KeyCode::ApplicationUpArrow => Key::Up,
        KeyCode::DownArrow | KeyCode::ApplicationDownArrow => Key::Down,
        KeyCode::LeftArrow | KeyCode::ApplicationLeftArrow => Key::Left,
        KeyCode::RightArrow | KeyCode::ApplicationRightArrow => Key::Right,
        KeyCode::Home | KeyCode::KeyPadHome => Key::Home,
        KeyCode::End | KeyCode::KeyPadEnd => Key::End,
        KeyCode::PageUp | KeyCode::KeyPadPageUp => Key::PageUp,
        KeyCode::PageDown | KeyCode::KeyPadPageDown => Key::PageDown,
        KeyCode::Insert => Key::Insert,
        KeyCode::Function(n) => Key::F(n),
        // Modifier-only presses, media keys and the like: a terminal over
        // SSH does not send them, and the TUI would ignore them anyway.
        _ => return None,
    })
}

/// Maps a character with modifiers. Terminals send Ctrl-letter as a C0
/// byte (Ctrl-C is 0x03), which termwiz reports either as the letter with
/// CTRL or, for the bytes it has no name for, as the raw control character.
fn convert_char(c: char, ctrl: bool, alt: bool) -> Key {
    match c {
        // Ctrl-@ (and Ctrl-Space) is NUL.
        '\0' => Key::Ctrl(' '),
        '\r' | '\n' => Key::Enter,
        '\t' => Key::Tab,
        '\u{8}' | '\u{7f}' => Key::Backspace,
        '\u{1b}' => Key::Esc,
        // Remaining C0 bytes: 0x01..=0x1a are Ctrl-a..Ctrl-z, 0x1c..=0x1f
        // are Ctrl-\ ] ^ _ (the byte plus 0x40, as the terminal computed it).
        c if (c as u32) < 0x20 => Key::Ctrl(char::from(c as u8 + 0x40).to_ascii_lowercase()),
        c if ctrl => Key::Ctrl(c.to_ascii_lowercase()),
        c if alt => Key::Alt(c),
        c => Key::Char(c),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_control_bytes_map_to_ctrl_letters() {
        assert_eq!(convert_char('\u{3}', false, false), Key::Ctrl('c'));
        assert_eq!(convert_char('\u{1c}', false, false), Key::Ctrl('\\'));
        assert_eq!(convert_char('\0', false, false), Key::Ctrl(' '));
    }

    #[test]
    fn unterminated_paste_is_bounded() {
        let mut p = InputParser::new();
        assert!(p.feed(b"\x1b[200~").is_empty());
        let chunk = vec![b'a'; 16 * 1024];
        for _ in 0..4 {
            assert!(p.feed(&chunk).is_empty());
        }
        // The runaway paste was dropped; ordinary typing works again.
        assert_eq!(p.feed(b"x"), vec![Key::Char('x')]);
    }

    /// A paste holding bytes that are not UTF-8 made termwiz consume more
    /// than it had buffered (it measured the lossy copy) and panic: found by
    /// the fuzz smoke, and a menu any logged-in person could bring down.
    #[test]
    fn a_paste_that_is_not_utf8_arrives_with_replacement_characters() {
        let mut p = InputParser::new();
        assert!(p.feed(b"\x1b[200~ab\xff\xfe").is_empty());
        assert_eq!(
            p.feed(b"cd\r\x1b[201~x"),
            vec![Key::Paste("ab\u{fffd}\u{fffd}cd\r".into()), Key::Char('x')]
        );
        let mut p = InputParser::new();
        assert!(p.feed(b"\x1b[200~\xff\xff").is_empty());
        assert!(p.flush().is_empty());
        assert_eq!(
            p.feed(b"\x1b[200~pased text\r\x1b[201~"),
            vec![Key::Paste("\u{fffd}\u{fffd}\x1b[200~pased text\r".into())]
        );
    }

    /// Invalid bytes outside a paste become U+FFFD, and a character split
    /// across reads still arrives whole.
    #[test]
    fn characters_split_across_reads_arrive_whole_and_invalid_bytes_are_replaced() {
        let mut p = InputParser::new();
        let e = "é".as_bytes();
        assert!(p.feed(&e[..1]).is_empty());
        assert_eq!(p.feed(&e[1..]), vec![Key::Char('é')]);
        assert_eq!(
            p.feed(b"\xffa"),
            vec![Key::Char('\u{fffd}'), Key::Char('a')]
        );
        // An incomplete character at a pause is replaced, not kept forever.
        assert!(p.feed(&e[..1]).is_empty());
        assert_eq!(p.flush(), vec![Key::Char('\u{fffd}')]);
        assert_eq!(p.feed(b"z"), vec![Key::Char('z')]);
    }
}
