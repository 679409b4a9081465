//! tower → RGI: an axum `Router` (and hand-written tower services) driven through `TowerApp`
//! with requests built the way an RGI server builds them.

mod support;

use std::convert::Infallible;
use std::future::Future;
use std::pin::pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};

use axum::Router;
use axum::extract::ws::WebSocketUpgrade;
use axum::extract::{Json, Path, State};
use axum::routing::{any, get, post};
use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Response, StatusCode};
use http_body::Frame;
use rgi::{App, Body, Lifespan, MountPrefix, ServerInfo, StartupError};
use rgi_tower::{ServiceExt as _, TowerApp, TowerLifespan};
use serde::{Deserialize, Serialize};
use support::{FramesBody, channel_body, collect, next_frame, rgi_request, within};
use tower_service::Service;

#[derive(Clone, Default)]
struct AppState {
    hits: Arc<AtomicUsize>,
}

#[derive(Deserialize)]
struct Greet {
    name: String,
}

#[derive(Serialize, Deserialize, Debug, PartialEq)]
struct Greeting {
    message: String,
}

async fn trailers_echo(body: axum::body::Body) -> Response<FramesBody> {
    let (data, trailers) = collect(body).await;
    let mut out = HeaderMap::new();
    let seen = trailers
        .and_then(|t| t.get("x-request-trailer").cloned())
        .unwrap_or_else(|| HeaderValue::from_static("none"));
    out.insert("x-seen", seen);
    out.insert("x-length", HeaderValue::from(data.len()));
    Response::new(FramesBody::new(&["trailers", " follow"], Some(out)))
}

fn router() -> Router {
    Router::new()
        .route("/", get(|| async { "Hello, World!" }))
        .route(
            "/users/{id}",
            get(|Path(id): Path<u32>| async move { format!("user {id}") }),
        )
        .route(
            "/greet",
            post(|Json(greet): Json<Greet>| async move {
                Json(Greeting {
                    message: format!("Hello {}", greet.name),
                })
            }),
        )
        .route(
            "/hits",
            get(|State(state): State<AppState>| async move {
                (state.hits.fetch_add(1, Ordering::SeqCst) + 1).to_string()
            }),
        )
        .route(
            "/echo",
            post(|body: axum::body::Body| async move { Response::new(body) }),
        )
        .route("/trailers", post(trailers_echo))
        .route(
            "/ws",
            any(|ws: WebSocketUpgrade| async move { ws.on_upgrade(|_socket| async {}) }),
        )
        .with_state(AppState::default())
}

async fn call(
    app: &TowerApp<Router>,
    method: &str,
    uri: &str,
    body: &'static str,
) -> (StatusCode, Bytes) {
    let (req, _notifier) = rgi_request(method, uri, body);
    let response = within(app.call(req)).await.unwrap();
    let status = response.status();
    (status, collect(response.into_body()).await.0)
}

/// CORE-APP-1, HTTP-RESP-1: each request reaches the router once and its one response comes
/// back untouched — routes and path parameters work on RGI requests.
#[tokio::test]
async fn router_answers_with_path_parameters() {
    let app = TowerApp::new(router());
    assert_eq!(
        call(&app, "GET", "/", "").await,
        (StatusCode::OK, Bytes::from("Hello, World!"))
    );
    assert_eq!(
        call(&app, "GET", "/users/42", "").await,
        (StatusCode::OK, Bytes::from("user 42"))
    );
    assert_eq!(
        call(&app, "GET", "/nope", "").await.0,
        StatusCode::NOT_FOUND
    );
}

/// CORE-ERR-8: an extractor rejection is an ordinary response of the framework (400), not an
/// error of the app.
#[tokio::test]
async fn extractor_rejection_is_an_ordinary_response() {
    let app = TowerApp::new(router());
    let (status, body) = call(&app, "GET", "/users/abc", "").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(!body.is_empty());
}

