//! RGI → tower: an RGI app served through `RgiService` by `axum::serve` and hyper-util on
//! 127.0.0.1, hit with a real hyper client, and driven in-process as a tower service.

mod support;

use std::future::Future;
use std::net::SocketAddr;
use std::pin::pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};

use axum::Router;
use axum::routing::get;
use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method, Request, Response, StatusCode, Version};
use http_body::Frame;
use hyper_util::rt::{TokioExecutor, TokioIo};
use rgi::{App, Body, BodyError, BoxError, Capability, Disconnect, Outcome};
use rgi_tower::{AppExt as _, RgiService};
use support::{FramesBody, channel_body, collect, next_frame, within};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tower_service::Service;

/// The RGI app under test.
#[derive(Debug, Default)]
struct TestApp {
    /// The sender of the body of the last `/stream` response.
    stream: Mutex<Option<mpsc::Sender<Frame<Bytes>>>>,
    /// Outcomes of `/watch` requests, reported by a task that watches `Disconnect`.
    outcomes: Mutex<Option<mpsc::UnboundedSender<Outcome>>>,
    shutdowns: AtomicUsize,
}

#[derive(Debug, thiserror::Error)]
#[error("secret internal detail")]
struct Failure;

impl App for TestApp {
    type Body = Body;
    type Error = BoxError;

    async fn call(&self, req: rgi::Request) -> Result<Response<Body>, BoxError> {
        let app_path = rgi::path::app_path(&req).unwrap_or_default().into_owned();
        let app_path = String::from_utf8_lossy(&app_path).into_owned();
        let response = match app_path.as_str() {
            "/" => Response::new(Body::from("Hello from RGI")),
            "/where" => {
                let prefix = req
                    .extensions()
                    .get::<rgi::MountPrefix>()
                    .map(|p| p.to_string())
                    .unwrap_or_default();
                Response::new(Body::from(format!("{}|{prefix}|{app_path}", req.uri())))
            }
            "/peer" => {
                let info = rgi::ext::require::<rgi::ConnectionInfo>(req.extensions())?;
                Response::new(Body::from(format!("{} {}", info.peer(), info.scheme())))
            }
            "/upgrade-offers" => {
                let ext = req.extensions();
                Response::new(Body::from(format!(
                    "{} {}",
                    ext.get::<rgi::ws::WebSocketUpgrade>().is_some(),
                    ext.get::<rgi::upgrade::OnUpgrade>().is_some()
                )))
            }
            "/stream" => {
                let (tx, body) = channel_body();
                tx.send(Frame::data(Bytes::from("first"))).await?;
                *self.stream.lock().unwrap() = Some(tx);
                Response::new(Body::new(body))
            }
            "/echo" => Response::new(req.into_body()),
            "/trailers" => {
                let collected = req.into_body().collect().await?;
                let mut trailers = HeaderMap::new();
                let seen = collected
                    .trailers()
                    .and_then(|t| t.get("x-request-trailer").cloned())
                    .unwrap_or_else(|| HeaderValue::from_static("none"));
                trailers.insert("x-seen", seen);
                let mut response = Response::new(Body::new(FramesBody::new(
                    &["with ", "trailers"],
                    Some(trailers),
                )));
                // HTTP-TRAIL-10 (and hyper's HTTP/1.1 encoder sends only announced trailers).
                response
                    .headers_mut()
                    .insert("trailer", HeaderValue::from_static("x-seen"));
                response
            }
            "/limited" => {
                let collected = req.into_body().collect().await?;
                Response::new(Body::from(collected.into_bytes()))
            }
            "/raw" => {
                let offer = rgi::ext::require::<rgi::upgrade::OnUpgrade>(req.extensions())?.clone();
                offer.accept("echo/1", |mut io: rgi::upgrade::Upgraded| async move {
                    use tokio::io::{AsyncReadExt, AsyncWriteExt};
                    let mut buf = [0u8; 64];
                    loop {
                        let n = io.read(&mut buf).await?;
                        if n == 0 {
                            return Ok(());
                        }
                        io.write_all(&buf[..n]).await?;
                        io.flush().await?;
                    }
                })?
            }
            "/switch" => {
                let mut response = Response::new(Body::empty());
                *response.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
                response
            }
            "/error" => return Err(Box::new(Failure)),
            "/panic" => panic!("secret panic detail"),
            "/watch" => {
                let signal = req.extensions().get::<Disconnect>().cloned();
                let reporter = self.outcomes.lock().unwrap().clone();
                if let (Some(signal), Some(reporter)) = (signal, reporter) {
                    tokio::spawn(async move {
                        let _ = reporter.send(signal.finished().await);
                    });
                }
                Response::new(Body::from("watched"))
            }
            _ => {
                let mut response = Response::new(Body::empty());
                *response.status_mut() = StatusCode::NOT_FOUND;
                response
            }
        };
        Ok(response)
    }

