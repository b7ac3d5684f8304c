//! TOTP enrolment: the screen shown at the first login of a person who must
//! set up a second factor. It draws the `otpauth://` URL as a QR code in
//! half-block characters, shows the secret as text for people who type it
//! in, and reads the 6-digit code that proves the app has it. The caller
//! checks the code and calls [`Enrol::set_error`] when it is wrong.
//!
//! The QR code is drawn black on white explicitly (reverse video in
//! monochrome), with a white quiet zone: terminal default colours are often
//! light-on-dark, which would invert the code and many scanners refuse an
//! inverted code.

use qrcode::{EcLevel, QrCode};
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Wrap};
use zeroize::Zeroizing;

use super::field::Field;
use super::hint_line;
use super::input::Key;
use super::theme::Theme;
use crate::vault::Secret;

/// Digits in a TOTP code.
const CODE_LEN: usize = 6;
/// Columns the text beside the QR code needs.
const TEXT_WIDTH: u16 = 30;

/// What the person did on the enrolment screen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EnrolOutcome {
    /// The code they typed; the caller verifies it.
    Code(String),
    Cancel,
}

/// The enrolment screen's state.
pub struct Enrol {
    qr: Option<Qr>,
    secret: Secret<String>,
    code: Field,
    error: Option<String>,
}

impl std::fmt::Debug for Enrol {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Enrol")
            .field("qr", &self.qr.as_ref().map(|q| q.width))
            .field("error", &self.error)
            .finish_non_exhaustive()
    }
}

/// QR modules, row by row, 1 = dark. Wiped on drop: they encode the seed.
struct Qr {
    width: usize,
    modules: Zeroizing<Vec<u8>>,
}

impl Qr {
    fn dark(&self, x: usize, y: usize) -> bool {
        x < self.width
            && y < self.width
            && self
                .modules
                .get(y * self.width + x)
                .is_some_and(|m| *m == 1)
    }
}

impl Enrol {
    /// `otpauth_url` becomes the QR code; `secret_base32` is shown as text.
    /// If the URL is too long for a QR code only the text is shown.
    pub fn new(otpauth_url: &Secret<String>, secret_base32: Secret<String>) -> Enrol {
        // Level L keeps the code small enough for 80×24; a screen is not a
        // scratched label, so little error correction is needed.
        let qr = QrCode::with_error_correction_level(otpauth_url.expose().as_bytes(), EcLevel::L)
            .ok()
            .map(|code| {
                let width = code.width();
                let modules = code
                    .into_colors()
                    .into_iter()
                    .map(|c| u8::from(c == qrcode::Color::Dark))
                    .collect();
                Qr {
                    width,
                    modules: Zeroizing::new(modules),
                }
            });
        Enrol {
            qr,
            secret: secret_base32,
            code: Field::plain(CODE_LEN).only(|c| c.is_ascii_digit()),
            error: None,
        }
    }

    /// Shows why the last code was refused and clears the input.
    pub fn set_error(&mut self, message: impl Into<String>) {
        self.error = Some(message.into());
        self.code.clear();
    }

    pub fn handle(&mut self, key: Key) -> Option<EnrolOutcome> {
        match key {
            Key::Esc | Key::Ctrl('c' | 'd') => Some(EnrolOutcome::Cancel),
            Key::Enter if self.code.len() == CODE_LEN => {
                self.error = None;
                let code = self.code.text().to_string();
                self.code.clear();
                Some(EnrolOutcome::Code(code))
            }
            Key::Enter => {
                self.error = Some(format!("The code has {CODE_LEN} digits."));
                None
            }
            key => {
                self.code.handle(&key);
                None
            }
        }
    }

    /// The secret in groups of four, as authenticator apps show it.
    fn grouped_secret(&self) -> String {
        let chars: Vec<char> = self.secret.expose().chars().collect();
        chars
            .chunks(4)
            .map(|c| c.iter().collect::<String>())
            .collect::<Vec<_>>()
            .join(" ")
    }

