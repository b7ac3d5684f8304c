//! Drawing the replay: the recorded terminal copied cell by cell from the
//! vt100 model into the frame (cropped around the cursor when it is larger
//! than the room, centred when smaller), or a desktop's picture scaled into
//! half blocks (or its room left blank for an image: `tui::graphics`), the
//! command pane, the progress
//! line and the status line. Only what is on screen is built, so a frame
//! costs the same with ten markers or fifty thousand.

use ratatui::Frame;
use ratatui::layout::{Alignment, Constraint, Layout, Rect};
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, Paragraph};

use super::super::graphics::Graphics;
use super::super::term::{copy_picture, copy_screen};
use super::super::theme::Theme;
use super::super::{centered, hint_line, pad, pane, scroll, severity_style};
use super::{Focus, Replay, ViewState, percent};
use crate::record::Timeline;

/// Keys listed by `?`.
const HELP: &[(&str, &str)] = &[
    ("Space", "play / pause (at the end: from the start)"),
    ("+ -  > <", "speed 0.25× to 16×"),
    ("← →", "back / forward 5 s"),
    ("↑ ↓  PgUp PgDn", "back / forward 30 s"),
    ("p n  [ ]", "previous / next command"),
    ("Home End", "start / end"),
    ("c", "show / hide the command list"),
    ("Tab", "move between the recording and the command list"),
    ("Enter", "in the command list: jump to the command"),
    ("i", "idle compression on / off (long pauses shortened)"),
    ("z", "the recording alone, over the whole screen"),
    ("q  Esc", "close the replay"),
];

impl Replay {
    /// Draws the replay over the whole frame.
    pub fn render(&self, frame: &mut Frame, theme: &Theme) {
        let area = frame.area();
        // Paint every cell, so nothing of a previous screen shows through.
        frame.render_widget(Block::default().style(theme.text()), area);
        self.picture_room.set(None);
        let mut view = self.view.get();
        let chrome = !self.zoom && area.height >= 8;
        let [header, body, progress, status] = Layout::vertical([
            Constraint::Length(u16::from(chrome)),
            Constraint::Min(0),
            Constraint::Length(u16::from(chrome)),
            Constraint::Length(u16::from(area.height >= 3)),
        ])
        .areas(area);
        if chrome {
            self.render_header(frame, header, theme);
            self.render_progress(frame, progress, theme);
        }
        // A desktop has no commands: its list is there only when asked for.
        let wanted = self
            .commands
            .unwrap_or(!self.player.is_desktop() && body.width >= super::AUTO_PANE_WIDTH);
        view.commands_shown = chrome && wanted && body.width >= 50 && body.height >= 5;
        let crop = if view.commands_shown {
            let pane = (body.width / 3).clamp(24, 44);
            let [left, right] =
                Layout::horizontal([Constraint::Min(0), Constraint::Length(pane)]).areas(body);
            self.render_commands(frame, right, theme, &mut view);
            self.render_terminal(frame, left, theme, chrome)
        } else {
            self.render_terminal(frame, body, theme, chrome)
        };
        self.view.set(view);
        self.render_status(frame, status, theme, chrome, crop.filter(|_| !chrome));
        if self.help {
            // An image would cover the box.
            self.picture_room.set(None);
            self.render_help(frame, area, theme);
        }
    }

    fn render_header(&self, frame: &mut Frame, area: Rect, theme: &Theme) {
        let header = self.player.header();
        let mut spans = vec![Span::styled(" Replay ", theme.title())];
        match &header.rampart {
            Some(r) => {
                spans.push(Span::styled(
                    format!("{} → {}@{}", r.user, r.account, r.asset),
                    theme.header(),
                ));
                spans.push(Span::styled(format!(" {}", r.protocol), theme.muted()));
            }
            None => {
                let name = header.title.clone().unwrap_or_else(|| {
                    self.player
                        .path()
                        .file_name()
                        .map(|n| n.to_string_lossy().into_owned())
                        .unwrap_or_default()
                });
                spans.push(Span::styled(name, theme.header()));
            }
        }
        if let Some(start) = header
            .timestamp
            .and_then(|t| jiff::Timestamp::from_second(t).ok())
        {
            spans.push(Span::styled(
                format!("  {}", start.strftime("%Y-%m-%d %H:%M:%S UTC")),
                theme.muted(),
            ));
        }
        frame.render_widget(Paragraph::new(Line::from(spans)), area);
        if area.width >= 70 {
            let right = hint_line(theme, &[("?", "help"), ("q", "close")]);
            frame.render_widget(Paragraph::new(right).alignment(Alignment::Right), area);
        }
    }

