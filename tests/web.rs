//! Web assets (issue 18, part 2) as a person and their browser see them:
//! the link from `rampart web link` over SSH, opened in a real headless
//! Chromium that arrives logged in to the site (a form login with a CSRF
//! token, done by the bastion), and a small HTTPS client for what a
//! browser cannot be asked afterwards (the cookie after a kill, another
//! asset's origin).

mod support;

use std::time::Duration;

use support::db::{commands, nowhere_on_disk, run_ok};
use support::ssh::{Client, TestBastion};
use support::webapp::WebApp;

const PASSWORD: &str = "app-Secret-9f3c";
const CHROMIUM: &str = "/usr/lib/chromium/chromium";

fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

/// Chromium, or a skip (a failure under RAMPART_REQUIRE_INTEROP=1).
fn chromium() -> Option<&'static str> {
    if std::path::Path::new(CHROMIUM).exists() {
        return Some(CHROMIUM);
    }
    if std::env::var("RAMPART_REQUIRE_INTEROP").as_deref() == Ok("1") {
        panic!("chromium is required (RAMPART_REQUIRE_INTEROP=1) but not installed");
    }
    eprintln!("skipped: chromium is not installed");
    None
}

/// The DOM Chromium ends on after opening `url` (scripts run).
fn dump_dom(url: &str) -> String {
    let profile = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(CHROMIUM)
        .args([
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--host-resolver-rules=MAP * 127.0.0.1",
            "--ignore-certificate-errors",
            "--virtual-time-budget=5000",
            &format!("--user-data-dir={}", profile.path().display()),
            "--dump-dom",
            url,
        ])
        .output()
        .expect("chromium runs");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A bastion with the web side on, and web asset `name` for `app` with
/// account admin logged in by `login`, usable by the admin.
async fn bastion(app: &WebApp, names: &[&str], login: &str) -> (TestBastion, Client, u16) {
    bastion_with(&app.url(), names, login, "").await
}

/// The same for the site at `site` (`http://` or `https://`), with more
/// `[http]` settings.
async fn bastion_with(
    site: &str,
    names: &[&str],
    login: &str,
    http: &str,
) -> (TestBastion, Client, u16) {
    let parsed = rampart::model::Site::parse(site).unwrap();
    let scheme = if parsed.https { "https" } else { "http" };
    let port = free_port();
    let b = TestBastion::start_with(&format!(
        "[http]\nlisten = \"127.0.0.1:{port}\"\ndomain = \"web.test\"\n{http}"
    ))
    .await;
    let admin = Client::admin(b.addr).await;
    for name in names {
        run_ok(
            &admin,
            &format!(
                "rampart asset add {name} --address 127.0.0.1 --protocol {scheme}/{} --url {site}/",
                parsed.port
            ),
        )
        .await;
        let (_, err, status) = admin
            .exec_stdin(
                &format!("rampart account add {name} admin --password-stdin --web '{login}'"),
                format!("{PASSWORD}\n").as_bytes(),
            )
            .await;
        assert_eq!(status, Some(0), "{err}");
        run_ok(
            &admin,
            &format!("rampart perm add on-{name} --user admin --asset {name} --actions connect"),
        )
        .await;
    }
    b.reload().await;
    (b, admin, port)
}

/// The link in `rampart web link`'s text.
fn link_of(text: &str) -> String {
    text.split_whitespace()
        .find(|w| w.starts_with("https://"))
        .unwrap_or_else(|| panic!("no link in {text}"))
        .to_string()
}

/// An HTTPS connection to the bastion's web side for `host`, as a
/// browser opens it (any certificate accepted: the test's is generated).
async fn connect(
    port: u16,
    host: &str,
) -> hyper::client::conn::http1::SendRequest<axum::body::Body> {
    let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    let (connector, _) = rampart::upstream::tls::connector();
    let name = rustls::pki_types::ServerName::try_from(host.to_string()).unwrap();
    let tls = connector.connect(name, tcp).await.unwrap();
    let (sender, conn) = hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(tls))
        .await
        .unwrap();
    tokio::spawn(conn);
    sender
}

