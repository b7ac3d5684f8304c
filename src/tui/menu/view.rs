//! Drawing the menu. Only the rows on screen are built, so a frame costs
//! the same with 100 assets or 100k.

use ratatui::Frame;
use ratatui::layout::{Alignment, Constraint, Layout, Rect};
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Clear, Paragraph};

use super::super::theme::Theme;
use super::super::{centered, help_box, hint_line, pad, pane, scroll, severity_style, truncate};
use super::{Focus, MENU_PROTOCOLS, Menu, Mode};

/// Keys listed by `?`.
const HELP: &[(&str, &str)] = &[
    ("type", "filter by name, address, node or comment"),
    ("/", "start a filter (then q and ? are typed too)"),
    ("Esc", "clear the filter; quit when it is empty"),
    ("↑ ↓ PgUp PgDn", "move"),
    ("Home End", "first / last"),
    ("Enter", "connect to the selected asset"),
    ("Tab", "switch between nodes and assets"),
    ("← →", "fold / unfold a node"),
    ("Backspace", "delete a filter character; Ctrl-U clears"),
    ("1-9", "pick a choice in a chooser"),
    ("q  Ctrl-C", "quit (Ctrl-C in a dialog goes back)"),
];

impl Menu {
    /// Draws the menu over the whole frame.
    pub fn render(&self, frame: &mut Frame, theme: &Theme) {
        self.render_in(frame, frame.area(), theme, true);
    }

    /// Draws the menu into `area`; without its own header line when a
    /// surrounding screen (the staff desk) draws one.
    pub fn render_in(&self, frame: &mut Frame, area: Rect, theme: &Theme, with_header: bool) {
        // Paint every cell, so nothing of a previous screen shows through.
        frame.render_widget(Block::default().style(theme.text()), area);
        let show_notice = self.notice.is_some() && area.height >= 10;
        let show_status = area.height >= 6;
        let [header, notice, filter, body, status] = Layout::vertical([
            Constraint::Length(u16::from(with_header)),
            Constraint::Length(u16::from(show_notice)),
            Constraint::Length(1),
            Constraint::Min(0),
            Constraint::Length(u16::from(show_status)),
        ])
        .areas(area);
        if with_header {
            self.render_header(frame, header, theme);
        }
        if let Some((severity, text)) = self.notice.as_ref().filter(|_| show_notice) {
            frame.render_widget(
                Paragraph::new(Span::styled(
                    format!(" {text}"),
                    severity_style(theme, *severity),
                )),
                notice,
            );
        }
        self.render_filter(frame, filter, theme);
        self.render_body(frame, body, theme);
        if show_status {
            self.render_status(frame, status, theme);
        }
        self.render_dialog(frame, area, theme);
    }

    fn render_header(&self, frame: &mut Frame, area: Rect, theme: &Theme) {
        let left = Line::from(vec![
            Span::styled(" rampart ", theme.title()),
            Span::styled(self.user.clone(), theme.header()),
            Span::styled(format!(" ({})", self.role), theme.muted()),
        ]);
        frame.render_widget(Paragraph::new(left), area);
        if area.width >= 50 {
            let right = hint_line(theme, &[("?", "help"), ("q", "quit")]);
            frame.render_widget(Paragraph::new(right).alignment(Alignment::Right), area);
        }
    }