    /// Draws the recorded terminal; returns the crop note when it does not
    /// fit (shown in the frame title, or by the caller without a frame).
    fn render_terminal(
        &self,
        frame: &mut Frame,
        area: Rect,
        theme: &Theme,
        framed: bool,
    ) -> Option<String> {
        if self.player.is_desktop() {
            self.render_picture(frame, area, theme, framed);
            return None;
        }
        let (cols, rows) = self.player.recorded_size();
        let border = u16::from(framed) * 2;
        let room = Rect::new(
            area.x,
            area.y,
            area.width.saturating_sub(border),
            area.height.saturating_sub(border),
        );
        let cropped = cols > room.width || rows > room.height;
        let note = cropped.then(|| format!("cropped: recorded at {cols}×{rows}"));
        // Hug the recording when it is smaller than the room.
        let outer = centered(
            area,
            cols.saturating_add(border).min(area.width),
            rows.saturating_add(border).min(area.height),
        );
        let inner = if framed {
            let focused = self.focus == Focus::Terminal && self.view.get().commands_shown;
            let mut block = pane(theme, format!(" {cols}×{rows} "), focused);
            if let Some(note) = &note {
                block = block.title(
                    Line::from(Span::styled(format!(" {note} "), theme.warning())).right_aligned(),
                );
            }
            let inner = block.inner(outer);
            frame.render_widget(block, outer);
            inner
        } else {
            outer
        };
        copy_screen(
            self.player.screen(),
            inner,
            frame.buffer_mut(),
            !theme.is_mono(),
        );
        note
    }

    /// Draws a desktop recording's picture, as large as the room allows.
    fn render_picture(&self, frame: &mut Frame, area: Rect, theme: &Theme, framed: bool) {
        let picture = self.player.picture();
        let inner = if framed {
            let focused = self.focus == Focus::Terminal && self.view.get().commands_shown;
            let title = match &picture {
                Some(p) => format!(" desktop {}×{} ", p.width, p.height),
                None => " desktop ".to_string(),
            };
            let block = pane(theme, title, focused);
            let inner = block.inner(area);
            frame.render_widget(block, area);
            inner
        } else {
            area
        };
        match picture {
            // An image goes into the blank room after the frame (see
            // Screen::draw_picture); without colour, half blocks' shades.
            Some(_) if self.graphics != Graphics::Blocks && !theme.is_mono() => {
                self.picture_room.set(Some(inner));
            }
            Some(p) => {
                copy_picture(&p, inner, frame.buffer_mut(), !theme.is_mono());
            }
            None => frame.render_widget(
                Paragraph::new(Span::styled(
                    " nothing drawn yet at this moment",
                    theme.muted(),
                )),
                inner,
            ),
        }
    }

