use super::*;
use crate::ops::testing::{admin, auditor, change_counter, operations, ops};

const OLD_PASSWORD: &str = "old-Target-pw-4711";
const NEW_PASSWORD: &str = "new-Target-pw-0815";

fn web1() -> AssetSpec {
    AssetSpec {
        name: "web1".into(),
        address: "10.0.0.5".into(),
        protocols: vec![Protocol {
            name: "ssh".into(),
            port: 22,
        }],
        nodes: vec!["/DEFAULT/prod".into()],
        platform: Some("linux".into()),
        database: None,
        tls: false,
        url: None,
        comment: "front".into(),
        active: true,
    }
}

/// An `Ops` with node /DEFAULT/prod, asset web1 in it and account root
/// on it with a password.
async fn world() -> Ops {
    let ops = ops().await;
    ops.node_add(&admin(), "/DEFAULT/prod").await.unwrap();
    ops.node_add(&admin(), "/DEFAULT/lab").await.unwrap();
    ops.asset_add(&admin(), web1()).await.unwrap();
    ops.account_add(
        &admin(),
        "web1",
        "root",
        AccountSecret::Password(Secret::new(OLD_PASSWORD.into())),
        false,
    )
    .await
    .unwrap();
    ops
}

/// The plaintext secret the vault holds for an account.
async fn stored_secret(ops: &Ops, asset: &str, username: &str) -> (SecretKind, Option<String>) {
    let mut conn = ops.store.conn().await.unwrap();
    let a = assets::get(&mut conn, asset).await.unwrap();
    let account = accounts::find(&mut conn, &a.id, username)
        .await
        .unwrap()
        .unwrap();
    let (kind, sealed) = accounts::secret(&mut conn, &account.id).await.unwrap();
    let opened = sealed.map(|s| {
        ops.vault()
            .unwrap()
            .open_string(&s)
            .unwrap()
            .expose()
            .clone()
    });
    (kind, opened)
}

#[tokio::test]
async fn asset_edit_replaces_every_field_and_renames() {
    let ops = world().await;
    let counter = change_counter(&ops).await;
    let edited = ops
        .asset_edit(
            &admin(),
            "web1",
            AssetSpec {
                name: "web2".into(),
                address: "web2.example.net".into(),
                protocols: vec![
                    Protocol {
                        name: "ssh".into(),
                        port: 2222,
                    },
                    Protocol {
                        name: "sftp".into(),
                        port: 2222,
                    },
                ],
                nodes: vec!["/DEFAULT/lab".into()],
                platform: Some("bsd".into()),
                database: None,
                tls: false,
                url: None,
                comment: "moved".into(),
                active: false,
            },
        )
        .await
        .unwrap();
    assert_eq!(edited.name, "web2");
    assert_eq!(edited.address, "web2.example.net");
    assert_eq!(edited.platform, "bsd");
    assert_eq!(edited.nodes, ["/DEFAULT/lab"]);
    assert_eq!(
        edited
            .protocols
            .iter()
            .map(|p| p.to_string())
            .collect::<Vec<_>>(),
        ["sftp/2222", "ssh/2222"]
    );
    assert!(!edited.active);
    assert_eq!(edited.comment, "moved");

    // The old name is gone; the accounts came along with the id.
    let err = ops.asset_show(&admin(), "web1").await.unwrap_err();
    assert_eq!(err.to_string(), "asset \"web1\" does not exist");
    let shown = ops.asset_show(&admin(), "web2").await.unwrap();
    assert_eq!(shown.asset.id, edited.id);
    assert_eq!(shown.accounts.len(), 1);
    assert_eq!(shown.accounts[0].asset, "web2");

    let rows = operations(&ops, "asset.edit").await;
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].object, "asset web1");
    let before = rows[0].before.as_ref().unwrap();
    let after = rows[0].after.as_ref().unwrap();
    assert_eq!(before["name"], "web1");
    assert_eq!(before["active"], true);
    assert_eq!(after["name"], "web2");
    assert_eq!(after["active"], false);
    assert_eq!(after["nodes"], json!(["/DEFAULT/lab"]));
    assert!(
        change_counter(&ops).await > counter,
        "the server would not reload"
    );
}

