//! The audit dashboard: today's and the week's figures, sessions per day
//! and logins per hour as terminal charts, and the most used users and
//! assets. Laid out for 80×24 and up; smaller terminals lose the charts
//! first, then the top lists.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Bar, BarChart, BarGroup, Block, Borders, Paragraph, Sparkline};

use super::super::theme::Theme;
use crate::store::stats::{Dashboard, Figure};

fn pane<'a>(theme: &Theme, title: String) -> Block<'a> {
    Block::default()
        .borders(Borders::ALL)
        .border_style(theme.border())
        .title(Span::styled(title, theme.title()))
}

pub(super) fn render(d: Option<&Dashboard>, frame: &mut Frame, area: Rect, theme: &Theme) {
    let Some(d) = d else {
        frame.render_widget(
            Paragraph::new(Span::styled(" loading…", theme.muted())),
            area,
        );
        return;
    };
    let charts = area.height >= 16;
    let [figures, middle, tops] = Layout::vertical([
        Constraint::Length(4),
        Constraint::Min(if charts { 8 } else { 0 }),
        Constraint::Length(if area.height >= 12 { 8 } else { 0 }),
    ])
    .areas(area);
    render_figures(d, frame, figures, theme);
    if charts {
        let [days, hours] =
            Layout::horizontal([Constraint::Percentage(45), Constraint::Percentage(55)])
                .areas(middle);
        render_days(d, frame, days, theme);
        render_hours(d, frame, hours, theme);
    }
    if tops.height > 0 {
        let [users, assets] =
            Layout::horizontal([Constraint::Percentage(50), Constraint::Percentage(50)])
                .areas(tops);
        render_top(
            frame,
            users,
            theme,
            " Top users, 7 days (sessions) ",
            &d.top_users,
        );
        render_top(
            frame,
            assets,
            theme,
            " Top assets, 7 days (sessions) ",
            &d.top_assets,
        );
    }
}

fn render_figures(d: &Dashboard, frame: &mut Frame, area: Rect, theme: &Theme) {
    let cell = |label: &str, figure: Figure, pick: fn(&Figure) -> i64, style: Style| {
        vec![
            Span::styled(format!(" {label} "), theme.muted()),
            Span::styled(format!("{:<5}", pick(&figure)), style),
        ]
    };
    let line = |title: &str, pick: fn(&Figure) -> i64| {
        let mut spans = vec![Span::styled(format!("{title:<8}"), theme.title())];
        spans.extend(cell("logins", d.logins_ok, pick, theme.success()));
        spans.extend(cell("failed", d.logins_failed, pick, theme.warning()));
        spans.extend(cell("sessions", d.sessions, pick, theme.text()));
        spans.extend(cell("denied", d.commands_denied, pick, theme.danger()));
        spans.extend(cell("transfers", d.transfers, pick, theme.text()));
        Line::from(spans)
    };
    frame.render_widget(
        Paragraph::new(vec![
            line(" Today", |f| f.today),
            line(" 7 days", |f| f.week),
        ])
        .block(pane(theme, " Activity (UTC days) ".into())),
        area,
    );
}

fn render_days(d: &Dashboard, frame: &mut Frame, area: Rect, theme: &Theme) {
    let block = pane(theme, " Sessions per day ".into());
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let n = d.sessions_per_day.len().max(1) as u16;
    let width = (inner.width.saturating_sub(n) / n).clamp(1, 7);
    let bars: Vec<Bar> = d
        .sessions_per_day
        .iter()
        .map(|(day, count)| {
            Bar::default()
                .value(u64::try_from(*count).unwrap_or(0))
                .label(Line::from(day.get(8..10).unwrap_or("").to_string()))
                .style(theme.info())
                .value_style(theme.selected())
        })
        .collect();
    frame.render_widget(
        BarChart::default()
            .data(BarGroup::default().bars(&bars))
            .bar_width(width)
            .bar_gap(1)
            .label_style(theme.muted()),
        inner,
    );
}

