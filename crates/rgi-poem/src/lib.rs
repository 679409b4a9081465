//! # rgi-poem: poem applications on RGI servers
//!
//! [poem](https://docs.rs/poem) is a web framework with its own request, response and
//! [`Endpoint`] types — not a tower service. [`PoemApp`] runs any poem [`Endpoint`] (a
//! [`Route`](poem::Route), a `#[handler]`, an endpoint wrapped in middleware) as an RGI
//! [`App`], through poem's public API only, so a poem application runs unchanged on
//! `rgi-server` or any other RGI server, and can be tested in-process with `rgi-test`.
//!
//! ```
//! use poem::web::{Json, Path};
//! use poem::{Route, get, handler, post};
//! use rgi_poem::PoemApp;
//!
//! #[handler]
//! fn hello() -> &'static str {
//!     "Hello, World!"
//! }
//!
//! #[handler]
//! fn user(Path(id): Path<u32>) -> Json<serde_json::Value> {
//!     Json(serde_json::json!({ "id": id }))
//! }
//!
//! #[handler]
//! fn echo(body: poem::Body) -> poem::Body {
//!     body // streamed back, never buffered
//! }
//!
//! let route = Route::new()
//!     .at("/", get(hello))
//!     .at("/users/:id", get(user))
//!     .at("/echo", post(echo));
//! let app = PoemApp::new(route);
//! # fn assert_app<A: rgi::App>(_: &A) {}
//! # assert_app(&app);
//! // rgi_server::run(app) serves it, like any RGI app.
//! ```
//!
//! ## What the adapter does
//!
//! | RGI | poem |
//! |---|---|
//! | [`rgi::Request`] (method, URI, version, headers, extensions) | [`poem::Request`], built with `RequestParts::from((parts, LocalAddr, RemoteAddr, Scheme))` and `Request::from_parts` |
//! | [`rgi::Body`] (request) | [`poem::Body`], streamed frame by frame — data and trailers, nothing buffered (`HTTP-BODY-1`, `HTTP-TRAIL-1`) |
//! | [`rgi::ConnectionInfo`] `local()` / `peer()` / `scheme()` | [`LocalAddr`] / [`RemoteAddr`] / `Request::scheme()`, the way poem's own server fills them |
//! | [`rgi::MountPrefix`] | stripped from the URI (routes match the application path, `HTTP-PATH-4`); `Request::original_uri()` keeps the whole target |
//! | response | [`poem::Response`] → `http::Response`, its body streamed (trailers included) |
//! | endpoint `Err` | answered by poem (`Error::into_response`), unless it carries a [`BodyError`] with a status of its own: then it becomes the app's `Err`, which the server maps (`CORE-ERR-4`, `CORE-ERR-9`) |
//!
//! The client address is poem's [`RemoteAddr`]: `Addr::SocketAddr` for TCP peers (a forwarded
//! IP address without a port, `HTTP-CONN-5`, shows as port `0`), `Addr::Unix` for named Unix
//! socket peers, and poem's own "unknown" address otherwise. The RGI extensions stay in the
//! request's extensions, so handlers read them with poem's `Data` extractor or
//! `req.data::<T>()`: `Data<&rgi::ConnectionInfo>` (TLS details, connection id) and
//! `Data<&rgi::Disconnect>` (how the exchange ended).
//!
//! ## Errors
//!
//! poem turns most failures into responses itself (`404` for an unknown route, `400` for a
//! failed extractor, the status of a `poem::Error`), and the adapter keeps those responses.
//! A request body that failed with [`BodyError::LengthLimitExceeded`], [`BodyError::TimedOut`],
//! [`BodyError::Protocol`] or [`BodyError::Disconnected`] — where poem would answer a generic
//! `400` — is returned as [`PoemAppError::Body`], so the server answers `413`, `408`, `400` or
//! nothing, as `CORE-ERR-4` says. A panic in an endpoint is left to the server (`500`,
//! `CORE-ERR-1`); an error of the response body after the head aborts the response
//! (`CORE-ERR-3`).
//!
//! Responses to `HEAD` and `204` / `304` responses carry no body (`HTTP-FRAME-6`,
//! `HTTP-FRAME-8`): the adapter drops whatever body an endpoint attached to them, keeping a
//! `content-length` computed from the body's exact size for `HEAD`.
//!
//! ## Limits
//!
//! Upgrades (WebSockets) through poem are not supported by this version: poem's `WebSocket`
//! extractor needs hyper's upgrade handle, which only some servers provide, and the `101` it
//! produces carries no RGI accept marker, so a conforming server answers it `500`
//! (`CORE-ERR-6`) rather than hanging. Use [`rgi::ws`] in an RGI app for WebSockets.
#![deny(missing_docs)]
#![doc(test(attr(deny(warnings))))]

