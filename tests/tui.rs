//! The TUI as the person sees it: every screen is rendered through
//! `tui::Screen` into bytes, the bytes go into a vt100 terminal emulator (the
//! client's side of the channel), and the assertions read that emulator's
//! screen text. Keys go in as the bytes a terminal would send.

use std::num::NonZeroU16;

use jiff::Timestamp;
use rampart::model::{AccountSpec, Actions, Identity, Protocol, ProtocolSpec, Role};
use rampart::policy::data::{
    AccountEntry, AssetEntry, NodeEntry, PermissionEntry, PolicyData, UserEntry,
};
use rampart::policy::{Snapshot, VisibleAsset};
use rampart::tui::{
    Chosen, ColorMode, Enrol, EnrolOutcome, InputParser, Key, Menu, MenuOutcome, MessageBox,
    Passwd, PasswdOutcome, Screen, Severity, Theme,
};
use rampart::vault::Secret;

// ---------------------------------------------------------------- fixture

fn now() -> Timestamp {
    "2030-01-01T00:00:00Z".parse().unwrap()
}

fn alice() -> Identity {
    Identity {
        user_id: "u-alice".into(),
        name: "alice".into(),
        role: Role::User,
        groups: Vec::new(),
    }
}

/// (name, address, node, protocols, stored accounts, comment)
type AssetRow = (
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    &'static [&'static str],
    &'static str,
);

const ASSETS: &[AssetRow] = &[
    (
        "web1",
        "10.0.1.1",
        "/DEFAULT/prod/web",
        "ssh/22,sftp/22",
        &["deploy", "root"],
        "frontend",
    ),
    (
        "web2",
        "10.0.1.2",
        "/DEFAULT/prod/web",
        "ssh/22",
        &["root"],
        "frontend",
    ),
    (
        "db1",
        "10.0.2.1",
        "/DEFAULT/prod/db",
        "ssh/22",
        &["postgres"],
        "primary",
    ),
    (
        "db2",
        "10.0.2.2",
        "/DEFAULT/prod/db",
        "ssh/22",
        &["postgres"],
        "replica",
    ),
    (
        "devbox",
        "10.0.9.9",
        "/DEFAULT/dev",
        "ssh/22",
        &[],
        "scratch",
    ),
    (
        "desktop",
        "10.0.8.8",
        "/DEFAULT/dev",
        "rdp/3389",
        &["admin"],
        "console",
    ),
];

fn visible() -> Vec<VisibleAsset> {
    let nodes = [
        "/DEFAULT",
        "/DEFAULT/prod",
        "/DEFAULT/prod/web",
        "/DEFAULT/prod/db",
        "/DEFAULT/dev",
    ];
    let mut data = PolicyData {
        users: vec![UserEntry {
            id: "u-alice".into(),
            name: "alice".into(),
            active: true,
            expires_at: None,
        }],
        nodes: nodes
            .iter()
            .map(|p| NodeEntry {
                id: format!("n{p}"),
                path: p.to_string(),
            })
            .collect(),
        ..PolicyData::default()
    };
    for (name, address, node, protocols, accounts, comment) in ASSETS {
        data.assets.push(AssetEntry {
            id: format!("a-{name}"),
            name: name.to_string(),
            address: address.to_string(),
            platform: "linux".into(),
            comment: comment.to_string(),
            active: true,
            protocols: protocols
                .split(',')
                .map(|p| p.parse::<Protocol>().unwrap())
                .collect(),
            node_ids: vec![format!("n{node}")],
        });
        for user in *accounts {
            data.accounts.push(AccountEntry {
                id: format!("acc-{name}-{user}"),
                asset_id: format!("a-{name}"),
                username: user.to_string(),
                privileged: *user == "root",
                active: true,
            });
        }
    }
    let perm = |id: &str, accounts: AccountSpec, assets: Vec<String>, nodes: Vec<String>| {
        PermissionEntry {
            id: id.into(),
            name: id.into(),
            user_ids: vec!["u-alice".into()],
            group_ids: Vec::new(),
            asset_ids: assets,
            node_ids: nodes,
            accounts,
            protocols: ProtocolSpec::All,
            actions: Actions::all_but_tunnel(),
            valid_from: None,
            valid_until: None,
            active: true,
            require_approval: false,
        }
    };
    data.permissions.push(perm(
        "everything",
        AccountSpec::all(),
        Vec::new(),
        vec!["n/DEFAULT".into()],
    ));
    data.permissions.push(perm(
        "typed",
        "@INPUT".parse().unwrap(),
        vec!["a-devbox".into()],
        Vec::new(),
    ));
    let snapshot = Snapshot::build(data).unwrap();
    let assets = snapshot.visible_assets(&alice(), now());
    assert_eq!(assets.len(), ASSETS.len());
    assets
}

