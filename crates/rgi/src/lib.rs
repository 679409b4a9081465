//! # RGI — the Rust Gateway Interface
//!
//! RGI is the contract between Rust HTTP **servers** and Rust web **applications** (and the
//! **frameworks** applications are written in): what WSGI and ASGI are to Python, RGI is to Rust.
//! A framework implements [`App`] once and runs on every conforming server; a server hosts any
//! [`App`] and proves it with the conformance suite.
//!
//! The normative text is `spec/SPEC.md` in the repository. Every requirement there has a stable
//! ID such as `HTTP-RESP-1`; the documentation of each item in this crate names the IDs it
//! implements, and lint messages, tests and conformance reports cite the same IDs.
//!
//! This crate holds **types and traits only**. It has no executor, no I/O and no HTTP
//! implementation; it speaks the vocabulary of the [`http`], [`http_body`] and [`bytes`] crates
//! (re-exported here) so that nothing has to be converted at the boundary.
//!
//! ## A complete application
//!
//! ```
//! use rgi::{App, Body, Request};
//! use rgi::http::{Response, StatusCode};
//! use std::convert::Infallible;
//!
//! struct Hello;
//!
//! impl App for Hello {
//!     type Body = Body;
//!     type Error = Infallible;
//!
//!     async fn call(&self, req: Request) -> Result<Response<Body>, Infallible> {
//!         let response = match req.uri().path() {
//!             "/" => Response::new(Body::from("Hello, World!")),
//!             _ => {
//!                 let mut not_found = Response::new(Body::empty());
//!                 *not_found.status_mut() = StatusCode::NOT_FOUND;
//!                 not_found
//!             }
//!         };
//!         Ok(response)
//!     }
//! }
//! # fn assert_app<A: App>(_: &A) {}
//! # assert_app(&Hello);
//! ```
//!
//! A server such as `rgi-server` runs it with one call (`rgi_server::run(Hello)`), the test kit
//! `rgi-test` drives it in-process, and `rgi-tower` turns it into a `tower::Service`.
//!
//! ## Map of the crate
//!
//! | Item | What it is | Spec |
//! |---|---|---|
//! | [`App`] | the per-request entry point | `CORE-APP`, `CORE-ERR` |
//! | [`Lifespan`] | builds the app at startup; the app value is the shared typed state | `LIFE-*` |
//! | [`BoxApp`] | the type-erased (`dyn`) form of any app | `CORE-APP` |
//! | [`Body`], [`BodyError`] | the request body (and a convenient response body) | `HTTP-BODY`, `HTTP-TRAIL` |
//! | [`ConnectionInfo`] | addresses, scheme and TLS of the connection | `HTTP-CONN` |
//! | [`path`] | raw and decoded paths, the mount prefix | `HTTP-PATH` |
//! | [`Disconnect`] | "completed" versus "client gone" | `HTTP-DISC`, `CORE-CANCEL` |
//! | [`upgrade`] | raw protocol upgrades (HTTP/1.1 `101`, HTTP/2 extended CONNECT) | `UPGRADE-RAW` |
//! | [`ws`] | WebSocket sessions | `WS-*` |
//! | [`ext`], [`ServerInfo`], [`Capabilities`] | optional features and how to detect them | `EXT-*` |
//!
//! ## Generic and dynamic use
//!
//! Servers are generic over `A: App`, so the generic path costs nothing: no boxing and no extra
//! allocation per request. A server that hosts applications chosen at run time uses
//! [`BoxApp`] (one allocation per call, on that path only), which itself implements [`App`].
//!
//! ## Versioning
//!
//! [`SPEC_VERSION`] is the version of SPEC.md this crate implements (`CORE-VER-1`). From 1.0
//! on, a minor version of the spec — and within 0.1, a 0.1.x revision of this crate — may add
//! optional requirements, extension types, and fields or variants to the `#[non_exhaustive]`
//! types of this crate; it never changes what a `MUST` says (`CORE-VER-5`).
//!
//! Code outside this crate cannot break when that happens (`CORE-VER-6`): the compiler demands
//! a wildcard arm in every `match` on a `#[non_exhaustive]` enum ([`Capability`],
//! [`BodyError`], [`Outcome`], [`Scheme`], [`SocketAddress`], [`TlsVersion`],
//! [`ws::Message`], [`ws::WsError`], [`upgrade::UpgradeError`], [`ext::EarlyHintsError`]) and
//! forbids building its non-exhaustive structs with struct literals. These do not compile:
//!
//! ```compile_fail
//! // CORE-VER-6: every variant named, no wildcard arm.
//! fn kind(outcome: rgi::Outcome) -> u8 {
//!     match outcome {
//!         rgi::Outcome::Completed => 0,
//!         rgi::Outcome::ClientGone => 1,
//!         rgi::Outcome::Aborted => 2,
//!     }
//! }
//! ```
//!
//! ```compile_fail
//! // CORE-VER-6: every variant named, no wildcard arm.
//! fn is_tls(scheme: rgi::Scheme) -> bool {
//!     match scheme {
//!         rgi::Scheme::Http => false,
//!         rgi::Scheme::Https => true,
//!     }
//! }
//! ```
//!
//! and this, with the wildcard arm, does:
//!
//! ```
//! fn is_tls(scheme: rgi::Scheme) -> bool {
//!     match scheme {
//!         rgi::Scheme::Https => true,
//!         _ => false,
//!     }
//! }
//! assert!(is_tls(rgi::Scheme::Https));
//! ```
#![deny(missing_docs)]
#![doc(test(attr(deny(warnings))))]

pub use bytes;
pub use http;
pub use http_body;

mod app;
mod body;
mod boxed;
mod connection;
mod disconnect;
mod server_info;
mod version;

pub mod ext;
pub mod fields;
pub mod path;
pub mod upgrade;
pub mod ws;

pub use app::{App, Lifespan, StartupError};
pub use body::{Body, BodyError, Collected};
pub use boxed::BoxApp;
pub use connection::{ConnectionInfo, Scheme, SocketAddress, TlsInfo, TlsVersion};
pub use disconnect::{Disconnect, DisconnectNotifier, DisconnectPool, Finished, Outcome};
pub use path::MountPrefix;
pub use server_info::{Capabilities, Capability, ServerInfo};
pub use version::{SPEC_VERSION, SpecVersion};

/// A type-erased error, as used at the boundaries of this crate.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// The request every [`App`] receives: an [`http::Request`] whose body is an RGI [`Body`].
///
/// The server fills the request's extensions with the typed values the spec defines
/// ([`ConnectionInfo`] and [`Disconnect`] always; [`MountPrefix`], [`upgrade::OnUpgrade`],
/// [`ws::WebSocketUpgrade`], [`ext::EarlyHints`] when they apply). See `HTTP-REQ` and `EXT-CAP`.
pub type Request = http::Request<Body>;
