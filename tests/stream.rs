//! 1 GiB through the bastion with bounded memory. In a test binary of its
//! own: the measure is this process's resident memory, and other tests
//! running beside it in the same process would be counted too.

mod support;

use rampart::ops::Caller;
use rampart::store::audit_log::Query;
use support::ssh::{Client, TestBastion};

/// Resident memory of this process (bastion, demo target and client all
/// live in it), from /proc.
fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|n| n.parse().ok()))
        })
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gibibyte_streams_through_with_bounded_memory() {
    const SIZE: u64 = 1 << 30;
    let mut b = TestBastion::start().await;
    let c = Client::admin(b.addr).await;
    // Warm up allocators and buffers before the baseline.
    let _ = c.exec("demo bytes 10000000").await;
    let before = rss_kib();
    let mut ch = c.handle.channel_open_session().await.unwrap();
    ch.exec(true, format!("demo bytes {SIZE}").into_bytes())
        .await
        .unwrap();
    let mut received: u64 = 0;
    let mut peak = before;
    let mut status = None;
    let mut n = 0u64;
    while let Some(msg) = ch.wait().await {
        match msg {
            russh::ChannelMsg::Data { data } => {
                received += data.len() as u64;
                n += 1;
                if n.is_multiple_of(256) {
                    peak = peak.max(rss_kib());
                }
            }
            russh::ChannelMsg::ExitStatus { exit_status } => status = Some(exit_status),
            russh::ChannelMsg::Close => break,
            _ => {}
        }
    }
    assert_eq!(received, SIZE);
    assert_eq!(status, Some(0));
    let growth_mib = peak.saturating_sub(before) / 1024;
    eprintln!("resident memory grew by {growth_mib} MiB while streaming 1 GiB");
    assert!(
        growth_mib < 64,
        "memory grew by {growth_mib} MiB while streaming 1 GiB"
    );
    c.close().await;
    b.shutdown().await;
    let rows = b
        .services
        .ops
        .session_list(&Caller::local(), &Query::default(), false)
        .await
        .unwrap();
    let row = rows
        .iter()
        .find(|r| r.bytes_out as u64 == SIZE)
        .expect("the session row counts every byte");
    assert!(row.recording_sha256.is_some());
}
