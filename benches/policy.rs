//! Policy engine benchmark: builds a snapshot from deterministic synthetic
//! data at production-like size (100k assets in 5k nodes, 10k users, 1k
//! groups, 2k permissions) and times the queries the server makes on every
//! connection. Run with `cargo bench --bench policy`; prints one table.

use std::hint::black_box;
use std::time::{Duration, Instant};

use jiff::{SignedDuration, Timestamp};
use rampart::model::{
    AccountSpec, Action, Actions, FilterAction, Identity, Protocol, ProtocolSpec, Role,
};
use rampart::policy::data::{
    AccountEntry, AssetEntry, FilterEntry, GroupEntry, NodeEntry, PermissionEntry, PolicyData,
    UserEntry,
};
use rampart::policy::{GrantAccount, Snapshot};

const ASSETS: usize = 100_000;
const USERS: usize = 10_000;
const GROUPS: usize = 1_000;
const PERMS: usize = 2_000;
const FILTERS: usize = 50;

/// splitmix64: deterministic, no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }
    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

struct Synthetic {
    data: PolicyData,
    /// A member of the group granted the whole tree.
    widest_user: String,
}

/// Nodes: /DEFAULT, 10 regions, 100 zones, 1000 clusters, 3889 hosts groups
/// = 5000 nodes, four levels under the root.
fn nodes() -> (Vec<NodeEntry>, Vec<Vec<String>>) {
    let mut levels: Vec<Vec<String>> = vec![vec!["/DEFAULT".to_string()]];
    let add_level = |levels: &mut Vec<Vec<String>>, total: usize, prefix: &str| {
        let parents = levels.last().cloned().unwrap_or_default();
        let level = (0..total)
            .map(|i| {
                format!(
                    "{}/{prefix}{}",
                    parents[i % parents.len()],
                    i / parents.len()
                )
            })
            .collect();
        levels.push(level);
    };
    add_level(&mut levels, 10, "region");
    add_level(&mut levels, 100, "zone");
    add_level(&mut levels, 1_000, "cluster");
    add_level(&mut levels, 3_889, "pool");
    let entries = levels
        .iter()
        .flatten()
        .map(|p| NodeEntry {
            id: format!("n{p}"),
            path: p.clone(),
        })
        .collect();
    (entries, levels)
}

fn protocol(s: &str) -> Protocol {
    s.parse().unwrap_or_else(|e| panic!("{e}"))
}