    fn render_filter(&self, frame: &mut Frame, area: Rect, theme: &Theme) {
        let label = " Filter: ";
        let [label_area, text_area] =
            Layout::horizontal([Constraint::Length(label.len() as u16), Constraint::Min(0)])
                .areas(area);
        frame.render_widget(
            Paragraph::new(Span::styled(label, theme.muted())),
            label_area,
        );
        let active = matches!(self.mode, Mode::Browse) && self.focus == Focus::List;
        let line = if self.query_text.is_empty() {
            let hint = if self.typing { "" } else { "type to filter" };
            Line::from(Span::styled(hint, theme.placeholder()))
        } else {
            // Show the end of a query longer than the field.
            let width = usize::from(text_area.width.saturating_sub(1));
            let skip = self.query_text.chars().count().saturating_sub(width);
            Line::from(Span::styled(
                self.query_text.chars().skip(skip).collect::<String>(),
                theme.text(),
            ))
        };
        frame.render_widget(Paragraph::new(line), text_area);
        if active && (self.typing || !self.query_text.is_empty()) {
            let len = self.query_text.chars().count() as u16;
            let x = len.min(text_area.width.saturating_sub(1));
            frame.set_cursor_position((text_area.x + x, text_area.y));
        }
    }

    fn render_body(&self, frame: &mut Frame, area: Rect, theme: &Theme) {
        let mut view = self.view.get();
        view.tree_shown = area.width >= 60 && area.height >= 6 && !self.tree.nodes.is_empty();
        let right = if view.tree_shown {
            let tree_width = (area.width / 4).clamp(18, 30);
            let [tree, right] =
                Layout::horizontal([Constraint::Length(tree_width), Constraint::Min(0)])
                    .areas(area);
            self.render_tree(frame, tree, theme, &mut view);
            right
        } else {
            area
        };
        let show_details = right.height >= 16 && right.width >= 30;
        let [list, details] = Layout::vertical([
            Constraint::Min(0),
            Constraint::Length(if show_details { 7 } else { 0 }),
        ])
        .areas(right);
        self.render_list(frame, list, theme, &mut view);
        if show_details {
            self.render_details(frame, details, theme);
        }
        self.view.set(view);
    }

    fn render_tree(
        &self,
        frame: &mut Frame,
        area: Rect,
        theme: &Theme,
        view: &mut super::ViewState,
    ) {
        let focused = self.focus == Focus::Tree && matches!(self.mode, Mode::Browse);
        let block = pane(theme, " Nodes ".to_string(), focused);
        let inner = block.inner(area);
        frame.render_widget(block, area);
        let height = usize::from(inner.height);
        view.tree_height = height;
        view.tree_offset = scroll(
            view.tree_offset,
            self.tree_row,
            height,
            self.tree.rows().len(),
        );
        let width = usize::from(inner.width);
        let lines: Vec<Line> = self
            .tree
            .rows()
            .iter()
            .enumerate()
            .skip(view.tree_offset)
            .take(height)
            .map(|(row, node)| {
                let (text, style) = match node.and_then(|n| self.tree.node(n).map(|d| (n, d))) {
                    None => (format!("All assets ({})", self.entries.len()), theme.node()),
                    Some((id, n)) => {
                        let marker = if !self.tree.has_children(id) {
                            "  "
                        } else if self.tree.is_expanded(id) {
                            "▾ "
                        } else {
                            "▸ "
                        };
                        let indent = " ".repeat(usize::from(n.depth).min(8));
                        (
                            format!("{indent}{marker}{} ({})", n.label(), n.count),
                            theme.text(),
                        )
                    }
                };
                let style = if row == self.tree_row {
                    if focused {
                        theme.selected()
                    } else {
                        theme.selected_unfocused()
                    }
                } else {
                    style
                };
                Line::from(Span::styled(pad(&text, width), style))
            })
            .collect();
        frame.render_widget(Paragraph::new(lines), inner);
    }

