//! Deployment and operations features of the server, in process: the health path, request
//! IDs, draining keep-alive connections (HTTP/1.1 `connection: close`, HTTP/2 `GOAWAY`),
//! `SO_REUSEPORT` and inherited (socket-activated) listeners.

mod common;

use std::convert::Infallible;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use bytes::Bytes;
use common::{LIMIT, Reply, eventually, read_reply, request, send_h1, send_h2};
use http::{Response, StatusCode};
use http_body_util::BodyExt;
use hyper_util::rt::{TokioExecutor, TokioIo};
use rgi::{App, Body, ConnectionInfo};
use rgi_server::{Config, InheritedListeners, RunningServer, Server, ServerError};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::Semaphore;

/// An application that reports what it saw (`/meta`) or waits for the test (`/gate`).
#[derive(Clone)]
struct Ops {
    calls: Arc<AtomicUsize>,
    gate: Arc<Semaphore>,
    name: &'static str,
}

impl Ops {
    fn new(name: &'static str) -> Self {
        Self {
            calls: Arc::default(),
            gate: Arc::new(Semaphore::new(0)),
            name,
        }
    }

    fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }
}

impl App for Ops {
    type Body = Body;
    type Error = Infallible;

    async fn call(&self, req: rgi::Request) -> Result<Response<Body>, Infallible> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        if req.uri().path() == "/gate" {
            if let Ok(permit) = self.gate.acquire().await {
                permit.forget();
            }
        }
        let mut out = String::new();
        let _ = writeln!(out, "server: {}", self.name);
        for value in req.headers().get_all("x-request-id") {
            let _ = writeln!(out, "request-id: {}", value.to_str().unwrap_or("?"));
        }
        if let Some(info) = req.extensions().get::<ConnectionInfo>() {
            let _ = writeln!(out, "peer: {}", info.peer());
        }
        out.push_str("end\n");
        Ok(Response::new(Body::from(out)))
    }
}

fn config() -> Config {
    common::config()
}

async fn start(config: Config, app: Ops) -> RunningServer {
    common::start(config, app).await
}

fn get(path: &str) -> http::Request<http_body_util::combinators::BoxBody<Bytes, Infallible>> {
    request("GET", path, b"")
}

fn with_id(
    path: &str,
    id: &'static str,
) -> http::Request<http_body_util::combinators::BoxBody<Bytes, Infallible>> {
    let mut req = get(path);
    req.headers_mut()
        .insert("x-request-id", http::HeaderValue::from_static(id));
    req
}

fn response_id(reply: &Reply) -> String {
    let values: Vec<_> = reply.headers.get_all("x-request-id").iter().collect();
    assert_eq!(values.len(), 1, "one x-request-id in {:?}", reply.headers);
    values[0].to_str().unwrap().to_owned()
}

/// SRV-OPS-1, CORE-APP-1: the health path is answered by the server (200, `HEAD` without a
/// body, HTTP/1.1 and HTTP/2) and never reaches the application; once the server is marked
/// unready it answers 503 while other paths are still served.
#[tokio::test]
async fn health_path_is_answered_by_the_server() {
    let app = Ops::new("a");
    let server = start(config().health_path(Some("/healthz".into())), app.clone()).await;
    let addr = server.local_addrs()[0];
    let reply = send_h1(addr, get("/healthz")).await;
    assert_eq!(reply.status, StatusCode::OK);
    let reply = send_h2(addr, get("/healthz")).await;
    assert_eq!(reply.status, StatusCode::OK);
    let reply = send_h1(addr, request("HEAD", "/healthz", b"")).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert!(reply.body.is_empty());
    // Only the exact path: a longer one is the application's.
    let reply = send_h1(addr, get("/healthz/deep")).await;
    assert!(reply.text().contains("server: a"), "{}", reply.text());
    assert_eq!(app.calls(), 1);

    let handle = server.handle();
    assert!(handle.is_ready());
    handle.mark_unready();
    assert!(!handle.is_ready());
    let reply = send_h1(addr, get("/healthz")).await;
    assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE);
    let reply = send_h2(addr, get("/healthz")).await;
    assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE);
    let reply = send_h1(addr, get("/meta")).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(app.calls(), 2);
    common::stop(server).await;
}

