//! The complete example of `docs/framework-authors.md`: a tiny framework (a router with path
//! parameters) implemented on RGI, tested with TestClient and kept honest with Lint.
//!
//! The code between the `guide:start` and `guide:end` markers appears verbatim in the guide;
//! `guide_code_is_in_sync` fails when the two differ.

// guide:start
use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use rgi::http::{HeaderValue, Method, Response, StatusCode, header};
use rgi::http_body::Body as _;
use rgi::ws::{Message, WebSocketUpgrade};
use rgi::{App, Body, BoxError, Request};

/// The path parameters of a matched route (`/users/:id` gives `id`).
#[derive(Debug, Default, Clone)]
pub struct Params(HashMap<String, String>);

impl Params {
    /// The value of parameter `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(String::as_str)
    }
}

type BoxFuture = Pin<Box<dyn Future<Output = Result<Response<Body>, BoxError>> + Send>>;
type Handler = Arc<dyn Fn(Request, Params) -> BoxFuture + Send + Sync>;

enum Segment {
    Literal(String),
    Param(String),
}

struct Route {
    method: Method,
    pattern: Vec<Segment>,
    handler: Handler,
}

/// The framework: routes on the application path, with `:name` parameters.
#[derive(Default)]
pub struct Router {
    routes: Vec<Route>,
}

impl std::fmt::Debug for Router {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Router")
            .field("routes", &self.routes.len())
            .finish()
    }
}

impl Router {
    /// A router with no routes.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a route: `pattern` is like `/users/:id`.
    pub fn route<F, Fut>(mut self, method: Method, pattern: &str, handler: F) -> Self
    where
        F: Fn(Request, Params) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Response<Body>, BoxError>> + Send + 'static,
    {
        let pattern = pattern
            .split('/')
            .filter(|s| !s.is_empty())
            .map(|s| match s.strip_prefix(':') {
                Some(name) => Segment::Param(name.to_owned()),
                None => Segment::Literal(s.to_owned()),
            })
            .collect();
        let handler: Handler = Arc::new(move |req, params| Box::pin(handler(req, params)));
        self.routes.push(Route {
            method,
            pattern,
            handler,
        });
        self
    }

    /// The routes whose pattern matches `path`, with their parameters.
    fn matches<'a>(&'a self, path: &str) -> impl Iterator<Item = (&'a Route, Params)> + 'a {
        let segments: Vec<String> = path
            .split('/')
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect();
        self.routes.iter().filter_map(move |route| {
            if route.pattern.len() != segments.len() {
                return None;
            }
            let mut params = HashMap::new();
            for (segment, actual) in route.pattern.iter().zip(&segments) {
                match segment {
                    Segment::Literal(literal) if literal == actual => {}
                    Segment::Literal(_) => return None,
                    Segment::Param(name) => {
                        params.insert(name.clone(), actual.clone());
                    }
                }
            }
            Some((route, Params(params)))
        })
    }
}

fn status(code: StatusCode) -> Response<Body> {
    let mut response = Response::new(Body::empty());
    *response.status_mut() = code;
    response
}

impl App for Router {
    type Body = Body;
    type Error = BoxError;

    async fn call(&self, req: Request) -> Result<Response<Body>, BoxError> {
        // Route on the application path: decoded, without the mount prefix (HTTP-PATH-8).
        let Some(path) = rgi::path::app_path(&req) else {
            return Ok(status(StatusCode::NOT_FOUND));
        };
        let Ok(path) = String::from_utf8(path.into_owned()) else {
            return Ok(status(StatusCode::BAD_REQUEST));
        };
        // HEAD is answered by the GET route, without body data (HTTP-FRAME-6).
        let head = req.method() == Method::HEAD;
        let method = if head {
            Method::GET
        } else {
            req.method().clone()
        };
        let mut allowed = Vec::new();
        let mut found = None;
        for (route, params) in self.matches(&path) {
            if route.method == method {
                found = Some((route.handler.clone(), params));
                break;
            }
            allowed.push(route.method.as_str());
        }
        let Some((handler, params)) = found else {
            if allowed.is_empty() {
                return Ok(status(StatusCode::NOT_FOUND));
            }
            let mut response = status(StatusCode::METHOD_NOT_ALLOWED);
            response
                .headers_mut()
                .insert(header::ALLOW, HeaderValue::from_str(&allowed.join(", "))?);
            return Ok(response);
        };
        let mut response = handler(req, params).await?;
        if head {
            // Keep the headers of GET, including the length when it is known (HTTP-RESP-12
            // makes an exception for HEAD), and drop the body.
            if let Some(length) = response.body().size_hint().exact() {
                response
                    .headers_mut()
                    .insert(header::CONTENT_LENGTH, HeaderValue::from(length));
            }
            *response.body_mut() = Body::empty();
        }
        Ok(response)
    }
}