    fn render_list(
        &self,
        frame: &mut Frame,
        area: Rect,
        theme: &Theme,
        view: &mut super::ViewState,
    ) {
        let focused = self.focus == Focus::List;
        let (shown, total) = self.counts();
        let scope = self
            .scope
            .and_then(|n| self.tree.node(n))
            .map(|n| format!(" in {}", n.path))
            .unwrap_or_default();
        let count = if self.query.is_empty() && self.scope.is_none() {
            format!("{total}")
        } else {
            format!("{shown} of {total}")
        };
        let title = format!(" Assets{scope} ({count}) ");
        let inner = if area.height >= 3 && area.width >= 20 {
            let block = pane(theme, title, focused && matches!(self.mode, Mode::Browse));
            let inner = block.inner(area);
            frame.render_widget(block, area);
            inner
        } else {
            area
        };
        let height = usize::from(inner.height);
        view.list_height = height;
        view.list_offset = scroll(view.list_offset, self.selected, height, self.visible.len());
        if self.visible.is_empty() {
            let text = if self.entries.is_empty() {
                "No assets are available to you. Ask an administrator for access.".to_string()
            } else {
                format!("No asset matches \"{}\".", self.query_text)
            };
            frame.render_widget(Paragraph::new(Span::styled(text, theme.muted())), inner);
            return;
        }
        let rows: Vec<u32> = self
            .visible
            .iter()
            .skip(view.list_offset)
            .take(height)
            .copied()
            .collect();
        let width = usize::from(inner.width);
        let name_w = rows
            .iter()
            .filter_map(|&i| self.entries.get(i as usize))
            .map(|e| e.asset.name().chars().count())
            .max()
            .unwrap_or(0)
            .min(width * 2 / 5)
            .max(4);
        let addr_w = rows
            .iter()
            .filter_map(|&i| self.entries.get(i as usize))
            .map(|e| e.asset.address().chars().count())
            .max()
            .unwrap_or(0)
            .min(width.saturating_sub(name_w + 4) / 2)
            .min(40);
        let recent_count = if self.query.is_empty() {
            self.recent
                .iter()
                .filter(|r| self.find(r).is_some_and(|i| self.in_scope(i)))
                .count()
        } else {
            0
        };
        let lines: Vec<Line> = rows
            .iter()
            .enumerate()
            .filter_map(|(k, &i)| {
                let e = self.entries.get(i as usize)?;
                let pos = view.list_offset + k;
                let selected = pos == self.selected;
                let base = if selected {
                    if focused {
                        theme.selected()
                    } else {
                        theme.selected_unfocused()
                    }
                } else {
                    theme.text()
                };
                let mut spans = Vec::with_capacity(8);
                let gutter = if pos < recent_count { "• " } else { "  " };
                let gutter_style = if selected { base } else { theme.muted() };
                spans.push(Span::styled(gutter, gutter_style));
                let name = truncate(e.asset.name(), name_w);
                let marks = self.query.name_positions(&e.hay);
                spans.extend(highlighted(
                    &name,
                    &marks,
                    base,
                    base.patch(theme.highlight()),
                ));
                // Paragraph clips at the pane's edge; padding only makes a
                // selected row's bar span the pane.
                let name_pad = name_w.saturating_sub(name.chars().count()) + 2;
                spans.push(Span::styled(" ".repeat(name_pad), base));
                spans.push(Span::styled(
                    pad(&truncate(e.asset.address(), addr_w), addr_w + 2),
                    base,
                ));
                let note = if e.asset.comment().is_empty() {
                    e.asset.nodes().first().map(String::as_str).unwrap_or("")
                } else {
                    e.asset.comment()
                };
                let note_style = if selected { base } else { theme.muted() };
                spans.push(Span::styled(pad(note, width), note_style));
                Some(Line::from(spans))
            })
            .collect();
        frame.render_widget(Paragraph::new(lines), inner);
    }

