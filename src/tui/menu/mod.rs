//! The asset menu: the screen `ssh bastion` opens. It shows the assets the
//! policy lets this person see, filters them as they type, restricts them
//! to a node of the tree, and walks the person through account, protocol
//! and (for `@INPUT`) username and password, ending in a [`MenuOutcome`].
//!
//! The flow is Input → Action → state → render: [`Menu::handle`] maps a
//! [`Key`] to a change of plain state, [`Menu::render`] draws that state,
//! and nothing here blocks or does I/O. The caller keeps the `Menu` while a
//! target session runs and shows it again afterwards, selection and filter
//! intact. Which accounts and protocols are offered comes from
//! [`VisibleAsset`]; the caller still asks `policy::authorize` for the
//! choice made, because the snapshot may have changed in between.

mod view;

use std::cell::Cell;

use zeroize::Zeroize;

use super::Severity;
use super::field::Field;
use super::filter::{Haystack, Query};
use super::input::Key;
use super::passwd::MAX_PASSWORD;
use super::tree::{Tree, under};
use crate::model::{Identity, Role};
use crate::policy::VisibleAsset;
use crate::vault::Secret;

/// Protocols the menu offers: `ssh` opens in the person's terminal, `rdp`
/// gives a one-time ticket for their RDP client, `postgresql` opens psql
/// (and, with the tunnel action, a one-time password for a desktop tool:
/// [`desktop_tool`]), `https`/`http` give a one-time link for the
/// browser. The others an asset grants (sftp...) are shown greyed in the
/// details pane and are not offered.
pub const MENU_PROTOCOLS: &[&str] = &[
    "ssh",
    "rdp",
    "postgresql",
    "mysql",
    "mariadb",
    "redis",
    "https",
    "http",
];

/// The menu's choice of a one-time password for a desktop tool (through
/// `ssh -L`) on a database protocol, for a person with the tunnel action.
pub fn desktop_tool(protocol: &str) -> String {
    format!("{protocol} {DESKTOP_TOOL}")
}

/// The database protocol of a [`desktop_tool`] choice.
pub fn of_desktop_tool(choice: &str) -> Option<&str> {
    choice.strip_suffix(DESKTOP_TOOL).map(str::trim_end)
}

const DESKTOP_TOOL: &str = "(desktop tool: one-time password)";

/// How many recently used assets are kept at the top of the list.
const RECENT_MAX: usize = 10;
/// Longest username accepted at the @INPUT prompt.
const MAX_USERNAME: usize = 128;

/// Which account the person chose.
#[derive(Debug, Clone)]
pub enum Chosen {
    /// A stored account, by username; its secret stays in the vault.
    Stored(String),
    /// Typed at the `@INPUT` prompt; never stored.
    Input {
        username: String,
        password: Secret<String>,
    },
}

/// What the menu asks the caller to do.
#[derive(Debug, Clone)]
pub enum MenuOutcome {
    Connect {
        asset: String,
        account: Chosen,
        protocol: String,
    },
    Quit,
}

