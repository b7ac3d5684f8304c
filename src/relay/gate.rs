//! The Enter gate: what the command filters make of each piece of the
//! person's input, decided without channels, clocks or locks, so every
//! branch is tested on its own (`gate::tests`).
//!
//! The pump ([`super::pump`]) asks [`Gate::enter`] for each piece the
//! command tracker split the input into, carries out the [`Step`] it gets
//! (send, refuse, wait for the echo, hold back), and for a line it can read
//! asks [`Line::decide`] whether the Enter goes on, with which notice, or
//! waits for an administrator ([`Line::reviewed`] then says what the
//! answer means).
//!
//! What it guarantees, whatever the pump does around it:
//! - a line whose keys match a deny or review rule never passes unseen:
//!   not typed ahead of its echo, not on a full-screen display, not pasted;
//! - a line that may be a password (not echoed) is never logged or shown as
//!   typed: placeholders stand for it;
//! - where filters apply (a guarded grant), a line no filter can read is
//!   held back rather than passed.

use std::time::Duration;

use super::review;
use super::{RED, RESET, YELLOW};
use crate::model::FilterAction;
use crate::policy::FilterVerdict;
use crate::record::Input;
use crate::session::Held;

/// Logged for a refused line typed on a full-screen display (it may be a
/// password, so its keys are never logged).
pub(super) const FULL_SCREEN_LINE: &str = "[a line typed on a full-screen display]";
/// Logged for a line held back because no filter could read it.
pub(super) const UNREADABLE_LINE: &str = "[a line typed ahead that could not be read]";

/// Decides Enters against the person's filters.
pub(super) struct Gate<'a> {
    /// The current filter verdict for a line.
    pub check: &'a (dyn Fn(&str) -> FilterVerdict + Sync),
    /// Whether any deny or review rule applies to the session (then a line
    /// no filter can read is held back).
    pub guarded: &'a (dyn Fn() -> bool + Sync),
}

/// What the pump does with one piece of input.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Step {
    /// Send the bytes to the target.
    Pass(Vec<u8>),
    /// Send the bytes although no filter read the line (echo not seen in
    /// time, filters do not apply): the tracker logs the line should the
    /// shell draw it later.
    PassUnread(Vec<u8>),
    /// Wait (a short while) for the target to echo the line, then ask
    /// [`Gate::echoed`].
    AwaitEcho(Unseen),
    /// Refuse the Enter: logged as refused, the person told, a Ctrl-C to
    /// the target for the line left at its prompt.
    Refuse(Refused),
    /// Hold the Enter back: logged, the person told; the line stays at the
    /// prompt (no Ctrl-C), and the command before it goes on running.
    HoldBack(Refused),
    /// A line the filters can read: see [`Line::decide`].
    Judge(Line),
}

/// An Enter typed before the echo of its line.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct Unseen {
    typed: Option<String>,
    raw: Vec<u8>,
    /// The verdict of the typed keys, when it is deny or review: checked
    /// before the echo, so a pasted `rm -rf /` + Enter cannot slip through.
    denied: Option<FilterVerdict>,
}

impl Unseen {
    /// The line as rebuilt from simple keystrokes, to compare the echo with.
    pub fn typed(&self) -> Option<&str> {
        self.typed.as_deref()
    }
}

/// An Enter refused or held back before it reached the target.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct Refused {
    /// What the command log says was typed (a placeholder where it may be
    /// a password).
    pub logged: String,
    pub action: FilterAction,
    pub rule: Option<String>,
    /// The line the person gets.
    pub text: String,
}

/// A readable line and the verdict it runs under.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct Line {
    /// As logged, shown to approvers and marked in the recording.
    pub command: String,
    pub raw: Vec<u8>,
    pub verdict: FilterVerdict,
}

/// What [`Line::decide`] says about a readable line.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Decision {
    /// The Enter goes on; the notice, if any, is shown first.
    Forward { notice: Option<String> },
    /// The Enter is refused (a Ctrl-C goes instead).
    Refuse { notice: String },
    /// An administrator decides (`review` rule).
    Review { rule: String },
}

fn blocks(verdict: &FilterVerdict) -> bool {
    matches!(verdict.action, FilterAction::Deny | FilterAction::Review)
}

fn rule_name(verdict: &FilterVerdict) -> String {
    verdict.rule.as_deref().unwrap_or("?").to_string()
}

