//! A one-line text input, plain or masked, shared by the menu's @INPUT
//! prompt, the password change and the TOTP code entry.
//!
//! A masked field holds a password: it is drawn as one `*` per character,
//! never as text, and its buffer is allocated once at full size so that
//! typing never reallocates (a reallocation would leave a copy of the
//! prefix typed so far in freed memory, out of reach of zeroize).

use ratatui::Frame;
use ratatui::layout::{Position, Rect};
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;
use zeroize::{Zeroize, Zeroizing};

use super::input::Key;
use crate::vault::Secret;

#[derive(Clone)]
pub(crate) struct Field {
    text: Zeroizing<String>,
    /// Cursor position in characters.
    cursor: usize,
    masked: bool,
    max_chars: usize,
    /// Only these characters are accepted (`None`: any printable one).
    accept: Option<fn(char) -> bool>,
    /// A paste keeps its line breaks (a private key is pasted whole).
    lines: bool,
}

impl std::fmt::Debug for Field {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Field")
            .field("masked", &self.masked)
            .field("chars", &self.len())
            .finish_non_exhaustive()
    }
}

impl Field {
    pub(crate) fn plain(max_chars: usize) -> Field {
        Field::with(max_chars, false)
    }

    pub(crate) fn masked(max_chars: usize) -> Field {
        Field::with(max_chars, true)
    }

    /// A field that takes only characters for which `accept` holds (the
    /// TOTP code takes digits).
    pub(crate) fn only(mut self, accept: fn(char) -> bool) -> Field {
        self.accept = Some(accept);
        self
    }

    fn with(max_chars: usize, masked: bool) -> Field {
        Field {
            // 4 bytes is the longest UTF-8 character: the buffer never grows.
            text: Zeroizing::new(String::with_capacity(max_chars.saturating_mul(4))),
            cursor: 0,
            masked,
            max_chars,
            accept: None,
            lines: false,
        }
    }

    /// A field whose pasted text keeps its line breaks (as `\n`); typed
    /// Enter still ends the field.
    pub(crate) fn keep_lines(mut self) -> Field {
        self.lines = true;
        self
    }

    /// Replaces the text, with the cursor at its end.
    pub(crate) fn set(&mut self, text: &str) {
        self.clear();
        for c in text.chars() {
            self.insert(c);
        }
    }

    pub(crate) fn text(&self) -> &str {
        &self.text
    }

    pub(crate) fn len(&self) -> usize {
        self.text.chars().count()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.text.is_empty()
    }

    pub(crate) fn clear(&mut self) {
        self.text.zeroize();
        self.cursor = 0;
    }

    /// Moves the text out as a secret, leaving the field empty. The
    /// `String` moves without copying its bytes.
    pub(crate) fn take_secret(&mut self) -> Secret<String> {
        let fresh = String::with_capacity(self.max_chars.saturating_mul(4));
        let text = std::mem::replace(&mut *self.text, fresh);
        self.cursor = 0;
        Secret::new(text)
    }

    /// Edits the field; returns whether the key was an editing key.
    pub(crate) fn handle(&mut self, key: &Key) -> bool {
        match key {
            Key::Char(c) => {
                self.insert(*c);
            }
            Key::Paste(text) => {
                let text = text.replace("\r\n", "\n").replace('\r', "\n");
                for c in text.chars() {
                    if c == '\n' && self.lines {
                        self.insert_any(c);
                    } else if !c.is_control() {
                        // A pasted line break would end the prompt; drop it.
                        self.insert(c);
                    }
                }
            }
            Key::Backspace => {
                if self.cursor > 0 {
                    self.cursor -= 1;
                    self.remove_at(self.cursor);
                }
            }
            Key::Delete | Key::Ctrl('d') => self.remove_at(self.cursor),
            Key::Left | Key::Ctrl('b') => self.cursor = self.cursor.saturating_sub(1),
            Key::Right | Key::Ctrl('f') => self.cursor = (self.cursor + 1).min(self.len()),
            Key::Home | Key::Ctrl('a') => self.cursor = 0,
            Key::End | Key::Ctrl('e') => self.cursor = self.len(),
            Key::Ctrl('u') => self.clear(),
            _ => return false,
        }
        true
    }

    fn byte_at(&self, chars: usize) -> usize {
        self.text
            .char_indices()
            .nth(chars)
            .map_or(self.text.len(), |(i, _)| i)
    }

    fn insert(&mut self, c: char) {
        if c.is_control() || self.accept.is_some_and(|ok| !ok(c)) {
            return;
        }
        self.insert_any(c);
    }

    fn insert_any(&mut self, c: char) {
        if self.len() >= self.max_chars {
            return;
        }
        let at = self.byte_at(self.cursor);
        // Within capacity (see `with`), so this never reallocates.
        self.text.insert(at, c);
        self.cursor += 1;
    }

    fn remove_at(&mut self, chars: usize) {
        if chars < self.len() {
            let at = self.byte_at(chars);
            self.text.remove(at);
        }
    }

    /// Draws the field into `area` (one line) and, when `focused`, puts the
    /// terminal cursor at the insertion point.
    pub(crate) fn render(
        &self,
        frame: &mut Frame,
        area: Rect,
        style: Style,
        placeholder: Option<(&str, Style)>,
        focused: bool,
    ) {
        if area.width == 0 || area.height == 0 {
            return;
        }
        let width = usize::from(area.width);
        let line = if self.text.is_empty() {
            match placeholder {
                Some((hint, hint_style)) => Line::from(Span::styled(hint.to_string(), hint_style)),
                None => Line::default(),
            }
        } else {
            // Scroll so the cursor stays visible.
            let first = (self.cursor + 1).saturating_sub(width);
            let shown: String = if self.masked {
                "*".repeat(self.len().saturating_sub(first).min(width))
            } else {
                self.text.chars().skip(first).take(width).collect()
            };
            Line::from(shown)
        };
        frame.render_widget(Paragraph::new(line).style(style), area);
        if focused {
            let first = (self.cursor + 1).saturating_sub(width);
            let x = u16::try_from(self.cursor - first).unwrap_or(0);
            frame.set_cursor_position(Position::new(area.x.saturating_add(x), area.y));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn edits_and_never_reallocates_a_masked_field() {
        let mut f = Field::masked(8);
        let cap = f.text.capacity();
        for c in "pässwörd-too-long".chars() {
            f.handle(&Key::Char(c));
        }
        assert_eq!(f.text(), "pässwörd");
        assert_eq!(f.text.capacity(), cap);
        f.handle(&Key::Home);
        f.handle(&Key::Delete);
        f.handle(&Key::End);
        f.handle(&Key::Backspace);
        assert_eq!(f.text(), "ässwör");
        let secret = f.take_secret();
        assert_eq!(secret.expose(), "ässwör");
        assert!(f.is_empty());
    }

    #[test]
    fn digits_only() {
        let mut f = Field::plain(6).only(|c| c.is_ascii_digit());
        f.handle(&Key::Paste("12a34 5678".into()));
        assert_eq!(f.text(), "123456");
    }
}