/// One asset with its precomputed search text.
struct Entry {
    asset: VisibleAsset,
    hay: Haystack,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Focus {
    List,
    Tree,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum AccountChoice {
    Stored(String),
    Input,
}

impl AccountChoice {
    fn label(&self) -> &str {
        match self {
            AccountChoice::Stored(name) => name,
            AccountChoice::Input => "@INPUT: type a username",
        }
    }
}

/// Which screen of the connect flow is up.
#[derive(Debug)]
enum Mode {
    Browse,
    Help,
    Account {
        entry: u32,
        choices: Vec<AccountChoice>,
        sel: usize,
    },
    Protocol {
        entry: u32,
        account: AccountChoice,
        choices: Vec<String>,
        sel: usize,
    },
    Username {
        entry: u32,
        protocol: String,
        field: Field,
    },
    Password {
        entry: u32,
        protocol: String,
        username: String,
        field: Field,
    },
}

/// How many earlier filter results are kept for Backspace. Each holds up
/// to two lists as long as the asset list, so this bounds the memory.
const HISTORY_MAX: usize = 8;

/// The results of an earlier, shorter query.
struct Filtered {
    query: Query,
    visible: Vec<u32>,
    matched: Vec<u32>,
}

/// Scroll positions and pane sizes, written by `render` (which takes
/// `&self`) and read by `handle` for paging.
#[derive(Debug, Clone, Copy, Default)]
struct ViewState {
    list_offset: usize,
    list_height: usize,
    tree_offset: usize,
    tree_height: usize,
    tree_shown: bool,
}

/// The menu's state for one session.
pub struct Menu {
    entries: Vec<Entry>,
    user: String,
    role: Role,
    notice: Option<(Severity, String)>,
    /// Feedback on the last key ("no account..."), cleared by the next one.
    message: Option<(Severity, String)>,
    /// Asset names, most recent first.
    recent: Vec<String>,
    tree: Tree,
    tree_row: usize,
    /// The node the list is restricted to, and its entries (ascending).
    scope: Option<u32>,
    scope_members: Vec<u32>,
    query_text: String,
    /// `/` was pressed: `q` and `?` are typed into the filter.
    typing: bool,
    query: Query,
    /// Entries matching `query` within the scope, for narrowing.
    matched: Vec<u32>,
    /// Scratch for scoring; kept to avoid allocating per keystroke.
    keys: Vec<u64>,
    scratch: Vec<u32>,
    /// What the list shows, in order.
    visible: Vec<u32>,
    /// Results of the shorter queries typed before this one, oldest first.
    history: Vec<Filtered>,
    selected: usize,
    focus: Focus,
    mode: Mode,
    view: Cell<ViewState>,
}

impl std::fmt::Debug for Menu {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Menu")
            .field("assets", &self.entries.len())
            .field("visible", &self.visible.len())
            .field("query", &self.query_text)
            .field("mode", &self.mode)
            .finish_non_exhaustive()
    }
}

impl Menu {
    /// A menu over `assets` (as `policy::Snapshot::visible_assets` returns
    /// them) for the person `who`.
    pub fn new(assets: Vec<VisibleAsset>, who: &Identity) -> Menu {
        let mut menu = Menu {
            entries: Vec::new(),
            user: who.name.clone(),
            role: who.role,
            notice: None,
            message: None,
            recent: Vec::new(),
            tree: Tree::default(),
            tree_row: 0,
            scope: None,
            scope_members: Vec::new(),
            query_text: String::new(),
            typing: false,
            query: Query::default(),
            matched: Vec::new(),
            keys: Vec::new(),
            scratch: Vec::new(),
            visible: Vec::new(),
            history: Vec::new(),
            selected: 0,
            focus: Focus::List,
            mode: Mode::Browse,
            view: Cell::new(ViewState {
                list_height: 10,
                tree_height: 10,
                ..ViewState::default()
            }),
        };
        menu.load(assets);
        menu
    }

    /// Recently used asset names, most recent first; shown at the top while
    /// the filter is empty.
    pub fn with_recent(mut self, recent: Vec<String>) -> Menu {
        self.recent = recent;
        self.recent.truncate(RECENT_MAX);
        self.history.clear();
        self.refilter(false);
        self
    }

    /// A line under the header: last login and failures, or a refusal.
    pub fn with_notice(mut self, severity: Severity, text: impl Into<String>) -> Menu {
        self.notice = Some((severity, text.into()));
        self
    }

    pub fn set_notice(&mut self, notice: Option<(Severity, String)>) {
        self.notice = notice;
    }

    /// Replaces the assets (the policy changed), keeping the filter, the
    /// node and the selected asset where they still exist.
    pub fn set_assets(&mut self, assets: Vec<VisibleAsset>) {
        let keep = self.selected_asset().map(|a| a.name().to_string());
        let scope = self
            .scope
            .and_then(|n| self.tree.node(n))
            .map(|n| n.path.clone());
        self.load(assets);
        if let Some(path) = scope
            && let Some(id) = self.tree.nodes.iter().position(|n| n.path == path)
        {
            let id = id as u32;
            self.set_scope(Some(id));
            self.tree_row = self.tree.row_of(Some(id)).unwrap_or(0);
        }
        if let Some(name) = keep {
            self.select_name(&name);
        }
    }