fn menu() -> Menu {
    Menu::new(visible(), &alice())
}

/// The client's side: our bytes go into a terminal emulator of the same
/// size; every byte ever sent is kept for leak checks.
struct Client {
    screen: Screen,
    term: vt100::Parser,
    sent: Vec<u8>,
    theme: Theme,
}

fn nz(n: u16) -> NonZeroU16 {
    NonZeroU16::new(n).unwrap()
}

impl Client {
    fn new(cols: u16, rows: u16) -> Client {
        Client::with(cols, rows, ColorMode::Full, Theme::default())
    }

    fn with(cols: u16, rows: u16, mode: ColorMode, theme: Theme) -> Client {
        let mut screen = Screen::new(cols, rows, mode);
        let enter = screen.enter();
        let mut client = Client {
            screen,
            term: vt100::Parser::new(nz(rows), nz(cols), 0),
            sent: Vec::new(),
            theme,
        };
        client.send(&enter);
        client
    }

    fn send(&mut self, bytes: &[u8]) {
        self.sent.extend_from_slice(bytes);
        self.term.process(bytes);
    }

    /// Draws the menu; returns the bytes of this frame.
    fn show(&mut self, menu: &Menu) -> Vec<u8> {
        let theme = self.theme.clone();
        let bytes = self.screen.draw(|f| menu.render(f, &theme));
        self.send(&bytes);
        bytes
    }

    fn resize(&mut self, cols: u16, rows: u16) {
        self.term.set_size(nz(rows), nz(cols));
        self.screen.resize(cols, rows);
    }

    fn text(&self) -> String {
        self.term.screen().contents()
    }

    /// The screen text with trailing blanks trimmed from every row.
    fn visible_text(&self) -> String {
        self.text()
            .lines()
            .map(str::trim_end)
            .collect::<Vec<_>>()
            .join("\n")
    }

    fn row(&self, row: u16) -> String {
        let (_, cols) = self.term.screen().size();
        self.term.screen().contents_between(row, 0, row, cols.get())
    }

    fn sent_text(&self) -> String {
        String::from_utf8_lossy(&self.sent).into_owned()
    }
}

/// Types `bytes` into `menu` as a terminal would send them.
fn type_into(menu: &mut Menu, bytes: &[u8]) -> Option<MenuOutcome> {
    let mut parser = InputParser::new();
    let mut keys = parser.feed(bytes);
    keys.extend(parser.flush());
    let mut outcome = None;
    for key in keys {
        if let Some(o) = menu.handle(key) {
            outcome = Some(o);
        }
    }
    outcome
}

/// The same state painted from scratch on a fresh terminal: what a correct
/// sequence of diffs must have produced. Trailing blanks are trimmed: a
/// cell cleared to a space and a cell never written look the same.
fn fresh_paint(menu: &Menu, cols: u16, rows: u16) -> String {
    let mut fresh = Client::new(cols, rows);
    fresh.show(menu);
    fresh.visible_text()
}

// ------------------------------------------------------------------ menu

#[test]
fn menu_at_80x24_shows_header_count_and_assets() {
    let menu = menu();
    let mut client = Client::new(80, 24);
    client.show(&menu);
    let text = client.text();
    assert!(client.row(0).contains("alice (user)"), "{text}");
    assert!(client.row(0).contains("help"), "{text}");
    assert!(text.contains("Assets (6)"), "{text}");
    for (name, ..) in ASSETS {
        assert!(text.contains(name), "{name} missing:\n{text}");
    }
    assert!(text.contains("Nodes"), "{text}");
    assert!(text.contains("prod (4)"), "node counts:\n{text}");
    // The details pane shows the first asset (by name: db1).
    assert!(
        text.contains("10.0.2.1") && text.contains("postgres"),
        "{text}"
    );
    assert!(client.term.screen().alternate_screen());
    assert!(client.term.screen().bracketed_paste());
}