/// One HTTPS request to the bastion's web side as `host`, the way a
/// browser sends it (any certificate accepted: the test's is generated).
async fn get(
    port: u16,
    host: &str,
    path: &str,
    cookie: Option<&str>,
) -> (u16, Vec<(String, String)>, String) {
    let mut sender = connect(port, host).await;
    let mut req = axum::http::Request::get(path)
        .header("host", format!("{host}:{port}"))
        .header("sec-fetch-site", "none");
    if let Some(cookie) = cookie {
        req = req.header("cookie", cookie);
    }
    let res = sender
        .send_request(req.body(axum::body::Body::empty()).unwrap())
        .await
        .unwrap();
    let status = res.status().as_u16();
    let headers = res
        .headers()
        .iter()
        .map(|(n, v)| (n.to_string(), v.to_str().unwrap_or("").to_string()))
        .collect();
    let body = http_body_util::BodyExt::collect(res.into_body())
        .await
        .unwrap()
        .to_bytes();
    (status, headers, String::from_utf8_lossy(&body).into_owned())
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}

/// The link opens a visit: its cookie and where it sends the browser.
async fn open(port: u16, link: &str) -> String {
    let (host, path) = link
        .strip_prefix("https://")
        .and_then(|rest| rest.split_once('/'))
        .unwrap();
    let host = host.split(':').next().unwrap();
    let (status, headers, body) = get(port, host, &format!("/{path}"), None).await;
    assert_eq!(status, 303, "{body}");
    let set = header(&headers, "set-cookie").expect("a cookie");
    assert!(
        set.contains("Secure") && set.contains("HttpOnly") && set.contains("Path=/"),
        "{set}"
    );
    set.split(';').next().unwrap().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_browser_opens_the_link_arrives_logged_in_and_never_holds_the_secret() {
    let Some(_) = chromium() else { return };
    let app = WebApp::start("admin", PASSWORD, "key-1").await;
    let (mut b, admin, port) = bastion(&app, &["app1"], "form:/login;form=#login").await;

    let text = run_ok(&admin, "rampart web link app1").await;
    assert!(text.contains("app1 as admin: open within 60 s"), "{text}");
    assert!(
        text.contains('\u{2580}') || text.contains('\u{2584}'),
        "a QR code: {text}"
    );
    let link = link_of(&text);
    assert!(
        link.starts_with(&format!("https://app1.web.test:{port}/.rampart/link/")),
        "{link}"
    );

    let dom = dump_dom(&link);
    assert!(
        dom.contains("Welcome admin"),
        "the browser is logged in: {dom}"
    );
    // The page prints the cookies scripts can read: the site's session
    // cookie stays on the bastion (and the bastion's is HttpOnly).
    assert!(!dom.contains("app_session"), "{dom}");
    assert!(!dom.contains(PASSWORD));
    let logins = app.logins();
    assert_eq!(logins.len(), 1, "{logins:?}");
    assert!(logins[0].ok && logins[0].csrf_ok, "{logins:?}");

    // The link works once.
    let again = dump_dom(&link);
    assert!(again.contains("used, expired or not yours"), "{again}");
    assert!(!again.contains("Welcome"), "{again}");

    // What reached the site: never the bastion's cookie, never the
    // browser's own credentials; the password only in the bastion's one
    // login post.
    for seen in app.seen() {
        let cookie = seen.header("cookie").unwrap_or("");
        assert!(!cookie.contains("__Host-rampart"), "{seen:?}");
        if seen.path != "/login" || seen.method != "POST" {
            assert!(!seen.body.contains(PASSWORD), "{seen:?}");
        }
        for (_, value) in &seen.headers {
            assert!(!value.contains(PASSWORD), "{seen:?}");
        }
    }

    // The request log: the page the browser got, as a command row of a
    // web session.
    b.services.audit.flush().await;
    let rows = commands(&b).await;
    assert!(
        rows.iter()
            .any(|(c, o, a)| c == "GET /" && o.contains("-> 200") && a == "allow"),
        "{rows:?}"
    );
    let sessions: Vec<(String, String, String)> =
        sqlx::query_as("SELECT protocol, kind, asset_name FROM sessions")
            .fetch_all(b.services.store.pool())
            .await
            .unwrap();
    assert!(
        sessions
            .iter()
            .any(|(p, k, asset)| p == "http" && k == "web" && asset == "app1"),
        "{sessions:?}"
    );
    b.shutdown().await;
    nowhere_on_disk(&b, PASSWORD);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_visit_is_one_assets_and_a_kill_ends_it_within_two_seconds() {
    let app = WebApp::start("admin", PASSWORD, "key-1").await;
    let (mut b, admin, port) = bastion(&app, &["app1", "app2"], "basic").await;
    let host1 = "app1.web.test";

    // A forged or foreign link opens nothing, and reads like any other.
    let (status, _, body) = get(port, host1, "/.rampart/link/nope.nope", None).await;
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("used, expired or not yours"), "{body}");
    let link2 = link_of(&run_ok(&admin, "rampart web link app2 --no-qr").await);
    let token = link2.rsplit('/').next().unwrap();
    let (status, _, _) = get(port, host1, &format!("/.rampart/link/{token}"), None).await;
    assert_eq!(status, 403, "app2's link does not open app1");
    // The audit log has the refusal of a real link used wrongly, and
    // nothing of the stranger's guess.
    let refusals: Vec<(String, String, String)> =
        sqlx::query_as("SELECT user_name, request, reason FROM refusals")
            .fetch_all(b.services.store.pool())
            .await
            .unwrap();
    assert_eq!(
        refusals,
        vec![(
            "admin".to_string(),
            "web link for app1".to_string(),
            "the link is for app2 and not this asset".to_string()
        )]
    );

    let link = link_of(&run_ok(&admin, "rampart web link app1 --no-qr").await);
    let cookie = open(port, &link).await;
    let (status, _, body) = get(port, host1, "/api/whoami", Some(&cookie)).await;
    assert_eq!((status, body.trim()), (200, "admin"), "Basic is injected");
    // The cookie is app1's: app2's origin does not take it, and no other
    // host is served at all.
    let (status, _, _) = get(port, "app2.web.test", "/api/whoami", Some(&cookie)).await;
    assert_eq!(status, 401);
    let (status, _, _) = get(port, "evil.example", "/", Some(&cookie)).await;
    assert_eq!(status, 404);
    // The site's download needs the download action.
    let (status, _, body) = get(port, host1, "/download", Some(&cookie)).await;
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("downloads are not granted"), "{body}");

    // Staff monitor the visit: each request as a line.
    let mut watch = admin.shell(120, 30, None).await;
    watch
        .expect(Duration::from_secs(10), |s| s.contains("F4 Audit"))
        .await;
    watch
        .audit_tab(b"2", Duration::from_secs(10), |s| {
            s.contains("Live (1)") && s.contains("app1")
        })
        .await;
    watch.send(b"\r").await;
    watch
        .expect(Duration::from_secs(10), |s| {
            s.contains("monitoring, read-only")
        })
        .await;
    let (status, _, _) = get(port, host1, "/api/whoami?watched=1", Some(&cookie)).await;
    assert_eq!(status, 200);
    watch
        .expect(Duration::from_secs(10), |s| {
            s.contains("GET /api/whoami?watched=1 -> 200")
        })
        .await;

    let live = run_ok(&admin, "rampart session list --live --json").await;
    let id = live
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|s| s["asset"] == "app1")
        .and_then(|s| s["id"].as_str().map(str::to_string))
        .unwrap_or_else(|| panic!("the visit is live: {live}"));
    // A long download is running when the kill comes.
    let download = {
        let mut sender = connect(port, host1).await;
        let req = axum::http::Request::get("/big?bytes=20000000000")
            .header("host", format!("{host1}:{port}"))
            .header("cookie", &cookie)
            .body(axum::body::Body::empty())
            .unwrap();
        let res = sender.send_request(req).await.unwrap();
        assert_eq!(res.status(), 200);
        tokio::spawn(async move {
            let mut body = res.into_body();
            let mut got = 0u64;
            while let Some(frame) = http_body_util::BodyExt::frame(&mut body).await {
                match frame {
                    Ok(f) => got += f.data_ref().map_or(0, |d| d.len() as u64),
                    Err(_) => return (got, true),
                }
            }
            (got, false)
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    let killed = std::time::Instant::now();
    run_ok(
        &admin,
        &format!("rampart session kill {id} --reason 'audit'"),
    )
    .await;
    let (got, cut) = tokio::time::timeout(Duration::from_secs(10), download)
        .await
        .expect("the download ends after the kill")
        .unwrap();
    assert!(cut && got < 20_000_000_000, "{got} bytes, cut: {cut}");
    loop {
        let (status, _, _) = get(port, host1, "/api/whoami", Some(&cookie)).await;
        if status == 401 {
            break;
        }
        assert!(
            killed.elapsed() < Duration::from_millis(2500),
            "the cookie still works {:?} after the kill",
            killed.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // The audit view: the visit in the Sessions tab, and Enter lists its
    // requests (a terminal session would replay), the refused one marked.
    let mut desk = admin.shell(120, 30, None).await;
    desk.expect(Duration::from_secs(10), |s| s.contains("F4 Audit"))
        .await;
    desk.audit_tab(b"3", Duration::from_secs(10), |s| {
        s.contains("app1") && s.contains("killed")
    })
    .await;
    desk.send(b"\r").await;
    desk.expect(Duration::from_secs(10), |s| {
        s.contains("requests")
            && s.contains("GET /api/whoami -> 200")
            && s.contains("GET /download -> 403")
            && s.contains("REFUSED")
    })
    .await;

    b.shutdown().await;
    let reason: String = sqlx::query_scalar("SELECT reason FROM sessions WHERE id = $1")
        .bind(&id)
        .fetch_one(b.services.store.pool())
        .await
        .unwrap();
    assert_eq!(reason, "killed: audit");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ssh_to_a_web_asset_through_openssh_prints_a_link_that_opens_the_site() {
    // The site takes the account's secret as its API key.
    let app = WebApp::start("admin", "another-password", PASSWORD).await;
    let (mut b, admin, port) = bastion(&app, &["app1"], "header:X-Api-Key").await;
    if support::peers::peer("ssh").is_none() {
        return;
    }
    let (mut term, _keys) = support::db::openssh(&b, &admin, &["app1"]).await;
    term.expect(Duration::from_secs(20), |s| {
        s.contains("app1 as admin: open within 60 s")
    })
    .await;
    assert_eq!(
        term.wait_exit(Duration::from_secs(10)).await,
        Some(0),
        "{}",
        term.text()
    );
    let link = link_of(&term.text());
    let cookie = open(port, &link).await;
    // The header login: the site answers to the injected key, which the
    // browser never had.
    let (status, _, body) = get(port, "app1.web.test", "/api/whoami", Some(&cookie)).await;
    assert_eq!(status, 200, "{body}");
    assert!(
        app.seen()
            .iter()
            .any(|s| s.header("x-api-key") == Some(PASSWORD))
    );

    // From the menu: the asset picked, the link shown with a QR code
    // until a key, then the menu again.
    let (mut menu, _keys) = support::db::openssh(&b, &admin, &[]).await;
    menu.expect(Duration::from_secs(20), |s| s.contains("app1"))
        .await;
    menu.send(b"app1");
    menu.send(b"\r");
    menu.expect(Duration::from_secs(20), |s| {
        s.contains("app1 as admin: open within 60 s") && s.contains("Any key: back to the menu")
    })
    .await;
    assert!(
        menu.text().contains('\u{2580}') || menu.text().contains('\u{2584}'),
        "a QR code: {}",
        menu.text()
    );
    menu.send(b" ");
    menu.expect(Duration::from_secs(20), |s| {
        s.contains("app1: the one-time link was shown")
    })
    .await;
    menu.send(b"\x1b");
    menu.send(b"q");
    b.shutdown().await;
    app.stop().await;
}

/// A bastion with the web side and `rdp` (the RDP front's config, or
/// none), Windows asset win1 publishing Calculator.
async fn desktop_bastion(rdp: &str) -> (TestBastion, Client, u16) {
    let port = free_port();
    let b = TestBastion::start_with(&format!(
        "[http]\nlisten = \"127.0.0.1:{port}\"\ndomain = \"web.test\"\n{rdp}"
    ))
    .await;
    let admin = Client::admin(b.addr).await;
    run_ok(
        &admin,
        "rampart asset add win1 --address 127.0.0.1 --protocol rdp/3389 --platform windows",
    )
    .await;
    let (_, err, status) = admin
        .exec_stdin(
            "rampart account add win1 Administrator --password-stdin",
            format!("{PASSWORD}\n").as_bytes(),
        )
        .await;
    assert_eq!(status, Some(0), "{err}");
    run_ok(
        &admin,
        "rampart perm add on-win1 --user admin --asset win1 --actions connect",
    )
    .await;
    run_ok(&admin, "rampart asset app add win1 calc --name Calculator").await;
    b.reload().await;
    (b, admin, port)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_remote_app_file_opens_the_published_program_through_the_rdp_front() {
    let rdp_port = free_port();
    let (mut b, admin, port) =
        desktop_bastion(&format!("[rdp]\nlisten = [\"127.0.0.1:{rdp_port}\"]\n")).await;
    // Only RDP assets publish programs, with aliases Windows takes.
    run_ok(
        &admin,
        "rampart asset add lin1 --address 127.0.0.1 --protocol ssh/22",
    )
    .await;
    let (_, err, status) = admin.exec("rampart asset app add lin1 x --name X").await;
    assert_eq!(status, Some(1));
    assert!(err.contains("no rdp protocol"), "{err}");
    let (_, err, _) = admin
        .exec("rampart asset app add win1 'a b' --name X")
        .await;
    assert!(err.contains("RemoteApp alias"), "{err}");
    let listed = run_ok(&admin, "rampart asset app list win1").await;
    assert!(
        listed.contains("calc") && listed.contains("Calculator"),
        "{listed}"
    );

    let text = run_ok(&admin, "rampart rdp ticket win1").await;
    let link = text
        .split_whitespace()
        .find(|w| w.ends_with("/calc.rdp"))
        .unwrap_or_else(|| panic!("a RemoteApp link: {text}"))
        .to_string();
    assert!(
        link.starts_with(&format!("https://web.test:{port}/.rampart/rdp/")),
        "{link}"
    );
    let password = support::db::field(&text, "password");
    let path = &link[link.find("/.rampart/").unwrap()..];
    let (status, headers, body) = get(port, "web.test", path, None).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(header(&headers, "content-type"), Some("application/x-rdp"));
    for line in [
        format!("full address:s:127.0.0.1:{rdp_port}"),
        "username:s:admin#win1".to_string(),
        "remoteapplicationmode:i:1".to_string(),
        "remoteapplicationprogram:s:||calc".to_string(),
        "remoteapplicationname:s:Calculator".to_string(),
    ] {
        assert!(body.contains(&format!("{line}\r\n")), "{line} in {body}");
    }
    assert!(
        !body.contains(&password) && !body.contains(PASSWORD),
        "{body}"
    );

    // Another program, a made-up ticket, or an asset's origin: nothing.
    let other = path.replace("/calc.rdp", "/cmd.rdp");
    assert_eq!(get(port, "web.test", &other, None).await.0, 404);
    assert_eq!(
        get(port, "web.test", "/.rampart/rdp/nope/calc.rdp", None)
            .await
            .0,
        404
    );
    assert_eq!(get(port, "win1.web.test", path, None).await.0, 404);
    b.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_the_rdp_front_no_remote_app_file_is_offered() {
    let (mut b, admin, port) = desktop_bastion("").await;
    let text = run_ok(&admin, "rampart rdp ticket win1").await;
    assert!(
        text.contains("RemoteApps: none offered, the RDP front is off"),
        "{text}"
    );
    assert!(!text.contains(".rdp\n"), "{text}");
    let id = "x";
    assert_eq!(
        get(
            port,
            "web.test",
            &format!("/.rampart/rdp/{id}/calc.rdp"),
            None
        )
        .await
        .0,
        404
    );
    b.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_permission_or_an_idle_visit_ends_it() {
    let app = WebApp::start("admin", PASSWORD, "key-1").await;
    let (mut b, admin, port) = bastion_with(
        &app.url(),
        &["app1", "app2"],
        "basic",
        "idle_timeout = \"3s\"\n",
    )
    .await;

    // Revoked: the permission goes, the cookie stops within two seconds.
    let link = link_of(&run_ok(&admin, "rampart web link app1 --no-qr").await);
    let cookie = open(port, &link).await;
    assert_eq!(
        get(port, "app1.web.test", "/api/whoami", Some(&cookie))
            .await
            .0,
        200
    );
    run_ok(&admin, "rampart perm remove on-app1").await;
    let revoked = std::time::Instant::now();
    while get(port, "app1.web.test", "/api/whoami", Some(&cookie))
        .await
        .0
        != 401
    {
        assert!(
            revoked.elapsed() < Duration::from_millis(2500),
            "still open after revocation"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // A permission that comes to need an approval after the link was
    // issued: the link opens nothing (it carries no approval).
    let link = link_of(&run_ok(&admin, "rampart web link app2 --no-qr").await);
    run_ok(&admin, "rampart perm edit on-app2 --require-approval").await;
    b.reload().await;
    let path = &link[link.find("/.rampart/").unwrap()..];
    assert_eq!(get(port, "app2.web.test", path, None).await.0, 403);
    run_ok(&admin, "rampart perm edit on-app2 --no-approval").await;
    b.reload().await;
    let refusals: Vec<String> = sqlx::query_scalar("SELECT reason FROM refusals")
        .fetch_all(b.services.store.pool())
        .await
        .unwrap();
    assert!(
        refusals
            .iter()
            .any(|r| r.contains("needs an administrator's approval")),
        "{refusals:?}"
    );

    // Idle: requests keep it open, a quiet spell of idle_timeout ends it.
    let link = link_of(&run_ok(&admin, "rampart web link app2 --no-qr").await);
    let cookie = open(port, &link).await;
    for _ in 0..3 {
        tokio::time::sleep(Duration::from_millis(1500)).await;
        assert_eq!(
            get(port, "app2.web.test", "/api/whoami", Some(&cookie))
                .await
                .0,
            200
        );
    }
    tokio::time::sleep(Duration::from_millis(5000)).await;
    assert_eq!(
        get(port, "app2.web.test", "/api/whoami", Some(&cookie))
            .await
            .0,
        401
    );

    b.shutdown().await;
    let reasons: Vec<(String, String)> =
        sqlx::query_as("SELECT asset_name, reason FROM sessions ORDER BY started_at")
            .fetch_all(b.services.store.pool())
            .await
            .unwrap();
    assert_eq!(
        reasons,
        vec![
            ("app1".to_string(), "permission ended".to_string()),
            ("app2".to_string(), "idle timeout".to_string()),
        ]
    );
    app.stop().await;
}

/// A TLS front for the test app on `port` (0: any), with `cert`: what an
/// `https://` admin panel with a self-signed certificate looks like.
async fn tls_front(
    app: std::net::SocketAddr,
    cert: &support::TestCert,
    port: u16,
) -> (u16, tokio::task::JoinHandle<()>) {
    use rustls::pki_types::pem::PemObject;
    let chain =
        vec![rustls::pki_types::CertificateDer::from_pem_slice(cert.pem.as_bytes()).unwrap()];
    let key = rustls::pki_types::PrivateKeyDer::from_pem_slice(cert.key.as_bytes()).unwrap();
    let config = rustls::ServerConfig::builder_with_provider(rampart::upstream::tls::provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(std::sync::Arc::new(config));
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .unwrap();
    let port = listener.local_addr().unwrap().port();
    let task = tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let Ok(mut plain) = tokio::net::TcpStream::connect(app).await else {
                    return;
                };
                let _ = tokio::io::copy_bidirectional(&mut tls, &mut plain).await;
            });
        }
    });
    (port, task)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_https_sites_certificate_is_pinned_and_another_is_refused() {
    let app = WebApp::start("admin", PASSWORD, "key-1").await;
    let first = support::TestCert::generate();
    let (site_port, site) = tls_front(app.addr, &first, 0).await;
    let site_url = format!("https://127.0.0.1:{site_port}");
    let (mut b, admin, port) = bastion_with(&site_url, &["app1"], "basic", "").await;

    // First use: the site's certificate is pinned like a host key.
    let link = link_of(&run_ok(&admin, "rampart web link app1 --no-qr").await);
    let cookie = open(port, &link).await;
    let (status, _, body) = get(port, "app1.web.test", "/api/whoami", Some(&cookie)).await;
    assert_eq!((status, body.trim()), (200, "admin"));
    let mut pinned = String::new();
    for _ in 0..50 {
        pinned = run_ok(&admin, "rampart asset show app1 --json").await;
        if pinned.contains(&first.fingerprint) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        pinned.contains("https-tls") && pinned.contains(&first.fingerprint),
        "{pinned}"
    );

    // The site now shows another certificate: refused before the login
    // is sent, the person told both fingerprints and what to do.
    site.abort();
    let _ = site.await;
    let second = support::TestCert::generate();
    let (_, _site) = tls_front(app.addr, &second, site_port).await;
    let before = app.seen().len();
    let link = link_of(&run_ok(&admin, "rampart web link app1 --no-qr").await);
    let cookie = open(port, &link).await;
    let (status, _, body) = get(port, "app1.web.test", "/api/whoami", Some(&cookie)).await;
    assert_eq!(status, 502, "{body}");
    assert!(
        body.contains(&first.fingerprint)
            && body.contains(&second.fingerprint)
            && body.contains("rampart asset trust"),
        "{body}"
    );
    assert_eq!(app.seen().len(), before, "nothing reached the site");
    b.shutdown().await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_auditor_gets_a_recording_once_through_a_link() {
    let port = free_port();
    let mut b = TestBastion::start_with(&format!(
        "[http]\nlisten = \"127.0.0.1:{port}\"\ndomain = \"web.test\"\n"
    ))
    .await;
    let admin = Client::admin(b.addr).await;
    let (out, _, status) = admin.exec("demo echo recorded-words").await;
    assert_eq!(status, Some(0), "{}", String::from_utf8_lossy(&out));
    let listed = run_ok(&admin, "rampart session list --json").await;
    let id = listed
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|s| s["asset"] == "demo")
        .and_then(|s| s["id"].as_str().map(str::to_string))
        .unwrap_or_else(|| panic!("a demo session: {listed}"));

    // Only staff may ask for one.
    let person = rampart::ops::Caller {
        name: "admin".into(),
        role: rampart::model::Role::User,
        via: rampart::audit::Via::Ssh,
    };
    let refused = b.services.ops.recording_link(&person, &id).await;
    assert!(
        refused.is_err_and(|e| e.to_string().contains("permission denied")),
        "a user got a link"
    );

    let text = run_ok(&admin, &format!("rampart session link {id}")).await;
    let link = link_of(&text);
    assert!(
        link.starts_with(&format!("https://web.test:{port}/.rampart/recording/"))
            && link.ends_with(&format!("/{id}.cast")),
        "{link}"
    );
    let path = &link[link.find("/.rampart/").unwrap()..];
    let (status, headers, body) = get(port, "web.test", path, None).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        header(&headers, "content-type"),
        Some("application/x-asciicast")
    );
    assert_eq!(header(&headers, "access-control-allow-origin"), Some("*"));
    assert!(
        body.starts_with("{\"version\": 2") || body.starts_with("{\"version\":2"),
        "{body}"
    );
    assert!(body.contains("recorded-words"), "{body}");
    // Once.
    assert_eq!(get(port, "web.test", path, None).await.0, 404);
    let operations = run_ok(&admin, "rampart audit operations --json").await;
    assert!(
        operations.contains("session.link") && operations.contains("session.download"),
        "{operations}"
    );

    // From the audit view: `l` on a session prints its link.
    let mut desk = admin.shell(120, 30, None).await;
    desk.expect(Duration::from_secs(10), |s| s.contains("F4 Audit"))
        .await;
    desk.audit_tab(b"3", Duration::from_secs(10), |s| s.contains("demo"))
        .await;
    desk.send(b"l").await;
    desk.expect(Duration::from_secs(10), |s| {
        s.contains("open within 60 s, once") && s.contains(&format!("https://web.test:{port}/"))
    })
    .await;
    b.shutdown().await;
}
