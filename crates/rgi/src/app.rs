//! The application contract: [`App`] and [`Lifespan`].

use std::borrow::Cow;
use std::future::Future;

use bytes::Bytes;
use http::Response;

use crate::{BoxApp, BoxError, Request, ServerInfo};

/// An RGI application: the per-request entry point a server calls.
///
/// # Contract
///
/// - The server calls [`App::call`] exactly once per HTTP request and once per WebSocket or
///   upgrade handshake (`CORE-APP-1`). Calls take `&self` and may run concurrently on many
///   threads, hence `Send + Sync + 'static` (`CORE-APP-2`).
/// - The returned response is the one final response head of the request (`HTTP-RESP-1`): the
///   type allows no second head and no body before the head. Interim (`1xx`) responses exist
///   only through [`crate::ext::EarlyHints`] and the server's `100 Continue` handling
///   (`HTTP-INTERIM-*`); `101` only through [`crate::upgrade`] and [`crate::ws`].
/// - `Err` before the head is turned into a response by the server (`CORE-ERR-*`): normally
///   `500 Internal Server Error` without internal details, and a log line; an error whose
///   source chain holds a [`crate::BodyError`] maps as [`crate::BodyError::status_code`] says
///   (for example `413` when the app gave up on an over-long body). A panic is treated as an
///   error. An error of the response body, after the head, aborts the response — never a
///   clean end (`CORE-ERR-3`).
/// - The server may drop the future returned by `call` once the client is gone; it reports
///   that through [`crate::Disconnect`] first (`CORE-CANCEL-*`).
///
/// The state an application shares between requests is simply the `App` value itself; build it
/// at startup with [`Lifespan`] (`LIFE-STATE-1`). Do not hold a lock guard of that state across
/// an await point (`LIFE-STATE-3`).
///
/// # Duties of the application
///
/// - Do not block the thread that polls your futures: move blocking I/O and long computations
///   to a blocking pool or a thread (`CORE-APP-7`). If you need services of a particular
///   runtime (tokio timers, `tokio::spawn`), say so and fail at startup when they are missing.
/// - Tolerate being dropped at any await point of `call`, of the response body and of
///   handlers (`CORE-CANCEL-5`); detach work that must finish whatever the client does, and
///   watch [`crate::Disconnect`] to learn how the exchange ended (`CORE-CANCEL-6`,
///   `HTTP-DISC-9`).
/// - Return a status in `200..=599` (`HTTP-RESP-2`), only valid header names and values
///   (`HTTP-RESP-4`), and none of the connection-specific fields `connection`, `keep-alive`,
///   `transfer-encoding`, `te`, `upgrade`, `proxy-connection` (`HTTP-RESP-5`).
/// - A `content-length` you set must match the body, except for `HEAD` and `304`, where it is
///   the length a `GET` would get (`HTTP-RESP-12`). Answer `HEAD` with the fields of `GET` and no
///   body (`HTTP-FRAME-6`); produce no body for `204` and `304` (`HTTP-FRAME-8`). A body fed by
///   another task must end only when the producer finished deliberately, and fail otherwise
///   (`HTTP-FRAME-10`).
/// - Response trailers: check the request's `te: trailers` when the client must see them and
///   set no `content-length` then (`HTTP-TRAIL-6`); never put framing, routing or
///   authentication fields in them (`HTTP-TRAIL-7`); announce their names in a `trailer`
///   field (`HTTP-TRAIL-10`).
/// - Read the request's authority from `uri().authority()` when present, else from `host`
///   (`HTTP-REQ-10`); do not depend on the relative order of fields with different names
///   (`HTTP-REQ-8`).
///
/// # Example
///
/// ```
/// use rgi::{App, Body, Request};
/// use rgi::http::{Response, header};
/// use std::convert::Infallible;
///
/// struct Echo;
///
/// impl App for Echo {
///     type Body = Body;
///     type Error = Infallible;
///
///     async fn call(&self, req: Request) -> Result<Response<Body>, Infallible> {
///         let content_type = req.headers().get(header::CONTENT_TYPE).cloned();
///         // Stream the request body straight back: no buffering, backpressure end to end.
///         let mut response = Response::new(req.into_body());
///         if let Some(value) = content_type {
///             response.headers_mut().insert(header::CONTENT_TYPE, value);
///         }
///         Ok(response)
///     }
/// }
/// # fn assert_app<A: App>(_: &A) {}
/// # assert_app(&Echo);
/// ```
pub trait App: Send + Sync + 'static {
    /// The response body type.
    ///
    /// Any [`http_body::Body`] with [`Bytes`] data works; [`crate::Body`] is a convenient choice.
    /// Its frames are data frames followed by at most one trailers frame (`HTTP-TRAIL-1`).
    type Body: http_body::Body<Data = Bytes, Error: Into<BoxError>> + Send + 'static;

    /// The error `call` may return instead of a response (see the contract above).
    type Error: Into<BoxError>;

    /// Handles one request and returns its final response head and body.
    fn call(
        &self,
        req: Request,
    ) -> impl Future<Output = Result<Response<Self::Body>, Self::Error>> + Send;

    /// Releases what the application holds. The server calls it exactly once, after the last
    /// request has finished (or the drain deadline passed), if startup succeeded (`LIFE-SHUT-1`).
    /// It should complete in bounded time (`LIFE-SHUT-5`).
    fn shutdown(&self) -> impl Future<Output = ()> + Send {
        std::future::ready(())
    }

    /// Erases the type of this application: see [`BoxApp`].
    fn boxed(self) -> BoxApp
    where
        Self: Sized,
    {
        BoxApp::new(self)
    }
}

