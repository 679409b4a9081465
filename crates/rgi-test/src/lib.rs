//! # rgi-test — test RGI applications in-process, and keep both sides honest with Lint
//!
//! Two tools, tied to the requirement IDs of `spec/SPEC.md`:
//!
//! - [`TestClient`] drives any [`rgi::App`] (or [`rgi::Lifespan`]) in-process, with no
//!   sockets: it builds requests fluently, inserts the extensions a conforming server would,
//!   applies the body limit, maps errors and panics to the responses a server sends, streams
//!   bodies both ways with trailers, simulates clients that go away, and opens WebSocket
//!   sessions ([`TestWebSocket`]) and raw upgrades ([`TestUpgraded`]) over in-memory transports.
//! - [`Lint`] wraps any application and is itself an application: placed between a server and
//!   an application (in tests, or in production behind a flag), it checks the traffic of both
//!   sides at run time and reports every [`Violation`] with its requirement ID.
//!
//! ```
//! use rgi::{App, Body, Request};
//! use rgi::http::{Response, StatusCode};
//! use rgi_test::{Lint, LintMode, TestClient};
//! use std::convert::Infallible;
//!
//! struct Hello;
//!
//! impl App for Hello {
//!     type Body = Body;
//!     type Error = Infallible;
//!     async fn call(&self, _req: Request) -> Result<Response<Body>, Infallible> {
//!         Ok(Response::new(Body::from("Hello, World!")))
//!     }
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let lint = Lint::new(Hello).mode(LintMode::Strict);
//! let report = lint.report();
//! let client = TestClient::new(lint);
//! let mut response = client.get("/").send().await;
//! assert_eq!(response.status(), StatusCode::OK);
//! assert_eq!(response.text().await.unwrap(), "Hello, World!");
//! assert!(report.violations().is_empty());
//! # }
//! ```
//!
//! The test client needs a tokio runtime (it is a development tool); the application under
//! test sees only `rgi` types. [`Lint`] needs no runtime at all.
#![deny(missing_docs)]
#![doc(test(attr(deny(warnings))))]

mod catch;
mod client;
mod exchange;
mod lint;
mod request_body;
mod response;
mod upgrade;
mod ws;

pub use client::{
    DEFAULT_BODY_LIMIT, NoResponse, RequestBuilder, TestClient, capabilities, server_info,
};
pub use lint::{
    Level, Lint, LintBody, LintError, LintLifespan, LintMode, LintReport, Side, Violation,
};
pub use response::{ResponseError, TestBody, TestResponse};
pub use upgrade::{TestUpgraded, UPGRADE_BUFFER, UpgradeBuilder, UpgradeConnectError};
pub use ws::{ConnectError, HandlerError, TestWebSocket, WS_QUEUE, WebSocketBuilder};
