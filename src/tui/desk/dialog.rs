//! The boxes the desk opens over its lists (help, confirmations, a reason
//! for ending a session, a one-time secret, forms, a user's keys, a
//! connection test, one-line prompts, an operation's before and after, a
//! command waiting for approval): what each holds, what a key does in it,
//! and how it is drawn.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, Paragraph, Wrap};

use super::super::field::Field;
use super::super::form::Form;
use super::super::input::Key;
use super::super::theme::Theme;
use super::super::{centered, help_box, hint_line};
use super::forms::Editor;
use super::keys::{Keys, KeysKey};
use super::{Desk, DeskOutcome, Op, TestReport};
use crate::live::ApprovalRequest;
use crate::vault::Secret;

#[derive(Debug)]
pub(super) enum Dialog {
    Help,
    Confirm {
        text: String,
        op: Op,
    },
    /// A reason to show the person whose session ends.
    Reason {
        title: String,
        field: Field,
        target: ReasonFor,
    },
    Secret {
        title: String,
        secret: Secret<String>,
    },
    Edit(Box<Editor>),
    /// Narrowing the history lists.
    History(Box<Form>),
    /// A user's public keys.
    Keys(Keys),
    /// A connection test's findings.
    Test(TestReport),
    /// One line to type: what it is for, and the line.
    Prompt(Ask, Field),
    /// Lines to read (an operation's before and after).
    Text {
        title: String,
        lines: Vec<String>,
    },
    /// A command waiting for an admin's decision.
    Approval(ApprovalRequest),
}

/// What a one-line prompt asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Ask {
    /// The text to look for on recorded screens.
    Find,
    GroupAdd,
    NodeAdd,
    /// Where to move a node.
    NodeMove(String),
    /// A public key line for a user.
    KeyAdd(String),
    /// Users to add to (or remove from) a group.
    Members {
        group: String,
        add: bool,
    },
}

impl Ask {
    fn title(&self) -> String {
        match self {
            Ask::Find => " Find text that appeared on a screen ".into(),
            Ask::GroupAdd => " New group ".into(),
            Ask::NodeAdd => " New node ".into(),
            Ask::NodeMove(from) => format!(" Rename or move {from} "),
            Ask::KeyAdd(user) => format!(" Add a public key for {user} "),
            Ask::Members { group, add: true } => format!(" Add members to {group} "),
            Ask::Members { group, add: false } => format!(" Remove members from {group} "),
        }
    }

    fn placeholder(&self) -> &'static str {
        match self {
            Ask::Find => "a word, a hostname, an error message…",
            Ask::GroupAdd => "ops",
            Ask::NodeAdd | Ask::NodeMove(_) => "/DEFAULT/prod/web",
            Ask::KeyAdd(_) => "ssh-ed25519 AAAA... comment",
            Ask::Members { .. } => "user names, comma separated",
        }
    }
}

#[derive(Debug, Clone)]
pub(super) enum ReasonFor {
    Kill(String),
    Logout(String),
}

impl Desk {
    /// A key while a box is open: it goes to the box, which stays open
    /// unless the key closes it (then `self.dialog` is left empty).
    pub(super) fn handle_dialog(&mut self, dialog: Dialog, key: Key) -> Option<DeskOutcome> {
        match dialog {
            Dialog::Test(report) => match (key, report.untrusted_key.clone()) {
                (Key::Char('t'), Some(key)) => {
                    self.dialog = Some(Dialog::Confirm {
                        text: format!(
                            "Pin the key {} now presents? Connections then accept only that key.",
                            report.asset
                        ),
                        op: Op::AssetTrust {
                            asset: report.asset,
                            key,
                        },
                    });
                    None
                }
                _ => None,
            },
            Dialog::Keys(keys) => self.keys_key(keys, key),
            Dialog::Help | Dialog::Secret { .. } | Dialog::Text { .. } => {
                // Any key closes; the secret is dropped (and zeroised) here.
                None
            }
            Dialog::Confirm { text, op } => match key {
                Key::Char('y' | 'Y') | Key::Enter => Some(DeskOutcome::Op(op)),
                Key::Char('n' | 'N' | 'q') | Key::Esc | Key::Ctrl('c') => None,
                _ => {
                    self.dialog = Some(Dialog::Confirm { text, op });
                    None
                }
            },
            Dialog::Reason {
                title,
                field,
                target,
            } => self.reason_key(title, field, target, key),
            Dialog::Approval(request) => match key {
                Key::Char('a' | 'y') => Some(DeskOutcome::Op(Op::Decide {
                    id: request.id,
                    approve: true,
                })),
                Key::Char('d' | 'n') => Some(DeskOutcome::Op(Op::Decide {
                    id: request.id,
                    approve: false,
                })),
                Key::Esc | Key::Char('l') => {
                    self.set_aside.push(request.id);
                    None
                }
                _ => {
                    self.dialog = Some(Dialog::Approval(request));
                    None
                }
            },
            Dialog::Prompt(ask, field) => self.prompt_key(ask, field, key),
            Dialog::History(form) => self.history_key(form, key),
            Dialog::Edit(form) => self.edit_key(form, key),
        }
    }