    async fn shutdown(&self) {
        self.shutdowns.fetch_add(1, Ordering::SeqCst);
    }
}

/// Serves `router` with `axum::serve` on 127.0.0.1 (connection info on) until the test ends.
async fn serve(router: Router) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(
            listener,
            router.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await
    });
    addr
}

/// An HTTP/1.1 client connection, and the client's own address.
async fn h1(addr: SocketAddr) -> (hyper::client::conn::http1::SendRequest<Body>, SocketAddr) {
    let stream = within(TcpStream::connect(addr)).await.unwrap();
    let local = stream.local_addr().unwrap();
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(conn.with_upgrades());
    (sender, local)
}

/// An HTTP/2 cleartext (prior knowledge) client connection.
async fn h2(addr: SocketAddr) -> hyper::client::conn::http2::SendRequest<Body> {
    let stream = within(TcpStream::connect(addr)).await.unwrap();
    let (sender, conn) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
            .await
            .unwrap();
    tokio::spawn(conn);
    sender
}

fn get_req(uri: &str) -> Request<Body> {
    Request::get(uri)
        .header("host", "localhost")
        .body(Body::empty())
        .unwrap()
}

async fn send(
    sender: &mut hyper::client::conn::http1::SendRequest<Body>,
    req: Request<Body>,
) -> (StatusCode, Bytes) {
    within(sender.ready()).await.unwrap();
    let response = within(sender.send_request(req)).await.unwrap();
    let status = response.status();
    (status, within(collect(response.into_body())).await.0)
}

/// CORE-APP-1, HTTP-RESP-1: an RGI app answers through `axum::serve`.
#[tokio::test]
async fn app_answers_through_axum_serve() {
    let service = RgiService::new(TestApp::default());
    #[cfg(feature = "axum")]
    let router = service.into_router();
    #[cfg(not(feature = "axum"))]
    let router = Router::new().fallback_service(service);
    let addr = serve(router).await;
    let (mut client, _) = h1(addr).await;
    assert_eq!(
        send(&mut client, get_req("/")).await,
        (StatusCode::OK, Bytes::from("Hello from RGI"))
    );
}

/// SRV-LIMIT-13: a request whose `transfer-encoding` applies `chunked` twice is refused with
/// `400` without calling the application (hyper would decode it once and pass the rest on).
#[tokio::test]
async fn chunked_twice_is_refused() {
    let mut service = RgiService::new(TestApp::default());
    for codings in [&["chunked, chunked"][..], &["chunked", "chunked"]] {
        let mut request = Request::builder().method(Method::POST).uri("/");
        for coding in codings {
            request = request.header(http::header::TRANSFER_ENCODING, *coding);
        }
        let request = request.body(http_body_util::Empty::<Bytes>::new()).unwrap();
        let response = within(service.call(request)).await.unwrap();
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{codings:?}");
    }
}

