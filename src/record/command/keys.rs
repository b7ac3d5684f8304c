//! The person's side: input split at Enter keys, the keystroke model of
//! the line being typed (printable keys, editing keys, bracketed paste), and
//! what an Enter is: seen on the screen at once, or held for its echo.

use super::screen::prompt_fits;
use super::{
    CommandTracker, FULL_SCREEN_TYPED, Held, Input, Keys, Line, MAX_UNSEEN, PASTE_END, TYPED_LIMIT,
};

impl CommandTracker {
    /// Input from the person: split at Enter keys, each with its command.
    pub fn input(&mut self, bytes: &[u8]) -> Vec<Input> {
        self.catch_up();
        let mut out = Vec::new();
        let mut data = Vec::new();
        for &b in bytes {
            // A CR or LF inside a key sequence is still an Enter: terminals
            // execute C0 controls met inside a sequence (ECMA-48), and
            // reporting an Enter too many is safe where one too few is not.
            if (b == b'\r' || b == b'\n')
                && matches!(self.keys, Keys::Escape | Keys::Csi(_) | Keys::Ss3)
            {
                self.keys = Keys::Ground;
                self.unreliable();
            }
            match &mut self.keys {
                Keys::Paste(matched) => {
                    let matched = *matched;
                    self.paste_byte(matched, b);
                    data.push(b);
                    continue;
                }
                Keys::Escape => {
                    self.keys = match b {
                        b'[' => Keys::Csi(Vec::new()),
                        b'O' => Keys::Ss3,
                        0x1b => Keys::Escape,
                        // Alt-key: an editing command the model cannot follow.
                        _ => {
                            self.unreliable();
                            Keys::Ground
                        }
                    };
                    data.push(b);
                    continue;
                }
                Keys::Csi(params) => {
                    data.push(b);
                    if (0x40..=0x7e).contains(&b) {
                        // A paste counts only when the target asked for
                        // bracketed paste: otherwise the target reads its
                        // Enter keys as Enter keys, and so must we.
                        let paste =
                            b == b'~' && params == b"200" && self.model.screen().bracketed_paste();
                        self.keys = if paste { Keys::Paste(0) } else { Keys::Ground };
                        if !paste {
                            self.unreliable();
                        }
                    } else if params.len() < 16 {
                        params.push(b);
                    }
                    continue;
                }
                Keys::Ss3 => {
                    self.keys = Keys::Ground;
                    self.unreliable();
                    data.push(b);
                    continue;
                }
                Keys::Ground => {}
            }
            if b == b'\r' || b == b'\n' {
                // CR LF from one key press is one Enter.
                if b == b'\n'
                    && data.is_empty()
                    && let Some(Input::Enter { raw, .. } | Input::EnterUnseen { raw, .. }) =
                        out.last_mut()
                    && raw.as_slice() == b"\r"
                {
                    raw.push(b'\n');
                    continue;
                }
                if !data.is_empty() {
                    out.push(Input::Data(std::mem::take(&mut data)));
                }
                out.push(self.enter(vec![b]));
            } else {
                self.keystroke(b);
                data.push(b);
            }
        }
        if !data.is_empty() {
            out.push(Input::Data(data));
        }
        out
    }

    pub(super) fn unreliable(&mut self) {
        if let Some(line) = &mut self.line {
            line.reliable = false;
        }
    }

    /// A key other than Enter, outside escape sequences and pastes.
    pub(super) fn keystroke(&mut self, b: u8) {
        self.input_after_output = true;
        if b == 0x1b {
            self.keys = Keys::Escape;
        }
        if self.model.screen().alternate_screen() {
            if b != 0x1b {
                self.full_screen_key(b);
            }
            return;
        }
        if b == 0x03 {
            // Ctrl-C abandons the line.
            self.line = None;
            return;
        }
        if self.line.is_none() {
            self.start_line();
        }
        let Some(line) = &mut self.line else { return };
        match b {
            0x7f | 0x08 | 0x15 | 0x17 => line.edited = true,
            _ => {}
        }
        match b {
            0x7f | 0x08 => {
                while let Some(last) = line.typed.pop() {
                    if last & 0xc0 != 0x80 {
                        break;
                    }
                }
            }
            0x15 => line.typed.clear(),
            0x17 => {
                while line.typed.last().is_some_and(|c| *c == b' ') {
                    line.typed.pop();
                }
                while line.typed.last().is_some_and(|c| *c != b' ') {
                    line.typed.pop();
                }
            }
            // Ctrl-L: the shell clears the screen and redraws the prompt
            // and the line on the top row.
            0x0c => line.boundary.0 = 0,
            0x1b => {}
            0x00..=0x1f => line.reliable = false,
            _ => push_typed(line, b),
        }
    }

