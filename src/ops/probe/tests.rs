//! `asset test` against the in-process demo target (a russh server on
//! loopback that accepts one username and password).

use super::*;
use crate::demo::DemoTarget;
use crate::model::Protocol;
use crate::ops::testing::{admin, auditor, operations, ops};
use crate::ops::{AccountSecret, AssetSpec};
use crate::vault::Secret;

const PASSWORD: &str = "demo-Target-pw-2026";

fn key(seed: u8) -> russh::keys::PrivateKey {
    russh::keys::PrivateKey::from(russh::keys::ssh_key::private::Ed25519Keypair::from_seed(
        &[seed; 32],
    ))
}

fn fingerprint(seed: u8) -> String {
    crate::auth::fingerprint_of(key(seed).public_key())
}

async fn target() -> DemoTarget {
    DemoTarget::start(
        "127.0.0.1:0".parse().unwrap(),
        "demo",
        Secret::new(PASSWORD.into()),
        key(1),
    )
    .await
    .unwrap()
}

/// Asset web1 on `port` with account `demo` holding `password`.
async fn world(port: u16, password: &str) -> Ops {
    let ops = ops().await;
    ops.asset_add(
        &admin(),
        AssetSpec {
            name: "web1".into(),
            address: "127.0.0.1".into(),
            protocols: vec![Protocol {
                name: "ssh".into(),
                port,
            }],
            active: true,
            ..Default::default()
        },
    )
    .await
    .unwrap();
    ops.account_add(
        &admin(),
        "web1",
        "demo",
        AccountSecret::Password(Secret::new(password.into())),
        false,
    )
    .await
    .unwrap();
    ops
}

#[tokio::test]
async fn a_good_account_authenticates_and_an_unpinned_key_stays_unpinned() {
    let t = target().await;
    let ops = world(t.addr.port(), PASSWORD).await;
    // An account without a secret sorts first; the test skips it.
    ops.account_add(&admin(), "web1", "aaa", AccountSecret::None, false)
        .await
        .unwrap();

    let test = ops.asset_test(&admin(), "web1", None).await.unwrap();
    assert!(test.ok, "{:?}", test.error);
    assert_eq!(test.error, None);
    assert_eq!(test.account, "demo");
    assert_eq!(test.port, t.addr.port());
    let presented = test.host_key.clone().unwrap();
    assert_eq!(presented.algorithm, "ssh-ed25519");
    assert_eq!(presented.fingerprint, fingerprint(1));
    assert!(presented.openssh.starts_with("ssh-ed25519 AAAA"));
    assert_eq!(test.host_key_status, HostKeyStatus::NotPinned);
    assert!(test.pinned.is_empty());
    // Nothing pinned behind the admin's back.
    let shown = ops.asset_show(&admin(), "web1").await.unwrap();
    assert!(shown.host_keys.is_empty());

    // The admin trusts exactly the key the test saw; the next test says so.
    ops.asset_trust(&admin(), "web1", Some(&presented.openssh))
        .await
        .unwrap();
    let again = ops.asset_test(&admin(), "web1", None).await.unwrap();
    assert!(again.ok);
    assert_eq!(again.host_key_status, HostKeyStatus::Pinned);
    assert_eq!(again.pinned, [fingerprint(1)]);

    let rows = operations(&ops, "asset.test").await;
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0].object, "asset web1");
    let after = rows[0].after.as_ref().unwrap();
    assert_eq!(after["account"], "demo");
    assert_eq!(after["ok"], true);
    assert_eq!(after["error"], serde_json::Value::Null);
    assert_eq!(after["fingerprint"], fingerprint(1));
    assert!(!serde_json::to_string(&rows).unwrap().contains(PASSWORD));
    t.stop();
}

#[tokio::test]
async fn a_wrong_password_is_reported_as_refused_credentials() {
    let t = target().await;
    let ops = world(t.addr.port(), "not-the-password").await;
    let test = ops
        .asset_test(&admin(), "web1", Some("demo"))
        .await
        .unwrap();
    assert!(!test.ok);
    assert_eq!(
        test.error.as_deref(),
        Some("web1 refused the credentials of account demo")
    );
    assert_eq!(
        test.host_key.map(|k| k.fingerprint),
        Some(fingerprint(1)),
        "the key is reported when authentication fails"
    );
    let rows = operations(&ops, "asset.test").await;
    assert_eq!(rows[0].after.as_ref().unwrap()["ok"], false);
    assert!(
        !serde_json::to_string(&rows)
            .unwrap()
            .contains("not-the-password")
    );
    t.stop();
}