/// HTTP-CONN-1, HTTP-CONN-3: the app gets a `ConnectionInfo`; with the feature `axum` its peer
/// is the client's socket address from axum's `ConnectInfo`, and the scheme is `http`.
#[tokio::test]
async fn connect_info_becomes_rgi_connection_info() {
    let addr = serve(Router::new().fallback_service(RgiService::new(TestApp::default()))).await;
    let (mut client, local) = h1(addr).await;
    let (status, body) = send(&mut client, get_req("/peer")).await;
    assert_eq!(status, StatusCode::OK);
    let expected_peer = if cfg!(feature = "axum") {
        local.to_string()
    } else {
        "-".to_owned()
    };
    assert_eq!(body, format!("{expected_peer} http"));
}

/// HTTP-FRAME-12: the response body streams frame by frame through the host — the client reads
/// the first frame before the app has produced the second.
#[tokio::test]
async fn response_streams_frame_by_frame() {
    let service = RgiService::new(TestApp::default());
    let addr = serve(Router::new().fallback_service(service.clone())).await;
    let (mut client, _) = h1(addr).await;
    within(client.ready()).await.unwrap();
    let response = within(client.send_request(get_req("/stream")))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let mut body = response.into_body();
    let first = within(next_frame(&mut body)).await.unwrap();
    assert_eq!(first.into_data().unwrap(), "first");

    let sender = service.app().stream.lock().unwrap().take().unwrap();
    sender
        .send(Frame::data(Bytes::from("second")))
        .await
        .unwrap();
    let second = within(next_frame(&mut body)).await.unwrap();
    assert_eq!(second.into_data().unwrap(), "second");
    drop(sender);
    assert!(within(next_frame(&mut body)).await.is_none());
}

/// HTTP-BODY-1, HTTP-BODY-13: the request body streams to the app while its response streams
/// back (an echo answers each chunk before the next one is sent).
#[tokio::test]
async fn request_body_streams_to_the_app() {
    let addr = serve(Router::new().fallback_service(RgiService::new(TestApp::default()))).await;
    let mut client = h2(addr).await;
    let (tx, body) = channel_body();
    let req = Request::post("http://localhost/echo")
        .body(Body::new(body))
        .unwrap();
    within(client.ready()).await.unwrap();
    let response = within(client.send_request(req)).await.unwrap();
    let mut body = response.into_body();
    for chunk in ["one", "two", "three"] {
        tx.send(Frame::data(Bytes::from(chunk))).await.unwrap();
        let frame = within(next_frame(&mut body)).await.unwrap();
        assert_eq!(frame.into_data().unwrap(), chunk);
    }
    drop(tx);
    // What follows is the end, possibly after empty data frames (HTTP/2 may close a stream
    // with an empty DATA frame).
    let (rest, _) = within(collect(body)).await;
    assert!(rest.is_empty(), "{rest:?}");
}

/// HTTP-TRAIL-2, HTTP-TRAIL-4: over h2c, request trailers reach the app and its response
/// trailers reach the client.
#[tokio::test]
async fn trailers_pass_both_ways_over_h2c() {
    let addr = serve(Router::new().fallback_service(RgiService::new(TestApp::default()))).await;
    let mut client = h2(addr).await;
    let mut trailers = HeaderMap::new();
    trailers.insert("x-request-trailer", HeaderValue::from_static("sent"));
    let req = Request::post("http://localhost/trailers")
        .body(Body::new(FramesBody::new(&["payload"], Some(trailers))))
        .unwrap();
    within(client.ready()).await.unwrap();
    let response = within(client.send_request(req)).await.unwrap();
    assert_eq!(response.version(), Version::HTTP_2);
    let (data, trailers) = within(collect(response.into_body())).await;
    assert_eq!(data, "with trailers");
    assert_eq!(trailers.expect("response trailers")["x-seen"], "sent");
}