    fn render_details(&self, frame: &mut Frame, area: Rect, theme: &Theme) {
        let Some(asset) = self.selected_asset() else {
            frame.render_widget(pane(theme, " Details ".into(), false), area);
            return;
        };
        let block = pane(theme, format!(" {} ", asset.name()), false);
        let label = |s: &'static str| Span::styled(format!("{s:<10}"), theme.muted());
        let mut protocols = vec![label("Protocols")];
        let mut greyed = false;
        for (n, p) in asset.protocols().enumerate() {
            if n > 0 {
                protocols.push(Span::raw(" "));
            }
            let usable = MENU_PROTOCOLS.contains(&p.name.as_str());
            greyed |= !usable;
            let style = if usable { theme.text() } else { theme.muted() };
            protocols.push(Span::styled(p.to_string(), style));
        }
        if greyed {
            protocols.push(Span::styled(
                "  (greyed: not from this menu)",
                theme.muted(),
            ));
        }
        let mut accounts: Vec<String> =
            asset.accounts().map(|a| a.username().to_string()).collect();
        if asset.input_allowed() {
            accounts.push("@INPUT".into());
        }
        let lines = vec![
            Line::from(vec![
                label("Address"),
                Span::styled(asset.address().to_string(), theme.text()),
                Span::styled("   Platform ", theme.muted()),
                Span::styled(asset.platform().to_string(), theme.text()),
            ]),
            Line::from(vec![
                label("Nodes"),
                Span::styled(asset.nodes().join(", "), theme.node()),
            ]),
            Line::from(protocols),
            Line::from(vec![
                label("Accounts"),
                Span::styled(accounts.join(", "), theme.text()),
            ]),
            Line::from(vec![
                label("Comment"),
                Span::styled(asset.comment().to_string(), theme.text()),
            ]),
        ];
        frame.render_widget(Paragraph::new(lines).block(block), area);
    }

    fn render_status(&self, frame: &mut Frame, area: Rect, theme: &Theme) {
        let line = if let Some((severity, text)) = &self.message {
            Line::from(Span::styled(
                format!(" {text}"),
                severity_style(theme, *severity),
            ))
        } else {
            let hints: &[(&str, &str)] = match (&self.mode, self.focus) {
                (Mode::Browse, Focus::List) => &[
                    ("↑↓", "move"),
                    ("Enter", "connect"),
                    ("Tab", "nodes"),
                    ("type", "filter"),
                    ("?", "help"),
                    ("q", "quit"),
                ],
                (Mode::Browse, Focus::Tree) => &[
                    ("↑↓", "node"),
                    ("←→", "fold"),
                    ("Enter/Tab", "assets"),
                    ("?", "help"),
                    ("q", "quit"),
                ],
                (Mode::Help, _) => &[("any key", "close")],
                (Mode::Account { .. } | Mode::Protocol { .. }, _) => {
                    &[("↑↓", "choose"), ("Enter", "select"), ("Esc", "back")]
                }
                (Mode::Username { .. } | Mode::Password { .. }, _) => {
                    &[("Enter", "next"), ("Esc", "back")]
                }
            };
            hint_line(theme, hints)
        };
        frame.render_widget(Paragraph::new(line).style(theme.status_bar()), area);
    }

