//! The `axum_app` example: a realistic axum [`Router`] served by rgi-server through
//! [`rgi_tower::TowerApp`] — the framework runs unchanged on an RGI server.
//!
//! | Request | Response |
//! |---|---|
//! | `GET /` | `200 text/plain; charset=utf-8` `Hello, World!` (the same bytes as the `hello` example) |
//! | `POST /echo` | `200` with the request body (and its trailers) streamed back, `Content-Type` echoed, as `hello` does; a body over the server's limit gets `413` when its length is declared |
//! | `GET /stream?bytes=N` | `200 application/octet-stream` with `N` bytes (`x`) in 64 KiB chunks, as `hello` (`N` ≤ 16 GiB, else `400`) |
//! | `GET /users` | `200` JSON array of the stored users |
//! | `POST /users` | JSON `{"name": ...}` in, `201` JSON `{"id": ..., "name": ...}` out with a `Location` (bad JSON `400`, wrong shape `422`, no JSON content type `415`) |
//! | `GET /users/{id}` | `200` JSON user, `404` JSON error, `400` when `id` is not a number |
//! | `DELETE /users/{id}` | `204`, or `404` |
//! | `GET /hits` | `200` JSON `{"hits": N}`: a shared counter of the calls to this route |
//! | `POST /upload` | `200` JSON `{"bytes": N, "checksum": C}` of the body (buffered; over [`UPLOAD_LIMIT`]: `413` from axum's `DefaultBodyLimit`) |
//! | `GET /slow?ms=N` | `200` `done` after `N` ms (at most 60 s); past the timeout layer's limit (default [`TIMEOUT`]): `503` |
//! | `GET /panic` | the handler panics; the catch-panic layer answers `500` and the connection lives on |
//! | `GET /ws` | WebSocket echo: every text and binary message comes back unchanged |
//! | anything else | axum's `404` (or `405` with `Allow` for a known path) |
//!
//! Layers (tower-http): request tracing (`TraceLayer`, at `debug` level: run with
//! `--log-level debug` to see it), gzip compression negotiated by `Accept-Encoding`, a timeout
//! and a catch-panic layer.
//!
//! The shared state ([`AppState`]: an in-memory user store and a hit counter) lives in an
//! `Arc`, cloned into every request by axum, as in any axum application.
//!
//! [`router`] is public so that benchmarks and tests can serve the very same router with
//! `axum::serve` and compare.
//!
//! ```no_run
//! fn main() -> std::process::ExitCode {
//!     rgi_server::run(rgi_tower::TowerApp::new(rgi_examples::axum_app::router()))
//! }
//! ```
//!
//! WebSockets: axum's `WebSocketUpgrade` uses hyper's own upgrade handle, which rgi-server
//! leaves in the request as a compatibility extension (see `rgi-tower`'s documentation). The
//! server's WebSocket rules do not apply to such a connection, and the server does not close it
//! at shutdown as it closes its own WebSocket sessions (`1001`). So [`app`] does it in its
//! shutdown hook: [`AppState::close_websockets`] tells every handler to send a close frame
//! with `1001 Going Away`.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade, close_code};
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post};
use axum::{Json, Router};
use http_body_util::BodyExt as _;
use serde::{Deserialize, Serialize};
use tokio::sync::watch;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::compression::CompressionLayer;
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;

use crate::hello;

/// The largest body `POST /upload` buffers (axum's `DefaultBodyLimit`): 4 MiB.
pub const UPLOAD_LIMIT: usize = 4 << 20;

/// How long a handler may take before the timeout layer answers `503`: 10 s.
pub const TIMEOUT: Duration = Duration::from_secs(10);

/// The longest `GET /slow?ms=N` sleep: 60 s.
pub const SLOW_MAX_MS: u64 = 60_000;

/// The largest WebSocket message `/ws` accepts (rgi-server's default for its own WebSockets).
pub const WS_MAX_MESSAGE: usize = 16 << 20;

/// How long the shutdown hook waits for the WebSocket handlers to send their close frames.
pub const WS_CLOSE_GRACE: Duration = Duration::from_secs(5);

/// The application's shared state: the user store, the hit counter, and the signal that tells
/// the WebSocket handlers to close.
#[derive(Debug)]
pub struct AppState {
    users: Mutex<BTreeMap<u64, User>>,
    next_id: AtomicU64,
    hits: AtomicU64,
    closing: watch::Sender<bool>,
}