/// HTTP-TRAIL-2, HTTP-TRAIL-10: over HTTP/1.1 (chunked) trailers pass both ways too, when
/// announced in a `trailer` header — hyper's HTTP/1.1 encoder sends only announced trailers,
/// which is why `RgiService::server_info` does not advertise `ResponseTrailers`.
#[tokio::test]
async fn announced_trailers_pass_both_ways_over_http1() {
    let addr = serve(Router::new().fallback_service(RgiService::new(TestApp::default()))).await;
    let (mut client, _) = h1(addr).await;
    let mut trailers = HeaderMap::new();
    trailers.insert("x-request-trailer", HeaderValue::from_static("chunked"));
    let req = Request::post("/trailers")
        .header("host", "localhost")
        .header("trailer", "x-request-trailer")
        .header("te", "trailers")
        .body(Body::new(FramesBody::new(&["payload"], Some(trailers))))
        .unwrap();
    within(client.ready()).await.unwrap();
    let response = within(client.send_request(req)).await.unwrap();
    assert_eq!(response.version(), Version::HTTP_11);
    let (data, trailers) = within(collect(response.into_body())).await;
    assert_eq!(data, "with trailers");
    assert_eq!(trailers.expect("response trailers")["x-seen"], "chunked");
}

/// CORE-ERR-1, CORE-ERR-2, CORE-ERR-5: `Err` and a panic in `call` become `500` without any
/// detail, and the connection keeps serving.
#[tokio::test]
async fn errors_and_panics_become_500_without_details() {
    let addr = serve(Router::new().fallback_service(RgiService::new(TestApp::default()))).await;
    let (mut client, _) = h1(addr).await;
    for path in ["/error", "/panic"] {
        let (status, body) = send(&mut client, get_req(path)).await;
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR, "{path}");
        assert!(body.is_empty(), "{path}: {body:?}");
    }
    assert_eq!(send(&mut client, get_req("/")).await.0, StatusCode::OK);
}

/// CORE-ERR-4, HTTP-BODY-7: with a body limit, a too-long request body makes the app fail with
/// `LengthLimitExceeded`, answered `413`; a body within the limit passes.
#[tokio::test]
async fn body_limit_error_becomes_413() {
    let service = RgiService::new(TestApp::default()).with_body_limit(8);
    let addr = serve(Router::new().fallback_service(service)).await;
    let (mut client, _) = h1(addr).await;
    let post = |body: &'static str| {
        Request::post("/limited")
            .header("host", "localhost")
            .body(Body::from(body))
            .unwrap()
    };
    assert_eq!(
        send(&mut client, post("short")).await,
        (StatusCode::OK, Bytes::from("short"))
    );
    let (mut client, _) = h1(addr).await;
    assert_eq!(
        send(&mut client, post("far longer than eight bytes"))
            .await
            .0,
        StatusCode::PAYLOAD_TOO_LARGE
    );
}

/// HTTP-PATH-4, HTTP-PATH-10: nested with `Router::nest_service`, the app is reached under the
/// nesting path; with the feature `axum` it sees the whole target and the nesting path as its
/// `MountPrefix` (without it, axum's stripped URI and no prefix). Either way the application
/// path is the same.
#[tokio::test]
async fn nest_service_mounts_the_app() {
    let router = Router::new()
        .route("/health", get(|| async { "ok" }))
        .nest_service("/rgi", TestApp::default().into_service());
    let addr = serve(router).await;
    let (mut client, _) = h1(addr).await;
    assert_eq!(send(&mut client, get_req("/health")).await.1, "ok");
    assert_eq!(
        send(&mut client, get_req("/rgi/")).await.1,
        "Hello from RGI"
    );
    let (status, body) = send(&mut client, get_req("/rgi/where?q=1")).await;
    assert_eq!(status, StatusCode::OK);
    let expected = if cfg!(feature = "axum") {
        "/rgi/where?q=1|/rgi|/where"
    } else {
        "/where?q=1||/where"
    };
    assert_eq!(body, expected);
}

/// CORE-APP-1: hyper-util's own server hosts the service too (`TowerToHyperService`).
#[tokio::test]
async fn hyper_util_hosts_the_service() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let service = RgiService::new(TestApp::default());
    tokio::spawn(async move {
        let (stream, _) = listener.accept().await.unwrap();
        let service = hyper_util::service::TowerToHyperService::new(service);
        hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
            .serve_connection(TokioIo::new(stream), service)
            .await
    });
    let (mut client, _) = h1(addr).await;
    assert_eq!(send(&mut client, get_req("/")).await.1, "Hello from RGI");
}

