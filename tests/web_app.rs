//! The server-side form login against a real web app (the admin panel of
//! `support::webapp`) through a real HTTP client, and the app itself
//! answering as the web tests expect it to.

mod support;

use std::sync::Mutex;

use axum::http::{Request, Response, StatusCode, header};
use bytes::Bytes;
use futures_util::future::BoxFuture;
use rampart::http::web::contract::{Fetch, FetchError};
use rampart::http::web::login::{LoginError, form_login, headers};
use rampart::model::{FormLogin, WebLogin};
use rampart::vault::Secret;
use support::webapp::{LoginCheck, WebApp};

const PASSWORD: &str = "pw Δ&1=2";

/// A `Fetch` over reqwest to one site, with a cookie jar of its own (the
/// name and value of each `Set-Cookie`), redirects not followed.
struct Client {
    http: reqwest::Client,
    base: String,
    jar: Mutex<Vec<(String, String)>>,
}

impl Client {
    fn new(app: &WebApp) -> Client {
        // reqwest's rustls wants a provider even for plain http.
        let _ =
            std::sync::Arc::unwrap_or_clone(rampart::upstream::tls::provider()).install_default();
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .build()
            .expect("a reqwest client");
        Client {
            http,
            base: app.url(),
            jar: Mutex::new(Vec::new()),
        }
    }

    async fn get(&self, path: &str) -> Response<Bytes> {
        let req = Request::get(path).body(Bytes::new()).unwrap();
        self.fetch(req, 1 << 20).await.expect("the app answers")
    }

    fn cookies(&self) -> Vec<(String, String)> {
        self.jar.lock().unwrap().clone()
    }
}

impl Fetch for Client {
    fn fetch(
        &self,
        req: Request<Bytes>,
        limit: usize,
    ) -> BoxFuture<'_, Result<Response<Bytes>, FetchError>> {
        Box::pin(async move {
            let (parts, body) = req.into_parts();
            let mut send = self
                .http
                .request(parts.method, format!("{}{}", self.base, parts.uri))
                .headers(parts.headers)
                .body(body);
            let cookie: Vec<String> = self
                .cookies()
                .iter()
                .map(|(n, v)| format!("{n}={v}"))
                .collect();
            if !cookie.is_empty() {
                send = send.header(header::COOKIE, cookie.join("; "));
            }
            let answer = send
                .send()
                .await
                .map_err(|e| FetchError::Unreachable(e.to_string()))?;
            for set in answer.headers().get_all(header::SET_COOKIE) {
                let text = set.to_str().unwrap_or_default();
                let pair = text.split(';').next().unwrap_or_default();
                if let Some((name, value)) = pair.split_once('=') {
                    let mut jar = self.jar.lock().unwrap();
                    jar.retain(|(n, _)| n != name.trim());
                    jar.push((name.trim().to_string(), value.trim().to_string()));
                }
            }
            let mut out = Response::builder().status(answer.status());
            for (name, value) in answer.headers() {
                out = out.header(name, value);
            }
            let body = answer
                .bytes()
                .await
                .map_err(|e| FetchError::Broken(e.to_string()))?;
            if body.len() > limit {
                return Err(FetchError::TooLarge(limit));
            }
            Ok(out.body(body).unwrap())
        })
    }
}

fn form(spec: &str) -> FormLogin {
    match spec.parse::<WebLogin>() {
        Ok(WebLogin::Form(form)) => form,
        other => panic!("{spec}: {other:?}"),
    }
}

fn text(answer: &Response<Bytes>) -> String {
    String::from_utf8_lossy(answer.body()).into_owned()
}

#[tokio::test]
async fn the_form_login_signs_in_to_the_admin_panel() {
    let app = WebApp::start("alice", PASSWORD, "key-1").await;
    for spec in [
        "form:/login;success=Welcome alice",
        "form:/login;form=form#login;user=username;password=password",
    ] {
        let client = Client::new(&app);
        let secret = Secret::from(PASSWORD.to_string());
        form_login(&client, &form(spec), "alice", &secret)
            .await
            .unwrap_or_else(|e| panic!("{spec}: {e}"));
        // The session the app set is in the client's jar, and opens the
        // panel.
        let cookies = client.cookies();
        assert_eq!(cookies.len(), 1, "{cookies:?}");
        assert_eq!(cookies[0].0, "app_session");
        let home = client.get("/").await;
        assert_eq!(home.status(), StatusCode::OK);
        assert!(text(&home).contains("<h1>Welcome alice</h1>"));
    }
    // The app checked the password, with a token it had issued, each time.
    let good = LoginCheck {
        username: "alice".into(),
        csrf_ok: true,
        ok: true,
    };
    assert_eq!(app.logins(), [good.clone(), good]);
    let seen = app.stop().await;
    let posts: Vec<_> = seen.iter().filter(|s| s.method == "POST").collect();
    assert_eq!(posts.len(), 2);
    for post in posts {
        assert_eq!(post.path, "/login");
        assert!(post.body.starts_with("csrf="), "{}", post.body);
        assert!(post.body.contains("&username=alice&password="));
        assert_eq!(post.header("origin"), None);
        assert_eq!(post.header("referer"), None);
    }
    // The search form was never submitted.
    assert!(!seen.iter().any(|s| s.path.starts_with("/search")));
}