#[test]
fn typing_web_filters_the_list() {
    let mut menu = menu();
    let mut client = Client::new(80, 24);
    client.show(&menu);
    type_into(&mut menu, b"web");
    client.show(&menu);
    let text = client.text();
    assert!(text.contains("Filter: web"), "{text}");
    assert!(text.contains("Assets (2 of 6)"), "{text}");
    assert!(text.contains("web1") && text.contains("web2"), "{text}");
    for gone in ["db1", "db2", "devbox", "desktop"] {
        assert!(!text.contains(gone), "{gone} still shown:\n{text}");
    }
    // The frames were diffs, yet the screen equals a fresh paint.
    assert_eq!(client.visible_text(), fresh_paint(&menu, 80, 24));

    // Fuzzy and by address: "1.2" is web2's and db1's address only.
    type_into(&mut menu, b"\x15"); // Ctrl-U clears
    type_into(&mut menu, b"0.2.");
    client.show(&menu);
    let text = client.text();
    assert!(text.contains("Assets (2 of 6)"), "{text}");
    assert!(
        text.contains("db1") && text.contains("db2") && !text.contains("web1"),
        "{text}"
    );

    // Backspace widens again; Esc clears, and a second Esc quits.
    type_into(&mut menu, b"\x7f\x7f\x7f\x7f");
    client.show(&menu);
    assert!(client.text().contains("Assets (6)"), "{}", client.text());
    assert!(type_into(&mut menu, b"xyz").is_none());
    client.show(&menu);
    assert!(client.text().contains("No asset matches \"xyz\""));
    assert!(type_into(&mut menu, b"\x1b").is_none());
    assert!(matches!(
        type_into(&mut menu, b"\x1b"),
        Some(MenuOutcome::Quit)
    ));
}

#[test]
fn backspace_gives_the_same_list_as_typing_the_shorter_filter() {
    for (typed, shorter) in [
        (&b"web1\x7f"[..], &b"web"[..]),
        (b"d\x1b[200~b2\x1b[201~\x7f", b"db"),
    ] {
        let mut edited = menu();
        type_into(&mut edited, typed);
        let mut direct = menu();
        type_into(&mut direct, shorter);
        let mut client = Client::new(80, 24);
        client.show(&edited);
        assert_eq!(client.visible_text(), fresh_paint(&direct, 80, 24));
    }
}

#[test]
fn second_frame_without_change_sends_almost_nothing() {
    let menu = menu();
    let mut client = Client::new(80, 24);
    let first = client.show(&menu);
    let second = client.show(&menu);
    assert!(first.len() > 1000, "{}", first.len());
    assert!(second.len() < 32, "{:?}", String::from_utf8_lossy(&second));
}

#[test]
fn enter_with_two_accounts_opens_the_chooser() {
    let mut menu = menu();
    let mut client = Client::new(80, 24);
    type_into(&mut menu, b"web1");
    assert!(type_into(&mut menu, b"\r").is_none());
    client.show(&menu);
    let text = client.text();
    assert!(text.contains("Account on web1"), "{text}");
    assert!(
        text.contains("1 deploy") && text.contains("2 root"),
        "{text}"
    );
    // web1 grants ssh and sftp, but only ssh opens from the menu: no
    // protocol chooser, straight to the connection.
    let outcome = type_into(&mut menu, b"\x1b[B\r");
    match outcome {
        Some(MenuOutcome::Connect {
            asset,
            account: Chosen::Stored(user),
            protocol,
        }) => assert_eq!(
            (asset.as_str(), user.as_str(), protocol.as_str()),
            ("web1", "root", "ssh")
        ),
        other => panic!("{other:?}"),
    }
    client.show(&menu);
    let text = client.text();
    assert!(!text.contains("Account on"), "the chooser closed:\n{text}");
    assert!(
        text.contains("sftp/22") && text.contains("greyed"),
        "{text}"
    );
}