    fn keys_key(&mut self, mut keys: Keys, key: Key) -> Option<DeskOutcome> {
        match keys.handle(&key) {
            KeysKey::Close => None,
            KeysKey::Add(user) => {
                self.dialog = Some(Dialog::Prompt(Ask::KeyAdd(user), Field::plain(16 * 1024)));
                None
            }
            KeysKey::Remove { user, fingerprint } => {
                self.dialog = Some(Dialog::Confirm {
                    text: format!(
                        "Remove {user}'s key {fingerprint}? Logins with it stop working."
                    ),
                    op: Op::KeyRemove { user, fingerprint },
                });
                None
            }
            KeysKey::Stay => {
                self.dialog = Some(Dialog::Keys(keys));
                None
            }
        }
    }

    fn reason_key(
        &mut self,
        title: String,
        mut field: Field,
        target: ReasonFor,
        key: Key,
    ) -> Option<DeskOutcome> {
        match key {
            Key::Esc | Key::Ctrl('c') => None,
            Key::Enter => {
                let reason = field.text().trim().to_string();
                let reason = if reason.is_empty() {
                    crate::live::DEFAULT_KILL_REASON.to_string()
                } else {
                    reason
                };
                Some(DeskOutcome::Op(match target {
                    ReasonFor::Kill(session) => Op::Kill { session, reason },
                    ReasonFor::Logout(user) => Op::ForceLogout { user, reason },
                }))
            }
            other => {
                field.handle(&other);
                self.dialog = Some(Dialog::Reason {
                    title,
                    field,
                    target,
                });
                None
            }
        }
    }

    fn prompt_key(&mut self, ask: Ask, mut field: Field, key: Key) -> Option<DeskOutcome> {
        match key {
            Key::Esc | Key::Ctrl('c') => None,
            Key::Enter if !field.text().trim().is_empty() => {
                let text = field.text().trim().to_string();
                match ask {
                    Ask::Find => self.find_on_screen(text),
                    Ask::GroupAdd => Some(DeskOutcome::Op(Op::GroupAdd { name: text })),
                    Ask::NodeAdd => Some(DeskOutcome::Op(Op::NodeAdd { path: text })),
                    Ask::NodeMove(from) if from == text => None,
                    Ask::NodeMove(from) => Some(DeskOutcome::Op(Op::NodeMove { from, to: text })),
                    Ask::KeyAdd(user) => Some(DeskOutcome::Op(Op::KeyAdd { user, line: text })),
                    Ask::Members { group, add } => Some(DeskOutcome::Op(Op::Members {
                        group,
                        users: super::super::form::list(&text),
                        add,
                    })),
                }
            }
            other => {
                field.handle(&other);
                self.dialog = Some(Dialog::Prompt(ask, field));
                None
            }
        }
    }

    pub(super) fn render_dialog(&self, frame: &mut Frame, area: Rect, theme: &Theme) {
        let Some(dialog) = &self.dialog else {
            return;
        };
        match dialog {
            Dialog::Help => help_box(frame, area, theme, &self.help_keys()),
            Dialog::Confirm { text, .. } => {
                let rect = centered(area, 60, 6);
                frame.render_widget(Clear, rect);
                frame.render_widget(
                    Paragraph::new(vec![
                        Line::from(Span::styled(text.clone(), theme.text())),
                        Line::default(),
                        hint_line(theme, &[("y", "yes"), ("n Esc", "no")]),
                    ])
                    .wrap(Wrap { trim: true })
                    .block(boxed(" Confirm ".into(), theme.warning())),
                    rect,
                );
            }
            Dialog::Reason { title, field, .. } => render_reason(title, field, frame, area, theme),
            Dialog::Secret { title, secret } => {
                let rect = centered(area, 64, 7);
                frame.render_widget(Clear, rect);
                frame.render_widget(
                    Paragraph::new(vec![
                        Line::from(Span::styled(
                            " Hand this over now; it is not shown again:",
                            theme.text(),
                        )),
                        Line::default(),
                        Line::from(Span::styled(format!(" {}", secret.expose()), theme.title())),
                        Line::default(),
                        hint_line(theme, &[("any key", "close")]),
                    ])
                    .block(boxed(format!(" {title} "), theme.border_focused())),
                    rect,
                );
            }
            Dialog::Edit(form) => form.render(frame, area, theme),
            Dialog::History(form) => form.render(frame, area, theme, None),
            Dialog::Keys(keys) => keys.render(frame, area, theme),
            Dialog::Test(report) => render_test(report, frame, area, theme),
            Dialog::Text { title, lines } => {
                let height = (lines.len() as u16 + 3).min(area.height);
                let rect = centered(area, area.width.saturating_sub(4).min(100), height);
                frame.render_widget(Clear, rect);
                let mut text: Vec<Line> = lines
                    .iter()
                    .map(|l| Line::from(Span::styled(format!(" {l}"), theme.text())))
                    .collect();
                text.push(hint_line(theme, &[("any key", "close")]));
                frame.render_widget(
                    Paragraph::new(text)
                        .wrap(Wrap { trim: false })
                        .block(boxed(title.clone(), theme.border_focused())),
                    rect,
                );
            }
            Dialog::Prompt(ask, field) => render_prompt(ask, field, frame, area, theme),
            Dialog::Approval(r) => self.render_approval(r, frame, area, theme),
        }
    }

