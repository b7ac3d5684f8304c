use std::collections::HashMap;
use std::sync::Mutex;

use futures_util::future::BoxFuture;

use super::*;

const SECRET: &str = "s3cr&t p@ss";

fn secret() -> Secret<String> {
    Secret::from(SECRET.to_string())
}

/// A request the fake site got.
#[derive(Debug, Clone)]
struct Seen {
    method: String,
    target: String,
    headers: axum::http::HeaderMap,
    body: String,
}

/// A scripted answer: status, headers, body.
type Page = (u16, Vec<(&'static str, String)>, String);

/// A scripted site: `"METHOD /path?query"` (or `"METHOD /path"`) to
/// (status, headers, body); anything else is a 404. A body starting with
/// `FAIL ` makes the fetch fail, quoting the request target.
#[derive(Default)]
struct Fake {
    pages: HashMap<String, Page>,
    seen: Mutex<Vec<Seen>>,
}

impl Fake {
    fn page(
        mut self,
        key: &str,
        status: u16,
        headers: &[(&'static str, &str)],
        body: &str,
    ) -> Fake {
        let headers = headers.iter().map(|(k, v)| (*k, v.to_string())).collect();
        self.pages
            .insert(key.to_string(), (status, headers, body.to_string()));
        self
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    fn targets(&self) -> Vec<String> {
        self.seen()
            .iter()
            .map(|s| format!("{} {}", s.method, s.target))
            .collect()
    }
}

impl Fetch for Fake {
    fn fetch(
        &self,
        req: Request<Bytes>,
        limit: usize,
    ) -> BoxFuture<'_, Result<Response<Bytes>, FetchError>> {
        assert_eq!(limit, PAGE_LIMIT);
        let target = req.uri().to_string();
        let method = req.method().to_string();
        self.seen.lock().unwrap().push(Seen {
            method: method.clone(),
            target: target.clone(),
            headers: req.headers().clone(),
            body: String::from_utf8_lossy(req.body()).into_owned(),
        });
        let path = req.uri().path();
        let page = self
            .pages
            .get(&format!("{method} {target}"))
            .or_else(|| self.pages.get(&format!("{method} {path}")))
            .cloned();
        Box::pin(async move {
            let (status, headers, body) = page.unwrap_or((404, Vec::new(), "not found".into()));
            if body.starts_with("FAIL ") {
                return Err(FetchError::Unreachable(format!(
                    "{method} {target} timed out"
                )));
            }
            let mut answer = Response::builder().status(status);
            for (k, v) in headers {
                answer = answer.header(k, v);
            }
            Ok(answer.body(Bytes::from(body)).unwrap())
        })
    }
}

const LOGIN_PAGE: &str = r#"<html><body>
<form action="/search"><input name="q"></form>
<form id="login" method="post" action="/session?from=login">
<input type="hidden" name="csrf" value="tok&amp;123">
<input name="username"><input type="password" name="password">
<input type="submit" name="go" value="Sign in">
</form></body></html>"#;

const HOME: &str = "<html><h1>Welcome alice</h1><a href=/logout>Sign out</a></html>";

fn spec(text: &str) -> FormLogin {
    match text.parse::<WebLogin>() {
        Ok(WebLogin::Form(form)) => form,
        other => panic!("{text}: {other:?}"),
    }
}

fn posted(seen: &Seen) -> Vec<(String, String)> {
    form_urlencoded::parse(seen.body.as_bytes())
        .into_owned()
        .collect()
}

#[tokio::test]
async fn the_csrf_token_and_password_are_posted_and_redirects_stay_on_the_site() {
    let site = Fake::default()
        .page("GET /login", 200, &[], LOGIN_PAGE)
        .page(
            "POST /session?from=login",
            303,
            &[("location", "https://evil.example:8443/home?x=1#top")],
            "",
        )
        .page("GET /home?x=1", 200, &[], HOME);
    let login = spec("form:/login;success=Welcome alice");
    form_login(&site, &login, "alice", &secret()).await.unwrap();
    assert_eq!(
        site.targets(),
        ["GET /login", "POST /session?from=login", "GET /home?x=1"]
    );
    let seen = site.seen();
    let post = &seen[1];
    assert_eq!(
        posted(post),
        [
            ("csrf", "tok&123"),
            ("username", "alice"),
            ("password", SECRET),
            ("go", "Sign in"),
        ]
        .map(|(k, v)| (k.to_string(), v.to_string()))
    );
    assert_eq!(
        post.headers[header::CONTENT_TYPE],
        "application/x-www-form-urlencoded"
    );
    for s in &seen {
        for name in [
            header::ORIGIN,
            header::REFERER,
            header::HOST,
            header::COOKIE,
        ] {
            assert!(!s.headers.contains_key(&name), "{name} on {}", s.target);
        }
    }
    // The get after the 303 carries no body.
    assert_eq!(seen[2].body, "");
}

#[tokio::test]
async fn the_login_page_is_reached_through_redirects_and_its_own_url_is_posted_to() {
    let page =
        r#"<form method=POST><input type=email name=mail><input type=password name=pw></form>"#;
    let site = Fake::default()
        .page(
            "GET /login",
            302,
            &[("location", "//evil.example/auth/")],
            "",
        )
        .page("GET /auth/", 301, &[("location", "sign-in?next=%2F")], "")
        .page("GET /auth/sign-in?next=%2F", 200, &[], page)
        .page("POST /auth/sign-in", 307, &[("location", "../in/ok")], "")
        .page("POST /in/ok", 200, &[], "done");
    form_login(&site, &spec("form:/login"), "a@b.c", &secret())
        .await
        .unwrap();
    assert_eq!(
        site.targets(),
        [
            "GET /login",
            "GET /auth/",
            "GET /auth/sign-in?next=%2F",
            "POST /auth/sign-in?next=%2F",
            "POST /in/ok",
        ]
    );
    // 307 keeps the method and the body.
    let seen = site.seen();
    assert_eq!(posted(&seen[4]), posted(&seen[3]));
    assert!(posted(&seen[4]).contains(&("mail".into(), "a@b.c".into())));
}

#[tokio::test]
async fn a_wrong_password_shows_the_form_again_and_fails() {
    let site = Fake::default()
        .page("GET /login", 200, &[], LOGIN_PAGE)
        .page(
            "POST /session",
            200,
            &[],
            &LOGIN_PAGE.replace("<body>", "<body><p>wrong password</p>"),
        );
    let err = form_login(&site, &spec("form:/login"), "alice", &secret())
        .await
        .unwrap_err();
    assert!(matches!(err, LoginError::Refused(_)), "{err:?}");
    assert_eq!(
        err.to_string(),
        "the site refused the login: it showed the login form again (is the account's name or secret wrong?)"
    );
}

#[tokio::test]
async fn error_statuses_missing_text_and_loops_are_failures() {
    let site = Fake::default()
        .page("GET /login", 200, &[], LOGIN_PAGE)
        .page("POST /session", 401, &[], "no");
    let err = form_login(&site, &spec("form:/login"), "alice", &secret())
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "the site refused the login: it answered 401 Unauthorized"
    );

    let site = Fake::default()
        .page("GET /login", 200, &[], LOGIN_PAGE)
        .page("POST /session", 200, &[], HOME);
    let err = form_login(
        &site,
        &spec("form:/login;success=Dashboard"),
        "alice",
        &secret(),
    )
    .await
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "the page after the login does not say \"Dashboard\""
    );

    let site = Fake::default().page("GET /login", 302, &[("location", "/login")], "");
    let err = form_login(&site, &spec("form:/login"), "alice", &secret())
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "no login form: the site redirected more than 5 times in a row"
    );
    assert_eq!(site.seen().len(), 6);

    let site = Fake::default().page("GET /login", 200, &[], "<h1>Maintenance</h1>");
    let err = form_login(&site, &spec("form:/login"), "alice", &secret())
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "no login form: no form with a password input on /login"
    );

    let site = Fake::default();
    let err = form_login(&site, &spec("form:/login"), "alice", &secret())
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "no login form: /login answered 404 Not Found"
    );
}