    /// Assets names used recently, most recent first (the caller may keep
    /// them across logins).
    pub fn recent(&self) -> &[String] {
        &self.recent
    }

    pub fn selected_asset(&self) -> Option<&VisibleAsset> {
        let &i = self.visible.get(self.selected)?;
        self.entries.get(i as usize).map(|e| &e.asset)
    }

    /// How many assets the list shows now, and how many there are.
    pub fn counts(&self) -> (usize, usize) {
        (self.visible.len(), self.entries.len())
    }

    fn load(&mut self, mut assets: Vec<VisibleAsset>) {
        // Sorted by name so recent names can be found by binary search; the
        // policy already returns them sorted, which makes this a quick check.
        if !assets.is_sorted_by(|a, b| a.name() <= b.name()) {
            assets.sort_by(|a, b| a.name().cmp(b.name()));
        }
        self.entries = assets
            .into_iter()
            .map(|asset| {
                let hay = Haystack::new(
                    asset.name(),
                    asset.address(),
                    asset.nodes(),
                    asset.comment(),
                );
                Entry { asset, hay }
            })
            .collect();
        self.tree = Tree::build(self.entries.iter().map(|e| e.asset.nodes()));
        self.tree_row = 0;
        self.scope = None;
        self.scope_members.clear();
        self.query = Query::new(&self.query_text);
        self.history.clear();
        self.refilter(false);
        self.selected = 0;
    }

    fn find(&self, name: &str) -> Option<u32> {
        self.entries
            .binary_search_by(|e| e.asset.name().cmp(name))
            .ok()
            .map(|i| i as u32)
    }

    fn in_scope(&self, entry: u32) -> bool {
        self.scope.is_none() || self.scope_members.binary_search(&entry).is_ok()
    }

    fn select_name(&mut self, name: &str) {
        if let Some(i) = self.find(name)
            && let Some(pos) = self.visible.iter().position(|&v| v == i)
        {
            self.selected = pos;
        }
    }

    /// Recomputes `visible`. `narrowing`: the query only grew, so only the
    /// previous matches can match. Callers other than `set_query` changed
    /// what a query yields, so they also forget the kept results.
    fn refilter(&mut self, narrowing: bool) {
        self.visible.clear();
        if self.query.is_empty() {
            let recent: Vec<u32> = self
                .recent
                .iter()
                .filter_map(|name| self.find(name))
                .filter(|&i| self.in_scope(i))
                .collect();
            self.visible.extend_from_slice(&recent);
            let rest = |i: &u32| !recent.contains(i);
            if self.scope.is_some() {
                self.visible
                    .extend(self.scope_members.iter().copied().filter(rest));
            } else {
                self.visible
                    .extend((0..self.entries.len() as u32).filter(rest));
            }
            self.matched.clear();
            return;
        }
        self.keys.clear();
        self.scratch.clear();
        let query = &self.query;
        let entries = &self.entries;
        let mut score = |i: u32| {
            if let Some(s) = entries.get(i as usize).and_then(|e| query.score(&e.hay)) {
                // Best score first, then name order: one u64 sort key.
                self.keys
                    .push((u64::from(u32::MAX - s) << 32) | u64::from(i));
                self.scratch.push(i);
            }
        };
        if narrowing {
            self.matched.iter().copied().for_each(&mut score);
        } else if self.scope.is_some() {
            self.scope_members.iter().copied().for_each(&mut score);
        } else {
            (0..entries.len() as u32).for_each(&mut score);
        }
        self.keys.sort_unstable();
        self.visible
            .extend(self.keys.iter().map(|k| (k & u64::from(u32::MAX)) as u32));
        std::mem::swap(&mut self.matched, &mut self.scratch);
    }

