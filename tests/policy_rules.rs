//! DESIGN.md §2 "Permission semantics" and the command filter rules, as
//! tables: each row names the rule it checks, so a reader can hold it against
//! the design, and a failing row says which one it is.

use jiff::Timestamp;
use rampart::model::{AccountSpec, Action, Actions, FilterAction, Identity, Role};
use rampart::policy::data::{
    AccountEntry, AssetEntry, FilterEntry, GroupEntry, NodeEntry, PermissionEntry, PolicyData,
    UserEntry,
};
use rampart::policy::{GrantAccount, Snapshot};

const NOW: &str = "2030-01-01T00:00:00Z";

fn ts(s: &str) -> Timestamp {
    s.parse()
        .unwrap_or_else(|e| panic!("bad timestamp {s}: {e}"))
}

/// The identity `auth` would hand over; `groups` is deliberately empty so the
/// tests prove membership comes from the snapshot.
fn who(name: &str) -> Identity {
    Identity {
        user_id: format!("u-{name}"),
        name: name.to_string(),
        role: Role::User,
        groups: Vec::new(),
    }
}

fn user(name: &str, active: bool, expires_at: Option<&str>) -> UserEntry {
    UserEntry {
        id: format!("u-{name}"),
        name: name.to_string(),
        active,
        expires_at: expires_at.map(ts),
    }
}

fn group(name: &str, members: &[&str]) -> GroupEntry {
    GroupEntry {
        id: format!("g-{name}"),
        name: name.to_string(),
        member_ids: members.iter().map(|m| format!("u-{m}")).collect(),
    }
}

fn node(path: &str) -> NodeEntry {
    NodeEntry {
        id: format!("n-{path}"),
        path: path.to_string(),
    }
}

fn asset(name: &str, nodes: &[&str], protocols: &[&str], active: bool) -> AssetEntry {
    AssetEntry {
        id: format!("a-{name}"),
        name: name.to_string(),
        address: format!("{name}.example.net"),
        platform: "linux".to_string(),
        comment: String::new(),
        active,
        protocols: protocols.iter().map(|p| p.parse().unwrap()).collect(),
        node_ids: nodes.iter().map(|n| format!("n-{n}")).collect(),
    }
}

fn account(asset: &str, username: &str, privileged: bool, active: bool) -> AccountEntry {
    AccountEntry {
        id: format!("acc-{asset}-{username}"),
        asset_id: format!("a-{asset}"),
        username: username.to_string(),
        privileged,
        active,
    }
}

/// `targets` are asset names, or node paths when they start with '/';
/// `subjects` are user names, or group names when they start with '+'.
fn perm(
    name: &str,
    subjects: &[&str],
    targets: &[&str],
    accounts: &str,
    protocols: &str,
    actions: &str,
) -> PermissionEntry {
    PermissionEntry {
        id: format!("p-{name}"),
        name: name.to_string(),
        user_ids: subjects
            .iter()
            .filter(|s| !s.starts_with('+'))
            .map(|s| format!("u-{s}"))
            .collect(),
        group_ids: subjects
            .iter()
            .filter_map(|s| s.strip_prefix('+'))
            .map(|s| format!("g-{s}"))
            .collect(),
        asset_ids: targets
            .iter()
            .filter(|t| !t.starts_with('/'))
            .map(|t| format!("a-{t}"))
            .collect(),
        node_ids: targets
            .iter()
            .filter(|t| t.starts_with('/'))
            .map(|t| format!("n-{t}"))
            .collect(),
        accounts: accounts.parse().unwrap(),
        protocols: protocols.parse().unwrap(),
        actions: actions.parse().unwrap(),
        valid_from: None,
        valid_until: None,
        active: true,
        require_approval: false,
    }
}

/// Subjects and targets as for [`perm`]; `accounts` empty means unbound.
fn filter(
    name: &str,
    pattern: &str,
    action: FilterAction,
    priority: i32,
    subjects: &[&str],
    targets: &[&str],
    accounts: &str,
) -> FilterEntry {
    let p = perm(name, subjects, targets, "@ALL", "all", "all");
    FilterEntry {
        id: format!("f-{name}"),
        name: name.to_string(),
        pattern: pattern.to_string(),
        action,
        on: Default::default(),
        priority,
        user_ids: p.user_ids,
        group_ids: p.group_ids,
        asset_ids: p.asset_ids,
        node_ids: p.node_ids,
        accounts: if accounts.is_empty() {
            AccountSpec::default()
        } else {
            accounts.parse().unwrap()
        },
        active: true,
    }
}

type Str = &'static str;
type List = &'static [Str];

/// (name, subjects, targets, accounts, protocols, actions, valid_from, valid_until, active)
#[rustfmt::skip]
type PermSpec = (Str, List, List, Str, Str, Str, Option<Str>, Option<Str>, bool);
/// (name, pattern, action, priority, subjects, targets, accounts, active)
type FilterSpec = (Str, Str, FilterAction, i32, List, List, Str, bool);