mod error;
mod request;
mod response;

use std::fmt;
use std::future::Future;

use bytes::Bytes;
use http_body_util::combinators::BoxBody;
use poem::{Endpoint, IntoResponse};
use rgi::{App, BodyError, Request};

pub use error::PoemAppError;

#[doc(no_inline)]
pub use poem::web::{LocalAddr, RemoteAddr};

/// The response body of a [`PoemApp`]: poem's own body, streamed as it is.
pub type ResponseBody = BoxBody<Bytes, std::io::Error>;

/// A poem [`Endpoint`] running as an RGI [`App`].
///
/// See the [crate docs](crate) for how requests, responses, addresses and errors are mapped.
///
/// ```
/// use poem::{Route, get, handler};
/// use rgi_poem::PoemApp;
///
/// #[handler]
/// fn index() -> &'static str {
///     "Hello, World!"
/// }
///
/// let app = PoemApp::new(Route::new().at("/", get(index)));
/// # fn assert_app<A: rgi::App>(_: &A) {}
/// # assert_app(&app);
/// ```
pub struct PoemApp<E> {
    endpoint: E,
}

impl<E> PoemApp<E> {
    /// Wraps `endpoint`.
    pub fn new(endpoint: E) -> Self {
        Self { endpoint }
    }

    /// The wrapped endpoint.
    pub fn get_ref(&self) -> &E {
        &self.endpoint
    }

    /// Returns the wrapped endpoint.
    pub fn into_inner(self) -> E {
        self.endpoint
    }
}

impl<E> fmt::Debug for PoemApp<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PoemApp").finish_non_exhaustive()
    }
}

impl<E> App for PoemApp<E>
where
    E: Endpoint + 'static,
{
    type Body = ResponseBody;
    type Error = PoemAppError;

    fn call(
        &self,
        req: Request,
    ) -> impl Future<Output = Result<http::Response<ResponseBody>, PoemAppError>> + Send {
        let body_expected = req.method() != http::Method::HEAD;
        let req = request::into_poem(req);
        async move {
            let response = match self.endpoint.call(req).await {
                Ok(output) => output.into_response(),
                Err(error) => match error::body_error(&error) {
                    Some(body_error) => return Err(PoemAppError::Body(body_error)),
                    None => error.into_response(),
                },
            };
            Ok(response::from_poem(response, body_expected))
        }
    }
}

/// Turns a poem [`Endpoint`] into an RGI application: `endpoint.into_rgi()`.
///
/// ```
/// use poem::{Route, get, handler};
/// use rgi_poem::EndpointExt as _;
///
/// #[handler]
/// fn index() -> &'static str {
///     "hi"
/// }
///
/// let app = Route::new().at("/", get(index)).into_rgi();
/// # fn assert_app<A: rgi::App>(_: &A) {}
/// # assert_app(&app);
/// ```
pub trait EndpointExt: Endpoint + Sized {
    /// Wraps the endpoint in a [`PoemApp`].
    fn into_rgi(self) -> PoemApp<Self> {
        PoemApp::new(self)
    }
}

impl<E: Endpoint> EndpointExt for E {}

/// Whether a request body error has a status of its own (`CORE-ERR-4`) or means the client is
/// gone, so that the server, not poem, must answer it.
fn server_answers(error: &BodyError) -> bool {
    error.status_code().is_some() || matches!(error, BodyError::Disconnected)
}