/// HTTP-BODY-1, HTTP-RESP-1: JSON in and out through the rgi body.
#[tokio::test]
async fn json_in_and_out() {
    let app = TowerApp::new(router());
    let (mut req, _n) = rgi_request("POST", "/greet", r#"{"name":"RGI"}"#);
    req.headers_mut().insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    let response = within(app.call(req)).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let (bytes, _) = collect(response.into_body()).await;
    let greeting: Greeting = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(
        greeting,
        Greeting {
            message: "Hello RGI".into()
        }
    );

    // Without the content type axum's `Json` rejects the request (415).
    let (status, _) = call(&app, "POST", "/greet", r#"{"name":"RGI"}"#).await;
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
}

/// CORE-APP-2: concurrent calls share the router's state.
#[tokio::test]
async fn concurrent_calls_share_state() {
    let app = Arc::new(TowerApp::new(router()));
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..16 {
        let app = app.clone();
        tasks.spawn(async move { call(&app, "GET", "/hits", "").await.0 });
    }
    while let Some(status) = within(tasks.join_next()).await {
        assert_eq!(status.unwrap(), StatusCode::OK);
    }
    assert_eq!(call(&app, "GET", "/hits", "").await.1, Bytes::from("17"));
}

/// HTTP-BODY-1, HTTP-FRAME-12: both bodies stream through the adapter frame by frame — the
/// first response frame arrives before the second request frame is even sent.
#[tokio::test]
async fn bodies_stream_both_ways_without_buffering() {
    let app = TowerApp::new(router());
    let (tx, body) = channel_body();
    let (req, _n) = rgi_request("POST", "/echo", Body::new(body));
    let response = within(app.call(req)).await.unwrap();
    let mut body = response.into_body();

    tx.send(Frame::data(Bytes::from("first"))).await.unwrap();
    let frame = within(next_frame(&mut body)).await.unwrap();
    assert_eq!(frame.into_data().unwrap(), "first");

    tx.send(Frame::data(Bytes::from("second"))).await.unwrap();
    let frame = within(next_frame(&mut body)).await.unwrap();
    assert_eq!(frame.into_data().unwrap(), "second");

    drop(tx);
    assert!(within(next_frame(&mut body)).await.is_none());
}

/// HTTP-TRAIL-1, HTTP-TRAIL-2, HTTP-TRAIL-4: request trailers reach the service as the last
/// frame of the body, and the service's response trailers come back as the last frame.
#[tokio::test]
async fn trailers_pass_through_both_ways() {
    let app = TowerApp::new(router());
    let (tx, body) = channel_body();
    let (req, _n) = rgi_request("POST", "/trailers", Body::new(body));
    let call = tokio::spawn(async move { app.call(req).await });

    tx.send(Frame::data(Bytes::from("12345"))).await.unwrap();
    let mut trailers = HeaderMap::new();
    trailers.insert("x-request-trailer", HeaderValue::from_static("present"));
    tx.send(Frame::trailers(trailers)).await.unwrap();
    drop(tx);

    let response = within(call).await.unwrap().unwrap();
    let (data, trailers) = collect(response.into_body()).await;
    assert_eq!(data, "trailers follow");
    let trailers = trailers.expect("response trailers");
    assert_eq!(trailers["x-seen"], "present");
    assert_eq!(trailers["x-length"], "5");
}

/// A tower service that is not ready until `ready` is set.
#[derive(Clone)]
struct Gate {
    ready: Arc<AtomicBool>,
    waiting: Arc<Mutex<Option<Waker>>>,
    calls: Arc<AtomicUsize>,
}

impl Gate {
    fn new() -> Self {
        Self {
            ready: Arc::new(AtomicBool::new(false)),
            waiting: Arc::new(Mutex::new(None)),
            calls: Arc::new(AtomicUsize::new(0)),
        }
    }

    fn open(&self) {
        self.ready.store(true, Ordering::SeqCst);
        if let Some(waker) = self.waiting.lock().unwrap().take() {
            waker.wake();
        }
    }
}

impl Service<rgi::Request> for Gate {
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = std::future::Ready<Result<Response<Body>, Infallible>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        if self.ready.load(Ordering::SeqCst) {
            Poll::Ready(Ok(()))
        } else {
            *self.waiting.lock().unwrap() = Some(cx.waker().clone());
            Poll::Pending
        }
    }

    fn call(&mut self, _req: rgi::Request) -> Self::Future {
        assert!(
            self.ready.load(Ordering::SeqCst),
            "called before it was ready"
        );
        self.calls.fetch_add(1, Ordering::SeqCst);
        std::future::ready(Ok(Response::new(Body::from("open"))))
    }
}

/// CORE-APP-1: the service is called exactly once per request, and only once it is ready
/// (readiness is honoured, checked by polling by hand: no timing involved).
#[tokio::test]
async fn readiness_is_honoured() {
    let gate = Gate::new();
    let app = gate.clone().into_rgi();
    let (req, _n) = rgi_request("GET", "/", "");
    let mut future = pin!(app.call(req));
    let mut cx = Context::from_waker(Waker::noop());

    for _ in 0..3 {
        assert!(future.as_mut().poll(&mut cx).is_pending());
    }
    assert_eq!(gate.calls.load(Ordering::SeqCst), 0);

    gate.open();
    let Poll::Ready(Ok(response)) = future.as_mut().poll(&mut cx) else {
        panic!("the call did not complete once the service was ready");
    };
    assert_eq!(gate.calls.load(Ordering::SeqCst), 1);
    assert_eq!(collect(response.into_body()).await.0, "open");
}

/// The call future keeps the request once: a server keeps a slot of this future's size for
/// every connection and moves it for every request.
#[test]
fn call_future_holds_the_request_once() {
    let app = Gate::new().into_rgi();
    let (req, _n) = rgi_request("GET", "/", "");
    let future = app.call(req);
    let request = std::mem::size_of::<rgi::Request>();
    let size = std::mem::size_of_val(&future);
    assert!(
        size < request + std::mem::size_of::<Gate>() + 96,
        "call future {size} B for a {request} B request"
    );
}

#[derive(Debug, thiserror::Error)]
#[error("backend unavailable")]
struct Unavailable;

/// A service that fails in `poll_ready` or in `call`.
#[derive(Clone)]
struct Failing {
    in_ready: bool,
}

impl Service<rgi::Request> for Failing {
    type Response = Response<Body>;
    type Error = Unavailable;
    type Future = std::future::Ready<Result<Response<Body>, Unavailable>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Unavailable>> {
        if self.in_ready {
            Poll::Ready(Err(Unavailable))
        } else {
            Poll::Ready(Ok(()))
        }
    }

    fn call(&mut self, _req: rgi::Request) -> Self::Future {
        std::future::ready(Err(Unavailable))
    }
}

/// CORE-ERR-1: an error of the service, from `poll_ready` or from `call`, is the app's `Err`
/// (which the server answers with 500), with the service's error type kept.
#[tokio::test]
async fn service_errors_become_app_errors() {
    for in_ready in [true, false] {
        let app = TowerApp::new(Failing { in_ready });
        let (req, _n) = rgi_request("GET", "/", "");
        let error = within(app.call(req)).await.unwrap_err();
        assert_eq!(error.to_string(), "backend unavailable");
    }
}

/// EXT-NS-2, EXT-NS-4: on a server that provides no `hyper::upgrade::OnUpgrade`, an axum
/// WebSocket route fails at once with a clear `426`, over HTTP/1.1 and over HTTP/2 extended
/// CONNECT — nothing waits for an upgrade that cannot happen.
#[tokio::test]
async fn websocket_route_without_hyper_upgrade_fails_clearly() {
    let app = TowerApp::new(router());

    let (mut req, _n) = rgi_request("GET", "/ws", "");
    let headers = req.headers_mut();
    headers.insert("connection", HeaderValue::from_static("upgrade"));
    headers.insert("upgrade", HeaderValue::from_static("websocket"));
    headers.insert("sec-websocket-version", HeaderValue::from_static("13"));
    headers.insert(
        "sec-websocket-key",
        HeaderValue::from_static("dGhlIHNhbXBsZSBub25jZQ=="),
    );
    let response = within(app.call(req)).await.unwrap();
    assert_eq!(response.status(), StatusCode::UPGRADE_REQUIRED);
    let (body, _) = collect(response.into_body()).await;
    assert!(
        String::from_utf8_lossy(&body).contains("upgrade"),
        "{body:?}"
    );

    let (mut req, _n) = rgi_request("CONNECT", "/ws", "");
    *req.version_mut() = http::Version::HTTP_2;
    req.extensions_mut()
        .insert(hyper::ext::Protocol::from_static("websocket"));
    req.headers_mut()
        .insert("sec-websocket-version", HeaderValue::from_static("13"));
    let response = within(app.call(req)).await.unwrap();
    assert_eq!(response.status(), StatusCode::UPGRADE_REQUIRED);
}

/// LIFE-START-1, LIFE-START-2, LIFE-SHUT-1: the router is built at startup from the
/// `ServerInfo`, a startup error is reported, and the shutdown hook runs exactly once.
#[tokio::test]
async fn lifespan_builds_the_router_and_runs_the_shutdown_hook_once() {
    let shutdowns = Arc::new(AtomicUsize::new(0));
    let counter = shutdowns.clone();
    let lifespan = TowerLifespan::new(|server: ServerInfo| async move {
        let name = server.name().to_owned();
        Ok::<_, StartupError>(Router::new().route("/", get(move || async move { name })))
    })
    .on_shutdown(move || async move {
        counter.fetch_add(1, Ordering::SeqCst);
    });
    let app = lifespan
        .startup(ServerInfo::new("test-server", "1.0"))
        .await
        .unwrap();
    let (req, _n) = rgi_request("GET", "/", "");
    let response = within(app.call(req)).await.unwrap();
    assert_eq!(collect(response.into_body()).await.0, "test-server");

    app.shutdown().await;
    app.shutdown().await;
    assert_eq!(shutdowns.load(Ordering::SeqCst), 1);

    let failing = TowerLifespan::new(|_server: ServerInfo| async move {
        Err::<Router, _>(StartupError::new("no database"))
    });
    let error = failing
        .startup(ServerInfo::new("test-server", "1.0"))
        .await
        .unwrap_err();
    assert_eq!(error.message(), "no database");
}

/// HTTP-PATH-4, HTTP-PATH-8: under a server mount prefix the router matches the application
/// path (the adapter strips the prefix, keeping the query) and no longer sees a `MountPrefix`
/// whose invariant would not hold.
#[tokio::test]
async fn mount_prefix_is_stripped_for_the_service() {
    let router = Router::new()
        .route(
            "/users/{id}",
            get(|Path(id): Path<u32>, uri: http::Uri| async move { format!("user {id} at {uri}") }),
        )
        .route(
            "/prefix",
            get(|req: http::Request<axum::body::Body>| async move {
                req.extensions().get::<MountPrefix>().is_some().to_string()
            }),
        );
    let app = TowerApp::new(router);

    let (mut req, _n) = rgi_request("GET", "/api/users/7?x=1", "");
    req.extensions_mut()
        .insert(MountPrefix::new("/api").unwrap());
    let response = within(app.call(req)).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        collect(response.into_body()).await.0,
        "user 7 at /users/7?x=1"
    );

    let (mut req, _n) = rgi_request("GET", "/api/prefix", "");
    req.extensions_mut()
        .insert(MountPrefix::new("/api").unwrap());
    let response = within(app.call(req)).await.unwrap();
    assert_eq!(collect(response.into_body()).await.0, "false");
}