#[test]
fn one_account_connects_at_once_and_the_menu_comes_back_as_it_was() {
    let mut menu = menu();
    let mut client = Client::new(80, 24);
    client.show(&menu);
    let outcome = type_into(&mut menu, b"web2\r");
    assert!(matches!(
        &outcome,
        Some(MenuOutcome::Connect { asset, account: Chosen::Stored(u), .. }) if asset == "web2" && u == "root"
    ));
    // The target session uses the terminal; the menu is re-entered after.
    let leave = client.screen.leave();
    client.send(&leave);
    client.send(b"\x1b[2J\x1b[Htarget output\r\n");
    let enter = client.screen.enter();
    client.send(&enter);
    client.show(&menu);
    let text = client.text();
    assert!(!text.contains("target output"), "{text}");
    assert!(
        text.contains("Filter: web2") && text.contains("web2"),
        "{text}"
    );
    assert_eq!(menu.selected_asset().map(|a| a.name()), Some("web2"));

    // With the filter cleared, the recent asset leads the list.
    type_into(&mut menu, b"\x15");
    client.show(&menu);
    let text = client.text();
    assert!(menu.recent() == ["web2"]);
    let web2 = text.find("• web2").unwrap_or(usize::MAX);
    let db1 = text.find("db1").unwrap_or(0);
    assert!(web2 < db1, "recent first:\n{text}");
}

#[test]
fn new_policy_keeps_the_filter_and_the_selection() {
    let mut menu = menu();
    let mut client = Client::new(80, 24);
    type_into(&mut menu, b"db\x1b[B");
    assert_eq!(menu.selected_asset().map(|a| a.name()), Some("db2"));
    // The policy changed: one asset fewer.
    let fewer: Vec<VisibleAsset> = visible()
        .into_iter()
        .filter(|a| a.name() != "db1")
        .collect();
    menu.set_assets(fewer);
    client.show(&menu);
    let text = client.text();
    assert!(
        text.contains("Filter: db") && text.contains("of 5)") && !text.contains("db1"),
        "{text}"
    );
    assert_eq!(menu.selected_asset().map(|a| a.name()), Some("db2"));
}

#[test]
fn input_prompt_masks_the_password() {
    let mut menu = menu();
    let mut client = Client::new(80, 24);
    type_into(&mut menu, b"devbox\r");
    client.show(&menu);
    assert!(
        client.text().contains("Log in to devbox"),
        "{}",
        client.text()
    );
    type_into(&mut menu, b"bob\r");
    client.show(&menu);
    let mut outcome = None;
    for chunk in [&b"hunter2-"[..], b"\x1b[200~pasted\x1b[201~"] {
        outcome = type_into(&mut menu, chunk);
        client.show(&menu);
    }
    let text = client.text();
    assert!(text.contains("bob"), "{text}");
    assert!(text.contains("**************"), "{text}");
    assert!(outcome.is_none());
    let outcome = type_into(&mut menu, b"\r");
    client.show(&menu);
    match outcome {
        Some(MenuOutcome::Connect {
            asset,
            account: Chosen::Input { username, password },
            protocol,
        }) => {
            assert_eq!(
                (asset.as_str(), username.as_str(), protocol.as_str()),
                ("devbox", "bob", "ssh")
            );
            assert_eq!(password.expose(), "hunter2-pasted");
            assert_eq!(format!("{password:?}"), "[redacted]");
        }
        other => panic!("{other:?}"),
    }
    let sent = client.sent_text();
    for secret in ["hunter", "pasted"] {
        assert!(!sent.contains(secret), "{secret} was sent to the client");
    }
}

#[test]
fn question_mark_shows_help_and_any_key_closes_it() {
    let mut menu = menu();
    let mut client = Client::new(80, 24);
    type_into(&mut menu, b"?");
    client.show(&menu);
    let text = client.text();
    assert!(
        text.contains("Keys") && text.contains("connect to the selected asset"),
        "{text}"
    );
    type_into(&mut menu, b"x");
    client.show(&menu);
    assert!(!client.text().contains("connect to the selected asset"));
    // `/` lets q and ? into the filter instead of quitting.
    assert!(type_into(&mut menu, b"\x7f/q?").is_none());
    client.show(&menu);
    assert!(client.text().contains("Filter: q?"), "{}", client.text());
}

#[test]
fn q_quits_and_ctrl_c_quits() {
    assert!(matches!(
        type_into(&mut menu(), b"q"),
        Some(MenuOutcome::Quit)
    ));
    assert!(matches!(
        type_into(&mut menu(), b"\x03"),
        Some(MenuOutcome::Quit)
    ));
    assert!(matches!(
        type_into(&mut menu(), b"\x1b"),
        Some(MenuOutcome::Quit)
    ));
}