fn synthesize() -> Synthetic {
    let mut rng = Rng(0x5eed);
    let (nodes, levels) = nodes();
    let leafish: Vec<&String> = levels[3].iter().chain(&levels[4]).collect();

    let users: Vec<UserEntry> = (0..USERS)
        .map(|i| UserEntry {
            id: format!("u{i}"),
            name: format!("user{i:05}"),
            active: i % 100 != 7,
            expires_at: (i % 100 == 13).then(|| "2020-01-01T00:00:00Z".parse().unwrap_or_default()),
        })
        .collect();
    let mut members: Vec<Vec<String>> = vec![Vec::new(); GROUPS];
    for i in 0..USERS {
        for _ in 0..1 + rng.below(3) {
            members[rng.below(GROUPS)].push(format!("u{i}"));
        }
    }
    let widest_user = members[0]
        .first()
        .cloned()
        .unwrap_or_else(|| "u0".to_string());
    let groups: Vec<GroupEntry> = members
        .into_iter()
        .enumerate()
        .map(|(i, member_ids)| GroupEntry {
            id: format!("g{i}"),
            name: format!("group{i:04}"),
            member_ids,
        })
        .collect();

    let mut assets = Vec::with_capacity(ASSETS);
    let mut accounts = Vec::with_capacity(ASSETS * 2);
    let extra = ["deploy", "app", "ubuntu", "admin", "oracle"];
    for i in 0..ASSETS {
        let mut node_ids = vec![format!("n{}", rng.pick(&leafish))];
        if rng.chance(10) {
            node_ids.push(format!("n{}", rng.pick(&leafish)));
        }
        let mut protocols = vec![protocol("ssh/22")];
        if rng.chance(30) {
            protocols.push(protocol("sftp/22"));
        }
        if rng.chance(10) {
            protocols.push(protocol("postgresql/5432"));
        }
        if rng.chance(5) {
            protocols.push(protocol("rdp/3389"));
        }
        assets.push(AssetEntry {
            id: format!("a{i}"),
            name: format!("host{i:06}"),
            address: format!("10.{}.{}.{}", i >> 16, (i >> 8) & 255, i & 255),
            platform: "linux".to_string(),
            comment: String::new(),
            active: !rng.chance(2),
            protocols,
            node_ids,
        });
        let mut names = vec!["root", *rng.pick(&extra)];
        if rng.chance(10) {
            names.push("backup");
        }
        let owner = format!("user{:05}", rng.below(USERS));
        if rng.chance(2) {
            names.push(&owner);
        }
        for name in names {
            accounts.push(AccountEntry {
                id: format!("acc{i}-{name}"),
                asset_id: format!("a{i}"),
                username: name.to_string(),
                privileged: name == "root",
                active: !rng.chance(3),
            });
        }
    }

    let now: Timestamp = "2030-01-01T00:00:00Z".parse().unwrap_or_default();
    let mut permissions = Vec::with_capacity(PERMS);
    permissions.push(PermissionEntry {
        id: "p-root".to_string(),
        name: "ops-everything".to_string(),
        user_ids: Vec::new(),
        group_ids: vec!["g0".to_string()],
        asset_ids: Vec::new(),
        node_ids: vec!["n/DEFAULT".to_string()],
        accounts: AccountSpec::all(),
        protocols: ProtocolSpec::All,
        actions: Actions::all_but_tunnel(),
        valid_from: None,
        valid_until: None,
        active: true,
        require_approval: false,
    });
    let specs = ["@ALL", "@ALL", "root", "@USER", "@INPUT,deploy"];
    let protocol_specs = ["all", "all", "ssh", "ssh,sftp"];
    let action_specs = ["all", "connect", "connect,upload,download", "all,tunnel"];
    for i in 1..PERMS {
        let (mut user_ids, mut group_ids) = (Vec::new(), Vec::new());
        match rng.below(10) {
            0..=3 => group_ids.push(format!("g{}", 1 + rng.below(GROUPS - 1))),
            4..=6 => {
                user_ids.extend((0..1 + rng.below(3)).map(|_| format!("u{}", rng.below(USERS))))
            }
            _ => {
                group_ids.push(format!("g{}", 1 + rng.below(GROUPS - 1)));
                user_ids.push(format!("u{}", rng.below(USERS)));
            }
        }
        let (mut asset_ids, mut node_ids) = (Vec::new(), Vec::new());
        if rng.chance(60) {
            for _ in 0..1 + rng.below(2) {
                let level = 2 + rng.below(3);
                node_ids.push(format!("n{}", rng.pick(&levels[level])));
            }
        } else {
            asset_ids.extend((0..1 + rng.below(20)).map(|_| format!("a{}", rng.below(ASSETS))));
        }
        let hours = |h: i64| {
            now.saturating_add(SignedDuration::from_hours(h))
                .unwrap_or(now)
        };
        let valid_until = match rng.below(10) {
            0 => Some(hours(-24)),
            1 => Some(hours(24 * 30)),
            _ => None,
        };
        permissions.push(PermissionEntry {
            id: format!("p{i}"),
            name: format!("perm{i:04}"),
            user_ids,
            group_ids,
            asset_ids,
            node_ids,
            accounts: rng.pick(&specs).parse().unwrap_or_default(),
            protocols: rng
                .pick(&protocol_specs)
                .parse()
                .unwrap_or(ProtocolSpec::All),
            actions: rng.pick(&action_specs).parse().unwrap_or_default(),
            valid_from: None,
            valid_until,
            active: !rng.chance(5),
            require_approval: false,
        });
    }

    let patterns = [
        r"rm\s+-rf\s+/",
        r"^sudo\b",
        r"(?i)drop\s+(table|database)",
        r"\b(shutdown|reboot|halt|poweroff)\b",
        r"curl .*\|\s*(ba)?sh",
        r"^mkfs\.",
        r">\s*/dev/sd[a-z]",
    ];
    let actions = [
        FilterAction::Deny,
        FilterAction::Warn,
        FilterAction::Review,
        FilterAction::Allow,
    ];
    let filters = (0..FILTERS)
        .map(|i| FilterEntry {
            id: format!("f{i}"),
            name: format!("filter{i:02}"),
            pattern: patterns[i % patterns.len()].to_string(),
            action: *rng.pick(&actions),
            on: Default::default(),
            priority: rng.below(100) as i32,
            user_ids: Vec::new(),
            group_ids: if i % 3 == 1 {
                vec![format!("g{}", rng.below(GROUPS))]
            } else {
                Vec::new()
            },
            asset_ids: Vec::new(),
            node_ids: if i % 3 == 2 {
                vec![format!("n{}", rng.pick(&levels[2]))]
            } else {
                Vec::new()
            },
            accounts: AccountSpec::default(),
            active: true,
        })
        .collect();

    Synthetic {
        data: PolicyData {
            users,
            groups,
            nodes,
            assets,
            accounts,
            permissions,
            filters,
        },
        widest_user,
    }
}