impl Gate<'_> {
    /// The step for one piece of input.
    pub fn enter(&self, piece: Input) -> Step {
        match piece {
            Input::Data(bytes) => Step::Pass(bytes),
            Input::Enter { command: None, raw } => Step::Pass(raw),
            Input::Enter {
                command: Some(command),
                raw,
            } => self.judge(command, raw, None),
            Input::EnterFullScreen { typed, raw } => {
                // No line can be read on the alternate screen, so a shell
                // that switched to it would type past the filters: the keys
                // are checked instead. What they spelled may be a password,
                // so it is never logged.
                let verdict = (self.check)(&typed);
                if typed.trim().is_empty() || !blocks(&verdict) {
                    return Step::Pass(raw);
                }
                let rule = rule_name(&verdict);
                Step::Refuse(Refused {
                    logged: FULL_SCREEN_LINE.into(),
                    action: FilterAction::Deny,
                    rule: verdict.rule,
                    text: format!(
                        "\r\n{RED}rampart: Enter refused: what was typed matches rule {rule}, and lines typed on a full-screen display cannot be reviewed{RESET}\r\n"
                    ),
                })
            }
            Input::EnterUnseen { typed, raw } => {
                // What was typed is checked now but logged only once the
                // echo shows it: it may be a password typed with echo off.
                let denied = typed.as_deref().map(self.check).filter(blocks);
                Step::AwaitEcho(Unseen { typed, raw, denied })
            }
        }
    }

    /// The step for an Enter typed before its echo, once the echo was
    /// waited for: `seen` is the line the screen shows, `None` when it
    /// showed none in time.
    pub fn echoed(&self, unseen: Unseen, seen: Option<String>) -> Step {
        let Unseen { typed, raw, denied } = unseen;
        match (denied, typed) {
            (Some(verdict), Some(typed)) if verdict.action == FilterAction::Review => {
                // Held for review like any other line, under the verdict of
                // the text that matched the rule (the echo may differ under
                // type-ahead, and must not let it pass unreviewed). Not
                // echoed, it may be a password: approvers, the log and the
                // recording get a placeholder instead.
                let command = match seen {
                    Some(_) => typed,
                    None => review::UNSEEN.into(),
                };
                self.judge(command, raw, Some(verdict))
            }
            (Some(verdict), typed) => {
                let rule = rule_name(&verdict);
                // Logged as the text the rule matched, once the echo showed
                // it is no password.
                let logged = match (seen, typed) {
                    (Some(_), Some(typed)) => typed,
                    _ => review::UNSEEN.into(),
                };
                Step::Refuse(Refused {
                    logged,
                    action: verdict.action,
                    rule: verdict.rule,
                    text: format!("\r\n{RED}rampart: command refused by rule {rule}{RESET}\r\n"),
                })
            }
            (None, None) if seen.is_none() && (self.guarded)() => {
                // Typed ahead with keys that do not say what the line is
                // (history, Tab) and not shown in time: no filter can read
                // it, so its Enter is held back. The line stays at the
                // prompt; a second Enter, once it shows, is checked as
                // usual.
                Step::HoldBack(Refused {
                    logged: UNREADABLE_LINE.into(),
                    action: FilterAction::Deny,
                    rule: None,
                    text: format!(
                        "\r\n{YELLOW}rampart: Enter held back: this line was typed ahead with keys that do not show what it is (history, Tab); press Enter again once it shows at the prompt{RESET}\r\n"
                    ),
                })
            }
            (None, _) => match seen {
                Some(command) => self.judge(command, raw, None),
                None => Step::PassUnread(raw),
            },
        }
    }

    /// A readable line, under `verdict` when one was decided already (the
    /// keys that matched a review rule), else under the filters now.
    fn judge(&self, command: String, raw: Vec<u8>, verdict: Option<FilterVerdict>) -> Step {
        let verdict = verdict.unwrap_or_else(|| (self.check)(&command));
        Step::Judge(Line {
            command,
            raw,
            verdict,
        })
    }
}

