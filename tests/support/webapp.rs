//! A small web app standing for a typical admin panel behind a web asset,
//! on a loopback port: a login form with a CSRF token (after an unrelated
//! search form), a session cookie, a page that shows what cookies the
//! browser holds, an API with Basic or key auth, a header echo, a
//! download, an upload, a self-redirect and a big page. It keeps every
//! request it saw and every password check, so a test can say what
//! reached the site and what did not.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Body;
use axum::extract::{DefaultBodyLimit, FromRequest, Multipart, Request, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use bytes::Bytes;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// One request the app got.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: String,
    /// Path and query.
    pub path: String,
    /// In the order received (names lower case).
    pub headers: Vec<(String, String)>,
    /// The body as text (lossy), for what the app reads whole; empty for
    /// an upload.
    pub body: String,
}

impl Seen {
    /// The first value of a header.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// One check of a posted login.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoginCheck {
    pub username: String,
    /// The CSRF token was one the app issued and not used before.
    pub csrf_ok: bool,
    /// Name, password and token all matched: a session was opened.
    pub ok: bool,
}

/// The app's fixed credentials.
struct Creds {
    user: String,
    password: String,
    api_key: String,
}

#[derive(Default)]
struct Memory {
    seen: Vec<Seen>,
    logins: Vec<LoginCheck>,
    /// Tokens issued and not yet used.
    csrf: HashSet<String>,
    /// Session cookie value to user name.
    sessions: HashMap<String, String>,
}

struct App {
    addr: SocketAddr,
    creds: Creds,
    memory: Mutex<Memory>,
}

/// The running app; stopped by [`WebApp::stop`] or when dropped.
pub struct WebApp {
    pub addr: SocketAddr,
    app: Arc<App>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl WebApp {
    /// Starts the app on 127.0.0.1:0 with its one user's name and
    /// password, and the key `X-Api-Key` must carry.
    pub async fn start(user: &str, password: &str, api_key: &str) -> WebApp {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the web app");
        let addr = listener.local_addr().expect("the web app's address");
        let app = Arc::new(App {
            addr,
            creds: Creds {
                user: user.to_string(),
                password: password.to_string(),
                api_key: api_key.to_string(),
            },
            memory: Mutex::new(Memory::default()),
        });
        let router = Router::new()
            .fallback(handle)
            .layer(DefaultBodyLimit::max(UPLOAD_LIMIT))
            .with_state(app.clone());
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, router)
                .with_graceful_shutdown(async move {
                    let _ = stopped.await;
                })
                .await;
        });
        WebApp {
            addr,
            app,
            stop: Some(stop),
            task: Some(task),
        }
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Every request so far, in order.
    pub fn seen(&self) -> Vec<Seen> {
        self.app.memory.lock().expect("memory").seen.clone()
    }

    /// Every posted login so far, in order.
    pub fn logins(&self) -> Vec<LoginCheck> {
        self.app.memory.lock().expect("memory").logins.clone()
    }

    /// Whether `text` appears in any request's path, header or body.
    pub fn saw_text(&self, text: &str) -> bool {
        self.seen().iter().any(|s| {
            s.path.contains(text)
                || s.body.contains(text)
                || s.headers.iter().any(|(_, v)| v.contains(text))
        })
    }

    /// Stops serving, waits for open connections to finish, and returns
    /// what it saw.
    pub async fn stop(mut self) -> Vec<Seen> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
        self.seen()
    }
}

impl Drop for WebApp {
    fn drop(&mut self) {
        if let Some(task) = &self.task {
            task.abort();
        }
    }
}

/// The largest upload the app takes.
pub const UPLOAD_LIMIT: usize = 256 << 20;

fn random() -> String {
    format!("{:032x}", rand::random::<u128>())
}

fn html(status: StatusCode, body: String) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        body,
    )
        .into_response()
}