/// SRV-OPS-2: without a health path, `/healthz` is an ordinary request for the application.
#[tokio::test]
async fn no_health_path_unless_configured() {
    let app = Ops::new("a");
    let server = start(config(), app.clone()).await;
    let reply = send_h1(server.local_addrs()[0], get("/healthz")).await;
    assert!(reply.text().contains("server: a"), "{}", reply.text());
    assert_eq!(app.calls(), 1);
    common::stop(server).await;
}

/// SRV-OPS-1: shutting down makes the server unready (the health path would answer 503).
#[tokio::test]
async fn shutdown_marks_the_server_unready() {
    let server = start(config().health_path(Some("/healthz".into())), Ops::new("a")).await;
    let handle = server.handle();
    assert!(handle.is_ready());
    handle.shutdown();
    assert!(!handle.is_ready());
    tokio::time::timeout(LIMIT, server.wait())
        .await
        .unwrap()
        .unwrap();
}

/// SRV-OPS-4, SRV-OPS-5, HTTP-CONN-5: from a peer that is not a trusted proxy the request ID
/// is generated, replacing the client's; the application sees exactly the ID the response
/// carries, and every request gets its own.
#[tokio::test]
async fn request_ids_are_generated_for_untrusted_peers() {
    let server = start(config().request_id(true), Ops::new("a")).await;
    let addr = server.local_addrs()[0];
    let first = send_h1(addr, with_id("/meta", "spoofed-by-client")).await;
    let id = response_id(&first);
    assert_ne!(id, "spoofed-by-client");
    assert_eq!(first.lines("request-id"), vec![id.clone()]);
    let second = send_h2(addr, get("/meta")).await;
    let second_id = response_id(&second);
    assert_ne!(second_id, id);
    assert_eq!(second.lines("request-id"), vec![second_id.clone()]);
    // One process, one prefix.
    assert_eq!(
        id.split_once('-').unwrap().0,
        second_id.split_once('-').unwrap().0
    );
    common::stop(server).await;
}

/// SRV-OPS-4, SRV-OPS-5, HTTP-CONN-5: a trusted proxy's valid request ID is kept and echoed;
/// an invalid one is replaced.
#[tokio::test]
async fn request_ids_from_trusted_proxies_are_kept() {
    let server = start(config().request_id(true).proxy_headers(true), Ops::new("a")).await;
    let addr = server.local_addrs()[0];
    let reply = send_h1(addr, with_id("/meta", "edge-7f3a")).await;
    assert_eq!(response_id(&reply), "edge-7f3a");
    assert_eq!(reply.lines("request-id"), vec!["edge-7f3a".to_owned()]);
    let reply = send_h1(addr, with_id("/meta", "has a space")).await;
    let id = response_id(&reply);
    assert_ne!(id, "has a space");
    assert_eq!(reply.lines("request-id"), vec![id]);
    common::stop(server).await;
}

/// SRV-OPS-4, HTTP-CONN-5: with proxy headers on but the peer outside
/// `forwarded_allow_ips`, the client's request ID is replaced.
#[tokio::test]
async fn request_ids_from_untrusted_proxies_are_replaced() {
    let trusted = "10.0.0.0/8".parse().unwrap();
    let server = start(
        config()
            .request_id(true)
            .proxy_headers(true)
            .forwarded_allow_ips(trusted),
        Ops::new("a"),
    )
    .await;
    let reply = send_h1(server.local_addrs()[0], with_id("/meta", "edge-7f3a")).await;
    assert_ne!(response_id(&reply), "edge-7f3a");
    common::stop(server).await;
}

/// SRV-OPS-5: responses the server makes itself (the health path, `414`) carry the ID too;
/// without the option no response carries one and the client's field reaches the app as sent.
#[tokio::test]
async fn request_ids_on_server_responses_and_off_by_default() {
    let server = start(
        config()
            .request_id(true)
            .health_path(Some("/healthz".into()))
            .max_uri_length(64),
        Ops::new("a"),
    )
    .await;
    let addr = server.local_addrs()[0];
    let reply = send_h1(addr, get("/healthz")).await;
    assert_eq!(reply.status, StatusCode::OK);
    response_id(&reply);
    let long = format!("/{}", "x".repeat(100));
    let mut req = get("/");
    *req.uri_mut() = long.parse().unwrap();
    let reply = send_h1(addr, req).await;
    assert_eq!(reply.status, StatusCode::URI_TOO_LONG);
    response_id(&reply);
    common::stop(server).await;

    let server = start(config(), Ops::new("a")).await;
    let reply = send_h1(server.local_addrs()[0], with_id("/meta", "client-1")).await;
    assert!(reply.headers.get("x-request-id").is_none());
    assert_eq!(reply.lines("request-id"), vec!["client-1".to_owned()]);
    common::stop(server).await;
}

