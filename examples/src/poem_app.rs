//! The `poem_app` example: a [poem](https://docs.rs/poem) application — a framework with its
//! own `Endpoint` trait, not tower — served by rgi-server through [`rgi_poem::PoemApp`].
//!
//! | Request | Response |
//! |---|---|
//! | `GET /` | `200 text/plain` `Hello, World!` |
//! | `POST /echo` | `200` with the request body streamed back (not buffered), `Content-Type` echoed |
//! | `GET /users/:id` | `200 application/json` `{"id": id, "name": "user id"}`; a non-numeric id is `400` |
//! | `POST /greet` with JSON `{"name": "..."}` | `200 application/json` `{"message": "Hello ..."}`; bad JSON is `400` |
//! | `GET /client` | `200 text/plain`: the client address as poem's `RemoteAddr` shows it |
//! | anything else | `404` (a known path with another method: `405`) |
//!
//! `GET /` and `POST /echo` are the same as in the `hello` example, so the two can be
//! benchmarked side by side.
//!
//! Run it, then call it with curl:
//!
//! ```text
//! cargo run --release -p rgi-examples --bin poem_app -- --bind 127.0.0.1:8000
//! curl http://127.0.0.1:8000/
//! curl --data-binary 'ping' http://127.0.0.1:8000/echo
//! curl http://127.0.0.1:8000/users/7
//! curl -H 'content-type: application/json' -d '{"name": "RGI"}' http://127.0.0.1:8000/greet
//! ```
//!
//! ```no_run
//! fn main() -> std::process::ExitCode {
//!     rgi_server::run(rgi_examples::poem_app::app())
//! }
//! ```

use poem::http::{HeaderMap, header};
use poem::web::{Json, Path, RemoteAddr};
use poem::{Body, Response, Route, get, handler, post};
use rgi_poem::PoemApp;
use serde::{Deserialize, Serialize};

/// The `poem_app` application.
pub fn app() -> PoemApp<Route> {
    PoemApp::new(route())
}

/// The poem routes of the example, on their own (for poem's own tests, or its own server).
pub fn route() -> Route {
    Route::new()
        .at("/", get(hello))
        .at("/echo", post(echo))
        .at("/users/:id", get(user))
        .at("/greet", post(greet))
        .at("/client", get(client))
}

#[handler]
fn hello() -> Response {
    Response::builder()
        .content_type("text/plain; charset=utf-8")
        .body("Hello, World!")
}

/// Streams the request body back: poem's `Body` is the RGI request body, frame by frame.
#[handler]
fn echo(headers: &HeaderMap, body: Body) -> Response {
    let mut response = Response::builder().body(body);
    if let Some(content_type) = headers.get(header::CONTENT_TYPE) {
        response
            .headers_mut()
            .insert(header::CONTENT_TYPE, content_type.clone());
    }
    response
}

/// A user, as `GET /users/:id` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    /// The id from the path.
    pub id: u64,
    /// `user {id}`.
    pub name: String,
}

#[handler]
fn user(Path(id): Path<u64>) -> Json<User> {
    Json(User {
        id,
        name: format!("user {id}"),
    })
}

/// The body of `POST /greet`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Greet {
    /// Whom to greet.
    pub name: String,
}

/// The answer of `POST /greet`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Greeting {
    /// `Hello {name}`.
    pub message: String,
}

#[handler]
fn greet(Json(Greet { name }): Json<Greet>) -> Json<Greeting> {
    Json(Greeting {
        message: format!("Hello {name}"),
    })
}

#[handler]
fn client(remote: &RemoteAddr) -> String {
    match remote.as_socket_addr() {
        Some(addr) => addr.to_string(),
        None => remote.to_string(),
    }
}