#[tokio::test]
async fn asset_edit_checks_what_asset_add_checks_and_leaves_nothing_on_refusal() {
    let ops = world().await;
    let mut other = web1();
    other.name = "db1".into();
    ops.asset_add(&admin(), other).await.unwrap();
    let counter = change_counter(&ops).await;

    let cases: Vec<(AssetSpec, &str)> = vec![
        (
            AssetSpec {
                name: "rampart".into(),
                ..web1()
            },
            "reserved",
        ),
        (
            AssetSpec {
                name: "db1".into(),
                ..web1()
            },
            "asset \"db1\" already exists",
        ),
        (
            AssetSpec {
                name: "web 1".into(),
                ..web1()
            },
            "asset name \"web 1\" is not valid",
        ),
        (
            AssetSpec {
                address: "-oProxyCommand=x".into(),
                ..web1()
            },
            "is not a host name or IP address",
        ),
        (
            AssetSpec {
                protocols: Vec::new(),
                ..web1()
            },
            "at least one --protocol",
        ),
        (
            AssetSpec {
                nodes: vec!["/DEFAULT/nowhere".into()],
                ..web1()
            },
            "node \"/DEFAULT/nowhere\" does not exist",
        ),
    ];
    for (spec, expected) in cases {
        let err = ops.asset_edit(&admin(), "web1", spec).await.unwrap_err();
        assert!(err.to_string().contains(expected), "{err} / {expected}");
    }
    let err = ops.asset_edit(&admin(), "nope", web1()).await.unwrap_err();
    assert_eq!(err.to_string(), "asset \"nope\" does not exist");
    let err = ops
        .asset_edit(&auditor(), "web1", web1())
        .await
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("editing an asset needs the admin role"),
        "{err}"
    );

    let shown = ops.asset_show(&admin(), "web1").await.unwrap();
    assert_eq!(shown.asset.address, "10.0.0.5");
    assert_eq!(shown.asset.nodes, ["/DEFAULT/prod"]);
    assert!(operations(&ops, "asset.edit").await.is_empty());
    assert_eq!(change_counter(&ops).await, counter);
}

#[tokio::test]
async fn account_edit_replaces_the_secret_without_logging_it() {
    let ops = world().await;
    let counter = change_counter(&ops).await;
    let account = ops
        .account_edit(
            &admin(),
            "web1",
            "root",
            AccountEdit {
                secret: Some(AccountSecret::Password(Secret::new(NEW_PASSWORD.into()))),
                privileged: None,
                web_login: None,
            },
        )
        .await
        .unwrap();
    assert_eq!(account.secret_kind, SecretKind::Password);
    assert!(!account.privileged);
    assert_eq!(
        stored_secret(&ops, "web1", "root").await,
        (SecretKind::Password, Some(NEW_PASSWORD.to_string()))
    );
    assert!(change_counter(&ops).await > counter);

    // Only the flag: the secret stays, and the row does not mention one.
    let account = ops
        .account_edit(
            &admin(),
            "web1",
            "root",
            AccountEdit {
                secret: None,
                privileged: Some(true),
                web_login: None,
            },
        )
        .await
        .unwrap();
    assert!(account.privileged);
    assert_eq!(
        stored_secret(&ops, "web1", "root").await.1.as_deref(),
        Some(NEW_PASSWORD)
    );

    // No secret: cleared, not merely marked.
    let account = ops
        .account_edit(
            &admin(),
            "web1",
            "root",
            AccountEdit {
                secret: Some(AccountSecret::None),
                privileged: None,
                web_login: None,
            },
        )
        .await
        .unwrap();
    assert_eq!(account.secret_kind, SecretKind::None);
    assert_eq!(
        stored_secret(&ops, "web1", "root").await,
        (SecretKind::None, None)
    );

    let rows = operations(&ops, "account.edit").await;
    assert_eq!(rows.len(), 3);
    assert!(rows.iter().all(|r| r.object == "account root@web1"));
    // Newest first.
    assert_eq!(rows[0].after.as_ref().unwrap()["secret"], "none");
    assert_eq!(rows[1].after.as_ref().unwrap().get("secret"), None);
    assert_eq!(rows[1].before.as_ref().unwrap()["privileged"], false);
    assert_eq!(rows[1].after.as_ref().unwrap()["privileged"], true);
    assert_eq!(rows[2].after.as_ref().unwrap()["secret"], "password");
    let logged = serde_json::to_string(&rows).unwrap();
    assert!(!logged.contains(NEW_PASSWORD) && !logged.contains(OLD_PASSWORD));
}