fn render_hours(d: &Dashboard, frame: &mut Frame, area: Rect, theme: &Theme) {
    let total: i64 = d.logins_per_hour.iter().map(|(_, n)| n).sum();
    let peak = d
        .logins_per_hour
        .iter()
        .max_by_key(|(_, n)| *n)
        .filter(|(_, n)| *n > 0)
        .map(|(h, n)| format!(", peak {n} at {}h", hour(h)))
        .unwrap_or_default();
    let block = pane(theme, format!(" Logins per hour, 24 h: {total}{peak} "));
    let inner = block.inner(area);
    frame.render_widget(block, area);
    if inner.height < 2 {
        return;
    }
    let data: Vec<u64> = d
        .logins_per_hour
        .iter()
        .map(|(_, n)| u64::try_from(*n).unwrap_or(0))
        .collect();
    let [chart, axis] = Layout::vertical([Constraint::Min(1), Constraint::Length(1)]).areas(inner);
    // One column per hour, stretched when there is room.
    let per = (chart.width / data.len().max(1) as u16).max(1);
    let wide: Vec<u64> = data
        .iter()
        .flat_map(|v| std::iter::repeat_n(*v, usize::from(per)))
        .collect();
    frame.render_widget(Sparkline::default().data(&wide).style(theme.live()), chart);
    let first = d.logins_per_hour.first().map_or("", |(h, _)| hour(h));
    let last = d.logins_per_hour.last().map_or("", |(h, _)| hour(h));
    let width = usize::from(per) * data.len();
    let axis_text = format!(
        "{first}h{:>w$}",
        format!("{last}h"),
        w = width.saturating_sub(first.len() + 1)
    );
    frame.render_widget(Paragraph::new(Span::styled(axis_text, theme.muted())), axis);
}

/// `08` of `2026-11-23T08`.
fn hour(key: &str) -> &str {
    key.get(11..13).unwrap_or(key)
}

fn render_top(frame: &mut Frame, area: Rect, theme: &Theme, title: &str, rows: &[(String, i64)]) {
    let lines: Vec<Line> = if rows.is_empty() {
        vec![Line::from(Span::styled(" no sessions", theme.muted()))]
    } else {
        let max = rows.iter().map(|(_, n)| *n).max().unwrap_or(1).max(1);
        let bar_room = i64::from(area.width.saturating_sub(26)).max(1);
        rows.iter()
            .map(|(name, n)| {
                let bar = "█".repeat(usize::try_from(n * bar_room / max).unwrap_or(0));
                Line::from(vec![
                    Span::styled(format!(" {:<14.14} {n:>5} ", name), theme.text()),
                    Span::styled(bar, theme.info()),
                ])
            })
            .collect()
    };
    frame.render_widget(
        Paragraph::new(lines).block(pane(theme, title.to_string())),
        area,
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tui::{ColorMode, Screen};

    fn sample() -> Dashboard {
        Dashboard {
            at: String::new(),
            logins_ok: Figure {
                today: 12,
                week: 80,
            },
            logins_failed: Figure { today: 3, week: 9 },
            sessions: Figure { today: 7, week: 41 },
            commands_denied: Figure { today: 1, week: 4 },
            transfers: Figure { today: 2, week: 30 },
            sessions_per_day: (17..24).map(|d| (format!("2026-11-{d}"), d - 15)).collect(),
            logins_per_hour: (0..24)
                .map(|h| (format!("2026-11-23T{h:02}"), (h % 5) as i64))
                .collect(),
            top_users: vec![("alice".into(), 20), ("bob".into(), 5)],
            top_assets: vec![("web1".into(), 30)],
        }
    }

    fn seen(cols: u16, rows: u16) -> String {
        let d = sample();
        let mut screen = Screen::new(cols, rows, ColorMode::Full);
        let bytes = screen.draw(|f| render(Some(&d), f, f.area(), &Theme::default()));
        let mut client = vt100::Parser::new(
            std::num::NonZeroU16::new(rows).unwrap(),
            std::num::NonZeroU16::new(cols).unwrap(),
            0,
        );
        client.process(&bytes);
        client.screen().contents()
    }

    #[test]
    fn the_figures_charts_and_top_lists_fit_80_by_24() {
        let text = seen(80, 22);
        let squeezed = |l: &str| l.split_whitespace().collect::<Vec<_>>().join(" ");
        assert!(
            text.lines()
                .map(squeezed)
                .any(|l| l.contains("Today logins 12 failed 3 sessions 7 denied 1 transfers 2")),
            "{text}"
        );
        assert!(text.contains("Sessions per day"), "{text}");
        assert!(
            text.contains("Logins per hour, 24 h: 46, peak 4 at 19h"),
            "{text}"
        );
        assert!(text.contains("alice"), "{text}");
        assert!(text.contains("web1"), "{text}");
        // Day labels under the bars.
        assert!(text.contains("17") && text.contains("23"), "{text}");
        // A small terminal keeps the figures.
        let small = seen(60, 10);
        assert!(small.contains("Today"), "{small}");
    }
}
