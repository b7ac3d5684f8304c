//! The proxy against a small site on 127.0.0.1: what the site receives,
//! what the browser receives, and the log lines.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::Request as Incoming;
use axum::http::{HeaderMap, HeaderName, HeaderValue, Request, Response, StatusCode, header};
use axum::response::IntoResponse;
use bytes::Bytes;
use http_body_util::BodyExt;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use super::*;
use crate::clock::SystemClock;
use crate::db::contract::Tls;
use crate::http::web::contract::{Fetch, FetchError, RequestLog};

const PUBLIC: &str = "https://app1.web.example.com";

/// The site: every path answers with what it received, but for a few
/// that set cookies, redirect, send a file or open a WebSocket.
async fn site() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let app = Router::new().fallback(move |req: Incoming| site_answer(req, port));
    tokio::spawn(async move { axum::serve(listener, app).await });
    port
}

async fn site_answer(mut req: Incoming, port: u16) -> Response<Body> {
    let path = req.uri().path().to_string();
    match path.as_str() {
        "/login" => (
            axum::response::AppendHeaders([
                (header::SET_COOKIE, "sid=s1; Path=/; HttpOnly"),
                (header::SET_COOKIE, "theme=dark"),
            ]),
            "logged in",
        )
            .into_response(),
        "/redirect/site" => redirect(&format!("http://127.0.0.1:{port}/home?x=1")),
        "/stream" => {
            // An answer that never ends, a chunk every few milliseconds.
            let chunks = futures_util::stream::unfold(0u32, |n| async move {
                tokio::time::sleep(Duration::from_millis(5)).await;
                Some((
                    Ok::<_, std::convert::Infallible>(Bytes::from("chunk\n")),
                    n + 1,
                ))
            });
            Body::from_stream(chunks).into_response()
        }
        "/redirect/relative" => redirect("/home"),
        "/redirect/other" => redirect("https://elsewhere.example/home"),
        "/file" => (
            [
                (header::CONTENT_DISPOSITION, "attachment; filename=a.txt"),
                (header::CONNECTION, "close, x-hop"),
                (HeaderName::from_static("x-hop"), "1"),
            ],
            "the file's bytes",
        )
            .into_response(),
        "/ws" => {
            let upgrade = hyper::upgrade::on(&mut req);
            tokio::spawn(async move {
                let Ok(upgraded) = upgrade.await else { return };
                let mut io = TokioIo::new(upgraded);
                let mut buf = [0u8; 1024];
                while let Ok(n) = io.read(&mut buf).await {
                    if n == 0 || io.write_all(buf.get(..n).unwrap()).await.is_err() {
                        break;
                    }
                }
            });
            Response::builder()
                .status(StatusCode::SWITCHING_PROTOCOLS)
                .header(header::UPGRADE, "websocket")
                .header(header::CONNECTION, "upgrade")
                .header("sec-websocket-accept", "accepted-key")
                .body(Body::empty())
                .unwrap()
        }
        _ => {
            let mut text = format!("{} {}\n", req.method(), req.uri());
            for (name, value) in req.headers() {
                text.push_str(&format!("{name}: {}\n", value.to_str().unwrap_or("?")));
            }
            let body = req.into_body().collect().await.unwrap().to_bytes();
            text.push_str(&format!("body: {} bytes\n", body.len()));
            text.into_response()
        }
    }
}

fn redirect(to: &str) -> Response<Body> {
    (StatusCode::FOUND, [(header::LOCATION, to.to_string())]).into_response()
}

/// The bastion's side: a listener that forwards everything to `port`.
struct Front {
    addr: std::net::SocketAddr,
    logs: Arc<Mutex<Vec<RequestLog>>>,
    /// The visit's end.
    ended: tokio_util::sync::CancellationToken,
}