impl Line {
    /// Whether the Enter goes on, by the line's verdict.
    pub fn decide(&self) -> Decision {
        let rule = rule_name(&self.verdict);
        match self.verdict.action {
            FilterAction::Allow => Decision::Forward { notice: None },
            FilterAction::Warn => Decision::Forward {
                notice: Some(format!(
                    "\r\n{YELLOW}rampart: warning: this command matches rule {rule} and is flagged in the audit log{RESET}\r\n"
                )),
            },
            FilterAction::Deny => Decision::Refuse {
                notice: format!(
                    "\r\n{RED}rampart: command refused by rule {rule}: {}{RESET}\r\n",
                    printable(&self.command)
                ),
            },
            FilterAction::Review => Decision::Review { rule },
        }
    }

    /// What an administrator's answer means for the Enter: `None` when the
    /// person's channel is gone. Anything but an approval is logged as
    /// refused: the line never ran.
    pub fn reviewed(&mut self, held: &Held, timeout: Duration) -> Option<Decision> {
        let line = held.notice(timeout);
        match held {
            Held::ClientGone => None,
            Held::Approved { .. } => Some(Decision::Forward {
                notice: Some(format!("{YELLOW}rampart: {line}{RESET}\r\n")),
            }),
            Held::Denied { .. } | Held::TimedOut | Held::Withdrawn => {
                self.verdict.action = FilterAction::Deny;
                Some(Decision::Refuse {
                    notice: format!("{RED}rampart: {line}{RESET}\r\n"),
                })
            }
        }
    }
}

