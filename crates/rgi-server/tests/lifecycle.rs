//! Lifespan, graceful shutdown and the disconnect signal.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use common::*;
use rgi::{App, Body, Lifespan, Outcome, Request, ServerInfo, StartupError};
use rgi_server::{Server, ServerError};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

struct FailingStartup;

impl Lifespan for FailingStartup {
    type App = Probe;

    async fn startup(self, _server: ServerInfo) -> Result<Probe, StartupError> {
        Err(StartupError::new("the database is unreachable"))
    }
}

/// LIFE-START-2: a failing startup is returned to the embedder with the app's message, and
/// nothing is served.
#[tokio::test]
async fn failing_startup_is_an_error() {
    let result = Server::new(config()).start(FailingStartup).await;
    match result {
        Err(ServerError::Startup(error)) => {
            assert_eq!(error.message(), "the database is unreachable");
        }
        other => panic!("expected a startup error, got {other:?}"),
    }
}

/// A lifespan that records when startup ran relative to serving.
struct Recording {
    started: Arc<AtomicBool>,
    capabilities: Arc<std::sync::Mutex<Option<ServerInfo>>>,
}

impl Lifespan for Recording {
    type App = Probe;

    async fn startup(self, server: ServerInfo) -> Result<Probe, StartupError> {
        tokio::time::sleep(Duration::from_millis(50)).await;
        *self.capabilities.lock().unwrap() = Some(server);
        self.started.store(true, Ordering::SeqCst);
        Ok(Probe::default())
    }
}

/// LIFE-START-1, LIFE-START-4: startup completes before the server serves, and receives a
/// truthful ServerInfo.
#[tokio::test]
async fn startup_runs_before_serving() {
    let started = Arc::new(AtomicBool::new(false));
    let info = Arc::new(std::sync::Mutex::new(None));
    let server = start(
        config(),
        Recording {
            started: started.clone(),
            capabilities: info.clone(),
        },
    )
    .await;
    assert!(started.load(Ordering::SeqCst));
    let info = info.lock().unwrap().clone().unwrap();
    assert_eq!(info.name(), "rgi-server");
    assert_eq!(info.spec_version(), rgi::SPEC_VERSION);
    assert!(info.capabilities().contains(rgi::Capability::Http1));
    assert!(!info.capabilities().contains(rgi::Capability::Tls));
    let reply = send_h1(server.local_addrs()[0], request("GET", "/meta", b"")).await;
    assert_eq!(reply.status, http::StatusCode::OK);
    stop(server).await;
}

/// LIFE-SHUT-1, SRV-SHUT-1, SRV-SHUT-2: an in-flight request completes during the drain, new
/// connections are refused, and `App::shutdown` runs exactly once, after the drain.
#[tokio::test]
async fn graceful_shutdown_drains_in_flight_requests() {
    let (server, probe) = start_probe(config()).await;
    let addr = server.local_addrs()[0];
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream
        .write_all(b"GET /sleep?2000 HTTP/1.1\r\nHost: a\r\n\r\n")
        .await
        .unwrap();
    assert!(eventually(|| probe.observed.calls.load(Ordering::SeqCst) == 1).await);
    let handle = server.handle();
    handle.shutdown();
    // New connections are refused once the listener is closed.
    let refused =
        eventually(|| std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(1)).is_err())
            .await;
    assert!(refused, "the listener still accepts after shutdown began");
    let reply = read_to_close(&mut stream).await;
    let text = String::from_utf8_lossy(&reply);
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    assert!(text.contains("slept"), "{text}");
    assert!(
        text.to_ascii_lowercase().contains("connection: close"),
        "{text}"
    );
    tokio::time::timeout(LIMIT, server.wait())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(probe.observed.shutdowns.load(Ordering::SeqCst), 1);
}