impl Default for AppState {
    fn default() -> Self {
        Self {
            users: Mutex::default(),
            next_id: AtomicU64::new(0),
            hits: AtomicU64::new(0),
            closing: watch::Sender::new(false),
        }
    }
}

impl AppState {
    /// Tells every open WebSocket to close with `1001 Going Away`, and waits (at most `bound`)
    /// until their handlers are done. Later sockets are closed as soon as they open.
    ///
    /// axum's WebSockets run on hyper's upgrade handle, outside the server's own WebSocket
    /// sessions, so the server does not close them at shutdown (`WS-CLOSE-7` covers only its
    /// own sessions): the application's shutdown hook does it.
    pub async fn close_websockets(&self, bound: Duration) {
        self.closing.send_replace(true);
        let _ = tokio::time::timeout(bound, self.closing.closed()).await;
    }
}

/// A stored user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    /// Assigned by the store, from 1.
    pub id: u64,
    /// As given at creation.
    pub name: String,
}

/// The body of `POST /users`.
#[derive(Debug, Clone, Deserialize)]
pub struct NewUser {
    /// The new user's name.
    pub name: String,
}

/// The body of every JSON error response.
#[derive(Debug, Clone, Serialize)]
struct ErrorBody {
    error: String,
}

/// The body of `GET /hits`.
#[derive(Debug, Clone, Serialize)]
struct Hits {
    hits: u64,
}

/// The body of `POST /upload`.
#[derive(Debug, Clone, Serialize)]
struct UploadSummary {
    bytes: usize,
    checksum: u32,
}

/// The query of `GET /slow`.
#[derive(Debug, Clone, Deserialize)]
struct SlowParams {
    ms: u64,
}

/// The router with fresh state and the default timeout ([`TIMEOUT`]).
pub fn router() -> Router {
    router_with_timeout(TIMEOUT)
}

/// The router with fresh state, with `timeout` as the timeout layer's limit.
pub fn router_with_timeout(timeout: Duration) -> Router {
    router_with(Arc::new(AppState::default()), timeout)
}

/// The router on the given state, with `timeout` as the timeout layer's limit.
pub fn router_with(state: Arc<AppState>, timeout: Duration) -> Router {
    Router::new()
        .route("/", get(|| async { "Hello, World!" }))
        .route("/echo", post(echo))
        .route("/stream", get(stream))
        .route("/users", get(list_users).post(create_user))
        .route("/users/{id}", get(get_user).delete(delete_user))
        .route("/hits", get(hits))
        .route(
            "/upload",
            post(upload).layer(DefaultBodyLimit::max(UPLOAD_LIMIT)),
        )
        .route("/slow", get(slow))
        .route("/panic", get(panic))
        .route("/ws", any(websocket))
        .with_state(state)
        .layer(CompressionLayer::new())
        .layer(TimeoutLayer::with_status_code(
            StatusCode::SERVICE_UNAVAILABLE,
            timeout,
        ))
        .layer(CatchPanicLayer::new())
        .layer(TraceLayer::new_for_http())
}

/// The router as an RGI application, whose shutdown closes the open WebSockets
/// ([`AppState::close_websockets`]).
pub fn app() -> rgi_tower::TowerApp<Router> {
    let state = Arc::new(AppState::default());
    let router = router_with(state.clone(), TIMEOUT);
    rgi_tower::TowerApp::new(router).on_shutdown(move || async move {
        state.close_websockets(WS_CLOSE_GRACE).await;
    })
}

/// Streams the request body back, as `hello` does.
///
/// The first frame is read before the head is returned, so that a body whose declared length
/// is over the server's limit is answered `413` instead of starting an echo that would fail.
async fn echo(headers: HeaderMap, body: Body) -> Response {
    let mut body = body;
    let first = match body.frame().await.transpose() {
        Ok(first) => first,
        Err(error) => return body_error_response(&error),
    };
    let mut response = Response::new(Body::new(crate::hello::Prepend { first, rest: body }));
    if let Some(value) = headers.get(header::CONTENT_TYPE) {
        response
            .headers_mut()
            .insert(header::CONTENT_TYPE, value.clone());
    }
    // Request trailers come back as response trailers: announce the same names (HTTP/1.1
    // sends only announced trailers).
    for value in headers.get_all(header::TRAILER) {
        response
            .headers_mut()
            .append(header::TRAILER, value.clone());
    }
    response
}