    fn render_approval(&self, r: &ApprovalRequest, frame: &mut Frame, area: Rect, theme: &Theme) {
        let rect = centered(area, 72, 10);
        frame.render_widget(Clear, rect);
        let field = |name: &str, value: String| {
            Line::from(vec![
                Span::styled(format!(" {name:<9}"), theme.muted()),
                Span::styled(value, theme.text()),
            ])
        };
        // Four eyes: the one who asked cannot answer (`ops` refuses).
        let (title, hint) = if r.user == self.user {
            (
                " Your own request: another administrator must answer it ",
                hint_line(theme, &[("Esc", "close")]),
            )
        } else {
            (
                " Waiting for your approval ",
                hint_line(
                    theme,
                    &[("a", "approve"), ("d", "deny"), ("Esc", "later (F5)")],
                ),
            )
        };
        frame.render_widget(
            Paragraph::new(vec![
                field("who", format!("{} on {} as {}", r.user, r.asset, r.account)),
                field("rule", r.rule.clone()),
                field("asked", r.asked_at.strftime("%H:%M:%S UTC").to_string()),
                Line::default(),
                Line::from(Span::styled(format!(" {}", r.command), theme.title())),
                Line::default(),
                hint,
            ])
            .wrap(Wrap { trim: false })
            .block(boxed(title.into(), theme.warning())),
            rect,
        );
    }
}

fn boxed<'a>(title: String, style: Style) -> Block<'a> {
    Block::default()
        .borders(Borders::ALL)
        .border_style(style)
        .title(Span::styled(title, style))
}

fn render_reason(title: &str, field: &Field, frame: &mut Frame, area: Rect, theme: &Theme) {
    let rect = centered(area, 64, 6);
    frame.render_widget(Clear, rect);
    let block = boxed(title.to_string(), theme.danger());
    let inner = block.inner(rect);
    frame.render_widget(block, rect);
    if inner.height >= 4 {
        frame.render_widget(
            Paragraph::new(Span::styled(" Reason shown to the person:", theme.muted())),
            Rect::new(inner.x, inner.y, inner.width, 1),
        );
        field.render(
            frame,
            Rect::new(inner.x + 1, inner.y + 1, inner.width.saturating_sub(2), 1),
            theme.input(),
            Some((crate::live::DEFAULT_KILL_REASON, theme.placeholder())),
            true,
        );
        frame.render_widget(
            Paragraph::new(hint_line(theme, &[("Enter", "end it"), ("Esc", "cancel")])),
            Rect::new(inner.x, inner.y + 3, inner.width, 1),
        );
    }
}

fn render_test(report: &TestReport, frame: &mut Frame, area: Rect, theme: &Theme) {
    let height = (report.lines.len() as u16 + 4).min(area.height);
    let rect = centered(area, area.width.saturating_sub(4).min(100), height);
    frame.render_widget(Clear, rect);
    let style = if report.ok {
        theme.success()
    } else {
        theme.danger()
    };
    let mut text: Vec<Line> = report
        .lines
        .iter()
        .map(|l| Line::from(Span::styled(format!(" {l}"), theme.text())))
        .collect();
    text.push(Line::default());
    let hints: &[(&str, &str)] = if report.untrusted_key.is_some() {
        &[("t", "trust the presented key"), ("any key", "close")]
    } else {
        &[("any key", "close")]
    };
    text.push(hint_line(theme, hints));
    let title = if report.ok {
        format!(" {}: connection works ", report.asset)
    } else {
        format!(" {}: connection failed ", report.asset)
    };
    frame.render_widget(
        Paragraph::new(text)
            .wrap(Wrap { trim: false })
            .block(boxed(title, style)),
        rect,
    );
}

fn render_prompt(ask: &Ask, field: &Field, frame: &mut Frame, area: Rect, theme: &Theme) {
    let rect = centered(area, 64, 5);
    frame.render_widget(Clear, rect);
    let block = boxed(ask.title(), theme.border_focused());
    let inner = block.inner(rect);
    frame.render_widget(block, rect);
    if inner.height >= 3 {
        field.render(
            frame,
            Rect::new(inner.x + 1, inner.y, inner.width.saturating_sub(2), 1),
            theme.input(),
            Some((ask.placeholder(), theme.placeholder())),
            true,
        );
        frame.render_widget(
            Paragraph::new(hint_line(theme, &[("Enter", "ok"), ("Esc", "cancel")])),
            Rect::new(inner.x, inner.y + 2, inner.width, 1),
        );
    }
}