/// SRV-SHUT-3, SRV-SHUT-4, LIFE-SHUT-1: at the graceful deadline the remaining exchanges are
/// aborted (`Aborted`), idle and half-read connections are closed, and shutdown runs once.
#[tokio::test]
async fn deadline_ends_every_connection() {
    let (server, probe) = start_probe(config().graceful_timeout(Duration::from_millis(300))).await;
    let addr = server.local_addrs()[0];
    let mut hanging = TcpStream::connect(addr).await.unwrap();
    hanging
        .write_all(b"GET /hang HTTP/1.1\r\nHost: a\r\nX-Track: hang\r\n\r\n")
        .await
        .unwrap();
    let mut half = TcpStream::connect(addr).await.unwrap();
    half.write_all(b"GET /meta HTTP/1.1\r\nHo").await.unwrap();
    let mut idle = TcpStream::connect(addr).await.unwrap();
    idle.write_all(b"GET /meta HTTP/1.1\r\nHost: a\r\n\r\n")
        .await
        .unwrap();
    let _ = read_until(&mut idle, b"body-limit").await;
    assert!(eventually(|| probe.observed.calls.load(Ordering::SeqCst) == 2).await);

    server.shutdown();
    tokio::time::timeout(LIMIT, server.wait())
        .await
        .expect("shutdown waited past the deadline")
        .unwrap();
    assert_eq!(probe.observed.shutdowns.load(Ordering::SeqCst), 1);
    for stream in [&mut hanging, &mut half, &mut idle] {
        let _ = read_to_close(stream).await;
    }
    let outcome = probe.observed.outcomes.lock().unwrap().get("hang").copied();
    assert_eq!(outcome, Some(Outcome::Aborted));
}

/// HTTP-DISC-2, HTTP-DISC-4, CORE-CANCEL-2: a completed response settles `Completed`; a
/// client that leaves mid-request settles `ClientGone`.
#[tokio::test]
async fn disconnect_completed_versus_client_gone() {
    let (server, probe) = start_probe(config()).await;
    let addr = server.local_addrs()[0];
    let mut req = request("GET", "/meta", b"");
    req.headers_mut()
        .insert("x-track", http::HeaderValue::from_static("done"));
    let reply = send_h1(addr, req).await;
    assert_eq!(reply.status, http::StatusCode::OK);
    let mut req = request("GET", "/trailers", b"");
    req.headers_mut()
        .insert("x-track", http::HeaderValue::from_static("h2-done"));
    let _ = send_h2(addr, req).await;

    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream
        .write_all(b"GET /hang HTTP/1.1\r\nHost: a\r\nX-Track: gone\r\n\r\n")
        .await
        .unwrap();
    assert!(eventually(|| probe.observed.calls.load(Ordering::SeqCst) == 3).await);
    drop(stream);

    let outcomes = &probe.observed.outcomes;
    assert!(
        eventually(|| outcomes.lock().unwrap().len() == 3).await,
        "{:?}",
        outcomes.lock().unwrap()
    );
    let outcomes = outcomes.lock().unwrap().clone();
    assert_eq!(outcomes.get("done"), Some(&Outcome::Completed));
    assert_eq!(outcomes.get("h2-done"), Some(&Outcome::Completed));
    assert_eq!(outcomes.get("gone"), Some(&Outcome::ClientGone));
    stop(server).await;
}

/// HTTP-DISC-4: a client that leaves mid-body while the app streams the request body into its
/// response (an echo) settles `ClientGone`, not `Aborted`: the response body failed because
/// the request body reported the client gone (the log side, SRV-LOG-2, is a suite case).
#[tokio::test]
async fn client_leaving_an_echo_settles_client_gone() {
    let (server, probe) = start_probe(config()).await;
    let addr = server.local_addrs()[0];
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream
        .write_all(
            b"POST /echo HTTP/1.1\r\nHost: a\r\nX-Track: echo\r\nContent-Length: 100000\r\n\r\nsome",
        )
        .await
        .unwrap();
    assert!(eventually(|| probe.observed.calls.load(Ordering::SeqCst) == 1).await);
    drop(stream);
    let outcomes = &probe.observed.outcomes;
    assert!(
        eventually(|| outcomes.lock().unwrap().contains_key("echo")).await,
        "{:?}",
        outcomes.lock().unwrap()
    );
    assert_eq!(
        outcomes.lock().unwrap().get("echo"),
        Some(&Outcome::ClientGone)
    );
    stop(server).await;
}

/// An app whose shutdown counts calls; used through `BoxApp`.
#[derive(Clone, Default)]
struct Counting {
    shutdowns: Arc<AtomicUsize>,
}

impl App for Counting {
    type Body = Body;
    type Error = std::convert::Infallible;