    fn set_query(&mut self, text: String) {
        let query = Query::new(&text);
        self.query_text = text;
        if query == self.query {
            return;
        }
        self.selected = 0;
        if let Some(at) = self.history.iter().rposition(|h| h.query == query) {
            // Backspace back to an earlier query: its results were kept, so
            // deleting costs nothing instead of a rescan of every asset.
            self.history.truncate(at + 1);
            if let Some(h) = self.history.pop() {
                self.query = h.query;
                self.visible = h.visible;
                self.matched = h.matched;
            }
            return;
        }
        let narrowing = self.query.narrows_to(&query);
        // The empty query keeps no match list to narrow from.
        let from_matches = narrowing && !self.query.is_empty();
        if narrowing {
            if self.history.len() == HISTORY_MAX {
                self.history.remove(0);
            }
            self.history.push(Filtered {
                query: self.query.clone(),
                visible: std::mem::take(&mut self.visible),
                // The empty query's matches are the whole scope.
                matched: if self.query.is_empty() {
                    Vec::new()
                } else {
                    self.matched.clone()
                },
            });
        } else {
            self.history.clear();
        }
        self.query = query;
        self.refilter(from_matches);
    }

    fn set_scope(&mut self, node: Option<u32>) {
        if node == self.scope {
            return;
        }
        self.scope = node;
        self.scope_members.clear();
        if let Some(path) = node
            .and_then(|n| self.tree.node(n))
            .map(|n| n.path.as_str())
        {
            for (i, e) in self.entries.iter().enumerate() {
                if e.asset.nodes().iter().any(|p| under(p, path)) {
                    self.scope_members.push(i as u32);
                }
            }
        }
        self.history.clear();
        self.refilter(false);
        self.selected = 0;
    }

    /// Handles one key; `Some` when the person chose a target or quit.
    pub fn handle(&mut self, mut key: Key) -> Option<MenuOutcome> {
        let outcome = self.apply(&key);
        // A paste may have gone into the password prompt: wipe our copy.
        if let Key::Paste(text) = &mut key {
            text.zeroize();
        }
        outcome
    }

    fn apply(&mut self, key: &Key) -> Option<MenuOutcome> {
        self.message = None;
        let mode = std::mem::replace(&mut self.mode, Mode::Browse);
        match mode {
            Mode::Browse => self.browse(key),
            Mode::Help => {
                // Any key closes the help; Ctrl-C still quits.
                matches!(key, Key::Ctrl('c')).then_some(MenuOutcome::Quit)
            }
            Mode::Account {
                entry,
                choices,
                mut sel,
            } => match choose(key, &mut sel, choices.len()) {
                Choice::Picked => {
                    let account = choices.get(sel).cloned()?;
                    self.after_account(entry, account)
                }
                Choice::Back => None,
                Choice::Stay => {
                    self.mode = Mode::Account {
                        entry,
                        choices,
                        sel,
                    };
                    None
                }
            },
            Mode::Protocol {
                entry,
                account,
                choices,
                mut sel,
            } => match choose(key, &mut sel, choices.len()) {
                Choice::Picked => {
                    let protocol = choices.get(sel).cloned()?;
                    self.after_protocol(entry, account, protocol)
                }
                Choice::Back => None,
                Choice::Stay => {
                    self.mode = Mode::Protocol {
                        entry,
                        account,
                        choices,
                        sel,
                    };
                    None
                }
            },
            Mode::Username {
                entry,
                protocol,
                mut field,
            } => {
                match key {
                    Key::Esc | Key::Ctrl('c') => return None,
                    Key::Enter if field.text().trim().is_empty() => {
                        self.message = Some((Severity::Warning, "Type a username.".into()));
                    }
                    Key::Enter => {
                        self.mode = Mode::Password {
                            entry,
                            protocol,
                            username: field.text().trim().to_string(),
                            field: Field::masked(MAX_PASSWORD),
                        };
                        return None;
                    }
                    key => {
                        field.handle(key);
                    }
                }
                self.mode = Mode::Username {
                    entry,
                    protocol,
                    field,
                };
                None
            }
            Mode::Password {
                entry,
                protocol,
                username,
                mut field,
            } => match key {
                Key::Esc | Key::Ctrl('c') => None,
                Key::Enter => {
                    let password = field.take_secret();
                    self.connect(entry, Chosen::Input { username, password }, protocol)
                }
                key => {
                    field.handle(key);
                    self.mode = Mode::Password {
                        entry,
                        protocol,
                        username,
                        field,
                    };
                    None
                }
            },
        }
    }