#[tokio::test]
async fn a_wrong_password_is_refused_without_showing_it() {
    let app = WebApp::start("alice", PASSWORD, "key-1").await;
    let client = Client::new(&app);
    let wrong = "not-the-Pa55word";
    let err = form_login(
        &client,
        &form("form:/login"),
        "alice",
        &Secret::from(wrong.to_string()),
    )
    .await
    .unwrap_err();
    assert!(matches!(err, LoginError::Refused(_)), "{err:?}");
    let shown = format!("{err} {err:?}");
    assert!(!shown.contains(wrong), "{shown}");
    assert_eq!(
        app.logins(),
        [LoginCheck {
            username: "alice".into(),
            csrf_ok: true,
            ok: false,
        }]
    );
    assert!(client.cookies().is_empty());
    assert_eq!(client.get("/").await.status(), StatusCode::SEE_OTHER);
}

#[tokio::test]
async fn basic_and_key_headers_pass_the_api_check() {
    let app = WebApp::start("alice", PASSWORD, "key-1").await;
    let client = Client::new(&app);
    for (login, secret, want) in [
        (WebLogin::Basic, PASSWORD, StatusCode::OK),
        (WebLogin::Basic, "nope", StatusCode::UNAUTHORIZED),
        ("header:X-Api-Key".parse().unwrap(), "key-1", StatusCode::OK),
        (
            "header:X-Api-Key".parse().unwrap(),
            "key-2",
            StatusCode::UNAUTHORIZED,
        ),
        (WebLogin::None, "", StatusCode::UNAUTHORIZED),
    ] {
        let mut req = Request::get("/api/whoami").body(Bytes::new()).unwrap();
        for (name, value) in headers(&login, "alice", &Secret::from(secret.to_string())).unwrap() {
            req.headers_mut().insert(name, value);
        }
        let answer = client.fetch(req, 1024).await.unwrap();
        assert_eq!(answer.status(), want, "{login} {secret}");
        if want == StatusCode::OK {
            assert_eq!(text(&answer), "alice");
        }
    }
}

#[tokio::test]
async fn the_app_answers_as_an_admin_panel() {
    let app = WebApp::start("alice", PASSWORD, "key-1").await;
    let client = Client::new(&app);

    let login = text(&client.get("/login").await);
    let search = login.find("action=\"/search\"").unwrap();
    let form = login
        .find("<form id=\"login\" method=\"post\" action=\"/login\">")
        .unwrap();
    assert!(search < form);
    assert_eq!(client.get("/").await.headers()[header::LOCATION], "/login");

    let echo = text(&client.get("/headers").await);
    assert!(echo.contains(&format!("host: {}\n", app.addr)), "{echo}");

    let moved = client.get("/redirect-self").await;
    assert_eq!(moved.status(), StatusCode::FOUND);
    assert_eq!(
        moved.headers()[header::LOCATION],
        format!("http://{}/landing", app.addr).as_str()
    );
    assert_eq!(text(&client.get("/landing").await), "landed");

    let file = client.get("/download").await;
    assert_eq!(
        file.headers()[header::CONTENT_DISPOSITION],
        "attachment; filename=\"report.csv\""
    );
    assert!(text(&file).starts_with("id,name\n"));

    let big = client.get("/big?bytes=200001").await;
    assert_eq!(big.body().len(), 200_001);

    let payload = "x".repeat(3000);
    let body = format!(
        "--B\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.txt\"\r\n\r\n{payload}\r\n--B--\r\n"
    );
    let upload = Request::post("/upload")
        .header(header::CONTENT_TYPE, "multipart/form-data; boundary=B")
        .body(Bytes::from(body))
        .unwrap();
    let answer = client.fetch(upload, 1024).await.unwrap();
    assert_eq!(
        (answer.status(), text(&answer)),
        (StatusCode::OK, "3000".into())
    );

    let seen = app.stop().await;
    let paths: Vec<&str> = seen.iter().map(|s| s.path.as_str()).collect();
    assert_eq!(
        paths,
        [
            "/login",
            "/",
            "/headers",
            "/redirect-self",
            "/landing",
            "/download",
            "/big?bytes=200001",
            "/upload"
        ]
    );
}