async fn front(port: u16, allow_upload: bool, allow_download: bool) -> Front {
    let site =
        crate::http::web::contract::Site::parse(&format!("http://127.0.0.1:{port}/")).unwrap();
    let tls = Tls {
        pinned: None,
        first_use: None,
    };
    let client = Arc::new(Client::new(site, tls, Arc::new(SystemClock)));
    let logs = Arc::new(Mutex::new(Vec::new()));
    let kept = logs.clone();
    let ended = tokio_util::sync::CancellationToken::new();
    let visit_end = ended.clone();
    let inject = Arc::new(vec![
        (
            header::AUTHORIZATION,
            HeaderValue::from_static("Basic aW5qZWN0ZWQ="),
        ),
        (
            HeaderName::from_static("x-login"),
            HeaderValue::from_static("injected"),
        ),
    ]);
    let app = Router::new().fallback(move |req: Incoming| {
        let (client, logs, inject) = (client.clone(), kept.clone(), inject.clone());
        let ended = visit_end.clone();
        async move {
            let ex = Exchange {
                public_origin: PUBLIC,
                inject: &inject,
                bastion_cookie: "rampart_web",
                allow_upload,
                allow_download,
                ended: &ended,
            };
            let log: LogSink = Box::new(move |line| logs.lock().unwrap().push(line));
            forward(&client, req, &ex, log).await
        }
    });
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    Front { addr, logs, ended }
}

impl Front {
    /// Sends a request as a browser would and reads the whole answer.
    async fn send(&self, req: Request<Body>) -> (StatusCode, HeaderMap, String) {
        let browser =
            hyper_util::client::legacy::Client::builder(TokioExecutor::new()).build_http::<Body>();
        let (mut parts, body) = req.into_parts();
        parts.uri = format!("http://{}{}", self.addr, parts.uri)
            .parse()
            .unwrap();
        let answer = browser
            .request(Request::from_parts(parts, body))
            .await
            .unwrap();
        let (parts, body) = answer.into_parts();
        let body = body.collect().await.unwrap().to_bytes();
        (
            parts.status,
            parts.headers,
            String::from_utf8_lossy(&body).into_owned(),
        )
    }

    async fn get(&self, path: &str) -> (StatusCode, HeaderMap, String) {
        self.send(Request::get(path).body(Body::empty()).unwrap())
            .await
    }

