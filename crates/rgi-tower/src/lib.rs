//! # rgi-tower: tower services on RGI servers, RGI apps on tower hosts
//!
//! Most Rust web code is a [`tower_service::Service`]: axum routers, tonic gRPC services,
//! tower-http stacks. This crate connects that world with RGI in both directions:
//!
//! | Direction | Type | Use it to |
//! |---|---|---|
//! | tower → RGI | [`TowerApp`], [`TowerLifespan`], [`ServiceExt::into_rgi`] | run an axum `Router` (or any tower service) on an RGI server such as `rgi-server` |
//! | RGI → tower | [`RgiService`], [`AppExt::into_service`] | run an RGI app on `axum::serve` or hyper-util, or nest it in an axum `Router` |
//!
//! Both directions pass bodies through frame by frame — no buffering, backpressure end to end,
//! trailers both ways (`HTTP-BODY-1`, `HTTP-TRAIL-1`) — and leave request extensions alone, so
//! the two compose: an RGI app nested in an axum router that runs on an RGI server still sees
//! the server's [`rgi::ConnectionInfo`], [`rgi::Disconnect`] and upgrade handles.
//!
//! ## tower → RGI
//!
//! ```
//! use axum::{Router, extract::Path, routing::get};
//! use rgi_tower::TowerApp;
//!
//! let router = Router::new()
//!     .route("/", get(|| async { "Hello, World!" }))
//!     .route("/users/{id}", get(|Path(id): Path<u32>| async move { format!("user {id}") }));
//!
//! let app = TowerApp::new(router);
//! # fn assert_app<A: rgi::App>(_: &A) {}
//! # assert_app(&app);
//! // rgi_server::run(app) — or any other RGI server.
//! ```
//!
//! axum's `Router` takes any request body with `Bytes` data (it converts it to its own), so it
//! is a `Service<http::Request<rgi::Body>>` as it is. Services that take a specific body type
//! can be put behind `tower::util::MapRequest` to convert an [`rgi::Body`] (which implements
//! [`http_body::Body`]).
//!
//! Per request the adapter clones the service, waits for [`Service::poll_ready`]
//! (readiness is honoured) and calls it. A service error is the app's `Err`: the server answers
//! `500` (`CORE-ERR`). Startup and shutdown hooks: [`TowerLifespan`], [`TowerApp::on_shutdown`].
//!
//! [`Service::poll_ready`]: tower_service::Service::poll_ready
//!
//! ## RGI → tower
//!
//! ```
//! use rgi::{App, Body, Request};
//! use rgi::http::Response;
//! use rgi_tower::RgiService;
//!
//! struct Hello;
//!
//! impl App for Hello {
//!     type Body = Body;
//!     type Error = std::convert::Infallible;
//!     async fn call(&self, _req: Request) -> Result<Response<Body>, Self::Error> {
//!         Ok(Response::new(Body::from("Hello from RGI")))
//!     }
//! }
//!
//! // Nested in an axum router ...
//! let router: axum::Router = axum::Router::new()
//!     .route("/health", axum::routing::get(|| async { "ok" }))
//!     .nest_service("/rgi", RgiService::new(Hello));
//! // ... and served by axum::serve(listener, router).
//! # drop(router);
//! ```
//!
//! [`RgiService`] does the server's share of the RGI contract for the host: it inserts
//! [`rgi::ConnectionInfo`] and [`rgi::Disconnect`], turns the app's `Err` or panic into `500`
//! (or `413`/`408`/`400` for a [`rgi::BodyError`]), and aborts a response whose body fails.
//! The host has no lifespan: call [`RgiService::start`] before serving and
//! [`RgiService::shutdown`] after.
//!
//! What a service never sees stays the host's: how hyper frames HTTP/1 requests. Hosted by bare
//! hyper, a request can hide behind a bare-LF trailer line (`SRV-LIMIT-15`) and `HTTP/1.2` is
//! refused instead of served as HTTP/1.1 (`SRV-LIMIT-19`); hyper-util's builder for HTTP/1 and
//! HTTP/2 on one port answers a first line that is not HTTP with an HTTP/1 `400` instead of a
//! close (`SRV-LIMIT-17`). rgi-server handles all three in front of hyper
//! (`conformance-tests/KNOWN-FAILURES.md`). So do the bounds on slow
//! clients: the host's timeouts, a minimum rate for uploads (`SRV-LIMIT-20`), and a write
//! timeout that also covers HTTP/2 streams left without flow-control window (`SRV-LIMIT-16`),
//! which bare hyper does not have.
//!
//! ## Mount prefixes
//!
//! RGI keeps the request target whole and names the mounted part in [`rgi::MountPrefix`]
//! (`HTTP-PATH-4`); tower frameworks strip the mounted part from the URI. The adapters
//! translate: [`TowerApp`] strips an RGI server's mount prefix from the URI for the tower
//! service, and [`RgiService`] nested with axum's `nest_service` gives the app the whole target
//! and the nesting path as its `MountPrefix` (with the feature `axum`, which reads axum's
//! `OriginalUri`).
//!
//! ## Features and connection information
//!
//! | Feature | tower → RGI ([`TowerApp`]) | RGI → tower ([`RgiService`]) |
//! |---|---|---|
//! | `axum` | inserts `axum::extract::ConnectInfo<SocketAddr>` from [`rgi::ConnectionInfo::peer`] | builds the peer of [`rgi::ConnectionInfo`] from `ConnectInfo<SocketAddr>` (use `into_make_service_with_connect_info::<SocketAddr>()`); adds `RgiService::into_router` |
//! | `hyper` | marks `101` responses made through hyper's `OnUpgrade` | bridges raw upgrades ([`rgi::upgrade::OnUpgrade`]) to hyper's (needs a tokio runtime) |
//! | `tonic` | inserts `tonic::transport::server::TcpConnectInfo` (local and peer), so `tonic::Request::remote_addr` works | — |
//!
//! The peer is the RGI peer, which a server configured to trust a proxy takes from the
//! forwarding headers (`HTTP-CONN-5`); a forwarded IP address without a port shows as port `0`.
//! Unix-socket peers have no `SocketAddr` and get no such extension. tonic's TLS variant
//! (`TlsConnectInfo`) can only be built inside tonic, so TLS details reach tonic services only
//! through [`rgi::ConnectionInfo::tls`]. Without either feature nothing is inserted and the
//! normal dependency tree stays free of axum and tonic.
//!
//! ## Upgrades and WebSockets
//!
//! - **tower → RGI.** axum's `WebSocketUpgrade` reads hyper's `hyper::upgrade::OnUpgrade` from
//!   the request extensions. `rgi-server` leaves it there as a documented server-specific
//!   compatibility extension (`EXT-NS-2`), so axum WebSockets work there through
//!   [`TowerApp`]. On an RGI server without it, the request still reaches axum, which rejects
//!   the extractor at once with `426 Upgrade Required`; nothing waits for an upgrade that
//!   cannot happen. With the feature `hyper`, a `101` (or a `2xx` to an extended CONNECT) that
//!   the service produced through hyper's handle carries a clone of that `OnUpgrade` in its
//!   response extensions, the marker by which a server recognises its own compatibility
//!   extension (`CORE-ERR-6`).
//!
//!   **Known limitation: shutdown.** Such a WebSocket is not one of the server's own sessions:
//!   once hyper has handed the connection over, it belongs to the task axum spawned, not to the
//!   server. rgi-server's WebSocket rules do not apply to it (its message limits and its
//!   ping/idle handling), and at shutdown the server neither waits for it nor closes it with
//!   `1001 Going Away` as it does with its native RGI sessions (`WS-CLOSE-7`, `SRV-SHUT-3`):
//!   unless the application closes it, the client sees the TCP connection end without a close
//!   frame when the process exits. An application that wants a clean close can do it itself
//!   from its shutdown hook ([`TowerApp::on_shutdown`], [`TowerLifespan::on_shutdown`]), which
//!   the server runs after the last request while those tasks still run: signal the socket
//!   handlers (a `tokio::sync::watch`, say), have them send a close frame with code `1001`, and
//!   wait for them, bounded — the `axum_app` example in `rgi-examples` does exactly this. Or
//!   use RGI's own [`rgi::ws::WebSocketUpgrade`] (an RGI app nested in the router with
//!   [`RgiService`]), whose sessions the server closes at the deadline.
//! - **RGI → tower.** [`rgi::ws::WebSocketUpgrade`] is absent from the app's requests (the
//!   capability is not offered, `EXT-CAP-1`): WebSockets in an RGI app need an RGI server in
//!   RGI 0.1. Raw upgrades ([`rgi::upgrade::OnUpgrade`]) work with the crate feature `hyper`,
//!   which bridges them to hyper's upgrades on hosts that perform them (`axum::serve`;
//!   hyper-util's server with `serve_connection_with_upgrades`); without it they are absent
//!   too. A `101` response that is not an accepted offer is answered `500` (`CORE-ERR-6`).
#![deny(missing_docs)]
#![doc(test(attr(deny(warnings))))]

mod catch_panic;
mod compat;
mod lifespan;
mod mount;
mod request_body;
mod response_body;
mod rgi_service;
mod tower_app;
#[cfg(feature = "hyper")]
mod upgrade;

pub use catch_panic::Panicked;
pub use lifespan::TowerLifespan;
pub use response_body::{FrameAfterTrailers, LengthMismatch, ResponseBody};
pub use rgi_service::{AppExt, ResponseFuture, RgiService};
pub use tower_app::{ServiceExt, TowerApp};
