//! Enters decided late: an Enter held until the screen shows its line
//! ([`Input::EnterUnseen`], resolved by the relay), a line forwarded
//! before its echo and logged when the shell draws it, and a line the relay
//! held back unread.

use std::time::Duration;

#[cfg(doc)]
use super::Input;
use super::capture::complete;
use super::screen::{echo_start, prompt_fits};
use super::{
    CommandTracker, Held, LATE_LOOKS, Late, LateCommand, Line, MAX_LATE, OUTPUT_CAPTURE_LIMIT,
    Running,
};
use crate::record::strip::Stripper;

impl CommandTracker {
    /// The line of the oldest unresolved [`Input::EnterUnseen`] as the
    /// screen shows it now; poll it while holding that Enter (see the module
    /// docs). `None` while nothing was echoed (echo off: a password), in the
    /// alternate screen, while the echo of the typed keys is incomplete, or
    /// for a line typed ahead until the shell has drawn it below the
    /// previous one.
    pub fn pending_line(&mut self) -> Option<String> {
        self.catch_up();
        self.unseen
            .front()
            .and_then(|held| self.read_held(held, false).map(|(line, ..)| line))
    }

    /// Ends the wait for the oldest [`Input::EnterUnseen`]: its line as the
    /// screen shows it now (as [`Self::pending_line`], except that a typed
    /// line whose echo has begun but not finished counts), and forgets it.
    /// Call it once per `EnterUnseen`, in order, just before forwarding
    /// that Enter (or refusing it).
    pub fn resolve_pending(&mut self) -> Option<String> {
        self.catch_up();
        let held = self.unseen.pop_front()?;
        let decided = self.read_held(&held, true);
        // The Enter goes out now (or a Ctrl-C instead): the next line is
        // drawn below this row once the target answers.
        self.after_enter = true;
        let row = self.cursor_row();
        self.enter_row = Some(row);
        match self.unseen.front_mut() {
            Some(next) => {
                next.after.get_or_insert(row);
            }
            None => {
                if let Some(line) = self.line.as_mut().filter(|l| l.stale) {
                    line.after.get_or_insert(row);
                }
            }
        }
        let Some((line, prompt, exact)) = decided else {
            // Echo off (a password), or an echo later than the wait.
            self.unresolved = held
                .typed
                .as_ref()
                .is_some_and(|t| !t.contains('\n'))
                .then_some(held);
            return None;
        };
        self.unresolved = None;
        self.decided_prompt(prompt, exact);
        Some(line)
    }

    /// The prompt of a decided line, to trim from the previous command's
    /// output; `exact`: the screen showed it left of exactly the typed keys.
    pub(super) fn decided_prompt(&mut self, prompt: String, exact: bool) {
        if exact && !prompt.is_empty() {
            self.known_prompt.clone_from(&prompt);
            self.prompt_hint.clone_from(&prompt);
        }
        self.last_prompt = Some(prompt);
    }

    /// The relay forwarded the Enter [`Self::resolve_pending`] just
    /// resolved to `None`, at `at` since the session start. When its keys
    /// determined the line, the line is logged after all, should the shell
    /// draw exactly those keys later (a command typed ahead behind one that
    /// ran longer than the wait, or an echo delayed by load): see
    /// [`Self::take_late`]. A password typed with echo off never shows, so
    /// it is never logged; a line looked for in vain is dropped after
    /// [`LATE_LOOKS`] rows of output or when a later command starts.
    pub fn expect_echo(&mut self, at: Duration) {
        self.catch_up();
        let Some(held) = self.unresolved.take() else {
            return;
        };
        if self.late.len() >= MAX_LATE {
            self.late.pop_front();
        }
        self.late.push_back(Late {
            held,
            at,
            looks: LATE_LOOKS,
        });
    }

    /// The lines forwarded before their echo that the screen has shown
    /// since the last call, oldest first. Each now runs (its output is
    /// captured), and ends the command before it.
    pub fn take_late(&mut self) -> Vec<LateCommand> {
        std::mem::take(&mut self.late_seen)
    }

    /// The relay held back the Enter it just resolved, unread (a line typed
    /// ahead with keys that do not say what it is): the keys already sent
    /// stay in the shell's line, so the line goes on, and its next Enter
    /// reads it from the screen, after the prompt, below where it was held.
    pub fn withheld(&mut self) {
        self.catch_up();
        match self.line.as_mut() {
            // Keys typed after the held Enter joined the same shell line.
            Some(line) => {
                line.reliable = false;
                line.stale = true;
                line.after = line.after.or(self.enter_row);
            }
            None => {
                let (row, col) = self.model.screen().cursor_position();
                self.line = Some(Line {
                    boundary: (row, col),
                    prompt: self.prompt_hint.clone(),
                    stale: true,
                    after: self.enter_row,
                    typed: Vec::new(),
                    reliable: false,
                    edited: false,
                });
            }
        }
    }