#[test]
fn resize_to_100x30_repaints_correctly() {
    let mut menu = menu();
    let mut client = Client::new(80, 24);
    client.show(&menu);
    type_into(&mut menu, b"db");
    client.resize(100, 30);
    client.show(&menu);
    let text = client.text();
    assert_eq!(client.visible_text(), fresh_paint(&menu, 100, 30));
    assert!(
        client.row(29).contains("Enter"),
        "status bar on the last row:\n{text}"
    );
    assert!(text.contains("db1") && text.contains("Nodes"), "{text}");
    // Shrinking works as well, down to sizes where panes are dropped.
    for (cols, rows) in [(60, 15), (40, 10), (20, 5), (10, 2)] {
        client.resize(cols, rows);
        client.show(&menu);
        let text = client.text();
        assert_eq!(
            client.visible_text(),
            fresh_paint(&menu, cols, rows),
            "{cols}x{rows}"
        );
        if cols >= 40 {
            assert!(
                text.contains("db1") && text.contains("db2"),
                "{cols}x{rows}:\n{text}"
            );
        }
    }
}

#[test]
fn node_tree_restricts_the_list() {
    let mut menu = menu();
    let mut client = Client::new(80, 24);
    client.show(&menu);
    // Tab to the tree; rows: All, DEFAULT, dev, prod.
    type_into(&mut menu, b"\t\x1b[B\x1b[B");
    client.show(&menu);
    let text = client.text();
    assert!(text.contains("Assets in /DEFAULT/dev (2 of 6)"), "{text}");
    assert!(
        text.contains("devbox") && text.contains("desktop") && !text.contains("web1"),
        "{text}"
    );
    // Unfold prod and select its db child.
    type_into(&mut menu, b"\x1b[B\x1b[C\x1b[B\x1b[B");
    client.show(&menu);
    let text = client.text();
    assert!(
        text.contains("Assets in /DEFAULT/prod/web (2 of 6)"),
        "{text}"
    );
    // Typing filters within the node.
    type_into(&mut menu, b"2");
    client.show(&menu);
    assert!(client.text().contains("(1 of 6)"), "{}", client.text());
}

#[test]
fn a_desktop_in_the_menu_is_reached_over_rdp() {
    let mut menu = menu();
    let mut client = Client::new(100, 24);
    client.show(&menu);
    // The details pane no longer greys rdp out.
    type_into(&mut menu, b"desktop");
    client.show(&menu);
    assert!(!client.text().contains("greyed"), "{}", client.text());
    // One account, one protocol the menu offers: straight to the ticket.
    match type_into(&mut menu, b"\r") {
        Some(MenuOutcome::Connect {
            asset,
            account: Chosen::Stored(user),
            protocol,
        }) => assert_eq!(
            (asset.as_str(), user.as_str(), protocol.as_str()),
            ("desktop", "admin", "rdp")
        ),
        other => panic!("{other:?}"),
    }
}

#[test]
fn notice_line_under_the_header() {
    let menu = menu().with_notice(
        Severity::Warning,
        "last login 2026-11-22 10:00 from 10.0.0.1; 2 failed attempts since",
    );
    let mut client = Client::new(80, 24);
    client.show(&menu);
    assert!(
        client.row(1).contains("2 failed attempts since"),
        "{}",
        client.text()
    );
}

// ---------------------------------------------------------------- colour

/// Every SGR parameter list the bytes contain.
fn sgr_params(bytes: &[u8]) -> Vec<Vec<u16>> {
    let text = String::from_utf8_lossy(bytes);
    let mut out = Vec::new();
    for part in text.split("\x1b[").skip(1) {
        let end = part
            .find(|c: char| !(c.is_ascii_digit() || c == ';'))
            .unwrap_or(part.len());
        if part[end..].starts_with('m') {
            out.push(
                part[..end]
                    .split(';')
                    .filter_map(|p| p.parse().ok())
                    .collect(),
            );
        }
    }
    out
}

fn is_colour(p: u16) -> bool {
    matches!(p, 30..=39 | 40..=49 | 90..=97 | 100..=107)
}

