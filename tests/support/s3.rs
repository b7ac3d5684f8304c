//! A real S3 API server for the tests: moto's (`pip install "moto[server]"`)
//! on a loopback port, with a bucket `recs`.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const T: Duration = Duration::from_secs(20);

/// A moto S3 server on a loopback port, stopped when dropped.
pub struct S3 {
    child: Child,
    pub port: u16,
}

impl S3 {
    /// `None` (the test skips) when moto is not installed; a failure instead
    /// when RAMPART_REQUIRE_INTEROP=1.
    pub fn start(port: u16) -> Option<S3> {
        let present = Command::new("python3")
            .args(["-c", "import moto.server"])
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !present {
            assert!(
                std::env::var("RAMPART_REQUIRE_INTEROP").as_deref() != Ok("1"),
                "moto's S3 server is missing: pip install \"moto[server]\""
            );
            eprintln!("skipped: moto's S3 server is missing (pip install \"moto[server]\")");
            return None;
        }
        let child = Command::new("python3")
            .args([
                "-m",
                "moto.server",
                "-H",
                "127.0.0.1",
                "-p",
                &port.to_string(),
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start moto");
        let s3 = S3 { child, port };
        let started = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(started.elapsed() < T, "moto did not listen on {port}");
            std::thread::sleep(Duration::from_millis(100));
        }
        s3.http("PUT", "recs", None);
        Some(s3)
    }

    /// The `[recording]` config that keeps recordings in this server's
    /// bucket `recs`, under `bastion/`.
    pub fn config(&self) -> String {
        format!(
            "[recording]\nstore = \"s3://recs/bastion\"\ns3_endpoint = \"http://127.0.0.1:{}\"\n\
             s3_access_key_id = \"rampart-test\"\ns3_secret_access_key = \"not-a-real-secret\"\n",
            self.port
        )
    }

    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// One plain HTTP request (moto does not check signatures); the body,
    /// or `None` on 404.
    pub fn http(&self, method: &str, path: &str, body: Option<&[u8]>) -> Option<Vec<u8>> {
        let script = r#"
import sys, urllib.request, urllib.error
method, url = sys.argv[1], sys.argv[2]
data = sys.stdin.buffer.read() if method == "PUT" else None
try:
    headers = {"Content-Type": "application/octet-stream"}
    with urllib.request.urlopen(urllib.request.Request(url, data=data, method=method, headers=headers)) as r:
        sys.stdout.buffer.write(r.read())
except urllib.error.HTTPError as e:
    sys.exit(4 if e.code == 404 else 1)
"#;
        let mut child = Command::new("python3")
            .args(["-c", script, method])
            .arg(format!("http://127.0.0.1:{}/{path}", self.port))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        {
            use std::io::Write;
            let mut stdin = child.stdin.take().unwrap();
            stdin.write_all(body.unwrap_or_default()).unwrap();
        }
        let out = child.wait_with_output().unwrap();
        match out.status.code() {
            Some(0) => Some(out.stdout),
            Some(4) => None,
            other => panic!("{method} {path}: exit {other:?}"),
        }
    }

    /// The object of a recording file (under `recs/bastion/`), waited for.
    pub async fn object(&self, relative: &str) -> Vec<u8> {
        let started = Instant::now();
        loop {
            if let Some(bytes) = self.http("GET", &format!("recs/bastion/{relative}"), None) {
                return bytes;
            }
            assert!(started.elapsed() < T, "no object for {relative}");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

impl Drop for S3 {
    fn drop(&mut self) {
        self.stop();
    }
}