    async fn call(&self, _req: Request) -> Result<http::Response<Body>, Self::Error> {
        Ok(http::Response::new(Body::from("boxed")))
    }

    async fn shutdown(&self) {
        self.shutdowns.fetch_add(1, Ordering::SeqCst);
    }
}

/// CORE-APP-3, LIFE-SHUT-1: a `BoxApp` is served like any app, and shutdown runs once.
#[tokio::test]
async fn boxed_app_is_served_and_shut_down_once() {
    let app = Counting::default();
    let shutdowns = app.shutdowns.clone();
    let server = start(config(), app.boxed()).await;
    let reply = send_h1(server.local_addrs()[0], request("GET", "/", b"")).await;
    assert_eq!(reply.text(), "boxed");
    stop(server).await;
    assert_eq!(shutdowns.load(Ordering::SeqCst), 1);
}

/// LIFE-SHUT-2: when a listener cannot be bound after a successful startup, the app is still
/// shut down, and the error names the address.
#[tokio::test]
async fn bind_failure_after_startup_shuts_the_app_down() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap();
    let app = Counting::default();
    let shutdowns = app.shutdowns.clone();
    let config = rgi_server::Config::default().bind(addr);
    let result = Server::new(config).start(app).await;
    assert!(
        matches!(result, Err(ServerError::Bind { .. })),
        "{result:?}"
    );
    assert_eq!(shutdowns.load(Ordering::SeqCst), 1);
}

struct PanickingStartup;

impl Lifespan for PanickingStartup {
    type App = Probe;

    async fn startup(self, _server: ServerInfo) -> Result<Probe, StartupError> {
        panic!("startup panics on purpose")
    }
}

/// LIFE-START-2: a panicking startup is an error with the panic message, not a crash.
#[tokio::test]
async fn panicking_startup_is_an_error() {
    let result = Server::new(config()).start(PanickingStartup).await;
    match result {
        Err(ServerError::StartupPanic(message)) => {
            assert!(message.contains("on purpose"), "{message}");
        }
        other => panic!("expected a startup panic error, got {other:?}"),
    }
}

struct PanickingShutdown;

impl App for PanickingShutdown {
    type Body = Body;
    type Error = std::convert::Infallible;

    async fn call(&self, _req: Request) -> Result<http::Response<Body>, Self::Error> {
        Ok(http::Response::new(Body::from("ok")))
    }

    async fn shutdown(&self) {
        panic!("shutdown panics on purpose");
    }
}

/// LIFE-SHUT-4: a panic in `App::shutdown` is caught and reported to the embedder.
#[tokio::test]
async fn panicking_shutdown_is_reported() {
    let server = start(config(), PanickingShutdown).await;
    server.shutdown();
    let result = tokio::time::timeout(LIMIT, server.wait()).await.unwrap();
    assert!(
        matches!(result, Err(ServerError::ShutdownPanic(ref m)) if m.contains("on purpose")),
        "{result:?}"
    );
}

/// HTTP-DISC-4, CORE-CANCEL-2, CORE-APP-1: a client that sends a complete request and closes
/// at once still gets its call run, and the app learns that the client is gone. The request
/// and the close wait together in the backlog (connection limit 1), so the server reads both
/// at once.
#[tokio::test]
async fn request_then_immediate_close_reaches_the_app() {
    let (server, probe) = start_probe(config().max_connections(1)).await;
    let addr = server.local_addrs()[0];
    let mut holder = TcpStream::connect(addr).await.unwrap();
    holder
        .write_all(b"GET /meta HTTP/1.1\r\nHost: a\r\n\r\n")
        .await
        .unwrap();
    let _ = read_until(&mut holder, b"body-limit").await;
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream
        .write_all(b"GET /hang HTTP/1.1\r\nHost: a\r\nX-Track: instant\r\n\r\n")
        .await
        .unwrap();
    stream.shutdown().await.unwrap();
    drop(stream);
    drop(holder);
    let outcomes = &probe.observed.outcomes;
    assert!(
        eventually(|| outcomes.lock().unwrap().contains_key("instant")).await,
        "the call of a request followed by a close never ran"
    );
    assert_eq!(
        outcomes.lock().unwrap().get("instant"),
        Some(&Outcome::ClientGone)
    );
    stop(server).await;
}