/// Reads from `stream` until the peer closes it; `None` when it stays open past `LIMIT`.
async fn read_until_closed(stream: &mut TcpStream) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    tokio::time::timeout(LIMIT, async {
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => out.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await
    .ok()?;
    Some(out)
}

/// SRV-SHUT-2, SRV-SHUT-1: draining an HTTP/1.1 keep-alive connection whose second request is
/// in flight: the response still comes, marked `connection: close`, and then the server
/// closes the connection; an idle keep-alive connection is closed at once; new connections
/// are refused.
#[tokio::test]
async fn draining_closes_keep_alive_connections_after_their_response() {
    let app = Ops::new("a");
    let server = start(config(), app.clone()).await;
    let addr = server.local_addrs()[0];
    let mut busy = TcpStream::connect(addr).await.unwrap();
    busy.write_all(b"GET /meta HTTP/1.1\r\nHost: a\r\n\r\n")
        .await
        .unwrap();
    let first = common::read_until(&mut busy, b"end\n").await;
    let first = String::from_utf8_lossy(&first).to_ascii_lowercase();
    assert!(first.starts_with("http/1.1 200"), "{first}");
    assert!(!first.contains("connection: close"), "{first}");
    let mut idle = TcpStream::connect(addr).await.unwrap();
    idle.write_all(b"GET /meta HTTP/1.1\r\nHost: a\r\n\r\n")
        .await
        .unwrap();
    common::read_until(&mut idle, b"end\n").await;

    busy.write_all(b"GET /gate HTTP/1.1\r\nHost: a\r\n\r\n")
        .await
        .unwrap();
    assert!(eventually(|| app.calls() == 3).await);
    server.handle().shutdown();
    // The idle connection closes without a byte more.
    let rest = read_until_closed(&mut idle).await;
    assert_eq!(
        rest.as_deref(),
        Some(&b""[..]),
        "idle connection not closed"
    );
    assert!(
        eventually(|| std::net::TcpStream::connect(addr).is_err()).await,
        "the listener still accepts"
    );
    app.gate.add_permits(1);
    let second = read_until_closed(&mut busy)
        .await
        .expect("the busy connection is closed after its response");
    let second = String::from_utf8_lossy(&second).to_ascii_lowercase();
    assert!(second.starts_with("http/1.1 200"), "{second}");
    assert!(second.contains("connection: close"), "{second}");
    assert!(second.contains("server: a\n"), "{second}");
    assert!(second.ends_with("end\n"), "{second}");
    tokio::time::timeout(LIMIT, server.wait())
        .await
        .unwrap()
        .unwrap();
}

/// SRV-SHUT-2: draining an HTTP/2 connection: the stream in flight completes, no new stream
/// is accepted (`GOAWAY`), and the connection ends.
#[tokio::test]
async fn draining_sends_goaway_on_http2() {
    let app = Ops::new("a");
    let server = start(config(), app.clone()).await;
    let addr = server.local_addrs()[0];
    let stream = TcpStream::connect(addr).await.unwrap();
    let (mut sender, conn) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
            .await
            .unwrap();
    let conn = tokio::spawn(conn);
    let uri = format!("http://{addr}/gate");
    let req = http::Request::get(uri)
        .body(http_body_util::Empty::<Bytes>::new())
        .unwrap();
    let in_flight = tokio::spawn(sender.send_request(req));
    assert!(eventually(|| app.calls() == 1).await);
    server.handle().shutdown();
    // Give the GOAWAY a moment to go out before the response (no assertion depends on it).
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    app.gate.add_permits(1);
    let response = tokio::time::timeout(LIMIT, in_flight)
        .await
        .unwrap()
        .unwrap()
        .expect("the stream in flight completes");
    assert_eq!(response.status(), StatusCode::OK);
    let body = response.into_body().collect().await.unwrap().to_bytes();
    assert!(body.starts_with(b"server: a\n"), "{body:?}");
    // No new stream is accepted on the drained connection.
    let late = http::Request::get(format!("http://{addr}/meta"))
        .body(http_body_util::Empty::<Bytes>::new())
        .unwrap();
    let late = tokio::time::timeout(LIMIT, sender.send_request(late)).await;
    assert!(
        matches!(late, Ok(Err(_))),
        "a new stream was served: {late:?}"
    );
    let ended = tokio::time::timeout(LIMIT, conn).await;
    assert!(ended.is_ok(), "the HTTP/2 connection did not end");
    assert_eq!(app.calls(), 1);
    tokio::time::timeout(LIMIT, server.wait())
        .await
        .unwrap()
        .unwrap();
}

/// SRV-OPS-7: with `reuse_port` two servers listen on one port and both serve connections;
/// without it the second cannot bind.
#[tokio::test]
async fn reuse_port_lets_two_servers_share_a_port() {
    let (a, b) = (Ops::new("a"), Ops::new("b"));
    let first = start(config().reuse_port(true), a.clone()).await;
    let addr = first.local_addrs()[0];
    let second = start(
        Config::default()
            .bind(addr)
            .reuse_port(true)
            .access_log(false),
        b.clone(),
    )
    .await;
    assert_eq!(second.local_addrs(), &[addr]);
    // The kernel picks a listener per connection (by the client's port): within a bounded
    // number of fresh connections both serve some.
    for _ in 0..400 {
        if a.calls() > 0 && b.calls() > 0 {
            break;
        }
        send_h1(addr, get("/meta")).await;
    }
    assert!(
        a.calls() > 0 && b.calls() > 0,
        "{} / {}",
        a.calls(),
        b.calls()
    );

    let refused = Server::new(Config::default().bind(addr).access_log(false))
        .start(Ops::new("c"))
        .await;
    assert!(
        matches!(refused, Err(ServerError::Bind { .. })),
        "{refused:?}"
    );
    common::stop(first).await;
    common::stop(second).await;
}

struct TempDir(PathBuf);

impl TempDir {
    fn new(label: &str) -> Self {
        let dir =
            std::env::temp_dir().join(format!("rgi-server-deploy-{label}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// SRV-OPS-6: listeners handed over (as by socket activation) are served — TCP and Unix —
/// instead of the default address, and the Unix socket's file, not created by the server,
/// is left in place at shutdown.
#[tokio::test]
async fn inherited_listeners_are_served() {
    let dir = TempDir::new("inherit");
    let path = dir.0.join("app.sock");
    let tcp = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let tcp_addr: SocketAddr = tcp.local_addr().unwrap();
    let unix = std::os::unix::net::UnixListener::bind(&path).unwrap();
    let mut inherited = InheritedListeners::default();
    inherited.push_tcp(tcp);
    inherited.push_unix(unix);
    assert_eq!(inherited.len(), 2);
    let server = tokio::time::timeout(
        LIMIT,
        Server::new(Config::default().access_log(false))
            .inherit(inherited)
            .start(Ops::new("a")),
    )
    .await
    .unwrap()
    .unwrap();
    assert_eq!(server.local_addrs(), &[tcp_addr]);
    assert_eq!(server.unix_paths(), std::slice::from_ref(&path));
    let reply = send_h1(tcp_addr, get("/meta")).await;
    assert!(reply.text().contains("server: a"), "{}", reply.text());

    let stream = tokio::net::UnixStream::connect(&path).await.unwrap();
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(conn);
    let response = sender.send_request(get("/meta")).await.unwrap();
    let reply = read_reply(response).await;
    assert!(reply.text().contains("server: a"), "{}", reply.text());
    common::stop(server).await;
    assert!(path.exists(), "the inherited socket's file was removed");
    assert!(
        std::net::TcpStream::connect(tcp_addr).is_err(),
        "the inherited listener is still open"
    );
}

/// SRV-OPS-1: a health path that is not an absolute path is a configuration error.
#[tokio::test]
async fn invalid_health_path_is_rejected() {
    let result = Server::new(config().health_path(Some("healthz".into())))
        .start(Ops::new("a"))
        .await;
    assert!(matches!(result, Err(ServerError::Config(_))), "{result:?}");
}
