//! Menu benchmark: how fast the asset menu appears and follows the keyboard
//! for a person who can see 10k and 100k assets filed in a node tree.
//!
//! Measured from the `Vec<VisibleAsset>` the policy hands over:
//! - first paint: `Menu::new` plus the first 80×24 frame's bytes (target
//!   < 100 ms at 10k);
//! - one keystroke: `Menu::handle` plus the frame's bytes, typing a
//!   6-character filter one key at a time and deleting it again with
//!   Backspace (target < 16 ms at 100k);
//! - a rescan: Backspace after pasting the filter, which the results kept
//!   for Backspace cannot answer, so every asset is scored again.
//!
//! Run with `cargo bench --bench menu`; prints one table.

use std::hint::black_box;
use std::time::{Duration, Instant};

use jiff::Timestamp;
use rampart::model::{AccountSpec, Actions, Identity, Protocol, ProtocolSpec, Role};
use rampart::policy::data::{
    AccountEntry, AssetEntry, NodeEntry, PermissionEntry, PolicyData, UserEntry,
};
use rampart::policy::{Snapshot, VisibleAsset};
use rampart::tui::{ColorMode, Key, Menu, Screen, Theme};

const SIZES: [usize; 2] = [10_000, 100_000];
/// Typed one key at a time, then deleted one key at a time.
const FILTER: &str = "web4a2";
const ROUNDS: usize = 5;

/// Nodes: /DEFAULT, 10 regions, 100 zones, 1000 racks; assets spread over
/// the racks.
fn policy_data(assets: usize) -> PolicyData {
    let mut nodes = vec!["/DEFAULT".to_string()];
    for r in 0..10 {
        nodes.push(format!("/DEFAULT/region{r}"));
        for z in 0..10 {
            nodes.push(format!("/DEFAULT/region{r}/zone{z}"));
            for k in 0..10 {
                nodes.push(format!("/DEFAULT/region{r}/zone{z}/rack{k}"));
            }
        }
    }
    let racks: Vec<&String> = nodes.iter().filter(|n| n.contains("rack")).collect();
    let kinds = ["web", "db", "cache", "api", "batch", "mq"];
    let ssh: Protocol = "ssh/22".parse().unwrap_or_else(|e| panic!("{e}"));
    let sftp: Protocol = "sftp/22".parse().unwrap_or_else(|e| panic!("{e}"));
    let mut data = PolicyData {
        users: vec![UserEntry {
            id: "u0".into(),
            name: "alice".into(),
            active: true,
            expires_at: None,
        }],
        nodes: nodes
            .iter()
            .map(|p| NodeEntry {
                id: format!("n{p}"),
                path: p.clone(),
            })
            .collect(),
        ..PolicyData::default()
    };
    for i in 0..assets {
        let kind = kinds[i % kinds.len()];
        data.assets.push(AssetEntry {
            id: format!("a{i}"),
            name: format!("{kind}-{i:06x}"),
            address: format!("10.{}.{}.{}", (i >> 16) & 255, (i >> 8) & 255, i & 255),
            platform: "linux".into(),
            comment: format!("{kind} server, rack {}", i % 40),
            active: true,
            protocols: if i % 3 == 0 {
                vec![ssh.clone(), sftp.clone()]
            } else {
                vec![ssh.clone()]
            },
            node_ids: vec![format!("n{}", racks[i % racks.len()])],
        });
        for user in ["root", "deploy"] {
            data.accounts.push(AccountEntry {
                id: format!("acc{i}-{user}"),
                asset_id: format!("a{i}"),
                username: user.into(),
                privileged: user == "root",
                active: true,
            });
        }
    }
    data.permissions.push(PermissionEntry {
        id: "p0".into(),
        name: "everything".into(),
        user_ids: vec!["u0".into()],
        group_ids: Vec::new(),
        asset_ids: Vec::new(),
        node_ids: vec!["n/DEFAULT".into()],
        accounts: AccountSpec::all(),
        protocols: ProtocolSpec::All,
        actions: Actions::all_but_tunnel(),
        valid_from: None,
        valid_until: None,
        active: true,
        require_approval: false,
    });
    data
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v.get(v.len() / 2).copied().unwrap_or_default()
}