    pub fn render(&self, frame: &mut Frame, theme: &Theme) {
        // No border: at 80×24 every row and column goes to the code.
        let inner = frame.area();
        frame.render_widget(Paragraph::new("").style(theme.text()), inner);
        // Try the standard 4-module quiet zone, then 2 (enough for phone
        // scanners when the zone is drawn white).
        let placement = self.qr.as_ref().and_then(|qr| {
            [4usize, 2].into_iter().find_map(|quiet| {
                let side = qr.width + 2 * quiet;
                let cols = u16::try_from(side).ok()?;
                let rows = u16::try_from(side.div_ceil(2)).ok()?;
                if inner.width >= cols + 1 + TEXT_WIDTH && inner.height >= rows {
                    Some((quiet, cols, rows, true))
                } else if inner.width >= cols && inner.height >= rows + 7 {
                    Some((quiet, cols, rows, false))
                } else {
                    None
                }
            })
        });
        let text_area = match (self.qr.as_ref(), placement) {
            (Some(qr), Some((quiet, cols, rows, beside))) => {
                let (qr_area, text_area) = if beside {
                    let [q, _, t] = Layout::horizontal([
                        Constraint::Length(cols),
                        Constraint::Length(1),
                        Constraint::Min(0),
                    ])
                    .areas(inner);
                    (q, t)
                } else {
                    let [q, t] = Layout::vertical([Constraint::Length(rows), Constraint::Min(0)])
                        .areas(inner);
                    (q, t)
                };
                self.render_qr(frame, qr, quiet, qr_area, theme);
                text_area
            }
            _ => inner,
        };
        self.render_text(
            frame,
            text_area,
            theme,
            self.qr.is_some() && placement.is_none(),
        );
    }

    fn render_qr(&self, frame: &mut Frame, qr: &Qr, quiet: usize, area: Rect, theme: &Theme) {
        let style = if theme.is_mono() {
            // Reverse video: the glyph takes the terminal's background
            // (dark on the usual dark terminal) and the rest its foreground.
            Style::new().add_modifier(Modifier::REVERSED)
        } else {
            Style::new().fg(Color::Black).bg(Color::White)
        };
        let side = qr.width + 2 * quiet;
        let at = |x: usize, y: usize| x >= quiet && y >= quiet && qr.dark(x - quiet, y - quiet);
        let lines: Vec<Line> = (0..side.div_ceil(2))
            .map(|row| {
                let text: String = (0..side)
                    .map(|x| match (at(x, 2 * row), at(x, 2 * row + 1)) {
                        (true, true) => '█',
                        (true, false) => '▀',
                        (false, true) => '▄',
                        (false, false) => ' ',
                    })
                    .collect();
                Line::from(Span::styled(text, style))
            })
            .collect();
        frame.render_widget(Paragraph::new(lines), area);
    }

    fn render_text(&self, frame: &mut Frame, area: Rect, theme: &Theme, too_small: bool) {
        let (intro, intro_style) = if too_small {
            (
                "The window is too small for the QR code: enlarge it, or type this secret into the app:",
                theme.warning(),
            )
        } else if self.qr.is_some() {
            (
                "Scan the QR code, or type this secret into the app:",
                theme.text(),
            )
        } else {
            ("Type this secret into the app:", theme.text())
        };
        let [title, intro_area, secret, _, ask, field, error, _, hints] = Layout::vertical([
            Constraint::Length(2),
            Constraint::Length(if too_small { 3 } else { 2 }),
            Constraint::Length(2),
            Constraint::Length(1),
            Constraint::Length(1),
            Constraint::Length(1),
            Constraint::Length(2),
            Constraint::Length(1),
            Constraint::Length(1),
        ])
        .areas(area);
        let wrap = Wrap { trim: true };
        frame.render_widget(
            Paragraph::new(Span::styled(
                "Set up two-factor authentication",
                theme.title(),
            )),
            title,
        );
        frame.render_widget(
            Paragraph::new(Span::styled(intro, intro_style)).wrap(wrap),
            intro_area,
        );
        frame.render_widget(
            Paragraph::new(Span::styled(self.grouped_secret(), theme.highlight())).wrap(wrap),
            secret,
        );
        frame.render_widget(
            Paragraph::new(format!("Then type the {CODE_LEN}-digit code it shows:"))
                .style(theme.text()),
            ask,
        );
        // One column more than the digits, for the cursor after the last one.
        let field = Rect::new(
            field.x,
            field.y,
            (CODE_LEN as u16 + 1).min(field.width),
            field.height,
        );
        self.code.render(
            frame,
            field,
            theme.input(),
            Some(("______", theme.placeholder())),
            true,
        );
        if let Some(message) = &self.error {
            frame.render_widget(
                Paragraph::new(Span::styled(message.clone(), theme.danger())).wrap(wrap),
                error,
            );
        }
        frame.render_widget(
            Paragraph::new(hint_line(theme, &[("Enter", "confirm"), ("Esc", "cancel")])),
            hints,
        );
    }
}