/// How an application comes to life: the startup half of the lifespan protocol.
///
/// A server calls [`Lifespan::startup`] once, before it accepts the first connection
/// (`LIFE-START-1`). On success the returned [`App`] serves every request and is the typed
/// state shared by all of them (`LIFE-STATE-1`); on failure the server does not serve, logs the
/// error, and exits with a non-zero status (`LIFE-START-2`).
///
/// Every [`App`] is a `Lifespan` that starts as itself, so applications without startup work
/// need nothing more (`LIFE-START-3`). Report startup failures as a [`StartupError`] with a
/// message an operator can act on, rather than by panicking (`LIFE-START-7`); an application
/// that needs an optional feature checks [`ServerInfo::capabilities`] here (`EXT-CAP-6`).
///
/// # Example
///
/// ```
/// use rgi::{App, Body, Lifespan, Request, ServerInfo, StartupError};
/// use rgi::http::Response;
/// use std::convert::Infallible;
///
/// /// The configuration: what the binary knows before startup.
/// struct Config { greeting: String }
///
/// /// The running application: built at startup, shared by every request.
/// struct Greeter { greeting: String }
///
/// impl Lifespan for Config {
///     type App = Greeter;
///
///     async fn startup(self, _server: ServerInfo) -> Result<Greeter, StartupError> {
///         if self.greeting.is_empty() {
///             return Err(StartupError::new("the greeting must not be empty"));
///         }
///         Ok(Greeter { greeting: self.greeting })
///     }
/// }
///
/// impl App for Greeter {
///     type Body = Body;
///     type Error = Infallible;
///
///     async fn call(&self, _req: Request) -> Result<Response<Body>, Infallible> {
///         Ok(Response::new(Body::from(self.greeting.clone())))
///     }
/// }
/// # fn assert_lifespan<L: Lifespan>(_: &L) {}
/// # assert_lifespan(&Config { greeting: "hi".into() });
/// ```
pub trait Lifespan: Send + 'static {
    /// The application this lifespan starts.
    type App: App;

    /// Builds the application. `server` describes the hosting server and what it supports.
    fn startup(
        self,
        server: ServerInfo,
    ) -> impl Future<Output = Result<Self::App, StartupError>> + Send;
}

impl<A: App> Lifespan for A {
    type App = A;

    fn startup(self, _server: ServerInfo) -> impl Future<Output = Result<A, StartupError>> + Send {
        std::future::ready(Ok(self))
    }
}

/// Why an application could not start (`LIFE-START-2`).
///
/// The server logs the message (and the source chain, if any) and exits non-zero.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct StartupError {
    message: Cow<'static, str>,
    #[source]
    source: Option<BoxError>,
}

impl StartupError {
    /// A startup failure described by `message`.
    pub fn new(message: impl Into<Cow<'static, str>>) -> Self {
        Self {
            message: message.into(),
            source: None,
        }
    }

    /// A startup failure described by `message` and caused by `source`.
    pub fn with_source(message: impl Into<Cow<'static, str>>, source: impl Into<BoxError>) -> Self {
        Self {
            message: message.into(),
            source: Some(source.into()),
        }
    }

    /// The application's message.
    pub fn message(&self) -> &str {
        &self.message
    }
}
