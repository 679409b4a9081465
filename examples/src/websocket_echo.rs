//! The `websocket_echo` example: a WebSocket echo server, the target of the Autobahn
//! testsuite runs.
//!
//! | Request | Response |
//! |---|---|
//! | WebSocket handshake at `/ws` (HTTP/1.1 `Upgrade` or HTTP/2 extended CONNECT) | accepted; every text and binary message is sent back unchanged |
//! | any other request to `/ws` | `426 Upgrade Required` |
//! | anything else | `404` |
//!
//! The same application code serves both HTTP versions: the server hands it a
//! [`WebSocketUpgrade`] for either.
//!
//! ```no_run
//! fn main() -> std::process::ExitCode {
//!     rgi_server::run(rgi_examples::websocket_echo::WebSocketEcho)
//! }
//! ```

use std::convert::Infallible;

use http::{HeaderValue, Response, StatusCode, header};
use rgi::ws::{Message, WebSocket, WebSocketUpgrade};
use rgi::{App, Body, BoxError, Request};

/// The path of the echo endpoint.
pub const PATH: &str = "/ws";

/// The `websocket_echo` application.
#[derive(Debug, Clone, Copy, Default)]
pub struct WebSocketEcho;

impl App for WebSocketEcho {
    type Body = Body;
    type Error = Infallible;

    async fn call(&self, mut req: Request) -> Result<Response<Body>, Infallible> {
        if rgi::path::app_path(&req).as_deref() != Some(PATH.as_bytes()) {
            return Ok(text(StatusCode::NOT_FOUND, "Not Found"));
        }
        match req.extensions_mut().remove::<WebSocketUpgrade>() {
            Some(handshake) => Ok(handshake.accept(echo)),
            None => {
                let mut response = text(StatusCode::UPGRADE_REQUIRED, "WebSocket only");
                response
                    .headers_mut()
                    .insert(header::UPGRADE, HeaderValue::from_static("websocket"));
                Ok(response)
            }
        }
    }
}

/// Sends every text and binary message back until the peer closes.
pub async fn echo(mut socket: WebSocket) -> Result<(), BoxError> {
    while let Some(message) = socket.recv().await {
        match message? {
            Message::Close(_) => break,
            other => socket.send(other).await?,
        }
    }
    Ok(())
}

fn text(status: StatusCode, body: &'static str) -> Response<Body> {
    let mut response = Response::new(Body::from(body));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}