    /// Looks at the screen for the echo of a line forwarded before its
    /// echo: the first of them, in order, that the cursor follows.
    pub(super) fn look_for_late(&mut self) {
        let screen = self.model.screen();
        let (row, col) = screen.cursor_position();
        let cursor_line = screen.contents_between(self.line_start(row), 0, row, col);
        let cursor_line = cursor_line.trim_end();
        // The echoes come in order; one whose line went by unseen (a
        // password typed ahead never shows) must not hide those after it.
        let found = self.late.iter().enumerate().find_map(|(i, late)| {
            let typed = late.held.typed.as_deref().unwrap_or_default();
            if !cursor_line.ends_with(typed) {
                return None;
            }
            // What the cursor follows may be the echo of the keys of the
            // line being typed now.
            if self
                .line
                .as_ref()
                .is_some_and(|l| l.typed.ends_with(typed.as_bytes()))
            {
                return None;
            }
            let expected = match self.known_prompt.as_str() {
                "" => &late.held.prompt,
                known => known,
            };
            self.shows_typed(typed, &late.held)
                .filter(|prompt| prompt_fits(prompt, expected))
                .map(|prompt| (i, prompt))
        });
        let Some((i, prompt)) = found else {
            for late in &mut self.late {
                late.looks = late.looks.saturating_sub(1);
            }
            self.late.retain(|l| l.looks > 0);
            return;
        };
        self.late.drain(..i);
        let late = self.late.pop_front().expect("found");
        if !prompt.is_empty() {
            self.known_prompt.clone_from(&prompt);
            self.prompt_hint.clone_from(&prompt);
        }
        let command = late.held.typed.unwrap_or_default();
        let previous = self
            .running
            .take()
            .map(|r| complete(r, Some(&prompt), Some(&command)));
        self.running = Some(Running {
            command: command.clone(),
            at: late.at,
            capture: Stripper::new(OUTPUT_CAPTURE_LIMIT),
        });
        self.late_seen.push(LateCommand {
            command,
            at: late.at,
            previous,
        });
    }

    /// (command, prompt) for a line at its Enter, or `None` while the
    /// screen does not show it. The keystrokes decide when they fully
    /// determine the line and the screen shows them at the cursor (the
    /// shell echoed exactly those keys); otherwise the screen decides, from
    /// the boundary or, for a line typed ahead, from after the prompt.
    /// `last`: the wait is over, and a line whose echo began but is not
    /// complete is taken as typed (echo is on, so it is no password).
    /// The third value says the keys decided (the screen showed exactly
    /// them, after the prompt given).
    pub(super) fn read_held(&self, held: &Held, last: bool) -> Option<(String, String, bool)> {
        let screen = self.model.screen();
        if screen.alternate_screen() {
            return None;
        }
        let typed = held.typed.as_deref().filter(|t| !t.contains('\n'));
        if let Some(typed) = typed
            && let Some(prompt) = self.shows_typed(typed, held)
        {
            return Some((typed.to_string(), prompt, true));
        }
        if !self.late.is_empty() {
            // Lines sent before this one have not shown yet: a line on the
            // screen that is not exactly this one's keys may be theirs.
            return None;
        }
        let (boundary, prompt) = match held.boundary {
            Some(boundary) => (boundary, held.prompt.clone()),
            None => self.after_prompt(held)?,
        };
        let shown = self.read_line(boundary)?;
        if let Some(typed) = typed {
            if shown.contains('\n') {
                // Rows of output between the boundary and the cursor: the
                // line started while a command still ran, and the typed
                // keys are not (yet) at the cursor.
                return None;
            }
            if typed.starts_with(&shown) {
                // The echo is under way.
                return last.then(|| (typed.to_string(), prompt, false));
            }
            if let Some(start) = echo_start(&shown, typed) {
                // The first key came while the prompt was still being
                // drawn: the boundary is inside the prompt, and the screen
                // shows the prompt's end and the echo under way.
                let rest = shown.get(..start).unwrap_or_default();
                return last.then(|| {
                    let prompt = format!("{prompt}{}", rest.trim_end());
                    (typed.to_string(), prompt, false)
                });
            }
            if !held.edited {
                // Printable keys alone make the line what they say: the
                // screen can confirm it, never replace it (what it shows is
                // output the line began on, not yet the echo).
                return None;
            }
        }
        // The shell shows something other than the keys (a line editor
        // whose editing the key model does not follow): it decides.
        Some((shown, prompt, false))
    }
}