/// EXT-CAP-4: extensions the adapter does not handle reach the service unchanged, the RGI ones
/// included.
#[tokio::test]
async fn extensions_pass_through() {
    let router = Router::new().route(
        "/",
        get(|req: http::Request<axum::body::Body>| async move {
            let ext = req.extensions();
            format!(
                "{} {}",
                ext.get::<rgi::ConnectionInfo>()
                    .map(|i| i.peer().to_string())
                    .unwrap_or_default(),
                ext.get::<rgi::Disconnect>().is_some()
            )
        }),
    );
    let app = TowerApp::new(router);
    let (req, _n) = rgi_request("GET", "/", "");
    let response = within(app.call(req)).await.unwrap();
    assert_eq!(
        collect(response.into_body()).await.0,
        "192.0.2.7:50123 true"
    );
}

/// HTTP-CONN-1, HTTP-CONN-8: with the feature `axum`, axum's `ConnectInfo<SocketAddr>` carries
/// the RGI peer, and `OriginalUri` the whole target under a mount prefix.
#[cfg(feature = "axum")]
#[tokio::test]
async fn axum_connect_info_and_original_uri_come_from_rgi() {
    use axum::extract::{ConnectInfo, OriginalUri};
    use std::net::SocketAddr;

    let router = Router::new().route(
        "/who",
        get(|ConnectInfo(addr): ConnectInfo<SocketAddr>, OriginalUri(original): OriginalUri| async move {
            format!("{addr} {original}")
        }),
    );
    let app = TowerApp::new(router);
    let (mut req, _n) = rgi_request("GET", "/api/who", "");
    req.extensions_mut()
        .insert(MountPrefix::new("/api").unwrap());
    let response = within(app.call(req)).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        collect(response.into_body()).await.0,
        "192.0.2.7:50123 /api/who"
    );
}