    fn render_dialog(&self, frame: &mut Frame, area: Rect, theme: &Theme) {
        match &self.mode {
            Mode::Browse => {}
            Mode::Help => help_box(frame, area, theme, HELP),
            Mode::Account {
                entry,
                choices,
                sel,
            } => {
                let labels: Vec<&str> = choices.iter().map(|c| c.label()).collect();
                self.chooser(frame, area, theme, *entry, "Account", &labels, *sel);
            }
            Mode::Protocol {
                entry,
                choices,
                sel,
                ..
            } => {
                let labels: Vec<&str> = choices.iter().map(String::as_str).collect();
                self.chooser(frame, area, theme, *entry, "Protocol", &labels, *sel);
            }
            Mode::Username { entry, field, .. } => {
                self.prompt(frame, area, theme, *entry, None, field);
            }
            Mode::Password {
                entry,
                username,
                field,
                ..
            } => {
                self.prompt(frame, area, theme, *entry, Some(username), field);
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn chooser(
        &self,
        frame: &mut Frame,
        area: Rect,
        theme: &Theme,
        entry: u32,
        what: &str,
        labels: &[&str],
        sel: usize,
    ) {
        let name = self
            .entries
            .get(entry as usize)
            .map_or("", |e| e.asset.name());
        let title = format!(" {what} on {name} ");
        let width = labels
            .iter()
            .map(|l| l.chars().count() + 6)
            .chain([title.chars().count() + 4])
            .max()
            .unwrap_or(20)
            .min(usize::from(area.width)) as u16;
        let rect = centered(area, width, labels.len().min(20) as u16 + 2);
        let inner_w = usize::from(width.saturating_sub(2));
        let top = (sel + 1).saturating_sub(usize::from(rect.height.saturating_sub(2)));
        let lines: Vec<Line> = labels
            .iter()
            .enumerate()
            .skip(top)
            .map(|(i, l)| {
                let style = if i == sel {
                    theme.selected()
                } else {
                    theme.text()
                };
                let number = if i < 9 {
                    format!(" {} ", i + 1)
                } else {
                    "   ".into()
                };
                Line::from(Span::styled(pad(&format!("{number}{l}"), inner_w), style))
            })
            .collect();
        frame.render_widget(Clear, rect);
        frame.render_widget(
            Paragraph::new(lines)
                .block(pane(theme, title, true))
                .style(theme.text()),
            rect,
        );
    }

    /// The @INPUT prompt. The password row only ever shows `*`s.
    fn prompt(
        &self,
        frame: &mut Frame,
        area: Rect,
        theme: &Theme,
        entry: u32,
        username: Option<&String>,
        field: &super::Field,
    ) {
        let name = self
            .entries
            .get(entry as usize)
            .map_or("", |e| e.asset.name());
        let rect = centered(area, 50, 6);
        let block = pane(theme, format!(" Log in to {name} "), true);
        let inner = block.inner(rect);
        frame.render_widget(Clear, rect);
        frame.render_widget(block.style(theme.text()), rect);
        let [user_row, pass_row, _, hint_row] =
            Layout::vertical([Constraint::Length(1); 4]).areas(inner);
        let split = |row: Rect| {
            let [l, f] =
                Layout::horizontal([Constraint::Length(11), Constraint::Min(1)]).areas(row);
            (l, f)
        };
        let (ul, uf) = split(user_row);
        let (pl, pf) = split(pass_row);
        frame.render_widget(Paragraph::new(Span::styled(" Username", theme.muted())), ul);
        frame.render_widget(Paragraph::new(Span::styled(" Password", theme.muted())), pl);
        match username {
            None => {
                field.render(
                    frame,
                    uf,
                    theme.input(),
                    Some(("type a username", theme.placeholder())),
                    true,
                );
                frame.render_widget(Paragraph::new("").style(theme.input()), pf);
            }
            Some(user) => {
                frame.render_widget(Paragraph::new(Span::styled(user.clone(), theme.text())), uf);
                field.render(frame, pf, theme.input(), None, true);
            }
        }
        frame.render_widget(
            Paragraph::new(hint_line(theme, &[("Enter", "next"), ("Esc", "back")])),
            hint_row,
        );
    }
}

/// Splits `name` into spans, highlighting the characters at the byte
/// offsets `marks` of its lowercased form. Highlighting is skipped when
/// lowercasing changed the length (rare scripts), rather than mark the
/// wrong characters.
fn highlighted(name: &str, marks: &[usize], base: Style, mark: Style) -> Vec<Span<'static>> {
    if marks.is_empty() || name.to_lowercase().len() != name.len() {
        return vec![Span::styled(name.to_string(), base)];
    }
    let mut spans = Vec::new();
    let mut run = String::new();
    let mut run_marked = false;
    for (at, c) in name.char_indices() {
        let marked = marks.binary_search(&at).is_ok();
        if marked != run_marked && !run.is_empty() {
            spans.push(Span::styled(
                std::mem::take(&mut run),
                if run_marked { mark } else { base },
            ));
        }
        run_marked = marked;
        run.push(c);
    }
    if !run.is_empty() {
        spans.push(Span::styled(run, if run_marked { mark } else { base }));
    }
    spans
}