#[tokio::test]
async fn the_secret_is_in_no_error_even_when_the_client_quotes_the_request() {
    // A GET form puts the password in the query; the client's error quotes
    // the request.
    let page = "<form action=/go><input name=u><input type=password name=p></form>";
    let site =
        Fake::default()
            .page("GET /login", 200, &[], page)
            .page("GET /go", 200, &[], "FAIL ");
    let err = form_login(&site, &spec("form:/login"), "alice", &secret())
        .await
        .unwrap_err();
    let seen = site.seen();
    assert!(
        seen[1].target.starts_with("/go?u=alice&p="),
        "{}",
        seen[1].target
    );
    let shown = format!("{err} {err:?}");
    let encoded: String = form_urlencoded::byte_serialize(SECRET.as_bytes()).collect();
    assert!(seen[1].target.contains(&encoded));
    assert!(
        !shown.contains(SECRET) && !shown.contains(&encoded),
        "{shown}"
    );
    assert!(
        shown.starts_with("cannot reach the site: GET /go?u=alice&p=*** timed out"),
        "{shown}"
    );
}

#[test]
fn basic_and_header_logins_are_sensitive_headers() {
    let s = Secret::from("s3cret".to_string());
    let got = headers(&WebLogin::Basic, "alice", &s).unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].0, header::AUTHORIZATION);
    assert_eq!(got[0].1, "Basic YWxpY2U6czNjcmV0");
    assert!(got[0].1.is_sensitive());
    assert!(!format!("{got:?}").contains("YWxpY2U6czNjcmV0"));

    let login: WebLogin = "header:Authorization=Bearer {secret} for {user}"
        .parse()
        .unwrap();
    let got = headers(&login, "alice", &s).unwrap();
    assert_eq!(got[0].1, "Bearer s3cret for alice");
    assert!(got[0].1.is_sensitive());
    let login: WebLogin = "header:X-Api-Key".parse().unwrap();
    let got = headers(&login, "alice", &s).unwrap();
    assert_eq!(
        (got[0].0.as_str(), got[0].1.to_str().unwrap()),
        ("x-api-key", "s3cret")
    );

    for login in [WebLogin::None, WebLogin::Form(spec("form:/login"))] {
        assert!(headers(&login, "alice", &s).unwrap().is_empty());
    }

    let err = headers(&WebLogin::Basic, "a:b", &s).unwrap_err();
    assert!(err.contains("colon"), "{err}");
    let bad = Secret::from("Q9z\r\nQ8z".to_string());
    let err = headers(&"header:X-Key".parse().unwrap(), "alice", &bad).unwrap_err();
    assert!(
        err.contains("cannot carry") && !err.contains("Q9z"),
        "{err}"
    );
}

