//! The edit verbs through `ops`, as the console's edit forms call them with
//! a whole spec: permissions, command filters and login ACLs replaced in
//! place (renames included), nodes moved with their subtree, and a user's
//! role, email, expiry and groups set in one change. Each change leaves one
//! operation row with before and after; each refusal leaves nothing.

use std::sync::Arc;

use rampart::audit::Via;
use rampart::clock::ManualClock;
use rampart::model::{AccountSpec, AclAction, FilterAction, ProtocolSpec, Role};
use rampart::ops::{
    AccountSecret, AclSpec, AssetSpec, Caller, FilterSpec, Ops, OpsSettings, PermSpec, UserEdit,
    UserSpec,
};
use rampart::store::audit_log::{OperationRow, Query};
use rampart::store::{self, Store};

fn admin() -> Caller {
    Caller {
        name: "root".into(),
        role: Role::Admin,
        via: Via::Cli,
    }
}

fn auditor() -> Caller {
    Caller {
        name: "carol".into(),
        role: Role::Auditor,
        via: Via::Ssh,
    }
}

fn v(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| s.to_string()).collect()
}

struct World {
    ops: Ops,
    store: Store,
}

impl World {
    /// alice and bob; groups dba and ops (alice in dba); nodes
    /// /DEFAULT/prod/{web,db} with web1 and db1; permission web-ops (alice
    /// on /DEFAULT/prod) and other (bob on db1).
    async fn new() -> World {
        let store = Store::in_memory().await.unwrap();
        let clock = Arc::new(ManualClock::new("2026-11-23T09:00:00Z".parse().unwrap()));
        let ops = Ops::new(store.clone(), None, clock, OpsSettings::default());
        let a = admin();
        ops.group_add(&a, "dba").await.unwrap();
        ops.group_add(&a, "ops").await.unwrap();
        for (name, groups) in [("alice", v(&["dba"])), ("bob", Vec::new())] {
            ops.user_add(
                &a,
                UserSpec {
                    name: name.into(),
                    keys: vec![format!(
                        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAILM+rvN+ot98qgEN796jTiQfZfG1KaT0PtFDJ/XFSqti {name}@laptop"
                    )],
                    groups,
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        }
        for path in ["/DEFAULT/prod/web", "/DEFAULT/prod/db"] {
            ops.node_add(&a, path).await.unwrap();
        }
        for (name, node) in [("web1", "/DEFAULT/prod/web"), ("db1", "/DEFAULT/prod/db")] {
            ops.asset_add(
                &a,
                AssetSpec {
                    name: name.into(),
                    address: "10.0.0.5".into(),
                    protocols: vec!["ssh/22".parse().unwrap()],
                    nodes: v(&[node]),
                    active: true,
                    ..Default::default()
                },
            )
            .await
            .unwrap();
            ops.account_add(&a, name, "root", AccountSecret::None, false)
                .await
                .unwrap();
        }
        ops.perm_add(&a, perm("web-ops", &["alice"], &[], &["/DEFAULT/prod"]))
            .await
            .unwrap();
        ops.perm_add(&a, perm("other", &["bob"], &["db1"], &[]))
            .await
            .unwrap();
        World { ops, store }
    }

    async fn operations(&self) -> Vec<OperationRow> {
        self.ops
            .audit_operations(&admin(), &Query::default())
            .await
            .unwrap()
    }

    async fn counter(&self) -> i64 {
        let mut conn = self.store.conn().await.unwrap();
        store::change_counter(&mut conn).await.unwrap()
    }

    async fn reaches(&self, user: &str) -> Vec<String> {
        let mut assets: Vec<String> = self
            .ops
            .perm_what(&admin(), user)
            .await
            .unwrap()
            .into_iter()
            .map(|r| {
                serde_json::to_value(r).unwrap()["asset"]
                    .as_str()
                    .unwrap()
                    .to_string()
            })
            .collect();
        assets.sort();
        assets.dedup();
        assets
    }
}

fn perm(name: &str, users: &[&str], assets: &[&str], nodes: &[&str]) -> PermSpec {
    PermSpec {
        name: name.into(),
        users: v(users),
        groups: Vec::new(),
        assets: v(assets),
        nodes: v(nodes),
        accounts: AccountSpec::all(),
        protocols: ProtocolSpec::All,
        actions: "connect".parse().unwrap(),
        valid_from: None,
        valid_until: None,
        comment: String::new(),
        require_approval: false,
    }
}

#[tokio::test]
async fn perm_edit_replaces_the_whole_permission_in_one_logged_change() {
    let w = World::new().await;
    let before = w.ops.perm_show(&admin(), "web-ops").await.unwrap();
    assert_eq!(w.reaches("alice").await, v(&["db1", "web1"]));
    let counter = w.counter().await;

    let spec = PermSpec {
        groups: v(&["ops"]),
        accounts: "root".parse().unwrap(),
        protocols: "ssh".parse().unwrap(),
        actions: "connect,upload".parse().unwrap(),
        valid_until: Some("2027-01-01T00:00:00Z".parse().unwrap()),
        comment: "web only".into(),
        require_approval: true,
        ..perm("web-admin", &["bob"], &["web1"], &[])
    };
    let after = w.ops.perm_edit(&admin(), "web-ops", spec).await.unwrap();
    assert_eq!(after.id, before.id, "an edit keeps the permission's id");
    assert_eq!(after.name, "web-admin");
    assert_eq!(
        (&after.users, &after.groups, &after.assets, &after.nodes),
        (&v(&["bob"]), &v(&["ops"]), &v(&["web1"]), &Vec::new())
    );
    assert_eq!(after.actions.to_string(), "connect,upload");
    assert_eq!(after.accounts.to_string(), "root");
    assert!(after.require_approval && after.active);
    assert_eq!(after.comment, "web only");
    assert_eq!(
        w.ops.perm_show(&admin(), "web-admin").await.unwrap(),
        after,
        "what perm_edit returns is what is stored"
    );
    let gone = w.ops.perm_show(&admin(), "web-ops").await.unwrap_err();
    assert_eq!(gone.to_string(), "permission \"web-ops\" does not exist");
    assert_eq!(w.ops.perm_list(&admin()).await.unwrap().len(), 2);

    // The policy follows: alice lost the node, bob gained web1.
    assert!(w.reaches("alice").await.is_empty());
    assert_eq!(w.reaches("bob").await, v(&["db1", "web1"]));

    let ops = w.operations().await;
    let row = &ops[0];
    assert_eq!(row.verb, "perm.edit");
    assert_eq!(row.object, "permission web-ops");
    let (b, a) = (row.before.as_ref().unwrap(), row.after.as_ref().unwrap());
    assert_eq!(b["name"], "web-ops");
    assert_eq!(b["users"], serde_json::json!(["alice"]));
    assert_eq!(b["nodes"], serde_json::json!(["/DEFAULT/prod"]));
    assert_eq!(a["name"], "web-admin");
    assert_eq!(a["users"], serde_json::json!(["bob"]));
    assert_eq!(a["require_approval"], true);
    assert!(
        row.changes.iter().any(|c| c.starts_with("name: ")),
        "{:?}",
        row.changes
    );
    assert_eq!(ops[1].verb, "perm.add", "one row for the edit");
    assert!(w.counter().await > counter, "running servers must re-check");
}

#[tokio::test]
async fn perm_edit_refuses_what_perm_add_refuses_and_changes_nothing() {
    let w = World::new().await;
    let before = w.ops.perm_show(&admin(), "web-ops").await.unwrap();
    let rows = w.operations().await.len();
    let counter = w.counter().await;
    let past = "2020-01-01T00:00:00Z".parse().unwrap();
    let cases: Vec<(Caller, &str, PermSpec, &str)> = vec![
        (
            admin(),
            "web-ops",
            perm("web-ops", &["alice", "mallory"], &["web1"], &[]),
            "user \"mallory\" does not exist",
        ),
        (
            admin(),
            "web-ops",
            perm("web-ops", &["alice"], &[], &["/DEFAULT/nope"]),
            "node \"/DEFAULT/nope\" does not exist",
        ),
        (
            admin(),
            "web-ops",
            perm("web-ops", &[], &["web1"], &[]),
            "a permission needs at least one --user or --group",
        ),
        (
            admin(),
            "web-ops",
            perm("web-ops", &["alice"], &[], &[]),
            "a permission needs at least one --asset or --node",
        ),
        (
            admin(),
            "web-ops",
            PermSpec {
                valid_until: Some(past),
                ..perm("web-ops", &["alice"], &["web1"], &[])
            },
            "already past",
        ),
        (
            admin(),
            "web-ops",
            perm("web ops", &["alice"], &["web1"], &[]),
            "permission name \"web ops\" is not valid",
        ),
        (
            admin(),
            "web-ops",
            perm("other", &["alice"], &["web1"], &[]),
            "permission \"other\" already exists",
        ),
        (
            admin(),
            "nope",
            perm("nope", &["alice"], &["web1"], &[]),
            "permission \"nope\" does not exist",
        ),
        (
            auditor(),
            "web-ops",
            perm("web-ops", &["alice"], &["web1"], &[]),
            "editing a permission needs the admin role",
        ),
    ];
    for (caller, name, spec, expected) in cases {
        let err = w.ops.perm_edit(&caller, name, spec).await.unwrap_err();
        assert!(
            err.to_string().contains(expected),
            "expected {expected:?} in {err}"
        );
    }
    assert_eq!(w.ops.perm_show(&admin(), "web-ops").await.unwrap(), before);
    assert_eq!(w.operations().await.len(), rows, "a refusal left a row");
    assert_eq!(w.counter().await, counter);
}

fn filter(name: &str, pattern: &str) -> FilterSpec {
    FilterSpec {
        name: name.into(),
        pattern: pattern.into(),
        action: FilterAction::Deny,
        on: Default::default(),
        priority: 50,
        users: v(&["alice"]),
        groups: Vec::new(),
        assets: v(&["web1"]),
        nodes: Vec::new(),
        accounts: AccountSpec::all(),
    }
}

#[tokio::test]
async fn filter_edit_checks_the_regex_and_replaces_the_bindings() {
    let w = World::new().await;
    let added = w
        .ops
        .filter_add(&admin(), filter("no-rm", "rm -rf"))
        .await
        .unwrap();
    let rows = w.operations().await.len();

    let err = w
        .ops
        .filter_edit(&admin(), "no-rm", filter("no-rm", "rm (-rf"))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("is not a valid regex"), "{err}");
    assert_eq!(w.operations().await.len(), rows, "a refusal left a row");
    // An edit that changes nothing is still an admin's act, and logged.
    let same = w
        .ops
        .filter_edit(&admin(), "no-rm", filter("no-rm", "rm -rf"))
        .await
        .unwrap();
    assert_eq!(same, added);
    assert_eq!(w.operations().await.len(), rows + 1);

    let counter = w.counter().await;
    let spec = FilterSpec {
        action: FilterAction::Warn,
        on: Default::default(),
        priority: 10,
        users: Vec::new(),
        nodes: v(&["/DEFAULT/prod"]),
        assets: Vec::new(),
        groups: v(&["dba"]),
        accounts: "root".parse().unwrap(),
        ..filter("no-reboot", "^reboot")
    };
    let after = w.ops.filter_edit(&admin(), "no-rm", spec).await.unwrap();
    assert_eq!(after.id, added.id);
    assert_eq!(after.name, "no-reboot");
    assert_eq!(after.pattern, "^reboot");
    assert_eq!(after.action, FilterAction::Warn);
    assert_eq!(after.priority, 10);
    assert!(after.users.is_empty() && after.assets.is_empty());
    assert_eq!(after.groups, v(&["dba"]));
    assert_eq!(after.nodes, v(&["/DEFAULT/prod"]));
    assert_eq!(
        w.ops.filter_show(&admin(), "no-reboot").await.unwrap(),
        after
    );
    assert_eq!(w.ops.filter_list(&admin()).await.unwrap().len(), 1);
    assert!(w.counter().await > counter);

    let row = &w.operations().await[0];
    assert_eq!(
        (row.verb.as_str(), row.object.as_str()),
        ("filter.edit", "filter no-rm")
    );
    assert_eq!(row.before.as_ref().unwrap()["pattern"], "rm -rf");
    assert_eq!(row.after.as_ref().unwrap()["pattern"], "^reboot");
    assert_eq!(row.after.as_ref().unwrap()["action"], "warn");

    // A node path given as a binding is checked like anywhere else.
    let err = w
        .ops
        .filter_edit(
            &admin(),
            "no-reboot",
            FilterSpec {
                nodes: v(&["prod"]),
                ..filter("no-reboot", "^reboot")
            },
        )
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("node path \"prod\" is not valid"),
        "{err}"
    );
    assert_eq!(
        w.ops.filter_show(&admin(), "no-reboot").await.unwrap(),
        after
    );
}