    /// The log lines, once `n` are in.
    async fn logs(&self, n: usize) -> Vec<RequestLog> {
        for _ in 0..200 {
            if self.logs.lock().unwrap().len() >= n {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        self.logs.lock().unwrap().clone()
    }
}

#[tokio::test]
async fn the_sites_cookies_stay_on_the_bastion_and_go_back_to_the_site() {
    let front = front(site().await, false, false).await;
    let (status, headers, body) = front.get("/login").await;
    assert_eq!((status, body.as_str()), (StatusCode::OK, "logged in"));
    assert!(headers.get(header::SET_COOKIE).is_none(), "{headers:?}");
    let (_, _, seen) = front.get("/account/page").await;
    assert!(seen.contains("cookie: sid=s1; theme=dark\n"), "{seen}");
}

#[tokio::test]
async fn the_browsers_credentials_and_forwarding_headers_stay_behind() {
    let front = front(site().await, false, false).await;
    let req = Request::get("/echo?q=1")
        .header(header::AUTHORIZATION, "Bearer browser")
        .header(header::COOKIE, "rampart_web=visit-secret; other=1")
        .header("x-forwarded-for", "6.6.6.6")
        .header("forwarded", "for=6.6.6.6")
        .header("proxy-authorization", "Basic eA==")
        .header(header::CONNECTION, "x-private")
        .header("x-private", "1")
        .header("x-kept", "yes")
        .body(Body::empty())
        .unwrap();
    let (status, _, seen) = front.send(req).await;
    assert_eq!(status, StatusCode::OK);
    assert!(seen.starts_with("GET /echo?q=1\n"), "{seen}");
    assert!(
        seen.contains("authorization: Basic aW5qZWN0ZWQ=\n"),
        "{seen}"
    );
    assert!(
        seen.contains("x-login: injected\n") && seen.contains("x-kept: yes\n"),
        "{seen}"
    );
    for gone in [
        "browser",
        "visit-secret",
        "rampart_web",
        "6.6.6.6",
        "proxy-authorization",
        "x-private",
        "cookie:",
    ] {
        assert!(!seen.contains(gone), "{gone} reached the site:\n{seen}");
    }
    let port = front_site_port(&seen);
    assert!(
        seen.contains(&format!("host: 127.0.0.1:{port}\n")),
        "{seen}"
    );
    let line = &front.logs(1).await[0];
    assert_eq!(
        (line.method.as_str(), line.path.as_str(), line.status),
        ("GET", "/echo?q=1", 200)
    );
    assert_eq!(
        (line.bytes_in, line.body.as_str(), line.refused.as_ref()),
        (0, "", None)
    );
    assert_eq!(line.bytes_out, seen.len() as u64);
}

/// The port in the `host:` line the site saw.
fn front_site_port(seen: &str) -> u16 {
    seen.lines()
        .find_map(|l| l.strip_prefix("host: 127.0.0.1:"))
        .and_then(|p| p.parse().ok())
        .unwrap_or(0)
}

#[tokio::test]
async fn origin_and_referer_become_the_sites_or_go() {
    let port = site().await;
    let front = front(port, false, false).await;
    let req = Request::post("/echo")
        .header(header::ORIGIN, PUBLIC)
        .header(header::REFERER, format!("{PUBLIC}/form?a=1"))
        .header("sec-fetch-site", "same-origin")
        .body(Body::from("x"))
        .unwrap();
    let (status, _, seen) = front.send(req).await;
    assert_eq!(status, StatusCode::OK, "{seen}");
    assert!(
        seen.contains(&format!("origin: http://127.0.0.1:{port}\n")),
        "{seen}"
    );
    assert!(
        seen.contains(&format!("referer: http://127.0.0.1:{port}/form?a=1\n")),
        "{seen}"
    );
    let req = Request::get("/echo")
        .header(header::REFERER, "https://search.example/?q=app1")
        .body(Body::empty())
        .unwrap();
    let (_, _, seen) = front.send(req).await;
    assert!(
        !seen.contains("referer") && !seen.contains("search.example"),
        "{seen}"
    );
}

#[tokio::test]
async fn a_state_changing_request_from_another_site_is_refused() {
    let front = front(site().await, true, true).await;
    for (name, value) in [
        ("origin", "https://evil.example"),
        ("sec-fetch-site", "cross-site"),
    ] {
        let req = Request::post("/transfer")
            .header(name, value)
            .body(Body::from("amount=100"))
            .unwrap();
        let (status, _, body) = front.send(req).await;
        assert_eq!(status, StatusCode::FORBIDDEN);
        assert!(
            body.starts_with("rampart: a POST") && body.ends_with("cross-site requests\n"),
            "{body}"
        );
        assert_eq!(body.lines().count(), 1);
    }
    // A cross-site GET is only a link being followed.
    let req = Request::get("/echo")
        .header("sec-fetch-site", "cross-site")
        .body(Body::empty())
        .unwrap();
    assert_eq!(front.send(req).await.0, StatusCode::OK);
    let logs = front.logs(3).await;
    assert_eq!(logs.len(), 3);
    assert!(logs[0].refused.as_ref().unwrap().contains("cross-site"));
    assert_eq!((logs[0].status, logs[0].bytes_in), (403, 0));
    assert_eq!(logs[2].refused, None);
}

#[tokio::test]
async fn a_location_on_the_site_becomes_the_bastions() {
    let front = front(site().await, false, false).await;
    let location = |headers: &HeaderMap| headers[header::LOCATION].to_str().unwrap().to_string();
    let (status, headers, _) = front.get("/redirect/site").await;
    assert_eq!(status, StatusCode::FOUND);
    assert_eq!(location(&headers), format!("{PUBLIC}/home?x=1"));
    assert_eq!(location(&front.get("/redirect/relative").await.1), "/home");
    assert_eq!(
        location(&front.get("/redirect/other").await.1),
        "https://elsewhere.example/home"
    );
}

#[tokio::test]
async fn uploads_and_downloads_follow_the_grant() {
    let port = site().await;
    let upload = || {
        Request::post("/upload")
            .header(header::CONTENT_TYPE, "multipart/form-data; boundary=x")
            .body(Body::from("--x\r\n\r\nfile\r\n--x--\r\n"))
            .unwrap()
    };
    let cut = front(port, false, false).await;
    let (status, _, body) = cut.send(upload()).await;
    assert_eq!(
        (status, body.as_str()),
        (
            StatusCode::FORBIDDEN,
            "rampart: uploads are not granted to you on this asset\n"
        )
    );
    let (status, headers, body) = cut.get("/file").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(
        body,
        "rampart: downloads are not granted to you on this asset\n"
    );
    assert!(headers.get(header::CONTENT_DISPOSITION).is_none());
    let logs = cut.logs(2).await;
    assert_eq!(logs[0].refused.as_deref(), Some(NO_UPLOAD));
    assert_eq!(logs[1].refused.as_deref(), Some(NO_DOWNLOAD));
    assert_eq!((logs[1].status, logs[1].path.as_str()), (403, "/file"));

    let granted = front(port, true, true).await;
    let (status, _, body) = granted.send(upload()).await;
    assert_eq!(status, StatusCode::OK);
    assert!(body.contains("body: 20 bytes"), "{body}");
    let (status, headers, body) = granted.get("/file").await;
    assert_eq!(
        (status, body.as_str()),
        (StatusCode::OK, "the file's bytes")
    );
    assert!(headers.get(header::CONTENT_DISPOSITION).is_some());
    // Hop-by-hop headers of the site's answer stay behind.
    assert!(headers.get("x-hop").is_none(), "{headers:?}");
    let logs = granted.logs(2).await;
    assert_eq!(
        (logs[0].bytes_in, logs[0].body.as_str()),
        (20, "(20 bytes)")
    );
}

#[tokio::test]
async fn a_form_is_logged_with_its_password_redacted() {
    let front = front(site().await, false, false).await;
    let form = "user=ann&password=hunter2&next=%2F";
    let req = Request::post("/session")
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(Body::from(form))
        .unwrap();
    let (status, _, seen) = front.send(req).await;
    assert_eq!(status, StatusCode::OK);
    assert!(seen.contains("body: 34 bytes"), "{seen}");
    let line = &front.logs(1).await[0];
    assert_eq!(line.body, "user=ann&password=***&next=%2F");
    assert_eq!((line.bytes_in, line.bytes_out), (34, seen.len() as u64));
    assert!(!format!("{line:?}").contains("injected") && !format!("{line:?}").contains("aW5q"));
}

#[tokio::test]
async fn another_host_in_the_request_still_reaches_only_the_site() {
    let port = site().await;
    let front = front(port, false, false).await;
    let mut stream = TcpStream::connect(front.addr).await.unwrap();
    stream
        .write_all(b"GET http://evil.example:1/echo HTTP/1.1\r\nHost: evil.example:1\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).await.unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(
        answer.contains(&format!("host: 127.0.0.1:{port}\n")),
        "{answer}"
    );
    assert!(!answer.contains("evil"), "{answer}");

    // The client alone: an absolute URI elsewhere is the site's path.
    let site =
        crate::http::web::contract::Site::parse(&format!("http://127.0.0.1:{port}")).unwrap();
    let client = Client::new(
        site,
        Tls {
            pinned: None,
            first_use: None,
        },
        Arc::new(SystemClock),
    );
    let req = Request::get("http://evil.example:1/echo")
        .body(Bytes::new())
        .unwrap();
    let answer = client.fetch(req, 4096).await.unwrap();
    let seen = String::from_utf8_lossy(answer.body()).into_owned();
    assert!(
        seen.starts_with("GET /echo\n") && seen.contains(&format!("host: 127.0.0.1:{port}\n")),
        "{seen}"
    );
}

#[tokio::test]
async fn fetch_keeps_cookies_and_caps_the_body() {
    let port = site().await;
    let site =
        crate::http::web::contract::Site::parse(&format!("http://127.0.0.1:{port}")).unwrap();
    let client = Client::new(
        site,
        Tls {
            pinned: None,
            first_use: None,
        },
        Arc::new(SystemClock),
    );
    let login = client
        .fetch(Request::get("/login").body(Bytes::new()).unwrap(), 4096)
        .await
        .unwrap();
    assert!(login.headers().get(header::SET_COOKIE).is_none());
    let next = client
        .fetch(Request::get("/echo").body(Bytes::new()).unwrap(), 4096)
        .await
        .unwrap();
    assert!(String::from_utf8_lossy(next.body()).contains("cookie: sid=s1; theme=dark\n"));
    let small = client
        .fetch(Request::get("/echo").body(Bytes::new()).unwrap(), 10)
        .await;
    assert!(matches!(small, Err(FetchError::TooLarge(10))), "{small:?}");
}

#[tokio::test]
async fn an_unreachable_site_is_a_502_saying_why() {
    let closed = {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        listener.local_addr().unwrap().port()
    };
    let front = front(closed, false, false).await;
    let (status, _, body) = front.get("/").await;
    assert_eq!(status, StatusCode::BAD_GATEWAY);
    assert_eq!(body, "rampart: cannot reach the site: connection refused\n");
    assert!(!body.contains("127.0.0.1"));
    let line = &front.logs(1).await[0];
    assert_eq!((line.status, line.refused.as_ref()), (502, None));
}

#[tokio::test]
async fn a_websocket_passes_through_and_is_logged_when_it_closes() {
    let front = front(site().await, false, false).await;
    let mut stream = TcpStream::connect(front.addr).await.unwrap();
    stream
        .write_all(
            b"GET /ws HTTP/1.1\r\nHost: bastion\r\nConnection: keep-alive, Upgrade\r\nUpgrade: websocket\r\n\
              Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
        )
        .await
        .unwrap();
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        let mut byte = [0u8; 1];
        assert_eq!(
            stream.read(&mut byte).await.unwrap(),
            1,
            "{:?}",
            String::from_utf8_lossy(&head)
        );
        head.extend_from_slice(&byte);
    }
    let head = String::from_utf8_lossy(&head).to_ascii_lowercase();
    assert!(head.starts_with("http/1.1 101"), "{head}");
    assert!(
        head.contains("sec-websocket-accept: accepted-key") && head.contains("upgrade: websocket"),
        "{head}"
    );
    stream.write_all(b"hello through").await.unwrap();
    let mut echo = [0u8; 13];
    stream.read_exact(&mut echo).await.unwrap();
    assert_eq!(&echo, b"hello through");
    assert!(
        front.logs.lock().unwrap().is_empty(),
        "logged before the tunnel closed"
    );
    drop(stream);
    let line = &front.logs(1).await[0];
    assert_eq!(
        (line.method.as_str(), line.path.as_str(), line.status),
        ("GET", "/ws", 101)
    );
    assert_eq!((line.bytes_in, line.bytes_out), (13, 13));
}

#[tokio::test]
async fn the_end_of_the_visit_closes_its_websockets() {
    let front = front(site().await, false, false).await;
    let mut stream = TcpStream::connect(front.addr).await.unwrap();
    stream
        .write_all(
            b"GET /ws HTTP/1.1\r\nHost: bastion\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\
              Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
        )
        .await
        .unwrap();
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        let mut byte = [0u8; 1];
        assert_eq!(stream.read(&mut byte).await.unwrap(), 1);
        head.extend_from_slice(&byte);
    }
    stream.write_all(b"ping").await.unwrap();
    let mut echo = [0u8; 4];
    stream.read_exact(&mut echo).await.unwrap();
    front.ended.cancel();
    let mut rest = Vec::new();
    let closed = tokio::time::timeout(
        std::time::Duration::from_secs(5),
        stream.read_to_end(&mut rest),
    )
    .await;
    assert!(matches!(closed, Ok(Ok(0))), "the tunnel closed: {closed:?}");
    let line = &front.logs(1).await[0];
    assert_eq!((line.status, line.bytes_in, line.bytes_out), (101, 4, 4));
}