#[test]
fn mono_mode_emits_no_colour() {
    let theme = Theme::for_terminal(
        &rampart::config::Theme::Builtin("default".into()),
        true,
        "xterm-256color",
    )
    .unwrap();
    assert!(theme.is_mono());
    // TERM=dumb means no colour too; a colour terminal keeps the theme.
    let light = Theme::builtin("light").unwrap();
    assert!(light.for_session(false, "dumb").is_mono());
    assert_eq!(light.for_session(false, "xterm-256color"), light);
    let mut menu = menu();
    let mut client = Client::with(80, 24, ColorMode::detect("xterm-256color", true), theme);
    client.show(&menu);
    type_into(&mut menu, b"web\r");
    client.show(&menu);
    let sgr = sgr_params(&client.sent);
    assert!(!sgr.is_empty());
    assert!(sgr.iter().flatten().all(|p| !is_colour(*p)), "{sgr:?}");
    assert!(!client.sent_text().contains("38;5") && !client.sent_text().contains("38;2"));
    // The selection is still visible: reverse video.
    let screen = client.term.screen();
    let reversed = (0..24).any(|r| (0..80).any(|c| screen.cell(r, c).is_some_and(|x| x.inverse())));
    assert!(reversed);
}

#[test]
fn sixteen_colour_mode_maps_indexed_colours_down() {
    // The light theme uses colour 130 for warnings.
    let light = Theme::builtin("light").unwrap();
    let menu = menu().with_notice(Severity::Warning, "careful");
    let mut full = Client::with(80, 24, ColorMode::Full, light.clone());
    full.show(&menu);
    assert!(full.sent_text().contains("38;5;130"));
    let mut ansi = Client::with(80, 24, ColorMode::detect("xterm", false), light);
    ansi.show(&menu);
    let sgr = sgr_params(&ansi.sent);
    assert!(sgr.iter().any(|p| p.iter().any(|x| is_colour(*x))));
    assert!(!ansi.sent_text().contains("38;5") && !ansi.sent_text().contains("48;5"));
}

#[test]
fn a_bad_theme_file_names_the_file_and_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("mine.toml");
    let file = rampart::config::Theme::File(path.clone());
    let cases = [
        (
            "[roles]\nselected = { fg = \"purpel\" }\n",
            "roles.selected.fg",
            "unknown colour \"purpel\"",
        ),
        (
            "[roles]\nslected = { fg = \"red\" }\n",
            "roles.slected",
            "unknown role",
        ),
        (
            "[roles]\ndanger = { bold = \"yes\" }\n",
            "roles.danger.bold",
            "must be true or false",
        ),
        (
            "[roles]\ndanger = { blink = true }\n",
            "roles.danger.blink",
            "unknown key",
        ),
        ("[colours]\n", "colours", "unknown key"),
    ];
    for (text, key, reason) in cases {
        std::fs::write(&path, text).unwrap();
        let err = Theme::load(&file).unwrap_err().to_string();
        assert!(err.starts_with(&path.display().to_string()), "{err}");
        assert!(err.contains(key) && err.contains(reason), "{err}");
        // Also when the terminal has no colour and mono would be used.
        assert!(Theme::for_terminal(&file, true, "dumb").is_err());
    }
    std::fs::write(&path, "[roles]\nselected = { bg = \"#884400\" }\n").unwrap();
    let theme = Theme::load(&file).unwrap();
    assert_eq!(
        theme.selected().bg,
        Some(ratatui::style::Color::Rgb(0x88, 0x44, 0))
    );
    assert_eq!(theme.danger(), Theme::default().danger());
    let missing = rampart::config::Theme::File(dir.path().join("absent.toml"));
    assert!(
        Theme::load(&missing)
            .unwrap_err()
            .to_string()
            .contains("absent.toml")
    );
}

// ----------------------------------------------------------------- input

fn keys(chunks: &[&[u8]]) -> Vec<Key> {
    let mut p = InputParser::new();
    let mut out = Vec::new();
    for chunk in chunks {
        out.extend(p.feed(chunk));
    }
    out.extend(p.flush());
    out
}

#[test]
fn input_parser_understands_terminal_keys() {
    use Key::*;
    assert_eq!(
        keys(&[b"\x1b[A\x1b[B\x1b[C\x1b[D"]),
        vec![Up, Down, Right, Left]
    );
    // Application cursor mode, and an arrow split across two reads.
    assert_eq!(keys(&[b"\x1bOA", b"\x1b[", b"B"]), vec![Up, Down]);
    // Home/End in their xterm, vt220 and rxvt forms.
    assert_eq!(
        keys(&[b"\x1b[H\x1b[F\x1b[1~\x1b[4~\x1b[7~\x1b[8~"]),
        vec![Home, End, Home, End, Home, End]
    );
    assert_eq!(
        keys(&[b"\x1b[5~\x1b[6~\x1b[3~\x1b[2~"]),
        vec![PageUp, PageDown, Delete, Insert]
    );
    assert_eq!(
        keys(&[b"\t\x1b[Z\r\x7f"]),
        vec![Tab, BackTab, Enter, Backspace]
    );
    assert_eq!(keys(&[b"\x1bOP\x1b[15~"]), vec![F(1), F(5)]);
    assert_eq!(
        keys(&[b"\x03\x15\x01"]),
        vec![Ctrl('c'), Ctrl('u'), Ctrl('a')]
    );
}