fn acl(name: &str) -> AclSpec {
    AclSpec {
        name: name.into(),
        action: AclAction::Allow,
        priority: 10,
        users: v(&["alice"]),
        groups: Vec::new(),
        sources: v(&["10.1.0.0/16"]),
        windows: Vec::new(),
    }
}

#[tokio::test]
async fn acl_edit_replaces_sources_windows_and_bindings() {
    let w = World::new().await;
    let added = w.ops.acl_add(&admin(), acl("office")).await.unwrap();
    w.ops.acl_add(&admin(), acl("vpn")).await.unwrap();
    let rows = w.operations().await.len();
    for (spec, expected) in [
        (
            AclSpec {
                sources: v(&["10.0.0.0/33"]),
                ..acl("office")
            },
            "10.0.0.0/33",
        ),
        (
            AclSpec {
                windows: v(&["Funday 08:00-18:00"]),
                ..acl("office")
            },
            "Funday",
        ),
        (
            AclSpec {
                users: Vec::new(),
                ..acl("office")
            },
            "at least one --user or --group",
        ),
        (acl("vpn"), "login acl \"vpn\" already exists"),
    ] {
        let err = w.ops.acl_edit(&admin(), "office", spec).await.unwrap_err();
        assert!(
            err.to_string().contains(expected),
            "expected {expected:?} in {err}"
        );
    }
    let err = w
        .ops
        .acl_edit(&admin(), "nope", acl("nope"))
        .await
        .unwrap_err();
    assert_eq!(err.to_string(), "login acl \"nope\" does not exist");
    assert_eq!(w.operations().await.len(), rows);

    let spec = AclSpec {
        action: AclAction::Deny,
        priority: 5,
        users: Vec::new(),
        groups: v(&["dba"]),
        sources: Vec::new(),
        windows: v(&["Sat,Sun 00:00-23:59"]),
        ..acl("weekend")
    };
    let after = w.ops.acl_edit(&admin(), "office", spec).await.unwrap();
    assert_eq!(after.id, added.id);
    assert_eq!(after.name, "weekend");
    assert_eq!(after.action, AclAction::Deny);
    assert_eq!(after.priority, 5);
    assert!(after.users.is_empty() && after.sources.is_empty());
    assert_eq!(after.groups, v(&["dba"]));
    assert_eq!(after.windows, v(&["Sat,Sun 00:00-23:59"]));
    let listed = w.ops.acl_list(&admin()).await.unwrap();
    assert_eq!(listed.len(), 2);
    assert!(listed.contains(&after));

    let row = &w.operations().await[0];
    assert_eq!(
        (row.verb.as_str(), row.object.as_str()),
        ("acl.edit", "login acl office")
    );
    assert_eq!(
        row.before.as_ref().unwrap()["sources"],
        serde_json::json!(["10.1.0.0/16"])
    );
    assert_eq!(
        row.after.as_ref().unwrap()["windows"],
        serde_json::json!(["Sat,Sun 00:00-23:59"])
    );
}