mod tls {
    //! The site over TLS: its certificate pinned on first use, and a
    //! certificate that is not the pinned one refused.

    use super::*;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

    fn certificate() -> (CertificateDer<'static>, PrivateKeyDer<'static>) {
        let pair = rcgen::KeyPair::generate().unwrap();
        let params = rcgen::CertificateParams::new(vec!["localhost".into()]).unwrap();
        let cert = params.self_signed(&pair).unwrap();
        let key = PrivatePkcs8KeyDer::from(pair.serialize_der());
        (cert.der().clone(), key.into())
    }

    /// A TLS site that presents `certs` in turn, one per connection, and
    /// closes each connection after one answer.
    async fn tls_site(certs: Vec<(CertificateDer<'static>, PrivateKeyDer<'static>)>) -> u16 {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let acceptors: Vec<tokio_rustls::TlsAcceptor> = certs
            .into_iter()
            .map(|(cert, key)| {
                let config =
                    rustls::ServerConfig::builder_with_provider(crate::upstream::tls::provider())
                        .with_safe_default_protocol_versions()
                        .unwrap()
                        .with_no_client_auth()
                        .with_single_cert(vec![cert], key)
                        .unwrap();
                tokio_rustls::TlsAcceptor::from(Arc::new(config))
            })
            .collect();
        tokio::spawn(async move {
            for acceptor in acceptors.into_iter().cycle() {
                let Ok((tcp, _)) = listener.accept().await else {
                    return;
                };
                tokio::spawn(async move {
                    let Ok(tls) = acceptor.accept(tcp).await else {
                        return;
                    };
                    let service = hyper::service::service_fn(|_req| async {
                        Ok::<_, std::convert::Infallible>(
                            Response::builder()
                                .header(header::CONNECTION, "close")
                                .body(http_body_util::Full::new(Bytes::from("over tls")))
                                .unwrap(),
                        )
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(tls), service)
                        .await;
                });
            }
        });
        port
    }

    fn client(port: u16, tls: Tls) -> Client {
        let site =
            crate::http::web::contract::Site::parse(&format!("https://localhost:{port}/")).unwrap();
        Client::new(site, tls, Arc::new(SystemClock))
    }

    async fn get(client: &Client) -> Result<String, FetchError> {
        let answer = client
            .fetch(Request::get("/").body(Bytes::new()).unwrap(), 1024)
            .await?;
        Ok(String::from_utf8_lossy(answer.body()).into_owned())
    }

    #[tokio::test]
    async fn the_first_certificate_is_pinned_and_a_later_other_one_refused() {
        let (a, b) = (certificate(), certificate());
        let (fa, fb) = (
            crate::upstream::tls::fingerprint(&a.0),
            crate::upstream::tls::fingerprint(&b.0),
        );
        let port = tls_site(vec![a, b]).await;
        let told = Arc::new(Mutex::new(Vec::new()));
        let kept = told.clone();
        let first_use: crate::db::contract::FirstUse = Arc::new(move |der: &[u8]| {
            kept.lock()
                .unwrap()
                .push(crate::upstream::tls::fingerprint(der))
        });
        let client = client(
            port,
            Tls {
                pinned: None,
                first_use: Some(first_use),
            },
        );
        assert_eq!(get(&client).await.unwrap(), "over tls");
        assert_eq!(*told.lock().unwrap(), vec![fa.clone()]);
        // The site closed the connection: the next one presents `b`.
        let refused = get(&client).await.unwrap_err().to_string();
        assert!(refused.contains(&fa) && refused.contains(&fb), "{refused}");
        assert!(refused.contains("rampart asset trust"), "{refused}");
        assert_eq!(told.lock().unwrap().len(), 1, "first use is told once");
    }

    #[tokio::test]
    async fn a_pinned_site_must_present_its_pin() {
        let a = certificate();
        let fa = crate::upstream::tls::fingerprint(&a.0);
        let port = tls_site(vec![a]).await;
        let good = client(
            port,
            Tls {
                pinned: Some(fa.clone()),
                first_use: None,
            },
        );
        assert_eq!(get(&good).await.unwrap(), "over tls");
        let wrong = "SHA256:00".to_string();
        let bad = client(
            port,
            Tls {
                pinned: Some(wrong.clone()),
                first_use: None,
            },
        );
        let refused = get(&bad).await.unwrap_err();
        assert!(matches!(refused, FetchError::Unreachable(_)), "{refused:?}");
        let text = refused.to_string();
        assert!(text.contains(&fa) && text.contains(&wrong), "{text}");
    }
}

#[tokio::test]
async fn a_head_answer_keeps_the_sites_length() {
    let front = front(site().await, false, false).await;
    let (_, got, body) = front.get("/echo").await;
    let (status, headers, empty) = front
        .send(Request::head("/echo").body(Body::empty()).unwrap())
        .await;
    assert_eq!((status, empty.as_str()), (StatusCode::OK, ""));
    // The site's echo of a HEAD says HEAD instead of GET: one byte more.
    let length = |h: &HeaderMap| {
        h[header::CONTENT_LENGTH]
            .to_str()
            .unwrap()
            .parse::<usize>()
            .unwrap()
    };
    assert_eq!(length(&got), body.len());
    assert_eq!(length(&headers), body.len() + 1);
}

#[tokio::test]
async fn an_answer_the_browser_stops_reading_is_logged_once_with_what_was_sent() {
    let front = front(site().await, false, false).await;
    let browser =
        hyper_util::client::legacy::Client::builder(TokioExecutor::new()).build_http::<Body>();
    let uri = format!("http://{}/stream", front.addr).parse().unwrap();
    let mut answer = browser.get(uri).await.unwrap();
    let first = answer.body_mut().frame().await.unwrap().unwrap();
    assert_eq!(first.into_data().unwrap(), "chunk\n");
    assert!(
        front.logs.lock().unwrap().is_empty(),
        "logged while streaming"
    );
    drop(answer);
    drop(browser);
    let logs = front.logs(1).await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(front.logs.lock().unwrap().len(), 1, "one line only");
    assert_eq!((logs[0].path.as_str(), logs[0].status), ("/stream", 200));
    assert!(
        logs[0].bytes_out >= 6 && logs[0].bytes_out % 6 == 0,
        "{:?}",
        logs[0]
    );
}