fn plain_request(method: Method, uri: &str) -> Request<Body> {
    Request::builder()
        .method(method)
        .uri(uri)
        .body(Body::empty())
        .unwrap()
}

/// HTTP-DISC-1, HTTP-DISC-2, HTTP-DISC-4, CORE-CANCEL-2: the service settles the app's
/// `Disconnect` — `Completed` once the body was read to its end (also for a `HEAD` response
/// whose body the host never polls), `ClientGone` when the host drops the body early or drops
/// the call before the head.
#[tokio::test]
async fn disconnect_is_settled() {
    let app = TestApp::default();
    let (tx, mut outcomes) = mpsc::unbounded_channel();
    *app.outcomes.lock().unwrap() = Some(tx);
    let mut service = RgiService::new(app);

    // Read to the end: Completed.
    let response = within(service.call(plain_request(Method::GET, "/watch")))
        .await
        .unwrap();
    assert_eq!(collect(response.into_body()).await.0, "watched");
    assert_eq!(within(outcomes.recv()).await, Some(Outcome::Completed));

    // HEAD: the body is never polled, and the exchange is complete once the head is out.
    let response = within(service.call(plain_request(Method::HEAD, "/watch")))
        .await
        .unwrap();
    drop(response);
    assert_eq!(within(outcomes.recv()).await, Some(Outcome::Completed));

    // Body dropped before its end: ClientGone.
    let response = within(service.call(plain_request(Method::GET, "/watch")))
        .await
        .unwrap();
    drop(response);
    assert_eq!(within(outcomes.recv()).await, Some(Outcome::ClientGone));

    // The call dropped before the head: ClientGone, settled before the app's future is dropped.
    let observed = Arc::new(Mutex::new(None));
    let mut pending = RgiService::new(PendingApp {
        observed: observed.clone(),
    });
    {
        let mut future = pin!(pending.call(plain_request(Method::GET, "/")));
        let mut cx = Context::from_waker(Waker::noop());
        assert!(future.as_mut().poll(&mut cx).is_pending());
        assert_eq!(*observed.lock().unwrap(), None);
    }
    assert_eq!(*observed.lock().unwrap(), Some(Some(Outcome::ClientGone)));
}

/// An app whose call never completes; when its future is dropped it records the `Disconnect`
/// outcome it can see at that moment.
struct PendingApp {
    observed: Arc<Mutex<Option<Option<Outcome>>>>,
}

struct RecordOnDrop {
    signal: Disconnect,
    observed: Arc<Mutex<Option<Option<Outcome>>>>,
}

impl Drop for RecordOnDrop {
    fn drop(&mut self) {
        *self.observed.lock().unwrap() = Some(self.signal.outcome());
    }
}

impl App for PendingApp {
    type Body = Body;
    type Error = std::convert::Infallible;

    async fn call(&self, req: rgi::Request) -> Result<Response<Body>, Self::Error> {
        let _guard = RecordOnDrop {
            signal: req.extensions().get::<Disconnect>().cloned().unwrap(),
            observed: self.observed.clone(),
        };
        std::future::pending::<()>().await;
        Ok(Response::new(Body::empty()))
    }
}

/// A response body that fails, panics, or yields data after its trailers.
enum BadBody {
    Fails,
    Panics,
    DataAfterTrailers(u8),
}

impl http_body::Body for BadBody {
    type Data = Bytes;
    type Error = Failure;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Failure>>> {
        match &mut *self {
            BadBody::Fails => Poll::Ready(Some(Err(Failure))),
            BadBody::Panics => panic!("body panic"),
            BadBody::DataAfterTrailers(step) => {
                *step += 1;
                Poll::Ready(Some(Ok(if *step == 1 {
                    Frame::trailers(HeaderMap::new())
                } else {
                    Frame::data(Bytes::from("late"))
                })))
            }
        }
    }
}