#[test]
fn references_resolve_to_paths_on_the_site() {
    for (base, reference, want) in [
        ("/login", "", "/login"),
        ("/a/b?x=1", "", "/a/b?x=1"),
        ("/a/b?x=1", "?y=2", "/a/b?y=2"),
        ("/a/b", "c", "/a/c"),
        ("/a/b/", "c", "/a/b/c"),
        ("/a/b/c", "../d", "/a/d"),
        ("/a/b/c", "./", "/a/b/"),
        ("/a", "../../../x", "/x"),
        ("/a", "/x/./y/../z#frag", "/x/z"),
        ("/a", "https://evil.example/steal?p=1", "/steal?p=1"),
        ("/a", "http://evil.example:81", "/"),
        ("/a", "http://evil.example?q", "/?q"),
        ("/a", "//evil.example/x", "/x"),
        ("/a", "javascript:void(0)", "/a"),
        ("/a", " /sp ace\n/é?q=a b", "/sp%20ace/%C3%A9?q=a%20b"),
        ("/a", "/x%2Fy", "/x%2Fy"),
    ] {
        assert_eq!(resolve(base, reference), want, "{base} + {reference:?}");
    }
}

/// A log writer into a shared buffer.
#[derive(Clone, Default)]
struct LogBuffer(std::sync::Arc<Mutex<Vec<u8>>>);

impl std::io::Write for LogBuffer {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// What the web side logged in this test binary: a global subscriber for
/// `rampart::http::web` alone (a thread's own subscriber races other tests
/// over tracing's per-callsite cache).
fn web_logs() -> &'static LogBuffer {
    static LOGS: std::sync::OnceLock<LogBuffer> = std::sync::OnceLock::new();
    LOGS.get_or_init(|| {
        let logs = LogBuffer::default();
        let writer = logs.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_env_filter("rampart::http::web=trace")
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .finish();
        tracing::subscriber::set_global_default(subscriber).expect("the only global subscriber");
        logs
    })
}

#[tokio::test]
async fn the_log_of_a_get_form_login_has_no_secret() {
    let logs = web_logs();
    let page = "<form action=/go><input name=u><input type=password name=p></form>";
    let site =
        Fake::default()
            .page("GET /login", 200, &[], page)
            .page("GET /go", 200, &[], "welcome");
    form_login(&site, &spec("form:/login"), "alice", &secret())
        .await
        .unwrap();
    let encoded: String = form_urlencoded::byte_serialize(SECRET.as_bytes()).collect();
    assert!(site.seen()[1].target.contains(&encoded));
    let logged = String::from_utf8_lossy(&logs.0.lock().unwrap()).into_owned();
    assert!(logged.contains("web form login answered"), "{logged}");
    assert!(logged.contains("end=/go "), "{logged}");
    assert!(
        !logged.contains(SECRET) && !logged.contains(&encoded),
        "{logged}"
    );
}