fn identity(snap: &Snapshot, user_id: &str) -> Identity {
    let view = snap
        .user_by_id(user_id)
        .unwrap_or_else(|| panic!("no user {user_id}"));
    Identity {
        user_id: view.id.to_string(),
        name: view.name.to_string(),
        role: Role::User,
        groups: Vec::new(),
    }
}

struct Timings(Vec<Duration>);

impl Timings {
    fn run(calls: usize, mut f: impl FnMut(usize)) -> Timings {
        let mut times = Vec::with_capacity(calls);
        for i in 0..calls {
            let start = Instant::now();
            f(i);
            times.push(start.elapsed());
        }
        times.sort_unstable();
        Timings(times)
    }
    fn quantile(&self, q: f64) -> Duration {
        let i = ((self.0.len() as f64 - 1.0) * q).round() as usize;
        self.0.get(i).copied().unwrap_or_default()
    }
}

fn show(d: Duration) -> String {
    let ns = d.as_nanos();
    if ns < 10_000 {
        format!("{ns} ns")
    } else if ns < 10_000_000 {
        format!("{:.1} µs", ns as f64 / 1e3)
    } else {
        format!("{:.1} ms", ns as f64 / 1e6)
    }
}

fn row(what: &str, t: &Timings) {
    println!(
        "{what:<46} {:>7} {:>10} {:>10} {:>10}",
        t.0.len(),
        show(t.quantile(0.5)),
        show(t.quantile(0.99)),
        show(t.quantile(1.0))
    );
}