/// Control characters in a command must not reach the terminal raw.
fn printable(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Denies lines containing `rm -rf`, reviews lines containing `reboot`,
    /// warns on `sudo`.
    fn check(line: &str) -> FilterVerdict {
        let (action, rule) = if line.contains("rm -rf") {
            (FilterAction::Deny, Some("no-rm"))
        } else if line.contains("reboot") {
            (FilterAction::Review, Some("ask-reboot"))
        } else if line.contains("sudo") {
            (FilterAction::Warn, Some("sudo"))
        } else {
            (FilterAction::Allow, None)
        };
        FilterVerdict {
            action,
            rule: rule.map(String::from),
        }
    }

    fn guarded() -> bool {
        true
    }

    fn unguarded() -> bool {
        false
    }

    fn gate() -> Gate<'static> {
        Gate {
            check: &check,
            guarded: &guarded,
        }
    }

    fn unseen(typed: Option<&str>) -> Unseen {
        match gate().enter(Input::EnterUnseen {
            typed: typed.map(String::from),
            raw: b"\r".to_vec(),
        }) {
            Step::AwaitEcho(u) => u,
            other => panic!("expected a wait for the echo, got {other:?}"),
        }
    }

    #[test]
    fn keys_and_empty_lines_pass_and_a_readable_line_is_judged() {
        assert_eq!(
            gate().enter(Input::Data(b"ls".to_vec())),
            Step::Pass(b"ls".to_vec())
        );
        assert_eq!(
            gate().enter(Input::Enter {
                command: None,
                raw: b"\r".to_vec()
            }),
            Step::Pass(b"\r".to_vec())
        );
        let Step::Judge(line) = gate().enter(Input::Enter {
            command: Some("rm -rf /".into()),
            raw: b"\r".to_vec(),
        }) else {
            panic!("a readable line is judged");
        };
        assert_eq!(line.verdict.action, FilterAction::Deny);
        assert!(
            matches!(line.decide(), Decision::Refuse { notice } if notice.contains("no-rm: rm -rf /"))
        );
    }

    #[test]
    fn a_line_is_forwarded_warned_refused_or_reviewed_by_its_verdict() {
        let line = |command: &str| Line {
            command: command.into(),
            raw: b"\r".to_vec(),
            verdict: check(command),
        };
        assert_eq!(line("ls").decide(), Decision::Forward { notice: None });
        assert!(matches!(
            line("sudo id").decide(),
            Decision::Forward { notice: Some(n) } if n.contains("warning") && n.contains("sudo")
        ));
        assert_eq!(
            line("reboot").decide(),
            Decision::Review {
                rule: "ask-reboot".into()
            }
        );
        // Control characters in a refused line are not echoed raw.
        let Decision::Refuse { notice } = line("rm -rf /\x1b[2J").decide() else {
            panic!("refused");
        };
        assert!(notice.contains("rm -rf /?[2J"), "{notice:?}");
    }

    #[test]
    fn only_an_approval_lets_a_reviewed_line_run() {
        let timeout = Duration::from_secs(60);
        let fresh = || Line {
            command: "reboot".into(),
            raw: b"\r".to_vec(),
            verdict: check("reboot"),
        };
        let mut line = fresh();
        let approved = line.reviewed(&Held::Approved { by: "bob".into() }, timeout);
        assert!(
            matches!(approved, Some(Decision::Forward { notice: Some(n) }) if n.contains("approved by bob"))
        );
        assert_eq!(line.verdict.action, FilterAction::Review);
        for held in [
            Held::Denied {
                by: "bob".into(),
                reason: "not now".into(),
            },
            Held::TimedOut,
            Held::Withdrawn,
        ] {
            let mut line = fresh();
            assert!(matches!(
                line.reviewed(&held, timeout),
                Some(Decision::Refuse { .. })
            ));
            assert_eq!(line.verdict.action, FilterAction::Deny, "{held:?}");
        }
        assert_eq!(fresh().reviewed(&Held::ClientGone, timeout), None);
    }

    #[test]
    fn full_screen_keys_matching_a_rule_are_refused_and_never_logged() {
        let step = gate().enter(Input::EnterFullScreen {
            typed: "rm -rf / secret".into(),
            raw: b"\r".to_vec(),
        });
        let Step::Refuse(refused) = step else {
            panic!("refused: {step:?}");
        };
        assert_eq!(refused.logged, FULL_SCREEN_LINE);
        assert_eq!(refused.action, FilterAction::Deny);
        assert!(!refused.text.contains("secret"));
        // A review rule cannot be reviewed there: refused too.
        assert!(matches!(
            gate().enter(Input::EnterFullScreen {
                typed: "reboot".into(),
                raw: b"\r".to_vec()
            }),
            Step::Refuse(r) if r.action == FilterAction::Deny
        ));
        for typed in ["  ", ":wq"] {
            assert_eq!(
                gate().enter(Input::EnterFullScreen {
                    typed: typed.into(),
                    raw: b"\r".to_vec()
                }),
                Step::Pass(b"\r".to_vec())
            );
        }
    }

    #[test]
    fn a_denied_line_typed_ahead_is_refused_before_its_echo_and_logged_only_once_seen() {
        let Step::Refuse(refused) =
            gate().echoed(unseen(Some("rm -rf /")), Some("rm -rf /".into()))
        else {
            panic!("refused");
        };
        assert_eq!(refused.logged, "rm -rf /");
        assert_eq!(refused.rule.as_deref(), Some("no-rm"));
        // Never echoed: it may be a password.
        let Step::Refuse(refused) = gate().echoed(unseen(Some("rm -rf /")), None) else {
            panic!("refused");
        };
        assert_eq!(refused.logged, review::UNSEEN);
        // The echo shows something else (type-ahead): the keys decide.
        assert!(matches!(
            gate().echoed(unseen(Some("rm -rf /")), Some("ls".into())),
            Step::Refuse(_)
        ));
    }

    #[test]
    fn a_reviewed_line_typed_ahead_is_judged_under_its_keys_and_hidden_unless_echoed() {
        let Step::Judge(line) = gate().echoed(unseen(Some("reboot")), Some("ls".into())) else {
            panic!("judged");
        };
        assert_eq!(line.command, "reboot");
        assert_eq!(line.verdict.action, FilterAction::Review);
        let Step::Judge(line) = gate().echoed(unseen(Some("reboot")), None) else {
            panic!("judged");
        };
        assert_eq!(line.command, review::UNSEEN);
        assert_eq!(line.verdict.action, FilterAction::Review);
    }

    #[test]
    fn an_unreadable_line_is_held_back_only_where_filters_apply() {
        assert!(matches!(
            gate().echoed(unseen(None), None),
            Step::HoldBack(r) if r.logged == UNREADABLE_LINE
        ));
        let open = Gate {
            check: &check,
            guarded: &unguarded,
        };
        assert_eq!(
            open.echoed(unseen(None), None),
            Step::PassUnread(b"\r".to_vec())
        );
        // Keys that spell an allowed line, echo not seen: passed unread.
        assert_eq!(
            gate().echoed(unseen(Some("ls")), None),
            Step::PassUnread(b"\r".to_vec())
        );
        // Shown in time: judged as the screen shows it.
        let Step::Judge(line) = gate().echoed(unseen(None), Some("rm -rf /tmp/x".into())) else {
            panic!("judged");
        };
        assert_eq!(line.verdict.action, FilterAction::Deny);
    }
}