#[rustfmt::skip]
const PERMISSIONS: &[PermSpec] = &[
    // name,              subjects,   targets,           accounts,  protocols,    actions,           from,                   until,                  active
    ("alice-connect",    &["alice"], &["web1"],          "deploy",  "ssh",        "connect",         None,                   None,                   true),
    ("alice-upload",     &["alice"], &["web1"],          "deploy",  "all",        "upload",          None,                   None,                   true),
    ("ops-prod",         &["+ops"],  &["/DEFAULT/prod"], "@ALL",    "all",        "all",             None,                   None,                   true),
    ("devs-pro",         &["+devs"], &["/DEFAULT/pro"],  "@ALL",    "all",        "connect",         None,                   None,                   true),
    ("frank-typed",      &["frank"], &["pro1"],          "@INPUT",  "ssh",        "download",        None,                   None,                   true),
    ("carol-self",       &["carol"], &["/DEFAULT"],      "@USER",   "ssh",        "connect",         None,                   None,                   true),
    ("carol-typed",      &["carol"], &["stg1"],          "@INPUT",  "ssh",        "connect,download", None,                  None,                   true),
    ("gina-tunnel",      &["gina"],  &["db1"],           "postgres", "postgresql", "connect,tunnel",  None,                  None,                   true),
    ("hank-all",         &["hank"],  &["db1"],           "postgres", "postgresql", "all",             None,                  None,                   true),
    ("dave-all",         &["dave"],  &["web1"],          "@ALL",    "all",        "all",             None,                   None,                   true),
    ("erin-all",         &["erin"],  &["web1"],          "@ALL",    "all",        "all",             None,                   None,                   true),
    ("ivan-window",      &["ivan"],  &["web1"],          "root",    "ssh",        "connect",         Some("2029-06-01T00:00:00Z"), Some("2030-06-01T00:00:00Z"), true),
    ("judy-until-june",  &["judy"],  &["web1"],          "root",    "ssh",        "connect",         None,                   Some("2030-06-01T00:00:00Z"), true),
    ("judy-until-march", &["judy"],  &["web1"],          "root",    "ssh",        "connect,upload",  None,                   Some("2030-03-01T00:00:00Z"), true),
    ("kate-open",        &["kate"],  &["web1"],          "root",    "ssh",        "connect",         None,                   None,                   true),
    ("liam-disabled",    &["liam"],  &["web1"],          "@ALL",    "all",        "all",             None,                   None,                   false),
    ("mia-olduser",      &["mia"],   &["web1"],          "olduser", "all",        "connect",         None,                   None,                   true),
    ("nick-rdp",         &["nick"],  &["web1"],          "@ALL",    "rdp",        "connect",         None,                   None,                   true),
];

#[rustfmt::skip]
const FILTERS: &[FilterSpec] = &[
    // name,            pattern,                action,               prio, subjects,                targets,           accounts, active
    ("deny-rm-root",   r"rm\s+-rf\s+/",        FilterAction::Deny,   50, &[],                     &[],               "",       true),
    ("allow-rm-tmp",   r"^rm -rf /tmp/",       FilterAction::Allow,  10, &[],                     &[],               "",       true),
    ("review-sudo-su", r"^sudo\s+su\b",        FilterAction::Review, 10, &[],                     &[],               "",       true),
    ("warn-sudo",      r"^sudo\b",             FilterAction::Warn,   20, &[],                     &[],               "",       true),
    ("tie-b-review",   "^reboot",              FilterAction::Review, 30, &[],                     &[],               "",       true),
    ("tie-a-warn",     "^reboot",              FilterAction::Warn,   30, &[],                     &[],               "",       true),
    ("alice-ls",       "^ls",                  FilterAction::Warn,   40, &["alice"],              &[],               "",       true),
    ("ops-shutdown",   "^shutdown",            FilterAction::Deny,   40, &["+ops"],               &[],               "",       true),
    ("prod-drop",      r"(?i)drop\s+table",    FilterAction::Deny,   40, &[],                     &["/DEFAULT/prod"], "",      true),
    ("db1-psql",       "^psql",                FilterAction::Review, 40, &[],                     &["db1"],          "",       true),
    ("root-passwd",    "^passwd",              FilterAction::Review, 40, &[],                     &[],               "root",   true),
    ("input-curl",     "curl",                 FilterAction::Warn,   40, &[],                     &[],               "@INPUT", true),
    ("self-kill",      "^kill",                FilterAction::Warn,   40, &[],                     &[],               "@USER",  true),
    ("ghost-whoami",   "^whoami",              FilterAction::Deny,   40, &["removed-long-ago"],   &[],               "",       true),
    ("off-date",       "^date",                FilterAction::Deny,   1,  &[],                     &[],               "",       false),
];

fn fixture() -> PolicyData {
    #[rustfmt::skip]
    let users = vec![
        user("alice", true, None), user("bob", true, None), user("carol", true, None),
        user("dave", false, None), user("erin", true, Some("2029-12-01T00:00:00Z")),
        user("frank", true, None), user("gina", true, None), user("hank", true, None),
        user("ivan", true, None), user("judy", true, None),
        user("kate", true, Some("2030-02-01T00:00:00Z")), user("liam", true, None),
        user("mia", true, None), user("nick", true, None),
    ];
    let groups = vec![group("ops", &["bob"]), group("devs", &["frank"])];
    #[rustfmt::skip]
    let nodes = ["/DEFAULT", "/DEFAULT/pro", "/DEFAULT/prod", "/DEFAULT/prod/web", "/DEFAULT/staging"]
        .map(node)
        .to_vec();
    #[rustfmt::skip]
    let assets = vec![
        asset("web1", &["/DEFAULT/prod/web"], &["ssh/22", "sftp/22"], true),
        asset("db1", &["/DEFAULT/prod"], &["ssh/2222", "postgresql/5432"], true),
        asset("off1", &["/DEFAULT/prod"], &["ssh/22"], false),
        asset("pro1", &["/DEFAULT/pro"], &["ssh/22"], true),
        asset("stg1", &["/DEFAULT/staging"], &["ssh/22"], true),
    ];
    #[rustfmt::skip]
    let accounts = vec![
        account("web1", "root", true, true), account("web1", "deploy", false, true),
        account("web1", "carol", false, true), account("web1", "olduser", false, false),
        account("db1", "root", true, true), account("db1", "postgres", false, true),
        account("off1", "root", true, true), account("pro1", "root", true, true),
        account("stg1", "root", true, true),
    ];
    let permissions = PERMISSIONS
        .iter()
        .map(
            |&(name, subjects, targets, accounts, protocols, actions, from, until, active)| {
                let mut p = perm(name, subjects, targets, accounts, protocols, actions);
                (p.valid_from, p.valid_until, p.active) = (from.map(ts), until.map(ts), active);
                p
            },
        )
        .collect();
    let filters = FILTERS
        .iter()
        .map(
            |&(name, pattern, action, priority, subjects, targets, accounts, active)| {
                let mut f = filter(name, pattern, action, priority, subjects, targets, accounts);
                f.active = active;
                f
            },
        )
        .collect();
    PolicyData {
        users,
        groups,
        nodes,
        assets,
        accounts,
        permissions,
        filters,
    }
}