/// HTTP-CONN-1, HTTP-CONN-2: with the feature `tonic`, `tonic::Request::remote_addr` and
/// tonic's `TcpConnectInfo` carry the RGI peer and local addresses.
#[cfg(feature = "tonic")]
#[tokio::test]
async fn tonic_connect_info_comes_from_rgi() {
    #[derive(Clone)]
    struct RemoteAddr;

    impl Service<rgi::Request> for RemoteAddr {
        type Response = Response<Body>;
        type Error = Infallible;
        type Future = std::future::Ready<Result<Response<Body>, Infallible>>;

        fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
            Poll::Ready(Ok(()))
        }

        fn call(&mut self, req: rgi::Request) -> Self::Future {
            let info = req
                .extensions()
                .get::<tonic::transport::server::TcpConnectInfo>()
                .cloned();
            let request = tonic::Request::from_http(req);
            let text = format!(
                "{:?} {:?}",
                request.remote_addr(),
                info.and_then(|info| info.local_addr())
            );
            std::future::ready(Ok(Response::new(Body::from(text))))
        }
    }

    let app = TowerApp::new(RemoteAddr);
    let (req, _n) = rgi_request("GET", "/", "");
    let response = within(app.call(req)).await.unwrap();
    assert_eq!(
        collect(response.into_body()).await.0,
        "Some(192.0.2.7:50123) Some(127.0.0.1:8080)"
    );
}