#[test]
fn alt_x_versus_esc_then_x() {
    // ESC and x in one read: Alt-x.
    assert_eq!(keys(&[b"\x1bx"]), vec![Key::Alt('x')]);
    // ESC, then silence (the caller flushes after ESC_TIMEOUT), then x.
    let mut p = InputParser::new();
    assert!(p.feed(b"\x1b").is_empty());
    assert_eq!(p.flush(), vec![Key::Esc]);
    assert_eq!(p.feed(b"x"), vec![Key::Char('x')]);
    assert!(rampart::tui::ESC_TIMEOUT.as_millis() <= 100);
}

#[test]
fn utf8_split_across_reads_and_bracketed_paste() {
    assert_eq!(keys(&[b"\xc3", b"\xa9"]), vec![Key::Char('é')]);
    assert_eq!(
        keys(&[b"\xe2\x82", b"\xac!"]),
        vec![Key::Char('€'), Key::Char('!')]
    );
    assert_eq!(
        keys(&[b"a\x1b[200~one\ntw", b"o\x1b[20", b"1~b"]),
        vec![
            Key::Char('a'),
            Key::Paste("one\ntwo".into()),
            Key::Char('b')
        ]
    );
    // SGR mouse reports are dropped.
    assert_eq!(
        keys(&[b"\x1b[<0;10;5M\x1b[<0;10;5mz"]),
        vec![Key::Char('z')]
    );
    // A paste's Debug form does not show its text.
    assert_eq!(
        format!("{:?}", Key::Paste("secret".into())),
        "Paste([6 chars])"
    );
}

// ------------------------------------------------------- enrol, passwd, box

const OTPAUTH: &str =
    "otpauth://totp/rampart:alice?secret=JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP&issuer=rampart";

fn enrol() -> Enrol {
    Enrol::new(
        &Secret::new(OTPAUTH.to_string()),
        Secret::new("JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP".into()),
    )
}

fn show_enrol(client: &mut Client, enrol: &Enrol) {
    let theme = client.theme.clone();
    let bytes = client.screen.draw(|f| enrol.render(f, &theme));
    client.send(&bytes);
}

/// Reads the QR code back off the emulator's screen: each cell's glyph
/// gives two modules. Returns the dark/light grid without the quiet zone.
fn read_qr(client: &Client) -> Vec<Vec<bool>> {
    let screen = client.term.screen();
    let (rows, cols) = screen.size();
    let (rows, cols) = (rows.get(), cols.get());
    let mut grid: Vec<Vec<bool>> = Vec::new();
    for r in 0..rows {
        let mut top = Vec::new();
        let mut bottom = Vec::new();
        for c in 0..cols {
            let Some(cell) = screen.cell(r, c) else { break };
            let (t, b) = match cell.contents() {
                "█" => (true, true),
                "▀" => (true, false),
                "▄" => (false, true),
                " " if cell.bgcolor() == vt100::Color::Idx(15) => (false, false),
                _ => break,
            };
            top.push(t);
            bottom.push(b);
        }
        if top.len() > 20 {
            grid.push(top);
            grid.push(bottom);
        }
    }
    // Strip the light quiet zone.
    grid.retain(|row| row.iter().any(|d| *d));
    let left = grid
        .iter()
        .filter_map(|r| r.iter().position(|d| *d))
        .min()
        .unwrap_or(0);
    let right = grid
        .iter()
        .filter_map(|r| r.iter().rposition(|d| *d))
        .max()
        .unwrap_or(0);
    grid.iter().map(|r| r[left..=right].to_vec()).collect()
}