    fn browse(&mut self, key: &Key) -> Option<MenuOutcome> {
        let filtering = self.typing || !self.query_text.is_empty();
        match key {
            Key::Ctrl('c') => return Some(MenuOutcome::Quit),
            Key::Ctrl('d') if !filtering => return Some(MenuOutcome::Quit),
            Key::Esc if filtering => {
                self.typing = false;
                self.set_query(String::new());
            }
            Key::Esc => return Some(MenuOutcome::Quit),
            Key::Char('q') if !filtering => return Some(MenuOutcome::Quit),
            Key::Char('?') | Key::F(1) if !filtering => self.mode = Mode::Help,
            Key::Char('/') if !filtering => {
                self.typing = true;
                self.focus = Focus::List;
            }
            Key::Tab | Key::BackTab => {
                self.focus = match self.focus {
                    Focus::List if self.view.get().tree_shown => Focus::Tree,
                    _ => Focus::List,
                };
            }
            Key::Enter => match self.focus {
                Focus::Tree => self.focus = Focus::List,
                Focus::List => return self.start_connect(),
            },
            Key::Up | Key::Ctrl('p') => self.move_by(-1),
            Key::Down | Key::Ctrl('n') => self.move_by(1),
            Key::PageUp => self.move_by(-(self.page() as isize)),
            Key::PageDown => self.move_by(self.page() as isize),
            Key::Home => self.move_by(isize::MIN),
            Key::End => self.move_by(isize::MAX),
            Key::Right if self.focus == Focus::Tree => self.fold(true),
            Key::Left if self.focus == Focus::Tree => self.fold(false),
            Key::Backspace => {
                let mut text = self.query_text.clone();
                text.pop();
                self.set_query(text);
            }
            Key::Ctrl('u') => self.set_query(String::new()),
            Key::Ctrl('w') => {
                let text = self.query_text.trim_end();
                let cut = text.rfind(char::is_whitespace).map_or(0, |i| i + 1);
                self.set_query(text.get(..cut).unwrap_or("").to_string());
            }
            Key::Char(c) => {
                self.focus = Focus::List;
                let mut text = self.query_text.clone();
                text.push(*c);
                self.set_query(text);
            }
            Key::Paste(pasted) => {
                self.focus = Focus::List;
                let mut text = self.query_text.clone();
                text.extend(pasted.chars().filter(|c| !c.is_control()).take(256));
                self.set_query(text);
            }
            _ => {}
        }
        None
    }

    fn page(&self) -> usize {
        let v = self.view.get();
        match self.focus {
            Focus::List => v.list_height,
            Focus::Tree => v.tree_height,
        }
        .max(1)
    }

    fn move_by(&mut self, delta: isize) {
        let step = |pos: usize, len: usize| -> usize {
            if len == 0 {
                return 0;
            }
            pos.saturating_add_signed(delta).min(len - 1)
        };
        match self.focus {
            Focus::List => self.selected = step(self.selected, self.visible.len()),
            Focus::Tree => {
                self.tree_row = step(self.tree_row, self.tree.rows().len());
                let node = self.tree.rows().get(self.tree_row).copied().flatten();
                self.set_scope(node);
            }
        }
    }

    /// Right opens a node; Left closes it, or goes to its parent.
    fn fold(&mut self, open: bool) {
        let Some(Some(node)) = self.tree.rows().get(self.tree_row).copied() else {
            return;
        };
        if self.tree.set_expanded(node, open) {
            self.tree_row = self.tree.row_of(Some(node)).unwrap_or(0);
        } else if !open {
            let parent = self.tree.parent(node);
            self.tree_row = self.tree.row_of(parent).unwrap_or(0);
            self.set_scope(parent);
        }
    }

    fn start_connect(&mut self) -> Option<MenuOutcome> {
        let &entry = self.visible.get(self.selected)?;
        let asset = &self.entries.get(entry as usize)?.asset;
        let mut choices: Vec<AccountChoice> = asset
            .accounts()
            .map(|a| AccountChoice::Stored(a.username().to_string()))
            .collect();
        if asset.input_allowed() {
            choices.push(AccountChoice::Input);
        }
        match choices.len() {
            0 => {
                self.message = Some((
                    Severity::Warning,
                    format!("No account on {} is granted to you.", asset.name()),
                ));
                None
            }
            1 => {
                let account = choices.pop()?;
                self.after_account(entry, account)
            }
            _ => {
                self.mode = Mode::Account {
                    entry,
                    choices,
                    sel: 0,
                };
                None
            }
        }
    }