    fn render_commands(&self, frame: &mut Frame, area: Rect, theme: &Theme, view: &mut ViewState) {
        let markers = self.player.markers();
        let focused = self.focus == Focus::Commands;
        let mut title = format!(" Commands ({}", markers.len());
        if self.player.markers_dropped() > 0 {
            title.push_str(&format!(
                " of {}",
                markers.len() as u64 + self.player.markers_dropped()
            ));
        }
        if let Some(p) = self.player.index_progress() {
            title.push_str(&format!(", indexing… {}%", percent(p)));
        }
        title.push_str(") ");
        let block = pane(theme, title, focused);
        let inner = block.inner(area);
        frame.render_widget(block, area);
        let height = usize::from(inner.height);
        view.list_height = height;
        let current = self.player.marker_at(self.player.position());
        if markers.is_empty() {
            let text = if self.player.index_progress().is_some() {
                "looking for commands…"
            } else {
                "no commands were logged"
            };
            frame.render_widget(
                Paragraph::new(Span::styled(format!(" {text}"), theme.muted())),
                inner,
            );
            return;
        }
        let anchor = if focused {
            self.selected.min(markers.len() - 1)
        } else {
            current.unwrap_or(0)
        };
        view.list_offset = scroll(view.list_offset, anchor, height, markers.len());
        let timeline = self.player.timeline();
        let width = usize::from(inner.width);
        let long = self
            .player
            .duration()
            .unwrap_or_else(|| self.player.known_duration())
            >= 3600.0;
        let lines: Vec<Line> = markers
            .iter()
            .enumerate()
            .skip(view.list_offset)
            .take(height)
            .map(|(i, m)| {
                let is_current = current == Some(i);
                let mark = if is_current { "▸" } else { " " };
                let text = format!("{mark}{} {}", clock(m.at.on(timeline), long), m.text);
                let style = if focused && i == self.selected {
                    theme.selected()
                } else if is_current {
                    if focused {
                        theme.highlight()
                    } else {
                        theme.selected_unfocused()
                    }
                } else if m.command {
                    theme.text()
                } else {
                    theme.muted()
                };
                Line::from(Span::styled(pad(&text, width), style))
            })
            .collect();
        frame.render_widget(Paragraph::new(lines), inner);
    }

    fn render_progress(&self, frame: &mut Frame, area: Rect, theme: &Theme) {
        let player = &self.player;
        let position = player.position();
        let (end, known) = match player.duration() {
            Some(d) => (d, true),
            None => (player.known_duration().max(position), false),
        };
        let long = end >= 3600.0;
        let (state, style) = if player.at_end() && !self.playing {
            ("■ ended ", theme.muted())
        } else if self.playing {
            ("▶ playing", theme.success())
        } else {
            ("‖ paused ", theme.warning())
        };
        let times = format!(
            " {} / {}{} ",
            clock(position, long),
            clock(end, long),
            if known { "" } else { "+" }
        );
        let idle = match player.timeline() {
            Timeline::Compressed => format!(" idle ≤{}s", trim_number(player.idle_cap())),
            Timeline::Recorded => " idle as recorded".to_string(),
        };
        let speed = format!(" {}× ", trim_number(self.speed()));
        let fixed = 1
            + state.chars().count()
            + times.chars().count()
            + speed.len()
            + idle.chars().count()
            + 1;
        let bar_width = usize::from(area.width).saturating_sub(fixed);
        let fraction = if end > 0.0 {
            (position / end).clamp(0.0, 1.0)
        } else {
            0.0
        };
        // Whole cells: a partial cell would need glyphs some fonts lack.
        let filled = ((bar_width as f64) * fraction).round() as usize;
        let mut spans = vec![
            Span::raw(" "),
            Span::styled(state, style),
            Span::styled(times, theme.text()),
        ];
        if bar_width >= 4 {
            spans.push(Span::styled(
                "━".repeat(filled.min(bar_width)),
                theme.title(),
            ));
            spans.push(Span::styled(
                "─".repeat(bar_width.saturating_sub(filled)),
                theme.muted(),
            ));
        }
        spans.push(Span::styled(speed, theme.header()));
        spans.push(Span::styled(idle, theme.muted()));
        frame.render_widget(Paragraph::new(Line::from(spans)), area);
    }