/// The answer to a request body that failed: the status the RGI server's error says (`413`
/// over its limit, `408` too slow, `400` malformed), else `400`.
fn body_error_response(error: &axum::Error) -> Response {
    let status = rgi::BodyError::find(error)
        .and_then(rgi::BodyError::status_code)
        .unwrap_or(StatusCode::BAD_REQUEST);
    (status, "Failed to read the request body\n").into_response()
}

/// `GET /stream?bytes=N`, with `hello`'s body and error text.
async fn stream(uri: Uri) -> Response {
    let Some(length) = hello::stream_length(uri.query().unwrap_or_default()) else {
        return (
            StatusCode::BAD_REQUEST,
            "expected /stream?bytes=N with N at most 17179869184\n",
        )
            .into_response();
    };
    let mut response = Response::new(Body::new(hello::RepeatBody::new(length)));
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    response
}

fn users(state: &AppState) -> std::sync::MutexGuard<'_, BTreeMap<u64, User>> {
    state.users.lock().unwrap_or_else(PoisonError::into_inner)
}

fn not_found(id: u64) -> Response {
    let body = ErrorBody {
        error: format!("no user {id}"),
    };
    (StatusCode::NOT_FOUND, Json(body)).into_response()
}

async fn list_users(State(state): State<Arc<AppState>>) -> Json<Vec<User>> {
    Json(users(&state).values().cloned().collect())
}

async fn create_user(State(state): State<Arc<AppState>>, Json(new): Json<NewUser>) -> Response {
    let id = state.next_id.fetch_add(1, Ordering::Relaxed) + 1;
    let user = User { id, name: new.name };
    users(&state).insert(id, user.clone());
    let mut response = (StatusCode::CREATED, Json(user)).into_response();
    if let Ok(location) = HeaderValue::from_str(&format!("/users/{id}")) {
        response.headers_mut().insert(header::LOCATION, location);
    }
    response
}

async fn get_user(State(state): State<Arc<AppState>>, Path(id): Path<u64>) -> Response {
    match users(&state).get(&id) {
        Some(user) => Json(user.clone()).into_response(),
        None => not_found(id),
    }
}

async fn delete_user(State(state): State<Arc<AppState>>, Path(id): Path<u64>) -> Response {
    match users(&state).remove(&id) {
        Some(_) => StatusCode::NO_CONTENT.into_response(),
        None => not_found(id),
    }
}

async fn hits(State(state): State<Arc<AppState>>) -> Json<Hits> {
    let hits = state.hits.fetch_add(1, Ordering::Relaxed) + 1;
    Json(Hits { hits })
}

async fn upload(body: Bytes) -> Json<UploadSummary> {
    Json(UploadSummary {
        bytes: body.len(),
        checksum: hello::checksum(&body),
    })
}

async fn slow(Query(params): Query<SlowParams>) -> &'static str {
    tokio::time::sleep(Duration::from_millis(params.ms.min(SLOW_MAX_MS))).await;
    "done"
}

async fn panic() -> &'static str {
    panic!("GET /panic panics on purpose")
}

async fn websocket(State(state): State<Arc<AppState>>, upgrade: WebSocketUpgrade) -> Response {
    let closing = state.closing.subscribe();
    upgrade
        .max_message_size(WS_MAX_MESSAGE)
        .on_upgrade(move |socket| echo_messages(socket, closing))
}

/// Sends every text and binary message back until the client closes (axum answers pings and
/// completes the close handshake), or closes with `1001` when the application shuts down.
async fn echo_messages(mut socket: WebSocket, mut closing: watch::Receiver<bool>) {
    loop {
        tokio::select! {
            message = socket.recv() => match message {
                Some(Ok(message @ (Message::Text(_) | Message::Binary(_)))) => {
                    if socket.send(message).await.is_err() {
                        return;
                    }
                }
                Some(Ok(Message::Ping(_) | Message::Pong(_))) => {}
                // The library queued the close reply when the client's close arrived; the
                // next `recv` writes it and then sees the end (returning now would drop the
                // connection before the reply went out: a reset, not a closing handshake).
                Some(Ok(Message::Close(_))) => {}
                Some(Err(_)) | None => return,
            },
            _ = async { closing.wait_for(|closing| *closing).await.is_ok() } => {
                let frame = CloseFrame {
                    code: close_code::AWAY,
                    reason: "the server is shutting down".into(),
                };
                let _ = socket.send(Message::Close(Some(frame))).await;
                return;
            }
        }
    }
}