struct BadBodyApp;

impl App for BadBodyApp {
    type Body = BadBody;
    type Error = std::convert::Infallible;

    async fn call(&self, req: rgi::Request) -> Result<Response<BadBody>, Self::Error> {
        Ok(Response::new(match req.uri().path() {
            "/fails" => BadBody::Fails,
            "/panics" => BadBody::Panics,
            _ => BadBody::DataAfterTrailers(0),
        }))
    }
}

/// CORE-ERR-3, HTTP-TRAIL-3, HTTP-DISC-6: a response body that fails, panics, or yields a frame
/// after its trailers makes the service's body fail (so the host aborts the response) and
/// settles `Disconnect` as `Aborted`.
#[tokio::test]
async fn failing_response_body_aborts() {
    let mut service = RgiService::new(BadBodyApp);
    for path in ["/fails", "/panics", "/late"] {
        let response = within(service.call(plain_request(Method::GET, path)))
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{path}");
        let mut body = response.into_body();
        let mut failed = false;
        for _ in 0..3 {
            match http_body_util::BodyExt::frame(&mut body).await {
                Some(Ok(_)) => continue,
                Some(Err(_)) => {
                    failed = true;
                    break;
                }
                None => break,
            }
        }
        assert!(failed, "{path}: the body ended cleanly");
    }
}

/// HTTP-DISC-6: the app sees `Aborted` when its body fails after the head.
#[tokio::test]
async fn failing_response_body_settles_aborted() {
    struct Watch(Arc<Mutex<Option<Disconnect>>>);
    impl App for Watch {
        type Body = BadBody;
        type Error = std::convert::Infallible;
        async fn call(&self, req: rgi::Request) -> Result<Response<BadBody>, Self::Error> {
            *self.0.lock().unwrap() = req.extensions().get::<Disconnect>().cloned();
            Ok(Response::new(BadBody::Fails))
        }
    }
    let seen = Arc::new(Mutex::new(None));
    let mut service = RgiService::new(Watch(seen.clone()));
    let response = within(service.call(plain_request(Method::GET, "/")))
        .await
        .unwrap();
    let mut body = response.into_body();
    assert!(matches!(
        http_body_util::BodyExt::frame(&mut body).await,
        Some(Err(_))
    ));
    let signal = seen.lock().unwrap().clone().unwrap();
    assert_eq!(signal.outcome(), Some(Outcome::Aborted));
}

/// LIFE-START-1, LIFE-START-4, LIFE-SHUT-1, EXT-CAP-2: `start` runs the startup with a truthful
/// `ServerInfo` (request trailers; upgrades only with the feature `hyper`; no response
/// trailers, WebSockets or early hints), and `shutdown` runs the app's shutdown exactly once.
#[tokio::test]
async fn start_and_shutdown_around_the_host() {
    struct Config(Arc<Mutex<Option<rgi::ServerInfo>>>);
    impl rgi::Lifespan for Config {
        type App = TestApp;
        async fn startup(self, server: rgi::ServerInfo) -> Result<TestApp, rgi::StartupError> {
            *self.0.lock().unwrap() = Some(server);
            Ok(TestApp::default())
        }
    }
    let seen = Arc::new(Mutex::new(None));
    let service = RgiService::start(Config(seen.clone())).await.unwrap();
    let info = seen.lock().unwrap().clone().unwrap();
    assert_eq!(info.name(), "rgi-tower");
    assert_eq!(info.spec_version(), rgi::SPEC_VERSION);
    assert!(info.capabilities().contains(Capability::RequestTrailers));
    assert_eq!(
        info.capabilities().contains(Capability::Upgrade),
        cfg!(feature = "hyper")
    );
    for absent in [
        Capability::ResponseTrailers,
        Capability::WebSocket,
        Capability::EarlyHints,
    ] {
        assert!(!info.capabilities().contains(absent), "{absent:?}");
    }

    let clone = service.clone();
    service.shutdown().await;
    clone.shutdown().await;
    assert_eq!(service.app().shutdowns.load(Ordering::SeqCst), 1);
}

