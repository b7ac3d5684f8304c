//! Colour themes with semantic roles.
//!
//! Screens ask for a [`Role`] (`selected`, `danger`, `muted`...), never for
//! a colour, so a theme can change every screen at once and monochrome works
//! everywhere. The three built-in themes (`themes/default.toml`, `light`,
//! `mono`) are compiled in and each defines every role; a theme file named in
//! `rampart.toml` is laid over the default theme, so it lists only what it
//! changes. A bad file is refused at start-up with the file, the dotted key
//! and the reason, the way `config` reports its own errors.

use std::path::Path;

use ratatui::style::{Color, Modifier, Style};

use super::screen::ColorMode;
use crate::config;

const DEFAULT_TOML: &str = include_str!("../../themes/default.toml");
const LIGHT_TOML: &str = include_str!("../../themes/light.toml");
const MONO_TOML: &str = include_str!("../../themes/mono.toml");

/// Why a theme could not be loaded: one line naming the file, the key and
/// what is wrong with it.
#[derive(Debug, thiserror::Error)]
pub enum ThemeError {
    #[error("{file}: cannot read theme file: {error}")]
    Read { file: String, error: std::io::Error },
    #[error("{file}: line {line}, column {column}: {message}")]
    Syntax {
        file: String,
        line: usize,
        column: usize,
        message: String,
    },
    #[error("{file}: {key}: {problem}")]
    Invalid {
        file: String,
        key: String,
        problem: String,
    },
    #[error("unknown built-in theme {name:?} (expected one of {expected})")]
    UnknownBuiltin { name: String, expected: String },
}