fn snapshot() -> Snapshot {
    Snapshot::build(fixture()).unwrap_or_else(|e| panic!("fixture does not build: {e}"))
}

#[derive(Debug, Clone, Copy)]
enum Expect {
    Denied,
    /// A stored account, with the union of granted actions.
    Stored(&'static str),
    /// A typed-in (`@INPUT`) account, with the union of granted actions.
    Input(&'static str),
}
use Expect::{Denied, Input, Stored};

/// (rule, user, asset, account, protocol, action, now, expected)
type AuthRow = (Str, Str, Str, Str, Str, Action, Str, Expect);
/// (rule, user, asset, account, protocol, action, valid_until, permissions)
type DetailRow = (Str, Str, Str, Str, Str, Action, Option<Str>, List);
/// (rule, user, asset, account, command, verdict, deciding rule)
type FilterRow = (Str, Str, Str, GrantAccount, Str, FilterAction, Option<Str>);

const ALL_BUT_TUNNEL: &str = "connect,upload,download,delete,copy,paste,share";

#[test]
fn authorize_follows_the_permission_semantics() {
    use Action::{Connect, Download, Tunnel, Upload};
    #[rustfmt::skip]
    let rows: &[AuthRow] = &[
        // rule,                                                  user,    asset,   account,    protocol,     action,   now,  expect
        ("perm listing the user grants",                          "alice", "web1", "deploy",   "ssh",        Connect,  NOW, Stored("connect,upload")),
        ("account not in the names list is not granted",          "alice", "web1", "root",     "ssh",        Connect,  NOW, Denied),
        ("union: upload from one perm, connect from another",     "alice", "web1", "deploy",   "ssh",        Upload,   NOW, Stored("connect,upload")),
        ("union is per protocol: connect perm is ssh only",       "alice", "web1", "deploy",   "sftp",       Connect,  NOW, Denied),
        ("upload perm covers sftp via protocols=all",             "alice", "web1", "deploy",   "sftp",       Upload,   NOW, Stored("upload")),
        ("perm on a group grants its members",                    "bob",   "db1",  "root",     "ssh",        Connect,  NOW, Stored(ALL_BUT_TUNNEL)),
        ("not a member of the group: nothing",                    "alice", "db1",  "root",     "ssh",        Connect,  NOW, Denied),
        ("perm on /DEFAULT/prod covers asset in /DEFAULT/prod/web","bob",  "web1", "root",     "ssh",        Connect,  NOW, Stored(ALL_BUT_TUNNEL)),
        ("perm on /DEFAULT covers asset in /DEFAULT/prod/web",    "carol", "web1", "carol",    "ssh",        Connect,  NOW, Stored("connect")),
        ("/DEFAULT/pro is not an ancestor of /DEFAULT/prod/web",  "frank", "web1", "root",     "ssh",        Connect,  NOW, Denied),
        ("/DEFAULT/pro covers its own asset",                     "frank", "pro1", "root",     "ssh",        Connect,  NOW, Stored("connect")),
        ("@ALL grants every active account",                      "bob",   "db1",  "postgres", "postgresql", Connect,  NOW, Stored(ALL_BUT_TUNNEL)),
        ("@ALL skips an inactive account",                        "bob",   "web1", "olduser",  "ssh",        Connect,  NOW, Denied),
        ("a named inactive account grants nothing",               "mia",   "web1", "olduser",  "ssh",        Connect,  NOW, Denied),
        ("@USER grants the account named like the person",        "carol", "web1", "carol",    "ssh",        Connect,  NOW, Stored("connect")),
        ("@USER grants no other account",                         "carol", "web1", "root",     "ssh",        Connect,  NOW, Denied),
        ("@USER on an asset without such an account: nothing",    "carol", "db1",  "carol",    "ssh",        Connect,  NOW, Denied),
        ("@INPUT: any typed username",                            "carol", "stg1", "ubuntu",   "ssh",        Connect,  NOW, Input("connect,download")),
        ("@INPUT: a stored name not granted is typed in",         "carol", "stg1", "root",     "ssh",        Download, NOW, Input("connect,download")),
        ("@INPUT: an empty username is refused",                  "carol", "stg1", "",         "ssh",        Connect,  NOW, Denied),
        ("@INPUT actions never mix with stored ones",             "frank", "pro1", "root",     "ssh",        Download, NOW, Input("download")),
        ("stored account granted: stored wins",                   "frank", "pro1", "root",     "ssh",        Connect,  NOW, Stored("connect")),
        ("@INPUT perm grants only its own actions",               "frank", "pro1", "ubuntu",   "ssh",        Connect,  NOW, Denied),
        ("protocol the asset does not declare (protocols=all)",   "bob",   "web1", "root",     "rdp",        Connect,  NOW, Denied),
        ("perm naming only an undeclared protocol",               "nick",  "web1", "root",     "ssh",        Connect,  NOW, Denied),
        ("perm naming only an undeclared protocol, asked for it", "nick",  "web1", "root",     "rdp",        Connect,  NOW, Denied),
        ("protocol not in the perm's list",                       "hank",  "db1",  "postgres", "ssh",        Connect,  NOW, Denied),
        ("`all` does not include tunnel",                         "hank",  "db1",  "postgres", "postgresql", Tunnel,   NOW, Denied),
        ("`all` includes the rest",                               "hank",  "db1",  "postgres", "postgresql", Download, NOW, Stored(ALL_BUT_TUNNEL)),
        ("explicit tunnel is granted",                            "gina",  "db1",  "postgres", "postgresql", Tunnel,   NOW, Stored("connect,tunnel")),
        ("before valid_from",                                     "ivan",  "web1", "root",     "ssh",        Connect,  "2029-05-31T23:59:59Z", Denied),
        ("at valid_from",                                         "ivan",  "web1", "root",     "ssh",        Connect,  "2029-06-01T00:00:00Z", Stored("connect")),
        ("just before valid_until",                               "ivan",  "web1", "root",     "ssh",        Connect,  "2030-05-31T23:59:59Z", Stored("connect")),
        ("at valid_until",                                        "ivan",  "web1", "root",     "ssh",        Connect,  "2030-06-01T00:00:00Z", Denied),
        ("after valid_until",                                     "ivan",  "web1", "root",     "ssh",        Connect,  "2031-01-01T00:00:00Z", Denied),
        ("one of two perms expired: the other still grants",      "judy",  "web1", "root",     "ssh",        Connect,  "2030-04-01T00:00:00Z", Stored("connect")),
        ("one of two perms expired: its action is gone",          "judy",  "web1", "root",     "ssh",        Upload,   "2030-04-01T00:00:00Z", Denied),
        ("inactive permission",                                   "liam",  "web1", "root",     "ssh",        Connect,  NOW, Denied),
        ("inactive user",                                         "dave",  "web1", "root",     "ssh",        Connect,  NOW, Denied),
        ("expired user",                                          "erin",  "web1", "root",     "ssh",        Connect,  NOW, Denied),
        ("user before expiry",                                    "erin",  "web1", "root",     "ssh",        Connect,  "2029-11-30T00:00:00Z", Stored(ALL_BUT_TUNNEL)),
        ("inactive asset",                                        "bob",   "off1", "root",     "ssh",        Connect,  NOW, Denied),
        ("unknown asset looks like a refusal",                    "bob",   "nope", "root",     "ssh",        Connect,  NOW, Denied),
        ("unknown user",                                          "ghost", "web1", "root",     "ssh",        Connect,  NOW, Denied),
    ];
    let snap = snapshot();
    for &(rule, u, a, acc, proto, action, now, expect) in rows {
        let got = snap.authorize(&who(u), a, acc, proto, action, ts(now));
        match (expect, &got) {
            (Denied, None) => {}
            (Stored(actions), Some(g)) | (Input(actions), Some(g)) => {
                let typed = matches!(expect, Input(_));
                assert_eq!(
                    g.account().is_typed_in(),
                    typed,
                    "row {rule:?}: account kind of {g:?}"
                );
                assert_eq!(g.account().username(), acc, "row {rule:?}: username");
                assert_eq!(g.actions().to_string(), actions, "row {rule:?}: actions");
                assert!(g.allows(action), "row {rule:?}: asked action missing");
                assert_eq!(
                    (g.user_name(), g.asset_name(), g.protocol().name.as_str()),
                    (u, a, proto),
                    "row {rule:?}"
                );
            }
            _ => panic!("row {rule:?}: expected {expect:?}, got {got:?}"),
        }
    }
}

/// What every protocol's front door asks before a session: a grant for
/// every action the session needs, and otherwise whether the person may
/// know the asset ("not permitted") or gets the same answer as for an
/// asset that does not exist.
#[test]
fn a_session_is_admitted_for_all_its_actions_or_told_which_is_missing() {
    use Action::{Connect, Delete, Download, Upload};
    use rampart::session::{Denied as Refused, authorize};
    let snap = snapshot();
    let now = ts(NOW);
    let admit = |user: &str, asset: &str, account: &str, actions: &[Action]| {
        authorize(&snap, &who(user), asset, account, "ssh", actions, now)
            .map(|g| g.actions().to_string())
    };
    assert_eq!(
        admit("alice", "web1", "deploy", &[Connect]),
        Ok("connect,upload".into())
    );
    assert_eq!(
        admit("alice", "web1", "deploy", &[Upload, Connect]),
        Ok("connect,upload".into())
    );
    // Hers, but scp -f needs download, and rsync --delete needs delete.
    assert_eq!(
        admit("alice", "web1", "deploy", &[Download]),
        Err(Refused::NotPermitted(Download))
    );
    assert_eq!(
        admit("alice", "web1", "deploy", &[Upload, Delete]),
        Err(Refused::NotPermitted(Delete))
    );
    // Not hers, not active, not there: one answer.
    assert_eq!(
        admit("alice", "db1", "root", &[Connect]),
        Err(Refused::NoAccess)
    );
    assert_eq!(
        admit("bob", "off1", "root", &[Connect]),
        Err(Refused::NoAccess)
    );
    assert_eq!(
        admit("bob", "nope", "root", &[Connect]),
        Err(Refused::NoAccess)
    );
    assert_eq!(
        admit("dave", "web1", "root", &[Connect]),
        Err(Refused::NoAccess)
    );
}

#[test]
fn identity_groups_cannot_widen_access() {
    let snap = snapshot();
    let mut stale = who("carol");
    stale.groups = vec!["g-ops".to_string()];
    assert!(
        snap.authorize(&stale, "db1", "root", "ssh", Action::Connect, ts(NOW))
            .is_none(),
        "a group listed only in the Identity granted access"
    );
    let mut bob = who("bob");
    bob.groups.clear();
    assert!(
        snap.authorize(&bob, "db1", "root", "ssh", Action::Connect, ts(NOW))
            .is_some(),
        "snapshot membership was not used"
    );
}

#[test]
fn grant_details() {
    let snap = snapshot();
    let now = ts(NOW);
    #[rustfmt::skip]
    let rows: &[DetailRow] = &[
        // rule,                                              user,   asset,  account, protocol, action, valid_until, permissions
        ("open-ended perm: no end",                           "alice", "web1", "deploy", "ssh", Action::Connect, None, &["alice-connect", "alice-upload"]),
        ("latest end among the perms granting the action",    "judy",  "web1", "root",   "ssh", Action::Connect, Some("2030-06-01T00:00:00Z"), &["judy-until-june", "judy-until-march"]),
        ("only the perm granting upload decides its end",     "judy",  "web1", "root",   "ssh", Action::Upload,  Some("2030-03-01T00:00:00Z"), &["judy-until-june", "judy-until-march"]),
        ("open-ended perm, expiring user: the user's expiry", "kate",  "web1", "root",   "ssh", Action::Connect, Some("2030-02-01T00:00:00Z"), &["kate-open"]),
    ];
    for &(rule, u, a, acc, proto, action, until, perms) in rows {
        let g = snap
            .authorize(&who(u), a, acc, proto, action, now)
            .unwrap_or_else(|| panic!("row {rule:?}: no grant"));
        assert_eq!(g.valid_until(), until.map(ts), "row {rule:?}: valid_until");
        assert_eq!(g.permissions(), perms, "row {rule:?}: permissions");
    }

    let g = snap
        .authorize(&who("bob"), "db1", "root", "ssh", Action::Connect, now)
        .expect("bob reaches db1");
    assert_eq!(
        g.protocol().port,
        2222,
        "the grant carries the asset's port"
    );
    assert_eq!(g.address(), "db1.example.net");
    assert_eq!((g.user_id(), g.asset_id()), ("u-bob", "a-db1"));
    assert_eq!(
        g.account(),
        &GrantAccount::Stored {
            account_id: "acc-db1-root".into(),
            username: "root".into()
        }
    );
}

#[test]
fn approval_is_needed_only_when_every_granting_permission_asks() {
    let now = ts(NOW);
    let with = |asking: &[&str]| {
        let mut data = fixture();
        for p in &mut data.permissions {
            p.require_approval = asking.contains(&p.name.as_str());
        }
        Snapshot::build(data).unwrap_or_else(|e| panic!("{e}"))
    };
    let approval = |snap: &Snapshot, action| {
        snap.authorize(&who("judy"), "web1", "root", "ssh", action, now)
            .expect("judy reaches web1")
            .approval()
            .map(str::to_string)
    };
    // judy-until-june grants connect without asking: the union needs none.
    let snap = with(&["judy-until-march"]);
    assert_eq!(approval(&snap, Action::Connect), None);
    // Upload comes only from judy-until-march, which asks.
    assert_eq!(
        approval(&snap, Action::Upload),
        Some("judy-until-march".into())
    );
    let snap = with(&["judy-until-march", "judy-until-june"]);
    assert!(approval(&snap, Action::Connect).is_some());
    assert_eq!(approval(&with(&[]), Action::Upload), None);
}

/// (asset, protocols, accounts (* = privileged), @INPUT, actions)
type VisibleRow = (Str, Str, Str, bool, Str);

#[test]
fn visible_assets_lists_what_the_person_may_use() {
    #[rustfmt::skip]
    let rows: &[(&str, &str, &[VisibleRow], &str)] = &[
        // rule, user, [(asset, protocols, accounts, @INPUT, actions)], joined nodes of the first
        ("group perm on a node: its subtree, not inactive assets", "bob", &[
            ("db1", "ssh/2222,postgresql/5432", "postgres,root*", false, ALL_BUT_TUNNEL),
            ("web1", "ssh/22,sftp/22", "carol,deploy,root*", false, ALL_BUT_TUNNEL),
        ], "/DEFAULT/prod"),
        ("union of two perms on one asset", "alice", &[
            ("web1", "ssh/22,sftp/22", "deploy", false, "connect,upload"),
        ], "/DEFAULT/prod/web"),
        ("@INPUT-only asset is listed with no stored account", "carol", &[
            ("stg1", "ssh/22", "", true, "connect,download"),
            ("web1", "ssh/22", "carol", false, "connect"),
        ], "/DEFAULT/staging"),
        ("stored and @INPUT on one asset", "frank", &[
            ("pro1", "ssh/22", "root*", true, "connect,download"),
        ], "/DEFAULT/pro"),
        ("only an undeclared protocol: nothing visible", "nick", &[], ""),
        ("only an inactive account: nothing visible", "mia", &[], ""),
        ("inactive user sees nothing", "dave", &[], ""),
        ("inactive perm shows nothing", "liam", &[], ""),
        ("unknown user sees nothing", "ghost", &[], ""),
    ];
    let snap = snapshot();
    for &(rule, u, expected, nodes) in rows {
        let got = snap.visible_assets(&who(u), ts(NOW));
        let got_rows: Vec<(String, String, String, bool, String)> = got
            .iter()
            .map(|v| {
                (
                    v.name().to_string(),
                    v.protocols()
                        .map(ToString::to_string)
                        .collect::<Vec<_>>()
                        .join(","),
                    v.accounts()
                        .map(|a| {
                            format!("{}{}", a.username(), if a.privileged() { "*" } else { "" })
                        })
                        .collect::<Vec<_>>()
                        .join(","),
                    v.input_allowed(),
                    v.actions().to_string(),
                )
            })
            .collect();
        let want: Vec<(String, String, String, bool, String)> = expected
            .iter()
            .map(|&(a, p, acc, i, act)| (a.into(), p.into(), acc.into(), i, act.into()))
            .collect();
        assert_eq!(got_rows, want, "row {rule:?}");
        if let Some(first) = got.first() {
            assert_eq!(first.nodes().join(","), nodes, "row {rule:?}: nodes");
            assert_eq!(
                first.address(),
                format!("{}.example.net", first.name()),
                "row {rule:?}"
            );
            assert_eq!(first.id(), format!("a-{}", first.name()), "row {rule:?}");
            assert_eq!(first.platform(), "linux", "row {rule:?}");
        }
        for v in &got {
            let one = snap.visible_asset(&who(u), v.name(), ts(NOW));
            assert_eq!(
                format!("{one:?}"),
                format!("{:?}", Some(v)),
                "row {rule:?}: visible_asset({})",
                v.name()
            );
        }
    }
    assert!(
        snap.visible_asset(&who("alice"), "db1", ts(NOW)).is_none(),
        "alice does not see db1"
    );
}

#[test]
fn recheck_after_a_rebuild() {
    type Change = fn(&mut PolicyData);
    fn nothing(_: &mut PolicyData) {}
    fn drop_perm(d: &mut PolicyData) {
        d.permissions.retain(|p| p.name != "ops-prod");
    }
    fn leave_group(d: &mut PolicyData) {
        d.groups[0].member_ids.clear();
    }
    fn disable_user(d: &mut PolicyData) {
        d.users
            .iter_mut()
            .filter(|u| u.name == "bob")
            .for_each(|u| u.active = false);
    }
    fn rename_asset(d: &mut PolicyData) {
        d.assets[0].name = "web-one".into();
    }
    fn recreate_account(d: &mut PolicyData) {
        d.accounts[0].id = "acc-web1-root-new".into();
    }
    fn grant_stored_root(d: &mut PolicyData) {
        d.permissions.push(perm(
            "carol-root",
            &["carol"],
            &["stg1"],
            "root",
            "ssh",
            "all",
        ));
    }
    #[rustfmt::skip]
    let rows: &[(Str, Str, Str, Str, Change, Str, bool)] = &[
        // rule,                                            user,    asset,  account, change,            recheck at, still holds
        ("nothing changed",                                 "bob",   "web1", "root",  nothing,           NOW,        true),
        ("the permission was removed",                      "bob",   "web1", "root",  drop_perm,         NOW,        false),
        ("the user left the group the permission names",    "bob",   "web1", "root",  leave_group,       NOW,        false),
        ("the user was disabled",                           "bob",   "web1", "root",  disable_user,      NOW,        false),
        ("the asset was renamed: same asset id",            "bob",   "web1", "root",  rename_asset,      NOW,        true),
        ("the account was re-created: another secret",      "bob",   "web1", "root",  recreate_account,  NOW,        false),
        ("valid_until passed",                              "ivan",  "web1", "root",  nothing,           "2030-06-01T00:00:00Z", false),
        ("a typed-in grant stays typed-in when stored root is granted too", "carol", "stg1", "root", grant_stored_root, NOW, true),
    ];
    let before = snapshot();
    for &(rule, u, asset, account, change, at, holds) in rows {
        let grant = before
            .authorize(&who(u), asset, account, "ssh", Action::Connect, ts(NOW))
            .unwrap_or_else(|| panic!("row {rule:?}: no grant to start with"));
        let mut data = fixture();
        change(&mut data);
        let after = Snapshot::build(data).unwrap_or_else(|e| panic!("row {rule:?}: {e}"));
        let renewed = after.recheck(&grant, Action::Connect, ts(at));
        assert_eq!(renewed.is_some(), holds, "row {rule:?}: {renewed:?}");
        if let Some(r) = renewed {
            assert_eq!(
                r.account(),
                grant.account(),
                "row {rule:?}: account changed"
            );
        }
    }
}

fn reach_rows(rows: &[rampart::policy::Reach]) -> Vec<String> {
    rows.iter()
        .map(|r| {
            let protos: Vec<String> = r.protocols.iter().map(ToString::to_string).collect();
            format!(
                "{} {} {} via {}{} [{}] [{}]",
                r.user,
                r.asset,
                r.accounts.join(","),
                r.permission,
                r.group
                    .as_deref()
                    .map(|g| format!(" (group {g})"))
                    .unwrap_or_default(),
                protos.join(","),
                r.actions
            )
        })
        .collect()
}

#[test]
fn who_and_what_can_reach() {
    let snap = snapshot();
    let now = ts(NOW);
    #[rustfmt::skip]
    let who_rows: &[(&str, &str, &[&str])] = &[
        ("who: direct, group, @USER, windows; no inactive user/perm/account, no undeclared protocol", "web1", &[
            "alice web1 deploy via alice-connect [ssh/22] [connect]",
            "alice web1 deploy via alice-upload [ssh/22,sftp/22] [upload]",
            "bob web1 carol,deploy,root via ops-prod (group ops) [ssh/22,sftp/22] [connect,upload,download,delete,copy,paste,share]",
            "carol web1 carol via carol-self [ssh/22] [connect]",
            "ivan web1 root via ivan-window [ssh/22] [connect]",
            "judy web1 root via judy-until-june [ssh/22] [connect]",
            "judy web1 root via judy-until-march [ssh/22] [connect,upload]",
            "kate web1 root via kate-open [ssh/22] [connect]",
        ]),
        ("who: @INPUT shown as such", "stg1", &[
            "carol stg1 @INPUT via carol-typed [ssh/22] [connect,download]",
        ]),
        ("who: inactive asset", "off1", &[]),
    ];
    for &(rule, asset, want) in who_rows {
        let got = snap
            .who_can_reach(asset, now)
            .unwrap_or_else(|| panic!("row {rule:?}: unknown asset"));
        assert_eq!(reach_rows(&got), want, "row {rule:?}");
    }
    #[rustfmt::skip]
    let what_rows: &[(&str, &str, &[&str])] = &[
        ("what: via group, through the node tree", "bob", &[
            "bob db1 postgres,root via ops-prod (group ops) [ssh/2222,postgresql/5432] [connect,upload,download,delete,copy,paste,share]",
            "bob web1 carol,deploy,root via ops-prod (group ops) [ssh/22,sftp/22] [connect,upload,download,delete,copy,paste,share]",
        ]),
        ("what: sorted by asset, @USER and @INPUT", "carol", &[
            "carol stg1 @INPUT via carol-typed [ssh/22] [connect,download]",
            "carol web1 carol via carol-self [ssh/22] [connect]",
        ]),
        ("what: stored and typed on one asset, one row per perm", "frank", &[
            "frank pro1 root via devs-pro (group devs) [ssh/22] [connect]",
            "frank pro1 @INPUT via frank-typed [ssh/22] [download]",
        ]),
        ("what: inactive user reaches nothing", "dave", &[]),
    ];
    for &(rule, u, want) in what_rows {
        let got = snap
            .what_can_reach(u, now)
            .unwrap_or_else(|| panic!("row {rule:?}: unknown user"));
        assert_eq!(reach_rows(&got), want, "row {rule:?}");
    }
    assert!(
        snap.who_can_reach("nope", now).is_none(),
        "unknown asset must be None"
    );
    assert!(
        snap.what_can_reach("ghost", now).is_none(),
        "unknown user must be None"
    );
}

fn stored(asset: &str, username: &str) -> GrantAccount {
    GrantAccount::Stored {
        account_id: format!("acc-{asset}-{username}"),
        username: username.into(),
    }
}

fn typed(username: &str) -> GrantAccount {
    GrantAccount::Input {
        username: username.into(),
    }
}

#[test]
fn command_filters() {
    use FilterAction::{Allow, Deny, Review, Warn};
    let snap = snapshot();
    #[rustfmt::skip]
    let rows: Vec<FilterRow> = vec![
        // rule,                                          user,    asset,  account,                command,               verdict, deciding rule
        ("no filter matches: allow, no rule",             "alice", "web1", stored("web1", "deploy"), "uptime",            Allow,  None),
        ("unbound filter applies to everyone",            "carol", "stg1", typed("ubuntu"),        "rm -rf /etc",         Deny,   Some("deny-rm-root")),
        ("patterns match anywhere in the command",        "alice", "web1", stored("web1", "deploy"), "cd / && rm -rf /var", Deny,  Some("deny-rm-root")),
        ("anchored pattern does not match mid-command",   "alice", "web1", stored("web1", "deploy"), "echo sudo",         Allow,  None),
        ("deny wins over a lower-numbered allow",         "alice", "web1", stored("web1", "deploy"), "rm -rf /tmp/x",     Deny,   Some("deny-rm-root")),
        ("lowest priority number wins: review 10",        "alice", "web1", stored("web1", "deploy"), "sudo su -",         Review, Some("review-sudo-su")),
        ("only the warn rule matches",                    "alice", "web1", stored("web1", "deploy"), "sudo ls",           Warn,   Some("warn-sudo")),
        ("equal priorities: first by name",               "alice", "web1", stored("web1", "deploy"), "reboot",            Warn,   Some("tie-a-warn")),
        ("bound to a user: applies to that user",         "alice", "web1", stored("web1", "deploy"), "ls -l",             Warn,   Some("alice-ls")),
        ("bound to a user: not to others",                "bob",   "web1", stored("web1", "root"),   "ls -l",             Allow,  None),
        ("bound to a group: applies to members",          "bob",   "web1", stored("web1", "root"),   "shutdown -h now",   Deny,   Some("ops-shutdown")),
        ("bound to a group: not to others",               "alice", "web1", stored("web1", "deploy"), "shutdown -h now",   Allow,  None),
        ("bound to a node: applies to descendants",       "bob",   "web1", stored("web1", "root"),   "DROP TABLE users",  Deny,   Some("prod-drop")),
        ("bound to a node: applies to its own assets",    "bob",   "db1",  stored("db1", "root"),    "drop table users",  Deny,   Some("prod-drop")),
        ("bound to a node: not to other subtrees",        "carol", "stg1", typed("ubuntu"),        "drop table users",    Allow,  None),
        ("bound to /DEFAULT/prod: /DEFAULT/pro is outside","frank", "pro1", stored("pro1", "root"),   "drop table users",  Allow,  None),
        ("bound to an asset: applies there",              "bob",   "db1",  stored("db1", "postgres"), "psql -l",          Review, Some("db1-psql")),
        ("bound to an asset: not elsewhere",              "bob",   "web1", stored("web1", "root"),   "psql -l",           Allow,  None),
        ("bound to account root: stored root",            "bob",   "web1", stored("web1", "root"),   "passwd",            Review, Some("root-passwd")),
        ("bound to account root: typed-in root too",      "carol", "stg1", typed("root"),          "passwd",              Review, Some("root-passwd")),
        ("bound to account root: not other accounts",     "alice", "web1", stored("web1", "deploy"), "passwd",            Allow,  None),
        ("@INPUT binding: typed-in accounts",             "carol", "stg1", typed("ubuntu"),        "curl http://x",       Warn,   Some("input-curl")),
        ("@INPUT binding: not stored accounts",           "alice", "web1", stored("web1", "deploy"), "curl http://x",     Allow,  None),
        ("@USER binding: account named like the person",  "carol", "web1", stored("web1", "carol"),  "kill 1",            Warn,   Some("self-kill")),
        ("@USER binding: not other accounts",             "bob",   "web1", stored("web1", "root"),   "kill 1",            Allow,  None),
        ("bound only to a removed user: binds nobody",    "alice", "web1", stored("web1", "deploy"), "whoami",            Allow,  None),
        ("inactive filter does nothing",                  "alice", "web1", stored("web1", "deploy"), "date",              Allow,  None),
    ];
    for (rule, u, asset, account, command, action, by) in &rows {
        let got = snap.check_command(&who(u), asset, account, command);
        assert_eq!(
            (got.action, got.rule.as_deref()),
            (*action, *by),
            "row {rule:?}"
        );
    }

    let grant = snap
        .authorize(&who("bob"), "web1", "root", "ssh", Action::Connect, ts(NOW))
        .expect("bob reaches web1");
    let v = snap.check_grant_command(&grant, "DROP TABLE users");
    assert_eq!(
        (v.action, v.rule.as_deref()),
        (Deny, Some("prod-drop")),
        "check_grant_command uses the grant's bindings"
    );
}

#[test]
fn a_filter_applies_only_to_what_its_scope_names() {
    use rampart::model::Scope;
    let mut data = fixture();
    let mut sql = filter(
        "sql-truncate",
        r"(?i)^truncate\b",
        FilterAction::Deny,
        1,
        &[],
        &[],
        "@ALL",
    );
    sql.on = Scope::Sql;
    data.filters.push(sql);
    let snap = Snapshot::build(data).expect("builds");
    let grant = snap
        .authorize(&who("bob"), "web1", "root", "ssh", Action::Connect, ts(NOW))
        .expect("bob reaches web1");
    let shell = snap.check_grant_command(&grant, "truncate -s 0 app.log");
    assert_eq!(
        shell.action,
        FilterAction::Allow,
        "an sql rule does not judge shell lines"
    );
    let v = snap.check_grant_statement(&grant, Scope::Sql, "TRUNCATE users");
    assert_eq!(
        (v.action, v.rule.as_deref()),
        (FilterAction::Deny, Some("sql-truncate"))
    );
    let v = snap.check_grant_statement(&grant, Scope::Sql, "drop table users");
    assert_eq!(
        v.action,
        FilterAction::Allow,
        "a shell rule (prod-drop) does not judge statements"
    );
    let v = snap.check_grant_statement(&grant, Scope::Redis, "TRUNCATE users");
    assert_eq!(
        v.action,
        FilterAction::Allow,
        "nor does an sql rule judge redis commands"
    );
    assert!(
        snap.grant_is_guarded(&grant),
        "prod-drop still guards bob's shells"
    );
}

#[test]
fn build_errors_name_the_culprit() {
    type Breakage = fn(&mut PolicyData);
    fn bad_regex(d: &mut PolicyData) {
        let mut f = d.filters[0].clone();
        (f.id, f.name, f.pattern) = ("f-broken".into(), "broken-rule".into(), "([a-z".into());
        d.filters.push(f);
    }
    fn twin_asset(d: &mut PolicyData) {
        let mut a = d.assets[0].clone();
        a.id = "a-twin".into();
        d.assets.push(a);
    }
    fn twin_account(d: &mut PolicyData) {
        let mut a = d.accounts[0].clone();
        (a.id, a.active) = ("acc-twin".into(), false);
        d.accounts.push(a);
    }
    fn twin_node(d: &mut PolicyData) {
        let mut n = d.nodes[1].clone();
        n.id = "n-twin".into();
        d.nodes.push(n);
    }
    #[rustfmt::skip]
    let rows: &[(Str, Breakage, Str)] = &[
        ("bad regex: names the filter, quotes the pattern and the regex error, one line", bad_regex,
            r#"command filter "broken-rule": pattern "([a-z" does not compile: unclosed character class (at character 2)"#),
        ("two assets with one name", twin_asset, r#"duplicate asset name "web1" in the policy data"#),
        ("two accounts with one username on an asset, even if one is inactive", twin_account,
            r#"duplicate account "root@web1" in the policy data"#),
        ("two nodes with one path", twin_node, r#"duplicate node path "/DEFAULT/pro" in the policy data"#),
    ];
    for &(rule, break_it, want) in rows {
        let mut data = fixture();
        break_it(&mut data);
        match Snapshot::build(data) {
            Ok(_) => panic!("row {rule:?}: built"),
            Err(e) => assert_eq!(e.to_string(), want, "row {rule:?}"),
        }
    }

    let mut data = fixture();
    data.filters.push(FilterEntry {
        id: "f-x".into(),
        name: "x".into(),
        pattern: "(".into(),
        active: false,
        ..data.filters[0].clone()
    });
    assert!(
        Snapshot::build(data).is_ok(),
        "an inactive filter's pattern is not compiled"
    );
}

#[test]
fn snapshot_is_shareable_and_counts() {
    fn shareable<T: Send + Sync + 'static>() {}
    shareable::<Snapshot>();
    shareable::<rampart::policy::Grant>();
    let snap = snapshot();
    let stats = snap.stats();
    assert_eq!(
        (stats.users, stats.groups, stats.nodes, stats.assets),
        (14, 2, 5, 5)
    );
    assert_eq!(
        (stats.accounts, stats.permissions, stats.filters),
        (8, 18, 14)
    );
    assert_eq!(
        snap.asset_by_name("web1").map(|a| a.accounts().len()),
        Some(3)
    );
    let bob = snap.user_by_name("bob").expect("bob");
    assert_eq!(bob.groups, ["ops"]);
    assert!(
        Snapshot::default()
            .visible_assets(&who("bob"), ts(NOW))
            .is_empty()
    );
    assert_eq!(Actions::all_but_tunnel().to_string(), ALL_BUT_TUNNEL);
}