#[tokio::test]
async fn node_move_carries_the_subtree_its_assets_and_bindings() {
    let w = World::new().await;
    let mut f = filter("no-rm", "rm -rf");
    f.assets = Vec::new();
    f.nodes = v(&["/DEFAULT/prod/web"]);
    w.ops.filter_add(&admin(), f).await.unwrap();
    let prod = w.ops.node_list(&admin()).await.unwrap();
    let counter = w.counter().await;

    let moved = w
        .ops
        .node_move(&admin(), "/DEFAULT/prod/", "/DEFAULT/live")
        .await
        .unwrap();
    assert_eq!(moved.from, "/DEFAULT/prod");
    assert_eq!(moved.node.path, "/DEFAULT/live");
    assert_eq!(moved.descendants, 2);
    assert!(moved.created.is_empty());
    let paths: Vec<String> = w
        .ops
        .node_list(&admin())
        .await
        .unwrap()
        .into_iter()
        .map(|n| n.path)
        .collect();
    assert_eq!(
        paths,
        v(&[
            "/DEFAULT",
            "/DEFAULT/live",
            "/DEFAULT/live/db",
            "/DEFAULT/live/web"
        ])
    );
    assert_eq!(prod.len(), paths.len());
    let web1 = w.ops.asset_show(&admin(), "web1").await.unwrap();
    assert_eq!(web1.asset.nodes, v(&["/DEFAULT/live/web"]));
    let perm = w.ops.perm_show(&admin(), "web-ops").await.unwrap();
    assert_eq!(perm.nodes, v(&["/DEFAULT/live"]));
    let filter = w.ops.filter_show(&admin(), "no-rm").await.unwrap();
    assert_eq!(filter.nodes, v(&["/DEFAULT/live/web"]));
    assert_eq!(w.reaches("alice").await, v(&["db1", "web1"]));
    assert!(w.counter().await > counter);

    let row = &w.operations().await[0];
    assert_eq!(
        (row.verb.as_str(), row.object.as_str()),
        ("node.move", "node /DEFAULT/prod")
    );
    assert_eq!(
        row.before.as_ref().unwrap()["nodes"],
        serde_json::json!(["/DEFAULT/prod", "/DEFAULT/prod/db", "/DEFAULT/prod/web"])
    );
    assert_eq!(
        row.after.as_ref().unwrap()["nodes"],
        serde_json::json!(["/DEFAULT/live", "/DEFAULT/live/db", "/DEFAULT/live/web"])
    );

    // Out from under the permission's node, into parents made on the way:
    // alice no longer reaches db1.
    let moved = w
        .ops
        .node_move(&admin(), "/DEFAULT/live/db", "/ARCHIVE/2026/db")
        .await
        .unwrap();
    assert_eq!(moved.created, v(&["/ARCHIVE", "/ARCHIVE/2026"]));
    assert_eq!(moved.descendants, 0);
    let mut conn = w.store.conn().await.unwrap();
    let parent = store::nodes::get(&mut conn, "/ARCHIVE/2026").await.unwrap();
    drop(conn);
    assert_eq!(moved.node.parent_id, Some(parent.id));
    assert_eq!(w.reaches("alice").await, v(&["web1"]));
    let db1 = w.ops.asset_show(&admin(), "db1").await.unwrap();
    assert_eq!(db1.asset.nodes, v(&["/ARCHIVE/2026/db"]));
    // The created parents are nodes like any other: /ARCHIVE/2026 holds db's node.
    let err = w
        .ops
        .node_remove(&admin(), "/ARCHIVE/2026")
        .await
        .unwrap_err();
    assert!(err.to_string().contains("1 child node(s)"), "{err}");
}