#[test]
fn enrolment_draws_a_faithful_qr_code_at_80x24() {
    let mut enrol = enrol();
    let mut client = Client::new(80, 24);
    show_enrol(&mut client, &enrol);
    let text = client.text();
    assert!(text.contains("JBSW Y3DP EHPK 3PXP"), "{text}");
    assert!(text.contains("6-digit code"), "{text}");
    // Black on white, whatever the terminal's own colours.
    let sgr = sgr_params(&client.sent);
    assert!(
        sgr.iter().any(|p| p.contains(&30) && p.contains(&107)),
        "{sgr:?}"
    );
    let code = qrcode::QrCode::with_error_correction_level(OTPAUTH, qrcode::EcLevel::L).unwrap();
    let width = code.width();
    let expected: Vec<Vec<bool>> = code
        .to_colors()
        .chunks(width)
        .map(|row| row.iter().map(|c| *c == qrcode::Color::Dark).collect())
        .collect();
    assert_eq!(
        read_qr(&client),
        expected,
        "the screen shows exactly the QR modules"
    );

    // The code input takes digits only; Enter with six returns them.
    for key in [Key::Char('1'), Key::Char('x'), Key::Paste("23456".into())] {
        assert!(enrol.handle(key).is_none());
    }
    show_enrol(&mut client, &enrol);
    assert!(client.text().contains("123456"));
    assert_eq!(
        enrol.handle(Key::Enter),
        Some(EnrolOutcome::Code("123456".into()))
    );
    enrol.set_error("That code is not valid; try the next one.");
    show_enrol(&mut client, &enrol);
    assert!(client.text().contains("not valid"), "{}", client.text());
    assert_eq!(enrol.handle(Key::Esc), Some(EnrolOutcome::Cancel));
}

#[test]
fn enrolment_on_a_small_terminal_shows_the_secret_only() {
    let enrol = enrol();
    let mut client = Client::new(60, 20);
    show_enrol(&mut client, &enrol);
    let text = client.text();
    assert!(text.contains("too small for the QR code"), "{text}");
    assert!(text.contains("JBSW Y3DP"), "{text}");
    assert!(!text.contains('▀'));
}

#[test]
fn enrolment_in_mono_uses_reverse_video() {
    let mut client = Client::with(80, 24, ColorMode::None, Theme::builtin("mono").unwrap());
    show_enrol(&mut client, &enrol());
    assert!(client.text().contains('▀') || client.text().contains('▄'));
    let sgr = sgr_params(&client.sent);
    assert!(sgr.iter().flatten().all(|p| !is_colour(*p)));
    assert!(sgr.iter().any(|p| p.contains(&7)));
}

#[test]
fn password_change_is_masked_and_checks_the_confirmation() {
    let mut passwd = Passwd::default();
    let mut client = Client::new(80, 24);
    let draw = |client: &mut Client, passwd: &Passwd| {
        let theme = client.theme.clone();
        let bytes = client.screen.draw(|f| passwd.render(f, &theme));
        client.send(&bytes);
    };
    let type_keys = |passwd: &mut Passwd, text: &str| {
        let mut out = None;
        for key in keys(&[text.as_bytes()]) {
            out = passwd.handle(key).or(out);
        }
        out
    };
    assert!(type_keys(&mut passwd, "correct-horse\rcorrect-hose\r").is_none());
    draw(&mut client, &passwd);
    assert!(client.text().contains("do not match"), "{}", client.text());
    type_keys(&mut passwd, "correct-horse\rcorrect-hors");
    draw(&mut client, &passwd);
    assert!(client.text().contains("*************") && client.text().contains("************"));
    match type_keys(&mut passwd, "e\r") {
        Some(PasswdOutcome::New(secret)) => assert_eq!(secret.expose(), "correct-horse"),
        other => panic!("{other:?}"),
    }
    passwd.set_error("Too short: at least 12 characters.");
    draw(&mut client, &passwd);
    assert!(client.text().contains("Too short"));
    assert!(!client.sent_text().contains("horse") && !client.sent_text().contains("hose"));
    assert!(matches!(
        passwd.handle(Key::Esc),
        Some(PasswdOutcome::Cancel)
    ));
}

#[test]
fn message_box_shows_a_refusal() {
    let mut message = MessageBox::refusal("access denied: web9 is not available to you");
    let mut client = Client::new(80, 24);
    let theme = client.theme.clone();
    let bytes = client.screen.draw(|f| message.render(f, &theme));
    client.send(&bytes);
    let text = client.text();
    assert!(
        text.contains("Refused") && text.contains("access denied"),
        "{text}"
    );
    assert!(!message.handle(Key::Char('x')));
    assert!(message.handle(Key::Enter));
}