macro_rules! roles {
    ($( $(#[$doc:meta])* $variant:ident => $method:ident, )*) => {
        /// What a piece of the screen means; each theme gives every role a
        /// style. The TOML key is the snake_case name (`border_focused`).
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum Role {
            $( $(#[$doc])* $variant, )*
        }

        impl Role {
            pub const ALL: &'static [Role] = &[$(Role::$variant),*];

            /// The key in a theme file's `[roles]` table.
            pub fn key(self) -> &'static str {
                match self {
                    $(Role::$variant => stringify!($method),)*
                }
            }
        }

        impl Theme {
            $(
                $(#[$doc])*
                pub fn $method(&self) -> Style {
                    self.style(Role::$variant)
                }
            )*
        }
    };
}

roles! {
    /// Ordinary text.
    Text => text,
    /// Less important text: counts, hints, unavailable choices.
    Muted => muted,
    /// Pane and dialog titles.
    Title => title,
    /// The header line (who is logged in).
    Header => header,
    Border => border,
    /// The border of the pane that has the keyboard.
    BorderFocused => border_focused,
    /// The selected row in the focused pane.
    Selected => selected,
    /// The selected row in a pane without focus.
    SelectedUnfocused => selected_unfocused,
    /// The characters a filter matched.
    Highlight => highlight,
    /// Errors, refusals, destructive actions.
    Danger => danger,
    Warning => warning,
    Success => success,
    Info => info,
    /// The key hints line at the bottom.
    StatusBar => status_bar,
    /// A key name in hints and help (`Enter`, `?`).
    KeyHint => key_hint,
    /// A text input field.
    Input => input,
    /// The hint shown in an empty input field.
    Placeholder => placeholder,
    Tab => tab,
    TabActive => tab_active,
    /// A node of the asset tree.
    Node => node,
    /// Something happening now (a live session).
    Live => live,
}

/// A complete set of role styles.
#[derive(Debug, Clone, PartialEq)]
pub struct Theme {
    name: String,
    styles: Vec<Style>,
    mono: bool,
}

impl Default for Theme {
    /// The built-in `default` theme.
    fn default() -> Self {
        // Built-in themes are tested to parse; should that ever break, plain
        // text is still a usable screen.
        parse(DEFAULT_TOML, "themes/default.toml", None)
            .unwrap_or_else(|_| Theme::plain("default", false))
    }
}

impl Theme {
    /// One of the themes compiled in (`config::BUILTIN_THEMES`).
    pub fn builtin(name: &str) -> Result<Theme, ThemeError> {
        let text = match name {
            "default" => DEFAULT_TOML,
            "light" => LIGHT_TOML,
            "mono" => MONO_TOML,
            _ => {
                return Err(ThemeError::UnknownBuiltin {
                    name: name.to_string(),
                    expected: config::BUILTIN_THEMES.join(", "),
                });
            }
        };
        let mut theme = parse(text, &format!("themes/{name}.toml"), None)?;
        theme.name = name.to_string();
        theme.mono = name == "mono";
        Ok(theme)
    }

    /// The theme `tui.theme` names: a built-in one, or a file laid over the
    /// default theme. Call it at start-up so a bad file stops the server
    /// before anyone logs in.
    pub fn load(theme: &config::Theme) -> Result<Theme, ThemeError> {
        match theme {
            config::Theme::Builtin(name) => Theme::builtin(name),
            config::Theme::File(path) => Theme::from_file(path),
        }
    }

    /// A theme file, laid over the default theme.
    pub fn from_file(path: &Path) -> Result<Theme, ThemeError> {
        let file = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|error| ThemeError::Read {
            file: file.clone(),
            error,
        })?;
        Theme::from_toml_str(&text, &file)
    }

    /// Theme text laid over the default theme; `file` names it in errors.
    pub fn from_toml_str(text: &str, file: &str) -> Result<Theme, ThemeError> {
        parse(text, file, Some(&Theme::default()))
    }

    /// The theme for a terminal: the configured one, or `mono` when the
    /// person asked for no colour (`NO_COLOR`) or their terminal (`TERM`
    /// from `pty-req`) has none. The configured theme is loaded either way,
    /// so a broken file is reported the same on every terminal. This reads
    /// a theme file: call it at start-up, and [`Theme::for_session`] on the
    /// loaded theme for each connection.
    pub fn for_terminal(
        theme: &config::Theme,
        no_color: bool,
        term: &str,
    ) -> Result<Theme, ThemeError> {
        Ok(Theme::load(theme)?.for_session(no_color, term))
    }

    /// This theme, or `mono` when the terminal shows no colour; no I/O.
    /// Decides exactly as [`ColorMode::detect`], so a session's theme and
    /// its [`super::Screen`] agree.
    pub fn for_session(&self, no_color: bool, term: &str) -> Theme {
        if ColorMode::detect(term, no_color) == ColorMode::None {
            Theme::builtin("mono").unwrap_or_else(|_| Theme::plain("mono", true))
        } else {
            self.clone()
        }
    }

    /// `default`, `light`, `mono`, or the file name of a custom theme.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Whether this theme uses no colour; screens that need contrast
    /// (the QR code) then use reverse video instead.
    pub fn is_mono(&self) -> bool {
        self.mono
    }

    pub fn style(&self, role: Role) -> Style {
        // Role::ALL indexes `styles`, which always holds one per role.
        self.styles.get(role as usize).copied().unwrap_or_default()
    }

    fn plain(name: &str, mono: bool) -> Theme {
        Theme {
            name: name.to_string(),
            styles: vec![Style::default(); Role::ALL.len()],
            mono,
        }
    }
}

/// Parses theme text over `base` (`None`: a built-in theme, which must set
/// every role).
fn parse(text: &str, file: &str, base: Option<&Theme>) -> Result<Theme, ThemeError> {
    let invalid = |key: String, problem: String| ThemeError::Invalid {
        file: file.to_string(),
        key,
        problem,
    };
    let table: toml::Table = text.parse().map_err(|e: toml::de::Error| {
        let (line, column) = line_column(text, e.span().map_or(0, |s| s.start));
        ThemeError::Syntax {
            file: file.to_string(),
            line,
            column,
            message: e.message().trim_end().to_string(),
        }
    })?;
    for key in table.keys() {
        if key != "roles" {
            return Err(invalid(key.clone(), "unknown key (expected roles)".into()));
        }
    }
    let mut theme = match base {
        Some(base) => base.clone(),
        None => Theme::plain(file, false),
    };
    theme.name = Path::new(file)
        .file_stem()
        .map_or_else(|| file.to_string(), |s| s.to_string_lossy().into_owned());
    theme.mono = false;
    let Some(roles) = table.get("roles") else {
        return match base {
            Some(_) => Ok(theme),
            None => Err(invalid("roles".into(), "missing".into())),
        };
    };
    let roles = roles
        .as_table()
        .ok_or_else(|| invalid("roles".into(), "must be a table of role = { ... }".into()))?;
    for (name, value) in roles {
        let key = format!("roles.{name}");
        let Some(role) = Role::ALL.iter().find(|r| r.key() == name) else {
            let expected: Vec<&str> = Role::ALL.iter().map(|r| r.key()).collect();
            return Err(invalid(
                key,
                format!("unknown role (expected one of {})", expected.join(", ")),
            ));
        };
        let spec = value.as_table().ok_or_else(|| {
            invalid(
                key.clone(),
                "must be a table such as { fg = \"cyan\", bold = true }".into(),
            )
        })?;
        let style = apply(theme.style(*role), spec, &key).map_err(|(k, p)| invalid(k, p))?;
        if let Some(slot) = theme.styles.get_mut(*role as usize) {
            *slot = style;
        }
    }
    if base.is_none()
        && let Some(missing) = Role::ALL.iter().find(|r| !roles.contains_key(r.key()))
    {
        return Err(invalid(
            format!("roles.{}", missing.key()),
            "missing (a built-in theme defines every role)".into(),
        ));
    }
    Ok(theme)
}

/// Applies one role's keys over `style`. Errors are (dotted key, problem).
fn apply(mut style: Style, spec: &toml::Table, key: &str) -> Result<Style, (String, String)> {
    for (name, value) in spec {
        let here = || format!("{key}.{name}");
        match name.as_str() {
            "fg" | "bg" => {
                let text = value
                    .as_str()
                    .ok_or_else(|| (here(), "must be a string".to_string()))?;
                let color = parse_color(text).ok_or_else(|| {
                    (
                        here(),
                        format!(
                            "unknown colour {text:?} (expected a name such as red or \
                             light_blue, \"#rrggbb\", or an index 0-255)"
                        ),
                    )
                })?;
                style = if name == "fg" {
                    style.fg(color)
                } else {
                    style.bg(color)
                };
            }
            "bold" | "dim" | "italic" | "underline" | "reverse" => {
                let on = value
                    .as_bool()
                    .ok_or_else(|| (here(), "must be true or false".to_string()))?;
                let m = match name.as_str() {
                    "bold" => Modifier::BOLD,
                    "dim" => Modifier::DIM,
                    "italic" => Modifier::ITALIC,
                    "underline" => Modifier::UNDERLINED,
                    _ => Modifier::REVERSED,
                };
                style = if on {
                    style.add_modifier(m)
                } else {
                    style.remove_modifier(m)
                };
            }
            _ => {
                return Err((
                    here(),
                    "unknown key (expected fg, bg, bold, dim, italic, underline, reverse)"
                        .to_string(),
                ));
            }
        }
    }
    Ok(style)
}

fn parse_color(text: &str) -> Option<Color> {
    let t = text.trim().to_ascii_lowercase();
    if let Some(hex) = t.strip_prefix('#') {
        if hex.len() != 6 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        let byte = |i: usize| {
            hex.get(i..i + 2)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        };
        return Some(Color::Rgb(byte(0)?, byte(2)?, byte(4)?));
    }
    if t.bytes().all(|b| b.is_ascii_digit()) {
        return t.parse::<u8>().ok().map(Color::Indexed);
    }
    Some(match t.replace(['-', ' '], "_").as_str() {
        "reset" | "default" => Color::Reset,
        "black" => Color::Black,
        "red" => Color::Red,
        "green" => Color::Green,
        "yellow" => Color::Yellow,
        "blue" => Color::Blue,
        "magenta" => Color::Magenta,
        "cyan" => Color::Cyan,
        "gray" | "grey" => Color::Gray,
        "dark_gray" | "dark_grey" => Color::DarkGray,
        "light_red" => Color::LightRed,
        "light_green" => Color::LightGreen,
        "light_yellow" => Color::LightYellow,
        "light_blue" => Color::LightBlue,
        "light_magenta" => Color::LightMagenta,
        "light_cyan" => Color::LightCyan,
        "white" => Color::White,
        _ => return None,
    })
}

/// 1-based line and column (in characters) of a byte offset.
fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let before = text.get(..offset).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_builtin_theme_defines_every_role() {
        for name in config::BUILTIN_THEMES {
            let theme = Theme::builtin(name).unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(theme.name(), *name);
        }
        assert!(Theme::builtin("mono").is_ok_and(|t| t.is_mono()));
    }

    #[test]
    fn mono_has_no_colour() {
        let mono = Theme::builtin("mono").unwrap_or_else(|e| panic!("{e}"));
        for role in Role::ALL {
            let s = mono.style(*role);
            assert_eq!((s.fg, s.bg), (None, None), "{}", role.key());
        }
    }

    #[test]
    fn a_file_overrides_only_what_it_names() {
        let theme = Theme::from_toml_str("[roles]\nselected = { bg = \"#102030\" }\n", "mine.toml")
            .unwrap_or_else(|e| panic!("{e}"));
        let default = Theme::default();
        assert_eq!(theme.selected().bg, Some(Color::Rgb(0x10, 0x20, 0x30)));
        assert_eq!(theme.selected().fg, default.selected().fg);
        assert_eq!(theme.danger(), default.danger());
        assert_eq!(theme.name(), "mine");
    }

    #[test]
    fn colours_parse() {
        assert_eq!(parse_color("light_blue"), Some(Color::LightBlue));
        assert_eq!(parse_color("130"), Some(Color::Indexed(130)));
        assert_eq!(parse_color("256"), None);
        assert_eq!(parse_color("#12345"), None);
        assert_eq!(parse_color("purple"), None);
    }

    #[test]
    fn syntax_errors_have_a_position() {
        let err = Theme::from_toml_str("[roles]\ntext = {", "bad.toml").err();
        let text = err.map(|e| e.to_string()).unwrap_or_default();
        assert!(text.starts_with("bad.toml: line 2"), "{text}");
    }
}
