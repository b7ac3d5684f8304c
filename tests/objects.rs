//! Recordings in S3-compatible object storage (issue 16), against a real S3
//! API server on loopback: moto's server (`pip install "moto[server]"`),
//! started and stopped by the test. The bastion runs in process with
//! `recording.store = "s3://recs/bastion"`.

mod support;

use std::time::Duration;

use rampart::ops::Caller;
use sha2::Digest;
use support::s3::S3;
use support::ssh::{Client, TestBastion};

async fn recorded(b: &TestBastion, c: &Client, text: &str) -> (String, String, String) {
    let (out, err, status) = c.exec(&format!("demo echo {text}")).await;
    assert_eq!(status, Some(0), "{err}");
    assert_eq!(String::from_utf8(out).unwrap(), format!("{text}\n"));
    let rows = b
        .services
        .ops
        .session_list(&Caller::local(), &Default::default(), false)
        .await
        .unwrap();
    let row = rows.into_iter().next().expect("a session row");
    (
        row.id,
        row.recording.expect("recorded"),
        row.recording_sha256.expect("digest"),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recordings_go_to_the_bucket_wait_while_it_is_down_and_are_verified_and_replayed_from_it() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let Some(mut s3) = S3::start(port) else {
        return;
    };
    let mut b = TestBastion::start_with(&s3.config()).await;
    let c = Client::admin(b.addr).await;

    // Uploaded once the session ends: the object is the recording, byte for
    // byte, and matches the digest in the audit chain.
    let (_, first, digest) = recorded(&b, &c, "to-the-bucket").await;
    let object = s3.object(&first).await;
    let local = std::fs::read(b.services.config.recording_dir().join(&first)).unwrap();
    assert_eq!(object, local);
    assert_eq!(hex::encode(sha2::Sha256::digest(&object)), digest);

    // The store goes down: the session goes on, its recording waits.
    s3.stop();
    let (down_id, down, _) = recorded(&b, &c, "while-the-bucket-is-down").await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let local_down = b.services.config.recording_dir().join(&down);
    assert!(local_down.exists());
    {
        let mut conn = b.services.store.conn().await.unwrap();
        assert!(
            !rampart::store::spool::is_uploaded(&mut conn, &down_id)
                .await
                .unwrap()
        );
    }

    // Back up (moto forgets everything: the bucket is made again): the
    // spool drains.
    let s3 = S3::start(port).expect("moto again");
    recorded(&b, &c, "after-the-bucket-is-back").await;
    let object = s3.object(&down).await;
    assert_eq!(object, std::fs::read(&local_down).unwrap());
    // The first object went with moto's memory; put it back as it was.
    s3.http("PUT", &format!("recs/bastion/{first}"), Some(&local));

    // Indexed for screen search from the local copies first.
    tokio::time::timeout(Duration::from_secs(30), b.services.index.caught_up())
        .await
        .expect("the indexer caught up");

    // Verified, replayed and searched from the bucket alone: the local
    // copies go.
    for relative in [&first, &down] {
        std::fs::remove_file(b.services.config.recording_dir().join(relative)).unwrap();
    }
    let report = b
        .services
        .ops
        .audit_verify(&Caller::local(), &b.services.recordings)
        .await
        .unwrap();
    assert_eq!(report.broken, None);
    assert!(report.recordings >= 3, "{report:?}");
    let path = b
        .services
        .ops
        .session_recording(
            &Caller::local(),
            &down_id,
            "session.replay",
            &b.services.recordings,
        )
        .await
        .unwrap();
    assert_eq!(std::fs::read(&path).unwrap(), object);
    std::fs::remove_file(&path).unwrap();
    let found = b
        .services
        .ops
        .audit_screen(
            &Caller::local(),
            &b.services.recordings,
            "while-the-bucket-is-down",
            10,
        )
        .await
        .unwrap();
    assert!(
        found
            .hits
            .iter()
            .any(|h| h.session == down_id && h.line.contains("while-the-bucket-is-down")),
        "{found:?}"
    );
    assert!(
        !b.services.config.recording_dir().join(&down).exists(),
        "searched without fetching the whole recording"
    );

    // An object changed in the bucket is named by verify.
    let mut edited = object.clone();
    let at = edited.len() - 3;
    edited[at] ^= 1;
    s3.http("PUT", &format!("recs/bastion/{down}"), Some(&edited));
    let report = b
        .services
        .ops
        .audit_verify(&Caller::local(), &b.services.recordings)
        .await
        .unwrap();
    let broken = report.broken.expect("the edited object is found");
    assert!(broken.contains(&down), "{broken}");
    assert!(broken.contains("does not match its digest"), "{broken}");
    b.shutdown().await;
}

/// A long session's recording goes to the bucket in parts while it runs:
/// a multipart upload holds its first parts before the session ends, and
/// the object, once it ends, is the recording byte for byte.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_running_sessions_recording_is_uploaded_in_parts_as_it_grows() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let Some(s3) = S3::start(port) else {
        return;
    };
    let mut b = TestBastion::start_with(&s3.config()).await;
    let c = Client::admin(b.addr).await;
    let mut term = c.shell(100, 30, Some("demo")).await;
    assert!(
        term.wait_for(Duration::from_secs(10), |t| t.contains("$"))
            .await
    );
    // Two runs of seq: a cast of about 8 MB, more than one 5 MiB part.
    for n in ["1000000", "999999"] {
        term.send(format!("seq {n}\r").as_bytes()).await;
        let done = format!("\n{n}\ndemo@demo:~$");
        assert!(
            term.wait_for(Duration::from_secs(60), |t| t.contains(&done))
                .await
        );
    }
    let row = b
        .services
        .ops
        .session_list(&Caller::local(), &Default::default(), true)
        .await
        .unwrap()
        .into_iter()
        .next()
        .expect("the live session");
    let relative = row.recording.expect("recorded");
    let local = b.services.config.recording_dir().join(&relative);

    // While the session runs: a multipart upload of its cast, with a part.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let upload_id = loop {
        b.services.spool.kick();
        let listing = s3.http("GET", "recs?uploads", None).unwrap_or_default();
        let listing = String::from_utf8_lossy(&listing).to_string();
        if listing.contains(&relative) {
            let id = listing
                .split("<UploadId>")
                .nth(1)
                .and_then(|rest| rest.split("</UploadId>").next())
                .expect("an upload id")
                .to_string();
            let parts = s3
                .http(
                    "GET",
                    &format!("recs/bastion/{relative}?uploadId={id}"),
                    None,
                )
                .unwrap_or_default();
            if String::from_utf8_lossy(&parts).contains("<PartNumber>1</PartNumber>") {
                break id;
            }
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no part of the running session's cast in the bucket: {listing}"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    };
    assert!(!upload_id.is_empty());
    assert!(std::fs::metadata(&local).unwrap().len() > rampart::record::objects::PART as u64);

    // Ended: the rest goes, and the object is the recording.
    term.send(b"exit\r").await;
    assert!(term.wait_close(Duration::from_secs(10)).await);
    c.close().await;
    let object = s3.object(&relative).await;
    assert_eq!(object, std::fs::read(&local).unwrap());
    let listing = s3.http("GET", "recs?uploads", None).unwrap_or_default();
    assert!(
        !String::from_utf8_lossy(&listing).contains(&relative),
        "the upload was completed"
    );
    b.shutdown().await;
}