    /// Notes about the replay (seeking, indexing, a cut-short recording)
    /// and the key hints; a message from the last key replaces them.
    fn render_status(
        &self,
        frame: &mut Frame,
        area: Rect,
        theme: &Theme,
        chrome: bool,
        crop: Option<String>,
    ) {
        if area.height == 0 {
            return;
        }
        let line = if let Some((severity, text)) = &self.message {
            Line::from(Span::styled(
                format!(" {text}"),
                severity_style(theme, *severity),
            ))
        } else {
            let player = &self.player;
            let mut notes: Vec<(String, Style)> = Vec::new();
            if let Some(p) = player.seek_progress().filter(|_| self.seeking) {
                notes.push((format!("seeking… {}%", percent(p)), theme.info()));
            }
            if let Some(p) = player.index_progress() {
                notes.push((format!("indexing… {}%", percent(p)), theme.muted()));
            }
            if let Some(t) = player.truncated() {
                notes.push((
                    format!("cut short at line {} (the session ended abruptly)", t.line),
                    theme.warning(),
                ));
            }
            if player.damaged_lines() > 0 {
                notes.push((
                    format!("{} damaged lines skipped", player.damaged_lines()),
                    theme.warning(),
                ));
            }
            if player.damaged_updates() > 0 {
                notes.push((
                    format!(
                        "{} desktop updates could not be drawn",
                        player.damaged_updates()
                    ),
                    theme.warning(),
                ));
            }
            if let Some(crop) = crop {
                notes.push((crop, theme.warning()));
            }
            if !chrome {
                notes.push((
                    format!(
                        "{} {} {}×",
                        if self.playing { "▶" } else { "‖" },
                        clock(player.position(), false),
                        trim_number(self.speed())
                    ),
                    theme.text(),
                ));
            }
            let mut spans = Vec::new();
            for (text, style) in notes {
                spans.push(Span::styled(format!(" {text} "), style));
                spans.push(Span::styled("·", theme.muted()));
            }
            spans.pop();
            let hints: &[(&str, &str)] =
                if self.focus == Focus::Commands && self.view.get().commands_shown {
                    &[
                        ("↑↓", "select"),
                        ("Enter", "jump"),
                        ("Tab", "back"),
                        ("?", "help"),
                    ]
                } else if player.is_desktop() {
                    &[
                        ("Space", "play"),
                        ("←→", "5s"),
                        ("↑↓", "30s"),
                        ("+-", "speed"),
                        ("?", "help"),
                    ]
                } else {
                    &[
                        ("Space", "play"),
                        ("←→", "5s"),
                        ("↑↓", "30s"),
                        ("n p", "command"),
                        ("c", "commands"),
                        ("?", "help"),
                    ]
                };
            spans.extend(hint_line(theme, hints).spans);
            Line::from(spans)
        };
        frame.render_widget(Paragraph::new(line).style(theme.status_bar()), area);
    }

    fn render_help(&self, frame: &mut Frame, area: Rect, theme: &Theme) {
        let key_w = HELP
            .iter()
            .map(|(k, _)| k.chars().count())
            .max()
            .unwrap_or(0);
        let lines: Vec<Line> = HELP
            .iter()
            .map(|(k, what)| {
                Line::from(vec![
                    Span::styled(format!(" {k:<key_w$}  "), theme.key_hint()),
                    Span::styled(*what, theme.text()),
                ])
            })
            .collect();
        let rect = centered(area, 72, HELP.len() as u16 + 2);
        frame.render_widget(Clear, rect);
        frame.render_widget(
            Paragraph::new(lines)
                .block(
                    Block::default()
                        .borders(Borders::ALL)
                        .border_style(theme.border_focused())
                        .title(Span::styled(
                            " Replay keys (any key closes) ",
                            theme.title(),
                        )),
                )
                .style(theme.text()),
            rect,
        );
    }
}

/// `m:ss`, or `h:mm:ss` when `long` (so a list lines up).
fn clock(seconds: f64, long: bool) -> String {
    // Whole seconds; times are never negative.
    let s = seconds.max(0.0) as u64;
    let (h, m, s) = (s / 3600, (s / 60) % 60, s % 60);
    if long || h > 0 {
        format!("{h}:{m:02}:{s:02}")
    } else {
        format!("{m:02}:{s:02}")
    }
}

/// 0.25 → "0.25", 2.0 → "2".
fn trim_number(v: f64) -> String {
    let text = format!("{v:.2}");
    text.trim_end_matches('0').trim_end_matches('.').to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clocks_and_numbers() {
        assert_eq!(clock(83.9, false), "01:23");
        assert_eq!(clock(3725.0, false), "1:02:05");
        assert_eq!(clock(5.0, true), "0:00:05");
        assert_eq!(trim_number(0.25), "0.25");
        assert_eq!(trim_number(16.0), "16");
        assert_eq!(trim_number(2.5), "2.5");
    }
}