#[tokio::test]
async fn node_move_refuses_the_root_itself_and_taken_paths() {
    let w = World::new().await;
    w.ops.node_add(&admin(), "/OTHER/x").await.unwrap();
    let nodes = w.ops.node_list(&admin()).await.unwrap().len();
    let rows = w.operations().await.len();
    for (from, to, expected) in [
        (
            "/DEFAULT",
            "/ROOT",
            "/DEFAULT is the root node and cannot be moved",
        ),
        ("/DEFAULT/prod", "/DEFAULT/prod/web/x", "inside itself"),
        ("/DEFAULT/prod", "/DEFAULT/prod", "inside itself"),
        (
            "/DEFAULT/prod/web",
            "/DEFAULT/prod/db",
            "node \"/DEFAULT/prod/db\" already exists",
        ),
        (
            "/DEFAULT/prod/web",
            "/OTHER",
            "node \"/OTHER\" already exists",
        ),
        (
            "/DEFAULT/nope",
            "/NEW/nope",
            "node \"/DEFAULT/nope\" does not exist",
        ),
        ("prod", "/DEFAULT/x", "node path \"prod\" is not valid"),
        ("/DEFAULT/prod", "x/y", "node path \"x/y\" is not valid"),
    ] {
        let err = w.ops.node_move(&admin(), from, to).await.unwrap_err();
        assert!(
            err.to_string().contains(expected),
            "{from} -> {to}: expected {expected:?} in {err}"
        );
    }
    let err = w
        .ops
        .node_move(&auditor(), "/DEFAULT/prod", "/DEFAULT/live")
        .await
        .unwrap_err();
    assert!(err.to_string().contains("needs the admin role"), "{err}");
    assert_eq!(
        w.ops.node_list(&admin()).await.unwrap().len(),
        nodes,
        "/NEW was created"
    );
    assert_eq!(w.operations().await.len(), rows);
}