fn see_other(to: &str) -> Response {
    (StatusCode::SEE_OTHER, [(header::LOCATION, to.to_string())]).into_response()
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// Records the request, then answers it.
async fn handle(State(app): State<Arc<App>>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let path = parts
        .uri
        .path_and_query()
        .map_or("/".to_string(), |p| p.to_string());
    let headers: Vec<(String, String)> = parts
        .headers
        .iter()
        .map(|(n, v)| {
            (
                n.to_string(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect();
    let route = (parts.method.clone(), parts.uri.path().to_string());
    if route == (Method::POST, "/upload".to_string()) {
        record(&app, &parts.method, &path, headers, String::new());
        return upload(Request::from_parts(parts, body)).await;
    }
    let Ok(bytes) = axum::body::to_bytes(body, 16 << 20).await else {
        return StatusCode::PAYLOAD_TOO_LARGE.into_response();
    };
    let text = String::from_utf8_lossy(&bytes).into_owned();
    record(&app, &parts.method, &path, headers, text.clone());
    let query = parts.uri.query().unwrap_or_default();
    match (route.0, route.1.as_str()) {
        (Method::GET, "/login") => login_page(&app, ""),
        (Method::POST, "/login") => login(&app, &text),
        (Method::GET, "/") => home(&app, &parts.headers),
        (Method::GET, "/api/whoami") => whoami(&app, &parts.headers),
        (Method::GET, "/headers") => {
            let lines: Vec<String> = parts
                .headers
                .iter()
                .map(|(n, v)| format!("{n}: {}", String::from_utf8_lossy(v.as_bytes())))
                .collect();
            (StatusCode::OK, lines.join("\n") + "\n").into_response()
        }
        (Method::GET, "/download") => (
            StatusCode::OK,
            [
                (header::CONTENT_TYPE, "text/csv"),
                (
                    header::CONTENT_DISPOSITION,
                    "attachment; filename=\"report.csv\"",
                ),
            ],
            "id,name\n1,alpha\n2,beta\n",
        )
            .into_response(),
        (Method::GET, "/redirect-self") => (
            StatusCode::FOUND,
            [(header::LOCATION, format!("http://{}/landing", app.addr))],
        )
            .into_response(),
        (Method::GET, "/landing") => (StatusCode::OK, "landed").into_response(),
        (Method::GET, "/big") => big(query),
        _ => (StatusCode::NOT_FOUND, "not found").into_response(),
    }
}

fn record(app: &App, method: &Method, path: &str, headers: Vec<(String, String)>, body: String) {
    app.memory.lock().expect("memory").seen.push(Seen {
        method: method.to_string(),
        path: path.to_string(),
        headers,
        body,
    });
}

/// The search form, then the login form with a fresh CSRF token.
fn login_page(app: &App, message: &str) -> Response {
    let token = random();
    app.memory
        .lock()
        .expect("memory")
        .csrf
        .insert(token.clone());
    let message = if message.is_empty() {
        String::new()
    } else {
        format!("<p class=\"error\">{}</p>\n", escape(message))
    };
    html(
        StatusCode::OK,
        format!(
            r#"<!DOCTYPE html>
<html><head><title>Admin panel: sign in</title></head>
<body>
<header><form action="/search"><input name="q" placeholder="Search"></form></header>
<main>
{message}<form id="login" method="post" action="/login">
  <input type="hidden" name="csrf" value="{token}">
  <label>User <input type="text" name="username"></label>
  <label>Password <input type="password" name="password"></label>
  <button type="submit">Sign in</button>
</form>
</main>
</body></html>
"#
        ),
    )
}

fn login(app: &App, body: &str) -> Response {
    let form: HashMap<String, String> = form_urlencoded::parse(body.as_bytes())
        .into_owned()
        .collect();
    let field = |name: &str| form.get(name).cloned().unwrap_or_default();
    let username = field("username");
    let session = {
        let mut memory = app.memory.lock().expect("memory");
        let csrf_ok = memory.csrf.remove(&field("csrf"));
        let ok = csrf_ok && username == app.creds.user && field("password") == app.creds.password;
        memory.logins.push(LoginCheck {
            username: username.clone(),
            csrf_ok,
            ok,
        });
        ok.then(|| {
            let session = random();
            memory.sessions.insert(session.clone(), username.clone());
            session
        })
    };
    match session {
        Some(session) => {
            let mut answer = see_other("/");
            // Not HttpOnly on purpose: a cookie that reached the browser
            // shows in document.cookie.
            if let Ok(cookie) = format!("app_session={session}; Path=/").parse() {
                answer.headers_mut().insert(header::SET_COOKIE, cookie);
            }
            answer
        }
        None => login_page(app, "wrong password"),
    }
}

/// The user a request's `app_session` cookie belongs to.
fn session_user(app: &App, headers: &HeaderMap) -> Option<String> {
    let memory = app.memory.lock().expect("memory");
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().strip_prefix("app_session="))
        .find_map(|value| memory.sessions.get(value).cloned())
}

fn home(app: &App, headers: &HeaderMap) -> Response {
    let Some(user) = session_user(app, headers) else {
        return see_other("/login");
    };
    html(
        StatusCode::OK,
        format!(
            r#"<!DOCTYPE html>
<html><head><title>Admin panel</title></head>
<body>
<h1>Welcome {}</h1>
<pre id="cookies"></pre>
<script>document.getElementById("cookies").textContent = document.cookie;</script>
</body></html>
"#,
            escape(&user)
        ),
    )
}

fn whoami(app: &App, headers: &HeaderMap) -> Response {
    let basic = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "))
        .and_then(|b| {
            base64::engine::general_purpose::STANDARD
                .decode(b.trim())
                .ok()
        })
        .and_then(|b| String::from_utf8(b).ok())
        .and_then(|pair| {
            let (user, password) = pair.split_once(':')?;
            (user == app.creds.user && password == app.creds.password).then(|| user.to_string())
        });
    let key = headers
        .get("x-api-key")
        .filter(|k| k.as_bytes() == app.creds.api_key.as_bytes())
        .map(|_| app.creds.user.clone());
    match basic.or(key) {
        Some(user) => (StatusCode::OK, user).into_response(),
        None => (
            StatusCode::UNAUTHORIZED,
            [(header::WWW_AUTHENTICATE, "Basic realm=\"admin\"")],
            "who are you?",
        )
            .into_response(),
    }
}

/// The bytes of every part of a multipart upload, counted.
async fn upload(req: Request) -> Response {
    let mut multipart = match Multipart::from_request(req, &()).await {
        Ok(m) => m,
        Err(e) => return e.into_response(),
    };
    let mut total = 0usize;
    loop {
        match multipart.next_field().await {
            Ok(Some(field)) => match field.bytes().await {
                Ok(bytes) => total += bytes.len(),
                Err(e) => return e.into_response(),
            },
            Ok(None) => break,
            Err(e) => return e.into_response(),
        }
    }
    (StatusCode::OK, format!("{total}")).into_response()
}

/// `bytes=N` bytes of text, streamed in 64 KiB chunks.
fn big(query: &str) -> Response {
    let n: usize = form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k == "bytes")
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    const CHUNK: usize = 64 * 1024;
    let line = Bytes::from(
        "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ-_\n".repeat(CHUNK / 64),
    );
    let chunks = (0..n.div_ceil(CHUNK)).map(move |i| {
        let len = CHUNK.min(n - i * CHUNK);
        Ok::<_, std::io::Error>(line.slice(..len))
    });
    (
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, "text/plain".to_string()),
            (header::CONTENT_LENGTH, n.to_string()),
        ],
        Body::from_stream(futures_util::stream::iter(chunks)),
    )
        .into_response()
}
