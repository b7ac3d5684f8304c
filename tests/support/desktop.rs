//! What the desktop tests share (tests/rdp.rs, tests/graphics.rs): a
//! freerdp-shadow target, a bastion with it as asset `win1` that the admin
//! may connect to, and reading a ticket's lines.

use std::sync::Arc;
use std::time::Duration;

use super::rdp::{Client as Rdp, ShadowTarget, TARGET_RGB};
use super::ssh::{Client, TestBastion, run_ok};

/// The target's Administrator password, vaulted as account
/// `win1/Administrator`.
pub const TARGET_PASSWORD: &str = "Target-Pass-1";

pub fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

/// A shadow target sharing a desktop of [`super::rdp::TARGET_RGB`].
pub async fn start_target() -> ShadowTarget {
    tokio::task::spawn_blocking(|| ShadowTarget::start("Administrator", TARGET_PASSWORD))
        .await
        .unwrap()
}

/// A bastion with its RDP front at the returned address, and the admin
/// over SSH, who may connect to `target` (asset `win1`) as Administrator.
pub async fn bastion(target: &ShadowTarget) -> (TestBastion, Client, String) {
    let front = free_port();
    let b = TestBastion::start_with(&format!("[rdp]\nlisten = [\"127.0.0.1:{front}\"]\n")).await;
    let admin = Client::admin(b.addr).await;
    run_ok(
        &admin,
        &format!(
            "rampart asset add win1 --address 127.0.0.1 --protocol rdp/{} --platform windows",
            target.port
        ),
    )
    .await;
    let (_, err, status) = admin
        .exec_stdin(
            "rampart account add win1 Administrator --password-stdin",
            format!("{TARGET_PASSWORD}\n").as_bytes(),
        )
        .await;
    assert_eq!(status, Some(0), "{err}");
    run_ok(
        &admin,
        "rampart perm add desk --user admin --asset win1 --actions connect",
    )
    .await;
    b.reload().await;
    (b, admin, format!("127.0.0.1:{front}"))
}

/// The value of the line `NAME value` in `text` (the ticket's and the RDP
/// password's lines, inside a box's borders or not).
pub fn field(text: &str, name: &str) -> String {
    text.lines()
        .flat_map(|l| l.split('│'))
        .find_map(|part| part.trim().strip_prefix(name).map(|v| v.trim().to_string()))
        .unwrap_or_else(|| panic!("no {name} line in {text}"))
}

/// Connects xfreerdp to `front` and waits for the target's desktop on its
/// screen.
pub async fn desktop(front: &str, user: &str, password: &str) -> Arc<Rdp> {
    let (front, user, password) = (front.to_string(), user.to_string(), password.to_string());
    let client = tokio::task::spawn_blocking(move || Rdp::connect(&front, &user, &password, &[]))
        .await
        .unwrap();
    let client = Arc::new(client);
    let seen = {
        let client = client.clone();
        tokio::task::spawn_blocking(move || {
            client.wait_for_color(TARGET_RGB, 100_000, Duration::from_secs(20))
        })
        .await
        .unwrap()
    };
    assert!(
        seen,
        "the target's desktop never showed: {}",
        client.output()
    );
    client
}