#[tokio::test]
async fn user_edit_sets_role_email_expiry_and_groups_in_one_change() {
    let w = World::new().await;
    let rows = w.operations().await.len();
    let until = "2027-06-01T00:00:00Z".parse().unwrap();
    let user = w
        .ops
        .user_edit(
            &admin(),
            "alice",
            UserEdit {
                role: Some(Role::Auditor),
                email: Some(Some("alice@example.com".into())),
                expires_at: Some(Some(until)),
                groups: Some(v(&["ops"])),
            },
        )
        .await
        .unwrap();
    assert_eq!(user.role, Role::Auditor);
    assert_eq!(user.email.as_deref(), Some("alice@example.com"));
    assert_eq!(user.expires_at, Some(until));
    let shown = w.ops.user_show(&admin(), "alice").await.unwrap();
    assert_eq!(shown.groups, v(&["ops"]));
    let ops = w.operations().await;
    assert_eq!(ops.len(), rows + 1, "one row for the whole edit");
    let row = &ops[0];
    assert_eq!(
        (row.verb.as_str(), row.object.as_str()),
        ("user.edit", "user alice")
    );
    assert_eq!(
        row.before.as_ref().unwrap()["groups"],
        serde_json::json!(["dba"])
    );
    assert_eq!(
        row.after.as_ref().unwrap()["groups"],
        serde_json::json!(["ops"])
    );
    assert_eq!(row.after.as_ref().unwrap()["role"], "auditor");

    // An unknown group is named, and nothing of the edit happens.
    let err = w
        .ops
        .user_edit(
            &admin(),
            "alice",
            UserEdit {
                role: Some(Role::User),
                groups: Some(v(&["dba", "nope"])),
                ..Default::default()
            },
        )
        .await
        .unwrap_err();
    assert_eq!(err.to_string(), "group \"nope\" does not exist");
    let shown = w.ops.user_show(&admin(), "alice").await.unwrap();
    assert_eq!(shown.groups, v(&["ops"]));
    assert_eq!(shown.user.role, Role::Auditor);
    assert_eq!(w.operations().await.len(), rows + 1);

    // None leaves the groups alone; an empty list leaves every group.
    w.ops
        .user_edit(
            &admin(),
            "alice",
            UserEdit {
                email: Some(None),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(
        w.ops.user_show(&admin(), "alice").await.unwrap().groups,
        v(&["ops"])
    );
    w.ops
        .user_edit(
            &admin(),
            "alice",
            UserEdit {
                groups: Some(Vec::new()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert!(
        w.ops
            .user_show(&admin(), "alice")
            .await
            .unwrap()
            .groups
            .is_empty()
    );
    let group = w.ops.group_list(&admin()).await.unwrap();
    assert!(group.iter().all(|g| g.members.is_empty()), "{group:?}");
}