#[tokio::test]
async fn a_changed_host_key_is_refused_with_both_fingerprints() {
    let t = target().await;
    let ops = world(t.addr.port(), PASSWORD).await;
    let other = key(2).public_key().to_openssh().unwrap();
    ops.asset_trust(&admin(), "web1", Some(&other))
        .await
        .unwrap();
    let test = ops.asset_test(&admin(), "web1", None).await.unwrap();
    assert!(!test.ok);
    let error = test.error.unwrap();
    assert!(
        error.contains("host key of web1 has changed")
            && error.contains(&format!("now {}", fingerprint(1)))
            && error.contains(&format!("pinned {}", fingerprint(2))),
        "{error}"
    );
    assert_eq!(test.host_key_status, HostKeyStatus::Changed);
    let presented = test.host_key.unwrap();
    assert_eq!(presented.fingerprint, fingerprint(1));
    assert!(t.executed().is_empty());
    // The test re-pinned nothing.
    let shown = ops.asset_show(&admin(), "web1").await.unwrap();
    assert_eq!(shown.host_keys[0].fingerprint, fingerprint(2));
    // The presented line is exactly what `asset trust --key` takes.
    ops.asset_trust(&admin(), "web1", Some(&presented.openssh))
        .await
        .unwrap();
    assert!(ops.asset_test(&admin(), "web1", None).await.unwrap().ok);
    t.stop();
}

#[tokio::test]
async fn a_closed_port_is_unreachable_with_the_reason() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let ops = world(port, PASSWORD).await;
    let test = ops.asset_test(&admin(), "web1", None).await.unwrap();
    assert!(!test.ok);
    let error = test.error.unwrap();
    assert!(
        error.starts_with("cannot reach web1 (127.0.0.1): ") && error.contains("refused"),
        "{error}"
    );
    assert_eq!(test.host_key, None);
    assert_eq!(test.host_key_status, HostKeyStatus::NotSeen);
    assert_eq!(operations(&ops, "asset.test").await.len(), 1);
}

#[tokio::test]
async fn a_test_that_cannot_be_made_says_why() {
    let ops = world(22, PASSWORD).await;
    let err = ops.asset_test(&auditor(), "web1", None).await.unwrap_err();
    assert!(
        err.to_string()
            .contains("testing an asset's connection needs the admin role"),
        "{err}"
    );
    let err = ops
        .asset_test(&admin(), "web1", Some("nobody"))
        .await
        .unwrap_err();
    assert_eq!(err.to_string(), "account \"nobody@web1\" does not exist");
    let err = ops.asset_test(&admin(), "nope", None).await.unwrap_err();
    assert_eq!(err.to_string(), "asset \"nope\" does not exist");

    ops.account_edit(
        &admin(),
        "web1",
        "demo",
        crate::ops::AccountEdit {
            secret: Some(AccountSecret::None),
            privileged: None,
            web_login: None,
        },
    )
    .await
    .unwrap();
    let err = ops.asset_test(&admin(), "web1", None).await.unwrap_err();
    assert!(
        err.to_string()
            .contains("asset web1 has no account with a stored secret"),
        "{err}"
    );

    let mut db = ops.asset_show(&admin(), "web1").await.unwrap().asset;
    db.protocols = vec![Protocol {
        name: "postgresql".into(),
        port: 5432,
    }];
    ops.asset_edit(
        &admin(),
        "web1",
        AssetSpec {
            name: db.name,
            address: db.address,
            protocols: db.protocols,
            nodes: db.nodes,
            platform: Some(db.platform),
            database: None,
            tls: false,
            url: None,
            comment: db.comment,
            active: db.active,
        },
    )
    .await
    .unwrap();
    let err = ops
        .asset_test(&admin(), "web1", Some("demo"))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("has no ssh protocol"), "{err}");
    assert!(operations(&ops, "asset.test").await.is_empty());
}