#[tokio::test]
async fn account_edit_refuses_bad_secrets_and_keeps_the_old_one() {
    let ops = world().await;
    let edit = |secret| AccountEdit {
        secret: Some(secret),
        privileged: None,
        web_login: None,
    };
    let cases = [
        (
            "web1",
            "root",
            edit(AccountSecret::Password(Secret::new(String::new()))),
            "the account password is empty",
        ),
        (
            "web1",
            "root",
            edit(AccountSecret::PrivateKey(Secret::new(
                "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5 a public key".into(),
            ))),
            "not a private key",
        ),
        (
            "web1",
            "root",
            AccountEdit::default(),
            "nothing to change for account root@web1",
        ),
        (
            "web1",
            "nobody",
            edit(AccountSecret::None),
            "account \"nobody@web1\" does not exist",
        ),
        (
            "nope",
            "root",
            edit(AccountSecret::None),
            "asset \"nope\" does not exist",
        ),
    ];
    for (asset, username, edit, expected) in cases {
        let err = ops
            .account_edit(&admin(), asset, username, edit)
            .await
            .unwrap_err();
        assert!(err.to_string().contains(expected), "{err} / {expected}");
    }
    let err = ops
        .account_edit(&auditor(), "web1", "root", edit(AccountSecret::None))
        .await
        .unwrap_err();
    assert!(matches!(err, OpsError::Forbidden(_)), "{err}");
    assert_eq!(
        stored_secret(&ops, "web1", "root").await,
        (SecretKind::Password, Some(OLD_PASSWORD.to_string()))
    );
    assert!(operations(&ops, "account.edit").await.is_empty());
}

#[tokio::test]
async fn account_edit_takes_a_private_key() {
    let ops = world().await;
    let key = russh::keys::PrivateKey::from(
        russh::keys::ssh_key::private::Ed25519Keypair::from_seed(&[3u8; 32]),
    );
    let pem = key
        .to_openssh(russh::keys::ssh_key::LineEnding::LF)
        .unwrap()
        .to_string();
    let account = ops
        .account_edit(
            &admin(),
            "web1",
            "root",
            AccountEdit {
                secret: Some(AccountSecret::PrivateKey(Secret::new(pem.clone()))),
                privileged: None,
                web_login: None,
            },
        )
        .await
        .unwrap();
    assert_eq!(account.secret_kind, SecretKind::PrivateKey);
    assert_eq!(
        stored_secret(&ops, "web1", "root").await,
        (SecretKind::PrivateKey, Some(pem.clone()))
    );
    let rows = operations(&ops, "account.edit").await;
    assert_eq!(rows[0].after.as_ref().unwrap()["secret"], "private_key");
    assert!(
        !serde_json::to_string(&rows)
            .unwrap()
            .contains("PRIVATE KEY")
    );
}

#[tokio::test]
async fn a_web_asset_names_its_site_by_a_url_of_its_protocol_and_a_dns_name() {
    let ops = world().await;
    let web = |name: &str, protocol: &str, url: Option<&str>| AssetSpec {
        name: name.into(),
        protocols: vec![protocol.parse().unwrap()],
        url: url.map(str::to_string),
        ..web1()
    };
    for (spec, says) in [
        (
            web("app1", "https/443", None),
            "needs its site: give --url https://",
        ),
        (
            web("app1", "ssh/22", Some("https://10.0.0.7/")),
            "--url is for web assets",
        ),
        (
            web("app1", "https/443", Some("http://10.0.0.7/")),
            "is http, but the asset's web protocol is https",
        ),
        (
            web("app1", "https/443", Some("https://u:p@10.0.0.7/")),
            "no user, query or fragment",
        ),
        (
            web("App_1", "https/443", Some("https://10.0.0.7/")),
            "must be letters, digits and '-'",
        ),
    ] {
        let err = ops.asset_add(&admin(), spec).await.unwrap_err().to_string();
        assert!(err.contains(says), "{err}");
    }
    let added = ops
        .asset_add(
            &admin(),
            web("app1", "https/443", Some("https://10.0.0.7:8443/ui/")),
        )
        .await
        .unwrap();
    assert_eq!(added.url, "https://10.0.0.7:8443/ui/");
}