/// LIFE-START-2: a startup error comes back from `start`.
#[tokio::test]
async fn startup_error_is_returned() {
    struct Broken;
    impl rgi::Lifespan for Broken {
        type App = TestApp;
        async fn startup(self, _: rgi::ServerInfo) -> Result<TestApp, rgi::StartupError> {
            Err(rgi::StartupError::new("no config"))
        }
    }
    let error = RgiService::start(Broken).await.unwrap_err();
    assert_eq!(error.message(), "no config");
}

/// EXT-CAP-1, EXT-CAP-7: a tower host offers no RGI WebSockets, so even a WebSocket handshake
/// carries no `WebSocketUpgrade`; a raw `OnUpgrade` is offered only with the feature `hyper`
/// (which advertises `Upgrade`).
#[tokio::test]
async fn upgrades_are_not_offered() {
    let addr = serve(Router::new().fallback_service(RgiService::new(TestApp::default()))).await;
    let (mut client, _) = h1(addr).await;
    let req = Request::get("/upgrade-offers")
        .header("host", "localhost")
        .header("connection", "upgrade")
        .header("upgrade", "websocket")
        .header("sec-websocket-version", "13")
        .header("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ==")
        .body(Body::empty())
        .unwrap();
    let expected = if cfg!(feature = "hyper") {
        "false true"
    } else {
        "false false"
    };
    assert_eq!(send(&mut client, req).await.1, expected);
}

/// CORE-ERR-6, HTTP-RESP-2: a `101`, or a `2xx` to a CONNECT, that is not an accepted upgrade
/// offer is answered `500`.
#[tokio::test]
async fn switch_without_accept_becomes_500() {
    let mut service = RgiService::new(TestApp::default());
    let response = within(service.call(plain_request(Method::GET, "/switch")))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
    let mut connect = plain_request(Method::CONNECT, "/");
    *connect.version_mut() = Version::HTTP_2;
    let response = within(service.call(connect)).await.unwrap();
    assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
    // An ordinary answer to CONNECT (here 404) passes.
    let mut connect = plain_request(Method::CONNECT, "/nowhere");
    *connect.version_mut() = Version::HTTP_2;
    let response = within(service.call(connect)).await.unwrap();
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
}

/// UPGRADE-RAW-1, UPGRADE-RAW-3, UPGRADE-RAW-4: with the feature `hyper`, an RGI app accepts a
/// raw upgrade on `axum::serve`; the client gets `101` with `Upgrade: echo/1` and talks to the
/// app's handler over the upgraded connection.
#[cfg(feature = "hyper")]
#[tokio::test]
async fn raw_upgrade_through_axum_serve() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let addr = serve(Router::new().fallback_service(RgiService::new(TestApp::default()))).await;
    let (mut client, _) = h1(addr).await;
    let req = Request::get("/raw")
        .header("host", "localhost")
        .header("connection", "upgrade")
        .header("upgrade", "echo/1")
        .body(Body::empty())
        .unwrap();
    within(client.ready()).await.unwrap();
    let response = within(client.send_request(req)).await.unwrap();
    assert_eq!(response.status(), StatusCode::SWITCHING_PROTOCOLS);
    assert_eq!(response.headers()["upgrade"], "echo/1");
    let upgraded = within(hyper::upgrade::on(response)).await.unwrap();
    let mut io = TokioIo::new(upgraded);
    io.write_all(b"ping").await.unwrap();
    let mut buf = [0u8; 4];
    within(io.read_exact(&mut buf)).await.unwrap();
    assert_eq!(&buf, b"ping");
}