    fn after_account(&mut self, entry: u32, account: AccountChoice) -> Option<MenuOutcome> {
        let asset = &self.entries.get(entry as usize)?.asset;
        let mut choices: Vec<String> = Vec::new();
        for p in asset.protocols() {
            if MENU_PROTOCOLS.contains(&p.name.as_str()) && !choices.contains(&p.name) {
                choices.push(p.name.clone());
            }
        }
        let tunnels = asset.actions().contains(crate::model::Action::Tunnel);
        for p in asset.protocols() {
            let tool = desktop_tool(&p.name);
            if tunnels
                && crate::ops::TUNNELLED.contains(&p.name.as_str())
                && !choices.contains(&tool)
            {
                choices.push(tool);
            }
        }
        match choices.len() {
            0 => {
                let others: Vec<&str> = asset.protocols().map(|p| p.name.as_str()).collect();
                self.message = Some((
                    Severity::Warning,
                    format!(
                        "{} offers only {}, which this menu cannot open yet.",
                        asset.name(),
                        others.join(", ")
                    ),
                ));
                None
            }
            1 => {
                let protocol = choices.pop()?;
                self.after_protocol(entry, account, protocol)
            }
            _ => {
                self.mode = Mode::Protocol {
                    entry,
                    account,
                    choices,
                    sel: 0,
                };
                None
            }
        }
    }

    fn after_protocol(
        &mut self,
        entry: u32,
        account: AccountChoice,
        protocol: String,
    ) -> Option<MenuOutcome> {
        match account {
            AccountChoice::Stored(name) => self.connect(entry, Chosen::Stored(name), protocol),
            // An RDP ticket carries a stored account's password; a typed-in
            // one would have to reach the RDP front some other way.
            AccountChoice::Input
                if protocol == "rdp"
                    || of_desktop_tool(&protocol).is_some()
                    || crate::ops::WEB_PROTOCOLS.contains(&protocol.as_str()) =>
            {
                self.message = Some((
                    Severity::Warning,
                    "One-time passwords work with the stored accounts only: pick one of them."
                        .into(),
                ));
                None
            }
            AccountChoice::Input => {
                self.mode = Mode::Username {
                    entry,
                    protocol,
                    field: Field::plain(MAX_USERNAME),
                };
                None
            }
        }
    }

    fn connect(&mut self, entry: u32, account: Chosen, protocol: String) -> Option<MenuOutcome> {
        let asset = self.entries.get(entry as usize)?.asset.name().to_string();
        self.recent.retain(|r| *r != asset);
        self.recent.insert(0, asset.clone());
        self.recent.truncate(RECENT_MAX);
        // The unfiltered order changed (recent first).
        self.history.clear();
        if self.query.is_empty() {
            // Recent assets lead the unfiltered list: keep the cursor on
            // the one just chosen.
            self.refilter(false);
            self.select_name(&asset);
        }
        Some(MenuOutcome::Connect {
            asset,
            account,
            protocol,
        })
    }
}

enum Choice {
    Picked,
    Back,
    Stay,
}

/// Keys of the account and protocol choosers.
fn choose(key: &Key, sel: &mut usize, len: usize) -> Choice {
    let last = len.saturating_sub(1);
    match key {
        Key::Enter => return Choice::Picked,
        Key::Esc | Key::Ctrl('c') | Key::Char('q') => return Choice::Back,
        Key::Up | Key::Ctrl('p') => *sel = sel.saturating_sub(1),
        Key::Down | Key::Ctrl('n') | Key::Tab => *sel = (*sel + 1).min(last),
        Key::Home | Key::PageUp => *sel = 0,
        Key::End | Key::PageDown => *sel = last,
        Key::Char(c @ '1'..='9') => {
            let n = (*c as usize) - ('1' as usize);
            if n < len {
                *sel = n;
                return Choice::Picked;
            }
        }
        _ => {}
    }
    Choice::Stay
}