    /// One byte inside a bracketed paste: text for the keystroke model,
    /// until the end marker.
    pub(super) fn paste_byte(&mut self, matched: usize, b: u8) {
        if PASTE_END.get(matched) == Some(&b) {
            self.keys = if matched + 1 == PASTE_END.len() {
                Keys::Ground
            } else {
                Keys::Paste(matched + 1)
            };
            return;
        }
        self.keys = Keys::Paste(usize::from(b == 0x1b));
        self.input_after_output = true;
        if self.model.screen().alternate_screen() {
            if b != 0x1b {
                self.full_screen_key(b);
            }
            return;
        }
        if self.line.is_none() {
            // A paste as the first key: the boundary is the cursor, like any key.
            self.start_line();
        }
        if let Some(line) = &mut self.line {
            // Bytes that looked like the start of the end marker were text.
            for &p in PASTE_END.get(..matched).unwrap_or_default() {
                paste_text(line, p);
            }
            paste_text(line, b);
        }
    }

    /// A key typed on the alternate screen, as line editing would take it.
    pub(super) fn full_screen_key(&mut self, b: u8) {
        let typed = &mut self.full_screen_typed;
        match b {
            0x7f | 0x08 => {
                // Back over one character (a UTF-8 sequence is one).
                while let Some(last) = typed.pop() {
                    if last & 0xc0 != 0x80 {
                        break;
                    }
                }
            }
            0x15 | 0x03 => typed.clear(),
            b if (b >= 0x20 || b == b'\t') && typed.len() < FULL_SCREEN_TYPED => typed.push(b),
            _ => {}
        }
    }

    /// The first key at a prompt: the cursor is the boundary, unless the
    /// target has not answered the previous Enter yet (type-ahead).
    pub(super) fn start_line(&mut self) {
        let screen = self.model.screen();
        let (row, col) = screen.cursor_position();
        let stale = self.after_enter;
        let prompt = if stale {
            self.prompt_hint.clone()
        } else {
            let prompt = screen.contents_between(row, 0, row, col).trim().to_string();
            // A line begun on an empty row or on a row of output (typed
            // while a command's output ran) or in a prompt half drawn says
            // nothing about the prompt: the hint keeps the last.
            if !prompt.is_empty()
                && (self.known_prompt.is_empty() || prompt_fits(&prompt, &self.known_prompt))
            {
                self.prompt_hint.clone_from(&prompt);
            }
            prompt
        };
        // While an earlier Enter is still held, the row it will go out on
        // is not known yet: `resolve_pending` fills it in.
        let after = if stale && self.unseen.is_empty() {
            self.enter_row
        } else {
            None
        };
        self.line = Some(Line {
            boundary: (row, col),
            prompt,
            stale,
            after,
            typed: Vec::new(),
            reliable: true,
            edited: false,
        });
    }

    pub(super) fn enter(&mut self, raw: Vec<u8>) -> Input {
        let echo_pending = std::mem::replace(&mut self.input_after_output, true);
        self.after_enter = true;
        let line = self.line.take();
        if self.model.screen().alternate_screen() {
            self.enter_row = Some(self.cursor_row());
            let typed = std::mem::take(&mut self.full_screen_typed);
            return Input::EnterFullScreen {
                typed: String::from_utf8_lossy(&typed).into_owned(),
                raw,
            };
        }
        let Some(line) = line else {
            // Enter alone at a prompt: an empty line.
            if self.unseen.is_empty() {
                self.enter_row = Some(self.cursor_row());
            }
            return Input::Enter { command: None, raw };
        };
        let typed = line.typed_text();
        let held = Held {
            boundary: (!line.stale).then_some(line.boundary),
            prompt: line.prompt,
            after: line.after,
            typed: typed.clone(),
            edited: line.edited,
        };
        if !line.stale && !echo_pending && self.unseen.is_empty() {
            // Output came after the last key, but a fast typist's keys may
            // still be partly unechoed: a line the keys fully determine is
            // seen only once the screen shows all of it.
            let decided = self.read_held(&held, false);
            if decided.is_some() || typed.is_none() {
                self.enter_row = Some(self.cursor_row());
                let command = decided.map(|(command, prompt, exact)| {
                    self.decided_prompt(prompt, exact);
                    command
                });
                return Input::Enter { command, raw };
            }
        }
        // A relay that never resolves must not grow this without bound.
        if self.unseen.len() >= MAX_UNSEEN {
            self.unseen.pop_front();
        }
        self.unseen.push_back(held);
        Input::EnterUnseen { typed, raw }
    }
}

/// Pasted bytes as the line editor inserts them: newlines kept, other
/// control bytes (and the ESC of a would-be end marker) left out.
pub(super) fn paste_text(line: &mut Line, b: u8) {
    match b {
        b'\r' | b'\n' => push_typed(line, b'\n'),
        b'\t' => push_typed(line, b' '),
        0x00..=0x1f | 0x7f => {}
        _ => push_typed(line, b),
    }
}

pub(super) fn push_typed(line: &mut Line, b: u8) {
    if line.typed.len() < TYPED_LIMIT {
        line.typed.push(b);
    } else {
        line.reliable = false;
    }
}