/// UPGRADE-RAW-2: an upgrade to a protocol the client did not ask for is refused with a typed
/// error (the app's `Err`, answered `500`).
#[cfg(feature = "hyper")]
#[tokio::test]
async fn raw_upgrade_to_another_protocol_is_refused() {
    let addr = serve(Router::new().fallback_service(RgiService::new(TestApp::default()))).await;
    let (mut client, _) = h1(addr).await;
    let req = Request::get("/raw")
        .header("host", "localhost")
        .header("connection", "upgrade")
        .header("upgrade", "other/2")
        .body(Body::empty())
        .unwrap();
    assert_eq!(
        send(&mut client, req).await.0,
        StatusCode::INTERNAL_SERVER_ERROR
    );
}

/// EXT-CAP-4, HTTP-CONN-7: behind an RGI server (as when an axum router runs on one and nests
/// the app), the server's `ConnectionInfo` and `Disconnect` reach the app unchanged.
#[tokio::test]
async fn server_extensions_are_kept() {
    let mut service = RgiService::new(TestApp::default());
    let mut req = plain_request(Method::GET, "/peer");
    let info = rgi::ConnectionInfo::new(
        rgi::SocketAddress::Tcp("127.0.0.1:80".parse().unwrap()),
        rgi::SocketAddress::Tcp("198.51.100.4:4000".parse().unwrap()),
        rgi::Scheme::Https,
    );
    let (signal, notifier) = Disconnect::pair();
    req.extensions_mut().insert(info);
    req.extensions_mut().insert(signal.clone());
    let response = within(service.call(req)).await.unwrap();
    assert_eq!(
        collect(response.into_body()).await.0,
        "198.51.100.4:4000 https"
    );
    // The service did not settle the outer server's signal: that is the outer server's job.
    assert_eq!(signal.outcome(), None);
    notifier.completed();
}

/// HTTP-PATH-4, HTTP-PATH-10, EXT-CAP-4: the round trip — an axum router run as an RGI app
/// under a server mount prefix, nesting an RGI app — gives the inner app the whole target and
/// the combined prefix.
#[cfg(feature = "axum")]
#[tokio::test]
async fn round_trip_keeps_the_mount_invariant() {
    let router = Router::new().nest_service("/rgi", RgiService::new(TestApp::default()));
    let outer = rgi_tower::TowerApp::new(router);
    let (mut req, _n) = support::rgi_request("GET", "/api/rgi/where?q=2", "");
    req.extensions_mut()
        .insert(rgi::MountPrefix::new("/api").unwrap());
    let response = within(outer.call(req)).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        collect(response.into_body()).await.0,
        "/api/rgi/where?q=2|/api/rgi|/where"
    );
}

/// CORE-ERR-4, HTTP-BODY-7: an RGI server's body limit still yields `413` for an RGI app
/// nested in an axum router that runs on that server, although axum wraps the body (and its
/// errors) in its own types on the way.
#[tokio::test]
async fn nested_app_maps_the_outer_body_limit_to_413() {
    let router = Router::new().nest_service("/rgi", RgiService::new(TestApp::default()));
    let outer = rgi_tower::TowerApp::new(router);
    let body = Body::from("longer than four bytes").with_limit(Some(4));
    let (req, _n) = support::rgi_request("POST", "/rgi/limited", body);
    let response = within(outer.call(req)).await.unwrap();
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
}

/// CORE-ERR-4: `Disconnected` from the body is not an app failure: the signal says
/// `ClientGone`.
#[tokio::test]
async fn disconnected_body_error_reports_client_gone() {
    struct Gone(Arc<Mutex<Option<Disconnect>>>);
    impl App for Gone {
        type Body = Body;
        type Error = BodyError;
        async fn call(&self, req: rgi::Request) -> Result<Response<Body>, BodyError> {
            *self.0.lock().unwrap() = req.extensions().get::<Disconnect>().cloned();
            Err(BodyError::Disconnected)
        }
    }
    let seen = Arc::new(Mutex::new(None));
    let mut service = RgiService::new(Gone(seen.clone()));
    let _response = within(service.call(plain_request(Method::POST, "/")))
        .await
        .unwrap();
    let signal = seen.lock().unwrap().clone().unwrap();
    assert_eq!(signal.outcome(), Some(Outcome::ClientGone));
}