/// An application written with the framework.
pub fn app() -> Router {
    Router::new()
        .route(Method::GET, "/users/:id", |_req, params| async move {
            let id = params.get("id").unwrap_or_default().to_owned();
            Ok(Response::new(Body::from(format!("user {id}"))))
        })
        .route(Method::POST, "/users/:id/notes", |req, params| async move {
            let mut body = req.into_body();
            // This route accepts notes of up to 1 KiB; past that the body fails with
            // LengthLimitExceeded, `?` keeps it in the error chain, and the server answers
            // 413 (CORE-ERR-4, CORE-ERR-9).
            body.set_limit(Some(1024));
            let note = body.collect().await?.into_bytes();
            let id = params.get("id").unwrap_or_default().to_owned();
            let mut response = Response::new(Body::from(format!(
                "{} bytes noted for user {id}",
                note.len()
            )));
            *response.status_mut() = StatusCode::CREATED;
            Ok(response)
        })
        .route(Method::GET, "/ws", |mut req, _params| async move {
            // A WebSocket route: present only on a valid handshake (WS-H2-5).
            let Some(upgrade) = req.extensions_mut().remove::<WebSocketUpgrade>() else {
                return Ok(status(StatusCode::BAD_REQUEST));
            };
            Ok(upgrade.accept(|mut socket| async move {
                while let Some(message) = socket.recv().await {
                    match message? {
                        Message::Text(text) => {
                            socket.send(Message::text(text.to_uppercase())).await?;
                        }
                        Message::Close(_) => break,
                        _ => {}
                    }
                }
                Ok(())
            }))
        })
}
// guide:end

// The tests of the guide's section "Test it with TestClient, keep it honest with Lint".
use rgi_test::{Lint, LintMode, LintReport, TestClient};

fn client() -> (TestClient<Lint<Router>>, LintReport) {
    let lint = Lint::new(app()).mode(LintMode::Strict);
    let report = lint.report();
    (TestClient::new(lint), report)
}

/// HTTP-PATH-8, HTTP-RESP-1: a route with a path parameter.
#[tokio::test]
async fn path_parameters() {
    let (client, report) = client();
    let mut response = client.get("/users/42").send().await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.text().await.unwrap(), "user 42");
    report.assert_clean();
}

/// HTTP-FRAME-6, HTTP-RESP-12: HEAD gets the GET headers with the length, and no body.
#[tokio::test]
async fn head_like_get() {
    let (client, report) = client();
    let mut response = client.head("/users/42").send().await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.header(header::CONTENT_LENGTH), Some("7"));
    assert_eq!(response.bytes().await.unwrap(), "");
    report.assert_clean();
}

/// HTTP-BODY-8, CORE-ERR-4, CORE-ERR-9: the route's own body limit, and 413 past it.
#[tokio::test]
async fn body_limit_per_route() {
    let (client, report) = client();
    let mut created = client.post("/users/7/notes").body("remember").send().await;
    assert_eq!(created.status(), StatusCode::CREATED);
    assert_eq!(created.text().await.unwrap(), "8 bytes noted for user 7");
    let too_big = client
        .post("/users/7/notes")
        .body(vec![b'n'; 2048])
        .send()
        .await;
    assert_eq!(too_big.status(), StatusCode::PAYLOAD_TOO_LARGE);
    report.assert_clean();
}

/// HTTP-RESP-2: unknown paths are 404, known paths with another method 405 with `allow`.
#[tokio::test]
async fn not_found_and_method_not_allowed() {
    let (client, report) = client();
    assert_eq!(
        client.get("/nope").send().await.status(),
        StatusCode::NOT_FOUND
    );
    let response = client.delete("/users/1").send().await;
    assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(response.header(header::ALLOW), Some("GET"));
    report.assert_clean();
}

/// HTTP-PATH-4, HTTP-PATH-8: mounted under a prefix, the same routes work.
#[tokio::test]
async fn mounted_under_a_prefix() {
    let (client, report) = client();
    let client = client.mount_prefix("/api");
    let mut response = client.get("/api/users/9").send().await;
    assert_eq!(response.text().await.unwrap(), "user 9");
    assert_eq!(
        client.get("/users/9").send().await.status(),
        StatusCode::NOT_FOUND
    );
    report.assert_clean();
}

/// WS-HS-5, WS-MSG-1: the WebSocket route, in process.
#[tokio::test]
async fn websocket_route() {
    let (client, report) = client();
    let mut socket = client.websocket("/ws").connect().await.unwrap();
    socket.send(Message::text("shout")).await.unwrap();
    assert_eq!(socket.recv().await, Some(Message::text("SHOUT")));
    socket.close(None).await.unwrap();
    assert_eq!(socket.recv().await, Some(Message::Close(None)));
    socket.finished().await.unwrap();
    report.assert_clean();
}

/// Documentation consistency (no SPEC requirement): the code between the markers is the
/// guide's code, verbatim.
#[test]
fn guide_code_is_in_sync() {
    let this = include_str!("guide_example.rs");
    let guide = include_str!("../../../docs/framework-authors.md");
    let start = this.find("// guide:start\n").unwrap() + "// guide:start\n".len();
    let end = this.find("// guide:end").unwrap();
    let code = &this[start..end];
    assert!(
        guide.contains(code),
        "docs/framework-authors.md must contain the code between the guide markers of \
         crates/rgi-test/tests/guide_example.rs verbatim"
    );
}