struct Row {
    visible: Duration,
    first_paint: Duration,
    first_bytes: usize,
    key_median: Duration,
    key_max: Duration,
    rescan_max: Duration,
}

fn measure(n: usize, who: &Identity, now: Timestamp, theme: &Theme) -> Row {
    let snapshot = Snapshot::build(policy_data(n)).unwrap_or_else(|e| panic!("{e}"));
    let t = Instant::now();
    let assets: Vec<VisibleAsset> = snapshot.visible_assets(who, now);
    let visible = t.elapsed();
    assert_eq!(assets.len(), n);

    let mut paints = Vec::new();
    let mut first_bytes = 0;
    for _ in 0..ROUNDS {
        let copy = assets.clone();
        let t = Instant::now();
        let menu = Menu::new(copy, who);
        let mut screen = Screen::new(80, 24, ColorMode::Full);
        let mut bytes = screen.enter();
        bytes.extend(screen.draw(|f| menu.render(f, theme)));
        paints.push(t.elapsed());
        first_bytes = black_box(bytes).len();
    }

    let mut menu = Menu::new(assets.clone(), who);
    let mut screen = Screen::new(80, 24, ColorMode::Full);
    black_box(screen.draw(|f| menu.render(f, theme)));
    let mut keys = Vec::new();
    for _ in 0..ROUNDS {
        let strokes = FILTER
            .chars()
            .map(Key::Char)
            .chain(std::iter::repeat_n(Key::Backspace, FILTER.len()));
        for key in strokes {
            let t = Instant::now();
            black_box(menu.handle(key));
            black_box(screen.draw(|f| menu.render(f, theme)));
            keys.push(t.elapsed());
        }
    }
    // An edit the kept results cannot answer: Backspace after pasting the
    // whole filter rescans every asset.
    let mut rescans = Vec::new();
    for _ in 0..ROUNDS {
        black_box(menu.handle(Key::Paste(FILTER.to_string())));
        let t = Instant::now();
        black_box(menu.handle(Key::Backspace));
        black_box(screen.draw(|f| menu.render(f, theme)));
        rescans.push(t.elapsed());
        black_box(menu.handle(Key::Ctrl('u')));
    }
    let key_max = keys.iter().max().copied().unwrap_or_default();
    Row {
        visible,
        first_paint: median(paints),
        first_bytes,
        key_median: median(keys),
        key_max,
        rescan_max: rescans.iter().max().copied().unwrap_or_default(),
    }
}

fn main() {
    let who = Identity {
        user_id: "u0".into(),
        name: "alice".into(),
        role: Role::User,
        groups: Vec::new(),
    };
    let now: Timestamp = "2030-01-01T00:00:00Z".parse().unwrap_or_default();
    let theme = Theme::default();
    let rows: Vec<(usize, Row)> = SIZES
        .iter()
        .map(|&n| (n, measure(n, &who, now, &theme)))
        .collect();
    println!("menu at 80x24, filter {FILTER:?} typed and deleted key by key, {ROUNDS} rounds");
    println!(
        "{:>8} | {:>14} | {:>16} | {:>11} | {:>15} | {:>12} | {:>16}",
        "assets",
        "visible_assets",
        "first paint (ms)",
        "first bytes",
        "key median (ms)",
        "key max (ms)",
        "rescan max (ms)"
    );
    for (n, r) in &rows {
        println!(
            "{:>8} | {:>14.2} | {:>16.2} | {:>11} | {:>15.3} | {:>12.3} | {:>16.3}",
            n,
            ms(r.visible),
            ms(r.first_paint),
            r.first_bytes,
            ms(r.key_median),
            ms(r.key_max),
            ms(r.rescan_max),
        );
    }
    println!("targets: first paint < 100 ms at 10k; key max < 16 ms at 100k");
}