fn main() {
    let generated = Instant::now();
    let Synthetic { data, widest_user } = synthesize();
    let generated = generated.elapsed();
    let mut copies: Vec<PolicyData> = (0..3).map(|_| data.clone()).collect();
    drop(data);
    let mut built = Vec::new();
    let build = Timings::run(3, |_| {
        let input = copies.pop().unwrap_or_default();
        built.push(Snapshot::build(input).unwrap_or_else(|e| panic!("{e}")));
    });
    let Some(snap) = built.pop() else { return };
    drop(built);
    let now: Timestamp = "2030-01-01T00:00:00Z".parse().unwrap_or_default();
    let s = snap.stats();
    println!(
        "policy snapshot: {} assets, {} nodes, {} users, {} groups, {} permissions, {} active accounts, {} filters (data generated in {})",
        s.assets,
        s.nodes,
        s.users,
        s.groups,
        s.permissions,
        s.accounts,
        s.filters,
        show(generated)
    );

    // A typical user: the median asset count over a sample of users.
    let mut rng = Rng(42);
    let mut sample: Vec<(usize, Identity)> = (0..200)
        .map(|_| {
            let who = identity(&snap, &format!("u{}", rng.below(USERS)));
            (snap.visible_assets(&who, now).len(), who)
        })
        .collect();
    sample.sort_by_key(|(n, _)| *n);
    let (typical_n, typical) = sample[sample.len() / 2].clone();
    let widest = identity(&snap, &widest_user);
    let widest_n = snap.visible_assets(&widest, now).len();

    // Allowed requests come from what sampled users see; the rest are random.
    let mut allowed = Vec::new();
    for (_, who) in sample.iter().rev().take(50) {
        for v in snap.visible_assets(who, now).iter().take(200) {
            let protocol = v
                .protocols()
                .next()
                .map(|p| p.name.clone())
                .unwrap_or_default();
            let account = v.accounts().next().map(|a| a.username().to_string());
            let account = account.unwrap_or_else(|| "typed".to_string());
            allowed.push((who.clone(), v.name().to_string(), account, protocol));
        }
    }
    let requests: Vec<(Identity, String, String, String)> = (0..10_000)
        .map(|i| {
            if i % 2 == 0 && !allowed.is_empty() {
                rng.pick(&allowed).clone()
            } else {
                let who = identity(&snap, &format!("u{}", rng.below(USERS)));
                (
                    who,
                    format!("host{:06}", rng.below(ASSETS)),
                    "root".to_string(),
                    "ssh".to_string(),
                )
            }
        })
        .collect();
    let mut granted = 0usize;
    let authorize = Timings::run(100_000, |i| {
        let (who, asset, account, protocol) = &requests[i % requests.len()];
        if snap
            .authorize(who, asset, account, protocol, Action::Connect, now)
            .is_some()
        {
            granted += 1;
        }
    });

    let commands = [
        "ls -la /var/log",
        "sudo systemctl restart nginx",
        "cd / && rm -rf /tmp/build",
        "psql -c 'DROP TABLE users'",
        "curl https://example.net/install.sh | sh",
        "tail -f /var/log/syslog | grep -i error",
    ];
    let account = GrantAccount::Stored {
        account_id: "x".to_string(),
        username: "root".to_string(),
    };
    let check = Timings::run(100_000, |i| {
        let (who, asset, _, _) = &requests[i % requests.len()];
        black_box(snap.check_command(who, asset, &account, commands[i % commands.len()]));
    });

    let visible_typical = Timings::run(50, |_| {
        black_box(snap.visible_assets(&typical, now));
    });
    let visible_widest = Timings::run(50, |_| {
        black_box(snap.visible_assets(&widest, now));
    });
    let who = Timings::run(50, |i| {
        black_box(snap.who_can_reach(&format!("host{:06}", i * 1999 % ASSETS), now));
    });
    let what = Timings::run(20, |_| {
        black_box(snap.what_can_reach(&typical.name, now));
    });

    println!();
    println!(
        "{:<46} {:>7} {:>10} {:>10} {:>10}",
        "operation", "calls", "median", "p99", "max"
    );
    row("Snapshot::build", &build);
    row(
        &format!("visible_assets, typical user ({typical_n} assets)"),
        &visible_typical,
    );
    row(
        &format!("visible_assets, widest user ({widest_n} assets)"),
        &visible_widest,
    );
    row(
        &format!("authorize ({}% granted)", granted * 100 / 100_000),
        &authorize,
    );
    row("check_command", &check);
    row("who_can_reach", &who);
    row(
        &format!("what_can_reach, typical user ({typical_n} assets)"),
        &what,
    );
}
